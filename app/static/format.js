// How a hit's facts read on the page, and the orders a producer sorts by.
"use strict";

export function label(hit) {
  const path = hit.path || hit.path_hint;
  return path ? path.split("/").pop() : hit.id;
}

/** The file name of a hit's rendition matched to the project: ``Bass_Loop (124 BPM, -2 st).wav``. */
export function matchedName(hit) {
  const base = label(hit).replace(/\.[^.]+$/, "");
  const url = new URL(hit.fit.audio_url, location.href);
  const bpm = url.searchParams.get("bpm");
  const st = Number(url.searchParams.get("semitones") || 0);
  const parts = [bpm && `${bpm} BPM`, st && `${st > 0 ? "+" : ""}${st} st`].filter(Boolean);
  return `${base}${parts.length ? ` (${parts.join(", ")})` : ""}.wav`;
}

export function folderOf(hit) {
  const path = hit.path || hit.path_hint || "";
  const parts = path.split("/");
  return parts.slice(Math.max(0, parts.length - 3), -1).join("/");
}

export function seconds(value) {
  if (value == null) return "";
  if (value < 10) return `${value.toFixed(2)} s`;
  if (value < 60) return `${value.toFixed(1)} s`;
  const m = Math.floor(value / 60);
  return `${m}:${String(Math.round(value - 60 * m)).padStart(2, "0")}`;
}

export function bpm(value) {
  if (value == null) return "";
  return Number.isInteger(value) ? String(value) : value.toFixed(1);
}

export function kind(value) {
  return value ? value.replace("_", "-") : "";
}

/**
 * What a sample is, for the "Sound" column: ``{text, guess}``. The instrument its own name
 * states wins; otherwise the model's zero-shot category (or the instrument derived from it)
 * is shown as a guess, since a model heard it and nobody wrote it.
 */
export function sound(hit) {
  const named = hit.instrument && hit.instrument_source !== "audio";
  if (named) return { text: hit.instrument, guess: false };
  const heard = hit.category || hit.instrument;
  return heard ? { text: `${heard}?`, guess: true } : { text: "", guess: false };
}

export function samples(n) {
  return `${number(n)} ${n === 1 ? "sample" : "samples"}`;
}

export function number(n) {
  return n == null ? "?" : n.toLocaleString("en");
}

// Pitch classes, for sorting keys around the octave: C, C#/Db, D ...
const PITCH = { C: 0, D: 2, E: 4, F: 5, G: 7, A: 9, B: 11 };

export function keyOrder(key) {
  if (!key) return Infinity;
  const match = /^([A-G])([#b♯♭]?)(m?)$/.exec(key.trim());
  if (!match) return Infinity - 1;
  let pc = PITCH[match[1]];
  if (match[2] === "#" || match[2] === "♯") pc += 1;
  if (match[2] === "b" || match[2] === "♭") pc -= 1;
  return ((pc + 12) % 12) * 2 + (match[3] ? 1 : 0); // major before its minor
}

const collator = new Intl.Collator("en", { numeric: true, sensitivity: "base" });

export const SORTS = {
  relevance: null,
  name: (a, b) => collator.compare(label(a), label(b)),
  bpm: (a, b) => (a.bpm ?? Infinity) - (b.bpm ?? Infinity),
  key: (a, b) => keyOrder(a.key) - keyOrder(b.key),
  duration: (a, b) => (a.duration_s ?? Infinity) - (b.duration_s ?? Infinity),
  pack: (a, b) => collator.compare(a.pack || "\uffff", b.pack || "\uffff"),
  fit: (a, b) => fitRank(a) - fitRank(b),
};

/** Fitting samples first, then the least stretch, then the least transposition (as the
 * service's fit order); samples without a fit (no project) are unknown. */
function fitRank(hit) {
  const fit = hit.fit;
  if (!fit) return Infinity;
  return (fit.fits ? 0 : 1e6) + Math.abs(fit.stretch_pct || 0) * 100 + Math.abs(fit.semitones || 0);
}

/** A sorted copy (stable: ties keep the relevance order); ``desc`` reverses known values. */
export function sorted(hits, by, desc = false) {
  const compare = SORTS[by];
  if (!compare) return hits.slice();
  const ranked = hits.map((hit, rank) => ({ hit, rank }));
  ranked.sort((x, y) => {
    const missingX = compare(x.hit, x.hit) !== 0; // NaN from Infinity - Infinity: unknown
    const missingY = compare(y.hit, y.hit) !== 0;
    if (missingX !== missingY) return missingX ? 1 : -1; // unknown values last, either way
    const c = missingX ? 0 : compare(x.hit, y.hit);
    return (desc ? -c : c) || x.rank - y.rank;
  });
  return ranked.map((r) => r.hit);
}

// Line icons drawn in the text colour, so they look the same whatever fonts the system has
// (emoji fonts are often missing on Linux). Paths after Feather icons (MIT licence).
const ICONS = {
  up: '<path d="M14 9V5a3 3 0 0 0-3-3l-4 9v11h11.28a2 2 0 0 0 2-1.7l1.38-9a2 2 0 0 0-2-2.3zM7 22H4a2 2 0 0 1-2-2v-7a2 2 0 0 1 2-2h3"/>',
  down: '<path d="M10 15v4a3 3 0 0 0 3 3l4-9V2H5.72a2 2 0 0 0-2 1.7l-1.38 9a2 2 0 0 0 2 2.3zm7-13h2.67A2.31 2.31 0 0 1 22 4v7a2.31 2.31 0 0 1-2.33 2H17"/>',
  lock: '<rect x="3" y="11" width="18" height="11" rx="2"/><path d="M7 11V7a5 5 0 0 1 10 0v4"/>',
  unlock: '<rect x="3" y="11" width="18" height="11" rx="2"/><path d="M7 11V7a5 5 0 0 1 9.9-1"/>',
};

/** An inline SVG icon (``up``, ``down``, ``lock``, ``unlock``), hidden from screen readers. */
export function icon(name) {
  const span = document.createElement("span");
  span.className = `icon icon-${name}`;
  span.setAttribute("aria-hidden", "true");
  span.innerHTML = `<svg viewBox="0 0 24 24" width="1em" height="1em" fill="none" stroke="currentColor" stroke-width="2.2" stroke-linecap="round" stroke-linejoin="round">${ICONS[name]}</svg>`;
  return span;
}
