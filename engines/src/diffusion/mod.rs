//! The diffusion generator: a distilled image-to-video model pack run through ONNX Runtime.
//!
//! - [`scheduler`]: Euler (epsilon, v-prediction), LCM and flow-matching Euler schedulers
//!   (diffusers 0.42.1 maths), classifier-free guidance, seeded noise.
//! - [`pack`]: the pack manifest (components, tensors, latent layout, scheduler, sampling,
//!   conditionings) and [`Pack::load`], which verifies the files against it.
//! - [`generator`]: [`DiffusionGenerator`], capture + per-frame landmark targets → frames.
//! - [`tensorrt`]: the manifest's TensorRT settings, the device's engine cache key, the
//!   provider options per component.
//! - [`memory`]: the memory plan a pack must fit before it is loaded, and an architecture's
//!   real-size figures against the Jetson modules.
//! - [`reference`]: a pack's stored diffusers output and the comparison with the runtime's.
//!
//! Not here: the CLI wiring (`kissbooth render --generator diffusion --pack DIR` belongs to the
//! daemon, which builds a [`Pack`] with its runtime and hands frames to the encoder).

pub mod generator;
pub mod memory;
pub mod pack;
pub mod reference;
pub mod scheduler;
pub mod tensorrt;

pub use generator::{
    DiffusionError, DiffusionGenerator, DiffusionRequest, GenerationStats, Progress, Refine,
    StepTiming,
};
pub use pack::{LoadOptions, Manifest, Pack, PackError};
pub use scheduler::{NoiseRng, Scheduler, SchedulerConfig, cfg};
