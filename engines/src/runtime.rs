//! ONNX Runtime, loaded dynamically, and the choice of execution provider.
//!
//! The library is found in this order: the path in the configuration, `ORT_DYLIB_PATH`, then the
//! usual places (beside the executable, `/usr/lib/kissbooth`, the system library folders, and the
//! `onnxruntime` Python wheel's `capi/` folder). Every path tried is named in the error when none
//! loads, so a missing or too old library is a clear message, never a panic.
//!
//! Providers are tried in the configured order (default TensorRT → CUDA → CPU). A provider that
//! is not compiled into the library, or that fails to register (no driver, no GPU), is skipped
//! with a logged reason; the reasons are kept in [`SessionInfo`] so `doctor` and the API can show
//! them.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::ep::{self, ExecutionProvider};
use ort::session::Session;
use ort::session::builder::{GraphOptimizationLevel, SessionBuilder};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// An execution provider that a session may run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// TensorRT (FP16 when enabled), with engine and timing caches.
    Tensorrt,
    /// CUDA.
    Cuda,
    /// The CPU provider, always available.
    Cpu,
}

impl Provider {
    pub fn name(self) -> &'static str {
        match self {
            Provider::Tensorrt => "tensorrt",
            Provider::Cuda => "cuda",
            Provider::Cpu => "cpu",
        }
    }
}

impl std::fmt::Display for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// TensorRT execution provider settings for one session, as derived from a diffusion pack's
/// manifest (`[tensorrt]`, see `diffusion::tensorrt`). Plain data, so what a manifest asks for
/// can be checked without a GPU; [`TensorRtOptions::to_provider`] turns it into ort's builder.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct TensorRtOptions {
    pub fp16: bool,
    pub int8: bool,
    /// File name of the INT8 calibration table inside `engine_cache` (ONNX Runtime looks it up
    /// there).
    pub int8_calibration_table: Option<String>,
    /// Where the calibration table is copied from into `engine_cache`.
    pub int8_calibration_source: Option<PathBuf>,
    /// Engine cache folder (created when the session is opened with TensorRT).
    pub engine_cache: Option<PathBuf>,
    /// Timing cache folder.
    pub timing_cache: Option<PathBuf>,
    /// Minimum, optimum and maximum input shapes (`name:1x8x4x64x64,...`) for the optimisation
    /// profile of dynamic inputs; empty when every input is fixed.
    pub profile_shapes: String,
}

impl TensorRtOptions {
    /// ort's TensorRT provider with these options.
    pub fn to_provider(&self) -> ep::TensorRT {
        let mut trt = ep::TensorRT::default()
            .with_fp16(self.fp16)
            .with_int8(self.int8);
        if let Some(table) = &self.int8_calibration_table {
            trt = trt
                .with_int8_calibration_table_name(table)
                .with_int8_use_native_calibration_table(false);
        }
        if let Some(dir) = &self.engine_cache {
            trt = trt
                .with_engine_cache(true)
                .with_engine_cache_path(dir.display());
        }
        if let Some(dir) = &self.timing_cache {
            trt = trt
                .with_timing_cache(true)
                .with_timing_cache_path(dir.display());
        }
        if !self.profile_shapes.is_empty() {
            trt = trt
                .with_profile_min_shapes(&self.profile_shapes)
                .with_profile_opt_shapes(&self.profile_shapes)
                .with_profile_max_shapes(&self.profile_shapes);
        }
        trt
    }

    /// The settings of a session opened without a pack: the runtime configuration's.
    fn from_config(config: &RuntimeConfig) -> TensorRtOptions {
        TensorRtOptions {
            fp16: config.tensorrt_fp16,
            engine_cache: config.tensorrt_cache.clone(),
            timing_cache: config.tensorrt_cache.clone(),
            ..Default::default()
        }
    }
}

/// Runtime configuration (the `[runtime]` table of the daemon's configuration).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Path of `libonnxruntime.so*`. When unset: `ORT_DYLIB_PATH`, then the usual places.
    pub library: Option<PathBuf>,
    /// Providers in order of preference; the CPU provider is always the last resort.
    pub providers: Vec<Provider>,
    /// Intra-op threads per session; 0 means one per available core.
    pub threads: usize,
    /// Let TensorRT build FP16 engines.
    pub tensorrt_fp16: bool,
    /// Where TensorRT keeps its engine and timing caches; unset: no cache.
    pub tensorrt_cache: Option<PathBuf>,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            library: None,
            providers: vec![Provider::Tensorrt, Provider::Cuda, Provider::Cpu],
            threads: 0,
            tensorrt_fp16: true,
            tensorrt_cache: None,
        }
    }
}

impl RuntimeConfig {
    pub fn validate(&self) -> Result<(), RuntimeError> {
        if self.providers.is_empty() {
            return Err(RuntimeError::Config(
                "`providers` must name at least one provider".into(),
            ));
        }
        if self.threads > 256 {
            return Err(RuntimeError::Config(format!(
                "`threads` = {} is out of range (0..=256)",
                self.threads
            )));
        }
        Ok(())
    }

    fn thread_count(&self) -> usize {
        if self.threads > 0 {
            self.threads
        } else {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        }
    }
}

#[derive(Debug, Error)]
pub enum RuntimeError {
    #[error("ONNX Runtime library not found or not loadable; tried: {}. Install it (scripts/setup does) or set ORT_DYLIB_PATH", format_tried(.tried))]
    Library { tried: Vec<(PathBuf, String)> },
    #[error("runtime configuration: {0}")]
    Config(String),
    #[error("model file {path} is missing")]
    MissingModel { path: PathBuf },
    #[error("cannot load model {path}: {message}")]
    Model { path: PathBuf, message: String },
    #[error("ONNX Runtime: {0}")]
    Ort(String),
}

fn format_tried(tried: &[(PathBuf, String)]) -> String {
    if tried.is_empty() {
        return "nothing (no candidate path exists)".into();
    }
    tried
        .iter()
        .map(|(p, why)| format!("{} ({why})", p.display()))
        .collect::<Vec<_>>()
        .join("; ")
}

impl From<ort::Error> for RuntimeError {
    fn from(e: ort::Error) -> Self {
        RuntimeError::Ort(e.to_string())
    }
}

/// The loaded ONNX Runtime: one per process.
#[derive(Debug)]
pub struct Runtime {
    env: ort::environment::Environment,
    library: PathBuf,
    version: String,
    config: RuntimeConfig,
}

/// How a session ended up: on which provider, and why the preferred ones were skipped.
#[derive(Debug, Clone, Serialize)]
pub struct SessionInfo {
    pub provider: Provider,
    pub skipped: Vec<(Provider, String)>,
    pub threads: usize,
}

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

impl Runtime {
    /// Loads the library (once per process) and returns the shared runtime. A second call with
    /// another configuration returns the runtime of the first.
    pub fn init(config: &RuntimeConfig) -> Result<&'static Runtime, RuntimeError> {
        if let Some(rt) = RUNTIME.get() {
            return Ok(rt);
        }
        config.validate()?;
        let candidates = library_candidates(config.library.as_deref());
        let mut tried = Vec::new();
        for path in candidates {
            if !path.exists() {
                continue;
            }
            if !path.is_file() {
                tried.push((path, "not a file".into()));
                continue;
            }
            match ort::init_from(&path) {
                Ok(builder) => {
                    let env = builder
                        .with_name("kissbooth")
                        .with_telemetry(false)
                        .build()?;
                    let version = library_version(&path);
                    let rt = Runtime {
                        env,
                        library: path,
                        version,
                        config: config.clone(),
                    };
                    return Ok(RUNTIME.get_or_init(|| rt));
                }
                Err(e) => tried.push((path, e.to_string())),
            }
        }
        if tried.is_empty()
            && let Some(p) = config
                .library
                .clone()
                .or_else(|| std::env::var_os("ORT_DYLIB_PATH").map(PathBuf::from))
        {
            tried.push((p, "no such file".into()));
        }
        Err(RuntimeError::Library { tried })
    }

    pub fn library(&self) -> &Path {
        &self.library
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    /// Opens a model on the best provider that works, falling back along the configured order.
    pub fn session(&self, model: &Path) -> Result<(Session, SessionInfo), RuntimeError> {
        self.session_with(model, &self.config.providers)
    }

    /// As [`Runtime::session`], with an explicit provider order.
    pub fn session_with(
        &self,
        model: &Path,
        providers: &[Provider],
    ) -> Result<(Session, SessionInfo), RuntimeError> {
        self.session_tuned(model, providers, None)
    }

    /// Whether a provider can be registered with this library: `Ok(())`, or why not (for
    /// TensorRT and CUDA also which of their libraries is missing).
    pub fn provider_available(&self, provider: Provider) -> Result<(), String> {
        let r = match provider {
            Provider::Cpu => return Ok(()),
            Provider::Tensorrt => ep::TensorRT::is_available(),
            Provider::Cuda => ep::CUDA::is_available(),
        };
        match r {
            Ok(true) => Ok(()),
            Ok(false) => Err(missing_provider_reason(provider, &self.library)),
            Err(e) => Err(e.to_string()),
        }
    }

    /// As [`Runtime::session_with`], with TensorRT settings for this model (a pack's) instead
    /// of the runtime configuration's.
    pub fn session_tuned(
        &self,
        model: &Path,
        providers: &[Provider],
        tensorrt: Option<&TensorRtOptions>,
    ) -> Result<(Session, SessionInfo), RuntimeError> {
        if !model.is_file() {
            return Err(RuntimeError::MissingModel {
                path: model.to_path_buf(),
            });
        }
        let threads = self.config.thread_count();
        let mut skipped = Vec::new();
        let mut order: Vec<Provider> = providers.to_vec();
        if !order.contains(&Provider::Cpu) {
            order.push(Provider::Cpu);
        }
        for provider in order {
            let builder = self.base_builder(threads)?;
            let builder = match self.register(builder, provider, tensorrt) {
                Ok(b) => b,
                Err(Skip::NotBuilt(reason)) => {
                    tracing::info!(provider = provider.name(), %reason, "execution provider not available; falling back");
                    skipped.push((provider, reason));
                    continue;
                }
                Err(Skip::Failed(reason)) => {
                    tracing::warn!(provider = provider.name(), %reason, "execution provider failed; falling back");
                    skipped.push((provider, reason));
                    continue;
                }
            };
            let mut builder = builder;
            match builder.commit_from_file(model) {
                Ok(session) => {
                    if !skipped.is_empty() {
                        tracing::info!(provider = provider.name(), model = %model.display(), "session opened after fallback");
                    }
                    return Ok((
                        session,
                        SessionInfo {
                            provider,
                            skipped,
                            threads,
                        },
                    ));
                }
                Err(e) if provider == Provider::Cpu => {
                    return Err(RuntimeError::Model {
                        path: model.to_path_buf(),
                        message: e.to_string(),
                    });
                }
                Err(e) => {
                    let reason = format!("session creation failed: {e}");
                    tracing::warn!(provider = provider.name(), %reason, "execution provider unusable; falling back");
                    skipped.push((provider, reason));
                }
            }
        }
        Err(RuntimeError::Model {
            path: model.to_path_buf(),
            message: "no execution provider could open it".into(),
        })
    }

    fn base_builder(&self, threads: usize) -> Result<SessionBuilder, RuntimeError> {
        let b = Session::builder(&self.env)?;
        // Denormal floats in the landmark model's activations make every convolution about
        // 20 times slower on x86 (22 ms → 1.1 ms per face measured); flushing them to zero
        // changes no output beyond 1e-30.
        let b = b
            .with_config_entry("session.set_denormal_as_zero", "1")
            .map_err(|e| RuntimeError::Ort(e.to_string()))?;
        // ONNX Runtime's worker threads spin for a while after each run by default. On two
        // cores shared with our own threads (the mask's filter, the render, the encoder) the
        // spinning steals the CPU they need: bench faces measured 45-49 → 14-16 ms for face
        // analysis and 76-121 → 30-32 ms for the person mask without it.
        let b = b
            .with_config_entry("session.intra_op.allow_spinning", "0")
            .map_err(|e| RuntimeError::Ort(e.to_string()))?;
        let b = b
            .with_optimization_level(GraphOptimizationLevel::All)
            .map_err(|e| RuntimeError::Ort(e.to_string()))?;
        let b = b
            .with_intra_threads(threads)
            .map_err(|e| RuntimeError::Ort(e.to_string()))?;
        Ok(b)
    }

    fn register(
        &self,
        builder: SessionBuilder,
        provider: Provider,
        tensorrt: Option<&TensorRtOptions>,
    ) -> Result<SessionBuilder, Skip> {
        let available = |r: ort::Result<bool>| match r {
            Ok(true) => Ok(()),
            Ok(false) => Err(Skip::NotBuilt(missing_provider_reason(
                provider,
                &self.library,
            ))),
            Err(e) => Err(Skip::Failed(e.to_string())),
        };
        let dispatch = match provider {
            Provider::Cpu => return Ok(builder),
            Provider::Tensorrt => {
                available(ep::TensorRT::is_available())?;
                let opts = tensorrt
                    .cloned()
                    .unwrap_or_else(|| TensorRtOptions::from_config(&self.config));
                for dir in [&opts.engine_cache, &opts.timing_cache]
                    .into_iter()
                    .flatten()
                {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        Skip::Failed(format!("cannot create {}: {e}", dir.display()))
                    })?;
                }
                if let (Some(src), Some(name), Some(dir)) = (
                    &opts.int8_calibration_source,
                    &opts.int8_calibration_table,
                    &opts.engine_cache,
                ) {
                    std::fs::copy(src, dir.join(name)).map_err(|e| {
                        Skip::Failed(format!(
                            "cannot copy the calibration table {}: {e}",
                            src.display()
                        ))
                    })?;
                }
                opts.to_provider().build().error_on_failure()
            }
            Provider::Cuda => {
                available(ep::CUDA::is_available())?;
                ep::CUDA::default().build().error_on_failure()
            }
        };
        builder
            .with_execution_providers([dispatch])
            .map_err(|e| Skip::Failed(e.to_string()))
    }
}

/// Why the library cannot register `provider`: the provider's plugin library next to the ONNX
/// Runtime library, and the vendor library it loads, whichever is missing.
fn missing_provider_reason(provider: Provider, library: &Path) -> String {
    let (plugin, vendor, what) = match provider {
        Provider::Tensorrt => (
            "libonnxruntime_providers_tensorrt.so",
            "libnvinfer.so",
            "TensorRT",
        ),
        Provider::Cuda => (
            "libonnxruntime_providers_cuda.so",
            "libcudart.so",
            "the CUDA runtime",
        ),
        Provider::Cpu => return String::new(),
    };
    let dir = library.parent().unwrap_or(Path::new("."));
    let mut parts = vec![format!(
        "the ONNX Runtime library at {} was built without the {} execution provider",
        library.display(),
        provider.name()
    )];
    if !dir.join(plugin).exists() {
        parts.push(format!("{plugin} is not in {}", dir.display()));
    }
    if find_shared_library(vendor).is_none() {
        parts.push(format!(
            "{vendor} ({what}) is not in LD_LIBRARY_PATH or the system library folders"
        ));
    }
    parts.join("; ")
}

/// The first `NAME` or `NAME.*` in `LD_LIBRARY_PATH`, the ldconfig cache or the usual library
/// folders (Jetson's `/usr/lib/aarch64-linux-gnu` and CUDA's `/usr/local/cuda/lib64` included).
pub fn find_shared_library(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("LD_LIBRARY_PATH")
        .map(|v| std::env::split_paths(&v).collect())
        .unwrap_or_default();
    for d in [
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu/tegra",
        "/usr/local/cuda/lib64",
        "/usr/local/cuda/targets/aarch64-linux/lib",
        "/usr/lib",
        "/usr/local/lib",
        "/lib/x86_64-linux-gnu",
        "/lib/aarch64-linux-gnu",
    ] {
        dirs.push(d.into());
    }
    for d in &dirs {
        let Ok(rd) = std::fs::read_dir(d) else {
            continue;
        };
        let mut hits: Vec<PathBuf> = rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                    n == name || n.strip_prefix(name).is_some_and(|r| r.starts_with('.'))
                })
            })
            .collect();
        hits.sort();
        if let Some(h) = hits.pop() {
            return Some(h);
        }
    }
    None
}

/// Why a provider was passed over.
enum Skip {
    /// The library was built without it (expected on machines without the hardware).
    NotBuilt(String),
    /// It is built in but could not start (no driver, no device, broken install).
    Failed(String),
}

/// The places searched for the library, in order. A path given in the configuration or in
/// `ORT_DYLIB_PATH` is the only candidate: an operator who names a library gets that one or an
/// error, never a different one found elsewhere.
pub fn library_candidates(configured: Option<&Path>) -> Vec<PathBuf> {
    if let Some(p) = configured {
        return vec![p.to_path_buf()];
    }
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        return vec![PathBuf::from(p)];
    }
    let mut out = Vec::new();
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Ok(exe) = std::env::current_exe()
        && let Some(d) = exe.parent()
    {
        dirs.push(d.to_path_buf());
        dirs.push(d.join("lib"));
    }
    for d in [
        "/usr/lib/kissbooth",
        "/usr/local/lib",
        "/usr/lib",
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/opt/onnxruntime/lib",
    ] {
        dirs.push(PathBuf::from(d));
    }
    for d in &dirs {
        out.extend(versioned_libs(d));
    }
    // The PyPI wheel: site-packages/onnxruntime/capi/libonnxruntime.so.1.x.y
    for sp in python_site_dirs() {
        out.extend(versioned_libs(&sp.join("onnxruntime").join("capi")));
    }
    out
}

fn versioned_libs(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut libs: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n == "libonnxruntime.so" || n.starts_with("libonnxruntime.so."))
        })
        .collect();
    // Newest first: "libonnxruntime.so.1.31.1" sorts after "...so.1.20.0" by version.
    libs.sort_by_key(|p| std::cmp::Reverse(version_key(p)));
    libs
}

fn version_key(p: &Path) -> Vec<u32> {
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.trim_start_matches("libonnxruntime.so")
        .split('.')
        .filter_map(|s| s.parse().ok())
        .collect()
}

fn python_site_dirs() -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = vec!["/usr/lib/python3/dist-packages".into()];
    let mut globbed = |base: PathBuf, suffix: &str| {
        if let Ok(rd) = std::fs::read_dir(&base) {
            for e in rd.flatten() {
                let name = e.file_name();
                if name.to_string_lossy().starts_with("python3") {
                    roots.push(e.path().join(suffix));
                }
            }
        }
    };
    globbed("/usr/local/lib".into(), "site-packages");
    globbed("/usr/local/lib".into(), "dist-packages");
    globbed("/usr/lib".into(), "site-packages");
    if let Some(home) = std::env::var_os("HOME").map(PathBuf::from) {
        globbed(home.join(".local/lib"), "site-packages");
        if let Ok(rd) = std::fs::read_dir(home.join(".pyenv/versions")) {
            for e in rd.flatten() {
                globbed(e.path().join("lib"), "site-packages");
            }
        }
    }
    if let Some(venv) = std::env::var_os("VIRTUAL_ENV").map(PathBuf::from) {
        globbed(venv.join("lib"), "site-packages");
    }
    roots
}

fn library_version(path: &Path) -> String {
    let key = version_key(path);
    if key.len() >= 2 {
        key.iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(".")
    } else {
        "unknown".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_library_version_comes_first() {
        let dir = tempfile::tempdir().unwrap();
        for v in ["1.20.0", "1.31.1", "1.9.0"] {
            std::fs::write(dir.path().join(format!("libonnxruntime.so.{v}")), b"").unwrap();
        }
        let libs = versioned_libs(dir.path());
        let names: Vec<_> = libs
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "libonnxruntime.so.1.31.1",
                "libonnxruntime.so.1.20.0",
                "libonnxruntime.so.1.9.0"
            ]
        );
    }

    #[test]
    fn config_rejects_empty_provider_list() {
        let cfg = RuntimeConfig {
            providers: vec![],
            ..Default::default()
        };
        assert!(matches!(cfg.validate(), Err(RuntimeError::Config(_))));
    }

    #[test]
    fn config_from_toml_snippet_keeps_defaults() {
        let cfg: RuntimeConfig =
            toml::from_str("threads = 2\nproviders = [\"cuda\", \"cpu\"]").unwrap();
        assert_eq!(cfg.threads, 2);
        assert_eq!(cfg.providers, [Provider::Cuda, Provider::Cpu]);
        assert!(cfg.tensorrt_fp16);
        assert!(toml::from_str::<RuntimeConfig>("threads = 2\nbogus = 1").is_err());
    }
}
