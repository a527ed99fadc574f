//! The clip pipeline shared by `kissbooth render` and the daemon: plan the kiss, render frames
//! on a worker thread, encode them as they come, then write the poster. Exit paths leave either
//! a complete video and poster or nothing.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Instant;

use anyhow::{Context, anyhow, bail};
use kissbooth_engines::generate::{
    MeanShape, MorphConfig, MorphGenerator, MorphGuides, MorphInputs, TimelineConfig,
};
use kissbooth_media::{EncoderConfig, VideoMetadata, VideoSpec, write_poster};

use crate::render_cmd::{RenderReport, StageMs, poster_path};

/// Everything that shapes a clip.
#[derive(Debug, Clone)]
pub struct ClipSettings {
    pub timeline: TimelineConfig,
    pub morph: MorphConfig,
    pub encoder: EncoderConfig,
    /// Creation time written into the MP4 (the capture's time), so a render is reproducible.
    pub created_unix_s: Option<i64>,
}

impl ClipSettings {
    /// Checks every part as the renderer and the encoder will, so that a setting they would
    /// refuse is reported when the configuration is read rather than when a couple waits.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.timeline.validate().context("render timeline")?;
        self.morph.validate().context("render size")?;
        self.encoder.validate().context("encoder")?;
        VideoSpec::new(self.morph.width, self.morph.height, self.timeline.fps)
            .validate()
            .context("video")?;
        Ok(())
    }
}

/// Renders and encodes one clip to `output` (and its poster beside it), each person cut out and
/// their face turned along `guides` (the dense mesh and person mask; empty guides fall back to
/// the mean shape and drawn masks). `on_frame(done, total)` is called after each encoded frame;
/// setting `cancel` stops the render and leaves nothing.
pub fn render_clip(
    settings: &ClipSettings,
    shape: &MeanShape,
    inputs: MorphInputs,
    guides: &MorphGuides,
    output: &Path,
    on_frame: &mut dyn FnMut(usize, usize) -> anyhow::Result<()>,
    cancel: &AtomicBool,
) -> anyhow::Result<RenderReport> {
    let t0 = Instant::now();
    let t_plan = Instant::now();
    let mut generator = MorphGenerator::plan_with(
        settings.morph.clone(),
        &settings.timeline,
        shape,
        inputs,
        guides,
    )?;
    let total = generator.frame_count();
    let warp = generator.warp_path();
    let canvas_faces = generator.canvas_faces();
    let contact = generator.timeline().contact_frame();
    let plan_ms = ms(t_plan);

    let mut encoder = start_encoder(settings, output)?;
    let encoder_name = encoder.encoder_name().to_string();

    // Render on a worker thread; encode here. A queue of 4 frames bounds memory.
    let (tx, rx) = mpsc::sync_channel::<(usize, image::RgbImage, (f32, f32))>(4);
    let worker = std::thread::spawn(move || -> anyhow::Result<f64> {
        let mut busy = 0.0;
        for i in 0..total {
            let t = Instant::now();
            let frame = generator.render(i)?;
            let mouth = generator
                .last_info()
                .map(|f| (f.mouth_distance(), f.lip_gap() / f.inter_ocular().max(1e-3)))
                .unwrap_or((f32::NAN, f32::NAN));
            busy += ms(t);
            if tx.send((i, frame, mouth)).is_err() {
                break;
            }
        }
        Ok(busy)
    });
    let mut encode_ms = 0.0;
    let mut poster = None;
    let mut contact_mouth = (f32::NAN, f32::NAN);
    for (i, frame, mouth) in rx.iter() {
        if cancel.load(Ordering::Relaxed) {
            // Dropping the encoder removes its temporary file; the worker stops on a closed queue.
            bail!("render cancelled");
        }
        let t = Instant::now();
        encoder
            .push(&frame)
            .with_context(|| format!("encoding frame {i}"))?;
        encode_ms += ms(t);
        if i == contact {
            contact_mouth = mouth;
            poster = Some(frame);
        }
        on_frame(i + 1, total)?;
    }
    let render_ms = worker
        .join()
        .map_err(|_| anyhow!("the render thread stopped unexpectedly"))??;
    let t = Instant::now();
    let (video, poster_file) = finish_clip(encoder, poster, output)?;
    encode_ms += ms(t);
    Ok(RenderReport {
        output: video.path,
        poster: poster_file,
        frames: video.frames,
        bytes: video.bytes,
        duration_s: video.duration_s,
        encoder: encoder_name,
        contact_frame: contact,
        contact_mouth_distance_px: contact_mouth.0,
        contact_lip_gap_iod: contact_mouth.1,
        canvas_faces,
        generator: "morph".into(),
        warp: Some(warp.into()),
        fallback: None,
        memory: None,
        ms: StageMs {
            analysis: 0.0,
            plan: plan_ms,
            render: render_ms,
            encode: encode_ms,
            total: ms(t0),
        },
    })
}

/// The encoder for a clip of these settings, writing to `output` (through a temporary file).
fn start_encoder(
    settings: &ClipSettings,
    output: &Path,
) -> anyhow::Result<kissbooth_media::Encoder> {
    let spec = VideoSpec::new(
        settings.morph.width,
        settings.morph.height,
        settings.timeline.fps,
    );
    spec.validate()?;
    let meta = VideoMetadata {
        title: Some("Kissbooth kiss".into()),
        created_unix_s: settings.created_unix_s,
        ..VideoMetadata::default()
    };
    Ok(settings.encoder.build(&spec, output, &meta)?)
}

/// Finishes the video, then writes the poster beside it; a poster that cannot be written takes
/// the video with it, so a finished render is always both files.
fn finish_clip(
    encoder: kissbooth_media::Encoder,
    poster: Option<image::RgbImage>,
    output: &Path,
) -> anyhow::Result<(kissbooth_media::EncodedVideo, std::path::PathBuf)> {
    let poster = poster.ok_or_else(|| anyhow!("no contact frame was made"))?;
    let video = encoder.finish()?;
    let poster_file = poster_path(output);
    if let Err(e) = write_poster(&poster, &poster_file, 90) {
        let _ = std::fs::remove_file(&video.path);
        return Err(e).context("cannot write the poster; the video was removed");
    }
    Ok((video, poster_file))
}

/// The mean 3D face shape of the installed pack (`face3d-68.csv` in the models folder).
pub fn mean_shape(models: &Path) -> anyhow::Result<MeanShape> {
    let path = models.join("face3d-68.csv");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read the mean face shape {}", path.display()))?;
    MeanShape::parse(&text).with_context(|| format!("{}", path.display()))
}

/// Milliseconds since `t`, to a tenth.
pub fn ms(t: Instant) -> f64 {
    (t.elapsed().as_secs_f64() * 1e4).round() / 10.0
}

/// Renders a clip with a diffusion model pack: the morph timeline, planned on the capture,
/// gives each frame's target landmarks (the pack's pose guidance); frames are encoded as the
/// generator hands them over.
#[allow(clippy::too_many_arguments)]
pub fn render_diffusion_clip(
    settings: &ClipSettings,
    shape: &MeanShape,
    generator: &mut kissbooth_engines::diffusion::DiffusionGenerator,
    capture: &image::RgbImage,
    faces: &[kissbooth_engines::Landmarks; 2],
    output: &Path,
    on_frame: &mut dyn FnMut(usize, usize) -> anyhow::Result<()>,
    cancel: &AtomicBool,
) -> anyhow::Result<RenderReport> {
    use kissbooth_engines::diffusion::DiffusionRequest;
    use kissbooth_engines::generate::Timeline;
    let t0 = Instant::now();
    let timeline = Timeline::plan(
        &settings.timeline,
        shape,
        [&faces[0], &faces[1]],
        capture.dimensions(),
    )?;
    let targets: Vec<[kissbooth_engines::Landmarks; 2]> = timeline
        .frames()
        .iter()
        .map(|f| [f.faces[0].landmarks, f.faces[1].landmarks])
        .collect();
    let contact = timeline.contact_frame();
    let plan_ms = ms(t0);
    let (w, h) = (settings.morph.width, settings.morph.height);
    let mut encoder = start_encoder(settings, output)?;
    let encoder_name = encoder.encoder_name().to_string();
    let request = DiffusionRequest {
        capture,
        targets: &targets,
        faces: Some(faces),
        width: w,
        height: h,
        seed: settings.timeline.seed,
        steps: None,
    };
    let total = targets.len();
    let mut poster = None;
    let mut failure: Option<anyhow::Error> = None;
    let mut encode_ms = 0.0;
    let t_gen = Instant::now();
    let stats = generator.generate(&request, &mut |_| {}, cancel, &mut |i, frame| {
        if failure.is_some() {
            return;
        }
        let t = Instant::now();
        if let Err(e) = encoder.push(&frame) {
            failure = Some(anyhow!(e).context(format!("encoding frame {i}")));
            return;
        }
        encode_ms += ms(t);
        if i == contact {
            poster = Some(frame);
        }
        if let Err(e) = on_frame(i + 1, total) {
            failure = Some(e);
        }
    })?;
    if let Some(e) = failure {
        return Err(e);
    }
    let render_ms = ms(t_gen) - encode_ms;
    let t = Instant::now();
    let (video, poster_file) = finish_clip(encoder, poster, output)?;
    encode_ms += ms(t);
    tracing::info!(steps = stats.steps.len(), "diffusion clip rendered");
    Ok(RenderReport {
        output: video.path,
        poster: poster_file,
        frames: video.frames,
        bytes: video.bytes,
        duration_s: video.duration_s,
        encoder: encoder_name,
        contact_frame: contact,
        contact_mouth_distance_px: f32::NAN,
        contact_lip_gap_iod: f32::NAN,
        canvas_faces: *faces,
        generator: "diffusion".into(),
        warp: None,
        fallback: None,
        memory: Some(generator.pack().memory.clone()),
        ms: StageMs {
            analysis: 0.0,
            plan: plan_ms,
            render: render_ms,
            encode: encode_ms,
            total: ms(t0),
        },
    })
}
