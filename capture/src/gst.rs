//! GStreamer sources: any pipeline description, with an RGB appsink appended.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use crate::error::{CaptureError, SourceError, SpecError};
use crate::frame::{RawFrame, rgb_from_padded_rows};
use crate::handle::FrameSource;

/// The name of the appsink we append.
pub const SINK_NAME: &str = "kb_sink";
/// What is appended to the user's pipeline.
pub const SINK_TAIL: &str = "videoconvert ! video/x-raw,format=RGB ! appsink name=kb_sink max-buffers=1 drop=true sync=false";
/// How long one `next` waits for a sample.
const POLL: Duration = Duration::from_millis(200);
/// No sample for this long counts as a lost source.
const STALL: Duration = Duration::from_secs(5);
/// How long opening waits for the pipeline to reach PLAYING (or PAUSED, for live sources).
const START_TIMEOUT: Duration = Duration::from_secs(5);

/// Initialises GStreamer once per process.
pub(crate) fn init() -> Result<(), CaptureError> {
    static INIT: OnceLock<Result<(), String>> = OnceLock::new();
    INIT.get_or_init(|| gst::init().map_err(|e| e.to_string()))
        .clone()
        .map_err(CaptureError::GstInit)
}

/// Shape checks on a pipeline description, before GStreamer sees it.
pub(crate) fn check_pipeline(pipeline: &str) -> Result<(), SpecError> {
    let bad = |reason| {
        Err(SpecError::BadPipeline {
            pipeline: pipeline.to_owned(),
            reason,
        })
    };
    let trimmed = pipeline.trim();
    if trimmed.is_empty() {
        return bad("is empty");
    }
    if trimmed.ends_with('!') {
        return bad("must not end with '!': the appsink is appended for you");
    }
    if trimmed.contains(SINK_NAME) {
        return bad("must not name an element kb_sink: the appsink is appended for you");
    }
    Ok(())
}

/// The full description: the user's pipeline and our sink.
pub fn full_pipeline(pipeline: &str) -> String {
    format!("{} ! {SINK_TAIL}", pipeline.trim())
}

struct Running {
    pipeline: gst::Pipeline,
    sink: gst_app::AppSink,
    bus: gst::Bus,
    last_frame: Instant,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// Error text of an Error message: the message, the element, and the debug detail.
fn describe_error(msg: &gst::Message) -> String {
    match msg.view() {
        gst::MessageView::Error(err) => {
            let element = msg
                .src()
                .map(|s| s.path_string().to_string())
                .unwrap_or_else(|| "pipeline".into());
            match err.debug() {
                Some(debug) => format!("{element}: {} ({debug})", err.error()),
                None => format!("{element}: {}", err.error()),
            }
        }
        gst::MessageView::Eos(_) => "end of stream".into(),
        _ => format!("{:?}", msg.type_()),
    }
}

fn start(description: &str) -> Result<Running, CaptureError> {
    init()?;
    let invalid = |message: String| CaptureError::GstPipeline {
        pipeline: description.to_owned(),
        message,
    };
    let pipeline = gst::parse::launch(description)
        .map_err(|e| invalid(e.to_string()))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| invalid("the description is not a pipeline".into()))?;
    let sink = pipeline
        .by_name(SINK_NAME)
        .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
        .ok_or_else(|| invalid("the appsink kb_sink is missing".into()))?;
    let bus = pipeline
        .bus()
        .ok_or_else(|| invalid("the pipeline has no bus".into()))?;
    let running = Running {
        pipeline,
        sink,
        bus,
        last_frame: Instant::now(),
    };
    let failed = |running: &Running, fallback: String| {
        let message = running
            .bus
            .timed_pop_filtered(
                gst::ClockTime::from_mseconds(100),
                &[gst::MessageType::Error],
            )
            .map(|msg| describe_error(&msg))
            .unwrap_or(fallback);
        CaptureError::GstStart {
            pipeline: description.to_owned(),
            message,
        }
    };
    if let Err(e) = running.pipeline.set_state(gst::State::Playing) {
        return Err(failed(&running, e.to_string()));
    }
    let timeout = gst::ClockTime::from_mseconds(START_TIMEOUT.as_millis() as u64);
    if let (Err(e), ..) = running.pipeline.state(timeout) {
        return Err(failed(&running, e.to_string()));
    }
    // An error posted while starting (a live source that failed after NO_PREROLL).
    if let Some(msg) = running.bus.pop_filtered(&[gst::MessageType::Error]) {
        return Err(CaptureError::GstStart {
            pipeline: description.to_owned(),
            message: describe_error(&msg),
        });
    }
    Ok(running)
}

/// A running GStreamer pipeline. End of stream, a bus error or a stall tears it down; the
/// next call builds it again.
pub(crate) struct GstSource {
    description: String,
    running: Option<Running>,
}

impl GstSource {
    /// Builds and starts the pipeline now, so that an invalid one is an error at build time.
    pub(crate) fn open(pipeline: &str) -> Result<Self, CaptureError> {
        check_pipeline(pipeline)?;
        let description = full_pipeline(pipeline);
        let running = start(&description)?;
        Ok(GstSource {
            description,
            running: Some(running),
        })
    }

    fn lose(&mut self, why: String) -> SourceError {
        self.running = None;
        SourceError::Lost(why)
    }
}

fn sample_to_frame(sample: &gst::Sample) -> Result<RawFrame, SourceError> {
    let bad = |what: &str| SourceError::BadFrame(format!("GStreamer sample: {what}"));
    let caps = sample.caps().ok_or_else(|| bad("no caps"))?;
    let s = caps.structure(0).ok_or_else(|| bad("empty caps"))?;
    let width = s.get::<i32>("width").map_err(|_| bad("no width"))?;
    let height = s.get::<i32>("height").map_err(|_| bad("no height"))?;
    let (width, height) = (
        u32::try_from(width).map_err(|_| bad("negative width"))?,
        u32::try_from(height).map_err(|_| bad("negative height"))?,
    );
    let buffer = sample.buffer().ok_or_else(|| bad("no buffer"))?;
    let map = buffer
        .map_readable()
        .map_err(|_| bad("unreadable buffer"))?;
    // GStreamer's default RGB layout pads each row to a multiple of 4 bytes.
    let stride = (width as usize * 3).next_multiple_of(4);
    rgb_from_padded_rows(width, height, stride, map.as_slice()).map(|i| RawFrame::Rgb(Arc::new(i)))
}

impl FrameSource for GstSource {
    fn next(&mut self) -> Result<RawFrame, SourceError> {
        if self.running.is_none() {
            let running = start(&self.description).map_err(|e| SourceError::Lost(e.to_string()))?;
            self.running = Some(running);
        }
        let Some(running) = self.running.as_mut() else {
            return Err(SourceError::Lost("pipeline stopped".into()));
        };
        // Popping with a filter also discards the other messages, so the bus does not grow.
        while let Some(msg) = running.bus.pop_filtered(&[
            gst::MessageType::Error,
            gst::MessageType::Eos,
            gst::MessageType::Warning,
        ]) {
            if let gst::MessageView::Warning(w) = msg.view() {
                let element = msg.src().map(|s| s.path_string().to_string());
                tracing::warn!(?element, warning = %w.error(), debug = ?w.debug(), "GStreamer warning");
                continue;
            }
            let why = describe_error(&msg);
            return Err(self.lose(why));
        }
        let timeout = gst::ClockTime::from_mseconds(POLL.as_millis() as u64);
        match running.sink.try_pull_sample(timeout) {
            Some(sample) => {
                running.last_frame = Instant::now();
                sample_to_frame(&sample)
            }
            None if running.sink.is_eos() => Err(self.lose("end of stream".into())),
            None if running.last_frame.elapsed() > STALL => {
                let why = format!("no frame for {} s", STALL.as_secs());
                Err(self.lose(why))
            }
            None => Err(SourceError::NoFrameYet),
        }
    }

    fn describe(&self) -> String {
        format!("gst:{}", self.description)
    }
}
