//! The converted tiny packs (`scripts/convert-pack ltx|svd --tiny`, checked in under
//! `tests/packs/`) run by the Rust pipeline give diffusers' frames for the same picture, seed
//! and noise: the largest absolute difference in FP32 is under the pack's tolerance (1e-3).
//! Needs ONNX Runtime (skipped loudly without it), never torch.

use std::path::PathBuf;

use kissbooth_engines::diffusion::{DiffusionGenerator, Pack};
use kissbooth_engines::runtime::{Provider, Runtime, RuntimeConfig};

fn runtime(test: &str) -> Option<&'static Runtime> {
    match Runtime::init(&RuntimeConfig {
        threads: 2,
        providers: vec![Provider::Cpu],
        ..Default::default()
    }) {
        Ok(rt) => Some(rt),
        Err(e) => {
            eprintln!("SKIPPED {test}: {e}");
            None
        }
    }
}

fn pack_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/packs")
        .join(name)
}

fn matches_diffusers(test: &str, name: &str) {
    let Some(rt) = runtime(test) else { return };
    let pack = Pack::load(&pack_dir(name), rt).unwrap();
    let mut generator = DiffusionGenerator::new(pack);
    let c = generator.check_reference().unwrap();
    eprintln!(
        "{name}: max abs diff {:e}, mean {:e} over {} values, {} steps",
        c.max_abs_diff, c.mean_abs_diff, c.values, c.steps
    );
    assert!(c.steps > 0);
    assert!(
        c.passed(),
        "{name}: max abs diff {} > {}",
        c.max_abs_diff,
        c.tolerance
    );
}

#[test]
fn ltx_video_tiny_pack_gives_diffusers_frames() {
    matches_diffusers("ltx_video_tiny_pack_gives_diffusers_frames", "ltx-tiny");
}

#[test]
fn stable_video_diffusion_tiny_pack_gives_diffusers_frames() {
    matches_diffusers(
        "stable_video_diffusion_tiny_pack_gives_diffusers_frames",
        "svd-tiny",
    );
}

#[test]
fn the_checked_in_tiny_packs_are_small() {
    let mut total = 0;
    for name in ["ltx-tiny", "svd-tiny"] {
        for entry in walk(&pack_dir(name)) {
            total += std::fs::metadata(entry).unwrap().len();
        }
    }
    assert!(total < 2 * 1024 * 1024, "{total} bytes");
}

fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn external_weights_are_checked_by_their_sha256() {
    let tmp = tempfile::tempdir().unwrap();
    let src = pack_dir("ltx-tiny");
    for e in walk(&src) {
        let to = tmp.path().join(e.strip_prefix(&src).unwrap());
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&e, to).unwrap();
    }
    std::fs::write(tmp.path().join("vae_encoder.onnx.data"), b"weights").unwrap();
    let manifest = tmp.path().join("manifest.toml");
    let text = std::fs::read_to_string(&manifest).unwrap().replacen(
        "[[components.vae_encoder.inputs]]",
        "[[components.vae_encoder.external_data]]\nfile = \"vae_encoder.onnx.data\"\nsha256 = \"00\"\n\n[[components.vae_encoder.inputs]]",
        1,
    );
    std::fs::write(&manifest, text).unwrap();
    let options = kissbooth_engines::diffusion::LoadOptions {
        memory_budget_mib: Some(1024),
    };
    let err = kissbooth_engines::diffusion::pack::check(tmp.path(), &options, false)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("vae_encoder.onnx.data") && err.contains("sha256"),
        "{err}"
    );
}
