// The result rows: columns a producer scans, a waveform each, and buttons with accessible names.
// Rows use a roving tabindex: Tab reaches the selected row and its buttons, arrows move.
"use strict";

import * as fmt from "./format.js";
import { badges, matchedUrl } from "./context.js";
import { waveCanvas } from "./wave.js";

const list = document.getElementById("results");
let actions = {}; // name -> fn(hit, event), set by the page
let rows = []; // hits in display order

export function onAction(handlers) { actions = handlers; }
export function shown() { return rows; }

function cell(className, text, title) {
  const span = document.createElement("span");
  span.className = `col ${className}`;
  span.textContent = text;
  if (title) span.title = title;
  return span;
}

function soundCell(hit, heard) {
  const span = cell("sound", heard.text);
  const facts = [hit.instrument && `instrument: ${hit.instrument} (${
    hit.instrument_source === "audio" ? "from the sound" : "from the name"})`,
    hit.category && `model's category: ${hit.category}`, fmt.kind(hit.kind)];
  if (heard.guess) {
    span.classList.add("guess");
    facts.unshift("model's guess");
  }
  span.title = facts.filter(Boolean).join(" · ");
  return span;
}

function button(className, text, name, action) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = className;
  b.textContent = text;
  b.setAttribute("aria-label", name);
  b.title = name;
  b.dataset.action = action;
  b.tabIndex = -1;
  return b;
}

function iconButton(action, name) {
  const b = button(action, "", name, action);
  b.append(fmt.icon(action));
  return b;
}

function matchCell(hit, best, worst) {
  const span = document.createElement("span");
  span.className = "col match";
  if (hit.score == null) return span;
  // Cosines of text and audio sit in a narrow band: a bar relative to this result set reads
  // better than three decimals; the exact value is in the tooltip.
  const spread = best - worst;
  const share = spread > 1e-6 ? (hit.score - worst) / spread : 1;
  const bar = document.createElement("span");
  bar.className = "bar";
  bar.style.width = `${Math.round(15 + 85 * share)}%`;
  span.append(bar);
  span.title = `similarity ${hit.score.toFixed(3)}`;
  span.dataset.score = hit.score.toFixed(4);
  span.setAttribute("aria-label", `similarity ${hit.score.toFixed(2)}`);
  return span;
}

/** The fit badges of a hit (tempo, key), green when it fits; empty without a project. */
export function fitCell(hit, className = "col fit", projectKey = undefined) {
  const span = document.createElement("span");
  span.className = className;
  if (!hit.fit) return span;
  const { items, words } = badges(hit, projectKey);
  span.classList.add(hit.fit.fits ? "fits" : "misfit");
  span.dataset.fits = String(hit.fit.fits);
  span.title = words;
  // Screen readers get the sentence; the badges are its shorthand.
  const said = document.createElement("span");
  said.className = "visually-hidden";
  said.textContent = words;
  span.append(said);
  for (const item of items) {
    const b = document.createElement("span");
    b.setAttribute("aria-hidden", "true");
    b.className = `badge ${item.kind}`;
    b.textContent = item.text;
    b.title = item.title;
    span.append(b);
  }
  if (!items.length) {
    // Nothing to relate (a one-shot without key, say): it fits, and says so plainly.
    const b = document.createElement("span");
    b.setAttribute("aria-hidden", "true");
    b.className = "badge";
    b.textContent = hit.fit.fits ? "fits" : "—";
    span.append(b);
  }
  return span;
}

function row(hit, index, context) {
  const li = document.createElement("li");
  li.className = "hit";
  li.tabIndex = -1;
  li.dataset.id = hit.id;
  li.dataset.index = index;
  const name = fmt.label(hit);
  li.setAttribute("aria-label", name);

  if (hit.missing) {
    li.classList.add("missing");
    const gone = cell("name-cell", "", hit.path_hint || "");
    gone.innerHTML = "";
    const n = document.createElement("span");
    n.className = "name";
    n.textContent = name;
    const sub = document.createElement("span");
    sub.className = "sub";
    sub.textContent = "no longer indexed";
    gone.append(n, sub);
    li.append(document.createElement("span"), document.createElement("span"), gone);
    if (context.collection) {
      const act = document.createElement("span");
      act.className = "actions";
      act.append(button("remove", "−", `Remove ${name} from ${context.collection}`, "remove"));
      li.append(act);
    }
    return li;
  }

  li.draggable = true;
  const play = button("play", "▶", `Play ${name}`, "play");
  const wave = waveCanvas(hit, "wave");
  wave.dataset.action = "seek";
  wave.title = "Click to play from here";

  const nameCell = document.createElement("span");
  nameCell.className = "col name-cell";
  const n = document.createElement("span");
  n.className = "name";
  n.textContent = name;
  n.title = hit.path || "";
  const sub = document.createElement("span");
  sub.className = "sub";
  // On a phone the columns fold into this line.
  const heard = fmt.sound(hit);
  const folded = [heard.text, fmt.bpm(hit.bpm) && `${fmt.bpm(hit.bpm)} BPM`, hit.key,
    fmt.seconds(hit.duration_s)].filter(Boolean).join(" · ");
  sub.innerHTML = "";
  const folder = document.createElement("span");
  folder.className = "folder";
  folder.textContent = fmt.folderOf(hit);
  const phone = document.createElement("span");
  phone.className = "folded";
  phone.textContent = folded;
  sub.append(folder, phone);
  nameCell.append(n, sub);

  const acts = document.createElement("span");
  acts.className = "actions";
  const fav = button("fav", "☆", `Favourite ${name}`, "favourite");
  fav.setAttribute("aria-pressed", "false");
  acts.append(fav, button("add", "+", `Add ${name} to a collection`, "add"),
    button("more", "≈", `More like this: ${name}`, "more"),
    iconButton("up", `👍 More like ${name} (refine the results)`),
    iconButton("down", `👎 Less like ${name} (refine the results)`));
  if (context.collection) {
    acts.append(button("remove", "−", `Remove ${name} from ${context.collection}`, "remove"));
  }

  li.append(
    play, wave, nameCell,
    cell("pack", hit.pack || "", hit.pack),
    soundCell(hit, heard),
    cell("bpm", fmt.bpm(hit.bpm)),
    cell("key", hit.key || ""),
    fitCell(hit),
    cell("dur", fmt.seconds(hit.duration_s)),
    cell("fmt", (hit.format || "").toUpperCase()),
    matchCell(hit, context.best, context.worst),
    acts,
  );
  return li;
}

/** Show ``hits`` (already sorted); ``context.collection`` adds remove buttons. */
export function render(hits, context = {}) {
  rows = hits;
  const scores = hits.map((h) => h.score).filter((s) => s != null);
  const ctx = { ...context, best: Math.max(...scores), worst: Math.min(...scores) };
  list.replaceChildren(...hits.map((hit, i) => row(hit, i, ctx)));
}

export function rowOf(id) {
  return list.querySelector(`.hit[data-id="${CSS.escape(id)}"]`);
}

export function hitOf(element) {
  const li = element && element.closest && element.closest(".hit");
  return li ? rows[Number(li.dataset.index)] : null;
}

let selectedIndex = -1;
export function selected() { return selectedIndex >= 0 ? rows[selectedIndex] : null; }

/** Make row ``index`` the selected one (the one Tab reaches) and focus it. */
export function select(index, { focus = true } = {}) {
  const items = list.querySelectorAll(".hit");
  if (!items.length) { selectedIndex = -1; return null; }
  const next = Math.max(0, Math.min(items.length - 1, index));
  for (const el of list.querySelectorAll('[tabindex="0"]')) el.tabIndex = -1;
  const li = items[next];
  li.tabIndex = 0;
  for (const b of li.querySelectorAll("button")) b.tabIndex = 0;
  for (const el of list.querySelectorAll(".hit.selected")) el.classList.remove("selected");
  li.classList.add("selected");
  selectedIndex = next;
  if (focus) li.focus();
  return rows[next];
}

export function selectedIndexNow() { return selectedIndex; }

export function setPlaying(id, isPlaying) {
  for (const b of list.querySelectorAll(".play")) {
    const on = isPlaying && b.closest(".hit").dataset.id === id;
    b.textContent = on ? "■" : "▶";
    const name = b.closest(".hit").getAttribute("aria-label");
    b.setAttribute("aria-label", `${on ? "Stop" : "Play"} ${name}`);
    b.title = b.getAttribute("aria-label");
  }
}

export function setFavourite(id, on) {
  const li = rowOf(id);
  const b = li && li.querySelector(".fav");
  if (!b) return;
  b.setAttribute("aria-pressed", String(on));
  b.textContent = on ? "★" : "☆";
}

list.addEventListener("click", (event) => {
  const target = event.target.closest("[data-action]");
  const hit = hitOf(event.target);
  if (!hit) return;
  const li = event.target.closest(".hit");
  select(Number(li.dataset.index), { focus: !target || target.tagName !== "BUTTON" });
  if (target && actions[target.dataset.action]) actions[target.dataset.action](hit, event);
});

list.addEventListener("dblclick", (event) => {
  const hit = hitOf(event.target);
  if (hit && !event.target.closest("[data-action]") && actions.details) actions.details(hit, event);
});

list.addEventListener("dragstart", (event) => {
  const hit = hitOf(event.target);
  if (!hit || hit.missing) return;
  // Chrome lets a DownloadURL drag drop the file on the desktop or into a DAW: the rendition
  // matched to the project when that is on, else the original.
  const matched = matchedUrl(hit);
  const url = new URL(matched || hit.audio_url, location.href).href;
  const name = matched ? fmt.matchedName(hit) : fmt.label(hit);
  event.dataTransfer.setData("DownloadURL", `audio/${matched ? "wav" : hit.format || "wav"}:${name}:${url}`);
  event.dataTransfer.setData("text/uri-list", url);
  // A kit pad takes the sample itself (the page's own type, ignored by other programs).
  event.dataTransfer.setData("application/x-timbre-id", hit.id);
  event.dataTransfer.effectAllowed = "copy";
});
