//! The reconnect loop and MJPEG decoding, against a recorded MJPEG stream that can be
//! "unplugged" and stalled: the faithful fake of a USB camera.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{centre, near, solid, wait_until};
use kissbooth_capture::{
    Backoff, CameraContext, CameraHandle, CameraStatus, CaptureError, ReplaySource, Shutdown,
    jpeg_encode, split_jpeg_stream,
};

const PALETTE: [[u8; 3]; 5] = [
    [230, 30, 30],
    [30, 200, 30],
    [30, 30, 230],
    [230, 230, 30],
    [200, 30, 200],
];

fn jpeg_frames() -> Vec<Vec<u8>> {
    PALETTE
        .iter()
        .map(|&c| jpeg_encode(&solid(96, 64, c), 90))
        .collect()
}

/// A raw concatenated MJPEG recording, as `ffmpeg -f mjpeg` or a V4L2 dump writes it.
fn write_raw_stream(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("camera.mjpeg");
    std::fs::write(&path, jpeg_frames().concat()).unwrap();
    path
}

/// A `multipart/x-mixed-replace` body, as saved from an MJPEG-over-HTTP camera, ending with
/// a part cut short by the recording stopping.
fn write_multipart_stream(dir: &Path) -> std::path::PathBuf {
    let mut body = Vec::new();
    let frames = jpeg_frames();
    for jpeg in &frames {
        body.extend_from_slice(
            format!(
                "--kbframe\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
                jpeg.len()
            )
            .as_bytes(),
        );
        body.extend_from_slice(jpeg);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"--kbframe\r\nContent-Type: image/jpeg\r\n\r\n");
    body.extend_from_slice(&frames[0][..frames[0].len() / 2]);
    let path = dir.join("camera.multipart");
    std::fs::write(&path, body).unwrap();
    path
}

fn spawn(source: ReplaySource) -> CameraHandle {
    CameraHandle::spawn(Box::new(source), "replay", &CameraContext::default()).unwrap()
}

#[test]
fn replayed_mjpeg_stream_decodes() {
    let dir = tempfile::tempdir().unwrap();
    let source = ReplaySource::open(&write_raw_stream(dir.path()), 100).unwrap();
    assert_eq!(source.frame_count(), 5);
    let camera = spawn(source);
    let mut seq = 0;
    for _ in 0..8 {
        let frame = camera.wait_newer(seq, Duration::from_secs(2)).unwrap();
        // A slow reader may miss frames (it gets the newest), but frame n is always
        // recording frame n.
        assert!(frame.seq > seq);
        assert_eq!(frame.image.dimensions(), (96, 64));
        assert_eq!(frame.source, "replay");
        let want = PALETTE[((frame.seq - 1) % 5) as usize];
        assert!(
            near(centre(&frame.image), want, 6),
            "frame {}: {:?} vs {want:?}",
            frame.seq,
            centre(&frame.image)
        );
        seq = frame.seq;
    }
    assert!(
        camera.describe().contains("5 MJPEG frames"),
        "{}",
        camera.describe()
    );
}

#[test]
fn multipart_mjpeg_stream_splits_into_its_complete_frames() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_multipart_stream(dir.path());
    let bytes = std::fs::read(&path).unwrap();
    let frames = split_jpeg_stream(&bytes);
    assert_eq!(frames.len(), 5, "the truncated last part is left out");
    for (range, original) in frames.iter().zip(jpeg_frames()) {
        assert_eq!(&bytes[range.clone()], original.as_slice());
    }
    let camera = spawn(ReplaySource::open(&path, 100).unwrap());
    let frame = camera.wait_newer(0, Duration::from_secs(2)).unwrap();
    assert!(near(centre(&frame.image), PALETTE[0], 6));
}

#[test]
fn a_recording_without_frames_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.mjpeg");
    std::fs::write(&path, b"--kbframe\r\n\r\nnothing here").unwrap();
    assert!(matches!(
        ReplaySource::open(&path, 30),
        Err(CaptureError::EmptyReplay { .. })
    ));
    assert!(matches!(
        ReplaySource::open(&dir.path().join("missing.mjpeg"), 30),
        Err(CaptureError::ReplayFile { .. })
    ));
}

#[test]
fn unplugged_camera_reconnects_with_backoff_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let source = ReplaySource::open(&write_raw_stream(dir.path()), 100).unwrap();
    let control = source.control();
    let camera = spawn(source);
    let before = camera
        .wait_newer(4, Duration::from_secs(2))
        .expect("live first");
    assert!(matches!(camera.status(), CameraStatus::Live { fps } if fps > 20.0));

    // Unplugged for three re-open attempts: 100 + 200 + 400 ms of back-off, then back.
    control.unplug_for(3);
    let mut attempts_seen = Vec::new();
    let mut outage_since = None;
    let mut outage_began = None;
    let mut slowest_latest = Duration::ZERO;
    let deadline = Instant::now() + Duration::from_secs(5);
    let outage = loop {
        assert!(
            Instant::now() < deadline,
            "never came back: {:?}",
            camera.status()
        );
        let asked = Instant::now();
        let latest = camera.latest();
        slowest_latest = slowest_latest.max(asked.elapsed());
        assert!(
            latest.is_some_and(|f| f.seq >= before.seq),
            "latest() keeps answering"
        );
        match camera.status() {
            CameraStatus::Reconnecting {
                attempt,
                since,
                last_error,
            } => {
                outage_began.get_or_insert_with(Instant::now);
                assert_eq!(
                    *outage_since.get_or_insert(since),
                    since,
                    "one outage, one since"
                );
                assert!(last_error.contains("no camera at"), "{last_error}");
                if attempts_seen.last() != Some(&attempt) {
                    attempts_seen.push(attempt);
                }
            }
            CameraStatus::Live { .. } if outage_began.is_some() => {
                break outage_began.map(|t| t.elapsed()).unwrap_or_default();
            }
            CameraStatus::Live { .. } => {}
            other => panic!("unexpected status {other:?}"),
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    // Normally [1, 2, 3]; a busy machine may hide one sample, never the order or the end.
    assert_eq!(attempts_seen.last(), Some(&3), "{attempts_seen:?}");
    assert!(
        attempts_seen.windows(2).all(|w| w[0] < w[1]),
        "{attempts_seen:?}"
    );
    assert!(
        outage >= Duration::from_millis(650) && outage < Duration::from_millis(3000),
        "back-off 100+200+400 ms, outage lasted {outage:?}"
    );
    assert!(
        slowest_latest < Duration::from_millis(200),
        "{slowest_latest:?}"
    );

    // Frames resume, numbered on from before the outage.
    let mut seq = before.seq;
    for _ in 0..5 {
        let frame = camera
            .wait_newer(seq, Duration::from_secs(2))
            .expect("frames resume");
        assert!(frame.seq > seq);
        // The outage consumed no recorded frame: frame n is still recording frame n.
        let want = PALETTE[((frame.seq - 1) % 5) as usize];
        assert!(near(centre(&frame.image), want, 6), "frame {}", frame.seq);
        seq = frame.seq;
    }
    assert!(matches!(camera.status(), CameraStatus::Live { .. }));
}

#[test]
fn backoff_is_capped_and_resets_after_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let source = ReplaySource::open(&write_raw_stream(dir.path()), 100).unwrap();
    let control = source.control();
    let ctx = CameraContext {
        shutdown: Shutdown::new(),
        backoff: Backoff {
            initial: Duration::from_millis(60),
            max: Duration::from_millis(100),
        },
    };
    let camera = CameraHandle::spawn(Box::new(source), "replay", &ctx).unwrap();
    camera.wait_newer(1, Duration::from_secs(2)).unwrap();
    // 60 + 100 * 9 ms when capped (it would be a minute uncapped).
    control.unplug_for(11);
    assert!(wait_until(Duration::from_secs(2), || matches!(
        camera.status(),
        CameraStatus::Reconnecting { attempt: 11, .. }
    )));
    assert!(wait_until(Duration::from_secs(1), || matches!(
        camera.status(),
        CameraStatus::Live { .. }
    )));
    // A second outage starts again from the first delay.
    control.unplug_for(1);
    assert!(wait_until(Duration::from_secs(1), || matches!(
        camera.status(),
        CameraStatus::Reconnecting { attempt: 1, .. }
    )));
    assert!(wait_until(Duration::from_secs(1), || matches!(
        camera.status(),
        CameraStatus::Live { .. }
    )));
}

#[test]
fn latest_never_blocks_while_the_source_is_stalled() {
    let dir = tempfile::tempdir().unwrap();
    let source = ReplaySource::open(&write_raw_stream(dir.path()), 50).unwrap();
    let control = source.control();
    let camera = spawn(source);
    camera.wait_newer(2, Duration::from_secs(2)).unwrap();

    // The next read blocks for 1.5 s, as a wedged driver would.
    control.stall_next_read(Duration::from_millis(1500));
    let reads = control.reads();
    assert!(wait_until(Duration::from_secs(1), || control.reads() > reads));
    std::thread::sleep(Duration::from_millis(50));
    let stalled_at = camera.latest().unwrap().seq;

    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    let mut calls = 0;
    while started.elapsed() < Duration::from_millis(800) {
        let asked = Instant::now();
        let frame = camera.latest().expect("the last frame stays available");
        slowest = slowest.max(asked.elapsed());
        assert_eq!(frame.seq, stalled_at, "nothing new while stalled");
        let _ = camera.status();
        calls += 1;
    }
    assert!(calls > 100);
    assert!(
        slowest < Duration::from_millis(200),
        "latest() took {slowest:?}"
    );

    // A burst reader gives up after its own timeout rather than hanging on the source.
    let asked = Instant::now();
    assert!(
        camera
            .wait_newer(stalled_at, Duration::from_millis(100))
            .is_none()
    );
    assert!(asked.elapsed() < Duration::from_millis(800));

    let after = camera
        .wait_newer(stalled_at, Duration::from_secs(3))
        .expect("frames resume after the stall");
    assert!(after.seq > stalled_at);
}

#[test]
fn process_shutdown_stops_the_camera_and_wakes_waiters() {
    let dir = tempfile::tempdir().unwrap();
    let source = ReplaySource::open(&write_raw_stream(dir.path()), 30).unwrap();
    let process = Shutdown::new();
    let camera = CameraHandle::spawn(
        Box::new(source),
        "replay",
        &CameraContext::new(process.clone()),
    )
    .unwrap();
    let last = camera.wait_newer(0, Duration::from_secs(2)).unwrap();
    let waiter = std::thread::scope(|scope| {
        let waiting = scope.spawn(|| {
            let asked = Instant::now();
            (
                camera.wait_newer(u64::MAX - 1, Duration::from_secs(10)),
                asked.elapsed(),
            )
        });
        std::thread::sleep(Duration::from_millis(50));
        process.trigger();
        waiting.join().unwrap()
    });
    assert!(waiter.0.is_none());
    assert!(
        waiter.1 < Duration::from_secs(2),
        "woken by the stop: {:?}",
        waiter.1
    );
    assert!(wait_until(Duration::from_secs(1), || camera.status()
        == CameraStatus::Stopped));
    assert!(
        camera.latest().is_some_and(|f| f.seq >= last.seq),
        "the last frame stays"
    );
    let asked = Instant::now();
    camera.stop();
    assert!(asked.elapsed() < Duration::from_millis(1000));
}

#[test]
fn stopping_one_camera_leaves_the_others_running() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_raw_stream(dir.path());
    let ctx = CameraContext::default();
    let a =
        CameraHandle::spawn(Box::new(ReplaySource::open(&path, 50).unwrap()), "a", &ctx).unwrap();
    let b =
        CameraHandle::spawn(Box::new(ReplaySource::open(&path, 50).unwrap()), "b", &ctx).unwrap();
    a.wait_newer(0, Duration::from_secs(2)).unwrap();
    let asked = Instant::now();
    a.stop();
    assert!(
        asked.elapsed() < Duration::from_millis(1000),
        "stop is prompt"
    );
    assert!(!ctx.shutdown.is_triggered());
    let frame = b.wait_newer(0, Duration::from_secs(2)).unwrap();
    assert!(b.wait_newer(frame.seq, Duration::from_secs(2)).is_some());
}
