# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""The three stage-1 objectives of MINT (section 2.2, ablated in Table 5), each a function, with their attention
masks and the hard-negative mining of ALM. `MintForPreTraining.forward` composes them; where the paper is silent they
follow LAVIS's BLIP-2 (ITC, ITM, ITG)."""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers.utils import logging


try:
    from .distributed_mint import gather_padded
except ImportError:  # installed as top-level modules rather than loaded as Hub remote code
    from distributed_mint import gather_padded


logger = logging.get_logger(__name__)


def attention_bias(mask: torch.Tensor, attn_implementation: str, dtype: torch.dtype) -> torch.Tensor:
    """A boolean `(batch, 1, q_len, kv_len)` mask (True = may attend) in the form the attention backend takes."""
    if attn_implementation == "eager":
        return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(~mask, torch.finfo(dtype).min)
    return mask


def atg_attention_mask(num_queries: int, text_attention_mask: torch.Tensor) -> torch.Tensor:
    """
    The ATG self-attention pattern of section 2.2 (BLIP-2's "multimodal causal" mask), as a boolean
    `(batch, 1, num_queries + text_length, num_queries + text_length)` tensor, True where attention is allowed:
    queries attend to all queries and to no text; each text token attends to all queries and to the non-padding text
    tokens up to itself.
    """
    batch, text_length = text_attention_mask.shape
    total = num_queries + text_length
    device = text_attention_mask.device
    mask = torch.zeros(batch, total, total, dtype=torch.bool, device=device)
    mask[:, :, :num_queries] = True
    causal = torch.ones(text_length, text_length, dtype=torch.bool, device=device).tril()
    mask[:, num_queries:, num_queries:] = causal & text_attention_mask.bool()[:, None, :]
    return mask[:, None]


def same_caption(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """`(batch, batch)` boolean: captions i and j have identical tokens."""
    ids = input_ids.masked_fill(attention_mask == 0, -1)
    return (ids[:, None, :] == ids[None, :, :]).all(dim=-1)


@torch.no_grad()
def mine_hard_negatives(logits: torch.Tensor, positives: torch.Tensor, hardest: bool = False) -> torch.Tensor:
    """
    For each row, samples one column with probability softmax(logits) over the columns that are not positives of the
    row (LAVIS BLIP-2's hard-negative mining, which never picks the positive), or takes the most similar one when
    `hardest`. Returns `(rows,)` indices, -1 for a row without any non-positive column.
    """
    if not torch.isfinite(logits).all():
        raise ValueError("ALM hard-negative mining got non-finite ALC similarities: the model's weights or inputs "
                         "hold NaN or infinite values.")
    masked = logits.float().masked_fill(positives, float("-inf"))
    valid = ~positives.all(dim=1)
    negatives = torch.full((logits.shape[0],), -1, dtype=torch.long, device=logits.device)
    if valid.any():
        chosen = masked[valid].argmax(dim=1) if hardest else torch.multinomial(masked[valid].softmax(dim=1), 1)[:, 0]
        negatives[valid] = chosen
    return negatives


@dataclass
class Stage1Batch:
    """What the three stage-1 objectives share: this process's rows and the global batch's (section 2.2)."""

    audio_hidden_states: torch.Tensor  # (batch, audio_length, audio_feature_size), after audio_layernorm
    audio_mask: torch.Tensor
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    all_input_ids: torch.Tensor  # the global batch (every process) from here on
    all_attention_mask: torch.Tensor
    positives: torch.Tensor  # (batch, global_batch): identical captions
    offset: int  # where this process's rows start in the global batch


def alc_loss(logits_per_audio: torch.Tensor, logits_per_text: torch.Tensor, positives: torch.Tensor,
             label_smoothing: float) -> torch.Tensor:
    """
    Audio-language contrastive loss (ALC, section 2.2): cross-entropy of each clip against the global batch's
    texts and of each text against its clips, both ways averaged, with label smoothing (LAVIS BLIP-2's ITC).
    `positives` `(batch, global_batch)` spreads the target over identical captions.
    """
    targets = positives.float() / positives.sum(dim=1, keepdim=True)
    return (F.cross_entropy(logits_per_audio, targets, label_smoothing=label_smoothing)
            + F.cross_entropy(logits_per_text, targets, label_smoothing=label_smoothing)) / 2


def alm_loss(model, batch: Stage1Batch, logits_per_audio: torch.Tensor, logits_per_text: torch.Tensor):
    """
    Audio-language matching (ALM, section 2.2): a negative audio for each text and a negative text for each
    audio, mined from the ALC similarities (LAVIS BLIP-2's ITM), then the two-class head on [positive pairs;
    (negative audio, text); (audio, negative text)] with the bi-directional mask; `model` is the
    `MintForPreTraining` whose ALM head scores the pairs.

    Returns `(loss, logits, labels, negative_audio_indices, negative_text_indices)`.
    """
    hardest = model.config.alm_negative_sampling == "hardest"
    neg_audio = mine_hard_negatives(logits_per_text, batch.positives, hardest)
    neg_text = mine_hard_negatives(logits_per_audio, batch.positives, hardest)
    all_audio = gather_padded(batch.audio_hidden_states, dim=1, differentiable=True)
    all_audio_mask = gather_padded(batch.audio_mask, dim=1)
    local = torch.arange(neg_audio.shape[0], device=neg_audio.device) + batch.offset
    has_neg_audio, has_neg_text = neg_audio >= 0, neg_text >= 0
    audio_index = torch.cat([local, neg_audio[has_neg_audio], local[has_neg_text]])
    text_index = torch.cat([local, local[has_neg_audio], neg_text[has_neg_text]])
    logits = model._alm_logits(all_audio[audio_index], all_audio_mask[audio_index],
                               batch.all_input_ids[text_index], batch.all_attention_mask[text_index])
    labels = (torch.arange(len(audio_index), device=logits.device) < len(local)).long()
    if labels.eq(0).any():
        loss = F.cross_entropy(logits.float(), labels)
    else:
        logger.warning_once("No ALM negative in this batch (batch of one or one repeated caption): loss_alm is 0.")
        loss = logits.sum() * 0.0
    return loss, logits, labels, neg_audio, neg_text


def atg_loss(model, batch: Stage1Batch):
    """
    Audio-grounded text generation (ATG, section 2.2): `[DEC]` replaces `[CLS]`, the text attends causally to
    itself and to all queries, the queries to no text; next-token cross-entropy with label smoothing (LAVIS
    BLIP-2's ITG). `model` is the [`MintForPreTraining`] whose Q-Former and ATG head run.

    Returns `(loss, logits, query_output)`, the query outputs being those of a query-only pass.
    """
    num_queries = model.config.num_query_tokens
    decoder_ids = batch.input_ids.clone()
    decoder_ids[:, 0] = model.config.qformer_config.dec_token_id
    pattern = atg_attention_mask(num_queries, batch.attention_mask)
    output = model.query_forward(batch.audio_hidden_states, batch.audio_mask, decoder_ids, pattern).last_hidden_state
    logits = model.atg_head(output[:, num_queries:])
    labels = decoder_ids.masked_fill(batch.attention_mask == 0, -100)
    loss = F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(), ignore_index=-100,
                           label_smoothing=model.config.label_smoothing)
    return loss, logits, output[:, :num_queries]
