// The requests behind a listing: a search (words, a sample, a file, a mix, or 👍/👎 examples)
// or a browse, each with the filters of the sidebar and the project of the header.
"use strict";

import { post } from "./api.js";
import * as context from "./context.js";
import * as filters from "./filters.js";
import * as steer from "./steer.js";

/**
 * One page of a search. ``reference``: ``{id}`` of a sample or ``{file}`` to search like;
 * ``alpha``: the weight of the words when mixed with a reference. Words are sent as typed:
 * the service reads "-word" and -"two words" as words to avoid.
 */
export function search({ query, reference, alpha, topK, offset }) {
  const filter = filters.current();
  const project = context.forRequest();
  const extra = project ? { context: project } : {};
  if (steer.active()) {
    const body = { positive: steer.positives(), negative: steer.negatives(), filter, top_k: topK, offset, ...extra };
    if (query) body.query = query;
    return post("/v1/search/recommend", body);
  }
  if (reference && reference.file) {
    const body = new FormData();
    body.append("file", reference.file);
    body.append("top_k", topK);
    body.append("offset", offset);
    if (filter) body.append("filter", JSON.stringify(filter));
    if (project) body.append("context", JSON.stringify(project));
    if (query) { body.append("query", query); body.append("alpha", alpha); }
    return post(query ? "/v1/search/hybrid/upload" : "/v1/search/audio/upload", body);
  }
  if (reference) {
    const body = { id: reference.id, filter, top_k: topK, offset, ...extra };
    if (query) Object.assign(body, { query, alpha });
    return post(query ? "/v1/search/hybrid" : "/v1/search/audio", body);
  }
  return post("/v1/search/text", { query, filter, top_k: topK, offset, ...extra });
}

/** One page of the samples the filters hold; the project goes as query parameters. */
export function browse({ topK, offset }) {
  const params = context.forQuery();
  return post(`/v1/browse${params ? `?${params}` : ""}`, { filter: filters.current(), top_k: topK, offset });
}
