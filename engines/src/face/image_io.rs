//! Reading images from outside (files, uploads, camera stills) with limits checked before any
//! pixel is decoded: an empty file, a text file, a truncated JPEG or a 20000x20000 header each
//! give a typed error, never a panic or a huge allocation.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use image::{ImageReader, Limits, RgbImage};
use thiserror::Error;

/// Largest side accepted, in pixels.
pub const MAX_SIDE: u32 = 12_000;
/// Largest image accepted, in pixels.
pub const MAX_PIXELS: u64 = 64_000_000;

#[derive(Debug, Error)]
pub enum ImageError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: empty file")]
    Empty { path: PathBuf },
    #[error("{path}: not an image (no known image format)")]
    NotAnImage { path: PathBuf },
    #[error(
        "{path}: image is {width}x{height}, over the limit of {MAX_SIDE} pixels a side / {MAX_PIXELS} pixels"
    )]
    TooLarge {
        path: PathBuf,
        width: u32,
        height: u32,
    },
    #[error("{path}: corrupt or truncated image: {message}")]
    Corrupt { path: PathBuf, message: String },
}

/// Reads and decodes an image file to 8-bit RGB.
pub fn load_rgb(path: &Path) -> Result<RgbImage, ImageError> {
    let bytes = std::fs::read(path).map_err(|source| ImageError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    decode_rgb(&bytes, path)
}

/// Decodes image bytes to 8-bit RGB; `name` is used in error messages.
pub fn decode_rgb(bytes: &[u8], name: &Path) -> Result<RgbImage, ImageError> {
    let path = name.to_path_buf();
    if bytes.is_empty() {
        return Err(ImageError::Empty { path });
    }
    let reader = |bytes| {
        ImageReader::new(Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| ImageError::Corrupt {
                path: path.clone(),
                message: e.to_string(),
            })
    };
    let probe = reader(bytes)?;
    match probe.format() {
        None => return Err(ImageError::NotAnImage { path }),
        // A JPEG cut short still decodes to a grey-bottomed picture; refuse it instead.
        Some(image::ImageFormat::Jpeg) if !has_jpeg_end(bytes) => {
            return Err(ImageError::Corrupt {
                path,
                message: "truncated JPEG (no end-of-image marker)".into(),
            });
        }
        Some(_) => {}
    }
    // A PNG states its size in the first chunk; read it there so a header alone is enough to
    // refuse an oversized image.
    let (width, height) = match png_header_size(bytes) {
        Some(wh) => wh,
        None => probe.into_dimensions().map_err(|e| ImageError::Corrupt {
            path: path.clone(),
            message: e.to_string(),
        })?,
    };
    if width == 0 || height == 0 {
        return Err(ImageError::Corrupt {
            path,
            message: "zero width or height".into(),
        });
    }
    if width > MAX_SIDE || height > MAX_SIDE || u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(ImageError::TooLarge {
            path,
            width,
            height,
        });
    }
    let mut r = reader(bytes)?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_PIXELS * 8);
    r.limits(limits);
    let img = r.decode().map_err(|e| ImageError::Corrupt {
        path: path.clone(),
        message: e.to_string(),
    })?;
    Ok(img.into_rgb8())
}

/// True when the JPEG data ends with an end-of-image marker (trailing padding allowed).
fn has_jpeg_end(bytes: &[u8]) -> bool {
    let tail = &bytes[bytes.len().saturating_sub(4096)..];
    tail.windows(2).any(|w| w == [0xFF, 0xD9])
}

/// Width and height from a PNG's IHDR chunk.
fn png_header_size(bytes: &[u8]) -> Option<(u32, u32)> {
    if bytes.len() < 24 || &bytes[..8] != b"\x89PNG\r\n\x1a\n" || &bytes[12..16] != b"IHDR" {
        return None;
    }
    let w = u32::from_be_bytes(bytes[16..20].try_into().ok()?);
    let h = u32::from_be_bytes(bytes[20..24].try_into().ok()?);
    Some((w, h))
}
