// Validates the answers the end-to-end suites recorded against crmsyncd's
// OpenAPI document.
//
//   node validate.mjs DOCUMENT RECORD_DIR [--coverage]
//
// RECORD_DIR holds the *.jsonl files tests write when
// CRMSYNC_OPENAPI_RECORD is set (tests/support/answer_record.hpp): one line
// per answer, {test, method, target, status, content_type, body | body_bytes}.
// Each answer is matched to the document's path template and method and
// checked by answer_check.mjs (status documented for the operation, JSON
// body valid against its schema, other bodies' content type, the Error
// shape for errors, the general 404/405 rules). Exits 1 listing every
// mismatch (grouped by route, status and problem, with the tests that saw
// it and one body), 0 when every answer agrees, 2 on bad usage or no
// records. --coverage also lists the documented operations and statuses no
// recorded answer exercised.

import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { answerChecker } from "./answer_check.mjs";

const args = process.argv.slice(2);
const coverage = args.includes("--coverage");
const [documentPath, recordDir] = args.filter((a) => a !== "--coverage");
if (!documentPath || !recordDir) {
  console.error("usage: node validate.mjs DOCUMENT RECORD_DIR [--coverage]");
  process.exit(2);
}

const doc = JSON.parse(readFileSync(documentPath, "utf8"));
const check = answerChecker(doc);

let files;
try {
  files = readdirSync(recordDir).filter((f) => f.endsWith(".jsonl")).sort();
} catch (e) {
  console.error(`openapi validate: cannot read ${recordDir}: ${e.message}`);
  process.exit(2);
}

// Mismatches grouped by "METHOD template → status: problem".
const problems = new Map();
const exercised = new Set();
let answers = 0;
let unsized = 0;

function note(key, test, target, detail) {
  let p = problems.get(key);
  if (!p) {
    p = { count: 0, tests: new Set(), target, detail };
    problems.set(key, p);
  }
  ++p.count;
  // ctest passes Catch2 a name with its commas escaped ("a\, b").
  if (test) p.tests.add(test.replace(/\\,/g, ","));
}

for (const file of files) {
  const lines = readFileSync(join(recordDir, file), "utf8").split("\n");
  lines.forEach((line, i) => {
    if (line === "") return;
    let rec;
    try {
      rec = JSON.parse(line);
    } catch {
      note(`${file}:${i + 1}: not a JSON line`, "", "", line.slice(0, 200));
      return;
    }
    ++answers;
    const path = rec.target.split("?")[0];
    const found = check.route(rec.method, path);
    const template = found ? found.template : path;
    if (found?.operation) exercised.add(`${rec.method} ${found.template} ${rec.status}`);
    let failures;
    if (rec.body === undefined) {
      // Too big to record: only the status and the content type count.
      ++unsized;
      failures = check.answer(rec.method, template, rec.status, rec.content_type, "").filter(
        (f) => !f.startsWith("the body") && !f.startsWith("the document describes no body"),
      );
    } else {
      failures = check.answer(rec.method, template, rec.status, rec.content_type, rec.body);
    }
    for (const f of failures) {
      const [problem, ...rest] = f.split("\n");
      const where = found ? `${rec.method} ${found.template}` : `${rec.method} ${path} (no route)`;
      // Array indexes in ajv's paths vary per answer: one group for all.
      const what = problem.replace(/\/\d+(?=[/ ])/g, "/*");
      note(`${where} → ${rec.status}: ${what}`, rec.test, rec.target, rest.join("\n").trim());
    }
  });
}

const operations = [];
for (const [template, item] of Object.entries(doc.paths || {}))
  for (const [method, op] of Object.entries(item))
    if (op && typeof op === "object" && op.responses)
      operations.push({ method: method.toUpperCase(), template, statuses: Object.keys(op.responses) });
const touched = operations.filter((o) => o.statuses.some((s) => exercised.has(`${o.method} ${o.template} ${s}`)));

console.log(
  `openapi validate: ${answers} answers from ${files.length} test processes; ` +
    `${touched.length} of ${operations.length} documented operations exercised` +
    (unsized ? `; ${unsized} bodies too big to record (status and type checked)` : ""),
);
if (coverage) {
  for (const o of operations) {
    const missing = o.statuses.filter((s) => !exercised.has(`${o.method} ${o.template} ${s}`));
    if (missing.length) console.log(`  not seen: ${o.method} ${o.template} ${missing.join(" ")}`);
  }
}
if (answers === 0) {
  console.error(`openapi validate: no answers in ${recordDir}: did CRMSYNC_OPENAPI_RECORD reach the tests?`);
  process.exit(2);
}
if (problems.size === 0) {
  console.log("openapi validate: every answer agrees with the document");
  process.exit(0);
}
console.log(`\nFAIL: ${problems.size} kinds of answer differ from the document:\n`);
for (const [key, p] of problems) {
  const tests = [...p.tests];
  console.log(`* ${key}`);
  console.log(`    ${p.count} answer(s), e.g. ${p.target}`);
  console.log(`    tests: ${tests.slice(0, 3).join(" | ")}${tests.length > 3 ? ` (+${tests.length - 3} more)` : ""}`);
  console.log(`    ${p.detail}`);
}
process.exit(1);
