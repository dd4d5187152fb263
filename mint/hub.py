# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""Assembling MINT from component checkpoints, and publishing it: Hub-ready folders, model cards, trained parts only.

    model, processor = assemble_mint("data2vec-audio-base", "bert-base-uncased", "flan-t5-xl", stage=1)
    save_for_hub(model, processor, "mint-folder", repo_id="org/mint", eval_results=results)   # full, sharded
    save_for_hub(model, processor, "mint-small", trained_parts_only=True,
                 base_models={"audio_model": "data2vec-audio-base", "language_model": "flan-t5-xl"})
    AutoModel.from_pretrained("mint-small")   # reassembles the frozen parts from the base folders

With no pretrained LLM at hand, `word_level_tokenizer(texts)` and `small_t5_config(tokenizer)` give a tokenizer built
from the task's texts and a small T5 to train in stage 2 (`freeze_language_model=False`):

    tokenizer = word_level_tokenizer(captions + prompts)
    model, processor = assemble_mint(encoder_dir, bert_dir, small_t5_config(tokenizer), tokenizer=tokenizer,
                                     freeze_language_model=False)

`save_for_hub(..., push_to_hub=True, repo_id="org/mint")` uploads the folder with `huggingface_hub`.
"""

import dataclasses
import json
import math
import os
import shutil
from typing import Any

from huggingface_hub import EvalResult, HfApi, ModelCard, ModelCardData
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
from transformers import (AutoConfig, AutoFeatureExtractor, AutoTokenizer, BertConfig, BertTokenizerFast,
                          PreTrainedConfig, PreTrainedTokenizerBase, PreTrainedTokenizerFast, T5Config)
from transformers.dynamic_module_utils import get_relative_import_files

import pipelines_mint
from checkpoint_mint import ADAPTERS_FOLDER, folder_sha256, load_component, read_folder_config, save_adapters
from configuration_mint import MintConfig, MintQFormerConfig, check_cross_attention_frequency
from mint.data.examples import is_integer
from mint.data.outputs import few
from mint.evaluation.caption_metrics import METRIC_KEYS as CAPTION_METRIC_KEYS
from modeling_mint import MintForConditionalGeneration, MintForPreTraining
from processing_mint import MintProcessor, save_embedding_processor


PAPER_CITATION = """@inproceedings{zhao2024mint,
  title     = {MINT: Boosting Audio-Language Model via Multi-Target Pre-Training and Instruction Tuning},
  author    = {Zhao, Hang and Xin, Yifei and Yu, Zhesong and Zhu, Bilei and Lu, Lu and Ma, Zejun},
  booktitle = {Interspeech},
  year      = {2024}
}"""


def word_level_tokenizer(texts: list[str]) -> PreTrainedTokenizerFast:
    """
    A T5-style word-level tokenizer (pad 0, end-of-sequence 1, unknown 2; lower-cased; punctuation split off) over
    the words of `texts`: the vocabulary of a small LLM trained from scratch on a task's captions, prompts and labels.
    """
    splitter = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    words = sorted({w for text in texts for w, _ in splitter.pre_tokenize_str(text.lower())})
    vocab = {w: i for i, w in enumerate(["<pad>", "</s>", "<unk>"] + words)}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = splitter
    backend.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")


def small_t5_config(tokenizer: PreTrainedTokenizerBase, **overrides: Any) -> T5Config:
    """
    A small T5 (3+3 layers, 256-d) for `tokenizer`'s vocabulary (plus MINT's audio placeholder token), to train from
    scratch where no pretrained seq2seq LLM is at hand. Its embeddings are tied: T5 then scales its output by
    `d_model**-0.5`, so training starts at a loss near ln(vocabulary) (untied, as FlanT5, it starts near 50).
    """
    values = dict(d_model=256, d_kv=32, d_ff=512, num_layers=3, num_decoder_layers=3, num_heads=8,
                  feed_forward_proj="gated-gelu", vocab_size=len(tokenizer) + 1, tie_word_embeddings=True,
                  decoder_start_token_id=tokenizer.pad_token_id, pad_token_id=tokenizer.pad_token_id,
                  eos_token_id=tokenizer.eos_token_id, dropout_rate=0.1)
    values.update(overrides)
    return T5Config(**values)


def assemble_mint(
    audio_encoder: str | os.PathLike,
    bert: str | os.PathLike,
    language_model: str | os.PathLike | PreTrainedConfig,
    tokenizer: PreTrainedTokenizerBase | str | os.PathLike | None = None,
    stage: int = 1,
    cross_attention_frequency: int = 2,
    **config_kwargs: Any,
) -> tuple[MintForPreTraining | MintForConditionalGeneration, MintProcessor]:
    """
    A MINT model and processor from component folders on disk (section 2): the frozen audio encoder (any transformers
    audio encoder folder: data2vec-audio, wav2vec2, HuBERT, or Whisper, whose encoder is kept), a BERT folder that
    initialises the Q-Former, and the LLM (a seq2seq or causal-LM folder, or a config for an LLM trained from scratch,
    with `tokenizer` then given). `stage=1` gives [`MintForPreTraining`], `stage=2` [`MintForConditionalGeneration`];
    the Q-Former cross-attends to the audio every `cross_attention_frequency` layers (BLIP-2's 2; 1 for every layer:
    BERT initialises none of them, like the queries); `config_kwargs` go to [`MintConfig`] (e.g. `num_query_tokens`).
    The processor's audio placeholder token is added to the LLM tokenizer (and the LLM's vocabulary grown where it has
    no row for it). A stage-1 model records the LLM folder in `config.base_models`, so that stage 2, started from its
    checkpoint, loads the pretrained LLM.
    """
    # A numpy integer is an integer here; the config's own check refuses anything else with its words.
    cross_attention_frequency = int(cross_attention_frequency) if is_integer(cross_attention_frequency) else \
        cross_attention_frequency
    check_cross_attention_frequency(cross_attention_frequency)
    pretrained_llm = not isinstance(language_model, PreTrainedConfig)
    for name, path in (("audio_encoder", audio_encoder), ("bert", bert)) + (
            (("language_model", language_model),) if pretrained_llm else ()):
        if not os.path.isdir(path):
            raise ValueError(f"{name}: {os.fspath(path)!r} is not a folder; expected a local checkpoint folder.")
    if stage not in (1, 2):
        raise ValueError(f"MINT has training stages 1 and 2, got {stage}.")
    if tokenizer is None and not pretrained_llm:
        raise ValueError("An LLM given as a config has no tokenizer folder: pass tokenizer=.")
    tokenizer = tokenizer if tokenizer is not None else language_model
    if not isinstance(tokenizer, PreTrainedTokenizerBase):
        tokenizer = AutoTokenizer.from_pretrained(tokenizer)
    audio_config = AutoConfig.from_pretrained(audio_encoder)
    text_config = AutoConfig.from_pretrained(language_model) if pretrained_llm else language_model
    bert_type = AutoConfig.from_pretrained(bert).model_type
    for name, path, model_type, expected in (
            ("audio_encoder", audio_encoder, audio_config.model_type,
             "an audio encoder's own folder (data2vec-audio, wav2vec2, HuBERT or Whisper)"),
            ("bert", bert, bert_type, "a BERT folder (model_type 'bert') to initialise the Q-Former from"),
            ("language_model", language_model, text_config.model_type, "the LLM's own folder (T5, OPT, ...)")):
        if model_type == "mint" or (name == "bert" and model_type != "bert"):
            raise ValueError(f"{name}: {os.fspath(path)!r} holds a {model_type!r} model; expected {expected}.")
    qformer_tokenizer = BertTokenizerFast.from_pretrained(bert)
    qformer_tokenizer.add_special_tokens({"bos_token": "[DEC]"})
    config = MintConfig(
        audio_config=audio_config, text_config=text_config,
        qformer_config=MintQFormerConfig.from_bert_config(BertConfig.from_pretrained(bert), audio_config.hidden_size,
                                                          cross_attention_frequency=cross_attention_frequency),
        **config_kwargs,
    )
    processor = MintProcessor.from_config(config, AutoFeatureExtractor.from_pretrained(audio_encoder), tokenizer,
                                          qformer_tokenizer)
    config.audio_token_id = processor.audio_token_id
    grown = config.audio_token_id >= config.text_config.vocab_size
    if grown and not pretrained_llm:
        raise ValueError(f"The LLM config's vocab_size ({config.text_config.vocab_size}) has no row for the audio "
                         f"placeholder token (id {config.audio_token_id}): give it at least {len(tokenizer)} "
                         "(small_t5_config does).")
    model = (MintForPreTraining if stage == 1 else MintForConditionalGeneration)(config)
    load_component(model.audio_model, audio_encoder)
    model.init_qformer_from_bert(bert)
    if pretrained_llm and stage == 2:
        _load_llm(model, language_model, len(tokenizer) if grown else None)
    elif pretrained_llm:  # stage 1 has no LLM: stage 2 loads it from this folder when it starts from the checkpoint
        config.base_models = {"language_model": os.fspath(language_model)}
    return model, processor


def _load_llm(model: MintForConditionalGeneration, folder, vocab_size: int | None) -> None:
    """The pretrained LLM into `model`, its vocabulary grown to `vocab_size` for the audio placeholder token."""
    if vocab_size is not None:
        model.language_model.resize_token_embeddings(model.config.text_config.vocab_size)
    load_component(model.language_model, folder)
    if vocab_size is not None:
        model.language_model.resize_token_embeddings(vocab_size)
        model.config.text_config.vocab_size = vocab_size


# The metrics of each task in the JSON `mint eval` writes, by their keys there, with the Hub's metric type of each;
# chance levels, counts and settings are not metrics of the model and are left out.
_CLASSIFICATION_METRICS = {"accuracy": "accuracy", "pr_auc": "pr_auc", "roc_auc": "roc_auc"}
_RETRIEVAL_METRICS = {"R@1": "recall@1", "R@5": "recall@5", "R@10": "recall@10", "mAP@10": "map@10"}
_CAPTIONING_METRICS = {key: key.split("_")[0] for key in CAPTION_METRIC_KEYS}  # bleu_4: bleu, cider_d: cider
# Retrieval results hold one block of metrics per direction, each a task of the Hub's model-index.
_RETRIEVAL_DIRECTIONS = {"text_to_audio": "text-to-audio-retrieval", "audio_to_text": "audio-to-text-retrieval"}


def eval_results_from_json(results: dict | str | os.PathLike, dataset_name: str, dataset_type: str,
                           split: str | None = None) -> list[EvalResult]:
    """
    The Hub's model-index entries (task, dataset, metric) for one evaluation written by `mint eval` (the JSON file's
    path, or its content as a dict; or the dict returned by `mint.evaluate_classification`, `evaluate_retrieval`,
    `evaluate_captioning`): classification accuracy (or multi-label PR/ROC AUC) under `audio-classification`
    (vocabulary ranking) or `zero-shot-audio-classification` (embeddings), retrieval R@1/5/10 and mAP@10 of both
    directions (`text_to_audio`, `audio_to_text`), captioning BLEU-1..4, METEOR, ROUGE-L, CIDEr-D, SPICE and SPIDEr
    where computed (a metric recorded as `null`, e.g. SPICE without Java, is left out).

    Raises:
        ValueError: a file that is not such a JSON, a result of another task (a leakage report), a retrieval result
            without its two directions, a metric that is not a finite number, or a result without any metric.
    """
    source = "the evaluation result"
    if isinstance(results, (str, os.PathLike)):
        source = repr(os.fspath(results))
        try:
            with open(results, encoding="utf-8") as f:
                results = json.load(f)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"{source} is not a readable `mint eval` JSON: {error}") from None
    if not isinstance(results, dict):
        raise ValueError(f"{source} holds a {type(results).__name__}; expected the object `mint eval` writes.")
    for name, value in (("dataset_name", dataset_name), ("dataset_type", dataset_type)):
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{name} must be a non-empty string (the dataset as the card names it), got {value!r}.")
    task = results.get("task")
    if task == "classification":
        zero_shot = results.get("mode") == "embedding"
        blocks = [("zero-shot-audio-classification" if zero_shot else "audio-classification", results,
                   _CLASSIFICATION_METRICS)]
    elif task == "retrieval":
        missing = [key for key in _RETRIEVAL_DIRECTIONS if not isinstance(results.get(key), dict)]
        if missing:
            raise ValueError(f"{source} is a retrieval result without {' and '.join(map(repr, missing))}: expected "
                             "the metrics of each direction as `mint eval retrieval` writes them ({'text_to_audio': "
                             "{'R@1': ...}, 'audio_to_text': {...}}).")
        blocks = [(task_type, results[key], _RETRIEVAL_METRICS) for key, task_type in _RETRIEVAL_DIRECTIONS.items()]
    elif task == "captioning":
        blocks = [("audio-captioning", results, _CAPTIONING_METRICS)]
    else:
        raise ValueError(f"Not an evaluation result of `mint eval`: {source} has task {task!r}; expected "
                         "classification, retrieval or captioning (a leakage report holds no metric of a model).")
    entries = []
    for task_type, block, metrics in blocks:
        for key, metric_type in metrics.items():
            value = block.get(key)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{source}: metric {key!r} of {task_type} is {value!r}; expected a finite number "
                                 "(or null where it was not computed).")
            entries.append(EvalResult(task_type=task_type, dataset_type=dataset_type, dataset_name=dataset_name,
                                      dataset_split=split, metric_type=metric_type, metric_name=key,
                                      metric_value=float(value)))
    if not entries:
        names = sorted({key for _, _, metrics in blocks for key in metrics})
        raise ValueError(f"{source} is a {task} result without any metric; expected some of {names}.")
    return entries


MODEL_CARD_TEMPLATE = """---
{{ card_data }}
---

# {{ model_name }}

MINT ("Boosting Audio-Language Model via Multi-Target Pre-Training and Instruction Tuning", Zhao et al., Interspeech
2024) connects a frozen audio encoder ({{ audio_encoder }}) to {{ llm }} through Bridge-Net, a Q-Former with
{{ num_query_tokens }} learnable queries that read the audio through cross-attention. This checkpoint is a
{{ stage }}.

## How to use

```python
{{ usage }}
```

## Intended uses and limits

{{ uses }} The model hears what its audio encoder carries: audio far from its training data (other languages, other
recording conditions, clips much longer than {{ max_audio_seconds }} s, which are cropped or windowed) is outside what
it was trained for. Labels are scored, not calibrated: compare scores of candidates for the same clip only.

## Training data and procedure

{{ training }}

## Evaluation

{{ evaluation }}

## Citation

```bibtex
{{ citation }}
```
"""


def model_card(model, repo_id: str = "your-org/mint", eval_results: list[EvalResult] | None = None,
               datasets: list[str] | None = None, base_models: dict[str, str] | None = None,
               recipe: Any = None) -> ModelCard:
    """
    The model card of a MINT checkpoint, written with huggingface_hub's `ModelCard` / `ModelCardData`: metadata with
    `base_model` (the frozen parts), `datasets`, and a model-index built from `eval_results`
    ([`eval_results_from_json`]); sections on the model, its use (snippets naming `repo_id`), its limits, training
    data and procedure (from `recipe`, a `mint.MintRecipe` or dict) and evaluation.
    """
    config = model.config
    stage2 = isinstance(model, MintForConditionalGeneration)
    bases = [base for base in (base_models or {}).values() if base]
    card_data = ModelCardData(
        language="en", license="apache-2.0", library_name="transformers", model_name=repo_id.split("/")[-1],
        pipeline_tag="any-to-any" if stage2 else "zero-shot-audio-classification",
        tags=["mint", "audio-language", "q-former", "audio-captioning" if stage2 else "audio-text-retrieval"],
        base_model=bases or None, datasets=datasets or None, eval_results=eval_results or None,
    )
    return ModelCard.from_template(
        card_data, template_str=MODEL_CARD_TEMPLATE, model_name=repo_id.split("/")[-1],
        audio_encoder=config.audio_config.model_type,
        llm=f"a {'frozen' if config.freeze_language_model else 'trained'} {config.text_config.model_type} LLM",
        num_query_tokens=config.num_query_tokens, max_audio_seconds=config.max_audio_seconds,
        stage=("stage-2 (instruction-tuned) model: captions, answers to instructions and classification by "
               "vocabulary ranking" if stage2 else "stage-1 (representation learning) model: text-to-audio retrieval "
               "and zero-shot classification by embedding similarity"),
        usage=_usage(repo_id, stage2), uses=_uses(stage2), training=_training(recipe, datasets),
        evaluation=_evaluation(eval_results), citation=PAPER_CITATION,
    )


def _usage(repo_id: str, stage2: bool) -> str:
    if stage2:
        return (f'from transformers import pipeline\n\nchat = [{{"role": "user", "content": [{{"type": "audio", '
                f'"path": "clip.wav"}}, {{"type": "text", "text": "Generate audio caption:"}}]}}]\n'
                f'any_to_any = pipeline("any-to-any", model="{repo_id}", trust_remote_code=True)\n'
                'any_to_any(text=chat, return_full_text=False)  # [{"generated_text": ...}]\n'
                f'captioner = pipeline("audio-to-text", model="{repo_id}", trust_remote_code=True)\n'
                'captioner("clip.wav")  # [{"generated_text": ...}]\n'
                f'classifier = pipeline("mint-zero-shot-audio-classification", model="{repo_id}", '
                'trust_remote_code=True)\nclassifier("clip.wav", candidate_labels=["dog", "piano"])')
    return (f'from transformers import pipeline\n\nclassifier = pipeline("zero-shot-audio-classification", '
            f'model="{repo_id}", trust_remote_code=True)\n'
            'classifier("clip.wav", candidate_labels=["dog", "piano"])')


def _uses(stage2: bool) -> str:
    if stage2:
        return ("Audio captioning, answering instructions about a clip, and audio classification by ranking candidate "
                "labels under the LLM (the paper's vocabulary ranking).")
    return ("Text-to-audio retrieval and zero-shot audio classification with the audio-language embeddings; it "
            "writes no text (train stage 2 from it for that).")


def _training(recipe: Any, datasets: list[str] | None) -> str:
    if recipe is None:
        return f"Trained on: {', '.join(datasets)}." if datasets else "The training recipe was not recorded."
    values = dataclasses.asdict(recipe) if dataclasses.is_dataclass(recipe) else dict(recipe)
    rows = [f"- {key}: `{values[key]}`" for key in ("stage", "batch_size", "learning_rate", "learning_rates",
                                                     "num_train_epochs", "warmup_steps", "optim", "weight_decay",
                                                     "dropout", "bf16", "bridge_autocast")
            if values.get(key) is not None]
    sources = [f"- {entry.get('path')} ({entry.get('template', 'caption pairs')}, weight {entry.get('weight', 1)})"
               for entry in values.get("datasets", [])]
    return "\n".join(["Training data:", *sources, "", "Settings (`mint.MintRecipe`):", *rows])


def _evaluation(eval_results: list[EvalResult] | None) -> str:
    if not eval_results:
        return "No evaluation was recorded with this checkpoint."
    rows = [f"| {r.dataset_name} | {r.task_type} | {r.metric_name or r.metric_type} | {r.metric_value:.4f} |"
            for r in eval_results]
    return "\n".join(["| dataset | task | metric | value |", "|---|---|---|---|", *rows])


def _plain_state_dict(model) -> dict:
    """The weights under the model's own names when peft has wrapped some modules (the trained copy of a
    `modules_to_save` module, the base weight of a LoRA layer; the LoRA matrices themselves go to the adapters)."""
    plain = {}
    for key, value in model.state_dict().items():
        if "lora_" in key or ".original_module." in key:
            continue
        plain[key.replace(".modules_to_save.default.", ".").replace(".base_layer.", ".")] = value
    return plain


def _check_hub_folder(folder: str, overwrite: bool) -> None:
    """Refuses an existing `folder` that is not empty and that `save_for_hub` did not write (a MINT config listing
    `custom_pipelines`, with `pipelines_mint.py` beside it), unless `overwrite`."""
    if not os.path.lexists(folder):
        return
    if not os.path.isdir(folder):
        raise ValueError(f"{folder!r} exists and is not a folder; save_for_hub writes a folder: choose another path.")
    entries = sorted(os.listdir(folder))
    if not entries or overwrite:
        return
    try:
        config = read_folder_config(folder) or {}
    except ValueError:
        config = {}
    if config.get("model_type") == "mint" and "custom_pipelines" in config and "pipelines_mint.py" in entries:
        return
    raise ValueError(f"{folder!r} exists and holds {few(entries)}, which save_for_hub did not write: pass "
                     "overwrite=True to write into it anyway, or choose another folder.")


def save_for_hub(
    model,
    processor: MintProcessor,
    folder: str | os.PathLike,
    repo_id: str = "your-org/mint",
    eval_results: list[EvalResult] | None = None,
    datasets: list[str] | None = None,
    recipe: Any = None,
    max_shard_size: str | int = "2GB",
    trained_parts_only: bool = False,
    base_models: dict[str, str] | None = None,
    push_to_hub: bool = False,
    overwrite: bool = False,
    **push_kwargs: Any,
) -> str:
    """
    Writes a Hub-ready folder: the config (with `auto_map` and `custom_pipelines`), sharded safetensors, the
    processor, the modules that load it as remote code (`configuration_mint.py`, `modeling_mint.py`,
    `processing_mint.py`, `pipelines_mint.py` and every module they import relatively) and a model card
    ([`model_card`]). With `trained_parts_only`, the frozen audio encoder and LLM are left out and `base_models`
    (`{"audio_model": folder, "language_model": folder}`) records where loading finds them again; a peft model's LoRA
    adapters are saved beside, in peft's own `adapters/` folder, and loading merges them into the reassembled model.
    `push_to_hub=True` then uploads the folder to `repo_id`. A stage-1 model is saved with
    [`processing_mint.save_embedding_processor`] (the Q-Former's tokenizer on top, the LLM's in `llm_tokenizer/`).
    An existing folder is written into only when `save_for_hub` wrote it, or with `overwrite=True` (its files of the
    same names replaced, LoRA adapters of an earlier save removed): one holding anything else (a training output, a
    dataset) is refused with a `ValueError`. Returns the folder.
    """
    folder = os.fspath(folder)
    _check_hub_folder(folder, overwrite)
    adapted = hasattr(model, "get_base_model")  # a peft model: LoRA adapters on the frozen parts
    if adapted and not trained_parts_only:
        raise ValueError("A model with LoRA adapters is saved with trained_parts_only=True (the adapters beside the "
                         "trained parts), or merged first with model.merge_and_unload().")
    mint = model.get_base_model() if adapted else model
    state_dict, saved = None, (mint.config.base_models, getattr(mint.config, "custom_pipelines", None),
                               mint.config.base_model_hashes)
    auto_class = {"MintForPreTraining": "AutoModelForPreTraining", "MintModel": "AutoModel"}.get(
        type(mint).__name__, "AutoModelForSpeechSeq2Seq")
    mint.config.custom_pipelines = pipelines_mint.custom_pipelines(auto_class)
    if trained_parts_only:
        frozen = mint.frozen_module_names()
        missing = [name for name in frozen if not (base_models or {}).get(name)]
        if missing:
            raise ValueError(f"trained_parts_only leaves out the frozen {missing}: give their base folders in "
                             f"base_models={{{', '.join(repr(m) + ': ...' for m in missing)}}}.")
        mint.config.base_models = {**(saved[0] or {}), **{name: os.fspath(base_models[name]) for name in frozen}}
        mint.config.base_model_hashes = {**(saved[2] or {}), **{name: folder_sha256(base_models[name])
                                                                 for name in frozen}}
        state_dict = {k: v for k, v in _plain_state_dict(mint).items() if k.split(".")[0] not in frozen}
    try:
        mint.save_pretrained(folder, state_dict=state_dict, max_shard_size=max_shard_size)
    finally:
        mint.config.base_models, mint.config.custom_pipelines, mint.config.base_model_hashes = saved
    if adapted:
        save_adapters(model, folder)
    elif os.path.isdir(os.path.join(folder, ADAPTERS_FOLDER)):  # an earlier save's, which loading would merge
        shutil.rmtree(os.path.join(folder, ADAPTERS_FOLDER))
    if auto_class == "AutoModelForSpeechSeq2Seq":
        processor.save_pretrained(folder)
    else:
        save_embedding_processor(processor, folder)
    # transformers copies the model's and the processor's modules with their relative imports; the pipelines are
    # registered through `custom_pipelines` only, so their module (and what it imports) is copied here.
    for file in (pipelines_mint.__file__, *get_relative_import_files(pipelines_mint.__file__)):
        shutil.copy(file, os.path.join(folder, os.path.basename(file)))
    card = model_card(mint, repo_id, eval_results, datasets, base_models, recipe)
    card.save(os.path.join(folder, "README.md"))
    if push_to_hub:
        api = HfApi()
        api.create_repo(repo_id, exist_ok=True, private=push_kwargs.pop("private", None))
        api.upload_folder(folder_path=folder, repo_id=repo_id, **push_kwargs)
    return folder


__all__ = ["assemble_mint", "eval_results_from_json", "model_card", "save_for_hub", "small_t5_config",
           "word_level_tokenizer"]
