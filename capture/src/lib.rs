//! # kissbooth-capture
//!
//! Camera sources for Kissbooth: a camera in, the newest RGB [`Frame`] out, for the kiosk's
//! live preview and for the burst that the face analysis picks its shot from.
//!
//! ```no_run
//! use std::time::Duration;
//! use kissbooth_capture::{CameraContext, CameraSpec, Shutdown, jpeg_encode};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let shutdown = Shutdown::new(); // the daemon's; triggering it stops every camera
//! let spec: CameraSpec = "v4l2:/dev/video0".parse()?; // or from the config file
//! let camera = spec.build(CameraContext::new(shutdown.clone()))?; // "no camera at /dev/video0: ..."
//!
//! // Preview: the newest frame, never waiting on the camera.
//! if let Some(frame) = camera.latest() {
//!     let jpeg = jpeg_encode(&frame.image, 80);
//!     # let _ = jpeg;
//! }
//! // Burst: the next five frames.
//! let mut seq = camera.latest().map_or(0, |f| f.seq);
//! for _ in 0..5 {
//!     let Some(frame) = camera.wait_newer(seq, Duration::from_secs(1)) else { break };
//!     seq = frame.seq;
//! }
//! println!("{}: {:?}", camera.describe(), camera.status());
//! camera.stop();
//! # Ok(()) }
//! ```
//!
//! ## Sources ([`CameraSpec`])
//!
//! | CLI string | config `kind` | what |
//! |---|---|---|
//! | `stills:FOLDER` | `stills` | JPEG/PNG files played in a loop in name order, every `interval_ms` (200) |
//! | `v4l2:/dev/videoN` | `v4l2` | a USB camera: MJPEG if offered else YUYV, largest mode up to 1920x1080, mmap streaming |
//! | `gst:PIPELINE` | `gst` | any GStreamer source; `! videoconvert ! video/x-raw,format=RGB ! appsink` is appended. Jetson CSI: `nvarguscamerasrc ! video/x-raw(memory:NVMM),width=1920,height=1080,framerate=30/1 ! nvvidconv` |
//! | `test` | `test` | moving colour bars and a binary frame counter, 1280x720 at 30 fps |
//!
//! [`CameraSpec::build`] opens the source before it returns, so a missing camera, an empty
//! folder or a broken pipeline is a typed [`CaptureError`] at start-up.
//!
//! ## Threads, and never blocking
//!
//! Each camera runs on its own thread that reads the source, converts to RGB and swaps the
//! newest frame into a mutex-guarded slot (an `Arc`, so the lock is held for a pointer
//! swap). [`CameraHandle::latest`] copies that `Arc`; [`CameraHandle::wait_newer`] sleeps on a
//! condition variable. A slow reader never slows the camera, and a stalled camera never
//! stalls a reader: it keeps getting the last frame.
//!
//! ## Unplug and reconnect
//!
//! A read error, an end of stream or a pipeline error makes the camera
//! [`CameraStatus::Reconnecting`]: the source is closed and re-opened after 100 ms, 200 ms,
//! 400 ms... up to 5 s between attempts ([`Backoff`]). When it comes back the status is
//! [`CameraStatus::Live`] again and frames continue with increasing [`Frame::seq`]. No frame
//! for 5 s from a V4L2 camera or a pipeline counts as lost too.
//!
//! The reconnect loop is generic over [`FrameSource`]; [`ReplaySource`] plays a recorded MJPEG
//! stream through it and can be told to fail ("unplug") or stall, which is how the behaviour
//! is tested without a camera.

#![warn(missing_docs)]

mod error;
mod frame;
mod gst;
mod handle;
mod pattern;
mod replay;
mod shutdown;
mod spec;
mod stills;
mod v4l2;

pub use error::{CaptureError, SourceError, SpecError};
pub use frame::{
    Frame, MAX_SIDE, MAX_STILL_BYTES, RawFrame, decode_jpeg, jpeg_encode, jpeg_is_complete,
    rgb_from_padded_rows, yuyv_to_rgb,
};
pub use gst::{SINK_NAME, SINK_TAIL, full_pipeline};
pub use handle::{Backoff, CameraContext, CameraHandle, CameraStatus, FrameSource};
pub use pattern::test_pattern;
pub use replay::{ReplayControl, ReplaySource, split_jpeg_stream};
pub use shutdown::Shutdown;
pub use spec::{CameraSpec, FPS_RANGE, SIDE_RANGE, STILLS_INTERVAL_MS_RANGE};
pub use v4l2::list_v4l2_devices;
