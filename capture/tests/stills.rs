//! The stills folder source.

mod common;

use std::time::Duration;

use common::{centre, near, noisy_jpeg, wait_until, with_exif_orientation, write_jpeg, write_png};
use image::{Rgb, RgbImage};
use kissbooth_capture::{CameraContext, CameraSpec, CameraStatus, CaptureError};

const RED: [u8; 3] = [220, 20, 20];
const GREEN: [u8; 3] = [20, 200, 40];
const BLUE: [u8; 3] = [30, 40, 210];

fn stills(folder: &std::path::Path, interval_ms: u64) -> CameraSpec {
    CameraSpec::Stills {
        folder: folder.to_owned(),
        interval_ms,
    }
}

#[test]
fn stills_loop_in_name_order() {
    let dir = tempfile::tempdir().unwrap();
    // Written out of order; played as a.png, b.jpg, c.PNG, a.png, ...
    write_png(&dir.path().join("c.PNG"), 64, 48, BLUE);
    write_png(&dir.path().join("a.png"), 64, 48, RED);
    write_jpeg(&dir.path().join("b.jpg"), 64, 48, GREEN);
    std::fs::write(dir.path().join("notes.txt"), "not an image").unwrap();

    let camera = stills(dir.path(), 20)
        .build(CameraContext::default())
        .unwrap();
    let order = [RED, GREEN, BLUE];
    let mut seq = 0;
    for _ in 0..7 {
        let frame = camera
            .wait_newer(seq, Duration::from_secs(2))
            .expect("a frame");
        // A busy reader may miss frames; frame n is still image n of the loop.
        assert!(frame.seq > seq);
        let expected = order[((frame.seq - 1) % 3) as usize];
        assert!(
            near(centre(&frame.image), expected, 6),
            "frame {} is {:?}, expected {:?}",
            frame.seq,
            centre(&frame.image),
            expected
        );
        assert_eq!(frame.image.dimensions(), (64, 48));
        assert_eq!(frame.source, format!("stills:{}", dir.path().display()));
        seq = frame.seq;
    }
    assert!(matches!(camera.status(), CameraStatus::Live { .. }));
    assert!(
        camera.describe().contains("3 images"),
        "{}",
        camera.describe()
    );
}

#[test]
fn stills_play_at_the_configured_interval() {
    let dir = tempfile::tempdir().unwrap();
    write_png(&dir.path().join("a.png"), 16, 16, RED);
    let camera = stills(dir.path(), 50)
        .build(CameraContext::default())
        .unwrap();
    let first = camera.wait_newer(0, Duration::from_secs(2)).unwrap();
    let sixth = camera
        .wait_newer(first.seq + 4, Duration::from_secs(2))
        .unwrap();
    let elapsed = sixth.captured_at.duration_since(first.captured_at).unwrap();
    assert!(
        elapsed >= Duration::from_millis(230) && elapsed < Duration::from_millis(1200),
        "5 intervals of 50 ms took {elapsed:?}"
    );
}

#[test]
fn empty_stills_folder_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("README.txt"), "put photos here").unwrap();
    let err = stills(dir.path(), 200)
        .build(CameraContext::default())
        .unwrap_err();
    assert!(matches!(err, CaptureError::NoStills { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains(&dir.path().display().to_string()),
        "{message}"
    );
    assert!(message.contains("no JPEG or PNG"), "{message}");
}

#[test]
fn missing_stills_folder_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let err = stills(&missing, 200)
        .build(CameraContext::default())
        .unwrap_err();
    assert!(matches!(err, CaptureError::StillsFolder { .. }), "{err:?}");
    assert!(err.to_string().contains("nope"), "{err}");
}

#[test]
fn folder_of_only_unreadable_images_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.jpg"), b"not a jpeg at all").unwrap();
    std::fs::write(dir.path().join("b.png"), b"\x89PNG truncated").unwrap();
    let err = stills(dir.path(), 200)
        .build(CameraContext::default())
        .unwrap_err();
    match &err {
        CaptureError::NoReadableStills {
            count, first_error, ..
        } => {
            assert_eq!(*count, 2);
            assert!(first_error.contains("a.jpg"), "{first_error}");
        }
        other => panic!("expected NoReadableStills, got {other:?}"),
    }
}

#[test]
fn unreadable_file_in_the_loop_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    write_png(&dir.path().join("1.png"), 32, 32, RED);
    std::fs::write(dir.path().join("2.jpg"), b"\xFF\xD8\xFF\xE0 broken").unwrap();
    write_png(&dir.path().join("3.png"), 32, 32, BLUE);
    let camera = stills(dir.path(), 15)
        .build(CameraContext::default())
        .unwrap();
    let mut seq = 0;
    for _ in 0..6 {
        let frame = camera
            .wait_newer(seq, Duration::from_secs(2))
            .expect("a frame");
        let expected = if frame.seq % 2 == 1 { RED } else { BLUE };
        assert!(
            near(centre(&frame.image), expected, 0),
            "frame {}",
            frame.seq
        );
        seq = frame.seq;
    }
}

#[test]
fn oversized_still_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    // 12001 px wide: over the 12000 px limit, but a tiny file.
    write_png(&dir.path().join("huge.png"), 12_001, 1, RED);
    let err = stills(dir.path(), 200)
        .build(CameraContext::default())
        .unwrap_err();
    assert!(
        matches!(err, CaptureError::NoReadableStills { .. }),
        "{err:?}"
    );

    write_png(&dir.path().join("small.png"), 8, 8, GREEN);
    let camera = stills(dir.path(), 15)
        .build(CameraContext::default())
        .unwrap();
    for seq in 0..3 {
        let frame = camera.wait_newer(seq, Duration::from_secs(2)).unwrap();
        assert_eq!(frame.image.dimensions(), (8, 8));
    }
}

#[test]
fn stills_added_while_running_join_the_loop() {
    let dir = tempfile::tempdir().unwrap();
    write_png(&dir.path().join("a.png"), 16, 16, RED);
    let camera = stills(dir.path(), 15)
        .build(CameraContext::default())
        .unwrap();
    camera.wait_newer(0, Duration::from_secs(2)).unwrap();
    write_png(&dir.path().join("b.png"), 16, 16, GREEN);
    let mut seq = 0;
    let saw_green = (0..20).any(|_| {
        let frame = camera.wait_newer(seq, Duration::from_secs(2)).unwrap();
        seq = frame.seq;
        near(centre(&frame.image), GREEN, 0)
    });
    assert!(saw_green);
}

#[test]
fn a_still_stored_sideways_comes_out_upright() {
    let dir = tempfile::tempdir().unwrap();
    // Upright: 64x48, red on top, blue below. Stored turned a quarter anticlockwise (48x64)
    // with Orientation 6 ("turn 90° clockwise to view"), as a phone saves a portrait.
    let upright = RgbImage::from_fn(64, 48, |_, y| Rgb(if y < 24 { RED } else { BLUE }));
    let stored = image::imageops::rotate270(&upright);
    let jpeg = with_exif_orientation(&kissbooth_capture::jpeg_encode(&stored, 95), 6);
    std::fs::write(dir.path().join("portrait.jpg"), jpeg).unwrap();
    let camera = stills(dir.path(), 20)
        .build(CameraContext::default())
        .unwrap();
    let frame = camera.wait_newer(0, Duration::from_secs(2)).unwrap();
    assert_eq!(frame.image.dimensions(), (64, 48));
    let top = frame.image.get_pixel(32, 8).0;
    let bottom = frame.image.get_pixel(32, 40).0;
    assert!(near(top, RED, 12), "top is {top:?}");
    assert!(near(bottom, BLUE, 12), "bottom is {bottom:?}");
}

/// The colours of the next `n` frames' centres.
fn next_centres(camera: &kissbooth_capture::CameraHandle, n: usize) -> Vec<[u8; 3]> {
    let mut seq = camera.latest().map_or(0, |f| f.seq);
    (0..n)
        .map(|_| {
            let frame = camera
                .wait_newer(seq, Duration::from_secs(2))
                .expect("a frame");
            seq = frame.seq;
            centre(&frame.image)
        })
        .collect()
}

#[test]
fn a_truncated_jpeg_is_never_a_frame_until_it_is_whole() {
    let dir = tempfile::tempdir().unwrap();
    write_png(&dir.path().join("a.png"), 128, 96, RED);
    // A file still being copied in: the first half of a JPEG (it would decode, grey below).
    let whole = noisy_jpeg(128, 96);
    let copying = dir.path().join("b.jpg");
    std::fs::write(&copying, &whole[..whole.len() / 2]).unwrap();
    let camera = stills(dir.path(), 10)
        .build(CameraContext::default())
        .unwrap();
    let centres = next_centres(&camera, 12);
    assert!(
        centres.iter().all(|c| *c == RED),
        "the half-copied JPEG became a frame: {centres:?}"
    );
    // The copy finishes: the picture joins the loop.
    std::fs::write(&copying, &whole).unwrap();
    let mut seq = 0;
    assert!(
        wait_until(Duration::from_secs(5), || {
            let frame = camera.wait_newer(seq, Duration::from_secs(2)).unwrap();
            seq = frame.seq;
            centre(&frame.image) != RED
        }),
        "the whole JPEG never became a frame"
    );
}

#[test]
fn a_fifo_or_a_device_in_the_folder_never_stalls_the_camera() {
    let dir = tempfile::tempdir().unwrap();
    write_png(&dir.path().join("a.png"), 32, 32, RED);
    let fifo = dir.path().join("fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    // Named like pictures, through links (a link is listed like a file).
    std::os::unix::fs::symlink(&fifo, dir.path().join("b.jpg")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", dir.path().join("c.jpg")).unwrap();
    // On a thread: a camera stuck opening the FIFO fails the test instead of hanging it.
    let folder = dir.path().to_owned();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let camera = stills(&folder, 10).build(CameraContext::default()).unwrap();
        let _ = tx.send(next_centres(&camera, 8));
    });
    let centres = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the camera hung on a FIFO or a device");
    assert!(centres.iter().all(|c| *c == RED), "{centres:?}");
}

#[test]
fn a_camera_missing_at_start_waits_says_why_and_goes_live_when_it_appears() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("stills");
    // `build` refuses a folder that is not there; `build_waiting` starts and waits for it.
    assert!(stills(&folder, 20).build(CameraContext::default()).is_err());
    let ctx = CameraContext {
        backoff: kissbooth_capture::Backoff {
            initial: Duration::from_millis(50),
            max: Duration::from_millis(100),
        },
        ..CameraContext::default()
    };
    let camera = stills(&folder, 20).build_waiting(ctx).unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || {
            matches!(camera.status(), CameraStatus::Reconnecting { .. })
        }),
        "{:?}",
        camera.status()
    );
    match camera.status() {
        CameraStatus::Reconnecting { last_error, .. } => {
            assert!(last_error.contains("camera unavailable"), "{last_error}")
        }
        other => panic!("{other:?}"),
    }
    assert!(camera.latest().is_none());
    assert!(
        camera.describe().contains("not available yet"),
        "{}",
        camera.describe()
    );
    // An empty folder is still no camera.
    std::fs::create_dir(&folder).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(camera.latest().is_none());
    assert!(matches!(camera.status(), CameraStatus::Reconnecting { .. }));
    // A picture arrives: live, with that picture.
    write_png(&folder.join("a.png"), 64, 48, GREEN);
    let frame = camera
        .wait_newer(0, Duration::from_secs(5))
        .expect("a frame once the camera is there");
    assert!(near(centre(&frame.image), GREEN, 6));
    assert!(
        wait_until(Duration::from_secs(5), || {
            matches!(camera.status(), CameraStatus::Live { .. })
        }),
        "{:?}",
        camera.status()
    );
}
