//! Judging a rendered kiss against its capture: is each person still themself, frame by frame?
//!
//! [`ClipJudge`] holds the identity embedder. From the capture it takes each person's reference
//! (their embedding, and the detail of their face); for a rendered frame it takes each face
//! where the generator drew it (its warped landmarks), embeds it and measures its detail the
//! same way. A person is **recognised** in a frame when their face there is closer to their own
//! capture than the embedder's same-person threshold *and* closer to themself than to their
//! partner. **Detail** is the variance of the Laplacian of the face aligned to the identity
//! template (112 pixels, grey), relative to the capture's: both are measured at one scale, so
//! a face drawn smaller is not counted as blurred.
//!
//! [`ClipScore`] gathers the frames: per person the lowest similarity, the share of frames
//! recognised, whether every judged frame of the first and last half second is, and the lowest
//! detail kept. The render's self-check and `kissbooth bench quality` both use it.

use std::path::Path;

use image::RgbImage;
use serde::Serialize;

use crate::face::FaceError;
use crate::face::align::align_arcface;
use crate::face::identity::{Embedding, IdentityModel};
use crate::runtime::Runtime;
use crate::types::Landmarks;

/// Side of the aligned face the detail is measured on, pixels.
const DETAIL_SIZE: usize = 112;

/// One person's reference from the capture.
#[derive(Debug, Clone)]
pub struct Reference {
    pub embedding: Embedding,
    pub detail: f32,
}

/// One person in one judged frame.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct PersonFrame {
    /// Cosine similarity to their own capture.
    pub own: f32,
    /// Cosine similarity to their partner's capture.
    pub partner: f32,
    pub recognised: bool,
    /// Detail of the face relative to the capture's (1: as sharp).
    pub detail: f32,
}

/// One judged frame.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct FrameScore {
    pub index: usize,
    /// Seconds from the start.
    pub t: f32,
    pub people: [PersonFrame; 2],
}

/// One person over the judged frames.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct PersonScore {
    pub min_similarity: f32,
    /// Share of judged frames in which they are recognised, 0..=1.
    pub recognised_share: f32,
    /// Whether they are recognised in every judged frame of the first and last half second.
    pub recognised_at_ends: bool,
    /// Lowest detail kept, relative to the capture.
    pub min_detail: f32,
}

/// A clip's judgement.
#[derive(Debug, Clone, Serialize)]
pub struct ClipScore {
    pub embedder: &'static str,
    pub threshold: f32,
    pub people: [PersonScore; 2],
    pub frames: Vec<FrameScore>,
}

impl ClipScore {
    /// Gathers judged frames of a clip `seconds` long.
    pub fn of(
        embedder: &'static str,
        threshold: f32,
        frames: Vec<FrameScore>,
        seconds: f32,
    ) -> Self {
        let people = std::array::from_fn(|k| {
            let n = frames.len().max(1) as f32;
            let ends = frames
                .iter()
                .filter(|f| f.t <= 0.5 || f.t >= seconds - 0.5)
                .all(|f| f.people[k].recognised);
            PersonScore {
                min_similarity: frames
                    .iter()
                    .map(|f| f.people[k].own)
                    .fold(f32::INFINITY, f32::min),
                recognised_share: frames.iter().filter(|f| f.people[k].recognised).count() as f32
                    / n,
                recognised_at_ends: ends,
                min_detail: frames
                    .iter()
                    .map(|f| f.people[k].detail)
                    .fold(f32::INFINITY, f32::min),
            }
        });
        Self {
            embedder,
            threshold,
            people,
            frames,
        }
    }

    /// Whether both people are recognised in at least `share` of the frames and in every frame
    /// of the first and last half second.
    pub fn both_kept(&self, share: f32) -> bool {
        self.people
            .iter()
            .all(|p| p.recognised_at_ends && p.recognised_share >= share)
    }
}

/// The identity embedder, ready to judge frames.
pub struct ClipJudge {
    identity: IdentityModel,
}

impl ClipJudge {
    /// `None` when no identity embedder is installed (the caller says so once).
    pub fn open(runtime: &Runtime, models_dir: &Path) -> Result<Option<Self>, FaceError> {
        Ok(IdentityModel::open(runtime, models_dir)?.map(|identity| Self { identity }))
    }

    /// The embedder's name.
    pub fn name(&self) -> &'static str {
        self.identity.name()
    }

    /// Its same-person threshold.
    pub fn threshold(&self) -> f32 {
        self.identity.same_person_threshold()
    }

    /// Each person's reference: face `k` of `faces` in `frames[k]`.
    pub fn references(
        &mut self,
        frames: [&RgbImage; 2],
        faces: [&Landmarks; 2],
    ) -> Result<[Reference; 2], FaceError> {
        let e = self
            .identity
            .embed_batch(&[(frames[0], faces[0]), (frames[1], faces[1])])?;
        let [a, b]: [Embedding; 2] = e
            .try_into()
            .map_err(|_| FaceError::Inference("identity: two faces in, not two out".into()))?;
        Ok([
            Reference {
                embedding: a,
                detail: detail(frames[0], faces[0]),
            },
            Reference {
                embedding: b,
                detail: detail(frames[1], faces[1]),
            },
        ])
    }

    /// Judges one rendered frame: the faces where the generator drew them.
    pub fn judge(
        &mut self,
        refs: &[Reference; 2],
        frame: &RgbImage,
        faces: &[Landmarks; 2],
        index: usize,
        t: f32,
    ) -> Result<FrameScore, FaceError> {
        let e = self
            .identity
            .embed_batch(&[(frame, &faces[0]), (frame, &faces[1])])?;
        let threshold = self.threshold();
        let people = std::array::from_fn(|k| {
            let own = e[k].cosine(&refs[k].embedding);
            let partner = e[k].cosine(&refs[1 - k].embedding);
            PersonFrame {
                own,
                partner,
                recognised: own >= threshold && own > partner,
                detail: detail(frame, &faces[k]) / refs[k].detail.max(1e-6),
            }
        });
        Ok(FrameScore { index, t, people })
    }
}

/// Variance of the Laplacian of the face aligned to the identity template, grey.
pub fn detail(image: &RgbImage, face: &Landmarks) -> f32 {
    let s = DETAIL_SIZE;
    let mut grey = vec![0.0f32; s * s];
    if !align_arcface(image, face, s, |x, y, rgb| {
        grey[y * s + x] = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2];
    }) {
        return 0.0;
    }
    // The central part of the template: the face, not the black beyond the picture.
    let (lo, hi) = (s / 8, s - s / 8);
    crate::face::quality::laplacian_variance(&grey, s, lo..hi, lo..hi)
}

/// Background flicker of a clip: the mean absolute second difference in time,
/// `|f(t+1) - (f(t) + f(t+2)) / 2|`, over pixels outside both faces of the middle frame, in
/// grey levels. Smooth motion (a camera push, a lean) gives little; flicker gives much.
pub fn flicker(prev: &RgbImage, cur: &RgbImage, next: &RgbImage, faces: &[Landmarks; 2]) -> f32 {
    let boxes: Vec<[f32; 4]> = faces
        .iter()
        .map(|lm| {
            let iod = lm.inter_ocular();
            let (mut x0, mut y0, mut x1, mut y1) = (f32::MAX, f32::MAX, f32::MIN, f32::MIN);
            for p in &lm.0 {
                (x0, y0, x1, y1) = (x0.min(p[0]), y0.min(p[1]), x1.max(p[0]), y1.max(p[1]));
            }
            [x0 - iod, y0 - 1.5 * iod, x1 + iod, y1 + iod]
        })
        .collect();
    let w = cur.width() as usize;
    let (mut sum, mut n) = (0.0f64, 0.0f64);
    for (i, ((a, b), c)) in prev
        .as_raw()
        .chunks_exact(3)
        .zip(cur.as_raw().chunks_exact(3))
        .zip(next.as_raw().chunks_exact(3))
        .enumerate()
    {
        let (x, y) = ((i % w) as f32, (i / w) as f32);
        if boxes
            .iter()
            .any(|r| x >= r[0] && x <= r[2] && y >= r[1] && y <= r[3])
        {
            continue;
        }
        for ch in 0..3 {
            let d = b[ch] as f32 - 0.5 * (a[ch] as f32 + c[ch] as f32);
            sum += d.abs() as f64;
        }
        n += 3.0;
    }
    if n > 0.0 { (sum / n) as f32 } else { 0.0 }
}
