// Checks crmsyncd's answers against its OpenAPI document
// (api/openapi/openapi.json): shared by the typed-client flow
// (flow_test.ts) and the validator of the end-to-end suites' recorded
// answers (validate.mjs).
//
//   const check = answerChecker(JSON.parse(documentText));
//   check.route(method, path)   which operation serves a concrete path
//   check.answer(method, template, status, contentType, bodyText)
//                               what differs from the document ([] = none)
//
// JSON bodies are validated with ajv against the schema the document gives
// for the operation, status and content type (JSON Schema 2020-12, as
// OpenAPI 3.1 uses it); every other body only for its content type. The
// document's general rules (info.description, "Errors") are checked too:
// an error answer in JSON has the Error shape, a path no route serves gets
// 404 not_found, a method a path does not serve gets 405
// method_not_allowed.

import { Ajv2020 } from "ajv/dist/2020.js";
import addFormatsModule from "ajv-formats";

const DOC_ID = "https://crmsync.invalid/openapi.json";
const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/// "application/json; charset=utf-8" → "application/json".
export function mediaType(contentType) {
  return (contentType || "").split(";")[0].trim().toLowerCase();
}

/// The first `max` characters of a body, for messages.
export function snippet(text, max = 300) {
  if (text.length <= max) return text;
  return `${text.slice(0, max)}…(${text.length} chars)`;
}

/// ajv's errors as one line, each naming the value at fault (the extra
/// property or the allowed values too), each said once.
export function errorsText(errors) {
  const said = new Set();
  for (const e of errors || []) {
    const extra = e.params?.additionalProperty ?? e.params?.allowedValues ?? e.params?.missingProperty;
    const what = `${e.instancePath || "the body"} ${e.message}`;
    said.add(extra === undefined || e.message.includes(String(extra)) ? what : `${what}: ${JSON.stringify(extra)}`);
  }
  return [...said].join("; ");
}

// A failure is one line saying what differs, then the body on its own line.
function withBody(text) {
  return `\n    body: ${snippet(text)}`;
}

export function answerChecker(doc) {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormatsModule(ajv);
  ajv.addSchema({ $id: DOC_ID, components: doc.components });

  function resolveRef(obj) {
    if (obj && typeof obj.$ref === "string" && obj.$ref.startsWith("#/")) {
      let cur = doc;
      for (const part of obj.$ref.slice(2).split("/")) cur = cur[part.replace(/~1/g, "/").replace(/~0/g, "~")];
      return cur;
    }
    return obj;
  }

  const validators = new Map();
  /// A compiled validator for one of the document's schemas (cached by key).
  function validatorFor(schema, key) {
    let v = validators.get(key);
    if (!v) {
      // The document's "#/components/…" refs, made absolute for ajv.
      const text = JSON.stringify(schema).replace(/"#\/components\//g, `"${DOC_ID}#/components/`);
      v = ajv.compile(JSON.parse(text));
      validators.set(key, v);
    }
    return v;
  }
  const errorShape = validatorFor({ $ref: "#/components/schemas/Error" }, "Error");

  // Path templates split into segments; a concrete path matches the one
  // with the most literal segments (as the router prefers them).
  const templates = Object.keys(doc.paths || {}).map((template) => {
    const segments = template.split("/").slice(1);
    return {
      template,
      segments,
      literals: segments.filter((s) => !/^\{[^}]+\}$/.test(s)).length,
    };
  });

  /// The template serving `path` (no query; one trailing slash ignored) and
  /// the operation for `method` there: {template, operation}. Like the
  /// router, the most literal template with that method wins (GET
  /// /events/import is GET /events/{event}: only POST serves import); when
  /// none has it, the most literal one, with operation undefined (405).
  /// Undefined when no template matches.
  function route(method, path) {
    let p = path.split("?")[0];
    if (p.length > 1 && p.endsWith("/")) p = p.slice(0, -1);
    const parts = p.split("/").slice(1);
    const m = method.toLowerCase();
    let best;
    let bestServing;
    for (const t of templates) {
      if (t.segments.length !== parts.length) continue;
      const fits = t.segments.every((s, i) => {
        const part = parts[i];
        if (part === undefined || part === "") return false;
        return /^\{[^}]+\}$/.test(s) || s === part;
      });
      if (!fits) continue;
      if (!best || t.literals > best.literals) best = t;
      if (doc.paths[t.template][m] && (!bestServing || t.literals > bestServing.literals)) bestServing = t;
    }
    const chosen = bestServing ?? best;
    if (!chosen) return undefined;
    return { template: chosen.template, operation: doc.paths[chosen.template][m] };
  }

  function parse(text) {
    try {
      return { ok: true, value: JSON.parse(text) };
    } catch {
      return { ok: false };
    }
  }

  /// An error answer of the document's general rules: `code` in the Error
  /// shape with this status.
  function generalError(status, expectedStatus, code, contentType, text, why) {
    if (status !== expectedStatus)
      return [`${why}: the document's general rules answer ${expectedStatus} ${code}, got ${status}${withBody(text)}`];
    const body = parse(text);
    if (mediaType(contentType) !== "application/json" || !body.ok || !errorShape(body.value))
      return [`${why}: not the Error shape (${contentType || "no content type"})${withBody(text)}`];
    if (body.value.error.code !== code) return [`${why}: error code ${body.value.error.code}, the rules say ${code}`];
    return [];
  }

  /// What differs between one answer and the document ([] when nothing):
  /// each failure is a line saying what, then "\n    body: …".
  /// `template` is the document's path template for the request (from
  /// route(), or the typed client's schema path).
  function answer(method, template, status, contentType, text) {
    const item = doc.paths?.[template];
    const op = item?.[method.toLowerCase()];
    if (!item) return generalError(status, 404, "not_found", contentType, text, "no route serves this path");
    if (!op) {
      const allowed = METHODS.filter((m) => item[m]).map((m) => m.toUpperCase());
      return generalError(status, 405, "method_not_allowed", contentType, text, `${method} not served here (the document lists ${allowed.join(", ")})`);
    }
    const responses = op.responses || {};
    const described = responses[String(status)] ?? responses[`${String(status)[0]}XX`] ?? responses.default;
    if (!described) return [`status not in the document (it lists ${Object.keys(responses).join(", ")})${withBody(text)}`];
    const r = resolveRef(described);
    const type = mediaType(contentType);
    if (!r.content) {
      if (text.length !== 0) return [`the document describes no body, one came${withBody(text)}`];
      return [];
    }
    const media = r.content[type] ?? r.content[`${type.split("/")[0]}/*`] ?? r.content["*/*"];
    if (!media) return [`content type ${type || "(none)"} not in the document (it lists ${Object.keys(r.content).join(", ")})${withBody(text)}`];
    const failures = [];
    const json = type === "application/json" || type.endsWith("+json");
    if (json) {
      const body = parse(text);
      if (!body.ok) return [`the body is not JSON${withBody(text)}`];
      const validate = validatorFor(media.schema ?? {}, `${method} ${template} ${status} ${type}`);
      if (!validate(body.value))
        failures.push(`the body does not match the document: ${errorsText(validate.errors)}${withBody(text)}`);
      // The document's schema for an error may be looser than the one shape.
      else if (status >= 400 && !errorShape(body.value))
        failures.push(`an error answer without the Error shape: ${errorsText(errorShape.errors)}${withBody(text)}`);
    }
    return failures;
  }

  return { route, answer, validatorFor, errorsText };
}
