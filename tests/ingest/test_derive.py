"""ingest.derive on its own: which path and root give the facts, and where labels come in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from ingest.derive import Rederiver, primary, root_of
from ingest.metadata import MetadataRules
from ingest.options import Limits
from ingest.workers import prepare
from tests.support.audio_factory import hat
from tests.support.store_factory import model_info
from timbre.labels import Labeller
from timbre.labels.labeller import Label, LabelRules, Vocabulary
from timbre.settings import load_settings
from timbre.store.payload import build_payload

SHA = "ab" * 32


def test_the_outermost_root_and_the_first_path_sorted_give_the_facts() -> None:
    roots = ["/lib/KitB", "/lib", "/other"]
    assert root_of("/lib/KitB/x.wav", roots) == "/lib"
    assert root_of("/library/x.wav", roots) is None  # whole folder names only
    assert primary(["/other/b.wav", "/lib/KitB/a.wav"], roots) == ("/lib/KitB/a.wav", "/lib")


def _stored(tmp_path: Path, rules: MetadataRules, name: str) -> tuple[Path, dict[str, Any]]:
    """A file and the payload ingest gives it (labelled ``snare`` by its sound)."""
    path = tmp_path / "lib" / "Pack" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, hat(22050, 0.2), 22050)
    item = prepare(SHA, [(str(path), str(tmp_path / "lib"))], _LIMITS, rules, False)
    payload = build_payload(item.payload, content_sha256=SHA, paths=item.paths, model=model_info())
    payload["category"] = "snare"
    return path, payload


_LIMITS = Limits(24000, 600.0, 1 << 30)


def test_an_instrument_the_names_no_longer_give_comes_from_the_category(tmp_path: Path) -> None:
    rules = MetadataRules.from_settings(load_settings(data_dir=tmp_path / "data").ingest)
    labels = (
        Label("snare", "category", ("a snare",), "snare"),
        Label("pad", "category", ("a pad",)),
    )
    labeller = Labeller(
        Vocabulary(labels, "test"), np.eye(2, 4, dtype=np.float32), LabelRules(0, 0, 1, 3), "t"
    )
    rederiver = Rederiver(rules, (str(tmp_path / "lib"),), _LIMITS, labeller)
    path, payload = _stored(tmp_path, rules, "Kick_01.wav")
    assert (payload["instrument"], payload["instrument_source"]) == ("kick", "name")
    assert rederiver.changes(payload, full=False) == {}
    renamed = path.rename(path.with_name("Thing_01.wav"))
    moved = {**payload, "path": str(renamed), "paths": [str(renamed)]}
    changes = rederiver.changes(moved, full=True)
    assert (changes["instrument"], changes["instrument_source"]) == ("snare", "audio")
    # A path that cannot be read now (a drive away) keeps the facts as they are.
    gone = {**payload, "path": str(path), "paths": [str(path)], "pack": "Stale"}
    assert rederiver.changes(gone, full=True) == {}


def test_reanalyse_reads_the_names_below_the_root_as_ingest_does(tmp_path: Path) -> None:
    from ingest.reanalyse import reanalyse_payload
    from tests.support.audio_factory import tone

    root = tmp_path / "Loops" / "lib"  # a word about the kind above the library root
    path = root / "Pack" / "Texture.wav"
    path.parent.mkdir(parents=True)
    sf.write(path, tone(22050, 2.0), 22050)
    old = {"path": str(path), "paths": [str(path)], "duration_s": 2.0, "kind": None}
    rules = MetadataRules.from_settings(load_settings(data_dir=tmp_path / "data").ingest)
    below_root = reanalyse_payload(old, _LIMITS, rules=rules, roots=[root])
    assert below_root["kind"] == "one_shot"
    assert (below_root["pack"], below_root["kind_source"]) == ("Pack", "duration")
    # No root known: every folder above the file is read, and "Loops" states the kind.
    assert reanalyse_payload(old, _LIMITS, rules=rules)["kind"] == "loop"


def test_a_payload_ingest_did_not_describe_is_left_alone(tmp_path: Path) -> None:
    rules = MetadataRules.from_settings(load_settings(data_dir=tmp_path / "data").ingest)
    _, payload = _stored(tmp_path, rules, "Kick_01.wav")
    rederiver = Rederiver(rules, (str(tmp_path / "lib"),), _LIMITS)
    assert rederiver.changes({**payload, "duration_s": None, "pack": "x"}, full=True) == {}
    assert rederiver.changes({**payload, "sample_rate": "n/a", "pack": "x"}, full=True) == {}
    assert rederiver.changes({**payload, "pack": "x"}, full=True) == {"pack": "Pack"}
