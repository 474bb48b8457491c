"""Find the audio files under the library roots.

Recursive, deterministic (sorted), and careful: hidden and system files are skipped, symlinks
are followed only while they stay inside a root and never twice to the same directory (no
loops), and a file is taken when its extension is an audio one *or* its first bytes say it is
audio (a WAV saved without extension, an AIFF named ``.snd``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

AUDIO_EXTENSIONS = frozenset(
    {
        ".wav",
        ".wave",
        ".flac",
        ".aif",
        ".aiff",
        ".aifc",
        ".ogg",
        ".oga",
        ".opus",
        ".mp3",
        ".caf",
        ".w64",
        ".rf64",
        ".au",
        ".snd",
    }
)
# Files that are never samples, whatever they contain.
_SKIP_NAMES = frozenset({"thumbs.db", "desktop.ini", ".ds_store", "icon\r"})
_SKIP_EXTENSIONS = frozenset(
    {
        ".asd",
        ".reapeaks",
        ".pk",
        ".txt",
        ".pdf",
        ".jpg",
        ".jpeg",
        ".png",
        ".nfo",
        ".json",
        ".xml",
        ".zip",
        ".rar",
        ".7z",
    }
)
# Magic numbers of containers libsndfile reads.
_MAGIC = (
    (0, b"RIFF"),
    (0, b"RIFX"),
    (0, b"RF64"),
    (0, b"FORM"),
    (0, b"fLaC"),
    (0, b"OggS"),
    (0, b"ID3"),
    (0, b"caff"),
    (0, b".snd"),
    (0, b"riff"),
)


@dataclass(frozen=True, slots=True)
class Found:
    """A file to ingest: its absolute path and the root it was found under."""

    path: Path
    root: Path


def looks_like_audio(path: Path) -> bool:
    """True when the first bytes carry an audio container's magic number (or an MP3 sync)."""
    try:
        with path.open("rb") as handle:
            head = handle.read(12)
    except OSError:
        return False
    if any(head[at : at + len(magic)] == magic for at, magic in _MAGIC):
        return True
    return len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0  # MPEG frame sync


def _hidden(name: str) -> bool:
    return name.startswith(".") or name.startswith("__MACOSX") or name.lower() in _SKIP_NAMES


def discover(roots: Sequence[Path]) -> Iterator[Found]:
    """Yield audio files under ``roots`` in a stable order, each real file once.

    Args:
        roots: library folders (or single files) to scan.

    Raises:
        FileNotFoundError: a root does not exist.
    """
    resolved = []
    for root in roots:
        real = Path(root).expanduser().resolve()
        if not real.exists():
            raise FileNotFoundError(f"library root {root} does not exist")
        resolved.append(real)
    seen_files: set[tuple[int, int]] = set()
    for root in resolved:
        if root.is_file():
            if _accept(root, seen_files):
                yield Found(root, root.parent)
            continue
        yield from _walk(root, resolved, seen_files)


def _inside(path: Path, roots: Sequence[Path]) -> bool:
    return any(path == r or path.is_relative_to(r) for r in roots)


def _walk(root: Path, roots: Sequence[Path], seen_files: set[tuple[int, int]]) -> Iterator[Found]:
    seen_dirs: set[tuple[int, int]] = set()
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            st = folder.stat()
        except OSError:
            continue
        if (st.st_dev, st.st_ino) in seen_dirs:
            continue  # a symlink loop or a second link to a folder already walked
        seen_dirs.add((st.st_dev, st.st_ino))
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue
        subfolders = []
        for entry in entries:
            if _hidden(entry.name):
                continue
            path = Path(entry.path)
            if entry.is_symlink():
                target = path.resolve()
                if not _inside(target, roots):
                    continue  # never leave the given roots
            if entry.is_dir(follow_symlinks=True):
                subfolders.append(path)
            elif entry.is_file(follow_symlinks=True) and _accept(path, seen_files):
                yield Found(path, root)
        stack.extend(reversed(subfolders))


def _accept(path: Path, seen_files: set[tuple[int, int]]) -> bool:
    suffix = path.suffix.lower()
    if suffix in _SKIP_EXTENSIONS:
        return False
    if suffix not in AUDIO_EXTENSIONS and not looks_like_audio(path):
        return False
    try:
        st = path.stat()
    except OSError:
        return False
    key = (st.st_dev, st.st_ino)
    if key in seen_files:
        return False  # the same file reached through a symlink
    seen_files.add(key)
    return True
