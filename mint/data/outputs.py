# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""Writing the folders, files and records of mint safely: an output folder or file that holds something else is
refused, a folder is written beside its place and moved there once complete, and a file is replaced in one step."""

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from typing import Any


# The files `save_to_disk` writes at the top of a `datasets` folder (a DatasetDict, or one Dataset).
SAVED_DATASET_FILES = ("dataset_dict.json", "dataset_info.json", "state.json")


def few(items: list, limit: int = 5) -> str:
    """Up to `limit` of `items` for a message, with how many more there are: `'a', 'b', ... (3 more)`."""
    shown = ", ".join(repr(item) for item in items[:limit])
    return shown + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")


def check_output_folder(output: str, overwrite: bool, what: str, marks: tuple[str, ...] = SAVED_DATASET_FILES,
                        kind: str = "a dataset folder") -> None:
    """
    Refuses `output` when it exists and is not empty, unless `overwrite` and it holds `kind` (a folder with one of the
    files `marks`, by default one that `save_to_disk` wrote), which `what` then replaces. A file, or a folder holding
    anything else, is never replaced.
    """
    if not os.path.lexists(output):
        return
    if not os.path.isdir(output):
        raise ValueError(f"Output {output!r} exists and is not a folder; {what} is written as a folder: choose another "
                         "path.")
    entries = sorted(os.listdir(output))
    if not entries:
        return
    if not any(os.path.isfile(os.path.join(output, name)) for name in marks):
        raise ValueError(f"Output folder {output!r} exists and is not empty: it holds {few(entries)}, not {kind}. "
                         f"{what.capitalize()} never replaces such a folder, even with overwrite=True (--overwrite): "
                         "choose another folder.")
    if not overwrite:
        raise ValueError(f"Output folder {output!r} exists and is not empty: it holds {kind}. Pass overwrite=True "
                         f"(--overwrite) to replace it with {what}, or choose another folder.")


def check_output_file(path: str, overwrite: bool, what: str, outside: str | None = None) -> None:
    """
    Checks, before any work, that `what` (`"--missing-list"`) can be written to the file `path`: its folder is
    created, and an existing file is refused unless `overwrite`; a folder or anything that is not a file is never
    replaced, nor a path inside the folder `outside` (an output folder that holds one dataset alone). Raises a
    `ValueError` naming the path and the fix.
    """
    if outside is not None and os.path.commonpath([os.path.abspath(path), os.path.abspath(outside)]) == \
            os.path.abspath(outside):
        raise ValueError(f"{what} {path!r} lies inside the output folder {outside!r}, which holds the dataset alone; "
                         "write it elsewhere.")
    if os.path.lexists(path) and not os.path.isfile(path):
        raise ValueError(f"{what} {path!r} exists and is not a file; choose another path.")
    if os.path.isfile(path) and not overwrite:
        raise ValueError(f"{what} {path!r} exists; pass --overwrite (overwrite=True) to replace it, or choose another "
                         "path.")
    make_parent_folder(path, what)


def make_parent_folder(path: str, what: str) -> None:
    """Creates the folder of the file `path` that `what` (`"--output"`) will write, or raises a `ValueError` naming
    the path when it cannot be created or written to."""
    parent = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as error:
        raise ValueError(f"{what} {path!r}: its folder {parent!r} cannot be created ({error.strerror}).") from None
    if not os.access(parent, os.W_OK):
        raise ValueError(f"{what} {path!r}: its folder {parent!r} is not writable.")


def replace_folder(output: str, write: Callable[[str], None]) -> None:
    """
    Writes the folder `output` in one step: `write(folder)` fills a new folder beside it, which then takes the place
    of `output` (an earlier `output` is removed only after that). A failed or killed write leaves `output` as it was.
    """
    parent = os.path.dirname(os.path.abspath(output))
    os.makedirs(parent, exist_ok=True)
    name = os.path.basename(os.path.abspath(output))
    written = tempfile.mkdtemp(dir=parent, prefix=f".{name}.partial-")
    try:
        write(written)
        if os.path.isdir(output):
            previous = tempfile.mkdtemp(dir=parent, prefix=f".{name}.replaced-")
            os.replace(output, previous)
            os.replace(written, output)
            shutil.rmtree(previous)
        else:
            os.replace(written, output)
    except BaseException:
        shutil.rmtree(written, ignore_errors=True)
        raise


def write_text(path: str, text: str) -> None:
    """Writes `text` (UTF-8) to `path` in one step: a temporary file in the same folder, then `os.replace`."""
    handle, temporary = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), prefix=".partial-",
                                         suffix=os.path.splitext(path)[1])
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temporary)
        raise


def write_json(path: str, data: Any, indent: int | None = None) -> None:
    """Writes `data` as JSON to `path` in one step ([`write_text`])."""
    write_text(path, json.dumps(data, indent=indent))


def read_json(path: str) -> Any:
    """The JSON in `path`, or None when it is missing, empty, cut short or not UTF-8 JSON."""
    try:
        with open(path, "rb") as f:
            return json.loads(f.read().decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None


__all__ = [
    "SAVED_DATASET_FILES",
    "check_output_file",
    "check_output_folder",
    "make_parent_folder",
    "few",
    "read_json",
    "replace_folder",
    "write_json",
    "write_text",
]
