//! V4L2: what can be checked without a camera (the error when there is none, YUYV decoding).

mod common;

use std::path::Path;

use common::near;
use kissbooth_capture::{
    CameraContext, CameraSpec, CaptureError, RawFrame, SourceError, list_v4l2_devices, yuyv_to_rgb,
};

/// A `/dev/videoN` that does not exist on this machine.
fn absent_device() -> std::path::PathBuf {
    (0..64)
        .map(|n| std::path::PathBuf::from(format!("/dev/video{n}")))
        .find(|p| !p.exists())
        .expect("some /dev/videoN is free")
}

#[test]
fn missing_v4l2_device_is_a_clear_error() {
    let device = absent_device();
    let err = CameraSpec::v4l2(&device)
        .build(CameraContext::default())
        .unwrap_err();
    assert!(
        matches!(&err, CaptureError::NoCamera { device: d, .. } if d == &device),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.starts_with(&format!("no camera at {}: ", device.display())),
        "{message}"
    );
    assert!(message.contains("No such file or directory"), "{message}");
}

#[test]
fn a_file_that_is_not_a_camera_is_a_typed_error_not_a_panic() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let err = CameraSpec::v4l2(file.path())
        .build(CameraContext::default())
        .unwrap_err();
    assert!(
        matches!(
            err,
            CaptureError::Device { .. } | CaptureError::UnsupportedFormat { .. }
        ),
        "{err:?}"
    );
}

#[test]
fn listed_v4l2_devices_exist() {
    let devices = list_v4l2_devices();
    for device in &devices {
        assert!(device.exists(), "{}", device.display());
        assert!(device.starts_with(Path::new("/dev")));
    }
    let mut sorted = devices.clone();
    sorted.sort_by_key(|p| {
        p.to_str()
            .and_then(|s| s.trim_start_matches("/dev/video").parse::<u32>().ok())
    });
    assert_eq!(devices, sorted, "numeric order");
}

const WHITE: [u8; 4] = [235, 128, 235, 128];
const BLACK: [u8; 4] = [16, 128, 16, 128];
const RED: [u8; 4] = [81, 90, 81, 240];
const BLUE: [u8; 4] = [41, 240, 41, 110];
const GREEN: [u8; 4] = [145, 54, 145, 34];

#[test]
fn yuyv_converts_to_rgb() {
    // 6x2 pixels; rows padded to 16 bytes (12 used) with junk, as a driver's bytesperline may.
    let pad = [0xEE; 4];
    let data: Vec<u8> = [WHITE, BLACK, RED, pad, BLUE, GREEN, WHITE, pad].concat();
    let image = yuyv_to_rgb(6, 2, 16, &data).unwrap();
    assert_eq!(image.dimensions(), (6, 2));
    let expect = [
        [255, 255, 255],
        [255, 255, 255],
        [0, 0, 0],
        [0, 0, 0],
        [255, 0, 0],
        [255, 0, 0],
    ];
    for (x, want) in expect.iter().enumerate() {
        let got = image.get_pixel(x as u32, 0).0;
        assert!(near(got, *want, 2), "row 0, x {x}: {got:?} vs {want:?}");
    }
    let expect = [
        [0, 0, 255],
        [0, 0, 255],
        [0, 255, 0],
        [0, 255, 0],
        [255, 255, 255],
        [255, 255, 255],
    ];
    for (x, want) in expect.iter().enumerate() {
        let got = image.get_pixel(x as u32, 1).0;
        assert!(near(got, *want, 2), "row 1, x {x}: {got:?} vs {want:?}");
    }
    // Mid grey: Y 126 is (126-16)*255/219 = 128.
    let grey = yuyv_to_rgb(2, 1, 4, &[126, 128, 126, 128]).unwrap();
    assert!(near(grey.get_pixel(0, 0).0, [128, 128, 128], 1));
}

#[test]
fn short_or_odd_yuyv_frames_are_bad_frames() {
    assert!(matches!(
        yuyv_to_rgb(4, 2, 8, &[0; 15]),
        Err(SourceError::BadFrame(_))
    ));
    assert!(matches!(
        yuyv_to_rgb(3, 1, 6, &[0; 6]),
        Err(SourceError::BadFrame(_))
    ));
    assert!(matches!(
        yuyv_to_rgb(4, 1, 4, &[0; 8]),
        Err(SourceError::BadFrame(_))
    ));
    let raw = RawFrame::Yuyv {
        width: 2,
        height: 1,
        stride: 4,
        data: BLUE.to_vec(),
    };
    assert!(near(
        raw.decode().unwrap().get_pixel(1, 0).0,
        [0, 0, 255],
        2
    ));
}
