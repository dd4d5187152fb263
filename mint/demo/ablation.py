# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""The paper's Table 5 on the demo's data: stage 1 trained with each set of objectives on the same corpus, feature
cache and budget, and scored by zero-shot classification per label type and text-to-audio retrieval.

    mint ablate --output mint-demo [--seeds 0 1 2] [--stage1-epochs 3] [--stage1-query-learning-rate 1e-3]

The runs share the demo's folder (its corpus, assembled model and feature cache are built or reused there) and land in
`ablation/<objectives>-seed-<N>`; a finished run of the same settings and corpus is reused. Writes `ablation.json` and
the table `ablation.md` (mean ± standard deviation over the seeds) into the folder and returns the results.
"""

import json
import math
import os
from collections.abc import Sequence

import numpy as np
import torch

from mint.data.examples import check_flag, is_integer
from mint.demo.corpus import HELD_OUT_SOUNDFONT, CorpusSettings
from mint.demo.report import claim_demo_folder
from mint.demo.run import (
    CROSS_ATTENTION_FREQUENCY,
    DEFAULT_SEED,
    STAGE1_DROPOUT,
    STAGE1_EPOCHS,
    STAGE1_QUERY_LEARNING_RATE,
    TRAINING,
    _as_float,
    check_cross_attention_frequency,
    check_epochs,
    check_learning_rate,
    check_seeds,
    check_threads,
    deterministic,
    embedding_results,
    held_out_features,
    prepare,
    retrieval_in_pool,
    train_stage1,
)
from mint.demo.settings import ABLATION_FOLDER, OBJECTIVE_SETS, POOL_SIZE, TASKS
from modeling_mint import MintForPreTraining


RUN_SETTINGS = "ablation_run.json"
RETRIEVAL_KEYS = ("R@1", "R@5", "R@10")
HELD_OUT_COLUMN = "instrument family, held-out soundfont"


def _finished(folder: str, settings: dict) -> bool:
    """Whether `folder` holds a run trained with `settings`; an unreadable settings file is a run to train again."""
    path = os.path.join(folder, RUN_SETTINGS)
    if not os.path.isfile(path) or not os.path.isfile(os.path.join(folder, "model.safetensors")):
        return False
    try:
        with open(path) as f:
            recorded = json.load(f)
    except (OSError, ValueError, RecursionError):  # unreadable, not JSON, too deep or too long a number
        return False
    if isinstance(recorded, dict):  # runs recorded without these trained at the base rate, BLIP-2's Q-Former
        recorded.setdefault("query_learning_rate", TRAINING["learning_rate"])
        recorded.setdefault("cross_attention_frequency", 2)
    # Compared as written: in Python `true == 1` and `1.0 == 1`, while a bool or a float is not the recorded setting.
    return json.dumps(recorded, sort_keys=True) == json.dumps(settings, sort_keys=True)


def run_ablation(output: str = "mint-demo", seeds: Sequence[int] = (0,), stage1_epochs: float = STAGE1_EPOCHS,
                 objective_sets: Sequence[str] | None = None, progress: bool = True, overwrite: bool = False,
                 threads: int | None = None, stage1_query_learning_rate: float | None = None,
                 cross_attention_frequency: int | None = None) -> dict:
    """
    Trains stage 1 with each of `objective_sets` (names of `OBJECTIVE_SETS`, default all four) for each of `seeds`,
    `stage1_epochs` epochs each (the queries and cross-attention at `stage1_query_learning_rate`, default the demo's
    `STAGE1_QUERY_LEARNING_RATE`, as [`train_stage1`]; the Q-Former cross-attending every `cross_attention_frequency`
    layers, default the demo's `CROSS_ATTENTION_FREQUENCY`), in `output/ablation`, and scores each on the held-out
    split: zero-shot accuracy by embeddings per label type, its mean over the label types, text-to-audio R@1/5/10 in
    the demo's pool of 200 clips, and the instrument-family accuracy on the held-out soundfont. Runs with
    deterministic kernels and, with `threads`, that many CPU threads ([`deterministic`]), in fp32 with PyTorch's
    default attention kernel, as the README's Table 5 was measured (the demo itself trains faster, under bf16
    autocast with the plain attention kernel: `run.FAST_TRAINING`, `run.ATTENTION_BACKEND`). Returns `{"seeds",
    "stage1_epochs", "stage1_query_learning_rate", "cross_attention_frequency", "runs": {set: {seed: scores}},
    "summary": {set: {metric: [mean, std]}}}` and
    writes it to `ablation.json`, its table to `ablation.md`. A folder holding anything the demo does not write is
    refused ([`claim_demo_folder`]), unless `overwrite` replaces it.
    """
    seeds = check_seeds(seeds, "seeds")
    names = list(OBJECTIVE_SETS) if objective_sets is None else list(objective_sets)
    unknown = [name for name in names if name not in OBJECTIVE_SETS]
    if unknown or not names or len(set(names)) != len(names):
        raise ValueError(f"objective_sets must name distinct sets of {list(OBJECTIVE_SETS)}, got {names!r}.")
    # As plain floats: a numpy number would not go into the runs' JSON settings.
    stage1_epochs = check_epochs("stage1_epochs", stage1_epochs)
    stage1_query_learning_rate = (STAGE1_QUERY_LEARNING_RATE if stage1_query_learning_rate is None else
                                  check_learning_rate("stage1_query_learning_rate", stage1_query_learning_rate))
    cross_attention_frequency = (CROSS_ATTENTION_FREQUENCY if cross_attention_frequency is None else
                                 check_cross_attention_frequency(cross_attention_frequency))
    check_threads(threads)
    check_flag("overwrite", overwrite)
    claim_demo_folder(output, overwrite)
    runs: dict[str, dict[int, dict]] = {name: {} for name in names}
    with deterministic(threads):
        # Every run starts from the model the demo assembles with its default seed, whichever seeds are asked for.
        corpus, folder, processor, cached = prepare(output, progress, DEFAULT_SEED, cross_attention_frequency)
        test = None  # the held-out split's cached features, from the first run's frozen encoder
        for seed in seeds:
            for name in names:
                run_dir = os.path.join(output, ABLATION_FOLDER, f"{name}-seed-{seed}")
                settings = {"objectives": OBJECTIVE_SETS[name], "seed": seed, "stage1_epochs": stage1_epochs,
                            "dropout": STAGE1_DROPOUT,
                            "query_learning_rate": stage1_query_learning_rate,
                            "cross_attention_frequency": cross_attention_frequency,
                            "corpus": CorpusSettings().fingerprint()}
                if not _finished(run_dir, settings):
                    torch.manual_seed(seed)
                    train_stage1(folder, run_dir, cached, stage1_epochs, seed, OBJECTIVE_SETS[name],
                                 query_learning_rate=stage1_query_learning_rate, fast=False)
                    with open(os.path.join(run_dir, RUN_SETTINGS), "w") as f:
                        json.dump(settings, f)
                model = MintForPreTraining.from_pretrained(run_dir).eval()
                if test is None:
                    test = held_out_features(model, processor, corpus["test"], output, progress)
                with torch.no_grad():
                    retrieval, _, _ = retrieval_in_pool(model, processor, test, POOL_SIZE, seed)
                    zero_shot = embedding_results(model, processor, test, progress)
                scores = {task: zero_shot[task]["accuracy"] for task in TASKS}
                scores["mean zero-shot"] = float(np.mean([scores[task] for task in TASKS]))
                fonts = zero_shot["instrument family"]["by_soundfont"] or {}
                if HELD_OUT_SOUNDFONT in fonts:
                    scores[HELD_OUT_COLUMN] = fonts[HELD_OUT_SOUNDFONT]["accuracy"]
                scores.update({key: retrieval[key] for key in RETRIEVAL_KEYS})
                runs[name][seed] = scores
    summary = {name: {metric: [float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0]
                      for metric, values in _by_metric(by_seed).items()} for name, by_seed in runs.items()}
    results = {"seeds": seeds, "stage1_epochs": stage1_epochs, "stage1_query_learning_rate": stage1_query_learning_rate,
               "cross_attention_frequency": cross_attention_frequency, "runs": runs, "summary": summary}
    with open(os.path.join(output, "ablation.json"), "w") as f:
        json.dump(results, f, indent=2)
    table = ablation_table(results)
    with open(os.path.join(output, "ablation.md"), "w") as f:
        f.write(table)
    return results


def _by_metric(by_seed: dict[int, dict]) -> dict[str, list[float]]:
    return {metric: [scores[metric] for scores in by_seed.values()] for metric in next(iter(by_seed.values()))}


def _table_input(results: dict) -> dict:
    """`results` (as `run_ablation` returns them, or `ablation.json` holds them, perhaps edited) as plain Python values
    for `ablation_table`: seeds a list of ints, numbers floats (-0 as 0), the summary `{set: {metric: (mean, std)}}`
    with the same metrics for every set; a ValueError names the first entry of another shape."""
    shape = ("run_ablation's results (ablation.json): a dict with 'seeds' (a list of seeds), 'stage1_epochs' (a "
             "positive number), optionally 'stage1_query_learning_rate' and 'cross_attention_frequency', and "
             "'summary' (objective set -> metric -> [mean, std], fractions from 0 to 1)")
    if not isinstance(results, dict) or not isinstance(results.get("summary"), dict) or not results["summary"]:
        raise ValueError(f"ablation_table takes {shape}; got {type(results).__name__} without a non-empty 'summary' "
                         "dict.")
    epochs, rate = results.get("stage1_epochs"), results.get("stage1_query_learning_rate")
    every = results.get("cross_attention_frequency")
    for key, value, kind, fine in (("stage1_epochs", epochs, "a positive number", 0 < _as_float(epochs) < math.inf),
                                   ("stage1_query_learning_rate", rate, "None or a non-negative number",
                                    rate is None or 0 <= _as_float(rate) < math.inf),
                                   ("cross_attention_frequency", every, "None or a positive integer",
                                    every is None or (is_integer(every) and every >= 1))):
        if not fine:
            raise ValueError(f"ablation_table: results[{key!r}] must be {kind}, got {value!r}; it takes {shape}.")
    sets = results["summary"]
    metrics = [*TASKS, "mean zero-shot", *RETRIEVAL_KEYS]
    if any(isinstance(summary, dict) and HELD_OUT_COLUMN in summary for summary in sets.values()):
        metrics.append(HELD_OUT_COLUMN)
    summary = {}
    for name, scores in sets.items():
        summary[str(name)] = {}
        for metric in metrics:
            pair = scores.get(metric) if isinstance(scores, dict) else None
            if not (isinstance(pair, (list, tuple)) and len(pair) == 2 and all(0 <= _as_float(v) <= 1 for v in pair)):
                raise ValueError(f"ablation_table: results['summary'][{name!r}][{metric!r}] must be [mean, std], two "
                                 f"fractions from 0 to 1, got {pair!r}; it takes {shape}.")
            summary[str(name)][metric] = tuple(_as_float(v) for v in pair)
    return {"seeds": check_seeds(results.get("seeds"), "results['seeds']"), "stage1_epochs": _as_float(epochs),
            "stage1_query_learning_rate": None if rate is None else _as_float(rate),
            "cross_attention_frequency": None if every is None else int(every), "metrics": metrics,
            "summary": summary}


def ablation_table(results: dict) -> str:
    """The Markdown table of `run_ablation`'s results: one row per objective set, accuracies and R@k in percent
    (mean ± std over the seeds where there are several). Results of another shape are refused with the entry named."""
    results = _table_input(results)
    metrics, several = results["metrics"], len(results["seeds"]) > 1
    epochs, rate = results["stage1_epochs"], results["stage1_query_learning_rate"]  # absent from earlier versions
    rate = "" if rate is None else f", the queries and cross-attention at {rate:g}"
    every = results["cross_attention_frequency"]  # absent from earlier versions
    rate += "" if every is None else (", cross-attention in every " + ("layer" if every == 1 else f"{every} layers"))
    lines = [f"Stage 1 by objective set, {epochs:g} epoch{'s' * (epochs != 1)}{rate}, seeds {results['seeds']}: "
             "zero-shot accuracy by embeddings per held-out label type and text-to-audio retrieval in a pool of "
             f"{POOL_SIZE} held-out clips (%{', mean ± std over the seeds' if several else ''}).", "",
             "| Objectives | " + " | ".join(metrics) + " |", "|---" * (len(metrics) + 1) + "|"]
    for name, summary in results["summary"].items():
        cells = [f"{100 * summary[m][0]:.1f}" + (f" ± {100 * summary[m][1]:.1f}" if several else "") for m in metrics]
        name = " ".join(name.split()).replace("|", "\\|")  # one Markdown row, whatever the set's name holds
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


__all__ = ["ablation_table", "run_ablation"]
