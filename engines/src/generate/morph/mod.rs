//! The morph generator: each person warped as a whole, along one smooth mesh, onto the
//! timeline's targets, frame by frame.
//!
//! Per person, once ([`person`]): the capture as placed on the canvas, sharp, and a mesh over
//! the whole canvas: the face's landmarks, the head around them (hair, ears), the neck and
//! shoulders, and a grid out to the canvas border, whose points only slide along the border.
//! Per frame: the landmarks go to the frame's targets (expression applied), the head moves
//! rigidly with its 3D motion, and everything else follows with a motion that fades smoothly
//! with the distance from the head, to nothing at the border and toward the body. Each person
//! is one such warp of the capture: no cut-out, no ghost left behind.
//!
//! Compositing: each person's layer owns its side of a soft seam between the two (the canvas
//! middle for two portraits). As the heads lean in, the two sides overlap; there the layer in
//! front shows only its head (face, hair and neck, with a feathered mask), over the layer
//! behind. Where neither side reaches (it should not happen), a blurred copy of the inputs
//! fills in.
//!
//! ```
//! use kissbooth_engines::generate::MorphConfig;
//! let cfg: MorphConfig = toml::from_str("width = 1280\nheight = 720").unwrap();
//! cfg.validate().unwrap();
//! assert_eq!(cfg.feather, MorphConfig::default().feather);
//! ```

mod layout;
pub(crate) mod mesh;
mod person;
mod pixels;

use image::RgbImage;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

pub use layout::{Layout, Placement};
use person::PersonLayer;

use super::GenerateError;
use super::shape3d::MeanShape;
use super::timeline::{Phase, Timeline, TimelineConfig};
use crate::types::Landmarks;

/// Width of the soft seam between the two people's halves: a share of the distance between the
/// faces (one capture) or of the canvas width (two portraits).
const SEAM_COUPLE: f32 = 0.12;
const SEAM_PORTRAITS: f32 = 0.1;
/// Where the canvas reaches beyond an input frame, the frame's edge fades into the blurred
/// fill over this many input pixels.
const FILL_EDGE: f32 = 6.0;

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
    /// Width of the soft edge of each head's mask (where the head in front covers the other
    /// near contact), as a fraction of the face's size, 0.01..=0.3.
    pub feather: f32,
    /// Two portraits only (one capture shares its light): how far the two portraits' skin
    /// colours move toward their common mean and spread, 0..=1 (0: untouched, 1: identical
    /// statistics).
    pub harmonise: f32,
    /// Blur of the fill shown where no person's layer reaches (normally nowhere: the warps
    /// cover the canvas), as a fraction of the canvas's longer side, 0..=0.2.
    pub background_blur: f32,
}

impl Default for MorphConfig {
    fn default() -> Self {
        Self {
            width: 512,
            height: 512,
            feather: 0.08,
            harmonise: 0.5,
            background_blur: 0.08,
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

/// Renders the frames of a planned kiss, one at a time.
///
/// Iterating yields every frame in order; [`MorphGenerator::render`] renders any one frame.
/// After each frame, [`MorphGenerator::last_info`] tells where the faces were drawn.
pub struct MorphGenerator {
    cfg: MorphConfig,
    layout: Layout,
    timeline: Timeline,
    /// The fill where no layer reaches.
    background: RgbImage,
    /// Per canvas column: how much it belongs to face 0's half (face 1's: the rest).
    seam: Vec<f32>,
    people: [PersonLayer; 2],
    next: usize,
    info: Option<FrameInfo>,
    /// The device the warp runs on, when built with the `gpu` feature and one opens.
    gpu: Option<crate::gpu::Gpu>,
}

impl std::fmt::Debug for MorphGenerator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MorphGenerator")
            .field("cfg", &self.cfg)
            .field("frames", &self.timeline.len())
            .field("next", &self.next)
            .field("warp", &self.warp_path())
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
        let w = cfg.width;
        let background = background(&cfg, &inputs, &layout);
        let canvases: Vec<RgbImage> = match &inputs {
            MorphInputs::Couple { .. } => vec![placed(&inputs, &layout, 0, &background)],
            MorphInputs::Portraits { .. } => (0..2)
                .map(|k| placed(&inputs, &layout, k, &background))
                .collect(),
        };
        let seam = seam(&inputs, &layout, w as usize);
        let halves = [columns(&seam, |s| s > 0.0), columns(&seam, |s| s < 1.0)];
        let build = |k: usize| {
            let travel = PersonLayer::travel(
                &rest.faces[k],
                timeline.frames().iter().map(|f| &f.faces[k]),
            );
            PersonLayer::build(
                k,
                &canvases[k.min(canvases.len() - 1)],
                &rest.faces[k],
                halves[k].clone(),
                travel,
                cfg.feather,
            )
        };
        let mut people = [build(0)?, build(1)?];
        drop(canvases);
        if let MorphInputs::Portraits { .. } = inputs
            && cfg.harmonise > 0.0
        {
            harmonise(&mut people, cfg.harmonise);
        }
        Ok(Self {
            cfg,
            layout,
            timeline,
            background,
            seam,
            people,
            next: 0,
            info: None,
            gpu: open_gpu(),
        })
    }

    /// Where the warp runs: `"cuda"` or `"cpu"`.
    pub fn warp_path(&self) -> &'static str {
        if self.gpu.is_some() { "cuda" } else { "cpu" }
    }

    /// Warps on the CPU from now on, even with a device.
    pub fn use_cpu(&mut self) {
        self.gpu = None;
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
        for (layer, face) in self.people.iter_mut().zip(plan.faces.iter()) {
            if let Err(why) = layer.prepare(face, (w, h), self.gpu.as_ref()) {
                tracing::warn!(%why, frame = index, "warp on the device failed: using the CPU path");
                self.gpu = None;
            }
        }
        let front = plan.front.min(1);
        let out = composite(&self.people, front, &self.seam, &self.background, (w, h));
        let landmarks = [self.people[0].expressed, self.people[1].expressed];
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

/// The device for the warp when the `gpu` feature is built in and a CUDA driver is there; the
/// reason for the CPU path is logged otherwise.
fn open_gpu() -> Option<crate::gpu::Gpu> {
    if !cfg!(feature = "gpu") {
        return None;
    }
    match crate::gpu::Gpu::open() {
        Ok(gpu) => Some(gpu),
        Err(why) => {
            tracing::info!(%why, "morph warp on the CPU");
            None
        }
    }
}

/// Draws both layers row by row and lays them together, nearest last: each person's half
/// (`seam` says how much of each column is face 0's), the head behind where it leans into the
/// other half, the head in front over everything. Where a layer has no pixel, `fill`.
fn composite(
    people: &[PersonLayer; 2],
    front: usize,
    seam: &[f32],
    fill: &RgbImage,
    (w, h): (usize, usize),
) -> RgbImage {
    let (f, b) = (&people[front], &people[1 - front]);
    let mut out = vec![0u8; w * h * 3];
    out.par_chunks_mut(w * 3).enumerate().for_each_init(
        || {
            (
                vec![[0u8; 4]; w],
                vec![false; w],
                vec![[0u8; 4]; w],
                vec![false; w],
            )
        },
        |(f_rgba, f_cov, b_rgba, b_cov), (y, row)| {
            f.draw_row(y, f_rgba, f_cov);
            b.draw_row(y, b_rgba, b_cov);
            let fill = &fill.as_raw()[y * w * 3..(y + 1) * w * 3];
            for x in 0..w {
                // How much of this column is the front person's half.
                let own = if front == 0 { seam[x] } else { 1.0 - seam[x] };
                let g = &fill[x * 3..x * 3 + 3];
                let (fc, hf) = if f_cov[x] {
                    (f_rgba[x], f_rgba[x][3] as f32 * (1.0 / 255.0))
                } else {
                    ([g[0], g[1], g[2], 0], 0.0)
                };
                let (bc, hb) = if b_cov[x] {
                    (b_rgba[x], b_rgba[x][3] as f32 * (1.0 / 255.0))
                } else {
                    ([g[0], g[1], g[2], 0], 0.0)
                };
                // Halves, then the head behind across the seam, then the head in front.
                let back = (1.0 - own) + hb * own;
                let back = back * (1.0 - hf);
                let out = &mut row[x * 3..x * 3 + 3];
                if back <= 0.0 {
                    out.copy_from_slice(&fc[..3]);
                } else if back >= 1.0 {
                    out.copy_from_slice(&bc[..3]);
                } else {
                    for (c, o) in out.iter_mut().enumerate() {
                        let v = fc[c] as f32 + (bc[c] as f32 - fc[c] as f32) * back;
                        *o = (v + 0.5) as u8;
                    }
                }
            }
        },
    );
    RgbImage::from_raw(w as u32, h as u32, out).expect("canvas-sized buffer")
}

/// The input frame of person `k` as placed on the canvas, sharp; where the canvas reaches
/// beyond the frame, the blurred `fill` (its edges only repeat).
fn placed(inputs: &MorphInputs, layout: &Layout, k: usize, fill: &RgbImage) -> RgbImage {
    let frame = inputs.frame(k);
    let placement = layout.placements[k];
    let (w, h) = (fill.width(), fill.height());
    let (fw, fh) = (frame.width() as f32, frame.height() as f32);
    let mut out = vec![0u8; (w * h * 3) as usize];
    out.par_chunks_mut(w as usize * 3)
        .enumerate()
        .for_each(|(y, row)| {
            let fill_row = &fill.as_raw()[y * w as usize * 3..(y + 1) * w as usize * 3];
            for (x, px) in row.chunks_exact_mut(3).enumerate() {
                let p = placement.to_input([x as f32 + 0.5, y as f32 + 0.5]);
                let rgb = pixels::sample_rgb(frame, p);
                let beyond = (-p[0]).max(p[0] - fw).max(-p[1]).max(p[1] - fh).max(0.0);
                let t = (beyond / FILL_EDGE).clamp(0.0, 1.0);
                for (c, o) in px.iter_mut().enumerate() {
                    let v = rgb[c] + (fill_row[x * 3 + c] as f32 - rgb[c]) * t;
                    *o = (v + 0.5).clamp(0.0, 255.0) as u8;
                }
            }
        });
    RgbImage::from_raw(w, h, out).expect("canvas-sized buffer")
}

/// The soft seam between the two people's halves of the canvas: a vertical line midway
/// between the faces (the canvas middle for two portraits). Per column, how much of it is
/// face 0's.
fn seam(inputs: &MorphInputs, layout: &Layout, width: usize) -> Vec<f32> {
    let centre = |lm: &Landmarks| {
        let n = lm.0.len() as f32;
        lm.0.iter().map(|p| p[0]).sum::<f32>() / n
    };
    let (x0, x1) = (centre(&layout.landmarks[0]), centre(&layout.landmarks[1]));
    let (mid, ramp) = match inputs {
        MorphInputs::Couple { .. } => (0.5 * (x0 + x1), (SEAM_COUPLE * (x1 - x0).abs()).max(2.0)),
        MorphInputs::Portraits { .. } => {
            (0.5 * width as f32, (SEAM_PORTRAITS * width as f32).max(2.0))
        }
    };
    let toward = if x1 >= x0 { 1.0 } else { -1.0 };
    (0..width)
        .map(|x| {
            let t = (0.5 - toward * (x as f32 + 0.5 - mid) / ramp).clamp(0.0, 1.0);
            t * t * (3.0 - 2.0 * t)
        })
        .collect()
}

/// The columns where `keep` holds for the seam, as one range (the seam is monotonic).
fn columns(seam: &[f32], keep: impl Fn(f32) -> bool) -> std::ops::Range<usize> {
    let first = seam.iter().position(|s| keep(*s)).unwrap_or(0);
    let last = seam.iter().rposition(|s| keep(*s)).map_or(0, |i| i + 1);
    first..last.max(first)
}

/// Moves both portraits' colours partway toward their common mean and spread, measured on the
/// heads: a lookup per channel over each whole layer.
fn harmonise(people: &mut [PersonLayer; 2], amount: f32) {
    let [Some(a), Some(b)] = [
        pixels::masked_stats(&people[0].source.rgba),
        pixels::masked_stats(&people[1].source.rgba),
    ] else {
        return;
    };
    let avg =
        |x: [f32; 3], y: [f32; 3]| -> [f32; 3] { std::array::from_fn(|c| 0.5 * (x[c] + y[c])) };
    let common = (avg(a.0, b.0), avg(a.1, b.1));
    for (layer, own) in people.iter_mut().zip([a, b]) {
        let luts: [[u8; 256]; 3] = std::array::from_fn(|c| {
            let (m, s) = (own.0[c], own.1[c].max(1.0));
            let mt = m + amount * (common.0[c] - m);
            let st = s + amount * (common.1[c].max(1.0) - s);
            std::array::from_fn(|v| ((v as f32 - m) * st / s + mt).round().clamp(0.0, 255.0) as u8)
        });
        for px in layer.source.rgba.chunks_exact_mut(4) {
            for c in 0..3 {
                px[c] = luts[c][px[c] as usize];
            }
        }
    }
}

/// The fill: the input frame(s) as placed on the canvas, blurred (beyond a frame's edges its
/// edge pixels repeat, smoothed out by the blur). Two portraits meet in a soft seam down the
/// middle.
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
