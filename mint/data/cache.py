# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""The frozen-feature cache: the frozen audio encoder run once over a dataset, its outputs saved in place of the audio,
in shards that are marked finished (so that a killed run resumes) and merged into one Arrow dataset; clips the
processor refuses stop the run or are left out and listed.

Each shard's completion marker, and the merged cache's record, say what they hold: a hash of the rows they cover, hashes
of the encoder's configuration and weights, and the dtype. A rerun reuses only what matches, a merge only shards that
agree, and a marker or shard file that is unreadable, cut short or changed since it was written counts as unfinished."""

import functools
import hashlib
import json
import os
import pickle
import re
import shutil
from typing import Any

import numpy as np
import torch
from datasets import Array2D, Dataset, Features, Value, concatenate_datasets, load_from_disk
from transformers.utils import logging

from audio_encoder_mint import ENCODER_FEATURES_KEY
from audio_io_mint import audio_path
from mint.data.examples import (
    CACHED_LENGTH,
    check_columns,
    check_positive_int,
    describe_clip,
    load_clips,
    undecoded_audio,
)
from mint.data.outputs import check_output_folder, few, read_json, replace_folder, write_json
from mint.data.progress import progress_bars
from processing_mint import MintProcessor, collected_crop_notices


logger = logging.get_logger(__name__)

# Written in a finished shard's folder of the feature cache: what the shard holds, its Arrow files and their hashes.
SHARD_COMPLETE_MARKER = "mint_shard_complete.json"
# Written in the merged cache: what it holds (the rows of each shard, the encoder, the dtype).
CACHE_RECORD = "mint_feature_cache.json"
# The dtypes the cache is written in: the encoder's float features, at full or half precision.
CACHE_DTYPES = ("float16", "float32")
SKIPPED_CLIPS_FILE = "skipped_clips.json"
# The record's plain copy of the settings the features depend on besides the encoder's weights (`check_feature_cache`).
FEATURE_SETTINGS = "feature_settings"
# A shard's columns while it is written; merging drops them (and the skipped rows).
_SKIP_REASON = "mint_skip_reason"
_CROPPED_SECONDS = "mint_cropped_seconds"
_SHARD_NAME = re.compile(r"^shard-(\d{5})-of-(\d{5})$")
_RECORD_FORMAT = 1
# What every shard of one cache shares, and what each shard records besides.
_IDENTITY = ("dtype", "encoder_config", "encoder_weights", "dataset_rows")
_SHARD_KEYS = (*_IDENTITY, "format", "files", "num_rows", "rows", "skipped", "cropped", "cropped_examples")
_CACHE_KEYS = (*_IDENTITY, "format", "num_shards", "rows")
_HASH_BATCH_ROWS = 1000


def feature_cache_gb_per_hour(audio_config: Any, dtype: str = "float32", num_feature_layers: int = 1) -> float:
    """
    Disk cost of the feature cache per hour of audio: frames per hour x hidden size x bytes per value, times the number
    of encoder layers Bridge-Net reads (`MintConfig.audio_feature_layer`).
    """
    if audio_config.model_type == "whisper":
        frames_per_second = 100 / 2  # 10 ms mel hop, then the encoder's stride-2 convolution
    else:
        frames_per_second = 16000 / float(np.prod(audio_config.conv_stride))
    return frames_per_second * 3600 * audio_config.hidden_size * num_feature_layers * np.dtype(dtype).itemsize / 1e9


def feature_cache_shards_dir(output_dir: str | os.PathLike) -> str:
    """The folder where [`cache_audio_features`] keeps the shards of `output_dir` until they are merged into it."""
    return os.fspath(output_dir).rstrip("/" + os.sep) + ".shards"


def _shard_folder(output_dir: str | os.PathLike, index: int, num_shards: int) -> str:
    return os.path.join(feature_cache_shards_dir(output_dir), f"shard-{index:05d}-of-{num_shards:05d}")


def _encoder_identity(model, processor: MintProcessor) -> dict[str, str]:
    """
    Hashes of what the cached features depend on besides the rows: the encoder's configuration (its config's JSON, the
    layers Bridge-Net reads, the processor's audio settings) and its weights.
    """
    config = model.config.audio_config.to_dict()
    for key in ("_name_or_path", "transformers_version"):
        config.pop(key, None)
    settings = {"audio_config": config, "audio_feature_layers": model.config.audio_feature_layers,
                "feature_extractor": processor.feature_extractor.to_dict(),
                "max_audio_seconds": processor.max_audio_seconds}
    weights = hashlib.sha256()
    for name, tensor in sorted(model.audio_model.state_dict().items()):
        weights.update(f"{name} {tensor.dtype} {tuple(tensor.shape)}".encode())
        weights.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return {"encoder_config": hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest(),
            "encoder_weights": weights.hexdigest(), FEATURE_SETTINGS: _feature_settings(model, processor)}


def _feature_settings(model, processor: MintProcessor) -> dict[str, Any]:
    """What the cached features depend on besides the encoder's weights, in a form a save and reload keep: the
    encoder layers Bridge-Net reads and the processor's audio settings."""
    extractor = processor.feature_extractor
    layers = model.config.audio_feature_layers
    return {"audio_feature_layers": list(layers) if isinstance(layers, (list, tuple)) else layers,
            "max_audio_seconds": processor.max_audio_seconds, "sampling_rate": extractor.sampling_rate,
            "feature_size": extractor.feature_size, "do_normalize": getattr(extractor, "do_normalize", None)}


def _rows_hash(rows: Dataset) -> str:
    """A hash of the rows' values (an undecoded audio column holds the files' paths or bytes), read in batches of a
    fixed size, so that it does not depend on how the dataset is stored."""
    digest = hashlib.sha256()
    for batch in rows.with_format("arrow").iter(batch_size=_HASH_BATCH_ROWS):
        digest.update(pickle.dumps(batch.to_pydict(), protocol=4))
    return digest.hexdigest()


def _file_hash(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_record(path: str, keys: tuple[str, ...]) -> dict | None:
    """The record in `path`, or None when it is missing, unreadable, cut short or not one this version writes."""
    record = read_json(path)
    if not isinstance(record, dict) or record.get("format") != _RECORD_FORMAT or any(k not in record for k in keys):
        return None
    return record


def _shard_record(folder: str) -> tuple[dict | None, str]:
    """A shard folder's completion record, or None and why the shard is not finished."""
    marker = os.path.join(folder, SHARD_COMPLETE_MARKER)
    if not os.path.isfile(marker):
        return None, ""
    record = _read_record(marker, _SHARD_KEYS)
    if record is None:
        return None, f"its completion marker {marker} is empty, cut short or unreadable"
    return record, ""


def _damage(folder: str, record: dict) -> str:
    """Why the Arrow files of a finished shard are not those its marker lists (missing or changed), else ''."""
    for name, digest in record["files"].items():
        path = os.path.join(folder, name)
        if not os.path.isfile(path):
            return f"its file {path} is missing"
        if _file_hash(path) != digest:
            return f"its file {path} changed after the shard was finished (damaged or replaced)"
    return ""


def _differences(record: dict, expected: dict) -> list[str]:
    """How a record differs from what is `expected` of it: its rows, dtype, encoder configuration or weights."""
    found = []
    if record["dataset_rows"] != expected["dataset_rows"] or record.get("num_rows") != expected.get("num_rows"):
        found.append(f"rows ({record.get('num_rows', record['dataset_rows'])} of a dataset of "
                     f"{record['dataset_rows']} rows, against {expected.get('num_rows', expected['dataset_rows'])} "
                     f"of {expected['dataset_rows']})")
    elif record["rows"] != expected["rows"]:
        found.append("rows (as many, but other values: another dataset of the same size, or a changed one)")
    if record["dtype"] != expected["dtype"]:
        found.append(f"dtype ({record['dtype']}, against {expected['dtype']})")
    if record["encoder_config"] != expected["encoder_config"]:
        found.append("encoder configuration (its config, feature layers or the processor's audio settings)")
    if record["encoder_weights"] != expected["encoder_weights"]:
        found.append("encoder weights")
    return found


def check_feature_cache(folder: str | os.PathLike, model, processor: MintProcessor) -> None:
    """
    Checks the feature cache in `folder` before `model` is evaluated on it. Refuses it where its record says that an
    encoder of other weights than `model`'s wrote it, or that it read other encoder layers or cached with other
    audio settings of `processor` (`feature_settings`: the layers, `max_audio_seconds`, the sampling rate, the
    feature size, normalisation): its features would be read as this encoder's. The record's hash of the encoder's
    configuration is not compared: it also covers settings that a save and reload rewrite without changing a
    feature. A record without `feature_settings` (an earlier version's) is checked by the weights alone, with a
    warning. A folder without a readable record (not a merged cache of [`cache_audio_features`], or a subset saved
    again) cannot be checked, and clips the cache left out (its `skipped_clips.json`) are not in it to evaluate: a
    warning says each.
    """
    skipped = read_json(os.path.join(folder, SKIPPED_CLIPS_FILE))
    if isinstance(skipped, list) and skipped:
        logger.warning(f"{len(skipped)} clips of the dataset were left out when {os.fspath(folder)!r} was cached "
                       f"(listed in its {SKIPPED_CLIPS_FILE}): the evaluation counts the cached clips only.")
    path = os.path.join(folder, CACHE_RECORD)
    record = _read_record(path, _CACHE_KEYS)
    if record is None:
        state = "unreadable or of another version" if os.path.exists(path) else "missing"
        logger.warning(f"The feature cache {os.fspath(folder)!r} was not checked against the model's encoder: its "
                       f"record {CACHE_RECORD} is {state}. Make sure the model's encoder wrote it.")
        return
    identity = _encoder_identity(model, processor)
    if record["encoder_weights"] != identity["encoder_weights"]:
        raise ValueError(f"The feature cache {os.fspath(folder)!r} was written by another audio encoder than the "
                         "model's (its weights differ). Cache the dataset with this model (mint cache-features) or "
                         "evaluate from the audio.")
    cached = record.get(FEATURE_SETTINGS)
    if not isinstance(cached, dict):
        logger.warning(f"The feature cache {os.fspath(folder)!r} records no {FEATURE_SETTINGS} (an earlier version "
                       "wrote it): the encoder layers and audio settings it was cached with were not checked.")
        return
    differ = [f"{key} {cached.get(key)!r} (the model's: {value!r})" for key, value in identity[FEATURE_SETTINGS].items()
              if cached.get(key) != value]
    if differ:
        raise ValueError(f"The feature cache {os.fspath(folder)!r} was written with other settings than the model's: "
                         f"{'; '.join(differ)}. Cache the dataset with this model and processor (mint cache-features) "
                         "or evaluate from the audio.")


def _existing_cache(output_dir: str, identity: dict, dataset: Dataset, overwrite: bool) -> bool:
    """
    Whether `output_dir` already holds this cache (same rows, encoder and dtype; with `overwrite`, also stored as
    Array2D rows). A cache of anything else is refused unless `overwrite`, naming what differs; a folder that is not a
    cache, as [`check_output_folder`] says.
    """
    record = _read_record(os.path.join(output_dir, CACHE_RECORD), _CACHE_KEYS)
    if record is None or not 1 <= record["num_shards"] <= dataset.num_rows:
        check_output_folder(output_dir, overwrite, "the feature cache")
        return False
    expected = {**identity, "dataset_rows": dataset.num_rows}
    if record["dataset_rows"] == dataset.num_rows:
        expected["rows"] = [_rows_hash(dataset.shard(record["num_shards"], i, contiguous=True))
                            for i in range(record["num_shards"])]
    differences = _differences(record, expected)
    if not differences:
        # A cache of nested lists (an earlier version's layout) is kept as it is, and written as Array2D rows with
        # `overwrite`.
        return not overwrite or isinstance(load_from_disk(output_dir).features[ENCODER_FEATURES_KEY], Array2D)
    if not overwrite:
        raise ValueError(f"{output_dir} holds a feature cache of other {'; '.join(differences)}. Pass overwrite=True "
                         "(--overwrite) to replace it, or write this cache elsewhere.")
    return False


def _load_cache(output_dir: str) -> Dataset:
    return load_from_disk(output_dir).with_format("numpy", columns=[ENCODER_FEATURES_KEY], output_all_columns=True)


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
    overwrite: bool = False,
) -> Dataset | None:
    """
    Runs the frozen audio encoder once over `dataset` (MINT examples with an `audio` column) and saves the examples with
    `audio_encoder_features` (each clip's real frames, `(frames, hidden)`, without padding) in place of `audio`, as an
    Arrow dataset in `output_dir`, with each clip's frame count in `audio_length` (for length-grouped batches,
    `MintRecipe(group_by_length=True)`). Training reads them through [`MintDataCollator`], skipping the encoder.

    The work is split into `num_shards` contiguous shards of `dataset` (at most one per row). Each is written under
    `feature_cache_shards_dir(output_dir)` and marked finished once written, with a hash of its rows, hashes of the
    encoder's configuration and weights, and the dtype. A rerun skips a finished shard that matches this run, refuses
    one that does not (naming the shard and what differs), and computes again a shard whose marker or files are
    missing, cut short or changed; so a run that was killed restarts from the unfinished shards. `shard_indices`
    computes only those shards (one machine's share when the work is split over several) and returns None: once every
    shard is finished, [`merge_feature_cache`] writes the cache. Without `shard_indices` all shards are computed and
    merged, and the cache is returned. `num_proc` encodes in that many processes (`datasets.map`; a model on the CPU
    only: with accelerators, run one process per device with its own `shard_indices`). The merged cache is saved in
    Arrow files of up to `max_shard_size` (`save_to_disk`; default 500MB).

    `output_dir` must be new or empty, or hold a feature cache: one of the same rows, encoder and dtype is returned as
    it is; one of anything else, or another dataset folder, is replaced only with `overwrite`. A folder holding
    anything else is never written into.

    A clip the processor refuses (unreadable, empty, non-finite, shorter than the encoder's minimum) stops the run with
    an error naming its row and file; with `skip_invalid` it is left out of the cache instead, with a logged warning,
    and listed (row, path, reason) in `skipped_clips.json` in `output_dir`. Clips longer than the processor's
    `max_audio_seconds` are cropped (the cache holds one clip per row), with one warning per run giving their number
    and files.

    The trainable `audio_layernorm` is not applied: the cache holds the frozen encoder's raw outputs. Use `float16` to
    halve the disk cost (about 0.28 GB per hour of audio for a 768-d encoder at 50 frames/s, 0.55 GB in float32).
    """
    if not isinstance(dataset, Dataset):
        hint = " (pick one split: dataset['train'])" if isinstance(dataset, dict) else ""
        raise TypeError(f"cache_audio_features takes a datasets.Dataset with an 'audio' column; got "
                        f"{type(dataset).__name__}{hint}.")
    check_positive_int("batch_size", batch_size, "clips encoded at once")
    if dtype not in CACHE_DTYPES:
        raise ValueError(f"dtype must be one of {CACHE_DTYPES} (the encoder's features are floats), got {dtype!r}.")
    if not model.config.freeze_audio_encoder:
        raise ValueError("The feature cache is for a frozen audio encoder; this model's config trains it.")
    trainable = [name for name, parameter in model.audio_model.named_parameters() if parameter.requires_grad]
    if trainable:
        raise ValueError(f"The feature cache is for a frozen audio encoder; {len(trainable)} of this model's encoder "
                         f"parameters require grad ({few(trainable)}): call model.audio_model.requires_grad_(False) "
                         "or build the model from a config that freezes it.")
    check_columns(dataset, {"audio": "audio"})
    indices = list(range(num_shards)) if shard_indices is None else sorted(set(shard_indices))
    if num_shards < 1 or any(not 0 <= i < num_shards for i in indices):
        raise ValueError(f"Shard indices must lie in 0..{num_shards - 1} (num_shards={num_shards}); got {indices}.")
    if dataset.num_rows == 0:
        raise ValueError("The dataset has no rows: there is nothing to cache.")
    device = next(model.parameters()).device
    if (num_proc or 1) > 1 and device.type != "cpu":
        raise ValueError(f"num_proc encodes in forked CPU processes, but the model is on {device}: run one process per "
                         "device instead, each with its own shard_indices.")
    if processor.long_audio_policy != "crop":
        raise ValueError("The feature cache stores one clip per row: build it with a processor whose "
                         f"long_audio_policy is 'crop', not {processor.long_audio_policy!r}.")
    output_dir = os.fspath(output_dir)
    dataset = undecoded_audio(dataset, "audio")
    if num_shards > dataset.num_rows:  # one row per shard at most; the shards past the rows would be empty
        logger.info(f"{num_shards} shards for {dataset.num_rows} rows: caching in {dataset.num_rows} shards.")
        num_shards, indices = dataset.num_rows, [i for i in indices if i < dataset.num_rows]
    identity = {"dtype": dtype, "dataset_rows": dataset.num_rows, **_encoder_identity(model, processor)}
    if _existing_cache(output_dir, identity, dataset, overwrite):
        logger.info(f"{output_dir} already holds this feature cache (same rows, encoder and dtype).")
        return None if shard_indices is not None else _load_cache(output_dir)
    model.eval()
    cropped, cropped_examples = 0, []
    for index in indices:
        shard = dataset.shard(num_shards, index, contiguous=True)
        folder = _shard_folder(output_dir, index, num_shards)
        expected = {**identity, "num_rows": shard.num_rows, "rows": _rows_hash(shard)}
        record, problem = _shard_record(folder)
        if record is not None:
            differences = _differences(record, expected)
            if differences:
                raise ValueError(f"{folder} holds a finished shard that belongs to another cache: its "
                                 f"{'; '.join(differences)}. Delete it, or write this cache elsewhere.")
            problem = _damage(folder, record)
            if not problem:
                continue
        if problem:
            logger.warning(f"Shard {index} of {num_shards} ({folder}) is computed again: {problem}.")
        offset = sum(dataset.shard(num_shards, i, contiguous=True).num_rows for i in range(index))
        record = _cache_shard(model, processor, shard, folder, batch_size, dtype, num_proc, progress, offset,
                              skip_invalid, expected)
        cropped += record["cropped"]
        cropped_examples += record["cropped_examples"]
    if cropped:
        seconds = processor.max_audio_seconds
        logger.warning(f"{cropped} clip(s) longer than {seconds} s were cropped to their first {seconds} s in the "
                       f"feature cache, which holds one clip per row: {few(cropped_examples, 3)}. To keep all of a "
                       f"long clip, cut it into clips of at most {seconds} s before caching.")
    if shard_indices is not None:
        return None
    return merge_feature_cache(output_dir, max_shard_size=max_shard_size, progress=progress, overwrite=overwrite)


def _check_cacheable(features: np.ndarray, dtype: np.dtype, name: str) -> None:
    """Refuses to cache non-finite features, and features that overflow the cache's dtype (float16 above 65504)."""
    if not np.isfinite(features).all():
        raise ValueError(f"The audio encoder gave NaN or infinite features for {name}; nothing was cached for it.")
    with np.errstate(over="ignore"):
        if not np.isfinite(features.astype(dtype)).all():
            raise ValueError(f"The features of {name} reach {np.abs(features).max():.4g}, beyond {dtype}'s range: "
                             "cache in float32.")


def _cache_shard(model, processor: MintProcessor, shard: Dataset, folder: str, batch_size: int, dtype: str,
                 num_proc: int | None, progress: bool, offset: int, skip_invalid: bool, expected: dict) -> dict:
    """
    Encodes one shard (its first row being row `offset` of the dataset) into Arrow files in `folder`, then marks it
    finished with `expected` (what it holds), its files' hashes, its refused clips (kept as empty rows, for the merge to
    drop) and its cropped clips. Returns the record.
    """
    if os.path.isdir(folder):  # cut short by an earlier run
        shutil.rmtree(folder)
    os.makedirs(folder)
    np_dtype, width = np.dtype(dtype), model.config.audio_feature_size
    device = next(model.parameters()).device
    threads = max(1, torch.get_num_threads() // num_proc) if (num_proc or 1) > 1 else None
    limit = int(processor.max_audio_seconds * processor.sampling_rate)

    def encode(batch, rows):
        if threads:  # each of the num_proc processes takes its share of the cores
            torch.set_num_threads(threads)
        clips, reasons = load_clips(processor, batch["audio"])
        for row, audio, reason in zip(rows, batch["audio"], reasons):
            if reason and not skip_invalid:
                raise ValueError(f"{describe_clip(offset + row, audio)}: {reason} Pass skip_invalid=True (mint "
                                 "cache-features --skip-invalid) to leave such clips out of the cache.")
        kept = [index for index, clip in enumerate(clips) if clip is not None]
        encoded, lengths = [np.zeros((0, width), np_dtype)] * len(clips), [0] * len(clips)  # a refused clip's row
        seconds = [0.0 if clip is None or clip.shape[0] <= limit else clip.shape[0] / processor.sampling_rate
                   for clip in clips]
        if kept:
            with collected_crop_notices():  # the cache reports its cropped clips once per run, by file
                inputs = processor(audio=[clips[i] for i in kept], sampling_rate=processor.sampling_rate)
            with torch.inference_mode():
                hidden, mask = model.get_audio_encoder_features(**{k: v.to(device) for k, v in inputs.items()})
            for index, h, n in zip(kept, hidden, mask.sum(-1).tolist()):
                clip_features = h[:n].float().cpu().numpy()
                _check_cacheable(clip_features, np_dtype, f"row {offset + rows[index]} of the dataset")
                encoded[index], lengths[index] = clip_features.astype(np_dtype), n
        return {ENCODER_FEATURES_KEY: encoded, CACHED_LENGTH: lengths, _SKIP_REASON: reasons,
                _CROPPED_SECONDS: seconds}

    features = shard.features.copy()
    del features["audio"]
    # Rows of frames of one width (Array2D): Arrow hands a batch of them to numpy in one piece, where nested lists are
    # converted row by row.
    features[ENCODER_FEATURES_KEY] = Array2D(shape=(None, width), dtype=dtype)
    features[CACHED_LENGTH] = Value("int32")
    features[_SKIP_REASON] = Value("string")
    features[_CROPPED_SECONDS] = Value("float64")
    name = os.path.basename(folder)
    with progress_bars(progress):
        # Rows of features are large: Arrow batches of `batch_size` rows keep the writer's memory small.
        cached = shard.map(encode, batched=True, with_indices=True, batch_size=batch_size, remove_columns=["audio"],
                           features=features,
                           writer_batch_size=batch_size, num_proc=num_proc, load_from_cache_file=False,
                           cache_file_name=os.path.join(folder, "features.arrow"), new_fingerprint=name,
                           desc=f"Caching audio features ({name})")
    files = [os.path.basename(f["filename"]) for f in cached.cache_files]
    skipped, cropped = [], []
    for row, (reason, seconds) in enumerate(zip(cached[_SKIP_REASON], cached[_CROPPED_SECONDS])):
        if reason:
            audio = shard[row]["audio"]
            logger.warning(f"{describe_clip(offset + row, audio)} is left out of the feature cache: {reason}")
            skipped.append({"row": offset + row, "path": audio_path(audio), "reason": reason})
        elif seconds:
            cropped.append(row)
    record = {"format": _RECORD_FORMAT, **expected,
              "files": {name: _file_hash(os.path.join(folder, name)) for name in files}, "skipped": skipped,
              "cropped": len(cropped), "cropped_examples": [audio_path(shard[row]["audio"]) or f"row {offset + row}"
                                                            for row in cropped[:3]]}
    write_json(os.path.join(folder, SHARD_COMPLETE_MARKER), record)
    return record


def _save_cache(merged: Dataset, skipped: list[dict], record: dict, max_shard_size: str | int | None,
                num_shards: int | None, folder: str) -> None:
    """Writes the merged cache in `folder`: its Arrow files, the list of skipped clips, then its record."""
    merged.save_to_disk(folder, max_shard_size=max_shard_size, num_shards=num_shards)
    if skipped:
        write_json(os.path.join(folder, SKIPPED_CLIPS_FILE), skipped, indent=1)
    write_json(os.path.join(folder, CACHE_RECORD), record, indent=1)


def _one_layout(parts: list[Dataset]) -> list[Dataset]:
    """
    Shards finished by an earlier version of the package store each clip's frames as nested lists; where they are
    merged with shards of `Array2D` rows, they are rewritten as those (batch by batch, beside their own files).
    """
    layout = next((part.features[ENCODER_FEATURES_KEY] for part in parts
                   if isinstance(part.features[ENCODER_FEATURES_KEY], Array2D)), None)
    if layout is None:
        return parts
    return [part if isinstance(part.features[ENCODER_FEATURES_KEY], Array2D) else
            part.cast(Features({**part.features, ENCODER_FEATURES_KEY: layout}), batch_size=64, writer_batch_size=64)
            for part in parts]


def merge_feature_cache(
    output_dir: str | os.PathLike,
    max_shard_size: str | int | None = None,
    num_shards: int | None = None,
    progress: bool = True,
    overwrite: bool = False,
) -> Dataset:
    """
    Merges the finished shards that [`cache_audio_features`] wrote for `output_dir` (possibly on several machines
    sharing the folder) into one dataset saved in `output_dir` (Arrow files of up to `max_shard_size`, or `num_shards`
    files), in the order of the original dataset, with a record of what it holds, then deletes the shards. Fails,
    naming them, while any shard is missing or unfinished (its marker empty or cut short), when a shard's files changed
    after it was finished, or when the shards disagree on their dataset, encoder or dtype. `output_dir` must be new or
    empty; a dataset folder there (an earlier cache) is replaced only with `overwrite`, anything else never.
    """
    output_dir = os.fspath(output_dir)
    shards_dir = feature_cache_shards_dir(output_dir)
    names = sorted(os.listdir(shards_dir)) if os.path.isdir(shards_dir) else []
    splits = {int(m.group(2)) for name in names if (m := _SHARD_NAME.match(name))}
    if not splits:
        raise ValueError(f"No feature-cache shards in {shards_dir}: compute them with cache_audio_features first.")
    if len(splits) > 1:
        raise ValueError(f"{shards_dir} holds shards of {len(splits)} different splits ({sorted(splits)} shards); "
                         "keep those of one and delete the others.")
    check_output_folder(output_dir, overwrite, "the feature cache")
    total = splits.pop()
    folders = [_shard_folder(output_dir, i, total) for i in range(total)]
    states = [_shard_record(folder) for folder in folders]
    unfinished = [i for i, (record, _) in enumerate(states) if record is None]
    if unfinished:
        why = [f"shard {i}: {problem}" for i, (_, problem) in enumerate(states) if problem]
        raise ValueError(f"Shards {unfinished} of {total} in {shards_dir} are not finished"
                         + (f" ({'; '.join(why)})" if why else "") + "; compute them (cache_audio_features with "
                         "shard_indices, or cache-features --shard-index) before merging.")
    records = [record for record, _ in states]
    disagree = [f"shard {i} ({'; '.join(d)})" for i, record in enumerate(records[1:], 1)
                if (d := _differences(record, {**records[0], "num_rows": record["num_rows"], "rows": record["rows"]}))]
    if disagree:
        raise ValueError(f"The shards in {shards_dir} do not belong to one cache: against shard 0, "
                         f"{', '.join(disagree)} differ. Compute those shards again with the dataset, encoder and "
                         "dtype of the others, or delete them.")
    damaged = [f"shard {i} ({problem})" for i, (folder, record) in enumerate(zip(folders, records))
               if (problem := _damage(folder, record))]
    if damaged:
        raise ValueError(f"Damaged shards in {shards_dir}: {'; '.join(damaged)}. Compute them again "
                         "(cache_audio_features with shard_indices, or cache-features --shard-index): a rerun replaces "
                         "a damaged shard.")
    with progress_bars(progress):
        parts = _one_layout([Dataset.from_file(os.path.join(folder, name)) for folder, record in
                             zip(folders, records) for name in record["files"]])
    merged = concatenate_datasets(parts).remove_columns([_SKIP_REASON, _CROPPED_SECONDS])
    skipped = [clip for record in records for clip in record["skipped"]]
    if skipped:
        if len(skipped) == merged.num_rows:
            raise ValueError(f"Every clip of the dataset ({len(skipped)}) was refused: nothing to cache. The first: "
                             f"row {skipped[0]['row']} ({skipped[0]['path']!r}): {skipped[0]['reason']}")
        left_out = {clip["row"] for clip in skipped}
        merged = merged.select([row for row in range(merged.num_rows) if row not in left_out])
    cache_record = {"format": _RECORD_FORMAT, **{key: records[0][key] for key in _IDENTITY},
                    **{key: records[0][key] for key in (FEATURE_SETTINGS,) if key in records[0]}, "num_shards": total,
                    "rows": [record["rows"] for record in records], "cached_rows": merged.num_rows,
                    "skipped": len(skipped), "cropped": sum(record["cropped"] for record in records)}

    with progress_bars(progress):
        replace_folder(output_dir, functools.partial(_save_cache, merged, skipped, cache_record, max_shard_size,
                                                     num_shards))
    if skipped:
        logger.warning(f"{len(skipped)} clips were left out of the feature cache; they are listed in "
                       f"{os.path.join(output_dir, SKIPPED_CLIPS_FILE)}.")
    del parts, merged
    for name in names:  # the shards only: anything else in the folder stays
        if _SHARD_NAME.match(name):
            shutil.rmtree(os.path.join(shards_dir, name))
    if not os.listdir(shards_dir):
        os.rmdir(shards_dir)
    return _load_cache(output_dir)


__all__ = [
    "CACHE_DTYPES",
    "CACHE_RECORD",
    "SHARD_COMPLETE_MARKER",
    "SKIPPED_CLIPS_FILE",
    "cache_audio_features",
    "check_feature_cache",
    "feature_cache_gb_per_hour",
    "feature_cache_shards_dir",
    "merge_feature_cache",
]
