# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""The data collator: MINT examples (raw audio, or frozen-encoder features from the cache) batched by the processor."""

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from transformers.feature_extraction_utils import BatchFeature

from audio_encoder_mint import ENCODER_FEATURES_KEY
from processing_mint import MintProcessor


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
        cached = ENCODER_FEATURES_KEY in examples[0]
        if self.stage == 1:
            batch = self.processor(audio=None if cached else [e["audio"] for e in examples],
                                   text=[e["caption"] for e in examples], return_llm_inputs=False)
        else:
            batch = self.processor(audio=None if cached else [e["audio"] for e in examples],
                                   text=[e["prompt"] for e in examples], text_target=[e["target"] for e in examples])
        if cached:
            batch[ENCODER_FEATURES_KEY], batch["audio_attention_mask"] = pad_audio_features(
                [e[ENCODER_FEATURES_KEY] for e in examples])
        return batch


__all__ = ["MintDataCollator", "pad_audio_features"]
