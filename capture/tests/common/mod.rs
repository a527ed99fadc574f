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
