// The folder browser: the library's tree one level at a time, with sample counts. Opening a
// folder lists it and limits searches to it.
"use strict";

import { get, enc } from "./api.js";
import { number } from "./format.js";

const box = document.getElementById("folders");
let opened = () => {};
export function onOpenFolder(fn) { opened = fn; }

function item(text, count, onClick, extra = {}) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = "nav-item folder";
  const name = document.createElement("span");
  name.textContent = text;
  b.append(name);
  if (count != null) {
    const c = document.createElement("span");
    c.className = "count";
    c.textContent = number(count);
    b.append(c);
  }
  Object.assign(b, extra);
  b.addEventListener("click", onClick);
  return b;
}

/** Show the folders under ``under`` (the library's top when null). */
export async function refresh(under = null) {
  let data;
  try {
    data = await get(`/v1/folders${under ? `?under=${enc(under)}` : ""}`);
  } catch (error) {
    box.replaceChildren(); // a service without folder listings: the section stays empty
    throw error;
  }
  const nodes = [];
  if (data.parent != null || under) {
    nodes.push(item(`↑ ${data.parent_name || "up"}`, null, () => {
      refresh(data.parent).then(() => opened(data.parent)).catch(() => {});
    }, { title: data.parent || "" }));
  }
  if (data.under) {
    const here = document.createElement("p");
    here.className = "here";
    here.textContent = data.name || data.under;
    here.title = data.under;
    nodes.push(here);
  }
  const ul = document.createElement("ul");
  ul.className = "plain tree";
  for (const folder of data.folders) {
    const li = document.createElement("li");
    li.append(item(folder.name, folder.count, () => {
      opened(folder.path);
      refresh(folder.path).catch(() => {});
    }, { title: folder.path }));
    ul.append(li);
  }
  nodes.push(ul);
  box.replaceChildren(...nodes);
}
