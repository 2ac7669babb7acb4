// crmsync web admin page: asks for the service admin token, then shows the
// cluster, sync health and tenants from the admin API, and charts rates
// computed from GET /metrics polled every few seconds. No dependencies;
// every value from the server goes into the page as text, never as HTML.
"use strict";

const TOKEN_KEY = "crmsync.admin_token";
// ?interval=SECONDS changes the polling period (the tests poll fast).
const INTERVAL_S = (() => {
  const v = Number(new URLSearchParams(location.search).get("interval"));
  return v >= 0.2 && v <= 60 ? v : 5;
})();
const MAX_SAMPLES = 120;
const COLORS = ["#2457c5", "#d92d20", "#079455", "#dc6803", "#7a5af8",
  "#0e9384", "#c11574", "#475467"];

// $ and el come from dom.js (loaded first by index.html).

function svg(tag, attrs) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  return e;
}

// -- the token and the admin API ---------------------------------------------

class TokenRefused extends Error {}

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

async function api(path) {
  const res = await fetch(path, {
    headers: { Authorization: "Bearer " + token() },
    cache: "no-store",
  });
  let body = null;
  try {
    body = await res.json();
  } catch (_) {
    body = null;
  }
  if (res.status === 401 || res.status === 403) {
    const why = body && body.error ? body.error.message : res.statusText;
    throw new TokenRefused(`The admin token was refused (HTTP ${res.status}): ${why}`);
  }
  if (!res.ok) {
    const err = new Error(body && body.error
      ? `${path}: ${body.error.message} (HTTP ${res.status})`
      : `${path}: HTTP ${res.status}`);
    err.status = res.status;
    throw err;
  }
  return body;
}

function showLogin(message) {
  stopPolling();
  $("main").hidden = true;
  $("logout").hidden = true;
  $("login").hidden = false;
  const e = $("login-error");
  e.textContent = message || "";
  e.hidden = !message;
  $("token").focus();
}

async function openConsole() {
  // The token is checked before anything is shown.
  try {
    const status = await api("/admin/v1/status");
    $("login").hidden = true;
    $("main").hidden = false;
    $("logout").hidden = false;
    $("node").textContent = `node ${status.node_id} · ${status.version} · up ${status.uptime_s} s`;
    state.status = status;
    await refresh();
    startPolling();
  } catch (e) {
    if (e instanceof TokenRefused) {
      sessionStorage.removeItem(TOKEN_KEY);
      showLogin(e.message);
    } else {
      showLogin(`The node could not be reached: ${e.message}`);
    }
  }
}

// -- formatting -------------------------------------------------------------

function ago(iso) {
  if (!iso) return "never";
  const s = Math.round((Date.now() - Date.parse(iso)) / 1000);
  if (s < 0) return iso;
  if (s < 90) return `${s} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  return `${Math.round(s / 3600)} h ago`;
}

function subscription(sync) {
  if (!sync.subscription_id || !sync.subscription_expires)
    return { text: "none", cls: "sub-none" };
  const left = Date.parse(sync.subscription_expires) - Date.now();
  if (left <= 0) return { text: "expired", cls: "sub-expired" };
  const h = left / 3600000;
  const text = h < 1 ? `expiring in ${Math.round(left / 60000)} min`
    : `live, ${h < 48 ? Math.round(h) + " h" : Math.round(h / 24) + " d"} left`;
  return { text, cls: h < 1 ? "sub-expiring" : "sub-live" };
}

function num(v) {
  return el("td", { class: "num" }, v);
}

function fill(tbody, rows) {
  tbody.replaceChildren(...rows);
}

// -- sections -----------------------------------------------------------------

const state = { status: null, tenant: null, sync: [] };

async function loadCluster() {
  const tbody = $("cluster-members").querySelector("tbody");
  let cluster;
  try {
    cluster = await api("/admin/v1/cluster");
  } catch (e) {
    if (e instanceof TokenRefused) throw e;
    // Nodes without the cluster routes (or not yet ready) run alone.
    const s = state.status;
    $("cluster-summary").textContent = `single node: ${s.node_id} (listening on ${s.listen})`;
    fill(tbody, [el("tr", {}, el("td", {}, s.node_id), el("td", {}, s.listen),
      el("td", {}, "—"), el("td", { class: "up-yes" }, "yes"), num("all"))]);
    return;
  }
  const members = cluster.members || [];
  $("cluster-summary").textContent = members.length <= 1
    ? `single node: ${cluster.node_id} (${cluster.shard_count} shards)`
    : `${members.length} nodes, ${cluster.shard_count} shards; this is ${cluster.node_id}`;
  fill(tbody, members.map((m) => el("tr", {},
    el("td", {}, m.id + (m.self ? " (this node)" : "")),
    el("td", {}, m.http_url || ""),
    el("td", {}, m.cluster_address || ""),
    el("td", { class: m.up ? "up-yes" : "up-no" }, m.up ? "yes" : "no"),
    num(m.shards ?? ""))));
}

async function loadSync() {
  const page = await api("/admin/v1/sync?limit=1000");
  state.sync = page.items;
  const sum = page.summary || {};
  const users = sum.users || {};
  const subs = sum.subscriptions || {};
  const card = (label, value, id) => el("div", { class: "card", id },
    el("div", { class: "value" }, value), el("div", { class: "label" }, label));
  const cards = [
    card("subscriptions live", subs.live ?? 0, "card-subs-live"),
    card("subscriptions expiring (<1 h)", subs.expiring ?? 0, "card-subs-expiring"),
    card("sync inbox rows", sum.inbox ?? 0, "card-inbox"),
    card("sync outbox rows", sum.outbox ?? 0, "card-outbox"),
    card("e-mails to send", sum.mail_outbox ?? 0, "card-mail"),
  ];
  for (const [st, n] of Object.entries(users))
    cards.push(card(`users ${st}`, n, `card-users-${st}`));
  $("sync-summary").replaceChildren(...cards);
  fill($("sync-users").querySelector("tbody"), page.items.map((it) => {
    const s = it.sync;
    const sub = subscription(s);
    return el("tr", { "data-user": it.user, "data-email": it.email },
      el("td", {}, it.org_name || it.org),
      el("td", {}, it.email || it.user),
      el("td", { class: `state state-${s.state}` }, s.state),
      el("td", {}, s.progress.total ? `${s.progress.done}/${s.progress.total}` : "—"),
      el("td", { title: s.last_sync || "" }, ago(s.last_sync)),
      el("td", { class: sub.cls, title: s.subscription_expires || "" }, sub.text),
      num(s.inbox), num(s.outbox),
      el("td", {}, `${s.to_office365.created}/${s.to_office365.updated}/${s.to_office365.deleted}`),
      el("td", {}, `${s.from_office365.created}/${s.from_office365.updated}/${s.from_office365.deleted}`),
      el("td", { class: s.last_error ? "error" : "" }, s.last_error || ""));
  }));
  const more = $("sync-more");
  more.hidden = !page.next_cursor;
  more.textContent = "More users than shown (the first 1000); crmsyncctl lists them all.";
}

async function loadTenants() {
  const page = await api("/admin/v1/tenants?limit=1000");
  fill($("tenant-list").querySelector("tbody"), page.items.map((t) => {
    const tr = el("tr", { "data-org": t.id },
      el("td", {}, t.id), el("td", {}, t.name), el("td", {}, t.edition),
      num(t.users), num(t.events), el("td", {}, t.created_at));
    if (t.id === state.tenant) tr.classList.add("selected");
    tr.addEventListener("click", () => selectTenant(t.id));
    return tr;
  }));
  const more = $("tenants-more");
  more.hidden = !page.next_cursor;
  more.textContent = "More tenants than shown (the first 1000).";
}

async function selectTenant(id) {
  state.tenant = id;
  for (const tr of $("tenant-list").querySelectorAll("tbody tr"))
    tr.classList.toggle("selected", tr.dataset.org === id);
  await loadTenant();
}

async function loadTenant() {
  if (!state.tenant) return;
  const t = await api(`/admin/v1/tenants/${encodeURIComponent(state.tenant)}`);
  const o = t.org || {};
  $("tenant-detail").hidden = false;
  $("tenant-title").textContent = `${o.name} (${o.id})`;
  const facts = [["edition", o.edition], ["users", t.users], ["events", t.events],
    ["tenant actor", t.active ? "active" : "passive"],
    ["Office 365 tenant", o.office365_tenant_id || o.office365_tenant || "—"]];
  if (t.shard !== undefined) facts.push(["shard", t.shard]);
  if (t.node !== undefined) facts.push(["node", t.node]);
  $("tenant-facts").replaceChildren(...facts.flatMap(([k, v]) =>
    [el("dt", {}, k), el("dd", {}, v ?? "—")]));
  const mine = state.sync.filter((it) => it.org === state.tenant);
  fill($("tenant-sync").querySelector("tbody"), mine.length === 0
    ? [el("tr", {}, el("td", { colspan: "5", class: "muted" }, "no user of this tenant syncs a calendar"))]
    : mine.map((it) => {
      const sub = subscription(it.sync);
      return el("tr", {},
        el("td", {}, it.email || it.user),
        el("td", { class: `state state-${it.sync.state}` }, it.sync.state),
        el("td", {}, ago(it.sync.last_sync)),
        el("td", { class: sub.cls }, sub.text),
        el("td", {}, it.sync.last_error || ""));
    }));
}

async function refresh() {
  try {
    await Promise.all([loadCluster(), loadTenants(), loadSync()]);
    await loadTenant();
    $("load-error").hidden = true;
  } catch (e) {
    if (e instanceof TokenRefused) {
      sessionStorage.removeItem(TOKEN_KEY);
      return showLogin(e.message);
    }
    $("load-error").textContent = e.message;
    $("load-error").hidden = false;
  }
}

// -- metrics: parsing, rates, charts --------------------------------------------

/// Parses the Prometheus text format into [{name, labels, value}].
function parseMetrics(text) {
  const out = [];
  for (const line of text.split("\n")) {
    if (!line || line[0] === "#") continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    if (m[3]) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
      let l;
      while ((l = re.exec(m[3])) !== null)
        labels[l[1]] = l[2].replace(/\\n/g, "\n").replace(/\\(.)/g, "$1");
    }
    out.push({ name: m[1], labels, value: Number(m[4]) });
  }
  return out;
}

/// Sums the samples of `name` by the series key `by(labels)`.
function sumBy(samples, name, by) {
  const out = {};
  for (const s of samples)
    if (s.name === name) {
      const k = by(s.labels);
      if (k !== null) out[k] = (out[k] || 0) + s.value;
    }
  return out;
}

const CHARTS = [
  { id: "chart-http", title: "HTTP requests per second, by status class",
    read: (s) => sumBy(s, "crmsync_http_requests_total", (l) => l.status[0] + "xx") },
  { id: "chart-graph", title: "Graph calls per second, by status",
    read: (s) => sumBy(s, "crmsync_graph_requests_total", (l) => l.status) },
  { id: "chart-throttled", title: "Graph throttling: 429 answers per second",
    read: (s) => sumBy(s, "crmsync_graph_throttled_total", () => "429") },
  { id: "chart-notifications", title: "Notifications per second",
    read: (s) => sumBy(s, "crmsync_notifications_total", (l) => l.outcome) },
];

const history = { last: null, points: CHARTS.map(() => []) };

async function pollMetrics() {
  let text;
  try {
    // /metrics needs the admin token too (or the scrape token).
    const res = await fetch("/metrics", {
      headers: { Authorization: "Bearer " + token() },
      cache: "no-store",
    });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    text = await res.text();
  } catch (e) {
    $("load-error").textContent = `/metrics could not be read: ${e.message}`;
    $("load-error").hidden = false;
    return;
  }
  const now = Date.now() / 1000;
  const samples = parseMetrics(text);
  const totals = CHARTS.map((c) => c.read(samples));
  if (history.last) {
    const dt = now - history.last.t;
    CHARTS.forEach((c, i) => {
      const rates = {};
      for (const [k, v] of Object.entries(totals[i])) {
        const before = history.last.totals[i][k] || 0;
        // A counter that went down means the node restarted.
        rates[k] = v >= before ? (v - before) / dt : v / dt;
      }
      const pts = history.points[i];
      pts.push({ t: now, rates });
      if (pts.length > MAX_SAMPLES) pts.shift();
    });
  }
  history.last = { t: now, totals };
  CHARTS.forEach((c, i) => draw(c, history.points[i]));
}

function niceMax(v) {
  if (v <= 0) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function fmt(v) {
  return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
}

function draw(chart, pts) {
  const fig = $(chart.id);
  const W = 480, H = 180, L = 44, R = 8, T = 8, B = 22;
  const keys = [...new Set(pts.flatMap((p) => Object.keys(p.rates)))].sort();
  const max = niceMax(Math.max(0, ...pts.flatMap((p) => Object.values(p.rates))));
  const t0 = pts.length ? pts[0].t : 0;
  const t1 = pts.length ? Math.max(pts[pts.length - 1].t, t0 + 1) : 1;
  const x = (t) => L + ((t - t0) / (t1 - t0)) * (W - L - R);
  const y = (v) => T + (1 - v / max) * (H - T - B);
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img",
    "aria-label": chart.title });
  for (const f of [0, 0.5, 1]) {
    root.append(svg("line", { x1: L, x2: W - R, y1: y(max * f), y2: y(max * f),
      stroke: "#e4e7ec", "stroke-width": 1 }));
    const label = svg("text", { x: L - 4, y: y(max * f) + 4, "text-anchor": "end",
      "font-size": 10, fill: "#6b7280" });
    label.textContent = fmt(max * f);
    root.append(label);
  }
  const span = svg("text", { x: W - R, y: H - 6, "text-anchor": "end",
    "font-size": 10, fill: "#6b7280" });
  span.textContent = pts.length > 1 ? `last ${Math.round(t1 - t0)} s` : "waiting for data…";
  root.append(span);
  const legend = el("div", { class: "legend" });
  keys.forEach((k, i) => {
    const color = COLORS[i % COLORS.length];
    const line = pts.map((p) => `${x(p.t).toFixed(1)},${y(p.rates[k] || 0).toFixed(1)}`);
    root.append(svg("polyline", { points: line.join(" "), fill: "none",
      stroke: color, "stroke-width": 1.5, "data-series": k }));
    const last = pts.length ? pts[pts.length - 1].rates[k] || 0 : 0;
    const sw = el("span", { class: "swatch" });
    sw.style.background = color;
    legend.append(el("span", { "data-series": k }, sw, `${k}: ${fmt(last)}/s`));
  });
  fig.setAttribute("data-samples", String(pts.length));
  fig.setAttribute("data-series", keys.join(","));
  fig.replaceChildren(el("figcaption", {}, chart.title), root, legend);
}

// -- polling --------------------------------------------------------------------

let timers = [];

function startPolling() {
  stopPolling();
  $("interval").textContent = String(INTERVAL_S);
  CHARTS.forEach((c, i) => draw(c, history.points[i]));
  pollMetrics();
  timers.push(setInterval(pollMetrics, INTERVAL_S * 1000));
  timers.push(setInterval(refresh, Math.max(INTERVAL_S, 2) * 1000));
}

function stopPolling() {
  for (const t of timers) clearInterval(t);
  timers = [];
}

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const t = $("token").value.trim();
    if (!t) return showLogin("Enter the service admin token.");
    sessionStorage.setItem(TOKEN_KEY, t);
    $("token").value = "";
    openConsole();
  });
  $("logout").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    showLogin("");
  });
  if (token()) openConsole();
  else showLogin("");
});
