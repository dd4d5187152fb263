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
import json
import os
import re
import sys
from dataclasses import dataclass, field
from typing import Any

import torch
from datasets import Dataset, IterableDataset, load_from_disk
from transformers import Trainer, TrainerCallback, TrainingArguments, set_seed
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR


try:
    from .configuration_mint import MintConfig
    from .data_mint import (CACHED_LENGTH, MintDataCollator, cache_audio_features, load_local_dataset,
                            merge_feature_cache, mix_datasets, to_caption_pairs, to_mint_examples)
    from .modeling_mint import MintForConditionalGeneration, MintForPreTraining
    from .processing_mint import MintProcessor
except ImportError:  # installed as top-level modules
    from configuration_mint import MintConfig
    from data_mint import (CACHED_LENGTH, MintDataCollator, cache_audio_features, load_local_dataset,
                           merge_feature_cache, mix_datasets, to_caption_pairs, to_mint_examples)
    from modeling_mint import MintForConditionalGeneration, MintForPreTraining
    from processing_mint import MintProcessor


COMPLETE_MARKER = "mint_checkpoint_complete.json"
OBJECTIVE_LOSSES = ("loss_alc", "loss_alm", "loss_atg")


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
    training_args: dict[str, Any] = field(default_factory=dict)


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
    known = {f.name for f in dataclasses.fields(MintRecipe)}
    for item in overrides or []:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ValueError(f"An override must look like key=value, got {item!r}.")
        try:
            values[key] = json.loads(raw)
        except json.JSONDecodeError:
            values[key] = raw
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"Unknown recipe keys {sorted(unknown)}; known keys: {sorted(known)}.")
    return MintRecipe(**values)


class CompleteCheckpointCallback(TrainerCallback):
    """Marks a checkpoint complete once the Trainer has written all of it, so a checkpoint cut short is never resumed."""

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            folder = os.path.join(args.output_dir, f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}")
            if os.path.isdir(folder):
                with open(os.path.join(folder, COMPLETE_MARKER), "w") as f:
                    json.dump({"global_step": state.global_step}, f)
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


class MintTrainer(Trainer):
    """
    `Trainer` that also logs each stage-1 objective's loss (`loss_alc`, `loss_alm`, `loss_atg`) separately, and gives
    named parts of the model their own learning rates (`learning_rates={"qformer": 5e-5}`); the schedule scales every
    part's rate alike.
    """

    def __init__(self, *args, learning_rates: dict[str, float] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
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

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        loss, outputs = super().compute_loss(model, inputs, return_outputs=True,
                                             num_items_in_batch=num_items_in_batch)
        for name in OBJECTIVE_LOSSES:
            value = outputs.get(name) if isinstance(outputs, dict) else getattr(outputs, name, None)
            if value is not None:
                mean = self.accelerator.reduce(value.detach().float(), reduction="mean")
                self._objective_totals.setdefault(name, []).append(float(mean))
        return (loss, outputs) if return_outputs else loss

    def log(self, logs: dict[str, float], *args, **kwargs) -> None:
        if "loss" in logs and self._objective_totals:
            logs.update({name: round(sum(v) / len(v), 6) for name, v in self._objective_totals.items()})
            self._objective_totals = {}
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
    if recipe.lora:
        model = add_lora(model, **recipe.lora)
    return model


def add_lora(model, targets=("language_model",), r: int = 8, alpha: int = 16, dropout: float = 0.05):
    """
    Wraps `model` with `peft` LoRA adapters on the attention projections of the LLM (`"language_model"`) and/or the
    Q-Former (`"qformer"`). Whatever the config does not freeze (Bridge-Net in stage 2) stays trainable and is saved
    with the adapters ([`save_adapters`]); the frozen base weights are not saved. [`load_adapters`] puts them back.
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


EXTRA_PARAMETERS_FILE = "mint_parameters.safetensors"


def save_adapters(peft_model, path: str | os.PathLike) -> None:
    """Saves the LoRA adapters and trained modules (peft) plus the trained bare parameters (the queries)."""
    from safetensors.torch import save_file

    peft_model.save_pretrained(path)
    base = peft_model.get_base_model()
    extra = {n: p.detach().contiguous() for n, p in base.named_parameters(recurse=False) if p.requires_grad}
    save_file(extra, os.path.join(path, EXTRA_PARAMETERS_FILE))


def load_adapters(base_model, path: str | os.PathLike):
    """Loads what [`save_adapters`] wrote onto `base_model` (the same frozen base it was trained on)."""
    from peft import PeftModel
    from safetensors.torch import load_file

    model = PeftModel.from_pretrained(base_model, path)
    extra = os.path.join(path, EXTRA_PARAMETERS_FILE)
    if os.path.isfile(extra):
        with torch.no_grad():
            for name, value in load_file(extra).items():
                getattr(base_model, name).copy_(value)
    return model


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
    if "audio_features" in dataset.column_names:  # written by cache-features: already MINT examples
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
    return dataset.with_format("numpy", columns=["audio_features"], output_all_columns=True)


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
    return TrainingArguments(
        per_device_train_batch_size=per_device_batch_size(recipe.batch_size, world_size,
                                                          recipe.gradient_accumulation_steps),
        bf16=bf16,
        **{_CHECKPOINTING_ARGUMENT: recipe.gradient_checkpointing},
        remove_unused_columns=False,
        report_to=[],
        **_distributed_arguments(recipe),
        **({"train_sampling_strategy": "group_by_length", "length_column_name": CACHED_LENGTH}
           if recipe.group_by_length else {}),
        **passed_through,
        **recipe.training_args,
    )


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
    trainer = MintTrainer(
        model=model, args=args, train_dataset=dataset,
        data_collator=MintDataCollator(processor, stage=recipe.stage), processing_class=processor,
        callbacks=[CompleteCheckpointCallback(), *(callbacks or [])], learning_rates=recipe.learning_rates,
    )
    checkpoint = last_complete_checkpoint(recipe.output_dir) if recipe.resume else None
    trainer.train(resume_from_checkpoint=checkpoint)
    if recipe.lora:
        save_adapters(trainer.model, recipe.output_dir)
    else:
        trainer.save_model(recipe.output_dir)
    processor.save_pretrained(recipe.output_dir)
    return trainer


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="mint-train", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    show = commands.add_parser("print-recipe", help="print the paper's recipe for a stage as JSON")
    show.add_argument("stage", choices=["stage1", "stage2"])
    run = commands.add_parser("run", help="train one stage from a recipe file")
    run.add_argument("recipe")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    cache = commands.add_parser("cache-features", help="run the frozen audio encoder once over a dataset")
    cache.add_argument("--model", help="a MINT folder (not needed with --merge)")
    cache.add_argument("--dataset", help="a saved dataset of MINT examples with an audio column (not with --merge)")
    cache.add_argument("--output", required=True)
    cache.add_argument("--batch-size", type=int, default=8)
    cache.add_argument("--dtype", choices=["float32", "float16"], default="float32")
    cache.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    cache.add_argument("--num-proc", type=int, default=None, help="encoder processes (on the CPU)")
    cache.add_argument("--num-shards", type=int, default=1,
                       help="split the work into this many shards; a rerun skips the finished ones")
    cache.add_argument("--shard-index", type=int, nargs="+", default=None, metavar="I",
                       help="compute only these shards (this machine's share); then --merge once all are finished")
    cache.add_argument("--merge", action="store_true", help="merge the finished shards into --output")
    cache.add_argument("--max-shard-size", default=None, help="size of the merged cache's Arrow files (e.g. 500MB)")
    cache.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.command == "print-recipe":
        json.dump(dataclasses.asdict(default_recipe(int(args.stage[-1]))), sys.stdout, indent=2)
        print()
    elif args.command == "run":
        train(load_recipe(args.recipe, args.overrides))
    elif args.merge:
        merge_feature_cache(args.output, max_shard_size=args.max_shard_size, progress=not args.quiet)
    else:
        _cache_features(args, parser)


def _cache_features(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """The `cache-features` command: this run's shards of the cache (all of them, then merged, by default)."""
    if not args.model or not args.dataset:
        parser.error("cache-features needs --model and --dataset (or --merge to merge finished shards)")
    model = MintForPreTraining.from_pretrained(args.model).to(args.device)
    cache_audio_features(model, MintProcessor.from_pretrained(args.model), load_from_disk(args.dataset), args.output,
                         batch_size=args.batch_size, dtype=args.dtype, progress=not args.quiet, num_proc=args.num_proc,
                         num_shards=args.num_shards, shard_indices=args.shard_index,
                         max_shard_size=args.max_shard_size)


if __name__ == "__main__":
    main()
