"""The data commands: `mint data prepare` and `mint data layouts` (the paper's dataset releases read into `datasets`
folders) and `mint cache-features` (the frozen audio encoder run once over a dataset)."""

import argparse
import json
import os

from mint.cli.arguments import byte_size, nonnegative_int, positive_int, torch_device


# `mint cache-features`' defaults for computing shards, which `--merge` refuses when changed.
CACHE_DEFAULTS = {"split": None, "batch_size": 8, "dtype": "float32", "num_shards": 1}


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Adds `data` (with `prepare` and `layouts`) and `cache-features` to the `mint` parser's sub-commands."""
    data = commands.add_parser(
        "data", help="read a dataset release into a datasets folder",
        description="The paper's datasets, read as their official releases lay them out, written as `datasets` "
                    "folders for MINT.")
    steps = data.add_subparsers(dest="data_command", required=True, metavar="COMMAND")
    layouts = steps.add_parser("layouts", help="list the datasets and the release layout each is read from")
    layouts.set_defaults(handler=layouts_command)

    prepare = steps.add_parser(
        "prepare", help="read a release and write a datasets folder",
        description="Reads dataset NAME from its official release under ROOT and saves it as a `DatasetDict` in "
                    "--output, one split per official split. Clips the metadata lists but ROOT lacks are counted and "
                    "skipped.")
    prepare.add_argument("name", metavar="NAME", help="the dataset (`mint data layouts` lists them)")
    prepare.add_argument("root", metavar="ROOT", help="the folder holding the release as downloaded and extracted")
    prepare.add_argument("--output", required=True)
    prepare.add_argument("--missing-list", help="write the clips listed but not on disk to this file (split<TAB>clip)")
    prepare.add_argument("--labeled-only", action="store_true", help="drop rows whose label column is empty")
    prepare.add_argument("--check-headers", action="store_true",
                         help="open every clip's header with soundfile and skip the unreadable ones")
    prepare.add_argument("--overwrite", action="store_true",
                         help="replace a dataset folder written before, and the --missing-list and --json files")
    prepare.add_argument("--audio-dir", help="AudioSet / VGGSound / AudioCaps: the downloaded clips (default: ROOT)")
    prepare.add_argument("--blacklist", action="append", help="WavCaps: json_files/blacklist/*.json to exclude")
    prepare.add_argument("--fma-size", choices=["small", "medium", "large", "full"],
                         help="FMA: which fma_<size> folder, if several")
    prepare.add_argument("--allow-pickle", action="store_true", help="OpenMIC: load a pickled sample_key array")
    prepare.add_argument("--json", help="also write the counts as JSON to this file")
    prepare.add_argument("--quiet", action="store_true", help="no progress bar")
    prepare.set_defaults(handler=prepare_command)

    cache = commands.add_parser(
        "cache-features", help="run the frozen audio encoder once over a dataset",
        description="Runs the frozen audio encoder of a MINT folder once over a dataset of MINT examples and saves "
                    "the examples with `audio_encoder_features` in place of `audio`. The work is split into shards; "
                    "a rerun skips the finished ones.")
    cache.add_argument("--model", help="a MINT folder (not needed with --merge)")
    cache.add_argument("--dataset", help="a dataset folder of MINT examples with an audio column (not with --merge)")
    cache.add_argument("--split", default=CACHE_DEFAULTS["split"],
                       help="the split of a dataset with several (default: train); refused for a dataset "
                            "without splits")
    cache.add_argument("--output", required=True)
    cache.add_argument("--batch-size", type=positive_int, default=CACHE_DEFAULTS["batch_size"])
    cache.add_argument("--dtype", choices=["float32", "float16"], default=CACHE_DEFAULTS["dtype"])
    cache.add_argument("--device", help="where the encoder runs (default: cuda when available, else cpu)")
    cache.add_argument("--num-proc", type=positive_int, default=None, help="encoder processes (on the CPU)")
    cache.add_argument("--num-shards", type=positive_int, default=CACHE_DEFAULTS["num_shards"],
                       help="split the work into this many shards; a rerun skips the finished ones")
    step = cache.add_mutually_exclusive_group()
    step.add_argument("--shard-index", type=nonnegative_int, nargs="+", default=None, metavar="I",
                      help="compute only these shards (one machine's share); then --merge once all are finished")
    step.add_argument("--merge", action="store_true", help="merge the finished shards into --output")
    cache.add_argument("--max-shard-size", type=byte_size, default=None,
                       help="size of the merged cache's Arrow files (e.g. 500MB; default 500MB)")
    cache.add_argument("--skip-invalid", action="store_true",
                       help="leave out clips the processor refuses (listed in skipped_clips.json) instead of stopping")
    cache.add_argument("--overwrite", action="store_true",
                       help="replace a dataset folder in --output (a cache of other data); other folders never")
    cache.add_argument("--quiet", action="store_true", help="no progress bar")
    cache.set_defaults(handler=cache_features_command)


def layouts_command(args: argparse.Namespace) -> None:
    """`mint data layouts`: one line per dataset, its name and the release layout it is read from."""
    from mint.data.release_layouts import LAYOUTS

    for layout in LAYOUTS.values():
        print(f"{layout.name:<10} {layout.layout}")


def prepare_command(args: argparse.Namespace) -> None:
    """`mint data prepare`: writes the folder (and `--missing-list`, `--json`) and prints the counts per split. The
    files are checked before the release is read: one that exists is replaced only with `--overwrite`."""
    from mint.data.outputs import check_output_file, write_json
    from mint.data.releases import prepare_dataset

    if args.json is not None:
        path = os.path.abspath(args.json)
        if args.missing_list is not None and path == os.path.abspath(args.missing_list):
            raise ValueError(f"--json and --missing-list name the same file {args.json!r}; give each its own.")
        check_output_file(args.json, args.overwrite, "--json", outside=args.output)

    options = {"audio_dir": args.audio_dir, "blacklist": args.blacklist, "fma_size": args.fma_size,
               "allow_pickle": args.allow_pickle or None}
    options = {k: v for k, v in options.items() if v is not None}
    result = prepare_dataset(args.name, args.root, args.output, args.missing_list, args.labeled_only,
                             args.check_headers, args.overwrite, not args.quiet, **options)
    print(result.summary())
    if args.json is not None:
        write_json(args.json, {"name": result.name, "output": result.output, "notes": result.notes,
                               "splits": {s: vars(c) for s, c in result.counts.items()}}, indent=2)


def cache_features_command(args: argparse.Namespace) -> None:
    """`mint cache-features`: this run's shards of the cache (all of them, then merged, by default), or with `--merge`
    the merge of shards finished before. Options of the other step are refused rather than ignored."""
    if args.merge:
        given = [option for option, value in (("--model", args.model), ("--dataset", args.dataset),
                                              ("--device", args.device), ("--num-proc", args.num_proc),
                                              ("--skip-invalid", args.skip_invalid)) if value]
        given += [f"--{name.replace('_', '-')}" for name, default in CACHE_DEFAULTS.items()
                  if getattr(args, name) != default]
        if given:
            raise ValueError(f"--merge merges the shards finished before, as they were computed: {', '.join(given)} "
                             "apply when computing them (without --merge).")
        from mint.data.cache import merge_feature_cache

        merge_feature_cache(args.output, max_shard_size=args.max_shard_size, progress=not args.quiet,
                            overwrite=args.overwrite)
        print(f"mint cache-features: shards merged into {args.output}.")
        return
    if not args.model or not args.dataset:
        raise ValueError("cache-features needs --model and --dataset (or --merge to merge finished shards)")
    if args.shard_index is not None and args.max_shard_size is not None:
        raise ValueError("--max-shard-size sets the merged cache's files: give it with --merge, not --shard-index.")
    outside = [index for index in args.shard_index or [] if index >= args.num_shards]
    if outside:
        raise ValueError(f"--shard-index {outside} lies outside the {args.num_shards} shards of --num-shards "
                         f"(indices 0..{args.num_shards - 1}).")
    if not os.path.isdir(args.model):
        raise ValueError(f"--model {args.model!r}: no such folder; expected a saved MINT folder (its frozen audio "
                         "encoder computes the features).")
    device = torch_device(args.device)
    from checkpoint_mint import mint_stage
    from mint.data.cache import SKIPPED_CLIPS_FILE, cache_audio_features
    from mint.data.splits import load_split
    from modeling_mint import MintForPreTraining
    from processing_mint import MintProcessor

    mint_stage(args.model)  # a folder that is not a MINT model is refused with the reason
    model = MintForPreTraining.from_pretrained(args.model).to(device)
    cached = cache_audio_features(model, MintProcessor.from_pretrained(args.model),
                                  load_split(args.dataset, args.split, "--split"), args.output,
                                  batch_size=args.batch_size, dtype=args.dtype, progress=not args.quiet,
                                  num_proc=args.num_proc, num_shards=args.num_shards, shard_indices=args.shard_index,
                                  max_shard_size=args.max_shard_size, skip_invalid=args.skip_invalid,
                                  overwrite=args.overwrite)
    if cached is None:
        print(f"mint cache-features: shards {args.shard_index} finished; merge them with --merge.")
        return
    skipped = os.path.join(args.output, SKIPPED_CLIPS_FILE)
    left_out = 0
    if os.path.isfile(skipped):
        with open(skipped) as f:
            left_out = len(json.load(f))
    print(f"mint cache-features: {len(cached)} examples cached in {args.output}"
          + (f"; {left_out} clips left out, listed in {skipped}." if left_out else "."))
