//! The morph generator: each person a cut-out layer on a rebuilt background, their head
//! turned in 3D along the timeline, filmed by a virtual camera.
//!
//! Per session, once:
//! - [`scene`]: the scene is the capture (or, for two portraits, a designed backdrop with both
//!   people on it). Each person is cut out by the person mask ([`MorphGuides::masks`], from the
//!   segmentation model; drawn from the faces without one), and the background behind them is
//!   rebuilt from its surroundings, so a person who moves away uncovers background, never a
//!   smear or a stretched copy of themself.
//! - [`person`]: each person's mesh: the dense face mesh with its own depth
//!   ([`MorphGuides::meshes`]; the 68 landmarks on the mean shape without one), the head around
//!   it, and the body, fading toward the scene's edges.
//! - [`camera`]: the virtual camera's path, framing the couple and pushing in toward the kiss.
//!
//! Per frame: each layer's mesh goes to the timeline's targets (head turn, tilt, approach,
//! closing lids, pursed lips, smile) and through the camera; the background is drawn through
//! the camera, then the person behind, then the person in front.
//!
//! ```
//! use kissbooth_engines::generate::MorphConfig;
//! let cfg: MorphConfig = toml::from_str("width = 1280\nheight = 720").unwrap();
//! cfg.validate().unwrap();
//! assert_eq!(cfg.feather, MorphConfig::default().feather);
//! ```

pub(crate) mod camera;
pub(crate) mod mesh;
mod person;
mod pixels;
pub(crate) mod scene;

use image::RgbImage;
use serde::{Deserialize, Serialize};

use camera::View;
use person::PersonLayer;
use scene::Scene;

use super::GenerateError;
use super::shape3d::MeanShape;
use super::timeline::{Phase, Timeline, TimelineConfig};
use crate::types::Landmarks;

/// The person in front stands this many inter-ocular distances nearer the camera than the
/// other: where their heads overlap, their faces cover the other's cheek, not the lips.
const FRONT_NEARER: f32 = 0.3;
/// Depth over which one person's pixels give way to the other's where their depths cross, in
/// inter-ocular distances.
const DEPTH_SOFT: f32 = 0.06;

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
    /// Softening of each person's cut-out edge, in inter-ocular distances, 0.01..=0.3.
    pub feather: f32,
    /// Two portraits only (one capture shares its light): how far the two portraits' skin
    /// colours move toward their common mean and spread, 0..=1 (0: untouched, 1: identical
    /// statistics).
    pub harmonise: f32,
    /// Smoothing of the background rebuilt behind the people, in inter-ocular distances times
    /// ten, 0..=0.2 (0: the fill as rebuilt).
    pub background_blur: f32,
    /// Unsharp mask over each face after the warp, 0..=1.5 (0: none): resampling a face to
    /// the clip's size softens its finest detail (measured: the painted faces kept 49-67 % of
    /// their captured detail without it, 66-105 % at 0.5; see the README).
    pub sharpen: f32,
}

impl Default for MorphConfig {
    fn default() -> Self {
        Self {
            width: 512,
            height: 512,
            feather: 0.08,
            harmonise: 0.5,
            background_blur: 0.08,
            sharpen: 0.5,
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
    #[error("sharpen = {0} is outside 0..=1.5")]
    SharpenOutOfRange(f32),
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
        if !(0.0..=1.5).contains(&self.sharpen) {
            return Err(MorphConfigError::SharpenOutOfRange(self.sharpen));
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

    /// Two portraits: mirrors each that looks far away from its partner, so the two face each
    /// other ([`crate::generate::facing`]); returns which were. A couple frame stays as taken.
    pub fn face_each_other(&mut self) -> [bool; 2] {
        match self {
            MorphInputs::Couple { .. } => [false; 2],
            MorphInputs::Portraits { frames, faces } => {
                let [l, r] = frames;
                let [a, b] = faces;
                super::facing::face_each_other([l, r], [a, b])
            }
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

/// A person mask: the probability that each pixel of an input frame shows a person, 0..=1,
/// row-major, the frame's size.
#[derive(Debug, Clone, PartialEq)]
pub struct PersonMask {
    pub width: u32,
    pub height: u32,
    pub data: Vec<f32>,
}

/// What the face models found beyond the 68 landmarks, in input-frame pixels. Everything is
/// optional: without a mesh a face turns on the mean 3D shape, without a mask each person is
/// cut out along a head-and-shoulders shape drawn from their face.
#[derive(Debug, Clone, Default)]
pub struct MorphGuides {
    /// Per face: the dense face mesh (468 points: x, y, and depth in pixels, larger = farther).
    pub meshes: [Option<Vec<[f32; 3]>>; 2],
    /// Per input frame: the person mask (one capture: the first only).
    pub masks: [Option<PersonMask>; 2],
}

/// What was drawn in the last rendered frame.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameInfo {
    pub index: usize,
    pub phase: Phase,
    /// Index of the face drawn in front.
    pub front: usize,
    /// Each face's landmarks as warped (expression applied), output pixels.
    pub landmarks: [Landmarks; 2],
    /// Each face's mouth centre as warped, output pixels.
    pub mouth_centres: [[f32; 2]; 2],
    /// The camera's zoom (output pixels per scene pixel).
    pub zoom: f32,
}

impl FrameInfo {
    /// Distance between the two warped mouth centres, pixels.
    pub fn mouth_distance(&self) -> f32 {
        let [a, b] = self.mouth_centres;
        ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt()
    }

    /// The gap between the two mouths' outer lip contours, pixels: 0 where they touch or the
    /// front one overlaps the other.
    pub fn lip_gap(&self) -> f32 {
        let lips = |k: usize| &self.landmarks[k].0[48..60];
        let poly = |k: usize| lips(k).to_vec();
        let (a, b) = (poly(0), poly(1));
        if a.iter().any(|p| inside(&b, *p)) || b.iter().any(|p| inside(&a, *p)) {
            return 0.0;
        }
        let mut best = f32::MAX;
        for p in &a {
            for q in &b {
                best = best.min(((p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2)).sqrt());
            }
        }
        best
    }

    /// The mean inter-ocular distance of the two faces as drawn, pixels.
    pub fn inter_ocular(&self) -> f32 {
        0.5 * (self.landmarks[0].inter_ocular() + self.landmarks[1].inter_ocular())
    }
}

/// Whether `p` lies inside the polygon (even-odd rule).
fn inside(poly: &[[f32; 2]], p: [f32; 2]) -> bool {
    let mut odd = false;
    for (i, a) in poly.iter().enumerate() {
        let b = poly[(i + 1) % poly.len()];
        if (a[1] > p[1]) != (b[1] > p[1])
            && p[0] < a[0] + (p[1] - a[1]) / (b[1] - a[1]) * (b[0] - a[0])
        {
            odd = !odd;
        }
    }
    odd
}

/// Renders the frames of a planned kiss, one at a time.
///
/// Iterating yields every frame in order; [`MorphGenerator::render`] renders any one frame.
/// After each frame, [`MorphGenerator::last_info`] tells where the faces were drawn.
pub struct MorphGenerator {
    cfg: MorphConfig,
    timeline: Timeline,
    scene_size: (usize, usize),
    plate: RgbImage,
    beyond: Beyond,
    views: Vec<View>,
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
            .field("scene", &self.scene_size)
            .field("frames", &self.timeline.len())
            .field("next", &self.next)
            .field("warp", &self.warp_path())
            .finish_non_exhaustive()
    }
}

impl MorphGenerator {
    /// Builds the scene from the inputs alone (no mesh, no mask), plans the timeline on it and
    /// prepares the generator.
    pub fn plan(
        cfg: MorphConfig,
        timeline: &TimelineConfig,
        shape: &MeanShape,
        inputs: MorphInputs,
    ) -> Result<Self, GenerateError> {
        Self::plan_with(cfg, timeline, shape, inputs, &MorphGuides::default())
    }

    /// Builds the scene (people cut out by the guides' masks, faces turned on their meshes),
    /// plans the timeline and the camera on it, and prepares every per-session part: the usual
    /// way in.
    pub fn plan_with(
        cfg: MorphConfig,
        timeline: &TimelineConfig,
        shape: &MeanShape,
        inputs: MorphInputs,
        guides: &MorphGuides,
    ) -> Result<Self, GenerateError> {
        cfg.validate()?;
        timeline.validate()?;
        inputs.check()?;
        let mut scene = Scene::build(&inputs, guides, &cfg)?;
        drop(inputs);
        let [a, b] = &scene.faces;
        let timeline = Timeline::plan(
            timeline,
            shape,
            [a, b],
            (scene.width as u32, scene.height as u32),
        )?;
        let regions: Vec<[f32; 4]> = timeline
            .frames()
            .iter()
            .map(|f| camera::region(&[&f.faces[0].landmarks, &f.faces[1].landmarks]))
            .collect();
        let views = camera::plan(
            &regions,
            (scene.width, scene.height),
            (cfg.width, cfg.height),
            timeline.fps(),
        );
        // Where the camera sees past the scene, the picture fades into what lies beyond.
        let beyond = Beyond::new(&scene.plate, scene.backdrop);
        let band = scene::SCENE_EDGE_FADE * 0.5 * (a.inter_ocular() + b.inter_ocular());
        scene.soften_edges(
            camera::seen_past(&views, scene.width, scene.height),
            band,
            |p| beyond.at(p),
        );
        let rest = timeline
            .frame(0)
            .ok_or(GenerateError::FrameOutOfRange { index: 0, len: 0 })?;
        let [source0, source1] = std::mem::take(&mut scene.people);
        let mut sources = [Some(source0), Some(source1)];
        let mut build = |k: usize| {
            let travel = PersonLayer::travel(
                &rest.faces[k],
                timeline.frames().iter().map(|f| &f.faces[k]),
            );
            let source = sources[k].take().unwrap_or_default();
            PersonLayer::build(
                k,
                source,
                &rest.faces[k],
                scene.meshes[k].as_deref(),
                travel,
            )
        };
        let mut people = [build(0)?, build(1)?];
        if scene.portraits && cfg.harmonise > 0.0 {
            harmonise(&mut people, cfg.harmonise);
        }
        Ok(Self {
            scene_size: (scene.width, scene.height),
            beyond,
            plate: scene.plate,
            cfg,
            timeline,
            views,
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

    /// The planned timeline (in scene pixels).
    pub fn timeline(&self) -> &Timeline {
        &self.timeline
    }
    /// The scene's size (width, height), pixels.
    pub fn scene_size(&self) -> (usize, usize) {
        self.scene_size
    }
    /// The camera of a frame.
    pub fn view(&self, index: usize) -> Option<View> {
        self.views.get(index).copied()
    }
    /// Whether each face turns on its dense mesh (true) or on the mean shape (false).
    pub fn dense_faces(&self) -> [bool; 2] {
        [self.people[0].dense, self.people[1].dense]
    }
    /// The two faces of the first frame, on the output canvas.
    pub fn canvas_faces(&self) -> [Landmarks; 2] {
        let view = self.views[0];
        let rest = self.timeline.rest_faces();
        std::array::from_fn(|k| Landmarks(rest[k].0.map(|p| view.to_output(p))))
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
        let view = self.views[index.min(self.views.len() - 1)];
        let (w, h) = (self.cfg.width as usize, self.cfg.height as usize);
        let front = plan.front.min(1);
        let iod =
            0.5 * (plan.faces[0].landmarks.inter_ocular() + plan.faces[1].landmarks.inter_ocular());
        for (k, (layer, face)) in self.people.iter_mut().zip(plan.faces.iter()).enumerate() {
            let nearer = if k == front { FRONT_NEARER * iod } else { 0.0 };
            if let Err(why) = layer.prepare(face, &view, nearer, (w, h), self.gpu.as_ref()) {
                tracing::warn!(%why, frame = index, "warp on the device failed: using the CPU path");
                self.gpu = None;
                layer.prepare(face, &view, nearer, (w, h), None).ok();
            }
        }
        let mut out = composite(
            &self.people,
            &self.plate,
            &self.beyond,
            &view,
            DEPTH_SOFT * iod,
            (w, h),
        );
        let landmarks: [Landmarks; 2] = std::array::from_fn(|k| {
            Landmarks(self.people[k].expressed.0.map(|p| view.to_output(p)))
        });
        if self.cfg.sharpen > 0.0 {
            for l in &landmarks {
                pixels::sharpen_face(&mut out, l, self.cfg.sharpen);
            }
        }
        self.info = Some(FrameInfo {
            index,
            phase: plan.phase,
            front,
            mouth_centres: landmarks.map(|l| l.mouth_centre()),
            landmarks,
            zoom: view.zoom,
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

/// What the camera shows past the scene's edge: the scene's own colours there, blurred far
/// beyond any detail, fading into the backdrop colour over a third of the scene's shorter side.
/// A soft continuation of the picture, not a hard band, and never a streak smeared from its
/// edge pixels.
struct Beyond {
    /// The scene pooled by [`Beyond::CELL`] and blurred, RGB.
    glow: Vec<f32>,
    size: (usize, usize),
    scene: (f32, f32),
    backdrop: [u8; 3],
}

impl Beyond {
    const CELL: usize = 16;

    fn new(plate: &RgbImage, backdrop: [u8; 3]) -> Self {
        let (pw, ph) = (plate.width() as usize, plate.height() as usize);
        let (gw, gh) = (
            pw.div_ceil(Self::CELL).max(1),
            ph.div_ceil(Self::CELL).max(1),
        );
        let mut glow = vec![0.0f32; gw * gh * 3];
        let mut count = vec![0.0f32; gw * gh];
        for (x, y, px) in plate.enumerate_pixels() {
            let i = (y as usize / Self::CELL) * gw + x as usize / Self::CELL;
            for c in 0..3 {
                glow[i * 3 + c] += px[c] as f32;
            }
            count[i] += 1.0;
        }
        for (i, n) in count.iter().enumerate() {
            for c in 0..3 {
                glow[i * 3 + c] /= n.max(1.0);
            }
        }
        pixels::Blur::default().apply(&mut glow, gw, gh, 3, 3, 3);
        Self {
            glow,
            size: (gw, gh),
            scene: (pw as f32, ph as f32),
            backdrop,
        }
    }

    /// The colour at scene point `p`, which lies outside the scene.
    fn at(&self, p: [f32; 2]) -> [f32; 3] {
        let (pw, ph) = self.scene;
        let q = [p[0].clamp(0.0, pw), p[1].clamp(0.0, ph)];
        let d = ((p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2)).sqrt();
        let t = (d / (pw.min(ph) / 3.0).max(1.0)).clamp(0.0, 1.0);
        let t = t * t * (3.0 - 2.0 * t);
        // The backdrop, a little lighter above the scene and darker below it.
        let shade = 1.0 - 0.15 * (p[1] / ph).clamp(-1.0, 2.0);
        let (gw, gh) = self.size;
        let gx = (q[0] / Self::CELL as f32 - 0.5).clamp(0.0, (gw - 1) as f32);
        let gy = (q[1] / Self::CELL as f32 - 0.5).clamp(0.0, (gh - 1) as f32);
        let (x0, y0) = (gx as usize, gy as usize);
        let (x1, y1) = ((x0 + 1).min(gw - 1), (y0 + 1).min(gh - 1));
        let (ax, ay) = (gx - x0 as f32, gy - y0 as f32);
        let g = |x: usize, y: usize, c: usize| self.glow[(y * gw + x) * 3 + c];
        std::array::from_fn(|c| {
            let top = g(x0, y0, c) + (g(x1, y0, c) - g(x0, y0, c)) * ax;
            let bottom = g(x0, y1, c) + (g(x1, y1, c) - g(x0, y1, c)) * ax;
            let edge = top + (bottom - top) * ay;
            let far = self.backdrop[c] as f32 * shade;
            edge + (far - edge) * t
        })
    }
}

/// Draws the frame row by row: the rebuilt background through the camera ([`Beyond`] where
/// the camera sees past the scene), then both people, the nearer one over the other at
/// each pixel (with a soft change-over where their depths cross, `soft` output pixels of
/// depth).
fn composite(
    people: &[PersonLayer; 2],
    plate: &RgbImage,
    beyond: &Beyond,
    view: &View,
    soft: f32,
    (w, h): (usize, usize),
) -> RgbImage {
    let backdrop = Backdrop::new(plate, beyond, view, w);
    let inv_soft = 1.0 / soft.max(1e-3);
    let mut out = vec![0u8; w * h * 3];
    person::draw_rows(people, &mut out, w, |y, a, b, row| {
        let background = backdrop.row(y);
        let alpha = |r: &person::Row, x: usize| if r.covered[x] { r.rgba[x][3] } else { 0 };
        for x in 0..w {
            let out = &mut row[x * 3..x * 3 + 3];
            let (ia, ib) = (alpha(a, x), alpha(b, x));
            match (ia, ib) {
                (0, 0) => {
                    let bg = background.at(x);
                    for c in 0..3 {
                        out[c] = ((bg[c] + 32768) >> 16).min(255) as u8;
                    }
                }
                (255, 0) => out.copy_from_slice(&a.rgba[x][..3]),
                (0, 255) => out.copy_from_slice(&b.rgba[x][..3]),
                _ => {
                    let bg = background.at(x).map(|v| v as f32 * (1.0 / 65536.0));
                    let px = two_people(bg, (a, ia), (b, ib), x, inv_soft);
                    for c in 0..3 {
                        out[c] = (px[c] + 0.5).clamp(0.0, 255.0) as u8;
                    }
                }
            }
        }
    });
    RgbImage::from_raw(w as u32, h as u32, out).unwrap_or_default()
}

/// Both people's pixels at column `x` over the background `bg`, each with its alpha (not both
/// 0): a over b when a is nearer, b over a otherwise; blended where they cross.
#[inline]
fn two_people(
    bg: [f32; 3],
    (a, ia): (&person::Row, u8),
    (b, ib): (&person::Row, u8),
    x: usize,
    inv_soft: f32,
) -> [f32; 3] {
    let (aa, ab) = (ia as f32 * (1.0 / 255.0), ib as f32 * (1.0 / 255.0));
    if ib == 0 {
        over(bg, a.rgba[x], aa)
    } else if ia == 0 {
        over(bg, b.rgba[x], ab)
    } else {
        let a_on_top = (0.5 + (b.z[x] - a.z[x]) * inv_soft).clamp(0.0, 1.0);
        let ab_first = over(over(bg, b.rgba[x], ab), a.rgba[x], aa);
        let aa_first = over(over(bg, a.rgba[x], aa), b.rgba[x], ab);
        std::array::from_fn(|c| aa_first[c] + (ab_first[c] - aa_first[c]) * a_on_top)
    }
}

/// The background of one frame through the camera: the plate where the camera sees the
/// scene, [`Beyond`] past its edge.
struct Backdrop<'a> {
    plate: &'a RgbImage,
    beyond: &'a Beyond,
    view: &'a View,
    width: usize,
    /// The camera only scales and shifts: where each column samples the plate, once a frame.
    columns: Vec<Option<PlateTap>>,
    /// Whether a knot of `Beyond` (every STEP-th pixel) lies beside a column past the edge.
    knot_outside: Vec<bool>,
    any_column_outside: bool,
}

/// One output row's background.
struct RowBackdrop<'a> {
    backdrop: &'a Backdrop<'a>,
    knots: Vec<[f32; 3]>,
    row_tap: Option<PlateTap>,
}

impl<'a> Backdrop<'a> {
    /// Past the scene's edge `Beyond` is smooth: every STEP-th pixel of a row is computed and
    /// the rest interpolated; within the scene's rows only the knots beside a column past its
    /// edge are needed.
    const STEP: usize = 8;

    fn new(plate: &'a RgbImage, beyond: &'a Beyond, view: &'a View, w: usize) -> Self {
        let pw = plate.width() as f32;
        let columns: Vec<Option<PlateTap>> = (0..w)
            .map(|x| view.to_scene([x as f32 + 0.5, 0.0])[0])
            .map(|sx| (sx >= 0.0 && sx < pw).then(|| PlateTap::at(sx, plate.width() as usize)))
            .collect();
        let knot_outside: Vec<bool> = (0..=w.div_ceil(Self::STEP))
            .map(|k| {
                let near =
                    (k * Self::STEP).saturating_sub(Self::STEP)..((k + 1) * Self::STEP).min(w);
                columns[near].iter().any(Option::is_none)
            })
            .collect();
        let any_column_outside = knot_outside.iter().any(|k| *k);
        Self {
            plate,
            beyond,
            view,
            width: w,
            columns,
            knot_outside,
            any_column_outside,
        }
    }

    /// Output row `y`'s background.
    fn row(&'a self, y: usize) -> RowBackdrop<'a> {
        let sy = self.view.to_scene([0.0, y as f32 + 0.5])[1];
        let inside_row = (0.0..self.plate.height() as f32).contains(&sy);
        let knots: Vec<[f32; 3]> = if !inside_row || self.any_column_outside {
            (0..=self.width.div_ceil(Self::STEP))
                .map(|k| {
                    if inside_row && !self.knot_outside[k] {
                        [0.0; 3]
                    } else {
                        let sx = self.view.to_scene([(k * Self::STEP) as f32 + 0.5, 0.0])[0];
                        self.beyond.at([sx, sy])
                    }
                })
                .collect()
        } else {
            Vec::new()
        };
        RowBackdrop {
            backdrop: self,
            knots,
            row_tap: inside_row.then(|| PlateTap::at(sy, self.plate.height() as usize)),
        }
    }
}

impl RowBackdrop<'_> {
    /// The background at column `x`, in 65536ths of a grey level.
    #[inline]
    fn at(&self, x: usize) -> [u32; 3] {
        let bd = self.backdrop;
        match (&self.row_tap, &bd.columns[x]) {
            (Some(ty), Some(tx)) => {
                let raw = bd.plate.as_raw();
                let stride = bd.plate.width() as usize * 3;
                let (r0, r1) = (ty.i0 * stride, ty.i1 * stride);
                let (c0, c1) = (tx.i0 * 3, tx.i1 * 3);
                std::array::from_fn(|c| {
                    let top = tx.lerp(raw[r0 + c0 + c], raw[r0 + c1 + c]);
                    let bottom = tx.lerp(raw[r1 + c0 + c], raw[r1 + c1 + c]);
                    top * (256 - ty.t) + bottom * ty.t
                })
            }
            _ => {
                let step = Backdrop::STEP;
                let (k, f) = (x / step, (x % step) as f32 / step as f32);
                let knots = &self.knots;
                std::array::from_fn(|c| {
                    let v = knots[k][c] + (knots[k + 1][c] - knots[k][c]) * f;
                    (v.clamp(0.0, 255.0) * 65536.0) as u32
                })
            }
        }
    }
}

/// `px` over `under` by `a` (0..=1).
#[inline]
fn over(under: [f32; 3], px: [u8; 4], a: f32) -> [f32; 3] {
    std::array::from_fn(|c| under[c] + (px[c] as f32 - under[c]) * a)
}

/// Where a column (or row) of the output samples the plate: the two pixels to blend and the
/// weight of the second, in 256ths (bilinear, clamped to the border like
/// [`pixels::sample_rgb`]).
struct PlateTap {
    i0: usize,
    i1: usize,
    t: u32,
}

impl PlateTap {
    fn at(s: f32, n: usize) -> Self {
        let f = (s - 0.5).clamp(0.0, (n.max(1) - 1) as f32);
        let i0 = f as usize;
        Self {
            i0,
            i1: (i0 + 1).min(n.max(1) - 1),
            t: ((f - i0 as f32) * 256.0).round() as u32,
        }
    }

    /// `p` toward `q`, scaled by 256.
    #[inline]
    fn lerp(&self, p: u8, q: u8) -> u32 {
        u32::from(p) * (256 - self.t) + u32::from(q) * self.t
    }
}

/// Moves both portraits' colours partway toward their common mean and spread, measured on the
/// people: a lookup per channel over each whole layer.
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Past the scene's edge the picture continues softly into the backdrop: no step at the
    /// edge, the backdrop far out, and no streaks from the edge's pixels.
    #[test]
    fn beyond_the_scene_is_a_soft_continuation_not_a_band_or_a_smear() {
        let (w, h) = (320u32, 180u32);
        // A warm top half with thin dark stripes at its top edge, a cool bottom half.
        let plate = RgbImage::from_fn(w, h, |x, y| {
            if y < 4 && x % 8 < 2 {
                image::Rgb([20, 20, 20])
            } else if y < h / 2 {
                image::Rgb([200, 150, 100])
            } else {
                image::Rgb([60, 80, 120])
            }
        });
        let backdrop = [30, 30, 40];
        let beyond = Beyond::new(&plate, backdrop);
        let dist = |a: [f32; 3], b: [f32; 3]| {
            a.iter()
                .zip(&b)
                .map(|(p, q)| (p - q).abs())
                .fold(0.0f32, f32::max)
        };
        let warm = [200.0, 150.0, 100.0];
        // Just above the top edge: the picture's colour (within the stripes' share), not the
        // backdrop's.
        let just_above = beyond.at([160.0, -1.0]);
        assert!(dist(just_above, warm) < 50.0, "{just_above:?}");
        // Far above: the backdrop (a little lighter above the scene).
        let far = beyond.at([160.0, -200.0]);
        let lit = backdrop.map(|c| c as f32 * 1.15);
        assert!(dist(far, lit) < 2.0, "{far:?} vs {lit:?}");
        // Along the edge the stripes are gone: neighbouring columns agree.
        let row: Vec<[f32; 3]> = (40..280)
            .map(|x| beyond.at([x as f32 + 0.5, -10.0]))
            .collect();
        let worst = row.windows(2).map(|p| dist(p[0], p[1])).fold(0.0, f32::max);
        assert!(worst < 1.0, "a streak: neighbours differ by {worst}");
        // Beside the scene it continues each side's own colour.
        let left_low = beyond.at([-2.0, 170.0]);
        assert!(dist(left_low, [60.0, 80.0, 120.0]) < 20.0, "{left_low:?}");
        // It changes smoothly with the distance: no step anywhere along a line away from it.
        let line: Vec<[f32; 3]> = (0..120).map(|d| beyond.at([100.0, -(d as f32)])).collect();
        let step = line
            .windows(2)
            .map(|p| dist(p[0], p[1]))
            .fold(0.0, f32::max);
        assert!(step < 6.0, "a step of {step} above the scene");
    }
}
