//! The triangle mesh over a face and the piecewise-affine warp along it.
//!
//! Vertices: the 68 landmarks, a ring around the face (its hull, forehead included, scaled
//! 1.3x about its centre) and the border of the source crop. The mesh is triangulated once
//! (Delaunay) on the source points; every frame reuses the same triangles with moved vertices.
//! Only triangles inside the ring are drawn: the mask is transparent beyond it.
//!
//! The warp maps each destination triangle back to the source (inverse mapping, bilinear
//! sampling), far triangles first, so a cheek folded behind the nose by a head turn is covered
//! by the nearer parts of the face.

use rayon::prelude::*;

use super::pixels::{Blur, sample_rgba};
use crate::types::{Landmarks, N_LANDMARKS};

/// Scale of the ring about the face hull's centre.
pub const RING_SCALE: f32 = 1.3;
/// The forehead is taken as the brows raised by this many inter-ocular distances.
pub const FOREHEAD: f32 = 0.55;

/// The face outline, clockwise on screen: jaw 0..=16, then the brows (26 down to 17) raised to
/// cover the forehead. Each vertex with the landmark it follows.
pub fn face_outline(lm: &Landmarks) -> Vec<([f32; 2], usize)> {
    let (l, r) = (lm.eye_left(), lm.eye_right());
    let iod = lm.inter_ocular().max(1e-3);
    // Up: perpendicular to the eye line, toward the brows.
    let up = [(r[1] - l[1]) / iod, -(r[0] - l[0]) / iod];
    let raise = FOREHEAD * iod;
    let jaw = (0..17).map(|i| (lm.0[i], i));
    let brows = (17..27)
        .rev()
        .map(|i| ([lm.0[i][0] + up[0] * raise, lm.0[i][1] + up[1] * raise], i));
    jaw.chain(brows).collect()
}

/// The ring around an outline: each vertex pushed out [`RING_SCALE`] times from the outline's
/// centre.
pub fn ring(outline: &[([f32; 2], usize)]) -> Vec<([f32; 2], usize)> {
    let n = outline.len().max(1) as f32;
    let c = outline
        .iter()
        .fold([0.0f32; 2], |a, (p, _)| [a[0] + p[0] / n, a[1] + p[1] / n]);
    outline
        .iter()
        .map(|&(p, i)| {
            (
                [
                    c[0] + RING_SCALE * (p[0] - c[0]),
                    c[1] + RING_SCALE * (p[1] - c[1]),
                ],
                i,
            )
        })
        .collect()
}

/// A triangulated mesh: source vertices and the triangles that are drawn.
#[derive(Debug, Clone)]
pub struct Mesh {
    /// Source vertices: landmarks, ring, border (source-image pixels).
    pub source: Vec<[f32; 2]>,
    /// Triangles over landmarks and ring only (vertex indices).
    pub triangles: Vec<[u32; 3]>,
}

impl Mesh {
    /// Triangulates `points` (Delaunay); keeps the triangles whose vertices all come before
    /// `drawn` (the border vertices come last and are never drawn). `None` when nothing is left.
    pub fn triangulate(points: Vec<[f32; 2]>, drawn: usize) -> Option<Self> {
        let pts: Vec<delaunator::Point> = points
            .iter()
            .map(|p| delaunator::Point {
                x: p[0] as f64,
                y: p[1] as f64,
            })
            .collect();
        let t = delaunator::triangulate(&pts);
        let triangles: Vec<[u32; 3]> = t
            .triangles
            .chunks_exact(3)
            .filter(|tri| tri.iter().all(|&v| v < drawn))
            .map(|tri| [tri[0] as u32, tri[1] as u32, tri[2] as u32])
            .collect();
        // Every landmark must be in the mesh, or its motion would be lost.
        let mut used = [false; N_LANDMARKS];
        for v in triangles
            .iter()
            .flatten()
            .filter(|&&v| (v as usize) < N_LANDMARKS)
        {
            used[*v as usize] = true;
        }
        (!triangles.is_empty() && used.iter().filter(|u| **u).count() > N_LANDMARKS / 2).then_some(
            Self {
                source: points,
                triangles,
            },
        )
    }
}

/// An RGBA image to warp from.
#[derive(Debug, Clone)]
pub struct Source {
    pub rgba: Vec<u8>,
    pub width: usize,
    pub height: usize,
}

/// A pixel rectangle on the canvas.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Region {
    pub x0: usize,
    pub y0: usize,
    pub width: usize,
    pub height: usize,
}

/// One destination triangle ready to draw.
#[derive(Debug, Clone, Copy)]
pub struct Job {
    dest: [[f32; 2]; 3],
    /// Destination pixel centre → source position: `[a, b, c, d, e, f]`,
    /// `sx = a·x + b·y + c`, `sy = d·x + e·y + f`.
    map: [f32; 6],
    y_min: f32,
    y_max: f32,
    depth: f32,
}

/// Buffers reused from frame to frame for one face.
#[derive(Debug, Default)]
pub struct Warper {
    jobs: Vec<Job>,
    alpha: Vec<f32>,
    blur: Blur,
    /// The warped face, RGBA, `region` sized.
    pub layer: Vec<u8>,
    pub region: Region,
}

impl Warper {
    /// Warps `source` along `mesh` onto `dest` (one destination per mesh vertex; border
    /// vertices are ignored) into [`Warper::layer`], clipped to a `canvas` (width, height).
    /// `depth` (per vertex, larger = farther) orders the triangles, far first.
    pub fn warp(
        &mut self,
        source: &Source,
        mesh: &Mesh,
        dest: &[[f32; 2]],
        depth: &[f32],
        canvas: (usize, usize),
    ) {
        self.jobs.clear();
        let (mut x_min, mut y_min, mut x_max, mut y_max) = (f32::MAX, f32::MAX, f32::MIN, f32::MIN);
        for tri in &mesh.triangles {
            let [i, j, k] = tri.map(|v| v as usize);
            let d = [dest[i], dest[j], dest[k]];
            let Some(map) = affine_between(d, [mesh.source[i], mesh.source[j], mesh.source[k]])
            else {
                continue; // collapsed: covers no pixel
            };
            for p in d {
                x_min = x_min.min(p[0]);
                x_max = x_max.max(p[0]);
                y_min = y_min.min(p[1]);
                y_max = y_max.max(p[1]);
            }
            self.jobs.push(Job {
                dest: d,
                map,
                y_min: d[0][1].min(d[1][1]).min(d[2][1]),
                y_max: d[0][1].max(d[1][1]).max(d[2][1]),
                depth: depth[i] + depth[j] + depth[k],
            });
        }
        // Far first; ties keep mesh order, so the result never depends on the sort.
        self.jobs.sort_by(|a, b| b.depth.total_cmp(&a.depth));

        let clip = |v: f32, hi: usize| (v.max(0.0) as usize).min(hi);
        let (x0, y0) = (clip(x_min.floor(), canvas.0), clip(y_min.floor(), canvas.1));
        let (x1, y1) = (
            clip(x_max.ceil() + 1.0, canvas.0),
            clip(y_max.ceil() + 1.0, canvas.1),
        );
        self.region = Region {
            x0,
            y0,
            width: x1.saturating_sub(x0),
            height: y1.saturating_sub(y0),
        };
        let Region { width, height, .. } = self.region;
        self.layer.clear();
        self.layer.resize(width * height * 4, 0);
        if width == 0 || height == 0 {
            return;
        }
        let jobs = &self.jobs;
        self.layer
            .par_chunks_mut(width * 4)
            .enumerate()
            .for_each(|(row, out)| {
                let yc = (y0 + row) as f32 + 0.5;
                for job in jobs.iter().filter(|j| j.y_min <= yc && yc <= j.y_max) {
                    let Some((xl, xr)) = span(&job.dest, yc) else {
                        continue;
                    };
                    let first = ((xl - 0.5 - 1e-3).ceil().max(x0 as f32) as usize).max(x0);
                    let last = ((xr - 0.5 + 1e-3).floor() + 1.0).clamp(0.0, x1 as f32) as usize;
                    let [a, b, c, d, e, f] = job.map;
                    for x in first..last {
                        let xc = x as f32 + 0.5;
                        let px = sample_rgba(
                            &source.rgba,
                            source.width,
                            source.height,
                            a * xc + b * yc + c,
                            d * xc + e * yc + f,
                        );
                        out[(x - x0) * 4..(x - x0) * 4 + 4].copy_from_slice(&px);
                    }
                }
            });
    }

    /// Blurs the warped alpha a little: edges that a head turn folded or squeezed (the far
    /// cheek behind the nose) would otherwise be cut hard.
    pub fn soften_alpha(&mut self, radius: usize) {
        let Region { width, height, .. } = self.region;
        if radius == 0 || width == 0 || height == 0 {
            return;
        }
        self.alpha.clear();
        self.alpha
            .extend(self.layer.chunks_exact(4).map(|px| px[3] as f32));
        self.blur
            .apply(&mut self.alpha, width, height, 1, radius, 2);
        for (px, a) in self.layer.chunks_exact_mut(4).zip(&self.alpha) {
            px[3] = (a + 0.5) as u8;
        }
    }
}

/// Where the horizontal line `y` crosses a triangle: its leftmost and rightmost x.
fn span(t: &[[f32; 2]; 3], y: f32) -> Option<(f32, f32)> {
    let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
    let mut take = |x: f32| {
        lo = lo.min(x);
        hi = hi.max(x);
    };
    for (p, q) in [(t[0], t[1]), (t[1], t[2]), (t[2], t[0])] {
        let (a, b) = if p[1] <= q[1] { (p, q) } else { (q, p) };
        if y < a[1] || y > b[1] {
            continue;
        }
        if b[1] - a[1] > 1e-6 {
            take(a[0] + (y - a[1]) / (b[1] - a[1]) * (b[0] - a[0]));
        } else {
            take(a[0]);
            take(b[0]);
        }
    }
    (lo <= hi).then_some((lo, hi))
}

/// The affine map taking triangle `dest` onto triangle `src`; `None` when `dest` has no area.
fn affine_between(dest: [[f32; 2]; 3], src: [[f32; 2]; 3]) -> Option<[f32; 6]> {
    let (e1, e2) = (
        [dest[1][0] - dest[0][0], dest[1][1] - dest[0][1]],
        [dest[2][0] - dest[0][0], dest[2][1] - dest[0][1]],
    );
    let det = e1[0] * e2[1] - e1[1] * e2[0];
    if !det.is_finite() || det.abs() < 1e-4 {
        return None;
    }
    // inverse of [e1 e2] (columns)
    let inv = [[e2[1] / det, -e2[0] / det], [-e1[1] / det, e1[0] / det]];
    let (s1, s2) = (
        [src[1][0] - src[0][0], src[1][1] - src[0][1]],
        [src[2][0] - src[0][0], src[2][1] - src[0][1]],
    );
    let a = s1[0] * inv[0][0] + s2[0] * inv[1][0];
    let b = s1[0] * inv[0][1] + s2[0] * inv[1][1];
    let d = s1[1] * inv[0][0] + s2[1] * inv[1][0];
    let e = s1[1] * inv[0][1] + s2[1] * inv[1][1];
    let c = src[0][0] - a * dest[0][0] - b * dest[0][1];
    let f = src[0][1] - d * dest[0][0] - e * dest[0][1];
    Some([a, b, c, d, e, f])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn affine_maps_vertices_onto_vertices() {
        let d = [[10.0, 10.0], [50.0, 12.0], [20.0, 40.0]];
        let s = [[0.0, 0.0], [30.0, 5.0], [-4.0, 25.0]];
        let m = affine_between(d, s).expect("has area");
        for (p, q) in d.iter().zip(s.iter()) {
            let x = m[0] * p[0] + m[1] * p[1] + m[2];
            let y = m[3] * p[0] + m[4] * p[1] + m[5];
            assert!((x - q[0]).abs() < 1e-3 && (y - q[1]).abs() < 1e-3);
        }
    }

    #[test]
    fn span_of_a_triangle_row() {
        let t = [[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]];
        let (l, r) = span(&t, 5.0).expect("crosses");
        assert!((l - 0.0).abs() < 1e-5 && (r - 5.0).abs() < 1e-5);
        assert!(span(&t, 11.0).is_none());
    }

    #[test]
    fn identity_warp_copies_the_source() {
        let (w, h) = (16usize, 12usize);
        let rgba: Vec<u8> = (0..w * h * 4).map(|i| (i * 7 % 251) as u8).collect();
        let source = Source {
            rgba: rgba.clone(),
            width: w,
            height: h,
        };
        let pts = vec![
            [0.0, 0.0],
            [w as f32, 0.0],
            [w as f32, h as f32],
            [0.0, h as f32],
            [7.0, 5.0],
        ];
        let mesh = Mesh {
            source: pts.clone(),
            triangles: vec![[0, 1, 4], [1, 2, 4], [2, 3, 4], [3, 0, 4]],
        };
        let mut warper = Warper::default();
        warper.warp(&source, &mesh, &pts, &[0.0; 5], (w, h));
        assert_eq!(
            warper.region,
            Region {
                x0: 0,
                y0: 0,
                width: w,
                height: h
            }
        );
        assert_eq!(warper.layer, rgba);
    }
}
