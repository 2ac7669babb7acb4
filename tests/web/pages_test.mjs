// The Office 365 pages in headless Chromium (Debian's /usr/bin/chromium,
// driven by playwright-core): people with a browser walk every path of
// issue 14 (install with the terms, associate then install, an invitation
// joined and one associated, a request to join approved, an expired link),
// picking who they are on graph-emulator's sign-in page. Started by the
// C++ driver (tests/web/page_test.cpp, "[web][pages]"), which prepares:
//   NODE_URL       http://127.0.0.1:PORT of the node (contoso.com installed,
//                  paid; fabrikam.com and northwind.com not installed)
//   EMULATOR_URL   the graph-emulator (its /_emulator/mail)
//   BOB_INVITE, USER01_INVITE   invitation tokens of bob and user01
//   LATE_NODE_URL, LATE_INVITE  another node, and Bob's expired invitation
//   ORG_ID         contoso.com's organization
//   DANA_SETUP     the e-mailed link of Dana (made without a password)
//   USED_SETUP, LATE_SETUP  paths of a used password link (this node) and
//                  an expired one (the other node)
// Every step prints PASS or FAIL with what it saw; any failure exits 1.

import { chromium } from "playwright-core";

const NODE_URL = process.env.NODE_URL;
if (!NODE_URL) {
  console.error("pages_test: NODE_URL is not set (page_test.cpp sets it)");
  process.exit(2);
}
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const { EMULATOR_URL, BOB_INVITE, USER01_INVITE, LATE_NODE_URL, LATE_INVITE,
  ORG_ID, DANA_SETUP, USED_SETUP, LATE_SETUP } = process.env;

const OVERALL_MS = 180_000;
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

/// The heading of the page `p` shows now.
async function heading(p) {
  return (await p.locator("h1").innerText()).trim();
}

/// Waits for a page whose heading matches `re`; returns its text.
async function landed(p, re) {
  await p.locator("h1", { hasText: re }).waitFor(WAIT);
  return p.locator("body").innerText();
}

/// Clicks the button labelled `label` and waits for the next page.
async function submit(p, label) {
  await Promise.all([
    p.waitForNavigation(WAIT),
    p.locator(`button:has-text("${label}")`).click(),
  ]);
}

/// Chromium logs a document's own 4xx as a console error: expected for the
/// refusal pages, and only those statuses.
function expectStatusLogs(who, before, statuses) {
  const fresh = who.problems.splice(before);
  const re = new RegExp(`status of (${statuses.join("|")})`);
  check(fresh.every((m) => re.test(m)), `console: ${fresh.join(" | ")}`);
}

/// The session cookie of a browser: HttpOnly, SameSite=Lax.
async function checkSessionCookie(who) {
  const cookies = await who.context.cookies();
  const c = cookies.find((x) => x.name === "crmsync_session");
  check(c, `no session cookie: ${JSON.stringify(cookies)}`);
  check(c.httpOnly && c.sameSite === "Lax" && c.path === "/",
    `cookie: ${JSON.stringify(c)}`);
  check(!who.page.url().includes(c.value), `the URL has the session: ${who.page.url()}`);
  // Scripts of the page cannot read it.
  check(!(await who.page.evaluate(() => document.cookie)).includes("crmsync_session"),
    "document.cookie shows the session");
}

/// The newest link to `prefix` in the mail `upn` sent (graph-emulator).
async function mailedLink(upn, prefix) {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    const res = await fetch(`${EMULATOR_URL}/_emulator/mail?user=${encodeURIComponent(upn)}`);
    const all = (await res.json()).value || [];
    for (const m of all.reverse()) {
      const html = m.message.body.content;
      const at = html.indexOf(`href="${prefix}`);
      if (at >= 0) return html.slice(at + 6, html.indexOf('"', at + 6));
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`no mail of ${upn} links to ${prefix}`);
}

try {
  const eve = await person();
  await step("install with the terms: sign in, accept, consent, a page says what happened", async () => {
    await eve.page.goto(`${NODE_URL}/o365/install`);
    check(/Sign in as/.test(await heading(eve.page)), `heading: ${await heading(eve.page)}`);
    for (const upn of ["admin@contoso.com", "eve@fabrikam.com"])
      check(await eve.page.locator(`button[value="${upn}"]`).count() === 1,
        `${upn} is not offered`);
    await pick(eve.page, "eve@fabrikam.com");
    const terms = await landed(eve.page, "Install crmsync");
    check(/Terms and conditions/.test(terms), `page: ${terms}`);
    await checkSessionCookie(eve);
    await submit(eve.page, "Accept and continue");
    await eve.page.locator("h1", { hasText: "Grant admin consent as" }).waitFor(WAIT);
    check(await eve.page.locator('button[value="bob@contoso.com"]').count() === 0,
      "bob is offered to grant consent");
    const [res] = await Promise.all([
      eve.page.waitForNavigation(WAIT),
      pick(eve.page, "eve@fabrikam.com"),
    ]);
    const body = await landed(eve.page, "crmsync is installed");
    check(/A new CRM organization was created/.test(body), `page: ${body}`);
    check(/eve@fabrikam\.com/.test(body), `page: ${body}`);
    const csp = res && (await res.allHeaders())["content-security-policy"];
    check(csp && csp.includes("default-src 'none'"), `CSP: ${csp}`);
  });

  await step("install again: the page says the organization is linked", async () => {
    await eve.page.goto(`${NODE_URL}/o365/install`);
    await pick(eve.page, "eve@fabrikam.com");
    await landed(eve.page, "Install crmsync");
    await submit(eve.page, "Accept and continue");
    const body = await landed(eve.page, "crmsync is installed");
    check(/linked to your existing CRM organization/.test(body), `page: ${body}`);
  });

  const nora = await person();
  await step("associate my account, then install", async () => {
    await nora.page.goto(`${NODE_URL}/o365/install`);
    await pick(nora.page, "nora@northwind.com");
    await landed(nora.page, "Install crmsync");
    // A wrong password first: a page says so, and the form is there again.
    await nora.page.fill('input[name="email"]', "boss@acme.example");
    await nora.page.fill('input[name="password"]', "wrong-password");
    const before = nora.problems.length;
    await submit(nora.page, "Associate my account");
    const refused = await nora.page.locator("body").innerText();
    check(/not right/.test(refused), `page: ${refused}`);
    expectStatusLogs(nora, before, [401]);
    await nora.page.goBack();
    await landed(nora.page, "Install crmsync");
    await nora.page.fill('input[name="email"]', "boss@acme.example");
    await nora.page.fill('input[name="password"]', "acme-password-1");
    await submit(nora.page, "Associate my account");
    await nora.page.locator("h1", { hasText: "Grant admin consent as" }).waitFor(WAIT);
    await pick(nora.page, "nora@northwind.com");
    const body = await landed(nora.page, "crmsync is installed");
    check(/linked to your existing CRM organization/.test(body), `page: ${body}`);
    check(/Acme/.test(body), `page: ${body}`);
  });

  const bob = await person();
  await step("invitation: sign in, the terms, Join", async () => {
    await bob.page.goto(`${NODE_URL}/invite/${BOB_INVITE}`);
    await pick(bob.page, "bob@contoso.com");
    const page = await landed(bob.page, "You are invited to");
    check(/Terms and conditions/.test(page) && /Associate my account/.test(page),
      `page: ${page}`);
    await checkSessionCookie(bob);
    await submit(bob.page, "Accept the terms and join");
    const body = await landed(bob.page, "You are signed in");
    check(/You joined the organization/.test(body), `page: ${body}`);
    check(/bob@contoso\.com/.test(body), `page: ${body}`);
  });

  await step("invitation used, and someone else's: clear pages", async () => {
    const before = bob.problems.length;
    await bob.page.goto(`${NODE_URL}/invite/${BOB_INVITE}`);
    await landed(bob.page, "This invitation was already used");
    await bob.page.goto(`${NODE_URL}/invite/${USER01_INVITE}`);
    const other = await landed(bob.page, "This invitation is for someone else");
    check(!/Accept the terms and join/.test(other), `page: ${other}`);
    expectStatusLogs(bob, before, [403, 410]);
  });

  const user01 = await person();
  await step("invitation: Associate my account", async () => {
    await user01.page.goto(`${NODE_URL}/invite/${USER01_INVITE}`);
    await pick(user01.page, "user01@contoso.com");
    await landed(user01.page, "You are invited to");
    await user01.page.fill('input[name="email"]', "boss@elsewhere.example");
    await user01.page.fill('input[name="password"]', "elsewhere-password-1");
    await submit(user01.page, "Associate my account");
    const body = await landed(user01.page, "You are signed in");
    check(/associated with your CRM account/.test(body), `page: ${body}`);
  });

  const user03 = await person();
  await step("invitation: opened through the app instead of the e-mail", async () => {
    await user03.page.goto(`${NODE_URL}/o365/signin`);
    await pick(user03.page, "user03@contoso.com");
    const page = await landed(user03.page, "Not a member yet");
    check(/Your invitation/.test(page) && /Terms and conditions/.test(page), `page: ${page}`);
    await submit(user03.page, "Accept the terms and join");
    const body = await landed(user03.page, "You are signed in");
    check(/You joined the organization/.test(body), `page: ${body}`);
  });

  const user02 = await person();
  const admin = await person();
  await step("request to join, approved on the e-mail's page", async () => {
    await user02.page.goto(`${NODE_URL}/o365/signin`);
    await pick(user02.page, "user02@contoso.com");
    await landed(user02.page, "Not a member yet");
    await submit(user02.page, "Request to join");
    let body = await landed(user02.page, "Your request to join");
    check(/pending/.test(body), `page: ${body}`);

    const link = await mailedLink("admin@contoso.com", `${NODE_URL}/join-requests/`);
    await admin.page.goto(link);
    await pick(admin.page, "admin@contoso.com");
    body = await landed(admin.page, "Join request");
    check(/user02@contoso\.com/.test(body), `page: ${body}`);
    await submit(admin.page, "Approve & Add");
    body = await landed(admin.page, "Approved");
    check(/user02@contoso\.com/.test(body), `page: ${body}`);

    await user02.page.goto(`${NODE_URL}/o365/join-request`);
    body = await landed(user02.page, "Your request to join");
    check(/approved/.test(body), `page: ${body}`);
  });

  await step("a user without Manage Users opens the approval link: told why not", async () => {
    const link = await mailedLink("admin@contoso.com", `${NODE_URL}/join-requests/`);
    const before = bob.problems.length;
    await bob.page.goto(link);
    await pick(bob.page, "bob@contoso.com");
    const body = await landed(bob.page, "Only user managers approve");
    check(/Manage Users/.test(body), `page: ${body}`);
    check(await bob.page.locator("button").count() === 0, `page: ${body}`);
    expectStatusLogs(bob, before, [403]);
  });

  const late = await person();
  await step("an expired invitation link: a clear page", async () => {
    const before = late.problems.length;
    await late.page.goto(`${LATE_NODE_URL}/invite/${LATE_INVITE}`);
    await pick(late.page, "bob@contoso.com");
    const body = await landed(late.page, "This invitation has expired");
    check(!/Accept the terms and join/.test(body), `page: ${body}`);
    expectStatusLogs(late, before, [410]);
  });

  await step("a broken invitation link: a clear page", async () => {
    const before = bob.problems.length;
    const res = await bob.page.goto(`${NODE_URL}/invite/not-a-token`);
    check(res.status() === 400, `status ${res.status()}`);
    expectStatusLogs(bob, before, [400]);
    const body = await bob.page.locator("body").innerText();
    check(/open the link from the invitation e-mail/.test(body), `page: ${body}`);
  });

  const dana = await person();
  /// Fills the password form twice and submits it.
  async function choose(password, confirm) {
    await dana.page.fill('input[name="password"]', password);
    await dana.page.fill('input[name="confirm"]', confirm);
    await submit(dana.page, "Set my password");
  }
  await step("password link: the form, clear errors, then set and signed in", async () => {
    const res = await dana.page.goto(DANA_SETUP);
    let body = await landed(dana.page, "Choose your password");
    check(/dana@crm\.example/.test(body), `page: ${body}`);
    const csp = (await res.allHeaders())["content-security-policy"];
    check(csp && csp.includes("default-src 'none'"), `CSP: ${csp}`);
    const before = dana.problems.length;
    // Refused by the page's own rule (the browser's minlength is bypassed
    // here so that the node's answer shows).
    await dana.page.locator("form").evaluate((f) => { f.noValidate = true; });
    await choose("short", "short");
    body = await landed(dana.page, "Choose your password");
    check(/at least 8 characters/.test(body) && /invalid_field/.test(body), `page: ${body}`);
    await choose("dana-password-1", "dana-password-2");
    body = await landed(dana.page, "Choose your password");
    check(/not the same/.test(body) && /password_mismatch/.test(body), `page: ${body}`);
    expectStatusLogs(dana, before, [400]);
    await choose("dana-password-1", "dana-password-1");
    body = await landed(dana.page, "Your password is set");
    check(/signed in/.test(body) && /dana@crm\.example/.test(body), `page: ${body}`);
    const token = await dana.page.locator("code").first().innerText();
    check(/^crm_/.test(token), `token: ${token}`);
    // Signed in: the token is Dana's.
    const me = await fetch(`${NODE_URL}/api/v1/orgs/${ORG_ID}/users/me`,
      { headers: { authorization: `Bearer ${token}` } });
    check(me.status === 200, `GET me: ${me.status}`);
    check((await me.json()).email === "dana@crm.example", "the token is someone else's");
  });

  await step("password links used, forged or expired: clear pages, no form", async () => {
    const before = dana.problems.length;
    const links = [
      [DANA_SETUP, 404, "This password link does not work"],
      [`${NODE_URL}${USED_SETUP}`, 404, "This password link does not work"],
      [`${NODE_URL}${USED_SETUP.slice(0, -4)}AAAA`, 404, "This password link does not work"],
      [`${NODE_URL}/password-setup/not-a-token`, 404, "This password link does not work"],
      [`${LATE_NODE_URL}${LATE_SETUP}`, 410, "This password link has expired"],
    ];
    for (const [url, status, title] of links) {
      const res = await dana.page.goto(url);
      check(res.status() === status, `${url}: status ${res.status()}`);
      const body = await landed(dana.page, title);
      check(await dana.page.locator("form").count() === 0, `${url}: page: ${body}`);
    }
    expectStatusLogs(dana, before, [404, 410]);
  });

  await step("the pages run no script, load nothing and log no errors", async () => {
    const all = [eve, nora, bob, user01, user03, user02, admin, late, dana].flatMap((w) => w.problems);
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
