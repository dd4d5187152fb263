"""The training commands: `mint train` (one stage from a recipe), `mint recipe` (the paper's recipe for a stage) and
`mint plan` (a recipe's data, steps and memory, before any GPU is rented)."""

import argparse
import dataclasses
import json
import sys

from mint.cli.arguments import positive_float, positive_int


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Adds `train`, `recipe` and `plan` to the `mint` parser's sub-commands."""
    train = commands.add_parser(
        "train", help="train one stage from a recipe file",
        description="Trains one MINT stage from a JSON recipe (`mint recipe stage1` writes the paper's), resuming from "
                    "the last complete checkpoint in its output_dir. Under torchrun or accelerate launch, every "
                    "process runs this command.")
    _add_recipe_arguments(train)
    train.add_argument("--max-train-minutes", type=positive_float, metavar="MINUTES",
                       help="the recipe's max_train_minutes: a wall-clock budget")
    train.add_argument("--skip-invalid-examples", action="store_true",
                       help="the recipe's skip_invalid_examples: skip (and count) invalid examples instead of stopping")
    train.add_argument("--overwrite", action="store_true",
                       help="the recipe's overwrite: replace an output_dir that holds anything but a run of this "
                            "stage and model (refused otherwise)")
    train.set_defaults(handler=train_command)

    recipe = commands.add_parser("recipe", help="print the paper's recipe for a stage as JSON",
                                 description="Prints the paper's settings for a stage (section 3.2) as a JSON recipe.")
    recipe.add_argument("stage", choices=["stage1", "stage2"])
    recipe.set_defaults(handler=recipe_command)

    plan = commands.add_parser(
        "plan", help="resolve a recipe's datasets; print its sizes, steps, memory",
        description="Resolves every dataset of a recipe without decoding audio, runs the checks `mint train` runs "
                    "before it starts, and prints the examples, optimizer steps, memory per process and feature-cache "
                    "size of the run.")
    _add_recipe_arguments(plan)
    plan.add_argument("--processes", type=positive_int, default=1, metavar="N",
                      help="training processes (GPUs), default 1")
    plan.add_argument("--accumulation", type=positive_int, metavar="STEPS",
                      help="gradient accumulation steps (default: the recipe's)")
    plan.add_argument("--model", metavar="FOLDER",
                      help="a MINT folder to count parameters from instead of the recipe's model")
    plan.add_argument("--cache-dtype", choices=["float16", "float32"], default="float16")
    plan.add_argument("--json", metavar="FILE", help="also write the plan as JSON to this file")
    plan.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    plan.set_defaults(handler=plan_command)


def _add_recipe_arguments(parser: argparse.ArgumentParser) -> None:
    """A recipe file and the `KEY=VALUE` overrides that follow it."""
    parser.add_argument("recipe", help="a JSON recipe file")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="override a recipe field (the value read as JSON where it parses); given right after "
                             "the recipe, options before the recipe or after the last override")


def checked_overrides(overrides: list[str], options: dict[str, str | None]) -> list[str]:
    """
    The `KEY=VALUE` overrides, refused when one names a key twice, or a key that one of the given `options`
    (`{"--max-train-minutes": "max_train_minutes"}`; None: the option is not given) sets as well.
    """
    keys = [item.partition("=")[0].strip() for item in overrides]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise ValueError(f"The overrides set {', '.join(map(repr, repeated))} more than once; give each key once.")
    both = [f"{option} and {key}=" for option, key in options.items() if key is not None and key in keys]
    if both:
        raise ValueError(f"{'; '.join(both)} set the same recipe field: give one of them.")
    return list(overrides)


def train_command(args: argparse.Namespace) -> None:
    """`mint train`: trains, then prints the steps taken, the invalid examples skipped and where the model is."""
    from mint.training.recipe import load_recipe
    from mint.training.trainer import train

    overrides = checked_overrides(args.overrides, {
        "--max-train-minutes": None if args.max_train_minutes is None else "max_train_minutes",
        "--skip-invalid-examples": "skip_invalid_examples" if args.skip_invalid_examples else None,
        "--overwrite": "overwrite" if args.overwrite else None})
    if args.max_train_minutes is not None:
        overrides.append(f"max_train_minutes={args.max_train_minutes}")
    if args.skip_invalid_examples:
        overrides.append("skip_invalid_examples=true")
    if args.overwrite:
        overrides.append("overwrite=true")
    recipe = load_recipe(args.recipe, overrides)
    trainer = train(recipe)
    print(f"mint train: stage {recipe.stage}, {trainer.state.global_step} steps, "
          f"{trainer.skipped_examples} invalid examples skipped; the model is in {recipe.output_dir}.")


def recipe_command(args: argparse.Namespace) -> None:
    """`mint recipe`: the paper's recipe for the stage, as JSON on stdout."""
    from mint.training.recipe import default_recipe

    json.dump(dataclasses.asdict(default_recipe(int(args.stage[-1]))), sys.stdout, indent=2)
    print()


def plan_command(args: argparse.Namespace) -> None:
    """`mint plan`: prints the plan's report (and writes its JSON with `--json`: an existing file is replaced only with
    `--overwrite`, checked before the recipe's data is read)."""
    from mint.data.outputs import check_output_file, write_json
    from mint.training.plan import plan_recipe
    from mint.training.recipe import load_recipe

    if args.json is not None:
        check_output_file(args.json, args.overwrite, "--json")
    overrides = checked_overrides(args.overrides, {
        "--accumulation": None if args.accumulation is None else "gradient_accumulation_steps",
        "--model": None if args.model is None else "model"})
    plan = plan_recipe(load_recipe(args.recipe, overrides), args.processes, args.accumulation, args.model,
                       args.cache_dtype)
    plan.recipe = args.recipe
    print(plan.report())
    if args.json is not None:
        write_json(args.json, plan.to_dict(), indent=2)
