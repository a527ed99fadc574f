//! Download links and downloads: the kiosk's copy of each clip's link, finding a session by
//! token or short code, guests' deletions, and the downloads in flight.

use crate::booth::link::{Key, new_short};
use crate::booth::session::{SessionEvent, SessionState};
use crate::store::{SessionRow, Store};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::*;

/// The session whose clip a guest's link (`{key}` of `/d/{key}`, percent-decoded: a token or a
/// short code) downloads: known, unexpired, and its video finished. Anything not shaped like a
/// link is refused before the database is asked.
pub fn live_session(store: &Store, key: &str) -> Option<SessionRow> {
    let key = Key::parse(key)?;
    let s = store.by_link(&key).ok().flatten()?;
    let live =
        s.state == SessionState::Done && s.token_expires_at.is_some_and(|t| t > store.now_s());
    live.then_some(s)
}

/// The guests' side of the booth in memory: the kiosk's copy of each clip's link, the downloads
/// in flight, and the wrong short codes phones typed recently.
#[derive(Default)]
pub struct GuestLinks {
    /// The download link of each clip queued since the daemon started (session → link), for
    /// the kiosk's QR code, until the couple leaves the kiosk's screens. The database keeps only
    /// the sha256 of the token and short code, so nobody can read a working link out of it;
    /// after a restart the kiosk shows no QR code for older clips, while the phones that
    /// scanned one keep their link.
    pub(super) links: Mutex<HashMap<String, KioskLink>>,
    /// Guest downloads in flight, by session, and when the last one moved.
    pub(super) downloads: Arc<Mutex<HashMap<String, Downloads>>>,
    /// Wrong short codes recently typed by phones (see [`crate::booth::link::Guesses`]).
    pub short_guesses: Mutex<crate::booth::link::Guesses>,
}

/// A clip's link as the kiosk holds it in memory (the database has only its hashes).
#[derive(Clone)]
pub(super) struct KioskLink {
    pub(super) token: String,
    pub(super) short: String,
}

/// How long a download counts as going on after the daemon handed its last byte to the
/// network: the bytes still sit in the socket's buffers, and the phone is still saving them.
pub const DOWNLOAD_GRACE: Duration = Duration::from_secs(15);

/// A session's guest downloads.
pub(super) struct Downloads {
    pub(super) in_flight: usize,
    /// When one last started or ended.
    pub(super) last: Instant,
}

impl Downloads {
    /// Downloads going on now: those in flight, or one that ended within [`DOWNLOAD_GRACE`].
    pub(super) fn now(&self) -> usize {
        if self.in_flight > 0 {
            self.in_flight
        } else {
            usize::from(self.last.elapsed() < DOWNLOAD_GRACE)
        }
    }
}

/// A guest download in flight (see [`Booth::downloading`]).
pub struct DownloadGuard {
    pub(super) downloads: Arc<Mutex<HashMap<String, Downloads>>>,
    pub(super) id: String,
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

impl Booth {
    /// Download by token: the session when the token is known, unexpired and its video exists.
    pub fn by_token(&self, token: &str) -> Option<SessionRow> {
        live_session(&self.store, token)
    }

    /// The session a guest's link names (its token or short code), in any state, while the
    /// link has not expired: the phone page says what became of the clip.
    pub fn by_link(&self, key: &Key) -> Option<SessionRow> {
        let s = self.store.by_link(key).ok().flatten()?;
        s.token_expires_at
            .is_some_and(|t| t > self.store.now_s())
            .then_some(s)
    }

    /// A short code not in use (40 random bits rarely meet, but a clash would fail the queue).
    pub(super) fn unused_short(&self) -> anyhow::Result<String> {
        for _ in 0..8 {
            let c = new_short();
            if self.store.by_short(&c)?.is_none() {
                return Ok(c);
            }
        }
        anyhow::bail!("no free short code")
    }

    /// Counts a guest download of `id` in flight until the guard is dropped (the kiosk keeps
    /// the result screen up meanwhile).
    pub fn downloading(&self, id: &str) -> DownloadGuard {
        if let Ok(mut d) = self.guests.downloads.lock() {
            d.retain(|_, x| x.now() > 0);
            let x = d.entry(id.to_string()).or_insert(Downloads {
                in_flight: 0,
                last: Instant::now(),
            });
            x.in_flight += 1;
            x.last = Instant::now();
        }
        DownloadGuard {
            downloads: self.guests.downloads.clone(),
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
}
