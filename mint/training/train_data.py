# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""A recipe's datasets as training examples: each read from its folder (or streamed from it) and converted to the
stage's MINT examples, then mixed by weight."""

from typing import Any

from datasets import Dataset, IterableDataset

from audio_encoder_mint import ENCODER_FEATURES_KEY
from mint.data.examples import load_local_dataset, mix_datasets, to_caption_pairs, to_mint_examples
from mint.training.recipe import MintRecipe, dataset_list_problems


# A streamed dataset is read as this many contiguous shards: enough to split over 2 nodes x 8 GPUs x 4 dataloader
# workers, each process and worker reading shards of its own.
STREAM_SHARDS = 1024
# Examples a streamed dataset's shuffle buffer holds (the shard order is shuffled as well).
STREAM_SHUFFLE_BUFFER = 1000


def _load_one_dataset(spec: dict[str, Any], stage: int, streaming: bool = False,
                      seed: int = 0) -> Dataset | IterableDataset:
    """
    One recipe dataset as MINT examples of the stage. With `streaming` it is an `IterableDataset` read lazily from its
    memory-mapped folder (shuffled shards and a shuffle buffer): the examples are converted as training reads them,
    never copied ahead of it. (An audio folder is still turned into Arrow files by `datasets` first.)
    """
    if not spec.get("path"):
        raise ValueError(f"Each recipe dataset needs a local 'path'; got {spec}.")
    path = spec["path"]
    dataset = load_local_dataset(path, spec.get("split", "train"))
    if streaming:
        dataset = _stream(dataset, seed)
    if ENCODER_FEATURES_KEY in dataset.column_names:  # written by cache-features: already MINT examples
        return _cached_features_as_numpy(dataset)
    if stage == 1:
        return to_caption_pairs(dataset, spec.get("audio_column", "audio"), spec.get("caption_column", "caption"))
    if "template" not in spec:
        raise ValueError(f"Stage-2 dataset {path!r} needs a 'template' (one of the paper's Table 1 names or yours).")
    return to_mint_examples(dataset, spec["template"], spec.get("audio_column", "audio"), spec.get("label_column"),
                            spec.get("caption_column"), spec.get("prompt"))


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
    The recipe's datasets as MINT examples, mixed by weight. When any entry has `"streaming": true`, all are streamed
    and the mixture repeats without end: a streamed run has no length, so `max_steps` sets its duration, and every
    process reads batches until then (none runs out of data before the others).
    """
    problems = dataset_list_problems(recipe)
    if problems:
        raise ValueError(" ".join(problems))
    streaming = any(spec.get("streaming") for spec in recipe.datasets)
    parts = [_load_one_dataset(spec, recipe.stage, streaming, recipe.seed) for spec in recipe.datasets]
    mixture = mix_datasets(parts, [spec.get("weight", 1.0) for spec in recipe.datasets], seed=recipe.seed)
    return mixture.repeat(None) if streaming else mixture


__all__ = ["STREAM_SHARDS", "STREAM_SHUFFLE_BUFFER", "build_train_dataset"]
