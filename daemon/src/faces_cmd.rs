//! `kissbooth faces`: face analysis of image files, as text, JSON lines, or annotated pictures.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use image::{Rgb, RgbImage};
use kissbooth_engines::Face;
use kissbooth_engines::face::{Analysis, DetectorSize, FaceAnalyzer, FaceConfig, FaceQuality};
use serde::Serialize;

use crate::paths::Common;

#[derive(Args)]
pub struct FacesArgs {
    /// Images to analyse (JPEG or PNG).
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    /// One JSON object per image, one per line.
    #[arg(long)]
    pub json: bool,
    /// Write the image with boxes and landmarks drawn (PNG). With several images, each gets
    /// OUT's name with the image's name appended.
    #[arg(long, value_name = "OUT.png")]
    pub annotate: Option<PathBuf>,
    /// Faces a usable frame must hold (2: a couple frame; 1: one person).
    #[arg(long, default_value_t = 2)]
    pub expect: usize,
    /// Detector input size.
    #[arg(long, default_value = "320", value_parser = ["320", "640"])]
    pub detector: String,
}

#[derive(Serialize)]
struct FaceOut<'a> {
    #[serde(flatten)]
    face: &'a Face,
    quality: &'a FaceQuality,
}

#[derive(Serialize)]
struct ImageOut<'a> {
    image: String,
    width: u32,
    height: u32,
    faces: Vec<FaceOut<'a>>,
    verdict: &'a kissbooth_engines::face::Verdict,
    ms: &'a kissbooth_engines::face::Timings,
    /// Milliseconds from process start to this result (first image only).
    #[serde(skip_serializing_if = "Option::is_none")]
    startup_ms: Option<f64>,
}

pub fn run(common: &Common, args: FacesArgs, started: Instant) -> anyhow::Result<ExitCode> {
    let mut cfg = FaceConfig::default();
    cfg.gate.expected_faces = args.expect;
    cfg.detector = if args.detector == "640" {
        DetectorSize::R640
    } else {
        DetectorSize::R320
    };
    let rt = common.runtime()?;
    let mut analyzer =
        FaceAnalyzer::open(rt, &common.models_dir(), cfg).context("cannot load the face models")?;
    let mut failed = 0;
    let stdout = std::io::stdout();
    for (i, path) in args.images.iter().enumerate() {
        let (img, analysis) = match analyzer.load_and_analyze(path) {
            Ok(r) => r,
            Err(e) => {
                failed += 1;
                eprintln!("kissbooth: {}", e.to_string().replace('\n', " "));
                continue;
            }
        };
        let startup = (i == 0).then(|| (started.elapsed().as_secs_f64() * 1e4).round() / 10.0);
        let mut out = stdout.lock();
        if args.json {
            let rec = ImageOut {
                image: path.display().to_string(),
                width: analysis.width,
                height: analysis.height,
                faces: analysis
                    .faces
                    .iter()
                    .zip(&analysis.quality)
                    .map(|(face, quality)| FaceOut { face, quality })
                    .collect(),
                verdict: &analysis.verdict,
                ms: &analysis.ms,
                startup_ms: startup,
            };
            writeln!(out, "{}", serde_json::to_string(&rec)?)?;
        } else {
            writeln!(out, "{}", summary(path, &analysis))?;
        }
        drop(out);
        if let Some(target) = &args.annotate {
            let dest = annotate_path(target, path, args.images.len());
            let mut png = std::io::Cursor::new(Vec::new());
            annotate(img, &analysis).write_to(&mut png, image::ImageFormat::Png)?;
            crate::store::write_atomic(&dest, png.get_ref())?;
        }
    }
    if failed > 0 {
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

fn summary(path: &Path, a: &Analysis) -> String {
    let scores: Vec<String> = a.faces.iter().map(|f| format!("{:.3}", f.score)).collect();
    format!(
        "{}: {} face(s) [{}] {}x{}: {} ({}) in {:.1} ms",
        path.display(),
        a.verdict.face_count,
        scores.join(", "),
        a.width,
        a.height,
        if a.verdict.ok { "usable" } else { "not usable" },
        a.verdict.message,
        a.ms.total
    )
}

fn annotate_path(target: &Path, image: &Path, count: usize) -> PathBuf {
    if count == 1 {
        return target.to_path_buf();
    }
    let stem = target
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("annotated");
    let img = image
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("image");
    target.with_file_name(format!("{stem}-{img}.png"))
}

/// Boxes (green when the frame is usable, red on the faces the verdict is about, amber
/// otherwise) and the 68 landmarks.
pub fn annotate(mut img: RgbImage, a: &Analysis) -> RgbImage {
    let thick = (img.width().max(img.height()) / 400).max(2) as i64;
    for (i, f) in a.faces.iter().enumerate() {
        let colour = if a.verdict.ok {
            Rgb([40, 220, 90])
        } else if a.verdict.faces.contains(&i) {
            Rgb([235, 50, 50])
        } else {
            Rgb([240, 180, 30])
        };
        crate::draw::frame_box(&mut img, f.bbox.map(|v| v.round() as i64), thick, colour);
        for p in &f.landmarks.0 {
            crate::draw::dot(
                &mut img,
                p[0].round() as i64,
                p[1].round() as i64,
                thick,
                Rgb([80, 200, 255]),
            );
        }
    }
    img
}
