//! The daemon's configuration: a TOML file, then environment overrides, then command-line flags.
//! Every field has a default that runs on a fresh machine.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use kissbooth_engines::generate::{MorphConfig, TimelineConfig};
use kissbooth_media::{EncoderConfig, VideoSpec};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP server listens on. The kiosk API answers loopback peers only; guests on
    /// the network reach only the `/d/{token}` pages.
    pub listen: SocketAddr,
    /// Camera: `stills:FOLDER`, `v4l2:/dev/videoN`, `gst:PIPELINE` or `test`. Empty: the first
    /// V4L2 camera, else the stills in `DATA/demo`, else the test pattern.
    pub camera: String,
    /// Data folder: database, captures, videos.
    pub data: PathBuf,
    /// Base address put in the QR codes (e.g. `http://192.168.4.1:8080`). Empty: the booth's
    /// LAN address and the listen port.
    pub public_url: String,
    pub render: RenderConfig,
    pub privacy: PrivacyConfig,
    pub wifi: WifiConfig,
    pub capture: CaptureConfig,
    pub storage: StorageConfig,
    pub thermal: ThermalConfig,
    pub server: ServerConfig,
}

/// How the HTTP server holds connections, so that no guest can take the booth offline by
/// opening connections and leaving them idle. Loopback peers (the booth's own screen) have a
/// budget of their own that guests never use.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Seconds a client has to send a request's headers; also how long a kept-alive connection
    /// waits for its next request.
    pub header_read_timeout_s: u64,
    /// A guest connection on which no byte moved either way for this long is closed (a stalled
    /// download, a phone that left the Wi-Fi).
    pub idle_timeout_s: u64,
    /// TCP keepalive: the first probe after this many idle seconds, then one every 10 s; after
    /// 3 unanswered probes, or data unacknowledged for as long, the connection is dropped.
    pub tcp_keepalive_s: u64,
    /// Open connections at most from one guest address (one IPv6 /64); a further one is
    /// closed at once.
    pub connections_per_guest: usize,
    /// Open guest connections at most, every address together. Lowered at start-up to fit
    /// the process's open-file limit (each may hold a file it serves).
    pub guest_connections: usize,
    /// Connections kept for loopback peers (the kiosk browser and local tools).
    pub kiosk_connections: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            header_read_timeout_s: 10,
            idle_timeout_s: 60,
            tcp_keepalive_s: 30,
            connections_per_guest: 16,
            guest_connections: 1024,
            kiosk_connections: 64,
        }
    }
}

/// Where health figures come from, and how renders slow down when the device runs hot.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ThermalConfig {
    /// Ask NVML (libnvidia-ml, discrete NVIDIA GPUs) first; false: sysfs only.
    pub nvml: bool,
    /// Root under which `sys/class/thermal`, the INA3221 rails and the GPU load are read.
    pub sysfs_root: PathBuf,
    /// Hottest reading (°C) from which renders are made smaller.
    pub soft_limit_c: f64,
    /// Hottest reading (°C) from which new renders wait in the queue.
    pub hard_limit_c: f64,
    /// A limit is left only once the reading is this many degrees under it.
    pub hysteresis_c: f64,
    /// Width and height factor of renders above the soft limit (never under 256 px).
    pub soft_scale: f64,
    /// Milliseconds between readings.
    pub poll_ms: u64,
}

impl Default for ThermalConfig {
    fn default() -> Self {
        ThermalConfig {
            nvml: true,
            sysfs_root: PathBuf::from("/"),
            soft_limit_c: 80.0,
            hard_limit_c: 90.0,
            hysteresis_c: 5.0,
            soft_scale: 0.75,
            poll_ms: 2000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// New sessions are refused (with a message for the operator) while the data disk has less
    /// free space than this, so a full disk never breaks a render half-way.
    pub min_free_mb: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig { min_free_mb: 1024 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RenderConfig {
    pub seconds: f32,
    pub fps: u32,
    pub width: u32,
    pub height: u32,
    pub intensity: f32,
    /// Clips waiting to render at most; a further couple is asked to wait.
    pub queue: usize,
    pub encoder: kissbooth_media::EncoderChoice,
    /// `morph` (landmark mesh warp, runs anywhere) or `diffusion` (the model pack in `pack`;
    /// when it is unusable the daemon says why once at start-up and renders with morph).
    pub generator: String,
    /// The diffusion model pack folder.
    pub pack: PathBuf,
    /// Memory the diffusion pack may use, in MiB; 0: MemAvailable (or a discrete GPU's free
    /// memory) at start-up.
    pub memory_budget_mb: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrivacyConfig {
    /// Hours a download link works (never longer than the video is kept).
    pub token_ttl_hours: f64,
    /// Hours after which a session's capture and video are deleted.
    pub retention_hours: f64,
    /// Seconds between retention sweeps.
    pub purge_interval_s: u64,
    /// Keep a session's source capture until retention deletes it, instead of deleting it as
    /// soon as its video is done. The admin page can change this while the booth runs.
    pub keep_captures: bool,
}

/// The booth's own Wi-Fi, shown as a second QR code for guests not on the venue network.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WifiConfig {
    pub ssid: String,
    pub password: String,
    /// `WPA`, `WEP` or `nopass`.
    pub security: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CaptureConfig {
    /// Frames taken per capture; the sharpest one passing the gate is kept.
    pub burst: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            camera: String::new(),
            data: PathBuf::from("data"),
            public_url: String::new(),
            render: RenderConfig::default(),
            privacy: PrivacyConfig::default(),
            wifi: WifiConfig::default(),
            capture: CaptureConfig::default(),
            storage: StorageConfig::default(),
            thermal: ThermalConfig::default(),
            server: ServerConfig::default(),
        }
    }
}

impl Default for RenderConfig {
    fn default() -> Self {
        RenderConfig {
            seconds: 5.0,
            fps: 24,
            width: 720,
            height: 720,
            intensity: 0.8,
            queue: 4,
            encoder: kissbooth_media::EncoderChoice::Auto,
            generator: "morph".into(),
            pack: PathBuf::new(),
            memory_budget_mb: 0,
        }
    }
}

impl Default for PrivacyConfig {
    fn default() -> Self {
        PrivacyConfig {
            token_ttl_hours: 24.0,
            retention_hours: 24.0,
            purge_interval_s: 60,
            keep_captures: false,
        }
    }
}

impl Default for CaptureConfig {
    fn default() -> Self {
        CaptureConfig { burst: 5 }
    }
}

/// Everything that shapes a clip.
#[derive(Debug, Clone)]
pub struct ClipSettings {
    pub timeline: TimelineConfig,
    pub morph: MorphConfig,
    pub encoder: EncoderConfig,
    /// Creation time written into the MP4 (the capture's time), so a render is reproducible.
    pub created_unix_s: Option<i64>,
    /// The branding logo, on every frame and the poster (under the AI-generated mark).
    pub overlay: Option<std::sync::Arc<kissbooth_media::Overlay>>,
    /// The event's name above the couple, in clips with room for it (see `title.rs`).
    pub title: Option<std::sync::Arc<kissbooth_media::Overlay>>,
}

impl ClipSettings {
    /// Checks every part as the renderer and the encoder will, so that a setting they would
    /// refuse is reported when the configuration is read rather than when a couple waits.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.timeline.validate().context("render timeline")?;
        self.morph.validate().context("render size")?;
        self.encoder.validate().context("encoder")?;
        VideoSpec::new(self.morph.width, self.morph.height, self.timeline.fps)
            .validate()
            .context("video")?;
        Ok(())
    }
}

impl RenderConfig {
    /// The settings a clip is rendered with.
    pub(crate) fn clip_settings(&self, seed: u64, created_unix_s: Option<i64>) -> ClipSettings {
        ClipSettings {
            timeline: TimelineConfig {
                seconds: self.seconds,
                fps: self.fps,
                intensity: self.intensity,
                seed,
            },
            morph: MorphConfig {
                width: self.width,
                height: self.height,
                ..MorphConfig::default()
            },
            encoder: EncoderConfig {
                encoder: self.encoder,
                ..EncoderConfig::default()
            },
            created_unix_s,
            overlay: None,
            title: None,
        }
    }
}

impl Config {
    /// Reads the file (when given), then applies `KISSBOOTH_*` environment overrides.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Config> {
        let mut cfg = match file {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("cannot read {}", p.display()))?;
                toml::from_str(&text).with_context(|| format!("{}", p.display()))?
            }
            None => Config::default(),
        };
        if let Ok(v) = std::env::var("KISSBOOTH_LISTEN") {
            cfg.listen = v
                .parse()
                .with_context(|| format!("KISSBOOTH_LISTEN={v:?}"))?;
        }
        if let Ok(v) = std::env::var("KISSBOOTH_CAMERA") {
            cfg.camera = v;
        }
        if let Ok(v) = std::env::var("KISSBOOTH_PUBLIC_URL") {
            cfg.public_url = v;
        }
        Ok(cfg)
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        if !(3.0..=8.0).contains(&self.render.seconds) {
            bail!("render.seconds must be 3 to 8, not {}", self.render.seconds);
        }
        // fps, size and intensity as the renderer and the encoder check them, so a booth never
        // starts with settings that would fail every couple's render.
        self.render
            .clip_settings(0, None)
            .validate()
            .context("[render]")?;
        if self.render.queue == 0 || self.render.queue > 64 {
            bail!("render.queue must be 1 to 64");
        }
        if !["morph", "diffusion"].contains(&self.render.generator.as_str()) {
            bail!(
                "render.generator must be \"morph\" or \"diffusion\", not {:?}",
                self.render.generator
            );
        }
        if self.capture.burst == 0 || self.capture.burst > 30 {
            bail!("capture.burst must be 1 to 30");
        }
        if !(0.0002..=24.0 * 30.0).contains(&self.privacy.token_ttl_hours) {
            bail!("privacy.token_ttl_hours must be between 0.0002 and 720");
        }
        if !(0.0002..=24.0 * 30.0).contains(&self.privacy.retention_hours) {
            bail!("privacy.retention_hours must be between 0.0002 and 720");
        }
        if !(1..=3600).contains(&self.privacy.purge_interval_s) {
            bail!("privacy.purge_interval_s must be 1 to 3600");
        }
        let t = &self.thermal;
        if !(t.soft_limit_c < t.hard_limit_c && (20.0..=150.0).contains(&t.hard_limit_c)) {
            bail!("thermal.soft_limit_c must be under thermal.hard_limit_c (20 to 150)");
        }
        if !(0.0..=30.0).contains(&t.hysteresis_c) {
            bail!("thermal.hysteresis_c must be 0 to 30");
        }
        if !(0.25..=1.0).contains(&t.soft_scale) {
            bail!("thermal.soft_scale must be 0.25 to 1");
        }
        if !(100..=60_000).contains(&t.poll_ms) {
            bail!("thermal.poll_ms must be 100 to 60000");
        }
        let sv = &self.server;
        for (name, v) in [
            ("header_read_timeout_s", sv.header_read_timeout_s),
            ("idle_timeout_s", sv.idle_timeout_s),
            ("tcp_keepalive_s", sv.tcp_keepalive_s),
        ] {
            if !(1..=3600).contains(&v) {
                bail!("server.{name} must be 1 to 3600");
            }
        }
        if !(1..=100_000).contains(&sv.guest_connections) {
            bail!("server.guest_connections must be 1 to 100000");
        }
        if !(1..=sv.guest_connections).contains(&sv.connections_per_guest) {
            bail!("server.connections_per_guest must be 1 to server.guest_connections");
        }
        if !(4..=10_000).contains(&sv.kiosk_connections) {
            bail!("server.kiosk_connections must be 4 to 10000");
        }
        let url = &self.public_url;
        if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
            bail!("public_url must start with http:// or https://");
        }
        if !self.wifi.ssid.is_empty()
            && !["WPA", "WEP", "nopass", ""].contains(&self.wifi.security.as_str())
        {
            bail!("wifi.security must be WPA, WEP or nopass");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_toml_snippet_keeps_the_other_defaults() {
        let c: Config =
            toml::from_str("listen = \"127.0.0.1:9000\"\n[render]\nseconds = 4.0\n").unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.render.seconds, 4.0);
        assert_eq!(c.render.fps, 24);
        assert_eq!(c.privacy.token_ttl_hours, 24.0);
        c.validate().unwrap();
    }

    #[test]
    fn render_settings_the_encoder_refuses_are_refused_at_load() {
        for (snippet, what) in [
            ("width = 511", "even"),
            ("fps = 0", "fps"),
            ("intensity = nan", "intensity"),
        ] {
            let c: Config = toml::from_str(&format!("[render]\n{snippet}\n")).unwrap();
            let err = format!("{:#}", c.validate().unwrap_err());
            assert!(err.contains("[render]"), "{snippet}: {err}");
            assert!(err.contains(what), "{snippet}: {err}");
        }
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        assert!(toml::from_str::<Config>("lisen = \"x\"").is_err());
        let c: Config = toml::from_str("[render]\ngenerator = \"gan\"\n").unwrap();
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("render.generator")
        );
        let c: Config =
            toml::from_str("[render]\ngenerator = \"diffusion\"\npack = \"/p\"\n").unwrap();
        c.validate().unwrap();
        let c: Config = toml::from_str("[render]\nseconds = 12.0\n").unwrap();
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("render.seconds")
        );
    }
}
