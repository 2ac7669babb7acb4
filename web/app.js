// crmsync web admin page: asks for the service admin token, then shows the
// cluster, sync health and tenants from the admin API, and charts rates:
// the node's last hour (GET /admin/v1/history) when it opens, then rates
// computed from GET /metrics polled every few seconds. With the same token
// it acts: resyncs a user, approves deletions the mass-delete guard holds,
// changes an organization's edition; each asks first, shows the server's
// answer or error, and reloads what it changed. Per organization it shows
// the audit log, sync conflicts, invitations and join requests. No
// dependencies; every value from the server goes into the page as text,
// never as HTML.
"use strict";

const TOKEN_KEY = "crmsync.admin_token";
// ?interval=SECONDS changes the polling period (the tests poll fast).
const INTERVAL_S = (() => {
  const v = Number(new URLSearchParams(location.search).get("interval"));
  return v >= 0.2 && v <= 60 ? v : 5;
})();
// ?page=N rows per page of the paged lists (audit, conflicts).
const PAGE = (() => {
  const v = Number(new URLSearchParams(location.search).get("page"));
  return Number.isInteger(v) && v >= 1 && v <= 1000 ? v : 25;
})();
// The charts show the last hour (the node keeps as much).
const WINDOW_S = 3600;
const MAX_SAMPLES = 4000;
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

/// Calls the API with the admin token; `method` and a JSON `body` for the
/// actions. Throws TokenRefused on 401/403, else an Error that says what
/// the server said (with .status and .code).
async function api(path, method = "GET", send = undefined) {
  const headers = { Authorization: "Bearer " + token() };
  if (send !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, {
    method,
    headers,
    body: send === undefined ? undefined : JSON.stringify(send),
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
    const e = body && body.error;
    const err = new Error(e
      ? `${path}: ${e.message} (HTTP ${res.status} ${e.code})`
      : `${path}: HTTP ${res.status}`);
    err.status = res.status;
    err.code = e ? e.code : "";
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
    await Promise.all([refresh(), loadHistory()]);
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

const state = { status: null, tenant: null, org: null, sync: [],
  limits: { audit: PAGE, conflicts: PAGE } };

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
  // In a cluster with a node down the listing holds what the live nodes
  // have and names the others.
  const missing = $("tenants-missing");
  const gone = page.missing_nodes || [];
  missing.hidden = !page.incomplete;
  missing.textContent = page.incomplete
    ? `Incomplete: the organizations of ${gone.join(", ")} are not listed (the node could not answer).`
    : "";
}

async function selectTenant(id) {
  if (state.tenant !== id) {
    state.limits = { audit: PAGE, conflicts: PAGE };
    $("action-result").hidden = true;
  }
  state.tenant = id;
  for (const tr of $("tenant-list").querySelectorAll("tbody tr"))
    tr.classList.toggle("selected", tr.dataset.org === id);
  await loadTenant();
}

async function loadTenant() {
  if (!state.tenant) return;
  const org = state.tenant;
  const t = await api(`/admin/v1/tenants/${encodeURIComponent(org)}`);
  if (org !== state.tenant) return; // another tenant was chosen meanwhile
  const o = t.org || {};
  state.org = o;
  $("tenant-detail").hidden = false;
  $("tenant-detail").dataset.org = org;
  $("tenant-title").textContent = `${o.name} (${o.id})`;
  const facts = [["edition", o.edition], ["users", t.users], ["events", t.events],
    ["tenant actor", t.active ? "active" : "passive"],
    ["Office 365 tenant", o.office365_tenant_id || o.office365_tenant || "—"]];
  if (t.shard !== undefined) facts.push(["shard", t.shard]);
  if (t.node !== undefined) facts.push(["node", t.node]);
  $("tenant-facts").replaceChildren(...facts.flatMap(([k, v]) =>
    [el("dt", {}, k), el("dd", { "data-fact": k }, v ?? "—")]));
  // The choice stays while the person makes it; it follows the server
  // once the tenant or its edition changed.
  const select = $("edition-select");
  if (select.dataset.org !== org || select.dataset.edition !== o.edition) {
    select.value = o.edition === "paid" ? "free" : "paid";
    select.dataset.org = org;
    select.dataset.edition = o.edition;
  }
  const mine = state.sync.filter((it) => it.org === org);
  fill($("tenant-sync").querySelector("tbody"), mine.length === 0
    ? [el("tr", {}, el("td", { colspan: "6", class: "muted" }, "no user of this tenant syncs a calendar"))]
    : mine.map((it) => {
      const sub = subscription(it.sync);
      const who = it.email || it.user;
      const actions = el("td", { class: "actions" });
      const resync = el("button", { type: "button", class: "resync", "data-user": it.user }, "Resync");
      resync.addEventListener("click", () => resyncUser(it.user, who));
      actions.append(resync);
      if (it.sync.state === "held") {
        const approve = el("button", { type: "button", class: "approve", "data-user": it.user },
          "Approve deletes");
        approve.addEventListener("click", () => approveDeletes(it.user, who));
        actions.append(approve);
      }
      return el("tr", { "data-user": it.user, "data-state": it.sync.state },
        el("td", {}, who),
        el("td", { class: `state state-${it.sync.state}` }, it.sync.state),
        el("td", {}, ago(it.sync.last_sync)),
        el("td", { class: sub.cls }, sub.text),
        el("td", {}, it.sync.last_error || ""),
        actions);
    }));
  await Promise.all([loadAudit(org), loadConflicts(org), loadInvites(org), loadJoins(org)]);
}

// -- per organization lists ------------------------------------------------------

/// Fills the table `id` with rows made by `row` from the list at `path`
/// (or a row with the error, the rest of the page unharmed). `more`: the
/// id of the list's "Show more" button, for lists paged with ?limit=.
async function loadList(org, id, path, row, columns, empty, more) {
  const tbody = $(id).querySelector("tbody");
  let items;
  try {
    items = (await api(path)).items || [];
  } catch (e) {
    if (e instanceof TokenRefused) throw e;
    if (org === state.tenant)
      fill(tbody, [el("tr", {}, el("td", { colspan: String(columns), class: "error" }, e.message))]);
    return;
  }
  if (org !== state.tenant) return;
  fill(tbody, items.length === 0
    ? [el("tr", {}, el("td", { colspan: String(columns), class: "muted" }, empty))]
    : items.map(row));
  $(id).dataset.rows = String(items.length);
  if (more) {
    const key = more.key;
    // A full page may have more behind it, up to the API's 1000.
    $(more.id).hidden = items.length < state.limits[key] || state.limits[key] >= 1000;
  }
}

const orgPath = (org) => `/api/v1/orgs/${encodeURIComponent(org)}`;

function loadAudit(org) {
  return loadList(org, "tenant-audit", `${orgPath(org)}/audit?limit=${state.limits.audit}`,
    (a) => el("tr", { "data-action": a.action },
      el("td", {}, a.at), el("td", {}, a.actor), el("td", {}, a.action),
      el("td", {}, a.detail), el("td", {}, a.request_id || "")),
    5, "no audit entries", { id: "tenant-audit-more", key: "audit" });
}

function loadConflicts(org) {
  return loadList(org, "tenant-conflicts",
    `/admin/v1/orgs/${encodeURIComponent(org)}/conflicts?limit=${state.limits.conflicts}`,
    (c) => el("tr", { "data-event": c.event },
      el("td", {}, c.at), el("td", {}, c.user), el("td", {}, c.event),
      el("td", {}, c.policy), el("td", {}, c.winner), el("td", {}, c.kept),
      el("td", {}, c.lost)),
    7, "no conflicts", { id: "tenant-conflicts-more", key: "conflicts" });
}

function loadInvites(org) {
  return loadList(org, "tenant-invites", `${orgPath(org)}/invites`,
    (x) => el("tr", { "data-id": x.id, "data-email": x.email },
      el("td", {}, x.email), el("td", {}, x.name), el("td", {}, x.status),
      el("td", {}, x.created), el("td", {}, x.expires), el("td", {}, x.user || "")),
    6, "no invitations");
}

function loadJoins(org) {
  return loadList(org, "tenant-joins", `${orgPath(org)}/join-requests`,
    (x) => el("tr", { "data-id": x.id, "data-email": x.email },
      el("td", {}, x.email), el("td", {}, x.name), el("td", {}, x.status),
      el("td", {}, x.created), el("td", {}, x.resolved || ""), el("td", {}, x.user || "")),
    6, "no join requests");
}

function showMore(key) {
  state.limits[key] = Math.min(1000, state.limits[key] + PAGE);
  if (state.tenant)
    (key === "audit" ? loadAudit : loadConflicts)(state.tenant).catch(failed);
}

// -- actions -------------------------------------------------------------------------

function showResult(message, ok) {
  const p = $("action-result");
  p.textContent = message;
  p.classList.toggle("error", !ok);
  p.dataset.outcome = ok ? "ok" : "error";
  p.hidden = false;
}

/// Asks first; then calls the API and shows its answer (`said(answer)`)
/// or its error, and reloads the page's data.
async function act(question, what, method, path, send, said) {
  if (!window.confirm(question)) {
    showResult(`${what}: cancelled, nothing was sent.`, true);
    return;
  }
  let answer;
  try {
    answer = await api(path, method, send);
  } catch (e) {
    if (e instanceof TokenRefused) return failed(e);
    showResult(`${what} failed: ${e.message}`, false);
    return;
  }
  showResult(said(answer), true);
  await refresh();
}

function resyncUser(user, who) {
  return act(`Resync ${who}? The next sync run reads the whole calendar window again.`,
    `Resync of ${who}`, "POST", `/admin/v1/users/${encodeURIComponent(user)}/resync`,
    undefined,
    (a) => `Resync of ${who} requested at ${a.requested_at} (sync state ${a.state}).`);
}

function approveDeletes(user, who) {
  return act(`Approve the deletions held for ${who}? The held sync run goes ahead once and deletes them.`,
    `Approval for ${who}`, "POST",
    `/admin/v1/users/${encodeURIComponent(user)}/sync/approve-deletes`, undefined,
    (a) => `Deletions approved for ${who}: sync state ${a.state}.`);
}

function changeEdition() {
  const o = state.org;
  if (!o) return;
  const edition = $("edition-select").value;
  return act(`Change the edition of ${o.name} (${o.id}) from ${o.edition} to ${edition}?`,
    `Edition change of ${o.name}`, "PATCH", orgPath(o.id), { edition },
    (a) => `The edition of ${a.name} is now ${a.edition}.`);
}

function failed(e) {
  if (e instanceof TokenRefused) {
    sessionStorage.removeItem(TOKEN_KEY);
    return showLogin(e.message);
  }
  $("load-error").textContent = e.message;
  $("load-error").hidden = false;
}

async function refresh() {
  try {
    await Promise.all([loadCluster(), loadTenants(), loadSync()]);
    await loadTenant();
    $("load-error").hidden = true;
  } catch (e) {
    failed(e);
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

// Each chart is one series of GET /admin/v1/history (`series`) and the
// same counters read from /metrics (`read`), keyed alike.
const CHARTS = [
  { id: "chart-http", series: "http", title: "HTTP requests per second, by status class",
    read: (s) => sumBy(s, "crmsync_http_requests_total", (l) => l.status[0] + "xx") },
  { id: "chart-graph", series: "graph", title: "Graph calls per second, by status",
    read: (s) => sumBy(s, "crmsync_graph_requests_total", (l) => l.status) },
  { id: "chart-throttled", series: "graph_throttled", title: "Graph throttling: 429 answers per second",
    read: (s) => sumBy(s, "crmsync_graph_throttled_total", () => "429") },
  { id: "chart-notifications", series: "notifications", title: "Notifications per second",
    read: (s) => sumBy(s, "crmsync_notifications_total", (l) => l.outcome) },
];

// points: per chart [{t, rates}]; last: the totals of the latest reading
// (the node's history, then the page's own polls), to take rates from.
const history = { last: null, points: CHARTS.map(() => []), fromNode: CHARTS.map(() => 0) };

/// Rates between two readings of the totals; a counter that went down
/// means the node restarted (its counters began again at 0).
function rates(before, after, dt) {
  const out = {};
  for (const [k, v] of Object.entries(after)) {
    const b = before[k] || 0;
    out[k] = v >= b ? (v - b) / dt : v / dt;
  }
  return out;
}

function addPoint(i, t, r) {
  const pts = history.points[i];
  pts.push({ t, rates: r });
  while (pts.length > MAX_SAMPLES || (pts.length && pts[0].t < t - WINDOW_S)) pts.shift();
}

/// The node's last hour (GET /admin/v1/history): the charts start with it.
async function loadHistory() {
  let h;
  try {
    h = await api("/admin/v1/history");
  } catch (e) {
    if (e instanceof TokenRefused) throw e;
    $("history-interval").textContent = "?";
    $("load-error").textContent = `The node's chart history could not be read: ${e.message}`;
    $("load-error").hidden = false;
    return;
  }
  $("history-interval").textContent = String(h.interval_s);
  // The charts start again from the node's history (after a sign-in
  // again, too).
  history.points = CHARTS.map(() => []);
  history.last = null;
  let latest = 0;
  const lastTotals = CHARTS.map((c, i) => {
    const samples = (h.series[c.series] || []).map((p) => ({ t: Date.parse(p.at) / 1000, totals: p.values }));
    for (let k = 1; k < samples.length; k++) {
      const dt = samples[k].t - samples[k - 1].t;
      if (dt > 0) addPoint(i, samples[k].t, rates(samples[k - 1].totals, samples[k].totals, dt));
    }
    history.fromNode[i] = history.points[i].length;
    const last = samples[samples.length - 1];
    if (!last) return {};
    latest = Math.max(latest, last.t);
    return last.totals;
  });
  // The page's first poll of /metrics goes on from the node's last sample
  // (the node samples every series at once).
  if (latest) history.last = { t: latest, totals: lastTotals };
  CHARTS.forEach((c, i) => draw(c, history.points[i], history.fromNode[i]));
}

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
  if (history.last && now > history.last.t)
    CHARTS.forEach((c, i) =>
      addPoint(i, now, rates(history.last.totals[i], totals[i], now - history.last.t)));
  history.last = { t: now, totals };
  CHARTS.forEach((c, i) => draw(c, history.points[i], history.fromNode[i]));
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

function draw(chart, pts, fromNode = 0) {
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
  const spanS = Math.round(t1 - t0);
  span.textContent = pts.length > 1
    ? (spanS >= 120 ? `last ${Math.round(spanS / 60)} min` : `last ${spanS} s`)
    : "waiting for data…";
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
  // How many of them came from the node's history (drawn at open).
  fig.setAttribute("data-history-samples", String(Math.min(fromNode, pts.length)));
  fig.setAttribute("data-first", pts.length ? new Date(pts[0].t * 1000).toISOString() : "");
  fig.setAttribute("data-series", keys.join(","));
  fig.replaceChildren(el("figcaption", {}, chart.title), root, legend);
}

// -- polling --------------------------------------------------------------------

// Each loop waits for its previous round before the next one starts: a
// slow node (or a busy browser) never has two polls of /metrics in flight,
// whose answers could arrive out of order and make rates from the wrong
// pair of readings.
let loops = 0; // bumped to end the running loops

function every(seconds, fn, atOnce = false) {
  const mine = loops;
  const round = async () => {
    if (mine !== loops) return;
    try {
      await fn();
    } finally {
      if (mine === loops) setTimeout(round, seconds * 1000);
    }
  };
  setTimeout(round, atOnce ? 0 : seconds * 1000);
}

function startPolling() {
  stopPolling();
  $("interval").textContent = String(INTERVAL_S);
  CHARTS.forEach((c, i) => draw(c, history.points[i], history.fromNode[i]));
  every(INTERVAL_S, pollMetrics, true);
  every(Math.max(INTERVAL_S, 2), refresh);
}

function stopPolling() {
  loops++;
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
  $("edition-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    changeEdition();
  });
  $("tenant-audit-more").addEventListener("click", () => showMore("audit"));
  $("tenant-conflicts-more").addEventListener("click", () => showMore("conflicts"));
  if (token()) openConsole();
  else showLogin("");
});
