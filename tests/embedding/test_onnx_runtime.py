"""ONNX Runtime as the CPU default: export once, gate on agreement, any shape, no torch when warm.

The exports of the session's tiny bundle are made once (the ``audio_embedder`` and
``text_embedder`` fixtures); the fidelity, batching and reference tests run on both runtimes
(``any_audio_embedder``/``any_text_embedder`` in tests/conftest.py).
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from ingest.synthetic import make_library
from timbre.audio.windows import normalize
from timbre.embedding import clamp3_onnx, onnx_backend
from timbre.embedding.embedder import load_text_embedder
from timbre.embedding.files import resolve_model_files
from timbre.embedding.onnx_backend import DigestMemo, ExportCache
from timbre.errors import ConfigError
from timbre.fsutil import sha256_file
from timbre.settings import Settings

SR = 24000


def _entries(root: Path, kind: str) -> list[Path]:
    return sorted(p for p in root.glob(f"{kind}-*") if p.is_dir() and ".tmp-" not in p.name)


def test_cpu_default_is_onnxruntime_exported_from_the_loaded_checkpoint(
    settings: Settings, export_dir: Path, audio_embedder, text_embedder
) -> None:
    assert audio_embedder.runtime == text_embedder.runtime == "onnxruntime"
    ckpt = Path(settings.models.bundle) / "clamp3"  # type: ignore[arg-type]
    ckpt_sha = sha256_file(next(ckpt.glob("*.pth")))
    files = resolve_model_files(settings.models)
    cache = ExportCache(export_dir)  # shared by the session: other bundles have entries too
    for make in (clamp3_onnx.text_spec, clamp3_onnx.audio_tower_spec, clamp3_onnx.mert_spec):
        spec = make(settings.models, files)
        entry = cache.entry(spec.kind, spec.sources).directory
        manifest = json.loads((entry / "manifest.json").read_text())
        assert manifest["status"] == "ok"
        assert manifest["agreement_min_cosine"] >= settings.models.onnx_min_cosine
        assert manifest["key"]["runtime"].startswith("onnxruntime ")
        assert manifest["key"]["exporter"].startswith("torch 2.13.0")
        assert (entry / "model.onnx").is_file() and (entry / "model.onnx.data").is_file()
        assert not list(entry.glob("raw.onnx*"))  # the unfused graph is not kept
        # ONNX Runtime's fused kernels, not the exporter's decomposed attention and norms
        fusions = manifest["fusions"]
        assert fusions["skip_layer_normalization"] > 0 and fusions["bias_gelu"] > 0, fusions
        assert fusions.get("attention", 0) + fusions.get("sdpa_via_mha", 0) > 0, fusions
        ops = {
            n.op_type for n in onnx.load(entry / "model.onnx", load_external_data=False).graph.node
        }
        assert "SkipLayerNormalization" in ops and "Softmax" not in ops, sorted(ops)
        if spec.kind != "mert":
            assert ckpt_sha in manifest["key"]["sources"].values()


def test_any_length_runs_on_one_graph(
    audio_embedder, torch_audio_embedder, text_embedder, torch_text_embedder
) -> None:
    """Windows from a padded click to a full 5 s window, tower segments of 1-128 rows, text of
    3-128 tokens per segment: one graph with symbolic axes, matching eager everywhere."""
    for graph in (audio_embedder.mert.graph, audio_embedder.tower.graph, text_embedder.tower.graph):
        for value in graph.session.get_inputs():
            assert all(isinstance(d, str) for d in value.shape[:2]), value.shape  # dynamic
    rng = np.random.default_rng(5)
    windows = [
        normalize(rng.standard_normal(n).astype(np.float32))
        for n in (2400, 2401, 7777, 24000, 50001, 119999, 120000)
    ]
    ort_w = audio_embedder.mert.window_vectors(windows, 4)
    ref_w = torch_audio_embedder.mert.window_vectors(windows, 4)
    assert np.abs(ort_w - ref_w).max() < 1e-5 * np.abs(ref_w).max()
    feats = [rng.standard_normal((n, 128)).astype(np.float32) for n in (1, 2, 63, 126, 127, 200)]
    np.testing.assert_allclose(
        audio_embedder.embed_features(feats), torch_audio_embedder.embed_features(feats), atol=1e-6
    )
    texts = [" ".join(["a"] * n) for n in (1, 10, 60, 126, 127, 300)]  # n + 2 tokens
    lengths = [len(text_embedder.tower.tokens.token_ids(t)) for t in texts]
    assert lengths == [3, 12, 62, 128, 129, 302]
    np.testing.assert_allclose(
        text_embedder.embed(texts), torch_text_embedder.embed(texts), atol=1e-6
    )


def test_runtime_choice(settings: Settings) -> None:
    models = settings.models
    auto = onnx_backend.choose_runtime
    assert auto(models, "text") == auto(models, "audio") == "onnxruntime"  # no GPU here
    assert auto(models.model_copy(update={"runtime": "torch"}), "audio") == "torch"
    forced = models.model_copy(update={"runtime": "onnxruntime"})
    with pytest.raises(ConfigError, match="runs on the CPU only"):
        auto(forced.model_copy(update={"device": "cuda"}), "text")


def test_a_refused_export_runs_torch_and_is_not_retried(
    settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A gate no graph can pass (cosine exactly 1): eager runs, the verdict is kept, the
    gigabytes are not, and the next start does not export again."""
    strict = settings.models.model_copy(
        update={"onnx_min_cosine": 1.0, "export_dir": tmp_path / "onnx"}
    )
    with caplog.at_level(logging.WARNING):
        first = load_text_embedder(strict)
    assert first.runtime == "torch"
    assert "agrees with PyTorch eager only to cosine" in caplog.text
    (entry,) = _entries(tmp_path / "onnx", "text")
    manifest = json.loads((entry / "manifest.json").read_text())
    assert manifest["status"] == "refused" and manifest["agreement_min_cosine"] < 1.0
    assert not list(entry.glob("model.onnx*"))
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        again = load_text_embedder(strict)
    assert again.runtime == "torch"
    assert "its ONNX export was refused" in caplog.text
    assert _entries(tmp_path / "onnx", "text") == [entry]


def test_an_interpreter_error_in_the_export_is_retried_once(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A SystemError is CPython failing (seen once: its AST counter raced another thread), not
    the model: one more try, rather than a refusal cached for good."""
    from timbre.embedding import clamp3_torch

    real, calls = clamp3_torch.TextTower.export, []

    def flaky(tower: object, target: Path) -> Path:
        calls.append(target)
        if len(calls) == 1:
            raise SystemError("AST constructor recursion depth mismatch (before=60, after=178)")
        return real(tower, target)  # type: ignore[arg-type]

    monkeypatch.setattr(clamp3_torch.TextTower, "export", flaky)
    fresh = settings.models.model_copy(update={"export_dir": tmp_path / "onnx"})
    assert load_text_embedder(fresh).runtime == "onnxruntime"
    assert len(calls) == 2
    (entry,) = _entries(tmp_path / "onnx", "text")
    assert json.loads((entry / "manifest.json").read_text())["status"] == "ok"


def test_a_cached_graph_is_checked_against_its_recorded_eager_outputs(
    settings: Settings, export_dir: Path, tmp_path: Path, text_embedder
) -> None:
    copy = tmp_path / "onnx"
    shutil.copytree(export_dir, copy)
    models = settings.models.model_copy(update={"export_dir": copy})
    files = resolve_model_files(models, ("xlmr", "clamp3"))
    spec = clamp3_onnx.text_spec(models, files)
    entry = ExportCache(copy).entry(spec.kind, spec.sources)
    assert onnx_backend._warm(entry, spec, 0.99999) is not None
    probes = entry.probes()
    np.savez(entry.directory / "probes.npz", reload_expected=-probes["reload_expected"])
    assert onnx_backend._warm(entry, spec, 0.99999) is None  # load() makes it again


def test_digests_are_memoised_until_the_file_changes(tmp_path: Path) -> None:
    memo = DigestMemo(tmp_path / "memo.json")
    f = tmp_path / "weights.bin"
    f.write_bytes(b"a" * 1000)
    first = memo.sha256(f)
    assert memo.sha256(f) == first == sha256_file(f)
    assert json.loads((tmp_path / "memo.json").read_text())[str(f.resolve())]["sha256"] == first
    f.write_bytes(b"b" * 1000)  # same size, new content and modification time
    assert memo.sha256(f) == sha256_file(f) != first


WARM_SCRIPT = """
import json, sys, warnings
warnings.simplefilter("ignore")
from pathlib import Path
import numpy as np
from app.schemas import IngestIn
from timbre.cli.wiring import build_service, ingest_runner
from timbre.settings import load_settings

data, bundle, library = sys.argv[1:4]
settings = load_settings(
    data_dir=data, models={"bundle": bundle, "threads": 1}, api={"library_roots": [library]}
)
service = build_service(settings)
text = service.text_vector("warm pad")
summary, code = ingest_runner(settings, service.library)(
    IngestIn(paths=[library], profile="sequential"), lambda counts: None
)
audio = service.library.audio.get().embed([np.sin(np.arange(9000, dtype=np.float32) / 9)])
print(json.dumps({
    "modules": sorted(m for m in ("torch", "transformers", "onnxscript") if m in sys.modules),
    "runtime": service.stats()["runtime"],
    "indexed": summary["counts"]["indexed"],
    "failed": summary["counts"]["failed"],
    "text_norm": float(np.linalg.norm(text)),
    "audio_norm": float(np.linalg.norm(audio)),
}))
"""


def test_warm_service_and_ingest_never_import_torch(
    tiny_bundle: Path, tmp_path: Path, audio_embedder, text_embedder
) -> None:
    """With the exports cached (by the fixtures), a process serves text and audio queries and
    runs an ingest job on onnxruntime, numpy and tokenizers alone."""
    library = make_library(tmp_path / "lib", one_shots_per_pack=2, loops_per_pack=1, broken=False)
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            WARM_SCRIPT,
            str(tmp_path / "data"),
            str(tiny_bundle),
            str(library.root),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["modules"] == [], out
    assert out["runtime"] == {"text": "onnxruntime", "audio": "onnxruntime"}
    assert out["indexed"] > 0 and out["failed"] == 0
    assert abs(out["text_norm"] - 1) < 1e-5 and abs(out["audio_norm"] - 1) < 1e-5


def test_probe_clips_cover_each_window_rule() -> None:
    """The MERT gate's probes span a one-shot, a click-length hit, full and partial windows."""
    from timbre.audio.windows import prepare_windows
    from timbre.embedding.family import probe_waveforms

    lengths = [w.shape[0] for x in probe_waveforms(SR) for w in prepare_windows(x, SR)]
    assert 5 * SR in lengths and any(n < SR for n in lengths)
    assert any(SR <= n < 5 * SR for n in lengths)
