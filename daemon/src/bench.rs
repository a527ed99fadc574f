//! `kissbooth bench`: speed figures, as ratios against the Python reference where one exists.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Subcommand;
use kissbooth_engines::face::{FaceAnalyzer, FaceConfig};
use serde::Serialize;

use crate::paths::Common;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Face analysis per image (decode → verdict) against `reference/face_ref.py`, and the
    /// start-up time to the first result.
    Faces {
        /// Images (default: the couple fixture in $KISSBOOTH_FIXTURES or ../shared/fixtures/faces).
        images: Vec<PathBuf>,
        /// Runs per image; figures are medians.
        #[arg(long, default_value_t = 20)]
        repeat: usize,
        /// The Python reference script (default: ../shared/reference/face_ref.py).
        #[arg(long)]
        reference: Option<PathBuf>,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// End-to-end render (analysis, plan, morph, encode) of a 5 s clip at 512x512 and 1280x720,
    /// with where the time goes and the peak memory.
    Render {
        /// A couple frame (default: the couple fixture).
        image: Option<PathBuf>,
        #[arg(long, default_value_t = 5.0)]
        seconds: f32,
        #[arg(long, default_value_t = 24)]
        fps: u32,
        /// Runs per size; figures are medians.
        #[arg(long, default_value_t = 3)]
        repeat: usize,
    },
}

#[derive(Serialize, Default)]
struct Figures {
    image: String,
    rust_ms: StageMs,
    python_ms: Option<StageMs>,
    ratio_total: Option<f64>,
}

#[derive(Serialize, Default, Clone)]
struct StageMs {
    decode: f64,
    detect: f64,
    landmarks: f64,
    total: f64,
}

pub fn run(common: &Common, cmd: BenchCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        BenchCommand::Faces {
            images,
            repeat,
            reference,
            json,
        } => faces(common, images, repeat, reference, json),
        BenchCommand::Render {
            image,
            seconds,
            fps,
            repeat,
        } => render(common, image, seconds, fps, repeat),
    }
}

fn fixtures_dir() -> PathBuf {
    std::env::var_os("KISSBOOTH_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| shared_dir().join("fixtures/faces"))
}

fn render(
    common: &Common,
    image: Option<PathBuf>,
    seconds: f32,
    fps: u32,
    repeat: usize,
) -> anyhow::Result<ExitCode> {
    use crate::render_cmd::{self, RenderArgs};
    let image = image.unwrap_or_else(|| fixtures_dir().join("couple_1280x720.jpg"));
    let dir = tempfile::tempdir()?;
    println!(
        "render end to end: {seconds} s at {fps} fps, median of {} run(s)",
        repeat.max(1)
    );
    println!(
        "{:<10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10} {:>9}",
        "size", "analysis", "plan", "render", "encode", "total", "x realtime", "peak MiB"
    );
    for size in [(512, 512), (1280, 720)] {
        let mut runs = Vec::new();
        for _ in 0..repeat.max(1) {
            let args = RenderArgs {
                inputs: vec![image.clone()],
                output: dir.path().join("bench.mp4"),
                seconds,
                fps,
                size,
                seed: 0,
                intensity: 0.8,
                encoder: kissbooth_media::EncoderChoice::Auto,
                generator: "morph".into(),
                json: false,
            };
            runs.push(render_cmd::render(common, &args, |_, _| Ok(()))?.ms);
        }
        runs.sort_by(|a, b| a.total.total_cmp(&b.total));
        let m = &runs[runs.len() / 2];
        println!(
            "{:<10} {:>9.0} {:>9.0} {:>9.0} {:>9.0} {:>9.0} {:>10.1} {:>9.0}",
            format!("{}x{}", size.0, size.1),
            m.analysis,
            m.plan,
            m.render,
            m.encode,
            m.total,
            f64::from(seconds) * 1000.0 / m.total,
            peak_rss_mib()
        );
    }
    println!(
        "(render and encode run on two threads at once, so their busy times overlap; peak memory is the process high-water mark so far)"
    );
    Ok(ExitCode::SUCCESS)
}

/// The process's peak resident memory in MiB (VmHWM).
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(str::to_owned)
        })
        .and_then(|l| {
            l.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map(|kib| kib / 1024.0)
        .unwrap_or(f64::NAN)
}

fn faces(
    common: &Common,
    mut images: Vec<PathBuf>,
    repeat: usize,
    reference: Option<PathBuf>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let shared = shared_dir();
    if images.is_empty() {
        images.push(fixtures_dir().join("couple_1280x720.jpg"));
    }
    let repeat = repeat.max(1);
    let rt = common.runtime()?;
    let mut analyzer = FaceAnalyzer::open(rt, &common.models_dir(), FaceConfig::default())?;
    let reference = reference.unwrap_or_else(|| shared.join("reference/face_ref.py"));
    let mut all = Vec::new();
    for img in &images {
        let mut runs = Vec::with_capacity(repeat);
        analyzer.analyze_file(img)?; // warm-up
        for _ in 0..repeat {
            let a = analyzer.analyze_file(img)?;
            runs.push(StageMs {
                decode: a.ms.decode,
                detect: a.ms.detect,
                landmarks: a.ms.landmarks + a.ms.quality,
                total: a.ms.total,
            });
        }
        let rust_ms = median(&runs);
        let python_ms = match python_reference(&reference, &common.models_dir(), img, repeat) {
            Ok(p) => Some(p),
            Err(e) => {
                eprintln!("bench: Python reference not run: {e:#}");
                None
            }
        };
        let ratio_total = python_ms.as_ref().map(|p| round2(rust_ms.total / p.total));
        all.push(Figures {
            image: img.display().to_string(),
            rust_ms,
            python_ms,
            ratio_total,
        });
    }
    let startup = startup_ms(common, &images[0])?;
    if json {
        println!(
            "{}",
            serde_json::json!({"faces": all, "startup_ms": startup, "threads": analyzer.landmarks_info.threads})
        );
    } else {
        println!(
            "face analysis, median of {repeat} runs, {} thread(s), provider {}",
            analyzer.landmarks_info.threads, analyzer.landmarks_info.provider
        );
        println!(
            "{:<28} {:>8} {:>8} {:>10} {:>8}",
            "image / implementation", "decode", "detect", "landmarks", "total"
        );
        for f in &all {
            println!("{}", f.image);
            let row = |name: &str, s: &StageMs| {
                println!(
                    "  {name:<26} {:>8.2} {:>8.2} {:>10.2} {:>8.2}",
                    s.decode, s.detect, s.landmarks, s.total
                )
            };
            row("kissbooth (Rust)", &f.rust_ms);
            if let Some(p) = &f.python_ms {
                row("reference (Python)", p);
            }
            if let Some(r) = f.ratio_total {
                println!("  ratio Rust/Python total: {r:.2} ({:.1}x faster)", 1.0 / r);
            }
        }
        println!("start-up to first result (process spawn → exit, one image): {startup:.0} ms");
    }
    Ok(ExitCode::SUCCESS)
}

fn shared_dir() -> PathBuf {
    std::env::var_os("KISSBOOTH_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("../shared"))
}

fn median(runs: &[StageMs]) -> StageMs {
    let med = |f: fn(&StageMs) -> f64| {
        let mut v: Vec<f64> = runs.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        round2(v[v.len() / 2])
    };
    StageMs {
        decode: med(|s| s.decode),
        detect: med(|s| s.detect),
        landmarks: med(|s| s.landmarks),
        total: med(|s| s.total),
    }
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

fn python_reference(
    script: &Path,
    models: &Path,
    img: &Path,
    repeat: usize,
) -> anyhow::Result<StageMs> {
    if !script.is_file() {
        bail!("{} not found", script.display());
    }
    let out = Command::new("python3")
        .arg(script)
        .arg("--models")
        .arg(models)
        .arg("--repeat")
        .arg(repeat.to_string())
        .arg(img)
        .output()
        .context("cannot run python3")?;
    if !out.status.success() {
        bail!(
            "reference failed: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        );
    }
    let v: serde_json::Value =
        serde_json::from_slice(out.stdout.split(|&b| b == b'\n').next().unwrap_or_default())
            .context("reference printed no JSON")?;
    let g = |k: &str| v["ms"][k].as_f64().unwrap_or(f64::NAN);
    Ok(StageMs {
        decode: g("decode"),
        detect: g("detect"),
        landmarks: g("landmarks"),
        total: g("total"),
    })
}

/// Spawns `kissbooth faces --json IMAGE` and times it to exit: runtime load, model load, first
/// analysis.
fn startup_ms(common: &Common, img: &Path) -> anyhow::Result<f64> {
    let exe = std::env::current_exe()?;
    let t = Instant::now();
    let out = Command::new(exe)
        .arg("--models")
        .arg(common.models_dir())
        .arg("faces")
        .arg("--json")
        .arg(img)
        .output()?;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    if !out.status.success() {
        bail!(
            "start-up run failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(round2(ms))
}
