//! The booth's time as a dependency: retention, link lifetimes and the database's timestamps
//! read it from a [`Clock`], the system's in the daemon and a [`ManualClock`] in tests, which
//! move time on without waiting for it.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Unix time in seconds.
pub trait Clock: Send + Sync + 'static {
    fn now_s(&self) -> i64;
}

pub type SharedClock = Arc<dyn Clock>;

/// The system's clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_s(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    }
}

pub fn system() -> SharedClock {
    Arc::new(SystemClock)
}

/// A clock that moves only when told to.
pub struct ManualClock(AtomicI64);

impl ManualClock {
    /// A clock at the system's time now.
    pub fn now() -> Arc<ManualClock> {
        Arc::new(ManualClock(AtomicI64::new(SystemClock.now_s())))
    }

    pub fn advance(&self, seconds: i64) {
        self.0.fetch_add(seconds, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_s(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let c = ManualClock::now();
        let t = c.now_s();
        assert!((t - SystemClock.now_s()).abs() <= 1);
        std::thread::sleep(std::time::Duration::from_millis(1100));
        assert_eq!(c.now_s(), t);
        c.advance(3600);
        assert_eq!(c.now_s(), t + 3600);
    }
}
