# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""Stage-1 embeddings for scoring (section 2.2): a clip's embedding pooled from its windows', texts embedded in
batches. Both come from the model's own `get_audio_features` / `get_text_features`."""

from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F
from datasets import Dataset
from tqdm.auto import tqdm

from mint.evaluation.reading import ClipReader, model_device
from processing_mint import mean_over_windows


def pool_window_embeddings(embeddings: torch.Tensor, clip_index: torch.Tensor, num_clips: int) -> torch.Tensor:
    """A clip's embedding from its windows' `(windows, ..., dim)`: the mean of the L2-normalised window embeddings,
    L2-normalised again, `(num_clips, ..., dim)` (a one-window clip keeps its embedding). `clip_index` `(windows,)`
    maps windows to clips, as the processor's `"window"` policy returns it."""
    return F.normalize(mean_over_windows(F.normalize(embeddings, dim=-1), clip_index, num_clips), dim=-1)


def clip_embeddings(model, inputs: dict[str, torch.Tensor], clip_index: torch.Tensor, num_clips: int) -> torch.Tensor:
    """
    The normalised query embeddings of each clip, `(num_clips, num_query_tokens, audio_text_hidden_size)`: the
    model's `get_audio_features` of the audio `inputs` (one row per window; the audio under the encoder's input name,
    or cached `audio_encoder_features`) pooled over each clip's windows by [`pool_window_embeddings`].
    """
    windows = model.get_audio_features(**inputs).pooler_output
    return pool_window_embeddings(windows, clip_index, num_clips)


def embedded_batches(model, dataset: Dataset, reader: ClipReader, rows: Sequence[int] | None = None,
                     description: str = "Embedding audio") -> Iterator[tuple[list[int], torch.Tensor]]:
    """The clips of `dataset` (of `rows`, default all) read by `reader` in batches: each batch's rows and their
    [`clip_embeddings`] `(len(rows), num_query_tokens, audio_text_hidden_size)`."""
    for batch in reader.batches(model, dataset, description, rows=rows):
        yield batch.rows, clip_embeddings(model, batch.inputs, batch.clip_index, len(batch.rows))


def text_embeddings(model, processor, texts: list[str], batch_size: int | None = None,
                    progress: bool = False) -> torch.Tensor:
    """The normalised text embeddings `(len(texts), audio_text_hidden_size)` of the model's `get_text_features`,
    `batch_size` texts at a time (default all at once), on the model's device."""
    device = model_device(model)
    batch_size = batch_size or max(len(texts), 1)
    embeddings = []
    for start in tqdm(range(0, len(texts), batch_size), desc="Embedding text", disable=not progress):
        tokens = processor(text=texts[start : start + batch_size], return_llm_inputs=False)
        embeddings.append(model.get_text_features(tokens["qformer_input_ids"].to(device),
                                                  tokens["qformer_attention_mask"].to(device)).pooler_output)
    return torch.cat(embeddings)


__all__ = ["clip_embeddings", "embedded_batches", "pool_window_embeddings", "text_embeddings"]
