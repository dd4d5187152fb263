# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""PyTorch MINT: a frozen audio encoder, Bridge-Net (a Q-Former with learnable queries) and a frozen LLM.

Paper: "MINT: Boosting Audio-Language Model via Multi-Target Pre-Training and Instruction Tuning" (Zhao et al.).

* [`MintModel`]: Bridge-Net (section 2.1) with the audio-language embedding space of ALC, for retrieval and
  embedding zero-shot classification (`get_audio_features`, `get_text_features`, `logits_per_audio`).
* [`MintForPreTraining`]: stage 1 (section 2.2). Its `forward` runs the shared query pass and composes the objectives
  of `objectives_mint`: ALC (`alc_loss`), ALM (`alm_loss`, on the head `matching_logits`) and ATG (`atg_loss`).
* [`MintForConditionalGeneration`]: stage 2 (section 2.3), instruction-aware Bridge-Net feeding a frozen LLM: the soft
  prompt (`get_audio_features`, placed by `prepare_inputs_embeds`), generation (`generate`) and classification by
  vocabulary ranking (`score_candidates`, section 4.1).

The audio enters every model as the keyword arguments of `audio_encoder_mint.MintAudioKwargs`.

Where the paper is silent, the code follows BLIP-2 / InstructBLIP as LAVIS and transformers implement them; such
places say so.
"""

import copy
import inspect
import os
from dataclasses import dataclass
from functools import partial
from typing import Unpack

import torch
import torch.nn.functional as F
from torch import nn
from transformers import (
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForMultimodalLM,
    AutoModelForPreTraining,
    AutoModelForSeq2SeqLM,
    AutoModelForSpeechSeq2Seq,
    BertConfig,
    GenerationMixin,
    PreTrainedModel,
)
from transformers import initialization as init
from transformers.modeling_outputs import BaseModelOutputWithPooling
from transformers.models.bert.modeling_bert import BertLMPredictionHead, BertOnlyMLMHead
from transformers.models.instructblip.modeling_instructblip import (
    InstructBlipQFormerEmbeddings,
    InstructBlipQFormerModel,
    InstructBlipQFormerMultiHeadAttention,
)
from transformers.utils import PROCESSOR_NAME, ModelOutput, TransformersKwargs, logging


try:
    from .audio_encoder_mint import (ENCODER_FEATURES_KEY, MintAudioKwargs, build_audio_encoder, run_audio_encoder,
                                     split_audio_kwargs)
    from .checkpoint_mint import STAGE_OF_ARCHITECTURE, BaseFolderLoadingMixin, load_checkpoint_state_dict
    from .configuration_mint import STAGE1_OBJECTIVES, MintConfig, MintQFormerConfig, check_cross_attention_frequency
    from .convert_bert_mint import load_bert_into_qformer
    from .distributed_mint import gather, gather_padded, rank
    from .objectives_mint import (AlmOutput, AtgOutput, alc_loss, alm_loss, atg_attention_mask, atg_input_ids,
                                  atg_loss, audio_text_similarity, positive_pairs)
    # Importing processing_mint registers `MintProcessor` with `AutoProcessor`, so that transformers' pipelines find
    # the processor of a MINT folder once the model classes are importable (processing_mint does not import this).
    from .processing_mint import LLM_TOKENIZER_FOLDER, MintProcessor, save_embedding_processor
except ImportError:  # installed as top-level modules rather than loaded as Hub remote code
    from audio_encoder_mint import (ENCODER_FEATURES_KEY, MintAudioKwargs, build_audio_encoder, run_audio_encoder,
                                    split_audio_kwargs)
    from checkpoint_mint import STAGE_OF_ARCHITECTURE, BaseFolderLoadingMixin, load_checkpoint_state_dict
    from configuration_mint import STAGE1_OBJECTIVES, MintConfig, MintQFormerConfig, check_cross_attention_frequency
    from convert_bert_mint import load_bert_into_qformer
    from distributed_mint import gather, gather_padded, rank
    from objectives_mint import (AlmOutput, AtgOutput, alc_loss, alm_loss, atg_attention_mask, atg_input_ids,
                                 atg_loss, audio_text_similarity, positive_pairs)
    from processing_mint import LLM_TOKENIZER_FOLDER, MintProcessor, save_embedding_processor


logger = logging.get_logger(__name__)

# Generation arguments that count beams or sequences: below 1, transformers divides by zero or returns nothing.
GENERATION_COUNTS = ("num_beams", "num_return_sequences", "num_beam_groups")


def check_generation_counts(generation_kwargs: dict) -> None:
    """Refuses, by name, a count of `GENERATION_COUNTS` in `generation_kwargs` that is not a positive integer."""
    for key in GENERATION_COUNTS:
        value = generation_kwargs.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"{key} must be a positive integer, got {value!r}.")


@dataclass
class MintOutput(ModelOutput):
    r"""
    Output of [`MintModel`]: the ALC similarities of every clip with every text (section 2.2).

    logits_per_audio (`torch.FloatTensor` of shape `(num_audio, num_text)`): similarity / temperature.
    logits_per_text (`torch.FloatTensor` of shape `(num_text, num_audio)`): the transpose.
    audio_embeds (`torch.FloatTensor` of shape `(num_audio, num_query_tokens, audio_text_hidden_size)`): normalised
        query embeddings. text_embeds (`torch.FloatTensor` of shape `(num_text, audio_text_hidden_size)`).
    """

    logits_per_audio: torch.FloatTensor | None = None
    logits_per_text: torch.FloatTensor | None = None
    audio_embeds: torch.FloatTensor | None = None
    text_embeds: torch.FloatTensor | None = None


@dataclass
class MintForPreTrainingOutput(ModelOutput):
    r"""
    Output of [`MintForPreTraining`] (stage 1, section 2.2).

    loss (`torch.FloatTensor` of shape `()`): sum of the enabled objectives' losses.
    loss_alc / loss_alm / loss_atg (`torch.FloatTensor` of shape `()`): each objective's loss (`None` when disabled).
    logits_per_audio (`torch.FloatTensor` of shape `(batch_size, global_batch_size)`): ALC similarities / temperature,
        audio i against text j (max over the queries). logits_per_text: texts against the global batch's audio.
    alm_logits (`torch.FloatTensor` of shape `(num_pairs, 2)`): matching logits of the positive pairs followed by the
        pairs (hard negative audio, text) and (audio, hard negative text).
    alm_labels (`torch.LongTensor` of shape `(num_pairs,)`): 1 for matched, 0 for unmatched.
    alm_negative_audio_indices / alm_negative_text_indices (`torch.LongTensor` of shape `(alm_rows,)`): the
        negative audio for each text and negative text for each audio of the rows that feed ALM (the first
        `config.alm_batch_size`, else all); -1 where the batch holds no valid negative.
    alm_rows_without_negative (`torch.LongTensor` of shape `()`): how many of those rows had no negative (every clip
        of the batch in their group).
    atg_logits (`torch.FloatTensor` of shape `(batch_size, text_length, vocab_size)`): next-token logits of ATG.
    audio_embeds (`torch.FloatTensor` of shape `(batch_size, num_query_tokens, audio_text_hidden_size)`).
    text_embeds (`torch.FloatTensor` of shape `(batch_size, audio_text_hidden_size)`).
    """

    loss: torch.FloatTensor | None = None
    loss_alc: torch.FloatTensor | None = None
    loss_alm: torch.FloatTensor | None = None
    loss_atg: torch.FloatTensor | None = None
    logits_per_audio: torch.FloatTensor | None = None
    logits_per_text: torch.FloatTensor | None = None
    alm_logits: torch.FloatTensor | None = None
    alm_labels: torch.LongTensor | None = None
    alm_negative_audio_indices: torch.LongTensor | None = None
    alm_negative_text_indices: torch.LongTensor | None = None
    alm_rows_without_negative: torch.LongTensor | None = None
    atg_logits: torch.FloatTensor | None = None
    audio_embeds: torch.FloatTensor | None = None
    text_embeds: torch.FloatTensor | None = None


@dataclass
class MintForConditionalGenerationOutput(ModelOutput):
    r"""
    Output of [`MintForConditionalGeneration`] (stage 2, section 2.3).

    loss (`torch.FloatTensor` of shape `()`): LM loss on the target tokens only.
    logits (`torch.FloatTensor`): the LLM's logits (decoder positions for a seq2seq LLM; every input position for a
        decoder-only LLM).
    soft_prompt (`torch.FloatTensor` of shape `(batch_size, num_query_tokens, llm_hidden_size)`): projected queries.
    qformer_outputs / language_model_outputs: the sub-models' outputs.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    soft_prompt: torch.FloatTensor | None = None
    qformer_outputs: ModelOutput | None = None
    language_model_outputs: ModelOutput | None = None


def _check_cross_attention_mask(mask: torch.Tensor, num_audio: int, indexed: bool) -> None:
    """The cross-attention's prepared mask: 4D over the audio rows (`(num_audio or 1, 1, queries or 1, audio_length)`),
    boolean (True = may read) or additive floats; an integer mask would be added to the scores, a 2D one broadcast
    along the wrong axes."""
    if mask.dim() != 4 or not (mask.dtype == torch.bool or mask.is_floating_point()):
        raise ValueError(f"encoder_attention_mask must be a prepared 4D mask (num_audio, 1, queries or 1, "
                         f"audio_length), boolean or additive float, got a {mask.dim()}D {mask.dtype} tensor of shape "
                         f"{tuple(mask.shape)}; the Q-Former prepares it from the audio's 2D padding mask.")
    if mask.shape[0] not in (1, num_audio):
        rows = "audio rows (audio_index reads them)" if indexed else "query rows"
        raise ValueError(f"encoder_attention_mask holds {mask.shape[0]} rows for {num_audio} {rows}: give one row per "
                         "audio row.")


class MintQFormerCrossAttention(InstructBlipQFormerMultiHeadAttention):
    """
    The Q-Former's cross-attention from the queries to the audio: transformers' InstructBLIP attention (the same
    weights and outputs), computed with each head's key and value projections folded into the queries. A head's score
    of frame x is `q . (W_k x + b_k) = (W_k^T q) . x + q . b_k`, and its output `sum_j p_j (W_v x_j + b_v) = W_v (sum_j
    p_j x_j) + (sum_j p_j) b_v`: the few queries are projected into the audio's feature space instead of every audio
    frame into the heads' space, which costs `num_queries * (1 / audio_length + 1 / head_size)` of the projections'
    multiply-adds (the demo's 8 queries over 80 frames: a fifth; 32 over 500: about 0.56). The attention backend
    (`attn_implementation`) sets the self-attention's kernel only; `output_attentions` gives these weights `(batch,
    heads, queries, audio_length)` as the eager kernel does.

    Given `audio_index` `(batch,)`, `encoder_hidden_states` `(num_audio, audio_length, encoder_hidden_size)` holds
    each audio once and query row i reads row `audio_index[i]` (ALM's pairs repeat the batch's clips, section 2.2).
    `encoder_attention_mask` is over the audio rows, `(num_audio, 1, queries or 1, audio_length)`, as transformers
    prepares it from the audio's padding mask (boolean, True where a frame may be read, or additive). Under bf16
    autocast a head's score sums `encoder_hidden_size` rounded products where transformers' sums `head_size`, so its
    attention weights carry a few times transformers' rounding (the demo's training losses agree to the third digit).
    """

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        audio_index: torch.LongTensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if encoder_hidden_states is None:
            raise ValueError("MintQFormerCrossAttention reads the audio: encoder_hidden_states is required.")
        batch, num_queries = hidden_states.shape[:2]
        heads, head_size = self.num_attention_heads, self.attention_head_size
        audio = encoder_hidden_states if audio_index is None else encoder_hidden_states[audio_index]
        mask = encoder_attention_mask
        if mask is not None:
            _check_cross_attention_mask(mask, encoder_hidden_states.shape[0], audio_index is not None)
            if audio_index is not None and mask.shape[0] > 1:
                mask = mask[audio_index]
        query = self.query(hidden_states).view(batch, num_queries, heads, head_size).transpose(1, 2)
        key_weight = self.key.weight.view(heads, head_size, -1)
        audio_queries = torch.einsum("bhqd,hde->bhqe", query, key_weight).reshape(batch, heads * num_queries, -1)
        scores = torch.bmm(audio_queries, audio.transpose(1, 2).to(audio_queries.dtype))
        key_bias = torch.einsum("bhqd,hd->bhq", query, self.key.bias.view(heads, head_size))
        scores = (scores.view(batch, heads, num_queries, -1) + key_bias[..., None]) * self.scaling
        if mask is not None and mask.dtype == torch.bool:
            scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
        elif mask is not None:
            scores = scores + mask
        weights = nn.functional.softmax(scores, dim=-1)
        weights = nn.functional.dropout(weights, p=self.attention_dropout, training=self.training)
        context = torch.bmm(weights.reshape(batch, heads * num_queries, -1).to(audio.dtype), audio)
        context = context.view(batch, heads, num_queries, -1)
        output = torch.einsum("bhqe,hde->bqhd", context, self.value.weight.view(heads, head_size, -1))
        # The value bias enters each output weighted by its attention weights' sum: 1, or other under dropout.
        output = output + weights.sum(-1).transpose(1, 2)[..., None] * self.value.bias.view(heads, head_size)
        return output.reshape(batch, num_queries, -1), weights


class MintQFormerModel(InstructBlipQFormerModel):
    """
    Bridge-Net's Q-Former (section 2.1): transformers' InstructBLIP Q-Former, whose self-attention layers are shared by
    the learnable queries and the text, with separate feed-forward branches for each and cross-attention from the
    queries to the audio features. Inputs are `input_ids` (text, `(batch_size, text_length)`), `query_embeds`
    (`(batch_size, num_query_tokens, hidden_size)`), an `attention_mask` over `[queries; text]` (2D padding mask, or a
    prepared 4D mask for the ATG pattern), and the audio features as `encoder_hidden_states` with their padding mask
    as `encoder_attention_mask`.
    """

    config: MintQFormerConfig
    config_class = MintQFormerConfig

    def __init__(self, config: MintQFormerConfig):
        super().__init__(config)
        for layer in self.encoder.layer:
            if layer.has_cross_attention:
                # The subclass adds no state: re-classing keeps the weights as initialised and draws no random numbers.
                layer.crossattention.attention.__class__ = MintQFormerCrossAttention

    @classmethod
    def from_bert_pretrained(cls, bert_path, encoder_hidden_size: int, **config_overrides) -> "MintQFormerModel":
        """
        Builds a Q-Former with the dimensions of the BERT checkpoint in `bert_path` (a local directory with
        `config.json` and `model.safetensors`) and initialises it from it (see [`bert_to_qformer_state_dict`]).
        The vocabulary grows by one `[DEC]` token, whose embedding is freshly initialised, as LAVIS does.
        """
        config = MintQFormerConfig.from_bert_config(BertConfig.from_pretrained(bert_path), encoder_hidden_size,
                                                    **config_overrides)
        model = cls(config)
        load_bert_into_qformer(model, load_checkpoint_state_dict(bert_path))
        return model


def _check_text_not_empty(attention_mask: torch.Tensor, name: str) -> None:
    empty = (attention_mask.sum(dim=1) == 0).nonzero().flatten().tolist()
    if empty:
        raise ValueError(
            f"{name} of batch item(s) {empty} is all padding: every text needs at least its [CLS] token "
            "(tokenize an empty caption with the processor rather than passing an all-zero mask)."
        )


def _attention_bias(mask: torch.Tensor, attn_implementation: str, dtype: torch.dtype) -> torch.Tensor:
    """A boolean `(batch, 1, q_len, kv_len)` mask (True = may attend) in the form the attention backend takes."""
    if attn_implementation == "eager":
        return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(~mask, torch.finfo(dtype).min)
    return mask


def _check_language_model_kwargs(language_model: nn.Module, kwargs: dict) -> None:
    """
    Refuses keyword arguments the LLM's forward does not name: its own `**kwargs` would drop a misspelt one (say
    `audio_attention_maks`) without a word.
    """
    parameters = inspect.signature(language_model.forward).parameters.values()
    accepted = {p.name for p in parameters if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
    unknown = sorted(set(kwargs) - accepted - set(TransformersKwargs.__annotations__) - {"return_dict"})
    if unknown:
        raise TypeError(f"MintForConditionalGeneration.forward got unexpected keyword argument(s) {unknown}: it takes "
                        f"the audio {sorted(MintAudioKwargs.__optional_keys__)}, its own arguments and those of the "
                        f"language model's forward.")


def _check_batch(name: str, tensor: torch.Tensor | None, batch: int, dims: int | None = None) -> None:
    """A clear error for a tensor whose batch size or number of dimensions differs from the audio's."""
    if tensor is None:
        return
    if dims is not None and tensor.dim() != dims:
        raise ValueError(f"{name} has {tensor.dim()} dimensions (shape {tuple(tensor.shape)}); expected {dims}.")
    if tensor.shape[0] != batch:
        raise ValueError(f"{name} holds {tensor.shape[0]} rows but the audio holds {batch} clips: pass one row per "
                         "clip (the processor builds matching batches).")


def _check_audio_index(audio_index: torch.Tensor, num_audio: int) -> None:
    """A clear error for an `audio_index` that is not a non-empty `(batch,)` int64 or int32 tensor of rows of the
    `num_audio` clips (torch reads a uint8 index as a mask)."""
    if (not isinstance(audio_index, torch.Tensor) or audio_index.dim() != 1
            or audio_index.dtype not in (torch.int64, torch.int32)):
        raise ValueError(f"audio_index must be an integer (batch,) tensor of int64 or int32, got "
                         f"{getattr(audio_index, 'dtype', type(audio_index).__name__)} of shape "
                         f"{tuple(getattr(audio_index, 'shape', ()))}.")
    if not len(audio_index):
        raise ValueError("audio_index is empty: it needs one audio row per example of the batch.")
    if not 0 <= int(audio_index.min()) <= int(audio_index.max()) < num_audio:
        raise ValueError(f"audio_index must index the {num_audio} audio rows (0 to {num_audio - 1}), got values from "
                         f"{int(audio_index.min())} to {int(audio_index.max())}.")


def _check_token_ids(name: str, tensor: torch.Tensor | None, mask: bool = False) -> None:
    """
    A clear error for text ids or a text mask that is not an integer (or, for a mask, boolean) `(batch, length)`
    tensor: what reaches a forward when tensors are passed positionally in the wrong order.
    """
    if tensor is None:
        return
    expected = "an integer or boolean `(batch, text_length)` mask" if mask else "integer `(batch, text_length)` ids"
    if not isinstance(tensor, torch.Tensor):
        raise ValueError(f"{name} must be {expected}, got {type(tensor).__name__}.")
    if tensor.is_floating_point() or tensor.is_complex() or (tensor.dtype == torch.bool and not mask) or \
            tensor.dim() != 2:
        raise ValueError(f"{name} must be {expected} from the processor, got {tensor.dtype} of shape "
                         f"{tuple(tensor.shape)}. Pass the audio by keyword (input_values=..., input_features=... or "
                         f"{ENCODER_FEATURES_KEY}=...) and the text by name.")


def augment_audio_features(
    features: torch.Tensor, mask: torch.Tensor, time_mask: float = 0.0, crop: float = 1.0, noise: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """
    Training augmentation of encoder features (`config.audio_feature_augmentation`), per clip: a random contiguous
    crop of `crop` to all of its real frames, a random span of up to `time_mask` of the kept frames hidden (both
    applied to the frame mask, so the cross-attention ignores those frames, as SpecAugment's time masks hide them),
    and Gaussian noise of `noise` times the clip's feature standard deviation on its real frames. At least one frame
    of each clip stays. The paper does not augment; this is a lever for small training sets.

    Args:
        features `(batch, frames, dim)`, mask `(batch, frames)` (1 on real frames).

    Returns the noisy features and the reduced mask, of the same shapes.
    """
    real = mask.bool()
    lengths = real.sum(dim=1)
    position = real.long().cumsum(dim=1) - 1  # index of each real frame among its clip's real frames
    draw = torch.rand(4, features.shape[0], device=features.device)
    kept = (lengths * (crop + (1 - crop) * draw[0])).ceil().clamp(min=1).minimum(lengths)
    start = ((lengths - kept + 1) * draw[1]).floor().minimum(lengths - kept)
    hidden = (kept * time_mask * draw[2]).floor()
    hidden_start = start + ((kept - hidden + 1) * draw[3]).floor().minimum(kept - hidden)
    position = position.float()
    inside = (position >= start[:, None]) & (position < (start + kept)[:, None])
    masked = (position >= hidden_start[:, None]) & (position < (hidden_start + hidden)[:, None])
    new_mask = real & inside & ~masked
    if noise > 0:
        weight = real[..., None].to(features.dtype)
        count = (lengths * features.shape[-1]).clamp(min=2)[:, None, None]
        mean = (features * weight).sum(dim=(1, 2), keepdim=True) / count
        spread = (((features - mean) ** 2 * weight).sum(dim=(1, 2), keepdim=True) / (count - 1)).sqrt()
        features = features + noise * spread * torch.randn_like(features) * weight
    return features, new_mask.to(mask.dtype)


def _check_audio_mask(mask: torch.Tensor | None, batch: int) -> None:
    """`audio_attention_mask` `(batch, samples | frames)`: one row per clip, none of them all padding."""
    _check_batch("audio_attention_mask", mask, batch, dims=2)
    if mask is None:
        return
    empty = (mask.sum(-1) == 0).nonzero().flatten().tolist()
    if empty:
        raise ValueError(f"audio_attention_mask of batch item(s) {empty} is all zeros: every clip needs at least one "
                         "real sample (1 on real audio, 0 on padding, as the processor returns it).")


def _warn_if_padded_without_mask(audio: torch.Tensor, name: str) -> None:
    """
    Warns once when a batch `(batch, samples)` or `(batch, frames, dim)` given without `audio_attention_mask` looks
    padded (a clip ending in exact zeros, as the processor pads): the padding is then read as audio and changes the
    padded clips' results.
    """
    if audio.shape[0] > 1 and bool((audio[:, -1].reshape(audio.shape[0], -1) == 0).all(-1).any()):
        logger.warning_once(f"The {name} of this batch look padded (clips ending in zeros) but no "
                            "audio_attention_mask was passed: the padding is read as audio. Pass the "
                            "audio_attention_mask the processor returns with them.")


class MintPreTrainedModel(BaseFolderLoadingMixin, PreTrainedModel):
    """
    Shared by every MINT head: the frozen audio encoder (`audio_model`), the trainable LayerNorm on its output
    (`audio_layernorm`, LAVIS BLIP-2's `ln_vision`), the learnable queries (`query_tokens`) and the Q-Former
    (`qformer`) make Bridge-Net (section 2.1). Every head uses these names, so a stage-1 checkpoint loads into stage 2
    without renaming.
    """

    config: MintConfig
    config_class = MintConfig
    base_model_prefix = "mint"
    main_input_name = "input_values"
    input_modalities = ("audio", "text")
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_attention_backend = True
    _no_split_modules = ["InstructBlipQFormerLayer", "InstructBlipQFormerEmbeddings"]
    # Parts that come from pretrained checkpoints of their own, which `config.base_models` can point at.
    _pretrained_components = ("audio_model",)
    # Bridge-Net stays in fp32 when the frozen parts are loaded in bf16/fp16 (InstructBLIP keeps query_tokens too).
    _keep_in_fp32_modules_strict = ["query_tokens", "qformer", "audio_layernorm"]

    def _init_bridge(self, config: MintConfig) -> None:
        self.audio_model = build_audio_encoder(config.audio_config)
        self.audio_layernorm = nn.LayerNorm(config.audio_feature_size)
        self.query_tokens = nn.Parameter(torch.zeros(1, config.num_query_tokens, config.qformer_config.hidden_size))
        check_cross_attention_frequency(config.qformer_config.cross_attention_frequency)  # may be set after validation
        self.qformer = MintQFormerModel._from_config(config.qformer_config)

    def _init_weights(self, module):
        super()._init_weights(module)
        if isinstance(module, MintPreTrainedModel):
            init.normal_(module.query_tokens, mean=0.0, std=self.config.qformer_config.initializer_range)
            if hasattr(module, "temp"):
                init.constant_(module.temp, self.config.temperature_init)
        elif isinstance(module, BertLMPredictionHead):
            init.zeros_(module.bias)
        elif isinstance(module, InstructBlipQFormerEmbeddings):
            init.copy_(module.position_ids, torch.arange(module.position_ids.shape[-1]).expand((1, -1)))

    def init_qformer_from_bert(self, bert_path) -> None:
        """Initialises the Q-Former (and the ATG head, where the checkpoint has an MLM head) from a local BERT."""
        extra = load_bert_into_qformer(self.qformer, load_checkpoint_state_dict(bert_path))
        head = {k.removeprefix("atg_head."): v for k, v in extra.items() if k.startswith("atg_head.")}
        if head and hasattr(self, "atg_head"):
            self.atg_head.load_state_dict(head, strict=False)

    def frozen_module_names(self) -> list[str]:
        """The parts the config keeps frozen (section 2): `audio_model`, and in stage 2 `language_model`."""
        return ["audio_model"] if self.config.freeze_audio_encoder else []

    def _freeze(self) -> None:
        """Freezes the parts the config marks frozen (section 2: frozen audio encoder and LLM)."""
        for name in self.frozen_module_names():
            getattr(self, name).requires_grad_(False).eval()

    def train(self, mode: bool = True):
        """Frozen parts stay in eval mode, so layerdrop, SpecAugment-style time masking and dropout never fire."""
        super().train(mode)
        for name in self.frozen_module_names():
            getattr(self, name).eval()
        return self

    def save_pretrained(self, save_directory, *args, **kwargs):
        # `register_for_auto_class` records one Auto class per model class; write all of MINT's into `auto_map`, so
        # the folder loads with `trust_remote_code=True` through any of them.
        self.config.auto_map = {**(getattr(self.config, "auto_map", None) or {}), **MINT_AUTO_MAP}
        saved = super().save_pretrained(save_directory, *args, **kwargs)
        folder = os.fspath(save_directory)
        # A processor saved into the folder before this stage-1 model has the stage-2 layout (its tokenizer the
        # LLM's); rewrite it in the layout `MintProcessor.save_pretrained` gives a stage-1 folder.
        if (STAGE_OF_ARCHITECTURE[type(self).__name__] == 1 and kwargs.get("is_main_process", True)
                and os.path.isfile(os.path.join(folder, PROCESSOR_NAME))
                and not os.path.isdir(os.path.join(folder, LLM_TOKENIZER_FOLDER))):
            save_embedding_processor(MintProcessor.from_pretrained(folder), folder)
        return saved

    # Bridge-Net (section 2.1)

    def get_audio_encoder_features(self, **audio: Unpack[MintAudioKwargs]) -> tuple[torch.Tensor, torch.Tensor]:
        """
        The frozen encoder's features `(batch, frames, audio_feature_size)` (its hidden states at
        `config.audio_feature_layer`, concatenated if several) and their frame mask `(batch, frames)`: what the
        feature cache stores and `audio_encoder_features` takes back. Given cached `audio_encoder_features`, the
        encoder does not run: they are checked and returned with their mask.

        Args:
            **audio ([`MintAudioKwargs`]): `input_values` `(batch, samples)` (wav2vec2 / data2vec / HuBERT) or
                `input_features` `(batch, n_mels, frames)` (Whisper), the audio under the encoder's own input name
                as the processor returns it, or cached `audio_encoder_features` `(batch, frames,
                audio_feature_size)`; `audio_attention_mask`, 1 on real audio, 0 on padding, `(batch, samples)` or
                `(batch, frames)`.
        """
        unexpected = sorted(audio.keys() - MintAudioKwargs.__optional_keys__)
        if unexpected:
            raise TypeError(f"{type(self).__name__} got unexpected keyword argument(s) {unexpected}; the audio comes "
                            f"as {sorted(MintAudioKwargs.__optional_keys__)}.")
        mask = audio.get("audio_attention_mask")
        cached = audio.get(ENCODER_FEATURES_KEY)
        raw = {name: audio[name] for name in ("input_values", "input_features") if audio.get(name) is not None}
        if cached is not None:
            if raw:
                raise ValueError("Pass the audio once: as input_values / input_features, or as "
                                 f"{ENCODER_FEATURES_KEY}.")
            self._check_encoder_features(cached, mask)
            if mask is None:
                _warn_if_padded_without_mask(cached, ENCODER_FEATURES_KEY)
                mask = torch.ones(cached.shape[:2], dtype=torch.long, device=cached.device)
            return cached, mask
        waveform_or_mels = self._raw_audio(raw)
        if mask is None:
            if "input_values" in raw:  # Whisper's log-mels are padded with the log-mel of silence, not with zeros
                _warn_if_padded_without_mask(waveform_or_mels, "input_values")
            mask = torch.ones(waveform_or_mels.shape[0], waveform_or_mels.shape[-1], dtype=torch.long,
                              device=waveform_or_mels.device)
        _check_audio_mask(mask, waveform_or_mels.shape[0])
        if not torch.isfinite(waveform_or_mels).all():
            bad = (~torch.isfinite(waveform_or_mels)).flatten(1).any(-1).nonzero().flatten().tolist()
            raise ValueError(f"The audio of batch item(s) {bad} contains NaN or infinite values; expected finite "
                             "samples (the processor refuses such clips).")
        trainable = not self.config.freeze_audio_encoder
        with torch.set_grad_enabled(torch.is_grad_enabled() and trainable):
            return run_audio_encoder(self.audio_model, waveform_or_mels, mask, self.config.audio_feature_layers)

    def _raw_audio(self, given: dict[str, torch.Tensor]) -> torch.Tensor:
        """The waveforms or log-mels among `given` (`{"input_values" | "input_features": tensor}`), checked."""
        expected = self.audio_model.main_input_name
        if not given:
            raise ValueError("MINT needs audio: got text alone, which it cannot answer. Pass the clip (the processor's "
                             f"audio=, or an audio item in the chat) so that {expected} reaches the model (or pass "
                             f"cached encoder output as {ENCODER_FEATURES_KEY}).")
        if set(given) != {expected}:
            raise ValueError(f"This MINT's audio encoder ({type(self.audio_model).__name__}) takes its audio as "
                             f"{expected}, as the processor returns it; got {list(given)} (or pass cached encoder "
                             f"output as {ENCODER_FEATURES_KEY}).")
        audio = given[expected]
        if audio.dim() != (2 if expected == "input_values" else 3):
            raise ValueError(f"{expected} has shape {tuple(audio.shape)}; expected (batch, samples) waveforms"
                             if expected == "input_values" else
                             f"{expected} has shape {tuple(audio.shape)}; expected (batch, n_mels, frames) log-mels.")
        return audio

    def _check_encoder_features(self, features: torch.Tensor, mask: torch.Tensor | None) -> None:
        if features.dim() != 3 or features.shape[-1] != self.config.audio_feature_size:
            raise ValueError(
                f"{ENCODER_FEATURES_KEY} have shape {tuple(features.shape)}, but this model reads (batch, frames, "
                f"{self.config.audio_feature_size}) audio encoder features (audio_feature_layer="
                f"{self.config.audio_feature_layer}): rebuild the feature cache with this model."
            )
        _check_audio_mask(mask, features.shape[0])
        if not torch.isfinite(features).all():
            bad = (~torch.isfinite(features)).flatten(1).any(-1).nonzero().flatten().tolist()
            raise ValueError(f"{ENCODER_FEATURES_KEY} of batch item(s) {bad} contain NaN or infinite values.")

    def encode_audio(self, **audio: Unpack[MintAudioKwargs]) -> tuple[torch.Tensor, torch.Tensor]:
        """
        The audio features Bridge-Net's cross-attention reads: the encoder's features
        ([`get_audio_encoder_features`]) after `audio_layernorm`, `(batch, audio_length, audio_feature_size)` in the
        Q-Former's dtype, with their padding mask `(batch, audio_length)`.

        In training (`self.training`), `config.audio_feature_augmentation` augments the features
        ([`augment_audio_features`]); evaluation and inference read them as they are.

        Args:
            **audio ([`MintAudioKwargs`]): `input_values` / `input_features` (under the encoder's input name) or
                cached `audio_encoder_features`, and `audio_attention_mask`.
        """
        hidden, mask = self.get_audio_encoder_features(**audio)
        if self.training and self.config.audio_feature_augmentation:
            hidden, mask = augment_audio_features(hidden, mask, **self.config.audio_feature_augmentation)
        return self.audio_layernorm(hidden.to(self.audio_layernorm.weight.dtype)), mask.long()

    def query_forward(
        self,
        audio_hidden_states: torch.Tensor,
        audio_mask: torch.Tensor,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        audio_index: torch.LongTensor | None = None,
    ) -> BaseModelOutputWithPooling:
        """
        Runs the learnable queries (and optional text) through the Q-Former with cross-attention to the audio
        (section 2.1).

        Args:
            audio_hidden_states `(num_audio, audio_length, audio_feature_size)` and audio_mask `(num_audio,
                audio_length)`: from [`encode_audio`]; one row per query row (`num_audio = batch`) unless
                `audio_index` is given.
            input_ids `(batch, text_length)`: text in the Q-Former's vocabulary (the instruction in stage 2, the
                caption for ALM/ATG in stage 1).
            attention_mask: `(batch, text_length)` text padding mask (queries are always attended), or a boolean
                `(batch, 1, L, L)` pattern over `[queries; text]` with `L = num_query_tokens + text_length`.
            audio_index `(batch,)`, *optional*: the audio row each query row reads ([`MintQFormerCrossAttention`]):
                the same output as passing `audio_hidden_states[audio_index]`, with each clip passed (and its
                padding mask checked) once where rows repeat.

        Returns:
            The Q-Former output; its first `num_query_tokens` positions are the query outputs.
        """
        _check_batch("audio_mask", audio_mask, audio_hidden_states.shape[0])
        audio = {}
        if audio_index is not None:
            _check_audio_index(audio_index, audio_hidden_states.shape[0])
            audio["audio_index"] = audio_index
        batch = audio_hidden_states.shape[0] if audio_index is None else len(audio_index)
        _check_batch("input_ids", input_ids, batch)
        _check_batch("attention_mask", attention_mask, batch)
        queries = self.query_tokens.expand(batch, -1, -1)
        if input_ids is not None and attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if attention_mask is not None and attention_mask.dim() == 2:
            query_mask = torch.ones(batch, queries.shape[1], dtype=attention_mask.dtype, device=attention_mask.device)
            attention_mask = torch.cat([query_mask, attention_mask], dim=1)
        elif attention_mask is not None:
            attention_mask = _attention_bias(
                attention_mask, self.qformer.config._attn_implementation, self.query_tokens.dtype
            )
        return self.qformer(
            input_ids=input_ids,
            attention_mask=attention_mask,
            query_embeds=queries,
            encoder_hidden_states=audio_hidden_states.to(self.query_tokens.dtype),
            encoder_attention_mask=audio_mask,
            **audio,
        )


class MintModel(MintPreTrainedModel):
    """
    Bridge-Net (section 2.1) with the audio-language embedding space that ALC trains (section 2.2): `audio_proj` and
    `text_proj` project the query outputs and the text's `[CLS]` output to `audio_text_hidden_size`, compared with
    the highest query similarity at the learnt temperature `temp`. This is the model a stage-1 checkpoint is for
    retrieval (section 4.1) and embedding zero-shot classification (Table 6); its `forward` gives `logits_per_audio`
    as `ClapModel` does, so transformers' `zero-shot-audio-classification` pipeline runs it.
    """

    # A stage-1 checkpoint loads into this headless model: its ALM and ATG heads are left out (and a stage-2
    # checkpoint's LLM parts, where a subclass refuses the folder for the heads it lacks).
    _keys_to_ignore_on_load_unexpected = [r"^(alm_head|atg_head|language_projection|language_model)\."]

    def __init__(self, config: MintConfig, **kwargs):
        super().__init__(config, **kwargs)
        self._init_bridge(config)
        self._init_embedding_heads(config)
        self.post_init()
        self._freeze()

    @classmethod
    def _class_for_architecture(cls, architecture: str | None) -> type:
        """
        `MintModel.from_pretrained` of a folder saved from `MintForConditionalGeneration` builds that class.
        transformers' `AutoModel` maps a config type to one class, and `MintConfig` to this headless one, so
        `AutoModel.from_pretrained(folder)` (the usual way to load a model, and the way a folder's `auto_map` loads
        it where only transformers is installed) calls this method for every MINT folder. A stage-2 folder stores no
        ALC embedding heads (`audio_proj`, `text_proj`, `temp`): built as `MintModel` it would hold randomly
        initialised heads and could not generate; as the class it was saved from it captions and ranks labels.
        Subclasses load what they are asked for, and refuse a folder that lacks their weights.
        """
        if cls is MintModel and architecture == "MintForConditionalGeneration":
            return MintForConditionalGeneration
        return cls

    def _init_embedding_heads(self, config: MintConfig) -> None:
        hidden = config.qformer_config.hidden_size
        self.audio_proj = nn.Linear(hidden, config.audio_text_hidden_size)
        self.text_proj = nn.Linear(hidden, config.audio_text_hidden_size)
        self.temp = nn.Parameter(torch.tensor(config.temperature_init), requires_grad=config.learn_temperature)

    def temperature(self) -> torch.Tensor:
        """The ALC temperature, clamped to `config.temperature_range`; without gradient when `config.learn_temperature`
        is False (a fixed temperature). LAVIS clamps it to [0.001, 0.5] in place before each step; a functional clamp
        is equivalent."""
        temp = self.temp if self.config.learn_temperature else self.temp.detach()
        return temp.clamp(*self.config.temperature_range)

    # The ALC similarity `(num_audio, num_text)` of embeddings, for retrieval and zero-shot scoring.
    audio_text_similarity = staticmethod(audio_text_similarity)

    def get_audio_features(self, **audio: Unpack[MintAudioKwargs]) -> BaseModelOutputWithPooling:
        """
        Normalised audio embeddings for retrieval (section 4.1), one per query.

        Args:
            **audio ([`MintAudioKwargs`]): `input_values` / `input_features` (under the encoder's input name) or
                cached `audio_encoder_features`, and `audio_attention_mask` (see [`MintPreTrainedModel.encode_audio`]).

        Returns a `BaseModelOutputWithPooling` whose `pooler_output` is `(batch, num_query_tokens,
        audio_text_hidden_size)`, L2-normalised, and `last_hidden_state` the query outputs of the Q-Former.
        """
        audio_hidden_states, mask = self.encode_audio(**audio)
        query_output = self.query_forward(audio_hidden_states, mask).last_hidden_state
        return BaseModelOutputWithPooling(
            last_hidden_state=query_output, pooler_output=F.normalize(self.audio_proj(query_output), dim=-1)
        )

    def get_text_features(
        self, input_ids: torch.LongTensor, attention_mask: torch.Tensor | None = None
    ) -> BaseModelOutputWithPooling:
        """
        Normalised text embeddings for retrieval: the projected `[CLS]` output of the text transformer, which sees no
        query (section 2.2). `input_ids` are in the Q-Former's vocabulary.

        Returns a `BaseModelOutputWithPooling` whose `pooler_output` is `(batch, audio_text_hidden_size)`.
        """
        if attention_mask is not None:
            _check_text_not_empty(attention_mask, "attention_mask")
        text_output = self.qformer(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return BaseModelOutputWithPooling(
            last_hidden_state=text_output, pooler_output=F.normalize(self.text_proj(text_output[:, 0]), dim=-1)
        )

    def forward(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
        **audio: Unpack[MintAudioKwargs],
    ) -> MintOutput:
        """
        The ALC similarity of every clip with every text, divided by the temperature.

        Args:
            input_ids `(num_text, text_length)`, attention_mask: texts in the Q-Former's (BERT) vocabulary; a stage-1
                model has no LLM, so its text is the Q-Former's.
            token_type_ids: accepted as BERT tokenizers return them; all must be 0 (the Q-Former has no token types).
            **audio ([`MintAudioKwargs`]): `input_values` / `input_features` / `audio_encoder_features`,
                `audio_attention_mask`: the audio, see [`MintPreTrainedModel.encode_audio`].
        """
        _check_token_ids("input_ids", input_ids)
        _check_token_ids("attention_mask", attention_mask, mask=True)
        _check_token_ids("token_type_ids", token_type_ids)
        if token_type_ids is not None and bool(token_type_ids.any()):
            raise ValueError("The Q-Former has no token types: token_type_ids must be all 0 (one text per row).")
        audio_embeds = self.get_audio_features(**audio).pooler_output
        text_embeds = self.get_text_features(input_ids, attention_mask).pooler_output
        logits_per_audio = self.audio_text_similarity(audio_embeds, text_embeds) / self.temperature()
        return MintOutput(logits_per_audio=logits_per_audio, logits_per_text=logits_per_audio.t(),
                          audio_embeds=audio_embeds, text_embeds=text_embeds)


class MintForPreTraining(MintModel):
    """
    MINT stage 1 (section 2.2): audio-language representation learning with the frozen audio encoder and
    Bridge-Net, trained with ALC, ALM and ATG (`objectives_mint.alc_loss`, `alm_loss`, `atg_loss`), any subset of them
    (`config.stage1_objectives`, the ablation of Table 5).

    Heads as in LAVIS BLIP-2: the contrastive projections and temperature of [`MintModel`], `alm_head` (two-class
    matching classifier on every query output, [`matching_logits`]) and `atg_head` (BERT's MLM head, decoder tied to
    the Q-Former's word embeddings).
    """

    accepts_loss_kwargs = False  # contrastive losses are batch means: the Trainer averages over accumulation steps
    # The phases of ALM's schedule (a training callback sets `alm_phase`): ALM off, negatives drawn at random from
    # other groups, or mined from the ALC similarities (`config.alm_negative_sampling`).
    ALM_PHASES = ("off", "random", "hard")
    _tied_weights_keys = {"atg_head.predictions.decoder.weight": "qformer.embeddings.word_embeddings.weight",
                          "atg_head.predictions.decoder.bias": "atg_head.predictions.bias"}

    def __init__(self, config: MintConfig, **kwargs):
        MintPreTrainedModel.__init__(self, config, **kwargs)
        self._init_bridge(config)
        self._init_embedding_heads(config)
        self.alm_head = nn.Linear(config.qformer_config.hidden_size, 2)
        self.atg_head = BertOnlyMLMHead(config.qformer_config)
        self.alm_phase = "hard"
        self.post_init()
        self._freeze()

    def matching_logits(
        self,
        audio_hidden_states: torch.Tensor,
        audio_mask: torch.Tensor,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor,
        audio_index: torch.LongTensor | None = None,
    ) -> torch.Tensor:
        """
        The ALM head (section 2.2): two-class logits `(batch, 2)` (unmatched, matched) of audio i with text i. The
        queries and the text see each other (bi-directional mask); each query output is classified and the logits
        are averaged over the queries.

        Args:
            audio_hidden_states `(num_audio, audio_length, audio_feature_size)`, audio_mask `(num_audio,
                audio_length)`: from [`encode_audio`]; `num_audio = batch` unless `audio_index` is given.
            input_ids, attention_mask `(batch, text_length)`: the texts in the Q-Former's vocabulary.
            audio_index `(batch,)`, *optional*: the audio row of each pair, each row's keys and values computed once
                ([`query_forward`]).
        """
        output = self.query_forward(audio_hidden_states, audio_mask, input_ids, attention_mask,
                                    audio_index).last_hidden_state
        return self.alm_head(output[:, : self.config.num_query_tokens]).mean(dim=1)

    def get_matching_scores(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        **audio: Unpack[MintAudioKwargs],
    ) -> torch.Tensor:
        """
        ALM probability that audio i and text i (Q-Former vocabulary) match, `(batch,)` (section 2.2); the audio as
        in [`MintPreTrainedModel.encode_audio`].
        """
        audio_hidden_states, mask = self.encode_audio(**audio)
        _check_batch("input_ids", input_ids, audio_hidden_states.shape[0], dims=2)
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        return self.matching_logits(audio_hidden_states, mask, input_ids, attention_mask).softmax(dim=-1)[:, 1]

    def forward(
        self,
        qformer_input_ids: torch.LongTensor,
        qformer_attention_mask: torch.Tensor | None = None,
        group_ids: torch.LongTensor | None = None,
        **audio: Unpack[MintAudioKwargs],
    ) -> MintForPreTrainingOutput:
        """
        Stage-1 losses on a batch of audio-caption pairs (section 2.2): ALC ([`objectives_mint.alc_loss`]), ALM
        ([`objectives_mint.alm_loss`]) and ATG ([`objectives_mint.atg_loss`]), those of `config.stage1_objectives`.

        Args:
            qformer_input_ids `(batch, text_length)`: captions in the Q-Former's vocabulary, starting with [CLS].
            qformer_attention_mask `(batch, text_length)`: caption padding mask.
            group_ids `(batch,)`, *optional*: integer group of each pair (a label, or any id shared by clips that
                are positives of one another; LAVIS BLIP-2's `image_id`).
            **audio ([`MintAudioKwargs`]): `input_values` / `input_features` / `audio_encoder_features`,
                `audio_attention_mask`: the audio, see [`MintPreTrainedModel.encode_audio`].

        Pairs of one group, and captions with identical token ids, are positives of each other
        ([`objectives_mint.positive_pairs`]): ALC spreads its target over them and ALM never takes one as a
        negative. Where a row has no valid negative (a batch of one, or of one group) it contributes only its
        positive pair to ALM, counted in `alm_rows_without_negative`; when no row has a negative, `loss_alm` is 0.
        ALM runs on the first `config.alm_batch_size` rows, in the phase `self.alm_phase` ("off": no ALM loss;
        "random": uniform negatives; "hard": `config.alm_negative_sampling`). An all-padding caption raises a
        `ValueError`.
        """
        _check_token_ids("qformer_input_ids", qformer_input_ids)
        _check_token_ids("qformer_attention_mask", qformer_attention_mask, mask=True)
        audio_hidden_states, audio_mask = self.encode_audio(**audio)
        batch = audio_hidden_states.shape[0]
        _check_batch("qformer_input_ids", qformer_input_ids, batch, dims=2)
        if qformer_attention_mask is None:
            qformer_attention_mask = torch.ones_like(qformer_input_ids)
        _check_batch("qformer_attention_mask", qformer_attention_mask, batch, dims=2)
        _check_text_not_empty(qformer_attention_mask, "qformer_attention_mask")
        if group_ids is not None and (not isinstance(group_ids, torch.Tensor) or group_ids.is_floating_point()
                                      or group_ids.dtype == torch.bool or group_ids.dim() != 1):
            raise ValueError(f"group_ids must be an integer (batch,) tensor (one group id per pair), got "
                             f"{getattr(group_ids, 'dtype', type(group_ids).__name__)} of shape "
                             f"{tuple(getattr(group_ids, 'shape', ()))}.")
        _check_batch("group_ids", group_ids, batch)
        if self.alm_phase not in self.ALM_PHASES:
            raise ValueError(f"alm_phase must be one of {list(self.ALM_PHASES)}, got {self.alm_phase!r}.")
        # The negatives of ALC and ALM come from every process's batch.
        all_ids = gather_padded(qformer_input_ids, dim=1)
        all_mask = gather_padded(qformer_attention_mask, dim=1)
        all_groups = gather(group_ids) if group_ids is not None else None
        offset = rank() * batch
        positives = positive_pairs(all_ids, all_mask, all_groups)[offset : offset + batch]
        objectives = self.config.stage1_objectives
        num_queries = self.config.num_query_tokens
        label_smoothing = self.config.label_smoothing

        # One query pass serves every objective. With ATG it runs over [queries; [DEC] caption] under the ATG mask,
        # where the queries see no text: its text outputs are ATG's, its query outputs those of a query-only pass.
        atg = AtgOutput()
        if "atg" in objectives:
            decoder_ids = atg_input_ids(qformer_input_ids, self.config.qformer_config.dec_token_id)
            pattern = atg_attention_mask(num_queries, qformer_attention_mask)
            hidden = self.query_forward(audio_hidden_states, audio_mask, decoder_ids, pattern).last_hidden_state
            atg = atg_loss(self.atg_head(hidden[:, num_queries:]), decoder_ids, qformer_attention_mask,
                           label_smoothing)
        else:
            hidden = self.query_forward(audio_hidden_states, audio_mask).last_hidden_state
        audio_embeds = F.normalize(self.audio_proj(hidden[:, :num_queries]), dim=-1)
        text_embeds = self.get_text_features(qformer_input_ids, qformer_attention_mask).pooler_output

        # The ALC similarities are reported, and feed ALM's negatives, whichever objectives are trained.
        alc = alc_loss(audio_embeds, text_embeds, self.temperature(), positives, label_smoothing)
        alm = AlmOutput()
        if "alm" in objectives and self.alm_phase != "off":
            sampling = "random" if self.alm_phase == "random" else self.config.alm_negative_sampling
            alm = alm_loss(self.matching_logits, audio_hidden_states, audio_mask, all_ids, all_mask,
                           alc.logits_per_audio, alc.logits_per_text, positives, offset=offset, sampling=sampling,
                           num_rows=self.config.alm_batch_size)

        losses = {"alc": alc.loss, "alm": alm.loss, "atg": atg.loss}
        return MintForPreTrainingOutput(
            loss=torch.stack([losses[name] for name in STAGE1_OBJECTIVES
                              if name in objectives and losses[name] is not None]).sum(),
            loss_alc=alc.loss if "alc" in objectives else None, loss_alm=alm.loss, loss_atg=atg.loss,
            logits_per_audio=alc.logits_per_audio, logits_per_text=alc.logits_per_text,
            alm_logits=alm.logits, alm_labels=alm.labels, alm_negative_audio_indices=alm.negative_audio_indices,
            alm_negative_text_indices=alm.negative_text_indices,
            alm_rows_without_negative=alm.rows_without_negative, atg_logits=atg.logits, audio_embeds=audio_embeds,
            text_embeds=text_embeds,
        )


class MintForConditionalGeneration(MintPreTrainedModel, GenerationMixin):
    """
    MINT stage 2 (section 2.3): instruction-aware Bridge-Net and a frozen LLM. The instruction enters the Q-Former
    with the queries (`qformer_input_ids`) and the LLM (`input_ids`); the query outputs are projected by
    `language_projection` to the LLM's width and take the places of the `num_query_tokens` audio placeholder tokens
    (`config.audio_token_id`) that the processor puts in front of the instruction, as a soft prompt (InstructBLIP and
    transformers' audio LLMs place their queries the same way).
    """

    _keys_to_ignore_on_load_unexpected = [r"^(audio_proj|text_proj|alm_head|atg_head|temp)"]
    accepts_loss_kwargs = True  # the Trainer passes `num_items_in_batch` to `self.loss_function`
    _pretrained_components = ("audio_model", "language_model")
    _keep_in_fp32_modules_strict = MintPreTrainedModel._keep_in_fp32_modules_strict + ["language_projection"]

    def __init__(self, config: MintConfig, **kwargs):
        super().__init__(config, **kwargs)
        self._init_bridge(config)
        self.language_projection = nn.Linear(config.qformer_config.hidden_size, config.text_config.hidden_size)
        decoder_only = config.use_decoder_only_language_model
        self.language_model = (AutoModelForCausalLM if decoder_only else AutoModelForSeq2SeqLM).from_config(
            config.text_config)
        # The seq2seq decoder's logits are aligned with `labels` (masked-LM rule); a decoder-only LLM's are shifted.
        self.loss_type = "ForCausalLM" if decoder_only else "ForMaskedLM"
        self.post_init()
        self._freeze()
        # Saved with the model (generation_config.json): short captions by beam search, as LAVIS's BLIP-2 and
        # InstructBLIP caption (they use 5 beams; 3 costs less on a CPU).
        self.generation_config.max_new_tokens = 30
        self.generation_config.num_beams = 3

    def frozen_module_names(self) -> list[str]:
        return super().frozen_module_names() + (["language_model"] if self.config.freeze_language_model else [])

    def get_input_embeddings(self) -> nn.Module:
        return self.language_model.get_input_embeddings()

    def get_output_embeddings(self) -> nn.Module:
        return self.language_model.get_output_embeddings()

    def get_audio_features(
        self,
        *,
        qformer_input_ids: torch.LongTensor | None = None,
        qformer_attention_mask: torch.Tensor | None = None,
        audio_index: torch.LongTensor | None = None,
        **audio: Unpack[MintAudioKwargs],
    ) -> BaseModelOutputWithPooling:
        """
        The soft audio prompt (section 2.3): the instruction-aware query outputs projected to the LLM's width.

        Args:
            qformer_input_ids, qformer_attention_mask `(batch, instruction_length)`: the instruction in the
                Q-Former's vocabulary.
            audio_index `(batch,)`, *optional*: where examples share their audio (several instructions on one
                clip), the audio row each example reads; the audio then holds each clip once, `(num_audio, ...)`,
                and the frozen encoder runs once per clip ([`MintPreTrainedModel.query_forward`]). The collator's
                `audio_id_column` builds it.
            **audio ([`MintAudioKwargs`]): `input_values` / `input_features` (under the encoder's input name) or
                cached `audio_encoder_features`, and `audio_attention_mask` (see [`MintPreTrainedModel.encode_audio`]).

        Returns a `BaseModelOutputWithPooling` whose `pooler_output` is `(batch, num_query_tokens, llm_hidden_size)`
        and `last_hidden_state` the Q-Former output over `[queries; instruction]`.
        """
        audio_hidden_states, mask = self.encode_audio(**audio)
        batch = audio_hidden_states.shape[0]
        if audio_index is not None:
            _check_audio_index(audio_index, batch)
            batch = len(audio_index)
        _check_batch("qformer_input_ids", qformer_input_ids, batch, dims=2)
        _check_batch("qformer_attention_mask", qformer_attention_mask, batch, dims=2)
        qformer_output = self.query_forward(audio_hidden_states, mask, qformer_input_ids, qformer_attention_mask,
                                            audio_index)
        queries = qformer_output.last_hidden_state[:, : self.config.num_query_tokens]
        return BaseModelOutputWithPooling(
            last_hidden_state=qformer_output.last_hidden_state, pooler_output=self.language_projection(queries)
        )

    def prepare_inputs_embeds(
        self,
        *,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        qformer_input_ids: torch.LongTensor | None = None,
        qformer_attention_mask: torch.Tensor | None = None,
        audio_index: torch.LongTensor | None = None,
        **audio: Unpack[MintAudioKwargs],
    ) -> tuple[torch.Tensor, torch.Tensor, BaseModelOutputWithPooling]:
        """
        The LLM's input embeddings with the soft prompt (section 2.3) scattered into the audio placeholder tokens:
        what `forward`, `generate` and `score_candidates` feed the LLM. Without `input_ids` the soft prompt stands
        alone. The arguments are those of [`forward`] without `labels`.

        Returns `(inputs_embeds (batch, length, llm_hidden_size), attention_mask (batch, length), audio_features)`,
        the last being [`get_audio_features`]'s output (the soft prompt and the Q-Former output).
        """
        features = self.get_audio_features(qformer_input_ids=qformer_input_ids,
                                           qformer_attention_mask=qformer_attention_mask, audio_index=audio_index,
                                           **audio)
        soft_prompt = features.pooler_output
        batch, num_queries = soft_prompt.shape[:2]
        token = self.config.audio_token_id
        if token is None:
            raise ValueError("config.audio_token_id is not set: assemble the model with mint.hub.assemble_mint, or set "
                             "it to the LLM tokenizer's id of the processor's audio token.")
        if input_ids is None:
            input_ids = torch.full((batch, num_queries), token, dtype=torch.long, device=soft_prompt.device)
        _check_batch("input_ids", input_ids, batch, dims=2)
        _check_batch("attention_mask", attention_mask, batch, dims=2)
        placeholders = input_ids == token
        counts = placeholders.sum(-1)
        if bool((counts != num_queries).any()):
            raise ValueError(f"Each row of input_ids needs {num_queries} audio placeholder tokens (id {token}) for the "
                             f"soft prompt; found {counts.tolist()}. Build the inputs with MintProcessor.")
        embeds = self.get_input_embeddings()(input_ids)
        embeds = embeds.masked_scatter(placeholders[..., None].expand_as(embeds), soft_prompt.to(embeds.dtype))
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        return embeds, attention_mask, features

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        qformer_input_ids: torch.LongTensor | None = None,
        qformer_attention_mask: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        num_items_in_batch: int | torch.Tensor | None = None,
        audio_index: torch.LongTensor | None = None,
        **kwargs: Unpack[MintAudioKwargs],
    ) -> MintForConditionalGenerationOutput:
        """
        Args:
            input_ids `(batch, length)`, attention_mask: the audio placeholders and the instruction in the LLM's
                vocabulary, as the processor builds them (for a decoder-only LLM followed by the target).
            qformer_input_ids, qformer_attention_mask `(batch, instruction_length)`: the same instruction in the
                Q-Former's vocabulary (instruction-aware extraction).
            labels: target tokens, -100 where nothing is predicted: `(batch, target_length)` for a seq2seq LLM (the
                decoder's targets), `(batch, length)` aligned with `input_ids` for a decoder-only LLM.
            num_items_in_batch: target-token count of the whole (accumulated) batch, passed by the Trainer.
            audio_index `(batch,)`, *optional*: the audio row of each example where examples share their audio, each
                clip passed once (see [`get_audio_features`]).
            **kwargs: the audio ([`MintAudioKwargs`]: `input_values` / `input_features` / `audio_encoder_features`,
                `audio_attention_mask`, see [`MintPreTrainedModel.encode_audio`]); any other keyword argument goes to
                the LLM (`decoder_input_ids`, `output_attentions`, ...).
        """
        audio, kwargs = split_audio_kwargs(kwargs)
        _check_language_model_kwargs(self.language_model, kwargs)
        embeds, mask, features = self.prepare_inputs_embeds(
            input_ids=input_ids, attention_mask=attention_mask, qformer_input_ids=qformer_input_ids,
            qformer_attention_mask=qformer_attention_mask, audio_index=audio_index, **audio)
        if labels is not None:
            _check_batch("labels", labels, embeds.shape[0], dims=2)
            if num_items_in_batch is None and not bool((labels != -100).any()):
                raise ValueError("Every label is -100: the batch has no target token to compute a loss on.")
        if self.config.use_decoder_only_language_model:
            outputs = self.language_model(inputs_embeds=embeds, attention_mask=mask,
                                          position_ids=_positions(mask), **kwargs)
        else:
            if labels is not None and kwargs.get("decoder_input_ids") is None:
                kwargs["decoder_input_ids"] = self.language_model._shift_right(labels)
            outputs = self.language_model(inputs_embeds=embeds, attention_mask=mask, **kwargs)
        loss = None
        if labels is not None:
            loss = self.loss_function(outputs.logits, labels, vocab_size=outputs.logits.shape[-1],
                                      num_items_in_batch=num_items_in_batch)
        return MintForConditionalGenerationOutput(
            loss=loss, logits=outputs.logits, soft_prompt=features.pooler_output, qformer_outputs=features,
            language_model_outputs=outputs,
        )

    @torch.no_grad()
    def generate(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        qformer_input_ids: torch.LongTensor | None = None,
        qformer_attention_mask: torch.Tensor | None = None,
        **kwargs: Unpack[MintAudioKwargs],
    ) -> torch.LongTensor:
        """
        Generates text for each clip (captioning, open answers), batched. The padding masks make a clip's output
        independent of the other clips in its batch.

        Args:
            input_ids, attention_mask, qformer_input_ids, qformer_attention_mask: as in [`forward`].
            **kwargs: the audio ([`MintAudioKwargs`], as in [`forward`]); any other keyword argument is the LLM's
                generation argument (`max_new_tokens`, `num_beams`, ...).

        Returns the LLM's generated ids `(batch, new_tokens)` (for a seq2seq LLM they start with the decoder start
        token); decode them with `processor.batch_decode`.
        """
        audio, generation_kwargs = split_audio_kwargs(kwargs)
        check_generation_counts(generation_kwargs)
        embeds, mask, _ = self.prepare_inputs_embeds(
            input_ids=input_ids, attention_mask=attention_mask, qformer_input_ids=qformer_input_ids,
            qformer_attention_mask=qformer_attention_mask, **audio)
        return self.language_model.generate(inputs_embeds=embeds, attention_mask=mask, **generation_kwargs)

    @torch.no_grad()
    def score_candidates(
        self,
        candidate_ids: torch.LongTensor,
        candidate_attention_mask: torch.Tensor,
        *,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        qformer_input_ids: torch.LongTensor | None = None,
        qformer_attention_mask: torch.Tensor | None = None,
        length_normalize: bool = False,
        candidate_chunk_size: int | None = None,
        **audio: Unpack[MintAudioKwargs],
    ) -> torch.Tensor:
        """
        Classification by vocabulary ranking (section 4.1): the log-likelihood of each candidate label under the LLM,
        given the clip and the prompt; summed over the label's tokens as in the paper, or averaged per token with
        `length_normalize=True` (the sum favours short labels).

        The audio encoder, Bridge-Net and (for a seq2seq LLM) the LLM encoder run once per clip; for a decoder-only
        LLM the prefix runs once and its key/value cache is shared by the candidates. Only the LLM decoder runs per
        candidate, in chunks of `candidate_chunk_size` candidates (all at once by default).

        Args:
            candidate_ids `(num_candidates, candidate_length)`, candidate_attention_mask: the candidate labels in the
                LLM's vocabulary, as `processor.tokenize_candidates` returns them (with the LLM's end-of-sequence
                token, so a label is not rewarded for being the prefix of a longer one, as in LAVIS).
            input_ids, attention_mask, qformer_input_ids, qformer_attention_mask, **audio: the clips and the prompt,
                as in [`forward`] (as the processor returns them).
            length_normalize: average the log-likelihood over the candidate's tokens rather than sum it.
            candidate_chunk_size: how many candidates the LLM decoder scores at once.

        Returns:
            `(batch, num_candidates)` log-likelihoods: argmax for single-label classification; thresholds (or a
            softmax over the candidates) for multi-label.
        """
        if candidate_ids.dim() != 2 or candidate_ids.shape[0] == 0:
            raise ValueError(f"candidate_ids must be (num_candidates, length) with at least one candidate, got shape "
                             f"{tuple(candidate_ids.shape)}.")
        empty = (candidate_attention_mask.sum(-1) == 0).nonzero().flatten().tolist()
        if empty:
            raise ValueError(f"Candidate(s) {empty} have no token (an all-zero candidate_attention_mask); each label "
                             "needs at least one token.")
        if candidate_chunk_size is not None and (isinstance(candidate_chunk_size, bool) or not isinstance(
                candidate_chunk_size, int) or candidate_chunk_size < 1):
            raise ValueError(f"candidate_chunk_size must be a positive number of candidates (or None: all at once), "
                             f"got {candidate_chunk_size!r}.")
        embeds, mask, _ = self.prepare_inputs_embeds(
            input_ids=input_ids, attention_mask=attention_mask, qformer_input_ids=qformer_input_ids,
            qformer_attention_mask=qformer_attention_mask, **audio)
        if self.config.use_decoder_only_language_model:
            prefix = self.language_model(inputs_embeds=embeds, attention_mask=mask, position_ids=_positions(mask),
                                         use_cache=True)
            score_chunk = partial(self._decoder_only_candidate_scores, prefix, mask)
        else:
            encoder_hidden = self.language_model.get_encoder()(inputs_embeds=embeds, attention_mask=mask)[0]
            score_chunk = partial(self._seq2seq_candidate_scores, encoder_hidden, mask)
        chunk = candidate_chunk_size or candidate_ids.shape[0]
        scores = torch.cat([score_chunk(candidate_ids[i : i + chunk], candidate_attention_mask[i : i + chunk])
                            for i in range(0, candidate_ids.shape[0], chunk)], dim=1)
        return scores / candidate_attention_mask.sum(-1) if length_normalize else scores

    def _seq2seq_candidate_scores(self, encoder_hidden, mask, candidate_ids, candidate_mask):
        """Seq2seq LLM: the encoder ran once per clip; the decoder scores every (clip, candidate) pair."""
        batch, n = encoder_hidden.shape[0], candidate_ids.shape[0]
        labels = candidate_ids.masked_fill(candidate_mask == 0, -100).repeat(batch, 1)
        logits = self.language_model(
            encoder_outputs=(encoder_hidden.repeat_interleave(n, dim=0),),
            attention_mask=mask.repeat_interleave(n, dim=0),
            decoder_input_ids=self.language_model._shift_right(labels),
        ).logits
        return _sequence_log_likelihood(logits, labels).view(batch, n)

    def _decoder_only_candidate_scores(self, prefix, mask, candidate_ids, candidate_mask):
        """Decoder-only LLM: the prefix ran once; its key/value cache is repeated for the candidates."""
        batch, n = mask.shape[0], candidate_ids.shape[0]
        cache = copy.deepcopy(prefix.past_key_values)
        cache.batch_repeat_interleave(n)
        ids, cmask = candidate_ids.repeat(batch, 1), candidate_mask.repeat(batch, 1)
        full_mask = torch.cat([mask.repeat_interleave(n, dim=0), cmask], dim=1)
        logits = self.language_model(input_ids=ids, attention_mask=full_mask,
                                     position_ids=_positions(full_mask)[:, -ids.shape[1]:], cache=cache).logits
        # The first candidate token is predicted by the prefix's last position, token t+1 by candidate token t.
        logits = torch.cat([prefix.logits[:, -1:].repeat_interleave(n, dim=0), logits[:, :-1]], dim=1)
        return _sequence_log_likelihood(logits, ids.masked_fill(cmask == 0, -100)).view(batch, n)


def _positions(attention_mask: torch.Tensor) -> torch.LongTensor:
    """Position ids that count real tokens only, so left padding does not shift a row (as `generate` computes them)."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


def _sequence_log_likelihood(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Summed log-probability of `labels` (-100 ignored) under `logits` aligned position by position."""
    logprobs = logits.float().log_softmax(dim=-1)
    token = logprobs.gather(-1, labels.clamp(min=0)[..., None]).squeeze(-1)
    return (token * (labels != -100)).sum(dim=-1)


# Written into every saved folder's `auto_map`, so that it loads with `trust_remote_code=True` where the package is
# not installed.
MINT_AUTO_MAP = {
    "AutoConfig": "configuration_mint.MintConfig",
    "AutoModel": "modeling_mint.MintModel",
    "AutoModelForPreTraining": "modeling_mint.MintForPreTraining",
    "AutoModelForSpeechSeq2Seq": "modeling_mint.MintForConditionalGeneration",
    "AutoModelForSeq2SeqLM": "modeling_mint.MintForConditionalGeneration",
    "AutoModelForMultimodalLM": "modeling_mint.MintForConditionalGeneration",
}
MintModel.register_for_auto_class("AutoModel")
MintForPreTraining.register_for_auto_class("AutoModelForPreTraining")
MintForConditionalGeneration.register_for_auto_class("AutoModelForSpeechSeq2Seq")
AutoModel.register(MintConfig, MintModel, exist_ok=True)
AutoModelForPreTraining.register(MintConfig, MintForPreTraining, exist_ok=True)
AutoModelForSpeechSeq2Seq.register(MintConfig, MintForConditionalGeneration, exist_ok=True)
AutoModelForSeq2SeqLM.register(MintConfig, MintForConditionalGeneration, exist_ok=True)
# transformers' route for audio + text -> text models (the `any-to-any` pipeline).
AutoModelForMultimodalLM.register(MintConfig, MintForConditionalGeneration, exist_ok=True)


__all__ = [
    "GENERATION_COUNTS",
    "MintForConditionalGeneration",
    "MintForPreTraining",
    "MintModel",
    "MintPreTrainedModel",
    "MintQFormerModel",
    "check_generation_counts",
]
