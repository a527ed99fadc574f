//! The mean 3D face shape, a weak-perspective pose fit, and head turns.
//!
//! Two frontal faces cannot kiss by sliding in 2D: their noses collide. Each face's landmarks are
//! lifted to 3D with the mean shape (`face3d-68.csv`), turned toward the partner, and projected
//! back.
//!
//! Conventions: the camera frame extends the image frame by depth: x to the image right, y down,
//! z away from the camera, all in image pixels. A [`Pose`] maps the model's points to the image
//! (scaled orthographic projection): `image = scale · (rotation · X).xy + translation`.
//! [`HeadAngles`] are in degrees:
//! - yaw > 0: the face turns toward the image right (its nose moves right);
//! - pitch > 0: the face looks up;
//! - roll > 0: the head tilts clockwise on screen (the top of the head moves to the right).
//!
//! The rotation is `Ry(yaw) · Rx(pitch) · Rz(roll)`: roll about the face's own forward axis
//! first, yaw about the camera's vertical axis last.

use crate::types::{Landmarks, N_LANDMARKS};

/// A 3D point or vector.
pub type Vec3 = [f32; 3];
/// A 3x3 matrix, row-major.
pub type Mat3 = [[f32; 3]; 3];

/// Why a mean-shape file could not be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ShapeError {
    /// The first line that is neither blank nor a `#` comment is not `x,y,z`.
    #[error("no `x,y,z` header before the rows")]
    MissingHeader,
    /// A row is not three finite numbers.
    #[error("line {line}: {reason}")]
    BadRow { line: usize, reason: String },
    /// Not one row per landmark.
    #[error("expected {expected} rows, found {found}")]
    RowCount { expected: usize, found: usize },
    /// The points lie in a plane (or on a line): no depth to lift with.
    #[error("the points are flat: no depth to turn a head with")]
    Flat,
}

/// Landmarks that cannot carry a pose: not finite, collapsed to a point or a line.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct DegenerateLandmarks(pub &'static str);

/// The mean 3D shape of the 68 iBUG-300W landmarks, in model units (millimetre-like).
#[derive(Debug, Clone, PartialEq)]
pub struct MeanShape {
    points: [Vec3; N_LANDMARKS],
    centroid: Vec3,
    /// Inverse of the scatter matrix Σ (X−X̄)(X−X̄)ᵀ, used by every pose fit.
    scatter_inv: Mat3,
    inter_ocular: f32,
}

impl MeanShape {
    /// Parses `face3d-68.csv`: `#` comment lines, a `x,y,z` header, then 68 rows in landmark
    /// order. Blank lines are ignored.
    pub fn parse(text: &str) -> Result<Self, ShapeError> {
        let mut header = false;
        let mut points = Vec::with_capacity(N_LANDMARKS);
        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if !header {
                let cols: String = line.chars().filter(|c| !c.is_whitespace()).collect();
                if !cols.eq_ignore_ascii_case("x,y,z") {
                    return Err(ShapeError::MissingHeader);
                }
                header = true;
                continue;
            }
            points.push(parse_row(line).map_err(|reason| ShapeError::BadRow {
                line: index + 1,
                reason,
            })?);
        }
        if !header {
            return Err(ShapeError::MissingHeader);
        }
        let found = points.len();
        let points: [Vec3; N_LANDMARKS] = points.try_into().map_err(|_| ShapeError::RowCount {
            expected: N_LANDMARKS,
            found,
        })?;
        Self::from_points(points)
    }

    /// A shape from 68 points in landmark order.
    pub fn from_points(points: [Vec3; N_LANDMARKS]) -> Result<Self, ShapeError> {
        let centroid = mean3(&points);
        let mut scatter = [[0.0f32; 3]; 3];
        for p in &points {
            let d = sub3(*p, centroid);
            for (r, row) in scatter.iter_mut().enumerate() {
                for (c, v) in row.iter_mut().enumerate() {
                    *v += d[r] * d[c];
                }
            }
        }
        let scatter_inv = inverse3(&scatter).ok_or(ShapeError::Flat)?;
        let eye = |range: std::ops::Range<usize>| mean3(&points[range]);
        let inter_ocular = norm3(sub3(eye(42..48), eye(36..42)));
        Ok(Self {
            points,
            centroid,
            scatter_inv,
            inter_ocular,
        })
    }

    /// The 68 points, in landmark order.
    pub fn points(&self) -> &[Vec3; N_LANDMARKS] {
        &self.points
    }

    /// Distance between the two eye centres, in model units.
    pub fn inter_ocular(&self) -> f32 {
        self.inter_ocular
    }
}

fn parse_row(line: &str) -> Result<Vec3, String> {
    let mut p = [0.0f32; 3];
    let mut fields = line.split(',');
    for (k, slot) in p.iter_mut().enumerate() {
        let field = fields
            .next()
            .ok_or_else(|| format!("expected 3 numbers, found {k}"))?
            .trim();
        *slot = field.parse().map_err(|e| format!("{field:?}: {e}"))?;
        if !slot.is_finite() {
            return Err(format!("{field:?} is not finite"));
        }
    }
    match fields.next() {
        Some(_) => Err("more than 3 numbers".into()),
        None => Ok(p),
    }
}

/// Head orientation in degrees (see the module documentation for signs and order).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct HeadAngles {
    pub yaw: f32,
    pub pitch: f32,
    pub roll: f32,
}

impl HeadAngles {
    /// The rotation `Ry(yaw) · Rx(pitch) · Rz(roll)`.
    pub fn rotation(&self) -> Mat3 {
        let (sy, cy) = self.yaw.to_radians().sin_cos();
        let (sp, cp) = self.pitch.to_radians().sin_cos();
        let (sr, cr) = self.roll.to_radians().sin_cos();
        let ry = [[cy, 0.0, -sy], [0.0, 1.0, 0.0], [sy, 0.0, cy]];
        let rx = [[1.0, 0.0, 0.0], [0.0, cp, sp], [0.0, -sp, cp]];
        let rz = [[cr, -sr, 0.0], [sr, cr, 0.0], [0.0, 0.0, 1.0]];
        mat_mul(&mat_mul(&ry, &rx), &rz)
    }

    /// The angles of a rotation built as [`HeadAngles::rotation`] builds it.
    pub fn of(rotation: &Mat3) -> Self {
        let r = rotation;
        // The face looks along −z of the model: forward = −(third column).
        let forward = [-r[0][2], -r[1][2], -r[2][2]];
        let yaw = forward[0].atan2(-forward[2]);
        let pitch = (-forward[1]).clamp(-1.0, 1.0).asin();
        let outer = HeadAngles {
            yaw: yaw.to_degrees(),
            pitch: pitch.to_degrees(),
            roll: 0.0,
        }
        .rotation();
        let rz = mat_mul(&transpose(&outer), r);
        let roll = rz[1][0].atan2(rz[0][0]);
        Self {
            yaw: yaw.to_degrees(),
            pitch: pitch.to_degrees(),
            roll: roll.to_degrees(),
        }
    }

    /// Linear interpolation from `self` (t = 0) to `to` (t = 1).
    pub fn lerp(&self, to: &HeadAngles, t: f32) -> Self {
        let l = |a: f32, b: f32| a + (b - a) * t;
        Self {
            yaw: l(self.yaw, to.yaw),
            pitch: l(self.pitch, to.pitch),
            roll: l(self.roll, to.roll),
        }
    }
}

/// A weak-perspective (scaled orthographic) pose: `image = scale · (rotation · X).xy + translation`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pose {
    /// Image pixels per model unit.
    pub scale: f32,
    /// Model to camera rotation.
    pub rotation: Mat3,
    /// Image position of the model origin, pixels.
    pub translation: [f32; 2],
}

impl Pose {
    /// Yaw, pitch and roll in degrees.
    pub fn angles(&self) -> HeadAngles {
        HeadAngles::of(&self.rotation)
    }
    /// Yaw in degrees; positive: the face turns toward the image right.
    pub fn yaw_deg(&self) -> f32 {
        self.angles().yaw
    }
    /// Pitch in degrees; positive: the face looks up.
    pub fn pitch_deg(&self) -> f32 {
        self.angles().pitch
    }
    /// Roll in degrees; positive: the head tilts clockwise on screen.
    pub fn roll_deg(&self) -> f32 {
        self.angles().roll
    }
    /// Projects a model point into the image.
    pub fn project(&self, p: Vec3) -> [f32; 2] {
        let q = mat_vec(&self.rotation, p);
        [
            self.scale * q[0] + self.translation[0],
            self.scale * q[1] + self.translation[1],
        ]
    }
}

/// Fits a weak-perspective pose of `shape` to observed 2D landmarks: least-squares affine camera,
/// then the nearest scaled rotation.
pub fn fit_pose(shape: &MeanShape, landmarks: &Landmarks) -> Result<Pose, DegenerateLandmarks> {
    let pts = &landmarks.0;
    if pts.iter().flatten().any(|v| !v.is_finite()) {
        return Err(DegenerateLandmarks("landmarks are not finite"));
    }
    let n = N_LANDMARKS as f32;
    let mean2 = pts
        .iter()
        .fold([0.0f32; 2], |a, p| [a[0] + p[0] / n, a[1] + p[1] / n]);
    // A = Σ (x − x̄)(X − X̄)ᵀ, a 2x3 matrix; the affine camera is M = A · S⁻¹.
    let mut a = [[0.0f32; 3]; 2];
    for (p, q) in pts.iter().zip(shape.points.iter()) {
        let d = sub3(*q, shape.centroid);
        for c in 0..3 {
            a[0][c] += (p[0] - mean2[0]) * d[c];
            a[1][c] += (p[1] - mean2[1]) * d[c];
        }
    }
    let s = &shape.scatter_inv;
    let m =
        |row: usize| -> Vec3 { std::array::from_fn(|c| (0..3).map(|k| a[row][k] * s[k][c]).sum()) };
    let (r1, r2) = (m(0), m(1));
    let (n1, n2) = (norm3(r1), norm3(r2));
    if !(n1 > 1e-6 && n2 > 1e-6) {
        return Err(DegenerateLandmarks("landmarks collapse to a point"));
    }
    // Nearest orthonormal pair to the two rows, symmetric in both: through their bisectors.
    let (u, v) = (scale3(r1, 1.0 / n1), scale3(r2, 1.0 / n2));
    let (sum, diff) = (add3(u, v), sub3(u, v));
    let (ns, nd) = (norm3(sum), norm3(diff));
    if ns < 1e-4 || nd < 1e-4 {
        return Err(DegenerateLandmarks("landmarks collapse to a line"));
    }
    let h = std::f32::consts::FRAC_1_SQRT_2;
    let (sum, diff) = (scale3(sum, h / ns), scale3(diff, h / nd));
    let row0 = add3(sum, diff);
    let row1 = sub3(sum, diff);
    let rotation = [row0, row1, cross3(row0, row1)];
    let scale = 0.5 * (n1 + n2);
    let c = mat_vec(&rotation, shape.centroid);
    let translation = [mean2[0] - scale * c[0], mean2[1] - scale * c[1]];
    Ok(Pose {
        scale,
        rotation,
        translation,
    })
}

/// Image-plane axes of a posed face, in pixels per inter-ocular distance: where a step of one
/// inter-ocular distance along the face's own right, down and forward (toward the camera)
/// directions lands on the image. Expressions ([`super::expression`]) are written in these units.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct FaceAxes {
    pub right: [f32; 2],
    pub down: [f32; 2],
    pub forward: [f32; 2],
}

/// A rigid 3D motion of a head in camera space (pixels): rotation about a pivot, then an
/// image-plane translation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeadMotion {
    pub pivot: Vec3,
    pub rotation: Mat3,
    pub translation: [f32; 2],
}

impl HeadMotion {
    /// Moves a camera-space point.
    pub fn apply(&self, p: Vec3) -> Vec3 {
        let q = mat_vec(&self.rotation, sub3(p, self.pivot));
        [
            self.pivot[0] + q[0] + self.translation[0],
            self.pivot[1] + q[1] + self.translation[1],
            self.pivot[2] + q[2],
        ]
    }
}

/// Observed landmarks lifted to 3D: x and y as observed, depth from the fitted mean shape
/// (relative to the face's centroid, pixels, larger = farther).
#[derive(Debug, Clone, PartialEq)]
pub struct LiftedFace {
    pose: Pose,
    angles: HeadAngles,
    points: [Vec3; N_LANDMARKS],
    centre: Vec3,
    pixels_per_iod: f32,
}

impl LiftedFace {
    /// Fits the pose and lifts every landmark.
    pub fn lift(shape: &MeanShape, landmarks: &Landmarks) -> Result<Self, DegenerateLandmarks> {
        let pose = fit_pose(shape, landmarks)?;
        let depth_of = |q: Vec3| pose.scale * dot3(pose.rotation[2], q);
        let z0 = depth_of(shape.centroid);
        let points: [Vec3; N_LANDMARKS] = std::array::from_fn(|i| {
            [
                landmarks.0[i][0],
                landmarks.0[i][1],
                depth_of(shape.points[i]) - z0,
            ]
        });
        let centre = mean3(&points);
        let pixels_per_iod = pose.scale * shape.inter_ocular;
        Ok(Self {
            angles: pose.angles(),
            pose,
            points,
            centre,
            pixels_per_iod,
        })
    }

    /// The fitted pose.
    pub fn pose(&self) -> &Pose {
        &self.pose
    }
    /// The fitted pose's angles.
    pub fn angles(&self) -> HeadAngles {
        self.angles
    }
    /// The lifted points (observed x, y; model depth).
    pub fn points(&self) -> &[Vec3; N_LANDMARKS] {
        &self.points
    }
    /// The head's centre, the pivot of every turn.
    pub fn centre(&self) -> Vec3 {
        self.centre
    }

    /// The motion that turns this head from its fitted orientation to `angles` (about its
    /// centre), then shifts it by `translation`.
    pub fn motion_to(&self, angles: HeadAngles, translation: [f32; 2]) -> HeadMotion {
        let rotation = mat_mul(&angles.rotation(), &transpose(&self.pose.rotation));
        HeadMotion {
            pivot: self.centre,
            rotation,
            translation,
        }
    }

    /// The face's image axes when its head is at `angles`.
    pub fn axes(&self, angles: HeadAngles) -> FaceAxes {
        let r = angles.rotation();
        let k = self.pixels_per_iod;
        FaceAxes {
            right: [k * r[0][0], k * r[1][0]],
            down: [k * r[0][1], k * r[1][1]],
            forward: [-k * r[0][2], -k * r[1][2]],
        }
    }

    /// The landmarks after `motion`, projected, and their depths.
    pub fn apply(&self, motion: &HeadMotion) -> (Landmarks, [f32; N_LANDMARKS]) {
        let moved: [Vec3; N_LANDMARKS] = std::array::from_fn(|i| motion.apply(self.points[i]));
        (
            Landmarks(std::array::from_fn(|i| [moved[i][0], moved[i][1]])),
            std::array::from_fn(|i| moved[i][2]),
        )
    }

    /// The landmarks of this head turned to `angles` in place: rotate in 3D about the head's
    /// centre, project back.
    pub fn turned(&self, angles: HeadAngles) -> Landmarks {
        self.apply(&self.motion_to(angles, [0.0, 0.0])).0
    }
}

fn mean3(points: &[Vec3]) -> Vec3 {
    let n = points.len().max(1) as f32;
    points.iter().fold([0.0; 3], |a, p| {
        [a[0] + p[0] / n, a[1] + p[1] / n, a[2] + p[2] / n]
    })
}
fn add3(a: Vec3, b: Vec3) -> Vec3 {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}
fn sub3(a: Vec3, b: Vec3) -> Vec3 {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}
fn scale3(a: Vec3, k: f32) -> Vec3 {
    [a[0] * k, a[1] * k, a[2] * k]
}
fn dot3(a: Vec3, b: Vec3) -> f32 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}
fn norm3(a: Vec3) -> f32 {
    dot3(a, a).sqrt()
}
fn cross3(a: Vec3, b: Vec3) -> Vec3 {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}
fn mat_vec(m: &Mat3, v: Vec3) -> Vec3 {
    [dot3(m[0], v), dot3(m[1], v), dot3(m[2], v)]
}
fn mat_mul(a: &Mat3, b: &Mat3) -> Mat3 {
    std::array::from_fn(|r| std::array::from_fn(|c| (0..3).map(|k| a[r][k] * b[k][c]).sum()))
}
fn transpose(m: &Mat3) -> Mat3 {
    std::array::from_fn(|r| std::array::from_fn(|c| m[c][r]))
}
fn inverse3(m: &Mat3) -> Option<Mat3> {
    let cof =
        |r0: usize, r1: usize, c0: usize, c1: usize| m[r0][c0] * m[r1][c1] - m[r0][c1] * m[r1][c0];
    let adj = [
        [cof(1, 2, 1, 2), -cof(0, 2, 1, 2), cof(0, 1, 1, 2)],
        [-cof(1, 2, 0, 2), cof(0, 2, 0, 2), -cof(0, 1, 0, 2)],
        [cof(1, 2, 0, 1), -cof(0, 2, 0, 1), cof(0, 1, 0, 1)],
    ];
    let det = m[0][0] * adj[0][0] + m[0][1] * adj[1][0] + m[0][2] * adj[2][0];
    let size: f32 = m.iter().flatten().map(|v| v.abs()).fold(0.0, f32::max);
    if !det.is_finite() || det.abs() <= 1e-9 * size.powi(3) {
        return None;
    }
    Some(adj.map(|row| row.map(|v| v / det)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn angles_round_trip_through_a_rotation() {
        let a = HeadAngles {
            yaw: 31.0,
            pitch: -7.0,
            roll: 12.0,
        };
        let b = HeadAngles::of(&a.rotation());
        assert!(
            (a.yaw - b.yaw).abs() < 1e-3
                && (a.pitch - b.pitch).abs() < 1e-3
                && (a.roll - b.roll).abs() < 1e-3
        );
    }

    #[test]
    fn inverse_of_a_rotation_is_its_transpose() {
        let r = HeadAngles {
            yaw: 20.0,
            pitch: 10.0,
            roll: -5.0,
        }
        .rotation();
        let inv = inverse3(&r).expect("invertible");
        let t = transpose(&r);
        for (a, b) in inv.iter().flatten().zip(t.iter().flatten()) {
            assert!((a - b).abs() < 1e-5);
        }
    }

    #[test]
    fn rejects_malformed_rows() {
        assert_eq!(
            MeanShape::parse("# c\n1,2,3\n"),
            Err(ShapeError::MissingHeader)
        );
        assert!(matches!(
            MeanShape::parse("x,y,z\n1,2\n"),
            Err(ShapeError::BadRow { line: 2, .. })
        ));
        assert_eq!(
            MeanShape::parse("x,y,z\n1,2,3\n"),
            Err(ShapeError::RowCount {
                expected: N_LANDMARKS,
                found: 1
            })
        );
    }
}
