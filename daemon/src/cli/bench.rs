//! `kissbooth bench`: speed figures, as ratios against the Python reference where one exists.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Subcommand;
use kissbooth_engines::face::identity::IdentityModel;
use kissbooth_engines::face::mesh::MeshModel;
use kissbooth_engines::face::segment::Segmenter;
use kissbooth_engines::face::{FaceAnalyzer, FaceConfig, FaceError};
use serde::Serialize;

use crate::paths::Common;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Face analysis per image (decode → verdict) against `reference/face_ref.py`, the face
    /// pack v2 stages (mesh and identity per face, segmentation per frame) against
    /// `scripts/face_ref_v2.py`, and the start-up time to the first result.
    Faces {
        /// Images (default: the couple fixture in $KISSBOOTH_FIXTURES or ../shared/fixtures/faces).
        images: Vec<PathBuf>,
        /// Runs per image; figures are medians.
        #[arg(long, default_value_t = 20)]
        repeat: usize,
        /// The Python reference script (default: ../shared/reference/face_ref.py).
        #[arg(long)]
        reference: Option<PathBuf>,
        /// The Python reference of the face pack v2 stages (default: scripts/face_ref_v2.py).
        #[arg(long)]
        reference_v2: Option<PathBuf>,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// End-to-end render (analysis, plan, morph, encode, Content Credentials) of a 5 s clip at
    /// 512x512, 720x720 (the booth's) and 1280x720, with where the time goes and the peak
    /// memory.
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
    /// The diffusion generator on a pack: time per denoising step, the share of it spent outside
    /// the ONNX Runtime calls (tensor set-up, guidance, scheduler, noise), and the other stages.
    Diffusion {
        /// The pack folder (e.g. one written by scripts/make-tiny-pack).
        #[arg(long)]
        pack: PathBuf,
        /// Denoising steps per generation.
        #[arg(long, default_value_t = 8)]
        steps: usize,
        /// Generations measured (after one warm-up); step figures are medians over all steps.
        #[arg(long, default_value_t = 20)]
        repeat: usize,
        /// Output frames per generation (48 = 2 s at 24 fps).
        #[arg(long, default_value_t = 48)]
        frames: usize,
    },
    /// How well the kiss keeps each person: identity similarity to the capture per frame, detail
    /// kept, lip gap at contact, background flicker, render time, and a contact sheet per case.
    Quality {
        /// Cases: one couple frame, or two portraits joined with a comma (default: the couple
        /// fixture and two portrait pairs, each also mirrored).
        cases: Vec<String>,
        /// Output size, WxH.
        #[arg(long, default_value = "720x1280", value_parser = crate::cli::render::parse_size)]
        size: (u32, u32),
        #[arg(long, default_value_t = 5.0)]
        seconds: f32,
        #[arg(long, default_value_t = 24)]
        fps: u32,
        /// Judge every Nth frame (and the last).
        #[arg(long, default_value_t = 2)]
        every: usize,
        /// The kiss's intensity (0 to 1; the booth's default 0.8, its gentler retry 0.28).
        #[arg(long, default_value_t = 0.8)]
        intensity: f32,
        /// Folder for the contact sheets.
        #[arg(long, default_value = "quality")]
        out: PathBuf,
        /// Also judge each case mirrored (when cases are given).
        #[arg(long)]
        mirrored: bool,
        /// One JSON object per case instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// The booth end to end on loopback: tap "capture" to QR on screen, preview frame rate and
    /// CPU while idle, and a render while 20 phones download the same clip over and over at
    /// Wi-Fi speed.
    Booth {
        /// A couple frame for the stills camera (default: the couple fixture).
        image: Option<PathBuf>,
        /// Phones downloading at once during the loaded render.
        #[arg(long, default_value_t = 20)]
        phones: usize,
        /// Each phone's download speed, Mbit/s (a small receive window and paced reads, as a
        /// phone on the booth's Wi-Fi); 0: as fast as loopback allows, each phone once a second.
        #[arg(long, default_value_t = 20.0)]
        rate_mbit: f64,
    },
}

#[derive(Serialize, Default)]
struct Figures {
    image: String,
    rust_ms: StageMs,
    python_ms: Option<StageMs>,
    ratio_total: Option<f64>,
    /// The face pack v2 stages, when installed.
    #[serde(skip_serializing_if = "Option::is_none")]
    v2: Option<V2Figures>,
}

/// Milliseconds of the face pack v2 stages: mesh and identity per face, segmentation per
/// frame (model, upsampling and edge refinement); `None` where the model is not installed.
#[derive(Serialize, Default, Clone)]
struct V2Ms {
    mesh: Option<f64>,
    segment: Option<f64>,
    identity: Option<f64>,
}

#[derive(Serialize, Default)]
struct V2Figures {
    rust_ms: V2Ms,
    python_ms: Option<V2Ms>,
    /// Rust / Python per stage.
    ratio: V2Ms,
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
            reference_v2,
            json,
        } => faces(common, images, repeat, reference, reference_v2, json),
        BenchCommand::Render {
            image,
            seconds,
            fps,
            repeat,
        } => render(common, image, seconds, fps, repeat),
        BenchCommand::Booth {
            image,
            phones,
            rate_mbit,
        } => booth(common, image, phones, rate_mbit),
        BenchCommand::Quality {
            cases,
            size,
            seconds,
            fps,
            every,
            intensity,
            out,
            mirrored,
            json,
        } => {
            let cases = if cases.is_empty() {
                crate::cli::bench_quality::default_cases(&fixtures_dir())
            } else {
                cases
                    .iter()
                    .flat_map(|c| {
                        let images: Vec<PathBuf> = c.split(',').map(PathBuf::from).collect();
                        let flips: &[bool] = if mirrored { &[false, true] } else { &[false] };
                        flips.iter().map(move |&m| crate::cli::bench_quality::Case {
                            name: format!(
                                "{}{}",
                                images
                                    .iter()
                                    .filter_map(|p| p.file_stem())
                                    .map(|s| s.to_string_lossy().into_owned())
                                    .collect::<Vec<_>>()
                                    .join("+"),
                                if m { "-mirrored" } else { "" }
                            ),
                            images: images.clone(),
                            mirrored: m,
                        })
                    })
                    .collect()
            };
            let timeline = kissbooth_engines::generate::TimelineConfig {
                seconds,
                fps,
                intensity,
                ..Default::default()
            };
            crate::cli::bench_quality::run(common, cases, size, &timeline, every, &out, json)
        }
        BenchCommand::Diffusion {
            pack,
            steps,
            repeat,
            frames,
        } => diffusion(common, &pack, steps, repeat, frames),
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
    use crate::cli::render::{self, RenderArgs};
    let image = image.unwrap_or_else(|| fixtures_dir().join("couple_1280x720.jpg"));
    let dir = tempfile::tempdir()?;
    // Signed as the booth signs, with a key of the benchmark's own.
    let (signer, _) = crate::clip::provenance::BoothSigner::open_or_create(dir.path())?;
    println!(
        "render end to end: {seconds} s at {fps} fps, median of {} run(s)",
        repeat.max(1)
    );
    println!(
        "{:<10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10} {:>9}",
        "size", "analysis", "plan", "render", "encode", "sign", "total", "x realtime", "peak MiB"
    );
    for size in [(512, 512), (720, 720), (1280, 720)] {
        let mut runs = Vec::new();
        let mut warp = None;
        for _ in 0..repeat.max(1) {
            let args = RenderArgs {
                seconds,
                fps,
                size,
                ..RenderArgs::new(vec![image.clone()], dir.path().join("bench.mp4"))
            };
            let mut report = render::render(common, &args, |_, _| Ok(()))?;
            crate::clip::sign_clip(&signer, &mut report)?;
            warp = report.warp;
            runs.push(report.ms);
        }
        runs.sort_by(|a, b| a.total.total_cmp(&b.total));
        let m = &runs[runs.len() / 2];
        println!(
            "{:<10} {:>9.0} {:>9.0} {:>9.0} {:>9.0} {:>9.0} {:>9.0} {:>10.1} {:>9.0}",
            format!("{}x{}", size.0, size.1),
            m.analysis,
            m.plan,
            m.render,
            m.encode,
            m.sign,
            m.total,
            f64::from(seconds) * 1000.0 / m.total,
            peak_rss_mib()
        );
        println!(
            "{:<10} warp on the {}",
            "",
            warp.as_deref().unwrap_or("cpu")
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
    reference_v2: Option<PathBuf>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let shared = shared_dir();
    if images.is_empty() {
        images.push(fixtures_dir().join("couple_1280x720.jpg"));
    }
    let repeat = repeat.max(1);
    let rt = common.runtime()?;
    let mut analyzer = FaceAnalyzer::open(rt, &common.models_dir(), FaceConfig::default())?;
    let mut v2 = V2Stages::open(rt, &common.models_dir())?;
    let references = References {
        v1: reference.unwrap_or_else(|| shared.join("reference/face_ref.py")),
        v2: reference_v2.unwrap_or_else(default_reference_v2),
        models: common.models_dir(),
    };
    let mut all = Vec::new();
    for img in &images {
        all.push(image_figures(
            &mut analyzer,
            &mut v2,
            &references,
            img,
            repeat,
        )?);
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
            print_figures(f);
        }
        if let Some(name) = v2.identity_name() {
            println!("identity embedder: {name}");
        }
        println!("start-up to first result (process spawn → exit, one image): {startup:.0} ms");
    }
    Ok(ExitCode::SUCCESS)
}

/// The Python reference scripts of `bench faces`, and the models they load.
struct References {
    v1: PathBuf,
    v2: PathBuf,
    models: PathBuf,
}

/// One image's figures: the Rust stages over `repeat` runs (after a warm-up), the Python
/// reference's where it runs, and the face pack v2 stages where installed.
fn image_figures(
    analyzer: &mut FaceAnalyzer,
    v2: &mut V2Stages,
    references: &References,
    img: &Path,
    repeat: usize,
) -> anyhow::Result<Figures> {
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
    let python_ms = match python_reference(&references.v1, &references.models, img, repeat) {
        Ok(p) => Some(p),
        Err(e) => {
            eprintln!("bench: Python reference not run: {e:#}");
            None
        }
    };
    let ratio_total = python_ms.as_ref().map(|p| round2(rust_ms.total / p.total));
    let v2_figures = if v2.any() {
        let rust = v2.time(analyzer, img, repeat)?;
        let python = match python_reference_v2(&references.v2, &references.models, img, repeat) {
            Ok(p) => Some(p),
            Err(e) => {
                eprintln!("bench: Python reference of face pack v2 not run: {e:#}");
                None
            }
        };
        Some(V2Figures::new(rust, python))
    } else {
        None
    };
    Ok(Figures {
        image: img.display().to_string(),
        rust_ms,
        python_ms,
        ratio_total,
        v2: v2_figures,
    })
}

/// One image's rows of the `bench faces` table.
fn print_figures(f: &Figures) {
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
    if let Some(v) = &f.v2 {
        let cell = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{v:.2}"));
        println!(
            "  {:<26} {:>10} {:>10} {:>10}",
            "face pack v2", "mesh/face", "segment", "identity/face"
        );
        let row = |name: &str, s: &V2Ms| {
            println!(
                "  {name:<26} {:>10} {:>10} {:>10}",
                cell(s.mesh),
                cell(s.segment),
                cell(s.identity)
            )
        };
        row("kissbooth (Rust)", &v.rust_ms);
        if let Some(p) = &v.python_ms {
            row("reference (Python)", p);
            row("ratio Rust/Python", &v.ratio);
        }
    }
}

impl V2Figures {
    /// The Rust and Python figures, and their ratio per stage where both are known.
    fn new(rust: V2Ms, python: Option<V2Ms>) -> Self {
        let ratio = |r: Option<f64>, p: Option<f64>| match (r, p) {
            (Some(r), Some(p)) if p > 0.0 => Some(round2(r / p)),
            _ => None,
        };
        let p = python.clone().unwrap_or_default();
        V2Figures {
            ratio: V2Ms {
                mesh: ratio(rust.mesh, p.mesh),
                segment: ratio(rust.segment, p.segment),
                identity: ratio(rust.identity, p.identity),
            },
            rust_ms: rust,
            python_ms: python,
        }
    }
}

/// The face pack v2 models that are installed, for timing.
struct V2Stages {
    mesh: Option<MeshModel>,
    segmenter: Option<Segmenter>,
    identity: Option<IdentityModel>,
}

impl V2Stages {
    fn open(rt: &kissbooth_engines::runtime::Runtime, models: &Path) -> anyhow::Result<Self> {
        fn installed<T>(r: Result<T, FaceError>) -> Result<Option<T>, FaceError> {
            match r {
                Err(FaceError::MissingModel { .. }) => Ok(None),
                other => other.map(Some),
            }
        }
        let v2 = V2Stages {
            mesh: installed(MeshModel::open(rt, models))?,
            segmenter: installed(Segmenter::open(rt, models))?,
            identity: IdentityModel::open(rt, models)?,
        };
        if !v2.any() {
            eprintln!(
                "bench: face pack v2 is not installed in {}: its stages are not timed",
                models.display()
            );
        }
        Ok(v2)
    }

    fn any(&self) -> bool {
        self.mesh.is_some() || self.segmenter.is_some() || self.identity.is_some()
    }

    fn identity_name(&self) -> Option<&'static str> {
        self.identity.as_ref().map(|m| m.name())
    }

    /// Median milliseconds over `repeat` runs (after a warm-up): mesh and identity per face
    /// (one face at a time, as the reference does), segmentation per frame.
    fn time(
        &mut self,
        analyzer: &mut FaceAnalyzer,
        img: &Path,
        repeat: usize,
    ) -> anyhow::Result<V2Ms> {
        let (image, a) = analyzer.load_and_analyze(img)?;
        let n = a.faces.len().max(1) as f64;
        let mut runs: [Vec<f64>; 3] = Default::default();
        for k in 0..=repeat {
            let mut t = Instant::now();
            if let Some(m) = &mut self.mesh {
                for f in &a.faces {
                    m.run(&image, f)?;
                }
                runs[0].push(t.elapsed().as_secs_f64() * 1e3 / n);
            }
            t = Instant::now();
            if let Some(s) = &mut self.segmenter {
                s.run(&image)?;
                runs[1].push(t.elapsed().as_secs_f64() * 1e3);
            }
            t = Instant::now();
            if let Some(id) = &mut self.identity {
                for f in &a.faces {
                    id.embed(&image, &f.landmarks)?;
                }
                runs[2].push(t.elapsed().as_secs_f64() * 1e3 / n);
            }
            if k == 0 {
                runs.iter_mut().for_each(Vec::clear); // warm-up
            }
        }
        let med = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v.get(v.len() / 2).map(|m| round2(*m))
        };
        let [mesh, segment, identity] = &mut runs;
        Ok(V2Ms {
            mesh: med(mesh),
            segment: med(segment),
            identity: med(identity),
        })
    }
}

/// `scripts/face_ref_v2.py` of the checkout the binary was built from, or of the current
/// folder.
fn default_reference_v2() -> PathBuf {
    let here = PathBuf::from("scripts/face_ref_v2.py");
    if here.is_file() {
        return here;
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/face_ref_v2.py")
}

fn python_reference_v2(
    script: &Path,
    models: &Path,
    img: &Path,
    repeat: usize,
) -> anyhow::Result<V2Ms> {
    let shared = shared_dir();
    let v = run_reference(
        script,
        &[models.as_os_str(), "--shared".as_ref(), shared.as_os_str()],
        img,
        repeat,
    )?;
    let g = |k: &str| v["ms"][k].as_f64();
    Ok(V2Ms {
        mesh: g("mesh"),
        segment: g("segment"),
        identity: g("identity"),
    })
}

/// Runs a Python reference script as `python3 SCRIPT --models MODELS... --repeat N IMAGE` and
/// returns the JSON object it prints for the image.
fn run_reference(
    script: &Path,
    models_and_args: &[&std::ffi::OsStr],
    img: &Path,
    repeat: usize,
) -> anyhow::Result<serde_json::Value> {
    if !script.is_file() {
        bail!("{} not found", script.display());
    }
    let out = Command::new("python3")
        .arg(script)
        .arg("--models")
        .args(models_and_args)
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
    serde_json::from_slice(out.stdout.split(|&b| b == b'\n').next().unwrap_or_default())
        .context("reference printed no JSON")
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
    let v = run_reference(script, &[models.as_os_str()], img, repeat)?;
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

fn cpu_seconds() -> f64 {
    // utime + stime of this process, in clock ticks (fields 14 and 15 of /proc/self/stat)
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let field = |i: usize| {
        f.get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    (field(11) + field(12)) / ticks
}

/// One phone on the booth's Wi-Fi: downloads `path` from `addr` at about `rate` bytes a second
/// (a 64 KiB receive window, reads paced to the rate, so the server's writes wait as they do
/// for a real phone), again as soon as it has the whole clip, until `stop`.
fn shaped_phone(
    addr: std::net::SocketAddr,
    path: &str,
    rate: f64,
    stop: &std::sync::atomic::AtomicBool,
    bytes: &std::sync::atomic::AtomicU64,
    downloads: &std::sync::atomic::AtomicU64,
) {
    use std::io::{Read, Write};
    use std::sync::atomic::Ordering;
    let t0 = Instant::now();
    let mut total = 0u64;
    let mut buf = vec![0u8; 16 << 10];
    while !stop.load(Ordering::Relaxed) && t0.elapsed().as_secs() < 300 {
        let Ok(socket) = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
        else {
            return;
        };
        let _ = socket.set_recv_buffer_size(64 << 10);
        if socket.connect(&addr.into()).is_err() {
            std::thread::sleep(std::time::Duration::from_millis(200));
            continue;
        }
        let mut stream: std::net::TcpStream = socket.into();
        let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(10)));
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        if stream.write_all(request.as_bytes()).is_err() {
            continue;
        }
        loop {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            match stream.read(&mut buf) {
                Ok(0) => {
                    downloads.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Ok(n) => {
                    total += n as u64;
                    bytes.fetch_add(n as u64, Ordering::Relaxed);
                    let due = total as f64 / rate;
                    let now = t0.elapsed().as_secs_f64();
                    if due > now {
                        std::thread::sleep(std::time::Duration::from_secs_f64(due - now));
                    }
                }
                Err(_) => break,
            }
        }
    }
}

fn booth(
    common: &Common,
    image: Option<PathBuf>,
    phones: usize,
    rate_mbit: f64,
) -> anyhow::Result<ExitCode> {
    let image = image.unwrap_or_else(|| fixtures_dir().join("couple_1280x720.jpg"));
    let data = tempfile::tempdir()?;
    let LoopbackBooth {
        booth,
        cfg,
        server: _server,
    } = LoopbackBooth::start(common, &image, data.path())?;
    let client = BoothClient::new(cfg.public_url.clone());
    std::thread::sleep(std::time::Duration::from_secs(2));

    // Idle on the attract screen: nobody watches the preview.
    let cpu0 = cpu_seconds();
    std::thread::sleep(std::time::Duration::from_secs(5));
    let attract_cpu = (cpu_seconds() - cpu0) / 5.0 * 100.0;
    let preview = client.watch_preview()?;

    let (alone, url) = client.session("first")?;
    let (alone2, _) = client.session("second")?;
    let alone = alone.min(alone2);

    // Loaded: phones download the first clip while the next one renders.
    let load = PhoneLoad::start(&client, cfg.listen, &url, phones, rate_mbit);
    let t_load = Instant::now();
    let loaded = client.session("loaded");
    let load_s = t_load.elapsed().as_secs_f64();
    let (downloads, bytes) = load.stop();
    let (loaded, _) = loaded?;
    booth.shutdown.trigger();
    println!(
        "booth on loopback, stills camera, {}x{} {} s clips",
        booth.cfg.render.width, booth.cfg.render.height, booth.cfg.render.seconds
    );
    println!("  idle on the attract screen: booth CPU {attract_cpu:.0}% of one core");
    println!(
        "  live preview with the gate: {:.1} frames/s (the stills camera's rate), CPU {:.0}% of one core (this bench's reader included)",
        preview.frames as f64 / preview.seconds,
        preview.cpu
    );
    println!("  tap capture -> QR on screen: {alone:.2} s (best of two)");
    let speed = if rate_mbit > 0.0 {
        format!("at {rate_mbit} Mbit/s each")
    } else {
        "unshaped".to_string()
    };
    println!(
        "  with {phones} phones downloading {speed} ({downloads} whole downloads, {:.0} MiB, {:.0} Mbit/s in all): {loaded:.2} s, slowdown {:+.0}%",
        bytes as f64 / 1048576.0,
        bytes as f64 * 8.0 / 1e6 / load_s.max(1e-3),
        (loaded / alone - 1.0) * 100.0
    );
    Ok(ExitCode::SUCCESS)
}

/// A booth with a stills camera, served on a free loopback port.
struct LoopbackBooth {
    booth: std::sync::Arc<crate::booth::Booth>,
    cfg: crate::config::Config,
    /// The runtime the HTTP server runs on; dropping it stops the server.
    server: tokio::runtime::Runtime,
}

impl LoopbackBooth {
    /// Starts the booth with `image` (copied under `data`) as the stills camera's only frame.
    fn start(common: &Common, image: &Path, data: &Path) -> anyhow::Result<Self> {
        let stills = data.join("stills");
        std::fs::create_dir_all(&stills)?;
        std::fs::copy(image, stills.join("couple.jpg"))?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let cfg = crate::config::Config {
            listen: format!("127.0.0.1:{port}").parse()?,
            camera: crate::config::CameraChoice::Spec(kissbooth_capture::CameraSpec::stills(
                stills.clone(),
            )),
            data: data.to_path_buf(),
            public_url: format!("http://127.0.0.1:{port}"),
            ..Default::default()
        };
        let booth =
            crate::booth::Booth::start(cfg.clone(), common.models_dir(), common.runtime()?)?;
        let server = crate::cli::serve::server_runtime()?;
        let app = crate::http::router(booth.clone());
        let net = booth.net.clone();
        let (listen, server_cfg) = (cfg.listen, cfg.server.clone());
        server.spawn(async move {
            if let Ok(l) = tokio::net::TcpListener::bind(listen).await {
                crate::http::connections::serve(l, app, &server_cfg, net, std::future::pending())
                    .await;
            }
        });
        Ok(LoopbackBooth { booth, cfg, server })
    }
}

/// A kiosk's and a guest's requests to the loopback booth.
#[derive(Clone)]
struct BoothClient {
    agent: ureq::Agent,
    base: String,
}

/// The live preview as a kiosk sees it: frames in `seconds`, and the CPU spent meanwhile.
struct PreviewFigures {
    frames: usize,
    seconds: f64,
    /// Percent of one core.
    cpu: f64,
}

impl BoothClient {
    fn new(base: String) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        BoothClient { agent, base }
    }

    fn post(&self, path: &str) -> anyhow::Result<serde_json::Value> {
        let mut r = self
            .agent
            .post(&format!("{}{path}", self.base))
            .send_empty()?;
        Ok(serde_json::from_str(&r.body_mut().read_to_string()?)?)
    }

    fn get(&self, path: &str) -> anyhow::Result<serde_json::Value> {
        let mut r = self.agent.get(&format!("{}{path}", self.base)).call()?;
        Ok(serde_json::from_str(&r.body_mut().read_to_string()?)?)
    }

    /// Posing: reads the MJPEG preview for five seconds, counting its frames.
    fn watch_preview(&self) -> anyhow::Result<PreviewFigures> {
        use std::io::Read;
        let cpu0 = cpu_seconds();
        let t = Instant::now();
        let mut frames = 0;
        {
            let mut r = self
                .agent
                .get(&format!("{}/api/preview.mjpg", self.base))
                .call()?;
            let mut reader = r.body_mut().as_reader();
            let mut buf = vec![0u8; 1 << 16];
            let mut seen = Vec::new();
            while t.elapsed().as_secs_f64() < 5.0 {
                let n = reader.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                seen.extend_from_slice(&buf[..n]);
                while let Some(pos) = seen.windows(7).position(|w| w == b"--frame") {
                    frames += 1;
                    seen.drain(..pos + 7);
                }
            }
        }
        let seconds = t.elapsed().as_secs_f64();
        let cpu = (cpu_seconds() - cpu0) / seconds * 100.0;
        Ok(PreviewFigures {
            frames,
            seconds,
            cpu,
        })
    }

    /// One guest from consent to the QR code: the seconds from tapping capture to the clip
    /// being ready, and the clip's download page.
    fn session(&self, label: &str) -> anyhow::Result<(f64, String)> {
        let id = self.post("/api/sessions")?["id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let mut r = self
            .agent
            .post(&format!("{}/api/sessions/{id}/consent", self.base))
            .header("content-type", "application/json")
            .send(r#"{"people": 2, "accepted": true}"#)?;
        anyhow::ensure!(
            r.status() == 200,
            "{label}: consent refused: {}",
            r.body_mut().read_to_string()?
        );
        let t = Instant::now();
        let v = self.post(&format!("/api/sessions/{id}/capture"))?;
        anyhow::ensure!(v["verdict"]["ok"] == true, "{label}: capture refused: {v}");
        self.post(&format!("/api/sessions/{id}/render"))?;
        loop {
            let v = self.get(&format!("/api/sessions/{id}"))?;
            if v["state"] == "done" {
                let _qr = self
                    .agent
                    .get(&format!("{}/api/sessions/{id}/qr.svg", self.base))
                    .call()?;
                return Ok((
                    t.elapsed().as_secs_f64(),
                    v["download_url"].as_str().unwrap_or_default().to_string(),
                ));
            }
            anyhow::ensure!(v["state"] != "failed", "{label}: render failed: {v}");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

/// The flag that stops the phones, and what they have downloaded so far.
#[derive(Clone, Default)]
struct PhoneCounters {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    bytes: std::sync::Arc<std::sync::atomic::AtomicU64>,
    downloads: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// Phones downloading the same clip over and over. Shaped, each at Wi-Fi speed and again as
/// soon as it is done; unshaped, each as fast as loopback allows and again a second after its
/// last download finished (a guest re-opening the page).
struct PhoneLoad {
    counters: PhoneCounters,
    handles: Vec<std::thread::JoinHandle<()>>,
}

impl PhoneLoad {
    /// Starts `phones` phones on the clip of the download page `url`, each at `rate_mbit`
    /// Mbit/s (0: unshaped).
    fn start(
        client: &BoothClient,
        addr: std::net::SocketAddr,
        url: &str,
        phones: usize,
        rate_mbit: f64,
    ) -> Self {
        let counters = PhoneCounters::default();
        let mut handles = Vec::new();
        let path = format!("{}/video.mp4", &url[url.find("/d/").unwrap_or(0)..]);
        let (shaped, unshaped) = if rate_mbit > 0.0 {
            (phones, 0)
        } else {
            (0, phones)
        };
        for _ in 0..shaped {
            let (c, path) = (counters.clone(), path.clone());
            let rate = rate_mbit * 1e6 / 8.0;
            handles.push(std::thread::spawn(move || {
                shaped_phone(addr, &path, rate, &c.stop, &c.bytes, &c.downloads);
            }));
        }
        for _ in 0..unshaped {
            let (c, url, agent) = (
                counters.clone(),
                format!("{url}/video.mp4"),
                client.agent.clone(),
            );
            handles.push(std::thread::spawn(move || unshaped_phone(&agent, &url, &c)));
        }
        PhoneLoad { counters, handles }
    }

    /// Stops the phones and waits for them; returns the whole downloads and the bytes received.
    fn stop(self) -> (u64, u64) {
        use std::sync::atomic::Ordering;
        let c = self.counters;
        c.stop.store(true, Ordering::Relaxed);
        for h in self.handles {
            let _ = h.join();
        }
        (
            c.downloads.load(Ordering::Relaxed),
            c.bytes.load(Ordering::Relaxed),
        )
    }
}

/// A phone on loopback: downloads `url` whole, then again a second later, until `stop` (or
/// two minutes).
fn unshaped_phone(agent: &ureq::Agent, url: &str, c: &PhoneCounters) {
    use std::sync::atomic::Ordering;
    let t = Instant::now();
    while !c.stop.load(Ordering::Relaxed) && t.elapsed().as_secs() < 120 {
        if let Ok(mut r) = agent.get(url).call()
            && let Ok(b) = r.body_mut().with_config().limit(64 << 20).read_to_vec()
        {
            c.bytes.fetch_add(b.len() as u64, Ordering::Relaxed);
            c.downloads.fetch_add(1, Ordering::Relaxed);
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}

fn diffusion(
    common: &Common,
    pack_dir: &Path,
    steps: usize,
    repeat: usize,
    frames: usize,
) -> anyhow::Result<ExitCode> {
    use kissbooth_engines::diffusion::{DiffusionGenerator, DiffusionRequest, Pack};
    use std::sync::atomic::AtomicBool;
    let rt = common.runtime()?;
    let pack = Pack::load(pack_dir, rt)
        .with_context(|| format!("diffusion pack {}", pack_dir.display()))?;
    let provider = pack.sessions.denoiser.1.provider.to_string();
    let m = pack.manifest.clone();
    let mut g = DiffusionGenerator::new(pack);
    // A synthetic capture and two faces drifting together (the figures do not depend on them).
    let capture = image::RgbImage::from_fn(320, 240, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])
    });
    let targets = drifting_faces(frames);
    let req = DiffusionRequest {
        capture: &capture,
        targets: &targets,
        faces: None,
        width: m.latent.width,
        height: m.latent.height,
        seed: 1,
        steps: Some(steps.max(1)),
        refine: None,
    };
    let cancel = AtomicBool::new(false);
    g.generate(&req, &mut |_| {}, &cancel, &mut |_, _| {})?; // warm-up
    let mut t = DiffusionTimes::default();
    for _ in 0..repeat.max(1) {
        t.add(&g.generate(&req, &mut |_| {}, &cancel, &mut |_, _| {})?);
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (mt, mo, mv) = (mean(&t.total), mean(&t.onnx), mean(&t.over));
    let (lh, lw) = m.latent.latent_size();
    println!(
        "diffusion pack {} ({}): {} latent frames x {} channels x {lh}x{lw}, guidance {}, provider {provider}, {} steps x {} runs",
        m.pack.name,
        pack_dir.display(),
        m.latent.frames,
        m.latent.channels,
        m.sampling.guidance_scale,
        steps.max(1),
        repeat.max(1)
    );
    println!(
        "per step: median {:.1} us (onnx {:.1} us, overhead {:.2} us); mean {:.1} us (onnx {:.1} us, overhead {:.2} us = {:.1} % of a step)",
        med(&mut t.total.clone()),
        med(&mut t.onnx.clone()),
        med(&mut t.over.clone()),
        mt,
        mo,
        mv,
        100.0 * mv / mt
    );
    println!(
        "per generation (median): encode {:.2} ms, identity (align + encoder) {:.2} ms, decode {:.2} ms, {} frames to RGB and resize {:.2} ms",
        med(&mut t.enc),
        med(&mut t.ident),
        med(&mut t.dec),
        frames.max(1),
        med(&mut t.post)
    );
    println!(
        "(overhead: everything in a step but the denoiser's Session::run calls: tensor set-up, guidance, scheduler, noise)"
    );
    Ok(ExitCode::SUCCESS)
}

/// Two synthetic faces (rings of 68 landmarks) drifting together over `frames` frames.
fn drifting_faces(frames: usize) -> Vec<[kissbooth_engines::Landmarks; 2]> {
    (0..frames.max(1))
        .map(|i| {
            let t = i as f32 / frames.max(2) as f32;
            let face = |cx: f32| {
                let mut l = [[0.0f32; 2]; 68];
                for (k, p) in l.iter_mut().enumerate() {
                    let a = k as f32 / 68.0 * std::f32::consts::TAU;
                    *p = [cx + 40.0 * a.cos(), 120.0 + 50.0 * a.sin()];
                }
                kissbooth_engines::Landmarks(l)
            };
            [face(90.0 + 40.0 * t), face(230.0 - 40.0 * t)]
        })
        .collect()
}

/// The diffusion generator's times over the measured generations: per step in microseconds
/// (all of it, the ONNX Runtime calls, the rest), per generation stage in milliseconds.
#[derive(Default)]
struct DiffusionTimes {
    total: Vec<f64>,
    onnx: Vec<f64>,
    over: Vec<f64>,
    enc: Vec<f64>,
    ident: Vec<f64>,
    dec: Vec<f64>,
    post: Vec<f64>,
}

impl DiffusionTimes {
    fn add(&mut self, s: &kissbooth_engines::diffusion::GenerationStats) {
        for st in &s.steps {
            self.total.push(st.total.as_secs_f64() * 1e6);
            self.onnx.push(st.onnx.as_secs_f64() * 1e6);
            self.over.push(st.overhead().as_secs_f64() * 1e6);
        }
        self.enc.push(s.encode.as_secs_f64() * 1e3);
        self.ident.push(s.identity.as_secs_f64() * 1e3);
        self.dec.push(s.decode.as_secs_f64() * 1e3);
        self.post.push(s.postprocess.as_secs_f64() * 1e3);
    }
}
