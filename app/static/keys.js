// The keyboard: "/" to the search box, arrows or j/k through the rows (auditioning each when
// autoplay is on), Space to play or stop, Enter for the details, m/f/a/+/- for a row's actions,
// Escape to close or clear. The page passes in what each key does.
"use strict";

import * as details from "./details.js";
import * as player from "./player.js";
import * as results from "./results.js";

/**
 * Listen for the page's shortcuts. `page` holds what they act on: `hasHits()`, `hasReference()`,
 * `autoplay()` and the actions `play`, `clearReference`, `moreLike`, `favourite`, `addTo`,
 * `steer(hit, positive)`.
 */
export function start(page) {
  const query = document.getElementById("query");

  function move(step) {
    const hit = results.select(results.selectedIndexNow() + step);
    if (hit && page.autoplay()) page.play(hit);
  }

  document.addEventListener("keydown", (event) => {
    if (document.querySelector("dialog[open]") || event.ctrlKey || event.metaKey || event.altKey) return;
    const active = document.activeElement;
    const tag = active ? active.tagName : "";
    const typing = ["INPUT", "SELECT", "TEXTAREA"].includes(tag);
    if (event.key === "Escape") {
      if (details.isOpen()) details.close();
      else if (page.hasReference()) page.clearReference();
      else if (typing) active.blur();
      return;
    }
    // "/" jumps to the search box; on a fresh page the box already has the focus, and an empty
    // box takes no slash either (no description starts with one).
    const freshBox = active === query && !query.value;
    if (event.key === "/" && (!typing || freshBox)) {
      event.preventDefault();
      query.focus();
      query.select();
      return;
    }
    if (active === query && event.key === "ArrowDown" && page.hasHits()) {
      event.preventDefault();
      move(results.selectedIndexNow() < 0 ? 1 : 0);
      return;
    }
    if (typing) return;
    const onRow = active && active.classList && active.classList.contains("hit");
    const inList = onRow || active === document.body || (active && active.closest && active.closest("#results"));
    if (!inList || !page.hasHits()) return;
    const hit = results.selected();
    switch (event.key) {
      case "ArrowDown": case "j": event.preventDefault(); move(1); break;
      case "ArrowUp": case "k": event.preventDefault(); move(-1); break;
      case " ":
        if (!onRow && active !== document.body) return; // a focused button handles its own Space
        event.preventDefault();
        if (player.playing()) player.stop(); else page.play(hit);
        break;
      case "Enter":
        if (!onRow) return;
        event.preventDefault();
        details.open(hit);
        break;
      case "m": page.moreLike(hit); break;
      case "f": page.favourite(hit); break;
      case "a": if (!hit.missing) page.addTo(hit); break;
      case "+": page.steer(hit, true); break;
      case "-": page.steer(hit, false); break;
      default:
    }
  });
}
