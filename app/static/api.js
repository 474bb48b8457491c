// The JSON API of the same origin, with the API key the user gave (kept in localStorage).
"use strict";

const KEY_STORAGE = "timbre.apiKey";

export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && problem.detail) || `HTTP ${status}`);
    this.status = status;
    this.code = problem && problem.code;
  }
}

export const apiKey = {
  get: () => localStorage.getItem(KEY_STORAGE) || "",
  set: (value) => (value ? localStorage.setItem(KEY_STORAGE, value) : localStorage.removeItem(KEY_STORAGE)),
};

// Asked for a key when the server answers 401; resolves to the key, or "" if the user gave up.
let askForKey = async () => "";
export function onKeyNeeded(ask) { askForKey = ask; }

async function send(method, path, body) {
  const init = { method, headers: {} };
  const key = apiKey.get();
  if (key) init.headers["X-API-Key"] = key;
  if (body instanceof FormData) {
    init.body = body;
  } else if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  try {
    return await fetch(path, init);
  } catch {
    // fetch rejects only when no answer came at all: the service stopped, or the network.
    throw new ApiError(0, {
      detail: "the Timbre service is not answering. Is “timbre serve” still running?",
      code: "unreachable",
    });
  }
}

/** One API call; a 401 asks for the key once and retries with it. Throws ApiError. */
export async function api(method, path, body) {
  let response = await send(method, path, body);
  if (response.status === 401) {
    const key = await askForKey();
    if (key) response = await send(method, path, body);
  }
  if (response.status === 204) return null;
  const type = response.headers.get("content-type") || "";
  const data = type.includes("json") ? await response.json() : null;
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

export const get = (path) => api("GET", path);
export const post = (path, body) => api("POST", path, body);
export const del = (path) => api("DELETE", path);

export const enc = encodeURIComponent;
