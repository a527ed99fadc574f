//! The health page at `/admin`: the booth's state at a glance, one section per part, and the
//! operator's switches (open or closed, keep the captures, end of event).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::{AdminState, blocking, esc, message, page, session};
use crate::store::Counter;
use crate::telemetry::Readings;

/// What the page shows from the store and the sensors, read off the async runtime.
struct Snapshot {
    states: Vec<(String, i64)>,
    audit: Vec<(i64, String, String)>,
    readings: Readings,
    counts: Vec<Counter>,
    closed: bool,
    album: usize,
}

pub(super) async fn health_page(State(st): State<AdminState>, headers: HeaderMap) -> Response {
    let csrf = match session(&st, &headers).await {
        Ok(s) => s.csrf,
        Err(r) => return r,
    };
    let b = st.booth.clone();
    let Some(snap) = blocking(move || Snapshot {
        states: b.store.count_by_state().unwrap_or_default(),
        audit: b.store.recent_audit(12).unwrap_or_default(),
        readings: b.readings(),
        counts: b.store.counters().unwrap_or_default(),
        closed: b.closed(),
        album: b.album().map(|a| a.len()).unwrap_or(0),
    })
    .await
    else {
        return message(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Unavailable",
            "Try again.",
        );
    };
    let (queue, times) = st.booth.queue_and_render_times();
    let overview = overview(&st.booth.status_json(), queue);
    let event = table(
        &snap
            .counts
            .iter()
            .map(|(_, label, n)| (label.to_string(), n.to_string()))
            .collect::<Vec<_>>(),
        "",
    );
    let sessions = table(
        &snap
            .states
            .iter()
            .map(|(s, n)| (s.clone(), n.to_string()))
            .collect::<Vec<_>>(),
        "No sessions yet.",
    );
    let body = [
        format!("<h1>Booth health</h1><section><h2>Overview</h2>{overview}</section>"),
        open_section(snap.closed, &csrf),
        format!("<section><h2>This event</h2>{event}</section>"),
        album_section(snap.album),
        format!("<section><h2>Sessions by state</h2>{sessions}</section>"),
        format!(
            "<section><h2>Render times</h2>{}</section>",
            render_times(&times)
        ),
        sensor_sections(&snap.readings),
        captures_section(st.booth.keep_captures(), &csrf),
        end_of_event_section(&csrf),
        format!(
            "<section><h2>Recent events</h2>{}</section>",
            log(&snap.audit)
        ),
        links_section(&csrf),
    ]
    .concat();
    page(StatusCode::OK, "Booth health", &body)
}

/// A two-column table of `rows`, or `empty` as a note when there are none.
fn table(rows: &[(String, String)], empty: &str) -> String {
    if rows.is_empty() {
        return format!("<p class=\"small\">{}</p>", esc(empty));
    }
    let mut s = String::from("<table>");
    for (k, v) in rows {
        s.push_str(&format!("<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(v)));
    }
    s.push_str("</table>");
    s
}

/// The camera, the render queue and the uptime, from the booth's status.
fn overview(status: &serde_json::Value, queue: usize) -> String {
    let camera = status["camera"]["state"].as_str().unwrap_or("unknown");
    let fps = status["camera"]["fps"]
        .as_f64()
        .map(|f| format!(", {f:.1} fps"))
        .unwrap_or_default();
    let up = status["uptime_s"].as_u64().unwrap_or(0);
    table(
        &[
            ("Camera".into(), format!("{camera}{fps}")),
            ("Clips waiting to render".into(), queue.to_string()),
            (
                "Running for".into(),
                format!("{} h {:02} min", up / 3600, (up % 3600) / 60),
            ),
        ],
        "",
    )
}

/// Whether the booth takes new couples, and the button that switches it.
fn open_section(closed: bool, csrf: &str) -> String {
    let (open_note, open_next, open_button) = if closed {
        (
            "<b>Closed</b>: the kiosk says so and takes no new couples. Nothing was deleted.",
            "yes",
            "Open the booth",
        )
    } else {
        (
            "<b>Open</b>: couples can start. Closing lets those at the screen and the clips being \
             made finish, takes no new couples, and deletes nothing.",
            "no",
            "Close the booth",
        )
    };
    format!(
        "<section><h2>The booth</h2><p>{open_note}</p>\
         <form method=\"post\" action=\"/admin/open\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <input type=\"hidden\" name=\"open\" value=\"{open_next}\">\
         <button type=\"submit\" class=\"secondary\">{open_button}</button></form></section>"
    )
}

/// The number of videos in the hosts' album, and its download.
fn album_section(album: usize) -> String {
    let album_html = if album == 0 {
        "<p class=\"small\">No video for the album yet: only couples who tick \"the hosts may keep \
         a copy\" on the consent screen go in it.</p>"
            .to_string()
    } else {
        format!(
            "<p>{album} video(s) whose couples agreed that the hosts may keep a copy. Download \
             them before the end of the event: it deletes them with the rest.</p>\
             <p><a class=\"btn secondary\" href=\"/admin/album.zip\">Download the album (ZIP)</a></p>"
        )
    };
    format!("<section><h2>Hosts' album</h2>{album_html}</section>")
}

/// The mean render time and the latest ten, latest first.
fn render_times(times: &[f64]) -> String {
    if times.is_empty() {
        return "<p class=\"small\">No clip rendered since the booth started.</p>".to_string();
    }
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    let last: Vec<String> = times
        .iter()
        .rev()
        .take(10)
        .map(|t| format!("{t:.1} s"))
        .collect();
    format!(
        "<p>Mean of the last {}: <b>{mean:.1} s</b>. Latest first: {}</p>",
        times.len(),
        esc(&last.join(", "))
    )
}

/// The temperatures, and the power rails with the GPU load.
fn sensor_sections(readings: &Readings) -> String {
    let temps = table(
        &readings
            .temperatures
            .iter()
            .map(|(z, c)| (z.clone(), format!("{c:.1} °C")))
            .collect::<Vec<_>>(),
        "No temperature sensors on this machine.",
    );
    let power = table(
        &readings
            .power
            .iter()
            .map(|(r, w)| (r.clone(), format!("{w:.2} W")))
            .collect::<Vec<_>>(),
        "No power sensors on this machine.",
    );
    let gpu = match readings.gpu_load {
        Some(g) => format!("<p>GPU load: <b>{g:.0} %</b></p>"),
        None => "<p class=\"small\">GPU load: not reported on this machine.</p>".to_string(),
    };
    format!(
        "<section><h2>Temperatures</h2>{temps}</section>\
         <section><h2>Power</h2>{power}{gpu}</section>"
    )
}

/// Whether the couples' photos are kept until retention, and the button that switches it.
fn captures_section(keep: bool, csrf: &str) -> String {
    let (captures_note, captures_next, captures_button) = if keep {
        (
            "Kept: each couple's photo stays until retention deletes it with the video.",
            "no",
            "Delete captures once the video is done",
        )
    } else {
        (
            "Deleted as soon as each couple's video is done.",
            "yes",
            "Keep captures until retention",
        )
    };
    format!(
        "<section><h2>Source captures</h2>\
         <p>{captures_note}</p>\
         <form method=\"post\" action=\"/admin/captures\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <input type=\"hidden\" name=\"keep\" value=\"{captures_next}\">\
         <button type=\"submit\" class=\"secondary\">{captures_button}</button></form></section>"
    )
}

fn end_of_event_section(csrf: &str) -> String {
    format!(
        "<section><h2>End of event</h2>\
         <p>Closes the booth, deletes every capture and video now and stops every download link, \
         and starts the event's counts again. This cannot be undone.</p>\
         <form method=\"post\" action=\"/admin/end-of-event\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <label class=\"check\"><input type=\"checkbox\" name=\"confirm\" value=\"yes\" required> Yes, delete everything</label>\
         <button type=\"submit\" class=\"danger\">End of event</button></form></section>"
    )
}

/// The audit log's latest entries, with their local time.
fn log(audit: &[(i64, String, String)]) -> String {
    table(
        &audit
            .iter()
            .map(|(at, e, d)| {
                (
                    format!("{} {e}", crate::sys::local_date_time(*at)),
                    d.clone(),
                )
            })
            .collect::<Vec<_>>(),
        "Nothing yet.",
    )
}

/// The settings and password pages, and logging out.
fn links_section(csrf: &str) -> String {
    format!(
        "<section class=\"row\"><a class=\"btn\" href=\"/admin/settings\">Event settings</a>\
         <a class=\"btn secondary\" href=\"/admin/password\">Change password</a>\
         <form method=\"post\" action=\"/admin/logout\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <button type=\"submit\" class=\"secondary\">Log out</button></form></section>"
    )
}
