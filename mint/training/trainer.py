# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""Training MINT with the transformers `Trainer`: the model a recipe starts from, its `TrainingArguments` (precision,
processes), [`MintTrainer`] (per-objective losses, per-part learning rates, non-finite values refused), and [`train`],
which runs one stage with safe checkpoints and resume.

    mint recipe stage1 > stage1.json                   # the paper's settings (section 3.2), to copy and edit
    mint train stage1.json output_dir=out-stage1
    torchrun --nproc_per_node 8 -m mint train stage2.json   # DDP; negatives gathered across processes

Python: `train(load_recipe("stage1.json"))` returns the `Trainer` after training.
"""

import os
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from datasets import Dataset, IterableDataset
from transformers import EarlyStoppingCallback, Trainer, TrainerCallback, TrainerState, TrainingArguments, set_seed
from transformers.trainer import TRAINER_STATE_NAME
from transformers.utils import logging

from audio_encoder_mint import ENCODER_FEATURES_KEY
from mint.data.collator import MintDataCollator
from mint.data.examples import CACHED_LENGTH
from mint.training.alm import AlmScheduleCallback, alm_pair_accuracy
from mint.training.checkpoints import (CompleteCheckpointCallback, TimeBudgetCallback, check_finite_weights,
                                       claim_output_dir, last_complete_checkpoint)
from mint.training.collator import ROW_COLUMN, CheckedBatch, CheckedCollator, number_rows
from mint.training.lora import (add_lora, load_lora_bare_parameters, lora_base_folders, save_lora_bare_parameters,
                                save_lora_run)
from mint.training.recipe import (CROSS_ATTENTION_KEY, CROSS_ATTENTION_PART, RECIPE_TRAINING_ARGUMENTS, MintRecipe,
                                  check_recipe, config_overrides, learning_rate_of, learning_rate_part,
                                  model_folder_config,
                                  per_device_batch_size)
from mint.training.sampling import ClipGroupedSampler, clip_groups
from mint.training.speed import autocast_bridge, compile_regions, length_grouped_loss
from mint.training.train_data import build_train_dataset
from configuration_mint import MintConfig
from modeling_mint import MintForConditionalGeneration, MintForPreTraining, MintPreTrainedModel
from processing_mint import MintProcessor, save_embedding_processor


logger = logging.get_logger(__name__)

OBJECTIVE_LOSSES = ("loss_alc", "loss_alm", "loss_atg")
# Logged beside the losses: the mean number of rows per batch (and process) that had no ALM negative.
ALM_ROWS_WITHOUT_NEGATIVE = "alm_rows_without_negative"


def _describe(examples: list[str] | None) -> str:
    if not examples:
        return "this batch"
    return f"the batch of {'; '.join(examples[:8])}" + (f" and {len(examples) - 8} more" if len(examples) > 8 else "")


def _unwrapped(model: torch.nn.Module) -> torch.nn.Module:
    """The MINT model under a peft wrapper (whose parameter names gain a `base_model.model.` prefix)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


class MintTrainer(Trainer):
    """
    `Trainer` that also logs each stage-1 objective's loss (`loss_alc`, `loss_alm`, `loss_atg`) separately (with
    `alm_rows_without_negative`, the mean number of rows per batch that ALM found no negative for), and gives
    named parts of the model their own learning rates (`learning_rates={"qformer": 5e-5}`: a top-level part of the
    model, or `"cross_attention"`, the Q-Former's cross-attention layers, which then leave the `"qformer"` rate); the
    schedule scales every part's rate alike. The logged `learning_rate` is the base rate's; each part's is logged as
    `learning_rate_<part>`. In stage 1, `evaluate` gives ALM's accuracy on the held-out `eval_dataset`'s balanced
    pairs ([`alm_pair_accuracy`], logged as `eval_alm_pair_accuracy`, `eval_alm_ranking_accuracy` and
    `eval_alm_loss`). With `audio_id_column` (stage 2), each clip's examples are trained one after another
    ([`ClipGroupedSampler`]), so that the collator passes each clip once per batch.

    Non-finite values never reach the weights: a NaN or infinite loss, or gradient (without fp16 loss scaling, whose
    skipped steps are expected), raises a `FloatingPointError` naming the step and the batch's examples before the
    optimizer step; a model with non-finite weights is never saved. Batches from [`CheckedCollator`]
    ([`CheckedBatch`]) reach the model as their `model_inputs`; their skipped invalid examples are counted in
    `skipped_examples` and logged as such (the total so far).
    """

    def __init__(self, *args, learning_rates: dict[str, float] | None = None, length_groups: int = 1,
                 audio_id_column: str | None = None, **kwargs):
        if audio_id_column is not None and length_groups > 1:
            raise ValueError("length_groups splits each batch into micro-batches of examples, which audio_id_column's "
                             "batches of shared clips do not split into: use one of them.")
        super().__init__(*args, **kwargs)
        self.length_groups = length_groups
        self.audio_id_column = audio_id_column
        self.skipped_examples = 0
        self._schedule_scale = 1.0
        self._objective_totals: dict[str, list[float]] = {}
        self._examples_of_batch: dict[int, list[str]] = {}
        self.learning_rates = dict(learning_rates or {})
        names = [name for name, _ in _unwrapped(self.model).named_parameters()]
        parts = {name.split(".")[0] for name in names} | {CROSS_ATTENTION_PART for name in names
                                                          if CROSS_ATTENTION_KEY in name}
        unknown = set(self.learning_rates) - parts
        if unknown:
            raise ValueError(f"learning_rates names {sorted(unknown)}, which are not parts of the model; "
                             f"its parts are {sorted(parts)}.")
        # A part at rate 0 never changes (AdamW scales its weight decay by the rate too): it is frozen while this
        # trainer trains, so that no gradient is computed for it (a stage 2 with a fixed Bridge-Net then skips the
        # Q-Former's backward pass); `train` unfreezes it afterwards.
        self._frozen_by_rate = [p for name, p in _unwrapped(self.model).named_parameters()
                                if p.requires_grad and learning_rate_of(name, self.learning_rates) == 0]
        if self._frozen_by_rate and not any(p.requires_grad for p in self.model.parameters()
                                            if all(p is not q for q in self._frozen_by_rate)):
            raise ValueError(f"learning_rates {self.learning_rates} set every trainable part of the model to 0: "
                             "nothing would train. Give at least one part a positive rate.")

    def train(self, *args, **kwargs):
        for parameter in self._frozen_by_rate:
            parameter.requires_grad_(False)
        try:
            return super().train(*args, **kwargs)
        finally:
            for parameter in self._frozen_by_rate:
                parameter.requires_grad_(True)

    def create_optimizer(self, model=None):
        created = self.optimizer is None  # the Trainer returns an optimizer it already has unchanged
        optimizer = super().create_optimizer(model)
        if self.learning_rates and created:
            part_of = {id(p): learning_rate_part(name, self.learning_rates)
                       for name, p in _unwrapped(self.model).named_parameters()}
            groups = []
            for group in optimizer.param_groups:
                by_rate: dict[float, list] = {}
                for parameter in group["params"]:
                    rate = self.learning_rates.get(part_of[id(parameter)], group["lr"])
                    by_rate.setdefault(rate, []).append(parameter)
                groups += [{**group, "params": params, "lr": rate, "initial_lr": rate}
                           for rate, params in by_rate.items()]
            optimizer.param_groups = groups
        return optimizer

    def _get_train_sampler(self, train_dataset=None):
        """With `audio_id_column`, each clip's examples one after another ([`ClipGroupedSampler`]); a streamed dataset
        is read in its own order."""
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        if self.audio_id_column is None or not isinstance(dataset, Dataset):
            return super()._get_train_sampler(train_dataset)
        return ClipGroupedSampler(dataset[self.audio_id_column], seed=self.args.seed)

    def _get_learning_rate(self) -> float:
        """The base `learning_rate` as the schedule scales it now (with per-part rates, the first parameter group may
        be a part's)."""
        if not self.learning_rates:
            return super()._get_learning_rate()
        self._schedule_scale = next((group["lr"] / group["initial_lr"] for group in self.optimizer.param_groups
                                     if group.get("initial_lr")), 1.0)
        return self.args.learning_rate * self._schedule_scale

    def get_batch_samples(self, epoch_iterator: Iterator, num_batches: int, device: torch.device):
        """
        The next optimizer step's batches as the model takes them: a [`CheckedBatch`] is unpacked into its
        `model_inputs`; its skipped examples are counted, and where its examples come from is kept for the messages of
        [`training_step`].
        """
        self._examples_of_batch = {}
        return super().get_batch_samples(map(self._unpack, epoch_iterator), num_batches, device)

    def _unpack(self, batch: Any) -> Any:
        if not isinstance(batch, CheckedBatch):
            return batch
        self.skipped_examples += batch.skipped
        self._examples_of_batch[id(batch.model_inputs)] = batch.examples
        return batch.model_inputs

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval") -> dict[str, float]:
        """
        Stage 1: ALM's accuracy and loss on the balanced pairs of the held-out set ([`alm_pair_accuracy`]), logged
        with `metric_key_prefix`, its invalid rows refused or, with `skip_invalid_examples`, left out and counted
        (`alm_rows_invalid`) as in training. Stage 2: the `Trainer`'s evaluation.
        """
        model = _unwrapped(self.model)
        if not isinstance(model, MintForPreTraining):
            return super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)
        dataset = eval_dataset if eval_dataset is not None else self.eval_dataset
        if dataset is None:
            raise ValueError("No held-out set to evaluate: set eval_fraction in the recipe, or pass eval_dataset.")
        collator, invalid = self.data_collator, 0
        if isinstance(collator, CheckedCollator):
            rows, invalid = check_held_out_rows(collator, dataset)
            if invalid:
                dataset = dataset.select(rows) if hasattr(dataset, "select") else [dataset[i] for i in rows]
            collator = collator.collator
        results = alm_pair_accuracy(model, dataset, collator, seed=self.args.seed,
                                    batch_size=self.args.per_device_eval_batch_size)
        results["alm_rows_invalid"] = invalid
        metrics = {f"{metric_key_prefix}_{name}": value for name, value in results.items()}
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        """The `Trainer`'s save; under LoRA also the bare trained parameters (`query_tokens`, `temp`) that peft's
        adapter files leave out (`LORA_BARE_PARAMETERS_NAME`), so that a resumed run goes on from them."""
        super()._save(output_dir, state_dict)
        if self.args.should_save:
            save_lora_bare_parameters(self.model, output_dir or self.args.output_dir)

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: torch.nn.Module | None = None) -> None:
        super()._load_from_checkpoint(resume_from_checkpoint, model)
        load_lora_bare_parameters(model if model is not None else self.model, resume_from_checkpoint)

    def _load_best_model(self) -> None:
        super()._load_best_model()
        load_lora_bare_parameters(self.model, self.state.best_model_checkpoint)

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        """The `Trainer`'s evaluation step (stage 2's held-out loss) on a batch's `model_inputs`."""
        inputs = inputs.model_inputs if isinstance(inputs, CheckedBatch) else inputs  # skips are counted in training
        return super().prediction_step(model, inputs, prediction_loss_only, ignore_keys)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if self.length_groups > 1 and "labels" in inputs and not return_outputs:
            return length_grouped_loss(model, inputs, self.length_groups, num_items_in_batch)
        loss, outputs = super().compute_loss(model, inputs, return_outputs=True,
                                             num_items_in_batch=num_items_in_batch)
        for name in (*OBJECTIVE_LOSSES, ALM_ROWS_WITHOUT_NEGATIVE):
            value = outputs.get(name) if isinstance(outputs, dict) else getattr(outputs, name, None)
            if value is not None:
                mean = self.accelerator.reduce(value.detach().float(), reduction="mean")
                self._objective_totals.setdefault(name, []).append(float(mean))
        return (loss, outputs) if return_outputs else loss

    def training_step(self, model, inputs, num_items_in_batch=None):
        examples = self._examples_of_batch.get(id(inputs))
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

    def _issue_warnings_after_load(self, load_result: Any) -> None:
        """
        The Trainer's warnings after loading a checkpoint's weights, less the tied weights a checkpoint does not store
        (the ATG head's decoder, tied to the Q-Former's word embeddings): each is the very parameter of a key that was
        loaded, so it holds the checkpoint's values. A missing key tied to no loaded parameter is still reported.
        """
        names: dict[int, list[str]] = {}
        parameters = dict(self.model.named_parameters(remove_duplicate=False))
        for name, parameter in parameters.items():
            names.setdefault(id(parameter), []).append(name)
        missing = set(load_result.missing_keys)
        tied = {key for key in missing if key in parameters
                and any(other not in missing for other in names[id(parameters[key])])}
        if tied:
            load_result = load_result._replace(missing_keys=[key for key in load_result.missing_keys
                                                             if key not in tied])
        super()._issue_warnings_after_load(load_result)

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


# The config attributes that set a Q-Former's or LLM's dropout probabilities, by the names transformers' models use
# (BERT, T5, OPT/BART, Llama/Qwen, GPT-2, GPT-Neo, Starcoder2, MPT, Bloom); `set_dropout` sets those a config has.
DROPOUT_ATTRIBUTES = ("hidden_dropout_prob", "attention_probs_dropout_prob", "dropout_rate", "dropout",
                      "attention_dropout", "activation_dropout", "hidden_dropout", "resid_pdrop", "embd_pdrop",
                      "attn_pdrop", "emb_pdrop", "resid_dropout", "embed_dropout", "residual_dropout",
                      "embedding_dropout")


def set_dropout(config: MintConfig, probability: float, stage: int) -> None:
    """
    Sets the dropout probabilities (the attributes of `DROPOUT_ATTRIBUTES` a config has) of the parts that train in
    train mode to `probability`: the Q-Former's, and in stage 2 the LLM's where it is trained
    (`freeze_language_model=False`). Stage 1 has no LLM, and a frozen LLM runs in eval mode: their config is left as
    it is. A trained LLM whose config has none of them raises a `ValueError` naming its model type.
    """
    parts = ["qformer_config"] + (["text_config"] if stage == 2 and not config.freeze_language_model else [])
    for name in parts:
        part = getattr(config, name)
        attributes = [attribute for attribute in DROPOUT_ATTRIBUTES if hasattr(part, attribute)]
        if not attributes:
            raise ValueError(f"Recipe field dropout: the {name} ({part.model_type!r}) has none of the dropout "
                             f"settings {list(DROPOUT_ATTRIBUTES)}; leave dropout unset for this model.")
        for attribute in attributes:
            setattr(part, attribute, probability)


def model_settings(recipe: MintRecipe) -> dict[str, Any]:
    """What the recipe sets of its model's config ([`config_overrides`] and `dropout`): a run resumes only with the
    same."""
    frozen = sorted(part for part, rate in (recipe.learning_rates or {}).items() if rate == 0)
    return {**config_overrides(recipe), **({"dropout": recipe.dropout} if recipe.dropout is not None else {}),
            **({"learning_rates of 0 (frozen parts)": frozen} if frozen else {})}


def load_model(recipe: MintRecipe) -> MintPreTrainedModel:
    """
    The stage's model from `recipe.model` (`MintForPreTraining` for stage 1, `MintForConditionalGeneration` for stage
    2; built from the folder's config alone with `from_scratch`), with the recipe's config fields
    ([`config_overrides`]: `stage1_objectives`, ALM's sub-batch, the temperature, the feature augmentation) and
    `dropout` ([`set_dropout`]), `temperature_init` as the temperature's starting value, `bert_init`, the speed levers
    and LoRA (then a `peft` model) applied.
    """
    config = model_folder_config(recipe.model, recipe.stage, **config_overrides(recipe))
    if recipe.dropout is not None:
        set_dropout(config, recipe.dropout, recipe.stage)
    model_class = MintForPreTraining if recipe.stage == 1 else MintForConditionalGeneration
    model = model_class(config) if recipe.from_scratch else model_class.from_pretrained(recipe.model, config=config)
    if recipe.temperature_init is not None:  # the loaded checkpoint's temperature is replaced
        with torch.no_grad():
            model.temp.fill_(recipe.temperature_init)
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


def training_arguments(recipe: MintRecipe) -> TrainingArguments:
    """
    The `TrainingArguments` of `recipe` on this run's processes (`WORLD_SIZE`), once [`check_recipe`] has passed its
    model folder, precision and batch: the per-device batch of the global `batch_size`, bf16 where the recipe asks or
    (unset) the GPU supports it, the distributed settings, length-grouped batches, and the recipe's `training_args`.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    check_recipe(recipe, world_size, datasets=False)
    bf16 = recipe.bf16 if recipe.bf16 is not None else torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    passed_through = {name: getattr(recipe, name) for name in RECIPE_TRAINING_ARGUMENTS}
    evaluation = {}
    if recipe.eval_fraction > 0:
        evaluation = {"eval_strategy": "steps", "eval_steps": recipe.eval_steps} if recipe.eval_steps else \
            {"eval_strategy": "epoch"}
        evaluation["prediction_loss_only"] = True
    if recipe.early_stopping_patience is not None:  # the best model needs a checkpoint at each evaluation
        evaluation.update(save_strategy=evaluation["eval_strategy"], load_best_model_at_end=True,
                          metric_for_best_model="eval_loss", greater_is_better=False,
                          restore_callback_states_from_checkpoint=True)  # a resumed run stops where it would have
    return TrainingArguments(**{
        "report_to": [],
        **recipe.training_args,
        **evaluation,
        "per_device_train_batch_size": per_device_batch_size(recipe.batch_size, world_size,
                                                             recipe.gradient_accumulation_steps),
        "bf16": bf16,
        "activation_checkpointing": recipe.gradient_checkpointing,
        "remove_unused_columns": False,
        **_distributed_arguments(recipe),
        **({"train_sampling_strategy": "group_by_length", "length_column_name": CACHED_LENGTH}
           if recipe.group_by_length else {}),
        **passed_through,
        **({"save_steps": recipe.eval_steps} if recipe.early_stopping_patience and recipe.eval_steps else {}),
    })


def _dataset_name(recipe: MintRecipe, given: bool) -> str:
    if given:
        return "the train_dataset given to train()"
    paths = [spec["path"] for spec in recipe.datasets]
    if any(spec.get("streaming") for spec in recipe.datasets):  # rows counted in the shuffled order they are read
        return f"the shuffled stream of {paths[0]!r}" if len(paths) == 1 else f"the shuffled mixture of {paths}"
    return repr(paths[0]) if len(paths) == 1 else f"the mixture of {paths}"


def _run_complete(trainer: MintTrainer, args: TrainingArguments, checkpoint: str) -> bool:
    """
    Whether `checkpoint` ends the run `args` describes: its step is at least the run's optimizer steps (`max_steps`,
    else the epochs' steps, counted as the Trainer counts them). If so, `trainer.state` becomes the checkpoint's state.
    """
    state_file = os.path.join(checkpoint, TRAINER_STATE_NAME)
    if not os.path.isfile(state_file):
        return False
    state = TrainerState.load_from_json(state_file)
    max_steps = args.max_steps if args.max_steps > 0 else \
        trainer.set_initial_training_values(args, trainer.get_train_dataloader())[-1]
    if state.global_step < max_steps and not _stopped_early(state):
        return False
    state.max_steps = max_steps
    trainer.state = state
    return True


def _stopped_early(state: TrainerState) -> bool:
    """Whether the run of `state` was stopped by its `EarlyStoppingCallback` (its patience spent)."""
    stopping = state.stateful_callbacks.get(EarlyStoppingCallback.__name__)
    if not stopping:
        return False
    return stopping["attributes"]["early_stopping_patience_counter"] >= stopping["args"]["early_stopping_patience"]


def _final_checkpoint(state: TrainerState, output_dir: str, last: str) -> str:
    """
    The checkpoint whose weights a finished run saved: its best one where the run kept the model of the lowest held-out
    loss (`state.best_model_checkpoint`, found in `output_dir` even if the run's folder has moved since), else `last`.
    """
    if not state.best_model_checkpoint:
        return last
    best = os.path.join(output_dir, os.path.basename(os.path.normpath(state.best_model_checkpoint)))
    if not os.path.isdir(best):
        raise ValueError(f"The run in {output_dir!r} kept the model of its checkpoint "
                         f"{os.path.basename(best)!r} (lowest held-out loss), which is no longer there; its "
                         "model.safetensors is that model: use it as it is, or train a new run.")
    return best


def check_train_data(recipe: MintRecipe, model: torch.nn.Module, dataset: Any) -> None:
    """
    Refuses, before training, a recipe whose data lacks its `group_column` or `audio_id_column`, or one that asks for a
    held-out evaluation (`eval_fraction`) of a streamed dataset or, in stage 1, of a model that does not train ALM.
    """
    columns = getattr(dataset, "column_names", None)
    if recipe.group_column is not None and columns is not None and recipe.group_column not in columns:
        raise ValueError(f"The recipe's group_column {recipe.group_column!r} is not a column of the training data; "
                         f"its columns are {columns}. Name a column of group ids (labels, or ids shared by clips that "
                         "match one another's captions), or unset group_column.")
    if recipe.audio_id_column is not None and columns is not None and recipe.audio_id_column not in columns:
        raise ValueError(f"The recipe's audio_id_column {recipe.audio_id_column!r} is not a column of the training "
                         f"data; its columns are {columns}. Name a column of clip ids (shared by the examples of one "
                         "clip), or unset audio_id_column.")
    if recipe.audio_id_column is not None and columns is not None and ENCODER_FEATURES_KEY not in columns:
        raise ValueError(f"The recipe's audio_id_column shares cached encoder features ({ENCODER_FEATURES_KEY}); the "
                         f"training data holds {columns}: train from the feature cache (mint cache-features), or unset "
                         "audio_id_column.")
    if recipe.audio_id_column is not None and isinstance(dataset, Dataset):
        clip_groups(dataset[recipe.audio_id_column])  # refuses an id that cannot name a clip before anything trains
    if recipe.eval_fraction > 0:
        if recipe.stage == 1 and "alm" not in _unwrapped(model).config.stage1_objectives:
            raise ValueError("eval_fraction holds out rows for ALM's pair accuracy, but this run does not train ALM "
                             f"(stage1_objectives {_unwrapped(model).config.stage1_objectives}): add 'alm' or set "
                             "eval_fraction to 0.")
        if not isinstance(dataset, Dataset):
            raise ValueError("eval_fraction needs a dataset with a length to hold rows out of; a streamed dataset has "
                             "none: set eval_fraction to 0, or turn off streaming.")


def split_held_out(dataset: Any, fraction: float, seed: int,
                   audio_id_column: str | None = None) -> tuple[Any, Dataset | None]:
    """
    `dataset` less a held-out share `fraction` of its rows (drawn with `seed`), and that share (None when 0). With
    `audio_id_column`, whole clips are held out (drawn with `seed`, never more rows than the share; one clip where none
    fits it), so that no held-out clip is trained on under another instruction.
    """
    if fraction == 0:
        return dataset, None
    held = max(2, round(len(dataset) * fraction))
    if held > len(dataset) * fraction + 0.5:
        logger.warning(f"eval_fraction {fraction} of {len(dataset)} rows is less than the 2 rows a held-out set needs: "
                       "2 rows are held out.")
    if held >= len(dataset):
        raise ValueError(f"eval_fraction {fraction} of {len(dataset)} rows leaves no row to train on; hold out less.")
    if audio_id_column is None:
        split = dataset.train_test_split(test_size=held, seed=seed)
        return split["train"], split["test"]
    clips = clip_groups(dataset[audio_id_column])
    chosen: list[int] = []
    for clip in np.random.default_rng(seed).permutation(len(clips)):
        if len(chosen) + len(clips[clip]) <= held:  # whole clips, never more rows than the share
            chosen += clips[clip]
    if not chosen:
        chosen = min(clips, key=len)
        logger.warning(f"eval_fraction {fraction} of {len(dataset)} rows is less than any clip's rows: the "
                       f"{len(chosen)} rows of one clip are held out.")
    if len(chosen) >= len(dataset):
        raise ValueError(f"eval_fraction {fraction} of {len(dataset)} rows holds out every clip (the rows of "
                         f"{len(clips)} clips by audio_id_column); hold out less.")
    kept = sorted(set(range(len(dataset))) - set(chosen))
    return dataset.select(kept), dataset.select(sorted(chosen))


def check_held_out_rows(collator: CheckedCollator, held_out) -> tuple[list[int], int]:
    """
    The held-out rows that pass the collator's checks and how many did not ([`CheckedCollator.valid_rows`]: an
    invalid row raises naming it, or with `skip_invalid` is left out); refused where rows exist and none is valid.
    """
    rows, invalid = collator.valid_rows(held_out)
    if invalid and not rows:
        raise ValueError(f"Every one of the {invalid} held-out rows is invalid (left out as skip_invalid_examples "
                         "asks; see the warnings above): nothing is left to evaluate. Fix the held-out rows.")
    return rows, invalid


def train(recipe: MintRecipe, train_dataset: Dataset | IterableDataset | None = None,
          callbacks: list[TrainerCallback] | None = None) -> MintTrainer:
    """
    Runs one stage with [`MintTrainer`] on `train_dataset` (MINT examples of the stage), or else on the recipe's
    datasets ([`build_train_dataset`]); resumes from the last complete checkpoint when `recipe.resume`. The data is
    checked and `recipe.output_dir` claimed ([`claim_output_dir`]: a folder holding anything but a run of this stage
    and model is refused unless `recipe.overwrite`) before anything trains. A run whose last complete checkpoint is
    at its final step is already complete: the same command again trains nothing (`trainer.already_complete`) and
    keeps the model as it is. The model (or, with LoRA, its trained parts and adapters) and the processor are saved in
    `recipe.output_dir`.

    Returns:
        The trainer after training (`trainer.state.global_step`, `trainer.skipped_examples`, `trainer.model`,
        `trainer.already_complete`).
    """
    args = training_arguments(recipe)
    set_seed(recipe.seed)  # parts missing from the checkpoint (stage 2's projection and LLM) initialise reproducibly
    model = load_model(recipe)
    processor = MintProcessor.from_pretrained(recipe.model)
    dataset = train_dataset if train_dataset is not None else build_train_dataset(recipe)
    check_train_data(recipe, model, dataset)
    if recipe.group_by_length and CACHED_LENGTH not in dataset.column_names:
        raise ValueError(f"group_by_length needs the {CACHED_LENGTH!r} column that cache_audio_features writes; this "
                         f"dataset has {dataset.column_names}. Train from the feature cache, or add the column.")
    if ROW_COLUMN in (getattr(dataset, "column_names", None) or []):  # numbered per recipe dataset
        sources = [repr(spec["path"]) for spec in recipe.datasets]
    else:
        dataset, sources = number_rows(dataset), [_dataset_name(recipe, train_dataset is not None)]
    # Numbered first, so that a bad held-out row is named by its row like a training row.
    dataset, held_out = split_held_out(dataset, recipe.eval_fraction, recipe.seed, recipe.audio_id_column)
    collator = CheckedCollator(MintDataCollator(processor, stage=recipe.stage, group_column=recipe.group_column,
                                                audio_id_column=recipe.audio_id_column),
                               sources, recipe.skip_invalid_examples)
    if held_out is not None:  # an invalid held-out row stops the run now, not at its first evaluation
        check_held_out_rows(collator, held_out)
    with args.main_process_first(local=False, desc="claiming the output_dir"):
        if args.process_index == 0:
            claim_output_dir(recipe.output_dir, recipe.stage, recipe.model, recipe.overwrite, model_settings(recipe))
    schedule = [AlmScheduleCallback(recipe.alm_start, recipe.alm_hard_start)] if recipe.stage == 1 else []
    trainer = MintTrainer(
        model=model, args=args, train_dataset=dataset, eval_dataset=held_out, data_collator=collator,
        processing_class=processor, callbacks=[CompleteCheckpointCallback(), *schedule, *(callbacks or [])],
        learning_rates=recipe.learning_rates, length_groups=recipe.length_groups,
        audio_id_column=recipe.audio_id_column,
    )
    if recipe.max_train_minutes is not None:
        trainer.add_callback(TimeBudgetCallback(recipe.max_train_minutes))
    if recipe.early_stopping_patience is not None:
        trainer.add_callback(EarlyStoppingCallback(recipe.early_stopping_patience))
    checkpoint = last_complete_checkpoint(recipe.output_dir) if recipe.resume else None
    trainer.already_complete = checkpoint is not None and _run_complete(trainer, args, checkpoint)
    if trainer.already_complete:
        # The Trainer resumed at its last step would train one step more (it checks `max_steps` only after a step).
        if _stopped_early(trainer.state):
            logger.warning(f"The run in {recipe.output_dir!r} stopped early at step {trainer.state.global_step} (its "
                           "held-out loss had stopped falling); nothing is trained. Start a new run (another "
                           "output_dir) to train further.")
        else:
            logger.warning(f"The run in {recipe.output_dir!r} is already complete: {checkpoint!r} is at step "
                           f"{trainer.state.global_step} of {trainer.state.max_steps}; nothing is trained. Raise "
                           "max_steps (or num_train_epochs) to train further.")
        trainer._load_from_checkpoint(_final_checkpoint(trainer.state, recipe.output_dir, checkpoint))
    else:
        trainer.train(resume_from_checkpoint=checkpoint)
    if trainer.skipped_examples:
        logger.warning(f"Skipped {trainer.skipped_examples} invalid training examples (see the warnings above).")
    if recipe.lora:
        save_lora_run(trainer.model, processor, recipe)
    else:
        trainer.save_model(recipe.output_dir)
    if recipe.stage == 1:  # read by transformers' zero-shot pipeline, the LLM tokenizer kept for stage 2
        save_embedding_processor(processor, recipe.output_dir)
    else:
        processor.save_pretrained(recipe.output_dir)
    return trainer


__all__ = ["OBJECTIVE_LOSSES", "MintTrainer", "load_model", "train", "training_arguments"]
