//! The HTTP server: the kiosk app and its API (loopback peers only), and the guests' download
//! pages at `/d/{token}` (anyone on the network). One `Router`, state in one `AppState`, short
//! handlers that delegate to [`Booth`].

pub mod admin;
pub mod connections;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use futures::stream::{self, Stream};
use serde::Deserialize;
use serde_json::json;
use tower::ServiceExt;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::services::ServeFile;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;

use crate::booth::link::Key;
use crate::booth::{Booth, BoothError};
use crate::http::connections::LocalAddr;

pub type AppState = Arc<Booth>;

const INDEX: &str = include_str!("../../../kiosk-ui/index.html");
const APP_JS: &str = include_str!("../../../kiosk-ui/app.js");
const STYLE: &str = include_str!("../../../kiosk-ui/style.css");
const PHONE: &str = include_str!("../../../kiosk-ui/phone.html");
const NOT_FOUND: &str = include_str!("../../../kiosk-ui/notfound.html");
const DELETED: &str = include_str!("../../../kiosk-ui/deleted.html");
const OPENAPI: &str = include_str!("openapi.json");

pub fn router(state: AppState) -> Router {
    let kiosk = Router::new()
        .route("/", get(|| async { Html(INDEX) }))
        .route(
            "/app.js",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
                    APP_JS,
                )
            }),
        )
        .route(
            "/style.css",
            get(|| async { ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE) }),
        )
        .route(
            "/api/openapi.json",
            get(|| async { ([(header::CONTENT_TYPE, "application/json")], OPENAPI) }),
        )
        .route("/api/status", get(status))
        .route("/metrics", get(metrics))
        .route("/api/sessions", post(create_session))
        .route("/api/sessions/{id}", get(get_session))
        .route("/api/sessions/{id}/consent", post(consent))
        .route("/api/sessions/{id}/capture", post(capture))
        .route("/api/sessions/{id}/retake", post(retake))
        .route("/api/sessions/{id}/render", post(render))
        .route("/api/sessions/{id}/cancel", post(cancel))
        .route("/api/sessions/{id}/release", post(release))
        .route("/api/sessions/{id}/qr.svg", get(qr_svg))
        .route("/api/sessions/{id}/qr.png", get(qr_png))
        .route("/api/sessions/{id}/capture.jpg", get(capture_jpg))
        .route("/api/sessions/{id}/video.mp4", get(kiosk_video))
        .route("/api/wifi-qr.svg", get(wifi_qr))
        .route("/api/attract.mp4", get(attract_clip))
        .route("/api/end-of-event", post(end_of_event))
        .route("/api/admin/setup", post(crate::http::admin::setup))
        .route("/api/preview.jpg", get(preview_jpg))
        .route("/readyz", get(readyz))
        // A request that takes longer than this is answered 408 rather than left hanging.
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(30),
        ))
        // Streams run as long as the kiosk watches.
        .route("/api/events", get(events))
        .route("/api/preview.mjpg", get(preview_mjpg))
        .layer(middleware::from_fn(loopback_only));
    let guest = Router::new()
        .route("/d/{key}", get(phone_page))
        .route("/d/{key}/status", get(guest_status))
        .route("/d/{key}/video.mp4", get(guest_video))
        .route("/d/{key}/poster.jpg", get(guest_poster))
        .route("/d/{key}/delete", post(guest_delete))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            short_code_limits,
        ))
        .route("/healthz", get(healthz));
    Router::new()
        .merge(kiosk)
        .merge(guest)
        .with_state(state.clone())
        .layer(RequestBodyLimitLayer::new(16 * 1024))
        // The admin pages set their own limits (a logo upload is larger than a form).
        .merge(crate::http::admin::router(state))
        .fallback(|| async { not_found() })
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        // The admin pages set their own (same-origin, for their forms' Origin header).
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
}

/// The kiosk app and its API answer only the device itself (the kiosk browser runs there),
/// addressed by a loopback name with the daemon's port (a page whose name was rebound to
/// 127.0.0.1 sends its own name), and only requests from the kiosk's own pages (a form on
/// another site may still post to 127.0.0.1).
async fn loopback_only(
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    local: Option<Extension<LocalAddr>>,
    req: Request,
    next: Next,
) -> Response {
    // `to_canonical`: an IPv4 peer on a dual-stack socket shows as `::ffff:a.b.c.d`.
    let refusal = if !peer.ip().to_canonical().is_loopback() {
        Some("This address is for the booth's own screen.")
    } else if !local.is_some_and(|Extension(LocalAddr(l))| addressed_to_loopback(&req, l.port())) {
        Some("The booth's screen is reached at a loopback address (127.0.0.1, localhost).")
    } else if !crate::http::admin::same_origin(req.headers()) {
        Some("Requests from other sites are refused.")
    } else {
        None
    };
    match refusal {
        None => next.run(req).await,
        Some(message) => (StatusCode::FORBIDDEN, Json(json!({"error": message}))).into_response(),
    }
}

/// True when the request names a loopback host (`localhost`, `127.x.y.z`, `[::1]`) with
/// `port` (80 when it names none) in its one `Host` header and in its target, when that is
/// absolute; at least one of the two must be there.
fn addressed_to_loopback(req: &Request, port: u16) -> bool {
    if req.headers().get_all(header::HOST).iter().count() > 1 {
        return false;
    }
    let host = req.headers().get(header::HOST).map(|h| h.to_str().ok());
    let target = req.uri().authority().map(|a| Some(a.as_str()));
    if host.is_none() && target.is_none() {
        return false;
    }
    [host, target]
        .into_iter()
        .flatten()
        .all(|name| name.is_some_and(|n| is_loopback_authority(n, port)))
}

fn is_loopback_authority(authority: &str, port: u16) -> bool {
    let Ok(a) = authority.parse::<axum::http::uri::Authority>() else {
        return false;
    };
    if a.as_str().contains('@') || a.port_u16().unwrap_or(80) != port {
        return false;
    }
    let host = a.host();
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let ip = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().map(std::net::IpAddr::V6),
        None => host.parse::<std::net::Ipv4Addr>().map(std::net::IpAddr::V4),
    };
    ip.is_ok_and(|ip| ip.to_canonical().is_loopback())
}

impl IntoResponse for BoothError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            BoothError::NotFound => (StatusCode::NOT_FOUND, "No such session.".to_string()),
            BoothError::Conflict(m) => (StatusCode::CONFLICT, m),
            BoothError::Busy(m) => (StatusCode::SERVICE_UNAVAILABLE, m),
            BoothError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            BoothError::Internal(e) => {
                tracing::error!(error = %format!("{e:#}"), "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong. Please try again.".to_string(),
                )
            }
        };
        (status, Json(json!({"error": message}))).into_response()
    }
}

/// Runs blocking booth work (camera, models, SQLite) off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, BoothError> + Send + 'static,
) -> Result<T, BoothError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| BoothError::Internal(anyhow::anyhow!("task failed: {e}")))?
}

/// Liveness: 200 while the daemon serves, whatever the camera does (a booth whose camera is
/// unplugged still answers its kiosk and its guests' downloads); the camera's state is in the
/// body. 503 while it cannot accept connections, or before its camera first answered at all.
async fn healthz(State(b): State<AppState>) -> Response {
    use kissbooth_capture::CameraStatus;
    if b.net.accept_broken() {
        return (StatusCode::SERVICE_UNAVAILABLE, "not accepting connections").into_response();
    }
    match b.camera.status() {
        CameraStatus::Reconnecting { .. } => {
            (StatusCode::OK, "ok; camera unavailable (see /readyz)").into_response()
        }
        _ if b.camera.latest().is_some() => (StatusCode::OK, "ok").into_response(),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "starting").into_response(),
    }
}

/// Readiness: 200 only while the booth can take a couple's picture (serving, camera live);
/// 503 with the reason otherwise, for the operator and for monitoring.
async fn readyz(State(b): State<AppState>) -> Response {
    use kissbooth_capture::CameraStatus;
    let unavailable = |why: String| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CACHE_CONTROL, "no-store")],
            why,
        )
            .into_response()
    };
    if b.net.accept_broken() {
        return unavailable("not accepting connections".into());
    }
    match b.camera.status() {
        CameraStatus::Live { .. } => (StatusCode::OK, "ready").into_response(),
        CameraStatus::Reconnecting {
            attempt,
            last_error,
            since,
        } => {
            let secs = since.elapsed().map(|d| d.as_secs()).unwrap_or(0);
            unavailable(format!(
                "camera unavailable for {secs} s ({attempt} attempts): {last_error}"
            ))
        }
        CameraStatus::Starting => unavailable("camera starting".into()),
        CameraStatus::Stopped => unavailable("camera stopped".into()),
    }
}

/// Prometheus text: sessions by state, queue, render times, camera, temperatures, power, GPU.
async fn metrics(State(b): State<AppState>) -> Result<Response, BoothError> {
    let text = blocking(move || b.metrics().map_err(BoothError::from)).await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
}

async fn status(State(b): State<AppState>) -> Json<serde_json::Value> {
    let mut v = b.status_json();
    let b2 = b.clone();
    let needed = tokio::task::spawn_blocking(move || crate::http::admin::setup_needed(&b2.store))
        .await
        .unwrap_or(false);
    v["admin_setup_needed"] = json!(needed);
    v["attract_clip"] = json!(crate::clip::attract::clip_path(&b.cfg.data).is_file());
    v["admin_url"] = json!(format!("{}/admin", b.public_base));
    Json(v)
}

async fn create_session(State(b): State<AppState>) -> Result<impl IntoResponse, BoothError> {
    let v = blocking(move || b.new_session()).await?;
    Ok((StatusCode::CREATED, Json(v)))
}

async fn get_session(
    State(b): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, BoothError> {
    Ok(Json(blocking(move || b.view(&id)).await?))
}

/// Consent is explicit: exactly `{"people": 2, "accepted": true}` as JSON.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsentBody {
    people: i64,
    accepted: bool,
    /// Optional: the hosts may keep a copy for the event album.
    #[serde(default)]
    album: bool,
}

async fn consent(
    State(b): State<AppState>,
    Path(id): Path<String>,
    body: Result<Json<ConsentBody>, JsonRejection>,
) -> Result<Response, BoothError> {
    let Json(c) = match body {
        Ok(c) => c,
        Err(e) => {
            let error = format!(
                "Consent is the JSON body {{\"people\": 2, \"accepted\": true}}: {}",
                e.body_text()
            );
            return Ok((e.status(), Json(json!({ "error": error }))).into_response());
        }
    };
    let v = blocking(move || b.consent(&id, c.people, c.accepted, c.album)).await?;
    Ok(Json(v).into_response())
}

async fn capture(
    State(b): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, BoothError> {
    let (verdict, session) = blocking(move || b.capture(&id)).await?;
    Ok(Json(json!({"verdict": verdict, "session": session})))
}

async fn retake(
    State(b): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, BoothError> {
    Ok(Json(blocking(move || b.retake(&id)).await?))
}

async fn render(
    State(b): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, BoothError> {
    Ok((
        StatusCode::ACCEPTED,
        Json(blocking(move || b.render(&id)).await?),
    ))
}

async fn cancel(
    State(b): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, BoothError> {
    Ok(Json(blocking(move || b.cancel(&id)).await?))
}

/// The couple left the kiosk's screens: nothing of their clip is shown there again.
async fn release(
    State(b): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, BoothError> {
    Ok(Json(blocking(move || b.release(&id)).await?))
}

/// A short code can be typed, so it can be guessed: a phone that tried too many wrong ones (or
/// all phones together) is refused short codes for a while (the QR code's links still work).
async fn short_code_limits(State(b): State<AppState>, req: Request, next: Next) -> Response {
    let key = req
        .uri()
        .path()
        .strip_prefix("/d/")
        .map(|rest| rest.split('/').next().unwrap_or(""))
        .map(percent_decode);
    let short = matches!(
        key.as_deref().and_then(crate::booth::link::Key::parse),
        Some(crate::booth::link::Key::Short(_))
    );
    if !short {
        return next.run(req).await;
    }
    // Served without a socket (in-process tests), all callers count as one.
    let ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(std::net::Ipv4Addr::UNSPECIFIED.into(), |c| {
            c.0.ip().to_canonical()
        });
    let allowed = b
        .guests
        .short_guesses
        .lock()
        .map(|mut g| g.allowed(ip, std::time::Instant::now()))
        .unwrap_or(false);
    if !allowed {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [
                (header::CACHE_CONTROL, "no-store"),
                (header::RETRY_AFTER, "600"),
            ],
            Html(TOO_MANY_CODES),
        )
            .into_response();
    }
    let r = next.run(req).await;
    if r.status() == StatusCode::NOT_FOUND
        && let Ok(mut g) = b.guests.short_guesses.lock()
    {
        g.missed(ip, std::time::Instant::now());
    }
    r
}

/// `%41` → `A`: the path's key as axum's `Path` hands it to the handlers.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .filter(|_| b[i] == b'%')
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(x) => {
                out.push(x);
                i += 3;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

const TOO_MANY_CODES: &str = "<!doctype html><meta charset=utf-8>\
<meta name=viewport content=\"width=device-width, initial-scale=1\">\
<title>Too many tries</title><body style=\"font-family:system-ui,sans-serif;background:#16101c;\
color:#fff;padding:1.5rem\"><h1>Too many wrong codes</h1><p>Please wait a few minutes, \
or scan the QR code at the booth instead.</p></body>";

/// The operator's "end of event": deletes every capture and video now.
async fn end_of_event(State(b): State<AppState>) -> Result<impl IntoResponse, BoothError> {
    let (n, _) = blocking(move || b.end_event().map_err(BoothError::from)).await?;
    Ok(Json(json!({"purged": n, "closed": true})))
}

/// The QR code of a session's download link, drawn by `encode` as `content_type`.
async fn download_qr<T: IntoResponse>(
    b: AppState,
    id: String,
    content_type: &'static str,
    encode: fn(&str) -> Option<T>,
) -> Result<Response, BoothError> {
    let v = blocking(move || b.view(&id)).await?;
    let url = v
        .download_url
        .ok_or_else(|| BoothError::Conflict("The video is not ready yet.".into()))?;
    let image =
        encode(&url).ok_or_else(|| BoothError::Internal(anyhow::anyhow!("QR encoding failed")))?;
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-store"),
        ],
        image,
    )
        .into_response())
}

async fn qr_svg(State(b): State<AppState>, Path(id): Path<String>) -> Result<Response, BoothError> {
    download_qr(b, id, "image/svg+xml", crate::net::qr_svg).await
}

async fn qr_png(State(b): State<AppState>, Path(id): Path<String>) -> Result<Response, BoothError> {
    download_qr(b, id, "image/png", crate::net::qr_png).await
}

async fn wifi_qr(State(b): State<AppState>) -> Response {
    let w = &b.settings().wifi;
    if w.ssid.is_empty() {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "No booth Wi-Fi is configured."})),
        )
            .into_response();
    }
    match crate::net::qr_svg(&crate::net::wifi_uri(
        &w.ssid,
        &w.password,
        w.security.name(),
    )) {
        Some(svg) => ([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response(),
        None => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn capture_jpg(
    State(b): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> Result<Response, BoothError> {
    let b2 = b.clone();
    let s = blocking(move || b2.view(&id).map(|v| v.id)).await?;
    let path = b.store.session_dir(&s).join("capture.jpg");
    serve_file(path, req).await
}

async fn kiosk_video(
    State(b): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> Result<Response, BoothError> {
    let b2 = b.clone();
    let row = blocking(move || b2.store.get(&id).map_err(BoothError::from))
        .await?
        .ok_or(BoothError::NotFound)?;
    // Once the couple left the result screen, the kiosk shows nothing of their clip.
    let path = row
        .video_path
        .filter(|_| row.state == crate::booth::session::SessionState::Done && b.on_kiosk(&row.id))
        .ok_or(BoothError::NotFound)?;
    serve_file(path.into(), req).await
}

/// The attract screen's demo clip (made at install time from the bundled paintings; never a
/// guest's clip).
async fn attract_clip(State(b): State<AppState>, req: Request) -> Result<Response, BoothError> {
    serve_file(crate::clip::attract::clip_path(&b.cfg.data), req).await
}

/// Serves a finished file with Range support (iOS Safari needs it) and its content type.
async fn serve_file(path: std::path::PathBuf, req: Request) -> Result<Response, BoothError> {
    if !path.is_file() {
        return Err(BoothError::NotFound);
    }
    let res = ServeFile::new(path)
        .oneshot(req)
        .await
        .map_err(|e| BoothError::Internal(anyhow::anyhow!("{e}")))?;
    Ok(res.map(Body::new))
}

/// The answer for a link that opens nothing: "deleted at the guests' request" (410) when one of
/// the couple deleted the clip, else "expired or never here" (404).
fn gone(deleted: bool) -> Response {
    if !deleted {
        return not_found();
    }
    (
        StatusCode::GONE,
        [(header::CACHE_CONTROL, "no-store")],
        Html(DELETED),
    )
        .into_response()
}

/// The session a guest's link names, while the link holds (see [`Booth::by_link`]).
async fn linked(b: &AppState, key: &str) -> Option<(Key, crate::store::SessionRow)> {
    let key = Key::parse(key)?;
    let (b2, k2) = (b.clone(), key.clone());
    let s = tokio::task::spawn_blocking(move || b2.by_link(&k2))
        .await
        .ok()
        .flatten()?;
    Some((key, s))
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CACHE_CONTROL, "no-store")],
        Html(NOT_FOUND),
    )
        .into_response()
}

/// The phone page: progress while the clip is made (the QR code is shown as soon as it is
/// queued), the clip once it is done, or what became of it.
async fn phone_page(State(b): State<AppState>, Path(key): Path<String>) -> Response {
    use crate::booth::session::SessionState as S;
    let Some((key, s)) = linked(&b, &key).await else {
        return not_found();
    };
    match s.state {
        S::Queued | S::Rendering | S::Done | S::Failed | S::Cancelled => {}
        S::Deleted => return gone(true),
        _ => return not_found(),
    }
    // The page's one script runs by a nonce fresh for every answer; nothing else may run, load
    // from elsewhere, or frame the page.
    let nonce = crate::booth::link::new_token();
    let key = match key {
        Key::Token(t) => t,
        Key::Short(c) => c,
    };
    let html = PHONE
        .replace("{{TOKEN}}", &key)
        .replace("{{STATE}}", s.state.name())
        .replace("{{EXPIRES}}", &s.token_expires_at.unwrap_or(0).to_string())
        // Last: the operator's text is never read for placeholders.
        .replace(
            "{{EVENT}}",
            &crate::http::admin::esc(&b.settings().event_name),
        )
        .replacen("<script>", &format!("<script nonce=\"{nonce}\">"), 1);
    let csp = format!("{PHONE_CSP} script-src 'nonce-{nonce}'");
    let mut r = ([(header::CACHE_CONTROL, "no-store")], Html(html)).into_response();
    if let Ok(v) = HeaderValue::from_str(&csp) {
        r.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
    }
    r.headers_mut()
        .insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    r
}

/// Where the clip is, for the phone page while it waits: its state, progress and estimate
/// (nothing of the kiosk's view that the phone has no use for).
async fn guest_status(State(b): State<AppState>, Path(key): Path<String>) -> Response {
    let Some((_, s)) = linked(&b, &key).await else {
        return not_found();
    };
    let b2 = b.clone();
    let Ok(Ok(v)) = tokio::task::spawn_blocking(move || b2.view(&s.id)).await else {
        return not_found();
    };
    (
        [(header::CACHE_CONTROL, "no-store")],
        Json(json!({
            "state": v.state,
            "progress": v.progress,
            "queue_position": v.queue_position,
            "eta_s": v.eta_s,
            "cooling": v.cooling,
            "expires_at": s.token_expires_at,
        })),
    )
        .into_response()
}

/// The phone page's Content-Security-Policy, less its script nonce: its own video, poster and
/// requests only, its inline style, no frames around it, no other base or form target.
const PHONE_CSP: &str = "default-src 'none'; media-src 'self'; img-src 'self'; \
    connect-src 'self'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; \
    form-action 'self';";

async fn guest_file(b: AppState, key: String, poster: bool, req: Request) -> Response {
    let req_range = req
        .headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let head = req.method() == axum::http::Method::HEAD;
    let b2 = b.clone();
    let Ok(Some(s)) = tokio::task::spawn_blocking(move || b2.by_token(&key)).await else {
        return not_found();
    };
    let Some(path) = (if poster { s.poster_path } else { s.video_path }) else {
        return not_found();
    };
    match serve_file(path.into(), req).await {
        Ok(mut r) => {
            r.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, no-store"),
            );
            if poster || !r.status().is_success() {
                return r;
            }
            // Saved as a file with a name that says what and when, not played in a new tab
            // (a video element plays it all the same).
            if let Ok(v) = HeaderValue::from_str(&format!(
                "attachment; filename=\"{}\"",
                download_name(s.created_at)
            )) {
                r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
            }
            // One download per phone: the first request (a video element asks for ranges, the
            // first from byte 0).
            let first = req_range
                .as_deref()
                .is_none_or(|r| r.trim_start_matches("bytes=").starts_with("0-"));
            if first && !head {
                b.count("count_downloads");
            }
            // Counted as downloading until the body is sent or the phone goes: the kiosk keeps
            // the result screen up meanwhile.
            let guard = b.downloading(&s.id);
            r.map(|body| {
                Body::from_stream(body.into_data_stream().map(move |chunk| {
                    let _downloading = &guard;
                    chunk
                }))
            })
        }
        Err(_) => not_found(),
    }
}

/// `kissbooth-2026-12-05-2231.mp4`: the capture's local date and time.
fn download_name(created_unix_s: i64) -> String {
    format!("kissbooth-{}.mp4", crate::sys::local_stamp(created_unix_s))
}

async fn guest_video(
    State(b): State<AppState>,
    Path(token): Path<String>,
    req: Request,
) -> Response {
    guest_file(b, token, false, req).await
}

async fn guest_poster(
    State(b): State<AppState>,
    Path(token): Path<String>,
    req: Request,
) -> Response {
    guest_file(b, token, true, req).await
}

async fn guest_delete(State(b): State<AppState>, Path(key): Path<String>) -> Response {
    let Some(key) = Key::parse(&key) else {
        return not_found();
    };
    match tokio::task::spawn_blocking(move || b.delete_by_link(&key)).await {
        Ok(true) => Json(json!({"deleted": true})).into_response(),
        _ => not_found(),
    }
}

async fn events(
    State(b): State<AppState>,
) -> Sse<impl Stream<Item = Result<Event, std::convert::Infallible>>> {
    let rx = b.events.subscribe();
    // A kiosk that (re)connects learns the current state at once, not at the next change.
    let mut opening = vec![Ok(
        Event::default().data(json!({"type": "status", "status": b.status_json()}).to_string())
    )];
    if let Some(v) = b.live.state.read().ok().and_then(|p| p.verdict.clone()) {
        opening.push(Ok(
            Event::default().data(json!({"type": "preview", "verdict": v}).to_string())
        ));
    }
    let s = stream::iter(opening).chain(stream::unfold(rx, |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(msg) => return Some((Ok(Event::default().data(msg)), rx)),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return None,
            }
        }
    }));
    Sse::new(s).keep_alive(KeepAlive::new().interval(Duration::from_secs(10)))
}

use futures::StreamExt;

async fn preview_jpg(State(b): State<AppState>) -> Response {
    b.want_preview();
    // A first request may come before any frame was made: wait up to 2 s for one.
    let made = || {
        b.live
            .state
            .read()
            .map(|p| p.jpeg.is_some())
            .unwrap_or(false)
    };
    let mut rx = b.live.made.subscribe();
    let _ = tokio::time::timeout(Duration::from_secs(2), rx.wait_for(|_| made())).await;
    match b.live.state.read().ok().and_then(|p| p.jpeg.clone()) {
        Some(j) => (
            [
                (header::CONTENT_TYPE, "image/jpeg"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            (*j).clone(),
        )
            .into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, "no frame yet").into_response(),
    }
}

/// The live preview as an MJPEG stream (multipart/x-mixed-replace), about 10 frames a second.
async fn preview_mjpg(State(b): State<AppState>) -> Response {
    let rx = b.live.made.subscribe();
    let s = stream::unfold((b, rx, 0u64), |(b, mut rx, last)| async move {
        loop {
            b.want_preview();
            let (seq, jpeg) = match b.live.state.read() {
                Ok(p) => (p.seq, p.jpeg.clone()),
                Err(_) => return None,
            };
            if seq != last
                && let Some(j) = jpeg
            {
                let mut part = format!(
                    "--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
                    j.len()
                )
                .into_bytes();
                part.extend_from_slice(&j);
                part.extend_from_slice(b"\r\n");
                return Some((Ok::<_, std::convert::Infallible>(part), (b, rx, seq)));
            }
            // The next frame as soon as it is made. The preview is made only while a kiosk
            // watches, so meanwhile the stream says it still watches once a second.
            if let Ok(Err(_)) = tokio::time::timeout(Duration::from_secs(1), rx.changed()).await {
                return None;
            }
        }
    });
    Response::builder()
        .header(
            header::CONTENT_TYPE,
            "multipart/x-mixed-replace; boundary=frame",
        )
        .header(header::CACHE_CONTROL, "no-store")
        .body(Body::from_stream(s))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn send(peer: &str, req: Request) -> StatusCode {
        let app: Router = Router::new()
            .route("/api/status", get(|| async { "fine" }))
            .route("/api/end-of-event", post(|| async { "ended" }))
            .layer(middleware::from_fn(loopback_only));
        let mut req = req;
        req.extensions_mut()
            .insert(ConnectInfo::<SocketAddr>(peer.parse().unwrap()));
        req.extensions_mut()
            .insert(LocalAddr("127.0.0.1:8080".parse().unwrap()));
        app.oneshot(req).await.unwrap().status()
    }

    async fn call(peer: &str, path: &str) -> StatusCode {
        let req = Request::builder()
            .uri(path)
            .header(header::HOST, "127.0.0.1:8080")
            .body(Body::empty())
            .unwrap();
        send(peer, req).await
    }

    async fn with_host(host: &str) -> StatusCode {
        let req = Request::builder()
            .uri("/api/status")
            .header(header::HOST, host)
            .body(Body::empty())
            .unwrap();
        send("127.0.0.1:5000", req).await
    }

    #[tokio::test]
    async fn the_kiosk_api_refuses_peers_that_are_not_the_device_itself() {
        assert_eq!(call("127.0.0.1:5000", "/api/status").await, StatusCode::OK);
        assert_eq!(call("[::1]:5000", "/api/status").await, StatusCode::OK);
        assert_eq!(
            call("[::ffff:127.0.0.1]:5000", "/api/status").await,
            StatusCode::OK
        );
        assert_eq!(
            call("192.168.4.23:5000", "/api/status").await,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            call("10.0.0.7:5000", "/api/status").await,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            call("[fe80::1]:5000", "/api/status").await,
            StatusCode::FORBIDDEN
        );
    }

    #[tokio::test]
    async fn the_kiosk_api_answers_loopback_names_with_its_own_port_only() {
        for host in [
            "127.0.0.1:8080",
            "localhost:8080",
            "LocalHost:8080",
            "127.0.0.2:8080",
            "[::1]:8080",
            "[::ffff:127.0.0.1]:8080",
        ] {
            assert_eq!(with_host(host).await, StatusCode::OK, "{host}");
        }
        for host in [
            "attacker.example:8080",
            "attacker.example",
            "localhost.attacker.example:8080",
            "127.0.0.1.nip.io:8080",
            "localhost:9090",
            "localhost",
            "127.0.0.1",
            "192.168.4.1:8080",
            "0.0.0.0:8080",
            "[::]:8080",
            "user@localhost:8080",
            "",
            "127.0.0.1:8080, attacker.example",
        ] {
            assert_eq!(with_host(host).await, StatusCode::FORBIDDEN, "{host:?}");
        }
        // Two Host headers, no Host at all, or an absolute target naming another host.
        let req = Request::builder()
            .uri("/api/status")
            .header(header::HOST, "127.0.0.1:8080")
            .header(header::HOST, "attacker.example:8080")
            .body(Body::empty())
            .unwrap();
        assert_eq!(send("127.0.0.1:5000", req).await, StatusCode::FORBIDDEN);
        let req = Request::builder()
            .uri("/api/status")
            .body(Body::empty())
            .unwrap();
        assert_eq!(send("127.0.0.1:5000", req).await, StatusCode::FORBIDDEN);
        let req = Request::builder()
            .uri("http://attacker.example:8080/api/status")
            .header(header::HOST, "127.0.0.1:8080")
            .body(Body::empty())
            .unwrap();
        assert_eq!(send("127.0.0.1:5000", req).await, StatusCode::FORBIDDEN);
    }

    #[tokio::test]
    async fn the_kiosk_api_refuses_requests_from_other_sites() {
        let post = |headers: &[(&str, &str)]| {
            let mut b = Request::builder()
                .method("POST")
                .uri("/api/end-of-event")
                .header(header::HOST, "127.0.0.1:8080");
            for (k, v) in headers {
                b = b.header(*k, *v);
            }
            b.body(Body::empty()).unwrap()
        };
        for ok in [
            &[][..],
            &[("origin", "http://127.0.0.1:8080")],
            &[("sec-fetch-site", "same-origin")],
            &[
                ("sec-fetch-site", "same-origin"),
                ("origin", "http://127.0.0.1:8080"),
            ],
        ] {
            assert_eq!(
                send("127.0.0.1:5000", post(ok)).await,
                StatusCode::OK,
                "{ok:?}"
            );
        }
        for refused in [
            &[("origin", "http://attacker.example")][..],
            &[("origin", "null")],
            &[("origin", "http://localhost:8080")],
            &[("sec-fetch-site", "cross-site")],
            &[("sec-fetch-site", "same-site")],
            &[
                ("sec-fetch-site", "cross-site"),
                ("origin", "http://127.0.0.1:8080"),
            ],
        ] {
            assert_eq!(
                send("127.0.0.1:5000", post(refused)).await,
                StatusCode::FORBIDDEN,
                "{refused:?}"
            );
        }
    }
}
