// Kissbooth kiosk: attract → consent → pose → countdown → capture → review → rendering → result.
// The server keeps the session state and pushes changes over server-sent events.
"use strict";
const $ = (id) => document.getElementById(id);
let session = null;
let renderWatch = null;
let idleTimer = null;

function show(name) {
  document.querySelectorAll(".screen").forEach((s) => s.classList.toggle("active", s.dataset.screen === name));
  document.body.dataset.screen = name;
  $("preview").src = name === "pose" ? "/api/preview.mjpg" : "";
  clearTimeout(idleTimer);
  // A screen left alone goes back to attract (result stays up longer for scanning).
  const idle = { consent: 60, pose: 90, review: 90, result: 120, problem: 30 }[name];
  if (idle) idleTimer = setTimeout(reset, idle * 1000);
}

async function api(method, path, body) {
  const r = await fetch(path, { method, headers: body ? { "content-type": "application/json" } : {},
    body: body ? JSON.stringify(body) : undefined });
  const data = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(data.error || "Something went wrong. Please try again.");
  return data;
}

function problem(message) {
  $("problem-text").textContent = message;
  show("problem");
}

function reset() {
  if (session && ["consent", "pose", "review"].includes(session.state)) {
    api("POST", `/api/sessions/${session.id}/cancel`).catch(() => {});
  }
  session = null;
  show("attract");
}

$("start").onclick = async () => {
  try { session = await api("POST", "/api/sessions"); show("consent"); } catch (e) { problem(e.message); }
};
$("decline").onclick = () => reset();
$("agree").onclick = async () => {
  try { session = await api("POST", `/api/sessions/${session.id}/consent`, { people: 2, accepted: true }); show("pose"); }
  catch (e) { problem(e.message); }
};
$("pose-cancel").onclick = () => reset();

$("shoot").onclick = async () => {
  show("countdown");
  for (const n of [3, 2, 1]) { $("count").textContent = n; await new Promise((r) => setTimeout(r, 1000)); }
  $("count").textContent = "📸";
  try {
    const r = await api("POST", `/api/sessions/${session.id}/capture`);
    session = r.session;
    if (r.verdict.ok) {
      $("still").src = `${session.capture_url}?t=${Date.now()}`;
      show("review");
    } else {
      show("pose");
      setGate(r.verdict);
    }
  } catch (e) { problem(e.message); }
};
$("retake").onclick = async () => {
  try { session = await api("POST", `/api/sessions/${session.id}/retake`); show("pose"); } catch (e) { problem(e.message); }
};
$("make").onclick = async () => {
  $("make").disabled = true;
  try {
    session = await api("POST", `/api/sessions/${session.id}/render`);
    renderWatch = session.id;
    showRender(session);
    show("rendering");
  } catch (e) { problem(e.message); } finally { $("make").disabled = false; }
};
$("next-couple").onclick = () => { session = null; show("attract"); };
$("done").onclick = () => { renderWatch = null; reset(); };
$("problem-ok").onclick = () => reset();

function setGate(v) {
  const g = $("gate");
  if (!v) { g.textContent = "Step into the frame"; g.className = "gate"; return; }
  g.textContent = v.message;
  g.className = "gate " + (v.ok ? "ok" : "bad");
}

function fmtEta(s) {
  if (s == null) return "";
  if (s < 5) return "Almost there…";
  if (s < 60) return `About ${Math.ceil(s / 5) * 5} seconds`;
  return `About ${Math.ceil(s / 60)} minute${s >= 120 ? "s" : ""}`;
}

function showRender(v) {
  $("bar-fill").style.width = `${Math.round((v.progress || 0) * 100)}%`;
  $("render-title").textContent = v.state === "queued" ? `Your video is in line (${(v.queue_position || 0) + 1})…` : "Making your video…";
  $("eta").textContent = fmtEta(v.eta_s);
}

function showResult(v) {
  $("clip").src = v.video_url;
  $("qr").src = `/api/sessions/${v.id}/qr.svg`;
  show("result");
}

function onSession(v) {
  if (session && v.id === session.id) session = v;
  if (v.id !== renderWatch) return;
  if (v.state === "queued" || v.state === "rendering") {
    if (document.body.dataset.screen === "rendering") showRender(v);
  } else if (v.state === "done") {
    renderWatch = null;
    showResult(v);
  } else if (v.state === "failed") {
    renderWatch = null;
    problem(v.error || "Something went wrong while making your video.");
  }
}

function connect() {
  const es = new EventSource("/api/events");
  es.onmessage = (ev) => {
    const m = JSON.parse(ev.data);
    if (m.type === "session") onSession(m.session);
    if (m.type === "preview") setGate(m.verdict);
    if (m.type === "status") {
      $("camera-banner").hidden = m.status.camera.state !== "reconnecting";
      $("wifi").hidden = !m.status.wifi;
      if (m.status.wifi) $("wifi-qr").src = "/api/wifi-qr.svg";
    }
  };
  es.onerror = () => { es.close(); setTimeout(connect, 2000); };
}

async function pollStatus() {
  try {
    const s = await api("GET", "/api/status");
    $("camera-banner").hidden = s.camera.state !== "reconnecting";
  } catch (_) { /* the server may be restarting */ }
}

connect();
setInterval(pollStatus, 3000);
show("attract");
