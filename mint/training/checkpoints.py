# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""A run's checkpoints: marked complete once fully written, resumed from the last complete one, never saved with
non-finite weights, and written early when the run's time budget is spent."""

import json
import os
import re
import time

import torch
from transformers import TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR
from transformers.utils import logging


logger = logging.get_logger(__name__)

# Written in a `checkpoint-N` folder once the Trainer has written all of it.
COMPLETE_MARKER = "mint_checkpoint_complete.json"


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


def check_finite_weights(model: torch.nn.Module, destination: str | os.PathLike) -> None:
    """Raises a `FloatingPointError` naming the parameters of `model` that hold NaN or infinite values."""
    named = [(name, p) for name, p in model.named_parameters() if p.numel()]
    finite = torch.stack([torch.isfinite(p).all() for _, p in named]).tolist()
    bad = [name for (name, _), ok in zip(named, finite) if not ok]
    if bad:
        raise FloatingPointError(f"Not saving {os.fspath(destination)!r}: the weights {bad[:10]} "
                                 f"{'and more ' if len(bad) > 10 else ''}hold NaN or infinite values.")


__all__ = ["COMPLETE_MARKER", "CompleteCheckpointCallback", "TimeBudgetCallback", "check_finite_weights",
           "last_complete_checkpoint"]
