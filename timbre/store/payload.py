"""Point identity and payload contract.

A point's id is the UUIDv5 of its file's content SHA-256, so re-ingesting, moving or copying a
file never duplicates it; every path of identical content is kept in ``paths`` (POSIX-style, in
the lossless text form of :mod:`timbre.store.pathtext`).

The store derives two kinds of field on every write. ``dirs``: every ancestor directory of
every path (``a/b/c.wav`` gives ``a`` and ``a/b``), so a path-prefix filter is an exact,
indexed keyword match on whole directory names, the same on every engine. And a *normalised
companion* of every keyword field people type (``genre`` -> ``genre_norm``): case-folded,
whitespace collapsed, keys in one enharmonic spelling (``Bbm`` -> ``A#m``), because Qdrant has
no case-insensitive match; the field itself keeps its display form.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from timbre.embedding.info import ModelInfo
from timbre.errors import InvalidPointError
from timbre.musickey import normalize_key

POINT_ID_NAMESPACE = uuid.UUID("81e78eb0-df08-4e75-b67c-99332a4fdcb1")
"""Namespace of Timbre point ids. Fixed forever: every stored id derives from it."""

AUDIO_FACT_FIELDS = (
    "bpm_source",
    "bpm_confidence",
    "key_source",
    "key_confidence",
    "kind_source",
    "analysis_version",
    "peaks",
)
"""How ``bpm``, ``key`` and ``kind`` were obtained (``ingest.metadata``): each ``*_source`` is
``tags``, ``name``, ``audio`` (or ``duration`` for ``kind``) or None; a ``*_confidence`` rates an
audio estimate (0..1); ``analysis_version`` names the audio analysis that ran (None if none);
``peaks`` is the display waveform (``timbre.audio.peaks``, base64)."""

FACT_SOURCES = ("tags", "name", "audio")
KIND_SOURCES = (*FACT_SOURCES, "duration")

DESCRIPTIVE_FIELDS = (
    "pack",
    "genre",
    "bpm",
    "key",
    "instrument",
    "kind",
    "duration_s",
    "sample_rate",
    "channels",
    "format",
    "tags",
    *AUDIO_FACT_FIELDS,
)
"""What ingest says about a file (names, tags, audio); any of them may be None."""

LABEL_FIELDS = (
    "category",
    "category_score",
    "auto_tags",
    "auto_tag_scores",
    "labels_version",
    "instrument_source",
)
"""Zero-shot labels from the sound (:mod:`timbre.labels`), re-derivable from the stored vector:
the best ``category`` and the ``auto_tags`` above a threshold with their cosines, the
``labels_version`` (vocabulary hash + text model), and whether ``instrument`` came from the
``name`` or from the category (``audio``)."""

DISPLAY_FIELDS = (
    "path",
    "paths",
    *DESCRIPTIVE_FIELDS,
    *LABEL_FIELDS,
    "content_sha256",
    "ingested_at",
)
"""The payload a search hit carries, identical from Qdrant and from the FAISS snapshot. The
model fields are left out: they are the same for every point and live in the manifest."""

PAYLOAD_FIELDS = (*DISPLAY_FIELDS, "model", "pipeline_version")
"""Every field of a stored payload as ingest writes it (see :func:`build_payload`)."""

DIRS_FIELD = "dirs"
"""Derived by the store from ``paths`` on every write; never written by callers."""

NORMALISED_FIELDS = {
    "genre": "genre_norm",
    "instrument": "instrument_norm",
    "pack": "pack_norm",
    "tags": "tags_norm",
    "key": "key_norm",
    "category": "category_norm",
    "auto_tags": "auto_tags_norm",
}
"""Keyword field -> its normalised companion, derived by the store on every write."""

DERIVED_FIELDS = (DIRS_FIELD, *NORMALISED_FIELDS.values())
"""Every field the store derives; callers never write them."""

DERIVED_VERSION = 2
"""Version of the derivation: 1 = ``dirs`` only; 2 = also the normalised companions. A
collection whose metadata records less is backfilled from its stored payloads on open."""

KINDS = ("one_shot", "loop")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def point_id(content_sha256: str) -> str:
    """The point id of a file: UUIDv5 of its content SHA-256 (hex) in our namespace;
    InvalidPointError if the argument is not 64 hex characters."""
    digest = content_sha256.lower()
    if not _SHA256.fullmatch(digest):
        raise InvalidPointError(f"not a SHA-256 hex digest: {content_sha256!r}")
    return str(uuid.uuid5(POINT_ID_NAMESPACE, digest))


def build_payload(
    descriptive: Mapping[str, Any],
    *,
    content_sha256: str,
    paths: Sequence[str],
    model: ModelInfo,
    ingested_at: datetime | None = None,
) -> dict[str, Any]:
    """The full payload of one file, as the store expects it: ``descriptive`` holds fields of
    :data:`DESCRIPTIVE_FIELDS` (missing ones become None), the first of ``paths`` is the primary
    ``path``, ``ingested_at`` defaults to now. InvalidPointError on an unknown field, no path,
    or an invalid ``kind`` or fact source."""
    unknown = set(descriptive) - set(DESCRIPTIVE_FIELDS)
    if unknown:
        raise InvalidPointError(f"unknown payload fields {sorted(unknown)}")
    unique_paths = list(dict.fromkeys(paths))
    if not unique_paths:
        raise InvalidPointError(f"content {content_sha256} has no path")
    kind = descriptive.get("kind")
    if kind is not None and kind not in KINDS:
        raise InvalidPointError(f"kind must be one of {KINDS} or None, not {kind!r}")
    for source, allowed in (
        ("bpm_source", FACT_SOURCES),
        ("key_source", FACT_SOURCES),
        ("kind_source", KIND_SOURCES),
    ):
        value = descriptive.get(source)
        if value is not None and value not in allowed:
            raise InvalidPointError(f"{source} must be one of {allowed} or None, not {value!r}")
    when = ingested_at or datetime.now(UTC)
    payload: dict[str, Any] = {field: descriptive.get(field) for field in DESCRIPTIVE_FIELDS}
    payload["tags"] = list(payload["tags"] or [])
    payload.update(
        category=None,
        category_score=None,
        auto_tags=[],
        auto_tag_scores={},
        labels_version=None,
        instrument_source="name" if payload["instrument"] else None,
    )
    payload.update(
        path=unique_paths[0],
        paths=unique_paths,
        content_sha256=content_sha256.lower(),
        model=model_refs(model),
        pipeline_version=model.pipeline_version,
        ingested_at=when.astimezone(UTC).isoformat(),
    )
    return payload


def model_refs(model: ModelInfo) -> dict[str, str]:
    """The payload's ``model`` field: the family, and ids and revisions of its models."""
    return {"family": model.family, **model.models()}


def _parts(path: str) -> tuple[str, list[str]]:
    """``("/" or "", names)`` of a POSIX path, without empty and ``.`` names."""
    root = "/" if path.startswith("/") else ""
    return root, [name for name in path.split("/") if name not in ("", ".")]


def normalize_dir(path: str) -> str:
    """Canonical form of a directory used in ``dirs`` and in path-prefix filters.

    Redundant separators, ``.`` parts and a trailing slash are removed; ``..`` is kept as
    written (paths are not resolved against any file system).
    """
    root, names = _parts(path)
    return root + "/".join(names) or "."


def ancestor_dirs(paths: Iterable[str]) -> list[str]:
    """Every ancestor directory of every path, sorted (the ``dirs`` field)."""
    # Plain string work, not PurePosixPath: this runs for every point written.
    dirs: set[str] = set()
    for path in paths:
        root, names = _parts(path)
        if root:
            dirs.add(root)
        dirs.update(root + "/".join(names[:depth]) for depth in range(1, len(names)))
    return sorted(dirs)


def with_dirs(payload: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``payload`` with ``dirs`` derived from ``paths`` (and ``path``)."""
    out = dict(payload)
    paths = list(out.get("paths") or [])
    if out.get("path"):
        paths.append(out["path"])
    out[DIRS_FIELD] = ancestor_dirs(paths)
    return out


def fold(text: str) -> str:
    """Case- and spacing-insensitive form of a keyword (``" Deep  House"`` -> ``"deep house"``)."""
    return " ".join(text.split()).casefold()


def normalise_value(field: str, value: str) -> str:
    """The companion form of one keyword value of ``field``, as stored and as filtered.

    Keys fold enharmonics (``Bb minor``, ``Bbm`` and ``A#m`` are all ``A#m``); a key that does
    not parse is folded like any keyword, so it still matches its own spelling.
    """
    if field == "key":
        return normalize_key(value) or fold(value)
    return fold(value)


def normalised_companions(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The companion of every keyword field present in ``payload`` (None or a sorted list).

    Only the fields present are derived, so a partial update (``set_payload`` of the labels)
    updates exactly the companions of what it changes.
    """
    out: dict[str, Any] = {}
    for field, companion in NORMALISED_FIELDS.items():
        if field not in payload:
            continue
        value = payload[field]
        if value is None:
            out[companion] = None
        elif isinstance(value, list | tuple):
            out[companion] = sorted({normalise_value(field, str(v)) for v in value if v})
        else:
            out[companion] = normalise_value(field, str(value))
    return out


def with_derived(payload: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a full payload with every derived field (``dirs`` and the companions)."""
    out = with_dirs(payload)
    out.update(normalised_companions(out))
    return out
