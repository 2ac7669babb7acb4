// DOM helpers shared by the web admin page (app.js) and the API's
// documentation page (api/openapi/docs.js, which loads this file from
// /admin/dom.js). Text from anywhere goes into a page as text, never as
// HTML: el() appends strings as text nodes.
"use strict";

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else e.setAttribute(k, v);
  }
  for (const c of children)
    e.append(c instanceof Node ? c : document.createTextNode(String(c ?? "")));
  return e;
}
