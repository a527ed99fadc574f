//! The generated test pattern.

mod common;

use std::time::Duration;

use kissbooth_capture::{CameraContext, CameraSpec, CameraStatus, test_pattern};

#[test]
fn test_pattern_moves_between_frames() {
    let spec: CameraSpec = "test:160x120@30".parse().unwrap();
    let camera = spec.build(CameraContext::default()).unwrap();
    let a = camera.wait_newer(0, Duration::from_secs(2)).unwrap();
    let b = camera.wait_newer(a.seq, Duration::from_secs(2)).unwrap();
    assert_eq!(a.image.dimensions(), (160, 120));
    assert_eq!(b.seq, a.seq + 1);
    assert_ne!(a.image.as_raw(), b.image.as_raw(), "the pattern moves");
    // The bars (top row) scroll, not just the counter.
    let row = |img: &image::RgbImage| (0..160).map(|x| img.get_pixel(x, 0).0).collect::<Vec<_>>();
    assert_ne!(row(&a.image), row(&b.image));
}

#[test]
fn test_pattern_runs_near_its_frame_rate() {
    let spec: CameraSpec = "test:64x48@20".parse().unwrap();
    let camera = spec.build(CameraContext::default()).unwrap();
    let first = camera.wait_newer(0, Duration::from_secs(2)).unwrap();
    let last = camera
        .wait_newer(first.seq + 9, Duration::from_secs(3))
        .unwrap();
    let elapsed = last.captured_at.duration_since(first.captured_at).unwrap();
    assert!(
        elapsed >= Duration::from_millis(420) && elapsed < Duration::from_millis(2000),
        "10 frames at 20 fps took {elapsed:?}"
    );
    match camera.status() {
        CameraStatus::Live { fps } => assert!((8.0..30.0).contains(&fps), "{fps}"),
        other => panic!("expected Live, got {other:?}"),
    }
}

#[test]
fn test_pattern_counter_block_shows_the_frame_number() {
    // 16 cells of 10 px after one grey cell, in the middle cell row, bottom-left.
    let image = test_pattern(640, 240, 0b1010_0000_0000_0101);
    let cell = 10;
    let y = 240 - 3 * cell + cell + cell / 2;
    let bits: String = (0..16)
        .map(|b| {
            let x = (b + 1) * cell + cell / 2;
            if image.get_pixel(x as u32, y as u32).0[0] > 200 {
                '1'
            } else {
                '0'
            }
        })
        .collect();
    assert_eq!(bits, "1010000000000101");
}
