//! The triangle mesh over the canvas and the piecewise-affine warp along it.
//!
//! A mesh is triangulated once (Delaunay) on its source points; every frame reuses the same
//! triangles with moved vertices ([`super::person`] says which points a person's mesh has). The
//! warp maps each destination triangle back to the source (inverse mapping; bicubic sampling on
//! the triangles the mesh marks sharp, the face's, bilinear elsewhere),
//! far triangles first, so a cheek folded behind the nose by a head turn is covered by the
//! nearer parts of the face. It draws one canvas row at a time, so rows can be drawn in
//! parallel and composited while they are hot.

use super::pixels::{sample_rgba_cubic, sample_rgba_fixed, sample_span_fixed};

/// A triangulated mesh over the whole canvas: source vertices and every triangle.
#[derive(Debug, Clone)]
pub struct Mesh {
    /// Source vertices, canvas pixels: landmarks first.
    pub source: Vec<[f32; 2]>,
    pub triangles: Vec<[u32; 3]>,
    /// Per triangle: drawn earlier by this much depth (0 for most).
    pub bias: Vec<f32>,
    /// Per triangle: may sample the alternate source (see [`Warper::prepare`]).
    pub alt: Vec<bool>,
    /// Per triangle: sampled bicubically (the face), not bilinearly.
    pub sharp: Vec<bool>,
    /// Per triangle: its source (and the pixels a sample there reads) is wholly transparent,
    /// so it draws transparent pixels without sampling (see [`Mesh::mark_empty`]).
    pub empty: Vec<bool>,
}

impl Mesh {
    /// Triangulates `points` (Delaunay). `None` when one of the first `required` points (the
    /// face's) is left out of every triangle (two on one spot), since its motion would be lost.
    pub fn triangulate(points: Vec<[f32; 2]>, required: usize) -> Option<Self> {
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
            .map(|tri| [tri[0] as u32, tri[1] as u32, tri[2] as u32])
            .collect();
        let required = required.min(points.len());
        let mut used = vec![false; required];
        for v in triangles
            .iter()
            .flatten()
            .filter(|&&v| (v as usize) < required)
        {
            used[*v as usize] = true;
        }
        let n = triangles.len();
        (!triangles.is_empty() && used.iter().all(|u| *u)).then_some(Self {
            source: points,
            triangles,
            bias: vec![0.0; n],
            alt: vec![false; n],
            sharp: vec![false; n],
            empty: vec![false; n],
        })
    }

    /// Marks the triangles whose source, with the two pixels around it a bicubic sample reads,
    /// has alpha 0 everywhere in `source`: whatever their colour, they draw fully transparent
    /// pixels, which the warp then writes without sampling. Most of a person layer's canvas is
    /// background, and it was sampled every frame for nothing.
    pub fn mark_empty(&mut self, source: &Source) {
        let (w, h) = (source.width, source.height);
        if w == 0 || h == 0 || source.rgba.len() < w * h * 4 {
            return;
        }
        // Summed-area table of the opaque pixels, (w + 1) x (h + 1).
        let mut sat = vec![0u32; (w + 1) * (h + 1)];
        for y in 0..h {
            let mut run = 0u32;
            for x in 0..w {
                run += u32::from(source.rgba[(y * w + x) * 4 + 3] != 0);
                sat[(y + 1) * (w + 1) + x + 1] = sat[y * (w + 1) + x + 1] + run;
            }
        }
        const MARGIN: f32 = 3.0;
        for (t, tri) in self.triangles.iter().enumerate() {
            let p = tri.map(|v| self.source[v as usize]);
            let lo = |c: usize| {
                (p[0][c].min(p[1][c]).min(p[2][c]) - MARGIN)
                    .floor()
                    .max(0.0)
            };
            let hi = |c: usize, n: usize| {
                ((p[0][c].max(p[1][c]).max(p[2][c]) + MARGIN).ceil().max(0.0) as usize).min(n)
            };
            let (x0, y0) = ((lo(0) as usize).min(w - 1), (lo(1) as usize).min(h - 1));
            let (x1, y1) = (hi(0, w).max(x0 + 1), hi(1, h).max(y0 + 1));
            let opaque = sat[y1 * (w + 1) + x1] + sat[y0 * (w + 1) + x0]
                - sat[y0 * (w + 1) + x1]
                - sat[y1 * (w + 1) + x0];
            self.empty[t] = opaque == 0;
        }
    }
}

/// An RGBA image to warp from, canvas sized. The alpha channel carries a mask along (the head
/// mask of a person layer); it is warped like the colours.
#[derive(Debug, Clone, Default)]
pub struct Source {
    pub rgba: Vec<u8>,
    pub width: usize,
    pub height: usize,
}

/// One destination triangle ready to draw.
#[derive(Debug, Clone, Copy)]
struct Job {
    dest: [[f32; 2]; 3],
    /// Destination pixel centre → source position: `[a, b, c, d, e, f]`,
    /// `sx = a·x + b·y + c`, `sy = d·x + e·y + f`.
    map: [f32; 6],
    y_min: f32,
    y_max: f32,
    /// Weight of the alternate source, 0..=256.
    alt: u32,
    /// Sampled bicubically.
    sharp: bool,
    /// Draws transparent pixels (see [`Mesh::empty`]).
    empty: bool,
    /// The triangle's vertices in the mesh.
    tri: [u32; 3],
    /// Depth across the triangle: `z = a·x + b·y + c` (see [`Warper::prepare_depth`]).
    z: [f32; 3],
}

/// Rows per band of the row index.
const BAND: usize = 8;

/// The triangles of one frame, indexed by rows so that any row of the canvas can be drawn on
/// its own (and rows in parallel).
#[derive(Debug, Default)]
pub struct Warper {
    jobs: Vec<Job>,
    order: Vec<(f32, u32)>,
    /// Per band of [`BAND`] rows: the jobs crossing it, far first.
    bands: Vec<Vec<u32>>,
    width: usize,
}

impl Warper {
    /// Moves `mesh`'s triangles to `dest` (one point per vertex), on a `canvas` (width,
    /// height). Triangles are drawn far first: by the sum of their vertices' `depth` (larger =
    /// farther) plus the mesh's bias. The triangles the mesh marks `alt` blend the alternate
    /// source in by `alt_weight` (0..=1).
    pub fn prepare(
        &mut self,
        mesh: &Mesh,
        dest: &[[f32; 2]],
        depth: &[f32],
        alt_weight: f32,
        canvas: (usize, usize),
    ) {
        let source = &mesh.source;
        let alt_weight = (alt_weight.clamp(0.0, 1.0) * 256.0).round() as u32;
        self.jobs.clear();
        self.order.clear();
        for (t, tri) in mesh.triangles.iter().enumerate() {
            let [i, j, k] = tri.map(|v| v as usize);
            let d = [dest[i], dest[j], dest[k]];
            let Some(map) = affine_between(d, [source[i], source[j], source[k]]) else {
                continue; // collapsed: covers no pixel
            };
            let y_min = d[0][1].min(d[1][1]).min(d[2][1]);
            let y_max = d[0][1].max(d[1][1]).max(d[2][1]);
            if y_max < 0.0 || y_min > canvas.1 as f32 {
                continue;
            }
            self.order.push((
                depth[i] + depth[j] + depth[k] + mesh.bias.get(t).copied().unwrap_or(0.0),
                self.jobs.len() as u32,
            ));
            self.jobs.push(Job {
                dest: d,
                map,
                y_min,
                y_max,
                alt: if mesh.alt.get(t).copied().unwrap_or(false) {
                    alt_weight
                } else {
                    0
                },
                sharp: mesh.sharp.get(t).copied().unwrap_or(false),
                empty: mesh.empty.get(t).copied().unwrap_or(false),
                tri: *tri,
                z: [0.0; 3],
            });
        }
        // Far first; ties keep mesh order, so the result never depends on the sort.
        self.order.sort_by(|a, b| b.0.total_cmp(&a.0));
        let n_bands = canvas.1.div_ceil(BAND);
        self.bands.resize_with(n_bands, Vec::new);
        self.bands.truncate(n_bands);
        for band in &mut self.bands {
            band.clear();
        }
        for &(_, j) in &self.order {
            let job = &self.jobs[j as usize];
            let lo = (job.y_min.max(0.0) as usize / BAND).min(n_bands - 1);
            let hi = (job.y_max.max(0.0) as usize / BAND).min(n_bands - 1);
            for band in &mut self.bands[lo..=hi] {
                band.push(j);
            }
        }
        self.width = canvas.0;
    }

    /// Draws the pixels `xs` (a range of columns) of canvas row `y` into `rgba` (colour and
    /// mask, sampled where each pixel comes from, blending in `alt` where asked) and marks them
    /// in `covered`. Pixels outside `xs`, or that no triangle covers, are left as they were.
    #[cfg(test)]
    pub fn draw_row(
        &self,
        source: &Source,
        alt: &Source,
        y: usize,
        xs: std::ops::Range<usize>,
        rgba: &mut [[u8; 4]],
        covered: &mut [bool],
    ) {
        self.draw_row_with_depth(source, alt, y, xs, rgba, covered, None);
    }

    /// [`Warper::draw_row`], also writing into `zbuf` the depth of what it draws (as
    /// [`Warper::draw_depth_row`] does) where it draws something opaque: one pass over the
    /// row's triangles for both. Where a transparent triangle is drawn last the depth is left
    /// as it was, since nothing there is compared.
    #[allow(clippy::too_many_arguments)]
    pub fn draw_row_with_depth(
        &self,
        source: &Source,
        alt: &Source,
        y: usize,
        xs: std::ops::Range<usize>,
        rgba: &mut [[u8; 4]],
        covered: &mut [bool],
        mut zbuf: Option<&mut [f32]>,
    ) {
        let width = self
            .width
            .min(source.width)
            .min(rgba.len())
            .min(covered.len());
        let (lo, hi) = (xs.start.min(width), xs.end.min(width));
        let Some(band) = self.bands.get(y / BAND) else {
            return;
        };
        let yc = y as f32 + 0.5;
        let (src, sw, sh) = (&source.rgba[..], source.width, source.height);
        for &j in band {
            let job = &self.jobs[j as usize];
            if yc < job.y_min || yc > job.y_max {
                continue;
            }
            let Some((xl, xr)) = span(&job.dest, yc) else {
                continue;
            };
            let first = ((xl - 0.5 - 1e-3).ceil().max(0.0) as usize).max(lo);
            let last = (((xr - 0.5 + 1e-3).floor() + 1.0).max(0.0) as usize).min(hi);
            if first >= last {
                continue;
            }
            let [a, b, c, d, e, f] = job.map;
            if let Some(zbuf) = zbuf.as_deref_mut().filter(|_| !job.empty) {
                let [za, zb, zc] = job.z;
                let zlast = last.min(zbuf.len());
                for (x, z) in (first..zlast).zip(&mut zbuf[first.min(zlast)..zlast]) {
                    *z = za * (x as f32 + 0.5) + zb * yc + zc;
                }
            }
            if job.empty {
                rgba[first..last].fill([0; 4]);
            } else if job.alt == 0 && job.sharp {
                for (x, out) in (first..last).zip(&mut rgba[first..last]) {
                    let xc = x as f32 + 0.5;
                    let (sx, sy) = (a * xc + b * yc + c, d * xc + e * yc + f);
                    *out = sample_rgba_cubic(src, sw, sh, sx, sy);
                }
            } else if job.alt == 0 {
                let xc = first as f32 + 0.5;
                let start = [a * xc + b * yc + c, d * xc + e * yc + f];
                sample_span_fixed(src, sw, sh, start, [a, d], &mut rgba[first..last]);
            } else {
                let (asrc, aw, ah) = (&alt.rgba[..], alt.width, alt.height);
                for (x, out) in (first..last).zip(&mut rgba[first..last]) {
                    let xc = x as f32 + 0.5;
                    let (sx, sy) = (a * xc + b * yc + c, d * xc + e * yc + f);
                    let p = u32::from_le_bytes(sample_rgba_fixed(src, sw, sh, sx, sy));
                    let q = u32::from_le_bytes(sample_rgba_fixed(asrc, aw, ah, sx, sy));
                    *out = lerp_rgba(p, q, job.alt).to_le_bytes();
                }
            }
            covered[first..last].fill(true);
        }
    }
}

impl Warper {
    /// Gives this frame's triangles a depth per vertex (`depth`, one per mesh vertex, larger =
    /// farther), interpolated across each triangle, for [`Warper::draw_depth_row`]. This depth
    /// only says what is nearer between layers; the drawing order within the layer stays the
    /// one [`Warper::prepare`] was given.
    pub fn prepare_depth(&mut self, depth: &[f32]) {
        for job in &mut self.jobs {
            let z = job
                .tri
                .map(|v| depth.get(v as usize).copied().unwrap_or(0.0));
            job.z = affine_between(job.dest, [[z[0], 0.0], [z[1], 0.0], [z[2], 0.0]])
                .map(|m| [m[0], m[1], m[2]])
                .unwrap_or([0.0, 0.0, (z[0] + z[1] + z[2]) / 3.0]);
        }
    }

    /// Writes into `zbuf` (a full canvas row) the depth of what [`Warper::draw_row`] draws on
    /// row `y`: the last triangle drawn at each pixel.
    pub fn draw_depth_row(&self, y: usize, zbuf: &mut [f32]) {
        let width = self.width.min(zbuf.len());
        let Some(band) = self.bands.get(y / BAND) else {
            return;
        };
        let yc = y as f32 + 0.5;
        for &j in band {
            let job = &self.jobs[j as usize];
            if yc < job.y_min || yc > job.y_max {
                continue;
            }
            let Some((xl, xr)) = span(&job.dest, yc) else {
                continue;
            };
            let first = (xl - 0.5 - 1e-3).ceil().max(0.0) as usize;
            let last = (((xr - 0.5 + 1e-3).floor() + 1.0).max(0.0) as usize).min(width);
            let [a, b, c] = job.z;
            for (x, z) in (first..last).zip(&mut zbuf[first.min(last)..last]) {
                *z = a * (x as f32 + 0.5) + b * yc + c;
            }
        }
    }

    /// Draws rows `ys`, columns `xs` of the canvas into `rgba` and `covered` (whole canvas,
    /// `width` pixels a row), as [`Warper::draw_row`] does row by row: the CPU reference of
    /// [`crate::gpu::Gpu::warp`].
    #[cfg(test)]
    #[allow(clippy::too_many_arguments)]
    pub fn draw_rect(
        &self,
        source: &Source,
        alt: &Source,
        ys: std::ops::Range<usize>,
        xs: std::ops::Range<usize>,
        width: usize,
        rgba: &mut [[u8; 4]],
        covered: &mut [bool],
    ) {
        use rayon::prelude::*;
        if width == 0 {
            return;
        }
        rgba.par_chunks_mut(width)
            .zip(covered.par_chunks_mut(width))
            .enumerate()
            .filter(|(y, _)| ys.contains(y))
            .for_each(|(y, (rgba, covered))| {
                self.draw_row(source, alt, y, xs.clone(), rgba, covered);
            });
    }

    /// This frame's triangles as flat tables for the device kernel.
    #[cfg(test)]
    pub fn tables(&self) -> crate::gpu::WarpTables {
        let mut t = crate::gpu::WarpTables::default();
        self.fill_tables(&mut t);
        t
    }

    /// Writes this frame's triangles into `t` as flat tables for the device kernel, reusing
    /// its buffers (called every frame).
    pub fn fill_tables(&self, t: &mut crate::gpu::WarpTables) {
        t.jobs.clear();
        for job in &self.jobs {
            t.jobs.extend(job.dest.iter().flatten());
            t.jobs.extend_from_slice(&job.map);
            t.jobs.extend([job.y_min, job.y_max, job.alt as f32]);
        }
        t.band_start.clear();
        t.band_jobs.clear();
        t.band_start.push(0u32);
        for band in &self.bands {
            t.band_jobs.extend_from_slice(band);
            t.band_start.push(t.band_jobs.len() as u32);
        }
        t.band = BAND;
        t.width = self.width;
    }
}

/// `p` toward `q` by `t`/256, each of the four bytes.
#[inline]
fn lerp_rgba(p: u32, q: u32, t: u32) -> u32 {
    const M: u32 = 0x00FF_00FF;
    let lerp = |a: u32, b: u32| ((a * (256 - t) + b * t + 0x0080_0080) >> 8) & M;
    lerp(p & M, q & M) | (lerp((p >> 8) & M, (q >> 8) & M) << 8)
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
            bias: vec![0.0; 4],
            alt: vec![false; 4],
            sharp: vec![false; 4],
            empty: vec![false; 4],
        };
        let shifted: Vec<u8> = rgba.iter().map(|v| v.wrapping_add(1)).collect();
        let shifted = Source {
            rgba: shifted,
            ..source.clone()
        };
        let mut warper = Warper::default();
        warper.prepare(&mesh, &pts, &[0.0; 5], 0.0, (w, h));
        let (mut row, mut covered) = (vec![[0u8; 4]; w], vec![false; w]);
        for y in 0..h {
            covered.fill(false);
            warper.draw_row(&shifted, &source, y, 0..w, &mut row, &mut covered);
            let want: Vec<u8> = rgba[y * w * 4..(y + 1) * w * 4]
                .iter()
                .map(|v| v.wrapping_add(1))
                .collect();
            assert_eq!(row.concat(), want, "row {y}");
            assert!(covered.iter().all(|c| *c), "row {y} fully covered");
        }
        // Only the columns asked for are drawn.
        covered.fill(false);
        warper.draw_row(&shifted, &source, 3, 4..9, &mut row, &mut covered);
        let drawn: Vec<usize> = (0..w).filter(|x| covered[*x]).collect();
        assert_eq!(drawn, (4..9).collect::<Vec<_>>());
    }

    #[test]
    fn a_moved_vertex_pulls_the_pixels_along() {
        // One bright pixel under the centre vertex; moving that vertex 3 px right moves it.
        let (w, h) = (16usize, 16usize);
        let mut rgba = vec![0u8; w * h * 4];
        let at = |x: usize, y: usize| (y * w + x) * 4;
        rgba[at(8, 8)..at(8, 8) + 4].copy_from_slice(&[255, 255, 255, 255]);
        let source = Source {
            rgba,
            width: w,
            height: h,
        };
        let pts = vec![
            [0.0, 0.0],
            [w as f32, 0.0],
            [w as f32, h as f32],
            [0.0, h as f32],
            [8.5, 8.5],
        ];
        let mut dest = pts.clone();
        dest[4] = [11.5, 8.5];
        let mut mesh = Mesh {
            source: pts.clone(),
            triangles: vec![[0, 1, 4], [1, 2, 4], [2, 3, 4], [3, 0, 4]],
            bias: vec![0.0; 4],
            alt: vec![false; 4],
            sharp: vec![false; 4],
            empty: vec![false; 4],
        };
        let mut warper = Warper::default();
        warper.prepare(&mesh, &dest, &[0.0; 5], 0.0, (w, h));
        let (mut row, mut covered) = (vec![[0u8; 4]; w], vec![false; w]);
        warper.draw_row(&source, &source, 8, 0..w, &mut row, &mut covered);
        let brightest = (0..w).max_by_key(|&x| row[x][0]).expect("pixels");
        assert_eq!(brightest, 11);
        // Triangles marked alt blend the other source in.
        let dark = Source {
            rgba: vec![0u8; w * h * 4],
            ..source.clone()
        };
        mesh.alt = vec![true; 4];
        warper.prepare(&mesh, &dest, &[0.0; 5], 0.5, (w, h));
        warper.draw_row(&source, &dark, 8, 0..w, &mut row, &mut covered);
        assert_eq!(row[11], [128, 128, 128, 128]);
    }

    /// Triangles over wholly transparent source are marked and drawn transparent without
    /// sampling; one near an opaque pixel (within a bicubic sample's reach) is not marked; and
    /// the drawing, with the depth written in the same pass, matches the plain drawing where it
    /// is opaque.
    #[test]
    fn transparent_triangles_are_skipped_and_the_drawing_is_unchanged() {
        let (w, h) = (40usize, 20usize);
        // Opaque only in a blob around (30, 10); colour everywhere.
        let rgba: Vec<u8> = (0..w * h)
            .flat_map(|i| {
                let (x, y) = ((i % w) as f32, (i / w) as f32);
                let a = if (x - 30.0).abs() < 4.0 && (y - 10.0).abs() < 4.0 {
                    255
                } else {
                    0
                };
                [(i * 7 % 251) as u8, (i * 3 % 253) as u8, 90, a]
            })
            .collect();
        let source = Source {
            rgba,
            width: w,
            height: h,
        };
        // Left half: two triangles far from the blob; right half: two over it; a sliver whose
        // source ends 2 px short of the blob, within a bicubic sample's reach.
        let pts = vec![
            [0.0, 0.0],
            [18.0, 0.0],
            [18.0, 20.0],
            [0.0, 20.0],
            [40.0, 0.0],
            [40.0, 20.0],
            [25.0, 10.0],
        ];
        let triangles = vec![
            [0, 1, 2],
            [0, 2, 3],
            [1, 4, 6],
            [4, 5, 6],
            [1, 6, 2],
            [6, 5, 2],
        ];
        let n = triangles.len();
        let mut mesh = Mesh {
            source: pts.clone(),
            triangles,
            bias: vec![0.0; n],
            alt: vec![false; n],
            sharp: vec![false; n],
            empty: vec![false; n],
        };
        let plain = mesh.clone();
        mesh.mark_empty(&source);
        assert_eq!(mesh.empty, vec![true, true, false, false, false, false]);
        // Moved a little, with depth across it.
        let dest: Vec<[f32; 2]> = pts
            .iter()
            .map(|p| [p[0] * 0.9 + 1.5, p[1] * 0.95 + 0.7])
            .collect();
        let depth: Vec<f32> = (0..pts.len()).map(|i| i as f32).collect();
        let (mut marked, mut unmarked) = (Warper::default(), Warper::default());
        marked.prepare(&mesh, &dest, &depth, 0.0, (w, h));
        unmarked.prepare(&plain, &dest, &depth, 0.0, (w, h));
        marked.prepare_depth(&depth);
        unmarked.prepare_depth(&depth);
        for y in 0..h {
            let (mut a, mut ca, mut za) = (vec![[1u8; 4]; w], vec![false; w], vec![-1.0f32; w]);
            let (mut b, mut cb, mut zb) = (vec![[1u8; 4]; w], vec![false; w], vec![-1.0f32; w]);
            marked.draw_row_with_depth(&source, &source, y, 0..w, &mut a, &mut ca, Some(&mut za));
            unmarked.draw_row(&source, &source, y, 0..w, &mut b, &mut cb);
            unmarked.draw_depth_row(y, &mut zb);
            assert_eq!(ca, cb, "row {y}: the same pixels covered");
            for x in 0..w {
                assert_eq!(a[x][3], b[x][3], "row {y} column {x}: the same alpha");
                if b[x][3] > 0 {
                    assert_eq!(a[x], b[x], "row {y} column {x}: the same colour");
                    assert_eq!(za[x], zb[x], "row {y} column {x}: the same depth");
                }
            }
            // Something opaque was drawn on the blob's rows, and transparent pixels elsewhere.
            if (8..12).contains(&y) {
                assert!(a.iter().any(|p| p[3] == 255), "row {y}");
            }
            assert!(
                (2..10).all(|x| !ca[x] || a[x] == [0; 4]),
                "row {y}: skipped as transparent"
            );
        }
    }
}
