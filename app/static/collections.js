// Favourites and collections, kept by the server (the MCP server and the page see the same ones).
"use strict";

import { get, post, del, enc } from "./api.js";
import { label, samples } from "./format.js";
import * as results from "./results.js";

export const FAVOURITES = "favourites";
const memberships = new Map(); // item id -> Set of collection names
let known = []; // [{name, count, ...}]
let onOpen = () => {};
let onError = () => {};

const list = document.getElementById("collections");
const dialog = document.getElementById("add-dialog");

export function onOpenCollection(fn) { onOpen = fn; }
export function onCollectionError(fn) { onError = fn; }
export function all() { return known; }

export function isFavourite(id) {
  const names = memberships.get(id);
  return Boolean(names && names.has(FAVOURITES));
}

/** Learn which of these hits are in which collections, and mark the stars. */
export async function mark(hits) {
  const ids = hits.filter((h) => !h.missing).map((h) => h.id);
  for (let i = 0; i < ids.length; i += 200) {
    const query = ids.slice(i, i + 200).map((id) => `id=${enc(id)}`).join("&");
    const data = await get(`/v1/memberships?${query}`);
    for (const id of ids.slice(i, i + 200)) {
      memberships.set(id, new Set(data.memberships[id] || []));
      results.setFavourite(id, isFavourite(id));
    }
  }
}

function remember(view, id, present) {
  const names = memberships.get(id) || new Set();
  if (present) names.add(view.name); else names.delete(view.name);
  memberships.set(id, names);
  results.setFavourite(id, isFavourite(id));
}

/** Reload the sidebar's list of collections. */
export async function refresh(active = null) {
  const data = await get("/v1/collections");
  known = data.collections;
  list.replaceChildren(...known.map((c) => {
    const li = document.createElement("li");
    const b = document.createElement("button");
    b.type = "button";
    b.className = "nav-item";
    b.dataset.collection = c.name;
    const text = c.name === FAVOURITES ? "★ Favourites" : c.name;
    b.innerHTML = "";
    const name = document.createElement("span");
    name.textContent = text;
    const count = document.createElement("span");
    count.className = "count";
    count.textContent = c.count;
    b.append(name, count);
    b.setAttribute("aria-label", `${text}, ${samples(c.count)}`);
    if (active === c.name) b.setAttribute("aria-current", "true");
    b.addEventListener("click", () => onOpen(c.name));
    li.append(b);
    return li;
  }));
}

export async function toggleFavourite(hit) {
  try {
    const on = !isFavourite(hit.id);
    const view = on
      ? await post(`/v1/collections/${FAVOURITES}/items`, { ids: [hit.id] })
      : await del(`/v1/collections/${FAVOURITES}/items/${enc(hit.id)}`);
    remember(view, hit.id, on);
    await refresh(currentName);
    return on;
  } catch (error) {
    onError(`Could not change the favourites: ${error.message}`);
    return null;
  }
}

export async function addTo(name, hits) {
  const view = await post(`/v1/collections/${enc(name)}/items`, { ids: hits.map((h) => h.id) });
  for (const hit of hits) remember(view, hit.id, true);
  await refresh(currentName);
  return view;
}

export async function removeFrom(name, hit) {
  const view = await del(`/v1/collections/${enc(name)}/items/${enc(hit.id)}`);
  remember(view, hit.id, false);
  await refresh(currentName);
  return view;
}

export async function create(name) {
  const info = await post("/v1/collections", { name });
  await refresh(currentName);
  return info;
}

export async function remove(name) {
  await del(`/v1/collections/${enc(name)}`);
  for (const names of memberships.values()) names.delete(name);
  await refresh(null);
}

export const open = (name) => get(`/v1/collections/${enc(name)}`);
/** The zip of a collection; with a project ``{bpm, key}``, its samples matched to it. */
export function exportUrl(name, project = null) {
  const params = new URLSearchParams();
  if (project && project.bpm != null) params.set("bpm", String(project.bpm));
  if (project && project.key != null) params.set("key", project.key);
  const query = params.toString();
  return `/v1/collections/${enc(name)}/export.zip${query ? `?${query}` : ""}`;
}

let currentName = null;
export function setCurrent(name) { currentName = name; }

/** The "Add to collection" dialog for one hit: pick a collection or name a new one. */
export function chooseFor(hit) {
  const choices = dialog.querySelector(".choices");
  dialog.querySelector("h2").textContent = `Add ${label(hit)} to…`;
  const member = memberships.get(hit.id) || new Set();
  choices.replaceChildren(...known.filter((c) => c.name !== FAVOURITES).map((c) => {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = member.has(c.name) ? `${c.name} ✓` : c.name;
    b.disabled = member.has(c.name);
    b.addEventListener("click", () => finish(c.name));
    return b;
  }));
  if (!choices.children.length) {
    const p = document.createElement("p");
    p.className = "hint";
    p.textContent = "No collections yet: name one below.";
    choices.append(p);
  }
  const input = dialog.querySelector("input");
  input.value = "";
  const form = dialog.querySelector("form");
  form.onsubmit = (event) => {
    event.preventDefault();
    const name = input.value.trim();
    if (name) finish(name);
  };
  async function finish(name) {
    dialog.close();
    try {
      await addTo(name, [hit]);
      onError(null, `Added ${label(hit)} to ${name}.`);
    } catch (error) {
      onError(`Could not add to ${name}: ${error.message}`);
    }
  }
  dialog.showModal();
  (choices.querySelector("button:not([disabled])") || input).focus();
}
