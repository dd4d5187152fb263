# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""The training recipe: a run's settings as a typed dataclass, read from JSON, checked field by field on construction,
and checked against its model folder and process count before anything trains ([`recipe_problems`])."""

import dataclasses
import difflib
import json
import math
import os
import types
from dataclasses import dataclass, field
from typing import Any, Union, get_args, get_origin

from huggingface_hub.errors import StrictDataclassError
from transformers import TrainingArguments

from checkpoint_mint import mint_stage, read_folder_config
from configuration_mint import MintConfig, check_audio_feature_augmentation, check_temperature


@dataclass
class MintRecipe:
    """
    A training run. The defaults are the paper's (section 3.2): AdamW, learning rate 1e-4, linear schedule with 2000
    warm-up steps, batch 64, 5 epochs in stage 1 and 3 in stage 2; the model config holds 32 queries, text up to 30
    tokens and clips of 3-30 s.

    `model`: a MINT folder (config, processor, and weights unless `from_scratch`); for stage 2, a stage-1 output
    directory. `datasets`: a list of `{"path", "split", "template", "weight", "audio_column", "label_column",
    "caption_column", "prompt", "streaming"}` entries; `path` is a folder saved with `save_to_disk`, an audio folder, or
    a folder written by `mint cache-features` (then its examples carry cached encoder features); `"streaming": true`
    reads the datasets lazily as an `IterableDataset` (then `max_steps` sets the run's length). `batch_size` is the
    global batch: per device it is `batch_size / (processes * gradient_accumulation_steps)`.
    `group_by_length`: batches of clips of similar length (less padding), for examples from the feature cache, whose
    `audio_length` column gives the lengths (transformers' `LengthGroupedSampler`).
    `audio_id_column` (stage 2, examples from the feature cache): a column naming each example's clip (an int or a
    string), shared by the examples that ask several instructions of one clip: training then takes a clip's examples
    one after another ([`ClipGroupedSampler`]: clips and their examples in an order drawn per epoch) and the
    collator passes each clip's features once per batch, so that Bridge-Net reads each clip once (the same loss and
    gradients as the examples written out, for less compute where a clip has several examples).
    `learning_rates`: per-part rates, e.g. `{"qformer": 5e-5, "query_tokens": 5e-5}` (a part is a top-level module or
    parameter of the model); the other trainable parameters use `learning_rate`.
    `lora`: `{"targets": ["language_model", "qformer"], "r": 8, "alpha": 16, "dropout": 0.05}` trains LoRA adapters
    (and, in stage 2, the rest of Bridge-Net) and saves the adapters only.
    `skip_invalid_examples`: leave out, with a logged warning and a count, the examples that would otherwise stop
    training with an error (non-finite cached features, audio the processor refuses; see [`CheckedCollator`]).
    `max_train_minutes`: a wall-clock budget for the training loop (model loading excluded): once spent, training stops
    after the current optimizer step and saves a complete checkpoint and the model, as at the end of a run; a later
    run with `resume` continues from there (with a fresh budget).
    Opt-in speed levers (`mint.training.speed`): `bridge_autocast` runs the trainable Bridge-Net under bf16 autocast
    with fp32 weights (with `bf16: false`, the frozen parts loaded in bf16); `compile: "regional"` compiles each
    transformer layer of the Q-Former and the LLM; `length_groups: N` (stage 2) computes each batch's loss over N
    micro-batches of examples of similar length, their padding cut, with the same loss and gradients.
    `overwrite`: replace an `output_dir` that holds something other than a run of this stage and model (unrelated
    files, another run), which is refused otherwise; a run of the same stage and model is resumed (`resume`) as it is.
    `training_args`: further `TrainingArguments` (not those the recipe sets through its own fields).
    `feature_augmentation` (either stage): augmentation of the encoder features in training only, `{"time_mask": 0.1,
    "crop": 0.8, "noise": 0.05}` (see `MintConfig.audio_feature_augmentation`); unset, the model folder's setting
    holds (stage 2 inherits stage 1's).
    `dropout` (either stage): the dropout probability of Bridge-Net's Q-Former for this run (its config's
    `hidden_dropout_prob` and `attention_probs_dropout_prob`) and, in stage 2 with a trained LLM
    (`freeze_language_model=False`), of the LLM (its config's dropout settings, e.g. T5's `dropout_rate`); the saved
    model's config records it; unset, the model folder's settings hold. Frozen parts run in eval mode, without dropout,
    either way.
    `eval_fraction`: a share of the training rows held out (drawn with `seed`) and evaluated every `eval_steps` steps,
    or at the end of each epoch when `eval_steps` is unset: in stage 1, ALM's pair accuracy on them
    (`eval_alm_pair_accuracy` and the threshold-free `eval_alm_ranking_accuracy`; balanced pairs, chance 0.5); in
    stage 2, the `Trainer`'s `eval_loss`.
    `early_stopping_patience` (stage 2, with `eval_fraction`): stop once the held-out loss has not fallen for this many
    evaluations, and keep the model of the lowest held-out loss (`load_best_model_at_end`; a checkpoint is saved at
    each evaluation, `save_steps` is not used); a later run with `resume` of a stopped run trains nothing.

    Stage-1 options (section 2.2; see docs/training.md for their measured effects):
    `group_column`: a column of the training data holding each pair's group (an int or a string: a label, or any id
    shared by clips that are positives of one another); pairs of one group share ALC's target and are never ALM
    negatives of each other (LAVIS BLIP-2's `image_id`). Unset, identical captions form the groups.
    `alm_start`, `alm_hard_start`: ALM's schedule, as fractions of the run's optimizer steps: off until `alm_start`,
    then negatives drawn at random from other groups until `alm_hard_start`, then hard negatives mined from the ALC
    similarities. `alm_batch_size`: only the first k pairs of each per-process batch feed ALM.
    `temperature_init`, `temperature_range`, `learn_temperature`: the ALC temperature's value at the start of the run
    (replacing the loaded one), its clamp and whether it is trained. `learning_rates` may also name
    `"cross_attention"`, the Q-Former's cross-attention layers (randomly initialised), which then leave the `"qformer"`
    rate of the BERT-initialised layers.

    Every field is checked on construction: unknown keys (in the recipe, a dataset entry, `lora` or `training_args`)
    and values of the wrong type raise a `ValueError` naming them; numbers given as strings (`"1e-4"`) are converted.
    """

    stage: int = 1
    model: str = ""
    output_dir: str = "mint-output"
    datasets: list[dict[str, Any]] = field(default_factory=list)
    from_scratch: bool = False
    bert_init: str | None = None
    stage1_objectives: list[str] | None = None
    group_column: str | None = None
    alm_start: float = 0.0
    alm_hard_start: float | None = None
    alm_batch_size: int | None = None
    eval_fraction: float = 0.0
    eval_steps: int | None = None
    early_stopping_patience: int | None = None
    temperature_init: float | None = None
    temperature_range: list[float] | None = None
    learn_temperature: bool | None = None
    feature_augmentation: dict[str, float] | None = None
    dropout: float | None = None
    batch_size: int = 64
    gradient_accumulation_steps: int = 1
    optim: str = "adamw_torch"
    learning_rate: float = 1e-4
    learning_rates: dict[str, float] | None = None
    weight_decay: float = 0.05
    warmup_steps: int = 2000
    lr_scheduler_type: str = "linear"
    num_train_epochs: float = 5.0
    max_steps: int = -1
    seed: int = 42
    logging_steps: int = 10
    save_steps: int = 1000
    save_total_limit: int | None = 3
    resume: bool = True
    bf16: bool | None = None
    gradient_checkpointing: bool = False
    dataloader_num_workers: int = 2
    group_by_length: bool = False
    audio_id_column: str | None = None
    lora: dict[str, Any] | None = None
    skip_invalid_examples: bool = False
    max_train_minutes: float | None = None
    bridge_autocast: bool = False
    compile: str | None = None
    length_groups: int = 1
    overwrite: bool = False
    training_args: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        for item in dataclasses.fields(self):
            setattr(self, item.name, _coerce(item.name, getattr(self, item.name), item.type))
        _check_recipe_values(self)


# What a `datasets` entry of a recipe may hold, with each value's type.
DATASET_ENTRY_KEYS: dict[str, type] = {"path": str, "split": str, "template": str, "weight": float,
                                       "audio_column": str, "label_column": str, "caption_column": str, "prompt": str,
                                       "streaming": bool}
LORA_KEYS: dict[str, type] = {"targets": list[str], "r": int, "alpha": float, "dropout": float}
# Recipe fields that are `TrainingArguments` of the same name.
RECIPE_TRAINING_ARGUMENTS = (
    "output_dir", "gradient_accumulation_steps", "learning_rate", "weight_decay", "warmup_steps", "lr_scheduler_type",
    "num_train_epochs", "max_steps", "optim", "seed", "logging_steps", "save_steps", "save_total_limit",
    "dataloader_num_workers",
)
# `TrainingArguments` the recipe sets from fields of other names or fixes: `training_args` may not set them.
RECIPE_SET_TRAINING_ARGUMENTS = ("per_device_train_batch_size", "bf16", "activation_checkpointing",
                                 "gradient_checkpointing", "remove_unused_columns", "eval_strategy", "eval_steps",
                                 "load_best_model_at_end", "metric_for_best_model", "greater_is_better")
# Recipe fields that set the model config's field of another name (the others of `config_overrides` keep theirs).
RECIPE_CONFIG_FIELDS = {"stage1_objectives": "stage1_objectives", "alm_batch_size": "alm_batch_size",
                        "temperature_init": "temperature_init", "temperature_range": "temperature_range",
                        "learn_temperature": "learn_temperature", "feature_augmentation": "audio_feature_augmentation"}
# Recipe fields that only stage 1 reads, with the value that leaves them unused.
STAGE1_FIELDS = {"group_column": None, "alm_start": 0.0, "alm_hard_start": None, "alm_batch_size": None,
                 "temperature_init": None, "temperature_range": None, "learn_temperature": None}
# The columns of a MINT training example, which cannot name a clip (`audio_id_column`).
EXAMPLE_COLUMNS = ("audio", "audio_encoder_features", "caption", "prompt", "target")
# LLMs whose activations overflow fp16's range (inf/NaN losses): they train in bf16 or fp32.
FP16_UNSAFE_LLMS = ("t5", "mt5", "umt5", "longt5")
_TYPE_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def _refuse_unknown_keys(where: str, given, allowed, allowed_text: str | None = None) -> None:
    """A `ValueError` naming the keys of `given` outside `allowed`, with close matches and the allowed keys."""
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        hints = [f"{match[0]!r} for {key!r}" for key in unknown
                 if (match := difflib.get_close_matches(key, list(allowed), 1))]
        hint = f" (did you mean {', '.join(hints)}?)" if hints else ""
        allowed_text = allowed_text or f"allowed keys: {sorted(allowed)}"
        raise ValueError(f"{where} has unknown keys {unknown}{hint}; {allowed_text}.")


def _coerce(name: str, value: Any, annotation: Any) -> Any:
    """`value` checked against the type annotation `annotation`; numeric strings become numbers."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        return _coerce(name, value, next(a for a in args if a is not type(None)))
    if annotation is Any:
        return value
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"Recipe field {name} must be a list, got {value!r}.")
        return [_coerce(f"{name}[{i}]", v, args[0]) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise ValueError(f"Recipe field {name} must be an object with string keys, got {value!r}.")
        return {k: _coerce(f"{name}[{k!r}]", v, args[1]) for k, v in value.items()}
    if annotation in (int, float) and isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise ValueError(f"Recipe field {name} must be {_TYPE_NAMES[annotation]}, got the string "
                             f"{value!r}.") from None
    if annotation is int and isinstance(value, float) and value.is_integer():
        value = int(value)
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, annotation) or (annotation is not bool and isinstance(value, bool)):
        raise ValueError(f"Recipe field {name} must be {_TYPE_NAMES[annotation]}, got {value!r}.")
    if annotation is float and not math.isfinite(value):
        raise ValueError(f"Recipe field {name} must be a finite number, got {value!r}.")
    return value


def _check_at_least(recipe: MintRecipe, names: tuple[str, ...], low: float) -> None:
    for name in names:
        value = getattr(recipe, name)
        if value is not None and value < low:
            raise ValueError(f"Recipe field {name} must be at least {low:g}, got {value!r}.")


def _check_recipe_values(recipe: MintRecipe) -> None:
    if recipe.stage not in (1, 2):
        raise ValueError(f"Recipe field stage must be 1 or 2 (MINT's two training stages), got {recipe.stage!r}.")
    _check_at_least(recipe, ("batch_size", "gradient_accumulation_steps", "logging_steps", "save_steps",
                             "save_total_limit", "length_groups", "alm_batch_size", "eval_steps",
                             "early_stopping_patience"), 1)
    _check_held_out_values(recipe)
    _check_stage1_values(recipe)
    check_audio_feature_augmentation(recipe.feature_augmentation)
    if recipe.dropout is not None and not 0 <= recipe.dropout < 1:
        raise ValueError(f"Recipe field dropout must be in [0, 1) (a dropout probability), got {recipe.dropout!r}.")
    _check_audio_id_column(recipe)
    if recipe.compile not in (None, "regional"):
        raise ValueError(f"Recipe field compile must be null or 'regional', got {recipe.compile!r}.")
    _check_at_least(recipe, ("learning_rate", "weight_decay", "warmup_steps", "dataloader_num_workers"), 0)
    for name in ("num_train_epochs", "max_train_minutes"):
        if getattr(recipe, name) is not None and getattr(recipe, name) <= 0:
            raise ValueError(f"Recipe field {name} must be positive, got {getattr(recipe, name)!r}.")
    if recipe.max_steps == 0 or recipe.max_steps < -1:
        raise ValueError("Recipe field max_steps must be -1 (train num_train_epochs) or positive, got "
                         f"{recipe.max_steps}.")
    for part, rate in (recipe.learning_rates or {}).items():
        if rate < 0:
            raise ValueError(f"Recipe field learning_rates[{part!r}] must be at least 0, got {rate!r}.")
    recipe.datasets = [_checked_dataset_entry(i, entry) for i, entry in enumerate(recipe.datasets)]
    if recipe.lora is not None:
        _refuse_unknown_keys("Recipe field lora", recipe.lora, LORA_KEYS)
        recipe.lora = {k: _coerce(f"lora[{k!r}]", v, LORA_KEYS[k]) for k, v in recipe.lora.items()}
    _check_training_args(recipe.training_args)


def _check_held_out_values(recipe: MintRecipe) -> None:
    if not 0 <= recipe.eval_fraction < 1:
        raise ValueError(f"Recipe field eval_fraction must be in [0, 1) (the share of the training rows held out), "
                         f"got {recipe.eval_fraction}.")
    if recipe.early_stopping_patience is not None and recipe.stage != 2:
        raise ValueError("Recipe field early_stopping_patience is for stage 2, whose held-out loss it follows; stage "
                         "1's held-out evaluation is ALM's pair accuracy: remove it.")
    for name in ("eval_steps", "early_stopping_patience"):
        if getattr(recipe, name) is not None and recipe.eval_fraction == 0:
            raise ValueError(f"Recipe field {name} needs eval_fraction > 0: there is no held-out set to evaluate.")
    held_out_arguments = {"prediction_loss_only"} if recipe.eval_fraction > 0 else set()
    if recipe.early_stopping_patience is not None:
        held_out_arguments |= {"save_strategy", "restore_callback_states_from_checkpoint"}
    clashing = sorted(held_out_arguments & set(recipe.training_args))
    if clashing:
        raise ValueError(f"Recipe field training_args sets {clashing}, which eval_fraction and early_stopping_patience "
                         "set themselves (the held-out loss alone, a checkpoint at each evaluation, the patience "
                         "restored on resume): remove them.")
    if recipe.early_stopping_patience is None:
        return
    if recipe.save_total_limit is not None and recipe.save_total_limit < 2:
        raise ValueError("Recipe field early_stopping_patience keeps the best checkpoint and the last one, which "
                         f"records the stop; save_total_limit {recipe.save_total_limit} keeps fewer: raise it to 2 "
                         "or more, or set it to null.")


def _check_audio_id_column(recipe: MintRecipe) -> None:
    if recipe.audio_id_column is None:
        return
    if recipe.stage != 2:
        raise ValueError("Recipe field audio_id_column is for stage 2 (several instructions on one clip); stage 1's "
                         "pairs of one clip are separate rows of ALC and ALM: remove it, or name a group_column.")
    if not recipe.audio_id_column.strip():
        raise ValueError("Recipe field audio_id_column must name a column of the training data, got an empty string.")
    if recipe.audio_id_column in EXAMPLE_COLUMNS:
        raise ValueError(f"Recipe field audio_id_column names {recipe.audio_id_column!r}, a column every MINT example "
                         f"has ({', '.join(EXAMPLE_COLUMNS)}); name a column of clip ids.")
    if "train_sampling_strategy" in recipe.training_args:
        raise ValueError("Recipe field training_args sets train_sampling_strategy, which audio_id_column sets itself "
                         "(each clip's examples together): remove one of them.")
    if recipe.group_by_length:
        raise ValueError("Recipe fields audio_id_column and group_by_length both set the order of the examples (by "
                         "clip, by length): choose one.")
    if recipe.length_groups > 1:
        raise ValueError("Recipe field length_groups splits each batch into micro-batches of examples, which "
                         "audio_id_column's batches of shared clips do not split into: set length_groups to 1 or "
                         "unset audio_id_column.")


def _check_stage1_values(recipe: MintRecipe) -> None:
    if recipe.stage != 1:
        used = [name for name, unused in STAGE1_FIELDS.items() if getattr(recipe, name) != unused]
        if used:
            raise ValueError(f"Recipe fields {used} are stage-1 options (ALC, ALM and their data); this recipe is for "
                             "stage 2: remove them.")
        return
    hard_start = recipe.alm_start if recipe.alm_hard_start is None else recipe.alm_hard_start
    if not 0 <= recipe.alm_start <= hard_start <= 1:
        raise ValueError(f"Recipe fields alm_start and alm_hard_start are fractions of the run with 0 <= alm_start <= "
                         f"alm_hard_start <= 1 (alm_hard_start unset: hard negatives as soon as ALM starts), got "
                         f"{recipe.alm_start} and {recipe.alm_hard_start}.")
    if recipe.group_column is not None and not recipe.group_column.strip():
        raise ValueError("Recipe field group_column must name a column of the training data, got an empty string.")
    if recipe.temperature_init is not None and recipe.temperature_init <= 0:
        raise ValueError(f"Recipe field temperature_init must be positive, got {recipe.temperature_init}.")
    if recipe.temperature_range is not None:
        check_temperature(recipe.temperature_init or recipe.temperature_range[0], recipe.temperature_range)


def config_overrides(recipe: MintRecipe) -> dict[str, Any]:
    """The model config fields the recipe sets (`stage1_objectives`, ALM's sub-batch, the temperature, the feature
    augmentation), by their config names; the fields it leaves unset are not included."""
    return {config_name: getattr(recipe, name) for name, config_name in RECIPE_CONFIG_FIELDS.items()
            if getattr(recipe, name) is not None}


def _checked_dataset_entry(index: int, entry: dict[str, Any]) -> dict[str, Any]:
    _refuse_unknown_keys(f"Recipe datasets[{index}]", entry, DATASET_ENTRY_KEYS)
    if "path" not in entry:
        raise ValueError(f"Recipe datasets[{index}] has no 'path'; each dataset entry needs a local folder.")
    entry = {k: _coerce(f"datasets[{index}][{k!r}]", v, DATASET_ENTRY_KEYS[k]) for k, v in entry.items()}
    if entry.get("weight", 1.0) <= 0:
        raise ValueError(f"Recipe datasets[{index}]['weight'] must be positive, got {entry['weight']!r}.")
    return entry


def _check_training_args(training_args: dict[str, Any]) -> None:
    from_recipe = {*RECIPE_TRAINING_ARGUMENTS, *RECIPE_SET_TRAINING_ARGUMENTS}
    clashing = sorted(set(training_args) & from_recipe)
    if clashing:
        raise ValueError(f"Recipe field training_args sets {clashing}, which the recipe sets itself: use the recipe's "
                         "own fields (batch_size, bf16, gradient_checkpointing, learning_rate, ...).")
    _refuse_unknown_keys("Recipe field training_args", training_args,
                         {f.name for f in dataclasses.fields(TrainingArguments)} - from_recipe,
                         "they must be fields of transformers' TrainingArguments")


def default_recipe(stage: int) -> MintRecipe:
    """The paper's settings for stage 1 (5 epochs) or stage 2 (3 epochs)."""
    if stage not in (1, 2):
        raise ValueError(f"MINT has training stages 1 and 2, got {stage}.")
    return MintRecipe(stage=stage, num_train_epochs=5.0 if stage == 1 else 3.0,
                      output_dir=f"mint-stage{stage}")


def load_recipe(path: str | os.PathLike, overrides: list[str] | None = None) -> MintRecipe:
    """Reads a JSON recipe and applies `key=value` overrides (values parsed as JSON where they parse)."""
    if os.path.isdir(path):
        raise ValueError(f"The recipe {os.fspath(path)!r} is a folder; give the path of a JSON recipe file.")
    try:
        with open(path, encoding="utf-8") as f:
            values = json.load(f)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"The recipe {os.fspath(path)!r} is not a JSON file: {error}.") from None
    if not isinstance(values, dict):
        raise ValueError(f"The recipe {os.fspath(path)!r} must hold a JSON object of recipe fields, got "
                         f"{type(values).__name__}.")
    known = {f.name for f in dataclasses.fields(MintRecipe)}
    for item in overrides or []:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ValueError(f"An override must look like key=value, got {item!r}.")
        try:
            values[key] = json.loads(raw)
        except json.JSONDecodeError:
            values[key] = raw
    _refuse_unknown_keys(f"The recipe {os.fspath(path)!r}", values, known)
    return MintRecipe(**values)


def per_device_batch_size(batch_size: int, world_size: int, accumulation: int) -> int:
    """The per-device batch of a global `batch_size`; a clear error when it does not divide."""
    if batch_size % (world_size * accumulation):
        raise ValueError(f"batch_size {batch_size} does not divide across {world_size} processes x "
                         f"{accumulation} accumulation steps; pick a multiple of {world_size * accumulation}.")
    return batch_size // (world_size * accumulation)


def check_llm_precision(llm_model_type: str, precision: str) -> None:
    """Refuses `precision="fp16"` for a T5 LLM (`llm_model_type` in `FP16_UNSAFE_LLMS`), which overflows in fp16."""
    if precision == "fp16" and llm_model_type in FP16_UNSAFE_LLMS:
        raise ValueError(f"fp16 is refused with a {llm_model_type} LLM: T5 overflows in fp16 (its activations exceed "
                         "fp16's range and the loss turns inf/NaN). Use bf16 (recipe `bf16: true`) or fp32.")


def model_folder_config(folder: str | os.PathLike, stage: int, **overrides: Any) -> MintConfig:
    """
    The configuration of a recipe's model folder, with `overrides` of its attributes (`stage1_objectives=[...]`);
    `checkpoint_mint.mint_stage` checks first that the folder is a saved MINT model. A folder that is not raises a
    `ValueError` naming it, with the way out for a stage-`stage` recipe whose stage-1 output does not exist yet.
    """
    try:
        mint_stage(folder)
    except ValueError as error:
        hint = (" Stage 2 starts from the stage-1 output, which stage 1 writes: until it exists, plan with --model "
                "(model=) set to a MINT folder of the same configuration, e.g. the stage-1 recipe's model."
                if stage == 2 and read_folder_config(folder) is None else "")
        raise ValueError(f"{os.fspath(folder)!r} is not a MINT checkpoint ({error}); the recipe's model must be a "
                         f"saved MINT folder (for stage 2, the output directory of a stage-1 run).{hint}") from None
    try:
        config = MintConfig.from_pretrained(folder, **overrides)
        config.validate()  # `from_pretrained` sets its keyword overrides without validating them
    except StrictDataclassError as error:  # a recipe's override the config refuses, e.g. an unknown objective
        raise ValueError(f"The recipe's model settings {sorted(overrides)} are refused: "
                         f"{error.__cause__ or error}") from None
    return config


def dataset_list_problems(recipe: MintRecipe) -> list[str]:
    """
    What is wrong with the recipe's list of datasets as a whole, before any is read: none listed, or a streamed run
    (any entry with `"streaming": true`) without `max_steps` or with `group_by_length`. One sentence per problem.
    """
    if not recipe.datasets:
        return ["The recipe lists no datasets."]
    if not any(spec.get("streaming") for spec in recipe.datasets):
        return []
    problems = []
    if recipe.max_steps <= 0:
        problems.append("A streamed dataset has no length, so the number of training steps cannot follow from "
                        "num_train_epochs: set max_steps (e.g. epochs x examples / batch_size).")
    if recipe.group_by_length:
        problems.append("group_by_length sorts a dataset by length, which a streamed dataset cannot do: turn off "
                        "streaming or group_by_length.")
    return problems


def recipe_problems(recipe: MintRecipe, num_processes: int = 1, gradient_accumulation_steps: int | None = None,
                    model: str | os.PathLike | None = None, datasets: bool = True) -> list[str]:
    """
    Every problem that stops `recipe` from training on `num_processes` processes, found without reading a dataset or
    loading weights: its model folder (`model`, default the recipe's: a MINT folder, whose LLM allows the precision
    asked for), a global batch that does not divide into `num_processes` x `gradient_accumulation_steps` (default: the
    recipe's), and with `datasets` its dataset list ([`dataset_list_problems`]; `train` checks that list when it
    builds the datasets, unless it is given a dataset instead). `train` and `mint plan` both run it.

    Returns:
        One sentence per problem, naming its fix; empty when there is none.
    """
    problems = dataset_list_problems(recipe) if datasets else []
    try:
        config = model_folder_config(model or recipe.model, recipe.stage, **config_overrides(recipe))
        if recipe.stage == 2 and recipe.training_args.get("fp16"):
            check_llm_precision(config.text_config.model_type, "fp16")
    except ValueError as error:
        problems.append(str(error))
    try:
        per_device_batch_size(recipe.batch_size, num_processes,
                              gradient_accumulation_steps or recipe.gradient_accumulation_steps)
    except ValueError as error:
        problems.append(str(error))
    return problems


def check_recipe(recipe: MintRecipe, num_processes: int = 1, datasets: bool = True) -> None:
    """Raises a `ValueError` with every problem [`recipe_problems`] finds in `recipe` on `num_processes` processes."""
    problems = recipe_problems(recipe, num_processes, datasets=datasets)
    if len(problems) == 1:
        raise ValueError(problems[0])
    if problems:
        raise ValueError("The recipe cannot train:\n- " + "\n- ".join(problems))


# A part of `learning_rates` beyond the model's top-level parts: the Q-Former's cross-attention layers, randomly
# initialised where the rest of the Q-Former comes from BERT (section 2.1).
CROSS_ATTENTION_PART, CROSS_ATTENTION_KEY = "cross_attention", ".crossattention."


def learning_rate_part(name: str, learning_rates: dict[str, float]) -> str:
    """The `learning_rates` part of the parameter `name`: its top-level part, or `"cross_attention"` where that is
    given a rate and the parameter belongs to a cross-attention layer."""
    if CROSS_ATTENTION_PART in learning_rates and CROSS_ATTENTION_KEY in name:
        return CROSS_ATTENTION_PART
    return name.split(".")[0]


def learning_rate_of(name: str, learning_rates: dict[str, float]) -> float | None:
    """The rate `learning_rates` gives the parameter `name` (None: the base rate); a part at 0 is frozen."""
    return learning_rates.get(learning_rate_part(name, learning_rates))


__all__ = ["DATASET_ENTRY_KEYS", "FP16_UNSAFE_LLMS", "LORA_KEYS", "MintRecipe", "check_llm_precision", "check_recipe",
           "config_overrides", "dataset_list_problems", "default_recipe", "learning_rate_of", "learning_rate_part",
           "load_recipe", "model_folder_config",
           "per_device_batch_size", "recipe_problems"]
