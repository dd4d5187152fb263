# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""MINT checkpoint folders: safetensors reading, frozen parts taken from base folders, and LoRA adapters.

A MINT folder stores every weight (`save_pretrained`), or only the trained parts (`hub_mint.save_for_hub(...,
trained_parts_only=True)`), in which case `config.base_models` names the folders of the frozen audio encoder and LLM
and an `adapters/` subfolder may hold peft LoRA adapters of those frozen parts. `MintPreTrainedModel.from_pretrained`
reassembles such a folder with the functions here. Only safetensors files are read (no pickle).
"""

import json
import os

import torch
from safetensors import safe_open
from safetensors.torch import load_file
from torch import nn


# The peft adapter folder (`adapter_config.json` + `adapter_model.safetensors`) inside a MINT folder.
ADAPTERS_FOLDER = "adapters"


def load_checkpoint_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """All weights of a checkpoint folder saved with safetensors (one file, or shards with their index)."""
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
    state = load_checkpoint_state_dict(path)
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


def stored_parts(path: str | os.PathLike) -> set[str] | None:
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


def saved_base_models(path: str | os.PathLike) -> dict[str, str] | None:
    """`base_models` of a local folder's `config.json`, or None."""
    config = os.path.join(os.fspath(path), "config.json")
    if not os.path.isfile(config):
        return None
    with open(config) as f:
        return json.load(f).get("base_models")


def check_model_folder(path: str | os.PathLike) -> None:
    """
    A local folder without `config.json` is refused at once: transformers would otherwise build the default config
    (the paper's 3B-parameter sizes) before failing on the weights.
    """
    path = os.fspath(path)
    if os.path.isdir(path) and not os.path.isfile(os.path.join(path, "config.json")):
        raise OSError(f"{path!r} has no config.json: it is not a saved MINT model folder (save one with "
                      "save_pretrained, or pass the folder that holds config.json and model.safetensors).")


def parts_from_base_folders(path: str | os.PathLike, components: tuple[str, ...],
                            base_models: dict[str, str] | None) -> dict[str, str]:
    """
    The frozen parts among `components` whose weights the folder `path` does not store, each with the base folder it
    comes from (`base_models`, else the folder's `config.base_models`).
    """
    bases = base_models or saved_base_models(path) or {}
    stored = stored_parts(path)
    return {name: base for name, base in bases.items()
            if name in components and (stored is None or name not in stored)}


def load_parts_from_base_folders(model: nn.Module, parts: dict[str, str]) -> None:
    """Loads each part of `parts` (`{"audio_model": folder, ...}`) into the submodule of `model` of that name."""
    for name, path in parts.items():
        if not os.path.isdir(path):
            raise ValueError(
                f"This MINT folder does not store its frozen {name}; it comes from the base model {path!r}, which "
                f"is not a folder here. Put that checkpoint there, or pass base_models={{{name!r}: "
                "'/path/to/it', ...} to from_pretrained."
            )
        load_component(getattr(model, name), path)


def has_adapters(path: str | os.PathLike) -> bool:
    """Whether the folder holds a peft adapter folder (`adapters/adapter_config.json`)."""
    return os.path.isfile(os.path.join(os.fspath(path), ADAPTERS_FOLDER, "adapter_config.json"))


def merge_adapters(model: nn.Module, path: str | os.PathLike) -> nn.Module:
    """The model with the folder's LoRA adapters (`adapters/`, peft's own format) merged into its weights."""
    try:
        from peft import PeftModel
    except ImportError as error:
        raise ImportError(f"{os.fspath(path)!r} holds LoRA adapters ({ADAPTERS_FOLDER}/); loading them needs peft "
                          "(pip install peft).") from error
    return PeftModel.from_pretrained(model, os.path.join(os.fspath(path), ADAPTERS_FOLDER)).merge_and_unload()


def save_adapters(peft_model, path: str | os.PathLike) -> None:
    """
    Writes a peft model's LoRA adapters as peft's own adapter folder `path/adapters/` (safetensors), the one format
    that `from_pretrained` and the trainer's resume read.
    """
    peft_model.save_pretrained(os.path.join(os.fspath(path), ADAPTERS_FOLDER), safe_serialization=True)


__all__ = ["ADAPTERS_FOLDER", "load_checkpoint_state_dict", "load_component", "merge_adapters", "save_adapters"]
