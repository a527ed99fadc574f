//! Thermal throttling end to end: the real daemon reads a sysfs tree laid out like a Jetson's,
//! whose temperature the test rewrites while couples use the booth. Above the soft limit clips
//! are rendered smaller; above the hard limit new clips wait in the queue ("cooling down") and
//! start once the temperature is under the limit minus the hysteresis; nothing is dropped.

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::*;

fn set_temp(root: &Path, celsius: f64) {
    let zone = root.join("sys/class/thermal/thermal_zone0");
    std::fs::create_dir_all(&zone).unwrap();
    std::fs::write(zone.join("type"), "gpu-thermal\n").unwrap();
    // Written whole under another name and renamed, as the kernel's file never reads half.
    std::fs::write(
        zone.join("temp.new"),
        format!("{}\n", (celsius * 1000.0) as i64),
    )
    .unwrap();
    std::fs::rename(zone.join("temp.new"), zone.join("temp")).unwrap();
}

fn metric(d: &Daemon, name: &str) -> Option<f64> {
    let (_, m) = d.get_json("/metrics");
    m.as_str()?
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} "))?.trim().parse().ok())
}

fn wait_throttle(d: &Daemon, level: f64) {
    let t = Instant::now();
    while metric(d, "kissbooth_thermal_throttle") != Some(level) {
        assert!(t.elapsed().as_secs() < 20, "throttle never reached {level}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits for the clip and returns its poster's size (the render size).
fn finished_size(d: &Daemon, id: &str) -> (u32, u32) {
    let v = d.wait_done(id, 120);
    let url = v["download_url"].as_str().unwrap();
    let mut r = agent().get(&format!("{url}/poster.jpg")).call().unwrap();
    assert_eq!(r.status(), 200);
    let jpg = r.body_mut().read_to_vec().unwrap();
    let img = image::load_from_memory(&jpg).unwrap();
    (img.width(), img.height())
}

#[test]
fn a_hot_booth_renders_smaller_then_waits_to_cool_and_loses_no_clip() {
    if !have_models("a_hot_booth_renders_smaller_then_waits_to_cool_and_loses_no_clip") {
        return;
    }
    let sys = tempfile::tempdir().unwrap();
    set_temp(sys.path(), 50.0);
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        cfg_dir.path(),
        &format!(
            "[render]\nseconds = 3.0\nfps = 8\nwidth = 384\nheight = 384\n\
             [thermal]\nsysfs_root = {:?}\nsoft_limit_c = 80.0\nhard_limit_c = 90.0\n\
             hysteresis_c = 5.0\nsoft_scale = 0.75\npoll_ms = 200\n",
            sys.path().display().to_string()
        ),
    );
    let d = Daemon::start(&[fixture("couple_1280x720.jpg")], &["--config", &cfg]);
    // One log line names the telemetry source and why.
    let log = d.log();
    if Path::new("/proc/driver/nvidia/version").exists() {
        assert!(log.contains("telemetry source: nvml (NVML: "), "{log}");
    } else {
        assert!(
            log.contains("telemetry source: sysfs (1 thermal zone(s) under")
                && log.contains("NVML unavailable"),
            "{log}"
        );
    }

    // The kiosk's event stream, read as the kiosk reads it.
    let (tx, events) = mpsc::channel::<String>();
    let url = d.url("/api/events");
    std::thread::spawn(move || {
        let mut r = agent().get(&url).call().unwrap();
        let reader = BufReader::new(r.body_mut().as_reader());
        for line in reader.lines() {
            let Ok(line) = line else { return };
            if let Some(data) = line.strip_prefix("data:")
                && tx.send(data.trim().to_string()).is_err()
            {
                return;
            }
        }
    });

    // Cool: full size.
    assert_eq!(metric(&d, "kissbooth_thermal_throttle"), Some(0.0));
    assert_eq!(
        metric(&d, "kissbooth_temperature_hottest_celsius"),
        Some(50.0)
    );
    let id = d.start_render();
    assert_eq!(finished_size(&d, &id), (384, 384));

    // Over the soft limit: a step down (0.75 × 384 = 288).
    set_temp(sys.path(), 85.0);
    wait_throttle(&d, 1.0);
    let id = d.start_render();
    assert_eq!(finished_size(&d, &id), (288, 288));

    // Over the hard limit: the clip waits in the queue and the kiosk says why.
    set_temp(sys.path(), 95.0);
    wait_throttle(&d, 2.0);
    let (_, status) = d.get_json("/api/status");
    assert_eq!(status["thermal"]["throttle"], "paused", "{status}");
    assert_eq!(status["thermal"]["hottest_c"], 95.0, "{status}");
    let waiting: Vec<String> = (0..2).map(|_| d.start_render()).collect();
    std::thread::sleep(Duration::from_secs(2));
    for id in &waiting {
        let (_, v) = d.get_json(&format!("/api/sessions/{id}"));
        assert_eq!(v["state"], "queued", "{v}");
        assert_eq!(v["cooling"], true, "{v}");
        assert_eq!(v["throttle"], "paused", "{v}");
        assert!(v["eta_s"].is_null(), "no estimate while cooling: {v}");
    }
    // A third couple changes their mind while waiting: their clip leaves the queue and its job
    // is closed (a restart does not bring it back).
    let changed_mind = d.start_render();
    let (st, v) = d.post(&format!("/api/sessions/{changed_mind}/cancel"));
    assert_eq!((st, v["state"].as_str()), (200, Some("cancelled")), "{v}");
    let db = rusqlite::Connection::open(d.data.path().join("kissbooth.sqlite")).unwrap();
    let job: String = db
        .query_row(
            "SELECT state FROM jobs WHERE session_id = ?1",
            [&changed_mind],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(job, "failed", "the cancelled clip's job is closed");
    assert_eq!(metric(&d, "kissbooth_render_queue_depth"), Some(2.0));
    // Under the hard limit but not by the hysteresis: still waiting.
    set_temp(sys.path(), 87.0);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(metric(&d, "kissbooth_thermal_throttle"), Some(2.0));
    let (_, v) = d.get_json(&format!("/api/sessions/{}", waiting[0]));
    assert_eq!(v["state"], "queued", "{v}");

    // Cooled down: both clips render, at full size again.
    set_temp(sys.path(), 70.0);
    wait_throttle(&d, 0.0);
    for id in &waiting {
        assert_eq!(finished_size(&d, id), (384, 384));
    }

    let seen: Vec<String> = events.try_iter().collect();
    assert!(
        seen.iter()
            .any(|e| e.contains(r#""type":"thermal""#) && e.contains(r#""throttle":"paused""#)),
        "no thermal event: {seen:?}"
    );
    assert!(
        seen.iter()
            .any(|e| e.contains(&waiting[0]) && e.contains(r#""cooling":true"#)),
        "no session event saying it waits to cool: {seen:?}"
    );
    assert!(
        seen.iter()
            .any(|e| e.contains(&waiting[0]) && e.contains(r#""state":"done""#)),
        "{seen:?}"
    );
}
