# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""Reading an evaluation dataset: its clips in batches through the processor (under its long-audio policy, refused
clips named or skipped), or their cached encoder features, and its reference captions."""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from datasets import Dataset
from tqdm.auto import tqdm
from transformers.utils import logging

from audio_encoder_mint import ENCODER_FEATURES_KEY
from audio_io_mint import audio_path
from mint.data.collator import as_features, cached_features_problem, pad_audio_features
from mint.data.examples import check_columns, check_flag, check_positive_int, describe_clip, load_clips
from processing_mint import collected_crop_notices


logger = logging.get_logger(__name__)


def model_device(model) -> torch.device:
    """The device of the model's parameters."""
    return next(model.parameters()).device


def inputs_on(inputs, device: torch.device) -> dict[str, torch.Tensor]:
    """A processor output's model inputs on `device` (its `clip_index`, which the model does not take, left out)."""
    return {k: v.to(device) for k, v in inputs.items() if k != "clip_index"}


def _batches(dataset: Dataset, batch_size: int, progress: bool, description: str) -> Iterator[tuple[int, dict]]:
    """`(first row, rows)` for consecutive batches of `dataset`."""
    with tqdm(total=len(dataset), desc=description, disable=not progress, unit="clip") as bar:
        for start in range(0, len(dataset), batch_size):
            batch = dataset[start : start + batch_size]
            yield start, batch
            bar.update(len(next(iter(batch.values()))))


@dataclass
class AudioBatch:
    """A batch ready for the model: `rows` of the dataset (of the valid clips), the processor's `inputs` for them (one
    row per window with the window policy) and `clip_index` `(rows of inputs,)` mapping each row of `inputs` to its
    clip's position in `rows`."""

    rows: list[int]
    inputs: dict[str, torch.Tensor]
    clip_index: torch.Tensor


@dataclass
class ClipReader:
    """
    Reads an evaluation's clips in batches through the processor, and records what it met: the clips it left out
    (`skipped`, with `skip_invalid`) and how many it cropped.

    Long clips follow `long_audio_policy` (default: the processor's): cropped to their first `max_audio_seconds` (one
    warning per evaluation, from [`record`], with the count), or cut into windows that the tasks pool into one result
    per clip. A clip the processor refuses (an undecodable file, a clip shorter than the encoder's minimum) is an error
    naming its dataset row and file or, with `skip_invalid`, is left out and listed in `skipped`.

    With `audio_column="audio_encoder_features"` the clips are the frozen encoder's cached features, one `(frames,
    features)` row per clip as [`cache_audio_features`] writes them: the encoder does not run, so a model sharing the
    cache's encoder scores the same as from the audio, and evaluating several models costs one encoder pass. The cache
    applied the long-audio policy when it was written, so `long_audio_policy` is refused; a row that is not such an
    array, has no frames or holds NaN is refused (or skipped) as a clip the processor refuses.
    """

    processor: Any
    audio_column: str = "audio"
    batch_size: int = 8
    progress: bool = True
    long_audio_policy: str | None = None
    skip_invalid: bool = False
    skipped: list[dict[str, Any]] = field(default_factory=list)
    num_cropped: int = 0

    def __post_init__(self) -> None:
        check_flag("skip_invalid", self.skip_invalid)
        check_flag("progress", self.progress)
        check_positive_int("batch_size", self.batch_size, "clips per forward pass")
        if self.cached and self.long_audio_policy is not None:
            raise ValueError(f"long_audio_policy={self.long_audio_policy!r} applies to audio; the clips of column "
                             f"{ENCODER_FEATURES_KEY!r} are cached encoder features, cut to the encoder's window when "
                             "they were cached. Leave long_audio_policy unset, or evaluate from the audio.")

    @property
    def cached(self) -> bool:
        """Whether the clips are cached encoder features rather than audio."""
        return self.audio_column == ENCODER_FEATURES_KEY

    def batches(self, model, dataset: Dataset, description: str, prompt: str | None = None,
                rows: Sequence[int] | None = None) -> Iterator[AudioBatch]:
        """The clips of `dataset` (those of `rows` only, default all; named by their rows in `dataset`), with `prompt`
        as each clip's text, as inputs on the model's device."""
        device = model_device(model)
        width = model.config.audio_feature_size if self.cached else None
        positions = range(len(dataset)) if rows is None else list(rows)
        subset = dataset if rows is None else dataset.select(positions)
        if self.cached:  # feature rows as arrays, not nested lists
            subset = subset.with_format("numpy", columns=[self.audio_column], output_all_columns=True)
        for start, batch in _batches(subset, self.batch_size, self.progress, description):
            clips = list(batch[self.audio_column])
            rows = [positions[i] for i in range(start, start + len(clips))]
            try:
                inputs = self._process(clips, prompt, width)
            except (ValueError, TypeError):
                clips, rows = self._valid_clips(clips, rows, width)
                if len(clips) == len(batch[self.audio_column]):  # no clip alone is refused: the batch's error stands
                    raise
                if not rows:
                    continue
                inputs = self._process(clips, prompt, width)
            clip_index = inputs.get("clip_index")
            clip_index = torch.arange(len(rows)) if clip_index is None else clip_index.long()
            yield AudioBatch(rows, inputs_on(inputs, device), clip_index.to(device))

    def _process(self, clips: list, prompt: str | None, width: int | None = None):
        """The processor's inputs for `clips`; its crop notices are counted instead of logged one by one. Cached
        features (of `width` features per frame, the model's) are padded into `audio_encoder_features` and
        `audio_attention_mask` beside the prompt's tokens."""
        if self.cached:
            arrays = []
            for position, clip in enumerate(clips):
                try:
                    arrays.append(as_features(clip, width))
                except ValueError as error:
                    raise ValueError(f"audio clip {position}: {error}.") from None
            inputs = self.processor(text=[prompt] * len(clips)) if prompt is not None else {}
            features, mask = pad_audio_features(arrays)
            return {**inputs, ENCODER_FEATURES_KEY: features, "audio_attention_mask": mask}
        with collected_crop_notices() as notices:
            inputs = self.processor(audio=clips, text=None if prompt is None else [prompt] * len(clips),
                                    long_audio_policy=self.long_audio_policy)
        self.num_cropped += len(notices)
        return inputs

    def _valid_clips(self, clips: list, rows: list[int], width: int | None = None) -> tuple[list, list[int]]:
        """The clips the processor accepts, with their rows. A refused clip raises an error naming its row and file,
        or, with `skip_invalid`, is left out and recorded."""
        if self.cached:
            reasons = [f"{problem}." if (problem := cached_features_problem(clip, width)) else "" for clip in clips]
        else:
            _, reasons = load_clips(self.processor, clips)
        for clip, row, reason in zip(clips, rows, reasons):
            if reason and not self.skip_invalid:
                raise ValueError(f"{describe_clip(row, clip)}: {reason} Pass skip_invalid=True (mint eval "
                                 "--skip-invalid) to skip such clips and count them.")
            if reason:
                logger.warning(f"{describe_clip(row, clip)} is skipped: {reason}")
                self.skipped.append({"row": row, "path": audio_path(clip), "reason": reason})
        valid = [(clip, row) for clip, row, reason in zip(clips, rows, reasons) if not reason]
        return [clip for clip, _ in valid], [row for _, row in valid]

    def skip(self, dataset: Dataset, rows: list[int], reason: str) -> None:
        """Records `rows` of `dataset` as skipped for `reason` (a cause outside their audio, such as a missing label),
        with one warning that counts them."""
        if not rows:
            return
        logger.warning(f"{len(rows)} rows of the dataset are skipped ({reason}): rows {rows[:10]}"
                       + (" ..." if len(rows) > 10 else "") + ".")
        clips = dataset.select(rows)[self.audio_column]
        self.skipped += [{"row": row, "path": audio_path(clip), "reason": reason} for row, clip in zip(rows, clips)]

    def check_some_evaluated(self, rows: list[int]) -> None:
        """Raises a ValueError when no clip was read (`rows` is empty): the dataset is empty, or every clip was
        skipped."""
        if not rows and not self.skipped:
            raise ValueError("No clip to evaluate: the dataset is empty (expected at least one clip).")
        if not rows:
            raise ValueError(f"No clip of the dataset could be evaluated: all {len(self.skipped)} were skipped.")

    def record(self) -> dict[str, Any]:
        """What the result reports about the clips; warns once if some were cropped."""
        if self.num_cropped:
            seconds = self.processor.max_audio_seconds
            logger.warning(f"{self.num_cropped} clips are longer than {seconds} s and were cropped to their first "
                           f"{seconds} s; pass long_audio_policy='window' (mint eval --long-audio-policy window) to "
                           "use all of their audio.")
        return {"long_audio_policy": self.long_audio_policy or self.processor.long_audio_policy,
                "num_cropped": self.num_cropped, "num_skipped": len(self.skipped), "skipped": self.skipped}


def captions_per_clip(dataset: Dataset, caption_columns: Sequence[str]) -> list[list[str]]:
    """The reference captions of each clip: one column of caption lists (or of single captions), or one caption per
    column of `caption_columns` (Clotho's `caption_1` ... `caption_5`)."""
    check_columns(dataset, {f"caption ({c})": c for c in caption_columns})
    if len(caption_columns) == 1:
        values = dataset[caption_columns[0]]
        return [list(v) if isinstance(v, (list, tuple)) else [v] for v in values]
    return [list(row) for row in zip(*(dataset[c] for c in caption_columns))]


__all__ = ["AudioBatch", "ClipReader", "captions_per_clip", "inputs_on", "model_device"]
