//! The render queue: one worker thread renders the queued sessions' clips in order, so the next
//! couple can pose while the previous clip renders; estimates of when each is ready.

use crate::booth::link::new_token;
use crate::booth::session::{SessionEvent, SessionState, apply};
use crate::booth::thermal::Throttle;
use crate::clip::render_clip;
use crate::store::{SessionRow, token_hash};
use anyhow::{Context, anyhow};
use kissbooth_engines::Landmarks;
use kissbooth_engines::generate::MorphInputs;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::*;

pub(super) fn seed_of(id: &str) -> u64 {
    u64::from_str_radix(&id[..id.len().min(16)], 16).unwrap_or(0)
}

impl Booth {
    /// Queues the render. A full queue asks the couple to wait rather than losing them.
    pub fn render(&self, id: &str) -> BoothResult<SessionView> {
        let s = self.session(id)?;
        let refused = |from: SessionState| {
            BoothError::Conflict(format!(
                "render follows a good capture; this session is {from}"
            ))
        };
        apply(s.state, SessionEvent::Queue).map_err(|r| refused(r.from))?;
        let admitted = self
            .queue
            .push_within(id, self.cfg.render.queue, || -> BoothResult<()> {
                // The link exists from now: the couple can scan it while the clip is made and watch
                // it on the phone when it is done. It ends with the token's time or when the video
                // is deleted (retention counts from the session's start), whichever comes first.
                let link = KioskLink {
                    token: new_token(),
                    short: self.unused_short()?,
                };
                let p = &self.cfg.privacy;
                let expires = (self.store.now_s() + (p.token_ttl_hours * 3600.0).ceil() as i64)
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
                if let Ok(mut links) = self.guests.links.lock() {
                    links.insert(id.to_string(), link);
                }
                if let Err(e) = self.store.enqueue_job(id) {
                    let _ = self.set_failed(id, RENDER_FAILED);
                    return Err(e.into());
                }
                Ok(())
            });
        match admitted {
            Ok(()) => {}
            Err(Refused::Full) => {
                return Err(BoothError::Busy(
                    "The booth is busy making other videos. Please try again in a minute.".into(),
                ));
            }
            Err(Refused::Admit(e)) => return Err(e),
            Err(Refused::Poisoned) => return Err(Poisoned.into()),
        }
        self.store.audit("render_queued", Some(id), "");
        self.view_and_publish(id)
    }

    pub(super) fn render_worker(self: Arc<Self>) {
        loop {
            // Above the hard limit new renders wait in the queue until the booth cools. Woken by
            // a new job, a change of the thermal state and shutdown.
            let Some(id) = self.queue.next(
                || self.shutdown.is_triggered(),
                || self.throttle() == Throttle::Paused,
            ) else {
                return;
            };
            let mut job = None;
            let mut produced = Vec::new();
            if let Err(e) = self.render_one(&id, &mut job, &mut produced) {
                self.render_error(&id, job, &produced, &e);
            }
            crate::sys::trim_heap();
            // Positions of the others moved.
            for q in self.queue.waiting() {
                let _ = self.view_and_publish(&q);
            }
        }
    }

    /// Any error on the way from the queue to a finished session: the job and the session are
    /// marked failed with the kiosk's message and files made for it are removed, so nothing
    /// is left "rendering". When the database refuses even that, the failure is kept in memory
    /// (the kiosk sees it at once) and written by the next retention sweep.
    pub(super) fn render_error(
        &self,
        id: &str,
        job: Option<i64>,
        produced: &[PathBuf],
        e: &anyhow::Error,
    ) {
        let msg = format!("{e:#}");
        tracing::error!(session = %id, error = %msg, "render failed");
        self.queue.finish();
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

    pub(super) fn render_one(
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
        let cancel = self.queue.start(id)?;
        let t = Instant::now();
        let result = self.render_files(&s, &cancel);
        self.queue.finish();
        let secs = t.elapsed().as_secs_f64();
        match result {
            Ok((video, poster)) => {
                self.publish(&s, job, &cancel, video, poster, produced, secs)?;
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

    /// A finished clip: published (the `Finish` event) while its session still renders, or
    /// discarded when the session moved on during the last frames; the job records which.
    #[allow(clippy::too_many_arguments)]
    fn publish(
        &self,
        s: &SessionRow,
        job: i64,
        cancel: &AtomicBool,
        video: PathBuf,
        poster: PathBuf,
        produced: &mut Vec<PathBuf>,
        secs: f64,
    ) -> anyhow::Result<()> {
        let id = s.id.as_str();
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
            self.remove_capture(s);
        }
        self.queue.record(secs);
        self.store
            .audit("render_done", Some(id), &format!("{secs:.1}s"));
        self.count("count_completed");
        Ok(())
    }

    /// The settings of a session's clip: the operator's shape and length, smaller while the
    /// booth runs hot (audited), the branding logo and the event's title.
    fn clip_settings(&self, s: &SessionRow) -> crate::config::ClipSettings {
        let r = &self.cfg.render;
        let event = self.settings();
        // The operator's shape; the configured size when it is of that shape.
        let (w, h) = if event.shape == crate::booth::settings::Shape::of(r.width, r.height) {
            (r.width, r.height)
        } else {
            event.shape.size()
        };
        let throttle = self.throttle();
        let (width, height) = crate::booth::thermal::render_size(w, h, throttle, &self.cfg.thermal);
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
        settings.title = crate::clip::title::title(&event.event_name, width, height)
            .and_then(|l| {
                kissbooth_media::Overlay::from_rgba(l, kissbooth_media::Placement::Full).ok()
            })
            .map(Arc::new);
        settings
    }

    pub(super) fn render_files(
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
            .studio
            .guides
            .lock()
            .map_err(|_| anyhow!("guide models lock"))?
            .guides([&img, &img], [a, b]);
        let inputs = MorphInputs::Couple {
            frame: img,
            faces: [*a, *b],
        };
        let settings = self.clip_settings(s);
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
        let mut report = match (&self.studio.diffusion, inputs) {
            (Some(g), MorphInputs::Couple { frame, faces }) => {
                let mut g = g.lock().map_err(|_| anyhow!("diffusion generator lock"))?;
                crate::clip::render_diffusion_clip(
                    &settings,
                    &self.studio.shape,
                    &mut g,
                    &frame,
                    &faces,
                    &out,
                    &mut on_frame,
                    cancel,
                )?
            }
            (_, inputs) => {
                let mut judge = self
                    .studio
                    .judge
                    .lock()
                    .map_err(|_| anyhow!("self-check lock"))?;
                let check = match judge.as_mut() {
                    Some(j) => {
                        let frame = inputs.frame(0);
                        let [a, b] = inputs.faces();
                        let refs = j.references([frame, frame], [a, b])?;
                        Some(crate::clip::SelfCheck { judge: j, refs })
                    }
                    None => None,
                };
                render_clip(
                    &settings,
                    &self.studio.shape,
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
    pub(super) fn sign(&self, id: &str, report: &mut crate::clip::RenderReport) {
        let Some(signer) = &self.studio.signer else {
            tracing::warn!(session = %id, "no usable signing key: the clip is published without Content Credentials");
            return;
        };
        match crate::clip::sign_clip(signer, report) {
            Ok(()) => tracing::info!(session = %id, ms = report.ms.sign, "clip signed"),
            Err(e) => {
                let msg = format!("{e:#}");
                tracing::error!(session = %id, error = %msg, "cannot add Content Credentials: the clip is published without them");
                self.store.audit("c2pa_sign_failed", Some(id), &msg);
            }
        }
    }

    pub(super) fn eta(&self, s: &SessionRow, position: Option<usize>) -> Option<f64> {
        let per_clip = self
            .queue
            .mean_time()
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

    pub(super) fn current_remaining(&self, per_clip: f64) -> f64 {
        self.queue
            .current()
            .and_then(|id| self.store.get(&id).ok().flatten())
            .map(|s| per_clip * (1.0 - s.progress))
            .unwrap_or(0.0)
    }

    /// Clips waiting to render, and the latest render times in seconds (oldest first).
    pub fn queue_and_render_times(&self) -> (usize, Vec<f64>) {
        (self.queue.len(), self.queue.times())
    }
}
