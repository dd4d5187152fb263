"""Evaluation's bad inputs, table by table: candidate labels, rows without a label, the kind of model, retrieval
relevance and the retrieval index's ids; each row gives the input, the error type and the words of the message."""

import json
import logging

import numpy as np
import pytest
import soundfile
import torch
from datasets import Audio, ClassLabel, Dataset, DatasetDict, Sequence

import mint.cli
from mint.evaluation.captioning import evaluate_captioning
from mint.evaluation.classification import embedding_scores, evaluate_classification, vocabulary_ranking_scores
from mint.evaluation.reports import write_report
from mint.evaluation.retrieval import evaluate_retrieval, retrieval_metrics
from mint.evaluation.retrieval_index import MintRetrievalIndex
from modeling_mint import MintForConditionalGeneration, MintForPreTraining, MintModel
from tests.utils import tiny
from tests.utils.audio import clips


LABELS = ["dog", "cat", "piano"]
PROMPT = "This is a sound of"


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """Four clips in files; 'label' is a ClassLabel with -1 (datasets' "no label") at row 2."""
    folder = tmp_path_factory.mktemp("labelled")
    paths = []
    for i, clip in enumerate(clips((16000, 12000, 9000, 14000))):
        paths.append(str(folder / f"clip{i}.wav"))
        soundfile.write(paths[-1], clip, 16000)
    data = Dataset.from_dict({"audio": paths, "label": [0, 1, -1, 2], "complete": [0, 1, 2, 0],
                              "tags": [[0], [1, 2], [-1], [2]]})
    return (data.cast_column("audio", Audio()).cast_column("label", ClassLabel(names=LABELS))
            .cast_column("complete", ClassLabel(names=LABELS)).cast_column("tags", Sequence(ClassLabel(names=LABELS))))


BAD_CANDIDATES = [
    (["dog", "", "cat"], ValueError, ["positions 1 ('')", "empty or whitespace"]),
    (["dog", "   ", "cat", "\t"], ValueError, ["1 ('   ')", "3 ('\\t')", "empty or whitespace"]),
    (["dog", "cat", "dog"], ValueError, ["repeated", "'dog' at positions [0, 2]"]),
    (["dog", "cat", " cat "], ValueError, ["repeated", "'cat' at positions [1, 2]"]),
    ([], ValueError, ["candidates is empty"]),
    (["dog", 3], TypeError, ["positions 1 (3)", "not strings"]),
    ("dog,cat", TypeError, ["list of label names", "str"]),
]


@pytest.mark.parametrize("candidates, error, words", BAD_CANDIDATES)
@pytest.mark.parametrize("entry", ["llm", "embedding", "vocabulary_ranking_scores", "embedding_scores"])
def test_evaluation_refuses_bad_candidates(entry, candidates, error, words, labelled, stage1, stage2, processor):
    data = labelled.remove_columns("label").rename_column("complete", "label")
    calls = {
        "llm": lambda: evaluate_classification(stage2, processor, data, candidates=candidates, prompt=PROMPT,
                                               progress=False),
        "embedding": lambda: evaluate_classification(stage1, processor, data, candidates=candidates,
                                                     mode="embedding", progress=False),
        "vocabulary_ranking_scores": lambda: vocabulary_ranking_scores(stage2, processor, data, candidates, PROMPT,
                                                                       progress=False),
        "embedding_scores": lambda: embedding_scores(stage1, processor, data, candidates, progress=False),
    }
    with pytest.raises(error) as caught:
        calls[entry]()
    assert all(word in str(caught.value) for word in words), str(caught.value)


@pytest.mark.parametrize("option, words", [
    ("dog,,cat", ["--candidates", "positions 1 ('')", "empty or whitespace"]),
    ("dog,cat,", ["--candidates", "positions 2 ('')"]),
    ("dog, ,cat", ["--candidates", "positions 1 ('')"]),
    ("", ["--candidates", "positions 0 ('')"]),
    ("dog,cat,dog", ["--candidates", "repeated", "'dog' at positions [0, 2]"]),
    ("dog, cat,cat ", ["--candidates", "'cat' at positions [1, 2]"]),
])
@pytest.mark.parametrize("task", ["classify", "zero-shot"])
def test_eval_command_refuses_bad_candidates_before_loading(task, option, words, tmp_path, capsys):
    # The folders do not exist: the option is refused before anything loads.
    argv = ["eval", task, "--model", str(tmp_path / "model"), "--dataset", str(tmp_path / "data"),
            "--candidates", option]
    assert mint.cli.main(argv + (["--prompt", PROMPT] if task == "classify" else [])) == 1
    message = capsys.readouterr().err
    assert message.startswith("error: ") and all(word in message for word in words), message


@pytest.mark.parametrize("mode, column", [("llm", "label"), ("embedding", "label"), ("llm", "tags")])
def test_a_row_without_a_label_is_refused_by_row_or_skipped_and_counted(mode, column, labelled, stage1, stage2,
                                                                        processor, caplog):
    model = stage2 if mode == "llm" else stage1
    options = dict(prompt=PROMPT) if mode == "llm" else dict(mode="embedding")
    options.update(label_column=column, multi_label=column == "tags", progress=False)
    with pytest.raises(ValueError) as caught:
        evaluate_classification(model, processor, labelled, **options)
    for word in ("Rows [2]", f"no label in column {column!r}", "-1", "skip_invalid=True"):
        assert word in str(caught.value), str(caught.value)
    if column == "tags":
        return  # multi-label AUC needs more clips; the refusal is what this row checks
    with caplog.at_level(logging.WARNING):
        result = evaluate_classification(model, processor, labelled, skip_invalid=True, **options)
    assert "1 rows of the dataset are skipped (no label in column 'label')" in caplog.text
    assert result["num_clips"] == 3 and result["num_skipped"] == 1 and len(result["predictions"]) == 3
    assert result["skipped"] == [{"row": 2, "path": labelled.cast_column("audio", Audio(decode=False))[2]["audio"]
                                  ["path"], "reason": "no label in column 'label'"}]
    # The labelled rows score as they do alone: the skipped row is left out, never read as the last class.
    alone = evaluate_classification(model, processor, labelled.select([0, 1, 3]), **options)
    assert result["predictions"] == alone["predictions"] and result["accuracy"] == alone["accuracy"]


@pytest.mark.parametrize("labels, feature, error, words", [
    ([0, 5], ClassLabel(names=LABELS), ValueError, ["Row 1 of the dataset, column 'label'", "class index 5"]),
    (["dog", "piano"], None, ValueError, ["Row 1 of the dataset, column 'label'", "not in the candidate list"]),
    (["dog", "  "], None, ValueError, ["Row 1 of the dataset, column 'label'", "empty label"]),
])
def test_bad_labels_are_named_by_row(labels, feature, error, words, labelled, stage2, processor):
    data = Dataset.from_dict({"audio": labelled.cast_column("audio", Audio(decode=False))["audio"][:2],
                              "label": labels}).cast_column("audio", Audio())
    if feature is not None:
        data = data.cast_column("label", feature)
    with pytest.raises(error) as caught:
        evaluate_classification(stage2, processor, data, candidates=["dog", "cat"], prompt=PROMPT, progress=False)
    assert all(word in str(caught.value) for word in words), str(caught.value)


@pytest.fixture(scope="module")
def models(tmp_path_factory, stage1, stage2):
    """Each kind of model an evaluation may be handed, by name."""
    folder = tmp_path_factory.mktemp("stage1")
    stage1.save_pretrained(folder)
    untrained_llm = MintForConditionalGeneration.from_pretrained(folder).eval()  # its LLM built from its config
    based = MintForConditionalGeneration.from_pretrained(folder).eval()
    based.config.base_models = {"language_model": "flan-t5-base"}  # names a pretrained LLM
    torch.manual_seed(0)
    random_heads = MintForPreTraining(tiny.mint_config()).eval()
    random_heads.config.architectures = ["MintForConditionalGeneration"]  # as if its weights came from stage 2
    torch.manual_seed(0)
    headless = MintModel(tiny.mint_config()).eval()
    return {"stage1": stage1, "stage2": stage2, "untrained_llm": untrained_llm, "based": based,
            "random_heads": random_heads, "headless": headless}


def run(entry, model, processor, data):
    if entry == "classify":
        return evaluate_classification(model, processor, data, prompt=PROMPT, progress=False)
    if entry == "zero-shot":
        return evaluate_classification(model, processor, data, mode="embedding", progress=False)
    if entry == "vocabulary_ranking_scores":
        return vocabulary_ranking_scores(model, processor, data, LABELS, PROMPT, progress=False)
    if entry == "embedding_scores":
        return embedding_scores(model, processor, data, LABELS, progress=False)
    if entry == "retrieval":
        return evaluate_retrieval(model, processor, data, progress=False)
    if entry == "rerank":
        return evaluate_retrieval(model, processor, data, rerank_top_k=2, progress=False)
    if entry == "caption":
        return evaluate_captioning(model, processor, data, max_new_tokens=2, num_beams=1, progress=False,
                                   allow_empty=True)
    return MintRetrievalIndex(model, processor)


WRONG_MODELS = [
    ("classify", "stage1", ["Vocabulary ranking needs a MintForConditionalGeneration", "got MintForPreTraining",
                            "no LLM"]),
    ("classify", "untrained_llm", ["Vocabulary ranking needs", "loaded from the stage-1 checkpoint",
                                   "random weights", "base_models"]),
    ("vocabulary_ranking_scores", "untrained_llm", ["loaded from the stage-1 checkpoint"]),
    ("caption", "stage1", ["Captioning needs a MintForConditionalGeneration", "got MintForPreTraining"]),
    ("caption", "untrained_llm", ["Captioning needs", "loaded from the stage-1 checkpoint"]),
    ("zero-shot", "stage2", ["Zero-shot classification by embeddings needs a MintModel",
                             "got MintForConditionalGeneration", "no embedding heads"]),
    ("zero-shot", "random_heads", ["loaded from the stage-2 checkpoint", "random weights"]),
    ("embedding_scores", "stage2", ["needs a MintModel", "no embedding heads"]),
    ("retrieval", "stage2", ["Retrieval needs a MintModel", "no embedding heads"]),
    ("retrieval", "random_heads", ["Retrieval needs a MintModel", "loaded from the stage-2 checkpoint"]),
    ("rerank", "headless", ["Retrieval with ALM re-ranking needs a MintForPreTraining", "no ALM matching head"]),
    ("index", "stage2", ["The retrieval index (stage-1 embeddings) needs a MintModel", "no embedding heads"]),
    ("index", "random_heads", ["loaded from the stage-2 checkpoint"]),
]


@pytest.mark.parametrize("entry, kind, words", WRONG_MODELS)
def test_evaluation_refuses_a_model_of_the_wrong_kind(entry, kind, words, models, labelled, processor):
    data = labelled.remove_columns("label").rename_column("complete", "label").add_column(
        "caption", ["a dog", "a cat", "a piano", "a dog again"])
    with pytest.raises(ValueError) as caught:
        run(entry, models[kind], processor, data)
    assert all(word in str(caught.value) for word in words), str(caught.value)


@pytest.mark.parametrize("entry, kind", [("classify", "based"), ("classify", "stage2"), ("zero-shot", "stage1"),
                                         ("zero-shot", "headless"), ("rerank", "stage1"), ("index", "headless")])
def test_evaluation_takes_a_model_of_the_right_kind(entry, kind, models, labelled, processor):
    data = labelled.remove_columns("label").rename_column("complete", "label").add_column(
        "caption", ["a dog", "a cat", "a piano", "a dog again"])
    assert run(entry, models[kind], processor, data) is not None


@pytest.mark.parametrize("similarity, relevant, words", [
    (np.eye(3), [{0}, set(), {2}], ["Queries [1]", "no relevant item", "undefined"]),
    (np.eye(3), [set(), set(), set()], ["Queries [0, 1, 2] (3 in all)"]),
    (np.eye(3), [{0}, {1}], ["one set of relevant items per query", "(3, 3) and 2 sets"]),
    (np.ones(3), [{0}, {1}, {2}], ["(queries, items)"]),
])
def test_retrieval_metrics_refuse_queries_without_a_relevant_item(similarity, relevant, words):
    with pytest.raises(ValueError) as caught:
        retrieval_metrics(similarity, relevant)
    assert all(word in str(caught.value) for word in words), str(caught.value)


def test_retrieval_metrics_stay_defined_on_valid_queries():
    result = retrieval_metrics(np.eye(3), [{0}, {1}, {0, 2}])
    assert all(np.isfinite(value) for value in result.values()) and result["R@1"] == 1.0


def test_retrieval_refuses_a_clip_without_captions(labelled, stage1, processor):
    data = labelled.add_column("captions", [["a dog"], [], ["a piano"], ["a dog again"]])
    with pytest.raises(ValueError, match=r"Rows \[1\] of the dataset have no caption in \['captions'\]"):
        evaluate_retrieval(stage1, processor, data, caption_columns=["captions"], progress=False)


def test_the_retrieval_index_refuses_ids_that_do_not_match_its_clips(stage1, processor, tmp_path):
    audio = clips((16000, 12000, 9000))
    index = MintRetrievalIndex(stage1, processor).add(audio[:2], ids=["a", "b"], sampling_rate=16000, progress=False)
    for ids, words in ((["c", "c"], ['"c" at positions [2, 3]']), (["a", "d"], ['"a" at positions [0, 2]']),
                       (["d"], ["Got 2 clips but 1 ids"])):
        with pytest.raises(ValueError) as caught:
            index.add(audio[1:], ids=ids, sampling_rate=16000, progress=False)
        assert all(word in str(caught.value) for word in words), str(caught.value)
    assert index.ids == ["a", "b"] and len(index.embeddings) == 2  # a refused add changes nothing
    with pytest.raises(ValueError, match=r"Repeated clip ids.*\b0 at positions \[0, 2\]"):
        MintRetrievalIndex(stage1, processor).add(audio, ids=[0, 1, 0], sampling_rate=16000, progress=False)
    index.save(tmp_path / "index")
    metadata = tmp_path / "index" / "index.json"
    saved = json.loads(metadata.read_text())
    for ids, words in ((["a"], ["holds 1 ids", "holds 2 clip embeddings", "damaged"]),
                       (["a", "b", "c"], ["holds 3 ids"]), (None, ["no list of ids"]),
                       (["a", "a"], ["Repeated clip ids", '"a" at positions [0, 1]'])):
        metadata.write_text(json.dumps({**saved, "ids": ids}))
        with pytest.raises(ValueError) as caught:
            MintRetrievalIndex.load(tmp_path / "index", stage1, processor)
        assert all(word in str(caught.value) for word in words), str(caught.value)


@pytest.mark.parametrize("device, words", [
    ("cuda", ["--device cuda", "no CUDA device", "--device cpu"]),
    ("cuda:3", ["--device cuda:3"]),
    ("tpu9", ["--device 'tpu9' is not a device torch knows"]),
])
def test_a_device_this_machine_lacks_is_a_clear_error(device, words, tmp_path, capsys):
    if device.startswith("cuda") and torch.cuda.device_count() > int(device.partition(":")[2] or 0):
        pytest.skip("this machine has the device")
    argv = ["cache-features", "--model", str(tmp_path), "--dataset", str(tmp_path), "--output", str(tmp_path / "out"),
            "--device", device]
    assert mint.cli.main(argv) == 1
    message = capsys.readouterr().err
    assert message.startswith("error: ") and all(word in message for word in words), message


@pytest.mark.parametrize("model, words", [
    ("missing-model", ["--model 'missing-model'", "no such folder", "owner/name"]),
    ("./models/mint", ["no such folder"]),
    ("/nowhere/at/all", ["no such folder"]),
    ("a/b/c", ["no such folder"]),
    ("FILE", ["a file is not a model folder"]),
])
@pytest.mark.parametrize("task", ["zero-shot", "caption"])
def test_a_model_that_is_neither_a_folder_nor_a_hub_id_is_refused_before_any_lookup(task, model, words, tmp_path,
                                                                                    capsys):
    if model == "FILE":
        model = str(tmp_path / "weights.bin")
        open(model, "wb").close()
    assert mint.cli.main(["eval", task, "--model", model, "--dataset", str(tmp_path / "data"), "--output",
                          str(tmp_path / "out.json")]) == 1
    message = capsys.readouterr().err
    assert message.startswith("error: ") and all(word in message for word in words), message
    assert not (tmp_path / "out.json").exists()


def test_an_unwritable_output_is_refused_before_evaluating(tmp_path, capsys):
    (tmp_path / "taken").mkdir()
    assert mint.cli.main(["eval", "zero-shot", "--model", "owner/name", "--dataset", str(tmp_path / "data"), "--output",
                          str(tmp_path / "taken")]) == 1
    assert "is a folder" in capsys.readouterr().err


# ---- the outputs mint eval writes, and options that do not go together ----------------------------------------------

REPORT = {"task": "leakage", "num_eval_clips": 1, "num_overlapping": 0, "fraction_overlapping": 0.0, "examples": []}


@pytest.mark.parametrize("existing, overwrite, words", [
    ({"out.json": "my notes"}, False, ["out.json' exists and is not a report mint eval wrote", "--overwrite"]),
    ({"out.json": json.dumps({"task": "something else"})}, False, ["is not a report mint eval wrote"]),
    ({"out.json": json.dumps([1, 2])}, False, ["is not a report mint eval wrote"]),
    ({"out.md": "| my table |"}, False, ["out.md' exists and is not a report mint eval wrote"]),
    ({"out.json": "", "out.md": "x"}, False, ["out.json' exists"]),
    ({"out.json": "my notes"}, True, None),
    ({"out.md": "| my table |"}, True, None),
    ({"out.json": json.dumps(REPORT), "out.md": "| Eval clips |"}, False, None),  # mint eval's own: replaced
])
def test_a_report_never_replaces_a_file_it_did_not_write(existing, overwrite, words, tmp_path):
    for name, content in existing.items():
        (tmp_path / name).write_text(content)
    output = tmp_path / "out.json"
    if words is None:
        write_report(REPORT, output, overwrite=overwrite)
        assert json.loads(output.read_text()) == REPORT and output.with_suffix(".md").read_text().startswith("| Eval")
        return
    with pytest.raises(ValueError) as caught:
        write_report(REPORT, output, overwrite=overwrite)
    assert all(word in str(caught.value) for word in words), str(caught.value)
    assert {path.name: path.read_text() for path in tmp_path.iterdir()} == existing  # nothing was touched


@pytest.fixture(scope="module")
def folders(tmp_path_factory, labelled, stage1, stage2, processor):
    """Both models saved, and the labelled clips as a dataset without splits and as the test split of one."""
    root = tmp_path_factory.mktemp("eval-folders")
    for name, model in (("stage1", stage1), ("stage2", stage2)):
        model.save_pretrained(root / name)
        processor.save_pretrained(root / name)
    data = labelled.remove_columns("label").rename_column("complete", "label")
    data.save_to_disk(str(root / "unsplit"))
    DatasetDict({"test": data}).save_to_disk(str(root / "split"))
    return root


@pytest.mark.parametrize("task, options, words", [
    ("zero-shot", ["--known-column", "tags"], ["--known-column 'tags'", "add --multi-label"]),
    ("classify", ["--prompt", PROMPT, "--known-column", "tags"], ["--known-column 'tags'", "--multi-label"]),
    ("zero-shot", ["--split", "test", "--dataset", "UNSPLIT"], ["--split 'test'", "has no splits",
                                                                "leave --split out"]),
    ("retrieval", ["--split", "train", "--dataset", "UNSPLIT"], ["--split 'train'", "has no splits"]),
    ("classify", ["--template", "NSynth", "--split", "validation"], ["has no split 'validation'", "['test']"]),
    ("classify", ["--prompt", ""], ["--prompt is ''", "instruction before the candidates", "'This is a sound of'"]),
    ("classify", ["--prompt", "  "], ["--prompt is '  '"]),
    ("caption", ["--prompt", ""], ["--prompt is ''", "before its caption", "'Generate audio caption:'"]),
    ("zero-shot", ["--prompt", ""], ["zero-shot scores label prompts", "--label-template"]),
    ("zero-shot", ["--label-template", "A sound"], ["--label-template must hold exactly one '{}'"]),
    ("zero-shot", ["--label-template", "A {}", "--label-template", "A {}"], ["--label-template repeats"]),
    ("zero-shot", ["--output", "NOTES"], ["exists and is not a report mint eval wrote", "--overwrite"]),
])
def test_mint_eval_refuses_options_that_cannot_be_right_before_evaluating(task, options, words, folders, tmp_path,
                                                                          capsys):
    (tmp_path / "notes.json").write_text("my notes")
    replace = {"UNSPLIT": str(folders / "unsplit"), "NOTES": str(tmp_path / "notes.json")}
    model = folders / ("stage2" if task in ("classify", "caption") else "stage1")
    argv = ["eval", task, "--model", str(model), "--dataset", str(folders / "split"), "--quiet", "--output",
            str(tmp_path / "out.json"), *[replace.get(option, option) for option in options]]
    assert mint.cli.main(argv) == 1
    message = capsys.readouterr().err
    assert message.startswith("error: ") and all(word in message for word in words), message
    assert not (tmp_path / "out.json").exists() and (tmp_path / "notes.json").read_text() == "my notes"


def test_mint_eval_replaces_a_file_only_with_overwrite_and_reads_an_unsplit_dataset_whole(folders, tmp_path):
    (tmp_path / "notes.json").write_text("my notes")
    argv = ["eval", "zero-shot", "--model", str(folders / "stage1"), "--dataset", str(folders / "unsplit"),
            "--quiet", "--output", str(tmp_path / "notes.json")]
    assert mint.cli.main(argv) == 1 and (tmp_path / "notes.json").read_text() == "my notes"
    assert mint.cli.main(argv + ["--overwrite"]) == 0
    result = json.loads((tmp_path / "notes.json").read_text())
    assert (result["split"], result["num_clips"]) == (None, 4)
    assert mint.cli.main(argv) == 0  # now mint eval's own report: a rerun replaces it
