//! A pack's reference run: diffusers' frames for a fixed input picture, seed and the noise the
//! pipeline drew, written by `scripts/convert-pack --tiny` into `PACK/reference/` (raw
//! little-endian float32, shapes in the manifest's `[reference]` table).
//! [`DiffusionGenerator::check_reference`] runs the Rust pipeline on the same picture and noise
//! and compares its frames with diffusers'.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use serde::{Deserialize, Serialize};

use super::generator::{DiffusionError, DiffusionGenerator, GenerationStats, Noise, Run};
use super::pack::PackError;

/// The manifest's `[reference]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reference {
    /// The seed of diffusers' generator (informative: its draws are stored).
    pub seed: u64,
    /// The largest absolute difference allowed, on frames in [0, 1].
    pub tolerance: f32,
    /// The input picture, `[1, 3, H, W]` in [-1, 1].
    pub image: RefTensor,
    /// The VAE encoder's noise input, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise_encoder: Option<RefTensor>,
    /// The initial latent noise, `[1, F, C, h, w]`.
    pub noise_latents: RefTensor,
    /// The VAE decoder's noise input, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise_decoder: Option<RefTensor>,
    /// diffusers' frames, `[1, Fv, 3, H, W]` in [0, 1].
    pub frames: RefTensor,
}

/// A raw little-endian float32 file of the pack and its shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefTensor {
    pub file: PathBuf,
    pub shape: Vec<usize>,
}

impl RefTensor {
    /// Its values, which must be as many as its shape holds.
    pub fn read(&self, dir: &Path) -> Result<Vec<f32>, PackError> {
        read_f32(&dir.join(&self.file), self.shape.iter().product())
    }
}

/// `count` little-endian float32 values from `path` (exactly that many).
pub fn read_f32(path: &Path, count: usize) -> Result<Vec<f32>, PackError> {
    let bytes = std::fs::read(path).map_err(|e| PackError::Read {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    if bytes.len() != count * 4 {
        return Err(PackError::Invalid(format!(
            "{}: {} bytes, expected {} float32 values",
            path.display(),
            bytes.len(),
            count
        )));
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

/// The runtime's frames against diffusers'.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    pub pack: String,
    pub max_abs_diff: f32,
    pub mean_abs_diff: f32,
    /// The video frame holding the largest difference.
    pub worst_frame: usize,
    pub values: usize,
    pub tolerance: f32,
    pub steps: usize,
}

impl Comparison {
    pub fn passed(&self) -> bool {
        self.max_abs_diff <= self.tolerance
    }
}

impl DiffusionGenerator {
    /// Runs the pipeline on the pack's reference picture and noise and compares the frames,
    /// mapped to [0, 1] as diffusers' `postprocess_video` does, with the stored ones.
    pub fn check_reference(&mut self) -> Result<Comparison, DiffusionError> {
        let pack = self.pack();
        let dir = pack.dir.clone();
        let m = pack.manifest.clone();
        let Some(r) = &m.reference else {
            return Err(DiffusionError::Request(format!(
                "pack {} has no [reference] (made by `convert-pack --tiny`)",
                dir.display()
            )));
        };
        let read = |t: &RefTensor| {
            t.read(&dir)
                .map_err(|e| DiffusionError::Request(e.to_string()))
        };
        let image = read(&r.image)?;
        let noise = Noise::Given {
            encoder: r.noise_encoder.as_ref().map(read).transpose()?,
            latents: read(&r.noise_latents)?,
            decoder: r.noise_decoder.as_ref().map(read).transpose()?,
            steps: super::scheduler::NoiseRng::new(r.seed),
        };
        let want = read(&r.frames)?;
        let mut stats = GenerationStats::default();
        let run = Run {
            image: &image,
            steps: m.sampling.steps,
            refine: None,
            pose: Vec::new(),
            identity: None,
        };
        let video = self.run(
            &run,
            noise,
            &mut |_| {},
            &AtomicBool::new(false),
            &mut stats,
        )?;
        if video.len() != want.len() {
            return Err(DiffusionError::Request(format!(
                "the pipeline made {} values, the reference has {}",
                video.len(),
                want.len()
            )));
        }
        let frame = want.len() / r.frames.shape.get(1).copied().unwrap_or(1).max(1);
        let (mut max, mut sum, mut worst) = (0.0f32, 0.0f64, 0);
        for (i, (&v, &w)) in video.iter().zip(&want).enumerate() {
            let d = ((v / 2.0 + 0.5).clamp(0.0, 1.0) - w).abs();
            sum += d as f64;
            if d > max || d.is_nan() {
                max = if d.is_nan() { f32::INFINITY } else { d };
                worst = i / frame;
            }
        }
        Ok(Comparison {
            pack: m.pack.name.clone(),
            max_abs_diff: max,
            mean_abs_diff: (sum / want.len().max(1) as f64) as f32,
            worst_frame: worst,
            values: want.len(),
            tolerance: r.tolerance,
            steps: stats.steps.len(),
        })
    }
}
