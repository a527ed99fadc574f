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
            let builder = match self.register(builder, provider) {
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
    ) -> Result<SessionBuilder, Skip> {
        let available = |r: ort::Result<bool>| match r {
            Ok(true) => Ok(()),
            Ok(false) => Err(Skip::NotBuilt(format!(
                "not compiled into the ONNX Runtime library at {}",
                self.library.display()
            ))),
            Err(e) => Err(Skip::Failed(e.to_string())),
        };
        let dispatch = match provider {
            Provider::Cpu => return Ok(builder),
            Provider::Tensorrt => {
                available(ep::TensorRT::is_available())?;
                let mut trt = ep::TensorRT::default().with_fp16(self.config.tensorrt_fp16);
                if let Some(cache) = &self.config.tensorrt_cache {
                    let cache = cache.display().to_string();
                    trt = trt
                        .with_engine_cache(true)
                        .with_engine_cache_path(&cache)
                        .with_timing_cache(true)
                        .with_timing_cache_path(&cache);
                }
                trt.build().error_on_failure()
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
