// The Office 365 pages in headless Chromium (Debian's /usr/bin/chromium,
// driven by playwright-core): a person with a browser walks the install
// and a sign-in, picking who they are on graph-emulator's sign-in page.
// Started by the C++ driver (tests/web/page_test.cpp, "[web][pages]") with
// a fresh graph-emulator and crmsyncd:
//   NODE_URL      http://127.0.0.1:PORT of the node
// Every step prints PASS or FAIL with what it saw; any failure exits 1.

import { chromium } from "playwright-core";

const NODE_URL = process.env.NODE_URL;
if (!NODE_URL) {
  console.error("pages_test: NODE_URL is not set (page_test.cpp sets it)");
  process.exit(2);
}
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

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update",
    "--disable-sync"],
});
const WAIT = { timeout: 15_000 };

/// A fresh browser (its own cookies) for one person.
async function person() {
  const context = await browser.newContext();
  const page = await context.newPage();
  const problems = [];
  page.on("console", (m) => { if (m.type() === "error") problems.push(m.text()); });
  page.on("pageerror", (e) => problems.push(String(e)));
  return { context, page, problems };
}

/// On graph-emulator's page: the button of `upn`.
async function pick(page, upn) {
  const button = page.locator(`button[name=login_hint][value="${upn}"]`);
  await button.waitFor(WAIT);
  await button.click();
}

try {
  const admin = await person();
  await step("install: the emulator asks who signs in, then for consent", async () => {
    await admin.page.goto(`${NODE_URL}/o365/install`);
    check(/Sign in as/.test(await admin.page.locator("h1").innerText()),
      `heading: ${await admin.page.locator("h1").innerText()}`);
    // Every person of the tenant is offered.
    for (const upn of ["admin@contoso.com", "bob@contoso.com"])
      check(await admin.page.locator(`button[value="${upn}"]`).count() === 1,
        `${upn} is not offered`);
    await pick(admin.page, "admin@contoso.com");
    await admin.page.locator("h1", { hasText: "Grant admin consent as" }).waitFor(WAIT);
    // Only administrators can consent.
    check(await admin.page.locator('button[value="bob@contoso.com"]').count() === 0,
      "bob is offered to grant consent");
  });

  await step("install: a page says the organization was created", async () => {
    const [res] = await Promise.all([
      admin.page.waitForNavigation(WAIT),
      pick(admin.page, "admin@contoso.com"),
    ]);
    check(new URL(admin.page.url()).pathname === "/o365/consent-callback",
      `landed on ${admin.page.url()}`);
    const h1 = await admin.page.locator("h1").innerText();
    check(h1 === "crmsync is installed", `heading: ${h1}`);
    const body = await admin.page.locator("body").innerText();
    check(/A new CRM organization was created/.test(body), `page: ${body}`);
    check(/Ada Admin/.test(body) && /admin@contoso\.com/.test(body), `page: ${body}`);
    const csp = res && (await res.allHeaders())["content-security-policy"];
    check(csp && csp.includes("default-src 'none'"), `CSP: ${csp}`);
  });

  await step("install again: the page says the organization is linked", async () => {
    await admin.page.goto(`${NODE_URL}/o365/install`);
    await pick(admin.page, "admin@contoso.com");
    await admin.page.locator("h1", { hasText: "crmsync is installed" }).waitFor(WAIT);
    const body = await admin.page.locator("body").innerText();
    check(/linked to your existing CRM organization/.test(body), `page: ${body}`);
  });

  const bob = await person();
  await step("sign-in of a non-member: a page, and no session in the URL", async () => {
    await bob.page.goto(`${NODE_URL}/o365/signin`);
    await pick(bob.page, "bob@contoso.com");
    await bob.page.locator("h1", { hasText: "Not a member yet" }).waitFor(WAIT);
    const body = await bob.page.locator("body").innerText();
    check(/bob@contoso\.com/.test(body), `page: ${body}`);
    check(!/o365_/.test(bob.page.url()) && !/o365_/.test(body),
      `a session shows: ${bob.page.url()} ${body}`);
  });

  await step("a broken invitation link: a clear page", async () => {
    const before = bob.problems.length;
    const res = await bob.page.goto(`${NODE_URL}/invite/not-a-token`);
    check(res.status() === 400, `status ${res.status()}`);
    // Chromium logs the document's own 400 as a console error: expected
    // here, and only that one.
    const fresh = bob.problems.splice(before);
    check(fresh.every((m) => /status of 400/.test(m)), `console: ${fresh.join(" | ")}`);
    const body = await bob.page.locator("body").innerText();
    check(/open the link from the invitation e-mail/.test(body), `page: ${body}`);
  });

  await step("the pages run no script and load nothing", async () => {
    const all = [...admin.problems, ...bob.problems];
    check(all.length === 0, `console: ${all.join(" | ")}`);
  });
} finally {
  clearTimeout(overall);
  await browser.close();
}
if (failures > 0) {
  console.log(`${failures} step(s) failed`);
  process.exit(1);
}
console.log("all steps passed");
