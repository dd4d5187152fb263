# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""Finding and reading the files of a dataset release: metadata text and CSV in the encodings releases use, files
found below a root folder, audio files indexed by name, and clips downloaded from YouTube found by id and segment."""

import csv
import io
import os
from collections.abc import Iterable, Iterator


# Audio first (lossless before lossy), then the video containers some YouTube downloads keep.
AUDIO_EXTENSIONS = (".flac", ".wav", ".ogg", ".opus", ".aiff", ".au", ".mp3", ".m4a", ".aac", ".webm", ".mp4",
                    ".mkv")


def read_text(path: str) -> str:
    """A metadata file as text: UTF-8 (with or without BOM), else ISO-8859-1 (Clotho's metadata files)."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("iso-8859-1")


def csv_rows(path: str, **kwargs) -> Iterator[list[str]]:
    """The rows of a CSV file read with [`read_text`] (`kwargs` go to `csv.reader`), as lists of fields."""
    return csv.reader(io.StringIO(read_text(path), newline=""), **kwargs)


def csv_dicts(path: str, **kwargs) -> Iterator[dict[str, str]]:
    """The rows of a CSV file with a header, read with [`read_text`] (`kwargs` go to `csv.DictReader`), as dicts."""
    return csv.DictReader(io.StringIO(read_text(path), newline=""), **kwargs)


def find_below(root: str, name: str, is_dir: bool = False, max_depth: int = 3) -> str | None:
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


def require_below(root: str, name: str, layout: str, is_dir: bool = False) -> str:
    """[`find_below`]'s path, or a ValueError that describes the expected `layout` of the release when it is absent."""
    found = find_below(root, name, is_dir)
    if found is None:
        raise ValueError(f"No {name!r} under {root!r}. Expected the official layout: {layout}")
    return found


def audio_files(folder: str) -> Iterator[str]:
    """The paths of the files below `folder` with an extension of `AUDIO_EXTENSIONS`, in sorted order; hidden files
    and folders are left out."""
    for directory, subdirectories, files in os.walk(folder):
        subdirectories[:] = sorted(d for d in subdirectories if not d.startswith("."))
        for name in sorted(files):
            if name.lower().endswith(AUDIO_EXTENSIONS) and not name.startswith("."):
                yield os.path.join(directory, name)


def index_by_stem(paths: Iterable[str]) -> dict[str, str]:
    """File stem -> path, preferring audio over video containers (the order of `AUDIO_EXTENSIONS`) on a tie."""
    rank = {ext: i for i, ext in enumerate(AUDIO_EXTENSIONS)}
    index: dict[str, str] = {}
    for path in paths:
        stem, ext = os.path.splitext(os.path.basename(path))
        if stem not in index or rank[ext.lower()] < rank[os.path.splitext(index[stem])[1].lower()]:
            index[stem] = path
    return index


def file_or_none(path: str) -> str | None:
    """`path` when it is a file, else None (a clip the metadata lists but the release lacks)."""
    return path if os.path.isfile(path) else None


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
        self.by_stem = index_by_stem(audio_files(folder))

    def find(self, ytid: str, start: float | None = None, end: float | None = None) -> str | None:
        """The path of the clip of video `ytid` (the segment from `start` to `end` seconds, if given), else None."""
        candidates = []
        for prefix in ("", "Y"):
            for s in _time_forms(start) if start is not None else []:
                for e in _time_forms(end) if end is not None else []:
                    candidates += [f"{prefix}{ytid}_{s}_{e}", f"{prefix}{ytid}_{s}-{e}"]
                candidates.append(f"{prefix}{ytid}_{s}")
        candidates += [ytid, f"Y{ytid}"]
        return next((self.by_stem[c] for c in candidates if c in self.by_stem), None)


__all__ = [
    "AUDIO_EXTENSIONS",
    "YouTubeClips",
    "audio_files",
    "csv_dicts",
    "csv_rows",
    "file_or_none",
    "find_below",
    "index_by_stem",
    "read_text",
    "require_below",
]
