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
use ndarray::{Array, ArrayD, IxDyn};
use ort::memory::Allocator;
use ort::session::{IoBinding, SessionInputValue};
use ort::value::{Tensor, TensorRef};
use thiserror::Error;

use super::pack::{Pack, Role};
use super::scheduler::{NoiseRng, SchedulerError, cfg};
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
        let m = self.pack.manifest.clone();
        let (lh, lw) = m.latent.latent_size();
        let (fr, ch) = (m.latent.frames, m.latent.channels);
        let (ph, pw) = (m.latent.height, m.latent.width);
        if request.targets.is_empty() || request.width == 0 || request.height == 0 {
            return Err(DiffusionError::Request(
                "need at least one target frame and a non-empty size".into(),
            ));
        }
        if request.capture.width() == 0 || request.capture.height() == 0 {
            return Err(DiffusionError::Request("the capture is empty".into()));
        }
        let mut stats = GenerationStats::default();

        // 1. first-frame latents
        let t0 = Instant::now();
        // Bilinear resize, [-1, 1], NCHW: on the GPU when there is one (same arithmetic).
        let (cw, chh) = request.capture.dimensions();
        let (cw, chh, pwu, phu) = (cw as usize, chh as usize, pw as usize, ph as usize);
        let raw = request.capture.as_raw();
        let on_gpu = self
            .gpu
            .as_ref()
            .map(|g| g.preprocess(raw, cw, chh, pwu, phu));
        let pixels = match on_gpu {
            Some(Ok(v)) => v,
            other => {
                if let Some(Err(why)) = other {
                    tracing::warn!(%why, "GPU pre-processing failed; using the CPU path");
                }
                let mut v = vec![0.0f32; 3 * phu * pwu];
                crate::gpu::preprocess_cpu(raw, cw, chh, pwu, phu, &mut v);
                v
            }
        };
        let img = Array::from_shape_vec((1, 3, phu, pwu), pixels).expect("shape");
        let enc = &m.components.vae_encoder;
        let (in_name, out_name) = (
            enc.input(Role::Image).unwrap().name.clone(),
            enc.output(Role::Latents).unwrap().name.clone(),
        );
        let first = {
            let s = self.pack.session("vae_encoder").expect("loaded");
            let out = s
                .run(vec![(
                    in_name,
                    SessionInputValue::from(
                        TensorRef::from_array_view(&img).map_err(model_err("vae_encoder"))?,
                    ),
                )])
                .map_err(model_err("vae_encoder"))?;
            let (_, v) = out[out_name.as_str()]
                .try_extract_tensor::<f32>()
                .map_err(model_err("vae_encoder"))?;
            if v.len() != ch * lh * lw {
                return Err(DiffusionError::Model {
                    component: "vae_encoder".into(),
                    message: format!("{} values out, expected {}", v.len(), ch * lh * lw),
                });
            }
            v.iter()
                .map(|x| x * m.latent.scaling_factor)
                .collect::<Vec<f32>>()
        };
        stats.encode = t0.elapsed();

        // 1b. identity embedding, once per clip
        let t0 = Instant::now();
        let identity = match (
            m.conditioning.identity_embedding,
            &m.components.identity_encoder,
        ) {
            (true, Some(id)) => Some(self.identity_embedding(id, request)?),
            _ => None,
        };
        stats.identity = t0.elapsed();

        // 2. pose maps, one per latent frame
        let t0 = Instant::now();
        let sx = lw as f32 / request.capture.width() as f32;
        let sy = lh as f32 / request.capture.height() as f32;
        let mut pose = vec![0.0f32; fr * lh * lw];
        for f in 0..fr {
            let target = &request.targets[time_index(f, fr, request.targets.len())];
            render_pose_map(
                &mut pose[f * lh * lw..(f + 1) * lh * lw],
                lw,
                lh,
                target,
                sx,
                sy,
            );
        }
        stats.pose_maps = t0.elapsed();

        // 3. denoise
        let mut scheduler = m.scheduler.build()?;
        scheduler.set_timesteps(request.steps.unwrap_or(m.sampling.steps))?;
        let mut rng = NoiseRng::new(request.seed);
        let n = fr * ch * lh * lw;
        let mut latents = rng.gaussian(n, scheduler.init_noise_sigma());
        let timesteps = scheduler.timesteps().to_vec();
        let den = &m.components.denoiser;
        let lat_shape = [1, fr, ch, lh, lw];
        let guidance = m.sampling.guidance_scale;
        let guided = guidance > 1.0;
        let e = model_err("denoiser");
        // Every tensor of the loop is allocated once and bound once (ort IoBinding): a step
        // writes the scaled latents and the timestep in place and runs; the model output lands
        // in a preallocated tensor, guidance and the scheduler work in place.
        let shape = |dims: &[usize]| dims.iter().map(|&d| d as i64).collect::<Vec<i64>>();
        let owned = |dims: &[usize], v: Vec<f32>| Tensor::from_array((shape(dims), v)).map_err(&e);
        let ff_shape = [1, ch, lh, lw];
        let pm_shape = [1, fr, 1, lh, lw];
        let mut lat_t = owned(&lat_shape, vec![0.0; n])?;
        let mut ts_t = owned(&[1], vec![0.0])?;
        let cond_ff = owned(&ff_shape, first.clone())?;
        let cond_pm = owned(&pm_shape, pose.clone())?;
        let zero_ff = owned(&ff_shape, vec![0.0; first.len()])?;
        let zero_pm = owned(&pm_shape, vec![0.0; pose.len()])?;
        // The unconditional pass sees a zero embedding.
        let (cond_id, zero_id) = match (&identity, den.input(Role::IdentityEmbedding)) {
            (Some(v), Some(spec)) => {
                let dims = fixed_dims(&spec.shape).ok_or_else(|| {
                    DiffusionError::Request(format!(
                        "denoiser input `{}` needs a fixed shape",
                        spec.name
                    ))
                })?;
                (
                    Some(owned(&dims, v.clone())?),
                    Some(owned(&dims, vec![0.0; v.len()])?),
                )
            }
            _ => (None, None),
        };
        let alloc = Allocator::default();
        let mut out_cond = Tensor::<f32>::new(&alloc, shape(&lat_shape)).map_err(&e)?;
        let mut out_uncond = Tensor::<f32>::new(&alloc, shape(&lat_shape)).map_err(&e)?;
        let out_name = &den.output(Role::ModelOutput).expect("validated").name;
        let session = self.pack.session("denoiser").expect("loaded");
        let bind = |uncond: bool,
                    out: &mut Tensor<f32>,
                    lat: &Tensor<f32>,
                    ts: &Tensor<f32>|
         -> Result<IoBinding, DiffusionError> {
            let mut b = session.create_binding().map_err(&e)?;
            for spec in &den.inputs {
                let v = match (spec.role, uncond) {
                    (Role::Latents, _) => lat,
                    (Role::Timestep, _) => ts,
                    (Role::FirstFrameLatents, false) => &cond_ff,
                    (Role::FirstFrameLatents, true) => &zero_ff,
                    (Role::PoseMaps, false) => &cond_pm,
                    (Role::PoseMaps, true) => &zero_pm,
                    (Role::IdentityEmbedding, false) if cond_id.is_some() => {
                        cond_id.as_ref().expect("checked")
                    }
                    (Role::IdentityEmbedding, true) if zero_id.is_some() => {
                        zero_id.as_ref().expect("checked")
                    }
                    (other, _) => {
                        return Err(DiffusionError::Request(format!(
                            "denoiser input `{}` has role {other:?}, which this generator does not feed yet",
                            spec.name
                        )));
                    }
                };
                b.bind_input(spec.name.as_str(), v).map_err(&e)?;
            }
            b.bind_output(out_name.as_str(), out).map_err(&e)?;
            Ok(b)
        };
        let mut cond_b = bind(false, &mut out_cond, &lat_t, &ts_t)?;
        let mut uncond_b = if guided {
            Some(bind(true, &mut out_uncond, &lat_t, &ts_t)?)
        } else {
            None
        };
        let lat_name = den.input(Role::Latents).expect("validated").name.as_str();
        let ts_name = den.input(Role::Timestep).expect("validated").name.as_str();
        let mut noise = vec![0.0f32; if scheduler.needs_noise() { n } else { 0 }];
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
            let mut onnx = Duration::ZERO;
            {
                let (_, input) = lat_t.extract_tensor_mut();
                input.copy_from_slice(&latents);
                scheduler.scale_model_input(input, t)?;
                ts_t.extract_tensor_mut().1[0] = t;
            }
            for b in std::iter::once(&mut cond_b).chain(uncond_b.as_mut()) {
                // Re-binding the changed inputs makes the new values visible whether or not the
                // runtime aliases the bound buffers (no copy on the CPU).
                b.bind_input(lat_name, &lat_t).map_err(&e)?;
                b.bind_input(ts_name, &ts_t).map_err(&e)?;
                let t0 = Instant::now();
                drop(session.run_binding(b).map_err(&e)?);
                onnx += t0.elapsed();
            }
            let cond = out_cond.extract_tensor().1;
            let model_out: &[f32] = if guided {
                let uncond = out_uncond.extract_tensor_mut().1;
                cfg(uncond, cond, guidance);
                uncond
            } else {
                cond
            };
            let noise = if scheduler.needs_noise() {
                rng.fill(&mut noise, 1.0);
                Some(noise.as_slice())
            } else {
                None
            };
            scheduler.step_in_place(model_out, t, &mut latents, noise)?;
            stats.steps.push(StepTiming {
                total: step_start.elapsed(),
                onnx,
            });
        }
        if cancel.load(Ordering::Relaxed) {
            return Err(DiffusionError::Cancelled);
        }

        // 4. decode
        let t0 = Instant::now();
        let dec = &m.components.vae_decoder;
        let inv = 1.0 / m.latent.scaling_factor;
        let lat =
            ArrayD::from_shape_vec(IxDyn(&lat_shape), latents.iter().map(|x| x * inv).collect())
                .expect("shape");
        let vf = m.latent.video_frames();
        let video: Vec<f32> = {
            let e = model_err("vae_decoder");
            let s = self.pack.session("vae_decoder").expect("loaded");
            let out = s
                .run(vec![(
                    dec.input(Role::Latents).unwrap().name.clone(),
                    SessionInputValue::from(TensorRef::from_array_view(&lat).map_err(&e)?),
                )])
                .map_err(&e)?;
            let (shape, v) = out[dec.output(Role::Frames).unwrap().name.as_str()]
                .try_extract_tensor::<f32>()
                .map_err(&e)?;
            let want = [1, vf as i64, 3, ph as i64, pw as i64];
            if shape[..] != want[..] {
                return Err(DiffusionError::Model {
                    component: "vae_decoder".into(),
                    message: format!("frames of shape {shape:?}, expected {want:?}"),
                });
            }
            v.to_vec()
        };
        stats.decode = t0.elapsed();

        // 5. frames: to RGB, resampled in time, resized
        let t0 = Instant::now();
        let plane = (ph * pw) as usize;
        let decoded: Vec<RgbImage> = (0..vf)
            .map(|f| {
                let base = f * 3 * plane;
                RgbImage::from_fn(pw, ph, |x, y| {
                    let i = (y * pw + x) as usize;
                    let px = |c: usize| {
                        ((video[base + c * plane + i] + 1.0) * 127.5)
                            .round()
                            .clamp(0.0, 255.0) as u8
                    };
                    image::Rgb([px(0), px(1), px(2)])
                })
            })
            .collect();
        let count = request.targets.len();
        for j in 0..count {
            let frame = &decoded[time_index(j, count, vf)];
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
        stats.postprocess = t0.elapsed();
        Ok(stats)
    }
}

impl DiffusionGenerator {
    /// Aligns both faces of the capture (`request.faces`, else `request.targets[0]`) to the
    /// identity encoder's input
    /// and runs it; returns the embedding's values.
    fn identity_embedding(
        &mut self,
        id: &super::pack::Component,
        request: &DiffusionRequest,
    ) -> Result<Vec<f32>, DiffusionError> {
        let e = model_err("identity_encoder");
        let faces_spec = id.input(Role::Faces).expect("validated");
        let size = match faces_spec.shape.get(2) {
            Some(super::pack::Dim::Fixed(n)) if *n > 0 => *n as usize,
            _ => {
                return Err(DiffusionError::Request(format!(
                    "identity_encoder input `{}` needs a fixed size",
                    faces_spec.name
                )));
            }
        };
        let plane = 3 * size * size;
        let mut crops = vec![0.0f32; 2 * plane];
        let faces = request.faces.unwrap_or(&request.targets[0]);
        for (k, face) in faces.iter().enumerate() {
            align_face(
                request.capture,
                face,
                size,
                &mut crops[k * plane..(k + 1) * plane],
            )
            .map_err(|why| DiffusionError::Request(format!("face {}: {why}", k + 1)))?;
        }
        let crops = Array::from_shape_vec((2, 3, size, size), crops).expect("shape");
        let out_name = id.output(Role::Embedding).expect("validated").name.as_str();
        let want: usize = fixed_dims(&id.output(Role::Embedding).expect("validated").shape)
            .map(|d| d.iter().product())
            .unwrap_or(0);
        let s = self.pack.session("identity_encoder").expect("loaded");
        let out = s
            .run(vec![(
                faces_spec.name.clone(),
                SessionInputValue::from(TensorRef::from_array_view(&crops).map_err(&e)?),
            )])
            .map_err(&e)?;
        let (_, v) = out[out_name].try_extract_tensor::<f32>().map_err(&e)?;
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
        Ok(v.to_vec())
    }
}

/// The dimensions of a shape whose every dimension is fixed and positive.
fn fixed_dims(shape: &[super::pack::Dim]) -> Option<Vec<usize>> {
    shape
        .iter()
        .map(|d| match d {
            super::pack::Dim::Fixed(n) if *n > 0 => Some(*n as usize),
            _ => None,
        })
        .collect()
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
