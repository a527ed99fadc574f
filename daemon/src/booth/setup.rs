//! What the booth opens at start: the camera's spec, the generator, the self-check's embedder,
//! and the Content Credentials key.

use crate::config::Config;
use crate::store::Store;
use kissbooth_capture::CameraSpec;
use kissbooth_engines::diffusion::DiffusionGenerator;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use kissbooth_engines::face::{FaceAnalyzer, FaceConfig};
use kissbooth_engines::generate::MeanShape;

/// What makes and checks clips: the face analyser (the capture gate and the preview), the mesh
/// and segmentation guides, the self-check's embedder, the mean face shape, the diffusion
/// generator when one is configured and loaded, and the booth's signing key.
pub struct Studio {
    pub analyzer: Mutex<FaceAnalyzer>,
    /// The dense face mesh and person segmentation that guide the morph, when installed.
    pub guides: Mutex<kissbooth_engines::generate::GuideModels>,
    /// The identity embedder of the render's self-check, when installed.
    pub judge: Mutex<Option<kissbooth_engines::quality::ClipJudge>>,
    pub shape: Arc<MeanShape>,
    /// The diffusion generator when `render.generator` is `diffusion` and its pack loaded.
    pub(super) diffusion: Option<Mutex<DiffusionGenerator>>,
    /// The generator clips are made with, and why it is not the configured one.
    pub generator: GeneratorChoice,
    /// The booth's Content Credentials key (`DATA/c2pa`); `None` when it is unusable, and then
    /// clips are published unsigned.
    pub(super) signer: Option<crate::clip::provenance::BoothSigner>,
}

impl Studio {
    /// Loads the face models (required), the guides, embedder and generator (each optional,
    /// said once when absent or unusable), and the signing key.
    pub fn open(
        cfg: &Config,
        models: &std::path::Path,
        runtime: &'static kissbooth_engines::runtime::Runtime,
        store: &Store,
    ) -> anyhow::Result<Studio> {
        let shape = crate::clip::mean_shape(models)?;
        let analyzer = FaceAnalyzer::open(runtime, models, FaceConfig::default())
            .context("cannot load the face models")?;
        let (diffusion, generator) = load_generator(cfg, runtime);
        Ok(Studio {
            analyzer: Mutex::new(analyzer),
            guides: Mutex::new(kissbooth_engines::generate::GuideModels::open(
                runtime, models,
            )),
            judge: Mutex::new(open_judge(runtime, models)),
            shape: Arc::new(shape),
            diffusion,
            generator,
            signer: open_signer(&cfg.data, store),
        })
    }
}

/// The generator in use, as `/api/status` reports it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct GeneratorChoice {
    /// `morph` or `diffusion`.
    pub name: String,
    /// The configured generator.
    pub configured: String,
    /// Why the configured generator is not used.
    pub fallback: Option<String>,
    /// The diffusion pack's memory plan, when it loaded.
    pub memory: Option<kissbooth_engines::diffusion::memory::MemoryPlan>,
}

/// Loads the configured diffusion pack; when it is unusable, says why once (stderr and the
/// log) and chooses morph.
pub(super) fn load_generator(
    cfg: &Config,
    runtime: &'static kissbooth_engines::runtime::Runtime,
) -> (Option<Mutex<DiffusionGenerator>>, GeneratorChoice) {
    let mut choice = GeneratorChoice {
        name: "morph".into(),
        configured: cfg.render.generator.name().into(),
        fallback: None,
        memory: None,
    };
    let crate::config::GeneratorConfig::Diffusion(d) = cfg.render.generator_config() else {
        return (None, choice);
    };
    let result = if d.pack.as_os_str().is_empty() {
        Err("render.pack is not set".to_string())
    } else {
        let options = kissbooth_engines::diffusion::LoadOptions {
            memory_budget_mib: d.memory_budget_mib,
        };
        kissbooth_engines::diffusion::Pack::load_with(&d.pack, runtime, &options)
            .map_err(|e| format!("diffusion pack {} refused: {e}", d.pack.display()))
    };
    match result {
        Ok(pack) => {
            eprintln!(
                "kissbooth: generator: diffusion (pack {} from {})",
                pack.manifest.pack.name,
                d.pack.display()
            );
            choice.name = "diffusion".into();
            choice.memory = Some(pack.memory.clone());
            (Some(Mutex::new(DiffusionGenerator::new(pack))), choice)
        }
        Err(why) => {
            eprintln!("kissbooth: {why}; rendering with the morph generator");
            tracing::warn!(reason = %why, "diffusion generator unusable; rendering with morph");
            choice.fallback = Some(why);
            (None, choice)
        }
    }
}

pub(super) fn camera_spec(cfg: &Config) -> anyhow::Result<CameraSpec> {
    if let crate::config::CameraChoice::Spec(spec) = &cfg.camera {
        return Ok(spec.clone());
    }
    if let Some(dev) = kissbooth_capture::list_v4l2_devices().into_iter().next() {
        return Ok(CameraSpec::v4l2(dev));
    }
    let demo = cfg.data.join("demo");
    if demo.is_dir() {
        return Ok(CameraSpec::stills(demo));
    }
    tracing::warn!(
        "no camera plugged in and no {} folder: showing a test pattern",
        demo.display()
    );
    Ok(CameraSpec::default())
}

/// The booth's Content Credentials key, made at the first start; `None`, said on stderr, in the
/// log and the audit, when it cannot be made or read (clips are then published unsigned).
pub(super) fn open_signer(
    data: &std::path::Path,
    store: &Store,
) -> Option<crate::clip::provenance::BoothSigner> {
    match crate::clip::provenance::BoothSigner::open_or_create(data) {
        Ok((signer, made)) => {
            if made {
                eprintln!(
                    "kissbooth: made this booth's Content Credentials key in {}",
                    crate::clip::provenance::key_dir(data).display()
                );
                store.audit("c2pa_key_made", None, "");
            }
            Some(signer)
        }
        Err(e) => {
            let msg = format!("{e:#}");
            eprintln!("kissbooth: clips will be published without Content Credentials: {msg}");
            tracing::error!(error = %msg, "no usable signing key: clips are published without Content Credentials");
            store.audit("c2pa_unavailable", None, &msg);
            None
        }
    }
}

/// The render's self-check embedder, or `None` (said once in the log) when none is installed.
pub(super) fn open_judge(
    runtime: &kissbooth_engines::runtime::Runtime,
    models: &std::path::Path,
) -> Option<kissbooth_engines::quality::ClipJudge> {
    match kissbooth_engines::quality::ClipJudge::open(runtime, models) {
        Ok(Some(j)) => {
            tracing::info!(embedder = j.name(), "render self-check on");
            Some(j)
        }
        Ok(None) => {
            tracing::warn!("no identity embedder installed: renders are not self-checked");
            None
        }
        Err(e) => {
            tracing::warn!(%e, "identity embedder unusable: renders are not self-checked");
            None
        }
    }
}
