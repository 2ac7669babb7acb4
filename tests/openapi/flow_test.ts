// A typed client generated from crmsyncd's OpenAPI document drives a flow
// end to end, and every answer is checked against the document. Started by
// run.sh, which generates out/api.d.ts (openapi-typescript) and compiles
// this file against it with tsc --strict, then passes
//   CRMSYNCD          the crmsyncd binary under test
//   OPENAPI_DOCUMENT  api/openapi/openapi.json
// The node runs on a loopback port chosen by the kernel in a temporary data
// directory; both go when the test ends. Every answer's status must be one
// the document lists for the operation, and its JSON body must validate
// against the schema given there (ajv, JSON Schema 2020-12 as OpenAPI 3.1
// uses it). Any failure exits 1 and says what differed.

import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import assert from "node:assert/strict";
import createClient, { type Middleware } from "openapi-fetch";
import { Ajv2020 } from "ajv/dist/2020.js";
import addFormatsModule from "ajv-formats";
import type { paths } from "./out/api.js";

type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any

const crmsyncd = process.env.CRMSYNCD;
const documentPath = process.env.OPENAPI_DOCUMENT;
if (!crmsyncd || !documentPath) {
  console.error("flow_test: set CRMSYNCD and OPENAPI_DOCUMENT (run.sh does)");
  process.exit(2);
}
const documentText = readFileSync(documentPath, "utf8");
const doc: Json = JSON.parse(documentText);

// The whole test must end well within ctest's timeout.
const overall = setTimeout(() => {
  console.error("FAIL: the flow did not finish within 120 s");
  finish(1);
}, 120_000);

// -- the document's schemas, compiled once ------------------------------------

const DOC_ID = "https://crmsync.invalid/openapi.json";
const ajv = new Ajv2020({ strict: false, allErrors: true });
const addFormats = addFormatsModule as unknown as (a: Ajv2020) => void;
addFormats(ajv);
ajv.addSchema({ $id: DOC_ID, components: doc.components });

function resolveRef(obj: Json): Json {
  if (obj && typeof obj.$ref === "string" && obj.$ref.startsWith("#/")) {
    let cur: Json = doc;
    for (const part of obj.$ref.slice(2).split("/"))
      cur = cur[part.replace(/~1/g, "/").replace(/~0/g, "~")];
    return cur;
  }
  return obj;
}

const validators = new Map<string, ReturnType<typeof ajv.compile>>();
function validatorFor(schema: Json, key: string) {
  let v = validators.get(key);
  if (!v) {
    // The document's "#/components/…" refs, made absolute for ajv.
    const text = JSON.stringify(schema).replace(/"#\/components\//g, `"${DOC_ID}#/components/`);
    v = ajv.compile(JSON.parse(text));
    validators.set(key, v);
  }
  return v;
}

const failures: string[] = [];
const exercised = new Set<string>(); // "METHOD /path status"
let checked = 0;

/// Checks one answer against the operation `method path` of the document.
async function checkAnswer(method: string, path: string, response: Response): Promise<void> {
  const where = `${method} ${path} → ${response.status}`;
  const op = doc.paths?.[path]?.[method.toLowerCase()];
  if (!op) {
    failures.push(`${where}: the document has no such operation`);
    return;
  }
  const described = op.responses?.[String(response.status)];
  if (!described) {
    failures.push(`${where}: status not in the document (it lists ${Object.keys(op.responses).join(", ")})`);
    return;
  }
  exercised.add(`${method} ${path} ${response.status}`);
  const r = resolveRef(described);
  const type = (response.headers.get("content-type") || "").split(";")[0]!.trim();
  const text = await response.text();
  if (!r.content) {
    if (text.length !== 0) failures.push(`${where}: the document describes no body, got ${text.length} bytes`);
    ++checked;
    return;
  }
  const media = r.content[type];
  if (!media) {
    failures.push(`${where}: content type ${type || "(none)"} not in the document (${Object.keys(r.content).join(", ")})`);
    return;
  }
  if (type === "application/json") {
    let body: Json;
    try {
      body = JSON.parse(text);
    } catch {
      failures.push(`${where}: the body is not JSON: ${text.slice(0, 200)}`);
      return;
    }
    const validate = validatorFor(media.schema, `${method} ${path} ${response.status} ${type}`);
    if (!validate(body))
      failures.push(`${where}: the body does not match the document:\n    ${ajv.errorsText(validate.errors, { separator: "\n    " })}\n    body: ${text.slice(0, 600)}`);
  }
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
let node: ChildProcess | undefined;

function finish(code: number): never {
  clearTimeout(overall);
  if (node && node.exitCode === null) node.kill("SIGKILL");
  rmSync(dataDir, { recursive: true, force: true });
  process.exit(code);
}

async function startNode(): Promise<string> {
  const child = spawn(crmsyncd!, ["--listen", "127.0.0.1:0", "--data-dir", join(dataDir, "node"), "--admin-token", adminToken], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  node = child;
  let log = "";
  child.stderr!.on("data", (d: Buffer) => {
    log += d.toString();
  });
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error("crmsyncd did not print its listening line within 20 s:\n" + log)), 20_000);
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /crmsyncd listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`crmsyncd exited (${code}) before listening:\n${log}`));
    });
  });
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
  const baseUrl = await startNode();
  console.log(`crmsyncd at ${baseUrl}`);
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
    const resync = await admin.POST("/admin/v1/users/{id}/resync", { params: { path: { id: memberId } } });
    assert.ok([409, 503].includes(resync.response.status), `resync answered ${resync.response.status}`);
    const metrics = await anon.GET("/metrics", { parseAs: "text" });
    assert.equal(metrics.response.status, 401);
    const scraped = await admin.GET("/metrics", { parseAs: "text" });
    assert.match(scraped.data ?? "", /crmsync_/);
  });

  await step("Office 365 routes on a node without Office 365", async () => {
    const install = await anon.GET("/o365/install");
    assert.equal(install.response.status, 503);
    assert.equal(install.error?.error.code, "office365_not_configured");
    const session = await anon.GET("/api/v1/invites/mine");
    assert.equal(session.response.status, 401);
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
    const errorSchema = validatorFor({ $ref: "#/components/schemas/Error" }, "Error");
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
      assert.ok(errorSchema(body), `${init.method || "GET"} ${path}: ${ajv.errorsText(errorSchema.errors)}`);
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
