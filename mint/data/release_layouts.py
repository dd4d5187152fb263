# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""Each of the paper's datasets as its official release lays it out: a reader per release that yields the [`Clip`]s
its metadata lists (splits, annotations, the file found or None), and the [`Layout`] table `LAYOUTS` that names each
release's files, columns and options."""

import json
import os
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from datasets import Sequence, Value

from mint.data.release_files import (YouTubeClips, audio_files, choice, csv_records, csv_rows, file_or_none, find_below,
                                     json_field, number, read_json, read_text, require_below)


# The release's split names (VGGSound, AudioCaps, FSD50K, NSynth, FMA) -> MINT's.
SPLIT_NAMES = {"train": "train", "training": "train", "val": "validation", "valid": "validation",
               "validation": "validation", "test": "test", "eval": "test"}


@dataclass
class Clip:
    """
    One clip a release lists: the splits it belongs to, what the metadata names, the file found (None: missing), and
    the ids its metadata gives that the release's own vocabulary lacks (left out of its labels).
    """

    splits: tuple[str, ...]
    expected: str
    path: str | None
    row: dict[str, Any]
    excluded: bool = False
    unknown_ids: tuple[str, ...] = ()


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


def _spaced(name: str) -> str:
    return name.replace("_", " ").strip()


def _clip(split: str, expected: str, path: str | None, **row) -> Clip:
    return Clip((split,), expected, path, row)


def _youtube_folder(root: str, audio_dir: str | None) -> YouTubeClips:
    folder = audio_dir or root
    if not os.path.isdir(folder):
        raise ValueError(f"Audio folder {folder!r} does not exist.")
    return YouTubeClips(folder)


AUDIOSET_FILES = {"balanced_train_segments.csv": ("train", "balanced"),
                  "unbalanced_train_segments.csv": ("train", "unbalanced"), "eval_segments.csv": ("test", "eval")}


def read_audioset(root: str, audio_dir: str | None = None) -> Iterator[Clip]:
    """AudioSet: segment CSVs (three `#` comment lines, quoted label lists), `class_labels_indices.csv`, clips by id."""
    names = {row["mid"]: row["display_name"] for _, row in csv_records(
        require_below(root, "class_labels_indices.csv", LAYOUTS["audioset"].layout), ("mid", "display_name"))}
    found = {name: find_below(root, name) for name in AUDIOSET_FILES}
    if not any(found.values()):
        raise ValueError(f"No AudioSet segment CSV under {root!r}; expected {sorted(AUDIOSET_FILES)}.")
    clips = _youtube_folder(root, audio_dir)
    for name, path in found.items():
        if path is None:
            continue
        split, subset = AUDIOSET_FILES[name]
        for line, row in csv_rows(path, skipinitialspace=True):
            if not row or row[0].startswith("#"):
                continue
            if len(row) != 4:
                raise ValueError(f"{path}, line {line}: {len(row)} fields; expected 4 (YTID, start_seconds, "
                                 "end_seconds, positive_labels).")
            ytid, mids = row[0], row[3].split(",")
            start, end = number(row[1], float, path, line, "start_seconds"), number(row[2], float, path, line,
                                                                                    "end_seconds")
            clip = _clip(split, f"{ytid} {row[1]}-{row[2]}", clips.find(ytid, start, end), ytid=ytid, start=start,
                         end=end, labels=[names[mid] for mid in mids if mid in names], mids=mids, subset=subset,
                         source_id=f"youtube:{ytid}", duration=end - start)
            clip.unknown_ids = tuple(mid for mid in mids if mid not in names)
            yield clip


def read_vggsound(root: str, audio_dir: str | None = None) -> Iterator[Clip]:
    """VGGSound: `vggsound.csv` without a header (YouTube id, start second, label, split), clips by id and start."""
    clips = _youtube_folder(root, audio_dir)
    path = require_below(root, "vggsound.csv", LAYOUTS["vggsound"].layout)
    for line, row in csv_rows(path):
        if not row:
            continue
        if len(row) != 4 or not row[1].strip().isdigit():
            raise ValueError(f"{path}, line {line}: expected 'ytid,start,label,split' (no header), got {row}.")
        ytid, start, label = row[0], int(row[1]), row[2]
        yield _clip(choice(row[3], SPLIT_NAMES, path, line, "split"), f"{ytid}_{start:06d}",
                    clips.find(ytid, start, start + 10), ytid=ytid, start=start, label=label,
                    source_id=f"youtube:{ytid}", duration=10.0)


def read_audiocaps(root: str, audio_dir: str | None = None) -> Iterator[Clip]:
    """AudioCaps: `train.csv`, `val.csv`, `test.csv` (audiocap_id, youtube_id, start_time, caption); a row per clip."""
    found = {SPLIT_NAMES[name]: find_below(root, f"{name}.csv") for name in ("train", "val", "test")}
    if not any(found.values()):
        raise ValueError(f"No AudioCaps train.csv / val.csv / test.csv under {root!r}.")
    clips = _youtube_folder(root, audio_dir)
    for split, path in found.items():
        if path is None:
            continue
        grouped: dict[tuple[str, int], list[dict[str, str]]] = {}
        for line, row in csv_records(path, ("audiocap_id", "youtube_id", "start_time", "caption")):
            row["audiocap_id"] = number(row["audiocap_id"], int, path, line, "audiocap_id")
            grouped.setdefault((row["youtube_id"], number(row["start_time"], int, path, line, "start_time")),
                               []).append(row)
        for (ytid, start), rows in grouped.items():
            captions = [row["caption"] for row in rows]
            yield _clip(split, f"{ytid}_{start}", clips.find(ytid, start, start + 10), ytid=ytid, start=start,
                        caption=captions[0], captions=captions, audiocap_ids=[row["audiocap_id"] for row in rows],
                        source_id=f"youtube:{ytid}", duration=10.0)


WAVCAPS_SOURCES = {"AudioSet_SL": "as_final.json", "BBC_Sound_Effects": "bbc_final.json",
                   "FreeSound": "fsd_final.json", "SoundBible": "sb_final.json"}
WAVCAPS_ID_PREFIX = {"AudioSet_SL": "youtube", "BBC_Sound_Effects": "bbc", "FreeSound": "freesound",
                     "SoundBible": "soundbible"}


def _wavcaps_audio(root: str) -> dict[tuple[str, str], str]:
    """(source, file stem) -> path: a file belongs to the source its folder is named after (`FreeSound_flac/`, ...)."""
    index: dict[tuple[str, str], str] = {}
    for path in audio_files(root):
        folders = [part.lower() for part in os.path.relpath(path, root).split(os.sep)[:-1]]
        source = next((s for s in WAVCAPS_SOURCES if any(part.startswith(s.lower()) for part in folders)), None)
        if source is not None:
            index.setdefault((source, os.path.splitext(os.path.basename(path))[0]), path)
    return index


def _wavcaps_blacklist(paths: list[str]) -> dict[str, set[str]]:
    """The release's `json_files/blacklist/*.json`: `{"AudioSet": ["Y<ytid>.wav", ...], "FreeSound": [id, ...]}`."""
    excluded = {"AudioSet_SL": set(), "FreeSound": set()}
    for path in paths:
        data = read_json(path)
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a JSON object with 'AudioSet' and 'FreeSound' lists, got "
                             f"{type(data).__name__}.")
        excluded["AudioSet_SL"] |= {os.path.splitext(str(i))[0] for i in data.get("AudioSet", [])}
        excluded["FreeSound"] |= {str(i) for i in data.get("FreeSound", [])}
    return excluded


def read_wavcaps(root: str, blacklist: list[str] | None = None) -> Iterator[Clip]:
    """
    WavCaps: `json_files/<source>/<x>_final.json` and the audio extracted from `Zip_files/<source>/` (a folder named
    after each source). Split `train` holds every source; `audioset_sl`, `bbc_sound_effects`, `freesound` and
    `soundbible` hold one each (Table 1 trains WavCaps' FreeSound part under its own template).
    """
    json_dir = require_below(root, "json_files", LAYOUTS["wavcaps"].layout, is_dir=True)
    files = {source: file_or_none(os.path.join(json_dir, source, name)) for source, name in WAVCAPS_SOURCES.items()}
    if not any(files.values()):
        raise ValueError(f"No WavCaps JSON file under {json_dir!r}; expected "
                         f"{[f'{s}/{n}' for s, n in WAVCAPS_SOURCES.items()]}.")
    excluded = _wavcaps_blacklist(blacklist or [])
    audio = _wavcaps_audio(root)
    for source, path in files.items():
        if path is None:
            continue
        data = read_json(path)
        items = json_field(data, "data", path, "the top-level object") if isinstance(data, dict) else data
        if not isinstance(items, list):
            raise ValueError(f"{path}: expected a list of clips (or an object with a 'data' list), got "
                             f"{type(items).__name__}.")
        for index, item in enumerate(items):
            where = f"clip {index} of its 'data' list"
            stem = os.path.splitext(str(json_field(item, "id", path, where)))[0]
            origin = stem[1:12] if source == "AudioSet_SL" and stem.startswith("Y") and len(stem) >= 12 else stem
            duration = item.get("duration")
            if duration is not None:
                duration = number(str(duration), float, path, where, "duration")
            yield Clip(("train", source.lower()), f"{source}/{stem}", audio.get((source, stem)),
                       dict(id=stem, caption=json_field(item, "caption", path, where), source=source,
                            source_id=f"{WAVCAPS_ID_PREFIX[source]}:{origin}", duration=duration),
                       excluded=stem in excluded.get(source, ()))


def read_fsd50k(root: str) -> Iterator[Clip]:
    """FSD50K: `FSD50K.ground_truth/{dev,eval}.csv` (fname, labels, mids[, split]) and `FSD50K.{dev,eval}_audio/`."""
    truth = require_below(root, "FSD50K.ground_truth", LAYOUTS["fsd50k"].layout, is_dir=True)
    for part in ("dev", "eval"):
        folder = os.path.join(os.path.dirname(truth), f"FSD50K.{part}_audio")
        path = os.path.join(truth, f"{part}.csv")
        for line, row in csv_records(path, ("fname", "labels", "mids") + (("split",) if part == "dev" else ())):
            fname = row["fname"]
            yield _clip(choice(row.get("split", "eval"), SPLIT_NAMES, path, line, "split"),
                        f"FSD50K.{part}_audio/{fname}.wav",
                        file_or_none(os.path.join(folder, f"{fname}.wav")), fname=fname,
                        labels=[_spaced(label) for label in row["labels"].split(",")], mids=row["mids"].split(","),
                        source_id=f"freesound:{fname}", duration=None)


# NSynth's pitch and velocity are MIDI values.
MIDI_RANGE = (0, 127)


def read_nsynth(root: str) -> Iterator[Clip]:
    """NSynth: `nsynth-{train,valid,test}/examples.json` and `audio/<note_str>.wav`; label: the instrument family."""
    folders = {split: find_below(root, f"nsynth-{split}", is_dir=True) for split in ("train", "valid", "test")}
    if not any(folders.values()):
        raise ValueError(f"No nsynth-train / nsynth-valid / nsynth-test folder under {root!r}.")
    for split, folder in folders.items():
        if folder is None:
            continue
        path = os.path.join(folder, "examples.json")
        notes = read_json(path)
        if not isinstance(notes, dict):
            raise ValueError(f"{path}: expected an object of notes by name, got {type(notes).__name__}.")
        for note_str, note in notes.items():
            values = {key: json_field(note, key, path, f"note {note_str!r}") for key in (
                "instrument_family_str", "instrument_str", "instrument_source_str", "pitch", "velocity",
                "qualities_str")}
            yield _clip(SPLIT_NAMES[split], f"nsynth-{split}/audio/{note_str}.wav",
                        file_or_none(os.path.join(folder, "audio", f"{note_str}.wav")), note_str=note_str,
                        label=_spaced(values["instrument_family_str"]), instrument_str=values["instrument_str"],
                        instrument_source_str=values["instrument_source_str"],
                        pitch=number(str(values["pitch"]), int, path, f"note {note_str!r}", "pitch", MIDI_RANGE),
                        velocity=number(str(values["velocity"]), int, path, f"note {note_str!r}", "velocity",
                                        MIDI_RANGE),
                        qualities=list(values["qualities_str"]), source_id=f"nsynth:{note_str}", duration=4.0)


FMA_SIZES = ("small", "medium", "large", "full")


def _fma_audio_folder(root: str, size: str | None) -> tuple[str, str]:
    found = {s: find_below(root, f"fma_{s}", is_dir=True) for s in FMA_SIZES}
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


FMA_TRACK_COLUMNS = (("track_id",), ("set", "subset"), ("set", "split"), ("track", "genre_top"), ("track", "genres"),
                     ("track", "title"), ("artist", "name"), ("track", "duration"))


def read_fma(root: str, fma_size: str | None = None) -> Iterator[Clip]:
    """
    FMA: `fma_metadata/tracks.csv` (three header rows, as pandas writes `header=[0, 1], index_col=0`: two levels of
    column names, then the index's name `track_id`), `genres.csv`, and `fma_<size>/NNN/NNNNNN.mp3`. The size's tracks
    (`('set', 'subset')`, small within medium within large) in the splits of `('set', 'split')`; the label is the top
    genre (`('track', 'genre_top')`), None where FMA gives none (an empty field).
    """
    metadata = require_below(root, "fma_metadata", LAYOUTS["fma"].layout, is_dir=True)
    size, folder = _fma_audio_folder(root, fma_size)
    tracks_file, genres_file = os.path.join(metadata, "tracks.csv"), os.path.join(metadata, "genres.csv")
    titles = {number(row["genre_id"], int, genres_file, line, "genre_id"): row["title"]
              for line, row in csv_records(genres_file, ("genre_id", "title"))}
    subsets = {subset: subset for subset in FMA_SIZES[:3]}
    for line, row in csv_records(tracks_file, FMA_TRACK_COLUMNS, header_rows=3):
        track_id, subset, split, genre_top, genres, title, artist, seconds = (row[c] for c in FMA_TRACK_COLUMNS)
        track_id = number(track_id, int, tracks_file, line, "track_id")
        where = f"track {track_id}"
        if not subset or not _in_fma_size(choice(subset, subsets, tracks_file, where, "('set', 'subset')"), size):
            continue
        name = f"{track_id:06d}"
        try:
            genre_ids = json.loads(genres) if genres.strip() else []
        except json.JSONDecodeError:
            genre_ids = None
        if not isinstance(genre_ids, list) or not all(isinstance(g, int) for g in genre_ids):
            raise ValueError(f"{tracks_file}, {where}, column ('track', 'genres'): {genres!r} is not a JSON list of "
                             "genre ids.")
        duration = number(seconds, float, tracks_file, where, "('track', 'duration')") if seconds.strip() else None
        if duration is not None and size != "full":  # the other sizes hold 30 s clips of the tracks
            duration = min(duration, 30.0)
        clip = _clip(choice(split, SPLIT_NAMES, tracks_file, where, "('set', 'split')"),
                     f"fma_{size}/{name[:3]}/{name}.mp3",
                     file_or_none(os.path.join(folder, name[:3], f"{name}.mp3")), track_id=track_id,
                     label=genre_top or None, genres=[titles[g] for g in genre_ids if g in titles],
                     title=title or None, artist=artist or None, source_id=f"fma:{track_id}", duration=duration)
        clip.unknown_ids = tuple(f"genre {g}" for g in genre_ids if g not in titles)
        yield clip


def read_openmic(root: str, allow_pickle: bool = False) -> Iterator[Clip]:
    """
    OpenMIC-2018: `openmic-2018.npz` (`Y_true`, `Y_mask`, `sample_key`), `class-map.json`, `partitions/split01_{train,
    test}.csv` (one sample key per line) and `audio/<key[:3]>/<key>.ogg`. `labels`: the annotated classes with
    `Y_true >= 0.5` (the release's baseline threshold); `annotated`: every class annotated for the clip.
    """
    archive = require_below(root, "openmic-2018.npz", LAYOUTS["openmic"].layout)
    base = os.path.dirname(archive)
    class_map = read_json(os.path.join(base, "class-map.json"))
    if not isinstance(class_map, dict):
        raise ValueError(f"{os.path.join(base, 'class-map.json')}: expected an object of class indices by name.")
    classes = [_spaced(name) for name, _ in sorted(class_map.items(), key=lambda item: item[1])]
    try:
        with np.load(archive, allow_pickle=allow_pickle) as data:
            truth, mask = data["Y_true"], data["Y_mask"].astype(bool)
            keys = [k.decode() if isinstance(k, bytes) else str(k) for k in data["sample_key"]]
    except ValueError as error:
        if "allow_pickle" not in str(error):
            raise ValueError(f"{archive}: not a readable NumPy archive ({error}).") from None
        raise ValueError(f"{archive}: {error}. Its sample keys are stored as Python objects: pass allow_pickle=True "
                         "(--allow-pickle) if you trust the file.") from None
    except (OSError, EOFError, KeyError, zipfile.BadZipFile) as error:
        raise ValueError(f"{archive}: not the release's archive ({type(error).__name__}: {error}); expected a NumPy "
                         "archive with the arrays Y_true, Y_mask and sample_key.") from None
    expected = (len(keys), len(classes))
    if truth.shape != expected or mask.shape != expected:
        raise ValueError(f"{archive}: Y_true has the shape {truth.shape} and Y_mask {mask.shape}; expected {expected} "
                         f"(one row per sample key, one column per class of class-map.json).")
    row_of = {key: i for i, key in enumerate(keys)}
    for split in ("train", "test"):
        partition = os.path.join(base, "partitions", f"split01_{split}.csv")
        for line, key in ((line, row[0].strip()) for line, row in csv_rows(partition) if row):
            if key not in row_of:
                raise ValueError(f"{partition}, line {line}: sample key {key!r} is not in {archive}'s sample_key.")
            i = row_of[key]
            yield _clip(split, f"audio/{key[:3]}/{key}.ogg", file_or_none(os.path.join(base, "audio", key[:3],
                                                                                         f"{key}.ogg")),
                        sample_key=key, labels=[c for j, c in enumerate(classes) if mask[i, j] and truth[i, j] >= 0.5],
                        annotated=[c for j, c in enumerate(classes) if mask[i, j]],
                        source_id=f"fma:{int(key.split('_')[0])}", duration=10.0)


PITCH_CLASSES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def _music4all_table(root: str, name: str, columns: tuple[str, ...]) -> dict[str, tuple[int, dict[str, str]]]:
    """A table by track id, each row with its line; tab-separated as released (comma-separated also read)."""
    path = require_below(root, name, LAYOUTS["music4all"].layout)
    delimiter = "\t" if "\t" in read_text(path).split("\n", 1)[0] else ","
    return {row["id"]: (line, row) for line, row in csv_records(path, ("id", *columns), delimiter=delimiter)}


def _music_key(key: str, mode: str, path: str, line: int) -> str | None:
    """Spotify's pitch class (0 = C, -1 = none) and mode (1 major, 0 minor) as text: 'F# minor'."""
    if not key.strip():
        return None
    pitch = int(number(key, float, path, line, "key", (-1, len(PITCH_CLASSES) - 1)))
    return None if pitch < 0 else \
        f"{PITCH_CLASSES[pitch]} {'major' if int(number(mode, float, path, line, 'mode')) == 1 else 'minor'}"


def read_music4all(root: str) -> Iterator[Clip]:
    """Music4All: tab-separated `id_information.csv`, `id_genres.csv`, `id_metadata.csv` (key, mode) and `audios/`."""
    information = _music4all_table(root, "id_information.csv", ("artist", "song"))
    genres = _music4all_table(root, "id_genres.csv", ("genres",))
    metadata = _music4all_table(root, "id_metadata.csv", ("key", "mode"))
    metadata_file = require_below(root, "id_metadata.csv", LAYOUTS["music4all"].layout)
    information_file = require_below(root, "id_information.csv", LAYOUTS["music4all"].layout)
    folder = os.path.join(os.path.dirname(information_file), "audios")
    # Rows of the genre and metadata tables for tracks that id_information.csv does not list describe no clip: they
    # are counted with the first clip's unknown ids, so that the summary reports them.
    orphans = tuple(f"track {track} of {name}" for name, table in (("id_genres.csv", genres),
                                                                   ("id_metadata.csv", metadata))
                    for track in table if track not in information)
    for number_read, (track, (_, info)) in enumerate(information.items()):
        line, meta = metadata.get(track, (0, None))
        clip = _clip("train", f"audios/{track}.mp3", file_or_none(os.path.join(folder, f"{track}.mp3")), id=track,
                     key=None if meta is None else _music_key(meta["key"], meta["mode"], metadata_file, line),
                     genres=[g.strip() for g in genres.get(track, (0, {}))[1].get("genres", "").split(",")
                             if g.strip()],
                     artist=info.get("artist"), song=info.get("song"), source_id=f"music4all:{track}", duration=30.0)
        if number_read == 0:
            clip.unknown_ids = orphans
        yield clip


def read_gtzan(root: str) -> Iterator[Clip]:
    """GTZAN: `genres_original/<genre>/<genre>.000NN.wav`, or the original `genres/<genre>/<genre>.000NN.au`."""
    folder = (find_below(root, "genres_original", is_dir=True)
              or require_below(root, "genres", LAYOUTS["gtzan"].layout, is_dir=True))
    base = os.path.dirname(folder)
    for genre in sorted(d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d))):
        for path in audio_files(os.path.join(folder, genre)):
            stem = os.path.splitext(os.path.basename(path))[0]
            yield _clip("train", os.path.relpath(path, base), path, file=stem, label=genre,
                        source_id=f"gtzan:{stem}", duration=30.0)


CLOTHO_SPLITS = {"development": "train", "validation": "validation", "evaluation": "test"}


def _clotho_audio(root: str, split: str) -> str | None:
    for name in (split, f"clotho_audio_{split}"):
        found = find_below(root, name, is_dir=True)
        if found:
            return found
    return None


def read_clotho(root: str) -> Iterator[Clip]:
    """
    Clotho v2: `clotho_captions_<split>.csv` (file_name, caption_1..caption_5; names with spaces and commas, quoted),
    `clotho_metadata_<split>.csv` (Freesound `sound_id`, `keywords`; ISO-8859-1) and the audio folders `development/`,
    `validation/`, `evaluation/` (or `clotho_audio_<split>/`).
    """
    found = {split: find_below(root, f"clotho_captions_{split}.csv") for split in CLOTHO_SPLITS}
    if not any(found.values()):
        raise ValueError(f"No clotho_captions_<split>.csv under {root!r}. Expected: {LAYOUTS['clotho'].layout}")
    for split, captions_file in found.items():
        if captions_file is None:
            continue
        metadata_file = os.path.join(os.path.dirname(captions_file), f"clotho_metadata_{split}.csv")
        metadata = {row["file_name"]: row for _, row in csv_records(metadata_file, ("file_name", "keywords",
                                                                                     "sound_id"))} \
            if os.path.isfile(metadata_file) else {}
        folder = _clotho_audio(root, split)
        for _, row in csv_records(captions_file, ("file_name", *(f"caption_{i}" for i in range(1, 6)))):
            name, meta = row["file_name"], metadata.get(row["file_name"], {})
            captions = [row[f"caption_{i}"] for i in range(1, 6)]
            keywords = [k for k in meta.get("keywords", "").split(";") if k]
            sound_id = meta.get("sound_id")
            yield _clip(CLOTHO_SPLITS[split], f"{split}/{name}",
                        file_or_none(os.path.join(folder, name)) if folder else None, file_name=name,
                        caption=captions[0], captions=captions,
                        **{f"caption_{i}": c for i, c in enumerate(captions, 1)}, keywords=keywords,
                        source_id=f"freesound:{sound_id}" if sound_id else None, duration=None)


def read_esc50(root: str) -> Iterator[Clip]:
    """ESC-50: `meta/esc50.csv` (filename, fold, target, category, esc10, src_file, take) and `audio/`; folds 1-5."""
    meta = require_below(root, "meta", LAYOUTS["esc50"].layout, is_dir=True)
    folder = os.path.join(os.path.dirname(meta), "audio")
    path = os.path.join(meta, "esc50.csv")
    for line, row in csv_records(path, ("filename", "fold", "target", "category", "esc10", "src_file", "take")):
        yield _clip("train", f"audio/{row['filename']}", file_or_none(os.path.join(folder, row["filename"])),
                    filename=row["filename"], label=_spaced(row["category"]),
                    target=number(row["target"], int, path, line, "target"),
                    fold=number(row["fold"], int, path, line, "fold", (1, 5)), esc10=row["esc10"] == "True",
                    take=row["take"],
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



__all__ = [
    "CLOTHO_SPLITS",
    "FMA_SIZES",
    "LAYOUTS",
    "SPLIT_NAMES",
    "Clip",
    "Layout",
    "read_audiocaps",
    "read_audioset",
    "read_clotho",
    "read_esc50",
    "read_fma",
    "read_fsd50k",
    "read_gtzan",
    "read_music4all",
    "read_nsynth",
    "read_openmic",
    "read_vggsound",
    "read_wavcaps",
]
