// The web admin page in headless Chromium (Debian's /usr/bin/chromium,
// driven by playwright-core) against a running crmsyncd. Started by the
// C++ driver (tests/web/page_test.cpp) once the node has an organization
// whose admin syncs a calendar, with:
//   NODE_URL      http://127.0.0.1:PORT of the node
//   ADMIN_TOKEN   its service admin token
//   ORG_ID, ORG_NAME, ORG_EDITION, USER_EMAIL   what the page must show
//   ADMIN_ID      the admin, whose deletions the mass-delete guard holds
//   BOB_ID, BOB_EMAIL   a member who syncs; BOB_OUTLOOK_EVENT the subject
//                 of an event of his in Outlook the CRM has not seen yet
//                 (Graph's notifications are lost: a resync brings it)
//   INVITED_EMAIL someone invited to the organization
//   CONFLICT_EVENT the CRM event of the organization's one sync conflict
//   SCREENSHOT    optional: a PNG of the page at the end
// Every step prints PASS or FAIL with what it saw; any failure exits 1.

import { chromium } from "playwright-core";

const env = (name) => {
  const v = process.env[name];
  if (!v) {
    console.error(`web_test: ${name} is not set (page_test.cpp sets it)`);
    process.exit(2);
  }
  return v;
};
const NODE_URL = env("NODE_URL");
const ADMIN_TOKEN = env("ADMIN_TOKEN");
const ORG_ID = env("ORG_ID");
const ORG_NAME = env("ORG_NAME");
const USER_EMAIL = env("USER_EMAIL");
const ORG_EDITION = env("ORG_EDITION");
const ADMIN_ID = env("ADMIN_ID");
const BOB_ID = env("BOB_ID");
const BOB_EMAIL = env("BOB_EMAIL");
const BOB_OUTLOOK_EVENT = env("BOB_OUTLOOK_EVENT");
const INVITED_EMAIL = env("INVITED_EMAIL");
const CONFLICT_EVENT = env("CONFLICT_EVENT");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";

// Every wait is on a condition; these deadlines only end a stuck run. The
// machine that runs the suite may be busy (the ctest timeout is 600 s).
const OVERALL_MS = 360_000;
const overall = setTimeout(() => {
  console.error(`FAIL: the test did not finish within ${OVERALL_MS / 1000} s`);
  process.exit(1);
}, OVERALL_MS);

let failures = 0;
async function step(name, fn) {
  try {
    await fn();
    console.log(`PASS ${name}`);
  } catch (err) {
    failures++;
    console.log(`FAIL ${name}\n  ${String(err && err.stack || err).split("\n").join("\n  ")}`);
  }
}

function check(cond, what) {
  if (!cond) throw new Error(what);
}

// Chromium as the probe of this machine runs it: no sandbox (root in CI),
// no GPU, and no background connections (the network is closed).
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update",
    "--disable-sync"],
});
const context = await browser.newContext({ viewport: { width: 1400, height: 1600 } });
const page = await context.newPage();
const consoleErrors = [];
page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
page.on("pageerror", (e) => consoleErrors.push(String(e)));

const text = async (selector) => (await page.locator(selector).innerText()).trim();
const WAIT = { timeout: 45_000 };

/// The admin API from the test itself (not the page): the server's state.
async function server(path, method = "GET", body = undefined) {
  const headers = { Authorization: `Bearer ${ADMIN_TOKEN}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(`${NODE_URL}${path}`, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch (_) { json = null; }
  return { status: res.status, json, text };
}

/// Polls `probe` until it returns a truthy value; throws `what` (with the
/// last value seen) after the deadline.
async function until(what, probe, ms = WAIT.timeout) {
  const end = Date.now() + ms;
  let last;
  for (;;) {
    last = await probe();
    if (last && last.ok) return last;
    if (Date.now() > end) throw new Error(`${what}; last seen: ${JSON.stringify(last && last.seen)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/// Accepts (or dismisses) the next confirmation the page asks, and keeps
/// its question.
function answerNextDialog(accept) {
  const asked = { message: null };
  page.once("dialog", async (d) => {
    asked.message = d.message();
    if (d.type() !== "confirm") asked.message = `unexpected ${d.type()}: ${d.message()}`;
    await (accept ? d.accept() : d.dismiss());
  });
  return asked;
}

async function actionResult(pattern) {
  const p = page.locator("#action-result");
  await page.waitForFunction((re) => {
    const e = document.getElementById("action-result");
    return e && !e.hidden && new RegExp(re).test(e.textContent);
  }, pattern.source, WAIT);
  return { text: await p.innerText(), outcome: await p.getAttribute("data-outcome") };
}

try {
  await step("/admin redirects to /admin/ and asks for the token", async () => {
    const res = await page.goto(`${NODE_URL}/admin?interval=0.5`);
    check(res.ok(), `the page answered ${res.status()}`);
    check(new URL(page.url()).pathname === "/admin/", `landed on ${page.url()}`);
    await page.locator("#login").waitFor({ state: "visible", ...WAIT });
    check(await page.locator("#main").isHidden(), "the console shows without a token");
  });

  // The redirect drops the query string: open the page with fast polling
  // and pages of 3 rows (the audit log is paged).
  await page.goto(`${NODE_URL}/admin/?interval=0.5&page=3`);

  await step("a wrong token gets a clear message and shows nothing", async () => {
    await page.fill("#token", "not-the-admin-token");
    await page.click("#login-form button[type=submit]");
    const err = page.locator("#login-error");
    await err.waitFor({ state: "visible", ...WAIT });
    const msg = await err.innerText();
    check(/admin token was refused \(HTTP 401\)/.test(msg), `message: ${msg}`);
    check(await page.locator("#main").isHidden(), "the console shows with a wrong token");
    const kept = await page.evaluate(() => sessionStorage.getItem("crmsync.admin_token"));
    check(kept === null, "a refused token stays in sessionStorage");
  });

  let openedAt = 0;
  await step("the right token opens the console", async () => {
    await page.fill("#token", ADMIN_TOKEN);
    openedAt = Date.now();
    await page.click("#login-form button[type=submit]");
    await page.locator("#main").waitFor({ state: "visible", ...WAIT });
    check(await page.locator("#login").isHidden(), "the login form stays");
    const node = await text("#node");
    check(/^node \S+/.test(node), `header: ${node}`);
  });

  await step("cluster: this node (a single node or one member)", async () => {
    await page.locator("#cluster-members tbody tr").first().waitFor(WAIT);
    const summary = await text("#cluster-summary");
    check(/single node|nodes, \d+ shards/.test(summary), `summary: ${summary}`);
    const up = await text("#cluster-members tbody tr:first-child td:nth-child(4)");
    check(up === "yes", `up: ${up}`);
  });

  await step("tenants: the organization is listed", async () => {
    const row = page.locator(`#tenant-list tbody tr[data-org="${ORG_ID}"]`);
    await row.waitFor(WAIT);
    const cells = await row.locator("td").allInnerTexts();
    check(cells[0] === ORG_ID && cells[1] === ORG_NAME, `row: ${cells.join(" | ")}`);
    check(Number(cells[3]) >= 1, `users: ${cells[3]}`);
  });

  await step("charts: the node's last hour is drawn when the page opens", async () => {
    // Drawn from GET /admin/v1/history (sampled every second here), with
    // points from before the page opened.
    await page.waitForFunction(() => {
      const f = document.getElementById("chart-http");
      return f && Number(f.dataset.historySamples) >= 2;
    }, null, WAIT);
    const first = Date.parse(await page.locator("#chart-http").getAttribute("data-first"));
    check(first < openedAt, `the first point (${new Date(first).toISOString()}) is not before the page opened (${new Date(openedAt).toISOString()})`);
    const every = await text("#history-interval");
    check(every === "1", `history interval: ${every}`);
    for (const id of ["chart-graph", "chart-throttled", "chart-notifications"]) {
      const n = Number(await page.locator(`#${id}`).getAttribute("data-history-samples"));
      check(n >= 2, `${id}: ${n} points from the node`);
    }
  });

  await step("sync health: Bob is active, the admin's sync is held", async () => {
    const row = page.locator(`#sync-users tbody tr[data-email="${BOB_EMAIL}"]`);
    await row.waitFor(WAIT);
    const cells = await row.locator("td").allInnerTexts();
    check(cells[2] === "active", `state: ${cells[2]} (row: ${cells.join(" | ")})`);
    check(/^live, /.test(cells[5]), `subscription: ${cells[5]}`);
    check(cells[4] !== "never", `last delta: ${cells[4]}`);
    const held = await page.locator(`#sync-users tbody tr[data-email="${USER_EMAIL}"] td`).allInnerTexts();
    check(held[2] === "held", `the admin's state: ${held.join(" | ")}`);
    const live = await text("#card-subs-live .value");
    check(live === "2", `live subscriptions card: ${live}`);
    const active = await text("#card-users-active .value");
    check(active === "1", `active users card: ${active}`);
    const heldCard = await text("#card-users-held .value");
    check(heldCard === "1", `held users card: ${heldCard}`);
  });

  await step("drill into the tenant: its facts and its syncing user", async () => {
    await page.click(`#tenant-list tbody tr[data-org="${ORG_ID}"]`);
    await page.locator("#tenant-detail").waitFor({ state: "visible", ...WAIT });
    const title = await text("#tenant-title");
    check(title.includes(ORG_ID) && title.includes(ORG_NAME), `title: ${title}`);
    const facts = await text("#tenant-facts");
    check(/edition/.test(facts), `facts: ${facts}`);
    const admin = page.locator(`#tenant-sync tbody tr[data-user="${ADMIN_ID}"]`);
    await admin.waitFor(WAIT);
    const cells = await admin.locator("td").allInnerTexts();
    check(cells[0] === USER_EMAIL && cells[1] === "held", `row: ${cells.join(" | ")}`);
    check(await admin.locator("button.approve").count() === 1, "no Approve button for the held sync");
    const bob = page.locator(`#tenant-sync tbody tr[data-user="${BOB_ID}"]`);
    check(await bob.locator("button.resync").count() === 1, "no Resync button for Bob");
    check(await bob.locator("button.approve").count() === 0, "an Approve button for Bob, who is not held");
  });

  await step("the organization's invitations, join requests, conflicts and audit log", async () => {
    const invite = page.locator(`#tenant-invites tbody tr[data-email="${INVITED_EMAIL}"]`);
    await invite.waitFor(WAIT);
    const inv = await invite.locator("td").allInnerTexts();
    check(inv[2] === "pending", `invitation: ${inv.join(" | ")}`);
    const join = page.locator(`#tenant-joins tbody tr[data-email="${BOB_EMAIL}"]`);
    await join.waitFor(WAIT);
    const jr = await join.locator("td").allInnerTexts();
    check(jr[2] === "approved" && jr[5] === BOB_ID, `join request: ${jr.join(" | ")}`);
    const conflict = page.locator(`#tenant-conflicts tbody tr[data-event="${CONFLICT_EVENT}"]`);
    await conflict.waitFor(WAIT);
    const cf = await conflict.locator("td").allInnerTexts();
    check(cf[4] === "crm" && cf[5].includes("Planning (CRM)") && cf[6].includes("Planning (Outlook)"),
      `conflict: ${cf.join(" | ")}`);
    check(await page.locator("#tenant-conflicts").getAttribute("data-rows") === "1", "not one conflict shown");
    // The audit log comes in pages of 3 (?page=3): "Show more" adds one.
    const audit = await server(`/api/v1/orgs/${ORG_ID}/audit?limit=6`);
    check(audit.json.items.length === 6, `the audit log has ${audit.json.items.length} entries`);
    await page.waitForFunction(() => document.getElementById("tenant-audit").dataset.rows === "3", null, WAIT);
    await page.click("#tenant-audit-more");
    await page.waitForFunction(() => document.getElementById("tenant-audit").dataset.rows === "6", null, WAIT);
  });

  await step("resync: Bob's event made in Outlook arrives after the page's resync", async () => {
    const before = await server(`/admin/v1/users/${BOB_ID}/events?limit=1000`);
    check(before.status === 200, `events: ${before.text}`);
    check(!before.json.items.some((e) => e.title === BOB_OUTLOOK_EVENT), "the event is in the CRM before the resync");
    const asked = answerNextDialog(true);
    await page.click(`#tenant-sync tbody tr[data-user="${BOB_ID}"] button.resync`);
    const r = await actionResult(/Resync of/);
    check(r.outcome === "ok" && r.text.includes(BOB_EMAIL) && r.text.includes("requested at"), `result: ${r.text}`);
    check(asked.message && asked.message.includes(BOB_EMAIL), `asked: ${asked.message}`);
    await until("the Outlook event reached the CRM", async () => {
      const now = await server(`/admin/v1/users/${BOB_ID}/events?limit=1000`);
      return { ok: now.json && now.json.items.some((e) => e.title === BOB_OUTLOOK_EVENT),
        seen: now.json && now.json.items.map((e) => e.title) };
    });
  });

  await step("mass delete: the held deletions go ahead once approved from the page", async () => {
    const held = await server(`/admin/v1/users/${ADMIN_ID}/sync`);
    check(held.json.state === "held", `state before: ${held.json.state}`);
    const asked = answerNextDialog(true);
    await page.click(`#tenant-sync tbody tr[data-user="${ADMIN_ID}"] button.approve`);
    const r = await actionResult(/Deletions approved|failed/);
    check(r.outcome === "ok" && r.text.includes(USER_EMAIL), `result: ${r.text}`);
    check(asked.message && asked.message.includes("Approve"), `asked: ${asked.message}`);
    await until("the held deletions reached Office 365", async () => {
      const s = await server(`/admin/v1/users/${ADMIN_ID}/sync`);
      return { ok: s.json && s.json.state === "active" && s.json.to_office365.deleted >= 5
        && s.json.outbox === 0, seen: s.json };
    });
    // The page follows: the row is active, without its Approve button.
    const row = `#tenant-sync tbody tr[data-user="${ADMIN_ID}"]`;
    await page.locator(`${row}[data-state="active"]`).waitFor(WAIT);
    check(await page.locator(`${row} button.approve`).count() === 0, "the Approve button stays");
  });

  await step("an action the server refuses shows its error", async () => {
    // Bob's sync turned off (through the API): a resync is refused.
    const off = await server(`/api/v1/orgs/${ORG_ID}/users/${BOB_ID}/calendar-sync`, "PUT", { enabled: false });
    check(off.status === 200, `turning Bob's sync off: ${off.text}`);
    await until("Bob's sync is off", async () => {
      const s = await server(`/admin/v1/users/${BOB_ID}/sync`);
      return { ok: s.json && s.json.state === "disabled", seen: s.json && s.json.state };
    });
    const row = `#tenant-sync tbody tr[data-user="${BOB_ID}"]`;
    await page.locator(`${row}[data-state="disabled"]`).waitFor(WAIT);
    answerNextDialog(true);
    await page.click(`${row} button.resync`);
    const r = await actionResult(/failed/);
    check(r.outcome === "error" && /HTTP 409 sync_disabled/.test(r.text), `result: ${r.text}`);
  });

  await step("edition: a cancelled confirmation changes nothing", async () => {
    const asked = answerNextDialog(false);
    await page.click("#edition-change");
    const r = await actionResult(/cancelled/);
    check(r.text.includes("nothing was sent"), `result: ${r.text}`);
    check(asked.message && asked.message.includes(ORG_ID), `asked: ${asked.message}`);
    const org = await server(`/api/v1/orgs/${ORG_ID}`);
    check(org.json.edition === ORG_EDITION, `edition on the server: ${org.json.edition}`);
  });

  await step("edition: the service admin changes it from the page", async () => {
    const target = ORG_EDITION === "paid" ? "free" : "paid";
    await page.selectOption("#edition-select", target);
    const asked = answerNextDialog(true);
    await page.click("#edition-change");
    const r = await actionResult(/is now|failed/);
    check(r.outcome === "ok" && r.text.includes(`is now ${target}`), `result: ${r.text}`);
    check(asked.message && asked.message.includes(`to ${target}`), `asked: ${asked.message}`);
    const org = await server(`/api/v1/orgs/${ORG_ID}`);
    check(org.json.edition === target, `edition on the server: ${org.json.edition}`);
    // The page shows what changed: the tenant list, the facts, the audit log.
    await page.waitForFunction(([id, ed]) => {
      const row = document.querySelector(`#tenant-list tbody tr[data-org="${id}"]`);
      const fact = document.querySelector('#tenant-facts dd[data-fact="edition"]');
      return row && row.children[2].textContent === ed && fact && fact.textContent === ed;
    }, [ORG_ID, target], WAIT);
    await page.locator('#tenant-audit tbody tr[data-action="org.edition_changed"]').first().waitFor(WAIT);
    const entry = await page.locator('#tenant-audit tbody tr[data-action="org.edition_changed"]').first().locator("td").allInnerTexts();
    check(entry[1] === "service-admin" && entry[3] === `${ORG_EDITION} -> ${target}`, `audit: ${entry.join(" | ")}`);
  });

  await step("charts: rates from /metrics are plotted", async () => {
    // Several polls give rates; the page's own requests are HTTP traffic.
    await page.waitForFunction(() => {
      const f = document.getElementById("chart-http");
      return f && Number(f.dataset.samples) >= Number(f.dataset.historySamples) + 3;
    }, null, WAIT);
    const series = await page.locator("#chart-http").getAttribute("data-series");
    check(series.split(",").includes("2xx"), `HTTP series: ${series}`);
    const points = await page.locator("#chart-http polyline[data-series='2xx']").getAttribute("points");
    check(points.trim().split(" ").length >= 3, `points: ${points}`);
    const legend = await text("#chart-http .legend [data-series='2xx']");
    const rate = Number(/: ([\d.]+)\/s/.exec(legend)?.[1]);
    check(rate > 0, `2xx rate: ${legend}`);
    // The Graph chart has the calls the sync made since the page opened
    // (the driver keeps some traffic going), and every chart is drawn.
    for (const id of ["chart-graph", "chart-throttled", "chart-notifications"]) {
      const n = await page.locator(`#${id} svg`).count();
      check(n === 1, `${id} is not drawn`);
    }
  });

  await step("the token stays for the tab: a reload opens the console again", async () => {
    await page.reload();
    await page.locator("#main").waitFor({ state: "visible", ...WAIT });
    check(await page.locator("#login").isHidden(), "asked for the token again");
  });

  await step("forgetting the token asks for it again", async () => {
    await page.click("#logout");
    await page.locator("#login").waitFor({ state: "visible", ...WAIT });
    const kept = await page.evaluate(() => sessionStorage.getItem("crmsync.admin_token"));
    check(kept === null, "the token is still stored");
  });

  // t16-openapi: the API's documentation page renders the node's OpenAPI
  // document, without a token, with the admin page's dom.js and style.
  await step("/api/docs/ renders every operation of the OpenAPI document", async () => {
    const doc = await (await fetch(`${NODE_URL}/api/v1/openapi.json`)).json();
    let operations = 0;
    for (const item of Object.values(doc.paths))
      for (const m of ["get", "put", "post", "patch", "delete"]) if (item[m]) operations++;
    const res = await page.goto(`${NODE_URL}/api/docs`);
    check(page.url() === `${NODE_URL}/api/docs/`, `/api/docs led to ${page.url()}`);
    check(res.status() === 200, `status ${res.status()}`);
    await page.locator("#filter-bar").waitFor({ state: "visible", ...WAIT });
    const shown = await page.locator("details.op[id]:not([id^=schema-])").count();
    check(shown === operations, `${shown} operations shown, the document has ${operations}`);
    check((await text("#count")) === `${operations} operations`, `count says ${await text("#count")}`);
    await page.fill("#filter", "calendar-sync");
    await page.waitForFunction(() => document.getElementById("count").textContent.startsWith("2 of"), null, WAIT);
    await page.click("#setCalendarSync > summary");
    const body = await text("#setCalendarSync");
    check(body.includes("CalendarSyncStatus") && body.includes("userToken"), `the operation shows: ${body}`);
    await page.goto(`${NODE_URL}/admin/?interval=0.5`);
  });

  await step("the page logged no errors", async () => {
    // The wrong token's 401 and the refused resync's 409 are logged by
    // Chromium as failed resources.
    const real = consoleErrors.filter((e) => !/status of (401|409)\b/.test(e));
    check(real.length === 0, `console: ${real.join(" / ")}`);
  });

  if (process.env.SCREENSHOT) {
    await page.goto(`${NODE_URL}/admin/?interval=0.5`);
    await page.fill("#token", ADMIN_TOKEN);
    await page.click("#login-form button[type=submit]");
    await page.locator("#main").waitFor({ state: "visible", ...WAIT });
    await page.waitForFunction(() => Number(document.getElementById("chart-http").dataset.samples) >= 4, null, WAIT);
    await page.screenshot({ path: process.env.SCREENSHOT, fullPage: true });
  }
} finally {
  await browser.close();
  clearTimeout(overall);
}

console.log(failures === 0 ? "web admin page: all steps passed"
  : `web admin page: ${failures} step(s) failed`);
process.exit(failures === 0 ? 0 : 1);
