//! The thermal watch: a reading every `thermal.poll_ms`, and what a change of throttling tells
//! the kiosk, the waiting sessions and the render worker.

use crate::booth::thermal::{Change, ThermalState, Throttle};
use crate::telemetry::Readings;
use serde_json::json;

use super::*;

impl Booth {
    /// One thermal reading: updates the throttling state, and on a change tells the kiosk, the
    /// waiting sessions and the render worker.
    pub(super) fn thermal_tick(&self) {
        let Some(Change {
            from: prev,
            to: now,
            hottest_c: hottest,
        }) = self.thermal.poll()
        else {
            return;
        };
        let detail = format!(
            "{} -> {} at {}",
            prev.name(),
            now.name(),
            hottest.map_or("no reading".to_string(), |t| format!("{t:.1} °C"))
        );
        tracing::warn!("thermal throttling {detail}");
        self.store.audit("thermal", None, &detail);
        let _ = self
            .events
            .send(json!({"type": "thermal", "thermal": self.thermal_state()}).to_string());
        let _ = self
            .events
            .send(json!({"type": "status", "status": self.status_json()}).to_string());
        self.queue.wake();
        for id in self.queue.waiting() {
            let _ = self.view_and_publish(&id);
        }
    }

    /// The latest telemetry reading (taken every `thermal.poll_ms`).
    pub fn readings(&self) -> Readings {
        self.thermal.readings()
    }

    pub fn thermal_state(&self) -> Option<ThermalState> {
        self.thermal.state()
    }

    pub(super) fn throttle(&self) -> Throttle {
        self.thermal.throttle()
    }
}
