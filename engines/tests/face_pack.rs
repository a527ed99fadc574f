//! Face pack v2 against the real models: the dense mesh agrees with the 68 landmarks and with
//! the Python reference (scripts/face_ref_v2.py), the person mask covers the faces and not the
//! background, and the identity embedders tell the same person from different people.

mod common;

use std::path::Path;
use std::process::Command;

use image::{RgbImage, imageops};
use kissbooth_engines::face::identity::IdentityModel;
use kissbooth_engines::face::mesh::{FaceMesh, MESH_POINTS, MeshModel};
use kissbooth_engines::face::segment::Segmenter;
use kissbooth_engines::face::{FaceAnalyzer, FaceConfig, image_io};
use kissbooth_engines::{Face, Landmarks};

const MESH: &str = "face-mesh-468.onnx";
const SEGMENT: &str = "selfie-segmentation-256.onnx";

fn dist(a: [f32; 2], b: [f32; 2]) -> f32 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt()
}

fn xy(p: [f32; 3]) -> [f32; 2] {
    [p[0], p[1]]
}

fn faces_of(fa: &mut FaceAnalyzer, img: &RgbImage) -> Vec<Face> {
    fa.analyze(img).expect("analysis").faces
}

/// Distance of a point from the line through the eye corners, signed so that positive is
/// below it (toward the mouth), in the face's own frame whatever the head's roll.
fn below_eye_line(mesh: &FaceMesh, p: [f32; 3], corners: (usize, usize)) -> f32 {
    let (a, b) = (mesh.points[corners.0], mesh.points[corners.1]);
    let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
    let n = (dx * dx + dy * dy).sqrt();
    // the normal pointing down the face: rotate the image-left → image-right direction by +90°
    let (nx, ny) = if dx >= 0.0 {
        (-dy / n, dx / n)
    } else {
        (dy / n, -dx / n)
    };
    (p[0] - a[0]) * nx + (p[1] - a[1]) * ny
}

#[test]
fn mesh_eyes_and_mouth_fall_on_the_68_landmarks_on_every_fixture() {
    let test = "mesh_eyes_and_mouth_fall_on_the_68_landmarks_on_every_fixture";
    let Some((models, rt)) = common::setup_with(test, &[MESH]) else {
        return;
    };
    let mut fa = FaceAnalyzer::open(rt, &models, FaceConfig::default()).unwrap();
    let mut mesh = MeshModel::open(rt, &models).unwrap();
    for path in common::fixture_images() {
        let img = image_io::load_rgb(&path).unwrap();
        let mirrored = imageops::flip_horizontal(&img);
        for (variant, img) in [("", &img), (" mirrored", &mirrored)] {
            for face in faces_of(&mut fa, img) {
                let m = mesh.run(img, &face).unwrap();
                let name = format!("{}{variant} face at x={:.0}", path.display(), face.bbox[0]);
                let lm: &Landmarks = &face.landmarks;
                let iod = lm.inter_ocular();
                assert_eq!(m.points.len(), MESH_POINTS);
                assert!(m.presence > 0.9, "{name}: presence {}", m.presence);
                let checks = [
                    ("mouth", xy(m.mouth_centre()), lm.mouth_centre()),
                    ("image-left eye", xy(m.eye_left_centre()), lm.eye_left()),
                    ("image-right eye", xy(m.eye_right_centre()), lm.eye_right()),
                ];
                for (what, got, want) in checks {
                    let e = dist(got, want) / iod;
                    eprintln!("{name}: {what} {e:.3} IOD from the 68-point one");
                    assert!(e < 0.15, "{name}: {what} is {e:.3} IOD off");
                }
                // depth: mean 0, the nose tip nearer the camera than the face's outline
                let mean_z = m.points.iter().map(|p| p[2]).sum::<f32>() / MESH_POINTS as f32;
                assert!(mean_z.abs() < 1e-2 * iod, "{name}: mean z {mean_z}");
                let oval_z = m.mean_of(&FaceMesh::FACE_OVAL)[2];
                let nose_z = m.points[FaceMesh::NOSE_TIP][2];
                assert!(
                    nose_z < oval_z - 0.3 * iod,
                    "{name}: nose z {nose_z} vs outline {oval_z}"
                );
                // the lids lie on the eye: the upper lid above the lower, both near the eye's
                // 68-point centre, and an open eye's lids apart
                for (upper, lower, corners, centre, left) in [
                    (
                        &FaceMesh::RIGHT_EYE_UPPER[..],
                        &FaceMesh::RIGHT_EYE_LOWER[..],
                        (33, 133),
                        lm.eye_left(),
                        true,
                    ),
                    (
                        &FaceMesh::LEFT_EYE_UPPER[..],
                        &FaceMesh::LEFT_EYE_LOWER[..],
                        (263, 362),
                        lm.eye_right(),
                        false,
                    ),
                ] {
                    let (u, l) = (m.mean_of(upper), m.mean_of(lower));
                    let (du, dl) = (
                        below_eye_line(&m, u, corners),
                        below_eye_line(&m, l, corners),
                    );
                    assert!(du < 0.0 && dl > 0.0, "{name}: upper lid {du}, lower {dl}");
                    for lid in [u, l] {
                        assert!(dist(xy(lid), centre) < 0.15 * iod, "{name}: lid far off");
                    }
                    let open = m.eye_openness(left);
                    assert!((0.15..0.7).contains(&open), "{name}: openness {open}");
                }
                // the inner lips lie inside the outer contour, between the mouth corners
                let (outer, inner) = (
                    m.mean_of(&FaceMesh::LIPS_OUTER),
                    m.mean_of(&FaceMesh::LIPS_INNER),
                );
                assert!(dist(xy(outer), xy(inner)) < 0.1 * iod, "{name}: lips");
            }
        }
    }
}

#[derive(serde::Deserialize)]
struct RefFace {
    #[serde(rename = "box")]
    bbox: [f32; 4],
    landmarks: Vec<[f32; 2]>,
    presence: f32,
    mask_coverage: f32,
    mesh: Vec<[f32; 3]>,
    #[serde(default)]
    embedding: Vec<f32>,
}

#[derive(serde::Deserialize)]
struct RefImage {
    faces: Vec<RefFace>,
    /// The identity embedder's name, when one is installed.
    identity_model: Option<String>,
}

fn python_reference(models: &Path, images: &[std::path::PathBuf]) -> Vec<RefImage> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/face_ref_v2.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg("--models")
        .arg(models)
        .arg("--shared")
        .arg(common::shared())
        .arg("--full")
        .args(images)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "reference failed (scripts/setup installs onnxruntime, numpy, pillow): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("reference JSON"))
        .collect()
}

#[test]
fn mesh_and_mask_match_the_python_reference() {
    let test = "mesh_and_mask_match_the_python_reference";
    let Some((models, rt)) = common::setup_with(test, &[MESH, SEGMENT]) else {
        return;
    };
    let images = common::fixture_images();
    let refs = python_reference(&models, &images);
    assert_eq!(refs.len(), images.len());
    let mut mesh = MeshModel::open(rt, &models).unwrap();
    let mut seg = Segmenter::open(rt, &models).unwrap();
    let mut id = IdentityModel::open(rt, &models).unwrap();
    for (path, r) in images.iter().zip(&refs) {
        let img = image_io::load_rgb(path).unwrap();
        let mask = seg.run(&img).unwrap();
        for rf in &r.faces {
            // the reference's own face, so both crop the same square
            let face = Face {
                bbox: rf.bbox,
                score: 1.0,
                landmarks: Landmarks(rf.landmarks.clone().try_into().unwrap()),
            };
            let m = mesh.run(&img, &face).unwrap();
            let iod = face.landmarks.inter_ocular();
            let err = m
                .points
                .iter()
                .zip(&rf.mesh)
                .map(|(a, b)| dist(xy(*a), [b[0], b[1]]) + (a[2] - b[2]).abs())
                .sum::<f32>()
                / MESH_POINTS as f32;
            let cov = mask.coverage_in(rf.bbox);
            eprintln!(
                "{}: mesh {:.4} IOD from the reference, presence {:.4} vs {:.4}, coverage {cov:.4} vs {:.4}",
                path.display(),
                err / iod,
                m.presence,
                rf.presence,
                rf.mask_coverage
            );
            assert!(err < 0.01 * iod, "{}: mesh error {err} px", path.display());
            if let Some(id) = id
                .as_mut()
                .filter(|m| r.identity_model.as_deref() == Some(m.name()))
            {
                let e = id.embed(&img, &face.landmarks).unwrap();
                let c = e.cosine(&kissbooth_engines::face::identity::Embedding(
                    rf.embedding.clone(),
                ));
                eprintln!(
                    "{}: {} embedding vs the reference: cosine {c:.5}",
                    path.display(),
                    id.name()
                );
                assert!(c > 0.999, "{}: embedding cosine {c}", path.display());
            }
            assert!((m.presence - rf.presence).abs() < 0.01);
            assert!(
                (cov - rf.mask_coverage).abs() < 0.01,
                "{}: coverage {cov} vs {}",
                path.display(),
                rf.mask_coverage
            );
        }
    }
}

#[test]
fn the_person_mask_covers_both_faces_and_not_the_background() {
    let test = "the_person_mask_covers_both_faces_and_not_the_background";
    let Some((models, rt)) = common::setup_with(test, &[SEGMENT]) else {
        return;
    };
    let mut fa = FaceAnalyzer::open(rt, &models, FaceConfig::default()).unwrap();
    let mut seg = Segmenter::open(rt, &models).unwrap();
    for name in [
        "couple_1280x720.jpg",
        "mona_lisa.jpg",
        "Girl_with_a_Pearl_Earring.jpg",
    ] {
        let img = image_io::load_rgb(&common::fixtures().join(name)).unwrap();
        let mask = seg.run(&img).unwrap();
        assert_eq!((mask.width, mask.height), img.dimensions());
        assert_eq!(mask.data.len(), (img.width() * img.height()) as usize);
        assert!(mask.data.iter().all(|v| (0.0..=1.0).contains(v)));
        for face in faces_of(&mut fa, &img) {
            let c = mask.coverage_in(face.bbox);
            eprintln!("{name}: face box coverage {c:.3}");
            assert!(c > 0.8, "{name}: the face box is {c:.3} person");
        }
        // the top corners (a tenth of the frame's width square) are background
        let s = img.width().min(img.height()) as f32 * 0.1;
        let w = img.width() as f32;
        for (corner, rect) in [
            ("top left", [0.0, 0.0, s, s]),
            ("top right", [w - s, 0.0, w, s]),
        ] {
            let c = mask.coverage_in(rect);
            eprintln!("{name}: {corner} coverage {c:.4}");
            assert!(c < 0.05, "{name}: {corner} is {c:.3} person");
        }
    }
}

#[test]
fn the_couple_mask_separates_the_two_people() {
    let test = "the_couple_mask_separates_the_two_people";
    let Some((models, rt)) = common::setup_with(test, &[SEGMENT]) else {
        return;
    };
    let mut seg = Segmenter::open(rt, &models).unwrap();
    let img = image_io::load_rgb(&common::fixtures().join("couple_1280x720.jpg")).unwrap();
    let mask = seg.run(&img).unwrap();
    // the dark gap between the two people at head height is background
    let gap = mask.coverage_in([560.0, 120.0, 740.0, 300.0]);
    eprintln!(
        "couple: gap between the heads {gap:.4}, landscape model {}",
        seg.has_landscape()
    );
    assert!(gap < 0.1, "gap between the people is {gap:.3} person");
}

/// A described pair of faces and their cosine similarity.
type Pair = (String, f32);

/// Cosine similarities of same-person and different-people pairs on the fixtures: each
/// portrait against the same face in the couple frame (as it is, mirrored, at half and double
/// size) and against the other people; each portrait mirrored against itself.
fn identity_pairs(fa: &mut FaceAnalyzer, id: &mut IdentityModel) -> (Vec<Pair>, Vec<Pair>) {
    let load = |n: &str| image_io::load_rgb(&common::fixtures().join(n)).unwrap();
    let one_face = |fa: &mut FaceAnalyzer, img: &RgbImage| {
        let f = faces_of(fa, img);
        assert_eq!(f.len(), 1);
        f[0].landmarks
    };
    let mut embed = |img: &RgbImage, lm: &Landmarks| id.embed(img, lm).unwrap();
    let names = [
        "Baldassare_Castiglione.jpg",
        "Girl_with_a_Pearl_Earring.jpg",
        "mona_lisa.jpg",
    ];
    let mut portraits = Vec::new();
    let (mut same, mut different) = (Vec::new(), Vec::new());
    for n in names {
        let img = load(n);
        let lm = one_face(fa, &img);
        let e = embed(&img, &lm);
        let flipped = imageops::flip_horizontal(&img);
        let lmf = one_face(fa, &flipped);
        same.push((format!("{n} vs mirrored"), e.cosine(&embed(&flipped, &lmf))));
        portraits.push((n, e));
    }
    for (i, a) in portraits.iter().enumerate() {
        for b in &portraits[i + 1..] {
            different.push((format!("{} vs {}", a.0, b.0), a.1.cosine(&b.1)));
        }
    }
    let couple = load("couple_1280x720.jpg");
    let (w, h) = couple.dimensions();
    let variants = [
        ("couple", couple.clone(), false),
        ("couple mirrored", imageops::flip_horizontal(&couple), true),
        (
            "couple at half size",
            imageops::resize(&couple, w / 2, h / 2, imageops::FilterType::Triangle),
            false,
        ),
        (
            "couple at double size",
            imageops::resize(&couple, w * 2, h * 2, imageops::FilterType::Triangle),
            false,
        ),
    ];
    for (what, img, mirrored) in &variants {
        let faces = faces_of(fa, img);
        assert_eq!(faces.len(), 2, "{what}");
        // Castiglione stands on the left of the couple frame, the girl on the right
        let (cas, girl) = if *mirrored {
            (&faces[1], &faces[0])
        } else {
            (&faces[0], &faces[1])
        };
        let (ec, eg) = (embed(img, &cas.landmarks), embed(img, &girl.landmarks));
        different.push((format!("{what}: the two faces"), ec.cosine(&eg)));
        for (n, e) in &portraits {
            for (who, face) in [(names[0], &ec), (names[1], &eg)] {
                let pair = (format!("{n} vs {who} in the {what}"), e.cosine(face));
                if *n == who {
                    same.push(pair);
                } else {
                    different.push(pair);
                }
            }
        }
    }
    (same, different)
}

#[test]
fn identity_tells_the_same_person_from_different_people() {
    let test = "identity_tells_the_same_person_from_different_people";
    let Some((models, rt)) = common::setup(test) else {
        return;
    };
    let mut fa = FaceAnalyzer::open(rt, &models, FaceConfig::default()).unwrap();
    let mut ran = 0;
    for name in ["faceres", "mobileface"] {
        let Some(mut id) = IdentityModel::open_named(rt, &models, name).unwrap() else {
            eprintln!(
                "SKIPPED {test} for {name}: its model is not installed in {}",
                models.display()
            );
            continue;
        };
        ran += 1;
        let (same, different) = identity_pairs(&mut fa, &mut id);
        let thr = id.same_person_threshold();
        for (what, s) in &same {
            eprintln!("{name} same person {s:.3}: {what}");
        }
        for (what, s) in &different {
            eprintln!("{name} different people {s:.3}: {what}");
        }
        let min_same = same.iter().map(|p| p.1).fold(f32::MAX, f32::min);
        let max_diff = different.iter().map(|p| p.1).fold(f32::MIN, f32::max);
        eprintln!(
            "{name}: same person {min_same:.3} and up, different people up to {max_diff:.3}, threshold {thr}"
        );
        for (what, s) in &same {
            assert!(*s > thr, "{name}: {what}: {s} is not above {thr}");
        }
        for (what, s) in &different {
            assert!(*s < thr, "{name}: {what}: {s} is not below {thr}");
        }
        // a batch gives what one face at a time gives
        let img = image_io::load_rgb(&common::fixtures().join("couple_1280x720.jpg")).unwrap();
        let faces = faces_of(&mut fa, &img);
        let batch = id
            .embed_batch(&[(&img, &faces[0].landmarks), (&img, &faces[1].landmarks)])
            .unwrap();
        let one = id.embed(&img, &faces[1].landmarks).unwrap();
        assert!(batch[1].cosine(&one) > 0.9999);
    }
    if ran == 0 {
        eprintln!("SKIPPED {test}: no identity embedder installed (both are optional)");
    }
}

#[test]
fn identity_is_none_when_no_embedder_is_installed() {
    let Some((models, rt)) = common::setup("identity_is_none_when_no_embedder_is_installed") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    assert!(IdentityModel::open(rt, dir.path()).unwrap().is_none());
    if models.join("face-identity-mobileface.onnx").is_file() {
        std::fs::copy(
            models.join("face-identity-mobileface.onnx"),
            dir.path().join("face-identity-mobileface.onnx"),
        )
        .unwrap();
        let id = IdentityModel::open(rt, dir.path()).unwrap().unwrap();
        assert_eq!(id.name(), "mobileface");
    }
}
