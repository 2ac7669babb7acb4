// The answer check (answer_check.mjs) tells right answers from wrong ones,
// on answers made up here against the real document: what the end-to-end
// suites' check (validate.mjs) and the typed-client flow rely on.
//
//   node answer_check_test.mjs DOCUMENT
//
// Exits 1 naming every case that came out wrong.

import { readFileSync } from "node:fs";
import { answerChecker } from "./answer_check.mjs";

const documentPath = process.argv[2];
if (!documentPath) {
  console.error("usage: node answer_check_test.mjs DOCUMENT");
  process.exit(2);
}
const check = answerChecker(JSON.parse(readFileSync(documentPath, "utf8")));

const json = "application/json";
const error = (code) => JSON.stringify({ error: { code, message: "m" } });
const org = (extra = {}) =>
  JSON.stringify({
    id: "0123456789abcdef",
    name: "Acme",
    edition: "free",
    super_admin_id: "fedcba9876543210",
    users: 1,
    events: 0,
    office365_tenant_id: null,
    conflict_policy: "latest",
    created_at: "2026-12-07T10:00:00Z",
    modified_at: "2026-12-07T10:00:00Z",
    ...extra,
  });

// [what, method, path, status, content type, body, expected problem ("" = none)]
const cases = [
  ["health", "GET", "/healthz", 200, json, '{"status":"ok"}', ""],
  ["health with a query", "GET", "/healthz?x=1", 200, "application/json; charset=utf-8", '{"status":"ok"}', ""],
  ["a field of the wrong type", "GET", "/healthz", 200, json, '{"status":1}', "does not match"],
  ["a body that is not JSON", "GET", "/healthz", 200, json, "{", "not JSON"],
  ["a status the operation does not list", "GET", "/healthz", 418, json, "{}", "status not in the document"],
  ["a content type the document does not name", "GET", "/healthz", 200, "text/plain", "ok", "content type text/plain"],
  ["an organization", "GET", "/api/v1/orgs/0123456789abcdef", 200, json, org(), ""],
  ["an organization with a field of another name", "GET", "/api/v1/orgs/0123456789abcdef", 200, json, org({ title: "x" }), "does not match"],
  ["an error in the Error shape", "GET", "/api/v1/orgs/0123456789abcdef", 404, json, error("not_found"), ""],
  ["an error without its message", "GET", "/api/v1/orgs/0123456789abcdef", 404, json, '{"error":{"code":"not_found"}}', "does not match"],
  ["an unknown route answered 404 not_found", "GET", "/api/v1/nothing/here", 404, json, error("not_found"), ""],
  ["an unknown route answered otherwise", "GET", "/api/v1/nothing/here", 200, json, "{}", "general rules answer 404"],
  ["an unknown route with another code", "GET", "/api/v1/nothing/here", 404, json, error("gone"), "error code gone"],
  ["a method the path does not serve, 405", "DELETE", "/healthz", 405, json, error("method_not_allowed"), ""],
  ["a method the path does not serve, 404", "DELETE", "/healthz", 404, json, error("not_found"), "general rules answer 405"],
  ["an empty segment matches no route", "GET", "//healthz", 404, json, error("not_found"), ""],
  ["one trailing slash is the route", "GET", "/healthz/", 200, json, '{"status":"ok"}', ""],
  // GET /events/import is GET /events/{event} (only POST serves import).
  ["the route with the method wins", "GET", "/api/v1/orgs/0123456789abcdef/events/import", 404, json, error("not_found"), ""],
  ["a body where the document describes none", "DELETE", "/api/v1/orgs/0123456789abcdef/events/0123456789abcdef", 204, "", "x", "describes no body"],
  ["no body where the document describes none", "DELETE", "/api/v1/orgs/0123456789abcdef/events/0123456789abcdef", 204, "", "", ""],
];

let failed = 0;
for (const [what, method, path, status, type, body, expected] of cases) {
  const found = check.route(method, path);
  const template = found ? found.template : path.split("?")[0];
  const problems = check.answer(method, template, status, type, body);
  const ok = expected === "" ? problems.length === 0 : problems.some((p) => p.includes(expected));
  if (!ok) {
    ++failed;
    console.log(`FAIL ${what}: expected ${expected ? `"${expected}"` : "no problem"}, got ${JSON.stringify(problems)}`);
  } else {
    console.log(`ok   ${what}`);
  }
}
if (failed) {
  console.log(`${failed} of ${cases.length} cases wrong`);
  process.exit(1);
}
console.log(`all ${cases.length} cases right`);
