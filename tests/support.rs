//! Shared helpers for the end-to-end tests: the real `kissbooth` binary, the shared models and
//! fixtures.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

pub fn shared() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared")
}

pub fn models_dir() -> PathBuf {
    std::env::var_os("KISSBOOTH_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| shared().join("models"))
}

pub fn fixture(name: &str) -> PathBuf {
    shared().join("fixtures/faces").join(name)
}

/// True when the shared models are present; otherwise says loudly that `test` is skipped.
pub fn have_models(test: &str) -> bool {
    let ok = models_dir().join("pfld-68.onnx").is_file();
    if !ok {
        eprintln!(
            "SKIPPED {test}: shared models not found in {} (set KISSBOOTH_MODELS)",
            models_dir().display()
        );
    }
    ok
}

pub fn kissbooth() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kissbooth"));
    c.env("KISSBOOTH_MODELS", models_dir());
    c
}

pub fn stderr_lines(o: &Output) -> Vec<String> {
    String::from_utf8_lossy(&o.stderr)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The admin password the test daemons are given (unless a test starts one without).
pub const ADMIN_PASSWORD: &str = "test admin password";

/// How a test daemon starts.
#[derive(Clone, Copy)]
pub struct Start<'a> {
    /// Set with `kissbooth admin set-password` before the start; `None`: first boot, no
    /// password (the kiosk asks for one).
    pub admin_password: Option<&'a str>,
    /// Listen on every address (`0.0.0.0`) rather than loopback only.
    pub all_addresses: bool,
    /// `KISSBOOTH_LOG` for the daemon (default: its own, warnings).
    pub log: Option<&'a str>,
    /// The daemon's open-file limit (soft and hard), when not the test's own.
    pub open_files: Option<u64>,
    /// More environment for the daemon (e.g. `NOTIFY_SOCKET`).
    pub env: &'a [(&'a str, &'a str)],
}

impl Default for Start<'_> {
    fn default() -> Self {
        Start {
            admin_password: Some(ADMIN_PASSWORD),
            all_addresses: false,
            log: None,
            open_files: None,
            env: &[],
        }
    }
}

/// Sets the admin password of the booth whose data folder is `data`.
pub fn set_admin_password(data: &std::path::Path, password: &str) -> Output {
    use std::io::Write;
    let mut child = kissbooth()
        .arg("--data")
        .arg(data)
        .args(["admin", "set-password"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Logs in as the operator (the default [`ADMIN_PASSWORD`]); returns the `Cookie` header value.
pub fn admin_cookie(d: &Daemon) -> String {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let r = agent
        .post(&d.url("/admin/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .send(format!("password={}", ADMIN_PASSWORD.replace(' ', "+")))
        .unwrap();
    assert_eq!(r.status(), 303, "admin login");
    let c = r.headers()["set-cookie"].to_str().unwrap();
    c.split(';').next().unwrap().to_string()
}

/// The newest one-time set-up code the daemon wrote to its log (only while no admin password
/// is set), as the operator reads it in the journal: `1234-5678`.
pub fn setup_code_in_log(log: &str) -> Option<String> {
    let marker = "set-up code is ";
    let at = log.rfind(marker)? + marker.len();
    log.get(at..at + 9).map(str::to_string)
}

/// A new set-up code from `kissbooth admin setup-code` (the previous one stops working).
pub fn setup_code_from_cli(data: &std::path::Path) -> Output {
    kissbooth()
        .arg("--data")
        .arg(data)
        .args(["admin", "setup-code"])
        .output()
        .unwrap()
}

/// The real daemon, started on a free loopback port with a stills camera; stopped on drop.
pub struct Daemon {
    pub child: std::process::Child,
    pub base: String,
    pub data: tempfile::TempDir,
}

impl Daemon {
    /// Starts `kissbooth serve` with the given stills (copied into a fresh data folder's
    /// `stills/`) and extra arguments; waits for `/healthz`.
    pub fn start(stills: &[PathBuf], extra: &[&str]) -> Daemon {
        Self::start_with(stills, extra, Start::default())
    }

    /// [`Daemon::start`] with the given start options.
    pub fn start_with(stills: &[PathBuf], extra: &[&str], opts: Start<'_>) -> Daemon {
        let data = tempfile::tempdir().unwrap();
        let folder = data.path().join("stills");
        std::fs::create_dir_all(&folder).unwrap();
        for (i, s) in stills.iter().enumerate() {
            let ext = s.extension().and_then(|e| e.to_str()).unwrap_or("jpg");
            std::fs::copy(s, folder.join(format!("{i:03}.{ext}"))).unwrap();
        }
        Self::start_in_with(data, &format!("stills:{}", folder.display()), extra, opts)
    }

    /// Starts the daemon again on the data folder of one that was stopped (to test restarts),
    /// with the same stills camera.
    pub fn start_in(data: tempfile::TempDir, extra: &[&str]) -> Daemon {
        let camera = format!("stills:{}", data.path().join("stills").display());
        Self::start_in_with(data, &camera, extra, Start::default())
    }

    pub fn start_in_with(
        data: tempfile::TempDir,
        camera: &str,
        extra: &[&str],
        opts: Start<'_>,
    ) -> Daemon {
        if let Some(p) = opts.admin_password {
            let o = set_admin_password(data.path(), p);
            assert!(o.status.success(), "set-password: {:?}", stderr_lines(&o));
        }
        let port = free_port();
        let host = if opts.all_addresses {
            "0.0.0.0"
        } else {
            "127.0.0.1"
        };
        let base = format!("http://127.0.0.1:{port}");
        let mut cmd = kissbooth();
        if let Some(level) = opts.log {
            cmd.env("KISSBOOTH_LOG", level);
        }
        cmd.envs(opts.env.iter().copied());
        if let Some(n) = opts.open_files {
            use std::os::unix::process::CommandExt;
            // SAFETY: setrlimit is async-signal-safe and only changes the child's own limit.
            unsafe {
                cmd.pre_exec(move || {
                    let lim = libc::rlimit {
                        rlim_cur: n,
                        rlim_max: n,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let child = cmd
            .arg("--data")
            .arg(data.path())
            .args([
                "serve",
                "--listen",
                &format!("{host}:{port}"),
                "--public-url",
                &base,
                "--camera",
                camera,
            ])
            .args(extra)
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(data.path().join("daemon.log")).unwrap())
            .spawn()
            .unwrap();
        let mut d = Daemon { child, base, data };
        let t = std::time::Instant::now();
        loop {
            if let Ok(r) = ureq::get(&format!("{}/healthz", d.base)).call()
                && r.status() == 200
            {
                return d;
            }
            if let Ok(Some(st)) = d.child.try_wait() {
                panic!("daemon exited ({st}): {}", d.log());
            }
            assert!(
                t.elapsed().as_secs() < 60,
                "daemon not ready in 60 s: {}",
                d.log()
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data.path().join("daemon.log")).unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// POSTs to `path` and returns (status, JSON body).
    pub fn post(&self, path: &str) -> (u16, serde_json::Value) {
        let r = agent().post(&self.url(path)).send_empty().unwrap();
        json_of(r)
    }

    /// POSTs `body` as JSON to `path` and returns (status, JSON body).
    pub fn post_json(&self, path: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
        let r = agent()
            .post(&self.url(path))
            .header("content-type", "application/json")
            .send(body.to_string())
            .unwrap();
        json_of(r)
    }

    /// Both people agree on screen: the kiosk's consent request.
    pub fn consent(&self, id: &str) -> (u16, serde_json::Value) {
        self.post_json(
            &format!("/api/sessions/{id}/consent"),
            &serde_json::json!({"people": 2, "accepted": true}),
        )
    }

    pub fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        json_of(agent().get(&self.url(path)).call().unwrap())
    }

    /// Polls the session until `pred` holds or `secs` pass.
    pub fn wait_session(
        &self,
        id: &str,
        secs: u64,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let t = std::time::Instant::now();
        loop {
            let (_, v) = self.get_json(&format!("/api/sessions/{id}"));
            if pred(&v) {
                return v;
            }
            assert!(
                t.elapsed().as_secs() < secs,
                "session {id} stuck: {v} {}",
                self.log()
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// Opens a session; returns its id.
    pub fn new_session(&self) -> String {
        let (st, v) = self.post("/api/sessions");
        assert_eq!(st, 201, "{v}");
        v["id"].as_str().unwrap().to_string()
    }

    /// A couple's walk up to the render: new session → consent → capture (both faces found) →
    /// render accepted. Returns the session id.
    pub fn start_render(&self) -> String {
        let id = self.new_session();
        let (st, v) = self.consent(&id);
        assert_eq!((st, v["state"].as_str()), (200, Some("pose")), "{v}");
        let (st, v) = self.post(&format!("/api/sessions/{id}/capture"));
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["verdict"]["ok"], true, "{v}");
        assert_eq!(v["session"]["state"], "review", "{v}");
        let (st, v) = self.post(&format!("/api/sessions/{id}/render"));
        assert_eq!(st, 202, "{v}");
        id
    }

    /// Waits up to `secs` for the session's render to end and asserts it is done; returns the
    /// session.
    pub fn wait_done(&self, id: &str, secs: u64) -> serde_json::Value {
        let v = self.wait_session(id, secs, |v| v["state"] == "done" || v["state"] == "failed");
        assert_eq!(v["state"], "done", "{v} {}", self.log());
        v
    }

    /// A whole session, from its start to a finished video; returns (session id, download URL).
    pub fn make_video(&self) -> (String, String) {
        let id = self.start_render();
        let v = self.wait_done(&id, 180);
        (id, v["download_url"].as_str().unwrap().to_string())
    }

    /// Stops the daemon with SIGKILL (a power cut, from the daemon's point of view).
    pub fn kill(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::mem::replace(&mut self.data, tempfile::tempdir().unwrap())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP agent that returns 4xx/5xx responses instead of errors.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

fn json_of(mut r: ureq::http::Response<ureq::Body>) -> (u16, serde_json::Value) {
    let status = r.status().as_u16();
    let body = r.body_mut().read_to_string().unwrap_or_default();
    (
        status,
        serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body)),
    )
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Writes `toml` as `dir/booth.toml`; returns its path, for `--config`.
pub fn write_config(dir: &std::path::Path, toml: &str) -> String {
    let p = dir.join("booth.toml");
    std::fs::write(&p, toml).unwrap();
    p.display().to_string()
}

/// Writes a tiny diffusion pack into `dir/pack` with `scripts/make-tiny-pack` and its extra
/// arguments, or says loudly why `test` is skipped (python3 with numpy and onnx is needed).
pub fn write_tiny_pack(dir: &std::path::Path, args: &[&str], test: &str) -> Option<PathBuf> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/make-tiny-pack");
    let out = dir.join("pack");
    match Command::new(&script).arg(&out).args(args).output() {
        Ok(o) if o.status.success() => Some(out),
        Ok(o) => {
            eprintln!(
                "SKIPPED {test}: make-tiny-pack failed (python3 with numpy and onnx needed): {}",
                String::from_utf8_lossy(&o.stderr)
            );
            None
        }
        Err(e) => {
            eprintln!("SKIPPED {test}: cannot run make-tiny-pack: {e}");
            None
        }
    }
}

/// ffprobe's view of a video's first stream (counting its frames) and its container.
pub fn probe(path: &std::path::Path) -> serde_json::Value {
    let o = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries"])
        .arg("stream=codec_name,pix_fmt,width,height,r_frame_rate,nb_read_frames:format=duration:format_tags")
        .args(["-of", "json"])
        .arg(path)
        .output()
        .expect("ffprobe (scripts/setup installs ffmpeg)");
    assert!(
        o.status.success(),
        "ffprobe: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

/// Every file under `dir` with its size, sorted.
pub fn tree(dir: &std::path::Path) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p.clone());
            }
            out.push((
                p.clone(),
                std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0),
            ));
        }
    }
    out.sort();
    out
}

/// `jpeg` (as an encoder writes it) with an EXIF block saying how to turn it upright
/// (`Orientation`: 1 as stored, 3 turn 180°, 6 turn 90° clockwise, 8 turn 90° anticlockwise),
/// as phones save photos.
pub fn with_exif_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    assert_eq!(&jpeg[..2], b"\xFF\xD8", "not a JPEG");
    // A little-endian TIFF header and one IFD with a single SHORT entry, tag 0x0112.
    let mut tiff = b"II\x2A\x00\x08\x00\x00\x00\x01\x00\x12\x01\x03\x00\x01\x00\x00\x00".to_vec();
    tiff.extend_from_slice(&orientation.to_le_bytes());
    tiff.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff);
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&(app1.len() as u16 + 2).to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// `upright` stored the way a camera would with EXIF `orientation` (3, 6 or 8): turned so that
/// applying the orientation gives `upright` back. A JPEG at quality 95.
pub fn stored_with_orientation(upright: &image::RgbImage, orientation: u16) -> Vec<u8> {
    let stored = match orientation {
        3 => image::imageops::rotate180(upright),
        6 => image::imageops::rotate270(upright),
        8 => image::imageops::rotate90(upright),
        o => panic!("orientation {o} is not a turn"),
    };
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 95)
        .encode_image(&stored)
        .unwrap();
    with_exif_orientation(&jpeg, orientation)
}

/// Runs `body` on a thread of its own inside a new network namespace (with the daemons it
/// starts): loopback up, and `10.77.0.1` to `10.77.0.9` on it, which the daemon sees as peers
/// that are not loopback, like guests' phones on the booth's Wi-Fi. Nothing outside the
/// namespace is touched, and it is gone once the thread and its daemons end. Where a namespace
/// cannot be made (not root) it says loudly that `test` is skipped and returns false.
pub fn in_private_network(test: &str, body: impl FnOnce() + Send + 'static) -> bool {
    let test = test.to_string();
    let t = std::thread::spawn(move || {
        // SAFETY: unshare(CLONE_NEWNET) moves only the calling thread (and what it starts from
        // now on) into a new network namespace.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            eprintln!(
                "SKIPPED {test}: cannot make a network namespace ({}; needs CAP_SYS_ADMIN)",
                std::io::Error::last_os_error()
            );
            return false;
        }
        let ip = |args: &[&str]| {
            Command::new("ip")
                .args(args)
                .status()
                .is_ok_and(|s| s.success())
        };
        let ready = ip(&["link", "set", "lo", "up"])
            && (1..=9).all(|i| ip(&["addr", "add", &format!("10.77.0.{i}/32"), "dev", "lo"]));
        if !ready {
            eprintln!("SKIPPED {test}: `ip` (iproute2) could not set up the namespace");
            return false;
        }
        body();
        true
    });
    t.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
}

/// Every audit event name in the booth's database (in the data folder `data`), oldest first.
pub fn audit_events(data: &std::path::Path) -> Vec<String> {
    let c = rusqlite::Connection::open(data.join("kissbooth.sqlite")).unwrap();
    let mut st = c.prepare("SELECT event FROM audit ORDER BY id").unwrap();
    st.query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}
