// What the header says about the library (which model family answers, how many samples it
// holds, a loud notice when its models have random weights) and the API key it asks for.
"use strict";

import { apiKey, onKeyNeeded } from "./api.js";
import { number } from "./format.js";

const $ = (id) => document.getElementById(id);

/** The library's sample count, from /v1/stats (the snapshot's, else the store's). */
export function count(stats) {
  const total = stats.snapshot ? stats.snapshot.count : stats.store && stats.store.count;
  if (total != null) $("library-count").textContent = number(total);
}

// Which model family answers: searches of two data dirs (or of one before and after a switch)
// differ by it, and a producer comparing them must be able to tell.
function family(stats) {
  const badge = $("family");
  const models = stats.models || {};
  const parts = Object.entries(models)
    .filter(([part, ref]) => typeof ref === "string" && ref && !["family", "pipeline_version"].includes(part))
    .map(([part, ref]) => `${part}: ${ref}`);
  $("family-name").textContent = stats.family_title || stats.family;
  badge.title = [
    `Model family: ${stats.family}`,
    ...parts,
    `${models.dim}-d vectors, pipeline ${stats.pipeline_version}`,
  ].join("\n");
  badge.hidden = false;
}

/** Everything the header shows, from /v1/stats. */
export function show(stats) {
  family(stats);
  if (stats.random_weights) {
    const notice = $("notice");
    notice.textContent = "This index was built with RANDOM-WEIGHT test models: results are meaningless.";
    notice.hidden = false;
  }
  count(stats);
}

// -- the API key: asked for when a write needs one, or from the header's key button ---------

const keyDialog = $("key-dialog");

function askKey() {
  $("key-input").value = apiKey.get();
  keyDialog.returnValue = "";
  keyDialog.showModal();
  return new Promise((resolve) => {
    keyDialog.addEventListener("close", () => {
      if (keyDialog.returnValue === "save") apiKey.set($("key-input").value.trim());
      if (keyDialog.returnValue === "forget") apiKey.set("");
      resolve(keyDialog.returnValue === "save" ? apiKey.get() : "");
    }, { once: true });
  });
}
onKeyNeeded(askKey);
$("key-button").addEventListener("click", askKey);
