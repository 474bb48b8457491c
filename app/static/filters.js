// The filter panel: real values with counts from the library (facets), BPM and duration ranges,
// and the folder the search is limited to. Every change calls the page back.
"use strict";

import { get, enc, ApiError } from "./api.js";
import { kind as kindLabel, number } from "./format.js";

export const FACETS = [
  ["pack", "Pack"], ["genre", "Genre"], ["instrument", "Instrument"], ["category", "Category"],
  ["key", "Key"], ["kind", "Kind"],
];
const SHOWN = 6; // values per field before "Show all"
const LIMIT = 50;

const panel = document.getElementById("facets");
const chosen = Object.fromEntries(FACETS.map(([f]) => [f, new Set()]));
const expanded = new Set();
let facetsAvailable = true;
let folder = null; // path_prefix
let changed = () => {};
let seq = 0;

export function onChange(fn) { changed = fn; }
export function setFolder(path) { folder = path; renderChip(); }
export function folderNow() { return folder; }

function range(minId, maxId) {
  const low = document.getElementById(minId).value;
  const high = document.getElementById(maxId).value;
  if (low === "" && high === "") return null;
  const out = {};
  if (low !== "") out.min = Number(low);
  if (high !== "") out.max = Number(high);
  if (out.min != null && out.max != null && out.min > out.max) [out.min, out.max] = [out.max, out.min];
  return out;
}

/** The filter of the panel (null if empty); ``without`` leaves one field out (for its counts). */
export function current(without = null) {
  const filter = {};
  for (const [field] of FACETS) {
    if (field === without) continue;
    const values = [...chosen[field]];
    if (values.length) filter[field] = values;
  }
  if (!facetsAvailable) {
    for (const input of panel.querySelectorAll("[data-text-field]")) {
      const value = input.value.trim();
      if (value) filter[input.dataset.textField] = value;
    }
  }
  const bpm = range("bpm-min", "bpm-max");
  if (bpm) filter.bpm = bpm;
  const duration = range("dur-min", "dur-max");
  if (duration) filter.duration_s = duration;
  if (folder) filter.path_prefix = folder;
  return Object.keys(filter).length ? filter : null;
}

export function clear() {
  for (const set of Object.values(chosen)) set.clear();
  for (const id of ["bpm-min", "bpm-max", "dur-min", "dur-max"]) document.getElementById(id).value = "";
  for (const input of panel.querySelectorAll("[data-text-field]")) input.value = "";
  folder = null;
  renderChip();
}

async function counts(fields, filter) {
  const params = fields.map((f) => `field=${enc(f)}`);
  if (filter) params.push(`filter=${enc(JSON.stringify(filter))}`);
  params.push(`limit=${LIMIT}`);
  return get(`/v1/facets?${params.join("&")}`);
}

/** Fetch the counts that go with the current filter and redraw the panel. */
export async function refresh() {
  const mine = ++seq;
  if (!facetsAvailable) return;
  // A field with values chosen counts without its own condition (so its other values stay
  // offered); the rest share one request with the whole filter.
  const free = FACETS.map(([f]) => f).filter((f) => !chosen[f].size);
  const requests = [];
  if (free.length) requests.push(counts(free, current()));
  for (const [f] of FACETS) if (chosen[f].size) requests.push(counts([f], current(f)));
  let answers;
  try {
    answers = await Promise.all(requests);
  } catch (error) {
    if (error instanceof ApiError && error.status === 404 && error.code === "not_found") {
      facetsAvailable = false; // an older service: plain text filters instead
      renderText();
      return;
    }
    throw error;
  }
  if (mine !== seq) return;
  const merged = {};
  for (const answer of answers) Object.assign(merged, answer.facets);
  renderFacets(merged);
}

function renderFacets(facets) {
  panel.replaceChildren(...FACETS.map(([field, title]) => {
    const values = facets[field] || [];
    const set = chosen[field];
    for (const v of set) if (!values.some((x) => x.value === v)) values.push({ value: v, count: 0 });
    const group = document.createElement("fieldset");
    group.className = "facet";
    group.dataset.field = field;
    const legend = document.createElement("legend");
    legend.textContent = title;
    group.append(legend);
    if (!values.length) {
      const none = document.createElement("p");
      none.className = "hint";
      none.textContent = "none in these results";
      group.append(none);
      return group;
    }
    const all = expanded.has(field);
    values.forEach((entry, i) => {
      if (!all && i >= SHOWN && !set.has(entry.value)) return;
      const labelEl = document.createElement("label");
      const box = document.createElement("input");
      box.type = "checkbox";
      box.value = entry.value;
      box.checked = set.has(entry.value);
      box.addEventListener("change", () => {
        if (box.checked) set.add(entry.value); else set.delete(entry.value);
        changed();
      });
      const name = document.createElement("span");
      name.textContent = field === "kind" ? kindLabel(entry.value) : entry.value;
      const count = document.createElement("span");
      count.className = "count";
      count.textContent = number(entry.count);
      labelEl.append(box, name, count);
      group.append(labelEl);
    });
    if (values.length > SHOWN) {
      const more = document.createElement("button");
      more.type = "button";
      more.className = "link";
      more.textContent = all ? "Show fewer" : `Show all ${values.length}`;
      more.setAttribute("aria-expanded", String(all));
      more.addEventListener("click", () => {
        if (all) expanded.delete(field); else expanded.add(field);
        renderFacets(facets);
        panel.querySelector(`[data-field="${field}"] button.link`).focus();
      });
      group.append(more);
    }
    return group;
  }));
}

function renderText() {
  panel.replaceChildren(...FACETS.filter(([f]) => f !== "category").map(([field, title]) => {
    const labelEl = document.createElement("label");
    labelEl.className = "text-filter";
    labelEl.textContent = title;
    if (field === "kind") {
      const select = document.createElement("select");
      select.dataset.textField = "kind";
      for (const [value, text] of [["", "any"], ["one_shot", "one-shot"], ["loop", "loop"]]) {
        select.append(new Option(text, value));
      }
      select.addEventListener("change", () => changed());
      labelEl.append(select);
      return labelEl;
    }
    const input = document.createElement("input");
    input.dataset.textField = field;
    input.placeholder = "any";
    input.addEventListener("change", () => changed());
    labelEl.append(input);
    return labelEl;
  }));
}

const chip = document.getElementById("folder-chip");
function renderChip() {
  chip.hidden = !folder;
  chip.querySelector("span").textContent = folder ? folder.split("/").slice(-2).join("/") : "";
  chip.title = folder || "";
}
chip.querySelector("button").addEventListener("click", () => { folder = null; renderChip(); changed(); });

for (const id of ["bpm-min", "bpm-max", "dur-min", "dur-max"]) {
  document.getElementById(id).addEventListener("change", () => changed());
}
document.getElementById("clear-filters").addEventListener("click", () => { clear(); changed(); });
