//! Typed errors: [`ConfigError`] for a config that cannot work, [`EncodeError`] for everything
//! that can go wrong while encoding or writing files.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use crate::config::{BITRATE_KBPS_RANGE, FPS_RANGE, MAX_KEYFRAME_INTERVAL_S, SIZE_RANGE};

/// A configuration value that is out of range or unknown.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// `bitrate_kbps` outside [`BITRATE_KBPS_RANGE`].
    #[error(
        "bitrate_kbps = {value} is out of range ({}..={})",
        BITRATE_KBPS_RANGE.start(),
        BITRATE_KBPS_RANGE.end()
    )]
    Bitrate {
        /// The rejected value.
        value: u32,
    },
    /// `keyframe_interval_s` not a finite number of seconds in (0, 10].
    #[error(
        "keyframe_interval_s = {value} must be a number of seconds above 0 and at most {MAX_KEYFRAME_INTERVAL_S}"
    )]
    KeyframeInterval {
        /// The rejected value.
        value: f32,
    },
    /// `x264_preset` is not one of [`crate::X264_PRESETS`].
    #[error("x264_preset = {preset:?} is not an x264 preset; use one of: {}", crate::X264_PRESETS.join(", "))]
    UnknownX264Preset {
        /// The rejected value.
        preset: String,
    },
    /// An encoder name that is not `auto` or a known element.
    #[error(
        "encoder = {encoder:?} is not known; use one of: auto, nvv4l2h264enc, x264enc, openh264enc"
    )]
    UnknownEncoder {
        /// The rejected value.
        encoder: String,
    },
    /// Width or height odd or outside [`SIZE_RANGE`].
    #[error(
        "video size {width}x{height} is not allowed: both sides must be even and within {}..={}",
        SIZE_RANGE.start(),
        SIZE_RANGE.end()
    )]
    VideoSize {
        /// The rejected width.
        width: u32,
        /// The rejected height.
        height: u32,
    },
    /// Frame rate outside [`FPS_RANGE`].
    #[error("fps = {fps} is out of range ({}..={})", FPS_RANGE.start(), FPS_RANGE.end())]
    Fps {
        /// The rejected value.
        fps: u32,
    },
}

/// Why encoding, or writing a poster, failed.
///
/// Whatever the error, nothing is left at the output path and temporary files are removed.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// `gst::init()` failed (GStreamer libraries or registry unusable).
    #[error("GStreamer could not be initialised: {reason}")]
    Init {
        /// GStreamer's message.
        reason: String,
    },

    /// The config or video spec is invalid.
    #[error("invalid encoder settings: {0}")]
    Config(#[from] ConfigError),

    /// An encoder was named explicitly but its element is not installed (or cannot open).
    #[error(
        "H.264 encoder element `{element}` is not installed on this machine; installed: {}",
        list_or_none(.installed)
    )]
    EncoderNotInstalled {
        /// The element asked for.
        element: String,
        /// Those that are installed, in preference order.
        installed: Vec<String>,
    },

    /// `auto` found no H.264 encoder at all.
    #[error(
        "no H.264 encoder is installed (looked for nvv4l2h264enc, x264enc, openh264enc); \
         install gstreamer1.0-plugins-ugly (x264enc) or gstreamer1.0-plugins-bad (openh264enc)"
    )]
    NoEncoder,

    /// The directory the output goes into is missing, not a directory, or not writable.
    #[error("cannot write into output directory {}: {reason}", .dir.display())]
    OutputDir {
        /// The directory.
        dir: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// The output path names an existing directory.
    #[error("output path {} is a directory, not a file", .path.display())]
    OutputIsDirectory {
        /// The output path.
        path: PathBuf,
    },

    /// The pipeline description did not parse or the pipeline would not start.
    #[error("could not start the pipeline `{description}`: {reason}")]
    Pipeline {
        /// The gst-launch style description.
        description: String,
        /// GStreamer's message.
        reason: String,
    },

    /// `push_rgb` got a slice of the wrong length.
    #[error("frame has {actual} bytes but a {width}x{height} RGB24 frame has {expected}")]
    FrameLength {
        /// `width * height * 3`.
        expected: usize,
        /// The length given.
        actual: usize,
        /// The encoder's frame width.
        width: u32,
        /// The encoder's frame height.
        height: u32,
    },

    /// `push` got an image of the wrong size.
    #[error("frame is {actual_width}x{actual_height} but the encoder takes {width}x{height}")]
    FrameSize {
        /// The encoder's frame width.
        width: u32,
        /// The encoder's frame height.
        height: u32,
        /// The width given.
        actual_width: u32,
        /// The height given.
        actual_height: u32,
    },

    /// An element of the pipeline posted an error.
    #[error("{element}: {message}{}", .debug.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Stream {
        /// The element that posted it.
        element: String,
        /// The error message.
        message: String,
        /// GStreamer's debug detail (source location, system error).
        debug: Option<String>,
    },

    /// The disk (or quota, or file size limit) ran out while writing.
    #[error("no space left to write {}: {detail}", .path.display())]
    DiskFull {
        /// The output being written.
        path: PathBuf,
        /// The underlying error.
        detail: String,
    },

    /// The pipeline did not drain after end-of-stream (or stalled while frames were pushed).
    #[error("the encoder did not finish within {waited:?} ({frames} frames pushed)")]
    Timeout {
        /// How long was waited.
        waited: Duration,
        /// Frames pushed so far.
        frames: u64,
    },

    /// `finish` was called before any frame was pushed.
    #[error("no frames were pushed; a video needs at least one")]
    NoFrames,

    /// A file system operation failed.
    #[error("{op} {}: {source}", .path.display())]
    Io {
        /// What was being done ("create", "sync", "rename" ...).
        op: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },

    /// An image could not be read or written.
    #[error("image {}: {source}", .path.display())]
    Image {
        /// The image file.
        path: PathBuf,
        /// The error.
        #[source]
        source: image::ImageError,
    },

    /// JPEG quality outside 1..=100.
    #[error("JPEG quality {quality} is out of range (1..=100)")]
    Quality {
        /// The rejected value.
        quality: u8,
    },

    /// An overlay placement that cannot be drawn.
    #[error("overlay placement: {reason}")]
    Placement {
        /// What is wrong.
        reason: String,
    },
}

impl EncodeError {
    /// An I/O error on `path`; running out of space becomes [`EncodeError::DiskFull`].
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        let path = path.into();
        if is_out_of_space(&source) {
            EncodeError::DiskFull {
                path,
                detail: format!("{op}: {source}"),
            }
        } else {
            EncodeError::Io { op, path, source }
        }
    }
}

/// ENOSPC, EDQUOT and EFBIG (a file size limit) all mean "no room to write this file".
pub(crate) fn is_out_of_space(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded | io::ErrorKind::FileTooLarge
    )
}

/// The same conditions as [`is_out_of_space`], recognised in GStreamer's text (it reports
/// `g_strerror(errno)` in an error's debug string).
pub(crate) fn mentions_out_of_space(text: &str) -> bool {
    const NEEDLES: [&str; 3] = [
        "No space left on device",
        "Disk quota exceeded",
        "File too large",
    ];
    NEEDLES.iter().any(|n| text.contains(n))
}

fn list_or_none(v: &[String]) -> String {
    if v.is_empty() {
        "none".to_owned()
    } else {
        v.join(", ")
    }
}
