//! Face analysis: the UltraFace detector (score threshold, NMS), PFLD 68-point landmarks for all
//! faces of a frame in one batched call, and the quality gate ([`quality`]). Face pack v2 adds
//! the dense 468-point mesh with depth ([`mesh`]), the person mask ([`segment`]) and identity
//! embeddings ([`identity`]); [`align`] holds the crop sampler and the ArcFace alignment.
//!
//! Pre-processing follows the models' published recipes (see `models/face-pack.toml`): the
//! detector sees the whole frame resized to its input with a bilinear (area-aware) filter; the
//! landmark model sees a square crop 1.1 times the box's longer side, zero-padded outside the
//! frame, resized to 112x112.

pub mod align;
pub mod identity;
pub mod image_io;
pub mod mesh;
pub mod quality;
pub mod segment;

use std::path::{Path, PathBuf};
use std::time::Instant;

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::RgbImage;
use ndarray::Array4;
use ort::session::Session;
use ort::value::TensorRef;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::manifest::{Manifest, ManifestError, PackFile, check_session};
use crate::runtime::{Runtime, RuntimeError, SessionInfo};
use crate::types::{Face, Landmarks, N_LANDMARKS};
pub use quality::{FaceQuality, GateConfig, Verdict};

/// Which UltraFace variant to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DetectorSize {
    /// 320x240 input: fastest, finds faces down to about 5% of the frame height.
    #[serde(rename = "320")]
    R320,
    /// 640x480 input: finds smaller faces, about 3.5 times slower.
    #[serde(rename = "640")]
    R640,
}

/// Face-analysis configuration (the `[faces]` table).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaceConfig {
    pub detector: DetectorSize,
    /// Detector score above which a box is a face.
    pub score_threshold: f32,
    /// Boxes overlapping a better one by more than this IoU are dropped.
    pub nms_iou: f32,
    /// At most this many faces are analysed (the gate still counts them all).
    pub max_faces: usize,
    pub gate: GateConfig,
}

impl Default for FaceConfig {
    fn default() -> Self {
        FaceConfig {
            detector: DetectorSize::R320,
            score_threshold: 0.7,
            nms_iou: 0.3,
            max_faces: 8,
            gate: GateConfig::default(),
        }
    }
}

impl FaceConfig {
    pub fn validate(&self) -> Result<(), FaceError> {
        if !(0.05..=0.999).contains(&self.score_threshold) {
            return Err(FaceError::Config(format!(
                "score_threshold {} is outside 0.05..0.999",
                self.score_threshold
            )));
        }
        if !(0.05..=0.95).contains(&self.nms_iou) {
            return Err(FaceError::Config(format!(
                "nms_iou {} is outside 0.05..0.95",
                self.nms_iou
            )));
        }
        if self.max_faces == 0 || self.max_faces > 64 {
            return Err(FaceError::Config(format!(
                "max_faces {} is outside 1..64",
                self.max_faces
            )));
        }
        self.gate.validate().map_err(FaceError::Config)
    }
}

#[derive(Debug, Error)]
pub enum FaceError {
    #[error("face analysis configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error(transparent)]
    Image(#[from] image_io::ImageError),
    #[error(
        "models folder {dir}: {file} is missing (install the pack with `kissbooth models install`)"
    )]
    MissingModel { dir: PathBuf, file: String },
    #[error("inference failed: {0}")]
    Inference(String),
}

impl From<ort::Error> for FaceError {
    fn from(e: ort::Error) -> Self {
        FaceError::Inference(e.to_string())
    }
}

/// Milliseconds spent in each stage of one analysis.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Timings {
    pub decode: f64,
    pub detect: f64,
    pub landmarks: f64,
    pub quality: f64,
    pub total: f64,
}

/// The analysis of one frame.
#[derive(Debug, Clone, Serialize)]
pub struct Analysis {
    pub width: u32,
    pub height: u32,
    /// Faces left to right.
    pub faces: Vec<Face>,
    /// Per face, in the same order.
    pub quality: Vec<FaceQuality>,
    pub verdict: Verdict,
    pub ms: Timings,
}

/// The loaded detector and landmark models.
pub struct FaceAnalyzer {
    config: FaceConfig,
    detector: Session,
    landmarker: Session,
    det_w: u32,
    det_h: u32,
    resizer: Resizer,
    pub detector_info: SessionInfo,
    pub landmarks_info: SessionInfo,
}

const LMK_SIZE: u32 = 112;

impl FaceAnalyzer {
    /// Opens the models in `models_dir` (file names from the face-pack manifest) and checks
    /// their tensors against the manifest.
    pub fn open(
        runtime: &Runtime,
        models_dir: &Path,
        config: FaceConfig,
    ) -> Result<Self, FaceError> {
        config.validate()?;
        let manifest = Manifest::face_pack();
        let det_role = match config.detector {
            DetectorSize::R320 => "detector",
            DetectorSize::R640 => "detector-640",
        };
        let open = |role: &str| -> Result<(Session, SessionInfo, Vec<i64>), FaceError> {
            let (session, info, spec) = open_model(runtime, models_dir, &manifest, role)?;
            let shape = spec
                .inputs
                .first()
                .map(|t| t.shape.clone())
                .unwrap_or_default();
            Ok((session, info, shape))
        };
        let (detector, detector_info, det_shape) = open(det_role)?;
        let (landmarker, landmarks_info, _) = open("landmarks")?;
        let (det_h, det_w) = match det_shape.as_slice() {
            [_, 3, h, w] if *h > 0 && *w > 0 => (*h as u32, *w as u32),
            other => {
                return Err(FaceError::Config(format!(
                    "detector input shape {other:?} is not [1,3,H,W]"
                )));
            }
        };
        Ok(FaceAnalyzer {
            config,
            detector,
            landmarker,
            det_w,
            det_h,
            resizer: Resizer::new(),
            detector_info,
            landmarks_info,
        })
    }

    pub fn config(&self) -> &FaceConfig {
        &self.config
    }

    /// Reads, decodes and analyses an image file.
    pub fn analyze_file(&mut self, path: &Path) -> Result<Analysis, FaceError> {
        self.load_and_analyze(path).map(|(_, a)| a)
    }

    /// As [`FaceAnalyzer::analyze_file`], also returning the decoded image (for drawing on it
    /// without decoding it again).
    pub fn load_and_analyze(&mut self, path: &Path) -> Result<(RgbImage, Analysis), FaceError> {
        let t0 = Instant::now();
        let img = image_io::load_rgb(path)?;
        let decode = ms(t0);
        let mut a = self.analyze(&img)?;
        a.ms.decode = decode;
        a.ms.total += decode;
        Ok((img, a))
    }

    /// Analyses a decoded frame.
    pub fn analyze(&mut self, img: &RgbImage) -> Result<Analysis, FaceError> {
        let t0 = Instant::now();
        let (boxes, scores) = self.detect(img)?;
        let detect = ms(t0);

        let t1 = Instant::now();
        let keep = boxes.len().min(self.config.max_faces);
        let (landmarks, crops) = self.landmarks(img, &boxes[..keep])?;
        let lmk = ms(t1);

        let t2 = Instant::now();
        let mut faces: Vec<(Face, FaceQuality)> = boxes[..keep]
            .iter()
            .zip(&scores)
            .zip(landmarks)
            .zip(&crops)
            .map(|(((b, &score), landmarks), crop)| {
                let face = Face {
                    bbox: *b,
                    score,
                    landmarks,
                };
                let q = quality::assess(&face, crop, img.width(), img.height());
                (face, q)
            })
            .collect();
        faces.sort_by(|a, b| a.0.centre()[0].total_cmp(&b.0.centre()[0]));
        let (faces, quality): (Vec<Face>, Vec<FaceQuality>) = faces.into_iter().unzip();
        let verdict = quality::verdict(
            &self.config.gate,
            boxes.len(),
            &faces,
            &quality,
            img.width(),
            img.height(),
        );
        let q = ms(t2);
        Ok(Analysis {
            width: img.width(),
            height: img.height(),
            faces,
            quality,
            verdict,
            ms: Timings {
                decode: 0.0,
                detect,
                landmarks: lmk,
                quality: q,
                total: detect + lmk + q,
            },
        })
    }

    /// Runs the detector; returns boxes in image pixels and their scores, best first.
    pub fn detect(&mut self, img: &RgbImage) -> Result<(Vec<[f32; 4]>, Vec<f32>), FaceError> {
        let (w, h) = (self.det_w, self.det_h);
        let small = self.resize(img, None, w, h)?;
        let mut input = Array4::<f32>::zeros((1, 3, h as usize, w as usize));
        fill_nchw(&mut input, 0, small.buffer(), w, h, |p| (p - 127.0) / 128.0);
        let outputs = self
            .detector
            .run(ort::inputs!["input" => TensorRef::from_array_view(&input)?])?;
        let (_, scores) = outputs["scores"].try_extract_tensor::<f32>()?;
        let (_, boxes) = outputs["boxes"].try_extract_tensor::<f32>()?;
        let (iw, ih) = (img.width() as f32, img.height() as f32);
        let mut cand: Vec<([f32; 4], f32)> = scores
            .chunks_exact(2)
            .zip(boxes.chunks_exact(4))
            .filter(|(s, _)| s[1] > self.config.score_threshold)
            .map(|(s, b)| ([b[0] * iw, b[1] * ih, b[2] * iw, b[3] * ih], s[1]))
            .collect();
        cand.sort_by(|a, b| b.1.total_cmp(&a.1));
        let kept = nms(&cand, self.config.nms_iou);
        Ok(kept.into_iter().unzip())
    }

    /// Landmarks for every box in one batched call; also returns each face's 112x112 crop.
    pub fn landmarks(
        &mut self,
        img: &RgbImage,
        boxes: &[[f32; 4]],
    ) -> Result<(Vec<Landmarks>, Vec<RgbImage>), FaceError> {
        if boxes.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        let n = boxes.len();
        let mut input = Array4::<f32>::zeros((n, 3, LMK_SIZE as usize, LMK_SIZE as usize));
        let mut crops = Vec::with_capacity(n);
        let mut frames = Vec::with_capacity(n);
        for (i, b) in boxes.iter().enumerate() {
            let cw = crop_window(b);
            let crop = self.resize(img, Some(&cw), LMK_SIZE, LMK_SIZE)?;
            fill_nchw(&mut input, i, crop.buffer(), LMK_SIZE, LMK_SIZE, |p| {
                p / 255.0
            });
            let rgb = RgbImage::from_raw(LMK_SIZE, LMK_SIZE, crop.into_vec())
                .ok_or_else(|| FaceError::Inference("crop buffer size".into()))?;
            crops.push(rgb);
            frames.push(cw);
        }
        let outputs = self
            .landmarker
            .run(ort::inputs![TensorRef::from_array_view(&input)?])?;
        let (shape, out) = outputs[0].try_extract_tensor::<f32>()?;
        if shape.len() != 2 || shape[0] as usize != n || shape[1] as usize != 2 * N_LANDMARKS {
            return Err(FaceError::Inference(format!(
                "landmark output shape {:?}",
                &shape[..]
            )));
        }
        let lmks = out
            .chunks_exact(2 * N_LANDMARKS)
            .zip(&frames)
            .map(|(row, cw)| {
                let mut pts = [[0f32; 2]; N_LANDMARKS];
                for (k, p) in pts.iter_mut().enumerate() {
                    *p = [
                        row[2 * k] * cw.size + cw.left as f32,
                        row[2 * k + 1] * cw.size + cw.top as f32,
                    ];
                }
                Landmarks(pts)
            })
            .collect();
        Ok((lmks, crops))
    }

    /// Resizes the whole image, or a window of it (zero outside the image), to `w`x`h`.
    fn resize(
        &mut self,
        img: &RgbImage,
        window: Option<&CropWindow>,
        w: u32,
        h: u32,
    ) -> Result<Image<'static>, FaceError> {
        let Some(cw) = window else {
            return resize_whole(&mut self.resizer, img, w, h);
        };
        let opts = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear));
        let err = |e: &dyn std::fmt::Display| FaceError::Inference(format!("resize: {e}"));
        let mut dst = Image::new(w, h, PixelType::U8x3);
        let padded = cw.extract(img);
        let src =
            ImageRef::new(cw.width, cw.height, &padded, PixelType::U8x3).map_err(|e| err(&e))?;
        self.resizer
            .resize(&src, &mut dst, &opts)
            .map_err(|e| err(&e))?;
        Ok(dst)
    }
}

/// Opens the model of a face-pack role in `models_dir` and checks its tensors against the
/// manifest; a file that is not there is [`FaceError::MissingModel`].
pub(crate) fn open_model<'m>(
    runtime: &Runtime,
    models_dir: &Path,
    manifest: &'m Manifest,
    role: &str,
) -> Result<(Session, SessionInfo, &'m PackFile), FaceError> {
    let spec = manifest
        .get(role)
        .ok_or_else(|| FaceError::Config(format!("manifest has no {role}")))?;
    let path = models_dir.join(&spec.file);
    if !path.is_file() {
        return Err(FaceError::MissingModel {
            dir: models_dir.to_path_buf(),
            file: spec.file.clone(),
        });
    }
    let (session, info) = runtime.session(&path)?;
    check_session(spec, &session)?;
    Ok((session, info, spec))
}

/// Resizes the whole image to `w`x`h` with a bilinear (area-aware when shrinking) filter, as
/// PIL's `Image.resize(..., BILINEAR)` does.
pub(crate) fn resize_whole(
    resizer: &mut Resizer,
    img: &RgbImage,
    w: u32,
    h: u32,
) -> Result<Image<'static>, FaceError> {
    let opts = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear));
    let err = |e: &dyn std::fmt::Display| FaceError::Inference(format!("resize: {e}"));
    let mut dst = Image::new(w, h, PixelType::U8x3);
    let src = ImageRef::new(img.width(), img.height(), img.as_raw(), PixelType::U8x3)
        .map_err(|e| err(&e))?;
    resizer.resize(&src, &mut dst, &opts).map_err(|e| err(&e))?;
    Ok(dst)
}

pub(crate) fn ms(t: Instant) -> f64 {
    (t.elapsed().as_secs_f64() * 1e5).round() / 100.0
}

fn fill_nchw(t: &mut Array4<f32>, n: usize, rgb: &[u8], w: u32, h: u32, f: impl Fn(f32) -> f32) {
    let plane = (w * h) as usize;
    let Some(slice) = t.as_slice_mut() else {
        return;
    };
    let base = n * 3 * plane;
    let (r, rest) = slice[base..base + 3 * plane].split_at_mut(plane);
    let (g, b) = rest.split_at_mut(plane);
    for (i, px) in rgb.chunks_exact(3).enumerate() {
        r[i] = f(f32::from(px[0]));
        g[i] = f(f32::from(px[1]));
        b[i] = f(f32::from(px[2]));
    }
}

/// The landmark model's input window: a square 1.1 times the box's longer side, centred on the
/// box, with integer corners (truncated toward zero as the reference does).
#[derive(Debug, Clone, Copy)]
struct CropWindow {
    left: i64,
    top: i64,
    width: u32,
    height: u32,
    size: f32,
}

fn crop_window(b: &[f32; 4]) -> CropWindow {
    let size = f64::from((b[2] - b[0]).max(b[3] - b[1])) * 1.1;
    let cx = f64::from(b[0] + b[2]) / 2.0;
    let cy = f64::from(b[1] + b[3]) / 2.0;
    let (l, t) = (cx - size / 2.0, cy - size / 2.0);
    let left = l.trunc() as i64;
    let top = t.trunc() as i64;
    let width = ((l + size).trunc() as i64 - left).max(1) as u32;
    let height = ((t + size).trunc() as i64 - top).max(1) as u32;
    CropWindow {
        left,
        top,
        width,
        height,
        size: size as f32,
    }
}

impl CropWindow {
    /// Copies the window out of the image, zero where it leaves the image.
    fn extract(&self, img: &RgbImage) -> Vec<u8> {
        let (iw, ih) = (i64::from(img.width()), i64::from(img.height()));
        let (w, h) = (self.width as usize, self.height as usize);
        let mut out = vec![0u8; w * h * 3];
        let x0 = self.left.max(0);
        let x1 = (self.left + w as i64).min(iw);
        if x1 <= x0 {
            return out;
        }
        let src = img.as_raw();
        for y in 0..h as i64 {
            let sy = self.top + y;
            if sy < 0 || sy >= ih {
                continue;
            }
            let s = ((sy * iw + x0) * 3) as usize;
            let e = ((sy * iw + x1) * 3) as usize;
            let d = ((y * w as i64 + (x0 - self.left)) * 3) as usize;
            out[d..d + (e - s)].copy_from_slice(&src[s..e]);
        }
        out
    }
}

/// Intersection over union of two boxes.
pub fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = iw * ih;
    let area = |r: &[f32; 4]| (r[2] - r[0]) * (r[3] - r[1]);
    let union = area(a) + area(b) - inter;
    if union <= 0.0 { 0.0 } else { inter / union }
}

/// Greedy non-maximum suppression over candidates sorted best first.
fn nms(cand: &[([f32; 4], f32)], thr: f32) -> Vec<([f32; 4], f32)> {
    let mut kept: Vec<([f32; 4], f32)> = Vec::new();
    for c in cand {
        if kept.iter().all(|k| iou(&k.0, &c.0) < thr) {
            kept.push(*c);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nms_keeps_the_best_of_overlapping_boxes() {
        let c = vec![
            ([0.0, 0.0, 10.0, 10.0], 0.9),
            ([1.0, 1.0, 11.0, 11.0], 0.8),
            ([50.0, 50.0, 60.0, 60.0], 0.7),
        ];
        let k = nms(&c, 0.3);
        assert_eq!(k.len(), 2);
        assert_eq!(k[0].1, 0.9);
        assert_eq!(k[1].1, 0.7);
    }

    #[test]
    fn crop_window_pads_outside_the_image_with_zeros() {
        let img = RgbImage::from_pixel(10, 10, image::Rgb([200, 100, 50]));
        let cw = crop_window(&[-4.0, -4.0, 6.0, 6.0]);
        let out = cw.extract(&img);
        assert_eq!(out.len(), (cw.width * cw.height * 3) as usize);
        assert_eq!(
            &out[0..3],
            &[0, 0, 0],
            "top-left corner lies outside the image"
        );
        let last = out.len() - 3;
        assert_eq!(
            &out[last..],
            &[200, 100, 50],
            "bottom-right corner lies inside"
        );
    }

    #[test]
    fn crop_window_truncates_toward_zero_like_the_reference() {
        let cw = crop_window(&[100.4, 50.2, 200.9, 160.7]);
        // size = 110.5 * 1.1 = 121.55; centre (150.65, 105.45)
        assert_eq!(cw.left, 89);
        assert_eq!(cw.top, 44);
        assert!((cw.size - 121.55).abs() < 1e-3);
    }
}
