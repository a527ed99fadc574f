//! Frames: what a source hands over ([`RawFrame`]), what readers get ([`Frame`]), and the
//! conversions between them (JPEG decode with limits, YUYV → RGB, padded rows → RGB).

use std::fs::OpenOptions;
use std::io::{Cursor, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits, RgbImage};

use crate::error::SourceError;

/// Images wider or taller than this are rejected before decoding (stills and MJPEG frames).
pub const MAX_SIDE: u32 = 12_000;

/// Still image files larger than this are not read.
pub const MAX_STILL_BYTES: u64 = 256 << 20;

/// A captured frame: RGB8 pixels plus when and from where.
///
/// Cloning is cheap: the pixels are shared.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The pixels, shared between every reader of this frame.
    pub image: Arc<RgbImage>,
    /// Position in this camera's stream: 1 for the first frame, then +1 per frame, across
    /// reconnects.
    pub seq: u64,
    /// When the camera thread received the frame.
    pub captured_at: SystemTime,
    /// The camera it came from, as its spec string (e.g. `v4l2:/dev/video0`).
    pub source: String,
}

/// A frame as a source delivers it, before conversion to RGB.
#[derive(Debug, Clone, PartialEq)]
pub enum RawFrame {
    /// One complete JPEG image (a V4L2 MJPEG buffer or one part of a recorded stream).
    Mjpeg(Vec<u8>),
    /// Packed YUV 4:2:2 (`Y0 U Y1 V`), BT.601 limited range, `stride` bytes per row.
    Yuyv {
        /// Width in pixels (even).
        width: u32,
        /// Height in rows.
        height: u32,
        /// Bytes per row, at least `2 * width`.
        stride: usize,
        /// At least `stride * (height - 1) + 2 * width` bytes.
        data: Vec<u8>,
    },
    /// Ready RGB pixels.
    Rgb(Arc<RgbImage>),
}

impl RawFrame {
    /// Converts to RGB8. A frame that cannot be converted is [`SourceError::BadFrame`].
    pub fn decode(self) -> Result<Arc<RgbImage>, SourceError> {
        match self {
            RawFrame::Mjpeg(bytes) => decode_jpeg(&bytes).map(Arc::new),
            RawFrame::Yuyv {
                width,
                height,
                stride,
                data,
            } => yuyv_to_rgb(width, height, stride, &data).map(Arc::new),
            RawFrame::Rgb(image) => Ok(image),
        }
    }
}

fn limits() -> Limits {
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits
}

/// Decodes one JPEG image to RGB8, rejecting sides over [`MAX_SIDE`] and incomplete frames (a
/// frame cut short would otherwise decode with its bottom rows grey).
pub fn decode_jpeg(bytes: &[u8]) -> Result<RgbImage, SourceError> {
    if !jpeg_is_complete(bytes) {
        return Err(SourceError::BadFrame(
            "JPEG: incomplete (no end-of-image marker)".into(),
        ));
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), ImageFormat::Jpeg);
    reader.limits(limits());
    reader
        .decode()
        .map(|image| image.into_rgb8())
        .map_err(|e| SourceError::BadFrame(format!("JPEG: {e}")))
}

/// True when JPEG data ends with its end-of-image marker (`FF D9`; padding after it, as some
/// cameras add, is allowed). Inside the compressed data an `FF` byte is always followed by
/// `00` or a restart marker, so a cut-off frame has no `FF D9` near its end.
pub fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let tail = &bytes[bytes.len().saturating_sub(4096)..];
    bytes.starts_with(&[0xFF, 0xD8]) && tail.windows(2).any(|w| w == [0xFF, 0xD9])
}

/// Decodes a JPEG or PNG file (format from its content) to RGB8, upright (its EXIF orientation
/// applied), rejecting sides over [`MAX_SIDE`], files that are not regular files or are over
/// [`MAX_STILL_BYTES`], and JPEGs without their end (a file still being copied in).
pub(crate) fn decode_image_file(path: &Path) -> Result<RgbImage, String> {
    let bytes = read_still(path)?;
    let mut reader = ImageReader::new(Cursor::new(&bytes))
        .with_guessed_format()
        .map_err(|e| e.to_string())?;
    if reader.format() == Some(ImageFormat::Jpeg) && !jpeg_is_complete(&bytes) {
        return Err(INCOMPLETE_JPEG.into());
    }
    reader.limits(limits());
    let mut decoder = reader.into_decoder().map_err(|e| e.to_string())?;
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut image = DynamicImage::from_decoder(decoder).map_err(|e| e.to_string())?;
    image.apply_orientation(orientation);
    Ok(image.into_rgb8())
}

/// The error of a JPEG file without its end.
pub(crate) const INCOMPLETE_JPEG: &str =
    "incomplete JPEG (no end-of-image marker): cut short, or still being copied";

/// A still file's bytes: regular files only (a FIFO is opened without waiting for a writer),
/// at most [`MAX_STILL_BYTES`].
fn read_still(path: &Path) -> Result<Vec<u8>, String> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| e.to_string())?;
    let meta = file.metadata().map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    if meta.len() > MAX_STILL_BYTES {
        return Err(format!(
            "{} bytes, over the limit of {MAX_STILL_BYTES}",
            meta.len()
        ));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_STILL_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_STILL_BYTES {
        return Err(format!("over the limit of {MAX_STILL_BYTES} bytes"));
    }
    Ok(bytes)
}

#[inline]
fn clamp_u8(v: i32) -> u8 {
    v.clamp(0, 255) as u8
}

/// Converts packed YUYV (BT.601, limited range 16-235) to RGB8 with integer arithmetic.
///
/// `stride` is the number of bytes per row (V4L2's `bytesperline`), at least `2 * width`.
pub fn yuyv_to_rgb(
    width: u32,
    height: u32,
    stride: usize,
    data: &[u8],
) -> Result<RgbImage, SourceError> {
    let (w, h) = (width as usize, height as usize);
    if w == 0 || h == 0 || w % 2 != 0 {
        return Err(SourceError::BadFrame(format!(
            "YUYV frame {width}x{height}: width must be even and both sides non-zero"
        )));
    }
    let row_bytes = w * 2;
    check_rows("YUYV", width, height, row_bytes, stride, data.len())?;
    let mut out = vec![0u8; w * h * 3];
    for (src_row, dst_row) in data.chunks(stride).take(h).zip(out.chunks_exact_mut(w * 3)) {
        for (yuyv, rgb) in src_row[..row_bytes]
            .chunks_exact(4)
            .zip(dst_row.chunks_exact_mut(6))
        {
            let d = i32::from(yuyv[1]) - 128;
            let e = i32::from(yuyv[3]) - 128;
            let r_off = 409 * e + 128;
            let g_off = -100 * d - 208 * e + 128;
            let b_off = 516 * d + 128;
            for (i, y) in [yuyv[0], yuyv[2]].into_iter().enumerate() {
                let c = 298 * (i32::from(y) - 16);
                rgb[i * 3] = clamp_u8((c + r_off) >> 8);
                rgb[i * 3 + 1] = clamp_u8((c + g_off) >> 8);
                rgb[i * 3 + 2] = clamp_u8((c + b_off) >> 8);
            }
        }
    }
    RgbImage::from_raw(width, height, out)
        .ok_or_else(|| SourceError::BadFrame("YUYV: buffer size mismatch".into()))
}

/// Whether `len` bytes hold `height` rows of `row_bytes`, `stride` apart (the last row may
/// stop at its last pixel).
fn check_rows(
    kind: &str,
    width: u32,
    height: u32,
    row_bytes: usize,
    stride: usize,
    len: usize,
) -> Result<(), SourceError> {
    let needed = stride
        .saturating_mul((height as usize).saturating_sub(1))
        .saturating_add(row_bytes);
    if stride < row_bytes || len < needed {
        return Err(SourceError::BadFrame(format!(
            "{kind} frame {width}x{height} with stride {stride} needs {needed} bytes, got {len}"
        )));
    }
    Ok(())
}

/// Copies RGB8 rows that are `stride` bytes apart (GStreamer pads each row to a multiple of
/// 4 bytes) into a tight [`RgbImage`].
pub fn rgb_from_padded_rows(
    width: u32,
    height: u32,
    stride: usize,
    data: &[u8],
) -> Result<RgbImage, SourceError> {
    let (w, h) = (width as usize, height as usize);
    let row_bytes = w * 3;
    if w == 0 || h == 0 {
        return Err(SourceError::BadFrame(format!(
            "RGB frame {width}x{height} is empty"
        )));
    }
    check_rows("RGB", width, height, row_bytes, stride, data.len())?;
    let out = if stride == row_bytes {
        data[..row_bytes * h].to_vec()
    } else {
        let mut out = Vec::with_capacity(row_bytes * h);
        for row in data.chunks(stride).take(h) {
            out.extend_from_slice(&row[..row_bytes]);
        }
        out
    };
    RgbImage::from_raw(width, height, out)
        .ok_or_else(|| SourceError::BadFrame("RGB: buffer size mismatch".into()))
}

/// Encodes a frame as JPEG (for the kiosk's MJPEG preview). `quality` is clamped to 1..=100.
///
/// Returns an empty vector for an image the encoder refuses (an empty image), after logging.
pub fn jpeg_encode(frame: &RgbImage, quality: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(frame.as_raw().len() / 8);
    let mut encoder =
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality.clamp(1, 100));
    if let Err(e) = encoder.encode_image(frame) {
        tracing::warn!(error = %e, width = frame.width(), height = frame.height(), "cannot encode a preview JPEG");
        return Vec::new();
    }
    out
}
