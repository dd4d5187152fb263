"""Caption metrics equal the reference implementation pycocoevalcap on the same tokens."""

import os
import shutil

import evaluate
import pytest
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.rouge.rouge import Rouge

import mint.evaluation.caption_metrics as metrics_mint
from mint.evaluation.caption_metrics import bleu, cider_d, compute_caption_metrics, ptb_tokenize, rouge_l


PREDICTIONS = [
    "a man is speaking while birds chirp in the background",
    "water is running from a faucet",
    "a dog barks twice and a car passes by",
    "rain falls on a tin roof",
]
REFERENCES = [
    ["a man talks as birds are chirping", "birds chirp while a man is speaking loudly",
     "a person speaks with birds singing in the background", "a man speaking and birds chirping",
     "someone is talking while birds chirp"],
    ["water runs from a tap into a sink", "a faucet is running water", "water flows out of a faucet",
     "running water from a kitchen faucet", "a tap is left running"],
    ["a dog barks and a car drives past", "a car passes while a dog is barking", "dog barking and a vehicle passing",
     "a dog barks twice as a car goes by", "a vehicle drives by and a dog barks"],
    ["rain is falling on a metal roof", "heavy rain on a roof", "raindrops hit a tin roof",
     "rain pours down onto a rooftop", "rain falling on a corrugated roof"],
]


def reference_scores(preds, refs):
    gts = {i: r for i, r in enumerate(refs)}
    res = {i: [p] for i, p in enumerate(preds)}
    return Bleu(4).compute_score(gts, res, verbose=0)[0], Rouge().compute_score(gts, res)[0], \
        Cider().compute_score(gts, res)[0]


def tokenized():
    tokens, _ = ptb_tokenize(PREDICTIONS + [r for refs in REFERENCES for r in refs])
    preds = tokens[: len(PREDICTIONS)]
    refs = [tokens[len(PREDICTIONS) + 5 * i : len(PREDICTIONS) + 5 * (i + 1)] for i in range(len(REFERENCES))]
    return preds, refs


def test_bleu_rouge_cider_equal_pycocoevalcap():
    preds, refs = tokenized()
    ref_bleu, ref_rouge, ref_cider = reference_scores(preds, refs)
    for ours, theirs in zip(bleu(preds, refs), ref_bleu):
        assert ours == pytest.approx(theirs, abs=1e-6)
    assert rouge_l(preds, refs) == pytest.approx(ref_rouge, abs=1e-6)
    assert cider_d(preds, refs) == pytest.approx(ref_cider, abs=1e-6)
    assert 0 < cider_d(preds, refs) < 10


def test_edge_cases_equal_pycocoevalcap():
    # An exact match, a prediction longer than every reference, and repeated words (clipping).
    preds = ["a dog barks", "a dog barks and barks and barks at a cat in the yard today", "dog dog dog dog"]
    refs = [["a dog barks", "the dog is barking"], ["a dog barks at a cat"], ["a dog", "dogs bark"]]
    ref_bleu, ref_rouge, ref_cider = reference_scores(preds, refs)
    assert bleu(preds, refs) == pytest.approx(ref_bleu, abs=1e-6)
    assert rouge_l(preds, refs) == pytest.approx(ref_rouge, abs=1e-6)
    assert cider_d(preds, refs) == pytest.approx(ref_cider, abs=1e-6)


@pytest.mark.skipif(shutil.which("java") is None and not os.environ.get("CI"),
                    reason="PTB tokenisation and METEOR need Java, absent here (CI installs it, so CI never skips)")
def test_with_java_ptb_tokenizer_and_meteor_run():
    result = compute_caption_metrics(PREDICTIONS, REFERENCES)
    assert result["tokenizer"] == "ptb-java"
    assert 0 < result["meteor"] < 1
    # The Python fallback tokenises these plain captions exactly as the Java PTB tokenizer does.
    flat = PREDICTIONS + [r for refs in REFERENCES for r in refs] + ["A Dog's bark, loud!", "it isn't (really) wet."]
    java, _ = ptb_tokenize(flat)
    assert [metrics_mint._python_ptb_tokenize(c) for c in flat] == java


def test_spice_and_spider_are_unavailable_with_the_reason_not_approximated():
    result = compute_caption_metrics(PREDICTIONS, REFERENCES)
    assert set(metrics_mint.METRIC_KEYS) <= set(result)
    assert result["spice"] is None and result["spider"] is None
    assert "CoreNLP 3.6.0" in result["unavailable"]["spice"]


def test_errors():
    with pytest.raises(ValueError, match="no predictions"):
        compute_caption_metrics([], [])
    with pytest.raises(ValueError, match="2 predictions but 1 reference"):
        compute_caption_metrics(["a", "b"], [["a"]])
    with pytest.raises(ValueError, match=r"Predictions \[1\] are empty"):
        compute_caption_metrics(["a dog", " "], [["a dog"], ["a cat"]])
    assert compute_caption_metrics(["a dog", ""], [["a dog"], ["a cat"]], allow_empty=True)["bleu_1"] > 0


@pytest.mark.slow
def test_evaluate_module_loads_from_a_local_path(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    metric = evaluate.load(metrics_mint.__file__)
    result = metric.compute(predictions=PREDICTIONS, references=REFERENCES)
    assert result["cider_d"] == pytest.approx(compute_caption_metrics(PREDICTIONS, REFERENCES)["cider_d"], abs=1e-9)
