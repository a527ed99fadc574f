//! Renders a kiss from fixture images and writes every Nth frame as a PNG, for looking at the
//! generator's output frame by frame (make a sheet with `montage`).
//!
//! `cargo run -p kissbooth-engines --example contact_sheet -- OUT_DIR WxH SECONDS SEED IMAGE [IMAGE]`
//! with `ORT_DYLIB_PATH` and `KISSBOOTH_MODELS` set.

use std::path::PathBuf;

use kissbooth_engines::face::{FaceAnalyzer, FaceConfig, image_io};
use kissbooth_engines::generate::{
    GuideModels, MeanShape, MorphConfig, MorphGenerator, MorphGuides, MorphInputs, TimelineConfig,
};
use kissbooth_engines::runtime::{Runtime, RuntimeConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 5 {
        return Err("usage: OUT_DIR WxH SECONDS SEED IMAGE [IMAGE]".into());
    }
    let out = PathBuf::from(&args[0]);
    std::fs::create_dir_all(&out)?;
    let (w, h) = args[1].split_once('x').ok_or("size WxH")?;
    let (w, h): (u32, u32) = (w.parse()?, h.parse()?);
    let seconds: f32 = args[2].parse()?;
    let seed: u64 = args[3].parse()?;
    let models = PathBuf::from(std::env::var("KISSBOOTH_MODELS")?);
    let rt = Runtime::init(&RuntimeConfig::default())?;
    let mut fa = FaceAnalyzer::open(rt, &models, FaceConfig::default())?;
    let images: Vec<_> = args[4..]
        .iter()
        .map(|p| image_io::load_rgb(std::path::Path::new(p)))
        .collect::<Result<_, _>>()?;
    let mut models_g = GuideModels::open(rt, &models);
    let inputs = if images.len() == 1 {
        let a = fa.analyze(&images[0])?;
        if a.faces.len() != 2 {
            return Err(format!("{} faces", a.faces.len()).into());
        }
        MorphInputs::Couple {
            frame: images[0].clone(),
            faces: [a.faces[0].landmarks, a.faces[1].landmarks],
        }
    } else {
        let a = fa.analyze(&images[0])?;
        let b = fa.analyze(&images[1])?;
        MorphInputs::Portraits {
            frames: [images[0].clone(), images[1].clone()],
            faces: [a.faces[0].landmarks, b.faces[0].landmarks],
        }
    };
    let guides: MorphGuides = if std::env::var_os("NO_GUIDES").is_some() {
        MorphGuides::default()
    } else {
        let f = inputs.faces();
        models_g.guides([inputs.frame(0), inputs.frame(1)], [&f[0], &f[1]])
    };
    let shape = MeanShape::parse(&std::fs::read_to_string(models.join("face3d-68.csv"))?)?;
    let tl = TimelineConfig {
        seconds,
        seed,
        ..TimelineConfig::default()
    };
    let cfg = MorphConfig {
        width: w,
        height: h,
        ..MorphConfig::default()
    };
    let t0 = std::time::Instant::now();
    let mut g = MorphGenerator::plan_with(cfg, &tl, &shape, inputs, &guides)?;
    let n = g.frame_count();
    let contact = g.timeline().contact_frame();
    let step = (n / 12).max(1);
    for i in 0..n {
        let frame = g.render(i)?;
        if i % step == 0 || i == contact || i == n - 1 {
            frame.save(out.join(format!("f{i:03}.png")))?;
            let info = g.last_info().ok_or("info")?;
            println!(
                "frame {i} {:?} lip_gap/iod {:.3} zoom {:.2}",
                info.phase,
                info.lip_gap() / info.inter_ocular(),
                info.zoom
            );
        }
    }
    println!("{n} frames in {:.2} s", t0.elapsed().as_secs_f32());
    Ok(())
}
