# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""A recipe's datasets as training examples: each read from its folder (or streamed from it), checked against the
stage it trains (its columns, its rows, its labels) before any is converted, converted to the stage's MINT examples,
then mixed by weight."""

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasets import Audio, Dataset, Features, IterableDataset, Value

from audio_encoder_mint import ENCODER_FEATURES_KEY
from mint.data.examples import (check_columns, label_names, mix_datasets, to_caption_pairs, to_mint_examples,
                                undecoded_audio)
from mint.data.splits import load_split
from mint.data.templates import get_template
from mint.training.collator import ROW_COLUMN, SOURCE_COLUMN, number_rows
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
    try:
        check_columns(dataset, {"audio": columns["audio"]})
    except ValueError as error:
        raise ValueError(f"{name}: {error}") from None
    text_column = columns.get("label") or columns.get("caption")
    text_type = dataset.features[text_column] if text_column else None
    if stage == 1 and not (isinstance(text_type, Value) and text_type.dtype in ("string", "large_string")):
        raise ValueError(f"{name}: the caption column {text_column!r} holds {text_type}, not text; a stage-1 recipe "
                         "reads one caption (a string) per clip: name a text column (caption_column).")
    empty = empty_rows(dataset, text_column) if text_column else []
    if empty:
        raise ValueError(f"{name}: {len(empty)} of {len(dataset)} rows have an empty {text_column!r} (rows "
                         f"{empty[:10]}{' ...' if len(empty) > 10 else ''}), which training rejects; prepare the "
                         "dataset with `mint data prepare ... --labeled-only` into a folder for training.")
    return template, columns


def empty_rows(dataset: Dataset, column: str) -> list[int]:
    """
    The rows whose `column` is null, blank text, an empty list, a list holding a null or blank text, or a class index
    without a name (negative, a `ClassLabel`'s "no label" -1, or beyond a `ClassLabel`'s names), read from its Arrow
    column without decoding anything else.
    """
    values = dataset.select_columns([column]).with_format("arrow")[:][column].combine_chunks()
    names = label_names(dataset, column)
    rows = np.arange(len(values))
    empty = pc.fill_null(_empty_values(values, names), True).to_numpy(zero_copy_only=False)
    if pa.types.is_list(values.type) or pa.types.is_large_list(values.type):
        empty |= pc.equal(pc.fill_null(pc.list_value_length(values), 0), 0).to_numpy(zero_copy_only=False)
        flat = values.flatten()
        bad = pc.fill_null(_empty_values(flat, names), True).to_numpy(zero_copy_only=False)
        empty |= np.isin(rows, pc.list_parent_indices(values).to_numpy()[bad])
    return np.flatnonzero(empty).tolist()


def _empty_values(values: pa.Array, names: list[str] | None) -> pa.Array:
    """Which of `values` are null, blank text or a class index outside `names` (negative where there are none)."""
    empty = values.is_null()
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        empty = pc.or_(empty, pc.equal(pc.utf8_trim_whitespace(values), ""))
    elif pa.types.is_integer(values.type):
        empty = pc.or_(empty, pc.less(values, 0))
        if names is not None:
            empty = pc.or_(empty, pc.greater_equal(values, len(names)))
    return empty


def _examples(spec: dict[str, Any], stage: int, dataset: Dataset, template: str, columns: dict[str, str],
              source: int, streaming: bool = False, seed: int = 0,
              group_column: str | None = None, audio_id_column: str | None = None) -> Dataset | IterableDataset:
    """
    One recipe dataset, checked ([`check_dataset`] gave `template` and `columns`), as MINT examples of the stage,
    numbered by their own rows and `source`, the dataset's place in the recipe ([`number_rows`]). With `streaming` it is
    an `IterableDataset` read lazily from its memory-mapped folder ([`_numbered_stream`]): the examples are converted as
    training reads them, never copied ahead of it. (An audio folder is still turned into Arrow files by `datasets`
    first.)
    """
    def convert(rows: Dataset | IterableDataset) -> Dataset | IterableDataset:
        if "target" in columns:  # a feature cache of stage-2 examples
            return rows
        if stage == 1:
            return to_caption_pairs(rows, columns["audio"], columns["caption"],
                                    keep_columns=[group_column] if group_column else [])
        return to_mint_examples(rows, template, columns["audio"], columns.get("label"), columns.get("caption"),
                                spec.get("prompt"), keep_columns=[audio_id_column] if audio_id_column else [])

    examples = (_numbered_stream(dataset, convert, columns["audio"], source, seed) if streaming
                else number_rows(convert(dataset), source))
    return _cached_features_as_numpy(examples) if columns["audio"] == ENCODER_FEATURES_KEY else examples


def _numbered_stream(dataset: Dataset, convert: Callable[[IterableDataset], IterableDataset], audio_column: str,
                     source: int, seed: int) -> IterableDataset:
    """
    `dataset` as a shuffled `IterableDataset` of its examples (`convert`ed lazily), each numbered by its own row and
    `source` ([`number_rows`]'s columns), so that a bad example is named by its row rather than its place in the
    shuffled stream. The rows are read in up to `STREAM_SHARDS` contiguous shards, each converted and numbered in order
    before the shuffle (of the shard order, and in a buffer of `STREAM_SHUFFLE_BUFFER` examples) mixes them.
    """
    bounds = np.linspace(0, dataset.num_rows, max(1, min(STREAM_SHARDS, dataset.num_rows)) + 1).astype(int)

    def numbered(shards: list[tuple[int, int]]) -> Iterator[dict[str, Any]]:
        for start, stop in shards:
            for row, example in enumerate(convert(dataset.select(range(start, stop)).to_iterable_dataset()), start):
                yield {**example, ROW_COLUMN: row, SOURCE_COLUMN: source}

    first = next(iter(numbered([(0, 1)])))
    read = undecoded_audio(dataset, audio_column).features
    # An undecoded Audio column is typed by its Arrow struct: the stream passes the {"bytes", "path"} rows as they are
    # read (`Audio` would re-encode each one, which needs torchcodec).
    audio = read[audio_column]
    audio = {"bytes": Value("binary"), "path": Value("string")} if isinstance(audio, Audio) else audio
    features = Features({key: audio if key in ("audio", ENCODER_FEATURES_KEY) else
                         Value("int64") if key in (ROW_COLUMN, SOURCE_COLUMN) else
                         Value("string") if key in ("caption", "prompt", "target") else read[key] for key in first})
    shards = [(int(start), int(stop)) for start, stop in zip(bounds[:-1], bounds[1:])]
    return IterableDataset.from_generator(numbered, features=features, gen_kwargs={"shards": shards}).shuffle(
        seed=seed, buffer_size=STREAM_SHUFFLE_BUFFER)


def _cached_features_as_numpy(dataset: Dataset | IterableDataset) -> Dataset | IterableDataset:
    """Cached features read as numpy arrays rather than nested Python lists (what `cache_audio_features` returns)."""
    if isinstance(dataset, IterableDataset):
        return dataset.with_format("numpy")
    return dataset.with_format("numpy", columns=[ENCODER_FEATURES_KEY], output_all_columns=True)


def _check_one_feature_type(loaded: list[tuple]) -> None:
    """Refuses feature caches that store their features in different types (dtypes, or the nested lists of a cache
    written by an earlier version beside `Array2D` rows), which cannot be mixed, naming each one's."""
    types = [(index, spec["path"], dataset.features[ENCODER_FEATURES_KEY])
             for index, (spec, dataset, _, columns) in enumerate(loaded, 1) if columns["audio"] == ENCODER_FEATURES_KEY]
    if len({repr(kind) for _, _, kind in types}) > 1:
        found = "; ".join(f"dataset {index} ({path}): {kind}" for index, path, kind in types)
        raise ValueError(f"The recipe's feature caches store {ENCODER_FEATURES_KEY} in different types, which cannot "
                         f"be mixed: {found}. Write them again in one dtype (mint cache-features --dtype ... "
                         "--overwrite); a cache of nested lists (List(List(...))) was written by an earlier version "
                         "and is written as Array2D rows now.")


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
            dataset = load_split(spec["path"], spec.get("split"))
            loaded.append((spec, dataset, *check_dataset(spec, recipe.stage, dataset)))
        except ValueError as error:
            problems.append(f"dataset {index} ({spec['path']}): {error}")
    if problems:
        raise ValueError(problems[0] if len(problems) == 1 else "The recipe's datasets cannot train:\n- "
                         + "\n- ".join(problems))
    _check_one_feature_type(loaded)
    streaming = any(spec.get("streaming") for spec in recipe.datasets)
    parts = [_examples(spec, recipe.stage, dataset, template, columns, source, streaming, recipe.seed,
                       recipe.group_column, recipe.audio_id_column)
             for source, (spec, dataset, template, columns) in enumerate(loaded)]
    mixture = mix_datasets(parts, [spec.get("weight", 1.0) for spec in recipe.datasets], seed=recipe.seed)
    return mixture.repeat(None) if streaming else mixture


__all__ = ["STREAM_SHARDS", "STREAM_SHUFFLE_BUFFER", "build_train_dataset", "check_dataset", "empty_rows",
           "example_columns"]
