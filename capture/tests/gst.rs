//! GStreamer sources, against real GStreamer (videotestsrc, a JPEG through jpegdec).

mod common;

use std::time::{Duration, Instant};

use common::{near, wait_until};
use image::{Rgb, RgbImage};
use kissbooth_capture::{CameraContext, CameraSpec, CameraStatus, CaptureError, jpeg_encode};

fn gst(pipeline: &str) -> CameraSpec {
    CameraSpec::Gst {
        pipeline: pipeline.into(),
    }
}

#[test]
fn gst_videotestsrc_delivers_frames() {
    let spec: CameraSpec =
        "gst:videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=15/1"
            .parse()
            .unwrap();
    let camera = spec.build(CameraContext::default()).unwrap();
    let first = camera
        .wait_newer(0, Duration::from_secs(5))
        .expect("a frame");
    assert_eq!(first.image.dimensions(), (320, 240));
    // SMPTE bars: the leftmost bar is white, the second yellow (no blue).
    let white = first.image.get_pixel(5, 5).0;
    let yellow = first.image.get_pixel(60, 5).0;
    assert!(white.iter().all(|c| *c > 180), "{white:?}");
    assert!(
        yellow[0] > 180 && yellow[1] > 180 && yellow[2] < 40,
        "{yellow:?}"
    );
    let started = Instant::now();
    let mut seq = first.seq;
    for _ in 0..8 {
        seq = camera
            .wait_newer(seq, Duration::from_secs(2))
            .expect("frames keep coming")
            .seq;
    }
    let fps = 8.0 / started.elapsed().as_secs_f32();
    assert!(
        (6.0..22.0).contains(&fps),
        "15 fps source delivered {fps:.1} fps"
    );
    match camera.status() {
        CameraStatus::Live { fps } => assert!((6.0..22.0).contains(&fps), "{fps}"),
        other => panic!("expected Live, got {other:?}"),
    }
    assert!(
        camera.describe().contains("appsink name=kb_sink"),
        "{}",
        camera.describe()
    );
}

#[test]
fn gst_still_image_rows_survive_stride_padding() {
    // 322 px wide: 966 bytes of RGB per row, which GStreamer pads to 968. Mishandled
    // padding shears the image, moving the red/blue edge from row to row.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("halves.jpg");
    let image = RgbImage::from_fn(322, 240, |x, _| {
        if x < 161 {
            Rgb([220, 20, 20])
        } else {
            Rgb([20, 20, 220])
        }
    });
    std::fs::write(&path, jpeg_encode(&image, 95)).unwrap();

    let camera = gst(&format!(
        "filesrc location=\"{}\" ! jpegdec ! imagefreeze is-live=true ! video/x-raw,framerate=20/1",
        path.display()
    ))
    .build(CameraContext::default())
    .unwrap();
    let frame = camera
        .wait_newer(0, Duration::from_secs(5))
        .expect("a frame");
    assert_eq!(frame.image.dimensions(), (322, 240));
    for y in 0..240 {
        for x in [0, 80, 150] {
            let px = frame.image.get_pixel(x, y).0;
            assert!(
                near(px, [220, 20, 20], 24),
                "({x},{y}) {px:?} should be red"
            );
        }
        for x in [172, 250, 321] {
            let px = frame.image.get_pixel(x, y).0;
            assert!(
                near(px, [20, 20, 220], 24),
                "({x},{y}) {px:?} should be blue"
            );
        }
    }
    // imagefreeze made it live: it repeats at 20 fps, it does not spin. (Over several
    // frames: one late read can make two frames arrive close together.)
    let sixth = camera
        .wait_newer(frame.seq + 4, Duration::from_secs(3))
        .unwrap();
    let span = sixth.captured_at.duration_since(frame.captured_at).unwrap();
    let frames = sixth.seq - frame.seq;
    assert!(
        span > Duration::from_millis(20 * frames),
        "{frames} frames in {span:?}"
    );
}

#[test]
fn gst_pipeline_error_is_typed() {
    let unknown = gst("kb_no_such_element ! videoconvert")
        .build(CameraContext::default())
        .unwrap_err();
    match &unknown {
        CaptureError::GstPipeline { pipeline, message } => {
            assert!(message.contains("kb_no_such_element"), "{message}");
            assert!(pipeline.ends_with("appsink name=kb_sink max-buffers=1 drop=true sync=false"));
        }
        other => panic!("expected GstPipeline, got {other:?}"),
    }

    let unlinkable = gst("audiotestsrc")
        .build(CameraContext::default())
        .unwrap_err();
    assert!(
        matches!(unlinkable, CaptureError::GstPipeline { .. }),
        "{unlinkable:?}"
    );

    let missing_file =
        gst("filesrc location=/nonexistent/kb-missing.jpg ! jpegdec ! imagefreeze is-live=true")
            .build(CameraContext::default())
            .unwrap_err();
    match &missing_file {
        CaptureError::GstStart { message, .. } => {
            assert!(message.contains("kb-missing.jpg"), "{message}");
        }
        other => panic!("expected GstStart, got {other:?}"),
    }
    assert!(
        missing_file.to_string().contains("failed to start"),
        "{missing_file}"
    );
}

#[test]
fn gst_end_of_stream_rebuilds_the_pipeline() {
    // Six frames, then end of stream: the pipeline is rebuilt (after 100 ms) and frames
    // continue with increasing numbers.
    let camera = gst(
        "videotestsrc is-live=true num-buffers=6 ! video/x-raw,width=64,height=48,framerate=30/1",
    )
    .build(CameraContext::default())
    .unwrap();
    let mut saw_eos = false;
    assert!(wait_until(Duration::from_secs(5), || {
        if let CameraStatus::Reconnecting {
            last_error,
            attempt,
            ..
        } = camera.status()
        {
            assert_eq!(attempt, 1);
            assert!(last_error.contains("end of stream"), "{last_error}");
            saw_eos = true;
        }
        saw_eos
    }));
    let frame = camera
        .wait_newer(6, Duration::from_secs(5))
        .expect("frames after the rebuild");
    assert!(frame.seq > 6);
    assert!(wait_until(Duration::from_secs(2), || matches!(
        camera.status(),
        CameraStatus::Live { .. } | CameraStatus::Reconnecting { .. }
    )));
}
