//! One person as a layer: their cut-out (the scene's colours, alpha = their mask), deformed by
//! one mesh that carries the face, the head, the hair and the body along the timeline.
//!
//! The mesh's vertices, in scene pixels at rest:
//! - the face: the dense mesh's 468 points with their own depth (or, without a mesh, the 68
//!   landmarks with the mean shape's depth). They turn in 3D with the head and carry the
//!   expression: the upper lids come down over the eyes taking the lid skin and lashes with
//!   them (the rows above the lid follow part of the way), the lower lids rise a little, the
//!   lips purse along their own contour and come forward, or widen into a smile;
//! - the head around the face (hair above the brows, the sides, the ears) at the skull's
//!   depth, moving rigidly with the head;
//! - the neck, rings around the head and a grid over the whole scene, whose motion is the
//!   head's, fading with the distance from the head and toward the scene's edges and bottom, so
//!   the body leans with the head and nothing tears where the person meets the frame's edge.
//!
//! The eyes' and the mouth's interiors are drawn first, under everything else of the face, so a
//! closing lid covers the eye with the person's own lid and never with paint.
//!
//! Each frame the moved mesh goes through the virtual camera ([`super::camera::View`]) and is
//! drawn over the whole output canvas, far triangles first.

use rayon::prelude::*;

use super::camera::View;
use super::mesh::{Mesh, Source, Warper};
use crate::generate::GenerateError;
use crate::generate::expression::Expression;
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
/// Fade of the motion with the distance from the head: it reaches zero at this many times the
/// head's largest travel...
const FADE_PER_TRAVEL: f32 = 2.2;
/// ...and at least this many head radii.
const FADE_MIN_RADII: f32 = 1.8;
/// Rings of points around the head (elliptic radii, points per ring).
const RINGS: [(f32, usize); 5] = [(1.3, 20), (1.7, 24), (2.2, 28), (2.9, 32), (3.8, 36)];
/// Scene grid: about this many cells along the longer side.
const GRID_CELLS: f32 = 12.0;
/// The skull's centre lies this many inter-ocular distances behind the face.
const SKULL_BACK: f32 = 0.9;
/// Depth given to the body's vertices: farther than any face.
const FAR: f32 = 1.0e5;
/// Passes of neighbour averaging over the dense mesh's depth.
const DEPTH_SMOOTHING: usize = 4;
/// Between two people, the body counts as this many inter-ocular distances behind the ears.
const BODY_BEHIND: f32 = 0.3;
/// Where the closing lids meet, from the upper lid toward the lower (0..1).
const LID_MEET: f32 = 0.8;
/// Share of the upper lid's travel taken by the rows above it (the lid skin), and of the lower
/// lid's by the row below it.
const LID_ROWS: [f32; 2] = [0.5, 0.15];
const LOWER_ROW: f32 = 0.35;
/// Pucker: corners drawn toward the mouth centre, other lip points less; lips rounder
/// vertically, the lips closing, and the mouth pushed forward (inter-ocular distances).
const PUCKER_CORNER_IN: f32 = 0.3;
const PUCKER_LIP_IN: f32 = 0.14;
const PUCKER_ROUND: f32 = 0.08;
const PUCKER_INNER_CLOSE: f32 = 0.75;
const PUCKER_PUSH: f32 = 0.22;
/// Smile: corners out and up, in inter-ocular distances.
const SMILE_OUT: f32 = 0.07;
const SMILE_UP: f32 = 0.06;

/// The MediaPipe face mesh's named contours (canonical 468-point indices).
mod dense {
    /// Upper lid (7 points between the corners) and the two rows of lid skin above it, per eye.
    pub const UPPER: [[[usize; 7]; 3]; 2] = [
        [
            FaceMesh::RIGHT_EYE_UPPER,
            [247, 30, 29, 27, 28, 56, 190],
            [113, 225, 224, 223, 222, 221, 189],
        ],
        [
            FaceMesh::LEFT_EYE_UPPER,
            [467, 260, 259, 257, 258, 286, 414],
            [342, 445, 444, 443, 442, 441, 413],
        ],
    ];
    /// Lower lid between the corners (7) and the row below it, per eye.
    pub const LOWER: [[[usize; 7]; 2]; 2] = [
        [
            [7, 163, 144, 145, 153, 154, 155],
            [25, 110, 24, 23, 22, 26, 112],
        ],
        [
            [249, 390, 373, 374, 380, 381, 382],
            [255, 339, 254, 253, 252, 256, 341],
        ],
    ];
    /// Eye corners (outer, inner), per eye.
    pub const CORNERS: [[usize; 2]; 2] = [[33, 133], [263, 362]];
    pub use crate::face::mesh::FaceMesh;
    pub const LIPS_OUTER: [usize; 20] = FaceMesh::LIPS_OUTER;
    pub const LIPS_INNER: [usize; 20] = FaceMesh::LIPS_INNER;
    pub const FACE_OVAL: [usize; 36] = FaceMesh::FACE_OVAL;
    /// Mouth corners: outer and inner.
    pub const MOUTH_CORNERS: [usize; 4] = [61, 291, 78, 308];
}

/// Which face vertices carry the lids and the lips.
#[derive(Debug, Clone)]
struct Rig {
    /// Per eye: upper lid points, each with the lower-lid point it closes onto and the rows of
    /// lid skin above it.
    lids: Vec<Lid>,
    /// Lip points: (vertex, inner contour?, corner?).
    lips: Vec<(usize, bool, bool)>,
    /// Vertices of the eyes' and the mouth's interiors (drawn under the rest).
    interiors: Vec<Vec<usize>>,
}

#[derive(Debug, Clone)]
struct Lid {
    upper: usize,
    lower: usize,
    above: Vec<(usize, f32)>,
    below: Vec<(usize, f32)>,
}

impl Rig {
    fn dense() -> Self {
        let mut lids = Vec::new();
        let mut interiors = Vec::new();
        for eye in 0..2 {
            for i in 0..7 {
                lids.push(Lid {
                    upper: dense::UPPER[eye][0][i],
                    lower: dense::LOWER[eye][0][i],
                    above: vec![
                        (dense::UPPER[eye][1][i], LID_ROWS[0]),
                        (dense::UPPER[eye][2][i], LID_ROWS[1]),
                    ],
                    below: vec![(dense::LOWER[eye][1][i], LOWER_ROW)],
                });
            }
            let mut ring: Vec<usize> = dense::UPPER[eye][0].to_vec();
            ring.extend(dense::LOWER[eye][0]);
            ring.extend(dense::CORNERS[eye]);
            interiors.push(ring);
        }
        let mut lips: Vec<(usize, bool, bool)> = dense::LIPS_OUTER
            .iter()
            .map(|&v| (v, false, dense::MOUTH_CORNERS.contains(&v)))
            .collect();
        lips.extend(
            dense::LIPS_INNER
                .iter()
                .map(|&v| (v, true, dense::MOUTH_CORNERS.contains(&v))),
        );
        interiors.push(dense::LIPS_INNER.to_vec());
        Self {
            lids,
            lips,
            interiors,
        }
    }

    fn landmarks68() -> Self {
        let lids = [(37, 41), (38, 40), (43, 47), (44, 46)]
            .into_iter()
            .map(|(upper, lower)| Lid {
                upper,
                lower,
                above: Vec::new(),
                below: Vec::new(),
            })
            .collect();
        let lips = (48..68)
            .map(|v| (v, v >= 60, [48, 54, 60, 64].contains(&v)))
            .collect();
        Self {
            lids,
            lips,
            interiors: vec![(36..42).collect(), (42..48).collect(), (60..68).collect()],
        }
    }
}

/// How a vertex beyond the face moves.
#[derive(Debug, Clone, Copy)]
enum Follow {
    /// Rigidly with the head, at this depth (pixels).
    Head { z: f32 },
    /// With the head's motion at `anchor` (a point on the head's outline, at depth `z`),
    /// scaled per axis.
    Fade {
        anchor: [f32; 2],
        z: f32,
        weight: [f32; 2],
    },
}

/// The head's outline as an ellipse in the face's own frame: what the fade is measured from.
#[derive(Debug, Clone, Copy)]
struct HeadEllipse {
    centre: [f32; 2],
    right: [f32; 2],
    up: [f32; 2],
    axes: [f32; 2],
}

impl HeadEllipse {
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

    fn beyond(&self, p: [f32; 2]) -> f32 {
        let (rho, _) = self.radius_and_anchor(p);
        let len = ((p[0] - self.centre[0]).powi(2) + (p[1] - self.centre[1]).powi(2)).sqrt();
        (len * (1.0 - 1.0 / rho)).max(0.0)
    }

    fn radius(&self) -> f32 {
        self.axes[0].max(self.axes[1])
    }
}

/// The face's own frame at rest.
#[derive(Debug, Clone, Copy)]
struct Frame {
    right: [f32; 2],
    up: [f32; 2],
    brows: [f32; 2],
    chin: [f32; 2],
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

/// One person's layer: the cut-out, its mesh and the buffers reused every frame.
pub struct PersonLayer {
    pub source: Source,
    mesh: Mesh,
    /// The face's vertices at rest, scene pixels with depth (larger = farther).
    face: Vec<[f32; 3]>,
    rig: Rig,
    frame: Frame,
    follow: Vec<Follow>,
    head_z: f32,
    expressed_face: Vec<[f32; 3]>,
    dest: Vec<[f32; 2]>,
    depth: Vec<f32>,
    /// Each vertex's depth for deciding, per pixel, which person is nearer.
    zdepth: Vec<f32>,
    warper: Warper,
    tables: crate::gpu::WarpTables,
    uploaded: Option<crate::gpu::DeviceImage>,
    /// This frame's whole layer as the device drew it, when it did.
    device: Option<(Vec<[u8; 4]>, Vec<bool>)>,
    /// This frame's 68 landmarks (expression applied), scene pixels.
    pub expressed: Landmarks,
    /// Whether the face is the dense mesh (true) or the 68 landmarks.
    pub dense: bool,
}

impl PersonLayer {
    /// Builds a person's layer from their cut-out (scene sized) around the face at rest, for a
    /// head whose outline travels at most `travel` pixels. `mesh` is the dense face mesh in
    /// scene pixels, when there is one.
    pub fn build(
        index: usize,
        source: Source,
        rest: &FacePlan,
        mesh: Option<&[[f32; 3]]>,
        travel: f32,
    ) -> Result<Self, GenerateError> {
        let (w, h) = (source.width, source.height);
        let lm = rest.landmarks;
        let frame = Frame::of(&lm);
        let head_z = 0.5 * (rest.depth[0] + rest.depth[16]);
        let skull = skull_offset(rest);
        let ellipse = head_ellipse(&frame, skull);

        let (face, rig, dense) = face_vertices(rest, mesh);
        let n_face = face.len();
        let outline = Outline::of(&face, dense, &frame, head_z);
        let mut points: Vec<[f32; 2]> = face.iter().map(|p| [p[0], p[1]]).collect();
        let mut follow = Vec::new();
        for p in head_points(&frame, skull, &lm, dense) {
            points.push(p);
            // With the dense mesh, the head around the face moves as the nearest point of the
            // face's edge does, so the two never fold into each other.
            follow.push(if dense {
                let q = outline.nearest(p);
                Follow::Fade {
                    anchor: [q[0], q[1]],
                    z: outline.depth_near([q[0], q[1]]),
                    weight: [1.0, 1.0],
                }
            } else {
                Follow::Head { z: head_z }
            });
        }
        // Everything else fades.
        let fading = Fading {
            ellipse: &ellipse,
            outline: &outline,
            fade: (FADE_PER_TRAVEL * travel).max(FADE_MIN_RADII * ellipse.radius()),
            spacing: (w.max(h) as f32 / GRID_CELLS).max(8.0),
            size: (w as f32, h as f32),
            chin_y: frame.chin[1],
        };
        for p in fill_points(&frame, skull, &ellipse, &points, fading.spacing, (w, h)) {
            points.push(p);
            follow.push(fading.at(p));
        }
        let mut mesh = Mesh::triangulate(points, n_face)
            .ok_or(GenerateError::Triangulation { face: index })?;
        mark_triangles(&mut mesh, &rig, n_face);
        mesh.mark_empty(&source);
        let face = if dense {
            smooth_depth(face, &mesh.triangles)
        } else {
            face
        };
        let n = mesh.source.len();
        Ok(Self {
            source,
            mesh,
            expressed_face: face.clone(),
            face,
            rig,
            frame,
            follow,
            head_z,
            dest: Vec::with_capacity(n),
            depth: Vec::with_capacity(n),
            zdepth: Vec::with_capacity(n),
            warper: Warper::default(),
            tables: crate::gpu::WarpTables::default(),
            uploaded: None,
            device: None,
            expressed: lm,
            dense,
        })
    }

    /// Moves the mesh to a frame's plan, through the camera `view`, and indexes its triangles
    /// for drawing on a `canvas` (width, height). `nearer` (scene pixels) brings the whole
    /// person toward the camera when deciding who covers whom. With `gpu`, the layer is drawn
    /// on the device here (on a device error the frame is drawn on the CPU, and the error
    /// returned for the log).
    pub fn prepare(
        &mut self,
        plan: &FacePlan,
        view: &View,
        nearer: f32,
        canvas: (usize, usize),
        gpu: Option<&crate::gpu::Gpu>,
    ) -> Result<(), String> {
        self.expressed = plan.expressed();
        self.express(&plan.expression);
        self.dest.clear();
        self.depth.clear();
        self.zdepth.clear();
        let motion = &plan.motion;
        for p in &self.expressed_face {
            let q = motion.apply(*p);
            self.dest.push(view.to_output([q[0], q[1]]));
            self.depth.push(q[2]);
            self.zdepth.push(q[2] - nearer);
        }
        let body_z = self.head_z + BODY_BEHIND * self.frame.iod - nearer;
        let n_face = self.face.len();
        for (p, f) in self.mesh.source[n_face..].iter().zip(&self.follow) {
            match *f {
                Follow::Head { z } => {
                    let q = motion.apply([p[0], p[1], z]);
                    self.dest.push(view.to_output([q[0], q[1]]));
                    self.depth.push(q[2]);
                    self.zdepth.push(q[2] - nearer);
                }
                Follow::Fade { anchor, z, weight } => {
                    let q = motion.apply([anchor[0], anchor[1], z]);
                    let d = [q[0] - anchor[0], q[1] - anchor[1]];
                    self.dest
                        .push(view.to_output([p[0] + weight[0] * d[0], p[1] + weight[1] * d[1]]));
                    self.depth.push(FAR);
                    // Next to the face (hair, beard, ears) as near as the face's edge there,
                    // farther out the body's depth.
                    let s = smoothstep(weight[1].clamp(0.0, 1.0));
                    let edge = q[2] - nearer;
                    self.zdepth.push(if edge < body_z {
                        body_z + s * (edge - body_z)
                    } else {
                        body_z
                    });
                }
            }
        }
        self.warper
            .prepare(&self.mesh, &self.dest, &self.depth, 0.0, canvas);
        self.warper.prepare_depth(&self.zdepth);
        self.device = None;
        match gpu {
            Some(gpu) => self.draw_on_device(gpu, canvas),
            None => Ok(()),
        }
    }

    /// The face's vertices with `e` applied, in the face's own frame at rest.
    fn express(&mut self, e: &Expression) {
        self.expressed_face.clone_from(&self.face);
        let out = &mut self.expressed_face;
        let rest = &self.face;
        let closure = e.eye_closure.clamp(0.0, 1.0);
        if closure > 0.0 {
            for lid in &self.rig.lids {
                let (u, l) = (rest[lid.upper], rest[lid.lower]);
                let meet: [f32; 3] = std::array::from_fn(|c| u[c] + LID_MEET * (l[c] - u[c]));
                let du: [f32; 3] = std::array::from_fn(|c| closure * (meet[c] - u[c]));
                let dl: [f32; 3] = std::array::from_fn(|c| closure * (meet[c] - l[c]));
                for c in 0..3 {
                    out[lid.upper][c] += du[c];
                    out[lid.lower][c] += dl[c];
                }
                for &(v, share) in &lid.above {
                    for c in 0..3 {
                        out[v][c] += share * du[c];
                    }
                }
                for &(v, share) in &lid.below {
                    for c in 0..3 {
                        out[v][c] += share * dl[c];
                    }
                }
            }
        }
        let (pucker, smile) = (e.pucker.clamp(0.0, 1.0), e.smile.clamp(0.0, 1.0));
        if pucker <= 0.0 && smile <= 0.0 {
            return;
        }
        let f = self.frame;
        let n = self.rig.lips.iter().filter(|l| !l.1).count().max(1) as f32;
        let centre = self
            .rig
            .lips
            .iter()
            .filter(|l| !l.1)
            .fold([0.0f32; 2], |a, &(v, _, _)| {
                [a[0] + rest[v][0] / n, a[1] + rest[v][1] / n]
            });
        let down = [-f.up[0], -f.up[1]];
        for &(v, inner, corner) in &self.rig.lips {
            let p = rest[v];
            let local = f.local(centre, [p[0], p[1]]);
            let (mut u, mut w) = (local[0], -local[1]);
            u *= 1.0
                - pucker
                    * if corner {
                        PUCKER_CORNER_IN
                    } else {
                        PUCKER_LIP_IN
                    };
            w *= 1.0 + PUCKER_ROUND * pucker;
            if inner {
                w *= 1.0 - PUCKER_INNER_CLOSE * pucker;
            }
            let push = PUCKER_PUSH * pucker * f.iod * if corner { 0.5 } else { 1.0 };
            if corner {
                u += u.signum() * SMILE_OUT * smile * f.iod;
                w -= SMILE_UP * smile * f.iod;
            }
            out[v] = [
                centre[0] + u * f.right[0] + w * down[0],
                centre[1] + u * f.right[1] + w * down[1],
                p[2] - push,
            ];
        }
    }

    /// Warps the whole layer on the device.
    fn draw_on_device(
        &mut self,
        gpu: &crate::gpu::Gpu,
        (w, h): (usize, usize),
    ) -> Result<(), String> {
        let mut rgba = vec![[0u8; 4]; w * h];
        let mut covered = vec![false; w * h];
        self.warper.fill_tables(&mut self.tables);
        let uploaded = match self.uploaded.take() {
            Some(u) => u,
            None => gpu.upload(&self.source)?,
        };
        let source = &*self.uploaded.insert(uploaded);
        gpu.warp(
            &self.tables,
            source,
            source,
            0..h,
            0..w,
            w,
            &mut rgba,
            &mut covered,
        )?;
        self.device = Some((rgba, covered));
        Ok(())
    }

    /// Draws this frame's row `y` into `rgba` (a full canvas row) and the depth of each drawn
    /// pixel into `zbuf`; pixels no triangle covers are left uncovered.
    pub fn draw_row(&self, y: usize, rgba: &mut [[u8; 4]], covered: &mut [bool], zbuf: &mut [f32]) {
        covered.fill(false);
        if let Some((all, all_covered)) = &self.device {
            self.warper.draw_depth_row(y, zbuf);
            let width = rgba.len();
            rgba.copy_from_slice(&all[y * width..(y + 1) * width]);
            covered.copy_from_slice(&all_covered[y * width..(y + 1) * width]);
            return;
        }
        let width = rgba.len();
        self.warper.draw_row_with_depth(
            &self.source,
            &self.source,
            y,
            0..width,
            rgba,
            covered,
            Some(zbuf),
        );
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

/// One layer's row as drawn: colour and mask, coverage, depth.
pub struct Row {
    pub rgba: Vec<[u8; 4]>,
    pub covered: Vec<bool>,
    pub z: Vec<f32>,
}

impl Row {
    fn new(width: usize) -> Self {
        Self {
            rgba: vec![[0; 4]; width],
            covered: vec![false; width],
            z: vec![0.0; width],
        }
    }
}

/// Draws rows of both layers in parallel: the caller's `each_row(y, a, b, out)` composites.
pub fn draw_rows(
    people: &[PersonLayer; 2],
    out: &mut [u8],
    width: usize,
    each_row: impl Fn(usize, &Row, &Row, &mut [u8]) + Sync,
) {
    out.par_chunks_mut(width * 3).enumerate().for_each_init(
        || (Row::new(width), Row::new(width)),
        |(a, b), (y, row)| {
            people[0].draw_row(y, &mut a.rgba, &mut a.covered, &mut a.z);
            people[1].draw_row(y, &mut b.rgba, &mut b.covered, &mut b.z);
            each_row(y, a, b, row);
        },
    );
}

/// The face's depth smoothed over its mesh neighbours: the mesh model's depth is noisy from
/// point to point along the face's edge, and a head turn would turn that noise into a jagged
/// edge.
fn smooth_depth(mut face: Vec<[f32; 3]>, triangles: &[[u32; 3]]) -> Vec<[f32; 3]> {
    let n = face.len();
    let mut neighbours: Vec<Vec<usize>> = vec![Vec::new(); n];
    for t in triangles {
        for (a, b) in [(t[0], t[1]), (t[1], t[2]), (t[2], t[0])] {
            let (a, b) = (a as usize, b as usize);
            if a < n && b < n {
                if !neighbours[a].contains(&b) {
                    neighbours[a].push(b);
                }
                if !neighbours[b].contains(&a) {
                    neighbours[b].push(a);
                }
            }
        }
    }
    for _ in 0..DEPTH_SMOOTHING {
        let z: Vec<f32> = face.iter().map(|p| p[2]).collect();
        for (p, near) in face.iter_mut().zip(&neighbours) {
            if !near.is_empty() {
                let mean = near.iter().map(|&j| z[j]).sum::<f32>() / near.len() as f32;
                p[2] = 0.5 * p[2] + 0.5 * mean;
            }
        }
    }
    face
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

fn head_outline(frame: &Frame, skull: [f32; 2]) -> Vec<[f32; 2]> {
    HEAD.iter()
        .map(|&[a, u]| {
            let p = frame.at(frame.brows, a, u);
            [p[0] + skull[0], p[1] + skull[1]]
        })
        .collect()
}

fn neck(frame: &Frame, skull: [f32; 2]) -> Vec<[f32; 2]> {
    NECK.iter()
        .map(|&[a, d]| {
            let p = frame.at(frame.chin, a, -d);
            [p[0] + 0.5 * skull[0], p[1] + 0.5 * skull[1]]
        })
        .collect()
}

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

/// The face's vertices at rest (scene pixels with depth) and its rig: the dense mesh's 468
/// points with their own depth, brought to the mean of the landmarks' lifted depth, when the
/// mesh is there and finite; else the 68 landmarks on the lifted depth. Also whether dense.
fn face_vertices(rest: &FacePlan, mesh: Option<&[[f32; 3]]>) -> (Vec<[f32; 3]>, Rig, bool) {
    match mesh.filter(|m| m.len() >= 468 && m.iter().flatten().all(|v| v.is_finite())) {
        Some(m) => {
            let mean_z = m[..468].iter().map(|p| p[2]).sum::<f32>() / 468.0;
            let lifted_mean = rest.depth.iter().sum::<f32>() / N_LANDMARKS as f32;
            let face = m[..468]
                .iter()
                .map(|p| [p[0], p[1], p[2] - mean_z + lifted_mean])
                .collect();
            (face, Rig::dense(), true)
        }
        None => {
            let lm = &rest.landmarks;
            let face = (0..N_LANDMARKS)
                .map(|i| [lm.0[i][0], lm.0[i][1], rest.depth[i]])
                .collect();
            (face, Rig::landmarks68(), false)
        }
    }
}

/// The face's outline: what the head around it moves with, at the outline's own depth (so the
/// hair beside a turned face turns with the face's edge and never folds).
struct Outline {
    points: Vec<[f32; 3]>,
    /// How quickly the weight of an edge point falls with its distance, pixels.
    spread: f32,
    head_z: f32,
}

impl Outline {
    fn of(face: &[[f32; 3]], dense: bool, frame: &Frame, head_z: f32) -> Self {
        let points = if dense {
            dense::FACE_OVAL.iter().map(|&i| face[i]).collect()
        } else {
            (0..17).map(|i| face[i]).collect()
        };
        Self {
            points,
            spread: (0.6 * frame.iod).max(1.0),
            head_z,
        }
    }

    /// The outline's point nearest to `p`.
    fn nearest(&self, p: [f32; 2]) -> [f32; 3] {
        self.points
            .iter()
            .min_by(|a, b| {
                let da = (a[0] - p[0]).powi(2) + (a[1] - p[1]).powi(2);
                let db = (b[0] - p[0]).powi(2) + (b[1] - p[1]).powi(2);
                da.total_cmp(&db)
            })
            .copied()
            .unwrap_or([p[0], p[1], self.head_z])
    }

    /// The edge's depth around `p`, smoothly weighted (a nearest point alone would jump from
    /// one edge point's depth to the next and fold the ring around the face).
    fn depth_near(&self, p: [f32; 2]) -> f32 {
        let d2min = self
            .points
            .iter()
            .map(|q| (q[0] - p[0]).powi(2) + (q[1] - p[1]).powi(2))
            .fold(f32::MAX, f32::min);
        let (mut sum, mut wsum) = (0.0f32, 0.0f32);
        for q in &self.points {
            let d2 = (q[0] - p[0]).powi(2) + (q[1] - p[1]).powi(2);
            let w = (-(d2.sqrt() - d2min.sqrt()) / self.spread).exp();
            sum += w * q[2];
            wsum += w;
        }
        if wsum > 0.0 { sum / wsum } else { self.head_z }
    }
}

/// The head around the face, and with the 68 landmarks the ears.
fn head_points(frame: &Frame, skull: [f32; 2], lm: &Landmarks, dense: bool) -> Vec<[f32; 2]> {
    let mut points = head_outline(frame, skull);
    if !dense {
        points.extend([0, 16].map(|i| {
            let p = frame.out(lm.0[i], EAR_OUT);
            let q = [p[0] + skull[0], p[1] + skull[1]];
            let side = if i == 0 { -1.0 } else { 1.0 };
            let out = frame.local(lm.0[i], q)[0] * side;
            if out < 0.05 * frame.half_width {
                frame.out(lm.0[i], 0.05)
            } else {
                q
            }
        }));
    }
    points
}

/// How a point away from the face follows it: fully near the head, less with distance, less
/// toward the scene's bottom (the body leans), and not at all across the scene's edges.
struct Fading<'a> {
    ellipse: &'a HeadEllipse,
    outline: &'a Outline,
    /// Distance beyond the head's ellipse over which the motion fades out, pixels.
    fade: f32,
    /// The spacing of the grid of points filling the scene, pixels.
    spacing: f32,
    size: (f32, f32),
    chin_y: f32,
}

impl Fading<'_> {
    fn at(&self, p: [f32; 2]) -> Follow {
        let (w, h) = self.size;
        let (_, anchor) = self.ellipse.radius_and_anchor(p);
        let near = 1.0 - smoothstep(self.ellipse.beyond(p) / self.fade);
        // Nothing moves across the scene's edges: a body cut by the frame stays cut there.
        let edge_x = smoothstep(p[0].min(w - p[0]) / (1.5 * self.spacing));
        let edge_y = smoothstep(p[1].min(h - p[1]) / (1.5 * self.spacing));
        let to_bottom = (h - p[1]).max(0.0) / (h - self.chin_y).max(self.spacing);
        // The body leans: less motion toward the bottom, none across it.
        let body = 0.35 + 0.65 * smoothstep(to_bottom);
        Follow::Fade {
            anchor,
            z: self.outline.depth_near(anchor),
            weight: [near * edge_x.max(0.0) * body, near * edge_y],
        }
    }
}

/// The points that fill the rest of the layer: the neck, rings around the head, and a grid
/// over the scene (`w` x `h`) `spacing` apart, keeping clear of each other and of `points`
/// (the face and head), with the scene's border always in.
fn fill_points(
    frame: &Frame,
    skull: [f32; 2],
    ellipse: &HeadEllipse,
    points: &[[f32; 2]],
    spacing: f32,
    (w, h): (usize, usize),
) -> Vec<[f32; 2]> {
    let inside = |p: [f32; 2], margin: f32| {
        p[0] > margin && p[0] < w as f32 - margin && p[1] > margin && p[1] < h as f32 - margin
    };
    let mut extra: Vec<[f32; 2]> = neck(frame, skull);
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
                    || near_points(p, points))
            {
                continue;
            }
            extra.push(p);
        }
    }
    extra
}

/// Marks the triangles inside the eyes and mouth to go under everything, and the face's own
/// (all three vertices among the first `n_face`) for bicubic sampling, its finest detail.
fn mark_triangles(mesh: &mut Mesh, rig: &Rig, n_face: usize) {
    for (t, tri) in mesh.triangles.iter().enumerate() {
        let interior = rig
            .interiors
            .iter()
            .any(|ring| tri.iter().all(|&v| ring.contains(&(v as usize))));
        mesh.bias[t] = if interior { 4.0 * FAR } else { 0.0 };
        mesh.sharp[t] = tri.iter().all(|&v| (v as usize) < n_face);
    }
}

fn smoothstep(x: f32) -> f32 {
    let x = x.clamp(0.0, 1.0);
    x * x * (3.0 - 2.0 * x)
}
