"""The few-shot adapter (Tip-Adapter over stage-1 embeddings): its logits and its leave-one-out search by hand, the
choice of support clips, the evaluation against its own composition, the command, and its refusals."""

import json
import math

import numpy as np
import pytest
import soundfile
import torch
import torch.nn.functional as F
from datasets import Audio, ClassLabel, Dataset, DatasetDict

import mint.cli
from mint.evaluation.classification import evaluate_classification
from mint.evaluation.few_shot import (clip_keys, evaluate_few_shot, search_alpha_beta, support_rows,
                                      tip_adapter_logits)
from mint.evaluation.reports import markdown_table
from pipelines_mint import template_text_embeddings
from tests.utils.audio import clips


LABELS = ["dog", "cat", "piano"]


def test_tip_adapter_logits_by_hand_on_a_three_clip_support_set():
    support_keys = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    values = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])  # labels 0, 1, 1
    keys = torch.tensor([[0.8, 0.6], [1.0, 0.0]])
    zero_shot = torch.tensor([[1.0, 0.5], [0.0, 0.2]])
    logits = tip_adapter_logits(zero_shot, keys, support_keys, values, alpha=0.5, beta=2.0)
    # cosines: clip 0 -> 0.8, 0.6, 0.96; clip 1 -> 1, 0, 0.6
    expected = [[1.0 + 0.5 * math.exp(-2 * 0.2), 0.5 + 0.5 * (math.exp(-2 * 0.4) + math.exp(-2 * 0.04))],
                [0.0 + 0.5 * math.exp(0.0), 0.2 + 0.5 * (math.exp(-2 * 1.0) + math.exp(-2 * 0.4))]]
    assert torch.allclose(logits, torch.tensor(expected), atol=1e-6)
    assert torch.equal(tip_adapter_logits(zero_shot, keys, support_keys, values, alpha=0.0), zero_shot)


def test_the_leave_one_out_search_by_hand():
    # Two tight pairs of support clips, one pair per class; the zero-shot logits call every clip class 0.
    support_keys = F.normalize(torch.tensor([[1.0, 0.1], [1.0, -0.1], [0.1, 1.0], [-0.1, 1.0]]), dim=-1)
    values = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    zero_shot = torch.tensor([[0.5, 0.0]] * 4)
    # alpha 0: zero-shot alone, 2 of 4 right. alpha 2, beta 5: a clip's cache holds its partner (cosine 0.980) and the
    # two others (cosines 0.198 and 0): clip 2 scores 0.5 + 2 (e^-4.01 + e^-5) = 0.550 for class 0 and 2 e^-0.099 =
    # 1.811 for class 1, and so on: 4 of 4.
    found = search_alpha_beta(zero_shot, support_keys, values, alphas=(0.0, 2.0), betas=(5.0,))
    assert found == {"alpha": 2.0, "beta": 5.0, "leave_one_out_accuracy": 1.0}
    # Each clip is left out of its own cache: at sharpness 0 the cache counts the other clips of each class (1 of its
    # own, 2 of the other), so alpha 2 gets every clip wrong and alpha 0 wins with 2 of 4.
    found = search_alpha_beta(zero_shot, support_keys, values, alphas=(0.0, 2.0), betas=(0.0,))
    assert found == {"alpha": 0.0, "beta": 0.0, "leave_one_out_accuracy": 0.5}


@pytest.mark.parametrize("targets, shots, error, words", [
    (["dog", "cat", "dog", None], 1, ValueError, ["no clip of 'piano'", "1 of 3 candidates"]),
    (["dog", "cat", "piano", "dog"], 2, ValueError, ["shots=2 is more than", "'cat' (1)", "'piano' (1)",
                                                     "at most 1 shots"]),
    (["dog", "cat", "piano"], 0, ValueError, ["shots must be a positive integer", "0"]),
    (["dog", "cat", "piano"], 1.5, ValueError, ["shots must be a positive integer"]),
    (["dog", "cat", "piano"], True, ValueError, ["shots must be a positive integer"]),
])
def test_support_rows_refuse_what_cannot_give_k_clips_per_class(targets, shots, error, words):
    with pytest.raises(error) as caught:
        support_rows(targets, LABELS, shots)
    assert all(word in str(caught.value) for word in words), str(caught.value)


def test_support_rows_draw_k_per_class_seeded():
    targets = ["dog", "cat", "piano", "dog", "cat", "piano", None, "dog"]
    assert support_rows(targets, LABELS, 1, seed=3) == support_rows(targets, LABELS, 1, seed=3)
    rows = support_rows(targets, LABELS, 2, seed=0)
    assert sorted(targets[row] for row in rows) == ["cat", "cat", "dog", "dog", "piano", "piano"]
    assert support_rows(targets[:6], LABELS, 2) == [0, 1, 2, 3, 4, 5]  # all there is, in row order
    assert {tuple(support_rows(targets, LABELS, 1, seed=seed)) for seed in range(8)} != {(0, 1, 2)}


def labelled_clips(folder, name, lengths, labels, seed):
    paths = []
    for i, clip in enumerate(clips(lengths, seed=seed)):
        paths.append(str(folder / f"{name}{i}.wav"))
        soundfile.write(paths[-1], clip, 16000)
    return Dataset.from_dict({"audio": paths, "label": labels}).cast_column("audio", Audio()).cast_column(
        "label", ClassLabel(names=LABELS))


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    """An evaluation set of 5 clips and a support set of 6 (two per class), in other files."""
    folder = tmp_path_factory.mktemp("few-shot")
    evaluated = labelled_clips(folder, "eval", (16000, 12000, 9000, 14000, 10000), [0, 1, 2, 0, 1], seed=0)
    support = labelled_clips(folder, "support", (11000, 13000, 9500, 15000, 12500, 10500), [0, 1, 2, 2, 1, 0],
                             seed=5)
    return evaluated, support


@torch.no_grad()
def test_few_shot_equals_its_composition_by_hand(sets, stage1, processor):
    evaluated, support = sets
    templates = ["This is a sound of {}.", "A recording of {}."]
    result = evaluate_few_shot(stage1, processor, evaluated, support, shots=1, label_template=templates, alpha=3.0,
                               beta=2.0, seed=1, progress=False)
    chosen = support_rows([LABELS[i] for i in support["label"]], LABELS, 1, seed=1)
    assert result["support_rows"] == chosen and result["num_support"] == 3

    def audio(dataset):
        inputs = processor(audio=dataset.cast_column("audio", Audio(decode=False))["audio"])
        return stage1.get_audio_features(**inputs).pooler_output

    text = template_text_embeddings(stage1, processor, LABELS, templates)
    queries, support_queries = audio(evaluated), audio(support.select(chosen))
    zero_shot = stage1.audio_text_similarity(queries, text) / stage1.temperature()
    # A clip's key: its query embeddings concatenated, so the cosine of two keys is the mean of the query cosines.
    cosines = torch.einsum("aqd,sqd->as", F.normalize(queries, dim=-1), F.normalize(support_queries, dim=-1)) / \
        queries.shape[1]
    assert torch.allclose(clip_keys(queries) @ clip_keys(support_queries).T, cosines, atol=1e-5)
    values = F.one_hot(torch.tensor([support["label"][row] for row in chosen]), 3).float()
    logits = zero_shot + 3.0 * torch.exp(-2.0 * (1 - cosines)) @ values
    targets = torch.tensor(evaluated["label"])
    assert result["predictions"] == [LABELS[i] for i in logits.argmax(-1).tolist()]
    assert result["accuracy"] == pytest.approx((logits.argmax(-1) == targets).float().mean().item())
    assert result["zero_shot_accuracy"] == pytest.approx((zero_shot.argmax(-1) == targets).float().mean().item())
    zero_shot_result = evaluate_classification(stage1, processor, evaluated, mode="embedding",
                                               label_template=templates, progress=False)
    assert result["zero_shot_accuracy"] == pytest.approx(zero_shot_result["accuracy"])
    assert (result["mode"], result["shots"], result["alpha"], result["beta"], result["label_template"]) == (
        "few-shot", 1, 3.0, 2.0, templates)
    assert markdown_table(result, dataset_name="eval").splitlines()[-1].startswith("| MINT few-shot (1 per class) |")


def test_the_search_is_recorded_and_chosen_on_the_support_set(sets, stage1, processor):
    evaluated, support = sets
    result = evaluate_few_shot(stage1, processor, evaluated, support, shots=2, search=True, progress=False)
    assert result["search"] is True and 0.0 <= result["leave_one_out_accuracy"] <= 1.0
    assert result["num_support"] == 6 and result["support_rows"] == [0, 1, 2, 3, 4, 5]


def with_labels(dataset, labels, names=None):
    data = Dataset.from_dict({"audio": dataset.cast_column("audio", Audio(decode=False))["audio"],
                              "label": labels}).cast_column("audio", Audio())
    return data.cast_column("label", ClassLabel(names=names)) if names else data


BAD_FEW_SHOT = [
    ("support labels outside the candidates", lambda e, s: (e, with_labels(s, [0, 1, 2, 2, 1, 0],
                                                                          ["dog", "cat", "bird"])), {},
     ValueError, ["The support set: Row 2 of the dataset, column 'label'", "['bird'] are not in the candidate list"]),
    ("a candidate without support", lambda e, s: (e, with_labels(s, ["dog", "cat", "cat", "dog", "cat", "dog"])), {},
     ValueError, ["support set has no clip of 'piano'"]),
    ("more shots than clips", lambda e, s: (e, s), {"shots": 3}, ValueError,
     ["shots=3 is more than the support set holds", "'dog' (2)", "at most 2 shots"]),
    ("the evaluated clips as support", lambda e, s: (e, e), {}, ValueError,
     ["clips of the evaluated dataset", "are also support clips", "another split"]),
    ("no label column in the support", lambda e, s: (e, s.rename_column("label", "class")), {}, ValueError,
     ["The support set: The dataset has no label column 'label'"]),
    ("a negative alpha", lambda e, s: (e, s), {"alpha": -1.0}, ValueError, ["alpha must be a finite number >= 0"]),
    ("an infinite beta", lambda e, s: (e, s), {"beta": float("inf")}, ValueError, ["beta must be a finite number"]),
    ("repeated candidates", lambda e, s: (e, s), {"candidates": ["dog", "cat", "dog"]}, ValueError,
     ["repeated labels", "'dog' at positions [0, 2]"]),
    ("a template without a placeholder", lambda e, s: (e, s), {"label_template": "A sound"}, ValueError,
     ["label_template must hold exactly one"]),
]


@pytest.mark.parametrize("case, make, options, error, words", BAD_FEW_SHOT, ids=[row[0] for row in BAD_FEW_SHOT])
def test_few_shot_refusals(case, make, options, error, words, sets, stage1, processor):
    evaluated, support = make(*sets)
    options = {"shots": 1, **options}
    with pytest.raises(error) as caught:
        evaluate_few_shot(stage1, processor, evaluated, support, progress=False, **options)
    assert all(word in str(caught.value) for word in words), str(caught.value)


def test_few_shot_refuses_a_stage2_model(sets, stage2, processor):
    with pytest.raises(ValueError, match="Zero-shot classification by embeddings needs a MintModel"):
        evaluate_few_shot(stage2, processor, *sets, shots=1, progress=False)


@pytest.fixture(scope="module")
def saved(tmp_path_factory, sets, stage1, processor):
    folder = tmp_path_factory.mktemp("few-shot-cli")
    stage1.save_pretrained(folder / "stage1")
    processor.save_pretrained(folder / "stage1")
    evaluated, support = sets
    DatasetDict({"test": evaluated, "train": support}).save_to_disk(str(folder / "data"))
    support.save_to_disk(str(folder / "support"))
    return folder


def test_mint_eval_few_shot_writes_its_own_row(saved, sets, stage1, processor, capsys):
    output = saved / "few.json"
    argv = ["eval", "few-shot", "--model", str(saved / "stage1"), "--dataset", str(saved / "data"), "--support",
            str(saved / "data"), "--shots", "2", "--alpha", "2", "--beta", "4", "--quiet", "--output", str(output)]
    assert mint.cli.main(argv) == 0
    written = json.loads(output.read_text())
    expected = evaluate_few_shot(stage1, processor, *sets, shots=2, alpha=2.0, beta=4.0, progress=False)
    assert written["predictions"] == expected["predictions"] and written["accuracy"] == expected["accuracy"]
    assert (written["split"], written["support"], written["support_split"]) == ("test", str(saved / "data"), "train")
    assert "| MINT few-shot (2 per class) |" in capsys.readouterr().out
    assert output.with_suffix(".md").read_text().splitlines()[-1].startswith("| MINT few-shot (2 per class) |")
    # A support folder without splits is read whole (the earlier report, which mint eval wrote, is replaced).
    assert mint.cli.main(argv[:7] + [str(saved / "support")] + argv[8:]) == 0
    assert json.loads(output.read_text())["support_split"] is None


@pytest.mark.parametrize("options, words", [
    (["--search", "--alpha", "1"], ["--search chooses alpha and beta", "leave out --alpha and --beta"]),
    (["--search", "--beta", "1"], ["--search chooses alpha and beta"]),
    (["--prompt", "It is"], ["few-shot scores label prompts", "--label-template"]),
    (["--support-split", "train", "--support", "SUPPORT"], ["--support-split 'train'", "has no splits",
                                                             "leave --support-split out"]),
    (["--split", "test", "--dataset", "SUPPORT"], ["--split 'test'", "has no splits"]),
    (["--support-split", "validation"], ["has no split 'validation'", "['test', 'train']"]),
    (["--label-template", "A sound"], ["--label-template must hold exactly one"]),
    (["--candidates", "dog,,cat"], ["--candidates", "positions 1 ('')"]),
])
def test_mint_eval_few_shot_refuses_bad_options(options, words, saved, capsys):
    options = [str(saved / "support") if option == "SUPPORT" else option for option in options]
    argv = ["eval", "few-shot", "--model", str(saved / "stage1"), "--dataset", str(saved / "data"), "--support",
            str(saved / "data"), "--shots", "1", "--quiet", "--output", str(saved / "refused.json"), *options]
    assert mint.cli.main(argv) == 1
    message = capsys.readouterr().err
    assert message.startswith("error: ") and all(word in message for word in words), message
    assert not (saved / "refused.json").exists()


@pytest.mark.parametrize("options, message", [
    (["--shots", "0"], "expected a positive integer, got '0'"),
    (["--shots", "2", "--alpha", "-1"], "expected a number >= 0, got '-1'"),
    (["--shots", "2", "--beta", "nan"], "expected a finite number, got 'nan'"),
    (["--shots", "2", "--seed", "-1"], "expected an integer >= 0, got '-1'"),
    (["--shots", "2", "--label-template", "{}", "--label-template-file", "f"], "not allowed with argument"),
    ([], "the following arguments are required: --support"),
])
def test_mint_eval_few_shot_parser_refuses_bad_values(options, message, capsys):
    support = [] if not options else ["--support", "s"]
    with pytest.raises(SystemExit) as exit:
        mint.cli.main(["eval", "few-shot", "--model", "m", "--dataset", "d", *support, *options])
    assert exit.value.code == 2 and message in capsys.readouterr().err


def test_clip_keys_are_unit_vectors_whose_cosine_is_the_mean_query_cosine():
    torch.manual_seed(0)
    a, b = F.normalize(torch.randn(2, 4, 3, 5), dim=-1)
    cosine = (clip_keys(a) @ clip_keys(b).T).numpy()
    expected = np.array([[np.mean([float(a[i, q] @ b[j, q]) for q in range(3)]) for j in range(4)]
                         for i in range(4)])
    assert np.allclose(cosine, expected, atol=1e-6) and torch.allclose(clip_keys(a).norm(dim=-1), torch.ones(4))
