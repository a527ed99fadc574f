//! Where the input faces land on the output canvas.
//!
//! A couple captured in one frame keeps its own arrangement: the frame is scaled to cover the
//! canvas (or less, so both faces fit with room to lean in) and centred on the two faces. Two portraits are each
//! scaled to the same face size and placed left and right of the canvas centre, the first on
//! the left.

use super::mesh::{face_outline, ring};
use super::{MorphConfig, MorphInputs};
use crate::generate::GenerateError;
use crate::types::Landmarks;

/// Horizontal position of the portraits' face centres, fractions of the canvas width.
const PORTRAIT_X: [f32; 2] = [0.3, 0.7];
/// Portrait face size: inter-ocular distance as a fraction of the canvas width, and at most
/// this fraction of its height.
const PORTRAIT_IOD_W: f32 = 0.10;
const PORTRAIT_IOD_H: f32 = 0.16;
/// A couple's faces (with their rings) fill at most this share of the canvas...
const COUPLE_FILL: f32 = 0.95;
/// ...with this share of the distance between them kept beyond each, left and right: each
/// head travels about half that distance, and what lies between it and the canvas border
/// stretches to follow (without room, a head near the border would tear it).
const COUPLE_ROOM: f32 = 0.25;

/// A similarity from an input frame to the canvas: `canvas = input · scale + offset`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Placement {
    pub scale: f32,
    pub offset: [f32; 2],
}

impl Placement {
    /// Input pixel position → canvas position.
    pub fn to_canvas(&self, p: [f32; 2]) -> [f32; 2] {
        [
            p[0] * self.scale + self.offset[0],
            p[1] * self.scale + self.offset[1],
        ]
    }
    /// Canvas position → input pixel position.
    pub fn to_input(&self, p: [f32; 2]) -> [f32; 2] {
        [
            (p[0] - self.offset[0]) / self.scale,
            (p[1] - self.offset[1]) / self.scale,
        ]
    }
    fn landmarks(&self, lm: &Landmarks) -> Landmarks {
        Landmarks(lm.0.map(|p| self.to_canvas(p)))
    }
}

/// The canvas and where each face's input frame is placed on it.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    pub width: u32,
    pub height: u32,
    /// One per face, in input order.
    pub placements: [Placement; 2],
    /// The faces' landmarks on the canvas: what a [`crate::generate::Timeline`] is planned on.
    pub landmarks: [Landmarks; 2],
}

impl Layout {
    /// Places the inputs on a `cfg.width x cfg.height` canvas.
    pub fn plan(cfg: &MorphConfig, inputs: &MorphInputs) -> Result<Self, GenerateError> {
        cfg.validate()?;
        inputs.check()?;
        let (w, h) = (cfg.width as f32, cfg.height as f32);
        let faces = inputs.faces();
        let placements = match inputs {
            MorphInputs::Couple { frame, faces } => {
                let (a, b) = (extent_of(&faces[0]), extent_of(&faces[1]));
                let gap = (0.5 * (a[0] + a[2] - b[0] - b[2])).abs();
                let mut extent = union(&a, &b);
                extent[0] -= COUPLE_ROOM * gap;
                extent[2] += COUPLE_ROOM * gap;
                let (fw, fh) = (frame.width() as f32, frame.height() as f32);
                let cover = (w / fw).max(h / fh);
                let fit = (COUPLE_FILL * w / (extent[2] - extent[0]))
                    .min(COUPLE_FILL * h / (extent[3] - extent[1]));
                let scale = cover.min(fit);
                let offset = [
                    fit_axis(w, scale, fw, extent[0], extent[2]),
                    fit_axis(h, scale, fh, extent[1], extent[3]),
                ];
                [Placement { scale, offset }; 2]
            }
            MorphInputs::Portraits { faces, .. } => {
                let iod = (PORTRAIT_IOD_W * w).min(PORTRAIT_IOD_H * h);
                std::array::from_fn(|k| {
                    let scale = iod / faces[k].inter_ocular();
                    let c = centroid(&faces[k]);
                    Placement {
                        scale,
                        offset: [PORTRAIT_X[k] * w - scale * c[0], 0.5 * h - scale * c[1]],
                    }
                })
            }
        };
        let landmarks = [
            placements[0].landmarks(&faces[0]),
            placements[1].landmarks(&faces[1]),
        ];
        Ok(Self {
            width: cfg.width,
            height: cfg.height,
            placements,
            landmarks,
        })
    }
}

/// Offset along one axis: centred on the faces, covering the canvas where the frame is large
/// enough, and above all keeping the faces inside.
fn fit_axis(canvas: f32, scale: f32, image: f32, lo: f32, hi: f32) -> f32 {
    let mut offset = 0.5 * canvas - scale * 0.5 * (lo + hi);
    if scale * image >= canvas {
        offset = offset.clamp(canvas - scale * image, 0.0);
    }
    let (min, max) = (canvas - scale * hi, -scale * lo);
    if min <= max {
        offset.clamp(min, max)
    } else {
        offset
    }
}

/// Bounding box `[x0, y0, x1, y1]` of a face with its ring: what must stay on the canvas.
fn extent_of(lm: &Landmarks) -> [f32; 4] {
    let outline = face_outline(lm);
    let ring = ring(&outline);
    super::bounds(lm.0.iter().chain(ring.iter().map(|(p, _)| p)))
}

fn union(a: &[f32; 4], b: &[f32; 4]) -> [f32; 4] {
    [
        a[0].min(b[0]),
        a[1].min(b[1]),
        a[2].max(b[2]),
        a[3].max(b[3]),
    ]
}

fn centroid(lm: &Landmarks) -> [f32; 2] {
    let n = lm.0.len() as f32;
    lm.0.iter()
        .fold([0.0; 2], |a, p| [a[0] + p[0] / n, a[1] + p[1] / n])
}
