# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""MINT checkpoint folders: safetensors reading, frozen parts taken from base folders, and LoRA adapters.

A MINT folder stores every weight (`save_pretrained`), or only the trained parts (`mint.hub.save_for_hub(...,
trained_parts_only=True)`), in which case `config.base_models` names the folders of the frozen audio encoder and LLM
and an `adapters/` subfolder may hold peft LoRA adapters of those frozen parts. `MintPreTrainedModel.from_pretrained`
reassembles such a folder with the functions here. Only safetensors files are read (no pickle).
"""

import hashlib
import json
import os
from collections.abc import Iterable

import torch
from safetensors import safe_open
from safetensors.torch import load_file
from torch import nn
from transformers import PreTrainedConfig
from transformers.utils import logging


logger = logging.get_logger(__name__)

# The peft adapter folder (`adapter_config.json` + `adapter_model.safetensors`) inside a MINT folder.
ADAPTERS_FOLDER = "adapters"


# The keyword arguments of `from_pretrained` that say where a folder's files are found (local folder or Hub repo).
_HUB_KWARGS = ("cache_dir", "force_download", "proxies", "local_files_only", "token", "revision", "subfolder")


def checkpoint_files(path: str | os.PathLike) -> list[str]:
    """The safetensors files of a checkpoint folder: `model.safetensors`, or the shards its index names, sorted."""
    path = os.fspath(path)
    single = os.path.join(path, "model.safetensors")
    if os.path.isfile(single):
        return [single]
    index = os.path.join(path, "model.safetensors.index.json")
    if os.path.isfile(index):
        with open(index) as f:
            return [os.path.join(path, shard) for shard in sorted(set(json.load(f)["weight_map"].values()))]
    raise FileNotFoundError(
        f"No model.safetensors (or sharded index) in {path!r}: expected a checkpoint folder saved with safetensors "
        "(pickle checkpoints are not loaded for safety)."
    )


def load_checkpoint_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """All weights of a checkpoint folder saved with safetensors (one file, or shards with their index)."""
    return {k: v for file in checkpoint_files(path) for k, v in load_file(file).items()}


def folder_sha256(path: str | os.PathLike) -> str:
    """
    The content hash of a checkpoint folder's weights: the SHA-256 of its safetensors files ([`checkpoint_files`]),
    read in order, as `config.base_model_hashes` records it for each base folder.
    """
    digest = hashlib.sha256()
    for file in checkpoint_files(path):
        with open(file, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def check_finite(tensors: Iterable[tuple[str, torch.Tensor]], source: str) -> None:
    """
    Refuses weights that hold NaN or infinite values, naming them and `source` (where they were read from): a model
    loaded with them would give NaN outputs (or pad tokens only) without an error.
    """
    bad = [name for name, tensor in tensors if tensor.is_floating_point() and tensor.numel()
           and tensor.device.type != "meta" and not bool(torch.isfinite(tensor).all())]  # meta: offloaded
    if bad:
        raise ValueError(f"{source} holds NaN or infinite values in the weights {bad[:10]}"
                         f"{f' and {len(bad) - 10} more' if len(bad) > 10 else ''}: refusing to load them (a model "
                         "with them gives NaN outputs).")


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
    check_finite(((k, state[prefix + k]) for k in wanted if prefix + k in state), f"{os.fspath(path)!r}")
    module.load_state_dict({k: state[prefix + k] for k in wanted if prefix + k in state}, strict=False)
    loaded = {wanted[k].data_ptr() for k in wanted if prefix + k in state}
    missing = [k for k in wanted if prefix + k not in state and wanted[k].data_ptr() not in loaded]
    if missing:
        raise ValueError(f"{os.fspath(path)!r} lacks {len(missing)} weights of the {type(module).__name__}, e.g. "
                         f"{missing[:3]}.")


def stored_parts(path: str | os.PathLike) -> set[str] | None:
    """The top-level parts (`audio_model`, `qformer`, ...) a local folder has weights for; None if unknown."""
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


def read_folder_config(path: str | os.PathLike) -> dict | None:
    """The parsed `config.json` of a local folder; None where `path` is not a local folder that holds one."""
    file = os.path.join(os.fspath(path), "config.json")
    if not os.path.isfile(file):
        return None
    try:
        with open(file, encoding="utf-8") as f:
            return json.load(f)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{file!r} is not a readable JSON configuration: {error}.") from error


# The class a MINT folder was saved from (`architectures` in its config) -> its stage (section 2.2 / 2.3).
STAGE_OF_ARCHITECTURE = {"MintModel": 1, "MintForPreTraining": 1, "MintForConditionalGeneration": 2}
# The heads each MINT class has on top of Bridge-Net (`audio_model`, `audio_layernorm`, `query_tokens`, `qformer`).
HEADS_OF_ARCHITECTURE = {
    "MintModel": {"audio_proj", "text_proj", "temp"},
    "MintForPreTraining": {"audio_proj", "text_proj", "temp", "alm_head", "atg_head"},
    "MintForConditionalGeneration": {"language_projection", "language_model"},
}


def saved_architecture(path: str | os.PathLike, from_pretrained_kwargs: dict) -> str | None:
    """
    The class a MINT folder or Hub repo was saved from (the first of its config's `architectures`), as
    `from_pretrained(path, **from_pretrained_kwargs)` finds it: the `config` given there (the Auto classes pass the
    config they read), else the folder's `config.json`. None where the config names no class.
    """
    config = from_pretrained_kwargs.get("config")
    if isinstance(config, PreTrainedConfig):
        architectures = config.architectures
    else:
        hub = {name: from_pretrained_kwargs[name] for name in _HUB_KWARGS if name in from_pretrained_kwargs}
        architectures = PreTrainedConfig.get_config_dict(path, **hub)[0].get("architectures")
    return (architectures or [None])[0]


def mint_stage(path: str | os.PathLike) -> int:
    """
    The stage of the local MINT folder `path`: 1 for a stage-1 model (embedding heads, no trained LLM), 2 for a
    stage-2 model (`MintForConditionalGeneration`). A folder that is not a saved MINT model is refused with the reason.
    """
    config = read_folder_config(path)
    if config is None:
        raise ValueError(f"{os.fspath(path)!r} has no config.json: it is not a saved MINT model folder.")
    if config.get("model_type") != "mint":
        raise ValueError(f"{os.fspath(path)!r} is not a MINT model folder: its config.json has model_type "
                         f"{config.get('model_type')!r}, not 'mint'.")
    architecture = (config.get("architectures") or ["MintForConditionalGeneration"])[0]
    if architecture not in STAGE_OF_ARCHITECTURE:
        raise ValueError(f"{os.fspath(path)!r} was saved from {architecture!r}, not one of the MINT model classes "
                         f"{sorted(STAGE_OF_ARCHITECTURE)}.")
    return STAGE_OF_ARCHITECTURE[architecture]


def saved_base_models(path: str | os.PathLike) -> dict[str, str] | None:
    """`base_models` of a local folder's `config.json`, or None."""
    config = read_folder_config(path)
    return None if config is None else config.get("base_models")


def check_model_folder(path: str | os.PathLike) -> None:
    """
    A local folder without `config.json` is refused at once: transformers would otherwise build the default config
    (the paper's 3B-parameter sizes) before failing on the weights. So is a safetensors file of the folder that is cut
    short or not safetensors ([`check_safetensors_file`]).
    """
    path = os.fspath(path)
    if os.path.isdir(path) and not os.path.isfile(os.path.join(path, "config.json")):
        raise OSError(f"{path!r} has no config.json: it is not a saved MINT model folder (save one with "
                      "save_pretrained, or pass the folder that holds config.json and model.safetensors).")
    if os.path.isdir(path):
        for name in sorted(os.listdir(path)):
            if name.endswith(".safetensors"):
                check_safetensors_file(os.path.join(path, name))


def check_safetensors_file(file: str) -> None:
    """Refuses a safetensors file whose header does not describe it (a copy cut short, or not safetensors), naming
    the file: safetensors' own error names neither."""
    try:
        with safe_open(file, "pt"):
            pass
    except Exception as error:  # safetensors raises its own SafetensorError, and OSError for unreadable files
        raise OSError(f"{file!r} is not a complete safetensors file ({error}); copy or download it again.") from None


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


def load_parts_from_base_folders(model: nn.Module, parts: dict[str, str], hashes: dict[str, str] | None) -> None:
    """
    Loads each part of `parts` (`{"audio_model": folder, ...}`) into the submodule of `model` of that name. A part
    whose content hash the MINT folder recorded (`hashes`, its `config.base_model_hashes`) must come from a folder
    with the same weights: another checkpoint of the same shape would load silently and give other outputs.
    """
    for name, path in parts.items():
        if not os.path.isdir(path):
            raise ValueError(
                f"This MINT folder does not store its frozen {name}; it comes from the base model {path!r}, which "
                f"is not a folder here. Put that checkpoint there, or pass base_models={{{name!r}: "
                "'/path/to/it', ...} to from_pretrained."
            )
        recorded = (hashes or {}).get(name)
        if recorded is not None and (found := folder_sha256(path)) != recorded:
            raise ValueError(
                f"The base folder {path!r} of the frozen {name} holds other weights than the MINT folder was saved "
                f"with: their SHA-256 is {found}, the folder recorded {recorded}. Point base_models={{{name!r}: ...}} "
                "at the checkpoint it was trained on."
            )
        load_component(getattr(model, name), path)


def check_nothing_missing(missing_keys: Iterable[str], source: str, model_class: str,
                          architecture: str | None) -> None:
    """
    Refuses a load that would leave weights randomly initialised (`missing_keys`, from transformers' load report).
    The message names the missing parts and why they are missing: heads that the class the folder was saved from
    does not have (a stage-2 folder has no ALC embedding heads; a `MintModel` folder no ALM/ATG heads), with the
    class to load it with, or parts an incomplete folder lost.
    """
    missing = sorted(missing_keys)
    if not missing:
        return
    parts = sorted({key.split(".")[0] for key in missing})
    saved_heads = HEADS_OF_ARCHITECTURE.get(architecture, set())
    heads_not_saved = HEADS_OF_ARCHITECTURE.get(model_class, set()) - saved_heads if saved_heads else set()
    other_class = [part for part in parts if part in heads_not_saved]
    lost = [part for part in parts if part not in heads_not_saved]
    advice = []
    if other_class:
        advice.append(f"The folder was saved from {architecture} (stage {STAGE_OF_ARCHITECTURE[architecture]}), "
                      f"which has no {other_class}: load it with {architecture}.from_pretrained (or the Auto class "
                      "of its config's auto_map)" + ("; for retrieval and embedding scores, load the stage-1 folder "
                                                     "it was trained from." if STAGE_OF_ARCHITECTURE[architecture] == 2
                                                     else "."))
    if lost:
        advice.append(f"The folder is incomplete ({lost} not stored): copy it again with every safetensors file its "
                      "index names, or save the model again.")
    raise ValueError(f"{source} has no weights for {parts} of {model_class} ({len(missing)} tensors, e.g. "
                     f"{missing[:3]}): loading would leave them randomly initialised. {' '.join(advice)}")


def check_bridge_complete(unexpected_keys: Iterable[str], source: str) -> None:
    """
    Refuses a load that would drop trained Bridge-Net weights the model has no place for (`unexpected_keys`, from
    transformers' load report): a config whose Q-Former differs from the weights' (e.g. another
    `cross_attention_frequency`, whose cross-attention layers sit in other layers).
    """
    dropped = sorted(key for key in unexpected_keys if key.split(".")[0] in ("qformer", "query_tokens",
                                                                              "audio_layernorm"))
    if dropped:
        raise ValueError(f"{source} holds Bridge-Net weights that the model built from its config has no place for "
                         f"({len(dropped)} tensors, e.g. {dropped[:3]}): loading would drop them. The config's "
                         "qformer_config (cross_attention_frequency, num_hidden_layers) must be the one the weights "
                         "were saved with.")


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


class BaseFolderLoadingMixin:
    """
    `from_pretrained` for MINT folders that do not store every part: the frozen audio encoder or LLM of a folder saved
    with its trained parts only, or the LLM that a stage-1 checkpoint never had. Mixed into `MintPreTrainedModel`,
    whose `_pretrained_components` name the parts that can come from base folders.
    """

    def __init__(self, config, *args, parts_loaded_separately: Iterable[str] = (), **kwargs):
        """
        `parts_loaded_separately`: the top-level parts (`"audio_model"`, `"language_model"`) whose weights
        `from_pretrained` takes from elsewhere than the checkpoint it loads (a base folder, or the part's own
        initialisation): the checkpoint's load report does not list them as missing. `from_pretrained` passes it.
        """
        super().__init__(config, *args, **kwargs)
        self._parts_loaded_separately = tuple(parts_loaded_separately)
        ignored = self._keys_to_ignore_on_load_missing or []
        self._keys_to_ignore_on_load_missing = [*ignored, *(rf"^{name}\." for name in parts_loaded_separately)]

    def tie_weights(self, missing_keys: set[str] | None = None, recompute_mapping: bool = True):
        """
        As `PreTrainedModel.tie_weights`. While loading, the tied weights of a part that `from_pretrained` takes from
        elsewhere (`parts_loaded_separately`) are tied as in a model built from its config: the checkpoint lacks both
        ends of such a tie by design, which transformers would otherwise report as a corrupted checkpoint.
        """
        separate = getattr(self, "_parts_loaded_separately", ())
        if missing_keys is None or not separate:
            return super().tie_weights(missing_keys=missing_keys, recompute_mapping=recompute_mapping)
        sources = {source for source in self.all_tied_weights_keys.values() if source.split(".")[0] in separate}
        shown = set(missing_keys) - sources
        before = set(shown)
        super().tie_weights(missing_keys=shown, recompute_mapping=recompute_mapping)
        missing_keys -= before - shown  # the targets tied to a loaded weight

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, base_models: dict[str, str] | None = None,
                        **kwargs):
        """
        As `PreTrainedModel.from_pretrained`; the audio encoder or LLM that a folder does not store (a folder saved
        with only its trained parts by `mint.hub.save_for_hub`, or a stage-1 folder from `mint.hub.assemble_mint`,
        which has no LLM) comes from the base folder named in `config.base_models`; pass
        `base_models={"audio_model": ..., "language_model": ...}` to point at other copies of them (with the same
        weights, where `config.base_model_hashes` records them). LoRA adapters stored in the folder's `adapters/`
        (peft's format) are merged into the frozen parts.

        What is loaded is checked: every weight of the model must come from the folder or a base folder (the one
        exception is stage 2 started from a stage-1 folder, whose projection to the LLM, and LLM where no base folder
        gives it, are new), every Bridge-Net weight of the folder must have its place in the model, and none may be
        NaN or infinite; a `ValueError` names what is missing, dropped or not finite.
        """
        check_model_folder(pretrained_model_name_or_path)
        architecture = saved_architecture(pretrained_model_name_or_path, kwargs)
        model_class = cls._class_for_architecture(architecture)
        if model_class is not cls:
            return model_class.from_pretrained(pretrained_model_name_or_path, *args, base_models=base_models,
                                               **kwargs)
        from_bases = parts_from_base_folders(pretrained_model_name_or_path, cls._pretrained_components, base_models)
        source = repr(os.fspath(pretrained_model_name_or_path))
        new_parts = cls._parts_new_in(architecture, from_bases, source)
        wants_info = kwargs.pop("output_loading_info", False)
        model, info = super().from_pretrained(pretrained_model_name_or_path, *args, output_loading_info=True,
                                              parts_loaded_separately=[*from_bases, *new_parts], **kwargs)
        check_nothing_missing(info["missing_keys"], source, cls.__name__, architecture)
        check_bridge_complete(info["unexpected_keys"], source)
        check_finite(model.state_dict().items(), source)
        if "language_model" in new_parts:
            model._reinit_language_model()
        load_parts_from_base_folders(model, from_bases, getattr(model.config, "base_model_hashes", None))
        for name in cls._keep_in_fp32_modules_strict:  # a part the checkpoint lacks is built in the loading dtype
            part = getattr(model, name)
            if isinstance(part, nn.Module):
                part.float()
        if has_adapters(pretrained_model_name_or_path):
            model = merge_adapters(model, pretrained_model_name_or_path)
            check_finite(model.state_dict().items(), f"{source} with its LoRA adapters ({ADAPTERS_FOLDER}/) merged")
        model._freeze()  # loading materialises new parameters, which are trainable by default
        return (model, info) if wants_info else model

    @classmethod
    def _class_for_architecture(cls, architecture: str | None) -> type:
        """The class `from_pretrained` builds for a folder saved from `architecture`: this one (see `MintModel`)."""
        return cls

    @classmethod
    def _parts_new_in(cls, architecture: str | None, from_bases: dict[str, str], source: str) -> list[str]:
        """
        The parts of this class that a folder saved from `architecture` lacks by design: stage 2 started from a
        stage-1 folder gets a new `language_projection`, and a new LLM unless a base folder gives the pretrained one.
        """
        if "language_model" not in cls._pretrained_components or STAGE_OF_ARCHITECTURE.get(architecture) != 1:
            return []
        start = f"Stage 2 from the stage-1 folder {source}: its audio encoder and Q-Former are loaded"
        if "language_model" in from_bases:
            logger.warning(f"{start}, the LLM from {from_bases['language_model']!r}; new: the projection to the LLM "
                           "(language_projection), initialised for training.")
            return ["language_projection"]
        logger.warning(f"{start}; new: the projection to the LLM (language_projection) and the LLM, built from its "
                       "config with its own initialisation (a stage-1 folder stores no LLM; set "
                       "config.base_models['language_model'] to load a pretrained one).")
        return ["language_projection", "language_model"]

    def _reinit_language_model(self) -> None:
        """
        Builds the LLM a checkpoint lacks with its own `_init_weights`, as the constructor does: transformers would
        otherwise initialise it with the generic rule (for T5: std `initializer_factor` = 1.0 on every linear layer,
        so activations and gradients explode).
        """
        lm = self.language_model
        parameter = next(lm.parameters())
        self.language_model = type(lm)._from_config(lm.config).to(device=parameter.device, dtype=parameter.dtype)
        self.language_model.train(self.training)


__all__ = [
    "ADAPTERS_FOLDER",
    "STAGE_OF_ARCHITECTURE",
    "HEADS_OF_ARCHITECTURE",
    "BaseFolderLoadingMixin",
    "check_finite",
    "check_safetensors_file",
    "checkpoint_files",
    "folder_sha256",
    "load_checkpoint_state_dict",
    "load_component",
    "merge_adapters",
    "mint_stage",
    "read_folder_config",
    "save_adapters",
    "saved_architecture",
    "stored_parts",
]
