"""Find the audio files under the library roots, and account for every entry passed over.

Recursive, deterministic (sorted), and careful: hidden and system files are skipped, symlinks
are followed only while they stay inside a root and never twice to the same directory (no
loops), and a file is taken when its extension is an audio one *or* its first bytes say it is
audio (a WAV saved without extension, an AIFF named ``.snd``).

Nothing found on disk can stop a scan: a symlink loop (to itself, in a cycle, or to a folder
above it), a dangling link, an unreadable folder or file, a FIFO, socket or device, or a file
with an audio-like extension no decoder here reads (a GUS ``.pat``, a SoundFont) is passed
over with one of the :data:`SKIP_REASONS`, handed to the caller's ``on_skip``. Special files
are never opened (opening a FIFO would block the scan for good). Paths are reported in their
stored text form (:mod:`timbre.store.pathtext`), so names that are not UTF-8 are reported too.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from timbre.store.pathtext import path_text

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


# Extensions of sound-related files that no decoder here reads: reported, never silently
# dropped, so a library of patches or SoundFonts says why nothing in it was indexed.
UNSUPPORTED_EXTENSIONS = frozenset(
    {
        ".pat",  # Gravis UltraSound patch
        ".sf2",
        ".sf3",
        ".sfz",  # SoundFont 2/3 banks and SFZ instrument definitions
        ".rex",
        ".rx2",
        ".rcy",  # ReCycle slices
        ".wma",
        ".aac",
        ".m4a",
        ".alac",
        ".ape",
        ".wv",
        ".dsf",
        ".dff",
        ".mid",
        ".midi",  # MIDI holds notes, not sound
        ".nki",
        ".nkx",
        ".ncw",
        ".exs",  # sampler instruments
        ".mod",
        ".xm",
        ".it",
        ".s3m",  # tracker modules
    }
)

SKIP_REASONS = {
    "hidden": "a hidden or system file or folder",
    "not_audio": "not an audio file, by its name and its first bytes",
    "unsupported_format": "a sound-related format no decoder here reads",
    "symlink_loop": "a symbolic link that loops (to itself, in a cycle, or to a folder above it)",
    "broken_symlink": "a symbolic link to nothing",
    "outside_roots": "a symbolic link that leads outside the library roots",
    "unreadable": "cannot be read (permission denied or an I/O error)",
    "special_file": "a FIFO, socket or device, not a regular file",
    "already_found": "the same file or folder as one already found through another link",
    "empty_root": "a library root with nothing in it (an unmounted drive looks like this)",
}
"""Why an entry was passed over: stable code -> what it means (also in the skipped report)."""


@dataclass(frozen=True, slots=True)
class Found:
    """A file to ingest: its absolute path and the root it was found under."""

    path: Path
    root: Path

    @property
    def text(self) -> str:
        """The path's stored text form (UTF-8 even when the name is not)."""
        return path_text(self.path)


@dataclass(frozen=True, slots=True)
class Skipped:
    """An entry passed over: its path (stored text form), a reason code and the detail."""

    path: str
    reason: str
    detail: str


SkipHandler = Callable[[Skipped], None]


def looks_like_audio(path: Path) -> bool:
    """True when the first bytes carry an audio container's magic number (or an MP3 sync).

    Raises:
        OSError: the file cannot be opened or read.
    """
    # O_NONBLOCK: should the path have turned into a FIFO since it was seen, do not hang.
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as handle:
        head = handle.read(12)
    if any(head[at : at + len(magic)] == magic for at, magic in _MAGIC):
        return True
    return len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0  # MPEG frame sync


def _hidden(name: str) -> bool:
    return name.startswith(".") or name.startswith("__MACOSX") or name.lower() in _SKIP_NAMES


def _ignore(_: Skipped) -> None:
    pass


def discover(roots: Sequence[Path], on_skip: SkipHandler | None = None) -> Iterator[Found]:
    """Yield audio files under ``roots`` in a stable order, each real file once.

    Args:
        roots: library folders (or single files) to scan.
        on_skip: called with every entry passed over, and why (see :data:`SKIP_REASONS`).

    Raises:
        FileNotFoundError: a root does not exist (or cannot be reached).
    """
    skip = on_skip or _ignore
    resolved = []
    for root in roots:
        real = Path(os.path.realpath(Path(root).expanduser()))
        try:
            real.stat()
        except OSError as exc:
            raise FileNotFoundError(
                f"library root {root} cannot be used: {exc.strerror or exc}"
            ) from exc
        resolved.append(real)
    scan = _Scan(resolved, skip)
    for root in resolved:
        st = root.stat()
        if stat.S_ISDIR(st.st_mode):
            yield from scan.walk(root)
        elif not stat.S_ISREG(st.st_mode):
            scan.skip(Skipped(path_text(root), "special_file", SKIP_REASONS["special_file"]))
        elif scan.accept(root, st):
            yield Found(root, root.parent)


def discover_changed(
    roots: Sequence[Path], targets: Sequence[Path], on_skip: SkipHandler | None = None
) -> Iterator[Found]:
    """Yield the audio files at or below ``targets`` (files or folders inside ``roots``), each
    with the root it lies under, by the same rules as :func:`discover`.

    A target that is gone, or lies outside every root, yields nothing (a watcher's event may
    be older than the disk's state); the roots themselves must exist.
    """
    skip = on_skip or _ignore
    resolved = [Path(os.path.realpath(Path(r).expanduser())) for r in roots]
    scan = _Scan(resolved, skip)
    for target in targets:
        real = Path(os.path.realpath(Path(target).expanduser()))
        root = next((r for r in resolved if real == r or real.is_relative_to(r)), None)
        if root is None:
            continue
        try:
            st = real.stat()
        except OSError:
            continue  # gone since the event: the prune decides what that means
        if stat.S_ISDIR(st.st_mode):
            yield from scan.walk(root, start=real)
        elif not stat.S_ISREG(st.st_mode):
            scan.skip(Skipped(path_text(real), "special_file", SKIP_REASONS["special_file"]))
        elif scan.accept(real, st):
            yield Found(real, root)


def _skip_link(path: Path, exc: OSError) -> tuple[str, str]:
    try:
        target = path_text(path.readlink())
    except OSError:
        target = "?"
    if exc.errno == errno.ELOOP:
        return "symlink_loop", f"the link loops: {target}"
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        return "broken_symlink", f"the link points at nothing: {target}"
    return "unreadable", f"cannot follow the link: {exc.strerror or exc}"


class _Scan:
    """One scan over the roots: the files and folders already seen, and the skip handler."""

    def __init__(self, roots: Sequence[Path], skip: SkipHandler) -> None:
        self.roots = roots
        self.skip = skip
        self.seen_files: set[tuple[int, int]] = set()
        self.seen_dirs: set[tuple[int, int]] = set()

    def _skipped(self, path: Path, reason: str, detail: str) -> None:
        self.skip(Skipped(path_text(path), reason, detail))

    def _inside(self, path: Path) -> bool:
        return any(path == r or path.is_relative_to(r) for r in self.roots)

    def walk(self, root: Path, start: Path | None = None) -> Iterator[Found]:
        """The files below ``start`` (default: the root), found under ``root``."""
        start = start or root
        root_st = start.stat()
        if (root_st.st_dev, root_st.st_ino) in self.seen_dirs:
            return  # a root inside another root: its files are found there
        self.seen_dirs.add((root_st.st_dev, root_st.st_ino))
        stack = [start]
        while stack:
            folder = stack.pop()
            try:
                entries = sorted(os.scandir(folder), key=lambda e: e.name)
            except OSError as exc:
                self._skipped(folder, "unreadable", f"cannot list the folder: {exc.strerror}")
                continue
            if folder == root and not entries:
                self._skipped(folder, "empty_root", SKIP_REASONS["empty_root"])
            subfolders = []
            for entry in entries:
                path = Path(entry.path)
                try:
                    st = self._stat(entry, path)
                    if st is None:
                        pass
                    elif stat.S_ISDIR(st.st_mode):
                        if self._new_folder(entry, path, folder, st):
                            subfolders.append(path)
                    elif not stat.S_ISREG(st.st_mode):
                        self._skipped(path, "special_file", SKIP_REASONS["special_file"])
                    elif self.accept(path, st):
                        yield Found(path, root)
                except OSError as exc:  # vanished or unreadable between listing and looking
                    self._skipped(path, "unreadable", exc.strerror or str(exc))
            stack.extend(reversed(subfolders))

    def _stat(self, entry: os.DirEntry[str], path: Path) -> os.stat_result | None:
        """The entry's own status (its target's, for a link that stays inside the roots)."""
        if _hidden(entry.name):
            self._skipped(path, "hidden", SKIP_REASONS["hidden"])
            return None
        if not entry.is_symlink():
            return entry.stat(follow_symlinks=False)
        try:
            st = path.stat()
        except OSError as exc:
            self._skipped(path, *_skip_link(path, exc))
            return None
        target = Path(os.path.realpath(path))
        if not self._inside(target):
            self._skipped(path, "outside_roots", f"the link leads to {path_text(target)}")
            return None
        return st

    def _new_folder(
        self, entry: os.DirEntry[str], path: Path, folder: Path, st: os.stat_result
    ) -> bool:
        """True for a folder not seen yet; a second way into a seen one is reported."""
        key = (st.st_dev, st.st_ino)
        if key not in self.seen_dirs:
            self.seen_dirs.add(key)
            return True
        target = Path(os.path.realpath(path))
        above = Path(os.path.realpath(folder))
        if entry.is_symlink() and (above == target or above.is_relative_to(target)):
            self._skipped(path, "symlink_loop", f"the link leads back to {path_text(target)}")
        else:
            self._skipped(path, "already_found", f"the folder {path_text(target)} is scanned")
        return False

    def accept(self, path: Path, st: os.stat_result) -> bool:
        """True for an audio file not yet found; anything else is reported as skipped."""
        suffix = path.suffix.lower()
        if suffix in _SKIP_EXTENSIONS:
            self._skipped(path, "not_audio", f"{suffix} files are never samples")
            return False
        if suffix in UNSUPPORTED_EXTENSIONS:
            self._skipped(path, "unsupported_format", f"no decoder here reads {suffix} files")
            return False
        if suffix not in AUDIO_EXTENSIONS:
            try:
                audio = looks_like_audio(path)
            except OSError as exc:
                self._skipped(path, "unreadable", f"cannot read the file: {exc.strerror}")
                return False
            if not audio:
                self._skipped(path, "not_audio", SKIP_REASONS["not_audio"])
                return False
        key = (st.st_dev, st.st_ino)
        if key in self.seen_files:
            self._skipped(path, "already_found", "the same file was found through another link")
            return False
        self.seen_files.add(key)
        return True
