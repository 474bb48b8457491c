// The project a producer is making: its tempo and key (the header's BPM box and key menu),
// how the hits are ranked by fit, and whether auditions are matched to it. Kept in the
// browser (localStorage) and in the address (?bpm=124&key=Am), so that a link reproduces the
// view; every search sends it as ``context`` and browsing as query parameters.
"use strict";

const STORAGE = "timbre.project";
const NOTES = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"];
const FLATS = { Db: "C#", Eb: "D#", Fb: "E", Gb: "F#", Ab: "G#", Bb: "A#", Cb: "B", "E#": "F", "B#": "C" };

const bpmInput = document.getElementById("project-bpm");
const keySelect = document.getElementById("project-key");
const fitFirst = document.getElementById("fit-first");
const onlyFitting = document.getElementById("only-fitting");
const matched = document.getElementById("match-project");
const fitControls = document.getElementById("fit-controls");

let changed = () => {};
let matchChanged = () => {};
let settled = () => {};
export function onChange(fn) { changed = fn; }
/** ``fn()`` when the tempo or key is settled: Enter or leaving the BPM box, a key chosen, the
 * project cleared; never while a tempo is being typed (a kit saved at 1, then 12 BPM...). */
export function onSettled(fn) { settled = fn; }
export function onMatchChange(fn) { matchChanged = fn; }

/** ``"F# minor"``, ``"Bbm"``, ``"a"`` -> the canonical key (``F#m``, ``A#m``, ``A``), or "". */
export function canonicalKey(text) {
  const m = /^\s*([A-Ga-g])\s*(#|b|♯|♭)?\s*(m|min|minor|maj|major|M)?\s*$/.exec(text || "");
  if (!m) return "";
  let note = m[1].toUpperCase() + ({ "♯": "#", "♭": "b" }[m[2]] || m[2] || "");
  note = FLATS[note] || note;
  const minor = m[3] != null && (m[3] === "m" || /^min/i.test(m[3]));
  return note + (minor ? "m" : "");
}

function fillKeys() {
  const none = new Option("—", "");
  none.title = "no project key";
  const major = document.createElement("optgroup");
  major.label = "major";
  const minor = document.createElement("optgroup");
  minor.label = "minor";
  for (const note of NOTES) {
    major.append(new Option(note, note));
    minor.append(new Option(`${note}m`, `${note}m`));
  }
  keySelect.replaceChildren(none, major, minor);
}

function validBpm(value) {
  const n = Number(value);
  return value !== "" && value != null && Number.isFinite(n) && n > 0 && n <= 999 ? n : null;
}

/** The project as set: ``{bpm, key}`` with nulls for what is not set. */
export function project() {
  return { bpm: validBpm(bpmInput.value), key: keySelect.value || null };
}

export function isSet() {
  const p = project();
  return p.bpm != null || p.key != null;
}

/** ``context`` for a search request (null without a project). */
export function forRequest() {
  const p = project();
  if (p.bpm == null && p.key == null) return null;
  const out = {};
  if (p.bpm != null) out.bpm = p.bpm;
  if (p.key != null) out.key = p.key;
  out.sort = fitFirst.checked ? "fit" : "score";
  out.only_fitting = onlyFitting.checked;
  return out;
}

/** ``bpm=..&key=..&sort=..&only_fitting=..`` for browsing ("" without a project). */
export function forQuery() {
  const c = forRequest();
  if (!c) return "";
  const params = new URLSearchParams();
  if (c.bpm != null) params.set("bpm", c.bpm);
  if (c.key != null) params.set("key", c.key);
  params.set("sort", c.sort);
  params.set("only_fitting", String(c.only_fitting));
  return params.toString();
}

/** Auditions and exports matched to the project? */
export function isMatched() { return matched.checked && isSet(); }

/** The URL to audition ``hit`` from when matching is on: its rendition, or null. */
export function matchedUrl(hit) {
  return isMatched() && hit && hit.fit && hit.fit.audio_url ? hit.fit.audio_url : null;
}

let saved = "";

/** Remember the project; true if it changed since the last time. */
function save() {
  const p = project();
  const now = JSON.stringify({
    bpm: p.bpm, key: p.key, fitFirst: fitFirst.checked, onlyFitting: onlyFitting.checked,
    matched: matched.checked,
  });
  const differs = now !== saved;
  saved = now;
  localStorage.setItem(STORAGE, now);
  // The address carries the project (and nothing else changes in it): a link reproduces it.
  const url = new URL(location.href);
  if (p.bpm != null) url.searchParams.set("bpm", String(p.bpm)); else url.searchParams.delete("bpm");
  if (p.key != null) url.searchParams.set("key", p.key); else url.searchParams.delete("key");
  if (url.href !== location.href) history.replaceState(history.state, "", url);
  fitControls.hidden = !isSet();
  document.body.classList.toggle("has-project", isSet());
  return differs;
}

function load() {
  fillKeys();
  let stored = {};
  try { stored = JSON.parse(localStorage.getItem(STORAGE) || "{}") || {}; } catch { stored = {}; }
  const params = new URLSearchParams(location.search);
  // An address with a project wins over the one this browser remembers (someone sent a link).
  const fromUrl = params.has("bpm") || params.has("key");
  const bpm = fromUrl ? validBpm(params.get("bpm")) : validBpm(stored.bpm);
  const key = canonicalKey(fromUrl ? params.get("key") : stored.key);
  bpmInput.value = bpm != null ? String(bpm) : "";
  keySelect.value = NOTES.includes(key.replace(/m$/, "")) ? key : "";
  fitFirst.checked = Boolean(stored.fitFirst);
  onlyFitting.checked = Boolean(stored.onlyFitting);
  matched.checked = stored.matched !== false;
  save();
}

load();

let typing = 0;
bpmInput.addEventListener("input", () => {
  // Typing "124" passes through "1" and "12": wait for a pause before searching again.
  clearTimeout(typing);
  typing = setTimeout(() => { if (save()) changed(); }, 450);
});
bpmInput.addEventListener("change", () => {
  clearTimeout(typing);
  if (bpmInput.value !== "" && validBpm(bpmInput.value) == null) bpmInput.value = "";
  if (save()) changed();
  settled();
});
keySelect.addEventListener("change", () => { if (save()) changed(); settled(); });
fitFirst.addEventListener("change", () => { if (save()) changed(); });
onlyFitting.addEventListener("change", () => { if (save()) changed(); });
matched.addEventListener("change", () => { save(); matchChanged(); });
document.getElementById("clear-project").addEventListener("click", () => {
  bpmInput.value = "";
  keySelect.value = "";
  if (save()) changed();
  settled();
});

// -- how a hit fits, in a few characters and in words ----------------------------------------

// Harmonic-mixing shorthand for the fitting relations; the others show the transposition.
const RELATION_SHORT = { same: "same", relative: "rel.", dominant: "V", subdominant: "IV", parallel: "par.", other: "key" };

function pct(value) {
  const rounded = Math.abs(value) < 10 ? value.toFixed(1) : value.toFixed(0);
  return `${value > 0 ? "+" : value < 0 ? "−" : "±"}${rounded.replace("-", "")} %`;
}

function semis(n) {
  return `${n > 0 ? "+" : "−"}${Math.abs(n)} st`;
}

/**
 * The badges of a hit's fit: ``[{text, title, kind}]`` (tempo first, then key) and the whole
 * sentence. ``kind`` is "tempo" or "key"; an empty list when the hit has no fit.
 */
export function badges(hit, projectKey = project().key) {
  const fit = hit && hit.fit;
  if (!fit) return { items: [], words: "" };
  const items = [];
  const words = [];
  if (fit.stretch_pct != null) {
    const multiple = fit.tempo_multiple && fit.tempo_multiple !== 1
      ? (fit.tempo_multiple === 2 ? "×2" : "×½") : "";
    const stretch = Math.abs(fit.stretch_pct) < 0.05 ? "" : pct(fit.stretch_pct);
    const heard = fit.tempo_multiple === 2 ? "at double time" : fit.tempo_multiple === 0.5 ? "at half time" : "";
    const speed = stretch
      ? `needs ${Math.abs(fit.stretch_pct).toFixed(1)} % ${fit.stretch_pct > 0 ? "faster" : "slower"}`
      : "already at the project's tempo";
    const sentence = [heard && `played ${heard}`, speed].filter(Boolean).join(", ");
    items.push({ text: [multiple, stretch].filter(Boolean).join(" ") || "= BPM", title: sentence, kind: "tempo" });
    words.push(sentence);
  }
  if (fit.key_relation) {
    const name = projectKey || "the project's key";
    const relation = {
      same: `same key as ${name}`,
      relative: `relative key of ${name}`,
      dominant: `dominant of ${name} (a fifth up)`,
      subdominant: `subdominant of ${name} (a fifth down)`,
      parallel: `parallel key of ${name} (same tonic, other mode)`,
      other: `a key that clashes with ${name}`,
    }[fit.key_relation] || fit.key_relation;
    const shift = fit.semitones ? `; transpose ${semis(fit.semitones).replace(" st", " semitones")} to match` : "";
    const clash = fit.key_relation === "parallel" || fit.key_relation === "other";
    const text = clash && fit.semitones ? semis(fit.semitones) : RELATION_SHORT[fit.key_relation];
    items.push({ text, title: relation + shift, kind: "key" });
    words.push(relation + shift);
  }
  const verdict = fit.fits ? "Fits the project" : "Does not fit the project";
  return { items, words: `${verdict}${words.length ? `: ${words.join("; ")}` : ""}` };
}
