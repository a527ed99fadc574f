//! The scene a kiss is filmed in: each person cut out as a layer, and the background behind
//! them rebuilt, so that moving a person never smears or stretches the room.
//!
//! - **One capture** ([`MorphInputs::Couple`]): the scene is the capture. The person mask (from
//!   the segmentation model, or drawn from the faces when there is none) is split between the two
//!   people at the midline between their faces, and the background behind both is rebuilt from
//!   its surroundings ([`pixels::fill_holes`]: a pull-push fill from the pixels around).
//! - **Two portraits** ([`MorphInputs::Portraits`]): both people stand on one designed backdrop
//!   (a soft vertical gradient in the colours of the portraits' own backgrounds, darker at the
//!   corners), scaled to the same face size, faces at one height, each cut out by their own mask.
//!   There is no seam: nothing of either portrait's own background is kept.
//!
//! Everything after this works in scene pixels; the virtual camera ([`super::camera`]) frames
//! the scene for the output.

use image::RgbImage;
use rayon::prelude::*;

use super::mesh::Source;
use super::pixels;
use super::{MorphConfig, MorphGuides, MorphInputs, PersonMask};
use crate::generate::GenerateError;
use crate::types::Landmarks;

/// Person probability above which a pixel is rebuilt in the background.
const HOLE_FROM: f32 = 0.12;
/// The hole is grown by this share of the inter-ocular distance, so no hair fringe is left in
/// the rebuilt background.
const HOLE_GROW: f32 = 0.18;
/// Two portraits: the faces' inter-ocular distance in the scene, pixels...
const PORTRAIT_IOD: f32 = 110.0;
/// ...the distance between the two face centres, in inter-ocular distances...
const PORTRAIT_APART: f32 = 4.6;
/// ...and the room kept beside the outer faces and above the heads, in inter-ocular distances.
const PORTRAIT_SIDE: f32 = 3.6;
const PORTRAIT_TOP: f32 = 3.2;
/// Where a person is cut by the edge of their picture (a hat at a portrait's top, a shoulder
/// at the capture's side, seen from beyond it), they fade out over this many inter-ocular
/// distances instead of ending in a straight line.
pub(crate) const EDGE_FADE: f32 = 0.8;
/// Where the camera sees past the scene's edge, the picture fades into what it sees there over
/// this many inter-ocular distances.
pub(crate) const SCENE_EDGE_FADE: f32 = 1.5;
/// Largest share of a portrait's height below the face that is kept (the rest is cut by the
/// scene's bottom edge).
const PORTRAIT_BODY: f32 = 6.0;

/// The scene: the rebuilt background, each person's layer, and the faces, all in scene pixels.
pub(crate) struct Scene {
    pub width: usize,
    pub height: usize,
    /// The background with both people removed and rebuilt.
    pub plate: RgbImage,
    /// Each person: the scene's colours, alpha = that person's mask.
    pub people: [Source; 2],
    pub faces: [Landmarks; 2],
    /// Each face's dense mesh in scene pixels (x, y, depth), when one was given.
    pub meshes: [Option<Vec<[f32; 3]>>; 2],
    /// Colour shown where the camera sees past the scene's edge.
    pub backdrop: [u8; 3],
    /// Whether the scene was composed from two portraits.
    pub portraits: bool,
}

impl Scene {
    pub fn build(
        inputs: &MorphInputs,
        guides: &MorphGuides,
        cfg: &MorphConfig,
    ) -> Result<Self, GenerateError> {
        let mut scene = match inputs {
            MorphInputs::Couple { frame, faces } => couple(frame, faces, guides, cfg),
            MorphInputs::Portraits { frames, faces } => portraits(frames, faces, guides),
        };
        // Soften each cut-out's edge.
        for (person, face) in scene.people.iter_mut().zip(&scene.faces) {
            let radius = (cfg.feather * face.inter_ocular()).round() as usize;
            soften_alpha(person, radius);
        }
        Ok(scene)
    }
}

fn couple(
    frame: &RgbImage,
    faces: &[Landmarks; 2],
    guides: &MorphGuides,
    cfg: &MorphConfig,
) -> Scene {
    let (w, h) = (frame.width() as usize, frame.height() as usize);
    let mask = match &guides.masks[0] {
        Some(m) if m.width == frame.width() && m.height == frame.height() => m.data.clone(),
        _ => drawn_mask(w, h, faces),
    };
    let iod = 0.5 * (faces[0].inter_ocular() + faces[1].inter_ocular());
    let plate = rebuild_background(frame, &mask, iod, cfg.background_blur);
    // Split at the midline between the faces, softly.
    let cx = [centre(&faces[0])[0], centre(&faces[1])[0]];
    let mid = 0.5 * (cx[0] + cx[1]);
    let toward = if cx[1] >= cx[0] { 1.0 } else { -1.0 };
    let ramp = (0.03 * (cx[1] - cx[0]).abs()).max(2.0);
    let share1: Vec<f32> = (0..w)
        .map(|x| smooth((0.5 + toward * (x as f32 + 0.5 - mid) / ramp).clamp(0.0, 1.0)))
        .collect();
    let layer = |k: usize| -> Source {
        let mut rgba = vec![0u8; w * h * 4];
        rgba.par_chunks_mut(w * 4).enumerate().for_each(|(y, row)| {
            let src = &frame.as_raw()[y * w * 3..(y + 1) * w * 3];
            for x in 0..w {
                let s = if k == 1 { share1[x] } else { 1.0 - share1[x] };
                let a = mask[y * w + x] * s;
                row[x * 4..x * 4 + 3].copy_from_slice(&src[x * 3..x * 3 + 3]);
                row[x * 4 + 3] = (a * 255.0 + 0.5).clamp(0.0, 255.0) as u8;
            }
        });
        Source {
            rgba,
            width: w,
            height: h,
        }
    };
    let backdrop = edge_colour(&plate);
    Scene {
        width: w,
        height: h,
        plate,
        people: [layer(0), layer(1)],
        faces: *faces,
        meshes: guides.meshes.clone(),
        backdrop,
        portraits: false,
    }
}

/// Where a portrait lands in the scene: `scene = input · scale + offset`.
#[derive(Debug, Clone, Copy)]
struct Placement {
    scale: f32,
    offset: [f32; 2],
}

impl Placement {
    fn to_scene(self, p: [f32; 2]) -> [f32; 2] {
        [
            p[0] * self.scale + self.offset[0],
            p[1] * self.scale + self.offset[1],
        ]
    }
    fn to_input(self, p: [f32; 2]) -> [f32; 2] {
        [
            (p[0] - self.offset[0]) / self.scale,
            (p[1] - self.offset[1]) / self.scale,
        ]
    }
}

fn portraits(frames: &[RgbImage; 2], faces: &[Landmarks; 2], guides: &MorphGuides) -> Scene {
    let masks: [Vec<f32>; 2] = std::array::from_fn(|k| {
        let f = &frames[k];
        match &guides.masks[k] {
            Some(m) if m.width == f.width() && m.height == f.height() => m.data.clone(),
            _ => drawn_mask(f.width() as usize, f.height() as usize, &[faces[k]]),
        }
    });
    // Same face size; faces at one height, PORTRAIT_APART apart.
    let scale: [f32; 2] = std::array::from_fn(|k| PORTRAIT_IOD / faces[k].inter_ocular().max(1.0));
    let c: [[f32; 2]; 2] = std::array::from_fn(|k| centre(&faces[k]));
    let face_x = [
        PORTRAIT_SIDE * PORTRAIT_IOD,
        (PORTRAIT_SIDE + PORTRAIT_APART) * PORTRAIT_IOD,
    ];
    let face_y = PORTRAIT_TOP * PORTRAIT_IOD;
    let place: [Placement; 2] = std::array::from_fn(|k| Placement {
        scale: scale[k],
        offset: [face_x[k] - c[k][0] * scale[k], face_y - c[k][1] * scale[k]],
    });
    // The scene ends where the shorter portrait ends, so nobody floats above the bottom edge.
    let bottom = (0..2)
        .map(|k| place[k].to_scene([0.0, frames[k].height() as f32])[1])
        .fold(f32::MAX, f32::min)
        .min(face_y + PORTRAIT_BODY * PORTRAIT_IOD);
    let width = ((face_x[1] + PORTRAIT_SIDE * PORTRAIT_IOD).round() as usize / 2) * 2;
    let height = ((bottom.floor() as usize).max(face_y as usize + PORTRAIT_IOD as usize) / 2) * 2;

    let background: [[f32; 3]; 2] =
        std::array::from_fn(|k| background_colour(&frames[k], &masks[k]));
    let plate = backdrop(width, height, background);
    let layer = |k: usize| -> Source {
        let band = EDGE_FADE * faces[k].inter_ocular().max(1.0);
        portrait_layer(&frames[k], &masks[k], place[k], band, (width, height))
    };
    let faces_in_scene: [Landmarks; 2] =
        std::array::from_fn(|k| Landmarks(faces[k].0.map(|p| place[k].to_scene(p))));
    let meshes = std::array::from_fn(|k| {
        guides.meshes[k].as_ref().map(|m| {
            m.iter()
                .map(|p| {
                    let q = place[k].to_scene([p[0], p[1]]);
                    [q[0], q[1], p[2] * place[k].scale]
                })
                .collect()
        })
    });
    let backdrop = edge_colour(&plate);
    Scene {
        width,
        height,
        plate,
        people: [layer(0), layer(1)],
        faces: faces_in_scene,
        meshes,
        backdrop,
        portraits: true,
    }
}

impl Scene {
    /// Fades the scene into what the camera sees past its `edges` (top, bottom, left, right)
    /// over `band` scene pixels: the background toward `glow` (the soft continuation beyond the
    /// edge, which it meets there), and the people's colours with it. No straight line where
    /// the picture ends.
    pub fn soften_edges(
        &mut self,
        edges: [bool; 4],
        band: f32,
        glow: impl Fn([f32; 2]) -> [f32; 3],
    ) {
        if !edges.iter().any(|e| *e) {
            return;
        }
        let (w, h) = (self.width, self.height);
        let size = (w as f32, h as f32);
        for (x, y, px) in self.plate.enumerate_pixels_mut() {
            let p = [x as f32 + 0.5, y as f32 + 0.5];
            let keep = edge_keep(p, size, edges, band);
            if keep < 1.0 {
                let g = glow(p);
                for c in 0..3 {
                    let v = g[c] + (px[c] as f32 - g[c]) * keep;
                    px[c] = (v + 0.5).clamp(0.0, 255.0) as u8;
                }
            }
        }
        // The people fade in colour, not in cover: behind them is only the rebuilt background.
        for person in &mut self.people {
            let pw = person.width;
            for (i, px) in person.rgba.chunks_exact_mut(4).enumerate() {
                let p = [(i % pw) as f32 + 0.5, (i / pw) as f32 + 0.5];
                let keep = edge_keep(p, size, edges, band);
                if keep < 1.0 && px[3] > 0 {
                    let g = glow(p);
                    for c in 0..3 {
                        let v = g[c] + (px[c] as f32 - g[c]) * keep;
                        px[c] = (v + 0.5).clamp(0.0, 255.0) as u8;
                    }
                }
            }
        }
    }
}

/// How much of a picture `size` to keep at `p`: 1 farther than `band` from each of the chosen
/// `edges` (top, bottom, left, right), falling smoothly to 0 on them.
fn edge_keep(p: [f32; 2], size: (f32, f32), edges: [bool; 4], band: f32) -> f32 {
    let dist = [p[1], size.1 - p[1], p[0], size.0 - p[0]];
    let d = edges
        .iter()
        .zip(dist)
        .filter(|(e, _)| **e)
        .map(|(_, d)| d)
        .fold(f32::MAX, f32::min);
    smooth((d / band.max(1.0)).clamp(0.0, 1.0))
}

/// One portrait's layer on a `width` x `height` scene where it stands at `place`: its colours,
/// alpha its mask, fading over `band` input pixels toward the picture's top and sides (its
/// bottom is below the scene's).
fn portrait_layer(
    frame: &RgbImage,
    mask: &[f32],
    place: Placement,
    band: f32,
    (width, height): (usize, usize),
) -> Source {
    let (fw, fh) = (frame.width() as usize, frame.height() as usize);
    let mut rgba = vec![0u8; width * height * 4];
    rgba.par_chunks_mut(width * 4)
        .enumerate()
        .for_each(|(y, row)| {
            for x in 0..width {
                let p = place.to_input([x as f32 + 0.5, y as f32 + 0.5]);
                if p[0] < 0.0 || p[1] < 0.0 || p[0] >= fw as f32 || p[1] >= fh as f32 {
                    continue;
                }
                let rgb = pixels::sample_rgb(frame, p);
                let a = sample_plane(mask, fw, fh, p)
                    * edge_keep(p, (fw as f32, fh as f32), [true, false, true, true], band);
                for (o, v) in row[x * 4..x * 4 + 3].iter_mut().zip(rgb) {
                    *o = (v + 0.5).clamp(0.0, 255.0) as u8;
                }
                row[x * 4 + 3] = (a * 255.0 + 0.5).clamp(0.0, 255.0) as u8;
            }
        });
    Source {
        rgba,
        width,
        height,
    }
}

/// The background of a frame with the people removed: the hole (the person mask, grown a
/// little) filled from the pixels around it.
fn rebuild_background(frame: &RgbImage, mask: &[f32], iod: f32, smoothing: f32) -> RgbImage {
    let (w, h) = (frame.width() as usize, frame.height() as usize);
    let mut known: Vec<f32> = mask
        .iter()
        .map(|&m| if m > HOLE_FROM { 0.0 } else { 1.0 })
        .collect();
    // Grow the hole: a known pixel next to a hole within `grow` pixels becomes a hole.
    let grow = (HOLE_GROW * iod).round().max(1.0) as usize;
    let mut blur = pixels::Blur::default();
    blur.apply(&mut known, w, h, 1, grow, 1);
    // Only pixels with no person within `grow` count as known, fading in over the last part.
    for k in known.iter_mut() {
        *k = ((*k - 0.9) * 10.0).clamp(0.0, 1.0);
    }
    let rgb: Vec<f32> = frame.as_raw().iter().map(|&v| v as f32).collect();
    let mut filled = pixels::fill_holes(&rgb, &known, w, h);
    let radius = (smoothing * 10.0 * iod).round() as usize;
    if radius > 0 {
        let mut smooth = filled.clone();
        blur.apply(&mut smooth, w, h, 3, radius, 2);
        for (i, k) in known.iter().enumerate() {
            if *k < 1.0 {
                filled[i * 3..i * 3 + 3].copy_from_slice(&smooth[i * 3..i * 3 + 3]);
            }
        }
    }
    let mut out = RgbImage::new(w as u32, h as u32);
    for (o, v) in out.iter_mut().zip(filled) {
        *o = (v + 0.5).clamp(0.0, 255.0) as u8;
    }
    out
}

/// Blurs the alpha channel of a layer.
fn soften_alpha(layer: &mut Source, radius: usize) {
    if radius == 0 {
        return;
    }
    let mut alpha: Vec<f32> = layer.rgba.chunks_exact(4).map(|p| p[3] as f32).collect();
    pixels::Blur::default().apply(&mut alpha, layer.width, layer.height, 1, radius, 2);
    for (p, a) in layer.rgba.chunks_exact_mut(4).zip(alpha) {
        p[3] = (a + 0.5).clamp(0.0, 255.0) as u8;
    }
}

/// A person mask drawn from the faces alone (no segmentation model): per face a head (hair
/// above, ears beside) and shoulders widening down to the frame's bottom, feathered.
pub(crate) fn drawn_mask(w: usize, h: usize, faces: &[Landmarks]) -> Vec<f32> {
    let mut mask = vec![0.0f32; w * h];
    let mut feather = 1.0f32;
    for lm in faces {
        let iod = lm.inter_ocular().max(1.0);
        feather = feather.max(0.12 * iod);
        let (l, r) = (lm.eye_left(), lm.eye_right());
        let right = [(r[0] - l[0]) / iod, (r[1] - l[1]) / iod];
        let up = [right[1], -right[0]];
        let c = centre(lm);
        let at = |u: f32, v: f32| {
            [
                c[0] + u * iod * right[0] + v * iod * up[0],
                c[1] + u * iod * right[1] + v * iod * up[1],
            ]
        };
        // Head: an ellipse around the face and hair.
        let head: Vec<[f32; 2]> = (0..40)
            .map(|i| {
                let a = i as f32 / 40.0 * std::f32::consts::TAU;
                at(1.35 * a.cos(), 0.35 + 1.75 * a.sin())
            })
            .collect();
        pixels::fill_polygon(&mut mask, w, h, &head, 1.0);
        // Neck and shoulders, down past the bottom edge.
        let below = (h as f32 - c[1]) / iod + 2.0;
        let body = [
            at(-0.6, -1.0),
            at(0.6, -1.0),
            at(0.7, -1.9),
            at(2.6, -2.6),
            at(3.2, -below),
            at(-3.2, -below),
            at(-2.6, -2.6),
            at(-0.7, -1.9),
        ];
        pixels::fill_polygon(&mut mask, w, h, &body, 1.0);
    }
    pixels::Blur::default().apply(&mut mask, w, h, 1, feather.round() as usize, 2);
    mask
}

/// The mean colour of a frame's background (where the mask says no person), or a neutral grey.
fn background_colour(frame: &RgbImage, mask: &[f32]) -> [f32; 3] {
    let (mut sum, mut n) = ([0.0f64; 3], 0.0f64);
    for (px, &m) in frame.pixels().zip(mask) {
        if m < 0.1 {
            for c in 0..3 {
                sum[c] += px[c] as f64;
            }
            n += 1.0;
        }
    }
    if n < 1.0 {
        return [70.0, 70.0, 76.0];
    }
    std::array::from_fn(|c| (sum[c] / n) as f32)
}

/// The designed backdrop for two portraits: a vertical gradient between the two background
/// colours' mean (lighter above, darker below), with darker corners.
fn backdrop(w: usize, h: usize, colours: [[f32; 3]; 2]) -> RgbImage {
    let mean: [f32; 3] = std::array::from_fn(|c| 0.5 * (colours[0][c] + colours[1][c]));
    let top: [f32; 3] = mean.map(|v| (v * 1.12 + 10.0).min(235.0));
    let bottom: [f32; 3] = mean.map(|v| v * 0.72);
    let mut img = RgbImage::new(w as u32, h as u32);
    for (x, y, px) in img.enumerate_pixels_mut() {
        let t = y as f32 / h.max(1) as f32;
        let (dx, dy) = (x as f32 / w as f32 - 0.5, y as f32 / h as f32 - 0.45);
        let vignette = 1.0 - 0.35 * (dx * dx * 2.2 + dy * dy * 1.6).min(1.0);
        for c in 0..3 {
            px[c] = ((top[c] + (bottom[c] - top[c]) * t) * vignette).clamp(0.0, 255.0) as u8;
        }
    }
    img
}

/// The mean colour of an image's border, darkened: the backdrop beyond the scene's edge.
fn edge_colour(img: &RgbImage) -> [u8; 3] {
    let (w, h) = (img.width(), img.height());
    let (mut sum, mut n) = ([0u64; 3], 0u64);
    for (x, y, px) in img.enumerate_pixels() {
        if x == 0 || y == 0 || x + 1 == w || y + 1 == h {
            for c in 0..3 {
                sum[c] += px[c] as u64;
            }
            n += 1;
        }
    }
    std::array::from_fn(|c| ((sum[c] / n.max(1)) as f32 * 0.45) as u8)
}

fn sample_plane(plane: &[f32], w: usize, h: usize, p: [f32; 2]) -> f32 {
    let fx = (p[0] - 0.5).clamp(0.0, (w - 1) as f32);
    let fy = (p[1] - 0.5).clamp(0.0, (h - 1) as f32);
    let (x0, y0) = (fx as usize, fy as usize);
    let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
    let (ax, ay) = (fx - x0 as f32, fy - y0 as f32);
    let at = |x: usize, y: usize| plane[y * w + x];
    let top = at(x0, y0) + (at(x1, y0) - at(x0, y0)) * ax;
    let bottom = at(x0, y1) + (at(x1, y1) - at(x0, y1)) * ax;
    top + (bottom - top) * ay
}

/// The centre of a face: the mean of its landmarks.
pub(crate) fn centre(lm: &Landmarks) -> [f32; 2] {
    let n = lm.0.len() as f32;
    let s =
        lm.0.iter()
            .fold([0.0f32; 2], |a, p| [a[0] + p[0], a[1] + p[1]]);
    [s[0] / n, s[1] / n]
}

fn smooth(x: f32) -> f32 {
    x * x * (3.0 - 2.0 * x)
}

impl PersonMask {
    /// Checks that a mask is the size it claims and holds probabilities.
    pub fn is_valid(&self) -> bool {
        self.data.len() == self.width as usize * self.height as usize
            && self.data.iter().all(|v| v.is_finite())
    }
}
