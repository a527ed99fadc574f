//! Shared helpers for the end-to-end tests: the real `kissbooth` binary, the shared models and
//! fixtures.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

pub fn shared() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared")
}

pub fn models_dir() -> PathBuf {
    std::env::var_os("KISSBOOTH_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| shared().join("models"))
}

pub fn fixture(name: &str) -> PathBuf {
    shared().join("fixtures/faces").join(name)
}

/// True when the shared models are present; otherwise says loudly that `test` is skipped.
pub fn have_models(test: &str) -> bool {
    let ok = models_dir().join("pfld-68.onnx").is_file();
    if !ok {
        eprintln!(
            "SKIPPED {test}: shared models not found in {} (set KISSBOOTH_MODELS)",
            models_dir().display()
        );
    }
    ok
}

pub fn kissbooth() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kissbooth"));
    c.env("KISSBOOTH_MODELS", models_dir());
    c
}

pub fn stderr_lines(o: &Output) -> Vec<String> {
    String::from_utf8_lossy(&o.stderr)
        .lines()
        .map(str::to_owned)
        .collect()
}
