# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""Finding and reading the files of a dataset release: metadata text in the encodings releases use (detected, and
refused when it is none of them), CSV files checked against the columns a layout reads and JSON files, each parse
error named by file, line and column; files found below a root folder, audio files indexed by name, and clips
downloaded from YouTube found by id and segment."""

import codecs
import csv
import io
import json
import math
import os
from collections.abc import Iterable, Iterator, Sequence
from typing import Any


# Audio first (lossless before lossy), then the video containers some YouTube downloads keep.
AUDIO_EXTENSIONS = (".flac", ".wav", ".ogg", ".opus", ".aiff", ".au", ".mp3", ".m4a", ".aac", ".webm", ".mp4",
                    ".mkv")


def read_text(path: str) -> str:
    """
    A metadata file as text: UTF-16 or UTF-8 with a byte-order mark, else UTF-8, else Windows-1252 (which ISO-8859-1
    text, Clotho's metadata, also decodes as). A file that none of these decodes (UTF-16 without a mark, binary data) is
    refused naming the file and the first byte that does not decode.
    """
    with open(path, "rb") as f:
        data = f.read()
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encodings = ("utf-16",)
    elif b"\x00" in data:  # text in UTF-8 or Windows-1252 holds no NUL byte
        at = data.index(b"\x00")
        raise ValueError(f"{path}: holds NUL bytes (the first at byte {at}): UTF-16 without a byte-order mark, or not "
                         "a text file; save it as UTF-8.")
    else:
        encodings = ("utf-8-sig", "cp1252")
    for encoding in encodings:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError as error:
            failure = error
    line = data[: failure.start].count(b"\n") + 1
    raise ValueError(f"{path}, line {line}: byte {failure.object[failure.start:failure.start + 1]!r} (at byte "
                     f"{failure.start}) does not decode as {' or '.join(encodings)}; save the file as UTF-8.")


def csv_rows(path: str, **kwargs) -> Iterator[tuple[int, list[str]]]:
    """
    The rows of a CSV file read with [`read_text`] (`kwargs` go to `csv.reader`), with the line each starts on. A
    quote that is never closed is refused naming the line it opens on.
    """
    reader = csv.reader(io.StringIO(read_text(path), newline=""), **kwargs)
    start = 1
    try:
        for row in reader:
            yield start, row
            start = reader.line_num + 1
    except csv.Error as error:
        raise ValueError(f"{path}, line {start}: {error} (is a quote opened on line {start} left open?).") from None


def csv_records(path: str, columns: Sequence[str | tuple[str, ...]], header_rows: int = 1,
                **kwargs) -> Iterator[tuple[int, dict[str | tuple[str, ...], str]]]:
    """
    The rows of a CSV file with a header, read with [`read_text`] (`kwargs` go to `csv.reader`), as dicts, with the
    line each starts on. The header must hold `columns` (in any order, among others); a row without a value for one of
    them, or with more fields than the header, is refused naming the file, the line and the columns. With several
    `header_rows` (FMA's `tracks.csv` has two, as pandas writes `header=[0, 1]`) a column is named by the tuple of its
    non-empty header fields (`("set", "split")`).
    """
    rows = csv_rows(path, **kwargs)
    header = []
    for _, row in rows:
        if row:
            header.append(row)
        if len(header) == header_rows:
            break
    if header_rows == 1:
        names = header[0] if header else []
    else:
        width = max(map(len, header), default=0)
        names = [tuple(part[i] for part in header if i < len(part) and part[i]) for i in range(width)]
    missing = [column for column in columns if column not in names]
    if missing:
        found = names if len(names) <= 12 else [*names[:12], "..."]
        raise ValueError(f"{path}: the header has no column {', '.join(map(repr, missing))}; expected the columns "
                         f"{list(columns)}"
                         + (f" in {header_rows} header rows" if header_rows > 1 else "")
                         + f", found {found}. Is it the release's own file, unchanged?")
    for line, row in rows:
        if not row:
            continue
        short = [column for index, column in enumerate(names) if index >= len(row) and column in columns]
        if short or len(row) > len(names):
            spans = "".join(row).rstrip("\r\n").count("\n")
            quote = f" (the row runs to line {line + spans}: a quote left open?)" if spans else ""
            problem = (f"no value for {', '.join(map(repr, short))}" if short
                       else f"{len(row) - len(names)} more than the header names (a stray delimiter?)")
            raise ValueError(f"{path}, line {line}: {len(row)} fields, {len(names)} in the header: {problem}{quote}.")
        yield line, dict(zip(names, row))


def _place(path: str, line: int | str, column: str) -> str:
    """Where a value was read: `file, line 3, column 'start'` (`line` a line number, or words such as `note 'x'`)."""
    return f"{path}, {f'line {line}' if isinstance(line, int) else line}, column {column!r}"


def number(text: str, kind: type, path: str, line: int | str, column: str,
           within: tuple[float, float] | None = None) -> Any:
    """
    `text` as an `int` or a finite `float` (`kind`), or a ValueError naming the file, line (or entry) and column where
    it was read; with `within` (`(low, high)`, both included), a value outside that range is refused the same way.
    """
    try:
        value = kind(text.strip())
    except (ValueError, AttributeError):
        value = None
    if value is None or not math.isfinite(value):
        expected = "an integer" if kind is int else "a finite number"
        raise ValueError(f"{_place(path, line, column)}: {text!r} is not {expected}.")
    if within is not None and not within[0] <= value <= within[1]:
        raise ValueError(f"{_place(path, line, column)}: {text!r} is outside the release's range {within[0]} to "
                         f"{within[1]}.")
    return value


def choice(value: str, known: dict[str, str], path: str, line: int | str, column: str) -> str:
    """`known[value]` (e.g. a release's split name as MINT's), or a ValueError naming where and the known values."""
    if str(value).strip() not in known:
        raise ValueError(f"{_place(path, line, column)}: {value!r} is not one of {sorted(known)}.")
    return known[str(value).strip()]


def read_json(path: str) -> Any:
    """A JSON file read with [`read_text`]; broken JSON is refused naming the file, line and column."""
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}, line {error.lineno}, column {error.colno}: not valid JSON ({error.msg}).") from None


def json_field(item: Any, key: str, path: str, where: str) -> Any:
    """`item[key]` of a JSON file's entry, or a ValueError naming the file, the entry (`where`) and the key."""
    if not isinstance(item, dict) or key not in item:
        found = sorted(item) if isinstance(item, dict) else type(item).__name__
        raise ValueError(f"{path}: {where} has no {key!r} (it has {found}).")
    return item[key]


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
    "choice",
    "csv_records",
    "csv_rows",
    "json_field",
    "file_or_none",
    "find_below",
    "index_by_stem",
    "number",
    "read_json",
    "read_text",
    "require_below",
]
