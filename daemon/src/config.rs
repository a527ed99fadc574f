//! The daemon's configuration: a TOML file, then environment overrides, then command-line flags.
//! Every field has a default that runs on a fresh machine.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::Context;
use kissbooth_capture::{CameraSpec, SpecError};
use kissbooth_engines::generate::{MorphConfig, TimelineConfig};
use kissbooth_media::{EncoderConfig, VideoSpec};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What is wrong with a configuration, said with the key to change.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value outside its range: `{key} must be {range}`.
    #[error("{key} must be {range}")]
    Range {
        key: &'static str,
        range: &'static str,
    },
    #[error("render.seconds must be 3 to 8, not {0}")]
    Seconds(f32),
    /// Render settings the renderer or the encoder would refuse.
    #[error("[render]: {0:#}")]
    Render(anyhow::Error),
    #[error("public_url must start with http:// or https://")]
    PublicUrl,
    #[error("camera {input:?}: {source}")]
    Camera { input: String, source: SpecError },
    #[error("wifi.security must be WPA, WEP or nopass, not {0:?}")]
    WifiSecurity(String),
}

fn range(key: &'static str, range: &'static str) -> ConfigError {
    ConfigError::Range { key, range }
}

/// The camera the booth opens: the one its spec names, or (`""`) the first V4L2 camera, else
/// the stills in `DATA/demo`, else the test pattern. Written in the file as the spec's string
/// and parsed when the file is read, so a mistyped camera stops the booth before it starts.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum CameraChoice {
    #[default]
    Auto,
    Spec(CameraSpec),
}

impl FromStr for CameraChoice {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim().is_empty() {
            return Ok(CameraChoice::Auto);
        }
        s.parse()
            .map(CameraChoice::Spec)
            .map_err(|source| ConfigError::Camera {
                input: s.to_string(),
                source,
            })
    }
}

impl fmt::Display for CameraChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CameraChoice::Auto => Ok(()),
            CameraChoice::Spec(spec) => write!(f, "{spec}"),
        }
    }
}

/// Reads and writes a typed value as its string form.
macro_rules! serde_as_string {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_string())
            }
        }

        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

serde_as_string!(CameraChoice);
serde_as_string!(WifiSecurity);

/// How clips are made: `morph` (the landmark mesh warp, runs anywhere) or `diffusion` (a model
/// pack).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum GeneratorKind {
    #[default]
    Morph,
    Diffusion,
}

impl GeneratorKind {
    pub fn name(self) -> &'static str {
        match self {
            GeneratorKind::Morph => "morph",
            GeneratorKind::Diffusion => "diffusion",
        }
    }
}

impl fmt::Display for GeneratorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The generator with what it needs, from `[render]`.
#[derive(Debug, Clone, PartialEq)]
pub enum GeneratorConfig {
    Morph,
    Diffusion(DiffusionConfig),
}

/// A diffusion model pack and the memory it may use.
#[derive(Debug, Clone, PartialEq)]
pub struct DiffusionConfig {
    /// The pack's folder; empty when the file names none (the booth then says so once and
    /// renders with morph).
    pub pack: PathBuf,
    /// MiB the pack may use; `None`: what is free at start-up.
    pub memory_budget_mib: Option<u64>,
}

/// The security of the booth's own Wi-Fi, as the `WIFI:` QR code says it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum WifiSecurity {
    /// Not said (`""`): the QR code says WPA.
    #[default]
    Unset,
    Wpa,
    Wep,
    /// An open network (`nopass`).
    Open,
}

impl WifiSecurity {
    pub const CHOICES: [WifiSecurity; 3] =
        [WifiSecurity::Wpa, WifiSecurity::Wep, WifiSecurity::Open];

    /// How the settings page offers it.
    pub fn label(self) -> &'static str {
        match self {
            WifiSecurity::Unset => "Not set",
            WifiSecurity::Wpa => "WPA/WPA2",
            WifiSecurity::Wep => "WEP",
            WifiSecurity::Open => "None (open)",
        }
    }

    /// The name in the file and in the `WIFI:` URI.
    pub fn name(self) -> &'static str {
        match self {
            WifiSecurity::Unset => "",
            WifiSecurity::Wpa => "WPA",
            WifiSecurity::Wep => "WEP",
            WifiSecurity::Open => "nopass",
        }
    }
}

impl FromStr for WifiSecurity {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [WifiSecurity::Unset]
            .into_iter()
            .chain(WifiSecurity::CHOICES)
            .find(|w| w.name() == s)
            .ok_or_else(|| ConfigError::WifiSecurity(s.to_string()))
    }
}

impl fmt::Display for WifiSecurity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl PartialEq<&str> for WifiSecurity {
    fn eq(&self, other: &&str) -> bool {
        self.name() == *other
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP server listens on. The kiosk API answers loopback peers only; guests on
    /// the network reach only the `/d/{token}` pages.
    pub listen: SocketAddr,
    /// Camera: `stills:FOLDER`, `v4l2:/dev/videoN`, `gst:PIPELINE` or `test`. Empty: the first
    /// V4L2 camera, else the stills in `DATA/demo`, else the test pattern.
    pub camera: CameraChoice,
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
    pub generator: GeneratorKind,
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
    pub security: WifiSecurity,
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
            camera: CameraChoice::Auto,
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
            generator: GeneratorKind::Morph,
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
    /// The generator and what it needs.
    pub fn generator_config(&self) -> GeneratorConfig {
        match self.generator {
            GeneratorKind::Morph => GeneratorConfig::Morph,
            GeneratorKind::Diffusion => GeneratorConfig::Diffusion(DiffusionConfig {
                pack: self.pack.clone(),
                memory_budget_mib: (self.memory_budget_mb > 0).then_some(self.memory_budget_mb),
            }),
        }
    }

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

/// A setting's range check: whether it holds, the setting's key, and the range it must be in.
type RangeCheck = (bool, &'static str, &'static str);

impl RenderConfig {
    /// The range checks of the render queue (the rest is checked as the renderer checks it).
    fn checks(&self) -> [RangeCheck; 1] {
        [((1..=64).contains(&self.queue), "render.queue", "1 to 64")]
    }
}

impl CaptureConfig {
    fn checks(&self) -> [RangeCheck; 1] {
        [((1..=30).contains(&self.burst), "capture.burst", "1 to 30")]
    }
}

impl PrivacyConfig {
    fn checks(&self) -> [RangeCheck; 3] {
        [
            (
                (0.0002..=24.0 * 30.0).contains(&self.token_ttl_hours),
                "privacy.token_ttl_hours",
                "between 0.0002 and 720",
            ),
            (
                (0.0002..=24.0 * 30.0).contains(&self.retention_hours),
                "privacy.retention_hours",
                "between 0.0002 and 720",
            ),
            (
                (1..=3600).contains(&self.purge_interval_s),
                "privacy.purge_interval_s",
                "1 to 3600",
            ),
        ]
    }
}

impl ThermalConfig {
    fn checks(&self) -> [RangeCheck; 4] {
        [
            (
                self.soft_limit_c < self.hard_limit_c
                    && (20.0..=150.0).contains(&self.hard_limit_c),
                "thermal.soft_limit_c",
                "under thermal.hard_limit_c (20 to 150)",
            ),
            (
                (0.0..=30.0).contains(&self.hysteresis_c),
                "thermal.hysteresis_c",
                "0 to 30",
            ),
            (
                (0.25..=1.0).contains(&self.soft_scale),
                "thermal.soft_scale",
                "0.25 to 1",
            ),
            (
                (100..=60_000).contains(&self.poll_ms),
                "thermal.poll_ms",
                "100 to 60000",
            ),
        ]
    }
}

impl ServerConfig {
    fn checks(&self) -> [RangeCheck; 6] {
        let timeout = |v: u64, key| ((1..=3600).contains(&v), key, "1 to 3600");
        [
            (
                (1..=100_000).contains(&self.guest_connections),
                "server.guest_connections",
                "1 to 100000",
            ),
            (
                (4..=10_000).contains(&self.kiosk_connections),
                "server.kiosk_connections",
                "4 to 10000",
            ),
            timeout(self.header_read_timeout_s, "server.header_read_timeout_s"),
            timeout(self.idle_timeout_s, "server.idle_timeout_s"),
            timeout(self.tcp_keepalive_s, "server.tcp_keepalive_s"),
            (
                (1..=self.guest_connections).contains(&self.connections_per_guest),
                "server.connections_per_guest",
                "1 to server.guest_connections",
            ),
        ]
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
            cfg.camera = v.parse().context("KISSBOOTH_CAMERA")?;
        }
        if let Ok(v) = std::env::var("KISSBOOTH_PUBLIC_URL") {
            cfg.public_url = v;
        }
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(3.0..=8.0).contains(&self.render.seconds) {
            return Err(ConfigError::Seconds(self.render.seconds));
        }
        // fps, size and intensity as the renderer and the encoder check them, so a booth never
        // starts with settings that would fail every couple's render.
        self.render
            .clip_settings(0, None)
            .validate()
            .map_err(ConfigError::Render)?;
        let mut checks = self
            .render
            .checks()
            .into_iter()
            .chain(self.capture.checks())
            .chain(self.privacy.checks())
            .chain(self.thermal.checks())
            .chain(self.server.checks());
        if let Some((_, key, r)) = checks.find(|(ok, _, _)| !ok) {
            return Err(range(key, r));
        }
        let url = &self.public_url;
        if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
            return Err(ConfigError::PublicUrl);
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
        // Named choices are refused when the file is read, with the key and what it may be.
        let err = toml::from_str::<Config>("[render]\ngenerator = \"gan\"\n").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("generator") && msg.contains("diffusion"),
            "{msg}"
        );
        let err = toml::from_str::<Config>("camera = \"webcam:0\"\n").unwrap_err();
        assert!(err.to_string().contains("webcam:0"), "{err}");
        let err =
            toml::from_str::<Config>("[wifi]\nssid = \"b\"\nsecurity = \"WPA3\"\n").unwrap_err();
        assert!(err.to_string().contains("wifi.security"), "{err}");
        let c: Config =
            toml::from_str("[render]\ngenerator = \"diffusion\"\npack = \"/p\"\n").unwrap();
        c.validate().unwrap();
        assert_eq!(
            c.render.generator_config(),
            GeneratorConfig::Diffusion(DiffusionConfig {
                pack: "/p".into(),
                memory_budget_mib: None
            })
        );
        let c: Config =
            toml::from_str("camera = \"v4l2:2\"\n[wifi]\nsecurity = \"nopass\"\n").unwrap();
        assert_eq!(
            c.camera,
            CameraChoice::Spec(CameraSpec::v4l2("/dev/video2"))
        );
        assert_eq!(c.wifi.security, WifiSecurity::Open);
        // Written back as the strings they were read from.
        let back: Config = toml::from_str(&toml::to_string(&c).unwrap()).unwrap();
        assert_eq!(
            (back.camera, back.wifi.security),
            (c.camera, c.wifi.security)
        );
        assert!(matches!(
            toml::from_str::<Config>("[render]\nqueue = 0\n")
                .unwrap()
                .validate(),
            Err(ConfigError::Range {
                key: "render.queue",
                ..
            })
        ));
        let c: Config = toml::from_str("[render]\nseconds = 12.0\n").unwrap();
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("render.seconds")
        );
    }
}
