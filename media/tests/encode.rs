//! Encoding real frames through real GStreamer, checked with ffprobe.

mod common;

use std::time::Instant;

use common::{config, encode, entries, ffprobe, has_encoder, pattern, probe, top_level_boxes};
use kissbooth_media::{
    AI_GENERATED_LABEL, EncoderChoice, EncoderConfig, Overlay, Placement, VideoMetadata, VideoSpec,
    available_encoders,
};

#[test]
fn encodes_h264_yuv420p_that_browsers_play() {
    if !has_encoder("x264enc") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("kiss.mp4");
    let video = encode(
        &config(EncoderChoice::X264enc),
        VideoSpec::new(512, 512, 24),
        48,
        &out,
    );

    assert_eq!(video.path, out);
    assert_eq!(video.frames, 48);
    assert_eq!(video.encoder, "x264enc");
    assert!((video.duration_s - 2.0).abs() < 1e-9);
    assert_eq!(video.bytes, std::fs::metadata(&out).unwrap().len());

    let p = probe(&out);
    assert_eq!(p.codec_name, "h264");
    assert_eq!(p.pix_fmt, "yuv420p", "4:4:4 does not play in browsers");
    assert_eq!(p.profile, "High");
    assert_eq!((p.width, p.height), (512, 512));
    assert_eq!(p.r_frame_rate, "24/1");
    assert_eq!(p.frames, 48);
    assert!(
        (p.duration_s - 2.0).abs() < 0.05,
        "duration {}",
        p.duration_s
    );
    assert_eq!(
        entries(dir.path()),
        ["kiss.mp4"],
        "no temporaries left behind"
    );
}

#[test]
fn encodes_landscape_and_portrait_720p() {
    if !has_encoder("x264enc") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (w, h) in [(1280, 720), (720, 1280)] {
        let out = dir.path().join(format!("{w}x{h}.mp4"));
        encode(
            &config(EncoderChoice::X264enc),
            VideoSpec::new(w, h, 24),
            12,
            &out,
        );
        let p = probe(&out);
        assert_eq!((p.width, p.height), (u64::from(w), u64::from(h)));
        assert_eq!(p.pix_fmt, "yuv420p");
        assert_eq!(p.frames, 12);
        assert!(
            (p.duration_s - 0.5).abs() < 0.05,
            "duration {}",
            p.duration_s
        );
    }
}

#[test]
fn encodes_a_width_whose_rgb_rows_need_padding() {
    // 90 * 3 = 270 bytes per row: GStreamer wants rows on 4-byte boundaries.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("narrow.mp4");
    let spec = VideoSpec::new(90, 64, 10);
    let mut enc = EncoderConfig::default()
        .build(&spec, &out, &VideoMetadata::default())
        .unwrap();
    for n in 0..10 {
        enc.push_rgb(pattern(90, 64, n).as_raw()).unwrap();
    }
    enc.finish().unwrap();
    let p = probe(&out);
    assert_eq!((p.width, p.height, p.frames), (90, 64, 10));
}

#[test]
fn moov_atom_comes_before_mdat() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("fast.mp4");
    encode(
        &EncoderConfig::default(),
        VideoSpec::new(128, 128, 24),
        24,
        &out,
    );
    let boxes = top_level_boxes(&out);
    let moov = boxes.iter().position(|b| b == "moov").expect("a moov box");
    let mdat = boxes.iter().position(|b| b == "mdat").expect("an mdat box");
    assert!(
        moov < mdat,
        "faststart: moov must precede mdat, got {boxes:?}"
    );
    assert_eq!(boxes[0], "ftyp");
}

#[test]
fn marks_the_video_as_ai_generated() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("label.mp4");
    let meta = VideoMetadata {
        title: Some("Anna & Ben".to_owned()),
        ..VideoMetadata::default()
    };
    let spec = VideoSpec::new(64, 64, 24);
    let mut enc = EncoderConfig::default().build(&spec, &out, &meta).unwrap();
    for n in 0..6 {
        enc.push(&pattern(64, 64, n)).unwrap();
    }
    enc.finish().unwrap();

    let v = ffprobe(&out, &["-show_entries", "format_tags"]);
    let tags = &v["format"]["tags"];
    eprintln!("format tags: {tags}");
    let comment = tags["comment"].as_str().unwrap_or_default();
    assert!(comment.contains("AI-generated"), "comment tag: {tags}");
    assert_eq!(comment, AI_GENERATED_LABEL);
    assert_eq!(tags["title"].as_str(), Some("Anna & Ben"));
}

#[test]
fn keeps_the_ai_label_when_the_comment_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("label2.mp4");
    let meta = VideoMetadata {
        title: None,
        comment: "Wedding of A and B".to_owned(),
        created_unix_s: None,
        visible_label: true,
    };
    let spec = VideoSpec::new(64, 64, 24);
    let mut enc = EncoderConfig::default().build(&spec, &out, &meta).unwrap();
    enc.push(&pattern(64, 64, 0)).unwrap();
    enc.finish().unwrap();

    let v = ffprobe(&out, &["-show_entries", "format_tags"]);
    let tags = &v["format"]["tags"];
    assert_eq!(tags["comment"].as_str(), Some("Wedding of A and B"));
    assert_eq!(
        tags["keywords"].as_str(),
        Some(kissbooth_media::AI_GENERATED_KEYWORD)
    );
    let labelled = tags
        .as_object()
        .into_iter()
        .flatten()
        .any(|(_, v)| v.as_str().is_some_and(|s| s.contains("AI-generated")));
    assert!(labelled, "some tag must still say AI-generated: {tags}");
}

#[test]
fn auto_picks_an_installed_encoder() {
    let installed = available_encoders();
    eprintln!("installed H.264 encoders: {installed:?}");
    assert!(
        !installed.is_empty(),
        "this machine should have x264enc or openh264enc"
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("auto.mp4");
    let enc = EncoderConfig::default()
        .build(&VideoSpec::new(64, 64, 24), &out, &VideoMetadata::default())
        .unwrap();
    assert_eq!(
        enc.encoder_name(),
        installed[0],
        "auto takes the first preferred one"
    );
    assert!(
        enc.pipeline_description()
            .contains("video/x-raw,format=I420")
            || enc.encoder_name() == "nvv4l2h264enc"
    );
}

#[test]
fn openh264_is_constrained_baseline() {
    if !has_encoder("openh264enc") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("baseline.mp4");
    let video = encode(
        &config(EncoderChoice::Openh264enc),
        VideoSpec::new(256, 256, 24),
        24,
        &out,
    );
    assert_eq!(video.encoder, "openh264enc");
    let p = probe(&out);
    assert_eq!(p.codec_name, "h264");
    assert_eq!(p.profile, "Constrained Baseline");
    assert_eq!(p.pix_fmt, "yuv420p");
    assert_eq!(p.frames, 24);
}

#[test]
fn keyframes_follow_the_configured_interval() {
    if !has_encoder("x264enc") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("gop.mp4");
    let cfg = EncoderConfig {
        encoder: EncoderChoice::X264enc,
        keyframe_interval_s: 0.5,
        ..EncoderConfig::default()
    };
    encode(&cfg, VideoSpec::new(128, 128, 24), 48, &out);
    let v = ffprobe(
        &out,
        &["-select_streams", "v:0", "-show_entries", "frame=key_frame"],
    );
    let keys: Vec<usize> = v["frames"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .filter(|(_, f)| f["key_frame"].as_u64() == Some(1))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(keys.first(), Some(&0));
    assert!(
        keys.windows(2).all(|w| w[1] - w[0] <= 12),
        "a keyframe at least every 12 frames (0.5 s at 24 fps): {keys:?}"
    );
}

#[test]
fn applies_the_overlay_to_every_pushed_frame() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("branded.mp4");
    let spec = VideoSpec::new(64, 64, 24);
    let mut enc = EncoderConfig::default()
        .build(&spec, &out, &VideoMetadata::default())
        .unwrap();
    let white = image::RgbaImage::from_pixel(8, 8, image::Rgba([255, 255, 255, 255]));
    enc.set_overlay(Some(Overlay::from_rgba(white, Placement::Full).unwrap()));
    let black = image::RgbImage::new(64, 64);
    for _ in 0..4 {
        enc.push(&black).unwrap();
    }
    enc.finish().unwrap();

    let decoded = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&out)
        .args(["-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "gray", "-"])
        .output()
        .expect("ffmpeg");
    assert!(
        decoded.status.success(),
        "{}",
        String::from_utf8_lossy(&decoded.stderr)
    );
    let mean =
        decoded.stdout.iter().map(|&v| f64::from(v)).sum::<f64>() / decoded.stdout.len() as f64;
    assert!(
        mean > 200.0,
        "black frames under a white overlay should decode white, mean {mean}"
    );
}

/// The first frame of `video`, decoded to RGB.
fn first_frame(video: &std::path::Path, w: u32, h: u32) -> image::RgbImage {
    let o = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(video)
        .args(["-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .expect("ffmpeg");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    image::RgbImage::from_raw(w, h, o.stdout).expect("one whole frame")
}

#[test]
fn every_frame_shows_the_ai_mark_over_the_branding_unless_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    let spec = VideoSpec::new(720, 720, 24);
    let mut agreement = Vec::new();
    for visible_label in [true, false] {
        let out = dir.path().join(format!("label-{visible_label}.mp4"));
        let meta = VideoMetadata {
            visible_label,
            ..VideoMetadata::default()
        };
        let mut enc = EncoderConfig::default().build(&spec, &out, &meta).unwrap();
        // A white branding border over the whole frame: the mark still shows over it.
        let white = image::RgbaImage::from_pixel(8, 8, image::Rgba([255, 255, 255, 255]));
        enc.set_overlay(Some(Overlay::from_rgba(white, Placement::Full).unwrap()));
        let frame = image::RgbImage::from_pixel(720, 720, image::Rgb([90, 120, 150]));
        for _ in 0..3 {
            enc.push(&frame).unwrap();
        }
        enc.finish().unwrap();
        agreement.push(kissbooth_media::label_agreement(&first_frame(&out, 720, 720)).unwrap());
    }
    assert!(agreement[0] > 0.95, "the mark reads {}", agreement[0]);
    assert!(agreement[1] < 0.7, "no mark, yet it reads {}", agreement[1]);
}

#[test]
fn the_poster_shows_the_ai_mark() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("poster.jpg");
    let frame = image::RgbImage::from_pixel(720, 1280, image::Rgb([40, 40, 40]));
    kissbooth_media::write_poster(&frame, &path, 90).unwrap();
    let poster = image::open(&path).unwrap().to_rgb8();
    let agreement = kissbooth_media::label_agreement(&poster).unwrap();
    assert!(agreement > 0.95, "the poster's mark reads {agreement}");
}

#[test]
fn an_encoder_can_be_finished_on_another_thread() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("thread.mp4");
    let mut enc = EncoderConfig::default()
        .build(&VideoSpec::new(64, 64, 24), &out, &VideoMetadata::default())
        .unwrap();
    enc.push(&pattern(64, 64, 0)).unwrap();
    let video = std::thread::spawn(move || {
        enc.push(&pattern(64, 64, 1)).unwrap();
        enc.finish().unwrap()
    })
    .join()
    .unwrap();
    assert_eq!(video.frames, 2);
    assert_eq!(probe(&out).frames, 2);
}

#[test]
fn reports_encode_speed_for_120_frames_at_512() {
    let spec = VideoSpec::new(512, 512, 24);
    let frames: Vec<_> = (0..120).map(|n| pattern(512, 512, n)).collect();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("speed.mp4");
    let started = Instant::now();
    let mut enc = EncoderConfig::default()
        .build(&spec, &out, &VideoMetadata::default())
        .unwrap();
    for f in &frames {
        enc.push(f).unwrap();
    }
    let video = enc.finish().unwrap();
    let took = started.elapsed();
    eprintln!(
        "encode speed: 120 frames 512x512 with {} in {:.2} s = {:.1} fps, {} bytes",
        video.encoder,
        took.as_secs_f64(),
        120.0 / took.as_secs_f64(),
        video.bytes
    );
}

#[test]
fn a_fixed_creation_time_is_written_into_the_headers() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("dated.mp4");
    let meta = VideoMetadata {
        created_unix_s: Some(1_767_225_600),
        ..VideoMetadata::default()
    };
    let spec = VideoSpec::new(64, 64, 24);
    let mut enc = EncoderConfig::default().build(&spec, &out, &meta).unwrap();
    for i in 0..12 {
        enc.push(&pattern(64, 64, i)).unwrap();
    }
    enc.finish().unwrap();
    let o = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format_tags=creation_time:stream_tags=creation_time",
            "-of",
            "json",
        ])
        .arg(&out)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.matches("2026-01-01T00:00:00").count() >= 2, "{text}");
}
