# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""Training MINT with the transformers `Trainer`: recipes for stage 1 and stage 2, safe checkpoints, resume, LoRA.

    mint-train print-recipe stage1 > stage1.json     # the paper's settings (section 3.2), to copy and edit
    mint-train run stage1.json --set output_dir=out-stage1
    mint-train cache-features --model out-stage1 --dataset my_examples --output cache/
    torchrun --nproc_per_node 8 -m training_mint run stage2.json   # DDP; negatives gathered across processes

Python: `train(load_recipe("stage1.json"))` returns the `Trainer` after training.
"""

import argparse
import dataclasses
import difflib
import json
import math
import os
import re
import sys
import time
import types
from dataclasses import dataclass, field
from typing import Any, Union, get_args, get_origin

import numpy as np
import torch
from datasets import Dataset, IterableDataset
from transformers import Trainer, TrainerCallback, TrainingArguments, set_seed
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR
from transformers.utils import logging


from checkpoint_mint import stored_parts
from configuration_mint import MintConfig
from mint.data.examples import (CACHED_LENGTH, SKIPPED_CLIPS_FILE, MintDataCollator, cache_audio_features,
                       load_local_dataset, merge_feature_cache, mix_datasets, to_caption_pairs, to_mint_examples)
from modeling_mint import MintForConditionalGeneration, MintForPreTraining
from processing_mint import MintProcessor, clip_error_reason
from mint.training.speed import autocast_bridge, compile_regions, length_grouped_loss


logger = logging.get_logger(__name__)

COMPLETE_MARKER = "mint_checkpoint_complete.json"
OBJECTIVE_LOSSES = ("loss_alc", "loss_alm", "loss_atg")
# Columns [`number_rows`] adds, so that a bad example is named by its dataset and row.
ROW_COLUMN, SOURCE_COLUMN = "mint_row", "mint_source"
# Batch entries [`CheckedCollator`] adds for [`MintTrainer`], which removes them before the model sees the batch.
EXAMPLES_KEY, SKIPPED_KEY = "mint_examples", "mint_skipped"


@dataclass
class MintRecipe:
    """
    A training run. The defaults are the paper's (section 3.2): AdamW, learning rate 1e-4, linear schedule with 2000
    warm-up steps, batch 64, 5 epochs in stage 1 and 3 in stage 2; the model config holds 32 queries, text up to 30
    tokens and clips of 3-30 s.

    `model`: a MINT folder (config, processor, and weights unless `from_scratch`); for stage 2, a stage-1 output
    directory. `datasets`: a list of `{"path", "split", "template", "weight", "audio_column", "label_column",
    "caption_column", "prompt", "streaming"}` entries; `path` is a folder saved with `save_to_disk`, an audio folder, or
    a folder written by `mint-train cache-features` (then its examples carry cached encoder features); `"streaming":
    true` reads the datasets lazily as an `IterableDataset` (then `max_steps` sets the run's length). `batch_size` is
    the global batch: per device it is `batch_size / (processes * gradient_accumulation_steps)`.
    `group_by_length`: batches of clips of similar length (less padding), for examples from the feature cache, whose
    `audio_length` column gives the lengths (transformers' `LengthGroupedSampler`).
    `learning_rates`: per-part rates, e.g. `{"qformer": 5e-5, "query_tokens": 5e-5}` (a part is a top-level module or
    parameter of the model); the other trainable parameters use `learning_rate`.
    `lora`: `{"targets": ["language_model", "qformer"], "r": 8, "alpha": 16, "dropout": 0.05}` trains LoRA adapters
    (and, in stage 2, the rest of Bridge-Net) and saves the adapters only.
    `skip_invalid_examples`: leave out, with a logged warning and a count, the examples that would otherwise stop
    training with an error (non-finite cached features, audio the processor refuses; see [`CheckedCollator`]).
    `max_train_minutes`: a wall-clock budget for the training loop (model loading excluded): once spent, training stops
    after the current optimizer step and saves a complete checkpoint and the model, as at the end of a run; a later
    run with `resume` continues from there (with a fresh budget).
    Opt-in speed levers (`speed_mint`): `bridge_autocast` runs the trainable Bridge-Net under bf16 autocast with fp32
    weights (with `bf16: false`, the frozen parts loaded in bf16); `compile: "regional"` compiles each transformer
    layer of the Q-Former and the LLM; `length_groups: N` (stage 2) computes each batch's loss over N micro-batches
    of examples of similar length, their padding cut, with the same loss and gradients.
    `training_args`: further `TrainingArguments` (not those the recipe sets through its own fields).

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
    lora: dict[str, Any] | None = None
    skip_invalid_examples: bool = False
    max_train_minutes: float | None = None
    bridge_autocast: bool = False
    compile: str | None = None
    length_groups: int = 1
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


def _check_at_least(recipe: "MintRecipe", names: tuple[str, ...], low: float) -> None:
    for name in names:
        value = getattr(recipe, name)
        if value is not None and value < low:
            raise ValueError(f"Recipe field {name} must be at least {low:g}, got {value!r}.")


def _check_recipe_values(recipe: "MintRecipe") -> None:
    if recipe.stage not in (1, 2):
        raise ValueError(f"Recipe field stage must be 1 or 2 (MINT's two training stages), got {recipe.stage!r}.")
    _check_at_least(recipe, ("batch_size", "gradient_accumulation_steps", "logging_steps", "save_steps",
                             "save_total_limit", "length_groups"), 1)
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


def _checked_dataset_entry(index: int, entry: dict[str, Any]) -> dict[str, Any]:
    _refuse_unknown_keys(f"Recipe datasets[{index}]", entry, DATASET_ENTRY_KEYS)
    if "path" not in entry:
        raise ValueError(f"Recipe datasets[{index}] has no 'path'; each dataset entry needs a local folder.")
    entry = {k: _coerce(f"datasets[{index}][{k!r}]", v, DATASET_ENTRY_KEYS[k]) for k, v in entry.items()}
    if entry.get("weight", 1.0) <= 0:
        raise ValueError(f"Recipe datasets[{index}]['weight'] must be positive, got {entry['weight']!r}.")
    return entry


def _check_training_args(training_args: dict[str, Any]) -> None:
    from_recipe = set(_RECIPE_TRAINING_ARGUMENTS) | {"per_device_train_batch_size", "bf16", "activation_checkpointing",
                                                     "gradient_checkpointing", "remove_unused_columns"}
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
    with open(path) as f:
        values = json.load(f)
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


class CompleteCheckpointCallback(TrainerCallback):
    """Marks a checkpoint complete once the Trainer has written all of it: a checkpoint cut short is never resumed."""

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            folder = os.path.join(args.output_dir, f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}")
            if os.path.isdir(folder):
                with open(os.path.join(folder, COMPLETE_MARKER), "w") as f:
                    json.dump({"global_step": state.global_step}, f)
        return control


class TimeBudgetCallback(TrainerCallback):
    """Stops training once `minutes` of wall-clock time have passed since it began, saving a checkpoint of the last
    step first."""

    def __init__(self, minutes: float):
        self.minutes = minutes
        self._start = time.monotonic()

    def on_train_begin(self, args, state, control, **kwargs):
        self._start = time.monotonic()

    def on_step_end(self, args, state, control, **kwargs):
        if time.monotonic() - self._start >= 60 * self.minutes:
            logger.warning(f"The time budget of {self.minutes:g} min is spent: training stops at step "
                           f"{state.global_step} and saves its checkpoint.")
            control.should_training_stop = control.should_save = True
        return control


def last_complete_checkpoint(output_dir: str | os.PathLike) -> str | None:
    """The newest `checkpoint-N` in `output_dir` that carries the completion marker; partial ones are skipped."""
    if not os.path.isdir(output_dir):
        return None
    pattern = re.compile(rf"^{PREFIX_CHECKPOINT_DIR}-(\d+)$")
    steps = sorted(
        (int(m.group(1)), name) for name in os.listdir(output_dir) if (m := pattern.match(name))
        and os.path.isfile(os.path.join(output_dir, name, COMPLETE_MARKER))
    )
    return os.path.join(output_dir, steps[-1][1]) if steps else None


def number_rows(dataset, source: int = 0):
    """
    `dataset` with each example's row (`mint_row`) and the index of its source dataset (`mint_source`), which
    [`CheckedCollator`] names when an example is invalid. Map-style and iterable `datasets` are numbered; other
    datasets are returned as they are.
    """
    if isinstance(dataset, Dataset):
        # Numbered unformatted: adding a column to a shuffled dataset rewrites it, which Arrow refuses for the
        # numpy-formatted 2-D features of the feature cache. The format is restored afterwards.
        form = dataset.format
        numbered = dataset.with_format(None).add_column(ROW_COLUMN, np.arange(len(dataset))).add_column(
            SOURCE_COLUMN, np.full(len(dataset), source))
        columns = form["columns"] if form["columns"] is None or form["output_all_columns"] else \
            [*form["columns"], ROW_COLUMN, SOURCE_COLUMN]
        return numbered.with_format(form["type"], columns=columns, output_all_columns=form["output_all_columns"])
    if isinstance(dataset, IterableDataset):
        return dataset.map(lambda _, row: {ROW_COLUMN: row, SOURCE_COLUMN: source}, with_indices=True)
    return dataset


@dataclass
class CheckedCollator:
    """
    Checks each example, then batches the valid ones with `collator` ([`MintDataCollator`]).

    An example is invalid when its cached `audio_encoder_features` hold a NaN or infinite value, or when the processor
    refuses its audio (undecodable, empty, non-finite or too short). An invalid example raises a `ValueError` naming its
    dataset (`sources[mint_source]`), its row (`mint_row`, see [`number_rows`]), the column and the audio file; with
    `skip_invalid` it is left out of the batch with a logged warning instead, and the batch counts it under
    `mint_skipped`. Each batch lists where its examples come from under `mint_examples`, for [`MintTrainer`]'s messages.
    With the processor's `"window"` policy every window of a clip is a training example with the clip's text.
    """

    collator: Any
    sources: list[str] = field(default_factory=lambda: ["the training dataset"])
    skip_invalid: bool = False

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        examples, skipped = self._drop_invalid(examples, self._feature_problem)
        try:
            batch = self.collator(examples)
        except (ValueError, TypeError):
            valid, more = self._drop_invalid(examples, self._audio_problem)
            if not more:
                raise
            examples, skipped = valid, skipped + more
            batch = self.collator(examples)
        batch.pop("clip_index", None)
        batch[EXAMPLES_KEY] = [self.where(e) for e in examples]
        batch[SKIPPED_KEY] = skipped
        return batch

    def where(self, example: dict[str, Any]) -> str:
        """The example's row, dataset and audio file, as the error messages name them."""
        audio = example.get("audio")
        path = audio if isinstance(audio, str) else audio.get("path") if isinstance(audio, dict) else None
        place = (f"row {int(example[ROW_COLUMN])} of {self.sources[int(example.get(SOURCE_COLUMN, 0))]}"
                 if ROW_COLUMN in example else f"an example of {self.sources[0]}")
        return place + (f" (file {path!r})" if path else "")

    def _drop_invalid(self, examples, problem_of) -> tuple[list[dict[str, Any]], int]:
        valid = []
        for example in examples:
            problem = problem_of(example)
            if problem is None:
                valid.append(example)
            elif not self.skip_invalid:
                raise ValueError(f"Invalid training example: {self.where(example)}, {problem}. Fix or remove it, or "
                                 "set skip_invalid_examples in the recipe to skip such examples.")
            else:
                logger.warning(f"Skipping invalid training example: {self.where(example)}, {problem}.")
        if not valid:
            raise ValueError(f"Every example of a training batch is invalid ({', '.join(map(self.where, examples))}); "
                             "fix the dataset.")
        return valid, len(examples) - len(valid)

    @staticmethod
    def _feature_problem(example: dict[str, Any]) -> str | None:
        if "audio_encoder_features" not in example:
            return None
        values = np.asarray(example["audio_encoder_features"])
        if values.dtype.kind != "f":
            return None
        bad = np.argwhere(~np.isfinite(values))
        if not len(bad):
            return None
        first = tuple(int(i) for i in bad[0])
        at = f"frame {first[0]}, dimension {first[1]}" if len(first) == 2 else f"index {first}"
        return (f"column 'audio_encoder_features': {len(bad)} non-finite value{'s' * (len(bad) > 1)} (the first "
                f"{values[first]} at {at}); rebuild the feature cache")

    def _audio_problem(self, example: dict[str, Any]) -> str | None:
        try:
            self.collator([example])
        except (ValueError, TypeError) as error:
            return f"column 'audio': {clip_error_reason(error)}"
        return None


def _describe(examples: list[str] | None) -> str:
    if not examples:
        return "this batch"
    return f"the batch of {'; '.join(examples[:8])}" + (f" and {len(examples) - 8} more" if len(examples) > 8 else "")


def check_finite_weights(model, destination: str | os.PathLike) -> None:
    """Raises a `FloatingPointError` naming the parameters of `model` that hold NaN or infinite values."""
    named = [(name, p) for name, p in model.named_parameters() if p.numel()]
    finite = torch.stack([torch.isfinite(p).all() for _, p in named]).tolist()
    bad = [name for (name, _), ok in zip(named, finite) if not ok]
    if bad:
        raise FloatingPointError(f"Not saving {os.fspath(destination)!r}: the weights {bad[:10]} "
                                 f"{'and more ' if len(bad) > 10 else ''}hold NaN or infinite values.")


class MintTrainer(Trainer):
    """
    `Trainer` that also logs each stage-1 objective's loss (`loss_alc`, `loss_alm`, `loss_atg`) separately, and gives
    named parts of the model their own learning rates (`learning_rates={"qformer": 5e-5}`); the schedule scales every
    part's rate alike. The logged `learning_rate` is the base rate's; each part's is logged as `learning_rate_<part>`.

    Non-finite values never reach the weights: a NaN or infinite loss, or gradient (without fp16 loss scaling, whose
    skipped steps are expected), raises a `FloatingPointError` naming the step and the batch's examples before the
    optimizer step; a model with non-finite weights is never saved. Batches from [`CheckedCollator`] report their
    skipped invalid examples, logged as `skipped_examples` (the total so far).
    """

    def __init__(self, *args, learning_rates: dict[str, float] | None = None, length_groups: int = 1, **kwargs):
        super().__init__(*args, **kwargs)
        self.length_groups = length_groups
        self.skipped_examples = 0
        self._schedule_scale = 1.0
        self._objective_totals: dict[str, list[float]] = {}
        self.learning_rates = dict(learning_rates or {})
        parts = {name.split(".")[0] for name, _ in _unwrapped(self.model).named_parameters()}
        unknown = set(self.learning_rates) - parts
        if unknown:
            raise ValueError(f"learning_rates names {sorted(unknown)}, which are not parts of the model; "
                             f"its parts are {sorted(parts)}.")

    def create_optimizer(self, model=None):
        optimizer = super().create_optimizer(model)
        if self.learning_rates and not getattr(optimizer, "_mint_split", False):
            part_of = {id(p): name.split(".")[0] for name, p in _unwrapped(self.model).named_parameters()}
            groups = []
            for group in optimizer.param_groups:
                by_rate: dict[float, list] = {}
                for parameter in group["params"]:
                    rate = self.learning_rates.get(part_of[id(parameter)], group["lr"])
                    by_rate.setdefault(rate, []).append(parameter)
                groups += [{**group, "params": params, "lr": rate, "initial_lr": rate}
                           for rate, params in by_rate.items()]
            optimizer.param_groups = groups
            optimizer._mint_split = True
        return optimizer

    def _get_learning_rate(self) -> float:
        """The base `learning_rate` as the schedule scales it now (with per-part rates, the first parameter group may
        be a part's)."""
        if not self.learning_rates:
            return super()._get_learning_rate()
        self._schedule_scale = next((group["lr"] / group["initial_lr"] for group in self.optimizer.param_groups
                                     if group.get("initial_lr")), 1.0)
        return self.args.learning_rate * self._schedule_scale

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if self.length_groups > 1 and "labels" in inputs and not return_outputs:
            return length_grouped_loss(model, inputs, self.length_groups, num_items_in_batch)
        loss, outputs = super().compute_loss(model, inputs, return_outputs=True,
                                             num_items_in_batch=num_items_in_batch)
        for name in OBJECTIVE_LOSSES:
            value = outputs.get(name) if isinstance(outputs, dict) else getattr(outputs, name, None)
            if value is not None:
                mean = self.accelerator.reduce(value.detach().float(), reduction="mean")
                self._objective_totals.setdefault(name, []).append(float(mean))
        return (loss, outputs) if return_outputs else loss

    def training_step(self, model, inputs, num_items_in_batch=None):
        examples = inputs.pop(EXAMPLES_KEY, None)
        self.skipped_examples += int(inputs.pop(SKIPPED_KEY, 0))
        loss = super().training_step(model, inputs, num_items_in_batch)
        step = self.state.global_step + 1
        if not torch.isfinite(loss):
            raise FloatingPointError(f"The training loss is {loss.item()} at step {step}, on {_describe(examples)}; "
                                     "training stopped before the optimizer step, so no weight was updated with it.")
        if self.accelerator.sync_gradients and self.accelerator.scaler is None:
            self._check_finite_gradients(model, step, examples)
        return loss

    def _check_finite_gradients(self, model, step: int, examples: list[str] | None) -> None:
        named = [(name, p.grad) for name, p in model.named_parameters() if p.grad is not None]
        # One fused norm over every gradient (a tenth of the cost of checking each tensor): a NaN or infinite value
        # makes it non-finite; only then is each tensor checked, for the message.
        if not named or bool(torch.isfinite(torch.nn.utils.get_total_norm([grad for _, grad in named]))):
            return
        bad = [name for name, grad in named if not bool(torch.isfinite(grad).all())]
        if bad:
            raise FloatingPointError(f"The gradients of {bad[:10]} hold NaN or infinite values at step {step}, on "
                                     f"{_describe(examples)}; training stopped before the optimizer step, so no "
                                     "weight was updated with them.")

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        check_finite_weights(self.model, output_dir or self.args.output_dir)
        super().save_model(output_dir, _internal_call)

    def log(self, logs: dict[str, float], *args, **kwargs) -> None:
        if "loss" in logs and self._objective_totals:
            logs.update({name: round(sum(v) / len(v), 6) for name, v in self._objective_totals.items()})
            self._objective_totals = {}
        if "loss" in logs and self.skipped_examples:
            logs["skipped_examples"] = self.skipped_examples
        if "learning_rate" in logs:
            logs.update({f"learning_rate_{part}": rate * self._schedule_scale
                         for part, rate in self.learning_rates.items()})
        super().log(logs, *args, **kwargs)


def _unwrapped(model):
    """The MINT model under a peft wrapper (whose parameter names gain a `base_model.model.` prefix)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def _is_mint_checkpoint(path: str) -> bool:
    config = os.path.join(path, "config.json")
    if not os.path.isfile(config):
        return False
    with open(config) as f:
        return json.load(f).get("model_type") == "mint"


def load_model(recipe: MintRecipe):
    """The stage's model from `recipe.model`, with `stage1_objectives` and LoRA applied."""
    if not _is_mint_checkpoint(recipe.model):
        raise ValueError(f"{recipe.model!r} is not a MINT checkpoint (expected a folder whose config.json has "
                         "model_type 'mint'; for stage 2, the output directory of a stage-1 run).")
    overrides = {"stage1_objectives": recipe.stage1_objectives} if recipe.stage1_objectives else {}
    model_class = MintForPreTraining if recipe.stage == 1 else MintForConditionalGeneration
    if recipe.from_scratch:
        model = model_class(MintConfig.from_pretrained(recipe.model, **overrides))
    else:
        model = model_class.from_pretrained(recipe.model, **overrides)
    if recipe.bert_init:
        model.init_qformer_from_bert(recipe.bert_init)
    if recipe.bridge_autocast:
        autocast_bridge(model)
    if recipe.compile == "regional":
        compile_regions(model, parts=tuple(part for part in ("language_model", "qformer") if hasattr(model, part)))
    if recipe.lora:
        lora_base_folders(model, recipe.model)
        model = add_lora(model, **recipe.lora)
    return model


def add_lora(model, targets=("language_model",), r: int = 8, alpha: int = 16, dropout: float = 0.05):
    """
    Wraps `model` with `peft` LoRA adapters on the attention projections of the LLM (`"language_model"`) and/or the
    Q-Former (`"qformer"`). Whatever the config does not freeze (Bridge-Net in stage 2) stays trainable and is saved
    with the adapters ([`save_lora_run`]); the frozen base weights are not saved, and `from_pretrained` of the saved
    folder puts them back with the adapters merged.
    """
    from peft import LoraConfig, get_peft_model

    patterns = {"language_model": r"language_model\..*\.(q|v|q_proj|v_proj|c_attn)",
                "qformer": r"qformer\..*\.attention\.(query|value)"}
    unknown = set(targets) - set(patterns)
    if unknown:
        raise ValueError(f"LoRA targets must be among {sorted(patterns)}, got {sorted(unknown)}.")
    trainable = [n for n, p in model.named_parameters() if p.requires_grad and not n.startswith(tuple(targets))]
    modules_to_save = sorted({n.split(".")[0] for n in trainable} - {"query_tokens", "temp"})
    config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout,
                        target_modules="|".join(f"({patterns[t]})" for t in targets),
                        modules_to_save=modules_to_save or None)
    peft_model = get_peft_model(model, config)
    for name, parameter in peft_model.base_model.model.named_parameters():
        if name in ("query_tokens", "temp"):  # bare parameters peft cannot list in modules_to_save
            parameter.requires_grad_(True)
    return peft_model


def lora_base_folders(model, folder: str | os.PathLike) -> dict[str, str]:
    """
    Where the frozen parts of a LoRA run come from when its output is reloaded: `folder` (the recipe's model) for a
    part it stores, else the base folder its config names. A part found in neither (the LLM of a stage-1 folder built
    from its config) is refused before training, since the adapters could not be reloaded onto it.
    """
    stored = stored_parts(folder) or set()
    bases = model.config.base_models or {}
    found = {name: os.fspath(folder) if name in stored else bases.get(name) for name in model._frozen_module_names()}
    missing = [name for name, base in found.items() if not base]
    if missing:
        raise ValueError(f"LoRA adapts frozen parts that must be reloadable: {os.fspath(folder)!r} stores no {missing} "
                         "and names no base folder for it. Start LoRA from a stage-2 folder that stores its LLM.")
    return found


def save_lora_run(peft_model, processor: MintProcessor, recipe: "MintRecipe") -> None:
    """
    Writes a LoRA run as a MINT folder of its trained parts (`hub_mint.save_for_hub(trained_parts_only=True)`):
    Bridge-Net and the queries, peft's own adapter folder `adapters/`, and `config.base_models` pointing at the frozen
    parts' folders; `from_pretrained(output_dir)` reassembles the model and merges the adapters.
    """
    from mint.hub import save_for_hub

    check_finite_weights(peft_model, recipe.output_dir)
    base = peft_model.get_base_model()
    save_for_hub(peft_model, processor, recipe.output_dir, trained_parts_only=True,
                 base_models=lora_base_folders(base, recipe.model), recipe=recipe)


# A streamed dataset is read as this many contiguous shards: enough to split over 2 nodes x 8 GPUs x 4 dataloader
# workers, each process and worker reading shards of its own.
STREAM_SHARDS = 1024
# Examples a streamed dataset's shuffle buffer holds (the shard order is shuffled as well).
STREAM_SHUFFLE_BUFFER = 1000
# LLMs whose activations overflow fp16's range (inf/NaN losses): they train in bf16 or fp32.
FP16_UNSAFE_LLMS = ("t5", "mt5", "umt5", "longt5")


def _load_one_dataset(spec: dict[str, Any], stage: int, streaming: bool = False,
                      seed: int = 0) -> Dataset | IterableDataset:
    """
    One recipe dataset as MINT examples of the stage. With `streaming` it is an `IterableDataset` read lazily from its
    memory-mapped folder (shuffled shards and a shuffle buffer): the examples are converted as training reads them,
    never copied ahead of it. (An audio folder is still turned into Arrow files by `datasets` first.)
    """
    if not spec.get("path"):
        raise ValueError(f"Each recipe dataset needs a local 'path'; got {spec}.")
    path = spec["path"]
    dataset = load_local_dataset(path, spec.get("split", "train"))
    if streaming:
        dataset = _stream(dataset, seed)
    if "audio_encoder_features" in dataset.column_names:  # written by cache-features: already MINT examples
        return _cached_features_as_numpy(dataset)
    if stage == 1:
        return to_caption_pairs(dataset, spec.get("audio_column", "audio"), spec.get("caption_column", "caption"))
    if "template" not in spec:
        raise ValueError(f"Stage-2 dataset {path!r} needs a 'template' (one of the paper's Table 1 names or yours).")
    return to_mint_examples(dataset, spec["template"], spec.get("audio_column", "audio"), spec.get("label_column"),
                            spec.get("caption_column"), spec.get("prompt"))


def _stream(dataset: Dataset, seed: int) -> IterableDataset:
    """A memory-mapped dataset as a shuffled `IterableDataset` of up to `STREAM_SHARDS` shards."""
    shards = max(1, min(STREAM_SHARDS, dataset.num_rows))
    return dataset.to_iterable_dataset(num_shards=shards).shuffle(seed=seed, buffer_size=STREAM_SHUFFLE_BUFFER)


def _cached_features_as_numpy(dataset: Dataset | IterableDataset) -> Dataset | IterableDataset:
    """Cached features read as numpy arrays rather than nested Python lists (what `cache_audio_features` returns)."""
    if isinstance(dataset, IterableDataset):
        return dataset.with_format("numpy")
    return dataset.with_format("numpy", columns=["audio_encoder_features"], output_all_columns=True)


def build_train_dataset(recipe: MintRecipe) -> Dataset | IterableDataset:
    """
    The recipe's datasets as MINT examples, mixed by weight. When any entry has `"streaming": true`, all are streamed
    and the mixture repeats without end: a streamed run has no length, so `max_steps` sets its duration, and every
    process reads batches until then (none runs out of data before the others).
    """
    if not recipe.datasets:
        raise ValueError("The recipe lists no datasets.")
    streaming = any(spec.get("streaming") for spec in recipe.datasets)
    parts = [_load_one_dataset(spec, recipe.stage, streaming, recipe.seed) for spec in recipe.datasets]
    weights = [spec.get("weight", 1.0) for spec in recipe.datasets]
    if not streaming:
        return mix_datasets(parts, weights, seed=recipe.seed)
    if recipe.max_steps <= 0:
        raise ValueError("A streamed dataset has no length, so the number of training steps cannot follow from "
                         "num_train_epochs: set max_steps (e.g. epochs x examples / batch_size).")
    if recipe.group_by_length:
        raise ValueError("group_by_length sorts a dataset by length, which a streamed dataset cannot do: turn off "
                         "streaming or group_by_length.")
    return mix_datasets(parts, weights, seed=recipe.seed).repeat(None)


def check_llm_precision(llm_model_type: str, precision: str) -> None:
    """Refuses `precision="fp16"` for a T5 LLM (`llm_model_type` in `FP16_UNSAFE_LLMS`), which overflows in fp16."""
    if precision == "fp16" and llm_model_type in FP16_UNSAFE_LLMS:
        raise ValueError(f"fp16 is refused with a {llm_model_type} LLM: T5 overflows in fp16 (its activations exceed "
                         "fp16's range and the loss turns inf/NaN). Use bf16 (recipe `bf16: true`) or fp32.")


def _check_recipe_precision(recipe: MintRecipe) -> None:
    """[`check_llm_precision`] for a stage-2 recipe asking for fp16 (`training_args: {"fp16": true}`)."""
    if recipe.stage == 2 and recipe.training_args.get("fp16") and _is_mint_checkpoint(recipe.model):
        check_llm_precision(MintConfig.from_pretrained(recipe.model).text_config.model_type, "fp16")


def _distributed_arguments(recipe: MintRecipe) -> dict[str, Any]:
    """
    `TrainingArguments` a multi-process run needs, unless the recipe's `training_args` set them: each process reads
    batches of its own (`dispatch_batches=False`; dispatching concatenates every process's batch, which padded batches
    of different lengths cannot be), and processes on a machine without an accelerator join one gloo group
    (`use_cpu`) instead of each training alone.
    """
    arguments = {"accelerator_config": {"dispatch_batches": False}}
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.accelerator.is_available():
        arguments["use_cpu"] = True
    return {name: value for name, value in arguments.items() if name not in recipe.training_args}


def per_device_batch_size(batch_size: int, world_size: int, accumulation: int) -> int:
    """The per-device batch of a global `batch_size`; a clear error when it does not divide."""
    if batch_size % (world_size * accumulation):
        raise ValueError(f"batch_size {batch_size} does not divide across {world_size} processes x "
                         f"{accumulation} accumulation steps; pick a multiple of {world_size * accumulation}.")
    return batch_size // (world_size * accumulation)


# transformers 5.x renames `gradient_checkpointing` to `activation_checkpointing`; take what this version has.
_CHECKPOINTING_ARGUMENT = next(name for name in ("activation_checkpointing", "gradient_checkpointing")
                               if name in {f.name for f in dataclasses.fields(TrainingArguments)})


# Recipe fields that are TrainingArguments of the same name.
_RECIPE_TRAINING_ARGUMENTS = (
    "output_dir", "gradient_accumulation_steps", "learning_rate", "weight_decay", "warmup_steps", "lr_scheduler_type",
    "num_train_epochs", "max_steps", "optim", "seed", "logging_steps", "save_steps", "save_total_limit",
    "dataloader_num_workers",
)


def training_arguments(recipe: MintRecipe) -> TrainingArguments:
    _check_recipe_precision(recipe)
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    bf16 = recipe.bf16 if recipe.bf16 is not None else torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    passed_through = {name: getattr(recipe, name) for name in _RECIPE_TRAINING_ARGUMENTS}
    return TrainingArguments(**{
        "report_to": [],
        **recipe.training_args,
        "per_device_train_batch_size": per_device_batch_size(recipe.batch_size, world_size,
                                                             recipe.gradient_accumulation_steps),
        "bf16": bf16,
        _CHECKPOINTING_ARGUMENT: recipe.gradient_checkpointing,
        "remove_unused_columns": False,
        **_distributed_arguments(recipe),
        **({"train_sampling_strategy": "group_by_length", "length_column_name": CACHED_LENGTH}
           if recipe.group_by_length else {}),
        **passed_through,
    })


def train(recipe: MintRecipe, train_dataset: Dataset | None = None, callbacks: list | None = None) -> MintTrainer:
    """Runs one stage with `Trainer`; resumes from the last complete checkpoint when `recipe.resume`."""
    args = training_arguments(recipe)
    set_seed(recipe.seed)  # parts missing from the checkpoint (stage 2's projection and LLM) initialise reproducibly
    model = load_model(recipe)
    processor = MintProcessor.from_pretrained(recipe.model)
    dataset = train_dataset if train_dataset is not None else build_train_dataset(recipe)
    if recipe.group_by_length and CACHED_LENGTH not in dataset.column_names:
        raise ValueError(f"group_by_length needs the {CACHED_LENGTH!r} column that cache_audio_features writes; this "
                         f"dataset has {dataset.column_names}. Train from the feature cache, or add the column.")
    if ROW_COLUMN in (getattr(dataset, "column_names", None) or []):  # numbered per recipe dataset
        sources = [repr(spec["path"]) for spec in recipe.datasets]
    else:
        dataset, sources = number_rows(dataset), [_dataset_name(recipe, train_dataset is not None)]
    collator = CheckedCollator(MintDataCollator(processor, stage=recipe.stage), sources, recipe.skip_invalid_examples)
    trainer = MintTrainer(
        model=model, args=args, train_dataset=dataset, data_collator=collator, processing_class=processor,
        callbacks=[CompleteCheckpointCallback(), *(callbacks or [])], learning_rates=recipe.learning_rates,
        length_groups=recipe.length_groups,
    )
    if recipe.max_train_minutes is not None:
        trainer.add_callback(TimeBudgetCallback(recipe.max_train_minutes))
    checkpoint = last_complete_checkpoint(recipe.output_dir) if recipe.resume else None
    trainer.train(resume_from_checkpoint=checkpoint)
    if trainer.skipped_examples:
        logger.warning(f"Skipped {trainer.skipped_examples} invalid training examples (see the warnings above).")
    if recipe.lora:
        save_lora_run(trainer.model, processor, recipe)
    else:
        trainer.save_model(recipe.output_dir)
    processor.save_pretrained(recipe.output_dir)
    return trainer


def _dataset_name(recipe: MintRecipe, given: bool) -> str:
    if given:
        return "the train_dataset given to train()"
    if len(recipe.datasets) == 1:
        return repr(recipe.datasets[0]["path"])
    return f"the mixture of {[spec['path'] for spec in recipe.datasets]}"


def main(argv: list[str] | None = None) -> int:
    """The `mint-train` command: 0 once done; an error raises (a non-zero exit status)."""
    parser = argparse.ArgumentParser(prog="mint-train", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    show = commands.add_parser("print-recipe", help="print the paper's recipe for a stage as JSON")
    show.add_argument("stage", choices=["stage1", "stage2"])
    run = commands.add_parser("run", help="train one stage from a recipe file")
    run.add_argument("recipe")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a recipe field (the value read as JSON where it parses)")
    run.add_argument("--max-train-minutes", type=float, help="the recipe's max_train_minutes: a wall-clock budget")
    run.add_argument("--skip-invalid-examples", action="store_true",
                     help="the recipe's skip_invalid_examples: skip (and count) invalid examples instead of stopping")
    cache = commands.add_parser("cache-features", help="run the frozen audio encoder once over a dataset")
    cache.add_argument("--model", help="a MINT folder (not needed with --merge)")
    cache.add_argument("--dataset", help="a dataset folder of MINT examples with an audio column (not with --merge)")
    cache.add_argument("--split", default="train", help="the split of a dataset with several (default: train)")
    cache.add_argument("--output", required=True)
    cache.add_argument("--batch-size", type=int, default=8)
    cache.add_argument("--dtype", choices=["float32", "float16"], default="float32")
    cache.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    cache.add_argument("--num-proc", type=int, default=None, help="encoder processes (on the CPU)")
    cache.add_argument("--num-shards", type=int, default=1,
                       help="split the work into this many shards; a rerun skips the finished ones")
    cache.add_argument("--shard-index", type=int, nargs="+", default=None, metavar="I",
                       help="compute only these shards (one machine's share); then --merge once all are finished")
    cache.add_argument("--merge", action="store_true", help="merge the finished shards into --output")
    cache.add_argument("--max-shard-size", default=None, help="size of the merged cache's Arrow files (e.g. 500MB)")
    cache.add_argument("--skip-invalid", action="store_true",
                       help="leave out clips the processor refuses (listed in skipped_clips.json) instead of stopping")
    cache.add_argument("--quiet", action="store_true", help="no progress bar")
    from mint.training.plan import add_plan_arguments, run_plan
    add_plan_arguments(commands.add_parser("plan", help="resolve a recipe's datasets; print its sizes, steps, memory"))
    args = parser.parse_args(argv)
    if args.command == "print-recipe":
        json.dump(dataclasses.asdict(default_recipe(int(args.stage[-1]))), sys.stdout, indent=2)
        print()
    elif args.command == "run":
        overrides = list(args.overrides)
        if args.max_train_minutes is not None:
            overrides.append(f"max_train_minutes={args.max_train_minutes}")
        if args.skip_invalid_examples:
            overrides.append("skip_invalid_examples=true")
        recipe = load_recipe(args.recipe, overrides)
        trainer = train(recipe)
        print(f"mint-train run: stage {recipe.stage}, {trainer.state.global_step} steps, "
              f"{trainer.skipped_examples} invalid examples skipped; the model is in {recipe.output_dir}.")
    elif args.command == "plan":
        run_plan(args)
    elif args.merge:
        merge_feature_cache(args.output, max_shard_size=args.max_shard_size, progress=not args.quiet)
        print(f"mint-train cache-features: shards merged into {args.output}.")
    else:
        _cache_features(args, parser)
    return 0


def _cache_features(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """The `cache-features` command: this run's shards of the cache (all of them, then merged, by default)."""
    if not args.model or not args.dataset:
        parser.error("cache-features needs --model and --dataset (or --merge to merge finished shards)")
    model = MintForPreTraining.from_pretrained(args.model).to(args.device)
    cached = cache_audio_features(model, MintProcessor.from_pretrained(args.model),
                                  load_local_dataset(args.dataset, args.split), args.output,
                                  batch_size=args.batch_size, dtype=args.dtype, progress=not args.quiet,
                                  num_proc=args.num_proc, num_shards=args.num_shards, shard_indices=args.shard_index,
                                  max_shard_size=args.max_shard_size, skip_invalid=args.skip_invalid)
    if cached is None:
        print(f"mint-train cache-features: shards {args.shard_index} finished; merge them with --merge.")
        return
    skipped = os.path.join(args.output, SKIPPED_CLIPS_FILE)
    left_out = len(json.load(open(skipped))) if os.path.isfile(skipped) else 0
    print(f"mint-train cache-features: {len(cached)} examples cached in {args.output}"
          + (f"; {left_out} clips left out, listed in {skipped}." if left_out else "."))


if __name__ == "__main__":
    sys.exit(main())
