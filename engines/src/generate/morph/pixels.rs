//! Small pixel operations the morph needs: box blur, polygon fill, bilinear sampling, skin
//! statistics. Buffers are plain interleaved slices, row-major.

/// A box blur that keeps its scratch buffers, for blurring every frame without allocating.
#[derive(Debug, Default)]
pub struct Blur {
    line: Vec<f32>,
    acc: Vec<f32>,
    column: Vec<f32>,
}

impl Blur {
    /// Blurs an interleaved `f32` image in place with `passes` box blurs of `radius` pixels
    /// (three passes approximate a Gaussian of σ ≈ radius). Edges repeat the border pixel.
    pub fn apply(
        &mut self,
        data: &mut [f32],
        width: usize,
        height: usize,
        channels: usize,
        radius: usize,
        passes: usize,
    ) {
        if radius == 0 || width == 0 || height == 0 || data.len() != width * height * channels {
            return;
        }
        self.acc.resize(width * channels, 0.0);
        self.column.resize(data.len(), 0.0);
        for _ in 0..passes {
            for row in data.chunks_exact_mut(width * channels) {
                blur_line(row, width, channels, radius, &mut self.line);
            }
            blur_columns(
                data,
                &mut self.column,
                width * channels,
                height,
                radius,
                &mut self.acc,
            );
        }
    }
}

/// One horizontal box blur of one row.
fn blur_line(row: &mut [f32], width: usize, ch: usize, radius: usize, line: &mut Vec<f32>) {
    line.clear();
    line.extend_from_slice(row);
    let norm = 1.0 / (2 * radius + 1) as f32;
    let at = |i: isize| i.clamp(0, width as isize - 1) as usize;
    for c in 0..ch {
        let mut sum: f32 = (-(radius as isize)..=radius as isize)
            .map(|i| line[at(i) * ch + c])
            .sum();
        for x in 0..width {
            row[x * ch + c] = sum * norm;
            let add = at(x as isize + radius as isize + 1);
            let drop = at(x as isize - radius as isize);
            sum += line[add * ch + c] - line[drop * ch + c];
        }
    }
}

/// One vertical box blur of the whole image, row by row (cache friendly): `stride` values a row.
fn blur_columns(
    data: &mut [f32],
    copy: &mut [f32],
    stride: usize,
    height: usize,
    radius: usize,
    acc: &mut [f32],
) {
    copy.copy_from_slice(data);
    let norm = 1.0 / (2 * radius + 1) as f32;
    let row = |y: isize| {
        let y = y.clamp(0, height as isize - 1) as usize;
        &copy[y * stride..(y + 1) * stride]
    };
    acc.fill(0.0);
    for dy in -(radius as isize)..=radius as isize {
        for (a, v) in acc.iter_mut().zip(row(dy)) {
            *a += v;
        }
    }
    for y in 0..height {
        for (out, a) in data[y * stride..(y + 1) * stride]
            .iter_mut()
            .zip(acc.iter())
        {
            *out = a * norm;
        }
        let (add, drop) = (
            row(y as isize + radius as isize + 1),
            row(y as isize - radius as isize),
        );
        for ((a, p), m) in acc.iter_mut().zip(add).zip(drop) {
            *a += p - m;
        }
    }
}

/// Sets to `value` every pixel of a one-channel `width x height` plane whose centre lies inside
/// `polygon` (even-odd rule).
pub fn fill_polygon(
    plane: &mut [f32],
    width: usize,
    height: usize,
    polygon: &[[f32; 2]],
    value: f32,
) {
    let mut crossings = Vec::new();
    for y in 0..height {
        let yc = y as f32 + 0.5;
        crossings.clear();
        for (i, a) in polygon.iter().enumerate() {
            let b = polygon[(i + 1) % polygon.len()];
            if (a[1] <= yc) != (b[1] <= yc) {
                crossings.push(a[0] + (yc - a[1]) / (b[1] - a[1]) * (b[0] - a[0]));
            }
        }
        crossings.sort_by(|p, q| p.total_cmp(q));
        for pair in crossings.chunks_exact(2) {
            let x0 = (pair[0] - 0.5).ceil().max(0.0) as usize;
            let x1 = ((pair[1] - 0.5).floor() + 1.0).clamp(0.0, width as f32) as usize;
            if x0 < x1 {
                plane[y * width + x0..y * width + x1].fill(value);
            }
        }
    }
}

/// Bilinear sample of an RGBA `u8` image at continuous coordinates (pixel `i` spans `[i, i+1)`),
/// clamped to the border.
#[cfg(test)]
pub fn sample_rgba(src: &[u8], width: usize, height: usize, x: f32, y: f32) -> [u8; 4] {
    let fx = (x - 0.5).clamp(0.0, (width - 1) as f32);
    let fy = (y - 0.5).clamp(0.0, (height - 1) as f32);
    let (x0, y0) = (fx as usize, fy as usize);
    let (x1, y1) = ((x0 + 1).min(width - 1), (y0 + 1).min(height - 1));
    let (ax, ay) = (fx - x0 as f32, fy - y0 as f32);
    let p = |x: usize, y: usize| &src[(y * width + x) * 4..(y * width + x) * 4 + 4];
    let (p00, p10, p01, p11) = (p(x0, y0), p(x1, y0), p(x0, y1), p(x1, y1));
    let (w00, w10) = ((1.0 - ax) * (1.0 - ay), ax * (1.0 - ay));
    let (w01, w11) = ((1.0 - ax) * ay, ax * ay);
    std::array::from_fn(|c| {
        let v =
            p00[c] as f32 * w00 + p10[c] as f32 * w10 + p01[c] as f32 * w01 + p11[c] as f32 * w11;
        (v + 0.5) as u8
    })
}

/// The box [`sharpen_face`] works on, `[x0, x1, y0, y1]` inside a one-pixel border of an
/// `iw` x `ih` image: the landmarks' box, wider by an eighth, with the forehead above. `None`
/// for a face too small to sharpen.
fn sharpen_box(face: &crate::Landmarks, iw: i64, ih: i64) -> Option<[i64; 4]> {
    let (mut x0, mut y0, mut x1, mut y1) = (f32::MAX, f32::MAX, f32::MIN, f32::MIN);
    for p in face.0.iter() {
        x0 = x0.min(p[0]);
        y0 = y0.min(p[1]);
        x1 = x1.max(p[0]);
        y1 = y1.max(p[1]);
    }
    let (bw, bh) = (x1 - x0, y1 - y0);
    if !(bw > 4.0 && bh > 4.0) {
        return None;
    }
    let bx0 = ((x0 - 0.12 * bw).floor() as i64).clamp(1, iw - 1);
    let bx1 = ((x1 + 0.12 * bw).ceil() as i64).clamp(1, iw - 1);
    let by0 = ((y0 - 0.25 * bh).floor() as i64).clamp(1, ih - 1);
    let by1 = ((y1 + 0.08 * bh).ceil() as i64).clamp(1, ih - 1);
    (bx1 - bx0 >= 4 && by1 - by0 >= 4).then_some([bx0, bx1, by0, by1])
}

/// Restores the finest detail of a face that resampling softened: an unsharp mask (the
/// difference from a 3x3 binomial blur, times `amount`) over the face's box and forehead,
/// fading to nothing over its outer eighth so no edge of the box shows.
pub fn sharpen_face(img: &mut image::RgbImage, face: &crate::Landmarks, amount: f32) {
    let (iw, ih) = (img.width() as i64, img.height() as i64);
    let Some([bx0, bx1, by0, by1]) = sharpen_box(face, iw, ih) else {
        return;
    };
    let fade = (0.125 * (bx1 - bx0).min(by1 - by0) as f32).max(2.0);
    // The weight fades in from each side: per column and per row, the pixel's is the smaller.
    let ramp = |d: i64| {
        let t = (d as f32 / fade).clamp(0.0, 1.0);
        t * t * (3.0 - 2.0 * t)
    };
    let wx: Vec<f32> = (bx0..bx1)
        .map(|x| ramp((x - bx0).min(bx1 - 1 - x)))
        .collect();
    let wy: Vec<f32> = (by0..by1)
        .map(|y| ramp((y - by0).min(by1 - 1 - y)))
        .collect();
    let stride = iw as usize * 3;
    // The region and a one-pixel border, as it was before sharpening.
    let (rx0, ry0) = ((bx0 - 1) as usize, (by0 - 1) as usize);
    let (rw, rh) = ((bx1 - bx0 + 2) as usize, (by1 - by0 + 2) as usize);
    let buf: &mut [u8] = img;
    let mut src = vec![0u8; rw * rh * 3];
    for y in 0..rh {
        let from = (ry0 + y) * stride + rx0 * 3;
        src[y * rw * 3..(y + 1) * rw * 3].copy_from_slice(&buf[from..from + rw * 3]);
    }
    // The region's rows in two bands, one per core: each band writes only its own rows and
    // reads only the untouched copy.
    let band = |rows: std::ops::Range<usize>, out: &mut [u8], out_row0: usize| {
        // The blur's vertical pass (1 2 1) per row, then the horizontal one while writing.
        let mut vert = vec![0u16; rw * 3];
        let mut k256 = vec![0i32; wx.len()];
        for j in rows {
            let y = j + 1;
            let (up, mid, down) = (
                &src[(y - 1) * rw * 3..y * rw * 3],
                &src[y * rw * 3..(y + 1) * rw * 3],
                &src[(y + 1) * rw * 3..(y + 2) * rw * 3],
            );
            for i in 0..rw * 3 {
                vert[i] = u16::from(up[i]) + 2 * u16::from(mid[i]) + u16::from(down[i]);
            }
            // Fixed point: the weight in 1/256, the blur in 1/16 (integers all the way).
            for (i, &kx) in wx.iter().enumerate() {
                k256[i] = (amount * kx.min(wy[j]) * 256.0).round() as i32;
            }
            let at_row = (ry0 + y - out_row0) * stride + rx0 * 3;
            let row = &mut out[at_row..at_row + rw * 3];
            for (i, &k) in k256.iter().enumerate() {
                let at = (i + 1) * 3;
                for c in at..at + 3 {
                    let sum = i32::from(vert[c - 3] + 2 * vert[c] + vert[c + 3]);
                    let v = i32::from(mid[c]);
                    let out = v + ((k * (16 * v - sum) + 2048) >> 12);
                    row[c] = out.clamp(0, 255) as u8;
                }
            }
        }
    };
    let half = wy.len() / 2;
    let split = ry0 + half + 1;
    let (top, bottom) = buf.split_at_mut(split * stride);
    std::thread::scope(|s| {
        s.spawn(|| band(0..half, top, 0));
        band(half..wy.len(), bottom, split);
    });
}

/// The cubic convolution kernel's four weights for a sample `t` (0..1) past its second tap,
/// with `a = -0.75` (as OpenCV's `INTER_CUBIC`): sharper than bilinear, which averages away
/// much of the finest detail (skin texture, lashes, the grain of a painting) at every resample.
#[inline(always)]
fn cubic_weights(t: f32) -> [f32; 4] {
    const A: f32 = -0.75;
    let w = |x: f32| {
        let x = x.abs();
        if x < 1.0 {
            ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
        } else if x < 2.0 {
            ((A * x - 5.0 * A) * x + 8.0 * A) * x - 4.0 * A
        } else {
            0.0
        }
    };
    [w(1.0 + t), w(t), w(1.0 - t), w(2.0 - t)]
}

/// Bicubic sample of an RGBA buffer (`width` x `height`) at continuous coordinates (pixel
/// centres at +0.5), clamped to the border: the face's warp, where detail matters most. Exact at
/// pixel centres.
#[inline]
pub fn sample_rgba_cubic(src: &[u8], width: usize, height: usize, x: f32, y: f32) -> [u8; 4] {
    let fx = (x - 0.5).clamp(0.0, (width - 1) as f32);
    let fy = (y - 0.5).clamp(0.0, (height - 1) as f32);
    let (x0, y0) = (fx as usize, fy as usize);
    let (wx, wy) = (cubic_weights(fx - x0 as f32), cubic_weights(fy - y0 as f32));
    let col = |i: usize| (x0 + i).saturating_sub(1).min(width - 1);
    let cols = [col(0), col(1), col(2), col(3)];
    let mut acc = [0.0f32; 4];
    for (j, wyj) in wy.iter().enumerate() {
        let row = (y0 + j).saturating_sub(1).min(height - 1) * width;
        let mut r = [0.0f32; 4];
        for (xx, wxi) in cols.iter().zip(wx) {
            let p = &src[(row + xx) * 4..(row + xx) * 4 + 4];
            for c in 0..4 {
                r[c] += wxi * p[c] as f32;
            }
        }
        for c in 0..4 {
            acc[c] += wyj * r[c];
        }
    }
    acc.map(|v| (v + 0.5).clamp(0.0, 255.0) as u8)
}

/// [`sample_rgba`] in fixed point (1/256 pixel, weights rounded), two channels per integer
/// multiply: the warp's inner loop. Exact at pixel centres.
#[inline(always)]
pub fn sample_rgba_fixed(src: &[u8], width: usize, height: usize, x: f32, y: f32) -> [u8; 4] {
    let x8 = ((x - 0.5).clamp(0.0, (width - 1) as f32) * 256.0 + 0.5) as usize;
    let y8 = ((y - 0.5).clamp(0.0, (height - 1) as f32) * 256.0 + 0.5) as usize;
    bilinear_fixed(src.as_chunks::<4>().0, width, height, x8, y8)
}

/// [`sample_rgba_fixed`] along a line: `out[k]` samples `start + k·step` (source pixels). The
/// position is carried in 16.16 fixed point from pixel to pixel, so no pixel converts a float;
/// over a row of 4096 pixels it drifts by less than 1/16 pixel.
pub fn sample_span_fixed(
    src: &[u8],
    width: usize,
    height: usize,
    start: [f32; 2],
    step: [f32; 2],
    out: &mut [[u8; 4]],
) {
    if width == 0 || height == 0 || src.len() < width * height * 4 {
        return;
    }
    let fixed = |v: f32| (v * 65536.0).round().clamp(-2.0e9, 2.0e9) as i64;
    let (mut fx, mut fy) = (fixed(start[0] - 0.5), fixed(start[1] - 0.5));
    let (sx, sy) = (fixed(step[0]), fixed(step[1]));
    let (xmax, ymax) = (((width - 1) as i64) << 16, ((height - 1) as i64) << 16);
    let pixels = src.as_chunks::<4>().0;
    for px in out {
        // 1/256 pixel, rounded as `sample_rgba_fixed` rounds.
        let x8 = ((fx.clamp(0, xmax) + 128) >> 8) as usize;
        let y8 = ((fy.clamp(0, ymax) + 128) >> 8) as usize;
        fx += sx;
        fy += sy;
        *px = bilinear_fixed(pixels, width, height, x8, y8);
    }
}

/// The bilinear sample of `pixels` (`width` x `height`) at (`x8`, `y8`) in 1/256 pixel, within
/// the picture: the kernel of [`sample_rgba_fixed`] and [`sample_span_fixed`].
#[inline(always)]
fn bilinear_fixed(
    pixels: &[[u8; 4]],
    width: usize,
    height: usize,
    x8: usize,
    y8: usize,
) -> [u8; 4] {
    const M: u32 = 0x00FF_00FF;
    let (x0, y0) = (x8 >> 8, y8 >> 8);
    let (ax, ay) = ((x8 & 255) as u32, (y8 & 255) as u32);
    let (dx, dy) = (
        usize::from(x0 + 1 < width),
        usize::from(y0 + 1 < height) * width,
    );
    let i = y0 * width + x0;
    let at = |i: usize| u32::from_le_bytes(pixels[i]);
    let (p00, p10, p01, p11) = (at(i), at(i + dx), at(i + dy), at(i + dy + dx));
    // lerp of the two 16-bit lanes (channels 0 and 2, or 1 and 3) of `a` and `b` by t/256.
    let lerp = |a: u32, b: u32, t: u32| ((a * (256 - t) + b * t + 0x0080_0080) >> 8) & M;
    let rb = lerp(lerp(p00 & M, p10 & M, ax), lerp(p01 & M, p11 & M, ax), ay);
    let ga = lerp(
        lerp((p00 >> 8) & M, (p10 >> 8) & M, ax),
        lerp((p01 >> 8) & M, (p11 >> 8) & M, ax),
        ay,
    );
    (rb | (ga << 8)).to_le_bytes()
}

/// Bilinear sample of an RGB image at continuous coordinates, clamped to the border.
pub fn sample_rgb(image: &image::RgbImage, p: [f32; 2]) -> [f32; 3] {
    let (w, h) = (image.width() as usize, image.height() as usize);
    let fx = (p[0] - 0.5).clamp(0.0, (w - 1) as f32);
    let fy = (p[1] - 0.5).clamp(0.0, (h - 1) as f32);
    let (x0, y0) = (fx as usize, fy as usize);
    let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
    let (ax, ay) = (fx - x0 as f32, fy - y0 as f32);
    let raw = image.as_raw();
    let at = |x: usize, y: usize, c: usize| raw[(y * w + x) * 3 + c] as f32;
    std::array::from_fn(|c| {
        let top = at(x0, y0, c) + (at(x1, y0, c) - at(x0, y0, c)) * ax;
        let bottom = at(x0, y1, c) + (at(x1, y1, c) - at(x0, y1, c)) * ax;
        top + (bottom - top) * ay
    })
}

/// Fills the pixels of an interleaved RGB `f32` image where `known` is 0 from the pixels around
/// them: a pull-push fill (averages of the known pixels pulled down a pyramid, then pushed back
/// up into the holes), which gives a smooth continuation of the surroundings and never smears
/// a hole's own content. `known` is a weight per pixel, 0..=1.
pub fn fill_holes(rgb: &[f32], known: &[f32], width: usize, height: usize) -> Vec<f32> {
    // Level 0: premultiplied colour and weight.
    let mut levels: Vec<(Vec<f32>, Vec<f32>, usize, usize)> = Vec::new();
    let premul: Vec<f32> = rgb
        .chunks_exact(3)
        .zip(known)
        .flat_map(|(c, &k)| [c[0] * k, c[1] * k, c[2] * k])
        .collect();
    levels.push((premul, known.to_vec(), width, height));
    // Pull: halve until one pixel, summing 2x2 blocks (weights saturate at 1).
    while let Some((c, k, w, h)) = levels.last() {
        if *w <= 1 && *h <= 1 {
            break;
        }
        let (nw, nh) = (w.div_ceil(2), h.div_ceil(2));
        let mut nc = vec![0.0f32; nw * nh * 3];
        let mut nk = vec![0.0f32; nw * nh];
        for y in 0..nh {
            for x in 0..nw {
                let (mut s, mut wsum) = ([0.0f32; 3], 0.0f32);
                for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                    let (sx, sy) = (2 * x + dx, 2 * y + dy);
                    if sx < *w && sy < *h {
                        let i = sy * w + sx;
                        wsum += k[i];
                        for ch in 0..3 {
                            s[ch] += c[i * 3 + ch];
                        }
                    }
                }
                let i = y * nw + x;
                let norm = if wsum > 1.0 { 1.0 / wsum } else { 1.0 };
                nk[i] = wsum.min(1.0);
                for ch in 0..3 {
                    nc[i * 3 + ch] = s[ch] * norm;
                }
            }
        }
        levels.push((nc, nk, nw, nh));
    }
    // Push: from the coarsest level down, fill each level's missing weight from the level
    // above (bilinear), so every level ends fully known.
    for l in (0..levels.len() - 1).rev() {
        let (fine, coarse) = levels.split_at_mut(l + 1);
        let (uc, _, uw, uh) = &coarse[0];
        let (lc, lk, lw, lh) = &mut fine[l];
        let (uw, uh) = (*uw, *uh);
        for y in 0..*lh {
            for x in 0..*lw {
                let i = y * *lw + x;
                let missing = 1.0 - lk[i].min(1.0);
                if missing <= 0.0 {
                    continue;
                }
                let fx = ((x as f32 + 0.5) * 0.5 - 0.5).clamp(0.0, (uw - 1) as f32);
                let fy = ((y as f32 + 0.5) * 0.5 - 0.5).clamp(0.0, (uh - 1) as f32);
                let (x0, y0) = (fx as usize, fy as usize);
                let (x1, y1) = ((x0 + 1).min(uw - 1), (y0 + 1).min(uh - 1));
                let (ax, ay) = (fx - x0 as f32, fy - y0 as f32);
                for ch in 0..3 {
                    let at = |x: usize, y: usize| uc[(y * uw + x) * 3 + ch];
                    let top = at(x0, y0) + (at(x1, y0) - at(x0, y0)) * ax;
                    let bot = at(x0, y1) + (at(x1, y1) - at(x0, y1)) * ax;
                    lc[i * 3 + ch] += missing * (top + (bot - top) * ay);
                }
                lk[i] = 1.0;
            }
        }
    }
    let (c, _, _, _) = levels.swap_remove(0);
    c
}

/// Mean and standard deviation per channel of the RGBA pixels whose alpha is at least half.
pub fn masked_stats(rgba: &[u8]) -> Option<([f32; 3], [f32; 3])> {
    let (mut n, mut sum, mut sq) = (0u64, [0u64; 3], [0u64; 3]);
    for px in rgba.chunks_exact(4).filter(|px| px[3] >= 128) {
        n += 1;
        for c in 0..3 {
            sum[c] += px[c] as u64;
            sq[c] += (px[c] as u64).pow(2);
        }
    }
    if n < 16 {
        return None;
    }
    let mean = sum.map(|s| s as f64 / n as f64);
    let std = std::array::from_fn(|c| {
        ((sq[c] as f64 / n as f64 - mean[c] * mean[c])
            .max(0.0)
            .sqrt()) as f32
    });
    Some((mean.map(|m| m as f32), std))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sharpening_a_face_restores_its_detail_inside_its_box_only() {
        use crate::Landmarks;
        // A softly textured "face" on a flat field; the face's landmarks span 100..200.
        let img = image::RgbImage::from_fn(320, 320, |x, y| {
            let v = 128.0 + 20.0 * ((x as f32 * 0.9).sin() * (y as f32 * 0.7).cos());
            image::Rgb([v as u8, v as u8, v as u8])
        });
        let face = Landmarks(std::array::from_fn(|i| {
            let t = i as f32 / 67.0;
            [100.0 + 100.0 * t, 140.0 + 60.0 * (t * 6.0).sin().abs()]
        }));
        let lap = |im: &image::RgbImage, x0: u32, y0: u32, x1: u32, y1: u32| {
            let g = |x: u32, y: u32| im.get_pixel(x, y)[0] as f32;
            let mut v = Vec::new();
            for y in y0..y1 {
                for x in x0..x1 {
                    v.push(4.0 * g(x, y) - g(x - 1, y) - g(x + 1, y) - g(x, y - 1) - g(x, y + 1));
                }
            }
            let m = v.iter().sum::<f32>() / v.len() as f32;
            v.iter().map(|a| (a - m).powi(2)).sum::<f32>() / v.len() as f32
        };
        let mut sharp = img.clone();
        sharpen_face(&mut sharp, &face, 0.5);
        let (before, after) = (
            lap(&img, 130, 150, 170, 190),
            lap(&sharp, 130, 150, 170, 190),
        );
        assert!(after > 1.3 * before, "detail {before} -> {after}");
        // Far outside the face's box nothing changes, and no step marks the box's edge.
        for (x, y) in [(10, 10), (300, 300), (50, 160), (260, 160)] {
            assert_eq!(img.get_pixel(x, y), sharp.get_pixel(x, y), "({x}, {y})");
        }
        let mut none = img.clone();
        sharpen_face(&mut none, &face, 0.0);
        assert_eq!(none, img);
    }

    #[test]
    fn bicubic_is_exact_at_pixel_centres_and_keeps_more_detail_than_bilinear() {
        // A fine random texture, 32x32 RGBA.
        let (w, h) = (32usize, 32usize);
        let mut seed = 7u32;
        let src: Vec<u8> = (0..w * h * 4)
            .map(|_| {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                (seed >> 16) as u8
            })
            .collect();
        for (x, y) in [(3usize, 4usize), (10, 20), (0, 0), (31, 31)] {
            let at = (y * w + x) * 4;
            let c = sample_rgba_cubic(&src, w, h, x as f32 + 0.5, y as f32 + 0.5);
            assert_eq!(c[..], src[at..at + 4], "({x}, {y})");
        }
        // Resampled half a pixel off, the texture keeps more of its contrast with bicubic.
        let spread = |f: &dyn Fn(f32, f32) -> [u8; 4]| {
            let v: Vec<f32> = (4..28)
                .flat_map(|y| (4..28).map(move |x| (x, y)))
                .map(|(x, y)| f(x as f32 + 1.0, y as f32 + 1.0)[0] as f32)
                .collect();
            let m = v.iter().sum::<f32>() / v.len() as f32;
            v.iter().map(|a| (a - m).powi(2)).sum::<f32>() / v.len() as f32
        };
        let cubic = spread(&|x, y| sample_rgba_cubic(&src, w, h, x, y));
        let linear = spread(&|x, y| sample_rgba_fixed(&src, w, h, x, y));
        assert!(cubic > 1.3 * linear, "bicubic {cubic}, bilinear {linear}");
    }

    #[test]
    fn blur_keeps_a_flat_image_flat_and_spreads_a_step() {
        let (w, h) = (20, 10);
        let mut flat = vec![3.0f32; w * h];
        Blur::default().apply(&mut flat, w, h, 1, 3, 3);
        assert!(flat.iter().all(|v| (v - 3.0).abs() < 1e-4));
        let mut step: Vec<f32> = (0..w * h)
            .map(|i| if i % w < 10 { 0.0 } else { 1.0 })
            .collect();
        Blur::default().apply(&mut step, w, h, 1, 2, 3);
        assert!(step[9] > 0.2 && step[9] < 0.5 && step[10] > 0.5 && step[0] < 1e-6);
    }

    #[test]
    fn fills_a_square_polygon_by_pixel_centres() {
        let mut plane = vec![0.0f32; 8 * 8];
        fill_polygon(
            &mut plane,
            8,
            8,
            &[[2.0, 2.0], [6.0, 2.0], [6.0, 6.0], [2.0, 6.0]],
            1.0,
        );
        assert_eq!(plane.iter().filter(|v| **v == 1.0).count(), 16);
        assert_eq!(plane[2 * 8 + 2], 1.0);
        assert_eq!(plane[6 * 8 + 6], 0.0);
    }

    #[test]
    fn samples_exact_pixels_at_their_centres() {
        let src: Vec<u8> = (0..4 * 4 * 4).map(|i| i as u8).collect();
        assert_eq!(sample_rgba(&src, 4, 4, 1.5, 2.5), [36, 37, 38, 39]);
        assert_eq!(sample_rgba_fixed(&src, 4, 4, 1.5, 2.5), [36, 37, 38, 39]);
        assert_eq!(
            sample_rgba_fixed(&src, 4, 4, 1.49999, 2.50001),
            [36, 37, 38, 39]
        );
    }

    #[test]
    fn fixed_point_sampling_agrees_with_floating_point() {
        let src: Vec<u8> = (0..9 * 7 * 4).map(|i| (i * 37 % 256) as u8).collect();
        for k in 0..500 {
            let (x, y) = (
                (k as f32 * 0.731) % 10.0 - 0.5,
                (k as f32 * 0.377) % 8.0 - 0.5,
            );
            let (a, b) = (
                sample_rgba(&src, 9, 7, x, y),
                sample_rgba_fixed(&src, 9, 7, x, y),
            );
            for c in 0..4 {
                assert!(a[c].abs_diff(b[c]) <= 2, "at {x} {y}: {a:?} vs {b:?}");
            }
        }
    }

    /// Sampling along a line in fixed point gives what sampling each pixel on its own gives,
    /// to within one grey level, across a long row, past the borders included.
    #[test]
    fn a_sampled_span_matches_pixel_by_pixel_sampling() {
        let (w, h) = (97usize, 61usize);
        // A smooth picture (at most ~25 grey levels a pixel), so that a position off by the
        // fixed point's 1/256 pixel changes a sample by less than a grey level.
        let src: Vec<u8> = (0..w * h * 4)
            .map(|i| {
                let (x, y, c) = ((i / 4 % w) as f32, (i / 4 / w) as f32, (i % 4) as f32);
                (120.0 + 100.0 * (0.23 * x + 0.17 * y + c).sin()).round() as u8
            })
            .collect();
        let start = [-3.3f32, 70.2];
        let step = [0.137f32, -0.0913];
        let mut span = vec![[0u8; 4]; 900];
        sample_span_fixed(&src, w, h, start, step, &mut span);
        for (k, got) in span.iter().enumerate() {
            let (x, y) = (start[0] + k as f32 * step[0], start[1] + k as f32 * step[1]);
            let want = sample_rgba_fixed(&src, w, h, x, y);
            for c in 0..4 {
                assert!(
                    (i32::from(got[c]) - i32::from(want[c])).abs() <= 1,
                    "pixel {k} channel {c}: {got:?} vs {want:?}"
                );
            }
        }
    }
}
