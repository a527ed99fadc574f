//! Helpers shared by the behaviour tests.
#![allow(dead_code)]

use std::path::Path;
use std::time::{Duration, Instant};

use image::{Rgb, RgbImage};
use kissbooth_capture::jpeg_encode;

/// A solid image.
pub fn solid(width: u32, height: u32, rgb: [u8; 3]) -> RgbImage {
    RgbImage::from_pixel(width, height, Rgb(rgb))
}

/// Writes a solid PNG (lossless: colours come back exactly).
pub fn write_png(path: &Path, width: u32, height: u32, rgb: [u8; 3]) {
    solid(width, height, rgb).save(path).expect("write PNG");
}

/// Writes a solid JPEG.
pub fn write_jpeg(path: &Path, width: u32, height: u32, rgb: [u8; 3]) {
    std::fs::write(path, jpeg_encode(&solid(width, height, rgb), 95)).expect("write JPEG");
}

/// Whether two colours are within `tolerance` on every channel.
pub fn near(a: [u8; 3], b: [u8; 3], tolerance: u8) -> bool {
    a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= tolerance)
}

/// The colour at the image centre.
pub fn centre(image: &RgbImage) -> [u8; 3] {
    image.get_pixel(image.width() / 2, image.height() / 2).0
}

/// Polls `check` every 5 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    check()
}

/// `jpeg` with an EXIF block giving its `Orientation` (6: turn 90° clockwise to view), as
/// phones save photos.
pub fn with_exif_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    assert_eq!(&jpeg[..2], b"\xFF\xD8", "not a JPEG");
    // A little-endian TIFF header and one IFD with a single SHORT entry, tag 0x0112.
    let mut tiff = b"II\x2A\x00\x08\x00\x00\x00\x01\x00\x12\x01\x03\x00\x01\x00\x00\x00".to_vec();
    tiff.extend_from_slice(&orientation.to_le_bytes());
    tiff.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff);
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&(app1.len() as u16 + 2).to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// A JPEG of noise (so that it is large and its data fills the file), `width` x `height`.
pub fn noisy_jpeg(width: u32, height: u32) -> Vec<u8> {
    let mut state = 0x2545_f491_u32;
    let image = RgbImage::from_fn(width, height, |_, _| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        Rgb([state as u8, (state >> 8) as u8, (state >> 16) as u8])
    });
    jpeg_encode(&image, 90)
}
