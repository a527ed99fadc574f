//! The kiosk and the phone page in a real headless Chromium against the real daemon (stills
//! camera): a couple taps through every screen of a 1280x800 touch screen (each screen that
//! waits for a tap is checked again at 1920x1080), first in front of an empty wall (the retake
//! message), then in frame; a guest opens the QR code's link on a phone, plays, downloads and
//! deletes the clip; a clip that finishes while the next couple is at the screen waits for its
//! couple on the attract screen. Each screen is saved as a PNG in `tests/artifacts/kiosk/` for a
//! person to look at.

mod browser;
mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use browser::{Chromium, Device, js, screenshot, tap, wait_until};
use chromiumoxide::Page;
use serde_json::Value;
use support::*;

fn artifacts() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/artifacts/kiosk")
}

/// What the kiosk shows, for failure messages.
const KIOSK_STATE: &str = r##"JSON.stringify({
    screen: document.body.dataset.screen,
    gate: document.getElementById("gate").textContent,
    problem: document.getElementById("problem-text").textContent,
    eta: document.getElementById("eta").textContent,
    session: typeof session === "undefined" ? null : session,
})"##;

const PHONE_STATE: &str = r##"JSON.stringify({
    url: location.href,
    body: document.body.innerText.slice(0, 300),
})"##;

/// Layout rules for a kiosk screen seen from two metres and touched at arm's length: nothing
/// off screen or scrolling, no text spilling out of its box, type and buttons large enough for
/// the viewport. Returns the problems found.
const KIOSK_LAYOUT: &str = r##"(() => {
    const W = innerWidth, H = innerHeight, problems = [];
    const se = document.scrollingElement;
    if (se.scrollHeight > H + 1 || se.scrollWidth > W + 1)
        problems.push(`the page scrolls: ${se.scrollWidth}x${se.scrollHeight} in ${W}x${H}`);
    const screen = document.querySelector(".screen.active");
    if (!screen) return ["no active screen"];
    const name = (el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
        (el.className && typeof el.className === "string" ? "." + el.className.trim().replace(/\s+/g, ".") : "");
    const shown = (el) => {
        const cs = getComputedStyle(el), r = el.getBoundingClientRect();
        return !el.closest("[hidden]") && cs.display !== "none" && cs.visibility !== "hidden" &&
            Number(cs.opacity) > 0 && r.width > 0 && r.height > 0;
    };
    for (const el of [screen, ...screen.querySelectorAll("*")]) {
        if (!shown(el)) continue;
        const r = el.getBoundingClientRect();
        if (r.left < -1 || r.top < -1 || r.right > W + 1 || r.bottom > H + 1)
            problems.push(`${name(el)} is off screen: ${Math.round(r.left)},${Math.round(r.top)} to ${Math.round(r.right)},${Math.round(r.bottom)}`);
        const text = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
        if (text) {
            const px = parseFloat(getComputedStyle(el).fontSize);
            if (px < 0.028 * H) problems.push(`${name(el)} type is ${px}px, under 2.8% of the screen height`);
            if (el.scrollWidth > el.clientWidth + 2 && getComputedStyle(el).display !== "inline")
                problems.push(`${name(el)} text spills out of its box`);
        }
        for (let a = el.parentElement; a && a !== screen.parentElement; a = a.parentElement) {
            if (getComputedStyle(a).overflow === "visible") continue;
            const c = a.getBoundingClientRect();
            if (r.left < c.left - 1 || r.top < c.top - 1 || r.right > c.right + 1 || r.bottom > c.bottom + 1)
                problems.push(`${name(el)} is cut off by ${name(a)}`);
            break;
        }
        if (el.tagName === "BUTTON" && r.height < 0.09 * H)
            problems.push(`${name(el)} is ${Math.round(r.height)}px tall, under 9% of the screen height`);
    }
    return problems;
})()"##;

/// The spread of brightness in the live preview as drawn now (0 for a blank wall).
const PREVIEW_DETAIL: &str = r##"(() => {
    const img = document.getElementById("preview");
    if (!img.complete || !img.naturalWidth) return -1;
    const c = document.createElement("canvas");
    c.width = 64; c.height = 36;
    const g = c.getContext("2d");
    g.drawImage(img, 0, 0, 64, 36);
    const d = g.getImageData(0, 0, 64, 36).data;
    let s = 0, s2 = 0, n = 0;
    for (let i = 0; i < d.length; i += 4) {
        const y = (d[i] + d[i + 1] + d[i + 2]) / 3;
        s += y; s2 += y * y; n++;
    }
    const m = s / n;
    return Math.sqrt(Math.max(0, s2 / n - m * m));
})()"##;

async fn kiosk_screen_is(page: &Page, name: &str, secs: u64) {
    wait_until(
        page,
        &format!(
            "document.body.dataset.screen === {name:?} && \
             document.querySelector('.screen.active')?.dataset.screen.split(' ').includes({name:?})"
        ),
        secs,
        &format!("the {name} screen"),
        KIOSK_STATE,
    )
    .await;
}

/// Layout problems seen so far; reported together at the end so one run shows them all (and
/// still saves every screenshot).
static LAYOUT_PROBLEMS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

async fn layout_ok(page: &Page, what: &str) {
    let problems = js(page, KIOSK_LAYOUT).await;
    for p in problems.as_array().into_iter().flatten() {
        LAYOUT_PROBLEMS
            .lock()
            .unwrap()
            .push(format!("{what}: {}", p.as_str().unwrap_or_default()));
    }
}

async fn next_frame(page: &Page) {
    js(
        page,
        "new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))",
    )
    .await;
}

/// Checks and saves the current kiosk screen at 1280x800, and (for screens that wait for a
/// tap) again at 1920x1080.
async fn kiosk_shot(page: &Page, name: &str, also_full_hd: bool) -> Vec<u8> {
    next_frame(page).await;
    layout_ok(page, &format!("{name} at 1280x800")).await;
    let png = screenshot(page, &artifacts().join(format!("{name}.png"))).await;
    if also_full_hd {
        browser::emulate(page, Device::KIOSK_FULL_HD).await;
        next_frame(page).await;
        layout_ok(page, &format!("{name} at 1920x1080")).await;
        screenshot(page, &artifacts().join(format!("{name}-1920x1080.png"))).await;
        browser::emulate(page, Device::KIOSK).await;
        next_frame(page).await;
    }
    png
}

/// The text of the one QR code inside `rect` (CSS pixels, scale 1) of a PNG screenshot.
fn decode_qr(png: &[u8], rect: &Value) -> String {
    let img = image::load_from_memory(png).unwrap().to_luma8();
    let f = |k: &str| rect[k].as_f64().unwrap().max(0.0) as u32;
    let (x, y) = (f("left"), f("top"));
    let w = f("width").min(img.width() - x);
    let h = f("height").min(img.height() - y);
    let crop = image::imageops::crop_imm(&img, x, y, w, h).to_image();
    let mut prepared = rqrr::PreparedImage::prepare(crop);
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code on the result screen");
    grids[0].decode().expect("the QR code decodes").1
}

/// The couple walks up in front of the camera: the still of an empty wall is replaced by one of
/// them, the way a new camera frame would be.
fn couple_steps_in(stills: &Path) {
    let tmp = stills.join(".couple.jpg");
    std::fs::copy(fixture("couple_1280x720.jpg"), &tmp).unwrap();
    std::fs::rename(&tmp, stills.join("001.jpg")).unwrap();
    std::fs::remove_file(stills.join("000.png")).unwrap();
}

/// A phone that reads a download slowly: the request is sent and the answer's head read; the
/// rest waits in a small receive buffer until the stream is dropped.
fn slow_download(url: &str) -> std::net::TcpStream {
    use std::io::{Read, Write};
    let rest = url.trim_start_matches("http://");
    let (host, path) = rest.split_at(rest.find('/').unwrap());
    let addr: std::net::SocketAddr = host.parse().unwrap();
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.set_recv_buffer_size(4096).unwrap();
    s.connect(&addr.into()).unwrap();
    let mut t: std::net::TcpStream = s.into();
    write!(t, "GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").unwrap();
    let mut head = [0u8; 256];
    let n = t.read(&mut head).unwrap();
    assert!(String::from_utf8_lossy(&head[..n]).starts_with("HTTP/1.1 200"));
    t
}

/// One booth and one browser at a time: the machine running the tests may have two cores.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn a_couple_taps_from_attract_to_their_clip_and_a_guest_takes_it_home_on_a_phone() {
    let name = "a_couple_taps_from_attract_to_their_clip_and_a_guest_takes_it_home_on_a_phone";
    if !have_models(name) || !browser::have_chromium(name) {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let wall = dir.path().join("wall.png");
    image::RgbImage::from_pixel(1280, 720, image::Rgb([170, 160, 150]))
        .save(&wall)
        .unwrap();
    // The booth has its own Wi-Fi (a second QR code on the result screen).
    let config = dir.path().join("kissbooth.toml");
    std::fs::write(
        &config,
        "[wifi]\nssid = \"Kissbooth\"\npassword = \"kiss-kiss\"\nsecurity = \"WPA\"\n",
    )
    .unwrap();
    // The booth starts looking at an empty wall; the couple steps in once they have agreed.
    let d = Daemon::start(&[wall], &["--config", config.to_str().unwrap()]);
    let stills = d.data.path().join("stills");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let outcome = rt.block_on(async {
        let c = Chromium::launch(1280, 800).await;
        let result = tokio::time::timeout(
            Duration::from_secs(240),
            the_couple_and_the_guest(&c, &d, &stills),
        )
        .await;
        c.close().await;
        result
    });
    if outcome.is_err() {
        panic!("the kiosk test ran over 240 s: {}", d.log());
    }
    assert_no_layout_problems();
    eprintln!(
        "kiosk and phone walked through in {:.1} s; screenshots in {}",
        started.elapsed().as_secs_f64(),
        artifacts().display()
    );
}

async fn the_couple_and_the_guest(c: &Chromium, d: &Daemon, stills: &Path) {
    let kiosk = c.open(&d.url("/"), Device::KIOSK).await;

    // Attract: one big button.
    kiosk_screen_is(&kiosk, "attract", 30).await;
    let t = js(&kiosk, "document.getElementById('start').textContent").await;
    assert!(t.as_str().unwrap().to_lowercase().contains("start"), "{t}");
    kiosk_shot(&kiosk, "01-attract", true).await;

    // Consent: both agree, with the facts spelled out.
    tap(&kiosk, "#start").await;
    kiosk_screen_is(&kiosk, "consent", 30).await;
    let facts = js(&kiosk, "document.querySelector('#consent').innerText").await;
    let facts = facts.as_str().unwrap().to_string();
    for words in ["both", "AI-generated", "deleted", "24 hours"] {
        assert!(
            facts.contains(words),
            "consent text lacks {words:?}: {facts}"
        );
    }
    // The hosts' album is an optional third line, off unless the couple ticks it.
    let album = js(
        &kiosk,
        "({ checked: document.getElementById('album').checked, shown: document.getElementById('album').getClientRects().length > 0, \
            text: document.querySelector('.album-opt').textContent })",
    )
    .await;
    assert_eq!(album["checked"], false, "{album}");
    assert_eq!(album["shown"], true, "{album}");
    assert!(
        album["text"].as_str().unwrap().contains("event album"),
        "{album}"
    );
    kiosk_shot(&kiosk, "02-consent", true).await;

    // Left alone, a screen first asks "Still there?" with a countdown (the wait before it
    // shortened tenfold here, the countdown itself not); a tap keeps the couple where they were.
    js(&kiosk, "idleScale = 0.1; countScale = 1; armIdle()").await;
    wait_until(
        &kiosk,
        "!document.getElementById('still-there').hidden && \
         document.getElementById('still-there').innerText.includes('Still there?')",
        15,
        "the still-there countdown",
        KIOSK_STATE,
    )
    .await;
    kiosk_shot(&kiosk, "02-consent-still-there", false).await;
    tap(&kiosk, "#still-here").await;
    let after = js(
        &kiosk,
        "({ hidden: document.getElementById('still-there').hidden, screen: document.body.dataset.screen })",
    )
    .await;
    assert_eq!(after["hidden"], true, "{after}");
    assert_eq!(after["screen"], "consent", "{after}");
    js(&kiosk, "idleScale = 1; armIdle()").await;

    // Pose, nobody in frame yet: the live preview shows the wall.
    tap(&kiosk, "#agree").await;
    kiosk_screen_is(&kiosk, "pose", 30).await;
    wait_until(
        &kiosk,
        &format!("{PREVIEW_DETAIL} >= 0"),
        30,
        "the live preview",
        KIOSK_STATE,
    )
    .await;

    // An empty wall: the gate says what to fix and the picture cannot be taken yet. The
    // preview is mirrored, as people expect of a screen they pose in front of.
    wait_until(
        &kiosk,
        "document.getElementById('gate').textContent.includes(\"We can't see your faces\")",
        30,
        "the gate's message for an empty frame",
        KIOSK_STATE,
    )
    .await;
    let pose = js(
        &kiosk,
        "({ disabled: document.getElementById('shoot').disabled, \
            transform: getComputedStyle(document.getElementById('preview')).transform })",
    )
    .await;
    assert_eq!(pose["disabled"], true, "{pose}");
    assert_eq!(pose["transform"], "matrix(-1, 0, 0, 1, 0, 0)", "{pose}");
    kiosk_shot(&kiosk, "03-pose-empty", false).await;

    // The couple moved out during the countdown (the button was live when tapped): back to the
    // preview with what to fix. (Enabled and pressed in one step: the kiosk's next status poll
    // would disable it again in between.)
    js(
        &kiosk,
        "(() => { const b = document.getElementById('shoot'); b.disabled = false; b.click(); return true; })()",
    )
    .await;
    kiosk_screen_is(&kiosk, "countdown", 10).await;
    kiosk_screen_is(&kiosk, "pose", 60).await;
    wait_until(
        &kiosk,
        "document.getElementById('gate').textContent.includes(\"Let's take it again. We can't see your faces\") && \
         document.getElementById('shoot').disabled",
        30,
        "the retake message",
        KIOSK_STATE,
    )
    .await;
    kiosk_shot(&kiosk, "03-pose-retake", false).await;
    let blank = js(&kiosk, PREVIEW_DETAIL).await.as_f64().unwrap();
    assert!(
        (0.0..8.0).contains(&blank),
        "the preview shows the blank wall: detail {blank}"
    );

    // The couple steps in: the same <img> shows them and the gate says the frame is fine.
    couple_steps_in(stills);
    wait_until(
        &kiosk,
        &format!("{PREVIEW_DETAIL} > 20"),
        30,
        "the couple in the live preview",
        KIOSK_STATE,
    )
    .await;
    wait_until(
        &kiosk,
        "document.getElementById('gate').textContent.includes('Looking great') && \
         !document.getElementById('shoot').disabled",
        30,
        "the gate to say the frame is fine and the button to come alive",
        KIOSK_STATE,
    )
    .await;
    kiosk_shot(&kiosk, "04-pose-ready", true).await;

    // Countdown, capture, review.
    tap(&kiosk, "#shoot").await;
    kiosk_screen_is(&kiosk, "countdown", 10).await;
    wait_until(
        &kiosk,
        "['3', '2', '1'].includes(document.getElementById('count').textContent)",
        10,
        "the countdown over the live preview",
        KIOSK_STATE,
    )
    .await;
    kiosk_shot(&kiosk, "05-countdown", false).await;
    kiosk_screen_is(&kiosk, "review", 90).await;
    wait_until(
        &kiosk,
        "document.getElementById('still').complete && document.getElementById('still').naturalWidth > 0",
        30,
        "the captured still",
        KIOSK_STATE,
    )
    .await;
    kiosk_shot(&kiosk, "06-review", true).await;

    // Rendering: a moving bar and an estimate, then the result.
    tap(&kiosk, "#make").await;
    wait_until(
        &kiosk,
        "['rendering', 'result'].includes(document.body.dataset.screen)",
        30,
        "the rendering screen",
        KIOSK_STATE,
    )
    .await;
    wait_until(
        &kiosk,
        "document.body.dataset.screen !== 'rendering' || \
         (parseInt(document.getElementById('percent').textContent) > 0 && document.getElementById('eta').textContent.trim() !== '')",
        120,
        "render progress",
        KIOSK_STATE,
    )
    .await;
    if js(&kiosk, "document.body.dataset.screen").await == "rendering" {
        let eta = js(&kiosk, "document.getElementById('eta').textContent").await;
        assert!(
            eta.as_str().is_some_and(|e| e.contains("second")
                || e.contains("minute")
                || e.contains("Almost")),
            "estimate: {eta}"
        );
        let bar = js(
            &kiosk,
            "({ bar: document.getElementById('bar-fill').style.width, percent: document.getElementById('percent').textContent, \
                title: document.getElementById('render-title').textContent })",
        )
        .await;
        assert_eq!(
            bar["bar"], bar["percent"],
            "the bar shows the progress: {bar}"
        );
        assert!(
            bar["title"].as_str().unwrap().contains("Making your video"),
            "{bar}"
        );
        kiosk_shot(&kiosk, "07-rendering", false).await;
    } else {
        eprintln!("the clip rendered before the rendering screen could be photographed");
    }

    // Result: the clip loops beside a large QR code that leads to the download page.
    kiosk_screen_is(&kiosk, "result", 240).await;
    wait_until(
        &kiosk,
        "(() => { const v = document.getElementById('clip'), q = document.getElementById('qr');
                  return v.readyState >= 2 && v.currentTime > 0.2 && !v.paused && q.complete && q.naturalWidth > 0; })()",
        60,
        "the clip playing and the QR code loaded",
        KIOSK_STATE,
    )
    .await;
    let advanced = js(
        &kiosk,
        "new Promise(r => { const v = document.getElementById('clip'), t = v.currentTime;
            setTimeout(() => r({ moved: v.currentTime !== t, loop: v.loop, muted: v.muted, w: v.videoWidth }), 700); })",
    )
    .await;
    assert_eq!(advanced["moved"], true, "the clip plays: {advanced}");
    assert_eq!(advanced["loop"], true, "the clip loops: {advanced}");
    let label = js(&kiosk, "(() => { const l = document.querySelector('#result .ai-label'); const r = l.getBoundingClientRect(); return r.width > 0 && r.height > 0 ? l.textContent : null; })()").await;
    assert_eq!(label, "AI-generated");
    wait_until(
        &kiosk,
        "document.getElementById('wifi-qr').complete && document.getElementById('wifi-qr').naturalWidth > 0",
        30,
        "the booth's Wi-Fi QR code",
        KIOSK_STATE,
    )
    .await;
    let png = kiosk_shot(&kiosk, "08-result", true).await;
    let rect = js(
        &kiosk,
        "JSON.parse(JSON.stringify(document.getElementById('qr').getBoundingClientRect()))",
    )
    .await;
    let side = rect["width"]
        .as_f64()
        .unwrap()
        .min(rect["height"].as_f64().unwrap());
    assert!(
        side >= 0.5 * 800.0,
        "the QR code is {side}px: too small to scan from a step away"
    );
    let from_qr = decode_qr(&png, &rect);
    let view = js(
        &kiosk,
        "fetch('/api/sessions/' + session.id).then(r => r.json())",
    )
    .await;
    assert_eq!(view["state"], "done", "{view}");
    assert_eq!(
        Some(from_qr.as_str()),
        view["download_url"].as_str(),
        "the QR code on screen leads to the download page"
    );
    assert!(
        from_qr.starts_with(&d.base) && from_qr.contains("/d/"),
        "{from_qr}"
    );

    // Without a booth Wi-Fi the clip takes the room its QR code leaves.
    js(
        &kiosk,
        "document.getElementById('wifi').hidden = true; document.body.classList.remove('wifi-on')",
    )
    .await;
    kiosk_shot(&kiosk, "08-result-no-wifi", true).await;

    // A phone still downloading the clip (a slow one) keeps the result screen up past its idle
    // time: no "Still there?", no reset under the couple's feet.
    let slow = slow_download(&format!("{from_qr}/video.mp4"));
    wait_until(
        &kiosk,
        "shownView && shownView.downloading > 0",
        15,
        "the kiosk to hear of the download",
        KIOSK_STATE,
    )
    .await;
    js(&kiosk, "idleScale = 0.02; countScale = 0.02; armIdle()").await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let held = js(
        &kiosk,
        "({ screen: document.body.dataset.screen, overlay: !document.getElementById('still-there').hidden })",
    )
    .await;
    assert_eq!(held["screen"], "result", "{held}");
    assert_eq!(held["overlay"], false, "{held}");
    drop(slow);
    js(&kiosk, "idleScale = 1; countScale = 1; armIdle()").await;

    the_guest_on_a_phone(c, &from_qr).await;

    // Deleted from a phone: the kiosk stops showing the clip and its QR code at once, and says
    // why; then back to attract for the next couple.
    kiosk.bring_to_front().await.expect("the kiosk in front");
    kiosk_screen_is(&kiosk, "problem", 30).await;
    let after = js(
        &kiosk,
        "({ text: document.getElementById('problem-text').textContent, \
            qr: document.getElementById('qr').getAttribute('src'), \
            clip: document.getElementById('clip').getAttribute('src') })",
    )
    .await;
    assert!(
        after["text"]
            .as_str()
            .unwrap()
            .contains("deleted at the guests' request"),
        "{after}"
    );
    assert!(after["qr"].is_null() && after["clip"].is_null(), "{after}");
    kiosk_shot(&kiosk, "13-result-deleted-from-a-phone", false).await;
    // Nobody taps: after the "Still there?" countdown runs out, back to attract by itself.
    js(&kiosk, "idleScale = 0.1; countScale = 0.1; armIdle()").await;
    wait_until(
        &kiosk,
        "!document.getElementById('still-there').hidden",
        15,
        "the still-there countdown",
        KIOSK_STATE,
    )
    .await;
    kiosk_screen_is(&kiosk, "attract", 15).await;
    let gone = js(&kiosk, "document.getElementById('still-there').hidden").await;
    assert_eq!(gone, true);
    js(&kiosk, "idleScale = 1; countScale = 1").await;
}

async fn the_guest_on_a_phone(c: &Chromium, url: &str) {
    let phone = c.open(url, Device::PHONE).await;
    wait_until(
        &phone,
        "(() => { const v = document.getElementById('v'); return v.readyState >= 2 && v.currentTime > 0.2; })()",
        60,
        "the clip to play on the phone",
        PHONE_STATE,
    )
    .await;
    let v = js(
        &phone,
        r##"(async () => {
            const v = document.getElementById("v");
            const poster = new Image();
            poster.src = v.poster;
            await poster.decode().catch(() => {});
            const t = v.currentTime;
            await new Promise(r => setTimeout(r, 700));
            const r = v.getBoundingClientRect();
            const label = document.querySelector(".ai");
            const lr = label.getBoundingClientRect();
            const a = document.getElementById("download");
            return {
                playsinline: v.hasAttribute("playsinline"),
                moved: v.currentTime !== t,
                paused: v.paused,
                fullscreen: document.fullscreenElement !== null || !!v.webkitDisplayingFullscreen,
                width: r.width, page: document.documentElement.clientWidth,
                poster: poster.naturalWidth,
                label: label.textContent, labelShown: lr.width > 0 && getComputedStyle(label).visibility !== "hidden" &&
                    lr.top >= r.top && lr.bottom <= r.bottom,
                download: a.hasAttribute("download"), href: a.href,
                downloadType: await fetch(a.href, { method: "HEAD" }).then(r => r.headers.get("content-type")),
                disposition: await fetch(a.href, { method: "HEAD" }).then(r => r.headers.get("content-disposition")),
                saveHelp: document.getElementById("save-help").textContent,
                buttons: [...document.querySelectorAll("#page a.btn, #page button")].filter(b => b.getClientRects().length).map(b => Math.round(b.getBoundingClientRect().height)),
            };
        })()"##,
    )
    .await;
    assert_eq!(v["playsinline"], true, "{v}");
    assert_eq!(v["moved"], true, "the clip plays: {v}");
    assert_eq!(v["paused"], false, "{v}");
    assert_eq!(v["fullscreen"], false, "plays inline: {v}");
    let (w, page) = (v["width"].as_f64().unwrap(), v["page"].as_f64().unwrap());
    assert!(w >= page - 40.0, "the clip fills the width: {v}");
    assert!(v["poster"].as_u64().unwrap() > 0, "the poster loads: {v}");
    assert_eq!(v["label"], "AI-generated");
    assert_eq!(v["labelShown"], true, "{v}");
    assert_eq!(v["download"], true, "{v}");
    assert_eq!(v["href"], format!("{url}/video.mp4"));
    assert_eq!(v["downloadType"], "video/mp4");
    let disposition = v["disposition"].as_str().unwrap_or_default();
    assert!(
        disposition.starts_with("attachment; filename=\"kissbooth-")
            && disposition.ends_with(".mp4\""),
        "the download is saved as a named file: {v}"
    );
    let help = v["saveHelp"].as_str().unwrap_or_default();
    assert!(
        help.contains("iPhone") && help.contains("Save Video") && help.contains("Android"),
        "how to save to Photos: {v}"
    );
    for h in v["buttons"].as_array().unwrap() {
        assert!(h.as_f64().unwrap() >= 48.0, "a button under 48px tall: {v}");
    }
    screenshot(&phone, &artifacts().join("09-phone-390.png")).await;

    // A small Android phone, 360 px wide: nothing sideways, nothing cut off.
    browser::emulate(&phone, Device::SMALL_PHONE).await;
    next_frame(&phone).await;
    let fit = js(
        &phone,
        "({ scroll: document.scrollingElement.scrollWidth, width: innerWidth,
            video: document.getElementById('v').getBoundingClientRect().width })",
    )
    .await;
    assert_eq!(fit["width"], 360, "{fit}");
    assert!(
        fit["scroll"].as_f64().unwrap() <= 360.0,
        "scrolls sideways: {fit}"
    );
    assert!(fit["video"].as_f64().unwrap() >= 320.0, "{fit}");
    screenshot(&phone, &artifacts().join("10-phone-360.png")).await;
    browser::emulate(&phone, Device::PHONE).await;

    // "Delete my video": the question says it deletes the clip for both; confirmed, gone, the
    // page answers 410 "deleted" and the video 404. The other one's phone, open on the same
    // clip, says it was deleted by one of them, not that it expired.
    let other = c.open(url, Device::PHONE).await;
    wait_until(
        &other,
        "document.getElementById('v').readyState >= 1",
        60,
        "the clip on the other phone",
        PHONE_STATE,
    )
    .await;
    phone
        .bring_to_front()
        .await
        .expect("the first phone in front");
    js(
        &phone,
        "window.asked = ''; window.confirm = (q) => { window.asked = q; return true; }",
    )
    .await;
    tap(&phone, "#delete").await;
    wait_until(
        &phone,
        "getComputedStyle(document.getElementById('deleted')).display !== 'none' && \
         getComputedStyle(document.getElementById('page')).display === 'none'",
        30,
        "the deleted message",
        PHONE_STATE,
    )
    .await;
    let asked = js(&phone, "window.asked").await;
    assert!(
        asked.as_str().unwrap().contains("for both of you"),
        "the question warns it deletes the clip for both: {asked}"
    );
    let msg = js(&phone, "document.getElementById('deleted').innerText").await;
    assert!(msg.as_str().unwrap().contains("deleted"), "{msg}");
    screenshot(&phone, &artifacts().join("11-phone-deleted.png")).await;
    let gone = js(
        &phone,
        "Promise.all([fetch(location.href), fetch(location.href + '/video.mp4')]).then(rs => rs.map(r => r.status))",
    )
    .await;
    assert_eq!(gone, serde_json::json!([410, 404]));
    // The other phone is picked up again (a page out of sight checks when it comes back).
    other
        .bring_to_front()
        .await
        .expect("the other phone in front");
    wait_until(
        &other,
        "getComputedStyle(document.getElementById('deleted')).display !== 'none' && \
         document.getElementById('deleted-text').textContent.includes('One of you deleted')",
        30,
        "the other phone saying one of them deleted the clip",
        PHONE_STATE,
    )
    .await;
    screenshot(&other, &artifacts().join("11-other-phone-deleted.png")).await;
    let _ = other.close().await;
    phone
        .bring_to_front()
        .await
        .expect("the first phone in front");
    phone.reload().await.expect("reload");
    wait_until(
        &phone,
        "document.body && document.body.innerText.includes('This video was deleted') && \
         !document.body.innerText.includes('expired')",
        30,
        "the deleted-link page",
        PHONE_STATE,
    )
    .await;
    screenshot(&phone, &artifacts().join("12-phone-link-deleted.png")).await;
    let _ = phone.close().await;
}

/// Fails the test with every layout problem the screens recorded.
fn assert_no_layout_problems() {
    let layout = std::mem::take(&mut *LAYOUT_PROBLEMS.lock().unwrap());
    assert!(
        layout.is_empty(),
        "kiosk layout problems:\n{}",
        layout.join("\n")
    );
}

/// From the attract screen: a couple agrees, poses, sees their picture and asks for the clip.
async fn pose_and_ask_for_the_clip(kiosk: &Page) {
    tap(kiosk, "#start").await;
    kiosk_screen_is(kiosk, "consent", 30).await;
    tap(kiosk, "#agree").await;
    kiosk_screen_is(kiosk, "pose", 30).await;
    wait_until(
        kiosk,
        "!document.getElementById('shoot').disabled",
        30,
        "the gate to let the picture be taken",
        KIOSK_STATE,
    )
    .await;
    tap(kiosk, "#shoot").await;
    kiosk_screen_is(kiosk, "review", 90).await;
    wait_until(
        kiosk,
        "document.getElementById('still').complete && document.getElementById('still').naturalWidth > 0",
        30,
        "the captured still",
        KIOSK_STATE,
    )
    .await;
    tap(kiosk, "#make").await;
}

#[test]
fn scan_now_the_phone_follows_the_render_and_the_kiosk_forgets_the_clip_once_the_couple_leaves() {
    let name = "scan_now_the_phone_follows_the_render_and_the_kiosk_forgets_the_clip_once_the_couple_leaves";
    if !have_models(name) || !browser::have_chromium(name) {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let started = Instant::now();
    // A longer clip, so the phone sees the render move before it is done.
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = write_config(cfg_dir.path(), "[render]\nseconds = 8.0\n");
    let d = Daemon::start(&[fixture("couple_1280x720.jpg")], &["--config", &cfg]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let outcome = rt.block_on(async {
        let c = Chromium::launch(1280, 800).await;
        let result = tokio::time::timeout(Duration::from_secs(240), async {
            let kiosk = c.open(&d.url("/"), Device::KIOSK).await;
            kiosk_screen_is(&kiosk, "attract", 30).await;

            // The QR code and the short link are up as soon as the clip is queued.
            pose_and_ask_for_the_clip(&kiosk).await;
            kiosk_screen_is(&kiosk, "rendering", 30).await;
            wait_until(
                &kiosk,
                "(() => { const q = document.getElementById('render-qr'); return q.complete && q.naturalWidth > 0; })()",
                30,
                "the QR code on the rendering screen",
                KIOSK_STATE,
            )
            .await;
            let png = kiosk_shot(&kiosk, "14-rendering-scan-now", true).await;
            let rect = js(
                &kiosk,
                "JSON.parse(JSON.stringify(document.getElementById('render-qr').getBoundingClientRect()))",
            )
            .await;
            let url = decode_qr(&png, &rect);
            let view = js(&kiosk, "session").await;
            let id = view["id"].as_str().unwrap().to_string();
            assert_eq!(Some(url.as_str()), view["download_url"].as_str(), "{view}");
            let short = js(&kiosk, "document.getElementById('render-short').textContent").await;
            let short = short.as_str().unwrap().to_string();
            let code = short.rsplit('/').next().unwrap().to_string();
            assert!(
                short.starts_with(d.base.trim_start_matches("http://"))
                    && code.len() == 9
                    && code.as_bytes()[4] == b'-',
                "the short link reads like 10.42.0.1/d/ABCD-2345: {short}"
            );

            // The phone that scanned it follows the render, then plays the clip.
            let phone = c.open(&url, Device::PHONE).await;
            let first = js(
                &phone,
                "({ view: document.body.dataset.view, title: document.getElementById('wait-title').textContent })",
            )
            .await;
            assert_eq!(first["view"], "waiting", "the phone page while the clip is made: {first}");
            screenshot(&phone, &artifacts().join("15-phone-waiting.png")).await;

            // The couple scanned and leave: the next couple may start, and the kiosk shows
            // nothing of their clip again.
            kiosk.bring_to_front().await.expect("the kiosk in front");
            tap(&kiosk, "#next-couple").await;
            kiosk_screen_is(&kiosk, "attract", 30).await;
            let after = js(
                &kiosk,
                &format!(
                    "Promise.all([fetch('/api/sessions/{id}').then(r => r.json()), \
                       fetch('/api/sessions/{id}/qr.svg').then(r => r.status)]) \
                     .then(([v, qr]) => ({{ link: v.download_url, short: v.short_link, qr, \
                       videos: document.querySelectorAll('video[src]').length, \
                       rqr: document.getElementById('render-qr').getAttribute('src') }}))"
                ),
            )
            .await;
            assert!(
                after["link"].is_null() && after["short"].is_null() && after["qr"] != 200,
                "the kiosk still offers the clip of a couple who left: {after}"
            );
            assert_eq!(after["videos"], 0, "{after}");
            assert!(after["rqr"].is_null(), "{after}");

            phone.bring_to_front().await.expect("the phone in front");
            wait_until(
                &phone,
                "document.body.dataset.view === 'ready' && (() => { const v = document.getElementById('v'); return v.readyState >= 2 && v.currentTime > 0.2; })()",
                180,
                "the clip to play on the phone that scanned it while it was made",
                PHONE_STATE,
            )
            .await;
            screenshot(&phone, &artifacts().join("16-phone-ready-after-waiting.png")).await;
            // Released or not, the kiosk never plays it again.
            let kiosk_video = js(
                &kiosk,
                &format!("fetch('/api/sessions/{id}/video.mp4').then(r => r.status)"),
            )
            .await;
            assert_eq!(kiosk_video, 404, "the kiosk's copy of a clip whose couple left");
            let attract = js(&kiosk, "document.body.dataset.screen").await;
            assert_eq!(attract, "attract", "a finished clip never brings the kiosk back to it");

            // The other one has no camera: the short link, typed in lower case, opens the same clip.
            let typed = format!("{}/d/{}", d.base, code.to_lowercase());
            let other = c.open(&typed, Device::PHONE).await;
            wait_until(
                &other,
                "document.body.dataset.view === 'ready' && document.getElementById('v').readyState >= 2",
                60,
                "the clip through the short link",
                PHONE_STATE,
            )
            .await;
        })
        .await;
        c.close().await;
        result
    });
    if outcome.is_err() {
        panic!("the scan-now test ran over 240 s: {}", d.log());
    }
    assert_no_layout_problems();
    eprintln!(
        "scan now, watch when ready: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn with_no_camera_the_kiosk_says_so_and_comes_back_by_itself() {
    let name = "with_no_camera_the_kiosk_says_so_and_comes_back_by_itself";
    if !have_models(name) || !browser::have_chromium(name) {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // An empty stills folder: a booth whose camera is not plugged in.
    let d = Daemon::start(&[], &[]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let outcome = rt.block_on(async {
        let c = Chromium::launch(1280, 800).await;
        let result = tokio::time::timeout(Duration::from_secs(90), async {
            let kiosk = c.open(&d.url("/"), Device::KIOSK).await;
            kiosk_screen_is(&kiosk, "camera", 30).await;
            let text = js(&kiosk, "document.getElementById('camera-text').textContent").await;
            assert!(text.as_str().unwrap().contains("not connected"), "{text}");
            let start = js(
                &kiosk,
                "document.getElementById('start').getClientRects().length",
            )
            .await;
            assert_eq!(start, 0, "no start button while there is no camera");
            kiosk_shot(&kiosk, "00-camera-unavailable", true).await;
            // The camera is plugged in: the attract screen comes back by itself.
            std::fs::copy(
                fixture("couple_1280x720.jpg"),
                d.data.path().join("stills/000.jpg"),
            )
            .unwrap();
            kiosk_screen_is(&kiosk, "attract", 30).await;
        })
        .await;
        c.close().await;
        result
    });
    if outcome.is_err() {
        panic!("the camera test ran over 90 s: {}", d.log());
    }
    assert_no_layout_problems();
}

/// Logs in as the operator and posts an admin form (the page's own origin and CSRF token).
fn admin_post(d: &Daemon, path: &str, form: &str) -> u16 {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let cookie = admin_cookie(d);
    let mut page = agent
        .get(&d.url("/admin"))
        .header("cookie", &cookie)
        .call()
        .unwrap();
    let page = page.body_mut().read_to_string().unwrap();
    let at = page.find("name=\"csrf\" value=\"").unwrap() + 19;
    let csrf = &page[at..at + 32];
    agent
        .post(&d.url(path))
        .header("cookie", &cookie)
        .header("origin", &d.base)
        .header("content-type", "application/x-www-form-urlencoded")
        .send(format!("csrf={csrf}&{form}"))
        .unwrap()
        .status()
        .as_u16()
}

#[test]
fn a_closed_booth_says_so_on_the_kiosk_and_opens_again() {
    let name = "a_closed_booth_says_so_on_the_kiosk_and_opens_again";
    if !have_models(name) || !browser::have_chromium(name) {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let d = Daemon::start(&[fixture("couple_1280x720.jpg")], &[]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let outcome = rt.block_on(async {
        let c = Chromium::launch(1280, 800).await;
        let result = tokio::time::timeout(Duration::from_secs(90), async {
            let kiosk = c.open(&d.url("/"), Device::KIOSK).await;
            kiosk_screen_is(&kiosk, "attract", 30).await;
            // The operator closes the booth on the admin page: the kiosk says so at once.
            assert_eq!(admin_post(&d, "/admin/open", "open=no"), 303);
            kiosk_screen_is(&kiosk, "closed", 10).await;
            let start = js(
                &kiosk,
                "document.getElementById('start').getClientRects().length",
            )
            .await;
            assert_eq!(start, 0, "no start button on a closed booth");
            kiosk_shot(&kiosk, "00-closed", true).await;
            // Reloaded (a restarted kiosk), it is still closed.
            kiosk.reload().await.expect("reload");
            kiosk_screen_is(&kiosk, "closed", 30).await;
            // Opened again: the attract screen comes back by itself.
            assert_eq!(admin_post(&d, "/admin/open", "open=yes"), 303);
            kiosk_screen_is(&kiosk, "attract", 10).await;
            // The event's settings reach the kiosk without a restart: its name on the attract
            // screen, the consent screen's promise, the countdown.
            let form = "event_name=Summer+Ball&countdown_s=4&clip_seconds=5&shape=square&\
                        retention_hours=2&wifi_ssid=&wifi_password=&wifi_security=WPA&\
                        logo_corner=top_right&logo_width_pct=22";
            assert_eq!(admin_post(&d, "/admin/settings", form), 303);
            wait_until(
                &kiosk,
                "document.querySelector('#attract .event-name').textContent === 'Summer Ball' && \
                 !document.querySelector('#attract .event-name').hidden",
                10,
                "the event's name on the attract screen",
                KIOSK_STATE,
            )
            .await;
            kiosk_shot(&kiosk, "01-attract-event-name", false).await;
            tap(&kiosk, "#start").await;
            kiosk_screen_is(&kiosk, "consent", 10).await;
            let promise = js(&kiosk, "document.getElementById('consent').textContent").await;
            assert!(
                promise.as_str().unwrap().contains("deleted after 2 hours"),
                "{promise}"
            );
            assert_eq!(js(&kiosk, "countdownS").await, 4);
            tap(&kiosk, "#decline").await;
            kiosk_screen_is(&kiosk, "attract", 10).await;
            // "End of event" closes it too.
            assert_eq!(admin_post(&d, "/admin/end-of-event", "confirm=yes"), 200);
            kiosk_screen_is(&kiosk, "closed", 10).await;
        })
        .await;
        c.close().await;
        result
    });
    if outcome.is_err() {
        panic!("the closed-booth test ran over 90 s: {}", d.log());
    }
    assert_no_layout_problems();
}

#[test]
fn the_attract_screen_plays_the_demo_clip_made_at_install_from_the_paintings_only() {
    let name = "the_attract_screen_plays_the_demo_clip_made_at_install_from_the_paintings_only";
    if !have_models(name) || !browser::have_chromium(name) {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let d = Daemon::start(&[fixture("couple_1280x720.jpg")], &[]);
    let demo = |from: &Path| {
        kissbooth()
            .arg("--data")
            .arg(d.data.path())
            .args([
                "models",
                "demo",
                "--size",
                "256x256",
                "--seconds",
                "3",
                "--from",
            ])
            .arg(from)
            .output()
            .unwrap()
    };
    // A picture that is not one of the bundled paintings (here a camera frame standing in for
    // a guest's picture, under the paintings' names) is refused: the attract screen never shows
    // anyone who did not agree to it.
    let other = tempfile::tempdir().unwrap();
    for f in [
        "Baldassare_Castiglione.jpg",
        "Girl_with_a_Pearl_Earring.jpg",
    ] {
        std::fs::copy(fixture("couple_1280x720.jpg"), other.path().join(f)).unwrap();
    }
    let out = demo(other.path());
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not the bundled photograph"),
        "{:?}",
        stderr_lines(&out)
    );
    let clip = d.data.path().join("attract/demo.mp4");
    assert!(!clip.exists());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let outcome = rt.block_on(async {
        let c = Chromium::launch(1280, 800).await;
        let result = tokio::time::timeout(Duration::from_secs(150), async {
            let kiosk = c.open(&d.url("/"), Device::KIOSK).await;
            kiosk_screen_is(&kiosk, "attract", 30).await;
            let hidden = js(&kiosk, "document.getElementById('demo').hidden").await;
            assert_eq!(hidden, true, "no demo clip yet: the attract screen shows none");
            // Install time: the clip from the bundled paintings; the running kiosk picks it up.
            let out = demo(fixture("couple_1280x720.jpg").parent().unwrap());
            assert!(out.status.success(), "{:?}", stderr_lines(&out));
            assert!(clip.is_file());
            wait_until(
                &kiosk,
                "(() => { const v = document.getElementById('demo-clip'); \
                   return !document.getElementById('demo').hidden && v.readyState >= 2 && v.currentTime > 0.2 && !v.paused; })()",
                60,
                "the demo clip playing on the attract screen",
                KIOSK_STATE,
            )
            .await;
            kiosk_shot(&kiosk, "01-attract-demo", true).await;
            // It plays only there.
            tap(&kiosk, "#start").await;
            kiosk_screen_is(&kiosk, "consent", 30).await;
            let paused = js(&kiosk, "document.getElementById('demo-clip').paused").await;
            assert_eq!(paused, true, "the demo clip plays only on the attract screen");
            tap(&kiosk, "#decline").await;
            kiosk_screen_is(&kiosk, "attract", 30).await;
        })
        .await;
        c.close().await;
        result
    });
    if outcome.is_err() {
        panic!("the attract test ran over 150 s: {}", d.log());
    }
    assert_no_layout_problems();
}

/// Waits up to 30 s for `cond` on a page that is loading a form's answer (while the old page
/// goes away an evaluation may fail; it is tried again).
async fn after_navigation(page: &Page, cond: &str, what: &str) {
    let t = Instant::now();
    loop {
        if let Ok(v) = page.evaluate(format!("Boolean({cond})")).await
            && v.into_value::<bool>().unwrap_or(false)
        {
            return;
        }
        if t.elapsed() > Duration::from_secs(30) {
            panic!("waited 30 s for {what}: {}", js(page, PHONE_STATE).await);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Types into the field the way a keyboard does.
async fn type_into(page: &Page, selector: &str, text: &str) {
    page.find_element(selector)
        .await
        .unwrap_or_else(|e| panic!("{selector}: {e}"))
        .click()
        .await
        .unwrap()
        .type_str(text)
        .await
        .unwrap();
}

#[test]
fn at_first_boot_the_kiosk_asks_for_the_admin_password_and_the_operator_logs_in_with_it() {
    let name =
        "at_first_boot_the_kiosk_asks_for_the_admin_password_and_the_operator_logs_in_with_it";
    if !have_models(name) || !browser::have_chromium(name) {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let started = Instant::now();
    let d = Daemon::start_with(
        &[fixture("couple_1280x720.jpg")],
        &[],
        Start {
            admin_password: None,
            ..Start::default()
        },
    );
    let password = "operator picked this";
    let rt = tokio::runtime::Runtime::new().unwrap();
    let outcome = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(120), async {
        // The kiosk at first boot: the set-up screen, not the attract screen.
            let c = Chromium::launch(1280, 800).await;
            let kiosk = c.open(&d.url("/"), Device::KIOSK).await;
            kiosk_screen_is(&kiosk, "setup", 30).await;
            kiosk_shot(&kiosk, "00-first-boot-password", true).await;

            // "Not now" lets the guests in; the next start asks again.
            tap(&kiosk, "#setup-later").await;
            kiosk_screen_is(&kiosk, "attract", 10).await;
            kiosk.reload().await.expect("reload");
            kiosk_screen_is(&kiosk, "setup", 30).await;

            // Left alone, the set-up screen does not stay up for a guest to find: after the
            // "Still there?" countdown it goes back to attract, with what was typed cleared.
            type_into(&kiosk, "#setup-password", "half typed").await;
            js(&kiosk, "idleScale = 0.05; countScale = 0.05; armIdle()").await;
            kiosk_screen_is(&kiosk, "attract", 20).await;
            let left = js(&kiosk, "document.getElementById('setup-password').value").await;
            assert_eq!(left, "", "the set-up screen's fields are cleared when it times out");
            js(&kiosk, "idleScale = 1; countScale = 1").await;
            kiosk.reload().await.expect("reload");
            kiosk_screen_is(&kiosk, "setup", 30).await;

            // A guest without the set-up code cannot choose the password.
            type_into(&kiosk, "#setup-code", "1234-5678").await;
            type_into(&kiosk, "#setup-password", password).await;
            type_into(&kiosk, "#setup-confirm", password).await;
            tap(&kiosk, "#setup-save").await;
            wait_until(
                &kiosk,
                "document.getElementById('setup-msg').textContent.includes('set-up code is not right')",
                10,
                "the wrong-code message",
                KIOSK_STATE,
            )
            .await;
            kiosk_shot(&kiosk, "00-first-boot-wrong-code", false).await;
            let status = js(&kiosk, "fetch('/api/status').then(r => r.json())").await;
            assert_eq!(status["admin_setup_needed"], true, "{status}");

            // The operator types the code from the booth's log.
            let code = setup_code_in_log(&d.log()).expect("the set-up code in the daemon's log");
            js(
                &kiosk,
                "['setup-code', 'setup-password', 'setup-confirm'].forEach(f => document.getElementById(f).value = '')",
            )
            .await;
            type_into(&kiosk, "#setup-code", &code).await;

            // Two different passwords: said so, nothing set.
            type_into(&kiosk, "#setup-password", password).await;
            type_into(&kiosk, "#setup-confirm", "operator picked that").await;
            tap(&kiosk, "#setup-save").await;
            wait_until(
                &kiosk,
                "document.getElementById('setup-msg').textContent.includes('not the same')",
                10,
                "the mismatch message",
                KIOSK_STATE,
            )
            .await;
            kiosk_screen_is(&kiosk, "setup", 1).await;

            // The same twice: saved, and the guests' attract screen comes up.
            js(&kiosk, "document.getElementById('setup-confirm').value = ''").await;
            type_into(&kiosk, "#setup-confirm", password).await;
            tap(&kiosk, "#setup-save").await;
            kiosk_screen_is(&kiosk, "attract", 30).await;
            let fields = js(
                &kiosk,
                "['setup-code', 'setup-password', 'setup-confirm'].map(f => document.getElementById(f).value).join('')",
            )
            .await;
            assert_eq!(fields, "", "the password does not stay in the page");
            let status = js(&kiosk, "fetch('/api/status').then(r => r.json())").await;
            assert_eq!(status["admin_setup_needed"], false, "{status}");
            // Reloaded (the next start), the kiosk goes straight to attract.
            kiosk.reload().await.expect("reload");
            kiosk_screen_is(&kiosk, "attract", 30).await;
            c.close().await;

            // The operator's phone, a fresh browser profile: /admin leads to the login form.
            let c = Chromium::launch(390, 844).await;
            let phone = c.open(&d.url("/admin"), Device::PHONE).await;
            wait_until(
                &phone,
                "location.pathname === '/admin/login' && !!document.querySelector('input[name=password]')",
                30,
                "the admin login form",
                PHONE_STATE,
            )
            .await;
            screenshot(&phone, &artifacts().join("20-admin-login.png")).await;
            type_into(&phone, "input[name=password]", "a wrong guess").await;
            tap(&phone, "button[type=submit]").await;
            after_navigation(
                &phone,
                "document.body && document.body.innerText.includes('Wrong password')",
                "the wrong-password message",
            )
            .await;
            type_into(&phone, "input[name=password]", password).await;
            tap(&phone, "button[type=submit]").await;
            after_navigation(
                &phone,
                "location.pathname === '/admin' && document.body.innerText.includes('Booth health')",
                "the health page",
            )
            .await;
            let page = js(&phone, "({ text: document.body.innerText, cookie: document.cookie, scroll: document.scrollingElement.scrollWidth, width: innerWidth })").await;
            let text = page["text"].as_str().unwrap();
            for words in ["Sessions by state", "Render times", "Temperatures", "GPU load", "End of event", "Log out"] {
                assert!(text.contains(words), "the health page lacks {words:?}: {text}");
            }
            assert_eq!(page["cookie"], "", "scripts cannot read the session cookie");
            assert!(
                page["scroll"].as_f64().unwrap() <= page["width"].as_f64().unwrap(),
                "the health page scrolls sideways: {page}"
            );
            screenshot(&phone, &artifacts().join("21-admin-health.png")).await;
            // The settings page, on the operator's phone: no sideways scrolling either.
            phone.goto(d.url("/admin/settings")).await.expect("settings page");
            wait_until(
                &phone,
                "!!document.querySelector('input[name=event_name]')",
                30,
                "the settings page",
                PHONE_STATE,
            )
            .await;
            let wide = js(
                &phone,
                "document.scrollingElement.scrollWidth <= document.documentElement.clientWidth",
            )
            .await;
            assert_eq!(wide, true, "the settings page scrolls sideways");
            screenshot(&phone, &artifacts().join("22-admin-settings.png")).await;
            let _ = phone.close().await;
            c.close().await;
        })
        .await
    });
    if outcome.is_err() {
        panic!("the first-boot test ran over 120 s: {}", d.log());
    }
    assert_no_layout_problems();
    eprintln!(
        "first boot to the admin health page in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn a_hot_booth_tells_the_couple_it_is_cooling_down_then_makes_their_clip() {
    let name = "a_hot_booth_tells_the_couple_it_is_cooling_down_then_makes_their_clip";
    if !have_models(name) || !browser::have_chromium(name) {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // A sysfs tree laid out like a Jetson's, over the hard limit from the start.
    let sys = tempfile::tempdir().unwrap();
    let zone = sys.path().join("sys/class/thermal/thermal_zone0");
    std::fs::create_dir_all(&zone).unwrap();
    std::fs::write(zone.join("type"), "gpu-thermal\n").unwrap();
    std::fs::write(zone.join("temp"), "95000\n").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("kissbooth.toml");
    std::fs::write(
        &config,
        format!(
            "[render]\nseconds = 3.0\nfps = 8\nwidth = 256\nheight = 256\n\
             [thermal]\nsysfs_root = {:?}\npoll_ms = 200\n",
            sys.path().display().to_string()
        ),
    )
    .unwrap();
    let d = Daemon::start(
        &[fixture("couple_1280x720.jpg")],
        &["--config", config.to_str().unwrap()],
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let outcome = rt.block_on(async {
        let c = Chromium::launch(1280, 800).await;
        let result = tokio::time::timeout(Duration::from_secs(180), async {
            let kiosk = c.open(&d.url("/"), Device::KIOSK).await;
            kiosk_screen_is(&kiosk, "attract", 30).await;
            pose_and_ask_for_the_clip(&kiosk).await;
            kiosk_screen_is(&kiosk, "rendering", 30).await;
            wait_until(
                &kiosk,
                "document.getElementById('render-title').textContent.includes('cooling down')",
                30,
                "the cooling-down message",
                KIOSK_STATE,
            )
            .await;
            // No estimate: how long cooling takes is not known.
            let eta = js(&kiosk, "document.getElementById('eta').textContent").await;
            assert_eq!(eta, "", "estimate while cooling");
            kiosk_shot(&kiosk, "14-cooling-down", false).await;
            // Cooled: the clip is made and shown.
            std::fs::write(zone.join("temp"), "60000\n").unwrap();
            kiosk_screen_is(&kiosk, "result", 120).await;
        })
        .await;
        c.close().await;
        result
    });
    if outcome.is_err() {
        panic!("the cooling test ran over 180 s: {}", d.log());
    }
    assert_no_layout_problems();
}
