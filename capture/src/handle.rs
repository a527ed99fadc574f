//! The running camera: one thread per camera reads its [`FrameSource`], converts frames to
//! RGB and publishes the newest one; [`CameraHandle`] reads it without ever waiting on the
//! source.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use crate::error::{CaptureError, SourceError};
use crate::frame::{Frame, RawFrame};
use crate::shutdown::Shutdown;

/// Where frames come from: a camera, a pipeline, a folder, a generator, a recording.
///
/// [`FrameSource::next`] is called in a loop on the camera's own thread. It may block, but
/// only for a bounded time (≤ about 250 ms; answer [`SourceError::NoFrameYet`] when nothing
/// came), so that stopping the camera is prompt. After [`SourceError::Lost`] the thread backs
/// off and calls `next` again: a source re-opens its device or pipeline in that call, and
/// answers `Lost` again while it cannot. A re-opening call may take longer (the built-in
/// sources: up to 3 s for a V4L2 camera's first buffer, 5 s for a pipeline to start), and
/// so may stopping a camera caught in one.
pub trait FrameSource: Send {
    /// The next frame, or why there is none.
    fn next(&mut self) -> Result<RawFrame, SourceError>;

    /// What is being read, e.g. `v4l2:/dev/video0 MJPEG 1920x1080`; asked after each
    /// (re)connect.
    fn describe(&self) -> String;
}

/// Reconnect delays: `initial`, doubling per failed attempt, at most `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The delay after the first failure.
    pub initial: Duration,
    /// The cap.
    pub max: Duration,
}

impl Default for Backoff {
    /// 100 ms doubling to 5 s.
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(5),
        }
    }
}

impl Backoff {
    /// The delay before attempt `attempt + 1`, for `attempt` ≥ 1 failures in a row.
    pub fn delay(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(30);
        self.initial.saturating_mul(1u32 << doublings).min(self.max)
    }
}

/// What a camera gets from the process that builds it.
#[derive(Debug, Clone, Default)]
pub struct CameraContext {
    /// The process-wide stop signal. Each camera watches a [`Shutdown::child`] of it, so
    /// [`CameraHandle::stop`] stops one camera and triggering this stops them all.
    pub shutdown: Shutdown,
    /// Reconnect delays after a read error, end of stream or unplug.
    pub backoff: Backoff,
}

impl CameraContext {
    /// A context watching `shutdown`, with the default [`Backoff`].
    pub fn new(shutdown: Shutdown) -> Self {
        CameraContext {
            shutdown,
            backoff: Backoff::default(),
        }
    }
}

/// The state of a camera, for the kiosk and the admin page.
#[derive(Debug, Clone, PartialEq)]
pub enum CameraStatus {
    /// Started, no frame yet.
    Starting,
    /// Delivering frames, at about `fps` per second (over the last second or so).
    Live {
        /// Recent frame rate.
        fps: f32,
    },
    /// The source was lost and is being re-opened with back-off.
    Reconnecting {
        /// Failed attempts in a row (1 after the first error).
        attempt: u32,
        /// When the outage began.
        since: SystemTime,
        /// The latest error.
        last_error: String,
    },
    /// The camera thread has ended (stopped or shut down).
    Stopped,
}

struct Slot {
    frame: Option<Frame>,
    status: CameraStatus,
    description: String,
    stopped: bool,
}

struct Shared {
    slot: Mutex<Slot>,
    newer: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Slot> {
        self.slot.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running camera.
///
/// A background thread reads the source and keeps the latest frame; readers never block the
/// source and the source never blocks readers (the lock is held only to swap an `Arc`).
/// Dropping the handle stops the camera, as [`CameraHandle::stop`] does.
pub struct CameraHandle {
    shared: Arc<Shared>,
    stop: Shutdown,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for CameraHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CameraHandle")
            .field("describe", &self.describe())
            .field("status", &self.status())
            .finish()
    }
}

impl CameraHandle {
    /// Runs `source` on a new thread named after `name`; frames carry `name` as
    /// [`Frame::source`]. [`crate::CameraSpec::build`] does this for the built-in sources; it
    /// is public for sources of your own (and for tests with [`crate::ReplaySource`]).
    pub fn spawn(
        source: Box<dyn FrameSource>,
        name: impl Into<String>,
        ctx: &CameraContext,
    ) -> Result<CameraHandle, CaptureError> {
        let name = name.into();
        let shared = Arc::new(Shared {
            slot: Mutex::new(Slot {
                frame: None,
                status: CameraStatus::Starting,
                description: source.describe(),
                stopped: false,
            }),
            newer: Condvar::new(),
        });
        let stop = ctx.shutdown.child();
        let runner = Runner {
            source,
            name: name.clone(),
            shared: Arc::clone(&shared),
            stop: stop.clone(),
            backoff: ctx.backoff,
        };
        let thread_name: String = format!("camera {name}").chars().take(60).collect();
        let thread = std::thread::Builder::new()
            .name(thread_name)
            .spawn(move || runner.run())
            .map_err(CaptureError::Thread)?;
        Ok(CameraHandle {
            shared,
            stop,
            thread: Some(thread),
        })
    }

    /// The newest frame, if any arrived yet. Cheap: copies an `Arc`.
    pub fn latest(&self) -> Option<Frame> {
        self.shared.lock().frame.clone()
    }

    /// The first frame with a sequence number above `seq`, waiting up to `timeout` for it.
    /// `None` on timeout or when the camera stops. `wait_newer(0, ..)` waits for any frame;
    /// for a burst, pass the previous frame's `seq`.
    pub fn wait_newer(&self, seq: u64, timeout: Duration) -> Option<Frame> {
        let guard = self.shared.lock();
        let (guard, _) = self
            .shared
            .newer
            .wait_timeout_while(guard, timeout, |slot| {
                !slot.stopped && slot.frame.as_ref().is_none_or(|f| f.seq <= seq)
            })
            .unwrap_or_else(PoisonError::into_inner);
        guard.frame.as_ref().filter(|f| f.seq > seq).cloned()
    }

    /// Starting, Live, Reconnecting or Stopped.
    pub fn status(&self) -> CameraStatus {
        self.shared.lock().status.clone()
    }

    /// What the camera reads, e.g. `v4l2:/dev/video0 MJPEG 1920x1080`.
    pub fn describe(&self) -> String {
        self.shared.lock().description.clone()
    }

    /// Stops the camera thread and waits for it to end (at most about one source read).
    pub fn stop(self) {
        drop(self);
    }

    fn stop_and_join(&mut self) {
        self.stop.trigger();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the camera thread panicked");
        }
        let mut slot = self.shared.lock();
        slot.stopped = true;
        slot.status = CameraStatus::Stopped;
        drop(slot);
        self.shared.newer.notify_all();
    }
}

impl Drop for CameraHandle {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// Frame rate over the last second (at most 120 frames).
struct FpsMeter {
    times: VecDeque<Instant>,
}

impl FpsMeter {
    fn new() -> Self {
        FpsMeter {
            times: VecDeque::with_capacity(121),
        }
    }

    fn tick(&mut self, now: Instant) -> f32 {
        self.times.push_back(now);
        while self.times.len() > 120
            || self.times.front().is_some_and(|t| {
                now.duration_since(*t) > Duration::from_secs(1) && self.times.len() > 2
            })
        {
            self.times.pop_front();
        }
        match (self.times.front(), self.times.len()) {
            (Some(first), n) if n >= 2 => {
                let span = now.duration_since(*first).as_secs_f32();
                if span > 0.0 {
                    (n - 1) as f32 / span
                } else {
                    0.0
                }
            }
            _ => 0.0,
        }
    }

    fn reset(&mut self) {
        self.times.clear();
    }
}

struct Runner {
    source: Box<dyn FrameSource>,
    name: String,
    shared: Arc<Shared>,
    stop: Shutdown,
    backoff: Backoff,
}

impl Runner {
    fn run(mut self) {
        let mut seq = 0u64;
        let mut failures = 0u32;
        let mut outage_since: Option<SystemTime> = None;
        let mut fps = FpsMeter::new();
        let mut bad_frames = 0u64;
        tracing::info!(camera = %self.name, "camera started");
        while !self.stop.is_triggered() {
            // Converting happens here, outside the lock: readers only wait for a pointer swap.
            let image = match self.source.next().and_then(RawFrame::decode) {
                Ok(image) => image,
                Err(SourceError::NoFrameYet) => continue,
                Err(SourceError::BadFrame(error)) => {
                    bad_frames += 1;
                    if bad_frames.is_power_of_two() {
                        tracing::warn!(camera = %self.name, %error, bad_frames, "skipping a frame");
                    }
                    continue;
                }
                Err(SourceError::Lost(error)) => {
                    failures = failures.saturating_add(1);
                    let since = *outage_since.get_or_insert_with(SystemTime::now);
                    let delay = self.backoff.delay(failures);
                    if failures == 1 {
                        tracing::warn!(camera = %self.name, %error, "camera lost; reconnecting");
                    } else {
                        tracing::debug!(camera = %self.name, %error, attempt = failures, ?delay, "camera still lost");
                    }
                    self.shared.lock().status = CameraStatus::Reconnecting {
                        attempt: failures,
                        since,
                        last_error: error,
                    };
                    fps.reset();
                    if self.stop.wait_timeout(delay) {
                        break;
                    }
                    continue;
                }
            };
            let reconnected = failures > 0;
            if reconnected {
                tracing::info!(camera = %self.name, attempts = failures, "camera back");
                failures = 0;
                outage_since = None;
            }
            let description = (reconnected || seq == 0).then(|| self.source.describe());
            seq += 1;
            let frame = Frame {
                image,
                seq,
                captured_at: SystemTime::now(),
                source: self.name.clone(),
            };
            let rate = fps.tick(Instant::now());
            let previous = {
                let mut slot = self.shared.lock();
                slot.status = CameraStatus::Live { fps: rate };
                if let Some(description) = description {
                    slot.description = description;
                }
                slot.frame.replace(frame)
            };
            self.shared.newer.notify_all();
            // The old frame's pixels are freed here, outside the lock (unless a reader holds it).
            drop(previous);
        }
        let mut slot = self.shared.lock();
        slot.stopped = true;
        slot.status = CameraStatus::Stopped;
        drop(slot);
        self.shared.newer.notify_all();
        tracing::info!(camera = %self.name, frames = seq, "camera stopped");
    }
}

/// Paces generated or replayed frames at a fixed interval without oversleeping a stop:
/// [`Pacer::ready`] waits at most [`Pacer::MAX_WAIT`] per call.
pub(crate) struct Pacer {
    interval: Duration,
    next: Option<Instant>,
}

impl Pacer {
    pub(crate) const MAX_WAIT: Duration = Duration::from_millis(100);

    pub(crate) fn new(interval: Duration) -> Self {
        Pacer {
            interval,
            next: None,
        }
    }

    /// Whether the next frame is due (after sleeping up to [`Pacer::MAX_WAIT`]).
    pub(crate) fn ready(&mut self) -> bool {
        let now = Instant::now();
        let due = *self.next.get_or_insert(now);
        if now < due {
            std::thread::sleep((due - now).min(Self::MAX_WAIT));
        }
        let now = Instant::now();
        if now < due {
            return false;
        }
        // Keep a steady rhythm, but do not try to catch up after a long pause.
        let following = due + self.interval;
        self.next = Some(if following < now {
            now + self.interval
        } else {
            following
        });
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_100ms_to_5s() {
        let b = Backoff::default();
        let delays: Vec<u64> = (1..=9).map(|a| b.delay(a).as_millis() as u64).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(5));
    }

    #[test]
    fn fps_meter_measures_a_steady_rate() {
        let mut meter = FpsMeter::new();
        let start = Instant::now();
        let mut fps = 0.0;
        for i in 0..60 {
            fps = meter.tick(start + Duration::from_millis(i * 40));
        }
        assert!((fps - 25.0).abs() < 0.5, "{fps}");
    }
}
