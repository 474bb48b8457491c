// How a hit's facts read on the page, and the orders a producer sorts by.
"use strict";

export function label(hit) {
  const path = hit.path || hit.path_hint;
  return path ? path.split("/").pop() : hit.id;
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
};

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
