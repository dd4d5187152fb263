# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""Opt-in speed levers for MINT, each a function that takes a model (or a batch) and leaves outputs unchanged, exactly
or within bf16 rounding where the arithmetic changes:

* [`autocast_bridge`]: Bridge-Net computes in bf16 under autocast; its weights, gradients and optimizer state stay fp32.
* [`compile_regions`]: regional `torch.compile`, each transformer layer of the LLM and the Q-Former on its own.
* [`split_by_length`] / [`length_grouped_loss`]: micro-batches of similar text length with their padding columns cut
  off, so that padded tokens do not reach the LLM; the loss is the batch's.

`benchmarks/benchmark_mint.py` measures each of them (`--bridge-autocast`, `--compile`, `--length-groups`), and
transformers' own static key/value cache for generation (`--static-cache`).
"""

import functools
from collections.abc import Mapping

import torch
from torch import nn
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.utils import ModelOutput

from audio_encoder_mint import ENCODER_FEATURES_KEY

# The padding mask of cached audio-encoder outputs (`ENCODER_FEATURES_KEY`, the frozen-feature cache).
CACHED_FEATURES_MASK = "audio_attention_mask"

# Bridge-Net's trainable modules (stage 2's projection, stage 1's heads), whichever the model has.
BRIDGE_MODULES = ("qformer", "language_projection", "audio_proj", "text_proj", "alm_head", "atg_head")

# Batch entries cut to the columns that hold a real token in some example: (the entry that marks real tokens, its
# padding value) -> the entries aligned with it. All of them must be there: raw audio, whose mask is over samples
# rather than encoder frames, is left whole.
TRIMMED_ENTRIES = {
    ("attention_mask", 0): ("input_ids", "attention_mask"),
    ("qformer_attention_mask", 0): ("qformer_input_ids", "qformer_attention_mask"),
    (CACHED_FEATURES_MASK, 0): (ENCODER_FEATURES_KEY, CACHED_FEATURES_MASK),
    ("labels", -100): ("labels",),
}


def _to_float32(value):
    """`value` with its half-precision floating tensors cast to fp32 (in tensors, tuples, lists and model outputs)."""
    if isinstance(value, torch.Tensor):
        return value.float() if value.dtype in (torch.bfloat16, torch.float16) else value
    if isinstance(value, ModelOutput):
        for key, item in value.items():
            value[key] = _to_float32(item)
        return value
    if isinstance(value, (tuple, list)):
        return type(value)(_to_float32(item) for item in value)
    return value


def _autocast_forward(module: nn.Module, dtype: torch.dtype):
    forward = module.forward

    @functools.wraps(forward)
    def autocast_forward(*args, **kwargs):
        device_type = next(module.parameters()).device.type
        with torch.autocast(device_type, dtype=dtype):
            return _to_float32(forward(*args, **kwargs))

    return autocast_forward


def autocast_bridge(model: nn.Module, dtype: torch.dtype = torch.bfloat16) -> nn.Module:
    """
    Runs Bridge-Net (the Q-Former, which takes the learnable queries, the projection to the LLM, and stage 1's heads)
    under `torch.autocast(dtype)`: its matrix products in `dtype`, its weights in fp32, so gradients, the optimizer
    state and the updates stay fp32 (mixed precision with fp32 master weights). The modules' outputs are cast back to
    fp32, so the code between them and the frozen parts see the dtypes they saw before. Applying it twice changes
    nothing more; [`remove_autocast_bridge`] undoes it.

    Args:
        model: a `MintForConditionalGeneration` or `MintForPreTraining` (or any model with those module names).
        dtype: the compute dtype, `torch.bfloat16` (or `torch.float16`).

    Returns:
        `model`, changed in place.
    """
    for name in BRIDGE_MODULES:
        module = getattr(model, name, None)
        if module is not None and "forward" not in vars(module):
            module.forward = _autocast_forward(module, dtype)
    return model


def remove_autocast_bridge(model: nn.Module) -> nn.Module:
    """Undoes [`autocast_bridge`]: Bridge-Net computes in its weights' dtype again. Returns `model`."""
    for name in BRIDGE_MODULES:
        module = getattr(model, name, None)
        if module is not None and "forward" in vars(module):
            del module.forward
    return model


# Entries of compiled code for the layers' shared forward: layer kinds x modes x shapes, with room to spare.
RECOMPILE_LIMIT = 64


def transformer_layers(module: nn.Module) -> list[tuple[str, nn.Module]]:
    """The outermost transformer layers in `module` (transformers' `GradientCheckpointingLayer`), with their names."""
    layers, skip = [], ()
    for name, child in module.named_modules():
        if skip and name.startswith(skip):
            continue
        if isinstance(child, GradientCheckpointingLayer):
            layers.append((name, child))
            skip = name + "."
    return layers


def compile_regions(
    model: nn.Module, parts: tuple[str, ...] = ("language_model", "qformer"), **compile_kwargs
) -> list[str]:
    """
    Regional `torch.compile`: compiles each transformer layer of the named parts in place (`nn.Module.compile`), rather
    than the whole model. The layers of a stack share their compiled code, so compile time is that of a layer or two,
    and what runs between the layers (masks, caches, MINT's own code) stays eager. Parameter and state-dict names are
    unchanged, so saving, loading and the optimizer see the same model.

    Every transformers layer runs through one function (`GradientCheckpointingLayer`'s forward), so each kind of layer
    (T5's first block, which computes the position bias, and the others; encoder and decoder; Q-Former layers with and
    without cross-attention), each mode (training, evaluation) and each new shape takes an entry in that function's
    cache of compiled code. Its limit (`torch._dynamo.config.recompile_limit`, 8 by default, beyond which calls run
    eagerly) is raised to at least `RECOMPILE_LIMIT`.

    Args:
        model: the MINT model.
        parts: names of the model's parts whose layers are compiled (`"audio_model"` may be added).
        compile_kwargs: passed to `torch.compile` (`backend`, `mode`, `fullgraph`, `dynamic`).

    Returns:
        The names of the compiled layers, e.g. `["language_model.encoder.block.0", ...]`.
    """
    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, RECOMPILE_LIMIT)
    compiled = []
    for part in parts:
        for name, layer in transformer_layers(getattr(model, part)):
            layer.compile(**compile_kwargs)
            compiled.append(f"{part}.{name}")
    return compiled


def _text_length(inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Tokens each example brings to the LLM: its prompt plus its targets."""
    length = (inputs["labels"] != -100).sum(-1)
    if "attention_mask" in inputs:
        length = length + inputs["attention_mask"].sum(-1)
    return length


def trim_padding(inputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """
    Cuts from a batch the leading and trailing columns that are padding in every example (prompt, instruction, targets,
    cached audio frames): what is left is what the examples occupy. Every example keeps its real tokens in order and
    the positions between them (decoder-only positions count real tokens only), so its outputs are unchanged. A
    decoder-only LLM's labels, aligned with its inputs, are cut with them. Returns a new dict.
    """
    trimmed, done = dict(inputs), set()
    for (name, padding), aligned in TRIMMED_ENTRIES.items():
        if not all(entry in trimmed for entry in aligned) or name in done:
            continue
        if name == "attention_mask" and trimmed.get("labels") is not None and \
                trimmed["labels"].shape == trimmed["input_ids"].shape:
            aligned = (*aligned, "labels")  # a decoder-only LLM's labels are aligned with its inputs
            done.add("labels")
        used = (trimmed[name] != padding).any(0).nonzero()
        start, stop = (int(used.min()), int(used.max()) + 1) if len(used) else (0, 1)
        for entry in aligned:
            trimmed[entry] = trimmed[entry][:, start:stop].contiguous()
    return trimmed


def split_by_length(inputs: Mapping[str, torch.Tensor], num_groups: int) -> list[dict[str, torch.Tensor]]:
    """
    Splits a stage-2 batch into `num_groups` micro-batches of examples of similar length (prompt plus target tokens,
    sorted), each cut to the columns its examples occupy ([`trim_padding`]).

    Args:
        inputs: the batch as the model takes it (`input_ids`, `attention_mask`, `labels` with -100 on padding, ...);
            every tensor has the examples along its first dimension.
        num_groups: how many micro-batches (at most one per example).

    Returns:
        The micro-batches, as dicts with the same entries.
    """
    order = _text_length(inputs).argsort(stable=True)
    return [trim_padding({k: v[rows] if isinstance(v, torch.Tensor) else v for k, v in inputs.items()})
            for rows in order.tensor_split(min(num_groups, len(order)))]


def length_grouped_loss(
    model: nn.Module, inputs: Mapping[str, torch.Tensor], num_groups: int,
    num_items_in_batch: int | torch.Tensor | None = None,
) -> torch.Tensor:
    """
    The batch's stage-2 LM loss computed over [`split_by_length`]'s micro-batches: each micro-batch's summed token
    loss divided by the batch's target-token count (`num_items_in_batch`, which the `Trainer` passes under gradient
    accumulation), summed. Same value and gradients as `model(**inputs).loss`, with less padding through the LLM.

    Returns:
        The loss, a scalar tensor (call `backward()` on it once).
    """
    if num_items_in_batch is None:
        num_items_in_batch = (inputs["labels"] != -100).sum()
    losses = [model(**group, num_items_in_batch=num_items_in_batch).loss
              for group in split_by_length(inputs, num_groups)]
    return torch.stack(losses).sum()


__all__ = [
    "autocast_bridge",
    "compile_regions",
    "length_grouped_loss",
    "remove_autocast_bridge",
    "split_by_length",
    "transformer_layers",
    "trim_padding",
]
