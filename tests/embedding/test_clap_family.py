"""The clap family reproduces transformers' ClapProcessor + ClapModel on the same files.

The reference is transformers' own code on a tiny random checkpoint the test writes in the hub
layout: ``ClapProcessor`` (feature extractor + RoBERTa tokenizer) and
``ClapModel.get_audio_features`` / ``get_text_features``. Timbre's path shares none of its
preprocessing: its own decoder, resampler, window plan, log-mel and tokenizer wrapper.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import soxr
import torch

from tests.conftest import keep_export_dir
from tests.support.fake_hub import FakeHub, run_timbre
from timbre.audio.decode import decode_file
from timbre.embedding.clap_inputs import ClapPolicy, FrontEnd
from timbre.embedding.embedder import describe_models, load_audio_embedder, load_text_embedder
from timbre.embedding.files import MANIFEST_NAME, resolve_model_files
from timbre.errors import ModelFilesError
from timbre.settings import Settings

SR = 48_000
EXACT = 0.99999
RESAMPLED = 0.999


@pytest.fixture(scope="module")
def reference(clap_bundle: Path) -> Any:
    from transformers import ClapModel, ClapProcessor

    folder = clap_bundle / "clap"
    return ClapProcessor.from_pretrained(folder), ClapModel.from_pretrained(folder).eval()


RUNTIMES = ("onnxruntime", "torch")


def _models(settings: Settings, runtime: str) -> Any:
    return settings.models.model_copy(update={"runtime": runtime})


@pytest.fixture(scope="module")
def clap_audio(clap_settings: Settings) -> Any:
    """The default: ONNX Runtime on a CPU, once its export passed the agreement gate."""
    embedder = load_audio_embedder(clap_settings.models)
    assert embedder.runtime == "onnxruntime"
    return embedder


@pytest.fixture(scope="module")
def clap_text(clap_settings: Settings) -> Any:
    embedder = load_text_embedder(clap_settings.models)
    assert embedder.runtime == "onnxruntime"
    return embedder


@pytest.fixture(scope="module")
def torch_clap_audio(clap_settings: Settings) -> Any:
    return load_audio_embedder(_models(clap_settings, "torch"))


@pytest.fixture(scope="module")
def torch_clap_text(clap_settings: Settings) -> Any:
    return load_text_embedder(_models(clap_settings, "torch"))


@pytest.fixture(params=RUNTIMES)
def any_clap_audio(request: pytest.FixtureRequest) -> Any:
    name = "clap_audio" if request.param == "onnxruntime" else "torch_clap_audio"
    embedder = request.getfixturevalue(name)
    assert embedder.runtime == request.param
    return embedder


@pytest.fixture(params=RUNTIMES)
def any_clap_text(request: pytest.FixtureRequest) -> Any:
    name = "clap_text" if request.param == "onnxruntime" else "torch_clap_text"
    embedder = request.getfixturevalue(name)
    assert embedder.runtime == request.param
    return embedder


def _ref_audio(reference: Any, waves: list[np.ndarray]) -> np.ndarray:
    processor, model = reference
    np.random.seed(0)  # the reference crops clips over 10 s at random
    inputs = processor(audio=waves, sampling_rate=SR, return_tensors="pt")
    with torch.no_grad():
        return model.get_audio_features(**inputs).pooler_output.numpy()


def _ref_text(reference: Any, texts: list[str]) -> np.ndarray:
    processor, model = reference
    inputs = processor(text=texts, return_tensors="pt", padding=True)
    with torch.no_grad():
        return model.get_text_features(**inputs).pooler_output.numpy()


def _sound(seconds: float, rate: int, seed: int) -> np.ndarray:
    """A decaying tone with noise: different in every window, like a real hit or loop."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    tone = np.sin(2 * np.pi * (110 + 40 * seed) * t * (1 + 0.1 * t))
    wave = 0.5 * tone * np.exp(-t * 1.5) + 0.05 * rng.standard_normal(t.shape[0])
    return wave.astype(np.float32)


def _decode(path: Path, resampler: Any = "soxr_vhq") -> np.ndarray:
    """What ingest and the service hand the clap family for a file."""
    return decode_file(
        path, sample_rate=SR, max_duration_s=600, max_file_bytes=1 << 30, resampler=resampler
    ).samples


def test_48k_files_match_the_reference(tmp_path: Path, any_clap_audio: Any, reference: Any) -> None:
    clap_audio = any_clap_audio
    waves = []
    paths = []
    for i, seconds in enumerate((0.3, 1.0, 3.7, 9.99, 10.0)):
        path = tmp_path / f"clip{i}.wav"
        sf.write(path, _sound(seconds, SR, i), SR, subtype="FLOAT")
        paths.append(path)
        waves.append(sf.read(path, dtype="float32")[0])
    ours = clap_audio.embed([_decode(p) for p in paths])
    ref = _ref_audio(reference, waves)
    cosines = np.sum(ours * ref, axis=1)
    assert cosines.min() >= EXACT, cosines
    assert ours.shape == (5, clap_audio.dim)
    # Not trivially equal: two different clips are far apart under these random weights.
    assert float(ours[0] @ ours[3]) < 0.999


@pytest.mark.parametrize("rate", [44_100, 22_050])
def test_other_rates_match_the_reference_after_resampling(
    tmp_path: Path, rate: int, clap_audio: Any, reference: Any
) -> None:
    waves = [_sound(s, rate, 7 + i) for i, s in enumerate((0.3, 4.2))]
    paths = []
    for i, wave in enumerate(waves):
        paths.append(tmp_path / f"clip{i}.wav")
        sf.write(paths[-1], wave, rate, subtype="FLOAT")
    assert clap_audio.resampler == "soxr_vhq"
    ours = clap_audio.embed([_decode(p) for p in paths])
    resampled = [soxr.resample(w, rate, SR, quality="HQ").astype(np.float32) for w in waves]
    cosines = np.sum(ours * _ref_audio(reference, resampled), axis=1)
    assert cosines.min() >= RESAMPLED, cosines


def test_stereo_is_the_reference_on_the_channel_mean(
    tmp_path: Path, clap_audio: Any, reference: Any
) -> None:
    left, right = _sound(2.0, SR, 3), _sound(2.0, SR, 4)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), SR, subtype="FLOAT")
    (ours,) = clap_audio.embed([_decode(path)])
    (ref,) = _ref_audio(reference, [(left + right) / 2])
    assert float(ours @ ref) >= EXACT


def test_long_clips_average_evenly_spaced_full_windows(clap_audio: Any, reference: Any) -> None:
    t = np.arange(15 * SR) / SR
    square = (0.8 * np.sign(np.sin(2 * np.pi * 300 * t))).astype(np.float32)
    wave = np.concatenate([_sound(10.0, SR, 5), square])  # a hit, then a buzzing tail
    (ours,) = clap_audio.embed([wave])
    # 25 s: three full windows at 0, 7.5 and 15 s (the last ending at the end).
    starts = [0, int(7.5 * SR), 15 * SR]
    crops = [wave[s : s + 10 * SR] for s in starts]
    mean = _ref_audio(reference, crops).mean(axis=0)
    assert float(ours @ (mean / np.linalg.norm(mean))) >= EXACT
    # Deterministic (the reference's own answer for this clip moves with its random crop).
    assert np.array_equal(clap_audio.embed([wave])[0], ours)
    # The first window alone is a different vector: the rest of the loop counts.
    (first,) = _ref_audio(reference, crops[:1])
    assert float(ours @ first) < 0.9999


def test_first_window_policy_and_plain_padding(clap_bundle: Path) -> None:
    folder = clap_bundle / "clap"
    first = FrontEnd.load(folder, ClapPolicy(long_clip="first"))
    wave = _sound(25.0, SR, 5)
    (window,) = first.windows(wave)
    assert np.array_equal(window, wave[: 10 * SR].astype(np.float64))
    pad = FrontEnd.load(folder, ClapPolicy(short_clip="pad"))
    (padded,) = pad.windows(np.ones(SR // 2, np.float32))
    assert padded[: SR // 2].sum() == SR // 2 and not padded[SR // 2 :].any()
    repeat = FrontEnd.load(folder, ClapPolicy())
    (tiled,) = repeat.windows(np.ones(SR // 2, np.float32))
    assert tiled.sum() == 10 * SR  # 20 repeats fill the window exactly
    many = FrontEnd.load(folder, ClapPolicy(max_windows=3))
    assert len(many.windows(np.zeros(60 * SR, np.float32))) == 3


@pytest.fixture(scope="module")
def htsat_tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundle whose ``clap/`` has the audio encoder of ``laion/clap-htsat-unfused``."""
    from timbre.embedding.random_clap import write_random_clap

    target = tmp_path_factory.mktemp("htsat-tiny")
    write_random_clap(target, "tiny", seed=3, htsat_tiny=True)
    return target


def test_the_htsat_tiny_checkpoint_runs_from_its_own_sizes(
    htsat_tiny_bundle: Path, clap_settings: Settings
) -> None:
    """``laion/clap-htsat-unfused`` (HTSAT-tiny: 96-wide patches, depths 2-2-6-2) is the cheaper
    clap checkpoint: the family reads its sizes from its files and matches the reference, on
    both runtimes, with nothing configured but the bundle."""
    from transformers import ClapModel, ClapProcessor

    folder = htsat_tiny_bundle / "clap"
    assert json.loads((folder / "config.json").read_text())["audio_config"]["depths"] == [
        2,
        2,
        6,
        2,
    ]
    reference = ClapProcessor.from_pretrained(folder), ClapModel.from_pretrained(folder).eval()
    waves = [_sound(0.4, SR, 1), _sound(6.0, SR, 2)]
    ref = _ref_audio(reference, waves)
    for runtime in RUNTIMES:
        models = clap_settings.models.model_copy(
            update={"bundle": htsat_tiny_bundle, "runtime": runtime}
        )
        embedder = load_audio_embedder(models)
        assert embedder.runtime == runtime
        cosines = np.sum(embedder.embed(waves) * ref, axis=1)
        assert cosines.min() >= EXACT, (runtime, cosines)


def test_texts_match_the_reference(any_clap_text: Any, reference: Any) -> None:
    clap_text = any_clap_text
    texts = ["punchy techno kick", "warm atmospheric pad", "x", "シンセのリード", "a b " * 40]
    cosines = np.sum(clap_text.embed(texts) * _ref_text(reference, texts), axis=1)
    assert cosines.min() >= EXACT, cosines


def test_text_past_the_position_limit_is_truncated_keeping_the_end_token(
    any_clap_text: Any, reference: Any
) -> None:
    clap_text = any_clap_text
    processor, model = reference
    text = "kick " * 700  # ~700 tokens: the reference's encoder has positions for 512
    ids = processor.tokenizer(text)["input_ids"]
    assert len(ids) > 512
    kept = torch.tensor([[*ids[:511], ids[-1]]])
    with torch.no_grad():
        ref = model.get_text_features(input_ids=kept).pooler_output.numpy()[0]
    (ours,) = clap_text.embed([text])
    assert float(ours @ ref) >= EXACT


def test_identity_names_the_family_and_its_policies(clap_settings: Settings) -> None:
    info = describe_models(clap_settings.models)
    assert info.family == "clap" and info.dim == 48
    assert info.clap.startswith("timbre/random-tiny-clap@")
    assert info.pipeline_version.startswith("clap-hf5/repeatpad/mean18-v1/downmix/")
    assert info.audio_key()["family"] == "clap"
    first = clap_settings.models.model_copy(
        update={"clap": clap_settings.models.clap.model_copy(update={"long_clip": "first"})}
    )
    assert "/first-v1/" in describe_models(first).pipeline_version


def test_the_onnx_exports_passed_the_gate(
    clap_settings: Settings, clap_audio: Any, clap_text: Any
) -> None:
    from timbre.embedding import clap
    from timbre.embedding.onnx_backend import ExportCache

    files = resolve_model_files(clap_settings.models)
    cache = ExportCache(Path(clap_settings.models.export_dir))  # type: ignore[arg-type]
    for make in (clap.audio_spec, clap.text_spec):
        spec = make(clap_settings.models, files)
        manifest = json.loads(
            (cache.entry(spec.kind, spec.sources).directory / "manifest.json").read_text()
        )
        assert manifest["status"] == "ok", manifest
        assert manifest["agreement_min_cosine"] >= clap_settings.models.onnx_min_cosine
        assert manifest["fusions"].get("attention", 0) > 0  # ORT's fused kernels run


def test_clap_refuses_what_it_cannot_run(clap_settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(ModelFilesError, match="clap"):
        resolve_model_files(clap_settings.models.model_copy(update={"bundle": tmp_path}))


def test_families_share_one_bundle_folder(tmp_path: Path, clap_bundle: Path) -> None:
    """``timbre models random`` of both families into one folder: each keeps its files and its
    manifest entry, and each resolves on its own."""
    from typer.testing import CliRunner

    from timbre.cli import app

    target = tmp_path / "both"
    runner = CliRunner()
    for family in ("clap", "clamp3"):
        done = runner.invoke(app, ["models", "random", str(target), "--family", family])
        assert done.exit_code == 0, done.output
    files = sorted(p.name for p in (target / "clap").iterdir())
    assert files == [
        "config.json",
        "merges.txt",
        "model.safetensors",
        "preprocessor_config.json",
        "special_tokens_map.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "vocab.json",
    ]
    assert {p.name for p in target.iterdir()} >= {"mert", "xlmr", "clamp3", "clap"}
    manifest = json.loads((target / MANIFEST_NAME).read_text())
    assert set(manifest["sources"]) == {"mert", "xlmr", "clamp3", "clap"}
    assert manifest["sources"]["clap"]["random_weights"] is True
    # Same seed, same weights as the session's bundle: the writer is deterministic.
    assert (target / "clap" / "model.safetensors").read_bytes() == (
        clap_bundle / "clap" / "model.safetensors"
    ).read_bytes()


# -- the hub, through real huggingface_hub against a loopback stand-in ----------------------


CLAP_COMMIT = "ada0c23a36c4e8582805bb38fec3905903f18b41"
"""The commit ``config/default.yaml`` pins (the hub serves files by commit)."""


def test_the_clap_checkpoint_is_pinned_to_a_commit() -> None:
    from timbre.settings import load_settings

    clap = load_settings().models.clap
    assert (clap.repo, clap.revision) == ("laion/larger_clap_general", CLAP_COMMIT)


def _serve_clap(hub: FakeHub, clap_bundle: Path) -> None:
    hub.add_repo(
        "laion/larger_clap_general",
        {p.name: p for p in (clap_bundle / "clap").iterdir()},
        commit=CLAP_COMMIT,
    )


def _hub_env(hub: FakeHub, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TIMBRE_", "HF_"))}
    return {
        **keep_export_dir(env),
        "HF_ENDPOINT": hub.endpoint,
        "HF_HOME": str(home),
        "HF_HUB_DISABLE_XET": "1",
    }


HTSAT_TINY_OVERLAY = Path(__file__).resolve().parents[2] / "config" / "clap-htsat-tiny.yaml"
HTSAT_TINY_COMMIT = "8fa0f1c6d0433df6e97c127f64b2a1d6c0dcda8a"


def test_the_htsat_tiny_overlay_downloads_the_smaller_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, htsat_tiny_bundle: Path
) -> None:
    """``TIMBRE_CONFIG=config/clap-htsat-tiny.yaml`` switches the family and checkpoint and
    nothing else; the download takes the older repository's ``pytorch_model.bin``."""
    from timbre.settings import load_settings

    monkeypatch.setenv("TIMBRE_CONFIG", str(HTSAT_TINY_OVERLAY))
    models = load_settings().models
    assert (models.family, models.clap.repo, models.clap.revision) == (
        "clap",
        "laion/clap-htsat-unfused",
        HTSAT_TINY_COMMIT,
    )
    assert models.clap.short_clip == "repeatpad" and models.clap.max_windows == 18  # kept
    folder = shutil.copytree(htsat_tiny_bundle / "clap", tmp_path / "made")
    torch.save(dict(_state_dict(folder)), folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    target = tmp_path / "bundle"
    with FakeHub() as hub:
        hub.add_repo(
            "laion/clap-htsat-unfused",
            {p.name: p for p in folder.iterdir()},
            commit=HTSAT_TINY_COMMIT,
        )
        env = {
            **_hub_env(hub, tmp_path / "hf"),
            "TIMBRE_CONFIG": str(HTSAT_TINY_OVERLAY),
            "TIMBRE_MODELS__RUNTIME": "torch",  # the exports are the other test's
        }
        done = run_timbre(["models", "download", "--to", str(target)], env)
        assert done.returncode == 0, done.stderr
        assert any(
            f"/laion/clap-htsat-unfused/resolve/{HTSAT_TINY_COMMIT}/pytorch_model.bin" in r
            for r in hub.requests
        )
    manifest = json.loads((target / MANIFEST_NAME).read_text())
    assert manifest["sources"]["clap"]["repo"] == "laion/clap-htsat-unfused"
    assert manifest["sources"]["clap"]["revision"] == HTSAT_TINY_COMMIT
    embedder = load_audio_embedder(models.model_copy(update={"bundle": target, "runtime": "torch"}))
    assert embedder.embed([_sound(0.5, SR, 7)]).shape == (1, embedder.dim)


def _state_dict(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(folder / "model.safetensors")


def test_download_fetches_verifies_and_writes_the_clap_files(
    tmp_path: Path, clap_bundle: Path
) -> None:
    target = tmp_path / "bundle"
    with FakeHub() as hub:
        _serve_clap(hub, clap_bundle)
        env = _hub_env(hub, tmp_path / "hf")
        done = run_timbre(["models", "download", "--family", "clap", "--to", str(target)], env)
        assert done.returncode == 0, done.stderr
        assert "verified: clap" in done.stdout
        commit = hub.repos["laion/larger_clap_general"].commit
        # The pinned commit was asked for, not a branch.
        assert any(f"/laion/larger_clap_general/resolve/{commit}/" in r for r in hub.requests)
        # A corrupt file is refused: the hub announces another sha256 than the bytes have.
        hub.repos["laion/larger_clap_general"].announced_sha256["model.safetensors"] = "0" * 64
        refused = run_timbre(
            ["models", "download", "--family", "clap", "--to", str(tmp_path / "other")],
            _hub_env(hub, tmp_path / "hf2"),
        )
    assert refused.returncode == 2 and "differs" in refused.stderr
    manifest = json.loads((target / MANIFEST_NAME).read_text())
    clap = manifest["sources"]["clap"]
    assert clap["repo"] == "laion/larger_clap_general" and clap["revision"] == commit
    assert manifest["random_weights"] is False and set(manifest["sources"]) == {"clap"}
    for name, digest in clap["files"].items():
        assert hashlib.sha256((target / "clap" / name).read_bytes()).hexdigest() == digest
    assert set(clap["files"]) == {p.name for p in (clap_bundle / "clap").iterdir()}


def test_thresholds_are_kept_per_family(monkeypatch: pytest.MonkeyPatch) -> None:
    from timbre.cli.wiring import duplicate_rules
    from timbre.labels.vectors import rules_of
    from timbre.settings import load_settings

    monkeypatch.setenv("TIMBRE_DUPLICATES__FAMILY_MIN_COSINE__CLAP", "0.97")
    clamp3 = load_settings()
    clap = load_settings(models={"family": "clap"})
    assert rules_of(clamp3).tag_min_cosine == clamp3.labels.tag_min_cosine == 0.1
    assert rules_of(clap).tag_min_cosine == clap.labels.families["clap"].tag_min_cosine == 0.2
    assert duplicate_rules(clamp3).min_cosine == clamp3.duplicates.min_cosine == 0.998
    assert duplicate_rules(clap).min_cosine == 0.97  # the override reached the clap family only
