//! Face analysis against the real models: agreement with the Python reference, robustness to
//! transformed captures, and the gate's verdicts.

mod common;

use std::process::Command;

use image::{Pixel, Rgb, RgbImage, imageops};
use kissbooth_engines::face::quality::Reason;
use kissbooth_engines::face::{FaceAnalyzer, FaceConfig, image_io, iou};
use kissbooth_engines::manifest::{Manifest, ManifestError, check_session};
use kissbooth_engines::runtime::Provider;
use kissbooth_engines::{Face, Landmarks};

fn analyzer(rt: &kissbooth_engines::runtime::Runtime, models: &std::path::Path) -> FaceAnalyzer {
    FaceAnalyzer::open(rt, models, FaceConfig::default()).expect("face models open")
}

#[derive(serde::Deserialize)]
struct RefImage {
    faces: Vec<Face>,
}

#[test]
fn matches_the_python_reference_on_every_fixture() {
    let Some((models, rt)) = common::setup("matches_the_python_reference_on_every_fixture") else {
        return;
    };
    let images = common::fixture_images();
    assert!(images.len() >= 4, "fixtures missing");
    let script = common::shared().join("reference/face_ref.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg("--models")
        .arg(&models)
        .args(&images)
        .output();
    let out = match out {
        Ok(o) if o.status.success() => o,
        Ok(o) => panic!(
            "reference failed (scripts/setup installs onnxruntime, numpy, pillow): {}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => panic!("cannot run python3 for the reference: {e}"),
    };
    let refs: Vec<RefImage> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("reference JSON"))
        .collect();
    let mut fa = analyzer(rt, &models);
    for (img, r) in images.iter().zip(&refs) {
        let a = fa.analyze_file(img).expect("analysis");
        assert_eq!(
            a.faces.len(),
            r.faces.len(),
            "{}: face count",
            img.display()
        );
        for rf in &r.faces {
            let best = a
                .faces
                .iter()
                .max_by(|x, y| iou(&x.bbox, &rf.bbox).total_cmp(&iou(&y.bbox, &rf.bbox)))
                .unwrap();
            let o = iou(&best.bbox, &rf.bbox);
            let err = best.landmarks.mean_distance(&rf.landmarks) / rf.landmarks.inter_ocular();
            eprintln!(
                "{}: IoU {o:.4}, landmark error {:.2}% of inter-ocular distance",
                img.display(),
                err * 100.0
            );
            assert!(o >= 0.9, "{}: IoU {o} < 0.9", img.display());
            assert!(
                err <= 0.02,
                "{}: landmark error {err} > 2% IOD",
                img.display()
            );
        }
    }
}

fn rotate(img: &RgbImage, deg: f32) -> RgbImage {
    let (w, h) = (img.width() as f32, img.height() as f32);
    let (s, c) = deg.to_radians().sin_cos();
    let (cx, cy) = (w / 2.0, h / 2.0);
    RgbImage::from_fn(img.width(), img.height(), |x, y| {
        let (dx, dy) = (x as f32 - cx, y as f32 - cy);
        let (sx, sy) = (c * dx + s * dy + cx, -s * dx + c * dy + cy);
        if sx >= 0.0 && sy >= 0.0 && sx < w - 1.0 && sy < h - 1.0 {
            *img.get_pixel(sx as u32, sy as u32)
        } else {
            Rgb([0, 0, 0])
        }
    })
}

#[test]
fn finds_faces_in_rotated_scaled_darkened_and_mirrored_versions() {
    let Some((models, rt)) =
        common::setup("finds_faces_in_rotated_scaled_darkened_and_mirrored_versions")
    else {
        return;
    };
    let mut fa = analyzer(rt, &models);
    for path in common::fixture_images() {
        let img = image_io::load_rgb(&path).unwrap();
        let expected = fa.analyze(&img).unwrap().faces.len();
        let variants: Vec<(&str, RgbImage)> = vec![
            ("rotated +15", rotate(&img, 15.0)),
            ("rotated -15", rotate(&img, -15.0)),
            (
                "scaled 0.5x",
                imageops::resize(
                    &img,
                    img.width() / 2,
                    img.height() / 2,
                    imageops::FilterType::Triangle,
                ),
            ),
            (
                "darkened",
                RgbImage::from_fn(img.width(), img.height(), |x, y| {
                    img.get_pixel(x, y).map(|v| (f32::from(v) * 0.35) as u8)
                }),
            ),
            ("mirrored", imageops::flip_horizontal(&img)),
        ];
        for (name, v) in variants {
            let a = fa.analyze(&v).unwrap();
            assert_eq!(
                a.faces.len(),
                expected,
                "{} {name}: found {} faces, expected {expected}",
                path.display(),
                a.faces.len()
            );
        }
    }
}

#[test]
fn mirrored_landmarks_mirror_the_originals() {
    let Some((models, rt)) = common::setup("mirrored_landmarks_mirror_the_originals") else {
        return;
    };
    let mut fa = analyzer(rt, &models);
    let img = image_io::load_rgb(&common::fixtures().join("mona_lisa.jpg")).unwrap();
    let a = fa.analyze(&img).unwrap();
    let m = fa.analyze(&imageops::flip_horizontal(&img)).unwrap();
    let w = img.width() as f32;
    let (eo, em) = (
        a.faces[0].landmarks.eye_left(),
        m.faces[0].landmarks.eye_right(),
    );
    let iod = a.faces[0].landmarks.inter_ocular();
    assert!(
        ((w - 1.0 - eo[0]) - em[0]).abs() < 0.1 * iod && (eo[1] - em[1]).abs() < 0.1 * iod,
        "eye {eo:?} vs mirrored {em:?}"
    );
}

#[test]
fn finds_no_face_in_noise_or_a_plain_wall() {
    let Some((models, rt)) = common::setup("finds_no_face_in_noise_or_a_plain_wall") else {
        return;
    };
    let mut fa = analyzer(rt, &models);
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let noise = RgbImage::from_fn(1280, 720, |_, _| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        Rgb([state as u8, (state >> 8) as u8, (state >> 16) as u8])
    });
    let wall = RgbImage::from_fn(1280, 720, |x, y| {
        Rgb([200 - (y / 20) as u8, 190 - (x / 40) as u8, 170])
    });
    for (name, img) in [("noise", noise), ("wall", wall)] {
        let a = fa.analyze(&img).unwrap();
        assert!(a.faces.is_empty(), "{name}: found {} faces", a.faces.len());
        assert_eq!(a.verdict.code, Reason::NoFace);
        assert!(!a.verdict.ok);
    }
}

fn composite(paths: &[&str], height: u32) -> RgbImage {
    let imgs: Vec<RgbImage> = paths
        .iter()
        .map(|p| {
            let i = image_io::load_rgb(&common::fixtures().join(p)).unwrap();
            let w = i.width() * height / i.height();
            imageops::resize(&i, w, height, imageops::FilterType::Triangle)
        })
        .collect();
    let total: u32 = imgs.iter().map(|i| i.width()).sum();
    let mut out = RgbImage::new(total, height);
    let mut x = 0;
    for i in &imgs {
        imageops::replace(&mut out, i, i64::from(x), 0);
        x += i.width();
    }
    out
}

#[test]
fn counts_three_faces_in_a_three_face_composite() {
    let Some((models, rt)) = common::setup("counts_three_faces_in_a_three_face_composite") else {
        return;
    };
    let mut fa = analyzer(rt, &models);
    let img = composite(
        &[
            "Baldassare_Castiglione.jpg",
            "Girl_with_a_Pearl_Earring.jpg",
            "mona_lisa.jpg",
        ],
        720,
    );
    let a = fa.analyze(&img).unwrap();
    assert_eq!(a.faces.len(), 3);
    assert_eq!(a.verdict.code, Reason::TooManyFaces);
    assert_eq!(a.verdict.face_count, 3);
    assert!(a.verdict.message.contains("two people"));
    // left to right
    assert!(
        a.faces
            .windows(2)
            .all(|w| w[0].centre()[0] < w[1].centre()[0])
    );
}

#[test]
fn the_couple_frame_passes_the_gate_and_a_single_face_does_not() {
    let Some((models, rt)) =
        common::setup("the_couple_frame_passes_the_gate_and_a_single_face_does_not")
    else {
        return;
    };
    let mut fa = analyzer(rt, &models);
    let couple = fa
        .analyze_file(&common::fixtures().join("couple_1280x720.jpg"))
        .unwrap();
    assert!(couple.verdict.ok, "{:?}", couple.verdict);
    assert_eq!(couple.faces.len(), 2);
    assert!(couple.faces[0].centre()[0] < couple.faces[1].centre()[0]);
    let single = fa
        .analyze_file(&common::fixtures().join("mona_lisa.jpg"))
        .unwrap();
    assert_eq!(single.verdict.code, Reason::OnlyOneFace);
}

#[test]
fn a_blurred_couple_is_asked_to_hold_still_and_a_dark_one_for_light() {
    let Some((models, rt)) =
        common::setup("a_blurred_couple_is_asked_to_hold_still_and_a_dark_one_for_light")
    else {
        return;
    };
    let mut fa = analyzer(rt, &models);
    let img = image_io::load_rgb(&common::fixtures().join("couple_1280x720.jpg")).unwrap();
    let blurred = imageops::blur(&img, 6.0);
    let a = fa.analyze(&blurred).unwrap();
    assert_eq!(a.faces.len(), 2, "still finds both faces");
    assert_eq!(
        a.verdict.code,
        Reason::HoldStill,
        "{:?} {:?}",
        a.verdict,
        a.quality
    );
    let dark = RgbImage::from_fn(img.width(), img.height(), |x, y| {
        img.get_pixel(x, y).map(|v| (f32::from(v) * 0.25) as u8)
    });
    let a = fa.analyze(&dark).unwrap();
    assert_eq!(a.faces.len(), 2);
    assert_eq!(a.verdict.code, Reason::TooDark, "{:?}", a.quality);
}

#[test]
fn a_small_couple_is_asked_to_move_closer() {
    let Some((models, rt)) = common::setup("a_small_couple_is_asked_to_move_closer") else {
        return;
    };
    let mut fa = FaceAnalyzer::open(
        rt,
        &models,
        FaceConfig {
            detector: kissbooth_engines::face::DetectorSize::R640,
            ..Default::default()
        },
    )
    .unwrap();
    let img = image_io::load_rgb(&common::fixtures().join("couple_1280x720.jpg")).unwrap();
    let small = imageops::resize(&img, 400, 225, imageops::FilterType::Triangle);
    let mut canvas = RgbImage::from_pixel(1280, 720, Rgb([90, 90, 90]));
    imageops::replace(&mut canvas, &small, 440, 250);
    let a = fa.analyze(&canvas).unwrap();
    assert_eq!(a.faces.len(), 2);
    assert_eq!(a.verdict.code, Reason::MoveCloser, "{:?}", a.quality);
}

#[test]
fn head_pose_follows_a_turned_face() {
    let Some((models, rt)) = common::setup("head_pose_follows_a_turned_face") else {
        return;
    };
    let mut fa = analyzer(rt, &models);
    let a = fa
        .analyze_file(&common::fixtures().join("mona_lisa.jpg"))
        .unwrap();
    let rolled = fa
        .analyze(&rotate(
            &image_io::load_rgb(&common::fixtures().join("mona_lisa.jpg")).unwrap(),
            15.0,
        ))
        .unwrap();
    let d = rolled.quality[0].roll - a.quality[0].roll;
    assert!(
        (d.abs() - 15.0).abs() < 4.0,
        "rotating the picture by 15 degrees changed roll by {d}"
    );
    let m = fa
        .analyze(&imageops::flip_horizontal(
            &image_io::load_rgb(&common::fixtures().join("mona_lisa.jpg")).unwrap(),
        ))
        .unwrap();
    assert!(
        a.quality[0].yaw.signum() != m.quality[0].yaw.signum(),
        "mirroring flips the yaw: {} vs {}",
        a.quality[0].yaw,
        m.quality[0].yaw
    );
}

#[test]
fn batched_landmarks_equal_one_face_at_a_time() {
    let Some((models, rt)) = common::setup("batched_landmarks_equal_one_face_at_a_time") else {
        return;
    };
    let mut fa = analyzer(rt, &models);
    let img = image_io::load_rgb(&common::fixtures().join("couple_1280x720.jpg")).unwrap();
    let boxes: Vec<[f32; 4]> = fa
        .analyze(&img)
        .unwrap()
        .faces
        .iter()
        .map(|f| f.bbox)
        .collect();
    assert_eq!(boxes.len(), 2);
    let (both, _) = fa.landmarks(&img, &boxes).unwrap();
    let (right, _) = fa.landmarks(&img, &boxes[1..]).unwrap();
    let l: &Landmarks = &right[0];
    let err = l.mean_distance(&both[1]) / l.inter_ocular();
    assert!(err < 1e-3, "batched vs single: {err}");
}

#[test]
fn falls_back_to_cpu_and_says_why() {
    let Some((models, rt)) = common::setup("falls_back_to_cpu_and_says_why") else {
        return;
    };
    let (_s, info) = rt
        .session_with(
            &models.join("pfld-68.onnx"),
            &[Provider::Tensorrt, Provider::Cuda, Provider::Cpu],
        )
        .unwrap();
    if info.provider == Provider::Cpu {
        assert_eq!(info.skipped.len(), 2, "{:?}", info.skipped);
        assert_eq!(info.skipped[0].0, Provider::Tensorrt);
        assert!(!info.skipped[0].1.is_empty());
    }
}

#[test]
fn refuses_a_model_whose_tensors_differ_from_the_manifest() {
    let Some((models, rt)) =
        common::setup("refuses_a_model_whose_tensors_differ_from_the_manifest")
    else {
        return;
    };
    let m = Manifest::face_pack();
    let (session, _) = rt.session(&models.join("pfld-68.onnx")).unwrap();
    let good = m.get("landmarks").unwrap().clone();
    check_session(&good, &session).unwrap();
    let mut wrong_name = good.clone();
    wrong_name.inputs[0].name = "image".into();
    let e = check_session(&wrong_name, &session).unwrap_err();
    assert!(
        matches!(e, ManifestError::TensorMismatch { .. }) && e.to_string().contains("\"image\""),
        "{e}"
    );
    let mut wrong_shape = good;
    wrong_shape.outputs[0].shape = vec![-1, 196];
    let e = check_session(&wrong_shape, &session).unwrap_err();
    assert!(
        e.to_string().contains("\"output\"") && e.to_string().contains("196"),
        "{e}"
    );
}

#[test]
fn a_missing_model_file_is_named() {
    let Some((_models, rt)) = common::setup("a_missing_model_file_is_named") else {
        return;
    };
    let empty = tempfile::tempdir().unwrap();
    let e = FaceAnalyzer::open(rt, empty.path(), FaceConfig::default())
        .err()
        .expect("must fail");
    assert!(e.to_string().contains("ultraface-rfb-320.onnx"), "{e}");
}
