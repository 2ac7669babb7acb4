// A typed client generated from crmsyncd's OpenAPI document drives a flow
// end to end, and every answer is checked against the document. Started by
// run.sh, which generates out/api.d.ts (openapi-typescript) and compiles
// this file against it with tsc --strict, then passes
//   CRMSYNCD          the crmsyncd binary under test
//   GRAPH_EMULATOR    graph-emulator: Microsoft 365 for the Office 365 flows
//   OPENAPI_DOCUMENT  api/openapi/openapi.json
// The node runs on a loopback port chosen by the kernel in a temporary data
// directory; both go when the test ends. Every answer's status must be one
// the document lists for the operation, and its JSON body must validate
// against the schema given there (answer_check.mjs: ajv, JSON Schema
// 2020-12 as OpenAPI 3.1 uses it). Any failure exits 1 and says what
// differed.

import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import assert from "node:assert/strict";
import createClient, { type Middleware } from "openapi-fetch";
import { answerChecker } from "./answer_check.mjs";
import type { paths } from "./out/api.js";

type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any

const crmsyncd = process.env.CRMSYNCD;
const emulatorPath = process.env.GRAPH_EMULATOR;
const documentPath = process.env.OPENAPI_DOCUMENT;
if (!crmsyncd || !emulatorPath || !documentPath) {
  console.error("flow_test: set CRMSYNCD, GRAPH_EMULATOR and OPENAPI_DOCUMENT (run.sh does)");
  process.exit(2);
}
const documentText = readFileSync(documentPath, "utf8");
const doc: Json = JSON.parse(documentText);

// The whole test must end well within ctest's timeout.
const overall = setTimeout(() => {
  console.error("FAIL: the flow did not finish within 120 s");
  finish(1);
}, 120_000);

// -- the document's checks (answer_check.mjs, shared with validate.mjs) -------

const check = answerChecker(doc);

const failures: string[] = [];
const exercised = new Set<string>(); // "METHOD /path status"
let checked = 0;

/// Checks one answer against the operation `method path` of the document.
async function checkAnswer(method: string, path: string, response: Response): Promise<void> {
  const where = `${method} ${path} → ${response.status}`;
  if (!doc.paths?.[path]?.[method.toLowerCase()]) {
    failures.push(`${where}: the document has no such operation`);
    return;
  }
  exercised.add(`${method} ${path} ${response.status}`);
  const text = await response.text();
  for (const f of check.answer(method, path, response.status, response.headers.get("content-type") || "", text))
    failures.push(`${where}: ${f}`);
  ++checked;
}

/// Every answer through the typed client is checked.
const validating: Middleware = {
  async onResponse({ request, response, schemaPath }) {
    await checkAnswer(request.method, schemaPath, response.clone());
    return undefined;
  },
};

// -- the node -----------------------------------------------------------------

const dataDir = mkdtempSync(join(tmpdir(), "crmsync-openapi-"));
const adminToken = "adm_" + randomBytes(24).toString("base64url");
const clientId = "crmsync-openapi-test";
const clientSecret = randomBytes(18).toString("base64url");
const children: ChildProcess[] = [];

function finish(code: number): never {
  clearTimeout(overall);
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
  rmSync(dataDir, { recursive: true, force: true });
  process.exit(code);
}

/// Starts `program` and resolves with the URL of its listening line.
async function start(program: string, args: string[], listening: RegExp): Promise<string> {
  const child = spawn(program, args, { stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  let log = "";
  child.stderr!.on("data", (d: Buffer) => {
    log += d.toString();
  });
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`${program} did not print its listening line within 20 s:\n${log}`)), 20_000);
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const m = listening.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${program} exited (${code}) before listening:\n${log}`));
    });
  });
}

async function emulatorCall(emulator: string, path: string, body: unknown): Promise<Json> {
  const r = await fetch(emulator + path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  assert.equal(r.status, 201, `${path}: ${await r.clone().text()}`);
  return r.json();
}

/// graph-emulator with the contoso.com tenant and crmsync's app (no
/// consent yet); the Office 365 ids of its people by user principal name.
async function startEmulator(): Promise<{ url: string; ids: Map<string, string> }> {
  const url = await start(emulatorPath!, ["--listen", "127.0.0.1:0"], /graph-emulator listening on (http:\/\/127\.0\.0\.1:\d+)/);
  const people = ["admin", "bob", "carol", "dave", "erin"];
  const tenant = await emulatorCall(url, "/_emulator/tenants", {
    domain: "contoso.com",
    users: people.map((p) => ({ userPrincipalName: `${p}@contoso.com`, displayName: p, mail: `${p}@contoso.com`, isAdmin: p === "admin" })),
  });
  await emulatorCall(url, "/_emulator/apps", { client_id: clientId, client_secret: clientSecret, tenants: [] });
  const ids = new Map<string, string>();
  for (const u of tenant.users) ids.set(u.userPrincipalName, u.id);
  return { url, ids };
}

function startNode(emulator: string): Promise<string> {
  return start(
    crmsyncd!,
    ["--listen", "127.0.0.1:0", "--data-dir", join(dataDir, "node"), "--admin-token", adminToken,
      "--graph-base-url", emulator + "/v1.0", "--login-base-url", emulator,
      "--client-id", clientId, "--client-secret", clientSecret],
    /crmsyncd listening on (http:\/\/127\.0\.0\.1:\d+)/,
  );
}

// -- the flow -----------------------------------------------------------------

async function step(name: string, fn: () => Promise<void>): Promise<void> {
  const before = failures.length;
  try {
    await fn();
  } catch (err) {
    failures.push(`${name}: ${err instanceof Error ? err.stack || err.message : String(err)}`);
  }
  console.log(`${failures.length === before ? "PASS" : "FAIL"} ${name}`);
  for (const f of failures.slice(before)) console.log("  " + f);
}

function bearer(token: string) {
  return { Authorization: `Bearer ${token}` };
}

async function main(): Promise<void> {
  const emulator = await startEmulator();
  const baseUrl = await startNode(emulator.url);
  console.log(`crmsyncd at ${baseUrl}, graph-emulator at ${emulator.url}`);
  const client = (token?: string) => {
    const c = createClient<paths>({ baseUrl, headers: token ? bearer(token) : {} });
    c.use(validating);
    return c;
  };
  const anon = client();
  const admin = client(adminToken);

  await step("health and the document itself, without a token", async () => {
    const h = await anon.GET("/healthz");
    assert.equal(h.data?.status, "ok");
    const ready = await anon.GET("/readyz");
    assert.equal(ready.data?.status, "ready");
    const served = await fetch(`${baseUrl}/api/v1/openapi.json`);
    assert.equal(served.status, 200);
    assert.equal(await served.text(), documentText, "the node serves api/openapi/openapi.json as it is");
    await checkAnswer("GET", "/api/v1/openapi.json", await fetch(`${baseUrl}/api/v1/openapi.json`));
  });

  await step("the documentation page: no token, nothing secret, nothing from elsewhere", async () => {
    const moved = await fetch(`${baseUrl}/api/docs`, { redirect: "manual" });
    assert.equal(moved.status, 301);
    assert.equal(moved.headers.get("location"), "/api/docs/");
    await checkAnswer("GET", "/api/docs", await fetch(`${baseUrl}/api/docs`, { redirect: "manual" }));
    for (const file of ["", "docs.js", "docs.css"]) {
      const r = await fetch(`${baseUrl}/api/docs/${file}`);
      assert.equal(r.status, 200, file);
      const csp = r.headers.get("content-security-policy") || "";
      assert.match(csp, /default-src 'self'/, "the page loads nothing from elsewhere");
      const text = await r.text();
      assert.ok(!text.includes(adminToken), `${file || "the page"} shows the admin token`);
      assert.ok(!text.includes(dataDir), `${file || "the page"} shows the data directory`);
      assert.ok(!/https?:\/\//.test(text.replace(/https?:\/\/(www\.)?w3\.org[^"]*/g, "")), `${file || "the page"} refers to another site`);
      if (file) await checkAnswer("GET", "/api/docs/{file}", await fetch(`${baseUrl}/api/docs/${file}`));
    }
    assert.ok(!documentText.includes(adminToken), "the document holds the admin token");
    const missing = await anon.GET("/api/docs/{file}", { params: { path: { file: "secret.txt" } } });
    assert.equal(missing.response.status, 404);
  });

  let orgId = "";
  let orgName = "";
  let ownerToken = "";
  let memberId = "";
  let memberToken = "";
  let eventId = "";

  await step("the service admin makes an organization; nobody else may", async () => {
    orgName = "OpenAPI Co " + randomBytes(3).toString("hex");
    const body = { name: orgName, edition: "paid" as const, admin: { email: "owner@openapi.test", name: "Owner", password: "correct horse battery" } };
    const none = await anon.POST("/api/v1/orgs", { body });
    assert.equal(none.response.status, 401);
    assert.equal(none.error?.error.code, "missing_token");
    const made = await admin.POST("/api/v1/orgs", { body });
    assert.equal(made.response.status, 201);
    orgId = made.data!.org.id;
    ownerToken = made.data!.admin.token;
    assert.equal(made.data!.org.name, orgName);
    const owner = client(ownerToken);
    const again = await owner.POST("/api/v1/orgs", { body: { ...body, name: "Second" } });
    assert.equal(again.response.status, 403);
  });

  const owner = client(ownerToken);
  await step("the organization's administrator reads and changes it", async () => {
    const got = await owner.GET("/api/v1/orgs/{org}", { params: { path: { org: orgId } } });
    assert.equal(got.data?.id, orgId);
    const changed = await owner.PATCH("/api/v1/orgs/{org}", { params: { path: { org: orgId } }, body: { conflict_policy: "crm" } });
    assert.equal(changed.data?.conflict_policy, "crm");
    const billing = await owner.PATCH("/api/v1/orgs/{org}", { params: { path: { org: orgId } }, body: { edition: "free" } });
    assert.equal(billing.response.status, 403);
    const empty = await owner.PATCH("/api/v1/orgs/{org}", { params: { path: { org: orgId } }, body: {} as never });
    assert.equal(empty.response.status, 400);
    const other = await owner.GET("/api/v1/orgs/{org}", { params: { path: { org: "0123456789abcdef" } } });
    assert.equal(other.response.status, 404);
  });

  await step("users: add one without a password, list, read", async () => {
    const made = await owner.POST("/api/v1/orgs/{org}/users", {
      params: { path: { org: orgId } },
      body: { email: "member@openapi.test", name: "Member", profile: "standard" },
    });
    assert.equal(made.response.status, 201);
    memberId = made.data!.id;
    memberToken = made.data!.token;
    assert.ok(made.data!.password_setup_url, "a user without a password gets a link");
    const dup = await owner.POST("/api/v1/orgs/{org}/users", {
      params: { path: { org: orgId } },
      body: { email: "member@openapi.test", name: "Again", profile: "standard" },
    });
    assert.equal(dup.response.status, 409);
    const page = await owner.GET("/api/v1/orgs/{org}/users", { params: { path: { org: orgId }, query: { limit: 1 } } });
    assert.equal(page.data?.items.length, 1);
    assert.ok(page.data?.next_cursor);
    const next = await owner.GET("/api/v1/orgs/{org}/users", {
      params: { path: { org: orgId }, query: { limit: 1, cursor: page.data!.next_cursor! } },
    });
    assert.equal(next.data?.items.length, 1);
    const me = await client(memberToken).GET("/api/v1/orgs/{org}/users/{user}", { params: { path: { org: orgId, user: "me" } } });
    assert.equal(me.data?.id, memberId);
    const bad = await owner.GET("/api/v1/orgs/{org}/users", { params: { path: { org: orgId }, query: { limit: 0 } } });
    assert.equal(bad.response.status, 400);
    assert.equal(bad.error?.error.field, "limit");
  });

  const member = client(memberToken);
  await step("events: create, list, change with a version, stale change, delete", async () => {
    const path = { org: orgId, user: "me" };
    const made = await member.POST("/api/v1/orgs/{org}/users/{user}/events", {
      params: { path },
      body: {
        title: "Kick-off",
        start: "2026-12-08T09:00:00Z",
        end: "2026-12-08T10:00:00Z",
        participants: ["a@openapi.test", { email: "b@openapi.test", name: "B" }],
        sensitivity: "private",
        show_as: "busy",
        categories: ["Red"],
      },
    });
    assert.equal(made.response.status, 201);
    eventId = made.data!.id;
    assert.equal(made.data!.version, 1);
    const allDay = await member.POST("/api/v1/orgs/{org}/users/{user}/events", {
      params: { path },
      body: { title: "Holiday", start: "2026-12-24", end: "2026-12-25", all_day: true },
    });
    assert.equal(allDay.response.status, 201);
    const list = await member.GET("/api/v1/orgs/{org}/users/{user}/events", {
      params: { path, query: { from: "2026-12-01", to: "2026-12-31" } },
    });
    assert.equal(list.data?.items.length, 2);
    const ev = { org: orgId, event: eventId };
    const changed = await member.PATCH("/api/v1/orgs/{org}/events/{event}", { params: { path: ev }, body: { title: "Kick-off!", version: 1 } });
    assert.equal(changed.data?.version, 2);
    const stale = await member.PATCH("/api/v1/orgs/{org}/events/{event}", { params: { path: ev }, body: { title: "Lost", version: 1 } });
    assert.equal(stale.response.status, 409);
    const wrong = await member.PATCH("/api/v1/orgs/{org}/events/{event}", { params: { path: ev }, body: { show_as: "away" as never } });
    assert.equal(wrong.response.status, 400);
    assert.equal(wrong.error?.error.field, "show_as");
    const got = await member.GET("/api/v1/orgs/{org}/events/{event}", { params: { path: ev } });
    assert.equal(got.data?.title, "Kick-off!");
    const gone = await member.DELETE("/api/v1/orgs/{org}/events/{event}", { params: { path: ev, query: { version: 2 } } });
    assert.equal(gone.response.status, 204);
    const again = await member.GET("/api/v1/orgs/{org}/events/{event}", { params: { path: ev } });
    assert.equal(again.response.status, 404);
  });

  await step("import and mass update", async () => {
    const imported = await owner.POST("/api/v1/orgs/{org}/events/import", {
      params: { path: { org: orgId } },
      body: {
        owner: memberId,
        events: [
          { title: "One", start: "2026-12-09T09:00:00Z", end: "2026-12-09T09:30:00Z" },
          { title: "Two", start: "2026-12-10T09:00:00Z", end: "2026-12-10T09:30:00Z" },
        ],
      },
    });
    assert.equal(imported.response.status, 201);
    const ids = imported.data!.ids;
    assert.equal(ids.length, 2);
    const updated = await owner.POST("/api/v1/orgs/{org}/events/mass-update", {
      params: { path: { org: orgId } },
      body: { ids, set: { location: "Room 2" } },
    });
    assert.equal(updated.data?.updated, 2);
    assert.ok(updated.data?.items.every((e) => e.origin === "mass_update"));
  });

  await step("calendar sync status, tokens, audit", async () => {
    const sync = await member.GET("/api/v1/orgs/{org}/users/{user}/calendar-sync", { params: { path: { org: orgId, user: "me" } } });
    assert.equal(sync.data?.state, "disabled");
    const made = await member.POST("/api/v1/me/tokens", { body: { name: "ci", expires_in_days: 30 } });
    assert.equal(made.response.status, 201);
    const list = await member.GET("/api/v1/me/tokens");
    assert.ok(list.data?.items.some((t) => t.id === made.data!.id));
    const revoked = await member.DELETE("/api/v1/me/tokens/{id}", { params: { path: { id: made.data!.id } } });
    assert.equal(revoked.response.status, 200);
    const adminHasNone = await admin.GET("/api/v1/me/tokens");
    assert.equal(adminHasNone.response.status, 400);
    const audit = await owner.GET("/api/v1/orgs/{org}/audit", { params: { path: { org: orgId }, query: { limit: 10 } } });
    assert.equal(audit.response.status, 200);
  });

  await step("the admin API: the service admin only", async () => {
    const refused = await owner.GET("/admin/v1/status");
    assert.equal(refused.response.status, 403);
    const status = await admin.GET("/admin/v1/status");
    assert.equal(status.response.status, 200);
    assert.equal((await admin.GET("/admin/v1/tenants")).response.status, 200);
    assert.equal((await admin.GET("/admin/v1/tenants/{id}", { params: { path: { id: orgId } } })).response.status, 200);
    assert.equal((await admin.GET("/admin/v1/users/{id}", { params: { path: { id: memberId } } })).response.status, 200);
    assert.equal((await admin.GET("/admin/v1/users/{id}/events", { params: { path: { id: "member@openapi.test" } } })).response.status, 200);
    assert.equal((await admin.GET("/admin/v1/users/{id}/sync", { params: { path: { id: memberId } } })).response.status, 200);
    assert.equal((await admin.GET("/admin/v1/actors")).response.status, 200);
    assert.equal((await admin.GET("/admin/v1/actors/{kind}/{id}", { params: { path: { kind: "tenant", id: orgId } } })).response.status, 200);
    assert.equal((await admin.GET("/admin/v1/sync")).response.status, 200);
    assert.equal((await admin.GET("/admin/v1/cluster")).response.status, 200);
    assert.equal((await admin.GET("/admin/v1/orgs/{org}/rows", { params: { path: { org: orgId } } })).response.status, 200);
    assert.equal((await admin.GET("/admin/v1/orgs/{org}/conflicts", { params: { path: { org: orgId } } })).response.status, 200);
    // t16-admin: the admin page's chart history.
    const history = await admin.GET("/admin/v1/history", { params: { query: { series: "http,graph" } } });
    assert.equal(history.response.status, 200);
    assert.ok(Array.isArray(history.data?.series["http"]), "no http series");
    assert.equal((await owner.GET("/admin/v1/history")).response.status, 403);
    const unknownSeries = await admin.GET("/admin/v1/history", { params: { query: { series: "nope" } } });
    assert.equal(unknownSeries.response.status, 400);
    const resync = await admin.POST("/admin/v1/users/{id}/resync", { params: { path: { id: memberId } } });
    assert.ok([409, 503].includes(resync.response.status), `resync answered ${resync.response.status}`);
    const metrics = await anon.GET("/metrics", { parseAs: "text" });
    assert.equal(metrics.response.status, 401);
    const scraped = await admin.GET("/metrics", { parseAs: "text" });
    assert.match(scraped.data ?? "", /crmsync_/);
  });

  // -- Office 365: install, invitation, join request, sync, webhooks -----------

  /// The identity platform's part (graph-emulator has no UI: login_hint is
  /// the person): where `authorizeUrl` sends the browser back to the node.
  async function atIdentityPlatform(authorizeUrl: string, upn: string): Promise<URL> {
    const r = await fetch(`${authorizeUrl}&login_hint=${encodeURIComponent(upn)}`, { redirect: "manual" });
    assert.equal(r.status, 302, `the identity platform answered ${r.status}: ${await r.text()}`);
    const back = new URL(r.headers.get("location")!);
    assert.equal(back.origin, baseUrl);
    return back;
  }
  const cookieOf = (r: Response) => (r.headers.get("set-cookie") || "").split(";")[0]!;

  /// Signs `upn` in through `path` (/o365/install or /o365/signin); for an
  /// install whose tenant has not consented, through admin consent too.
  async function signIn(path: "/o365/install" | "/o365/signin", upn: string) {
    const begun = await anon.GET(path, { redirect: "manual" });
    assert.equal(begun.response.status, 302);
    const cookie = cookieOf(begun.response);
    assert.match(cookie, /=/, "the sign-in sets its browser cookie");
    const back = await atIdentityPlatform(begun.response.headers.get("location")!, upn);
    const q = back.searchParams;
    const answer = await anon.GET("/o365/signin-callback", {
      params: { query: { code: q.get("code") ?? undefined, state: q.get("state")! } },
      headers: { Cookie: cookie },
      redirect: "manual",
    });
    if (answer.response.status !== 302) return answer;
    const consented = await atIdentityPlatform(answer.response.headers.get("location")!, upn);
    const c = consented.searchParams;
    return anon.GET("/o365/consent-callback", {
      params: { query: { admin_consent: c.get("admin_consent") ?? undefined, tenant: c.get("tenant") ?? undefined, state: c.get("state")! } },
      headers: { Cookie: cookie },
      redirect: "manual",
    });
  }
  async function sessionOf(upn: string): Promise<string> {
    const s = await signIn("/o365/signin", upn);
    assert.equal(s.response.status, 200);
    const data = s.data as Json;
    assert.equal(data.status, "not_a_member");
    return data.office365_session;
  }

  let o365Org = "";
  let o365Owner = "";
  let o365OwnerId = "";
  await step("Office 365: an admin installs the app (sign-in, admin consent)", async () => {
    const installed = await signIn("/o365/install", "admin@contoso.com");
    assert.equal(installed.response.status, 200);
    const data = installed.data as Json;
    assert.equal(data.status, "installed");
    o365Org = data.organization.id;
    o365Owner = data.user.token;
    o365OwnerId = data.user.id;
    const paid = await admin.PATCH("/api/v1/orgs/{org}", { params: { path: { org: o365Org } }, body: { edition: "paid" } });
    assert.equal(paid.data?.edition, "paid");
    const notAdmin = await signIn("/o365/install", "bob@contoso.com");
    assert.equal(notAdmin.response.status, 403);
  });

  const o365 = client(o365Owner);
  const org = { org: o365Org };
  await step("Office 365: people, invitations, accepting one", async () => {
    const people = await o365.GET("/api/v1/orgs/{org}/office365/users", { params: { path: org } });
    assert.equal(people.data?.items.length, 5);
    const invited = await o365.POST("/api/v1/orgs/{org}/invites", {
      params: { path: org },
      body: { office365_user_ids: [emulator.ids.get("bob@contoso.com")!, emulator.ids.get("dave@contoso.com")!] },
    });
    assert.equal(invited.response.status, 201);
    assert.equal(invited.data?.items.length, 2);
    const listed = await o365.GET("/api/v1/orgs/{org}/invites", { params: { path: org } });
    assert.equal(listed.data?.items.length, 2);
    const dave = listed.data!.items.find((i) => i.email === "dave@contoso.com")!;
    const revoked = await o365.DELETE("/api/v1/orgs/{org}/invites/{id}", { params: { path: { ...org, id: dave.id } } });
    assert.equal(revoked.data?.status, "revoked");

    const bob = await sessionOf("bob@contoso.com");
    const asBob = client(bob);
    const mine = await asBob.GET("/api/v1/invites/mine");
    assert.equal(mine.data?.items.length, 1);
    const link = new URL(mine.data!.items[0]!.accept_url).pathname.split("/")[4]!;
    const noTerms = await asBob.POST("/api/v1/invites/{token}/accept", { params: { path: { token: link } }, body: { accept_terms: false as true } });
    assert.equal(noTerms.response.status, 400);
    const joined = await asBob.POST("/api/v1/invites/{token}/accept", { params: { path: { token: link } }, body: { accept_terms: true } });
    assert.equal(joined.response.status, 201);
    const again = await asBob.POST("/api/v1/invites/{token}/accept", { params: { path: { token: link } }, body: { accept_terms: true } });
    assert.ok([404, 409, 410].includes(again.response.status), `accepting twice answered ${again.response.status}`);
    const forged = await client("o365_forged").GET("/api/v1/invites/mine");
    assert.equal(forged.response.status, 401);
  });

  await step("Office 365: join requests, approved and rejected", async () => {
    const carol = client(await sessionOf("carol@contoso.com"));
    const asked = await carol.POST("/api/v1/join-requests", { body: {} });
    assert.equal(asked.response.status, 201);
    const status = await carol.GET("/api/v1/join-requests/mine");
    assert.equal(status.data?.status, "pending");
    const erin = client(await sessionOf("erin@contoso.com"));
    const erinAsked = await erin.POST("/api/v1/join-requests");
    assert.equal(erinAsked.response.status, 201);
    const list = await o365.GET("/api/v1/orgs/{org}/join-requests", { params: { path: org } });
    assert.equal(list.data?.items.length, 2);
    const approved = await o365.POST("/api/v1/orgs/{org}/join-requests/{id}/approve", { params: { path: { ...org, id: asked.data!.id } } });
    assert.equal(approved.data?.request.status, "approved");
    const rejected = await o365.POST("/api/v1/orgs/{org}/join-requests/{id}/reject", { params: { path: { ...org, id: erinAsked.data!.id } } });
    assert.equal(rejected.data?.status, "rejected");
    const audit = await o365.GET("/api/v1/orgs/{org}/audit", { params: { path: org } });
    assert.ok((audit.data?.items.length ?? 0) > 3);
  });

  await step("Office 365: calendar sync on, checked, the webhook handshake", async () => {
    const path = { ...org, user: "me" };
    const on = await o365.PUT("/api/v1/orgs/{org}/users/{user}/calendar-sync", { params: { path }, body: { enabled: true } });
    assert.equal(on.response.status, 200);
    const deadline = Date.now() + 30_000;
    let state = "";
    while (Date.now() < deadline) {
      const s = await o365.GET("/api/v1/orgs/{org}/users/{user}/calendar-sync", { params: { path } });
      state = s.data?.state ?? "";
      if (state === "active") break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(state, "active");
    const ev = await o365.POST("/api/v1/orgs/{org}/users/{user}/events", {
      params: { path },
      body: { title: "Synced", start: "2026-12-11T09:00:00Z", end: "2026-12-11T10:00:00Z" },
    });
    assert.equal(ev.response.status, 201);
    assert.equal((await admin.GET("/admin/v1/users/{id}/sync", { params: { path: { id: o365OwnerId } } })).response.status, 200);
    assert.equal((await admin.GET("/admin/v1/actors/{kind}/{id}", { params: { path: { kind: "calendar", id: o365OwnerId } } })).response.status, 200);
    const check = await admin.GET("/admin/v1/orgs/{org}/check", { params: { path: org } });
    assert.equal(check.response.status, 200);
    const approve = await admin.POST("/admin/v1/users/{id}/sync/approve-deletes", { params: { path: { id: o365OwnerId } } });
    assert.equal(approve.response.status, 202);
    const resync = await admin.POST("/admin/v1/users/{id}/resync", { params: { path: { id: o365OwnerId } } });
    assert.equal(resync.response.status, 202);
    const handshake = await anon.POST("/webhooks/graph", { params: { query: { validationToken: "hello openapi" } }, parseAs: "text" });
    assert.equal(handshake.data, "hello openapi");
    const lifecycle = await anon.POST("/webhooks/graph/lifecycle", { params: { query: { validationToken: "x" } }, parseAs: "text" });
    assert.equal(lifecycle.response.status, 200);
    const junk = await anon.POST("/webhooks/graph", { body: { value: "nope" } as never });
    assert.equal(junk.response.status, 400);
    const off = await o365.PUT("/api/v1/orgs/{org}/users/{user}/calendar-sync", { params: { path }, body: { enabled: false } });
    assert.equal(off.response.status, 200);
    const disconnected = await o365.POST("/api/v1/orgs/{org}/office365/disconnect", { params: { path: org } });
    assert.equal(disconnected.data?.status, "disconnected");
    const twice = await o365.POST("/api/v1/orgs/{org}/office365/disconnect", { params: { path: org } });
    assert.equal(twice.response.status, 409);
    const exported = await o365.GET("/api/v1/orgs/{org}/export", { params: { path: org }, parseAs: "text" });
    assert.match(exported.data ?? "", /"kind":"end"/);
  });

  await step("the user lifecycle ends with the organization's deletion", async () => {
    const path = { org: orgId, user: memberId };
    const off = await owner.POST("/api/v1/orgs/{org}/users/{user}/deactivate", { params: { path } });
    assert.equal(off.data?.active, false);
    const refused = await member.GET("/api/v1/orgs/{org}", { params: { path: { org: orgId } } });
    assert.equal(refused.response.status, 401);
    const removed = await owner.DELETE("/api/v1/orgs/{org}/users/{user}", { params: { path } });
    assert.equal(removed.data?.deleted.id, memberId);
    const unconfirmed = await admin.DELETE("/admin/v1/orgs/{org}", { params: { path: { org: orgId }, query: { confirm: "nope" } } });
    assert.equal(unconfirmed.response.status, 400);
    const deleted = await admin.DELETE("/admin/v1/orgs/{org}", { params: { path: { org: orgId }, query: { confirm: orgName } } });
    assert.equal(deleted.response.status, 200);
    const nodeAudit = await admin.GET("/admin/v1/audit");
    assert.ok(nodeAudit.data?.items.some((a) => a.action === "org.delete"));
  });

  await step("errors that no operation owns have the error shape too", async () => {
    const errorSchema = check.validatorFor({ $ref: "#/components/schemas/Error" }, "Error");
    const cases: Array<[string, RequestInit, number, string]> = [
      ["/api/v1/no-such-route", {}, 404, "not_found"],
      ["/healthz", { method: "DELETE" }, 405, "method_not_allowed"],
      ["/api/v1/orgs", { method: "POST", headers: { ...bearer(adminToken), "Content-Type": "text/plain" }, body: "{}" }, 415, "unsupported_media_type"],
      ["/api/v1/orgs", { method: "POST", headers: { ...bearer(adminToken), "Content-Type": "application/json" }, body: "{" }, 400, ""],
    ];
    for (const [path, init, status, code] of cases) {
      const r = await fetch(baseUrl + path, init);
      assert.equal(r.status, status, `${init.method || "GET"} ${path}`);
      const body = await r.json();
      assert.ok(errorSchema(body), `${init.method || "GET"} ${path}: ${check.errorsText(errorSchema.errors)}`);
      if (code) assert.equal(body.error.code, code);
    }
  });
}

main()
  .catch((err) => failures.push("the flow stopped: " + (err instanceof Error ? err.stack : String(err))))
  .finally(() => {
    console.log(`${checked} answers checked against the document; ${exercised.size} (operation, status) pairs exercised`);
    if (failures.length) {
      console.log(`FAILED: ${failures.length} problem(s)`);
      for (const f of failures) console.log("  " + f);
      finish(1);
    }
    console.log("OK");
    finish(0);
  });
