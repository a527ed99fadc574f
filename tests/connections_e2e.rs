//! The booth under a flood of connections, as one guest on its Wi-Fi can make it: the real
//! daemon in a network namespace of its own, guests at `10.77.0.x` (not loopback) and the kiosk
//! on `127.0.0.1`. Idle, half-sent and stalled connections are closed after their timeouts, one
//! address holds only its share, the kiosk is always answered, and when accepting fails (no
//! file descriptors left) the daemon backs off, says so in `/metrics` and `/healthz`, and stops
//! feeding the systemd watchdog. Every flood is bounded in connections and in time.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use support::*;

/// A TCP connection to `to` from the local address `from`.
fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
    connect_with(from, to, None)
}

/// [`connect_from`], with a receive buffer of `rcvbuf` bytes (a phone that reads slowly).
fn connect_with(from: &str, to: SocketAddr, rcvbuf: Option<usize>) -> TcpStream {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    if let Some(n) = rcvbuf {
        s.set_recv_buffer_size(n).unwrap();
    }
    let local: SocketAddr = format!("{from}:0").parse().unwrap();
    s.bind(&local.into()).unwrap();
    s.connect_timeout(&to.into(), Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("connect from {from}: {e}"));
    s.into()
}

/// False once the daemon has closed `s` (end of stream or reset); true while it is open.
/// Reads (and drops) anything the daemon sent.
fn is_open(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return false,
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return true;
            }
            Err(_) => return false,
        }
    }
}

/// One request on a connection of its own; returns the status, the whole answer and how long
/// it took.
fn fetch(from: &str, to: SocketAddr, host: &str, path: &str) -> (u16, String, Duration) {
    let t = Instant::now();
    let mut s = connect_from(from, to);
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text, t.elapsed())
}

fn timed_get(from: &str, to: SocketAddr, host: &str, path: &str) -> (u16, Duration) {
    let (status, _, t) = fetch(from, to, host, path);
    (status, t)
}

/// A kept-alive connection that sends one request at a time and reads its whole answer.
struct KeptAlive {
    s: TcpStream,
    host: String,
}

impl KeptAlive {
    fn open(to: SocketAddr) -> KeptAlive {
        let s = TcpStream::connect(to).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        KeptAlive {
            s,
            host: to.to_string(),
        }
    }

    fn get(&mut self, path: &str) -> (u16, String) {
        write!(self.s, "GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n", self.host).unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            let n = self.s.read(&mut byte).expect("an answer");
            assert_eq!(
                n,
                1,
                "closed mid-answer: {}",
                String::from_utf8_lossy(&head)
            );
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head).to_string();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        let len: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .expect("a Content-Length");
        let mut body = vec![0u8; len];
        self.s.read_exact(&mut body).unwrap();
        (status, String::from_utf8_lossy(&body).to_string())
    }
}

/// The value of a metric line `name` (with its labels) in Prometheus text.
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in the metrics:\n{text}"))
}

fn median_and_max(mut ms: Vec<f64>) -> (f64, f64) {
    ms.sort_by(f64::total_cmp);
    (ms[ms.len() / 2], ms[ms.len() - 1])
}

#[test]
fn a_guest_holding_connections_open_cannot_take_the_booth_offline() {
    let name = "a_guest_holding_connections_open_cannot_take_the_booth_offline";
    if !have_models(name) {
        return;
    }
    in_private_network(name, move || flood_from_guests(name));
}

fn flood_from_guests(name: &str) {
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        cfg_dir.path(),
        "[server]\nheader_read_timeout_s = 4\nidle_timeout_s = 6\nconnections_per_guest = 8\nguest_connections = 20\n",
    );
    let d = Daemon::start_with(
        &[fixture("couple_1280x720.jpg")],
        &["--config", &cfg],
        Start {
            all_addresses: true,
            log: Some("info"),
            ..Start::default()
        },
    );
    let port: u16 = d.base.rsplit(':').next().unwrap().parse().unwrap();
    let booth: SocketAddr = format!("10.77.0.1:{port}").parse().unwrap();
    let kiosk: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let kiosk_host = kiosk.to_string();
    // The daemon's own figures, asked for as the kiosk.
    let metrics = || {
        let (st, text, _) = fetch("127.0.0.1", kiosk, &kiosk.to_string(), "/metrics");
        assert_eq!(st, 200, "{text}");
        text
    };

    // One guest opens 100 connections and sends nothing: 8 stay open, the rest are closed at
    // once. Another guest is still served.
    let started = Instant::now();
    let mut held: Vec<(&str, Instant, TcpStream)> = Vec::new();
    for _ in 0..100 {
        held.push((
            "10.77.0.2",
            Instant::now(),
            connect_from("10.77.0.2", booth),
        ));
    }
    std::thread::sleep(Duration::from_millis(300));
    held.retain_mut(|(_, _, s)| is_open(s));
    assert_eq!(held.len(), 8, "connections one guest holds open");
    let (st, _) = timed_get("10.77.0.3", booth, &booth.to_string(), "/healthz");
    assert_eq!(st, 200, "another guest is refused");

    // Three more guests, 40 connections each: 20 guest connections in all stay open.
    for from in ["10.77.0.3", "10.77.0.4", "10.77.0.5"] {
        for _ in 0..40 {
            held.push((from, Instant::now(), connect_from(from, booth)));
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    held.retain_mut(|(_, _, s)| is_open(s));
    assert_eq!(held.len(), 20, "guest connections held open in all");
    for from in ["10.77.0.2", "10.77.0.3", "10.77.0.4", "10.77.0.5"] {
        let n = held.iter().filter(|(f, _, _)| *f == from).count();
        assert!(n <= 8, "{from} holds {n} connections");
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the flood took {:?}: too slow to count before the timeouts",
        started.elapsed()
    );
    let m = metrics();
    assert_eq!(
        metric(&m, "kissbooth_connections_open{peer=\"guest\"}"),
        20.0
    );
    assert!(
        metric(
            &m,
            "kissbooth_connections_refused_total{limit=\"per_guest\"}"
        ) >= 92.0
    );
    assert!(metric(&m, "kissbooth_connections_refused_total{limit=\"guests\"}") >= 1.0);

    // Meanwhile the kiosk is answered at once, on new connections as on its own.
    let mut healthz = Vec::new();
    let mut status = Vec::new();
    for _ in 0..20 {
        let (st, t) = timed_get("127.0.0.1", kiosk, &kiosk_host, "/healthz");
        assert_eq!(st, 200);
        healthz.push(t.as_secs_f64() * 1000.0);
        let (st, t) = timed_get("127.0.0.1", kiosk, &kiosk_host, "/api/status");
        assert_eq!(st, 200);
        status.push(t.as_secs_f64() * 1000.0);
    }
    let (h_med, h_max) = median_and_max(healthz);
    let (s_med, s_max) = median_and_max(status);
    eprintln!(
        "{name}: with {} guest connections held: /healthz {h_med:.1} ms median, {h_max:.1} ms max; \
         /api/status {s_med:.1} ms median, {s_max:.1} ms max (20 each, new connections)",
        held.len()
    );
    assert!(h_max < 2000.0 && s_max < 2000.0, "the kiosk waited");

    // The connections that never sent a request are closed after the 4 s header timeout.
    let deadline = Instant::now() + Duration::from_secs(12);
    let mut closed_after = Vec::new();
    while !held.is_empty() && Instant::now() < deadline {
        held.retain_mut(|(_, opened, s)| {
            let open = is_open(s);
            if !open {
                closed_after.push(opened.elapsed().as_secs_f64());
            }
            open
        });
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        held.is_empty(),
        "{} idle connections still open",
        held.len()
    );
    let (first, last) = (
        closed_after.iter().copied().fold(f64::MAX, f64::min),
        closed_after.iter().copied().fold(0.0, f64::max),
    );
    eprintln!("{name}: idle connections closed {first:.1} to {last:.1} s after they opened");
    assert!(
        first >= 3.5 && last <= 7.0,
        "closed {first:.1} to {last:.1} s after opening"
    );

    // Half-sent headers, a byte a second (bytes move, the request never ends): closed by the
    // header timeout too.
    let mut slow = connect_from("10.77.0.6", booth);
    let t = Instant::now();
    slow.write_all(b"GET /healthz HTTP/1.1\r\n").unwrap();
    let mut slow_closed = None;
    while t.elapsed() < Duration::from_secs(10) {
        if slow.write_all(b"X").is_err() || !is_open(&mut slow) {
            slow_closed = Some(t.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let slow_closed = slow_closed.expect("a half-sent request held its connection for 10 s");
    eprintln!("{name}: a request sent a byte every 0.5 s was cut after {slow_closed:.1?}");
    assert!(
        slow_closed >= Duration::from_millis(3500) && slow_closed < Duration::from_millis(5900),
        "cut after {slow_closed:?}, not by the 4 s header timeout"
    );

    // A kept-alive guest connection that sends nothing more is closed too.
    let mut kept = connect_from("10.77.0.7", booth);
    let t = Instant::now();
    write!(kept, "GET /healthz HTTP/1.1\r\nHost: {booth}\r\n\r\n").unwrap();
    let mut buf = [0u8; 512];
    kept.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert!(kept.read(&mut buf).unwrap() > 0, "an answer");
    while is_open(&mut kept) && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !is_open(&mut kept),
        "a kept-alive connection stayed open 10 s"
    );
    eprintln!(
        "{name}: an idle kept-alive connection was closed {:.1?} after its request",
        t.elapsed()
    );

    // A stalled download: requests pipelined, answers never read. Nothing moves, and the idle
    // timeout (6 s) closes it. Bounded: at most 20 MB sent, for at most 5 s.
    let mut stalled = connect_with("10.77.0.8", booth, Some(16 * 1024));
    stalled
        .set_write_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let request = format!("GET /d/0123456789abcdef0123 HTTP/1.1\r\nHost: {booth}\r\n\r\n");
    let batch = request.repeat(1000);
    let t = Instant::now();
    let mut sent = 0;
    while sent < 20 << 20 && t.elapsed() < Duration::from_secs(5) {
        match stalled.write(batch.as_bytes()) {
            Ok(n) => sent += n,
            Err(_) => break,
        }
    }
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "the daemon read 20 MB of requests without being read from"
    );
    let stalled_at = Instant::now();
    assert_eq!(
        metric(&metrics(), "kissbooth_connections_open{peer=\"guest\"}"),
        1.0,
        "the stalled download is open"
    );
    let mut gone = None;
    while stalled_at.elapsed() < Duration::from_secs(20) {
        let m = metrics();
        if metric(&m, "kissbooth_connections_open{peer=\"guest\"}") == 0.0 {
            gone = Some(stalled_at.elapsed());
            assert!(metric(&m, "kissbooth_connections_idle_closed_total") >= 1.0);
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let gone = gone.expect("a stalled download held its connection for 20 s");
    eprintln!("{name}: a stalled download ({sent} bytes of requests) was closed after {gone:.1?}");
    assert!(gone >= Duration::from_secs(4), "closed after {gone:?}");
    // The guest sees its connection end (its unread answers, then the end or a reset).
    stalled
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut sink = vec![0u8; 1 << 20];
    let t = Instant::now();
    loop {
        match stalled.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(_) => assert!(t.elapsed() < Duration::from_secs(10), "still answering"),
        }
    }
    assert_eq!(
        timed_get("127.0.0.1", kiosk, &kiosk_host, "/healthz").0,
        200
    );
}

#[test]
fn a_daemon_out_of_file_descriptors_backs_off_says_so_and_stops_the_watchdog() {
    let name = "a_daemon_out_of_file_descriptors_backs_off_says_so_and_stops_the_watchdog";
    if !have_models(name) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let notify_path = dir.path().join("notify");
    let notify = std::os::unix::net::UnixDatagram::bind(&notify_path).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    // Pings received within `window`.
    let pings = |window: Duration| {
        let t = Instant::now();
        let mut n = 0;
        let mut buf = [0u8; 256];
        while t.elapsed() < window {
            if let Ok(len) = notify.recv(&mut buf)
                && &buf[..len] == b"WATCHDOG=1"
            {
                n += 1;
            }
        }
        n
    };
    // Kiosk connections are allowed far beyond the files the daemon may open, and they are
    // not timed out meanwhile, so that loopback connections exhaust its files.
    let cfg = write_config(
        dir.path(),
        "[server]\nheader_read_timeout_s = 120\nkiosk_connections = 1000\n",
    );
    let socket = notify_path.display().to_string();
    let d = Daemon::start_with(
        &[fixture("couple_1280x720.jpg")],
        &["--config", &cfg],
        Start {
            log: Some("info"),
            open_files: Some(128),
            env: &[("NOTIFY_SOCKET", &socket), ("WATCHDOG_USEC", "2000000")],
            ..Start::default()
        },
    );
    let kiosk: SocketAddr = d.base.trim_start_matches("http://").parse().unwrap();
    assert!(pings(Duration::from_secs(3)) >= 2, "the watchdog is fed");
    let mut operator = KeptAlive::open(kiosk);
    assert_eq!(operator.get("/healthz").0, 200);

    // 200 connections, more than the 128 files it may open: accepting fails (from somewhere in
    // this loop on, which can take a second once the listen backlog is full).
    let flooding = Instant::now();
    let flood: Vec<TcpStream> = (0..200)
        .map(|_| TcpStream::connect(kiosk).unwrap())
        .collect();
    let failing = Instant::now();
    let mut errors = 0.0;
    while failing.elapsed() < Duration::from_secs(5) {
        let (_, m) = operator.get("/metrics");
        errors = metric(&m, "kissbooth_accept_errors_total");
        if errors > 0.0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(errors > 0.0, "no accept error after 5 s");

    // It backs off instead of spinning: little CPU while it fails.
    let cpu = || {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", d.child.id())).unwrap();
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let f: Vec<&str> = after.split(' ').collect();
        let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
        ticks / 100.0
    };
    let (cpu0, t0) = (cpu(), Instant::now());
    std::thread::sleep(Duration::from_secs(3));
    let busy = (cpu() - cpu0) / t0.elapsed().as_secs_f64();
    let (_, m) = operator.get("/metrics");
    let errors_3s = metric(&m, "kissbooth_accept_errors_total") - errors;
    eprintln!(
        "{name}: while accepting fails: {:.0} % of a core, {errors_3s} accept errors in 3 s",
        busy * 100.0
    );
    assert!(busy < 0.25, "{:.0} % of a core: spinning", busy * 100.0);
    assert!(
        errors_3s <= 30.0,
        "{errors_3s} accept errors in 3 s: no backoff"
    );

    // After 10 s of failing, /healthz (on a connection the daemon already had) says so, and
    // the watchdog is no longer fed.
    let mut unhealthy = None;
    while failing.elapsed() < Duration::from_secs(20) {
        let (st, body) = operator.get("/healthz");
        if st == 503 {
            assert!(body.contains("not accepting"), "{body}");
            unhealthy = Some(failing.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let unhealthy = unhealthy.expect("/healthz still 200 after 20 s of failing accepts");
    // Not before about 10 s of failing: counted from the start of the flood (the failures
    // began during it), and by the daemon's own clock just below.
    let since_flood = unhealthy + (failing - flooding);
    assert!(since_flood >= Duration::from_secs(9), "{since_flood:?}");
    let (_, m) = operator.get("/metrics");
    assert!(metric(&m, "kissbooth_accept_failing_seconds") >= 9.0, "{m}");
    let _ = pings(Duration::from_secs(3));
    assert_eq!(
        pings(Duration::from_secs(3)),
        0,
        "the watchdog is still fed while nothing can connect"
    );

    // Once the files are free again it accepts, is healthy and feeds the watchdog again.
    drop(flood);
    let back = Instant::now();
    loop {
        if let Ok(mut s) = TcpStream::connect(kiosk) {
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let _ = write!(
                s,
                "GET /healthz HTTP/1.1\r\nHost: {kiosk}\r\nConnection: close\r\n\r\n"
            );
            let mut buf = String::new();
            let _ = s.read_to_string(&mut buf);
            if buf.starts_with("HTTP/1.1 200") {
                break;
            }
        }
        assert!(
            back.elapsed() < Duration::from_secs(10),
            "not back after 10 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        pings(Duration::from_secs(3)) >= 1,
        "the watchdog is not fed again"
    );
    let log = d.log();
    let reports = log.matches("cannot accept connections").count();
    assert!(
        (1..=4).contains(&reports),
        "{reports} accept error lines in the log"
    );
    assert!(log.contains("accepting connections again"), "{log}");
    assert!(log.contains("no longer fed"), "{log}");
}
