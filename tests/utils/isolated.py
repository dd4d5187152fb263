"""A Python environment with only some installed distributions importable, for tests of what a user has."""

import importlib.metadata
import os
import re
import subprocess
import sys


def _closure(names: tuple[str, ...]) -> dict[str, importlib.metadata.Distribution]:
    """The distributions `names` need, their own requirements included (extras left out)."""
    found: dict[str, importlib.metadata.Distribution] = {}
    pending = list(names)
    while pending:
        name = pending.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in found:
            continue
        try:
            distribution = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue  # an optional requirement for another platform or Python
        found[key] = distribution
        pending += [re.split(r"[ ;<>=!~\[(]", requirement, maxsplit=1)[0]
                    for requirement in distribution.requires or [] if "extra ==" not in requirement]
    return found


def make_site(target: str | os.PathLike, names: tuple[str, ...]) -> str:
    """
    A folder that holds links to the files of `names` and of everything they require, and nothing else: with it as
    the only `PYTHONPATH` entry of a `python -S` process, exactly those distributions are importable.
    """
    target = os.fspath(target)
    os.makedirs(target, exist_ok=True)
    for distribution in _closure(names).values():
        base = distribution.locate_file("")
        for top in {str(path).split("/")[0] for path in distribution.files or []}:
            source, link = os.path.join(base, top), os.path.join(target, top)
            if top not in ("..", "__pycache__") and os.path.exists(source) and not os.path.lexists(link):
                os.symlink(source, link)
    return target


def run_isolated(site: str, script: str, args: list[str], cwd: str | os.PathLike, modules_cache: str,
                 timeout: int = 600) -> subprocess.CompletedProcess:
    """Runs `script` in a process that sees only `site` (no site-packages, no repository), offline."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    env.update(PYTHONPATH=site, HF_HUB_OFFLINE="1", HF_MODULES_CACHE=modules_cache, PYTHONNOUSERSITE="1")
    return subprocess.run([sys.executable, "-S", "-c", script, *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=timeout)
