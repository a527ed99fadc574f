//! The operator's admin pages at `/admin`, reachable from the booth's network (a phone or a
//! laptop): log in, the health page, "end of event", change the password, log out.
//!
//! The password is stored only as an argon2id hash in the SQLite settings; there is no default.
//! It is chosen on the kiosk's first-boot screen (loopback-only API) or with
//! `kissbooth admin set-password`. Sessions live in memory: a random 128-bit id in an HttpOnly,
//! SameSite=Strict cookie scoped to `/admin`, ending after 12 idle hours or when the password
//! changes. Every state-changing request carries the session's synchronizer token and is refused
//! from another origin. Failed logins are limited per peer address and in total.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use crate::booth::Booth;
use crate::store::Store;

mod album_export;
mod auth;
mod health;
mod settings_page;
mod setup;

pub use auth::*;
pub use setup::*;

const PAGE: &str = include_str!("../../../../kiosk-ui/admin.html");

#[derive(Clone)]
pub struct AdminState {
    pub booth: Arc<Booth>,
    pub auth: Arc<Auth>,
}

/// The largest logo upload request: the PNG and the form around it.
const UPLOAD_LIMIT: usize = crate::booth::settings::MAX_LOGO_BYTES + (64 << 10);

pub fn router(booth: Arc<Booth>) -> Router {
    let state = AdminState {
        booth,
        auth: Arc::new(Auth::default()),
    };
    Router::new()
        .route("/admin", get(health::health_page))
        .route("/admin/", get(|| async { Redirect::to("/admin") }))
        .route("/admin/login", get(login_page).post(login))
        .route("/admin/logout", post(logout))
        .route("/admin/password", get(password_page).post(change_password))
        .route("/admin/end-of-event", post(end_of_event))
        .route("/admin/captures", post(captures))
        .route("/admin/open", post(open_or_close))
        .route(
            "/admin/settings",
            get(settings_page::settings_page).post(settings_page::save_settings),
        )
        .route("/admin/logo/remove", post(settings_page::remove_logo))
        .route("/admin/album.zip", get(album_export::album_zip))
        .route("/admin/logo/preview.jpg", get(settings_page::logo_preview))
        // Forms are small; only the logo upload may be larger.
        .layer(tower_http::limit::RequestBodyLimitLayer::new(16 * 1024))
        .merge(
            Router::new()
                .route("/admin/logo", post(settings_page::upload_logo))
                .layer(axum::extract::DefaultBodyLimit::max(UPLOAD_LIMIT))
                .layer(tower_http::limit::RequestBodyLimitLayer::new(UPLOAD_LIMIT)),
        )
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(30),
        ))
        .with_state(state)
}

pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// An admin page: never cached, never framed, no scripts.
fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = PAGE
        .replace("{{TITLE}}", &esc(title))
        .replace("{{BODY}}", body);
    let mut r = (status, axum::response::Html(html)).into_response();
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // The forms' POSTs then carry the page's origin (under "no-referrer" it would be "null").
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    r
}

fn message(status: StatusCode, title: &str, text: &str) -> Response {
    page(
        status,
        title,
        &format!(
            "<h1>{}</h1><p class=\"msg\">{}</p><p><a class=\"btn\" href=\"/admin\">Back</a></p>",
            esc(title),
            esc(text)
        ),
    )
}

fn forbidden() -> Response {
    message(
        StatusCode::FORBIDDEN,
        "Refused",
        "This form has expired or came from another page. Open the admin page again and retry.",
    )
}

/// Audits a wrong password (and the lockout it caused) off the async runtime.
async fn audit_failure(store: Store, event: &'static str, ip: IpAddr, locked: bool) {
    blocking(move || {
        store.audit(event, None, &format!("from {ip}"));
        if locked {
            store.audit(
                "admin_lockout",
                None,
                &format!("from {ip} for {} s", WINDOW.as_secs()),
            );
        }
    })
    .await;
}

/// Checks `password`, sent from `ip`, against `hash` under the login limits. A wrong one is
/// audited as `failed_event` (with the lockout it caused) and answered with `wrong()`; a right
/// one clears the address's count.
async fn check_password(
    st: &AdminState,
    ip: IpAddr,
    hash: String,
    password: String,
    failed_event: &'static str,
    wrong: impl FnOnce() -> Response,
) -> Result<(), Response> {
    let locked = st.auth.attempt(ip).map_err(too_many)?;
    if st.auth.verify(hash, password).await {
        st.auth.succeeded(ip);
        return Ok(());
    }
    audit_failure(st.booth.store.clone(), failed_event, ip, locked).await;
    Err(wrong())
}

/// `r` with the cookie that names the admin session `id`.
fn with_session_cookie(mut r: Response, id: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{COOKIE}={id}; Path=/admin; HttpOnly; SameSite=Strict; Max-Age={}",
        IDLE.as_secs()
    )) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// An error paragraph for a form, or nothing.
fn error_note(note: &str) -> String {
    if note.is_empty() {
        String::new()
    } else {
        format!("<p class=\"msg error\" role=\"alert\">{}</p>", esc(note))
    }
}

/// Logs why work done on a blocking thread failed (`Some(Err)`) or never finished (`None`):
/// the answer tells the operator only that it did.
fn log_failure<T>(r: &Option<anyhow::Result<T>>, what: &str) {
    match r {
        Some(Err(e)) => tracing::error!(error = %crate::one_line(e), "{what}"),
        None => tracing::error!("{what}: the task did not finish"),
        Some(Ok(_)) => {}
    }
}

/// The page for work done on a blocking thread that failed (`Some(error)`) or never finished.
fn not_done(title: &str, what: &str, error: Option<&anyhow::Error>) -> Response {
    let text = match error {
        Some(e) => {
            tracing::error!(error = %crate::one_line(e), "{what}");
            format!("{what}. Try again; the booth's log says why.")
        }
        None => format!("{what}. Try again."),
    };
    message(StatusCode::INTERNAL_SERVER_ERROR, title, &text)
}

fn login_form(status: StatusCode, note: &str) -> Response {
    let note = error_note(note);
    page(
        status,
        "Booth admin",
        &format!(
            "<h1>Booth admin</h1>{note}\
             <form method=\"post\" action=\"/admin/login\">\
             <label>Password <input type=\"password\" name=\"password\" autocomplete=\"current-password\" required autofocus></label>\
             <button type=\"submit\">Log in</button></form>"
        ),
    )
}

fn not_set_up(status: StatusCode) -> Response {
    message(
        status,
        "Not set up yet",
        "The admin password is not set up yet. Choose one on the booth's own screen (it asks at \
         start-up), or run `kissbooth admin set-password` on the booth.",
    )
}

fn too_many(wait: u64) -> Response {
    let mut r = message(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many attempts",
        &format!(
            "Too many wrong passwords. Try again in {} minute(s).",
            wait.div_ceil(60)
        ),
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(wait));
    r
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    tokio::task::spawn_blocking(f).await.ok()
}

async fn password_hash(st: &AdminState) -> Option<String> {
    let b = st.booth.clone();
    blocking(move || stored_hash(&b.store)).await.flatten()
}

/// A request's admin session, with the password hash it was checked against (read once per
/// request).
struct LoggedIn {
    key: String,
    csrf: String,
    password_hash: String,
}

async fn logged_in(st: &AdminState, headers: &HeaderMap) -> Option<LoggedIn> {
    let password_hash = password_hash(st).await?;
    let (key, csrf) = st.auth.current(headers, &password_hash)?;
    Some(LoggedIn {
        key,
        csrf,
        password_hash,
    })
}

/// The logged-in session, or the response for a request without one.
async fn session(st: &AdminState, headers: &HeaderMap) -> Result<LoggedIn, Response> {
    logged_in(st, headers)
        .await
        .ok_or_else(|| Redirect::to("/admin/login").into_response())
}

/// For a state-changing request: a session, the same origin and the session's token.
async fn guarded(st: &AdminState, headers: &HeaderMap, csrf: &str) -> Result<LoggedIn, Response> {
    let Some(s) = logged_in(st, headers).await else {
        return Err(message(
            StatusCode::UNAUTHORIZED,
            "Please log in",
            "Your admin session has ended. Log in again.",
        ));
    };
    if !same_origin(headers) || !csrf_ok(&s.csrf, csrf) {
        return Err(forbidden());
    }
    Ok(s)
}

async fn login_page(State(st): State<AdminState>, headers: HeaderMap) -> Response {
    let Some(hash) = password_hash(&st).await else {
        return not_set_up(StatusCode::OK);
    };
    if st.auth.current(&headers, &hash).is_some() {
        return Redirect::to("/admin").into_response();
    }
    login_form(StatusCode::OK, "")
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    password: String,
}

async fn login(
    State(st): State<AdminState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    if !same_origin(&headers) {
        return forbidden();
    }
    let ip = peer.ip().to_canonical();
    let Some(hash) = password_hash(&st).await else {
        return not_set_up(StatusCode::CONFLICT);
    };
    let wrong = || login_form(StatusCode::UNAUTHORIZED, "Wrong password.");
    if let Err(r) = check_password(
        &st,
        ip,
        hash.clone(),
        f.password,
        "admin_login_failed",
        wrong,
    )
    .await
    {
        return r;
    }
    let (id, _) = st.auth.open(&hash);
    let store = st.booth.store.clone();
    blocking(move || store.audit("admin_login", None, &format!("from {ip}"))).await;
    with_session_cookie(Redirect::to("/admin").into_response(), &id)
}

#[derive(Deserialize)]
struct TokenForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    confirm: String,
}

async fn logout(
    State(st): State<AdminState>,
    headers: HeaderMap,
    Form(f): Form<TokenForm>,
) -> Response {
    let s = match guarded(&st, &headers, &f.csrf).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    st.auth.close(&s.key);
    let mut r = Redirect::to("/admin/login").into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("kb_admin=; Path=/admin; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    r
}

#[derive(Deserialize)]
struct CapturesForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    keep: String,
}

/// "Keep source captures": on or off while the booth runs.
async fn captures(
    State(st): State<AdminState>,
    headers: HeaderMap,
    Form(f): Form<CapturesForm>,
) -> Response {
    if let Err(r) = guarded(&st, &headers, &f.csrf).await {
        return r;
    }
    let keep = f.keep == "yes";
    let b = st.booth.clone();
    match blocking(move || b.set_keep_captures(keep)).await {
        Some(Ok(())) => Redirect::to("/admin").into_response(),
        Some(Err(e)) => not_done("Not saved", "The setting could not be saved", Some(&e)),
        None => not_done("Not saved", "The setting could not be saved", None),
    }
}

#[derive(Deserialize)]
struct OpenForm {
    #[serde(default)]
    csrf: String,
    /// `yes` opens the booth, anything else closes it.
    #[serde(default)]
    open: String,
}

/// "Close the booth" / "Open the booth": no new sessions while closed; nothing is deleted.
async fn open_or_close(
    State(st): State<AdminState>,
    headers: HeaderMap,
    Form(f): Form<OpenForm>,
) -> Response {
    if let Err(r) = guarded(&st, &headers, &f.csrf).await {
        return r;
    }
    let open = f.open == "yes";
    let b = st.booth.clone();
    match blocking(move || b.set_closed(!open)).await {
        Some(Ok(())) => Redirect::to("/admin").into_response(),
        Some(Err(e)) => not_done(
            "Not saved",
            "The booth could not be opened or closed",
            Some(&e),
        ),
        None => not_done("Not saved", "The booth could not be opened or closed", None),
    }
}

async fn end_of_event(
    State(st): State<AdminState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(f): Form<TokenForm>,
) -> Response {
    if let Err(r) = guarded(&st, &headers, &f.csrf).await {
        return r;
    }
    if f.confirm != "yes" {
        return message(
            StatusCode::BAD_REQUEST,
            "Nothing deleted",
            "Tick the box to confirm that every video should be deleted.",
        );
    }
    let ip = peer.ip().to_canonical();
    let b = st.booth.clone();
    let n = blocking(move || {
        b.store
            .audit("end_of_event_requested", None, &format!("admin from {ip}"));
        b.end_event()
    })
    .await;
    match n {
        Some(Ok((n, counts))) => {
            let figures: Vec<String> = counts
                .iter()
                .map(|(_, label, n)| format!("{label}: {n}"))
                .collect();
            message(
                StatusCode::OK,
                "Event ended",
                &format!(
                    "{n} session(s) deleted: every capture and video is gone and every link stopped \
                     working. The booth is closed; open it again on the admin page for the next event. \
                     This event: {}.",
                    figures.join("; ")
                ),
            )
        }
        Some(Err(e)) => not_done("Not finished", "Deleting failed part-way", Some(&e)),
        None => not_done("Not finished", "Deleting failed", None),
    }
}

fn password_form(csrf: &str, note: &str, status: StatusCode) -> Response {
    let note = error_note(note);
    page(
        status,
        "Change password",
        &format!(
            "<h1>Change password</h1>{note}\
             <form method=\"post\" action=\"/admin/password\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <label>Current password <input type=\"password\" name=\"current\" autocomplete=\"current-password\" required></label>\
             <label>New password (at least {MIN_PASSWORD} characters) <input type=\"password\" name=\"new\" minlength=\"{MIN_PASSWORD}\" autocomplete=\"new-password\" required></label>\
             <label>New password again <input type=\"password\" name=\"confirm\" minlength=\"{MIN_PASSWORD}\" autocomplete=\"new-password\" required></label>\
             <button type=\"submit\">Change password</button></form>\
             <p><a class=\"btn secondary\" href=\"/admin\">Back</a></p>"
        ),
    )
}

async fn password_page(State(st): State<AdminState>, headers: HeaderMap) -> Response {
    match session(&st, &headers).await {
        Ok(s) => password_form(&s.csrf, "", StatusCode::OK),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
struct PasswordForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    current: String,
    #[serde(default)]
    new: String,
    #[serde(default)]
    confirm: String,
}

async fn change_password(
    State(st): State<AdminState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(f): Form<PasswordForm>,
) -> Response {
    let s = match guarded(&st, &headers, &f.csrf).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let csrf = s.csrf;
    let ip = peer.ip().to_canonical();
    let wrong = || {
        password_form(
            &csrf,
            "The current password is wrong.",
            StatusCode::UNAUTHORIZED,
        )
    };
    if let Err(r) = check_password(
        &st,
        ip,
        s.password_hash,
        f.current,
        "admin_password_change_failed",
        wrong,
    )
    .await
    {
        return r;
    }
    if let Err(why) = check_new_password(&f.new, &f.confirm) {
        return password_form(&csrf, &why, StatusCode::BAD_REQUEST);
    }
    let new = f.new;
    let store = st.booth.store.clone();
    let saved = blocking(move || -> anyhow::Result<String> {
        let h = hash_password(&new)?;
        store.set_setting(PASSWORD_KEY, &h, false)?;
        store.audit("admin_password_changed", None, &format!("from {ip}"));
        Ok(h)
    })
    .await;
    match saved {
        Some(Ok(h)) => {
            // Every other session ends; this one goes on under the new password.
            st.auth.close_all();
            let (id, _) = st.auth.open(&h);
            let r = message(
                StatusCode::OK,
                "Password changed",
                "The new password works from now on; every other admin session was logged out.",
            );
            with_session_cookie(r, &id)
        }
        failed => {
            log_failure(&failed, "the new admin password could not be saved");
            message(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Not changed",
                "The new password could not be saved. The old one still works.",
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(!h.contains("correct horse"));
        assert!(verify_password(&h, "correct horse"));
        assert!(!verify_password(&h, "correct hors"));
        assert!(!verify_password("not a hash", "correct horse"));
        assert_ne!(h, hash_password("correct horse").unwrap(), "salted");
    }

    #[test]
    fn new_passwords_need_a_length_and_a_match() {
        assert!(check_new_password("short", "short").is_err());
        assert!(check_new_password("long enough", "long enougH").is_err());
        assert!(check_new_password("long enough", "long enough").is_ok());
        let huge = "x".repeat(MAX_PASSWORD + 1);
        assert!(check_new_password(&huge, &huge).is_err());
    }

    #[test]
    fn failures_lock_a_peer_out_for_the_window_then_let_it_back() {
        let mut f = Failures::default();
        let a: IpAddr = "192.168.4.20".parse().unwrap();
        let b: IpAddr = "192.168.4.21".parse().unwrap();
        let t0 = Instant::now();
        for i in 0..PER_PEER_FAILURES {
            assert_eq!(f.wait(a, t0), None);
            assert_eq!(f.record(a, t0), i + 1 == PER_PEER_FAILURES);
        }
        let w = f.wait(a, t0).unwrap();
        assert!((299..=301).contains(&w), "{w}");
        assert_eq!(f.wait(b, t0), None, "another peer is not locked out");
        assert_eq!(f.wait(a, t0 + WINDOW), None, "the window passed");
    }

    #[tokio::test]
    async fn checks_in_flight_count_and_a_right_password_clears_its_peer() {
        let auth = Auth::default();
        let a: IpAddr = "192.168.4.20".parse().unwrap();
        // Many checks started at once: only the limit's worth get through.
        let started: Vec<_> = (0..20).map(|_| auth.attempt(a)).collect();
        assert_eq!(
            started.iter().filter(|r| r.is_ok()).count(),
            PER_PEER_FAILURES
        );
        assert_eq!(
            started[PER_PEER_FAILURES - 1],
            Ok(true),
            "the last one locks"
        );
        assert!(started[PER_PEER_FAILURES].is_err());
        auth.succeeded(a);
        assert_eq!(
            auth.attempt(a),
            Ok(false),
            "a right password clears the peer"
        );
        let all = auth.failures.lock().unwrap().all.len();
        assert_eq!(
            all, PER_PEER_FAILURES,
            "one success takes back its own count"
        );
    }

    #[test]
    fn many_peers_together_hit_the_global_limit() {
        let mut f = Failures::default();
        let t0 = Instant::now();
        for i in 0..GLOBAL_FAILURES {
            let ip = IpAddr::from([10, 0, (i / 200) as u8, (i % 200) as u8]);
            f.record(ip, t0);
        }
        assert!(f.wait("10.9.9.9".parse().unwrap(), t0).is_some());
    }

    #[test]
    fn guests_together_never_lock_out_the_operator_at_the_booth() {
        let mut f = Failures::default();
        let t0 = Instant::now();
        for i in 0..2 * GLOBAL_FAILURES {
            let ip = IpAddr::from([10, 0, 0, (i % 6) as u8 + 1]);
            f.record(ip, t0);
        }
        assert!(f.wait("10.0.0.200".parse().unwrap(), t0).is_some());
        for local in ["127.0.0.1", "::1", "::ffff:127.0.0.1"] {
            assert_eq!(f.wait(local.parse().unwrap(), t0), None, "{local}");
        }
        // The operator's own mistakes still count against the operator.
        let me: IpAddr = "127.0.0.1".parse().unwrap();
        for _ in 0..PER_PEER_FAILURES {
            f.record(me, t0);
        }
        assert!(f.wait(me, t0).is_some());
    }

    #[test]
    fn cross_origin_requests_are_told_apart() {
        let h = |pairs: &[(&str, &str)]| {
            let mut m = HeaderMap::new();
            for (k, v) in pairs {
                m.insert(
                    axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    HeaderValue::from_str(v).unwrap(),
                );
            }
            m
        };
        assert!(same_origin(&h(&[("host", "192.168.4.1:8080")])));
        assert!(same_origin(&h(&[
            ("host", "192.168.4.1:8080"),
            ("origin", "http://192.168.4.1:8080")
        ])));
        assert!(!same_origin(&h(&[
            ("host", "192.168.4.1:8080"),
            ("origin", "http://evil.example")
        ])));
        assert!(!same_origin(&h(&[
            ("host", "192.168.4.1:8080"),
            ("origin", "null")
        ])));
        assert!(!same_origin(&h(&[
            ("host", "192.168.4.1:8080"),
            ("sec-fetch-site", "cross-site")
        ])));
        assert!(!same_origin(&h(&[
            ("host", "192.168.4.1:8080"),
            ("origin", "http://192.168.4.1:8080"),
            ("sec-fetch-site", "same-site")
        ])));
        assert!(same_origin(&h(&[
            ("host", "192.168.4.1:8080"),
            ("origin", "null"),
            ("sec-fetch-site", "same-origin")
        ])));
    }

    #[test]
    fn cookies_are_read_only_in_the_expected_shape() {
        let mut m = HeaderMap::new();
        m.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; kb_admin=0123456789abcdef0123456789abcdef"),
        );
        assert_eq!(
            cookie(&m, COOKIE).as_deref(),
            Some("0123456789abcdef0123456789abcdef")
        );
        m.insert(header::COOKIE, HeaderValue::from_static("kb_admin=../etc"));
        assert_eq!(cookie(&m, COOKIE), None);
        assert!(csrf_ok("abc", "abc"));
        assert!(!csrf_ok("abc", "abd"));
        assert!(!csrf_ok("", ""));
    }
}
