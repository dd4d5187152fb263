# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""Captioning (Table 4): a caption generated per clip with the Table-1 captioning prompt, scored against the
references with the captioning literature's metrics."""

from collections.abc import Sequence
from typing import Any

import torch
from datasets import Dataset

from mint.data.examples import check_columns, undecoded_audio
from mint.evaluation.caption_metrics import compute_caption_metrics
from mint.evaluation.reading import ClipReader, captions_per_clip
from pipelines_mint import check_model_kind, check_prompt


@torch.no_grad()
def evaluate_captioning(model, processor, dataset: Dataset, caption_columns: Sequence[str] = ("caption",),
                        prompt: str = "Generate audio caption:", num_beams: int = 3, max_new_tokens: int = 30,
                        batch_size: int = 8, progress: bool = True, audio_column: str = "audio",
                        allow_empty: bool = False, long_audio_policy: str | None = None,
                        skip_invalid: bool = False) -> dict[str, Any]:
    """
    Generates a caption per clip with the Table-1 captioning prompt and scores it against the references
    ([`compute_caption_metrics`]). With the window policy a clip's caption is its windows' non-empty captions joined
    by a space, in order, without the times the `audio-to-text` pipeline writes before each (the metrics compare
    words). Skipped clips (`skip_invalid`) are left out of the scores. A model without a trained LLM is refused. Returns
    the metrics, the generation settings, `predictions` and what happened to the clips.
    """
    check_columns(dataset, {"audio": audio_column})
    prompt = check_prompt(prompt, use="its caption")
    dataset = undecoded_audio(dataset, audio_column)
    references = captions_per_clip(dataset, caption_columns)
    check_model_kind(model, "llm", "Captioning")
    reader = ClipReader(processor, audio_column, batch_size, progress, long_audio_policy, skip_invalid)
    rows, predictions = [], []
    for batch in reader.batches(model, dataset, "Captioning", prompt):
        ids = model.generate(**batch.inputs, num_beams=num_beams, max_new_tokens=max_new_tokens, do_sample=False)
        windows = [text.strip() for text in processor.batch_decode(ids)]
        clip_index = batch.clip_index.tolist()
        predictions += [" ".join(text for text, clip in zip(windows, clip_index) if clip == position and text)
                        for position in range(len(batch.rows))]
        rows += batch.rows
    reader.check_some_evaluated(rows)
    metrics = compute_caption_metrics(predictions, [references[row] for row in rows], allow_empty=allow_empty)
    return {"task": "captioning", "num_clips": len(predictions), "prompt": prompt,
            "generation": {"num_beams": num_beams, "max_new_tokens": max_new_tokens, "do_sample": False},
            **metrics, **reader.record(), "predictions": predictions}


__all__ = ["evaluate_captioning"]
