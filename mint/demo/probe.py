# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""The encoder probe (`mint demo --probe-encoder`): how much of each of the demo's labels the frozen Whisper encoder's
hidden states carry, measured by a supervised linear probe. A reference for the demo's results, not a MINT result."""

import io
import json
import os

import numpy as np
import soundfile
import torch
from transformers import WhisperFeatureExtractor
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from audio_encoder_mint import audio_frame_mask
from mint.demo.corpus import build_corpus
from mint.demo.report import claim_demo_folder, write_results
from mint.demo.settings import PROBE_FILE, RESULTS_FILE, TASKS
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


def probe_encoder(output: str = "mint-demo", progress: bool = True, overwrite: bool = False) -> str:
    """
    How much of each label the frozen encoder's hidden states carry: a logistic regression on each clip's pooled
    hidden state, fitted with the labels on the training split and scored on the held-out split. It is supervised, so
    it is a reference for what a reader of those features can learn, not a MINT result. Returns two Markdown tables:
    accuracy per label type, and the instrument-family accuracy on each held-out soundfont program. Writes them to
    `encoder_probe.md` and the accuracies to `encoder_probe.json` in `output`; where the demo's results are already
    there, their table gets the probe's column. A folder holding anything the demo does not write is refused
    ([`claim_demo_folder`]), unless `overwrite` replaces it.
    """
    claim_demo_folder(output, overwrite)
    corpus = build_corpus(os.path.join(output, "corpus"), progress=progress)
    encoder_dir = whisper_encoder_dir(output)
    states = {split: pooled_encoder_states(encoder_dir, corpus[split]).numpy() for split in ("train", "test")}
    feature_sets = {f"hidden state {i}": [i] for i in range(states["train"].shape[0])}
    feature_sets["hidden states 0 and -1 (the demo's)"] = [0, -1]
    labels = {column: {split: corpus[split][column] for split in states} for column, _ in TASKS.values()}
    instruments = [i for i, v in enumerate(labels["instrument_family"]["test"]) if v is not None]
    programs = np.array(corpus["test"]["program"])[instruments]
    held_out = sorted(set(programs.tolist()))
    family = dict(zip(programs.tolist(), np.array(labels["instrument_family"]["test"])[instruments]))
    table = ["| Encoder features | " + " | ".join(TASKS) + " |", "|---" * (len(TASKS) + 1) + "|"]
    by_program = ["| Encoder features | " + " | ".join(f"{family[p]} ({p})" for p in held_out) + " |",
                  "|---" * (len(held_out) + 1) + "|"]
    accuracy = {}
    for name, layers in feature_sets.items():
        accuracy[name] = {}
        for task, (column, _) in TASKS.items():
            rows = {split: [i for i, v in enumerate(labels[column][split]) if v is not None] for split in states}
            x = {split: np.concatenate([states[split][layer, rows[split]] for layer in layers], -1) for split in states}
            y = {split: np.array([labels[column][split][i] for i in rows[split]]) for split in states}
            correct = linear_probe(x["train"], y["train"], x["test"]) == y["test"]
            accuracy[name][task] = float(correct.mean())
            if column == "instrument_family":
                by_program.append(f"| {name} | " + " | ".join(f"{100 * correct[programs == p].mean():.1f}"
                                                             for p in held_out) + " |")
        table.append(f"| {name} | " + " | ".join(f"{100 * a:.1f}" for a in accuracy[name].values()) + " |")
    markdown = "\n".join(table) + "\n\nInstrument family on each held-out program (General MIDI number):\n\n" + \
        "\n".join(by_program) + "\n"
    with open(os.path.join(output, PROBE_FILE), "w") as f:
        json.dump({"accuracy": accuracy}, f, indent=2)
    with open(os.path.join(output, "encoder_probe.md"), "w") as f:
        f.write(markdown)
    if os.path.isfile(os.path.join(output, RESULTS_FILE)):
        with open(os.path.join(output, RESULTS_FILE)) as f:
            write_results(output, json.load(f))
    return markdown
