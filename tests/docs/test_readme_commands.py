"""Every command line of the ```bash blocks of the README, of `docs/` and of the `recipes/` and `launch/` READMEs is
accepted, as written, by the parser of the command it runs (its sub-command, options and values exist): `mint ...`,
`python -m mint ...` and the launchers by `mint.cli.build_parser()`, a benchmark by its script's own parser. Every
script and launch file it names is in the repository. The commands themselves run on small data in the CLI tests; the
documented lines name the paper's archives, 8 GPUs or full-size benchmarks."""

import argparse
import importlib.util
import os
import re
import subprocess

import pytest

from mint.cli import build_parser
from tests.docs.documents import FOLDER_READMES, code_blocks, documentation, read
from tests.utils import ROOT

# Run by CI itself (`.ci/run`: install.sh, then the test command) or installers, or shell control lines of a loop:
# nothing to parse.
NOT_PARSED = ("pip", "bash install.sh", "python -m pytest", "for ", "done")


def command_lines(paths: list[str] | None = None) -> list[str]:
    """The bash command lines of `paths` (default: the README, `docs/` and the folder READMEs): continuations joined,
    comments, redirections and a trailing `&` dropped."""
    lines = []
    for _, block in code_blocks("bash", documentation() + list(FOLDER_READMES) if paths is None else paths):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"(^|\s{2,})#.*$", "", line).strip()
            line = re.sub(r"\s+>\s*\S+$", "", line).removesuffix("&").strip()
            if line:
                lines.extend(part.strip() for part in line.split("&&"))
    return lines


def words(line: str) -> list[str]:
    """The line's words as bash gives them to the command (quotes removed, `$m` and `$g` of a per-machine or per-GPU
    loop set to 0), without leading environment assignments."""
    result = subprocess.run(["bash", "-c", f'm=0; g=0; printf "%s\\0" {line}'], capture_output=True, text=True,
                            check=True)
    argv = result.stdout.split("\0")[:-1]
    while argv and re.match(r"^[A-Z_]+=", argv[0]):
        argv.pop(0)
    return argv


def mint_arguments(argv: list[str]) -> list[str] | None:
    """The arguments the `mint` parser receives from a line that runs MINT's command line, else None."""
    if argv[0] == "mint":
        return argv[1:]
    if argv[0] in ("python", "torchrun") or argv[:2] == ["accelerate", "launch"]:
        if "-m" in argv and argv[argv.index("-m") + 1] == "mint":
            return argv[argv.index("-m") + 2:]
    if argv[0].startswith("launch/") and argv[0].endswith(".sh"):  # the launch files run `-m mint train "$@"`
        return ["train", *argv[1:]]
    return None


def parse_mint(arguments: list[str]) -> argparse.Namespace:
    """The namespace `mint` parses from `arguments`; a line it refuses fails the test with the parser's message."""
    try:
        return build_parser().parse_args(arguments)
    except SystemExit as error:  # argparse exits with status 2, naming the option, on anything it does not know
        pytest.fail(f"`mint {' '.join(arguments)}` is refused by the mint parser (exit status {error.code})")


def load_script(path: str):
    spec = importlib.util.spec_from_file_location(os.path.basename(path)[:-3], os.path.join(ROOT, path))
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


class Parsed(Exception):
    pass


@pytest.mark.parametrize("line", [line for line in command_lines() if not line.startswith(NOT_PARSED)])
def test_readme_command_line_parses(line, monkeypatch):
    argv = words(line)
    for word in argv:  # scripts and launch files the line names
        if word.startswith(("launch/", "benchmarks/", "recipes/")):
            assert os.path.isfile(os.path.join(ROOT, word)), word
    arguments = mint_arguments(argv)
    if arguments is not None:
        assert callable(parse_mint(arguments).handler), line
        return
    if argv[0] == "bash":  # e.g. `bash benchmarks/gpu_check.sh`: the script exists (checked above)
        assert os.path.isfile(os.path.join(ROOT, argv[1])), line
        return
    assert argv[0] == "python" and argv[1].startswith("benchmarks/") and argv[1].endswith(".py"), line
    monkeypatch.syspath_prepend(os.path.join(ROOT, "benchmarks"))
    parse_args = argparse.ArgumentParser.parse_args

    def parse_then_stop(parser, args=None, namespace=None):
        parse_args(parser, args, namespace)  # exits with status 2, naming the option, on anything it does not know
        raise Parsed

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
    with pytest.raises(Parsed):
        load_script(argv[1]).main(argv[2:])


LAUNCH_FILES = sorted(name for name in os.listdir(os.path.join(ROOT, "launch")) if name.endswith(".sh"))


@pytest.mark.parametrize("launch_file", LAUNCH_FILES)
def test_launch_files_run_mint_train(launch_file):
    """The torchrun launch files run `mint train` with the arguments they are given, as the documents say."""
    assert re.search(r'-m mint train "\$@"', read(f"launch/{launch_file}")), launch_file


def _sub_commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    """Every leaf command of a parser: ("train",), ("eval", "classify"), ..."""
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not actions:
        return {prefix}
    return {leaf for name, sub in actions[0].choices.items() for leaf in _sub_commands(sub, (*prefix, name))}


def test_every_kind_of_readme_command_is_checked():
    lines = command_lines()
    assert any(line.startswith("mint eval leakage") for line in lines)
    assert any(line.startswith("mint data prepare esc50") for line in lines)
    assert any(line.startswith("torchrun") for line in lines) and any("accelerate launch" in line for line in lines)
    assert any(line.startswith("python benchmarks/") for line in lines)
    # install and test-runner lines are the only ones left unparsed: one per extra and a few set-up lines
    assert sum(line.startswith(NOT_PARSED) for line in command_lines(documentation())) <= 12
    assert words("mint cache-features --shard-index $(seq $m 4 63)")[-1] == "60"
    assert words("torchrun -m mint train r.json 'datasets=[{\"path\": \"c\"}]'")[-1] == 'datasets=[{"path": "c"}]'
    documented = set()
    for line in lines:
        arguments = mint_arguments(words(line)) if not line.startswith(NOT_PARSED) else None
        if arguments:
            documented |= {leaf for leaf in _sub_commands(build_parser()) if tuple(arguments[:len(leaf)]) == leaf}
    assert documented == _sub_commands(build_parser())  # every `mint` command is shown at work somewhere


def test_the_readme_opens_with_the_two_setup_commands():
    """The README's first lines install and run the demo, and install and run the tests with the command CI runs."""
    readme = read("README.md")
    first_block = re.match(r"# [^\n]+\n\n```bash\n(.*?)```", readme, re.S)
    assert first_block, "the README does not open with its set-up commands"
    commands = [re.sub(r"\s+#.*$", "", line) for line in first_block.group(1).splitlines()]
    assert commands == ["bash install.sh && mint demo --output mint-demo",
                        "bash install.sh && python -m pytest -q tests"]
    assert "\npython -m pytest -q tests\n" in read(".ci/run")
