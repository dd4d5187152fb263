# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""The order of stage-2 training examples that puts each clip's examples together ([`ClipGroupedSampler`]), so that a
batch asks several instructions of fewer clips and the collator's `audio_id_column` passes each clip once."""

from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch.utils.data import Sampler

from mint.data.collator import clip_id


def clip_groups(audio_ids: Sequence[Any]) -> list[list[int]]:
    """The indices of the examples of each clip, clips in the order of their first example, from `audio_ids` (one int
    or string per example naming its clip; [`clip_id`])."""
    clips: dict[int, list[int]] = {}
    for index, value in enumerate(audio_ids):
        clips.setdefault(clip_id(value, f"training example {index}"), []).append(index)
    return list(clips.values())


class ClipGroupedSampler(Sampler[int]):
    """
    Indices of a dataset whose examples name their clip (`audio_ids`, one int or string per example): the clips in a
    random order and each clip's examples in a random order after one another. The order of a pass is drawn from `seed`
    and the epoch ([`set_epoch`], which the `Trainer` calls), as accelerate's `SeedableRandomSampler` draws
    transformers' default order: a run resumed mid-epoch sees the order the uninterrupted run saw. Every example is
    yielded once per pass.
    """

    def __init__(self, audio_ids: Sequence[Any], seed: int = 0):
        self.clips = clip_groups(audio_ids)
        self.num_examples = len(audio_ids)
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_examples

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        order = []
        for clip in torch.randperm(len(self.clips), generator=generator).tolist():
            examples = self.clips[clip]
            order += [examples[i] for i in torch.randperm(len(examples), generator=generator).tolist()]
        return iter(order)


__all__ = ["ClipGroupedSampler", "clip_groups"]
