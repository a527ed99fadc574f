//! Diffusion schedulers, transcribed from diffusers 0.42.1 for their default code paths:
//!
//! - [`SchedulerConfig::EulerDiscrete`]: `EulerDiscreteScheduler` (epsilon and v-prediction;
//!   `linspace`, `leading` and `trailing` timestep spacing; linear interpolation of sigmas;
//!   final sigma zero; Karras sigmas with continuous timesteps `0.25 ln(sigma)`, the EDM Euler
//!   sampler of Stable Video Diffusion; no exponential/beta sigmas, no `s_churn`).
//! - [`SchedulerConfig::Lcm`]: `LCMScheduler` (the noise it injects between steps is given by the
//!   caller, see [`Scheduler::step`]; no thresholding or clipping).
//! - [`SchedulerConfig::FlowMatchEuler`]: `FlowMatchEulerDiscreteScheduler` (rectified flow with a
//!   static `shift`, or LTX-Video's resolution-dependent exponential shift with `shift_terminal`
//!   and the pipeline's `linspace(1, 1/N, N)` sigmas; no stochastic sampling).
//!
//! Video-to-video (refine): [`Scheduler::start_index`] is where a `strength` starts in the
//! schedule (diffusers' `get_timesteps`), [`Scheduler::add_noise`] noises clean latents to it
//! (`add_noise` / `scale_noise`).
//!
//! Where diffusers computes in torch float32 these compute in `f32` in the same order (including
//! `torch.linspace`'s two-sided formula and `torch.cumprod`'s double accumulator); where it
//! computes in NumPy float64 these use `f64`. `engines/tests/diffusion_schedulers.rs` checks them
//! against `scripts/scheduler-goldens.py` to 1e-5.
//!
//! Also here: [`cfg`] (classifier-free guidance) and [`NoiseRng`], seeded Gaussian noise
//! (ChaCha8 + Box-Muller: deterministic for a seed on every platform; it does not reproduce
//! torch's generator).

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// What the denoiser predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PredictionType {
    /// The added noise.
    Epsilon,
    /// The velocity `alpha * noise - sigma * sample` (Salimans & Ho).
    VPrediction,
    /// The clean sample (LCM only).
    Sample,
}

/// The training noise schedule of the betas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BetaSchedule {
    Linear,
    ScaledLinear,
}

/// How inference timesteps are spread over the training timesteps (diffusers' `timestep_spacing`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimestepSpacing {
    Linspace,
    Leading,
    Trailing,
}

/// `EulerDiscreteScheduler`'s configuration; defaults are diffusers' defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EulerConfig {
    pub num_train_timesteps: usize,
    pub beta_start: f64,
    pub beta_end: f64,
    pub beta_schedule: BetaSchedule,
    pub prediction_type: PredictionType,
    pub timestep_spacing: TimestepSpacing,
    pub steps_offset: usize,
    /// Karras et al.'s sigmas between `sigma_min` and `sigma_max` (rho 7).
    pub use_karras_sigmas: bool,
    /// `continuous` (with v-prediction): the denoiser's timestep is `0.25 ln(sigma)` (EDM).
    pub timestep_type: TimestepType,
    /// The Karras range; default: the ends of the interpolated training sigmas.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sigma_min: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sigma_max: Option<f64>,
}

/// What the denoiser is given as its timestep (diffusers' `timestep_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimestepType {
    #[default]
    Discrete,
    Continuous,
}

impl Default for EulerConfig {
    fn default() -> Self {
        EulerConfig {
            num_train_timesteps: 1000,
            beta_start: 0.0001,
            beta_end: 0.02,
            beta_schedule: BetaSchedule::Linear,
            prediction_type: PredictionType::Epsilon,
            timestep_spacing: TimestepSpacing::Linspace,
            steps_offset: 0,
            use_karras_sigmas: false,
            timestep_type: TimestepType::Discrete,
            sigma_min: None,
            sigma_max: None,
        }
    }
}

/// `LCMScheduler`'s configuration; defaults are diffusers' defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LcmConfig {
    pub num_train_timesteps: usize,
    pub beta_start: f64,
    pub beta_end: f64,
    pub beta_schedule: BetaSchedule,
    /// The step count of the teacher schedule the model was distilled on.
    pub original_inference_steps: usize,
    pub set_alpha_to_one: bool,
    pub prediction_type: PredictionType,
    pub timestep_scaling: f32,
}

impl Default for LcmConfig {
    fn default() -> Self {
        LcmConfig {
            num_train_timesteps: 1000,
            beta_start: 0.00085,
            beta_end: 0.012,
            beta_schedule: BetaSchedule::ScaledLinear,
            original_inference_steps: 50,
            set_alpha_to_one: true,
            prediction_type: PredictionType::Epsilon,
            timestep_scaling: 10.0,
        }
    }
}

/// `FlowMatchEulerDiscreteScheduler`'s configuration; defaults are diffusers' defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FlowMatchConfig {
    pub num_train_timesteps: usize,
    /// Timestep shift (SD3 uses 3.0, Wan 2.x 5.0); 1.0 is the plain rectified-flow schedule.
    pub shift: f64,
    /// Shift by the latent sequence length instead (`mu` from `calculate_shift`, exponential
    /// time shift), as LTX-Video and Flux do: see [`Scheduler::set_image_seq_len`].
    pub use_dynamic_shifting: bool,
    pub base_shift: f64,
    pub max_shift: f64,
    pub base_image_seq_len: usize,
    pub max_image_seq_len: usize,
    /// Stretch the schedule so that its last sigma is this (LTX-Video: 0.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shift_terminal: Option<f64>,
    /// The sigmas the pipeline hands to `set_timesteps`.
    pub sigma_schedule: SigmaSchedule,
}

/// Where a flow-matching pipeline's sigmas come from before shifting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SigmaSchedule {
    /// The scheduler's own: `linspace(sigma_max, sigma_min, N)` over the training timesteps.
    #[default]
    Default,
    /// `linspace(1, 1/N, N)` in float32, as the LTX-Video pipelines pass.
    InverseSteps,
}

impl Default for FlowMatchConfig {
    fn default() -> Self {
        FlowMatchConfig {
            num_train_timesteps: 1000,
            shift: 1.0,
            use_dynamic_shifting: false,
            base_shift: 0.5,
            max_shift: 1.15,
            base_image_seq_len: 256,
            max_image_seq_len: 4096,
            shift_terminal: None,
            sigma_schedule: SigmaSchedule::Default,
        }
    }
}

impl FlowMatchConfig {
    /// `calculate_shift`: `mu` linear in the latent sequence length.
    pub fn mu(&self, image_seq_len: usize) -> f64 {
        let m = (self.max_shift - self.base_shift)
            / (self.max_image_seq_len as f64 - self.base_image_seq_len as f64);
        let b = self.base_shift - m * self.base_image_seq_len as f64;
        image_seq_len as f64 * m + b
    }
}

/// A scheduler and its configuration, as written in a model-pack manifest
/// (`kind = "euler_discrete" | "lcm" | "flow_match_euler"` beside the fields).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SchedulerConfig {
    EulerDiscrete(EulerConfig),
    Lcm(LcmConfig),
    FlowMatchEuler(FlowMatchConfig),
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig::FlowMatchEuler(FlowMatchConfig::default())
    }
}

#[derive(Debug, Clone, PartialEq, Error)]
pub enum SchedulerError {
    #[error("scheduler configuration: {0}")]
    Config(String),
    #[error("set_timesteps: {0}")]
    Steps(String),
    #[error("timestep {0} is not in the schedule")]
    UnknownTimestep(f32),
    #[error("the schedule has no step left (step {0})")]
    Finished(usize),
    #[error("tensor lengths differ: {what} has {got} elements, expected {expected}")]
    Length {
        what: &'static str,
        got: usize,
        expected: usize,
    },
    #[error("this scheduler needs the noise to inject between steps")]
    NoiseNeeded,
    #[error("dynamic shifting needs the latent sequence length (set_image_seq_len)")]
    SeqLenNeeded,
}

impl SchedulerConfig {
    /// Checks the ranges a scheduler needs.
    pub fn validate(&self) -> Result<(), SchedulerError> {
        let bad = |m: &str| Err(SchedulerError::Config(m.into()));
        let betas = |n: usize, s: f64, e: f64| {
            if n < 2 {
                return bad("`num_train_timesteps` must be at least 2");
            }
            if !(s > 0.0 && s < e && e < 1.0) {
                return bad("need 0 < beta_start < beta_end < 1");
            }
            Ok(())
        };
        match self {
            SchedulerConfig::EulerDiscrete(c) => {
                betas(c.num_train_timesteps, c.beta_start, c.beta_end)?;
                if c.prediction_type == PredictionType::Sample {
                    return bad("euler_discrete supports epsilon and v_prediction");
                }
                let continuous_v = c.timestep_type == TimestepType::Continuous
                    && c.prediction_type == PredictionType::VPrediction;
                if c.use_karras_sigmas && !continuous_v {
                    return bad(
                        "use_karras_sigmas is supported with timestep_type = \"continuous\" and v_prediction (EDM)",
                    );
                }
                match (c.sigma_min, c.sigma_max) {
                    (Some(lo), Some(hi)) if !(lo > 0.0 && lo < hi) => {
                        bad("need 0 < sigma_min < sigma_max")
                    }
                    _ => Ok(()),
                }
            }
            SchedulerConfig::Lcm(c) => {
                betas(c.num_train_timesteps, c.beta_start, c.beta_end)?;
                if c.original_inference_steps == 0
                    || c.original_inference_steps > c.num_train_timesteps
                {
                    return bad("need 0 < original_inference_steps <= num_train_timesteps");
                }
                Ok(())
            }
            SchedulerConfig::FlowMatchEuler(c) => {
                if c.num_train_timesteps < 2 {
                    return bad("`num_train_timesteps` must be at least 2");
                }
                if !(c.shift > 0.0 && c.shift.is_finite()) {
                    return bad("`shift` must be positive");
                }
                if c.use_dynamic_shifting && c.max_image_seq_len == c.base_image_seq_len {
                    return bad("need base_image_seq_len != max_image_seq_len");
                }
                match c.shift_terminal {
                    Some(t) if !(0.0..1.0).contains(&t) => bad("need 0 <= shift_terminal < 1"),
                    _ => Ok(()),
                }
            }
        }
    }

    /// The scheduler, before [`Scheduler::set_timesteps`].
    pub fn build(&self) -> Result<Scheduler, SchedulerError> {
        self.validate()?;
        let kind = match self {
            SchedulerConfig::EulerDiscrete(c) => Kind::Euler {
                alphas_cumprod: alphas_cumprod(
                    c.beta_schedule,
                    c.beta_start,
                    c.beta_end,
                    c.num_train_timesteps,
                ),
            },
            SchedulerConfig::Lcm(c) => Kind::Lcm {
                alphas_cumprod: alphas_cumprod(
                    c.beta_schedule,
                    c.beta_start,
                    c.beta_end,
                    c.num_train_timesteps,
                ),
            },
            SchedulerConfig::FlowMatchEuler(c) => {
                // __init__: sigmas = shift*s / (1 + (shift-1)*s) over s = linspace(1, N, N)/N,
                // in float32; sigma_max and sigma_min are its ends.
                let n = c.num_train_timesteps;
                let shifted = |t: f32| {
                    let s = t / n as f32;
                    c.shift as f32 * s / (1.0 + (c.shift - 1.0) as f32 * s)
                };
                Kind::FlowMatch {
                    sigma_max: shifted(n as f32),
                    sigma_min: shifted(1.0),
                }
            }
        };
        Ok(Scheduler {
            config: self.clone(),
            kind,
            timesteps: Vec::new(),
            sigmas: Vec::new(),
            step_index: None,
            image_seq_len: None,
        })
    }
}

#[derive(Debug, Clone)]
enum Kind {
    Euler { alphas_cumprod: Vec<f32> },
    Lcm { alphas_cumprod: Vec<f32> },
    FlowMatch { sigma_max: f32, sigma_min: f32 },
}

/// A running scheduler: [`SchedulerConfig::build`], then [`Scheduler::set_timesteps`], then for
/// each of [`Scheduler::timesteps`]: [`Scheduler::scale_model_input`], the denoiser,
/// [`Scheduler::step`].
#[derive(Debug, Clone)]
pub struct Scheduler {
    config: SchedulerConfig,
    kind: Kind,
    timesteps: Vec<f32>,
    sigmas: Vec<f32>,
    step_index: Option<usize>,
    image_seq_len: Option<usize>,
}

impl Scheduler {
    /// The latent sequence length (frames x height x width in latent cells) a dynamically
    /// shifted flow-matching schedule is shifted for; ignored by the others.
    pub fn set_image_seq_len(&mut self, len: usize) {
        self.image_seq_len = Some(len);
    }

    pub fn config(&self) -> &SchedulerConfig {
        &self.config
    }

    /// The inference timesteps, first to last (integers for LCM, stored as `f32`).
    pub fn timesteps(&self) -> &[f32] {
        &self.timesteps
    }

    /// The sigmas, one more than the timesteps (the last is 0); empty for LCM, which has none.
    pub fn sigmas(&self) -> &[f32] {
        &self.sigmas
    }

    /// The standard deviation of the initial noise.
    pub fn init_noise_sigma(&self) -> f32 {
        match (&self.kind, &self.config) {
            (Kind::Euler { .. }, SchedulerConfig::EulerDiscrete(c)) => {
                let max = self.sigmas.iter().copied().fold(0.0f32, f32::max);
                match c.timestep_spacing {
                    TimestepSpacing::Linspace | TimestepSpacing::Trailing => max,
                    TimestepSpacing::Leading => (max * max + 1.0).sqrt(),
                }
            }
            _ => 1.0,
        }
    }

    /// Sets the inference schedule of `n` steps, as diffusers' `set_timesteps(n)` does (a
    /// dynamically shifted flow-matching schedule with the `mu` of the sequence length given to
    /// [`Scheduler::set_image_seq_len`]), and rewinds the step counter.
    pub fn set_timesteps(&mut self, n: usize) -> Result<(), SchedulerError> {
        if n == 0 {
            return Err(SchedulerError::Steps("need at least one step".into()));
        }
        self.step_index = None;
        let (timesteps, sigmas) = match (&self.kind, &self.config) {
            (Kind::Euler { alphas_cumprod }, SchedulerConfig::EulerDiscrete(c)) => {
                euler_schedule(c, alphas_cumprod, n)?
            }
            (Kind::Lcm { .. }, SchedulerConfig::Lcm(c)) => (lcm_schedule(c, n)?, Vec::new()),
            (
                Kind::FlowMatch {
                    sigma_max,
                    sigma_min,
                },
                SchedulerConfig::FlowMatchEuler(c),
            ) => {
                let mu = match (c.use_dynamic_shifting, self.image_seq_len) {
                    (false, _) => None,
                    (true, Some(len)) => Some(c.mu(len)),
                    (true, None) => return Err(SchedulerError::SeqLenNeeded),
                };
                flow_schedule(c, (*sigma_max, *sigma_min), mu, n)
            }
            _ => unreachable!("kind and config are built together"),
        };
        self.timesteps = timesteps;
        self.sigmas = sigmas;
        Ok(())
    }

    /// The index in the schedule of `timestep` (the second match if it occurs twice, as
    /// diffusers does), or the current step once stepping has begun.
    fn index_of(&self, timestep: f32) -> Result<usize, SchedulerError> {
        if let Some(i) = self.step_index {
            return Ok(i);
        }
        let hits: Vec<usize> = (0..self.timesteps.len())
            .filter(|&i| self.timesteps[i] == timestep)
            .collect();
        match hits.as_slice() {
            [] => Err(SchedulerError::UnknownTimestep(timestep)),
            [one] => Ok(*one),
            [_, second, ..] => Ok(*second),
        }
    }

    /// Scales the denoiser's input for `timestep`, in place: `x / sqrt(sigma^2 + 1)` for Euler,
    /// identity for LCM and flow matching.
    pub fn scale_model_input(
        &self,
        sample: &mut [f32],
        timestep: f32,
    ) -> Result<(), SchedulerError> {
        if let Kind::Euler { .. } = self.kind {
            let i = self.index_of(timestep)?;
            let sigma = self.sigmas[i];
            let d = (sigma * sigma + 1.0).sqrt();
            sample.iter_mut().for_each(|x| *x /= d);
        }
        Ok(())
    }

    /// One denoising step: from the model output at `timestep` and the current `sample`, the
    /// sample at the next timestep. `noise` (same length, unit Gaussian) is required by LCM for
    /// every step but the last and ignored by the others.
    pub fn step(
        &mut self,
        model_output: &[f32],
        timestep: f32,
        sample: &[f32],
        noise: Option<&[f32]>,
    ) -> Result<Vec<f32>, SchedulerError> {
        let mut out = sample.to_vec();
        self.step_in_place(model_output, timestep, &mut out, noise)?;
        Ok(out)
    }

    /// As [`Scheduler::step`], overwriting `sample` with the next one (no allocation).
    pub fn step_in_place(
        &mut self,
        model_output: &[f32],
        timestep: f32,
        sample: &mut [f32],
        noise: Option<&[f32]>,
    ) -> Result<(), SchedulerError> {
        let n = sample.len();
        if model_output.len() != n {
            return Err(SchedulerError::Length {
                what: "model_output",
                got: model_output.len(),
                expected: n,
            });
        }
        let i = self.index_of(timestep)?;
        if i >= self.timesteps.len() {
            return Err(SchedulerError::Finished(i));
        }
        match (&self.kind, &self.config) {
            (Kind::Euler { .. }, SchedulerConfig::EulerDiscrete(c)) => euler_step(
                c.prediction_type,
                &self.sigmas[i..i + 2],
                model_output,
                sample,
            ),
            (Kind::Lcm { alphas_cumprod }, SchedulerConfig::Lcm(c)) => {
                let t = timestep as i64;
                let prev_t = self.timesteps.get(i + 1).map(|&p| p as i64);
                lcm_step(c, alphas_cumprod, (t, prev_t), model_output, sample, noise)?
            }
            (Kind::FlowMatch { .. }, _) => {
                let dt = self.sigmas[i + 1] - self.sigmas[i];
                for (x, &m) in sample.iter_mut().zip(model_output) {
                    *x += dt * m;
                }
            }
            _ => unreachable!("kind and config are built together"),
        }
        self.step_index = Some(i + 1);
        Ok(())
    }

    /// Where a video-to-video run of `strength` (0: none of the schedule, 1: all of it) starts
    /// in the schedule, as diffusers' image-to-image pipelines cut it (`get_timesteps`): the
    /// last `floor(N x strength)` steps are run.
    pub fn start_index(&self, strength: f32) -> usize {
        let n = self.timesteps.len();
        let init = ((n as f64 * strength.clamp(0.0, 1.0) as f64) as usize).min(n);
        n - init
    }

    /// Noises clean latents `sample` in place to the schedule's step `index` (diffusers'
    /// `add_noise` for Euler and LCM, `scale_noise` for flow matching) and continues the
    /// schedule from there; `index` at the end (strength 0) leaves them clean.
    pub fn add_noise(
        &mut self,
        sample: &mut [f32],
        noise: &[f32],
        index: usize,
    ) -> Result<(), SchedulerError> {
        if noise.len() != sample.len() {
            return Err(SchedulerError::Length {
                what: "noise",
                got: noise.len(),
                expected: sample.len(),
            });
        }
        self.step_index = Some(index);
        if index >= self.timesteps.len() {
            return Ok(());
        }
        let pairs = sample.iter_mut().zip(noise);
        match &self.kind {
            Kind::Euler { .. } => {
                let sigma = self.sigmas[index];
                pairs.for_each(|(x, &z)| *x += z * sigma);
            }
            Kind::Lcm { alphas_cumprod } => {
                let a = alphas_cumprod[self.timesteps[index] as usize];
                let (sa, sb) = (a.sqrt(), (1.0 - a).sqrt());
                pairs.for_each(|(x, &z)| *x = sa * *x + sb * z);
            }
            Kind::FlowMatch { .. } => {
                let sigma = self.sigmas[index];
                pairs.for_each(|(x, &z)| *x = sigma * z + (1.0 - sigma) * *x);
            }
        }
        Ok(())
    }

    /// Whether this scheduler injects fresh noise between steps (LCM).
    pub fn needs_noise(&self) -> bool {
        matches!(self.kind, Kind::Lcm { .. })
    }
}

/// `EulerDiscreteScheduler.set_timesteps(n)`: timesteps and sigmas (with the final zero).
fn euler_schedule(
    c: &EulerConfig,
    alphas_cumprod: &[f32],
    n: usize,
) -> Result<(Vec<f32>, Vec<f32>), SchedulerError> {
    let ntt = c.num_train_timesteps;
    if n > ntt {
        return Err(SchedulerError::Steps(format!(
            "{n} steps exceed the {ntt} training timesteps"
        )));
    }
    let timesteps: Vec<f32> = match c.timestep_spacing {
        TimestepSpacing::Linspace => np_linspace(0.0, (ntt - 1) as f64, n)
            .into_iter()
            .rev()
            .map(|t| t as f32)
            .collect(),
        TimestepSpacing::Leading => {
            let ratio = ntt / n;
            (0..n)
                .rev()
                .map(|i| (i * ratio) as f32 + c.steps_offset as f32)
                .collect()
        }
        TimestepSpacing::Trailing => {
            let ratio = ntt as f64 / n as f64;
            np_arange(ntt as f64, 0.0, -ratio)
                .into_iter()
                .map(|t| t.round_ties_even() as f32 - 1.0)
                .collect()
        }
    };
    let full: Vec<f32> = alphas_cumprod
        .iter()
        .map(|&a| ((1.0 - a) / a).sqrt())
        .collect();
    let interp: Vec<f64> = timesteps
        .iter()
        .map(|&t| np_interp_index(t as f64, &full))
        .collect();
    let mut sigmas: Vec<f32> = if c.use_karras_sigmas {
        // _convert_to_karras, in float64: rho 7 between the configured (or interpolated) ends.
        let lo = c.sigma_min.unwrap_or(interp[n - 1]).powf(1.0 / 7.0);
        let hi = c.sigma_max.unwrap_or(interp[0]).powf(1.0 / 7.0);
        np_linspace(0.0, 1.0, n)
            .into_iter()
            .map(|r| (hi + r * (lo - hi)).powi(7) as f32)
            .collect()
    } else {
        interp.iter().map(|&s| s as f32).collect()
    };
    let continuous_v = c.timestep_type == TimestepType::Continuous
        && c.prediction_type == PredictionType::VPrediction;
    let timesteps = if continuous_v {
        sigmas.iter().map(|s| 0.25 * s.ln()).collect()
    } else {
        timesteps
    };
    sigmas.push(0.0);
    Ok((timesteps, sigmas))
}

/// `LCMScheduler.set_timesteps(n)`: `n` of the teacher schedule's timesteps.
fn lcm_schedule(c: &LcmConfig, n: usize) -> Result<Vec<f32>, SchedulerError> {
    let orig = c.original_inference_steps;
    if n > orig {
        return Err(SchedulerError::Steps(format!(
            "{n} steps exceed original_inference_steps = {orig}"
        )));
    }
    let k = c.num_train_timesteps / orig;
    // lcm_origin_timesteps reversed: orig*k-1, ..., k-1
    let origin: Vec<i64> = (1..=orig as i64).rev().map(|i| i * k as i64 - 1).collect();
    let step = origin.len() as f64 / n as f64;
    Ok((0..n)
        .map(|i| origin[(i as f64 * step).floor() as usize] as f32)
        .collect())
}

/// `FlowMatchEulerDiscreteScheduler.set_timesteps(n, sigmas, mu)`. The scheduler's own sigmas
/// are float64 in NumPy, the pipeline's `linspace(1, 1/N, N)` float32; the shifts keep each
/// one's precision, as NumPy does with Python scalars.
fn flow_schedule(
    c: &FlowMatchConfig,
    (sigma_max, sigma_min): (f32, f32),
    mu: Option<f64>,
    n: usize,
) -> (Vec<f32>, Vec<f32>) {
    let ntt = c.num_train_timesteps as f64;
    let mut sigmas: Vec<f32> = match c.sigma_schedule {
        SigmaSchedule::Default => np_linspace(sigma_max as f64 * ntt, sigma_min as f64 * ntt, n)
            .iter()
            .map(|t| {
                let s = t / ntt;
                match mu {
                    Some(mu) => mu.exp() / (mu.exp() + (1.0 / s - 1.0)),
                    None => c.shift * s / (1.0 + (c.shift - 1.0) * s),
                }
            })
            .map(|s| s as f32)
            .collect(),
        SigmaSchedule::InverseSteps => np_linspace(1.0, 1.0 / n as f64, n)
            .iter()
            .map(|&s| {
                let s = s as f32;
                match mu {
                    Some(mu) => {
                        let e = mu.exp() as f32;
                        e / (e + (1.0 / s - 1.0))
                    }
                    None => c.shift as f32 * s / (1.0 + (c.shift - 1.0) as f32 * s),
                }
            })
            .collect(),
    };
    if let Some(terminal) = c.shift_terminal.filter(|&t| t > 0.0) {
        // stretch_shift_to_terminal, in float32.
        let scale = (1.0 - sigmas[n - 1]) / (1.0 - terminal) as f32;
        sigmas
            .iter_mut()
            .for_each(|s| *s = 1.0 - (1.0 - *s) / scale);
    }
    let timesteps = sigmas.iter().map(|s| s * ntt as f32).collect();
    sigmas.push(0.0);
    (timesteps, sigmas)
}

/// One Euler step between `sigmas[0]` and `sigmas[1]` (no churn: sigma_hat = sigma).
fn euler_step(kind: PredictionType, sigmas: &[f32], model_output: &[f32], sample: &mut [f32]) {
    let sigma = sigmas[0];
    let sigma_hat = sigma;
    let dt = sigmas[1] - sigma_hat;
    let pairs = sample.iter_mut().zip(model_output);
    match kind {
        PredictionType::VPrediction => {
            let s2 = sigma * sigma + 1.0;
            let a = -sigma / s2.sqrt();
            for (x, &m) in pairs {
                let pred = m * a + *x / s2;
                *x += (*x - pred) / sigma_hat * dt;
            }
        }
        _ => {
            for (x, &m) in pairs {
                let pred = *x - sigma_hat * m;
                *x += (*x - pred) / sigma_hat * dt;
            }
        }
    }
}

/// One LCM step from timestep `t` to `prev_t` (`None`: the last step, which injects no noise).
fn lcm_step(
    c: &LcmConfig,
    alphas_cumprod: &[f32],
    (t, prev_t): (i64, Option<i64>),
    model_output: &[f32],
    sample: &mut [f32],
    noise: Option<&[f32]>,
) -> Result<(), SchedulerError> {
    let n = sample.len();
    let last = prev_t.is_none();
    let prev_t = prev_t.unwrap_or(t);
    let a = alphas_cumprod[t as usize];
    let a_prev = if prev_t >= 0 {
        alphas_cumprod[prev_t as usize]
    } else if c.set_alpha_to_one {
        1.0
    } else {
        alphas_cumprod[0]
    };
    let (b, b_prev) = (1.0 - a, 1.0 - a_prev);
    let st = t as f32 * c.timestep_scaling;
    let c_skip = 0.25 / (st * st + 0.25);
    let c_out = st / (st * st + 0.25).sqrt();
    let (sa, sb) = (a.sqrt(), b.sqrt());
    let kind = c.prediction_type;
    let denoise = move |x: f32, m: f32| {
        let pred = match kind {
            PredictionType::Epsilon => (x - sb * m) / sa,
            PredictionType::VPrediction => sa * x - sb * m,
            PredictionType::Sample => m,
        };
        c_out * pred + c_skip * x
    };
    let pairs = sample.iter_mut().zip(model_output);
    if last {
        for (x, &m) in pairs {
            *x = denoise(*x, m);
        }
        return Ok(());
    }
    let noise = noise.ok_or(SchedulerError::NoiseNeeded)?;
    if noise.len() != n {
        return Err(SchedulerError::Length {
            what: "noise",
            got: noise.len(),
            expected: n,
        });
    }
    let (sap, sbp) = (a_prev.sqrt(), b_prev.sqrt());
    for ((x, &m), &z) in pairs.zip(noise) {
        *x = sap * denoise(*x, m) + sbp * z;
    }
    Ok(())
}

/// Classifier-free guidance: `uncond + scale * (cond - uncond)`, written into `uncond`.
pub fn cfg(uncond: &mut [f32], cond: &[f32], scale: f32) {
    for (u, &c) in uncond.iter_mut().zip(cond) {
        *u += scale * (c - *u);
    }
}

/// Seeded unit Gaussian noise: ChaCha8 words, Box-Muller in `f64`. The same seed gives the same
/// numbers on every platform and build.
#[derive(Debug, Clone)]
pub struct NoiseRng {
    rng: ChaCha8Rng,
    spare: Option<f32>,
}

impl NoiseRng {
    pub fn new(seed: u64) -> Self {
        NoiseRng {
            rng: ChaCha8Rng::seed_from_u64(seed),
            spare: None,
        }
    }

    fn uniform(&mut self) -> f64 {
        // 53 random bits in (0, 1]: never 0, so ln() is finite.
        ((self.rng.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64
    }

    /// One standard normal sample.
    pub fn next_gaussian(&mut self) -> f32 {
        if let Some(z) = self.spare.take() {
            return z;
        }
        let (u1, u2) = (self.uniform(), self.uniform());
        let r = (-2.0 * u1.ln()).sqrt();
        let th = std::f64::consts::TAU * u2;
        self.spare = Some((r * th.sin()) as f32);
        (r * th.cos()) as f32
    }

    /// Fills `out` with standard normal samples times `sigma`.
    pub fn fill(&mut self, out: &mut [f32], sigma: f32) {
        for x in out {
            *x = self.next_gaussian() * sigma;
        }
    }

    /// `n` standard normal samples times `sigma`.
    pub fn gaussian(&mut self, n: usize, sigma: f32) -> Vec<f32> {
        let mut v = vec![0.0; n];
        self.fill(&mut v, sigma);
        v
    }
}

/// `alphas_cumprod` as diffusers computes it: float32 betas from `torch.linspace`, float32
/// alphas, a cumulative product accumulated in `f64` and stored as `f32`.
fn alphas_cumprod(schedule: BetaSchedule, start: f64, end: f64, n: usize) -> Vec<f32> {
    let betas: Vec<f32> = match schedule {
        BetaSchedule::Linear => torch_linspace_f32(start, end, n),
        BetaSchedule::ScaledLinear => torch_linspace_f32(start.sqrt(), end.sqrt(), n)
            .into_iter()
            .map(|b| b * b)
            .collect(),
    };
    let mut acc = 1.0f64;
    betas
        .iter()
        .map(|&b| {
            acc *= (1.0 - b) as f64;
            acc as f32
        })
        .collect()
}

/// `torch.linspace(start, end, steps, dtype=float32)` on the CPU: float32, filled from both ends.
pub(crate) fn torch_linspace_f32(start: f64, end: f64, steps: usize) -> Vec<f32> {
    let (start, end) = (start as f32, end as f32);
    if steps == 1 {
        return vec![start];
    }
    let step = (end - start) / (steps - 1) as f32;
    let half = steps / 2;
    (0..steps)
        .map(|i| {
            if i < half {
                start + step * i as f32
            } else {
                end - step * (steps - i - 1) as f32
            }
        })
        .collect()
}

/// `np.linspace(start, stop, num)` in float64 (endpoint included, exact).
fn np_linspace(start: f64, stop: f64, num: usize) -> Vec<f64> {
    if num == 1 {
        return vec![start];
    }
    let step = (stop - start) / (num - 1) as f64;
    let mut v: Vec<f64> = (0..num).map(|i| i as f64 * step + start).collect();
    v[num - 1] = stop;
    v
}

/// `np.arange(start, stop, step)` in float64.
fn np_arange(start: f64, stop: f64, step: f64) -> Vec<f64> {
    let len = ((stop - start) / step).ceil().max(0.0) as usize;
    (0..len).map(|i| start + i as f64 * step).collect()
}

/// `np.interp(x, arange(len(fp)), fp)` in float64.
fn np_interp_index(x: f64, fp: &[f32]) -> f64 {
    let last = fp.len() - 1;
    if x <= 0.0 {
        return fp[0] as f64;
    }
    if x >= last as f64 {
        return fp[last] as f64;
    }
    let j = x.floor() as usize;
    let slope = (fp[j + 1] as f64 - fp[j] as f64) / 1.0;
    slope * (x - j as f64) + fp[j] as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_is_deterministic_and_roughly_standard() {
        let a = NoiseRng::new(7).gaussian(20_000, 1.0);
        let b = NoiseRng::new(7).gaussian(20_000, 1.0);
        assert_eq!(a, b);
        assert_ne!(a, NoiseRng::new(8).gaussian(20_000, 1.0));
        let mean = a.iter().map(|&x| x as f64).sum::<f64>() / a.len() as f64;
        let var = a.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / a.len() as f64;
        assert!(mean.abs() < 0.03, "mean {mean}");
        assert!((var - 1.0).abs() < 0.05, "variance {var}");
    }

    #[test]
    fn guidance_extrapolates_from_uncond_toward_cond() {
        let mut u = vec![1.0, 2.0];
        cfg(&mut u, &[2.0, 2.0], 3.0);
        assert_eq!(u, vec![4.0, 2.0]);
    }

    #[test]
    fn scheduler_config_reads_from_toml() {
        let c: SchedulerConfig =
            toml::from_str("kind = \"flow_match_euler\"\nshift = 5.0").unwrap();
        assert_eq!(
            c,
            SchedulerConfig::FlowMatchEuler(FlowMatchConfig {
                shift: 5.0,
                ..Default::default()
            })
        );
    }
}
