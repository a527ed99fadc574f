//! Operations: the systemd units verify, `doctor` says what is fine and what to fix.

mod support;

use std::process::Command;

use support::*;

#[test]
fn the_systemd_units_pass_systemd_analyze_verify() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!(
            "SKIPPED the_systemd_units_pass_systemd_analyze_verify: systemd-analyze not installed"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let units = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../systemd");
    for unit in ["kissbooth.service", "kissbooth-kiosk.service"] {
        // verify checks that ExecStart exists: point it at the binary under test
        let text = std::fs::read_to_string(units.join(unit))
            .unwrap()
            .replace("/usr/bin/kissbooth", env!("CARGO_BIN_EXE_kissbooth"));
        let p = dir.path().join(unit);
        std::fs::write(&p, text).unwrap();
        let o = Command::new("systemd-analyze")
            .arg("verify")
            .arg(&p)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success() && !err.contains(unit), "{unit}: {err}");
    }
    let main = std::fs::read_to_string(units.join("kissbooth.service")).unwrap();
    for line in [
        "Type=notify",
        "WatchdogSec=",
        "Restart=on-failure",
        "User=kissbooth",
        "StateDirectory=kissbooth",
        "ProtectSystem=strict",
        // Enough files for every guest connection the server allows (1024) and the kiosk's.
        "LimitNOFILE=65536",
    ] {
        assert!(main.contains(line), "kissbooth.service lacks {line}");
    }
}

#[test]
fn doctor_reports_each_check_and_what_to_fix() {
    if !have_models("doctor_reports_each_check_and_what_to_fix") {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let o = kissbooth()
        .arg("--data")
        .arg(data.path())
        .args(["doctor", "--camera", "test"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    for check in [
        "runtime",
        "models",
        "provider",
        "encoder",
        "camera",
        "telemetry",
        "disk",
        "clock",
        "network",
    ] {
        assert!(
            out.lines().any(|l| l.contains(check)),
            "no {check} line in:\n{out}"
        );
    }
    assert!(out.contains("ok    models"), "{out}");
    // The telemetry source and why: NVML when a driver is loaded, else the fallback's reason.
    let tel = out.lines().find(|l| l.contains("telemetry")).unwrap();
    let nvml_here = std::path::Path::new("/proc/driver/nvidia/version").exists();
    if nvml_here {
        assert!(tel.contains("nvml (NVML: "), "{tel}");
    } else {
        assert!(
            (tel.contains("sysfs (") || tel.contains("cpu-only ("))
                && tel.contains("NVML unavailable"),
            "{tel}"
        );
    }
    assert!(
        out.contains("ok    camera") && out.contains("1280x720"),
        "{out}"
    );
    // broken models: a FIX line naming the remedy and a non-zero exit
    let empty = tempfile::tempdir().unwrap();
    let o = kissbooth()
        .env("KISSBOOTH_MODELS", empty.path())
        .arg("--data")
        .arg(data.path())
        .arg("doctor")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(!o.status.success());
    assert!(
        out.contains("FIX   models") && out.contains("kissbooth models install"),
        "{out}"
    );
}
