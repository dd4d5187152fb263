# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""The frozen audio encoder of MINT (section 2.1): building it from its config and running it batch-invariantly.

MINT promises that a clip's features are the same alone and in any padded batch. Two transformers encoders break
that with padding, and are run here so that they do not:

* data2vec-audio's positional embedding is a stack of convolutions; transformers zeroes the padded frames before
  the first one only, so padding leaks into a clip's last frames from the second on. A forward pre-hook on each
  layer of the stack zeroes the padded frames again.
* wav2vec2 / HuBERT with `feat_extract_norm="group"` (wav2vec2-base, HuBERT-base) normalise the first convolution's
  output over the whole padded length. Padded batches of such encoders are run one clip at a time, unpadded, and
  the outputs padded afterwards.
"""

import contextlib

import torch
from torch import nn
from transformers import AutoModel, PreTrainedModel, WhisperConfig
from transformers.models.whisper.modeling_whisper import WhisperEncoder


def build_audio_encoder(audio_config) -> PreTrainedModel:
    """The audio encoder for `audio_config`: Whisper's encoder for a Whisper config, else `AutoModel`'s base model."""
    if isinstance(audio_config, WhisperConfig):
        encoder = WhisperEncoder._from_config(audio_config)
    else:
        encoder = AutoModel.from_config(audio_config)
    _mask_padding_between_positional_convs(encoder)
    return encoder


def _mask_padding_between_positional_convs(audio_model: nn.Module) -> None:
    """Zeroes the padded frames before every layer of data2vec-audio's positional convolution stack."""
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
    The padding mask `(batch, num_frames)` of the encoder's output frames, from the input-level mask.

    wav2vec2-family models know their convolutional downsampling; for others (Whisper: 2x) the input mask is
    subsampled by the ratio of input to output length.
    """
    if hasattr(audio_model, "_get_feature_vector_attention_mask"):
        return audio_model._get_feature_vector_attention_mask(num_frames, attention_mask).long()
    stride = max(attention_mask.shape[1] // num_frames, 1)
    return attention_mask[:, ::stride][:, :num_frames].long()


def _normalises_over_padding(audio_model: nn.Module) -> bool:
    return getattr(audio_model.config, "feat_extract_norm", None) == "group"


def run_audio_encoder(audio_model: PreTrainedModel, audio: torch.Tensor, attention_mask: torch.Tensor,
                      layers: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """
    Runs the encoder on `audio` (`(batch, samples)` waveforms or `(batch, n_mels, frames)` log-mels) with its padding
    mask `(batch, samples | frames)`; returns the hidden states at `layers` concatenated along the feature dimension,
    `(batch, num_frames, hidden * len(layers))`, and their frame mask `(batch, num_frames)`.
    """
    padded = bool((attention_mask == 0).any())
    if padded and _normalises_over_padding(audio_model):
        return _run_one_by_one(audio_model, audio, attention_mask, layers)
    with _padding_mask_for_hooks(audio_model, attention_mask):
        output = audio_model(audio.to(audio_model.dtype), attention_mask=attention_mask,
                             output_hidden_states=layers != [-1])
    # The last of `hidden_states` is `last_hidden_state` (after the final LayerNorm) for every supported encoder.
    hidden = output.last_hidden_state if layers == [-1] else torch.cat(
        [output.hidden_states[layer] for layer in layers], dim=-1)
    return hidden, audio_frame_mask(audio_model, attention_mask, hidden.shape[1])


def _run_one_by_one(audio_model, audio, attention_mask, layers):
    """Each clip alone, without its padding; outputs zero-padded to the batch's frame count."""
    rows = [run_audio_encoder(audio_model, clip[None, : int(n)], mask[None, : int(n)], layers)[0][0]
            for clip, mask, n in zip(audio, attention_mask, attention_mask.sum(-1))]
    frames = int(audio_model._get_feat_extract_output_lengths(torch.tensor(attention_mask.shape[1])))
    hidden = rows[0].new_zeros(len(rows), frames, rows[0].shape[-1])
    for i, row in enumerate(rows):
        hidden[i, : row.shape[0]] = row
    return hidden, audio_frame_mask(audio_model, attention_mask, frames)


# The keyword under which the frozen encoder's cached outputs `(batch, frames, hidden)` travel (feature cache,
# collator, evaluation, the model's `encode_audio`).
ENCODER_FEATURES_KEY = "audio_encoder_features"
