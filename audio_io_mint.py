# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""Reading audio for MINT: files, encoded bytes, `datasets` Audio rows and arrays, decoded, checked, mixed to mono and
resampled to the feature extractor's rate. Every error names the clip (and its file)."""

import io
import os
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from transformers.utils import logging


logger = logging.get_logger(__name__)

AudioInput = str | os.PathLike | bytes | np.ndarray | torch.Tensor | dict
# The shortest clip the wav2vec2-family convolutional front end turns into one frame (400 samples at 16 kHz);
# Whisper pads every clip to its 30 s window, so it takes shorter ones.
MIN_CLIP_SECONDS = 0.025
# Float audio is nominally in [-1, 1]. Float WAV/FLAC files keep overs (inter-sample peaks, an unlimited mix bus):
# peaks a little above 1, rarely beyond +6 dBFS. Integer PCM passed as floats has peaks of tens to thousands (an
# int16 clip above -60 dBFS peaks over 32). So a peak beyond +6 dBFS (2.0) is refused as mis-scaled.
MAX_ABS_SAMPLE = 2.0
SAMPLING_RATE_RANGE = (1000, 1_000_000)
# The signed PCM widths that 64-bit integer samples are read as: the narrowest that holds their values.
PCM_WIDTHS = (16, 24, 32)


def audio_path(audio: Any) -> str | None:
    """The file of a clip given as a path or a `datasets` Audio dict, if any."""
    if isinstance(audio, (str, os.PathLike)):
        return os.fspath(audio)
    return audio.get("path") if isinstance(audio, dict) else None


def audio_values_problem(values: Sequence[Any]) -> str | None:
    """
    Why `values`, the first values of a dataset column given as the audio (undecoded: `datasets` Audio rows as
    `{"bytes", "path"}`), are not clips [`decode_clips`] reads, else None: numbers, text that is not a path (no folder,
    no file extension, no such file), or values of another type, where none of them is a clip. Nulls are left out; a
    path to a missing file counts as audio (such a clip is refused on its own, by its row).
    """
    found = [value for value in values if value is not None]
    if not found or any(_is_clip(value) for value in found):
        return None
    first = found[0]
    if isinstance(first, str):
        return f"holds text ({first!r}, ...), not audio or the paths of audio files"
    if isinstance(first, (bool, int, float, np.number)):
        return f"holds numbers ({first!r}, ...), not audio"
    return f"holds {type(first).__name__} values ({str(first)[:60]!r}, ...), not audio"


def _is_clip(value: Any) -> bool:
    """Whether `value` is a clip [`decode_clips`] takes: a path, bytes, an array or an Audio row."""
    if isinstance(value, os.PathLike):
        return True
    if isinstance(value, str):  # a path, even of a file that is missing (refused later by its row), is not text
        return os.path.isfile(value) or "/" in value or os.sep in value or bool(
            re.fullmatch(r"\S+\.[A-Za-z0-9]{2,5}", value))
    if isinstance(value, dict):
        return bool(value) and set(value) <= {"array", "sampling_rate", "bytes", "path"}
    return isinstance(value, (bytes, np.ndarray, torch.Tensor))


def clip_error_reason(error: Exception) -> str:
    """The message about a single clip, without the clip's position in the list it was given and the file it names
    (the caller names the dataset row and its file itself)."""
    reason = re.sub(r" \(file '.*'\)$", "", re.sub(r"^audio clip \d+:?\s*", "", str(error)))
    return re.sub(r"audio clip \d+", "the clip", reason)


def decode_file(source: str | os.PathLike | io.BytesIO, name: str) -> tuple[np.ndarray, int]:
    """Decodes an audio file to `(channels, samples)` float32 and its sampling rate, with soundfile, falling back to
    librosa."""
    import soundfile

    try:
        data, rate = soundfile.read(source, dtype="float32", always_2d=True)
        return data.T, rate
    except Exception as soundfile_error:  # soundfile lacks some codecs (mp3 on old libsndfile): try librosa
        if isinstance(source, io.BytesIO):
            source.seek(0)
        try:
            import librosa

            data, rate = librosa.load(source, sr=None, mono=False)
            return np.atleast_2d(data).astype(np.float32), int(rate)
        except Exception as librosa_error:
            raise ValueError(
                f"Could not decode {name} as audio (soundfile: {soundfile_error}; librosa: {librosa_error}). "
                "Expected a readable audio file such as wav, flac or ogg."
            ) from None


def mono_at_rate(data: np.ndarray, rate: int, target_rate: int, name: str,
                 require_min_length: bool = True) -> np.ndarray:
    """
    `data` `(samples,)` or `(channels, samples)` / `(samples, channels)` (the smaller dimension being the channels)
    averaged to mono, checked (finite, near [-1, 1]) and resampled from `rate` to `target_rate`: `(samples,)` float32.
    With `require_min_length`, a clip shorter than `MIN_CLIP_SECONDS` is refused.
    """
    if data.ndim not in (1, 2):
        raise ValueError(f"{name} has shape {data.shape}; expected (samples,) or (channels, samples).")
    if data.size == 0:
        raise ValueError(f"{name} is empty (shape {data.shape}): expected at least "
                         f"{MIN_CLIP_SECONDS * 1000:.0f} ms of audio.")
    if data.ndim == 2:
        data = data.mean(axis=int(np.argmin(data.shape)))
    if not np.isfinite(data).all():
        raise ValueError(f"{name} contains NaN or infinite samples; expected finite values.")
    peak = float(np.abs(data).max())
    if peak > MAX_ABS_SAMPLE:
        raise ValueError(f"{name} has samples up to {peak:.3g}; expected float audio near [-1, 1] (at most "
                         f"{MAX_ABS_SAMPLE:g}): pass integer PCM as its integer dtype, which is scaled, or divide "
                         "float audio by its peak.")
    if rate != target_rate:
        import librosa

        data = librosa.resample(data, orig_sr=rate, target_sr=target_rate)
    if require_min_length and data.shape[0] < MIN_CLIP_SECONDS * target_rate:
        raise ValueError(f"{name} lasts {data.shape[0] / target_rate * 1000:.1f} ms; the audio encoder "
                         f"needs at least {MIN_CLIP_SECONDS * 1000:.0f} ms.")
    return data.astype(np.float32)


def decode_clips(audio: AudioInput | Sequence[AudioInput], target_rate: int, sampling_rate: int | float | None = None,
                 names: Sequence[str] | None = None, require_min_length: bool = True) -> list[np.ndarray]:
    """
    Each clip of `audio` (one clip, or a list / `datasets` Column of them) decoded, checked, mixed to mono and
    resampled: a list of `(samples,)` float32 arrays at `target_rate`. A clip is a file path, encoded bytes, a
    `datasets` Audio dict (decoded `{"array", "sampling_rate"}` or undecoded `{"bytes", "path"}`), or a numpy array /
    torch tensor at `sampling_rate`; integer PCM is scaled by its full-scale value. `names` say what each clip is in
    the caller's terms (a dataset row, a pipeline input) for error messages (default "audio clip i").
    """
    single = isinstance(audio, (str, os.PathLike, bytes, np.ndarray, torch.Tensor, dict)) or \
        not hasattr(audio, "__iter__")
    items = [audio] if single else list(audio)  # lists, tuples, a datasets Column
    if not items:
        raise ValueError("Got an empty list of audio clips.")
    names = list(names) if names is not None else [f"audio clip {index}" for index in range(len(items))]
    return [_decode_clip(item, target_rate, sampling_rate, name, require_min_length)
            for item, name in zip(items, names)]


def _decode_clip(item: AudioInput, target_rate: int, sampling_rate: int | float | None, name: str,
                 require_min_length: bool) -> np.ndarray:
    """One clip, as [`decode_clips`] returns it; an error about a clip read from a file names the file."""
    try:
        data, rate = _samples_and_rate(item, target_rate, sampling_rate, name)
        return mono_at_rate(_as_float_samples(np.asarray(data), name), _check_rate(rate, name), target_rate, name,
                            require_min_length)
    except (ValueError, TypeError) as error:
        path = audio_path(item)
        if not path:
            raise
        raise type(error)(f"{error} (file {path!r})") from None


def _samples_and_rate(item: AudioInput, target_rate: int, sampling_rate: int | float | None,
                      name: str) -> tuple[np.ndarray, int | float]:
    if isinstance(item, (str, os.PathLike)):
        if not os.path.isfile(item):
            raise ValueError(f"{name}: the path does not exist or is not a file.")
        return decode_file(item, name)
    if isinstance(item, bytes):
        return decode_file(io.BytesIO(item), f"{name} (encoded bytes)")
    if isinstance(item, dict):
        return _from_datasets_row(item, name)
    if isinstance(item, (np.ndarray, torch.Tensor)):
        if sampling_rate is None:
            raise ValueError(
                f"{name} is a raw array without a sampling rate: pass sampling_rate= (expected "
                f"{target_rate} Hz, other rates are resampled)."
            )
        if isinstance(item, torch.Tensor):
            # numpy has no bfloat16: half-precision tensors are upcast (float32 is what the processor returns).
            item = item.detach().cpu()
            item = item.float() if item.dtype in (torch.bfloat16, torch.float16) else item
            return item.numpy(), sampling_rate
        return item, sampling_rate
    raise TypeError(
        f"{name} has type {type(item).__name__}; expected a file path, encoded bytes, a numpy array or torch "
        "tensor with sampling_rate, or a datasets Audio dict."
    )


def _from_datasets_row(item: dict, name: str) -> tuple[np.ndarray, int]:
    if "array" in item:
        if item.get("sampling_rate") is None:
            raise ValueError(f"{name}: a datasets Audio dict with 'array' needs its 'sampling_rate'.")
        return np.asarray(item["array"]), item["sampling_rate"]
    if item.get("bytes") is not None:
        return decode_file(io.BytesIO(item["bytes"]), f"{name} (bytes)")
    if item.get("path") is not None:
        if not os.path.isfile(item["path"]):
            raise ValueError(f"{name}: the path does not exist or is not a file.")
        return decode_file(item["path"], name)
    raise ValueError(f"{name}: a datasets Audio dict needs 'array' and 'sampling_rate', or 'bytes' or 'path'; "
                     f"got keys {sorted(item)}.")


def _as_float_samples(data: np.ndarray, name: str) -> np.ndarray:
    """
    Float32 samples: integer PCM is scaled by its full-scale value (int16 by 32768); 64-bit integers, which no PCM
    format uses (torch's default integer type), by the full scale of the narrowest PCM width that holds their values
    ([`pcm_full_scale`]). Bool is refused.
    """
    if data.dtype == np.bool_:
        raise TypeError(f"{name} is a bool array; expected float samples or integer PCM.")
    if np.issubdtype(data.dtype, np.integer):
        info = np.iinfo(data.dtype)
        full_scale = float(info.max) + 1.0
        if info.bits == 64:
            return (data.astype(np.float64) / pcm_full_scale(data, name)).astype(np.float32)
        if info.min < 0:
            return (data.astype(np.float64) / full_scale).astype(np.float32)
        half = full_scale / 2  # unsigned PCM (uint8) is centred on half its range
        return ((data.astype(np.float64) - half) / half).astype(np.float32)
    if not np.issubdtype(data.dtype, np.floating):
        raise TypeError(f"{name} has dtype {data.dtype}; expected float samples or integer PCM.")
    return data.astype(np.float32)


def pcm_full_scale(data: np.ndarray, name: str) -> float:
    """
    The full-scale value of 64-bit integer samples: that of the narrowest signed PCM width (16, 24 or 32 bits) whose
    range holds their values (int16-valued samples: 32768), with a warning, since the dtype does not say it. Unsigned
    64-bit samples, and values beyond 32-bit PCM, are refused.
    """
    if data.dtype.kind == "u":
        raise TypeError(f"{name} has dtype {data.dtype}; expected float samples or integer PCM (int16, int32, uint8).")
    low, high = (int(data.min()), int(data.max())) if data.size else (0, 0)
    for bits in PCM_WIDTHS:
        full_scale = 2 ** (bits - 1)
        if -full_scale <= low and high < full_scale:
            logger.warning(f"{name} has dtype {data.dtype}, which no PCM format uses; its values ({low} to {high}) fit "
                          f"{bits}-bit PCM, so it is scaled by {full_scale}. Pass the PCM dtype (int16, int32) to "
                          "say it.", stacklevel=5)
            return float(full_scale)
    raise ValueError(f"{name} has {data.dtype} samples from {low} to {high}, beyond 32-bit PCM; expected integer PCM "
                     "(int16, int32) or float samples near [-1, 1].")


def _check_rate(rate, name: str) -> int:
    """The sampling rate as an int; fractional, non-numeric or absurd rates are refused."""
    if (isinstance(rate, bool) or not isinstance(rate, (int, float, np.integer, np.floating)) or not np.isfinite(rate)
            or rate != int(rate)):
        raise ValueError(f"{name} has sampling rate {rate!r}; expected a whole number of Hz.")
    if not SAMPLING_RATE_RANGE[0] <= rate <= SAMPLING_RATE_RANGE[1]:
        raise ValueError(f"{name} has sampling rate {rate} Hz; expected {SAMPLING_RATE_RANGE[0]} to "
                         f"{SAMPLING_RATE_RANGE[1]} Hz.")
    return int(rate)
