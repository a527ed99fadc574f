//! What the booth reports about itself: `/metrics`, the kiosk's status, a stalled camera.

use crate::store::token_hash;
use kissbooth_capture::{CameraSpec, CameraStatus};
use serde_json::json;
use std::time::Duration;

use super::*;

/// How old the newest picture of a live camera may be before the booth says the camera has
/// stalled: 2 s (a camera sends many pictures a second), or three of a stills folder's
/// intervals when they are longer.
pub fn stall_after(spec: &CameraSpec) -> Duration {
    let floor = Duration::from_secs(2);
    match spec {
        CameraSpec::Stills { interval_ms, .. } => floor.max(Duration::from_millis(3 * interval_ms)),
        _ => floor,
    }
}

/// Whether a camera in `status` whose newest picture was taken at `newest` has stalled by
/// `now`: live but silent for longer than `after`. A reconnecting camera is not stalled: it
/// says so itself.
pub fn stalled(
    status: &CameraStatus,
    newest: Option<std::time::SystemTime>,
    now: std::time::SystemTime,
    after: Duration,
) -> bool {
    matches!(status, CameraStatus::Live { .. })
        && newest.is_some_and(|t| now.duration_since(t).unwrap_or_default() > after)
}

impl Booth {
    /// Whether the camera has stopped sending pictures without saying why.
    pub fn camera_stalled(&self) -> bool {
        stalled(
            &self.camera.status(),
            self.camera.latest().map(|f| f.captured_at),
            std::time::SystemTime::now(),
            self.live.stall_after,
        )
    }

    pub fn metrics(&self) -> anyhow::Result<String> {
        use std::fmt::Write;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP kissbooth_sessions Sessions by state.\n# TYPE kissbooth_sessions gauge"
        );
        for (state, n) in self.store.count_by_state()? {
            let _ = writeln!(out, "kissbooth_sessions{{state=\"{state}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP kissbooth_event_count What the booth counted this event (End of event starts again).\n# TYPE kissbooth_event_count gauge"
        );
        for (key, _, n) in self.store.counters()? {
            let what = key.trim_start_matches("count_");
            let _ = writeln!(out, "kissbooth_event_count{{what=\"{what}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP kissbooth_closed 1 while the operator has closed the booth.\n# TYPE kissbooth_closed gauge\nkissbooth_closed {}",
            u8::from(self.closed())
        );
        let queue = self.queue.len();
        let _ = writeln!(
            out,
            "# HELP kissbooth_render_queue_depth Clips waiting to render.\n# TYPE kissbooth_render_queue_depth gauge\nkissbooth_render_queue_depth {queue}"
        );
        let times = self.queue.times();
        let (n, sum) = (times.len(), times.iter().sum::<f64>());
        if n > 0 {
            let _ = writeln!(
                out,
                "# HELP kissbooth_render_seconds_recent_mean Mean render time of recent clips.\n# TYPE kissbooth_render_seconds_recent_mean gauge\nkissbooth_render_seconds_recent_mean {}",
                sum / n as f64
            );
        }
        let up = matches!(self.camera.status(), CameraStatus::Live { .. });
        let _ = writeln!(
            out,
            "# HELP kissbooth_camera_up Camera delivering frames.\n# TYPE kissbooth_camera_up gauge\nkissbooth_camera_up {}",
            u8::from(up)
        );
        let _ = writeln!(
            out,
            "# HELP kissbooth_uptime_seconds Seconds since start.\n# TYPE kissbooth_uptime_seconds counter\nkissbooth_uptime_seconds {}",
            self.started.elapsed().as_secs()
        );
        if let Some(t) = self.thermal_state() {
            let _ = writeln!(
                out,
                "# HELP kissbooth_thermal_throttle Thermal throttling: 0 normal, 1 reduced render size, 2 renders paused.\n# TYPE kissbooth_thermal_throttle gauge\nkissbooth_thermal_throttle {}",
                t.throttle.level()
            );
            if let Some(h) = t.hottest_c {
                let _ = writeln!(
                    out,
                    "# HELP kissbooth_temperature_hottest_celsius Hottest temperature read.\n# TYPE kissbooth_temperature_hottest_celsius gauge\nkissbooth_temperature_hottest_celsius {h}"
                );
            }
            let _ = writeln!(
                out,
                "# HELP kissbooth_telemetry_source Where the health figures come from.\n# TYPE kissbooth_telemetry_source gauge\nkissbooth_telemetry_source{{source=\"{}\"}} 1",
                t.source
            );
        }
        crate::telemetry::prometheus(&self.readings(), &mut out);
        self.net.prometheus(&mut out);
        Ok(out)
    }

    pub fn status_json(&self) -> serde_json::Value {
        let settings = self.settings();
        let camera = match self.camera.status() {
            CameraStatus::Live { .. } if self.camera_stalled() => json!({
                "state": "stalled",
                "message": "The camera has stopped sending pictures. One moment please."
            }),
            CameraStatus::Starting => json!({"state": "starting"}),
            CameraStatus::Live { fps } => json!({"state": "live", "fps": fps}),
            CameraStatus::Reconnecting {
                attempt,
                last_error,
                ..
            } => {
                // Never seen since the booth started (not plugged in), or lost on the way.
                let message = if self.camera.latest().is_none() {
                    "The camera is not connected. The booth starts by itself once it is."
                } else {
                    "The camera is reconnecting…"
                };
                json!({"state": "reconnecting", "attempt": attempt, "message": message, "error": last_error})
            }
            CameraStatus::Stopped => json!({"state": "stopped"}),
        };
        let queue = self.queue.len();
        let source = self
            .live
            .state
            .read()
            .map(|p| p.camera.clone())
            .unwrap_or_default();
        json!({"closed": self.closed(), "camera": camera, "source": source, "queue": queue, "uptime_s": self.started.elapsed().as_secs(), "wifi": !settings.wifi.ssid.is_empty(), "event": {"name": settings.event_name, "countdown_s": settings.countdown_s, "retention_hours": settings.retention_hours, "clip_seconds": settings.clip_seconds, "shape": settings.shape, "wifi_key": &token_hash(&format!("{}\n{}\n{}", settings.wifi.ssid, settings.wifi.password, settings.wifi.security))[..12]}, "thermal": self.thermal_state(), "generator": self.studio.generator})
    }
}
