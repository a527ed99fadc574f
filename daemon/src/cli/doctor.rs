//! `kissbooth doctor`: checks what the booth needs and says what to fix.

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kissbooth_engines::manifest::{self, Manifest};

use crate::paths::Common;

struct Report {
    problems: usize,
}

impl Report {
    fn ok(&self, what: &str, detail: impl std::fmt::Display) {
        println!("ok    {what:<10} {detail}");
    }
    fn warn(&self, what: &str, detail: impl std::fmt::Display) {
        println!("note  {what:<10} {detail}");
    }
    fn fix(&mut self, what: &str, detail: impl std::fmt::Display) {
        self.problems += 1;
        println!("FIX   {what:<10} {detail}");
    }
}

pub fn run(common: &Common, camera: Option<String>) -> anyhow::Result<ExitCode> {
    let mut r = Report { problems: 0 };
    println!("kissbooth {} doctor", env!("CARGO_PKG_VERSION"));
    runtime_and_models(&mut r, common);
    encoders(&mut r);
    camera_check(&mut r, camera);
    machine(&mut r, common);
    c2pa_key(&mut r, &common.data);
    match crate::net::lan_address() {
        Some(ip) => r.ok("network", format!("guests reach the booth at {ip}")),
        None => r.fix("network", "no network address: guests cannot download; connect Ethernet or enable the booth's Wi-Fi hotspot"),
    }
    if r.problems > 0 {
        println!("{} thing(s) to fix", r.problems);
        return Ok(ExitCode::from(1));
    }
    println!("all good");
    Ok(ExitCode::SUCCESS)
}

/// ONNX Runtime, the face pack's files and the execution provider.
fn runtime_and_models(r: &mut Report, common: &Common) {
    match common.runtime() {
        Ok(rt) => {
            r.ok(
                "runtime",
                format!(
                    "ONNX Runtime {} from {}",
                    rt.version(),
                    rt.library().display()
                ),
            );
            let models = common.models_dir();
            let m = Manifest::face_pack();
            let bad: Vec<String> = m
                .files
                .iter()
                .filter(|f| !f.optional)
                .filter_map(|f| {
                    manifest::check_installed(f, &models)
                        .err()
                        .map(|e| e.to_string())
                })
                .collect();
            if bad.is_empty() {
                r.ok(
                    "models",
                    format!("face pack verified in {}", models.display()),
                );
                match rt.session(&models.join("pfld-68.onnx")) {
                    Ok((_, info)) => {
                        let skipped: Vec<String> = info
                            .skipped
                            .iter()
                            .map(|(p, why)| format!("{p}: {why}"))
                            .collect();
                        r.ok(
                            "provider",
                            format!("{} ({} threads)", info.provider, info.threads),
                        );
                        if !skipped.is_empty() {
                            r.warn("provider", format!("skipped {}", skipped.join("; ")));
                        }
                    }
                    Err(e) => r.fix("provider", e),
                }
            } else {
                r.fix(
                    "models",
                    format!("{}; run `kissbooth models install`", bad.join("; ")),
                );
            }
        }
        Err(e) => r.fix("runtime", format!("{e:#}")),
    }
}

/// GStreamer and its H.264 encoders.
fn encoders(r: &mut Report) {
    match kissbooth_media::init() {
        Ok(()) => {
            let enc = kissbooth_media::available_encoders();
            if enc.is_empty() {
                r.fix("encoder", "no H.264 encoder: install gstreamer1.0-plugins-ugly (x264enc) or -bad (openh264enc)");
            } else {
                r.ok("encoder", format!("H.264 encoders: {}", enc.join(", ")));
            }
        }
        Err(e) => r.fix("encoder", format!("GStreamer: {e}")),
    }
}

/// The camera named on the command line (a frame within 5 s), else the plugged-in ones.
fn camera_check(r: &mut Report, camera: Option<String>) {
    let devices = kissbooth_capture::list_v4l2_devices();
    let spec = camera.unwrap_or_default();
    if !spec.is_empty() {
        match spec.parse::<kissbooth_capture::CameraSpec>() {
            Ok(s) => match s.build(kissbooth_capture::CameraContext::default()) {
                Ok(cam) => {
                    let frame = cam.wait_newer(0, Duration::from_secs(5));
                    match frame {
                        Some(f) => r.ok(
                            "camera",
                            format!("{s}: {}x{}", f.image.width(), f.image.height()),
                        ),
                        None => r.fix("camera", format!("{s}: no frame within 5 s")),
                    }
                }
                Err(e) => r.fix("camera", format!("{s}: {e}")),
            },
            Err(e) => r.fix("camera", format!("{spec:?}: {e}")),
        }
    } else if devices.is_empty() {
        r.warn("camera", "no V4L2 camera plugged in; the booth will use the stills in DATA/demo or a test pattern");
    } else {
        r.ok(
            "camera",
            format!(
                "V4L2: {}",
                devices
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }
}

/// Telemetry, free disk and the clock.
fn machine(r: &mut Report, common: &Common) {
    // Health figures: NVML on a discrete GPU, else Jetson sysfs, else none (CPU only).
    let tel = crate::telemetry::Telemetry::open(Path::new("/"), true);
    match tel.read().hottest() {
        Some(t) => r.ok(
            "telemetry",
            format!("{}; hottest {t:.1} °C", tel.describe()),
        ),
        None => r.warn("telemetry", tel.describe()),
    }

    let data = &common.data;
    match crate::sys::free_bytes(data) {
        Some(free) if free < 2 << 30 => r.fix(
            "disk",
            format!(
                "{} has {} MiB free; keep at least 2 GiB for a night of clips",
                data.display(),
                free >> 20
            ),
        ),
        Some(free) => r.ok(
            "disk",
            format!("{} MiB free in {}", free >> 20, data.display()),
        ),
        None => r.warn(
            "disk",
            format!(
                "{} does not exist yet (created at first start)",
                data.display()
            ),
        ),
    }

    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    // 2025-01-01: a clock before that has not been set (no RTC battery, no network time).
    if now < 1_735_689_600 {
        r.fix("clock", "the system clock is not set: link expiry and deletion times would be wrong; enable NTP or set the time");
    } else {
        r.ok("clock", format!("{} s since the epoch", now));
    }
}

/// The booth's Content Credentials key: there and usable, not made yet, or what to do.
fn c2pa_key(r: &mut Report, data: &Path) {
    use crate::clip::provenance::{BoothSigner, key_dir, key_path};
    let dir = key_dir(data);
    // The key is readable by the daemon's user only.
    let not_ours = || {
        std::fs::File::open(key_path(data))
            .is_err_and(|e| e.kind() == std::io::ErrorKind::PermissionDenied)
    };
    match BoothSigner::open(data) {
        Ok(Some(_)) => r.ok("c2pa", format!("Content Credentials key in {}", dir.display())),
        Ok(None) => r.warn(
            "c2pa",
            "no Content Credentials key yet: the daemon makes one at its first start",
        ),
        Err(_) if not_ours() => r.warn(
            "c2pa",
            format!(
                "the key in {} is readable by the daemon's user only: run doctor as that user to check it",
                dir.display()
            ),
        ),
        Err(e) => r.fix(
            "c2pa",
            format!(
                "{e:#}: clips are published without Content Credentials; move {} aside and restart the daemon to make a new key",
                dir.display()
            ),
        ),
    }
}
