// Kissbooth kiosk: attract → consent → pose → countdown → capture → review → rendering → result.
// The server keeps the session state and pushes changes over server-sent events; the kiosk also
// polls the sessions it waits for, so a dropped event stream never leaves a couple stuck.
"use strict";
const $ = (id) => document.getElementById(id);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let session = null;
let renderWatch = null;      // the session whose rendering screen is up
let onScreen = null;          // the session whose clip (QR code, video) the kiosk shows
let shownView = null;         // the latest view of the result screen's session
let renderClock = null;       // first sight of a render's progress, for an estimate from its real speed
let cameraTrouble = null;     // the camera's trouble, when it sends no pictures (else null)
let liveVerdict = null;      // the face gate's latest word on the live preview (sent when it changes)
let idleTimer = null;
let idleScale = 1;            // shortens every idle wait (tests)
let countScale = 1;           // shortens the "Still there?" countdown's seconds (tests)
let stillThereTimer = null;
const IDLE_S = { consent: 60, pose: 90, review: 90, result: 120, problem: 30, setup: 120 };
const WARN_S = 15;            // the "Still there?" countdown, seconds
let shooting = false;
let closed = false;           // the operator closed the booth
let countdownS = 3;           // the operator's countdown, seconds

// What the kiosk does with a session in each of the server's states (daemon/src/session.rs;
// a test checks this list against it): "screen" while the couple is at the screen, "waiting"
// while the clip is made, "ready" once it is, "ended" when there will be no clip, with the
// kiosk's message.
const SESSION_STATES = {
  consent: "screen",
  pose: "screen",
  review: "screen",
  queued: "waiting",
  rendering: "waiting",
  done: "ready",
  failed: ["ended", "Something went wrong while making your video."],
  cancelled: ["ended", "This session was cancelled."],
  expired: ["ended", "This video was deleted: its time on the booth was up."],
  purged: ["ended", "The event has ended: every video was deleted."],
  deleted: ["ended", "This video was deleted at the guests' request."],
};
const stateKind = (state) => [SESSION_STATES[state] || "ended"].flat()[0];
const stateMessage = (state) =>
  [SESSION_STATES[state]].flat()[1] || "Something went wrong while making your video.";

function show(name) {
  if (name === "attract" && closed) name = "closed";
  if (name === "attract" && cameraTrouble) name = "camera";
  document.querySelectorAll(".screen").forEach((s) =>
    s.classList.toggle("active", s.dataset.screen.split(" ").includes(name)));
  document.body.dataset.screen = name;
  // The live preview streams only while someone is posing; it keeps running through the countdown.
  const live = name === "pose" || name === "countdown";
  const p = $("preview");
  if (live && !p.getAttribute("src")) p.src = "/api/preview.mjpg";
  if (!live && p.getAttribute("src")) p.removeAttribute("src");
  if (name !== "result" && $("clip").getAttribute("src")) {
    $("clip").pause();
    $("clip").removeAttribute("src");
    $("clip").load();
  }
  if (name === "pose") setGate(liveVerdict);
  // The demo clip plays only while the attract screen shows it.
  const demo = $("demo-clip");
  if (name === "attract" && demo.getAttribute("src")) demo.play().catch(() => {});
  else demo.pause();
  // A couple who leave their clip's screens (rendering, result) take it with them: the kiosk
  // shows nothing of it again, and the daemon stops serving it to the kiosk.
  if (name !== "rendering" && name !== "result" && onScreen) {
    const id = onScreen;
    onScreen = null;
    $("render-qr").removeAttribute("src");
    $("qr").removeAttribute("src");
    api("POST", `/api/sessions/${id}/release`).catch(() => {});
  }
  armIdle();
}

// A screen left alone goes back to attract (result stays up longer for scanning), after a
// visible "Still there?" countdown that any tap cancels. `idleScale` shortens every wait (tests).
function armIdle() {
  clearTimeout(idleTimer);
  clearInterval(stillThereTimer);
  $("still-there").hidden = true;
  const idle = IDLE_S[document.body.dataset.screen];
  if (!idle) return;
  idleTimer = setTimeout(stillThere, Math.max(0, idle - WARN_S) * 1000 * idleScale);
}
function stillThere() {
  // A phone still downloading the clip keeps the result screen up.
  if (document.body.dataset.screen === "result" && shownView && shownView.downloading > 0) { armIdle(); return; }
  let left = WARN_S;
  $("still-there-count").textContent = left;
  $("still-there").hidden = false;
  stillThereTimer = setInterval(() => {
    left -= 1;
    $("still-there-count").textContent = Math.max(0, left);
    if (left <= 0) {
      clearInterval(stillThereTimer);
      $("still-there").hidden = true;
      reset();
    }
  }, 1000 * countScale);
}
// Any touch counts as someone being there: the wait starts again.
document.addEventListener("pointerdown", () => { if (IDLE_S[document.body.dataset.screen]) armIdle(); }, true);
$("still-here").onclick = () => armIdle();

// A dropped preview stream (server restart) reconnects while it is wanted.
$("preview").onerror = () => setTimeout(() => {
  const live = ["pose", "countdown"].includes(document.body.dataset.screen);
  if (live) $("preview").src = `/api/preview.mjpg?r=${Date.now()}`;
}, 1000);

async function api(method, path, body) {
  const r = await fetch(path, { method, headers: body ? { "content-type": "application/json" } : {},
    body: body ? JSON.stringify(body) : undefined });
  const data = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(data.error || "Something went wrong. Please try again.");
  return data;
}

function problem(message, button = "Start again") {
  $("problem-text").textContent = message;
  $("problem-ok").textContent = button;
  show("problem");
}

function reset() {
  clearSetup();
  if (session && stateKind(session.state) === "screen") {
    api("POST", `/api/sessions/${session.id}/cancel`).catch(() => {});
  }
  session = null;
  show("attract");
}

$("start").onclick = async () => {
  try {
    session = await api("POST", "/api/sessions");
    $("album").checked = false; // each couple decides for themselves
    show("consent");
  } catch (e) { problem(e.message); }
};
$("decline").onclick = () => reset();
$("agree").onclick = async () => {
  try {
    session = await api("POST", `/api/sessions/${session.id}/consent`, { people: 2, accepted: true, album: $("album").checked });
    show("pose");
  }
  catch (e) { problem(e.message); }
};
$("pose-cancel").onclick = () => reset();

$("shoot").onclick = async () => {
  if (shooting || $("shoot").disabled) return;
  shooting = true;
  show("countdown");
  $("count-note").textContent = "Look at the camera!";
  for (let n = countdownS; n >= 1; n--) { $("count").textContent = n; await sleep(1000); }
  $("count").textContent = "";
  $("count-note").textContent = "Hold still…";
  $("flash").classList.remove("go");
  void $("flash").offsetWidth; // restart the animation
  $("flash").classList.add("go");
  try {
    const r = await api("POST", `/api/sessions/${session.id}/capture`);
    session = r.session;
    if (r.verdict.ok) {
      $("still").src = `${session.capture_url}?t=${Date.now()}`;
      show("review");
    } else {
      // Someone moved during the countdown: back to the preview, saying what to fix.
      show("pose");
      setGate(r.verdict, true);
      // The button follows the live preview (its verdict comes only when it changes).
      $("shoot").disabled = !(liveVerdict && liveVerdict.ok);
    }
  } catch (e) { problem(e.message); } finally { shooting = false; }
};
$("retake").onclick = async () => {
  try { session = await api("POST", `/api/sessions/${session.id}/retake`); show("pose"); } catch (e) { problem(e.message); }
};
$("make").onclick = async () => {
  $("make").disabled = true;
  try {
    session = await api("POST", `/api/sessions/${session.id}/render`);
    renderWatch = session.id;
    onScreen = session.id;
    renderClock = null;
    $("render-still").src = $("still").src;
    // Scan now, watch when ready: the link works from the moment the clip is queued.
    $("render-qr").src = `/api/sessions/${session.id}/qr.svg`;
    $("render-short").textContent = session.short_link || "";
    showRender(session);
    show("rendering");
  } catch (e) { problem(e.message); } finally { $("make").disabled = false; }
};
$("next-couple").onclick = () => {
  renderWatch = null;
  session = null;
  $("render-still").removeAttribute("src");
  show("attract");
};
$("done").onclick = () => { renderWatch = null; reset(); };
$("problem-ok").onclick = () => reset();

// The picture can be taken only while the live gate is satisfied; until then the gate says
// what to fix.
function setGate(v, retake = false) {
  const g = $("gate");
  if (cameraTrouble) v = { ok: false, message: cameraTrouble };
  $("shoot").disabled = !(v && v.ok);
  if (!v) { g.textContent = "Stand side by side and look at the camera"; g.className = "gate"; return; }
  g.textContent = retake ? `Let's take it again. ${v.message}` : v.message;
  g.className = "gate " + (v.ok ? "ok" : "bad");
}

// Seconds left, from the render's own measured speed once it has moved a little, else the
// server's estimate (recent renders on this booth).
function secondsLeft(v) {
  if (v.state !== "rendering") return v.eta_s;
  const now = performance.now() / 1000, p = v.progress || 0;
  if (!renderClock || renderClock.id !== v.id) renderClock = { id: v.id, t0: now, p0: p };
  const dt = now - renderClock.t0, dp = p - renderClock.p0;
  if (dt > 1 && dp > 0.03) return (1 - p) * dt / dp;
  return v.eta_s;
}

function fmtEta(s, progress) {
  if (s == null) return "";
  if (s < 5) return progress >= 0.8 ? "Almost there…" : "A few seconds left";
  if (s < 60) return `About ${Math.ceil(s / 5) * 5} seconds left`;
  const m = Math.ceil(s / 60);
  return `About ${m} minute${m > 1 ? "s" : ""} left`;
}

function showRender(v) {
  const p = v.state === "rendering" ? (v.progress || 0) : 0;
  $("bar-fill").style.width = `${Math.max(1, Math.round(p * 100))}%`;
  $("percent").textContent = v.state === "rendering" ? `${Math.round(p * 100)}%` : "";
  if (v.state === "queued" && v.cooling) {
    // Above the hard temperature limit renders wait; the clip is kept in line.
    $("render-title").textContent = "The booth is cooling down. Your video is in line…";
  } else if (v.state === "queued") {
    const ahead = v.queue_position || 0;
    $("render-title").textContent = ahead === 0 ? "Your video is next…" : `Your video is in line: ${ahead} ahead of yours`;
  } else {
    $("render-title").textContent = "Making your video…";
  }
  $("eta").textContent = fmtEta(secondsLeft(v), p);
}

// The clip whose QR code the result screen shows.
let shown = null;

function showResult(v) {
  shown = v.id;
  shownView = v;
  onScreen = v.id;
  $("clip").src = v.video_url;
  $("qr").src = `/api/sessions/${v.id}/qr.svg`;
  $("short-link").textContent = v.short_link || "";
  const hours = v.expires_at ? Math.round((v.expires_at - Date.now() / 1000) / 3600) : 24;
  $("link-note").textContent = hours >= 1
    ? `Each of you can scan it. The link works for ${hours} hour${hours > 1 ? "s" : ""}.`
    : "Each of you can scan it. The link works for less than an hour.";
  show("result");
}

function onSession(v) {
  if (session && v.id === session.id) session = v;
  if (v.id === shown) shownView = v;
  // Deleted from a phone (or expired, or the event ended) while its QR code is on screen: the
  // code and the clip go at once.
  if (v.id === shown && stateKind(v.state) === "ended") {
    shown = null;
    $("qr").removeAttribute("src");
    if (document.body.dataset.screen === "result") problem(stateMessage(v.state), "OK");
    return;
  }
  if (v.id !== renderWatch) return;
  const kind = stateKind(v.state);
  if (kind === "waiting") {
    if (document.body.dataset.screen === "rendering") showRender(v);
  } else if (kind === "ready") {
    renderWatch = null;
    $("render-still").removeAttribute("src");
    showResult(v);
  } else if (kind === "ended") {
    // Failed, cancelled, or deleted while it was made (the end of the event, retention):
    // never a rendering screen left waiting for ever.
    renderWatch = null;
    $("render-still").removeAttribute("src");
    problem(v.error || stateMessage(v.state));
  }
}

// "24 hours", "1 hour", "90 minutes", "3 days".
function fmtHours(h) {
  if (h < 1.5) return h === 1 ? "1 hour" : `${Math.round(h * 60)} minutes`;
  if (h >= 48 && h % 24 === 0) return `${h / 24} days`;
  return `${Math.round(h * 10) / 10} hours`;
}

function onStatus(s) {
  // The operator's settings for this event (admin page), for the next couple.
  if (s.event) {
    countdownS = s.event.countdown_s || 3;
    $("retention").textContent = fmtHours(s.event.retention_hours || 24);
    document.querySelectorAll(".event-name").forEach((e) => {
      e.textContent = s.event.name || "";
      e.hidden = !s.event.name;
    });
  }
  const trouble = s.camera.state === "reconnecting" || s.camera.state === "stalled";
  $("camera-banner").hidden = !trouble;
  if (s.camera.message) $("camera-banner").textContent = s.camera.message;
  // No picture coming: the pose screen must not show a frozen frame saying "Looking great!".
  const was = cameraTrouble;
  cameraTrouble = trouble ? s.camera.message || "The camera is reconnecting…" : null;
  // Only when it changes: the gate's own word (a retake's reason) stays up between polls.
  if (cameraTrouble !== was && document.body.dataset.screen === "pose") setGate(liveVerdict);
  // Nobody starts a session the camera cannot picture: the attract screen gives way to the
  // camera screen until pictures come again.
  if (cameraTrouble) $("camera-text").textContent = cameraTrouble;
  closed = !!s.closed;
  const screen = document.body.dataset.screen;
  // Closed by the operator: the attract screen says so; couples already at the screen finish.
  if (closed && (screen === "attract" || screen === "camera")) show("closed");
  else if (!closed && screen === "closed") show("attract");
  else if (cameraTrouble && screen === "attract") show("camera");
  else if (!cameraTrouble && screen === "camera") show("attract");
  $("camera-banner").hidden = !trouble || ["camera", "closed"].includes(document.body.dataset.screen);
  // What the booth makes: the demo clip from the bundled paintings, never a guest's.
  if (s.attract_clip && !$("demo-clip").getAttribute("src")) {
    $("demo-clip").src = "/api/attract.mp4";
    $("demo").hidden = false;
    document.body.classList.add("has-demo");
    if (document.body.dataset.screen === "attract") $("demo-clip").play().catch(() => {});
  }
  $("wifi").hidden = !s.wifi;
  document.body.classList.toggle("wifi-on", !!s.wifi);
  // The Wi-Fi may change on the admin page: the code is fetched again when it does.
  const wifiKey = s.wifi ? (s.event && s.event.wifi_key) || "on" : "";
  if (s.wifi && $("wifi-qr").dataset.key !== wifiKey) {
    $("wifi-qr").dataset.key = wifiKey;
    $("wifi-qr").src = `/api/wifi-qr.svg?v=${Date.now()}`;
  }
}

function connect() {
  const es = new EventSource("/api/events");
  es.onmessage = (ev) => {
    const m = JSON.parse(ev.data);
    if (m.type === "session") onSession(m.session);
    if (m.type === "preview") { liveVerdict = m.verdict; setGate(m.verdict); }
    if (m.type === "status") onStatus(m.status);
  };
  es.onerror = () => { es.close(); setTimeout(connect, 2000); };
}

async function poll() {
  try { onStatus(await api("GET", "/api/status")); } catch (_) { /* the server may be restarting */ }
  for (const id of [renderWatch, shown]) {
    if (!id) continue;
    try { onSession(await api("GET", `/api/sessions/${id}`)); } catch (_) { /* next time */ }
  }
}

// First boot: until an admin password is set, the kiosk asks the operator for one when it starts.
// "Not now" lets guests in; the question comes back at the next start.
async function firstBoot() {
  let s;
  try { s = await api("GET", "/api/status"); } catch (_) { return; }
  if (!s.admin_setup_needed || document.body.dataset.screen !== "attract" || session) return;
  if (s.admin_url) $("admin-url").textContent = s.admin_url;
  $("setup-msg").textContent = "";
  show("setup");
  $("setup-code").focus();
}
$("setup-form").onsubmit = async (ev) => {
  ev.preventDefault();
  const password = $("setup-password").value, confirm = $("setup-confirm").value, code = $("setup-code").value;
  if (password !== confirm) { $("setup-msg").textContent = "The two passwords are not the same."; return; }
  $("setup-save").disabled = true;
  try {
    await api("POST", "/api/admin/setup", { password, confirm, code });
    clearSetup();
    show("attract");
  } catch (e) {
    $("setup-msg").textContent = e.message;
  } finally {
    $("setup-save").disabled = false;
  }
};
function clearSetup() {
  for (const f of ["setup-code", "setup-password", "setup-confirm"]) $(f).value = "";
}
$("setup-later").onclick = () => {
  clearSetup();
  show("attract");
};

connect();
setInterval(poll, 3000);
show("attract");
firstBoot();
