# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""Evaluating MINT on the paper's benchmarks (Tables 2-6): classification, retrieval, captioning, and a leakage check.

    mint-eval classify  --model M --dataset D --template NSynth [--label-column label] [--multi-label]
    mint-eval zero-shot --model M --dataset D --label-column label        # stage-1 embeddings (Table 6)
    mint-eval retrieval --model M --dataset D --caption-column captions [--rerank-top-k 10]
    mint-eval caption   --model M --dataset D --caption-column captions [--num-beams 3 --max-new-tokens 30]
    mint-eval leakage   --train T1 [T2 ...] --dataset D

Each writes a JSON of every metric (with the settings used) and a Markdown table laid out like the paper's.
"""

import argparse
import hashlib
import json
import os
import re
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from datasets import Dataset
from sklearn.metrics import average_precision_score, roc_auc_score
from tqdm.auto import tqdm


try:
    from .data_mint import (_check_columns, _label_names, _undecoded, get_template, label_text, load_local_dataset,
                            pad_audio_features)
    from .metrics_mint import compute_caption_metrics
except ImportError:  # installed as top-level modules
    from data_mint import (_check_columns, _label_names, _undecoded, get_template, label_text, load_local_dataset,
                           pad_audio_features)
    from metrics_mint import compute_caption_metrics


def _batches(dataset: Dataset, batch_size: int, progress: bool, description: str) -> Iterator[dict[str, list]]:
    with tqdm(total=len(dataset), desc=description, disable=not progress, unit="clip") as bar:
        for start in range(0, len(dataset), batch_size):
            batch = dataset[start : start + batch_size]
            yield batch
            bar.update(len(next(iter(batch.values()))))


def _to(inputs, device) -> dict[str, torch.Tensor]:
    return {k: v.to(device) for k, v in inputs.items() if k != "clip_index"}


def _device(model) -> torch.device:
    return next(model.parameters()).device


# ---- classification (Table 2, section 4.1; Table 6) ----------------------------------------------------------------

def _targets(dataset: Dataset, label_column: str, candidates: list[str], multi_label: bool) -> list:
    names = _label_names(dataset, label_column)
    known = set(candidates)
    targets = []
    for value in dataset[label_column]:
        labels = [label_text(v, names) for v in value] if isinstance(value, (list, tuple)) else [label_text(value, names)]
        outside = [label for label in labels if label not in known]
        if outside:
            raise ValueError(f"Labels {outside} are not in the candidate list {candidates}; every label must be a "
                             "candidate.")
        targets.append(labels if multi_label else labels[0])
    return targets


def candidate_labels(dataset: Dataset, label_column: str) -> list[str]:
    """The class names of a `ClassLabel` column, else the sorted distinct labels."""
    names = _label_names(dataset, label_column)
    if names is not None:
        return list(names)
    values = dataset[label_column]
    flat = [v for value in values for v in (value if isinstance(value, (list, tuple)) else [value])]
    return sorted({label_text(v) for v in flat})


@torch.no_grad()
def vocabulary_ranking_scores(model, processor, dataset: Dataset, candidates: list[str], prompt: str,
                              batch_size: int = 8, progress: bool = True, audio_column: str = "audio") -> np.ndarray:
    """`(clips, candidates)` summed log-likelihoods of each candidate under the prompt (section 4.1)."""
    if not candidates:
        raise ValueError("Got an empty candidate list; expected at least one label.")
    device = _device(model)
    tokens = _to(processor.tokenize_candidates(candidates), device)
    scores = []
    for batch in _batches(dataset, batch_size, progress, "Vocabulary ranking"):
        clips = batch[audio_column]
        inputs = _to(processor(audio=clips, text=[prompt] * len(clips)), device)
        scores.append(model.score_candidates(**tokens, **inputs).float().cpu().numpy())
    return np.concatenate(scores)


@torch.no_grad()
def embedding_scores(model, processor, dataset: Dataset, candidates: list[str],
                     label_template: str = "This is a sound of {label}.", batch_size: int = 8, progress: bool = True,
                     audio_column: str = "audio") -> np.ndarray:
    """`(clips, candidates)` stage-1 similarities to the label prompts (zero-shot by embeddings, Table 6)."""
    if not candidates:
        raise ValueError("Got an empty candidate list; expected at least one label.")
    device = _device(model)
    texts = processor(text=[label_template.format(label=c) for c in candidates], return_llm_inputs=False)
    text_embeds = model.get_text_features(texts["qformer_input_ids"].to(device),
                                          texts["qformer_attention_mask"].to(device)).pooler_output
    scores = []
    for batch in _batches(dataset, batch_size, progress, "Embedding audio"):
        audio_embeds = model.get_audio_features(**_to(processor(audio=batch[audio_column]), device)).pooler_output
        scores.append(model.audio_text_similarity(audio_embeds, text_embeds).float().cpu().numpy())
    return np.concatenate(scores)


def single_label_accuracy(scores: np.ndarray, targets: list[str], candidates: list[str]) -> float:
    index = {c: i for i, c in enumerate(candidates)}
    return float(np.mean(scores.argmax(axis=1) == np.array([index[t] for t in targets])))


def multi_label_auc(scores: np.ndarray, targets: list[list[str]], candidates: list[str],
                    known: list[list[str]] | None = None) -> dict[str, float]:
    """
    Macro PR-AUC (average precision) and ROC-AUC over the classes, OpenMIC-style: for each class only the clips where
    that class was annotated (`known`, default all) count, and classes without both a positive and a negative among
    them are left out.
    """
    pr, roc = [], []
    for j, name in enumerate(candidates):
        rows = [i for i in range(len(targets)) if known is None or name in known[i]]
        truth = np.array([name in targets[i] for i in rows])
        if truth.all() or not truth.any():
            continue
        pr.append(average_precision_score(truth, scores[rows, j]))
        roc.append(roc_auc_score(truth, scores[rows, j]))
    if not pr:
        raise ValueError("No class has both a positive and a negative clip: PR-AUC and ROC-AUC are undefined.")
    return {"pr_auc": float(np.mean(pr)), "roc_auc": float(np.mean(roc)), "classes_scored": len(pr)}


def evaluate_classification(model, processor, dataset: Dataset, label_column: str = "label",
                            candidates: list[str] | None = None, prompt: str | None = None, template: str | None = None,
                            multi_label: bool = False, known_column: str | None = None, mode: str = "llm",
                            batch_size: int = 8, progress: bool = True, audio_column: str = "audio") -> dict[str, Any]:
    """
    Classification of every clip: by vocabulary ranking under the LLM (`mode="llm"`, stage 2, Table 2) or by stage-1
    embedding similarity to label prompts (`mode="embedding"`, Table 6). Single-label: accuracy; multi-label:
    macro PR-AUC and ROC-AUC with missing annotations (`known_column`) ignored.
    """
    _check_columns(dataset, {"audio": audio_column, "label": label_column, "known labels": known_column})
    dataset = _undecoded(dataset, audio_column)
    candidates = list(candidates) if candidates is not None else candidate_labels(dataset, label_column)
    targets = _targets(dataset, label_column, candidates, multi_label)
    if mode == "llm":
        if prompt is None and template is None:
            raise ValueError("Vocabulary ranking needs a prompt or a Table-1 template name.")
        prompt = prompt or get_template(template).prompt
        scores = vocabulary_ranking_scores(model, processor, dataset, candidates, prompt, batch_size, progress,
                                           audio_column)
    elif mode == "embedding":
        scores = embedding_scores(model, processor, dataset, candidates, batch_size=batch_size, progress=progress,
                                  audio_column=audio_column)
    else:
        raise ValueError(f"mode must be 'llm' or 'embedding', got {mode!r}.")
    result: dict[str, Any] = {"task": "classification", "mode": mode, "prompt": prompt, "num_clips": len(targets),
                              "num_candidates": len(candidates)}
    if multi_label:
        known = [list(k) for k in dataset[known_column]] if known_column else None
        result.update(multi_label_auc(scores, targets, candidates, known))
    else:
        result["accuracy"] = single_label_accuracy(scores, targets, candidates)
        result["chance"] = 1.0 / len(candidates)
    result["predictions"] = [candidates[i] for i in scores.argmax(axis=1)]
    return result


# ---- retrieval (Table 3) -------------------------------------------------------------------------------------------

def retrieval_metrics(similarity: np.ndarray, relevant: list[set[int]], ks: Sequence[int] = (1, 5, 10)) -> dict:
    """
    R@k and mAP@10 for queries (rows) over items (columns). R@k: the fraction of queries with at least one relevant
    item in the top k. mAP@10: mean over queries of the average precision of the top 10, divided by
    min(number relevant, 10) (DCASE's definition; with one relevant item it is 1/rank when rank <= 10, else 0).
    """
    order = np.argsort(-similarity, axis=1, kind="stable")
    result = {}
    hits = np.array([[item in rel for item in row] for row, rel in zip(order, relevant)])
    for k in ks:
        result[f"R@{k}"] = float(hits[:, :k].any(axis=1).mean())
    top = hits[:, :10]
    precision = np.cumsum(top, axis=1) / np.arange(1, top.shape[1] + 1)
    denominators = np.array([min(len(rel), 10) for rel in relevant])
    result["mAP@10"] = float(((precision * top).sum(axis=1) / denominators).mean())
    return result


def _captions_per_clip(dataset: Dataset, caption_columns: Sequence[str]) -> list[list[str]]:
    _check_columns(dataset, {f"caption ({c})": c for c in caption_columns})
    if len(caption_columns) == 1:
        values = dataset[caption_columns[0]]
        return [list(v) if isinstance(v, (list, tuple)) else [v] for v in values]
    return [list(row) for row in zip(*(dataset[c] for c in caption_columns))]


@torch.no_grad()
def evaluate_retrieval(model, processor, dataset: Dataset, caption_columns: Sequence[str] = ("caption",),
                       rerank_top_k: int | None = None, batch_size: int = 8, progress: bool = True,
                       audio_column: str = "audio") -> dict[str, Any]:
    """
    Text-to-audio and audio-to-text retrieval with the stage-1 embeddings (section 4.1, Table 3). Every caption of a
    clip is a query (Clotho: five per clip, each with one relevant clip); for audio-to-text each clip is a query whose
    relevant items are its captions. With `rerank_top_k`, each text query's top k clips are re-ordered by the ALM
    matching probability (BLIP-2's re-ranking); the other clips keep their order below them.
    """
    _check_columns(dataset, {"audio": audio_column})
    dataset = _undecoded(dataset, audio_column)
    captions = _captions_per_clip(dataset, caption_columns)
    texts = [c for group in captions for c in group]
    owner = [i for i, group in enumerate(captions) for _ in group]
    device = _device(model)
    audio_embeds, features = [], []
    for batch in _batches(dataset, batch_size, progress, "Embedding audio"):
        inputs = _to(processor(audio=batch[audio_column]), device)
        hidden, mask = model.run_audio_encoder(**inputs)
        features.extend(h[: int(n)] for h, n in zip(hidden, mask.sum(-1)))
        audio_embeds.append(model.get_audio_features(audio_features=hidden, audio_attention_mask=mask).pooler_output)
    audio_embeds = torch.cat(audio_embeds)
    text_embeds = []
    for start in tqdm(range(0, len(texts), batch_size), desc="Embedding text", disable=not progress):
        tokens = _to(processor(text=texts[start : start + batch_size], return_llm_inputs=False), device)
        text_embeds.append(model.get_text_features(tokens["qformer_input_ids"],
                                                   tokens["qformer_attention_mask"]).pooler_output)
    similarity = model.audio_text_similarity(audio_embeds, torch.cat(text_embeds)).t().float().cpu().numpy()
    if rerank_top_k:
        similarity = _rerank(model, processor, similarity, texts, features, rerank_top_k, progress)
    text_to_audio = retrieval_metrics(similarity, [{clip} for clip in owner])
    audio_to_text = retrieval_metrics(similarity.T, [{j for j, o in enumerate(owner) if o == i}
                                                     for i in range(len(captions))])
    return {"task": "retrieval", "num_clips": len(captions), "num_captions": len(texts),
            "rerank_top_k": rerank_top_k, "text_to_audio": text_to_audio, "audio_to_text": audio_to_text,
            "counting": "text-to-audio: every caption is a query with its one clip relevant; audio-to-text: every "
                        "clip is a query, a hit if any of its captions is retrieved; mAP@10 over min(relevant, 10)"}


def _rerank(model, processor, similarity, texts, features, top_k, progress):
    device = _device(model)
    reranked = similarity.copy()
    for row in tqdm(range(len(texts)), desc="ALM re-ranking", disable=not progress):
        top = np.argsort(-similarity[row], kind="stable")[:top_k]
        tokens = processor(text=[texts[row]] * len(top), return_llm_inputs=False)
        audio, mask = pad_audio_features([features[i].float().cpu() for i in top])
        probability = model.get_matching_scores(
            tokens["qformer_input_ids"].to(device), tokens["qformer_attention_mask"].to(device),
            audio_features=audio.to(device), audio_attention_mask=mask.to(device)).float().cpu().numpy()
        reranked[row, top] = similarity[row].max() + 1.0 + probability  # above every clip outside the top k
    return reranked


# ---- captioning (Table 4) ------------------------------------------------------------------------------------------

@torch.no_grad()
def evaluate_captioning(model, processor, dataset: Dataset, caption_columns: Sequence[str] = ("caption",),
                        prompt: str = "Generate audio caption:", num_beams: int = 3, max_new_tokens: int = 30,
                        batch_size: int = 8, progress: bool = True, audio_column: str = "audio",
                        allow_empty: bool = False) -> dict[str, Any]:
    """Generates a caption per clip with the Table-1 captioning prompt and scores it against the references."""
    _check_columns(dataset, {"audio": audio_column})
    dataset = _undecoded(dataset, audio_column)
    references = _captions_per_clip(dataset, caption_columns)
    device = _device(model)
    predictions = []
    for batch in _batches(dataset, batch_size, progress, "Captioning"):
        clips = batch[audio_column]
        inputs = _to(processor(audio=clips, text=[prompt] * len(clips)), device)
        ids = model.generate(**inputs, num_beams=num_beams, max_new_tokens=max_new_tokens, do_sample=False)
        predictions.extend(text.strip() for text in processor.batch_decode(ids))
    metrics = compute_caption_metrics(predictions, references, allow_empty=allow_empty)
    return {"task": "captioning", "num_clips": len(predictions), "prompt": prompt,
            "generation": {"num_beams": num_beams, "max_new_tokens": max_new_tokens, "do_sample": False},
            **metrics, "predictions": predictions}


# ---- data leakage --------------------------------------------------------------------------------------------------

_FREESOUND_ID = re.compile(r"(?:^|[^0-9])(\d{3,9})(?:[^0-9]|$)")
_YOUTUBE_ID = re.compile(r"(?:^|[^A-Za-z0-9_-])([A-Za-z0-9_-]{11})(?:[^A-Za-z0-9_-]|$)")


def clip_identifiers(row_audio: dict | str, explicit_id: str | None = None) -> set[str]:
    """
    Identifiers of a clip for leakage checks: an explicit id, Freesound-style numeric ids and YouTube-style 11-character
    ids found in its file name, and the SHA-256 of its bytes when they are at hand.
    """
    ids = {f"id:{explicit_id}"} if explicit_id else set()
    path = row_audio if isinstance(row_audio, str) else (row_audio or {}).get("path")
    data = None if isinstance(row_audio, str) else (row_audio or {}).get("bytes")
    if path:
        stem = os.path.splitext(os.path.basename(path))[0]
        ids |= {f"freesound:{m}" for m in _FREESOUND_ID.findall(stem)}
        ids |= {f"youtube:{m}" for m in _YOUTUBE_ID.findall(stem) if not m.isdigit()}
        if data is None and os.path.isfile(path):
            with open(path, "rb") as f:
                data = f.read()
    if data is not None:
        ids.add("sha256:" + hashlib.sha256(data).hexdigest())
    return ids


def leakage_report(train_datasets: Sequence[Dataset], eval_dataset: Dataset, audio_column: str = "audio",
                   id_column: str | None = None) -> dict[str, Any]:
    """How many evaluation clips share an identifier with any training clip: check before calling a result zero-shot."""
    def identifiers(dataset):
        dataset = _undecoded(dataset, audio_column)
        ids = dataset[id_column] if id_column and id_column in dataset.column_names else [None] * len(dataset)
        return [clip_identifiers(audio, None if i is None else str(i)) for audio, i in zip(dataset[audio_column], ids)]

    seen = set().union(*(ids for dataset in train_datasets for ids in identifiers(dataset)))
    overlaps = [(index, sorted(ids & seen)) for index, ids in enumerate(identifiers(eval_dataset)) if ids & seen]
    return {"task": "leakage", "num_eval_clips": len(eval_dataset), "num_overlapping": len(overlaps),
            "fraction_overlapping": len(overlaps) / max(len(eval_dataset), 1),
            "examples": [{"eval_index": i, "shared": shared} for i, shared in overlaps[:20]]}


# ---- reports -------------------------------------------------------------------------------------------------------

def markdown_table(result: dict[str, Any], name: str = "MINT", dataset_name: str = "dataset") -> str:
    """The result as a row of the paper's table for its task (Tables 2, 3 and 4 use these columns)."""
    pct = lambda x: "n/a" if x is None else f"{100 * x:.2f}"  # noqa: E731
    if result["task"] == "classification":
        if "accuracy" in result:
            return f"| Method | {dataset_name} ACC |\n|---|---|\n| {name} | {pct(result['accuracy'])} |\n"
        return (f"| Method | {dataset_name} PR | {dataset_name} ROC |\n|---|---|---|\n"
                f"| {name} | {pct(result['pr_auc'])} | {pct(result['roc_auc'])} |\n")
    if result["task"] == "retrieval":
        t2a, a2t = result["text_to_audio"], result["audio_to_text"]
        cells = " | ".join(pct(t2a[k]) for k in ("R@1", "R@5", "R@10", "mAP@10"))
        back = " | ".join(pct(a2t[k]) for k in ("R@1", "R@5", "R@10", "mAP@10"))
        return ("| Method | T2A R@1 | T2A R@5 | T2A R@10 | T2A mAP@10 | A2T R@1 | A2T R@5 | A2T R@10 | A2T mAP@10 |\n"
                f"|---|---|---|---|---|---|---|---|---|\n| {name} | {cells} | {back} |\n")
    if result["task"] == "captioning":
        keys = ("spider", "rouge_l", "spice", "cider_d", "meteor", "bleu_1", "bleu_4")
        header = " | ".join({"spider": "SPIDEr", "rouge_l": "ROUGE_L", "spice": "SPICE", "cider_d": "CIDEr-D",
                             "meteor": "METEOR", "bleu_1": "BLEU-1", "bleu_4": "BLEU-4"}[k] for k in keys)
        return (f"| Methods | {header} |\n|{'---|' * (len(keys) + 1)}\n"
                f"| {name} | {' | '.join(pct(result[k]) for k in keys)} |\n")
    return (f"| Eval clips | Overlapping with training | Fraction |\n|---|---|---|\n"
            f"| {result['num_eval_clips']} | {result['num_overlapping']} | {pct(result['fraction_overlapping'])} |\n")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="mint-eval", description=__doc__.split("\n\n")[0])
    parser.add_argument("task", choices=["classify", "zero-shot", "retrieval", "caption", "leakage"])
    parser.add_argument("--model", help="a MINT checkpoint folder (stage 2 for classify/caption, stage 1 otherwise)")
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--train", nargs="*", default=[], help="training datasets (leakage)")
    parser.add_argument("--template")
    parser.add_argument("--prompt")
    parser.add_argument("--label-column", default="label")
    parser.add_argument("--known-column")
    parser.add_argument("--candidates", help="comma-separated candidate labels (default: the dataset's labels)")
    parser.add_argument("--multi-label", action="store_true")
    parser.add_argument("--caption-column", nargs="+", default=["caption"])
    parser.add_argument("--rerank-top-k", type=int)
    parser.add_argument("--num-beams", type=int, default=3)
    parser.add_argument("--max-new-tokens", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--output", default="mint_eval.json")
    parser.add_argument("--name", default="MINT", help="the row name in the Markdown table")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--allow-empty", action="store_true", help="score empty generated captions instead of failing")
    args = parser.parse_args(argv)

    dataset = load_local_dataset(args.dataset, args.split)
    progress = not args.quiet
    if args.task == "leakage":
        result = leakage_report([load_local_dataset(p, "train") for p in args.train], dataset)
    else:
        if not args.model:
            parser.error(f"{args.task} needs --model")
        from modeling_mint import MintForConditionalGeneration, MintForPreTraining
        from processing_mint import MintProcessor

        processor = MintProcessor.from_pretrained(args.model)
        stage2 = args.task in ("classify", "caption")
        model = (MintForConditionalGeneration if stage2 else MintForPreTraining).from_pretrained(args.model).eval()
        if torch.cuda.is_available():
            model.cuda()
        candidates = args.candidates.split(",") if args.candidates else None
        if args.task in ("classify", "zero-shot"):
            result = evaluate_classification(
                model, processor, dataset, args.label_column, candidates, args.prompt, args.template,
                args.multi_label, args.known_column, "llm" if args.task == "classify" else "embedding",
                args.batch_size, progress)
        elif args.task == "retrieval":
            result = evaluate_retrieval(model, processor, dataset, args.caption_column, args.rerank_top_k,
                                        args.batch_size, progress)
        else:
            result = evaluate_captioning(model, processor, dataset, args.caption_column,
                                         args.prompt or get_template("Clotho").prompt, args.num_beams,
                                         args.max_new_tokens, args.batch_size, progress,
                                         allow_empty=args.allow_empty)
    result["model"], result["dataset"] = args.model, args.dataset
    with open(args.output, "w") as f:
        json.dump(result, f, indent=2)
    table = markdown_table(result, args.name, os.path.basename(os.path.normpath(args.dataset)))
    with open(os.path.splitext(args.output)[0] + ".md", "w") as f:
        f.write(table)
    print(table)
    return result


if __name__ == "__main__":
    main()
