# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""The encoder probe (`mint demo --probe-encoder`): how much of each of the demo's labels the frozen Whisper encoder's
hidden states carry, measured by a supervised linear probe on single hidden states and on combinations of them, the
combination chosen on a validation split. A reference for the demo's results (their bound), not a MINT result."""

import io
import json
import os
import warnings

from collections.abc import Sequence

import numpy as np
import soundfile
import torch
from datasets import Dataset, DatasetDict
from transformers import WhisperFeatureExtractor
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from audio_encoder_mint import audio_frame_mask
from mint.demo.corpus import build_corpus
from mint.demo.report import claim_demo_folder, write_results
from mint.demo.settings import PROBE_DEMO_FEATURES, PROBE_FILE, RESULTS_FILE, TASKS
from mint.demo.whisper import whisper_encoder_dir


def pooled_encoder_states(encoder_dir: str, split, batch_size: int = 32) -> torch.Tensor:
    """
    Each clip's hidden states of the frozen Whisper encoder in `encoder_dir`, mean and std over its real frames:
    `(hidden states, clips, 2 x hidden_size)`.
    """
    feature_extractor = WhisperFeatureExtractor.from_pretrained(encoder_dir)
    encoder = WhisperEncoder.from_pretrained(encoder_dir).eval()
    pooled = []
    for start in range(0, len(split), batch_size):
        clips = [soundfile.read(io.BytesIO(a["bytes"]), dtype="float32")[0]
                 for a in split[start : start + batch_size]["audio"]]
        inputs = feature_extractor(clips, sampling_rate=feature_extractor.sampling_rate, padding="max_length",
                                   truncation=True, return_attention_mask=True, return_tensors="pt")
        with torch.no_grad():
            states = torch.stack(encoder(inputs.input_features, output_hidden_states=True).hidden_states)
        mask = audio_frame_mask(encoder, inputs.attention_mask, states.shape[2])[None, :, :, None].float()
        mean = (states * mask).sum(2) / mask.sum(2)
        std = (((states - mean[:, :, None]) ** 2 * mask).sum(2) / mask.sum(2)).sqrt()
        pooled.append(torch.cat([mean, std], -1))
    return torch.cat(pooled, 1)


def linear_probe(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray) -> np.ndarray:
    """A standardised, L2-regularised logistic regression fitted on `(clips, features)` and its test predictions."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probe = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
    return probe.fit(x_train, y_train).predict(x_test)


# The group of a training clip for the validation split: clips of one soundfont program, or of one voice, are held out
# together, as the test split holds out whole programs and voices.
GROUP_COLUMNS = ("program", "voice")


def layer_combinations(num_states: int) -> dict[str, tuple[tuple[int, ...], str]]:
    """
    The feature sets the probe chooses from, by name: `(hidden states, "concatenated" | "averaged")`. Each hidden state
    alone; the input embeddings (state 0) concatenated with each later state (with the last one, what the demo's
    Bridge-Net reads); with more than two states, all of them averaged and all concatenated. On the demo's corpus,
    pairs without state 0 and averaged pairs never beat these.
    """
    last = num_states - 1
    combinations = {f"hidden state {i}": ((i,), "concatenated") for i in range(num_states)}
    combinations.update({f"hidden states 0+{i}, concatenated": ((0, i), "concatenated") for i in range(1, last)})
    if last > 0:
        combinations[PROBE_DEMO_FEATURES] = ((0, last), "concatenated")
    if num_states > 2:
        combinations["all hidden states, averaged"] = (tuple(range(num_states)), "averaged")
        combinations["all hidden states, concatenated"] = (tuple(range(num_states)), "concatenated")
    return combinations


def combined_features(states: np.ndarray, layers: Sequence[int], how: str) -> np.ndarray:
    """The pooled `states` `(hidden states, clips, features)` of `layers`, concatenated `(clips, features x
    len(layers))` or averaged `(clips, features)`."""
    if how == "averaged":
        return states[list(layers)].mean(0)
    return np.concatenate([states[layer] for layer in layers], -1)


def validation_rows(labels: Sequence, groups: Sequence, fraction: float = 0.2,
                    seed: int = 0) -> tuple[np.ndarray, np.ndarray] | None:
    """
    The training rows split into the rows a probe is fitted on and the validation rows it is chosen on: about
    `fraction` of them, whole `groups` at a time and each label in about its share (scikit-learn's
    `StratifiedGroupKFold`, seeded, its first fold). None where no such split leaves two labels to fit a probe on
    (too few groups).
    """
    from sklearn.model_selection import StratifiedGroupKFold

    _check_fraction(fraction)
    _, counts = np.unique(np.asarray(labels), return_counts=True)
    splits = min(max(2, round(1 / fraction)), len(set(groups)), int(counts.max(initial=0)))
    if splits < 2:
        return None
    with warnings.catch_warnings():  # a label with fewer groups than folds: its share is approximate
        warnings.simplefilter("ignore", UserWarning)
        folds = StratifiedGroupKFold(n_splits=splits, shuffle=True, random_state=seed)
        fit, validation = next(folds.split(np.zeros(len(labels)), np.asarray(labels), np.asarray(groups)))
    return (fit, validation) if len(set(np.asarray(labels)[fit])) > 1 else None


def _check_fraction(fraction: float) -> None:
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
        raise ValueError(f"validation_fraction must be a number between 0 and 1 (the share of the training clips the "
                         f"layer combination is chosen on), got {fraction!r}.")


def _probe_task(states: dict[str, np.ndarray], labels: dict[str, list], groups: list, validation_fraction: float,
                seed: int, every_feature_set: bool) -> dict:
    """One label type's probe: the validation accuracy of every layer combination, the held-out test accuracy of the
    chosen one (fitted on all of the training rows) and, with `every_feature_set`, of every one. Where the training
    rows are too few for a validation split ([`validation_rows`]), the first combination is the chosen one."""
    rows = {split: [i for i, v in enumerate(labels[split]) if v is not None] for split in states}
    y = {split: np.array([labels[split][i] for i in rows[split]]) for split in states}
    split = validation_rows(y["train"], [groups[i] for i in rows["train"]], validation_fraction, seed)
    combinations = layer_combinations(states["train"].shape[0])
    scores, test = {}, {}
    for name, (layers, how) in combinations.items():
        x = {part: combined_features(states[part][:, rows[part]], layers, how) for part in states}
        if split is not None:
            fit, validation = split
            scores[name] = float(np.mean(linear_probe(x["train"][fit], y["train"][fit], x["train"][validation])
                                         == y["train"][validation]))
        if every_feature_set:
            test[name] = linear_probe(x["train"], y["train"], x["test"]) == y["test"]
    # The first of equals: the simplest features, in the order of `layer_combinations`.
    chosen = max(scores, key=scores.get) if scores else next(iter(combinations))
    if chosen not in test:
        layers, how = combinations[chosen]
        x = {part: combined_features(states[part][:, rows[part]], layers, how) for part in states}
        test[chosen] = linear_probe(x["train"], y["train"], x["test"]) == y["test"]
    return {"bound": {"accuracy": float(test[chosen].mean()), "features": chosen,
                      "validation_accuracy": scores.get(chosen)},
            "validation": scores, "correct": test}


def _groups(split: Dataset) -> list:
    """Each row's group for the validation split: its program or voice (`GROUP_COLUMNS`), else the row alone."""
    columns = [column for column in GROUP_COLUMNS if column in split.column_names]
    values = list(zip(*(split[column] for column in columns))) if columns else [()] * len(split)
    return [next((f"{column}={v}" for column, v in zip(columns, value) if v is not None), f"row={row}")
            for row, value in enumerate(values)]


def _probe(corpus: DatasetDict, encoder_dir: str, validation_fraction: float, seed: int,
           every_feature_set: bool) -> dict:
    """Each label type's probe ([`_probe_task`]) on the corpus's pooled encoder states."""
    _check_fraction(validation_fraction)
    states = {split: pooled_encoder_states(encoder_dir, corpus[split]).numpy() for split in ("train", "test")}
    groups = _groups(corpus["train"].remove_columns("audio"))
    return {task: _probe_task(states, {split: corpus[split][column] for split in states}, groups, validation_fraction,
                              seed, every_feature_set) for task, (column, _) in TASKS.items()}


def probe_bounds(corpus: DatasetDict, encoder_dir: str, validation_fraction: float = 0.2,
                 seed: int = 0) -> dict[str, dict]:
    """
    The bound the frozen encoder sets on each of the demo's label types: a logistic regression ([`linear_probe`]) on
    the pooled hidden states of the layer combination ([`layer_combinations`]) that scores best on a validation split
    of the training clips (`validation_fraction` of them, whole programs and voices held out, [`validation_rows`]),
    refitted on all of them and scored on the held-out test split. `corpus` is the demo's corpus (`train` and `test`,
    as `build_corpus` returns it), `encoder_dir` the Whisper encoder's folder (`whisper_encoder_dir`).

    Returns `{label type: {"accuracy": test accuracy, "features": the combination's name, "validation_accuracy"}}`.
    """
    return {task: probe["bound"] for task, probe in _probe(corpus, encoder_dir, validation_fraction, seed,
                                                           every_feature_set=False).items()}


def probe_encoder(output: str = "mint-demo", progress: bool = True, overwrite: bool = False) -> str:
    """
    How much of each label the frozen encoder's hidden states carry: a logistic regression on each clip's pooled
    hidden states, of each layer combination ([`layer_combinations`]), fitted with the labels on the training split
    and scored on the held-out split. It is supervised, so it is a reference for what a reader of those features can
    learn, not a MINT result; each label type's bound is the combination chosen on a validation split of the training
    clips ([`probe_bounds`]), as choosing the best test score would overstate it. Returns two Markdown tables: accuracy
    per label type (every combination, then the bound), and the instrument-family accuracy on each held-out soundfont
    program. Writes them to `encoder_probe.md` and to `encoder_probe.json` in `output` (`accuracy`: combination ->
    label type -> test accuracy; `validation_accuracy` alike; `bounds` as `probe_bounds` returns them); where the
    demo's results are already there, their table gets the probe's column. A folder holding anything the demo does
    not write is refused ([`claim_demo_folder`]), unless `overwrite` replaces it.
    """
    claim_demo_folder(output, overwrite)
    corpus = build_corpus(os.path.join(output, "corpus"), progress=progress)
    probes = _probe(corpus, whisper_encoder_dir(output), validation_fraction=0.2, seed=0, every_feature_set=True)
    bounds = {task: probe["bound"] for task, probe in probes.items()}
    names = list(next(iter(probes.values()))["correct"])
    accuracy = {name: {task: float(probe["correct"][name].mean()) for task, probe in probes.items()} for name in names}
    instruments = [i for i, v in enumerate(corpus["test"]["instrument_family"]) if v is not None]
    programs = np.array(corpus["test"]["program"])[instruments]
    held_out = sorted(set(programs.tolist()))
    family = dict(zip(programs.tolist(), np.array(corpus["test"]["instrument_family"])[instruments]))
    table = ["| Encoder features | " + " | ".join(TASKS) + " |", "|---" * (len(TASKS) + 1) + "|"]
    table += [f"| {name} | " + " | ".join(f"{100 * a:.1f}" for a in accuracy[name].values()) + " |" for name in names]
    table += ["| **chosen on the validation split (the bound)** | " + " | ".join(
        f"{100 * bound['accuracy']:.1f} ({bound['features']})" for bound in bounds.values()) + " |"]
    correct = probes["instrument family"]["correct"]
    by_program = ["| Encoder features | " + " | ".join(f"{family[p]} ({p})" for p in held_out) + " |",
                  "|---" * (len(held_out) + 1) + "|"]
    by_program += [f"| {name} | " + " | ".join(f"{100 * correct[name][programs == p].mean():.1f}" for p in held_out)
                   + " |" for name in names]
    markdown = "\n".join(table) + "\n\nInstrument family on each held-out program (General MIDI number):\n\n" + \
        "\n".join(by_program) + "\n"
    with open(os.path.join(output, PROBE_FILE), "w") as f:
        json.dump({"accuracy": accuracy, "bounds": bounds,
                   "validation_accuracy": {name: {task: probe["validation"].get(name) for task, probe in
                                                  probes.items()} for name in names}}, f, indent=2)
    with open(os.path.join(output, "encoder_probe.md"), "w") as f:
        f.write(markdown)
    if os.path.isfile(os.path.join(output, RESULTS_FILE)):
        with open(os.path.join(output, RESULTS_FILE)) as f:
            write_results(output, json.load(f))
    return markdown
