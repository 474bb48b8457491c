"""Every command with ``models.family: clap``, and two families in one data dir.

One data dir is indexed by clamp3 (tiny bundle, PyTorch), then switched to clap: the switch
builds a family-named collection through the re-index path and publishes it; searches,
embeds, duplicates, relabel and the HTTP service then answer from clap vectors, and a process
still configured for clamp3 is refused with an error that names both families.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import soundfile as sf
from typer.testing import CliRunner, Result

from timbre.cli import app


def _library(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for folder, name, seconds, freq in (
        ("Drums", "Kick 01.wav", 0.3, 55.0),
        ("Drums", "Snare 02.wav", 0.25, 190.0),
        ("Drums", "Hat 03.wav", 0.12, 0.0),
        ("Loops", "Pad loop 120bpm.wav", 12.0, 220.0),
    ):
        t = np.arange(int(seconds * 22_050)) / 22_050
        tone = np.sin(2 * np.pi * freq * t) if freq else rng.standard_normal(t.shape[0])
        (root / folder).mkdir(parents=True, exist_ok=True)
        sf.write(root / folder / name, (0.5 * tone * np.exp(-3 * t)).astype(np.float32), 22_050)
    # A byte-identical copy elsewhere, and a quieter copy: a near-duplicate pair for clap too.
    kick = sf.read(root / "Drums" / "Kick 01.wav")[0]
    sf.write(root / "Loops" / "Kick copy.wav", 0.8 * kick, 22_050)
    return root


def _run(args: list[str], env: dict[str, str]) -> Result:
    return CliRunner().invoke(app, args, env=env)


def _both(target: Path, clamp3: Path, clap: Path) -> Path:
    """One bundle folder holding both families (links to the session's two bundles)."""
    target.mkdir()
    for part, source in (("mert", clamp3), ("xlmr", clamp3), ("clamp3", clamp3), ("clap", clap)):
        (target / part).symlink_to(source / part)
    manifests = [json.loads((b / "timbre-models.json").read_text()) for b in (clamp3, clap)]
    merged = {**manifests[0], "sources": {**manifests[0]["sources"], **manifests[1]["sources"]}}
    (target / "timbre-models.json").write_text(json.dumps(merged))
    return target


def _files(folder: Path) -> dict[str, float]:
    return {str(p): p.stat().st_mtime for p in folder.rglob("*") if p.is_file()}


def test_switching_a_data_dir_to_clap_and_every_command(
    tmp_path: Path, tiny_bundle: Path, clap_bundle: Path
) -> None:
    lib = _library(tmp_path / "lib")
    data = tmp_path / "data"
    base = {k: v for k, v in os.environ.items() if not k.startswith("TIMBRE_") or "EXPORT" in k}
    clamp3 = {
        **base,
        "TIMBRE_DATA_DIR": str(data),
        "TIMBRE_MODELS__BUNDLE": str(tiny_bundle),
        "TIMBRE_MODELS__RUNTIME": "torch",
        "TIMBRE_MODELS__THREADS": "2",
    }
    clap = {**clamp3, "TIMBRE_MODELS__FAMILY": "clap", "TIMBRE_MODELS__BUNDLE": str(clap_bundle)}

    first = _run(["ingest", str(lib)], clamp3)
    assert first.exit_code == 0, first.output
    mert_cache = _files(data / "cache" / "mert")
    assert mert_cache  # clamp3 cached its MERT window vectors

    switched = _run(["ingest", str(lib), "--json"], clap)
    assert switched.exit_code == 0, switched.output
    summary = json.loads(switched.stdout[switched.stdout.index("{") :])
    published = summary["published"]
    assert published.startswith("timbre-clap-") and published.endswith("-002"), published
    assert summary["snapshot"]["name"]
    assert _files(data / "cache" / "mert") == mert_cache  # untouched by the clap job

    snap = data / "snapshots" / summary["snapshot"]["name"] / "manifest.json"
    manifest = json.loads(snap.read_text())
    assert manifest["model"]["family"] == "clap" and manifest["audio_key"]["family"] == "clap"
    assert manifest["model"]["clap"].startswith("timbre/random-tiny-clap@")

    found = _run(["search", "punchy kick", "--json"], clap)
    assert found.exit_code == 0, found.output
    hits = json.loads(found.stdout)["hits"]
    assert len(hits) == 5

    # A process still on clamp3 is refused by the live clap collection and its snapshot.
    refused = _run(["search", "punchy kick", "--json", "--kind", "one_shot"], clamp3)
    assert refused.exit_code != 0
    assert "clap model family" in refused.output and "models.family is clamp3" in refused.output

    embedded = _run(["embed", "--text", "kick", str(lib / "Drums" / "Kick 01.wav")], clap)
    assert embedded.exit_code == 0, embedded.output
    records = [json.loads(line) for line in embedded.stdout.splitlines()]
    assert [len(r["vector"]) for r in records] == [48, 48]
    assert all(r["pipeline_version"].startswith("clap-hf5/") for r in records)

    dupes = _run(["duplicates", "--json", "--min-cosine", "0.99"], clap)
    assert dupes.exit_code == 0, dupes.output
    relabel = _run(["relabel", "--dry-run"], clap)
    assert relabel.exit_code == 0, relabel.output

    # Both families side by side: one bundle folder for both, both collections graded.
    both = _both(tmp_path / "both", tiny_bundle, clap_bundle)
    graded = _run(["eval", "--json"], {**clap, "TIMBRE_MODELS__BUNDLE": str(both)})
    assert graded.exit_code == 0, graded.output
    assert "CHANCE LEVEL" in graded.stderr
    report = json.loads(graded.stdout)
    assert report["chance_level"] is True
    families = report["families"]
    assert set(families) == {"clamp3", "clap"}
    assert families["clap"]["live"] and not families["clamp3"]["live"]
    assert families["clap"]["collection"] == published
    for scores in families.values():
        assert scores["sounds"] == 5 and scores["labelled"] == 5 and scores["categories"] == 4
        assert 0.0 <= scores["text_map"] <= 1.0 and scores["random_weights"] is True
        per_category = scores["per_category"]
        assert len(per_category) == 4 and sum(c["sounds"] for c in per_category.values()) == 5
        assert all(c["text_r10"] in (0.0, 1.0) for c in per_category.values())
    table = _run(["eval"], {**clap, "TIMBRE_MODELS__BUNDLE": str(both)})
    assert "text->audio R@1" in table.stdout and "CHANCE LEVEL" in table.stdout
    assert "by category (sounds)" in table.stdout and "  kick (2)" in table.stdout

    from fastapi.testclient import TestClient

    from timbre.cli.wiring import build_app
    from timbre.settings import load_settings

    os.environ.update({k: v for k, v in clap.items() if k.startswith("TIMBRE_")})
    try:
        settings = load_settings()
    finally:
        for k in clap:
            if k.startswith("TIMBRE_") and "EXPORT" not in k:
                os.environ.pop(k, None)
    with TestClient(build_app(settings)) as client:
        stats = client.get("/v1/stats").json()
        assert stats["family"] == "clap" and stats["models"]["family"] == "clap"
        answer = client.post("/v1/search/text", json={"query": "kick", "top_k": 5})
        assert answer.status_code == 200, answer.text
        assert len(answer.json()["hits"]) == 5
        like = client.post(
            "/v1/search/audio", json={"path": str(lib / "Drums" / "Kick 01.wav"), "top_k": 2}
        )
        assert like.status_code == 200, like.text
        best = like.json()["hits"][0]  # the stored vector of the same file: cosine 1
        assert best["path"].endswith("Kick 01.wav") and best["score"] > 0.9999
