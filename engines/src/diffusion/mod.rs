//! The diffusion generator: a distilled image-to-video model pack run through ONNX Runtime.
//!
//! - [`scheduler`]: Euler (epsilon, v-prediction), LCM and flow-matching Euler schedulers
//!   (diffusers 0.42.1 maths), classifier-free guidance, seeded noise.

pub mod scheduler;

pub use scheduler::{NoiseRng, Scheduler, SchedulerConfig, cfg};
