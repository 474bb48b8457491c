// Timbre's page: plain JavaScript, no build step. Talks to the JSON API of the same origin.
"use strict";

const $ = (selector) => document.querySelector(selector);
const form = $("#search");
const results = $("#results");
const status = $("#status");
const alpha = $("#alpha");

// The reference sound of "more like this" or an upload; text + reference = hybrid search.
let reference = null; // {id, label} or {file, label}
let selected = -1;

function filterFromForm() {
  const data = new FormData(form);
  const filter = {};
  for (const name of ["genre", "instrument", "kind", "key", "pack"]) {
    const value = (data.get(name) || "").trim();
    if (value) filter[name] = value;
  }
  const bpm = (data.get("bpm") || "").trim();
  if (bpm) filter.bpm = bpm.includes("-") ? bpm : `${bpm}-${bpm}`;
  return Object.keys(filter).length ? filter : null;
}

async function api(path, body) {
  const init = { method: "POST" };
  if (body instanceof FormData) {
    init.body = body;
  } else {
    init.headers = { "Content-Type": "application/json" };
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const data = await response.json();
  if (!response.ok) throw new Error(data.detail || response.statusText);
  return data;
}

async function search() {
  const query = $("#query").value.trim();
  const filter = filterFromForm();
  let path, body;
  if (reference && reference.file) {
    body = new FormData();
    body.append("file", reference.file);
    if (filter) body.append("filter", JSON.stringify(filter));
    if (query) {
      body.append("query", query);
      body.append("alpha", alpha.value);
    }
    path = query ? "/v1/search/hybrid" : "/v1/search/audio";
  } else if (reference) {
    body = { id: reference.id, filter };
    if (query) Object.assign(body, { query, alpha: Number(alpha.value) });
    path = query ? "/v1/search/hybrid" : "/v1/search/audio";
  } else if (query) {
    body = { query, filter };
    path = "/v1/search/text";
  } else {
    status.textContent = "Describe a sound, or pick a reference.";
    return;
  }
  status.textContent = "Searching…";
  try {
    const data = await api(path, body);
    render(data.hits);
    status.textContent = `${data.hits.length} results in ${data.took_ms.toFixed(1)} ms (${data.engine})`;
  } catch (error) {
    results.replaceChildren();
    status.textContent = `Error: ${error.message}`;
  }
}

function label(hit) {
  return hit.path ? hit.path.split("/").pop() : hit.id;
}

function facts(hit) {
  const bits = [];
  if (hit.instrument) bits.push(hit.instrument);
  if (hit.kind) bits.push(hit.kind.replace("_", "-"));
  if (hit.genre) bits.push(hit.genre);
  if (hit.bpm) bits.push(`${hit.bpm} BPM`);
  if (hit.key) bits.push(hit.key);
  if (hit.duration_s != null) bits.push(`${hit.duration_s.toFixed(2)} s`);
  if (hit.pack) bits.push(hit.pack);
  return bits.join(" · ");
}

function render(hits) {
  selected = -1;
  results.replaceChildren(...hits.map((hit, index) => {
    const li = document.createElement("li");
    li.className = "hit";
    li.tabIndex = 0;
    li.draggable = true;
    li.dataset.id = hit.id;
    li.dataset.index = index;

    const play = document.createElement("button");
    play.className = "play";
    play.type = "button";
    play.textContent = "▶";
    play.setAttribute("aria-label", `Play ${label(hit)}`);

    const audio = document.createElement("audio");
    audio.preload = "none";
    audio.src = hit.audio_url;

    const name = document.createElement("span");
    name.className = "name";
    name.textContent = label(hit);
    name.title = hit.path || "";

    const meta = document.createElement("span");
    meta.className = "meta";
    meta.textContent = facts(hit);

    const score = document.createElement("span");
    score.className = "score";
    score.textContent = hit.score != null ? hit.score.toFixed(3) : "";

    const wave = document.createElement("canvas");
    wave.className = "wave";
    wave.width = 240;
    wave.height = 36;

    const more = document.createElement("button");
    more.className = "more";
    more.type = "button";
    more.textContent = "More like this";

    play.addEventListener("click", () => toggle(audio, play, wave));
    more.addEventListener("click", () => moreLike(hit));
    li.addEventListener("dragstart", (event) => {
      // Chrome lets a DownloadURL drag drop the file on the desktop or into a DAW.
      const url = new URL(hit.audio_url, location.href).href;
      event.dataTransfer.setData("DownloadURL", `audio/${(hit.format || "wav")}:${label(hit)}:${url}`);
      event.dataTransfer.setData("text/uri-list", url);
    });
    li.append(play, name, meta, wave, score, more, audio);
    return li;
  }));
}

async function toggle(audio, button, canvas) {
  for (const other of document.querySelectorAll("audio")) {
    if (other !== audio && !other.paused) other.pause();
  }
  if (audio.paused) {
    await audio.play().catch((error) => { status.textContent = `Cannot play: ${error.message}`; });
    button.textContent = "❚❚";
    drawWave(audio.src, canvas);
  } else {
    audio.pause();
  }
  audio.onpause = audio.onended = () => { button.textContent = "▶"; };
}

const drawn = new WeakSet();
async function drawWave(url, canvas) {
  if (drawn.has(canvas) || !window.AudioContext) return;
  drawn.add(canvas);
  try {
    const bytes = await (await fetch(url)).arrayBuffer();
    const buffer = await new AudioContext().decodeAudioData(bytes);
    const data = buffer.getChannelData(0);
    const ctx = canvas.getContext("2d");
    const step = Math.max(1, Math.floor(data.length / canvas.width));
    ctx.fillStyle = "#7aa2f7";
    for (let x = 0; x < canvas.width; x++) {
      let peak = 0;
      for (let i = x * step; i < (x + 1) * step && i < data.length; i++) peak = Math.max(peak, Math.abs(data[i]));
      const h = Math.max(1, peak * canvas.height);
      ctx.fillRect(x, (canvas.height - h) / 2, 1, h);
    }
  } catch {
    // The duration is shown anyway; a waveform is a bonus.
  }
}

function setReference(ref) {
  reference = ref;
  $("#reference").hidden = !ref;
  $("#reference-name").textContent = ref ? ref.label : "";
}

function moreLike(hit) {
  // Pure "sounds like this"; typing a description afterwards makes it a hybrid search.
  $("#query").value = "";
  setReference({ id: hit.id, label: label(hit) });
  search();
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  search();
});

alpha.addEventListener("input", () => {
  $("#alpha-value").textContent = `${Math.round(alpha.value * 100)}% text`;
});
alpha.addEventListener("change", () => { if (reference && $("#query").value.trim()) search(); });
$("#clear-reference").addEventListener("click", () => { setReference(null); search(); });
$("#upload").addEventListener("change", (event) => {
  const file = event.target.files[0];
  if (file) {
    setReference({ file, label: file.name });
    search();
  }
});
document.addEventListener("dragover", (event) => event.preventDefault());
document.addEventListener("drop", (event) => {
  const file = event.dataTransfer.files && event.dataTransfer.files[0];
  if (file) {
    event.preventDefault();
    setReference({ file, label: file.name });
    search();
  }
});

function select(index) {
  const items = results.querySelectorAll(".hit");
  if (!items.length) return;
  selected = Math.max(0, Math.min(items.length - 1, index));
  items[selected].focus();
}

document.addEventListener("keydown", (event) => {
  const typing = ["INPUT", "SELECT", "TEXTAREA"].includes(document.activeElement.tagName);
  if (event.key === "/" && !typing) {
    event.preventDefault();
    $("#query").focus();
    return;
  }
  if (event.key === "Escape") {
    if (reference) { setReference(null); }
    document.activeElement.blur();
    return;
  }
  if (typing) return;
  const current = document.activeElement.closest && document.activeElement.closest(".hit");
  if (event.key === "j" || event.key === "ArrowDown") { event.preventDefault(); select(selected + 1); }
  else if (event.key === "k" || event.key === "ArrowUp") { event.preventDefault(); select(selected - 1); }
  else if (current && event.key === " ") { event.preventDefault(); current.querySelector(".play").click(); }
  else if (current && event.key === "m") { current.querySelector(".more").click(); }
});

results.addEventListener("focusin", (event) => {
  const hit = event.target.closest(".hit");
  if (hit) selected = Number(hit.dataset.index);
});

fetch("/v1/stats").then((r) => r.json()).then((stats) => {
  if (stats.random_weights) {
    const notice = $("#notice");
    notice.textContent = "This index was built with RANDOM-WEIGHT test models: results are meaningless.";
    notice.hidden = false;
  }
}).catch(() => {});

// Watched folders: one status line, refreshed while the page is open.
function showWatch(watch) {
  const line = $("#watch-status");
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
function pollWatch() {
  fetch("/v1/stats").then((r) => r.json()).then((stats) => showWatch(stats.watch)).catch(() => {});
}
pollWatch();
setInterval(pollWatch, 10000);
