//! The clip pipeline shared by `kissbooth render` and the daemon: plan the kiss, render frames
//! on a worker thread, encode them as they come, then write the poster. Exit paths leave either
//! a complete video and poster or nothing.

pub mod attract;
pub mod draw;
pub mod provenance;
pub mod title;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Instant;

use anyhow::{Context, anyhow, bail};
use kissbooth_engines::Landmarks;
use kissbooth_engines::generate::{MeanShape, MorphGenerator, MorphGuides, MorphInputs};
use kissbooth_engines::quality::{ClipJudge, ClipScore, PersonScore, Reference};
use kissbooth_media::{VideoMetadata, VideoSpec, write_poster};

use crate::config::ClipSettings;

pub fn poster_path(out: &Path) -> PathBuf {
    out.with_extension("jpg")
}

/// What a finished render produced, and where its time went.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RenderReport {
    pub output: PathBuf,
    pub poster: PathBuf,
    pub frames: u64,
    pub bytes: u64,
    pub duration_s: f64,
    pub encoder: String,
    pub contact_frame: usize,
    /// Distance between the two warped mouth centres at the contact frame, in canvas pixels.
    pub contact_mouth_distance_px: f32,
    /// At the contact frame, the gap between the two mouths' lip contours in inter-ocular
    /// distances (0: the lips touch).
    pub contact_lip_gap_iod: f32,
    /// The faces' landmarks on the canvas at frame 0 (the input, placed).
    pub canvas_faces: [kissbooth_engines::Landmarks; 2],
    /// The generator that made the clip.
    pub generator: String,
    /// Where the morph warp ran: "cpu" or "cuda" (none for diffusion).
    pub warp: Option<String>,
    /// Why the requested generator was not used, when it was not.
    pub fallback: Option<String>,
    /// The diffusion pack's memory plan, when it rendered.
    pub memory: Option<kissbooth_engines::diffusion::memory::MemoryPlan>,
    /// The identity self-check (each person against their capture), when an embedder is
    /// installed.
    pub self_check: Option<SelfCheckReport>,
    /// Whether the clip carries Content Credentials signed with the booth's key.
    pub signed: bool,
    pub ms: StageMs,
}

impl RenderReport {
    /// The report of a finished clip, before its self-check and signature: no mouth figures
    /// (NaN), no warp path, no fallback, no memory plan.
    fn new(
        video: kissbooth_media::EncodedVideo,
        poster: PathBuf,
        encoder: String,
        generator: &str,
        contact_frame: usize,
        canvas_faces: [Landmarks; 2],
        ms: StageMs,
    ) -> RenderReport {
        RenderReport {
            output: video.path,
            poster,
            frames: video.frames,
            bytes: video.bytes,
            duration_s: video.duration_s,
            encoder,
            contact_frame,
            contact_mouth_distance_px: f32::NAN,
            contact_lip_gap_iod: f32::NAN,
            canvas_faces,
            generator: generator.into(),
            warp: None,
            fallback: None,
            memory: None,
            self_check: None,
            signed: false,
            ms,
        }
    }
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct StageMs {
    pub analysis: f64,
    pub plan: f64,
    /// Busy time of the render thread.
    pub render: f64,
    /// Busy time of the encoder (push and finish), on the calling thread.
    pub encode: f64,
    /// Adding the Content Credentials (sign, read back, rename), after the encode.
    pub sign: f64,
    pub total: f64,
}

/// The identity self-check of a render: the embedder and each person's reference from the
/// capture.
pub struct SelfCheck<'a> {
    pub judge: &'a mut ClipJudge,
    pub refs: [Reference; 2],
}

impl SelfCheck<'_> {
    /// The score of a rendered clip from its judged frames (index, picture, faces).
    fn score(
        &mut self,
        judged: &[(usize, image::RgbImage, [Landmarks; 2])],
        settings: &ClipSettings,
    ) -> Result<ClipScore, kissbooth_engines::face::FaceError> {
        let fps = settings.timeline.fps.max(1) as f32;
        let frames = judged
            .iter()
            .map(|(i, frame, faces)| {
                self.judge
                    .judge(&self.refs, frame, faces, *i, *i as f32 / fps)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ClipScore::of(
            self.judge.name(),
            self.judge.threshold(),
            frames,
            settings.timeline.seconds,
        ))
    }
}

/// Removes a clip and its poster (a render not kept).
fn remove_clip(video: &Path) {
    let _ = std::fs::remove_file(video);
    let _ = std::fs::remove_file(poster_path(video));
}

/// Both people must be recognised in at least this share of the judged frames (and in every
/// judged frame of the first and last half second), or the clip is rendered again, gentler.
pub const KEEP_SHARE: f32 = 0.9;
/// The gentler render's intensity, as a share of the configured one: a smaller turn and tilt,
/// eyes closing less, a shorter hold (see `TimelineConfig::intensity`).
const GENTLER: f32 = 0.35;
/// About this many frames are judged per clip, plus the first and last frames and those half a
/// second in from each end.
const JUDGED_FRAMES: usize = 8;

/// What the self-check found, per attempt.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SelfCheckReport {
    pub embedder: &'static str,
    pub threshold: f32,
    /// One entry per render: the first, and the gentler one when the first lost someone.
    pub attempts: Vec<Attempt>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Attempt {
    pub intensity: f32,
    pub people: [PersonScore; 2],
    pub kept: bool,
    pub ms: f64,
    /// Whether this attempt is the clip that was kept.
    pub used: bool,
}

/// The lower of the two people's recognised shares, an attempt's weak point.
fn worst_share(a: &Attempt) -> f32 {
    a.people[0]
        .recognised_share
        .min(a.people[1].recognised_share)
}

/// Renders and encodes one clip to `output` (and its poster beside it), each person cut out and
/// their face turned along `guides` (the dense mesh and person mask; empty guides fall back to
/// the mean shape and drawn masks). `on_frame(done, total)` is called after each encoded frame;
/// setting `cancel` stops the render and leaves nothing.
///
/// With a `check`, frames are judged against the capture once the clip is encoded; a clip in
/// which a person is lost is rendered again, once, with a gentler turn, before anyone sees it
/// (the kept clip is whichever kept both people best).
#[allow(clippy::too_many_arguments)]
pub fn render_clip(
    settings: &ClipSettings,
    shape: &MeanShape,
    inputs: MorphInputs,
    guides: &MorphGuides,
    output: &Path,
    on_frame: &mut dyn FnMut(usize, usize) -> anyhow::Result<()>,
    cancel: &AtomicBool,
    check: Option<SelfCheck>,
) -> anyhow::Result<RenderReport> {
    let t0 = Instant::now();
    let Some(mut check) = check else {
        let (report, _) = render_once(
            settings, shape, inputs, guides, output, on_frame, cancel, false,
        )?;
        return Ok(report);
    };
    let (mut report, attempts) = render_checked(
        settings, shape, inputs, guides, output, on_frame, cancel, &mut check,
    )?;
    report.self_check = Some(SelfCheckReport {
        embedder: check.judge.name(),
        threshold: check.judge.threshold(),
        attempts,
    });
    report.ms.total = ms(t0);
    Ok(report)
}

/// The first render, judged; when it lost someone, a gentler one beside it, which replaces it
/// only when it keeps both people better. Returns the kept clip's report and the attempts
/// judged (none when the check could not run).
#[allow(clippy::too_many_arguments)]
fn render_checked(
    settings: &ClipSettings,
    shape: &MeanShape,
    inputs: MorphInputs,
    guides: &MorphGuides,
    output: &Path,
    on_frame: &mut dyn FnMut(usize, usize) -> anyhow::Result<()>,
    cancel: &AtomicBool,
    check: &mut SelfCheck,
) -> anyhow::Result<(RenderReport, Vec<Attempt>)> {
    let (report, judged) = render_once(
        settings,
        shape,
        inputs.clone(),
        guides,
        output,
        on_frame,
        cancel,
        true,
    )?;
    let Some(mut first) = judge_attempt(check, &judged, settings, 0) else {
        return Ok((report, Vec::new()));
    };
    if first.kept {
        return Ok((report, vec![first]));
    }
    let mut gentler = settings.clone();
    gentler.timeline.intensity *= GENTLER;
    let retry_path = output.with_extension("retry.mp4");
    let rendered = render_once(
        &gentler,
        shape,
        inputs,
        guides,
        &retry_path,
        on_frame,
        cancel,
        true,
    );
    let (retry, judged) = match rendered {
        Ok(done) => done,
        // The gentler render failed: the first clip stands (a cancel still cancels).
        Err(why) if !cancel.load(Ordering::Relaxed) => {
            tracing::warn!(%why, "the gentler render failed: keeping the first clip");
            remove_clip(&retry_path);
            return Ok((report, vec![first]));
        }
        Err(why) => return Err(why),
    };
    let Some(this) = judge_attempt(check, &judged, &gentler, 1) else {
        remove_clip(&retry_path);
        return Ok((report, vec![first]));
    };
    if worst_share(&this) > worst_share(&first) {
        // The gentler clip is better: it takes the first one's place.
        std::fs::rename(&retry_path, output)
            .context("cannot replace the clip with its gentler render")?;
        std::fs::rename(poster_path(&retry_path), poster_path(output))
            .context("cannot replace the poster with the gentler render's")?;
        first.used = false;
        let report = RenderReport {
            output: output.to_path_buf(),
            poster: poster_path(output),
            ..retry
        };
        return Ok((report, vec![first, this]));
    }
    remove_clip(&retry_path);
    let this = Attempt {
        used: false,
        ..this
    };
    Ok((report, vec![first, this]))
}

/// Judges an attempt's frames against the captures; `None` when the check cannot run, which
/// never costs the couple their clip.
fn judge_attempt(
    check: &mut SelfCheck,
    judged: &[(usize, image::RgbImage, [Landmarks; 2])],
    settings: &ClipSettings,
    attempt: usize,
) -> Option<Attempt> {
    let t = Instant::now();
    let score = match check.score(judged, settings) {
        Ok(score) => score,
        Err(why) => {
            tracing::warn!(%why, "render self-check failed: publishing the clip unchecked");
            return None;
        }
    };
    let kept = score.both_kept(KEEP_SHARE);
    tracing::info!(
        attempt,
        intensity = settings.timeline.intensity,
        kept,
        recognised_0 = score.people[0].recognised_share,
        recognised_1 = score.people[1].recognised_share,
        min_similarity_0 = score.people[0].min_similarity,
        min_similarity_1 = score.people[1].min_similarity,
        "render self-check"
    );
    Some(Attempt {
        intensity: settings.timeline.intensity,
        people: score.people,
        kept,
        ms: ms(t),
        used: true,
    })
}

/// Whether frame `i` of `total` is judged by the self-check: every [`JUDGED_FRAMES`]th, and
/// the first and last half second's edges.
fn judged_frame(i: usize, total: usize, fps: u32) -> bool {
    let half_second = (fps as usize / 2).max(1);
    let step = (total / JUDGED_FRAMES).max(1);
    i.is_multiple_of(step) || i + 1 == total || i == half_second || i + 1 + half_second == total
}

/// A rendered frame: its index, picture, mouth distance and lip gap, and both faces' landmarks.
type Rendered = (usize, image::RgbImage, (f32, f32), [Landmarks; 2]);

/// Renders every frame on a worker thread into a queue of 4 (which bounds memory); the thread
/// returns its busy milliseconds, and stops when the queue's receiver goes.
fn spawn_frames(
    mut generator: MorphGenerator,
    canvas_faces: [Landmarks; 2],
) -> (
    mpsc::Receiver<Rendered>,
    std::thread::JoinHandle<anyhow::Result<f64>>,
) {
    let total = generator.frame_count();
    let (tx, rx) = mpsc::sync_channel::<Rendered>(4);
    let worker = std::thread::spawn(move || -> anyhow::Result<f64> {
        let mut busy = 0.0;
        for i in 0..total {
            let t = Instant::now();
            let frame = generator.render(i)?;
            let info = generator.last_info();
            let mouth = info
                .map(|f| (f.mouth_distance(), f.lip_gap() / f.inter_ocular().max(1e-3)))
                .unwrap_or((f32::NAN, f32::NAN));
            let faces = info.map(|f| f.landmarks).unwrap_or(canvas_faces);
            busy += ms(t);
            if tx.send((i, frame, mouth, faces)).is_err() {
                break;
            }
        }
        Ok(busy)
    });
    (rx, worker)
}

/// One render and encode; with `judge`, also the frames to judge (about [`JUDGED_FRAMES`],
/// the ends included) with each face's landmarks as drawn.
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
fn render_once(
    settings: &ClipSettings,
    shape: &MeanShape,
    inputs: MorphInputs,
    guides: &MorphGuides,
    output: &Path,
    on_frame: &mut dyn FnMut(usize, usize) -> anyhow::Result<()>,
    cancel: &AtomicBool,
    judge: bool,
) -> anyhow::Result<(RenderReport, Vec<(usize, image::RgbImage, [Landmarks; 2])>)> {
    let t0 = Instant::now();
    let t_plan = Instant::now();
    let generator = MorphGenerator::plan_with(
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
    let judged = |i: usize| judge && judged_frame(i, total, settings.timeline.fps);

    let mut sink = FrameSink::start(settings, output, on_frame, total, contact)?;
    // Render on a worker thread; encode here. A queue of 4 frames bounds memory.
    let (rx, worker) = spawn_frames(generator, canvas_faces);
    let mut contact_mouth = (f32::NAN, f32::NAN);
    let mut samples = Vec::new();
    for (i, frame, mouth, faces) in rx.iter() {
        if cancel.load(Ordering::Relaxed) {
            // Dropping the encoder removes its temporary file; the worker stops on a closed queue.
            bail!("render cancelled");
        }
        if judged(i) {
            samples.push((i, frame.clone(), faces));
        }
        if i == contact {
            contact_mouth = mouth;
        }
        sink.push(i, frame)?;
    }
    let render_ms = worker
        .join()
        .map_err(|_| anyhow!("the render thread stopped unexpectedly"))??;
    let clip = sink.finish(output, settings)?;
    let report = RenderReport {
        contact_mouth_distance_px: contact_mouth.0,
        contact_lip_gap_iod: contact_mouth.1,
        warp: Some(warp.into()),
        ..clip.report(
            "morph",
            contact,
            canvas_faces,
            StageMs {
                plan: plan_ms,
                render: render_ms,
                total: ms(t0),
                ..StageMs::default()
            },
        )
    };
    Ok((report, samples))
}

/// Where a clip's frames go as they are made: the encoder, then the progress callback; the
/// contact frame is kept for the poster.
struct FrameSink<'a> {
    encoder: kissbooth_media::Encoder,
    encoder_name: String,
    on_frame: &'a mut dyn FnMut(usize, usize) -> anyhow::Result<()>,
    total: usize,
    contact: usize,
    poster: Option<image::RgbImage>,
    /// Busy time of the encoder so far.
    encode_ms: f64,
}

impl<'a> FrameSink<'a> {
    /// Starts the encoder of a clip of `total` frames whose contact frame is `contact`.
    fn start(
        settings: &ClipSettings,
        output: &Path,
        on_frame: &'a mut dyn FnMut(usize, usize) -> anyhow::Result<()>,
        total: usize,
        contact: usize,
    ) -> anyhow::Result<Self> {
        let encoder = start_encoder(settings, output)?;
        Ok(FrameSink {
            encoder_name: encoder.encoder_name().to_string(),
            encoder,
            on_frame,
            total,
            contact,
            poster: None,
            encode_ms: 0.0,
        })
    }

    /// Encodes frame `i` and reports it done.
    fn push(&mut self, i: usize, frame: image::RgbImage) -> anyhow::Result<()> {
        let t = Instant::now();
        self.encoder
            .push(&frame)
            .with_context(|| format!("encoding frame {i}"))?;
        self.encode_ms += ms(t);
        if i == self.contact {
            self.poster = Some(frame);
        }
        (self.on_frame)(i + 1, self.total)
    }

    /// Finishes the video and writes the poster (see [`finish_clip`]).
    fn finish(self, output: &Path, settings: &ClipSettings) -> anyhow::Result<FinishedClip> {
        let t = Instant::now();
        let (video, poster) = finish_clip(self.encoder, self.poster, output, settings)?;
        Ok(FinishedClip {
            video,
            poster,
            encoder_name: self.encoder_name,
            encode_ms: self.encode_ms + ms(t),
        })
    }
}

/// A finished video and its poster, with the encoder's name and busy time.
struct FinishedClip {
    video: kissbooth_media::EncodedVideo,
    poster: PathBuf,
    encoder_name: String,
    encode_ms: f64,
}

impl FinishedClip {
    /// The clip's report (see [`RenderReport::new`]), `ms` completed with the encode time.
    fn report(
        self,
        generator: &str,
        contact_frame: usize,
        canvas_faces: [Landmarks; 2],
        ms: StageMs,
    ) -> RenderReport {
        RenderReport::new(
            self.video,
            self.poster,
            self.encoder_name,
            generator,
            contact_frame,
            canvas_faces,
            StageMs {
                encode: self.encode_ms,
                ..ms
            },
        )
    }
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
    let mut encoder = settings.encoder.build(&spec, output, &meta)?;
    encoder.set_overlay(settings.overlay.clone());
    if let Some(t) = &settings.title {
        encoder.add_overlay(t.clone());
    }
    Ok(encoder)
}

/// Finishes the video, then writes the poster beside it; a poster that cannot be written takes
/// the video with it, so a finished render is always both files.
fn finish_clip(
    encoder: kissbooth_media::Encoder,
    poster: Option<image::RgbImage>,
    output: &Path,
    settings: &ClipSettings,
) -> anyhow::Result<(kissbooth_media::EncodedVideo, std::path::PathBuf)> {
    let mut poster = poster.ok_or_else(|| anyhow!("no contact frame was made"))?;
    for layer in settings.overlay.iter().chain(settings.title.iter()) {
        layer.apply(&mut poster);
    }
    let video = encoder.finish()?;
    let poster_file = poster_path(output);
    if let Err(e) = write_poster(&poster, &poster_file, 90) {
        let _ = std::fs::remove_file(&video.path);
        return Err(e).context("cannot write the poster; the video was removed");
    }
    Ok((video, poster_file))
}

/// Adds the booth's Content Credentials to a finished clip (in place, atomically), recording the
/// time it took in `report`.
pub fn sign_clip(
    signer: &crate::clip::provenance::BoothSigner,
    report: &mut RenderReport,
) -> anyhow::Result<()> {
    let t = Instant::now();
    report.bytes = signer.sign_in_place(&report.output)?;
    report.signed = true;
    report.ms.sign = ms(t);
    report.ms.total += report.ms.sign;
    Ok(())
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
    let request = diffusion_request(settings, capture, &targets, faces, None);
    let plan = (t0, ms(t0), timeline.contact_frame());
    encode_diffusion(
        settings, generator, &request, plan, output, on_frame, cancel,
    )
}

/// Refine mode: the morph clip is rendered first (it carries the motion, the identities and
/// who is where) and the pack re-draws it video-to-video at `strength`; the clip's first frame
/// is the pack's image conditioning and its drawn landmarks the targets.
#[allow(clippy::too_many_arguments)]
pub fn refine_diffusion_clip(
    settings: &ClipSettings,
    shape: &MeanShape,
    generator: &mut kissbooth_engines::diffusion::DiffusionGenerator,
    inputs: MorphInputs,
    guides: &MorphGuides,
    strength: f32,
    output: &Path,
    on_frame: &mut dyn FnMut(usize, usize) -> anyhow::Result<()>,
    cancel: &AtomicBool,
) -> anyhow::Result<RenderReport> {
    use kissbooth_engines::diffusion::Refine;
    let t0 = Instant::now();
    let mut morph = MorphGenerator::plan_with(
        settings.morph.clone(),
        &settings.timeline,
        shape,
        inputs,
        guides,
    )?;
    let contact = morph.timeline().contact_frame();
    let mut frames = Vec::with_capacity(morph.frame_count());
    let mut targets = Vec::with_capacity(morph.frame_count());
    for i in 0..morph.frame_count() {
        if cancel.load(Ordering::Relaxed) {
            bail!("render cancelled");
        }
        frames.push(morph.render(i)?);
        targets.push(
            morph
                .last_info()
                .map_or(morph.canvas_faces(), |f| f.landmarks),
        );
    }
    let faces = targets[0];
    let refine = Some(Refine {
        frames: &frames,
        strength,
    });
    let request = diffusion_request(settings, &frames[0], &targets, &faces, refine);
    let plan = (t0, ms(t0), contact);
    encode_diffusion(
        settings, generator, &request, plan, output, on_frame, cancel,
    )
}

fn diffusion_request<'a>(
    settings: &ClipSettings,
    capture: &'a image::RgbImage,
    targets: &'a [[Landmarks; 2]],
    faces: &'a [Landmarks; 2],
    refine: Option<kissbooth_engines::diffusion::Refine<'a>>,
) -> kissbooth_engines::diffusion::DiffusionRequest<'a> {
    kissbooth_engines::diffusion::DiffusionRequest {
        capture,
        targets,
        faces: Some(faces),
        width: settings.morph.width,
        height: settings.morph.height,
        seed: settings.timeline.seed,
        steps: None,
        refine,
    }
}

/// Generates the request's frames and encodes them as they come; `plan` is when the render
/// began, the planning milliseconds and the contact frame (the poster).
fn encode_diffusion(
    settings: &ClipSettings,
    generator: &mut kissbooth_engines::diffusion::DiffusionGenerator,
    request: &kissbooth_engines::diffusion::DiffusionRequest,
    (t0, plan_ms, contact): (Instant, f64, usize),
    output: &Path,
    on_frame: &mut dyn FnMut(usize, usize) -> anyhow::Result<()>,
    cancel: &AtomicBool,
) -> anyhow::Result<RenderReport> {
    let mut sink = FrameSink::start(settings, output, on_frame, request.targets.len(), contact)?;
    // After a failure the frames still handed over are dropped; the first failure is the render's.
    let mut failure: Option<anyhow::Error> = None;
    let t_gen = Instant::now();
    let stats = generator.generate(request, &mut |_| {}, cancel, &mut |i, frame| {
        if failure.is_none()
            && let Err(e) = sink.push(i, frame)
        {
            failure = Some(e);
        }
    })?;
    if let Some(e) = failure {
        return Err(e);
    }
    let render_ms = ms(t_gen) - sink.encode_ms;
    let clip = sink.finish(output, settings)?;
    tracing::info!(steps = stats.steps.len(), "diffusion clip rendered");
    let faces = *request.faces.unwrap_or(&request.targets[0]);
    Ok(RenderReport {
        memory: Some(generator.pack().memory.clone()),
        ..clip.report(
            "diffusion",
            contact,
            faces,
            StageMs {
                plan: plan_ms,
                render: render_ms,
                total: ms(t0),
                ..StageMs::default()
            },
        )
    })
}
