"""Text-query encode latency, as the API meets it: one query at a time, by token length and
on a mixed set, and 8 concurrent uncached queries through the service's micro-batcher.

Used by bench/bench_embedding.py.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from bench.common import percentile_ms

TOKEN_LENGTHS = (4, 11)
"""Query lengths in tokens, ``<s>`` and ``</s>`` included: a two-word and a short-phrase query."""
WORDS = (
    "punchy techno kick",
    "warm atmospheric pad",
    "crispy closed hat",
    "dusty lofi snare",
    "deep sub bass",
    "bright pluck",
    "vocal chop",
    "reverse cymbal",
    "metallic perc",
    "analog brass stab",
    "808 cowbell",
    "tape saturated drum loop",
    "glassy bell arp",
    "dark rolling bassline",
    "shaker groove",
    "riser fx",
    "impact hit",
    "granular texture",
    "detuned saw lead",
    "soft rhodes chord",
)
MODIFIERS = (
    "",
    " at 124 BPM",
    " in F minor",
    " with long reverb",
    ", dry",
    " for house",
    " 90s style",
)


def queries(count: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [f"{rng.choice(WORDS)}{rng.choice(MODIFIERS)}" for _ in range(count)]


def bench_text(embedder: Any, texts: list[str]) -> dict[str, Any]:
    for t in texts[:5]:
        embedder.embed([t])
    latencies = []
    for t in texts:
        start = time.perf_counter()
        embedder.embed([t])
        latencies.append(time.perf_counter() - start)
    tokens = [len(embedder.tower.tokens.token_ids(t)) for t in texts]
    return {
        "queries": len(texts),
        "median_tokens": float(np.median(tokens)),
        "p50_ms": percentile_ms(latencies, 50),
        "p99_ms": percentile_ms(latencies, 99),
    }


def queries_of_length(tower: Any, tokens: int, count: int, seed: int = 0) -> list[str]:
    """``count`` distinct queries of exactly ``tokens`` tokens (specials included)."""
    rng = np.random.default_rng(seed)
    vocabulary = [w for phrase in WORDS for w in phrase.split()] + [
        m.strip(" ,") for m in MODIFIERS
    ]
    out: list[str] = []
    for _ in range(200 * count):
        words: list[str] = []
        while len(tower.tokens.token_ids(" ".join(words))) < tokens:
            words.append(str(rng.choice(vocabulary)))
        text = " ".join(words)
        if len(tower.tokens.token_ids(text)) == tokens and text not in out:
            out.append(text)
            if len(out) == count:
                return out
    raise RuntimeError(f"could not make {count} queries of {tokens} tokens")


def bench_text_lengths(texts: dict[str, Any], count: int) -> dict[str, dict[str, Any]]:
    """p50/p99 of single-query encodes per runtime and query length, interleaved query by
    query so that both runtimes meet the same moments of a shared machine."""
    any_tower = next(iter(texts.values())).tower
    pools = {n: queries_of_length(any_tower, n, count, seed=n) for n in TOKEN_LENGTHS}
    times: dict[tuple[str, int], list[float]] = {(r, n): [] for r in texts for n in TOKEN_LENGTHS}
    for embedder in texts.values():
        for n in TOKEN_LENGTHS:
            for q in pools[n][:5]:
                embedder.embed([q])  # warm-up
    for i in range(count):
        for n in TOKEN_LENGTHS:
            for name, embedder in texts.items():
                start = time.perf_counter()
                embedder.embed([pools[n][i]])
                times[name, n].append(time.perf_counter() - start)
    out: dict[str, dict[str, Any]] = {name: {} for name in texts}
    for (name, n), samples in times.items():
        out[name][f"{n}_tokens"] = {
            "p50_ms": percentile_ms(samples, 50),
            "p99_ms": percentile_ms(samples, 99),
        }
        print(
            f"  {name:>11} {n:>2} tokens: p50 {percentile_ms(samples, 50):6.1f} ms,"
            f" p99 {percentile_ms(samples, 99):6.1f} ms",
            flush=True,
        )
    return out


def bench_concurrent_text(embedder: Any, clients: int, rounds: int) -> dict[str, Any]:
    """``clients`` threads each sending ``rounds`` new queries through the service's path
    (one model call at a time), with the micro-batcher at ``clients`` and at 1."""
    from timbre.search.batcher import TextBatcher

    lock = threading.Lock()

    def run(texts: list[str]) -> np.ndarray:
        with lock:  # SearchService.model_lock
            return embedder.embed(texts)

    out: dict[str, Any] = {"clients": clients}
    for label, max_batch in (("batched", clients), ("one_at_a_time", 1)):
        batcher = TextBatcher(run, max_batch)
        pool_queries = queries(clients * rounds, seed=max_batch)

        def client(k: int, b: TextBatcher = batcher, qs: list[str] = pool_queries) -> list[float]:
            times = []
            for r in range(rounds):
                start = time.perf_counter()
                b.embed(f"{qs[k * rounds + r]} {k}-{r}")
                times.append(time.perf_counter() - start)
            return times

        begun = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            samples = [t for ts in pool.map(client, range(clients)) for t in ts]
        wall = time.perf_counter() - begun
        out[label] = {
            "p50_ms": percentile_ms(samples, 50),
            "p99_ms": percentile_ms(samples, 99),
            "queries_per_s": len(samples) / wall,
            "mean_batch": batcher.queries / max(1, batcher.calls),
        }
        print(f"  {label:>13}: {out[label]}", flush=True)
    return out
