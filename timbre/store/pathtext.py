"""File paths as text: a lossless, printable form for payloads, reports and HTTP.

A POSIX file name is bytes, and names that are not UTF-8 (``b"caf\\xe9.wav"`` from Latin-1)
reach Python with lone surrogates, which no UTF-8 JSON nor SQLite can carry. So every path is
stored as text and turned back into bytes only where it touches the file system: valid UTF-8
is kept, except that a backslash is doubled, and every other byte is written ``\\xNN``. A
UTF-8 name without a backslash is stored as spelt, and the mapping is one-to-one (the doubled
backslash keeps the literal name ``caf\\xe9.wav`` apart from the Latin-1 byte).
:func:`path_from_text` also takes a lone backslash that starts no escape as itself.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

_ESCAPE = re.compile(r"\\(\\|x[0-9a-fA-F]{2})")


def path_text(path: str | os.PathLike[str] | bytes) -> str:
    """The stored text form of ``path`` (see the module docstring); valid UTF-8 always."""
    raw = os.fsencode(path)
    return raw.replace(b"\\", b"\\\\").decode("utf-8", errors="backslashreplace")


def path_bytes(text: str) -> bytes:
    """The file system bytes of a path stored as :func:`path_text` (its exact inverse)."""
    out = bytearray()
    at = 0
    for match in _ESCAPE.finditer(text):
        out += text[at : match.start()].encode("utf-8", errors="surrogateescape")
        escape = match.group(1)
        out += b"\\" if escape == "\\" else bytes([int(escape[1:], 16)])
        at = match.end()
    out += text[at:].encode("utf-8", errors="surrogateescape")
    return bytes(out)


def path_from_text(text: str) -> Path:
    """The real path of a stored path text, ready to open, stat or stream."""
    return Path(os.fsdecode(path_bytes(text)))
