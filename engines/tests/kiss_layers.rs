//! The kiss on the real couple fixture, with the real face models (the analyser, the dense mesh
//! and the person segmentation): the lips meet, the face in front never hides both eyes of the
//! face behind, the clip moves from its first frame and loops.

mod common;

use kissbooth_engines::face::{FaceAnalyzer, FaceConfig, image_io};
use kissbooth_engines::generate::{
    GuideModels, MeanShape, MorphConfig, MorphGenerator, MorphInputs, Phase, TimelineConfig,
};

fn mean_abs_diff(a: &image::RgbImage, b: &image::RgbImage) -> f64 {
    let sum: u64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| x.abs_diff(*y) as u64)
        .sum();
    sum as f64 / a.as_raw().len() as f64
}

/// Whether `p` lies inside the polygon (even-odd rule).
fn inside(p: [f32; 2], poly: &[[f32; 2]]) -> bool {
    let mut inside = false;
    let mut j = poly.len() - 1;
    for (i, a) in poly.iter().enumerate() {
        let b = poly[j];
        if (a[1] > p[1]) != (b[1] > p[1])
            && p[0] < (b[0] - a[0]) * (p[1] - a[1]) / (b[1] - a[1]) + a[0]
        {
            inside = !inside;
        }
        j = i;
    }
    inside
}

#[test]
fn the_lips_meet_and_the_clip_loops_on_the_couple_fixture() {
    let test = "the_lips_meet_and_the_clip_loops_on_the_couple_fixture";
    let Some((models, rt)) = common::setup(test) else {
        return;
    };
    let img = image_io::load_rgb(&common::fixtures().join("couple_1280x720.jpg")).unwrap();
    let mut fa = FaceAnalyzer::open(rt, &models, FaceConfig::default()).unwrap();
    let a = fa.analyze(&img).unwrap();
    let faces = [a.faces[0].landmarks, a.faces[1].landmarks];
    let mut guide_models = GuideModels::open(rt, &models);
    if !guide_models.complete() {
        eprintln!("SKIPPED {test}: {:?}", guide_models.missing);
        return;
    }
    let guides = guide_models.guides([&img, &img], [&faces[0], &faces[1]]);
    let shape =
        MeanShape::parse(&std::fs::read_to_string(models.join("face3d-68.csv")).unwrap()).unwrap();
    let tl = TimelineConfig {
        seconds: 3.0,
        fps: 12,
        ..TimelineConfig::default()
    };
    let cfg = MorphConfig {
        width: 384,
        height: 384,
        ..MorphConfig::default()
    };
    let inputs = MorphInputs::Couple { frame: img, faces };
    let mut g = MorphGenerator::plan_with(cfg, &tl, &shape, inputs, &guides).unwrap();
    assert_eq!(
        g.dense_faces(),
        [true, true],
        "both faces turn on their mesh"
    );
    let n = g.frame_count();
    let contact = g.timeline().contact_frame();
    let mut frames = Vec::new();
    let mut gaps = Vec::new();
    let mut worst = 0.0f32;
    for i in 0..n {
        frames.push(g.render(i).unwrap());
        let info = g.last_info().unwrap();
        gaps.push((info.phase, info.lip_gap() / info.inter_ocular()));
        // The face in front never covers both eyes of the face behind, nor more than
        // 30 % of its brows,
        // eyes and nose: it hides the cheek and jaw.
        let (near, far) = (&info.landmarks[info.front], &info.landmarks[1 - info.front]);
        let outline: Vec<[f32; 2]> = near.0[..17]
            .iter()
            .chain(near.0[17..27].iter().rev())
            .copied()
            .collect();
        let covered = |range: std::ops::Range<usize>| {
            far.0[range.clone()]
                .iter()
                .filter(|p| inside(**p, &outline))
                .count() as f32
                / range.len() as f32
        };
        let (eyes, features) = ([covered(36..42), covered(42..48)], covered(19..48));
        assert!(
            eyes.iter().any(|&e| e < 0.5) && features <= 0.3,
            "frame {i} ({}): the face in front covers {:.0} % and {:.0} % of the eyes behind, \
             {:.0} % of the brows, eyes and nose",
            info.phase,
            100.0 * eyes[0],
            100.0 * eyes[1],
            100.0 * features
        );
        worst = worst.max(features);
    }
    eprintln!(
        "at most {:.0} % of the features behind covered",
        100.0 * worst
    );
    // Apart at the start, lips together at contact.
    assert!(gaps[0].1 > 3.0, "lips {:.2} apart at the start", gaps[0].1);
    assert_eq!(gaps[contact].0, Phase::Contact);
    assert!(
        gaps[contact].1 <= 0.15,
        "lips {:.3} inter-ocular distances apart at contact",
        gaps[contact].1
    );
    // Moving from the first frames, and the last frame leads back into the first.
    assert!(
        mean_abs_diff(&frames[0], &frames[2]) > 0.5,
        "the first frames are a still"
    );
    // The step from the last frame to the first is no bigger than an ordinary step between
    // two frames of the clip.
    let mut steps: Vec<f64> = frames
        .windows(2)
        .map(|w| mean_abs_diff(&w[0], &w[1]))
        .collect();
    steps.sort_by(f64::total_cmp);
    let median = steps[steps.len() / 2];
    let seam = mean_abs_diff(&frames[n - 1], &frames[0]);
    assert!(
        seam <= 1.5 * median,
        "the loop jumps: {seam:.2} mean difference, a step is {median:.2}"
    );
}
