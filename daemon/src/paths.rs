//! Where the booth keeps and finds things: the data folder, the models folder, the runtime.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use kissbooth_engines::runtime::{Provider, Runtime, RuntimeConfig};

#[derive(Args, Debug, Clone)]
pub struct Common {
    /// Data folder (captures, videos, database, installed models).
    #[arg(long, global = true, env = "KISSBOOTH_DATA", default_value = "data")]
    pub data: PathBuf,
    /// Folder of model files; default: $KISSBOOTH_MODELS, else DATA/models.
    #[arg(long, global = true)]
    pub models: Option<PathBuf>,
    /// Path of libonnxruntime.so; default: $ORT_DYLIB_PATH, else the usual places.
    #[arg(long, global = true)]
    pub ort_library: Option<PathBuf>,
    /// Execution providers in order of preference (tensorrt, cuda, cpu).
    #[arg(long, global = true, value_delimiter = ',', value_parser = parse_provider)]
    pub providers: Option<Vec<Provider>>,
    /// Inference threads (0: one per core).
    #[arg(long, global = true, default_value_t = 0)]
    pub threads: usize,
}

fn parse_provider(s: &str) -> Result<Provider, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "tensorrt" | "trt" => Ok(Provider::Tensorrt),
        "cuda" => Ok(Provider::Cuda),
        "cpu" => Ok(Provider::Cpu),
        other => Err(format!("unknown provider {other:?} (tensorrt, cuda, cpu)")),
    }
}

impl Common {
    pub fn models_dir(&self) -> PathBuf {
        if let Some(m) = &self.models {
            return m.clone();
        }
        match std::env::var_os("KISSBOOTH_MODELS").filter(|v| !v.is_empty()) {
            Some(m) => PathBuf::from(m),
            None => self.data.join("models"),
        }
    }

    pub fn runtime_config(&self) -> RuntimeConfig {
        let mut cfg = RuntimeConfig {
            library: self.ort_library.clone(),
            threads: self.threads,
            ..Default::default()
        };
        if let Some(p) = &self.providers {
            cfg.providers = p.clone();
        }
        cfg
    }

    pub fn runtime(&self) -> anyhow::Result<&'static Runtime> {
        Runtime::init(&self.runtime_config()).context("cannot start ONNX Runtime")
    }
}
