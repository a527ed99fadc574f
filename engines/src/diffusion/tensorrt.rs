//! TensorRT settings of a diffusion pack (the manifest's `[tensorrt]` table), the engine cache
//! key of the device, and the ONNX Runtime TensorRT provider options derived from both.
//!
//! ```toml
//! [tensorrt]
//! fp16 = true                                  # default true
//! int8 = true                                  # default false
//! int8_calibration_table = "calibration.cache" # inside the pack; must exist when named
//! cache_dir = "trt-cache"                      # default; engines go to trt-cache/<device key>/
//! engine_cache = true                          # default true
//! timing_cache = true                          # default true
//!
//! [[components.denoiser.tensorrt_context]]     # optional precompiled EP-context model
//! file = "denoiser_ctx.onnx"
//! sha256 = "..."
//! device = "nvidia-jetson-agx-orin-sm87-trt10.3"
//! ```
//!
//! An engine is only valid for the GPU and TensorRT version that built it, so the caches live in
//! a folder named by both ([`DeviceIdentity::cache_key`], e.g.
//! `trt-cache/nvidia-jetson-agx-orin-sm87-trt10.3/`), and a precompiled EP-context model is only
//! used on the device it names.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use ort::memory::Allocator;
use ort::session::SessionInputValue;
use ort::value::{DynTensor, TensorElementType};

use super::pack::{Component, DType, Dim, Manifest, PackError, TensorSpec};
use crate::runtime::{Provider, Runtime, TensorRtOptions};

/// The manifest's `[tensorrt]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TensorRtConfig {
    /// Let TensorRT pick FP16 kernels.
    pub fp16: bool,
    /// Let TensorRT pick INT8 kernels (with the calibration table, or a QDQ-quantised model).
    pub int8: bool,
    /// The INT8 calibration table, relative to the pack folder.
    pub int8_calibration_table: Option<PathBuf>,
    /// Cache folder relative to the pack folder; each device gets a subfolder.
    pub cache_dir: PathBuf,
    pub engine_cache: bool,
    pub timing_cache: bool,
}

impl Default for TensorRtConfig {
    fn default() -> Self {
        TensorRtConfig {
            fp16: true,
            int8: false,
            int8_calibration_table: None,
            cache_dir: PathBuf::from("trt-cache"),
            engine_cache: true,
            timing_cache: true,
        }
    }
}

/// A precompiled TensorRT EP-context model of a component, valid on one device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EpContext {
    /// Relative to the pack folder.
    pub file: PathBuf,
    pub sha256: String,
    /// The [`DeviceIdentity::cache_key`] it was built on.
    pub device: String,
}

fn inside(p: &Path) -> bool {
    !p.is_absolute() && !p.components().any(|c| c.as_os_str() == "..")
}

impl TensorRtConfig {
    /// Checks the table on its own and against the pack folder: paths stay inside the pack, and
    /// a calibration table that is named exists.
    pub fn check(&self, dir: &Path) -> Result<(), PackError> {
        let bad = |m: String| Err(PackError::Invalid(format!("tensorrt: {m}")));
        if !inside(&self.cache_dir) || self.cache_dir.as_os_str().is_empty() {
            return bad(format!(
                "cache_dir {} must be a folder inside the pack",
                self.cache_dir.display()
            ));
        }
        if let Some(table) = &self.int8_calibration_table {
            if !inside(table) {
                return bad(format!(
                    "int8_calibration_table {} must be inside the pack",
                    table.display()
                ));
            }
            if !self.int8 {
                return bad(format!(
                    "int8_calibration_table {} is named but int8 is off",
                    table.display()
                ));
            }
            let path = dir.join(table);
            if !path.is_file() {
                return bad(format!(
                    "the INT8 calibration table {} named in the manifest is missing",
                    path.display()
                ));
            }
        }
        Ok(())
    }
}

/// The GPU and TensorRT version engines are built for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceIdentity {
    /// GPU name, e.g. `NVIDIA Jetson AGX Orin` or `NVIDIA H200`.
    pub gpu: String,
    /// Compute capability (major, minor); (0, 0) when unknown.
    pub compute_capability: (u32, u32),
    /// TensorRT `major.minor`, or `unknown`.
    pub tensorrt: String,
}

impl DeviceIdentity {
    /// `<gpu>-sm<major><minor>-trt<version>`, lower case, `[a-z0-9.-]` only.
    pub fn cache_key(&self) -> String {
        let mut gpu = String::new();
        for c in self.gpu.chars() {
            if c.is_ascii_alphanumeric() {
                gpu.push(c.to_ascii_lowercase());
            } else if !gpu.ends_with('-') {
                gpu.push('-');
            }
        }
        let gpu = gpu.trim_matches('-');
        let gpu = if gpu.is_empty() { "unknown-gpu" } else { gpu };
        let (ma, mi) = self.compute_capability;
        let trt: String = self
            .tensorrt
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '.')
            .collect();
        format!("{gpu}-sm{ma}{mi}-trt{trt}")
    }

    /// Reads the identity of this machine: `nvidia-smi` (discrete GPUs, JetPack 6), else the
    /// Jetson device tree; the TensorRT version from `libnvinfer.so.X.Y.Z`'s name. Fields that
    /// cannot be found are `unknown` / (0, 0).
    pub fn probe() -> DeviceIdentity {
        let smi = std::process::Command::new("nvidia-smi")
            .args(["--query-gpu=name,compute_cap", "--format=csv,noheader"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| parse_nvidia_smi(&String::from_utf8_lossy(&o.stdout)));
        let (gpu, cc) = smi
            .or_else(|| {
                let model = std::fs::read_to_string("/proc/device-tree/model").ok()?;
                let compatible = std::fs::read("/proc/device-tree/compatible").ok()?;
                parse_device_tree(&model, &String::from_utf8_lossy(&compatible))
            })
            .unwrap_or_else(|| ("unknown-gpu".into(), (0, 0)));
        let tensorrt = crate::runtime::find_shared_library("libnvinfer.so")
            .and_then(|p| tensorrt_version_from_file_name(p.file_name()?.to_str()?))
            .unwrap_or_else(|| "unknown".into());
        DeviceIdentity {
            gpu,
            compute_capability: cc,
            tensorrt,
        }
    }
}

/// `NVIDIA H200, 9.0` (first line) → name and compute capability.
pub fn parse_nvidia_smi(out: &str) -> Option<(String, (u32, u32))> {
    let line = out.lines().find(|l| !l.trim().is_empty())?;
    let (name, cc) = line.rsplit_once(',')?;
    let (ma, mi) = cc.trim().split_once('.')?;
    Some((
        name.trim().to_string(),
        (ma.parse().ok()?, mi.parse().ok()?),
    ))
}

/// A Jetson's `/proc/device-tree/model` and `compatible` → name and compute capability
/// (Orin: tegra234, sm87; Xavier: tegra194, sm72; Nano/TX1: tegra210, sm53).
pub fn parse_device_tree(model: &str, compatible: &str) -> Option<(String, (u32, u32))> {
    let cc = if compatible.contains("tegra234") {
        (8, 7)
    } else if compatible.contains("tegra194") {
        (7, 2)
    } else if compatible.contains("tegra186") {
        (6, 2)
    } else if compatible.contains("tegra210") {
        (5, 3)
    } else {
        return None;
    };
    let name = model.trim_end_matches('\0').trim();
    let name = name.strip_suffix("Developer Kit").unwrap_or(name).trim();
    Some((name.to_string(), cc))
}

/// `libnvinfer.so.10.3.0` → `10.3`; `libnvinfer.so.8` → `8`.
pub fn tensorrt_version_from_file_name(name: &str) -> Option<String> {
    let rest = name.strip_prefix("libnvinfer.so.")?;
    let parts: Vec<&str> = rest.split('.').take(2).collect();
    if parts.is_empty() || !parts.iter().all(|p| p.parse::<u32>().is_ok()) {
        return None;
    }
    Some(parts.join("."))
}

/// A tensor's shape with its dynamic axes resolved from the latent layout: `h`/`w` (latent
/// cells), `height`/`width` (pixels), `frames` (latent frames), `video_frames`, `batch` (1).
pub fn concrete_shape(m: &Manifest, spec: &TensorSpec) -> Result<Vec<i64>, String> {
    let (lh, lw) = m.latent.latent_size();
    spec.shape
        .iter()
        .map(|d| match d {
            Dim::Fixed(n) if *n >= 0 => Ok(*n),
            Dim::Fixed(_) => Err(format!(
                "tensor `{}`: a -1 dimension cannot be sized from the manifest; name it (h, w, height, width, frames, video_frames, batch)",
                spec.name
            )),
            Dim::Named(n) => match n.as_str() {
                "h" | "latent_height" => Ok(lh as i64),
                "w" | "latent_width" => Ok(lw as i64),
                "height" => Ok(i64::from(m.latent.height)),
                "width" => Ok(i64::from(m.latent.width)),
                "frames" => Ok(m.latent.frames as i64),
                "video_frames" => Ok(m.latent.video_frames() as i64),
                "batch" => Ok(1),
                other => Err(format!(
                    "tensor `{}`: dimension `{other}` is not one of h, w, height, width, frames, video_frames, batch",
                    spec.name
                )),
            },
        })
        .collect()
}

/// The TensorRT provider options for one component of the pack in `dir` on `device`.
pub fn options_for(
    m: &Manifest,
    dir: &Path,
    component: &Component,
    device: &DeviceIdentity,
) -> Result<TensorRtOptions, PackError> {
    let t = &m.tensorrt;
    let cache = dir.join(&t.cache_dir).join(device.cache_key());
    let mut profile = Vec::new();
    for spec in &component.inputs {
        if spec.shape.iter().any(Dim::is_dynamic) {
            let dims = concrete_shape(m, spec).map_err(PackError::Invalid)?;
            let dims: Vec<String> = dims.iter().map(|d| d.to_string()).collect();
            profile.push(format!("{}:{}", spec.name, dims.join("x")));
        }
    }
    Ok(TensorRtOptions {
        fp16: t.fp16,
        int8: t.int8,
        int8_calibration_table: t
            .int8_calibration_table
            .as_ref()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned()),
        int8_calibration_source: t.int8_calibration_table.as_ref().map(|p| dir.join(p)),
        engine_cache: t.engine_cache.then(|| cache.clone()),
        timing_cache: t.timing_cache.then(|| cache.clone()),
        profile_shapes: profile.join(","),
    })
}

/// Opens `model` with the TensorRT provider only (the engine is built, or read from the cache)
/// and runs one inference on zeros at the manifest's shapes (TensorRT finishes building on the
/// first run for dynamic inputs).
pub fn build_engine(
    runtime: &Runtime,
    m: &Manifest,
    model: &Path,
    component: &Component,
    options: &TensorRtOptions,
) -> Result<(), String> {
    let (mut session, info) = runtime
        .session_tuned(model, &[Provider::Tensorrt], Some(options))
        .map_err(|e| e.to_string())?;
    if info.provider != Provider::Tensorrt {
        let why: Vec<String> = info
            .skipped
            .iter()
            .map(|(p, r)| format!("{p}: {r}"))
            .collect();
        return Err(format!("TensorRT could not open it ({})", why.join("; ")));
    }
    let mut feeds: Vec<(String, SessionInputValue)> = Vec::new();
    for spec in &component.inputs {
        let shape = concrete_shape(m, spec)?;
        let ty = match spec.dtype {
            DType::Float32 => TensorElementType::Float32,
            DType::Float16 => TensorElementType::Float16,
            DType::Int64 => TensorElementType::Int64,
        };
        let t = DynTensor::new(&Allocator::default(), ty, shape)
            .map_err(|e| format!("input `{}`: {e}", spec.name))?;
        feeds.push((spec.name.clone(), t.into()));
    }
    session
        .run(feeds)
        .map_err(|e| format!("warm-up inference: {e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TINY: &str = include_str!("testdata/manifest.toml");

    fn manifest(extra: &str) -> Manifest {
        Manifest::parse(&format!("{extra}\n{TINY}"), Path::new("manifest.toml")).unwrap()
    }

    fn orin() -> DeviceIdentity {
        DeviceIdentity {
            gpu: "NVIDIA Jetson AGX Orin".into(),
            compute_capability: (8, 7),
            tensorrt: "10.3".into(),
        }
    }

    #[test]
    fn cache_key_names_gpu_compute_capability_and_tensorrt_version() {
        assert_eq!(orin().cache_key(), "nvidia-jetson-agx-orin-sm87-trt10.3");
        let odd = DeviceIdentity {
            gpu: "  NVIDIA  H200 (141GB) ".into(),
            compute_capability: (9, 0),
            tensorrt: "10.13".into(),
        };
        assert_eq!(odd.cache_key(), "nvidia-h200-141gb-sm90-trt10.13");
        let unknown = DeviceIdentity {
            gpu: String::new(),
            compute_capability: (0, 0),
            tensorrt: "unknown".into(),
        };
        assert_eq!(unknown.cache_key(), "unknown-gpu-sm00-trtunknown");
    }

    #[test]
    fn device_identity_parsers() {
        assert_eq!(
            parse_nvidia_smi("NVIDIA H200, 9.0\nNVIDIA H200, 9.0\n"),
            Some(("NVIDIA H200".into(), (9, 0)))
        );
        assert_eq!(parse_nvidia_smi("garbage"), None);
        assert_eq!(
            parse_device_tree(
                "NVIDIA Jetson AGX Orin Developer Kit\0",
                "nvidia,p3737-0000+p3701-0005\0nvidia,p3701-0005\0nvidia,tegra234\0"
            ),
            Some(("NVIDIA Jetson AGX Orin".into(), (8, 7)))
        );
        assert_eq!(parse_device_tree("PC", "acme,board"), None);
        assert_eq!(
            tensorrt_version_from_file_name("libnvinfer.so.10.3.0"),
            Some("10.3".into())
        );
        assert_eq!(
            tensorrt_version_from_file_name("libnvinfer.so.8"),
            Some("8".into())
        );
        assert_eq!(tensorrt_version_from_file_name("libnvinfer.so"), None);
    }

    #[test]
    fn provider_options_follow_the_manifest() {
        let m = manifest(
            "[tensorrt]\nfp16 = false\nint8 = true\nint8_calibration_table = \"calib/denoiser.cache\"\ntiming_cache = false\n",
        );
        let dir = Path::new("/packs/tiny");
        let o = options_for(&m, dir, &m.components.denoiser, &orin()).unwrap();
        assert!(!o.fp16 && o.int8);
        assert_eq!(o.int8_calibration_table.as_deref(), Some("denoiser.cache"));
        assert_eq!(
            o.int8_calibration_source.as_deref(),
            Some(Path::new("/packs/tiny/calib/denoiser.cache"))
        );
        assert_eq!(
            o.engine_cache.as_deref(),
            Some(Path::new(
                "/packs/tiny/trt-cache/nvidia-jetson-agx-orin-sm87-trt10.3"
            ))
        );
        assert_eq!(o.timing_cache, None);
        // Dynamic axes resolved from the latent layout: 8 frames, 64 px → 8x8 latents.
        assert_eq!(
            o.profile_shapes,
            "latents:1x8x4x8x8,first_frame_latents:1x4x8x8,pose_maps:1x8x1x8x8"
        );
        let enc = options_for(&m, dir, &m.components.vae_encoder, &orin()).unwrap();
        assert_eq!(enc.profile_shapes, "image:1x3x64x64");
    }

    #[test]
    fn defaults_are_fp16_with_both_caches_in_the_pack() {
        let m = manifest("");
        let o = options_for(&m, Path::new("p"), &m.components.vae_decoder, &orin()).unwrap();
        assert!(o.fp16 && !o.int8 && o.int8_calibration_table.is_none());
        let cache = Path::new("p/trt-cache/nvidia-jetson-agx-orin-sm87-trt10.3");
        assert_eq!(o.engine_cache.as_deref(), Some(cache));
        assert_eq!(o.timing_cache.as_deref(), Some(cache));
    }

    #[test]
    fn a_missing_calibration_table_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let m = manifest("[tensorrt]\nint8 = true\nint8_calibration_table = \"calib.cache\"\n");
        let err = m.tensorrt.check(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("INT8 calibration table") && err.contains("calib.cache"),
            "{err}"
        );
        assert!(err.contains("missing"), "{err}");
        std::fs::write(
            dir.path().join("calib.cache"),
            b"TRT-8601-EntropyCalibration2\n",
        )
        .unwrap();
        m.tensorrt.check(dir.path()).unwrap();
        let off = manifest("[tensorrt]\nint8_calibration_table = \"calib.cache\"\n");
        let err = off.tensorrt.check(dir.path()).unwrap_err().to_string();
        assert!(err.contains("int8 is off"), "{err}");
        let escape = manifest("[tensorrt]\ncache_dir = \"../elsewhere\"\n");
        assert!(escape.tensorrt.check(dir.path()).is_err());
    }

    #[test]
    fn an_unnamed_dynamic_axis_cannot_be_profiled() {
        let m = manifest("");
        let mut comp = m.components.vae_encoder.clone();
        comp.inputs[0].shape[2] = Dim::Fixed(-1);
        let err = options_for(&m, Path::new("p"), &comp, &orin())
            .unwrap_err()
            .to_string();
        assert!(err.contains("`image`") && err.contains("-1"), "{err}");
    }
}
