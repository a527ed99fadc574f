//! A real headless Chromium (Debian's `chromium`) for end-to-end tests, driven over the DevTools
//! protocol with chromiumoxide. Each browser gets a fresh profile folder.
#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

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
