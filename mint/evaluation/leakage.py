# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""Data leakage: evaluation clips that a training dataset also holds, by file-name identifiers or identical bytes."""

import hashlib
import os
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
from datasets import Audio, Dataset, Value

from audio_encoder_mint import ENCODER_FEATURES_KEY
from mint.data.collator import as_features
from mint.data.examples import undecoded_audio


_FREESOUND_ID = re.compile(r"(?:^|[^0-9])(\d{3,9})(?:[^0-9]|$)")
_YOUTUBE_ID = re.compile(r"(?:^|[^A-Za-z0-9_-])([A-Za-z0-9_-]{11})(?:[^A-Za-z0-9_-]|$)")


def clip_identifiers(row_audio: dict | str, explicit_id: str | None = None) -> set[str]:
    """
    Identifiers of a clip for leakage checks: an explicit id, Freesound-style numeric ids and YouTube-style 11-character
    ids found in its file name, and the SHA-256 of its bytes when they are at hand.
    """
    ids = {f"id:{explicit_id}"} if explicit_id else set()
    path = row_audio if isinstance(row_audio, str) else (row_audio or {}).get("path")
    data = None if isinstance(row_audio, str) else (row_audio or {}).get("bytes")
    if path:
        stem = os.path.splitext(os.path.basename(path))[0]
        ids |= {f"freesound:{m}" for m in _FREESOUND_ID.findall(stem)}
        ids |= {f"youtube:{m}" for m in _YOUTUBE_ID.findall(stem) if not m.isdigit()}
        if data is None and os.path.isfile(path):
            with open(path, "rb") as f:
                data = f.read()
    if data is not None:
        ids.add("sha256:" + hashlib.sha256(data).hexdigest())
    return ids


def _check_leakage_columns(dataset: Dataset, audio_column: str, id_column: str | None) -> None:
    """Refuses a dataset without the named columns, or whose audio column holds neither audio nor audio file paths
    (compared by file names, a caption column would find no overlap and report a clean split), and cached encoder
    features without a column of clip ids."""
    missing = [column for column in (audio_column, id_column) if column and column not in dataset.column_names]
    if missing:
        raise ValueError(f"A dataset of the leakage check has no column(s) {missing}: its columns are "
                         f"{dataset.column_names}.")
    if audio_column == ENCODER_FEATURES_KEY:
        if id_column is None:
            raise ValueError(f"Cached encoder features ({ENCODER_FEATURES_KEY}) do not identify their clips: the "
                             "encoder's rounding depends on the batch a clip was cached in, and a cache may be "
                             "float16. Name a column of clip ids that the caches kept (id_column, --id-column), such "
                             "as the audio's file name or an id kept as a column before caching.")
        return
    feature = dataset.features[audio_column]
    if isinstance(feature, Audio) or (isinstance(feature, dict) and {"bytes", "path"} & set(feature)):
        return
    paths = dataset[audio_column][:8] if isinstance(feature, Value) and feature.dtype == "string" else []
    if not any(isinstance(path, str) and os.path.isfile(path) for path in paths):
        raise ValueError(f"The audio column {audio_column!r} holds neither audio (an Audio column) nor paths of audio "
                         f"files (it is {feature}); name the audio column with --audio-column.")


# How close two cached rows' mean features must be, relative to the larger magnitude of one, to be one clip: far above
# the rounding of a float16 cache or of another batch's padding, far below the difference of two clips.
FEATURE_MATCH_TOLERANCE = 1e-2


def _feature_means(dataset: Dataset, column: str, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's cached features averaged over its frames, float64 `(rows, width)`, and its frame count (-1 for a
    row that is not features of `width`, which matches nothing)."""
    rows = dataset.with_format("numpy", columns=[column])
    means, frames = [], []
    for start in range(0, len(rows), 256):
        for values in rows[start : start + 256][column]:
            try:
                array = as_features(values, width)
            except ValueError:
                means.append(None)
                frames.append(-1)
                continue
            means.append(array.mean(axis=0, dtype=np.float64))
            frames.append(array.shape[0])
    return np.stack([np.full(width, np.nan) if m is None else m for m in means]), np.array(frames)


def shared_cached_clips(reference: Dataset, dataset: Dataset, width: int,
                        column: str = ENCODER_FEATURES_KEY) -> list[int]:
    """
    The rows of `dataset` whose cached encoder features (`column`, `width` features per frame: the model's) are those
    of a row of `reference`: as many frames, and mean features over the frames within `FEATURE_MATCH_TOLERANCE` of the
    larger magnitude (at least 1). Cached features carry no file name and their bytes depend on the batch a clip was
    cached in and on the cache's dtype, so clips are matched by value; rows that are not features of `width` match
    nothing (evaluation names or skips them). Meant for a small `reference` (a few-shot support set): the cost is
    rows x reference rows x width.
    """
    if not len(reference) or not len(dataset):
        return []
    ref_means, ref_frames = _feature_means(reference, column, width)
    means, frames = _feature_means(dataset, column, width)
    shared = []
    for start in range(0, len(means), 256):
        block, block_frames = means[start : start + 256], frames[start : start + 256]
        scale = np.maximum(np.abs(block)[:, None, :].max(-1), np.abs(ref_means)[None, :, :].max(-1))
        distance = np.abs(block[:, None, :] - ref_means[None, :, :]).max(-1)
        close = (distance <= FEATURE_MATCH_TOLERANCE * np.maximum(scale, 1.0)) & (
            block_frames[:, None] == ref_frames[None, :]) & (block_frames[:, None] > 0)
        shared += [start + int(i) for i in np.flatnonzero(close.any(axis=1))]
    return shared


def leakage_report(train_datasets: Sequence[Dataset], eval_dataset: Dataset, audio_column: str = "audio",
                   id_column: str | None = None) -> dict[str, Any]:
    """How many evaluation clips share an identifier ([`clip_identifiers`], with `id_column`'s value as the explicit
    id) with any training clip: check before calling a result zero-shot. Lists the first 20 of them."""
    def identifiers(dataset):
        _check_leakage_columns(dataset, audio_column, id_column)
        dataset = undecoded_audio(dataset, audio_column)
        ids = dataset[id_column] if id_column and id_column in dataset.column_names else [None] * len(dataset)
        if audio_column == ENCODER_FEATURES_KEY:  # the ids alone (`_check_leakage_columns`)
            return [set() if i is None else {f"id:{i}"} for i in ids]
        return [clip_identifiers(audio, None if i is None else str(i)) for audio, i in zip(dataset[audio_column], ids)]

    seen = set().union(*(ids for dataset in train_datasets for ids in identifiers(dataset)))
    overlaps = [(index, sorted(ids & seen)) for index, ids in enumerate(identifiers(eval_dataset)) if ids & seen]
    return {"task": "leakage", "num_eval_clips": len(eval_dataset), "num_overlapping": len(overlaps),
            "fraction_overlapping": len(overlaps) / max(len(eval_dataset), 1),
            "examples": [{"eval_index": i, "shared": shared} for i, shared in overlaps[:20]]}


__all__ = ["FEATURE_MATCH_TOLERANCE", "clip_identifiers", "leakage_report", "shared_cached_clips"]
