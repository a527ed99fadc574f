//! The diffusion model pack: a folder with `manifest.toml` and one ONNX file per component.
//!
//! The manifest names each component's file, sha256, precision and tensors (ONNX name, the
//! role the generator feeds or reads it as, shape with dynamic axes as `-1` or a name, dtype),
//! the latent layout, the scheduler and its configuration, the distilled step count, the
//! guidance scale and which conditionings the denoiser takes. `scripts/make-tiny-pack` writes a
//! complete example.
//!
//! [`Pack::load`] refuses a pack whose files do not match the manifest: a missing file, a wrong
//! checksum, a tensor that is missing, unlisted, of another dtype or shape; every error names the
//! file and the tensor.
//!
//! TensorRT: a pack's components are plain ONNX files; the runtime's TensorRT provider builds
//! engines from them on the device with the manifest's `[tensorrt]` settings and caches them in
//! the pack folder per device; a component may list precompiled EP-context models (see
//! [`super::tensorrt`]).

use std::path::{Path, PathBuf};

use ort::session::Session;
use ort::value::{TensorElementType, ValueType};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use super::memory::{self, MemoryBudget, MemoryPlan};
use super::scheduler::{SchedulerConfig, SchedulerError};
use super::tensorrt::{DeviceIdentity, EpContext, TensorRtConfig, concrete_shape, options_for};
use crate::runtime::{Provider, Runtime, RuntimeError, SessionInfo};

/// The manifest's file name inside a pack folder.
pub const MANIFEST_FILE: &str = "manifest.toml";

#[derive(Debug, Error)]
pub enum PackError {
    #[error("cannot read {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("manifest: {0}")]
    Invalid(String),
    #[error("manifest: scheduler: {0}")]
    Scheduler(#[from] SchedulerError),
    #[error("component `{component}`: file {path} is missing")]
    MissingFile { component: String, path: PathBuf },
    #[error("component `{component}`: {path} has sha256 {got}, the manifest says {expected}")]
    Checksum {
        component: String,
        path: PathBuf,
        expected: String,
        got: String,
    },
    #[error(
        "component `{component}` ({path}): the model has no {kind} tensor `{tensor}` (it has: {available})"
    )]
    UnknownTensor {
        component: String,
        path: PathBuf,
        kind: &'static str,
        tensor: String,
        available: String,
    },
    #[error(
        "component `{component}` ({path}): the model's {kind} tensor `{tensor}` is not in the manifest"
    )]
    UnlistedTensor {
        component: String,
        path: PathBuf,
        kind: &'static str,
        tensor: String,
    },
    #[error(
        "component `{component}` ({path}): tensor `{tensor}` has shape {model} in the model, the manifest says {manifest}"
    )]
    Shape {
        component: String,
        path: PathBuf,
        tensor: String,
        model: String,
        manifest: String,
    },
    #[error(
        "component `{component}` ({path}): tensor `{tensor}` is {model} in the model, the manifest says {manifest}"
    )]
    Dtype {
        component: String,
        path: PathBuf,
        tensor: String,
        model: String,
        manifest: String,
    },
    #[error("{0}")]
    Memory(String),
    #[error("component `{component}`: {source}")]
    Runtime {
        component: String,
        #[source]
        source: RuntimeError,
    },
}

/// The whole manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub pack: PackInfo,
    pub latent: LatentLayout,
    pub scheduler: SchedulerConfig,
    #[serde(default)]
    pub sampling: Sampling,
    #[serde(default)]
    pub conditioning: Conditioning,
    /// TensorRT provider settings (see [`super::tensorrt`]).
    #[serde(default)]
    pub tensorrt: TensorRtConfig,
    pub components: Components,
    /// diffusers' output for a fixed input, seed and noise (packs made by `convert-pack
    /// --tiny`): what `kissbooth models check-reference` compares the runtime with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<super::reference::Reference>,
    /// The architecture's real-size figures (parameters per component, activations at
    /// 512x512), for the memory plan against the Jetson modules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub real_size: Option<super::memory::RealSize>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackInfo {
    pub name: String,
    #[serde(default)]
    pub version: String,
    /// The diffusers architecture it was converted from (`ltx_video`, `stable_video_diffusion`;
    /// informative).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
    /// Where the weights come from (informative).
    #[serde(default)]
    pub upstream: Option<String>,
}

/// The latent video the denoiser works on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatentLayout {
    /// Latent frames `F` (the denoiser's second axis).
    pub frames: usize,
    /// Latent channels.
    pub channels: usize,
    /// Working resolution in pixels (what the VAE encodes and decodes).
    pub height: u32,
    pub width: u32,
    /// Pixels per latent cell along each spatial axis.
    pub spatial_compression: u32,
    /// Video frames per latent frame (1: no temporal compression).
    #[serde(default = "one")]
    pub temporal_compression: usize,
    /// A causal video VAE (LTX-Video): the first latent frame is one video frame, each other
    /// `temporal_compression` frames.
    #[serde(default)]
    pub causal: bool,
    /// Latents are multiplied by this after encoding and divided before decoding.
    #[serde(default = "one_f32")]
    pub scaling_factor: f32,
}

fn one() -> usize {
    1
}
fn one_f32() -> f32 {
    1.0
}

impl LatentLayout {
    /// Latent height and width.
    pub fn latent_size(&self) -> (usize, usize) {
        (
            (self.height / self.spatial_compression) as usize,
            (self.width / self.spatial_compression) as usize,
        )
    }
    /// Video frames the decoder produces.
    pub fn video_frames(&self) -> usize {
        if self.causal {
            1 + (self.frames - 1) * self.temporal_compression
        } else {
            self.frames * self.temporal_compression
        }
    }
    /// Values of the latent video, `[1, F, C, h, w]`.
    pub fn values(&self) -> usize {
        let (h, w) = self.latent_size();
        self.frames * self.channels * h * w
    }
}

/// Sampling defaults of a (distilled) pack.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Sampling {
    /// Denoising steps (the distilled timestep count).
    pub steps: usize,
    /// Classifier-free guidance scale; 1.0 runs the denoiser once per step (no guidance).
    pub guidance_scale: f32,
    /// Per-frame guidance (Stable Video Diffusion): the scale rises linearly from this on the
    /// first latent frame to `guidance_scale` on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_guidance_scale: Option<f32>,
}

impl Default for Sampling {
    fn default() -> Self {
        Sampling {
            steps: 4,
            guidance_scale: 1.0,
            min_guidance_scale: None,
        }
    }
}

impl Sampling {
    /// The guidance scale of each of `frames` latent frames (`torch.linspace(min, max, F)`),
    /// or `None` without guidance (no scale above 1).
    pub fn frame_guidance(&self, frames: usize) -> Option<Vec<f32>> {
        let max = self.guidance_scale;
        let min = self.min_guidance_scale.unwrap_or(max);
        if max.max(min) <= 1.0 {
            return None;
        }
        if frames == 0 {
            return Some(Vec::new());
        }
        Some(super::scheduler::torch_linspace_f32(
            min as f64, max as f64, frames,
        ))
    }
}

/// Which conditionings the denoiser takes (each needs the matching input role).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Conditioning {
    /// The encoded capture, `[1, C, h, w]` (role `first_frame_latents`).
    pub first_frame_latents: bool,
    /// One pose guidance map per latent frame, `[1, F, 1, h, w]` (role `pose_maps`), rendered
    /// from the motion timeline's target landmarks.
    pub pose_maps: bool,
    /// An identity embedding from the `identity_encoder` component (role `identity_embedding`).
    pub identity_embedding: bool,
    /// The image embedding of the capture from the `image_encoder` component (role
    /// `image_embedding`; SVD's CLIP embedding).
    pub image_embedding: bool,
    /// The first latent frame is the encoded capture, kept clean through denoising (LTX-Video's
    /// image-to-video conditioning; its denoiser gives that frame timestep 0).
    pub first_frame_in_latents: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Components<C = Component> {
    pub vae_encoder: C,
    pub denoiser: C,
    pub vae_decoder: C,
    #[serde(default = "none")]
    pub image_encoder: Option<C>,
    #[serde(default = "none")]
    pub identity_encoder: Option<C>,
    /// A clip to latents (refine mode): input role `video`, output role `latents`.
    #[serde(default = "none")]
    pub video_encoder: Option<C>,
}

fn none<C>() -> Option<C> {
    None
}

impl<C> Components<C> {
    /// The same components, each made into a `D` by `f(name, component)`; the first error
    /// stops it.
    pub fn try_map<D, E>(
        &self,
        mut f: impl FnMut(&'static str, &C) -> Result<D, E>,
    ) -> Result<Components<D>, E> {
        Ok(Components {
            vae_encoder: f("vae_encoder", &self.vae_encoder)?,
            denoiser: f("denoiser", &self.denoiser)?,
            vae_decoder: f("vae_decoder", &self.vae_decoder)?,
            image_encoder: self
                .image_encoder
                .as_ref()
                .map(|c| f("image_encoder", c))
                .transpose()?,
            identity_encoder: self
                .identity_encoder
                .as_ref()
                .map(|c| f("identity_encoder", c))
                .transpose()?,
            video_encoder: self
                .video_encoder
                .as_ref()
                .map(|c| f("video_encoder", c))
                .transpose()?,
        })
    }

    /// `(name, component)` for every component present.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &C)> {
        [
            ("vae_encoder", Some(&self.vae_encoder)),
            ("denoiser", Some(&self.denoiser)),
            ("vae_decoder", Some(&self.vae_decoder)),
            ("image_encoder", self.image_encoder.as_ref()),
            ("identity_encoder", self.identity_encoder.as_ref()),
            ("video_encoder", self.video_encoder.as_ref()),
        ]
        .into_iter()
        .filter_map(|(n, c)| c.map(|c| (n, c)))
    }
}

/// The precision a component's weights are stored in (informative; TensorRT may lower it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    Fp32,
    Fp16,
    Bf16,
    Int8,
}

/// One ONNX file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Component {
    /// Relative to the pack folder.
    pub file: PathBuf,
    pub sha256: String,
    pub precision: Precision,
    pub inputs: Vec<TensorSpec>,
    pub outputs: Vec<TensorSpec>,
    /// Precompiled TensorRT EP-context models of this component, one per device.
    #[serde(default)]
    pub tensorrt_context: Vec<EpContext>,
    /// Weights stored beside the ONNX file (ONNX external data: a real model is over
    /// protobuf's 2 GB), each checked by its sha256.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub external_data: Vec<ExternalData>,
}

/// A file of a component's weights referenced by its ONNX graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalData {
    pub file: PathBuf,
    pub sha256: String,
}

impl Component {
    /// The input with `role`, if any.
    pub fn input(&self, role: Role) -> Option<&TensorSpec> {
        self.inputs.iter().find(|t| t.role == role)
    }
    /// The output with `role`, if any.
    pub fn output(&self, role: Role) -> Option<&TensorSpec> {
        self.outputs.iter().find(|t| t.role == role)
    }
}

/// What the generator feeds into or reads from a tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Pixels `[1, 3, H, W]` in [-1, 1] (VAE encoder input).
    Image,
    /// Latents (VAE encoder output, denoiser and VAE decoder input).
    Latents,
    /// The scheduler's timestep, `[1]`.
    Timestep,
    FirstFrameLatents,
    PoseMaps,
    IdentityEmbedding,
    /// The denoiser's prediction (epsilon, v or flow velocity, as the scheduler expects).
    ModelOutput,
    /// Decoded video `[1, F, 3, H, W]` in [-1, 1].
    Frames,
    /// Output of an image/identity encoder.
    Embedding,
    /// Both faces of the capture aligned to the identity encoder's template, `[2, 3, S, S]` in
    /// [-1, 1], RGB (identity encoder input).
    Faces,
    /// Unit Gaussian noise drawn by the runtime (a VAE posterior's sample, SVD's noise
    /// augmentation, LTX's decoder timestep noise).
    Noise,
    /// A value fixed by the pack: `file` (raw little-endian float32; `uncond_file` for the
    /// unconditional pass of guidance, else the same) or inline `values`.
    Fixed,
    /// The `image_encoder`'s embedding of the capture (zeros in the unconditional pass).
    ImageEmbedding,
    /// A clip `[1, Fv, 3, H, W]` in [-1, 1] (video encoder input, refine mode).
    Video,
}

impl Role {
    /// The name in the manifest.
    pub fn name(self) -> &'static str {
        match self {
            Role::Image => "image",
            Role::Latents => "latents",
            Role::Timestep => "timestep",
            Role::FirstFrameLatents => "first_frame_latents",
            Role::PoseMaps => "pose_maps",
            Role::IdentityEmbedding => "identity_embedding",
            Role::ModelOutput => "model_output",
            Role::Frames => "frames",
            Role::Embedding => "embedding",
            Role::Faces => "faces",
            Role::Noise => "noise",
            Role::Fixed => "fixed",
            Role::ImageEmbedding => "image_embedding",
            Role::Video => "video",
        }
    }
}

/// One tensor of a component.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TensorSpec {
    /// The ONNX name.
    pub name: String,
    pub role: Role,
    pub shape: Vec<Dim>,
    #[serde(default)]
    pub dtype: DType,
    /// Role `fixed`: the file holding its values (relative to the pack).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// Role `fixed`: the values of the unconditional pass (default: those of `file`/`values`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uncond_file: Option<PathBuf>,
    /// Role `fixed`: the values, inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<f32>>,
}

/// A dimension: fixed, or dynamic (`-1` or a symbolic name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Dim {
    Fixed(i64),
    Named(String),
}

impl Dim {
    pub fn is_dynamic(&self) -> bool {
        matches!(self, Dim::Named(_)) || matches!(self, Dim::Fixed(n) if *n < 0)
    }
}

impl std::fmt::Display for Dim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Dim::Fixed(n) => write!(f, "{n}"),
            Dim::Named(s) => write!(f, "{s}"),
        }
    }
}

fn fmt_shape<T: std::fmt::Display>(dims: &[T]) -> String {
    let v: Vec<String> = dims.iter().map(|d| d.to_string()).collect();
    format!("[{}]", v.join(", "))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    #[default]
    Float32,
    Float16,
    Int64,
}

impl DType {
    fn matches(self, t: TensorElementType) -> bool {
        matches!(
            (self, t),
            (DType::Float32, TensorElementType::Float32)
                | (DType::Float16, TensorElementType::Float16)
                | (DType::Int64, TensorElementType::Int64)
        )
    }
}

impl Manifest {
    /// Parses a manifest from TOML text.
    pub fn parse(text: &str, path: &Path) -> Result<Manifest, PackError> {
        toml::from_str(text).map_err(|e| PackError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }

    /// Reads `DIR/manifest.toml`.
    pub fn read(dir: &Path) -> Result<Manifest, PackError> {
        let path = dir.join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| PackError::Read {
            path: path.clone(),
            message: e.to_string(),
        })?;
        Manifest::parse(&text, &path)
    }

    /// Checks the manifest on its own: sizes, the scheduler, the roles the generator needs.
    pub fn validate(&self) -> Result<(), PackError> {
        let bad = |m: String| Err(PackError::Invalid(m));
        let l = &self.latent;
        if l.frames == 0 || l.channels == 0 || l.temporal_compression == 0 {
            return bad("latent frames, channels and temporal_compression must be positive".into());
        }
        if l.spatial_compression == 0
            || l.height == 0
            || l.width == 0
            || !l.height.is_multiple_of(l.spatial_compression)
            || !l.width.is_multiple_of(l.spatial_compression)
        {
            return bad(format!(
                "latent height {} and width {} must be positive multiples of spatial_compression {}",
                l.height, l.width, l.spatial_compression
            ));
        }
        if !(l.scaling_factor.is_finite() && l.scaling_factor > 0.0) {
            return bad("latent scaling_factor must be positive".into());
        }
        if self.sampling.steps == 0 {
            return bad("sampling steps must be at least 1".into());
        }
        if !(self.sampling.guidance_scale.is_finite() && self.sampling.guidance_scale >= 1.0) {
            return bad("sampling guidance_scale must be >= 1".into());
        }
        self.scheduler.validate()?;
        let c = &self.components;
        for (name, comp) in c.iter() {
            if comp.sha256.len() != 64 || !comp.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return bad(format!("component `{name}`: sha256 must be 64 hex digits"));
            }
            let files = std::iter::once((&comp.file, &comp.sha256))
                .chain(comp.tensorrt_context.iter().map(|c| (&c.file, &c.sha256)));
            for (file, sha) in files {
                if file.is_absolute() || file.components().any(|p| p.as_os_str() == "..") {
                    return bad(format!(
                        "component `{name}`: file {} must be inside the pack",
                        file.display()
                    ));
                }
                if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return bad(format!(
                        "component `{name}`: sha256 of {} must be 64 hex digits",
                        file.display()
                    ));
                }
            }
            for spec in comp.inputs.iter().chain(&comp.outputs) {
                concrete_shape(self, spec)
                    .map_err(|e| PackError::Invalid(format!("component `{name}`: {e}")))?;
            }
        }
        self.wiring()?;
        Ok(())
    }

    /// The tensors the generator binds, resolved from the components' roles; an error names a
    /// role the generator needs and the pack lacks, or a conditioning whose shapes do not fit.
    pub fn wiring(&self) -> Result<Wiring, PackError> {
        let c = &self.components;
        let (den, enc, dec) = (&c.denoiser, &c.vae_encoder, &c.vae_decoder);
        let mut w = Wiring {
            encoder_image: need("vae_encoder", enc, true, Role::Image)?,
            encoder_latents: need("vae_encoder", enc, false, Role::Latents)?,
            encoder_noise: enc.input(Role::Noise).map(|s| s.name.clone()),
            denoiser_latents: need("denoiser", den, true, Role::Latents)?,
            denoiser_timestep: need("denoiser", den, true, Role::Timestep)?,
            denoiser_output: need("denoiser", den, false, Role::ModelOutput)?,
            decoder_latents: need("vae_decoder", dec, true, Role::Latents)?,
            decoder_frames: need("vae_decoder", dec, false, Role::Frames)?,
            decoder_noise: dec.input(Role::Noise).map(|s| s.name.clone()),
            identity: None,
            image: None,
            video: None,
        };
        let cond = &self.conditioning;
        if cond.first_frame_latents {
            need("denoiser", den, true, Role::FirstFrameLatents)?;
        }
        if cond.pose_maps {
            need("denoiser", den, true, Role::PoseMaps)?;
        }
        w.identity = self.identity_wiring()?;
        w.image = self.image_wiring()?;
        w.video = self.video_wiring()?;
        for spec in den.inputs.iter().filter(|s| s.role == Role::Fixed) {
            let values = spec.values.as_ref().map(Vec::len);
            match (&spec.file, values, fixed_dims(&spec.shape)) {
                (Some(_), None, Some(_)) => {}
                (None, Some(n), Some(d)) if n == d.iter().product::<usize>() => {}
                _ => {
                    return Err(PackError::Invalid(format!(
                        "denoiser input `{}` (role fixed) needs a fixed shape and either a `file` or as many `values` as its shape holds",
                        spec.name
                    )));
                }
            }
        }
        Ok(w)
    }

    /// The identity encoder's wiring when the pack conditions on identity.
    fn identity_wiring(&self) -> Result<Option<IdentityWiring>, PackError> {
        let c = &self.components;
        let bad = |m: String| Err(PackError::Invalid(m));
        if !self.conditioning.identity_embedding {
            if let Some(spec) = c.denoiser.input(Role::IdentityEmbedding) {
                return bad(format!(
                    "denoiser input `{}` has role identity_embedding: set [conditioning] identity_embedding = true and add an `identity_encoder` component",
                    spec.name
                ));
            }
            return Ok(None);
        }
        need("denoiser", &c.denoiser, true, Role::IdentityEmbedding)?;
        let Some(id) = &c.identity_encoder else {
            return bad("identity_embedding needs an `identity_encoder` component".into());
        };
        need("identity_encoder", id, true, Role::Faces)?;
        need("identity_encoder", id, false, Role::Embedding)?;
        let (Some(faces), Some(emb), Some(den)) = (
            id.input(Role::Faces),
            id.output(Role::Embedding),
            c.denoiser.input(Role::IdentityEmbedding),
        ) else {
            return bad("identity wiring incomplete".into());
        };
        let s = &faces.shape;
        let size = match (s.len(), s.first(), s.get(1), s.get(2), s.get(3)) {
            (4, Some(Dim::Fixed(2)), Some(Dim::Fixed(3)), Some(Dim::Fixed(n)), Some(m))
                if *n > 0 && s[2] == *m =>
            {
                *n as usize
            }
            _ => {
                return bad(format!(
                    "component `identity_encoder`: input `{}` must have the fixed shape [2, 3, S, S] (both faces, RGB, square), not {}",
                    faces.name,
                    fmt_shape(s)
                ));
            }
        };
        let (values, denoiser_dims) = same_values(emb, den, "identity_encoder")?;
        Ok(Some(IdentityWiring {
            faces: faces.name.clone(),
            size,
            embedding: emb.name.clone(),
            values,
            denoiser_input: den.name.clone(),
            denoiser_dims,
        }))
    }

    /// The image encoder's wiring when the pack conditions on the capture's image embedding.
    fn image_wiring(&self) -> Result<Option<EncoderWiring>, PackError> {
        let c = &self.components;
        if !self.conditioning.image_embedding {
            if let Some(spec) = c.denoiser.input(Role::ImageEmbedding) {
                return Err(PackError::Invalid(format!(
                    "denoiser input `{}` has role image_embedding: set [conditioning] image_embedding = true and add an `image_encoder` component",
                    spec.name
                )));
            }
            return Ok(None);
        }
        let Some(enc) = &c.image_encoder else {
            return Err(PackError::Invalid(
                "image_embedding needs an `image_encoder` component".into(),
            ));
        };
        let input = need("image_encoder", enc, true, Role::Image)?;
        need("image_encoder", enc, false, Role::Embedding)?;
        need("denoiser", &c.denoiser, true, Role::ImageEmbedding)?;
        let (Some(emb), Some(den)) = (
            enc.output(Role::Embedding),
            c.denoiser.input(Role::ImageEmbedding),
        ) else {
            return Err(PackError::Invalid(
                "image embedding wiring incomplete".into(),
            ));
        };
        let (values, dims) = same_values(emb, den, "image_encoder")?;
        Ok(Some(EncoderWiring {
            input,
            output: emb.name.clone(),
            values,
            denoiser_input: den.name.clone(),
            denoiser_dims: dims,
        }))
    }

    /// The video encoder's wiring (refine mode), when the pack has one: a clip of the pack's
    /// video frames in, the latent video out.
    fn video_wiring(&self) -> Result<Option<EncoderWiring>, PackError> {
        let Some(enc) = &self.components.video_encoder else {
            return Ok(None);
        };
        let input = need("video_encoder", enc, true, Role::Video)?;
        let output = need("video_encoder", enc, false, Role::Latents)?;
        let l = &self.latent;
        let (lh, lw) = l.latent_size();
        let video = [1, l.video_frames(), 3, l.height as usize, l.width as usize];
        let latents = [1, l.frames, l.channels, lh, lw];
        let fixed = |role| {
            enc.inputs
                .iter()
                .chain(&enc.outputs)
                .find(|s| s.role == role)
                .and_then(|s| fixed_dims(&s.shape))
        };
        if fixed(Role::Video).as_deref() != Some(&video[..])
            || fixed(Role::Latents).as_deref() != Some(&latents[..])
        {
            return Err(PackError::Invalid(format!(
                "component `video_encoder`: needs the fixed shapes {} in and {} out",
                fmt_shape(&video),
                fmt_shape(&latents)
            )));
        }
        Ok(Some(EncoderWiring {
            input,
            output,
            values: l.values(),
            denoiser_input: String::new(),
            denoiser_dims: latents.to_vec(),
        }))
    }
}

/// The name of `comp`'s input (or output) with `role`, or an error naming what is missing.
fn need(name: &str, comp: &Component, input: bool, role: Role) -> Result<String, PackError> {
    let found = if input {
        comp.input(role)
    } else {
        comp.output(role)
    };
    match found {
        Some(spec) => Ok(spec.name.clone()),
        None => Err(PackError::Invalid(format!(
            "component `{name}` needs an {} with role `{}`",
            if input { "input" } else { "output" },
            role.name()
        ))),
    }
}

/// An encoder's output and the denoiser input it feeds: both fixed, with as many values; the
/// count and the denoiser input's dimensions.
fn same_values(
    out: &TensorSpec,
    den: &TensorSpec,
    encoder: &str,
) -> Result<(usize, Vec<usize>), PackError> {
    match (fixed_dims(&out.shape), fixed_dims(&den.shape)) {
        (Some(a), Some(b)) if a.iter().product::<usize>() == b.iter().product::<usize>() => {
            Ok((a.iter().product(), b))
        }
        _ => Err(PackError::Invalid(format!(
            "{encoder} output `{}` {} and denoiser input `{}` {} must have fixed shapes with the same number of values",
            out.name,
            fmt_shape(&out.shape),
            den.name,
            fmt_shape(&den.shape)
        ))),
    }
}

/// The dimensions of a shape whose every dimension is fixed and positive.
pub fn fixed_dims(shape: &[Dim]) -> Option<Vec<usize>> {
    shape
        .iter()
        .map(|d| match d {
            Dim::Fixed(n) if *n > 0 => Some(*n as usize),
            _ => None,
        })
        .collect()
}

/// The tensors the generator binds, by name, resolved from the manifest's roles
/// ([`Manifest::wiring`]). A [`Pack`] holds one, so a loaded pack always has every tensor the
/// generator feeds and reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Wiring {
    pub encoder_image: String,
    pub encoder_latents: String,
    pub denoiser_latents: String,
    pub denoiser_timestep: String,
    pub denoiser_output: String,
    pub decoder_latents: String,
    pub decoder_frames: String,
    /// The VAE encoder's noise input (a posterior sample, SVD's noise augmentation), if any.
    pub encoder_noise: Option<String>,
    /// The VAE decoder's noise input (LTX's timestep-conditioning noise), if any.
    pub decoder_noise: Option<String>,
    /// When the pack conditions on identity.
    pub identity: Option<IdentityWiring>,
    /// When the pack conditions on the capture's image embedding.
    pub image: Option<EncoderWiring>,
    /// When the pack has a video encoder (refine mode); `denoiser_dims` are the latents'.
    pub video: Option<EncoderWiring>,
}

/// An encoder's input and output, and the denoiser input its output feeds.
#[derive(Debug, Clone, PartialEq)]
pub struct EncoderWiring {
    pub input: String,
    pub output: String,
    /// Values of the output.
    pub values: usize,
    pub denoiser_input: String,
    pub denoiser_dims: Vec<usize>,
}

/// The identity encoder's tensors and the denoiser's input for its embedding, with their
/// fixed shapes.
#[derive(Debug, Clone, PartialEq)]
pub struct IdentityWiring {
    /// The encoder's input: both faces, `[2, 3, size, size]`.
    pub faces: String,
    pub size: usize,
    /// The encoder's output, `values` numbers.
    pub embedding: String,
    pub values: usize,
    /// The denoiser's input for the embedding, and its dimensions (as many values).
    pub denoiser_input: String,
    pub denoiser_dims: Vec<usize>,
}

/// A loaded, verified pack: the manifest and one open session per component.
#[derive(Debug)]
pub struct Pack {
    pub dir: PathBuf,
    pub manifest: Manifest,
    pub sessions: Components<(Session, SessionInfo)>,
    /// The tensors the generator binds (every one is there).
    pub wiring: Wiring,
    /// The memory plan the pack was loaded under.
    pub memory: MemoryPlan,
    /// The device TensorRT engines are built for, when the TensorRT provider is in use.
    pub tensorrt_device: Option<DeviceIdentity>,
    /// The values of the denoiser's `fixed` inputs.
    pub fixed: Vec<FixedValues>,
}

/// A denoiser input whose values the pack fixes (role `fixed`): a precomputed prompt
/// embedding and its mask, SVD's added time ids.
#[derive(Debug, Clone, PartialEq)]
pub struct FixedValues {
    pub name: String,
    pub dims: Vec<usize>,
    pub cond: Vec<f32>,
    /// The unconditional pass's (the same unless the manifest names an `uncond_file`).
    pub uncond: Vec<f32>,
}

/// Reads the values of the denoiser's `fixed` inputs from the pack in `dir`.
pub fn fixed_values(dir: &Path, m: &Manifest) -> Result<Vec<FixedValues>, PackError> {
    let mut out = Vec::new();
    for spec in m.components.denoiser.inputs.iter() {
        if spec.role != Role::Fixed {
            continue;
        }
        let dims = fixed_dims(&spec.shape).ok_or_else(|| {
            PackError::Invalid(format!("fixed input `{}` needs a fixed shape", spec.name))
        })?;
        let n = dims.iter().product();
        let read = |f: &PathBuf| super::reference::read_f32(&dir.join(f), n);
        let cond = match (&spec.file, &spec.values) {
            (Some(f), _) => read(f)?,
            (None, Some(v)) if v.len() == n => v.clone(),
            _ => {
                return Err(PackError::Invalid(format!(
                    "fixed input `{}` needs a `file` or {n} `values`",
                    spec.name
                )));
            }
        };
        let uncond = match &spec.uncond_file {
            Some(f) => read(f)?,
            None => cond.clone(),
        };
        out.push(FixedValues {
            name: spec.name.clone(),
            dims,
            cond,
            uncond,
        });
    }
    Ok(out)
}

/// How to load a pack.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Memory the pack may use, in MiB; `None`: detected (see [`MemoryBudget::detect`]).
    pub memory_budget_mib: Option<u64>,
}

/// Checks a pack without opening sessions: the manifest, its TensorRT settings, every file and
/// checksum, and the memory plan. What `Pack::load` does before loading anything.
pub fn check(
    dir: &Path,
    options: &LoadOptions,
    gpu: bool,
) -> Result<(Manifest, MemoryPlan), PackError> {
    let manifest = Manifest::read(dir)?;
    manifest.validate()?;
    manifest.tensorrt.check(dir)?;
    for (name, comp) in manifest.components.iter() {
        verify_file(dir, name, comp)?;
        for data in &comp.external_data {
            let weights = Component {
                file: data.file.clone(),
                sha256: data.sha256.clone(),
                ..comp.clone()
            };
            verify_file(dir, name, &weights)?;
        }
    }
    fixed_values(dir, &manifest)?;
    let budget = MemoryBudget::detect(options.memory_budget_mib, gpu).map_err(PackError::Memory)?;
    let plan = memory::plan(&manifest, dir, budget)?;
    Ok((manifest, plan))
}

impl Pack {
    /// Reads `DIR/manifest.toml`, validates it, checks each component's file and sha256, opens
    /// it with the runtime and compares its inputs and outputs with the manifest.
    pub fn load(dir: &Path, runtime: &Runtime) -> Result<Pack, PackError> {
        Pack::load_with(dir, runtime, &LoadOptions::default())
    }

    /// As [`Pack::load`]; the memory plan must fit first (nothing is loaded otherwise), and
    /// with the TensorRT provider each component gets the manifest's TensorRT settings, its
    /// engine cache in the pack folder keyed by the device, or its precompiled EP-context model
    /// for this device.
    pub fn load_with(
        dir: &Path,
        runtime: &Runtime,
        options: &LoadOptions,
    ) -> Result<Pack, PackError> {
        let providers = runtime.config().providers.clone();
        let trt = providers.contains(&Provider::Tensorrt)
            && runtime.provider_available(Provider::Tensorrt).is_ok();
        let gpu = trt
            || (providers.contains(&Provider::Cuda)
                && runtime.provider_available(Provider::Cuda).is_ok());
        let (manifest, memory) = check(dir, options, gpu)?;
        memory.check()?;
        let device = trt.then(DeviceIdentity::probe);
        let wiring = manifest.wiring()?;
        let fixed = fixed_values(dir, &manifest)?;
        let sessions = manifest.components.try_map(|name, comp| {
            let path = dir.join(&comp.file);
            let runtime_err = |source| PackError::Runtime {
                component: name.into(),
                source,
            };
            let (session, info) = match &device {
                Some(dev) => {
                    let opts = options_for(&manifest, dir, comp, dev)?;
                    match comp
                        .tensorrt_context
                        .iter()
                        .find(|c| c.device == dev.cache_key())
                    {
                        Some(ctx) => {
                            let ctx_comp = Component {
                                file: ctx.file.clone(),
                                sha256: ctx.sha256.clone(),
                                ..comp.clone()
                            };
                            let ctx_path = verify_file(dir, name, &ctx_comp)?;
                            runtime
                                .session_tuned(&ctx_path, &[Provider::Tensorrt], Some(&opts))
                                .map_err(runtime_err)?
                        }
                        None => runtime
                            .session_tuned(&path, &providers, Some(&opts))
                            .map_err(runtime_err)?,
                    }
                }
                None => runtime.session(&path).map_err(runtime_err)?,
            };
            check_interface(name, &path, comp, &session)?;
            Ok::<_, PackError>((session, info))
        })?;
        Ok(Pack {
            dir: dir.to_path_buf(),
            manifest,
            sessions,
            wiring,
            memory,
            tensorrt_device: device,
            fixed,
        })
    }

    /// The denoiser's session.
    pub fn denoiser(&mut self) -> &mut Session {
        &mut self.sessions.denoiser.0
    }
}

/// The file exists and has the manifest's sha256; returns its path.
pub fn verify_file(dir: &Path, name: &str, comp: &Component) -> Result<PathBuf, PackError> {
    let path = dir.join(&comp.file);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(PackError::MissingFile {
                component: name.into(),
                path,
            });
        }
        Err(e) => {
            return Err(PackError::Read {
                path,
                message: e.to_string(),
            });
        }
    };
    let got = hex::encode(Sha256::digest(&bytes));
    if !got.eq_ignore_ascii_case(&comp.sha256) {
        return Err(PackError::Checksum {
            component: name.into(),
            path,
            expected: comp.sha256.clone(),
            got,
        });
    }
    Ok(path)
}

fn check_interface(
    name: &str,
    path: &Path,
    comp: &Component,
    session: &Session,
) -> Result<(), PackError> {
    let sides = [
        ("input", &comp.inputs, session.inputs()),
        ("output", &comp.outputs, session.outputs()),
    ];
    for (kind, specs, outlets) in sides {
        let model: Vec<(&str, &ValueType)> =
            outlets.iter().map(|o| (o.name(), o.dtype())).collect();
        for spec in specs {
            let Some((_, vt)) = model.iter().find(|(n, _)| *n == spec.name) else {
                return Err(PackError::UnknownTensor {
                    component: name.into(),
                    path: path.into(),
                    kind,
                    tensor: spec.name.clone(),
                    available: model.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", "),
                });
            };
            let (Some(ty), Some(shape)) = (vt.tensor_type(), vt.tensor_shape()) else {
                return Err(PackError::Dtype {
                    component: name.into(),
                    path: path.into(),
                    tensor: spec.name.clone(),
                    model: format!("{vt:?}"),
                    manifest: "a tensor".into(),
                });
            };
            if !spec.dtype.matches(ty) {
                return Err(PackError::Dtype {
                    component: name.into(),
                    path: path.into(),
                    tensor: spec.name.clone(),
                    model: format!("{ty:?}").to_lowercase(),
                    manifest: format!("{:?}", spec.dtype).to_lowercase(),
                });
            }
            let dims: &[i64] = shape;
            let same = dims.len() == spec.shape.len()
                && dims.iter().zip(&spec.shape).all(|(&m, s)| match s {
                    d if d.is_dynamic() => m < 0,
                    Dim::Fixed(n) => m == *n,
                    Dim::Named(_) => unreachable!(),
                });
            if !same {
                return Err(PackError::Shape {
                    component: name.into(),
                    path: path.into(),
                    tensor: spec.name.clone(),
                    model: fmt_shape(dims),
                    manifest: fmt_shape(&spec.shape),
                });
            }
        }
        for (n, _) in &model {
            if !specs.iter().any(|s| s.name == *n) {
                return Err(PackError::UnlistedTensor {
                    component: name.into(),
                    path: path.into(),
                    kind,
                    tensor: (*n).into(),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_are_the_manifests_names() {
        for role in [
            Role::Image,
            Role::Latents,
            Role::Timestep,
            Role::FirstFrameLatents,
            Role::PoseMaps,
            Role::IdentityEmbedding,
            Role::ModelOutput,
            Role::Frames,
            Role::Embedding,
            Role::Faces,
            Role::Noise,
            Role::Fixed,
            Role::ImageEmbedding,
            Role::Video,
        ] {
            assert_eq!(
                serde_json::to_value(role).unwrap().as_str(),
                Some(role.name())
            );
        }
    }
}
