# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""Retrieval (Table 3, section 4.1): text-to-audio and audio-to-text with the stage-1 embeddings, R@k and mAP@10, and
BLIP-2's re-ranking of each query's top clips by the ALM matching head."""

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from datasets import Dataset
from tqdm.auto import tqdm

from audio_encoder_mint import ENCODER_FEATURES_KEY
from mint.data.collator import pad_audio_features
from mint.data.examples import check_columns, undecoded_audio
from mint.evaluation.embeddings import clip_embeddings, text_embeddings
from mint.evaluation.reading import ClipReader, captions_per_clip, model_device
from pipelines_mint import check_model_kind
from processing_mint import mean_over_windows


def retrieval_metrics(similarity: np.ndarray, relevant: list[set[int]], ks: Sequence[int] = (1, 5, 10)) -> dict:
    """
    R@k and mAP@10 for queries (rows) over items (columns). R@k: the fraction of queries with at least one relevant
    item in the top k. mAP@10: mean over queries of the average precision of the top 10, divided by
    min(number relevant, 10) (DCASE's definition; with one relevant item it is 1/rank when rank <= 10, else 0).
    A query without a relevant item is refused, named by its row: its recall and average precision are undefined
    (0/0), and counting it as a miss would lower every score without saying why.
    """
    if similarity.ndim != 2 or len(relevant) != similarity.shape[0]:
        raise ValueError(f"similarity must be (queries, items) with one set of relevant items per query; got shape "
                         f"{similarity.shape} and {len(relevant)} sets.")
    empty = [query for query, items in enumerate(relevant) if not items]
    if empty:
        raise ValueError(f"Queries {empty[:10]}{' ...' if len(empty) > 10 else ''} ({len(empty)} in all) have no "
                         "relevant item: their R@k and mAP@10 are undefined; leave them out of the evaluation.")
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
    with that caption; for audio-to-text each clip is a query whose relevant items are its captions. With the window
    policy a clip's embedding is the re-normalised mean of its windows' normalised embeddings. With `rerank_top_k`,
    each text query's top k clips are re-ordered by the ALM matching probability (BLIP-2's re-ranking; with the window
    policy, the mean of the windows' probabilities); the other clips keep their order below them. Skipped clips
    (`skip_invalid`) are left out of the collection, and their captions out of the queries. A model without trained
    embedding heads (with re-ranking, without the ALM head), and a clip without captions, are refused.
    """
    check_columns(dataset, {"audio": audio_column})
    dataset = undecoded_audio(dataset, audio_column)
    captions = captions_per_clip(dataset, caption_columns)
    check_model_kind(model, "matching" if rerank_top_k else "embedding",
                     "Retrieval with ALM re-ranking" if rerank_top_k else "Retrieval")
    uncaptioned = [row for row, texts in enumerate(captions) if not texts]
    if uncaptioned:
        raise ValueError(f"Rows {uncaptioned[:10]} of the dataset have no caption in {list(caption_columns)}: as "
                         "audio-to-text queries they would have nothing to find.")
    reader = ClipReader(processor, audio_column, batch_size, progress, long_audio_policy, skip_invalid)
    rows, audio_embeds, features, feature_clip = [], [], [], []
    for batch in reader.batches(model, dataset, "Embedding audio"):
        hidden, mask = model.get_audio_encoder_features(**batch.inputs)
        audio_embeds.append(clip_embeddings(model, {ENCODER_FEATURES_KEY: hidden, "audio_attention_mask": mask},
                                            batch.clip_index, len(batch.rows)))
        features.extend(h[: int(n)] for h, n in zip(hidden, mask.sum(-1)))
        feature_clip.extend((len(rows) + batch.clip_index).tolist())
        rows += batch.rows
    reader.check_some_evaluated(rows)
    texts, relevant = caption_queries([captions[row] for row in rows])
    text_embeds = text_embeddings(model, processor, texts, batch_size, progress)
    similarity = model.audio_text_similarity(torch.cat(audio_embeds), text_embeds).t().float().cpu().numpy()
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


def _rerank(model, processor, similarity: np.ndarray, texts: list[str], features: list[torch.Tensor],
            feature_clip: list[int], top_k: int, progress: bool) -> np.ndarray:
    """
    `similarity` `(texts, clips)` with each text query's top k clips ordered by their ALM matching probability (the
    mean over a clip's windows), above every other clip. `features` are the encoder features `(frames, dim)` of every
    window, `feature_clip` the clip of each.
    """
    device = model_device(model)
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
            **{ENCODER_FEATURES_KEY: audio.to(device), "audio_attention_mask": mask.to(device)}).float()
        probability = mean_over_windows(probability, clip_index, len(top)).cpu().numpy()
        reranked[row, top] = similarity[row].max() + 1.0 + probability  # above every clip outside the top k
    return reranked


__all__ = ["caption_queries", "evaluate_retrieval", "retrieval_metrics"]
