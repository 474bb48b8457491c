"""Tags a file carries itself: ID3, Vorbis comments and RIFF (INFO list, ACID chunk). Reading
tags never fails a file: what cannot be read is absent."""

from __future__ import annotations

import contextlib
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingest.names import BPM_RANGE
from timbre.musickey import spell_key

_RIFF_SCAN_BYTES = 1 << 20  # INFO and acid chunks sit before or just after the audio data
_ACID_ONE_SHOT = 0x01  # the first flag of an ACID chunk: the file is a one-shot, not a loop

# What tools write into comments about themselves ("Processed by SoX", "LAME3.100"): no tags.
_TOOL_STAMP = re.compile(
    r"^(?:(?:processed|created|made|edited|encoded|exported|rendered|converted|generated|"
    r"recorded|produced|saved|written)\s+(?:by|with|in|using|on)\b"
    r"|(?:lame|lavf|lavc|libav\w*|ffmpeg|sox|audacity|itunes|xld|libflac|reference libflac|"
    r"libsndfile|libvorbis|xiph|nero|fraunhofer|logic pro|ableton|fl studio|fruity ?loops)"
    r"(?![a-z]))",
    re.IGNORECASE,
)


def is_tool_stamp(text: str) -> bool:
    """Whether a comment is a tool's stamp ("Processed by SoX"), not a producer's word."""
    return _TOOL_STAMP.match(text.strip()) is not None


def tag_words(text: str) -> list[str]:
    """The keywords of a free-text tag (comma or semicolon separated), without tool stamps."""
    words = (w.strip().lower() for w in text.replace(";", ",").split(","))
    return [w for w in words if w and not is_tool_stamp(w)]


@dataclass
class FileTags:
    bpm: float | None = None
    key: str | None = None
    genre: str | None = None
    kind: str | None = None  # ``one_shot`` or ``loop`` when an ACID chunk says
    words: list[str] = field(default_factory=list)


def _first(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    text = getattr(value, "text", value)
    if isinstance(text, list | tuple):
        text = text[0] if text else None
    return str(text).strip() or None if text is not None else None


def _bpm(text: str | None) -> float | None:
    if not text:
        return None
    try:
        value = float(text.replace(",", "."))
    except ValueError:
        return None
    return value if BPM_RANGE[0] <= value <= BPM_RANGE[1] else None


def read_tags(path: Path) -> FileTags:
    """Tempo, key, genre and keywords from a file's own metadata."""
    tags = FileTags()
    # mutagen raises many types on odd files; tags are optional, so any failure means "none".
    with contextlib.suppress(Exception):
        _from_mutagen(path, tags)
    riff = path.suffix.lower() in (".wav", ".wave", ".w64", ".rf64")
    if riff and (tags.bpm is None or tags.genre is None or tags.kind is None):
        with contextlib.suppress(OSError, struct.error):
            _from_riff(path, tags)
    return tags


def _from_mutagen(path: Path, tags: FileTags) -> None:
    import mutagen

    audio = mutagen.File(path)
    if audio is None or audio.tags is None:
        return
    t = audio.tags
    keys = {str(k).upper(): k for k in t.keys()}  # noqa: SIM118 -- mutagen tags are not dicts

    def get(*names: str) -> str | None:
        for name in names:
            if name in keys:
                return _first(t[keys[name]])
        return None

    tags.bpm = _bpm(get("TBPM", "BPM", "TEMPO"))
    key_text = get("TKEY", "INITIALKEY", "KEY")
    tags.key = spell_key(key_text) if key_text else None
    tags.genre = get("TCON", "GENRE")
    comment = get("COMM", "COMMENT", "DESCRIPTION")
    for text in (tags.genre, comment, get("TIT1", "GROUPING")):
        if text:
            tags.words.extend(tag_words(text))


def _from_riff(path: Path, tags: FileTags) -> None:
    with path.open("rb") as handle:
        head = handle.read(12)
        if len(head) < 12 or head[:4] not in (b"RIFF", b"RF64") or head[8:12] != b"WAVE":
            return
        scanned = 12
        while scanned < _RIFF_SCAN_BYTES:
            header = handle.read(8)
            if len(header) < 8:
                return
            chunk_id, size = header[:4], struct.unpack("<I", header[4:])[0]
            if chunk_id == b"acid" and size >= 24:
                body = handle.read(size)
                flags = struct.unpack("<I", body[:4])[0]
                tempo = _bpm(f"{struct.unpack('<f', body[20:24])[0]:.3f}")
                # Tools write the chunk with blank fields; a loop is claimed by a real tempo.
                if flags & _ACID_ONE_SHOT:
                    tags.kind = "one_shot"
                elif tempo is not None:
                    tags.kind = "loop"
                tags.bpm = tags.bpm or tempo
            elif chunk_id == b"LIST" and size >= 4:
                body = handle.read(size)
                if body[:4] == b"INFO":
                    _info(body[4:], tags)
            else:
                handle.seek(size, 1)
            if size % 2:
                handle.seek(1, 1)  # RIFF chunks are word-aligned
            scanned += 8 + size + (size % 2)


def _info(body: bytes, tags: FileTags) -> None:
    at = 0
    while at + 8 <= len(body):
        sub_id, size = body[at : at + 4], struct.unpack("<I", body[at + 4 : at + 8])[0]
        text = body[at + 8 : at + 8 + size].split(b"\0", 1)[0].decode("latin-1").strip()
        if sub_id == b"IGNR" and text:
            tags.genre = tags.genre or text
            tags.words.append(text.lower())
        elif sub_id in (b"IKEY", b"ICMT") and text:
            tags.words.extend(tag_words(text))
        at += 8 + size + (size % 2)
