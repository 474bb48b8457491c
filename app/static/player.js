// One <audio> element for the whole page: it plays one hit at a time, draws the playhead on that
// hit's waveforms, and picks a WAV rendition for formats the browser cannot play (AIFF, CAF...).
"use strict";

import { repaint } from "./wave.js";
import { matchedUrl } from "./context.js";

const MIME = {
  wav: "audio/wav", flac: "audio/flac", mp3: "audio/mpeg", ogg: "audio/ogg", oga: "audio/ogg",
  opus: 'audio/ogg; codecs="opus"', aiff: "audio/aiff", aif: "audio/aiff", caf: "audio/x-caf",
  m4a: "audio/mp4", w64: "audio/x-w64", au: "audio/basic",
};

const audio = document.getElementById("player");
let current = null; // the hit playing (or paused)
let frame = 0;
const listeners = new Set();

export function onChange(fn) { listeners.add(fn); }
function changed() { for (const fn of listeners) fn(current, !audio.paused); }

function rendition(hit) { return `${hit.audio_url}?rendition=wav`; }

/** The original's URL, or its WAV rendition if this browser cannot play the format. */
export function originalSourceOf(hit) {
  const mime = MIME[(hit.format || "").toLowerCase()];
  return mime && audio.canPlayType(mime) ? hit.audio_url : rendition(hit);
}

/** The URL to play a hit from: its rendition matched to the project when that is on (and
 * needed), else its original file if this browser plays the format. */
export function sourceOf(hit) {
  return matchedUrl(hit) || originalSourceOf(hit);
}

function tick() {
  cancelAnimationFrame(frame);
  if (!current) return;
  const duration = audio.duration || current.duration_s || 0;
  repaint(current.id, duration ? Math.min(1, audio.currentTime / duration) : 0);
  if (!audio.paused) frame = requestAnimationFrame(tick);
}

audio.addEventListener("play", () => { tick(); changed(); });
audio.addEventListener("pause", () => { tick(); changed(); });
audio.addEventListener("ended", () => {
  if (current) repaint(current.id, null);
  changed();
});
audio.addEventListener("error", () => {
  // A matched rendition that cannot be made plays the original; an original that cannot be
  // decoded after all (a codec canPlayType did not know) plays its WAV rendition, once.
  const url = audio.dataset.url || "";
  let next = null;
  if (current && url && url === matchedUrl(current)) next = originalSourceOf(current);
  else if (current && url && !url.includes("rendition=wav")) next = rendition(current);
  if (next) {
    load(current, next, Number(audio.dataset.seek || 0));
    audio.play().catch(report);
    return;
  }
  report(new Error("this file cannot be played"));
});

let onError = () => {};
export function onPlayError(fn) { onError = fn; }
function report(error) {
  if (error && error.name === "AbortError") return; // a newer play() replaced this one
  onError(error);
}

function load(hit, url, at) {
  if (current && current.id !== hit.id) repaint(current.id, null);
  current = hit;
  audio.dataset.seek = at;
  audio.dataset.url = url;
  audio.src = url;
  if (at > 0) {
    audio.addEventListener("loadedmetadata", () => { audio.currentTime = at; }, { once: true });
  }
}

/** Play ``hit`` from ``fraction`` (0..1) of its length, or from the start. */
export function play(hit, fraction = 0) {
  const duration = (current && current.id === hit.id && audio.duration) || hit.duration_s || 0;
  const at = Math.max(0, fraction * duration);
  const url = sourceOf(hit);
  // The same sample from another source (matched on or off, a new project tempo) reloads.
  if (!current || current.id !== hit.id || audio.dataset.url !== url) {
    load(hit, url, at);
  } else if (fraction > 0 || audio.ended) {
    audio.currentTime = at;
  } else {
    audio.currentTime = 0;
  }
  return audio.play().then(() => onError(null)).catch(report);
}

export function stop() {
  audio.pause();
}

/** Play if stopped, stop if playing. */
export function toggle(hit) {
  if (current && current.id === hit.id && !audio.paused) {
    stop();
    return Promise.resolve();
  }
  return play(hit);
}

export function playing() { return current && !audio.paused ? current : null; }
export function element() { return audio; }
