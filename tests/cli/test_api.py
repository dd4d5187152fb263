"""The package's public API (`from mint import ...`, loaded lazily) and the `mint` command's help without torch."""

import os
import shutil
import subprocess
import sys

import pytest

import mint
from tests.utils import ROOT


# Every command and sub-command of `mint`.
COMMANDS = [[], ["train"], ["recipe"], ["plan"], ["cache-features"], ["data"], ["data", "prepare"],
            ["data", "layouts"], ["eval"], *[["eval", task] for task in ("classify", "retrieval", "caption",
                                                                       "zero-shot", "leakage")],
            ["demo"], ["corpus"], ["convert-whisper"]]


def imported_modules(argv: list[str], env: dict | None = None) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Runs `argv` with `-X importtime`'s report on; returns the run and the names of the modules it imported."""
    run = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, timeout=120,
                         env={**os.environ, **(env or {}), "PYTHONPROFILEIMPORTTIME": "1"})
    modules = {line.rsplit("|", 1)[-1].strip() for line in run.stderr.splitlines() if line.startswith("import time:")}
    return run, modules


def test_every_exported_name_resolves():
    assert mint.__all__ == sorted(set(mint.__all__)) and not [name for name in mint.__all__ if name.startswith("_")]
    for name in mint.__all__:
        assert getattr(mint, name) is not None and name in dir(mint), name
    from mint.hub import save_for_hub
    from mint.training.recipe import MintRecipe

    assert mint.save_for_hub is save_for_hub and mint.MintRecipe is MintRecipe
    with pytest.raises(AttributeError, match="has no attribute 'not_a_name'"):
        mint.not_a_name  # noqa: B018


def test_import_mint_loads_no_torch():
    run, modules = imported_modules([sys.executable, "-c", "import mint"])
    assert run.returncode == 0, run.stderr[-3000:]
    assert "mint" in modules and "torch" not in modules


def test_help_answers_without_torch():
    """`python -m mint --help` and every sub-command's help load neither torch nor transformers."""
    script = ("import contextlib, io, sys\nimport mint.cli\n"
              f"for argv in {COMMANDS!r}:\n"
              "    with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.suppress(SystemExit):\n"
              "        mint.cli.main([*argv, '--help'])\n"
              "    assert out.getvalue().startswith('usage: mint'), (argv, out.getvalue())\n")
    run, modules = imported_modules([sys.executable, "-c", script])
    assert run.returncode == 0, run.stderr[-3000:]
    assert "torch" not in modules and "transformers" not in modules
    run, modules = imported_modules([sys.executable, "-m", "mint", "--help"])
    assert run.returncode == 0 and run.stdout.startswith("usage: mint"), run.stderr[-3000:]
    assert "torch" not in modules


def test_console_script_help():
    script = shutil.which("mint", path=os.path.dirname(sys.executable)) or shutil.which("mint")
    if script is None:
        pytest.fail("the console script `mint` is not installed: pip install --no-deps -e .")
    run, modules = imported_modules([script, "--help"])
    assert run.returncode == 0 and run.stdout.startswith("usage: mint"), run.stderr[-3000:]
    for command in ("train", "eval", "data", "cache-features", "demo", "corpus", "convert-whisper"):
        assert command in run.stdout
    assert "torch" not in modules
