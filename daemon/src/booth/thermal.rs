//! Thermal throttling: above a soft limit renders are made smaller, above a hard limit new
//! renders wait in the queue until the hottest reading is `hysteresis_c` under the limit.

use serde::Serialize;

use std::sync::Mutex;

use crate::config::ThermalConfig;
use crate::telemetry::{Readings, Telemetry};

/// How renders run now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Throttle {
    /// Full size.
    Normal,
    /// Above the soft limit: a smaller size.
    Reduced,
    /// Above the hard limit: new renders wait ("cooling down").
    Paused,
}

impl Throttle {
    pub fn name(self) -> &'static str {
        match self {
            Throttle::Normal => "normal",
            Throttle::Reduced => "reduced",
            Throttle::Paused => "paused",
        }
    }

    pub fn level(self) -> u8 {
        match self {
            Throttle::Normal => 0,
            Throttle::Reduced => 1,
            Throttle::Paused => 2,
        }
    }
}

/// The next state from the previous one and the hottest reading. A limit is entered at the
/// limit and left only under the limit minus the hysteresis, so a reading that wavers around a
/// limit does not flip the booth back and forth. No reading at all: no throttling.
pub fn next(prev: Throttle, hottest: Option<f64>, cfg: &ThermalConfig) -> Throttle {
    let Some(t) = hottest else {
        return Throttle::Normal;
    };
    let hard_held = prev == Throttle::Paused && t > cfg.hard_limit_c - cfg.hysteresis_c;
    if t >= cfg.hard_limit_c || hard_held {
        return Throttle::Paused;
    }
    let soft_held = prev != Throttle::Normal && t > cfg.soft_limit_c - cfg.hysteresis_c;
    if t >= cfg.soft_limit_c || soft_held {
        return Throttle::Reduced;
    }
    Throttle::Normal
}

/// The render size under `throttle`: reduced renders are `soft_scale` times the size, even,
/// and never under the morph generator's 256 px.
pub fn render_size(width: u32, height: u32, throttle: Throttle, cfg: &ThermalConfig) -> (u32, u32) {
    if throttle == Throttle::Normal {
        return (width, height);
    }
    let scale = |v: u32| -> u32 {
        let s = ((f64::from(v) * cfg.soft_scale / 2.0).round() as u32) * 2;
        s.max(256).min(v)
    };
    (scale(width), scale(height))
}

/// What the kiosk, the session events and `/metrics` say about it.
#[derive(Debug, Clone, Serialize)]
pub struct ThermalState {
    pub throttle: Throttle,
    pub hottest_c: Option<f64>,
    pub source: &'static str,
    pub soft_limit_c: f64,
    pub hard_limit_c: f64,
}

/// The machine's sensors and the throttling they call for: read every `thermal.poll_ms` by the
/// booth's thermal thread, shown by `/metrics` and the health page from the latest reading
/// (the sensors are read once per poll, not once per request).
pub struct ThermalWatch {
    telemetry: Telemetry,
    readings: Mutex<Readings>,
    state: Mutex<ThermalState>,
    cfg: ThermalConfig,
}

/// A change of throttling (see [`ThermalWatch::poll`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Change {
    pub from: Throttle,
    pub to: Throttle,
    pub hottest_c: Option<f64>,
}

impl ThermalWatch {
    /// Opens the sensors (NVML, else sysfs) and takes a first reading.
    pub fn open(cfg: &ThermalConfig) -> ThermalWatch {
        ThermalWatch::with(Telemetry::open(&cfg.sysfs_root, cfg.nvml), cfg)
    }

    pub fn with(telemetry: Telemetry, cfg: &ThermalConfig) -> ThermalWatch {
        let readings = telemetry.read();
        let hottest = readings.hottest();
        let state = ThermalState {
            throttle: next(Throttle::Normal, hottest, cfg),
            hottest_c: hottest,
            source: telemetry.source().name(),
            soft_limit_c: cfg.soft_limit_c,
            hard_limit_c: cfg.hard_limit_c,
        };
        ThermalWatch {
            telemetry,
            readings: Mutex::new(readings),
            state: Mutex::new(state),
            cfg: cfg.clone(),
        }
    }

    /// Where the figures come from, in words.
    pub fn describe(&self) -> String {
        self.telemetry.describe()
    }

    /// Takes a reading and updates the throttling; says when the throttling changed.
    pub fn poll(&self) -> Option<Change> {
        let readings = self.telemetry.read();
        let hottest = readings.hottest();
        if let Ok(mut r) = self.readings.lock() {
            *r = readings;
        }
        let mut t = self.state.lock().ok()?;
        let from = t.throttle;
        t.throttle = next(from, hottest, &self.cfg);
        t.hottest_c = hottest;
        (from != t.throttle).then_some(Change {
            from,
            to: t.throttle,
            hottest_c: hottest,
        })
    }

    /// The latest reading.
    pub fn readings(&self) -> Readings {
        self.readings.lock().map(|r| r.clone()).unwrap_or_default()
    }

    pub fn state(&self) -> Option<ThermalState> {
        self.state.lock().ok().map(|t| t.clone())
    }

    pub fn throttle(&self) -> Throttle {
        self.state
            .lock()
            .map(|t| t.throttle)
            .unwrap_or(Throttle::Normal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_entered_at_the_limit_and_left_under_it_minus_the_hysteresis() {
        let cfg = ThermalConfig::default(); // soft 80, hard 90, hysteresis 5
        let mut s = Throttle::Normal;
        let mut seen = Vec::new();
        for t in [
            50.0, 79.9, 80.0, 76.0, 75.0, 89.0, 90.0, 86.0, 85.5, 85.0, 70.0,
        ] {
            s = next(s, Some(t), &cfg);
            seen.push(s.name());
        }
        assert_eq!(
            seen,
            [
                "normal", "normal", "reduced", "reduced", "normal", "reduced", "paused", "paused",
                "paused", "reduced", "normal"
            ]
        );
        assert_eq!(next(Throttle::Paused, None, &cfg), Throttle::Normal);
    }

    #[test]
    fn the_watch_reports_each_change_of_throttling_once_per_reading() {
        let root = tempfile::tempdir().unwrap();
        let zone = root.path().join("sys/class/thermal/thermal_zone0");
        std::fs::create_dir_all(&zone).unwrap();
        std::fs::write(zone.join("type"), "gpu-thermal\n").unwrap();
        let set = |c: i64| std::fs::write(zone.join("temp"), format!("{}\n", c * 1000)).unwrap();
        set(50);
        let cfg = ThermalConfig {
            nvml: false,
            sysfs_root: root.path().to_path_buf(),
            ..ThermalConfig::default()
        };
        let w = ThermalWatch::open(&cfg);
        assert_eq!(w.throttle(), Throttle::Normal);
        assert_eq!(w.state().unwrap().hottest_c, Some(50.0));
        // Each poll is one reading: the test steps through them without waiting for a timer.
        let mut changes = Vec::new();
        for c in [85, 86, 95, 87, 84, 60] {
            set(c);
            changes.push(w.poll().map(|ch| (ch.from.name(), ch.to.name())));
            assert_eq!(w.readings().hottest(), Some(c as f64));
        }
        assert_eq!(
            changes,
            [
                Some(("normal", "reduced")),
                None,
                Some(("reduced", "paused")),
                None,
                Some(("paused", "reduced")),
                Some(("reduced", "normal")),
            ]
        );
    }

    #[test]
    fn reduced_renders_step_down_but_never_under_256_px() {
        let cfg = ThermalConfig::default();
        assert_eq!(render_size(720, 720, Throttle::Normal, &cfg), (720, 720));
        assert_eq!(render_size(720, 720, Throttle::Reduced, &cfg), (540, 540));
        assert_eq!(render_size(1280, 300, Throttle::Reduced, &cfg), (960, 256));
        assert_eq!(render_size(256, 256, Throttle::Reduced, &cfg), (256, 256));
    }
}
