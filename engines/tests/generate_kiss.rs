//! Behaviour of `engines::generate`: pose fit, timeline, morph rendering.
//!
//! Faces are synthetic (the mean 3D shape projected at two positions, drawn as flat-shaded
//! faces), except in `renders_the_real_couple_fixture`, which asks the Python reference for the
//! landmarks of the shared couple photograph. The mean shape is read from
//! `$KISSBOOTH_MODELS/face3d-68.csv` (default: `../shared/models` beside the checkout); tests
//! that need it say SKIPPED and return when it is absent.

use std::path::{Path, PathBuf};
use std::time::Instant;

use image::{Rgb, RgbImage};
use kissbooth_engines::Landmarks;
use kissbooth_engines::generate::{
    GenerateError, HeadAngles, MeanShape, MorphConfig, MorphGenerator, MorphInputs, Phase,
    Timeline, TimelineConfig, TimelineConfigError, fit_pose,
};

fn models_dir() -> PathBuf {
    std::env::var_os("KISSBOOTH_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/models"))
}

fn mean_shape() -> Option<MeanShape> {
    let path = models_dir().join("face3d-68.csv");
    match std::fs::read_to_string(&path) {
        Ok(text) => Some(MeanShape::parse(&text).expect("face3d-68.csv parses")),
        Err(e) => {
            eprintln!(
                "SKIPPED: {} is not readable ({e}); set KISSBOOTH_MODELS",
                path.display()
            );
            None
        }
    }
}

macro_rules! shape_or_skip {
    () => {
        match mean_shape() {
            Some(shape) => shape,
            None => return,
        }
    };
}

/// The mean shape posed and projected: `iod` pixels between the eyes, centred on `centre`.
fn posed(shape: &MeanShape, angles: HeadAngles, iod: f32, centre: [f32; 2]) -> Landmarks {
    let r = angles.rotation();
    let s = iod / shape.inter_ocular();
    let pts: Vec<[f32; 2]> = shape
        .points()
        .iter()
        .map(|p| {
            let q: [f32; 3] =
                std::array::from_fn(|i| r[i][0] * p[0] + r[i][1] * p[1] + r[i][2] * p[2]);
            [s * q[0], s * q[1]]
        })
        .collect();
    let n = pts.len() as f32;
    let mean = pts
        .iter()
        .fold([0.0; 2], |a, p| [a[0] + p[0] / n, a[1] + p[1] / n]);
    Landmarks(std::array::from_fn(|i| {
        [
            pts[i][0] - mean[0] + centre[0],
            pts[i][1] - mean[1] + centre[1],
        ]
    }))
}

fn inside(poly: &[[f32; 2]], x: f32, y: f32) -> bool {
    let mut inside = false;
    for (i, a) in poly.iter().enumerate() {
        let b = poly[(i + 1) % poly.len()];
        if (a[1] > y) != (b[1] > y) && x < a[0] + (y - a[1]) / (b[1] - a[1]) * (b[0] - a[0]) {
            inside = !inside;
        }
    }
    inside
}

fn fill(img: &mut RgbImage, poly: &[[f32; 2]], colour: impl Fn(u32, u32) -> [u8; 3]) {
    let (x0, x1) = poly
        .iter()
        .fold((f32::MAX, f32::MIN), |(a, b), p| (a.min(p[0]), b.max(p[0])));
    let (y0, y1) = poly
        .iter()
        .fold((f32::MAX, f32::MIN), |(a, b), p| (a.min(p[1]), b.max(p[1])));
    for y in (y0.max(0.0) as u32)..(y1.ceil().max(0.0) as u32).min(img.height()) {
        for x in (x0.max(0.0) as u32)..(x1.ceil().max(0.0) as u32).min(img.width()) {
            if inside(poly, x as f32 + 0.5, y as f32 + 0.5) {
                img.put_pixel(x, y, Rgb(colour(x, y)));
            }
        }
    }
}

fn disc(img: &mut RgbImage, c: [f32; 2], r: f32, colour: [u8; 3]) {
    let poly: Vec<[f32; 2]> = (0..16)
        .map(|i| {
            let a = i as f32 * std::f32::consts::TAU / 16.0;
            [c[0] + r * a.cos(), c[1] + r * a.sin()]
        })
        .collect();
    fill(img, &poly, |_, _| colour);
}

const LIPS: [u8; 3] = [200, 30, 50];

/// Draws a flat, lightly textured face over its landmarks.
fn draw_face(img: &mut RgbImage, lm: &Landmarks, skin: [u8; 3]) {
    let p = &lm.0;
    let iod = lm.inter_ocular();
    let mut outline: Vec<[f32; 2]> = p[0..17].to_vec();
    outline.extend((17..27).rev().map(|i| [p[i][0], p[i][1] - 0.6 * iod]));
    fill(img, &outline, |x, y| {
        let t = (((x / 3) + (y / 3)) % 2) as u8 * 8;
        [
            skin[0].saturating_sub(t),
            skin[1].saturating_sub(t),
            skin[2].saturating_sub(t),
        ]
    });
    for brow in &p[17..27] {
        disc(img, *brow, 0.07 * iod, [60, 40, 30]);
    }
    for eye in [36..42, 42..48] {
        let poly: Vec<[f32; 2]> = p[eye.clone()].to_vec();
        fill(img, &poly, |_, _| [245, 245, 240]);
        let n = eye.len() as f32;
        let c = p[eye]
            .iter()
            .fold([0.0; 2], |a, q| [a[0] + q[0] / n, a[1] + q[1] / n]);
        disc(img, c, 0.09 * iod, [40, 60, 90]);
    }
    for nostril in &p[31..36] {
        disc(
            img,
            *nostril,
            0.05 * iod,
            [skin[0] / 2, skin[1] / 2, skin[2] / 2],
        );
    }
    fill(img, &p[48..60], |_, _| LIPS);
    fill(img, &p[60..68], |_, _| [90, 10, 20]);
}

fn backdrop(width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        let stripe = if (x / 24) % 2 == 0 { 20 } else { 0 };
        Rgb([
            60 + (x * 80 / width) as u8 + stripe,
            90 + (y * 60 / height) as u8,
            120 + stripe,
        ])
    })
}

const SKIN_A: [u8; 3] = [230, 185, 155];
const SKIN_B: [u8; 3] = [140, 95, 70];

/// A couple side by side in one 960x540 frame, heads slightly turned and tilted.
fn couple(shape: &MeanShape) -> MorphInputs {
    let faces = [
        posed(
            shape,
            HeadAngles {
                yaw: -6.0,
                pitch: 3.0,
                roll: 2.0,
            },
            70.0,
            [300.0, 280.0],
        ),
        posed(
            shape,
            HeadAngles {
                yaw: 5.0,
                pitch: -2.0,
                roll: -3.0,
            },
            64.0,
            [660.0, 265.0],
        ),
    ];
    let mut frame = backdrop(960, 540);
    draw_face(&mut frame, &faces[0], SKIN_A);
    draw_face(&mut frame, &faces[1], SKIN_B);
    MorphInputs::Couple { frame, faces }
}

const HAIR: [u8; 3] = [30, 160, 60];

/// Hair above a face: from the top of the drawn forehead up to about 1.4 inter-ocular
/// distances above the brows, a little wider than the face.
fn draw_hair(img: &mut RgbImage, lm: &Landmarks) {
    let iod = lm.inter_ocular();
    let brows = lm.0[17..27]
        .iter()
        .fold([0.0f32; 2], |a, p| [a[0] + p[0] / 10.0, a[1] + p[1] / 10.0]);
    let half = 0.55 * (lm.0[16][0] - lm.0[0][0]).abs();
    let poly: Vec<[f32; 2]> = (0..=16)
        .map(|i| {
            let a = std::f32::consts::PI * i as f32 / 16.0;
            [
                brows[0] - half * a.cos(),
                brows[1] - 0.4 * iod - 1.0 * iod * a.sin(),
            ]
        })
        .collect();
    fill(img, &poly, |_, _| HAIR);
}

/// [`couple`] with hair on both heads, and the whites of the eyes drawn a little beyond the
/// eye landmarks, as a real detector's landmarks often leave them.
fn couple_with_hair(shape: &MeanShape) -> MorphInputs {
    let MorphInputs::Couple { faces, .. } = couple(shape) else {
        unreachable!("a couple")
    };
    let mut frame = backdrop(960, 540);
    for (lm, skin) in faces.iter().zip([SKIN_A, SKIN_B]) {
        draw_hair(&mut frame, lm);
        draw_face(&mut frame, lm, skin);
        for eye in [36..42, 42..48] {
            let n = eye.len() as f32;
            let c = lm.0[eye.clone()]
                .iter()
                .fold([0.0; 2], |a, q| [a[0] + q[0] / n, a[1] + q[1] / n]);
            let wide: Vec<[f32; 2]> = lm.0[eye]
                .iter()
                .map(|q| [c[0] + 1.35 * (q[0] - c[0]), c[1] + 1.6 * (q[1] - c[1])])
                .collect();
            fill(&mut frame, &wide, |_, _| EYE_WHITE);
            disc(&mut frame, c, 0.09 * lm.inter_ocular(), [40, 60, 90]);
        }
    }
    MorphInputs::Couple { frame, faces }
}

const EYE_WHITE: [u8; 3] = [245, 245, 240];

fn is_colour(px: &Rgb<u8>, want: [u8; 3], tolerance: u8) -> bool {
    (0..3).all(|c| px[c].abs_diff(want[c]) <= tolerance)
}

/// Mean absolute difference between horizontal neighbours: how sharp a picture is.
fn sharpness(img: &RgbImage) -> f64 {
    let (w, h) = (img.width(), img.height());
    let mut sum = 0u64;
    for y in 0..h {
        for x in 1..w {
            let (a, b) = (img.get_pixel(x - 1, y), img.get_pixel(x, y));
            sum += (0..3).map(|c| a[c].abs_diff(b[c]) as u64).sum::<u64>();
        }
    }
    sum as f64 / ((w - 1) * h * 3) as f64
}

fn mean_abs_diff(a: &RgbImage, b: &RgbImage) -> f64 {
    let sum: u64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| x.abs_diff(*y) as u64)
        .sum();
    sum as f64 / a.as_raw().len() as f64
}

/// Share of the back face's landmark box that the front face (jaw, brows raised to cover the
/// forehead) covers, estimated on a 64x64 grid over the box.
fn covered_share(front: &Landmarks, back: &Landmarks) -> f32 {
    let p = &front.0;
    let iod = front.inter_ocular();
    let mut outline: Vec<[f32; 2]> = p[0..17].to_vec();
    outline.extend((17..27).rev().map(|i| [p[i][0], p[i][1] - 0.55 * iod]));
    let (x0, x1) = back
        .0
        .iter()
        .fold((f32::MAX, f32::MIN), |(a, b), q| (a.min(q[0]), b.max(q[0])));
    let (y0, y1) = back
        .0
        .iter()
        .fold((f32::MAX, f32::MIN), |(a, b), q| (a.min(q[1]), b.max(q[1])));
    let n = 64;
    let hits = (0..n * n)
        .filter(|i| {
            let x = x0 + (x1 - x0) * ((i % n) as f32 + 0.5) / n as f32;
            let y = y0 + (y1 - y0) * ((i / n) as f32 + 0.5) / n as f32;
            inside(&outline, x, y)
        })
        .count();
    hits as f32 / (n * n) as f32
}

fn mean_iod(faces: &[Landmarks; 2]) -> f32 {
    0.5 * (faces[0].inter_ocular() + faces[1].inter_ocular())
}

#[test]
fn pose_fit_recovers_a_known_yaw() {
    let shape = shape_or_skip!();
    for yaw in [30.0f32, -30.0] {
        // Turn the mean shape by hand about the vertical axis (nose toward +x for yaw > 0).
        let (s, c) = yaw.to_radians().sin_cos();
        let lm = Landmarks(std::array::from_fn(|i| {
            let [x, y, z] = shape.points()[i];
            [2.5 * (c * x - s * z) + 320.0, 2.5 * y + 240.0]
        }));
        let pose = fit_pose(&shape, &lm).expect("fits");
        eprintln!(
            "yaw {yaw}: fitted yaw {:.2} pitch {:.2} roll {:.2} scale {:.3}",
            pose.yaw_deg(),
            pose.pitch_deg(),
            pose.roll_deg(),
            pose.scale
        );
        assert!(
            (pose.yaw_deg() - yaw).abs() < 3.0,
            "yaw {} for {yaw}",
            pose.yaw_deg()
        );
        assert!(pose.pitch_deg().abs() < 3.0 && pose.roll_deg().abs() < 3.0);
        assert!((pose.scale - 2.5).abs() < 0.05);
        let nose = pose.project(shape.points()[30]);
        assert!((nose[0] - lm.0[30][0]).abs() < 0.5 && (nose[1] - lm.0[30][1]).abs() < 0.5);
    }
}

#[test]
fn rejects_out_of_range_duration() {
    for seconds in [2.0, 8.5, f32::NAN] {
        let cfg = TimelineConfig {
            seconds,
            ..TimelineConfig::default()
        };
        assert!(
            matches!(
                cfg.validate(),
                Err(TimelineConfigError::SecondsOutOfRange(_))
            ),
            "{seconds}"
        );
    }
    let cfg = TimelineConfig {
        fps: 90,
        ..TimelineConfig::default()
    };
    assert_eq!(cfg.validate(), Err(TimelineConfigError::FpsOutOfRange(90)));
    let shape = shape_or_skip!();
    let faces = couple(&shape);
    let [a, b] = faces.faces();
    let err = Timeline::plan(
        &TimelineConfig {
            seconds: 12.0,
            ..TimelineConfig::default()
        },
        &shape,
        [a, b],
        (960, 540),
    )
    .expect_err("12 s is too long");
    assert!(
        matches!(err, GenerateError::TimelineConfig(TimelineConfigError::SecondsOutOfRange(s)) if s == 12.0)
    );
}

#[test]
fn config_from_toml_snippet() {
    let timeline: TimelineConfig =
        toml::from_str("seconds = 6.0\nfps = 30\nseed = 7\n").expect("parses");
    assert_eq!(
        timeline,
        TimelineConfig {
            seconds: 6.0,
            fps: 30,
            intensity: 0.8,
            seed: 7
        }
    );
    timeline.validate().expect("valid");
    assert_eq!(timeline.frame_count(), 180);
    assert_eq!(
        toml::from_str::<TimelineConfig>("").expect("empty is default"),
        TimelineConfig::default()
    );
    assert!(
        toml::from_str::<TimelineConfig>("second = 6.0").is_err(),
        "a misspelt key is an error"
    );

    let morph: MorphConfig =
        toml::from_str("width = 1280\nheight = 720\nfeather = 0.1").expect("parses");
    morph.validate().expect("valid");
    assert_eq!(
        (morph.width, morph.height, morph.harmonise),
        (1280, 720, 0.5)
    );
    for (w, h) in [(1281, 720), (128, 128), (2048, 1080)] {
        let cfg = MorphConfig {
            width: w,
            height: h,
            ..MorphConfig::default()
        };
        assert!(cfg.validate().is_err(), "{w}x{h} must be rejected");
    }
}

#[test]
fn frame_zero_keeps_identity() {
    let shape = shape_or_skip!();
    // A 512x512 capture on a 512x512 canvas: placed as is.
    let faces = [
        posed(
            &shape,
            HeadAngles {
                yaw: -5.0,
                pitch: 0.0,
                roll: 3.0,
            },
            44.0,
            [150.0, 260.0],
        ),
        posed(
            &shape,
            HeadAngles {
                yaw: 8.0,
                pitch: 2.0,
                roll: -2.0,
            },
            40.0,
            [360.0, 250.0],
        ),
    ];
    let mut frame = backdrop(512, 512);
    draw_face(&mut frame, &faces[0], SKIN_A);
    draw_face(&mut frame, &faces[1], SKIN_B);
    let inputs = MorphInputs::Couple {
        frame: frame.clone(),
        faces,
    };
    let cfg = MorphConfig {
        harmonise: 0.0,
        ..MorphConfig::default()
    };
    let mut generator =
        MorphGenerator::plan(cfg, &TimelineConfig::default(), &shape, inputs).expect("plans");
    let plan = &generator.timeline().frames()[0];
    for (k, face) in faces.iter().enumerate() {
        let placed = &generator.layout().landmarks[k];
        let err = placed.mean_distance(face);
        assert!(
            err < 0.01 * face.inter_ocular(),
            "face {k} placed {err} px away"
        );
        let target = plan.faces[k].expressed();
        let err = target.mean_distance(placed);
        eprintln!("face {k}: frame-0 target {err:.4} px from the placed input");
        assert!(err < 0.01 * placed.inter_ocular());
    }
    assert_eq!(plan.phase, Phase::Apart);
    let rendered = generator.render(0).expect("renders");
    // Between the eyes and the mouth the face is opaque: frame 0 is the capture itself there.
    let mut diff = 0u64;
    let mut n = 0u64;
    for lm in &faces {
        let (l, r, m) = (lm.eye_left(), lm.eye_right(), lm.mouth_centre());
        for y in l[1] as u32..m[1] as u32 {
            for x in l[0] as u32..r[0] as u32 {
                let (a, b) = (rendered.get_pixel(x, y), frame.get_pixel(x, y));
                diff += (0..3).map(|c| a[c].abs_diff(b[c]) as u64).sum::<u64>();
                n += 3;
            }
        }
    }
    let mad = diff as f64 / n as f64;
    eprintln!("frame 0 vs capture inside the faces: mean abs diff {mad:.3}");
    assert!(
        mad < 1.0,
        "frame 0 must show the captured faces, off by {mad}"
    );
}

#[test]
fn mouths_meet_at_contact_frame() {
    let shape = shape_or_skip!();
    let mut generator = MorphGenerator::plan(
        MorphConfig::default(),
        &TimelineConfig::default(),
        &shape,
        couple(&shape),
    )
    .expect("plans");
    let iod = mean_iod(&generator.layout().landmarks);
    let contact = generator.timeline().contact_frame();
    generator.render(0).expect("renders");
    let start = generator.last_info().expect("info").mouth_distance();
    let frame = generator.render(contact).expect("renders");
    let info = generator.last_info().expect("info").clone();
    eprintln!(
        "contact frame {contact}/{}: mouths {:.2} px apart (iod {iod:.1}), {start:.1} px at frame 0",
        generator.frame_count(),
        info.mouth_distance()
    );
    assert_eq!(info.phase, Phase::Contact);
    assert!(start > 2.0 * iod, "the faces start apart");
    assert!(
        info.mouth_distance() <= 0.1 * iod,
        "mouths {} px apart at contact",
        info.mouth_distance()
    );
    let covered = covered_share(&info.landmarks[info.front], &info.landmarks[1 - info.front]);
    eprintln!(
        "the front face covers {:.0}% of the back face's box",
        100.0 * covered
    );
    assert!(covered <= 0.4, "the back face is {covered:.2} hidden");
    // And the picture agrees: lips where the mouths meet.
    let [a, b] = info.mouth_centres;
    let px = frame.get_pixel(((a[0] + b[0]) / 2.0) as u32, ((a[1] + b[1]) / 2.0) as u32);
    assert!(
        px[0] as i32 > px[1] as i32 + 60,
        "lips expected where the mouths meet, found {px:?}"
    );
}

#[test]
fn heads_turn_toward_each_other_with_eyes_closed_at_contact() {
    let shape = shape_or_skip!();
    let inputs = couple(&shape);
    let [a, b] = inputs.faces();
    let timeline =
        Timeline::plan(&TimelineConfig::default(), &shape, [a, b], (960, 540)).expect("plans");
    let at = &timeline.frames()[timeline.contact_frame()];
    let (left, right) = (&at.faces[0], &at.faces[1]);
    eprintln!(
        "contact: left {:?}, right {:?}, front {}",
        left.angles, right.angles, at.front
    );
    assert!(
        (25.0..=40.0).contains(&left.angles.yaw),
        "left turns right: {:?}",
        left.angles
    );
    assert!(
        (-40.0..=-25.0).contains(&right.angles.yaw),
        "right turns left: {:?}",
        right.angles
    );
    assert!(
        left.angles.roll.abs() >= 2.0 && left.angles.roll.signum() == right.angles.roll.signum()
    );
    for face in &at.faces {
        assert_eq!(face.expression.eye_closure, 1.0);
        assert!(face.expression.pucker >= 0.5);
        let e = face.expressed();
        // Eyes shut: upper lids on the lower lids.
        assert!(
            (e.0[37][1] - e.0[41][1]).abs()
                < 0.2 * (face.landmarks.0[37][1] - face.landmarks.0[41][1]).abs() + 0.5
        );
    }
    // Phases come in order, with one contact frame.
    let phases: Vec<Phase> = timeline.frames().iter().map(|f| f.phase).collect();
    let mut order = phases.clone();
    order.dedup();
    assert_eq!(
        order,
        [
            Phase::Apart,
            Phase::LeanIn,
            Phase::EyesClose,
            Phase::Contact,
            Phase::Hold,
            Phase::Part
        ]
    );
    assert_eq!(phases.iter().filter(|p| **p == Phase::Contact).count(), 1);
    let last = timeline.frames().last().expect("frames");
    assert!(
        last.faces[0].expression.smile > 0.5,
        "they smile as they part"
    );
}

#[test]
fn no_frame_jumps() {
    let shape = shape_or_skip!();
    let cfg = MorphConfig {
        width: 256,
        height: 256,
        ..MorphConfig::default()
    };
    let generator = MorphGenerator::plan(cfg, &TimelineConfig::default(), &shape, couple(&shape))
        .expect("plans");
    let contact = generator.timeline().contact_frame();
    let frames: Vec<RgbImage> = generator.map(|f| f.expect("renders")).collect();
    let journey = mean_abs_diff(&frames[0], &frames[contact]);
    let (worst, at) = frames
        .windows(2)
        .enumerate()
        .map(|(i, w)| (mean_abs_diff(&w[0], &w[1]), i))
        .fold((0.0, 0), |a, b| if b.0 > a.0 { b } else { a });
    eprintln!(
        "frame 0 → contact: {journey:.3}; largest step {worst:.3} (frames {at}→{}), ratio {:.3}",
        at + 1,
        worst / journey
    );
    assert!(journey > 1.0, "the faces move");
    assert!(
        worst <= 0.25 * journey,
        "a jump of {worst:.3} between frames {at} and {}",
        at + 1
    );
}

#[test]
fn same_seed_same_frames() {
    let shape = shape_or_skip!();
    let cfg = MorphConfig {
        width: 320,
        height: 256,
        ..MorphConfig::default()
    };
    let render = |seed: u64| {
        let tl = TimelineConfig {
            seed,
            ..TimelineConfig::default()
        };
        let mut g = MorphGenerator::plan(cfg.clone(), &tl, &shape, couple(&shape)).expect("plans");
        let picks = [10, 40, g.timeline().contact_frame(), 100];
        (
            picks.map(|i| g.render(i).expect("renders")),
            g.timeline().clone(),
        )
    };
    let (a, plan_a) = render(7);
    let (b, plan_b) = render(7);
    assert!(a == b, "same seed, same pixels");
    assert_eq!(plan_a, plan_b);
    let (c, plan_c) = render(8);
    assert_ne!(plan_a, plan_c, "another seed varies the motion");
    assert!(a != c);
}

#[test]
fn two_single_portraits_are_placed_side_by_side() {
    let shape = shape_or_skip!();
    let faces = [
        posed(
            &shape,
            HeadAngles {
                yaw: 4.0,
                pitch: 0.0,
                roll: -4.0,
            },
            80.0,
            [200.0, 230.0],
        ),
        posed(
            &shape,
            HeadAngles {
                yaw: -3.0,
                pitch: 2.0,
                roll: 0.0,
            },
            130.0,
            [310.0, 360.0],
        ),
    ];
    let mut frames = [backdrop(400, 500), backdrop(620, 760)];
    draw_face(&mut frames[0], &faces[0], SKIN_A);
    draw_face(&mut frames[1], &faces[1], SKIN_B);
    let inputs = MorphInputs::Portraits { frames, faces };
    let cfg = MorphConfig {
        width: 640,
        height: 360,
        harmonise: 0.0,
        ..MorphConfig::default()
    };
    let mut generator =
        MorphGenerator::plan(cfg, &TimelineConfig::default(), &shape, inputs).expect("plans");
    let placed = generator.layout().landmarks;
    let xs = |lm: &Landmarks| {
        lm.0.iter()
            .fold((f32::MAX, f32::MIN), |(a, b), p| (a.min(p[0]), b.max(p[0])))
    };
    let ((l0, r0), (l1, r1)) = (xs(&placed[0]), xs(&placed[1]));
    eprintln!(
        "placed: face 0 x {l0:.0}..{r0:.0}, face 1 x {l1:.0}..{r1:.0}, iods {:.1} {:.1}",
        placed[0].inter_ocular(),
        placed[1].inter_ocular()
    );
    assert!(
        l0 > 0.0 && r0 < 320.0 && l1 > 320.0 && r1 < 640.0,
        "one face per half"
    );
    assert!(
        (placed[0].inter_ocular() - placed[1].inter_ocular()).abs()
            < 0.02 * placed[0].inter_ocular()
    );
    for lm in &placed {
        let y = lm.mouth_centre()[1];
        assert!(y > 0.3 * 360.0 && y < 0.8 * 360.0, "faces at mid height");
    }
    // Frame 0 shows each portrait's own face where it was placed.
    let frame = generator.render(0).expect("renders");
    for (lm, skin) in placed.iter().zip([SKIN_A, SKIN_B]) {
        let cheek = [
            (lm.0[3][0] + lm.0[31][0]) / 2.0,
            (lm.0[3][1] + lm.0[31][1]) / 2.0,
        ];
        let cheek = [
            (cheek[0] + lm.0[41][0]) / 2.0,
            (cheek[1] + lm.0[41][1]) / 2.0,
        ];
        let px = frame.get_pixel(cheek[0] as u32, cheek[1] as u32);
        let off = (0..3)
            .map(|c| px[c].abs_diff(skin[c]) as u32)
            .max()
            .unwrap_or(0);
        assert!(
            off <= 12,
            "skin {skin:?} expected at {cheek:?}, found {px:?}"
        );
    }
}

#[test]
fn a_timeline_for_other_faces_is_rejected() {
    let shape = shape_or_skip!();
    let inputs = couple(&shape);
    let [a, b] = inputs.faces();
    // Planned on the input-frame landmarks instead of the placed ones.
    let timeline =
        Timeline::plan(&TimelineConfig::default(), &shape, [a, b], (512, 512)).expect("plans");
    let err = MorphGenerator::new(MorphConfig::default(), inputs, timeline).expect_err("mismatch");
    assert!(
        matches!(err, GenerateError::TimelineMismatch { .. }),
        "{err}"
    );
}

/// Renders every frame of a default (5 s, 24 fps) kiss, as the encoder would pull them.
fn timed_render(shape: &MeanShape, width: u32, height: u32) -> (f64, f64, usize) {
    let cfg = MorphConfig {
        width,
        height,
        ..MorphConfig::default()
    };
    let start = Instant::now();
    let generator =
        MorphGenerator::plan(cfg, &TimelineConfig::default(), shape, couple(shape)).expect("plans");
    let setup = start.elapsed().as_secs_f64();
    let mut n = 0;
    for frame in generator {
        frame.expect("renders");
        n += 1;
    }
    (setup, start.elapsed().as_secs_f64() - setup, n)
}

#[test]
fn renders_a_five_second_kiss_as_a_stream() {
    let shape = shape_or_skip!();
    for (w, h) in [(512, 512), (1280, 720)] {
        let (setup, render, n) = timed_render(&shape, w, h);
        eprintln!(
            "{w}x{h}: setup {:.0} ms, {n} frames in {:.2} s ({:.1} ms/frame, {:.0} fps) [{} build]",
            setup * 1e3,
            render,
            render * 1e3 / n as f64,
            n as f64 / render,
            if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            }
        );
        assert_eq!(n, 120);
    }
}

#[test]
fn the_whole_head_moves_hair_and_all_over_a_sharp_background() {
    let shape = shape_or_skip!();
    let inputs = couple_with_hair(&shape);
    let MorphInputs::Couple { frame: capture, .. } = &inputs else {
        unreachable!("a couple")
    };
    let cfg = MorphConfig {
        width: 960,
        height: 540,
        ..MorphConfig::default()
    };
    let mut generator =
        MorphGenerator::plan(cfg, &TimelineConfig::default(), &shape, inputs.clone())
            .expect("plans");
    let rest = generator.layout().landmarks;
    let first = generator.render(0).expect("renders");
    let contact = generator.timeline().contact_frame();
    let frame = generator.render(contact).expect("renders");
    let moved = generator.last_info().expect("info").landmarks;
    // Share of hair pixels in a box of 0.8 iod around a point 0.9 iod above the brows.
    let hair_above = |img: &RgbImage, lm: &Landmarks| {
        let brows = lm.0[17..27]
            .iter()
            .fold([0.0f32; 2], |a, p| [a[0] + p[0] / 10.0, a[1] + p[1] / 10.0]);
        let (l, r) = (lm.eye_left(), lm.eye_right());
        let iod = lm.inter_ocular();
        let up = [(r[1] - l[1]) / iod, -(r[0] - l[0]) / iod];
        let c = [brows[0] + 0.9 * iod * up[0], brows[1] + 0.9 * iod * up[1]];
        let half = 0.4 * iod;
        let (mut hair, mut all) = (0, 0);
        for y in (c[1] - half).max(0.0) as u32..((c[1] + half) as u32).min(img.height()) {
            for x in (c[0] - half).max(0.0) as u32..((c[0] + half) as u32).min(img.width()) {
                all += 1;
                hair += is_colour(img.get_pixel(x, y), HAIR, 30) as usize;
            }
        }
        (c, hair as f32 / all.max(1) as f32)
    };
    for k in 0..2 {
        let ((was, at_rest), (now, moved_along)) =
            (hair_above(&first, &rest[k]), hair_above(&frame, &moved[k]));
        let (_, left_behind) = hair_above(&frame, &rest[k]);
        let travelled = ((now[0] - was[0]).powi(2) + (now[1] - was[1]).powi(2)).sqrt();
        eprintln!(
            "face {k}: travelled {travelled:.0} px; hair above the brows: {:.0}% at rest, {:.0}% above the moved brows, {:.0}% left where it was",
            100.0 * at_rest,
            100.0 * moved_along,
            100.0 * left_behind
        );
        assert!(
            travelled > 2.0 * rest[k].inter_ocular(),
            "the head leans in"
        );
        assert!(at_rest > 0.75, "face {k}: hair drawn");
        assert!(moved_along > 0.5, "face {k}: its hair went along");
        assert!(
            left_behind < 0.1,
            "face {k}: no ghost of the hair left behind"
        );
    }
    // No blurred background: the picture keeps most of the capture's edges (a blur as wide as
    // the backdrop's stripes would wipe them out; stretching behind the moving heads only
    // spaces them out a little), and the bottom border, where the bodies meet the frame, has
    // not moved.
    let (s0, s1) = (sharpness(&first), sharpness(&frame));
    eprintln!("sharpness: frame 0 {s0:.2}, contact {s1:.2}");
    assert!(s1 > 0.55 * s0, "contact frame blurred: {s1:.2} vs {s0:.2}");
    let h = frame.height();
    let bottom = (0..frame.width())
        .map(|x| {
            let (a, b) = (frame.get_pixel(x, h - 1), capture.get_pixel(x, h - 1));
            (0..3).map(|c| a[c].abs_diff(b[c]) as u64).sum::<u64>()
        })
        .sum::<u64>() as f64
        / (frame.width() * 3) as f64;
    assert!(bottom < 1.0, "the bottom row moved by {bottom:.2}");
}

#[test]
fn shut_eyes_show_no_white_even_with_landmarks_off() {
    let shape = shape_or_skip!();
    let cfg = MorphConfig {
        width: 960,
        height: 540,
        ..MorphConfig::default()
    };
    let mut generator = MorphGenerator::plan(
        cfg,
        &TimelineConfig::default(),
        &shape,
        couple_with_hair(&shape),
    )
    .expect("plans");
    let first = generator.render(0).expect("renders");
    let whites = |img: &RgbImage, lm: &Landmarks| {
        let iod = lm.inter_ocular();
        let (xs, ys): (Vec<f32>, Vec<f32>) = lm.0[36..48].iter().map(|p| (p[0], p[1])).unzip();
        let fold = |v: &[f32]| {
            v.iter()
                .fold((f32::MAX, f32::MIN), |(a, b), x| (a.min(*x), b.max(*x)))
        };
        let ((x0, x1), (y0, y1)) = (fold(&xs), fold(&ys));
        let m = 0.3 * iod;
        let mut n = 0;
        for y in (y0 - m).max(0.0) as u32..((y1 + m) as u32).min(img.height()) {
            for x in (x0 - m).max(0.0) as u32..((x1 + m) as u32).min(img.width()) {
                if is_colour(img.get_pixel(x, y), EYE_WHITE, 25) {
                    n += 1;
                }
            }
        }
        n
    };
    let open: usize = generator
        .layout()
        .landmarks
        .iter()
        .map(|lm| whites(&first, lm))
        .sum();
    let contact = generator.timeline().contact_frame();
    let frame = generator.render(contact).expect("renders");
    let info = generator.last_info().expect("info").clone();
    let shut: usize = info.landmarks.iter().map(|lm| whites(&frame, lm)).sum();
    eprintln!("white eye pixels: {open} open, {shut} shut");
    assert!(open > 100, "the eyes start open");
    assert_eq!(shut, 0, "white shows under shut lids");
}

#[test]
fn the_picture_moves_while_they_hold_the_kiss() {
    let shape = shape_or_skip!();
    let cfg = MorphConfig {
        width: 256,
        height: 256,
        ..MorphConfig::default()
    };
    let mut generator =
        MorphGenerator::plan(cfg, &TimelineConfig::default(), &shape, couple(&shape))
            .expect("plans");
    let hold: Vec<usize> = generator
        .timeline()
        .frames()
        .iter()
        .filter(|f| f.phase == Phase::Hold)
        .map(|f| f.index)
        .collect();
    assert!(hold.len() > 10, "a hold of {} frames", hold.len());
    let frames: Vec<RgbImage> = hold
        .iter()
        .map(|&i| generator.render(i).expect("renders"))
        .collect();
    let info = generator.last_info().expect("info").clone();
    let iod = mean_iod(&generator.layout().landmarks);
    let drift = frames
        .iter()
        .map(|f| mean_abs_diff(&frames[0], f))
        .fold(0.0, f64::max);
    let still = frames
        .windows(2)
        .filter(|w| mean_abs_diff(&w[0], &w[1]) == 0.0)
        .count();
    eprintln!(
        "hold of {} frames: largest change from its first frame {drift:.3}, {still} identical neighbours; mouths {:.2} px apart at its end",
        hold.len(),
        info.mouth_distance()
    );
    assert!(drift > 0.2, "the hold is frozen");
    assert!(still <= hold.len() / 4, "{still} frames repeat");
    assert!(
        info.mouth_distance() <= 0.1 * iod,
        "the sway keeps the mouths together"
    );
}

/// The shared couple photograph, its landmarks from the Python reference.
#[test]
fn renders_the_real_couple_fixture() {
    let shape = shape_or_skip!();
    let shared = models_dir().join("..");
    let image_path = shared.join("fixtures/faces/couple_1280x720.jpg");
    let script = shared.join("reference/face_ref.py");
    let output = match std::process::Command::new("python3")
        .arg(&script)
        .arg(&image_path)
        .output()
    {
        Ok(o) if o.status.success() => o,
        Ok(o) => {
            eprintln!(
                "SKIPPED: face_ref.py failed: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            return;
        }
        Err(e) => {
            eprintln!("SKIPPED: python3 not runnable ({e})");
            return;
        }
    };
    let json: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("face_ref.py prints JSON");
    let mut faces: Vec<Landmarks> = json["faces"]
        .as_array()
        .expect("faces")
        .iter()
        .map(|f| serde_json::from_value(f["landmarks"].clone()).expect("68 landmarks"))
        .collect();
    assert_eq!(faces.len(), 2, "the couple fixture holds two faces");
    faces.sort_by(|a, b| a.mouth_centre()[0].total_cmp(&b.mouth_centre()[0]));
    let frame = image::open(&image_path).expect("fixture decodes").to_rgb8();
    let inputs = MorphInputs::Couple {
        frame,
        faces: [faces[0], faces[1]],
    };
    let cfg = MorphConfig {
        width: 1280,
        height: 720,
        ..MorphConfig::default()
    };
    // Whoever is in front, the face behind stays mostly visible at contact.
    let mut worst = 0.0f32;
    let placed = MorphGenerator::plan(
        cfg.clone(),
        &TimelineConfig::default(),
        &shape,
        inputs.clone(),
    )
    .expect("plans")
    .layout()
    .landmarks;
    for seed in 0..8 {
        let tl = TimelineConfig {
            seed,
            ..TimelineConfig::default()
        };
        let timeline =
            Timeline::plan(&tl, &shape, [&placed[0], &placed[1]], (1280, 720)).expect("plans");
        let at = &timeline.frames()[timeline.contact_frame()];
        let [a, b] = [0, 1].map(|k| at.faces[k].expressed());
        let (front, back) = if at.front == 0 { (a, b) } else { (b, a) };
        let covered = covered_share(&front, &back);
        let xs = |l: &Landmarks| {
            l.0.iter()
                .fold((f32::MAX, f32::MIN), |(p, q), v| (p.min(v[0]), q.max(v[0])))
        };
        eprintln!(
            "seed {seed}: front {} (yaw {:.0}° / {:.0}°, roll {:.0}°), covers {:.0}% of the back face's box; x {:?} {:?}, mouths {:?} {:?}, noses {:?} {:?}",
            at.front,
            at.faces[0].angles.yaw,
            at.faces[1].angles.yaw,
            at.faces[0].angles.roll,
            100.0 * covered,
            xs(&a),
            xs(&b),
            a.mouth_centre(),
            b.mouth_centre(),
            a.0[30],
            b.0[30],
        );
        worst = worst.max(covered);
    }
    assert!(worst <= 0.4, "the back face is up to {worst:.2} hidden");
    let start = Instant::now();
    let mut generator =
        MorphGenerator::plan(cfg, &TimelineConfig::default(), &shape, inputs).expect("plans");
    let setup = start.elapsed().as_secs_f64();
    let contact = generator.timeline().contact_frame();
    let iod = mean_iod(&generator.layout().landmarks);
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("kiss-couple");
    std::fs::create_dir_all(&out).expect("artifact folder");
    let mut at_contact = None;
    let mut index = 0;
    while let Some(frame) = generator.next_frame() {
        let frame = frame.expect("renders");
        if index == contact {
            at_contact = generator.last_info().cloned();
        }
        if [0, 30, 50, contact, 100, 119].contains(&index) {
            frame
                .save(out.join(format!("frame_{index:03}.png")))
                .expect("saves");
        }
        index += 1;
    }
    let total = start.elapsed().as_secs_f64() - setup;
    let info = at_contact.expect("contact rendered");

    eprintln!(
        "real couple 1280x720: setup {:.0} ms, {index} frames in {total:.2} s ({:.1} ms/frame); mouths {:.2} px apart at contact (iod {iod:.1}); frames in {}",
        setup * 1e3,
        total * 1e3 / index as f64,
        info.mouth_distance(),
        out.display()
    );
    assert!(info.mouth_distance() <= 0.1 * iod);
}
