//! `kissbooth render`: two analysed faces → the kiss timeline → morph frames → H.264 MP4 and a
//! poster JPEG. Frames are rendered on one thread and encoded on another, through a short queue.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use std::time::Instant;

use anyhow::{Context, bail};
use clap::Args;
use kissbooth_engines::face::{FaceAnalyzer, FaceConfig, image_io};
use kissbooth_engines::generate::{MorphConfig, MorphInputs, TimelineConfig};
use kissbooth_media::{EncoderChoice, EncoderConfig, VideoSpec};
use serde_json::json;

use crate::clip::{RenderReport, ms};
use crate::config::GeneratorKind;
use crate::paths::Common;

#[derive(Args)]
pub struct RenderArgs {
    /// One frame with both faces, or two frames with one face each (left, then right).
    #[arg(required = true, num_args = 1..=2)]
    pub inputs: Vec<PathBuf>,
    /// Output MP4; the poster is written beside it with a .jpg extension.
    #[arg(short = 'o', long = "output")]
    pub output: PathBuf,
    /// Duration in seconds (3 to 8).
    #[arg(long, default_value_t = 5.0)]
    pub seconds: f32,
    /// Frames per second.
    #[arg(long, default_value_t = 24)]
    pub fps: u32,
    /// Output size, WxH (512x512 square, 720x1280 portrait, 1280x720 landscape, ...).
    #[arg(long, default_value = "512x512", value_parser = parse_size)]
    pub size: (u32, u32),
    /// Seed for the small natural variations of the motion.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// How far the heads turn and lean (0 to 1).
    #[arg(long, default_value_t = 0.8)]
    pub intensity: f32,
    /// H.264 encoder: auto, nvv4l2h264enc, x264enc or openh264enc.
    #[arg(long, default_value = "auto")]
    pub encoder: EncoderChoice,
    /// Generator: morph (landmark mesh warp, runs anywhere) or diffusion (needs --pack; falls
    /// back to morph, saying why, when the pack is unusable).
    #[arg(long, value_enum, default_value_t = GeneratorKind::Morph)]
    pub generator: GeneratorKind,
    /// Diffusion model pack folder (a manifest.toml and its ONNX components).
    #[arg(long)]
    pub pack: Option<PathBuf>,
    /// Memory the diffusion pack may use, in MiB (default: MemAvailable, or the free memory
    /// of a discrete GPU); a pack that does not fit is refused and morph renders.
    #[arg(long)]
    pub memory_budget_mb: Option<u64>,
    /// Diffusion refine mode (video-to-video): the morph clip is rendered first and the pack
    /// re-draws it at this strength, 0 (the clip through the VAE) to 1 (from noise); it keeps
    /// the morph's motion and who is where. Needs a pack with a video encoder.
    #[arg(long, value_parser = parse_strength)]
    pub refine_strength: Option<f32>,
    /// The event's name, set above the couple in a portrait clip (as the booth does).
    #[arg(long)]
    pub title: Option<String>,
    /// Progress and the result as JSON lines on stdout.
    #[arg(long)]
    pub json: bool,
    /// Add Content Credentials (C2PA) signed with the booth's key in DATA/c2pa, making the key
    /// when there is none; a clip that cannot be signed is an error (left in place, unsigned).
    #[arg(long)]
    pub sign: bool,
}

impl RenderArgs {
    /// A render of `inputs` to `output` with every other setting at the command line's default.
    pub fn new(inputs: Vec<PathBuf>, output: PathBuf) -> Self {
        #[derive(clap::Parser)]
        struct Defaults {
            #[command(flatten)]
            args: RenderArgs,
        }
        let mut args = <Defaults as clap::Parser>::try_parse_from(["render", "-o", "-", "-"])
            .expect("the render command's defaults parse")
            .args;
        args.inputs = inputs;
        args.output = output;
        args
    }
}

fn parse_strength(s: &str) -> Result<f32, String> {
    match s.trim().parse::<f32>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("strength {s:?} is not a number from 0 to 1")),
    }
}

pub fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let (w, h) = s
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("size {s:?} is not WxH"))?;
    let w: u32 = w
        .trim()
        .parse()
        .map_err(|_| format!("width in {s:?} is not a number"))?;
    let h: u32 = h
        .trim()
        .parse()
        .map_err(|_| format!("height in {s:?} is not a number"))?;
    Ok((w, h))
}

pub fn run(common: &Common, args: RenderArgs) -> anyhow::Result<ExitCode> {
    let tty = std::io::stderr().is_terminal() && !args.json;
    let r = render(common, &args, |done, total| {
        progress(&args, tty, done, total)
    })?;
    if tty {
        eprintln!();
    }
    if args.json {
        let mut v = serde_json::to_value(&r)?;
        v["event"] = json!("done");
        println!("{v}");
    } else {
        println!(
            "wrote {} ({} frames, {:.1} s, {} bytes, {}) and {} in {:.1} s (analysis {:.0} ms, render {:.0} ms, encode {:.0} ms{})",
            r.output.display(),
            r.frames,
            r.duration_s,
            r.bytes,
            r.encoder,
            r.poster.display(),
            r.ms.total / 1000.0,
            r.ms.analysis,
            r.ms.render,
            r.ms.encode,
            if r.signed {
                format!(", Content Credentials {:.0} ms", r.ms.sign)
            } else {
                String::new()
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Renders `args.inputs` to `args.output` and its poster, calling `on_frame(done, total)` as
/// frames are encoded; with `args.sign`, then adds the booth's Content Credentials.
pub fn render(
    common: &Common,
    args: &RenderArgs,
    on_frame: impl FnMut(usize, usize) -> anyhow::Result<()>,
) -> anyhow::Result<RenderReport> {
    // The key first: a booth that cannot sign says so before the render, not after.
    let signer = if args.sign {
        let (signer, made) = crate::clip::provenance::BoothSigner::open_or_create(&common.data)?;
        if made {
            eprintln!(
                "kissbooth: made this booth's Content Credentials key in {}",
                crate::clip::provenance::key_dir(&common.data).display()
            );
        }
        Some(signer)
    } else {
        None
    };
    let mut report = render_unsigned(common, args, on_frame)?;
    if let Some(signer) = &signer {
        crate::clip::sign_clip(signer, &mut report)
            .with_context(|| format!("{} is written but not signed", report.output.display()))?;
    }
    Ok(report)
}

fn render_unsigned(
    common: &Common,
    args: &RenderArgs,
    mut on_frame: impl FnMut(usize, usize) -> anyhow::Result<()>,
) -> anyhow::Result<RenderReport> {
    let t0 = Instant::now();
    if args.generator == GeneratorKind::Diffusion && args.pack.is_none() {
        bail!("--generator diffusion needs --pack DIR (a diffusion model pack)");
    }
    let settings = clip_settings(args)?;
    check_output(&args.output)?;

    // Analysis: the gate must pass on every input.
    let models = common.models_dir();
    let shape = crate::clip::mean_shape(&models)?;
    let rt = common.runtime()?;
    let Prepared {
        inputs,
        guides,
        mut judge,
        refs,
    } = prepare(args, rt, &models)?;
    let analysis_ms = ms(t0);

    let cancel = std::sync::atomic::AtomicBool::new(false);
    // The diffusion generator when asked for and usable; otherwise morph, saying why.
    let mut fallback = None;
    if let Some(dir) = args
        .pack
        .as_deref()
        .filter(|_| args.generator == GeneratorKind::Diffusion)
    {
        let diffusion = Diffusion {
            settings: &settings,
            shape: &shape,
            inputs: &inputs,
            guides: &guides,
        };
        let rendered = render_with_pack(dir, args, rt, diffusion, &mut on_frame, &cancel)?;
        match rendered {
            PackRender::Rendered(mut report) => {
                report.ms.analysis = analysis_ms;
                report.ms.total = ms(t0);
                return Ok(*report);
            }
            PackRender::Refused(why) => {
                eprintln!("kissbooth: {why}; rendering with the morph generator");
                tracing::warn!(reason = %why, "falling back to the morph generator");
                fallback = Some(why);
            }
        }
    }
    let check = judge
        .as_mut()
        .zip(refs)
        .map(|(judge, refs)| crate::clip::SelfCheck { judge, refs });
    let mut report = crate::clip::render_clip(
        &settings,
        &shape,
        inputs,
        &guides,
        &args.output,
        &mut on_frame,
        &cancel,
        check,
    )?;
    report.fallback = fallback;
    report.ms.analysis = analysis_ms;
    report.ms.total = ms(t0);
    Ok(report)
}

/// The analysed inputs with their guides (mesh and person masks), and the identity embedder
/// with each person's reference when one is installed.
struct Prepared {
    inputs: MorphInputs,
    guides: kissbooth_engines::generate::MorphGuides,
    judge: Option<kissbooth_engines::quality::ClipJudge>,
    refs: Option<[kissbooth_engines::quality::Reference; 2]>,
}

/// Analyses the inputs, takes the self-check's references from them, lays two portraits out
/// facing each other, then guides them.
fn prepare(
    args: &RenderArgs,
    rt: &'static kissbooth_engines::runtime::Runtime,
    models: &Path,
) -> anyhow::Result<Prepared> {
    let mut inputs = analyse_inputs(args, rt, models)?;
    // The identity self-check, when an embedder is installed: against the pictures as taken.
    let mut judge = kissbooth_engines::quality::ClipJudge::open(rt, models)?;
    let refs = match judge.as_mut() {
        Some(j) => Some(j.references(
            [inputs.frame(0), inputs.frame(1)],
            inputs.faces().each_ref(),
        )?),
        None => {
            eprintln!("kissbooth: no identity embedder installed: the clip is not self-checked");
            None
        }
    };
    for (k, _) in inputs
        .face_each_other()
        .iter()
        .enumerate()
        .filter(|(_, m)| **m)
    {
        eprintln!(
            "kissbooth: {} looks away from the other face: laid out mirrored, so the two face each other",
            args.inputs[k].display()
        );
    }
    // The dense mesh and person masks, when the face pack has them.
    let mut guide_models = kissbooth_engines::generate::GuideModels::open(rt, models);
    for why in &guide_models.missing {
        eprintln!("kissbooth: {why}; rendering without it");
    }
    let guides = guide_models.guides(
        [inputs.frame(0), inputs.frame(1)],
        inputs.faces().each_ref(),
    );
    Ok(Prepared {
        inputs,
        guides,
        judge,
        refs,
    })
}

/// A diffusion render, or why the pack could not make it.
enum PackRender {
    Rendered(Box<RenderReport>),
    Refused(String),
}

/// What a diffusion render takes from the analysis.
struct Diffusion<'a> {
    settings: &'a crate::config::ClipSettings,
    shape: &'a kissbooth_engines::generate::MeanShape,
    inputs: &'a MorphInputs,
    guides: &'a kissbooth_engines::generate::MorphGuides,
}

/// Renders with the diffusion pack in `dir` when it loads within the memory budget and takes
/// these inputs (one couple frame, or any inputs in refine mode: `--refine-strength`, the
/// morph clip re-drawn video-to-video).
fn render_with_pack(
    dir: &Path,
    args: &RenderArgs,
    rt: &'static kissbooth_engines::runtime::Runtime,
    d: Diffusion,
    on_frame: &mut dyn FnMut(usize, usize) -> anyhow::Result<()>,
    cancel: &std::sync::atomic::AtomicBool,
) -> anyhow::Result<PackRender> {
    use kissbooth_engines::diffusion::{DiffusionGenerator, LoadOptions, Pack};
    let options = LoadOptions {
        memory_budget_mib: args.memory_budget_mb,
    };
    let pack = match Pack::load_with(dir, rt, &options) {
        Ok(pack) => pack,
        Err(e) => return Ok(PackRender::Refused(format!("diffusion pack refused: {e}"))),
    };
    let mut generator = DiffusionGenerator::new(pack);
    let (out, s) = (&args.output, d.settings);
    let report = match (d.inputs, args.refine_strength) {
        (inputs, Some(strength)) => crate::clip::refine_diffusion_clip(
            s,
            d.shape,
            &mut generator,
            inputs.clone(),
            d.guides,
            strength,
            out,
            on_frame,
            cancel,
        )?,
        (MorphInputs::Couple { frame, faces }, None) => crate::clip::render_diffusion_clip(
            s,
            d.shape,
            &mut generator,
            frame,
            faces,
            out,
            on_frame,
            cancel,
        )?,
        (_, None) => {
            return Ok(PackRender::Refused(
                "the diffusion pack takes one couple frame, not two portraits".to_string(),
            ));
        }
    };
    Ok(PackRender::Rendered(Box::new(report)))
}

/// The clip's settings from the command line, each part checked as the renderer and the
/// encoder will check it.
fn clip_settings(args: &RenderArgs) -> anyhow::Result<crate::config::ClipSettings> {
    let (width, height) = args.size;
    let timeline = TimelineConfig {
        seconds: args.seconds,
        fps: args.fps,
        intensity: args.intensity,
        seed: args.seed,
    };
    timeline.validate().context("invalid motion settings")?;
    let morph = MorphConfig {
        width,
        height,
        ..MorphConfig::default()
    };
    morph.validate().context("invalid output size")?;
    let encoder_cfg = EncoderConfig {
        encoder: args.encoder,
        ..EncoderConfig::default()
    };
    encoder_cfg.validate()?;
    let spec = VideoSpec::new(width, height, args.fps);
    spec.validate()?;
    // The video's creation time is the photo's: the same inputs and seed give the same file.
    let created_unix_s = std::fs::metadata(&args.inputs[0])
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs() as i64);
    let title = args
        .title
        .as_deref()
        .and_then(|t| crate::clip::title::title(t, morph.width, morph.height))
        .and_then(|l| kissbooth_media::Overlay::from_rgba(l, kissbooth_media::Placement::Full).ok())
        .map(std::sync::Arc::new);
    Ok(crate::config::ClipSettings {
        timeline,
        morph,
        encoder: encoder_cfg,
        created_unix_s,
        overlay: None,
        title,
    })
}

/// Each input analysed; the gate must pass on every one (two faces in a couple frame, one in
/// each portrait). Returns the pictures with the faces' landmarks in order, as the morph
/// generator takes them.
fn analyse_inputs(
    args: &RenderArgs,
    rt: &'static kissbooth_engines::runtime::Runtime,
    models: &Path,
) -> anyhow::Result<MorphInputs> {
    let mut cfg = FaceConfig::default();
    cfg.gate.expected_faces = if args.inputs.len() == 1 { 2 } else { 1 };
    let mut analyzer =
        FaceAnalyzer::open(rt, models, cfg).context("cannot load the face models")?;
    let mut frames = Vec::new();
    let mut faces = Vec::new();
    for path in &args.inputs {
        let img = image_io::load_rgb(path)?;
        let a = analyzer.analyze(&img)?;
        if !a.verdict.ok {
            bail!(
                "{}: {} ({:?}, {} face(s) found)",
                path.display(),
                a.verdict.message,
                a.verdict.code,
                a.verdict.face_count
            );
        }
        faces.extend(a.faces.iter().map(|f| f.landmarks));
        frames.push(img);
    }
    match (frames.len(), faces.as_slice()) {
        (1, &[a, b]) => Ok(MorphInputs::Couple {
            frame: frames.remove(0),
            faces: [a, b],
        }),
        (2, &[a, b]) => {
            let second = frames.remove(1);
            Ok(MorphInputs::Portraits {
                frames: [frames.remove(0), second],
                faces: [a, b],
            })
        }
        _ => bail!("expected two faces in all"),
    }
}

fn check_output(out: &Path) -> anyhow::Result<()> {
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !dir.is_dir() {
        bail!("output folder {} does not exist", dir.display());
    }
    if out.is_dir() {
        bail!("output {} is a folder", out.display());
    }
    if out
        .extension()
        .and_then(|e| e.to_str())
        .is_none_or(|e| !e.eq_ignore_ascii_case("mp4"))
    {
        bail!("output {} must end in .mp4", out.display());
    }
    Ok(())
}

fn progress(args: &RenderArgs, tty: bool, done: usize, total: usize) -> anyhow::Result<()> {
    if args.json {
        if done.is_multiple_of(12) || done == total {
            println!(
                "{}",
                json!({"event": "progress", "frame": done, "frames": total})
            );
        }
    } else if tty {
        let w = 30;
        let filled = done * w / total.max(1);
        let mut e = std::io::stderr().lock();
        write!(
            e,
            "\rrendering [{}{}] {done}/{total}",
            "#".repeat(filled),
            ".".repeat(w - filled)
        )?;
        e.flush()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_render_made_in_code_has_the_command_lines_defaults() {
        let a = RenderArgs::new(vec![PathBuf::from("in.jpg")], PathBuf::from("out.mp4"));
        assert_eq!(a.inputs, [PathBuf::from("in.jpg")]);
        assert_eq!(a.output, PathBuf::from("out.mp4"));
        assert_eq!((a.seconds, a.fps, a.size, a.seed), (5.0, 24, (512, 512), 0));
        assert_eq!((a.intensity, a.generator), (0.8, GeneratorKind::Morph));
        assert!(a.pack.is_none() && a.title.is_none() && !a.json);
    }
}
