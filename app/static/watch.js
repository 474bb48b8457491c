// Watched folders: one status line under the search box, refreshed while the page is open.
"use strict";

import { apiKey } from "./api.js";

// While files are pending or a job runs, the line follows closely; idle, a slow look is enough
// to notice an unplugged drive.
const BUSY_REFRESH_MS = 2000;
const IDLE_REFRESH_MS = 10000;

function busy(watch) {
  return Boolean(watch && (watch.pending || watch.running_job || watch.reconcile_pending?.length));
}

const clock = (iso) => (iso ? new Date(iso).toLocaleTimeString() : "");

// What a job changed, in a producer's words; zeros are left out.
function what(summary) {
  const parts = [
    [summary.embedded, "new"],
    [summary.paths_added, "moved or copied"],
    [summary.pruned_paths, "paths gone"],
    [summary.deleted_points, "removed"],
    [summary.rederived, "re-described from their new names"],
  ].filter(([n]) => n > 0).map(([n, word]) => `${n} ${word}`);
  return parts.join(", ") || "nothing changed";
}

function show(line, watch) {
  if (!watch) { line.hidden = true; return; }
  if (watch.refused) {  // e.g. the data dir was indexed by another model family
    line.textContent = `Not watching: ${watch.refused}`;
    line.classList.add("problem");
    line.hidden = false;
    return;
  }
  const down = watch.roots.filter((r) => !r.available);
  const parts = [`Watching ${watch.roots.length} folder${watch.roots.length === 1 ? "" : "s"}`];
  if (watch.last_event_at) parts.push(`last file event ${clock(watch.last_event_at)}`);
  if (watch.pending) parts.push(`${watch.pending} pending`);
  if (watch.running_job) parts.push("indexing…");
  const change = watch.last_change;
  if (change && change.summary) parts.push(`updated ${clock(change.finished_at)}: ${what(change.summary)}`);
  for (const root of down) parts.push(`${root.path} ${root.problem}`);
  for (const problem of watch.problems) parts.push(problem);
  line.textContent = parts.join(" · ");
  line.classList.toggle("problem", down.length > 0 || watch.problems.length > 0);
  line.hidden = false;
}

// A quiet poll: a failed or refused request leaves the line as it was (no key prompt).
// ``onIndexChanged`` is called when a watcher's job has changed the index since the page
// opened (not for the changes the page already saw).
export function start(line, onIndexChanged = () => {}) {
  let seen;
  const poll = () => {
    const key = apiKey.get();
    fetch("/v1/stats", { headers: key ? { "X-API-Key": key } : {} })
      .then((r) => (r.ok ? r.json() : Promise.reject(r.status)))
      .then((stats) => {
        show(line, stats.watch);
        const change = stats.watch && stats.watch.last_change ? stats.watch.last_change.job_id : null;
        if (seen !== undefined && change !== seen) onIndexChanged(stats);
        seen = change;
        return busy(stats.watch);
      })
      .catch(() => false)
      .then((fast) => setTimeout(poll, fast ? BUSY_REFRESH_MS : IDLE_REFRESH_MS));
  };
  poll();
}
