"""Evaluation: classification, retrieval, captioning, leakage, the mint eval command; against hand values."""

import json

import numpy as np
import pytest
import soundfile
import torch
from datasets import Audio, ClassLabel, Dataset
from sklearn.metrics import average_precision_score, roc_auc_score

import mint.cli
import modeling_mint
from mint.evaluation.caption_metrics import compute_caption_metrics
from mint.evaluation.captioning import evaluate_captioning
from mint.evaluation.classification import evaluate_classification, multi_label_auc, vocabulary_ranking_scores
from mint.evaluation.leakage import leakage_report
from mint.evaluation.reports import check_report_output, markdown_table, write_report
from mint.evaluation.retrieval import evaluate_retrieval, retrieval_metrics
from modeling_mint import MintForConditionalGeneration, MintForPreTraining
from tests.utils import tiny
from tests.utils.audio import clips


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
    expected_pr = (average_precision_score(truth_a, scores[[0, 1, 3], 0])
                   + average_precision_score(truth_b, scores[:, 1])) / 2
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
    targets = ["dog", "cat", "piano", "dog", "cat"]
    assert result["accuracy"] == pytest.approx(np.mean([p == t for p, t in zip(predictions, targets)]))
    assert result["chance"] == pytest.approx(1 / 3)


LONG_LABEL = "high piano note"  # 3 words and the end-of-sequence token, against 2 tokens for "dog"


def test_length_normalised_scores_are_the_summed_scores_divided_by_the_token_counts(eval_dataset, stage2):
    model, processor = stage2
    candidates = ["dog", LONG_LABEL, "cat"]
    summed = vocabulary_ranking_scores(model, processor, eval_dataset, candidates, "This is a sound of", batch_size=2,
                                       progress=False)
    normalised = vocabulary_ranking_scores(model, processor, eval_dataset, candidates, "This is a sound of",
                                           batch_size=2, progress=False, length_normalize=True)
    counts = processor.tokenize_candidates(candidates)["candidate_attention_mask"].sum(-1).numpy()
    assert counts.tolist() == [2, 4, 2]
    assert summed.shape == (5, 3) and not np.allclose(normalised, summed)
    np.testing.assert_allclose(normalised, summed / counts, rtol=1e-5, atol=1e-6)


def test_length_normalisation_can_change_the_ranking(eval_dataset, stage2, monkeypatch):
    """
    Hand-set summed log-likelihoods of "dog" (2 tokens) and LONG_LABEL (4 tokens) for the 5 clips: the sum ranks the
    short label first on clips 1 and 4, where the mean per token ranks the long one first.
    """
    model, processor = stage2
    summed = torch.tensor([[-1.0, -3.0], [-3.0, -4.0], [-5.0, -4.0], [-2.0, -5.0], [-2.5, -4.4]])
    calls = []

    def hand_set(logits, labels):  # the model's per-candidate summed log-likelihood, (clips x candidates) rows
        calls.append(labels.shape[0])
        return summed.flatten().to(logits.dtype)

    monkeypatch.setattr(modeling_mint, "_sequence_log_likelihood", hand_set)
    data = eval_dataset.remove_columns("label").add_column("label", ["dog", LONG_LABEL, LONG_LABEL, "dog", LONG_LABEL])
    results = {normalise: evaluate_classification(model, processor, data, candidates=["dog", LONG_LABEL],
                                                  prompt="This is a sound of", batch_size=5, progress=False,
                                                  length_normalize=normalise) for normalise in (False, True)}
    assert calls == [10, 10]  # one batch of 5 clips x 2 candidates per evaluation
    short, long = "dog", LONG_LABEL
    assert results[False]["predictions"] == [short, short, long, short, short]
    assert results[True]["predictions"] == [short, long, long, short, long]
    assert results[False]["accuracy"] == pytest.approx(3 / 5) and results[True]["accuracy"] == pytest.approx(1.0)
    assert [results[n]["length_normalize"] for n in (False, True)] == [False, True]


def test_mint_eval_classify_length_normalize(eval_dataset, stage2, tmp_path):
    model, processor = stage2
    model.save_pretrained(tmp_path / "stage2")
    processor.save_pretrained(tmp_path / "stage2")
    eval_dataset.save_to_disk(str(tmp_path / "data"))
    argv = ["eval", "classify", "--model", str(tmp_path / "stage2"), "--dataset", str(tmp_path / "data"), "--template",
            "NSynth", "--quiet"]
    for flag, normalise in (([], False), (["--length-normalize"], True)):
        output = tmp_path / f"classify-{normalise}.json"
        assert mint.cli.main(argv + flag + ["--output", str(output)]) == 0
        written = json.loads(output.read_text())
        expected = evaluate_classification(model, processor, eval_dataset, template="NSynth", progress=False,
                                           length_normalize=normalise)
        assert written["length_normalize"] is normalise
        assert written["predictions"] == expected["predictions"]


@pytest.mark.parametrize("argv, message", [
    (["classify", "--template", "NSynth", "--batch-size", "0"], "expected a positive integer, got '0'"),
    (["retrieval", "--rerank-top-k", "0"], "expected a positive integer, got '0'"),
    (["retrieval", "--rerank-top-k", "-1"], "expected a positive integer, got '-1'"),
    (["caption", "--num-beams", "0"], "expected a positive integer, got '0'"),
    (["caption", "--max-new-tokens", "x"], "expected an integer, got 'x'"),
    (["classify", "--template", "NSynth", "--prompt", "It is"], "not allowed with argument"),
    (["classify"], "one of the arguments --template --prompt is required"),
])
def test_mint_eval_parser_refuses_bad_options(argv, message, capsys):
    with pytest.raises(SystemExit) as exit:
        mint.cli.main(["eval", *argv, "--model", "m", "--dataset", "d"])
    assert exit.value.code == 2 and message in capsys.readouterr().err


def test_mint_eval_refuses_a_model_of_the_other_stage(tmp_path, capsys):
    config = tiny.mint_config()
    config.architectures = ["MintForPreTraining"]
    config.save_pretrained(tmp_path / "stage1")
    argv = ["eval", "classify", "--model", str(tmp_path / "stage1"), "--dataset", str(tmp_path / "data"),
            "--template", "NSynth"]
    assert mint.cli.main(argv) == 1
    assert "holds a stage-1 MINT model; this task evaluates a stage-2 one" in capsys.readouterr().err


def test_length_normalize_is_for_vocabulary_ranking(eval_dataset, stage1):
    model, processor = stage1
    with pytest.raises(ValueError, match="length_normalize is for mode='llm'"):
        evaluate_classification(model, processor, eval_dataset, mode="embedding", length_normalize=True,
                                progress=False)


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
    assert result["pr_auc"] == pytest.approx(expected["pr_auc"])
    assert result["roc_auc"] == pytest.approx(expected["roc_auc"])


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


def _similarity(model, processor, dataset, texts):
    audio = processor(audio=dataset.cast_column("audio", Audio(decode=False))["audio"])
    tokens = processor(text=texts, return_llm_inputs=False)
    with torch.no_grad():
        return model.audio_text_similarity(model.get_audio_features(**audio).pooler_output,
                                           model.get_text_features(tokens["qformer_input_ids"],
                                                                   tokens["qformer_attention_mask"]).pooler_output
                                           ).t().numpy()


def test_retrieval_counts_every_clip_with_the_querys_caption_as_relevant(eval_dataset, stage1):
    """Labels turned into captions: one query per label, all of its clips relevant (was: one per clip, so R@1 could
    not exceed 1 / clips per label)."""
    model, processor = stage1
    data = eval_dataset.add_column("label_caption", ["a dog", "a cat", "a dog", "a cat", "a dog"])
    result = evaluate_retrieval(model, processor, data, ["label_caption"], progress=False)
    similarity = _similarity(model, processor, data, ["a dog", "a cat"])
    assert (result["num_queries"], result["num_captions"]) == (2, 5)
    assert result["text_to_audio"] == pytest.approx(retrieval_metrics(similarity, [{0, 2, 4}, {1, 3}]))
    assert result["audio_to_text"] == pytest.approx(retrieval_metrics(similarity.T, [{0}, {1}, {0}, {1}, {0}]))


def test_retrieval_with_five_distinct_captions_per_clip_counts_as_before(eval_dataset, stage1):
    """Clotho: every caption is a query with its one clip relevant; every clip a query with its five captions."""
    model, processor = stage1
    columns = [f"caption_{k}" for k in range(1, 6)]
    captions = [[f"{word} sound number {k}" for k in range(1, 6)] for word in ("dog", "cat", "piano", "rain", "flute")]
    data = eval_dataset
    for k, column in enumerate(columns):
        data = data.add_column(column, [clip[k] for clip in captions])
    result = evaluate_retrieval(model, processor, data, columns, progress=False)
    similarity = _similarity(model, processor, data, [c for clip in captions for c in clip])
    assert result["text_to_audio"] == pytest.approx(retrieval_metrics(similarity, [{q // 5} for q in range(25)]))
    assert result["audio_to_text"] == pytest.approx(
        retrieval_metrics(similarity.T, [set(range(5 * clip, 5 * clip + 5)) for clip in range(5)]))
    assert (result["num_queries"], result["num_captions"]) == (25, 25)


@pytest.mark.slow
def test_captioning_end_to_end(eval_dataset, stage2):
    model, processor = stage2
    result = evaluate_captioning(model, processor, eval_dataset, ["captions"], num_beams=2, max_new_tokens=5,
                                 progress=False, allow_empty=True)
    assert len(result["predictions"]) == 5 and result["generation"]["num_beams"] == 2
    expected = compute_caption_metrics(result["predictions"], [list(c) for c in eval_dataset["captions"]],
                                       allow_empty=True)
    keys = ("bleu_1", "rouge_l", "cider_d")
    assert {k: result[k] for k in keys} == {k: expected[k] for k in keys}
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


@pytest.mark.parametrize("audio_column, id_column, words", [
    ("caption", None, ["'caption'", "neither audio", "--audio-column"]),
    ("nope", None, ["no column", "'nope'"]),
    ("audio", "nope", ["no column", "'nope'"]),
])
def test_leakage_refuses_columns_that_would_report_a_clean_split(eval_dataset, audio_column, id_column, words):
    dataset = eval_dataset.add_column("caption", ["a dog barks"] * len(eval_dataset))
    with pytest.raises(ValueError) as error:
        leakage_report([dataset], dataset, audio_column=audio_column, id_column=id_column)
    assert all(word in str(error.value) for word in words), str(error.value)


@pytest.mark.parametrize("make, words", [
    (lambda tmp: tmp.mkdir() or tmp, ["is a folder", "JSON file"]),
    (lambda tmp: (tmp.mkdir(), (tmp / "out.md").mkdir()) and tmp / "out.json", ["out.md", "is a folder"]),
    (lambda tmp: (tmp.write_text("x"), tmp / "out.json")[1], ["cannot be created"]),
])
def test_an_unwritable_report_path_is_refused_before_the_work(tmp_path, make, words):
    output = make(tmp_path / "target")
    with pytest.raises(ValueError) as error:
        check_report_output(output)
    assert all(word in str(error.value) for word in words), str(error.value)


def test_a_missing_report_folder_is_created(tmp_path):
    output = tmp_path / "results" / "nested" / "zero_shot.json"
    write_report({"task": "leakage", "num_eval_clips": 1, "num_overlapping": 0, "fraction_overlapping": 0.0,
                  "examples": []}, output)
    assert output.is_file() and output.with_suffix(".md").is_file()
