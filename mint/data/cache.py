# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""The frozen-feature cache: the frozen audio encoder run once over a dataset, its outputs saved in place of the audio,
in shards that are marked finished (so that a killed run resumes) and merged into one Arrow dataset; clips the
processor refuses stop the run or are left out and listed."""

import json
import os
import re
import shutil
from typing import Any

import numpy as np
import torch
from datasets import Dataset, Sequence, Value, concatenate_datasets, load_from_disk
from transformers.utils import logging

from audio_encoder_mint import ENCODER_FEATURES_KEY
from mint.data.examples import CACHED_LENGTH, check_columns, describe_clip, load_clips, undecoded_audio
from mint.data.progress import progress_bars
from audio_io_mint import audio_path
from processing_mint import MintProcessor


logger = logging.get_logger(__name__)

# Written in a finished shard's folder of the feature cache: the shard's Arrow files and row count.
SHARD_COMPLETE_MARKER = "mint_shard_complete.json"
SKIPPED_CLIPS_FILE = "skipped_clips.json"
_SKIP_REASON = "mint_skip_reason"  # a shard's column while it is written; merging drops it with the skipped rows
_SHARD_NAME = re.compile(r"^shard-(\d{5})-of-(\d{5})$")


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
                raise ValueError(f"{describe_clip(offset + row, audio)}: {reason} Pass skip_invalid=True (mint "
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
        return {ENCODER_FEATURES_KEY: encoded, CACHED_LENGTH: lengths, _SKIP_REASON: reasons}

    features = shard.features.copy()
    del features["audio"]
    features[ENCODER_FEATURES_KEY] = Sequence(Sequence(Value(dtype)))
    features[CACHED_LENGTH] = Value("int32")
    features[_SKIP_REASON] = Value("string")
    name = os.path.basename(folder)
    with progress_bars(progress):
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
    with progress_bars(progress):
        merged.save_to_disk(os.fspath(output_dir), max_shard_size=max_shard_size, num_shards=num_shards)
    if skipped:
        with open(os.path.join(output_dir, SKIPPED_CLIPS_FILE), "w") as f:
            json.dump(skipped, f, indent=1)
        logger.warning(f"{len(skipped)} clips were left out of the feature cache; they are listed in "
                       f"{os.path.join(output_dir, SKIPPED_CLIPS_FILE)}.")
    del parts, merged
    shutil.rmtree(shards_dir)
    return load_from_disk(os.fspath(output_dir)).with_format("numpy", columns=[ENCODER_FEATURES_KEY],
                                                              output_all_columns=True)


__all__ = [
    "SHARD_COMPLETE_MARKER",
    "SKIPPED_CLIPS_FILE",
    "cache_audio_features",
    "feature_cache_gb_per_hour",
    "feature_cache_shards_dir",
    "merge_feature_cache",
]
