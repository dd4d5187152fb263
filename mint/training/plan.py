# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""Planning a MINT run before renting GPUs: what a recipe will train on, for how many steps, in how much memory.

    mint plan recipes/paper_stage2.json --processes 8 [--accumulation 1] [--model FOLDER] [--json plan.json]

`plan_recipe(recipe, num_processes=8)` resolves every dataset of the recipe without decoding audio (Arrow columns and
at most a few file headers are read) and returns a [`RecipePlan`]: examples per dataset and per template, each
dataset's effective share of the mixture and how often an epoch passes over it, optimizer steps per epoch and in all,
the parameter / gradient / optimizer-state memory of one process, and the disk the frozen-feature cache would take. It
fails early, naming every problem at once: a missing folder or split, an unknown template, a dataset without the
column its template or stage reads, rows with an empty label, and what `train` checks before it starts
(`mint.training.recipe.recipe_problems`: a model folder that is not MINT, a batch that does not divide, ...).
"""

import math
import os
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import soundfile
import torch
from datasets import Dataset

from audio_encoder_mint import ENCODER_FEATURES_KEY
from configuration_mint import MintConfig
from mint.data.cache import CACHE_DTYPES, feature_cache_gb_per_hour
from mint.data.examples import mix_datasets, undecoded_audio
from mint.data.splits import load_split
from mint.training.lora import add_lora
from mint.training.recipe import MintRecipe, learning_rate_of, load_recipe, per_device_batch_size, recipe_problems
from mint.training.train_data import check_dataset
from modeling_mint import MintForConditionalGeneration, MintForPreTraining


GIB = 2**30
# Optimizer states kept per trainable parameter: (number of states, bytes per state; None: the parameter's own size).
# Adafactor's factored second moment is counted apart.
OPTIMIZER_STATES = {
    "adamw_torch": (2, None), "adamw_torch_fused": (2, None), "adamw_torch_xla": (2, None),
    "adamw_torch_npu_fused": (2, None), "adamw_apex_fused": (2, None), "adamw_anyprecision": (2, None),
    "adamw_bnb_8bit": (2, 1), "adamw_8bit": (2, 1), "paged_adamw_8bit": (2, 1), "paged_adamw_32bit": (2, 4),
    "adamw_torch_4bit": (2, 0.5), "adamw_torch_8bit": (2, 1), "lion_8bit": (1, 1), "paged_lion_8bit": (1, 1),
    "lion_32bit": (1, 4), "paged_lion_32bit": (1, 4), "sgd": (0, None), "adagrad": (1, None), "rmsprop": (1, None),
}


@dataclass
class DatasetPlan:
    """One recipe dataset: its size, its share of the mixture, its audio and the feature cache it would take."""

    path: str
    split: str
    template: str
    weight: float
    examples: int
    drawn_per_epoch: int
    share: float
    passes_per_epoch: float
    audio_hours: float | None
    hours_from: str
    cache_gb: float


@dataclass
class MemoryPlan:
    """Parameter, gradient and optimizer-state bytes of one process (DDP keeps a full replica per process)."""

    optimizer: str
    trainable_parameters: int
    frozen_parameters: int
    parameters_by_dtype: dict[str, int]
    parameter_bytes: int
    gradient_bytes: int
    optimizer_bytes: int | None

    @property
    def total_bytes(self) -> int | None:
        if self.optimizer_bytes is None:
            return None
        return self.parameter_bytes + self.gradient_bytes + self.optimizer_bytes


@dataclass
class RecipePlan:
    """Everything [`plan_recipe`] resolved; `report()` prints it, `to_dict()` is its JSON."""

    recipe: str
    stage: int
    model: str
    datasets: list[DatasetPlan]
    examples_per_template: dict[str, int]
    mixture_examples: int
    num_processes: int
    gradient_accumulation_steps: int
    per_device_batch_size: int
    batch_size: int
    steps_per_epoch: int
    num_train_epochs: float
    total_steps: int
    warmup_steps: int
    memory: MemoryPlan
    cache_dtype: str
    cache_gb_per_hour: float

    @property
    def audio_hours(self) -> float:
        return sum(d.audio_hours or 0.0 for d in self.datasets)

    @property
    def warnings(self) -> list[str]:
        """What the run would do that its recipe probably does not mean: a warm-up as long as the run or longer (the
        learning rate never reaches `learning_rate`)."""
        if self.warmup_steps < self.total_steps:
            return []
        return [f"{self.warmup_steps:,} warm-up steps for a {self.total_steps:,}-step run: the learning rate never "
                "reaches the recipe's learning_rate; set warmup_steps below the run's steps (e.g. "
                f"warmup_steps={max(self.total_steps // 10, 0)})."]

    @property
    def cache_gb(self) -> float:
        return sum(d.cache_gb for d in self.datasets)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "audio_hours": self.audio_hours, "cache_gb": self.cache_gb, "warnings": self.warnings,
                "memory": {**asdict(self.memory), "total_bytes": self.memory.total_bytes}}

    def report(self) -> str:
        lines = [f"MINT plan: {self.recipe} (stage {self.stage}, model {self.model})", "",
                 f"{'#':>2}  {'dataset (split)':<34}{'template':<17}{'weight':>9}{'examples':>12}{'share':>8}"
                 f"{'drawn/epoch':>13}{'passes':>8}{'audio h':>10}{'cache GB':>10}"]
        for i, d in enumerate(self.datasets, 1):
            hours = "cached" if d.audio_hours is None else f"{d.audio_hours:,.1f}"
            lines.append(f"{i:>2}  {f'{d.path} ({d.split})':<34}{d.template:<17}{d.weight:>9g}{d.examples:>12,}"
                         f"{100 * d.share:>7.1f}%{d.drawn_per_epoch:>13,}{d.passes_per_epoch:>8.2f}{hours:>10}"
                         f"{d.cache_gb:>10,.1f}")
        warmup = f"{self.warmup_steps:,} steps, {100 * self.warmup_steps / max(self.total_steps, 1):.1f}% of the run"
        lines += ["", "examples per template: " + ", ".join(f"{t} {n:,}" for t, n in
                                                            self.examples_per_template.items()),
                  f"mixture: {self.mixture_examples:,} examples per epoch (drawn with the weights until every dataset "
                  "has been seen once)",
                  f"steps: global batch {self.batch_size} = {self.num_processes} processes x "
                  f"{self.per_device_batch_size} per device x {self.gradient_accumulation_steps} accumulation; "
                  f"{self.steps_per_epoch:,} optimizer steps per epoch, {self.total_steps:,} in all "
                  f"({self.num_train_epochs:g} epochs; warm-up {warmup})"]
        m = self.memory
        dtypes = ", ".join(f"{t} {n:,}" for t, n in m.parameters_by_dtype.items())
        lines += ["memory per process (parameters, gradients, optimizer state; activations and buffers not included):",
                  f"  parameters {m.trainable_parameters + m.frozen_parameters:,} ({m.trainable_parameters:,} "
                  f"trainable, {m.frozen_parameters:,} frozen; {dtypes}): {m.parameter_bytes / GIB:.2f} GiB",
                  f"  gradients  {m.gradient_bytes / GIB:.2f} GiB",
                  f"  optimizer  {m.optimizer}: " + ("not estimated for this optimizer" if m.optimizer_bytes is None
                                                     else f"{m.optimizer_bytes / GIB:.2f} GiB"),
                  f"  total      {m.total_bytes / GIB:.2f} GiB" if m.total_bytes is not None else "  total      n/a",
                  f"audio: {self.audio_hours:,.1f} hours (each clip cropped at the model's max_audio_seconds); "
                  f"feature cache in {self.cache_dtype}: {self.cache_gb_per_hour:.3f} GB per hour, "
                  f"{self.cache_gb:,.1f} GB"]
        lines += [f"  dataset {i} audio hours: {d.hours_from}" for i, d in enumerate(self.datasets, 1)
                  if d.hours_from != "duration column"]
        lines += [f"warning: {warning}" for warning in self.warnings]
        return "\n".join(lines)


# ---- datasets ----------------------------------------------------------------------------------------------------

def resolve_dataset(spec: dict[str, Any], stage: int) -> tuple[Dataset, str, str | None]:
    """
    Loads one recipe entry as training would (its folder and split) and checks it without decoding audio: the
    template is known, the columns it reads exist, no label or caption is empty. Returns the dataset, the template
    name and the label or caption column; raises `ValueError` naming the problem and its fix.
    """
    path = spec.get("path")
    if not path:
        raise ValueError(f"no 'path' in {spec}")
    if not float(spec.get("weight", 1.0)) > 0:
        raise ValueError(f"weight {spec['weight']} is not positive")
    if not os.path.exists(path):
        raise ValueError(f"folder {path!r} does not exist (`mint data prepare NAME ROOT --output {path}` writes one)")
    dataset = load_split(path, spec.get("split"))
    template, columns = check_dataset(spec, stage, dataset)
    text_column = columns.get("label") or columns.get("caption")
    return dataset, template, text_column


def _header_seconds(path: str) -> float | None:
    try:
        return float(soundfile.info(path).duration)
    except Exception:  # soundfile raises several types for a file it cannot open
        return None


def audio_hours(dataset: Dataset, max_seconds: float, audio_column: str = "audio",
                header_samples: int = 16) -> tuple[float, str]:
    """
    Hours of audio the encoder sees (each clip cropped at `max_seconds`), and where they come from: the `duration`
    column that `mint data prepare` writes (clips without one count as the mean of those with one), else the headers
    of `header_samples` clips spread over the dataset (their mean times the number of clips), else `max_seconds` per
    clip as an upper bound.
    """
    if "duration" in dataset.column_names:
        known = np.asarray(dataset.select_columns(["duration"]).with_format("arrow")[:]["duration"].drop_null(),
                           dtype=np.float64)
        if len(known):
            return float(np.minimum(known, max_seconds).mean()) * len(dataset) / 3600, "duration column"
    dataset = undecoded_audio(dataset, audio_column)
    picks = np.unique(np.linspace(0, len(dataset) - 1, min(header_samples, len(dataset))).round().astype(int))
    rows = dataset.select_columns([audio_column]).select(picks.tolist())[audio_column]
    seconds = [s for s in (_header_seconds(r if isinstance(r, str) else r["path"]) for r in rows) if s is not None]
    if seconds:
        mean = float(np.minimum(seconds, max_seconds).mean())
        return mean * len(dataset) / 3600, f"headers of {len(seconds)} clips"
    return max_seconds * len(dataset) / 3600, "upper bound (no readable header)"


def mixture_counts(lengths: list[int], weights: list[float], seed: int) -> list[int]:
    """Examples drawn from each dataset per epoch by `mix_datasets` (run on stand-ins of those lengths)."""
    stand_ins = [Dataset.from_dict({"source": np.full(n, i, dtype=np.int32)}) for i, n in enumerate(lengths)]
    mixed = mix_datasets(stand_ins, weights, seed=seed)
    sources = np.asarray(mixed.with_format("numpy")["source"])
    return np.bincount(sources, minlength=len(lengths)).tolist()


def training_steps(examples: int, batch_size: int, num_processes: int, accumulation: int, epochs: float,
                   max_steps: int = -1, drop_last: bool = False) -> tuple[int, int, int]:
    """
    `(per-device batch, optimizer steps per epoch, total steps)` as the Trainer counts them: each process gets
    ceil(examples / (per-device batch x processes)) batches (floor with `drop_last`), an epoch is ceil(batches /
    accumulation) steps (at least one), and a run `max_steps` if positive, else ceil(epochs x steps per epoch).
    """
    per_device = per_device_batch_size(batch_size, num_processes, accumulation)
    rounding = math.floor if drop_last else math.ceil
    batches = rounding(examples / (per_device * num_processes))
    per_epoch = max(math.ceil(batches / accumulation), 1)
    return per_device, per_epoch, max_steps if max_steps > 0 else math.ceil(epochs * per_epoch)


# ---- memory ------------------------------------------------------------------------------------------------------

def _config_dtype(config: MintConfig) -> torch.dtype:
    dtype = getattr(config, "dtype", None)
    if dtype is None:
        return torch.float32
    return dtype if isinstance(dtype, torch.dtype) else getattr(torch, str(dtype).removeprefix("torch."))


def _optimizer_state_bytes(optim: str, trainable: list[tuple[torch.nn.Parameter, torch.dtype]]) -> int | None:
    if optim.startswith("adafactor"):  # factored second moment: a row and a column vector per matrix, fp32
        return 4 * sum(p.shape[-1] + p.shape[-2] if p.dim() >= 2 else p.numel() for p, _ in trainable)
    if optim not in OPTIMIZER_STATES:
        return None
    states, size = OPTIMIZER_STATES[optim]
    return int(sum(states * p.numel() * (dtype.itemsize if size is None else size) for p, dtype in trainable))


def parameter_memory(config: MintConfig, stage: int, lora: dict[str, Any] | None = None,
                     optim: str = "adamw_torch", from_scratch: bool = False,
                     learning_rates: dict[str, float] | None = None) -> MemoryPlan:
    """
    Builds the stage's model on the `meta` device (no weights allocated) with the recipe's LoRA, and counts its
    parameters as `from_pretrained` loads them: in the config's `dtype` (float32 when unset), the modules the model
    keeps in float32 (`_keep_in_fp32_modules_strict`: Bridge-Net) and LoRA adapters in float32; everything in float32
    for a model built `from_scratch`. Gradients take the size of the trainable parameters, which leave out the parts
    `learning_rates` set to 0 (frozen while training); the optimizer's states follow `OPTIMIZER_STATES`.
    """
    model_class = MintForPreTraining if stage == 1 else MintForConditionalGeneration
    with torch.device("meta"):
        model = model_class(config)
        if lora:
            model = add_lora(model, **lora)
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    keep_fp32, dtype = set(model_class._keep_in_fp32_modules_strict), _config_dtype(config)
    by_dtype: dict[str, int] = {}
    trainable, frozen, parameter_bytes = [], 0, 0
    for name, parameter in base.named_parameters():
        own = torch.float32 if from_scratch or name.split(".")[0] in keep_fp32 or ".lora_" in name else dtype
        key = str(own).removeprefix("torch.")
        by_dtype[key] = by_dtype.get(key, 0) + parameter.numel()
        parameter_bytes += parameter.numel() * own.itemsize
        if parameter.requires_grad and learning_rate_of(name, learning_rates or {}) != 0:
            trainable.append((parameter, own))
        else:
            frozen += parameter.numel()
    return MemoryPlan(optim, sum(p.numel() for p, _ in trainable), frozen, by_dtype, parameter_bytes,
                      sum(p.numel() * own.itemsize for p, own in trainable), _optimizer_state_bytes(optim, trainable))


# ---- the plan ----------------------------------------------------------------------------------------------------

def plan_recipe(
    recipe: MintRecipe | str | os.PathLike,
    num_processes: int = 1,
    gradient_accumulation_steps: int | None = None,
    model: str | os.PathLike | None = None,
    cache_dtype: str = "float16",
    header_samples: int = 16,
) -> RecipePlan:
    """
    Plans `recipe` (a [`MintRecipe`] or a recipe file) on `num_processes` processes with `gradient_accumulation_steps`
    (default: the recipe's). `model` replaces the recipe's model folder for the parameter count (stage 2 before stage
    1 has written its output). Every dataset is checked before anything is counted; the problems found are raised
    together in one `ValueError`. `num_processes`, `gradient_accumulation_steps` and `header_samples` must be positive
    integers and `cache_dtype` one of `CACHE_DTYPES` (a `ValueError` otherwise). See the module docstring for what
    the returned [`RecipePlan`] holds.
    """
    counts = {"num_processes": num_processes, "gradient_accumulation_steps": gradient_accumulation_steps,
              "header_samples": header_samples}
    for option, value in counts.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"{option} must be a positive integer, got {value!r}.")
    if cache_dtype not in CACHE_DTYPES:
        raise ValueError(f"cache_dtype must be one of {CACHE_DTYPES} (the feature cache's dtypes), got "
                         f"{cache_dtype!r}.")
    name = os.fspath(recipe) if not isinstance(recipe, MintRecipe) else "recipe"
    recipe = recipe if isinstance(recipe, MintRecipe) else load_recipe(recipe)
    accumulation = gradient_accumulation_steps or recipe.gradient_accumulation_steps
    model_folder = os.fspath(model or recipe.model)
    problems, resolved = [], []
    for i, spec in enumerate(recipe.datasets, 1):
        try:
            resolved.append((spec, *resolve_dataset(spec, recipe.stage)))
        except ValueError as error:
            problems.append(f"dataset {i} ({spec.get('path')}): {error}")
    problems += recipe_problems(recipe, num_processes, accumulation, model_folder)
    if problems:
        raise ValueError(f"Cannot plan {name}:\n- " + "\n- ".join(problems))
    config = MintConfig.from_pretrained(model_folder)

    lengths = [len(dataset) for _, dataset, _, _ in resolved]
    weights = [float(spec.get("weight", 1.0)) for spec, *_ in resolved]
    drawn = mixture_counts(lengths, weights, recipe.seed)
    total = sum(drawn)
    per_hour = feature_cache_gb_per_hour(config.audio_config, cache_dtype, len(config.audio_feature_layers))
    plans = []
    for (spec, dataset, template, _), weight, n in zip(resolved, weights, drawn):
        if ENCODER_FEATURES_KEY in dataset.column_names:
            hours, source = None, "feature cache"
            cache = sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(spec["path"]) for f in files)
            cache_gb = cache / 1e9
        else:
            hours, source = audio_hours(dataset, config.max_audio_seconds, spec.get("audio_column", "audio"),
                                        header_samples)
            cache_gb = hours * per_hour
        plans.append(DatasetPlan(spec["path"], spec.get("split", "train"), template, weight, len(dataset), n,
                                 n / total, n / len(dataset), hours, source, cache_gb))
    per_template: dict[str, int] = {}
    for plan in plans:
        per_template[plan.template] = per_template.get(plan.template, 0) + plan.examples
    drop_last = bool(recipe.training_args.get("dataloader_drop_last", False))
    per_device, per_epoch, steps = training_steps(total, recipe.batch_size, num_processes, accumulation,
                                                  recipe.num_train_epochs, recipe.max_steps, drop_last)
    return RecipePlan(name, recipe.stage, model_folder, plans, per_template, total, num_processes, accumulation,
                      per_device, recipe.batch_size, per_epoch, recipe.num_train_epochs, steps, recipe.warmup_steps,
                      parameter_memory(config, recipe.stage, recipe.lora, recipe.optim, recipe.from_scratch,
                                       recipe.learning_rates),
                      cache_dtype, per_hour)


__all__ = ["DatasetPlan", "MemoryPlan", "RecipePlan", "audio_hours", "mixture_counts", "parameter_memory",
           "plan_recipe", "resolve_dataset", "training_steps"]
