//! The test pattern: colour bars that scroll sideways, and a binary frame counter.

use std::sync::Arc;
use std::time::Duration;

use image::RgbImage;

use crate::error::SourceError;
use crate::frame::RawFrame;
use crate::handle::{FrameSource, Pacer};

/// The bars, left to right: 75 % white, yellow, cyan, green, magenta, red, blue, black.
const BARS: [[u8; 3]; 8] = [
    [191, 191, 191],
    [191, 191, 0],
    [0, 191, 191],
    [0, 191, 0],
    [191, 0, 191],
    [191, 0, 0],
    [0, 0, 191],
    [16, 16, 16],
];

/// Bits of the frame counter drawn, least significant on the right.
const COUNTER_BITS: u32 = 16;

pub(crate) struct TestPatternSource {
    width: u32,
    height: u32,
    fps: u32,
    frame: u64,
    pacer: Pacer,
}

impl TestPatternSource {
    pub(crate) fn new(width: u32, height: u32, fps: u32) -> Self {
        TestPatternSource {
            width,
            height,
            fps,
            frame: 0,
            pacer: Pacer::new(Duration::from_secs(1) / fps.max(1)),
        }
    }
}

/// Frame `n` of the pattern: bars shifted left by `n * width / 120` pixels (one full turn in
/// 120 frames), and `n` in binary as white (1) / black (0) cells in the bottom-left corner.
pub fn test_pattern(width: u32, height: u32, n: u64) -> RgbImage {
    let (w, h) = (width as usize, height as usize);
    if w == 0 || h == 0 {
        return RgbImage::new(width, height);
    }
    let shift = ((n % 120) as usize * w) / 120;
    let mut row = vec![0u8; w * 3];
    for (x, px) in row.chunks_exact_mut(3).enumerate() {
        let bar = (((x + shift) % w) * BARS.len()) / w;
        px.copy_from_slice(&BARS[bar]);
    }
    let mut data = Vec::with_capacity(w * h * 3);
    for _ in 0..h {
        data.extend_from_slice(&row);
    }
    // The counter: a grey strip with one square cell per bit.
    let cell = (h / 24)
        .clamp(2, 64)
        .min(w / (COUNTER_BITS as usize + 2))
        .max(1);
    let strip_w = (cell * (COUNTER_BITS as usize + 2)).min(w);
    let strip_h = (cell * 3).min(h);
    let top = h - strip_h;
    for y in top..h {
        for x in 0..strip_w {
            let in_cell_row = y >= top + cell && y < top + 2 * cell;
            let bit = (x / cell)
                .checked_sub(1)
                .filter(|b| *b < COUNTER_BITS as usize);
            let colour = match (in_cell_row, bit) {
                (true, Some(b)) => {
                    let shift = COUNTER_BITS as usize - 1 - b;
                    if (n >> shift) & 1 == 1 { 255 } else { 0 }
                }
                _ => 128,
            };
            let i = (y * w + x) * 3;
            data[i..i + 3].fill(colour);
        }
    }
    RgbImage::from_raw(width, height, data).unwrap_or_else(|| RgbImage::new(width, height))
}

impl FrameSource for TestPatternSource {
    fn next(&mut self) -> Result<RawFrame, SourceError> {
        if !self.pacer.ready() {
            return Err(SourceError::NoFrameYet);
        }
        let image = test_pattern(self.width, self.height, self.frame);
        self.frame += 1;
        Ok(RawFrame::Rgb(Arc::new(image)))
    }

    fn describe(&self) -> String {
        format!(
            "test pattern {}x{} at {} fps",
            self.width, self.height, self.fps
        )
    }
}
