//! [`DiffusionGenerator`]: capture + per-frame landmark targets → RGB frames.
//!
//! 1. The capture is resized to the pack's working resolution and encoded by `vae_encoder`
//!    (the first-frame latents). When the pack conditions on identity, both faces of the
//!    capture (as detected, or the targets' first frame) are
//!    aligned to the ArcFace template by a least-squares similarity from their eye centres,
//!    nose tip and mouth corners ([`align_face`], `face::align`) and encoded once per clip by
//!    `identity_encoder`.
//! 2. Each latent frame gets a pose guidance map: Gaussian dots at the 2×68 target landmarks of
//!    the timeline frame it stands for, at latent resolution.
//! 3. Seeded noise is denoised over the scheduler's timesteps (classifier-free guidance when the
//!    pack's guidance scale is above 1, the unconditional pass with zeroed conditionings, the
//!    identity embedding included: guidance pushes away from "no particular person" toward
//!    these two); a progress callback runs before each step and a cancellation flag is checked.
//! 4. `vae_decoder` decodes; frames are resampled in time to the number of targets and resized
//!    to the requested size.
//!
//! The capture's resize and normalisation run on the GPU when one is there (`crate::gpu`); the
//! denoising loop allocates its tensors once and binds them (ort IoBinding), so a step costs
//! the denoiser runs plus in-place arithmetic. Pose maps, guidance, the scheduler and the
//! frames' post-processing are CPU code; the latents go through host memory between steps.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use image::RgbImage;
use ort::memory::Allocator;
use ort::session::{IoBinding, SessionInputValue};
use ort::value::{Tensor, TensorRef};
use thiserror::Error;

use super::pack::{IdentityWiring, Pack, Role, Wiring};
use super::scheduler::{NoiseRng, Scheduler, SchedulerError, cfg};
use super::tensorrt::concrete_shape;
use crate::face::align::align_arcface;
use crate::types::Landmarks;

#[derive(Debug, Error)]
pub enum DiffusionError {
    #[error("cancelled")]
    Cancelled,
    #[error("request: {0}")]
    Request(String),
    #[error("scheduler: {0}")]
    Scheduler(#[from] SchedulerError),
    #[error("{component}: {message}")]
    Model { component: String, message: String },
}

fn model_err(component: &str) -> impl Fn(ort::Error) -> DiffusionError + '_ {
    move |e| DiffusionError::Model {
        component: component.into(),
        message: e.to_string(),
    }
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct DiffusionRequest<'a> {
    /// The capture (the first frame).
    pub capture: &'a RgbImage,
    /// Target landmarks of both faces per output frame, in capture pixels
    /// (`Timeline::frames()[i].faces[k].landmarks`). Its length is the output frame count.
    pub targets: &'a [[Landmarks; 2]],
    /// Both faces' landmarks as detected in the capture, for the identity encoder's alignment;
    /// `None`: the targets' first frame (the timeline starts at the capture's pose).
    pub faces: Option<&'a [Landmarks; 2]>,
    /// Output frame size.
    pub width: u32,
    pub height: u32,
    pub seed: u64,
    /// Override the pack's step count.
    pub steps: Option<usize>,
    /// Refine this clip (video-to-video) instead of generating from noise; needs a pack with a
    /// `video_encoder`.
    pub refine: Option<Refine<'a>>,
}

/// Video-to-video: the clip (the morph generator's frames, which carry the motion, the
/// identities and who is where) and how much of the schedule re-draws it: 0 returns its VAE
/// round trip, 1 denoises from pure noise; in between, its latents are noised to the step
/// where the last `floor(steps x strength)` steps begin and those are run.
#[derive(Debug, Clone, Copy)]
pub struct Refine<'a> {
    pub frames: &'a [RgbImage],
    pub strength: f32,
}

/// Progress before each denoising step.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub step: usize,
    pub steps: usize,
    pub timestep: f32,
}

/// Wall time of one denoising step.
#[derive(Debug, Clone, Copy)]
pub struct StepTiming {
    pub total: Duration,
    /// Inside `Session::run` (the denoiser, once or twice with guidance).
    pub onnx: Duration,
}

impl StepTiming {
    /// Everything but the ONNX calls: tensor set-up, guidance, the scheduler, noise.
    pub fn overhead(&self) -> Duration {
        self.total.saturating_sub(self.onnx)
    }
}

/// Timings of one generation.
#[derive(Debug, Clone, Default)]
pub struct GenerationStats {
    pub encode: Duration,
    /// Face alignment and the identity encoder (zero when the pack has none).
    pub identity: Duration,
    pub pose_maps: Duration,
    pub steps: Vec<StepTiming>,
    pub decode: Duration,
    pub postprocess: Duration,
}

/// Runs a [`Pack`].
#[derive(Debug)]
pub struct DiffusionGenerator {
    pack: Pack,
    /// CUDA kernels for the capture's pre-processing, when a device is there.
    gpu: Option<crate::gpu::Gpu>,
}

impl DiffusionGenerator {
    /// The generator for a loaded pack; the capture's pre-processing runs on the GPU when
    /// [`crate::gpu::Gpu::open`] finds one (the reason is logged when it does not).
    pub fn new(pack: Pack) -> Self {
        let gpu = match crate::gpu::Gpu::open() {
            Ok(g) => Some(g),
            Err(why) => {
                tracing::info!(%why, "diffusion pre-processing on the CPU");
                None
            }
        };
        DiffusionGenerator { pack, gpu }
    }

    /// Whether the pre-processing runs on the GPU.
    pub fn uses_gpu(&self) -> bool {
        self.gpu.is_some()
    }

    pub fn pack(&self) -> &Pack {
        &self.pack
    }

    /// Generates `request.targets.len()` frames, handing each to `on_frame(index, frame)` in
    /// order. Same request and seed → identical frames.
    pub fn generate(
        &mut self,
        request: &DiffusionRequest,
        progress: &mut dyn FnMut(Progress),
        cancel: &AtomicBool,
        on_frame: &mut dyn FnMut(usize, RgbImage),
    ) -> Result<GenerationStats, DiffusionError> {
        let request = Checked::new(request)?;
        let mut stats = GenerationStats::default();
        let t0 = Instant::now();
        let pixels = self.capture_pixels(request.capture);
        let clip = match &request.refine {
            Some(_) if self.pack.wiring.video.is_none() => {
                return Err(DiffusionError::Request(
                    "the pack has no video_encoder component: it cannot refine a clip".into(),
                ));
            }
            Some(r) => Some((self.clip_pixels(r.frames)?, r.strength)),
            None => None,
        };
        let preprocess = t0.elapsed();
        let t0 = Instant::now();
        let identity = match &self.pack.wiring.identity {
            Some(id) if self.pack.manifest.conditioning.identity_embedding => {
                Some(self.identity_embedding(&id.clone(), &request)?)
            }
            _ => None,
        };
        stats.identity = t0.elapsed();
        let t0 = Instant::now();
        let pose = self.pose_maps(&request);
        stats.pose_maps = t0.elapsed();
        let run = Run {
            image: &pixels,
            steps: request.steps.unwrap_or(self.pack.manifest.sampling.steps),
            refine: clip.as_ref().map(|(video, strength)| RefineRun {
                video,
                strength: *strength,
            }),
            pose,
            identity,
        };
        let noise = Noise::Seeded(NoiseRng::new(request.seed));
        let video = self.run(&run, noise, progress, cancel, &mut stats)?;
        stats.encode += preprocess;
        let t0 = Instant::now();
        self.deliver(&request, &video, on_frame);
        stats.postprocess = t0.elapsed();
        Ok(stats)
    }

    /// The pipeline from a picture at the working size to decoded frames `[1, Fv, 3, H, W]` in
    /// [-1, 1]: the encoders, the denoising loop (from noise, or from the clip's latents noised
    /// to the refine strength), the decoder.
    pub(crate) fn run(
        &mut self,
        run: &Run,
        mut noise: Noise,
        progress: &mut dyn FnMut(Progress),
        cancel: &AtomicBool,
        stats: &mut GenerationStats,
    ) -> Result<Vec<f32>, DiffusionError> {
        let t0 = Instant::now();
        let first = self.encode_image(run.image, &mut noise)?;
        let image = self.image_embedding(run.image)?;
        let clip = match &run.refine {
            Some(r) => Some(self.encode_video(r.video)?),
            None => None,
        };
        stats.encode = t0.elapsed();
        let conditions = Conditions {
            first,
            pose: run.pose.clone(),
            identity: run.identity.clone(),
            image,
        };
        let start = Start {
            clip,
            strength: run.refine.as_ref().map_or(1.0, |r| r.strength),
        };
        let latents = self.denoise(
            run.steps,
            &conditions,
            start,
            &mut noise,
            progress,
            cancel,
            stats,
        )?;
        if cancel.load(Ordering::Relaxed) {
            return Err(DiffusionError::Cancelled);
        }
        let t0 = Instant::now();
        let video = self.decode(latents, &mut noise)?;
        stats.decode = t0.elapsed();
        Ok(video)
    }

    /// The capture at the pack's working size, [-1, 1], NCHW (on the GPU when there is one:
    /// same arithmetic).
    fn capture_pixels(&self, capture: &RgbImage) -> Vec<f32> {
        let m = &self.pack.manifest;
        let (pw, ph) = (m.latent.width as usize, m.latent.height as usize);
        let (cw, chh) = capture.dimensions();
        let (cw, chh) = (cw as usize, chh as usize);
        let raw = capture.as_raw();
        let on_gpu = self
            .gpu
            .as_ref()
            .map(|g| g.preprocess(raw, cw, chh, pw, ph));
        match on_gpu {
            Some(Ok(v)) => v,
            other => {
                if let Some(Err(why)) = other {
                    tracing::warn!(%why, "GPU pre-processing failed; using the CPU path");
                }
                let mut v = vec![0.0f32; 3 * ph * pw];
                crate::gpu::preprocess_cpu(raw, cw, chh, pw, ph, &mut v);
                v
            }
        }
    }

    /// A clip as the video encoder takes it: `[1, Fv, 3, H, W]` in [-1, 1], the clip resampled
    /// in time to the pack's video frames and each frame resized to the working size.
    fn clip_pixels(&self, frames: &[RgbImage]) -> Result<Vec<f32>, DiffusionError> {
        if frames.is_empty() || frames.iter().any(|f| f.width() == 0 || f.height() == 0) {
            return Err(DiffusionError::Request(
                "the clip to refine is empty".into(),
            ));
        }
        let l = &self.pack.manifest.latent;
        let (pw, ph) = (l.width as usize, l.height as usize);
        let vf = l.video_frames();
        let mut out = vec![0.0f32; vf * 3 * ph * pw];
        for (j, dst) in out.chunks_exact_mut(3 * ph * pw).enumerate() {
            let f = &frames[time_index(j, vf, frames.len())];
            let (w, h) = (f.width() as usize, f.height() as usize);
            crate::gpu::preprocess_cpu(f.as_raw(), w, h, pw, ph, dst);
        }
        Ok(out)
    }

    /// `vae_encoder` on the picture (with its noise input fed from `noise` when it has one),
    /// scaled: the first-frame latents `[1, C, h, w]`.
    fn encode_image(
        &mut self,
        image: &[f32],
        noise: &mut Noise,
    ) -> Result<Vec<f32>, DiffusionError> {
        let m = &self.pack.manifest;
        let (lh, lw) = m.latent.latent_size();
        let ch = m.latent.channels;
        let (pw, ph) = (m.latent.width as usize, m.latent.height as usize);
        let w = &self.pack.wiring;
        let e = model_err("vae_encoder");
        let mut inputs: Vec<(&str, Vec<usize>, Vec<f32>)> =
            vec![(&w.encoder_image, vec![1, 3, ph, pw], image.to_vec())];
        if let Some(name) = &w.encoder_noise {
            let dims = spec_dims(m, &m.components.vae_encoder, name)?;
            let z = noise.encoder(dims.iter().product())?;
            inputs.push((name, dims, z));
        }
        let session = &mut self.pack.sessions.vae_encoder.0;
        let (_, v) = run_named(session, &inputs, &w.encoder_latents, &e)?;
        if v.len() != ch * lh * lw {
            return Err(DiffusionError::Model {
                component: "vae_encoder".into(),
                message: format!("{} values out, expected {}", v.len(), ch * lh * lw),
            });
        }
        let scale = m.latent.scaling_factor;
        Ok(v.iter().map(|x| x * scale).collect())
    }

    /// `image_encoder` on the picture, when the pack conditions on its embedding.
    fn image_embedding(&mut self, image: &[f32]) -> Result<Option<Vec<f32>>, DiffusionError> {
        let (Some(wire), Some((session, _))) = (
            self.pack.wiring.image.clone(),
            self.pack.sessions.image_encoder.as_mut(),
        ) else {
            return Ok(None);
        };
        let l = &self.pack.manifest.latent;
        let dims = vec![1, 3, l.height as usize, l.width as usize];
        let e = model_err("image_encoder");
        let (_, v) = run_named(
            session,
            &[(&wire.input, dims, image.to_vec())],
            &wire.output,
            &e,
        )?;
        expect_values("image_encoder", &v, wire.values)?;
        Ok(Some(v))
    }

    /// `video_encoder` on a clip: its latents `[1, F, C, h, w]`.
    fn encode_video(&mut self, video: &[f32]) -> Result<Vec<f32>, DiffusionError> {
        let (Some(wire), Some((session, _))) = (
            self.pack.wiring.video.clone(),
            self.pack.sessions.video_encoder.as_mut(),
        ) else {
            return Err(DiffusionError::Request(
                "the pack has no video_encoder".into(),
            ));
        };
        let l = &self.pack.manifest.latent;
        let dims = vec![1, l.video_frames(), 3, l.height as usize, l.width as usize];
        let e = model_err("video_encoder");
        let (_, v) = run_named(
            session,
            &[(&wire.input, dims, video.to_vec())],
            &wire.output,
            &e,
        )?;
        expect_values("video_encoder", &v, wire.values)?;
        Ok(v)
    }

    /// 2. A pose map per latent frame: Gaussian dots at the target landmarks of the timeline
    ///    frame it stands for.
    fn pose_maps(&self, request: &Checked) -> Vec<f32> {
        let m = &self.pack.manifest;
        let (lh, lw) = m.latent.latent_size();
        let fr = m.latent.frames;
        let sx = lw as f32 / request.capture.width() as f32;
        let sy = lh as f32 / request.capture.height() as f32;
        let mut pose = vec![0.0f32; fr * lh * lw];
        for (f, map) in pose.chunks_exact_mut(lh * lw).enumerate() {
            let target = &request.targets[time_index(f, fr, request.targets.len())];
            render_pose_map(map, lw, lh, target, sx, sy);
        }
        pose
    }

    /// The latents denoising starts from, and the first step: unit noise times the
    /// scheduler's initial sigma from the first step; or, refining, the clip's latents noised
    /// to where the strength starts. With `first_frame_in_latents` the first latent frame is
    /// the clean conditioning frame (the capture's; the clip's own when refining).
    fn initial_latents(
        &self,
        scheduler: &mut Scheduler,
        conditions: &Conditions,
        start: Start,
        noise: &mut Noise,
    ) -> Result<(Vec<f32>, usize, Vec<f32>), DiffusionError> {
        let l = &self.pack.manifest.latent;
        let z = noise.latents(l.values())?;
        let (latents, first, index) = match start.clip {
            Some(mut x) => {
                let index = scheduler.start_index(start.strength);
                let first = x[..conditions.first.len()].to_vec();
                scheduler.add_noise(&mut x, &z, index)?;
                (x, first, index)
            }
            None => {
                let sigma = scheduler.init_noise_sigma();
                let x = z.iter().map(|v| v * sigma).collect();
                (x, conditions.first.clone(), 0)
            }
        };
        let mut latents = latents;
        if self.pack.manifest.conditioning.first_frame_in_latents {
            latents[..first.len()].copy_from_slice(&first);
        }
        Ok((latents, index, first))
    }

    /// 3. Denoising over the scheduler's timesteps from `start`. Every tensor of the loop is
    ///    allocated once and bound once (ort IoBinding): a step writes the scaled latents and
    ///    the timestep in place and runs; the model output lands in a preallocated tensor,
    ///    guidance and the scheduler work in place.
    #[allow(clippy::too_many_arguments)]
    fn denoise(
        &mut self,
        steps: usize,
        conditions: &Conditions,
        start: Start,
        noise: &mut Noise,
        progress: &mut dyn FnMut(Progress),
        cancel: &AtomicBool,
        stats: &mut GenerationStats,
    ) -> Result<Vec<f32>, DiffusionError> {
        let m = &self.pack.manifest;
        let l = &m.latent;
        let (lh, lw) = l.latent_size();
        let mut scheduler = m.scheduler.build()?;
        scheduler.set_image_seq_len(l.frames * lh * lw);
        scheduler.set_timesteps(steps)?;
        let (mut latents, begin, first) =
            self.initial_latents(&mut scheduler, conditions, start, noise)?;
        let timesteps = scheduler.timesteps()[begin..].to_vec();
        let guidance = m.sampling.frame_guidance(l.frames);
        let keep_first = m.conditioning.first_frame_in_latents;
        let mut io = StepIo::new(&mut self.pack, conditions, guidance.is_some())?;
        let n = latents.len();
        let mut step_noise = vec![0.0f32; if scheduler.needs_noise() { n } else { 0 }];
        for (i, &t) in timesteps.iter().enumerate() {
            if cancel.load(Ordering::Relaxed) {
                return Err(DiffusionError::Cancelled);
            }
            progress(Progress {
                step: i,
                steps: timesteps.len(),
                timestep: t,
            });
            let step_start = Instant::now();
            let onnx = io.predict(&mut self.pack, &scheduler, &latents, t)?;
            let model_out = io.guided(guidance.as_deref());
            let z = if scheduler.needs_noise() {
                noise.fill_step(&mut step_noise);
                Some(step_noise.as_slice())
            } else {
                None
            };
            scheduler.step_in_place(model_out, t, &mut latents, z)?;
            if keep_first {
                latents[..first.len()].copy_from_slice(&first);
            }
            stats.steps.push(StepTiming {
                total: step_start.elapsed(),
                onnx,
            });
        }
        Ok(latents)
    }

    /// 4. `vae_decoder` turns the latents into frames `[1, Fv, 3, H, W]` in [-1, 1] (its noise
    ///    input, when it has one, fed from `noise`).
    fn decode(
        &mut self,
        mut latents: Vec<f32>,
        noise: &mut Noise,
    ) -> Result<Vec<f32>, DiffusionError> {
        let m = &self.pack.manifest;
        let (lh, lw) = m.latent.latent_size();
        let (fr, ch) = (m.latent.frames, m.latent.channels);
        let inv = 1.0 / m.latent.scaling_factor;
        latents.iter_mut().for_each(|x| *x *= inv);
        let e = model_err("vae_decoder");
        let w = &self.pack.wiring;
        let mut inputs: Vec<(&str, Vec<usize>, Vec<f32>)> =
            vec![(&w.decoder_latents, vec![1, fr, ch, lh, lw], latents)];
        if let Some(name) = &w.decoder_noise {
            let dims = spec_dims(m, &m.components.vae_decoder, name)?;
            let z = noise.decoder(dims.iter().product::<usize>())?;
            inputs.push((name, dims, z));
        }
        let session = &mut self.pack.sessions.vae_decoder.0;
        let (shape, v) = run_named(session, &inputs, &w.decoder_frames, &e)?;
        let vf = m.latent.video_frames();
        let want = [
            1,
            vf as i64,
            3,
            m.latent.height as i64,
            m.latent.width as i64,
        ];
        if shape[..] != want[..] {
            return Err(DiffusionError::Model {
                component: "vae_decoder".into(),
                message: format!("frames of shape {shape:?}, expected {want:?}"),
            });
        }
        Ok(v)
    }

    /// 5. Frames to RGB, resampled in time to the targets and resized, handed out in order.
    fn deliver(&self, request: &Checked, video: &[f32], on_frame: &mut dyn FnMut(usize, RgbImage)) {
        let m = &self.pack.manifest;
        let (ph, pw) = (m.latent.height, m.latent.width);
        let vf = m.latent.video_frames();
        let plane = (ph * pw) as usize;
        let decoded: Vec<RgbImage> = video
            .chunks_exact(3 * plane)
            .take(vf)
            .map(|frame| {
                RgbImage::from_fn(pw, ph, |x, y| {
                    let i = (y * pw + x) as usize;
                    let px = |c: usize| {
                        ((frame[c * plane + i] + 1.0) * 127.5)
                            .round()
                            .clamp(0.0, 255.0) as u8
                    };
                    image::Rgb([px(0), px(1), px(2)])
                })
            })
            .collect();
        let count = request.targets.len();
        for j in 0..count {
            let frame = &decoded[time_index(j, count, decoded.len())];
            let out = if (frame.width(), frame.height()) == (request.width, request.height) {
                frame.clone()
            } else {
                image::imageops::resize(
                    frame,
                    request.width,
                    request.height,
                    image::imageops::FilterType::Triangle,
                )
            };
            on_frame(j, out);
        }
    }

    /// Aligns both faces of the capture (`request.faces`, else `request.targets[0]`) to the
    /// identity encoder's input and runs it; returns the embedding's values.
    fn identity_embedding(
        &mut self,
        id: &IdentityWiring,
        request: &Checked,
    ) -> Result<Vec<f32>, DiffusionError> {
        let e = model_err("identity_encoder");
        let Some((session, _)) = self.pack.sessions.identity_encoder.as_mut() else {
            return Err(DiffusionError::Model {
                component: "identity_encoder".into(),
                message: "not loaded".into(),
            });
        };
        let size = id.size;
        let plane = 3 * size * size;
        let mut crops = vec![0.0f32; 2 * plane];
        let faces = request.faces.unwrap_or(&request.targets[0]);
        for (k, (face, out)) in faces.iter().zip(crops.chunks_exact_mut(plane)).enumerate() {
            align_face(request.capture, face, size, out)
                .map_err(|why| DiffusionError::Request(format!("face {}: {why}", k + 1)))?;
        }
        let out_name = id.embedding.as_str();
        let input = [(id.faces.as_str(), vec![2, 3, size, size], crops)];
        let (_, v) = run_named(session, &input, out_name, &e)?;
        let want = id.values;
        if v.len() != want || v.iter().any(|x| !x.is_finite()) {
            return Err(DiffusionError::Model {
                component: "identity_encoder".into(),
                message: format!(
                    "`{out_name}`: {} values out (finite: {}), expected {want}",
                    v.len(),
                    v.iter().all(|x| x.is_finite())
                ),
            });
        }
        Ok(v)
    }
}

/// Noise for a run: drawn from a seed in a fixed order (the encoder's, the initial latents',
/// each step's, the decoder's), or given (the reference check: the noise diffusers drew).
pub(crate) enum Noise {
    Seeded(NoiseRng),
    Given {
        encoder: Option<Vec<f32>>,
        latents: Vec<f32>,
        decoder: Option<Vec<f32>>,
        /// For a scheduler that injects noise between steps (none is stored).
        steps: NoiseRng,
    },
}

impl Noise {
    fn take(got: Option<Vec<f32>>, what: &str, n: usize) -> Result<Vec<f32>, DiffusionError> {
        match got {
            Some(v) if v.len() == n => Ok(v),
            Some(v) => Err(DiffusionError::Request(format!(
                "the {what} noise has {} values, the pack needs {n}",
                v.len()
            ))),
            None => Err(DiffusionError::Request(format!("no {what} noise given"))),
        }
    }

    fn encoder(&mut self, n: usize) -> Result<Vec<f32>, DiffusionError> {
        match self {
            Noise::Seeded(rng) => Ok(rng.gaussian(n, 1.0)),
            Noise::Given { encoder, .. } => Noise::take(encoder.take(), "encoder", n),
        }
    }

    fn latents(&mut self, n: usize) -> Result<Vec<f32>, DiffusionError> {
        match self {
            Noise::Seeded(rng) => Ok(rng.gaussian(n, 1.0)),
            Noise::Given { latents, .. } => {
                Noise::take(Some(std::mem::take(latents)), "initial latent", n)
            }
        }
    }

    fn decoder(&mut self, n: usize) -> Result<Vec<f32>, DiffusionError> {
        match self {
            Noise::Seeded(rng) => Ok(rng.gaussian(n, 1.0)),
            Noise::Given { decoder, .. } => Noise::take(decoder.take(), "decoder", n),
        }
    }

    fn fill_step(&mut self, out: &mut [f32]) {
        match self {
            Noise::Seeded(rng) | Noise::Given { steps: rng, .. } => rng.fill(out, 1.0),
        }
    }
}

/// One run of the pipeline.
pub(crate) struct Run<'a> {
    /// The picture `[1, 3, H, W]` in [-1, 1] at the working size.
    pub image: &'a [f32],
    pub steps: usize,
    pub refine: Option<RefineRun<'a>>,
    /// Pose maps `[1, F, 1, h, w]` (empty: zeros).
    pub pose: Vec<f32>,
    pub identity: Option<Vec<f32>>,
}

/// Refining a clip: its frames `[1, Fv, 3, H, W]` in [-1, 1] and the strength.
pub(crate) struct RefineRun<'a> {
    pub video: &'a [f32],
    pub strength: f32,
}

/// Where denoising starts: from noise, or from a clip's latents at a strength.
struct Start {
    clip: Option<Vec<f32>>,
    strength: f32,
}

/// Runs a component with named inputs (dimensions and values) and reads one output: its
/// shape and values.
fn run_named(
    session: &mut ort::session::Session,
    inputs: &[(&str, Vec<usize>, Vec<f32>)],
    output: &str,
    e: &impl Fn(ort::Error) -> DiffusionError,
) -> Result<(Vec<i64>, Vec<f32>), DiffusionError> {
    let mut values = Vec::with_capacity(inputs.len());
    for (name, dims, v) in inputs {
        let t = TensorRef::from_array_view((dims.clone(), v.as_slice())).map_err(e)?;
        values.push((name.to_string(), SessionInputValue::from(t)));
    }
    let out = session.run(values).map_err(e)?;
    let (shape, v) = out[output].try_extract_tensor::<f32>().map_err(e)?;
    Ok((shape.to_vec(), v.to_vec()))
}

/// The manifest's dimensions of `comp`'s tensor `name`.
fn spec_dims(
    m: &super::pack::Manifest,
    comp: &super::pack::Component,
    name: &str,
) -> Result<Vec<usize>, DiffusionError> {
    let spec = comp.inputs.iter().find(|s| s.name == name);
    let dims = spec.map(|s| concrete_shape(m, s));
    match dims {
        Some(Ok(d)) => Ok(d.iter().map(|&x| x.max(0) as usize).collect()),
        Some(Err(why)) => Err(DiffusionError::Request(why)),
        None => Err(DiffusionError::Request(format!("no input `{name}`"))),
    }
}

/// An encoder's output has `want` finite values.
fn expect_values(component: &str, v: &[f32], want: usize) -> Result<(), DiffusionError> {
    if v.len() == want && v.iter().all(|x| x.is_finite()) {
        return Ok(());
    }
    Err(DiffusionError::Model {
        component: component.into(),
        message: format!(
            "{} values out (finite: {}), expected {want}",
            v.len(),
            v.iter().all(|x| x.is_finite())
        ),
    })
}

/// Classifier-free guidance per latent frame: `uncond + scale[f] * (cond - uncond)` over each
/// frame's values, written into `uncond`.
fn cfg_frames(uncond: &mut [f32], cond: &[f32], scales: &[f32]) {
    let per = uncond.len() / scales.len().max(1);
    for ((u, c), &s) in uncond
        .chunks_mut(per.max(1))
        .zip(cond.chunks(per.max(1)))
        .zip(scales)
    {
        cfg(u, c, s);
    }
}

/// The denoiser's tensors for the whole loop: the scaled latents and timestep (written in
/// place each step), the outputs of the conditional and unconditional passes, and one binding
/// per pass.
struct StepIo {
    lat: Tensor<f32>,
    ts: Tensor<f32>,
    out: [Tensor<f32>; 2],
    bindings: Vec<IoBinding>,
    /// Bound, so kept alive with the bindings.
    _inputs: DenoiserTensors,
    latents_name: String,
    timestep_name: String,
}

impl StepIo {
    fn new(pack: &mut Pack, c: &Conditions, guided: bool) -> Result<Self, DiffusionError> {
        let e = model_err("denoiser");
        let m = &pack.manifest;
        let (lh, lw) = m.latent.latent_size();
        let shape = [1, m.latent.frames, m.latent.channels, lh, lw];
        let inputs = DenoiserTensors::new(pack, c, &e)?;
        let lat = owned(&shape, vec![0.0; m.latent.values()], &e)?;
        let ts = owned(&[1], vec![0.0], &e)?;
        let alloc = Allocator::default();
        let mut out = [
            Tensor::<f32>::new(&alloc, dims_i64(&shape)).map_err(&e)?,
            Tensor::<f32>::new(&alloc, dims_i64(&shape)).map_err(&e)?,
        ];
        let den = &pack.manifest.components.denoiser;
        let w = &pack.wiring;
        let session = &mut pack.sessions.denoiser.0;
        let mut bindings = Vec::new();
        for (k, o) in out.iter_mut().enumerate().take(1 + usize::from(guided)) {
            bindings.push(inputs.bind(session, den, w, k == 1, o, &lat, &ts, &e)?);
        }
        Ok(StepIo {
            lat,
            ts,
            out,
            bindings,
            _inputs: inputs,
            latents_name: w.denoiser_latents.clone(),
            timestep_name: w.denoiser_timestep.clone(),
        })
    }

    /// Runs the denoiser (once, or twice with guidance) on `latents` at `t`; returns the time
    /// spent inside ONNX Runtime.
    fn predict(
        &mut self,
        pack: &mut Pack,
        scheduler: &Scheduler,
        latents: &[f32],
        t: f32,
    ) -> Result<Duration, DiffusionError> {
        let e = model_err("denoiser");
        {
            let (_, input) = self.lat.extract_tensor_mut();
            input.copy_from_slice(latents);
            scheduler.scale_model_input(input, t)?;
            self.ts.extract_tensor_mut().1[0] = t;
        }
        let session = &mut pack.sessions.denoiser.0;
        let mut onnx = Duration::ZERO;
        for b in &mut self.bindings {
            // Re-binding the changed inputs makes the new values visible whether or not the
            // runtime aliases the bound buffers (no copy on the CPU).
            b.bind_input(self.latents_name.as_str(), &self.lat)
                .map_err(&e)?;
            b.bind_input(self.timestep_name.as_str(), &self.ts)
                .map_err(&e)?;
            let t0 = Instant::now();
            drop(session.run_binding(b).map_err(&e)?);
            onnx += t0.elapsed();
        }
        Ok(onnx)
    }

    /// The model output: the conditional pass's, or guided per frame by `scales`.
    fn guided(&mut self, scales: Option<&[f32]>) -> &[f32] {
        let [cond, uncond] = &mut self.out;
        match scales {
            Some(s) => {
                let u = uncond.extract_tensor_mut().1;
                cfg_frames(u, cond.extract_tensor().1, s);
                u
            }
            None => cond.extract_tensor().1,
        }
    }
}

/// A request whose targets are not empty and whose capture and output size are not empty: the
/// stages index `targets[0]` and divide by the capture's size without checking again.
struct Checked<'r, 'a>(&'r DiffusionRequest<'a>);

impl<'r, 'a> Checked<'r, 'a> {
    fn new(request: &'r DiffusionRequest<'a>) -> Result<Self, DiffusionError> {
        if request.targets.is_empty() || request.width == 0 || request.height == 0 {
            return Err(DiffusionError::Request(
                "need at least one target frame and a non-empty size".into(),
            ));
        }
        if request.capture.width() == 0 || request.capture.height() == 0 {
            return Err(DiffusionError::Request("the capture is empty".into()));
        }
        Ok(Checked(request))
    }
}

impl<'a> std::ops::Deref for Checked<'_, 'a> {
    type Target = DiffusionRequest<'a>;

    fn deref(&self) -> &Self::Target {
        self.0
    }
}

/// What the denoiser is conditioned on, computed once per clip.
struct Conditions {
    first: Vec<f32>,
    /// Empty: zeros.
    pose: Vec<f32>,
    identity: Option<Vec<f32>>,
    image: Option<Vec<f32>>,
}

fn dims_i64(dims: &[usize]) -> Vec<i64> {
    dims.iter().map(|&d| d as i64).collect()
}

fn owned(
    dims: &[usize],
    v: Vec<f32>,
    e: &impl Fn(ort::Error) -> DiffusionError,
) -> Result<Tensor<f32>, DiffusionError> {
    Tensor::from_array((dims_i64(dims), v)).map_err(e)
}

/// The denoiser's conditioning inputs for both passes of guidance: the conditional pass sees
/// the clip's, the unconditional one zeros of the same shapes (a fixed input: the pack's
/// unconditional values).
struct DenoiserTensors {
    first: [Tensor<f32>; 2],
    pose: [Tensor<f32>; 2],
    identity: Option<[Tensor<f32>; 2]>,
    image: Option<[Tensor<f32>; 2]>,
    fixed: Vec<(String, [Tensor<f32>; 2])>,
}

impl DenoiserTensors {
    fn new(
        pack: &Pack,
        c: &Conditions,
        e: &impl Fn(ort::Error) -> DiffusionError,
    ) -> Result<Self, DiffusionError> {
        let (m, w) = (&pack.manifest, &pack.wiring);
        let (lh, lw) = m.latent.latent_size();
        let (fr, ch) = (m.latent.frames, m.latent.channels);
        let pair = |dims: &[usize], v: &[f32]| -> Result<[Tensor<f32>; 2], DiffusionError> {
            Ok([
                owned(dims, v.to_vec(), e)?,
                owned(dims, vec![0.0; v.len()], e)?,
            ])
        };
        let identity = match (&c.identity, &w.identity) {
            (Some(v), Some(id)) => Some(pair(&id.denoiser_dims, v)?),
            _ => None,
        };
        let image = match (&c.image, &w.image) {
            (Some(v), Some(enc)) => Some(pair(&enc.denoiser_dims, v)?),
            _ => None,
        };
        let pose = if c.pose.is_empty() {
            vec![0.0; fr * lh * lw]
        } else {
            c.pose.clone()
        };
        let mut fixed = Vec::new();
        for f in &pack.fixed {
            let cond = owned(&f.dims, f.cond.clone(), e)?;
            let uncond = owned(&f.dims, f.uncond.clone(), e)?;
            fixed.push((f.name.clone(), [cond, uncond]));
        }
        Ok(DenoiserTensors {
            first: pair(&[1, ch, lh, lw], &c.first)?,
            pose: pair(&[1, fr, 1, lh, lw], &pose)?,
            identity,
            image,
            fixed,
        })
    }

    /// A binding of every denoiser input and its output, for the conditional pass or (with
    /// `uncond`) the unconditional one.
    #[allow(clippy::too_many_arguments)]
    fn bind(
        &self,
        session: &mut ort::session::Session,
        den: &super::pack::Component,
        w: &Wiring,
        uncond: bool,
        out: &mut Tensor<f32>,
        lat: &Tensor<f32>,
        ts: &Tensor<f32>,
        e: &impl Fn(ort::Error) -> DiffusionError,
    ) -> Result<IoBinding, DiffusionError> {
        let k = usize::from(uncond);
        let mut b = session.create_binding().map_err(e)?;
        for spec in &den.inputs {
            let fixed = self.fixed.iter().find(|(n, _)| *n == spec.name);
            let v = match (spec.role, &self.identity, &self.image, fixed) {
                (Role::Latents, ..) => lat,
                (Role::Timestep, ..) => ts,
                (Role::FirstFrameLatents, ..) => &self.first[k],
                (Role::PoseMaps, ..) => &self.pose[k],
                (Role::IdentityEmbedding, Some(id), ..) => &id[k],
                (Role::ImageEmbedding, _, Some(im), _) => &im[k],
                (Role::Fixed, _, _, Some((_, f))) => &f[k],
                (other, ..) => {
                    return Err(DiffusionError::Request(format!(
                        "denoiser input `{}` has role {other:?}, which this generator does not feed",
                        spec.name
                    )));
                }
            };
            b.bind_input(spec.name.as_str(), v).map_err(e)?;
        }
        b.bind_output(w.denoiser_output.as_str(), out).map_err(e)?;
        Ok(b)
    }
}

/// Writes the face with `landmarks` in `capture`, aligned to the ArcFace template scaled to
/// `size`x`size` ([`align_arcface`]), into `out` (`3·size·size` values, planar RGB in [-1, 1],
/// bilinear, black outside the capture).
pub fn align_face(
    capture: &RgbImage,
    landmarks: &Landmarks,
    size: usize,
    out: &mut [f32],
) -> Result<(), String> {
    assert_eq!(out.len(), 3 * size * size);
    let plane = size * size;
    let aligned = align_arcface(capture, landmarks, size, |x, y, rgb| {
        for (c, v) in rgb.iter().enumerate() {
            out[c * plane + y * size + x] = v / 127.5 - 1.0;
        }
    });
    if aligned {
        Ok(())
    } else {
        Err("its landmarks do not span a face (cannot align it)".to_string())
    }
}

/// The index in a sequence of `to` items nearest in time to item `i` of `from` (both spanning
/// the same duration, first to first and last to last).
fn time_index(i: usize, from: usize, to: usize) -> usize {
    if from <= 1 || to <= 1 {
        return 0;
    }
    ((i as f64 * (to - 1) as f64 / (from - 1) as f64).round() as usize).min(to - 1)
}

/// Gaussian dots (sigma one latent cell, peak 1) at every landmark of both faces, scaled by
/// `(sx, sy)` from capture pixels to latent cells; overlapping dots take the maximum.
pub fn render_pose_map(
    out: &mut [f32],
    w: usize,
    h: usize,
    faces: &[Landmarks; 2],
    sx: f32,
    sy: f32,
) {
    out.fill(0.0);
    const R: i64 = 2;
    for face in faces {
        for p in face.0.iter() {
            let (cx, cy) = (p[0] * sx - 0.5, p[1] * sy - 0.5);
            if !(cx.is_finite() && cy.is_finite()) {
                continue;
            }
            let (ix, iy) = (cx.round() as i64, cy.round() as i64);
            for y in (iy - R).max(0)..=(iy + R).min(h as i64 - 1) {
                for x in (ix - R).max(0)..=(ix + R).min(w as i64 - 1) {
                    let d2 = (x as f32 - cx).powi(2) + (y as f32 - cy).powi(2);
                    let v = (-0.5 * d2).exp();
                    let cell = &mut out[y as usize * w + x as usize];
                    *cell = cell.max(v);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::face::align::ARCFACE_112;
    use crate::face::align::tests::landmarks_on_template;

    #[test]
    fn time_index_maps_first_to_first_and_last_to_last() {
        assert_eq!(time_index(0, 8, 96), 0);
        assert_eq!(time_index(7, 8, 96), 95);
        assert_eq!(time_index(95, 96, 8), 7);
        assert_eq!(time_index(3, 1, 8), 0);
    }

    #[test]
    fn aligned_face_puts_the_eyes_on_the_template() {
        // A face whose five ArcFace points sit at twice the template plus (30, 10); the capture
        // is dark except two bright dots at the eye centres.
        let at = |p: [f32; 2]| [p[0] * 2.0 + 30.0, p[1] * 2.0 + 10.0];
        let lm = landmarks_on_template(at);
        let mut cap = RgbImage::new(300, 260);
        for e in [ARCFACE_112[0], ARCFACE_112[1]] {
            let [x, y] = at(e);
            for dy in -2..=2 {
                for dx in -2..=2 {
                    cap.put_pixel(
                        (x.round() as i32 + dx) as u32,
                        (y.round() as i32 + dy) as u32,
                        image::Rgb([255, 255, 255]),
                    );
                }
            }
        }
        let mut out = vec![0.0; 3 * 112 * 112];
        align_face(&cap, &lm, 112, &mut out).unwrap();
        let px = |x: f32, y: f32| out[y.round() as usize * 112 + x.round() as usize];
        assert!(px(ARCFACE_112[0][0], ARCFACE_112[0][1]) > 0.9);
        assert!(px(ARCFACE_112[1][0], ARCFACE_112[1][1]) > 0.9);
        assert!(px(56.0, 92.0) < -0.9);
        assert!(align_face(&cap, &Landmarks([[5.0, 5.0]; 68]), 112, &mut out).is_err());
    }

    #[test]
    fn pose_map_peaks_at_a_landmark() {
        let lm = Landmarks([[20.0, 12.0]; 68]);
        let mut m = vec![0.0; 16 * 16];
        render_pose_map(&mut m, 16, 16, &[lm, lm], 0.5, 0.5);
        // (20, 12) * 0.5 = cell centre (10, 6) - 0.5 → between cells 9.5, 5.5
        let peak = m.iter().cloned().fold(0.0f32, f32::max);
        assert!(peak > 0.7 && peak <= 1.0);
        assert_eq!(m[0], 0.0);
    }
}
