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
    GenerateError, HeadAngles, MeanShape, MorphConfig, MorphGenerator, MorphInputs, Timeline,
    TimelineConfig, TimelineConfigError, fit_pose,
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

fn mean_abs_diff(a: &RgbImage, b: &RgbImage) -> f64 {
    let sum: u64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| x.abs_diff(*y) as u64)
        .sum();
    sum as f64 / a.as_raw().len() as f64
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
fn no_frame_jumps() {
    let shape = shape_or_skip!();
    // The motion itself: the faces' sharpening scales every textured difference between
    // frames alike, and would only measure the paintings' grain.
    let cfg = MorphConfig {
        width: 256,
        height: 256,
        sharpen: 0.0,
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
    let placed = generator.canvas_faces();
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
