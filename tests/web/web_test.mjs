// The web admin page in headless Chromium (Debian's /usr/bin/chromium,
// driven by playwright-core) against a running crmsyncd. Started by the
// C++ driver (tests/web/page_test.cpp) once the node has an organization
// whose admin syncs a calendar, with:
//   NODE_URL      http://127.0.0.1:PORT of the node
//   ADMIN_TOKEN   its service admin token
//   ORG_ID, ORG_NAME, USER_EMAIL   what the page must show
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
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";

const OVERALL_MS = 90_000;
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
const WAIT = { timeout: 15_000 };

try {
  await step("/admin redirects to /admin/ and asks for the token", async () => {
    const res = await page.goto(`${NODE_URL}/admin?interval=0.5`);
    check(res.ok(), `the page answered ${res.status()}`);
    check(new URL(page.url()).pathname === "/admin/", `landed on ${page.url()}`);
    await page.locator("#login").waitFor({ state: "visible", ...WAIT });
    check(await page.locator("#main").isHidden(), "the console shows without a token");
  });

  // The redirect drops the query string: open the page with fast polling.
  await page.goto(`${NODE_URL}/admin/?interval=0.5`);

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

  await step("the right token opens the console", async () => {
    await page.fill("#token", ADMIN_TOKEN);
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

  await step("sync health: the user is active with a live subscription", async () => {
    const row = page.locator(`#sync-users tbody tr[data-email="${USER_EMAIL}"]`);
    await row.waitFor(WAIT);
    const cells = await row.locator("td").allInnerTexts();
    check(cells[2] === "active", `state: ${cells[2]} (row: ${cells.join(" | ")})`);
    check(/^live, /.test(cells[5]), `subscription: ${cells[5]}`);
    check(cells[4] !== "never", `last delta: ${cells[4]}`);
    const live = await text("#card-subs-live .value");
    check(live === "1", `live subscriptions card: ${live}`);
    const active = await text("#card-users-active .value");
    check(active === "1", `active users card: ${active}`);
  });

  await step("drill into the tenant: its facts and its syncing user", async () => {
    await page.click(`#tenant-list tbody tr[data-org="${ORG_ID}"]`);
    await page.locator("#tenant-detail").waitFor({ state: "visible", ...WAIT });
    const title = await text("#tenant-title");
    check(title.includes(ORG_ID) && title.includes(ORG_NAME), `title: ${title}`);
    const facts = await text("#tenant-facts");
    check(/edition/.test(facts), `facts: ${facts}`);
    await page.locator("#tenant-sync tbody tr td", { hasText: USER_EMAIL }).waitFor(WAIT);
    const cells = await page.locator("#tenant-sync tbody tr").first().locator("td").allInnerTexts();
    check(cells[0] === USER_EMAIL && cells[1] === "active", `row: ${cells.join(" | ")}`);
  });

  await step("charts: rates from /metrics are plotted", async () => {
    // Several polls give rates; the page's own requests are HTTP traffic.
    await page.waitForFunction(() => {
      const f = document.getElementById("chart-http");
      return f && Number(f.dataset.samples) >= 3;
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
    // The wrong token's 401 is logged by Chromium as a failed resource.
    const real = consoleErrors.filter((e) => !/401/.test(e));
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
