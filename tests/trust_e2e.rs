//! A night unattended: videos deleted on the timer and at boot, "end of event", download links
//! kept out of the database, and a daemon killed in the middle of a render that heals on
//! restart without ever serving a partial file; Content Credentials in every published clip, and
//! the clip still published when the booth cannot sign it.

mod support;

use std::path::Path;

use support::*;

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
    // 18 s retention, counted from the session's start, swept every second; the shortest clip,
    // so it is ready well within that on a busy machine
    let cfg = write_config(
        cfg_dir.path(),
        "[render]\nseconds = 3.0\nfps = 8\nwidth = 256\nheight = 256\n\
         [privacy]\nretention_hours = 0.005\npurge_interval_s = 1\n",
    );
    let d = Daemon::start(&[fixture("couple_1280x720.jpg")], &["--config", &cfg]);
    let (id, url) = d.make_video();
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
    let long = write_config(cfg_dir.path(), "[privacy]\nretention_hours = 24.0\n");
    let d = Daemon::start(&[fixture("couple_1280x720.jpg")], &["--config", &long]);
    let (_, url) = d.make_video();
    let data = d.kill();
    std::thread::sleep(std::time::Duration::from_secs(4));
    let short = write_config(
        cfg_dir.path(),
        "[privacy]\nretention_hours = 0.001\npurge_interval_s = 3600\n",
    );
    let d = Daemon::start_in(data, &["--config", &short]);
    let path = &url[url.find("/d/").unwrap()..];
    assert_eq!(status_of(&d.url(path)), 404, "expired at boot");
    assert!(files_under(&d.data.path().join("sessions")).is_empty());
}

/// The bytes of every file of the booth's database (main file, WAL, shared memory).
fn database_bytes(data: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for e in std::fs::read_dir(data).unwrap().flatten() {
        if e.file_name()
            .to_string_lossy()
            .starts_with("kissbooth.sqlite")
        {
            all.extend(std::fs::read(e.path()).unwrap_or_default());
        }
    }
    all
}

#[test]
fn the_database_never_holds_a_working_download_link() {
    if !have_models("the_database_never_holds_a_working_download_link") {
        return;
    }
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        cfg_dir.path(),
        "[render]\nseconds = 3.0\nfps = 8\nwidth = 256\nheight = 256\n",
    );
    let d = Daemon::start(&[fixture("couple_1280x720.jpg")], &["--config", &cfg]);
    let (id, url) = d.make_video();
    let token = url.rsplit('/').next().unwrap().to_string();
    assert_eq!(token.len(), 32, "{url}");
    assert_eq!(status_of(&format!("{url}/video.mp4")), 200);
    // The short code written under the QR code, in the form stored and in the form shown.
    let (_, v) = d.get_json(&format!("/api/sessions/{id}"));
    let shown = v["short_link"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let short = shown.replace('-', "");
    assert_eq!(status_of(&d.url(&format!("/d/{shown}/video.mp4"))), 200);
    // Neither the running booth's database files nor the closed ones hold the token or code.
    let found = |bytes: &[u8]| {
        [&token, &short, &shown]
            .iter()
            .any(|t| bytes.windows(t.len()).any(|w| w == t.as_bytes()))
    };
    assert!(
        !found(&database_bytes(d.data.path())),
        "the token or short code is in the database"
    );
    let data = d.kill();
    assert!(
        !found(&database_bytes(data.path())),
        "the token or short code is in the database"
    );
    // After a restart the phone's link still opens the clip; the kiosk no longer shows it.
    let d = Daemon::start_in(data, &["--config", &cfg]);
    let path = &url[url.find("/d/").unwrap()..];
    assert_eq!(status_of(&d.url(&format!("{path}/video.mp4"))), 200);
    assert_eq!(status_of(&d.url(&format!("/d/{shown}/video.mp4"))), 200);
    let (st, v) = d.get_json(&format!("/api/sessions/{id}"));
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["state"], "done", "{v}");
    assert!(v["download_url"].is_null(), "{v}");
}

#[test]
fn end_of_event_deletes_everything_at_once() {
    if !have_models("end_of_event_deletes_everything_at_once") {
        return;
    }
    let d = Daemon::start(&[fixture("couple_1280x720.jpg")], &[]);
    let (_, a) = d.make_video();
    let (_, b) = d.make_video();
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
    let cfg = write_config(
        cfg_dir.path(),
        "[render]\nseconds = 8.0\nwidth = 1280\nheight = 720\n",
    );
    let d = Daemon::start(&[fixture("couple_1280x720.jpg")], &["--config", &cfg]);
    let id = d.start_render();
    let v = d.wait_session(&id, 60, |v| {
        v["state"] == "rendering" && v["progress"].as_f64().unwrap_or(0.0) > 0.05
    });
    // A phone scanned the code while the clip was being made.
    let scanned = v["download_url"].as_str().unwrap().to_string();
    let data = d.kill();
    let dir = data.path().join(format!("sessions/{id}"));
    let left: Vec<String> = files_under(&dir);
    assert!(
        !dir.join("video.mp4").exists(),
        "a partial video sits at the final name: {left:?}"
    );

    let d = Daemon::start_in(data, &["--config", &cfg]);
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
    // The kiosk shows a new link (it lost the old one with the restart); the phone that
    // scanned the old one still gets the clip.
    assert_ne!(url, scanned);
    let path = &scanned[scanned.find("/d/").unwrap()..];
    let r = agent()
        .get(&d.url(&format!("{path}/video.mp4")))
        .call()
        .unwrap();
    assert_eq!(r.status(), 200, "the link scanned before the restart");
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
    let cfg = write_config(cfg_dir.path(), "[storage]\nmin_free_mb = 1000000000\n");
    let d = Daemon::start(&[fixture("couple_1280x720.jpg")], &["--config", &cfg]);
    let (st, v) = d.post("/api/sessions");
    assert_eq!(st, 503, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("storage is full"),
        "{v}"
    );
}

fn db_state(db: &rusqlite::Connection, id: &str) -> String {
    db.query_row("SELECT state FROM sessions WHERE id = ?1", [id], |r| {
        r.get(0)
    })
    .unwrap()
}

#[test]
fn a_database_failure_after_the_render_fails_the_session_and_the_queue_goes_on() {
    if !have_models("a_database_failure_after_the_render_fails_the_session_and_the_queue_goes_on") {
        return;
    }
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        cfg_dir.path(),
        "[render]\nseconds = 3.0\nfps = 8\nwidth = 256\nheight = 256\n\
         [privacy]\npurge_interval_s = 1\n",
    );
    let d = Daemon::start(&[fixture("couple_1280x720.jpg")], &["--config", &cfg]);
    // The daemon's own SQLite file refuses to record a finished video, as it does when the
    // disk fills up or fails between the render and the update that publishes it.
    let db = rusqlite::Connection::open(d.data.path().join("kissbooth.sqlite")).unwrap();
    db.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
    db.execute_batch(
        "CREATE TRIGGER refuse_done BEFORE UPDATE OF state ON sessions WHEN NEW.state = 'done' \
         BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;",
    )
    .unwrap();
    let id = d.start_render();
    let v = d.wait_session(&id, 120, |v| v["state"] == "done" || v["state"] == "failed");
    assert_eq!(v["state"], "failed", "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("Please try again"),
        "{v}"
    );
    assert!(
        v["download_url"].is_null() && v["video_url"].is_null(),
        "{v}"
    );
    let left = files_under(&d.data.path().join(format!("sessions/{id}")));
    assert!(
        left.iter()
            .all(|f| !f.ends_with(".mp4") && !f.contains("poster")),
        "the unpublished video was left behind: {left:?}"
    );
    let (job_state, job_error): (String, String) = db
        .query_row(
            "SELECT state, error FROM jobs WHERE session_id = ?1",
            [&id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(job_state, "failed");
    assert!(
        job_error.contains("database or disk is full"),
        "{job_error}"
    );
    assert_eq!(db_state(&db, &id), "failed");

    // Not even the failure can be written: the kiosk is told at once, and the database gets it
    // as soon as it takes writes again.
    db.execute_batch(
        "DROP TRIGGER refuse_done; \
         CREATE TRIGGER refuse_end BEFORE UPDATE OF state ON sessions \
         WHEN NEW.state IN ('done', 'failed') \
         BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END;",
    )
    .unwrap();
    let id = d.start_render();
    let v = d.wait_session(&id, 120, |v| v["state"] == "done" || v["state"] == "failed");
    assert_eq!(v["state"], "failed", "{v}");
    assert!(v["error"].as_str().unwrap().contains("Please try again"));
    assert_eq!(db_state(&db, &id), "rendering");
    db.execute_batch("DROP TRIGGER refuse_end;").unwrap();
    let t = std::time::Instant::now();
    while db_state(&db, &id) != "failed" {
        assert!(t.elapsed().as_secs() < 10, "the failure was never written");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }

    // The queue did not stop: the next couple gets a video.
    let (_, url) = d.make_video();
    assert_eq!(status_of(&format!("{url}/video.mp4")), 200);
    assert!(d.log().contains("render failed"), "{}", d.log());

    // The same, but the booth loses power before the database takes writes again: the session
    // is left "rendering" with its job closed, and the next start fails it instead of leaving
    // it waiting for ever.
    db.execute_batch(
        "CREATE TRIGGER refuse_end BEFORE UPDATE OF state ON sessions \
         WHEN NEW.state IN ('done', 'failed') \
         BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END;",
    )
    .unwrap();
    let id = d.start_render();
    let v = d.wait_session(&id, 120, |v| v["state"] == "done" || v["state"] == "failed");
    assert_eq!(v["state"], "failed", "{v}");
    let data = d.kill();
    assert_eq!(db_state(&db, &id), "rendering");
    db.execute_batch("DROP TRIGGER refuse_end;").unwrap();
    drop(db);
    let d = Daemon::start_in(data, &["--config", &cfg]);
    let (_, v) = d.get_json(&format!("/api/sessions/{id}"));
    assert_eq!(v["state"], "failed", "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("Please try again"),
        "{v}"
    );
    let (_, status) = d.get_json("/api/status");
    assert_eq!(status["queue"], 0, "{status}");
}

#[test]
fn a_render_interrupted_twice_is_failed_with_a_message_not_retried_for_ever() {
    if !have_models("a_render_interrupted_twice_is_failed_with_a_message_not_retried_for_ever") {
        return;
    }
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        cfg_dir.path(),
        "[render]\nseconds = 8.0\nwidth = 1280\nheight = 720\n",
    );
    let d = Daemon::start(&[fixture("couple_1280x720.jpg")], &["--config", &cfg]);
    let id = d.start_render();
    let mut d = d;
    for restart in 0..2 {
        d.wait_session(&id, 120, |v| {
            v["state"] == "rendering" && v["progress"].as_f64().unwrap_or(0.0) > 0.02
        });
        let data = d.kill();
        d = Daemon::start_in(data, &["--config", &cfg]);
        if restart == 0 {
            let (_, v) = d.get_json(&format!("/api/sessions/{id}"));
            assert!(
                v["state"] == "queued" || v["state"] == "rendering",
                "retried once: {v}"
            );
        }
    }
    let (_, v) = d.get_json(&format!("/api/sessions/{id}"));
    assert_eq!(v["state"], "failed", "{v}");
    assert!(v["error"].as_str().unwrap().contains("restarted"), "{v}");
    let db = rusqlite::Connection::open(d.data.path().join("kissbooth.sqlite")).unwrap();
    let unfinished: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM jobs WHERE state IN ('queued', 'running')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(unfinished, 0);
    // The booth goes on.
    let (_, v) = d.get_json("/api/status");
    assert_eq!(v["queue"], 0, "{v}");
}

/// The hosts' album holds only the clips whose couples ticked the optional line on the consent
/// screen; the operator downloads it as a ZIP (logged in only), and the end of the event
/// leaves nothing to download.
#[test]
fn the_hosts_album_holds_only_the_clips_whose_couples_agreed() {
    if !have_models("the_hosts_album_holds_only_the_clips_whose_couples_agreed") {
        return;
    }
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        cfg_dir.path(),
        "[render]\nseconds = 3.0\nfps = 8\nwidth = 256\nheight = 256\n",
    );
    let d = Daemon::start(&[fixture("couple_1280x720.jpg")], &["--config", &cfg]);
    let zip = |cookie: Option<&str>| {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .build()
            .into();
        let mut req = agent.get(&d.url("/admin/album.zip"));
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        let mut r = req.call().unwrap();
        let ct = r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string());
        let body = r
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_vec()
            .unwrap();
        (r.status().as_u16(), ct, body)
    };
    let cookie = admin_cookie(&d);
    assert_eq!(zip(Some(&cookie)).0, 404, "no album before anyone agreed");

    // One couple agrees to the album, the next does not (the default).
    let mut made = Vec::new();
    for album in [true, false] {
        let id = d.new_session();
        let (st, v) = d.post_json(
            &format!("/api/sessions/{id}/consent"),
            &serde_json::json!({"people": 2, "accepted": true, "album": album}),
        );
        assert_eq!(st, 200, "{v}");
        let (st, v) = d.post(&format!("/api/sessions/{id}/capture"));
        assert_eq!(
            (st, &v["verdict"]["ok"]),
            (200, &serde_json::json!(true)),
            "{v}"
        );
        let (st, _) = d.post(&format!("/api/sessions/{id}/render"));
        assert_eq!(st, 202);
        d.wait_done(&id, 180);
        made.push(id);
    }
    assert_eq!(zip(None).0, 303, "only the operator");
    let (st, ct, body) = zip(Some(&cookie));
    assert_eq!(st, 200);
    assert_eq!(ct.as_deref(), Some("application/zip"));
    // The ZIP's central directory: one entry, the agreeing couple's clip, byte for byte.
    let u16_at = |i: usize| u16::from_le_bytes([body[i], body[i + 1]]) as usize;
    let u32_at = |i: usize| u32::from_le_bytes(body[i..i + 4].try_into().unwrap()) as usize;
    let end = body.len() - 22;
    assert_eq!(u32_at(end), 0x0605_4b50, "a ZIP file");
    assert_eq!(
        u16_at(end + 10),
        1,
        "exactly the one clip whose couple agreed"
    );
    let cd = u32_at(end + 16);
    let size = u32_at(cd + 20);
    let local = u32_at(cd + 42);
    let data = local + 30 + u16_at(local + 26) + u16_at(local + 28);
    let agreed = std::fs::read(
        d.data
            .path()
            .join(format!("sessions/{}/video.mp4", made[0])),
    )
    .unwrap();
    assert_eq!(&body[data..data + size], &agreed[..]);
    let health = agent()
        .get(&d.url("/admin"))
        .header("cookie", &cookie)
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    assert!(
        health.contains("1 video(s) whose couples agreed"),
        "{health}"
    );
    // Nothing of the export stays on the booth.
    let left: Vec<_> = std::fs::read_dir(d.data.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("album"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    // After the end of the event there is nothing left to export.
    let (st, _) = d.post("/api/end-of-event");
    assert_eq!(st, 200);
    assert_eq!(zip(Some(&cookie)).0, 404);
}

/// A clip as a guest's phone downloads it.
fn download(url: &str) -> Vec<u8> {
    let mut r = agent().get(url).call().unwrap();
    assert_eq!(r.status(), 200, "{url}");
    r.body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_vec()
        .unwrap()
}

/// `kissbooth verify --json` of `clip` on the booth whose data folder is `data`.
fn verify_json(data: &Path, clip: &Path) -> (i32, serde_json::Value, String) {
    let o = kissbooth()
        .arg("--data")
        .arg(data)
        .args(["verify", "--json"])
        .arg(clip)
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        serde_json::from_slice(&o.stdout).unwrap_or_default(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn every_clip_the_booth_publishes_carries_content_credentials() {
    if !have_models("every_clip_the_booth_publishes_carries_content_credentials") {
        return;
    }
    let d = Daemon::start(&[fixture("couple_1280x720.jpg")], &[]);
    // The booth's key is made at its first start, before any clip, for its user only.
    use std::os::unix::fs::PermissionsExt;
    let key = d.data.path().join("c2pa/signer.key");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(
        d.log()
            .contains("made this booth's Content Credentials key"),
        "{}",
        d.log()
    );

    let (id, url) = d.make_video();
    let clip = d.data.path().join("downloaded.mp4");
    std::fs::write(&clip, download(&format!("{url}/video.mp4"))).unwrap();
    let (code, v, err) = verify_json(d.data.path(), &clip);
    assert_eq!(code, 0, "{v} {err} {}", d.log());
    assert_eq!(v["integrity"], "valid", "{v}");
    assert_eq!(v["this_booth"], true, "{v}");
    assert_eq!(
        v["digital_source_type"],
        "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
    );
    assert!(
        v["claim_generator"]
            .as_str()
            .unwrap()
            .starts_with("Kissbooth/"),
        "{v}"
    );
    // Signed in place: no temporary left beside the clip.
    let session = d.data.path().join(format!("sessions/{id}"));
    let left: Vec<String> = files_under(&session)
        .into_iter()
        .filter(|f| f.contains(".partial"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let events = audit_events(d.data.path());
    assert!(events.iter().any(|e| e == "c2pa_key_made"), "{events:?}");
    assert!(
        !events.iter().any(|e| e.starts_with("c2pa_sign")),
        "{events:?}"
    );

    // After a restart the booth signs with the same key.
    let data = d.kill();
    let d = Daemon::start_in(data, &[]);
    assert!(!d.log().contains("made this booth's"), "{}", d.log());
    let (_, url) = d.make_video();
    let clip = d.data.path().join("second.mp4");
    std::fs::write(&clip, download(&format!("{url}/video.mp4"))).unwrap();
    let (code, v, err) = verify_json(d.data.path(), &clip);
    assert_eq!((code, &v["this_booth"]), (0, &true.into()), "{v} {err}");
}

#[test]
fn a_booth_whose_key_is_damaged_still_publishes_clips_and_says_why() {
    if !have_models("a_booth_whose_key_is_damaged_still_publishes_clips_and_says_why") {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let stills = data.path().join("stills");
    std::fs::create_dir_all(&stills).unwrap();
    std::fs::copy(fixture("couple_1280x720.jpg"), stills.join("000.jpg")).unwrap();
    let keys = data.path().join("c2pa");
    std::fs::create_dir(&keys).unwrap();
    std::fs::write(keys.join("signer.key"), "not a key").unwrap();
    std::fs::write(keys.join("signer-chain.pem"), "not a certificate").unwrap();
    let d = Daemon::start_in(data, &[]);
    assert!(
        d.log()
            .contains("clips will be published without Content Credentials"),
        "{}",
        d.log()
    );
    // The couple still get their clip; it just carries no credentials.
    let (_, url) = d.make_video();
    let clip = d.data.path().join("downloaded.mp4");
    std::fs::write(&clip, download(&format!("{url}/video.mp4"))).unwrap();
    let (code, v, err) = verify_json(d.data.path(), &clip);
    assert_eq!((code, &v["integrity"]), (1, &"missing".into()), "{v} {err}");
    assert!(err.contains("no Content Credentials"), "{err}");
    assert!(
        audit_events(d.data.path())
            .iter()
            .any(|e| e == "c2pa_unavailable")
    );
    // The damaged key is left for the operator, not replaced behind their back.
    let key = d.data.path().join("c2pa/signer.key");
    assert_eq!(std::fs::read_to_string(key).unwrap(), "not a key");
}
