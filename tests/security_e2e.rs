//! The booth seen by someone on its network who should not get in: the real daemon on a real
//! socket, spoken to in raw HTTP so nothing is normalized on the way. Download links that cannot
//! be guessed or listed, paths that never leave the routes, size limits, the admin pages' login,
//! sessions, CSRF and rate limits, the kiosk API for the device only, and logs free of secrets.

mod support;

use std::io::{Read, Write};
use std::net::{IpAddr, TcpStream};
use std::time::Duration;

use rand::RngCore;
use support::*;

struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = b.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size = std::str::from_utf8(&b[..eol])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next().unwrap().trim(), 16).ok())
            .unwrap_or(0);
        if size == 0 || b.len() < eol + 2 + size {
            return out;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + size]);
        b = &b[(eol + 4 + size).min(b.len())..];
    }
}

/// One request exactly as written (the request line and headers are not touched).
fn raw(addr: &str, head: &str, body: &[u8]) -> Resp {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let _ = s.write_all(head.as_bytes());
    let _ = s.write_all(body);
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response to {:?}", &head[..head.len().min(80)]));
    let text = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = text.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = buf[end + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Resp {
        status,
        headers,
        body,
    }
}

fn addr_of(d: &Daemon) -> String {
    d.base.trim_start_matches("http://").to_string()
}

fn get(d: &Daemon, path: &str, extra: &str) -> Resp {
    raw(
        &addr_of(d),
        &format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\n{extra}Connection: close\r\n\r\n",
            addr_of(d)
        ),
        b"",
    )
}

fn post_form(d: &Daemon, path: &str, extra: &str, form: &str) -> Resp {
    raw(
        &addr_of(d),
        &format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\n{extra}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            addr_of(d),
            form.len()
        ),
        form.as_bytes(),
    )
}

fn post_json(addr: &str, path: &str, json: &str) -> Resp {
    raw(
        addr,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            json.len()
        ),
        json.as_bytes(),
    )
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Posts the login form.
fn login(d: &Daemon, password: &str) -> Resp {
    post_form(
        d,
        "/admin/login",
        "",
        &format!("password={}", enc(password)),
    )
}

fn session_cookie(r: &Resp) -> String {
    let c = r.header("set-cookie").expect("a session cookie");
    c.split(';')
        .next()
        .unwrap()
        .strip_prefix("kb_admin=")
        .unwrap()
        .to_string()
}

fn csrf_of(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    page[at..at + 32].to_string()
}

/// A non-loopback address of this machine, when it has one.
fn lan_address() -> Option<IpAddr> {
    if_addrs::get_if_addrs()
        .ok()?
        .into_iter()
        .map(|i| i.ip())
        .find(|ip| ip.is_ipv4() && !ip.is_loopback())
}

#[test]
fn strangers_on_the_network_cannot_guess_traverse_overflow_or_log_in() {
    let name = "strangers_on_the_network_cannot_guess_traverse_overflow_or_log_in";
    if !have_models(name) {
        return;
    }
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        cfg_dir.path(),
        "[render]\nseconds = 3.0\nfps = 12\nwidth = 256\nheight = 256\n",
    );
    let d = Daemon::start_with(
        &[fixture("couple_1280x720.jpg")],
        &["--config", &cfg],
        Start {
            all_addresses: true,
            log: Some("debug"),
            ..Start::default()
        },
    );
    // A file beside the data that no route may ever serve.
    let marker = "kissbooth-secret-marker-6f1e";
    std::fs::write(d.data.path().join("secret.txt"), marker).unwrap();
    std::fs::write(d.data.path().join("sessions/secret.txt"), marker).unwrap();
    let (_, url) = d.make_video();
    let token = url[url.find("/d/").unwrap() + 3..].to_string();
    let page = get(&d, &format!("/d/{token}"), "");
    assert_eq!(page.status, 200);
    // The phone page runs only its own script (by a nonce fresh for each answer) and cannot be
    // framed.
    let csp = page
        .header("content-security-policy")
        .unwrap_or("")
        .to_string();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|n| n.split('\'').next())
        .unwrap_or_default()
        .to_string();
    assert!(nonce.len() >= 16, "no script nonce in {csp}");
    assert!(page.text().contains(&format!("<script nonce=\"{nonce}\">")));
    let again = get(&d, &format!("/d/{token}"), "");
    assert!(
        !again
            .header("content-security-policy")
            .unwrap_or("")
            .contains(&nonce),
        "the nonce is reused"
    );
    assert_eq!(get(&d, &format!("/d/{token}/video.mp4"), "").status, 200);

    // Guessing: random tokens and near misses all get the same 404 page.
    let baseline = get(&d, "/d/0000000000000000", "");
    assert_eq!(baseline.status, 404);
    let mut guesses = Vec::new();
    for _ in 0..150 {
        let mut b = [0u8; 16];
        rand::rng().fill_bytes(&mut b);
        guesses.push(hex::encode(b));
    }
    let alphabet: Vec<char> = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_"
        .chars()
        .collect();
    for (i, ch) in token.char_indices() {
        let other = alphabet.iter().find(|c| **c != ch).unwrap();
        let mut t = token.clone();
        t.replace_range(i..i + ch.len_utf8(), &other.to_string());
        guesses.push(t);
    }
    guesses.push(token[..token.len() - 1].to_string());
    guesses.push(format!("{token}0"));
    guesses.push(token.to_uppercase());
    guesses.push(format!("{token}%00"));
    guesses.push(format!("%20{token}"));
    for g in &guesses {
        if *g == token {
            continue;
        }
        for suffix in ["", "/video.mp4", "/poster.jpg"] {
            let r = get(&d, &format!("/d/{g}{suffix}"), "");
            assert_eq!(r.status, 404, "/d/{g}{suffix}");
            assert_eq!(r.body, baseline.body, "/d/{g}{suffix} answers differently");
        }
    }
    // Nothing lists the videos.
    for path in [
        "/d/",
        "/d",
        "/d//video.mp4",
        "/sessions/",
        "/data/",
        "/media/",
        "/static/",
        "/admin/sessions",
        "/kissbooth.sqlite",
        "/secret.txt",
    ] {
        let r = get(&d, path, "");
        assert!([404, 405, 303].contains(&r.status), "{path}: {}", r.status);
        assert!(!r.text().contains(&token), "{path} shows a token");
    }

    // Traversal: never a file outside the routes.
    let sessions = d.data.path().join("sessions");
    let id = std::fs::read_dir(&sessions)
        .unwrap()
        .flatten()
        .find(|e| e.path().is_dir())
        .unwrap()
        .file_name()
        .into_string()
        .unwrap();
    for path in [
        "/d/../secret.txt".to_string(),
        "/d/../../secret.txt".to_string(),
        "/d/%2e%2e/secret.txt".to_string(),
        "/d/%2e%2e%2fsecret.txt".to_string(),
        "/d/..%2fsecret.txt".to_string(),
        "/d/..%2f..%2fkissbooth.sqlite".to_string(),
        "/d/%252e%252e%252fsecret.txt".to_string(),
        "/d/..%5csecret.txt".to_string(),
        "/d/..\\secret.txt".to_string(),
        format!("/d/{token}/../../secret.txt"),
        format!("/d/{token}/..%2f..%2fsecret.txt"),
        format!("/d/{token}/video.mp4/../../../secret.txt"),
        format!("/d/{token}/%2e%2e%2f%2e%2e%2fsecret.txt"),
        format!("/d/..%2fsessions%2f{id}/video.mp4"),
        "/api/sessions/..%2f..%2fsecret.txt/capture.jpg".to_string(),
        format!("/api/sessions/{id}%2f..%2f..%2fsecret.txt/capture.jpg"),
        "/api/sessions/..%5c..%5csecret.txt/video.mp4".to_string(),
        "/style.css/../secret.txt".to_string(),
        "/app.js%2f..%2fsecret.txt".to_string(),
        "/../secret.txt".to_string(),
        "/%2e%2e/%2e%2e/etc/passwd".to_string(),
        "//etc/passwd".to_string(),
    ] {
        let r = get(&d, &path, "");
        assert!(
            [400, 404].contains(&r.status),
            "{path} answered {}",
            r.status
        );
        let text = r.text();
        assert!(
            !text.contains(marker) && !text.contains("SQLite format") && !text.contains("root:"),
            "{path} served a file"
        );
    }

    // Oversized headers: 431. Oversized bodies: 413 on every route that takes one.
    let big = "x".repeat(512 * 1024);
    let r = raw(
        &addr_of(&d),
        &format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\nConnection: close\r\n\r\n"),
        b"",
    );
    assert_eq!(r.status, 431);
    for path in [
        "/admin/login".to_string(),
        "/admin/logout".to_string(),
        "/admin/password".to_string(),
        "/admin/end-of-event".to_string(),
        format!("/d/{token}/delete"),
        "/api/sessions".to_string(),
        format!("/api/sessions/{id}/consent"),
        "/api/admin/setup".to_string(),
        "/api/end-of-event".to_string(),
    ] {
        let r = raw(
            &addr_of(&d),
            &format!(
                "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 10000000\r\nConnection: close\r\n\r\n"
            ),
            &[b'a'; 4096],
        );
        assert_eq!(r.status, 413, "{path}");
    }
    assert_eq!(
        get(&d, &format!("/d/{token}"), "").status,
        200,
        "not deleted"
    );

    // The kiosk API from another machine: 403 (the daemon listens on every address here).
    match lan_address() {
        Some(ip) => {
            let lan = format!("{ip}:{}", d.base.rsplit(':').next().unwrap());
            let r = raw(
                &lan,
                &format!("GET /api/status HTTP/1.1\r\nHost: {lan}\r\nConnection: close\r\n\r\n"),
                b"",
            );
            assert_eq!(r.status, 403, "kiosk API from {ip}");
            for path in ["/api/end-of-event", "/api/sessions", "/api/admin/setup"] {
                assert_eq!(post_json(&lan, path, "{}").status, 403, "{path} from {ip}");
            }
            let r = raw(
                &lan,
                &format!("GET /d/{token} HTTP/1.1\r\nHost: {lan}\r\nConnection: close\r\n\r\n"),
                b"",
            );
            assert_eq!(r.status, 200, "guests reach the download page from {ip}");
            let r = raw(
                &lan,
                &format!("GET /admin/login HTTP/1.1\r\nHost: {lan}\r\nConnection: close\r\n\r\n"),
                b"",
            );
            assert_eq!(
                r.status, 200,
                "the operator reaches the admin login from {ip}"
            );
        }
        None => eprintln!(
            "SKIPPED the non-loopback part of {name}: this machine has no non-loopback address"
        ),
    }

    // Admin without a session: the login page (GET) or 401 (POST).
    let r = get(&d, "/admin", "");
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/admin/login"));
    assert_eq!(get(&d, "/admin/password", "").status, 303);
    let r = post_form(&d, "/admin/end-of-event", "", "csrf=x&confirm=yes");
    assert_eq!(r.status, 401);
    let forged = "kb_admin=0123456789abcdef0123456789abcdef";
    assert_eq!(
        get(&d, "/admin", &format!("Cookie: {forged}\r\n")).status,
        303
    );

    // Wrong password: 401.
    let r = login(&d, "not the password");
    assert_eq!(r.status, 401);
    assert!(r.text().contains("Wrong password"));
    assert!(r.header("set-cookie").is_none());

    // The right one: a session cookie that scripts cannot read, for /admin only, that expires.
    let r = login(&d, ADMIN_PASSWORD);
    assert_eq!(r.status, 303, "{}", r.text());
    let set = r.header("set-cookie").unwrap().to_string();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/admin", "Max-Age="] {
        assert!(set.contains(attr), "{set} lacks {attr}");
    }
    let sid = session_cookie(&r);
    assert!(sid.len() >= 32, "a 128-bit session id: {sid}");
    let cookie = format!("Cookie: kb_admin={sid}\r\n");
    let health = get(&d, "/admin", &cookie);
    assert_eq!(health.status, 200);
    let page = health.text();
    for words in [
        "Booth health",
        "Sessions by state",
        "done",
        "Render times",
        "Temperatures",
        "Power",
        "GPU load",
        "End of event",
    ] {
        assert!(page.contains(words), "the health page lacks {words:?}");
    }
    assert!(!page.contains(&token), "the health page shows a token");
    assert_eq!(health.header("x-frame-options"), Some("DENY"));
    assert!(health.header("content-security-policy").is_some());
    let csrf = csrf_of(&page);

    // CSRF: no token, a wrong token, another origin: 403, and nothing deleted.
    let r = post_form(&d, "/admin/end-of-event", &cookie, "confirm=yes");
    assert_eq!(r.status, 403);
    let mut wrong = csrf.clone().into_bytes();
    wrong[0] = if wrong[0] == b'0' { b'1' } else { b'0' };
    let wrong = String::from_utf8(wrong).unwrap();
    let r = post_form(
        &d,
        "/admin/end-of-event",
        &cookie,
        &format!("csrf={wrong}&confirm=yes"),
    );
    assert_eq!(r.status, 403);
    let r = post_form(
        &d,
        "/admin/end-of-event",
        &format!("{cookie}Origin: http://evil.example\r\n"),
        &format!("csrf={csrf}&confirm=yes"),
    );
    assert_eq!(r.status, 403);
    let r = post_form(
        &d,
        "/admin/logout",
        &format!("{cookie}Sec-Fetch-Site: cross-site\r\n"),
        &format!("csrf={csrf}"),
    );
    assert_eq!(r.status, 403);
    assert_eq!(
        get(&d, &format!("/d/{token}"), "").status,
        200,
        "not deleted"
    );

    // With the token and from the page's own origin: the event ends.
    let r = post_form(
        &d,
        "/admin/end-of-event",
        &format!("{cookie}Origin: {}\r\n", d.base),
        &format!("csrf={csrf}&confirm=yes"),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("deleted"));
    assert_eq!(get(&d, &format!("/d/{token}"), "").status, 404);

    // "Keep source captures": refused without the token, saved with it, shown on the page.
    assert!(page.contains("Deleted as soon as each couple's video is done"));
    let r = post_form(&d, "/admin/captures", &cookie, "keep=yes");
    assert_eq!(r.status, 403);
    let r = post_form(
        &d,
        "/admin/captures",
        &cookie,
        &format!("csrf={csrf}&keep=yes"),
    );
    assert_eq!(r.status, 303, "{}", r.text());
    let page = get(&d, "/admin", &cookie).text();
    assert!(page.contains("Kept: each couple"), "not kept: {page}");
    assert!(page.contains("keep_captures_changed"), "not audited");
    // The audit list says when in words a person reads: a date and a time, not Unix seconds.
    let at = page
        .find(" keep_captures_changed")
        .map(|i| &page[i.saturating_sub(19)..i])
        .unwrap_or_default();
    let shape = at.len() == 19
        && at.chars().enumerate().all(|(i, c)| match i {
            4 | 7 => c == '-',
            10 => c == ' ',
            13 | 16 => c == ':',
            _ => c.is_ascii_digit(),
        });
    assert!(shape, "the audit time is {at:?}, not YYYY-MM-DD HH:MM:SS");

    // A new password: the old one stops working, every other session ends.
    let other = session_cookie(&login(&d, ADMIN_PASSWORD));
    let new_password = "a brand new admin password";
    // A wrong current password changes nothing and ends no session.
    let r = post_form(
        &d,
        "/admin/password",
        &cookie,
        &format!(
            "csrf={csrf}&current={}&new={}&confirm={}",
            enc("not the current one"),
            enc(new_password),
            enc(new_password)
        ),
    );
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(
        r.text().contains("current password is wrong"),
        "{}",
        r.text()
    );
    assert_eq!(
        get(&d, "/admin", &format!("Cookie: kb_admin={other}\r\n")).status,
        200,
        "a failed change ended another session"
    );
    let r = post_form(
        &d,
        "/admin/password",
        &cookie,
        &format!(
            "csrf={csrf}&current={}&new={}&confirm={}",
            enc(ADMIN_PASSWORD),
            enc(new_password),
            enc(new_password)
        ),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let sid2 = session_cookie(&r);
    assert_eq!(
        get(&d, "/admin", &format!("Cookie: kb_admin={other}\r\n")).status,
        303,
        "another session ended"
    );
    let cookie2 = format!("Cookie: kb_admin={sid2}\r\n");
    let page = get(&d, "/admin", &cookie2);
    assert_eq!(page.status, 200);
    let csrf2 = csrf_of(&page.text());
    let r = post_form(&d, "/admin/logout", &cookie2, &format!("csrf={csrf2}"));
    assert_eq!(r.status, 303);
    assert_eq!(get(&d, "/admin", &cookie2).status, 303, "logged out");
    let last = login(&d, new_password);
    assert_eq!(last.status, 303);
    let sid3 = session_cookie(&last);

    // Rate limit: wrong passwords from one address, then 429 with Retry-After, even for the
    // right password.
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(login(&d, "guessing again").status);
    }
    assert_eq!(statuses[..5], [401, 401, 401, 401, 401], "{statuses:?}");
    assert_eq!(statuses[5], 429, "{statuses:?}");
    let r = login(&d, new_password);
    assert_eq!(r.status, 429);
    let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=300).contains(&wait), "{wait}");

    // The audit log has the logins, failures, lockout, password change and end of event.
    let (st, _) = d.get_json("/api/status");
    assert_eq!(st, 200);
    let db = audit_events(d.data.path());
    for e in [
        "admin_login",
        "admin_login_failed",
        "admin_lockout",
        "admin_password_set",
        "admin_password_changed",
        "end_of_event_requested",
        "end_of_event",
    ] {
        assert!(db.iter().any(|x| x == e), "audit lacks {e}: {db:?}");
    }

    // Nothing secret in the daemon's output.
    let data = d.kill();
    let log = std::fs::read_to_string(data.path().join("daemon.log")).unwrap();
    assert!(log.len() > 100, "the daemon wrote a log: {log}");
    for (what, secret) in [
        ("a download token", token.as_str()),
        ("a session cookie", sid.as_str()),
        ("a session cookie", sid2.as_str()),
        ("a session cookie", sid3.as_str()),
        ("a csrf token", csrf.as_str()),
        ("the password", ADMIN_PASSWORD),
        ("the password", new_password),
        ("the password", &enc(new_password)),
    ] {
        assert!(!log.contains(secret), "the log holds {what}");
    }
}

#[test]
fn the_first_password_is_chosen_on_the_booth_itself_only() {
    let name = "the_first_password_is_chosen_on_the_booth_itself_only";
    if !have_models(name) {
        return;
    }
    let d = Daemon::start_with(
        &[fixture("couple_1280x720.jpg")],
        &[],
        Start {
            admin_password: None,
            all_addresses: true,
            ..Start::default()
        },
    );
    let (_, s) = d.get_json("/api/status");
    assert_eq!(s["admin_setup_needed"], true, "{s}");
    let r = get(&d, "/admin/login", "");
    assert_eq!(r.status, 200);
    assert!(r.text().contains("not set up yet"), "{}", r.text());
    assert!(!r.text().contains("type=\"password\""), "no login form yet");
    assert_eq!(login(&d, "anything at all").status, 409);
    assert_eq!(get(&d, "/admin", "").status, 303);

    let addr = addr_of(&d);
    match lan_address() {
        Some(ip) => {
            let lan = format!("{ip}:{}", d.base.rsplit(':').next().unwrap());
            let r = post_json(
                &lan,
                "/api/admin/setup",
                r#"{"password":"from the network","confirm":"from the network"}"#,
            );
            assert_eq!(r.status, 403, "set-up from {ip}");
        }
        None => eprintln!(
            "SKIPPED the non-loopback part of {name}: this machine has no non-loopback address"
        ),
    }
    let (_, s) = d.get_json("/api/status");
    assert_eq!(s["admin_setup_needed"], true, "still not set up: {s}");

    // A guest at the kiosk has no set-up code: the password cannot be chosen without it.
    let setup = |code: &str, password: &str, confirm: &str| {
        post_json(
            &addr,
            "/api/admin/setup",
            &serde_json::json!({"code": code, "password": password, "confirm": confirm})
                .to_string(),
        )
    };
    let first = setup_code_in_log(&d.log()).expect("the set-up code is in the daemon's log");
    let r = post_json(
        &addr,
        "/api/admin/setup",
        r#"{"password":"no code at all","confirm":"no code at all"}"#,
    );
    assert_eq!(r.status, 403, "{}", r.text());
    let r = setup("0000-0000", "a guest's pick", "a guest's pick");
    assert_eq!(r.status, 403);
    assert!(r.text().contains("journalctl"), "{}", r.text());
    // With the code, the password's own rules.
    let r = setup(&first, "short", "short");
    assert_eq!(r.status, 400);
    assert!(r.text().contains("at least 8"), "{}", r.text());
    let r = setup(&first, "long enough one", "long enough two");
    assert_eq!(r.status, 400);
    assert!(r.text().contains("not the same"), "{}", r.text());
    // Five wrong codes (two above) void the code; a new one is in the log, not on the screen.
    for _ in 0..2 {
        assert_eq!(
            setup("1111-1111", "a guest's pick", "a guest's pick").status,
            403
        );
    }
    let r = setup("2222-2222", "a guest's pick", "a guest's pick");
    assert_eq!(r.status, 403);
    assert!(r.text().contains("no longer works"), "{}", r.text());
    assert_eq!(
        setup(&first, "the chosen one", "the chosen one").status,
        403
    );
    let second = setup_code_in_log(&d.log()).unwrap();
    assert_ne!(second, first);
    assert!(
        !r.text().contains(&second),
        "the new code is not shown to whoever guessed"
    );
    // The operator may also ask the booth for a new one on its command line.
    let out = setup_code_from_cli(d.data.path());
    assert!(out.status.success(), "{out:?}");
    let third = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(third.len(), 9, "{third}");
    assert_eq!(
        setup(&second, "the chosen one", "the chosen one").status,
        403
    );
    let r = setup(&third, "the chosen one", "the chosen one");
    assert_eq!(r.status, 201, "{}", r.text());
    let r = setup(&third, "a takeover try", "a takeover try");
    assert_eq!(r.status, 409, "set once only");
    let out = setup_code_from_cli(d.data.path());
    assert_eq!(
        out.status.code(),
        Some(2),
        "no set-up code once a password is set"
    );
    let (_, s) = d.get_json("/api/status");
    assert_eq!(s["admin_setup_needed"], false, "{s}");
    assert_eq!(login(&d, "a takeover try").status, 401);
    assert_eq!(login(&d, "the chosen one").status, 303);

    // The command line replaces it (an operator who forgot it, on the booth itself).
    let o = set_admin_password(d.data.path(), "replaced on the command line");
    assert!(o.status.success(), "{:?}", stderr_lines(&o));
    let out = String::from_utf8_lossy(&o.stderr).to_string() + &String::from_utf8_lossy(&o.stdout);
    assert!(!out.contains("replaced on the command line"), "{out}");
    assert_eq!(login(&d, "the chosen one").status, 401);
    assert_eq!(login(&d, "replaced on the command line").status, 303);
    let o = set_admin_password(d.data.path(), "short");
    assert!(!o.status.success(), "a short password is refused");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("at least 8"),
        "{:?}",
        stderr_lines(&o)
    );
}

/// A POST with exactly these headers (`Content-Type` included or not) and body.
fn post_raw(d: &Daemon, path: &str, headers: &str, body: &str) -> Resp {
    raw(
        &addr_of(d),
        &format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
            addr_of(d),
            body.len()
        ),
        body.as_bytes(),
    )
}

#[test]
fn consent_is_the_exact_body_and_anything_else_changes_nothing() {
    let name = "consent_is_the_exact_body_and_anything_else_changes_nothing";
    if !have_models(name) {
        return;
    }
    let d = Daemon::start(&[fixture("couple_1280x720.jpg")], &[]);
    let id = d.new_session();
    let path = format!("/api/sessions/{id}/consent");
    let json = "Content-Type: application/json\r\n";
    for (headers, body, status) in [
        // No Content-Type: once recorded as the consent of two, whatever the body said.
        ("", r#"{"people":1,"accepted":false}"#, 415),
        ("", "[]", 415),
        ("", "", 415),
        ("", r#"{"people":2,"accepted":true}"#, 415),
        (
            "Content-Type: text/plain\r\n",
            r#"{"people":2,"accepted":true}"#,
            415,
        ),
        (
            "Content-Type: application/x-www-form-urlencoded\r\n",
            "people=2&accepted=true",
            415,
        ),
        (json, "", 400),
        (json, "[]", 422),
        (json, "null", 422),
        (json, "{}", 422),
        (json, r#"{"people":2}"#, 422),
        (json, r#"{"accepted":true}"#, 422),
        (json, r#"{"people":2,"accepted":true,"also":"this"}"#, 422),
        (json, r#"{"people":"2","accepted":true}"#, 422),
        (json, r#"{"people":2.0,"accepted":true}"#, 422),
        (json, r#"{"people":2,"accepted":"yes"}"#, 422),
        (json, r#"{"people":2,"accepted":1}"#, 422),
        (
            json,
            r#"{"people":2,"accepted":true,"accepted":false}"#,
            422,
        ),
        (json, r#"{"people":2,"accepted":true} {}"#, 400),
        (json, r#"{"people":1,"accepted":false}"#, 400),
        (json, r#"{"people":1,"accepted":true}"#, 400),
        (json, r#"{"people":3,"accepted":true}"#, 400),
        (json, r#"{"people":2,"accepted":false}"#, 400),
    ] {
        let r = post_raw(&d, &path, headers, body);
        assert_eq!(r.status, status, "{headers:?} {body:?}: {}", r.text());
        let (_, v) = d.get_json(&format!("/api/sessions/{id}"));
        assert_eq!(
            v["state"], "consent",
            "{headers:?} {body:?} changed it: {v}"
        );
        let (st, v) = d.post(&format!("/api/sessions/{id}/capture"));
        assert_eq!(
            st, 409,
            "{headers:?} {body:?}: captured without consent: {v}"
        );
    }
    // The kiosk's own request, with a charset too.
    let r = post_raw(
        &d,
        &path,
        "Content-Type: application/json; charset=utf-8\r\n",
        r#"{"people": 2, "accepted": true}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let (_, v) = d.get_json(&format!("/api/sessions/{id}"));
    assert_eq!(v["state"], "pose", "{v}");
}

#[test]
fn the_kiosk_api_answers_its_own_screen_by_a_loopback_name_and_origin_only() {
    let name = "the_kiosk_api_answers_its_own_screen_by_a_loopback_name_and_origin_only";
    if !have_models(name) {
        return;
    }
    let d = Daemon::start_with(
        &[fixture("couple_1280x720.jpg")],
        &[],
        Start {
            admin_password: None,
            ..Start::default()
        },
    );
    let addr = addr_of(&d);
    let port = d.base.rsplit(':').next().unwrap().to_string();
    let with_host = |method: &str, path: &str, host: &str, extra: &str| {
        raw(
            &addr,
            &format!(
                "{method} {path} HTTP/1.1\r\nHost: {host}\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n"
            ),
            b"",
        )
    };
    // A session with a capture, which "end of event" would delete.
    let id = d.new_session();
    assert_eq!(d.consent(&id).0, 200);
    let (st, v) = d.post(&format!("/api/sessions/{id}/capture"));
    assert_eq!((st, &v["session"]["state"]), (200, &"review".into()), "{v}");

    // DNS rebinding: a page of attacker.example whose name now points at 127.0.0.1 sends its
    // own name. Nothing is answered: not the app, its status, a session, a capture or the
    // preview, and the first admin password cannot be set.
    let foreign = [
        format!("attacker.example:{port}"),
        "attacker.example".to_string(),
        format!("localhost.attacker.example:{port}"),
        format!("127.0.0.1.nip.io:{port}"),
        "127.0.0.1".to_string(),
        format!("localhost:{}", port.parse::<u16>().unwrap() ^ 1),
        format!("0.0.0.0:{port}"),
    ];
    for host in &foreign {
        for path in [
            "/".to_string(),
            "/app.js".to_string(),
            "/api/status".to_string(),
            format!("/api/sessions/{id}"),
            format!("/api/sessions/{id}/capture.jpg"),
            "/api/preview.jpg".to_string(),
            "/api/events".to_string(),
            "/metrics".to_string(),
        ] {
            let r = with_host("GET", &path, host, "");
            assert_eq!(r.status, 403, "GET {path} with Host {host}: {}", r.text());
            assert!(
                !r.text().contains(&id),
                "GET {path} with Host {host} shows the session"
            );
        }
        let r = post_json_with_host(&addr, host, "/api/admin/setup");
        assert_eq!(r.status, 403, "set-up with Host {host}");
        assert_eq!(with_host("POST", "/api/end-of-event", host, "").status, 403);
    }
    // The request target cannot name another host either.
    let r = raw(
        &addr,
        &format!(
            "GET http://attacker.example:{port}/api/status HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
        ),
        b"",
    );
    assert_eq!(r.status, 403);
    let (_, s) = d.get_json("/api/status");
    assert_eq!(s["admin_setup_needed"], true, "still not set up: {s}");

    // A form on another site posting to the booth: refused, nothing deleted.
    let form = "Content-Type: application/x-www-form-urlencoded\r\n";
    for from in [
        "Origin: http://attacker.example\r\n".to_string(),
        "Origin: null\r\n".to_string(),
        format!("Origin: http://localhost:{port}\r\n"),
        "Sec-Fetch-Site: cross-site\r\nOrigin: http://attacker.example\r\n".to_string(),
        format!("Sec-Fetch-Site: same-site\r\nOrigin: http://127.0.0.1:{port}\r\n"),
    ] {
        let host = format!("127.0.0.1:{port}");
        let r = with_host("POST", "/api/end-of-event", &host, &format!("{from}{form}"));
        assert_eq!(r.status, 403, "{from:?}: {}", r.text());
        let r = with_host("POST", "/api/sessions", &host, &from);
        assert_eq!(r.status, 403, "{from:?} opened a session");
        let (_, v) = d.get_json(&format!("/api/sessions/{id}"));
        assert_eq!(v["state"], "review", "{from:?} purged: {v}");
    }

    // The kiosk itself, by each loopback name, from its own pages.
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
    ] {
        let r = with_host(
            "GET",
            "/api/status",
            &host,
            "Sec-Fetch-Site: same-origin\r\n",
        );
        assert_eq!(r.status, 200, "Host {host}: {}", r.text());
        let r = with_host("GET", "/", &host, "Sec-Fetch-Site: none\r\n");
        assert_eq!(r.status, 200, "the app with Host {host}");
    }
    let host = format!("127.0.0.1:{port}");
    let r = with_host(
        "POST",
        "/api/end-of-event",
        &host,
        &format!("Origin: http://{host}\r\nSec-Fetch-Site: same-origin\r\n"),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let (_, v) = d.get_json(&format!("/api/sessions/{id}"));
    assert_eq!(v["state"], "purged", "{v}");
}

fn post_json_with_host(addr: &str, host: &str, path: &str) -> Resp {
    let json = r#"{"password":"chosen by a web page","confirm":"chosen by a web page"}"#;
    raw(
        addr,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            json.len()
        ),
        json.as_bytes(),
    )
}

/// The operator's view of the event: what the booth counted (sessions started, videos made,
/// pictures the face check refused, failed renders, downloads), closing the booth without
/// deleting anything, opening it again, and "End of event" closing it, deleting everything and
/// starting the counts again.
#[test]
fn the_operator_counts_the_event_closes_and_reopens_the_booth() {
    let name = "the_operator_counts_the_event_closes_and_reopens_the_booth";
    if !have_models(name) {
        return;
    }
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        cfg_dir.path(),
        "[render]\nseconds = 3.0\nfps = 8\nwidth = 256\nheight = 256\n",
    );
    let d = Daemon::start(&[fixture("couple_1280x720.jpg")], &["--config", &cfg]);
    let (_, url) = d.make_video();
    let path = &url[url.find("/d/").unwrap()..];
    // One phone downloads it (a video element's first range), and seeks (not a new download).
    assert_eq!(
        get(&d, &format!("{path}/video.mp4"), "Range: bytes=0-\r\n").status,
        206
    );
    assert_eq!(
        get(&d, &format!("{path}/video.mp4"), "Range: bytes=100-\r\n").status,
        206
    );
    // One face in front of the camera: the face check refuses the picture.
    let stills = d.data.path().join("stills");
    std::fs::copy(fixture("mona_lisa.jpg"), stills.join(".one.jpg")).unwrap();
    std::fs::rename(stills.join(".one.jpg"), stills.join("001.jpg")).unwrap();
    std::fs::remove_file(stills.join("000.jpg")).unwrap();
    std::thread::sleep(std::time::Duration::from_secs(3));
    let id = d.new_session();
    let (st, _) = d.consent(&id);
    assert_eq!(st, 200);
    let (st, v) = d.post(&format!("/api/sessions/{id}/capture"));
    assert_eq!(
        (st, &v["verdict"]["ok"]),
        (200, &serde_json::json!(false)),
        "{v}"
    );

    let metrics = get(&d, "/metrics", "").text();
    assert!(
        metrics.contains("kissbooth_event_count{what=\"downloads\"} 1")
            && metrics.contains("kissbooth_event_count{what=\"refused\"} 1")
            && metrics.contains("kissbooth_closed 0"),
        "{metrics}"
    );
    let r = login(&d, ADMIN_PASSWORD);
    assert_eq!(r.status, 303);
    let cookie = format!("Cookie: kb_admin={}\r\n", session_cookie(&r));
    let page = get(&d, "/admin", &cookie).text();
    for (label, n) in [
        ("Sessions started", 2),
        ("Videos made", 1),
        ("Pictures refused by the face check", 1),
        ("Renders failed", 0),
        ("Downloads", 1),
    ] {
        assert!(
            page.contains(&format!("<tr><th>{label}</th><td>{n}</td></tr>")),
            "{label}: {n} not on the health page: {page}"
        );
    }
    assert!(page.contains("<b>Open</b>"), "{page}");
    let csrf = csrf_of(&page);
    let origin = format!("{cookie}Origin: {}\r\n", d.base);

    // Closed: no new couple, nothing deleted, the kiosk hears it.
    assert_eq!(
        post_form(&d, "/admin/open", &cookie, "open=no").status,
        403,
        "no csrf"
    );
    let r = post_form(&d, "/admin/open", &origin, &format!("csrf={csrf}&open=no"));
    assert_eq!(r.status, 303, "{}", r.text());
    let (_, s) = d.get_json("/api/status");
    assert_eq!(s["closed"], true, "{s}");
    let (st, v) = d.post("/api/sessions");
    assert_eq!(st, 503, "{v}");
    assert!(v["error"].as_str().unwrap().contains("closed"), "{v}");
    assert_eq!(get(&d, path, "").status, 200, "closing deletes nothing");
    assert!(get(&d, "/admin", &cookie).text().contains("<b>Closed</b>"));

    // Open again.
    let r = post_form(&d, "/admin/open", &origin, &format!("csrf={csrf}&open=yes"));
    assert_eq!(r.status, 303);
    let (_, s) = d.get_json("/api/status");
    assert_eq!(s["closed"], false, "{s}");
    d.new_session();

    // End of event: closed, everything deleted, the event's figures said, counts from zero.
    let r = post_form(
        &d,
        "/admin/end-of-event",
        &origin,
        &format!("csrf={csrf}&confirm=yes"),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let text = r.text();
    assert!(
        text.contains("Sessions started: 3") && text.contains("Downloads: 1"),
        "{text}"
    );
    assert_eq!(get(&d, path, "").status, 404);
    let (_, s) = d.get_json("/api/status");
    assert_eq!(s["closed"], true, "{s}");
    let page = get(&d, "/admin", &cookie).text();
    assert!(
        page.contains("<tr><th>Sessions started</th><td>0</td></tr>"),
        "{page}"
    );
    assert!(page.contains("<b>Closed</b>"), "{page}");
}

/// A multipart form of one CSRF field and one file, as a browser sends an upload.
fn multipart(csrf: &str, file: &[u8]) -> (String, Vec<u8>) {
    let boundary = "----kissboothtest7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"logo\"; filename=\"logo.png\"\r\n\
             Content-Type: image/png\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

fn post_upload(d: &Daemon, extra: &str, content_type: &str, body: &[u8]) -> Resp {
    raw(
        &addr_of(d),
        &format!(
            "POST /admin/logo HTTP/1.1\r\nHost: {}\r\n{extra}Content-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            addr_of(d),
            body.len()
        ),
        body,
    )
}

/// Mean colour of a region of an image.
fn mean_rgb(img: &image::RgbImage, x0: u32, y0: u32, w: u32, h: u32) -> [f64; 3] {
    let mut sum = [0.0; 3];
    for y in y0..y0 + h {
        for x in x0..x0 + w {
            let p = img.get_pixel(x, y).0;
            for c in 0..3 {
                sum[c] += f64::from(p[c]);
            }
        }
    }
    sum.map(|s| s / f64::from(w * h))
}

/// The operator sets the event up on the settings page: refused values are said and nothing
/// changes; saved ones reach the kiosk (name, countdown, retention, Wi-Fi) and the next clip
/// (length, shape, the uploaded logo at its corner, on frames and the poster), with no restart.
#[test]
fn the_operator_sets_up_the_event_and_the_next_clip_follows() {
    let name = "the_operator_sets_up_the_event_and_the_next_clip_follows";
    if !have_models(name) {
        return;
    }
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        cfg_dir.path(),
        "[render]\nseconds = 3.0\nfps = 8\nwidth = 256\nheight = 256\n",
    );
    let d = Daemon::start(&[fixture("couple_1280x720.jpg")], &["--config", &cfg]);
    let r = login(&d, ADMIN_PASSWORD);
    let cookie = format!("Cookie: kb_admin={}\r\n", session_cookie(&r));
    let origin = format!("{cookie}Origin: {}\r\n", d.base);
    assert_eq!(
        get(&d, "/admin/settings", "").status,
        303,
        "a session is needed"
    );
    let page = get(&d, "/admin/settings", &cookie);
    assert_eq!(page.status, 200);
    let text = page.text();
    assert!(
        text.contains("Event settings") && text.contains("value=\"square\" checked"),
        "{text}"
    );
    let csrf = csrf_of(&text);
    let form = |countdown: &str| {
        format!(
            "csrf={csrf}&event_name={}&countdown_s={countdown}&clip_seconds=3&shape=portrait&\
             retention_hours=2&wifi_ssid=BoothNet&wifi_password=kiss-kiss-kiss&wifi_security=WPA&\
             logo_corner=top_right&logo_width_pct=30",
            enc("Anna & Ben's <wedding>")
        )
    };
    // Refused: said, and nothing changes.
    let r = post_form(&d, "/admin/settings", &origin, &form("2"));
    assert_eq!(r.status, 400);
    assert!(
        r.text().contains("The countdown is 3 to 10 seconds"),
        "{}",
        r.text()
    );
    let evil = format!("{cookie}Origin: http://evil.example\r\n");
    assert_eq!(
        post_form(&d, "/admin/settings", &evil, &form("5")).status,
        403,
        "another site"
    );
    let (_, s) = d.get_json("/api/status");
    assert_eq!(s["event"]["countdown_s"], 3, "{s}");
    // Saved: the kiosk hears it at once.
    let r = post_form(&d, "/admin/settings", &origin, &form("5"));
    assert_eq!(r.status, 303, "{}", r.text());
    let (_, s) = d.get_json("/api/status");
    assert_eq!(s["event"]["name"], "Anna & Ben's <wedding>", "{s}");
    assert_eq!(s["event"]["countdown_s"], 5, "{s}");
    assert_eq!(s["event"]["retention_hours"], 2.0, "{s}");
    assert_eq!(s["wifi"], true, "{s}");
    assert_eq!(get(&d, "/api/wifi-qr.svg", "").status, 200);
    let again = get(&d, "/admin/settings", &cookie).text();
    assert!(
        again.contains("Anna &amp; Ben&#39;s &lt;wedding&gt;"),
        "escaped on the page"
    );

    // The logo: only a PNG, only with the token, not too large.
    let mut logo = image::RgbaImage::from_pixel(64, 32, image::Rgba([230, 20, 30, 255]));
    logo.put_pixel(0, 0, image::Rgba([0, 0, 0, 0]));
    let mut png = Vec::new();
    image::DynamicImage::ImageRgba8(logo)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let (ct, body) = multipart("wrong", &png);
    assert_eq!(post_upload(&d, &origin, &ct, &body).status, 403);
    let jpeg = std::fs::read(fixture("mona_lisa.jpg")).unwrap();
    let (ct, body) = multipart(&csrf, &jpeg);
    let r = post_upload(&d, &origin, &ct, &body);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("not a PNG"), "{}", r.text());
    let (ct, body) = multipart(&csrf, &vec![0u8; 3 << 20]);
    assert_eq!(post_upload(&d, &origin, &ct, &body).status, 413);
    let (ct, body) = multipart(&csrf, &png);
    let r = post_upload(&d, &origin, &ct, &body);
    assert_eq!(r.status, 303, "{}", r.text());
    // The preview: a portrait frame with the logo top right.
    let r = get(&d, "/admin/logo/preview.jpg", &cookie);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("image/jpeg"));
    let preview = image::load_from_memory(&r.body).unwrap().to_rgb8();
    assert_eq!(preview.dimensions(), (720, 1280));
    let [red, green, _] = mean_rgb(&preview, 650, 20, 40, 20);
    assert!(
        red > 180.0 && green < 80.0,
        "no red logo top right: {red} {green}"
    );
    assert!(
        get(&d, "/admin/settings", &cookie)
            .text()
            .contains("/admin/logo/preview.jpg")
    );

    // The next clip: 3 s, portrait 720x1280, the logo on its frames and its poster.
    let (id, url) = d.make_video();
    let dir = d.data.path().join(format!("sessions/{id}"));
    let p = probe(&dir.join("video.mp4"));
    assert_eq!(p["streams"][0]["width"], 720, "{p}");
    assert_eq!(p["streams"][0]["height"], 1280, "{p}");
    let secs: f64 = p["format"]["duration"].as_str().unwrap().parse().unwrap();
    assert!((secs - 3.0).abs() < 0.3, "{secs}");
    let poster = image::open(dir.join("video.jpg")).unwrap().to_rgb8();
    let [red, green, _] = mean_rgb(&poster, 650, 20, 40, 20);
    assert!(
        red > 180.0 && green < 80.0,
        "no logo on the poster: {red} {green}"
    );
    let frame = dir.join("first.png");
    let o = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(dir.join("video.mp4"))
        .args(["-frames:v", "1"])
        .arg(&frame)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let first = image::open(&frame).unwrap().to_rgb8();
    std::fs::remove_file(&frame).unwrap();
    let [red, green, _] = mean_rgb(&first, 650, 20, 40, 20);
    assert!(
        red > 150.0 && green < 100.0,
        "no logo on the clip: {red} {green}"
    );
    // The event's name is set above the couple in the portrait clip, in gold.
    let gold = (0..180)
        .flat_map(|y| (60..660).map(move |x| (x, y)))
        .filter(|&(x, y)| {
            let [r, g, b] = first.get_pixel(x, y).0;
            r > 200 && g > 150 && b < 170
        })
        .count();
    assert!(gold > 300, "no title above the couple: {gold} gold pixels");
    // The retention the operator chose bounds the link.
    let (_, v) = d.get_json(&format!("/api/sessions/{id}"));
    let left = v["expires_at"].as_i64().unwrap() - now_unix();
    assert!(left <= 2 * 3600 && left > 3600, "{left}");
    // The guests' page names the event (escaped).
    let page = get(&d, &url[url.find("/d/").unwrap()..], "").text();
    assert!(
        page.contains("Anna &amp; Ben&#39;s &lt;wedding&gt;"),
        "{page}"
    );

    // Removing the logo: the next clip goes without it.
    let r = post_form(&d, "/admin/logo/remove", &origin, &format!("csrf={csrf}"));
    assert_eq!(r.status, 303);
    assert_eq!(get(&d, "/admin/logo/preview.jpg", &cookie).status, 404);
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}
