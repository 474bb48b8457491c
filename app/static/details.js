// The details panel: every stored field of a sample, all its paths, its near-duplicates (or its
// closest neighbours), and "more like this" mixed with words by the alpha slider.
"use strict";

import { get, post, enc } from "./api.js";
import * as fmt from "./format.js";
import { waveCanvas } from "./wave.js";

const panel = document.getElementById("details");
const body = panel.querySelector(".details-body");
let hooks = {};
let shownId = null;
let returnFocus = null;

export function onDetails(handlers) { hooks = handlers; }
export function isOpen() { return !panel.hidden; }
export function shown() { return shownId; }

function field(dl, name, value) {
  const dt = document.createElement("dt");
  dt.textContent = name;
  const dd = document.createElement("dd");
  dd.textContent = value;
  dl.append(dt, dd);
}

function describe(name, value) {
  if (value == null || value === "") return "—";
  if (name === "peaks" && typeof value === "string") return `${atob(value).length} waveform peaks`;
  if (name === "duration_s") return `${fmt.seconds(value)} (${value})`;
  if (Array.isArray(value)) return value.length ? value.join(", ") : "—";
  if (typeof value === "object") {
    if (!Object.keys(value).length) return "—";
    return Object.entries(value).map(([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v) : v}`).join("\n");
  }
  return String(value);
}

function heading(text) {
  const h = document.createElement("h3");
  h.textContent = text;
  return h;
}

function neighbourList(hits, emptyText, className, keep = null) {
  if (!hits.length) {
    const p = document.createElement("p");
    p.className = "hint";
    p.textContent = emptyText;
    return p;
  }
  const ol = document.createElement("ol");
  ol.className = className;
  for (const hit of hits) {
    const li = document.createElement("li");
    const b = document.createElement("button");
    b.type = "button";
    b.className = "link";
    b.textContent = fmt.label(hit);
    b.title = hit.path || "";
    b.addEventListener("click", () => open(hit));
    const score = document.createElement("span");
    score.className = "count";
    score.textContent = hit.score != null ? hit.score.toFixed(3) : "";
    li.append(b);
    if (keep === hit.id) li.append(Object.assign(document.createElement("span"), {
      className: "keep", textContent: "keep this one",
    }));
    li.append(score);
    ol.append(li);
  }
  return ol;
}

async function duplicates(hit) {
  const data = await get(`/v1/items/${enc(hit.id)}/duplicates`);
  const keepNote = data.hits.length && data.keep === hit.id ? "This one is the copy to keep." : "";
  const layers = (data.layers || []).length;
  // velocity layers and round robins sound alike but are parts of one instrument: say so
  const layerNote = layers
    ? `${layers} velocity layer${layers === 1 ? "" : "s"} or round robin${layers === 1 ? "" : "s"} of this sound in its folder ${layers === 1 ? "is" : "are"} as close, and not counted as duplicates.`
    : "";
  const note = [keepNote, layerNote].filter(Boolean).join(" ");
  return { hits: data.hits, keep: data.keep, note };
}

async function closest(hit) {
  const data = await post("/v1/search/audio", { id: hit.id, top_k: 7 });
  return data.hits.filter((h) => h.id !== hit.id).slice(0, 6);
}

/** Open the panel on ``hit``; focus moves into it and comes back on close. */
export async function open(hit) {
  if (panel.hidden) returnFocus = document.activeElement;
  shownId = hit.id;
  panel.hidden = false;
  document.body.classList.add("details-open");
  panel.querySelector("h2").textContent = fmt.label(hit);
  body.replaceChildren();

  const wave = waveCanvas(hit, "wave big");
  wave.dataset.action = "seek";
  wave.addEventListener("click", (event) => {
    const rect = wave.getBoundingClientRect();
    hooks.play(hit, (event.clientX - rect.left) / rect.width);
  });
  const bar = document.createElement("div");
  bar.className = "details-actions";
  const mk = (text, action, extra = {}) => {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = text;
    b.addEventListener("click", action);
    Object.assign(b, extra);
    return b;
  };
  const download = document.createElement("a");
  download.href = hit.audio_url;
  download.download = fmt.label(hit);
  download.textContent = "Download original";
  download.className = "button-link";
  const extra = [];
  if (hit.fit && hit.fit.audio_url) {
    // The rendition stretched and transposed to the project, as a file for the DAW.
    const matched = document.createElement("a");
    matched.href = hit.fit.audio_url;
    matched.download = fmt.matchedName(hit);
    matched.textContent = "Download matched";
    matched.title = `${fmt.matchedName(hit)}: stretched and transposed to the project`;
    matched.className = "button-link";
    extra.push(matched);
  }
  bar.append(
    mk("Play", () => hooks.play(hit, 0)),
    mk(hooks.isFavourite(hit) ? "★ Favourite" : "☆ Favourite", async (event) => {
      const on = await hooks.favourite(hit);
      if (on != null) event.target.textContent = on ? "★ Favourite" : "☆ Favourite";
    }),
    mk("Add to collection", () => hooks.add(hit)),
    download,
    ...extra,
  );

  const like = document.createElement("form");
  like.className = "like";
  like.innerHTML = `
    <h3>More like this</h3>
    <label>…described as <input name="text" type="text" placeholder="optional words, e.g. darker"></label>
    <div class="mix"><span aria-hidden="true">Sound</span>
      <input name="alpha" type="range" min="0" max="1" step="0.05" value="0.3"
        aria-label="Mix: weight of the words (right = more words)">
      <span aria-hidden="true">Words</span><output name="out">30% words</output></div>
    <button type="submit">Find similar</button>`;
  const alpha = like.elements.alpha;
  const text = like.elements.text;
  const sync = () => {
    like.elements.out.value = `${Math.round(alpha.value * 100)}% words`;
    alpha.disabled = !text.value.trim();
  };
  alpha.addEventListener("input", sync);
  text.addEventListener("input", sync);
  sync();
  like.addEventListener("submit", (event) => {
    event.preventDefault();
    hooks.moreLike(hit, text.value.trim(), Number(alpha.value));
  });

  const sections = document.createElement("div");
  sections.className = "details-sections";
  body.append(wave, bar, like, sections);
  panel.querySelector("h2").focus();

  const [payload, dupes, near] = await Promise.allSettled([
    get(`/v1/items/${enc(hit.id)}/payload`),
    duplicates(hit),
    closest(hit),
  ]);
  if (shownId !== hit.id) return;
  if (payload.status === "fulfilled") {
    const data = payload.value.payload;
    const paths = data.paths || (data.path ? [data.path] : []);
    const ul = document.createElement("ul");
    ul.className = "paths";
    for (const p of paths) {
      const li = document.createElement("li");
      li.textContent = p;
      ul.append(li);
    }
    const dl = document.createElement("dl");
    dl.className = "fields";
    field(dl, "id", hit.id);
    for (const name of Object.keys(data).sort()) {
      if (name === "paths") continue;
      field(dl, name, describe(name, data[name]));
    }
    sections.append(heading(`All paths (${paths.length})`), ul);
    appendDuplicates(sections, dupes);
    sections.append(heading("Every field"), dl);
  } else {
    appendDuplicates(sections, dupes);
    sections.append(heading("Fields"), Object.assign(document.createElement("p"), {
      className: "hint", textContent: `Could not read the fields: ${payload.reason.message}`,
    }));
  }
  if (near.status === "fulfilled") {
    sections.append(heading("Closest sounds"), neighbourList(near.value, "Nothing else in the library.", "neighbours"));
  }
}

function appendDuplicates(sections, dupes) {
  if (dupes.status !== "fulfilled") return;
  const { hits, keep, note } = dupes.value;
  sections.append(heading(`Near-duplicates (${hits.length})`),
    neighbourList(hits, "No near-duplicates in the library.", "duplicates", keep));
  if (note) sections.append(Object.assign(document.createElement("p"), { className: "hint", textContent: note }));
}

export function close() {
  if (panel.hidden) return;
  panel.hidden = true;
  shownId = null;
  document.body.classList.remove("details-open");
  if (returnFocus && returnFocus.isConnected) returnFocus.focus();
}

panel.querySelector(".close").addEventListener("click", close);
