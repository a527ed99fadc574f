//! Replays every fuzz target's regression cases (`fuzz/regressions/TARGET/`, inputs that once
//! crashed it) and its seed corpus through the same entry functions the fuzz targets call
//! (`kissbooth::fuzz`), on the stable toolchain. `scripts/fuzz` runs the fuzzers themselves.
//!
//! With `KISSBOOTH_FUZZ_WRITE_SEEDS=DIR` the seeds are also written to `DIR/TARGET/`, which is
//! how `scripts/fuzz` makes its starting corpus.

mod support;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;

use kissbooth::fuzz;

fn regressions(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = fuzz::repo_root().join("fuzz/regressions").join(target);
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for e in entries.flatten() {
            let path = e.path();
            if path.is_file() {
                out.push((
                    path.display().to_string(),
                    std::fs::read(&path).expect("a regression case reads"),
                ));
            }
        }
    }
    out.sort();
    out
}

/// Runs `check` on every regression case and seed of `target`; a panic names the input.
fn replay(target: &str, check: impl Fn(&[u8])) -> (usize, usize) {
    let seeds = fuzz::seeds(target);
    assert!(!seeds.is_empty(), "{target} has no seeds");
    if let Some(dir) = std::env::var_os("KISSBOOTH_FUZZ_WRITE_SEEDS") {
        let dir = PathBuf::from(dir).join(target);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in &seeds {
            std::fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
        }
    }
    let regressions = regressions(target);
    for (name, bytes) in regressions.iter().chain(seeds.iter()) {
        if let Err(e) = catch_unwind(AssertUnwindSafe(|| check(bytes))) {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("{target}: input {name} fails: {msg}");
        }
    }
    eprintln!(
        "{target}: {} regression cases and {} seeds replayed",
        regressions.len(),
        seeds.len()
    );
    (regressions.len(), seeds.len())
}

#[test]
fn config_cases() {
    replay("config", fuzz::config);
}

#[test]
fn token_cases() {
    let store = fuzz::TokenStore::new().unwrap();
    replay("token", |d| store.check(d));
    // The property the target checks holds both ways: the live token opens, its neighbours not.
    let mut near = store.live.clone().into_bytes();
    near[0] ^= 1;
    store.check(&near);
}

#[test]
fn range_cases() {
    if !support::have_models("range_cases") {
        return;
    }
    let server = fuzz::RangeServer::start(support::models_dir()).unwrap();
    replay("range", |d| server.check(d));
}

#[test]
fn overlay_png_cases() {
    replay("overlay_png", fuzz::overlay_png);
}

#[test]
fn face_image_cases() {
    replay("face_image", fuzz::face_image);
}

#[test]
fn camera_jpeg_cases() {
    replay("camera_jpeg", fuzz::camera_jpeg);
}

#[test]
fn every_regression_folder_is_a_target() {
    let dir = fuzz::repo_root().join("fuzz/regressions");
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        if !e.path().is_dir() {
            continue;
        }
        let name = e.file_name().to_string_lossy().into_owned();
        assert!(
            fuzz::TARGETS.contains(&name.as_str()),
            "fuzz/regressions/{name} is not a fuzz target"
        );
    }
}
