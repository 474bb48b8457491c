"""Kit exports through the HTTP API: SFZ, DecentSampler and hardware zips, parsed as a sampler
would read them, on the shared synthetic library (WAV, FLAC, AIFF, Ogg and MP3 files at 22.05
to 96 kHz, mono and stereo)."""

from __future__ import annotations

import io
import re
import stat
import uuid
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path
from typing import Any

import soundfile as sf
from fastapi.testclient import TestClient

from tests.support.api_fixtures import first_hit, ok, problem

PLAYER_SUFFIXES = (".wav", ".aif", ".aiff", ".flac")


def new_kit(client: TestClient, **body: Any) -> dict[str, Any]:
    body.setdefault("name", f"export {uuid.uuid4().hex[:8]}")
    body.setdefault("pads", 8)
    return ok(client.post("/v1/kits", json=body), 201)


def export(client: TestClient, name: str, **params: Any) -> tuple[zipfile.ZipFile, Any]:
    response = client.get(f"/v1/kits/{name}/export", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    assert "attachment" in response.headers["content-disposition"]
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert archive.testzip() is None
    for info in archive.infolist():
        assert not info.filename.startswith("/") and ".." not in info.filename.split("/")
        assert stat.S_ISLNK(info.external_attr >> 16) is False  # copies, never links
    return archive, response


def decodes(archive: zipfile.ZipFile, name: str) -> sf._SoundFileInfo:
    data = archive.read(name)
    samples, rate = sf.read(io.BytesIO(data))
    assert len(samples) > 0 and rate > 0
    return sf.info(io.BytesIO(data))


def originals(kit: dict[str, Any]) -> dict[int, Path]:
    return {p["index"]: Path(p["hit"]["path"]) for p in kit["pads"] if p["hit"]}


def test_sfz_maps_pad_n_to_note_35_plus_n_with_the_originals_copied(client: TestClient) -> None:
    kit = new_kit(client)
    archive, response = export(client, kit["name"], format="sfz")
    assert response.headers["x-timbre-missing"] == "0"
    folder = kit["name"]
    text = archive.read(f"{folder}/{folder}.sfz").decode()
    assert "default_path=samples/" in text and "loop_mode=one_shot" in text
    regions = re.findall(r"^<region> sample=(\S+) key=(\d+)$", text, re.MULTILINE)
    assert [int(k) for _, k in regions] == list(range(36, 44))
    sources = originals(kit)
    for pad, (sample, _) in enumerate(regions, 1):
        assert re.fullmatch(rf"{pad:02d}_[a-z0-9_]+\.(wav|aiff|aif|flac)", sample), sample
        decodes(archive, f"{folder}/samples/{sample}")
        source = sources[pad]
        if source.suffix.lower() in PLAYER_SUFFIXES:  # a format every player reads: as it is
            assert archive.read(f"{folder}/samples/{sample}") == source.read_bytes()
        else:
            assert sample.endswith(".wav")  # MP3 and Ogg become WAV
    assert f"{folder}/MISSING.txt" not in archive.namelist()


def test_decentsampler_preset_follows_the_documented_elements(client: TestClient) -> None:
    kit = new_kit(client, pads=16)
    archive, _ = export(client, kit["name"], format="decentsampler")
    folder = kit["name"]
    root = ET.fromstring(archive.read(f"{folder}/{folder}.dspreset"))
    assert root.tag == "DecentSampler"
    (groups,) = root.findall("groups")
    samples = [s for g in groups.findall("group") for s in g.findall("sample")]
    assert len(samples) == 16
    for pad, sample in enumerate(samples, 1):
        note = str(35 + pad)
        assert sample.get("rootNote") == sample.get("loNote") == sample.get("hiNote") == note
        path = sample.get("path") or ""
        assert path.startswith("Samples/")
        info = decodes(archive, f"{folder}/{path}")
        assert info.format in ("WAV", "AIFF", "FLAC")  # what DecentSampler reads


def test_hardware_export_is_16_bit_44k_wavs_with_short_ascii_names(client: TestClient) -> None:
    kit = new_kit(
        client, name=f"Ünïcode Kit ✨ {uuid.uuid4().hex[:4]}", slots=["Café crash", "closed hat"]
    )
    for mono in (False, True):
        archive, _ = export(client, kit["name"], format="hardware", mono=str(mono).lower())
        names = sorted(archive.namelist())
        folder = names[0].split("/")[0]
        assert re.fullmatch(r"UNICODE_KIT_[A-Z0-9_]+", folder) and len(folder) <= 16
        files = [n.split("/", 1)[1] for n in names]
        assert files[:2] == ["01_CAFECRASH.WAV", "02_CLOSEDHAT.WAV"]
        channels = set()
        for name, file in zip(names, files, strict=True):
            assert re.fullmatch(r"\d\d_[A-Z0-9]{1,9}\.WAV", file) and len(file) <= 16
            info = decodes(archive, name)
            assert (info.format, info.subtype, info.samplerate) == ("WAV", "PCM_16", 44100)
            channels.add(info.channels)
        assert channels == ({1} if mono else {1, 2})  # the library holds mono and stereo files


def test_a_deleted_file_is_listed_as_missing_and_the_rest_exported(
    client: TestClient, tmp_path: Path
) -> None:
    kit = new_kit(client)
    name = kit["name"]
    gone = Path(kit["pads"][2]["hit"]["path"])
    aside = tmp_path / "aside"
    gone.rename(aside)
    try:
        shown = ok(client.get(f"/v1/kits/{name}"))
        assert [p["missing"] for p in shown["pads"]] == [i == 2 for i in range(8)]
        for fmt in ("sfz", "decentsampler", "hardware"):
            archive, response = export(client, name, format=fmt)
            assert response.headers["x-timbre-missing"] == "1"
            note_name = next(n for n in archive.namelist() if n.endswith("/MISSING.txt"))
            note = archive.read(note_name).decode()
            assert "pad 3" in note and kit["pads"][2]["id"] in note
            audio = [
                n for n in archive.namelist() if n.lower().endswith((".wav", ".flac", ".aiff"))
            ]
            assert len(audio) == 7 and not any("/03_" in n for n in audio)
        text = export(client, name, format="sfz")[0].read(f"{name}/{name}.sfz").decode()
        assert "key=38" not in text and text.count("<region>") == 7
    finally:
        aside.rename(gone)
    assert ok(client.get(f"/v1/kits/{name}"))["pads"][2]["missing"] is False


def test_a_kit_whose_every_sample_is_gone_exports_only_the_note(
    client: TestClient, tmp_path: Path
) -> None:
    kit = new_kit(client, fill=False)
    name = kit["name"]
    hit = ok(client.post("/v1/search/text", json={"query": "clap", "top_k": 1}))["hits"][0]
    ok(client.put(f"/v1/kits/{name}/pads/1", json={"id": hit["id"]}))
    path = Path(hit["path"])
    aside = tmp_path / "aside"
    path.rename(aside)
    try:
        archive, response = export(client, name, format="decentsampler")
    finally:
        aside.rename(path)
    assert response.headers["x-timbre-missing"] == "1"
    assert sorted(n.rsplit("/", 1)[1] for n in archive.namelist()) == [
        "MISSING.txt",
        f"{name}.dspreset",
    ]
    root = ET.fromstring(archive.read(f"{name}/{name}.dspreset"))
    assert root.findall("groups/group/sample") == []


def test_export_refusals(client: TestClient) -> None:
    kit = new_kit(client)
    for params in ({"format": "mpc"}, {"mono": "perhaps"}, {"matched": "2"}):
        problem(
            client.get(f"/v1/kits/{kit['name']}/export", params=params), 422, "validation_error"
        )
    # a matched export needs the project the kit was made for
    body = problem(
        client.get(f"/v1/kits/{kit['name']}/export", params={"matched": "true"}), 409, "conflict"
    )
    assert "no project context" in body["detail"]


def test_a_matched_export_plays_each_loop_at_the_project_tempo(client: TestClient) -> None:
    kit = new_kit(client, slots=["kick"], context={"bpm": 124, "key": "Am"})
    name = kit["name"]
    loop = first_hit(client, "drum loop", kind="loop", instrument="drums", bpm="120-130")
    ok(client.put(f"/v1/kits/{name}/pads/2", json={"id": loop["id"]}))
    plain, _ = export(client, name, format="hardware")
    matched, response = export(client, name, format="hardware", matched="true")
    assert response.headers["x-timbre-missing"] == "0"
    folder = plain.namelist()[0].split("/")[0]
    for archive in (plain, matched):
        assert sorted(archive.namelist()) == sorted(plain.namelist())
    before = decodes(plain, f"{folder}/02_SNARE.WAV")
    after = decodes(matched, f"{folder}/02_SNARE.WAV")
    assert after.samplerate == 44100 and after.subtype == "PCM_16"
    # a loop at 122 or 128 BPM played at 124: longer or shorter by that ratio
    ratio = loop["bpm"] / 124
    assert abs(after.duration / before.duration - ratio) < 0.02, (after.duration, before.duration)
    # the kick (a one-shot: no tempo, no key) is the same in both
    assert plain.read(f"{folder}/01_KICK.WAV") == matched.read(f"{folder}/01_KICK.WAV")
