//! Diffusion schedulers, transcribed from diffusers 0.42.1 for their default code paths:
//!
//! - [`SchedulerConfig::EulerDiscrete`]: `EulerDiscreteScheduler` (epsilon and v-prediction;
//!   `linspace`, `leading` and `trailing` timestep spacing; linear interpolation of sigmas;
//!   final sigma zero; no Karras/exponential/beta sigmas, no `s_churn`).
//! - [`SchedulerConfig::Lcm`]: `LCMScheduler` (the noise it injects between steps is given by the
//!   caller, see [`Scheduler::step`]; no thresholding or clipping).
//! - [`SchedulerConfig::FlowMatchEuler`]: `FlowMatchEulerDiscreteScheduler` (rectified flow with a
//!   static `shift`; no dynamic shifting, no stochastic sampling).
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
}

impl Default for FlowMatchConfig {
    fn default() -> Self {
        FlowMatchConfig {
            num_train_timesteps: 1000,
            shift: 1.0,
        }
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
                Ok(())
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
                Ok(())
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
}

impl Scheduler {
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

    /// Sets the inference schedule of `n` steps, as diffusers' `set_timesteps(n)` does, and
    /// rewinds the step counter.
    pub fn set_timesteps(&mut self, n: usize) -> Result<(), SchedulerError> {
        if n == 0 {
            return Err(SchedulerError::Steps("need at least one step".into()));
        }
        self.step_index = None;
        match (&self.kind, &self.config) {
            (Kind::Euler { alphas_cumprod }, SchedulerConfig::EulerDiscrete(c)) => {
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
                let mut sigmas: Vec<f32> = timesteps
                    .iter()
                    .map(|&t| np_interp_index(t as f64, &full) as f32)
                    .collect();
                sigmas.push(0.0);
                self.timesteps = timesteps;
                self.sigmas = sigmas;
            }
            (Kind::Lcm { .. }, SchedulerConfig::Lcm(c)) => {
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
                self.timesteps = (0..n)
                    .map(|i| origin[(i as f64 * step).floor() as usize] as f32)
                    .collect();
                self.sigmas = Vec::new();
            }
            (
                Kind::FlowMatch {
                    sigma_max,
                    sigma_min,
                },
                SchedulerConfig::FlowMatchEuler(c),
            ) => {
                let ntt = c.num_train_timesteps as f64;
                let ts = np_linspace(*sigma_max as f64 * ntt, *sigma_min as f64 * ntt, n);
                let mut sigmas: Vec<f32> = ts
                    .iter()
                    .map(|t| {
                        let s = t / ntt;
                        (c.shift * s / (1.0 + (c.shift - 1.0) * s)) as f32
                    })
                    .collect();
                self.timesteps = sigmas.iter().map(|s| s * ntt as f32).collect();
                sigmas.push(0.0);
                self.sigmas = sigmas;
            }
            _ => unreachable!("kind and config are built together"),
        }
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
        let pairs = sample.iter_mut().zip(model_output);
        match (&self.kind, &self.config) {
            (Kind::Euler { .. }, SchedulerConfig::EulerDiscrete(c)) => {
                let sigma = self.sigmas[i];
                let sigma_hat = sigma;
                let dt = self.sigmas[i + 1] - sigma_hat;
                match c.prediction_type {
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
            (Kind::Lcm { alphas_cumprod }, SchedulerConfig::Lcm(c)) => {
                let t = timestep as i64;
                let last = i + 1 >= self.timesteps.len();
                let prev_t = if last {
                    t
                } else {
                    self.timesteps[i + 1] as i64
                };
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
                if last {
                    for (x, &m) in pairs {
                        *x = denoise(*x, m);
                    }
                } else {
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
                }
            }
            (Kind::FlowMatch { .. }, _) => {
                let dt = self.sigmas[i + 1] - self.sigmas[i];
                for (x, &m) in pairs {
                    *x += dt * m;
                }
            }
            _ => unreachable!("kind and config are built together"),
        }
        self.step_index = Some(i + 1);
        Ok(())
    }

    /// Whether this scheduler injects fresh noise between steps (LCM).
    pub fn needs_noise(&self) -> bool {
        matches!(self.kind, Kind::Lcm { .. })
    }
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
fn torch_linspace_f32(start: f64, end: f64, steps: usize) -> Vec<f32> {
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
