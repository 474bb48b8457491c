"""What a sample browser needs besides search: waveform peaks and browser-playable renditions.

Peaks come from the payload, else are computed once and cached under ``cache/peaks``. AIFF
and CAF, which Chromium does not play, get a WAV rendition (same frames), cached under
``cache/renditions`` by content hash within a size budget.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import logging
import os
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile as sf

from timbre.audio.decode import decode_bytes
from timbre.audio.peaks import PEAK_BUCKETS, PEAKS_FORMAT, compute_peaks, decode_peaks
from timbre.errors import AudioError
from timbre.fsutil import replacing, sha256_file
from timbre.search.library import Library

log = logging.getLogger(__name__)
_WAV_SUBTYPES = frozenset({"PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"})


@dataclass(frozen=True)
class ItemPeaks:
    """The waveform of one item: uint8 ``[PEAK_BUCKETS]`` peaks (255 = full scale), its length
    (None: unknown) and where the peaks came from: ``payload``, ``cache`` or ``computed``."""

    id: str
    peaks: np.ndarray
    duration_s: float | None
    source: str


@dataclass
class Rendition:
    """An opened rendition (``handle``, open since before anything could evict it) and the
    name to offer it under: serve it, then :meth:`close` (which lets eviction have it)."""

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


@functools.lru_cache(maxsize=4096)  # a player's seeks re-request the same file
def _sha256(path: Path, size: int, mtime_ns: int) -> str:
    """The content hash of ``path`` as it was at this size and modification time."""
    return sha256_file(path)


class MediaService:
    """Peaks and renditions of a library's items, cached under ``cache_dir``; larger or longer
    files than the ``audio`` settings allow are refused, and renditions beyond
    ``rendition_cache_bytes`` evicted, the least recently used first."""

    def __init__(
        self,
        items: Library,
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
        self._lock = threading.Lock()
        self._serving: Counter[str] = Counter()  # rendition file name -> requests serving it

    # -- peaks ------------------------------------------------------------------------------

    def peaks(self, item_id: str) -> ItemPeaks:
        """The item's waveform: stored, cached, or computed from its file now (then cached)."""
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

    def wav_rendition(self, item_id: str) -> Rendition:
        """A WAV file with the item's audio (any format may ask for one), opened; marked as
        served before it is looked up, so no eviction deletes it until the caller closes it."""
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
        if stat.st_size > self.max_file_bytes:
            raise AudioError(path, f"{stat.st_size} bytes, over the limit", code="too_large")
        return _sha256(path, stat.st_size, stat.st_mtime_ns)

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
