//! [`CameraSpec`]: which camera to read, as a config table or a CLI string.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{CaptureError, SpecError};
use crate::gst::GstSource;
use crate::handle::{CameraContext, CameraHandle, FrameSource};
use crate::pattern::TestPatternSource;
use crate::stills::StillsSource;
use crate::v4l2::V4l2Source;

/// Accepted range of `interval_ms` for stills.
pub const STILLS_INTERVAL_MS_RANGE: std::ops::RangeInclusive<u64> = 10..=3_600_000;
/// Accepted range of V4L2 `max_width`/`max_height` and test-pattern `width`/`height`.
pub const SIDE_RANGE: std::ops::RangeInclusive<u32> = 16..=crate::frame::MAX_SIDE;
/// Accepted range of the test pattern's `fps`.
pub const FPS_RANGE: std::ops::RangeInclusive<u32> = 1..=120;

/// Which camera to read.
///
/// In a config file it is a table tagged by `kind`; every other field has a default:
///
/// ```toml
/// [camera]
/// kind = "stills"                 # a folder of JPEG/PNG images, played in name order
/// folder = "/usr/share/kissbooth/stills"
/// interval_ms = 200               # default 200
///
/// # kind = "v4l2"                 # a USB (UVC) camera: MJPEG if offered, else YUYV
/// # device = "/dev/video0"
/// # max_width = 1920              # the largest mode up to this size; default 1920x1080
/// # max_height = 1080
///
/// # kind = "gst"                  # any GStreamer source; an appsink is appended
/// # pipeline = "nvarguscamerasrc ! video/x-raw(memory:NVMM),width=1920,height=1080,framerate=30/1 ! nvvidconv"
///
/// # kind = "test"                 # moving colour bars and a frame counter
/// # width = 1280                  # default 1280x720 at 30 fps
/// # height = 720
/// # fps = 30
/// ```
///
/// On the command line it is one string (see [`CameraSpec::from_str`]):
/// `stills:FOLDER`, `v4l2:/dev/videoN` (or `v4l2:N`), `gst:PIPELINE`, `test` (or
/// `test:WIDTHxHEIGHT`, `test:WIDTHxHEIGHT@FPS`). Fields the string cannot carry take their
/// defaults. [`fmt::Display`] writes the string form back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", deny_unknown_fields)]
pub enum CameraSpec {
    /// A folder of JPEG/PNG images played in a loop, sorted by file name. The folder is
    /// re-listed at the start of each loop, so images can be added while running. Unreadable
    /// files are skipped with a warning; images over 12000 px a side are refused.
    #[serde(rename = "stills")]
    Stills {
        /// The folder.
        folder: PathBuf,
        /// Time each image is shown, in milliseconds (10..=3600000; default 200).
        #[serde(default = "default_interval_ms")]
        interval_ms: u64,
    },
    /// A V4L2 camera (USB/UVC). MJPEG is preferred (less USB bandwidth), else YUYV; the
    /// largest mode within `max_width` x `max_height`; memory-mapped streaming. When it is
    /// unplugged the camera reconnects with back-off and resumes when it comes back.
    ///
    /// A Jetson CSI sensor's `/dev/video0` delivers raw Bayer: use [`CameraSpec::Gst`] with
    /// `nvarguscamerasrc` for it.
    #[serde(rename = "v4l2")]
    V4l2 {
        /// The device node, e.g. `/dev/video0`.
        device: PathBuf,
        /// Largest accepted width (default 1920).
        #[serde(default = "default_max_width")]
        max_width: u32,
        /// Largest accepted height (default 1080).
        #[serde(default = "default_max_height")]
        max_height: u32,
    },
    /// A GStreamer pipeline description producing raw video. We append
    /// `! videoconvert ! video/x-raw,format=RGB ! appsink name=kb_sink max-buffers=1 drop=true sync=false`.
    ///
    /// The Jetson CSI camera (not runnable off a Jetson):
    /// `nvarguscamerasrc ! video/x-raw(memory:NVMM),width=1920,height=1080,framerate=30/1 ! nvvidconv`.
    /// A USB camera through GStreamer: `v4l2src device=/dev/video0 ! image/jpeg ! jpegdec`.
    /// The sink does not sync to the clock, so a non-live source (files) must be made live,
    /// e.g. `filesrc location=a.jpg ! jpegdec ! imagefreeze is-live=true`, or it runs as fast
    /// as the CPU allows. End of stream or an error rebuilds the pipeline with back-off.
    #[serde(rename = "gst")]
    Gst {
        /// The pipeline, without a sink.
        pipeline: String,
    },
    /// Moving colour bars and a binary frame counter, generated in Rust.
    #[serde(rename = "test")]
    TestPattern {
        /// Width in pixels (default 1280).
        #[serde(default = "default_test_width")]
        width: u32,
        /// Height in pixels (default 720).
        #[serde(default = "default_test_height")]
        height: u32,
        /// Frames per second (1..=120; default 30).
        #[serde(default = "default_test_fps")]
        fps: u32,
    },
}

fn default_interval_ms() -> u64 {
    200
}
fn default_max_width() -> u32 {
    1920
}
fn default_max_height() -> u32 {
    1080
}
fn default_test_width() -> u32 {
    1280
}
fn default_test_height() -> u32 {
    720
}
fn default_test_fps() -> u32 {
    30
}

impl Default for CameraSpec {
    /// The test pattern at 1280x720, 30 fps: works on any machine, with no files.
    fn default() -> Self {
        CameraSpec::TestPattern {
            width: default_test_width(),
            height: default_test_height(),
            fps: default_test_fps(),
        }
    }
}

impl CameraSpec {
    /// A stills folder with the default interval.
    pub fn stills(folder: impl Into<PathBuf>) -> Self {
        CameraSpec::Stills {
            folder: folder.into(),
            interval_ms: default_interval_ms(),
        }
    }

    /// A V4L2 device with the default size limits.
    pub fn v4l2(device: impl Into<PathBuf>) -> Self {
        CameraSpec::V4l2 {
            device: device.into(),
            max_width: default_max_width(),
            max_height: default_max_height(),
        }
    }

    /// Checks ranges and shapes without touching any device or file.
    pub fn validate(&self) -> Result<(), CaptureError> {
        fn range<T: Into<u64> + Copy + PartialOrd>(
            field: &'static str,
            value: T,
            range: &std::ops::RangeInclusive<T>,
        ) -> Result<(), SpecError> {
            if range.contains(&value) {
                Ok(())
            } else {
                Err(SpecError::OutOfRange {
                    field,
                    value: value.into(),
                    min: (*range.start()).into(),
                    max: (*range.end()).into(),
                })
            }
        }
        match self {
            CameraSpec::Stills {
                folder,
                interval_ms,
            } => {
                if folder.as_os_str().is_empty() {
                    return Err(SpecError::EmptyPath { field: "folder" }.into());
                }
                range("interval_ms", *interval_ms, &STILLS_INTERVAL_MS_RANGE)?;
            }
            CameraSpec::V4l2 {
                device,
                max_width,
                max_height,
            } => {
                if device.as_os_str().is_empty() {
                    return Err(SpecError::EmptyPath { field: "device" }.into());
                }
                range("max_width", *max_width, &SIDE_RANGE)?;
                range("max_height", *max_height, &SIDE_RANGE)?;
            }
            CameraSpec::Gst { pipeline } => crate::gst::check_pipeline(pipeline)?,
            CameraSpec::TestPattern { width, height, fps } => {
                range("width", *width, &SIDE_RANGE)?;
                range("height", *height, &SIDE_RANGE)?;
                range("fps", *fps, &FPS_RANGE)?;
            }
        }
        Ok(())
    }

    /// Validates, opens the source (so a missing camera, folder or plugin is an error here,
    /// not a silent black screen) and starts its thread.
    ///
    /// Errors after this point (unplug, end of stream) are not returned: the camera reports
    /// [`crate::CameraStatus::Reconnecting`] and reconnects with back-off.
    pub fn build(&self, ctx: CameraContext) -> Result<CameraHandle, CaptureError> {
        self.validate()?;
        CameraHandle::spawn(self.open_source()?, self.to_string(), &ctx)
    }

    /// Like [`CameraSpec::build`], but a camera that cannot be opened yet (not plugged in, an
    /// empty stills folder) is not an error: the camera starts
    /// [`crate::CameraStatus::Reconnecting`], saying why, tries again with back-off and goes
    /// live when the camera appears. Only a malformed spec is an error. For a booth that must
    /// start, and say what is wrong, whatever is plugged in.
    pub fn build_waiting(&self, ctx: CameraContext) -> Result<CameraHandle, CaptureError> {
        self.validate()?;
        let source = Awaited {
            spec: self.clone(),
            source: None,
        };
        CameraHandle::spawn(Box::new(source), self.to_string(), &ctx)
    }

    fn open_source(&self) -> Result<Box<dyn FrameSource>, CaptureError> {
        Ok(match self {
            CameraSpec::Stills {
                folder,
                interval_ms,
            } => Box::new(StillsSource::open(folder, *interval_ms)?),
            CameraSpec::V4l2 {
                device,
                max_width,
                max_height,
            } => Box::new(V4l2Source::open(device, *max_width, *max_height)?),
            CameraSpec::Gst { pipeline } => Box::new(GstSource::open(pipeline)?),
            CameraSpec::TestPattern { width, height, fps } => {
                Box::new(TestPatternSource::new(*width, *height, *fps))
            }
        })
    }
}

/// A camera opened on first use and again after each failure to open it.
struct Awaited {
    spec: CameraSpec,
    source: Option<Box<dyn FrameSource>>,
}

impl FrameSource for Awaited {
    fn next(&mut self) -> Result<crate::RawFrame, crate::SourceError> {
        let source = match &mut self.source {
            Some(source) => source,
            None => self.source.insert(
                self.spec
                    .open_source()
                    .map_err(|e| crate::SourceError::Lost(format!("camera unavailable: {e}")))?,
            ),
        };
        source.next()
    }

    fn describe(&self) -> String {
        match &self.source {
            Some(source) => source.describe(),
            None => format!("{} (not available yet)", self.spec),
        }
    }
}

impl FromStr for CameraSpec {
    type Err = SpecError;

    /// Parses `stills:FOLDER`, `v4l2:/dev/videoN` (or `v4l2:N`), `gst:PIPELINE` (kept
    /// verbatim, colons and all) or `test` (`test:WIDTHxHEIGHT`, `test:WIDTHxHEIGHT@FPS`).
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(SpecError::Empty);
        }
        let (scheme, value) = match trimmed.split_once(':') {
            Some((scheme, value)) => (scheme, Some(value.trim())),
            None => (trimmed, None),
        };
        let needs_value = |value: Option<&str>| match value {
            Some(v) if !v.is_empty() => Ok(v.to_owned()),
            _ => Err(SpecError::MissingValue {
                scheme: scheme.to_owned(),
                input: input.to_owned(),
            }),
        };
        match scheme.to_ascii_lowercase().as_str() {
            "stills" => Ok(CameraSpec::stills(needs_value(value)?)),
            "v4l2" => {
                let value = needs_value(value)?;
                let device = if value.bytes().all(|b| b.is_ascii_digit()) {
                    PathBuf::from(format!("/dev/video{value}"))
                } else {
                    PathBuf::from(value)
                };
                Ok(CameraSpec::v4l2(device))
            }
            "gst" => Ok(CameraSpec::Gst {
                pipeline: needs_value(value)?,
            }),
            "test" => match value {
                None | Some("") => Ok(CameraSpec::default()),
                Some(value) => parse_test_pattern(value).ok_or_else(|| SpecError::BadTestPattern {
                    input: input.to_owned(),
                }),
            },
            _ => Err(SpecError::UnknownScheme {
                scheme: scheme.to_owned(),
                input: input.to_owned(),
            }),
        }
    }
}

fn parse_test_pattern(value: &str) -> Option<CameraSpec> {
    let (size, fps) = match value.split_once('@') {
        Some((size, fps)) => (size, Some(fps.trim().parse().ok()?)),
        None => (value, None),
    };
    let (width, height) = size.split_once(['x', 'X'])?;
    Some(CameraSpec::TestPattern {
        width: width.trim().parse().ok()?,
        height: height.trim().parse().ok()?,
        fps: fps.unwrap_or_else(default_test_fps),
    })
}

impl fmt::Display for CameraSpec {
    /// The CLI string form (sizes and intervals that the string cannot carry are left out).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CameraSpec::Stills { folder, .. } => write!(f, "stills:{}", folder.display()),
            CameraSpec::V4l2 { device, .. } => write!(f, "v4l2:{}", device.display()),
            CameraSpec::Gst { pipeline } => write!(f, "gst:{pipeline}"),
            CameraSpec::TestPattern { width, height, fps } => {
                write!(f, "test:{width}x{height}@{fps}")
            }
        }
    }
}
