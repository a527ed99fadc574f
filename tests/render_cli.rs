//! `kissbooth render` end to end: the real binary, real models, real GStreamer, checked with
//! ffprobe; bad inputs leave nothing at the output path.

mod support;

use std::path::Path;
use std::process::Command;

use support::*;

fn probe(path: &Path) -> serde_json::Value {
    let o = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries"])
        .arg("stream=codec_name,pix_fmt,width,height,r_frame_rate,nb_read_frames:format=duration:format_tags")
        .args(["-of", "json"])
        .arg(path)
        .output()
        .expect("ffprobe (scripts/setup installs ffmpeg)");
    assert!(
        o.status.success(),
        "ffprobe: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

fn render(args: &[&str], inputs: &[&Path], out: &Path) -> std::process::Output {
    kissbooth()
        .arg("render")
        .args(args)
        .arg("-o")
        .arg(out)
        .args(inputs)
        .output()
        .unwrap()
}

#[test]
fn renders_the_couple_frame_to_a_phone_playable_mp4_and_poster() {
    if !have_models("renders_the_couple_frame_to_a_phone_playable_mp4_and_poster") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("kiss.mp4");
    let o = render(
        &[
            "--json",
            "--seconds",
            "3",
            "--fps",
            "24",
            "--size",
            "512x512",
        ],
        &[&fixture("couple_1280x720.jpg")],
        &out,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let last: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&o.stdout).lines().last().unwrap()).unwrap();
    assert_eq!(last["event"], "done");
    let p = probe(&out);
    let s = &p["streams"][0];
    assert_eq!(s["codec_name"], "h264");
    assert_eq!(s["pix_fmt"], "yuv420p");
    assert_eq!(
        (s["width"].as_u64(), s["height"].as_u64()),
        (Some(512), Some(512))
    );
    assert_eq!(s["r_frame_rate"], "24/1");
    let frames: i64 = s["nb_read_frames"].as_str().unwrap().parse().unwrap();
    assert!(
        (frames - 72).abs() <= 1,
        "{frames} frames for 3 s at 24 fps"
    );
    let tags = p["format"]["tags"].to_string();
    assert!(tags.contains("AI-generated"), "AI label missing: {tags}");
    // mouths meet: under 10% of a typical inter-ocular distance at this size
    let mouth = last["contact_mouth_distance_px"].as_f64().unwrap();
    assert!(mouth < 5.0, "mouths {mouth} px apart at contact");
    let poster = image::open(dir.path().join("kiss.jpg")).unwrap();
    assert_eq!((poster.width(), poster.height()), (512, 512));
}

#[test]
fn renders_two_single_portraits_in_portrait_format() {
    if !have_models("renders_two_single_portraits_in_portrait_format") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pair.mp4");
    let o = render(
        &["--seconds", "3", "--fps", "20", "--size", "576x1024"],
        &[
            &fixture("mona_lisa.jpg"),
            &fixture("Baldassare_Castiglione.jpg"),
        ],
        &out,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let s = &probe(&out)["streams"][0];
    assert_eq!(
        (s["width"].as_u64(), s["height"].as_u64()),
        (Some(576), Some(1024))
    );
    assert_eq!(s["r_frame_rate"], "20/1");
    assert!(dir.path().join("pair.jpg").is_file());
}

#[test]
fn bad_inputs_are_refused_and_leave_no_file() {
    if !have_models("bad_inputs_are_refused_and_leave_no_file") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("k.mp4");
    let wall = dir.path().join("wall.png");
    image::RgbImage::from_pixel(640, 480, image::Rgb([180, 170, 160]))
        .save(&wall)
        .unwrap();
    let cases: Vec<(&str, Vec<std::path::PathBuf>, &str)> = vec![
        ("no face", vec![wall.clone()], "can't see your faces"),
        (
            "one face in a couple frame",
            vec![fixture("mona_lisa.jpg")],
            "both of you",
        ),
        (
            "unreadable file",
            vec![dir.path().join("missing.jpg")],
            "missing.jpg",
        ),
    ];
    for (what, inputs, needle) in cases {
        let refs: Vec<&Path> = inputs.iter().map(|p| p.as_path()).collect();
        let o = render(&["--seconds", "3"], &refs, &out);
        assert!(!o.status.success(), "{what}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains(needle) && !err.contains("panicked"),
            "{what}: {err}"
        );
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "{what}: left files behind"
        );
    }
    let o = render(
        &["--seconds", "3"],
        &[&fixture("couple_1280x720.jpg")],
        &dir.path().join("no/such/dir/k.mp4"),
    );
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("does not exist"));
    let o = render(
        &["--seconds", "12"],
        &[&fixture("couple_1280x720.jpg")],
        &out,
    );
    assert!(!o.status.success());
    assert!(!out.exists());
}
