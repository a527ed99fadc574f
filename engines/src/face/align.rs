//! Face crops: affine resampling (bilinear, zero outside the image, with k×k supersampling so a
//! crop much smaller than the face does not alias), and the ArcFace 5-point alignment the
//! identity embedders and the diffusion pack's identity encoder take their faces in.
//!
//! Coordinates are array coordinates: pixel `(i, j)`'s centre is at `(i, j)`.

use image::RgbImage;

use crate::types::Landmarks;

/// The ArcFace alignment template at 112x112 (insightface's): centres of the eye on the
/// image's left and on its right, the nose tip, the mouth corner on the image's left and on
/// its right.
pub const ARCFACE_112: [[f32; 2]; 5] = [
    [38.2946, 51.6963],
    [73.5318, 51.5014],
    [56.0252, 71.7366],
    [41.5493, 92.3655],
    [70.7299, 92.2041],
];

/// A face's five ArcFace points from its 68 landmarks, in the template's order: eye centres
/// (36-41, 42-47), nose tip (30), mouth corners (48, 54).
pub fn arcface_points(l: &Landmarks) -> [[f32; 2]; 5] {
    [l.eye_left(), l.eye_right(), l.0[30], l.0[48], l.0[54]]
}

/// The least-squares similarity (rotation, uniform scale, translation) taking `src` onto
/// `dst`: `dst ≈ [a -b; b a]·src + t`, as `(a, b, tx, ty)`; `None` when degenerate.
pub fn similarity(src: &[[f32; 2]], dst: &[[f32; 2]]) -> Option<(f32, f32, f32, f32)> {
    let n = src.len().min(dst.len()) as f32;
    if n < 2.0 {
        return None;
    }
    let mean = |p: &[[f32; 2]]| {
        let (x, y) = p.iter().fold((0.0, 0.0), |(x, y), q| (x + q[0], y + q[1]));
        [x / n, y / n]
    };
    let (ms, md) = (mean(src), mean(dst));
    let (mut num_a, mut num_b, mut den) = (0.0f32, 0.0f32, 0.0f32);
    for (s, d) in src.iter().zip(dst) {
        let (sx, sy) = (s[0] - ms[0], s[1] - ms[1]);
        let (dx, dy) = (d[0] - md[0], d[1] - md[1]);
        num_a += sx * dx + sy * dy;
        num_b += sx * dy - sy * dx;
        den += sx * sx + sy * sy;
    }
    if !(den.is_finite() && den > 1e-6) {
        return None;
    }
    let (a, b) = (num_a / den, num_b / den);
    if !(a.is_finite() && b.is_finite()) || a * a + b * b < 1e-12 {
        return None;
    }
    let tx = md[0] - (a * ms[0] - b * ms[1]);
    let ty = md[1] - (b * ms[0] + a * ms[1]);
    Some((a, b, tx, ty))
}

/// The map from a `size`x`size` ArcFace-aligned crop to the image holding the face with
/// `landmarks`: the inverse of the least-squares similarity taking the face's five points onto
/// the template scaled to `size`. `None` when the landmarks do not span a face.
pub fn arcface_map(landmarks: &Landmarks, size: usize) -> Option<Affine> {
    let k = size as f32 / 112.0;
    let dst = ARCFACE_112.map(|p| [p[0] * k, p[1] * k]);
    let (a, b, tx, ty) = similarity(&arcface_points(landmarks), &dst)?;
    // src = [a b; -b a]·(dst - t) / (a² + b²)
    let r = 1.0 / (a * a + b * b);
    Some(Affine([
        a * r,
        b * r,
        -(a * tx + b * ty) * r,
        -b * r,
        a * r,
        (b * tx - a * ty) * r,
    ]))
}

/// Samples the face with `landmarks` aligned to the ArcFace template at `size`x`size` and hands
/// each pixel `(x, y, rgb 0..255)` to `put` (black outside the image). Returns `false`, writing
/// nothing, when the landmarks do not span a face.
pub fn align_arcface(
    image: &RgbImage,
    landmarks: &Landmarks,
    size: usize,
    put: impl FnMut(usize, usize, [f32; 3]),
) -> bool {
    let Some(map) = arcface_map(landmarks, size) else {
        return false;
    };
    warp(image, &map, size, size, supersample_for(map.scale()), put);
    true
}

/// Sub-samples per output pixel side for a crop reading `scale` source pixels per output
/// pixel: enough that samples lie at most 2 source pixels apart, at most 4.
pub fn supersample_for(scale: f32) -> usize {
    if !scale.is_finite() {
        return 1;
    }
    ((scale / 2.0).ceil() as usize).clamp(1, 4)
}

/// `src = [m0·x + m1·y + m2, m3·x + m4·y + m5]`: from output pixel coordinates to source ones.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Affine(pub [f32; 6]);

impl Affine {
    pub fn apply(&self, p: [f32; 2]) -> [f32; 2] {
        let m = &self.0;
        [
            m[0] * p[0] + m[1] * p[1] + m[2],
            m[3] * p[0] + m[4] * p[1] + m[5],
        ]
    }

    /// Source pixels per output pixel (the square root of the determinant's magnitude).
    pub fn scale(&self) -> f32 {
        let m = &self.0;
        (m[0] * m[4] - m[1] * m[3]).abs().sqrt()
    }
}

/// The image's pixel at array coordinates `(x, y)`, bilinearly interpolated; zero outside.
pub fn bilinear(img: &RgbImage, x: f32, y: f32) -> [f32; 3] {
    let (w, h) = (i64::from(img.width()), i64::from(img.height()));
    let raw = img.as_raw();
    let (x0, y0) = (x.floor(), y.floor());
    let (fx, fy) = (x - x0, y - y0);
    let (x0, y0) = (x0 as i64, y0 as i64);
    let mut out = [0f32; 3];
    for (dy, wy) in [(0, 1.0 - fy), (1, fy)] {
        let yy = y0 + dy;
        if yy < 0 || yy >= h || wy == 0.0 {
            continue;
        }
        for (dx, wx) in [(0, 1.0 - fx), (1, fx)] {
            let xx = x0 + dx;
            if xx < 0 || xx >= w || wx == 0.0 {
                continue;
            }
            let i = ((yy * w + xx) * 3) as usize;
            let k = wx * wy;
            for (o, &v) in out.iter_mut().zip(&raw[i..i + 3]) {
                *o += f32::from(v) * k;
            }
        }
    }
    out
}

/// Samples a `w`x`h` crop through `map` and hands each output pixel `(x, y, rgb 0..255)` to
/// `put`. With `supersample` k > 1 each output pixel is the mean of k×k bilinear samples spread
/// evenly over it (an area filter for crops much smaller than their source).
pub fn warp(
    img: &RgbImage,
    map: &Affine,
    w: usize,
    h: usize,
    supersample: usize,
    mut put: impl FnMut(usize, usize, [f32; 3]),
) {
    let k = supersample.max(1);
    let offsets: Vec<f32> = (0..k).map(|a| (a as f32 + 0.5) / k as f32 - 0.5).collect();
    let norm = 1.0 / (k * k) as f32;
    for oy in 0..h {
        for ox in 0..w {
            let mut acc = [0f32; 3];
            for &dy in &offsets {
                for &dx in &offsets {
                    let [sx, sy] = map.apply([ox as f32 + dx, oy as f32 + dy]);
                    let v = bilinear(img, sx, sy);
                    for c in 0..3 {
                        acc[c] += v[c];
                    }
                }
            }
            put(ox, oy, acc.map(|v| v * norm));
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn bilinear_interpolates_and_is_zero_outside() {
        let mut img = RgbImage::new(2, 1);
        img.put_pixel(0, 0, image::Rgb([0, 100, 200]));
        img.put_pixel(1, 0, image::Rgb([100, 200, 0]));
        assert_eq!(bilinear(&img, 0.5, 0.0), [50.0, 150.0, 100.0]);
        assert_eq!(bilinear(&img, 1.0, 0.0), [100.0, 200.0, 0.0]);
        assert_eq!(bilinear(&img, -1.0, 0.0), [0.0; 3]);
        // half a pixel past the edge: half the edge pixel
        assert_eq!(bilinear(&img, 1.5, 0.0), [50.0, 100.0, 0.0]);
    }

    #[test]
    fn similarity_recovers_a_rotation_scale_and_shift() {
        let (a, b) = (1.5 * 0.3f32.cos(), 1.5 * 0.3f32.sin());
        let src = [[10.0, 20.0], [40.0, 22.0], [25.0, 35.0], [26.0, 50.0]];
        let dst = src.map(|p| [a * p[0] - b * p[1] + 7.0, b * p[0] + a * p[1] - 3.0]);
        let (ga, gb, tx, ty) = similarity(&src, &dst).unwrap();
        for (g, w) in [(ga, a), (gb, b), (tx, 7.0), (ty, -3.0)] {
            assert!((g - w).abs() < 1e-3, "{g} vs {w}");
        }
        assert!(similarity(&[[1.0, 1.0]; 4], &dst).is_none());
    }

    /// 68 landmarks whose five ArcFace points sit at `at(template point)`.
    pub(crate) fn landmarks_on_template(at: impl Fn([f32; 2]) -> [f32; 2]) -> Landmarks {
        let mut lm = [[0.0f32; 2]; 68];
        lm[36..42].fill(at(ARCFACE_112[0]));
        lm[42..48].fill(at(ARCFACE_112[1]));
        lm[30] = at(ARCFACE_112[2]);
        lm[48] = at(ARCFACE_112[3]);
        lm[54] = at(ARCFACE_112[4]);
        Landmarks(lm)
    }

    #[test]
    fn the_arcface_map_takes_the_template_back_onto_the_face() {
        let (s, c) = 0.2f32.sin_cos();
        let at = |p: [f32; 2]| {
            [
                3.0 * (c * p[0] - s * p[1]) + 40.0,
                3.0 * (s * p[0] + c * p[1]) + 9.0,
            ]
        };
        let lm = landmarks_on_template(at);
        let map = arcface_map(&lm, 224).unwrap();
        for p in ARCFACE_112 {
            let got = map.apply([p[0] * 2.0, p[1] * 2.0]);
            let want = at(p);
            assert!((got[0] - want[0]).abs() < 1e-2 && (got[1] - want[1]).abs() < 1e-2);
        }
        assert!((map.scale() - 1.5).abs() < 1e-4);
        assert_eq!(supersample_for(map.scale()), 1);
        assert_eq!(supersample_for(5.0), 3);
        assert!(arcface_map(&Landmarks([[5.0, 5.0]; 68]), 112).is_none());
    }

    #[test]
    fn supersampling_averages_over_the_output_pixel() {
        // a 4x1 stripe pattern read into one pixel per 2 source pixels: with 2x2 sub-samples each
        // output pixel is the mean of its two source pixels
        let mut img = RgbImage::new(4, 1);
        for x in 0..4 {
            let v = if x % 2 == 0 { 0 } else { 200 };
            img.put_pixel(x, 0, image::Rgb([v, v, v]));
        }
        let map = Affine([2.0, 0.0, 0.5, 0.0, 0.0, 0.0]);
        let mut out = Vec::new();
        warp(&img, &map, 2, 1, 2, |_, _, p| out.push(p[0]));
        assert_eq!(out, vec![100.0, 100.0]);
    }
}
