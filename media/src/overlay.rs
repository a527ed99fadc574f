//! Branding overlay: a PNG with alpha, composited onto each RGB frame before it is encoded.

use std::io::Cursor;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use image::imageops::{self, FilterType};
use image::{ImageFormat, ImageReader, Limits, Rgb, RgbImage, RgbaImage};
use serde::{Deserialize, Serialize};

use crate::error::EncodeError;

/// Largest side of an overlay image, in pixels (a logo or a border for frames of at most 4K).
pub const MAX_OVERLAY_SIDE: u32 = 4096;

/// Where an [`Overlay`] goes on the frame.
///
/// Corner placements keep the logo's aspect ratio and only ever shrink it: to at most
/// `max_width_frac` of the frame's width, and to fit inside the frame with `margin` pixels to
/// spare on each side.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "at", rename_all = "snake_case", deny_unknown_fields)]
pub enum Placement {
    /// Stretched to cover the whole frame (a frame-shaped border or watermark).
    Full,
    /// Top left corner, `margin` pixels from both edges.
    TopLeft {
        /// Distance from the frame's edges, in pixels.
        margin: u32,
        /// Largest width, as a fraction of the frame's width, in (0, 1].
        max_width_frac: f32,
    },
    /// Top right corner.
    TopRight {
        /// Distance from the frame's edges, in pixels.
        margin: u32,
        /// Largest width, as a fraction of the frame's width, in (0, 1].
        max_width_frac: f32,
    },
    /// Bottom left corner.
    BottomLeft {
        /// Distance from the frame's edges, in pixels.
        margin: u32,
        /// Largest width, as a fraction of the frame's width, in (0, 1].
        max_width_frac: f32,
    },
    /// Bottom right corner (the usual place for a logo).
    BottomRight {
        /// Distance from the frame's edges, in pixels.
        margin: u32,
        /// Largest width, as a fraction of the frame's width, in (0, 1].
        max_width_frac: f32,
    },
}

impl Placement {
    fn validate(&self) -> Result<(), EncodeError> {
        match *self {
            Placement::Full => Ok(()),
            Placement::TopLeft { max_width_frac, .. }
            | Placement::TopRight { max_width_frac, .. }
            | Placement::BottomLeft { max_width_frac, .. }
            | Placement::BottomRight { max_width_frac, .. } => {
                if max_width_frac.is_finite() && max_width_frac > 0.0 && max_width_frac <= 1.0 {
                    Ok(())
                } else {
                    Err(EncodeError::Placement {
                        reason: format!("max_width_frac = {max_width_frac} must be in (0, 1]"),
                    })
                }
            }
        }
    }

    /// The logo's size and top-left position on a `fw`x`fh` frame; `None` when it cannot fit.
    fn layout(&self, logo: (u32, u32), frame: (u32, u32)) -> Option<(u32, u32, u32, u32)> {
        let (lw, lh) = logo;
        let (fw, fh) = frame;
        let (margin, frac, right, bottom) = match *self {
            Placement::Full => return Some((fw, fh, 0, 0)),
            Placement::TopLeft {
                margin,
                max_width_frac,
            } => (margin, max_width_frac, false, false),
            Placement::TopRight {
                margin,
                max_width_frac,
            } => (margin, max_width_frac, true, false),
            Placement::BottomLeft {
                margin,
                max_width_frac,
            } => (margin, max_width_frac, false, true),
            Placement::BottomRight {
                margin,
                max_width_frac,
            } => (margin, max_width_frac, true, true),
        };
        let room_w = f64::from(fw.checked_sub(margin.checked_mul(2)?)?);
        let room_h = f64::from(fh.checked_sub(margin.checked_mul(2)?)?);
        let max_w = (f64::from(fw) * f64::from(frac)).floor().min(room_w);
        let scale = (max_w / f64::from(lw)).min(room_h / f64::from(lh)).min(1.0);
        // Both in 0..=frame size, so the casts cannot truncate.
        let w = (f64::from(lw) * scale).round() as u32;
        let h = (f64::from(lh) * scale).round() as u32;
        if w == 0 || h == 0 {
            return None;
        }
        let x = if right { fw - margin - w } else { margin };
        let y = if bottom { fh - margin - h } else { margin };
        Some((w, h, x, y))
    }
}

/// Scaled logo for one frame size.
type Scaled = Option<(u32, u32, u32, u32, Arc<RgbaImage>)>;

/// A branding image composited onto frames; see [`Overlay::apply`].
#[derive(Debug)]
pub struct Overlay {
    logo: RgbaImage,
    placement: Placement,
    /// The logo scaled for the last frame size seen: `(frame w, frame h)` → layout.
    cache: Mutex<Option<((u32, u32), Scaled)>>,
}

impl Overlay {
    /// Loads a PNG (alpha is honoured) to be drawn at `placement`.
    pub fn from_png(path: &Path, placement: Placement) -> Result<Self, EncodeError> {
        let bytes = std::fs::read(path).map_err(|e| EncodeError::Image {
            path: path.to_path_buf(),
            source: image::ImageError::IoError(e),
        })?;
        Overlay::from_png_bytes(&bytes, path, placement)
    }

    /// Decodes a PNG held in memory (an uploaded logo); `name` is used in error messages.
    pub fn from_png_bytes(
        bytes: &[u8],
        name: &Path,
        placement: Placement,
    ) -> Result<Self, EncodeError> {
        // The size is checked from the header before any pixel memory is taken: a few hundred
        // bytes of PNG can claim a picture of gigabytes.
        let mut reader = ImageReader::with_format(Cursor::new(bytes), ImageFormat::Png);
        let mut limits = Limits::default();
        limits.max_image_width = Some(MAX_OVERLAY_SIDE);
        limits.max_image_height = Some(MAX_OVERLAY_SIDE);
        // 16-bit RGBA at the largest size.
        limits.max_alloc = Some(u64::from(MAX_OVERLAY_SIDE).pow(2) * 8);
        reader.limits(limits);
        let logo = reader
            .decode()
            .map_err(|source| EncodeError::Image {
                path: name.to_path_buf(),
                source,
            })?
            .into_rgba8();
        Overlay::from_rgba(logo, placement)
    }

    /// An overlay from an image already in memory.
    pub fn from_rgba(logo: RgbaImage, placement: Placement) -> Result<Self, EncodeError> {
        placement.validate()?;
        if logo.width() == 0 || logo.height() == 0 {
            return Err(EncodeError::Placement {
                reason: "the overlay image is empty".to_owned(),
            });
        }
        Ok(Overlay {
            logo,
            placement,
            cache: Mutex::new(None),
        })
    }

    /// Where the overlay goes.
    pub fn placement(&self) -> Placement {
        self.placement
    }

    /// Composites the overlay onto `frame` ("over" with the logo's alpha). A frame too small
    /// for the margins is left untouched.
    pub fn apply(&self, frame: &mut RgbImage) {
        let Some((w, h, x, y, scaled)) = self.scaled_for(frame.width(), frame.height()) else {
            return;
        };
        for (ly, row) in scaled.rows().enumerate().take(h as usize) {
            for (lx, px) in row.enumerate().take(w as usize) {
                let [r, g, b, a] = px.0;
                if a == 0 {
                    continue;
                }
                // lx < w and ly < h, both u32, so these casts are exact.
                let (fx, fy) = (x + lx as u32, y + ly as u32);
                let Some(dst) = frame.get_pixel_mut_checked(fx, fy) else {
                    continue;
                };
                *dst = blend(*dst, [r, g, b], a);
            }
        }
    }

    fn scaled_for(&self, fw: u32, fh: u32) -> Scaled {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((size, scaled)) = cache.as_ref()
            && *size == (fw, fh)
        {
            return scaled.clone();
        }
        let scaled = self
            .placement
            .layout((self.logo.width(), self.logo.height()), (fw, fh))
            .map(|(w, h, x, y)| {
                let img = if (w, h) == self.logo.dimensions() {
                    self.logo.clone()
                } else {
                    imageops::resize(&self.logo, w, h, FilterType::Triangle)
                };
                (w, h, x, y, Arc::new(img))
            });
        *cache = Some(((fw, fh), scaled.clone()));
        scaled
    }
}

fn blend(dst: Rgb<u8>, src: [u8; 3], alpha: u8) -> Rgb<u8> {
    let a = u32::from(alpha);
    let mix = |d: u8, s: u8| -> u8 {
        let v = (u32::from(s) * a + u32::from(d) * (255 - a) + 127) / 255;
        // v <= 255 by construction.
        v.min(255) as u8
    };
    Rgb([
        mix(dst[0], src[0]),
        mix(dst[1], src[1]),
        mix(dst[2], src[2]),
    ])
}
