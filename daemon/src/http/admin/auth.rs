//! Who is logged in: the admin password (argon2id), admin sessions with their cookie and
//! synchronizer token, the same-origin check, and the limits on failed logins.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::http::{HeaderMap, header};
use rand::RngCore;
use subtle::ConstantTimeEq;

use crate::store::{Store, token_hash};

/// The settings key of the admin password's argon2id hash (PHC string).
pub const PASSWORD_KEY: &str = "admin_password_argon2id";
pub const MIN_PASSWORD: usize = 8;
pub const MAX_PASSWORD: usize = 256;
pub(super) const COOKIE: &str = "kb_admin";
/// A session ends after this long without a request.
pub(super) const IDLE: Duration = Duration::from_secs(12 * 3600);
/// At most this many sessions at once; a new login ends the least recently used beyond it.
pub(super) const MAX_SESSIONS: usize = 32;
/// Failed logins counted over this window.
pub(super) const WINDOW: Duration = Duration::from_secs(300);
/// Failed logins from one address within the window before it must wait (429).
pub(super) const PER_PEER_FAILURES: usize = 5;
/// Failed logins from all addresses together within the window before everyone must wait.
pub(super) const GLOBAL_FAILURES: usize = 30;

/// Why a new password is refused, in words for the operator.
pub fn check_new_password(password: &str, confirm: &str) -> Result<(), String> {
    if password.chars().count() < MIN_PASSWORD {
        return Err(format!(
            "The password needs at least {MIN_PASSWORD} characters."
        ));
    }
    if password.len() > MAX_PASSWORD {
        return Err(format!(
            "The password can have at most {MAX_PASSWORD} characters."
        ));
    }
    if password != confirm {
        return Err("The two passwords are not the same.".into());
    }
    Ok(())
}

/// An argon2id hash (default parameters: 19 MiB, 2 passes) with a random salt, as a PHC string.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    let hash = argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("argon2: {e}"))?;
    Ok(hash.to_string())
}

pub fn verify_password(phc: &str, password: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

pub(super) fn stored_hash(store: &Store) -> Option<String> {
    store.setting(PASSWORD_KEY).ok().flatten()
}

/// True until an admin password is chosen.
pub fn setup_needed(store: &Store) -> bool {
    matches!(store.setting(PASSWORD_KEY), Ok(None))
}

pub(super) fn random_hex() -> String {
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

pub(super) struct AdminSession {
    pub(super) csrf: String,
    pub(super) last_seen: Instant,
    /// sha256 of the password hash the session logged in under: a new password ends it.
    pub(super) password: String,
}

#[derive(Default)]
pub(super) struct Failures {
    pub(super) by_peer: HashMap<IpAddr, VecDeque<Instant>>,
    pub(super) all: VecDeque<Instant>,
}

impl Failures {
    pub(super) fn prune(&mut self, now: Instant) {
        crate::window::prune(&mut self.by_peer, &mut self.all, now, WINDOW);
    }

    /// Seconds to wait before `ip` may try again, when it must.
    pub(super) fn wait(&mut self, ip: IpAddr, now: Instant) -> Option<u64> {
        self.prune(now);
        let until = |q: &VecDeque<Instant>, limit: usize| {
            (q.len() >= limit).then(|| {
                let oldest = q[q.len() - limit];
                (WINDOW.saturating_sub(now.duration_since(oldest)).as_secs() + 1).max(1)
            })
        };
        let peer = self
            .by_peer
            .get(&ip)
            .and_then(|q| until(q, PER_PEER_FAILURES));
        // Guests' failures together lock out guests, never the operator at the booth itself.
        if ip.to_canonical().is_loopback() {
            return peer;
        }
        let all = until(&self.all, GLOBAL_FAILURES);
        peer.max(all)
    }

    /// Records a failure; true when it locks `ip` (or every guest) out.
    pub(super) fn record(&mut self, ip: IpAddr, now: Instant) -> bool {
        let q = self.by_peer.entry(ip).or_default();
        q.push_back(now);
        let own = q.len() == PER_PEER_FAILURES;
        if ip.to_canonical().is_loopback() {
            return own;
        }
        self.all.push_back(now);
        own || self.all.len() == GLOBAL_FAILURES
    }
}

/// Admin sessions and the login limits (in memory: a restart logs everyone out).
pub struct Auth {
    pub(super) sessions: Mutex<HashMap<String, AdminSession>>,
    pub(super) failures: Mutex<Failures>,
    /// Password checks run one or two at a time, off the async threads.
    pub(super) verifying: tokio::sync::Semaphore,
}

impl Default for Auth {
    fn default() -> Self {
        Auth {
            sessions: Mutex::new(HashMap::new()),
            failures: Mutex::new(Failures::default()),
            verifying: tokio::sync::Semaphore::new(2),
        }
    }
}

impl Auth {
    /// Starts a session; returns (cookie value, csrf token).
    pub(super) fn open(&self, password_hash: &str) -> (String, String) {
        let id = random_hex();
        let csrf = random_hex();
        if let Ok(mut s) = self.sessions.lock() {
            let now = Instant::now();
            s.retain(|_, v| now.duration_since(v.last_seen) < IDLE);
            while s.len() >= MAX_SESSIONS {
                let Some(oldest) = s
                    .iter()
                    .min_by_key(|(_, v)| v.last_seen)
                    .map(|(k, _)| k.clone())
                else {
                    break;
                };
                s.remove(&oldest);
            }
            s.insert(
                token_hash(&id),
                AdminSession {
                    csrf: csrf.clone(),
                    last_seen: now,
                    password: token_hash(password_hash),
                },
            );
        }
        (id, csrf)
    }

    /// The session named by the request's cookie: (key, csrf token). Touches it.
    pub(super) fn current(
        &self,
        headers: &HeaderMap,
        password_hash: &str,
    ) -> Option<(String, String)> {
        let id = cookie(headers, COOKIE)?;
        let key = token_hash(&id);
        let mut s = self.sessions.lock().ok()?;
        let now = Instant::now();
        let valid = s.get(&key).is_some_and(|v| {
            now.duration_since(v.last_seen) < IDLE && v.password == token_hash(password_hash)
        });
        if !valid {
            s.remove(&key);
            return None;
        }
        let v = s.get_mut(&key)?;
        v.last_seen = now;
        Some((key, v.csrf.clone()))
    }

    pub(super) fn close(&self, key: &str) {
        if let Ok(mut s) = self.sessions.lock() {
            s.remove(key);
        }
    }

    pub(super) fn close_all(&self) {
        if let Ok(mut s) = self.sessions.lock() {
            s.clear();
        }
    }

    /// Starts a password check from `ip`: counted as a failure until it succeeds, so many
    /// checks sent at once cannot get past the limit. Err: seconds to wait (429). Ok: true when
    /// this attempt, if wrong, locks the address out.
    pub(super) fn attempt(&self, ip: IpAddr) -> Result<bool, u64> {
        let Ok(mut f) = self.failures.lock() else {
            return Err(WINDOW.as_secs());
        };
        let now = Instant::now();
        match f.wait(ip, now) {
            Some(w) => Err(w),
            None => Ok(f.record(ip, now)),
        }
    }

    pub(super) fn succeeded(&self, ip: IpAddr) {
        if let Ok(mut f) = self.failures.lock() {
            f.by_peer.remove(&ip);
            f.all.pop_back();
        }
    }

    /// Checks `password` against `phc` on a blocking thread.
    pub(super) async fn verify(&self, phc: String, password: String) -> bool {
        let Ok(_permit) = self.verifying.acquire().await else {
            return false;
        };
        tokio::task::spawn_blocking(move || verify_password(&phc, &password))
            .await
            .unwrap_or(false)
    }
}

pub(super) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
        .filter(|v| v.len() == 32 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// False for a request sent by a page of another origin. Browsers say where a request comes
/// from in `Sec-Fetch-Site` (which pages cannot set); older ones only in `Origin`.
pub(crate) fn same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return matches!(site.to_str(), Ok("same-origin" | "none"));
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let (Ok(origin), Some(host)) = (
        origin.to_str(),
        headers.get(header::HOST).and_then(|h| h.to_str().ok()),
    ) else {
        return false;
    };
    origin == format!("http://{host}") || origin == format!("https://{host}")
}

pub(super) fn csrf_ok(expected: &str, given: &str) -> bool {
    !expected.is_empty() && bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
}
