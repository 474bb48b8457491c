// The API reference (/docs): renders this service's OpenAPI document with nothing loaded
// from elsewhere, so it works offline and no request leaves a loopback-only tool.
"use strict";

const MAX_DEPTH = 4; // nested schemas shown before "…" (the JSON document has the rest)

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "class") node.className = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) {
    if (child == null) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function resolve(doc, schema, seen) {
  let name = null;
  while (schema && schema.$ref) {
    name = schema.$ref.split("/").pop();
    if (seen.has(name)) return { schema: {}, name, cycle: true };
    seen = new Set(seen).add(name);
    schema = (doc.components?.schemas || {})[name] || {};
  }
  return { schema: schema || {}, name, seen };
}

function typeOf(doc, schema) {
  const { schema: s, name } = resolve(doc, schema, new Set());
  if (name) return name;
  if (s.anyOf || s.oneOf) return (s.anyOf || s.oneOf).map((x) => typeOf(doc, x)).join(" | ");
  if (s.type === "array") {
    const item = typeOf(doc, s.items || {});
    return item.includes("|") ? `(${item})[]` : `${item}[]`;
  }
  if (s.enum) return s.enum.map((v) => JSON.stringify(v)).join(" | ");
  return s.type || (s.properties ? "object" : "any");
}

function schemaTree(doc, schema, depth = 0, seen = new Set()) {
  const r = resolve(doc, schema, seen);
  const s = r.schema;
  if (r.cycle || depth >= MAX_DEPTH) return el("ul", { class: "schema" }, el("li", {}, "…"));
  const variants = s.anyOf || s.oneOf;
  if (variants) {
    const objects = variants.filter((v) => resolve(doc, v, r.seen || seen).schema.properties);
    if (objects.length === 1) return schemaTree(doc, objects[0], depth, r.seen || seen);
  }
  if (s.type === "array" && s.items) return schemaTree(doc, s.items, depth, r.seen || seen);
  const props = s.properties || {};
  const required = new Set(s.required || []);
  const list = el("ul", { class: "schema" });
  for (const [name, prop] of Object.entries(props)) {
    const p = resolve(doc, prop, r.seen || seen).schema;
    const bits = [el("span", { class: "name" }, name)];
    if (required.has(name)) bits.push(el("span", { class: "req" }, "*"));
    bits.push(" ", el("span", { class: "type" }, typeOf(doc, prop)));
    const notes = [];
    if (p.description || prop.description) notes.push(prop.description || p.description);
    if (p.default !== undefined) notes.push(`default ${JSON.stringify(p.default)}`);
    for (const bound of ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "maxItems", "maxLength"]) {
      if (p[bound] !== undefined) notes.push(`${bound} ${p[bound]}`);
    }
    if (notes.length) bits.push(" ", el("span", { class: "desc" }, `— ${notes.join("; ")}`));
    const item = el("li", {}, ...bits);
    const inner = resolve(doc, p.type === "array" ? p.items || {} : prop, r.seen || seen).schema;
    if (inner.properties || (inner.anyOf || []).some((v) => resolve(doc, v, seen).schema.properties)) {
      item.append(schemaTree(doc, p.type === "array" ? p.items : prop, depth + 1, r.seen || seen));
    }
    list.append(item);
  }
  if (!list.children.length) list.append(el("li", {}, el("span", { class: "type" }, typeOf(doc, schema))));
  return list;
}

function parameters(doc, params) {
  if (!params.length) return null;
  const table = el("table", {}, el("tr", {}, el("th", {}, "parameter"), el("th", {}, "in"), el("th", {}, "type"), el("th", {}, "description")));
  for (const p of params) {
    table.append(el("tr", {},
      el("td", {}, el("code", {}, p.name), p.required ? el("span", { class: "req" }, " *") : null),
      el("td", {}, p.in),
      el("td", {}, typeOf(doc, p.schema || {})),
      el("td", {}, p.description || p.schema?.description || "")));
  }
  return table;
}

function operation(doc, path, method, op) {
  const body = el("div", { class: "op-body" });
  if (op.description) body.append(el("p", {}, op.description));
  const params = parameters(doc, op.parameters || []);
  if (params) body.append(el("h3", {}, "Parameters"), params);
  const content = op.requestBody?.content || {};
  for (const [type, media] of Object.entries(content)) {
    body.append(el("h3", {}, `Body (${type})${op.requestBody.required ? " *" : ""}`), schemaTree(doc, media.schema || {}));
  }
  const responses = el("table", {});
  for (const [code, response] of Object.entries(op.responses || {})) {
    const schema = Object.values(response.content || {})[0]?.schema;
    responses.append(el("tr", {}, el("td", {}, el("code", {}, code)),
      el("td", {}, response.description || "", schema ? schemaTree(doc, schema) : null)));
  }
  body.append(el("h3", {}, "Responses"), responses);
  const details = el("details", { class: "op", id: `${method}-${path}`.replace(/[^A-Za-z0-9_-]/g, "_") },
    el("summary", {}, el("span", { class: `method ${method}` }, method.toUpperCase()),
      el("span", { class: "path" }, path), el("span", { class: "op-summary" }, op.summary || "")),
    body);
  details.dataset.text = `${method} ${path} ${op.summary || ""} ${(op.tags || []).join(" ")}`.toLowerCase();
  return details;
}

function render(doc) {
  const main = document.getElementById("docs");
  document.getElementById("docs-title").textContent = `${doc.info?.title || "API"} ${doc.info?.version || ""}`.trim();
  document.getElementById("docs-summary").textContent = doc.info?.summary || doc.info?.description || "";
  const byTag = new Map();
  for (const [path, item] of Object.entries(doc.paths || {})) {
    for (const [method, op] of Object.entries(item)) {
      if (!["get", "post", "put", "patch", "delete", "head"].includes(method)) continue;
      const tag = (op.tags || ["other"])[0];
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag).push(operation(doc, path, method, op));
    }
  }
  main.replaceChildren();
  for (const [tag, ops] of byTag) {
    const section = el("section", { class: "docs-tag-section" }, el("h2", { class: "docs-tag" }, tag), ...ops);
    main.append(section);
  }
  if (location.hash) document.getElementById(location.hash.slice(1))?.setAttribute("open", "");
}

function filterRoutes(text) {
  const words = text.toLowerCase().split(/\s+/).filter(Boolean);
  for (const section of document.querySelectorAll(".docs-tag-section")) {
    let shown = 0;
    for (const op of section.querySelectorAll(".op")) {
      const match = words.every((w) => op.dataset.text.includes(w));
      op.hidden = !match;
      shown += match;
    }
    section.hidden = shown === 0;
  }
}

document.getElementById("docs-filter").addEventListener("input", (e) => filterRoutes(e.target.value));

fetch("/openapi.json")
  .then((r) => {
    if (!r.ok) throw new Error(`the service answered ${r.status}`);
    return r.json();
  })
  .then(render)
  .catch((err) => {
    document.getElementById("docs").replaceChildren(
      el("p", { class: "docs-error" }, `Could not load the OpenAPI document: ${err.message}. `,
        el("a", { href: "/openapi.json" }, "Open it directly.")));
  });
