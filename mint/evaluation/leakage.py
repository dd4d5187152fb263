# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""Data leakage: evaluation clips that a training dataset also holds, by file-name identifiers or identical bytes."""

import hashlib
import os
import re
from collections.abc import Sequence
from typing import Any

from datasets import Audio, Dataset, Value

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
    (compared by file names, a caption column would find no overlap and report a clean split)."""
    missing = [column for column in (audio_column, id_column) if column and column not in dataset.column_names]
    if missing:
        raise ValueError(f"A dataset of the leakage check has no column(s) {missing}: its columns are "
                         f"{dataset.column_names}.")
    feature = dataset.features[audio_column]
    if isinstance(feature, Audio) or (isinstance(feature, dict) and {"bytes", "path"} & set(feature)):
        return
    paths = dataset[audio_column][:8] if isinstance(feature, Value) and feature.dtype == "string" else []
    if not any(isinstance(path, str) and os.path.isfile(path) for path in paths):
        raise ValueError(f"The audio column {audio_column!r} holds neither audio (an Audio column) nor paths of audio "
                         f"files (it is {feature}); name the audio column with --audio-column.")


def leakage_report(train_datasets: Sequence[Dataset], eval_dataset: Dataset, audio_column: str = "audio",
                   id_column: str | None = None) -> dict[str, Any]:
    """How many evaluation clips share an identifier ([`clip_identifiers`], with `id_column`'s value as the explicit
    id) with any training clip: check before calling a result zero-shot. Lists the first 20 of them."""
    def identifiers(dataset):
        _check_leakage_columns(dataset, audio_column, id_column)
        dataset = undecoded_audio(dataset, audio_column)
        ids = dataset[id_column] if id_column and id_column in dataset.column_names else [None] * len(dataset)
        return [clip_identifiers(audio, None if i is None else str(i)) for audio, i in zip(dataset[audio_column], ids)]

    seen = set().union(*(ids for dataset in train_datasets for ids in identifiers(dataset)))
    overlaps = [(index, sorted(ids & seen)) for index, ids in enumerate(identifiers(eval_dataset)) if ids & seen]
    return {"task": "leakage", "num_eval_clips": len(eval_dataset), "num_overlapping": len(overlaps),
            "fraction_overlapping": len(overlaps) / max(len(eval_dataset), 1),
            "examples": [{"eval_index": i, "shared": shared} for i, shared in overlaps[:20]]}


__all__ = ["clip_identifiers", "leakage_report"]
