# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""The three stage-1 objectives of MINT (section 2.2, ablated in Table 5), as functions of tensors:

* audio-language contrastive learning, [`alc_loss`], on the similarity [`audio_text_similarity`];
* audio-language matching, [`alm_loss`], with the hard-negative mining [`mine_hard_negatives`] or random negatives
  [`random_negatives`]; the ALM head is a callable passed in;
* audio-grounded text generation, [`atg_loss`], on the logits of a Q-Former pass with [`atg_input_ids`] and the
  attention pattern [`atg_attention_mask`].

Which pairs are positives of one another is [`positive_pairs`]: identical captions, and rows of one group (a label, or
any id the data gives clips that match one another's captions). Each function returns a named output and runs
without the others; `MintForPreTraining.forward` composes them. Where the paper is silent they follow LAVIS's BLIP-2
(ITC, ITM, ITG, and its `image_id` groups). Tensors of the wrong shape or dtype raise a `ValueError` naming them.
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


# How ALM picks its negatives: mined from the ALC similarities (sampled, or the most similar), or uniformly at random.
ALM_NEGATIVE_SAMPLING = ("sample", "hardest", "random")


def _check_tensor(name: str, tensor, dims: int, kinds: str, shape: str) -> None:
    """
    A `ValueError` naming `name` unless it is a tensor of `dims` dimensions whose dtype kind is in `kinds` ("f"
    floating point, "i" integer, "b" boolean); `shape` is the expected shape, as the message gives it.
    """
    if not isinstance(tensor, torch.Tensor):
        raise ValueError(f"{name} must be a tensor of shape {shape}, got {type(tensor).__name__}.")
    kind = "b" if tensor.dtype == torch.bool else "f" if tensor.is_floating_point() else \
        "i" if not tensor.is_complex() else "c"
    if tensor.dim() != dims or kind not in kinds:
        expected = " or ".join({"f": "floating-point", "i": "integer", "b": "boolean"}[k] for k in kinds)
        raise ValueError(f"{name} must be a {expected} tensor of shape {shape}, got {tensor.dtype} of shape "
                         f"{tuple(tensor.shape)}.")


def _check_same(names: str, *sizes: int) -> None:
    if len(set(sizes)) > 1:
        raise ValueError(f"{names} must agree, got {', '.join(map(str, sizes))}.")


def same_caption(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """`(batch, batch)` boolean: captions i and j have identical tokens (positives of each other)."""
    _check_tensor("input_ids", input_ids, 2, "i", "(batch, text_length)")
    _check_tensor("attention_mask", attention_mask, 2, "ib", "(batch, text_length)")
    _check_same("input_ids and attention_mask shapes", tuple(input_ids.shape), tuple(attention_mask.shape))
    ids = input_ids.masked_fill(attention_mask == 0, -1)
    return (ids[:, None, :] == ids[None, :, :]).all(dim=-1)


def positive_pairs(input_ids: torch.Tensor, attention_mask: torch.Tensor,
                   group_ids: torch.Tensor | None = None) -> torch.Tensor:
    """
    `(batch, batch)` boolean: which rows are positives of each other, never mined as ALM negatives and sharing the ALC
    target. Rows of one group (`group_ids` `(batch,)`, LAVIS BLIP-2's `image_id`) are; so are identical captions,
    whatever their groups, since no text model can tell them apart. Without `group_ids`, identical captions alone.
    """
    positives = same_caption(input_ids, attention_mask)
    if group_ids is None:
        return positives
    _check_tensor("group_ids", group_ids, 1, "i", "(batch,)")
    _check_same("group_ids and input_ids rows", group_ids.shape[0], input_ids.shape[0])
    return positives | (group_ids[:, None] == group_ids[None, :])


# Audio-language contrastive learning (ALC)


def audio_text_similarity(audio_embeds: torch.Tensor, text_embeds: torch.Tensor) -> torch.Tensor:
    """
    ALC similarity (section 2.2): for each audio `(num_audio, num_queries, dim)` and text `(num_text, dim)`, the
    highest similarity between any query embedding and the text embedding; `(num_audio, num_text)`.
    """
    _check_tensor("audio_embeds", audio_embeds, 3, "f", "(num_audio, num_queries, dim)")
    _check_tensor("text_embeds", text_embeds, 2, "f", "(num_text, dim)")
    _check_same("The embedding sizes of audio_embeds and text_embeds", audio_embeds.shape[-1], text_embeds.shape[-1])
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
        positives `(batch, global_batch)` boolean: which texts are positives of each row ([`positive_pairs`]); the
            target spreads over them, as LAVIS BLIP-2 does for samples sharing an `image_id`.
        label_smoothing: of both cross-entropies, in [0, 1).
    """
    _check_tensor("positives", positives, 2, "b", "(batch, global_batch)")
    _check_same("The rows of audio_embeds, text_embeds and positives", audio_embeds.shape[0], text_embeds.shape[0],
                positives.shape[0])
    if not 0 <= label_smoothing < 1:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}.")
    if not bool(positives.any(dim=1).all()):
        raise ValueError("Every row of positives needs at least one positive (its own text).")
    logits_per_audio = audio_text_similarity(audio_embeds, gather_with_grad(text_embeds)) / temperature
    logits_per_text = audio_text_similarity(gather_with_grad(audio_embeds), text_embeds).t() / temperature
    if positives.shape != logits_per_audio.shape:
        raise ValueError(f"positives has shape {tuple(positives.shape)}; expected (batch, global_batch) = "
                         f"{tuple(logits_per_audio.shape)}.")
    # LAVIS's `image_id` targets: pos / pos.sum(1), then 0.9 * targets + 0.1 / global_batch. Cross-entropy's
    # label_smoothing on probability targets is exactly that mix: (1 - eps) * targets + eps / num_classes.
    targets = positives.float() / positives.sum(dim=1, keepdim=True)
    loss = (F.cross_entropy(logits_per_audio, targets, label_smoothing=label_smoothing)
            + F.cross_entropy(logits_per_text, targets, label_smoothing=label_smoothing)) / 2
    return AlcOutput(loss=loss, logits_per_audio=logits_per_audio, logits_per_text=logits_per_text)


# Audio-language matching (ALM)


def _check_negative_inputs(logits: torch.Tensor, positives: torch.Tensor) -> None:
    _check_tensor("logits", logits, 2, "f", "(rows, columns)")
    _check_tensor("positives", positives, 2, "b", "(rows, columns)")
    _check_same("logits and positives shapes", tuple(logits.shape), tuple(positives.shape))


@torch.no_grad()
def mine_hard_negatives(logits: torch.Tensor, positives: torch.Tensor, hardest: bool = False) -> torch.Tensor:
    """
    For each row, samples one column with probability softmax(logits) over the columns that are not positives of the
    row (LAVIS BLIP-2's hard-negative mining, which never picks the positive), or takes the most similar one when
    `hardest`. Returns `(rows,)` indices, -1 for a row without any non-positive column.

    Args:
        logits `(rows, columns)`: ALC similarities. positives `(rows, columns)` boolean: pairs never picked.
    """
    _check_negative_inputs(logits, positives)
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


@torch.no_grad()
def random_negatives(positives: torch.Tensor) -> torch.Tensor:
    """
    For each row of `positives` `(rows, columns)` (boolean), one column drawn uniformly among those that are not
    positives of the row: ALM's easy negatives, before hard mining starts. `(rows,)` indices, -1 for a row without
    any non-positive column.
    """
    _check_tensor("positives", positives, 2, "b", "(rows, columns)")
    valid = ~positives.all(dim=1)
    negatives = torch.full((positives.shape[0],), -1, dtype=torch.long, device=positives.device)
    if valid.any():
        negatives[valid] = torch.multinomial((~positives[valid]).float(), 1)[:, 0]
    return negatives


@dataclass
class AlmOutput(ModelOutput):
    r"""
    Output of [`alm_loss`].

    loss (`torch.FloatTensor` of shape `()`): the ALM loss (0 when the batch holds no negative).
    logits (`torch.FloatTensor` of shape `(num_pairs, 2)`): matching logits of the positive pairs followed by the
        pairs (negative audio, text) and (audio, negative text).
    labels (`torch.LongTensor` of shape `(num_pairs,)`): 1 for matched, 0 for unmatched.
    negative_audio_indices / negative_text_indices (`torch.LongTensor` of shape `(alm_rows,)`): the negative audio
        (in the global batch) for each text and negative text for each audio of the rows that feed ALM; -1 where
        there is none.
    rows_without_negative (`torch.LongTensor` of shape `()`): how many of those rows had no negative (every clip of
        the global batch is a positive of theirs): they add their positive pair only.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    labels: torch.LongTensor | None = None
    negative_audio_indices: torch.LongTensor | None = None
    negative_text_indices: torch.LongTensor | None = None
    rows_without_negative: torch.LongTensor | None = None


def alm_loss(
    matching_logits: Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
    audio_hidden_states: torch.Tensor,
    audio_mask: torch.Tensor,
    all_input_ids: torch.Tensor,
    all_attention_mask: torch.Tensor,
    logits_per_audio: torch.Tensor,
    logits_per_text: torch.Tensor,
    positives: torch.Tensor,
    offset: int = 0,
    sampling: str = "sample",
    num_rows: int | None = None,
) -> AlmOutput:
    """
    Audio-language matching (ALM, section 2.2): a negative audio for each text and a negative text for each audio,
    mined from the ALC similarities (LAVIS BLIP-2's ITM) or drawn at random, never from the row's positives, then the
    two-class cross-entropy of the matching head on [positive pairs; (negative audio, text); (audio, negative text)].

    Args:
        matching_logits: the ALM head, `(audio_hidden_states, audio_mask, input_ids, attention_mask, audio_index)`
            of n pairs -> `(n, 2)` logits (`MintForPreTraining.matching_logits`): the k distinct audio rows the pairs
            read, `(k, audio_length, audio_feature_size)` and `(k, audio_length)`, the pairs' texts `(n,
            text_length)`, and `audio_index` `(n,)`, each pair's audio row. The pairs repeat the batch's clips; each
            is passed once, so that the head computes what depends on the audio alone once per clip.
        audio_hidden_states `(batch, audio_length, audio_feature_size)`, audio_mask `(batch, audio_length)`: this
            process's audio features, as `MintPreTrainedModel.encode_audio` returns them; gathered (with their
            gradients) from every process here.
        all_input_ids, all_attention_mask `(global_batch, text_length)`: the captions of every process, in the
            Q-Former's vocabulary.
        logits_per_audio, logits_per_text `(batch, global_batch)`: the ALC similarities ([`alc_loss`]).
        positives `(batch, global_batch)` boolean: pairs never taken as negatives ([`positive_pairs`]).
        offset: where this process's rows start in the global batch.
        sampling: `"sample"` draws each negative with probability softmax(similarity) (BLIP-2), `"hardest"` takes the
            most similar, `"random"` draws uniformly ([`random_negatives`]).
        num_rows: only this process's first `num_rows` rows feed ALM (a cheaper ALM; their negatives still come from
            the whole global batch); all of them when None.
    """
    _check_tensor("audio_hidden_states", audio_hidden_states, 3, "f", "(batch, audio_length, audio_feature_size)")
    _check_tensor("audio_mask", audio_mask, 2, "ib", "(batch, audio_length)")
    _check_tensor("all_input_ids", all_input_ids, 2, "i", "(global_batch, text_length)")
    _check_tensor("all_attention_mask", all_attention_mask, 2, "ib", "(global_batch, text_length)")
    for name, tensor in (("logits_per_audio", logits_per_audio), ("logits_per_text", logits_per_text)):
        _check_tensor(name, tensor, 2, "f", "(batch, global_batch)")
    _check_tensor("positives", positives, 2, "b", "(batch, global_batch)")
    batch = audio_hidden_states.shape[0]
    expected = (batch, all_input_ids.shape[0])
    for name, tensor in (("logits_per_audio", logits_per_audio), ("logits_per_text", logits_per_text),
                         ("positives", positives)):
        if tuple(tensor.shape) != expected:
            raise ValueError(f"{name} has shape {tuple(tensor.shape)}; expected (batch, global_batch) = {expected}.")
    _check_same("The rows of audio_hidden_states and audio_mask", batch, audio_mask.shape[0])
    _check_same("all_input_ids and all_attention_mask shapes", tuple(all_input_ids.shape),
                tuple(all_attention_mask.shape))
    if sampling not in ALM_NEGATIVE_SAMPLING:
        raise ValueError(f"sampling must be one of {list(ALM_NEGATIVE_SAMPLING)}, got {sampling!r}.")
    if num_rows is not None and num_rows < 1:
        raise ValueError(f"num_rows must be at least 1 (or None for the whole batch), got {num_rows}.")
    rows = min(batch, num_rows or batch)
    positives = positives[:rows]
    if sampling == "random":
        neg_audio, neg_text = random_negatives(positives), random_negatives(positives)
    else:
        hardest = sampling == "hardest"
        neg_audio = mine_hard_negatives(logits_per_text[:rows], positives, hardest)
        neg_text = mine_hard_negatives(logits_per_audio[:rows], positives, hardest)
    all_audio = gather_padded(audio_hidden_states, dim=1, differentiable=True)
    all_audio_mask = gather_padded(audio_mask, dim=1)
    local = torch.arange(rows, device=neg_audio.device) + offset
    has_neg_audio, has_neg_text = neg_audio >= 0, neg_text >= 0
    audio_index = torch.cat([local, neg_audio[has_neg_audio], local[has_neg_text]])
    text_index = torch.cat([local, local[has_neg_audio], neg_text[has_neg_text]])
    audio_rows, audio_index = torch.unique(audio_index, return_inverse=True)
    logits = matching_logits(all_audio[audio_rows], all_audio_mask[audio_rows], all_input_ids[text_index],
                             all_attention_mask[text_index], audio_index)
    labels = (torch.arange(len(audio_index), device=logits.device) < len(local)).long()
    if labels.eq(0).any():
        loss = F.cross_entropy(logits.float(), labels)
    else:
        logger.warning_once("No ALM negative in this batch (a batch of one, or of one group or caption): loss_alm "
                            "is 0.")
        loss = logits.sum() * 0.0
    return AlmOutput(loss=loss, logits=logits, labels=labels, negative_audio_indices=neg_audio,
                     negative_text_indices=neg_text, rows_without_negative=(~has_neg_text).sum())


# Audio-grounded text generation (ATG)


def atg_input_ids(input_ids: torch.Tensor, dec_token_id: int) -> torch.Tensor:
    """The caption ids `(batch, text_length)` with `[DEC]` in place of `[CLS]`, the ATG input (BLIP-2's ITG)."""
    _check_tensor("input_ids", input_ids, 2, "i", "(batch, text_length)")
    if input_ids.shape[1] == 0:
        raise ValueError("input_ids has no token; ATG needs each caption's [CLS] at least.")
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
    if isinstance(num_queries, bool) or not isinstance(num_queries, int) or num_queries < 1:
        raise ValueError(f"num_queries must be a positive integer, got {num_queries!r}.")
    _check_tensor("text_attention_mask", text_attention_mask, 2, "ib", "(batch, text_length)")
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
        label_smoothing: of the cross-entropy, in [0, 1).
    """
    _check_tensor("logits", logits, 3, "f", "(batch, text_length, vocab_size)")
    _check_tensor("input_ids", input_ids, 2, "i", "(batch, text_length)")
    _check_tensor("attention_mask", attention_mask, 2, "ib", "(batch, text_length)")
    _check_same("The (batch, text_length) of logits, input_ids and attention_mask", tuple(logits.shape[:2]),
                tuple(input_ids.shape), tuple(attention_mask.shape))
    if not 0 <= label_smoothing < 1:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}.")
    labels = input_ids.masked_fill(attention_mask == 0, -100)
    loss = F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(), ignore_index=-100,
                           label_smoothing=label_smoothing)
    return AtgOutput(loss=loss, logits=logits, labels=labels)


__all__ = [
    "ALM_NEGATIVE_SAMPLING",
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
    "positive_pairs",
    "random_negatives",
    "same_caption",
]
