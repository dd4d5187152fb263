# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""MINT training data: the instruction templates of the paper's Table 1, `datasets` conversion, mixtures, the data
collator, and the frozen-feature cache.

A dataset with an `Audio` column and a `label`, `labels` (multi-label) or `caption` column becomes MINT examples:

    stage 1 (section 2.2):  {"audio", "caption"}
    stage 2 (section 2.3):  {"audio", "prompt", "target"}, the prompt and target format given by a template.

Multi-label targets (OpenMIC-style) are written as the labels joined by ", " in the order the dataset lists them,
e.g. "piano, violin, voice"; classification by vocabulary ranking scores each label on its own.
"""

import json
import os
import re
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from datasets import (Audio, ClassLabel, Dataset, Sequence, Value, concatenate_datasets, interleave_datasets,
                      load_from_disk)
from datasets.utils.logging import disable_progress_bar, enable_progress_bar, is_progress_bar_enabled
from transformers.feature_extraction_utils import BatchFeature
from transformers.utils import logging


from processing_mint import MintProcessor, audio_path, clip_error_reason


logger = logging.get_logger(__name__)


@dataclass(frozen=True)
class InstructionTemplate:
    """One row of Table 1: the input prompt and the output format (`{label}` or `{caption}`)."""

    prompt: str
    output: str = "{label}"
    use: tuple[str, ...] = ("train",)

    @property
    def needs_caption(self) -> bool:
        return "{caption}" in self.output


# Table 1 of the paper. "(t)" rows are training data, "(e)" rows evaluation data.
INSTRUCTION_TEMPLATES: dict[str, InstructionTemplate] = {
    "AudioSet": InstructionTemplate("This is a sound of"),
    "VGGSound": InstructionTemplate("This is a sound of"),
    "OpenMIC": InstructionTemplate("Identify the instruments in this segment of music:", use=("train", "eval")),
    "FMALarge": InstructionTemplate("The genre of this music is", use=("train", "eval")),
    "NSynth": InstructionTemplate("The most prominent instrument in this music is", use=("train", "eval")),
    "FSD50K": InstructionTemplate("This is a sound of"),
    "Music4All-key": InstructionTemplate("The key of this music is"),
    "Music4All-genre": InstructionTemplate("The genre of this music is"),
    "GTZAN": InstructionTemplate("The genre of this music is", use=("eval",)),
    "WavCaps": InstructionTemplate("Generate audio caption:", "{caption}"),
    "FreeSound": InstructionTemplate("Generate audio caption:", "{caption}"),
    "Clotho": InstructionTemplate("Generate audio caption:", "{caption}", use=("eval",)),
}


# Frame count of each clip in the feature cache: what length-grouped batching sorts by.
CACHED_LENGTH = "audio_length"


def register_template(name: str, prompt: str, output: str = "{label}", overwrite: bool = False) -> None:
    """Adds a template for a dataset of your own (output `{label}` or `{caption}`)."""
    if name in INSTRUCTION_TEMPLATES and not overwrite:
        raise ValueError(f"A template named {name!r} exists already; pass overwrite=True to replace it.")
    if output.count("{") != 1 or output not in ("{label}", "{caption}"):
        raise ValueError(f"A template's output must be '{{label}}' or '{{caption}}', got {output!r}.")
    INSTRUCTION_TEMPLATES[name] = InstructionTemplate(prompt, output, use=("train", "eval"))


def get_template(name: str) -> InstructionTemplate:
    if name not in INSTRUCTION_TEMPLATES:
        raise ValueError(f"No instruction template named {name!r}. Known templates: "
                         f"{sorted(INSTRUCTION_TEMPLATES)}; add one with register_template().")
    return INSTRUCTION_TEMPLATES[name]


def check_columns(dataset: Dataset, needed: dict[str, str | None]) -> None:
    missing = {role: column for role, column in needed.items() if column is not None
               and column not in dataset.column_names}
    if missing:
        wanted = ", ".join(f"{role} column {column!r}" for role, column in missing.items())
        raise ValueError(f"The dataset has no {wanted}; its columns are {dataset.column_names}. "
                         "Name the right columns (audio_column=, label_column=, caption_column=).")


def undecoded_audio(dataset: Dataset, audio_column: str) -> Dataset:
    """Audio columns are read as {"bytes", "path"} and decoded by the processor (no torchcodec needed)."""
    feature = dataset.features[audio_column]
    if isinstance(feature, Audio) and feature.decode:
        return dataset.cast_column(audio_column, Audio(decode=False))
    return dataset


def label_names(dataset: Dataset, column: str) -> list[str] | None:
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
    """A label, a class index (with its names) or a list of them as target text (multi-label: joined by ", ")."""
    if isinstance(value, (list, tuple)):
        if not value:
            raise ValueError("A multi-label example has no label; expected at least one.")
        return ", ".join(label_text(v, names) for v in value)
    if isinstance(value, (int, np.integer)) and names is not None:
        return names[value]
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValueError("An example has an empty label; expected a label name.")
    return str(value)


def to_mint_examples(
    dataset: Dataset,
    template: str,
    audio_column: str = "audio",
    label_column: str | None = None,
    caption_column: str | None = None,
    prompt: str | None = None,
) -> Dataset:
    """
    Stage-2 examples `{"audio", "prompt", "target"}` from a dataset with an audio column and a label (a name, a
    `ClassLabel` index, or a list of them) or caption column, formatted with the named Table-1 template (`prompt`
    overrides the template's prompt). With `audio_column="audio_encoder_features"` (a dataset written by
    [`cache_audio_features`]) the examples keep the cached features: `{"audio_encoder_features", "prompt", "target"}`.
    """
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
    dataset = undecoded_audio(dataset, audio_column)

    def convert(value):
        return {"prompt": text_prompt,
                "target": spec.output.format(label=label_text(value, names), caption=value)}

    # Only the label column is read: rows of cached `audio_encoder_features` are large.
    drop = [c for c in dataset.column_names if c not in (audio_column, CACHED_LENGTH)]
    progress = {"desc": f"MINT examples ({template})"} if isinstance(dataset, Dataset) else {}  # a stream maps lazily
    examples = dataset.map(convert, input_columns=[source], remove_columns=drop, **progress)
    return _audio_column_named(examples, audio_column)


def _audio_column_named(dataset: Dataset, audio_column: str) -> Dataset:
    """Names the audio column `audio`, or keeps `audio_encoder_features` for examples from the frozen-feature cache."""
    if audio_column in ("audio", "audio_encoder_features"):
        return dataset
    return dataset.rename_column(audio_column, "audio")


def to_caption_pairs(dataset: Dataset, audio_column: str = "audio", caption_column: str = "caption") -> Dataset:
    """
    Stage-1 examples `{"audio", "caption"}` (audio-caption pairs, section 2.2); `{"audio_encoder_features",
    "caption"}` when
    `audio_column="audio_encoder_features"` (a dataset written by [`cache_audio_features`]).
    """
    check_columns(dataset, {"audio": audio_column, "caption": caption_column})
    dataset = undecoded_audio(dataset, audio_column)
    dataset = dataset.select_columns([audio_column, caption_column]
                                     + [CACHED_LENGTH] * (CACHED_LENGTH in dataset.column_names))
    if caption_column != "caption":
        dataset = dataset.rename_column(caption_column, "caption")
    return _audio_column_named(dataset, audio_column)


def mix_datasets(datasets: list[Dataset], weights: list[float] | None = None, seed: int = 0) -> Dataset:
    """
    Samples a mixture of MINT example datasets with the given weights (normalised to probabilities) until every
    dataset has been seen once (`datasets.interleave_datasets`, `all_exhausted`).
    """
    if not datasets:
        raise ValueError("mix_datasets needs at least one dataset.")
    if len(datasets) == 1:
        return datasets[0]
    weights = weights or [1.0] * len(datasets)
    if len(weights) != len(datasets) or any(w <= 0 for w in weights):
        raise ValueError(f"Expected one positive weight per dataset, got {weights} for {len(datasets)} datasets.")
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
        dataset = load_from_disk(path)
    else:
        from datasets import load_dataset

        dataset = load_dataset("audiofolder", data_dir=path)
    if hasattr(dataset, "keys"):
        if split not in dataset:
            raise ValueError(f"Dataset {path!r} has no split {split!r}; it has {list(dataset)}.")
        dataset = dataset[split]
    return dataset


def pad_audio_features(rows: list[np.ndarray | torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Pads cached `(frames, hidden)` features to `(batch, max_frames, hidden)` with their frame mask."""
    tensors = [torch.as_tensor(np.asarray(r, dtype=np.float32)) for r in rows]
    longest = max(t.shape[0] for t in tensors)
    features = torch.zeros(len(tensors), longest, tensors[0].shape[1])
    mask = torch.zeros(len(tensors), longest, dtype=torch.long)
    for i, t in enumerate(tensors):
        features[i, : t.shape[0]] = t
        mask[i, : t.shape[0]] = 1
    return features, mask


@dataclass
class MintDataCollator:
    """
    Batches MINT examples with [`MintProcessor`]: stage 1 takes `{"audio", "caption"}`, stage 2
    `{"audio", "prompt", "target"}`. Examples from the frozen-feature cache carry `audio_encoder_features` instead of
    `audio`.
    """

    processor: MintProcessor
    stage: int = 2

    def __call__(self, examples: list[dict[str, Any]]) -> BatchFeature:
        cached = "audio_encoder_features" in examples[0]
        if self.stage == 1:
            batch = self.processor(audio=None if cached else [e["audio"] for e in examples],
                                   text=[e["caption"] for e in examples], return_llm_inputs=False)
        else:
            batch = self.processor(audio=None if cached else [e["audio"] for e in examples],
                                   text=[e["prompt"] for e in examples], text_target=[e["target"] for e in examples])
        if cached:
            batch["audio_encoder_features"], batch["audio_attention_mask"] = pad_audio_features(
                [e["audio_encoder_features"] for e in examples])
        return batch


def feature_cache_gb_per_hour(audio_config, dtype: str = "float32", num_feature_layers: int = 1) -> float:
    """
    Disk cost of the feature cache per hour of audio: frames per hour x hidden size x bytes per value, times the number
    of encoder layers Bridge-Net reads (`MintConfig.audio_feature_layer`).
    """
    if audio_config.model_type == "whisper":
        frames_per_second = 100 / 2  # 10 ms mel hop, then the encoder's stride-2 convolution
    else:
        frames_per_second = 16000 / float(np.prod(audio_config.conv_stride))
    return frames_per_second * 3600 * audio_config.hidden_size * num_feature_layers * np.dtype(dtype).itemsize / 1e9


# Written in a finished shard's folder of the feature cache: the shard's Arrow files and row count.
SHARD_COMPLETE_MARKER = "mint_shard_complete.json"
SKIPPED_CLIPS_FILE = "skipped_clips.json"
_SKIP_REASON = "mint_skip_reason"  # a shard's column while it is written; merging drops it with the skipped rows
_SHARD_NAME = re.compile(r"^shard-(\d{5})-of-(\d{5})$")


def feature_cache_shards_dir(output_dir: str | os.PathLike) -> str:
    """The folder where [`cache_audio_features`] keeps the shards of `output_dir` until they are merged into it."""
    return os.fspath(output_dir).rstrip("/" + os.sep) + ".shards"


def _shard_folder(output_dir: str | os.PathLike, index: int, num_shards: int) -> str:
    return os.path.join(feature_cache_shards_dir(output_dir), f"shard-{index:05d}-of-{num_shards:05d}")


def _finished_shard(folder: str) -> dict | None:
    """The completion record of a shard folder, or None when the shard is missing or was cut short."""
    marker = os.path.join(folder, SHARD_COMPLETE_MARKER)
    if not os.path.isfile(marker):
        return None
    with open(marker) as f:
        return json.load(f)


def cache_audio_features(
    model,
    processor: MintProcessor,
    dataset: Dataset,
    output_dir: str | os.PathLike,
    batch_size: int = 8,
    dtype: str = "float32",
    progress: bool = True,
    num_proc: int | None = None,
    num_shards: int = 1,
    shard_indices: list[int] | None = None,
    max_shard_size: str | int | None = None,
    skip_invalid: bool = False,
) -> Dataset | None:
    """
    Runs the frozen audio encoder once over `dataset` (MINT examples with an `audio` column) and saves the examples with
    `audio_encoder_features` (each clip's real frames, `(frames, hidden)`, without padding) in place of `audio`, as an
    Arrow dataset in `output_dir`, with each clip's frame count in `audio_length` (for length-grouped batches,
    `MintRecipe(group_by_length=True)`). Training reads them through [`MintDataCollator`], skipping the encoder.

    The work is split into `num_shards` contiguous shards of `dataset`. Each is written under
    `feature_cache_shards_dir(output_dir)` and marked finished once written; a shard marked finished is skipped, so a
    run that was killed restarts from the unfinished shards. `shard_indices` computes only those shards (one machine's
    share when the work is split over several) and returns None: once every shard is finished, [`merge_feature_cache`]
    writes the cache. Without `shard_indices` all shards are computed and merged, and the cache is returned.
    `num_proc` encodes in that many processes (`datasets.map`; a model on the CPU only: with accelerators, run one
    process per device with its own `shard_indices`). The merged cache is saved in Arrow files of up to
    `max_shard_size` (`save_to_disk`; default 500MB).

    A clip the processor refuses (unreadable, empty, non-finite, shorter than the encoder's minimum) stops the run with
    an error naming its row and file; with `skip_invalid` it is left out of the cache instead, with a logged warning,
    and listed (row, path, reason) in `skipped_clips.json` in `output_dir`.

    The trainable `audio_layernorm` is not applied: the cache holds the frozen encoder's raw outputs. Use `float16` to
    halve the disk cost (about 0.28 GB per hour of audio for a 768-d encoder at 50 frames/s, 0.55 GB in float32).
    """
    if not model.config.freeze_audio_encoder:
        raise ValueError("The feature cache is for a frozen audio encoder; this model's config trains it.")
    check_columns(dataset, {"audio": "audio"})
    indices = list(range(num_shards)) if shard_indices is None else sorted(set(shard_indices))
    if num_shards < 1 or any(not 0 <= i < num_shards for i in indices):
        raise ValueError(f"Shard indices must lie in 0..{num_shards - 1} (num_shards={num_shards}); got {indices}.")
    device = next(model.parameters()).device
    if (num_proc or 1) > 1 and device.type != "cpu":
        raise ValueError(f"num_proc encodes in forked CPU processes, but the model is on {device}: run one process per "
                         "device instead, each with its own shard_indices.")
    if processor.long_audio_policy != "crop":
        raise ValueError("The feature cache stores one clip per row: build it with a processor whose "
                         f"long_audio_policy is 'crop', not {processor.long_audio_policy!r}.")
    dataset = undecoded_audio(dataset, "audio")
    model.eval()
    for index in indices:
        shard = dataset.shard(num_shards, index, contiguous=True)
        folder = _shard_folder(output_dir, index, num_shards)
        record = _finished_shard(folder)
        if record is None:
            offset = sum(dataset.shard(num_shards, i, contiguous=True).num_rows for i in range(index))
            _cache_shard(model, processor, shard, folder, batch_size, dtype, num_proc, progress, offset, skip_invalid)
        elif record["num_rows"] != shard.num_rows or record["dtype"] != dtype:
            raise ValueError(f"{folder} holds a finished shard of {record['num_rows']} {record['dtype']} rows, but "
                             f"shard {index} of this dataset has {shard.num_rows} rows to cache in {dtype}: it belongs "
                             "to another cache. Delete it, or write this cache elsewhere.")
    if shard_indices is not None:
        return None
    return merge_feature_cache(output_dir, max_shard_size=max_shard_size, progress=progress)


def _check_cacheable(features: np.ndarray, dtype: np.dtype, name: str) -> None:
    """Refuses to cache non-finite features, and features that overflow the cache's dtype (float16 above 65504)."""
    if not np.isfinite(features).all():
        raise ValueError(f"The audio encoder gave NaN or infinite features for {name}; nothing was cached for it.")
    with np.errstate(over="ignore"):
        if not np.isfinite(features.astype(dtype)).all():
            raise ValueError(f"The features of {name} reach {np.abs(features).max():.4g}, beyond {dtype}'s range: "
                             "cache in float32.")


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


def _cache_shard(model, processor: MintProcessor, shard: Dataset, folder: str, batch_size: int, dtype: str,
                 num_proc: int | None, progress: bool, offset: int, skip_invalid: bool = False) -> None:
    """Encodes one shard (its first row being row `offset` of the dataset) into Arrow files in `folder`, then marks it
    finished. With `skip_invalid`, a refused clip keeps an empty row, and the record lists it for the merge to drop."""
    if os.path.isdir(folder):  # cut short by an earlier run
        shutil.rmtree(folder)
    os.makedirs(folder)
    np_dtype = np.dtype(dtype)
    device = next(model.parameters()).device
    threads = max(1, torch.get_num_threads() // num_proc) if (num_proc or 1) > 1 else None

    def encode(batch, rows):
        if threads:  # each of the num_proc processes takes its share of the cores
            torch.set_num_threads(threads)
        clips, reasons = load_clips(processor, batch["audio"])
        for row, audio, reason in zip(rows, batch["audio"], reasons):
            if reason and not skip_invalid:
                raise ValueError(f"{describe_clip(offset + row, audio)}: {reason} Pass skip_invalid=True (mint-train "
                                 "cache-features --skip-invalid) to leave such clips out of the cache.")
        kept = [index for index, clip in enumerate(clips) if clip is not None]
        encoded, lengths = [np.zeros((0, 0), np_dtype)] * len(clips), [0] * len(clips)  # a refused clip's row
        if kept:
            inputs = processor(audio=[clips[i] for i in kept], sampling_rate=processor.sampling_rate)
            with torch.inference_mode():
                hidden, mask = model.get_audio_encoder_features(**{k: v.to(device) for k, v in inputs.items()})
            for index, h, n in zip(kept, hidden, mask.sum(-1).tolist()):
                clip_features = h[:n].float().cpu().numpy()
                _check_cacheable(clip_features, np_dtype, f"row {offset + rows[index]} of the dataset")
                encoded[index], lengths[index] = clip_features.astype(np_dtype), n
        return {"audio_encoder_features": encoded, "audio_length": lengths, _SKIP_REASON: reasons}

    features = shard.features.copy()
    del features["audio"]
    features["audio_encoder_features"] = Sequence(Sequence(Value(dtype)))
    features["audio_length"] = Value("int32")
    features[_SKIP_REASON] = Value("string")
    name = os.path.basename(folder)
    with _progress_bars(progress):
        # Rows of features are large: Arrow batches of `batch_size` rows keep the writer's memory small.
        cached = shard.map(encode, batched=True, with_indices=True, batch_size=batch_size, remove_columns=["audio"],
                           features=features,
                           writer_batch_size=batch_size, num_proc=num_proc, load_from_cache_file=False,
                           cache_file_name=os.path.join(folder, "features.arrow"), new_fingerprint=name,
                           desc=f"Caching audio features ({name})")
    files = [os.path.basename(f["filename"]) for f in cached.cache_files]
    skipped = []
    for row, reason in enumerate(cached[_SKIP_REASON]):
        if reason:
            audio = shard[row]["audio"]
            logger.warning(f"{describe_clip(offset + row, audio)} is left out of the feature cache: {reason}")
            skipped.append({"row": offset + row, "path": audio_path(audio), "reason": reason})
    with open(os.path.join(folder, SHARD_COMPLETE_MARKER), "w") as f:
        json.dump({"files": files, "num_rows": cached.num_rows, "dtype": dtype, "skipped": skipped}, f)


@contextmanager
def _progress_bars(enabled: bool):
    """`datasets` progress bars on or off for the block, restored afterwards."""
    was_enabled = is_progress_bar_enabled()
    (enable_progress_bar if enabled else disable_progress_bar)()
    try:
        yield
    finally:
        (enable_progress_bar if was_enabled else disable_progress_bar)()


def merge_feature_cache(
    output_dir: str | os.PathLike,
    max_shard_size: str | int | None = None,
    num_shards: int | None = None,
    progress: bool = True,
) -> Dataset:
    """
    Merges the finished shards that [`cache_audio_features`] wrote for `output_dir` (possibly on several machines
    sharing the folder) into one dataset saved in `output_dir` (Arrow files of up to `max_shard_size`, or `num_shards`
    files), in the order of the original dataset, then deletes the shards. Fails, naming them, while any shard is
    missing or unfinished.
    """
    shards_dir = feature_cache_shards_dir(output_dir)
    names = sorted(os.listdir(shards_dir)) if os.path.isdir(shards_dir) else []
    splits = {int(m.group(2)) for name in names if (m := _SHARD_NAME.match(name))}
    if not splits:
        raise ValueError(f"No feature-cache shards in {shards_dir}: compute them with cache_audio_features first.")
    if len(splits) > 1:
        raise ValueError(f"{shards_dir} holds shards of {len(splits)} different splits ({sorted(splits)} shards); "
                         "keep those of one and delete the others.")
    total = splits.pop()
    records = [_finished_shard(_shard_folder(output_dir, i, total)) for i in range(total)]
    unfinished = [i for i, record in enumerate(records) if record is None]
    if unfinished:
        raise ValueError(f"Shards {unfinished} of {total} in {shards_dir} are not finished; compute them "
                         "(cache_audio_features with shard_indices, or cache-features --shard-index) before merging.")
    parts = [Dataset.from_file(os.path.join(_shard_folder(output_dir, i, total), name))
             for i, record in enumerate(records) for name in record["files"]]
    merged = concatenate_datasets(parts)
    skipped = [clip for record in records for clip in record["skipped"]]
    merged = merged.remove_columns(_SKIP_REASON)
    if skipped:
        if len(skipped) == merged.num_rows:
            raise ValueError(f"Every clip of the dataset ({len(skipped)}) was refused: nothing to cache. The first: "
                             f"row {skipped[0]['row']} ({skipped[0]['path']!r}): {skipped[0]['reason']}")
        left_out = {clip["row"] for clip in skipped}
        merged = merged.select([row for row in range(merged.num_rows) if row not in left_out])
    with _progress_bars(progress):
        merged.save_to_disk(os.fspath(output_dir), max_shard_size=max_shard_size, num_shards=num_shards)
    if skipped:
        with open(os.path.join(output_dir, SKIPPED_CLIPS_FILE), "w") as f:
            json.dump(skipped, f, indent=1)
        logger.warning(f"{len(skipped)} clips were left out of the feature cache; they are listed in "
                       f"{os.path.join(output_dir, SKIPPED_CLIPS_FILE)}.")
    del parts, merged
    shutil.rmtree(shards_dir)
    return load_from_disk(os.fspath(output_dir)).with_format("numpy", columns=["audio_encoder_features"],
                                                              output_all_columns=True)


__all__ = [
    "INSTRUCTION_TEMPLATES",
    "InstructionTemplate",
    "MintDataCollator",
    "cache_audio_features",
    "feature_cache_gb_per_hour",
    "feature_cache_shards_dir",
    "get_template",
    "label_text",
    "load_local_dataset",
    "merge_feature_cache",
    "mix_datasets",
    "register_template",
    "to_caption_pairs",
    "to_mint_examples",
]
