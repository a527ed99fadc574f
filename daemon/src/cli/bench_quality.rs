//! `kissbooth bench quality`: how well the kiss keeps each person, case by case.
//!
//! Each case is the couple fixture or a pair of portraits, as given and mirrored. It is
//! analysed, guided (mesh, segmentation) and rendered with the morph generator exactly as the
//! booth renders; every `--every`th frame is judged against the capture with the identity
//! embedder ([`kissbooth_engines::quality`]). Per case and person it prints the lowest
//! similarity to their capture, the share of judged frames in which they are recognised (and
//! whether they are in every judged frame of the first and last half second), the lowest
//! detail kept; per case the lip gap at contact (inter-ocular distances), the background
//! flicker and the render time. A contact sheet per case (twelve frames) is written as a PNG:
//! look at it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use image::RgbImage;
use kissbooth_engines::Landmarks;
use kissbooth_engines::face::{FaceAnalyzer, FaceConfig, image_io};
use kissbooth_engines::generate::{
    GuideModels, MorphConfig, MorphGenerator, MorphInputs, TimelineConfig,
};
use kissbooth_engines::quality::{ClipJudge, ClipScore, flicker};
use kissbooth_media::{EncoderConfig, VideoMetadata, VideoSpec};
use serde::Serialize;

use crate::paths::Common;

/// One case: one couple frame or two portraits, maybe mirrored.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    pub images: Vec<PathBuf>,
    pub mirrored: bool,
}

/// The default cases from the fixtures folder: the couple frame and two pairs of portraits,
/// each as it is and mirrored.
pub fn default_cases(fixtures: &Path) -> Vec<Case> {
    let f = |n: &str| fixtures.join(n);
    let base = [
        ("couple", vec![f("couple_1280x720.jpg")]),
        (
            "castiglione+pearl",
            vec![
                f("Baldassare_Castiglione.jpg"),
                f("Girl_with_a_Pearl_Earring.jpg"),
            ],
        ),
        (
            "mona+castiglione",
            vec![f("mona_lisa.jpg"), f("Baldassare_Castiglione.jpg")],
        ),
    ];
    base.into_iter()
        .flat_map(|(name, images)| {
            [false, true].map(|mirrored| Case {
                name: if mirrored {
                    format!("{name}-mirrored")
                } else {
                    name.to_string()
                },
                images: images.clone(),
                mirrored,
            })
        })
        .collect()
}

#[derive(Debug, Serialize)]
struct CaseResult {
    case: String,
    score: ClipScore,
    lip_gap_at_contact_iod: f32,
    flicker: f32,
    render_s: f64,
    /// Of which detection, landmarks, mesh and segmentation, seconds.
    analysis_s: f64,
    sheet: PathBuf,
    /// Which of two portraits was laid out mirrored, looking away from its partner.
    laid_out_mirrored: [bool; 2],
}

/// Runs the cases and prints the table (or JSON lines).
#[allow(clippy::too_many_arguments)]
pub fn run(
    common: &Common,
    cases: Vec<Case>,
    size: (u32, u32),
    timeline: &TimelineConfig,
    every: usize,
    out: &Path,
    json: bool,
) -> anyhow::Result<ExitCode> {
    timeline.validate()?;
    let (seconds, fps) = (timeline.seconds, timeline.fps);
    let models = common.models_dir();
    let rt = common.runtime()?;
    let shape = crate::clip::mean_shape(&models)?;
    let Some(mut judge) = ClipJudge::open(rt, &models)? else {
        bail!(
            "no identity embedder in {}: install face-identity-faceres.onnx or face-identity-mobileface.onnx",
            models.display()
        );
    };
    let mut guides = GuideModels::open(rt, &models);
    for why in &guides.missing {
        eprintln!("kissbooth: {why}; measuring without it");
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    if !json {
        println!(
            "bench quality: {}x{}, {seconds} s at {fps} fps, every {every} frame(s) judged with {} (same person at {:.2} or more)",
            size.0,
            size.1,
            judge.name(),
            judge.threshold()
        );
        println!(
            "{:<26} {:>6} {:>8} {:>10} {:>5} {:>8} {:>8} {:>8} {:>8}",
            "case / person",
            "person",
            "min sim",
            "recognised",
            "ends",
            "detail",
            "lip gap",
            "flicker",
            "render s"
        );
    }
    let mut failed = false;
    for case in cases {
        match run_case(
            common,
            &case,
            &mut judge,
            &mut guides,
            &shape,
            size,
            timeline,
            every.max(1),
            out,
        ) {
            Ok(r) => print_result(&r, json)?,
            Err(e) => {
                eprintln!("{}: {e:#}", case.name);
                failed = true;
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn print_result(r: &CaseResult, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(r)?);
        return Ok(());
    }
    for (k, p) in r.score.people.iter().enumerate() {
        println!(
            "{:<26} {:>6} {:>8.3} {:>9.0}% {:>5} {:>7.0}% {:>8} {:>8} {:>8}",
            if k == 0 { r.case.as_str() } else { "" },
            k,
            p.min_similarity,
            100.0 * p.recognised_share,
            if p.recognised_at_ends { "yes" } else { "NO" },
            100.0 * p.min_detail,
            if k == 0 {
                format!("{:.3}", r.lip_gap_at_contact_iod)
            } else {
                String::new()
            },
            if k == 0 {
                format!("{:.2}", r.flicker)
            } else {
                String::new()
            },
            if k == 0 {
                format!("{:.2}", r.render_s)
            } else {
                String::new()
            },
        );
    }
    println!("{:<26} sheet: {}", "", r.sheet.display());
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn run_case(
    common: &Common,
    case: &Case,
    judge: &mut ClipJudge,
    guides: &mut GuideModels,
    shape: &kissbooth_engines::generate::MeanShape,
    size: (u32, u32),
    timeline: &TimelineConfig,
    every: usize,
    out: &Path,
) -> anyhow::Result<CaseResult> {
    let (seconds, fps) = (timeline.seconds, timeline.fps);
    let rt = common.runtime()?;
    let mut cfg = FaceConfig::default();
    cfg.gate.expected_faces = if case.images.len() == 1 { 2 } else { 1 };
    let mut analyzer = FaceAnalyzer::open(rt, &common.models_dir(), cfg)?;
    let t0 = Instant::now();
    let mut inputs = analyze_case(&mut analyzer, case)?;
    // The references for judging are the pictures as taken, and not part of the render.
    let t_refs = Instant::now();
    let refs = judge.references(
        [inputs.frame(0), inputs.frame(1)],
        inputs.faces().each_ref(),
    )?;
    let refs_time = t_refs.elapsed();
    let laid_out_mirrored = inputs.face_each_other();
    let g = guides.guides(
        [inputs.frame(0), inputs.frame(1)],
        inputs.faces().each_ref(),
    );
    let analysis_s = t0.elapsed().saturating_sub(refs_time).as_secs_f64();
    let morph = MorphConfig {
        width: size.0,
        height: size.1,
        ..MorphConfig::default()
    };
    let generator = MorphGenerator::plan_with(morph, timeline, shape, inputs, &g)?;
    let n = generator.frame_count();
    let contact = generator.timeline().contact_frame();
    let spec = VideoSpec::new(size.0, size.1, fps);
    let clip = render_and_encode(generator, &spec, &out.join(format!("{}.mp4", case.name)))?;
    let render_s = t0.elapsed().saturating_sub(refs_time).as_secs_f64();
    let mut judge_ms = 0.0;
    let mut judged = Vec::new();
    for i in (0..n).filter(|i| i % every == 0 || *i + 1 == n) {
        let t = Instant::now();
        judged.push(judge.judge(
            &refs,
            &clip.frames[i],
            &clip.drawn[i],
            i,
            i as f32 / fps as f32,
        )?);
        judge_ms += t.elapsed().as_secs_f64() * 1e3;
    }
    tracing::debug!(judge_ms, "judged");
    let sheet = out.join(format!("{}.png", case.name));
    contact_sheet(&clip.frames, contact, &sheet)?;
    Ok(CaseResult {
        case: case.name.clone(),
        score: ClipScore::of(judge.name(), judge.threshold(), judged, seconds),
        lip_gap_at_contact_iod: clip.lip_gap,
        flicker: clip.mean_flicker(),
        render_s,
        analysis_s,
        sheet,
        laid_out_mirrored,
    })
}

/// Loads the case's frames (mirrored if asked) and finds the two faces in them: both in a
/// couple frame, one in each portrait.
fn analyze_case(analyzer: &mut FaceAnalyzer, case: &Case) -> anyhow::Result<MorphInputs> {
    let mut frames: Vec<RgbImage> = Vec::new();
    let mut faces = Vec::new();
    for path in &case.images {
        let mut img = image_io::load_rgb(path)?;
        if case.mirrored {
            image::imageops::flip_horizontal_in_place(&mut img);
        }
        let a = analyzer.analyze(&img)?;
        if !a.verdict.ok {
            bail!("{}: {}", path.display(), a.verdict.message);
        }
        faces.extend(a.faces.iter().map(|f| f.landmarks));
        frames.push(img);
    }
    let &[a, b] = faces.as_slice() else {
        bail!("expected two faces in all, found {}", faces.len());
    };
    Ok(match frames.len() {
        1 => MorphInputs::Couple {
            frame: frames.remove(0),
            faces: [a, b],
        },
        _ => {
            let second = frames.remove(1);
            MorphInputs::Portraits {
                frames: [frames.remove(0), second],
                faces: [a, b],
            }
        }
    })
}

/// A rendered clip's frames, the landmarks drawn in each, and the lip gap at contact
/// (inter-ocular distances).
struct RenderedClip {
    frames: Vec<RgbImage>,
    drawn: Vec<[Landmarks; 2]>,
    lip_gap: f32,
}

impl RenderedClip {
    /// The background flicker, averaged over the frames that have both neighbours.
    fn mean_flicker(&self) -> f32 {
        let (f, n) = (&self.frames, self.frames.len());
        if n >= 3 {
            (1..n - 1)
                .map(|i| flicker(&f[i - 1], &f[i], &f[i + 1], &self.drawn[i]))
                .sum::<f32>()
                / (n - 2) as f32
        } else {
            0.0
        }
    }
}

/// Renders every frame on a worker thread and encodes it to `path` here, as the booth does:
/// the render time is the whole clip's, encoder included.
fn render_and_encode(
    mut generator: MorphGenerator,
    spec: &VideoSpec,
    path: &Path,
) -> anyhow::Result<RenderedClip> {
    let n = generator.frame_count();
    let contact = generator.timeline().contact_frame();
    let mut encoder = EncoderConfig::default().build(spec, path, &VideoMetadata::default())?;
    let (tx, rx) = std::sync::mpsc::sync_channel::<(RgbImage, [Landmarks; 2], f32)>(4);
    let worker = std::thread::spawn(move || -> anyhow::Result<()> {
        for i in 0..n {
            let frame = generator.render(i)?;
            let info = generator.last_info().context("no frame info")?;
            let gap = if i == contact {
                info.lip_gap() / info.inter_ocular().max(1e-3)
            } else {
                f32::NAN
            };
            if tx.send((frame, info.landmarks, gap)).is_err() {
                break;
            }
        }
        Ok(())
    });
    let mut clip = RenderedClip {
        frames: Vec::with_capacity(n),
        drawn: Vec::with_capacity(n),
        lip_gap: f32::NAN,
    };
    for (frame, landmarks, gap) in rx.iter() {
        encoder.push(&frame)?;
        if !gap.is_nan() {
            clip.lip_gap = gap;
        }
        clip.frames.push(frame);
        clip.drawn.push(landmarks);
    }
    worker
        .join()
        .map_err(|_| anyhow::anyhow!("the render thread stopped unexpectedly"))??;
    encoder.finish()?;
    Ok(clip)
}

/// Twelve frames (evenly spaced, the contact frame among them) in a 4x3 grid, each 240 pixels
/// on its longer side.
fn contact_sheet(frames: &[RgbImage], contact: usize, path: &Path) -> anyhow::Result<()> {
    let n = frames.len();
    let mut picks: Vec<usize> = (0..11).map(|k| k * (n - 1) / 10).collect();
    picks.push(contact);
    picks.sort_unstable();
    picks.dedup();
    let (w, h) = (frames[0].width(), frames[0].height());
    let scale = 240.0 / w.max(h) as f32;
    let (tw, th) = (
        ((w as f32 * scale) as u32).max(1),
        ((h as f32 * scale) as u32).max(1),
    );
    let cols = 4u32;
    let rows = (picks.len() as u32).div_ceil(cols);
    let gap = 4;
    let mut sheet = RgbImage::from_pixel(
        cols * (tw + gap) + gap,
        rows * (th + gap) + gap,
        image::Rgb([255, 255, 255]),
    );
    for (k, &i) in picks.iter().enumerate() {
        let thumb =
            image::imageops::resize(&frames[i], tw, th, image::imageops::FilterType::Triangle);
        let (x, y) = (
            gap + (k as u32 % cols) * (tw + gap),
            gap + (k as u32 / cols) * (th + gap),
        );
        image::imageops::replace(&mut sheet, &thumb, i64::from(x), i64::from(y));
    }
    sheet
        .save(path)
        .with_context(|| format!("cannot write {}", path.display()))
}
