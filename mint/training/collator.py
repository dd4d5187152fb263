# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""Checked training batches: each example numbered by its dataset and row ([`number_rows`]), checked before it is
batched ([`CheckedCollator`]), and each batch's record of where its examples come from kept beside the model's inputs
([`CheckedBatch`]), for the messages that name a bad example."""

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from datasets import Dataset, IterableDataset
from transformers.feature_extraction_utils import BatchFeature
from transformers.utils import logging

from audio_encoder_mint import ENCODER_FEATURES_KEY
from audio_io_mint import audio_path, clip_error_reason
from mint.data.collator import cached_features_problem


logger = logging.get_logger(__name__)

# Columns [`number_rows`] adds, so that a bad example is named by its dataset and row.
ROW_COLUMN, SOURCE_COLUMN = "mint_row", "mint_source"


def number_rows(dataset: Any, source: int = 0) -> Any:
    """
    `dataset` with each example's row (`mint_row`) and the index of its source dataset (`mint_source`), which
    [`CheckedCollator`] names when an example is invalid. Map-style and iterable `datasets` are numbered; other
    datasets are returned as they are.
    """
    if isinstance(dataset, Dataset):
        # Numbered unformatted: adding a column to a shuffled dataset rewrites it, which Arrow refuses for the
        # numpy-formatted 2-D features of the feature cache. The format is restored afterwards.
        form = dataset.format
        numbered = dataset.with_format(None).add_column(ROW_COLUMN, np.arange(len(dataset))).add_column(
            SOURCE_COLUMN, np.full(len(dataset), source))
        columns = form["columns"] if form["columns"] is None or form["output_all_columns"] else \
            [*form["columns"], ROW_COLUMN, SOURCE_COLUMN]
        return numbered.with_format(form["type"], columns=columns, output_all_columns=form["output_all_columns"])
    if isinstance(dataset, IterableDataset):
        return dataset.map(lambda _, row: {ROW_COLUMN: row, SOURCE_COLUMN: source}, with_indices=True)
    return dataset


@dataclass
class CheckedBatch:
    """
    A batch from [`CheckedCollator`]: `model_inputs`, what the model takes (the wrapped collator's batch), and beside
    them `examples`, where each example comes from (`"row 3 of 'data/wavcaps' (file 'a.wav')"`), and `skipped`, how
    many invalid examples were left out. [`MintTrainer`] hands `model_inputs` to the model and keeps the rest for its
    messages and counts.
    """

    model_inputs: BatchFeature
    examples: list[str]
    skipped: int = 0

    def to(self, *args, **kwargs) -> "CheckedBatch":
        """The batch with `model_inputs` moved (`BatchFeature.to`), as accelerate's data loader moves batches."""
        return dataclasses.replace(self, model_inputs=self.model_inputs.to(*args, **kwargs))

    def pin_memory(self) -> "CheckedBatch":
        """The batch with its tensors in pinned memory, as the `DataLoader` pins batches for a GPU."""
        pinned = {key: value.pin_memory() if isinstance(value, torch.Tensor) else value
                  for key, value in self.model_inputs.items()}
        return dataclasses.replace(self, model_inputs=BatchFeature(pinned))


@dataclass
class CheckedCollator:
    """
    Checks each example, then batches the valid ones with `collator` ([`MintDataCollator`]) into a [`CheckedBatch`].

    An example is invalid when its cached `audio_encoder_features` hold a NaN or infinite value, or when the collator
    refuses it: its audio (undecodable, empty, non-finite or too short) or its other columns (a text that is not a
    string, a missing group). An invalid example raises a `ValueError` naming its dataset (`sources[mint_source]`), its
    row (`mint_row`, see [`number_rows`]), the problem (with the column for audio and features) and the audio file; with
    `skip_invalid` it is left out of the batch with a logged warning instead, and the batch counts it in `skipped`.
    With the processor's `"window"` policy every window of a clip is a training example with the clip's text (the
    processor's `clip_index`, which maps windows to clips, is not a model input and is dropped).
    """

    collator: Callable[[list[dict[str, Any]]], BatchFeature]
    sources: list[str] = field(default_factory=lambda: ["the training dataset"])
    skip_invalid: bool = False

    def __call__(self, examples: list[dict[str, Any]]) -> CheckedBatch:
        examples, skipped = self._drop_invalid(examples, self._feature_problem)
        try:
            batch = self.collator(examples)
        except (ValueError, TypeError) as error:
            valid, more = self._drop_invalid(examples, self._audio_problem)
            if not more:
                self._raise_named_pair(error, examples)
                raise
            examples, skipped = valid, skipped + more
            try:
                batch = self.collator(examples)
            except ValueError as error:
                self._raise_named_pair(error, examples)
                raise
        batch.pop("clip_index", None)
        return CheckedBatch(batch, [self.where(e) for e in examples], skipped)

    def _raise_named_pair(self, error: Exception, examples: list[dict[str, Any]]) -> None:
        """Each example passes alone where the collator refuses a pair of them (`audio_id_column`): the pair is named
        by dataset and row."""
        named = re.sub(r"Batch items (\d+) and (\d+)", lambda m: f"The training examples at "
                       f"{self.where(examples[int(m[1])])} and {self.where(examples[int(m[2])])}", str(error))
        if named != str(error):
            raise ValueError(named) from None

    def where(self, example: dict[str, Any]) -> str:
        """The example's row, dataset and audio file, as the error messages name them."""
        path = audio_path(example.get("audio"))
        place = (f"row {int(example[ROW_COLUMN])} of {self.sources[int(example.get(SOURCE_COLUMN, 0))]}"
                 if ROW_COLUMN in example else f"an example of {self.sources[0]}")
        return place + (f" (file {path!r})" if path else "")

    def valid_rows(self, dataset: Any) -> tuple[list[int], int]:
        """
        The indices of the examples of `dataset` (a held-out set evaluated outside the `Trainer`'s batches) that pass
        the checks of a batch, and how many were left out. An invalid example raises, naming its row, or with
        `skip_invalid` is left out with a logged warning, as in a batch.
        """
        rows = []
        for index in range(len(dataset)):
            example = dataset[index]
            if self._keep(example, self._feature_problem(example) or self._audio_problem(example)):
                rows.append(index)
        return rows, len(dataset) - len(rows)

    def _keep(self, example: dict[str, Any], problem: str | None) -> bool:
        if problem is None:
            return True
        if not self.skip_invalid:
            raise ValueError(f"Invalid training example: {self.where(example)}, {problem}. Fix or remove it, or set "
                             "skip_invalid_examples in the recipe to skip such examples.")
        logger.warning(f"Skipping invalid training example: {self.where(example)}, {problem}.")
        return False

    def _drop_invalid(self, examples: list[dict[str, Any]],
                      problem_of: Callable[[dict[str, Any]], str | None]) -> tuple[list[dict[str, Any]], int]:
        valid = [example for example in examples if self._keep(example, problem_of(example))]
        if not valid:
            raise ValueError(f"Every example of a training batch is invalid ({', '.join(map(self.where, examples))}); "
                             "fix the dataset.")
        return valid, len(examples) - len(valid)

    @staticmethod
    def _feature_problem(example: dict[str, Any]) -> str | None:
        if ENCODER_FEATURES_KEY not in example:
            return None
        problem = cached_features_problem(example[ENCODER_FEATURES_KEY])
        return None if problem is None else f"column '{ENCODER_FEATURES_KEY}': {problem}; rebuild the feature cache"

    def _audio_problem(self, example: dict[str, Any]) -> str | None:
        try:
            self.collator([example])
        except (ValueError, TypeError) as error:
            # The processor names a refused clip "audio clip N"; anything else is about the example's other columns
            # (its text, its group), which the collator's message names.
            if re.match(r"audio clip \d+", str(error)):
                return f"column 'audio': {clip_error_reason(error).rstrip('.')}"
            return re.sub(r" of batch item\(s\) \[[\d, ]*\]", "", str(error)).rstrip(".")
        return None


__all__ = ["ROW_COLUMN", "SOURCE_COLUMN", "CheckedBatch", "CheckedCollator", "number_rows"]
