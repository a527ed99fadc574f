//! The visible "AI-GENERATED" mark every clip and poster carries.
//!
//! A video of real people kissing that never happened must say so where anyone sees it, not
//! only in its metadata: the mark sits in the bottom-left corner of every frame, white capitals
//! on a darkened box, sized from the frame's shorter side so it stays legible when a phone
//! shows the clip at a third of its pixels (capitals 21 pixels tall on a 720-pixel side).
//!
//! The text is drawn with a built-in 5x7 pixel font (capitals, digits and a little
//! punctuation), so nothing depends on the fonts installed on the device.

use image::RgbImage;

/// The words of the mark.
pub const AI_LABEL: &str = "AI-GENERATED";

/// Width and height of a glyph, in font pixels; glyphs are one font pixel apart.
const GLYPH_W: u32 = 5;
const GLYPH_H: u32 = 7;
/// Room around the text inside the box, font pixels.
const PAD: u32 = 2;
/// How much of the picture shows through the box: 0 black, 1 untouched.
const BOX_SHOW: u32 = 90; // of 256

/// Where [`stamp_ai_label`] put the mark: its box, frame pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LabelBox {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
    /// Size of one font pixel, frame pixels.
    pub scale: u32,
}

/// The mark's box on a `width`x`height` frame; `None` on a frame too small to carry it.
pub fn label_box(width: u32, height: u32) -> Option<LabelBox> {
    let short = width.min(height);
    let scale = (short / 240).max(2);
    let (tw, th) = text_size(AI_LABEL, scale);
    let (bw, bh) = (tw + 2 * PAD * scale, th + 2 * PAD * scale);
    let margin = (short * 3 / 100).max(scale);
    if bw + 2 * margin > width || bh + 2 * margin > height {
        return None;
    }
    Some(LabelBox {
        x: margin,
        y: height - margin - bh,
        width: bw,
        height: bh,
        scale,
    })
}

/// Draws the mark onto `frame`. Frames too small to hold it (under about 180 pixels wide) are
/// left as they are; every size the booth renders holds it.
pub fn stamp_ai_label(frame: &mut RgbImage) -> Option<LabelBox> {
    let b = label_box(frame.width(), frame.height())?;
    for y in b.y..b.y + b.height {
        for x in b.x..b.x + b.width {
            let px = frame.get_pixel_mut(x, y);
            for c in px.0.iter_mut() {
                *c = ((*c as u32 * BOX_SHOW) >> 8) as u8;
            }
        }
    }
    draw_text(
        frame,
        AI_LABEL,
        b.x + PAD * b.scale,
        b.y + PAD * b.scale,
        b.scale,
        [255, 255, 255],
    );
    Some(b)
}

/// How well `frame` shows the mark where [`stamp_ai_label`] puts it: the share of its font
/// pixels (lit or not, over the whole text) that read as drawn, judging each at its centre by
/// brightness. 1.0 on a stamped frame, and above 0.95 after video compression; about 0.5 or
/// less where there is no mark. `None` on a frame too small to carry it.
pub fn label_agreement(frame: &RgbImage) -> Option<f32> {
    let b = label_box(frame.width(), frame.height())?;
    let (x0, y0) = (b.x + PAD * b.scale, b.y + PAD * b.scale);
    let (mut agree, mut total) = (0u32, 0u32);
    for (i, ch) in AI_LABEL.chars().enumerate() {
        for (r, bits) in glyph(ch).iter().enumerate() {
            for col in 0..GLYPH_W {
                let lit = bits & (1 << (GLYPH_W - 1 - col)) != 0;
                let (px, py) = (
                    x0 + (i as u32 * (GLYPH_W + 1) + col) * b.scale + b.scale / 2,
                    y0 + r as u32 * b.scale + b.scale / 2,
                );
                let [red, green, blue] = frame.get_pixel(px, py).0;
                let luma = 0.299 * red as f32 + 0.587 * green as f32 + 0.114 * blue as f32;
                agree += u32::from((luma > 160.0) == lit);
                total += 1;
            }
        }
    }
    Some(agree as f32 / total.max(1) as f32)
}

/// Size of `text` drawn at `scale`, frame pixels.
pub fn text_size(text: &str, scale: u32) -> (u32, u32) {
    let n = text.chars().count() as u32;
    if n == 0 {
        return (0, 0);
    }
    ((n * (GLYPH_W + 1) - 1) * scale, GLYPH_H * scale)
}

/// Draws `text` in capitals with its top-left corner at (`x`, `y`), each font pixel a
/// `scale`x`scale` square of `colour`; whatever falls outside the frame is cut off.
pub fn draw_text(frame: &mut RgbImage, text: &str, x: u32, y: u32, scale: u32, colour: [u8; 3]) {
    let (w, h) = frame.dimensions();
    for (i, ch) in text.chars().enumerate() {
        let rows = glyph(ch);
        let gx = x + i as u32 * (GLYPH_W + 1) * scale;
        for (r, bits) in rows.iter().enumerate() {
            for col in 0..GLYPH_W {
                if bits & (1 << (GLYPH_W - 1 - col)) == 0 {
                    continue;
                }
                let (px, py) = (gx + col * scale, y + r as u32 * scale);
                for yy in py..(py + scale).min(h) {
                    for xx in px..(px + scale).min(w) {
                        frame.put_pixel(xx, yy, image::Rgb(colour));
                    }
                }
            }
        }
    }
}

/// The 5x7 rows of a character, most significant bit on the left; lower case is drawn as
/// capitals, and a character the font lacks as `?`.
fn glyph(ch: char) -> [u8; 7] {
    match ch.to_ascii_uppercase() {
        'A' => [0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'B' => [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E],
        'C' => [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E],
        'D' => [0x1E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1E],
        'E' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F],
        'F' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10],
        'G' => [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F],
        'H' => [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'I' => [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E],
        'J' => [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C],
        'K' => [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11],
        'L' => [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F],
        'M' => [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11],
        'N' => [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
        'O' => [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'P' => [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10],
        'Q' => [0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D],
        'R' => [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11],
        'S' => [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E],
        'T' => [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        'U' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'V' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04],
        'W' => [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A],
        'X' => [0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11],
        'Y' => [0x11, 0x11, 0x0A, 0x04, 0x04, 0x04, 0x04],
        'Z' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F],
        '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        '-' => [0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00],
        '.' => [0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C],
        '&' => [0x0C, 0x12, 0x14, 0x08, 0x15, 0x12, 0x0D],
        '\'' => [0x04, 0x04, 0x08, 0x00, 0x00, 0x00, 0x00],
        ' ' => [0; 7],
        _ => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads the mark back: each glyph cell's font pixels are lit when most of their frame
    /// pixels are white.
    fn read_back(frame: &RgbImage, b: LabelBox, n: usize) -> Vec<[u8; 7]> {
        let (x0, y0) = (b.x + PAD * b.scale, b.y + PAD * b.scale);
        (0..n as u32)
            .map(|i| {
                std::array::from_fn(|r| {
                    (0..GLYPH_W).fold(0u8, |acc, col| {
                        let (px, py) = (
                            x0 + (i * (GLYPH_W + 1) + col) * b.scale + b.scale / 2,
                            y0 + r as u32 * b.scale + b.scale / 2,
                        );
                        let lit = frame.get_pixel(px, py).0 == [255, 255, 255];
                        acc | (u8::from(lit) << (GLYPH_W - 1 - col))
                    })
                })
            })
            .collect()
    }

    #[test]
    fn every_booth_size_carries_a_legible_mark_in_the_bottom_left_corner() {
        for (w, h) in [
            (720, 720),
            (720, 1280),
            (1280, 720),
            (512, 512),
            (1920, 1080),
        ] {
            let mut frame = RgbImage::from_pixel(w, h, image::Rgb([200, 180, 160]));
            let b = stamp_ai_label(&mut frame).expect("a booth-sized frame holds the mark");
            assert!(
                b.scale >= 2 && GLYPH_H * b.scale >= (w.min(h) / 40),
                "{w}x{h}: {b:?}"
            );
            assert!(
                b.x < w / 10 && b.y + b.height > h * 9 / 10,
                "{w}x{h}: {b:?}"
            );
            let expected: Vec<[u8; 7]> = AI_LABEL.chars().map(glyph).collect();
            assert_eq!(read_back(&frame, b, AI_LABEL.len()), expected, "{w}x{h}");
            assert_eq!(label_agreement(&frame), Some(1.0));
            // The box darkens what is under it; nothing outside the box changes.
            assert_eq!(frame.get_pixel(b.x, b.y).0, [70, 63, 56]);
            assert_eq!(frame.get_pixel(b.x + b.width, b.y).0, [200, 180, 160]);
            assert_eq!(frame.get_pixel(b.x, b.y - 1).0, [200, 180, 160]);
        }
    }

    #[test]
    fn a_frame_without_the_mark_does_not_read_as_marked() {
        for grey in [0u8, 128, 255] {
            let frame = RgbImage::from_pixel(720, 720, image::Rgb([grey; 3]));
            assert!(label_agreement(&frame).unwrap() < 0.7, "grey {grey}");
        }
    }

    #[test]
    fn a_frame_too_small_is_left_alone() {
        let mut frame = RgbImage::from_pixel(120, 90, image::Rgb([1, 2, 3]));
        assert_eq!(stamp_ai_label(&mut frame), None);
        assert!(frame.pixels().all(|p| p.0 == [1, 2, 3]));
    }

    #[test]
    fn glyphs_differ_and_unknown_characters_show_a_question_mark() {
        let letters: Vec<[u8; 7]> = ('A'..='Z').chain('0'..='9').map(glyph).collect();
        for (i, a) in letters.iter().enumerate() {
            for b in &letters[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_eq!(glyph('a'), glyph('A'));
        assert_eq!(glyph('é'), glyph('?'));
        assert_eq!(text_size("AB", 3), (33, 21));
    }
}
