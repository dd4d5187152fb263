# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""MINT configuration: the Bridge-Net Q-Former config and the composite `MintConfig`.

Paper: "MINT: Boosting Audio-Language Model via Multi-Target Pre-Training and Instruction Tuning" (Zhao et al.).
Section numbers in docstrings refer to it.
"""

from huggingface_hub.dataclasses import strict
from transformers import AutoConfig
from transformers.configuration_utils import PreTrainedConfig, SubConfigSpec
from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
from transformers.models.instructblip.configuration_instructblip import InstructBlipQFormerConfig


STAGE1_OBJECTIVES = ("alc", "alm", "atg")
# How ALM picks its negatives (objectives_mint's `ALM_NEGATIVE_SAMPLING`; the config module imports no model code).
ALM_NEGATIVE_SAMPLING = ("sample", "hardest", "random")
# Augmentations of the encoder features in training, with the range of each setting.
AUDIO_FEATURE_AUGMENTATIONS = {"time_mask": "[0, 1)", "crop": "(0, 1]", "noise": ">= 0"}

# FlanT5-XL dimensions (section 3.2: "we use FlanT5xl model as LLMs").
FLAN_T5_XL_KWARGS = {
    "d_model": 2048,
    "d_kv": 64,
    "d_ff": 5120,
    "num_layers": 24,
    "num_decoder_layers": 24,
    "num_heads": 32,
    "feed_forward_proj": "gated-gelu",
    "vocab_size": 32128,
    "tie_word_embeddings": False,
    "decoder_start_token_id": 0,
    "pad_token_id": 0,
    "eos_token_id": 1,
}


def check_temperature(init: float, value_range: list[float] | tuple[float, float]) -> None:
    """A `ValueError` unless `value_range` is `[min, max]` with 0 < min <= max and `init` lies in it."""
    low, high = value_range if len(value_range) == 2 else (0, -1)
    if not 0 < low <= high:
        raise ValueError(f"temperature_range must be [min, max] with 0 < min <= max, got {list(value_range)}.")
    if not low <= init <= high:
        raise ValueError(f"temperature_init {init} lies outside temperature_range {list(value_range)}.")


def check_audio_feature_augmentation(augmentation: dict[str, float] | None) -> None:
    """A `ValueError` naming what in `augmentation` is unknown (see `AUDIO_FEATURE_AUGMENTATIONS`) or out of range."""
    augmentation = augmentation or {}
    unknown = sorted(set(augmentation) - set(AUDIO_FEATURE_AUGMENTATIONS))
    if unknown:
        raise ValueError(f"audio_feature_augmentation has unknown keys {unknown}; expected some of "
                         f"{list(AUDIO_FEATURE_AUGMENTATIONS)}.")
    time_mask, crop, noise = (augmentation.get(k, d) for k, d in (("time_mask", 0.0), ("crop", 1.0), ("noise", 0.0)))
    if not (0 <= time_mask < 1 and 0 < crop <= 1 and noise >= 0):
        ranges = ", ".join(f"{k} {r}" for k, r in AUDIO_FEATURE_AUGMENTATIONS.items())
        raise ValueError(f"audio_feature_augmentation {augmentation} is out of range; expected {ranges}.")


def check_cross_attention_frequency(frequency: int) -> None:
    """A `ValueError` unless `frequency` (the Q-Former's `cross_attention_frequency`) is an integer of at least 1."""
    if isinstance(frequency, bool) or not isinstance(frequency, int) or frequency < 1:
        raise ValueError(
            "cross_attention_frequency must be an integer of at least 1 (cross-attention to the audio in every "
            f"layer; 2, BLIP-2's, in every second one), got {frequency!r}."
        )


@strict
class MintQFormerConfig(InstructBlipQFormerConfig):
    r"""
    Configuration of Bridge-Net's Q-Former (section 2.1): a BERT-base encoder whose layers are shared by the learnable
    queries and the text, with cross-attention from the queries to the audio features every
    `cross_attention_frequency` layers (every 2nd layer, as in BLIP-2).

    The defaults are BERT-base's, with the vocabulary of `bert-base-uncased` plus one `[DEC]` token (id 30522) that
    starts the text in audio-grounded text generation (section 2.2). `encoder_hidden_size` is set by [`MintConfig`]
    from the audio encoder's hidden size.

    Fields are those of [`InstructBlipQFormerConfig`], whose Q-Former module MINT reuses.
    """

    model_type = "mint_qformer"
    base_config_key = "qformer_config"

    vocab_size: int = 30523
    encoder_hidden_size: int = 768
    dec_token_id: int = 30522

    def validate_architecture(self):
        super().validate_architecture()
        check_cross_attention_frequency(self.cross_attention_frequency)

    @classmethod
    def from_bert_config(cls, bert_config, encoder_hidden_size: int, **overrides) -> "MintQFormerConfig":
        """The Q-Former shaped like `bert_config` (a `BertConfig`), its vocabulary grown by `[DEC]`."""
        fields = ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "hidden_act",
                  "hidden_dropout_prob", "attention_probs_dropout_prob", "max_position_embeddings", "layer_norm_eps",
                  "pad_token_id")
        values = {name: getattr(bert_config, name) for name in fields}
        values.update(vocab_size=bert_config.vocab_size + 1, dec_token_id=bert_config.vocab_size,
                      encoder_hidden_size=encoder_hidden_size, **overrides)
        return cls(**values)


@strict
class MintConfig(PreTrainedConfig):
    r"""
    Configuration of a MINT model: frozen audio encoder -> Bridge-Net (Q-Former + learnable queries) -> linear
    projection -> frozen LLM (sections 2.1-2.3).

    Args:
        audio_config (`dict` or `PreTrainedConfig`, *optional*):
            Any transformers audio encoder config. Defaults to data2vec-audio base (section 3.2). Whisper (its encoder
            is used), wav2vec2 and HuBERT configs also work.
        qformer_config (`dict` or [`MintQFormerConfig`], *optional*):
            Bridge-Net's Q-Former. Its `encoder_hidden_size` is set to the size of the audio features it reads
            (`audio_feature_size`).
        text_config (`dict` or `PreTrainedConfig`, *optional*):
            The LLM. Defaults to T5 with FlanT5-XL dimensions; a decoder-only causal LM (OPT, GPT-2, Llama, ...) also
            works, as in BLIP-2.
        audio_feature_layer (`int` or `list[int]`, defaults to -1):
            Which hidden states of the audio encoder Bridge-Net reads, as LLaVA's `vision_feature_layer`: an index into
            the encoder's hidden states (0 is the input to its first Transformer layer, -1 its output, the paper's
            setting), or a list of them, concatenated along the feature dimension. The paper reads the encoder's
            output (section 2.1); BLIP-2 reads its ViT's second-to-last layer. Lower layers keep more of the timbre.
        num_query_tokens (`int`, defaults to 32):
            Number of learnable query embeddings (section 3.2).
        audio_token_id (`int`, *optional*):
            The LLM-vocabulary id of the audio placeholder token: the processor puts `num_query_tokens` of them in
            front of the instruction and the model scatters the projected queries into their places (section 2.3).
            `mint.hub.assemble_mint` sets it from the processor.
        audio_text_hidden_size (`int`, defaults to 256):
            Size of the contrastive embedding space of ALC (BLIP-2's `embed_dim`; the paper does not give it).
        temperature_init (`float`, defaults to 0.07):
            Initial value of the learnable ALC temperature (BLIP-2's value; the paper does not give it).
        temperature_range (`list[float]`, defaults to `[0.001, 0.5]`):
            The range the ALC temperature is clamped to (LAVIS BLIP-2 clamps it to [0.001, 0.5]).
        learn_temperature (`bool`, defaults to `True`):
            Whether the ALC temperature is trained; `False` keeps it at its value (`temperature_init` in a new model).
        label_smoothing (`float`, defaults to 0.1):
            Label smoothing of the ALC and ATG cross-entropies (LAVIS BLIP-2's value).
        max_text_length (`int`, defaults to 30):
            Maximum number of text tokens (section 3.2).
        min_audio_seconds / max_audio_seconds (`float`, defaults to 3.0 / 30.0):
            Training range of clip lengths (section 3.2); the processor applies its length policy with them.
        stage1_objectives (`list[str]`, defaults to `["alc", "alm", "atg"]`):
            Which stage-1 objectives are trained, for the ablations of Table 5 (ALC, ALC+ATG, ALC+ALM, all three).
        alm_negative_sampling (`str`, defaults to `"sample"`):
            How ALM picks a negative among the non-positives: `"sample"` draws it with probability
            softmax(similarity) (BLIP-2), `"hardest"` takes the most similar one (deterministic), `"random"` draws it
            uniformly (no mining).
        alm_batch_size (`int`, *optional*):
            Only the first `alm_batch_size` pairs of each (per-process) batch feed ALM, which costs three Q-Former
            passes per pair; their negatives still come from the whole batch. All pairs when unset.
        audio_feature_augmentation (`dict[str, float]`, *optional*):
            Augmentation of the encoder features Bridge-Net reads, in training only (`model.training`; evaluation and
            inference never change): `time_mask` (hide a random span of up to that fraction of each clip's frames
            from the cross-attention), `crop` (keep a random contiguous crop of that fraction to all of its frames)
            and `noise` (add Gaussian noise of that many times the clip's feature standard deviation). The paper
            trains on raw audio and does not augment.
        freeze_audio_encoder (`bool`, defaults to `True`):
            Keep the audio encoder frozen and in eval mode (section 2).
        freeze_language_model (`bool`, defaults to `True`):
            Keep the LLM frozen and in eval mode (section 2.3). Set to `False` to train it, e.g. for a small LLM that
            has no pretrained weights.
        base_models (`dict[str, str]`, *optional*):
            Folders of the pretrained `audio_model` and `language_model` for a checkpoint that does not store them
            (`mint.hub.save_for_hub(trained_parts_only=True)`; a stage-1 model from `mint.hub.assemble_mint`, for
            its LLM): loading takes their weights from there.
        base_model_hashes (`dict[str, str]`, *optional*):
            The SHA-256 of each base folder's safetensors files (`checkpoint_mint.folder_sha256`), recorded by
            `mint.hub.save_for_hub(trained_parts_only=True)`: loading refuses a base folder whose weights changed.
    """

    model_type = "mint"
    sub_configs_defaults = {
        "audio_config": SubConfigSpec(config_class=AutoConfig, model_type="data2vec-audio"),
        "qformer_config": MintQFormerConfig,
        "text_config": SubConfigSpec(config_class=AutoConfig, model_type="t5", init_kwargs=FLAN_T5_XL_KWARGS),
    }

    audio_config: dict | PreTrainedConfig | None = None
    qformer_config: dict | PreTrainedConfig | None = None
    text_config: dict | PreTrainedConfig | None = None
    audio_feature_layer: int | list[int] = -1
    num_query_tokens: int = 32
    audio_token_id: int | None = None
    audio_text_hidden_size: int = 256
    temperature_init: float = 0.07
    temperature_range: list[float] | tuple[float, float] = (0.001, 0.5)
    learn_temperature: bool = True
    label_smoothing: float = 0.1
    max_text_length: int = 30
    min_audio_seconds: float = 3.0
    max_audio_seconds: float = 30.0
    stage1_objectives: list[str] | tuple[str, ...] = STAGE1_OBJECTIVES
    alm_negative_sampling: str = "sample"
    alm_batch_size: int | None = None
    audio_feature_augmentation: dict[str, int | float] | None = None
    freeze_audio_encoder: bool = True
    freeze_language_model: bool = True
    base_models: dict[str, str] | None = None
    base_model_hashes: dict[str, str] | None = None
    initializer_range: float = 0.02
    tie_word_embeddings: bool = True

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        self.qformer_config.encoder_hidden_size = self.audio_feature_size
        self.stage1_objectives = list(self.stage1_objectives)
        self.temperature_range = list(self.temperature_range)

    def validate_architecture(self):
        super().validate_architecture()
        unknown = set(self.stage1_objectives) - set(STAGE1_OBJECTIVES)
        if unknown or not self.stage1_objectives:
            raise ValueError(
                f"stage1_objectives must be a non-empty subset of {list(STAGE1_OBJECTIVES)}, got "
                f"{self.stage1_objectives}"
            )
        if "alm" in self.stage1_objectives and "alc" not in self.stage1_objectives:
            raise ValueError("ALM mines its hard negatives from the ALC similarities: 'alm' needs 'alc' as well.")
        if self.alm_negative_sampling not in ALM_NEGATIVE_SAMPLING:
            raise ValueError(f"alm_negative_sampling must be one of {list(ALM_NEGATIVE_SAMPLING)}, got "
                             f"{self.alm_negative_sampling!r}.")
        if self.alm_batch_size is not None and self.alm_batch_size < 1:
            raise ValueError(f"alm_batch_size must be at least 1 (or None: the whole batch), got "
                             f"{self.alm_batch_size}.")
        check_temperature(self.temperature_init, self.temperature_range)
        check_audio_feature_augmentation(self.audio_feature_augmentation)
        check_cross_attention_frequency(self.qformer_config.cross_attention_frequency)
        layers = self.audio_feature_layers
        depth = self.audio_config.num_hidden_layers
        if not layers or any(not -depth - 1 <= layer <= depth for layer in layers):
            raise ValueError(
                f"audio_feature_layer must index the audio encoder's {depth + 1} hidden states (-{depth + 1} to "
                f"{depth}), or be a non-empty list of such indices; got {self.audio_feature_layer}."
            )
        if not 0 < self.min_audio_seconds <= self.max_audio_seconds:
            raise ValueError(
                f"Expected 0 < min_audio_seconds <= max_audio_seconds, got {self.min_audio_seconds} and "
                f"{self.max_audio_seconds}."
            )

    @property
    def audio_feature_layers(self) -> list[int]:
        """`audio_feature_layer` as a list."""
        layer = self.audio_feature_layer
        return [layer] if isinstance(layer, int) else list(layer)

    @property
    def audio_feature_size(self) -> int:
        """Width of the audio features Bridge-Net reads: the encoder's hidden size times the number of layers."""
        return self.audio_config.hidden_size * len(self.audio_feature_layers)

    @property
    def use_decoder_only_language_model(self) -> bool:
        return self.text_config.model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES


MintConfig.register_for_auto_class()
AutoConfig.register("mint", MintConfig, exist_ok=True)
AutoConfig.register("mint_qformer", MintQFormerConfig, exist_ok=True)

__all__ = ["MintConfig", "MintQFormerConfig", "check_audio_feature_augmentation", "check_temperature"]
