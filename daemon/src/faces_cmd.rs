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
        let analysis = match analyzer.analyze_file(path) {
            Ok(a) => a,
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
            let img = kissbooth_engines::face::image_io::load_rgb(path)?;
            write_png_atomic(&annotate(img, &analysis), &dest)?;
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
        let b = f.bbox.map(|v| v.round() as i64);
        for t in 0..thick {
            rect(&mut img, b[0] - t, b[1] - t, b[2] + t, b[3] + t, colour);
        }
        for p in &f.landmarks.0 {
            dot(
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

fn put(img: &mut RgbImage, x: i64, y: i64, c: Rgb<u8>) {
    if x >= 0 && y >= 0 && (x as u32) < img.width() && (y as u32) < img.height() {
        img.put_pixel(x as u32, y as u32, c);
    }
}

fn rect(img: &mut RgbImage, x0: i64, y0: i64, x1: i64, y1: i64, c: Rgb<u8>) {
    for x in x0..=x1 {
        put(img, x, y0, c);
        put(img, x, y1, c);
    }
    for y in y0..=y1 {
        put(img, x0, y, c);
        put(img, x1, y, c);
    }
}

fn dot(img: &mut RgbImage, x: i64, y: i64, r: i64, c: Rgb<u8>) {
    for dy in -r..=r {
        for dx in -r..=r {
            if dx * dx + dy * dy <= r * r {
                put(img, x + dx, y + dy, c);
            }
        }
    }
}

fn write_png_atomic(img: &RgbImage, dest: &Path) -> anyhow::Result<()> {
    let dir = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    anyhow::ensure!(dir.is_dir(), "{}: folder does not exist", dir.display());
    let tmp = dir.join(format!(
        ".{}.partial-{}",
        dest.file_name().and_then(|n| n.to_str()).unwrap_or("out"),
        std::process::id()
    ));
    let res = (|| -> anyhow::Result<()> {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        img.write_to(&mut f, image::ImageFormat::Png)?;
        let f = f.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        std::fs::rename(&tmp, dest)?;
        Ok(())
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res.with_context(|| format!("cannot write {}", dest.display()))
}
