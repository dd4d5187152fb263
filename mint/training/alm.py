# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""Audio-language matching (ALM, section 2.2) in training: its schedule over a run ([`alm_phase_at`],
[`AlmScheduleCallback`]) and its accuracy on held-out balanced pairs ([`held_out_pairs`], [`alm_pair_accuracy`]).

On small data ALM's loss can sit at a constant predictor's (salesforce/BLIP#200): the schedule lets ALC (and ATG)
shape the embedding space first, then trains ALM on easy (random) negatives before hard ones; the held-out pair
accuracy says whether it learns (chance is 0.5).
"""

import dataclasses
import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from transformers import TrainerCallback

from audio_encoder_mint import MintAudioKwargs
from mint.data.collator import MintDataCollator, group_id
from mint.data.examples import check_positive_int


def alm_phase_at(progress: float, alm_start: float = 0.0, alm_hard_start: float | None = None) -> str:
    """
    ALM's phase at `progress` (the fraction of the run's optimizer steps done, 0 to 1): `"off"` before `alm_start`,
    `"random"` (negatives drawn at random from other groups) until `alm_hard_start` (unset: `alm_start`), then
    `"hard"` (mined from the ALC similarities). These are `MintForPreTraining.ALM_PHASES`.
    """
    hard_start = alm_start if alm_hard_start is None else alm_hard_start
    if progress < alm_start:
        return "off"
    return "random" if progress < hard_start else "hard"


class AlmScheduleCallback(TrainerCallback):
    """
    Sets `MintForPreTraining.alm_phase` before each optimizer step from the run's progress ([`alm_phase_at`] of
    `global_step / max_steps`). A resumed run takes up the phase of its step.
    """

    def __init__(self, alm_start: float = 0.0, alm_hard_start: float | None = None):
        self.alm_start, self.alm_hard_start = alm_start, alm_hard_start

    def on_step_begin(self, args, state, control, model=None, **kwargs):
        model = model.get_base_model() if hasattr(model, "get_base_model") else model
        model.alm_phase = alm_phase_at(state.global_step / max(state.max_steps, 1), self.alm_start,
                                       self.alm_hard_start)


def held_out_pairs(groups: list[Any], seed: int = 0) -> tuple[list[tuple[int, int, int]], int]:
    """
    Balanced ALM pairs over rows of the given `groups` (one value per row: a group id, or the caption where the data
    has no groups): each row with its own caption (label 1) and with the caption of a row of another group drawn with
    `seed` (label 0). Rows whose group holds every row are left out.

    Returns:
        The pairs `(audio row, caption row, label)`, two per kept row, and how many rows were left out.
    """
    keys = np.array([group_id(g) for g in groups], dtype=np.int64)
    rng = np.random.default_rng(seed)
    pairs, left_out = [], 0
    for row, key in enumerate(keys):
        others = np.flatnonzero(keys != key)
        if not len(others):
            left_out += 1
            continue
        pairs += [(row, row, 1), (row, int(rng.choice(others)), 0)]
    return pairs, left_out


@torch.no_grad()
def alm_pair_accuracy(model: torch.nn.Module, examples: Any, collator: MintDataCollator, seed: int = 0,
                      batch_size: int = 16) -> dict[str, float]:
    """
    ALM's accuracy on balanced held-out pairs ([`held_out_pairs`]): each clip with its caption and with another
    group's caption, 50/50, so that chance is 0.5 whatever the classes. The groups are `collator.group_column`'s
    values, else the captions. The model runs in eval mode (no augmentation, no dropout) and is put back as it was.

    Args:
        model: a `MintForPreTraining`.
        examples: stage-1 examples (a `datasets.Dataset` or a list of dicts with `caption` and the audio, raw or
            cached), as the training collator takes them.
        collator: the stage-1 [`MintDataCollator`] of the run.
        seed: which other-group caption each clip is paired with (the same pairs at every evaluation).

    Returns:
        `{"alm_pair_accuracy", "alm_ranking_accuracy", "alm_loss", "alm_pairs", "alm_rows_left_out"}`: the share of
        pairs whose matching probability falls on the right side of 0.5; the share of clips whose own caption scores
        a higher matching probability than the other group's (ties count half; chance 0.5), which does not depend on
        where the head's threshold sits (stage 1 trains it on one positive to two negatives, so a head that ranks well
        can still call most pairs unmatched); the pairs' mean two-class cross-entropy, the number of pairs and of rows
        without a pair.
    """
    check_positive_int("batch_size", batch_size, "pairs per forward pass")
    if len(examples) == 0:
        raise ValueError("The held-out ALM set is empty; hold out at least two examples of different groups.")
    captions = list(examples["caption"]) if hasattr(examples, "column_names") else [e["caption"] for e in examples]
    column = collator.group_column
    if column is None:
        groups = captions
    elif hasattr(examples, "column_names"):
        groups = list(examples[column])
    else:
        groups = [e[column] for e in examples]
    pairs, left_out = held_out_pairs(groups, seed)
    if not pairs:
        raise ValueError(f"The held-out ALM set has {len(captions)} rows of a single group: no pair can be "
                         "unmatched; hold out examples of at least two groups.")
    plain = dataclasses.replace(collator, group_column=None)
    audio_keys = MintAudioKwargs.__optional_keys__
    was_training = model.training
    model.eval()
    correct, loss, margins = 0, 0.0, []
    try:
        for start in range(0, len(pairs), batch_size):
            chunk = pairs[start : start + batch_size]
            try:
                batch = plain([{**examples[audio_row], "caption": captions[text_row]}
                               for audio_row, text_row, _ in chunk]).to(model.device)
                hidden, mask = model.encode_audio(**{k: v for k, v in batch.items() if k in audio_keys})
            except (ValueError, TypeError) as error:  # the collator and the encoder name batch items, not rows
                items = ", ".join(f"item {i} = row {audio_row}" for i, (audio_row, *_) in enumerate(chunk))
                kind = TypeError if isinstance(error, TypeError) else ValueError  # subclasses may take other arguments
                raise kind(f"Scoring a held-out ALM batch failed; its items are rows of the held-out set ({items}; an "
                           f"unmatched pair holds another row's caption): {error}") from error
            logits = model.matching_logits(hidden, mask, batch["qformer_input_ids"], batch["qformer_attention_mask"])
            labels = torch.tensor([label for *_, label in chunk], device=logits.device)
            correct += int((logits.argmax(dim=-1) == labels).sum())
            logits = logits.float()  # margins in float32: a half-precision difference can round two scores into a tie
            margins.append((logits[:, 1] - logits[:, 0]).cpu())
            loss += float(F.cross_entropy(logits, labels, reduction="sum"))
    finally:
        model.train(was_training)
    accuracy, mean_loss = correct / len(pairs), loss / len(pairs)
    if not math.isfinite(mean_loss):
        raise FloatingPointError("The held-out ALM loss is not finite: the model's weights hold NaN or inf values.")
    own, other = torch.cat(margins).view(-1, 2).unbind(dim=1)  # held_out_pairs: each row's (own, other) in turn
    ranking = (int((own > other).sum()) + 0.5 * int((own == other).sum())) / len(own)
    return {"alm_pair_accuracy": accuracy, "alm_ranking_accuracy": ranking, "alm_loss": mean_loss,
            "alm_pairs": len(pairs), "alm_rows_left_out": left_out}


__all__ = ["AlmScheduleCallback", "alm_pair_accuracy", "alm_phase_at", "held_out_pairs"]
