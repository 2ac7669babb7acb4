// Conformance test: Microsoft's JavaScript SDK (@microsoft/microsoft-graph-client)
// against graph-emulator over HTTPS. Started by run.sh, which passes
//   EMULATOR_HTTPS_URL  https://127.0.0.1:PORT (certificate from a throwaway CA)
//   NODE_EXTRA_CA_CERTS that CA, so Node's fetch trusts the emulator
// Every step prints PASS or FAIL with what differed; any failure exits 1.

import assert from "node:assert/strict";
import http from "node:http";
import https from "node:https";
import { readFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { createRequire } from "node:module";
import {
  BatchRequestContent,
  BatchResponseContent,
  Client,
  GraphError,
  PageIterator,
} from "@microsoft/microsoft-graph-client";

const require = createRequire(import.meta.url);
const SDK_VERSION = require("@microsoft/microsoft-graph-client/package.json").version;

const BASE = process.env.EMULATOR_HTTPS_URL;
if (!BASE || !/^https:\/\/127\.0\.0\.1:\d+$/.test(BASE)) {
  console.error("sdk_test: set EMULATOR_HTTPS_URL=https://127.0.0.1:PORT (run.sh does)");
  process.exit(2);
}
const HOST = new URL(BASE).hostname; // "127.0.0.1"

// The whole test must finish well within ctest's timeout.
const OVERALL_MS = 60_000;
const overall = setTimeout(() => {
  console.error(`FAIL: the test did not finish within ${OVERALL_MS / 1000} s`);
  process.exit(1);
}, OVERALL_MS);

// -- small helpers -------------------------------------------------------------

const failures = [];
let passed = 0;

async function step(name, fn, { fatal = false } = {}) {
  const t0 = Date.now();
  try {
    await fn();
    passed++;
    console.log(`PASS ${name} (${Date.now() - t0} ms)`);
    return true;
  } catch (err) {
    failures.push(name);
    console.log(`FAIL ${name}`);
    console.log(indent(describe(err)));
    if (fatal) finish();
    return false;
  }
}

function describe(err) {
  if (err instanceof GraphError)
    return `GraphError statusCode=${err.statusCode} code=${err.code} message=${err.message}\nbody=${err.body}`;
  let text = err && err.stack ? err.stack : String(err);
  // fetch() hides the reason (refused, certificate, ...) in err.cause.
  for (let c = err?.cause; c; c = c.cause) text += `\ncaused by: ${c.stack ?? c}`;
  return text;
}

function indent(text) {
  return String(text)
    .split("\n")
    .map((l) => "    " + l)
    .join("\n");
}

function finish() {
  clearTimeout(overall);
  console.log(
    `\n@microsoft/microsoft-graph-client ${SDK_VERSION}: ${passed} passed, ${failures.length} failed` +
      (failures.length ? `\nfailed: ${failures.join("; ")}` : ""),
  );
  process.exit(failures.length ? 1 : 0);
}

/** Expects the promise to reject with a GraphError of this status and code. */
async function expectGraphError(promise, statusCode, code, what) {
  let result;
  try {
    result = await promise;
  } catch (err) {
    assert.ok(err instanceof GraphError, `${what}: expected a GraphError, got ${describe(err)}`);
    assert.equal(err.statusCode, statusCode, `${what}: statusCode (code=${err.code}, message=${err.message})`);
    assert.equal(err.code, code, `${what}: error code (statusCode=${err.statusCode})`);
    return err;
  }
  assert.fail(`${what}: expected GraphError ${statusCode} ${code}, but the call succeeded: ${JSON.stringify(result)}`);
}

/** Control API and identity platform: plain fetch, no SDK. */
async function control(method, path, body) {
  const res = await fetch(BASE + path, {
    method,
    headers: body === undefined ? {} : { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    /* not JSON */
  }
  return { status: res.status, json, text };
}

async function waitFor(what, predicate, ms = 10_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = predicate();
    if (v) return v;
    if (Date.now() >= deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const DAY = 86_400_000;
const day0 = Math.floor(Date.now() / DAY) * DAY + DAY; // tomorrow 00:00Z
const WINDOW_START = new Date(day0).toISOString().replace(".000Z", "Z");
const WINDOW_END = new Date(day0 + 14 * DAY).toISOString().replace(".000Z", "Z");

/** A Graph dateTimeTimeZone pair, `offsetDays` after tomorrow at `hour` UTC. */
function slot(offsetDays, hour, minutes = 30) {
  const start = new Date(day0 + offsetDays * DAY + hour * 3_600_000);
  const end = new Date(start.getTime() + minutes * 60_000);
  const fmt = (d) => d.toISOString().slice(0, 19);
  return {
    start: { dateTime: fmt(start), timeZone: "UTC" },
    end: { dateTime: fmt(end), timeZone: "UTC" },
  };
}

function eventBody(subject, offsetDays, hour) {
  return {
    subject,
    body: { contentType: "text", content: `${subject} (sdk conformance)` },
    location: { displayName: "Room 1" },
    ...slot(offsetDays, hour),
  };
}

// -- state shared by the steps ---------------------------------------------------

const suffix = randomBytes(4).toString("hex");
const domain = `sdk-${suffix}.example`;
const otherDomain = `other-${suffix}.example`;
const clientId = `sdk-app-${suffix}`;
const clientSecret = randomBytes(16).toString("hex");
const seededUsers = [
  { userPrincipalName: `admin@${domain}`, displayName: "Admin", isAdmin: true },
  { userPrincipalName: `alice@${domain}`, displayName: "Alice" },
  { userPrincipalName: `bob@${domain}`, displayName: "Bob" },
  { userPrincipalName: `carol@${domain}`, displayName: "Carol" },
  { userPrincipalName: `dave@${domain}`, displayName: "Dave" },
  { userPrincipalName: `erin@${domain}`, displayName: "Erin" },
  { userPrincipalName: `nomail@${domain}`, displayName: "No Mailbox", hasMailbox: false },
];
let tenantId;
let users = {}; // local part of the UPN -> id
let otherUserIds = [];
let token;
let client;
let calId;
const calendarPath = () => `/users/${users.alice}/calendars/${calId}`;

// -- 1. seeding through the control API over HTTPS ------------------------------------

await step(
  "1. seed a tenant (7 users, one without a mailbox) and a consented app over HTTPS",
  async () => {
    const t = await control("POST", "/_emulator/tenants", { domain, users: seededUsers });
    assert.equal(t.status, 201, `POST /_emulator/tenants: ${t.text}`);
    tenantId = t.json.id;
    assert.ok(tenantId, "tenant id in the answer");
    assert.equal(t.json.users.length, seededUsers.length, "users created");
    for (const u of t.json.users) users[u.userPrincipalName.split("@")[0]] = u.id;
    assert.equal(t.json.users.find((u) => u.id === users.nomail).hasMailbox, false, "nomail hasMailbox");

    // A second tenant whose users must never show up in the first one's listing.
    const o = await control("POST", "/_emulator/tenants", {
      domain: otherDomain,
      users: [{ userPrincipalName: `zed@${otherDomain}` }, { userPrincipalName: `yan@${otherDomain}` }],
    });
    assert.equal(o.status, 201, `POST /_emulator/tenants (second tenant): ${o.text}`);
    otherUserIds = o.json.users.map((u) => u.id);

    const a = await control("POST", "/_emulator/apps", {
      client_id: clientId,
      client_secret: clientSecret,
      tenants: [domain],
    });
    assert.equal(a.status, 201, `POST /_emulator/apps: ${a.text}`);
  },
  { fatal: true },
);

// -- 2. client-credentials token with a plain fetch ------------------------------------

await step(
  "2. client_credentials token from /{tenant}/oauth2/v2.0/token (form POST over HTTPS)",
  async () => {
    const res = await fetch(`${BASE}/${tenantId}/oauth2/v2.0/token`, {
      method: "POST",
      body: new URLSearchParams({
        grant_type: "client_credentials",
        client_id: clientId,
        client_secret: clientSecret,
        scope: "https://graph.microsoft.com/.default",
      }),
    });
    const text = await res.text();
    assert.equal(res.status, 200, `token endpoint: ${text}`);
    const body = JSON.parse(text);
    assert.equal(body.token_type, "Bearer", "token_type");
    assert.ok(Number.isInteger(body.expires_in) && body.expires_in > 0, `expires_in ${body.expires_in}`);
    assert.ok(typeof body.access_token === "string" && body.access_token.length > 20, "access_token");
    token = body.access_token;

    // A wrong secret is the identity platform's 401 invalid_client.
    const bad = await fetch(`${BASE}/${domain}/oauth2/v2.0/token`, {
      method: "POST",
      body: new URLSearchParams({
        grant_type: "client_credentials",
        client_id: clientId,
        client_secret: "wrong",
        scope: "https://graph.microsoft.com/.default",
      }),
    });
    assert.equal(bad.status, 401, "wrong client_secret: status");
    assert.equal((await bad.json()).error, "invalid_client", "wrong client_secret: error");
  },
  { fatal: true },
);

// -- 3. the SDK client ---------------------------------------------------------------

await step(
  "3. Client.init with baseUrl and customHosts: the SDK attaches the token to the emulator",
  async () => {
    // The SDK's AuthenticationHandler (and TelemetryHandler) only touch
    // requests to https URLs whose host name (port stripped) is a Graph
    // host or in customHosts; anything else goes out without a token.
    const options = {
      authProvider: (done) => done(null, token),
      baseUrl: `${BASE}/`,
      defaultVersion: "v1.0",
      customHosts: new Set([HOST]),
    };
    client = Client.init(options);
    const me = await client.api(`/users/${users.alice}`).get();
    assert.equal(me.id, users.alice, "GET /users/{id} id");
    assert.equal(me.userPrincipalName, `alice@${domain}`, "userPrincipalName");

    // The same client without customHosts sends no Authorization header.
    const bare = Client.init({ ...options, customHosts: undefined });
    await expectGraphError(
      bare.api(`/users/${users.alice}`).get(),
      401,
      "InvalidAuthenticationToken",
      "client without customHosts",
    );
  },
  { fatal: true },
);

// -- 4. users, two a page, through PageIterator -----------------------------------------

await step("4. GET /users $top=2 across all pages with PageIterator", async () => {
  const first = await client.api("/users").top(2).select(["id", "userPrincipalName"]).get();
  assert.equal(first.value.length, 2, "first page size");
  const next = first["@odata.nextLink"];
  assert.ok(typeof next === "string", "first page has @odata.nextLink");
  assert.ok(next.startsWith(`${BASE}/v1.0/users?`), `nextLink is absolute on the HTTPS base: ${next}`);
  const seen = [];
  let pages = 1;
  const iterator = new PageIterator(client, first, (u) => {
    assert.ok(u.id && u.userPrincipalName, `user has id and userPrincipalName: ${JSON.stringify(u)}`);
    assert.equal(u.displayName, undefined, "$select is carried by the nextLink");
    seen.push(u.id);
    return true;
  });
  // Counts the pages the iterator fetches by watching its requests.
  const api = client.api.bind(client);
  client.api = (path) => {
    if (String(path).startsWith("https://")) pages++;
    return api(path);
  };
  try {
    await iterator.iterate();
  } finally {
    delete client.api;
  }
  assert.ok(iterator.isComplete(), "PageIterator is complete");
  const want = Object.values(users);
  assert.equal(pages, Math.ceil(want.length / 2), `pages fetched for ${want.length} users, two a page`);
  const counts = new Map();
  for (const id of seen) counts.set(id, (counts.get(id) ?? 0) + 1);
  for (const id of want) assert.equal(counts.get(id), 1, `user ${id} seen exactly once`);
  assert.equal(seen.length, want.length, `users seen: ${JSON.stringify(seen)}`);
  for (const id of otherUserIds) assert.ok(!counts.has(id), `another tenant's user ${id} listed`);
});

// -- 5. calendar, events, If-Match ----------------------------------------------------------

const events = {}; // name -> event as last returned
await step(
  "5a. create a calendar and events in it (POST through the SDK)",
  async () => {
    const cal = await client.api(`/users/${users.alice}/calendars`).post({ name: `SDK ${suffix}` });
    assert.ok(cal.id, "calendar id");
    assert.equal(cal.name, `SDK ${suffix}`, "calendar name");
    assert.equal(cal.isDefaultCalendar, false, "isDefaultCalendar");
    calId = cal.id;
    const specs = {
      e1: eventBody("Kick-off", 0, 9),
      e2: eventBody("Review", 1, 10),
      e3: eventBody("Retro", 2, 15),
      e4: eventBody("Planning", 3, 11),
      far: eventBody("Outside the window", 40, 9),
    };
    for (const [name, body] of Object.entries(specs)) {
      const e = await client.api(`${calendarPath()}/events`).post(body);
      assert.ok(e.id, `${name}: id`);
      assert.equal(e.subject, body.subject, `${name}: subject`);
      assert.equal(e["@odata.etag"], `W/"${e.changeKey}"`, `${name}: @odata.etag matches changeKey`);
      assert.equal(e.start.timeZone, "UTC", `${name}: start.timeZone`);
      assert.ok(e.start.dateTime.startsWith(body.start.dateTime), `${name}: start ${e.start.dateTime}`);
      events[name] = e;
    }
  },
  { fatal: true },
);

await step("5b. read an event back, PATCH it with If-Match, stale If-Match is 412", async () => {
  const path = `${calendarPath()}/events/${events.e1.id}`;
  const got = await client.api(path).get();
  assert.equal(got.id, events.e1.id, "id");
  assert.equal(got.subject, "Kick-off", "subject");
  assert.equal(got.body.content, "Kick-off (sdk conformance)", "body.content");
  assert.equal(got.location.displayName, "Room 1", "location");
  const etag = got["@odata.etag"];
  assert.match(etag, /^W\/".+"$/, "@odata.etag shape");

  const patched = await client.api(path).header("If-Match", etag).patch({ subject: "Kick-off (moved)" });
  assert.equal(patched.subject, "Kick-off (moved)", "PATCH answer subject");
  assert.notEqual(patched["@odata.etag"], etag, "a write gives a new @odata.etag");
  assert.notEqual(patched.changeKey, got.changeKey, "a write gives a new changeKey");
  events.e1 = patched;

  const err = await expectGraphError(
    client.api(path).header("If-Match", etag).patch({ subject: "lost update" }),
    412,
    "ErrorIrresolvableConflict",
    "PATCH with a stale If-Match",
  );
  assert.ok(err.message, "412 has a message");
  const after = await client.api(path).get();
  assert.equal(after.subject, "Kick-off (moved)", "the stale PATCH changed nothing");
});

// -- 6. calendarView/delta ----------------------------------------------------------------

await step("6. calendarView/delta: pages of 2 to the deltaLink, then created/updated/@removed", async () => {
  const prefer = { Prefer: "odata.maxpagesize=2" };
  let page = await client
    .api(`${calendarPath()}/calendarView/delta`)
    .query({ startDateTime: WINDOW_START, endDateTime: WINDOW_END })
    .headers(prefer)
    .get();
  const initial = [];
  let pages = 1;
  for (;;) {
    assert.ok(page.value.length <= 2, `page ${pages} has ${page.value.length} items (maxpagesize=2)`);
    initial.push(...page.value);
    const next = page["@odata.nextLink"];
    if (next === undefined) break;
    assert.equal(page["@odata.deltaLink"], undefined, "a page has a nextLink or a deltaLink, not both");
    assert.ok(next.startsWith(`${BASE}/v1.0/`), `nextLink on the HTTPS base: ${next}`);
    assert.ok(pages < 20, "too many delta pages");
    page = await client.api(next).headers(prefer).get();
    pages++;
  }
  let deltaLink = page["@odata.deltaLink"];
  assert.ok(typeof deltaLink === "string", "the last page has @odata.deltaLink");
  assert.ok(deltaLink.startsWith(`${BASE}/v1.0/`), `deltaLink on the HTTPS base: ${deltaLink}`);
  const inWindow = ["e1", "e2", "e3", "e4"].map((n) => events[n].id).sort();
  assert.deepEqual(initial.map((e) => e.id).sort(), inWindow, "initial round: the events in the window");
  assert.equal(pages, 2, "4 events at 2 a page are 2 pages");
  assert.ok(initial.every((e) => e["@removed"] === undefined), "no @removed in the initial round");
  assert.equal(initial.find((e) => e.id === events.e1.id).subject, "Kick-off (moved)", "initial round has current data");

  // Changes: one created, one updated, one deleted.
  const created = await client.api(`${calendarPath()}/events`).post(eventBody("Added later", 4, 14));
  const updated = await client
    .api(`${calendarPath()}/events/${events.e2.id}`)
    .header("If-Match", events.e2["@odata.etag"])
    .patch({ subject: "Review (renamed)" });
  await client.api(`${calendarPath()}/events/${events.e3.id}`).delete();
  events.added = created;
  events.e2 = updated;

  const first = await client.api(deltaLink).headers(prefer).get();
  const changes = [];
  const iterator = new PageIterator(
    client,
    first,
    (e) => {
      changes.push(e);
      return true;
    },
    { headers: prefer },
  );
  await iterator.iterate();
  assert.ok(iterator.isComplete(), "PageIterator over the changes is complete");
  const byId = new Map(changes.map((e) => [e.id, e]));
  assert.equal(changes.length, 3, `3 changes, got ${JSON.stringify(changes.map((e) => [e.id, e.subject, e["@removed"]]))}`);
  assert.equal(byId.get(created.id)?.subject, "Added later", "the created event");
  assert.equal(byId.get(events.e2.id)?.subject, "Review (renamed)", "the updated event");
  assert.deepEqual(byId.get(events.e3.id)?.["@removed"], { reason: "deleted" }, "the deleted event is @removed");
  assert.ok(!byId.has(events.e1.id) && !byId.has(events.e4.id), "unchanged events are not repeated");
  const newDelta = iterator.getDeltaLink();
  assert.ok(typeof newDelta === "string" && newDelta !== deltaLink, "a new deltaLink");

  // The superseded deltaLink is gone.
  await expectGraphError(client.api(deltaLink).get(), 410, "SyncStateNotFound", "replayed deltaLink");
  // Nothing changed since: the new deltaLink answers an empty round.
  const quiet = await client.api(newDelta).headers(prefer).get();
  assert.deepEqual(quiet.value, [], "no changes since the last round");
  assert.ok(quiet["@odata.deltaLink"], "an empty round still has a deltaLink");
});

// -- 7. $batch ----------------------------------------------------------------------------

await step("7. $batch with BatchRequestContent/BatchResponseContent and dependsOn", async () => {
  const v1 = `${BASE}/v1.0`;
  const json = { "Content-Type": "application/json" };
  const batch = new BatchRequestContent([
    { id: "1", request: new Request(`${v1}/users/${users.bob}`, { method: "GET" }) },
    {
      id: "2",
      dependsOn: ["1"],
      request: new Request(`${v1}/users/${users.alice}/calendars/${calId}/events`, {
        method: "POST",
        headers: json,
        body: JSON.stringify(eventBody("Made in a batch", 5, 9)),
      }),
    },
    { id: "3", dependsOn: ["1"], request: new Request(`${v1}/users/${users.alice}/calendars/${calId}`) },
    { id: "4", dependsOn: ["1"], request: new Request(`${v1}/users/nobody@${domain}`) },
  ]);
  const content = await batch.getContent();
  assert.equal(content.requests[1].url, `/v1.0/users/${users.alice}/calendars/${calId}/events`, "item url");
  const raw = await client.api("/$batch").post(content);
  assert.ok(Array.isArray(raw.responses), `responses array: ${JSON.stringify(raw)}`);
  const res = new BatchResponseContent(raw);
  const status = (id) => res.getResponseById(id)?.status;
  assert.deepEqual(
    ["1", "2", "3", "4"].map(status),
    [200, 201, 200, 404],
    "statuses of GET user, POST event, GET calendar, GET missing user",
  );
  const bob = await res.getResponseById("1").json();
  assert.equal(bob.id, users.bob, "item 1: the user");
  const made = await res.getResponseById("2").json();
  assert.equal(made.subject, "Made in a batch", "item 2: the event");
  assert.ok(made.id, "item 2: event id");
  const cal = await res.getResponseById("3").json();
  assert.equal(cal.id, calId, "item 3: the calendar");
  const missing = await res.getResponseById("4").json();
  assert.equal(missing.error?.code, "Request_ResourceNotFound", "item 4: error code");
  const check = await client.api(`${calendarPath()}/events/${made.id}`).get();
  assert.equal(check.subject, "Made in a batch", "the batch's event exists");

  // A failed dependency: the dependent request is not run (424).
  const failing = new BatchRequestContent([
    { id: "a", request: new Request(`${v1}/users/nobody@${domain}`) },
    {
      id: "b",
      dependsOn: ["a"],
      request: new Request(`${v1}/users/${users.alice}/calendars/${calId}/events`, {
        method: "POST",
        headers: json,
        body: JSON.stringify(eventBody("Must not exist", 6, 9)),
      }),
    },
  ]);
  const res2 = new BatchResponseContent(await client.api("/$batch").post(await failing.getContent()));
  assert.equal(res2.getResponseById("a")?.status, 404, "item a: 404");
  assert.equal(res2.getResponseById("b")?.status, 424, "item b depends on a failed request: 424");
  const list = await client.api(`${calendarPath()}/events`).top(50).get();
  assert.ok(!list.value.some((e) => e.subject === "Must not exist"), "the dependent POST did not run");
});

// -- 8. subscriptions and change notifications --------------------------------------------------

// Once to a plain-http loopback receiver, once to an https one whose
// certificate the emulator trusts through --notification-ca-file.
for (const scheme of ["http", "https"])
await step(`8${scheme === "https" ? "b" : ""}. subscription over ${scheme}: validation handshake, then created/updated/deleted notifications`, async () => {
  const validations = [];
  const notifications = [];
  const problems = [];
  const handler = (req, res) => {
    const url = new URL(req.url, "http://127.0.0.1");
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      if (req.method !== "POST" || url.pathname !== "/hook") {
        problems.push(`unexpected ${req.method} ${req.url}`);
        res.writeHead(404).end();
        return;
      }
      const validationToken = url.searchParams.get("validationToken");
      if (validationToken !== null) {
        validations.push(validationToken);
        res.writeHead(200, { "Content-Type": "text/plain" }).end(validationToken);
        return;
      }
      try {
        const parsed = JSON.parse(body);
        notifications.push(...parsed.value);
      } catch (e) {
        problems.push(`notification body is not JSON: ${body}`);
      }
      res.writeHead(202).end();
    });
  };
  const server =
    scheme === "https"
      ? https.createServer(
          { key: readFileSync(process.env.HOOK_TLS_KEY), cert: readFileSync(process.env.HOOK_TLS_CERT) },
          handler,
        )
      : http.createServer(handler);
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  try {
    const hook =
      scheme === "https"
        ? `https://localhost:${server.address().port}/hook`
        : `http://127.0.0.1:${server.address().port}/hook`;
    const clientState = `state-${suffix}`;
    const resource = `/users/${users.alice}/calendars/${calId}/events`;
    const expiration = new Date(Date.now() + 3_600_000).toISOString();
    const sub = await client.api("/subscriptions").post({
      changeType: "created,updated,deleted",
      notificationUrl: hook,
      resource,
      expirationDateTime: expiration,
      clientState,
    });
    assert.ok(sub.id, "subscription id");
    assert.equal(sub.resource, resource, "subscription resource");
    assert.equal(sub.clientState, clientState, "subscription clientState");
    assert.equal(sub.notificationUrl, hook, "subscription notificationUrl");
    assert.equal(sub.changeType, "created,updated,deleted", "subscription changeType");
    assert.equal(Date.parse(sub.expirationDateTime), Date.parse(expiration), "expirationDateTime");
    assert.equal(validations.length, 1, "one validation request before the subscription was created");
    assert.match(validations[0], /^Validation: /, `validation token: ${validations[0]}`);

    const expectNotification = async (changeType, eventId) => {
      const n = await waitFor(`a '${changeType}' notification for ${eventId}`, () =>
        notifications.find((x) => x.changeType === changeType && x.resourceData?.id === eventId),
      );
      assert.equal(n.subscriptionId, sub.id, `${changeType}: subscriptionId`);
      assert.equal(n.clientState, clientState, `${changeType}: clientState`);
      assert.equal(n.tenantId, tenantId, `${changeType}: tenantId`);
      assert.equal(n.resourceData.id, eventId, `${changeType}: resourceData.id`);
      assert.ok(
        n.resource.toLowerCase().endsWith(`/events/${eventId}`.toLowerCase()),
        `${changeType}: resource ${n.resource}`,
      );
      return n;
    };

    const e = await client.api(`${calendarPath()}/events`).post(eventBody("Notify me", 7, 9));
    await expectNotification("created", e.id);
    await client.api(`${calendarPath()}/events/${e.id}`).patch({ subject: "Notify me again" });
    await expectNotification("updated", e.id);
    await client.api(`${calendarPath()}/events/${e.id}`).delete();
    await expectNotification("deleted", e.id);
    assert.deepEqual(problems, [], "the webhook received only handshakes and notifications");
    assert.ok(
      notifications.every((n) => n.subscriptionId === sub.id),
      `only this subscription notified: ${JSON.stringify(notifications)}`,
    );

    const listed = await client.api("/subscriptions").get();
    assert.ok(listed.value.some((s) => s.id === sub.id), "GET /subscriptions lists it");
    await client.api(`/subscriptions/${sub.id}`).delete();
    await expectGraphError(client.api(`/subscriptions/${sub.id}`).get(), 404, "ResourceNotFound", "deleted subscription");
  } finally {
    server.closeAllConnections?.();
    await new Promise((r) => server.close(r));
  }
});

// -- 9. a user without a mailbox --------------------------------------------------------------

await step("9. a user without a mailbox: MailboxNotEnabledForRESTAPI", async () => {
  const u = await client.api(`/users/${users.nomail}`).get();
  assert.equal(u.id, users.nomail, "the directory user exists");
  await expectGraphError(
    client.api(`/users/${users.nomail}/calendars`).get(),
    404,
    "MailboxNotEnabledForRESTAPI",
    "GET calendars of a user without a mailbox",
  );
  await expectGraphError(
    client.api(`/users/${users.nomail}/events`).post(eventBody("Nowhere", 0, 9)),
    404,
    "MailboxNotEnabledForRESTAPI",
    "POST an event for a user without a mailbox",
  );
});

finish();
