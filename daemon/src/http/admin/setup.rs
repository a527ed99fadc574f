//! The kiosk's first-boot screen: the one-time set-up code and choosing the admin password.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rand::RngCore;
use serde::Deserialize;
use serde_json::json;

use super::*;
use crate::booth::Booth;
use crate::store::{Store, token_hash};

#[derive(Deserialize)]
pub struct SetupBody {
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
    /// The one-time set-up code from the booth's log or `kissbooth admin setup-code`.
    #[serde(default)]
    code: String,
}

/// The settings row holding the sha256 of the current one-time set-up code.
pub(super) const SETUP_CODE_KEY: &str = "admin_setup_code";
/// Wrong set-up codes tried since the current code was made.
pub(super) const SETUP_FAILS_KEY: &str = "admin_setup_failures";
/// Wrong tries after which a set-up code is void (and a new one is written to the log).
pub const SETUP_CODE_TRIES: u32 = 5;

/// A new one-time set-up code for the kiosk's first-boot screen (`1234-5678`); the previous one
/// stops working. Only its sha256 is stored.
pub fn new_setup_code(store: &Store) -> anyhow::Result<String> {
    let mut b = [0u8; 8];
    rand::rng().fill_bytes(&mut b);
    let digits: String = b.iter().map(|x| char::from(b'0' + x % 10)).collect();
    store.set_setting(SETUP_CODE_KEY, &token_hash(&digits), false)?;
    store.set_setting(SETUP_FAILS_KEY, "0", false)?;
    Ok(format!("{}-{}", &digits[..4], &digits[4..]))
}

/// Makes a set-up code and writes it to the log (the journal), where only the operator looks.
pub fn announce_setup_code(store: &Store) -> anyhow::Result<()> {
    let code = new_setup_code(store)?;
    tracing::warn!(
        "no admin password yet: the kiosk's set-up code is {code} (a new one: `kissbooth admin setup-code`)"
    );
    Ok(())
}

/// Why a set-up attempt may not choose the password.
pub(super) enum CodeCheck {
    Right,
    Wrong,
    /// Too many wrong tries: the code is void and a new one is in the log.
    Replaced,
}

pub(super) fn check_setup_code(store: &Store, typed: &str) -> anyhow::Result<CodeCheck> {
    let digits: String = typed.chars().filter(char::is_ascii_digit).collect();
    let stored = store.setting(SETUP_CODE_KEY)?;
    if stored.is_some_and(|h| digits.len() == 8 && h == token_hash(&digits)) {
        return Ok(CodeCheck::Right);
    }
    let fails = store
        .setting(SETUP_FAILS_KEY)?
        .and_then(|n| n.parse::<u32>().ok())
        .unwrap_or(0)
        + 1;
    store.set_setting(SETUP_FAILS_KEY, &fails.to_string(), false)?;
    store.audit("admin_setup_code_wrong", None, &format!("try {fails}"));
    if fails >= SETUP_CODE_TRIES {
        announce_setup_code(store)?;
        return Ok(CodeCheck::Replaced);
    }
    Ok(CodeCheck::Wrong)
}

/// The kiosk's first-boot screen: chooses the admin password once (loopback peers only), with
/// the one-time set-up code that only the operator has (the booth's log, or
/// `kissbooth admin setup-code` on the booth), so a guest at the kiosk cannot.
pub async fn setup(State(b): State<Arc<Booth>>, Json(body): Json<SetupBody>) -> Response {
    enum Outcome {
        Set,
        Taken,
        Code(CodeCheck),
        Invalid(String),
    }
    let r = blocking(move || -> anyhow::Result<Outcome> {
        if b.store.setting(PASSWORD_KEY)?.is_some() {
            return Ok(Outcome::Taken);
        }
        match check_setup_code(&b.store, &body.code)? {
            CodeCheck::Right => {}
            other => return Ok(Outcome::Code(other)),
        }
        if let Err(why) = check_new_password(&body.password, &body.confirm) {
            return Ok(Outcome::Invalid(why));
        }
        let h = hash_password(&body.password)?;
        let set = b.store.set_setting(PASSWORD_KEY, &h, true)?;
        if set {
            b.store.set_setting(SETUP_CODE_KEY, "", false)?;
            b.store
                .audit("admin_password_set", None, "on the kiosk screen");
        }
        Ok(if set { Outcome::Set } else { Outcome::Taken })
    })
    .await;
    let code_error =
        |text: &str| (StatusCode::FORBIDDEN, Json(json!({"error": text}))).into_response();
    match r {
        Some(Ok(Outcome::Set)) => (StatusCode::CREATED, Json(json!({"set": true}))).into_response(),
        Some(Ok(Outcome::Invalid(why))) => {
            (StatusCode::BAD_REQUEST, Json(json!({"error": why}))).into_response()
        }
        Some(Ok(Outcome::Code(CodeCheck::Wrong | CodeCheck::Right))) => code_error(
            "That set-up code is not right. The operator finds it in the booth's log \
             (journalctl -u kissbooth) or with `kissbooth admin setup-code`.",
        ),
        Some(Ok(Outcome::Code(CodeCheck::Replaced))) => code_error(
            "Too many wrong set-up codes: that code no longer works. A new one is in the \
             booth's log (journalctl -u kissbooth), or run `kissbooth admin setup-code`.",
        ),
        Some(Ok(Outcome::Taken)) => (
            StatusCode::CONFLICT,
            Json(
                json!({"error": "An admin password is already set. Change it on the admin page."}),
            ),
        )
            .into_response(),
        failed => {
            log_failure(&failed, "the admin password could not be saved");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({"error": "The password could not be saved. Please try again."})),
            )
                .into_response()
        }
    }
}
