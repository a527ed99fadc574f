//! The booth end to end: the real `kissbooth serve` with a stills camera, driven over HTTP like
//! the kiosk does; the guest side followed from the QR code, as a phone would.

mod support;

use std::io::Read;

use support::*;

/// Decodes the QR code PNG the kiosk shows.
fn qr_url(d: &Daemon, id: &str) -> String {
    let mut r = agent()
        .get(&d.url(&format!("/api/sessions/{id}/qr.png")))
        .call()
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut png = Vec::new();
    r.body_mut().as_reader().read_to_end(&mut png).unwrap();
    let img = image::load_from_memory(&png).unwrap().to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(img);
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code");
    grids[0].decode().unwrap().1
}

fn bytes(url: &str, range: Option<&str>) -> (u16, Option<String>, Vec<u8>) {
    let mut req = agent().get(url);
    if let Some(r) = range {
        req = req.header("Range", r);
    }
    let mut resp = req.call().unwrap();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut body = Vec::new();
    resp.body_mut()
        .with_config()
        .limit(64 << 20)
        .reader()
        .read_to_end(&mut body)
        .unwrap();
    (resp.status().as_u16(), ct, body)
}

#[test]
fn a_couple_goes_from_start_to_a_video_on_their_phone() {
    if !have_models("a_couple_goes_from_start_to_a_video_on_their_phone") {
        return;
    }
    let d = Daemon::start(&[fixture("couple_1280x720.jpg")], &[]);
    let (_, spec) = d.get_json("/api/openapi.json");
    assert_eq!(spec["openapi"], "3.0.3");
    let id = d.new_session();

    // No capture before both agreed.
    let (st, v) = d.post(&format!("/api/sessions/{id}/capture"));
    assert_eq!(st, 409, "{v}");
    assert!(v["error"].as_str().unwrap().contains("agree"));

    let (st, v) = d.consent(&id);
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["state"], "pose");
    let (st, v) = d.post(&format!("/api/sessions/{id}/capture"));
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["verdict"]["ok"], true, "{v}");
    assert_eq!(v["session"]["state"], "review");
    let (st, v) = d.post(&format!("/api/sessions/{id}/render"));
    assert_eq!(st, 202, "{v}");
    let done = d.wait_session(&id, 120, |v| v["state"] == "done" || v["state"] == "failed");
    assert_eq!(done["state"], "done", "{done}");

    // Follow the QR code, not the API's answer.
    let url = qr_url(&d, &id);
    assert!(url.starts_with(&d.base) && url.contains("/d/"), "{url}");
    let (st, ct, page) = bytes(&url, None);
    assert_eq!(st, 200);
    assert!(ct.unwrap().starts_with("text/html"));
    let page = String::from_utf8(page).unwrap();
    assert!(
        page.contains("playsinline")
            && page.contains("AI-generated")
            && page.contains("Delete my video")
    );

    let (st, ct, full) = bytes(&format!("{url}/video.mp4"), None);
    assert_eq!(st, 200);
    assert_eq!(ct.as_deref(), Some("video/mp4"));
    assert!(full.len() > 10_000);
    let (st, _, part) = bytes(&format!("{url}/video.mp4"), Some("bytes=1000-1999"));
    assert_eq!(st, 206);
    assert_eq!(part, full[1000..2000]);
    let (st, _, tail) = bytes(&format!("{url}/video.mp4"), Some("bytes=-500"));
    assert_eq!(st, 206);
    assert_eq!(tail, full[full.len() - 500..]);
    let (st, ct, _) = bytes(&format!("{url}/poster.jpg"), None);
    assert_eq!((st, ct.as_deref()), (200, Some("image/jpeg")));

    // The capture is gone once the video exists.
    assert!(
        !d.data
            .path()
            .join(format!("sessions/{id}/capture.jpg"))
            .exists()
    );

    // "Delete my video" deletes it now; the link says it was deleted (410), not that it
    // expired, and opens nothing.
    let (st, _) = d.post(&format!("{}/delete", url.trim_start_matches(&d.base)));
    assert_eq!(st, 200);
    let (st, _, page) = bytes(&url, None);
    assert_eq!(st, 410);
    let page = String::from_utf8_lossy(&page);
    assert!(
        page.contains("This video was deleted") && !page.contains("expired"),
        "{page}"
    );
    let (st, _, _) = bytes(&format!("{url}/video.mp4"), None);
    assert_eq!(st, 404);
    assert!(
        !d.data
            .path()
            .join(format!("sessions/{id}/video.mp4"))
            .exists()
    );
}

#[test]
fn no_face_then_three_faces_get_the_right_retake_message_and_never_render() {
    if !have_models("no_face_then_three_faces_get_the_right_retake_message_and_never_render") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let wall = dir.path().join("wall.png");
    image::RgbImage::from_pixel(1280, 720, image::Rgb([170, 160, 150]))
        .save(&wall)
        .unwrap();
    // three faces: the couple plus a third portrait beside it
    let couple = image::open(fixture("couple_1280x720.jpg"))
        .unwrap()
        .to_rgb8();
    let third = image::open(fixture("mona_lisa.jpg")).unwrap().to_rgb8();
    let third = image::imageops::resize(&third, 474, 720, image::imageops::FilterType::Triangle);
    let mut three = image::RgbImage::new(1280 + 474, 720);
    image::imageops::replace(&mut three, &couple, 0, 0);
    image::imageops::replace(&mut three, &third, 1280, 0);
    let three_path = dir.path().join("three.png");
    three.save(&three_path).unwrap();

    for (still, code, words) in [
        (&wall, "no_face", "can't see your faces"),
        (&three_path, "too_many_faces", "Only two people"),
    ] {
        let d = Daemon::start(std::slice::from_ref(still), &[]);
        let id = d.new_session();
        d.consent(&id);
        let (st, v) = d.post(&format!("/api/sessions/{id}/capture"));
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["verdict"]["ok"], false);
        assert_eq!(v["verdict"]["code"], code, "{v}");
        assert!(v["verdict"]["message"].as_str().unwrap().contains(words));
        assert_eq!(v["session"]["state"], "pose");
        let (st, v) = d.post(&format!("/api/sessions/{id}/render"));
        assert_eq!(st, 409, "a refused capture never renders: {v}");
        assert!(
            !d.data
                .path()
                .join(format!("sessions/{id}/video.mp4"))
                .exists()
        );
    }
}

#[test]
fn a_second_couple_starting_during_a_render_is_queued_not_lost() {
    if !have_models("a_second_couple_starting_during_a_render_is_queued_not_lost") {
        return;
    }
    let d = Daemon::start(&[fixture("couple_1280x720.jpg")], &[]);
    let mut ids = Vec::new();
    for _ in 0..2 {
        ids.push(d.start_render());
    }
    let (_, second) = d.get_json(&format!("/api/sessions/{}", ids[1]));
    assert!(
        second["state"] == "queued" || second["state"] == "rendering" || second["state"] == "done",
        "{second}"
    );
    if second["state"] == "queued" {
        assert!(second["eta_s"].as_f64().unwrap() > 0.0);
    }
    for id in &ids {
        let v = d.wait_done(id, 180);
        assert!(v["download_url"].as_str().unwrap().contains("/d/"));
    }
}

#[test]
fn an_operator_who_keeps_captures_keeps_them_until_the_video_is_deleted() {
    if !have_models("an_operator_who_keeps_captures_keeps_them_until_the_video_is_deleted") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "[render]\nseconds = 3.0\nfps = 8\nwidth = 256\nheight = 256\n[privacy]\nkeep_captures = true\n",
    );
    let d = Daemon::start(&[fixture("couple_1280x720.jpg")], &["--config", &config]);
    let id = d.start_render();
    d.wait_done(&id, 120);
    let capture = d.data.path().join(format!("sessions/{id}/capture.jpg"));
    assert!(capture.exists(), "the capture was deleted although kept");
    // "Delete my video" takes the kept capture with it.
    let url = qr_url(&d, &id);
    let (st, _) = d.post(&format!("{}/delete", url.trim_start_matches(&d.base)));
    assert_eq!(st, 200);
    assert!(!capture.exists(), "the capture outlived its deleted video");
}

#[test]
fn unknown_tokens_and_paths_get_a_friendly_404() {
    if !have_models("unknown_tokens_and_paths_get_a_friendly_404") {
        return;
    }
    let d = Daemon::start(&[fixture("couple_1280x720.jpg")], &[]);
    for path in [
        "/d/00000000000000000000000000000000",
        "/d/not-a-token",
        "/d/00000000000000000000000000000000/video.mp4",
        "/d/%2e%2e/%2e%2e/etc/passwd",
        "/d/..%2F..%2Fkissbooth.sqlite",
        "/nothing-here",
    ] {
        let (st, ct, body) = bytes(&d.url(path), None);
        assert_eq!(st, 404, "{path}");
        assert!(ct.unwrap_or_default().starts_with("text/html"), "{path}");
        assert!(String::from_utf8_lossy(&body).contains("expired"), "{path}");
    }
    let (st, _) = d.get_json("/api/sessions/ffffffffffffffff");
    assert_eq!(st, 404);
}

/// Writes a daemon configuration selecting `generator` with `pack` (short clips, small frames).
fn generator_config(dir: &std::path::Path, generator: &str, pack: &std::path::Path) -> String {
    write_config(
        dir,
        &format!(
            "[render]\nseconds = 3.0\nwidth = 256\nheight = 256\ngenerator = \"{generator}\"\npack = {:?}\n",
            pack.display().to_string()
        ),
    )
}

/// consent → capture → render → done; returns the MP4 downloaded through the QR code.
fn booth_clip(d: &Daemon) -> Vec<u8> {
    let id = d.start_render();
    d.wait_done(&id, 120);
    let url = qr_url(d, &id);
    let (st, ct, mp4) = bytes(&format!("{url}/video.mp4"), None);
    assert_eq!((st, ct.as_deref()), (200, Some("video/mp4")));
    mp4
}

fn ffprobe(mp4: &[u8]) -> serde_json::Value {
    let f = tempfile::Builder::new().suffix(".mp4").tempfile().unwrap();
    std::fs::write(f.path(), mp4).unwrap();
    probe(f.path())
}

#[test]
fn the_daemon_renders_with_a_guided_diffusion_pack_end_to_end() {
    let test = "the_daemon_renders_with_a_guided_diffusion_pack_end_to_end";
    if !have_models(test) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Classifier-free guidance 2.5: the denoiser runs twice per step.
    let Some(pack) = write_tiny_pack(dir.path(), &["--guidance", "2.5"], test) else {
        return;
    };
    let config = generator_config(dir.path(), "diffusion", &pack);
    let d = Daemon::start(&[fixture("couple_1280x720.jpg")], &["--config", &config]);
    let (_, status) = d.get_json("/api/status");
    assert_eq!(status["generator"]["name"], "diffusion", "{status}");
    assert!(status["generator"]["fallback"].is_null(), "{status}");
    assert_eq!(
        status["generator"]["memory"]["components"][0]["component"],
        "denoiser"
    );
    assert!(
        d.log().contains("generator: diffusion (pack tiny"),
        "{}",
        d.log()
    );

    let mp4 = booth_clip(&d);
    let p = ffprobe(&mp4);
    let s = &p["streams"][0];
    assert_eq!(
        (s["codec_name"].as_str(), s["pix_fmt"].as_str()),
        (Some("h264"), Some("yuv420p")),
        "{p}"
    );
    assert_eq!(
        (s["width"].as_u64(), s["height"].as_u64()),
        (Some(256), Some(256))
    );
    assert_eq!(
        s["nb_read_frames"].as_str(),
        Some("72"),
        "3 s at 24 fps: {p}"
    );
    let tags = p["format"]["tags"].to_string();
    assert!(tags.contains("AI-generated"), "AI label missing: {tags}");
    assert!(!d.log().contains("morph"), "{}", d.log());
}

#[test]
fn an_unusable_pack_is_reported_once_and_the_daemon_renders_with_morph() {
    let test = "an_unusable_pack_is_reported_once_and_the_daemon_renders_with_morph";
    if !have_models(test) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let Some(pack) = write_tiny_pack(dir.path(), &[], test) else {
        return;
    };
    let mut bytes_ = std::fs::read(pack.join("denoiser.onnx")).unwrap();
    bytes_.push(0);
    std::fs::write(pack.join("denoiser.onnx"), bytes_).unwrap();
    let config = generator_config(dir.path(), "diffusion", &pack);
    let d = Daemon::start(&[fixture("couple_1280x720.jpg")], &["--config", &config]);
    let (_, status) = d.get_json("/api/status");
    assert_eq!(status["generator"]["name"], "morph", "{status}");
    assert_eq!(status["generator"]["configured"], "diffusion");
    let why = status["generator"]["fallback"].as_str().unwrap();
    assert!(why.contains("denoiser") && why.contains("sha256"), "{why}");
    let mp4 = booth_clip(&d);
    assert_eq!(ffprobe(&mp4)["streams"][0]["codec_name"], "h264");
    let log = d.log();
    assert_eq!(
        log.matches("rendering with the morph generator").count(),
        1,
        "the reason is logged once: {log}"
    );
    assert!(log.contains("denoiser.onnx"), "{log}");
}

/// A booth started with no camera (here an empty stills folder, as an unplugged V4L2 camera
/// would be) starts all the same: it answers its kiosk and says the camera is unavailable, its
/// readiness says why, and it goes live by itself when the camera appears.
#[test]
fn a_booth_started_without_a_camera_serves_says_so_and_goes_live_when_it_appears() {
    if !have_models("a_booth_started_without_a_camera_serves_says_so_and_goes_live_when_it_appears")
    {
        return;
    }
    let d = Daemon::start(&[], &[]);
    let text = |path: &str| {
        let mut r = agent().get(&d.url(path)).call().unwrap();
        let status = r.status().as_u16();
        (status, r.body_mut().read_to_string().unwrap_or_default())
    };
    let (st, body) = text("/healthz");
    assert_eq!(st, 200, "{body}");
    assert!(body.contains("camera unavailable"), "{body}");
    let (st, body) = text("/readyz");
    assert_eq!(st, 503, "{body}");
    assert!(body.contains("camera unavailable"), "{body}");
    let (st, status) = d.get_json("/api/status");
    assert_eq!(st, 200);
    assert_eq!(status["camera"]["state"], "reconnecting", "{status}");
    assert!(
        status["camera"]["message"]
            .as_str()
            .unwrap()
            .contains("not connected"),
        "{status}"
    );
    // The kiosk app itself loads.
    assert_eq!(text("/").0, 200);

    // The camera appears: ready within a few seconds, no restart.
    std::fs::copy(
        fixture("couple_1280x720.jpg"),
        d.data.path().join("stills/000.jpg"),
    )
    .unwrap();
    let t = std::time::Instant::now();
    loop {
        let (st, body) = text("/readyz");
        if st == 200 {
            assert_eq!(body, "ready");
            break;
        }
        assert!(
            t.elapsed().as_secs() < 20,
            "not ready 20 s after the camera appeared: {body}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let (_, status) = d.get_json("/api/status");
    assert_eq!(status["camera"]["state"], "live", "{status}");
    assert_eq!(text("/healthz"), (200, "ok".to_string()));
}

/// A camera that stops sending pictures without an error (here a live test source at one
/// picture every 4 s, as a wedged USB camera would look): within about 2 s of its last picture
/// the booth says the camera has stalled, and says so again when pictures come back.
#[test]
fn a_camera_that_stops_sending_pictures_is_noticed_within_seconds() {
    if !have_models("a_camera_that_stops_sending_pictures_is_noticed_within_seconds") {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let d = Daemon::start_in_with(
        data,
        "gst:videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=1/4",
        &[],
        Start::default(),
    );
    let mut seen = Vec::new();
    let t = std::time::Instant::now();
    while t.elapsed().as_secs() < 20 {
        let (_, status) = d.get_json("/api/status");
        let state = status["camera"]["state"].as_str().unwrap_or("").to_string();
        if state == "stalled" {
            assert!(
                status["camera"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("stopped sending pictures"),
                "{status}"
            );
        }
        if seen.last() != Some(&state) {
            seen.push(state);
        }
        if seen.iter().filter(|s| *s == "stalled").count() >= 1
            && seen.last().is_some_and(|s| s == "live")
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    assert!(
        seen.iter().any(|s| s == "stalled") && seen.last().is_some_and(|s| s == "live"),
        "camera states seen: {seen:?}; log: {}",
        d.log()
    );
    assert!(d.log().contains("camera stalled"), "{}", d.log());
}

/// "Scan now, watch when ready": the link (and its short form) works from the moment the clip
/// is queued, the phone follows the render, a download in flight is counted (the kiosk keeps
/// its result screen up meanwhile), and wrong short codes lock a phone out of short codes.
#[test]
fn the_link_works_from_the_queue_and_short_codes_are_limited() {
    if !have_models("the_link_works_from_the_queue_and_short_codes_are_limited") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "[render]\nseconds = 6.0\n");
    let d = Daemon::start(&[fixture("couple_1280x720.jpg")], &["--config", &config]);
    let id = d.start_render();
    let (_, v) = d.get_json(&format!("/api/sessions/{id}"));
    let url = v["download_url"]
        .as_str()
        .unwrap_or_else(|| panic!("no link while queued: {v}"));
    let url = url.to_string();
    let short = v["short_link"].as_str().unwrap().to_string();
    let code = short.rsplit('/').next().unwrap().to_string();
    assert!(
        short.starts_with(d.base.trim_start_matches("http://")),
        "{short}"
    );
    assert_eq!(
        qr_url(&d, &id),
        url,
        "the QR code is up while the clip is made"
    );
    let (st, status) = d.get_json(&format!("{}/status", url.trim_start_matches(&d.base)));
    assert_eq!(st, 200, "{status}");
    if v["state"] != "done" {
        assert!(
            ["queued", "rendering", "done"].contains(&status["state"].as_str().unwrap()),
            "{status}"
        );
        assert!(
            status.get("download_url").is_none() && status.get("id").is_none(),
            "the phone learns only where its clip is: {status}"
        );
    }
    let (st, _, page) = bytes(&url, None);
    assert_eq!(st, 200);
    let page = String::from_utf8_lossy(&page);
    assert!(
        page.contains("Your video is on its way"),
        "the waiting view is in the page"
    );

    d.wait_done(&id, 180);
    let (_, status) = d.get_json(&format!("{}/status", url.trim_start_matches(&d.base)));
    assert_eq!(status["state"], "done", "{status}");
    // The short code, typed any which way, opens the same clip.
    for typed in [code.clone(), code.to_lowercase(), code.replace('-', "")] {
        let (st, ct, body) = bytes(&d.url(&format!("/d/{typed}/video.mp4")), None);
        assert_eq!(st, 200, "/d/{typed}/video.mp4");
        assert_eq!(ct.as_deref(), Some("video/mp4"));
        assert!(body.len() > 10_000);
    }

    // A phone that reads slowly: its download is counted while it lasts.
    let addr: std::net::SocketAddr = d.base.trim_start_matches("http://").parse().unwrap();
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.set_recv_buffer_size(4096).unwrap();
    s.connect(&addr.into()).unwrap();
    let mut slow: std::net::TcpStream = s.into();
    use std::io::Write;
    let path = format!("{}/video.mp4", url.trim_start_matches(&d.base));
    write!(slow, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut head = [0u8; 512];
    let n = slow.read(&mut head).unwrap();
    assert!(String::from_utf8_lossy(&head[..n]).starts_with("HTTP/1.1 200"));
    let v = d.wait_session(&id, 10, |v| v["downloading"] == 1);
    assert_eq!(v["state"], "done");
    drop(slow);
    // Its last bytes still count for 15 s (they sit in buffers, the phone saves them).
    d.wait_session(&id, 30, |v| v["downloading"] == 0);

    // Ten wrong short codes from one phone: the eleventh try is refused, even the right one;
    // the QR code's link still works for it.
    for i in 0..10 {
        let wrong = format!("ZZZZ-{i:04}");
        let (st, _, _) = bytes(&d.url(&format!("/d/{wrong}")), None);
        assert_eq!(st, 404, "{wrong}");
    }
    let (st, _, body) = bytes(&d.url(&format!("/d/{code}")), None);
    assert_eq!(st, 429);
    assert!(String::from_utf8_lossy(&body).contains("scan the QR code"));
    let (st, _, _) = bytes(&url, None);
    assert_eq!(st, 200, "the long link is not limited");
}

/// The kiosk's live preview, `/api/preview.mjpg`: JPEG frames one after another in a multipart
/// stream, the next sent as soon as the daemon makes it, each a picture of the camera's size
/// with the frames' sequence moving on.
#[test]
fn the_live_preview_streams_a_new_jpeg_as_each_is_made() {
    if !have_models("the_live_preview_streams_a_new_jpeg_as_each_is_made") {
        return;
    }
    use std::io::Read;
    let d = Daemon::start(&[fixture("couple_1280x720.jpg")], &[]);
    let mut r = agent().get(&d.url("/api/preview.mjpg")).call().unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let kind = r
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        kind.starts_with("multipart/x-mixed-replace; boundary=frame"),
        "{kind}"
    );
    let mut body = r.body_mut().as_reader();
    let t0 = std::time::Instant::now();
    let mut frames = Vec::new();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    while frames.len() < 4 && t0.elapsed() < std::time::Duration::from_secs(20) {
        let n = body.read(&mut chunk).unwrap();
        assert!(n > 0, "the stream ended after {} frame(s)", frames.len());
        buf.extend_from_slice(&chunk[..n]);
        // Parts: "--frame\r\nContent-Type: image/jpeg\r\nContent-Length: N\r\n\r\n" JPEG "\r\n".
        while let Some(head_end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
            assert!(
                head.starts_with("--frame\r\nContent-Type: image/jpeg"),
                "{head}"
            );
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .unwrap()
                .parse()
                .unwrap();
            let start = head_end + 4;
            if buf.len() < start + len + 2 {
                break;
            }
            frames.push((t0.elapsed(), buf[start..start + len].to_vec()));
            buf.drain(..start + len + 2);
        }
    }
    assert_eq!(frames.len(), 4, "four frames within 20 s");
    for (_, jpeg) in &frames {
        let img = image::load_from_memory_with_format(jpeg, image::ImageFormat::Jpeg).unwrap();
        assert!(
            img.width() >= 320 && img.height() >= 180,
            "{}x{}",
            img.width(),
            img.height()
        );
    }
    // Frames come at the preview's pace (about 10 a second), not one per keep-alive second.
    let span = frames[3].0 - frames[0].0;
    assert!(
        span < std::time::Duration::from_millis(2500),
        "three frames took {span:?}"
    );
}
