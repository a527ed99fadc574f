//! The live preview: while a kiosk watches, the newest camera frame with the face gate's boxes,
//! as a JPEG, and the gate's verdict.

use image::RgbImage;
use kissbooth_capture::CameraSpec;
use kissbooth_engines::face::Verdict;
use serde_json::json;
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use super::*;

/// The live preview: the newest JPEG with the gate's boxes drawn, and the verdict.
#[derive(Default)]
pub struct Preview {
    /// When a kiosk last asked for a preview frame; the preview is made only while watched.
    pub wanted_at: Option<Instant>,
    pub jpeg: Option<Arc<Vec<u8>>>,
    pub seq: u64,
    pub verdict: Option<Verdict>,
    pub camera: String,
}

/// The live preview as a part of the booth: the newest frame and verdict, the signal the MJPEG
/// stream waits on, and what wakes the preview thread.
pub struct LivePreview {
    pub state: RwLock<Preview>,
    /// The sequence number of the newest preview frame, sent as each one is made: the MJPEG
    /// stream waits on it instead of polling.
    pub made: tokio::sync::watch::Sender<u64>,
    /// Wakes the preview thread when a kiosk starts watching.
    wake: PreviewWake,
    /// A live camera whose newest picture is older than this has stalled (see [`stall_after`]).
    pub(super) stall_after: Duration,
}

impl LivePreview {
    pub fn new(camera: &CameraSpec) -> LivePreview {
        LivePreview {
            state: RwLock::new(Preview {
                camera: camera.to_string(),
                ..Preview::default()
            }),
            made: tokio::sync::watch::channel(0).0,
            wake: PreviewWake::default(),
            stall_after: stall_after(camera),
        }
    }

    /// Wakes the preview thread (shutdown).
    pub fn wake(&self) {
        self.wake.notify();
    }
}

/// Wakes the preview thread when a kiosk starts watching, or the booth shuts down.
#[derive(Default)]
pub struct PreviewWake {
    asked: Mutex<bool>,
    cv: Condvar,
}

impl PreviewWake {
    pub fn notify(&self) {
        if let Ok(mut asked) = self.asked.lock() {
            *asked = true;
            self.cv.notify_all();
        }
    }

    /// Waits for a [`PreviewWake::notify`] or the timeout.
    fn wait(&self, timeout: Duration) {
        let Ok(asked) = self.asked.lock() else {
            return;
        };
        if let Ok((mut asked, _)) = self.cv.wait_timeout_while(asked, timeout, |a| !*a) {
            *asked = false;
        }
    }
}

/// The longest the preview thread sleeps without news, when no stall can be due sooner.
const PREVIEW_IDLE: Duration = Duration::from_secs(1);
/// At most one preview frame per this interval (10 a second): the preview shares the CPU with
/// the render of the previous couple's clip.
const PREVIEW_INTERVAL: Duration = Duration::from_millis(100);

/// A preview frame at most 960 px wide with the face boxes drawn (green: fine, amber: the gate's
/// complaint is about this face).
pub(super) fn preview_jpeg(img: &RgbImage, boxes: &[([f32; 4], bool)]) -> Vec<u8> {
    let scale = (960.0 / img.width() as f32).min(1.0);
    let mut small = if scale < 1.0 {
        image::imageops::resize(
            img,
            (img.width() as f32 * scale) as u32,
            (img.height() as f32 * scale) as u32,
            image::imageops::FilterType::Triangle,
        )
    } else {
        img.clone()
    };
    for (b, good) in boxes {
        let c = if *good {
            image::Rgb([60, 220, 110])
        } else {
            image::Rgb([255, 170, 40])
        };
        crate::clip::draw::frame_box(&mut small, b.map(|v| (v * scale).round() as i64), 3, c);
    }
    kissbooth_capture::jpeg_encode(&small, 75)
}

impl Booth {
    /// Keeps the preview JPEG and the gate's verdict fresh: about 10 frames and 4 analyses a
    /// second.
    /// How long until the camera counts as stalled if no picture comes (a little past the
    /// moment, so the check then sees it); [`PREVIEW_IDLE`] when that is not the question.
    fn until_stall(&self) -> Duration {
        if !matches!(self.camera.status(), CameraStatus::Live { .. }) {
            return PREVIEW_IDLE;
        }
        let Some(newest) = self.camera.latest().map(|f| f.captured_at) else {
            return PREVIEW_IDLE;
        };
        let due = newest + self.live.stall_after + Duration::from_millis(20);
        due.duration_since(SystemTime::now())
            .unwrap_or(PREVIEW_IDLE)
            .clamp(Duration::from_millis(10), PREVIEW_IDLE)
    }

    /// The preview thread. It sleeps until something happens: a new picture while a kiosk
    /// watches, a kiosk starting to watch, the moment the camera would count as stalled, the
    /// first picture after a stall, or shutdown.
    pub(super) fn preview_loop(self: Arc<Self>) {
        let mut last_seq = 0;
        let mut n = 0u64;
        let mut boxes: Vec<([f32; 4], bool)> = Vec::new();
        let mut was_stalled = false;
        let mut last_made: Option<Instant> = None;
        while !self.shutdown.is_triggered() {
            let is_stalled = self.camera_stalled();
            if is_stalled != was_stalled {
                was_stalled = is_stalled;
                self.tell_stalled(is_stalled);
            }
            // Only while a kiosk watches (the pose screen): idle screens cost nothing.
            let watched = self.preview_watched();
            if matches!(self.camera.status(), CameraStatus::Stopped) {
                self.live.wake.wait(PREVIEW_IDLE);
                continue;
            }
            if is_stalled {
                // The first picture after the stall says the camera is back.
                let newest = self.camera.latest().map_or(0, |f| f.seq);
                let _ = self.camera.wait_newer(newest, PREVIEW_IDLE);
                continue;
            }
            if !watched {
                self.live.wake.wait(self.until_stall());
                continue;
            }
            let Some(mut frame) = self.camera.wait_newer(last_seq, self.until_stall()) else {
                continue;
            };
            // Paced: a camera faster than the preview has its newest picture taken at the pace.
            let since = last_made.map_or(PREVIEW_INTERVAL, |t| t.elapsed());
            if since < PREVIEW_INTERVAL {
                if self.shutdown.wait_timeout(PREVIEW_INTERVAL - since) {
                    break;
                }
                if let Some(newer) = self.camera.latest().filter(|f| f.seq > frame.seq) {
                    frame = newer;
                }
            }
            last_made = Some(Instant::now());
            last_seq = frame.seq;
            n += 1;
            if n % 3 == 1
                && let Some(b) = self.gate_preview(&frame.image)
            {
                boxes = b;
            }
            let jpeg = preview_jpeg(&frame.image, &boxes);
            if let Ok(mut p) = self.live.state.write() {
                p.jpeg = Some(Arc::new(jpeg));
                p.seq = frame.seq;
            }
            self.live.made.send_replace(frame.seq);
        }
    }

    /// A camera that stops sending pictures without an error: the kiosk hears of it at once
    /// (and again when it recovers), not at its next status poll.
    fn tell_stalled(&self, stalled: bool) {
        if stalled {
            tracing::warn!("camera stalled: no picture for {:?}", self.live.stall_after);
        } else {
            tracing::info!("camera sending pictures again");
        }
        let _ = self
            .events
            .send(json!({"type": "status", "status": self.status_json()}).to_string());
    }

    /// Whether a kiosk asked for a preview frame in the last three seconds.
    fn preview_watched(&self) -> bool {
        self.live
            .state
            .read()
            .ok()
            .and_then(|p| p.wanted_at)
            .is_some_and(|t| t.elapsed() < Duration::from_secs(3))
    }

    /// Runs the face gate on a preview picture when the analyzer is free: records the verdict,
    /// tells the kiosk when it changed, and returns each face's box with whether it passes.
    fn gate_preview(&self, image: &RgbImage) -> Option<Vec<([f32; 4], bool)>> {
        let a = {
            let mut an = self.studio.analyzer.try_lock().ok()?;
            an.analyze(image).ok()?
        };
        let boxes = a
            .faces
            .iter()
            .enumerate()
            .map(|(i, f)| (f.bbox, a.verdict.ok || !a.verdict.faces.contains(&i)))
            .collect();
        let changed = self
            .live
            .state
            .read()
            .map(|p| p.verdict.as_ref() != Some(&a.verdict))
            .unwrap_or(true);
        if let Ok(mut p) = self.live.state.write() {
            p.verdict = Some(a.verdict.clone());
        }
        if changed {
            let _ = self
                .events
                .send(json!({"type": "preview", "verdict": a.verdict}).to_string());
        }
        Some(boxes)
    }

    /// Marks the preview as watched (called by the preview endpoints).
    pub fn want_preview(&self) {
        let was = if let Ok(mut p) = self.live.state.write() {
            p.wanted_at.replace(Instant::now())
        } else {
            return;
        };
        if was.is_none_or(|t| t.elapsed() >= Duration::from_secs(3)) {
            self.live.wake();
        }
    }
}
