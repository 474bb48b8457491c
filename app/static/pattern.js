// A kit played as a one-bar pattern at the project's tempo, scheduled with Web Audio: each
// pad's audio is fetched and decoded once, and the bar loops until stopped.
"use strict";

/*
 * The pattern, on a bar of sixteen 16th-note steps (step 0 = the downbeat):
 *   kick                    1 and 3      (steps 0, 8)
 *   snare, clap, rim        2 and 4      (steps 4, 12)
 *   open hat                the "and" of 2 and 4 (steps 6, 14)
 *   hats, shaker, ride      every 8th    (steps 0, 2, ..., 14)
 *   crash, cymbal           the downbeat (step 0)
 *   any other slot          one sparse hit each, by pad order: steps 3, 7, 10, 13, 15, 11, 5, 9
 * A pad's voice is cut when it triggers again (a choke), so long samples do not pile up.
 */
const SPARSE = [3, 7, 10, 13, 15, 11, 5, 9];
const DRUMS = /kick|bd\b|snare|clap|rim|open|hat|hh|shaker|ride|crash|cymbal/;
const STEPS = 16;
const LOOKAHEAD_S = 0.25; // how far ahead voices are scheduled
const WAKE_MS = 50; // how often the scheduler looks ahead

/** The steps a pad of ``slot`` plays; ``order`` counts the pads of other slots. */
export function stepsFor(slot, order = 0) {
  const s = (slot || "").toLowerCase();
  if (/kick|bd\b/.test(s)) return [0, 8];
  if (/snare|clap|rim/.test(s)) return [4, 12];
  if (/open/.test(s)) return [6, 14];
  if (/hat|hh|shaker|ride/.test(s)) return [0, 2, 4, 6, 8, 10, 12, 14];
  if (/crash|cymbal/.test(s)) return [0];
  return [SPARSE[order % SPARSE.length]];
}

let audio = null; // one AudioContext for the page
const buffers = new Map(); // url -> AudioBuffer

async function decode(url) {
  if (buffers.has(url)) return buffers.get(url);
  const response = await fetch(url);
  if (!response.ok) throw new Error(`HTTP ${response.status} for ${url}`);
  const buffer = await audio.decodeAudioData(await response.arrayBuffer());
  buffers.set(url, buffer);
  return buffer;
}

/**
 * Loop ``pads`` (``[{slot, url}]``) as one bar at ``bpm``. Resolves to a handle ``{stop(),
 * pads, hits, failed}`` (pads playing, hits a bar, pads that could not be decoded), or null
 * when none could be decoded. ``onScheduled(n)`` hears the count of voices scheduled so far.
 */
export async function start(pads, bpm, onScheduled = () => {}) {
  audio = audio || new AudioContext();
  if (audio.state === "suspended") await audio.resume();
  const decoded = await Promise.allSettled(pads.map((p) => decode(p.url)));
  let other = 0;
  const tracks = [];
  pads.forEach((pad, i) => {
    const steps = stepsFor(pad.slot, DRUMS.test((pad.slot || "").toLowerCase()) ? 0 : other++);
    if (decoded[i].status === "fulfilled") tracks.push({ steps, buffer: decoded[i].value, last: null });
  });
  if (!tracks.length) return null;
  const step = 60 / bpm / 4;
  const barStart = audio.currentTime + 0.1;
  let next = 0;
  let scheduled = 0;
  let voices = [];
  // The audio clock keeps time; the timer only has to wake up often enough to stay ahead.
  const schedule = () => {
    const horizon = audio.currentTime + LOOKAHEAD_S;
    while (barStart + next * step < horizon) {
      const at = barStart + next * step;
      for (const track of tracks) {
        if (!track.steps.includes(next % STEPS)) continue;
        const voice = audio.createBufferSource();
        voice.buffer = track.buffer;
        voice.connect(audio.destination);
        if (track.last) { try { track.last.stop(at); } catch { /* already ended */ } }
        voice.start(at);
        track.last = voice;
        voices.push(voice);
        scheduled++;
      }
      next++;
      voices = voices.slice(-64);
    }
    onScheduled(scheduled);
  };
  schedule();
  const timer = setInterval(schedule, WAKE_MS);
  return {
    stop() {
      clearInterval(timer);
      for (const voice of voices) { try { voice.stop(); } catch { /* already stopped */ } }
    },
    pads: tracks.length,
    hits: tracks.reduce((n, t) => n + t.steps.length, 0),
    failed: pads.length - tracks.length,
  };
}
