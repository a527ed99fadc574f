//! A recorded MJPEG stream played back as a camera, with faults on demand: the stand-in for
//! a USB camera in tests (unplug, stall) and a way to demo the booth from a recording.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::error::{CaptureError, SourceError};
use crate::frame::RawFrame;
use crate::handle::{FrameSource, Pacer};

/// The byte ranges of the complete JPEG images in `bytes`, in order.
///
/// Works on raw concatenated JPEGs and on `multipart/x-mixed-replace` bodies (as saved from
/// an MJPEG HTTP stream): anything between images is skipped. Segments are walked by their
/// lengths and the entropy-coded data is scanned for the next marker, so an end-of-image
/// marker inside metadata (an EXIF thumbnail) does not cut an image short. A truncated last
/// image is left out.
pub fn split_jpeg_stream(bytes: &[u8]) -> Vec<Range<usize>> {
    let mut frames = Vec::new();
    let mut at = 0;
    while let Some(start) = find_soi(bytes, at) {
        match jpeg_end(bytes, start) {
            Some(end) => {
                frames.push(start..end);
                at = end;
            }
            None => at = start + 2,
        }
    }
    frames
}

fn find_soi(bytes: &[u8], from: usize) -> Option<usize> {
    bytes
        .get(from..)?
        .windows(3)
        .position(|w| w == [0xFF, 0xD8, 0xFF])
        .map(|p| p + from)
}

/// The end (exclusive) of the JPEG starting at `start`, or `None` when it is incomplete or
/// malformed.
fn jpeg_end(bytes: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 2;
    loop {
        // Next marker: 0xFF (fill bytes allowed), then the code.
        if *bytes.get(i)? != 0xFF {
            return None;
        }
        while *bytes.get(i + 1)? == 0xFF {
            i += 1;
        }
        let code = *bytes.get(i + 1)?;
        i += 2;
        match code {
            0xD9 => return Some(i),         // EOI
            0x01 | 0xD0..=0xD7 => continue, // markers without a length
            _ => {
                let len = usize::from(u16::from_be_bytes([*bytes.get(i)?, *bytes.get(i + 1)?]));
                if len < 2 {
                    return None;
                }
                i = i.checked_add(len)?;
                if code == 0xDA {
                    // Start of scan: entropy-coded data up to the next real marker.
                    loop {
                        if *bytes.get(i)? == 0xFF {
                            let next = *bytes.get(i + 1)?;
                            if next != 0x00 && !(0xD0..=0xD7).contains(&next) && next != 0xFF {
                                break;
                            }
                            i += if next == 0xFF { 1 } else { 2 };
                        } else {
                            i += 1;
                        }
                    }
                }
            }
        }
    }
}

#[derive(Debug, Default)]
struct Faults {
    unplugged_reads: u32,
    stall: Option<Duration>,
    reads: u64,
}

/// Remote control of a [`ReplaySource`] that has been handed to a camera thread.
#[derive(Debug, Clone, Default)]
pub struct ReplayControl {
    faults: Arc<Mutex<Faults>>,
}

impl ReplayControl {
    fn with<T>(&self, f: impl FnOnce(&mut Faults) -> T) -> T {
        f(&mut self.faults.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The camera is unplugged for the next `reads` reads: each one fails at once with
    /// [`SourceError::Lost`], as re-opening a missing `/dev/video0` does. Then it is back.
    pub fn unplug_for(&self, reads: u32) {
        self.with(|f| f.unplugged_reads = reads);
    }

    /// The next read blocks for `duration` before delivering, as a wedged driver would.
    pub fn stall_next_read(&self, duration: Duration) {
        self.with(|f| f.stall = Some(duration));
    }

    /// Reads so far (frames, failures and waits).
    pub fn reads(&self) -> u64 {
        self.with(|f| f.reads)
    }
}

/// Plays a recorded MJPEG stream (raw concatenated JPEGs or a `multipart/x-mixed-replace`
/// body) in a loop at a fixed rate, as [`RawFrame::Mjpeg`] frames: the same path a V4L2
/// MJPEG camera's frames take. Faults are injected through [`ReplaySource::control`].
pub struct ReplaySource {
    name: PathBuf,
    data: Vec<u8>,
    frames: Vec<Range<usize>>,
    pos: usize,
    pacer: Pacer,
    control: ReplayControl,
}

impl std::fmt::Debug for ReplaySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplaySource")
            .field("name", &self.name)
            .field("frames", &self.frames.len())
            .finish()
    }
}

impl ReplaySource {
    /// Reads and splits the recording at `path`, to be played at `fps` (at least 1).
    pub fn open(path: &Path, fps: u32) -> Result<Self, CaptureError> {
        let data = std::fs::read(path).map_err(|source| CaptureError::ReplayFile {
            path: path.to_owned(),
            source,
        })?;
        Self::from_bytes(path, data, fps)
    }

    /// A recording already in memory; `name` is used in descriptions and errors.
    pub fn from_bytes(name: &Path, data: Vec<u8>, fps: u32) -> Result<Self, CaptureError> {
        let frames = split_jpeg_stream(&data);
        if frames.is_empty() {
            return Err(CaptureError::EmptyReplay {
                path: name.to_owned(),
            });
        }
        Ok(ReplaySource {
            name: name.to_owned(),
            data,
            frames,
            pos: 0,
            pacer: Pacer::new(Duration::from_secs(1) / fps.max(1)),
            control: ReplayControl::default(),
        })
    }

    /// How many JPEG frames the recording holds.
    pub fn frame_count(&self) -> usize {
        self.frames.len()
    }

    /// A handle to inject faults after the source is moved into a camera thread.
    pub fn control(&self) -> ReplayControl {
        self.control.clone()
    }
}

impl FrameSource for ReplaySource {
    fn next(&mut self) -> Result<RawFrame, SourceError> {
        let (unplugged, stall) = self.control.with(|f| {
            f.reads += 1;
            let unplugged = f.unplugged_reads > 0;
            f.unplugged_reads = f.unplugged_reads.saturating_sub(1);
            (unplugged, f.stall.take())
        });
        if unplugged {
            // Like a hot-unplugged UVC camera: the node is gone, re-opening fails at once.
            return Err(SourceError::Lost(format!(
                "no camera at {}: No such file or directory (replayed unplug)",
                self.name.display()
            )));
        }
        if let Some(stall) = stall {
            std::thread::sleep(stall);
        }
        if !self.pacer.ready() {
            return Err(SourceError::NoFrameYet);
        }
        let range = self.frames[self.pos % self.frames.len()].clone();
        self.pos = (self.pos + 1) % self.frames.len();
        Ok(RawFrame::Mjpeg(self.data[range].to_vec()))
    }

    fn describe(&self) -> String {
        format!(
            "replay:{} ({} MJPEG frames)",
            self.name.display(),
            self.frames.len()
        )
    }
}
