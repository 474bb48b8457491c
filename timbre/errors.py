"""Domain errors, raised where things fail and translated to HTTP only in `app/`. Each carries
a short stable `code` (for reports and JSON problem bodies) and a message a person can act on.
"""

from __future__ import annotations

from enum import IntEnum
from pathlib import Path


class ExitCode(IntEnum):
    """Exit codes of every ``timbre`` command, and of the ingest jobs a service runs."""

    OK = 0  # everything succeeded
    PARTIAL = 1  # finished, but some inputs failed (each is reported), or found no audio
    FAILED = 2  # could not run: options, settings, models, store, roots, a full disk
    CRASHED = 3  # an unexpected error: a bug
    INTERRUPTED = 130  # Ctrl-C


class TimbreError(Exception):
    """Base class of every error Timbre raises on purpose."""

    code = "timbre_error"


class ConfigError(TimbreError):
    """A setting is missing, malformed or unsafe."""

    code = "config_error"


class AudioError(TimbreError):
    """An input (``source``: a path or an upload's name) could not be turned into audio:
    ``reason`` in words a person understands, ``code`` the kind of failure (``not_audio``)."""

    code = "audio_error"

    def __init__(self, source: str | Path, reason: str, *, code: str = "audio_error") -> None:
        self.source = str(source)
        self.reason = reason
        self.code = code
        super().__init__(f"{self.source}: {reason}")


class ModelFilesError(TimbreError):
    """Model weights or their companion files are missing, malformed or do not match."""

    code = "model_files"


class ModelMismatchError(TimbreError):
    """Data was built by other models or another pipeline version than the ones loaded."""

    code = "model_mismatch"


class StoreError(TimbreError):
    """The vector store (Qdrant Edge or a Qdrant server) failed or refused an operation."""

    code = "store_error"


class StoreLockedError(StoreError):
    """Another process owns the embedded store (only one process may open it)."""

    code = "store_locked"


class DiskFullError(StoreError):
    """The data dir's file system is too full to write safely (``disk.min_free_bytes``): for
    any write the disk refused (collections, renditions, snapshots, caches)."""

    code = "disk_full"


class StoreDamagedError(StoreError):
    """The live collection's files cannot be read back (truncated or overwritten)."""

    code = "store_damaged"


class NoIndexError(StoreError):
    """A command that only reads found no index in its data dir (and made none)."""

    code = "no_index"


class SchemaMismatchError(StoreError):
    """A collection's vector size or distance does not match the loaded models and schema."""

    code = "schema_mismatch"


class InvalidPointError(StoreError):
    """A point to be written breaks the store's contract (vector shape, norm, id or payload)."""

    code = "invalid_point"


class SnapshotError(TimbreError):
    """A FAISS snapshot is missing, incomplete, corrupt or could not be written."""

    code = "snapshot_error"


class SnapshotNotFoundError(SnapshotError):
    """No snapshot has been published yet."""

    code = "snapshot_missing"


class InvalidRequestError(TimbreError):
    """A query is well-formed JSON but asks for something impossible (no reference, etc.)."""

    code = "invalid_request"


class NotFoundError(TimbreError):
    """An item, job or file that was asked for does not exist."""

    code = "not_found"


class ForbiddenPathError(TimbreError):
    """A path lies outside the configured library roots, or is not an indexed file."""

    code = "forbidden_path"


class UnavailableError(TimbreError):
    """A component needed to answer (models, Qdrant, a snapshot) is not ready or unreachable."""

    code = "unavailable"


class ConflictError(TimbreError):
    """The request conflicts with work under way (e.g. an ingest job is already running)."""

    code = "conflict"


class ContentChangedError(ConflictError):
    """An indexed item's file no longer holds the content that was indexed (replaced in place)."""

    code = "content_changed"
