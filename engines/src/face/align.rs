//! Affine resampling of face crops: bilinear, zero outside the image, with an optional k×k
//! supersampling so a crop much smaller than the face does not alias.
//!
//! Coordinates are array coordinates: pixel `(i, j)`'s centre is at `(i, j)`.

use image::RgbImage;

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
mod tests {
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
