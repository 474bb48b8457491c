"""What a sample browser needs besides search: waveform peaks and browser-playable renditions.

Peaks come from the payload, else are computed once and cached under ``cache/peaks``. AIFF
and CAF, which Chromium does not play, get a WAV rendition (same frames); any item gets one
matched to a project's tempo and key (:mod:`timbre.audio.stretch`). Both are cached under
``cache/renditions`` by content hash (and, for matched ones, stretch, transposition and
algorithm version) within a size budget.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import logging
import math
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
from timbre.audio.stretch import (
    MAX_RATIO,
    MAX_SEMITONES,
    MIN_RATIO,
    STRETCH_VERSION,
    match,
    stretch_factor,
)
from timbre.errors import AudioError, InvalidRequestError
from timbre.fsutil import replacing, sha256_file
from timbre.search.library import Library

log = logging.getLogger(__name__)
_WAV_SUBTYPES = frozenset({"PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"})
MAX_PROJECT_BPM = 999.0
"""Highest project tempo a matched rendition accepts."""
MAX_MATCHED_S = 120.0
"""Longest item matched (seconds): 64 bars at 128 BPM; matching is for loops and phrases."""
_RENDER_LOCKS = 16
"""Renders of the same rendition wait for each other (one of these locks by name's hash)."""


@dataclass(frozen=True)
class Matching:
    """How a matched rendition differs from its item: ``stretch`` = its length / the item's
    (1 = tempo kept), ``semitones`` transposed, ``source_bpm`` the item's own tempo when it
    was stretched, ``matched`` the asked changes it carries (``bpm=124``, ``semitones=-2``),
    ``unmatched`` those it could not (``bpm (no tempo)``)."""

    stretch: float
    semitones: int
    source_bpm: float | None
    matched: tuple[str, ...]
    unmatched: tuple[str, ...]


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
    matching: Matching | None = None
    """Set on matched renditions (:meth:`MediaService.matched_rendition`)."""

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
        self._render_locks = [threading.Lock() for _ in range(_RENDER_LOCKS)]

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
        target = self.renditions_dir / f"{self._content_hash(path)}.wav"
        return self._serve(target, f"{path.stem}.wav", lambda: self._render(path, target))

    def matched_rendition(
        self, item_id: str, *, bpm: float | None, semitones: int = 0
    ) -> Rendition:
        """A WAV rendition of the item at the project tempo ``bpm`` (its own BPM stretched to
        the nearest of ``bpm``, twice or half it; pitch kept) and transposed by ``semitones``
        (tempo kept), served like :meth:`wav_rendition`. An item without a tempo is not
        stretched, nor is one that would have to stretch past 2x either way
        (``matching.unmatched`` says so). InvalidRequestError for a tempo that is not in
        0 < bpm <= 999 or a transposition beyond ±12."""
        if bpm is not None and not (math.isfinite(bpm) and 0 < bpm <= MAX_PROJECT_BPM):
            raise InvalidRequestError(
                f"bpm must be above 0 and at most {MAX_PROJECT_BPM:g}, not {bpm}"
            )
        if isinstance(semitones, bool) or not isinstance(semitones, int):
            raise InvalidRequestError(f"semitones must be a whole number, not {semitones!r}")
        if abs(semitones) > MAX_SEMITONES:
            raise InvalidRequestError(
                f"semitones must be within -{MAX_SEMITONES}..{MAX_SEMITONES}, not {semitones}"
            )
        payload = self._items.item(item_id)
        own = _tempo_of(payload)
        matched, unmatched, factor = [], [], 1.0
        if bpm is not None:
            if own is None:
                unmatched.append("bpm (no tempo)")
            else:
                factor = stretch_factor(own, bpm)
                if MIN_RATIO <= factor <= MAX_RATIO:
                    factor = round(factor, 4)  # the cache key's precision: <= 0.4 ms in 8 s
                    matched.append(f"bpm={bpm:g}")
                else:  # served unstretched, as a one-shot is: the request itself was valid
                    unmatched.append(
                        f"bpm ({own:g} BPM is more than {MAX_RATIO:g}x from it, twice or half it)"
                    )
                    factor = 1.0
        if semitones:
            matched.append(f"semitones={semitones}")
        matching = Matching(
            factor, semitones, own if bpm is not None else None, tuple(matched), tuple(unmatched)
        )
        if factor == 1.0 and semitones == 0:  # nothing to change: the plain rendition
            plain = self.wav_rendition(item_id)
            plain.matching = matching
            return plain
        path = self._items.item_file(item_id)
        key = f"{self._content_hash(path)}.x{factor:.4f}{semitones:+d}st.m{STRETCH_VERSION}"
        target = self.renditions_dir / f"{key}.wav"
        suffix = (f"_{bpm:g}bpm" if factor != 1.0 else "") + (
            f"_{semitones:+d}st" if semitones else ""
        )
        loop = own is not None or payload.get("kind") == "loop"
        rendition = self._serve(
            target,
            f"{path.stem}{suffix}.wav",
            lambda: self._render_matched(path, target, factor, semitones, loop=loop),
        )
        rendition.matching = matching
        return rendition

    def _serve(self, target: Path, name: str, render: Callable[[], None]) -> Rendition:
        """``target`` opened, rendered first if absent (once, however many ask at once)."""
        self._hold(target)
        try:
            try:
                handle = target.open("rb")
                with contextlib.suppress(OSError):
                    os.utime(target)  # recently used: kept longest by the budget
            except FileNotFoundError:
                with self._render_locks[hash(target.name) % _RENDER_LOCKS]:
                    try:  # rendered by a request that held the lock meanwhile
                        handle = target.open("rb")
                    except FileNotFoundError:
                        render()
                        handle = target.open("rb")
                        self._enforce_budget()
        except BaseException:
            self._let_go(target)
            raise
        return Rendition(target, name, handle, lambda: self._let_go(target))

    def _render_matched(
        self, path: Path, target: Path, factor: float, semitones: int, *, loop: bool
    ) -> None:
        limit = min(self.max_duration_s, MAX_MATCHED_S)
        frames, rate, _ = self._frames(path, limit, "matching (for loops and phrases) takes")
        try:
            out = match(frames, rate, ratio=factor, semitones=semitones, loop=loop)
        except ValueError as exc:  # arguments are checked before: what is left is the audio
            raise AudioError(path, f"cannot be matched: {exc}", code="not_audio") from exc
        # 16-bit like most sample packs; the vocoder may lift a peak a little past full scale,
        # so such a rendition is turned down just enough rather than clipped.
        peak = float(np.abs(out).max()) if out.size else 0.0
        if peak > 1.0:
            out *= 1.0 / peak
        with replacing(target, mkdir=True) as tmp:
            sf.write(tmp, out, rate, format="WAV", subtype="PCM_16")

    def _render(self, path: Path, target: Path) -> None:
        frames, rate, subtype = self._frames(path, self.max_duration_s)
        # Keep the depth of PCM and float sources; compressed ones (MP3, Vorbis...) become 16-bit.
        wav_subtype = subtype if subtype in _WAV_SUBTYPES else "PCM_16"
        with replacing(target, mkdir=True) as tmp:
            sf.write(tmp, frames, rate, format="WAV", subtype=wav_subtype)

    def _frames(
        self, path: Path, max_duration_s: float, limit_is: str = "the limit is"
    ) -> tuple[np.ndarray, int, str]:
        """The file's float32 ``[frames, channels]`` at its own rate, its rate and subtype."""
        data = self._read(path)
        try:
            with sf.SoundFile(io.BytesIO(data)) as sound:
                if (seconds := sound.frames / max(sound.samplerate, 1)) > max_duration_s:
                    raise AudioError(
                        path,
                        f"{seconds:.1f} s long: {limit_is} {max_duration_s:g} s at most",
                        code="too_long",
                    )
                frames = sound.read(dtype="float32", always_2d=True)
                return frames, int(sound.samplerate), str(sound.subtype)
        except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
            raise AudioError(
                path, f"cannot be decoded for playback: {exc}", code="not_audio"
            ) from exc

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


def _tempo_of(payload: dict[str, object]) -> float | None:
    """The item's own BPM when it has a usable one (a loop's), else None."""
    bpm = payload.get("bpm")
    if isinstance(bpm, bool) or not isinstance(bpm, int | float):
        return None
    return float(bpm) if math.isfinite(bpm) and bpm > 0 else None
