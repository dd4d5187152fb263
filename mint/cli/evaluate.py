"""
`mint eval`: the paper's benchmarks (Tables 2-6) on a dataset folder.

    mint eval classify  --model M --dataset D --template NSynth [--label-column label] [--multi-label]
                        [--length-normalize]                              # vocabulary ranking (Table 2)
    mint eval zero-shot --model M --dataset D --label-column label        # stage-1 embeddings (Table 6)
    mint eval retrieval --model M --dataset D --caption-column captions [--rerank-top-k 10]
    mint eval caption   --model M --dataset D --caption-column captions [--num-beams 3 --max-new-tokens 30]
    mint eval leakage   --train T1 [T2 ...] --dataset D

Each writes a JSON of every metric and prediction (with the settings used) and a Markdown table laid out like the
paper's next to it, and prints the table and a summary. Long clips follow `--long-audio-policy` (default: the
processor's); `--skip-invalid` skips the clips the processor refuses, and lists them in the JSON.
"""

import argparse
import os
import re
from typing import Any

from mint.cli.arguments import positive_int


TASKS = {
    "classify": "classification by vocabulary ranking with a stage-2 model (Table 2)",
    "zero-shot": "zero-shot classification by stage-1 embeddings and label prompts (Table 6)",
    "retrieval": "text-to-audio and audio-to-text retrieval with a stage-1 model (Table 3)",
    "caption": "captioning with a stage-2 model (Table 4)",
    "leakage": "clips shared between training datasets and the evaluation dataset",
}
# The stage of the model each task evaluates (section 2.2: stage 1, section 2.3: stage 2).
STAGE_OF_TASK = {"classify": 2, "zero-shot": 1, "retrieval": 1, "caption": 2}

# A model named on the Hub: `owner/name` (anything else that is not a local folder is refused).
HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*")


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Adds `mint eval {classify,retrieval,caption,zero-shot,leakage}`."""
    parser = subparsers.add_parser("eval", help="evaluate on the paper's benchmarks (Tables 2-6)",
                                   description=__doc__.strip(),
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    tasks = parser.add_subparsers(dest="task", required=True, metavar="TASK")
    for name, description in TASKS.items():
        task = tasks.add_parser(name, help=description, description=description)
        task.set_defaults(handler=evaluate)
        task.add_argument("--dataset", required=True, help="a dataset folder (save_to_disk, or an audio folder)")
        task.add_argument("--split", default="test", help="the split of a dataset with several (default: test)")
        task.add_argument("--audio-column", default="audio")
        task.add_argument("--output", default="mint_eval.json", help="the JSON of every metric and prediction; the "
                          "Markdown table goes next to it (.md)")
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
        if name in ("classify", "zero-shot"):
            task.add_argument("--label-column", default="label")
            task.add_argument("--known-column", help="multi-label: the labels annotated for each clip")
            task.add_argument("--candidates", help="comma-separated candidate labels (default: the dataset's labels)")
            task.add_argument("--multi-label", action="store_true")
        if name == "classify":
            prompt = task.add_mutually_exclusive_group(required=True)
            prompt.add_argument("--template", help="a Table-1 template name, whose prompt is used")
            prompt.add_argument("--prompt", help="the instruction before the candidates (instead of --template)")
            task.add_argument("--length-normalize", action="store_true",
                              help="rank the candidates by their mean log-likelihood per token instead of the sum "
                                   "(the paper's), which favours short labels")
        if name == "zero-shot":
            task.add_argument("--label-template", help="each label's text, with {label} where the label goes "
                                                       "(default: 'This is a sound of {label}.')")
            task.add_argument("--prompt", help=argparse.SUPPRESS)
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

    check_report_output(args.output)
    result = _result(args)
    result.update(model=getattr(args, "model", None), dataset=args.dataset, split=args.split)
    table, table_path = write_report(result, args.output, args.name,
                                     os.path.basename(os.path.normpath(args.dataset)))
    print(table)
    print(f"mint eval {args.task}: {summary(result, args.output, table_path)}")
    return 0


def _result(args: argparse.Namespace) -> dict[str, Any]:
    """The evaluation's result, from the library function of its task."""
    if args.task == "zero-shot" and args.prompt is not None:
        raise ValueError("zero-shot scores label prompts: give the label's text with --label-template (e.g. "
                         "'This is a sound of {label}.'); --prompt is for classify and caption.")
    candidates = _candidates(args.candidates) if args.task in ("classify", "zero-shot") else None
    from mint.data.examples import load_local_dataset

    if args.task != "leakage":
        _check_stage(args.model, STAGE_OF_TASK[args.task])
    dataset = load_local_dataset(args.dataset, args.split)
    if args.task == "leakage":
        from mint.evaluation.leakage import leakage_report

        return leakage_report([load_local_dataset(p, args.train_split) for p in args.train], dataset,
                              args.audio_column, args.id_column)
    model, processor = _model_and_processor(args.model, STAGE_OF_TASK[args.task])
    common = dict(batch_size=args.batch_size, progress=not args.quiet, audio_column=args.audio_column,
                  long_audio_policy=args.long_audio_policy, skip_invalid=args.skip_invalid)
    if args.task in ("classify", "zero-shot"):
        from mint.evaluation.classification import evaluate_classification

        if args.task == "classify":
            return evaluate_classification(model, processor, dataset, args.label_column, candidates,
                                           prompt=args.prompt, template=args.template, multi_label=args.multi_label,
                                           known_column=args.known_column, length_normalize=args.length_normalize,
                                           **common)
        return evaluate_classification(model, processor, dataset, args.label_column, candidates,
                                       multi_label=args.multi_label, known_column=args.known_column, mode="embedding",
                                       label_template=args.label_template, **common)
    if args.task == "retrieval":
        from mint.evaluation.retrieval import evaluate_retrieval

        return evaluate_retrieval(model, processor, dataset, args.caption_column, args.rerank_top_k, **common)
    from mint.data.templates import get_template
    from mint.evaluation.captioning import evaluate_captioning

    prompt = args.prompt if args.prompt is not None else get_template("Clotho").prompt
    return evaluate_captioning(model, processor, dataset, args.caption_column, prompt, args.num_beams,
                               args.max_new_tokens, allow_empty=args.allow_empty, **common)


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
