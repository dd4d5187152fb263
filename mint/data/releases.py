# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""The paper's datasets, read as their official releases lay them out, written as `datasets` folders for MINT.

    mint-data prepare clotho /data/clotho --output data/clotho [--missing-list clotho-missing.tsv]
    mint-data layouts                        # every dataset and the layout it is read from

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
recipes and `mint-eval --split` read every dataset alike; a release without splits has one `train` split (WavCaps:
`train`, and one split per source). Class names
written with underscores in a release (FSD50K's `Electric_guitar`, NSynth's `synth_lead`, OpenMIC's
`mallet_percussion`, ESC-50's `crying_baby`) become text with spaces, as the templates write them after their prompt.

Clips that the metadata lists but that are not on disk (YouTube-sourced sets always have some) are counted, reported
and skipped, and `--missing-list` writes them to a file; they never stop the run.
"""

import argparse
import csv
import io
import json
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from datasets import Dataset, DatasetDict, DatasetInfo, Features, Sequence, Value, concatenate_datasets
from datasets.utils.logging import disable_progress_bar, enable_progress_bar, is_progress_bar_enabled
from tqdm.auto import tqdm


# The storage of `datasets.Audio(decode=False)`, as a plain struct (see the module docstring).
AUDIO_FEATURE = {"bytes": Value("binary"), "path": Value("string")}
COMMON_FEATURES = {"source_id": Value("string"), "duration": Value("float64")}
# Audio first (lossless before lossy), then the video containers some YouTube downloads keep.
AUDIO_EXTENSIONS = (".flac", ".wav", ".ogg", ".opus", ".aiff", ".au", ".mp3", ".m4a", ".aac", ".webm", ".mp4",
                    ".mkv")
# The release's split names (VGGSound, AudioCaps, FSD50K, NSynth, FMA) -> MINT's.
SPLIT_NAMES = {"train": "train", "training": "train", "val": "validation", "valid": "validation",
               "validation": "validation", "test": "test", "eval": "test"}
ROWS_PER_CHUNK = 50_000


@dataclass
class Clip:
    """One clip a release lists: the splits it belongs to, what the metadata names, the file found (None: missing)."""

    splits: tuple[str, ...]
    expected: str
    path: str | None
    row: dict[str, Any]
    excluded: bool = False


@dataclass(frozen=True)
class Layout:
    """How one dataset's release is laid out, and the reader that turns it into [`Clip`]s."""

    name: str
    layout: str
    features: dict[str, Any]
    label_columns: tuple[str, ...]
    read: Callable[..., Iterator[Clip]]
    options: tuple[str, ...] = ()
    official_splits: dict[str, str] = field(default_factory=dict)
    known_issues: dict[str, str] = field(default_factory=dict)


@dataclass
class SplitCounts:
    rows: int = 0
    missing: int = 0
    unreadable: int = 0
    unlabeled: int = 0
    excluded: int = 0


@dataclass
class PreparedDataset:
    """What [`prepare_dataset`] wrote: the `DatasetDict`, per-split counts and the clips it could not use."""

    name: str
    output: str
    dataset: DatasetDict
    counts: dict[str, SplitCounts]
    missing: list[tuple[str, str]]
    unreadable: list[tuple[str, str]]
    labeled_only: bool
    notes: list[str]

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


# ---- files -----------------------------------------------------------------------------------------------------------

def _read_text(path: str) -> str:
    """A metadata file as text: UTF-8 (with or without BOM), else ISO-8859-1 (Clotho's metadata files)."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("iso-8859-1")


def _csv_rows(path: str, **kwargs) -> Iterator[list[str]]:
    return csv.reader(io.StringIO(_read_text(path), newline=""), **kwargs)


def _csv_dicts(path: str, **kwargs) -> Iterator[dict[str, str]]:
    return csv.DictReader(io.StringIO(_read_text(path), newline=""), **kwargs)


def _find(root: str, name: str, is_dir: bool = False, max_depth: int = 3) -> str | None:
    """`root/name`, else the shallowest `name` below `root` (up to `max_depth` folders down), else None."""
    exists = os.path.isdir if is_dir else os.path.isfile
    level = [root]
    for _ in range(max_depth + 1):
        hits = sorted(os.path.join(d, name) for d in level if exists(os.path.join(d, name)))
        if hits:
            return hits[0]
        level = sorted(path for d in level for path in _subfolders(d))
    return None


def _subfolders(folder: str) -> list[str]:
    with os.scandir(folder) as entries:
        return [entry.path for entry in entries if entry.is_dir() and not entry.name.startswith(".")]


def _require(root: str, name: str, layout: "Layout", is_dir: bool = False) -> str:
    found = _find(root, name, is_dir)
    if found is None:
        raise ValueError(f"No {name!r} under {root!r}. Expected the official layout: {layout.layout}")
    return found


def _audio_files(folder: str) -> Iterator[str]:
    for directory, subdirectories, files in os.walk(folder):
        subdirectories[:] = sorted(d for d in subdirectories if not d.startswith("."))
        for name in sorted(files):
            if name.lower().endswith(AUDIO_EXTENSIONS) and not name.startswith("."):
                yield os.path.join(directory, name)


def _index_by_stem(paths: Iterator[str]) -> dict[str, str]:
    """File stem -> path, preferring audio over video containers (the order of `AUDIO_EXTENSIONS`) on a tie."""
    rank = {ext: i for i, ext in enumerate(AUDIO_EXTENSIONS)}
    index: dict[str, str] = {}
    for path in paths:
        stem, ext = os.path.splitext(os.path.basename(path))
        if stem not in index or rank[ext.lower()] < rank[os.path.splitext(index[stem])[1].lower()]:
            index[stem] = path
    return index


def _file_or_none(path: str) -> str | None:
    return path if os.path.isfile(path) else None


def _spaced(name: str) -> str:
    return name.replace("_", " ").strip()


def _clip(split: str, expected: str, path: str | None, **row) -> Clip:
    return Clip((split,), expected, path, row)


# ---- clips named by YouTube id ---------------------------------------------------------------------------------------

def _time_forms(seconds: float) -> list[str]:
    """A segment time as download tools write it in file names: 30, 30.0, 30.000, 000030, 30000 (milliseconds)."""
    forms = [f"{seconds:.1f}", f"{seconds:.3f}", f"{int(seconds):06d}", str(int(round(seconds * 1000)))]
    return list(dict.fromkeys(([str(int(seconds))] if float(seconds).is_integer() else []) + forms))


class YouTubeClips:
    """
    Clips downloaded from YouTube under a folder (searched recursively), found by the names download tools give them:
    `<ytid>`, `Y<ytid>` (PANNs / audioset_tagging_cnn), `<ytid>_<start>` (AudioCaps' aac-datasets, VGGSound's
    `<ytid>_<start:06d>`), `<ytid>_<start>_<end>` or `<ytid>_<start>-<end>`, with or without the leading `Y`; the
    times in seconds as integers, with decimals, zero-padded to six digits, or in milliseconds; any extension of
    `AUDIO_EXTENSIONS`. A name with the segment's times wins over a bare id.
    """

    def __init__(self, folder: str):
        self.folder = folder
        self.by_stem = _index_by_stem(_audio_files(folder))

    def find(self, ytid: str, start: float | None = None, end: float | None = None) -> str | None:
        candidates = []
        for prefix in ("", "Y"):
            for s in _time_forms(start) if start is not None else []:
                for e in _time_forms(end) if end is not None else []:
                    candidates += [f"{prefix}{ytid}_{s}_{e}", f"{prefix}{ytid}_{s}-{e}"]
                candidates.append(f"{prefix}{ytid}_{s}")
        candidates += [ytid, f"Y{ytid}"]
        return next((self.by_stem[c] for c in candidates if c in self.by_stem), None)


def _youtube_folder(root: str, audio_dir: str | None) -> YouTubeClips:
    folder = audio_dir or root
    if not os.path.isdir(folder):
        raise ValueError(f"Audio folder {folder!r} does not exist.")
    return YouTubeClips(folder)


# ---- readers ---------------------------------------------------------------------------------------------------------

AUDIOSET_FILES = {"balanced_train_segments.csv": ("train", "balanced"),
                  "unbalanced_train_segments.csv": ("train", "unbalanced"), "eval_segments.csv": ("test", "eval")}


def read_audioset(root: str, audio_dir: str | None = None) -> Iterator[Clip]:
    """AudioSet: segment CSVs (three `#` comment lines, quoted label lists), `class_labels_indices.csv`, clips by id."""
    names = {row["mid"]: row["display_name"] for row in _csv_dicts(_require(root, "class_labels_indices.csv",
                                                                              LAYOUTS["audioset"]))}
    found = {name: _find(root, name) for name in AUDIOSET_FILES}
    if not any(found.values()):
        raise ValueError(f"No AudioSet segment CSV under {root!r}; expected {sorted(AUDIOSET_FILES)}.")
    clips = _youtube_folder(root, audio_dir)
    for name, path in found.items():
        if path is None:
            continue
        split, subset = AUDIOSET_FILES[name]
        for row in _csv_rows(path, skipinitialspace=True):
            if not row or row[0].startswith("#"):
                continue
            ytid, start, end, mids = row[0], float(row[1]), float(row[2]), row[3].split(",")
            yield _clip(split, f"{ytid} {row[1]}-{row[2]}", clips.find(ytid, start, end), ytid=ytid, start=start,
                        end=end, labels=[names.get(mid, mid) for mid in mids], mids=mids, subset=subset,
                        source_id=f"youtube:{ytid}", duration=end - start)


def read_vggsound(root: str, audio_dir: str | None = None) -> Iterator[Clip]:
    """VGGSound: `vggsound.csv` without a header (YouTube id, start second, label, split), clips by id and start."""
    clips = _youtube_folder(root, audio_dir)
    for line, row in enumerate(_csv_rows(_require(root, "vggsound.csv", LAYOUTS["vggsound"])), 1):
        if not row:
            continue
        if len(row) != 4 or not row[1].strip().isdigit():
            raise ValueError(f"vggsound.csv line {line}: expected 'ytid,start,label,split' (no header), got {row}.")
        ytid, start, label, split = row[0], int(row[1]), row[2], row[3].strip()
        yield _clip(SPLIT_NAMES[split], f"{ytid}_{start:06d}", clips.find(ytid, start, start + 10), ytid=ytid,
                    start=start, label=label, source_id=f"youtube:{ytid}", duration=10.0)


def read_audiocaps(root: str, audio_dir: str | None = None) -> Iterator[Clip]:
    """AudioCaps: `train.csv`, `val.csv`, `test.csv` (audiocap_id, youtube_id, start_time, caption); a row per clip."""
    found = {SPLIT_NAMES[name]: _find(root, f"{name}.csv") for name in ("train", "val", "test")}
    if not any(found.values()):
        raise ValueError(f"No AudioCaps train.csv / val.csv / test.csv under {root!r}.")
    clips = _youtube_folder(root, audio_dir)
    for split, path in found.items():
        if path is None:
            continue
        grouped: dict[tuple[str, int], list[dict[str, str]]] = {}
        for row in _csv_dicts(path):
            grouped.setdefault((row["youtube_id"], int(row["start_time"])), []).append(row)
        for (ytid, start), rows in grouped.items():
            captions = [row["caption"] for row in rows]
            yield _clip(split, f"{ytid}_{start}", clips.find(ytid, start, start + 10), ytid=ytid, start=start,
                        caption=captions[0], captions=captions, audiocap_ids=[int(row["audiocap_id"]) for row in rows],
                        source_id=f"youtube:{ytid}", duration=10.0)


WAVCAPS_SOURCES = {"AudioSet_SL": "as_final.json", "BBC_Sound_Effects": "bbc_final.json",
                   "FreeSound": "fsd_final.json", "SoundBible": "sb_final.json"}
WAVCAPS_ID_PREFIX = {"AudioSet_SL": "youtube", "BBC_Sound_Effects": "bbc", "FreeSound": "freesound",
                     "SoundBible": "soundbible"}


def _wavcaps_audio(root: str) -> dict[tuple[str, str], str]:
    """(source, file stem) -> path: a file belongs to the source its folder is named after (`FreeSound_flac/`, ...)."""
    index: dict[tuple[str, str], str] = {}
    for path in _audio_files(root):
        folders = [part.lower() for part in os.path.relpath(path, root).split(os.sep)[:-1]]
        source = next((s for s in WAVCAPS_SOURCES if any(part.startswith(s.lower()) for part in folders)), None)
        if source is not None:
            index.setdefault((source, os.path.splitext(os.path.basename(path))[0]), path)
    return index


def _wavcaps_blacklist(paths: list[str]) -> dict[str, set[str]]:
    """The release's `json_files/blacklist/*.json`: `{"AudioSet": ["Y<ytid>.wav", ...], "FreeSound": [id, ...]}`."""
    excluded = {"AudioSet_SL": set(), "FreeSound": set()}
    for path in paths:
        with open(path) as f:
            data = json.load(f)
        excluded["AudioSet_SL"] |= {os.path.splitext(str(i))[0] for i in data.get("AudioSet", [])}
        excluded["FreeSound"] |= {str(i) for i in data.get("FreeSound", [])}
    return excluded


def read_wavcaps(root: str, blacklist: list[str] | None = None) -> Iterator[Clip]:
    """
    WavCaps: `json_files/<source>/<x>_final.json` and the audio extracted from `Zip_files/<source>/` (a folder named
    after each source). Split `train` holds every source; `audioset_sl`, `bbc_sound_effects`, `freesound` and
    `soundbible` hold one each (Table 1 trains WavCaps' FreeSound part under its own template).
    """
    json_dir = _require(root, "json_files", LAYOUTS["wavcaps"], is_dir=True)
    files = {source: _file_or_none(os.path.join(json_dir, source, name)) for source, name in WAVCAPS_SOURCES.items()}
    if not any(files.values()):
        raise ValueError(f"No WavCaps JSON file under {json_dir!r}; expected "
                         f"{[f'{s}/{n}' for s, n in WAVCAPS_SOURCES.items()]}.")
    excluded = _wavcaps_blacklist(blacklist or [])
    audio = _wavcaps_audio(root)
    for source, path in files.items():
        if path is None:
            continue
        with open(path) as f:
            data = json.load(f)
        for item in data["data"] if isinstance(data, dict) else data:
            stem = os.path.splitext(str(item["id"]))[0]
            origin = stem[1:12] if source == "AudioSet_SL" and stem.startswith("Y") and len(stem) >= 12 else stem
            duration = item.get("duration")
            yield Clip(("train", source.lower()), f"{source}/{stem}", audio.get((source, stem)),
                       dict(id=stem, caption=item["caption"], source=source,
                            source_id=f"{WAVCAPS_ID_PREFIX[source]}:{origin}",
                            duration=None if duration is None else float(duration)),
                       excluded=stem in excluded.get(source, ()))


def read_fsd50k(root: str) -> Iterator[Clip]:
    """FSD50K: `FSD50K.ground_truth/{dev,eval}.csv` (fname, labels, mids[, split]) and `FSD50K.{dev,eval}_audio/`."""
    truth = _require(root, "FSD50K.ground_truth", LAYOUTS["fsd50k"], is_dir=True)
    for part in ("dev", "eval"):
        folder = os.path.join(os.path.dirname(truth), f"FSD50K.{part}_audio")
        for row in _csv_dicts(os.path.join(truth, f"{part}.csv")):
            fname = row["fname"]
            yield _clip(SPLIT_NAMES[row.get("split", "eval")], f"FSD50K.{part}_audio/{fname}.wav",
                        _file_or_none(os.path.join(folder, f"{fname}.wav")), fname=fname,
                        labels=[_spaced(label) for label in row["labels"].split(",")], mids=row["mids"].split(","),
                        source_id=f"freesound:{fname}", duration=None)


def read_nsynth(root: str) -> Iterator[Clip]:
    """NSynth: `nsynth-{train,valid,test}/examples.json` and `audio/<note_str>.wav`; label: the instrument family."""
    folders = {split: _find(root, f"nsynth-{split}", is_dir=True) for split in ("train", "valid", "test")}
    if not any(folders.values()):
        raise ValueError(f"No nsynth-train / nsynth-valid / nsynth-test folder under {root!r}.")
    for split, folder in folders.items():
        if folder is None:
            continue
        with open(os.path.join(folder, "examples.json")) as f:
            notes = json.load(f)
        for note_str, note in notes.items():
            yield _clip(SPLIT_NAMES[split], f"nsynth-{split}/audio/{note_str}.wav",
                        _file_or_none(os.path.join(folder, "audio", f"{note_str}.wav")), note_str=note_str,
                        label=_spaced(note["instrument_family_str"]), instrument_str=note["instrument_str"],
                        instrument_source_str=note["instrument_source_str"], pitch=int(note["pitch"]),
                        velocity=int(note["velocity"]), qualities=list(note["qualities_str"]),
                        source_id=f"nsynth:{note_str}", duration=4.0)


FMA_SIZES = ("small", "medium", "large", "full")


def _fma_audio_folder(root: str, size: str | None) -> tuple[str, str]:
    found = {s: _find(root, f"fma_{s}", is_dir=True) for s in FMA_SIZES}
    present = [s for s in FMA_SIZES if found[s]]
    if size is None:
        if len(present) != 1:
            raise ValueError(f"Found FMA audio folders {[f'fma_{s}' for s in present]} under {root!r}: pass one "
                             "size (fma_size= / --fma-size) among small, medium, large, full.")
        size = present[0]
    if size not in FMA_SIZES or not found[size]:
        raise ValueError(f"No fma_{size}/ folder under {root!r} (found {[f'fma_{s}' for s in present]}).")
    return size, found[size]


def _in_fma_size(subset: str, size: str) -> bool:
    return size in ("large", "full") or FMA_SIZES.index(subset) <= FMA_SIZES.index(size)


def read_fma(root: str, fma_size: str | None = None) -> Iterator[Clip]:
    """
    FMA: `fma_metadata/tracks.csv` (two header rows, read with pandas `header=[0, 1], index_col=0`), `genres.csv`, and
    `fma_<size>/NNN/NNNNNN.mp3`. The size's tracks (`('set', 'subset')`, small within medium within large) in the
    splits of `('set', 'split')`; the label is the top genre (`('track', 'genre_top')`), None where FMA gives none.
    """
    import pandas as pd

    metadata = _require(root, "fma_metadata", LAYOUTS["fma"], is_dir=True)
    size, folder = _fma_audio_folder(root, fma_size)
    tracks = pd.read_csv(os.path.join(metadata, "tracks.csv"), index_col=0, header=[0, 1])
    titles = pd.read_csv(os.path.join(metadata, "genres.csv"), index_col=0)["title"].to_dict()
    columns = [("set", "subset"), ("set", "split"), ("track", "genre_top"), ("track", "genres"), ("track", "title"),
               ("artist", "name"), ("track", "duration")]
    for track_id, subset, split, genre_top, genres, title, artist, seconds in tracks[columns].itertuples():
        if pd.isna(subset) or not _in_fma_size(subset, size):
            continue
        name = f"{int(track_id):06d}"
        duration = None if pd.isna(seconds) else float(seconds)
        if duration is not None and size != "full":  # the other sizes hold 30 s clips of the tracks
            duration = min(duration, 30.0)
        yield _clip(SPLIT_NAMES[split], f"fma_{size}/{name[:3]}/{name}.mp3",
                    _file_or_none(os.path.join(folder, name[:3], f"{name}.mp3")), track_id=int(track_id),
                    label=None if pd.isna(genre_top) else str(genre_top),
                    genres=[titles.get(g, str(g)) for g in (json.loads(genres) if isinstance(genres, str) else [])],
                    title=None if pd.isna(title) else str(title),
                    artist=None if pd.isna(artist) else str(artist), source_id=f"fma:{int(track_id)}",
                    duration=duration)


def read_openmic(root: str, allow_pickle: bool = False) -> Iterator[Clip]:
    """
    OpenMIC-2018: `openmic-2018.npz` (`Y_true`, `Y_mask`, `sample_key`), `class-map.json`, `partitions/split01_{train,
    test}.csv` (one sample key per line) and `audio/<key[:3]>/<key>.ogg`. `labels`: the annotated classes with
    `Y_true >= 0.5` (the release's baseline threshold); `annotated`: every class annotated for the clip.
    """
    archive = _require(root, "openmic-2018.npz", LAYOUTS["openmic"])
    base = os.path.dirname(archive)
    with open(os.path.join(base, "class-map.json")) as f:
        classes = [_spaced(name) for name, _ in sorted(json.load(f).items(), key=lambda item: item[1])]
    try:
        with np.load(archive, allow_pickle=allow_pickle) as data:
            truth, mask = data["Y_true"], data["Y_mask"].astype(bool)
            keys = [k.decode() if isinstance(k, bytes) else str(k) for k in data["sample_key"]]
    except ValueError as error:
        raise ValueError(f"{archive}: {error}. Its sample keys are stored as Python objects: pass allow_pickle=True "
                         "(--allow-pickle) if you trust the file.") from None
    row_of = {key: i for i, key in enumerate(keys)}
    for split in ("train", "test"):
        for key in (row[0].strip() for row in _csv_rows(os.path.join(base, "partitions", f"split01_{split}.csv"))
                    if row):
            i = row_of[key]
            yield _clip(split, f"audio/{key[:3]}/{key}.ogg", _file_or_none(os.path.join(base, "audio", key[:3],
                                                                                         f"{key}.ogg")),
                        sample_key=key, labels=[c for j, c in enumerate(classes) if mask[i, j] and truth[i, j] >= 0.5],
                        annotated=[c for j, c in enumerate(classes) if mask[i, j]],
                        source_id=f"fma:{int(key.split('_')[0])}", duration=10.0)


PITCH_CLASSES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def _music4all_table(root: str, name: str) -> dict[str, dict[str, str]]:
    text = _read_text(_require(root, name, LAYOUTS["music4all"]))
    delimiter = "\t" if "\t" in text.split("\n", 1)[0] else ","
    return {row["id"]: row for row in csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)}


def _music_key(key: str, mode: str) -> str | None:
    """Spotify's pitch class (0 = C, -1 = none) and mode (1 major, 0 minor) as text: 'F# minor'."""
    if not key.strip() or int(float(key)) < 0:
        return None
    return f"{PITCH_CLASSES[int(float(key))]} {'major' if int(float(mode)) == 1 else 'minor'}"


def read_music4all(root: str) -> Iterator[Clip]:
    """Music4All: tab-separated `id_information.csv`, `id_genres.csv`, `id_metadata.csv` (key, mode) and `audios/`."""
    information, genres = _music4all_table(root, "id_information.csv"), _music4all_table(root, "id_genres.csv")
    metadata = _music4all_table(root, "id_metadata.csv")
    folder = os.path.join(os.path.dirname(_require(root, "id_information.csv", LAYOUTS["music4all"])), "audios")
    for track, info in information.items():
        meta = metadata.get(track)
        yield _clip("train", f"audios/{track}.mp3", _file_or_none(os.path.join(folder, f"{track}.mp3")), id=track,
                    key=None if meta is None else _music_key(meta["key"], meta["mode"]),
                    genres=[g.strip() for g in genres.get(track, {}).get("genres", "").split(",") if g.strip()],
                    artist=info.get("artist"), song=info.get("song"), source_id=f"music4all:{track}", duration=30.0)


def read_gtzan(root: str) -> Iterator[Clip]:
    """GTZAN: `genres_original/<genre>/<genre>.000NN.wav`, or the original `genres/<genre>/<genre>.000NN.au`."""
    folder = _find(root, "genres_original", is_dir=True) or _require(root, "genres", LAYOUTS["gtzan"], is_dir=True)
    base = os.path.dirname(folder)
    for genre in sorted(d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d))):
        for path in _audio_files(os.path.join(folder, genre)):
            stem = os.path.splitext(os.path.basename(path))[0]
            yield _clip("train", os.path.relpath(path, base), path, file=stem, label=genre,
                        source_id=f"gtzan:{stem}", duration=30.0)


CLOTHO_SPLITS = {"development": "train", "validation": "validation", "evaluation": "test"}


def _clotho_audio(root: str, split: str) -> str | None:
    for name in (split, f"clotho_audio_{split}"):
        found = _find(root, name, is_dir=True)
        if found:
            return found
    return None


def read_clotho(root: str) -> Iterator[Clip]:
    """
    Clotho v2: `clotho_captions_<split>.csv` (file_name, caption_1..caption_5; names with spaces and commas, quoted),
    `clotho_metadata_<split>.csv` (Freesound `sound_id`, `keywords`; ISO-8859-1) and the audio folders `development/`,
    `validation/`, `evaluation/` (or `clotho_audio_<split>/`).
    """
    found = {split: _find(root, f"clotho_captions_{split}.csv") for split in CLOTHO_SPLITS}
    if not any(found.values()):
        raise ValueError(f"No clotho_captions_<split>.csv under {root!r}. Expected: {LAYOUTS['clotho'].layout}")
    for split, captions_file in found.items():
        if captions_file is None:
            continue
        metadata_file = os.path.join(os.path.dirname(captions_file), f"clotho_metadata_{split}.csv")
        metadata = {row["file_name"]: row for row in _csv_dicts(metadata_file)} if os.path.isfile(metadata_file) \
            else {}
        folder = _clotho_audio(root, split)
        for row in _csv_dicts(captions_file):
            name, meta = row["file_name"], metadata.get(row["file_name"], {})
            captions = [row[f"caption_{i}"] for i in range(1, 6)]
            keywords = [k for k in meta.get("keywords", "").split(";") if k]
            sound_id = meta.get("sound_id")
            yield _clip(CLOTHO_SPLITS[split], f"{split}/{name}",
                        _file_or_none(os.path.join(folder, name)) if folder else None, file_name=name,
                        caption=captions[0], captions=captions,
                        **{f"caption_{i}": c for i, c in enumerate(captions, 1)}, keywords=keywords,
                        source_id=f"freesound:{sound_id}" if sound_id else None, duration=None)


def read_esc50(root: str) -> Iterator[Clip]:
    """ESC-50: `meta/esc50.csv` (filename, fold, target, category, esc10, src_file, take) and `audio/`; folds 1-5."""
    meta = _require(root, "meta", LAYOUTS["esc50"], is_dir=True)
    folder = os.path.join(os.path.dirname(meta), "audio")
    for row in _csv_dicts(os.path.join(meta, "esc50.csv")):
        yield _clip("train", f"audio/{row['filename']}", _file_or_none(os.path.join(folder, row["filename"])),
                    filename=row["filename"], label=_spaced(row["category"]), target=int(row["target"]),
                    fold=int(row["fold"]), esc10=row["esc10"] == "True", take=row["take"],
                    source_id=f"freesound:{row['src_file']}", duration=5.0)


def _strings() -> Sequence:
    return Sequence(Value("string"))


LAYOUTS: dict[str, Layout] = {layout.name: layout for layout in (
    Layout("audioset", "balanced_train_segments.csv, unbalanced_train_segments.csv, eval_segments.csv, "
           "class_labels_indices.csv, and the downloaded clips named by YouTube id anywhere below (or --audio-dir)",
           {"ytid": Value("string"), "start": Value("float64"), "end": Value("float64"), "labels": _strings(),
            "mids": _strings(), "subset": Value("string")}, ("labels",), read_audioset, ("audio_dir",),
           {"train": "balanced_train + unbalanced_train segments", "test": "eval segments"}),
    Layout("vggsound", "vggsound.csv (no header: ytid,start,label,split) and the clips named <ytid>_<start:06d>.* "
           "anywhere below (or --audio-dir)",
           {"ytid": Value("string"), "start": Value("int64"), "label": Value("string")}, ("label",), read_vggsound,
           ("audio_dir",)),
    Layout("audiocaps", "train.csv, val.csv, test.csv (audiocap_id,youtube_id,start_time,caption) and the clips named "
           "<youtube_id>_<start_time>.* anywhere below (or --audio-dir)",
           {"ytid": Value("string"), "start": Value("int64"), "caption": Value("string"), "captions": _strings(),
            "audiocap_ids": Sequence(Value("int64"))}, ("caption",), read_audiocaps, ("audio_dir",),
           {"validation": "val"}),
    Layout("wavcaps", "json_files/{AudioSet_SL/as_final.json, BBC_Sound_Effects/bbc_final.json, FreeSound/"
           "fsd_final.json, SoundBible/sb_final.json} and the unzipped audio in a folder named after each source "
           "(Zip_files/FreeSound/FreeSound_flac/, Audio/FreeSound/, ...)",
           {"id": Value("string"), "caption": Value("string"), "source": Value("string")}, ("caption",), read_wavcaps,
           ("blacklist",)),
    Layout("fsd50k", "FSD50K.ground_truth/{dev,eval}.csv, FSD50K.dev_audio/, FSD50K.eval_audio/",
           {"fname": Value("string"), "labels": _strings(), "mids": _strings()}, ("labels",), read_fsd50k,
           official_splits={"train": "dev (split=train)", "validation": "dev (split=val)", "test": "eval"}),
    Layout("nsynth", "nsynth-train/, nsynth-valid/, nsynth-test/, each with examples.json and audio/",
           {"note_str": Value("string"), "label": Value("string"), "instrument_str": Value("string"),
            "instrument_source_str": Value("string"), "pitch": Value("int64"), "velocity": Value("int64"),
            "qualities": _strings()}, ("label",), read_nsynth, official_splits={"validation": "valid"}),
    Layout("fma", "fma_metadata/{tracks.csv, genres.csv} and fma_<size>/NNN/NNNNNN.mp3",
           {"track_id": Value("int64"), "label": Value("string"), "genres": _strings(), "title": Value("string"),
            "artist": Value("string")}, ("label",), read_fma, ("fma_size",), {"train": "training"}),
    Layout("openmic", "openmic-2018.npz, class-map.json, partitions/split01_{train,test}.csv, audio/NNN/<key>.ogg",
           {"sample_key": Value("string"), "labels": _strings(), "annotated": _strings()}, ("labels",), read_openmic,
           ("allow_pickle",), {"train": "split01_train", "test": "split01_test"}),
    Layout("music4all", "id_information.csv, id_genres.csv, id_metadata.csv (tab-separated) and audios/<id>.mp3",
           {"id": Value("string"), "key": Value("string"), "genres": _strings(), "artist": Value("string"),
            "song": Value("string")}, ("key", "genres"), read_music4all),
    Layout("gtzan", "genres_original/<genre>/<genre>.000NN.wav (or the original genres/<genre>/<genre>.000NN.au)",
           {"file": Value("string"), "label": Value("string")}, ("label",), read_gtzan,
           known_issues={"genres_original/jazz/jazz.00054.wav": "genres_original/jazz/jazz.00054.wav is unreadable in "
                         "the widely shared copy of GTZAN; --check-headers drops it (evaluation would fail on it)."}),
    Layout("clotho", "clotho_captions_{development,validation,evaluation}.csv, clotho_metadata_<split>.csv and the "
           "audio folders development/, validation/, evaluation/",
           {"file_name": Value("string"), "caption": Value("string"), "captions": _strings(),
            **{f"caption_{i}": Value("string") for i in range(1, 6)}, "keywords": _strings()}, ("caption",),
           read_clotho, official_splits={v: k for k, v in CLOTHO_SPLITS.items()}),
    Layout("esc50", "meta/esc50.csv and audio/ (the ESC-50-master folder or its parent)",
           {"filename": Value("string"), "label": Value("string"), "target": Value("int64"), "fold": Value("int64"),
            "esc10": Value("bool"), "take": Value("string")}, ("label",), read_esc50),
)}


# ---- writing ---------------------------------------------------------------------------------------------------------

def _is_empty(value: Any) -> bool:
    if isinstance(value, list):
        return not any(str(v).strip() for v in value)
    return value is None or not str(value).strip()


def _readable(path: str) -> bool:
    """Whether soundfile can open the file's header (nothing is decoded)."""
    import soundfile

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


def _check_output(output: str, overwrite: bool) -> None:
    if os.path.exists(output) and os.listdir(output):
        saved = any(os.path.isfile(os.path.join(output, f)) for f in ("dataset_dict.json", "dataset_info.json"))
        if not overwrite or not saved:
            raise ValueError(f"Output folder {output!r} exists and is not empty; pass overwrite=True (--overwrite) to "
                             "replace a dataset folder written before (other folders are never removed).")
        shutil.rmtree(output)


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
    _check_output(output, overwrite)
    features = Features({"audio": AUDIO_FEATURE, **layout.features, **COMMON_FEATURES})
    writers: dict[str, _SplitWriter] = {}
    counts: dict[str, SplitCounts] = {}
    missing, unreadable, notes = [], [], []
    for clip in tqdm(layout.read(root, **{k: v for k, v in options.items() if v is not None}),
                     desc=f"Reading {name}", unit=" clips", disable=not progress):
        for split in clip.splits:
            writers.setdefault(split, _SplitWriter(features))
            counts.setdefault(split, SplitCounts())
        place = ",".join(clip.splits)
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
    was_enabled = is_progress_bar_enabled()
    (enable_progress_bar if progress else disable_progress_bar)()
    try:
        dataset = DatasetDict({split: writer.dataset(f"{name}: official split "
                                                     f"{layout.official_splits.get(split, split)!r}")
                               for split, writer in writers.items()})
        # one shard for an empty split (all its clips missing): with none, `load_from_disk` cannot read it back
        dataset.save_to_disk(output, num_shards={split: 1 for split, part in dataset.items() if len(part) == 0})
    finally:
        (enable_progress_bar if was_enabled else disable_progress_bar)()
    if missing_list is not None:
        with open(missing_list, "w") as f:
            f.writelines(f"{place}\t{expected}\n" for place, expected in missing)
    return PreparedDataset(name, output, dataset, counts, missing, unreadable, labeled_only, notes)


def _tally(counts: dict[str, SplitCounts], splits: tuple[str, ...], what: str) -> None:
    for split in splits:
        setattr(counts[split], what, getattr(counts[split], what) + 1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="mint-data", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("layouts", help="list the datasets and the release layout each is read from")
    prepare = commands.add_parser("prepare", help="read a release and write a datasets folder")
    prepare.add_argument("name", choices=sorted(LAYOUTS))
    prepare.add_argument("root", help="the folder holding the release as downloaded and extracted")
    prepare.add_argument("--output", required=True)
    prepare.add_argument("--missing-list", help="write the clips listed but not on disk here (split<TAB>clip)")
    prepare.add_argument("--labeled-only", action="store_true", help="drop rows whose label column is empty")
    prepare.add_argument("--check-headers", action="store_true",
                         help="open every clip's header with soundfile and skip the unreadable ones")
    prepare.add_argument("--overwrite", action="store_true", help="replace a dataset folder written before")
    prepare.add_argument("--audio-dir", help="AudioSet / VGGSound / AudioCaps: the downloaded clips (default: ROOT)")
    prepare.add_argument("--blacklist", action="append", help="WavCaps: json_files/blacklist/*.json to exclude")
    prepare.add_argument("--fma-size", choices=FMA_SIZES, help="FMA: which fma_<size> folder (if several)")
    prepare.add_argument("--allow-pickle", action="store_true", help="OpenMIC: load a pickled sample_key array")
    prepare.add_argument("--json", help="also write the counts as JSON here")
    prepare.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.command == "layouts":
        for layout in LAYOUTS.values():
            print(f"{layout.name:<10} {layout.layout}")
        return
    options = {"audio_dir": args.audio_dir, "blacklist": args.blacklist, "fma_size": args.fma_size,
               "allow_pickle": args.allow_pickle or None}
    options = {k: v for k, v in options.items() if v is not None}
    result = prepare_dataset(args.name, args.root, args.output, args.missing_list, args.labeled_only,
                             args.check_headers, args.overwrite, not args.quiet, **options)
    print(result.summary())
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"name": result.name, "output": result.output, "notes": result.notes,
                       "splits": {s: vars(c) for s, c in result.counts.items()}}, f, indent=2)


if __name__ == "__main__":
    main()
