"use strict";
// The console page: a worker table fed by the server-sent `list` event every few seconds,
// CPU and RSS sparklines from the samples seen since the page opened, the cluster's events
// (the same as `clutch ctl watch`), and command buttons for roles that may use them. Every
// command is a POST with the session's CSRF token; the server checks the role again.

const HISTORY = 150; // samples per worker: 5 minutes at one every 2 s
const MAX_EVENTS = 200;
let session = null;
const history = new Map(); // "slot/pid" -> [{cpu, rss}]

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function duration(ms) {
  if (ms == null) return "–";
  const s = Math.floor(ms / 1000);
  if (s < 60) return s + "s";
  const m = Math.floor(s / 60);
  if (m < 60) return m + "m " + (s % 60) + "s";
  const h = Math.floor(m / 60);
  if (h < 48) return h + "h " + (m % 60) + "m";
  return Math.floor(h / 24) + "d " + (h % 24) + "h";
}

function bytes(n) {
  if (n == null) return "–";
  const units = ["B", "KiB", "MiB", "GiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return n.toFixed(i ? 1 : 0) + " " + units[i];
}

function lastExit(e) {
  if (!e) return "–";
  return e.signal ? e.signal : "code " + e.code;
}

const SVG = "http://www.w3.org/2000/svg";
function sparkline(values, cls, max) {
  const w = 80, h = 22;
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  svg.setAttribute("width", w);
  svg.setAttribute("height", h);
  svg.setAttribute("class", "spark " + cls);
  const top = Math.max(max || 0, ...values, 1e-9);
  // At least a minute wide, so that a young history does not stretch across the chart.
  const step = w / Math.max(values.length - 1, 29);
  const x0 = w - (values.length - 1) * step;
  const pts = values.map((v, i) => `${(x0 + i * step).toFixed(1)},${(h - 1 - (v / top) * (h - 3)).toFixed(1)}`);
  if (pts.length > 1) {
    const area = document.createElementNS(SVG, "polygon");
    area.setAttribute("points", `${x0.toFixed(1)},${h} ${pts.join(" ")} ${w},${h}`);
    area.setAttribute("class", "area");
    svg.append(area);
    const line = document.createElementNS(SVG, "polyline");
    line.setAttribute("points", pts.join(" "));
    line.setAttribute("class", "line");
    svg.append(line);
  }
  return svg;
}

function may(cmd) {
  return session && session.commands.includes(cmd);
}

function actionButtons(w) {
  const td = el("td", { class: "operator-only actions" });
  const target = String(w.id);
  const live = w.pid != null;
  for (const cmd of ["restart", "stop", "start"]) {
    if (!may(cmd)) continue;
    const wanted = cmd === "start" ? !live || w.state === "parked" : live;
    const b = el("button", { "data-cmd": cmd, "data-target": target }, cmd);
    if (!wanted) b.disabled = true;
    td.append(b);
  }
  return td;
}

function renderList(list) {
  const c = list.cluster;
  $("cluster-state").textContent = c.state;
  $("cluster-state").className = "badge state-" + c.state;
  const ready = list.workers.filter((w) => w.role === "app" && w.ready).length;
  $("cluster-summary").textContent =
    `${c.name} · master pid ${c.pid} · ${ready}/${c.workers} app workers ready · generation ${c.generation} · up ${duration(c.uptime_ms)}`;
  if (document.activeElement !== $("scale-to")) $("scale-to").value = c.workers;
  const seen = new Set();
  const tbody = el("tbody");
  for (const w of list.workers) {
    const key = w.id + "/" + w.pid;
    seen.add(key);
    let h = history.get(key);
    if (!h) history.set(key, (h = []));
    if (w.pid != null) {
      h.push({ cpu: w.cpu_percent || 0, rss: w.rss_bytes || 0 });
      if (h.length > HISTORY) h.shift();
    }
    const tr = el("tr", { "data-slot": w.id, "data-pid": w.pid ?? "", class: "state-" + w.state },
      el("td", { class: "id" }, w.id),
      el("td", { class: "role" }, w.role),
      el("td", { class: "pid" }, w.pid ?? "–"),
      el("td", { class: "state" }, el("span", { class: "badge state-" + w.state }, w.state)),
      el("td", {}, w.generation ?? "–"),
      el("td", { class: "uptime" }, duration(w.uptime_ms)),
      el("td", { class: "restarts" }, w.restarts),
      el("td", { class: "chart" }, sparkline(h.map((s) => s.cpu), "cpu", 100),
        el("span", { class: "figure" }, w.cpu_percent == null ? "–" : w.cpu_percent.toFixed(1) + "%")),
      el("td", { class: "chart" }, sparkline(h.map((s) => s.rss), "rss", 0),
        el("span", { class: "figure" }, bytes(w.rss_bytes))),
      el("td", {}, lastExit(w.last_exit)),
    );
    if (may("restart")) tr.append(actionButtons(w));
    tbody.append(tr);
  }
  for (const k of history.keys()) if (!seen.has(k)) history.delete(k);
  $("workers").replaceChild(tbody, $("workers").tBodies[0]);
}

function describe(ev) {
  const who = ev.slot != null ? `${ev.role || "worker"} ${ev.slot}` : "";
  switch (ev.event) {
    case "worker.spawned": return `${who} spawned, pid ${ev.pid}`;
    case "worker.ready": return `${who} ready, pid ${ev.pid}`;
    case "worker.stopping": return `${who} stopping, pid ${ev.pid}`;
    case "worker.exited": return `${who} exited, pid ${ev.pid}` + (ev.signal ? ` (${ev.signal})` : ev.code != null ? ` (code ${ev.code})` : "") + (ev.reason ? `: ${ev.reason}` : "");
    case "worker.restarted": return `slot ${ev.slot} restarted (${ev.restarts} so far)`;
    case "worker.parked": return `slot ${ev.slot} parked: restarting too often`;
    case "cluster.ready": return `cluster ready (${ev.workers} workers)`;
    case "cluster.scaled": return `scaled from ${ev.from} to ${ev.to}`;
    case "ctl.command": return `${ev.web ? "web user " : ""}${ev.user ?? "uid " + ev.uid}: ${ev.command}: ${ev.result}`;
    case "lagged": return `missed ${ev.missed} events`;
    default: {
      const rest = Object.assign({}, ev);
      delete rest.event; delete rest.seq; delete rest.time_ms;
      return JSON.stringify(rest);
    }
  }
}

function addEvent(ev) {
  const t = ev.time_ms ? new Date(ev.time_ms) : new Date();
  const li = el("li", { "data-event": ev.event || "", class: "ev-" + String(ev.event || "").split(".")[0] },
    el("time", {}, t.toLocaleTimeString([], { hour12: false })),
    el("span", { class: "name" }, ev.event || "?"),
    el("span", { class: "text" }, describe(ev)));
  const list = $("events");
  list.prepend(li);
  while (list.children.length > MAX_EVENTS) list.lastChild.remove();
}

function notice(text, bad) {
  const n = $("notice");
  n.textContent = text;
  n.className = bad ? "bad" : "good";
}

async function command(cmd, args) {
  notice(`${cmd} ${args.target ?? args.workers ?? ""}: running…`);
  try {
    const r = await fetch("/api/command", {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": session.csrf },
      body: JSON.stringify({ cmd, args }),
    });
    const body = await r.json().catch(() => ({}));
    if (r.status === 401) return location.assign("/login");
    notice(`${cmd}: ${body.ok ? "done" : body.error || r.status}`, !body.ok);
  } catch (x) {
    notice(`${cmd}: cannot reach clutch: ${x}`, true);
  }
}

function connect() {
  const es = new EventSource("/api/events");
  es.addEventListener("open", () => { $("stream-state").textContent = "live"; $("stream-state").className = "badge state-ready"; });
  es.addEventListener("list", (m) => renderList(JSON.parse(m.data)));
  es.addEventListener("cluster", (m) => addEvent(JSON.parse(m.data)));
  es.addEventListener("end", (m) => {
    es.close();
    $("stream-state").textContent = JSON.parse(m.data);
    $("stream-state").className = "badge state-stopping";
  });
  es.addEventListener("error", async () => {
    $("stream-state").textContent = "reconnecting";
    $("stream-state").className = "badge state-starting";
    if (es.readyState === EventSource.CLOSED) {
      const r = await fetch("/api/session").catch(() => null);
      if (r && r.status === 401) location.assign("/login");
      else setTimeout(connect, 3000);
    }
  });
}

async function main() {
  const r = await fetch("/api/session");
  if (r.status === 401) return location.assign("/login");
  session = await r.json();
  $("whoami").textContent = `${session.user} (${session.role})`;
  document.body.classList.toggle("operator", session.commands.length > 0);
  $("workers").addEventListener("click", (e) => {
    const b = e.target.closest("button[data-cmd]");
    if (b && !b.disabled) command(b.dataset.cmd, { target: b.dataset.target });
  });
  $("restart-all").addEventListener("click", () => command("restart", { target: "app" }));
  $("reload").addEventListener("click", () => command("reload", {}));
  $("scale").addEventListener("click", () => command("scale", { workers: $("scale-to").value }));
  $("logout").addEventListener("click", async () => {
    await fetch("/logout", { method: "POST", headers: { "X-CSRF-Token": session.csrf } });
    location.assign("/login");
  });
  connect();
}

main();
