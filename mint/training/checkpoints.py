# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""A run's folder and checkpoints: the folder claimed for one recipe (never a folder another writer filled),
checkpoints marked complete once fully written, resumed from the last complete one, never saved with non-finite
weights, and written early when the run's time budget is spent."""

import json
import os
import re
import shutil
import time
from typing import Any

import torch
from transformers import TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR
from transformers.utils import logging

from checkpoint_mint import mint_stage
from mint.data.outputs import few, read_json, write_json


logger = logging.get_logger(__name__)

# Written in a `checkpoint-N` folder once the Trainer has written all of it.
COMPLETE_MARKER = "mint_checkpoint_complete.json"
# Written in a run's output_dir before it trains: the stage and the model folder of the recipe the folder belongs to.
RUN_MARKER = "mint_run.json"


class CompleteCheckpointCallback(TrainerCallback):
    """Marks a checkpoint complete once the Trainer has written all of it: a checkpoint cut short is never resumed."""

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            folder = os.path.join(args.output_dir, f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}")
            if os.path.isdir(folder):
                write_json(os.path.join(folder, COMPLETE_MARKER), {"global_step": state.global_step})
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
        and read_json(os.path.join(output_dir, name, COMPLETE_MARKER)) is not None
    )
    return os.path.join(output_dir, steps[-1][1]) if steps else None


def _run_of(output_dir: str) -> dict | None:
    """The stage and model of the run `output_dir` holds (from its marker; a folder of complete checkpoints written
    without one gives the stage of its last), or None when no MINT training run wrote it."""
    record = read_json(os.path.join(output_dir, RUN_MARKER))
    if isinstance(record, dict) and "stage" in record:
        return record
    checkpoint = last_complete_checkpoint(output_dir)
    try:
        return {"stage": mint_stage(checkpoint)} if checkpoint else None
    except ValueError:
        return None


def claim_output_dir(output_dir: str | os.PathLike, stage: int, model: str | os.PathLike,
                     overwrite: bool = False, model_settings: dict[str, Any] | None = None) -> None:
    """
    Makes `output_dir` the folder of a run of stage `stage` from `model` with the recipe's `model_settings` (the model
    config fields it sets), recorded in its `RUN_MARKER` (written in one step). A missing or empty folder is claimed;
    so is one holding a run of the same stage, model and settings (whose checkpoints the run resumes). A folder holding
    anything else (unrelated files, a run of another stage, model or settings) is refused with a `ValueError` naming
    what it holds, unless `overwrite`, which removes it first.
    """
    output_dir = os.fspath(output_dir)
    record = {"stage": stage, "model": os.path.abspath(os.fspath(model))}
    settings = json.loads(json.dumps(model_settings or {}))  # as the marker holds them
    if os.path.lexists(output_dir) and not os.path.isdir(output_dir):
        raise ValueError(f"output_dir {output_dir!r} exists and is not a folder: choose another output_dir.")
    entries = sorted(os.listdir(output_dir)) if os.path.isdir(output_dir) else []
    if entries and overwrite:
        shutil.rmtree(output_dir)
    elif entries:
        found = _run_of(output_dir)
        replace = "choose another output_dir, or replace it with `overwrite: true` (mint train --overwrite)"
        if found is None:
            raise ValueError(f"output_dir {output_dir!r} exists and holds {few(entries)}, which no MINT training run "
                             f"wrote: {replace}.")
        if any(found[key] != value for key, value in record.items() if key in found):
            raise ValueError(f"output_dir {output_dir!r} holds a run of stage {found['stage']}"
                             + (f" from {found['model']!r}" if "model" in found else "")
                             + f"; this recipe trains stage {stage} from {record['model']!r}: {replace}.")
        if found.get("model_settings", settings) != settings:
            raise ValueError(f"output_dir {output_dir!r} holds a run with the model settings "
                             f"{found['model_settings']}; this recipe sets {settings}, which its checkpoints were not "
                             f"trained with: resume with the run's settings, {replace}.")
    os.makedirs(output_dir, exist_ok=True)
    write_json(os.path.join(output_dir, RUN_MARKER), {**record, "model_settings": settings})


def check_finite_weights(model: torch.nn.Module, destination: str | os.PathLike) -> None:
    """Raises a `FloatingPointError` naming the parameters of `model` that hold NaN or infinite values."""
    named = [(name, p) for name, p in model.named_parameters() if p.numel()]
    finite = torch.stack([torch.isfinite(p).all() for _, p in named]).tolist()
    bad = [name for (name, _), ok in zip(named, finite) if not ok]
    if bad:
        raise FloatingPointError(f"Not saving {os.fspath(destination)!r}: the weights {bad[:10]} "
                                 f"{'and more ' if len(bad) > 10 else ''}hold NaN or infinite values.")


__all__ = ["COMPLETE_MARKER", "RUN_MARKER", "CompleteCheckpointCallback", "TimeBudgetCallback", "check_finite_weights",
           "claim_output_dir", "last_complete_checkpoint"]
