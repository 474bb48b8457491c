// Watched folders: one status line under the search box, refreshed while the page is open.
"use strict";

import { apiKey } from "./api.js";

const REFRESH_MS = 10000;

function show(line, watch) {
  if (!watch) { line.hidden = true; return; }
  const down = watch.roots.filter((r) => !r.available);
  const parts = [`Watching ${watch.roots.length} folder${watch.roots.length === 1 ? "" : "s"}`];
  if (watch.last_event_at) parts.push(`last change ${new Date(watch.last_event_at).toLocaleTimeString()}`);
  if (watch.pending) parts.push(`${watch.pending} pending`);
  if (watch.running_job) parts.push("indexing…");
  const last = watch.last_job && watch.last_job.summary;
  if (last) parts.push(`last job: ${last.embedded} new, ${last.paths_added} moved in, ${last.deleted_points} removed`);
  for (const root of down) parts.push(`${root.path} ${root.problem}`);
  for (const problem of watch.problems) parts.push(problem);
  line.textContent = parts.join(" · ");
  line.classList.toggle("problem", down.length > 0 || watch.problems.length > 0);
  line.hidden = false;
}

// A quiet poll: a failed or refused request leaves the line as it was (no key prompt).
export function start(line) {
  const poll = () => {
    const key = apiKey.get();
    fetch("/v1/stats", { headers: key ? { "X-API-Key": key } : {} })
      .then((r) => (r.ok ? r.json() : Promise.reject(r.status)))
      .then((stats) => show(line, stats.watch))
      .catch(() => {});
  };
  poll();
  setInterval(poll, REFRESH_MS);
}
