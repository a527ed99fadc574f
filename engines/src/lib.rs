//! Kissbooth engines: inference and generation.
//!
//! - [`runtime`]: ONNX Runtime (through `ort`, loaded dynamically) with execution-provider choice
//!   (TensorRT → CUDA → CPU) and a logged fallback.
//! - [`manifest`]: the model-pack manifest (names, files, sha256, upstream URLs, tensor specs) and
//!   the installer that copies or downloads a pack and verifies every checksum.
//! - [`face`]: face analysis (UltraFace detector, PFLD 68-point landmarks, head pose, quality gate;
//!   the dense mesh, the person mask and identity embeddings of face pack v2).
//! - [`generate`]: the kiss motion timeline (3D head turns) and the morph generator.
//!
//! Data crosses crate boundaries as plain types ([`Face`], [`Landmarks`], `image::RgbImage`).

pub mod diffusion;
pub mod face;
pub mod generate;
pub mod gpu;
pub mod manifest;
pub mod onnx_fix;
pub mod quality;
pub mod runtime;
pub mod types;

pub use types::{Face, Landmarks};
