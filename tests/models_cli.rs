//! `kissbooth models install|verify` as an operator runs them.

mod support;

use support::*;

#[test]
fn installs_from_a_folder_then_verifies_and_analyses_with_the_installed_pack() {
    if !have_models("installs_from_a_folder_then_verifies_and_analyses_with_the_installed_pack") {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let o = kissbooth()
        .env_remove("KISSBOOTH_MODELS")
        .arg("--data")
        .arg(data.path())
        .args(["models", "install", "--from"])
        .arg(models_dir())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    for f in [
        "pfld-68.onnx",
        "face-mesh-468.onnx",
        "selfie-segmentation-256.onnx",
    ] {
        assert!(out.contains(&format!("installed {f}")), "{out}");
    }
    let o = kissbooth()
        .env_remove("KISSBOOTH_MODELS")
        .arg("--data")
        .arg(data.path())
        .args(["models", "verify"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    let o = kissbooth()
        .env_remove("KISSBOOTH_MODELS")
        .arg("--data")
        .arg(data.path())
        .args(["faces", "--json"])
        .arg(fixture("couple_1280x720.jpg"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // an altered file is caught by verify
    std::fs::write(data.path().join("models/face3d-68.csv"), "x,y,z\n").unwrap();
    let o = kissbooth()
        .env_remove("KISSBOOTH_MODELS")
        .arg("--data")
        .arg(data.path())
        .args(["models", "verify"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("BAD      face3d-68.csv"));
}

#[test]
fn install_from_a_folder_missing_a_file_changes_nothing() {
    if !have_models("install_from_a_folder_missing_a_file_changes_nothing") {
        return;
    }
    let src = tempfile::tempdir().unwrap();
    std::fs::copy(
        models_dir().join("ultraface-rfb-320.onnx"),
        src.path().join("ultraface-rfb-320.onnx"),
    )
    .unwrap();
    let dest = tempfile::tempdir().unwrap();
    let o = kissbooth()
        .args(["models", "install", "--from"])
        .arg(src.path())
        .arg("--dest")
        .arg(dest.path())
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("pfld-68.onnx") && err.contains("nothing was changed"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(dest.path()).unwrap().count(), 0);
}

#[test]
fn converted_models_from_upstream_are_refused_with_how_to_convert_them() {
    // No ONNX file of the mesh is published anywhere: the installer says how to make one before
    // it downloads anything, and changes nothing.
    let dest = tempfile::tempdir().unwrap();
    let o = kissbooth()
        .args(["models", "install", "--dest"])
        .arg(dest.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("face-mesh-468.onnx")
            && err.contains("mediapipe 0.10.21")
            && err.contains("scripts/convert-models")
            && err.contains("--from")
            && err.contains("nothing was changed"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(dest.path()).unwrap().count(), 0);
}

#[test]
fn build_engines_without_tensorrt_says_why_and_writes_nothing() {
    let test = "build_engines_without_tensorrt_says_why_and_writes_nothing";
    let dir = tempfile::tempdir().unwrap();
    let Some(pack) = write_tiny_pack(dir.path(), &[], test) else {
        return;
    };
    let before = tree(dir.path());
    let o = kissbooth()
        .args(["models", "build-engines", "--pack"])
        .arg(&pack)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    let out = String::from_utf8_lossy(&o.stdout);
    if o.status.success() {
        // A machine with TensorRT: every component reports its build and the caches exist.
        for c in ["vae_encoder", "denoiser", "vae_decoder"] {
            assert!(out.contains(&format!("{c}: ")), "{out}");
        }
        assert!(pack.join("trt-cache").is_dir());
        eprintln!("NOTE {test}: TensorRT is available here; engines were built:\n{out}");
        return;
    }
    assert_eq!(o.status.code(), Some(2), "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {err}");
    assert!(
        lines[0].contains("TensorRT provider is not available")
            && lines[0].contains("libonnxruntime_providers_tensorrt.so")
            && lines[0].contains("libnvinfer.so"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(out.is_empty(), "{out}");
    assert_eq!(tree(dir.path()), before, "build-engines wrote something");
}

#[test]
fn verify_pack_prints_the_memory_plan_and_a_small_budget_names_the_denoiser() {
    let test = "verify_pack_prints_the_memory_plan_and_a_small_budget_names_the_denoiser";
    let dir = tempfile::tempdir().unwrap();
    let Some(pack) = write_tiny_pack(dir.path(), &[], test) else {
        return;
    };
    let verify = |budget: &str| {
        kissbooth()
            .args([
                "models",
                "verify",
                "--json",
                "--memory-budget-mb",
                budget,
                "--pack",
            ])
            .arg(&pack)
            .output()
            .unwrap()
    };
    let o = verify("1024");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ok"], true);
    let comps = v["memory"]["components"].as_array().unwrap();
    let names: Vec<&str> = comps
        .iter()
        .map(|c| c["component"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["denoiser", "vae_decoder", "vae_encoder"]);
    let den = &comps[0];
    assert_eq!(
        den["weights_bytes"].as_u64().unwrap(),
        std::fs::metadata(pack.join("denoiser.onnx")).unwrap().len()
    );
    assert_eq!(
        den["total_bytes"].as_u64().unwrap(),
        den["weights_bytes"].as_u64().unwrap() + den["activation_bytes"].as_u64().unwrap()
    );
    assert_eq!(v["memory"]["budget"]["bytes"], 1024u64 * 1024 * 1024);

    let o = verify("0");
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("`denoiser` does not fit in memory")
            && err.contains("KiB")
            && err.contains("configured budget"),
        "{err}"
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ok"], false);
}

fn converted_pack(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../engines/tests/packs")
        .join(name)
}

#[test]
fn check_reference_matches_diffusers_on_both_converted_tiny_packs() {
    for name in ["ltx-tiny", "svd-tiny"] {
        let o = kissbooth()
            .args(["models", "check-reference", "--json", "--pack"])
            .arg(converted_pack(name))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{name}: {err}");
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let diff = v["comparison"]["max_abs_diff"].as_f64().unwrap();
        assert!(diff < 1e-3, "{name}: {diff}");
        assert_eq!(v["ok"], true);
    }
}

#[test]
fn check_reference_exits_non_zero_when_the_frames_differ() {
    let dir = tempfile::tempdir().unwrap();
    let pack = dir.path().join("svd-tiny");
    copy_dir(&converted_pack("svd-tiny"), &pack);
    // diffusers' frames, one value moved by 0.01
    let frames = pack.join("reference/frames.f32");
    let mut bytes = std::fs::read(&frames).unwrap();
    let v = f32::from_le_bytes(bytes[40..44].try_into().unwrap()) + 0.01;
    bytes[40..44].copy_from_slice(&v.to_le_bytes());
    std::fs::write(&frames, bytes).unwrap();
    let o = kissbooth()
        .args(["models", "check-reference", "--pack"])
        .arg(&pack)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{out}{err}");
    assert!(
        out.contains("largest absolute difference from diffusers 1.0")
            && out.contains("ABOVE THE TOLERANCE"),
        "{out}"
    );
}

#[test]
fn verify_prints_the_real_size_against_each_jetson() {
    let o = kissbooth()
        .args(["models", "verify", "--pack"])
        .arg(converted_pack("ltx-tiny"))
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("real size: LTX-Video"), "{out}");
    for device in [
        "Orin Nano 8 GB",
        "Orin NX 16 GB",
        "AGX Orin 32 GB",
        "AGX Orin 64 GB",
    ] {
        assert!(out.contains(device), "{out}");
    }
    assert!(out.contains("5 s (121 frames)"), "{out}");
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}
