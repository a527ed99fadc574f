//! A night unattended: videos deleted on the timer and at boot, "end of event", and a daemon
//! killed in the middle of a render that heals on restart without ever serving a partial file.

mod support;

use std::path::Path;

use support::*;

fn config(dir: &Path, toml: &str) -> String {
    let p = dir.join("booth.toml");
    std::fs::write(&p, toml).unwrap();
    p.display().to_string()
}

/// Runs a whole session and returns (session id, download URL).
fn make_video(d: &Daemon) -> (String, String) {
    let (_, v) = d.post("/api/sessions");
    let id = v["id"].as_str().unwrap().to_string();
    d.post(&format!("/api/sessions/{id}/consent"));
    let (_, v) = d.post(&format!("/api/sessions/{id}/capture"));
    assert_eq!(v["verdict"]["ok"], true, "{v}");
    let (st, _) = d.post(&format!("/api/sessions/{id}/render"));
    assert_eq!(st, 202);
    let v = d.wait_session(&id, 180, |v| v["state"] == "done" || v["state"] == "failed");
    assert_eq!(v["state"], "done", "{v}");
    (id, v["download_url"].as_str().unwrap().to_string())
}

fn status_of(url: &str) -> u16 {
    agent().get(url).call().unwrap().status().as_u16()
}

fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.path().is_dir() {
                out.extend(files_under(&e.path()));
            } else {
                out.push(e.path().display().to_string());
            }
        }
    }
    out
}

#[test]
fn videos_are_deleted_on_the_timer_and_at_boot() {
    if !have_models("videos_are_deleted_on_the_timer_and_at_boot") {
        return;
    }
    let cfg_dir = tempfile::tempdir().unwrap();
    // 3.6 s retention, swept every second
    let cfg = config(
        cfg_dir.path(),
        "[privacy]\nretention_hours = 0.001\npurge_interval_s = 1\n",
    );
    let d = Daemon::start(&[fixture("couple_1280x720.jpg")], &["--config", &cfg]);
    let (id, url) = make_video(&d);
    assert_eq!(status_of(&format!("{url}/video.mp4")), 200);
    let v = d.wait_session(&id, 30, |v| v["state"] == "expired");
    assert!(v["download_url"].is_null());
    assert_eq!(status_of(&url), 404);
    assert_eq!(status_of(&format!("{url}/video.mp4")), 404);
    assert!(
        files_under(&d.data.path().join("sessions")).is_empty(),
        "{:?}",
        files_under(&d.data.path().join("sessions"))
    );

    // At boot: a video made under a long retention, then the booth restarted with a short one
    // after the video's time is up, is gone before the first request.
    let long = config(cfg_dir.path(), "[privacy]\nretention_hours = 24.0\n");
    let d = Daemon::start(&[fixture("couple_1280x720.jpg")], &["--config", &long]);
    let (_, url) = make_video(&d);
    let data = d.kill();
    std::thread::sleep(std::time::Duration::from_secs(4));
    let short = config(
        cfg_dir.path(),
        "[privacy]\nretention_hours = 0.001\npurge_interval_s = 3600\n",
    );
    let stills = data.path().join("stills");
    let camera = format!("stills:{}", stills.display());
    let d = Daemon::start_in(data, &camera, &["--config", &short]);
    let path = &url[url.find("/d/").unwrap()..];
    assert_eq!(status_of(&d.url(path)), 404, "expired at boot");
    assert!(files_under(&d.data.path().join("sessions")).is_empty());
}

#[test]
fn end_of_event_deletes_everything_at_once() {
    if !have_models("end_of_event_deletes_everything_at_once") {
        return;
    }
    let d = Daemon::start(&[fixture("couple_1280x720.jpg")], &[]);
    let (_, a) = make_video(&d);
    let (_, b) = make_video(&d);
    assert_eq!(status_of(&a), 200);
    let (st, v) = d.post("/api/end-of-event");
    assert_eq!(st, 200, "{v}");
    assert!(v["purged"].as_u64().unwrap() >= 2);
    assert_eq!(status_of(&a), 404);
    assert_eq!(status_of(&b), 404);
    assert!(files_under(&d.data.path().join("sessions")).is_empty());
}

#[test]
fn a_daemon_killed_mid_render_finishes_the_job_after_restart() {
    if !have_models("a_daemon_killed_mid_render_finishes_the_job_after_restart") {
        return;
    }
    let cfg_dir = tempfile::tempdir().unwrap();
    // a long, large clip so the kill lands mid-render
    let cfg = config(
        cfg_dir.path(),
        "[render]\nseconds = 8.0\nwidth = 1280\nheight = 720\n",
    );
    let d = Daemon::start(&[fixture("couple_1280x720.jpg")], &["--config", &cfg]);
    let (_, v) = d.post("/api/sessions");
    let id = v["id"].as_str().unwrap().to_string();
    d.post(&format!("/api/sessions/{id}/consent"));
    d.post(&format!("/api/sessions/{id}/capture"));
    d.post(&format!("/api/sessions/{id}/render"));
    d.wait_session(&id, 60, |v| {
        v["state"] == "rendering" && v["progress"].as_f64().unwrap_or(0.0) > 0.05
    });
    let data = d.kill();
    let dir = data.path().join(format!("sessions/{id}"));
    let left: Vec<String> = files_under(&dir);
    assert!(
        !dir.join("video.mp4").exists(),
        "a partial video sits at the final name: {left:?}"
    );

    let stills = data.path().join("stills");
    let d = Daemon::start_in(
        data,
        &format!("stills:{}", stills.display()),
        &["--config", &cfg],
    );
    let v = d.wait_session(&id, 240, |v| v["state"] == "done" || v["state"] == "failed");
    assert_eq!(v["state"], "done", "{v} {}", d.log());
    let url = v["download_url"].as_str().unwrap();
    let mut r = agent().get(&format!("{url}/video.mp4")).call().unwrap();
    assert_eq!(r.status(), 200);
    let body = r
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_vec()
        .unwrap();
    assert_eq!(&body[4..8], b"ftyp", "a whole MP4");
    let names: Vec<String> = files_under(&d.data.path().join(format!("sessions/{id}")));
    assert!(
        names.iter().all(|n| !n.contains(".partial")),
        "temporaries left: {names:?}"
    );
}

#[test]
fn a_nearly_full_disk_stops_new_sessions_with_a_clear_message() {
    if !have_models("a_nearly_full_disk_stops_new_sessions_with_a_clear_message") {
        return;
    }
    let cfg_dir = tempfile::tempdir().unwrap();
    // a watermark far above any real disk's free space
    let cfg = config(cfg_dir.path(), "[storage]\nmin_free_mb = 1000000000\n");
    let d = Daemon::start(&[fixture("couple_1280x720.jpg")], &["--config", &cfg]);
    let (st, v) = d.post("/api/sessions");
    assert_eq!(st, 503, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("storage is full"),
        "{v}"
    );
}
