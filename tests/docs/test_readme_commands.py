"""Every command line of the README's ```bash blocks is accepted, as written, by the argument parser of the command it
runs (its options and values exist), and every script it names is in the repository. The commands themselves run on
small data in the CLI tests; the README's lines name the paper's archives, 8 GPUs or full-size benchmarks."""

import argparse
import importlib
import importlib.util
import os
import re
import subprocess

import pytest
from tests.utils import ROOT

CONSOLE_SCRIPTS = {"mint-train": "training_mint", "mint-eval": "evaluation_mint", "mint-corpus": "corpus_mint",
                   "mint-demo": "demo_mint", "mint-data": "prepare_mint"}
# Run by CI itself (`.ci/run`: install.sh, then the test command) or installers: nothing to parse.
NOT_PARSED = ("pip", "bash install.sh", "python -m pytest")


def command_lines() -> list[str]:
    """The README's bash command lines: continuations joined, comments dropped."""
    readme = open(os.path.join(ROOT, "README.md")).read()
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", readme, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"(^|\s{2,})#.*$", "", line).strip()
            if line:
                lines.extend(part.strip() for part in line.split("&&"))
    return lines


def words(line: str) -> list[str]:
    """The line's words as bash gives them to the command (quotes removed, `$m` of a per-machine loop set to 0), without
    leading environment assignments."""
    result = subprocess.run(["bash", "-c", f'm=0; printf "%s\\0" {line}'], capture_output=True, text=True, check=True)
    argv = result.stdout.split("\0")[:-1]
    while argv and re.match(r"^[A-Z_]+=", argv[0]):
        argv.pop(0)
    return argv


class Parsed(Exception):
    pass


def module_and_arguments(argv: list[str]) -> tuple[str, list[str]] | None:
    """The Python module (or script path) a command runs, and the arguments its parser receives."""
    if argv[0] in CONSOLE_SCRIPTS:
        return CONSOLE_SCRIPTS[argv[0]], argv[1:]
    if argv[0] in ("python", "torchrun") or argv[:2] == ["accelerate", "launch"]:
        if "-m" in argv:
            at = argv.index("-m")
            return argv[at + 1], argv[at + 2:]
        return argv[1], argv[2:]
    if argv[0].startswith("launch/"):  # torchrun -m training_mint run "$@"
        return "training_mint", ["run", *argv[1:]]
    return None


def load(module: str):
    if module.endswith(".py"):
        spec = importlib.util.spec_from_file_location(os.path.basename(module)[:-3], os.path.join(ROOT, module))
        loaded = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(loaded)
        return loaded
    return importlib.import_module(module)


@pytest.mark.parametrize("line", [line for line in command_lines() if not line.startswith(NOT_PARSED)])
def test_readme_command_line_parses(line, monkeypatch):
    argv = words(line)
    for word in argv:  # scripts and launch files the line names
        if word.startswith(("launch/", "benchmarks/", "recipes/")):
            assert os.path.isfile(os.path.join(ROOT, word)), word
    target = module_and_arguments(argv)
    if target is None:  # e.g. `bash benchmarks/gpu_check.sh`: the script exists (checked above)
        assert argv[0] == "bash" and os.path.isfile(os.path.join(ROOT, argv[1])), line
        return
    module, arguments = target
    monkeypatch.syspath_prepend(os.path.join(ROOT, "benchmarks"))
    parse_args = argparse.ArgumentParser.parse_args

    def parse_then_stop(parser, args=None, namespace=None):
        parse_args(parser, args, namespace)  # exits with status 2, naming the option, on anything it does not know
        raise Parsed

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
    with pytest.raises(Parsed):
        load(module).main(arguments)


def test_every_kind_of_readme_command_is_checked():
    lines = command_lines()
    assert any(line.startswith("mint-eval leakage") for line in lines)
    assert any(line.startswith("mint-data prepare esc50") for line in lines)
    assert any(line.startswith("torchrun") for line in lines) and any("accelerate launch" in line for line in lines)
    assert any(line.startswith("python benchmarks/") for line in lines)
    assert sum(line.startswith(NOT_PARSED) for line in lines) < 10
    assert words("mint-train cache-features --shard-index $(seq $m 4 63)")[-1] == "60"
    assert words("torchrun -m training_mint run r.json --set 'datasets=[{\"path\": \"c\"}]'")[-1] == \
        'datasets=[{"path": "c"}]'
