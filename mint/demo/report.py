# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""The demo's output folder, checked before the demo writes into it, and its report there: `results.json`, the
Markdown table `results.md` (with the encoder probe's best accuracies where the probe has run there) and the plots
`demo_plots.png`."""

import json
import numbers
import os
import shutil

from mint.data.examples import is_integer
from mint.data.outputs import few
from mint.demo.settings import DEMO_ENTRIES, POOL_SIZE, PROBE_DEMO_FEATURES, PROBE_FILE, RESULTS_FILE, TASKS


def claim_demo_folder(output: str | os.PathLike, overwrite: bool = False) -> None:
    """
    Checks `output` before the demo writes anything there: a missing or empty folder, or one that holds only what the
    demo and its encoder probe write (`DEMO_ENTRIES`, which later runs reuse), is the demo's. A folder holding anything
    else is refused with a `ValueError` naming it, unless `overwrite`, which removes the folder first.
    """
    output = os.fspath(output)
    if os.path.lexists(output) and not os.path.isdir(output):
        raise ValueError(f"The demo's output {output!r} exists and is not a folder: choose another --output.")
    # `.corpus.partial-...`: a folder being written beside its place (`mint.data.outputs.replace_folder`)
    foreign = sorted(name for name in (os.listdir(output) if os.path.isdir(output) else [])
                     if name not in DEMO_ENTRIES and not any(name.startswith(f".{entry}.") for entry in DEMO_ENTRIES))
    if foreign and not overwrite:
        raise ValueError(f"The demo's output folder {output!r} holds {few(foreign)}, which the demo did not write: "
                         "choose another --output, or replace the folder with --overwrite (overwrite=True).")
    if foreign:
        shutil.rmtree(output)
    os.makedirs(output, exist_ok=True)


def encoder_probe_bounds(output: str) -> dict[str, dict] | None:
    """
    Each label type's held-out accuracy of the encoder probe that the demo or `mint demo --probe-encoder` wrote into
    `output` (`{"accuracy", "features"}`): of the features the probe chose on its validation split where it recorded
    them (`bounds`), else the best over the feature sets it probed; with `"demo_features"`, the accuracy on the
    features the demo's Bridge-Net reads (`PROBE_DEMO_FEATURES`), where the probe scored them. None where the probe
    has not run there.
    """
    path = os.path.join(output, PROBE_FILE)
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        written = json.load(f)
    accuracy = written.get("accuracy", {}) if isinstance(written, dict) else None
    if not isinstance(accuracy, dict) or not all(isinstance(by_task, dict) for by_task in accuracy.values()):
        raise ValueError(f"{path!r} is not an encoder probe's file: its 'accuracy' must map each feature set to "
                         "{label type: accuracy}; rerun `mint demo --probe-encoder`.")
    for features, by_task in accuracy.items():
        for name, value in by_task.items():
            _check_accuracy(path, f"{features}, {name}", value)
    if "bounds" in written:
        bounds = {name: {key: bound[key] for key in ("accuracy", "features")}
                  for name, bound in written["bounds"].items()}
    else:
        bounds = {}
        for name in TASKS:
            of_task = {features: by_task[name] for features, by_task in accuracy.items() if name in by_task}
            if of_task:
                best = max(of_task, key=of_task.get)
                bounds[name] = {"accuracy": of_task[best], "features": best}
    for name, bound in bounds.items():
        if name in accuracy.get(PROBE_DEMO_FEATURES, {}):
            bound["demo_features"] = accuracy[PROBE_DEMO_FEATURES][name]
        _check_accuracy(path, name, bound["accuracy"])
    return bounds


def _check_accuracy(path: str, what: str, value) -> None:
    if not (isinstance(value, numbers.Real) and 0 <= value <= 1):
        raise ValueError(f"{path!r} gives {what!r} the accuracy {value!r}: an accuracy is a number from 0 to 1; rerun "
                         "`mint demo --probe-encoder`.")


def write_results(output: str, results: dict) -> str:
    """
    Writes `results` to `results.json` and their table to `results.md` in `output`, with the encoder probe's best
    accuracy per label type (`encoder_probe`) where the probe's results are in `output`; returns the table.
    """
    results["encoder_probe"] = encoder_probe_bounds(output)
    with open(os.path.join(output, RESULTS_FILE), "w") as f:
        json.dump(results, f, indent=2)
    table = results_table(results)
    with open(os.path.join(output, "results.md"), "w") as f:
        f.write(table)
    return table


def _accuracy(entry: dict, key: str, seeds: int) -> str:
    """An accuracy in percent, with its standard deviation over the stage-2 seeds where there are several."""
    text = f"{100 * entry[key]:.1f}"
    return f"{text} ± {100 * entry[key + '_std']:.1f}" if seeds > 1 and entry.get(key + "_std") is not None else text


def results_table(results: dict) -> str:
    """
    The demo's results in Markdown: per label type the accuracies of vocabulary ranking (summed, the paper's, and
    length-normalised; mean ± standard deviation over the stage-2 seeds where there are several), of embedding
    zero-shot, of the encoder probe and its lead over the summed ranking (where `results["encoder_probe"]` holds it)
    and chance; the instrument labels per soundfont (where the results hold them); then retrieval, stage 1's ALM on
    held-out pairs (where `results["alm"]` holds it), captioning and the wall time.
    """
    probe = results.get("encoder_probe")
    seeds = len(results.get("stage2_seeds") or [0])
    over = f", mean ± std over {seeds} seeds" if seeds > 1 else ""
    columns = ["Held-out task", f"Vocabulary ranking, summed (stage 2{over})",
               f"Vocabulary ranking, length-normalised (stage 2{over})", "Embedding zero-shot (stage 1)"]
    # The probe on the features Bridge-Net reads, where the probe scored them (earlier probes did not name them)
    same = bool(probe) and any("demo_features" in bound for bound in probe.values())
    if same:
        columns += ["Encoder probe, the features MINT reads (supervised)"]
    if probe:
        columns += ["Encoder probe, best features (supervised)",
                    "Probe minus summed ranking (points" + (": MINT's features / best)" if same else ")")]
    columns += ["Chance", "Clips"]
    lines = ["| " + " | ".join(columns) + " |", "|---" * len(columns) + "|"]
    for name, c in results["classification"].items():
        cells = [_accuracy(c, "vocabulary_ranking", seeds), _accuracy(c, "vocabulary_ranking_length_normalised", seeds),
                 f"{100 * c['embedding_zero_shot']:.1f}"]
        if probe:  # a probe written before a label type was added has no bound for it
            bounds = [probe.get(name, {}).get(key) for key in (("demo_features",) if same else ()) + ("accuracy",)]
            cells += ["n/a" if bound is None else f"{100 * bound:.1f}" for bound in bounds]
            cells.append(" / ".join("n/a" if bound is None else f"{100 * (bound - c['vocabulary_ranking']):+.1f}"
                                    for bound in bounds))
        cells.append(f"{100 * c['chance']:.1f}")
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {c['clips']} |")
    lines += soundfont_table(results)
    r = results["retrieval"]
    lines += ["", f"Text-to-audio retrieval, pool of {POOL_SIZE} held-out clips: R@1 {100 * r['R@1']:.1f}, "
                  f"R@5 {100 * r['R@5']:.1f}, R@10 {100 * r['R@10']:.1f}, mAP@10 {100 * r['mAP@10']:.1f}", ""]
    alm = results.get("alm")
    if alm:
        ranking = alm.get("alm_ranking_accuracy")  # absent from results of earlier versions
        ranked = "" if ranking is None else (f", clips whose own caption scores above the other ("
                                             f"threshold-free) {100 * ranking:.1f}")
        lines += [f"Stage 1's ALM on {alm['alm_pairs']:,} balanced pairs of held-out clips (each clip with its caption "
                  f"and with another label set's caption; chance 50.0): accuracy {100 * alm['alm_pair_accuracy']:.1f}"
                  f"{ranked}, loss {alm['alm_loss']:.3f}", ""]
    c = results["captioning"]
    fmt = lambda key: "n/a" if c[key] is None else _accuracy(c, key, seeds)  # noqa: E731
    lines += ["| BLEU-1 | BLEU-4 | METEOR | ROUGE-L | CIDEr-D | SPICE | SPIDEr |", "|---|---|---|---|---|---|---|",
              "| " + " | ".join(fmt(k) for k in ("bleu_1", "bleu_4", "meteor", "rouge_l", "cider_d", "spice",
                                                  "spider")) + " |", "",
              f"Wall time: {results['timing']['total_s'] / 60:.1f} min "
              f"(stage 1 {results['timing']['stage1_s'] / 60:.1f}, stage 2 {results['timing']['stage2_s'] / 60:.1f})"]
    if "dropout" in results:  # absent from results of earlier versions
        lines += ["", f"Dropout in training: stage 1 {results['dropout']['stage1']:g} (the Q-Former), stage 2 "
                      f"{results['dropout']['stage2']:g} (Bridge-Net and the T5)"]
    if "cross_attention_frequency" in results:  # absent from results of earlier versions
        every = results["cross_attention_frequency"]
        if not (is_integer(every) and every >= 1):
            raise ValueError(f"results['cross_attention_frequency'] must be a positive integer (the Q-Former "
                             f"cross-attends every that many layers), got {every!r}; results.json may have been "
                             "edited.")
        lines += ["", "Bridge-Net's Q-Former cross-attends to the audio in "
                      + ("every layer" if every == 1 else f"every {every} layers")]
    if results.get("stage1_learning_rates"):  # absent from results of earlier versions
        lines += ["", "Learning rates in stage 1: " + ", ".join(
            f"{part} {'unknown (its log holds no rate)' if rate is None else f'{rate:g}'}"
            for part, rate in results["stage1_learning_rates"].items())]
    return "\n".join(lines) + "\n"


def soundfont_table(results: dict) -> list[str]:
    """
    The lines of the table of each label type's accuracy on each soundfont's held-out clips (vocabulary ranking /
    embedding zero-shot), the soundfont never trained on (`results["held_out_soundfont"]`) marked; none where the
    results hold no accuracy per soundfont.
    """
    tasks = {name: c["by_soundfont"] for name, c in results["classification"].items() if c.get("by_soundfont")}
    if not tasks:
        return []
    fonts = sorted({font for by_font in tasks.values() for font in by_font})
    held_out = results.get("held_out_soundfont")
    lines = ["", "Instrument labels on each soundfont's held-out clips, vocabulary ranking / embedding zero-shot "
                 "(the held-out soundfont is never heard in training; the others' clips are of held-out programs):",
             "", "| Soundfont | " + " | ".join(tasks) + " | Clips |", "|---" * (len(tasks) + 2) + "|"]
    for font in fonts:
        cells = [f"{100 * by_font[font]['vocabulary_ranking']:.1f} / {100 * by_font[font]['embedding_zero_shot']:.1f}"
                 if font in by_font else "n/a" for by_font in tasks.values()]
        clips = next(by_font[font]["clips"] for by_font in tasks.values() if font in by_font)
        lines.append(f"| {font}{' (held out)' if font == held_out else ''} | " + " | ".join(cells) + f" | {clips} |")
    return lines


def plots(output: str, stage1_logs: list[dict], stage2_logs: list[dict], similarity) -> str:
    """
    Stage 1's losses and stage 2's loss over the steps of their Trainer logs, and the retrieval similarity matrix
    (`(queries, clips)`), in `demo_plots.png` in `output`; returns its path.
    """
    import matplotlib  # the `[demo]` extra: only the demo's last step needs it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    for name in ("loss_alc", "loss_alm", "loss_atg"):
        points = [(log["step"], log[name]) for log in stage1_logs if name in log]
        if points:
            axes[0].plot(*zip(*points), label=name)
    axes[0].set(title="Stage 1 losses", xlabel="step")
    axes[0].legend()
    points = [(log["step"], log["loss"]) for log in stage2_logs if "loss" in log]
    axes[1].plot(*zip(*points))
    axes[1].set(title="Stage 2 LM loss", xlabel="step")
    image = axes[2].imshow(similarity, aspect="auto", cmap="viridis")
    axes[2].set(title="Text-to-audio similarity (held-out pool)", xlabel="clip", ylabel="caption")
    figure.colorbar(image, ax=axes[2])
    figure.tight_layout()
    path = os.path.join(output, "demo_plots.png")
    figure.savefig(path, dpi=110)
    return path
