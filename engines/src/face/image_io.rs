//! Reading images from outside (files, uploads, camera stills) with limits checked before any
//! pixel is decoded: an empty file, a text file, a truncated JPEG, a 20000x20000 header, a
//! device or a FIFO each give a typed error, never a panic, a hang or a huge allocation.
//! Images come out upright: an EXIF orientation (a phone's portrait stored sideways) is applied.

use std::fs::OpenOptions;
use std::io::{Cursor, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use image::{DynamicImage, ImageDecoder, ImageReader, Limits, RgbImage};
use thiserror::Error;

/// Largest side accepted, in pixels.
pub const MAX_SIDE: u32 = 12_000;
/// Largest image accepted, in pixels.
pub const MAX_PIXELS: u64 = 64_000_000;
/// Largest image file read, in bytes (a 64-megapixel PNG fits).
pub const MAX_FILE_BYTES: u64 = 256 << 20;

#[derive(Debug, Error)]
pub enum ImageError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: empty file")]
    Empty { path: PathBuf },
    #[error("{path}: not a regular file but {kind}; give an image file")]
    NotAFile { path: PathBuf, kind: &'static str },
    #[error("{path}: {bytes} bytes, over the limit of {MAX_FILE_BYTES} bytes for an image file")]
    FileTooLarge { path: PathBuf, bytes: u64 },
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

/// Reads and decodes an image file to 8-bit RGB, upright.
pub fn load_rgb(path: &Path) -> Result<RgbImage, ImageError> {
    let bytes = read_image_file(path)?;
    decode_rgb(&bytes, path)
}

/// The bytes of a regular file of at most [`MAX_FILE_BYTES`]. Devices (`/dev/zero`), FIFOs,
/// sockets and folders are refused without reading them; a FIFO is opened without waiting for
/// a writer.
pub fn read_image_file(path: &Path) -> Result<Vec<u8>, ImageError> {
    let read_error = |source| ImageError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(read_error)?;
    let meta = file.metadata().map_err(read_error)?;
    let t = meta.file_type();
    let kind = if t.is_file() {
        None
    } else if t.is_dir() {
        Some("a folder")
    } else if t.is_fifo() {
        Some("a FIFO")
    } else if t.is_socket() {
        Some("a socket")
    } else if t.is_char_device() || t.is_block_device() {
        Some("a device")
    } else {
        Some("not a file")
    };
    if let Some(kind) = kind {
        return Err(ImageError::NotAFile {
            path: path.to_path_buf(),
            kind,
        });
    }
    let too_large = |bytes| ImageError::FileTooLarge {
        path: path.to_path_buf(),
        bytes,
    };
    if meta.len() > MAX_FILE_BYTES {
        return Err(too_large(meta.len()));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        // It grew while it was read.
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
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
    let corrupt = |e: image::ImageError| ImageError::Corrupt {
        path: path.clone(),
        message: e.to_string(),
    };
    let mut decoder = r.into_decoder().map_err(corrupt)?;
    if decoder.total_bytes() > MAX_PIXELS * 8 {
        return Err(ImageError::TooLarge {
            path,
            width,
            height,
        });
    }
    // A broken EXIF block only loses the orientation, not the picture.
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder).map_err(corrupt)?;
    img.apply_orientation(orientation);
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

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage};

    /// A JPEG of `img` with an EXIF block holding `orientation`.
    fn jpeg_with_orientation(img: &RgbImage, orientation: u16) -> Vec<u8> {
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 95)
            .encode_image(img)
            .unwrap();
        let mut tiff =
            b"II\x2A\x00\x08\x00\x00\x00\x01\x00\x12\x01\x03\x00\x01\x00\x00\x00".to_vec();
        tiff.extend_from_slice(&orientation.to_le_bytes());
        tiff.extend_from_slice(&[0; 6]);
        let mut out = b"\xFF\xD8\xFF\xE1".to_vec();
        out.extend_from_slice(&(tiff.len() as u16 + 8).to_be_bytes());
        out.extend_from_slice(b"Exif\0\0");
        out.extend_from_slice(&tiff);
        out.extend_from_slice(&jpeg[2..]);
        out
    }

    #[test]
    fn an_exif_orientation_is_applied() {
        // Upright: 40x20, red on the left, blue on the right.
        let upright = RgbImage::from_fn(40, 20, |x, _| {
            Rgb(if x < 20 { [220, 20, 20] } else { [20, 20, 220] })
        });
        for (orientation, stored) in [
            (1, upright.clone()),
            (3, image::imageops::rotate180(&upright)),
            (6, image::imageops::rotate270(&upright)),
            (8, image::imageops::rotate90(&upright)),
        ] {
            let bytes = jpeg_with_orientation(&stored, orientation);
            let img = decode_rgb(&bytes, Path::new("t.jpg")).unwrap();
            assert_eq!(img.dimensions(), (40, 20), "orientation {orientation}");
            assert!(img.get_pixel(5, 10).0[0] > 180, "orientation {orientation}");
            assert!(
                img.get_pixel(35, 10).0[2] > 180,
                "orientation {orientation}"
            );
        }
    }

    #[test]
    fn only_regular_files_of_bounded_size_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo.jpg");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        let big = dir.path().join("big.png");
        std::fs::File::create(&big)
            .unwrap()
            .set_len(MAX_FILE_BYTES + 1)
            .unwrap();
        for (path, needle) in [
            (fifo.as_path(), "a FIFO"),
            (Path::new("/dev/zero"), "a device"),
            (dir.path(), "a folder"),
            (big.as_path(), "over the limit"),
        ] {
            let e = load_rgb(path).unwrap_err().to_string();
            assert!(e.contains(needle), "{}: {e}", path.display());
        }
    }
}
