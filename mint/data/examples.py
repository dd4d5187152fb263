# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""MINT training examples from `datasets`: columns checked, labels written as text, clips decoded and named, local
datasets loaded, and mixtures sampled.

A dataset with an `Audio` column and a `label`, `labels` (multi-label) or `caption` column becomes MINT examples:

    stage 1 (section 2.2):  {"audio", "caption"}
    stage 2 (section 2.3):  {"audio", "prompt", "target"}, the prompt and target format given by a template.

Multi-label targets (OpenMIC-style) are written as the labels joined by ", " in the order the dataset lists them,
e.g. "piano, violin, voice"; classification by vocabulary ranking scores each label on its own.
"""

import numbers
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from datasets import (Audio, ClassLabel, Dataset, concatenate_datasets, interleave_datasets, load_dataset,
                      load_from_disk)

from audio_encoder_mint import ENCODER_FEATURES_KEY
from audio_io_mint import audio_path, audio_values_problem, clip_error_reason
from mint.data.templates import caption_for_epoch, get_template, template_fields
from processing_mint import MintProcessor


# Frame count of each clip in the feature cache: what length-grouped batching sorts by.
CACHED_LENGTH = "audio_length"


def is_integer(value: Any) -> bool:
    """An integer, Python's or numpy's, and not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def check_positive_int(name: str, value: int, meaning: str) -> None:
    """Refuses a `value` that is not a positive integer, saying what it counts (`meaning`)."""
    if not (is_integer(value) and value >= 1):
        raise ValueError(f"{name} must be a positive integer ({meaning}), got {value!r}.")


def check_flag(name: str, value: bool) -> None:
    """Refuses an on/off option that is not True or False (a string such as "no" would count as on)."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}.")


def check_columns(dataset: Dataset, needed: dict[str, str | None]) -> None:
    """Raises a ValueError naming each `{role: column}` of `needed` (None: not needed) that `dataset` lacks."""
    missing = {role: column for role, column in needed.items() if column is not None
               and column not in dataset.column_names}
    if missing:
        wanted = ", ".join(f"{role} column {column!r}" for role, column in missing.items())
        raise ValueError(f"The dataset has no {wanted}; its columns are {dataset.column_names}. "
                         "Name the right columns (audio_column=, label_column=, caption_column=).")
    audio = needed.get("audio")
    if audio is not None and audio != ENCODER_FEATURES_KEY and isinstance(dataset, Dataset):
        problem = audio_values_problem(undecoded_audio(dataset.select_columns([audio]), audio).with_format(None)[:8][
            audio])
        if problem:
            raise ValueError(f"The audio column {audio!r} {problem}; expected an Audio column, audio file paths or "
                             "encoded bytes. Name the column that holds the audio (audio_column=, --audio-column).")


def undecoded_audio(dataset: Dataset, audio_column: str) -> Dataset:
    """Audio columns are read as {"bytes", "path"} and decoded by the processor (no torchcodec needed)."""
    feature = dataset.features[audio_column]
    if isinstance(feature, Audio) and feature.decode:
        return dataset.cast_column(audio_column, Audio(decode=False))
    return dataset


def label_names(dataset: Dataset, column: str) -> list[str] | None:
    """The class names of a `ClassLabel` column (or of a list of them), else None (the column holds names)."""
    feature = dataset.features[column]
    if isinstance(feature, ClassLabel):
        return feature.names
    inner = getattr(feature, "feature", None)
    if isinstance(inner, ClassLabel):
        return inner.names
    if isinstance(feature, list) and feature and isinstance(feature[0], ClassLabel):
        return feature[0].names
    return None


def label_text(value: Any, names: list[str] | None = None) -> str:
    """
    A label, a class index (with its names) or a list of them as target text (multi-label: joined by ", "). An empty
    label, and a class index outside the names (-1 is a `ClassLabel`'s "no label"), are refused.
    """
    if isinstance(value, (list, tuple)):
        if not value:
            raise ValueError("A multi-label example has no label; expected at least one.")
        return ", ".join(label_text(v, names) for v in value)
    if isinstance(value, (int, np.integer)) and names is not None:
        if not 0 <= value < len(names):
            meaning = " (datasets' 'no label')" if value == -1 else ""
            raise ValueError(f"class index {int(value)}{meaning} has no class name; expected 0..{len(names) - 1}, "
                             "an index of the ClassLabel's names.")
        return names[value]
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValueError("An example has an empty label; expected a label name.")
    return str(value)


def dataset_name(dataset: Any) -> str:
    """How messages name a dataset: the folder of its Arrow files (`'data/esc50/train'`), else `the dataset`."""
    files = getattr(dataset, "cache_files", None)
    return repr(os.path.dirname(files[0]["filename"])) if files else "the dataset"


def to_mint_examples(
    dataset: Dataset,
    template: str,
    audio_column: str = "audio",
    label_column: str | None = None,
    caption_column: str | None = None,
    prompt: str | None = None,
    keep_columns: Sequence[str] = (),
) -> Dataset:
    """
    Stage-2 examples `{"audio", "prompt", "target"}` from a dataset with an audio column and a label (a name, a
    `ClassLabel` index, or a list of them) or caption column, formatted with the named Table-1 template (`prompt`
    overrides the template's prompt). An empty label or caption, or a class index without a name (-1, a `ClassLabel`'s
    "no label"), is refused naming the dataset (its folder), the row and the column; in a stream, the example's place
    in the order it is read. With `audio_column="audio_encoder_features"` (a dataset written by
    [`cache_audio_features`]) the examples keep the cached features: `{"audio_encoder_features", "prompt", "target"}`.
    `keep_columns` are kept beside (e.g. the recipe's `audio_id_column`).
    """
    if isinstance(keep_columns, str):
        raise ValueError(f"keep_columns must be a list of column names, got the string {keep_columns!r}; pass "
                         f"[{keep_columns!r}].")
    written = sorted({"prompt", "target"} & set(keep_columns))
    if written:
        raise ValueError(f"keep_columns names {written}, which the template writes; keep other columns.")
    for column in keep_columns:
        check_columns(dataset, {"kept": column})
    spec = get_template(template)
    if spec.needs_caption:
        caption_column = caption_column or "caption"
        check_columns(dataset, {"audio": audio_column, "caption": caption_column})
        source = caption_column
    else:
        label_column = label_column or next((c for c in ("label", "labels") if c in dataset.column_names), "label")
        check_columns(dataset, {"audio": audio_column, "label": label_column})
        source = label_column
    names = None if spec.needs_caption else label_names(dataset, source)
    text_prompt = prompt or spec.prompt
    name, streamed = dataset_name(dataset), not isinstance(dataset, Dataset)
    dataset = undecoded_audio(dataset, audio_column)

    def convert(value, index):
        try:
            label = label_text(value, names)
        except ValueError as error:
            where = f"Example {index} of the stream of {name}" if streamed else f"Row {index} of {name}"
            raise ValueError(f"{where}, column {source!r}: {error}") from None
        return {"prompt": text_prompt, "target": spec.output.format(label=label, caption=value)}

    # Only the label column is read: rows of cached `audio_encoder_features` are large.
    drop = [c for c in dataset.column_names if c not in (audio_column, CACHED_LENGTH, *keep_columns)]
    progress = {"desc": f"MINT examples ({template})"} if not streamed else {}  # a stream maps lazily
    examples = dataset.map(convert, input_columns=[source], with_indices=True, remove_columns=drop, **progress)
    return _audio_column_named(examples, audio_column)


def _audio_column_named(dataset: Dataset, audio_column: str) -> Dataset:
    """Names the audio column `audio`, or keeps `audio_encoder_features` for examples from the frozen-feature cache."""
    if audio_column in ("audio", ENCODER_FEATURES_KEY):
        return dataset
    return dataset.rename_column(audio_column, "audio")


def to_caption_pairs(dataset: Dataset, audio_column: str = "audio", caption_column: str = "caption",
                     caption_templates: Sequence[str] | None = None, epochs: int = 1, seed: int = 0,
                     keep_columns: Sequence[str] = ()) -> Dataset:
    """
    Stage-1 examples `{"audio", "caption"}` (audio-caption pairs, section 2.2); `{"audio_encoder_features",
    "caption"}` when `audio_column="audio_encoder_features"` (a dataset written by [`cache_audio_features`]). An empty
    caption is refused naming the dataset (its folder), the row and the column (in a stream, as it is read).

    With `caption_templates` (format strings naming the dataset's columns, e.g. `"{family} note played {loudness}"`),
    the captions are written from each row's labels instead, one template drawn per row and epoch
    ([`caption_for_epoch`], seeded by `seed`): the result holds `epochs` passes over the rows (`epochs x rows`
    examples, pass `e` captioned for epoch `e`), so one epoch of training over it sees each row `epochs` times with
    different captions (the caption column is not read). A template naming a column the dataset lacks, and a row no
    template applies to, are refused. `keep_columns` are kept beside (e.g. the recipe's `group_column`).
    """
    for column in keep_columns:
        check_columns(dataset, {"kept": column})
    if caption_templates is not None:
        return _templated_caption_pairs(dataset, audio_column, caption_templates, epochs, seed, list(keep_columns))
    check_columns(dataset, {"audio": audio_column, "caption": caption_column})
    name, streamed = dataset_name(dataset), not isinstance(dataset, Dataset)
    if epochs != 1:
        raise ValueError(f"epochs={epochs!r} needs caption_templates: without them every pass has the same captions; "
                         "train for more epochs instead.")

    def check(caption, index):
        if not isinstance(caption, str) or not caption.strip():
            where = f"Example {index} of the stream of {name}" if streamed else f"Row {index} of {name}"
            found = "an empty caption" if caption is None or isinstance(caption, str) else type(caption).__name__
            raise ValueError(f"{where}, column {caption_column!r}: {found}; expected the caption's text.")
        return {}

    if not streamed:  # the captions alone are read, not the rows' audio or features
        for row, caption in enumerate(dataset.with_format(None)[caption_column]):
            check(caption, row)
    dataset = undecoded_audio(dataset, audio_column)
    dataset = dataset.select_columns([audio_column, caption_column, *keep_columns]
                                     + [CACHED_LENGTH] * (CACHED_LENGTH in dataset.column_names))
    if caption_column != "caption":
        dataset = dataset.rename_column(caption_column, "caption")
    if streamed:  # checked as it is read
        dataset = dataset.map(check, input_columns=["caption"], with_indices=True, features=dataset.features)
    return _audio_column_named(dataset, audio_column)


def _templated_caption_pairs(dataset: Dataset, audio_column: str, caption_templates: Sequence[str], epochs: int,
                             seed: int, keep_columns: list[str]) -> Dataset:
    """[`to_caption_pairs`] with captions written from the rows' labels, `epochs` passes in turn."""
    if not isinstance(dataset, Dataset):
        raise ValueError("caption_templates need a map-style Dataset (its rows are captioned per epoch), not a stream.")
    check_columns(dataset, {"audio": audio_column})
    if "caption" in keep_columns:
        raise ValueError("keep_columns names 'caption', which caption_templates write; keep the dataset's own "
                         "captions under another name (e.g. as the group column).")
    if isinstance(caption_templates, str) or not caption_templates:
        raise ValueError(f"caption_templates must be a non-empty list of templates, got {caption_templates!r}.")
    check_positive_int("epochs", epochs, "the passes over the rows")
    fields = list(dict.fromkeys(f for template in caption_templates for f in template_fields(template)))
    missing = [f for f in fields if f not in dataset.column_names]
    if missing:
        raise ValueError(f"caption_templates name {missing}, which {dataset_name(dataset)} lacks; its columns are "
                         f"{dataset.column_names}.")
    labels = dataset.with_format(None).select_columns(fields).to_list()  # the labels alone, not the audio
    keep = [audio_column, *keep_columns] + [CACHED_LENGTH] * (CACHED_LENGTH in dataset.column_names)
    base = undecoded_audio(dataset, audio_column).select_columns(keep)
    passes = []
    for epoch in range(epochs):
        captions = [caption_for_epoch(caption_templates, row, index, epoch, seed) for index, row in enumerate(labels)]
        if epoch == 0 and None in captions:
            row = captions.index(None)
            raise ValueError(f"Row {row} of {dataset_name(dataset)} has no value for any template's columns "
                             f"({labels[row]}); every row needs one template whose columns it fills.")
        passes.append(base.add_column("caption", captions))
    return _audio_column_named(concatenate_datasets(passes), audio_column)


def mix_datasets(datasets: list[Dataset], weights: list[float] | None = None, seed: int = 0) -> Dataset:
    """
    Samples a mixture of MINT example datasets with the given weights (normalised to probabilities) until every
    dataset has been seen once (`datasets.interleave_datasets`, `all_exhausted`). The datasets must have the same
    columns; one that differs from the first is refused, named by its place and folder.
    """
    if not datasets:
        raise ValueError("mix_datasets needs at least one dataset.")
    if len(datasets) == 1:
        return datasets[0]
    weights = weights or [1.0] * len(datasets)
    if len(weights) != len(datasets) or any(w <= 0 for w in weights):
        raise ValueError(f"Expected one positive weight per dataset, got {weights} for {len(datasets)} datasets.")
    first = datasets[0].column_names
    for index, dataset in enumerate(datasets[1:], 1):
        if dataset.column_names is not None and first is not None and sorted(dataset.column_names) != sorted(first):
            raise ValueError(f"Dataset {index} of the mixture ({dataset_name(dataset)}) has the columns "
                             f"{dataset.column_names}, dataset 0 ({dataset_name(datasets[0])}) {first}: a mixture "
                             "needs examples of one kind (the same stage, both cached or both with audio).")
    total = float(sum(weights))
    return interleave_datasets(datasets, probabilities=[w / total for w in weights], seed=seed,
                               stopping_strategy="all_exhausted")


def load_local_dataset(path: str | os.PathLike, split: str = "train") -> Dataset:
    """One split of a dataset on disk: a folder written by `save_to_disk`, or an audio folder with a metadata file."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ValueError(f"Dataset path {path!r} does not exist; expected a local folder.")
    saved = ("dataset_info.json", "state.json", "dataset_dict.json")
    if any(os.path.isfile(os.path.join(path, name)) for name in saved):
        try:
            dataset = load_from_disk(path)
        except IndexError as error:  # datasets cannot read back a saved split that has no rows (no Arrow table)
            raise ValueError(f"Dataset {path!r} could not be read: a split saved there has no rows; expected a "
                             "dataset with at least one row.") from error
    else:
        dataset = load_dataset("audiofolder", data_dir=path)
    if hasattr(dataset, "keys"):
        if split not in dataset:
            raise ValueError(f"Dataset {path!r} has no split {split!r}; it has {list(dataset)}.")
        dataset = dataset[split]
    return dataset


def describe_clip(row: int, audio: Any) -> str:
    """How messages name one of a dataset's clips: Row N of the dataset ('its/file.wav')."""
    path = audio_path(audio)
    return f"Row {row} of the dataset" + (f" ({path!r})" if path else "")


def load_clips(processor: MintProcessor, audio: list) -> tuple[list, list[str]]:
    """The decoded clips, with None and the processor's reason (else "") for each clip it refuses."""
    clips, reasons = [], []
    for item in audio:
        try:
            clips.append(processor.load_audio([item])[0])
            reasons.append("")
        except (ValueError, TypeError) as error:
            clips.append(None)
            reasons.append(clip_error_reason(error))
    return clips, reasons


__all__ = [
    "CACHED_LENGTH",
    "check_columns",
    "check_flag",
    "check_positive_int",
    "dataset_name",
    "describe_clip",
    "is_integer",
    "label_names",
    "label_text",
    "load_clips",
    "load_local_dataset",
    "mix_datasets",
    "to_caption_pairs",
    "to_mint_examples",
    "undecoded_audio",
]
