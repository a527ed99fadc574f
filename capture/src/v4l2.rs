//! V4L2 cameras (USB/UVC) through the `v4l` crate: MJPEG or YUYV, memory-mapped streaming,
//! re-opened after an unplug.

use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use v4l::buffer::Type;
use v4l::device::Handle;
use v4l::format::FourCC;
use v4l::framesize::FrameSizeEnum;
use v4l::io::mmap::Stream;
use v4l::io::traits::{CaptureStream, Stream as _};
use v4l::video::Capture;
use v4l::{Device, Format};

use crate::error::{CaptureError, SourceError};
use crate::frame::RawFrame;
use crate::handle::FrameSource;

const MJPEG: FourCC = FourCC { repr: *b"MJPG" };
const YUYV: FourCC = FourCC { repr: *b"YUYV" };
/// How long one `next` waits for a buffer once streaming.
const POLL_MS: i32 = 250;
/// How long the first buffer may take after STREAMON (the v4l crate starts streaming inside
/// its first read, so this one wait cannot be split up).
const FIRST_FRAME: Duration = Duration::from_secs(3);
/// `POLLIN` from poll(2).
const POLLIN: i16 = 0x001;
/// No buffer for this long counts as a lost camera (a wedged driver or a dead USB link).
const STALL: Duration = Duration::from_secs(5);
const BUFFERS: u32 = 4;

/// The `/dev/video*` nodes that exist, in numeric order. (A UVC camera often has two: the
/// second carries metadata, not video.)
pub fn list_v4l2_devices() -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir("/dev") else {
        return Vec::new();
    };
    let mut found: Vec<(u32, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name();
            let n = name.to_str()?.strip_prefix("video")?.parse::<u32>().ok()?;
            Some((n, e.path()))
        })
        .collect();
    found.sort();
    found.into_iter().map(|(_, path)| path).collect()
}

fn fourcc_name(fourcc: FourCC) -> String {
    fourcc
        .str()
        .map(|s| s.trim_end().to_owned())
        .unwrap_or_else(|_| format!("{:?}", fourcc.repr))
}

/// The largest frame size for `fourcc` within `max_w` x `max_h` (or the smallest offered
/// when none fits).
fn pick_size(dev: &Device, fourcc: FourCC, max_w: u32, max_h: u32) -> io::Result<(u32, u32)> {
    let mut sizes = Vec::new();
    for size in dev.enum_framesizes(fourcc)? {
        match size.size {
            FrameSizeEnum::Discrete(d) => sizes.push((d.width, d.height)),
            FrameSizeEnum::Stepwise(s) => {
                let fit = |min: u32, max: u32, step: u32, limit: u32| {
                    let step = step.max(1);
                    let top = max.min(limit).max(min);
                    min + (top - min) / step * step
                };
                sizes.push((
                    fit(s.min_width, s.max_width, s.step_width, max_w),
                    fit(s.min_height, s.max_height, s.step_height, max_h),
                ));
            }
        }
    }
    let area = |(w, h): (u32, u32)| u64::from(w) * u64::from(h);
    let best = sizes
        .iter()
        .copied()
        .filter(|&(w, h)| w <= max_w && h <= max_h)
        .max_by_key(|&s| area(s))
        .or_else(|| sizes.iter().copied().min_by_key(|&s| area(s)));
    Ok(best.unwrap_or((max_w, max_h)))
}

/// An opened, configured device and its stream.
struct Open {
    // Dropped before `device` (field order), through `Drop for Open`.
    stream: Option<Stream<'static>>,
    _device: Device,
    handle: std::sync::Arc<Handle>,
    format: Format,
    last_frame: Instant,
    /// Whether the first buffer came (the stream is running and one buffer is ours).
    started: bool,
}

impl Drop for Open {
    fn drop(&mut self) {
        if let Some(mut stream) = self.stream.take() {
            // v4l's Stream panics in Drop when STREAMOFF fails with anything but ENODEV
            // (and unmapping fails): stop it ourselves, and contain a panic from a broken
            // device rather than take the camera thread down.
            let _ = stream.stop();
            if catch_unwind(AssertUnwindSafe(move || drop(stream))).is_err() {
                tracing::warn!("closing a V4L2 stream panicked in the v4l crate; ignored");
            }
        }
    }
}

fn open(device: &Path, max_w: u32, max_h: u32) -> Result<Open, CaptureError> {
    let dev = Device::with_path(device).map_err(|source| CaptureError::NoCamera {
        device: device.to_owned(),
        source,
    })?;
    let op = |what: &'static str| {
        move |source| CaptureError::Device {
            device: device.to_owned(),
            what,
            source,
        }
    };
    let formats = dev.enum_formats().map_err(op("listing pixel formats"))?;
    let fourcc = [MJPEG, YUYV]
        .into_iter()
        .find(|want| formats.iter().any(|f| f.fourcc == *want))
        .ok_or_else(|| CaptureError::UnsupportedFormat {
            device: device.to_owned(),
            offered: formats
                .iter()
                .map(|f| fourcc_name(f.fourcc))
                .collect::<Vec<_>>()
                .join(", "),
        })?;
    let (width, height) =
        pick_size(&dev, fourcc, max_w, max_h).map_err(op("listing frame sizes"))?;
    let format = dev
        .set_format(&Format::new(width, height, fourcc))
        .map_err(op("setting the format"))?;
    if format.fourcc != fourcc {
        return Err(CaptureError::UnsupportedFormat {
            device: device.to_owned(),
            offered: format!(
                "asked for {}, the driver set {}",
                fourcc_name(fourcc),
                fourcc_name(format.fourcc)
            ),
        });
    }
    let mut stream = Stream::with_buffers(&dev, Type::VideoCapture, BUFFERS)
        .map_err(op("mapping capture buffers"))?;
    stream.set_timeout(FIRST_FRAME);
    tracing::info!(
        device = %device.display(),
        format = %fourcc_name(format.fourcc),
        width = format.width,
        height = format.height,
        "V4L2 camera opened"
    );
    Ok(Open {
        stream: Some(stream),
        handle: dev.handle(),
        _device: dev,
        format,
        last_frame: Instant::now(),
        started: false,
    })
}

/// A V4L2 camera. A lost device is closed; the next call re-opens it.
pub(crate) struct V4l2Source {
    device: PathBuf,
    max_width: u32,
    max_height: u32,
    open: Option<Open>,
    /// The last mode, for [`FrameSource::describe`] while closed.
    mode: String,
}

impl V4l2Source {
    /// Opens the device now, so that a missing camera is an error at build time.
    pub(crate) fn open(
        device: &Path,
        max_width: u32,
        max_height: u32,
    ) -> Result<Self, CaptureError> {
        let opened = open(device, max_width, max_height)?;
        let mut source = V4l2Source {
            device: device.to_owned(),
            max_width,
            max_height,
            open: None,
            mode: String::new(),
        };
        source.set_open(opened);
        Ok(source)
    }

    fn set_open(&mut self, opened: Open) {
        self.mode = format!(
            "{} {}x{}",
            fourcc_name(opened.format.fourcc),
            opened.format.width,
            opened.format.height
        );
        self.open = Some(opened);
    }

    fn lose(&mut self, why: String) -> SourceError {
        self.open = None;
        SourceError::Lost(why)
    }
}

impl FrameSource for V4l2Source {
    fn next(&mut self) -> Result<RawFrame, SourceError> {
        if self.open.is_none() {
            let opened = open(&self.device, self.max_width, self.max_height)
                .map_err(|e| SourceError::Lost(e.to_string()))?;
            self.set_open(opened);
        }
        let Some(open) = self.open.as_mut() else {
            return Err(SourceError::Lost("camera closed".into()));
        };
        // Wait for a filled buffer ourselves: the v4l crate's read re-queues the buffer it
        // handed out last before waiting, so a timeout inside it would queue that buffer
        // twice on the next call. Polling first keeps its queue consistent.
        if open.started {
            match open.handle.poll(POLLIN, POLL_MS) {
                Ok(0) if open.last_frame.elapsed() > STALL => {
                    let why = format!(
                        "camera at {}: no frame for {} s",
                        self.device.display(),
                        STALL.as_secs()
                    );
                    return Err(self.lose(why));
                }
                Ok(0) => return Err(SourceError::NoFrameYet),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    return Err(SourceError::NoFrameYet);
                }
                Err(e) => {
                    let why = format!("camera at {}: poll failed: {e}", self.device.display());
                    return Err(self.lose(why));
                }
            }
        }
        let format = open.format;
        let Some(stream) = open.stream.as_mut() else {
            return Err(self.lose("camera stream closed".into()));
        };
        match CaptureStream::next(stream) {
            Ok((buf, meta)) => {
                open.last_frame = Instant::now();
                open.started = true;
                let used = (meta.bytesused as usize).min(buf.len());
                if used == 0 {
                    return Err(SourceError::BadFrame("empty V4L2 buffer".into()));
                }
                let data = &buf[..used];
                if format.fourcc == MJPEG {
                    Ok(RawFrame::Mjpeg(data.to_vec()))
                } else {
                    Ok(RawFrame::Yuyv {
                        width: format.width,
                        height: format.height,
                        stride: (format.stride as usize).max(format.width as usize * 2),
                        data: data.to_vec(),
                    })
                }
            }
            // Any failure here, a timeout included, leaves the stream in an unknown state:
            // close it and re-open.
            Err(e) => {
                let why = format!("camera at {}: read failed: {e}", self.device.display());
                Err(self.lose(why))
            }
        }
    }

    fn describe(&self) -> String {
        format!("v4l2:{} {}", self.device.display(), self.mode)
    }
}
