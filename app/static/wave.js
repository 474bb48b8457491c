// Waveforms from the 200 peaks the API serves (timbre/audio/peaks.py): no audio is fetched to
// draw them. A shared player draws its playhead on the row it plays.
"use strict";

import { get, enc } from "./api.js";

const cache = new Map(); // item id -> Uint8Array of peaks
const waiting = new Map(); // item id -> Promise
const queue = [];
let running = 0;
const PARALLEL = 4; // the browser holds 6 connections per origin; leave some for the rest

export function peaksFromBase64(text) {
  const raw = atob(text);
  const out = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
  return out;
}

function pump() {
  while (running < PARALLEL && queue.length) {
    const job = queue.shift();
    running++;
    get(`/v1/items/${enc(job.id)}/peaks`)
      .then((data) => {
        const peaks = Uint8Array.from(data.peaks);
        cache.set(job.id, peaks);
        job.resolve(peaks);
      })
      .catch(() => job.resolve(null)) // an undecodable file: the row shows a flat line
      .finally(() => { running--; waiting.delete(job.id); pump(); });
  }
}

/** The peaks of a hit: carried by the hit, cached, or fetched (a few at a time). */
export function peaksOf(hit) {
  if (cache.has(hit.id)) return Promise.resolve(cache.get(hit.id));
  if (hit.peaks) {
    const peaks = peaksFromBase64(hit.peaks);
    cache.set(hit.id, peaks);
    return Promise.resolve(peaks);
  }
  if (!waiting.has(hit.id)) {
    waiting.set(hit.id, new Promise((resolve) => { queue.push({ id: hit.id, resolve }); pump(); }));
  }
  return waiting.get(hit.id);
}

export function knownPeaks(id) { return cache.get(id) || null; }

const COLORS = { wave: "#5a6fa8", played: "#9ece6a", head: "#e0af68", empty: "#3b4261" };

/** Draw ``peaks`` on ``canvas``; the part before ``progress`` (0..1, or null) as played. */
export function draw(canvas, peaks, progress = null) {
  const ratio = window.devicePixelRatio || 1;
  const width = Math.max(1, Math.round(canvas.clientWidth * ratio));
  const height = Math.max(1, Math.round(canvas.clientHeight * ratio));
  if (canvas.width !== width || canvas.height !== height) {
    canvas.width = width;
    canvas.height = height;
  }
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, width, height);
  const mid = height / 2;
  if (!peaks || !peaks.length) {
    ctx.fillStyle = COLORS.empty;
    ctx.fillRect(0, mid - ratio / 2, width, ratio);
    return;
  }
  const bar = Math.max(1, Math.floor(ratio));
  const played = progress == null ? -1 : progress * width;
  // Drawn normalised to the clip's own loudest bucket: the peaks are on a full-scale linear
  // scale, so a quiet sample (or a long one whose tail is soft) would draw a flat line.
  let top = 0;
  for (const p of peaks) top = Math.max(top, p);
  const scale = top > 0 ? (height - 2 * ratio) / top : 0;
  for (let x = 0; x < width; x += bar + (ratio >= 2 ? 1 : 0)) {
    // Each pixel column shows the loudest bucket it covers.
    const from = Math.floor((x / width) * peaks.length);
    const to = Math.max(from + 1, Math.floor(((x + bar) / width) * peaks.length));
    let peak = 0;
    for (let i = from; i < to && i < peaks.length; i++) peak = Math.max(peak, peaks[i]);
    const h = Math.max(ratio, peak * scale);
    ctx.fillStyle = x < played ? COLORS.played : COLORS.wave;
    ctx.fillRect(x, mid - h / 2, bar, h);
  }
  if (progress != null) {
    ctx.fillStyle = COLORS.head;
    ctx.fillRect(Math.min(width - ratio, played), 0, Math.max(1, ratio), height);
  }
}

/** A canvas for a hit; painted when its peaks arrive, and marked ``data-painted`` then. */
export function waveCanvas(hit, className) {
  const canvas = document.createElement("canvas");
  canvas.className = className;
  canvas.dataset.id = hit.id;
  canvas.setAttribute("aria-hidden", "true");
  peaksOf(hit).then((peaks) => {
    if (!canvas.isConnected) return;
    draw(canvas, peaks);
    canvas.dataset.painted = peaks ? "peaks" : "empty";
  });
  return canvas;
}

/** Repaint every canvas of an item (after a layout change, or to move the playhead). */
export function repaint(id, progress = null) {
  for (const canvas of document.querySelectorAll(`canvas[data-id="${CSS.escape(id)}"]`)) {
    draw(canvas, cache.get(id) || null, progress);
  }
}
