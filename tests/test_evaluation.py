"""Evaluation (issue 4): classification, retrieval, captioning, leakage, the mint-eval command; against hand values."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile
import torch
from datasets import Audio, ClassLabel, Dataset
from sklearn.metrics import average_precision_score, roc_auc_score

import tiny
from evaluation_mint import (
    evaluate_captioning,
    evaluate_classification,
    evaluate_retrieval,
    leakage_report,
    markdown_table,
    multi_label_auc,
    retrieval_metrics,
)
from metrics_mint import compute_caption_metrics
from modeling_mint import MintForConditionalGeneration, MintForPreTraining
from test_pretraining import clips


@pytest.fixture(scope="module")
def eval_dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("eval")
    paths = []
    for i, clip in enumerate(clips((16000, 12000, 9000, 14000, 10000))):
        path = folder / f"freesound_{1000 + i}.wav"
        soundfile.write(path, clip, 16000)
        paths.append(str(path))
    data = Dataset.from_dict({
        "audio": paths,
        "label": [0, 1, 2, 0, 1],
        "instruments": [["piano"], ["piano", "violin"], ["flute"], ["violin"], ["flute", "piano"]],
        "annotated": [["piano", "violin", "flute"], ["piano", "violin"], ["flute", "piano"], ["violin", "flute"],
                      ["flute", "piano", "violin"]],
        "captions": [["a dog barks", "a dog is barking loudly"], ["a cat meows", "the cat meows twice"],
                     ["a piano plays", "soft piano music"], ["rain on a roof", "rain falls"],
                     ["a flute plays", "a high flute note"]],
    })
    return data.cast_column("audio", Audio()).cast_column("label", ClassLabel(names=["dog", "cat", "piano"]))


@pytest.fixture(scope="module")
def stage2():
    torch.manual_seed(0)
    return MintForConditionalGeneration(tiny.mint_config()).eval(), tiny.processor()


@pytest.fixture(scope="module")
def stage1():
    torch.manual_seed(0)
    return MintForPreTraining(tiny.mint_config()).eval(), tiny.processor()


def test_retrieval_metrics_on_a_hand_made_matrix():
    similarity = np.array([[0.9, 0.1, 0.5], [0.2, 0.3, 0.8], [0.7, 0.6, 0.1]])  # 3 text queries x 3 clips
    result = retrieval_metrics(similarity, [{0}, {1}, {2}], ks=(1, 2))
    # ranks of the relevant clip: query 0 -> 1, query 1 -> 2, query 2 -> 3
    assert result["R@1"] == pytest.approx(1 / 3) and result["R@2"] == pytest.approx(2 / 3)
    assert result["mAP@10"] == pytest.approx((1 + 1 / 2 + 1 / 3) / 3)
    # Two relevant items: AP@10 = (P@1 + P@3) / 2 when they sit at ranks 1 and 3.
    two = retrieval_metrics(np.array([[0.9, 0.5, 0.7, 0.1]]), [{0, 1}], ks=(1,))
    assert two["mAP@10"] == pytest.approx((1 + 2 / 3) / 2)


def test_multi_label_auc_ignores_missing_annotations():
    scores = np.array([[0.9, 0.1], [0.8, 0.7], [0.2, 0.6], [0.4, 0.3]])
    targets = [["a"], ["a", "b"], ["b"], []]
    known = [["a", "b"], ["a", "b"], ["b"], ["a", "b"]]  # clip 2 has no annotation for "a"
    result = multi_label_auc(scores, targets, ["a", "b"], known)
    truth_a, truth_b = np.array([1, 1, 0]), np.array([0, 1, 1, 0])
    expected_pr = (average_precision_score(truth_a, scores[[0, 1, 3], 0]) + average_precision_score(truth_b, scores[:, 1])) / 2
    expected_roc = (roc_auc_score(truth_a, scores[[0, 1, 3], 0]) + roc_auc_score(truth_b, scores[:, 1])) / 2
    assert result["pr_auc"] == pytest.approx(expected_pr) and result["roc_auc"] == pytest.approx(expected_roc)


def test_vocabulary_ranking_accuracy_equals_argmax_of_the_scores(eval_dataset, stage2):
    model, processor = stage2
    result = evaluate_classification(model, processor, eval_dataset, template="NSynth", batch_size=2, progress=False)
    batch = processor(audio=eval_dataset.cast_column("audio", Audio(decode=False))["audio"],
                      text=["The most prominent instrument in this music is"] * 5)
    scores = model.score_candidates(**processor.tokenize_candidates(["dog", "cat", "piano"]), **batch)
    expected = ["dog", "cat", "piano"]
    predictions = [expected[i] for i in scores.argmax(-1).tolist()]
    assert result["predictions"] == predictions
    assert result["accuracy"] == pytest.approx(np.mean([p == t for p, t in zip(predictions, ["dog", "cat", "piano", "dog", "cat"])]))
    assert result["chance"] == pytest.approx(1 / 3)


def test_multi_label_classification_runs_with_missing_labels(eval_dataset, stage2):
    model, processor = stage2
    candidates = ["piano", "violin", "flute"]
    result = evaluate_classification(model, processor, eval_dataset, label_column="instruments",
                                     candidates=candidates, template="OpenMIC", multi_label=True,
                                     known_column="annotated", progress=False)
    batch = processor(audio=eval_dataset.cast_column("audio", Audio(decode=False))["audio"],
                      text=["Identify the instruments in this segment of music:"] * 5)
    scores = model.score_candidates(**processor.tokenize_candidates(candidates), **batch).numpy()
    expected = multi_label_auc(scores, [list(x) for x in eval_dataset["instruments"]], candidates,
                               [list(x) for x in eval_dataset["annotated"]])
    assert result["classes_scored"] == 3
    assert result["pr_auc"] == pytest.approx(expected["pr_auc"]) and result["roc_auc"] == pytest.approx(expected["roc_auc"])


def test_embedding_zero_shot_classification(eval_dataset, stage1):
    model, processor = stage1
    result = evaluate_classification(model, processor, eval_dataset, mode="embedding", progress=False)
    audio = processor(audio=eval_dataset.cast_column("audio", Audio(decode=False))["audio"])
    text = processor(text=[f"This is a sound of {c}." for c in ["dog", "cat", "piano"]], return_llm_inputs=False)
    sim = model.audio_text_similarity(model.get_audio_features(**audio).pooler_output,
                                      model.get_text_features(text["qformer_input_ids"],
                                                              text["qformer_attention_mask"]).pooler_output)
    assert result["predictions"] == [["dog", "cat", "piano"][i] for i in sim.argmax(-1).tolist()]


def test_labels_outside_the_candidates_and_missing_columns_are_errors(eval_dataset, stage2):
    model, processor = stage2
    with pytest.raises(ValueError, match=r"Labels \['piano'\] are not in the candidate list"):
        evaluate_classification(model, processor, eval_dataset, candidates=["dog", "cat"], template="NSynth",
                                progress=False)
    with pytest.raises(ValueError, match="no label column 'genre'"):
        evaluate_classification(model, processor, eval_dataset, label_column="genre", template="NSynth")
    with pytest.raises(ValueError, match="no caption"):
        evaluate_retrieval(model, processor, eval_dataset, caption_columns=["text"])


def test_retrieval_end_to_end_and_reranking(eval_dataset, stage1):
    model, processor = stage1
    plain = evaluate_retrieval(model, processor, eval_dataset, ["captions"], progress=False)
    assert plain["num_captions"] == 10
    audio = processor(audio=eval_dataset.cast_column("audio", Audio(decode=False))["audio"])
    texts = [c for group in eval_dataset["captions"] for c in group]
    tokens = processor(text=texts, return_llm_inputs=False)
    sim = model.audio_text_similarity(model.get_audio_features(**audio).pooler_output,
                                      model.get_text_features(tokens["qformer_input_ids"],
                                                              tokens["qformer_attention_mask"]).pooler_output)
    expected = retrieval_metrics(sim.t().detach().numpy(), [{i // 2} for i in range(10)])
    assert plain["text_to_audio"] == pytest.approx(expected, abs=1e-6)
    reranked = evaluate_retrieval(model, processor, eval_dataset, ["captions"], rerank_top_k=5, progress=False)
    # With k = all clips the order is the ALM's: R@5 is unchanged (all clips are in the top 5), R@1 may move.
    assert reranked["text_to_audio"]["R@5"] == pytest.approx(1.0)
    assert "| MINT |" in markdown_table(reranked)


def test_captioning_end_to_end(eval_dataset, stage2):
    model, processor = stage2
    result = evaluate_captioning(model, processor, eval_dataset, ["captions"], num_beams=2, max_new_tokens=5,
                                 progress=False, allow_empty=True)
    assert len(result["predictions"]) == 5 and result["generation"]["num_beams"] == 2
    expected = compute_caption_metrics(result["predictions"], [list(c) for c in eval_dataset["captions"]],
                                       allow_empty=True)
    assert {k: result[k] for k in ("bleu_1", "rouge_l", "cider_d")} == {k: expected[k] for k in ("bleu_1", "rouge_l", "cider_d")}
    assert result["spice"] is None
    assert "SPIDEr" in markdown_table(result)


def test_leakage_report_finds_shared_clips(eval_dataset, tmp_path):
    train_paths = []
    for i, name in enumerate(["freesound_1002.wav", "other_clip.wav"]):
        path = tmp_path / name
        soundfile.write(path, clips((8000,), seed=i + 3)[0], 16000)
        train_paths.append(str(path))
    # A byte-identical copy of an evaluation clip under another name.
    copy = tmp_path / "renamed.wav"
    copy.write_bytes(open(eval_dataset.cast_column("audio", Audio(decode=False))[4]["audio"]["path"], "rb").read())
    train = Dataset.from_dict({"audio": train_paths + [str(copy)]}).cast_column("audio", Audio())
    report = leakage_report([train], eval_dataset)
    assert report["num_overlapping"] == 2
    shared = {e["eval_index"]: e["shared"] for e in report["examples"]}
    assert "freesound:1002" in shared[2] and any(s.startswith("sha256:") for s in shared[4])


def test_mint_eval_command_writes_json_and_markdown(eval_dataset, stage2, tmp_path):
    model, processor = stage2
    model.save_pretrained(tmp_path / "model")
    processor.save_pretrained(tmp_path / "model")
    eval_dataset.save_to_disk(str(tmp_path / "data"))
    output = tmp_path / "result.json"
    command = [sys.executable, "-m", "evaluation_mint", "caption", "--model", str(tmp_path / "model"), "--dataset",
               str(tmp_path / "data"), "--caption-column", "captions", "--num-beams", "1", "--max-new-tokens", "4",
               "--output", str(output)]
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    # The random tiny model stops at once: its captions are empty, which is an error unless asked for.
    refused = subprocess.run(command, capture_output=True, text=True, env=env)
    assert refused.returncode != 0 and "are empty; pass allow_empty=True" in refused.stderr
    run = subprocess.run(command + ["--allow-empty"], capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(output.read_text())
    assert result["generation"] == {"num_beams": 1, "max_new_tokens": 4, "do_sample": False}
    assert "Captioning" in run.stderr  # progress bar
    assert (tmp_path / "result.md").read_text().startswith("| Methods | SPIDEr")
