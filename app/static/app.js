// Timbre's page: plain JavaScript modules, no build step, talking to the JSON API of the same
// origin. This module holds the page's state (what is listed, how it is sorted) and the keys.
"use strict";

import { get } from "./api.js";
import * as collections from "./collections.js";
import * as context from "./context.js";
import * as details from "./details.js";
import * as filters from "./filters.js";
import * as folders from "./folders.js";
import * as fmt from "./format.js";
import * as header from "./header.js";
import * as keys from "./keys.js";
import * as kit from "./kit.js";
import * as player from "./player.js";
import * as requests from "./requests.js";
import * as results from "./results.js";
import * as steer from "./steer.js";
import * as watch from "./watch.js";

const $ = (selector) => document.querySelector(selector);
// Results per request: a screenful and then some (``?per_page=N`` in the address changes it).
const PAGE = Math.max(5, Math.min(200, Number(new URLSearchParams(location.search).get("per_page")) || 50));

const state = {
  view: "home", // home | search | browse | collection
  collection: null,
  hits: [], // in the order the service ranked them
  total: null,
  fetchPage: null, // (offset) -> Promise<SearchOut>, for "Load more"
  sort: "relevance",
  desc: false,
  reference: null, // {id, label} or {file, label}
  error: null, // why the last listing failed, shown where the results would be
  seq: 0,
};
const HOME_TEXT = $("#empty p").textContent;
// What the first sort option means in each view: the service's order.
const SERVICE_ORDER = { home: "relevance", search: "relevance", browse: "path order", collection: "order added" };

// -- messages ------------------------------------------------------------------------------

let messageTimer = 0;
function message(text, { error = true } = {}) {
  const el = $("#message");
  clearTimeout(messageTimer);
  el.hidden = !text;
  el.textContent = text || "";
  el.classList.toggle("error", error);
  if (text) messageTimer = setTimeout(() => { el.hidden = true; }, error ? 10000 : 4000);
}

// -- listing -------------------------------------------------------------------------------

function render() {
  const context = state.view === "collection" ? { collection: state.collection } : {};
  const keep = results.selected();
  results.render(fmt.sorted(state.hits, state.sort, state.desc), context);
  const index = keep ? results.shown().findIndex((h) => h.id === keep.id) : -1;
  results.select(index >= 0 ? index : 0, { focus: false });
  const playing = player.playing();
  results.setPlaying(playing && playing.id, Boolean(playing));
  for (const hit of state.hits) results.setFavourite(hit.id, collections.isFavourite(hit.id));
  $("#empty").hidden = state.hits.length > 0;
  $("#empty p").textContent = emptyText();
  $("#sort").options[0].textContent = SERVICE_ORDER[state.view];
  $("#columns").hidden = !state.hits.length;
  $("#sort-label").hidden = !state.hits.length;
  const more = $("#more");
  const left = state.total == null ? 0 : state.total - state.hits.length;
  more.hidden = !state.fetchPage || left <= 0;
  more.textContent = `Load ${Math.min(PAGE, left)} more`;
  for (const b of document.querySelectorAll("#columns [data-sort]")) {
    const on = b.dataset.sort === state.sort;
    b.setAttribute("aria-pressed", String(on));
    b.dataset.arrow = on && state.sort !== "relevance" ? (state.desc ? "↓" : "↑") : "";
  }
  $("#sort").value = state.sort;
}

function filterText(filter) {
  return Object.entries(filter || {})
    .map(([name, value]) => `${name.replace("_", " ")} ${typeof value === "object" && !Array.isArray(value) ? JSON.stringify(value) : [].concat(value).join(" or ")}`)
    .join(", ");
}

/** What to say where the results would be when there are none. */
function emptyText() {
  if (state.error) return state.error;
  const filter = filters.current();
  const narrowed = filter ? ` with ${filterText(filter)}` : "";
  const fitting = context.forRequest() && context.forRequest().only_fitting
    ? " that fits the project (untick “Only fitting” to see the rest)" : "";
  if (state.view === "search") {
    const words = $("#query").value.trim();
    const what = [words && `“${words}”`, state.reference && `sounds like ${state.reference.label}`,
      steer.active() && steer.describe()].filter(Boolean).join(" and ");
    if (fitting) return `Nothing ${what ? `matching ${what} ` : ""}${fitting.trim()}.`;
    return filter
      ? `Nothing matches ${what}${narrowed}. Clear a filter in the sidebar to widen the search.`
      : `Nothing matches ${what}. Is the library indexed? (“timbre ingest ~/Samples”)`;
  }
  if (state.view === "browse") return `No sample here${narrowed}${fitting}. Clear a filter, or pick another folder.`;
  if (state.view === "collection") return "This collection is empty: add samples to it with + on a row (or the A key).";
  return HOME_TEXT;
}

function describe(data) {
  const shown = state.hits.length;
  const of = state.total != null && state.total !== shown ? ` of ${fmt.number(state.total)}` : "";
  return `${fmt.number(shown)}${of} ${shown === 1 && !of ? "sample" : "samples"} · ${data.took_ms.toFixed(1)} ms (${data.engine})`;
}

async function list(view, fetchPage, { title = null } = {}) {
  const mine = ++state.seq;
  state.view = view;
  state.collection = null;
  state.fetchPage = fetchPage;
  state.error = null;
  // A new listing starts in the service's order (best match first, or path order when
  // browsing): a sort chosen for the last list must not hide the best match of this one.
  state.sort = "relevance";
  state.desc = false;
  $("#status").textContent = view === "browse" ? "Listing…" : "Searching…";
  $("#results").setAttribute("aria-busy", "true");
  showHead(title);
  try {
    const data = await fetchPage(0);
    if (mine !== state.seq) return;
    state.hits = data.hits;
    state.total = data.total;
    render();
    $("#status").textContent = describe(data);
    await collections.mark(data.hits);
  } catch (error) {
    if (mine !== state.seq) return;
    state.hits = [];
    state.total = null;
    state.error = `Could not ${view === "browse" ? "list the samples" : "search"}: ${error.message}`;
    render();
    $("#status").textContent = "";
    if (state.reference && state.reference.file) {
      // A reference that cannot be used must not poison the next searches.
      message(`Could not use ${state.reference.label}: ${error.message}`);
      setReference(null);
    }
  }
  if (mine === state.seq) $("#results").removeAttribute("aria-busy");
  filters.refresh().catch(() => {});
}

async function loadMore() {
  if (!state.fetchPage) return;
  const mine = state.seq;
  const button = $("#more");
  button.disabled = true;
  try {
    const data = await state.fetchPage(state.hits.length);
    if (mine !== state.seq) return;
    const seen = new Set(state.hits.map((h) => h.id));
    const fresh = data.hits.filter((h) => !seen.has(h.id));
    state.hits = state.hits.concat(fresh);
    if (data.total != null) state.total = data.total;
    if (!fresh.length) state.total = state.hits.length; // nothing further to fetch
    const first = state.hits.length - fresh.length;
    render();
    $("#status").textContent = describe(data);
    await collections.mark(fresh);
    if (fresh.length && state.sort === "relevance") results.select(first);
  } catch (error) {
    message(`Could not load more: ${error.message}`);
  } finally {
    button.disabled = false;
  }
}

function showHead(title, collectionName = null) {
  $("#view-head").hidden = !title;
  $("#view-title").textContent = title || "";
  $("#export").hidden = !collectionName;
  $("#delete-collection").hidden = !collectionName || collectionName === collections.FAVOURITES;
  collections.setCurrent(collectionName);
  exportLink();
  for (const b of document.querySelectorAll("#collections [data-collection]")) {
    b.toggleAttribute("aria-current", b.dataset.collection === collectionName);
  }
}

/** The open collection's zip: matched to the project while "Match to project" is on. */
function exportLink() {
  const name = state.collection;
  if (!name || $("#export").hidden) return;
  const matched = context.isMatched();
  $("#export").href = collections.exportUrl(name, matched ? context.project() : null);
  $("#export").textContent = matched ? "Export matched as zip" : "Export as zip";
  $("#export").title = matched
    ? "The samples at the project's tempo and key (loops stretched, tonal samples transposed)"
    : "The original files";
}

// -- searching -----------------------------------------------------------------------------

function searchPage(offset) {
  return requests.search({
    query: $("#query").value.trim(), reference: state.reference, alpha: Number($("#alpha").value),
    topK: PAGE, offset,
  });
}

function browsePage(offset) {
  return requests.browse({ topK: PAGE, offset });
}

/** The address carries the words (beside the project): a link reproduces the search. */
function syncAddress(query) {
  const url = new URL(location.href);
  if (query) url.searchParams.set("q", query); else url.searchParams.delete("q");
  if (url.href !== location.href) history.replaceState(history.state, "", url);
}

/** Search with what the form says; without words or a reference, list what the filters hold. */
function run() {
  const query = $("#query").value.trim();
  syncAlpha();
  syncAddress(query);
  if (query || state.reference || steer.active()) return list("search", searchPage);
  if (filters.current()) return list("browse", browsePage, { title: browseTitle() });
  state.seq++;
  state.view = "home";
  state.hits = [];
  state.total = null;
  state.error = null;
  state.fetchPage = null;
  $("#results").removeAttribute("aria-busy");
  showHead(null);
  render();
  $("#status").textContent = "";
  filters.refresh().catch(() => {});
  return Promise.resolve();
}

function browseTitle() {
  const folder = filters.folderNow();
  return folder ? folder.split("/").slice(-2).join(" / ") : "Filtered samples";
}

async function openCollection(name) {
  const mine = ++state.seq;
  closeSidebarOnPhone();
  try {
    const view = await collections.open(name);
    if (mine !== state.seq) return;
    state.view = "collection";
    state.collection = view.name;
    state.fetchPage = null;
    state.error = null;
    state.sort = "relevance";
    state.desc = false;
    state.hits = view.items;
    state.total = view.items.length;
    const title = view.name === collections.FAVOURITES ? "★ Favourites" : view.name;
    showHead(title, view.name);
    render();
    const missing = view.items.filter((i) => i.missing).length;
    $("#status").textContent = `${fmt.samples(view.count)}${missing ? ` (${missing} no longer indexed)` : ""}`;
    await collections.mark(view.items);
  } catch (error) {
    message(`Could not open ${name}: ${error.message}`);
  }
}

function setReference(ref) {
  state.reference = ref;
  $("#reference").hidden = !ref;
  $("#reference-name").textContent = ref ? ref.label : "";
  syncAlpha();
}

function syncAlpha() {
  const alpha = $("#alpha");
  const words = Boolean($("#query").value.trim());
  alpha.disabled = !words; // without words there is nothing to mix: no dead stop for Tab
  $("#alpha-value").textContent = words ? `${Math.round(alpha.value * 100)}% words` : "type words to mix";
}

function moreLike(hit, text = "", alpha = null) {
  details.close();
  steer.clear(); // a new reference starts a new direction
  $("#query").value = text;
  if (alpha != null) $("#alpha").value = alpha;
  setReference({ id: hit.id, label: fmt.label(hit) });
  return run();
}

function clearReference() {
  // Forget the reference and what it found: back to the words alone, or to an empty page.
  setReference(null);
  return run();
}

/**
 * 👍 / 👎 on a row: refine the results in place through /v1/search/recommend. A reference
 * sample becomes the first 👍; a file reference cannot be an example (it has no id).
 */
function steerWith(hit, positive) {
  if (!hit || hit.missing) return Promise.resolve();
  const query = $("#query").value.trim();
  const ref = state.reference;
  const hasPositive = steer.positives().some((id) => id !== hit.id) || positive || (ref && ref.id);
  if (!hasPositive && !query) {
    message("👎 steers away from a search: type some words or give a 👍 first.");
    return Promise.resolve();
  }
  if (ref && ref.id) steer.add(ref.id, ref.label, true);
  if (ref) {
    if (ref.file) message(`${ref.label} is a file, not a sample of the library: the refinement leaves it out.`, { error: false });
    setReference(null);
  }
  steer.add(hit.id, fmt.label(hit), positive);
  return run();
}

steer.onRemove(() => run());

// -- actions on rows -----------------------------------------------------------------------

function play(hit, fraction = 0) {
  if (!hit || hit.missing) return;
  player.play(hit, fraction);
}

results.onAction({
  play: (hit) => player.toggle(hit),
  seek: (hit, event) => {
    const rect = event.target.getBoundingClientRect();
    play(hit, (event.clientX - rect.left) / rect.width);
  },
  favourite: (hit) => collections.toggleFavourite(hit),
  add: (hit) => collections.chooseFor(hit),
  more: (hit) => moreLike(hit),
  up: (hit) => steerWith(hit, true),
  down: (hit) => steerWith(hit, false),
  details: (hit) => details.open(hit),
  remove: async (hit) => {
    try {
      await collections.removeFrom(state.collection, hit);
      await openCollection(state.collection);
    } catch (error) {
      message(`Could not remove it: ${error.message}`);
    }
  },
});

details.onDetails({
  play,
  moreLike,
  favourite: (hit) => collections.toggleFavourite(hit),
  isFavourite: (hit) => collections.isFavourite(hit.id),
  add: (hit) => collections.chooseFor(hit),
});

player.onChange((hit, isPlaying) => results.setPlaying(hit && hit.id, isPlaying));
player.onPlayError((error) => {
  if (error) message(`Cannot play: ${error.message}`);
  else if (!$("#message").classList.contains("error") || $("#message").textContent.startsWith("Cannot play")) message(null);
});
collections.onOpenCollection(openCollection);
// A new project tempo or key: the list asks again (its fit, order and "only fitting" change).
context.onChange(() => {
  if (state.view === "search" || state.view === "browse") list(state.view, state.fetchPage, { title: $("#view-title").textContent || null });
  exportLink();
});
context.onSettled(() => kit.followProject());
context.onMatchChange(() => { kit.links(); exportLink(); });
kit.onKit({ play: (hit) => play(hit), message });
collections.onCollectionError((error, info) => (error ? message(error) : message(info, { error: false })));
filters.onChange(() => { if (state.view !== "collection") run(); else filters.refresh().catch(() => {}); });
folders.onOpenFolder((path) => {
  filters.setFolder(path);
  closeSidebarOnPhone();
  run();
});

// -- the form, the toolbar and the sidebar --------------------------------------------------

$("#search").addEventListener("submit", (event) => {
  event.preventDefault();
  run();
});
$("#query").addEventListener("input", syncAlpha);
$("#alpha").addEventListener("input", syncAlpha);
$("#alpha").addEventListener("change", () => { if (state.reference && $("#query").value.trim()) run(); });
$("#clear-reference").addEventListener("click", clearReference);
$("#more").addEventListener("click", loadMore);
$("#sort").addEventListener("change", (event) => { state.sort = event.target.value; state.desc = false; render(); });
for (const b of document.querySelectorAll("#columns [data-sort]")) {
  b.addEventListener("click", () => {
    state.desc = state.sort === b.dataset.sort ? !state.desc : false;
    state.sort = b.dataset.sort;
    render();
  });
}
const autoplay = $("#autoplay");
autoplay.checked = localStorage.getItem("timbre.autoplay") !== "off";
autoplay.addEventListener("change", () => localStorage.setItem("timbre.autoplay", autoplay.checked ? "on" : "off"));

$("#all-samples").addEventListener("click", () => {
  filters.setFolder(null);
  closeSidebarOnPhone();
  list("browse", browsePage, { title: "All samples" });
});

$("#new-collection").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = $("#new-collection-name");
  const name = input.value.trim();
  if (!name) return;
  try {
    await collections.create(name);
    input.value = "";
    message(`Created ${name}.`, { error: false });
  } catch (error) {
    message(`Could not create ${name}: ${error.message}`);
  }
});

$("#delete-collection").addEventListener("click", async () => {
  const name = state.collection;
  if (!name || !confirm(`Delete the collection ${name}? Its samples stay in the library.`)) return;
  try {
    await collections.remove(name);
    await run();
  } catch (error) {
    message(`Could not delete ${name}: ${error.message}`);
  }
});

const sidebarToggle = $("#toggle-sidebar");
sidebarToggle.addEventListener("click", () => {
  const open = sidebarToggle.getAttribute("aria-expanded") !== "true";
  sidebarToggle.setAttribute("aria-expanded", String(open));
  document.body.classList.toggle("sidebar-open", open);
  if (open) $("#sidebar button, #sidebar input").focus();
});
function closeSidebarOnPhone() {
  sidebarToggle.setAttribute("aria-expanded", "false");
  document.body.classList.remove("sidebar-open");
}

function useFile(file) {
  if (!file) return;
  steer.clear();
  $("#query").value = "";
  setReference({ file, label: file.name });
  run();
}
$("#upload").addEventListener("change", (event) => { useFile(event.target.files[0]); event.target.value = ""; });
document.addEventListener("dragover", (event) => { if (event.dataTransfer.types.includes("Files")) event.preventDefault(); });
document.addEventListener("drop", (event) => {
  const file = event.dataTransfer.files && event.dataTransfer.files[0];
  if (file) { event.preventDefault(); useFile(file); }
});

// -- keys ----------------------------------------------------------------------------------

keys.start({
  hasHits: () => state.hits.length > 0,
  hasReference: () => Boolean(state.reference),
  autoplay: () => autoplay.checked,
  play,
  clearReference,
  moreLike: (hit) => moreLike(hit),
  favourite: (hit) => collections.toggleFavourite(hit),
  addTo: (hit) => collections.chooseFor(hit),
  steer: steerWith,
});

// -- start ---------------------------------------------------------------------------------

get("/v1/stats").then(header.show).catch(() => {});
collections.refresh().catch((error) => message(`Could not read the collections: ${error.message}`));
folders.refresh().catch(() => {});
$("#query").value = new URLSearchParams(location.search).get("q") || "";
run();

// The watcher changed the library under the page: recount the total, the folders and the
// facets. The results stay as they are (a producer may be auditioning them).
watch.start($("#watch-status"), (stats) => {
  header.count(stats);
  folders.refresh(filters.folderNow()).catch(() => {});
  filters.refresh().catch(() => {});
});
