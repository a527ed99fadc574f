//! Memory planning before a pack is loaded. On a Jetson the CPU and the GPU share one memory, so
//! a pack that does not fit would take the whole booth down (the kernel's OOM killer, or CUDA
//! allocation failures mid-render); it is refused up front instead and the booth renders with
//! the morph generator.
//!
//! Each component's need is estimated as
//!
//! ```text
//! need = weights + ACTIVATION_FACTOR × io
//! ```
//!
//! with `weights` the size of its ONNX file (the runtime holds the weights once), `io` the bytes
//! of its input and output tensors at the manifest's shapes and dtypes, and
//! [`ACTIVATION_FACTOR`] = 4 for the intermediate activations, the allocator's arena slack and
//! the output copy. Components are planned in order of importance (denoiser, decoder, encoder,
//! identity encoder, image encoder) against the available memory: `MemAvailable` from
//! `/proc/meminfo`, a configured budget, or on a discrete GPU its free device memory.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::pack::{DType, Manifest, PackError};
use super::tensorrt::concrete_shape;

/// Intermediate activations, arena slack and output copies, as a multiple of a component's
/// input and output tensor bytes.
pub const ACTIVATION_FACTOR: u64 = 4;

const MIB: f64 = 1024.0 * 1024.0;

/// `12.3 MiB`, or `45.6 KiB` below one MiB.
pub fn human_bytes(b: u64) -> String {
    if (b as f64) < MIB {
        format!("{:.1} KiB", b as f64 / 1024.0)
    } else {
        format!("{:.1} MiB", b as f64 / MIB)
    }
}

/// Memory the pack may use, and where the figure comes from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemoryBudget {
    pub bytes: u64,
    /// `configured budget`, `MemAvailable (/proc/meminfo)` or `free GPU memory (nvidia-smi)`.
    pub source: String,
}

impl MemoryBudget {
    /// A configured budget in MiB when given; else the free memory of a discrete GPU when
    /// `gpu` (a GPU provider will run the pack) and it is known; else `MemAvailable`.
    pub fn detect(configured_mib: Option<u64>, gpu: bool) -> Result<MemoryBudget, String> {
        if let Some(mib) = configured_mib {
            return Ok(MemoryBudget {
                bytes: mib * 1024 * 1024,
                source: "configured budget".into(),
            });
        }
        if gpu && let Some(bytes) = discrete_gpu_free() {
            return Ok(MemoryBudget {
                bytes,
                source: "free GPU memory (nvidia-smi)".into(),
            });
        }
        let text = std::fs::read_to_string("/proc/meminfo")
            .map_err(|e| format!("cannot read /proc/meminfo: {e}"))?;
        let bytes = mem_available(&text)
            .ok_or_else(|| "/proc/meminfo has no MemAvailable line".to_string())?;
        Ok(MemoryBudget {
            bytes,
            source: "MemAvailable (/proc/meminfo)".into(),
        })
    }
}

/// `MemAvailable:  123456 kB` → bytes.
pub fn mem_available(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Free memory of the first GPU from `nvidia-smi`, in bytes; `None` on a Jetson (it reports
/// `[N/A]`: its memory is the system's) or without a GPU.
fn discrete_gpu_free() -> Option<u64> {
    let out = std::process::Command::new("nvidia-smi")
        .args(["--query-gpu=memory.free", "--format=csv,noheader,nounits"])
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let mib: u64 = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()?;
    Some(mib * 1024 * 1024)
}

/// One component's estimated need.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ComponentNeed {
    pub component: String,
    pub weights_bytes: u64,
    pub activation_bytes: u64,
    pub total_bytes: u64,
    /// Whether it fits after the components planned before it.
    pub fits: bool,
}

/// The plan for a whole pack.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemoryPlan {
    pub budget: MemoryBudget,
    pub activation_factor: u64,
    pub components: Vec<ComponentNeed>,
    pub total_bytes: u64,
    /// The architecture at its real size on each Jetson, when the manifest has its figures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub real_size: Option<RealSizePlan>,
}

/// [`RealSize`] against the Jetson modules.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RealSizePlan {
    pub model: String,
    pub parameters: u64,
    pub fp16_bytes: u64,
    pub devices: Vec<DeviceFit>,
}

impl MemoryPlan {
    /// The first component that does not fit, as the refusal.
    pub fn check(&self) -> Result<(), PackError> {
        let mut before = 0u64;
        for c in &self.components {
            if !c.fits {
                return Err(PackError::Memory(format!(
                    "component `{}` does not fit in memory: it needs about {} (weights {} + activations {} = {} × its {} of inputs and outputs), {} are already planned for the components before it, and {} are available ({})",
                    c.component,
                    human_bytes(c.total_bytes),
                    human_bytes(c.weights_bytes),
                    human_bytes(c.activation_bytes),
                    self.activation_factor,
                    human_bytes(c.activation_bytes / self.activation_factor),
                    human_bytes(before),
                    human_bytes(self.budget.bytes),
                    self.budget.source
                )));
            }
            before += c.total_bytes;
        }
        Ok(())
    }
}

fn dtype_bytes(d: DType) -> u64 {
    match d {
        DType::Float32 => 4,
        DType::Float16 => 2,
        DType::Int64 => 8,
    }
}

/// Plans the components of the pack in `dir` (files already verified) against `budget`.
pub fn plan(m: &Manifest, dir: &Path, budget: MemoryBudget) -> Result<MemoryPlan, PackError> {
    let order = [
        "denoiser",
        "vae_decoder",
        "vae_encoder",
        "identity_encoder",
        "image_encoder",
        "video_encoder",
    ];
    let mut comps: Vec<_> = m.components.iter().collect();
    comps.sort_by_key(|(n, _)| order.iter().position(|o| o == n));
    let mut used = 0u64;
    let mut out = Vec::new();
    for (name, comp) in comps {
        let path = dir.join(&comp.file);
        let size = |path: &Path| {
            std::fs::metadata(path)
                .map(|m| m.len())
                .map_err(|e| PackError::Read {
                    path: path.to_path_buf(),
                    message: e.to_string(),
                })
        };
        let mut weights = size(&path)?;
        for data in &comp.external_data {
            weights += size(&dir.join(&data.file))?;
        }
        let mut io = 0u64;
        for spec in comp.inputs.iter().chain(&comp.outputs) {
            let dims = concrete_shape(m, spec)
                .map_err(|e| PackError::Invalid(format!("component `{name}`: {e}")))?;
            let n: u64 = dims.iter().map(|&d| d.max(0) as u64).product();
            io += n * dtype_bytes(spec.dtype);
        }
        let activation = io * ACTIVATION_FACTOR;
        let total = weights + activation;
        let fits = used + total <= budget.bytes;
        if fits {
            used += total;
        }
        out.push(ComponentNeed {
            component: name.to_string(),
            weights_bytes: weights,
            activation_bytes: activation,
            total_bytes: total,
            fits,
        });
    }
    Ok(MemoryPlan {
        budget,
        activation_factor: ACTIVATION_FACTOR,
        total_bytes: out.iter().map(|c| c.total_bytes).sum(),
        components: out,
        real_size: m.real_size.as_ref().map(RealSize::plan),
    })
}

/// An architecture's real-size figures, written by `scripts/convert-pack` from the real
/// diffusers configuration (instantiated on torch's meta device): the manifest's
/// `[real_size]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RealSize {
    pub model: String,
    /// The square working size the activations are measured at, in pixels.
    pub resolution: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Parameters per component.
    pub parameters: BTreeMap<String, u64>,
    /// Per clip length (`s2` ... `s5`, seconds).
    pub activations: BTreeMap<String, RealActivation>,
}

/// The largest activations of one clip length.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RealActivation {
    pub video_frames: usize,
    pub latent_frames: usize,
    /// The denoiser's two largest intermediate tensors in FP16 (what one forward pass holds
    /// at least at its peak).
    pub denoiser_bytes: u64,
    /// The same for the VAE decoder decoding the whole clip at once.
    pub decoder_bytes: u64,
    /// The larger of the two (they run one after the other).
    pub activation_bytes: u64,
}

/// The Jetson Orin modules a booth may run on, and their memory (shared by CPU and GPU).
pub const JETSONS: [(&str, u64); 4] = [
    ("Orin Nano 8 GB", 8),
    ("Orin NX 16 GB", 16),
    ("AGX Orin 32 GB", 32),
    ("AGX Orin 64 GB", 64),
];

/// Memory held back on a Jetson for the system and the rest of the booth (L4T without a
/// desktop, the daemon, camera, encoder and kiosk browser): an allowance, not a measurement.
pub const JETSON_RESERVED_GIB: u64 = 3;

/// One clip length of an architecture on one Jetson.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeviceFit {
    pub device: String,
    pub seconds: u32,
    pub video_frames: usize,
    /// FP16 weights of every component plus the clip's activations.
    pub need_bytes: u64,
    /// The module's memory less [`JETSON_RESERVED_GIB`].
    pub usable_bytes: u64,
    pub fits: bool,
}

impl RealSize {
    /// All parameters of the pack's components.
    pub fn parameters_total(&self) -> u64 {
        self.parameters.values().sum()
    }

    /// FP16 weights of the whole pack.
    pub fn fp16_bytes(&self) -> u64 {
        self.parameters_total() * 2
    }

    /// The figures against every Jetson.
    pub fn plan(&self) -> RealSizePlan {
        RealSizePlan {
            model: self.model.clone(),
            parameters: self.parameters_total(),
            fp16_bytes: self.fp16_bytes(),
            devices: self.device_fits(),
        }
    }

    /// Every clip length on every Jetson: weights (all components stay loaded) plus the
    /// clip's activations against the module's memory less the reserve.
    pub fn device_fits(&self) -> Vec<DeviceFit> {
        let gib = 1u64 << 30;
        let mut out = Vec::new();
        for (device, total) in JETSONS {
            let usable = (total - JETSON_RESERVED_GIB) * gib;
            for (key, a) in &self.activations {
                let need = self.fp16_bytes() + a.activation_bytes;
                out.push(DeviceFit {
                    device: device.to_string(),
                    seconds: key.trim_start_matches('s').parse().unwrap_or(0),
                    video_frames: a.video_frames,
                    need_bytes: need,
                    usable_bytes: usable,
                    fits: need <= usable,
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_sizes_fit_the_larger_modules_first() {
        let r: RealSize = toml::from_str(
            "model = \"m\"\nresolution = 512\n[parameters]\ndenoiser = 2000000000\n[activations.s2]\nvideo_frames = 49\nlatent_frames = 7\ndenoiser_bytes = 1000000000\ndecoder_bytes = 10\nactivation_bytes = 1000000000\n",
        )
        .unwrap();
        assert_eq!(r.fp16_bytes(), 4_000_000_000);
        let fits: Vec<(String, bool)> = r
            .device_fits()
            .into_iter()
            .map(|f| (f.device, f.fits))
            .collect();
        assert_eq!(fits[0], ("Orin Nano 8 GB".to_string(), true));
        assert!(fits.iter().all(|(_, ok)| *ok));
        let big = RealSize {
            parameters: [("denoiser".to_string(), 13_000_000_000)].into(),
            ..r
        };
        let f = big.device_fits();
        assert!(!f[0].fits && !f[1].fits && f[2].fits && f[3].fits);
    }

    #[test]
    fn mem_available_is_read_in_bytes() {
        let text = "MemTotal:       16314584 kB\nMemFree:  100 kB\nMemAvailable:    8000000 kB\n";
        assert_eq!(mem_available(text), Some(8_000_000 * 1024));
        assert_eq!(mem_available("MemTotal: 1 kB\n"), None);
    }

    #[test]
    fn a_configured_budget_wins() {
        let b = MemoryBudget::detect(Some(3), true).unwrap();
        assert_eq!(b.bytes, 3 * 1024 * 1024);
        assert_eq!(b.source, "configured budget");
        let auto = MemoryBudget::detect(None, false).unwrap();
        assert!(auto.bytes > 0 && auto.source.contains("MemAvailable"));
    }

    #[test]
    fn the_first_component_that_does_not_fit_is_named_with_its_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let m = Manifest::parse(
            include_str!("testdata/manifest.toml"),
            Path::new("manifest.toml"),
        )
        .unwrap();
        for (_, c) in m.components.iter() {
            std::fs::write(dir.path().join(&c.file), vec![0u8; 10_000]).unwrap();
        }
        let big = MemoryBudget {
            bytes: 1 << 30,
            source: "configured budget".into(),
        };
        let p = plan(&m, dir.path(), big).unwrap();
        p.check().unwrap();
        assert_eq!(p.components[0].component, "denoiser");
        // denoiser io: latents, timestep, first frame, pose maps, output
        // = (2048 + 1 + 256 + 512 + 2048) float32 values, times the factor 4
        let d = &p.components[0];
        assert_eq!(d.weights_bytes, 10_000);
        assert_eq!(d.activation_bytes, (2048 + 1 + 256 + 512 + 2048) * 4 * 4);
        let tight = MemoryBudget {
            bytes: d.total_bytes - 1,
            source: "configured budget".into(),
        };
        let p = plan(&m, dir.path(), tight).unwrap();
        let err = p.check().unwrap_err().to_string();
        assert!(
            err.contains("`denoiser`")
                && err.contains("85.8 KiB are available")
                && err.contains("configured budget"),
            "{err}"
        );
    }
}
