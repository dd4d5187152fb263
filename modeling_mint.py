# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""PyTorch MINT: a frozen audio encoder, Bridge-Net (a Q-Former with learnable queries) and a frozen LLM.

Paper: "MINT: Boosting Audio-Language Model via Multi-Target Pre-Training and Instruction Tuning" (Zhao et al.).
Where the paper is silent, the code follows BLIP-2 / InstructBLIP as LAVIS and transformers implement them; such
places say so.
"""

import contextlib
import copy
import inspect
import json
import os
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file
from torch import nn
from transformers import (
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForPreTraining,
    AutoModelForSeq2SeqLM,
    AutoModelForSpeechSeq2Seq,
    BertConfig,
    GenerationMixin,
    PreTrainedModel,
    WhisperConfig,
)
from transformers import initialization as init
from transformers.modeling_outputs import BaseModelOutputWithPooling
from transformers.models.bert.modeling_bert import BertLMPredictionHead, BertOnlyMLMHead
from transformers.models.instructblip.modeling_instructblip import (
    InstructBlipQFormerEmbeddings,
    InstructBlipQFormerModel,
)
from transformers.models.whisper.modeling_whisper import WhisperEncoder
from transformers.utils import ModelOutput, logging


try:
    from .configuration_mint import MintConfig, MintQFormerConfig
except ImportError:  # installed as top-level modules rather than loaded as Hub remote code
    from configuration_mint import MintConfig, MintQFormerConfig


logger = logging.get_logger(__name__)


@dataclass
class MintForPreTrainingOutput(ModelOutput):
    r"""
    Output of [`MintForPreTraining`] (stage 1, section 2.2).

    loss (`torch.FloatTensor` of shape `()`): sum of the enabled objectives' losses.
    loss_alc / loss_alm / loss_atg (`torch.FloatTensor` of shape `()`): each objective's loss (`None` when disabled).
    logits_per_audio (`torch.FloatTensor` of shape `(batch_size, batch_size)`): ALC similarities / temperature,
        audio i against text j (max over the queries).
    logits_per_text (`torch.FloatTensor` of shape `(batch_size, batch_size)`): the transpose.
    alm_logits (`torch.FloatTensor` of shape `(num_pairs, 2)`): matching logits of the positive pairs followed by the
        pairs (hard negative audio, text) and (audio, hard negative text).
    alm_labels (`torch.LongTensor` of shape `(num_pairs,)`): 1 for matched, 0 for unmatched.
    alm_negative_audio_indices / alm_negative_text_indices (`torch.LongTensor` of shape `(batch_size,)`): the mined
        negative audio for each text and negative text for each audio; -1 where the batch holds no valid negative.
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
    atg_logits: torch.FloatTensor | None = None
    audio_embeds: torch.FloatTensor | None = None
    text_embeds: torch.FloatTensor | None = None


@dataclass
class MintForConditionalGenerationOutput(ModelOutput):
    r"""
    Output of [`MintForConditionalGeneration`] (stage 2, section 2.3).

    loss (`torch.FloatTensor` of shape `()`): LM loss on the target tokens only.
    logits (`torch.FloatTensor`): the LLM's logits (decoder positions for a seq2seq LLM; every position of the
        assembled sequence for a decoder-only LLM).
    soft_prompt (`torch.FloatTensor` of shape `(batch_size, num_query_tokens, llm_hidden_size)`): projected queries.
    qformer_outputs / language_model_outputs: the sub-models' outputs.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    soft_prompt: torch.FloatTensor | None = None
    qformer_outputs: ModelOutput | None = None
    language_model_outputs: ModelOutput | None = None


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


def _load_checkpoint_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """All weights of a checkpoint folder saved with safetensors (one file or shards with their index)."""
    path = os.fspath(path)
    single = os.path.join(path, "model.safetensors")
    if os.path.isfile(single):
        return load_file(single)
    index = os.path.join(path, "model.safetensors.index.json")
    if os.path.isfile(index):
        with open(index) as f:
            shards = sorted(set(json.load(f)["weight_map"].values()))
        return {k: v for shard in shards for k, v in load_file(os.path.join(path, shard)).items()}
    raise FileNotFoundError(
        f"No model.safetensors (or sharded index) in {path!r}: expected a checkpoint folder saved with safetensors "
        "(pickle checkpoints are not loaded for safety)."
    )


def load_component(module: nn.Module, path: str | os.PathLike) -> None:
    """
    Loads a component checkpoint folder into `module` (the audio encoder or the LLM of a MINT): the checkpoint's keys
    may carry a prefix (a Whisper checkpoint's `model.encoder.`, a wrapper's `model.`), found from the module's own
    keys. Every parameter must be loaded, except aliases of a loaded one (tied embeddings).
    """
    state = _load_checkpoint_state_dict(path)
    wanted = module.state_dict()
    first = next(iter(wanted))
    prefixes = sorted({k[: -len(first)] for k in state if k == first or k.endswith("." + first)}, key=len)
    prefix = next((p for p in prefixes if sum(p + k in state for k in wanted) > len(wanted) // 2), None)
    if prefix is None:
        raise ValueError(f"{os.fspath(path)!r} does not hold a {type(module).__name__}: none of its weights match "
                         f"(looked for {first!r}).")
    module.load_state_dict({k: state[prefix + k] for k in wanted if prefix + k in state}, strict=False)
    loaded = {wanted[k].data_ptr() for k in wanted if prefix + k in state}
    missing = [k for k in wanted if prefix + k not in state and wanted[k].data_ptr() not in loaded]
    if missing:
        raise ValueError(f"{os.fspath(path)!r} lacks {len(missing)} weights of the {type(module).__name__}, e.g. "
                         f"{missing[:3]}.")


# Where `hub_mint.save_for_hub(..., trained_parts_only=True)` puts a peft model's LoRA adapters.
ADAPTERS_FOLDER = "adapters"


def _stored_parts(path) -> set[str] | None:
    """The top-level parts (`audio_model`, `qformer`, ...) a local checkpoint folder has weights for; None if unknown."""
    path = os.fspath(path)
    index = os.path.join(path, "model.safetensors.index.json")
    if os.path.isfile(index):
        with open(index) as f:
            return {key.split(".")[0] for key in json.load(f)["weight_map"]}
    single = os.path.join(path, "model.safetensors")
    if os.path.isfile(single):
        with safe_open(single, "pt") as f:
            return {key.split(".")[0] for key in f.keys()}
    return None


def _saved_base_models(path) -> dict | None:
    config = os.path.join(os.fspath(path), "config.json")
    if not os.path.isfile(config):
        return None
    with open(config) as f:
        return json.load(f).get("base_models")


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

    @classmethod
    def from_bert_pretrained(
        cls, bert_path: str | os.PathLike, encoder_hidden_size: int, **config_overrides
    ) -> "MintQFormerModel":
        """
        Builds a Q-Former with the dimensions of the BERT checkpoint in `bert_path` (a local directory with
        `config.json` and `model.safetensors`) and initialises it from it (see [`bert_to_qformer_state_dict`]).
        The vocabulary grows by one `[DEC]` token, whose embedding is freshly initialised, as LAVIS does.
        """
        config = MintQFormerConfig.from_bert_config(BertConfig.from_pretrained(bert_path), encoder_hidden_size,
                                                    **config_overrides)
        model = cls(config)
        model.load_bert_state_dict(_load_checkpoint_state_dict(bert_path))
        return model

    def load_bert_state_dict(self, bert_state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Copies BERT weights into this Q-Former; returns the mapped entries that belong elsewhere (the MLM head)."""
        mapped = bert_to_qformer_state_dict(bert_state_dict)
        own = self.state_dict()
        extra = {k: v for k, v in mapped.items() if k not in own}
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
        return extra


def _bidirectional_bias(mask: torch.Tensor, attn_implementation: str, dtype: torch.dtype) -> torch.Tensor:
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


class MintPreTrainedModel(PreTrainedModel):
    """
    Shared by both stages: the frozen audio encoder (`audio_model`), the trainable LayerNorm on its output
    (`audio_layernorm`, LAVIS BLIP-2's `ln_vision`), the learnable queries (`query_tokens`) and the Q-Former
    (`qformer`). Both stage classes use these names, so a stage-1 checkpoint loads into stage 2 without renaming.
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
        _mask_padding_between_positional_convs(self.audio_model)
        self.audio_layernorm = nn.LayerNorm(config.audio_feature_size)
        self.query_tokens = nn.Parameter(torch.zeros(1, config.num_query_tokens, config.qformer_config.hidden_size))
        self.qformer = MintQFormerModel._from_config(config.qformer_config)

    def _init_weights(self, module):
        super()._init_weights(module)
        if isinstance(module, MintPreTrainedModel):
            init.normal_(module.query_tokens, mean=0.0, std=self.config.qformer_config.initializer_range)
            if isinstance(module, MintForPreTraining):
                init.constant_(module.temp, self.config.temperature_init)
        elif isinstance(module, BertLMPredictionHead):
            init.zeros_(module.bias)
        elif isinstance(module, InstructBlipQFormerEmbeddings):
            init.copy_(module.position_ids, torch.arange(module.position_ids.shape[-1]).expand((1, -1)))

    def init_qformer_from_bert(self, bert_path: str | os.PathLike) -> None:
        """Initialises the Q-Former (and the ATG head, where the checkpoint has an MLM head) from a local BERT."""
        extra = self.qformer.load_bert_state_dict(_load_checkpoint_state_dict(bert_path))
        head = {k.removeprefix("atg_head."): v for k, v in extra.items() if k.startswith("atg_head.")}
        if head and hasattr(self, "atg_head"):
            self.atg_head.load_state_dict(head, strict=False)

    def _freeze(self) -> None:
        """Freezes the parts the config marks frozen (section 2: frozen audio encoder and LLM)."""
        for name in self._frozen_module_names():
            getattr(self, name).requires_grad_(False).eval()

    def _frozen_module_names(self) -> list[str]:
        return ["audio_model"] if self.config.freeze_audio_encoder else []

    def save_pretrained(self, save_directory, *args, **kwargs):
        # `register_for_auto_class` records one Auto class per model class; write all of MINT's into `auto_map`, so
        # the folder loads with `trust_remote_code=True` through any of them.
        self.config.auto_map = {**(getattr(self.config, "auto_map", None) or {}), **MINT_AUTO_MAP}
        auto_class = "AutoModelForPreTraining" if isinstance(self, MintForPreTraining) else "AutoModel"
        self.config.custom_pipelines = {**(getattr(self.config, "custom_pipelines", None) or {}),
                                        **custom_pipelines(auto_class)}
        return super().save_pretrained(save_directory, *args, **kwargs)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        """
        As `PreTrainedModel.from_pretrained`; the audio encoder or LLM that a folder does not store (a folder saved
        with only its trained parts by `hub_mint.save_for_hub`, or a stage-1 folder from `hub_mint.assemble_mint`,
        which has no LLM) comes from the base folder named in `config.base_models`. Pass
        `base_models={"audio_model": ..., "language_model": ...}` to point at other copies of them.
        """
        bases = kwargs.get("base_models") or _saved_base_models(pretrained_model_name_or_path) or {}
        stored = _stored_parts(pretrained_model_name_or_path)
        # Parts this class has, whose weights the folder does not store: they come from their base folders.
        from_bases = {name: path for name, path in bases.items()
                      if name in cls._pretrained_components and (stored is None or name not in stored)}
        ignored = cls._keys_to_ignore_on_load_missing
        if from_bases:  # no "newly initialised" report for them
            cls._keys_to_ignore_on_load_missing = list(ignored or []) + [rf"^{name}\." for name in from_bases]
        wants_info = kwargs.pop("output_loading_info", False)
        try:
            model, info = super().from_pretrained(pretrained_model_name_or_path, *args, output_loading_info=True,
                                                  **kwargs)
        finally:
            cls._keys_to_ignore_on_load_missing = ignored
        model._reinit_missing_language_model(set(info["missing_keys"]))
        for name, path in from_bases.items():
            if not os.path.isdir(path):
                raise ValueError(
                    f"This MINT folder does not store its frozen {name}; it comes from the base model {path!r}, which "
                    f"is not a folder here. Put that checkpoint there, or pass base_models={{{name!r}: "
                    "'/path/to/it', ...} to from_pretrained."
                )
            load_component(getattr(model, name), path)
        adapters = os.path.join(os.fspath(pretrained_model_name_or_path), ADAPTERS_FOLDER)
        if model.config.base_models and os.path.isfile(os.path.join(adapters, "adapter_config.json")):
            from peft import PeftModel

            # LoRA adapters saved beside the trained parts: merged into the reassembled frozen parts.
            model = PeftModel.from_pretrained(model, adapters).merge_and_unload()
        # Loading materialises new parameters, which are trainable by default: freeze again.
        model._freeze()
        return (model, info) if wants_info else model

    def _reinit_missing_language_model(self, missing: set[str]) -> None:
        """
        A stage-1 checkpoint has no LLM. transformers 5.x initialises an LLM missing from a checkpoint with the generic
        rule (for T5: std `initializer_factor` = 1.0 on every linear layer, so activations and gradients explode)
        rather than with the LLM's own `_init_weights`: rebuild it from its config, as the constructor does.
        """
        lm = getattr(self, "language_model", None)
        if lm is None or not all(f"language_model.{k}" in missing for k in lm.state_dict()):
            return
        parameter = next(lm.parameters())
        self.language_model = type(lm)._from_config(lm.config).to(device=parameter.device, dtype=parameter.dtype)
        self.language_model.train(self.training)

    def train(self, mode: bool = True):
        """Frozen parts stay in eval mode, so layerdrop, SpecAugment-style time masking and dropout never fire."""
        super().train(mode)
        for name in self._frozen_module_names():
            getattr(self, name).eval()
        return self

    def encode_audio(
        self,
        input_values: torch.Tensor | None = None,
        audio_attention_mask: torch.Tensor | None = None,
        audio_features: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """
        Runs the audio encoder, or takes its cached output.

        Args:
            input_values: `(batch, samples)` waveforms (wav2vec2 / data2vec / HuBERT) or `(batch, n_mels, frames)`
                log-mel features (Whisper), as the processor returns them.
            audio_attention_mask: 1 on real audio, 0 on padding: `(batch, samples)` or `(batch, frames)` for
                `input_values`, `(batch, audio_length)` for `audio_features`.
            audio_features: `(batch, audio_length, audio_feature_size)` encoder outputs from the frozen-feature cache,
                used instead of running the encoder.

        Returns:
            `audio_embeds` `(batch, audio_length, audio_feature_size)` after `audio_layernorm`, in the Q-Former's dtype,
            and their padding mask `(batch, audio_length)`.
        """
        if audio_features is not None:
            if audio_features.shape[-1] != self.config.audio_feature_size:
                raise ValueError(
                    f"audio_features are {audio_features.shape[-1]}-d, but this model reads "
                    f"{self.config.audio_feature_size}-d audio features (audio_feature_layer="
                    f"{self.config.audio_feature_layer}): rebuild the feature cache with this model."
                )
            hidden = audio_features
            mask = audio_attention_mask if audio_attention_mask is not None else torch.ones(
                hidden.shape[:2], dtype=torch.long, device=hidden.device)
        else:
            hidden, mask = self.run_audio_encoder(input_values, audio_attention_mask)
        return self.audio_layernorm(hidden.to(self.audio_layernorm.weight.dtype)), mask.long()

    def run_audio_encoder(
        self,
        input_values: torch.Tensor | None = None,
        audio_attention_mask: torch.Tensor | None = None,
        input_features: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """
        The frozen encoder's raw features `(batch, frames, audio_feature_size)`, its hidden states at
        `config.audio_feature_layer` (concatenated if several), and their frame mask: what the feature cache stores.
        """
        input_values = input_values if input_values is not None else input_features
        if audio_attention_mask is None:
            audio_attention_mask = torch.ones(input_values.shape[0], input_values.shape[-1], dtype=torch.long,
                                              device=input_values.device)
        frozen = self.config.freeze_audio_encoder
        layers = self.config.audio_feature_layers
        with torch.set_grad_enabled(torch.is_grad_enabled() and not frozen), _padding_mask_for_hooks(
            self.audio_model, audio_attention_mask
        ):
            output = self.audio_model(
                input_values.to(self.audio_model.dtype), attention_mask=audio_attention_mask,
                output_hidden_states=layers != [-1],
            )
        # The last of `hidden_states` is `last_hidden_state` (after the final LayerNorm) for every supported encoder.
        hidden = output.last_hidden_state if layers == [-1] else torch.cat(
            [output.hidden_states[layer] for layer in layers], dim=-1)
        return hidden, audio_frame_mask(self.audio_model, audio_attention_mask, hidden.shape[1])

    def query_forward(
        self,
        audio_embeds: torch.Tensor,
        audio_mask: torch.Tensor,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> BaseModelOutputWithPooling:
        """
        Runs the queries (and optional text) through the Q-Former with cross-attention to the audio.

        Args:
            audio_embeds `(batch, audio_length, audio_feature_size)` and audio_mask `(batch, audio_length)`: from
                [`encode_audio`].
            input_ids `(batch, text_length)`: text in the Q-Former's vocabulary (the instruction in stage 2, the
                caption for ALM/ATG in stage 1).
            attention_mask: `(batch, text_length)` text padding mask (queries are always attended), or a boolean
                `(batch, 1, L, L)` pattern over `[queries; text]` with `L = num_query_tokens + text_length`.

        Returns:
            The Q-Former output; its first `num_query_tokens` positions are the query outputs.
        """
        batch = audio_embeds.shape[0]
        queries = self.query_tokens.expand(batch, -1, -1)
        if attention_mask is not None and attention_mask.dim() == 2:
            query_mask = torch.ones(batch, queries.shape[1], dtype=attention_mask.dtype, device=attention_mask.device)
            attention_mask = torch.cat([query_mask, attention_mask], dim=1)
        elif attention_mask is not None:
            attention_mask = _bidirectional_bias(
                attention_mask, self.qformer.config._attn_implementation, self.query_tokens.dtype
            )
        return self.qformer(
            input_ids=input_ids,
            attention_mask=attention_mask,
            query_embeds=queries,
            encoder_hidden_states=audio_embeds.to(self.query_tokens.dtype),
            encoder_attention_mask=audio_mask,
        )


def build_audio_encoder(audio_config) -> PreTrainedModel:
    """The audio encoder for `audio_config`: Whisper's encoder for a Whisper config, else `AutoModel`'s base model."""
    if isinstance(audio_config, WhisperConfig):
        return WhisperEncoder._from_config(audio_config)
    return AutoModel.from_config(audio_config)


def _mask_padding_between_positional_convs(audio_model: nn.Module) -> None:
    """
    data2vec-audio's positional embedding is a stack of convolutions; transformers zeroes the padded frames before the
    first one only, so from the second on, padding leaks into the real frames near a clip's end and a clip's features
    depend on the batch it is padded in. A pre-hook zeroes the padded frames before every layer of the stack, which
    makes a padded clip's frames equal to those of the clip alone.
    """
    layers = getattr(getattr(getattr(audio_model, "encoder", None), "pos_conv_embed", None), "layers", None)
    if layers is None:
        return

    def zero_padding(module, args):
        mask = getattr(audio_model, "_mint_frame_mask", None)
        if mask is None:
            return None
        hidden = args[0]
        return (hidden * mask[:, None, : hidden.shape[-1]].to(hidden.dtype),)

    for layer in layers:
        layer.register_forward_pre_hook(zero_padding)


@contextlib.contextmanager
def _padding_mask_for_hooks(audio_model: nn.Module, attention_mask: torch.Tensor):
    """Exposes the output-frame padding mask to the hooks of [`_mask_padding_between_positional_convs`]."""
    if not hasattr(audio_model, "_get_feat_extract_output_lengths"):
        yield
        return
    lengths = audio_model._get_feat_extract_output_lengths(attention_mask.sum(-1))
    frames = int(audio_model._get_feat_extract_output_lengths(torch.tensor(attention_mask.shape[1])))
    audio_model._mint_frame_mask = torch.arange(frames, device=attention_mask.device)[None] < lengths[:, None]
    try:
        yield
    finally:
        audio_model._mint_frame_mask = None


def audio_frame_mask(audio_model: PreTrainedModel, attention_mask: torch.Tensor, num_frames: int) -> torch.Tensor:
    """
    The padding mask of the encoder's output frames `(batch, num_frames)` from the input-level mask.

    wav2vec2-family models know their convolutional downsampling; for others (Whisper: 2x) the input mask is
    subsampled by the ratio of input to output length.
    """
    if hasattr(audio_model, "_get_feature_vector_attention_mask"):
        return audio_model._get_feature_vector_attention_mask(num_frames, attention_mask).long()
    stride = max(attention_mask.shape[1] // num_frames, 1)
    return attention_mask[:, ::stride][:, :num_frames].long()


def _check_text_not_empty(attention_mask: torch.Tensor, name: str) -> None:
    empty = (attention_mask.sum(dim=1) == 0).nonzero().flatten().tolist()
    if empty:
        raise ValueError(
            f"{name} of batch item(s) {empty} is all padding: every text needs at least its [CLS] token "
            "(tokenize an empty caption with the processor rather than passing an all-zero mask)."
        )


class MintForPreTraining(MintPreTrainedModel):
    """
    MINT stage 1 (section 2.2): audio-language representation learning with the frozen audio encoder and
    Bridge-Net, trained with ALC, ALM and ATG (any subset, `config.stage1_objectives`).

    Heads as in LAVIS BLIP-2: `audio_proj` / `text_proj` to the `audio_text_hidden_size` contrastive space, `alm_head`
    (two-class matching classifier on every query output), `atg_head` (BERT's MLM head, decoder tied to the Q-Former's
    word embeddings) and the learnable temperature `temp`.
    """

    accepts_loss_kwargs = False  # contrastive losses are batch means: the Trainer averages over accumulation steps
    _tied_weights_keys = {"atg_head.predictions.decoder.weight": "qformer.embeddings.word_embeddings.weight",
                          "atg_head.predictions.decoder.bias": "atg_head.predictions.bias"}

    def __init__(self, config: MintConfig):
        super().__init__(config)
        self._init_bridge(config)
        hidden = config.qformer_config.hidden_size
        self.audio_proj = nn.Linear(hidden, config.audio_text_hidden_size)
        self.text_proj = nn.Linear(hidden, config.audio_text_hidden_size)
        self.alm_head = nn.Linear(hidden, 2)
        self.atg_head = BertOnlyMLMHead(config.qformer_config)
        self.temp = nn.Parameter(torch.tensor(config.temperature_init))
        self.post_init()
        self._freeze()

    def _temperature(self) -> torch.Tensor:
        # LAVIS clamps the temperature to [0.001, 0.5] in place before each step; a functional clamp is equivalent.
        return self.temp.clamp(0.001, 0.5)

    def get_audio_features(
        self,
        input_values: torch.Tensor | None = None,
        audio_attention_mask: torch.Tensor | None = None,
        input_features: torch.Tensor | None = None,
        audio_features: torch.Tensor | None = None,
    ) -> BaseModelOutputWithPooling:
        """
        Normalised audio embeddings for retrieval (section 4.1): one per query. The audio comes as one of
        `input_values`, `input_features` or cached `audio_features` (see [`MintPreTrainedModel.encode_audio`]).

        Returns a `BaseModelOutputWithPooling` whose `pooler_output` is `(batch, num_query_tokens,
        audio_text_hidden_size)`, L2-normalised, and `last_hidden_state` the query outputs of the Q-Former.
        """
        audio_embeds, audio_mask = self.encode_audio(
            **_audio_kwargs(input_values, input_features, audio_features, audio_attention_mask))
        query_output = self.query_forward(audio_embeds, audio_mask).last_hidden_state
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

    @staticmethod
    def audio_text_similarity(audio_embeds: torch.Tensor, text_embeds: torch.Tensor) -> torch.Tensor:
        """
        ALC similarity (section 2.2): for each audio `(num_audio, num_queries, dim)` and text `(num_text, dim)`, the
        highest similarity between any query embedding and the text embedding; `(num_audio, num_text)`.
        """
        return torch.einsum("aqd,td->atq", audio_embeds, text_embeds).amax(dim=-1)

    def get_matching_scores(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        input_values: torch.Tensor | None = None,
        audio_attention_mask: torch.Tensor | None = None,
        input_features: torch.Tensor | None = None,
        audio_features: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """ALM probability that audio i and text i (Q-Former vocabulary) match, `(batch,)` (section 2.2)."""
        audio_embeds, audio_mask = self.encode_audio(
            **_audio_kwargs(input_values, input_features, audio_features, audio_attention_mask))
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        return self._alm_logits(audio_embeds, audio_mask, input_ids, attention_mask).softmax(dim=-1)[:, 1]

    def _alm_logits(self, audio_embeds, audio_mask, input_ids, attention_mask) -> torch.Tensor:
        # Queries and text see each other (bi-directional mask); the 2-class logits are averaged over the queries.
        output = self.query_forward(audio_embeds, audio_mask, input_ids, attention_mask).last_hidden_state
        return self.alm_head(output[:, : self.config.num_query_tokens]).mean(dim=1)

    def forward(
        self,
        input_values: torch.Tensor | None = None,
        qformer_input_ids: torch.LongTensor | None = None,
        qformer_attention_mask: torch.Tensor | None = None,
        audio_attention_mask: torch.Tensor | None = None,
        input_features: torch.Tensor | None = None,
        audio_features: torch.Tensor | None = None,
    ) -> MintForPreTrainingOutput:
        """
        Stage-1 losses on a batch of audio-caption pairs.

        Args:
            input_values `(batch, samples)`, input_features `(batch, n_mels, frames)` or audio_features
                `(batch, audio_length, audio_feature_size)`: the audio, as the processor returns it for the encoder, or
                the encoder's cached outputs (give one of them).
            qformer_input_ids `(batch, text_length)`: captions in the Q-Former's vocabulary, starting with [CLS].
            qformer_attention_mask `(batch, text_length)`: caption padding mask.
            audio_attention_mask: the audio padding mask.

        Captions with identical token ids are positives of each other: ALC spreads its target over them (as LAVIS
        does for samples sharing an `image_id`) and ALM never mines one as a negative. Where a sample has no valid
        negative (a batch of one, or a batch of one repeated caption) it contributes only its positive pair to ALM;
        when no sample has a negative, `loss_alm` is 0. An all-padding caption raises a `ValueError`.
        """
        audio = _audio_kwargs(input_values, input_features, audio_features, audio_attention_mask)
        if qformer_input_ids is None:
            raise ValueError("MintForPreTraining needs captions as qformer_input_ids (Q-Former vocabulary).")
        if qformer_attention_mask is None:
            qformer_attention_mask = torch.ones_like(qformer_input_ids)
        num_clips = next(v for v in audio.values() if v is not None).shape[0]
        if qformer_input_ids.shape[0] != num_clips:
            raise ValueError(f"Got {num_clips} clips but {qformer_input_ids.shape[0]} captions: "
                             "each clip needs exactly one caption.")
        _check_text_not_empty(qformer_attention_mask, "qformer_attention_mask")
        objectives = set(self.config.stage1_objectives)
        audio_embeds, audio_mask = self.encode_audio(**audio)
        num_queries = self.config.num_query_tokens

        atg_logits = loss_atg = None
        if "atg" in objectives:
            # One pass serves ATG and the query side of ALC: under the ATG mask the queries see no text, so their
            # outputs equal those of a query-only pass.
            decoder_ids = qformer_input_ids.clone()
            decoder_ids[:, 0] = self.config.qformer_config.dec_token_id
            pattern = atg_attention_mask(num_queries, qformer_attention_mask)
            output = self.query_forward(audio_embeds, audio_mask, decoder_ids, pattern).last_hidden_state
            query_output = output[:, :num_queries]
            atg_logits = self.atg_head(output[:, num_queries:])
            labels = decoder_ids.masked_fill(qformer_attention_mask == 0, -100)
            loss_atg = F.cross_entropy(
                atg_logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(),
                ignore_index=-100, label_smoothing=self.config.label_smoothing,
            )
        else:
            query_output = self.query_forward(audio_embeds, audio_mask).last_hidden_state

        audio_feats = F.normalize(self.audio_proj(query_output), dim=-1)
        text_feats = self.get_text_features(qformer_input_ids, qformer_attention_mask).pooler_output
        # Under DDP the negatives come from the global batch: local rows against columns gathered from every process
        # (with gradients, as LAVIS's all_gather_with_grad); in one process the "global" batch is the local one.
        offset = _rank() * audio_feats.shape[0]
        all_audio_feats, all_text_feats = _gather(audio_feats), _gather(text_feats)
        all_ids = _gather_padded(qformer_input_ids, dim=1)
        all_text_mask = _gather_padded(qformer_attention_mask, dim=1)
        temperature = self._temperature()
        logits_per_audio = self.audio_text_similarity(audio_feats, all_text_feats) / temperature
        logits_per_text = self.audio_text_similarity(all_audio_feats, text_feats).t() / temperature
        positives = _same_caption(all_ids, all_text_mask)[offset : offset + audio_feats.shape[0]]

        loss_alc = None
        if "alc" in objectives:
            targets = positives.float() / positives.sum(dim=1, keepdim=True)
            loss_alc = (
                F.cross_entropy(logits_per_audio, targets, label_smoothing=self.config.label_smoothing)
                + F.cross_entropy(logits_per_text, targets, label_smoothing=self.config.label_smoothing)
            ) / 2

        loss_alm = alm_logits = alm_labels = neg_audio = neg_text = None
        if "alm" in objectives:
            hardest = self.config.alm_negative_sampling == "hardest"
            neg_audio = mine_hard_negatives(logits_per_text, positives, hardest)  # a negative audio for each text
            neg_text = mine_hard_negatives(logits_per_audio, positives, hardest)  # a negative text for each audio
            alm_logits, alm_labels = self._alm_pairs(
                _gather_padded(audio_embeds, dim=1, differentiable=True), _gather_padded(audio_mask, dim=1),
                all_ids, all_text_mask, offset, neg_audio, neg_text,
            )
            if alm_labels.eq(0).any():
                loss_alm = F.cross_entropy(alm_logits.float(), alm_labels)
            else:
                logger.warning_once("No ALM negative in this batch (batch of one or one repeated caption): "
                                    "loss_alm is 0.")
                loss_alm = alm_logits.sum() * 0.0

        losses = [x for x in (loss_alc, loss_alm, loss_atg) if x is not None]
        return MintForPreTrainingOutput(
            loss=torch.stack(losses).sum(),
            loss_alc=loss_alc,
            loss_alm=loss_alm,
            loss_atg=loss_atg,
            logits_per_audio=logits_per_audio,
            logits_per_text=logits_per_text,
            alm_logits=alm_logits,
            alm_labels=alm_labels,
            alm_negative_audio_indices=neg_audio,
            alm_negative_text_indices=neg_text,
            atg_logits=atg_logits,
            audio_embeds=audio_feats,
            text_embeds=text_feats,
        )

    def _alm_pairs(self, audio_embeds, audio_mask, input_ids, attention_mask, offset, neg_audio, neg_text):
        """
        Matched pairs, then (negative audio, text) and (audio, negative text) pairs, as LAVIS orders them. The
        tensors are the global batch; this process's samples start at `offset`; negatives index the global batch.
        """
        local = torch.arange(neg_audio.shape[0], device=neg_audio.device) + offset
        has_neg_audio, has_neg_text = neg_audio >= 0, neg_text >= 0
        audio_index = torch.cat([local, neg_audio[has_neg_audio], local[has_neg_text]])
        text_index = torch.cat([local, local[has_neg_audio], neg_text[has_neg_text]])
        logits = self._alm_logits(
            audio_embeds[audio_index], audio_mask[audio_index], input_ids[text_index], attention_mask[text_index]
        )
        labels = (torch.arange(len(audio_index), device=logits.device) < len(local)).long()
        return logits, labels


def _rank() -> int:
    return torch.distributed.get_rank() if _distributed() else 0


def _distributed() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized() and \
        torch.distributed.get_world_size() > 1


_PROCESS_GROUPS: dict = {}


def _negatives_group():
    """
    A process group of MINT's own for the negatives' collectives: their backward runs while DDP all-reduces gradient
    buckets, and two streams of collectives on one group can interleave differently on each process and deadlock.
    """
    default = torch.distributed.group.WORLD
    if default not in _PROCESS_GROUPS:
        _PROCESS_GROUPS[default] = torch.distributed.new_group()
    return _PROCESS_GROUPS[default]


class _GatherWithGradient(torch.autograd.Function):
    """all_gather whose backward sums every process's gradient for this process's slice (LAVIS's GatherLayer)."""

    @staticmethod
    def forward(ctx, tensor):
        gathered = [torch.empty_like(tensor) for _ in range(torch.distributed.get_world_size())]
        torch.distributed.all_gather(gathered, tensor.contiguous(), group=_negatives_group())
        return tuple(gathered)

    @staticmethod
    def backward(ctx, *grads):
        grads = torch.stack(grads)
        torch.distributed.all_reduce(grads, group=_negatives_group())
        return grads[torch.distributed.get_rank()]


def _gather(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenates `tensor` from every process along dim 0, keeping gradients (identity in one process)."""
    if not _distributed():
        return tensor
    return torch.cat(_GatherWithGradient.apply(tensor), dim=0)


def _gather_padded(tensor: torch.Tensor, dim: int, differentiable: bool = False) -> torch.Tensor:
    """[`_gather`] for tensors whose size along `dim` differs between processes: zero-padded to the largest first."""
    if not _distributed():
        return tensor
    size = torch.tensor(tensor.shape[dim], device=tensor.device)
    torch.distributed.all_reduce(size, op=torch.distributed.ReduceOp.MAX, group=_negatives_group())
    pad = [0, 0] * (tensor.dim() - dim - 1) + [0, int(size) - tensor.shape[dim]]
    tensor = F.pad(tensor, pad)
    if differentiable:
        return _gather(tensor)
    gathered = [torch.empty_like(tensor) for _ in range(torch.distributed.get_world_size())]
    torch.distributed.all_gather(gathered, tensor.contiguous(), group=_negatives_group())
    return torch.cat(gathered, dim=0)


def _same_caption(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
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
    masked = logits.float().masked_fill(positives, float("-inf"))
    valid = ~positives.all(dim=1)
    negatives = torch.full((logits.shape[0],), -1, dtype=torch.long, device=logits.device)
    if valid.any():
        chosen = masked[valid].argmax(dim=1) if hardest else torch.multinomial(masked[valid].softmax(dim=1), 1)[:, 0]
        negatives[valid] = chosen
    return negatives


def _audio_kwargs(input_values, input_features, audio_features, audio_attention_mask) -> dict:
    """The audio as exactly one of waveforms, log-mel features or cached encoder features, for `encode_audio`."""
    given = [x for x in (input_values, input_features, audio_features) if x is not None]
    if len(given) != 1:
        raise ValueError("Pass the audio as exactly one of input_values (waveforms), input_features (log-mels) or "
                         f"audio_features (cached encoder outputs); got {len(given)}.")
    if audio_features is not None:
        return {"audio_features": audio_features, "audio_attention_mask": audio_attention_mask}
    return {"input_values": given[0], "audio_attention_mask": audio_attention_mask}


def _order_tokens(embeds, mask, labels=None, padding_side="right"):
    """
    Moves each row's padding to one side, keeping the order of its real tokens: for a decoder-only LLM the sequence
    `[soft prompt; prompt; target]` must not have holes, since positions count tokens.
    """
    key = (mask == 0).long() if padding_side == "right" else mask.long()
    order = key.argsort(dim=1, stable=True)
    embeds = embeds.gather(1, order[..., None].expand_as(embeds))
    labels = labels.gather(1, order) if labels is not None else None
    return embeds, mask.gather(1, order), labels


class MintForConditionalGeneration(MintPreTrainedModel, GenerationMixin):
    """
    MINT stage 2 (section 2.3): instruction-aware Bridge-Net and a frozen LLM. The instruction enters the Q-Former
    with the queries (`qformer_input_ids`) and the LLM after the soft prompt (`input_ids`); the query outputs are
    projected by `language_projection` and prepended to the LLM's input embeddings.
    """

    _keys_to_ignore_on_load_unexpected = [r"^(audio_proj|text_proj|alm_head|atg_head|temp)"]
    accepts_loss_kwargs = True  # the Trainer passes `num_items_in_batch` (see `_lm_loss`)
    _pretrained_components = ("audio_model", "language_model")
    _keep_in_fp32_modules_strict = MintPreTrainedModel._keep_in_fp32_modules_strict + ["language_projection"]

    def __init__(self, config: MintConfig):
        super().__init__(config)
        self._init_bridge(config)
        self.language_projection = nn.Linear(config.qformer_config.hidden_size, config.text_config.hidden_size)
        lm_class = AutoModelForCausalLM if config.use_decoder_only_language_model else AutoModelForSeq2SeqLM
        self.language_model = lm_class.from_config(config.text_config)
        # `labels` are the targets themselves, every one predicted (`_lm_loss` aligns the logits), so the Trainer must
        # count all of them for `num_items_in_batch`; the default "ForConditionalGeneration" loss type would make it
        # apply the causal-LM rule and drop each row's first label.
        self.loss_type = None
        self.post_init()
        self._freeze()

    def _frozen_module_names(self) -> list[str]:
        return super()._frozen_module_names() + (["language_model"] if self.config.freeze_language_model else [])

    def get_input_embeddings(self) -> nn.Module:
        return self.language_model.get_input_embeddings()

    def get_output_embeddings(self) -> nn.Module:
        return self.language_model.get_output_embeddings()

    def get_audio_features(
        self,
        input_values: torch.Tensor | None = None,
        qformer_input_ids: torch.LongTensor | None = None,
        qformer_attention_mask: torch.Tensor | None = None,
        audio_attention_mask: torch.Tensor | None = None,
        input_features: torch.Tensor | None = None,
        audio_features: torch.Tensor | None = None,
    ) -> BaseModelOutputWithPooling:
        """
        The soft audio prompt: instruction-aware query outputs projected to the LLM width (section 2.3). The audio
        comes as one of `input_values`, `input_features` or cached `audio_features`.

        Returns a `BaseModelOutputWithPooling` whose `pooler_output` is `(batch, num_query_tokens, llm_hidden_size)`
        and `last_hidden_state` the Q-Former output over `[queries; instruction]`.
        """
        audio_embeds, audio_mask = self.encode_audio(
            **_audio_kwargs(input_values, input_features, audio_features, audio_attention_mask))
        if qformer_input_ids is not None and qformer_attention_mask is None:
            qformer_attention_mask = torch.ones_like(qformer_input_ids)
        qformer_output = self.query_forward(audio_embeds, audio_mask, qformer_input_ids, qformer_attention_mask)
        queries = qformer_output.last_hidden_state[:, : self.config.num_query_tokens]
        return BaseModelOutputWithPooling(
            last_hidden_state=qformer_output.last_hidden_state, pooler_output=self.language_projection(queries)
        )

    def _llm_inputs(self, soft_prompt, input_ids, attention_mask):
        """`[soft prompt; prompt]` embeddings and mask for the LLM."""
        embeds = self.get_input_embeddings()(input_ids)
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        soft_mask = torch.ones(soft_prompt.shape[:2], dtype=attention_mask.dtype, device=attention_mask.device)
        return (torch.cat([soft_prompt.to(embeds.dtype), embeds], dim=1),
                torch.cat([soft_mask, attention_mask], dim=1))

    def forward(
        self,
        input_values: torch.Tensor | None = None,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        qformer_input_ids: torch.LongTensor | None = None,
        qformer_attention_mask: torch.Tensor | None = None,
        audio_attention_mask: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        input_features: torch.Tensor | None = None,
        audio_features: torch.Tensor | None = None,
        num_items_in_batch: int | torch.Tensor | None = None,
        **kwargs,
    ) -> MintForConditionalGenerationOutput:
        """
        Args:
            input_values / input_features: the audio (one of them), as the processor returns it.
            input_ids `(batch, prompt_length)`, attention_mask: the instruction in the LLM's vocabulary.
            qformer_input_ids, qformer_attention_mask `(batch, instruction_length)`: the same instruction in the
                Q-Former's vocabulary (instruction-aware extraction).
            labels `(batch, target_length)`: target tokens in the LLM's vocabulary, -100 on padding. The LM loss is
                computed on them only; for a decoder-only LLM they are appended after the prompt.
            num_items_in_batch: target-token count of the whole (accumulated) batch, passed by the Trainer.
        """
        soft_prompt = self.get_audio_features(
            input_values, qformer_input_ids, qformer_attention_mask, audio_attention_mask, input_features,
            audio_features,
        ).pooler_output
        embeds, mask = self._llm_inputs(soft_prompt, input_ids, attention_mask)
        if self.config.use_decoder_only_language_model:
            outputs, logits, targets = self._decoder_only_forward(embeds, mask, labels, **kwargs)
        else:
            # T5 builds its decoder inputs from `labels`; the loss is computed below, over the same tokens.
            outputs = self.language_model(inputs_embeds=embeds, attention_mask=mask, labels=labels, **kwargs)
            logits, targets = outputs.logits, labels
        loss = _lm_loss(logits, targets, num_items_in_batch) if labels is not None else None
        return MintForConditionalGenerationOutput(
            loss=loss, logits=outputs.logits, soft_prompt=soft_prompt, language_model_outputs=outputs
        )

    def _decoder_only_forward(self, embeds, mask, labels, **kwargs):
        """Runs `[soft prompt; prompt; target]` without holes; returns the outputs and the aligned logits/targets."""
        full_labels = None
        if labels is not None:
            target_embeds = self.get_input_embeddings()(labels.clamp(min=0))
            full_labels = torch.cat([torch.full(mask.shape, -100, device=labels.device, dtype=labels.dtype),
                                     labels], dim=1)
            embeds = torch.cat([embeds, target_embeds], dim=1)
            mask = torch.cat([mask, (labels != -100).long()], dim=1)
        embeds, mask, full_labels = _order_tokens(embeds, mask, full_labels, padding_side="right")
        outputs = self.language_model(inputs_embeds=embeds, attention_mask=mask, **kwargs)
        targets = full_labels[:, 1:] if full_labels is not None else None
        return outputs, outputs.logits[:, :-1], targets

    @torch.no_grad()
    def generate(
        self,
        input_values: torch.Tensor | None = None,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        qformer_input_ids: torch.LongTensor | None = None,
        qformer_attention_mask: torch.Tensor | None = None,
        audio_attention_mask: torch.Tensor | None = None,
        input_features: torch.Tensor | None = None,
        audio_features: torch.Tensor | None = None,
        **generate_kwargs,
    ) -> torch.LongTensor:
        """
        Generates text for each clip (captioning, open answers), batched. The padding masks make a clip's output
        independent of the other clips in its batch. Returns the LLM's generated ids `(batch, new_tokens)` (for a
        seq2seq LLM they start with the decoder start token); decode them with `processor.batch_decode`.
        """
        soft_prompt = self.get_audio_features(
            input_values, qformer_input_ids, qformer_attention_mask, audio_attention_mask, input_features,
            audio_features,
        ).pooler_output
        if input_ids is None:  # no prompt: the soft prompt alone (plus BOS for a decoder-only LLM)
            start = self.config.text_config.bos_token_id if self.config.use_decoder_only_language_model else None
            input_ids = torch.full((soft_prompt.shape[0], int(start is not None)), start or 0,
                                   dtype=torch.long, device=soft_prompt.device)
        embeds, mask = self._llm_inputs(soft_prompt, input_ids, attention_mask)
        if self.config.use_decoder_only_language_model:
            embeds, mask, _ = _order_tokens(embeds, mask, padding_side="left")
        return self.language_model.generate(inputs_embeds=embeds, attention_mask=mask, **generate_kwargs)

    @torch.no_grad()
    def score_candidates(
        self,
        candidate_ids: torch.LongTensor,
        candidate_attention_mask: torch.Tensor,
        input_values: torch.Tensor | None = None,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        qformer_input_ids: torch.LongTensor | None = None,
        qformer_attention_mask: torch.Tensor | None = None,
        audio_attention_mask: torch.Tensor | None = None,
        input_features: torch.Tensor | None = None,
        audio_features: torch.Tensor | None = None,
        candidate_chunk_size: int | None = None,
    ) -> torch.Tensor:
        """
        Classification by vocabulary ranking (section 4.1): the summed log-likelihood of each candidate label under
        the LLM, given the clip and the prompt.

        The audio encoder, Bridge-Net and (for a seq2seq LLM) the LLM encoder run once per clip; for a decoder-only
        LLM the prefix runs once and its key/value cache is shared by the candidates. Only the LLM decoder runs per
        candidate, in chunks of `candidate_chunk_size` candidates (all at once by default).

        Args:
            candidate_ids `(num_candidates, candidate_length)`, candidate_attention_mask: the candidate labels in the
                LLM's vocabulary, as `processor.tokenize_candidates` returns them (with the LLM's end-of-sequence
                token, so a label is not rewarded for being the prefix of a longer one, as in LAVIS).
            The other arguments are those of [`forward`].

        Returns:
            `(batch, num_candidates)` summed log-likelihoods: argmax for single-label classification; thresholds
            (or a softmax over the candidates) for multi-label.
        """
        if candidate_ids.shape[0] == 0:
            raise ValueError("score_candidates needs at least one candidate label, got an empty list.")
        soft_prompt = self.get_audio_features(
            input_values, qformer_input_ids, qformer_attention_mask, audio_attention_mask, input_features,
            audio_features,
        ).pooler_output
        embeds, mask = self._llm_inputs(soft_prompt, input_ids, attention_mask)
        if self.config.use_decoder_only_language_model:
            embeds, mask, _ = _order_tokens(embeds, mask, padding_side="left")
            prefix = self.language_model(inputs_embeds=embeds, attention_mask=mask, use_cache=True,
                                         position_ids=(mask.cumsum(-1) - 1).clamp(min=0))
            score_chunk = partial(self._decoder_only_candidate_scores, prefix, mask)
        else:
            encoder_hidden = self.language_model.get_encoder()(inputs_embeds=embeds, attention_mask=mask)[0]
            score_chunk = partial(self._seq2seq_candidate_scores, encoder_hidden, mask)
        chunk = candidate_chunk_size or candidate_ids.shape[0]
        return torch.cat(
            [score_chunk(candidate_ids[i : i + chunk], candidate_attention_mask[i : i + chunk])
             for i in range(0, candidate_ids.shape[0], chunk)],
            dim=1,
        )

    def _seq2seq_candidate_scores(self, encoder_hidden, mask, candidate_ids, candidate_mask):
        """Seq2seq LLM: the encoder ran once per clip; the decoder scores every (clip, candidate) pair."""
        batch, n = encoder_hidden.shape[0], candidate_ids.shape[0]
        labels = candidate_ids.masked_fill(candidate_mask == 0, -100).repeat(batch, 1)
        logits = self.language_model(
            encoder_outputs=(encoder_hidden.repeat_interleave(n, dim=0),),
            attention_mask=mask.repeat_interleave(n, dim=0),
            labels=labels,
        ).logits
        return _sequence_log_likelihood(logits, labels).view(batch, n)

    def _decoder_only_candidate_scores(self, prefix, mask, candidate_ids, candidate_mask):
        """Decoder-only LLM: the prefix ran once; its key/value cache is repeated for the candidates."""
        batch, n = mask.shape[0], candidate_ids.shape[0]
        cache = copy.deepcopy(prefix.past_key_values)
        cache.batch_repeat_interleave(n)
        ids, cmask = candidate_ids.repeat(batch, 1), candidate_mask.repeat(batch, 1)
        positions = mask.sum(-1, keepdim=True).repeat_interleave(n, dim=0) + torch.arange(ids.shape[1],
                                                                                          device=ids.device)
        # transformers 5.x renames `past_key_values` to `cache` model by model.
        cache_kwarg = "cache" if "cache" in inspect.signature(self.language_model.forward).parameters else "past_key_values"
        logits = self.language_model(
            input_ids=ids,
            attention_mask=torch.cat([mask.repeat_interleave(n, dim=0), cmask], dim=1),
            position_ids=positions,
            **{cache_kwarg: cache},
        ).logits
        # The first candidate token is predicted by the prefix's last position, token t+1 by candidate token t.
        logits = torch.cat([prefix.logits[:, -1:].repeat_interleave(n, dim=0), logits[:, :-1]], dim=1)
        return _sequence_log_likelihood(logits, ids.masked_fill(cmask == 0, -100)).view(batch, n)


def _lm_loss(logits: torch.Tensor, labels: torch.Tensor, num_items_in_batch=None) -> torch.Tensor:
    """
    Token cross-entropy over the targets (-100 ignored), summed and divided by `num_items_in_batch` when the Trainer
    gives it (the target-token count of the whole accumulated batch, so that gradient accumulation reproduces the
    larger batch's update), else by this batch's target-token count.
    """
    total = F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=-100, reduction="sum")
    count = num_items_in_batch if num_items_in_batch is not None else (labels != -100).sum()
    return total / count


def _sequence_log_likelihood(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Summed log-probability of `labels` (-100 ignored) under `logits` aligned position by position."""
    logprobs = logits.float().log_softmax(dim=-1)
    token = logprobs.gather(-1, labels.clamp(min=0)[..., None]).squeeze(-1)
    return (token * (labels != -100)).sum(dim=-1)


def register_mint_auto_classes() -> None:
    """Registers MINT with the transformers Auto classes (done on import)."""
    AutoModel.register(MintConfig, MintForConditionalGeneration, exist_ok=True)
    AutoModelForSpeechSeq2Seq.register(MintConfig, MintForConditionalGeneration, exist_ok=True)
    AutoModelForPreTraining.register(MintConfig, MintForPreTraining, exist_ok=True)


MINT_AUTO_MAP = {
    "AutoConfig": "configuration_mint.MintConfig",
    "AutoModel": "modeling_mint.MintForConditionalGeneration",
    "AutoModelForSpeechSeq2Seq": "modeling_mint.MintForConditionalGeneration",
    "AutoModelForPreTraining": "modeling_mint.MintForPreTraining",
}
MintForConditionalGeneration.register_for_auto_class("AutoModelForSpeechSeq2Seq")
MintForPreTraining.register_for_auto_class("AutoModelForPreTraining")
register_mint_auto_classes()

# Importing the model registers MINT's pipelines; `save_pretrained` copies their module beside the model's.
try:
    from .pipelines_mint import custom_pipelines
except ImportError:  # installed as top-level modules
    from pipelines_mint import custom_pipelines


__all__ = [
    "MintForConditionalGeneration",
    "MintForPreTraining",
    "MintPreTrainedModel",
    "MintQFormerModel",
    "bert_to_qformer_state_dict",
    "atg_attention_mask",
    "mine_hard_negatives",
]
