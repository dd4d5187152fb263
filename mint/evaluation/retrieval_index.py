# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""Text-to-audio retrieval as an API: embed a collection of clips once with a stage-1 MINT, then query it with text.

    index = MintRetrievalIndex(model, processor)          # model: MintForPreTraining (stage 1)
    index.add(["a.wav", "b.wav"], ids=["a", "b"])          # or arrays with sampling_rate=, or a Dataset
    index.search("a dog barks", top_k=5)                   # [{"id": "a", "index": 0, "score": 0.41}, ...]
    index.save("my-index"); MintRetrievalIndex.load("my-index", model, processor)

Scores are the ALC similarity of section 2.2: the highest cosine similarity between any query embedding of a clip
and the text embedding (the ranking of Table 3). With the processor's `long_audio_policy="window"`, a clip's
embedding is the re-normalised mean of its windows' normalised embeddings: one entry per clip.
"""

import json
import os
from collections.abc import Sequence
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from audio_io_mint import audio_path, clip_error_reason
from mint.data.examples import undecoded_audio
from mint.evaluation.embeddings import clip_embeddings, text_embeddings
from pipelines_mint import check_model_kind
from processing_mint import is_blank_text


INDEX_EMBEDDINGS = "audio_embeddings.safetensors"
INDEX_METADATA = "index.json"


class MintRetrievalIndex:
    """
    A collection of clip embeddings `(num_clips, num_query_tokens, audio_text_hidden_size)` from a stage-1 MINT, with
    an id per clip, searchable by text.
    """

    def __init__(self, model, processor):
        check_model_kind(model, "embedding", "The retrieval index (stage-1 embeddings)")
        self.model = model.eval()
        self.processor = processor
        self.embeddings = torch.empty(0, model.config.num_query_tokens, model.config.audio_text_hidden_size)
        self.ids: list[Any] = []

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def _device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.no_grad()
    def add(self, clips, ids: Sequence[Any] | None = None, batch_size: int = 16, sampling_rate: int | None = None,
            progress: bool = True) -> "MintRetrievalIndex":
        """
        Embeds `clips` (a list of paths, arrays with `sampling_rate`, `datasets` Audio dicts, or a `Dataset` with an
        `audio` column) and appends them, one entry per clip; `ids` default to their positions in the index. A clip the
        processor refuses raises a `ValueError` naming its position in `clips`, its id and its file; so do a number of
        ids other than the number of clips, and an id given twice or already in the index.
        """
        if hasattr(clips, "column_names"):  # a datasets Dataset
            if "audio" not in clips.column_names:
                raise ValueError(f"The dataset has no 'audio' column; its columns are {clips.column_names}.")
            clips = undecoded_audio(clips, "audio")["audio"]
        clips = list(clips)
        if not clips:
            raise ValueError("Got no clips to add; expected at least one.")
        ids = list(range(len(self), len(self) + len(clips))) if ids is None else list(ids)
        if len(ids) != len(clips):
            raise ValueError(f"Got {len(clips)} clips but {len(ids)} ids; pass one id per clip.")
        _check_unique_ids(self.ids + ids, "the index's ids with those added")
        embedded = []
        for start in tqdm(range(0, len(clips), batch_size), desc="Indexing audio", disable=not progress,
                          unit="batch"):
            batch = clips[start : start + batch_size]
            inputs = self._inputs(batch, ids[start : start + batch_size], start, sampling_rate)
            clip_index = inputs.pop("clip_index", torch.arange(len(batch))).long().to(self._device)
            audio = {k: v.to(self._device) for k, v in inputs.items()}
            embedded.append(clip_embeddings(self.model, audio, clip_index, len(batch)).float().cpu())
        self.embeddings = torch.cat([self.embeddings, *embedded])
        self.ids.extend(ids)
        return self

    def _inputs(self, clips: list, ids: list, start: int, sampling_rate: int | None) -> dict[str, torch.Tensor]:
        """The processor's inputs for `clips`; a clip it refuses is named by its position in `add`, id and file."""
        try:
            return dict(self.processor(audio=clips, sampling_rate=sampling_rate))
        except (ValueError, TypeError):
            for offset, (clip, clip_id) in enumerate(zip(clips, ids)):
                try:
                    self.processor.load_audio([clip], sampling_rate)
                except (ValueError, TypeError) as error:
                    path = audio_path(clip)
                    raise ValueError(f"Clip {start + offset} (id {clip_id!r}" + (f", file {path!r}" if path else "")
                                     + f"): {clip_error_reason(error)}") from error
            raise

    @torch.no_grad()
    def scores(self, queries: str | Sequence[str]) -> torch.Tensor:
        """`(num_queries, num_clips)` similarities of each text query to every clip. An empty list of queries, a query
        that is not a string, and a blank one (empty, whitespace only) are refused with their positions."""
        if not len(self):
            raise ValueError("The index is empty: add clips before searching it.")
        texts = [queries] if isinstance(queries, str) else list(queries)
        if not texts:
            raise ValueError("queries is empty; expected a text query or a list of them.")
        not_text = [i for i, query in enumerate(texts) if not isinstance(query, str)]
        if not_text:
            raise TypeError(f"The queries at positions {not_text[:10]} are not strings; expected text to search for.")
        blank = [i for i, query in enumerate(texts) if is_blank_text(query)]
        if blank:
            raise ValueError(f"The queries at positions {blank[:10]} are empty or whitespace only; expected text to "
                             "search for (a blank query would rank the clips by nothing).")
        text = text_embeddings(self.model, self.processor, texts)
        return self.model.audio_text_similarity(self.embeddings.to(text), text).t().float().cpu()

    def search(self, queries: str | Sequence[str], top_k: int = 10) -> list[dict] | list[list[dict]]:
        """
        The `top_k` clips for a text query, best first, as `{"id", "index", "score"}`; a list of such lists for a
        list of queries.
        """
        if top_k < 1:
            raise ValueError(f"top_k must be at least 1, got {top_k}.")
        scores = self.scores(queries)
        values, indices = scores.topk(min(top_k, len(self)), dim=1)
        results = [[{"id": self.ids[i], "index": i, "score": float(v)} for v, i in zip(row_v.tolist(), row_i.tolist())]
                   for row_v, row_i in zip(values, indices)]
        return results[0] if isinstance(queries, str) else results

    def save(self, path: str | os.PathLike) -> None:
        """Writes the embeddings (safetensors) and the ids (JSON) to the folder `path`."""
        os.makedirs(path, exist_ok=True)
        save_file({"embeddings": self.embeddings.contiguous()}, os.path.join(path, INDEX_EMBEDDINGS))
        with open(os.path.join(path, INDEX_METADATA), "w") as f:
            json.dump({"ids": self.ids, "num_query_tokens": self.model.config.num_query_tokens,
                       "audio_text_hidden_size": self.model.config.audio_text_hidden_size}, f)

    @classmethod
    def load(cls, path: str | os.PathLike, model, processor) -> "MintRetrievalIndex":
        """Reads an index written by [`save`]; `model` must be the stage-1 model that embedded it. An index whose ids
        do not match its embeddings one to one (another count, a repeated id) is refused as damaged."""
        files = [os.path.join(path, name) for name in (INDEX_EMBEDDINGS, INDEX_METADATA)]
        missing = [f for f in files if not os.path.isfile(f)]
        if missing:
            raise ValueError(f"{os.fspath(path)!r} is not a MINT retrieval index: {missing} missing.")
        index = cls(model, processor)
        with open(files[1]) as f:
            metadata = json.load(f)
        embeddings = load_file(files[0])["embeddings"]
        ids = metadata.get("ids") if isinstance(metadata, dict) else None
        if not isinstance(ids, list) or len(ids) != embeddings.shape[0]:
            found = f"{len(ids)} ids" if isinstance(ids, list) else "no list of ids"
            raise ValueError(f"{files[1]!r} holds {found} but {files[0]!r} holds {embeddings.shape[0]} clip "
                             "embeddings: the index is damaged (one id per embedding expected); rebuild it.")
        _check_unique_ids(ids, repr(files[1]))
        if tuple(embeddings.shape[1:]) != tuple(index.embeddings.shape[1:]):
            raise ValueError(f"The index holds embeddings of shape {tuple(embeddings.shape[1:])} per clip, but this "
                             f"model makes {tuple(index.embeddings.shape[1:])}: load it with the model that built it.")
        index.embeddings, index.ids = embeddings, ids
        return index


def _check_unique_ids(ids: list, where: str) -> None:
    """Refuses ids that appear more than once in `ids` (a search names clips by their ids), with their positions."""
    positions: dict[str, list[int]] = {}
    for position, clip_id in enumerate(ids):
        positions.setdefault(json.dumps(clip_id, sort_keys=True, default=repr), []).append(position)
    repeated = [f"{key} at positions {found}" for key, found in positions.items() if len(found) > 1]
    if repeated:
        raise ValueError(f"Repeated clip ids in {where}: {'; '.join(repeated[:5])}; each clip needs its own id.")


__all__ = ["MintRetrievalIndex"]
