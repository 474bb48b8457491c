// The kit panel: 8 or 16 pads filled by the service (/v1/kits) from the default slots, each
// with its slot, sample and fit. A pad auditions on click, swaps for the next closest sample,
// locks, clears, and takes a result row dropped on it. "Play bar" loops the kit as a one-bar
// pattern at the project's tempo (pattern.js); the export links fetch sampler zips.
"use strict";

import { get, post, del, api, enc } from "./api.js";
import * as context from "./context.js";
import { icon, label } from "./format.js";
import { originalSourceOf } from "./player.js";
import * as pattern from "./pattern.js";
import { fitCell } from "./results.js";

const $ = (id) => document.getElementById(id);
const panel = $("kit");
const pads = $("pads");
const status = $("kit-status");
const STORAGE = "timbre.kit";
const DRAG_TYPE = "application/x-timbre-id";

let kit = null; // the kit as GET /v1/kits/{name} returns it
let hooks = { play: () => {}, message: () => {} };
export function onKit(handlers) { hooks = { ...hooks, ...handlers }; }
export function current() { return kit; }

function say(text) { status.textContent = text || ""; }

async function call(what, fn) {
  try {
    const out = await fn();
    return out;
  } catch (error) {
    hooks.message(`Could not ${what}: ${error.message}`);
    return undefined;
  }
}

// -- the list of kits and building one ---------------------------------------------------------

async function refreshNames() {
  const data = await get("/v1/kits");
  const kits = Array.isArray(data) ? data : data.kits || [];
  $("kit-names").replaceChildren(...kits.map((k) => new Option(k.name || k, k.name || k)));
  return kits;
}

/** The header's project as a kit's ``context`` (null without one). */
function projectContext() {
  const project = context.project();
  if (project.bpm == null && project.key == null) return null;
  const out = {};
  if (project.bpm != null) out.bpm = project.bpm;
  if (project.key != null) out.key = project.key;
  return out;
}

/** Build a kit of ``size`` pads named ``name`` from the default slots, for the project. */
export async function build(name, size) {
  const body = { name, pads: size, fill: true };
  const project = projectContext();
  if (project) body.context = project;
  say(`Building ${name}…`);
  const made = await call(`build ${name}`, () => post("/v1/kits", body));
  if (made === undefined) { say(""); return; }
  await show(made && made.pads ? made : await get(`/v1/kits/${enc(name)}`));
  refreshNames().catch(() => {});
}

/** Open the kit named ``name`` (quietly forgets it if it is gone). */
export async function open(name) {
  try {
    await show(await get(`/v1/kits/${enc(name)}`));
  } catch {
    localStorage.removeItem(STORAGE);
  }
}

async function reload() {
  if (!kit) return;
  await show(await get(`/v1/kits/${enc(kit.name)}`));
}

async function change(what, fn) {
  const out = await call(what, fn);
  if (out === undefined) return;
  if (out && out.pads && out.name === kit.name) await show(out);
  else await call(what, reload);
}

// -- the pads -------------------------------------------------------------------------------

function tool(text, name, onClick, { disabled = false, pressed = null } = {}) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = "ghost pad-tool";
  b.append(text);
  b.setAttribute("aria-label", name);
  b.title = name;
  b.disabled = disabled;
  if (pressed != null) b.setAttribute("aria-pressed", String(pressed));
  b.addEventListener("click", onClick);
  return b;
}

/**
 * The pad's sample with its fit to the kit's project and the URL of its matched rendition
 * (the kit carries the fit on the pad; the rendition follows the contract of
 * GET /v1/items/{id}/audio?bpm=&semitones=).
 */
function withFit(pad) {
  if (!pad.hit) return null;
  const fit = pad.fit || pad.hit.fit;
  if (!fit) return pad.hit;
  let url = fit.audio_url || null;
  const ctx = kit.context || {};
  const stretch = fit.stretch_pct != null && Math.abs(fit.stretch_pct) >= 0.05 && ctx.bpm;
  if (!url && (stretch || fit.semitones)) {
    const params = new URLSearchParams();
    if (stretch) params.set("bpm", String(ctx.bpm));
    params.set("semitones", String(fit.semitones || 0));
    url = `${pad.hit.audio_url}?${params}`;
  }
  return { ...pad.hit, fit: { ...fit, audio_url: url } };
}

function padItem(pad) {
  const li = document.createElement("li");
  li.className = "pad";
  li.dataset.index = pad.index;
  li.dataset.slot = pad.slot || "";
  const hit = pad.hit;
  const name = hit ? label(hit) : pad.missing ? "no longer indexed" : "empty";
  li.classList.toggle("vacant", !hit);
  li.classList.toggle("locked", Boolean(pad.locked));
  if (hit) li.dataset.id = hit.id;
  const number = pad.index; // pads count from 1, as on a sampler
  const fitted = withFit(pad);

  const face = document.createElement("button");
  face.type = "button";
  face.className = "pad-face";
  face.disabled = !hit;
  face.setAttribute("aria-label", `Pad ${number}, ${pad.slot || "no slot"}: ${hit ? `play ${name}` : name}`);
  face.title = hit ? `${hit.path || name}\nClick to audition; drop a result here to replace it` : "Drop a result here";
  const slot = document.createElement("span");
  slot.className = "pad-slot";
  slot.textContent = `${number} · ${pad.slot || "—"}`;
  const sample = document.createElement("span");
  sample.className = "pad-name";
  sample.textContent = name;
  face.append(slot, sample);
  if (fitted && fitted.fit) face.append(fitCell(fitted, "pad-fit", (kit.context && kit.context.key) || undefined));
  if (pad.note) face.title += `\n${pad.note}`;
  face.addEventListener("click", () => { if (fitted) hooks.play(fitted); });

  const tools = document.createElement("span");
  tools.className = "pad-tools";
  const path = `/v1/kits/${enc(kit.name)}/pads/${pad.index}`;
  tools.append(
    tool("⟳", `Swap pad ${number} for the next closest ${pad.slot || "sample"}`,
      () => change(`swap pad ${number}`, () => post(`${path}/swap`, {})), { disabled: pad.locked }),
    tool(icon(pad.locked ? "lock" : "unlock"), `${pad.locked ? "Unlock" : "Lock"} pad ${number}`,
      () => change(`lock pad ${number}`, () => post(`${path}/lock`, { locked: !pad.locked })),
      { pressed: Boolean(pad.locked) }),
    tool("×", `Clear pad ${number}`, () => change(`clear pad ${number}`, () => del(path)),
      { disabled: pad.locked || !(hit || pad.id) }),
  );
  li.append(face, tools);

  li.addEventListener("dragover", (event) => {
    if (pad.locked || !event.dataTransfer.types.includes(DRAG_TYPE)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
    li.classList.add("drop");
  });
  li.addEventListener("dragleave", () => li.classList.remove("drop"));
  li.addEventListener("drop", (event) => {
    li.classList.remove("drop");
    const id = event.dataTransfer.getData(DRAG_TYPE);
    if (!id || pad.locked) return;
    event.preventDefault();
    event.stopPropagation(); // the page's own drop handler takes files only, but be sure
    change(`put it on pad ${number}`, () => api("PUT", path, { id }));
  });
  return li;
}

async function show(view) {
  stopPattern();
  kit = view;
  localStorage.setItem(STORAGE, kit.name);
  $("kit-name").value = kit.name;
  $("kit-tools").hidden = false;
  pads.dataset.count = kit.pads.length;
  pads.replaceChildren(...kit.pads.map(padItem));
  links();
  summary();
}

/** Say what the kit holds (and for which project). */
function summary() {
  if (!kit) { say(""); return; }
  const filled = kit.pads.filter((p) => p.hit).length;
  const ctx = kit.context || {};
  const project = [ctx.bpm && `${ctx.bpm} BPM`, ctx.key].filter(Boolean).join(", ");
  say(`${kit.name}: ${filled} of ${kit.pads.length} pads filled${project ? ` for ${project}` : ""}.`);
}

/**
 * The open kit follows the header's project: a new tempo or key moves the kit to it
 * (PUT /v1/kits/{name}/context; its pads stay, their fits change), keeping the kit's own
 * tolerance and "only fitting"; no project takes the kit's off.
 */
let following = Promise.resolve();
// The header's tempo and key as last seen: only a change of them moves the kit (ticking
// "Only fitting" with no project set must not take the kit's own project off).
const projectKey = () => JSON.stringify(projectContext());
let seenProject = projectKey();

export function followProject() {
  // One move at a time, each reading the project when it runs: the last one set wins.
  following = following.then(moveToProject, moveToProject);
  return following;
}

async function moveToProject() {
  const now = projectKey();
  const moved = now !== seenProject;
  seenProject = now;
  if (!kit) return;
  if (!moved) { links(); return; }
  const project = projectContext();
  const ctx = kit.context || {};
  const same = (project ? project.bpm ?? null : null) === (ctx.bpm ?? null)
    && (project ? project.key ?? null : null) === (ctx.key ?? null);
  if (same) { links(); return; }
  const path = `/v1/kits/${enc(kit.name)}/context`;
  if (!project) {
    await change(`take the project off ${kit.name}`, () => del(path));
    return;
  }
  if (kit.context) {
    project.tolerance_pct = ctx.tolerance_pct;
    project.only_fitting = Boolean(ctx.only_fitting);
  }
  await change(`move ${kit.name} to the project`, () => api("PUT", path, project));
}

/** Point the export links at the kit, matched to the project or not as the toggle says. */
export function links() {
  if (!kit) return;
  const matched = context.isMatched();
  for (const a of document.querySelectorAll(".kit-export a")) {
    a.href = `/v1/kits/${enc(kit.name)}/export?format=${a.dataset.format}&matched=${matched}`;
    const what = { sfz: "an SFZ instrument", decentsampler: "a DecentSampler preset", hardware: "a hardware sampler's folder" }[a.dataset.format];
    a.title = `Download ${kit.name} as ${what}, zipped (${matched ? "samples matched to the project" : "original samples"})`;
  }
}

// -- one bar at the project's tempo ------------------------------------------------------------

let playing = null; // the pattern playing (pattern.start's handle), or "loading"

function sourceUrl(hit) {
  return context.matchedUrl(hit) || originalSourceOf(hit);
}

function stopPattern() {
  if (!playing) return;
  if (playing !== "loading") playing.stop();
  playing = null;
  const b = $("kit-play");
  b.textContent = "▶ Play bar";
  b.setAttribute("aria-pressed", "false");
  summary();
}

async function playPattern() {
  if (playing) { stopPattern(); return; }
  if (!kit) return;
  playing = "loading";
  const bpm = context.project().bpm || (kit.context && kit.context.bpm) || 120;
  const filled = kit.pads.filter((p) => p.hit).map((p) => ({ slot: p.slot, url: sourceUrl(withFit(p)) }));
  say(`Loading ${filled.length} pads…`);
  const b = $("kit-play");
  b.textContent = "■ Stop";
  b.setAttribute("aria-pressed", "true");
  const handle = await pattern.start(filled, bpm, (n) => { pads.dataset.scheduled = String(n); });
  if (playing !== "loading") { if (handle) handle.stop(); return; } // stopped while loading
  if (!handle) { stopPattern(); say("None of the pads could be decoded."); return; }
  playing = handle;
  const failed = handle.failed ? ` (${handle.failed} could not be decoded)` : "";
  say(`Playing a one-bar pattern at ${Number(bpm.toFixed(2))} BPM: ${handle.pads} pads, ${handle.hits} hits a bar${failed}.`);
}

// -- the panel --------------------------------------------------------------------------------

export function toggle(visible = panel.hidden) {
  panel.hidden = !visible;
  localStorage.setItem(`${STORAGE}.open`, visible ? "yes" : "no");
  $("toggle-kit").setAttribute("aria-expanded", String(visible));
  if (!visible) { stopPattern(); return; }
  refreshNames().catch(() => {});
  if (!kit && localStorage.getItem(STORAGE)) open(localStorage.getItem(STORAGE));
  else if (!kit) $("kit-name").focus();
}

$("toggle-kit").addEventListener("click", () => toggle());
$("kit-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const name = $("kit-name").value.trim();
  if (!name) return;
  // A name the service knows opens that kit; a new one builds it.
  const known = [...$("kit-names").options].some((o) => o.value === name);
  if (known) open(name);
  else build(name, Number($("kit-size").value));
});
$("kit-play").addEventListener("click", () => playPattern().catch((error) => {
  stopPattern();
  say(`Could not play the kit: ${error.message}`);
}));
$("kit-fill").addEventListener("click", () => {
  if (kit) change("fill the empty pads", () => post(`/v1/kits/${enc(kit.name)}/fill`, {}));
});
$("kit-delete").addEventListener("click", async () => {
  if (!kit || !confirm(`Delete the kit ${kit.name}? Its samples stay in the library.`)) return;
  const name = kit.name;
  if (await call(`delete ${name}`, () => del(`/v1/kits/${enc(name)}`)) === undefined) return;
  stopPattern();
  kit = null;
  localStorage.removeItem(STORAGE);
  pads.replaceChildren();
  $("kit-tools").hidden = true;
  $("kit-name").value = "";
  say(`Deleted ${name}.`);
  refreshNames().catch(() => {});
});

// The panel opens as it was left (with the kit it showed).
if (localStorage.getItem(`${STORAGE}.open`) === "yes") toggle(true);
