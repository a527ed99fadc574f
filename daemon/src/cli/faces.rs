//! `kissbooth faces`: face analysis of image files, as text, JSON lines, or annotated pictures.
//!
//! With face pack v2 installed, each face also gets its dense mesh and the share of its box the
//! person mask covers (JSON and annotations only); a missing v2 model is said once on stderr
//! and its fields are left out.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use image::{Rgb, RgbImage};
use kissbooth_engines::Face;
use kissbooth_engines::face::mesh::{FaceMesh, MeshModel};
use kissbooth_engines::face::segment::Segmenter;
use kissbooth_engines::face::{
    Analysis, DetectorSize, FaceAnalyzer, FaceConfig, FaceError, FaceQuality, Timings,
};
use kissbooth_engines::runtime::Runtime;
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
    /// 468 `[x, y, z]` in image pixels (z: depth, larger is farther), rounded to 0.01.
    #[serde(skip_serializing_if = "Option::is_none")]
    mesh: Option<Vec<[f32; 3]>>,
    /// Share of the face box that the person mask covers (0..1).
    #[serde(skip_serializing_if = "Option::is_none")]
    mask_coverage: Option<f32>,
}

/// Stage times: the analysis's, and the v2 stages' when they ran (`total` includes them).
#[derive(Serialize)]
struct MsOut<'a> {
    #[serde(flatten)]
    analysis: &'a Timings,
    #[serde(skip_serializing_if = "Option::is_none")]
    mesh: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    segment: Option<f64>,
}

#[derive(Serialize)]
struct ImageOut<'a> {
    image: String,
    width: u32,
    height: u32,
    faces: Vec<FaceOut<'a>>,
    verdict: &'a kissbooth_engines::face::Verdict,
    ms: MsOut<'a>,
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
    let models = common.models_dir();
    let mut analyzer =
        FaceAnalyzer::open(rt, &models, cfg).context("cannot load the face models")?;
    // The v2 stages only feed the JSON and the annotations.
    let mut v2 = if args.json || args.annotate.is_some() {
        FacePackV2::open(rt, &models)?
    } else {
        FacePackV2::default()
    };
    let mut failed = 0;
    let stdout = std::io::stdout();
    for (i, path) in args.images.iter().enumerate() {
        let analysed = analyzer
            .load_and_analyze(path)
            .and_then(|(img, a)| v2.run(&img, &a).map(|extra| (img, a, extra)));
        let (img, analysis, extra) = match analysed {
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
            let mut ms = analysis.ms.clone();
            ms.total += extra.mesh_ms.unwrap_or(0.0) + extra.segment_ms.unwrap_or(0.0);
            let rec = ImageOut {
                image: path.display().to_string(),
                width: analysis.width,
                height: analysis.height,
                faces: analysis
                    .faces
                    .iter()
                    .zip(&analysis.quality)
                    .enumerate()
                    .map(|(k, (face, quality))| FaceOut {
                        face,
                        quality,
                        mesh: extra.meshes.get(k).map(|m| rounded(&m.points)),
                        mask_coverage: extra.coverage.get(k).map(|c| round4(*c)),
                    })
                    .collect(),
                verdict: &analysis.verdict,
                ms: MsOut {
                    analysis: &ms,
                    mesh: extra.mesh_ms,
                    segment: extra.segment_ms,
                },
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
            annotate(img, &analysis, &extra.meshes).write_to(&mut png, image::ImageFormat::Png)?;
            crate::store::write_atomic(&dest, png.get_ref())?;
        }
    }
    if failed > 0 {
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// The face pack v2 stages that are installed.
#[derive(Default)]
struct FacePackV2 {
    mesh: Option<MeshModel>,
    segmenter: Option<Segmenter>,
}

/// What the v2 stages found in one image: per face (in the analysis's order) the mesh and the
/// mask coverage, each empty when its model is not installed.
struct V2Out {
    meshes: Vec<FaceMesh>,
    coverage: Vec<f32>,
    mesh_ms: Option<f64>,
    segment_ms: Option<f64>,
}

impl FacePackV2 {
    /// Opens the mesh and segmentation models. Those not installed are named in one line on
    /// stderr and their fields left out; any other problem is an error.
    fn open(rt: &Runtime, models: &Path) -> anyhow::Result<Self> {
        let mut missing = Vec::new();
        let v2 = FacePackV2 {
            mesh: optional(MeshModel::open(rt, models), "`mesh`", &mut missing)?,
            segmenter: optional(Segmenter::open(rt, models), "`mask_coverage`", &mut missing)?,
        };
        if !missing.is_empty() {
            let (files, fields): (Vec<String>, Vec<&str>) = missing.into_iter().unzip();
            eprintln!(
                "kissbooth: face pack v2 is not installed in {} ({} missing): no {} in the output; install it with `kissbooth models install`",
                models.display(),
                files.join(", "),
                fields.join(" or ")
            );
        }
        Ok(v2)
    }

    fn run(&mut self, img: &RgbImage, a: &Analysis) -> Result<V2Out, FaceError> {
        let mut out = V2Out {
            meshes: Vec::new(),
            coverage: Vec::new(),
            mesh_ms: None,
            segment_ms: None,
        };
        if let Some(m) = &mut self.mesh {
            let t = Instant::now();
            out.meshes = a
                .faces
                .iter()
                .map(|f| m.run(img, f))
                .collect::<Result<_, _>>()?;
            out.mesh_ms = Some(elapsed_ms(t));
        }
        if let Some(s) = &mut self.segmenter {
            let t = Instant::now();
            let mask = s.run(img)?;
            out.coverage = a.faces.iter().map(|f| mask.coverage_in(f.bbox)).collect();
            out.segment_ms = Some(elapsed_ms(t));
        }
        Ok(out)
    }
}

/// A v2 model, or `None` when its file is not installed (noted in `missing` with the output
/// field that goes with it).
fn optional<'f, T>(
    opened: Result<T, FaceError>,
    field: &'f str,
    missing: &mut Vec<(String, &'f str)>,
) -> anyhow::Result<Option<T>> {
    match opened {
        Ok(m) => Ok(Some(m)),
        Err(FaceError::MissingModel { file, .. }) => {
            missing.push((file, field));
            Ok(None)
        }
        Err(e) => Err(anyhow::Error::new(e).context("cannot load the face pack v2 models")),
    }
}

fn elapsed_ms(t: Instant) -> f64 {
    (t.elapsed().as_secs_f64() * 1e5).round() / 100.0
}

fn rounded(points: &[[f32; 3]]) -> Vec<[f32; 3]> {
    points
        .iter()
        .map(|p| p.map(|v| (v * 100.0).round() / 100.0))
        .collect()
}

fn round4(v: f32) -> f32 {
    (v * 1e4).round() / 1e4
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
/// otherwise), the dense meshes when given (yellow points, the lids and lips in magenta) and
/// the 68 landmarks.
pub fn annotate(mut img: RgbImage, a: &Analysis, meshes: &[FaceMesh]) -> RgbImage {
    let thick = (img.width().max(img.height()) / 400).max(2) as i64;
    for m in meshes {
        let contours = [
            &FaceMesh::RIGHT_EYE_UPPER[..],
            &FaceMesh::RIGHT_EYE_LOWER[..],
            &FaceMesh::LEFT_EYE_UPPER[..],
            &FaceMesh::LEFT_EYE_LOWER[..],
            &FaceMesh::LIPS_OUTER[..],
            &FaceMesh::LIPS_INNER[..],
        ]
        .concat();
        for (k, p) in m.points.iter().enumerate() {
            let colour = if contours.contains(&k) {
                Rgb([255, 0, 255])
            } else {
                Rgb([255, 230, 0])
            };
            let (x, y) = (p[0].round() as i64, p[1].round() as i64);
            crate::clip::draw::dot(&mut img, x, y, thick / 2, colour);
        }
    }
    for (i, f) in a.faces.iter().enumerate() {
        let colour = if a.verdict.ok {
            Rgb([40, 220, 90])
        } else if a.verdict.faces.contains(&i) {
            Rgb([235, 50, 50])
        } else {
            Rgb([240, 180, 30])
        };
        crate::clip::draw::frame_box(&mut img, f.bbox.map(|v| v.round() as i64), thick, colour);
        for p in &f.landmarks.0 {
            crate::clip::draw::dot(
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
