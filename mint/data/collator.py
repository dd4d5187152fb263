# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""The data collator: MINT examples (raw audio, or frozen-encoder features from the cache) batched by the processor,
with each stage-1 pair's group id where the data names a group column, and in stage 2 each clip's features once where
examples share a clip."""

import hashlib
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from transformers.feature_extraction_utils import BatchFeature

from audio_encoder_mint import ENCODER_FEATURES_KEY
from processing_mint import MintProcessor


def pad_audio_features(rows: list[np.ndarray | torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Pads cached `(frames, hidden)` features to `(batch, max_frames, hidden)` with their frame mask."""
    # Padded in numpy: rows read from Arrow are read-only arrays, which torch would warn about wrapping.
    arrays = [np.asarray(r, dtype=np.float32) for r in rows]
    widths = [a.shape[-1] if a.ndim == 2 else None for a in arrays]
    other = [i for i, w in enumerate(widths) if w != widths[0]]
    if other:
        raise ValueError(f"Cached features of batch item(s) {other[:10]} have {widths[other[0]]} features per frame "
                         f"where item 0 has {widths[0]}: the rows of one batch come from one encoder's cache.")
    longest = max(a.shape[0] for a in arrays)
    features = np.zeros((len(arrays), longest, arrays[0].shape[1]), dtype=np.float32)
    mask = np.zeros((len(arrays), longest), dtype=np.int64)
    for i, a in enumerate(arrays):
        features[i, : a.shape[0]] = a
        mask[i, : a.shape[0]] = 1
    return torch.from_numpy(features), torch.from_numpy(mask)


def as_features(values: Any, width: int | None = None) -> np.ndarray:
    """
    One clip's cached encoder features (a row of the feature cache's `audio_encoder_features`: lists, nested or not,
    an array or a tensor) as a float32 `(frames, features)` array, with `width` features per frame where given. A
    `ValueError` says why they are not: text, not a 2-D array of numbers, no frames or no features, another width, or
    values that are NaN or infinite in float32.
    """
    if isinstance(values, torch.Tensor):
        values = values.detach().float().cpu().numpy()
    array = np.asarray(values)
    if array.dtype == object:  # a row of lists read as arrays of arrays
        try:
            array = np.asarray(array.tolist())
        except ValueError:
            raise ValueError("not a 2-D array (frames, features): its rows differ in length") from None
    if array.dtype.kind in "US":
        shown = repr(array.item()) if array.ndim == 0 else f"an array of text of shape {array.shape}"
        raise ValueError(f"expected cached encoder features (frames, features), got text ({shown}): the column holds "
                         "paths or text, not the feature cache's features")
    if array.size == 0 and array.ndim <= 2:
        missing = "no features per frame" if array.ndim == 2 and array.shape[0] else "no frames"
        raise ValueError(f"{missing} (shape {array.shape}): a clip the cache could not encode")
    if array.ndim != 2 or array.dtype.kind not in "iuf":
        kind = f"{array.ndim}-D" if array.dtype.kind in "iuf" else f"of {array.dtype}"
        raise ValueError(f"expected a 2-D array of numbers (frames, features), got an array {kind} of shape "
                         f"{array.shape}")
    if width is not None and array.shape[1] != width:
        raise ValueError(f"{array.shape[1]} features per frame, where the model reads {width}: features of another "
                         "encoder or other encoder layers")
    with np.errstate(over="ignore"):
        array = array.astype(np.float32, copy=False)
    bad = np.argwhere(~np.isfinite(array))
    if len(bad):
        frame, dimension = (int(i) for i in bad[0])
        raise ValueError(f"{len(bad)} non-finite value{'s' * (len(bad) > 1)} in float32 (the first "
                         f"{array[frame, dimension]} at frame {frame}, dimension {dimension})")
    return array


def cached_features_problem(values: Any, width: int | None = None) -> str | None:
    """Why `values` are not one clip's cached encoder features (of `width` features per frame; [`as_features`]), else
    None."""
    try:
        as_features(values, width)
    except ValueError as error:
        return str(error)
    return None


def group_id(value: Any) -> int:
    """
    The int64 group id of a group column's value: an integer as it is, a string by a stable hash (the first 8 bytes
    of its BLAKE2b digest, the same in every process and run, unlike Python's `hash`). Anything else, or an integer
    outside int64, raises a `ValueError`.
    """
    if isinstance(value, np.ndarray) and value.ndim == 0:  # a scalar of a numpy-formatted dataset
        value = value.item()
    if isinstance(value, str):
        return int.from_bytes(hashlib.blake2b(value.encode("utf-8"), digest_size=8).digest(), "little", signed=True)
    if isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)):
        if not -(2**63) <= int(value) < 2**63:
            raise ValueError(f"Group id {value} lies outside int64; use smaller integers or strings.")
        return int(value)
    raise ValueError(f"A group id must be an integer or a string (a label, or an id shared by clips that are "
                     f"positives of one another), got {type(value).__name__} {value!r}.")


def clip_id(value: Any, where: str) -> int:
    """The int64 id ([`group_id`]) of an audio id column's `value` naming a clip; a value that cannot name one raises
    a `ValueError` naming `where` it comes from."""
    try:
        return group_id(value)
    except ValueError:
        raise ValueError(f"The audio id of {where} is {type(value).__name__} {value!r}; an audio id must be an integer "
                         "(within int64) or a string naming the clip.") from None


@dataclass
class MintDataCollator:
    """
    Batches MINT examples with [`MintProcessor`]: stage 1 takes `{"audio", "caption"}`, stage 2
    `{"audio", "prompt", "target"}`. Examples from the frozen-feature cache carry `audio_encoder_features` instead of
    `audio`. With `group_column` (stage 1), each example's value of that column becomes its `group_ids` entry
    ([`group_id`]), `(batch,)` int64: `MintForPreTraining` treats pairs of one group as positives of each other.
    With `audio_id_column` (stage 2, cached features), examples with one value of that column share their clip (several
    instructions on one clip): the batch holds each clip's features once, `(num_audio, frames, hidden)`, and
    `audio_index` `(batch,)`, each example's row, so that Bridge-Net reads each clip once. Examples of one id whose
    features differ are refused.
    """

    processor: MintProcessor
    stage: int = 2
    group_column: str | None = None
    audio_id_column: str | None = None

    def __post_init__(self):
        if self.group_column is not None and self.stage != 1:
            raise ValueError(f"group_column applies to stage 1 (ALC and ALM pairs); this collator is for stage "
                             f"{self.stage}.")
        if self.audio_id_column is not None and self.stage != 2:
            raise ValueError(f"audio_id_column applies to stage 2 (instructions sharing a clip); this collator is for "
                             f"stage {self.stage}.")

    def __call__(self, examples: list[dict[str, Any]]) -> BatchFeature:
        cached = ENCODER_FEATURES_KEY in examples[0]
        if self.audio_id_column is not None and not cached:
            raise ValueError(f"audio_id_column shares cached encoder features ({ENCODER_FEATURES_KEY}); these examples "
                             "hold raw audio: train from the feature cache (cache_audio_features), or unset "
                             "audio_id_column.")
        # The text the loss reads must be there: a caption (stage 1) or a target (stage 2) that is not blank.
        for key, blank in (("caption", False),) if self.stage == 1 else (("prompt", True), ("target", False)):
            bad = [i for i, e in enumerate(examples)
                   if not isinstance(e.get(key), str) or not (blank or e[key].strip())]
            if bad:
                raise ValueError(f"column {key!r} of batch item(s) {bad[:10]}: expected a "
                                 f"{'string' if blank else 'non-blank string'}, got {examples[bad[0]].get(key)!r}.")
        if self.stage == 1:
            batch = self.processor(audio=None if cached else [e["audio"] for e in examples],
                                   text=[e["caption"] for e in examples], return_llm_inputs=False)
        else:
            batch = self.processor(audio=None if cached else [e["audio"] for e in examples],
                                   text=[e["prompt"] for e in examples], text_target=[e["target"] for e in examples])
        if self.audio_id_column is not None:
            rows, batch["audio_index"] = self._shared_rows(examples)
        else:
            rows = list(range(len(examples)))
        if cached:
            batch[ENCODER_FEATURES_KEY], batch["audio_attention_mask"] = pad_audio_features(
                [examples[row][ENCODER_FEATURES_KEY] for row in rows])
        if self.group_column is not None:
            missing = [i for i, e in enumerate(examples) if self.group_column not in e]
            if missing:
                raise ValueError(f"Examples {missing[:10]} of this batch have no group column {self.group_column!r}; "
                                 f"they hold {sorted(examples[missing[0]])}.")
            groups = torch.tensor([group_id(e[self.group_column]) for e in examples], dtype=torch.long)
            # With the processor's "window" policy every window of a clip is a row, in its clip's group.
            batch["group_ids"] = groups[batch["clip_index"]] if "clip_index" in batch else groups
        return batch

    def _shared_rows(self, examples: list[dict[str, Any]]) -> tuple[list[int], torch.Tensor]:
        """The first example of each clip (by `audio_id_column`) and each example's position among them."""
        missing = [i for i, e in enumerate(examples) if self.audio_id_column not in e]
        if missing:
            raise ValueError(f"Examples {missing[:10]} of this batch have no audio_id_column {self.audio_id_column!r}; "
                             f"they hold {sorted(examples[missing[0]])}.")
        position: dict[int, int] = {}
        rows, index = [], []
        for i, example in enumerate(examples):
            value = example[self.audio_id_column]
            index.append(position.setdefault(clip_id(value, f"batch item {i} ({self.audio_id_column!r})"),
                                             len(rows)))
            if index[-1] == len(rows):
                rows.append(i)
            elif not np.array_equal(np.asarray(example[ENCODER_FEATURES_KEY]),
                                    np.asarray(examples[rows[index[-1]]][ENCODER_FEATURES_KEY]), equal_nan=True):
                shown = value.item() if isinstance(value, np.generic) else value
                raise ValueError(f"Batch items {rows[index[-1]]} and {i} share the {self.audio_id_column!r} value "
                                 f"{shown!r} but not their {ENCODER_FEATURES_KEY}: an audio id "
                                 "must name one clip across all the training data (datasets of other clips need ids "
                                 "of their own).")
        return rows, torch.tensor(index, dtype=torch.long)


__all__ = ["MintDataCollator", "as_features", "cached_features_problem", "clip_id", "group_id", "pad_audio_features"]
