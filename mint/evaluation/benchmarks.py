# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""Evaluating MINT on the paper's benchmarks (Tables 2-6): classification, retrieval, captioning, and a leakage check.

    mint-eval classify  --model M --dataset D --template NSynth [--label-column label] [--multi-label]
                        [--length-normalize]                              # vocabulary ranking (Table 2)
    mint-eval zero-shot --model M --dataset D --label-column label        # stage-1 embeddings (Table 6)
    mint-eval retrieval --model M --dataset D --caption-column captions [--rerank-top-k 10]
    mint-eval caption   --model M --dataset D --caption-column captions [--num-beams 3 --max-new-tokens 30]
    mint-eval leakage   --train T1 [T2 ...] --dataset D

Each writes a JSON of every metric and prediction (with the settings used) and a Markdown table laid out like the
paper's, prints the table and a summary, and exits with status 0 (non-zero on an error).

Long clips follow the processor's `long_audio_policy` (`--long-audio-policy`): cropped to their first
`max_audio_seconds` (one warning per run, with the count), or cut into windows whose results are pooled into one per
clip: the mean of the windows' scores for classification, the re-normalised mean of the windows' normalised embeddings
for retrieval, the windows' captions joined by a space for captioning. Every clip gives one result row. A clip the
processor refuses (an undecodable file, a clip shorter than the encoder's minimum) is an error naming its dataset row
and file, or, with `skip_invalid=True` (`--skip-invalid`), is left out and listed under `skipped` in the result.
"""

import argparse
import hashlib
import json
import os
import re
import string
import sys
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from datasets import Dataset
from sklearn.metrics import average_precision_score, roc_auc_score
from tqdm.auto import tqdm


from mint.data.examples import (check_columns, describe_clip, label_names, load_clips, undecoded_audio, get_template,
                       label_text, load_local_dataset, pad_audio_features)
from mint.evaluation.caption_metrics import compute_caption_metrics
from processing_mint import audio_path


def _batches(dataset: Dataset, batch_size: int, progress: bool, description: str) -> Iterator[tuple[int, dict]]:
    """`(first row, rows)` for consecutive batches of `dataset`."""
    with tqdm(total=len(dataset), desc=description, disable=not progress, unit="clip") as bar:
        for start in range(0, len(dataset), batch_size):
            batch = dataset[start : start + batch_size]
            yield start, batch
            bar.update(len(next(iter(batch.values()))))


def _to(inputs, device) -> dict[str, torch.Tensor]:
    return {k: v.to(device) for k, v in inputs.items() if k != "clip_index"}


def _device(model) -> torch.device:
    return next(model.parameters()).device


# The model's keyword for audio encoder outputs given in place of audio (as the frozen-feature cache gives them).
_ENCODER_OUTPUTS_KEYWORD = "audio_encoder_features"


def _encoder_outputs(hidden: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
    return {_ENCODER_OUTPUTS_KEYWORD: hidden, "audio_attention_mask": mask}


def mean_over_windows(values: torch.Tensor, clip_index: torch.Tensor, num_clips: int) -> torch.Tensor:
    """
    `values` `(windows, ...)` averaged over each clip's windows: `(num_clips, ...)`. `clip_index` `(windows,)` gives
    the clip of each window, as the processor returns it with `long_audio_policy="window"`.
    """
    clip_index = clip_index.to(values.device)
    total = values.new_zeros((num_clips, *values.shape[1:])).index_add_(0, clip_index, values)
    counts = torch.bincount(clip_index, minlength=num_clips).to(values.dtype)
    return total / counts.view(-1, *[1] * (values.dim() - 1))


def pool_window_embeddings(embeddings: torch.Tensor, clip_index: torch.Tensor, num_clips: int) -> torch.Tensor:
    """A clip's embedding from its windows' `(windows, ..., dim)`: the mean of the L2-normalised window embeddings,
    L2-normalised again (a one-window clip keeps its embedding)."""
    return F.normalize(mean_over_windows(F.normalize(embeddings, dim=-1), clip_index, num_clips), dim=-1)


@dataclass
class _AudioBatch:
    """A batch ready for the model: `rows` of the dataset (of the valid clips), the processor's `inputs` for them (one
    row per window with the window policy) and `clip_index` mapping each row of `inputs` to its clip in `rows`."""

    rows: list[int]
    inputs: dict[str, torch.Tensor]
    clip_index: torch.Tensor


@dataclass
class _ClipReader:
    """Reads an evaluation's clips in batches through the processor, and records what it met: the clips it left out
    (`skipped`, with `skip_invalid`) and how many it cropped."""

    processor: Any
    audio_column: str = "audio"
    batch_size: int = 8
    progress: bool = True
    long_audio_policy: str | None = None
    skip_invalid: bool = False
    skipped: list[dict[str, Any]] = field(default_factory=list)
    num_cropped: int = 0

    def batches(self, model, dataset: Dataset, description: str, prompt: str | None = None) -> Iterator[_AudioBatch]:
        """The clips of `dataset` (with `prompt` as each clip's text) as inputs on the model's device."""
        device = _device(model)
        for start, batch in _batches(dataset, self.batch_size, self.progress, description):
            clips = list(batch[self.audio_column])
            rows = list(range(start, start + len(clips)))
            try:
                inputs = self._process(clips, prompt)
            except (ValueError, TypeError):
                clips, rows = self._valid_clips(clips, rows)
                if len(clips) == len(batch[self.audio_column]):  # no clip alone is refused: the batch's error stands
                    raise
                if not rows:
                    continue
                inputs = self._process(clips, prompt)
            clip_index = inputs.get("clip_index")
            clip_index = torch.arange(len(rows)) if clip_index is None else clip_index.long()
            yield _AudioBatch(rows, _to(inputs, device), clip_index.to(device))

    def _process(self, clips: list, prompt: str | None):
        """The processor's inputs for `clips`; its crop warnings are counted instead of shown one by one."""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            inputs = self.processor(audio=clips, text=None if prompt is None else [prompt] * len(clips),
                                    long_audio_policy=self.long_audio_policy)
        for warning in caught:
            if "cropped to its first" in str(warning.message):
                self.num_cropped += 1
            else:
                warnings.warn(warning.message, warning.category, stacklevel=4)
        return inputs

    def _valid_clips(self, clips: list, rows: list[int]) -> tuple[list, list[int]]:
        """The clips the processor accepts, with their rows. A refused clip raises an error naming its row and file,
        or, with `skip_invalid`, is left out and recorded."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _, reasons = load_clips(self.processor, clips)
        for clip, row, reason in zip(clips, rows, reasons):
            if reason and not self.skip_invalid:
                raise ValueError(f"{describe_clip(row, clip)}: {reason} Pass skip_invalid=True (mint-eval "
                                 "--skip-invalid) to skip such clips and count them.")
            if reason:
                warnings.warn(f"{describe_clip(row, clip)} is skipped: {reason}", stacklevel=5)
                self.skipped.append({"row": row, "path": audio_path(clip), "reason": reason})
        valid = [(clip, row) for clip, row, reason in zip(clips, rows, reasons) if not reason]
        return [clip for clip, _ in valid], [row for _, row in valid]

    def record(self) -> dict[str, Any]:
        """What the result reports about the clips; warns once if some were cropped."""
        if self.num_cropped:
            seconds = self.processor.max_audio_seconds
            warnings.warn(f"{self.num_cropped} clips are longer than {seconds} s and were cropped to their first "
                          f"{seconds} s; pass long_audio_policy='window' (mint-eval --long-audio-policy window) to use "
                          "all of their audio.", stacklevel=3)
        return {"long_audio_policy": self.long_audio_policy or self.processor.long_audio_policy,
                "num_cropped": self.num_cropped, "num_skipped": len(self.skipped), "skipped": self.skipped}


# ---- classification (Table 2, section 4.1; Table 6) ----------------------------------------------------------------

def _targets(dataset: Dataset, label_column: str, candidates: list[str], multi_label: bool) -> list:
    names = label_names(dataset, label_column)
    known = set(candidates)
    targets = []
    for value in dataset[label_column]:
        values = value if isinstance(value, (list, tuple)) else [value]
        labels = [label_text(v, names) for v in values]
        outside = [label for label in labels if label not in known]
        if outside:
            raise ValueError(f"Labels {outside} are not in the candidate list {candidates}; every label must be a "
                             "candidate.")
        targets.append(labels if multi_label else labels[0])
    return targets


def candidate_labels(dataset: Dataset, label_column: str) -> list[str]:
    """The class names of a `ClassLabel` column, else the sorted distinct labels."""
    names = label_names(dataset, label_column)
    if names is not None:
        return list(names)
    values = dataset[label_column]
    flat = [v for value in values for v in (value if isinstance(value, (list, tuple)) else [value])]
    return sorted({label_text(v) for v in flat})


DEFAULT_LABEL_TEMPLATE = "This is a sound of {label}."


def label_prompts(label_template: str, candidates: Sequence[str]) -> list[str]:
    """Each candidate label put into `label_template`, in place of its one `{label}` (or `{}`) placeholder."""
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(label_template) if name is not None]
    except ValueError as error:
        fields = [str(error)]
    if fields not in (["label"], [""]):
        raise ValueError(f"A label template needs one placeholder, {{label}} or {{}}, where the label goes (e.g. "
                         f"{DEFAULT_LABEL_TEMPLATE!r}); got {label_template!r}.")
    return [label_template.format(c) if fields == [""] else label_template.format(label=c) for c in candidates]


def _check_some_evaluated(rows: list[int], reader: _ClipReader) -> None:
    if not rows:
        raise ValueError(f"No clip of the dataset could be evaluated: all {len(reader.skipped)} were skipped.")


def _check_candidates(candidates: Sequence[str]) -> None:
    if not candidates:
        raise ValueError("Got an empty candidate list; expected at least one label.")


@torch.no_grad()
def _ranking_scores(model, processor, dataset: Dataset, candidates: list[str], prompt: str, reader: _ClipReader,
                    length_normalize: bool = False) -> tuple[list[int], np.ndarray]:
    tokens = _to(processor.tokenize_candidates(candidates), _device(model))
    rows, scores = [], []
    for batch in reader.batches(model, undecoded_audio(dataset, reader.audio_column), "Vocabulary ranking", prompt):
        window_scores = model.score_candidates(**tokens, **batch.inputs, length_normalize=length_normalize).float()
        scores.append(mean_over_windows(window_scores, batch.clip_index, len(batch.rows)).cpu().numpy())
        rows += batch.rows
    return rows, np.concatenate(scores) if scores else np.zeros((0, len(candidates)))


@torch.no_grad()
def _embedding_scores(model, processor, dataset: Dataset, candidates: list[str], label_template: str,
                      reader: _ClipReader) -> tuple[list[int], np.ndarray]:
    texts = processor(text=label_prompts(label_template, candidates), return_llm_inputs=False)
    device = _device(model)
    text_embeds = model.get_text_features(texts["qformer_input_ids"].to(device),
                                          texts["qformer_attention_mask"].to(device)).pooler_output
    rows, scores = [], []
    for batch in reader.batches(model, undecoded_audio(dataset, reader.audio_column), "Embedding audio"):
        windows = model.get_audio_features(**batch.inputs).pooler_output
        audio_embeds = pool_window_embeddings(windows, batch.clip_index, len(batch.rows))
        scores.append(model.audio_text_similarity(audio_embeds, text_embeds).float().cpu().numpy())
        rows += batch.rows
    return rows, np.concatenate(scores) if scores else np.zeros((0, len(candidates)))


@torch.no_grad()
def vocabulary_ranking_scores(model, processor, dataset: Dataset, candidates: list[str], prompt: str,
                              batch_size: int = 8, progress: bool = True, audio_column: str = "audio",
                              long_audio_policy: str | None = None, length_normalize: bool = False) -> np.ndarray:
    """
    `(clips, candidates)` log-likelihoods of each candidate under the prompt (section 4.1), one row per clip of
    `dataset` (with the window policy, the mean of its windows' scores): summed over the candidate's tokens as in the
    paper, or with `length_normalize=True` their mean per token (the end-of-sequence token included), as the sum
    favours short labels. A clip the processor refuses raises a `ValueError` naming its row and file.
    """
    _check_candidates(candidates)
    check_columns(dataset, {"audio": audio_column})
    reader = _ClipReader(processor, audio_column, batch_size, progress, long_audio_policy)
    return _ranking_scores(model, processor, dataset, list(candidates), prompt, reader, length_normalize)[1]


@torch.no_grad()
def embedding_scores(model, processor, dataset: Dataset, candidates: list[str],
                     label_template: str = DEFAULT_LABEL_TEMPLATE, batch_size: int = 8, progress: bool = True,
                     audio_column: str = "audio", long_audio_policy: str | None = None) -> np.ndarray:
    """
    `(clips, candidates)` stage-1 similarities of each clip to the label prompts, `label_template` with each label
    (zero-shot by embeddings, Table 6), one row per clip of `dataset`. With the window policy a clip's embedding is
    the re-normalised mean of its windows' normalised embeddings. A clip the processor refuses raises a `ValueError`
    naming its row and file.
    """
    _check_candidates(candidates)
    check_columns(dataset, {"audio": audio_column})
    reader = _ClipReader(processor, audio_column, batch_size, progress, long_audio_policy)
    return _embedding_scores(model, processor, dataset, list(candidates), label_template, reader)[1]


def single_label_accuracy(scores: np.ndarray, targets: list[str], candidates: list[str]) -> float:
    index = {c: i for i, c in enumerate(candidates)}
    return float(np.mean(scores.argmax(axis=1) == np.array([index[t] for t in targets])))


def multi_label_auc(scores: np.ndarray, targets: list[list[str]], candidates: list[str],
                    known: list[list[str]] | None = None) -> dict[str, float]:
    """
    Macro PR-AUC (average precision) and ROC-AUC over the classes, OpenMIC-style: for each class only the clips where
    that class was annotated (`known`, default all) count, and classes without both a positive and a negative among
    them are left out.
    """
    pr, roc = [], []
    for j, name in enumerate(candidates):
        rows = [i for i in range(len(targets)) if known is None or name in known[i]]
        truth = np.array([name in targets[i] for i in rows])
        if truth.all() or not truth.any():
            continue
        pr.append(average_precision_score(truth, scores[rows, j]))
        roc.append(roc_auc_score(truth, scores[rows, j]))
    if not pr:
        raise ValueError("No class has both a positive and a negative clip: PR-AUC and ROC-AUC are undefined.")
    return {"pr_auc": float(np.mean(pr)), "roc_auc": float(np.mean(roc)), "classes_scored": len(pr)}


def evaluate_classification(model, processor, dataset: Dataset, label_column: str = "label",
                            candidates: list[str] | None = None, prompt: str | None = None, template: str | None = None,
                            multi_label: bool = False, known_column: str | None = None, mode: str = "llm",
                            batch_size: int = 8, progress: bool = True, audio_column: str = "audio",
                            label_template: str | None = None, long_audio_policy: str | None = None,
                            skip_invalid: bool = False, length_normalize: bool = False) -> dict[str, Any]:
    """
    Classification of every clip: by vocabulary ranking under the LLM (`mode="llm"`, stage 2, Table 2: the candidates
    scored after `prompt` or the prompt of the Table-1 `template`, by their summed log-likelihood as in the paper, or
    by their mean log-likelihood per token with `length_normalize=True`) or by stage-1 embedding similarity to label
    prompts (`mode="embedding"`, Table 6: `label_template` with each label, default "This is a sound of {label}.").
    Single-label: accuracy; multi-label: macro PR-AUC and ROC-AUC with missing annotations (`known_column`) ignored.

    Returns the metrics, the settings used, `predictions` (one per evaluated clip, in dataset order) and what
    happened to the clips (`num_cropped`, and the `skipped` ones with `skip_invalid`, which are not evaluated).
    """
    check_columns(dataset, {"audio": audio_column, "label": label_column, "known labels": known_column})
    dataset = undecoded_audio(dataset, audio_column)
    candidates = list(candidates) if candidates is not None else candidate_labels(dataset, label_column)
    _check_candidates(candidates)
    targets = _targets(dataset, label_column, candidates, multi_label)
    reader = _ClipReader(processor, audio_column, batch_size, progress, long_audio_policy, skip_invalid)
    if mode == "llm":
        if label_template is not None:
            raise ValueError("label_template is for mode='embedding'; vocabulary ranking scores the labels themselves "
                             "after the prompt.")
        if prompt is None and template is None:
            raise ValueError("Vocabulary ranking needs a prompt or a Table-1 template name.")
        prompt = prompt or get_template(template).prompt
        rows, scores = _ranking_scores(model, processor, dataset, candidates, prompt, reader, length_normalize)
        settings = {"prompt": prompt, "length_normalize": length_normalize}
    elif mode == "embedding":
        if prompt is not None or template is not None:
            raise ValueError("mode='embedding' scores label prompts made with label_template (e.g. "
                             f"{DEFAULT_LABEL_TEMPLATE!r}); prompt and template are for mode='llm'.")
        if length_normalize:
            raise ValueError("length_normalize is for mode='llm': it averages a candidate's log-likelihood over its "
                             "tokens; mode='embedding' scores similarities.")
        label_template = label_template or DEFAULT_LABEL_TEMPLATE
        rows, scores = _embedding_scores(model, processor, dataset, candidates, label_template, reader)
        settings = {"label_template": label_template}
    else:
        raise ValueError(f"mode must be 'llm' or 'embedding', got {mode!r}.")
    _check_some_evaluated(rows, reader)
    targets = [targets[row] for row in rows]
    result: dict[str, Any] = {"task": "classification", "mode": mode, **settings, "num_clips": len(rows),
                              "num_candidates": len(candidates), **reader.record()}
    if multi_label:
        annotated = dataset[known_column] if known_column else None
        known = [list(annotated[row]) for row in rows] if known_column else None
        result.update(multi_label_auc(scores, targets, candidates, known))
    else:
        result["accuracy"] = single_label_accuracy(scores, targets, candidates)
        result["chance"] = 1.0 / len(candidates)
    result["predictions"] = [candidates[i] for i in scores.argmax(axis=1)]
    return result


# ---- retrieval (Table 3) -------------------------------------------------------------------------------------------

def retrieval_metrics(similarity: np.ndarray, relevant: list[set[int]], ks: Sequence[int] = (1, 5, 10)) -> dict:
    """
    R@k and mAP@10 for queries (rows) over items (columns). R@k: the fraction of queries with at least one relevant
    item in the top k. mAP@10: mean over queries of the average precision of the top 10, divided by
    min(number relevant, 10) (DCASE's definition; with one relevant item it is 1/rank when rank <= 10, else 0).
    """
    order = np.argsort(-similarity, axis=1, kind="stable")
    result = {}
    hits = np.array([[item in rel for item in row] for row, rel in zip(order, relevant)])
    for k in ks:
        result[f"R@{k}"] = float(hits[:, :k].any(axis=1).mean())
    top = hits[:, :10]
    precision = np.cumsum(top, axis=1) / np.arange(1, top.shape[1] + 1)
    denominators = np.array([min(len(rel), 10) for rel in relevant])
    result["mAP@10"] = float(((precision * top).sum(axis=1) / denominators).mean())
    return result


def _captions_per_clip(dataset: Dataset, caption_columns: Sequence[str]) -> list[list[str]]:
    check_columns(dataset, {f"caption ({c})": c for c in caption_columns})
    if len(caption_columns) == 1:
        values = dataset[caption_columns[0]]
        return [list(v) if isinstance(v, (list, tuple)) else [v] for v in values]
    return [list(row) for row in zip(*(dataset[c] for c in caption_columns))]


def caption_queries(captions_per_clip: Sequence[Sequence[str]]) -> tuple[list[str], list[set[int]]]:
    """
    The text queries of a retrieval evaluation and the clips relevant to each: every distinct caption is one query
    (in order of first appearance), and every clip with that caption is relevant to it. Clotho's five distinct
    captions per clip give one query per caption with its one clip; a labelled dataset whose labels were turned into
    captions gives one query per label with all of its clips.
    """
    clips_of: dict[str, set[int]] = {}
    for clip, captions in enumerate(captions_per_clip):
        for caption in captions:
            clips_of.setdefault(caption, set()).add(clip)
    return list(clips_of), list(clips_of.values())


@torch.no_grad()
def evaluate_retrieval(model, processor, dataset: Dataset, caption_columns: Sequence[str] = ("caption",),
                       rerank_top_k: int | None = None, batch_size: int = 8, progress: bool = True,
                       audio_column: str = "audio", long_audio_policy: str | None = None,
                       skip_invalid: bool = False) -> dict[str, Any]:
    """
    Text-to-audio and audio-to-text retrieval with the stage-1 embeddings (section 4.1, Table 3). Queries and
    relevance follow [`caption_queries`]: each distinct caption is a text query whose relevant clips are all the clips
    with that caption; for audio-to-text each clip is a query whose relevant items are its captions. With
    `rerank_top_k`, each text query's top k clips are re-ordered by the ALM matching probability (BLIP-2's
    re-ranking; with the window policy, the mean of the windows' probabilities); the other clips keep their order below
    them. Skipped clips (`skip_invalid`) are left out of the collection, and their captions out of the queries.
    """
    check_columns(dataset, {"audio": audio_column})
    dataset = undecoded_audio(dataset, audio_column)
    captions = _captions_per_clip(dataset, caption_columns)
    reader = _ClipReader(processor, audio_column, batch_size, progress, long_audio_policy, skip_invalid)
    rows, audio_embeds, features, feature_clip = [], [], [], []
    for batch in reader.batches(model, dataset, "Embedding audio"):
        hidden, mask = model.get_audio_encoder_features(**batch.inputs)
        windows = model.get_audio_features(**_encoder_outputs(hidden, mask)).pooler_output
        audio_embeds.append(pool_window_embeddings(windows, batch.clip_index, len(batch.rows)))
        features.extend(h[: int(n)] for h, n in zip(hidden, mask.sum(-1)))
        feature_clip.extend((len(rows) + batch.clip_index).tolist())
        rows += batch.rows
    _check_some_evaluated(rows, reader)
    texts, relevant = caption_queries([captions[row] for row in rows])
    similarity = _text_audio_similarity(model, processor, texts, torch.cat(audio_embeds), batch_size, progress)
    if rerank_top_k:
        similarity = _rerank(model, processor, similarity, texts, features, feature_clip, rerank_top_k, progress)
    text_to_audio = retrieval_metrics(similarity, relevant)
    audio_to_text = retrieval_metrics(similarity.T, [{query for query, clips in enumerate(relevant) if clip in clips}
                                                     for clip in range(len(rows))])
    return {"task": "retrieval", "num_clips": len(rows), "num_captions": sum(len(captions[row]) for row in rows),
            "num_queries": len(texts), "rerank_top_k": rerank_top_k, "text_to_audio": text_to_audio,
            "audio_to_text": audio_to_text, **reader.record(),
            "counting": "text-to-audio: every distinct caption is a query, every clip with that caption relevant; "
                        "audio-to-text: every clip is a query, its captions relevant; mAP@10 over min(relevant, 10)"}


def _text_audio_similarity(model, processor, texts: list[str], audio_embeds: torch.Tensor, batch_size: int,
                           progress: bool) -> np.ndarray:
    """`(texts, clips)` ALC similarities."""
    device = _device(model)
    text_embeds = []
    for start in tqdm(range(0, len(texts), batch_size), desc="Embedding text", disable=not progress):
        tokens = _to(processor(text=texts[start : start + batch_size], return_llm_inputs=False), device)
        text_embeds.append(model.get_text_features(tokens["qformer_input_ids"],
                                                   tokens["qformer_attention_mask"]).pooler_output)
    return model.audio_text_similarity(audio_embeds, torch.cat(text_embeds)).t().float().cpu().numpy()


def _rerank(model, processor, similarity, texts, features, feature_clip, top_k, progress):
    """Each text query's top k clips ordered by their ALM matching probability (the mean over a clip's windows)."""
    device = _device(model)
    windows_of: dict[int, list[int]] = {}
    for window, clip in enumerate(feature_clip):
        windows_of.setdefault(clip, []).append(window)
    reranked = similarity.copy()
    for row in tqdm(range(len(texts)), desc="ALM re-ranking", disable=not progress):
        top = np.argsort(-similarity[row], kind="stable")[:top_k]
        windows = [w for clip in top for w in windows_of[int(clip)]]
        clip_index = torch.tensor([position for position, clip in enumerate(top) for _ in windows_of[int(clip)]])
        tokens = processor(text=[texts[row]] * len(windows), return_llm_inputs=False)
        audio, mask = pad_audio_features([features[w].float().cpu() for w in windows])
        probability = model.get_matching_scores(
            tokens["qformer_input_ids"].to(device), tokens["qformer_attention_mask"].to(device),
            **_encoder_outputs(audio.to(device), mask.to(device))).float()
        probability = mean_over_windows(probability, clip_index, len(top)).cpu().numpy()
        reranked[row, top] = similarity[row].max() + 1.0 + probability  # above every clip outside the top k
    return reranked


# ---- captioning (Table 4) ------------------------------------------------------------------------------------------

@torch.no_grad()
def evaluate_captioning(model, processor, dataset: Dataset, caption_columns: Sequence[str] = ("caption",),
                        prompt: str = "Generate audio caption:", num_beams: int = 3, max_new_tokens: int = 30,
                        batch_size: int = 8, progress: bool = True, audio_column: str = "audio",
                        allow_empty: bool = False, long_audio_policy: str | None = None,
                        skip_invalid: bool = False) -> dict[str, Any]:
    """
    Generates a caption per clip with the Table-1 captioning prompt and scores it against the references. With the
    window policy a clip's caption is its windows' non-empty captions joined by a space, in order (as the
    `audio-to-text` pipeline writes them). Skipped clips (`skip_invalid`) are left out of the scores.
    """
    check_columns(dataset, {"audio": audio_column})
    dataset = undecoded_audio(dataset, audio_column)
    references = _captions_per_clip(dataset, caption_columns)
    reader = _ClipReader(processor, audio_column, batch_size, progress, long_audio_policy, skip_invalid)
    rows, predictions = [], []
    for batch in reader.batches(model, dataset, "Captioning", prompt):
        ids = model.generate(**batch.inputs, num_beams=num_beams, max_new_tokens=max_new_tokens, do_sample=False)
        windows = [text.strip() for text in processor.batch_decode(ids)]
        clip_index = batch.clip_index.tolist()
        predictions += [" ".join(text for text, clip in zip(windows, clip_index) if clip == position and text)
                        for position in range(len(batch.rows))]
        rows += batch.rows
    _check_some_evaluated(rows, reader)
    metrics = compute_caption_metrics(predictions, [references[row] for row in rows], allow_empty=allow_empty)
    return {"task": "captioning", "num_clips": len(predictions), "prompt": prompt,
            "generation": {"num_beams": num_beams, "max_new_tokens": max_new_tokens, "do_sample": False},
            **metrics, **reader.record(), "predictions": predictions}


# ---- data leakage --------------------------------------------------------------------------------------------------

_FREESOUND_ID = re.compile(r"(?:^|[^0-9])(\d{3,9})(?:[^0-9]|$)")
_YOUTUBE_ID = re.compile(r"(?:^|[^A-Za-z0-9_-])([A-Za-z0-9_-]{11})(?:[^A-Za-z0-9_-]|$)")


def clip_identifiers(row_audio: dict | str, explicit_id: str | None = None) -> set[str]:
    """
    Identifiers of a clip for leakage checks: an explicit id, Freesound-style numeric ids and YouTube-style 11-character
    ids found in its file name, and the SHA-256 of its bytes when they are at hand.
    """
    ids = {f"id:{explicit_id}"} if explicit_id else set()
    path = row_audio if isinstance(row_audio, str) else (row_audio or {}).get("path")
    data = None if isinstance(row_audio, str) else (row_audio or {}).get("bytes")
    if path:
        stem = os.path.splitext(os.path.basename(path))[0]
        ids |= {f"freesound:{m}" for m in _FREESOUND_ID.findall(stem)}
        ids |= {f"youtube:{m}" for m in _YOUTUBE_ID.findall(stem) if not m.isdigit()}
        if data is None and os.path.isfile(path):
            with open(path, "rb") as f:
                data = f.read()
    if data is not None:
        ids.add("sha256:" + hashlib.sha256(data).hexdigest())
    return ids


def leakage_report(train_datasets: Sequence[Dataset], eval_dataset: Dataset, audio_column: str = "audio",
                   id_column: str | None = None) -> dict[str, Any]:
    """How many evaluation clips share an identifier with any training clip: check before calling a result zero-shot."""
    def identifiers(dataset):
        dataset = undecoded_audio(dataset, audio_column)
        ids = dataset[id_column] if id_column and id_column in dataset.column_names else [None] * len(dataset)
        return [clip_identifiers(audio, None if i is None else str(i)) for audio, i in zip(dataset[audio_column], ids)]

    seen = set().union(*(ids for dataset in train_datasets for ids in identifiers(dataset)))
    overlaps = [(index, sorted(ids & seen)) for index, ids in enumerate(identifiers(eval_dataset)) if ids & seen]
    return {"task": "leakage", "num_eval_clips": len(eval_dataset), "num_overlapping": len(overlaps),
            "fraction_overlapping": len(overlaps) / max(len(eval_dataset), 1),
            "examples": [{"eval_index": i, "shared": shared} for i, shared in overlaps[:20]]}


# ---- reports -------------------------------------------------------------------------------------------------------

def markdown_table(result: dict[str, Any], name: str = "MINT", dataset_name: str = "dataset") -> str:
    """The result as a row of the paper's table for its task (Tables 2, 3 and 4 use these columns)."""
    pct = lambda x: "n/a" if x is None else f"{100 * x:.2f}"  # noqa: E731
    if result["task"] == "classification":
        if "accuracy" in result:
            return f"| Method | {dataset_name} ACC |\n|---|---|\n| {name} | {pct(result['accuracy'])} |\n"
        return (f"| Method | {dataset_name} PR | {dataset_name} ROC |\n|---|---|---|\n"
                f"| {name} | {pct(result['pr_auc'])} | {pct(result['roc_auc'])} |\n")
    if result["task"] == "retrieval":
        t2a, a2t = result["text_to_audio"], result["audio_to_text"]
        cells = " | ".join(pct(t2a[k]) for k in ("R@1", "R@5", "R@10", "mAP@10"))
        back = " | ".join(pct(a2t[k]) for k in ("R@1", "R@5", "R@10", "mAP@10"))
        return ("| Method | T2A R@1 | T2A R@5 | T2A R@10 | T2A mAP@10 | A2T R@1 | A2T R@5 | A2T R@10 | A2T mAP@10 |\n"
                f"|---|---|---|---|---|---|---|---|---|\n| {name} | {cells} | {back} |\n")
    if result["task"] == "captioning":
        keys = ("spider", "rouge_l", "spice", "cider_d", "meteor", "bleu_1", "bleu_4")
        header = " | ".join({"spider": "SPIDEr", "rouge_l": "ROUGE_L", "spice": "SPICE", "cider_d": "CIDEr-D",
                             "meteor": "METEOR", "bleu_1": "BLEU-1", "bleu_4": "BLEU-4"}[k] for k in keys)
        return (f"| Methods | {header} |\n|{'---|' * (len(keys) + 1)}\n"
                f"| {name} | {' | '.join(pct(result[k]) for k in keys)} |\n")
    return (f"| Eval clips | Overlapping with training | Fraction |\n|---|---|---|\n"
            f"| {result['num_eval_clips']} | {result['num_overlapping']} | {pct(result['fraction_overlapping'])} |\n")


_TASKS = {
    "classify": "classification by vocabulary ranking with a stage-2 model (Table 2)",
    "zero-shot": "zero-shot classification by stage-1 embeddings and label prompts (Table 6)",
    "retrieval": "text-to-audio and audio-to-text retrieval with a stage-1 model (Table 3)",
    "caption": "captioning with a stage-2 model (Table 4)",
    "leakage": "clips shared between training datasets and the evaluation dataset",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mint-eval", description=__doc__.split("\n\n")[0])
    tasks = parser.add_subparsers(dest="task", required=True, metavar="TASK")
    for name, description in _TASKS.items():
        task = tasks.add_parser(name, help=description, description=description)
        task.add_argument("--dataset", required=True, help="a dataset folder (save_to_disk, or an audio folder)")
        task.add_argument("--split", default="test", help="the split of a dataset with several (default: test)")
        task.add_argument("--audio-column", default="audio")
        task.add_argument("--output", default="mint_eval.json", help="the JSON of every metric and prediction; the "
                          "Markdown table goes next to it (.md)")
        task.add_argument("--name", default="MINT", help="the row name in the Markdown table")
        task.add_argument("--quiet", action="store_true", help="no progress bars")
        if name == "leakage":
            task.add_argument("--train", nargs="+", required=True, help="training dataset folders")
            task.add_argument("--train-split", default="train")
            task.add_argument("--id-column", help="a column of clip identifiers, compared as well")
            continue
        task.add_argument("--model", required=True,
                          help=f"a MINT folder ({'stage 2' if name in ('classify', 'caption') else 'stage 1'})")
        task.add_argument("--batch-size", type=int, default=8)
        task.add_argument("--long-audio-policy", choices=["crop", "window"],
                          help="clips longer than the processor's max_audio_seconds (default: the processor's policy)")
        task.add_argument("--skip-invalid", action="store_true",
                          help="skip (and count) clips the processor refuses, instead of stopping")
        if name in ("classify", "zero-shot"):
            task.add_argument("--label-column", default="label")
            task.add_argument("--known-column", help="multi-label: the labels annotated for each clip")
            task.add_argument("--candidates", help="comma-separated candidate labels (default: the dataset's labels)")
            task.add_argument("--multi-label", action="store_true")
        if name == "classify":
            task.add_argument("--template", help="a Table-1 template name, whose prompt is used")
            task.add_argument("--prompt", help="the instruction before the candidates (instead of --template)")
            task.add_argument("--length-normalize", action="store_true",
                              help="rank the candidates by their mean log-likelihood per token instead of the sum "
                                   "(the paper's), which favours short labels")
        if name == "zero-shot":
            task.add_argument("--label-template", default=DEFAULT_LABEL_TEMPLATE,
                              help="each label's text, with {label} where the label goes (default: %(default)r)")
            task.add_argument("--prompt", help=argparse.SUPPRESS)
        if name in ("retrieval", "caption"):
            task.add_argument("--caption-column", nargs="+", default=["caption"])
        if name == "retrieval":
            task.add_argument("--rerank-top-k", type=int)
        if name == "caption":
            task.add_argument("--prompt", default=get_template("Clotho").prompt)
            task.add_argument("--num-beams", type=int, default=3)
            task.add_argument("--max-new-tokens", type=int, default=30)
            task.add_argument("--allow-empty", action="store_true",
                              help="score empty generated captions instead of failing")
    return parser


def _evaluate(args: argparse.Namespace) -> dict[str, Any]:
    dataset = load_local_dataset(args.dataset, args.split)
    progress = not args.quiet
    if args.task == "leakage":
        return leakage_report([load_local_dataset(p, args.train_split) for p in args.train], dataset,
                              args.audio_column, args.id_column)
    if args.task == "zero-shot" and args.prompt is not None:
        raise ValueError("zero-shot scores label prompts: give the label's text with --label-template (e.g. "
                         f"{DEFAULT_LABEL_TEMPLATE!r}); --prompt is for classify and caption.")
    from modeling_mint import MintForConditionalGeneration, MintForPreTraining
    from processing_mint import MintProcessor

    processor = MintProcessor.from_pretrained(args.model)
    stage2 = args.task in ("classify", "caption")
    model = (MintForConditionalGeneration if stage2 else MintForPreTraining).from_pretrained(args.model).eval()
    if torch.cuda.is_available():
        model.cuda()
    common = dict(batch_size=args.batch_size, progress=progress, audio_column=args.audio_column,
                  long_audio_policy=args.long_audio_policy, skip_invalid=args.skip_invalid)
    if args.task in ("classify", "zero-shot"):
        classify = args.task == "classify"
        return evaluate_classification(
            model, processor, dataset, args.label_column, args.candidates.split(",") if args.candidates else None,
            prompt=args.prompt if classify else None, template=args.template if classify else None,
            multi_label=args.multi_label, known_column=args.known_column, mode="llm" if classify else "embedding",
            label_template=None if classify else args.label_template,
            length_normalize=args.length_normalize if classify else False, **common)
    if args.task == "retrieval":
        return evaluate_retrieval(model, processor, dataset, args.caption_column, args.rerank_top_k, **common)
    return evaluate_captioning(model, processor, dataset, args.caption_column, args.prompt, args.num_beams,
                               args.max_new_tokens, allow_empty=args.allow_empty, **common)


def run(argv: list[str] | None = None) -> dict[str, Any]:
    """
    `mint-eval` as a function: evaluates as `argv` says, writes the JSON of every metric and prediction and the
    Markdown table next to it, prints the table and a summary, and returns the result.
    """
    args = _parser().parse_args(argv)
    result = _evaluate(args)
    result.update(model=getattr(args, "model", None), dataset=args.dataset, split=args.split)
    with open(args.output, "w") as f:
        json.dump(result, f, indent=2)
    table_path = os.path.splitext(args.output)[0] + ".md"
    table = markdown_table(result, args.name, os.path.basename(os.path.normpath(args.dataset)))
    with open(table_path, "w") as f:
        f.write(table)
    print(table)
    print(_summary(args.task, result, args.output, table_path))
    return result


def _summary(task: str, result: dict[str, Any], output: str, table_path: str) -> str:
    if task == "leakage":
        counts = f"{result['num_eval_clips']} clips checked"
    else:
        counts = (f"{result['num_clips']} clips evaluated ({result['num_skipped']} skipped, {result['num_cropped']} "
                  f"cropped, long-audio policy {result['long_audio_policy']!r})")
    return f"mint-eval {task}: {counts}; every metric and prediction in {output}, the table in {table_path}."


def main(argv: list[str] | None = None) -> int:
    """The `mint-eval` command: 0 once the evaluation is written; an error raises (a non-zero exit status)."""
    run(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
