# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""BERT -> Bridge-Net's Q-Former: "Q-Former is initialized with pre-trained weights from the BERT-base model, with the
cross-attention layers being randomly initialized" (section 2.1), mapped as LAVIS maps them for BLIP-2."""

import torch
from torch import nn


def bert_to_qformer_state_dict(bert_state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """
    Maps a `BertModel` (or `BertFor*`) state dict onto [`MintQFormerModel`] names, as LAVIS initialises BLIP-2's
    Q-Former from BERT: `attention.self` -> `attention.attention`, `embeddings.LayerNorm` -> `embeddings.layernorm`,
    and the text branch's feed-forward (`intermediate`, `output`) copied to the query branch (`*_query`).

    The Q-Former has no token-type embeddings; BERT adds the type-0 vector to every token, so it is folded into the
    position table (`word + position + type_0` is unchanged) and the Q-Former's text-only output equals BERT's.
    Cross-attention has no BERT counterpart and keeps its fresh initialisation. The MLM head (`cls.predictions.*`),
    when present, is returned under `atg_head.*` for the ATG head of [`MintForPreTraining`].
    """
    state = {k.removeprefix("bert."): v for k, v in bert_state_dict.items()}
    mapped = {}
    for key, value in state.items():
        if key.startswith(("pooler.", "embeddings.token_type", "embeddings.position_ids")):
            continue
        if key.startswith("cls.predictions."):
            if not key.startswith("cls.predictions.decoder."):  # the decoder is tied to the word embeddings
                mapped["atg_head." + key.removeprefix("cls.")] = value
            continue
        new_key = key.replace("embeddings.LayerNorm", "embeddings.layernorm").replace(
            "attention.self.", "attention.attention."
        )
        mapped[new_key] = value
        for branch in ("intermediate.", "output."):
            if f".{branch}" in new_key and ".attention." not in new_key:
                mapped[new_key.replace(f".{branch}", f".{branch[:-1]}_query.")] = value
    if "embeddings.token_type_embeddings.weight" in state:
        type_0 = state["embeddings.token_type_embeddings.weight"][0]
        mapped["embeddings.position_embeddings.weight"] = state["embeddings.position_embeddings.weight"] + type_0
    return mapped


def load_bert_into_qformer(qformer: nn.Module, bert_state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """
    Copies BERT weights into `qformer` (a `MintQFormerModel`, whose vocabulary has one more row, `[DEC]`, which keeps
    its fresh initialisation as in LAVIS); returns the mapped entries that belong elsewhere (the MLM head).
    """
    mapped = bert_to_qformer_state_dict(bert_state_dict)
    own = qformer.state_dict()
    with torch.no_grad():
        for key, value in mapped.items():
            if key not in own:
                continue
            target = own[key]
            if key == "embeddings.word_embeddings.weight":  # BERT's rows; the extra [DEC] row stays as is
                target[: value.shape[0]].copy_(value)
            elif target.shape != value.shape:
                raise ValueError(f"BERT weight {key} has shape {tuple(value.shape)}, Q-Former expects "
                                 f"{tuple(target.shape)}: the BERT and Q-Former configs disagree.")
            else:
                target.copy_(value)
    return {k: v for k, v in mapped.items() if k not in own}
