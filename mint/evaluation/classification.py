# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""Classification (Table 2, section 4.1; Table 6): candidates scored by vocabulary ranking under the LLM (stage 2) or by
embedding similarity to label prompts (stage 1); accuracy, or macro PR-AUC and ROC-AUC for multi-label datasets."""

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from datasets import Dataset
from sklearn.metrics import average_precision_score, roc_auc_score

from mint.data.examples import check_columns, check_flag, label_names, label_text, undecoded_audio
from mint.data.templates import get_template
from mint.evaluation.embeddings import embedded_batches
from mint.evaluation.reading import ClipReader, inputs_on, model_device
from pipelines_mint import (HYPOTHESIS_TEMPLATE_SET, check_label_templates, check_model_kind, check_prompt,
                            content_free_scores, template_text_embeddings)
from processing_mint import check_candidate_labels, mean_over_windows


def candidate_labels(dataset: Dataset, label_column: str) -> list[str]:
    """The class names of a `ClassLabel` column, else the sorted distinct labels."""
    names = label_names(dataset, label_column)
    if names is not None:
        return list(names)
    values = dataset[label_column]
    flat = [v for value in values for v in (value if isinstance(value, (list, tuple)) else [value])]
    return sorted({label_text(v) for v in flat})


def classification_targets(dataset: Dataset, label_column: str, candidates: list[str], multi_label: bool) -> list:
    """
    Each row's target: its label, or the list of its labels with `multi_label`; None for a row without a label (a
    `ClassLabel` index of -1, datasets' "no label", or a missing value). A label outside `candidates`, or a class index
    outside the `ClassLabel`'s names, is refused naming its row.
    """
    names = label_names(dataset, label_column)
    known = set(candidates)
    targets = []
    for row, value in enumerate(dataset[label_column]):
        values = value if isinstance(value, (list, tuple)) else [value]
        if any(v is None or (names is not None and isinstance(v, (int, np.integer)) and v < 0) for v in values):
            targets.append(None)
            continue
        where = f"Row {row} of the dataset, column {label_column!r}"
        try:
            labels = [label_text(v, names) for v in values]
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from None
        outside = [label for label in labels if label not in known]
        if outside:
            raise ValueError(f"{where}: Labels {outside} are not in the candidate list {candidates}; every label must "
                             "be a candidate.")
        targets.append(labels if multi_label else labels[0])
    return targets


def labelled_rows(dataset: Dataset, label_column: str, targets: list, reader: ClipReader) -> list[int] | None:
    """
    The rows to evaluate: None for all of them when every row has a label, else the labelled ones, the others
    recorded as skipped by `reader` when it skips invalid rows and refused, named, when it does not.
    """
    unlabelled = [row for row, target in enumerate(targets) if target is None]
    if not unlabelled:
        return None
    if not reader.skip_invalid:
        raise ValueError(f"Rows {unlabelled[:10]}{' ...' if len(unlabelled) > 10 else ''} of the dataset "
                         f"({len(unlabelled)} in all) have no label in column {label_column!r} (a ClassLabel of -1, "
                         "datasets' 'no label', or a missing value): an accuracy needs each clip's class. Pass "
                         "skip_invalid=True (mint eval --skip-invalid) to skip them and count them.")
    reader.skip(dataset, unlabelled, f"no label in column {label_column!r}")
    return [row for row, target in enumerate(targets) if target is not None]


@torch.no_grad()
def _ranking_scores(model, processor, dataset: Dataset, candidates: list[str], prompt: str, reader: ClipReader,
                    length_normalize: bool = False, rows: list[int] | None = None,
                    calibrate: bool = False) -> tuple[list[int], np.ndarray]:
    """The rows read (of `rows`, default all) and their `(rows, candidates)` vocabulary-ranking scores, less the
    candidates' content-free scores with `calibrate`."""
    check_model_kind(model, "llm", "Vocabulary ranking")
    tokens = inputs_on(processor.tokenize_candidates(candidates), model_device(model))
    prior = content_free_scores(model, processor, candidates, prompt, length_normalize) if calibrate else 0
    dataset, read, scores = undecoded_audio(dataset, reader.audio_column), rows, []
    rows = []
    for batch in reader.batches(model, dataset, "Vocabulary ranking", prompt, rows=read):
        window_scores = model.score_candidates(**tokens, **batch.inputs, length_normalize=length_normalize).float()
        scores.append((mean_over_windows(window_scores, batch.clip_index, len(batch.rows)) - prior).cpu().numpy())
        rows += batch.rows
    return rows, np.concatenate(scores) if scores else np.zeros((0, len(candidates)))


@torch.no_grad()
def _embedding_scores(model, processor, dataset: Dataset, candidates: list[str], label_templates: list[str],
                      reader: ClipReader, rows: list[int] | None = None) -> tuple[list[int], np.ndarray]:
    """The rows read (of `rows`, default all) and their `(rows, candidates)` similarities to the candidates' text
    embeddings averaged over `label_templates`."""
    text_embeds = template_text_embeddings(model, processor, candidates, label_templates)
    dataset, read, scores = undecoded_audio(dataset, reader.audio_column), rows, []
    rows = []
    for batch_rows, audio_embeds in embedded_batches(model, dataset, reader, read):
        scores.append(model.audio_text_similarity(audio_embeds, text_embeds).float().cpu().numpy())
        rows += batch_rows
    return rows, np.concatenate(scores) if scores else np.zeros((0, len(candidates)))


@torch.no_grad()
def vocabulary_ranking_scores(model, processor, dataset: Dataset, candidates: list[str], prompt: str,
                              batch_size: int = 8, progress: bool = True, audio_column: str = "audio",
                              long_audio_policy: str | None = None, length_normalize: bool = False,
                              calibrate: bool = False) -> np.ndarray:
    """
    `(clips, candidates)` log-likelihoods of each candidate under the prompt (section 4.1), one row per clip of
    `dataset` (with the window policy, the mean of its windows' scores): summed over the candidate's tokens as in the
    paper, or with `length_normalize=True` their mean per token (the end-of-sequence token included), as the sum
    favours short labels. With `calibrate=True` each candidate's score for a content-free input (a silent clip,
    `pipelines_mint.content_free_scores`) is subtracted, so that the LLM's prior for a label does not decide the
    ranking. A clip the processor refuses raises a `ValueError` naming its row and file.
    """
    candidates = check_candidate_labels(candidates, "candidates")
    check_columns(dataset, {"audio": audio_column})
    prompt = check_prompt(prompt, use="the candidates")
    reader = ClipReader(processor, audio_column, batch_size, progress, long_audio_policy)
    return _ranking_scores(model, processor, dataset, candidates, prompt, reader, length_normalize,
                           calibrate=calibrate)[1]


@torch.no_grad()
def embedding_scores(model, processor, dataset: Dataset, candidates: list[str],
                     label_template: str | Sequence[str] = HYPOTHESIS_TEMPLATE_SET, batch_size: int = 8,
                     progress: bool = True, audio_column: str = "audio",
                     long_audio_policy: str | None = None) -> np.ndarray:
    """
    `(clips, candidates)` stage-1 similarities of each clip to the candidates' text embeddings (zero-shot by
    embeddings, Table 6), one row per clip of `dataset`: a label's embedding is that of `label_template` with the
    label, or, for a list of templates (default `pipelines_mint.HYPOTHESIS_TEMPLATE_SET`, led by the paper's "This is
    a sound of {}."), the re-normalised mean of the templates' normalised embeddings. With the window policy a clip's
    embedding is the re-normalised mean of its windows' normalised embeddings. A clip the processor refuses raises a
    `ValueError` naming its row and file.
    """
    candidates = check_candidate_labels(candidates, "candidates")
    templates = check_label_templates(label_template, "label_template")
    check_columns(dataset, {"audio": audio_column})
    reader = ClipReader(processor, audio_column, batch_size, progress, long_audio_policy)
    return _embedding_scores(model, processor, dataset, candidates, templates, reader)[1]


def single_label_accuracy(scores: np.ndarray, targets: list[str], candidates: list[str]) -> float:
    """The fraction of clips whose best-scored candidate (`scores` `(clips, candidates)`) is their target label."""
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
                            label_template: str | Sequence[str] | None = None, long_audio_policy: str | None = None,
                            skip_invalid: bool = False, length_normalize: bool = False,
                            calibrate: bool = False, return_scores: bool = False) -> dict[str, Any]:
    """
    Classification of every clip: by vocabulary ranking under the LLM (`mode="llm"`, stage 2, Table 2: the candidates
    scored after `prompt` or the prompt of the Table-1 `template`, by their summed log-likelihood as in the paper, or
    by their mean log-likelihood per token with `length_normalize=True`; with `calibrate=True`, less their scores for
    a content-free input) or by stage-1 embedding similarity to label prompts (`mode="embedding"`, Table 6:
    `label_template` with each label, or a list of templates whose normalised text embeddings are averaged, default
    `pipelines_mint.HYPOTHESIS_TEMPLATE_SET`). Single-label: accuracy; multi-label: macro PR-AUC and ROC-AUC with
    missing annotations (`known_column`, multi-label only) ignored. With the window policy a clip scores the mean of
    its windows' scores (vocabulary ranking) or its pooled embedding.

    Candidates (given, or the dataset's labels) are refused when one is empty, whitespace only or repeated. A row
    without a label (a `ClassLabel` of -1, datasets' "no label") is refused, naming it, or with `skip_invalid` skipped
    and counted, as are the clips the processor refuses.

    Returns the metrics, the settings used (`label_template` as given: one template or the list), `predictions` (one
    per evaluated clip, in dataset order) and what happened to the clips (`num_cropped`, and the `skipped` ones with
    `skip_invalid`, which are not evaluated); with `return_scores=True` also `scores`, the `(clips, candidates)` float32
    array the predictions are the argmax of (rows as `predictions`), and `candidates`, its columns.
    """
    for name, flag in (("multi_label", multi_label), ("skip_invalid", skip_invalid),
                       ("length_normalize", length_normalize), ("calibrate", calibrate),
                       ("return_scores", return_scores)):
        check_flag(name, flag)
    check_columns(dataset, {"audio": audio_column, "label": label_column, "known labels": known_column})
    if known_column is not None and not multi_label:
        raise ValueError(f"known_column {known_column!r} names the labels annotated for each clip of a multi-label "
                         "dataset; pass multi_label=True (mint eval --multi-label) or leave it out.")
    dataset = undecoded_audio(dataset, audio_column)
    candidates = candidate_labels(dataset, label_column) if candidates is None else candidates
    candidates = check_candidate_labels(candidates, "candidates")
    if mode == "llm":
        if label_template is not None:
            raise ValueError("label_template is for mode='embedding'; vocabulary ranking scores the labels themselves "
                             "after the prompt.")
        if prompt is None and template is None:
            raise ValueError("Vocabulary ranking needs a prompt or a Table-1 template name.")
        prompt = check_prompt(get_template(template).prompt if prompt is None else prompt,
                              use="the candidates")
        settings = {"prompt": prompt, "length_normalize": length_normalize, "calibrate": calibrate}
    elif mode == "embedding":
        if prompt is not None or template is not None:
            raise ValueError("mode='embedding' scores label prompts made with label_template (e.g. "
                             f"{HYPOTHESIS_TEMPLATE_SET[0]!r}); prompt and template are for mode='llm'.")
        for name, value in (("length_normalize", length_normalize), ("calibrate", calibrate)):
            if value:
                raise ValueError(f"{name} is for mode='llm': it changes how a candidate's log-likelihood is scored; "
                                 "mode='embedding' scores similarities.")
        label_template = HYPOTHESIS_TEMPLATE_SET if label_template is None else label_template
        templates = check_label_templates(label_template, "label_template")
        settings = {"label_template": label_template if isinstance(label_template, str) else templates}
    else:
        raise ValueError(f"mode must be 'llm' or 'embedding', got {mode!r}.")
    targets = classification_targets(dataset, label_column, candidates, multi_label)
    reader = ClipReader(processor, audio_column, batch_size, progress, long_audio_policy, skip_invalid)
    labelled = labelled_rows(dataset, label_column, targets, reader)
    if mode == "llm":
        rows, scores = _ranking_scores(model, processor, dataset, candidates, prompt, reader, length_normalize,
                                       labelled, calibrate)
    else:
        rows, scores = _embedding_scores(model, processor, dataset, candidates, templates, reader, labelled)
    reader.check_some_evaluated(rows)
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
    if return_scores:
        result.update(scores=scores.astype(np.float32), candidates=list(candidates))
    return result


__all__ = ["candidate_labels", "classification_targets", "embedding_scores", "evaluate_classification",
           "labelled_rows", "multi_label_auc", "single_label_accuracy", "vocabulary_ranking_scores"]
