//! systemd readiness and watchdog (`Type=notify`, `WatchdogSec=`), spoken directly over
//! `$NOTIFY_SOCKET`. Without systemd (no socket) every call is a no-op.

use std::os::unix::net::UnixDatagram;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Sends `state` (e.g. `READY=1`) to systemd. Returns false when not run by systemd.
pub fn notify(state: &str) -> bool {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return false;
    };
    let Ok(sock) = UnixDatagram::unbound() else {
        return false;
    };
    let bytes = path.as_encoded_bytes();
    let sent = if let Some(name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(name)
            .and_then(|a| sock.send_to_addr(state.as_bytes(), &a))
    } else {
        sock.send_to(state.as_bytes(), std::path::Path::new(&path))
    };
    sent.is_ok()
}

/// A heartbeat the server's event loop bumps while it accepts connections; the watchdog thread
/// pings systemd only while the heartbeat is fresh, so a wedged or deaf server is restarted.
#[derive(Clone, Default)]
pub struct Heartbeat(Arc<AtomicU64>);

impl Heartbeat {
    pub fn beat(&self, since: Instant) {
        self.0
            .store(since.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
    fn age(&self, since: Instant) -> Duration {
        Duration::from_millis(
            (since.elapsed().as_millis() as u64).saturating_sub(self.0.load(Ordering::Relaxed)),
        )
    }
}

/// Starts the watchdog thread when systemd asked for one (`WATCHDOG_USEC`).
pub fn start_watchdog(heartbeat: Heartbeat, since: Instant) {
    let Some(usec) = std::env::var("WATCHDOG_USEC")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    else {
        return;
    };
    let period = Duration::from_micros(usec / 2).max(Duration::from_millis(500));
    let stale = Duration::from_micros(usec);
    let _ = std::thread::Builder::new()
        .name("watchdog".into())
        .spawn(move || {
            loop {
                std::thread::sleep(period);
                if heartbeat.age(since) < stale {
                    notify("WATCHDOG=1");
                } else {
                    tracing::error!(
                        "event loop unresponsive or not accepting connections; letting the systemd watchdog restart the booth"
                    );
                }
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_reaches_a_notify_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let server = UnixDatagram::bind(&path).unwrap();
        // SAFETY: tests in this module run on their own; nothing else reads the variable meanwhile.
        unsafe { std::env::set_var("NOTIFY_SOCKET", &path) };
        assert!(notify("READY=1"));
        unsafe { std::env::remove_var("NOTIFY_SOCKET") };
        let mut buf = [0u8; 64];
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
        assert!(!notify("READY=1"), "no socket, no systemd");
    }
}
