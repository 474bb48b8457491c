"""Loading the official file formats, refusing wrong ones, and fetching from a (fake) hub."""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import keep_export_dir
from tests.support.audio_factory import chord_loop, kick
from tests.support.fake_hub import FakeHub, run_timbre
from timbre.embedding.clamp3_torch import MertEncoder
from timbre.embedding.embedder import load_audio_embedder, load_text_embedder
from timbre.embedding.files import (
    MANIFEST_NAME,
    RandomWeightsWarning,
    read_manifest,
    resolve_model_files,
)
from timbre.embedding.random_bundle import (
    CLAMP3_SAAS_FILENAME,
    DIMS,
    _write_mert,
    write_random_bundle,
)
from timbre.errors import ModelFilesError
from timbre.settings import Settings

SR = 24000


def _copy_bundle(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _models(settings: Settings, bundle: Path, **update: str):  # type: ignore[no-untyped-def]
    return settings.models.model_copy(update={"bundle": bundle, **update})


def test_mert_file_uses_legacy_weight_norm_names_and_loads_them(tiny_bundle: Path) -> None:
    state = torch.load(tiny_bundle / "mert" / "pytorch_model.bin", weights_only=True)
    g = state["encoder.pos_conv_embed.conv.weight_g"]
    v = state["encoder.pos_conv_embed.conv.weight_v"]
    assert not any("parametrizations" in k for k in state)
    mert = MertEncoder.load(tiny_bundle / "mert", torch.device("cpu"))
    conv = mert.model.encoder.pos_conv_embed.conv
    # weight = g * v / ||v||, the norm taken per kernel tap (dim=2) as weight_norm(dim=2) does.
    expected = g * v / v.norm(dim=(0, 1), keepdim=True)
    torch.testing.assert_close(conv.weight, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(conv.parametrizations.weight.original0, g)


def test_mert_config_is_the_official_mert_model_type(tiny_bundle: Path) -> None:
    config = json.loads((tiny_bundle / "mert" / "config.json").read_text())
    assert config["model_type"] == "mert_model"
    assert config["architectures"] == ["MERTModel"]


def test_safetensors_mert_gives_the_same_vectors(
    tmp_path: Path, settings: Settings, audio_embedder
) -> None:
    bundle = write_random_bundle(tmp_path / "st", "tiny", seed=0, safetensors=True)
    assert (bundle / "mert" / "model.safetensors").is_file()
    assert not (bundle / "mert" / "pytorch_model.bin").exists()
    # On PyTorch: a file-format test, and the other MERT file would cost an ONNX export.
    other = load_audio_embedder(_models(settings, bundle, runtime="torch"))
    clips = [kick(SR), chord_loop(SR, 6.0)]
    np.testing.assert_allclose(other.embed(clips), audio_embedder.embed(clips), atol=1e-6)


def test_checkpoint_is_loaded_strictly_on_the_used_prefixes(
    tmp_path: Path, settings: Settings
) -> None:
    bundle = _copy_bundle(settings.models.bundle, tmp_path / "b")  # type: ignore[arg-type]
    ckpt_path = bundle / "clamp3" / CLAMP3_SAAS_FILENAME
    ckpt = torch.load(ckpt_path, weights_only=True)
    del ckpt["model"]["audio_model.encoder.layer.0.output.dense.bias"]
    torch.save(ckpt, ckpt_path)
    with pytest.raises(ModelFilesError) as info:
        load_audio_embedder(_models(settings, bundle))
    assert CLAMP3_SAAS_FILENAME in str(info.value)
    assert "encoder.layer.0.output.dense.bias" in str(info.value)


def test_unexpected_key_in_a_used_prefix_is_refused(tmp_path: Path, settings: Settings) -> None:
    bundle = _copy_bundle(settings.models.bundle, tmp_path / "b")  # type: ignore[arg-type]
    ckpt_path = bundle / "clamp3" / CLAMP3_SAAS_FILENAME
    ckpt = torch.load(ckpt_path, weights_only=True)
    ckpt["model"]["text_model.encoder.extra.weight"] = torch.zeros(3)
    torch.save(ckpt, ckpt_path)
    with pytest.raises(ModelFilesError, match=r"extra\.weight"):
        load_text_embedder(_models(settings, bundle))


def test_symbolic_branch_is_ignored(tmp_path: Path, settings: Settings, audio_embedder) -> None:
    bundle = _copy_bundle(settings.models.bundle, tmp_path / "b")  # type: ignore[arg-type]
    ckpt_path = bundle / "clamp3" / CLAMP3_SAAS_FILENAME
    ckpt = torch.load(ckpt_path, weights_only=True)
    assert any(k.startswith("symbolic_model.") for k in ckpt["model"])
    for key in [k for k in ckpt["model"] if k.startswith("symbolic")]:
        ckpt["model"][key] = torch.zeros(1)  # wrong shapes everywhere in the unused branch
    torch.save(ckpt, ckpt_path)
    other = load_audio_embedder(_models(settings, bundle, runtime="torch"))  # as above
    np.testing.assert_allclose(other.embed([kick(SR)]), audio_embedder.embed([kick(SR)]), atol=1e-6)


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"PK\x03\x04 not really a zip", "not a readable checkpoint"),
        (b"<html>rate limited</html>", "not a readable checkpoint"),
    ],
)
def test_a_wrong_checkpoint_file_names_itself(
    tmp_path: Path, settings: Settings, content: bytes, needle: str
) -> None:
    bundle = _copy_bundle(settings.models.bundle, tmp_path / "b")  # type: ignore[arg-type]
    (bundle / "clamp3" / CLAMP3_SAAS_FILENAME).write_bytes(content)
    with pytest.raises(ModelFilesError) as info:
        load_audio_embedder(_models(settings, bundle))
    assert needle in str(info.value) and CLAMP3_SAAS_FILENAME in str(info.value)


def test_a_bare_state_dict_is_not_a_clamp3_checkpoint(tmp_path: Path, settings: Settings) -> None:
    bundle = _copy_bundle(settings.models.bundle, tmp_path / "b")  # type: ignore[arg-type]
    path = bundle / "clamp3" / CLAMP3_SAAS_FILENAME
    torch.save(torch.load(path, weights_only=True)["model"], path)
    with pytest.raises(ModelFilesError, match="'model' state dict"):
        load_audio_embedder(_models(settings, bundle))


@pytest.mark.parametrize(
    ("relative", "needle"),
    [
        ("mert/config.json", "MERT-v1-95M config.json"),
        ("mert/pytorch_model.bin", "pytorch_model.bin"),
        (f"clamp3/{CLAMP3_SAAS_FILENAME}", "CLaMP3 SAAS checkpoint"),
        ("xlmr/tokenizer.json", "tokenizer.json"),
    ],
)
def test_missing_files_name_the_file_and_the_fix(
    tmp_path: Path, settings: Settings, relative: str, needle: str
) -> None:
    bundle = _copy_bundle(settings.models.bundle, tmp_path / "b")  # type: ignore[arg-type]
    (bundle / relative).unlink()
    with pytest.raises(ModelFilesError) as info:
        resolve_model_files(_models(settings, bundle))
    message = str(info.value)
    assert needle in message and "timbre models download" in message


def test_missing_bundle_folder(tmp_path: Path, settings: Settings) -> None:
    with pytest.raises(ModelFilesError, match="does not exist"):
        resolve_model_files(_models(settings, tmp_path / "nowhere"))


def test_mert_and_clamp3_that_do_not_belong_together(tmp_path: Path, settings: Settings) -> None:
    bundle = _copy_bundle(settings.models.bundle, tmp_path / "b")  # type: ignore[arg-type]
    shutil.rmtree(bundle / "mert")
    narrow = DIMS["tiny"].__class__(**{**DIMS["tiny"].__dict__, "mert_hidden": 64, "mert_heads": 1})
    _write_mert(bundle / "mert", narrow, safetensors=False)
    with pytest.raises(ModelFilesError, match="do not belong together"):
        load_audio_embedder(_models(settings, bundle))


def test_unsupported_mert_variant(tmp_path: Path, settings: Settings) -> None:
    bundle = _copy_bundle(settings.models.bundle, tmp_path / "b")  # type: ignore[arg-type]
    config_path = bundle / "mert" / "config.json"
    config = json.loads(config_path.read_text())
    config["feature_extractor_cqt"] = True
    config_path.write_text(json.dumps(config))
    with pytest.raises(ModelFilesError, match="feature_extractor_cqt"):
        load_audio_embedder(_models(settings, bundle))


def test_random_bundles_say_so_loudly(settings: Settings) -> None:
    assert read_manifest(settings.models.bundle)["random_weights"] is True  # type: ignore[arg-type,index]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        files = resolve_model_files(settings.models)
    assert files.random_weights
    assert any(
        issubclass(w.category, RandomWeightsWarning) and "meaningless" in str(w.message)
        for w in caught
    )


def test_dimensions_come_from_the_files(audio_embedder, text_embedder) -> None:
    tiny = DIMS["tiny"]
    assert audio_embedder.dim == text_embedder.dim == tiny.joint
    assert audio_embedder.mert.hidden_size == tiny.mert_hidden
    assert audio_embedder.tower.segment_rows == 128


# -- the hub, through real huggingface_hub against a loopback stand-in ----------------------

REPOS = {
    "mert": "m-a-p/MERT-v1-95M",
    "xlmr": "FacebookAI/xlm-roberta-base",
    "clamp3": "sander-wood/clamp3",
}
COMMITS = {
    "mert": "12af15fef9d0ac838c3f475bfbbf26d2060dd4f5",
    "xlmr": "e73636d4f797dec63c3081bb6ed5c7b0bb3f2089",
    "clamp3": "355625cc1c6f73726bbcd0eb9276ac7152d56426",
}
"""The commits ``config/default.yaml`` pins (the hub serves files by commit)."""


def _serve_bundle(hub: FakeHub, bundle: Path) -> None:
    hub.add_repo(
        REPOS["mert"],
        {n: bundle / "mert" / n for n in ("config.json", "pytorch_model.bin")},
        commit=COMMITS["mert"],
    )
    hub.add_repo(
        REPOS["xlmr"],
        {
            n: bundle / "xlmr" / n
            for n in ("config.json", "tokenizer.json", "tokenizer_config.json")
        },
        commit=COMMITS["xlmr"],
    )
    hub.add_repo(
        REPOS["clamp3"],
        {CLAMP3_SAAS_FILENAME: bundle / "clamp3" / CLAMP3_SAAS_FILENAME},
        commit=COMMITS["clamp3"],
    )


def _hub_env(hub: FakeHub, home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TIMBRE_", "HF_"))}
    return {
        **keep_export_dir(env),
        "HF_ENDPOINT": hub.endpoint,
        "HF_HOME": str(home),
        "HF_HUB_DISABLE_XET": "1",
        **extra,
    }


def test_download_fetches_verifies_and_writes_a_bundle(tmp_path: Path, tiny_bundle: Path) -> None:
    with FakeHub() as hub:
        _serve_bundle(hub, tiny_bundle)
        env = _hub_env(hub, tmp_path / "hf")
        done = run_timbre(["models", "download", "--to", str(tmp_path / "bundle")], env)
        assert done.returncode == 0, done.stderr
        assert "verified" in done.stdout
        # The configured revisions were asked for: each part by its pinned commit.
        for part, repo in REPOS.items():
            assert any(f"/{repo}/resolve/{COMMITS[part]}/" in r for r in hub.requests), part
    manifest = json.loads((tmp_path / "bundle" / MANIFEST_NAME).read_text())
    assert manifest["random_weights"] is False
    mert = manifest["sources"]["mert"]
    assert mert["revision"] == COMMITS["mert"]
    import hashlib

    digest = hashlib.sha256((tiny_bundle / "mert" / "pytorch_model.bin").read_bytes()).hexdigest()
    assert mert["files"]["pytorch_model.bin"] == digest
    assert (tmp_path / "bundle" / "clamp3" / CLAMP3_SAAS_FILENAME).is_file()


def test_a_branch_revision_is_recorded_as_the_commit_it_resolved_to(
    tmp_path: Path, tiny_bundle: Path
) -> None:
    with FakeHub() as hub:
        _serve_bundle(hub, tiny_bundle)
        hub.repos[REPOS["mert"]].commit = "f" * 40  # the branch's head today
        env = _hub_env(hub, tmp_path / "hf", TIMBRE_MODELS__MERT__REVISION="main")
        done = run_timbre(["models", "download", "--to", str(tmp_path / "bundle")], env)
        assert done.returncode == 0, done.stderr
        assert any(f"/{REPOS['mert']}/resolve/main/" in r for r in hub.requests)
    manifest = json.loads((tmp_path / "bundle" / MANIFEST_NAME).read_text())
    assert manifest["sources"]["mert"]["revision"] == "f" * 40  # not "main"


def test_download_refuses_a_file_that_does_not_match_the_hub_hash(
    tmp_path: Path, tiny_bundle: Path
) -> None:
    with FakeHub() as hub:
        _serve_bundle(hub, tiny_bundle)
        hub.repos[REPOS["clamp3"]].announced_sha256[CLAMP3_SAAS_FILENAME] = "0" * 64
        done = run_timbre(
            ["models", "download", "--to", str(tmp_path / "bundle")], _hub_env(hub, tmp_path / "hf")
        )
    assert done.returncode == 2
    assert "sha256" in done.stderr and "differs" in done.stderr


def test_offline_mode_uses_the_cache_and_explains_a_miss(tmp_path: Path, tiny_bundle: Path) -> None:
    text = ["embed", "--text", "punchy kick"]
    with FakeHub() as hub:
        _serve_bundle(hub, tiny_bundle)
        offline = _hub_env(hub, tmp_path / "hf", HF_HUB_OFFLINE="1")
        missed = run_timbre(text, offline)
        assert missed.returncode == 2
        assert (
            "not in the local hub cache" in missed.stderr
            and "timbre models download" in missed.stderr
        )
        assert run_timbre(["models", "download"], _hub_env(hub, tmp_path / "hf")).returncode == 0
        before = len(hub.requests)
        cached = run_timbre(text, offline)
        assert cached.returncode == 0, cached.stderr
        assert len(hub.requests) == before  # offline: the hub was not contacted
    record = json.loads(cached.stdout.splitlines()[0])
    assert record["kind"] == "text" and len(record["vector"]) == DIMS["tiny"].joint
