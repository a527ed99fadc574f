//! The GStreamer encode pipeline: RGB frames in through `appsrc`, H.264 in MP4 out.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use image::RgbImage;

use crate::config::{AI_GENERATED_KEYWORD, EncoderChoice, EncoderConfig, VideoMetadata, VideoSpec};
use crate::error::{EncodeError, mentions_out_of_space};
use crate::fsio::{OutputTarget, TempFiles};
use crate::overlay::Overlay;

/// H.264 encoder elements in the order `auto` prefers them.
pub const ENCODER_PREFERENCE: [&str; 3] = ["nvv4l2h264enc", "x264enc", "openh264enc"];

/// How long `push` waits for room in the queue before calling the pipeline stalled.
const STALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Frames that may wait in `appsrc` before `push` waits for the encoder.
const QUEUED_FRAMES: u64 = 3;

/// Initialises GStreamer once per process. Later calls return the first call's result.
pub fn init() -> Result<(), EncodeError> {
    static INIT: OnceLock<Result<(), String>> = OnceLock::new();
    INIT.get_or_init(|| gst::init().map_err(|e| e.to_string()))
        .clone()
        .map_err(|reason| EncodeError::Init { reason })
}

/// The H.264 encoders that work here, in preference order (`nvv4l2h264enc`, `x264enc`,
/// `openh264enc`).
///
/// An element counts when it can be created and brought to READY, so a Jetson without NVENC
/// (Orin Nano), whose `nvv4l2h264enc` cannot open its device, does not list it. Probed once per
/// process; empty when GStreamer cannot initialise.
pub fn available_encoders() -> Vec<&'static str> {
    static AVAILABLE: OnceLock<Vec<&'static str>> = OnceLock::new();
    if init().is_err() {
        return Vec::new();
    }
    AVAILABLE
        .get_or_init(|| {
            ENCODER_PREFERENCE
                .into_iter()
                .filter(|name| probe(name))
                .collect()
        })
        .clone()
}

fn probe(name: &str) -> bool {
    let Ok(element) = gst::ElementFactory::make(name).build() else {
        tracing::debug!(element = name, "encoder not installed");
        return false;
    };
    let ok = element.set_state(gst::State::Ready).is_ok();
    let _ = element.set_state(gst::State::Null);
    if !ok {
        tracing::info!(
            element = name,
            "encoder installed but cannot open; skipping it"
        );
    }
    ok
}

/// The element that `choice` means on this machine.
fn resolve(choice: EncoderChoice) -> Result<&'static str, EncodeError> {
    let installed = available_encoders();
    match choice.element() {
        None => installed.first().copied().ok_or(EncodeError::NoEncoder),
        Some(element) if installed.contains(&element) => Ok(element),
        Some(element) => Err(EncodeError::EncoderNotInstalled {
            element: element.to_owned(),
            installed: installed.iter().map(|s| (*s).to_owned()).collect(),
        }),
    }
}

/// The gst-launch description of the pipeline for `element`.
///
/// The file paths are set as properties afterwards (`sink.location`, `mux.faststart-file`), so
/// no path ever needs quoting here.
pub(crate) fn pipeline_description(
    element: &str,
    config: &EncoderConfig,
    spec: &VideoSpec,
) -> String {
    let gop = config.keyframe_interval_frames(spec.fps);
    let kbps = config.bitrate_kbps;
    let bps = u64::from(kbps) * 1000;
    // Forcing 4:2:0 before the encoder: RGB straight into x264enc gives High 4:4:4, which
    // phones and browsers do not play.
    let encode = match element {
        "nvv4l2h264enc" => format!(
            "videoconvert ! video/x-raw,format=RGBA ! nvvidconv ! \
             video/x-raw(memory:NVMM),format=NV12 ! \
             nvv4l2h264enc bitrate={bps} iframeinterval={gop} insert-sps-pps=true"
        ),
        "openh264enc" => format!(
            "videoconvert ! video/x-raw,format=I420 ! \
             openh264enc bitrate={bps} gop-size={gop} rate-control=bitrate"
        ),
        // x264enc, and any other element name given here, which then fails to parse loudly.
        // One encoder thread: with frame or slice threads x264's rate control depends on thread
        // timing, so the same frames gave different files (measured); one thread keeps a render
        // reproducible byte for byte and still encodes 720p faster than the morph renders it.
        other => format!(
            "videoconvert ! video/x-raw,format=I420 ! \
             {other} bitrate={kbps} speed-preset={preset} key-int-max={gop} threads=1 ! \
             video/x-h264,profile=high",
            preset = config.x264_preset
        ),
    };
    format!(
        "appsrc name=src format=time is-live=false do-timestamp=false \
         caps=\"video/x-raw,format=RGB,width={w},height={h},framerate={fps}/1\" ! \
         {encode} ! h264parse ! video/x-h264,stream-format=avc,alignment=au ! \
         mp4mux faststart=true name=mux ! filesink name=sink",
        w = spec.width,
        h = spec.height,
        fps = spec.fps,
    )
}

/// A finished MP4.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedVideo {
    /// Where it is (the `out` given to [`EncoderConfig::build`]).
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// Frames encoded.
    pub frames: u64,
    /// The encoder element used.
    pub encoder: String,
    /// `frames / fps`.
    pub duration_s: f64,
}

/// A running encoder: push frames, then [`Encoder::finish`].
///
/// Dropping it unfinished stops the pipeline and removes its temporary files; nothing is ever
/// left at the output path unless `finish` succeeds.
#[derive(Debug)]
pub struct Encoder {
    pipeline: gst::Pipeline,
    src: gst_app::AppSrc,
    bus: gst::Bus,
    element: &'static str,
    description: String,
    spec: VideoSpec,
    target: OutputTarget,
    temp: PathBuf,
    /// Declared after `pipeline`: removed only once the pipeline has let go (see `Drop`).
    temps: TempFiles,
    /// Composited in order onto every frame (a branding logo, a title), under the AI mark.
    overlays: Vec<std::sync::Arc<Overlay>>,
    /// Whether every frame carries the visible AI mark.
    label: bool,
    frames: u64,
    /// Overrides the drain timeout computed from the frame count.
    finish_timeout: Option<Duration>,
    /// The first error message the pipeline posted; every later call reports it again.
    failed: Option<gst::Message>,
    finished: bool,
    /// Creation time to stamp into the finished file's headers.
    created_unix_s: Option<i64>,
}

/// The pipeline of `description`, writing to `location` with the muxer's `faststart_file`
/// and the tags of `meta`; with its source and bus.
fn launch_pipeline(
    description: &str,
    location: &str,
    faststart_file: &str,
    meta: &VideoMetadata,
) -> Result<(gst::Pipeline, gst_app::AppSrc, gst::Bus), EncodeError> {
    let pipeline_error = |reason: String| EncodeError::Pipeline {
        description: description.to_owned(),
        reason,
    };
    let pipeline = gst::parse::launch(description)
        .map_err(|e| pipeline_error(e.to_string()))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| pipeline_error("the description is not a pipeline".to_owned()))?;
    let named = |name: &str| {
        pipeline
            .by_name(name)
            .ok_or_else(|| pipeline_error(format!("no element named `{name}`")))
    };
    let src = named("src")?
        .downcast::<gst_app::AppSrc>()
        .map_err(|_| pipeline_error("`src` is not an appsrc".to_owned()))?;
    let mux = named("mux")?;
    let sink = named("sink")?;
    sink.set_property("location", location);
    mux.set_property("faststart-file", faststart_file);
    set_tags(&mux, meta).map_err(pipeline_error)?;
    let bus = pipeline
        .bus()
        .ok_or_else(|| pipeline_error("the pipeline has no bus".to_owned()))?;
    Ok((pipeline, src, bus))
}

impl Encoder {
    pub(crate) fn start(
        config: &EncoderConfig,
        spec: &VideoSpec,
        out: &Path,
        meta: &VideoMetadata,
    ) -> Result<Encoder, EncodeError> {
        config.validate()?;
        spec.validate()?;
        init()?;
        let element = resolve(config.encoder)?;
        let target = OutputTarget::check(out)?;
        if out.to_str().is_none() {
            return Err(EncodeError::OutputDir {
                dir: target.dir,
                reason: "the output path is not valid UTF-8 (GStreamer needs UTF-8 paths)"
                    .to_owned(),
            });
        }

        let mut temps = TempFiles::default();
        let temp = target.temp_path("partial");
        target.create_temp(&temp)?;
        temps.track(temp.clone());
        let faststart = target.temp_path("faststart");
        temps.track(faststart.clone());

        let description = pipeline_description(element, config, spec);
        // UTF-8 checked above: the temporaries are the output's name plus ASCII.
        let (pipeline, src, bus) = launch_pipeline(
            &description,
            &temp.to_string_lossy(),
            &faststart.to_string_lossy(),
            meta,
        )?;

        let mut encoder = Encoder {
            pipeline,
            src,
            bus,
            element,
            description,
            spec: *spec,
            target,
            temp,
            temps,
            overlays: Vec::new(),
            label: meta.visible_label,
            frames: 0,
            finish_timeout: None,
            failed: None,
            finished: false,
            created_unix_s: meta.created_unix_s,
        };
        if let Err(e) = encoder.pipeline.set_state(gst::State::Playing) {
            let waited = encoder.wait_for_error(Duration::from_secs(2));
            return Err(waited.unwrap_or_else(|| EncodeError::Pipeline {
                description: encoder.description.clone(),
                reason: e.to_string(),
            }));
        }
        tracing::info!(
            encoder = element,
            out = %out.display(),
            width = spec.width,
            height = spec.height,
            fps = spec.fps,
            pipeline = %encoder.description,
            "encoding started"
        );
        Ok(encoder)
    }

    /// The encoder element in use (`x264enc`, ...).
    pub fn encoder_name(&self) -> &str {
        self.element
    }

    /// The gst-launch description the pipeline was built from (without file paths).
    pub fn pipeline_description(&self) -> &str {
        &self.description
    }

    /// The frame size and rate this encoder takes.
    pub fn spec(&self) -> VideoSpec {
        self.spec
    }

    /// Frames pushed so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Composites `overlay` onto every frame pushed from now on (instead of any before).
    pub fn set_overlay(&mut self, overlay: Option<impl Into<std::sync::Arc<Overlay>>>) {
        self.overlays = overlay.map(Into::into).into_iter().collect();
    }

    /// Composites `overlay` onto every frame pushed from now on, over those set before.
    pub fn add_overlay(&mut self, overlay: impl Into<std::sync::Arc<Overlay>>) {
        self.overlays.push(overlay.into());
    }

    /// Sets how long [`Encoder::finish`] waits for the pipeline to drain. By default 10 s plus
    /// 0.2 s per frame per megapixel, generous for x264 on a Jetson's CPU.
    pub fn set_finish_timeout(&mut self, timeout: Duration) {
        self.finish_timeout = Some(timeout);
    }

    /// Pushes one tightly packed RGB24 frame (`width * height * 3` bytes, rows top to bottom).
    /// Its timestamp is `n / fps` for the n-th frame. Waits while the encoder is behind.
    pub fn push_rgb(&mut self, rgb: &[u8]) -> Result<(), EncodeError> {
        let expected = self.spec.rgb_frame_len();
        if rgb.len() != expected {
            return Err(EncodeError::FrameLength {
                expected,
                actual: rgb.len(),
                width: self.spec.width,
                height: self.spec.height,
            });
        }
        if self.overlays.is_empty() && !self.label {
            return self.push_packed(rgb);
        }
        let mut frame = RgbImage::from_raw(self.spec.width, self.spec.height, rgb.to_vec()).ok_or(
            EncodeError::FrameLength {
                expected,
                actual: rgb.len(),
                width: self.spec.width,
                height: self.spec.height,
            },
        )?;
        for overlay in &self.overlays {
            overlay.apply(&mut frame);
        }
        if self.label {
            crate::label::stamp_ai_label(&mut frame);
        }
        self.push_packed(frame.as_raw())
    }

    /// Pushes one frame; it must be exactly the encoder's size.
    pub fn push(&mut self, frame: &RgbImage) -> Result<(), EncodeError> {
        if frame.dimensions() != (self.spec.width, self.spec.height) {
            return Err(EncodeError::FrameSize {
                width: self.spec.width,
                height: self.spec.height,
                actual_width: frame.width(),
                actual_height: frame.height(),
            });
        }
        let len = self.spec.rgb_frame_len();
        let raw = frame.as_raw().get(..len).ok_or(EncodeError::FrameLength {
            expected: len,
            actual: frame.as_raw().len(),
            width: self.spec.width,
            height: self.spec.height,
        })?;
        self.push_rgb(raw)
    }

    /// Sends end-of-stream, waits for the pipeline to drain it, then fsyncs the file and renames
    /// it to the output. On error nothing is left at the output.
    pub fn finish(mut self) -> Result<EncodedVideo, EncodeError> {
        if self.frames == 0 {
            return Err(EncodeError::NoFrames);
        }
        self.check_bus()?;
        let started = Instant::now();
        if let Err(flow) = self.src.end_of_stream() {
            return Err(self.flow_error(flow));
        }
        let timeout = self.finish_timeout();
        loop {
            let left = timeout.saturating_sub(started.elapsed());
            let msg = if left.is_zero() {
                None
            } else {
                self.bus.timed_pop_filtered(
                    clock_time(left),
                    &[
                        gst::MessageType::Eos,
                        gst::MessageType::Error,
                        gst::MessageType::Warning,
                    ],
                )
            };
            let Some(msg) = msg else {
                return Err(EncodeError::Timeout {
                    waited: timeout,
                    frames: self.frames,
                });
            };
            match msg.view() {
                gst::MessageView::Eos(_) => break,
                gst::MessageView::Error(_) => return Err(self.fail(msg)),
                gst::MessageView::Warning(w) => log_warning(w),
                _ => {}
            }
        }
        self.pipeline
            .set_state(gst::State::Null)
            .map_err(|e| EncodeError::Pipeline {
                description: self.description.clone(),
                reason: format!("stopping after end-of-stream: {e}"),
            })?;
        if let Some(secs) = self.created_unix_s {
            // mp4mux stamps the wall clock into the headers; a fixed time makes the same frames
            // give the same file.
            crate::mp4time::set_creation_time(&self.temp, secs)
                .map_err(|e| EncodeError::io("stamp creation time", &self.temp, e))?;
        }
        let bytes = self.target.commit(&self.temp)?;
        let temp = self.temp.clone();
        self.temps.release(&temp);
        self.finished = true;

        let video = EncodedVideo {
            path: self.target.out.clone(),
            bytes,
            frames: self.frames,
            encoder: self.element.to_owned(),
            duration_s: self.frames as f64 / f64::from(self.spec.fps),
        };
        tracing::info!(
            out = %video.path.display(),
            bytes = video.bytes,
            frames = video.frames,
            encoder = self.element,
            drain_ms = started.elapsed().as_millis() as u64,
            "encoding finished"
        );
        Ok(video)
    }

    /// Time allowed to drain after end-of-stream: 10 s plus 0.2 s per frame per megapixel,
    /// unless set.
    fn finish_timeout(&self) -> Duration {
        if let Some(timeout) = self.finish_timeout {
            return timeout;
        }
        let megapixels = f64::from(self.spec.width) * f64::from(self.spec.height) / 1e6;
        Duration::from_secs(10) + Duration::from_secs_f64(self.frames as f64 * megapixels * 0.2)
    }

    fn push_packed(&mut self, rgb: &[u8]) -> Result<(), EncodeError> {
        self.check_bus()?;
        self.wait_for_room()?;

        let n = u128::from(self.frames);
        let fps = u128::from(self.spec.fps);
        let ns = |i: u128| u64::try_from(i * 1_000_000_000 / fps).unwrap_or(u64::MAX);
        let (pts, next) = (ns(n), ns(n + 1));

        let mut buffer = gst::Buffer::from_mut_slice(self.padded(rgb));
        {
            let buffer = buffer.make_mut();
            buffer.set_pts(gst::ClockTime::from_nseconds(pts));
            buffer.set_duration(gst::ClockTime::from_nseconds(next.saturating_sub(pts)));
        }
        match self.src.push_buffer(buffer) {
            Ok(_) => {
                self.frames += 1;
                Ok(())
            }
            Err(flow) => Err(self.flow_error(flow)),
        }
    }

    /// GStreamer's RGB rows start on 4-byte boundaries; pad rows when `width * 3` is not a
    /// multiple of 4.
    fn padded(&self, rgb: &[u8]) -> Vec<u8> {
        let row = self.spec.width as usize * 3;
        let stride = row.next_multiple_of(4);
        if stride == row {
            return rgb.to_vec();
        }
        let mut out = vec![0u8; stride * self.spec.height as usize];
        for (dst, src) in out.chunks_exact_mut(stride).zip(rgb.chunks_exact(row)) {
            dst[..row].copy_from_slice(src);
        }
        out
    }

    /// Waits while `appsrc` holds more than a few frames, watching the bus for errors.
    fn wait_for_room(&mut self) -> Result<(), EncodeError> {
        let limit = QUEUED_FRAMES * self.spec.rgb_frame_len() as u64;
        let started = Instant::now();
        while self.src.current_level_bytes() >= limit {
            if let Some(msg) = self
                .bus
                .timed_pop_filtered(gst::ClockTime::from_mseconds(5), &[gst::MessageType::Error])
            {
                return Err(self.fail(msg));
            }
            if started.elapsed() > STALL_TIMEOUT {
                return Err(EncodeError::Timeout {
                    waited: STALL_TIMEOUT,
                    frames: self.frames,
                });
            }
        }
        Ok(())
    }

    /// Returns the pipeline's error, if it has posted one; logs warnings.
    fn check_bus(&mut self) -> Result<(), EncodeError> {
        if let Some(msg) = &self.failed {
            return Err(self.error_from(msg));
        }
        // Drain everything, so state changes and tags do not pile up on the bus.
        while let Some(msg) = self.bus.pop() {
            match msg.view() {
                gst::MessageView::Error(_) => return Err(self.fail(msg)),
                gst::MessageView::Warning(w) => log_warning(w),
                _ => {}
            }
        }
        Ok(())
    }

    /// A push or end-of-stream was refused: the reason is on the bus, or soon will be.
    fn flow_error(&mut self, flow: gst::FlowError) -> EncodeError {
        self.wait_for_error(Duration::from_secs(2))
            .unwrap_or_else(|| EncodeError::Stream {
                element: "src".to_owned(),
                message: format!("the pipeline refused a frame: {flow:?}"),
                debug: None,
            })
    }

    fn wait_for_error(&mut self, timeout: Duration) -> Option<EncodeError> {
        if let Some(msg) = &self.failed {
            return Some(self.error_from(msg));
        }
        let msg = self
            .bus
            .timed_pop_filtered(clock_time(timeout), &[gst::MessageType::Error])?;
        Some(self.fail(msg))
    }

    fn fail(&mut self, msg: gst::Message) -> EncodeError {
        let error = self.error_from(&msg);
        tracing::warn!(error = %error, encoder = self.element, "encoding failed");
        self.failed.get_or_insert(msg);
        error
    }

    fn error_from(&self, msg: &gst::Message) -> EncodeError {
        error_from_message(msg, &self.target.out)
    }
}

impl Drop for Encoder {
    fn drop(&mut self) {
        if !self.finished {
            // Stop before the temporaries go (`temps` drops after this body): filesink and
            // mp4mux close their files on the way to NULL.
            if let Err(e) = self.pipeline.set_state(gst::State::Null) {
                tracing::warn!(error = %e, "could not stop the encode pipeline");
            }
            tracing::debug!(
                out = %self.target.out.display(),
                frames = self.frames,
                "encoder dropped unfinished; temporary files removed"
            );
        }
    }
}

/// Turns a bus error message into a typed error; running out of space (ENOSPC from filesink,
/// or a failed write whose system error says so) becomes [`EncodeError::DiskFull`].
fn error_from_message(msg: &gst::Message, out: &Path) -> EncodeError {
    let element = msg
        .src()
        .map(|s| s.name().to_string())
        .unwrap_or_else(|| "pipeline".to_owned());
    let gst::MessageView::Error(err) = msg.view() else {
        return EncodeError::Stream {
            element,
            message: format!("unexpected {:?} message", msg.type_()),
            debug: None,
        };
    };
    let error = err.error();
    let message = error.message().to_owned();
    let debug = err.debug().map(|d| d.to_string());
    let out_of_space = error.matches(gst::ResourceError::NoSpaceLeft)
        || mentions_out_of_space(&message)
        || debug.as_deref().is_some_and(mentions_out_of_space);
    if out_of_space {
        EncodeError::DiskFull {
            path: out.to_path_buf(),
            detail: match debug {
                Some(d) => format!("{element}: {message} ({d})"),
                None => format!("{element}: {message}"),
            },
        }
    } else {
        EncodeError::Stream {
            element,
            message,
            debug,
        }
    }
}

fn set_tags(mux: &gst::Element, meta: &VideoMetadata) -> Result<(), String> {
    let setter = mux
        .dynamic_cast_ref::<gst::TagSetter>()
        .ok_or_else(|| "mp4mux does not accept tags".to_owned())?;
    let mut tags = gst::TagList::new();
    {
        let tags = tags.make_mut();
        let mode = gst::TagMergeMode::Replace;
        tags.add::<gst::tags::Comment>(&meta.comment.as_str(), mode);
        // The label stays even when a caller replaces the comment. (mp4mux writes title,
        // comment and keywords; it drops a description tag.)
        tags.add::<gst::tags::Keywords>(&AI_GENERATED_KEYWORD, mode);
        if let Some(title) = &meta.title {
            tags.add::<gst::tags::Title>(&title.as_str(), mode);
        }
        if let Some(secs) = meta.created_unix_s
            && let Ok(when) = gst::DateTime::from_unix_epoch_utc(secs)
        {
            tags.add::<gst::tags::DateTime>(&when, mode);
        }
    }
    setter.merge_tags(&tags, gst::TagMergeMode::Replace);
    // Tags arriving from upstream (encoder name, bitrate) never override ours.
    setter.set_tag_merge_mode(gst::TagMergeMode::Keep);
    Ok(())
}

fn log_warning(w: &gst::message::Warning) {
    tracing::warn!(
        element = w.src().map(|s| s.name().to_string()).unwrap_or_default(),
        warning = %w.error(),
        debug = w.debug().map(|d| d.to_string()).unwrap_or_default(),
        "encode pipeline warning"
    );
}

fn clock_time(d: Duration) -> gst::ClockTime {
    gst::ClockTime::from_nseconds(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_message(kind: gst::ResourceError, text: &str, debug: &str) -> gst::Message {
        gst::message::Error::builder(kind, text)
            .debug(debug)
            .build()
    }

    #[test]
    fn out_of_space_errors_become_disk_full() {
        init().unwrap();
        let out = Path::new("/v/out.mp4");
        let enospc = error_message(gst::ResourceError::NoSpaceLeft, "No space left", "");
        assert!(matches!(
            error_from_message(&enospc, out),
            EncodeError::DiskFull { .. }
        ));
        let efbig = error_message(
            gst::ResourceError::Write,
            "Error while writing to file",
            "system error: File too large",
        );
        assert!(matches!(
            error_from_message(&efbig, out),
            EncodeError::DiskFull { .. }
        ));
        let other = error_message(gst::ResourceError::Write, "Error while writing", "EIO");
        assert!(matches!(
            error_from_message(&other, out),
            EncodeError::Stream { .. }
        ));
    }

    #[test]
    fn every_encoder_gets_4_2_0_and_avc_in_mp4() {
        let config = EncoderConfig::default();
        let spec = VideoSpec::new(512, 512, 24);
        for element in ENCODER_PREFERENCE {
            let d = pipeline_description(element, &config, &spec);
            assert!(d.contains(element), "{d}");
            assert!(
                d.contains("format=I420") || d.contains("format=NV12"),
                "4:2:0 before the encoder: {d}"
            );
            assert!(d.contains("stream-format=avc,alignment=au ! mp4mux faststart=true"));
        }
        let x264 = pipeline_description("x264enc", &config, &spec);
        assert!(
            x264.contains("bitrate=4000 speed-preset=superfast key-int-max=24 threads=1"),
            "{x264}"
        );
        let open = pipeline_description("openh264enc", &config, &spec);
        assert!(open.contains("bitrate=4000000 gop-size=24"), "{open}");
        let nv = pipeline_description("nvv4l2h264enc", &config, &spec);
        assert!(nv.contains("format=RGBA ! nvvidconv"), "{nv}");
    }
}
