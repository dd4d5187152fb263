# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""MINT training data: the instruction templates of the paper's Table 1, `datasets` conversion, mixtures, the data
collator, and the frozen-feature cache.

A dataset with an `Audio` column and a `label`, `labels` (multi-label) or `caption` column becomes MINT examples:

    stage 1 (section 2.2):  {"audio", "caption"}
    stage 2 (section 2.3):  {"audio", "prompt", "target"}, the prompt and target format given by a template.

Multi-label targets (OpenMIC-style) are written as the labels joined by ", " in the order the dataset lists them,
e.g. "piano, violin, voice"; classification by vocabulary ranking scores each label on its own.
"""

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from datasets import Audio, ClassLabel, Dataset, Sequence, Value, interleave_datasets, load_from_disk
from datasets.utils.logging import disable_progress_bar, enable_progress_bar, is_progress_bar_enabled
from transformers.feature_extraction_utils import BatchFeature


try:
    from .processing_mint import MintProcessor
except ImportError:  # installed as top-level modules
    from processing_mint import MintProcessor


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


def _check_columns(dataset: Dataset, needed: dict[str, str | None]) -> None:
    missing = {role: column for role, column in needed.items() if column is not None
               and column not in dataset.column_names}
    if missing:
        wanted = ", ".join(f"{role} column {column!r}" for role, column in missing.items())
        raise ValueError(f"The dataset has no {wanted}; its columns are {dataset.column_names}. "
                         "Name the right columns (audio_column=, label_column=, caption_column=).")


def _undecoded(dataset: Dataset, audio_column: str) -> Dataset:
    """Audio columns are read as {"bytes", "path"} and decoded by the processor (no torchcodec needed)."""
    feature = dataset.features[audio_column]
    if isinstance(feature, Audio) and feature.decode:
        return dataset.cast_column(audio_column, Audio(decode=False))
    return dataset


def _label_names(dataset: Dataset, column: str) -> list[str] | None:
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
    overrides the template's prompt). With `audio_column="audio_features"` (a dataset written by
    [`cache_audio_features`]) the examples keep the cached features: `{"audio_features", "prompt", "target"}`.
    """
    spec = get_template(template)
    if spec.needs_caption:
        caption_column = caption_column or "caption"
        _check_columns(dataset, {"audio": audio_column, "caption": caption_column})
        source = caption_column
    else:
        label_column = label_column or next((c for c in ("label", "labels") if c in dataset.column_names), "label")
        _check_columns(dataset, {"audio": audio_column, "label": label_column})
        source = label_column
    names = None if spec.needs_caption else _label_names(dataset, source)
    text_prompt = prompt or spec.prompt
    dataset = _undecoded(dataset, audio_column)

    def convert(value):
        return {"prompt": text_prompt,
                "target": spec.output.format(label=label_text(value, names), caption=value)}

    # Only the label column is read: rows of cached `audio_features` are large.
    drop = [c for c in dataset.column_names if c not in (audio_column, CACHED_LENGTH)]
    examples = dataset.map(convert, input_columns=[source], remove_columns=drop,
                           desc=f"MINT examples ({template})")
    return _audio_column_named(examples, audio_column)


def _audio_column_named(dataset: Dataset, audio_column: str) -> Dataset:
    """Names the audio column `audio`, or keeps `audio_features` for examples from the frozen-feature cache."""
    if audio_column in ("audio", "audio_features"):
        return dataset
    return dataset.rename_column(audio_column, "audio")


def to_caption_pairs(dataset: Dataset, audio_column: str = "audio", caption_column: str = "caption") -> Dataset:
    """
    Stage-1 examples `{"audio", "caption"}` (audio-caption pairs, section 2.2); `{"audio_features", "caption"}` when
    `audio_column="audio_features"` (a dataset written by [`cache_audio_features`]).
    """
    _check_columns(dataset, {"audio": audio_column, "caption": caption_column})
    dataset = _undecoded(dataset, audio_column)
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
    `{"audio", "prompt", "target"}`. Examples from the frozen-feature cache carry `audio_features` instead of `audio`.
    """

    processor: MintProcessor
    stage: int = 2

    def __call__(self, examples: list[dict[str, Any]]) -> BatchFeature:
        cached = "audio_features" in examples[0]
        if self.stage == 1:
            batch = self.processor(audio=None if cached else [e["audio"] for e in examples],
                                   text=[e["caption"] for e in examples], return_llm_inputs=False)
        else:
            batch = self.processor(audio=None if cached else [e["audio"] for e in examples],
                                   text=[e["prompt"] for e in examples], text_target=[e["target"] for e in examples])
        if cached:
            batch["audio_features"], batch["audio_attention_mask"] = pad_audio_features(
                [e["audio_features"] for e in examples])
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


@torch.no_grad()
def cache_audio_features(
    model,
    processor: MintProcessor,
    dataset: Dataset,
    output_dir: str | os.PathLike,
    batch_size: int = 8,
    dtype: str = "float32",
    progress: bool = True,
) -> Dataset:
    """
    Runs the frozen audio encoder once over `dataset` (MINT examples with an `audio` column) and saves the examples
    with `audio_features` (each clip's real frames, `(frames, hidden)`, without padding) in place of `audio`, as an
    Arrow dataset in `output_dir`, with each clip's frame count in `audio_length` (for length-grouped batches,
    `MintRecipe(group_by_length=True)`). Training reads them through [`MintDataCollator`], skipping the encoder.

    The trainable `audio_layernorm` is not applied: the cache holds the frozen encoder's raw outputs. Use `float16` to
    halve the disk cost (about 0.28 GB per hour of audio for a 768-d encoder at 50 frames/s, 0.55 GB in float32).
    """
    if not model.config.freeze_audio_encoder:
        raise ValueError("The feature cache is for a frozen audio encoder; this model's config trains it.")
    _check_columns(dataset, {"audio": "audio"})
    dataset = _undecoded(dataset, "audio")
    model.eval()
    device = next(model.parameters()).device
    np_dtype = np.dtype(dtype)

    def encode(batch):
        inputs = processor(audio=batch["audio"])
        audio = {k: v.to(device) for k, v in inputs.items() if k != "clip_index"}
        hidden, mask = model.run_audio_encoder(**audio)
        lengths = mask.sum(-1).tolist()
        return {"audio_features": [h[:n].float().cpu().numpy().astype(np_dtype) for h, n in zip(hidden, lengths)],
                "audio_length": lengths}

    was_enabled = is_progress_bar_enabled()
    (enable_progress_bar if progress else disable_progress_bar)()
    try:
        features = dataset.features.copy()
        del features["audio"]
        features["audio_features"] = Sequence(Sequence(Value(dtype)))
        features["audio_length"] = Value("int32")
        cached = dataset.map(encode, batched=True, batch_size=batch_size, remove_columns=["audio"],
                             features=features, desc="Caching audio features")
        cached.save_to_disk(os.fspath(output_dir))
    finally:
        (enable_progress_bar if was_enabled else disable_progress_bar)()
    return load_from_disk(os.fspath(output_dir)).with_format("numpy", columns=["audio_features"],
                                                              output_all_columns=True)


__all__ = [
    "INSTRUCTION_TEMPLATES",
    "InstructionTemplate",
    "MintDataCollator",
    "cache_audio_features",
    "feature_cache_gb_per_hour",
    "get_template",
    "label_text",
    "load_local_dataset",
    "mix_datasets",
    "register_template",
    "to_caption_pairs",
    "to_mint_examples",
]
