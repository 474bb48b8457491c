"""Find the audio files under the library roots, and account for every entry passed over.

Recursive and sorted; symlinks are followed only inside a root and never twice to one folder;
a file is taken when its extension or its first bytes say audio. Nothing on disk stops a scan:
what is passed over goes to ``on_skip`` with one of the :data:`SKIP_REASONS`.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from timbre.store.pathtext import path_text

# fmt: off
AUDIO_EXTENSIONS = frozenset((
    ".wav", ".wave", ".flac", ".aif", ".aiff", ".aifc", ".ogg", ".oga", ".opus", ".mp3", ".caf",
    ".w64", ".rf64", ".au", ".snd",
))
# Files that are never samples, whatever they contain.
_SKIP_NAMES = frozenset({"thumbs.db", "desktop.ini", ".ds_store", "icon\r"})
_SKIP_EXTENSIONS = frozenset((
    ".asd", ".reapeaks", ".pk", ".txt", ".pdf", ".jpg", ".jpeg", ".png", ".nfo", ".json", ".xml",
    ".zip", ".rar", ".7z",
))
# Magic numbers (at offset 0) of containers libsndfile reads.
_MAGIC = (b"RIFF", b"RIFX", b"RF64", b"FORM", b"fLaC", b"OggS", b"ID3", b"caff", b".snd", b"riff")
# Sound-related formats no decoder here reads, reported so a library of them says why.
UNSUPPORTED_EXTENSIONS = frozenset((
    ".pat", ".sf2", ".sf3", ".sfz", ".rex", ".rx2", ".rcy", ".wma", ".aac", ".m4a", ".alac",
    ".ape", ".wv", ".dsf", ".dff", ".mid", ".midi", ".nki", ".nkx", ".ncw", ".exs", ".mod", ".xm",
    ".it", ".s3m",
))
# fmt: on

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
    """True when the first bytes carry an audio container's magic number (or an MP3 sync)."""
    # O_NONBLOCK: should the path have turned into a FIFO since it was seen, do not hang.
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as handle:
        head = handle.read(12)
    if head.startswith(_MAGIC):
        return True
    return len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0  # MPEG frame sync


def _hidden(name: str) -> bool:
    return name.startswith(".") or name.startswith("__MACOSX") or name.lower() in _SKIP_NAMES


def _ignore(_: Skipped) -> None:
    pass


def _real(path: Path) -> Path:
    return Path(os.path.realpath(Path(path).expanduser()))


def discover(roots: Sequence[Path], on_skip: SkipHandler | None = None) -> Iterator[Found]:
    """Yield audio files under ``roots`` (folders or single files) in a stable order, each
    real file once; entries passed over go to ``on_skip``. FileNotFoundError: a root is gone."""
    resolved = []
    for root in roots:
        real = _real(root)
        try:
            real.stat()
        except OSError as exc:
            raise FileNotFoundError(
                f"library root {root} cannot be used: {exc.strerror or exc}"
            ) from exc
        resolved.append(real)
    scan = _Scan(resolved, on_skip or _ignore)
    for root in resolved:
        yield from scan.visit(root, root, root.stat(), file_root=root.parent)


def discover_changed(
    roots: Sequence[Path], targets: Sequence[Path], on_skip: SkipHandler | None = None
) -> Iterator[Found]:
    """Yield the audio files at or below ``targets`` (inside ``roots``), each with the root it
    lies under, by the rules of :func:`discover`. A target that is gone or outside every root
    yields nothing (a watcher's event may be older than the disk's state)."""
    resolved = [_real(r) for r in roots]
    scan = _Scan(resolved, on_skip or _ignore)
    for target in targets:
        real = _real(target)
        root = next((r for r in resolved if real == r or real.is_relative_to(r)), None)
        if root is None:
            continue
        try:
            st = real.stat()
        except OSError:
            continue  # gone since the event: the prune decides what that means
        yield from scan.visit(root, real, st, file_root=root)


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

    def visit(
        self, root: Path, path: Path, st: os.stat_result, *, file_root: Path
    ) -> Iterator[Found]:
        """The files at or below ``path`` (a single file is found under ``file_root``)."""
        if stat.S_ISDIR(st.st_mode):
            yield from self.walk(root, start=path)
        elif not stat.S_ISREG(st.st_mode):
            self._skipped(path, "special_file", SKIP_REASONS["special_file"])
        elif self.accept(path, st):
            yield Found(path, file_root)

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
