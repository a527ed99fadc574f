//! Entry points for the fuzz targets in `fuzz/` and for their replay test
//! (`tests/fuzz_replay.rs`): each takes arbitrary bytes, runs one parser that takes outside input
//! through the same code the booth runs, and panics only when that code misbehaves (a panic
//! inside it, or a result that breaks a stated property). Bad input must give a clear error.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use kissbooth_capture::CameraSpec;
use tower::ServiceExt;

use crate::booth::link::Key;
use crate::booth::{Booth, live_session};
use crate::config::Config;
use crate::store::{Store, now_s, token_hash};

/// The configuration file: TOML text → [`Config`] → [`Config::validate`], then the camera
/// spec it names. A configuration that validates must survive a round trip through TOML and
/// must give render settings that the renderer and encoder accept.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    camera_spec(text);
    let Ok(cfg) = toml::from_str::<Config>(text) else {
        return;
    };
    if let crate::config::CameraChoice::Spec(spec) = &cfg.camera {
        camera_spec(&spec.to_string());
    }
    if cfg.validate().is_err() {
        return;
    }
    let settings = cfg.render.clip_settings(0, None);
    if let Err(e) = settings.validate() {
        panic!("a configuration that validates gives render settings that do not: {e:#}");
    }
    let again = toml::to_string(&cfg).expect("a parsed configuration serialises");
    let back: Config = toml::from_str(&again)
        .unwrap_or_else(|e| panic!("a validated configuration does not parse back: {e}"));
    if let Err(e) = back.validate() {
        panic!("a validated configuration no longer validates after a round trip: {e:#}");
    }
}

/// A camera spec (`--camera`, `KISSBOOTH_CAMERA`, `camera =`): parse, validate, and its string
/// form must parse back to the same spec.
pub fn camera_spec(text: &str) {
    let Ok(spec) = text.parse::<CameraSpec>() else {
        return;
    };
    let _ = spec.validate();
    let shown = spec.to_string();
    let back: CameraSpec = shown
        .parse()
        .unwrap_or_else(|e| panic!("{text:?} parsed, but its form {shown:?} does not: {e}"));
    assert_eq!(back.to_string(), shown, "{text:?} does not round-trip");
}

/// A real SQLite store holding one live download, one expired and one still rendering, for
/// the token target.
pub struct TokenStore {
    _dir: tempfile::TempDir,
    store: Store,
    /// The live session's token.
    pub live: String,
    /// Tokens that exist but must not open anything (expired, not finished).
    pub dead: Vec<String>,
}

impl TokenStore {
    pub fn new() -> anyhow::Result<TokenStore> {
        let dir = tempfile::tempdir()?;
        let store = Store::open(dir.path())?;
        let mut dead = Vec::new();
        let mut live = String::new();
        use crate::booth::session::SessionState;
        for (i, (state, expires)) in [
            (SessionState::Done, 3600),
            (SessionState::Done, -10),
            (SessionState::Rendering, 3600),
        ]
        .into_iter()
        .enumerate()
        {
            let id = format!("{:016x}", 0xf00d + i);
            let token = format!("{:032x}", 0x5eed_0000_u128 * (i as u128 + 7) + 0xabc);
            store.create_session(&id)?;
            store.force_state(
                &id,
                state,
                &[
                    ("token_hash", token_hash(&token).into()),
                    ("token_expires_at", (now_s() + expires).into()),
                ],
            )?;
            if i == 0 {
                live = token;
            } else {
                dead.push(token);
            }
        }
        Ok(TokenStore {
            _dir: dir,
            store,
            live,
            dead,
        })
    }

    /// The `{token}` of `/d/{token}` (as axum hands it over: UTF-8, percent-decoded) looked up
    /// as the download pages do. Only the live token may open a session.
    pub fn check(&self, data: &[u8]) {
        let Ok(token) = std::str::from_utf8(data) else {
            return;
        };
        let found = live_session(&self.store, token);
        if token == self.live {
            assert!(
                found.is_some(),
                "the live token no longer opens its session"
            );
        } else {
            assert!(
                found.is_none(),
                "{token:?} opened a session that is not its own"
            );
        }
        if found.is_some() {
            assert!(matches!(Key::parse(token), Some(Key::Token(_))));
        }
    }
}

/// A real booth (real store, test-pattern camera, face models loaded) behind the real router,
/// with one finished download whose video is a real file of known bytes.
pub struct RangeServer {
    _dir: tempfile::TempDir,
    _booth: Arc<Booth>,
    rt: tokio::runtime::Runtime,
    app: axum::Router,
    token: String,
    video: Vec<u8>,
}

/// Bytes of the video file the range target serves.
pub const RANGE_FILE_LEN: usize = 10_007;

impl RangeServer {
    /// Starts the booth with the models in `models` and the ONNX Runtime found as the daemon
    /// finds it (`ORT_DYLIB_PATH`, then the usual places).
    pub fn start(models: PathBuf) -> anyhow::Result<RangeServer> {
        let dir = tempfile::tempdir()?;
        let cfg = Config {
            data: dir.path().join("data"),
            camera: "test:64x48@1".parse()?,
            public_url: "http://127.0.0.1:8080".into(),
            ..Config::default()
        };
        let runtime = kissbooth_engines::runtime::Runtime::init(&Default::default())
            .context("cannot start ONNX Runtime")?;
        let booth = Booth::start(cfg, models, runtime)?;
        let id = "00000000000000aa";
        booth.store.create_session(id)?;
        let folder = booth.store.session_dir(id);
        std::fs::create_dir_all(&folder)?;
        let video: Vec<u8> = (0..RANGE_FILE_LEN)
            .map(|i| (i * 7 + i / 251) as u8)
            .collect();
        let path = folder.join("video.mp4");
        std::fs::write(&path, &video)?;
        let token = "0123456789abcdef0123456789abcdef".to_string();
        booth.store.force_state(
            id,
            crate::booth::session::SessionState::Done,
            &[
                ("video_path", path.display().to_string().into()),
                ("token_hash", token_hash(&token).into()),
                ("token_expires_at", (now_s() + 24 * 3600).into()),
            ],
        )?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let app = crate::http::router(booth.clone());
        Ok(RangeServer {
            _dir: dir,
            _booth: booth,
            rt,
            app,
            token,
            video,
        })
    }

    /// `data` is the `Range` header of a guest's `GET /d/{token}/video.mp4` (a first byte of
    /// `H` sends `HEAD` instead). The answer is 200 with the whole file, 206 with exactly the
    /// bytes its `Content-Range` names, or 416.
    pub fn check(&self, data: &[u8]) {
        let (method, range) = match data.split_first() {
            Some((b'H', rest)) => ("HEAD", rest),
            _ => ("GET", data),
        };
        let mut req = Request::builder()
            .method(method)
            .uri(format!("/d/{}/video.mp4", self.token));
        if let Ok(v) = header::HeaderValue::from_bytes(range) {
            req = req.header(header::RANGE, v);
        }
        let req = req.body(Body::empty()).expect("request");
        let (status, headers, body) = self.rt.block_on(async {
            let res = self.app.clone().oneshot(req).await.expect("infallible");
            let (parts, body) = res.into_parts();
            let body = axum::body::to_bytes(body, 64 << 20)
                .await
                .expect("body reads");
            (parts.status, parts.headers, body)
        });
        let head = method == "HEAD";
        let len = self.video.len();
        match status {
            StatusCode::OK => {
                if !head {
                    assert_eq!(body.len(), len, "200 with a partial body for {range:?}");
                    assert!(body[..] == self.video[..], "200 body differs from the file");
                }
            }
            StatusCode::PARTIAL_CONTENT => {
                let cr = headers
                    .get(header::CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_else(|| panic!("206 without Content-Range for {range:?}"));
                let (start, end, total) = parse_content_range(cr)
                    .unwrap_or_else(|| panic!("bad Content-Range {cr:?} for {range:?}"));
                assert_eq!(total, len as u64, "Content-Range total {cr:?}");
                assert!(
                    start <= end && end < total,
                    "Content-Range {cr:?} out of the file"
                );
                if !head {
                    assert_eq!(
                        body.len() as u64,
                        end - start + 1,
                        "206 body length does not match {cr:?} for {range:?}"
                    );
                    assert!(
                        body[..] == self.video[start as usize..=end as usize],
                        "206 body is not the bytes {cr:?} names"
                    );
                }
            }
            StatusCode::RANGE_NOT_SATISFIABLE => {}
            other => panic!("status {other} for Range {range:?}"),
        }
    }
}

/// `bytes START-END/TOTAL` → (START, END, TOTAL).
fn parse_content_range(v: &str) -> Option<(u64, u64, u64)> {
    let rest = v.strip_prefix("bytes ")?;
    let (span, total) = rest.split_once('/')?;
    let (a, b) = span.split_once('-')?;
    Some((a.parse().ok()?, b.parse().ok()?, total.parse().ok()?))
}

/// An uploaded branding image: the last 9 bytes choose the placement (corner, margin, largest
/// width fraction), the rest is the PNG. Any bytes give an overlay or an error; an overlay is
/// then drawn onto frames of a few sizes.
pub fn overlay_png(data: &[u8]) {
    let (png, tail) = data.split_at(data.len().saturating_sub(9));
    let mut t = [0u8; 9];
    t[..tail.len()].copy_from_slice(tail);
    let margin = u32::from_le_bytes([t[1], t[2], t[3], t[4]]) % 4096;
    let max_width_frac = f32::from_le_bytes([t[5], t[6], t[7], t[8]]);
    use kissbooth_media::Placement;
    let placement = match t[0] % 5 {
        0 => Placement::Full,
        1 => Placement::TopLeft {
            margin,
            max_width_frac,
        },
        2 => Placement::TopRight {
            margin,
            max_width_frac,
        },
        3 => Placement::BottomLeft {
            margin,
            max_width_frac,
        },
        _ => Placement::BottomRight {
            margin,
            max_width_frac,
        },
    };
    let Ok(overlay) =
        kissbooth_media::Overlay::from_png_bytes(png, Path::new("logo.png"), placement)
    else {
        return;
    };
    for (w, h) in [(64, 48), (1, 1), (3, 200), (64, 48)] {
        let mut frame = image::RgbImage::new(w, h);
        overlay.apply(&mut frame);
    }
}

/// A picture given to `kissbooth faces` / `render` or read as a camera still: decoded with the
/// face engine's limits. An image that decodes respects them.
pub fn face_image(data: &[u8]) {
    use kissbooth_engines::face::image_io::{MAX_PIXELS, MAX_SIDE, decode_rgb};
    if let Ok(img) = decode_rgb(data, Path::new("upload")) {
        let (w, h) = img.dimensions();
        assert!(w > 0 && h > 0 && w <= MAX_SIDE && h <= MAX_SIDE);
        assert!(u64::from(w) * u64::from(h) <= MAX_PIXELS);
    }
}

/// A camera's MJPEG bytes: split into frames as a recorded stream is, and each frame (and the
/// whole input) decoded as a camera frame is.
pub fn camera_jpeg(data: &[u8]) {
    let frames = kissbooth_capture::split_jpeg_stream(data);
    let mut at = 0;
    for r in &frames {
        assert!(
            at <= r.start && r.start < r.end && r.end <= data.len(),
            "{r:?}"
        );
        at = r.end;
    }
    for r in frames.iter().take(4) {
        let _ = kissbooth_capture::decode_jpeg(&data[r.clone()]);
    }
    if frames.len() != 1 || frames[0] != (0..data.len()) {
        let _ = kissbooth_capture::decode_jpeg(data);
    }
}

/// The fuzz targets, by name (the folders of `fuzz/regressions/` and `fuzz/corpus/`).
pub const TARGETS: [&str; 6] = [
    "config",
    "token",
    "range",
    "overlay_png",
    "face_image",
    "camera_jpeg",
];

/// The repository's root (where `fuzz/` is).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Seed inputs for `target`, made from the repository's own files and from images drawn here
/// (a test pattern, a gradient logo): never a photograph.
pub fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    match target {
        "config" => config_seeds(),
        "token" => token_seeds(),
        "range" => [
            ("first100", "bytes=0-99"),
            ("suffix", "bytes=-500"),
            ("open", "bytes=9000-"),
            ("last", "bytes=10006-10006"),
            ("past", "bytes=10007-"),
            ("multi", "bytes=0-0,5-9"),
            ("head", "Hbytes=0-1"),
            ("none", ""),
        ]
        .into_iter()
        .map(|(name, r)| text_seed(name, r))
        .collect(),
        "overlay_png" => overlay_png_seeds(),
        "face_image" | "camera_jpeg" => image_seeds(target == "face_image"),
        _ => Vec::new(),
    }
}

/// A seed of text.
fn text_seed(name: &str, s: &str) -> (String, Vec<u8>) {
    (name.to_string(), s.as_bytes().to_vec())
}

/// The shipped configuration files, the default one, a snippet of every section, and camera
/// specs of each kind.
fn config_seeds() -> Vec<(String, Vec<u8>)> {
    let root = repo_root();
    let mut out = Vec::new();
    for file in ["image-build/debian/kissbooth.toml", "models/face-pack.toml"] {
        if let Ok(s) = std::fs::read_to_string(root.join(file)) {
            out.push(text_seed(&file.replace('/', "_"), &s));
        }
    }
    if let Ok(s) = toml::to_string(&Config::default()) {
        out.push(text_seed("default.toml", &s));
    }
    out.push(text_seed(
        "snippet.toml",
        "listen = \"127.0.0.1:9000\"\ncamera = \"test:640x480@15\"\n[render]\nseconds = 4.0\nfps = 24\nwidth = 512\nheight = 512\n[privacy]\ntoken_ttl_hours = 2.5\n[wifi]\nssid = \"booth\"\npassword = \"kiss\"\nsecurity = \"WPA\"\n",
    ));
    for spec in [
        "test",
        "test:640x480@15",
        "stills:data/demo",
        "v4l2:0",
        "v4l2:/dev/video2",
        "gst:videotestsrc ! videoconvert",
    ] {
        out.push(text_seed(
            &format!("camera_{}", spec.replace([':', '/', ' ', '!'], "_")),
            spec,
        ));
    }
    out
}

/// A live token of a store in any case, dead ones, a cut one, and two attacks.
fn token_seeds() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    if let Ok(store) = TokenStore::new() {
        out.push(text_seed("live", &store.live));
        out.push(text_seed("live_upper", &store.live.to_ascii_uppercase()));
        for (i, t) in store.dead.iter().enumerate() {
            out.push(text_seed(&format!("dead{i}"), t));
        }
        out.push(text_seed("short", &store.live[..31]));
    }
    out.push(text_seed("percent", "%2e%2e%2fetc%2fpasswd"));
    out.push(text_seed("sql", "' OR 1=1 --"));
    out
}

/// A gradient logo with a few trailing bytes each, and one cut in half.
fn overlay_png_seeds() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let logo = image::RgbaImage::from_fn(40, 20, |x, y| {
        image::Rgba([(x * 6) as u8, (y * 12) as u8, 200, ((x + y) * 4) as u8])
    });
    let mut png = encode_png(&image::DynamicImage::ImageRgba8(logo));
    for (i, tail) in [
        [0u8, 0, 0, 0, 0, 0, 0, 0, 0],
        [4, 16, 0, 0, 0, 0, 0, 0x80, 0x3e],
        [1, 0, 0, 0, 0, 0, 0, 0x80, 0x3f],
    ]
    .iter()
    .enumerate()
    {
        let mut d = png.clone();
        d.extend_from_slice(tail);
        out.push((format!("logo{i}"), d));
    }
    png.truncate(png.len() / 2);
    out.push(("truncated".into(), png));
    out
}

/// A test pattern as JPEG; for a face image also as PNG and a 16-bit grey PNG, for a camera's
/// stream two JPEGs in a multipart stream.
fn image_seeds(face_image: bool) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let frame = kissbooth_capture::test_pattern(64, 48, 3);
    let jpeg = kissbooth_capture::jpeg_encode(&frame, 80);
    out.push(("pattern.jpg".into(), jpeg.clone()));
    if face_image {
        out.push((
            "pattern.png".into(),
            encode_png(&image::DynamicImage::ImageRgb8(frame.clone())),
        ));
        let grey16 =
            image::DynamicImage::ImageLuma16(image::ImageBuffer::from_fn(16, 8, |x, y| {
                image::Luma([(x * 4000 + y * 100) as u16])
            }));
        out.push(("grey16.png".into(), encode_png(&grey16)));
    } else {
        let second =
            kissbooth_capture::jpeg_encode(&kissbooth_capture::test_pattern(32, 24, 9), 60);
        let mut stream = b"--frame\r\nContent-Type: image/jpeg\r\n\r\n".to_vec();
        stream.extend_from_slice(&jpeg);
        stream.extend_from_slice(b"\r\n--frame\r\nContent-Type: image/jpeg\r\n\r\n");
        stream.extend_from_slice(&second);
        out.push(("multipart".into(), stream));
    }
    out
}

fn encode_png(img: &image::DynamicImage) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .expect("PNG encodes in memory");
    out.into_inner()
}
