//! A real headless Chromium (Debian's `chromium`) for end-to-end tests, driven over the DevTools
//! protocol with chromiumoxide. Each browser gets a fresh profile folder.
#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use chromiumoxide::Page;
use chromiumoxide::browser::{Browser, BrowserConfig};
use chromiumoxide::cdp::js_protocol::runtime::EvaluateParams;
use futures::StreamExt;

pub const CHROMIUM: &str = "/usr/bin/chromium";

/// True when Chromium is installed; otherwise says loudly that `test` is skipped.
pub fn have_chromium(test: &str) -> bool {
    let ok = Path::new(CHROMIUM).is_file();
    if !ok {
        eprintln!("SKIPPED {test}: {CHROMIUM} not installed (scripts/setup installs it)");
    }
    ok
}

pub struct Chromium {
    pub browser: Browser,
    handler: tokio::task::JoinHandle<()>,
    _profile: tempfile::TempDir,
}

impl Chromium {
    pub async fn launch(width: u32, height: u32) -> Chromium {
        let profile = tempfile::tempdir().unwrap();
        let config = BrowserConfig::builder()
            .chrome_executable(CHROMIUM)
            .no_sandbox()
            .user_data_dir(profile.path())
            .window_size(width, height)
            .launch_timeout(Duration::from_secs(60))
            .request_timeout(Duration::from_secs(60))
            .args([
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--autoplay-policy=no-user-gesture-required",
                "--allow-file-access-from-files",
            ])
            .build()
            .unwrap();
        let (browser, mut handler) = Browser::launch(config).await.expect("launch chromium");
        let handler = tokio::spawn(async move { while handler.next().await.is_some() {} });
        Chromium {
            browser,
            handler,
            _profile: profile,
        }
    }

    /// Evaluates `expr` (which may return a promise) in a new page at `url` and returns its value.
    pub async fn eval_at(&self, url: &str, expr: &str) -> serde_json::Value {
        let page = self.browser.new_page(url).await.expect("open page");
        let params = EvaluateParams::builder()
            .expression(expr)
            .await_promise(true)
            .return_by_value(true)
            .build()
            .unwrap();
        let r = page.evaluate_expression(params).await.expect("evaluate");
        r.into_value().unwrap_or(serde_json::Value::Null)
    }

    pub async fn close(mut self) {
        let _ = self.browser.close().await;
        let _ = self.browser.wait().await;
        self.handler.abort();
    }
}

/// A screen to emulate: its CSS size, pixel ratio, and whether it is a phone (mobile layout,
/// touch, a phone's user agent).
#[derive(Debug, Clone, Copy)]
pub struct Device {
    pub width: u32,
    pub height: u32,
    pub scale: f64,
    pub phone: bool,
}

impl Device {
    /// The booth's touch screen.
    pub const KIOSK: Device = Device {
        width: 1280,
        height: 800,
        scale: 1.0,
        phone: false,
    };
    /// A full-HD kiosk screen.
    pub const KIOSK_FULL_HD: Device = Device {
        width: 1920,
        height: 1080,
        scale: 1.0,
        phone: false,
    };
    /// A typical phone (iPhone 12-15 size).
    pub const PHONE: Device = Device {
        width: 390,
        height: 844,
        scale: 3.0,
        phone: true,
    };
    /// A small Android phone.
    pub const SMALL_PHONE: Device = Device {
        width: 360,
        height: 740,
        scale: 3.0,
        phone: true,
    };
}

const PHONE_UA: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36";

/// Makes `page` look like `device`: size, pixel ratio, touch, and a phone's user agent.
pub async fn emulate(page: &Page, device: Device) {
    use chromiumoxide::cdp::browser_protocol::emulation::{
        SetDeviceMetricsOverrideParams, SetTouchEmulationEnabledParams, SetUserAgentOverrideParams,
    };
    page.execute(SetDeviceMetricsOverrideParams::new(
        device.width,
        device.height,
        device.scale,
        device.phone,
    ))
    .await
    .expect("Emulation.setDeviceMetricsOverride");
    page.execute(
        SetTouchEmulationEnabledParams::builder()
            .enabled(true)
            .max_touch_points(5)
            .build()
            .unwrap(),
    )
    .await
    .expect("Emulation.setTouchEmulationEnabled");
    if device.phone {
        page.execute(SetUserAgentOverrideParams::new(PHONE_UA))
            .await
            .expect("Emulation.setUserAgentOverride");
    }
}

impl Chromium {
    /// A new tab emulating `device`, at `url`.
    pub async fn open(&self, url: &str, device: Device) -> Page {
        let page = self.browser.new_page("about:blank").await.expect("new tab");
        emulate(&page, device).await;
        page.goto(url).await.expect("navigate");
        page
    }
}

/// Evaluates `expr` in `page` (awaiting a promise) and returns its value.
pub async fn js(page: &Page, expr: &str) -> serde_json::Value {
    let params = EvaluateParams::builder()
        .expression(expr)
        .await_promise(true)
        .return_by_value(true)
        .build()
        .unwrap();
    match page.evaluate_expression(params).await {
        Ok(r) => r.into_value().unwrap_or(serde_json::Value::Null),
        Err(e) => panic!("evaluating {expr}: {e}"),
    }
}

/// Polls `cond` (a JS expression) every 100 ms until it is truthy; panics after `secs` with
/// `what` and the value of `explain` (a JS expression describing the page's state).
pub async fn wait_until(page: &Page, cond: &str, secs: u64, what: &str, explain: &str) {
    let t = std::time::Instant::now();
    loop {
        let v = js(page, &format!("Boolean({cond})")).await;
        if v == serde_json::Value::Bool(true) {
            return;
        }
        if t.elapsed() > Duration::from_secs(secs) {
            let state = js(page, explain).await;
            panic!("waited {secs} s for {what} ({cond}); page: {state}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Taps the element matching `selector` with a finger (touch start and end at its centre),
/// after checking that it is visible on screen without scrolling and is what the finger hits.
pub async fn tap(page: &Page, selector: &str) {
    use chromiumoxide::cdp::browser_protocol::input::{
        DispatchTouchEventParams, DispatchTouchEventType, TouchPoint,
    };
    let sel = serde_json::to_string(selector).unwrap();
    let at = js(
        page,
        &format!(
            r#"(() => {{
                const el = document.querySelector({sel});
                if (!el) return {{ error: "no element " + {sel} }};
                const r = el.getBoundingClientRect();
                const x = r.left + r.width / 2, y = r.top + r.height / 2;
                if (r.width === 0 || r.left < 0 || r.top < 0 || r.right > innerWidth || r.bottom > innerHeight)
                    return {{ error: {sel} + " is not fully on screen: " + JSON.stringify(r) }};
                const hit = document.elementFromPoint(x, y);
                if (!hit || !(hit === el || el.contains(hit)))
                    return {{ error: {sel} + " is covered by " + (hit && hit.outerHTML.slice(0, 120)) }};
                return {{ x, y }};
            }})()"#
        ),
    )
    .await;
    if let Some(e) = at.get("error") {
        panic!("cannot tap: {e}");
    }
    let (x, y) = (at["x"].as_f64().unwrap(), at["y"].as_f64().unwrap());
    page.execute(DispatchTouchEventParams::new(
        DispatchTouchEventType::TouchStart,
        vec![TouchPoint::new(x, y)],
    ))
    .await
    .expect("touch start");
    page.execute(TouchEnd::default()).await.expect("touch end");
}

/// `Input.dispatchTouchEvent` of type `touchEnd`: Chrome requires its `touchPoints` (empty),
/// which chromiumoxide's generated type leaves out when empty.
#[derive(Debug, serde::Serialize)]
struct TouchEnd {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(rename = "touchPoints")]
    touch_points: [u8; 0],
}

impl Default for TouchEnd {
    fn default() -> Self {
        TouchEnd {
            kind: "touchEnd",
            touch_points: [],
        }
    }
}

impl chromiumoxide::types::Method for TouchEnd {
    fn identifier(&self) -> chromiumoxide::types::MethodId {
        "Input.dispatchTouchEvent".into()
    }
}

impl chromiumoxide::types::Command for TouchEnd {
    type Response = chromiumoxide::cdp::browser_protocol::input::DispatchTouchEventReturns;
}

/// A PNG of what `page` shows now, also written to `path` (its folder is created).
pub async fn screenshot(page: &Page, path: &Path) -> Vec<u8> {
    use chromiumoxide::cdp::browser_protocol::page::CaptureScreenshotFormat;
    use chromiumoxide::page::ScreenshotParams;
    let png = page
        .screenshot(
            ScreenshotParams::builder()
                .format(CaptureScreenshotFormat::Png)
                .build(),
        )
        .await
        .expect("screenshot");
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).unwrap();
    }
    std::fs::write(path, &png).unwrap();
    png
}
