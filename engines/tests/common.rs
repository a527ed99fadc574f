//! Shared test set-up: where the shared models and fixtures are, and the runtime.
#![allow(dead_code)]

use std::path::PathBuf;

use kissbooth_engines::runtime::{Runtime, RuntimeConfig};

pub fn shared() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared")
}

pub fn models_dir() -> PathBuf {
    std::env::var_os("KISSBOOTH_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| shared().join("models"))
}

pub fn fixtures() -> PathBuf {
    shared().join("fixtures/faces")
}

/// The models folder and the runtime, or `None` after saying loudly why the test is skipped.
pub fn setup(test: &str) -> Option<(PathBuf, &'static Runtime)> {
    let models = models_dir();
    if !models.join("pfld-68.onnx").is_file() {
        eprintln!(
            "SKIPPED {test}: shared models not found in {} (set KISSBOOTH_MODELS)",
            models.display()
        );
        return None;
    }
    match Runtime::init(&RuntimeConfig {
        threads: 2,
        ..Default::default()
    }) {
        Ok(rt) => Some((models, rt)),
        Err(e) => {
            eprintln!("SKIPPED {test}: {e}");
            None
        }
    }
}

/// As [`setup`], also requiring the given model files (face pack v2's); without one of them,
/// says loudly that `test` is skipped.
pub fn setup_with(test: &str, files: &[&str]) -> Option<(PathBuf, &'static Runtime)> {
    let (models, rt) = setup(test)?;
    if let Some(missing) = files.iter().find(|f| !models.join(f).is_file()) {
        eprintln!(
            "SKIPPED {test}: {missing} not found in {} (face pack v2; set KISSBOOTH_MODELS)",
            models.display()
        );
        return None;
    }
    Some((models, rt))
}

pub fn fixture_images() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}
