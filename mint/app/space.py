# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""A Hugging Face Space folder that serves the web app on a MINT model from the Hub.

    write_space("your-org/mint", "mint-space", stage1="your-org/mint-stage1")    # or `mint hub space ...`

writes `app.py` (which a Gradio Space runs as it is), `requirements.txt` (the package and the pinned Gradio) and
`README.md`, whose YAML front matter is the Space's configuration (the keys of the Spaces configuration reference:
`sdk`, `sdk_version`, `python_version`, `app_file`, `models`). Push the folder to a Space repository to publish it.
"""

import json
import os
import re
from importlib.metadata import PackageNotFoundError, version

from huggingface_hub.utils import HFValidationError, validate_repo_id
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from mint.data.outputs import few, replace_folder


GRADIO_VERSION = "6.31.0"
PYTHON_VERSION = "3.11"
SPACE_FILES = ("README.md", "app.py", "requirements.txt")
# A Hub repo id: owner/name, each of letters, digits, '-', '_' and '.', as the Hub allows.
REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")

APP_TEMPLATE = '''"""The MINT web app (`mint.app`) on {model}."""

from mint.app import build_app


build_app({arguments}).launch()
'''

README_TEMPLATE = """---
title: {title}
emoji: 🔊
colorFrom: indigo
colorTo: blue
sdk: gradio
sdk_version: {gradio}
python_version: "{python}"
app_file: app.py
models:
{models}
pinned: false
---

# {heading}

The MINT audio-language model (Interspeech 2024) [{model}](https://huggingface.co/{model}) in a
web page: upload or record a clip, then caption it or ask it an instruction, score candidate labels{retrieval_line}.
The app is `mint.app.build_app` of the `mint-audio` package (`mint app {model}` runs it on your machine).
"""


def check_repo_id(repo_id: str, what: str) -> str:
    """
    `repo_id` if it is a Hub repo id `owner/name` as the Hub accepts it (`huggingface_hub`'s `validate_repo_id`: no
    `--`, `..`, `.git` ending, or name starting or ending with `-` or `.`) and no local path; anything else is a
    `ValueError`. A local folder is refused even when its path reads as a repo id (`mint-demo/stage2`): the Space would
    look for it on the Hub.
    """
    hint = (" A Space loads its model from the Hub: push the folder (`save_for_hub`, then `hf upload`) and give its "
            "repo id.")
    if isinstance(repo_id, str) and os.path.exists(repo_id):
        raise ValueError(f"{what} must be a Hub repo id 'owner/name', got {repo_id!r}, which is a local path.{hint}")
    problem = None
    if not isinstance(repo_id, str) or not REPO_ID.match(repo_id):
        problem = ""
    else:
        try:
            validate_repo_id(repo_id)
        except HFValidationError as error:
            problem = f" {error}"
    if problem is not None:
        raise ValueError(f"{what} must be a Hub repo id 'owner/name', got {repo_id!r}.{problem}")
    return repo_id


def package_requirement() -> str:
    """The requirement line of this package at its installed version."""
    try:
        return f"mint-audio=={version('mint-audio')}"
    except PackageNotFoundError:
        return "mint-audio"


def check_requirement(line: str) -> str:
    """`line` if it is one requirement line (PEP 508) naming the `mint-audio` package, which the Space's `app.py`
    imports; anything else is a `ValueError`."""
    try:
        requirement = Requirement(line) if isinstance(line, str) and "\n" not in line else None
    except InvalidRequirement as error:
        raise ValueError(f"requirement {line!r} is not a requirement line ({error}); expected e.g. "
                         "'mint-audio==1.0' or 'mint-audio @ git+https://...'.") from None
    if requirement is None or canonicalize_name(requirement.name) != "mint-audio":
        raise ValueError(f"requirement must be one line installing the mint-audio package, which app.py imports "
                         f"(e.g. 'mint-audio @ git+https://...'), got {line!r}.")
    return line


def check_space_folder(output: str, overwrite: bool) -> None:
    """Refuses `output` when it is a file, or a non-empty folder holding anything but a Space folder's files (which
    only `overwrite` replaces)."""
    if not os.path.lexists(output):
        return
    if not os.path.isdir(output):
        raise ValueError(f"Output {output!r} exists and is not a folder; a Space is written as a folder: choose "
                         "another path.")
    entries = sorted(os.listdir(output))
    others = [name for name in entries if name not in SPACE_FILES]
    if others:
        raise ValueError(f"Output folder {output!r} holds {few(others)}, which a Space folder written here does not: "
                         "it is never replaced, even with --overwrite: choose another folder.")
    if entries and not overwrite:
        raise ValueError(f"Output folder {output!r} already holds a Space ({few(entries)}). Pass overwrite=True "
                         "(--overwrite) to replace it, or choose another folder.")


def write_space(model: str, output: str, stage1: str | None = None, title: str | None = None,
                requirement: str | None = None, overwrite: bool = False) -> list[str]:
    """
    Writes a Space folder at `output` for the MINT model `model` (a Hub repo id; `stage1`: the repo id of the stage-1
    model it was trained from, for embedding scores and retrieval). `title` defaults to the model's name;
    `requirement` is the package's line in requirements.txt (default `mint-audio==<this version>`; a
    `mint-audio @ git+https://...` line installs it from a repository). An existing folder is replaced only with
    `overwrite` and only when it holds a Space's files alone. Returns the paths written.
    """
    check_repo_id(model, "model")
    if stage1 is not None:
        check_repo_id(stage1, "stage1")
        if stage1 == model:
            raise ValueError(f"stage1 is the model itself ({model!r}); expected the stage-1 model it was trained from.")
    requirement = check_requirement(package_requirement() if requirement is None else requirement)
    title = title or model.split("/")[1]
    if not title.strip() or any(mark in title for mark in "\n\r\u2028\u2029"):
        raise ValueError(f"title must be one line of text, got {title!r}.")
    if not isinstance(output, str | os.PathLike) or not str(output).strip():
        raise ValueError(f"output must be the path of the Space folder to write, got {output!r}.")
    check_space_folder(output, overwrite)
    arguments = repr(model) + (f", stage1={stage1!r}" if stage1 else "")
    files = {
        "app.py": APP_TEMPLATE.format(model=model, arguments=arguments),
        "requirements.txt": f"{requirement}\ngradio=={GRADIO_VERSION}\n",
        "README.md": README_TEMPLATE.format(
            title=json.dumps(title, ensure_ascii=False), heading=title, gradio=GRADIO_VERSION, python=PYTHON_VERSION,
            model=model,
            models="\n".join(f"  - {repo}" for repo in (model, stage1) if repo),
            retrieval_line=" and search clips by text" if stage1 else ""),
    }

    def write(folder: str) -> None:
        for name, text in files.items():
            with open(os.path.join(folder, name), "w", encoding="utf-8") as f:
                f.write(text)

    replace_folder(output, write)
    return [os.path.join(output, name) for name in files]


__all__ = ["GRADIO_VERSION", "PYTHON_VERSION", "SPACE_FILES", "check_repo_id", "check_requirement", "write_space"]
