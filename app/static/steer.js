// "More like these, less like those": the rows a producer gave 👍 or 👎, shown as removable
// chips above the results. While there is one, searches go to /v1/search/recommend with them.
"use strict";

import { icon } from "./format.js";

const box = document.getElementById("examples");
const chips = document.getElementById("example-chips");
const examples = []; // [{id, label, positive}], in the order given
let removed = () => {};

export function onRemove(fn) { removed = fn; }
export function active() { return examples.length > 0; }
export function positives() { return examples.filter((e) => e.positive).map((e) => e.id); }
export function negatives() { return examples.filter((e) => !e.positive).map((e) => e.id); }
export function all() { return examples.slice(); }

/** Add (or flip) an example; returns false if it was already there with that sign. */
export function add(id, label, positive) {
  const known = examples.find((e) => e.id === id);
  if (known && known.positive === positive) return false;
  if (known) known.positive = positive;
  else examples.push({ id, label, positive });
  render();
  return true;
}

export function remove(id) {
  const i = examples.findIndex((e) => e.id === id);
  if (i >= 0) examples.splice(i, 1);
  render();
}

export function clear() {
  examples.length = 0;
  render();
}

/** What the examples say, for the status line and the empty text. */
export function describe() {
  const up = examples.filter((e) => e.positive).map((e) => e.label);
  const down = examples.filter((e) => !e.positive).map((e) => e.label);
  return [up.length && `like ${up.join(", ")}`, down.length && `unlike ${down.join(", ")}`]
    .filter(Boolean).join(" and ");
}

function render() {
  box.hidden = !examples.length;
  chips.replaceChildren(...examples.map((e) => {
    const chip = document.createElement("span");
    chip.className = `example ${e.positive ? "up" : "down"}`;
    chip.dataset.id = e.id;
    const text = document.createElement("span");
    text.className = "example-name";
    text.append(icon(e.positive ? "up" : "down"), ` ${e.label}`);
    text.title = `${e.positive ? "More like" : "Less like"} ${e.label}`;
    const x = document.createElement("button");
    x.type = "button";
    x.textContent = "×";
    x.setAttribute("aria-label", `Remove ${e.positive ? "👍" : "👎"} ${e.label}`);
    x.title = x.getAttribute("aria-label");
    x.addEventListener("click", () => {
      remove(e.id);
      removed(e);
    });
    chip.append(text, x);
    return chip;
  }));
}
