# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""The three stage-1 objectives of MINT (section 2.2, ablated in Table 5), as functions of tensors:

* audio-language contrastive learning, [`alc_loss`], on the similarity [`audio_text_similarity`];
* audio-language matching, [`alm_loss`], with the hard-negative mining [`mine_hard_negatives`]; the ALM head is a
  callable passed in;
* audio-grounded text generation, [`atg_loss`], on the logits of a Q-Former pass with [`atg_input_ids`] and the
  attention pattern [`atg_attention_mask`].

Each returns a named output and runs without the others; `MintForPreTraining.forward` composes them. Where the paper
is silent they follow LAVIS's BLIP-2 (ITC, ITM, ITG).
"""

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers.utils import ModelOutput, logging


try:
    from .distributed_mint import gather_padded, gather_with_grad
except ImportError:  # installed as top-level modules rather than loaded as Hub remote code
    from distributed_mint import gather_padded, gather_with_grad


logger = logging.get_logger(__name__)


def same_caption(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """`(batch, batch)` boolean: captions i and j have identical tokens (positives of each other)."""
    ids = input_ids.masked_fill(attention_mask == 0, -1)
    return (ids[:, None, :] == ids[None, :, :]).all(dim=-1)


# Audio-language contrastive learning (ALC)


def audio_text_similarity(audio_embeds: torch.Tensor, text_embeds: torch.Tensor) -> torch.Tensor:
    """
    ALC similarity (section 2.2): for each audio `(num_audio, num_queries, dim)` and text `(num_text, dim)`, the
    highest similarity between any query embedding and the text embedding; `(num_audio, num_text)`.
    """
    return torch.einsum("aqd,td->atq", audio_embeds, text_embeds).amax(dim=-1)


@dataclass
class AlcOutput(ModelOutput):
    r"""
    Output of [`alc_loss`].

    loss (`torch.FloatTensor` of shape `()`): the ALC loss.
    logits_per_audio (`torch.FloatTensor` of shape `(batch_size, global_batch_size)`): similarity / temperature of
        this process's audio against the texts of every process.
    logits_per_text (`torch.FloatTensor` of shape `(batch_size, global_batch_size)`): this process's texts against
        the audio of every process.
    """

    loss: torch.FloatTensor | None = None
    logits_per_audio: torch.FloatTensor | None = None
    logits_per_text: torch.FloatTensor | None = None


def alc_loss(audio_embeds: torch.Tensor, text_embeds: torch.Tensor, temperature: torch.Tensor,
             positives: torch.Tensor, label_smoothing: float) -> AlcOutput:
    """
    Audio-language contrastive learning (ALC, section 2.2): the similarities of each clip with the global batch's
    texts and of each text with its clips, divided by the temperature; the loss is the cross-entropy both ways,
    averaged, with label smoothing (LAVIS BLIP-2's ITC). Under DDP the other processes' embeddings are gathered with
    their gradients.

    Args:
        audio_embeds `(batch, num_queries, dim)`, text_embeds `(batch, dim)`: this process's normalised embeddings.
        temperature: the learnt temperature, a scalar tensor.
        positives `(batch, global_batch)`: which texts are positives of each row (identical captions); the target
            spreads over them.
        label_smoothing: of both cross-entropies.
    """
    logits_per_audio = audio_text_similarity(audio_embeds, gather_with_grad(text_embeds)) / temperature
    logits_per_text = audio_text_similarity(gather_with_grad(audio_embeds), text_embeds).t() / temperature
    targets = positives.float() / positives.sum(dim=1, keepdim=True)
    loss = (F.cross_entropy(logits_per_audio, targets, label_smoothing=label_smoothing)
            + F.cross_entropy(logits_per_text, targets, label_smoothing=label_smoothing)) / 2
    return AlcOutput(loss=loss, logits_per_audio=logits_per_audio, logits_per_text=logits_per_text)


# Audio-language matching (ALM)


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
class AlmOutput(ModelOutput):
    r"""
    Output of [`alm_loss`].

    loss (`torch.FloatTensor` of shape `()`): the ALM loss (0 when the batch holds no negative).
    logits (`torch.FloatTensor` of shape `(num_pairs, 2)`): matching logits of the positive pairs followed by the
        pairs (hard negative audio, text) and (audio, hard negative text).
    labels (`torch.LongTensor` of shape `(num_pairs,)`): 1 for matched, 0 for unmatched.
    negative_audio_indices / negative_text_indices (`torch.LongTensor` of shape `(batch_size,)`): the mined negative
        audio (in the global batch) for each text and negative text for each audio; -1 where there is none.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    labels: torch.LongTensor | None = None
    negative_audio_indices: torch.LongTensor | None = None
    negative_text_indices: torch.LongTensor | None = None


def alm_loss(
    matching_logits: Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
    audio_hidden_states: torch.Tensor,
    audio_mask: torch.Tensor,
    all_input_ids: torch.Tensor,
    all_attention_mask: torch.Tensor,
    logits_per_audio: torch.Tensor,
    logits_per_text: torch.Tensor,
    positives: torch.Tensor,
    offset: int = 0,
    hardest: bool = False,
) -> AlmOutput:
    """
    Audio-language matching (ALM, section 2.2): a negative audio for each text and a negative text for each audio,
    mined from the ALC similarities (LAVIS BLIP-2's ITM), then the two-class cross-entropy of the matching head on
    [positive pairs; (negative audio, text); (audio, negative text)].

    Args:
        matching_logits: the ALM head, `(audio_hidden_states, audio_mask, input_ids, attention_mask)` of n pairs ->
            `(n, 2)` logits (`MintForPreTraining.matching_logits`).
        audio_hidden_states `(batch, audio_length, audio_feature_size)`, audio_mask `(batch, audio_length)`: this
            process's audio features, as `MintPreTrainedModel.encode_audio` returns them; gathered (with their
            gradients) from every process here.
        all_input_ids, all_attention_mask `(global_batch, text_length)`: the captions of every process, in the
            Q-Former's vocabulary.
        logits_per_audio, logits_per_text `(batch, global_batch)`: the ALC similarities ([`alc_loss`]).
        positives `(batch, global_batch)`: pairs never mined as negatives (identical captions).
        offset: where this process's rows start in the global batch.
        hardest: take the most similar negative rather than sampling one.
    """
    neg_audio = mine_hard_negatives(logits_per_text, positives, hardest)
    neg_text = mine_hard_negatives(logits_per_audio, positives, hardest)
    all_audio = gather_padded(audio_hidden_states, dim=1, differentiable=True)
    all_audio_mask = gather_padded(audio_mask, dim=1)
    local = torch.arange(neg_audio.shape[0], device=neg_audio.device) + offset
    has_neg_audio, has_neg_text = neg_audio >= 0, neg_text >= 0
    audio_index = torch.cat([local, neg_audio[has_neg_audio], local[has_neg_text]])
    text_index = torch.cat([local, local[has_neg_audio], neg_text[has_neg_text]])
    logits = matching_logits(all_audio[audio_index], all_audio_mask[audio_index], all_input_ids[text_index],
                             all_attention_mask[text_index])
    labels = (torch.arange(len(audio_index), device=logits.device) < len(local)).long()
    if labels.eq(0).any():
        loss = F.cross_entropy(logits.float(), labels)
    else:
        logger.warning_once("No ALM negative in this batch (batch of one or one repeated caption): loss_alm is 0.")
        loss = logits.sum() * 0.0
    return AlmOutput(loss=loss, logits=logits, labels=labels, negative_audio_indices=neg_audio,
                     negative_text_indices=neg_text)


# Audio-grounded text generation (ATG)


def atg_input_ids(input_ids: torch.Tensor, dec_token_id: int) -> torch.Tensor:
    """The caption ids `(batch, text_length)` with `[DEC]` in place of `[CLS]`, the ATG input (BLIP-2's ITG)."""
    decoder_ids = input_ids.clone()
    decoder_ids[:, 0] = dec_token_id
    return decoder_ids


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


@dataclass
class AtgOutput(ModelOutput):
    r"""
    Output of [`atg_loss`].

    loss (`torch.FloatTensor` of shape `()`): the ATG loss.
    logits (`torch.FloatTensor` of shape `(batch_size, text_length, vocab_size)`): next-token logits.
    labels (`torch.LongTensor` of shape `(batch_size, text_length)`): the `[DEC]` caption, -100 on padding; position
        t predicts label t + 1.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    labels: torch.LongTensor | None = None


def atg_loss(logits: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor,
             label_smoothing: float) -> AtgOutput:
    """
    Audio-grounded text generation (ATG, section 2.2): next-token cross-entropy with label smoothing (LAVIS BLIP-2's
    ITG) of the captions under the ATG pattern, where the text attends causally to itself and to all queries.

    Args:
        logits `(batch, text_length, vocab_size)`: the ATG head on the text positions of a Q-Former pass over
            `[queries; input_ids]` with [`atg_attention_mask`].
        input_ids, attention_mask `(batch, text_length)`: that pass's text, [`atg_input_ids`] (`[DEC]` first), and
            its padding mask.
        label_smoothing: of the cross-entropy.
    """
    labels = input_ids.masked_fill(attention_mask == 0, -100)
    loss = F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(), ignore_index=-100,
                           label_smoothing=label_smoothing)
    return AtgOutput(loss=loss, logits=logits, labels=labels)


__all__ = [
    "AlcOutput",
    "AlmOutput",
    "AtgOutput",
    "alc_loss",
    "alm_loss",
    "atg_attention_mask",
    "atg_input_ids",
    "atg_loss",
    "audio_text_similarity",
    "mine_hard_negatives",
    "same_caption",
]
