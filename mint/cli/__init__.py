"""
`mint`: the toolkit's one command (also `python -m mint`).

    mint train RECIPE.json [key=value ...]     train one stage from a recipe
    mint recipe {stage1,stage2}                print the paper's recipe for a stage as JSON
    mint plan RECIPE.json                      resolve a recipe's data; print sizes, steps and memory
    mint cache-features ...                    run the frozen audio encoder once over a dataset
    mint eval {classify,retrieval,caption,zero-shot,leakage} ...
    mint data {prepare,layouts} ...            read a dataset release into a datasets folder
    mint corpus ...                            render the demo's corpus
    mint convert-whisper ...                   convert a CTranslate2 Whisper encoder to transformers
    mint demo ...                              the end-to-end demo on real parts
    mint ablate ...                            stage 1 by objective set on the demo's data (Table 5)

Each area's parsers live in a module of this package (`train`, `evaluate`, `data`, `demo`), which imports only the
standard library at import time: a command's handler imports the toolkit when it runs, so `mint --help` answers
without loading torch. A failed command prints `error: ...` on stderr and exits 1; `--debug` shows the traceback.
"""

import argparse
import sys

from mint.cli import app, data, demo, evaluate, hub, train


def build_parser() -> argparse.ArgumentParser:
    """The `mint` parser with every sub-command."""
    parser = argparse.ArgumentParser(prog="mint", description="MINT audio-language model: training, evaluation, "
                                                              "data and demo.")
    parser.add_argument("--debug", action="store_true", help="show the full traceback when a command fails")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for area in (train, evaluate, data, demo, app, hub):
        area.add_commands(commands)
    return parser


def command_parser(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """The parser of the sub-command `args` selected (`mint eval classify`'s for `mint eval classify ...`)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and getattr(args, action.dest, None) in action.choices:
            return command_parser(action.choices[getattr(args, action.dest)], args)
    return parser


def main(argv: list[str] | None = None) -> int:
    """
    Runs `mint` with `argv` (default: the process's arguments); returns the exit status. An argument no parser knows
    is refused by the sub-command's own parser, which names it with that sub-command's usage (exit 2).
    """
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        command_parser(parser, args).error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        return args.handler(args) or 0
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # every failure reaches the user as one line; --debug keeps the traceback
        if args.debug:
            raise
        print(f"error: {error}", file=sys.stderr)
        return 1
