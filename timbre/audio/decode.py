"""Decode any audio file libsndfile reads into mono float32 at the model's sample rate, as the
reference loader does (without torch); an unusable input raises AudioError with a ``code``."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile as sf

from timbre.audio.resample import Resampler, resample
from timbre.errors import AudioError

# Formats whose header frame count is exact (MP3's is estimated: only a large shortfall counts).
_EXACT_LENGTH_FORMATS = frozenset({"WAV", "WAVEX", "RF64", "W64", "AIFF", "CAF", "FLAC", "AU"})
_MP3_MIN_READ_FRACTION = 0.9
# libsndfile logs a chunk running past the file's end: "data : 96000 (should be 47978)";
# only a claim above the real size means lost data.
_CHUNK_SHORTFALL = re.compile(r"^\s*(?:data|SSND)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)

_READ_BLOCK_FRAMES = 1 << 18


@dataclass(frozen=True, slots=True)
class DecodedAudio:
    """Mono float32 ``samples`` at ``sample_rate`` (the model's), and what the file was:
    its own rate, channels, libsndfile format (``WAV``, ``MP3``) and subtype, duration."""

    samples: np.ndarray
    sample_rate: int
    source_sample_rate: int
    channels: int
    format: str
    subtype: str
    duration_s: float


def decode_file(
    path: str | Path,
    *,
    sample_rate: int,
    max_duration_s: float,
    max_file_bytes: int,
    resampler: Resampler = "sinc",
) -> DecodedAudio:
    """Decode a file on disk; longer or larger inputs are refused before they are read."""
    p = Path(path)
    try:
        size = p.stat().st_size
    except FileNotFoundError as exc:
        raise AudioError(p, "file not found", code="not_found") from exc
    except OSError as exc:
        raise AudioError(p, f"cannot read the file: {exc.strerror}", code="unreadable") from exc
    if not p.is_file():
        raise AudioError(p, "not a regular file", code="unreadable")
    if size == 0:
        raise AudioError(p, "the file is empty (0 bytes)", code="empty")
    if size > max_file_bytes:
        raise AudioError(
            p, f"the file is {size} bytes, over the {max_file_bytes}-byte limit", code="too_large"
        )
    try:
        handle = p.open("rb")
    except OSError as exc:
        raise AudioError(p, f"cannot open the file: {exc.strerror}", code="unreadable") from exc
    with handle:
        return _decode(handle, p, sample_rate, max_duration_s, resampler)


def decode_bytes(
    data: bytes,
    name: str,
    *,
    sample_rate: int,
    max_duration_s: float,
    resampler: Resampler = "sinc",
) -> DecodedAudio:
    """Decode an in-memory file such as an upload, with the same validation as files."""
    if not data:
        raise AudioError(name, "the upload is empty (0 bytes)", code="empty")
    return _decode(io.BytesIO(data), name, sample_rate, max_duration_s, resampler)


def _decode(
    handle: BinaryIO,
    source: str | Path,
    sample_rate: int,
    max_duration_s: float,
    resampler: Resampler = "sinc",
) -> DecodedAudio:
    try:
        sound = sf.SoundFile(handle)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise AudioError(
            source,
            f"not an audio file this decoder knows (libsndfile: {_sf_message(exc)})",
            code="not_audio",
        ) from exc
    with sound:
        rate, channels = int(sound.samplerate), int(sound.channels)
        declared = int(sound.frames)
        if rate <= 0 or channels <= 0:
            raise AudioError(
                source, f"invalid header ({rate} Hz, {channels} channels)", code="bad_header"
            )
        if declared / rate > max_duration_s:
            raise AudioError(
                source,
                f"{declared / rate:.1f} s long, over the {max_duration_s:g} s limit",
                code="too_long",
            )
        blocks: list[np.ndarray] = []
        try:
            while True:
                block = sound.read(_READ_BLOCK_FRAMES, dtype="float32", always_2d=True)
                if block.shape[0] == 0:
                    break
                blocks.append(block.mean(axis=1, dtype=np.float32) if channels > 1 else block[:, 0])
                if sum(b.shape[0] for b in blocks) / rate > max_duration_s:
                    raise AudioError(
                        source, f"longer than the {max_duration_s:g} s limit", code="too_long"
                    )
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise AudioError(
                source, f"corrupt or truncated audio data ({_sf_message(exc)})", code="corrupt"
            ) from exc
        fmt, subtype = str(sound.format), str(sound.subtype)
        log_text = str(sound.extra_info)

    mono = np.concatenate(blocks) if blocks else np.zeros(0, np.float32)
    n = mono.shape[0]
    problem = _truncation(fmt, declared, n, log_text)
    if problem:
        raise AudioError(source, f"truncated: {problem}", code="truncated")
    if n == 0:
        raise AudioError(source, "the file holds no audio frames", code="no_frames")
    if not np.isfinite(mono).all():
        raise AudioError(source, "the audio holds NaN or infinite samples", code="non_finite")
    out = resample(mono, rate, sample_rate, resampler) if rate != sample_rate else mono
    return DecodedAudio(
        samples=out,
        sample_rate=sample_rate,
        source_sample_rate=rate,
        channels=channels,
        format=fmt,
        subtype=subtype,
        duration_s=n / rate,
    )


def _truncation(fmt: str, declared: int, read: int, log_text: str) -> str | None:
    """Evidence that the file was cut short, or None."""
    for match in _CHUNK_SHORTFALL.finditer(log_text):
        claimed, present = int(match.group(1)), int(match.group(2))
        if claimed > present:
            return f"the header announces {claimed} bytes of audio but the file holds {present}"
    if fmt in _EXACT_LENGTH_FORMATS and read < declared:
        return f"the header announces {declared} frames but only {read} could be read"
    if fmt == "MP3" and read < _MP3_MIN_READ_FRACTION * declared:
        return f"the header announces {declared} frames but only {read} could be decoded"
    if fmt == "OGG" and "lacks an end-of-stream" in log_text:
        return "the Ogg stream ends without its end-of-stream page"
    return None


def _sf_message(exc: BaseException) -> str:
    text = str(exc).strip()
    # soundfile prefixes messages with the (here meaningless) handle repr: keep the reason.
    return text.split(": ", 1)[-1] if ": " in text else text
