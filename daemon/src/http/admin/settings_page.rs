//! The operator's settings page (`/admin/settings`): the event's name, the countdown, the clip's
//! length and shape, how long videos are kept, the Wi-Fi to advertise, and the branding logo
//! with a preview of where it goes. Same security as the other admin pages: a session for
//! reading, the session's CSRF token and the page's own origin for every change.

use axum::Form;
use axum::extract::{Multipart, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::{AdminState, blocking, esc, guarded, not_done, page, session};
use crate::booth::settings::{
    Branding, Corner, EventSettings, MAX_LOGO_BYTES, SettingsError, Shape,
};

fn form_page(
    csrf: &str,
    s: &EventSettings,
    has_logo: bool,
    note: &str,
    status: StatusCode,
) -> Response {
    let note = if note.is_empty() {
        String::new()
    } else {
        format!("<p class=\"error\" role=\"alert\">{}</p>", esc(note))
    };
    let body = [
        format!(
            "<h1>Event settings</h1>{note}\
             <p class=\"small\">Saved on the booth; the next couple gets them, no restart.</p>\
             <form method=\"post\" action=\"/admin/settings\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">"
        ),
        event_section(s),
        clip_section(s),
        privacy_section(s),
        wifi_section(s),
        logo_placement_section(s),
        "<button type=\"submit\">Save settings</button></form>".to_string(),
        logo_section(csrf, s, has_logo),
        "<p><a class=\"btn secondary\" href=\"/admin\">Back</a></p>".to_string(),
    ]
    .concat();
    page(status, "Event settings", &body)
}

/// `<option>`s of a `<select>`: (value, label, selected) each.
fn options<'a>(choices: impl Iterator<Item = (&'a str, &'a str, bool)>) -> String {
    choices
        .map(|(value, label, selected)| {
            format!(
                "<option value=\"{value}\"{}>{label}</option>",
                if selected { " selected" } else { "" }
            )
        })
        .collect()
}

/// The event's name and the countdown.
fn event_section(s: &EventSettings) -> String {
    format!(
        "<section><h2>The event</h2>\
         <label>Event name (on the kiosk and the guests' page)\
         <input type=\"text\" name=\"event_name\" maxlength=\"60\" value=\"{name}\" placeholder=\"Anna &amp; Ben's wedding\"></label>\
         <label>Countdown before the picture, seconds (3 to 10)\
         <input type=\"number\" name=\"countdown_s\" min=\"3\" max=\"10\" value=\"{countdown}\" required></label></section>",
        name = esc(&s.event_name),
        countdown = s.countdown_s,
    )
}

/// The clip's length and shape.
fn clip_section(s: &EventSettings) -> String {
    let shapes: String = Shape::ALL
        .iter()
        .map(|x| {
            let (w, h) = x.size();
            format!(
                "<label class=\"check\"><input type=\"radio\" name=\"shape\" value=\"{}\"{}> {} ({w}x{h}{})</label>",
                x.name(),
                if *x == s.shape { " checked" } else { "" },
                match x {
                    Shape::Square => "Square",
                    Shape::Portrait => "Portrait",
                    Shape::Landscape => "Landscape",
                },
                match x {
                    Shape::Square => ", best in chats and feeds",
                    Shape::Portrait => ", fills a phone's screen",
                    Shape::Landscape => ", for a TV or projector",
                }
            )
        })
        .collect();
    format!(
        "<section><h2>The clip</h2>\
         <label>Length, seconds (3 to 8)\
         <input type=\"number\" name=\"clip_seconds\" min=\"3\" max=\"8\" step=\"0.5\" value=\"{seconds}\" required></label>\
         <fieldset><legend>Shape</legend>{shapes}</fieldset></section>",
        seconds = s.clip_seconds,
    )
}

/// How long the couples' pictures and videos are kept.
fn privacy_section(s: &EventSettings) -> String {
    format!(
        "<section><h2>Privacy</h2>\
         <label>Delete each couple's picture and video after, hours (1 to 168)\
         <input type=\"number\" name=\"retention_hours\" min=\"1\" max=\"168\" step=\"0.5\" value=\"{retention}\" required></label>\
         <p class=\"small\">The consent screen tells the couple this time.</p></section>",
        retention = s.retention_hours,
    )
}

/// The Wi-Fi advertised to guests.
fn wifi_section(s: &EventSettings) -> String {
    let security = options(
        crate::config::WifiSecurity::CHOICES
            .iter()
            .map(|w| (w.name(), w.label(), s.wifi.security == *w)),
    );
    format!(
        "<section><h2>The booth's Wi-Fi</h2>\
         <p class=\"small\">Shown as a QR code on the result screen for guests not on the venue's network. \
         Leave the name empty for none.</p>\
         <label>Network name (SSID)<input type=\"text\" name=\"wifi_ssid\" maxlength=\"32\" value=\"{ssid}\"></label>\
         <label>Password<input type=\"text\" name=\"wifi_password\" maxlength=\"63\" value=\"{wpass}\" autocomplete=\"off\"></label>\
         <label>Security<select name=\"wifi_security\">{security}</select></label></section>",
        ssid = esc(&s.wifi.ssid),
        wpass = esc(&s.wifi.password),
    )
}

/// Where the logo goes and how wide it may be.
fn logo_placement_section(s: &EventSettings) -> String {
    let corners = options(
        Corner::ALL
            .iter()
            .map(|c| (c.name(), c.label(), *c == s.branding.corner)),
    );
    format!(
        "<section><h2>Logo placement</h2>\
         <label>Corner<select name=\"logo_corner\">{corners}</select></label>\
         <label>Largest width, % of the frame (5 to 40)\
         <input type=\"number\" name=\"logo_width_pct\" min=\"5\" max=\"40\" value=\"{lw}\" required></label></section>",
        lw = s.branding.width_pct,
    )
}

/// The logo with a preview of where it goes (or a note that there is none), and its upload.
fn logo_section(csrf: &str, s: &EventSettings, has_logo: bool) -> String {
    let logo = if has_logo {
        format!(
            "<p>Every clip and poster carries this logo (the AI-generated mark stays bottom left):</p>\
             <img class=\"preview\" src=\"/admin/logo/preview.jpg\" alt=\"Where the logo goes on a {} clip\">\
             <form method=\"post\" action=\"/admin/logo/remove\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <button type=\"submit\" class=\"secondary\">Remove the logo</button></form>",
            s.shape.name()
        )
    } else {
        "<p class=\"small\">No logo: clips carry only the AI-generated mark.</p>".to_string()
    };
    format!(
        "<section><h2>Branding logo</h2>{logo}\
         <form method=\"post\" action=\"/admin/logo\" enctype=\"multipart/form-data\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <label>A PNG (transparency is kept), at most 2 MiB<input type=\"file\" name=\"logo\" accept=\"image/png\" required></label>\
         <button type=\"submit\" class=\"secondary\">Upload logo</button></form></section>"
    )
}

pub(super) async fn settings_page(State(st): State<AdminState>, headers: HeaderMap) -> Response {
    let csrf = match session(&st, &headers).await {
        Ok(s) => s.csrf,
        Err(r) => return r,
    };
    let s = st.booth.settings();
    form_page(&csrf, &s, st.booth.logo().is_some(), "", StatusCode::OK)
}

#[derive(Deserialize)]
pub(super) struct SettingsForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    event_name: String,
    #[serde(default)]
    countdown_s: String,
    #[serde(default)]
    clip_seconds: String,
    #[serde(default)]
    shape: String,
    #[serde(default)]
    retention_hours: String,
    #[serde(default)]
    wifi_ssid: String,
    #[serde(default)]
    wifi_password: String,
    #[serde(default)]
    wifi_security: String,
    #[serde(default)]
    logo_corner: String,
    #[serde(default)]
    logo_width_pct: String,
}

/// A settings error as a sentence for the operator.
fn sentence(e: &SettingsError) -> String {
    let mut m = e.to_string();
    if let Some(c) = m.get_mut(0..1) {
        c.make_ascii_uppercase();
    }
    m + "."
}

impl SettingsForm {
    /// The settings the form asks for, or what is wrong with it.
    fn settings(&self) -> Result<EventSettings, String> {
        let num = |v: &str, what: &str| -> Result<f64, String> {
            v.trim()
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| format!("{what} must be a number"))
        };
        let s = EventSettings {
            event_name: self.event_name.trim().to_string(),
            countdown_s: num(&self.countdown_s, "The countdown")?.round() as u32,
            clip_seconds: num(&self.clip_seconds, "The clip's length")? as f32,
            shape: Shape::parse(&self.shape).ok_or("Choose a shape for the clip.")?,
            retention_hours: num(&self.retention_hours, "The time videos are kept")?,
            wifi: crate::config::WifiConfig {
                ssid: self.wifi_ssid.trim().to_string(),
                password: self.wifi_password.clone(),
                security: self
                    .wifi_security
                    .parse()
                    .map_err(|_| sentence(&SettingsError::WifiSecurity))?,
            },
            branding: Branding {
                corner: Corner::parse(&self.logo_corner).ok_or("Choose a corner for the logo.")?,
                width_pct: num(&self.logo_width_pct, "The logo's width")?.round() as u32,
            },
        };
        s.validate().map_err(|e| sentence(&e))?;
        Ok(s)
    }
}

pub(super) async fn save_settings(
    State(st): State<AdminState>,
    headers: HeaderMap,
    Form(f): Form<SettingsForm>,
) -> Response {
    let csrf = match guarded(&st, &headers, &f.csrf).await {
        Ok(s) => s.csrf,
        Err(r) => return r,
    };
    let new = match f.settings() {
        Ok(s) => s,
        Err(why) => {
            // The form comes back as typed, with what to fix.
            let mut shown = st.booth.settings();
            shown.event_name = f.event_name.clone();
            return form_page(
                &csrf,
                &shown,
                st.booth.logo().is_some(),
                &why,
                StatusCode::BAD_REQUEST,
            );
        }
    };
    let b = st.booth.clone();
    match blocking(move || b.set_settings(new)).await {
        Some(Ok(())) => Redirect::to("/admin/settings").into_response(),
        Some(Err(e)) => not_done("Not saved", "The settings could not be saved", Some(&e)),
        None => not_done("Not saved", "The settings could not be saved", None),
    }
}

/// The logo upload: a multipart form with the CSRF token and one PNG.
pub(super) async fn upload_logo(
    State(st): State<AdminState>,
    headers: HeaderMap,
    mut form: Multipart,
) -> Response {
    let mut csrf = String::new();
    let mut png: Option<Vec<u8>> = None;
    loop {
        match form.next_field().await {
            Ok(Some(field)) => {
                let name = field.name().unwrap_or("").to_string();
                let Ok(bytes) = field.bytes().await else {
                    return bad_upload("The upload did not arrive whole. Please try again.");
                };
                match name.as_str() {
                    "csrf" => csrf = String::from_utf8_lossy(&bytes).into_owned(),
                    "logo" => png = Some(bytes.to_vec()),
                    _ => {}
                }
            }
            Ok(None) => break,
            Err(_) => {
                return bad_upload(&format!(
                    "The upload could not be read (a PNG of at most {} MiB).",
                    MAX_LOGO_BYTES >> 20
                ));
            }
        }
    }
    if let Err(r) = guarded(&st, &headers, &csrf).await {
        return r;
    }
    let Some(png) = png.filter(|p| !p.is_empty()) else {
        return bad_upload("Choose a PNG file to upload.");
    };
    let b = st.booth.clone();
    match blocking(move || b.set_logo(Some(&png))).await {
        Some(Ok(())) => Redirect::to("/admin/settings").into_response(),
        Some(Err(e)) => {
            tracing::info!(error = %format!("{e:#}"), "logo refused");
            bad_upload(
                "That file is not a PNG the booth can use (a PNG image, at most 4096 pixels a side).",
            )
        }
        None => not_done("Not saved", "The logo could not be saved", None),
    }
}

fn bad_upload(text: &str) -> Response {
    super::message(StatusCode::BAD_REQUEST, "Logo not taken", text)
}

#[derive(Deserialize)]
pub(super) struct TokenOnly {
    #[serde(default)]
    csrf: String,
}

pub(super) async fn remove_logo(
    State(st): State<AdminState>,
    headers: HeaderMap,
    Form(f): Form<TokenOnly>,
) -> Response {
    if let Err(r) = guarded(&st, &headers, &f.csrf).await {
        return r;
    }
    let b = st.booth.clone();
    match blocking(move || b.set_logo(None)).await {
        Some(Ok(())) => Redirect::to("/admin/settings").into_response(),
        Some(Err(e)) => not_done("Not removed", "The logo could not be removed", Some(&e)),
        None => not_done("Not removed", "The logo could not be removed", None),
    }
}

/// Where the logo goes: a frame of the chosen shape (the demo clip's poster when there is one,
/// else a plain backdrop) with the logo and the AI-generated mark, as a clip will carry them.
pub(super) async fn logo_preview(State(st): State<AdminState>, headers: HeaderMap) -> Response {
    if let Err(r) = session(&st, &headers).await {
        return r;
    }
    let b = st.booth.clone();
    let jpeg = blocking(move || -> Option<Vec<u8>> {
        let logo = b.logo()?;
        let (w, h) = b.settings().shape.size();
        let poster = crate::clip::attract::clip_path(&b.cfg.data).with_extension("jpg");
        let mut frame = image::open(&poster)
            .map(|i| {
                image::imageops::resize(&i.to_rgb8(), w, h, image::imageops::FilterType::Triangle)
            })
            .unwrap_or_else(|_| {
                image::RgbImage::from_fn(w, h, |_, y| {
                    let t = (y * 60 / h.max(1)) as u8;
                    image::Rgb([70 + t, 52 + t / 2, 60 + t])
                })
            });
        logo.apply(&mut frame);
        kissbooth_media::stamp_ai_label(&mut frame);
        let mut out = std::io::Cursor::new(Vec::new());
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85)
            .encode_image(&frame)
            .ok()?;
        Some(out.into_inner())
    })
    .await
    .flatten();
    match jpeg {
        Some(j) => {
            let mut r = ([(header::CONTENT_TYPE, "image/jpeg")], j).into_response();
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
