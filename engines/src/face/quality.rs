//! The quality gate: per face, its size in the frame, head pose estimated from the landmarks,
//! sharpness and exposure; for the frame, a verdict a kiosk can show as it is.

use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::types::Face;

/// Thresholds of the gate (the `[faces.gate]` table).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GateConfig {
    /// How many faces a usable frame holds (2 for a couple frame, 1 for a single capture).
    pub expected_faces: usize,
    /// Smallest face height as a fraction of the frame height ("move closer" below it).
    pub min_face_height: f32,
    /// Largest face height as a fraction of the frame height ("step back" above it).
    pub max_face_height: f32,
    /// Largest head turn in degrees.
    pub max_yaw: f32,
    pub max_pitch: f32,
    pub max_roll: f32,
    /// Smallest variance of the Laplacian of the 112x112 face crop ("hold still" below it).
    pub min_sharpness: f32,
    /// Mean face luminance range (0-255).
    pub min_brightness: f32,
    pub max_brightness: f32,
    /// Largest ratio between the two face heights ("stand side by side").
    pub max_size_ratio: f32,
}

impl Default for GateConfig {
    fn default() -> Self {
        GateConfig {
            expected_faces: 2,
            min_face_height: 0.12,
            max_face_height: 0.8,
            max_yaw: 45.0,
            max_pitch: 35.0,
            max_roll: 30.0,
            min_sharpness: 15.0,
            min_brightness: 45.0,
            max_brightness: 220.0,
            max_size_ratio: 1.8,
        }
    }
}

impl GateConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=2).contains(&self.expected_faces) {
            return Err(format!(
                "gate.expected_faces must be 1 or 2, not {}",
                self.expected_faces
            ));
        }
        if !(0.0..1.0).contains(&self.min_face_height)
            || self.max_face_height <= self.min_face_height
        {
            return Err("gate face heights must satisfy 0 <= min < max".into());
        }
        if self.min_brightness >= self.max_brightness {
            return Err("gate.min_brightness must be below gate.max_brightness".into());
        }
        if self.max_size_ratio < 1.0 {
            return Err("gate.max_size_ratio must be at least 1".into());
        }
        Ok(())
    }
}

/// Per-face measurements.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FaceQuality {
    /// Face box height over frame height.
    pub size: f32,
    /// Degrees; positive yaw turns toward the image's right, positive pitch looks down,
    /// positive roll tilts clockwise. Estimated from landmark geometry (about ±5°).
    pub yaw: f32,
    pub pitch: f32,
    pub roll: f32,
    /// Variance of the Laplacian of the 112x112 face crop's luminance.
    pub sharpness: f32,
    /// Mean luminance (0-255) of the central face region.
    pub brightness: f32,
    /// Fraction of central face pixels that are nearly black or nearly white.
    pub clipped: f32,
    /// The box reaches past the frame's edge.
    pub cut_by_border: bool,
}

/// Why a frame can or cannot be used, with the words a kiosk shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    Ok,
    NoFace,
    OnlyOneFace,
    TooManyFaces,
    MoveCloser,
    StepBack,
    FaceCutOff,
    LookAtCamera,
    HoldStill,
    TooDark,
    TooBright,
    StandSideBySide,
}

impl Reason {
    /// A short sentence for the kiosk screen.
    pub fn message(self) -> &'static str {
        match self {
            Reason::Ok => "Looking great!",
            Reason::NoFace => "We can't see your faces. Step into the frame and face the camera.",
            Reason::OnlyOneFace => "We need both of you in the picture.",
            Reason::TooManyFaces => "Only two people please.",
            Reason::MoveCloser => "Move closer.",
            Reason::StepBack => "Step back a little.",
            Reason::FaceCutOff => "Move toward the middle: a face is cut off.",
            Reason::LookAtCamera => "Look at the camera.",
            Reason::HoldStill => "Hold still.",
            Reason::TooDark => "We need more light on your faces.",
            Reason::TooBright => "Too bright: step out of the direct light.",
            Reason::StandSideBySide => "Stand side by side, at the same distance.",
        }
    }
}

/// The gate's verdict for a frame.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    pub ok: bool,
    pub code: Reason,
    pub message: &'static str,
    /// Faces found (before `max_faces` is applied).
    pub face_count: usize,
    /// Indices (left to right) of the faces the reason is about.
    pub faces: Vec<usize>,
}

impl Verdict {
    fn new(code: Reason, face_count: usize, faces: Vec<usize>) -> Self {
        Verdict {
            ok: code == Reason::Ok,
            code,
            message: code.message(),
            face_count,
            faces,
        }
    }
}

/// Measures one face. `crop` is the 112x112 window the landmark model saw.
pub fn assess(face: &Face, crop: &RgbImage, frame_w: u32, frame_h: u32) -> FaceQuality {
    let (yaw, pitch, roll) = head_pose(face);
    let (sharpness, brightness, clipped) = crop_stats(crop);
    let b = face.bbox;
    let cut_by_border = b[0] < 0.0 || b[1] < 0.0 || b[2] > frame_w as f32 || b[3] > frame_h as f32;
    FaceQuality {
        size: face.height() / frame_h.max(1) as f32,
        yaw,
        pitch,
        roll,
        sharpness,
        brightness,
        clipped,
        cut_by_border,
    }
}

/// Head pose from landmark geometry: roll from the eye line; yaw from where the nose tip sits
/// between the jaw's ends; pitch from where it sits between the eye line and the chin. The
/// slopes come from the mean 3D face shape turned by known angles.
pub fn head_pose(face: &Face) -> (f32, f32, f32) {
    let l = &face.landmarks;
    let (el, er) = (l.eye_left(), l.eye_right());
    let roll = (er[1] - el[1]).atan2(er[0] - el[0]);
    let (s, c) = (-roll).sin_cos();
    let mid = [(el[0] + er[0]) / 2.0, (el[1] + er[1]) / 2.0];
    let rot = |p: [f32; 2]| {
        let (x, y) = (p[0] - mid[0], p[1] - mid[1]);
        [x * c - y * s, x * s + y * c]
    };
    let nose = rot(l.0[30]);
    let (j0, j16, chin) = (rot(l.0[0]), rot(l.0[16]), rot(l.0[8]));
    let (left, right) = (nose[0] - j0[0], j16[0] - nose[0]);
    let ratio = if left + right > 1e-3 {
        ((left - right) / (left + right)).clamp(-1.0, 1.0)
    } else {
        0.0
    };
    let yaw = ratio.asin().to_degrees() * 0.8;
    let t = if chin[1] > 1e-3 {
        nose[1] / chin[1]
    } else {
        0.26
    };
    // 0.26 for the mean 3D shape; the landmark model places the chin point higher than that
    // shape does, and upright painted portraits read 0.33 on average, so that is level.
    let pitch = ((t - 0.33) / 0.00595).clamp(-90.0, 90.0);
    (yaw, pitch, roll.to_degrees())
}

/// Sharpness (variance of the 4-neighbour Laplacian), mean luminance and clipped fraction over
/// the central part of the crop (the face without hair and background).
fn crop_stats(crop: &RgbImage) -> (f32, f32, f32) {
    let (w, h) = (crop.width() as usize, crop.height() as usize);
    if w < 8 || h < 8 {
        return (0.0, 0.0, 1.0);
    }
    let luma: Vec<f32> = crop
        .pixels()
        .map(|p| 0.299 * f32::from(p[0]) + 0.587 * f32::from(p[1]) + 0.114 * f32::from(p[2]))
        .collect();
    let (x0, x1, y0, y1) = (w / 5, w - w / 5, h / 5, h - h / 5);
    let (mut n, mut lsum, mut clipped) = (0f32, 0f32, 0f32);
    for y in y0..y1 {
        for &v in &luma[y * w + x0..y * w + x1] {
            n += 1.0;
            lsum += v;
            if !(8.0..=247.0).contains(&v) {
                clipped += 1.0;
            }
        }
    }
    let sharpness = laplacian_variance(&luma, w, x0..x1, y0..y1);
    (sharpness, lsum / n, clipped / n)
}

/// Variance of the 4-neighbour Laplacian of a grey image `w` pixels wide over columns `xs` and
/// rows `ys` (which must keep a pixel clear of every edge): how much fine detail it holds.
pub fn laplacian_variance(
    luma: &[f32],
    w: usize,
    xs: std::ops::Range<usize>,
    ys: std::ops::Range<usize>,
) -> f32 {
    let (mut n, mut sum, mut sum2) = (0f64, 0f64, 0f64);
    for y in ys {
        for x in xs.clone() {
            let lap = luma[(y - 1) * w + x]
                + luma[(y + 1) * w + x]
                + luma[y * w + x - 1]
                + luma[y * w + x + 1]
                - 4.0 * luma[y * w + x];
            n += 1.0;
            sum += f64::from(lap);
            sum2 += f64::from(lap * lap);
        }
    }
    if n == 0.0 {
        return 0.0;
    }
    let mean = sum / n;
    (sum2 / n - mean * mean).max(0.0) as f32
}

/// The frame's verdict. `total` counts every face found; `faces`/`quality` may be capped.
pub fn verdict(
    cfg: &GateConfig,
    total: usize,
    faces: &[Face],
    quality: &[FaceQuality],
    _w: u32,
    _h: u32,
) -> Verdict {
    let want = cfg.expected_faces;
    if total == 0 {
        return Verdict::new(Reason::NoFace, 0, vec![]);
    }
    if total > want {
        return Verdict::new(Reason::TooManyFaces, total, (0..faces.len()).collect());
    }
    if total < want {
        return Verdict::new(Reason::OnlyOneFace, total, vec![]);
    }
    let which = |pred: &dyn Fn(&FaceQuality) -> bool| -> Vec<usize> {
        quality
            .iter()
            .enumerate()
            .filter(|(_, q)| pred(q))
            .map(|(i, _)| i)
            .collect()
    };
    type Check<'a> = (Reason, &'a dyn Fn(&FaceQuality) -> bool);
    let checks: [Check; 7] = [
        (Reason::FaceCutOff, &|q| q.cut_by_border),
        (Reason::MoveCloser, &|q| q.size < cfg.min_face_height),
        (Reason::StepBack, &|q| q.size > cfg.max_face_height),
        // Blur and poor light come before pose: landmarks (and so the pose) are unreliable then.
        (Reason::HoldStill, &|q| q.sharpness < cfg.min_sharpness),
        (Reason::TooDark, &|q| q.brightness < cfg.min_brightness),
        (Reason::TooBright, &|q| q.brightness > cfg.max_brightness),
        (Reason::LookAtCamera, &|q| {
            q.yaw.abs() > cfg.max_yaw
                || q.pitch.abs() > cfg.max_pitch
                || q.roll.abs() > cfg.max_roll
        }),
    ];
    for (reason, pred) in checks {
        let hit = which(pred);
        if !hit.is_empty() {
            return Verdict::new(reason, total, hit);
        }
    }
    if want == 2 && faces.len() == 2 {
        let (a, b) = (faces[0].height(), faces[1].height());
        if a.max(b) / a.min(b).max(1.0) > cfg.max_size_ratio {
            let smaller = if a < b { 0 } else { 1 };
            return Verdict::new(Reason::StandSideBySide, total, vec![smaller]);
        }
    }
    Verdict::new(Reason::Ok, total, vec![])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_has_kiosk_words() {
        for r in [
            Reason::NoFace,
            Reason::TooManyFaces,
            Reason::MoveCloser,
            Reason::LookAtCamera,
            Reason::HoldStill,
        ] {
            assert!(r.message().len() > 5);
            assert!(r.message().ends_with('.'));
        }
        let j = serde_json::to_string(&Reason::TooManyFaces).unwrap();
        assert_eq!(j, "\"too_many_faces\"");
    }

    #[test]
    fn flat_crop_has_no_sharpness_and_a_sharp_one_has_some() {
        let flat = RgbImage::from_pixel(112, 112, image::Rgb([120, 120, 120]));
        let (s, b, c) = crop_stats(&flat);
        assert_eq!(s, 0.0);
        assert!((b - 120.0).abs() < 0.5);
        assert_eq!(c, 0.0);
        let checker = RgbImage::from_fn(112, 112, |x, y| {
            if (x / 2 + y / 2) % 2 == 0 {
                image::Rgb([30; 3])
            } else {
                image::Rgb([220; 3])
            }
        });
        assert!(crop_stats(&checker).0 > 1000.0);
    }
}
