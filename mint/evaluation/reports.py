# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""Reports of an evaluation result: a row of the paper's table in Markdown, the JSON and the table written to disk,
and a one-line summary."""

import os
from typing import Any

from mint.data.outputs import make_parent_folder, read_json, write_json


# The `task` of every result `mint eval` writes: a JSON holding one of them is a report it may replace.
REPORT_TASKS = ("classification", "retrieval", "captioning", "leakage")


def markdown_table(result: dict[str, Any], name: str = "MINT", dataset_name: str = "dataset") -> str:
    """The result as a row of the paper's table for its task (Tables 2, 3 and 4 use these columns). A few-shot result
    is its own row, named with its shots: `MINT few-shot (4 per class)`."""
    pct = lambda x: "n/a" if x is None else f"{100 * x:.2f}"  # noqa: E731
    if result["task"] == "classification":
        if result.get("mode") == "few-shot":
            name = f"{name} few-shot ({result['shots']} per class)"
        if "accuracy" in result:
            return f"| Method | {dataset_name} ACC |\n|---|---|\n| {name} | {pct(result['accuracy'])} |\n"
        return (f"| Method | {dataset_name} PR | {dataset_name} ROC |\n|---|---|---|\n"
                f"| {name} | {pct(result['pr_auc'])} | {pct(result['roc_auc'])} |\n")
    if result["task"] == "retrieval":
        t2a, a2t = result["text_to_audio"], result["audio_to_text"]
        cells = " | ".join(pct(t2a[k]) for k in ("R@1", "R@5", "R@10", "mAP@10"))
        back = " | ".join(pct(a2t[k]) for k in ("R@1", "R@5", "R@10", "mAP@10"))
        return ("| Method | T2A R@1 | T2A R@5 | T2A R@10 | T2A mAP@10 | A2T R@1 | A2T R@5 | A2T R@10 | A2T mAP@10 |\n"
                f"|---|---|---|---|---|---|---|---|---|\n| {name} | {cells} | {back} |\n")
    if result["task"] == "captioning":
        keys = ("spider", "rouge_l", "spice", "cider_d", "meteor", "bleu_1", "bleu_4")
        header = " | ".join({"spider": "SPIDEr", "rouge_l": "ROUGE_L", "spice": "SPICE", "cider_d": "CIDEr-D",
                             "meteor": "METEOR", "bleu_1": "BLEU-1", "bleu_4": "BLEU-4"}[k] for k in keys)
        return (f"| Methods | {header} |\n|{'---|' * (len(keys) + 1)}\n"
                f"| {name} | {' | '.join(pct(result[k]) for k in keys)} |\n")
    return (f"| Eval clips | Overlapping with training | Fraction |\n|---|---|---|\n"
            f"| {result['num_eval_clips']} | {result['num_overlapping']} | {pct(result['fraction_overlapping'])} |\n")


def is_report(path: str | os.PathLike) -> bool:
    """Whether `path` holds a result `mint eval` wrote: a JSON object whose `task` is one of `REPORT_TASKS`."""
    written = read_json(os.fspath(path)) if os.path.isfile(path) else None
    return isinstance(written, dict) and written.get("task") in REPORT_TASKS


def check_report_output(output: str | os.PathLike, overwrite: bool = False) -> None:
    """
    Refuses, before any work, a report path that cannot be written: a folder, or one under an existing file. A
    missing parent folder is created. Its table goes next to it (`.md`), which must not be a folder either. An existing
    `output` that is not a result `mint eval` wrote ([`is_report`]), or an existing table beside such a file or beside
    no JSON, is refused unless `overwrite`: the report never replaces a file it did not write.
    """
    output = os.fspath(output)
    table = os.path.splitext(output)[0] + ".md"
    for path in (output, table):
        if os.path.isdir(path):
            raise ValueError(f"--output {output!r}: {path!r} is a folder; give the path of a JSON file to write "
                             "(e.g. results/zero_shot.json).")
    make_parent_folder(output, "--output")
    if overwrite or is_report(output):
        return
    for path in (output, table):
        if os.path.lexists(path):
            raise ValueError(f"--output {output!r}: {path!r} exists and is not a report mint eval wrote (a JSON "
                             f"result with its task, one of {list(REPORT_TASKS)}, and its table beside it); choose "
                             "another --output, or replace it with --overwrite (overwrite=True).")


def write_report(result: dict[str, Any], output: str | os.PathLike, name: str = "MINT",
                 dataset_name: str = "dataset", overwrite: bool = False) -> tuple[str, str]:
    """Writes `result` (every metric and prediction) as JSON to `output` in one step, and its [`markdown_table`] next
    to it (`output` with `.md` for its extension), after [`check_report_output`]. Returns the table and the path of its
    file."""
    output = os.fspath(output)
    check_report_output(output, overwrite)
    write_json(output, result, indent=2)
    table = markdown_table(result, name, dataset_name)
    table_path = os.path.splitext(output)[0] + ".md"
    with open(table_path, "w") as f:
        f.write(table)
    return table, table_path


def summary(result: dict[str, Any], output: str | os.PathLike, table_path: str) -> str:
    """What an evaluation did, in one line: the clips evaluated (skipped, cropped, the long-audio policy) or checked
    for leakage, and where its JSON and table are."""
    if result["task"] == "leakage":
        counts = f"{result['num_eval_clips']} clips checked"
    else:
        counts = (f"{result['num_clips']} clips evaluated ({result['num_skipped']} skipped, {result['num_cropped']} "
                  f"cropped, long-audio policy {result['long_audio_policy']!r})")
    return f"{counts}; every metric and prediction in {os.fspath(output)}, the table in {table_path}."


__all__ = ["REPORT_TASKS", "check_report_output", "is_report", "markdown_table", "summary", "write_report"]
