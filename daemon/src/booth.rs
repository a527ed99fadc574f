//! The booth: one session state machine per couple, the camera and its live preview with the
//! face gate's verdict, and a bounded render queue worked by one thread so the next couple can
//! pose while the previous clip renders.
//!
//! A session's state is a [`SessionState`] and changes only by an event the state machine in
//! [`crate::session`] allows, applied by [`Store::transition`] against the state it reads:
//! `consent` → `pose` → `review` → `queued` → `rendering` → `done`, or `failed`, `cancelled`,
//! and the ends `expired`, `purged`, `deleted`. Attract, countdown and result are kiosk screens
//! around these.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use image::RgbImage;
use kissbooth_capture::{CameraContext, CameraHandle, CameraSpec, CameraStatus, Shutdown};
use kissbooth_engines::Landmarks;
use kissbooth_engines::diffusion::DiffusionGenerator;
use kissbooth_engines::face::{Analysis, FaceAnalyzer, FaceConfig, Verdict};
use kissbooth_engines::generate::{MeanShape, MorphInputs};
use rand::RngCore;
use serde::Serialize;
use serde_json::json;
use tokio::sync::broadcast;

use crate::config::Config;
use crate::link::{Key, new_short, new_token, short_display};
use crate::pipeline::render_clip;
use crate::session::{SessionEvent, SessionState, apply};
use crate::store::{SessionRow, Store, Transition, now_s, token_hash, write_atomic};
use crate::telemetry::{Readings, Telemetry};
use crate::thermal::{ThermalState, Throttle};

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

/// The settings key of the operator's choice about source captures.
const KEEP_CAPTURES: &str = "keep_captures";

pub struct Booth {
    pub cfg: Config,
    pub store: Store,
    pub camera: CameraHandle,
    pub analyzer: Mutex<FaceAnalyzer>,
    /// The dense face mesh and person segmentation that guide the morph, when installed.
    pub guides: Mutex<kissbooth_engines::generate::GuideModels>,
    /// The identity embedder of the render's self-check, when installed.
    pub judge: Mutex<Option<kissbooth_engines::quality::ClipJudge>>,
    pub shape: Arc<MeanShape>,
    pub events: broadcast::Sender<String>,
    pub preview: RwLock<Preview>,
    pub public_base: String,
    queue: Mutex<VecDeque<String>>,
    queue_cv: Condvar,
    current: Mutex<Option<(String, Arc<AtomicBool>)>>,
    /// Recent render durations (seconds), for the estimate.
    render_times: Mutex<VecDeque<f64>>,
    /// Failures the database could not record yet (session → message): shown as failed at once,
    /// written by the next retention sweep.
    unsaved_failures: Mutex<HashMap<String, String>>,
    pub telemetry: Telemetry,
    /// The thermal thread's latest reading, which `/metrics` and the health page show: the
    /// sensors are read once per poll, not once per request.
    readings: Mutex<Readings>,
    thermal: Mutex<ThermalState>,
    /// The diffusion generator when `render.generator` is `diffusion` and its pack loaded.
    diffusion: Option<Mutex<DiffusionGenerator>>,
    /// The generator clips are made with, and why it is not the configured one.
    pub generator: GeneratorChoice,
    pub shutdown: Shutdown,
    /// The sequence number of the newest preview frame, sent as each one is made: the MJPEG
    /// stream waits on it instead of polling.
    pub preview_made: tokio::sync::watch::Sender<u64>,
    pub started: Instant,
    /// The HTTP server's connections and accept failures, for `/metrics` and `/healthz`.
    pub net: Arc<crate::connections::NetStats>,
    /// The download link of each clip queued since the daemon started (session → link), for
    /// the kiosk's QR code, until the couple leaves the kiosk's screens. The database keeps only
    /// the sha256 of the token and short code, so nobody can read a working link out of it;
    /// after a restart the kiosk shows no QR code for older clips, while the phones that
    /// scanned one keep their link.
    links: Mutex<HashMap<String, KioskLink>>,
    /// The event's settings (admin page), applied to the next session.
    settings: RwLock<crate::settings::EventSettings>,
    /// The branding logo at its placement, when one is uploaded.
    logo: RwLock<Option<Arc<kissbooth_media::Overlay>>>,
    /// Wrong short codes recently typed by phones (see [`crate::link::Guesses`]).
    pub short_guesses: Mutex<crate::link::Guesses>,
    /// Guest downloads in flight, by session, and when the last one moved.
    downloads: Arc<Mutex<HashMap<String, Downloads>>>,
    /// A live camera whose newest picture is older than this has stalled (see [`stall_after`]).
    stall_after: Duration,
    /// The booth's Content Credentials key (`DATA/c2pa`); `None` when it is unusable, and then
    /// clips are published unsigned.
    signer: Option<crate::provenance::BoothSigner>,
}

/// How old the newest picture of a live camera may be before the booth says the camera has
/// stalled: 2 s (a camera sends many pictures a second), or three of a stills folder's
/// intervals when they are longer.
pub fn stall_after(spec: &CameraSpec) -> Duration {
    let floor = Duration::from_secs(2);
    match spec {
        CameraSpec::Stills { interval_ms, .. } => floor.max(Duration::from_millis(3 * interval_ms)),
        _ => floor,
    }
}

/// Whether a camera in `status` whose newest picture was taken at `newest` has stalled by
/// `now`: live but silent for longer than `after`. A reconnecting camera is not stalled: it
/// says so itself.
pub fn stalled(
    status: &CameraStatus,
    newest: Option<std::time::SystemTime>,
    now: std::time::SystemTime,
    after: Duration,
) -> bool {
    matches!(status, CameraStatus::Live { .. })
        && newest.is_some_and(|t| now.duration_since(t).unwrap_or_default() > after)
}

impl Booth {
    /// Whether the camera has stopped sending pictures without saying why.
    pub fn camera_stalled(&self) -> bool {
        stalled(
            &self.camera.status(),
            self.camera.latest().map(|f| f.captured_at),
            std::time::SystemTime::now(),
            self.stall_after,
        )
    }

    pub fn start(
        cfg: Config,
        models: PathBuf,
        runtime: &'static kissbooth_engines::runtime::Runtime,
    ) -> anyhow::Result<Arc<Booth>> {
        cfg.validate()?;
        let store = Store::open(&cfg.data)?;
        let shape = crate::pipeline::mean_shape(&models)?;
        let analyzer = FaceAnalyzer::open(runtime, &models, FaceConfig::default())
            .context("cannot load the face models")?;
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
        let (diffusion, generator) = load_generator(&cfg, runtime);
        let (events, _) = broadcast::channel(256);
        let telemetry = Telemetry::open(&cfg.thermal.sysfs_root, cfg.thermal.nvml);
        // One line whatever the log filter, like the "serving on" line.
        eprintln!("kissbooth: telemetry source: {}", telemetry.describe());
        let readings = telemetry.read();
        let hottest = readings.hottest();
        let thermal = Mutex::new(ThermalState {
            throttle: crate::thermal::next(Throttle::Normal, hottest, &cfg.thermal),
            hottest_c: hottest,
            source: telemetry.source().name(),
            soft_limit_c: cfg.thermal.soft_limit_c,
            hard_limit_c: cfg.thermal.hard_limit_c,
        });
        let settings = crate::settings::EventSettings::load(&store, &cfg);
        let signer = open_signer(&cfg.data, &store);
        let booth = Arc::new(Booth {
            logo: RwLock::new(load_logo(&cfg.data, &settings)),
            settings: RwLock::new(settings),
            diffusion,
            generator,
            store,
            camera,
            analyzer: Mutex::new(analyzer),
            guides: Mutex::new(kissbooth_engines::generate::GuideModels::open(
                runtime, &models,
            )),
            judge: Mutex::new(open_judge(runtime, &models)),
            shape: Arc::new(shape),
            events,
            preview: RwLock::new(Preview {
                camera: spec.to_string(),
                ..Preview::default()
            }),
            public_base,
            queue: Mutex::new(VecDeque::new()),
            queue_cv: Condvar::new(),
            current: Mutex::new(None),
            render_times: Mutex::new(VecDeque::new()),
            unsaved_failures: Mutex::new(HashMap::new()),
            telemetry,
            readings: Mutex::new(readings),
            thermal,
            shutdown,
            preview_made: tokio::sync::watch::channel(0).0,
            started: Instant::now(),
            net: Arc::default(),
            links: Mutex::new(HashMap::new()),
            downloads: Arc::default(),
            short_guesses: Mutex::default(),
            stall_after: stall_after(&spec),
            signer,
            cfg,
        });
        booth.recover()?;
        // The render worker waits on the queue's condition variable: shutdown wakes it there.
        let weak = Arc::downgrade(&booth);
        booth.shutdown.on_trigger(move || {
            if let Some(b) = weak.upgrade() {
                let _queue = b.queue.lock();
                b.queue_cv.notify_all();
            }
        });
        // Expired captures and videos go at boot, before anything is served. Their links are
        // dead already (expiry), so a folder that resists is retried by the sweep rather than
        // keeping the booth down all night.
        if let Err(e) = booth.purge_expired() {
            eprintln!("kissbooth: retention purge at start: {e:#}");
            tracing::error!(error = %format!("{e:#}"), "retention purge at start failed");
        }
        let b = booth.clone();
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
        let b = booth.clone();
        std::thread::Builder::new()
            .name("thermal".into())
            .spawn(move || {
                let every = Duration::from_millis(b.cfg.thermal.poll_ms);
                while !b.shutdown.wait_timeout(every) {
                    b.thermal_tick();
                }
            })?;
        let b = booth.clone();
        std::thread::Builder::new()
            .name("render".into())
            .spawn(move || b.render_worker())?;
        let b = booth.clone();
        std::thread::Builder::new()
            .name("preview".into())
            .spawn(move || b.preview_loop())?;
        Ok(booth)
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
                self.store
                    .job_finished(job, Some("interrupted by a restart; retried"), 0.0)?;
                let new_job = self.store.enqueue_job(&session)?;
                self.store.audit(
                    "job_requeued",
                    Some(&session),
                    &format!("job {job} -> {new_job}"),
                );
                // The kiosk lost the link with the restart: it gets a new one to show, and the
                // phones that scanned the old one keep it.
                let link = KioskLink {
                    token: new_token(),
                    short: self.unused_short()?,
                };
                let old = self.store.get(&session)?;
                let keep = |h: Option<String>| h.map_or(rusqlite::types::Value::Null, Into::into);
                let p = &self.cfg.privacy;
                let expires = old
                    .as_ref()
                    .and_then(|s| s.token_expires_at)
                    .unwrap_or_else(|| {
                        let created = old.as_ref().map_or(now_s(), |s| s.created_at);
                        (now_s() + (p.token_ttl_hours * 3600.0).ceil() as i64)
                            .min(created + (self.settings().retention_hours * 3600.0) as i64)
                    });
                self.store.transition(
                    &session,
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
                if let Ok(mut links) = self.links.lock() {
                    links.insert(session.clone(), link);
                }
                self.queue
                    .lock()
                    .map_err(|_| anyhow!("queue lock"))?
                    .push_back(session);
            }
        }
        // A session whose job ended but whose own row was not updated (an error in between)
        // would wait for ever: it failed.
        let queued = self
            .queue
            .lock()
            .map_err(|_| anyhow!("queue lock"))?
            .clone();
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

    /// One thermal reading: updates the throttling state, and on a change tells the kiosk, the
    /// waiting sessions and the render worker.
    fn thermal_tick(&self) {
        let readings = self.telemetry.read();
        let hottest = readings.hottest();
        if let Ok(mut r) = self.readings.lock() {
            *r = readings;
        }
        let (prev, now) = {
            let Ok(mut t) = self.thermal.lock() else {
                return;
            };
            let prev = t.throttle;
            t.throttle = crate::thermal::next(prev, hottest, &self.cfg.thermal);
            t.hottest_c = hottest;
            (prev, t.throttle)
        };
        if prev == now {
            return;
        }
        let detail = format!(
            "{} -> {} at {}",
            prev.name(),
            now.name(),
            hottest.map_or("no reading".to_string(), |t| format!("{t:.1} °C"))
        );
        tracing::warn!("thermal throttling {detail}");
        self.store.audit("thermal", None, &detail);
        let _ = self
            .events
            .send(json!({"type": "thermal", "thermal": self.thermal_state()}).to_string());
        let _ = self
            .events
            .send(json!({"type": "status", "status": self.status_json()}).to_string());
        {
            // Under the queue's lock, so the render worker cannot miss it between checking
            // the throttle and waiting.
            let _queue = self.queue.lock();
            self.queue_cv.notify_all();
        }
        let waiting = self.queue.lock().map(|q| q.clone()).unwrap_or_default();
        for id in waiting {
            let _ = self.view_and_publish(&id);
        }
    }

    /// The latest telemetry reading (taken every `thermal.poll_ms`).
    pub fn readings(&self) -> Readings {
        self.readings.lock().map(|r| r.clone()).unwrap_or_default()
    }

    pub fn thermal_state(&self) -> Option<ThermalState> {
        self.thermal.lock().ok().map(|t| t.clone())
    }

    fn throttle(&self) -> Throttle {
        self.thermal
            .lock()
            .map(|t| t.throttle)
            .unwrap_or(Throttle::Normal)
    }

    /// Writes failures the database refused earlier; kept in memory until it takes them.
    fn save_failures(&self) {
        let pending: Vec<(String, String)> = match self.unsaved_failures.lock() {
            Ok(m) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            Err(_) => return,
        };
        for (id, msg) in pending {
            if self.set_failed(&id, &msg).is_ok() {
                if let Ok(mut m) = self.unsaved_failures.lock() {
                    m.remove(&id);
                }
                tracing::warn!(session = %id, "failure recorded in the database");
            }
        }
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

    /// The finished clips whose couples agreed to the hosts' album, oldest first.
    pub fn album(&self) -> anyhow::Result<Vec<crate::album::Entry>> {
        let mut done: Vec<SessionRow> = self
            .store
            .sessions_in(&[SessionState::Done])?
            .into_iter()
            .filter(|s| s.album)
            .collect();
        done.sort_by_key(|s| s.created_at);
        Ok(done
            .into_iter()
            .filter_map(|s| {
                let path = PathBuf::from(s.video_path?);
                path.is_file().then(|| crate::album::Entry {
                    name: format!(
                        "kissbooth-{}-{}.mp4",
                        crate::sys::local_stamp(s.created_at),
                        &s.id[..s.id.len().min(6)]
                    ),
                    path,
                    created_unix_s: s.created_at,
                })
            })
            .collect())
    }

    /// The event's settings now.
    pub fn settings(&self) -> crate::settings::EventSettings {
        self.settings.read().map(|s| s.clone()).unwrap_or_default()
    }

    /// Checks and saves the event's settings; the next session uses them, the kiosk hears of
    /// them at once.
    pub fn set_settings(&self, new: crate::settings::EventSettings) -> anyhow::Result<()> {
        new.save(&self.store)?;
        *self.logo.write().map_err(|_| anyhow!("logo lock"))? = load_logo(&self.cfg.data, &new);
        *self
            .settings
            .write()
            .map_err(|_| anyhow!("settings lock"))? = new;
        self.store.audit("settings_changed", None, "");
        let _ = self
            .events
            .send(json!({"type": "status", "status": self.status_json()}).to_string());
        Ok(())
    }

    /// Takes an uploaded branding logo (a PNG, checked as the encoder will use it), or removes
    /// it (`None`). Written atomically; the next clip carries it.
    pub fn set_logo(&self, png: Option<&[u8]>) -> anyhow::Result<()> {
        let path = crate::settings::logo_path(&self.cfg.data);
        match png {
            Some(bytes) => {
                kissbooth_media::Overlay::from_png_bytes(
                    bytes,
                    std::path::Path::new("logo.png"),
                    self.settings().branding.placement(),
                )?;
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                write_atomic(&path, bytes)?;
                self.store
                    .audit("logo_uploaded", None, &format!("{} bytes", bytes.len()));
            }
            None => {
                if path.exists() {
                    std::fs::remove_file(&path)?;
                }
                self.store.audit("logo_removed", None, "");
            }
        }
        *self.logo.write().map_err(|_| anyhow!("logo lock"))? =
            load_logo(&self.cfg.data, &self.settings());
        Ok(())
    }

    /// The branding logo now, if any.
    pub fn logo(&self) -> Option<Arc<kissbooth_media::Overlay>> {
        self.logo.read().ok().and_then(|l| l.clone())
    }

    /// Whether the operator closed the booth (no new sessions; nothing is deleted).
    pub fn closed(&self) -> bool {
        matches!(self.store.setting(CLOSED_KEY), Ok(Some(v)) if v == "1")
    }

    /// Closes the booth (no new sessions; the couples at the screen and the clips being made
    /// finish) or opens it again. The kiosk hears of it at once.
    pub fn set_closed(&self, closed: bool) -> anyhow::Result<()> {
        self.store
            .set_setting(CLOSED_KEY, if closed { "1" } else { "0" }, false)?;
        self.store.audit(
            if closed {
                "booth_closed"
            } else {
                "booth_opened"
            },
            None,
            "",
        );
        let _ = self
            .events
            .send(json!({"type": "status", "status": self.status_json()}).to_string());
        Ok(())
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
                ("consent_at", now_s().into()),
                ("people", people.into()),
                ("album", i64::from(album).into()),
            ],
        )?
        .map_err(|from| refused(from.unwrap_or(s.state)))?;
        self.store.audit("consent_given", Some(id), "people=2");
        self.view_and_publish(id)
    }

    /// Takes a burst, keeps the sharpest frame whose faces pass the gate. Returns the verdict.
    pub fn capture(&self, id: &str) -> BoothResult<(Verdict, SessionView)> {
        let s = self.session(id)?;
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
        let Some((_, img, analysis)) = best else {
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
            return Ok((verdict, view));
        };
        let dir = self.store.session_dir(id);
        std::fs::create_dir_all(&dir).context("cannot create the session folder")?;
        let jpeg = kissbooth_capture::jpeg_encode(&img, 92);
        let path = dir.join("capture.jpg");
        write_atomic(&path, &jpeg)?;
        let faces: Vec<Landmarks> = analysis.faces.iter().map(|f| f.landmarks).collect();
        // Only a session still posing or reviewing takes the picture: a cancel during the burst
        // wins, and the picture goes.
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
        self.store.audit("captured", Some(id), "");
        let view = self.view_and_publish(id)?;
        Ok((analysis.verdict, view))
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
                self.queue
                    .lock()
                    .map_err(|_| anyhow!("queue lock"))?
                    .retain(|q| q != id);
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
                if let Some((cur, flag)) =
                    self.current.lock().map_err(|_| anyhow!("lock"))?.as_ref()
                    && cur == id
                {
                    flag.store(true, Ordering::Relaxed);
                }
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

    /// Queues the render. A full queue asks the couple to wait rather than losing them.
    pub fn render(&self, id: &str) -> BoothResult<SessionView> {
        let s = self.session(id)?;
        let refused = |from: SessionState| {
            BoothError::Conflict(format!(
                "render follows a good capture; this session is {from}"
            ))
        };
        apply(s.state, SessionEvent::Queue).map_err(|r| refused(r.from))?;
        {
            let mut q = self.queue.lock().map_err(|_| anyhow!("queue lock"))?;
            if q.len() >= self.cfg.render.queue {
                return Err(BoothError::Busy(
                    "The booth is busy making other videos. Please try again in a minute.".into(),
                ));
            }
            // The link exists from now: the couple can scan it while the clip is made and watch
            // it on the phone when it is done. It ends with the token's time or when the video
            // is deleted (retention counts from the session's start), whichever comes first.
            let link = KioskLink {
                token: new_token(),
                short: self.unused_short()?,
            };
            let p = &self.cfg.privacy;
            let expires = (now_s() + (p.token_ttl_hours * 3600.0).ceil() as i64)
                .min(s.created_at + (self.settings().retention_hours * 3600.0) as i64);
            self.moved(
                id,
                SessionEvent::Queue,
                &[
                    ("progress", 0.0f64.into()),
                    ("token_hash", token_hash(&link.token).into()),
                    ("short_hash", token_hash(&link.short).into()),
                    ("token_expires_at", expires.into()),
                ],
            )?
            .map_err(|from| refused(from.unwrap_or(s.state)))?;
            if let Ok(mut links) = self.links.lock() {
                links.insert(id.to_string(), link);
            }
            if let Err(e) = self.store.enqueue_job(id) {
                let _ = self.set_failed(id, RENDER_FAILED);
                return Err(e.into());
            }
            q.push_back(id.to_string());
        }
        self.queue_cv.notify_one();
        self.store.audit("render_queued", Some(id), "");
        self.view_and_publish(id)
    }

    fn render_worker(self: Arc<Self>) {
        loop {
            let id = {
                let Ok(mut q) = self.queue.lock() else { return };
                loop {
                    if self.shutdown.is_triggered() {
                        return;
                    }
                    // Above the hard limit new renders wait in the queue until the booth cools.
                    if self.throttle() != Throttle::Paused
                        && let Some(id) = q.pop_front()
                    {
                        break id;
                    }
                    // Woken by a new job, a change of the thermal state and shutdown, each
                    // notified under the queue's lock.
                    q = match self.queue_cv.wait(q) {
                        Ok(q) => q,
                        Err(_) => return,
                    };
                }
            };
            let mut job = None;
            let mut produced = Vec::new();
            if let Err(e) = self.render_one(&id, &mut job, &mut produced) {
                self.render_error(&id, job, &produced, &e);
            }
            crate::sys::trim_heap();
            // Positions of the others moved.
            for q in self.queue.lock().map(|q| q.clone()).unwrap_or_default() {
                let _ = self.view_and_publish(&q);
            }
        }
    }

    /// Any error on the way from the queue to a finished session: the job and the session are
    /// marked failed with the kiosk's message and files made for it are removed, so nothing
    /// is left "rendering". When the database refuses even that, the failure is kept in memory
    /// (the kiosk sees it at once) and written by the next retention sweep.
    fn render_error(&self, id: &str, job: Option<i64>, produced: &[PathBuf], e: &anyhow::Error) {
        let msg = format!("{e:#}");
        tracing::error!(session = %id, error = %msg, "render failed");
        if let Ok(mut c) = self.current.lock() {
            *c = None;
        }
        for p in produced {
            let _ = std::fs::remove_file(p);
        }
        if let Some(job) = job
            && let Err(e2) = self.store.job_finished(job, Some(&msg), 0.0)
        {
            tracing::error!(job, error = %format!("{e2:#}"), "cannot record the failed job");
        }
        let cleared = [
            ("progress", 0.0f64.into()),
            ("video_path", rusqlite::types::Value::Null),
            ("poster_path", rusqlite::types::Value::Null),
        ];
        let saved = self
            .store
            .update(id, &cleared)
            .and_then(|()| self.set_failed(id, RENDER_FAILED));
        if let Err(e2) = saved {
            tracing::error!(session = %id, error = %format!("{e2:#}"), "cannot record the failed render; kept until the database takes it");
            if let Ok(mut m) = self.unsaved_failures.lock() {
                m.insert(id.to_string(), RENDER_FAILED.to_string());
            }
        }
        self.store.audit("render_failed", Some(id), &msg);
        let _ = self.view_and_publish(id);
    }

    fn render_one(
        &self,
        id: &str,
        job_out: &mut Option<i64>,
        produced: &mut Vec<PathBuf>,
    ) -> anyhow::Result<()> {
        let Some(s) = self.store.get(id)? else {
            return Ok(());
        };
        let job = self
            .store
            .unfinished_jobs()?
            .into_iter()
            .find(|(_, sid, _)| sid == id)
            .map(|(j, _, _)| j);
        if s.state != SessionState::Queued {
            // Cancelled or purged while it waited.
            if let Some(job) = job {
                self.store
                    .job_finished(job, Some(&format!("session {}", s.state)), 0.0)?;
            }
            return Ok(());
        }
        let Some(job) = job else {
            anyhow::bail!("no render job for this session");
        };
        *job_out = Some(job);
        // Only a session still queued starts: a cancel since the read above wins.
        if !self.store.transition(id, SessionEvent::Start, &[])?.moved() {
            self.store
                .job_finished(job, Some("session left the queue"), 0.0)?;
            return Ok(());
        }
        self.store.job_started(job)?;
        let _ = self.view_and_publish(id);
        let cancel = Arc::new(AtomicBool::new(false));
        *self.current.lock().map_err(|_| anyhow!("lock"))? = Some((id.to_string(), cancel.clone()));
        let t = Instant::now();
        let result = self.render_files(&s, &cancel);
        *self.current.lock().map_err(|_| anyhow!("lock"))? = None;
        let secs = t.elapsed().as_secs_f64();
        match result {
            Ok((video, poster)) => {
                produced.push(video.clone());
                produced.push(poster.clone());
                // Published only while the session is still rendering: a cancel or the end of
                // the event during the last frames must not bring the clip back to life.
                let published = !cancel.load(Ordering::Relaxed)
                    && self
                        .store
                        .transition(
                            id,
                            SessionEvent::Finish,
                            &[
                                ("progress", 1.0f64.into()),
                                ("video_path", video.display().to_string().into()),
                                ("poster_path", poster.display().to_string().into()),
                            ],
                        )?
                        .moved();
                if !published {
                    for p in produced.drain(..) {
                        let _ = std::fs::remove_file(p);
                    }
                    self.store.job_finished(
                        job,
                        Some("session cancelled while rendering"),
                        secs * 1000.0,
                    )?;
                    self.store
                        .audit("render_discarded", Some(id), "session moved on");
                    let _ = self.view_and_publish(id);
                    return Ok(());
                }
                produced.clear();
                if let Err(e) = self.store.job_finished(job, None, secs * 1000.0) {
                    // The video is done and served; only the job's bookkeeping is behind.
                    tracing::error!(job, error = %format!("{e:#}"), "cannot record the finished job");
                }
                // The source capture is not needed once the video exists, unless the operator
                // keeps captures (retention still deletes them).
                if !self.keep_captures() {
                    self.remove_capture(&s);
                }
                if let Ok(mut rt) = self.render_times.lock() {
                    rt.push_back(secs);
                    while rt.len() > 10 {
                        rt.pop_front();
                    }
                }
                self.store
                    .audit("render_done", Some(id), &format!("{secs:.1}s"));
                self.count("count_completed");
            }
            Err(e) => {
                let msg = format!("{e:#}");
                self.store.job_finished(job, Some(&msg), secs * 1000.0)?;
                let cancelled = cancel.load(Ordering::Relaxed);
                if cancelled {
                    // Unless the end of the event purged it meanwhile.
                    self.store.transition(id, SessionEvent::Cancel, &[])?;
                } else {
                    self.set_failed(id, RENDER_FAILED)?;
                }
                self.store.audit("render_failed", Some(id), &msg);
            }
        }
        let _ = self.view_and_publish(id);
        Ok(())
    }

    fn render_files(
        &self,
        s: &SessionRow,
        cancel: &AtomicBool,
    ) -> anyhow::Result<(PathBuf, PathBuf)> {
        let capture = s.capture_path.as_deref().context("no capture to render")?;
        let img = kissbooth_engines::face::image_io::load_rgb(std::path::Path::new(capture))?;
        let faces: Vec<Landmarks> = serde_json::from_str(s.faces.as_deref().unwrap_or("[]"))?;
        let [a, b] = faces.as_slice() else {
            anyhow::bail!("the capture does not hold two faces")
        };
        let guides = self
            .guides
            .lock()
            .map_err(|_| anyhow!("guide models lock"))?
            .guides([&img, &img], [a, b]);
        let inputs = MorphInputs::Couple {
            frame: img,
            faces: [*a, *b],
        };
        let r = &self.cfg.render;
        let event = self.settings();
        // The operator's shape; the configured size when it is of that shape.
        let (w, h) = if event.shape == crate::settings::Shape::of(r.width, r.height) {
            (r.width, r.height)
        } else {
            event.shape.size()
        };
        let throttle = self.throttle();
        let (width, height) = crate::thermal::render_size(w, h, throttle, &self.cfg.thermal);
        if throttle != Throttle::Normal {
            self.store.audit(
                "render_reduced",
                Some(&s.id),
                &format!("{width}x{height} instead of {w}x{h}"),
            );
        }
        let mut settings = r.clip_settings(seed_of(&s.id), Some(s.created_at));
        settings.morph.width = width;
        settings.morph.height = height;
        settings.timeline.seconds = event.clip_seconds;
        settings.overlay = self.logo.read().ok().and_then(|l| l.clone());
        settings.title = crate::title::title(&event.event_name, width, height)
            .and_then(|l| {
                kissbooth_media::Overlay::from_rgba(l, kissbooth_media::Placement::Full).ok()
            })
            .map(Arc::new);
        let out = self.store.session_dir(&s.id).join("video.mp4");
        let mut last_pub = Instant::now();
        let id = s.id.clone();
        let mut on_frame = |done: usize, total: usize| -> anyhow::Result<()> {
            if last_pub.elapsed() > Duration::from_millis(250) || done == total {
                last_pub = Instant::now();
                let p = done as f64 / total.max(1) as f64;
                self.store.update(&id, &[("progress", p.into())])?;
                let _ = self.view_and_publish(&id);
            }
            Ok(())
        };
        let mut report = match (&self.diffusion, inputs) {
            (Some(g), MorphInputs::Couple { frame, faces }) => {
                let mut g = g.lock().map_err(|_| anyhow!("diffusion generator lock"))?;
                crate::pipeline::render_diffusion_clip(
                    &settings,
                    &self.shape,
                    &mut g,
                    &frame,
                    &faces,
                    &out,
                    &mut on_frame,
                    cancel,
                )?
            }
            (_, inputs) => {
                let mut judge = self.judge.lock().map_err(|_| anyhow!("self-check lock"))?;
                let check = match judge.as_mut() {
                    Some(j) => {
                        let frame = inputs.frame(0);
                        let [a, b] = inputs.faces();
                        let refs = j.references([frame, frame], [a, b])?;
                        Some(crate::pipeline::SelfCheck { judge: j, refs })
                    }
                    None => None,
                };
                render_clip(
                    &settings,
                    &self.shape,
                    inputs,
                    &guides,
                    &out,
                    &mut on_frame,
                    cancel,
                    check,
                )?
            }
        };
        self.store
            .audit("render_generator", Some(&s.id), &report.generator);
        self.sign(&s.id, &mut report);
        Ok((report.output, report.poster))
    }

    /// Adds the booth's Content Credentials to a finished clip before it is published. A clip
    /// that cannot be signed is still published, unsigned (the visible mark and the metadata tag
    /// say it is AI-generated): the error goes to the log and the audit, never silently.
    fn sign(&self, id: &str, report: &mut crate::pipeline::RenderReport) {
        let Some(signer) = &self.signer else {
            tracing::warn!(session = %id, "no usable signing key: the clip is published without Content Credentials");
            return;
        };
        match crate::pipeline::sign_clip(signer, report) {
            Ok(()) => tracing::info!(session = %id, ms = report.ms.sign, "clip signed"),
            Err(e) => {
                let msg = format!("{e:#}");
                tracing::error!(session = %id, error = %msg, "cannot add Content Credentials: the clip is published without them");
                self.store.audit("c2pa_sign_failed", Some(id), &msg);
            }
        }
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

    /// Whether source captures are kept after their video is done: the admin page's choice
    /// when one was made, else `privacy.keep_captures`.
    pub fn keep_captures(&self) -> bool {
        match self.store.setting(KEEP_CAPTURES).ok().flatten().as_deref() {
            Some("true") => true,
            Some("false") => false,
            _ => self.cfg.privacy.keep_captures,
        }
    }

    /// Records the operator's choice about keeping source captures.
    pub fn set_keep_captures(&self, keep: bool) -> anyhow::Result<()> {
        self.store
            .set_setting(KEEP_CAPTURES, if keep { "true" } else { "false" }, false)?;
        self.store.audit(
            "keep_captures_changed",
            None,
            if keep { "kept" } else { "deleted when done" },
        );
        Ok(())
    }

    fn remove_capture(&self, s: &SessionRow) {
        if let Some(p) = &s.capture_path {
            let _ = std::fs::remove_file(p);
            let _ = self
                .store
                .update(&s.id, &[("capture_path", rusqlite::types::Value::Null)]);
        }
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
            .links
            .lock()
            .ok()
            .and_then(|m| m.get(id).cloned())
            .filter(|l| s.token_hash.as_deref() == Some(token_hash(&l.token).as_str()))
            .filter(|_| {
                matches!(
                    s.state,
                    SessionState::Queued | SessionState::Rendering | SessionState::Done
                ) && s.token_expires_at.is_some_and(|t| t > now_s())
            });
        let queue_position = if s.state == SessionState::Queued {
            self.queue
                .lock()
                .ok()
                .and_then(|q| q.iter().position(|x| x == id))
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

    fn eta(&self, s: &SessionRow, position: Option<usize>) -> Option<f64> {
        let per_clip = self
            .render_times
            .lock()
            .ok()
            .and_then(|rt| {
                if rt.is_empty() {
                    None
                } else {
                    Some(rt.iter().sum::<f64>() / rt.len() as f64)
                }
            })
            .unwrap_or(f64::from(self.settings().clip_seconds) * 0.5 + 1.0);
        match s.state {
            SessionState::Rendering => Some(per_clip * (1.0 - s.progress).max(0.0)),
            // How long cooling takes is not known: no estimate rather than a wrong one.
            SessionState::Queued if self.throttle() == Throttle::Paused => None,
            SessionState::Queued => Some(
                per_clip * (position.unwrap_or(0) as f64 + 1.0) + self.current_remaining(per_clip),
            ),
            _ => None,
        }
    }

    fn current_remaining(&self, per_clip: f64) -> f64 {
        let cur = self
            .current
            .lock()
            .ok()
            .and_then(|c| c.as_ref().map(|(id, _)| id.clone()));
        cur.and_then(|id| self.store.get(&id).ok().flatten())
            .map(|s| per_clip * (1.0 - s.progress))
            .unwrap_or(0.0)
    }

    fn view_and_publish(&self, id: &str) -> BoothResult<SessionView> {
        let v = self.view(id)?;
        let _ = self
            .events
            .send(json!({"type": "session", "session": v}).to_string());
        Ok(v)
    }

    /// Download by token: the session when the token is known, unexpired and its video exists.
    pub fn by_token(&self, token: &str) -> Option<SessionRow> {
        live_session(&self.store, token)
    }

    /// The session a guest's link names (its token or short code), in any state, while the
    /// link has not expired: the phone page says what became of the clip.
    pub fn by_link(&self, key: &Key) -> Option<SessionRow> {
        let s = self.store.by_link(key).ok().flatten()?;
        s.token_expires_at.is_some_and(|t| t > now_s()).then_some(s)
    }

    /// A short code not in use (40 random bits rarely meet, but a clash would fail the queue).
    fn unused_short(&self) -> anyhow::Result<String> {
        for _ in 0..8 {
            let c = new_short();
            if self.store.by_short(&c)?.is_none() {
                return Ok(c);
            }
        }
        anyhow::bail!("no free short code")
    }

    /// The couple left the kiosk's screens: the kiosk shows nothing of their clip again (no
    /// QR code, no video), while the phones that have the link keep it.
    pub fn release(&self, id: &str) -> BoothResult<SessionView> {
        self.session(id)?;
        if let Ok(mut links) = self.links.lock() {
            links.remove(id);
        }
        self.view(id)
    }

    /// Whether the kiosk may still show this session's clip (its couple has not left).
    pub fn on_kiosk(&self, id: &str) -> bool {
        self.links.lock().is_ok_and(|l| l.contains_key(id))
    }

    /// Counts a guest download of `id` in flight until the guard is dropped (the kiosk keeps
    /// the result screen up meanwhile).
    pub fn downloading(&self, id: &str) -> DownloadGuard {
        if let Ok(mut d) = self.downloads.lock() {
            d.retain(|_, x| x.now() > 0);
            let x = d.entry(id.to_string()).or_insert(Downloads {
                in_flight: 0,
                last: Instant::now(),
            });
            x.in_flight += 1;
            x.last = Instant::now();
        }
        DownloadGuard {
            downloads: self.downloads.clone(),
            id: id.to_string(),
        }
    }

    /// Whether `token` was the link to a clip that one of the couple deleted (and the link would
    /// still be valid otherwise): the other's phone then says so instead of "expired".
    pub fn deleted_by_guests(&self, key: &Key) -> bool {
        self.by_link(key)
            .is_some_and(|s| s.state == SessionState::Deleted)
    }

    /// "Delete my video": removes the files and the link at once, as retention would.
    pub fn delete_by_link(&self, key: &Key) -> bool {
        let Some(s) = self.by_link(key).filter(|s| s.state == SessionState::Done) else {
            return false;
        };
        if let Err(e) = self.purge(&s, SessionEvent::Delete) {
            // The link is revoked all the same; the retention sweep retries the files.
            tracing::error!(session = %s.id, error = %format!("{e:#}"), "cannot delete the guest's files");
        }
        self.store.audit("deleted_by_guest", Some(&s.id), "");
        true
    }

    /// Deletes the media of sessions older than the retention period, and of sessions abandoned
    /// while posing for over an hour. Returns how many sessions were purged.
    pub fn purge_expired(&self) -> anyhow::Result<usize> {
        let now = now_s();
        let keep = (self.settings().retention_hours * 3600.0) as i64;
        let due: Vec<SessionRow> = self
            .store
            .sessions_in(&[
                SessionState::Consent,
                SessionState::Pose,
                SessionState::Review,
                SessionState::Done,
                SessionState::Failed,
                SessionState::Cancelled,
            ])?
            .into_iter()
            .filter(|s| {
                let expired =
                    s.created_at + keep <= now || s.token_expires_at.is_some_and(|t| t <= now);
                let abandoned = s.state.at_the_screen() && s.updated_at + 3600 <= now;
                expired || abandoned
            })
            .collect();
        let (n, failed) = self.purge_each(&due, SessionEvent::Expire);
        self.store.forget_deleted_tokens(now)?;
        if n > 0 {
            self.store
                .audit("retention_purge", None, &format!("{n} session(s)"));
        }
        failed.map_or(Ok(n), Err)
    }

    /// "End of event": every capture and video is deleted now, and every link stops working.
    /// Renders in progress are stopped.
    pub fn purge_all(&self) -> anyhow::Result<usize> {
        self.queue
            .lock()
            .map_err(|_| anyhow!("queue lock"))?
            .clear();
        if let Some((_, flag)) = self.current.lock().map_err(|_| anyhow!("lock"))?.as_ref() {
            flag.store(true, Ordering::Relaxed);
        }
        let live: Vec<SessionState> = SessionState::ALL
            .into_iter()
            .filter(|s| !s.is_end())
            .collect();
        let all = self.store.sessions_in(&live)?;
        let (n, failed) = self.purge_each(&all, SessionEvent::Purge);
        self.store.forget_deleted_tokens(i64::MAX)?;
        self.store.audit(
            "end_of_event",
            None,
            &format!("{n} of {} session(s)", all.len()),
        );
        failed.map_or(Ok(n), Err)
    }

    /// "End of event": closes the booth, deletes every capture and video ([`Booth::purge_all`])
    /// and starts the counters again. Returns how many sessions were purged and the ended
    /// event's counters.
    pub fn end_event(&self) -> anyhow::Result<(usize, Vec<crate::store::Counter>)> {
        self.set_closed(true)?;
        let counts = self.store.counters().unwrap_or_default();
        let n = self.purge_all()?;
        self.store.reset_counters()?;
        Ok((n, counts))
    }

    /// Purges each session: one whose files resist does not keep the others' (it is logged,
    /// and the first error comes back after all were tried). Returns how many were purged.
    fn purge_each(
        &self,
        sessions: &[SessionRow],
        event: SessionEvent,
    ) -> (usize, Option<anyhow::Error>) {
        let mut n = 0;
        let mut first = None;
        for s in sessions {
            match self.purge(s, event) {
                Ok(()) => n += 1,
                Err(e) => {
                    tracing::error!(session = %s.id, error = %format!("{e:#}"), "cannot purge");
                    first.get_or_insert(e);
                }
            }
        }
        (n, first)
    }

    /// Deletes a session's files and link, and moves it by `event` (expire, purge, delete).
    fn purge(&self, s: &SessionRow, event: SessionEvent) -> anyhow::Result<()> {
        if let Ok(mut links) = self.links.lock() {
            links.remove(&s.id);
        }
        let dir = self.store.session_dir(&s.id);
        if dir.exists()
            && let Err(e) = std::fs::remove_dir_all(&dir)
        {
            // The link stops working even while the files resist; the next sweep retries them.
            let _ = self.store.update(&s.id, &crate::store::links_cleared());
            return Err(e).with_context(|| format!("cannot delete {}", dir.display()));
        }
        let null = rusqlite::types::Value::Null;
        let mut cleared = vec![
            ("capture_path", null.clone()),
            ("video_path", null.clone()),
            ("poster_path", null.clone()),
            ("faces", null.clone()),
        ];
        // A clip deleted by one of the couple keeps its token's hash until the link would have
        // expired, so the other's phone can say why it is gone (it opens nothing: the files and
        // the `done` state are gone). Every other end forgets it now.
        if event != SessionEvent::Delete {
            cleared.extend(crate::store::links_cleared());
        }
        if let Transition::Refused(r) = self.store.transition(&s.id, event, &cleared)? {
            // Another path ended it first (a guest deleted it during the sweep): its files are
            // gone all the same; the rest is cleared too.
            tracing::debug!(session = %s.id, state = %r.from, ?event, "already ended");
            self.store.update(&s.id, &cleared)?;
        }
        let _ = self.view_and_publish(&s.id);
        Ok(())
    }

    /// Keeps the preview JPEG and the gate's verdict fresh: about 10 frames and 4 analyses a
    /// second.
    fn preview_loop(self: Arc<Self>) {
        let mut last_seq = 0;
        let mut n = 0u64;
        let mut boxes: Vec<([f32; 4], bool)> = Vec::new();
        let mut was_stalled = false;
        while !self.shutdown.wait_timeout(Duration::from_millis(100)) {
            // A camera that stops sending pictures without an error: the kiosk hears of it at
            // once (and again when it recovers), not at its next status poll.
            let is_stalled = self.camera_stalled();
            if is_stalled != was_stalled {
                was_stalled = is_stalled;
                if is_stalled {
                    tracing::warn!("camera stalled: no picture for {:?}", self.stall_after);
                } else {
                    tracing::info!("camera sending pictures again");
                }
                let _ = self
                    .events
                    .send(json!({"type": "status", "status": self.status_json()}).to_string());
            }
            // Only while a kiosk watches (the pose screen): idle screens cost nothing.
            let watched = self
                .preview
                .read()
                .ok()
                .and_then(|p| p.wanted_at)
                .is_some_and(|t| t.elapsed() < Duration::from_secs(3));
            if !watched {
                continue;
            }
            let Some(frame) = self.camera.latest() else {
                continue;
            };
            if frame.seq == last_seq {
                continue;
            }
            last_seq = frame.seq;
            n += 1;
            if n % 3 == 1
                && let Ok(mut an) = self.analyzer.try_lock()
                && let Ok(a) = an.analyze(&frame.image)
            {
                drop(an);
                boxes = a
                    .faces
                    .iter()
                    .enumerate()
                    .map(|(i, f)| (f.bbox, a.verdict.ok || !a.verdict.faces.contains(&i)))
                    .collect();
                let changed = self
                    .preview
                    .read()
                    .map(|p| p.verdict.as_ref() != Some(&a.verdict))
                    .unwrap_or(true);
                if let Ok(mut p) = self.preview.write() {
                    p.verdict = Some(a.verdict.clone());
                }
                if changed {
                    let _ = self
                        .events
                        .send(json!({"type": "preview", "verdict": a.verdict}).to_string());
                }
            }
            let jpeg = preview_jpeg(&frame.image, &boxes);
            if let Ok(mut p) = self.preview.write() {
                p.jpeg = Some(Arc::new(jpeg));
                p.seq = frame.seq;
            }
            self.preview_made.send_replace(frame.seq);
        }
    }

    pub fn metrics(&self) -> anyhow::Result<String> {
        use std::fmt::Write;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP kissbooth_sessions Sessions by state.\n# TYPE kissbooth_sessions gauge"
        );
        for (state, n) in self.store.count_by_state()? {
            let _ = writeln!(out, "kissbooth_sessions{{state=\"{state}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP kissbooth_event_count What the booth counted this event (End of event starts again).\n# TYPE kissbooth_event_count gauge"
        );
        for (key, _, n) in self.store.counters()? {
            let what = key.trim_start_matches("count_");
            let _ = writeln!(out, "kissbooth_event_count{{what=\"{what}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP kissbooth_closed 1 while the operator has closed the booth.\n# TYPE kissbooth_closed gauge\nkissbooth_closed {}",
            u8::from(self.closed())
        );
        let queue = self.queue.lock().map(|q| q.len()).unwrap_or(0);
        let _ = writeln!(
            out,
            "# HELP kissbooth_render_queue_depth Clips waiting to render.\n# TYPE kissbooth_render_queue_depth gauge\nkissbooth_render_queue_depth {queue}"
        );
        let (n, sum) = self
            .render_times
            .lock()
            .map(|r| (r.len(), r.iter().sum::<f64>()))
            .unwrap_or((0, 0.0));
        if n > 0 {
            let _ = writeln!(
                out,
                "# HELP kissbooth_render_seconds_recent_mean Mean render time of recent clips.\n# TYPE kissbooth_render_seconds_recent_mean gauge\nkissbooth_render_seconds_recent_mean {}",
                sum / n as f64
            );
        }
        let up = matches!(self.camera.status(), CameraStatus::Live { .. });
        let _ = writeln!(
            out,
            "# HELP kissbooth_camera_up Camera delivering frames.\n# TYPE kissbooth_camera_up gauge\nkissbooth_camera_up {}",
            u8::from(up)
        );
        let _ = writeln!(
            out,
            "# HELP kissbooth_uptime_seconds Seconds since start.\n# TYPE kissbooth_uptime_seconds counter\nkissbooth_uptime_seconds {}",
            self.started.elapsed().as_secs()
        );
        if let Some(t) = self.thermal_state() {
            let _ = writeln!(
                out,
                "# HELP kissbooth_thermal_throttle Thermal throttling: 0 normal, 1 reduced render size, 2 renders paused.\n# TYPE kissbooth_thermal_throttle gauge\nkissbooth_thermal_throttle {}",
                t.throttle.level()
            );
            if let Some(h) = t.hottest_c {
                let _ = writeln!(
                    out,
                    "# HELP kissbooth_temperature_hottest_celsius Hottest temperature read.\n# TYPE kissbooth_temperature_hottest_celsius gauge\nkissbooth_temperature_hottest_celsius {h}"
                );
            }
            let _ = writeln!(
                out,
                "# HELP kissbooth_telemetry_source Where the health figures come from.\n# TYPE kissbooth_telemetry_source gauge\nkissbooth_telemetry_source{{source=\"{}\"}} 1",
                t.source
            );
        }
        crate::telemetry::prometheus(&self.readings(), &mut out);
        self.net.prometheus(&mut out);
        Ok(out)
    }

    /// Clips waiting to render, and the latest render times in seconds (oldest first).
    pub fn queue_and_render_times(&self) -> (usize, Vec<f64>) {
        let queue = self.queue.lock().map(|q| q.len()).unwrap_or(0);
        let times = self
            .render_times
            .lock()
            .map(|r| r.iter().copied().collect())
            .unwrap_or_default();
        (queue, times)
    }

    /// Marks the preview as watched (called by the preview endpoints).
    pub fn want_preview(&self) {
        if let Ok(mut p) = self.preview.write() {
            p.wanted_at = Some(Instant::now());
        }
    }

    pub fn status_json(&self) -> serde_json::Value {
        let settings = self.settings();
        let camera = match self.camera.status() {
            CameraStatus::Live { .. } if self.camera_stalled() => json!({
                "state": "stalled",
                "message": "The camera has stopped sending pictures. One moment please."
            }),
            CameraStatus::Starting => json!({"state": "starting"}),
            CameraStatus::Live { fps } => json!({"state": "live", "fps": fps}),
            CameraStatus::Reconnecting {
                attempt,
                last_error,
                ..
            } => {
                // Never seen since the booth started (not plugged in), or lost on the way.
                let message = if self.camera.latest().is_none() {
                    "The camera is not connected. The booth starts by itself once it is."
                } else {
                    "The camera is reconnecting…"
                };
                json!({"state": "reconnecting", "attempt": attempt, "message": message, "error": last_error})
            }
            CameraStatus::Stopped => json!({"state": "stopped"}),
        };
        let queue = self.queue.lock().map(|q| q.len()).unwrap_or(0);
        let source = self
            .preview
            .read()
            .map(|p| p.camera.clone())
            .unwrap_or_default();
        json!({"closed": self.closed(), "camera": camera, "source": source, "queue": queue, "uptime_s": self.started.elapsed().as_secs(), "wifi": !settings.wifi.ssid.is_empty(), "event": {"name": settings.event_name, "countdown_s": settings.countdown_s, "retention_hours": settings.retention_hours, "clip_seconds": settings.clip_seconds, "shape": settings.shape, "wifi_key": &token_hash(&format!("{}\n{}\n{}", settings.wifi.ssid, settings.wifi.password, settings.wifi.security))[..12]}, "thermal": self.thermal_state(), "generator": self.generator})
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
fn load_generator(
    cfg: &Config,
    runtime: &'static kissbooth_engines::runtime::Runtime,
) -> (Option<Mutex<DiffusionGenerator>>, GeneratorChoice) {
    let r = &cfg.render;
    let mut choice = GeneratorChoice {
        name: "morph".into(),
        configured: r.generator.clone(),
        fallback: None,
        memory: None,
    };
    if r.generator != "diffusion" {
        return (None, choice);
    }
    let result = if r.pack.as_os_str().is_empty() {
        Err("render.pack is not set".to_string())
    } else {
        let options = kissbooth_engines::diffusion::LoadOptions {
            memory_budget_mib: (r.memory_budget_mb > 0).then_some(r.memory_budget_mb),
        };
        kissbooth_engines::diffusion::Pack::load_with(&r.pack, runtime, &options)
            .map_err(|e| format!("diffusion pack {} refused: {e}", r.pack.display()))
    };
    match result {
        Ok(pack) => {
            eprintln!(
                "kissbooth: generator: diffusion (pack {} from {})",
                pack.manifest.pack.name,
                r.pack.display()
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

fn seed_of(id: &str) -> u64 {
    u64::from_str_radix(&id[..id.len().min(16)], 16).unwrap_or(0)
}

/// The session whose clip a guest's link (`{key}` of `/d/{key}`, percent-decoded: a token or a
/// short code) downloads: known, unexpired, and its video finished. Anything not shaped like a
/// link is refused before the database is asked.
pub fn live_session(store: &Store, key: &str) -> Option<SessionRow> {
    let key = Key::parse(key)?;
    let s = store.by_link(&key).ok().flatten()?;
    let live = s.state == SessionState::Done && s.token_expires_at.is_some_and(|t| t > now_s());
    live.then_some(s)
}

fn camera_spec(cfg: &Config) -> anyhow::Result<CameraSpec> {
    if !cfg.camera.is_empty() {
        return cfg
            .camera
            .parse::<CameraSpec>()
            .map_err(|e| anyhow!("camera {:?}: {e}", cfg.camera));
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

/// A preview frame at most 960 px wide with the face boxes drawn (green: fine, amber: the gate's
/// complaint is about this face).
fn preview_jpeg(img: &RgbImage, boxes: &[([f32; 4], bool)]) -> Vec<u8> {
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
        crate::draw::frame_box(&mut small, b.map(|v| (v * scale).round() as i64), 3, c);
    }
    kissbooth_capture::jpeg_encode(&small, 75)
}

/// The booth's Content Credentials key, made at the first start; `None`, said on stderr, in the
/// log and the audit, when it cannot be made or read (clips are then published unsigned).
fn open_signer(data: &std::path::Path, store: &Store) -> Option<crate::provenance::BoothSigner> {
    match crate::provenance::BoothSigner::open_or_create(data) {
        Ok((signer, made)) => {
            if made {
                eprintln!(
                    "kissbooth: made this booth's Content Credentials key in {}",
                    crate::provenance::key_dir(data).display()
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
fn open_judge(
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

#[cfg(test)]
mod tests {
    use super::*;

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
        let models = std::env::var_os("KISSBOOTH_MODELS").map(PathBuf::from);
        let Some(models) = models.filter(|m| m.join("pfld-68.onnx").is_file()) else {
            eprintln!("SKIPPED {test}: shared models not found (set KISSBOOTH_MODELS)");
            return None;
        };
        let runtime = kissbooth_engines::runtime::Runtime::init(&Default::default()).unwrap();
        let mut cfg = Config {
            data: data.to_path_buf(),
            camera: "test".into(),
            ..Config::default()
        };
        cfg.thermal.nvml = false;
        cfg.thermal.sysfs_root = data.join("no-sysfs");
        Some(Booth::start(cfg, models, runtime).unwrap())
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
            camera: format!("stills:{}", stills.display()),
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
                    ("created_at", (now_s() - age_s).into()),
                    ("video_path", video.display().to_string().into()),
                    ("token_hash", token_hash(&token).into()),
                    ("token_expires_at", (now_s() + 3600).into()),
                ],
            )
            .unwrap();
        token
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

/// A clip's link as the kiosk holds it in memory (the database has only its hashes).
#[derive(Clone)]
struct KioskLink {
    token: String,
    short: String,
}

/// How long a download counts as going on after the daemon handed its last byte to the
/// network: the bytes still sit in the socket's buffers, and the phone is still saving them.
pub const DOWNLOAD_GRACE: Duration = Duration::from_secs(15);

/// A session's guest downloads.
struct Downloads {
    in_flight: usize,
    /// When one last started or ended.
    last: Instant,
}

impl Downloads {
    /// Downloads going on now: those in flight, or one that ended within [`DOWNLOAD_GRACE`].
    fn now(&self) -> usize {
        if self.in_flight > 0 {
            self.in_flight
        } else {
            usize::from(self.last.elapsed() < DOWNLOAD_GRACE)
        }
    }
}

/// A guest download in flight (see [`Booth::downloading`]).
pub struct DownloadGuard {
    downloads: Arc<Mutex<HashMap<String, Downloads>>>,
    id: String,
}

impl Drop for DownloadGuard {
    fn drop(&mut self) {
        if let Ok(mut d) = self.downloads.lock()
            && let Some(x) = d.get_mut(&self.id)
        {
            x.in_flight = x.in_flight.saturating_sub(1);
            x.last = Instant::now();
        }
    }
}

/// The uploaded logo at the settings' placement; none when there is none (or it no longer
/// reads: said in the log).
fn load_logo(
    data: &std::path::Path,
    settings: &crate::settings::EventSettings,
) -> Option<Arc<kissbooth_media::Overlay>> {
    let path = crate::settings::logo_path(data);
    if !path.is_file() {
        return None;
    }
    match kissbooth_media::Overlay::from_png(&path, settings.branding.placement()) {
        Ok(o) => Some(Arc::new(o)),
        Err(e) => {
            tracing::warn!(error = %e, "the branding logo does not read; clips go without it");
            None
        }
    }
}
