"""Decoding every supported format, rate, depth and channel count; refusing every bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.support.audio_factory import chord_loop, tone, write
from timbre.audio.decode import decode_bytes, decode_file
from timbre.audio.resample import resample
from timbre.errors import AudioError

SR = 24000
LIMITS = {"max_duration_s": 60.0, "max_file_bytes": 50_000_000}


def decode(path: Path, **kw):  # type: ignore[no-untyped-def]
    return decode_file(path, sample_rate=SR, **{**LIMITS, **kw})


@pytest.mark.parametrize(
    ("ext", "subtype"),
    [
        ("wav", "PCM_16"),
        ("wav", "PCM_24"),
        ("wav", "PCM_32"),
        ("wav", "FLOAT"),
        ("wav", "PCM_U8"),
        ("flac", "PCM_16"),
        ("flac", "PCM_24"),
        ("aiff", "PCM_16"),
        ("aif", "PCM_24"),
        ("ogg", "VORBIS"),
        ("mp3", "MPEG_LAYER_III"),
    ],
)
def test_formats_decode_to_mono_24k(tmp_path: Path, ext: str, subtype: str) -> None:
    src = tone(44100, 1.5, 440.0, amp=0.5)
    path = write(tmp_path / f"a.{ext}", src, 44100, subtype=subtype)
    out = decode(path)
    assert out.sample_rate == SR and out.source_sample_rate == 44100
    assert out.samples.dtype == np.float32 and out.samples.ndim == 1
    assert abs(out.duration_s - 1.5) < 0.06  # MP3 encoders pad a few ms
    expected = resample(src, 44100, SR)
    n = min(len(expected), len(out.samples))
    lossy = ext in ("ogg", "mp3")
    if not lossy:
        # Lossless: the decoded signal equals the resampled source up to quantisation.
        quant = {"PCM_U8": 1 / 64, "PCM_16": 1e-4}.get(subtype, 1e-5)
        assert np.abs(out.samples[:n] - expected[:n]).max() < quant
    else:
        # Lossy codecs shift and colour the waveform; the level must survive.
        assert abs(np.sqrt(np.mean(out.samples**2)) - 0.5 / np.sqrt(2)) < 0.05


@pytest.mark.parametrize(
    "rate", [8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000, 88200, 96000]
)
def test_any_rate_is_resampled_to_24k(tmp_path: Path, rate: int) -> None:
    path = write(tmp_path / "r.wav", tone(rate, 1.0, 1000.0), rate, subtype="FLOAT")
    out = decode(path)
    assert out.source_sample_rate == rate
    assert len(out.samples) == -(-rate * 1 * SR // rate)  # ceil(n * 24000 / rate)
    spectrum = np.abs(np.fft.rfft(out.samples))
    peak_hz = np.argmax(spectrum) * SR / len(out.samples)
    assert abs(peak_hz - 1000.0) < 2.0


@pytest.mark.parametrize("channels", [2, 6])
def test_channels_are_averaged(tmp_path: Path, channels: int) -> None:
    left = tone(SR, 1.0, 300.0)
    right = tone(SR, 1.0, 700.0)
    data = np.zeros((SR, channels), np.float32)
    data[:, 0], data[:, 1] = left, right
    path = tmp_path / "multi.wav"
    sf.write(path, data, SR, subtype="FLOAT")
    out = decode(path)
    assert out.channels == channels
    np.testing.assert_allclose(out.samples, (left + right) / channels, atol=1e-7)


def test_upload_bytes_decode_like_files(tmp_path: Path) -> None:
    path = write(tmp_path / "u.flac", chord_loop(44100, 2.0), 44100)
    from_file = decode(path)
    from_bytes = decode_bytes(path.read_bytes(), "u.flac", sample_rate=SR, max_duration_s=60.0)
    np.testing.assert_array_equal(from_file.samples, from_bytes.samples)


# -- refusals --------------------------------------------------------------------------------


def _refused(path: Path, code: str, **kw) -> AudioError:  # type: ignore[no-untyped-def]
    with pytest.raises(AudioError) as info:
        decode(path, **kw)
    assert info.value.code == code, info.value
    assert str(path) in str(info.value)
    return info.value


def test_missing_file(tmp_path: Path) -> None:
    _refused(tmp_path / "nope.wav", "not_found")


def test_directory_is_not_audio(tmp_path: Path) -> None:
    (tmp_path / "dir.wav").mkdir()
    _refused(tmp_path / "dir.wav", "unreadable")


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.wav").write_bytes(b"")
    assert "empty" in _refused(tmp_path / "empty.wav", "empty").reason


@pytest.mark.parametrize("ext", ["wav", "flac", "mp3", "ogg", "aiff"])
def test_non_audio_bytes_behind_an_audio_extension(tmp_path: Path, ext: str) -> None:
    path = tmp_path / f"text.{ext}"
    path.write_bytes(b"This is a README, not a sample.\n" * 50)
    assert "not an audio file" in _refused(path, "not_audio").reason


@pytest.mark.parametrize("ext", ["wav", "aiff", "flac", "ogg", "mp3"])
def test_truncated_files(tmp_path: Path, ext: str) -> None:
    path = write(tmp_path / f"cut.{ext}", chord_loop(SR, 3.0), SR)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioError) as info:
        decode(path)
    assert info.value.code in {"truncated", "corrupt"}, info.value


def test_zero_length_audio(tmp_path: Path) -> None:
    path = tmp_path / "zero.wav"
    sf.write(path, np.zeros((0,), np.float32), SR)
    _refused(path, "no_frames")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_samples(tmp_path: Path, bad: float) -> None:
    x = tone(SR, 0.5)
    x[100] = bad
    path = tmp_path / "nan.wav"
    sf.write(path, x, SR, subtype="FLOAT")
    _refused(path, "non_finite")


def test_over_the_duration_limit_is_refused_before_decoding(tmp_path: Path) -> None:
    path = write(tmp_path / "long.flac", tone(SR, 3.0), SR)
    err = _refused(path, "too_long", max_duration_s=2.0)
    assert "limit" in err.reason


def test_over_the_size_limit(tmp_path: Path) -> None:
    path = write(tmp_path / "big.wav", tone(SR, 1.0), SR)
    _refused(path, "too_large", max_file_bytes=1000)


def test_empty_upload() -> None:
    with pytest.raises(AudioError) as info:
        decode_bytes(b"", "x.wav", sample_rate=SR, max_duration_s=10)
    assert info.value.code == "empty"
