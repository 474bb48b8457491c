"""File paths as text: a lossless, printable form for payloads, reports and HTTP.

A POSIX file name is bytes, and libraries copied from old systems hold names that are not
UTF-8 (``b"caf\\xe9.wav"`` from Latin-1). Python hands such a name over with lone surrogates
(``"caf\\udce9.wav"``), which no UTF-8 JSON (Qdrant payloads, the snapshot's
``payloads.jsonl``, HTTP bodies) nor SQLite can carry. Timbre therefore stores every path in
one text form, and turns it back into the real bytes only where it touches the file system:

* bytes that are valid UTF-8 are kept as they are, except a backslash, which is doubled
  (``\\`` -> ``\\\\``);
* every byte that is not part of valid UTF-8 is written ``\\xNN`` (two lower-case hex digits),
  like Python's ``backslashreplace``.

So a path whose name is UTF-8 without a backslash (nearly all of them) is stored exactly as
the file system spells it, and the mapping is one-to-one: doubling the literal backslashes
is what keeps ``caf\\xe9.wav`` (the four characters, a real name) apart from the Latin-1
byte. :func:`path_from_text` also accepts a single backslash that starts no escape as
itself, so a path typed by hand with a backslash in it still works.
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
