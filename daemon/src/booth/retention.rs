//! Retention: captures and clips deleted when they expire, on request, and at the end of the
//! event; failures the database could not record yet.

use crate::booth::session::{SessionEvent, SessionState};
use crate::store::{SessionRow, Transition};
use anyhow::Context;

use super::*;

impl Booth {
    /// Writes failures the database refused earlier; kept in memory until it takes them.
    pub(super) fn save_failures(&self) {
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

    pub(super) fn remove_capture(&self, s: &SessionRow) {
        if let Some(p) = &s.capture_path {
            let _ = std::fs::remove_file(p);
            let _ = self
                .store
                .update(&s.id, &[("capture_path", rusqlite::types::Value::Null)]);
        }
    }

    /// Deletes the media of sessions older than the retention period, and of sessions abandoned
    /// while posing for over an hour. Returns how many sessions were purged.
    pub fn purge_expired(&self) -> anyhow::Result<usize> {
        let now = self.store.now_s();
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
        self.queue.clear_and_cancel()?;
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
    pub(super) fn purge_each(
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
    pub(super) fn purge(&self, s: &SessionRow, event: SessionEvent) -> anyhow::Result<()> {
        if let Ok(mut links) = self.guests.links.lock() {
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
}
