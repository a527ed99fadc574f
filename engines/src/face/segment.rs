//! Person segmentation (MediaPipe Selfie Segmentation): who is a person, per image pixel.
//!
//! The model sees the whole frame resized (bilinear, area-aware) to 256x256, or to 144x256 with
//! the landscape model for frames wider than tall when it is installed (on the couple frame the
//! square model, squeezing the frame, takes the dark gap between the two people for a third
//! body; the landscape model does not). Its coarse probability map is upsampled bilinearly to
//! the image and refined with a guided filter (He, Sun and Tang, 2010: grey guide = the image,
//! radius 1% of the longer side, eps 1e-3 on 0..1 values), so hair, cheeks and shoulders follow
//! the picture's own edges instead of the model's 5-pixel cells. Its coefficients are computed
//! on block means of at most about 512 pixels a side and applied to the full-resolution guide
//! (the fast guided filter, He and Sun 2015), which keeps the edges and costs a tenth. Where the model is sure of a
//! person (coarse probability ≥ 0.95) the mask stays at least that sure: a guided filter
//! alone pulls dark features near the outline (an eye, the lips of a face seen from the side)
//! toward the dark background, to about 0.9.

use std::path::Path;

use fast_image_resize::Resizer;
use image::RgbImage;
use ndarray::Array4;
use ort::session::Session;
use ort::value::TensorRef;
use rayon::prelude::*;

use super::{FaceError, open_model, resize_whole};
use crate::manifest::Manifest;
use crate::runtime::{Runtime, SessionInfo};

/// Guided-filter radius: the image's longer side over this (1 %).
pub const GUIDE_RADIUS_DIVISOR: usize = 100;
/// Guided-filter regulariser (on 0..1 grey values): larger smooths more, smaller follows
/// weaker edges.
pub const GUIDE_EPS: f32 = 1e-3;
/// The guided filter's coefficients are computed on s×s block means, s = longer side / this
/// (the fast guided filter of He and Sun, 2015); the mask itself stays at full resolution.
const GUIDE_WORK_SIDE: usize = 512;
/// Coarse probability above which the model is taken at its word.
const SURE: f32 = 0.95;

/// A person mask at the image's resolution: 0 (background) to 1 (person) per pixel, row-major.
#[derive(Debug, Clone)]
pub struct PersonMask {
    pub width: u32,
    pub height: u32,
    pub data: Vec<f32>,
}

impl PersonMask {
    /// The mask at pixel `(x, y)`; 0 outside the image.
    pub fn at(&self, x: u32, y: u32) -> f32 {
        if x >= self.width || y >= self.height {
            return 0.0;
        }
        self.data[y as usize * self.width as usize + x as usize]
    }

    /// The mean of the mask over the pixels of `rect` (`[x1, y1, x2, y2]` in image pixels,
    /// rounded to whole pixels and clipped to the image): the share of the rectangle that is
    /// person. 0 for a rectangle outside the image.
    pub fn coverage_in(&self, rect: [f32; 4]) -> f32 {
        let clip = |v: f32, hi: u32| (v.round().max(0.0) as u32).min(hi) as usize;
        let (x1, x2) = (clip(rect[0], self.width), clip(rect[2], self.width));
        let (y1, y2) = (clip(rect[1], self.height), clip(rect[3], self.height));
        if x2 <= x1 || y2 <= y1 {
            return 0.0;
        }
        let w = self.width as usize;
        let sum: f64 = (y1..y2)
            .map(|y| {
                self.data[y * w + x1..y * w + x2]
                    .iter()
                    .map(|&v| f64::from(v))
                    .sum::<f64>()
            })
            .sum();
        (sum / ((x2 - x1) * (y2 - y1)) as f64) as f32
    }

    /// The mask as an 8-bit grey picture (for looking at it).
    pub fn to_luma(&self) -> image::GrayImage {
        let px = self
            .data
            .iter()
            .map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
            .collect();
        image::GrayImage::from_raw(self.width, self.height, px).expect("mask size")
    }
}

struct SegModel {
    session: Session,
    info: SessionInfo,
    input_name: String,
    output_name: String,
    w: u32,
    h: u32,
}

impl SegModel {
    fn open(
        runtime: &Runtime,
        models_dir: &Path,
        manifest: &Manifest,
        role: &str,
    ) -> Result<Self, FaceError> {
        let (session, info, spec) = open_model(runtime, models_dir, manifest, role)?;
        let (input, output) = match (spec.inputs.first(), spec.outputs.first()) {
            (Some(i), Some(o)) => (i, o),
            _ => {
                return Err(FaceError::Config(format!(
                    "manifest: {role} has no tensors"
                )));
            }
        };
        let (h, w) = match input.shape.as_slice() {
            [1, h, w, 3] if *h > 0 && *w > 0 => (*h as u32, *w as u32),
            other => {
                return Err(FaceError::Config(format!(
                    "{role} input shape {other:?} is not [1,H,W,3]"
                )));
            }
        };
        Ok(SegModel {
            session,
            info,
            input_name: input.name.clone(),
            output_name: output.name.clone(),
            w,
            h,
        })
    }
}

/// The loaded segmentation models.
pub struct Segmenter {
    square: SegModel,
    landscape: Option<SegModel>,
    resizer: Resizer,
}

impl Segmenter {
    /// Opens `selfie-segmentation-256.onnx` (required) and the landscape model when it is
    /// installed.
    pub fn open(runtime: &Runtime, models_dir: &Path) -> Result<Self, FaceError> {
        let manifest = Manifest::face_pack();
        let square = SegModel::open(runtime, models_dir, &manifest, "segmentation")?;
        let landscape =
            match SegModel::open(runtime, models_dir, &manifest, "segmentation-landscape") {
                Ok(m) => Some(m),
                Err(FaceError::MissingModel { .. }) => None,
                Err(e) => return Err(e),
            };
        Ok(Segmenter {
            square,
            landscape,
            resizer: Resizer::new(),
        })
    }

    /// Where the square model runs (the landscape one runs on the same provider).
    pub fn info(&self) -> &SessionInfo {
        &self.square.info
    }

    /// Whether frames wider than tall go to the landscape model.
    pub fn has_landscape(&self) -> bool {
        self.landscape.is_some()
    }

    /// The person mask of `image`, at its resolution.
    pub fn run(&mut self, image: &RgbImage) -> Result<PersonMask, FaceError> {
        let (iw, ih) = image.dimensions();
        let model = match &mut self.landscape {
            Some(m) if iw > ih => m,
            _ => &mut self.square,
        };
        let (mw, mh) = (model.w, model.h);
        let small = resize_whole(&mut self.resizer, image, mw, mh)?;
        let input = Array4::from_shape_vec(
            (1, mh as usize, mw as usize, 3),
            small
                .buffer()
                .iter()
                .map(|&v| f32::from(v) / 255.0)
                .collect(),
        )
        .map_err(|e| FaceError::Inference(format!("segmentation input: {e}")))?;
        let outputs = model.session.run(ort::inputs![
            model.input_name.as_str() => TensorRef::from_array_view(&input)?
        ])?;
        let (_, prob) = outputs[model.output_name.as_str()].try_extract_tensor::<f32>()?;
        if prob.len() != (mw * mh) as usize {
            return Err(FaceError::Inference(format!(
                "segmentation output holds {} values, expected {}",
                prob.len(),
                mw * mh
            )));
        }
        let (w, h) = (iw as usize, ih as usize);
        let coarse = upsample(prob, (mw as usize, mh as usize), (w, h), None);
        let guide = grey(image);
        let r = ((w.max(h) + GUIDE_RADIUS_DIVISOR / 2) / GUIDE_RADIUS_DIVISOR).max(1);
        let refined = fast_guided_filter(&guide, &coarse, w, h, r, GUIDE_EPS);
        let data = refined
            .into_par_iter()
            .zip(coarse.par_iter())
            .map(|(q, &p)| {
                let sure = ((p - SURE) / (1.0 - SURE)).clamp(0.0, 1.0) * p;
                q.clamp(0.0, 1.0).max(sure)
            })
            .collect();
        Ok(PersonMask {
            width: iw,
            height: ih,
            data,
        })
    }
}

/// Bilinear upsampling of a `src` map (`sw`x`sh`) to `dw`x`dh`, edges clamped. Destination
/// pixel `i` reads source coordinate `(i + 0.5)·f − 0.5`, with `f` the size ratio (pixel
/// centres aligned) unless `scale` gives it.
fn upsample(
    src: &[f32],
    (sw, sh): (usize, usize),
    (dw, dh): (usize, usize),
    scale: Option<f32>,
) -> Vec<f32> {
    let axis = |n_dst: usize, n_src: usize| -> Vec<(usize, usize, f32)> {
        let f = scale.unwrap_or(n_src as f32 / n_dst as f32);
        (0..n_dst)
            .map(|i| {
                let s = ((i as f32 + 0.5) * f - 0.5).clamp(0.0, (n_src - 1) as f32);
                let i0 = s.floor() as usize;
                (i0, (i0 + 1).min(n_src - 1), s - i0 as f32)
            })
            .collect()
    };
    let (xs, ys) = (axis(dw, sw), axis(dh, sh));
    let mut out = vec![0f32; dw * dh];
    out.par_chunks_mut(dw)
        .zip(&ys)
        .for_each(|(row, &(y0, y1, fy))| {
            let (r0, r1) = (&src[y0 * sw..(y0 + 1) * sw], &src[y1 * sw..(y1 + 1) * sw]);
            for (o, &(x0, x1, fx)) in row.iter_mut().zip(&xs) {
                let top = r0[x0] + (r0[x1] - r0[x0]) * fx;
                let bottom = r1[x0] + (r1[x1] - r1[x0]) * fx;
                *o = top + (bottom - top) * fy;
            }
        });
    out
}

/// Means of `s`×`s` blocks (the last ones clipped to the image): a `ceil(w/s)`x`ceil(h/s)` map.
fn block_mean(a: &[f32], w: usize, h: usize, s: usize) -> Vec<f32> {
    let (lw, lh) = (w.div_ceil(s), h.div_ceil(s));
    let mut out = vec![0f32; lw * lh];
    out.par_chunks_mut(lw).enumerate().for_each(|(ly, row)| {
        let (y0, y1) = (ly * s, ((ly + 1) * s).min(h));
        let mut sums = vec![0f64; lw];
        for y in y0..y1 {
            for (x, &v) in a[y * w..(y + 1) * w].iter().enumerate() {
                sums[x / s] += f64::from(v);
            }
        }
        for (lx, (o, sum)) in row.iter_mut().zip(&sums).enumerate() {
            let n = ((((lx + 1) * s).min(w) - lx * s) * (y1 - y0)) as f64;
            *o = (sum / n) as f32;
        }
    });
    out
}

/// The guided filter computed on `s`×`s` block means of the guide and the mask (s from
/// [`GUIDE_WORK_SIDE`], radius `r / s`), its coefficients upsampled and applied to the
/// full-resolution guide: the outline still follows the picture's pixels.
fn fast_guided_filter(
    guide: &[f32],
    p: &[f32],
    w: usize,
    h: usize,
    r: usize,
    eps: f32,
) -> Vec<f32> {
    let s = (w.max(h) / GUIDE_WORK_SIDE).max(1);
    if s == 1 {
        return guided_filter(guide, p, w, h, r, eps);
    }
    let (lw, lh) = (w.div_ceil(s), h.div_ceil(s));
    let (small_i, small_p) = (block_mean(guide, w, h, s), block_mean(p, w, h, s));
    let (a, b) = coefficients(&small_i, &small_p, lw, lh, ((r + s / 2) / s).max(1), eps);
    let scale = Some(1.0 / s as f32);
    apply(
        guide,
        &upsample(&a, (lw, lh), (w, h), scale),
        &upsample(&b, (lw, lh), (w, h), scale),
    )
}

/// `q = a·I + b` per pixel.
fn apply(guide: &[f32], a: &[f32], b: &[f32]) -> Vec<f32> {
    guide
        .par_iter()
        .zip(a.par_iter().zip(b))
        .map(|(&g, (&a, &b))| a * g + b)
        .collect()
}

/// Grey values 0..1 (ITU-R BT.601 luma).
fn grey(img: &RgbImage) -> Vec<f32> {
    img.as_raw()
        .par_chunks_exact(3)
        .map(|p| {
            (0.299 * f32::from(p[0]) + 0.587 * f32::from(p[1]) + 0.114 * f32::from(p[2])) / 255.0
        })
        .collect()
}

/// The mean over the `(2r+1)²` window around each pixel, clipped to the image (each mean over
/// the pixels that are inside).
fn box_mean(a: &[f32], w: usize, h: usize, r: usize) -> Vec<f32> {
    // Rows: a sliding sum per row (f64, so long rows do not drift).
    let mut rows = vec![0f32; w * h];
    rows.par_chunks_mut(w)
        .zip(a.par_chunks(w))
        .for_each(|(out, row)| {
            let mut s = row[..r.min(w - 1) + 1]
                .iter()
                .map(|&v| f64::from(v))
                .sum::<f64>();
            for x in 0..w {
                let (lo, hi) = (x.saturating_sub(r), (x + r).min(w - 1));
                out[x] = (s / (hi - lo + 1) as f64) as f32;
                if x + r + 1 < w {
                    s += f64::from(row[x + r + 1]);
                }
                if x >= r {
                    s -= f64::from(row[x - r]);
                }
            }
        });
    // Columns: sliding sums of whole rows, in bands of columns so threads share the work.
    let mut out = vec![0f32; w * h];
    const BAND: usize = 256;
    let bands: Vec<usize> = (0..w).step_by(BAND).collect();
    let cols: Vec<Vec<f32>> = bands
        .par_iter()
        .map(|&x0| {
            let bw = BAND.min(w - x0);
            let mut sums = vec![0f64; bw];
            for y in 0..=r.min(h - 1) {
                for (s, &v) in sums.iter_mut().zip(&rows[y * w + x0..y * w + x0 + bw]) {
                    *s += f64::from(v);
                }
            }
            let mut band = vec![0f32; bw * h];
            for y in 0..h {
                let (lo, hi) = (y.saturating_sub(r), (y + r).min(h - 1));
                let n = (hi - lo + 1) as f64;
                for (o, s) in band[y * bw..(y + 1) * bw].iter_mut().zip(&sums) {
                    *o = (s / n) as f32;
                }
                if y + r + 1 < h {
                    let add = &rows[(y + r + 1) * w + x0..(y + r + 1) * w + x0 + bw];
                    for (s, &v) in sums.iter_mut().zip(add) {
                        *s += f64::from(v);
                    }
                }
                if y >= r {
                    let sub = &rows[(y - r) * w + x0..(y - r) * w + x0 + bw];
                    for (s, &v) in sums.iter_mut().zip(sub) {
                        *s -= f64::from(v);
                    }
                }
            }
            band
        })
        .collect();
    for (&x0, band) in bands.iter().zip(&cols) {
        let bw = BAND.min(w - x0);
        for y in 0..h {
            out[y * w + x0..y * w + x0 + bw].copy_from_slice(&band[y * bw..(y + 1) * bw]);
        }
    }
    out
}

/// The guided filter of `p` with the grey guide `guide` (He et al.): `q = mean(a)·I + mean(b)`
/// with `a = cov(I, p) / (var(I) + eps)`, `b = mean(p) − a·mean(I)` over each window.
fn guided_filter(guide: &[f32], p: &[f32], w: usize, h: usize, r: usize, eps: f32) -> Vec<f32> {
    let (mean_a, mean_b) = coefficients(guide, p, w, h, r, eps);
    apply(guide, &mean_a, &mean_b)
}

/// The guided filter's `mean(a)` and `mean(b)` maps.
fn coefficients(
    guide: &[f32],
    p: &[f32],
    w: usize,
    h: usize,
    r: usize,
    eps: f32,
) -> (Vec<f32>, Vec<f32>) {
    let ii: Vec<f32> = guide.par_iter().map(|&v| v * v).collect();
    let ip: Vec<f32> = guide.par_iter().zip(p).map(|(&g, &q)| g * q).collect();
    let (mean_i, mean_p) = (box_mean(guide, w, h, r), box_mean(p, w, h, r));
    let (corr_ii, corr_ip) = (box_mean(&ii, w, h, r), box_mean(&ip, w, h, r));
    drop((ii, ip));
    let (a, b): (Vec<f32>, Vec<f32>) = (0..w * h)
        .into_par_iter()
        .map(|k| {
            let var = corr_ii[k] - mean_i[k] * mean_i[k];
            let cov = corr_ip[k] - mean_i[k] * mean_p[k];
            let a = cov / (var + eps);
            (a, mean_p[k] - a * mean_i[k])
        })
        .unzip();
    (box_mean(&a, w, h, r), box_mean(&b, w, h, r))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive_box_mean(a: &[f32], w: usize, h: usize, r: usize) -> Vec<f32> {
        let mut out = vec![0f32; w * h];
        for y in 0..h {
            for x in 0..w {
                let (mut s, mut n) = (0f64, 0);
                for yy in y.saturating_sub(r)..=(y + r).min(h - 1) {
                    for xx in x.saturating_sub(r)..=(x + r).min(w - 1) {
                        s += f64::from(a[yy * w + xx]);
                        n += 1;
                    }
                }
                out[y * w + x] = (s / n as f64) as f32;
            }
        }
        out
    }

    #[test]
    fn box_mean_matches_the_definition_at_the_borders_too() {
        for (w, h, r) in [(7, 5, 2), (300, 4, 3), (3, 9, 5), (1, 1, 1)] {
            let a: Vec<f32> = (0..w * h).map(|i| ((i * 37) % 11) as f32 / 10.0).collect();
            let fast = box_mean(&a, w, h, r);
            let slow = naive_box_mean(&a, w, h, r);
            for (f, s) in fast.iter().zip(&slow) {
                assert!((f - s).abs() < 1e-5, "{w}x{h} r{r}: {f} vs {s}");
            }
        }
    }

    #[test]
    fn the_guided_filter_moves_a_blurry_edge_onto_the_guides_edge() {
        // guide: a sharp vertical edge at x = 20; mask: a ramp over 10 pixels centred at 17,
        // rising 0.1 a pixel. The filtered mask steps up at the guide's edge.
        let (w, h) = (40, 8);
        let guide: Vec<f32> = (0..w * h)
            .map(|i| if i % w < 20 { 0.1 } else { 0.9 })
            .collect();
        let p: Vec<f32> = (0..w * h)
            .map(|i| (((i % w) as f32 - 17.0) / 10.0 + 0.5).clamp(0.0, 1.0))
            .collect();
        let q = guided_filter(&guide, &p, w, h, 3, 1e-3);
        let row = &q[4 * w..5 * w];
        assert!(row[20] - row[19] > 0.3, "{row:?}");
        assert!(row[21] > 0.85 && row[15] < 0.4, "{row:?}");
    }

    #[test]
    fn upsampling_keeps_a_constant_and_interpolates_between_cells() {
        let up = upsample(&[0.0, 1.0], (2, 1), (8, 2), None);
        assert_eq!(up.len(), 16);
        assert_eq!(up[0], 0.0); // clamped at the edge
        assert_eq!(up[7], 1.0);
        assert!((up[4] - 0.625).abs() < 1e-6, "{up:?}"); // centre of pixel 4: 4.5/4 - 0.5
        assert_eq!(&up[..8], &up[8..]);
    }

    #[test]
    fn block_means_clip_the_last_blocks() {
        // 5x3 in blocks of 2: columns {0,1},{2,3},{4}; rows {0,1},{2}
        let a: Vec<f32> = (0..15).map(|i| i as f32).collect();
        let m = block_mean(&a, 5, 3, 2);
        assert_eq!(m, vec![3.0, 5.0, 6.5, 10.5, 12.5, 14.0]);
    }

    #[test]
    fn the_fast_guided_filter_keeps_a_full_resolution_edge() {
        // 2048 px wide: coefficients on 4x4 blocks; the guide's edge at x = 1001 (inside a
        // block) still makes the mask step between pixels 1000 and 1001.
        let (w, h) = (2048, 8);
        let guide: Vec<f32> = (0..w * h)
            .map(|i| if i % w <= 1000 { 0.1 } else { 0.9 })
            .collect();
        let p: Vec<f32> = (0..w * h)
            .map(|i| (((i % w) as f32 - 995.0) / 20.0 + 0.5).clamp(0.0, 1.0))
            .collect();
        let q = fast_guided_filter(&guide, &p, w, h, 20, 1e-3);
        let row = &q[4 * w..5 * w];
        assert!(row[1001] - row[1000] > 0.3, "{:?}", &row[995..1007]);
        assert!(row[900] < 0.05 && row[1100] > 0.95);
    }

    #[test]
    fn coverage_is_the_mean_over_the_clipped_rectangle() {
        let m = PersonMask {
            width: 4,
            height: 2,
            data: vec![1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0],
        };
        assert_eq!(m.coverage_in([0.0, 0.0, 2.0, 2.0]), 1.0);
        assert_eq!(m.coverage_in([0.0, 0.0, 4.0, 2.0]), 0.5);
        assert_eq!(m.coverage_in([-5.0, -5.0, 2.0, 9.0]), 1.0);
        assert_eq!(m.coverage_in([10.0, 0.0, 12.0, 2.0]), 0.0);
        assert_eq!(m.at(1, 1), 1.0);
        assert_eq!(m.at(9, 9), 0.0);
    }
}
