//! The morph generator: each face warped along a landmark mesh onto the timeline's targets, the
//! two composited over a blurred background, frame by frame.
//!
//! Per face, once: the face's part of its input frame is cropped and scaled to canvas scale,
//! given a feathered alpha mask (the face outline with the forehead, blurred), colour-matched
//! partway toward the other face, and triangulated ([`mesh`]). Per frame: the mesh vertices move
//! to the frame's targets (landmarks with the expression applied, the ring with the head's 3D
//! motion), each triangle is warped back to front, and the two faces are laid over the
//! background, the one behind first.
//!
//! ```
//! use kissbooth_engines::generate::MorphConfig;
//! let cfg: MorphConfig = toml::from_str("width = 1280\nheight = 720").unwrap();
//! cfg.validate().unwrap();
//! assert_eq!(cfg.feather, MorphConfig::default().feather);
//! ```

mod layout;
mod mesh;
mod pixels;

use image::RgbImage;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

pub use layout::{Layout, Placement};
use mesh::{Mesh, Source, Warper, face_outline, ring};

use super::GenerateError;
use super::shape3d::MeanShape;
use super::timeline::{FacePlan, Phase, Timeline, TimelineConfig};
use crate::types::{Landmarks, N_LANDMARKS};

/// Per-frame alpha softening after the warp, as a share of the feather width.
const SOFTEN: f32 = 0.2;

/// Allowed canvas width and height, pixels (each even).
pub const SIZE_RANGE: std::ops::RangeInclusive<u32> = 256..=1920;

/// How frames are rendered. Every field has a default, so an empty TOML table is valid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MorphConfig {
    /// Canvas width, pixels: even, 256..=1920.
    pub width: u32,
    /// Canvas height, pixels: even, 256..=1920.
    pub height: u32,
    /// Width of the soft edge around each face, as a fraction of the face's size, 0.01..=0.3.
    pub feather: f32,
    /// How far the two faces' skin colours move toward their common mean and spread, 0..=1
    /// (0: untouched, 1: identical statistics).
    pub harmonise: f32,
    /// Blur of the background, as a fraction of the canvas's longer side, 0..=0.2.
    pub background_blur: f32,
}

impl Default for MorphConfig {
    fn default() -> Self {
        Self {
            width: 512,
            height: 512,
            feather: 0.08,
            harmonise: 0.5,
            background_blur: 0.03,
        }
    }
}

/// A [`MorphConfig`] field out of its range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MorphConfigError {
    #[error("canvas {width}x{height}: each side must be within {min}..={max}", min = SIZE_RANGE.start(), max = SIZE_RANGE.end())]
    SizeOutOfRange { width: u32, height: u32 },
    #[error("canvas {width}x{height}: each side must be even (video encoders need it)")]
    OddSize { width: u32, height: u32 },
    #[error("feather = {0} is outside 0.01..=0.3")]
    FeatherOutOfRange(f32),
    #[error("harmonise = {0} is outside 0..=1")]
    HarmoniseOutOfRange(f32),
    #[error("background_blur = {0} is outside 0..=0.2")]
    BackgroundBlurOutOfRange(f32),
}

impl MorphConfig {
    /// Checks every field's range.
    pub fn validate(&self) -> Result<(), MorphConfigError> {
        let (width, height) = (self.width, self.height);
        if !SIZE_RANGE.contains(&width) || !SIZE_RANGE.contains(&height) {
            return Err(MorphConfigError::SizeOutOfRange { width, height });
        }
        if width % 2 != 0 || height % 2 != 0 {
            return Err(MorphConfigError::OddSize { width, height });
        }
        if !(0.01..=0.3).contains(&self.feather) {
            return Err(MorphConfigError::FeatherOutOfRange(self.feather));
        }
        if !(0.0..=1.0).contains(&self.harmonise) {
            return Err(MorphConfigError::HarmoniseOutOfRange(self.harmonise));
        }
        if !(0.0..=0.2).contains(&self.background_blur) {
            return Err(MorphConfigError::BackgroundBlurOutOfRange(
                self.background_blur,
            ));
        }
        Ok(())
    }
}

/// What the faces come from, with their landmarks in input-frame pixels.
#[derive(Debug, Clone)]
pub enum MorphInputs {
    /// One frame holding both faces: a couple side by side.
    Couple {
        frame: RgbImage,
        faces: [Landmarks; 2],
    },
    /// Two frames with one face each; the first is placed on the left.
    Portraits {
        frames: [RgbImage; 2],
        faces: [Landmarks; 2],
    },
}

impl MorphInputs {
    /// The two faces' landmarks, input-frame pixels.
    pub fn faces(&self) -> &[Landmarks; 2] {
        match self {
            MorphInputs::Couple { faces, .. } | MorphInputs::Portraits { faces, .. } => faces,
        }
    }

    /// The frame a face comes from.
    pub fn frame(&self, face: usize) -> &RgbImage {
        match self {
            MorphInputs::Couple { frame, .. } => frame,
            MorphInputs::Portraits { frames, .. } => &frames[face.min(1)],
        }
    }

    fn check(&self) -> Result<(), GenerateError> {
        for face in 0..2 {
            let f = self.frame(face);
            if f.width() == 0 || f.height() == 0 {
                return Err(GenerateError::EmptyFrame {
                    index: face,
                    width: f.width(),
                    height: f.height(),
                });
            }
            super::check_landmarks(face, &self.faces()[face])?;
        }
        Ok(())
    }
}

/// What was drawn in the last rendered frame.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameInfo {
    pub index: usize,
    pub phase: Phase,
    /// Index of the face drawn in front.
    pub front: usize,
    /// Each face's landmarks as warped (expression applied), canvas pixels.
    pub landmarks: [Landmarks; 2],
    /// Each face's mouth centre as warped, canvas pixels.
    pub mouth_centres: [[f32; 2]; 2],
}

impl FrameInfo {
    /// Distance between the two warped mouth centres, pixels.
    pub fn mouth_distance(&self) -> f32 {
        let [a, b] = self.mouth_centres;
        ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt()
    }
}

/// One face, ready to warp: its source pixels and mesh, and the buffers reused every frame.
struct FaceLayer {
    source: Source,
    mesh: Mesh,
    /// Ring vertices at rest (canvas pixels) with the landmark each follows.
    ring: Vec<([f32; 2], usize)>,
    /// Depth of each landmark at rest.
    rest_depth: [f32; N_LANDMARKS],
    dest: Vec<[f32; 2]>,
    depth: Vec<f32>,
    warper: Warper,
    /// Radius of the per-frame alpha softening, pixels.
    soften: usize,
    expressed: Landmarks,
}

impl FaceLayer {
    fn build(
        face: usize,
        frame: &RgbImage,
        placement: &Placement,
        rest: &FacePlan,
        feather: f32,
    ) -> Result<Self, GenerateError> {
        let canvas_lm = &rest.landmarks;
        let outline = face_outline(canvas_lm);
        let ring = ring(&outline);
        let bbox = bounds(canvas_lm.0.iter().chain(ring.iter().map(|(p, _)| p)));
        let face_size = {
            let b = bounds(canvas_lm.0.iter());
            (b[2] - b[0]).max(b[3] - b[1])
        };
        // The input rectangle under the face and its ring, at the frame's own resolution.
        let (fw, fh) = (frame.width() as f32, frame.height() as f32);
        let lo = placement.to_input([bbox[0] - 2.0, bbox[1] - 2.0]);
        let hi = placement.to_input([bbox[2] + 2.0, bbox[3] + 2.0]);
        let (ix0, iy0) = (lo[0].floor().clamp(0.0, fw), lo[1].floor().clamp(0.0, fh));
        let (ix1, iy1) = (hi[0].ceil().clamp(0.0, fw), hi[1].ceil().clamp(0.0, fh));
        if ix1 - ix0 < 2.0 || iy1 - iy0 < 2.0 {
            return Err(GenerateError::DegenerateFace {
                face,
                reason: "the face lies outside its frame",
            });
        }
        let (iw, ih) = ((ix1 - ix0) as u32, (iy1 - iy0) as u32);
        let crop = image::imageops::crop_imm(frame, ix0 as u32, iy0 as u32, iw, ih).to_image();
        let rw = ((iw as f32 * placement.scale).round() as u32).max(2);
        let rh = ((ih as f32 * placement.scale).round() as u32).max(2);
        let crop = if (rw, rh) == (iw, ih) {
            crop
        } else {
            image::imageops::resize(&crop, rw, rh, image::imageops::FilterType::Triangle)
        };
        let (sx, sy) = (rw as f32 / iw as f32, rh as f32 / ih as f32);
        let to_crop = |p: [f32; 2]| {
            let q = placement.to_input(p);
            [(q[0] - ix0) * sx, (q[1] - iy0) * sy]
        };
        let (w, h) = (rw as usize, rh as usize);

        // Alpha: the face outline, softened by a blur about `feather` wide.
        let mut mask = vec![0.0f32; w * h];
        let outline_crop: Vec<[f32; 2]> = outline.iter().map(|(p, _)| to_crop(*p)).collect();
        pixels::fill_polygon(&mut mask, w, h, &outline_crop, 1.0);
        let radius = (0.39 * feather * face_size * sx / placement.scale).round() as usize;
        pixels::Blur::default().apply(&mut mask, w, h, 1, radius, 3);
        let mut rgba = Vec::with_capacity(w * h * 4);
        for (px, a) in crop.pixels().zip(mask.iter()) {
            rgba.extend_from_slice(&[
                px[0],
                px[1],
                px[2],
                (a.clamp(0.0, 1.0) * 255.0).round() as u8,
            ]);
        }

        // Mesh: landmarks, ring, then a border around everything.
        let mut points: Vec<[f32; 2]> = canvas_lm.0.iter().map(|p| to_crop(*p)).collect();
        points.extend(ring.iter().map(|(p, _)| to_crop(*p)));
        let drawn = points.len();
        let b = bounds(
            points
                .iter()
                .chain([[0.0, 0.0], [w as f32, h as f32]].iter()),
        );
        let (x0, y0, x1, y1) = (b[0] - 8.0, b[1] - 8.0, b[2] + 8.0, b[3] + 8.0);
        let (xm, ym) = (0.5 * (x0 + x1), 0.5 * (y0 + y1));
        points.extend([
            [x0, y0],
            [xm, y0],
            [x1, y0],
            [x1, ym],
            [x1, y1],
            [xm, y1],
            [x0, y1],
            [x0, ym],
        ]);
        let mesh = Mesh::triangulate(points, drawn).ok_or(GenerateError::Triangulation { face })?;

        Ok(Self {
            source: Source {
                rgba,
                width: w,
                height: h,
            },
            mesh,
            ring,
            rest_depth: rest.depth,
            dest: Vec::with_capacity(drawn),
            depth: Vec::with_capacity(drawn),
            warper: Warper::default(),
            soften: (SOFTEN * feather * face_size).round() as usize,
            expressed: *canvas_lm,
        })
    }

    /// Moves the mesh to a frame's targets and warps the face into its layer.
    fn warp(&mut self, plan: &FacePlan, canvas: (usize, usize)) {
        self.expressed = plan.expressed();
        self.dest.clear();
        self.depth.clear();
        self.dest.extend_from_slice(&self.expressed.0);
        self.depth.extend_from_slice(&plan.depth);
        for &(p, i) in &self.ring {
            let q = plan.motion.apply([p[0], p[1], self.rest_depth[i]]);
            self.dest.push([q[0], q[1]]);
            self.depth.push(q[2]);
        }
        self.warper
            .warp(&self.source, &self.mesh, &self.dest, &self.depth, canvas);
        self.warper.soften_alpha(self.soften);
    }

    /// Moves the skin colours partway toward a common mean and spread: a lookup per channel.
    fn harmonise(&mut self, own: ([f32; 3], [f32; 3]), common: ([f32; 3], [f32; 3]), amount: f32) {
        let luts: [[u8; 256]; 3] = std::array::from_fn(|c| {
            let (m, s) = (own.0[c], own.1[c].max(1.0));
            let mt = m + amount * (common.0[c] - m);
            let st = s + amount * (common.1[c].max(1.0) - s);
            std::array::from_fn(|v| ((v as f32 - m) * st / s + mt).round().clamp(0.0, 255.0) as u8)
        });
        for px in self.source.rgba.chunks_exact_mut(4) {
            for c in 0..3 {
                px[c] = luts[c][px[c] as usize];
            }
        }
    }
}

/// Renders the frames of a planned kiss, one at a time.
///
/// Iterating yields every frame in order; [`MorphGenerator::render`] renders any one frame.
/// After each frame, [`MorphGenerator::last_info`] tells where the faces were drawn.
pub struct MorphGenerator {
    cfg: MorphConfig,
    layout: Layout,
    timeline: Timeline,
    background: RgbImage,
    faces: [FaceLayer; 2],
    next: usize,
    info: Option<FrameInfo>,
}

impl std::fmt::Debug for MorphGenerator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MorphGenerator")
            .field("cfg", &self.cfg)
            .field("frames", &self.timeline.len())
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

impl MorphGenerator {
    /// Places the inputs ([`Layout`]), plans the timeline on the placed faces, and prepares the
    /// generator: the usual way in.
    pub fn plan(
        cfg: MorphConfig,
        timeline: &TimelineConfig,
        shape: &MeanShape,
        inputs: MorphInputs,
    ) -> Result<Self, GenerateError> {
        let layout = Layout::plan(&cfg, &inputs)?;
        let [a, b] = &layout.landmarks;
        let timeline = Timeline::plan(timeline, shape, [a, b], (cfg.width, cfg.height))?;
        Self::new(cfg, inputs, timeline)
    }

    /// Prepares a generator for a timeline planned on [`Layout::landmarks`] of these inputs.
    /// Everything per-session happens here: crops, masks, colour matching, meshes, background.
    pub fn new(
        cfg: MorphConfig,
        inputs: MorphInputs,
        timeline: Timeline,
    ) -> Result<Self, GenerateError> {
        let layout = Layout::plan(&cfg, &inputs)?;
        let (planned_width, planned_height) = timeline.frame_size();
        if (planned_width, planned_height) != (cfg.width, cfg.height) {
            return Err(GenerateError::CanvasMismatch {
                planned_width,
                planned_height,
                width: cfg.width,
                height: cfg.height,
            });
        }
        for face in 0..2 {
            let (planned, placed) = (&timeline.rest_faces()[face], &layout.landmarks[face]);
            let pixels = planned.mean_distance(placed);
            // Written so that NaN is a mismatch too.
            if pixels.is_nan() || pixels > 0.01 * placed.inter_ocular() + 0.5 {
                return Err(GenerateError::TimelineMismatch { face, pixels });
            }
        }
        let rest = timeline
            .frame(0)
            .ok_or(GenerateError::FrameOutOfRange { index: 0, len: 0 })?;
        let build = |k: usize| {
            FaceLayer::build(
                k,
                inputs.frame(k),
                &layout.placements[k],
                &rest.faces[k],
                cfg.feather,
            )
        };
        let mut faces = [build(0)?, build(1)?];
        let stats = [
            pixels::masked_stats(&faces[0].source.rgba),
            pixels::masked_stats(&faces[1].source.rgba),
        ];
        if let [Some(a), Some(b)] = stats
            && cfg.harmonise > 0.0
        {
            let avg = |x: [f32; 3], y: [f32; 3]| std::array::from_fn(|c| 0.5 * (x[c] + y[c]));
            let common = (avg(a.0, b.0), avg(a.1, b.1));
            faces[0].harmonise(a, common, cfg.harmonise);
            faces[1].harmonise(b, common, cfg.harmonise);
        }
        let background = background(&cfg, &inputs, &layout);
        Ok(Self {
            cfg,
            layout,
            timeline,
            background,
            faces,
            next: 0,
            info: None,
        })
    }

    /// The planned timeline.
    pub fn timeline(&self) -> &Timeline {
        &self.timeline
    }
    /// Where the inputs were placed.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }
    /// Number of frames.
    pub fn frame_count(&self) -> usize {
        self.timeline.len()
    }
    /// What the last rendered frame drew.
    pub fn last_info(&self) -> Option<&FrameInfo> {
        self.info.as_ref()
    }
    /// The warped mouth centres of the last rendered frame.
    pub fn last_mouth_centres(&self) -> Option<[[f32; 2]; 2]> {
        self.info.as_ref().map(|i| i.mouth_centres)
    }

    /// Renders the next frame in order; `None` after the last.
    pub fn next_frame(&mut self) -> Option<Result<RgbImage, GenerateError>> {
        let index = self.next;
        if index >= self.timeline.len() {
            return None;
        }
        self.next += 1;
        Some(self.render(index))
    }

    /// Renders one frame.
    pub fn render(&mut self, index: usize) -> Result<RgbImage, GenerateError> {
        let len = self.timeline.len();
        let plan = self
            .timeline
            .frame(index)
            .ok_or(GenerateError::FrameOutOfRange { index, len })?;
        let (w, h) = (self.cfg.width as usize, self.cfg.height as usize);
        for (layer, face) in self.faces.iter_mut().zip(plan.faces.iter()) {
            layer.warp(face, (w, h));
        }
        let mut out = self.background.clone();
        let front = plan.front.min(1);
        for k in [1 - front, front] {
            composite(&mut out, w, &self.faces[k].warper);
        }
        let landmarks = [self.faces[0].expressed, self.faces[1].expressed];
        self.info = Some(FrameInfo {
            index,
            phase: plan.phase,
            front,
            mouth_centres: landmarks.map(|l| l.mouth_centre()),
            landmarks,
        });
        Ok(out)
    }
}

impl Iterator for MorphGenerator {
    type Item = Result<RgbImage, GenerateError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_frame()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.timeline.len().saturating_sub(self.next);
        (left, Some(left))
    }
}

impl ExactSizeIterator for MorphGenerator {}

/// Lays a warped face over the frame with its alpha.
fn composite(out: &mut [u8], width: usize, warper: &Warper) {
    let r = warper.region;
    if r.width == 0 || r.height == 0 {
        return;
    }
    let rows = &mut out[r.y0 * width * 3..(r.y0 + r.height) * width * 3];
    rows.par_chunks_mut(width * 3)
        .zip(warper.layer.par_chunks(r.width * 4))
        .for_each(|(row, layer)| {
            let row = &mut row[r.x0 * 3..(r.x0 + r.width) * 3];
            for (o, px) in row.chunks_exact_mut(3).zip(layer.chunks_exact(4)) {
                let a = px[3] as u32;
                if a == 0 {
                    continue;
                }
                for c in 0..3 {
                    o[c] = ((o[c] as u32 * (255 - a) + px[c] as u32 * a + 127) / 255) as u8;
                }
            }
        });
}

/// The shared background: the input frame(s) as placed on the canvas, heavily blurred. Two
/// portraits meet in a soft seam down the middle.
fn background(cfg: &MorphConfig, inputs: &MorphInputs, layout: &Layout) -> RgbImage {
    let (w, h) = (cfg.width as usize, cfg.height as usize);
    let mut buf = vec![0.0f32; w * h * 3];
    buf.par_chunks_mut(w * 3).enumerate().for_each(|(y, row)| {
        for (x, px) in row.chunks_exact_mut(3).enumerate() {
            let p = [x as f32 + 0.5, y as f32 + 0.5];
            let from =
                |k: usize| pixels::sample_rgb(inputs.frame(k), layout.placements[k].to_input(p));
            let rgb = match inputs {
                MorphInputs::Couple { .. } => from(0),
                MorphInputs::Portraits { .. } => {
                    let t = ((p[0] / w as f32 - 0.45) / 0.1).clamp(0.0, 1.0);
                    let (a, b) = (from(0), from(1));
                    std::array::from_fn(|c| a[c] + (b[c] - a[c]) * t)
                }
            };
            px.copy_from_slice(&rgb);
        }
    });
    let radius = (cfg.background_blur * w.max(h) as f32).round() as usize;
    pixels::Blur::default().apply(&mut buf, w, h, 3, radius, 3);
    let mut image = RgbImage::new(cfg.width, cfg.height);
    for (out, v) in image.iter_mut().zip(buf) {
        *out = v.round().clamp(0.0, 255.0) as u8;
    }
    image
}

/// Bounding box `[x0, y0, x1, y1]` of points.
fn bounds<'a>(points: impl Iterator<Item = &'a [f32; 2]>) -> [f32; 4] {
    points.fold([f32::MAX, f32::MAX, f32::MIN, f32::MIN], |b, p| {
        [
            b[0].min(p[0]),
            b[1].min(p[1]),
            b[2].max(p[0]),
            b[3].max(p[1]),
        ]
    })
}
