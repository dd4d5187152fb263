# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""A recipe's datasets as training examples: each read from its folder (or streamed from it), checked against the
stage it trains (its columns, its rows, its labels) before any is converted, converted to the stage's MINT examples,
then mixed by weight."""

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasets import Dataset, IterableDataset

from audio_encoder_mint import ENCODER_FEATURES_KEY
from mint.data.examples import load_local_dataset, mix_datasets, to_caption_pairs, to_mint_examples
from mint.data.templates import get_template
from mint.training.collator import number_rows
from mint.training.recipe import MintRecipe, dataset_list_problems


# A streamed dataset is read as this many contiguous shards: enough to split over 2 nodes x 8 GPUs x 4 dataloader
# workers, each process and worker reading shards of its own.
STREAM_SHARDS = 1024
# Examples a streamed dataset's shuffle buffer holds (the shard order is shuffled as well).
STREAM_SHUFFLE_BUFFER = 1000


def example_columns(spec: dict[str, Any], stage: int, column_names: list[str]) -> tuple[str, dict[str, str]]:
    """
    What the recipe entry `spec` reads from a dataset with `column_names` to make the stage's examples: the template's
    name (`"caption pairs"` in stage 1) and the columns, by role (`{"audio": "audio", "label": "label"}`). A feature
    cache (`audio_encoder_features`) is read in place of audio; in stage 2 it is read as it is where it holds stage-2
    examples already (`prompt` and `target`), else its label or caption column through the entry's template.
    """
    cached = ENCODER_FEATURES_KEY in column_names
    audio = ENCODER_FEATURES_KEY if cached else spec.get("audio_column", "audio")
    if stage == 1:
        return "caption pairs", {"audio": audio, "caption": spec.get("caption_column", "caption")}
    if cached and "prompt" in column_names and "target" in column_names:
        return spec.get("template", "cached"), {"audio": audio, "prompt": "prompt", "target": "target"}
    if "template" not in spec:
        found = (" (this feature cache holds no stage-2 examples: no 'prompt' and 'target' columns)" if cached
                 else "")
        raise ValueError(f"stage 2 needs a 'template' (a Table-1 name such as 'NSynth', or one you registered) to "
                         f"make its prompts and targets{found}")
    template = get_template(spec["template"])
    if template.needs_caption:
        return spec["template"], {"audio": audio, "caption": spec.get("caption_column") or "caption"}
    label = spec.get("label_column") or next((c for c in ("label", "labels") if c in column_names), "label")
    return spec["template"], {"audio": audio, "label": label}


def check_dataset(spec: dict[str, Any], stage: int, dataset: Dataset) -> tuple[str, dict[str, str]]:
    """
    Checks, before training starts and without reading a row, that `dataset` (the recipe entry `spec`) can make the
    stage's examples: the columns [`example_columns`] names exist, and it has rows. Returns the template's name and
    those columns; raises a `ValueError` naming the dataset (path and split), the missing columns and the fix.
    """
    name = f"{spec['path']} ({spec.get('split', 'train')})"
    try:
        template, columns = example_columns(spec, stage, dataset.column_names)
    except ValueError as error:
        raise ValueError(f"{name}: {error}") from None
    missing = {role: column for role, column in columns.items() if column not in dataset.column_names}
    if missing:
        wanted = ", ".join(f"{role} column {column!r}" for role, column in missing.items())
        fix = ("a feature cache keeps the columns of the dataset it was made from: cache one that has them"
               if ENCODER_FEATURES_KEY in dataset.column_names else
               "name the right one in the recipe (audio_column, label_column, caption_column)")
        raise ValueError(f"{name} has no {wanted}, which a stage-{stage} recipe reads; its columns are "
                         f"{dataset.column_names}: {fix}.")
    if len(dataset) == 0:
        raise ValueError(f"{name} has no rows; a training dataset needs at least one example.")
    text_column = columns.get("label") or columns.get("caption")
    empty = empty_rows(dataset, text_column) if text_column else []
    if empty:
        raise ValueError(f"{name}: {len(empty)} of {len(dataset)} rows have an empty {text_column!r} (rows "
                         f"{empty[:10]}{' ...' if len(empty) > 10 else ''}), which training rejects; prepare the "
                         "dataset with `mint data prepare ... --labeled-only` into a folder for training.")
    return template, columns


def empty_rows(dataset: Dataset, column: str) -> list[int]:
    """
    The rows whose `column` is null, blank text, an empty list or a negative class index (a `ClassLabel`'s "no label",
    -1), read from its Arrow column without decoding anything else.
    """
    values = dataset.select_columns([column]).with_format("arrow")[:][column].combine_chunks()
    empty = values.is_null()
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        empty = pc.or_(empty, pc.equal(pc.utf8_trim_whitespace(values), ""))
    elif pa.types.is_integer(values.type):
        empty = pc.or_(empty, pc.less(values, 0))
    elif pa.types.is_list(values.type) or pa.types.is_large_list(values.type):
        empty = pc.or_(empty, pc.equal(pc.list_value_length(values), 0))
        if pa.types.is_integer(values.type.value_type):
            negative = pc.less(pc.list_flatten(values), 0).to_numpy(zero_copy_only=False)
            rows = pc.list_parent_indices(values).to_numpy()[negative]
            empty = pc.or_(empty, pa.array(np.isin(np.arange(len(values)), rows)))
    return np.flatnonzero(pc.fill_null(empty, True).to_numpy(zero_copy_only=False)).tolist()


def _examples(spec: dict[str, Any], stage: int, dataset: Dataset, template: str, columns: dict[str, str],
              streaming: bool = False, seed: int = 0) -> Dataset | IterableDataset:
    """
    One recipe dataset, checked ([`check_dataset`] gave `template` and `columns`), as MINT examples of the stage. With
    `streaming` it is an `IterableDataset` read lazily from its memory-mapped folder (shuffled shards and a shuffle
    buffer): the examples are converted as training reads them, never copied ahead of it. (An audio folder is still
    turned into Arrow files by `datasets` first.)
    """
    if streaming:
        dataset = _stream(dataset, seed)
    if "target" in columns:  # a feature cache of stage-2 examples
        examples = dataset
    elif stage == 1:
        examples = to_caption_pairs(dataset, columns["audio"], columns["caption"])
    else:
        examples = to_mint_examples(dataset, template, columns["audio"], columns.get("label"), columns.get("caption"),
                                    spec.get("prompt"))
    return _cached_features_as_numpy(examples) if columns["audio"] == ENCODER_FEATURES_KEY else examples


def _stream(dataset: Dataset, seed: int) -> IterableDataset:
    """A memory-mapped dataset as a shuffled `IterableDataset` of up to `STREAM_SHARDS` shards."""
    shards = max(1, min(STREAM_SHARDS, dataset.num_rows))
    return dataset.to_iterable_dataset(num_shards=shards).shuffle(seed=seed, buffer_size=STREAM_SHUFFLE_BUFFER)


def _cached_features_as_numpy(dataset: Dataset | IterableDataset) -> Dataset | IterableDataset:
    """Cached features read as numpy arrays rather than nested Python lists (what `cache_audio_features` returns)."""
    if isinstance(dataset, IterableDataset):
        return dataset.with_format("numpy")
    return dataset.with_format("numpy", columns=[ENCODER_FEATURES_KEY], output_all_columns=True)


def build_train_dataset(recipe: MintRecipe) -> Dataset | IterableDataset:
    """
    The recipe's datasets as MINT examples, mixed by weight. Every dataset is checked ([`check_dataset`]) before any
    is converted, and the problems are raised together, each with its dataset. Read datasets are numbered by their own
    rows ([`number_rows`]), which the messages about a bad example name. When any entry has `"streaming": true`, all
    are streamed and the mixture repeats without end: a streamed run has no length, so `max_steps` sets its duration,
    and every process reads batches until then (none runs out of data before the others).
    """
    problems = dataset_list_problems(recipe)
    if problems:
        raise ValueError(" ".join(problems))
    loaded, problems = [], []
    for index, spec in enumerate(recipe.datasets, 1):
        try:
            dataset = load_local_dataset(spec["path"], spec.get("split", "train"))
            loaded.append((spec, dataset, *check_dataset(spec, recipe.stage, dataset)))
        except ValueError as error:
            problems.append(f"dataset {index} ({spec['path']}): {error}")
    if problems:
        raise ValueError(problems[0] if len(problems) == 1 else "The recipe's datasets cannot train:\n- "
                         + "\n- ".join(problems))
    streaming = any(spec.get("streaming") for spec in recipe.datasets)
    parts = [_examples(spec, recipe.stage, dataset, template, columns, streaming, recipe.seed)
             for spec, dataset, template, columns in loaded]
    if not streaming:  # a stream is numbered in the order it is read
        parts = [number_rows(part, source) for source, part in enumerate(parts)]
    mixture = mix_datasets(parts, [spec.get("weight", 1.0) for spec in recipe.datasets], seed=recipe.seed)
    return mixture.repeat(None) if streaming else mixture


__all__ = ["STREAM_SHARDS", "STREAM_SHUFFLE_BUFFER", "build_train_dataset", "check_dataset", "empty_rows",
           "example_columns"]
