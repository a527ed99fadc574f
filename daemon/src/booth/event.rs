//! The event: its settings and branding logo, the hosts' album, and whether the booth is open.

use crate::booth::session::SessionState;
use crate::store::{SessionRow, write_atomic};
use anyhow::anyhow;
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;

use super::*;

/// The uploaded logo at the settings' placement; none when there is none (or it no longer
/// reads: said in the log).
pub(super) fn load_logo(
    data: &std::path::Path,
    settings: &crate::booth::settings::EventSettings,
) -> Option<Arc<kissbooth_media::Overlay>> {
    let path = crate::booth::settings::logo_path(data);
    if !path.is_file() {
        return None;
    }
    match kissbooth_media::Overlay::from_png(&path, settings.branding.placement()) {
        Ok(o) => Some(Arc::new(o)),
        Err(e) => {
            tracing::warn!(error = %e, "the branding logo does not read; clips go without it");
            None
        }
    }
}

impl Booth {
    /// The finished clips whose couples agreed to the hosts' album, oldest first.
    pub fn album(&self) -> anyhow::Result<Vec<crate::booth::album::Entry>> {
        let mut done: Vec<SessionRow> = self
            .store
            .sessions_in(&[SessionState::Done])?
            .into_iter()
            .filter(|s| s.album)
            .collect();
        done.sort_by_key(|s| s.created_at);
        Ok(done
            .into_iter()
            .filter_map(|s| {
                let path = PathBuf::from(s.video_path?);
                path.is_file().then(|| crate::booth::album::Entry {
                    name: format!(
                        "kissbooth-{}-{}.mp4",
                        crate::sys::local_stamp(s.created_at),
                        &s.id[..s.id.len().min(6)]
                    ),
                    path,
                    created_unix_s: s.created_at,
                })
            })
            .collect())
    }

    /// The event's settings now.
    pub fn settings(&self) -> crate::booth::settings::EventSettings {
        self.settings.read().map(|s| s.clone()).unwrap_or_default()
    }

    /// Checks and saves the event's settings; the next session uses them, the kiosk hears of
    /// them at once.
    pub fn set_settings(&self, new: crate::booth::settings::EventSettings) -> anyhow::Result<()> {
        new.save(&self.store)?;
        *self.logo.write().map_err(|_| anyhow!("logo lock"))? = load_logo(&self.cfg.data, &new);
        *self
            .settings
            .write()
            .map_err(|_| anyhow!("settings lock"))? = new;
        self.store.audit("settings_changed", None, "");
        let _ = self
            .events
            .send(json!({"type": "status", "status": self.status_json()}).to_string());
        Ok(())
    }

    /// Takes an uploaded branding logo (a PNG, checked as the encoder will use it), or removes
    /// it (`None`). Written atomically; the next clip carries it.
    pub fn set_logo(&self, png: Option<&[u8]>) -> anyhow::Result<()> {
        let path = crate::booth::settings::logo_path(&self.cfg.data);
        match png {
            Some(bytes) => {
                kissbooth_media::Overlay::from_png_bytes(
                    bytes,
                    std::path::Path::new("logo.png"),
                    self.settings().branding.placement(),
                )?;
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                write_atomic(&path, bytes)?;
                self.store
                    .audit("logo_uploaded", None, &format!("{} bytes", bytes.len()));
            }
            None => {
                if path.exists() {
                    std::fs::remove_file(&path)?;
                }
                self.store.audit("logo_removed", None, "");
            }
        }
        *self.logo.write().map_err(|_| anyhow!("logo lock"))? =
            load_logo(&self.cfg.data, &self.settings());
        Ok(())
    }

    /// The branding logo now, if any.
    pub fn logo(&self) -> Option<Arc<kissbooth_media::Overlay>> {
        self.logo.read().ok().and_then(|l| l.clone())
    }

    /// Whether the operator closed the booth (no new sessions; nothing is deleted).
    pub fn closed(&self) -> bool {
        matches!(self.store.setting(CLOSED_KEY), Ok(Some(v)) if v == "1")
    }

    /// Closes the booth (no new sessions; the couples at the screen and the clips being made
    /// finish) or opens it again. The kiosk hears of it at once.
    pub fn set_closed(&self, closed: bool) -> anyhow::Result<()> {
        self.store
            .set_setting(CLOSED_KEY, if closed { "1" } else { "0" }, false)?;
        self.store.audit(
            if closed {
                "booth_closed"
            } else {
                "booth_opened"
            },
            None,
            "",
        );
        let _ = self
            .events
            .send(json!({"type": "status", "status": self.status_json()}).to_string());
        Ok(())
    }
}
