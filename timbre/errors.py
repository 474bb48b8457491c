"""Domain errors, raised where things fail and translated to HTTP only in `app/`.

Each error carries a short stable `code` (for failure reports and JSON problem bodies) and a
message a person can act on. Causes are chained with ``raise ... from exc``.
"""

from __future__ import annotations

from pathlib import Path


class TimbreError(Exception):
    """Base class of every error Timbre raises on purpose."""

    code = "timbre_error"


class ConfigError(TimbreError):
    """A setting is missing, malformed or unsafe."""

    code = "config_error"


class AudioError(TimbreError):
    """An input could not be turned into audio Timbre can embed.

    Attributes:
        source: the file path (or an upload's name) that failed.
        reason: what is wrong with it, in words a person understands.
        code: a stable short identifier of the kind of failure, e.g. ``not_audio``.
    """

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
