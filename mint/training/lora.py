# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""LoRA for MINT: `peft` adapters on the LLM's and the Q-Former's attention, and the LoRA run saved as a MINT folder
of its trained parts that `from_pretrained` reassembles."""

import os
from collections.abc import Sequence

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import load_file, save_file

from checkpoint_mint import stored_parts
from mint.hub import save_for_hub
from mint.training.checkpoints import check_finite_weights
from mint.training.recipe import MintRecipe
from modeling_mint import MintPreTrainedModel
from processing_mint import MintProcessor


# The attention projections LoRA adapts in each part (T5 `q`/`v`, OPT/Llama `q_proj`/`v_proj`, GPT-2 `c_attn`).
LORA_TARGET_PATTERNS = {"language_model": r"language_model\..*\.(q|v|q_proj|v_proj|c_attn)",
                        "qformer": r"qformer\..*\.attention\.(query|value)"}


def add_lora(model: MintPreTrainedModel, targets: Sequence[str] = ("language_model",), r: int = 8, alpha: int = 16,
             dropout: float = 0.05) -> PeftModel:
    """
    Wraps `model` with `peft` LoRA adapters on the attention projections of the LLM (`"language_model"`) and/or the
    Q-Former (`"qformer"`). Whatever the config does not freeze (Bridge-Net in stage 2) stays trainable and is saved
    with the adapters ([`save_lora_run`]); the frozen base weights are not saved, and `from_pretrained` of the saved
    folder puts them back with the adapters merged.
    """
    unknown = set(targets) - set(LORA_TARGET_PATTERNS)
    if unknown:
        raise ValueError(f"LoRA targets must be among {sorted(LORA_TARGET_PATTERNS)}, got {sorted(unknown)}.")
    trainable = [n for n, p in model.named_parameters() if p.requires_grad and not n.startswith(tuple(targets))]
    modules_to_save = sorted({n.split(".")[0] for n in trainable} - {"query_tokens", "temp"})
    config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout,
                        target_modules="|".join(f"({LORA_TARGET_PATTERNS[t]})" for t in targets),
                        modules_to_save=modules_to_save or None)
    peft_model = get_peft_model(model, config)
    for name, parameter in peft_model.base_model.model.named_parameters():
        if name in ("query_tokens", "temp"):  # bare parameters peft cannot list in modules_to_save
            parameter.requires_grad_(True)
    return peft_model


# Under LoRA, the file of a checkpoint that holds the trained parameters peft's adapter files leave out.
LORA_BARE_PARAMETERS_NAME = "mint_lora_bare_parameters.safetensors"


def lora_bare_parameters(model: torch.nn.Module) -> dict[str, torch.nn.Parameter]:
    """The trainable bare parameters of a peft-wrapped MINT model (`add_lora`'s `query_tokens`, `temp`); empty for
    a model without LoRA."""
    if not hasattr(model, "get_base_model"):
        return {}
    return {name: parameter for name, parameter in model.get_base_model().named_parameters(recurse=False)
            if parameter.requires_grad}


def save_lora_bare_parameters(model: torch.nn.Module, folder: str) -> None:
    """Writes `model`'s LoRA bare parameters ([`lora_bare_parameters`]) beside peft's adapter files in `folder`
    (`LORA_BARE_PARAMETERS_NAME`); nothing for a model without LoRA."""
    bare = lora_bare_parameters(model)
    if bare:
        save_file({name: p.detach().cpu().contiguous() for name, p in bare.items()},
                  os.path.join(folder, LORA_BARE_PARAMETERS_NAME))


def load_lora_bare_parameters(model: torch.nn.Module, checkpoint: str) -> None:
    """Puts the LoRA bare parameters of `checkpoint` ([`save_lora_bare_parameters`]) back into `model`; refuses a
    LoRA checkpoint without them, which would restart them from their initial values."""
    path = os.path.join(checkpoint, LORA_BARE_PARAMETERS_NAME)
    bare = lora_bare_parameters(model)
    if not bare:
        return
    if not os.path.isfile(path):
        raise ValueError(f"The LoRA checkpoint {checkpoint!r} has no {LORA_BARE_PARAMETERS_NAME} with the trained "
                         f"{sorted(bare)}; resuming from it would restart them from their initial values. Resume "
                         "from a checkpoint this version wrote, or start the run again.")
    with torch.no_grad():
        for name, value in load_file(path).items():
            bare[name].copy_(value)


def lora_base_folders(model: MintPreTrainedModel, folder: str | os.PathLike) -> dict[str, str]:
    """
    Where the frozen parts of a LoRA run come from when its output is reloaded: `folder` (the recipe's model) for a
    part it stores, else the base folder its config names. A part found in neither (the LLM of a stage-1 folder built
    from its config) is refused before training, since the adapters could not be reloaded onto it.

    Returns:
        Each frozen part's name (`"audio_model"`, `"language_model"`) -> its folder.
    """
    stored = stored_parts(folder) or set()
    bases = model.config.base_models or {}
    found = {name: os.fspath(folder) if name in stored else bases.get(name) for name in model.frozen_module_names()}
    missing = [name for name, base in found.items() if not base]
    if missing:
        raise ValueError(f"LoRA adapts frozen parts that must be reloadable: {os.fspath(folder)!r} stores no {missing} "
                         "and names no base folder for it. Start LoRA from a stage-2 folder that stores its LLM.")
    return found


def save_lora_run(peft_model: PeftModel, processor: MintProcessor, recipe: MintRecipe) -> None:
    """
    Writes a LoRA run as a MINT folder of its trained parts (`mint.hub.save_for_hub(trained_parts_only=True)`) in
    `recipe.output_dir`: Bridge-Net and the queries, peft's own adapter folder `adapters/`, and `config.base_models`
    pointing at the frozen parts' folders; `from_pretrained(output_dir)` reassembles the model and merges the adapters.
    """
    check_finite_weights(peft_model, recipe.output_dir)
    base = peft_model.get_base_model()
    save_for_hub(peft_model, processor, recipe.output_dir, trained_parts_only=True,  # the run's own output_dir
                 base_models=lora_base_folders(base, recipe.model), recipe=recipe, overwrite=True)


__all__ = ["LORA_BARE_PARAMETERS_NAME", "LORA_TARGET_PATTERNS", "add_lora", "load_lora_bare_parameters",
           "lora_bare_parameters", "lora_base_folders", "save_lora_bare_parameters", "save_lora_run"]
