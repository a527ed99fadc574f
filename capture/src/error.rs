//! Typed errors: [`SpecError`] for a camera spec that cannot work, [`CaptureError`] for a
//! camera that cannot be started, [`SourceError`] for what a running source reports.

use std::io;
use std::path::PathBuf;

/// The accepted CLI forms, quoted in error messages.
pub(crate) const SPEC_FORMS: &str = "stills:FOLDER, v4l2:/dev/videoN, gst:PIPELINE, test";

/// A camera spec (CLI string or config) that is malformed or out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// The CLI string is empty.
    #[error("the camera spec is empty; use one of: {SPEC_FORMS}")]
    Empty,
    /// The part before the first `:` is not a known scheme.
    #[error("unknown camera scheme {scheme:?} in {input:?}; use one of: {SPEC_FORMS}")]
    UnknownScheme {
        /// The scheme as written.
        scheme: String,
        /// The whole spec as written.
        input: String,
    },
    /// A scheme that needs a value (`stills:`, `v4l2:`, `gst:`) has none.
    #[error("camera spec {input:?} needs a value after \"{scheme}:\"; use one of: {SPEC_FORMS}")]
    MissingValue {
        /// The scheme as written.
        scheme: String,
        /// The whole spec as written.
        input: String,
    },
    /// `test:...` that is not `test:WIDTHxHEIGHT` or `test:WIDTHxHEIGHT@FPS`.
    #[error(
        "test pattern spec {input:?} is malformed; use test, test:WIDTHxHEIGHT or test:WIDTHxHEIGHT@FPS"
    )]
    BadTestPattern {
        /// The whole spec as written.
        input: String,
    },
    /// A number outside its accepted range.
    #[error("{field} = {value} is out of range ({min}..={max})")]
    OutOfRange {
        /// The config field.
        field: &'static str,
        /// The rejected value.
        value: u64,
        /// Smallest accepted value.
        min: u64,
        /// Largest accepted value.
        max: u64,
    },
    /// A path field that is empty.
    #[error("{field} is empty")]
    EmptyPath {
        /// The config field.
        field: &'static str,
    },
    /// A GStreamer pipeline description that cannot have our appsink appended.
    #[error("GStreamer pipeline {pipeline:?} {reason}")]
    BadPipeline {
        /// The pipeline as written.
        pipeline: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// Why a camera could not be started.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The spec itself is invalid.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// The stills folder cannot be listed.
    #[error("stills folder {folder}: {source}")]
    StillsFolder {
        /// The folder.
        folder: PathBuf,
        /// Why it cannot be read.
        source: io::Error,
    },
    /// The stills folder holds no `.jpg`, `.jpeg` or `.png` file.
    #[error("stills folder {folder} holds no JPEG or PNG images")]
    NoStills {
        /// The folder.
        folder: PathBuf,
    },
    /// Every image in the stills folder failed to decode.
    #[error("none of the {count} images in {folder} can be read; first error: {first_error}")]
    NoReadableStills {
        /// The folder.
        folder: PathBuf,
        /// How many image files were tried.
        count: usize,
        /// The first file's error.
        first_error: String,
    },
    /// The V4L2 device cannot be opened (typically: no camera plugged in).
    #[error("no camera at {device}: {source}")]
    NoCamera {
        /// The device node.
        device: PathBuf,
        /// Why it cannot be opened.
        source: io::Error,
    },
    /// The V4L2 device offers neither MJPEG nor YUYV (on Jetson, a CSI sensor's raw Bayer
    /// node: use `gst:nvarguscamerasrc ...` instead).
    #[error(
        "camera at {device} offers neither MJPEG nor YUYV (it offers: {offered}); for a Jetson CSI camera use gst:nvarguscamerasrc"
    )]
    UnsupportedFormat {
        /// The device node.
        device: PathBuf,
        /// The pixel formats it offers.
        offered: String,
    },
    /// A V4L2 call on an opened device failed.
    #[error("camera at {device}: {what}: {source}")]
    Device {
        /// The device node.
        device: PathBuf,
        /// The operation that failed.
        what: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// GStreamer cannot be initialised (library or plugin registry problem).
    #[error("GStreamer cannot be initialised: {0}")]
    GstInit(String),
    /// The pipeline description does not parse (unknown element, bad syntax...).
    #[error("GStreamer pipeline {pipeline:?} is invalid: {message}")]
    GstPipeline {
        /// The full pipeline, with the appsink we append.
        pipeline: String,
        /// GStreamer's message.
        message: String,
    },
    /// The pipeline parsed but failed to start (missing file, busy device...).
    #[error("GStreamer pipeline {pipeline:?} failed to start: {message}")]
    GstStart {
        /// The full pipeline, with the appsink we append.
        pipeline: String,
        /// GStreamer's error message (and debug detail, when there is one).
        message: String,
    },
    /// A recorded stream file for [`crate::ReplaySource`] cannot be read.
    #[error("replay file {path}: {source}")]
    ReplayFile {
        /// The file.
        path: PathBuf,
        /// Why it cannot be read.
        source: io::Error,
    },
    /// A recorded stream holds no complete JPEG frame.
    #[error("replay stream {path} holds no complete JPEG frame")]
    EmptyReplay {
        /// The file (or `<memory>`).
        path: PathBuf,
    },
    /// The camera thread could not be spawned.
    #[error("cannot start the camera thread: {0}")]
    Thread(io::Error),
}

/// What a [`crate::FrameSource`] reports instead of a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// Nothing yet; not a failure. The source waited a bounded time (≤ about 250 ms) and the
    /// camera thread asks again after checking for shutdown.
    #[error("no frame yet")]
    NoFrameYet,
    /// One frame could not be used (corrupt JPEG, short buffer); it is skipped.
    #[error("bad frame: {0}")]
    BadFrame(String),
    /// The source is gone (unplugged, read error, pipeline error or end of stream). The camera
    /// thread backs off and asks again; the source re-opens itself on the next call.
    #[error("{0}")]
    Lost(String),
}
