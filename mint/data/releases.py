# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""The paper's datasets, read as their official releases lay them out, written as `datasets` folders for MINT.

    mint data prepare clotho /data/clotho --output data/clotho [--missing-list clotho-missing.tsv]
    mint data layouts                        # every dataset and the layout it is read from

Python: `prepare_dataset("clotho", "/data/clotho", "data/clotho")` returns a [`PreparedDataset`] with the
`DatasetDict` and the counts.

Every folder is a `DatasetDict` saved with `save_to_disk`, one split per official split, with:

* `audio`: `{"bytes": None, "path": "/abs/path/clip.wav"}`, the storage of `datasets.Audio(decode=False)`, kept as a
  plain struct so that no `datasets` operation reads or embeds the files (`save_to_disk` embeds the files of an `Audio`
  column); `cast_column("audio", Audio(decode=False))` gives the `Audio` view. No audio is decoded here.
* the label columns the Table-1 templates read (`label`: one name; `labels`: a list; `caption`), plus the dataset's
  other annotations (`captions` and `caption_1`..`caption_5` for the evaluation of several references, `annotated` for
  OpenMIC's known classes, `fold` for ESC-50's folds);
* `source_id`: the clip's origin for the leakage check, `freesound:<id>` (Clotho, FSD50K, ESC-50, WavCaps' FreeSound
  part), `youtube:<id>` (AudioSet, VGGSound, AudioCaps, WavCaps' AudioSet part), `fma:<track>` (FMA and OpenMIC, whose
  excerpts come from FMA tracks), else `<dataset>:<id>`;
* `duration`: seconds where the release defines it (10 s YouTube segments, 4 s NSynth notes, ...), else None.

Split names are `train` / `validation` / `test` (the official name is kept in each split's `info.description`), so
recipes and `mint eval ... --split` read every dataset alike; a release without splits has one `train` split (WavCaps:
`train`, and one split per source). Class names
written with underscores in a release (FSD50K's `Electric_guitar`, NSynth's `synth_lead`, OpenMIC's
`mallet_percussion`, ESC-50's `crying_baby`) become text with spaces, as the templates write them after their prompt.

Clips that the metadata lists but that are not on disk (YouTube-sourced sets always have some) are counted, reported
and skipped, and `--missing-list` writes them to a file; they never stop the run.
"""

import os
from dataclasses import dataclass, field
from typing import Any

import soundfile
from datasets import Dataset, DatasetDict, DatasetInfo, Features, Value, concatenate_datasets
from tqdm.auto import tqdm

from mint.data.outputs import check_output_file, check_output_folder, few, replace_folder, write_text
from mint.data.progress import progress_bars
from mint.data.release_layouts import LAYOUTS


# The storage of `datasets.Audio(decode=False)`, as a plain struct (see the module docstring).
AUDIO_FEATURE = {"bytes": Value("binary"), "path": Value("string")}
COMMON_FEATURES = {"source_id": Value("string"), "duration": Value("float64")}
ROWS_PER_CHUNK = 50_000


@dataclass
class SplitCounts:
    """The clips of one split: written as rows, listed but missing, unreadable, unlabeled, excluded by the release."""

    rows: int = 0
    missing: int = 0
    unreadable: int = 0
    unlabeled: int = 0
    excluded: int = 0


@dataclass
class PreparedDataset:
    """
    What [`prepare_dataset`] wrote: the `DatasetDict`, per-split counts, the clips it could not use, the clips the
    metadata lists more than once (`(split, clip)`, the first listing kept) and the ids the release's vocabulary lacks
    (`{id: rows}`, left out of the labels).
    """

    name: str
    output: str
    dataset: DatasetDict
    counts: dict[str, SplitCounts]
    missing: list[tuple[str, str]]
    unreadable: list[tuple[str, str]]
    labeled_only: bool
    notes: list[str]
    duplicates: list[tuple[str, str]] = field(default_factory=list)
    unknown_ids: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        """A table of rows, missing, unreadable, unlabeled and excluded clips per split, and the notes."""
        lines = [f"{self.name} -> {self.output}",
                 f"{'split':<18}{'rows':>10}{'missing':>10}{'unreadable':>12}{'unlabeled':>11}{'excluded':>10}"]
        for split, c in self.counts.items():
            lines.append(f"{split:<18}{c.rows:>10}{c.missing:>10}{c.unreadable:>12}{c.unlabeled:>11}{c.excluded:>10}")
        if any(c.unlabeled for c in self.counts.values()):
            lines.append("unlabeled: rows with an empty label column; " + (
                "dropped (--labeled-only)." if self.labeled_only else
                "kept (evaluation needs them); training on them fails, prepare with --labeled-only for that."))
        return "\n".join(lines + [f"note: {note}" for note in self.notes])


def _is_empty(value: Any) -> bool:
    if isinstance(value, list):
        return not any(str(v).strip() for v in value)
    return value is None or not str(value).strip()


def _readable(path: str) -> bool:
    """Whether soundfile can open the file's header (nothing is decoded)."""
    try:
        soundfile.info(path)
    except Exception:  # soundfile raises several types for a file it cannot open
        return False
    return True


class _SplitWriter:
    """Accumulates rows of one split in Arrow chunks of `ROWS_PER_CHUNK` plain Python rows."""

    def __init__(self, features: Features):
        self.features, self.rows, self.chunks = features, [], []

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        if len(self.rows) >= ROWS_PER_CHUNK:
            self.flush()

    def flush(self) -> None:
        if self.rows or not self.chunks:
            columns = {name: [row[name] for row in self.rows] for name in self.features}
            self.chunks.append(Dataset.from_dict(columns, features=self.features))
            self.rows = []

    def dataset(self, description: str) -> Dataset:
        self.flush()
        return concatenate_datasets(self.chunks, info=DatasetInfo(description=description, features=self.features))


def prepare_dataset(
    name: str,
    root: str | os.PathLike,
    output: str | os.PathLike,
    missing_list: str | os.PathLike | None = None,
    labeled_only: bool = False,
    check_headers: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    **options: Any,
) -> PreparedDataset:
    """
    Reads dataset `name` (a key of `LAYOUTS`) from its official release under `root` and saves it as a `DatasetDict` in
    `output` (see the module docstring for the columns). Clips the metadata lists but `root` lacks are skipped and
    counted (and written to `missing_list`, one `split<TAB>clip` line each); with `check_headers`, clips whose header
    soundfile cannot open are too; with `labeled_only`, rows whose label column is empty (FMA tracks without a top
    genre, OpenMIC clips without a positive instrument) are dropped rather than kept. `options` are the dataset's own:
    `audio_dir` (AudioSet, VGGSound, AudioCaps), `blacklist` (WavCaps: its `json_files/blacklist/*.json` files),
    `fma_size`, `allow_pickle` (OpenMIC). Returns a [`PreparedDataset`].

    `output` must be new or empty; a dataset folder there is replaced only with `overwrite`, anything else never. The
    folder is written beside `output` and moved there once complete, so a failed run leaves `output` as it was. An
    existing `missing_list` file is likewise replaced only with `overwrite` (checked before the release is read), in
    one step.
    """
    if name not in LAYOUTS:
        raise ValueError(f"Unknown dataset {name!r}; known: {sorted(LAYOUTS)}.")
    layout, root, output = LAYOUTS[name], os.path.abspath(os.fspath(root)), os.path.abspath(os.fspath(output))
    if not os.path.isdir(root):
        raise ValueError(f"Dataset root {root!r} is not a folder; expected the {name} release laid out as: "
                         f"{layout.layout}")
    unknown = set(options) - set(layout.options)
    if unknown:
        raise ValueError(f"{name} takes the options {list(layout.options)}, got {sorted(unknown)}.")
    check_output_folder(output, overwrite, "the prepared dataset")
    if missing_list is not None:
        check_output_file(os.fspath(missing_list), overwrite, "The missing list", outside=output)
    features = Features({"audio": AUDIO_FEATURE, **layout.features, **COMMON_FEATURES})
    writers: dict[str, _SplitWriter] = {}
    counts: dict[str, SplitCounts] = {}
    missing, unreadable, notes, duplicates, conflicting = [], [], [], [], []
    listed: dict[int, int] = {}  # hash of (splits, clip) -> hash of its metadata
    unknown_ids: dict[str, int] = {}
    for clip in tqdm(layout.read(root, **{k: v for k, v in options.items() if v is not None}),
                     desc=f"Reading {name}", unit=" clips", disable=not progress):
        for split in clip.splits:
            writers.setdefault(split, _SplitWriter(features))
            counts.setdefault(split, SplitCounts())
        place = ",".join(clip.splits)
        key, metadata = hash((place, clip.expected)), hash(repr(sorted(clip.row.items())))
        if key in listed:  # the first listing is kept
            (duplicates if listed[key] == metadata else conflicting).append((place, clip.expected))
            continue
        listed[key] = metadata
        for unknown in clip.unknown_ids:
            unknown_ids[unknown] = unknown_ids.get(unknown, 0) + 1
        if clip.excluded:
            _tally(counts, clip.splits, "excluded")
        elif clip.path is None:
            missing.append((place, clip.expected))
            _tally(counts, clip.splits, "missing")
        elif check_headers and not _readable(clip.path):
            unreadable.append((place, clip.expected))
            _tally(counts, clip.splits, "unreadable")
        else:
            if clip.expected in layout.known_issues and not check_headers:
                notes.append(layout.known_issues[clip.expected])
            empty = any(_is_empty(clip.row[column]) for column in layout.label_columns)
            if empty:
                _tally(counts, clip.splits, "unlabeled")
            if empty and labeled_only:
                continue
            for split in clip.splits:
                writers[split].add({"audio": {"bytes": None, "path": clip.path}, **clip.row})
                counts[split].rows += 1
    if not writers:
        raise ValueError(f"The {name} metadata under {root!r} lists no clips.")
    notes += _listing_notes(duplicates, conflicting, unknown_ids)
    with progress_bars(progress):
        dataset = DatasetDict({split: writer.dataset(f"{name}: official split "
                                                     f"{layout.official_splits.get(split, split)!r}")
                               for split, writer in writers.items()})
        # one shard for an empty split (all its clips missing): with none, `load_from_disk` cannot read it back
        empty = {split: 1 for split, part in dataset.items() if len(part) == 0}
        replace_folder(output, lambda folder: dataset.save_to_disk(folder, num_shards=empty))
    if missing_list is not None:
        write_text(missing_list, "".join(f"{place}\t{expected}\n" for place, expected in missing))
    return PreparedDataset(name, output, dataset, counts, missing, unreadable, labeled_only, notes,
                           duplicates + conflicting, unknown_ids)


def _listing_notes(duplicates: list[tuple[str, str]], conflicting: list[tuple[str, str]],
                   unknown_ids: dict[str, int]) -> list[str]:
    """The summary's notes on clips listed more than once and on ids the release's vocabulary lacks."""
    notes = []
    if duplicates:
        notes.append(f"{len(duplicates)} rows list a clip again with the same metadata; dropped: "
                     f"{few([clip for _, clip in duplicates], 3)}.")
    if conflicting:
        notes.append(f"{len(conflicting)} rows list a clip again with other metadata; the first listing is kept: "
                     f"{few([clip for _, clip in conflicting], 3)}.")
    if unknown_ids:
        ranked = sorted(unknown_ids, key=unknown_ids.get, reverse=True)
        notes.append(f"{len(unknown_ids)} ids that the release's vocabulary lacks ({sum(unknown_ids.values())} uses) "
                     f"are left out of the labels: {few(ranked, 3)}.")
    return notes


def _tally(counts: dict[str, SplitCounts], splits: tuple[str, ...], what: str) -> None:
    for split in splits:
        setattr(counts[split], what, getattr(counts[split], what) + 1)


__all__ = ["PreparedDataset", "SplitCounts", "prepare_dataset"]
