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
    assert!(String::from_utf8_lossy(&o.stdout).contains("installed pfld-68.onnx"));
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
