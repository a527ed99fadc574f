//! The booth's storage: SQLite (WAL) for sessions, render jobs and an audit log; media files in
//! `DATA/sessions/{id}/`, always written to a temporary name, fsynced and renamed.

use crate::clock::{Clock, SharedClock};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::booth::session::{Refused, SessionEvent, SessionState, apply};

/// Schema migrations, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    state TEXT NOT NULL,
    consent_at INTEGER,
    people INTEGER,
    verdict TEXT,
    faces TEXT,
    capture_path TEXT,
    video_path TEXT,
    poster_path TEXT,
    token TEXT,
    token_hash TEXT UNIQUE,
    token_expires_at INTEGER,
    progress REAL NOT NULL DEFAULT 0,
    error TEXT
);
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL REFERENCES sessions(id),
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    started_at INTEGER,
    finished_at INTEGER,
    render_ms REAL,
    error TEXT
);
CREATE INDEX jobs_state ON jobs(state);
CREATE TABLE audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    event TEXT NOT NULL,
    session_id TEXT,
    detail TEXT
);
"#,
    r#"
CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"#,
    // Download tokens are kept only as their sha256: whoever copies the database (a backup, a
    // stolen SD card) cannot open anyone's video with it.
    r#"
ALTER TABLE sessions DROP COLUMN token;
"#,
    // The short code written under the QR code for phones that cannot scan, also only as its
    // sha256; and the link a restart replaced (the kiosk shows a new one, the phones that
    // scanned the old one keep it).
    r#"
ALTER TABLE sessions ADD COLUMN short_hash TEXT;
ALTER TABLE sessions ADD COLUMN old_token_hash TEXT;
ALTER TABLE sessions ADD COLUMN old_short_hash TEXT;
CREATE UNIQUE INDEX sessions_short_hash ON sessions(short_hash);
CREATE INDEX sessions_old_token_hash ON sessions(old_token_hash);
CREATE INDEX sessions_old_short_hash ON sessions(old_short_hash);
"#,
    // The couple agreed that the hosts may keep a copy for the event album (off unless ticked).
    r#"
ALTER TABLE sessions ADD COLUMN album INTEGER NOT NULL DEFAULT 0;
"#,
];

/// The system's time in Unix seconds (see [`Store::now_s`] for the booth's own clock).
pub fn now_s() -> i64 {
    crate::clock::SystemClock.now_s()
}

/// A session as stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SessionRow {
    pub id: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub state: SessionState,
    pub consent_at: Option<i64>,
    pub people: Option<i64>,
    pub verdict: Option<String>,
    pub faces: Option<String>,
    pub capture_path: Option<String>,
    pub video_path: Option<String>,
    pub poster_path: Option<String>,
    pub token_hash: Option<String>,
    pub short_hash: Option<String>,
    pub token_expires_at: Option<i64>,
    pub progress: f64,
    pub error: Option<String>,
    /// The couple agreed that the hosts may keep a copy for the event album.
    pub album: bool,
}

#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
    root: PathBuf,
    clock: SharedClock,
}

impl Store {
    pub fn open(data: &Path) -> anyhow::Result<Store> {
        Store::open_with_clock(data, crate::clock::system())
    }

    /// The store at `data`, timestamping with `clock`.
    pub fn open_with_clock(data: &Path, clock: SharedClock) -> anyhow::Result<Store> {
        std::fs::create_dir_all(data.join("sessions"))
            .with_context(|| format!("cannot create {}", data.display()))?;
        let db = data.join("kissbooth.sqlite");
        let conn =
            Connection::open(&db).with_context(|| format!("cannot open {}", db.display()))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // Deleted rows (purged sessions, dropped tokens) are overwritten, not left in free pages.
        conn.pragma_update(None, "secure_delete", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        for (i, m) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            conn.execute_batch(&format!(
                "BEGIN; {m} PRAGMA user_version = {}; COMMIT;",
                i + 1
            ))
            .with_context(|| format!("database migration {}", i + 1))?;
        }
        Ok(Store {
            conn: Arc::new(Mutex::new(conn)),
            root: data.to_path_buf(),
            clock,
        })
    }

    /// Unix seconds by the booth's clock.
    pub fn now_s(&self) -> i64 {
        self.clock.now_s()
    }

    pub fn session_dir(&self, id: &str) -> PathBuf {
        self.root.join("sessions").join(id)
    }

    fn with<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> anyhow::Result<T> {
        let conn = self
            .conn
            .lock()
            .map_err(|_| anyhow::anyhow!("database lock poisoned"))?;
        Ok(f(&conn)?)
    }

    pub fn audit(&self, event: &str, session: Option<&str>, detail: &str) {
        let _ = self.with(|c| {
            c.execute(
                "INSERT INTO audit(at, event, session_id, detail) VALUES (?1, ?2, ?3, ?4)",
                params![self.now_s(), event, session, detail],
            )
        });
    }

    /// A stored setting (e.g. the admin password's argon2id hash).
    pub fn setting(&self, key: &str) -> anyhow::Result<Option<String>> {
        self.with(|c| {
            c.query_row(
                "SELECT value FROM settings WHERE key = ?1",
                params![key],
                |r| r.get(0),
            )
            .optional()
        })
    }

    /// Adds one to the counter `key` (kept in the settings; see [`COUNTERS`]).
    pub fn bump(&self, key: &str) -> anyhow::Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO settings(key, value) VALUES (?1, '1') ON CONFLICT(key) \
                 DO UPDATE SET value = CAST(value AS INTEGER) + 1",
                params![key],
            )
        })?;
        Ok(())
    }

    /// The event's counters, in [`COUNTERS`] order.
    pub fn counters(&self) -> anyhow::Result<Vec<Counter>> {
        COUNTERS
            .iter()
            .map(|(key, label)| {
                let n = self.setting(key)?.and_then(|v| v.parse().ok()).unwrap_or(0);
                Ok((*key, *label, n))
            })
            .collect()
    }

    /// Sets every counter back to zero (a new event).
    pub fn reset_counters(&self) -> anyhow::Result<()> {
        for (key, _) in COUNTERS {
            self.set_setting(key, "0", false)?;
        }
        Ok(())
    }

    /// Sets a setting; with `only_if_absent`, leaves an existing value alone and returns false.
    pub fn set_setting(
        &self,
        key: &str,
        value: &str,
        only_if_absent: bool,
    ) -> anyhow::Result<bool> {
        let sql = if only_if_absent {
            "INSERT OR IGNORE INTO settings(key, value) VALUES (?1, ?2)"
        } else {
            "INSERT INTO settings(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value"
        };
        Ok(self.with(|c| c.execute(sql, params![key, value]))? == 1)
    }

    /// The latest audit entries, newest first: (time, event, detail).
    pub fn recent_audit(&self, n: usize) -> anyhow::Result<Vec<(i64, String, String)>> {
        self.with(|c| {
            let mut st = c.prepare(
                "SELECT at, event, COALESCE(detail, '') FROM audit ORDER BY id DESC LIMIT ?1",
            )?;
            let rows =
                st.query_map(params![n as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            rows.collect()
        })
    }

    pub fn create_session(&self, id: &str) -> anyhow::Result<()> {
        let t = self.now_s();
        self.with(|c| {
            c.execute(
                "INSERT INTO sessions(id, created_at, updated_at, state) VALUES (?1, ?2, ?2, ?3)",
                params![id, t, SessionState::Consent.name()],
            )
        })?;
        self.audit("session_created", Some(id), "");
        Ok(())
    }

    pub fn get(&self, id: &str) -> anyhow::Result<Option<SessionRow>> {
        self.with(|c| {
            c.query_row(
                "SELECT * FROM sessions WHERE id = ?1",
                params![id],
                row_to_session,
            )
            .optional()
        })
    }

    /// The session whose download token is `token`. Looked up by the token's sha256, so the
    /// time taken does not depend on how much of a guessed token is right.
    pub fn by_token(&self, token: &str) -> anyhow::Result<Option<SessionRow>> {
        let hash = token_hash(token);
        self.with(|c| {
            c.query_row(
                "SELECT * FROM sessions WHERE token_hash = ?1 \
                 UNION ALL SELECT * FROM sessions WHERE old_token_hash = ?1 LIMIT 1",
                params![hash],
                row_to_session,
            )
            .optional()
        })
    }

    /// The session whose short code is `code` (in its stored form, see `link::normalize_short`).
    pub fn by_short(&self, code: &str) -> anyhow::Result<Option<SessionRow>> {
        let hash = token_hash(code);
        self.with(|c| {
            c.query_row(
                "SELECT * FROM sessions WHERE short_hash = ?1 \
                 UNION ALL SELECT * FROM sessions WHERE old_short_hash = ?1 LIMIT 1",
                params![hash],
                row_to_session,
            )
            .optional()
        })
    }

    /// The session a download link names, by its token or its short code.
    pub fn by_link(&self, key: &crate::booth::link::Key) -> anyhow::Result<Option<SessionRow>> {
        match key {
            crate::booth::link::Key::Token(t) => self.by_token(t),
            crate::booth::link::Key::Short(c) => self.by_short(c),
        }
    }

    /// Forgets the token hashes kept for clips the guests deleted, once their links would have
    /// expired (`until`: now), or all of them (`i64::MAX`, the end of the event).
    pub fn forget_deleted_tokens(&self, until: i64) -> anyhow::Result<usize> {
        self.with(|c| {
            c.execute(
                "UPDATE sessions SET token_hash = NULL, short_hash = NULL, old_token_hash = NULL, \
                 old_short_hash = NULL WHERE state = ?1 \
                 AND (token_hash IS NOT NULL OR old_token_hash IS NOT NULL) \
                 AND (token_expires_at IS NULL OR token_expires_at <= ?2)",
                params![SessionState::Deleted.name(), until],
            )
        })
    }

    /// Updates named columns of a session other than its state (column names are fixed strings
    /// from this crate); the state changes only by [`Store::transition`].
    pub fn update(&self, id: &str, sets: &[(&str, rusqlite::types::Value)]) -> anyhow::Result<()> {
        anyhow::ensure!(
            sets.iter().all(|(col, _)| *col != "state"),
            "a session's state changes only by a transition"
        );
        self.with(|c| update_where(c, self.now_s(), id, None, sets))?;
        Ok(())
    }

    /// Applies `event` to the session's state and, when the state machine allows it, writes the
    /// new state with `sets` in one statement that checks the state is still the one read: a
    /// path that moved the session on first (a cancel, the end of the event) wins, and this one
    /// is refused and changes nothing.
    pub fn transition(
        &self,
        id: &str,
        event: SessionEvent,
        sets: &[(&str, rusqlite::types::Value)],
    ) -> anyhow::Result<Transition> {
        self.with(|c| {
            let from: Option<String> = c
                .query_row(
                    "SELECT state FROM sessions WHERE id = ?1",
                    params![id],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(from) = from else {
                return Ok(Transition::NoSuchSession);
            };
            let from = SessionState::parse(&from).ok_or_else(|| unknown_state(0, &from))?;
            let to = match apply(from, event) {
                Ok(to) => to,
                Err(refused) => return Ok(Transition::Refused(refused)),
            };
            let mut all: Vec<(&str, rusqlite::types::Value)> =
                vec![("state", to.name().to_string().into())];
            all.extend(sets.iter().cloned());
            Ok(match update_where(c, self.now_s(), id, Some(from), &all)? {
                1 => Transition::Moved { from, to },
                _ => Transition::Refused(Refused { from, event }),
            })
        })
    }

    /// Puts a session in `state` with `sets`, without a transition: for fixtures (tests, the
    /// fuzz harness) that need a session in a given state.
    pub fn force_state(
        &self,
        id: &str,
        state: SessionState,
        sets: &[(&str, rusqlite::types::Value)],
    ) -> anyhow::Result<()> {
        let mut all: Vec<(&str, rusqlite::types::Value)> =
            vec![("state", state.name().to_string().into())];
        all.extend(sets.iter().cloned());
        self.with(|c| update_where(c, self.now_s(), id, None, &all))?;
        Ok(())
    }

    pub fn enqueue_job(&self, session: &str) -> anyhow::Result<i64> {
        self.with(|c| {
            c.execute(
                "INSERT INTO jobs(session_id, state, created_at) VALUES (?1, 'queued', ?2)",
                params![session, self.now_s()],
            )?;
            Ok(c.last_insert_rowid())
        })
    }

    pub fn job_started(&self, job: i64) -> anyhow::Result<()> {
        self.with(|c| c.execute("UPDATE jobs SET state = 'running', started_at = ?2, attempts = attempts + 1 WHERE id = ?1", params![job, self.now_s()]))?;
        Ok(())
    }

    pub fn job_finished(
        &self,
        job: i64,
        error: Option<&str>,
        render_ms: f64,
    ) -> anyhow::Result<()> {
        let state = if error.is_some() { "failed" } else { "done" };
        self.with(|c| {
            c.execute(
                "UPDATE jobs SET state = ?2, finished_at = ?3, error = ?4, render_ms = ?5 WHERE id = ?1",
                params![job, state, self.now_s(), error, render_ms],
            )
        })?;
        Ok(())
    }

    /// Jobs left queued or running by a previous run of the daemon: (job, session, attempts).
    pub fn unfinished_jobs(&self) -> anyhow::Result<Vec<(i64, String, i64)>> {
        self.with(|c| {
            let mut st = c.prepare("SELECT id, session_id, attempts FROM jobs WHERE state IN ('queued', 'running') ORDER BY id")?;
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            rows.collect()
        })
    }

    /// How many times renders of this session were started, over all its jobs.
    pub fn render_attempts(&self, session: &str) -> anyhow::Result<i64> {
        self.with(|c| {
            c.query_row(
                "SELECT COALESCE(SUM(attempts), 0) FROM jobs WHERE session_id = ?1",
                params![session],
                |r| r.get(0),
            )
        })
    }

    pub fn count_by_state(&self) -> anyhow::Result<Vec<(String, i64)>> {
        self.with(|c| {
            let mut st =
                c.prepare("SELECT state, COUNT(*) FROM sessions GROUP BY state ORDER BY state")?;
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        })
    }

    pub fn sessions_in(&self, states: &[SessionState]) -> anyhow::Result<Vec<SessionRow>> {
        let list = states
            .iter()
            .map(|s| format!("'{}'", s.name()))
            .collect::<Vec<_>>()
            .join(",");
        self.with(|c| {
            let mut st = c.prepare(&format!(
                "SELECT * FROM sessions WHERE state IN ({list}) ORDER BY created_at"
            ))?;
            let rows = st.query_map([], row_to_session)?;
            rows.collect()
        })
    }
}

/// What [`Store::transition`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Moved {
        from: SessionState,
        to: SessionState,
    },
    Refused(Refused),
    NoSuchSession,
}

impl Transition {
    /// Whether the session moved.
    pub fn moved(self) -> bool {
        matches!(self, Transition::Moved { .. })
    }
}

fn update_where(
    c: &Connection,
    now: i64,
    id: &str,
    from: Option<SessionState>,
    sets: &[(&str, rusqlite::types::Value)],
) -> rusqlite::Result<usize> {
    let mut sql = String::from("UPDATE sessions SET updated_at = ?1");
    let mut values: Vec<rusqlite::types::Value> = vec![now.into()];
    for (i, (col, v)) in sets.iter().enumerate() {
        debug_assert!(col.chars().all(|ch| ch.is_ascii_lowercase() || ch == '_'));
        sql.push_str(&format!(", {col} = ?{}", i + 2));
        values.push(v.clone());
    }
    sql.push_str(&format!(" WHERE id = ?{}", values.len() + 1));
    values.push(id.to_string().into());
    if let Some(from) = from {
        sql.push_str(&format!(" AND state = ?{}", values.len() + 1));
        values.push(from.name().to_string().into());
    }
    c.execute(&sql, rusqlite::params_from_iter(values))
}

fn unknown_state(column: usize, name: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        column,
        rusqlite::types::Type::Text,
        format!("unknown session state {name:?}").into(),
    )
}

/// What the booth counts for the operator during an event (settings key, label). Kept in the
/// settings table, so a restart does not lose them; "End of event" starts them again.
pub const COUNTERS: [(&str, &str); 5] = [
    ("count_started", "Sessions started"),
    ("count_completed", "Videos made"),
    ("count_refused", "Pictures refused by the face check"),
    ("count_failed", "Renders failed"),
    ("count_downloads", "Downloads"),
];

/// One of [`COUNTERS`] and its value: (settings key, label, count).
pub type Counter = (&'static str, &'static str, u64);

/// The columns that hold a session's links (as hashes): cleared together when the links end.
pub const LINK_COLUMNS: [&str; 4] = [
    "token_hash",
    "short_hash",
    "old_token_hash",
    "old_short_hash",
];

/// `LINK_COLUMNS` set to NULL, for [`Store::update`] and [`Store::transition`].
pub fn links_cleared() -> Vec<(&'static str, rusqlite::types::Value)> {
    LINK_COLUMNS
        .iter()
        .map(|c| (*c, rusqlite::types::Value::Null))
        .collect()
}

pub fn token_hash(token: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn row_to_session(r: &rusqlite::Row<'_>) -> rusqlite::Result<SessionRow> {
    Ok(SessionRow {
        id: r.get("id")?,
        created_at: r.get("created_at")?,
        updated_at: r.get("updated_at")?,
        state: {
            let name: String = r.get("state")?;
            SessionState::parse(&name).ok_or_else(|| unknown_state(0, &name))?
        },
        consent_at: r.get("consent_at")?,
        people: r.get("people")?,
        verdict: r.get("verdict")?,
        faces: r.get("faces")?,
        capture_path: r.get("capture_path")?,
        video_path: r.get("video_path")?,
        poster_path: r.get("poster_path")?,
        token_hash: r.get("token_hash")?,
        short_hash: r.get("short_hash")?,
        token_expires_at: r.get("token_expires_at")?,
        progress: r.get("progress")?,
        error: r.get("error")?,
        album: r.get::<_, i64>("album")? != 0,
    })
}

/// Writes `bytes` to `path` through a temporary file in the same folder: fsync, rename, fsync
/// of the folder. A reader sees the old file or the whole new one, never a part.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.partial-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        std::process::id()
    ));
    let res = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res.with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_run_once_and_sessions_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        s.create_session("abc").unwrap();
        let t = s
            .transition("abc", SessionEvent::Consent, &[("people", 2i64.into())])
            .unwrap();
        assert_eq!(
            t,
            Transition::Moved {
                from: SessionState::Consent,
                to: SessionState::Pose
            }
        );
        drop(s);
        let s = Store::open(dir.path()).unwrap();
        let row = s.get("abc").unwrap().unwrap();
        assert_eq!(row.state, SessionState::Pose);
        assert_eq!(row.people, Some(2));
        assert!(s.get("nope").unwrap().is_none());
    }

    #[test]
    fn settings_are_set_once_or_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(s.setting("k").unwrap(), None);
        assert!(s.set_setting("k", "a", true).unwrap());
        assert!(!s.set_setting("k", "b", true).unwrap());
        assert_eq!(s.setting("k").unwrap().as_deref(), Some("a"));
        assert!(s.set_setting("k", "c", false).unwrap());
        drop(s);
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(s.setting("k").unwrap().as_deref(), Some("c"));
    }

    #[test]
    fn a_deleted_clips_token_is_kept_until_its_link_would_expire_then_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        for (id, expires) in [("soon", 100i64), ("later", 200), ("live", 100)] {
            s.create_session(id).unwrap();
            let state = if id == "live" {
                SessionState::Done
            } else {
                SessionState::Deleted
            };
            let sets = [
                ("token_hash", token_hash(id).into()),
                ("token_expires_at", expires.into()),
            ];
            s.force_state(id, state, &sets).unwrap();
        }
        assert_eq!(s.forget_deleted_tokens(150).unwrap(), 1);
        assert!(s.by_token("soon").unwrap().is_none());
        assert!(s.by_token("later").unwrap().is_some());
        // A live clip's link is retention's business, not this.
        assert!(s.by_token("live").unwrap().is_some());
        assert_eq!(s.forget_deleted_tokens(i64::MAX).unwrap(), 1);
        assert!(s.by_token("later").unwrap().is_none());
        assert!(s.by_token("live").unwrap().is_some());
    }

    #[test]
    fn transitions_leave_a_session_that_moved_on() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        s.create_session("a").unwrap();
        s.force_state("a", SessionState::Rendering, &[]).unwrap();
        // Another path (the end of the event) moved it on: the render's finish is refused and
        // writes nothing.
        assert!(s.transition("a", SessionEvent::Purge, &[]).unwrap().moved());
        let done = [("token_hash", token_hash("t").into())];
        assert_eq!(
            s.transition("a", SessionEvent::Finish, &done).unwrap(),
            Transition::Refused(Refused {
                from: SessionState::Purged,
                event: SessionEvent::Finish
            })
        );
        let row = s.get("a").unwrap().unwrap();
        assert_eq!(row.state, SessionState::Purged);
        assert_eq!(row.token_hash, None);
        assert_eq!(
            s.transition("nope", SessionEvent::Finish, &done).unwrap(),
            Transition::NoSuchSession
        );
        // The state is not a column `update` writes.
        assert!(
            s.update("a", &[("state", "done".to_string().into())])
                .is_err()
        );
        assert_eq!(s.get("a").unwrap().unwrap().state, SessionState::Purged);
    }

    #[test]
    fn a_state_the_daemon_does_not_know_is_an_error_not_a_guess() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        s.create_session("a").unwrap();
        s.with(|c| c.execute("UPDATE sessions SET state = 'dancing' WHERE id = 'a'", []))
            .unwrap();
        assert!(s.get("a").is_err());
        assert!(s.transition("a", SessionEvent::Cancel, &[]).is_err());
    }

    #[test]
    fn unfinished_jobs_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        s.create_session("a").unwrap();
        let j = s.enqueue_job("a").unwrap();
        s.job_started(j).unwrap();
        drop(s);
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(s.unfinished_jobs().unwrap(), vec![(j, "a".to_string(), 1)]);
        s.job_finished(j, None, 10.0).unwrap();
        assert!(s.unfinished_jobs().unwrap().is_empty());
    }
}
