// The API documentation page: fetches the node's OpenAPI document
// (../v1/openapi.json) and renders its operations and schemas. Text goes
// into the page as text only (text nodes), never as HTML; the page loads
// nothing from another site (Content-Security-Policy: default-src 'self'):
// its style and DOM helpers are the admin page's (/admin/style.css,
// /admin/dom.js), its own rules docs.css.
"use strict";

// $ and el come from the admin page's dom.js (docs.html loads it first).

// The document's prose: paragraphs split by blank lines, `code` and
// **bold** spans; everything else is plain text.
function prose(text, tag = "p") {
  const out = [];
  for (const para of String(text || "").split(/\n\s*\n/)) {
    if (!para.trim()) continue;
    const p = el(tag);
    const parts = para.split(/(`[^`]*`|\*\*[^*]+\*\*)/);
    for (const part of parts) {
      if (part.startsWith("`") && part.endsWith("`") && part.length >= 2)
        p.append(el("code", {}, part.slice(1, -1)));
      else if (part.startsWith("**") && part.endsWith("**") && part.length >= 4)
        p.append(el("b", {}, part.slice(2, -2)));
      else if (part) p.append(document.createTextNode(part));
    }
    out.push(p);
  }
  return out;
}

function refName(ref) {
  return ref.slice(ref.lastIndexOf("/") + 1);
}

// A short rendering of a schema: its $ref's name, type, enum or const.
function schemaText(s) {
  if (!s) return "";
  if (s.$ref) return refName(s.$ref);
  if (s.oneOf) return s.oneOf.map(schemaText).join(" | ");
  if (s.allOf) return s.allOf.map(schemaText).join(" & ");
  if ("const" in s) return JSON.stringify(s.const);
  if (s.enum) return s.enum.map((v) => JSON.stringify(v)).join(" | ");
  const t = Array.isArray(s.type) ? s.type.join(" | ") : s.type || "any";
  if (t === "array") return schemaText(s.items) + "[]";
  if (t === "object" && s.properties) return "{ " + Object.keys(s.properties).join(", ") + " }";
  return s.format ? `${t} (${s.format})` : t;
}

function schemaLink(s) {
  if (s && s.$ref) return el("a", { href: "#schema-" + refName(s.$ref) }, refName(s.$ref));
  if (s && s.type === "array" && s.items && s.items.$ref)
    return el("span", {}, schemaLink(s.items), "[]");
  return el("code", {}, schemaText(s));
}

function resolve(doc, obj) {
  if (obj && obj.$ref && obj.$ref.startsWith("#/")) {
    let cur = doc;
    for (const part of obj.$ref.slice(2).split("/")) cur = cur[part.replace(/~1/g, "/").replace(/~0/g, "~")];
    return cur;
  }
  return obj;
}

function securityText(doc, op) {
  const sec = op.security !== undefined ? op.security : doc.security || [];
  if (sec.length === 0) return "public (no token)";
  return sec.map((req) => Object.keys(req).join(" + ") || "none").join(" or ");
}

function operationBlock(doc, path, method, op, shared) {
  const body = el("div");
  body.append(...prose(op.description));
  body.append(el("p", {}, el("b", {}, "Security: "), securityText(doc, op)));
  const params = [...(shared || []), ...(op.parameters || [])].map((p) => resolve(doc, p));
  if (params.length) {
    const t = el("table", {}, el("tr", {}, el("th", {}, "parameter"), el("th", {}, "in"),
      el("th", {}, "type"), el("th", {}, "")));
    for (const p of params)
      t.append(el("tr", {}, el("td", {}, el("code", {}, p.name + (p.required ? "" : "?"))),
        el("td", {}, p.in), el("td", {}, schemaLink(p.schema)), el("td", {}, ...prose(p.description, "span"))));
    body.append(el("h3", {}, "Parameters"), t);
  }
  if (op.requestBody) {
    const rb = resolve(doc, op.requestBody);
    const t = el("table");
    for (const [type, media] of Object.entries(rb.content || {}))
      t.append(el("tr", {}, el("td", {}, el("code", {}, type)), el("td", {}, schemaLink(media.schema))));
    body.append(el("h3", {}, "Request body" + (rb.required ? "" : " (optional)")), t);
  }
  const t = el("table", {}, el("tr", {}, el("th", {}, "status"), el("th", {}, "body"), el("th", {}, "")));
  for (const [status, r0] of Object.entries(op.responses || {})) {
    const r = resolve(doc, r0);
    const media = Object.entries(r.content || {});
    const bodyCell = el("td");
    for (const [type, m] of media) bodyCell.append(el("div", {}, el("code", {}, type), " ", schemaLink(m.schema)));
    t.append(el("tr", {}, el("td", {}, status), bodyCell, el("td", {}, ...prose(r.description, "span"))));
  }
  body.append(el("h3", {}, "Responses"), t);
  const d = el("details", { class: "op", id: op.operationId || "" },
    el("summary", {}, el("span", { class: "method " + method }, method),
      el("span", { class: "path" }, path), el("span", {}, op.summary || ""),
      el("span", { class: "tag muted" }, (op.tags || []).join(", "))),
    body);
  d.dataset.search = [method, path, op.summary, op.operationId, ...(op.tags || [])].join(" ").toLowerCase();
  return d;
}

function schemaBlock(name, s) {
  const d = el("details", { class: "op", id: "schema-" + name },
    el("summary", {}, el("code", {}, name), el("span", { class: "muted" }, s.description || "")));
  const inner = el("div");
  if (s.properties) {
    const req = new Set(s.required || []);
    const t = el("table", {}, el("tr", {}, el("th", {}, "field"), el("th", {}, "type"), el("th", {}, "")));
    for (const [k, v] of Object.entries(s.properties))
      t.append(el("tr", {}, el("td", {}, el("code", {}, k + (req.has(k) ? "" : "?"))),
        el("td", {}, schemaLink(v)), el("td", {}, ...prose(v.description, "span"))));
    inner.append(t);
    if (s.additionalProperties === false) inner.append(el("p", { class: "muted" }, "No other fields."));
  } else {
    inner.append(el("pre", {}, JSON.stringify(s, null, 2)));
  }
  d.append(inner);
  return d;
}

function render(doc) {
  $("version").textContent = `${doc.info.title} ${doc.info.version} · OpenAPI ${doc.openapi}`;
  const intro = $("intro");
  if (doc.info.summary) intro.append(el("p", {}, el("b", {}, doc.info.summary)));
  intro.append(...prose(doc.info.description));
  intro.hidden = false;

  const schemes = $("schemes");
  for (const [name, s] of Object.entries((doc.components || {}).securitySchemes || {})) {
    const how = s.type === "http" ? `Authorization: ${s.scheme}` : `${s.in} ${s.name}`;
    schemes.append(el("dt", {}, name, " ", el("span", { class: "muted" }, `(${how})`)),
      el("dd", {}, ...prose(s.description, "span")));
  }
  $("security").hidden = false;

  const ops = $("operations");
  const tags = (doc.tags || []).map((t) => t.name);
  const byTag = new Map(tags.map((t) => [t, []]));
  let total = 0;
  for (const [path, item] of Object.entries(doc.paths || {})) {
    for (const method of ["get", "put", "post", "patch", "delete"]) {
      const op = item[method];
      if (!op) continue;
      const tag = (op.tags || ["other"])[0];
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag).push(operationBlock(doc, path, method, op, item.parameters));
      ++total;
    }
  }
  for (const [tag, blocks] of byTag) {
    if (!blocks.length) continue;
    const info = (doc.tags || []).find((t) => t.name === tag);
    const sec = el("section", { class: "tag-section" }, el("h2", {}, tag));
    if (info && info.description) sec.append(...prose(info.description));
    sec.append(...blocks);
    ops.append(sec);
  }
  const schemas = $("schemas");
  for (const [name, s] of Object.entries((doc.components || {}).schemas || {}))
    schemas.append(schemaBlock(name, s));
  $("schemas-section").hidden = false;

  const count = $("count");
  count.textContent = `${total} operations`;
  $("filter-bar").hidden = false;
  $("filter").addEventListener("input", (e) => {
    const q = e.target.value.trim().toLowerCase();
    let shown = 0;
    for (const sec of ops.querySelectorAll(".tag-section")) {
      let any = false;
      for (const d of sec.querySelectorAll("details.op")) {
        const hit = !q || d.dataset.search.includes(q);
        d.hidden = !hit;
        if (hit) { any = true; ++shown; }
      }
      sec.hidden = !any;
    }
    count.textContent = q ? `${shown} of ${total} operations` : `${total} operations`;
  });
  $("status").hidden = true;
}

fetch("../v1/openapi.json", { headers: { Accept: "application/json" } })
  .then((r) => {
    if (!r.ok) throw new Error(`GET ../v1/openapi.json answered ${r.status}`);
    return r.json();
  })
  .then(render)
  .catch((err) => {
    $("status").textContent = "Could not load the OpenAPI document: " + err.message;
  });
