"""What a sample browser needs besides search: waveform peaks and browser-playable renditions.

Peaks come from the point's payload when ingest stored them (field ``peaks``, see
:mod:`timbre.audio.peaks`); otherwise they are computed once from the item's file and kept
under ``<data_dir>/cache/peaks``, so a page draws every row's waveform without fetching audio.

Chromium plays WAV, FLAC, MP3, Ogg and Opus but not AIFF or CAF. For those an item has a WAV
rendition: the same frames, rate and channels, transcoded on first request and kept under
``<data_dir>/cache/renditions`` by the source's content hash (a changed file gets a new
rendition), within a size budget. The original file stays what downloads and exports deliver.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import numpy as np
import soundfile as sf

from timbre.audio.decode import decode_bytes
from timbre.audio.peaks import PEAK_BUCKETS, PEAKS_FORMAT, compute_peaks, decode_peaks
from timbre.errors import AudioError
from timbre.fsutil import replacing, sha256_file

log = logging.getLogger(__name__)

BROWSER_FORMATS = frozenset({"wav", "flac", "mp3", "ogg", "oga", "opus"})
"""File formats (the payload's ``format``, lower case) every current browser plays as they are."""

_WAV_SUBTYPES = frozenset({"PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"})
_HASH_MEMO = 4096  # (path, size, mtime) -> sha256 entries: seeks re-request the same file


@dataclass(frozen=True)
class ItemPeaks:
    """The waveform of one item.

    Attributes:
        id: the point id.
        peaks: uint8 ``[PEAK_BUCKETS]``, 255 = full scale (:mod:`timbre.audio.peaks`).
        duration_s: the clip's length, for a playhead; None if unknown.
        source: ``payload`` (stored at ingest), ``cache`` or ``computed`` (just now).
    """

    id: str
    peaks: np.ndarray
    duration_s: float | None
    source: str


@dataclass
class Rendition:
    """An opened rendition: serve ``handle``, then :meth:`close` (which lets eviction have it).

    Attributes:
        path: the cached file.
        name: the name to offer it under.
        handle: the file, open since before anything could evict it.
    """

    path: Path
    name: str
    handle: BinaryIO
    _release: Callable[[], None] = field(repr=False)
    _closed: bool = field(default=False, repr=False)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.handle.close()
            self._release()


class ItemSource(Protocol):
    """What the media service needs of the search service."""

    def item(self, item_id: str) -> dict[str, Any]: ...

    def item_file(self, item_id: str) -> Path: ...


class MediaService:
    """Peaks and renditions of indexed items, cached under the data dir.

    Args:
        items: the search service (``item`` and ``item_file``).
        cache_dir: ``<data_dir>/cache``.
        max_file_bytes: larger files are refused before they are read (``audio`` settings).
        max_duration_s: longer files are refused (``audio`` settings).
        rendition_cache_bytes: the renditions kept on disk at most; the least recently used
            go first.
    """

    def __init__(
        self,
        items: ItemSource,
        cache_dir: Path,
        *,
        max_file_bytes: int,
        max_duration_s: float,
        rendition_cache_bytes: int,
    ) -> None:
        self._items = items
        self.peaks_dir = cache_dir / "peaks"
        self.renditions_dir = cache_dir / "renditions"
        self.max_file_bytes = max_file_bytes
        self.max_duration_s = max_duration_s
        self.rendition_cache_bytes = rendition_cache_bytes
        self._memo: OrderedDict[tuple[str, int, int], str] = OrderedDict()
        self._lock = threading.Lock()
        self._serving: Counter[str] = Counter()  # rendition file name -> requests serving it

    # -- peaks ------------------------------------------------------------------------------

    def peaks(self, item_id: str) -> ItemPeaks:
        """The item's waveform: stored, cached, or computed from its file now (then cached).

        Raises:
            NotFoundError: unknown item, or no readable file for it.
            AudioError: the file cannot be decoded.
        """
        payload = self._items.item(item_id)
        duration = payload.get("duration_s")
        stored = payload.get("peaks")
        if isinstance(stored, str):
            try:
                values = decode_peaks(stored)
            except ValueError:
                log.warning("item %s holds unreadable peaks; computing them again", item_id)
            else:
                if values.size == PEAK_BUCKETS:
                    return ItemPeaks(item_id, values, duration, "payload")
        sha = str(payload.get("content_sha256") or "")
        cached = self._peaks_file(sha) if sha else None
        if cached is not None and cached.is_file():
            values = np.fromfile(cached, dtype=np.uint8)
            if values.size == PEAK_BUCKETS:
                return ItemPeaks(item_id, values, duration, "cache")
        path = self._items.item_file(item_id)
        data = self._read(path)
        try:
            info = sf.info(io.BytesIO(data))
        except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
            raise AudioError(
                path, f"not an audio file this decoder knows: {exc}", code="not_audio"
            ) from exc
        # The file's own rate: peaks need no resampling, and max-abs per bucket barely moves.
        decoded = decode_bytes(
            data, path.name, sample_rate=int(info.samplerate), max_duration_s=self.max_duration_s
        )
        values = compute_peaks(decoded.samples)
        actual = hashlib.sha256(data).hexdigest()
        with replacing(self._peaks_file(actual), mkdir=True) as tmp:
            values.tofile(tmp)
        return ItemPeaks(item_id, values, duration or decoded.duration_s, "computed")

    def _peaks_file(self, sha: str) -> Path:
        return self.peaks_dir / f"{sha}.v{PEAKS_FORMAT}.u8"

    # -- renditions -------------------------------------------------------------------------

    def needs_rendition(self, payload: dict[str, Any]) -> bool:
        """Whether browsers cannot play the item's file as it is."""
        return str(payload.get("format") or "").lower() not in BROWSER_FORMATS

    def wav_rendition(self, item_id: str) -> Rendition:
        """A WAV file with the item's audio, opened, and the name to offer it under.

        WAV, FLAC, MP3 and Ogg items get one too (a caller may want WAV), transcoded the same
        way. Cached by the source's content hash. The file is marked as being served before
        it is looked up, so no eviction deletes it until the caller closes the rendition; it
        is served even when it alone is larger than the cache budget.

        Raises:
            NotFoundError: unknown item, or no readable file for it.
            AudioError: the file is too large or cannot be decoded.
        """
        path = self._items.item_file(item_id)
        name = f"{path.stem}.wav"
        target = self.renditions_dir / f"{self._content_hash(path)}.wav"
        self._hold(target)
        try:
            try:
                handle = target.open("rb")
                with contextlib.suppress(OSError):
                    os.utime(target)  # recently used: kept longest by the budget
            except FileNotFoundError:
                self._render(path, target)
                handle = target.open("rb")
                self._enforce_budget()
        except BaseException:
            self._let_go(target)
            raise
        return Rendition(target, name, handle, lambda: self._let_go(target))

    def _render(self, path: Path, target: Path) -> None:
        data = self._read(path)
        try:
            with sf.SoundFile(io.BytesIO(data)) as sound:
                if sound.frames / max(sound.samplerate, 1) > self.max_duration_s:
                    raise AudioError(
                        path, f"over the {self.max_duration_s:g} s limit", code="too_long"
                    )
                frames = sound.read(dtype="float32", always_2d=True)
                rate, subtype = int(sound.samplerate), str(sound.subtype)
        except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
            raise AudioError(
                path, f"cannot be decoded for playback: {exc}", code="not_audio"
            ) from exc
        # Keep the depth of PCM and float sources; compressed ones (MP3, Vorbis...) become 16-bit.
        wav_subtype = subtype if subtype in _WAV_SUBTYPES else "PCM_16"
        with replacing(target, mkdir=True) as tmp:
            sf.write(tmp, frames, rate, format="WAV", subtype=wav_subtype)

    def _hold(self, target: Path) -> None:
        with self._lock:
            self._serving[target.name] += 1

    def _let_go(self, target: Path) -> None:
        with self._lock:
            self._serving[target.name] -= 1
            if self._serving[target.name] <= 0:
                del self._serving[target.name]

    def _content_hash(self, path: Path) -> str:
        stat = path.stat()
        key = (str(path), stat.st_size, stat.st_mtime_ns)
        with self._lock:
            known = self._memo.get(key)
            if known is not None:
                self._memo.move_to_end(key)
                return known
        if stat.st_size > self.max_file_bytes:
            raise AudioError(path, f"{stat.st_size} bytes, over the limit", code="too_large")
        sha = sha256_file(path)
        with self._lock:
            self._memo[key] = sha
            while len(self._memo) > _HASH_MEMO:
                self._memo.popitem(last=False)
        return sha

    def _read(self, path: Path) -> bytes:
        size = path.stat().st_size
        if size > self.max_file_bytes:
            raise AudioError(
                path,
                f"the file is {size} bytes, over the {self.max_file_bytes}-byte limit",
                code="too_large",
            )
        return path.read_bytes()

    def _enforce_budget(self) -> None:
        """Delete the least recently used renditions until the rest fit the budget; never one
        being served (its request holds it open, and may be about to open it)."""
        files = []
        for entry in self.renditions_dir.glob("*.wav"):
            try:
                stat = entry.stat()
            except FileNotFoundError:  # another request evicted it meanwhile
                continue
            files.append((stat.st_mtime_ns, stat.st_size, entry))
        total = sum(size for _, size, _ in files)
        for _, size, entry in sorted(files):
            if total <= self.rendition_cache_bytes:
                break
            with self._lock:  # held while deleting: no request can take it up meanwhile
                if self._serving.get(entry.name):
                    continue
                entry.unlink(missing_ok=True)
            total -= size
