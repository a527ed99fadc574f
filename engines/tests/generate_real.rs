//! The morph generator on the real couple frame, with landmarks from the real analyser.

mod common;

use kissbooth_engines::face::{FaceAnalyzer, FaceConfig, image_io};
use kissbooth_engines::generate::{
    MeanShape, MorphConfig, MorphGenerator, MorphInputs, TimelineConfig,
};

#[test]
fn the_same_couple_and_seed_render_the_same_frames() {
    let Some((models, rt)) = common::setup("the_same_couple_and_seed_render_the_same_frames")
    else {
        return;
    };
    let img = image_io::load_rgb(&common::fixtures().join("couple_1280x720.jpg")).unwrap();
    let mut fa = FaceAnalyzer::open(rt, &models, FaceConfig::default()).unwrap();
    let a = fa.analyze(&img).unwrap();
    let faces = [a.faces[0].landmarks, a.faces[1].landmarks];
    let shape =
        MeanShape::parse(&std::fs::read_to_string(models.join("face3d-68.csv")).unwrap()).unwrap();
    let cfg = TimelineConfig {
        seconds: 3.0,
        fps: 24,
        intensity: 0.8,
        seed: 5,
    };
    let render = || -> Vec<Vec<u8>> {
        let morph = MorphConfig {
            width: 512,
            height: 512,
            ..MorphConfig::default()
        };
        let inputs = MorphInputs::Couple {
            frame: img.clone(),
            faces,
        };
        MorphGenerator::plan(morph, &cfg, &shape, inputs)
            .unwrap()
            .map(|f| f.unwrap().into_raw())
            .collect()
    };
    let (first, second) = (render(), render());
    assert_eq!(first.len(), 72);
    let differing: Vec<usize> = (0..first.len())
        .filter(|&i| first[i] != second[i])
        .collect();
    assert!(
        differing.is_empty(),
        "frames differ between two renders: {differing:?}"
    );
}
