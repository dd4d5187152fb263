# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""The frozen audio encoder of MINT (section 2.1): the audio inputs a MINT model takes, building the encoder from its
config, and running it batch-invariantly.

MINT promises that a clip's features are the same alone and in any padded batch. Two transformers encoders break
that with padding, and are run here so that they do not:

* data2vec-audio's positional embedding is a stack of convolutions; transformers zeroes the padded frames before
  the first one only, so padding leaks into a clip's last frames from the second on. For each call, forward
  pre-hooks given the batch's frame mask zero the padded frames again before every layer of the stack.
* wav2vec2 / HuBERT with `feat_extract_norm="group"` (wav2vec2-base, HuBERT-base) normalise the first convolution's
  output over the whole padded length. Padded batches of such encoders are run one clip at a time, unpadded, and
  the outputs padded afterwards.
"""

import contextlib
from collections.abc import Iterator
from functools import partial
from typing import Final, TypedDict

import torch
from torch import nn
from transformers import AutoModel, PreTrainedModel, WhisperConfig
from transformers.models.whisper.modeling_whisper import WhisperEncoder


class MintAudioKwargs(TypedDict, total=False):
    """
    The audio of a MINT call, as keyword arguments (the processor returns them under these names). Pass the audio once:
    under the encoder's own input name, or as the encoder's cached output.

    input_values (`torch.Tensor` of shape `(batch, samples)`):
        Waveforms, for wav2vec2-family encoders (data2vec-audio, wav2vec2, HuBERT).
    input_features (`torch.Tensor` of shape `(batch, n_mels, frames)`):
        Log-mel features, for Whisper's encoder.
    audio_encoder_features (`torch.Tensor` of shape `(batch, frames, audio_feature_size)`):
        The frozen encoder's features, as `get_audio_encoder_features` returns them and the feature cache stores
        them; the encoder does not run. Its keyword is [`ENCODER_FEATURES_KEY`].
    audio_attention_mask (`torch.Tensor` of shape `(batch, samples | frames)`):
        1 on real audio, 0 on padding, over the samples / mel frames of the raw audio or over the frames of
        `audio_encoder_features`. All ones when left out.
    """

    input_values: torch.Tensor
    input_features: torch.Tensor
    audio_encoder_features: torch.Tensor
    audio_attention_mask: torch.Tensor


# The keyword under which the frozen encoder's cached outputs `(batch, frames, hidden)` travel (feature cache,
# collator, evaluation, the model's `encode_audio`).
ENCODER_FEATURES_KEY: Final = "audio_encoder_features"


def split_audio_kwargs(kwargs: dict) -> tuple[MintAudioKwargs, dict]:
    """`kwargs` divided into the audio ([`MintAudioKwargs`]) and everything else."""
    audio = {name: value for name, value in kwargs.items() if name in MintAudioKwargs.__optional_keys__}
    return audio, {name: value for name, value in kwargs.items() if name not in audio}


def build_audio_encoder(audio_config) -> PreTrainedModel:
    """The audio encoder for `audio_config`: Whisper's encoder for a Whisper config, else `AutoModel`'s base model."""
    if isinstance(audio_config, WhisperConfig):
        return WhisperEncoder._from_config(audio_config)
    return AutoModel.from_config(audio_config)


def _zero_padding(frame_mask: torch.Tensor, module: nn.Module, args: tuple) -> tuple:
    """Forward pre-hook of a positional convolution: its input `(batch, hidden, frames)` with the padded frames 0."""
    hidden = args[0]
    return (hidden * frame_mask[:, None, : hidden.shape[-1]].to(hidden.dtype),)


@contextlib.contextmanager
def _padding_zeroed_between_positional_convs(audio_model: nn.Module, attention_mask: torch.Tensor) -> Iterator[None]:
    """While open, every layer of data2vec-audio's positional convolution stack sees this batch's padding as 0."""
    layers = getattr(getattr(getattr(audio_model, "encoder", None), "pos_conv_embed", None), "layers", None)
    if layers is None:
        yield
        return
    lengths = audio_model._get_feat_extract_output_lengths(attention_mask.sum(-1))
    frames = int(audio_model._get_feat_extract_output_lengths(torch.tensor(attention_mask.shape[1])))
    frame_mask = torch.arange(frames, device=attention_mask.device)[None] < lengths[:, None]
    handles = [layer.register_forward_pre_hook(partial(_zero_padding, frame_mask)) for layer in layers]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


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
    with _padding_zeroed_between_positional_convs(audio_model, attention_mask):
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


__all__ = [
    "ENCODER_FEATURES_KEY",
    "MintAudioKwargs",
    "audio_frame_mask",
    "build_audio_encoder",
    "run_audio_encoder",
    "split_audio_kwargs",
]
