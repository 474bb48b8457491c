"""``timbre ingest`` over a generated hostile library: nothing in it may crash the job.

Symlink loops of both kinds, a name that is not UTF-8, a FIFO, a folder it may not read,
zero-byte, truncated and NaN/inf files, lying extensions, a patch no decoder reads, and valid
extremes (8 channels, 192 kHz, 5 ms). The job must end with exit 1 and no traceback,
report every broken file and every skipped entry with its reason, index every valid file,
stream the non-UTF-8 one back over HTTP, and list all of it in a dry run. ``--prune`` must
keep what it could not read and forget only what is gone.

A 20-minute file is refused here by a 10-minute limit before it is decoded (MERT over 20
minutes costs ~100 CPU-seconds even with the tiny test model); the slow test below indexes it
at the default limit.

Folders are made unreadable with ``chmod 000``; as root the job runs without the capabilities
that override file permissions (``setpriv``), so the folder is unreadable for it too.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from tests.ingest.test_ingest_kill import _env
from tests.support.audio_factory import kick
from tests.support.ingest_helpers import ingest, job_settings, read_store
from timbre.store import point_id
from timbre.store.pathtext import path_text

NON_UTF8_NAME = b"Caf\xe9 Kick.wav"  # Latin-1, as copied from an old system
MAX_DURATION_S = 600  # the limit the default-tier test runs with
_NO_DAC = "-dac_override,-dac_read_search"


def _unprivileged() -> list[str]:
    """A command prefix under which ``chmod 000`` really denies reading."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: an unreadable folder cannot be made")
    return [setpriv, f"--inh-caps={_NO_DAC}", f"--bounding-set={_NO_DAC}"]


@dataclass
class Corpus:
    root: Path
    valid: list[Path] = field(default_factory=list)
    broken: dict[Path, str] = field(default_factory=dict)  # path -> failure code
    skipped: dict[Path, str] = field(default_factory=dict)  # path -> skip reason
    locked: Path | None = None  # a folder of valid files, made unreadable by the tests


def _drone(path: Path) -> Path:
    return _wav(path, np.zeros(20 * 60 * 2000, np.float32), 2000, "PCM_U8")


def _wav(path: Path, data: np.ndarray, sr: int, subtype: str = "PCM_16") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(os.fsencode(path), data, sr, subtype=subtype, format="WAV")  # bytes: any name
    return path


def make_corpus(root: Path) -> Corpus:
    c = Corpus(root)
    good = root / "Good"
    c.valid += [
        _wav(good / "Kick_Plain.wav", kick(44100, 0.5), 44100),
        _wav(good / "Kick_8ch.wav", np.stack([kick(48000, 0.3)] * 8, axis=1), 48000),
        _wav(good / "Kick_192k.wav", kick(192000, 0.2), 192000, "PCM_24"),
        _wav(good / "Click_5ms.wav", kick(44100, 0.005), 44100),
    ]
    latin = Path(os.fsdecode(os.fsencode(good) + b"/" + NON_UTF8_NAME))
    c.valid.append(_wav(latin, kick(44100, 0.4, pitch_hz=70.0), 44100))
    lying = good / "Kick_Really_Flac.mp3"  # a FLAC named .mp3: decoded by its content
    sf.write(lying, kick(44100, 0.3, pitch_hz=60.0), 44100, format="FLAC")
    c.valid.append(lying)

    bad = root / "Bad"
    # 20 minutes of silence at 2 kHz, 8-bit: 2.4 MB on disk; over the test's duration limit.
    c.broken[_drone(bad / "Drone_20min.wav")] = "too_long"
    (bad / "Empty.wav").write_bytes(b"")
    c.broken[bad / "Empty.wav"] = "empty"
    cut = _wav(bad / "Truncated.wav", kick(44100, 1.0), 44100)
    cut.write_bytes(cut.read_bytes()[:30000])
    c.broken[cut] = "truncated"
    x = kick(44100, 0.3)
    x[100], x[200] = np.nan, np.inf
    c.broken[_wav(bad / "NaN_Inf.wav", x, 44100, "FLOAT")] = "non_finite"
    (bad / "Readme.wav").write_text("not a sound\n" * 40)  # a text file named .wav
    c.broken[bad / "Readme.wav"] = "not_audio"

    odd = root / "Odd"
    odd.mkdir()
    (odd / "self").symlink_to("self")  # a link to itself
    (odd / "ping").symlink_to("pong")  # two links pointing at each other
    (odd / "pong").symlink_to("ping")
    (odd / "up").symlink_to("..")  # a link to a folder above it
    os.mkfifo(odd / "Pipe.wav")
    (odd / "Piano.pat").write_bytes(b"GF1PATCH110\x00ID#000002\x00" + bytes(200))
    (odd / "dangling.wav").symlink_to("nowhere.wav")
    c.skipped.update(
        {
            odd / "self": "symlink_loop",
            odd / "ping": "symlink_loop",
            odd / "pong": "symlink_loop",
            odd / "up": "symlink_loop",
            odd / "Pipe.wav": "special_file",
            odd / "Piano.pat": "unsupported_format",
            odd / "dangling.wav": "broken_symlink",
        }
    )
    c.locked = root / "Locked"
    c.valid.append(_wav(c.locked / "Hat_Locked.wav", kick(44100, 0.2, pitch_hz=90.0), 44100))
    return c


def _ingest(
    args: list[str], env: dict[str, str], prefix: list[str] | None = None
) -> tuple[int, dict[str, Any], str]:
    done = subprocess.run(
        [*(prefix or []), sys.executable, "-m", "timbre.cli", "ingest", "--json", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert "Traceback" not in done.stderr, done.stderr[-4000:]
    return done.returncode, json.loads(done.stdout), done.stderr


def _sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def _rows(report: str | None) -> list[dict[str, Any]]:
    assert report is not None
    return [json.loads(line) for line in Path(report).read_text(encoding="utf-8").splitlines()]


def test_a_hostile_library_is_indexed_reported_and_pruned_safely(
    tmp_path: Path, tiny_bundle: Path, audio_embedder: Any
) -> None:
    corpus = make_corpus(tmp_path / "Library")
    assert corpus.locked is not None
    data = tmp_path / "data"
    env = {**_env(tiny_bundle, data), "TIMBRE_AUDIO__MAX_DURATION_S": str(MAX_DURATION_S)}
    unprivileged = _unprivileged()
    text = {p: path_text(p) for p in [*corpus.valid, *corpus.broken, *corpus.skipped]}

    # 1. A dry run, with the locked folder unreadable, lists what would happen; writes nothing.
    corpus.locked.chmod(0)
    try:
        code, dry, _ = _ingest([str(corpus.root), "--dry-run"], env, unprivileged)
    finally:
        corpus.locked.chmod(0o755)
    assert code == 1  # a folder could not be read
    readable = [p for p in corpus.valid if corpus.locked not in p.parents]
    assert dry["would"]["embed"] == sorted(text[p] for p in [*readable, *corpus.broken])
    reasons = {row["path"]: row["reason"] for row in dry["skipped"]["entries"]}
    for path, reason in corpus.skipped.items():
        assert reasons[text[path]] == reason, path
    assert reasons[path_text(corpus.locked)] == "unreadable"
    assert not (data / "reports").exists() and not (data / "snapshots").exists()

    # 2. The real run: exit 1, every broken file and skipped entry reported, every valid file
    #    indexed (the non-UTF-8 name in its printable text form).
    code, summary, _ = _ingest([str(corpus.root)], env)
    assert code == 1
    failures = {row["path"]: row for row in _rows(summary["failures"]["report"])}
    assert set(failures) == {text[p] for p in corpus.broken}
    for path, error in corpus.broken.items():
        row = failures[text[path]]
        assert row["error_type"] == error and row["message"], row
    skipped = {row["path"]: row for row in _rows(summary["skipped"]["report"])}
    for path, reason in corpus.skipped.items():
        assert skipped[text[path]]["reason"] == reason and skipped[text[path]]["detail"]
    assert summary["skipped"]["by_reason"]["symlink_loop"] == 4
    settings = job_settings(tiny_bundle, data)
    points = read_store(settings, audio_embedder)
    assert len(points) == len(corpus.valid)
    for path in corpus.valid:
        assert points[point_id(_sha(path))][0]["paths"] == [text[path]]
    latin = next(p for p in corpus.valid if os.fsencode(p.name) == NON_UTF8_NAME)
    assert text[latin].endswith("Caf\\xe9 Kick.wav")
    # The snapshot's payloads (UTF-8 JSON) carry the text form too.
    current = (data / "snapshots" / "CURRENT").read_text().strip()
    lines = (data / "snapshots" / current / "payloads.jsonl").read_text("utf-8").splitlines()
    assert text[latin] in {json.loads(line)["path"] for line in lines}

    # 3. The service streams the non-UTF-8 file from its real bytes.
    from timbre.cli.wiring import build_app

    with TestClient(build_app(settings), raise_server_exceptions=False) as client:
        got = client.get(f"/v1/items/{point_id(_sha(latin))}/audio")
        assert got.status_code == 200, got.text
        assert got.content == latin.read_bytes()

    # 4. --prune with the locked folder unreadable and one file really deleted: the deleted
    #    one is forgotten, the unreadable one is kept and reported.
    gone = corpus.root / "Good" / "Kick_Plain.wav"
    gone_id = point_id(_sha(gone))
    gone.unlink()
    locked_file = corpus.locked / "Hat_Locked.wav"
    locked_id = point_id(_sha(locked_file))
    corpus.locked.chmod(0)
    try:
        code, pruned, _ = _ingest([str(corpus.root), "--prune"], env, unprivileged)
    finally:
        corpus.locked.chmod(0o755)
    assert code == 1
    assert pruned["counts"]["deleted_points"] == 1
    assert pruned["counts"]["kept_unreadable_paths"] >= 1
    assert text[locked_file] in {row["path"] for row in pruned["pruned"]["kept"]}
    points = read_store(settings, audio_embedder)
    assert gone_id not in points
    assert points[locked_id][0]["paths"] == [text[locked_file]]


@pytest.mark.slow
def test_a_twenty_minute_file_is_indexed_at_the_default_limit(
    tmp_path: Path, tiny_bundle: Path, audio_embedder: Any
) -> None:
    drone = _drone(tmp_path / "Library" / "Drone_20min.wav")
    settings = job_settings(tiny_bundle, tmp_path / "data")
    result = ingest(settings, audio_embedder, [drone.parent], snapshot=False)
    assert result.exit_code == 0, result.summary["failures"]
    payload = read_store(settings, audio_embedder)[point_id(_sha(drone))][0]
    assert payload["duration_s"] == pytest.approx(1200.0)
