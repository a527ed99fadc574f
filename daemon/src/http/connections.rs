//! The HTTP server's own accept loop, so that no guest can take the booth offline by holding
//! connections open:
//!
//! - every connection must send its request headers within `header_read_timeout_s`, which is
//!   also how long a kept-alive connection may wait for its next request;
//! - a guest connection on which no byte moved either way for `idle_timeout_s` is closed (a
//!   stalled download, a phone that left the Wi-Fi), and TCP keepalive with a user timeout
//!   drops peers that vanished;
//! - guests (every peer that is not loopback) share a budget of connections, at most
//!   `connections_per_guest` per address (per /64 for IPv6), sized to the open-file limit;
//!   loopback peers (the kiosk browser on the device) have a budget of their own that guests
//!   never use;
//! - a failing `accept` (too many open files, out of memory) backs off instead of spinning,
//!   shows in `/metrics` and `/healthz`, and stops the systemd watchdog's heartbeat when it
//!   lasts, so the booth is restarted rather than left deaf.
//!
//! Only HTTP/1.1 is spoken: browsers use HTTP/2 over TLS only, and one request at a time per
//! connection keeps the connection budget a bound on a guest's concurrent requests.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tower::ServiceExt;

use crate::config::ServerConfig;

/// Accepting that has failed for this long, without a success in between, makes `/healthz`
/// answer 503 and stops the watchdog's heartbeat.
pub const ACCEPT_BROKEN_AFTER: Duration = Duration::from_secs(10);

/// Files kept for everything that is not a connection (database, models, camera, logs).
const RESERVED_FDS: u64 = 256;

/// The address a connection came in on (the daemon's side), for the kiosk's `Host` check.
#[derive(Debug, Clone, Copy)]
pub struct LocalAddr(pub SocketAddr);

/// Which budget a peer's connections come out of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Peer {
    Kiosk,
    /// An IPv4 address, or the /64 of an IPv6 one (a single host may hold a whole /64).
    Guest(IpAddr),
}

impl Peer {
    fn of(ip: IpAddr) -> Peer {
        match ip.to_canonical() {
            ip if ip.is_loopback() => Peer::Kiosk,
            IpAddr::V6(v6) => {
                let s = v6.segments();
                Peer::Guest(IpAddr::V6(Ipv6Addr::new(
                    s[0], s[1], s[2], s[3], 0, 0, 0, 0,
                )))
            }
            ip => Peer::Guest(ip),
        }
    }
}

/// The budget that was full when a connection was closed at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Full {
    /// Loopback connections.
    Kiosk,
    /// Guest connections, every address together.
    Guests,
    /// The guest's own address.
    Address,
}

/// The connection limits in force (the configuration's, fitted to the open-file limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub kiosk: usize,
    pub guests: usize,
    pub per_guest: usize,
}

impl Limits {
    /// The configured limits, with the guests' total lowered so that every connection can also
    /// hold a file open within `nofile` (the process's open-file limit).
    pub fn fit(cfg: &ServerConfig, nofile: u64) -> Limits {
        let room = nofile.saturating_sub(RESERVED_FDS + cfg.kiosk_connections as u64 * 2) / 2;
        let guests = cfg.guest_connections.min(room.max(1) as usize);
        Limits {
            kiosk: cfg.kiosk_connections,
            guests,
            per_guest: cfg.connections_per_guest.min(guests),
        }
    }
}

#[derive(Default)]
struct Counts {
    kiosk: usize,
    guests: usize,
    per_guest: HashMap<IpAddr, usize>,
}

/// What the server saw: open connections, refusals, timeouts and accept failures. Shared with
/// `/metrics` and `/healthz` (through the booth).
#[derive(Default)]
pub struct NetStats {
    counts: Mutex<Counts>,
    limits: OnceLock<Limits>,
    refused_kiosk: AtomicU64,
    refused_guests: AtomicU64,
    refused_address: AtomicU64,
    idle_closed: AtomicU64,
    accept_errors: AtomicU64,
    /// [`now_ms`] when accepting began to fail; 0 while it works.
    failing_since_ms: AtomicU64,
}

/// Milliseconds since the first call, plus one (so 0 can mean "never").
fn now_ms() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1
}

impl NetStats {
    /// A connection's permit from its peer's budget, or why there is none.
    fn admit(self: &Arc<Self>, peer: Peer, limits: Limits) -> Result<Permit, Full> {
        let mut c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        match peer {
            Peer::Kiosk if c.kiosk >= limits.kiosk => return Err(Full::Kiosk),
            Peer::Kiosk => c.kiosk += 1,
            Peer::Guest(_) if c.guests >= limits.guests => return Err(Full::Guests),
            Peer::Guest(ip) => {
                let n = c.per_guest.entry(ip).or_default();
                if *n >= limits.per_guest {
                    return Err(Full::Address);
                }
                *n += 1;
                c.guests += 1;
            }
        }
        Ok(Permit {
            stats: self.clone(),
            peer,
        })
    }

    fn refused(&self, why: Full) {
        match why {
            Full::Kiosk => &self.refused_kiosk,
            Full::Guests => &self.refused_guests,
            Full::Address => &self.refused_address,
        }
        .fetch_add(1, Ordering::Relaxed);
    }

    fn accepted(&self) -> Option<Duration> {
        let since = self.failing_since_ms.swap(0, Ordering::Relaxed);
        (since != 0).then(|| Duration::from_millis(now_ms().saturating_sub(since)))
    }

    fn accept_failed(&self) {
        self.accept_errors.fetch_add(1, Ordering::Relaxed);
        let _ = self.failing_since_ms.compare_exchange(
            0,
            now_ms(),
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }

    /// How long accepting has been failing without a success, if it is.
    pub fn accept_failing_for(&self) -> Option<Duration> {
        match self.failing_since_ms.load(Ordering::Relaxed) {
            0 => None,
            since => Some(Duration::from_millis(now_ms().saturating_sub(since))),
        }
    }

    /// True once accepting has failed for [`ACCEPT_BROKEN_AFTER`]: no new peer, the kiosk
    /// included, can reach the booth.
    pub fn accept_broken(&self) -> bool {
        self.accept_failing_for()
            .is_some_and(|d| d >= ACCEPT_BROKEN_AFTER)
    }

    /// The figures in Prometheus text format.
    pub fn prometheus(&self, out: &mut String) {
        use std::fmt::Write;
        let (kiosk, guests, addresses) = {
            let c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
            (c.kiosk, c.guests, c.per_guest.len())
        };
        let _ = writeln!(
            out,
            "# HELP kissbooth_connections_open Open HTTP connections by peer (kiosk: loopback).\n# TYPE kissbooth_connections_open gauge\nkissbooth_connections_open{{peer=\"kiosk\"}} {kiosk}\nkissbooth_connections_open{{peer=\"guest\"}} {guests}"
        );
        let _ = writeln!(
            out,
            "# HELP kissbooth_guest_addresses Guest addresses (IPv6: /64s) with an open connection.\n# TYPE kissbooth_guest_addresses gauge\nkissbooth_guest_addresses {addresses}"
        );
        if let Some(l) = self.limits.get() {
            let _ = writeln!(
                out,
                "# HELP kissbooth_connections_limit Connection limits in force.\n# TYPE kissbooth_connections_limit gauge\nkissbooth_connections_limit{{peer=\"kiosk\"}} {}\nkissbooth_connections_limit{{peer=\"guest\"}} {}\nkissbooth_connections_limit{{peer=\"per_guest\"}} {}",
                l.kiosk, l.guests, l.per_guest
            );
        }
        let _ = writeln!(
            out,
            "# HELP kissbooth_connections_refused_total Connections closed at once, by the limit reached.\n# TYPE kissbooth_connections_refused_total counter\nkissbooth_connections_refused_total{{limit=\"kiosk\"}} {}\nkissbooth_connections_refused_total{{limit=\"guests\"}} {}\nkissbooth_connections_refused_total{{limit=\"per_guest\"}} {}",
            self.refused_kiosk.load(Ordering::Relaxed),
            self.refused_guests.load(Ordering::Relaxed),
            self.refused_address.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP kissbooth_connections_idle_closed_total Guest connections closed after nothing moved for the idle timeout.\n# TYPE kissbooth_connections_idle_closed_total counter\nkissbooth_connections_idle_closed_total {}",
            self.idle_closed.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP kissbooth_accept_errors_total Failed accepts (e.g. too many open files).\n# TYPE kissbooth_accept_errors_total counter\nkissbooth_accept_errors_total {}",
            self.accept_errors.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP kissbooth_accept_failing_seconds How long accepting has been failing (0: it works).\n# TYPE kissbooth_accept_failing_seconds gauge\nkissbooth_accept_failing_seconds {:.1}",
            self.accept_failing_for().map_or(0.0, |d| d.as_secs_f64())
        );
    }
}

/// A connection's place in its budget, given back when the connection ends.
struct Permit {
    stats: Arc<NetStats>,
    peer: Peer,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut c = self.stats.counts.lock().unwrap_or_else(|e| e.into_inner());
        match self.peer {
            Peer::Kiosk => c.kiosk = c.kiosk.saturating_sub(1),
            Peer::Guest(ip) => {
                c.guests = c.guests.saturating_sub(1);
                if let Some(n) = c.per_guest.get_mut(&ip) {
                    *n -= 1;
                    if *n == 0 {
                        c.per_guest.remove(&ip);
                    }
                }
            }
        }
    }
}

/// Raises the soft open-file limit to the hard one (systemd's `LimitNOFILE` sets both) and
/// returns the limit in force.
pub fn raise_open_file_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit fill or read the struct given; no other memory is touched.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let want = libc::rlimit {
                rlim_cur: lim.rlim_max.min(1 << 20),
                rlim_max: lim.rlim_max,
            };
            if want.rlim_cur > lim.rlim_cur && libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                lim = want;
            }
        }
    }
    lim.rlim_cur
}

/// Errors `accept` reports for one connection that failed before it was taken (Linux passes
/// pending network errors on): the next accept may well work.
fn is_connection_error(e: &io::Error) -> bool {
    use io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted | WouldBlock
    ) || matches!(
        e.raw_os_error(),
        Some(
            libc::EPROTO
                | libc::ENETDOWN
                | libc::ENOPROTOOPT
                | libc::EHOSTDOWN
                | libc::ENONET
                | libc::EHOSTUNREACH
                | libc::EOPNOTSUPP
                | libc::ENETUNREACH
                | libc::EPERM
        )
    )
}

/// Serves `app` on `listener` until `shutdown` completes, then lets open connections finish
/// their current request for a few seconds.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    cfg: &ServerConfig,
    stats: Arc<NetStats>,
    shutdown: impl Future<Output = ()>,
) {
    let limits = limits_in_force(cfg, &stats);
    let settings = Arc::new(Settings {
        header_read: Duration::from_secs(cfg.header_read_timeout_s),
        idle: Duration::from_secs(cfg.idle_timeout_s),
        keepalive: Duration::from_secs(cfg.tcp_keepalive_s),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let (done_tx, done_rx) = watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    let mut failures = AcceptFailures::default();
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((stream, peer)) => {
                failures.accepted(&stats);
                let permit = match stats.admit(Peer::of(peer.ip()), limits) {
                    Ok(p) => p,
                    Err(why) => {
                        stats.refused(why);
                        tracing::debug!(?why, "connection refused: its budget is full");
                        continue;
                    }
                };
                let local = stream.local_addr().unwrap_or(peer);
                tokio::spawn(connection(
                    stream,
                    peer,
                    local,
                    app.clone(),
                    settings.clone(),
                    permit,
                    stop_rx.clone(),
                    done_rx.clone(),
                ));
            }
            Err(e) if is_connection_error(&e) => {}
            Err(e) => {
                let backoff = failures.failed(&stats, &e);
                tokio::select! {
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(backoff) => {}
                }
            }
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drop(done_rx);
    let _ = tokio::time::timeout(Duration::from_secs(5), done_tx.closed()).await;
}

/// The connection budgets the open-file limit (raised as far as allowed) leaves room for,
/// recorded in `stats`; a warning when they are below the configured ones.
fn limits_in_force(cfg: &ServerConfig, stats: &NetStats) -> Limits {
    let nofile = raise_open_file_limit();
    let limits = Limits::fit(cfg, nofile);
    if limits.guests < cfg.guest_connections {
        tracing::warn!(
            open_file_limit = nofile,
            configured = cfg.guest_connections,
            in_force = limits.guests,
            "the open-file limit is too low for server.guest_connections: fewer guests are served at once (raise LimitNOFILE)"
        );
    }
    let _ = stats.limits.set(limits);
    limits
}

/// A run of failed accepts (out of file descriptors, say): the back-off before the next try,
/// and the error log, at most every ten seconds, with how many failed since the last line.
#[derive(Default)]
struct AcceptFailures {
    backoff: Duration,
    last_report: Option<Instant>,
    errors_since_report: u64,
}

impl AcceptFailures {
    /// A connection was accepted: the run, if any, is over, and said so.
    fn accepted(&mut self, stats: &NetStats) {
        self.backoff = Duration::ZERO;
        if let Some(failed_for) = stats.accepted() {
            tracing::warn!(
                after_s = failed_for.as_secs_f64(),
                errors = self.errors_since_report,
                "accepting connections again"
            );
            self.last_report = None;
            self.errors_since_report = 0;
        }
    }

    /// An accept failed with `e`: returns how long to wait before the next, doubling from 5 ms
    /// to a second.
    fn failed(&mut self, stats: &NetStats, e: &std::io::Error) -> Duration {
        stats.accept_failed();
        self.errors_since_report += 1;
        if self
            .last_report
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(10))
        {
            tracing::error!(
                error = %e,
                errors = self.errors_since_report,
                failing_s = stats.accept_failing_for().unwrap_or_default().as_secs_f64(),
                "cannot accept connections; backing off"
            );
            self.last_report = Some(Instant::now());
        }
        self.backoff = (self.backoff * 2).clamp(Duration::from_millis(5), Duration::from_secs(1));
        self.backoff
    }
}

struct Settings {
    header_read: Duration,
    idle: Duration,
    keepalive: Duration,
}

/// Serves one connection until it ends, times out, or the server stops.
#[allow(clippy::too_many_arguments)]
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    local: SocketAddr,
    app: Router,
    settings: Arc<Settings>,
    permit: Permit,
    mut stop: watch::Receiver<bool>,
    _done: watch::Receiver<()>,
) {
    let guest = permit.peer != Peer::Kiosk;
    let _ = stream.set_nodelay(true);
    let sock = socket2::SockRef::from(&stream);
    let probe = Duration::from_secs(10);
    let _ = sock.set_tcp_keepalive(
        &socket2::TcpKeepalive::new()
            .with_time(settings.keepalive)
            .with_interval(probe)
            .with_retries(3),
    );
    // Data a vanished phone never acknowledges is given up on as late as keepalive would.
    let _ = sock.set_tcp_user_timeout(Some(settings.keepalive + probe * 3));
    let last = Arc::new(AtomicU64::new(now_ms()));
    let io = Tracked {
        inner: stream,
        last: last.clone(),
    };
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        req.extensions_mut().insert(LocalAddr(local));
        app.clone().oneshot(req.map(Body::new))
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read)
        .keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    let mut conn = std::pin::pin!(conn);
    let idle = settings.idle;
    let mut stopping = false;
    loop {
        let quiet = Duration::from_millis(now_ms().saturating_sub(last.load(Ordering::Relaxed)));
        if guest && quiet >= idle {
            permit.stats.idle_closed.fetch_add(1, Ordering::Relaxed);
            tracing::debug!("closing a guest connection on which nothing moved");
            break;
        }
        let check = if guest {
            idle - quiet
        } else {
            Duration::from_secs(3600)
        };
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "connection ended");
                }
                break;
            }
            () = tokio::time::sleep(check) => {}
            r = stop.changed(), if !stopping => {
                stopping = true;
                if r.is_ok() {
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
    drop(permit);
}

/// A connection's stream that notes when a byte last moved either way.
struct Tracked {
    inner: TcpStream,
    last: Arc<AtomicU64>,
}

impl Tracked {
    fn touch(&self) {
        self.last.store(now_ms(), Ordering::Relaxed);
    }
}

impl AsyncRead for Tracked {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.touch();
        }
        r
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.touch();
        }
        r
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(guests: usize, per_guest: usize, kiosk: usize) -> ServerConfig {
        ServerConfig {
            guest_connections: guests,
            connections_per_guest: per_guest,
            kiosk_connections: kiosk,
            ..ServerConfig::default()
        }
    }

    #[test]
    fn loopback_is_the_kiosk_and_an_ipv6_guest_is_its_64() {
        assert_eq!(Peer::of("127.0.0.1".parse().unwrap()), Peer::Kiosk);
        assert_eq!(Peer::of("127.0.0.2".parse().unwrap()), Peer::Kiosk);
        assert_eq!(Peer::of("::1".parse().unwrap()), Peer::Kiosk);
        assert_eq!(Peer::of("::ffff:127.0.0.1".parse().unwrap()), Peer::Kiosk);
        assert_eq!(
            Peer::of("::ffff:192.168.4.7".parse().unwrap()),
            Peer::Guest("192.168.4.7".parse().unwrap())
        );
        assert_eq!(
            Peer::of("2001:db8:1:2:aaaa:bbbb:cccc:dddd".parse().unwrap()),
            Peer::of("2001:db8:1:2::1".parse().unwrap())
        );
        assert_ne!(
            Peer::of("2001:db8:1:2::1".parse().unwrap()),
            Peer::of("2001:db8:1:3::1".parse().unwrap())
        );
    }

    #[test]
    fn guests_never_use_the_kiosk_budget() {
        let stats = Arc::new(NetStats::default());
        let limits = Limits::fit(&cfg(3, 2, 4), 100_000);
        let a = Peer::of("192.168.4.7".parse().unwrap());
        let b = Peer::of("192.168.4.8".parse().unwrap());
        let c = Peer::of("192.168.4.9".parse().unwrap());
        let a1 = stats.admit(a, limits).unwrap();
        let _a2 = stats.admit(a, limits).unwrap();
        assert_eq!(
            stats.admit(a, limits).err(),
            Some(Full::Address),
            "two per address"
        );
        let _b1 = stats.admit(b, limits).unwrap();
        assert_eq!(
            stats.admit(c, limits).err(),
            Some(Full::Guests),
            "three guests in all"
        );
        let kiosk: Vec<_> = (0..4)
            .map(|_| stats.admit(Peer::Kiosk, limits).unwrap())
            .collect();
        assert_eq!(stats.admit(Peer::Kiosk, limits).err(), Some(Full::Kiosk));
        drop(kiosk);
        drop(a1);
        assert!(
            stats.admit(c, limits).is_ok(),
            "a closed connection frees its place"
        );
        let _k = stats.admit(Peer::Kiosk, limits).unwrap();
    }

    #[test]
    fn the_guests_budget_fits_the_open_file_limit() {
        let l = Limits::fit(&cfg(1024, 16, 64), 65_536);
        assert_eq!((l.guests, l.per_guest, l.kiosk), (1024, 16, 64));
        // 1024 files: 256 kept, 128 for the kiosk's connections and their files, 2 per guest.
        let l = Limits::fit(&cfg(1024, 16, 64), 1024);
        assert_eq!((l.guests, l.per_guest), (320, 16));
        let l = Limits::fit(&cfg(1024, 16, 64), 100);
        assert_eq!((l.guests, l.per_guest), (1, 1));
    }
}
