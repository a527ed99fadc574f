//! # kissbooth-media
//!
//! Video encoding for Kissbooth: RGB frames in, an H.264/MP4 out that every phone and browser
//! plays; plus the poster JPEG and a branding overlay.
//!
//! The renderer streams frames in as it produces them:
//!
//! ```no_run
//! use kissbooth_media::{EncoderConfig, VideoMetadata, VideoSpec};
//! # fn main() -> Result<(), kissbooth_media::EncodeError> {
//! let config: EncoderConfig = Default::default(); // encoder = "auto"
//! let spec = VideoSpec::new(512, 512, 24);
//! let mut encoder = config.build(&spec, "/var/lib/kissbooth/v/abc.mp4".as_ref(), &VideoMetadata::default())?;
//! for n in 0..48u32 {
//!     let frame = image::RgbImage::from_pixel(512, 512, image::Rgb([n as u8 * 5, 0, 0]));
//!     encoder.push(&frame)?;
//! }
//! let video = encoder.finish()?; // end-of-stream, fsync, rename
//! println!("{} bytes, {} frames by {}", video.bytes, video.frames, video.encoder);
//! # Ok(()) }
//! ```
//!
//! ## What the output is
//!
//! - H.264 in MP4, 4:2:0 (`yuv420p`): the frames are converted to I420 before the encoder,
//!   because RGB straight into x264 gives High 4:4:4, which browsers do not play.
//! - The index (`moov`) comes before the media data (`mdat`), so playback starts before the
//!   download ends (mp4mux `faststart`).
//! - The MP4 says it is AI-generated: the comment tag is [`VideoMetadata::comment`], by default
//!   [`AI_GENERATED_LABEL`], and the keywords tag is always [`AI_GENERATED_KEYWORD`]. Every frame
//!   and the poster also show it: a visible "AI-GENERATED" mark in the bottom-left corner
//!   ([`label`]).
//!
//! ## Encoder choice
//!
//! [`EncoderChoice::Auto`] takes the first of `nvv4l2h264enc` (Jetson NVENC), `x264enc`,
//! `openh264enc` that [`available_encoders`] finds working. Naming one that is not installed is
//! [`EncodeError::EncoderNotInstalled`], which lists the installed ones.
//!
//! ## Files
//!
//! Nothing appears at the output path until [`Encoder::finish`] succeeds: the pipeline writes
//! to `.<name>.partial-<pid>-<n>` in the same directory, which is fsynced and renamed into
//! place. An error (the disk filling up is [`EncodeError::DiskFull`]) or dropping the
//! [`Encoder`] unfinished removes the temporary files. [`write_poster`] is atomic the same way.
//! Temporaries left by a crash or power cut are removed by [`remove_stale_temporaries`].

mod config;
mod encoder;
mod error;
mod fsio;
pub mod label;
mod mp4time;
mod overlay;
mod poster;

pub use config::{
    AI_GENERATED_KEYWORD, AI_GENERATED_LABEL, BITRATE_KBPS_RANGE, EncoderChoice, EncoderConfig,
    FPS_RANGE, MAX_KEYFRAME_INTERVAL_S, SIZE_RANGE, VideoMetadata, VideoSpec, X264_PRESETS,
};
pub use encoder::{ENCODER_PREFERENCE, EncodedVideo, Encoder, available_encoders, init};
pub use error::{ConfigError, EncodeError};
pub use fsio::remove_stale_temporaries;
pub use label::{AI_LABEL, label_agreement, stamp_ai_label};
pub use overlay::{MAX_OVERLAY_SIDE, Overlay, Placement};
pub use poster::write_poster;
