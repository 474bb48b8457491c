"""Audio in: decode, validate, resample to the model rate, normalise and window. No torch here."""

from timbre.audio.decode import DecodedAudio, decode_bytes, decode_file
from timbre.audio.resample import resample
from timbre.audio.windows import PIPELINE_VERSION, normalize, plan_windows, prepare_windows

__all__ = [
    "PIPELINE_VERSION",
    "DecodedAudio",
    "decode_bytes",
    "decode_file",
    "normalize",
    "plan_windows",
    "prepare_windows",
    "resample",
]
