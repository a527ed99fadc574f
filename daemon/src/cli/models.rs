//! `kissbooth models`: install and verify model packs.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::Subcommand;
use kissbooth_engines::diffusion::memory::human_bytes;
use kissbooth_engines::diffusion::pack::{self, LoadOptions};
use kissbooth_engines::diffusion::tensorrt::{self, DeviceIdentity};
use kissbooth_engines::manifest::{self, Manifest, Source};
use kissbooth_engines::runtime::Provider;

use crate::paths::Common;

#[derive(Subcommand)]
pub enum ModelsCommand {
    /// Copy the face pack from a folder (or download it from upstream) into the models folder,
    /// verifying every sha256. Nothing changes unless every required file passes.
    Install {
        /// Folder holding the pack's files; without it, files are downloaded from upstream.
        #[arg(long)]
        from: Option<PathBuf>,
        /// Destination; default: the models folder (--models, $KISSBOOTH_MODELS, or DATA/models).
        #[arg(long)]
        dest: Option<PathBuf>,
        /// A pack manifest (TOML) instead of the built-in face pack.
        #[arg(long)]
        manifest: Option<PathBuf>,
    },
    /// Check the installed files against the manifest; with --pack, check a diffusion pack
    /// (manifest, files, checksums, TensorRT settings) and print its memory plan.
    Verify {
        /// A diffusion model pack folder.
        #[arg(long)]
        pack: Option<PathBuf>,
        /// Memory the pack may use, in MiB (default: MemAvailable, or free GPU memory).
        #[arg(long)]
        memory_budget_mb: Option<u64>,
        /// Print the result as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Run a converted pack's pipeline on its stored reference (a picture, the noise diffusers
    /// drew) and compare the frames with diffusers' own (`scripts/convert-pack --tiny`):
    /// prints the largest absolute difference; exits 1 when it is above the pack's tolerance.
    CheckReference {
        /// The diffusion model pack folder.
        #[arg(long)]
        pack: PathBuf,
        /// Print the result as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Build the TensorRT engines of a diffusion pack on this device: each component's session
    /// with the TensorRT provider and one warm-up inference at the manifest's shapes, so the
    /// first render does not wait for engine building. Refuses (writing nothing) without TensorRT.
    BuildEngines {
        /// The diffusion model pack folder.
        #[arg(long)]
        pack: PathBuf,
    },
    /// Render the attract screen's demo clip (DATA/attract/demo.mp4) from the bundled
    /// photographs of public-domain paintings, checked by sha256: what the booth makes, shown
    /// to passers-by, never a guest's clip. Run once after `models install`.
    Demo {
        /// Folder holding the paintings (Baldassare_Castiglione.jpg, Girl_with_a_Pearl_Earring.jpg).
        #[arg(long)]
        from: PathBuf,
        /// Output size, WxH (the booth's default shape).
        #[arg(long, default_value = "720x720", value_parser = crate::cli::render::parse_size)]
        size: (u32, u32),
        /// Duration in seconds (3 to 8).
        #[arg(long, default_value_t = 5.0)]
        seconds: f32,
    },
}

pub fn run(common: &Common, cmd: ModelsCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ModelsCommand::Install {
            from,
            dest,
            manifest: mpath,
        } => {
            let m = match mpath {
                Some(p) => {
                    let text =
                        std::fs::read_to_string(&p).with_context(|| format!("{}", p.display()))?;
                    Manifest::parse(&text).with_context(|| format!("{}", p.display()))?
                }
                None => Manifest::face_pack(),
            };
            let dest = dest.unwrap_or_else(|| common.models_dir());
            let source = match from {
                Some(d) => Source::Dir(d),
                None => Source::Upstream,
            };
            let report = manifest::install(&m, &source, &dest)
                .context("model install failed; nothing was changed")?;
            for i in &report.installed {
                println!(
                    "installed {} ({} bytes, sha256 {}{})",
                    i.file,
                    i.bytes,
                    &i.sha256[..12],
                    if i.repaired {
                        ", repaired from upstream"
                    } else if i.equivalent {
                        ", a conversion equivalent to the pack's (fingerprint matches)"
                    } else {
                        ""
                    }
                );
            }
            for (f, why) in &report.skipped {
                println!("skipped optional {f}: {why}");
            }
            println!("pack {} installed in {}", m.name, report.dest.display());
            Ok(ExitCode::SUCCESS)
        }
        ModelsCommand::Verify {
            pack: Some(dir),
            memory_budget_mb,
            json,
        } => verify_pack(common, &dir, memory_budget_mb, json),
        ModelsCommand::BuildEngines { pack } => build_engines(common, &pack),
        ModelsCommand::CheckReference { pack, json } => check_reference(common, &pack, json),
        ModelsCommand::Demo {
            from,
            size,
            seconds,
        } => demo(common, &from, size, seconds),
        ModelsCommand::Verify { pack: None, .. } => {
            let m = Manifest::face_pack();
            let dir = common.models_dir();
            let mut bad = 0;
            for f in &m.files {
                match manifest::check_installed(f, &dir) {
                    Ok(()) => println!("ok       {}", f.file),
                    Err(e) if f.optional => println!("optional {}: {e}", f.file),
                    Err(e) => {
                        bad += 1;
                        println!("BAD      {}: {e}", f.file);
                    }
                }
            }
            if bad > 0 {
                anyhow::bail!(
                    "{bad} model file(s) in {} missing or altered",
                    dir.display()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `models demo`: the attract screen's clip, from the bundled paintings only.
fn demo(common: &Common, from: &Path, size: (u32, u32), seconds: f32) -> anyhow::Result<ExitCode> {
    let inputs = crate::clip::attract::paintings_in(from)?;
    let output = crate::clip::attract::clip_path(&common.data);
    if let Some(dir) = output.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    // Played on the kiosk only, never a guest's clip: it carries no credentials (`sign` stays
    // false), so making it at install time makes no signing key.
    let args = crate::cli::render::RenderArgs {
        seconds,
        fps: 24,
        size,
        ..crate::cli::render::RenderArgs::new(inputs, output.clone())
    };
    let r = crate::cli::render::render(common, &args, |_, _| Ok(()))
        .context("the demo clip could not be rendered")?;
    println!(
        "wrote the attract screen's demo clip {} ({}x{}, {:.1} s, {} bytes) from {} and {}",
        r.output.display(),
        size.0,
        size.1,
        r.duration_s,
        r.bytes,
        crate::clip::attract::PAINTINGS[0].title,
        crate::clip::attract::PAINTINGS[1].title
    );
    Ok(ExitCode::SUCCESS)
}

/// `models verify --pack`: the pack's checks and memory plan, without loading it.
fn verify_pack(
    common: &Common,
    dir: &Path,
    memory_budget_mb: Option<u64>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let options = LoadOptions {
        memory_budget_mib: memory_budget_mb,
    };
    let rt = common.runtime()?;
    let gpu = [Provider::Tensorrt, Provider::Cuda]
        .iter()
        .any(|p| rt.config().providers.contains(p) && rt.provider_available(*p).is_ok());
    let (manifest, plan) = pack::check(dir, &options, gpu)
        .with_context(|| format!("diffusion pack {}", dir.display()))?;
    let fits = plan.check();
    if json {
        println!(
            "{}",
            serde_json::json!({
                "pack": dir,
                "name": manifest.pack.name,
                "memory": plan,
                "real_size": manifest.real_size,
                "ok": fits.is_ok(),
                "error": fits.as_ref().err().map(|e| e.to_string()),
            })
        );
    } else {
        println!(
            "pack {} ({}): manifest, files and checksums ok",
            manifest.pack.name,
            dir.display()
        );
        println!(
            "memory: {} available ({}); need = weights + {} x input/output bytes",
            human_bytes(plan.budget.bytes),
            plan.budget.source,
            plan.activation_factor
        );
        for c in &plan.components {
            println!(
                "  {:<17} {:>12} (weights {}, activations {}) {}",
                c.component,
                human_bytes(c.total_bytes),
                human_bytes(c.weights_bytes),
                human_bytes(c.activation_bytes),
                if c.fits { "fits" } else { "DOES NOT FIT" }
            );
        }
        if let Some(r) = &manifest.real_size {
            print_real_size(r);
        }
    }
    fits?;
    Ok(ExitCode::SUCCESS)
}

/// `models check-reference --pack DIR`.
fn check_reference(common: &Common, dir: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let rt = common.runtime()?;
    let pack = kissbooth_engines::diffusion::Pack::load(dir, rt)
        .with_context(|| format!("diffusion pack {}", dir.display()))?;
    let mut generator = kissbooth_engines::diffusion::DiffusionGenerator::new(pack);
    let c = generator
        .check_reference()
        .with_context(|| format!("diffusion pack {}", dir.display()))?;
    if json {
        println!(
            "{}",
            serde_json::json!({ "pack": dir, "comparison": c, "ok": c.passed() })
        );
    } else {
        println!(
            "pack {} ({}): largest absolute difference from diffusers {:.3e} (frame {}; mean {:.3e} over {} values, {} steps); tolerance {:.0e}: {}",
            c.pack,
            dir.display(),
            c.max_abs_diff,
            c.worst_frame,
            c.mean_abs_diff,
            c.values,
            c.steps,
            c.tolerance,
            if c.passed() {
                "ok"
            } else {
                "ABOVE THE TOLERANCE"
            }
        );
    }
    Ok(if c.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The architecture's real-size figures against the Jetson modules, as `verify` prints them.
fn print_real_size(r: &kissbooth_engines::diffusion::memory::RealSize) {
    let gib = |b: u64| format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64);
    println!(
        "real size: {}: {:.2} G parameters ({}), FP16 weights {}",
        r.model,
        r.parameters_total() as f64 / 1e9,
        r.parameters
            .iter()
            .map(|(k, v)| format!("{k} {:.1} M", *v as f64 / 1e6))
            .collect::<Vec<_>>()
            .join(", "),
        gib(r.fp16_bytes())
    );
    if let Some(note) = &r.note {
        println!("  ({note})");
    }
    let acts: Vec<String> = r
        .activations
        .iter()
        .map(|(k, a)| {
            format!(
                "{} s denoiser {} decoder {}",
                k.trim_start_matches('s'),
                gib(a.denoiser_bytes),
                gib(a.decoder_bytes)
            )
        })
        .collect();
    println!(
        "  activations at {0}x{0} (FP16, two largest tensors): {1}",
        r.resolution,
        acts.join(" | ")
    );
    let fits = r.device_fits();
    for (device, _) in kissbooth_engines::diffusion::memory::JETSONS {
        let row: Vec<_> = fits.iter().filter(|f| f.device == device).collect();
        let usable = row.first().map_or(0, |f| f.usable_bytes);
        let cells: Vec<String> = row
            .iter()
            .map(|f| {
                let verdict = if f.fits { "fits" } else { "NO" };
                format!(
                    "{} s ({} frames) {} {verdict}",
                    f.seconds,
                    f.video_frames,
                    gib(f.need_bytes)
                )
            })
            .collect();
        println!(
            "  {device:<15} ({} for the pack) at {}x{}: {}",
            gib(usable),
            r.resolution,
            r.resolution,
            cells.join(" | ")
        );
    }
}

/// `models build-engines --pack DIR`.
fn build_engines(common: &Common, dir: &Path) -> anyhow::Result<ExitCode> {
    let rt = common.runtime()?;
    // Nothing is written before TensorRT is known to be there.
    if let Err(why) = rt.provider_available(Provider::Tensorrt) {
        anyhow::bail!(
            "cannot build TensorRT engines: the TensorRT provider is not available: {why}"
        );
    }
    let (manifest, plan) = pack::check(dir, &LoadOptions::default(), true)
        .with_context(|| format!("diffusion pack {}", dir.display()))?;
    plan.check()?;
    let device = DeviceIdentity::probe();
    println!(
        "building TensorRT engines for {} ({}) in {}",
        device.gpu,
        device.cache_key(),
        dir.join(&manifest.tensorrt.cache_dir)
            .join(device.cache_key())
            .display()
    );
    for (name, comp) in manifest.components.iter() {
        let opts = tensorrt::options_for(&manifest, dir, comp, &device)?;
        let cache = opts.engine_cache.clone().or(opts.timing_cache.clone());
        let before = cache.as_deref().map(list_files).unwrap_or_default();
        let t0 = Instant::now();
        tensorrt::build_engine(rt, &manifest, &dir.join(&comp.file), comp, &opts)
            .map_err(|e| anyhow::anyhow!("component `{name}`: {e}"))?;
        let secs = t0.elapsed().as_secs_f64();
        let after = cache.as_deref().map(list_files).unwrap_or_default();
        let new: Vec<String> = after
            .iter()
            .filter(|(f, meta)| before.iter().all(|(g, m)| g != f || m != meta))
            .map(|(f, (len, _))| format!("{f} ({len} bytes)"))
            .collect();
        println!(
            "{name}: {secs:.1} s; cache files written: {}",
            if new.is_empty() {
                "none (the cache was current)".to_string()
            } else {
                new.join(", ")
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// File names in a folder with their size and modification time.
fn list_files(dir: &Path) -> Vec<(String, (u64, Option<std::time::SystemTime>))> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<_> = rd
        .flatten()
        .filter_map(|e| {
            let m = e.metadata().ok()?;
            m.is_file().then(|| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    (m.len(), m.modified().ok()),
                )
            })
        })
        .collect();
    v.sort();
    v
}
