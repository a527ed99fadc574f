//! The event's name as a title in a portrait clip. A couple's landscape capture (or two
//! portraits side by side) fills a 720x1280 clip's width but not its height: above them the
//! camera sees a soft backdrop (see the morph's `Beyond`). The event's name goes there, in the
//! booth's warm gold with a soft shadow, so the space reads as a designed layout, not an empty
//! band. Set in DejaVu Sans Bold (Debian's `fonts-dejavu-core`); without the font the clip goes
//! without a title and the log says so once.

use std::sync::OnceLock;

use ab_glyph::{Font, FontVec, PxScale, ScaleFont, point};
use image::{Rgba, RgbaImage};

/// Where the font is read from (Debian `fonts-dejavu-core`).
pub const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf";

fn font() -> Option<&'static FontVec> {
    static FONT_DATA: OnceLock<Option<FontVec>> = OnceLock::new();
    FONT_DATA
        .get_or_init(|| {
            let loaded = std::fs::read(FONT)
                .map_err(|e| e.to_string())
                .and_then(|b| FontVec::try_from_vec(b).map_err(|e| e.to_string()));
            match loaded {
                Ok(f) => Some(f),
                Err(why) => {
                    tracing::warn!(font = FONT, %why, "no font for the event's title: clips go without it");
                    None
                }
            }
        })
        .as_ref()
}

/// Whether a clip of this size has the backdrop above the couple that the title sits in.
pub fn has_room(width: u32, height: u32) -> bool {
    height * 10 >= width * 14
}

/// The title layer for a `width` x `height` clip: the name centred near the top, at most 90 %
/// of the width. `None` for an empty name, a clip without the room, or no font.
pub fn title(name: &str, width: u32, height: u32) -> Option<RgbaImage> {
    let name = name.trim();
    if name.is_empty() || !has_room(width, height) {
        return None;
    }
    let font = font()?;
    let mut size = height as f32 * 0.042;
    let measure = |size: f32| {
        let f = font.as_scaled(PxScale::from(size));
        let mut w = 0.0;
        let mut prev = None;
        for c in name.chars() {
            let id = f.glyph_id(c);
            if let Some(p) = prev {
                w += f.kern(p, id);
            }
            w += f.h_advance(id);
            prev = Some(id);
        }
        w
    };
    let max = width as f32 * 0.9;
    let w = measure(size);
    if w > max {
        size *= max / w;
    }
    let scaled = font.as_scaled(PxScale::from(size));
    let width_px = measure(size);
    let x0 = (width as f32 - width_px) / 2.0;
    let baseline = height as f32 * 0.062 + scaled.ascent() * 0.5;
    let mut layer = RgbaImage::new(width, height);
    let shadow = (size * 0.06).max(1.5);
    // The shadow first (offset, dark), then the letters (gold).
    for (dx, dy, colour) in [
        (shadow, shadow, [10u8, 6, 4, 150u8]),
        (0.0, 0.0, [255u8, 200, 130, 255u8]),
    ] {
        let mut x = x0 + dx;
        let mut prev = None;
        for c in name.chars() {
            let id = scaled.glyph_id(c);
            if let Some(p) = prev {
                x += scaled.kern(p, id);
            }
            let glyph = id.with_scale_and_position(scaled.scale(), point(x, baseline + dy));
            x += scaled.h_advance(id);
            prev = Some(id);
            let Some(outline) = font.outline_glyph(glyph) else {
                continue;
            };
            let b = outline.px_bounds();
            outline.draw(|gx, gy, cov| {
                let (px, py) = (b.min.x as i64 + gx as i64, b.min.y as i64 + gy as i64);
                if px < 0 || py < 0 || px >= width as i64 || py >= height as i64 {
                    return;
                }
                let a = (cov.clamp(0.0, 1.0) * colour[3] as f32) as u8;
                let dst = layer.get_pixel_mut(px as u32, py as u32);
                // "Over" on the layer itself, so the letters cover their shadow.
                let (sa, da) = (a as f32 / 255.0, dst.0[3] as f32 / 255.0);
                let oa = sa + da * (1.0 - sa);
                if oa <= 0.0 {
                    return;
                }
                let mix = |s: u8, d: u8| {
                    ((s as f32 * sa + d as f32 * da * (1.0 - sa)) / oa).round() as u8
                };
                *dst = Rgba([
                    mix(colour[0], dst.0[0]),
                    mix(colour[1], dst.0[1]),
                    mix(colour[2], dst.0[2]),
                    (oa * 255.0).round() as u8,
                ]);
            });
        }
    }
    Some(layer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_portrait_clip_gets_the_name_centred_at_the_top_and_nothing_else() {
        if font().is_none() {
            eprintln!("SKIPPED: no {FONT} (Debian fonts-dejavu-core)");
            return;
        }
        assert!(title("", 720, 1280).is_none(), "no name, no title");
        assert!(
            title("Summer Ball", 720, 720).is_none(),
            "no room in a square clip"
        );
        assert!(title("Summer Ball", 1280, 720).is_none());
        let t = title("Summer Ball", 720, 1280).expect("a title");
        assert_eq!(t.dimensions(), (720, 1280));
        let (mut x0, mut x1, mut y0, mut y1) = (u32::MAX, 0, u32::MAX, 0);
        for (x, y, p) in t.enumerate_pixels() {
            if p.0[3] > 128 {
                (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
            }
        }
        assert!(x0 < x1, "letters were drawn");
        let centre = (x0 + x1) as f32 / 2.0;
        assert!((centre - 360.0).abs() < 12.0, "centred: {x0}..{x1}");
        assert!(
            y0 > 40 && y1 < 200,
            "near the top, above the people: {y0}..{y1}"
        );
        // A long name shrinks to fit the width instead of leaving the frame.
        let long = title(&"Anna & Ben's wedding ".repeat(3), 720, 1280).unwrap();
        let xs: Vec<u32> = long
            .enumerate_pixels()
            .filter(|(_, _, p)| p.0[3] > 128)
            .map(|(x, _, _)| x)
            .collect();
        assert!(*xs.iter().min().unwrap() >= 30 && *xs.iter().max().unwrap() <= 690);
    }
}
