//! The booth: one session state machine per couple, the camera and its live preview with the
//! face gate's verdict, and a bounded render queue worked by one thread so the next couple can
//! pose while the previous clip renders.
//!
//! A session's state is a [`SessionState`] and changes only by an event the state machine in
//! [`crate::booth::session`] allows, applied by [`Store::transition`] against the state it reads:
//! `consent` → `pose` → `review` → `queued` → `rendering` → `done`, or `failed`, `cancelled`,
//! and the ends `expired`, `purged`, `deleted`. Attract, countdown and result are kiosk screens
//! around these.

pub mod album;
pub mod link;
pub mod session;
pub mod settings;
pub mod thermal;

mod event;
mod links;
mod preview;
mod queue;
mod render_queue;
mod retention;
mod setup;
mod status;
mod thermal_watch;

use event::*;
pub use links::*;
pub use preview::*;
pub use queue::{Poisoned, Refused, RenderQueue};
pub use setup::*;
pub use status::*;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use image::RgbImage;
use kissbooth_capture::{CameraContext, CameraHandle, CameraStatus, Shutdown};
use kissbooth_engines::Landmarks;

use kissbooth_engines::face::{Analysis, Verdict};

use rand::RngCore;
use serde::Serialize;
use serde_json::json;
use tokio::sync::broadcast;

use crate::booth::link::{new_token, short_display};
use crate::booth::session::{SessionEvent, SessionState, apply};
use crate::booth::thermal::Throttle;
use crate::config::Config;
use crate::store::{SessionRow, Store, Transition, token_hash, write_atomic};

/// What the kiosk says to a couple who try to start while the booth is closed.
const CLOSED: &str = "The booth is closed. Thank you for coming!";
/// The settings row that says the operator closed the booth.
const CLOSED_KEY: &str = "booth_closed";

/// What the kiosk says when a render fails.
const RENDER_FAILED: &str = "Something went wrong while making your video. Please try again.";

/// What went wrong with a request, as the kiosk and the phone see it.
#[derive(Debug)]
pub enum BoothError {
    NotFound,
    Conflict(String),
    Busy(String),
    BadRequest(String),
    Internal(anyhow::Error),
}

impl From<Poisoned> for BoothError {
    fn from(e: Poisoned) -> Self {
        BoothError::Internal(e.into())
    }
}

impl From<anyhow::Error> for BoothError {
    fn from(e: anyhow::Error) -> Self {
        BoothError::Internal(e)
    }
}

pub type BoothResult<T> = Result<T, BoothError>;

/// The kiosk's view of a session.
#[derive(Debug, Clone, Serialize)]
pub struct SessionView {
    pub id: String,
    pub state: SessionState,
    pub verdict: Option<serde_json::Value>,
    /// Render progress, 0 to 1.
    pub progress: f64,
    /// Clips ahead of this one in the queue (0: rendering or next).
    pub queue_position: Option<usize>,
    /// Honest estimate of seconds until the clip is ready.
    pub eta_s: Option<f64>,
    /// The guests' link, from the moment the clip is queued ("scan now, watch when ready").
    pub download_url: Option<String>,
    /// The same link shortened for typing, as written under the QR code: `10.42.0.1/d/ABCD-2345`.
    pub short_link: Option<String>,
    /// Phones downloading the clip now (a download counts for [`DOWNLOAD_GRACE`] after its last
    /// byte left the booth).
    pub downloading: usize,
    pub video_url: Option<String>,
    pub capture_url: Option<String>,
    pub error: Option<String>,
    pub expires_at: Option<i64>,
    /// Thermal throttling now: `normal`, `reduced` (smaller renders) or `paused`.
    pub throttle: &'static str,
    /// Queued while the booth cools down (renders wait above the hard limit).
    pub cooling: bool,
}

/// The settings key of the operator's choice about source captures.
const KEEP_CAPTURES: &str = "keep_captures";

pub struct Booth {
    pub cfg: Config,
    pub store: Store,
    pub camera: CameraHandle,
    /// The face models, generator and signing key.
    pub studio: Studio,
    /// Kiosk events (JSON lines) for the server-sent event stream.
    pub events: broadcast::Sender<String>,
    /// The live preview and the face gate's verdict.
    pub live: LivePreview,
    pub public_base: String,
    /// Sessions waiting for their clip, the one rendering, and recent render times.
    queue: RenderQueue,
    /// Failures the database could not record yet (session → message): shown as failed at once,
    /// written by the next retention sweep.
    unsaved_failures: Mutex<HashMap<String, String>>,
    /// The sensors and the throttling they call for.
    thermal: crate::booth::thermal::ThermalWatch,
    /// Links, downloads and short-code guesses.
    pub guests: GuestLinks,
    pub shutdown: Shutdown,
    pub started: Instant,
    /// The HTTP server's connections and accept failures, for `/metrics` and `/healthz`.
    pub net: Arc<crate::http::connections::NetStats>,
    /// The event's settings (admin page), applied to the next session.
    settings: RwLock<crate::booth::settings::EventSettings>,
    /// The branding logo at its placement, when one is uploaded.
    logo: RwLock<Option<Arc<kissbooth_media::Overlay>>>,
}

impl Booth {
    pub fn start(
        cfg: Config,
        models: PathBuf,
        runtime: &'static kissbooth_engines::runtime::Runtime,
    ) -> anyhow::Result<Arc<Booth>> {
        Booth::start_with_clock(cfg, models, runtime, crate::clock::system())
    }

    /// The booth on `clock`: retention, link lifetimes and the database's timestamps follow it.
    pub fn start_with_clock(
        cfg: Config,
        models: PathBuf,
        runtime: &'static kissbooth_engines::runtime::Runtime,
        clock: crate::clock::SharedClock,
    ) -> anyhow::Result<Arc<Booth>> {
        cfg.validate()?;
        let store = Store::open_with_clock(&cfg.data, clock)?;
        let studio = Studio::open(&cfg, &models, runtime, &store)?;
        let spec = camera_spec(&cfg)?;
        let shutdown = Shutdown::new();
        // A camera that is not there yet (unplugged, an empty stills folder) does not stop the
        // booth: the kiosk says the camera is unavailable, and it goes live when it appears.
        let camera = spec
            .build_waiting(CameraContext::new(shutdown.clone()))
            .with_context(|| format!("camera {spec}"))?;
        let public_base = if cfg.public_url.is_empty() {
            crate::net::default_public_url(cfg.listen)
        } else {
            cfg.public_url.trim_end_matches('/').to_string()
        };
        let (events, _) = broadcast::channel(256);
        let thermal = crate::booth::thermal::ThermalWatch::open(&cfg.thermal);
        // One line whatever the log filter, like the "serving on" line.
        eprintln!("kissbooth: telemetry source: {}", thermal.describe());
        let settings = crate::booth::settings::EventSettings::load(&store, &cfg);
        let booth = Arc::new(Booth {
            logo: RwLock::new(load_logo(&cfg.data, &settings)),
            settings: RwLock::new(settings),
            studio,
            store,
            camera,
            events,
            live: LivePreview::new(&spec),
            public_base,
            queue: RenderQueue::default(),
            unsaved_failures: Mutex::new(HashMap::new()),
            thermal,
            guests: GuestLinks::default(),
            shutdown,
            started: Instant::now(),
            net: Arc::default(),
            cfg,
        });
        booth.recover()?;
        booth.spawn_workers()?;
        Ok(booth)
    }

    /// The booth's threads: retention sweeps, thermal readings, the render worker and the live
    /// preview. Each stops at shutdown.
    fn spawn_workers(self: &Arc<Self>) -> std::io::Result<()> {
        // The render worker and the preview thread wait on condition variables: shutdown wakes
        // them there.
        let weak = Arc::downgrade(self);
        self.shutdown.on_trigger(move || {
            if let Some(b) = weak.upgrade() {
                b.queue.wake();
                b.live.wake();
            }
        });
        // Expired captures and videos go at boot, before anything is served. Their links are
        // dead already (expiry), so a folder that resists is retried by the sweep rather than
        // keeping the booth down all night.
        if let Err(e) = self.purge_expired() {
            eprintln!("kissbooth: retention purge at start: {e:#}");
            tracing::error!(error = %format!("{e:#}"), "retention purge at start failed");
        }
        let b = self.clone();
        std::thread::Builder::new()
            .name("retention".into())
            .spawn(move || {
                let every = Duration::from_secs(b.cfg.privacy.purge_interval_s);
                while !b.shutdown.wait_timeout(every) {
                    b.save_failures();
                    if let Err(e) = b.purge_expired() {
                        tracing::error!(error = %format!("{e:#}"), "retention sweep failed");
                    }
                }
            })?;
        let b = self.clone();
        std::thread::Builder::new()
            .name("thermal".into())
            .spawn(move || {
                let every = Duration::from_millis(b.cfg.thermal.poll_ms);
                while !b.shutdown.wait_timeout(every) {
                    b.thermal_tick();
                }
            })?;
        let b = self.clone();
        std::thread::Builder::new()
            .name("render".into())
            .spawn(move || b.render_worker())?;
        let b = self.clone();
        std::thread::Builder::new()
            .name("preview".into())
            .spawn(move || b.preview_loop())?;
        Ok(())
    }

    /// Jobs a previous run left unfinished: retried once, then reported failed.
    fn recover(&self) -> anyhow::Result<()> {
        for (job, session, _) in self.store.unfinished_jobs()? {
            // Every start of every job of this session: a retry is a new job, so counting only
            // this job's would retry a clip that kills the booth for ever.
            let attempts = self.store.render_attempts(&session)?;
            let state = self.store.get(&session)?.map(|s| s.state);
            if !state.is_some_and(SessionState::in_the_queue) {
                // Cancelled or purged while it waited: nothing to render.
                self.store.job_finished(
                    job,
                    Some(&format!(
                        "session {}",
                        state.map_or("gone", SessionState::name)
                    )),
                    0.0,
                )?;
                continue;
            }
            let dir = self.store.session_dir(&session);
            // A half-written video is never served: only finished files are renamed into place,
            // so anything left is a temporary and goes.
            let _ = kissbooth_media::remove_stale_temporaries(&dir);
            if attempts >= 2 {
                self.store.job_finished(
                    job,
                    Some("the booth restarted twice while rendering"),
                    0.0,
                )?;
                self.set_failed(
                    &session,
                    "The booth restarted while making this video. Please try again.",
                )?;
            } else {
                self.requeue(job, &session)?;
            }
        }
        // A session whose job ended but whose own row was not updated (an error in between)
        // would wait for ever: it failed.
        let queued = self.queue.waiting();
        for s in self
            .store
            .sessions_in(&[SessionState::Queued, SessionState::Rendering])?
        {
            if !queued.contains(&s.id) {
                self.store
                    .audit("render_failed", Some(&s.id), "no job left after a restart");
                self.set_failed(&s.id, RENDER_FAILED)?;
            }
        }
        Ok(())
    }

    /// A job a restart interrupted, queued again under a new job with a new link for the
    /// kiosk; the phones that scanned the old one keep it.
    fn requeue(&self, job: i64, session: &str) -> anyhow::Result<()> {
        self.store
            .job_finished(job, Some("interrupted by a restart; retried"), 0.0)?;
        let new_job = self.store.enqueue_job(session)?;
        self.store.audit(
            "job_requeued",
            Some(session),
            &format!("job {job} -> {new_job}"),
        );
        // The kiosk lost the link with the restart: it gets a new one to show, and the
        // phones that scanned the old one keep it.
        let link = KioskLink {
            token: new_token(),
            short: self.unused_short()?,
        };
        let old = self.store.get(session)?;
        let keep = |h: Option<String>| h.map_or(rusqlite::types::Value::Null, Into::into);
        let p = &self.cfg.privacy;
        let expires = old
            .as_ref()
            .and_then(|s| s.token_expires_at)
            .unwrap_or_else(|| {
                let created = old.as_ref().map_or(self.store.now_s(), |s| s.created_at);
                (self.store.now_s() + (p.token_ttl_hours * 3600.0).ceil() as i64)
                    .min(created + (self.settings().retention_hours * 3600.0) as i64)
            });
        self.store.transition(
            session,
            SessionEvent::Requeue,
            &[
                ("progress", 0.0f64.into()),
                ("token_expires_at", expires.into()),
                (
                    "old_token_hash",
                    keep(old.as_ref().and_then(|s| s.token_hash.clone())),
                ),
                ("old_short_hash", keep(old.and_then(|s| s.short_hash))),
                ("token_hash", token_hash(&link.token).into()),
                ("short_hash", token_hash(&link.short).into()),
            ],
        )?;
        if let Ok(mut links) = self.guests.links.lock() {
            links.insert(session.to_string(), link);
        }
        self.queue.push(session)?;
        Ok(())
    }

    pub fn new_session(&self) -> BoothResult<SessionView> {
        if self.closed() {
            return Err(BoothError::Busy(CLOSED.into()));
        }
        if let Some(free) = crate::sys::free_bytes(&self.cfg.data)
            && free < self.cfg.storage.min_free_mb.saturating_mul(1 << 20)
        {
            self.store
                .audit("disk_low", None, &format!("{} MiB free", free >> 20));
            return Err(BoothError::Busy(
                "The booth's storage is full. Please ask the operator to make room (end of event)."
                    .into(),
            ));
        }
        // One couple at the screen at a time: a session still posing is abandoned.
        for s in self.store.sessions_in(&[
            SessionState::Consent,
            SessionState::Pose,
            SessionState::Review,
        ])? {
            if self
                .store
                .transition(&s.id, SessionEvent::Abandon, &[])?
                .moved()
            {
                self.remove_capture(&s);
                self.store.audit("session_abandoned", Some(&s.id), "");
            }
        }
        let mut id = [0u8; 8];
        rand::rng().fill_bytes(&mut id);
        let id = hex::encode(id);
        self.store.create_session(&id)?;
        self.count("count_started");
        self.view_and_publish(&id)
    }

    /// Adds one to an event counter; a counter the database cannot write is logged, never a
    /// reason to fail the guest's request.
    pub fn count(&self, key: &str) {
        if let Err(e) = self.store.bump(key) {
            tracing::warn!(counter = key, error = %format!("{e:#}"), "cannot count");
        }
    }

    /// Both people agree on screen; `album`: they also agree that the hosts may keep a copy for
    /// the event album (an optional third line, off unless ticked).
    pub fn consent(
        &self,
        id: &str,
        people: i64,
        accepted: bool,
        album: bool,
    ) -> BoothResult<SessionView> {
        let s = self.session(id)?;
        let refused = |from: SessionState| {
            BoothError::Conflict(format!(
                "consent is given before capture; this session is {from}"
            ))
        };
        apply(s.state, SessionEvent::Consent).map_err(|r| refused(r.from))?;
        // Anything but two people agreeing changes nothing: the kiosk cancels a session itself.
        if !accepted || people != 2 {
            return Err(BoothError::BadRequest(
                "Both people must agree before the booth takes a picture.".into(),
            ));
        }
        self.moved(
            id,
            SessionEvent::Consent,
            &[
                ("consent_at", self.store.now_s().into()),
                ("people", people.into()),
                ("album", i64::from(album).into()),
            ],
        )?
        .map_err(|from| refused(from.unwrap_or(s.state)))?;
        self.store.audit("consent_given", Some(id), "people=2");
        self.view_and_publish(id)
    }

    /// Takes a burst, keeps the sharpest frame whose faces pass the gate. Returns the verdict.
    /// Takes `capture.burst` pictures and analyses each: the sharpest that passes the face
    /// gate (its sharpness, picture and analysis), and the last analysis either way.
    #[allow(clippy::type_complexity)]
    fn burst(&self) -> anyhow::Result<(Option<(f32, Arc<RgbImage>, Analysis)>, Option<Analysis>)> {
        let mut best: Option<(f32, Arc<RgbImage>, Analysis)> = None;
        let mut last: Option<Analysis> = None;
        let mut seq = 0;
        for _ in 0..self.cfg.capture.burst {
            let frame = if seq == 0 {
                self.camera.latest()
            } else {
                self.camera.wait_newer(seq, Duration::from_millis(800))
            };
            let Some(frame) = frame.or_else(|| self.camera.latest()) else {
                break;
            };
            seq = frame.seq;
            let a = self
                .studio
                .analyzer
                .lock()
                .map_err(|_| anyhow!("analyzer lock"))?
                .analyze(&frame.image)
                .map_err(anyhow::Error::from)?;
            if a.verdict.ok {
                let sharp = a
                    .quality
                    .iter()
                    .map(|q| q.sharpness)
                    .fold(f32::INFINITY, f32::min);
                if best.as_ref().is_none_or(|b| sharp > b.0) {
                    best = Some((sharp, frame.image.clone(), a.clone()));
                }
            }
            last = Some(a);
        }
        Ok((best, last))
    }

    pub fn capture(&self, id: &str) -> BoothResult<(Verdict, SessionView)> {
        self.ready_to_capture(&self.session(id)?)?;
        let (best, last) = self.burst()?;
        let Some((_, img, analysis)) = best else {
            return self.refuse_capture(id, last);
        };
        self.take_capture(id, &img, &analysis)?;
        self.store.audit("captured", Some(id), "");
        let view = self.view_and_publish(id)?;
        Ok((analysis.verdict, view))
    }

    /// Whether session `s` may take its picture now: consent given, a session that can capture,
    /// and a camera sending pictures.
    fn ready_to_capture(&self, s: &SessionRow) -> BoothResult<()> {
        if s.consent_at.is_none() {
            return Err(BoothError::Conflict(
                "Both people must agree on screen before the booth takes a picture.".into(),
            ));
        }
        if let Err(r) = apply(s.state, SessionEvent::Capture) {
            return Err(BoothError::Conflict(format!(
                "cannot capture: this session is {}",
                r.from
            )));
        }
        if let CameraStatus::Reconnecting { .. } | CameraStatus::Stopped = self.camera.status() {
            return Err(BoothError::Busy(
                "The camera is reconnecting. One moment please.".into(),
            ));
        }
        if self.camera_stalled() {
            return Err(BoothError::Busy(
                "The camera has stopped sending pictures. One moment please.".into(),
            ));
        }
        Ok(())
    }

    /// No picture of the burst passed the gate: records the last one's verdict for the kiosk.
    fn refuse_capture(
        &self,
        id: &str,
        last: Option<Analysis>,
    ) -> BoothResult<(Verdict, SessionView)> {
        let verdict = last.map(|a| a.verdict).ok_or_else(|| {
            BoothError::Busy("No picture from the camera yet. One moment please.".into())
        })?;
        self.store.update(
            id,
            &[(
                "verdict",
                serde_json::to_string(&verdict).unwrap_or_default().into(),
            )],
        )?;
        self.store
            .audit("capture_refused", Some(id), &format!("{:?}", verdict.code));
        self.count("count_refused");
        let view = self.view_and_publish(id)?;
        Ok((verdict, view))
    }

    /// Writes the picture to the session's folder and moves the session on with it and its
    /// faces. Only a session still posing or reviewing takes the picture: a cancel during the
    /// burst wins, and the picture goes.
    fn take_capture(&self, id: &str, img: &RgbImage, analysis: &Analysis) -> BoothResult<()> {
        let dir = self.store.session_dir(id);
        std::fs::create_dir_all(&dir).context("cannot create the session folder")?;
        let jpeg = kissbooth_capture::jpeg_encode(img, 92);
        let path = dir.join("capture.jpg");
        write_atomic(&path, &jpeg)?;
        let faces: Vec<Landmarks> = analysis.faces.iter().map(|f| f.landmarks).collect();
        let taken = self
            .moved(
                id,
                SessionEvent::Capture,
                &[
                    ("capture_path", path.display().to_string().into()),
                    (
                        "faces",
                        serde_json::to_string(&faces).unwrap_or_default().into(),
                    ),
                    (
                        "verdict",
                        serde_json::to_string(&analysis.verdict)
                            .unwrap_or_default()
                            .into(),
                    ),
                ],
            )
            .inspect_err(|_| {
                let _ = std::fs::remove_file(&path);
            })?;
        if let Err(from) = taken {
            let _ = std::fs::remove_file(&path);
            return Err(BoothError::Conflict(format!(
                "cannot capture: this session is {}",
                from.map_or("gone", SessionState::name)
            )));
        }
        Ok(())
    }

    pub fn retake(&self, id: &str) -> BoothResult<SessionView> {
        let s = self.session(id)?;
        self.moved(id, SessionEvent::Retake, &[])?.map_err(|from| {
            BoothError::Conflict(format!(
                "cannot retake: this session is {}",
                from.map_or("gone", SessionState::name)
            ))
        })?;
        self.remove_capture(&s);
        self.view_and_publish(id)
    }

    pub fn cancel(&self, id: &str) -> BoothResult<SessionView> {
        let s = self.session(id)?;
        match s.state {
            SessionState::Queued => {
                self.queue.remove(id)?;
                for (job, _, _) in self
                    .store
                    .unfinished_jobs()?
                    .into_iter()
                    .filter(|(_, s, _)| s == id)
                {
                    self.store
                        .job_finished(job, Some("session cancelled"), 0.0)?;
                }
            }
            SessionState::Rendering => {
                self.queue.cancel_current(id)?;
            }
            _ => {}
        }
        // A session past cancelling (done, failed, deleted...) is answered as it is.
        if self.moved(id, SessionEvent::Cancel, &[])?.is_err() {
            return self.view(id);
        }
        self.remove_capture(&s);
        self.store.audit("session_cancelled", Some(id), "");
        self.view_and_publish(id)
    }

    /// Marks a queued or rendering session failed with the kiosk's message; one that moved on
    /// meanwhile (cancelled, purged) stays as it is.
    fn set_failed(&self, id: &str, message: &str) -> anyhow::Result<()> {
        let t = self.store.transition(
            id,
            SessionEvent::Fail,
            &[("error", message.to_string().into())],
        )?;
        if let Transition::Refused(r) = t {
            tracing::info!(session = %id, state = %r.from, "not marked failed: it moved on");
        } else {
            self.count("count_failed");
        }
        Ok(())
    }

    /// Applies `event` to the session: `Ok(Err(state))` with the state it was in when the state
    /// machine refuses it (`None`: no such session); `Err` when the database cannot record it
    /// (a full disk is an error to report, not a refusal).
    fn moved(
        &self,
        id: &str,
        event: SessionEvent,
        sets: &[(&str, rusqlite::types::Value)],
    ) -> BoothResult<Result<SessionState, Option<SessionState>>> {
        Ok(match self.store.transition(id, event, sets)? {
            Transition::Moved { to, .. } => Ok(to),
            Transition::Refused(r) => Err(Some(r.from)),
            Transition::NoSuchSession => Err(None),
        })
    }

    fn session(&self, id: &str) -> BoothResult<SessionRow> {
        if id.len() > 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(BoothError::NotFound);
        }
        self.store.get(id)?.ok_or(BoothError::NotFound)
    }

    pub fn view(&self, id: &str) -> BoothResult<SessionView> {
        let mut s = self.session(id)?;
        if let Some(msg) = self
            .unsaved_failures
            .lock()
            .ok()
            .and_then(|m| m.get(id).cloned())
        {
            s.state = SessionState::Failed;
            s.error = Some(msg);
        }
        // The link while the clip is on its way or done, and only while the database still
        // holds its hash (deletion and expiry clear it).
        let link = self
            .guests
            .links
            .lock()
            .ok()
            .and_then(|m| m.get(id).cloned())
            .filter(|l| s.token_hash.as_deref() == Some(token_hash(&l.token).as_str()))
            .filter(|_| {
                matches!(
                    s.state,
                    SessionState::Queued | SessionState::Rendering | SessionState::Done
                ) && s.token_expires_at.is_some_and(|t| t > self.store.now_s())
            });
        let queue_position = if s.state == SessionState::Queued {
            self.queue.position(id)
        } else {
            None
        };
        let done = s.state == SessionState::Done && link.is_some();
        let host = self
            .public_base
            .split_once("://")
            .map_or(self.public_base.as_str(), |(_, h)| h);
        Ok(SessionView {
            id: s.id.clone(),
            state: s.state,
            verdict: s
                .verdict
                .as_deref()
                .and_then(|v| serde_json::from_str(v).ok()),
            progress: s.progress,
            queue_position,
            eta_s: self.eta(&s, queue_position),
            download_url: link
                .as_ref()
                .map(|l| format!("{}/d/{}", self.public_base, l.token)),
            short_link: link
                .as_ref()
                .map(|l| format!("{host}/d/{}", short_display(&l.short))),
            downloading: self
                .guests
                .downloads
                .lock()
                .ok()
                .and_then(|d| d.get(id).map(Downloads::now))
                .unwrap_or(0),
            video_url: done.then(|| format!("/api/sessions/{}/video.mp4", s.id)),
            capture_url: s
                .capture_path
                .as_ref()
                .map(|_| format!("/api/sessions/{}/capture.jpg", s.id)),
            error: s.error.clone(),
            expires_at: link.as_ref().and(s.token_expires_at),
            throttle: self.throttle().name(),
            cooling: s.state == SessionState::Queued && self.throttle() == Throttle::Paused,
        })
    }

    fn view_and_publish(&self, id: &str) -> BoothResult<SessionView> {
        let v = self.view(id)?;
        let _ = self
            .events
            .send(json!({"type": "session", "session": v}).to_string());
        Ok(v)
    }

    /// The couple left the kiosk's screens: the kiosk shows nothing of their clip again (no
    /// QR code, no video), while the phones that have the link keep it.
    pub fn release(&self, id: &str) -> BoothResult<SessionView> {
        self.session(id)?;
        if let Ok(mut links) = self.guests.links.lock() {
            links.remove(id);
        }
        self.view(id)
    }

    /// Whether the kiosk may still show this session's clip (its couple has not left).
    pub fn on_kiosk(&self, id: &str) -> bool {
        self.guests.links.lock().is_ok_and(|l| l.contains_key(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kissbooth_capture::CameraSpec;

    #[test]
    fn a_live_camera_silent_for_two_seconds_has_stalled_a_slow_slideshow_has_not() {
        use std::time::SystemTime;
        let live = CameraStatus::Live { fps: 30.0 };
        let now = SystemTime::now();
        let ago = |ms: u64| Some(now - Duration::from_millis(ms));
        let v4l2: CameraSpec = "v4l2:/dev/video0".parse().unwrap();
        let after = stall_after(&v4l2);
        assert_eq!(after, Duration::from_secs(2));
        assert!(!stalled(&live, ago(300), now, after));
        assert!(stalled(&live, ago(2500), now, after));
        // No picture yet, or a camera that says it is reconnecting: not a silent stall.
        assert!(!stalled(&live, None, now, after));
        let lost = CameraStatus::Reconnecting {
            attempt: 1,
            since: now,
            last_error: "unplugged".into(),
        };
        assert!(!stalled(&lost, ago(60_000), now, after));
        // A stills folder showing a picture every 5 s is not stalled between pictures.
        let slides = CameraSpec::Stills {
            folder: "/tmp".into(),
            interval_ms: 5000,
        };
        assert_eq!(stall_after(&slides), Duration::from_secs(15));
        assert!(!stalled(&live, ago(6000), now, stall_after(&slides)));
        assert!(stalled(&live, ago(16_000), now, stall_after(&slides)));
        // A fast one is held to the 2 s.
        let fast = CameraSpec::Stills {
            folder: "/tmp".into(),
            interval_ms: 100,
        };
        assert_eq!(stall_after(&fast), Duration::from_secs(2));
    }

    /// A booth on a temporary data folder (test-pattern camera, no NVML, no sysfs), or None
    /// (said loudly) when the shared models are absent.
    fn booth(test: &str, data: &std::path::Path) -> Option<Arc<Booth>> {
        booth_on(test, data, crate::clock::system())
    }

    fn booth_on(
        test: &str,
        data: &std::path::Path,
        clock: crate::clock::SharedClock,
    ) -> Option<Arc<Booth>> {
        let models = std::env::var_os("KISSBOOTH_MODELS").map(PathBuf::from);
        let Some(models) = models.filter(|m| m.join("pfld-68.onnx").is_file()) else {
            eprintln!("SKIPPED {test}: shared models not found (set KISSBOOTH_MODELS)");
            return None;
        };
        let runtime = kissbooth_engines::runtime::Runtime::init(&Default::default()).unwrap();
        let mut cfg = Config {
            data: data.to_path_buf(),
            camera: "test".parse().unwrap(),
            ..Config::default()
        };
        cfg.thermal.nvml = false;
        cfg.thermal.sysfs_root = data.join("no-sysfs");
        Some(Booth::start_with_clock(cfg, models, runtime, clock).unwrap())
    }

    #[test]
    fn a_cancel_during_the_capture_burst_wins_and_the_picture_goes() {
        let test = "a_cancel_during_the_capture_burst_wins_and_the_picture_goes";
        let models = std::env::var_os("KISSBOOTH_MODELS").map(PathBuf::from);
        let Some(models) = models.filter(|m| m.join("pfld-68.onnx").is_file()) else {
            eprintln!("SKIPPED {test}: shared models not found (set KISSBOOTH_MODELS)");
            return;
        };
        let couple = models.join("../fixtures/faces/couple_1280x720.jpg");
        assert!(couple.is_file(), "{} is missing", couple.display());
        let dir = tempfile::tempdir().unwrap();
        let stills = dir.path().join("stills");
        std::fs::create_dir_all(&stills).unwrap();
        std::fs::copy(&couple, stills.join("couple.jpg")).unwrap();
        let runtime = kissbooth_engines::runtime::Runtime::init(&Default::default()).unwrap();
        let mut cfg = Config {
            data: dir.path().join("data"),
            camera: crate::config::CameraChoice::Spec(CameraSpec::stills(stills.clone())),
            ..Config::default()
        };
        cfg.thermal.nvml = false;
        cfg.thermal.sysfs_root = dir.path().join("no-sysfs");
        let b = Booth::start(cfg, models, runtime).unwrap();
        let t = Instant::now();
        while b.camera.latest().is_none() && t.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(50));
        }
        let id = b.new_session().unwrap().id;
        b.consent(&id, 2, true, false).unwrap();
        // A burst of five frames from a camera giving one every 200 ms, each analysed: the
        // cancel lands in the middle of it.
        let capture = {
            let (b, id) = (b.clone(), id.clone());
            std::thread::spawn(move || b.capture(&id).map(|(verdict, _)| verdict.ok))
        };
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(b.cancel(&id).unwrap().state, SessionState::Cancelled);
        let captured = capture.join().unwrap();
        assert!(
            matches!(captured, Err(BoothError::Conflict(_))),
            "the capture finished after the cancel: {:?}",
            captured.map_err(|e| format!("{e:?}"))
        );
        let s = b.store.get(&id).unwrap().unwrap();
        assert_eq!(
            s.state,
            SessionState::Cancelled,
            "the capture undid the cancel"
        );
        assert_eq!(s.capture_path, None);
        assert!(!b.store.session_dir(&id).join("capture.jpg").exists());
        b.shutdown.trigger();
    }

    /// A finished session with a live link, its folder holding a video.
    fn done_session(b: &Booth, id: &str, age_s: i64) -> String {
        b.store.create_session(id).unwrap();
        let dir = b.store.session_dir(id);
        std::fs::create_dir_all(&dir).unwrap();
        let video = dir.join("video.mp4");
        std::fs::write(&video, b"mp4").unwrap();
        let token = format!("{id:0>32}");
        b.store
            .force_state(
                id,
                SessionState::Done,
                &[
                    ("created_at", (b.store.now_s() - age_s).into()),
                    ("video_path", video.display().to_string().into()),
                    ("token_hash", token_hash(&token).into()),
                    ("token_expires_at", (b.store.now_s() + 3600).into()),
                ],
            )
            .unwrap();
        token
    }

    #[test]
    fn retention_deletes_on_the_clock_and_not_before() {
        let test = "retention_deletes_on_the_clock_and_not_before";
        let data = tempfile::tempdir().unwrap();
        let clock = crate::clock::ManualClock::now();
        let Some(b) = booth_on(test, data.path(), clock.clone()) else {
            return;
        };
        // A finished clip whose link lasts an hour, and a couple who walked away while posing.
        let token = done_session(&b, "0c", 0);
        b.store.create_session("0d").unwrap();
        b.store.force_state("0d", SessionState::Pose, &[]).unwrap();
        assert_eq!(b.purge_expired().unwrap(), 0);

        clock.advance(1800);
        assert_eq!(b.purge_expired().unwrap(), 0, "purged before its time");
        assert!(b.by_token(&token).is_some());
        assert!(b.store.session_dir("0c").join("video.mp4").is_file());

        clock.advance(1801);
        assert_eq!(b.purge_expired().unwrap(), 2);
        for id in ["0c", "0d"] {
            assert_eq!(
                b.store.get(id).unwrap().unwrap().state,
                SessionState::Expired,
                "{id}"
            );
            assert!(!b.store.session_dir(id).exists(), "{id}'s folder is left");
        }
        assert!(b.by_token(&token).is_none(), "an expired link still works");
        b.shutdown.trigger();
    }

    #[test]
    fn a_folder_that_resists_does_not_keep_the_others_at_the_end_of_the_event() {
        let data = tempfile::tempdir().unwrap();
        let Some(b) = booth(
            "a_folder_that_resists_does_not_keep_the_others_at_the_end_of_the_event",
            data.path(),
        ) else {
            return;
        };
        // The older session is purged first; its "folder" is a file, which cannot be removed
        // as a folder.
        let stuck = done_session(&b, "0a", 20);
        let stuck_dir = b.store.session_dir("0a");
        std::fs::remove_dir_all(&stuck_dir).unwrap();
        std::fs::write(&stuck_dir, b"not a folder").unwrap();
        let other = done_session(&b, "0b", 10);
        assert!(b.by_token(&stuck).is_some() && b.by_token(&other).is_some());

        let err = b.purge_all().unwrap_err();
        assert!(format!("{err:#}").contains("cannot delete"), "{err:#}");
        // The later session went all the same, and neither link works any more.
        assert!(!b.store.session_dir("0b").exists());
        assert_eq!(
            b.store.get("0b").unwrap().unwrap().state,
            SessionState::Purged
        );
        assert!(b.by_token(&other).is_none());
        assert!(
            b.by_token(&stuck).is_none(),
            "a link outlived the end of the event"
        );
        b.shutdown.trigger();
    }
}
