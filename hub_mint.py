# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""Assembling MINT from component checkpoints, and publishing it: Hub-ready folders, model cards, trained parts only.

    model, processor = assemble_mint("data2vec-audio-base", "bert-base-uncased", "flan-t5-xl", stage=1)
    save_for_hub(model, processor, "mint-folder", eval_results="results.json")            # full, sharded
    save_for_hub(model, processor, "mint-small", trained_parts_only=True,
                 base_models={"audio_model": "data2vec-audio-base", "language_model": "flan-t5-xl"})
    AutoModel.from_pretrained("mint-small")   # reassembles the frozen parts from the base folders

`save_for_hub(..., push_to_hub=True, repo_id="org/mint")` uploads the folder with `huggingface_hub`.
"""

import json
import os
from typing import Any

from transformers import (AutoConfig, AutoFeatureExtractor, AutoTokenizer, BertConfig, BertTokenizerFast,
                          PreTrainedConfig, PreTrainedTokenizerBase)


try:
    from .configuration_mint import MintConfig, MintQFormerConfig
    from .modeling_mint import ADAPTERS_FOLDER, MintForConditionalGeneration, MintForPreTraining, load_component
    from .processing_mint import MintProcessor
except ImportError:  # installed as top-level modules
    from configuration_mint import MintConfig, MintQFormerConfig
    from modeling_mint import ADAPTERS_FOLDER, MintForConditionalGeneration, MintForPreTraining, load_component
    from processing_mint import MintProcessor


def assemble_mint(
    audio_encoder: str | os.PathLike,
    bert: str | os.PathLike,
    language_model: str | os.PathLike | PreTrainedConfig,
    tokenizer: PreTrainedTokenizerBase | str | os.PathLike | None = None,
    stage: int = 1,
    **config_kwargs: Any,
) -> tuple[MintForPreTraining | MintForConditionalGeneration, MintProcessor]:
    """
    A MINT model and processor from component folders on disk (section 2): the frozen audio encoder (any transformers
    audio encoder folder: data2vec-audio, wav2vec2, HuBERT, or Whisper, whose encoder is kept), a BERT folder that
    initialises the Q-Former, and the LLM (a seq2seq or causal-LM folder, or a config for an LLM trained from scratch,
    with `tokenizer` then given). `stage=1` gives [`MintForPreTraining`], `stage=2` [`MintForConditionalGeneration`];
    `config_kwargs` go to [`MintConfig`] (e.g. `num_query_tokens`). A stage-1 model records the LLM folder in
    `config.base_models`, so that stage 2, started from its checkpoint, loads the pretrained LLM.
    """
    for name, path in (("audio_encoder", audio_encoder), ("bert", bert)) + (
            (("language_model", language_model),) if not isinstance(language_model, PreTrainedConfig) else ()):
        if not os.path.isdir(path):
            raise ValueError(f"{name}: {os.fspath(path)!r} is not a folder; expected a local checkpoint folder.")
    if stage not in (1, 2):
        raise ValueError(f"MINT has training stages 1 and 2, got {stage}.")
    audio_config = AutoConfig.from_pretrained(audio_encoder)
    text_config = language_model if isinstance(language_model, PreTrainedConfig) else \
        AutoConfig.from_pretrained(language_model)
    config = MintConfig(
        audio_config=audio_config, text_config=text_config,
        qformer_config=MintQFormerConfig.from_bert_config(BertConfig.from_pretrained(bert), audio_config.hidden_size),
        **config_kwargs,
    )
    model = (MintForPreTraining if stage == 1 else MintForConditionalGeneration)(config)
    load_component(model.audio_model, audio_encoder)
    model.init_qformer_from_bert(bert)
    if not isinstance(language_model, PreTrainedConfig):
        if stage == 2:
            load_component(model.language_model, language_model)
        else:  # stage 1 has no LLM: stage 2 loads it from this folder when it starts from the stage-1 checkpoint
            config.base_models = {"language_model": os.fspath(language_model)}
    if tokenizer is None:
        if isinstance(language_model, PreTrainedConfig):
            raise ValueError("An LLM given as a config has no tokenizer folder: pass tokenizer=.")
        tokenizer = language_model
    if not isinstance(tokenizer, PreTrainedTokenizerBase):
        tokenizer = AutoTokenizer.from_pretrained(tokenizer)
    qformer_tokenizer = BertTokenizerFast.from_pretrained(bert)
    qformer_tokenizer.add_special_tokens({"bos_token": "[DEC]"})
    processor = MintProcessor.from_config(config, AutoFeatureExtractor.from_pretrained(audio_encoder), tokenizer,
                                          qformer_tokenizer)
    return model, processor


def model_card(model, eval_results: dict | str | os.PathLike | None = None, datasets: list[str] | None = None,
               base_models: dict[str, str] | None = None) -> str:
    """
    A model card (README.md) with YAML metadata: `pipeline_tag`, `library_name`, `base_model`, `datasets`, and the
    metrics of an evaluation JSON written by `mint-eval` or the demo (`eval_results`, a dict or a path).
    """
    if isinstance(eval_results, (str, os.PathLike)):
        with open(eval_results) as f:
            eval_results = json.load(f)
    metrics = _flat_metrics(eval_results or {})
    base = [v for v in (base_models or {}).values() if v]
    lines = ["---", "library_name: transformers", "pipeline_tag: audio-text-to-text",
             "tags:", "  - mint", "  - audio-language", "  - q-former", "license: apache-2.0"]
    if base:
        lines += ["base_model:"] + [f"  - {b}" for b in base]
    if datasets:
        lines += ["datasets:"] + [f"  - {d}" for d in datasets]
    if metrics:
        lines += ["model-index:", "  - name: MINT", "    results:", "      - task:", "          type: audio-text-to-text",
                  "        metrics:"]
        lines += [f"          - name: {name}\n            type: {name}\n            value: {value:.4f}"
                  for name, value in metrics.items()]
    lines.append("---")
    config = model.config
    body = [
        "", "# MINT", "",
        "MINT (Multi-target pre-traINing and instruction Tuning) connects a frozen audio encoder "
        f"({config.audio_config.model_type}) to a frozen LLM ({config.text_config.model_type}) through Bridge-Net, a "
        f"Q-Former with {config.num_query_tokens} learnable queries.", "",
        "```python", "from transformers import AutoModel, AutoProcessor, pipeline", "",
        'model = AutoModel.from_pretrained("FOLDER", trust_remote_code=True)',
        'captioner = pipeline("audio-to-text", model="FOLDER", trust_remote_code=True)',
        'captioner("clip.wav")', "```",
    ]
    if metrics:
        body += ["", "## Evaluation", "", "| metric | value |", "|---|---|"]
        body += [f"| {name} | {value:.4f} |" for name, value in metrics.items()]
    return "\n".join(lines + body) + "\n"


def _flat_metrics(results: dict, prefix: str = "") -> dict[str, float]:
    """Numeric leaves of an evaluation JSON as `section/metric` names (lists, timings and strings are left out)."""
    flat = {}
    for key, value in results.items():
        name = f"{prefix}{key}".replace(" ", "_")
        if isinstance(value, dict) and key not in ("timing", "corpus", "goals"):
            flat.update(_flat_metrics(value, name + "/"))
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and key not in ("clips", "num_clips"):
            flat[name] = float(value)
    return flat


def _plain_state_dict(model) -> dict:
    """The weights under the model's own names when peft has wrapped some modules (the trained copy of a
    `modules_to_save` module, the base weight of a LoRA layer; the LoRA matrices themselves go to the adapters)."""
    plain = {}
    for key, value in model.state_dict().items():
        if "lora_" in key or ".original_module." in key:
            continue
        plain[key.replace(".modules_to_save.default.", ".").replace(".base_layer.", ".")] = value
    return plain


def save_for_hub(
    model,
    processor: MintProcessor,
    folder: str | os.PathLike,
    eval_results: dict | str | os.PathLike | None = None,
    datasets: list[str] | None = None,
    max_shard_size: str | int = "2GB",
    trained_parts_only: bool = False,
    base_models: dict[str, str] | None = None,
    push_to_hub: bool = False,
    repo_id: str | None = None,
    **push_kwargs: Any,
) -> str:
    """
    Writes a Hub-ready folder: the config (with `auto_map` and `custom_pipelines`), sharded safetensors, the
    processor, the modules that load it as remote code (`configuration_mint.py`, `modeling_mint.py`,
    `processing_mint.py`, `pipelines_mint.py`) and a model card. With `trained_parts_only`, the frozen audio encoder
    and LLM are left out and `base_models` (`{"audio_model": folder, "language_model": folder}`) records where
    loading finds them again; a peft model's LoRA adapters are saved beside, in `adapters/`, and loading merges them
    into the reassembled model. `push_to_hub=True` then uploads the folder to `repo_id`. Returns the folder.
    """
    folder = os.fspath(folder)
    adapted = hasattr(model, "get_base_model")  # a peft model: LoRA adapters on the frozen parts
    if adapted and not trained_parts_only:
        raise ValueError("A model with LoRA adapters is saved with trained_parts_only=True (the adapters beside the "
                         "trained parts), or merged first with model.merge_and_unload().")
    mint = model.get_base_model() if adapted else model
    state_dict, saved_bases = None, mint.config.base_models
    if trained_parts_only:
        frozen = mint._frozen_module_names()
        missing = [name for name in frozen if not (base_models or {}).get(name)]
        if missing:
            raise ValueError(f"trained_parts_only leaves out the frozen {missing}: give their base folders in "
                             f"base_models={{{', '.join(repr(m) + ': ...' for m in missing)}}}.")
        mint.config.base_models = {**(saved_bases or {}), **{name: os.fspath(base_models[name]) for name in frozen}}
        state_dict = {k: v for k, v in _plain_state_dict(mint).items() if k.split(".")[0] not in frozen}
    try:
        mint.save_pretrained(folder, state_dict=state_dict, max_shard_size=max_shard_size)
    finally:
        mint.config.base_models = saved_bases
    if adapted:
        model.save_pretrained(os.path.join(folder, ADAPTERS_FOLDER))
    processor.save_pretrained(folder)
    with open(os.path.join(folder, "README.md"), "w") as f:
        f.write(model_card(mint, eval_results, datasets, base_models or {}))
    if push_to_hub:
        from huggingface_hub import HfApi

        if not repo_id:
            raise ValueError("push_to_hub needs repo_id='org/name'.")
        api = HfApi()
        api.create_repo(repo_id, exist_ok=True, private=push_kwargs.pop("private", None))
        api.upload_folder(folder_path=folder, repo_id=repo_id, **push_kwargs)
    return folder


__all__ = ["assemble_mint", "model_card", "save_for_hub"]
