//! One person as a whole-canvas layer: the sharp capture, deformed by one smooth mesh that
//! carries the person's head, hair and neck along the timeline.
//!
//! The mesh's vertices, in canvas pixels at rest:
//! - the 68 landmarks, which go where the timeline puts them (expression included);
//! - the head around the face (hair above the brows up to [`HEAD_TOP`] face heights, the
//!   sides, the ears), which moves rigidly with the head's 3D motion;
//! - the neck, the shoulders, rings around the head and a grid over the whole canvas, whose
//!   motion is the head's, fading smoothly with the distance from the head and to zero toward
//!   the body (the bottom of the canvas);
//! - the canvas border: the grid's outer points, which may only slide along the border, so the
//!   warped capture always covers the whole canvas and nothing is uncovered.
//!
//! The fade is long enough for the head's whole journey ([`FADE_PER_TRAVEL`]), so the mesh
//! never folds over itself outside the face: the background stretches and squeezes instead.
//!
//! A turned head's skull lies behind the face, away from the nose: the head around the face is
//! shifted that way ([`SKULL_BACK`]), so a face seen from the side does not carry a wide halo
//! of hair in front of it.
//!
//! Closing eyes: the upper lids go down onto the lower lids (see [`crate::generate::Expression`])
//! and the eyes' interior triangles are drawn first, under the lids. Landmarks are a few pixels
//! off on real eyes, so the white of an eye can lie just outside them: the triangles around the
//! eyes also fade, as the eyes close, to a copy of the capture in which a generous ellipse over
//! each eye is lid skin (the skin above and below blended, a soft lash line along the lid).
//!
//! The layer also carries a mask of the head (face, hair, neck; feathered) in its alpha: a head
//! that leans across into the other person's half is drawn there with it. Each frame the mask
//! is softened a little where the head is, since a head turn folds the far cheek behind the
//! nose and would otherwise cut the silhouette hard along triangle edges.

use image::RgbImage;

use std::ops::Range;

use rayon::prelude::*;

use super::mesh::{Mesh, Source, Warper};
use super::pixels;
use crate::generate::GenerateError;
use crate::generate::shape3d::HeadMotion;
use crate::generate::timeline::FacePlan;
use crate::types::{Landmarks, N_LANDMARKS};

/// Top of the hair above the brows, in face heights (brow to chin).
const HEAD_TOP: f32 = 0.8;
/// The head around the face, moving rigidly with it: (across, up) in half jaw widths and face
/// heights from the brows' centre, left to right over the top.
const HEAD: [[f32; 2]; 9] = [
    [-1.25, 0.0],
    [-1.12, 0.4],
    [-0.78, 0.66],
    [-0.4, 0.77],
    [0.0, HEAD_TOP],
    [0.4, 0.77],
    [0.78, 0.66],
    [1.12, 0.4],
    [1.25, 0.0],
];
/// Neck and shoulders: (across, down) in half jaw widths and face heights below the chin.
const NECK: [[f32; 2]; 5] = [
    [-0.6, 0.35],
    [0.0, 0.4],
    [0.6, 0.35],
    [-1.5, 0.85],
    [1.5, 0.85],
];
/// The ears, beside the top of the jaw, pushed out by this share of the half jaw width.
const EAR_OUT: f32 = 0.22;
/// The head mask's jaw line is pushed out by this share of the half jaw width.
const JAW_OUT: f32 = 0.06;
/// Fade of the motion with the distance from the head: it reaches zero at this many times the
/// head's largest travel...
const FADE_PER_TRAVEL: f32 = 1.9;
/// ...and at least this many head radii.
const FADE_MIN_RADII: f32 = 1.6;
/// Rings of points around the head (elliptic radii, points per ring), so that the fade, which
/// the mesh interpolates linearly, bends smoothly where it stretches most.
const RINGS: [(f32, usize); 5] = [(1.3, 20), (1.7, 24), (2.2, 28), (2.9, 32), (3.8, 36)];
/// Canvas grid: about this many cells along the longer side.
const GRID_CELLS: f32 = 10.0;
/// The skull's centre lies this many inter-ocular distances behind the face: a turned head's
/// hair and neck shift away from the nose by this much times the turn's sine.
const SKULL_BACK: f32 = 0.9;
/// Closed-eye ellipse: half its width is this many eye widths plus [`LID_MARGIN`], half its
/// height this many eye heights (at least [`EYE_MIN_HEIGHT`]) plus the margin.
const LID_WIDE: f32 = 0.68;
const LID_TALL: f32 = 1.0;
const LID_MARGIN: f32 = 0.05;
const EYE_MIN_HEIGHT: f32 = 0.1;
/// Lash line: width in inter-ocular distances (at least a pixel) and darkening.
const LASH_WIDTH: f32 = 0.035;
const LASH_DARK: f32 = 0.45;
/// Eye closure from which the closed-eye copy starts to show, and where it is complete.
const CLOSED_FROM: f32 = 0.3;
/// Per-frame softening of the head mask, a share of feather times the face's size.
const SOFTEN: f32 = 0.12;
/// Depth given to the background's vertices: farther than any face.
const FAR: f32 = 1.0e5;

/// How a vertex beyond the landmarks moves.
#[derive(Debug, Clone, Copy)]
enum Follow {
    /// Rigidly with the head, at this depth (pixels, like the landmarks').
    Head { z: f32 },
    /// With the head's motion at `anchor` (a point on the head's outline), scaled per axis.
    Fade { anchor: [f32; 2], weight: [f32; 2] },
}

/// The head's outline as an ellipse in the face's own frame: what the fade is measured from.
#[derive(Debug, Clone, Copy)]
struct HeadEllipse {
    centre: [f32; 2],
    right: [f32; 2],
    up: [f32; 2],
    /// Semi-axes along `right` and `up`, pixels.
    axes: [f32; 2],
}

impl HeadEllipse {
    /// Elliptic radius of `p` (1 on the outline) and the outline point on the ray through it.
    fn radius_and_anchor(&self, p: [f32; 2]) -> (f32, [f32; 2]) {
        let d = [p[0] - self.centre[0], p[1] - self.centre[1]];
        let u = (d[0] * self.right[0] + d[1] * self.right[1]) / self.axes[0];
        let v = (d[0] * self.up[0] + d[1] * self.up[1]) / self.axes[1];
        let rho = (u * u + v * v).sqrt().max(1e-6);
        let anchor = [
            self.centre[0] + d[0] / rho.max(1.0),
            self.centre[1] + d[1] / rho.max(1.0),
        ];
        (rho, anchor)
    }

    /// Distance of `p` beyond the outline along the ray from the centre, pixels (0 inside).
    fn beyond(&self, p: [f32; 2]) -> f32 {
        let (rho, _) = self.radius_and_anchor(p);
        let len = ((p[0] - self.centre[0]).powi(2) + (p[1] - self.centre[1]).powi(2)).sqrt();
        (len * (1.0 - 1.0 / rho)).max(0.0)
    }

    fn radius(&self) -> f32 {
        (self.axes[0] * self.axes[1]).sqrt()
    }

    /// The leftmost and rightmost x of the outline.
    fn x_extent(&self) -> (f32, f32) {
        let half =
            ((self.axes[0] * self.right[0]).powi(2) + (self.axes[1] * self.up[0]).powi(2)).sqrt();
        (self.centre[0] - half, self.centre[0] + half)
    }
}

/// The face's own frame at rest.
struct Frame {
    right: [f32; 2],
    up: [f32; 2],
    brows: [f32; 2],
    chin: [f32; 2],
    /// Half the jaw's width and the brow-to-chin height, pixels.
    half_width: f32,
    height: f32,
    iod: f32,
}

impl Frame {
    fn of(lm: &Landmarks) -> Self {
        let (l, r) = (lm.eye_left(), lm.eye_right());
        let iod = lm.inter_ocular().max(1e-3);
        let right = [(r[0] - l[0]) / iod, (r[1] - l[1]) / iod];
        let up = [right[1], -right[0]];
        let n = 10.0;
        let brows = lm.0[17..27]
            .iter()
            .fold([0.0f32; 2], |a, p| [a[0] + p[0] / n, a[1] + p[1] / n]);
        let chin = lm.0[8];
        let jaw = [lm.0[16][0] - lm.0[0][0], lm.0[16][1] - lm.0[0][1]];
        let half_width = (0.5 * (jaw[0] * right[0] + jaw[1] * right[1]).abs()).max(0.8 * iod);
        let drop = [brows[0] - chin[0], brows[1] - chin[1]];
        let height = (drop[0] * up[0] + drop[1] * up[1]).max(1.2 * iod);
        Self {
            right,
            up,
            brows,
            chin,
            half_width,
            height,
            iod,
        }
    }

    /// `p` in the face's frame: (along `right`, along `up`), pixels from `origin`.
    fn local(&self, origin: [f32; 2], p: [f32; 2]) -> [f32; 2] {
        let d = [p[0] - origin[0], p[1] - origin[1]];
        [
            d[0] * self.right[0] + d[1] * self.right[1],
            d[0] * self.up[0] + d[1] * self.up[1],
        ]
    }

    /// The canvas point at (`u` along `right`, `v` along `up`) from `origin`.
    fn global(&self, origin: [f32; 2], [u, v]: [f32; 2]) -> [f32; 2] {
        [
            origin[0] + u * self.right[0] + v * self.up[0],
            origin[1] + u * self.right[1] + v * self.up[1],
        ]
    }

    /// A point `across` half widths right and `up` heights up of `from`.
    fn at(&self, from: [f32; 2], across: f32, up: f32) -> [f32; 2] {
        let (a, u) = (across * self.half_width, up * self.height);
        [
            from[0] + a * self.right[0] + u * self.up[0],
            from[1] + a * self.right[1] + u * self.up[1],
        ]
    }

    /// `p` pushed away from the face's vertical midline by `share` half widths.
    fn out(&self, p: [f32; 2], share: f32) -> [f32; 2] {
        let side = (p[0] - self.brows[0]) * self.right[0] + (p[1] - self.brows[1]) * self.right[1];
        let s = side.signum() * share * self.half_width;
        [p[0] + s * self.right[0], p[1] + s * self.right[1]]
    }
}

/// One person's layer: its source, mesh and the buffers reused every frame.
pub struct PersonLayer {
    /// The capture on the canvas, alpha = the head mask.
    pub source: Source,
    /// The same with the eyes shut (lid skin over each eye).
    closed: Source,
    /// The columns of the canvas this person's half covers (the seam included).
    half: Range<usize>,
    mesh: Mesh,
    /// Mesh vertices around the head mask, and how far the mask reaches beyond them, pixels.
    mask_vertices: Vec<usize>,
    mask_margin: f32,
    /// This frame's box around the head mask: columns, rows.
    head_box: (Range<usize>, Range<usize>),
    /// This frame's pixels in the head box, full canvas rows, mask softened; and the buffers
    /// that soften it.
    head: Vec<[u8; 4]>,
    head_covered: Vec<bool>,
    soften: usize,
    alpha: Vec<f32>,
    blur: pixels::Blur,
    follow: Vec<Follow>,
    /// Depth of the head's outline points (the ears').
    head_z: f32,
    dest: Vec<[f32; 2]>,
    depth: Vec<f32>,
    warper: Warper,
    /// The warper's triangles flattened for the device, rebuilt in place each frame.
    tables: crate::gpu::WarpTables,
    /// `source` and `closed` on the device, uploaded on the first frame drawn there.
    uploaded: Option<(crate::gpu::DeviceImage, crate::gpu::DeviceImage)>,
    /// This frame's whole layer as the device drew it (full canvas), when it did.
    device: Option<(Vec<[u8; 4]>, Vec<bool>)>,
    pub expressed: Landmarks,
}

impl PersonLayer {
    /// Builds a person's layer over `canvas` (the capture as placed, canvas sized) around the
    /// face at rest, for a head whose outline travels at most `travel` pixels.
    pub fn build(
        face: usize,
        canvas: &RgbImage,
        rest: &FacePlan,
        half: Range<usize>,
        travel: f32,
        feather: f32,
    ) -> Result<Self, GenerateError> {
        let (w, h) = (canvas.width() as usize, canvas.height() as usize);
        let lm = rest.landmarks;
        let frame = Frame::of(&lm);
        let head_z = 0.5 * (rest.depth[0] + rest.depth[16]);
        let skull = skull_offset(rest);
        let ellipse = head_ellipse(&frame, skull);

        let mut points: Vec<[f32; 2]> = lm.0.to_vec();
        let mut follow = Vec::new();
        let head_at = points.len();
        // The head around the face.
        let head = head_outline(&frame, skull);
        let ears = [0, 16].map(|i| {
            let p = frame.out(lm.0[i], EAR_OUT);
            let q = [p[0] + skull[0], p[1] + skull[1]];
            // Never inside the jaw: an ear hidden behind a turned face stays at its edge.
            let side = if i == 0 { -1.0 } else { 1.0 };
            let out = frame.local(lm.0[i], q)[0] * side;
            if out < 0.05 * frame.half_width {
                frame.out(lm.0[i], 0.05)
            } else {
                q
            }
        });
        for p in head.iter().chain(ears.iter()) {
            points.push(*p);
            follow.push(Follow::Head { z: head_z });
        }
        // Everything else fades.
        let fade = (FADE_PER_TRAVEL * travel).max(FADE_MIN_RADII * ellipse.radius());
        let body = (h as f32 - frame.chin[1]).max(0.0);
        let spacing = (w.max(h) as f32 / GRID_CELLS).max(8.0);
        // x motion vanishes at the left and right borders, evenly over the whole way from
        // the head to the border (a head near a border still moves without tearing what lies
        // between), and toward the bottom (the body stays put); y motion vanishes at the top
        // and bottom borders.
        let (left, right) = ellipse.x_extent();
        let (left, right) = (
            left.max(0.5 * spacing),
            (w as f32 - right).max(0.5 * spacing),
        );
        let fading = |p: [f32; 2]| -> Follow {
            let (_, anchor) = ellipse.radius_and_anchor(p);
            let near = 1.0 - smoothstep(ellipse.beyond(p) / fade);
            let edge_x = (p[0] / left).min((w as f32 - p[0]) / right).clamp(0.0, 1.0);
            let edge_y = smoothstep(p[1].min(h as f32 - p[1]) / spacing);
            let to_bottom = (h as f32 - p[1]).max(0.0);
            let body_x = smoothstep(to_bottom / (0.8 * body).max(spacing));
            Follow::Fade {
                anchor,
                weight: [near * edge_x * body_x, near * edge_y],
            }
        };
        let inside = |p: [f32; 2], margin: f32| {
            p[0] > margin && p[0] < w as f32 - margin && p[1] > margin && p[1] < h as f32 - margin
        };
        let mut extra: Vec<[f32; 2]> = neck(&frame, skull);
        for (radius, count) in RINGS {
            extra.extend((0..count).map(|i| {
                let t = (i as f32 + 0.5) * std::f32::consts::TAU / count as f32;
                let (s, c) = t.sin_cos();
                let (a, u) = (radius * ellipse.axes[0] * c, radius * ellipse.axes[1] * s);
                [
                    ellipse.centre[0] + a * ellipse.right[0] + u * ellipse.up[0],
                    ellipse.centre[1] + a * ellipse.right[1] + u * ellipse.up[1],
                ]
            }));
        }
        extra.retain(|p| inside(*p, 0.3 * spacing));
        // The grid, keeping clear of the head and of the points already there; its border
        // points always stay.
        let (nx, ny) = (
            ((w as f32 / spacing).round() as usize).max(2),
            ((h as f32 / spacing).round() as usize).max(2),
        );
        let near_points = |p: [f32; 2], pts: &[[f32; 2]]| {
            pts.iter()
                .any(|q| (q[0] - p[0]).powi(2) + (q[1] - p[1]).powi(2) < (0.55 * spacing).powi(2))
        };
        for j in 0..=ny {
            for i in 0..=nx {
                let p = [
                    i as f32 * w as f32 / nx as f32,
                    j as f32 * h as f32 / ny as f32,
                ];
                let border = i == 0 || j == 0 || i == nx || j == ny;
                if !border
                    && (ellipse.beyond(p) < 0.5 * spacing
                        || near_points(p, &extra)
                        || near_points(p, &points))
                {
                    continue;
                }
                extra.push(p);
            }
        }
        let neck_at = points.len();
        for p in extra {
            points.push(p);
            follow.push(fading(p));
        }
        // What the head mask is drawn around: the landmarks, the head, the neck (which comes
        // first among the fading points, when it lies on the canvas).
        let mask_vertices: Vec<usize> = (0..head_at + HEAD.len() + 2)
            .chain(neck_at..(neck_at + 3).min(points.len()))
            .collect();
        let mut mesh = Mesh::triangulate(points).ok_or(GenerateError::Triangulation { face })?;
        let eye = |v: u32| (36..48).contains(&(v as usize));
        for (t, tri) in mesh.triangles.iter().enumerate() {
            let interior = tri.iter().all(|&v| (36..42).contains(&(v as usize)))
                || tri.iter().all(|&v| (42..48).contains(&(v as usize)));
            // The eyes' interiors go under everything; around the eyes, the shut-eye copy.
            mesh.bias[t] = if interior { 4.0 * FAR } else { 0.0 };
            mesh.alt[t] = tri.iter().any(|&v| eye(v));
        }

        // Head mask: face, hair and neck, feathered.
        let necks = neck(&frame, skull);
        let mut polygon: Vec<[f32; 2]> = head.clone();
        polygon.push(ears[1]);
        polygon.extend((12..16).rev().map(|i| frame.out(lm.0[i], JAW_OUT)));
        polygon.push(necks[2]);
        polygon.push(necks[0]);
        polygon.extend((1..5).rev().map(|i| frame.out(lm.0[i], JAW_OUT)));
        polygon.push(ears[0]);
        let mut mask = vec![0.0f32; w * h];
        pixels::fill_polygon(&mut mask, w, h, &polygon, 1.0);
        let face_size = frame.height.max(2.0 * frame.half_width);
        let radius = (0.4 * feather * face_size).round() as usize;
        pixels::Blur::default().apply(&mut mask, w, h, 1, radius, 3);
        // Three box blurs reach three radii; the neck may move a little less than the head.
        let mask_margin = 3.0 * radius as f32 + 0.15 * face_size + 2.0;
        let mut rgba = Vec::with_capacity(w * h * 4);
        for (px, a) in canvas.pixels().zip(mask.iter()) {
            rgba.extend_from_slice(&[
                px[0],
                px[1],
                px[2],
                (a.clamp(0.0, 1.0) * 255.0).round() as u8,
            ]);
        }
        let n = mesh.source.len();
        let source = Source {
            rgba,
            width: w,
            height: h,
        };
        let closed = shut_eyes(&source, &frame, &lm);
        Ok(Self {
            source,
            closed,
            half,
            mesh,
            mask_vertices,
            mask_margin,
            head_box: (0..0, 0..0),
            head: Vec::new(),
            head_covered: Vec::new(),
            soften: (SOFTEN * feather * face_size).round() as usize,
            alpha: Vec::new(),
            blur: pixels::Blur::default(),
            follow,
            head_z,
            dest: Vec::with_capacity(n),
            depth: Vec::with_capacity(n),
            warper: Warper::default(),
            tables: crate::gpu::WarpTables::default(),
            uploaded: None,
            device: None,
            expressed: lm,
        })
    }

    /// Moves the mesh to a frame's targets, indexes its triangles for drawing, and draws the
    /// head with its mask softened. With `gpu`, the whole layer is warped on the device here
    /// (on a device error, the frame is drawn on the CPU and the error returned for the log).
    pub fn prepare(
        &mut self,
        plan: &FacePlan,
        canvas: (usize, usize),
        gpu: Option<&crate::gpu::Gpu>,
    ) -> Result<(), String> {
        self.expressed = plan.expressed();
        self.dest.clear();
        self.depth.clear();
        self.dest.extend_from_slice(&self.expressed.0);
        self.depth.extend_from_slice(&plan.depth);
        let motion = &plan.motion;
        let head_z = self.head_z;
        for (p, f) in self.mesh.source[N_LANDMARKS..].iter().zip(&self.follow) {
            match *f {
                Follow::Head { z } => {
                    let q = motion.apply([p[0], p[1], z]);
                    self.dest.push([q[0], q[1]]);
                    self.depth.push(q[2]);
                }
                Follow::Fade { anchor, weight } => {
                    let d = moved_by(motion, anchor, head_z);
                    self.dest
                        .push([p[0] + weight[0] * d[0], p[1] + weight[1] * d[1]]);
                    self.depth.push(FAR);
                }
            }
        }
        let shut =
            ((plan.expression.eye_closure - CLOSED_FROM) / (1.0 - CLOSED_FROM)).clamp(0.0, 1.0);
        self.warper.prepare(
            &self.mesh,
            &self.dest,
            &self.depth,
            shut * shut * (3.0 - 2.0 * shut),
            canvas,
        );
        let (mut x0, mut y0, mut x1, mut y1) = (f32::MAX, f32::MAX, f32::MIN, f32::MIN);
        for &v in &self.mask_vertices {
            let p = self.dest[v];
            (x0, y0, x1, y1) = (x0.min(p[0]), y0.min(p[1]), x1.max(p[0]), y1.max(p[1]));
        }
        let m = self.mask_margin;
        let clip = |v: f32, hi: usize| (v.max(0.0) as usize).min(hi);
        self.head_box = (
            clip(x0 - m, canvas.0)..clip(x1 + m + 1.0, canvas.0),
            clip(y0 - m, canvas.1)..clip(y1 + m + 1.0, canvas.1),
        );
        let drawn = gpu.map(|gpu| self.draw_on_device(gpu, canvas));
        self.draw_head(canvas.0);
        drawn.unwrap_or(Ok(()))
    }

    /// Warps every column this layer may show, all rows, on the device.
    fn draw_on_device(
        &mut self,
        gpu: &crate::gpu::Gpu,
        (w, h): (usize, usize),
    ) -> Result<(), String> {
        let (mut rgba, mut covered) = self
            .device
            .take()
            .unwrap_or_else(|| (Vec::new(), Vec::new()));
        rgba.resize(w * h, [0; 4]);
        covered.clear();
        covered.resize(w * h, false);
        let (xs, ys) = &self.head_box;
        let cols = if !xs.is_empty() && !ys.is_empty() {
            self.half.start.min(xs.start)..self.half.end.max(xs.end)
        } else {
            self.half.clone()
        };
        self.warper.fill_tables(&mut self.tables);
        let uploaded = match self.uploaded.take() {
            Some(u) => u,
            None => (gpu.upload(&self.source)?, gpu.upload(&self.closed)?),
        };
        let (source, closed) = &*self.uploaded.insert(uploaded);
        gpu.warp(
            &self.tables,
            source,
            closed,
            0..h,
            cols,
            w,
            &mut rgba,
            &mut covered,
        )?;
        self.device = Some((rgba, covered));
        Ok(())
    }

    /// Draws the head box and softens its mask.
    fn draw_head(&mut self, width: usize) {
        let (xs, ys) = self.head_box.clone();
        self.head.resize(ys.len() * width, [0; 4]);
        self.head_covered.resize(ys.len() * width, false);
        if xs.is_empty() || ys.is_empty() {
            return;
        }
        if let Some((rgba, covered)) = &self.device {
            for r in 0..ys.len() {
                let (at, to) = ((ys.start + r) * width, r * width);
                self.head[to + xs.start..to + xs.end]
                    .copy_from_slice(&rgba[at + xs.start..at + xs.end]);
                self.head_covered[to + xs.start..to + xs.end]
                    .copy_from_slice(&covered[at + xs.start..at + xs.end]);
            }
        } else {
            self.draw_head_on_cpu(width);
        }
        self.soften_head(width);
    }

    /// Draws the head box on the CPU.
    fn draw_head_on_cpu(&mut self, width: usize) {
        let (xs, ys) = self.head_box.clone();
        let (warper, source, closed) = (&self.warper, &self.source, &self.closed);
        self.head
            .par_chunks_mut(width)
            .zip(self.head_covered.par_chunks_mut(width))
            .enumerate()
            .for_each(|(r, (rgba, covered))| {
                covered.fill(false);
                warper.draw_row(source, closed, ys.start + r, xs.clone(), rgba, covered);
            });
    }

    /// Softens the head's mask.
    fn soften_head(&mut self, width: usize) {
        let (xs, ys) = self.head_box.clone();
        if self.soften == 0 || xs.is_empty() || ys.is_empty() {
            return;
        }
        let (bw, bh) = (xs.len(), ys.len());
        self.alpha.clear();
        for row in self.head.chunks_exact(width) {
            self.alpha
                .extend(row[xs.clone()].iter().map(|px| px[3] as f32));
        }
        self.blur.apply(&mut self.alpha, bw, bh, 1, self.soften, 2);
        for (row, alpha) in self
            .head
            .chunks_exact_mut(width)
            .zip(self.alpha.chunks_exact(bw))
        {
            for (px, a) in row[xs.clone()].iter_mut().zip(alpha) {
                px[3] = (a + 0.5) as u8;
            }
        }
    }

    /// Draws this frame's row `y` into `rgba` and `covered` (full canvas rows): the columns
    /// this layer may show there ([`PersonLayer::needed`]), the rest unmarked.
    pub fn draw_row(&self, y: usize, rgba: &mut [[u8; 4]], covered: &mut [bool]) {
        covered.fill(false);
        let need = self.needed(y);
        let (xs, ys) = &self.head_box;
        if let Some((all, all_covered)) = &self.device {
            let width = rgba.len();
            let at = y * width;
            rgba[need.clone()].copy_from_slice(&all[at + need.start..at + need.end]);
            covered[need.clone()].copy_from_slice(&all_covered[at + need.start..at + need.end]);
        }
        if self.device.is_some() && (!ys.contains(&y) || xs.is_empty()) {
            return;
        }
        if !ys.contains(&y) || xs.is_empty() {
            let (source, closed) = (&self.source, &self.closed);
            self.warper.draw_row(source, closed, y, need, rgba, covered);
            return;
        }
        if self.device.is_none() {
            let (source, closed) = (&self.source, &self.closed);
            self.warper
                .draw_row(source, closed, y, need.start..xs.start, rgba, covered);
            self.warper
                .draw_row(source, closed, y, xs.end..need.end, rgba, covered);
        }
        let width = rgba.len();
        let r = (y - ys.start) * width;
        rgba[xs.clone()].copy_from_slice(&self.head[r + xs.start..r + xs.end]);
        covered[xs.clone()].copy_from_slice(&self.head_covered[r + xs.start..r + xs.end]);
    }

    /// The columns of row `y` this layer may show: its half, and its head wherever it leans.
    fn needed(&self, y: usize) -> Range<usize> {
        let (xs, ys) = &self.head_box;
        if ys.contains(&y) && !xs.is_empty() {
            self.half.start.min(xs.start)..self.half.end.max(xs.end)
        } else {
            self.half.clone()
        }
    }

    /// The farthest the head's outline moves in `plans`, pixels.
    pub fn travel<'a>(rest: &FacePlan, plans: impl Iterator<Item = &'a FacePlan>) -> f32 {
        let frame = Frame::of(&rest.landmarks);
        let z = 0.5 * (rest.depth[0] + rest.depth[16]);
        let skull = skull_offset(rest);
        let mut outline = head_outline(&frame, skull);
        outline.extend(neck(&frame, skull));
        plans
            .flat_map(|plan| {
                outline.iter().map(move |&p| {
                    let d = moved_by(&plan.motion, p, z);
                    (d[0] * d[0] + d[1] * d[1]).sqrt()
                })
            })
            .fold(0.0, f32::max)
    }
}

/// How far a head's motion moves the point `p` at depth `z`, pixels.
fn moved_by(motion: &HeadMotion, p: [f32; 2], z: f32) -> [f32; 2] {
    let q = motion.apply([p[0], p[1], z]);
    [q[0] - p[0], q[1] - p[1]]
}

/// How far the head around a face is shifted away from its nose, pixels.
fn skull_offset(rest: &FacePlan) -> [f32; 2] {
    let f = rest.axes.forward;
    [-SKULL_BACK * f[0], -SKULL_BACK * f[1]]
}

/// The head around the face ([`HEAD`]), at rest.
fn head_outline(frame: &Frame, skull: [f32; 2]) -> Vec<[f32; 2]> {
    HEAD.iter()
        .map(|&[a, u]| {
            let p = frame.at(frame.brows, a, u);
            [p[0] + skull[0], p[1] + skull[1]]
        })
        .collect()
}

/// Neck and shoulders ([`NECK`]) at rest: half as far behind the face as the skull.
fn neck(frame: &Frame, skull: [f32; 2]) -> Vec<[f32; 2]> {
    NECK.iter()
        .map(|&[a, d]| {
            let p = frame.at(frame.chin, a, -d);
            [p[0] + 0.5 * skull[0], p[1] + 0.5 * skull[1]]
        })
        .collect()
}

/// The ellipse through the head's top, sides and the neck below the chin.
fn head_ellipse(frame: &Frame, skull: [f32; 2]) -> HeadEllipse {
    let top = HEAD_TOP;
    let bottom = -1.0 - NECK[1][1];
    let c = frame.at(frame.brows, 0.0, 0.5 * (top + bottom));
    let centre = [c[0] + skull[0], c[1] + skull[1]];
    HeadEllipse {
        centre,
        right: frame.right,
        up: frame.up,
        axes: [
            HEAD[0][0].abs() * frame.half_width,
            0.5 * (top - bottom) * frame.height,
        ],
    }
}

/// A copy of `source` with both eyes shut: over each eye an ellipse, well beyond the eye's
/// landmarks, filled with the skin just above and just below it blended top to bottom, with
/// a soft lash line along the upper lid (which is where a shut lid's edge ends up).
fn shut_eyes(source: &Source, frame: &Frame, lm: &Landmarks) -> Source {
    let mut out = source.clone();
    let (w, h) = (source.width, source.height);
    let iod = frame.iod;
    let sample = |p: [f32; 2]| {
        let x = (p[0].max(0.0) as usize).min(w - 1);
        let y = (p[1].max(0.0) as usize).min(h - 1);
        let i = (y * w + x) * 4;
        [
            source.rgba[i] as f32,
            source.rgba[i + 1] as f32,
            source.rgba[i + 2] as f32,
        ]
    };
    for eye in [36..42, 42..48] {
        let pts = &lm.0[eye.clone()];
        let n = pts.len() as f32;
        let centre = pts
            .iter()
            .fold([0.0f32; 2], |a, p| [a[0] + p[0] / n, a[1] + p[1] / n]);
        let local: Vec<[f32; 2]> = pts.iter().map(|p| frame.local(centre, *p)).collect();
        let (u0, u1) = local
            .iter()
            .fold((f32::MAX, f32::MIN), |(a, b), q| (a.min(q[0]), b.max(q[0])));
        let (v0, v1) = local
            .iter()
            .fold((f32::MAX, f32::MIN), |(a, b), q| (a.min(q[1]), b.max(q[1])));
        let mid = frame.global(centre, [0.5 * (u0 + u1), 0.5 * (v0 + v1)]);
        let a = LID_WIDE * (u1 - u0) + LID_MARGIN * iod;
        let b = LID_TALL * (v1 - v0).max(EYE_MIN_HEIGHT * iod) + LID_MARGIN * iod;
        let reach = a.max(b) + 2.0;
        let (x0, x1) = (
            (mid[0] - reach).floor().max(0.0) as usize,
            ((mid[0] + reach).ceil().max(0.0) as usize).min(w),
        );
        let (y0, y1) = (
            (mid[1] - reach).floor().max(0.0) as usize,
            ((mid[1] + reach).ceil().max(0.0) as usize).min(h),
        );
        // The upper lid, from corner to corner, in the ellipse's frame.
        let lid: Vec<[f32; 2]> = [0, 1, 2, 3]
            .iter()
            .map(|&k| frame.local(mid, pts[k]))
            .collect();
        let lash = (LASH_WIDTH * iod).max(1.0);
        for y in y0..y1 {
            for x in x0..x1 {
                let [u, v] = frame.local(mid, [x as f32 + 0.5, y as f32 + 0.5]);
                let rho = ((u / a).powi(2) + (v / b).powi(2)).sqrt();
                if rho >= 1.0 {
                    continue;
                }
                let weight = 1.0 - smoothstep((rho - 0.55) / 0.45);
                let top = sample(frame.global(mid, [u, b + 1.5]));
                let bottom = sample(frame.global(mid, [u, -b - 1.5]));
                let t = ((v + b) / (2.0 * b)).clamp(0.0, 1.0);
                let mut skin: [f32; 3] =
                    std::array::from_fn(|c| bottom[c] + (top[c] - bottom[c]) * t);
                // The lash line: just above the upper lid.
                if let Some(above) = above_polyline(&lid, [u, v])
                    && above < lash
                {
                    let dark = 1.0 - LASH_DARK * (1.0 - above / lash);
                    skin = skin.map(|c| c * dark);
                }
                let i = (y * w + x) * 4;
                for (o, v) in out.rgba[i..i + 3].iter_mut().zip(skin) {
                    let old = *o as f32;
                    *o = (old + (v - old) * weight).round().clamp(0.0, 255.0) as u8;
                }
            }
        }
    }
    out
}

/// How far `p` lies above a polyline running left to right (in its frame, `v` up), or `None`
/// when it is beside the polyline or below it.
fn above_polyline(line: &[[f32; 2]], p: [f32; 2]) -> Option<f32> {
    line.windows(2).find_map(|seg| {
        let (a, b) = (seg[0], seg[1]);
        let (lo, hi) = (a[0].min(b[0]), a[0].max(b[0]));
        if p[0] < lo || p[0] > hi || hi - lo < 1e-3 {
            return None;
        }
        let v = a[1] + (p[0] - a[0]) / (b[0] - a[0]) * (b[1] - a[1]);
        (p[1] >= v).then_some(p[1] - v)
    })
}

/// Cubic smoothstep of `x` clamped to 0..=1.
fn smoothstep(x: f32) -> f32 {
    let x = x.clamp(0.0, 1.0);
    x * x * (3.0 - 2.0 * x)
}
