//! The diffusion generator: a distilled image-to-video model pack run through ONNX Runtime.
//!
//! - [`scheduler`]: Euler (epsilon, v-prediction), LCM and flow-matching Euler schedulers
//!   (diffusers 0.42.1 maths), classifier-free guidance, seeded noise.
//! - [`pack`]: the pack manifest (components, tensors, latent layout, scheduler, sampling,
//!   conditionings) and [`Pack::load`], which verifies the files against it.
//! - [`generator`]: [`DiffusionGenerator`], capture + per-frame landmark targets → frames.
//!
//! Not here: the CLI wiring (`kissbooth render --generator diffusion --pack DIR` belongs to the
//! daemon, which builds a [`Pack`] with its runtime and hands frames to the encoder), TensorRT
//! engine building (the runtime's TensorRT provider does it from the pack's ONNX files) and CUDA
//! kernels for the pre/post-processing.

pub mod generator;
pub mod pack;
pub mod scheduler;

pub use generator::{
    DiffusionError, DiffusionGenerator, DiffusionRequest, GenerationStats, Progress, StepTiming,
};
pub use pack::{Manifest, Pack, PackError};
pub use scheduler::{NoiseRng, Scheduler, SchedulerConfig, cfg};
