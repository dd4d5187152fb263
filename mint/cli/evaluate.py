"""
`mint eval`: the paper's benchmarks (Tables 2-6) on a dataset folder.

    mint eval classify  --model M --dataset D --template NSynth [--label-column label] [--multi-label]
                        [--length-normalize] [--calibrate]                # vocabulary ranking (Table 2)
    mint eval zero-shot --model M --dataset D --label-column label        # stage-1 embeddings (Table 6)
                        [--label-template T ...]
    mint eval few-shot  --model M --dataset D --support S --shots 4       # stage-1 embeddings + labelled clips
    mint eval retrieval --model M --dataset D --caption-column captions [--rerank-top-k 10]
    mint eval caption   --model M --dataset D --caption-column captions [--num-beams 3 --max-new-tokens 30]
    mint eval leakage   --train T1 [T2 ...] --dataset D

Each writes a JSON of every metric and prediction (with the settings used) and a Markdown table laid out like the
paper's next to it, and prints the table and a summary; an existing file it did not write is replaced only with
`--overwrite`. Long clips follow `--long-audio-policy` (default: the processor's); `--skip-invalid` skips the clips
the processor refuses, and lists them in the JSON.
"""

import argparse
import os
import re
from typing import Any

from mint.cli.arguments import nonnegative_float, nonnegative_int, positive_int


TASKS = {
    "classify": "classification by vocabulary ranking with a stage-2 model (Table 2)",
    "zero-shot": "zero-shot classification by stage-1 embeddings and label prompts (Table 6)",
    "few-shot": "few-shot classification by stage-1 embeddings with a cache of labelled support clips (Tip-Adapter)",
    "retrieval": "text-to-audio and audio-to-text retrieval with a stage-1 model (Table 3)",
    "caption": "captioning with a stage-2 model (Table 4)",
    "leakage": "clips shared between training datasets and the evaluation dataset",
}
# The stage of the model each task evaluates (section 2.2: stage 1, section 2.3: stage 2).
STAGE_OF_TASK = {"classify": 2, "zero-shot": 1, "few-shot": 1, "retrieval": 1, "caption": 2}

# A model named on the Hub: `owner/name` (anything else that is not a local folder is refused).
HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*")


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Adds `mint eval {classify,zero-shot,few-shot,retrieval,caption,leakage}`."""
    parser = subparsers.add_parser("eval", help="evaluate on the paper's benchmarks (Tables 2-6)",
                                   description=__doc__.strip(),
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    tasks = parser.add_subparsers(dest="task", required=True, metavar="TASK")
    for name, description in TASKS.items():
        task = tasks.add_parser(name, help=description, description=description)
        task.set_defaults(handler=evaluate)
        task.add_argument("--dataset", required=True, help="a dataset folder (save_to_disk, or an audio folder)")
        task.add_argument("--split", help="the split of a dataset with several (default: test); refused for a "
                                          "dataset without splits")
        task.add_argument("--audio-column", default="audio",
                          help="the column of the clips (default: audio); audio_encoder_features reads a feature "
                               "cache (mint cache-features) of the model's encoder instead of running it")
        task.add_argument("--output", default="mint_eval.json", help="the JSON of every metric and prediction; the "
                          "Markdown table goes next to it (.md)")
        task.add_argument("--overwrite", action="store_true",
                          help="replace an existing --output (or its .md) that mint eval did not write")
        task.add_argument("--name", default="MINT", help="the row name in the Markdown table")
        task.add_argument("--quiet", action="store_true", help="no progress bars")
        if name == "leakage":
            task.add_argument("--train", nargs="+", required=True, help="training dataset folders")
            task.add_argument("--train-split", default="train")
            task.add_argument("--id-column", help="a column of clip identifiers, compared as well")
            continue
        task.add_argument("--model", required=True, help=f"a MINT folder (stage {STAGE_OF_TASK[name]})")
        task.add_argument("--batch-size", type=positive_int, default=8)
        task.add_argument("--long-audio-policy", choices=["crop", "window"],
                          help="clips longer than the processor's max_audio_seconds (default: the processor's policy)")
        task.add_argument("--skip-invalid", action="store_true",
                          help="skip (and count) clips the processor refuses, instead of stopping")
        if name in ("classify", "zero-shot", "few-shot"):
            task.add_argument("--label-column", default="label")
            task.add_argument("--candidates", help="comma-separated candidate labels (default: the dataset's labels)")
        if name in ("classify", "zero-shot"):
            task.add_argument("--known-column", help="multi-label (with --multi-label): the labels annotated for each "
                                                     "clip")
            task.add_argument("--multi-label", action="store_true")
        if name == "classify":
            prompt = task.add_mutually_exclusive_group(required=True)
            prompt.add_argument("--template", help="a Table-1 template name, whose prompt is used")
            prompt.add_argument("--prompt", help="the instruction before the candidates (instead of --template)")
            task.add_argument("--length-normalize", action="store_true",
                              help="rank the candidates by their mean log-likelihood per token instead of the sum "
                                   "(the paper's), which favours short labels")
            task.add_argument("--calibrate", action="store_true",
                              help="subtract each candidate's score for a content-free input (a silent clip) from "
                                   "its scores: the LLM's prior for a label no longer decides the ranking")
        if name in ("zero-shot", "few-shot"):
            templates = task.add_mutually_exclusive_group()
            templates.add_argument("--label-template", action="append",
                                   help="a label's text, with {label} or {} where the label goes; repeat it for a set "
                                        "whose text embeddings are averaged (default: 'This is a sound of {}.', 'The "
                                        "sound of {}.', 'A sound of {}.', 'A recording of {}.')")
            templates.add_argument("--label-template-file",
                                   help="a UTF-8 text file of label templates, one per line (blank lines ignored)")
            task.add_argument("--prompt", help=argparse.SUPPRESS)
        if name == "few-shot":
            task.add_argument("--support", required=True, help="a dataset folder of labelled support clips (never "
                                                               "the evaluated clips)")
            task.add_argument("--support-split", help="the split of --support with several (default: train)")
            task.add_argument("--shots", type=positive_int, required=True,
                              help="labelled support clips per candidate label (K)")
            task.add_argument("--alpha", type=nonnegative_float,
                              help="the weight of the cache's logits (default: Tip-Adapter's 1.0)")
            task.add_argument("--beta", type=nonnegative_float,
                              help="the sharpness of the cache's affinities (default: Tip-Adapter's 5.5)")
            task.add_argument("--search", action="store_true",
                              help="choose alpha and beta by leave-one-out on the support clips")
            task.add_argument("--seed", type=nonnegative_int, default=0, help="which support clips are drawn")
        if name in ("retrieval", "caption"):
            task.add_argument("--caption-column", nargs="+", default=["caption"])
        if name == "retrieval":
            task.add_argument("--rerank-top-k", type=positive_int,
                              help="re-order each text query's top k clips by the ALM matching head")
        if name == "caption":
            task.add_argument("--prompt", help="the instruction (default: the Clotho template's, Table 1)")
            task.add_argument("--num-beams", type=positive_int, default=3)
            task.add_argument("--max-new-tokens", type=positive_int, default=30)
            task.add_argument("--allow-empty", action="store_true",
                              help="score empty generated captions instead of failing")


def evaluate(args: argparse.Namespace) -> int:
    """Evaluates as `args` say, writes the JSON and the Markdown table, and prints the table and a summary."""
    from mint.evaluation.reports import check_report_output, summary, write_report

    check_report_output(args.output, args.overwrite)
    result = _result(args)
    table, table_path = write_report(result, args.output, args.name,
                                     os.path.basename(os.path.normpath(args.dataset)), args.overwrite)
    print(table)
    print(f"mint eval {args.task}: {summary(result, args.output, table_path)}")
    return 0


def _result(args: argparse.Namespace) -> dict[str, Any]:
    """The evaluation's result, from the library function of its task, with the model, dataset and split recorded."""
    from mint.data.splits import load_split, split_to_read

    _check_options(args)
    candidates = _candidates(args.candidates) if args.task in ("classify", "zero-shot", "few-shot") else None
    templates = _label_templates(args) if args.task in ("zero-shot", "few-shot") else None
    if args.task != "leakage":
        _check_stage(args.model, STAGE_OF_TASK[args.task])
    split = split_to_read(args.dataset, args.split, "--split", default="test")
    dataset = load_split(args.dataset, args.split, "--split", default="test")
    place = {"model": getattr(args, "model", None), "dataset": args.dataset, "split": split}
    if args.task == "leakage":
        from mint.data.examples import load_local_dataset
        from mint.evaluation.leakage import leakage_report

        return {**leakage_report([load_local_dataset(p, args.train_split) for p in args.train], dataset,
                                 args.audio_column, args.id_column), **place}
    if args.task == "few-shot":
        support_split = split_to_read(args.support, args.support_split, "--support-split")
        support = load_split(args.support, args.support_split, "--support-split")
        place.update(support=args.support, support_split=support_split)
    model, processor = _model_and_processor(args.model, STAGE_OF_TASK[args.task])
    from audio_encoder_mint import ENCODER_FEATURES_KEY

    if args.audio_column == ENCODER_FEATURES_KEY:
        from mint.data.cache import check_feature_cache

        for folder, part in ((args.dataset, split), (getattr(args, "support", None), place.get("support_split"))):
            if folder:
                inner = os.path.join(folder, part) if part else folder
                check_feature_cache(inner if os.path.isdir(inner) else folder, model, processor)
    common = dict(batch_size=args.batch_size, progress=not args.quiet, audio_column=args.audio_column,
                  long_audio_policy=args.long_audio_policy, skip_invalid=args.skip_invalid)
    if args.task in ("classify", "zero-shot"):
        from mint.evaluation.classification import evaluate_classification

        if args.task == "classify":
            result = evaluate_classification(model, processor, dataset, args.label_column, candidates,
                                             prompt=args.prompt, template=args.template,
                                             multi_label=args.multi_label, known_column=args.known_column,
                                             length_normalize=args.length_normalize, calibrate=args.calibrate,
                                             **common)
        else:
            result = evaluate_classification(model, processor, dataset, args.label_column, candidates,
                                             multi_label=args.multi_label, known_column=args.known_column,
                                             mode="embedding", label_template=templates, **common)
    elif args.task == "few-shot":
        from mint.evaluation.few_shot import DEFAULT_ALPHA, DEFAULT_BETA, evaluate_few_shot

        result = evaluate_few_shot(model, processor, dataset, support, args.shots, args.label_column, candidates,
                                   templates, DEFAULT_ALPHA if args.alpha is None else args.alpha,
                                   DEFAULT_BETA if args.beta is None else args.beta, args.search, args.seed,
                                   **common)
    elif args.task == "retrieval":
        from mint.evaluation.retrieval import evaluate_retrieval

        result = evaluate_retrieval(model, processor, dataset, args.caption_column, args.rerank_top_k, **common)
    else:
        from mint.data.templates import get_template
        from mint.evaluation.captioning import evaluate_captioning

        prompt = args.prompt if args.prompt is not None else get_template("Clotho").prompt
        result = evaluate_captioning(model, processor, dataset, args.caption_column, prompt, args.num_beams,
                                     args.max_new_tokens, allow_empty=args.allow_empty, **common)
    return {**result, **place}


def _check_options(args: argparse.Namespace) -> None:
    """Refuses, before anything loads, options that do not go together or values that cannot be right."""
    if args.task in ("zero-shot", "few-shot") and args.prompt is not None:
        raise ValueError(f"{args.task} scores label prompts: give the label's text with --label-template (e.g. "
                         "'This is a sound of {label}.'); --prompt is for classify and caption.")
    if getattr(args, "known_column", None) is not None and not args.multi_label:
        raise ValueError(f"--known-column {args.known_column!r} names the labels annotated for each clip of a "
                         "multi-label dataset; add --multi-label, or leave --known-column out.")
    if args.task == "few-shot" and args.search and (args.alpha is not None or args.beta is not None):
        raise ValueError("--search chooses alpha and beta on the support clips; leave out --alpha and --beta, or "
                         "--search.")
    if args.task in ("classify", "caption") and args.prompt is not None:
        from pipelines_mint import check_prompt

        check_prompt(args.prompt, name="--prompt", use="the candidates" if args.task == "classify" else "its caption")


def _label_templates(args: argparse.Namespace) -> str | list[str] | None:
    """The label templates of `--label-template` (repeated) or of `--label-template-file`, checked: one template as
    it is (the result records it so), several as a list; None for the default set."""
    from pipelines_mint import check_label_templates

    if args.label_template_file is None:
        if args.label_template is None:
            return None
        templates = check_label_templates(args.label_template, "--label-template")
        return templates[0] if len(templates) == 1 else templates
    path = args.label_template_file
    try:
        with open(path, encoding="utf-8") as f:
            lines = [line.strip() for line in f]
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"--label-template-file {path!r} cannot be read as UTF-8 text: {error}") from None
    templates = [line for line in lines if line]
    if not templates:
        raise ValueError(f"--label-template-file {path!r} holds no template; expected one per line, e.g. "
                         "'This is a sound of {}.'.")
    return check_label_templates(templates, f"--label-template-file {path!r}: template")


def _candidates(option: str | None) -> list[str] | None:
    """The labels of `--candidates` (comma-separated, spaces around them dropped), checked before anything loads."""
    if option is None:
        return None
    from processing_mint import check_candidate_labels

    return check_candidate_labels([label.strip() for label in option.split(",")], "--candidates")


def _check_stage(path: str, stage: int) -> None:
    """Refuses a local folder that is not a MINT model of `stage`, and a `--model` that is neither a folder here nor a
    Hub id (`owner/name`), which would otherwise be looked up on the Hub."""
    from checkpoint_mint import mint_stage

    if not os.path.isdir(path) and not HUB_ID.fullmatch(path):
        raise ValueError(f"--model {path!r}: no such folder here (a file is not a model folder either), and not a "
                         "Hub id of the form owner/name.")
    found = mint_stage(path) if os.path.isdir(path) else stage
    if found != stage:
        raise ValueError(f"{path!r} holds a stage-{found} MINT model; this task evaluates a stage-{stage} one "
                         "(classify and caption: stage 2, zero-shot and retrieval: stage 1).")


def _model_and_processor(path: str, stage: int):
    """The model of `stage` (on the GPU when there is one, in eval mode) and the processor of the MINT folder `path`."""
    import torch

    from modeling_mint import MintForConditionalGeneration, MintForPreTraining
    from processing_mint import MintProcessor

    processor = MintProcessor.from_pretrained(path)
    model = (MintForConditionalGeneration if stage == 2 else MintForPreTraining).from_pretrained(path).eval()
    if torch.cuda.is_available():
        model.cuda()
    return model, processor
