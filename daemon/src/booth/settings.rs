//! The event's settings: what an operator changes for each event on the admin page (the event's
//! name, the countdown, the clip's length and shape, how long videos are kept, the Wi-Fi to
//! advertise, the branding logo). Saved in SQLite, applied to the next session without a
//! restart. The configuration file gives their starting values.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{Config, WifiConfig, WifiSecurity};
use crate::store::Store;

/// The settings row that holds them (JSON).
const KEY: &str = "event_settings";

/// The clip's shape, as phones show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    /// 720x720: fills a phone's width in a chat or a feed.
    Square,
    /// 720x1280: fills a phone's screen.
    Portrait,
    /// 1280x720: for a television or a projector.
    Landscape,
}

impl Shape {
    pub const ALL: [Shape; 3] = [Shape::Square, Shape::Portrait, Shape::Landscape];

    pub fn size(self) -> (u32, u32) {
        match self {
            Shape::Square => (720, 720),
            Shape::Portrait => (720, 1280),
            Shape::Landscape => (1280, 720),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Shape::Square => "square",
            Shape::Portrait => "portrait",
            Shape::Landscape => "landscape",
        }
    }

    pub fn parse(s: &str) -> Option<Shape> {
        Shape::ALL.into_iter().find(|x| x.name() == s)
    }

    /// The shape of a configured size: the nearest of the three.
    pub fn of(width: u32, height: u32) -> Shape {
        if width * 10 > height * 12 {
            Shape::Landscape
        } else if height * 10 > width * 12 {
            Shape::Portrait
        } else {
            Shape::Square
        }
    }
}

/// Where the branding logo goes on every clip and poster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Corner {
    TopLeft,
    TopRight,
    BottomRight,
}

impl Corner {
    pub const ALL: [Corner; 3] = [Corner::TopLeft, Corner::TopRight, Corner::BottomRight];

    pub fn name(self) -> &'static str {
        match self {
            Corner::TopLeft => "top_left",
            Corner::TopRight => "top_right",
            Corner::BottomRight => "bottom_right",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Corner::TopLeft => "Top left",
            Corner::TopRight => "Top right",
            Corner::BottomRight => "Bottom right",
        }
    }

    pub fn parse(s: &str) -> Option<Corner> {
        Corner::ALL.into_iter().find(|x| x.name() == s)
    }
}

/// The branding logo's place and size (the AI-generated mark keeps the bottom left corner).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Branding {
    pub corner: Corner,
    /// Largest width, in percent of the frame's width (5 to 40).
    pub width_pct: u32,
}

impl Default for Branding {
    fn default() -> Self {
        Branding {
            corner: Corner::TopRight,
            width_pct: 22,
        }
    }
}

impl Branding {
    pub fn placement(&self) -> kissbooth_media::Placement {
        use kissbooth_media::Placement as P;
        let (margin, max_width_frac) = (16, self.width_pct as f32 / 100.0);
        match self.corner {
            Corner::TopLeft => P::TopLeft {
                margin,
                max_width_frac,
            },
            Corner::TopRight => P::TopRight {
                margin,
                max_width_frac,
            },
            Corner::BottomRight => P::BottomRight {
                margin,
                max_width_frac,
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventSettings {
    /// Shown on the kiosk's attract and closed screens and on the guests' page ("" for none).
    pub event_name: String,
    /// Seconds of the countdown before the picture (3 to 10).
    pub countdown_s: u32,
    /// Seconds of each clip (3 to 8).
    pub clip_seconds: f32,
    pub shape: Shape,
    /// Hours after which a session's capture and video are deleted (1 to 168); the consent
    /// screen says so.
    pub retention_hours: f64,
    /// The booth's own Wi-Fi, advertised as a QR code on the result screen ("" SSID: none).
    pub wifi: WifiConfig,
    /// The logo's placement, when a logo is uploaded (`DATA/branding/logo.png`).
    pub branding: Branding,
}

impl Default for EventSettings {
    fn default() -> Self {
        EventSettings::from_config(&Config::default())
    }
}

/// A setting the booth cannot take, said so the operator can fix it.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SettingsError {
    #[error("the event's name is at most 60 characters")]
    NameTooLong,
    #[error("the event's name cannot hold control characters")]
    NameControl,
    #[error("the countdown is 3 to 10 seconds")]
    Countdown,
    #[error("a clip is 3 to 8 seconds long")]
    ClipSeconds,
    #[error("videos are kept 1 to 168 hours (a week)")]
    Retention,
    #[error("the Wi-Fi name is at most 32 bytes")]
    WifiName,
    #[error("a WPA password is 8 to 63 characters")]
    WifiPassword,
    #[error("the Wi-Fi security is WPA, WEP or none")]
    WifiSecurity,
    #[error("the logo's width is 5 to 40 % of the frame")]
    LogoWidth,
}

impl EventSettings {
    /// The starting values, from the configuration file.
    pub fn from_config(cfg: &Config) -> EventSettings {
        EventSettings {
            event_name: String::new(),
            countdown_s: 3,
            clip_seconds: cfg.render.seconds,
            shape: Shape::of(cfg.render.width, cfg.render.height),
            retention_hours: cfg.privacy.retention_hours,
            wifi: cfg.wifi.clone(),
            branding: Branding::default(),
        }
    }

    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.event_name.chars().count() > 60 {
            return Err(SettingsError::NameTooLong);
        }
        if self.event_name.chars().any(char::is_control) {
            return Err(SettingsError::NameControl);
        }
        if !(3..=10).contains(&self.countdown_s) {
            return Err(SettingsError::Countdown);
        }
        if !(3.0..=8.0).contains(&self.clip_seconds) {
            return Err(SettingsError::ClipSeconds);
        }
        if !(1.0..=168.0).contains(&self.retention_hours) {
            return Err(SettingsError::Retention);
        }
        let w = &self.wifi;
        if w.ssid.len() > 32 {
            return Err(SettingsError::WifiName);
        }
        if !w.ssid.is_empty() {
            match w.security {
                WifiSecurity::Wpa if !(8..=63).contains(&w.password.chars().count()) => {
                    return Err(SettingsError::WifiPassword);
                }
                WifiSecurity::Wpa | WifiSecurity::Wep | WifiSecurity::Open => {}
                WifiSecurity::Unset => return Err(SettingsError::WifiSecurity),
            }
        }
        if !(5..=40).contains(&self.branding.width_pct) {
            return Err(SettingsError::LogoWidth);
        }
        Ok(())
    }

    /// The saved settings, or the configuration's when none were saved (or what was saved no
    /// longer reads: said in the log, never a booth that does not start).
    pub fn load(store: &Store, cfg: &Config) -> EventSettings {
        let base = EventSettings::from_config(cfg);
        match store.setting(KEY) {
            Ok(Some(json)) => match serde_json::from_str::<EventSettings>(&json) {
                Ok(s) if s.validate().is_ok() => s,
                Ok(_) | Err(_) => {
                    tracing::warn!(
                        "the saved event settings do not read; using the configuration's"
                    );
                    base
                }
            },
            _ => base,
        }
    }

    pub fn save(&self, store: &Store) -> anyhow::Result<()> {
        self.validate()?;
        store.set_setting(KEY, &serde_json::to_string(self)?, false)?;
        Ok(())
    }
}

/// Where the uploaded branding logo is kept.
pub fn logo_path(data: &Path) -> PathBuf {
    data.join("branding").join("logo.png")
}

/// Largest logo upload, bytes.
pub const MAX_LOGO_BYTES: usize = 2 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked_before_they_are_taken() {
        let ok = EventSettings::default();
        assert_eq!(ok.validate(), Ok(()));
        assert_eq!(ok.shape, Shape::Square, "the booth's default shape");
        let with = |f: &dyn Fn(&mut EventSettings)| {
            let mut s = EventSettings::default();
            f(&mut s);
            s.validate()
        };
        assert_eq!(
            with(&|s| s.event_name = "x".repeat(61)),
            Err(SettingsError::NameTooLong)
        );
        assert_eq!(
            with(&|s| s.event_name = "a\nb".into()),
            Err(SettingsError::NameControl)
        );
        assert_eq!(
            with(&|s| s.event_name = "Anna & Ben's wedding 💍".into()),
            Ok(())
        );
        assert_eq!(with(&|s| s.countdown_s = 2), Err(SettingsError::Countdown));
        assert_eq!(
            with(&|s| s.clip_seconds = 9.0),
            Err(SettingsError::ClipSeconds)
        );
        assert_eq!(
            with(&|s| s.retention_hours = 0.5),
            Err(SettingsError::Retention)
        );
        assert_eq!(
            with(&|s| {
                s.wifi.ssid = "Booth".into();
                s.wifi.security = WifiSecurity::Wpa;
                s.wifi.password = "short".into();
            }),
            Err(SettingsError::WifiPassword)
        );
        assert_eq!(
            with(&|s| {
                s.wifi.ssid = "Booth".into();
                s.wifi.security = WifiSecurity::Unset;
            }),
            Err(SettingsError::WifiSecurity)
        );
        assert_eq!(
            with(&|s| s.branding.width_pct = 60),
            Err(SettingsError::LogoWidth)
        );
        assert_eq!(Shape::of(720, 1280), Shape::Portrait);
        assert_eq!(Shape::of(1280, 720), Shape::Landscape);
        assert_eq!(Shape::of(512, 512), Shape::Square);
    }

    #[test]
    fn saved_settings_come_back_and_unreadable_ones_fall_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let cfg = Config::default();
        assert_eq!(
            EventSettings::load(&store, &cfg),
            EventSettings::from_config(&cfg)
        );
        let s = EventSettings {
            event_name: "Summer party".into(),
            countdown_s: 5,
            shape: Shape::Portrait,
            ..EventSettings::default()
        };
        s.save(&store).unwrap();
        assert_eq!(EventSettings::load(&store, &cfg), s);
        let bad = EventSettings {
            countdown_s: 99,
            ..EventSettings::default()
        };
        assert!(bad.save(&store).is_err(), "refused, not saved");
        assert_eq!(EventSettings::load(&store, &cfg), s);
        store.set_setting(KEY, "{not json", false).unwrap();
        assert_eq!(
            EventSettings::load(&store, &cfg),
            EventSettings::from_config(&cfg)
        );
    }
}
