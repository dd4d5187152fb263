"""The documentation the docs tests read, in reading order: the README, then the `docs/` pages in the order the README
links them, then the READMEs of `recipes/` and `launch/`."""

import os
import re

from tests.utils import ROOT

FOLDER_READMES = ("recipes/README.md", "launch/README.md")


def read(path: str) -> str:
    """The text of a documentation file, by its path relative to the repository root."""
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read()


def documentation() -> list[str]:
    """README.md, then each `docs/` page the README links, in the order of its first link."""
    linked = re.findall(r"\]\((docs/[\w.-]+\.md)(?:#[\w-]*)?\)", read("README.md"))
    return ["README.md", *dict.fromkeys(linked)]


def code_blocks(info: str, paths: list[str] | None = None) -> list[tuple[str, str]]:
    """(path, code) of every fenced block whose info string is exactly `info` (```python, ```python illustration, ...),
    in reading order."""
    blocks = []
    for path in documentation() if paths is None else paths:
        fenced = re.findall(rf"^```{re.escape(info)}\n(.*?)^```", read(path), re.S | re.M)
        blocks.extend((path, code) for code in fenced)
    return blocks
