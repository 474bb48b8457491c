"""A kit as a zip for a sampler: SFZ, DecentSampler, or a hardware-safe folder of WAVs.

Every format puts pad ``n`` on MIDI note ``35 + n`` (pad 1 = 36, the General MIDI kick), copies
the originals in (never links), and uses relative paths only. Files are opened as the
collection export opens them: inside the library roots and still holding the indexed content;
what cannot be included (a pad's sample deleted or changed since it was indexed, no longer
indexed, or undecodable) is listed in ``MISSING.txt``. Zips are stored, not deflated, and
streamed while they are written.

- ``sfz``: ``<kit>.sfz`` with one ``<region>`` per pad (``key=36``...) and ``samples/``;
- ``decentsampler``: ``<kit>.dspreset`` (one ``<group>`` per pad, one ``<sample>`` with
  ``rootNote``/``loNote``/``hiNote``) and ``Samples/``. Both players read WAV, AIFF and FLAC:
  those are copied as they are, other formats (MP3, Ogg...) become WAV;
- ``hardware``: ``01_KICK.WAV``...: 16-bit, 44.1 kHz WAVs, names of at most 16 ASCII characters
  (two digits, ``_``, up to 9 letters or digits of the slot, ``.WAV``).

``mono`` mixes every sample down to one channel (as a WAV). ``matched`` takes each pad's
rendition at the project's tempo and key from a ``matched`` source (a function of the item id,
``bpm`` and ``semitones``), for pads that need matching.
"""

from __future__ import annotations

import io
import os
import re
import unicodedata
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Literal

import numpy as np
import soundfile as sf

from timbre.audio.resample import resample
from timbre.errors import (
    ConflictError,
    ContentChangedError,
    ForbiddenPathError,
    InvalidRequestError,
    NotFoundError,
    TimbreError,
)
from timbre.search.collections import (
    MISSING_NOTE,
    MatchedSource,
    _Sink,
    match_for,
    safe_name,
    zip_time,
)
from timbre.search.kit_slots import FIRST_NOTE, context_of
from timbre.search.kits import KitsService

ExportFormat = Literal["sfz", "decentsampler", "hardware"]
FORMATS: tuple[ExportFormat, ...] = ("sfz", "decentsampler", "hardware")
HARDWARE_RATE = 44100
HARDWARE_SLOT_CHARS = 9
"""Letters of the slot in a hardware name: ``01_`` + 9 + ``.WAV`` = 16 characters at most."""
PLAYER_SUFFIXES = frozenset({".wav", ".aif", ".aiff", ".flac"})
"""Formats both SFZ players and DecentSampler read: copied as they are."""
_COPY_CHUNK_BYTES = 1 << 20
_NOT_WORD = re.compile(r"[^a-z0-9]+")


def ascii_words(text: str) -> list[str]:
    """The words of ``text`` in lower-case ASCII (accents dropped: ``Café`` -> ``cafe``)."""
    flat = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return [w for w in _NOT_WORD.split(flat) if w]


def hardware_name(index: int, slot: str) -> str:
    """``01_KICK.WAV``, ``03_CLOSEDHAT.WAV``: at most 16 ASCII characters."""
    word = "".join(ascii_words(slot)).upper()[:HARDWARE_SLOT_CHARS] or "PAD"
    return f"{index:02d}_{word}.WAV"


def plugin_name(index: int, slot: str, suffix: str) -> str:
    """``01_kick.wav``, ``03_closed_hat.flac``: ASCII, so every player reads the path."""
    return f"{index:02d}_{'_'.join(ascii_words(slot))[:32] or 'pad'}{suffix}"


@dataclass
class KitEntry:
    """One pad's file in the export: where it comes from and its name in the samples folder;
    ``convert`` to WAV; ``match`` = (bpm, semitones) of the rendition wanted, or None."""

    pad: int
    slot: str
    id: str
    source: Path
    sha256: str
    name: str
    convert: bool
    match: tuple[float | None, int] | None = None

    @property
    def note(self) -> int:
        return FIRST_NOTE + self.pad - 1


@dataclass
class KitExportPlan:
    """What an export holds; ``missing`` (pad, id, why) grows as the zip is written."""

    kit: str
    format: ExportFormat
    folder: str
    entries: list[KitEntry]
    missing: list[tuple[int, str, str]]
    mono: bool = False
    written: list[KitEntry] = field(default_factory=list)

    @property
    def samples_dir(self) -> str:
        return {"sfz": "samples/", "decentsampler": "Samples/", "hardware": ""}[self.format]

    def note(self) -> str | None:
        if not self.missing:
            return None
        lines = [f"{len(self.missing)} pad(s) of kit {self.kit!r} are not in this export:", ""]
        lines += [f"pad {pad} ({item_id}): {why}" for pad, item_id, why in self.missing]
        return "\n".join(lines) + "\n"


def sfz_text(plan: KitExportPlan) -> str:
    lines = [
        f"// {plan.kit}: a drum kit exported by Timbre",
        f"// pad n plays on MIDI note {FIRST_NOTE - 1} + n (pad 1 = {FIRST_NOTE}, the GM kick)",
        "<control>",
        f"default_path={plan.samples_dir}",
        "<global>",
        "loop_mode=one_shot",
    ]
    for entry in plan.written:
        lines.append(f"// pad {entry.pad}: {' '.join(ascii_words(entry.slot))}")
        lines.append(f"<region> sample={entry.name} key={entry.note}")
    return "\n".join(lines) + "\n"


def dspreset_text(plan: KitExportPlan) -> bytes:
    root = ET.Element("DecentSampler", minVersion="1.0.0")
    groups = ET.SubElement(root, "groups")
    for entry in plan.written:
        group = ET.SubElement(groups, "group", name=f"{entry.pad:02d} {entry.slot}")
        note = str(entry.note)
        ET.SubElement(
            group,
            "sample",
            path=f"{plan.samples_dir}{entry.name}",
            rootNote=note,
            loNote=note,
            hiNote=note,
            pitchKeyTrack="0",
            ampEnvEnabled="false",  # a drum hit plays out whole, whatever the key's release
        )
    ET.indent(root)
    text: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return text + b"\n"


def to_wav(
    data: bytes, *, rate: int | None, mono: bool, max_duration_s: float, source: str
) -> bytes:
    """``data`` (any format libsndfile reads) as a 16-bit WAV at ``rate`` (None: its own)."""
    try:
        with sf.SoundFile(io.BytesIO(data)) as sound:
            if sound.frames / max(sound.samplerate, 1) > max_duration_s:
                raise InvalidRequestError(f"{source} is over the {max_duration_s:g} s limit")
            frames = sound.read(dtype="float32", always_2d=True)
            own = int(sound.samplerate)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise InvalidRequestError(f"{source} cannot be decoded ({exc})") from exc
    if mono and frames.shape[1] > 1:
        frames = frames.mean(axis=1, keepdims=True, dtype=np.float32)
    target = rate or own
    if target != own and frames.shape[0]:
        frames = np.stack(
            [resample(frames[:, c], own, target, "soxr_vhq") for c in range(frames.shape[1])],
            axis=1,
        )
    out = io.BytesIO()
    # 16-bit holds -1..1: resampling may overshoot a full-scale peak, so clip, never wrap.
    sf.write(out, np.clip(frames, -1.0, 1.0), target, format="WAV", subtype="PCM_16")
    return bytes(out.getvalue())


def _file_name(fmt: ExportFormat, index: int, slot: str, suffix: str, wav: bool) -> str:
    if fmt == "hardware":
        return hardware_name(index, slot)
    return plugin_name(index, slot, ".wav" if wav else suffix.lower())


class KitExporter:
    """Exports of the kits of ``kits``; ``matched`` gives matched renditions (None: a
    ``matched`` export is refused)."""

    def __init__(self, kits: KitsService, matched: MatchedSource | None = None) -> None:
        self.kits = kits
        self.library = kits.library
        self.matched = matched

    def plan(
        self, name: str, fmt: ExportFormat, *, matched: bool = False, mono: bool = False
    ) -> KitExportPlan:
        """What an export of kit ``name`` holds. ConflictError when the kit's state allows no
        such export: no pad has a sample; ``matched`` for a kit without a project context, or
        in a service without matched renditions."""
        if fmt not in FORMATS:
            raise InvalidRequestError(f"format: one of {', '.join(FORMATS)}, not {fmt!r}")
        view = self.kits.get(name)
        assert view.name is not None
        if not any(p.pad.id for p in view.pads):
            raise ConflictError(f"kit {view.name!r} has no samples to export: fill it first")
        context = context_of(view.context)
        if matched and context is None:
            raise ConflictError(
                f"matched: kit {view.name!r} has no project context (bpm, key) to match to"
            )
        if matched and self.matched is None:
            raise ConflictError("matched: this service makes no matched renditions")
        entries, missing = [], []
        for pad_view in view.pads:
            pad = pad_view.pad
            if pad.id is None:
                continue
            if pad_view.payload is None:
                missing.append((pad.index, pad.id, f"no longer indexed (was {pad.path_hint})"))
                continue
            try:
                source = self.library.item_file(pad.id)
            except (NotFoundError, ForbiddenPathError, ContentChangedError) as exc:
                missing.append((pad.index, pad.id, str(exc)))
                continue
            match = None
            if matched and context is not None:
                match = match_for(context, pad_view.payload)
            convert = fmt == "hardware" or mono or source.suffix.lower() not in PLAYER_SUFFIXES
            sha = str(pad_view.payload.get("content_sha256") or "")
            name = _file_name(fmt, pad.index, pad.slot, source.suffix, convert or match is not None)
            entries.append(KitEntry(pad.index, pad.slot, pad.id, source, sha, name, convert, match))
        folder = safe_name(view.name, "kit")
        if fmt == "hardware":
            folder = "_".join(ascii_words(view.name)).upper()[:16] or "KIT"
        return KitExportPlan(view.name, fmt, folder, entries, missing, mono)

    def _open(self, entry: KitEntry) -> tuple[BinaryIO, Callable[[], None]]:
        """The entry's bytes, opened (a matched rendition, or the checked original)."""
        if entry.match is not None:
            assert self.matched is not None
            bpm, semitones = entry.match
            rendition = self.matched(entry.id, bpm, semitones)
            return rendition.handle, rendition.close
        handle = self.library.files.open_checked(entry.source, entry.sha256)
        return handle, handle.close

    def zip(self, plan: KitExportPlan) -> Iterator[bytes]:
        """The zip of a plan, in chunks as it is written; the preset and the note last (they
        name only the files that made it in)."""
        sink = _Sink()
        limits = self.library.limits
        with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            for entry in plan.entries:
                try:
                    handle, close = self._open(entry)
                except (OSError, TimbreError) as exc:
                    why = exc.strerror if isinstance(exc, OSError) else str(exc)
                    plan.missing.append((entry.pad, entry.id, f"cannot be read ({why})"))
                    continue
                arcname = f"{plan.folder}/{plan.samples_dir}{entry.name}"
                try:
                    stat = os.fstat(handle.fileno())
                    info = zipfile.ZipInfo(arcname, date_time=zip_time(stat.st_mtime))
                    if entry.convert:
                        data = handle.read(limits.max_file_bytes + 1)
                        if len(data) > limits.max_file_bytes:
                            raise InvalidRequestError(f"{entry.source} is over the size limit")
                        wav = to_wav(
                            data,
                            rate=HARDWARE_RATE if plan.format == "hardware" else None,
                            mono=plan.mono,
                            max_duration_s=limits.max_duration_s,
                            source=entry.source.name,
                        )
                        zf.writestr(info, wav)
                    else:
                        info.file_size = stat.st_size
                        with zf.open(info, "w") as out:
                            while chunk := handle.read(_COPY_CHUNK_BYTES):
                                out.write(chunk)
                                yield sink.take()
                except (OSError, TimbreError) as exc:
                    why = exc.strerror if isinstance(exc, OSError) else str(exc)
                    plan.missing.append((entry.pad, entry.id, f"cannot be exported ({why})"))
                    continue
                finally:
                    close()
                plan.written.append(entry)
                yield sink.take()
            if plan.format == "sfz":
                zf.writestr(f"{plan.folder}/{plan.folder}.sfz", sfz_text(plan))
            elif plan.format == "decentsampler":
                zf.writestr(f"{plan.folder}/{plan.folder}.dspreset", dspreset_text(plan))
            note = plan.note()
            if note is not None:
                zf.writestr(f"{plan.folder}/{MISSING_NOTE}", note)
        yield sink.take()
