# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""Captioning metrics as the audio-captioning literature computes them (paper Table 4), with no network.

BLEU-1..4, ROUGE-L and CIDEr-D are implemented here and equal the reference implementation `pycocoevalcap` on the
same tokens. METEOR 1.5 runs through `pycocoevalcap` when Java is present; SPICE (and so SPIDEr = (CIDEr-D + SPICE) / 2)
needs the Stanford CoreNLP 3.6.0 jars that `pycocoevalcap`'s SPICE expects in its `spice/lib` folder, which no package
registry ships: without them they are reported as `None` with the reason, never approximated.

Tokenisation: the PTB tokenizer of `pycocoevalcap` (Stanford CoreNLP, Java) lower-cases and splits punctuation, then
punctuation tokens are dropped. Without Java a Python fallback does the same for plain English captions (lower-case,
split off punctuation and clitics, drop the same punctuation tokens); the output records which one ran.

This file is also an `evaluate` metric module: `evaluate.load(mint.evaluation.caption_metrics.__file__)` works
offline.
"""

import logging
import math
import os
import re
import shutil
from collections import Counter, defaultdict

import datasets
import evaluate
import numpy as np


logger = logging.getLogger(__name__)

PUNCTUATIONS = {"''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-", "--", "...",
                ";"}
METRIC_KEYS = ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "meteor", "rouge_l", "cider_d", "spice", "spider")
_reported: set[str] = set()


def _report_once(message: str) -> None:
    if message not in _reported:
        _reported.add(message)
        logger.warning(message)


def _pycocoevalcap_dir() -> str | None:
    try:
        import pycocoevalcap
    except ImportError:
        return None
    return list(pycocoevalcap.__path__)[0]


def java_available() -> bool:
    return shutil.which("java") is not None


# The Java tokenizer lower-cases after escaping brackets, so "-lrb-" survives the (upper-case) punctuation filter.
_BRACKETS = {"(": "-lrb-", ")": "-rrb-", "[": "-lsb-", "]": "-rsb-", "{": "-lcb-", "}": "-rcb-"}


def _python_ptb_tokenize(caption: str) -> str:
    text = caption.lower().replace("\n", " ")
    text = re.sub(r"([.,!?;:\"])", r" \1 ", text)
    text = re.sub(r"[()\[\]{}]", lambda m: f" {_BRACKETS[m.group(0)]} ", text)
    text = re.sub(r"(\w)('s|'re|'ve|'ll|'d|n't|'m)\b", r"\1 \2", text)
    return " ".join(t for t in text.split() if t not in PUNCTUATIONS and t != '"')


def ptb_tokenize(captions: list[str]) -> tuple[list[str], str]:
    """Tokenises captions as the captioning literature does; returns the tokens and which tokenizer ran."""
    package = _pycocoevalcap_dir()
    if package and java_available():
        from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

        tokenized = PTBTokenizer().tokenize({i: [{"caption": c}] for i, c in enumerate(captions)})
        return [tokenized[i][0] for i in range(len(captions))], "ptb-java"
    _report_once("Java or pycocoevalcap is missing: captions are tokenised with the Python PTB fallback.")
    return [_python_ptb_tokenize(c) for c in captions], "ptb-python-fallback"


def _ngrams(tokens: list[str], n: int) -> Counter:
    return Counter(tuple(tokens[i : i + k]) for k in range(1, n + 1) for i in range(len(tokens) - k + 1))


def bleu(predictions: list[str], references: list[list[str]], n: int = 4) -> list[float]:
    """Corpus BLEU-1..n on tokenised text, as pycocoevalcap computes it ("closest" reference length)."""
    tiny, small = 1e-15, 1e-9
    correct, guess = [0] * n, [0] * n
    test_length = reference_length = 0
    for prediction, refs in zip(predictions, references):
        words = prediction.split()
        max_counts: dict = {}
        lengths = []
        for ref in refs:
            ref_words = ref.split()
            lengths.append(len(ref_words))
            for gram, count in _ngrams(ref_words, n).items():
                max_counts[gram] = max(max_counts.get(gram, 0), count)
        test_length += len(words)
        reference_length += min((abs(length - len(words)), length) for length in lengths)[1]
        for gram, count in _ngrams(words, n).items():
            correct[len(gram) - 1] += min(max_counts.get(gram, 0), count)
        for k in range(n):
            guess[k] += max(0, len(words) - k)
    scores, product = [], 1.0
    for k in range(n):
        product *= (correct[k] + tiny) / (guess[k] + small)
        scores.append(product ** (1.0 / (k + 1)))
    ratio = (test_length + tiny) / (reference_length + small)
    if ratio < 1:
        scores = [s * math.exp(1 - 1 / ratio) for s in scores]
    return scores


def _lcs(a: list[str], b: list[str]) -> int:
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b):
            current.append(previous[j] + 1 if x == y else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


def rouge_l(predictions: list[str], references: list[list[str]], beta: float = 1.2) -> float:
    """Mean sentence ROUGE-L (LCS F-measure with beta 1.2, best precision and recall over the references)."""
    scores = []
    for prediction, refs in zip(predictions, references):
        candidate = prediction.split(" ")
        lcs = [_lcs(ref.split(" "), candidate) for ref in refs]
        precision = max(common / len(candidate) for common in lcs)
        recall = max(common / len(ref.split(" ")) for common, ref in zip(lcs, refs))
        scores.append(0.0 if precision == 0 or recall == 0 else
                      (1 + beta**2) * precision * recall / (recall + beta**2 * precision))
    return float(np.mean(scores))


def cider_d(predictions: list[str], references: list[list[str]], n: int = 4, sigma: float = 6.0) -> float:
    """CIDEr-D: clipped tf-idf n-gram cosine with a Gaussian length penalty, x10, as pycocoevalcap's `Cider`."""
    ref_counts = [[_ngrams(r.split(), n) for r in refs] for refs in references]
    document_frequency = defaultdict(float)
    for refs in ref_counts:
        for gram in {g for counts in refs for g in counts}:
            document_frequency[gram] += 1
    log_corpus = np.log(float(len(references)))

    def vectorise(counts):
        vec = [defaultdict(float) for _ in range(n)]
        norm = [0.0] * n
        for gram, tf in counts.items():
            weight = float(tf) * (log_corpus - np.log(max(1.0, document_frequency[gram])))
            vec[len(gram) - 1][gram] = weight
            norm[len(gram) - 1] += weight**2
        length = sum(tf for gram, tf in counts.items() if len(gram) == 2)
        return vec, [np.sqrt(x) for x in norm], length

    scores = []
    for prediction, refs in zip(predictions, ref_counts):
        vec, norm, length = vectorise(_ngrams(prediction.split(), n))
        total = np.zeros(n)
        for ref in refs:
            ref_vec, ref_norm, ref_length = vectorise(ref)
            delta = float(length - ref_length)
            for k in range(n):
                value = sum(min(w, ref_vec[k][g]) * ref_vec[k][g] for g, w in vec[k].items())
                if norm[k] != 0 and ref_norm[k] != 0:
                    value /= norm[k] * ref_norm[k]
                total[k] += value * np.e ** (-(delta**2) / (2 * sigma**2))
        scores.append(np.mean(total) / len(refs) * 10.0)
    return float(np.mean(scores))


def _meteor(predictions, references) -> tuple[float | None, str | None]:
    if _pycocoevalcap_dir() is None:
        return None, "METEOR needs pycocoevalcap (pip install pycocoevalcap)."
    if not java_available():
        return None, "METEOR needs Java (e.g. apt-get install openjdk-17-jre-headless)."
    from pycocoevalcap.meteor.meteor import Meteor

    scorer = Meteor()
    try:
        score, _ = scorer.compute_score({i: refs for i, refs in enumerate(references)},
                                        {i: [p] for i, p in enumerate(predictions)})
    finally:
        scorer.close() if hasattr(scorer, "close") else None
    return float(score), None


def _spice_jars_present(package: str) -> bool:
    lib = os.path.join(package, "spice", "lib")
    return os.path.isfile(os.path.join(lib, "stanford-corenlp-3.6.0.jar")) and os.path.isfile(
        os.path.join(lib, "stanford-corenlp-3.6.0-models.jar"))


def _spice(predictions, references) -> tuple[float | None, str | None]:
    package = _pycocoevalcap_dir()
    if package is None or not java_available():
        return None, "SPICE needs pycocoevalcap and Java."
    if not os.path.isfile(os.path.join(package, "spice", "spice-1.0.jar")) or not _spice_jars_present(package):
        return None, (f"SPICE needs spice-1.0.jar and the Stanford CoreNLP 3.6.0 jars (stanford-corenlp-3.6.0.jar, "
                      f"stanford-corenlp-3.6.0-models.jar) in {os.path.join(package, 'spice', 'lib')}; no package "
                      "registry ships them: download them from Stanford and copy them there.")
    from pycocoevalcap.spice.spice import Spice

    score, _ = Spice().compute_score({i: refs for i, refs in enumerate(references)},
                                     {i: [p] for i, p in enumerate(predictions)})
    return float(score), None


def compute_caption_metrics(predictions: list[str], references: list[list[str]], allow_empty: bool = False) -> dict:
    """
    Captioning metrics of the audio-captioning literature.

    Args:
        predictions: one generated caption per clip.
        references: the reference captions of each clip (Clotho has five).
        allow_empty: score empty predictions (as empty token sequences) instead of raising.

    Returns:
        A dict with `bleu_1` ... `bleu_4`, `meteor`, `rouge_l`, `cider_d`, `spice`, `spider` (`None` where a metric
        cannot run here, the reason logged once and listed under `unavailable`) and `tokenizer`.
    """
    if not predictions:
        raise ValueError("compute_caption_metrics got no predictions; expected one caption per clip.")
    if len(predictions) != len(references):
        raise ValueError(f"Got {len(predictions)} predictions but {len(references)} reference lists; expected one "
                         "list of references per prediction.")
    if any(not refs for refs in references):
        raise ValueError("Every prediction needs at least one reference caption.")
    empty = [i for i, p in enumerate(predictions) if not p or not p.strip()]
    if empty and not allow_empty:
        raise ValueError(f"Predictions {empty[:10]} are empty; pass allow_empty=True to score them as empty captions.")
    flat = list(predictions) + [r for refs in references for r in refs]
    tokens, tokenizer = ptb_tokenize(flat)
    preds, cursor, refs = tokens[: len(predictions)], len(predictions), []
    for group in references:
        refs.append(tokens[cursor : cursor + len(group)])
        cursor += len(group)
    result = dict(zip(("bleu_1", "bleu_2", "bleu_3", "bleu_4"), bleu(preds, refs)))
    result["rouge_l"] = rouge_l(preds, refs)
    result["cider_d"] = cider_d(preds, refs)
    unavailable = {}
    for name, function in (("meteor", _meteor), ("spice", _spice)):
        result[name], reason = function(preds, refs)
        if reason:
            unavailable[name] = reason
            _report_once(f"{name} unavailable: {reason}")
    result["spider"] = (result["cider_d"] + result["spice"]) / 2 if result["spice"] is not None else None
    if result["spider"] is None:
        unavailable["spider"] = "SPIDEr is (CIDEr-D + SPICE) / 2 and SPICE is unavailable."
    return {**{k: result[k] for k in METRIC_KEYS}, "tokenizer": tokenizer, "unavailable": unavailable}


class MintCaptionMetrics(evaluate.Metric):
    """`evaluate` module wrapping [`compute_caption_metrics`]; load it with `evaluate.load(<path of this file>)`."""

    def _info(self):
        return evaluate.MetricInfo(
            description="BLEU-1..4, METEOR, ROUGE-L, CIDEr-D, SPICE and SPIDEr as pycocoevalcap computes them.",
            citation="MINT (Zhao et al.); pycocoevalcap.",
            inputs_description="predictions: list of str; references: list of list of str.",
            features=datasets.Features({"predictions": datasets.Value("string"),
                                        "references": datasets.Sequence(datasets.Value("string"))}),
        )

    def _compute(self, predictions, references, allow_empty: bool = False):
        return compute_caption_metrics(list(predictions), [list(r) for r in references], allow_empty=allow_empty)
