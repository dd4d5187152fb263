# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""
Few-shot classification without training (the paper is silent; Tip-Adapter, Zhang et al. 2022, as Treff-Adapter,
Liang et al. 2023, applies it to audio-language models): a cache whose keys are the stage-1 embeddings of K labelled
support clips per class and whose values are their one-hot labels is added to the zero-shot logits,

    logits = zero_shot + alpha * exp(-beta * (1 - cos(clip, keys))) @ values

It is a result of its own, reported as "few-shot (K per class)", never as zero-shot: it sees labelled clips.
"""

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from datasets import Dataset

from audio_encoder_mint import ENCODER_FEATURES_KEY
from mint.data.examples import check_columns, check_positive_int, undecoded_audio
from mint.data.outputs import few
from mint.evaluation.classification import (candidate_labels, classification_targets, labelled_rows,
                                            single_label_accuracy)
from mint.evaluation.embeddings import embedded_batches
from mint.evaluation.leakage import leakage_report, shared_cached_clips
from mint.evaluation.reading import ClipReader
from pipelines_mint import HYPOTHESIS_TEMPLATE_SET, check_label_templates, template_text_embeddings
from processing_mint import check_candidate_labels


# Tip-Adapter's residual ratio and sharpness on ImageNet (Zhang et al. 2022, section 4.3: alpha 1, beta 5.5).
DEFAULT_ALPHA = 1.0
DEFAULT_BETA = 5.5
# The grid `search=True` tries, Tip-Adapter's search ranges (beta in [0.1, 7], alpha in [0.1, 3]) at a coarser step.
BETA_GRID = tuple(np.round(np.linspace(0.1, 7.0, 24), 3).tolist())
ALPHA_GRID = tuple(np.round(np.linspace(0.1, 3.0, 30), 3).tolist())


def clip_keys(embeddings: torch.Tensor) -> torch.Tensor:
    """
    One unit vector per clip from its normalised query embeddings `(clips, num_query_tokens, dim)`: their
    concatenation over the queries divided by sqrt(num_query_tokens), `(clips, num_query_tokens * dim)`, so that the
    cosine of two clips' keys is the mean over the queries of the two clips' same-query cosines. (MINT, like BLIP-2,
    has no single clip embedding; each learnt query keeps its own aspect of the clip.)
    """
    return F.normalize(embeddings.flatten(1).float(), dim=-1)


def tip_adapter_logits(zero_shot_logits: torch.Tensor, keys: torch.Tensor, support_keys: torch.Tensor,
                       support_values: torch.Tensor, alpha: float = DEFAULT_ALPHA,
                       beta: float = DEFAULT_BETA) -> torch.Tensor:
    """
    Tip-Adapter's logits `(clips, classes)`: `zero_shot_logits` `(clips, classes)` plus `alpha` times the cache's,
    `exp(-beta * (1 - keys @ support_keys.T)) @ support_values`, from the clips' unit `keys` `(clips, dim)`, the
    support clips' unit keys `(support, dim)` and their one-hot labels `support_values` `(support, classes)`.
    """
    affinity = keys.float() @ support_keys.float().T
    return zero_shot_logits.float() + alpha * torch.exp(-beta * (1 - affinity)) @ support_values.float()


def search_alpha_beta(zero_shot_logits: torch.Tensor, support_keys: torch.Tensor, support_values: torch.Tensor,
                      alphas: Sequence[float] = ALPHA_GRID, betas: Sequence[float] = BETA_GRID) -> dict[str, float]:
    """
    Tip-Adapter's alpha and beta chosen on the support set itself by leave-one-out: each support clip is classified
    from its `zero_shot_logits` `(support, classes)` and a cache of the other support clips. The pair with the highest
    accuracy wins; ties go to the higher mean log-probability of the true classes, then to the first in the grids.
    Returns `{"alpha", "beta", "leave_one_out_accuracy"}`.
    """
    targets = support_values.argmax(-1)
    others = 1 - torch.eye(len(support_keys))
    affinity = support_keys.float() @ support_keys.float().T
    best, best_key = None, None
    for beta in betas:
        cache = (torch.exp(-beta * (1 - affinity)) * others) @ support_values.float()
        for alpha in alphas:
            logits = zero_shot_logits.float() + alpha * cache
            accuracy = (logits.argmax(-1) == targets).float().mean().item()
            likelihood = logits.log_softmax(-1).gather(1, targets[:, None]).mean().item()
            if best_key is None or (accuracy, likelihood) > best_key:
                best, best_key = {"alpha": alpha, "beta": beta, "leave_one_out_accuracy": accuracy}, (accuracy,
                                                                                                     likelihood)
    return best


def support_rows(targets: list, candidates: list[str], shots: int, seed: int = 0) -> list[int]:
    """
    `shots` rows per candidate, drawn (seeded) from the rows whose target is that candidate (`targets`, None for a row
    without a label), in row order. A candidate with no row, or with fewer than `shots`, is refused by name.
    """
    check_positive_int("shots", shots, "labelled clips per class")
    by_label = {label: [row for row, target in enumerate(targets) if target == label] for label in candidates}
    missing = [label for label, rows in by_label.items() if not rows]
    if missing:
        raise ValueError(f"The support set has no clip of {few(missing)} ({len(missing)} of {len(candidates)} "
                         "candidates): every candidate needs labelled support clips; add them, or leave those labels "
                         "out of the candidates.")
    short = [f"{label!r} ({len(rows)})" for label, rows in by_label.items() if len(rows) < shots]
    if short:
        raise ValueError(f"shots={shots} is more than the support set holds for {', '.join(short[:10])}"
                         f"{' ...' if len(short) > 10 else ''}; use at most {min(map(len, by_label.values()))} shots.")
    generator = np.random.default_rng(seed)
    return sorted(int(row) for rows in by_label.values() for row in generator.choice(rows, shots, replace=False))


@torch.no_grad()
def evaluate_few_shot(model, processor, dataset: Dataset, support: Dataset, shots: int, label_column: str = "label",
                      candidates: list[str] | None = None, label_template: str | Sequence[str] | None = None,
                      alpha: float = DEFAULT_ALPHA, beta: float = DEFAULT_BETA, search: bool = False, seed: int = 0,
                      batch_size: int = 8, progress: bool = True, audio_column: str = "audio",
                      long_audio_policy: str | None = None, skip_invalid: bool = False) -> dict[str, Any]:
    """
    Few-shot classification of every clip of `dataset` by a stage-1 model with a Tip-Adapter cache of `shots`
    labelled clips per candidate drawn (seeded) from `support` (same `label_column` and `audio_column`): the zero-shot
    logits (similarity to the candidates' text embeddings over `label_template`, as
    `evaluate_classification(mode="embedding")`, divided by the model's temperature) plus the cache's
    ([`tip_adapter_logits`], Tip-Adapter's `alpha` and `beta`, or with `search=True` the pair chosen by leave-one-out
    on the support clips, [`search_alpha_beta`]). Single-label only.

    Refused: a support set sharing a clip with `dataset` (by [`leakage_report`]: the result would not be few-shot), a
    support label outside the candidates, a candidate with no support clip or fewer than `shots`, an unusable support
    clip (named by its row of the support set), and whatever `evaluate_classification` refuses. Rows of `dataset`
    without a label are refused, or with `skip_invalid` skipped and counted, as are the clips the processor refuses.

    Returns `{"task": "classification", "mode": "few-shot", "shots", "accuracy", "chance", "zero_shot_accuracy"` (the
    same clips without the cache), `"alpha"`, `"beta"`, `"search"`, `"support_rows"`, `"label_template"`,
    `"predictions"`, ...`}` and what happened to the clips.
    """
    check_columns(dataset, {"audio": audio_column, "label": label_column})
    try:
        check_columns(support, {"audio": audio_column, "label": label_column})
    except ValueError as error:
        raise ValueError(f"The support set: {error}") from None
    for name, value in (("alpha", alpha), ("beta", beta)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}.")
    dataset, support = undecoded_audio(dataset, audio_column), undecoded_audio(support, audio_column)
    candidates = candidate_labels(dataset, label_column) if candidates is None else candidates
    candidates = check_candidate_labels(candidates, "candidates")
    label_template = HYPOTHESIS_TEMPLATE_SET if label_template is None else label_template
    templates = check_label_templates(label_template, "label_template")
    targets = classification_targets(dataset, label_column, candidates, multi_label=False)
    try:
        support_targets = classification_targets(support, label_column, candidates, multi_label=False)
    except ValueError as error:
        raise ValueError(f"The support set: {error}") from None
    chosen = support_rows(support_targets, candidates, shots, seed)
    if audio_column == ENCODER_FEATURES_KEY:
        rows = shared_cached_clips(support.select(chosen), dataset, model.config.audio_feature_size, audio_column)
        how = "equal cached features"
        count = len(rows)
    else:
        shared = leakage_report([support.select(chosen)], dataset, audio_column)
        rows, how = [example["eval_index"] for example in shared["examples"]], "same file id or bytes"
        count = shared["num_overlapping"]
    if count:
        raise ValueError(f"{count} clips of the evaluated dataset (rows {rows[:10]}) are also support clips "
                         f"({how}): a few-shot result must not see its test clips; take the support set from another "
                         "split.")

    text_embeds = template_text_embeddings(model, processor, candidates, templates)
    scale = 1 / model.temperature()
    support_reader = ClipReader(processor, audio_column, batch_size, progress, long_audio_policy)
    try:
        support_embeds = torch.cat([embeds for _, embeds in
                                    embedded_batches(model, support, support_reader, chosen, "Embedding support")])
    except ValueError as error:
        raise ValueError(f"The support set: {error}") from None
    support_keys = clip_keys(support_embeds)
    support_values = F.one_hot(torch.tensor([candidates.index(support_targets[row]) for row in chosen]),
                               len(candidates)).to(support_keys)
    if search:
        support_zero_shot = scale * model.audio_text_similarity(support_embeds, text_embeds).float()
        found = search_alpha_beta(support_zero_shot.cpu(), support_keys.cpu(), support_values.cpu())
        alpha, beta = found["alpha"], found["beta"]

    reader = ClipReader(processor, audio_column, batch_size, progress, long_audio_policy, skip_invalid)
    labelled = labelled_rows(dataset, label_column, targets, reader)
    rows, zero_shot, adapted = [], [], []
    for batch_rows, embeds in embedded_batches(model, dataset, reader, labelled):
        logits = scale * model.audio_text_similarity(embeds, text_embeds).float()
        zero_shot.append(logits.cpu().numpy())
        adapted.append(tip_adapter_logits(logits, clip_keys(embeds), support_keys, support_values, alpha,
                                          beta).cpu().numpy())
        rows += batch_rows
    reader.check_some_evaluated(rows)
    targets = [targets[row] for row in rows]
    zero_shot, adapted = np.concatenate(zero_shot), np.concatenate(adapted)
    result: dict[str, Any] = {
        "task": "classification", "mode": "few-shot", "shots": int(shots), "seed": seed,
        "label_template": label_template if isinstance(label_template, str) else templates,
        "alpha": float(alpha), "beta": float(beta), "search": search, "num_clips": len(rows),
        "num_candidates": len(candidates), "num_support": len(chosen), "support_rows": chosen, **reader.record(),
        "accuracy": single_label_accuracy(adapted, targets, candidates),
        "zero_shot_accuracy": single_label_accuracy(zero_shot, targets, candidates), "chance": 1.0 / len(candidates)}
    if search:
        result["leave_one_out_accuracy"] = found["leave_one_out_accuracy"]
    result["predictions"] = [candidates[i] for i in adapted.argmax(axis=1)]
    return result


__all__ = ["ALPHA_GRID", "BETA_GRID", "DEFAULT_ALPHA", "DEFAULT_BETA", "clip_keys", "evaluate_few_shot",
           "search_alpha_beta", "support_rows", "tip_adapter_logits"]
