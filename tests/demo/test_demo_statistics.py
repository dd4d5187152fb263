"""The demo's statistics over stage-2 seeds, its accuracy per soundfont, its Hub folder, `mint ablate`'s table and the
checks of their options (the whole demo takes about half an hour of CPU time: README)."""

import json
import os
import re
from fractions import Fraction
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml
from datasets import Dataset
from torch.nn.attention import SDPBackend

import mint.cli
from mint.demo import ablation, report, run
from mint.demo.settings import HUB_FOLDER, PROBE_DEMO_FEATURES, TASKS
from modeling_mint import MintForConditionalGeneration
from tests.utils import tiny


def ranking(accuracies: dict[str, float], by_font: dict[str, float] | None = None) -> dict:
    """A `ranking_results`-shaped run: each label type's summed accuracy, 0.1 less length-normalised."""
    return {name: {"summed": {"task": "classification", "mode": "llm", "accuracy": accuracy},
                   "length_normalised": accuracy - 0.1,
                   "by_soundfont": {font: {"accuracy": a, "clips": 4} for font, a in (by_font or {}).items()}
                   if name == "instrument family" else None}
            for name, accuracy in accuracies.items()}


def embedding() -> dict:
    return {name: {"accuracy": 0.4, "chance": 0.125, "clips": 200,
                   "by_soundfont": {"A": {"accuracy": 0.5, "clips": 4}, "B": {"accuracy": 0.25, "clips": 4}}
                   if name == "instrument family" else None} for name in TASKS}


def test_classification_is_the_mean_and_sample_std_over_the_seeds():
    runs = [ranking(dict.fromkeys(TASKS, a), {"A": a, "B": a / 2}) for a in (0.6, 0.7, 0.8)]
    combined = run.combine_classification(embedding(), runs)
    family = combined["instrument family"]
    assert family["vocabulary_ranking"] == pytest.approx(0.7)
    assert family["vocabulary_ranking_std"] == pytest.approx(0.1)  # sqrt((0.01 + 0 + 0.01) / 2)
    assert family["vocabulary_ranking_length_normalised"] == pytest.approx(0.6)
    assert family["vocabulary_ranking_per_seed"] == [0.6, 0.7, 0.8]
    assert (family["embedding_zero_shot"], family["chance"], family["clips"]) == (0.4, 0.125, 200)
    assert family["by_soundfont"]["B"] == pytest.approx({"embedding_zero_shot": 0.25, "clips": 4,
                                                        "vocabulary_ranking": 0.35, "vocabulary_ranking_std": 0.05})
    assert "by_soundfont" not in combined["spoken word"]
    one = run.combine_classification(embedding(), runs[:1])["loudness"]
    assert (one["vocabulary_ranking"], one["vocabulary_ranking_std"]) == (0.6, 0.0)


def test_captioning_is_the_mean_over_the_seeds_and_none_where_not_computed():
    runs = [{"tokenizer": "ptb", **dict.fromkeys(run.CAPTION_METRICS, v), "spice": None} for v in (0.2, 0.4)]
    combined = run.combine_captioning(runs)
    assert combined["bleu_4"] == pytest.approx(0.3) and combined["bleu_4_std"] == pytest.approx(0.1414, abs=1e-4)
    assert combined["spice"] is None and combined["tokenizer"] == "ptb"


def test_accuracy_per_soundfont_counts_each_fonts_clips():
    subset = Dataset.from_dict({"soundfont": ["A", "A", "B", "B", "B"], "family": ["x", "y", "x", "x", "y"]})
    by_font = run._by_soundfont(subset, "family", ["x", "x", "x", "y", "y"])
    assert by_font == {"A": {"accuracy": 0.5, "clips": 2}, "B": {"accuracy": pytest.approx(2 / 3), "clips": 3}}
    assert run._by_soundfont(Dataset.from_dict({"family": ["x"]}), "family", ["x"]) is None


def results(seeds: int) -> dict:
    classification = run.combine_classification(
        embedding(), [ranking(dict.fromkeys(TASKS, a), {"A": a, "B": a / 2}) for a in (0.6, 0.7, 0.8)[:seeds]])
    captioning = run.combine_captioning([{"tokenizer": "ptb", **dict.fromkeys(run.CAPTION_METRICS, 0.5)}] * seeds)
    return {"classification": classification, "stage2_seeds": list(range(seeds)), "held_out_soundfont": "B",
            "retrieval": {"R@1": 0.1, "R@5": 0.2, "R@10": 0.3, "mAP@10": 0.15}, "captioning": captioning,
            "timing": {"total_s": 600.0, "stage1_s": 300.0, "stage2_s": 240.0}}


def test_the_table_gives_mean_and_std_over_seeds_and_each_soundfont(tmp_path):
    lines = report.write_results(str(tmp_path), results(3)).splitlines()
    assert lines[0].startswith("| Held-out task | Vocabulary ranking, summed (stage 2, mean ± std over 3 seeds) |")
    assert lines[2] == "| instrument family | 70.0 ± 10.0 | 60.0 ± 10.0 | 40.0 | 12.5 | 200 |"
    start = lines.index("| Soundfont | instrument family | Clips |")
    assert lines[start + 2:start + 4] == ["| A | 70.0 / 50.0 | 4 |", "| B (held out) | 35.0 / 25.0 | 4 |"]
    assert "| 50.0 ± 0.0 | 50.0 ± 0.0 |" in "\n".join(lines)
    single = report.results_table(results(1)).splitlines()
    assert single[2] == "| instrument family | 60.0 | 50.0 | 40.0 | 12.5 | 200 |"


def test_the_probe_bound_is_the_one_chosen_on_validation_where_recorded(tmp_path):
    bounds = {name: {"accuracy": 0.9, "features": "hidden states 0+4", "validation_accuracy": 0.95} for name in TASKS}
    accuracy = {"hidden state 0": dict.fromkeys(TASKS, 0.99)}  # best on the test split: not what was chosen
    (tmp_path / "encoder_probe.json").write_text(json.dumps({"accuracy": accuracy, "bounds": bounds}))
    assert report.encoder_probe_bounds(str(tmp_path))["loudness"] == {"accuracy": 0.9, "features": "hidden states 0+4"}


@pytest.fixture
def stage2_folder(tmp_path):
    torch.manual_seed(0)
    model = MintForConditionalGeneration(tiny.mint_config())
    folder = tmp_path / "stage2"
    model.save_pretrained(folder)
    tiny.processor().save_pretrained(folder)
    return folder


def test_the_hub_folder_carries_every_result_of_its_model(tmp_path, stage2_folder):
    model = MintForConditionalGeneration.from_pretrained(stage2_folder)
    classification = ranking({name: 0.5 + i / 10 for i, name in enumerate(TASKS)})
    captioning = {"task": "captioning", **dict.fromkeys(run.CAPTION_METRICS, 0.25), "spice": None}
    recipe = run.stage2_recipe(str(stage2_folder), str(tmp_path / "out"), 2, 0, 2e-4)
    folder = run.write_hub_folder(str(tmp_path), model, recipe, tiny.processor(), classification, captioning)
    assert folder == str(tmp_path / HUB_FOLDER)
    card = (tmp_path / HUB_FOLDER / "README.md").read_text()
    assert "- optim: `adamw_torch_fused`" in card and "- bridge_autocast: `True`" in card  # how it trained
    index = yaml.safe_load(card.split("---")[1])["model-index"][0]["results"]
    accuracy = {r["dataset"]["name"]: r["metrics"][0]["value"] for r in index
                if r["task"]["type"] == "audio-classification"}
    assert accuracy == {f"{run.DATASET_NAME}: {name}": pytest.approx(0.5 + i / 10) for i, name in enumerate(TASKS)}
    captions = [m for r in index if r["task"]["type"] == "audio-captioning" for m in r["metrics"]]
    assert sorted(m["name"] for m in captions) == sorted(k for k in run.CAPTION_METRICS if k != "spice")
    # Written again into the folder it wrote; a folder holding something else is refused.
    run.write_hub_folder(str(tmp_path), model, recipe, tiny.processor(), classification, captioning)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / HUB_FOLDER).mkdir()
    (tmp_path / "other" / HUB_FOLDER / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="notes.txt.*save_for_hub did not write"):
        run.write_hub_folder(str(tmp_path / "other"), model, recipe, tiny.processor(), classification, captioning)
    commands = run.share_commands("mint-demo").splitlines()
    assert commands[1].split("#")[0].split() == ["mint", "app", "mint-demo/hub", "--stage1", "mint-demo/stage1"]
    assert commands[2].split("#")[0].split() == ["hf", "upload", run.REPO_ID, "mint-demo/hub"]


@pytest.mark.parametrize("speed", [{}, run.FAST_TRAINING],
                         ids=["fp32", "the demo's optimizer and precision"])
def test_stage_2_twice_with_one_seed_and_thread_count_gives_the_same_weights(tmp_path, speed):
    from safetensors.torch import load_file

    from mint.data.examples import to_mint_examples
    from mint.training.trainer import train
    from tests.utils.training import make_audio_dataset, make_mint_folder, recipe

    folder = make_mint_folder(tmp_path / "stage1")
    examples = to_mint_examples(make_audio_dataset(tmp_path), "WavCaps", caption_column="caption")
    weights = []
    for name in ("a", "b"):
        with run.deterministic(threads=1):
            train(recipe(folder, tmp_path / name, stage=2, max_steps=3, **speed), examples)
        weights.append(load_file(tmp_path / name / "model.safetensors"))
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][key], weights[1][key]) for key in weights[0])


def test_deterministic_restores_the_settings_it_changes():
    fill = torch.utils.deterministic.fill_uninitialized_memory
    threads, enabled = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    with run.deterministic(threads=1):
        assert torch.are_deterministic_algorithms_enabled() and torch.get_num_threads() == 1
        assert torch.utils.deterministic.fill_uninitialized_memory is False
    assert (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()) == (threads, enabled)
    assert torch.utils.deterministic.fill_uninitialized_memory is fill
    with pytest.raises(RuntimeError, match="inside"), run.deterministic(threads=1):
        raise RuntimeError("inside")
    assert torch.utils.deterministic.fill_uninitialized_memory is fill
    with pytest.raises(ValueError, match="threads must be a positive integer"), run.deterministic(threads=0):
        pass
    assert (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()) == (threads, enabled)
    assert torch.utils.deterministic.fill_uninitialized_memory is fill


def test_training_without_filling_new_memory_gives_the_same_weights(tmp_path):
    """`deterministic` leaves out deterministic mode's NaN fill of new tensors: no kernel of a training step reads
    memory it did not write, so both stages' weights are the same with and without the fill."""
    from safetensors.torch import load_file

    from mint.data.examples import to_caption_pairs, to_mint_examples
    from mint.training.trainer import train
    from tests.utils.training import make_audio_dataset, make_mint_folder, recipe

    folder = make_mint_folder(tmp_path / "stage1")
    audio = make_audio_dataset(tmp_path)
    data = {1: to_caption_pairs(audio), 2: to_mint_examples(audio, "WavCaps", caption_column="caption")}
    for stage in (1, 2):
        weights = []
        for fill in (True, False):
            with run.deterministic(threads=1):
                torch.utils.deterministic.fill_uninitialized_memory = fill
                train(recipe(folder, tmp_path / f"{stage}-{fill}", stage=stage, max_steps=3, **run.FAST_TRAINING),
                      data[stage])
            weights.append(load_file(tmp_path / f"{stage}-{fill}" / "model.safetensors"))
        assert weights[0].keys() == weights[1].keys()
        assert all(torch.equal(weights[0][key], weights[1][key]) for key in weights[0]), stage


def test_the_ablation_table_gives_each_objective_set_mean_and_std():
    summary = {name: {m: [0.5, 0.02] for m in [*TASKS, "mean zero-shot", "R@1", "R@5", "R@10"]}
               for name in ("ALC", "ALC+ALM+ATG")}
    lines = ablation.ablation_table({"seeds": [0, 1], "stage1_epochs": 3.0, "stage1_query_learning_rate": 2e-4,
                                     "summary": summary}).splitlines()
    assert lines[2] == "| Objectives | " + " | ".join(TASKS) + " | mean zero-shot | R@1 | R@5 | R@10 |"
    assert lines[4] == "| ALC | " + " | ".join(["50.0 ± 2.0"] * (len(TASKS) + 4)) + " |"
    assert "seeds [0, 1]" in lines[0] and "3 epochs" in lines[0]
    assert "the queries and cross-attention at 0.0002," in lines[0]


# (argv, words the message must hold)
BAD_COMMANDS = [
    (["demo", "--stage2-seeds", "0", "0"], ["repeats a seed"]),
    (["ablate", "--seeds", "1", "1"], ["repeats a seed"]),
    (["ablate", "--objectives", "ALC", "ATG"], ["objective_sets must name distinct sets", "'ALC+ATG'"]),
    (["ablate", "--objectives", "ALC", "ALC"], ["objective_sets must name distinct sets"]),
    (["demo", "--reuse-stage1", "--stage1-epochs", "7"], ["--reuse-stage1", "--stage1-epochs", "pass one of them"]),
    (["demo", "--probe-encoder", "--stage2-seeds", "0", "1"], ["--probe-encoder", "--stage2-seeds", "does not run"]),
    (["demo", "--probe-encoder", "--reuse-stage1", "--seed", "3"], ["--seed, --reuse-stage1", "leave them out"]),
    (["demo", "--probe-encoder", "--stage1-query-learning-rate", "2e-4"], ["--stage1-query-learning-rate",
                                                                           "does not run"]),
    (["demo", "--reuse-stage1", "--stage1-query-learning-rate", "2e-4"], ["--reuse-stage1",
                                                                          "--stage1-query-learning-rate"]),
    (["demo", "--probe-encoder", "--cross-attention-frequency", "2"], ["--cross-attention-frequency",
                                                                        "does not run"]),
    (["demo", "--reuse-stage1", "--cross-attention-frequency", "2"], ["--reuse-stage1", "--cross-attention-frequency",
                                                                       "pass one of them"]),
    (["demo", "--cross-attention-frequency", "9"], ["cross_attention_frequency must be an integer from 1", "got 9"]),
    (["ablate", "--cross-attention-frequency", "7"], ["cross_attention_frequency must be an integer from 1"]),
]


@pytest.mark.parametrize("argv, words", BAD_COMMANDS)
def test_bad_demo_options_are_refused_before_anything_is_written(tmp_path, capsys, argv, words):
    assert mint.cli.main([*argv, "--output", str(tmp_path / "out"), "--quiet"]) == 1
    error = capsys.readouterr().err
    assert error.startswith("error: ") and all(word in error for word in words), error
    assert not (tmp_path / "out").exists()


# (keyword arguments of run_demo / run_ablation, words the message must hold)
BAD_SETTINGS = [
    (run.run_demo, {"stage2_seeds": []}, ["stage2_seeds must name at least one seed"]),
    (run.run_demo, {"stage2_seeds": [0, -1]}, ["each of stage2_seeds must be an integer from 0 to 4294967295", "-1"]),
    (run.run_demo, {"stage2_seeds": [0.5]}, ["each of stage2_seeds must be an integer", "0.5"]),
    (run.run_demo, {"stage2_seeds": [0, 2**32]}, ["from 0 to 4294967295 (a seed)", "4294967296"]),
    (run.run_demo, {"stage2_seeds": [np.bool_(True)]}, ["each of stage2_seeds must be an integer"]),
    (run.run_demo, {"stage2_seeds": 3}, ["stage2_seeds must be a list of seeds", "got 3"]),
    (run.run_demo, {"stage2_seeds": "012"}, ["stage2_seeds must be a list of seeds", "'012'"]),
    (run.run_demo, {"seed": -1, "stage2_seeds": [0]}, ["seed must be an integer from 0 to 4294967295", "-1"]),
    (run.run_demo, {"seed": True}, ["seed must be an integer", "True"]),
    (run.run_demo, {"seed": "0"}, ["seed must be an integer", "'0'"]),
    (run.run_demo, {"seed": 2**32, "stage2_seeds": [0, 1]}, ["seed must be an integer", "4294967296"]),
    (run.run_demo, {"threads": 0}, ["threads must be a positive integer"]),
    (run.run_demo, {"threads": True}, ["threads must be a positive integer"]),
    (run.run_demo, {"threads": np.float64(2)}, ["threads must be a positive integer"]),
    (run.run_demo, {"overwrite": "no"}, ["overwrite must be True or False", "'no'"]),
    (run.run_demo, {"reuse_stage1": "yes"}, ["reuse_stage1 must be True or False", "'yes'"]),
    (run.run_demo, {"probe": None}, ["probe must be True or False", "None"]),
    (run.run_demo, {"stage1_epochs": 7, "reuse_stage1": True}, ["--reuse-stage1", "--stage1-epochs",
                                                                "pass one of them"]),
    (run.run_demo, {"overwrite": True, "reuse_stage1": True}, ["--reuse-stage1", "--overwrite", "pass one of them"]),
    (run.run_demo, {"stage2_dropout": 1.0}, ["stage2_dropout must be a number in [0, 1)", "1.0"]),
    (run.run_demo, {"stage2_dropout": -0.5}, ["stage2_dropout must be a number in [0, 1)"]),
    (run.run_demo, {"stage2_dropout": "0"}, ["stage2_dropout must be a number in [0, 1)", "'0'"]),
    (run.run_demo, {"stage2_dropout": float("nan")}, ["stage2_dropout must be a number in [0, 1)"]),
    (run.run_demo, {"stage1_dropout": 1}, ["stage1_dropout must be a number in [0, 1)", "got 1"]),
    (run.run_demo, {"stage1_dropout": "0.1"}, ["stage1_dropout must be a number in [0, 1)"]),
    (run.run_demo, {"stage1_dropout": 0.0, "reuse_stage1": True}, ["--reuse-stage1", "--stage1-dropout",
                                                                   "pass one of them"]),
    (run.run_demo, {"stage1_epochs": -1}, ["stage1_epochs must be a positive number", "-1"]),
    (run.run_demo, {"stage1_epochs": float("nan")}, ["stage1_epochs must be a positive number", "nan"]),
    (run.run_demo, {"stage1_epochs": float("inf")}, ["stage1_epochs must be a positive number"]),
    (run.run_demo, {"stage2_epochs": 0}, ["stage2_epochs must be a positive number"]),
    (run.run_demo, {"stage2_epochs": "2"}, ["stage2_epochs must be a positive number", "'2'"]),
    (run.run_demo, {"bridge_learning_rate": -1.0}, ["bridge_learning_rate must be a non-negative number"]),
    (run.run_demo, {"bridge_learning_rate": float("nan")}, ["bridge_learning_rate must be a non-negative number"]),
    (run.run_demo, {"bridge_learning_rate": None}, ["bridge_learning_rate must be a non-negative number"]),
    (run.run_demo, {"stage1_query_learning_rate": -1e-3}, ["stage1_query_learning_rate must be a non-negative number",
                                                           "-0.001"]),
    (run.run_demo, {"stage1_query_learning_rate": float("inf")}, ["stage1_query_learning_rate must be a non-negative"]),
    (run.run_demo, {"stage1_query_learning_rate": "1e-3"}, ["stage1_query_learning_rate must be a non-negative",
                                                            "'1e-3'"]),
    (run.run_demo, {"stage1_query_learning_rate": True}, ["stage1_query_learning_rate must be a non-negative"]),
    (run.run_demo, {"stage1_query_learning_rate": 2e-4, "reuse_stage1": True},
     ["--reuse-stage1", "--stage1-query-learning-rate", "pass one of them"]),
    (ablation.run_ablation, {"seeds": []}, ["seeds must name at least one seed"]),
    (ablation.run_ablation, {"seeds": [2**32]}, ["each of seeds must be an integer from 0 to 4294967295"]),
    (ablation.run_ablation, {"seeds": 0}, ["seeds must be a list of seeds"]),
    (ablation.run_ablation, {"overwrite": "no"}, ["overwrite must be True or False"]),
    (ablation.run_ablation, {"objective_sets": []}, ["distinct sets"]),
    (ablation.run_ablation, {"stage1_epochs": 0}, ["stage1_epochs must be a positive number"]),
    (ablation.run_ablation, {"stage1_epochs": "3"}, ["stage1_epochs must be a positive number"]),
    (ablation.run_ablation, {"stage1_epochs": float("nan")}, ["stage1_epochs must be a positive number"]),
    (ablation.run_ablation, {"stage1_query_learning_rate": float("nan")},
     ["stage1_query_learning_rate must be a non-negative number", "nan"]),
    (ablation.run_ablation, {"stage1_query_learning_rate": -1}, ["stage1_query_learning_rate must be a non-negative"]),
    (ablation.run_ablation, {"stage1_query_learning_rate": 10**400}, ["stage1_query_learning_rate must be a non-neg"]),
    (ablation.run_ablation, {"stage1_epochs": 10**400}, ["stage1_epochs must be a positive number"]),
    (run.run_demo, {"stage1_query_learning_rate": 10**400}, ["stage1_query_learning_rate must be a non-negative"]),
    (run.run_demo, {"stage1_epochs": 10**400}, ["stage1_epochs must be a positive number"]),
    (run.run_demo, {"stage2_epochs": 10**400}, ["stage2_epochs must be a positive number"]),
    (run.run_demo, {"bridge_learning_rate": 10**400}, ["bridge_learning_rate must be a non-negative number"]),
    (run.run_demo, {"stage1_query_learning_rate": Fraction(1, 10**400)}, ["stage1_query_learning_rate must be"]),
    (run.run_demo, {"stage2_dropout": Fraction(1, 10**400)}, ["stage2_dropout must be a number in [0, 1)"]),
    (run.run_demo, {"cross_attention_frequency": 0}, ["cross_attention_frequency must be an integer from 1", "got 0"]),
    (run.run_demo, {"cross_attention_frequency": 7}, ["cross_attention_frequency must be an integer from 1",
                                                      "to 6 (its first layer only)", "got 7"]),
    (run.run_demo, {"cross_attention_frequency": 1.0}, ["cross_attention_frequency must be an integer", "1.0"]),
    (run.run_demo, {"cross_attention_frequency": True}, ["cross_attention_frequency must be an integer", "True"]),
    (run.run_demo, {"cross_attention_frequency": "2"}, ["cross_attention_frequency must be an integer", "'2'"]),
    (run.run_demo, {"cross_attention_frequency": 2, "reuse_stage1": True},
     ["--reuse-stage1", "--cross-attention-frequency", "pass one of them"]),
    (ablation.run_ablation, {"cross_attention_frequency": -1}, ["cross_attention_frequency must be an integer"]),
    (ablation.run_ablation, {"cross_attention_frequency": 2**70}, ["cross_attention_frequency must be an integer"]),
]


@pytest.mark.parametrize("function, kwargs, words", BAD_SETTINGS)
def test_bad_settings_are_refused(tmp_path, function, kwargs, words):
    with pytest.raises(ValueError) as caught:
        function(str(tmp_path / "out"), **kwargs)
    assert all(word in str(caught.value) for word in words), caught.value
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("argv", [["demo", "--seed", "4294967296"], ["demo", "--stage2-seeds", "0", "4294967296"],
                                  ["ablate", "--seeds", "4294967296"]])
def test_a_seed_the_trainer_would_refuse_is_refused_by_the_parser(tmp_path, capsys, argv):
    with pytest.raises(SystemExit) as exited:
        mint.cli.main([*argv, "--output", str(tmp_path / "out"), "--quiet"])
    assert exited.value.code == 2 and "expected a seed from 0 to 4294967295" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_numpy_seeds_and_threads_are_taken_as_ints():
    seeds = run.check_seeds(np.arange(3))
    assert seeds == [0, 1, 2] and all(type(seed) is int for seed in seeds)
    assert run.check_seed("seed", np.int64(7)) == 7 and type(run.check_seed("seed", np.int64(7))) is int
    run.check_threads(np.int64(2))


def test_a_refused_overwrite_keeps_what_the_folder_holds(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("my work")
    with pytest.raises(ValueError, match="overwrite must be True or False"):
        run.run_demo(str(tmp_path / "out"), overwrite="no", progress=False)
    assert (tmp_path / "out" / "notes.txt").read_text() == "my work"


def test_reuse_stage1_without_its_training_log_is_refused_before_anything_runs(tmp_path, monkeypatch):
    (tmp_path / "out" / "stage1").mkdir(parents=True)
    (tmp_path / "out" / "stage1" / "model.safetensors").write_bytes(b"")
    monkeypatch.setattr(run, "prepare", lambda *args: pytest.fail("prepare ran"))
    with pytest.raises(ValueError) as caught:
        run.run_demo(str(tmp_path / "out"), reuse_stage1=True, progress=False)
    assert all(word in str(caught.value) for word in ("stage1_logs.json", "is missing", "without --reuse-stage1"))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["stage1"]


@pytest.mark.parametrize("combine, words", [
    (lambda: run.combine_classification({"loudness": {}}, []), ["combine_classification", "at least one"]),
    (lambda: run.combine_captioning([]), ["combine_captioning", "at least one"]),
])
def test_combining_no_run_is_refused(combine, words):
    with pytest.raises(ValueError) as caught:
        combine()
    assert all(word in str(caught.value) for word in words), caught.value


@pytest.mark.parametrize("epochs", [np.float32(2), np.int64(2)])
def test_the_ablation_records_numpy_epochs_as_a_number(tmp_path, monkeypatch, epochs):
    """A numpy number of epochs is written into the run's settings (JSON) as a plain number, so the run is found
    finished next time."""

    class Stop(Exception):
        pass

    def loaded(*args, **kwargs):
        raise Stop

    monkeypatch.setattr(ablation, "prepare", lambda *a, **k: ({}, "assembled", None, None))
    monkeypatch.setattr(ablation, "train_stage1", lambda folder, run_dir, *a, **k: os.makedirs(run_dir))
    monkeypatch.setattr(ablation.MintForPreTraining, "from_pretrained", loaded)
    with pytest.raises(Stop):
        ablation.run_ablation(str(tmp_path / "out"), seeds=[0], stage1_epochs=epochs, objective_sets=["ALC"],
                              progress=False)
    settings = json.loads((tmp_path / "out" / "ablation" / "ALC-seed-0" / ablation.RUN_SETTINGS).read_text())
    assert settings["stage1_epochs"] == 2.0
    # A run trained with other stage-1 rates is not taken for this one.
    assert settings["query_learning_rate"] == run.STAGE1_QUERY_LEARNING_RATE == 1e-3


def test_the_demos_stage_2_trains_without_dropout_unless_told_otherwise(tmp_path):
    assert run.stage2_recipe("stage1", str(tmp_path), 2, 0, 2e-4).dropout == run.STAGE2_DROPOUT == 0.0
    assert run.stage2_recipe("stage1", str(tmp_path), 2, 0, 2e-4, dropout=0.1).dropout == 0.1
    # A stage 2 of the demo's folder trained with another dropout is replaced, not refused as another run's folder.
    assert run.stage2_recipe("stage1", str(tmp_path), 2, 0, 2e-4).overwrite


def _stage1_recipes(monkeypatch) -> tuple[list, Dataset]:
    """The recipes `run.train_stage1` builds (collected instead of trained) and a one-clip feature cache for it."""
    recipes = []
    monkeypatch.setattr(run, "train", lambda recipe, pairs: recipes.append(recipe) or SimpleNamespace(
        state=SimpleNamespace(log_history=[])))
    cached = Dataset.from_dict({"audio_encoder_features": [[[0.0]]], "caption": ["a piano plays a low note softly"],
                                "instrument_family": ["piano"], "register": ["low"], "loudness": ["softly"],
                                "word": [None], "event": [None]})
    return recipes, cached


def test_the_demos_stage_1_trains_without_dropout_unless_told_otherwise(monkeypatch, tmp_path):
    recipes, cached = _stage1_recipes(monkeypatch)
    run.train_stage1("assembled", str(tmp_path / "a"), cached, 1, 0)
    run.train_stage1("assembled", str(tmp_path / "b"), cached, 1, 0, dropout=0.1)

    class Trained(Exception):
        pass

    def stop(*args, dropout, **kwargs):
        recipes.append(SimpleNamespace(dropout=dropout))
        raise Trained

    # run_demo: left unset, the demo's setting; given, that one.
    monkeypatch.setattr(run, "prepare", lambda *args: (None, "assembled", None, cached))
    monkeypatch.setattr(run, "train_stage1", stop)
    for index, kwargs in enumerate([{}, {"stage1_dropout": 0.3}, {"stage1_dropout": np.float32(0.25)}]):
        with pytest.raises(Trained):
            run.run_demo(str(tmp_path / f"demo-{index}"), probe=False, **kwargs)
    assert [r.dropout for r in recipes] == [run.STAGE1_DROPOUT, 0.1, run.STAGE1_DROPOUT, 0.3, 0.25]
    assert type(recipes[-1].dropout) is float and run.STAGE1_DROPOUT == 0.0


def test_the_demo_trains_under_bf16_autocast_and_the_ablation_in_fp32(monkeypatch, tmp_path):
    """Both of the demo's stages train Bridge-Net under bf16 autocast with fused AdamW (`FAST_TRAINING`); `mint ablate`
    trains stage 1 in fp32 with the default AdamW, as the README's Table 5 was measured."""
    recipes, cached = _stage1_recipes(monkeypatch)
    run.train_stage1("assembled", str(tmp_path / "a"), cached, 1, 0)
    run.train_stage1("assembled", str(tmp_path / "b"), cached, 1, 0, fast=False)
    stage2 = run.stage2_recipe("stage1", str(tmp_path / "c"), 2, 0, 2e-4)
    assert run.FAST_TRAINING == {"optim": "adamw_torch_fused", "bridge_autocast": True}
    assert [(r.optim, r.bridge_autocast) for r in (*recipes, stage2)] == [
        ("adamw_torch_fused", True), ("adamw_torch", False), ("adamw_torch_fused", True)]

    class Trained(Exception):
        pass

    def stop(*args, fast=True, **kwargs):
        recipes.append(fast)
        raise Trained

    monkeypatch.setattr(ablation, "prepare", lambda *args, **kwargs: ({}, "assembled", None, cached))
    monkeypatch.setattr(ablation, "train_stage1", stop)
    with pytest.raises(Trained):
        ablation.run_ablation(str(tmp_path / "ablate"), seeds=[0], objective_sets=["ALC"], progress=False)
    assert recipes[-1] is False


def test_the_demo_trains_with_the_plain_attention_kernel_and_restores_the_choice(monkeypatch, tmp_path):
    """The demo computes attention with `ATTENTION_BACKEND` (the math kernel, not the CPU flash kernel that scaled
    dot-product attention picks without dropout) and leaves the kernel choice as it found it."""
    _, cached = _stage1_recipes(monkeypatch)

    class Trained(Exception):
        pass

    seen = []

    def stop(*args, **kwargs):
        seen.append((torch.backends.cuda.flash_sdp_enabled(), torch.backends.cuda.math_sdp_enabled()))
        raise Trained

    monkeypatch.setattr(run, "prepare", lambda *args: (None, "assembled", None, cached))
    monkeypatch.setattr(run, "train_stage1", stop)
    before = torch.backends.cuda.flash_sdp_enabled(), torch.backends.cuda.math_sdp_enabled()
    assert run.ATTENTION_BACKEND == SDPBackend.MATH and before == (True, True)
    with pytest.raises(Trained):
        run.run_demo(str(tmp_path / "demo"), probe=False)
    assert seen == [(False, True)]
    assert (torch.backends.cuda.flash_sdp_enabled(), torch.backends.cuda.math_sdp_enabled()) == before


def test_the_demos_stage_1_trains_the_queries_and_cross_attention_faster(monkeypatch, tmp_path):
    """The demo's stage-1 recipe: the queries and the cross-attention layers at 1e-3, the rest of the model at the base
    2e-4 (that the trainer gives each part its rate: tests/training/test_stage1_options.py); a recipe's rates are its
    own copy of the setting."""
    recipes, cached = _stage1_recipes(monkeypatch)
    run.train_stage1("assembled", str(tmp_path / "a"), cached, 1, 0)
    run.train_stage1("assembled", str(tmp_path / "b"), cached, 1, 0, query_learning_rate=np.float32(2e-4))
    assert recipes[0].learning_rates == {"cross_attention": 1e-3, "query_tokens": 1e-3}
    assert recipes[0].learning_rate == 2e-4 and run.STAGE1_QUERY_LEARNING_RATE == 1e-3
    assert recipes[1].learning_rates == {"cross_attention": float(np.float32(2e-4)),
                                         "query_tokens": float(np.float32(2e-4))}
    assert all(type(rate) is float for rate in recipes[1].learning_rates.values())  # the recipe is written as JSON

    # run_demo and mint demo / mint ablate: left unset, the demo's setting; given, that one.
    class Trained(Exception):
        pass

    rates = []

    def stop(*args, query_learning_rate, **kwargs):
        rates.append(query_learning_rate)
        raise Trained

    monkeypatch.setattr(run, "prepare", lambda *args, **kwargs: ({}, "assembled", None, cached))
    monkeypatch.setattr(run, "train_stage1", stop)
    monkeypatch.setattr(ablation, "prepare", lambda *args, **kwargs: ({}, "assembled", None, cached))
    monkeypatch.setattr(ablation, "train_stage1", stop)
    _run_commands(tmp_path, [["demo"], ["demo", "--stage1-query-learning-rate", "5e-4"], ["ablate"],
                             ["ablate", "--stage1-query-learning-rate", "0"]], Trained)
    with pytest.raises(Trained):
        run.run_demo(str(tmp_path / "demo-4"), probe=False, stage1_query_learning_rate=np.float64(3e-4))
    assert rates == [1e-3, 5e-4, 1e-3, 0.0, 3e-4]


def _run_commands(tmp_path, argvs, stopped_by):
    """Runs each `mint` command line of `argvs` in its own output folder `demo-N`, each stopped by `stopped_by`."""
    for index, argv in enumerate(argvs):
        with pytest.raises(stopped_by):
            mint.cli.main(["--debug", *argv, "--output", str(tmp_path / f"demo-{index}"), "--quiet"])


def test_the_stage_1_rate_help_says_the_demos_settings():
    from mint.cli.demo import STAGE1_QUERY_RATE_HELP

    rest = re.search(r"the rest trains at ([0-9.e-]+)\)", STAGE1_QUERY_RATE_HELP).group(1)
    default = re.search(r"default: the demo's setting, ([0-9.e-]+)$", STAGE1_QUERY_RATE_HELP).group(1)
    assert float(rest) == run.TRAINING["learning_rate"] and float(default) == run.STAGE1_QUERY_LEARNING_RATE


def test_the_demos_stage_2_dropout_left_unset_is_the_demos_setting(monkeypatch, tmp_path):
    class Recipe(Exception):
        pass

    def stop(*args):
        raise Recipe(args[-1])  # stage2_recipe(stage1_dir, output_dir, epochs, seed, bridge_rate, dropout)

    stage1 = SimpleNamespace(eval=lambda: stage1, config=SimpleNamespace(
        qformer_config=SimpleNamespace(hidden_dropout_prob=0.0, cross_attention_frequency=1)))
    monkeypatch.setattr(run, "prepare", lambda *args: ({"test": []}, "assembled", None, None))
    monkeypatch.setattr(run, "train_stage1", lambda *args, **kwargs: [])
    monkeypatch.setattr(run, "MintForPreTraining", SimpleNamespace(from_pretrained=lambda folder: stage1))
    monkeypatch.setattr(run, "held_out_features", lambda model, processor, test, *args: test)
    monkeypatch.setattr(run, "retrieval_in_pool", lambda *args: (None, None, None))
    monkeypatch.setattr(run, "embedding_results", lambda *args: {})
    monkeypatch.setattr(run, "alm_results", lambda *args: None)
    monkeypatch.setattr(run, "stage2_examples", lambda cached: [Dataset.from_dict({"x": [0]})])
    monkeypatch.setattr(run, "stage2_recipe", stop)
    dropouts = []
    for index, kwargs in enumerate([{}, {"stage2_dropout": None}, {"stage2_dropout": np.float64(0.2)}]):
        with pytest.raises(Recipe) as caught:
            run.run_demo(str(tmp_path / f"demo-{index}"), probe=False, **kwargs)
        dropouts.append(caught.value.args[0])
    assert dropouts == [run.STAGE2_DROPOUT, run.STAGE2_DROPOUT, 0.2] and run.STAGE2_DROPOUT == 0.0


def test_stage1_pairs_caption_each_pass_and_keep_the_labels_as_group():
    cached = Dataset.from_dict({"audio_encoder_features": [np.zeros((2, 3), np.float32).tolist()] * 2,
                                "caption": ["a piano plays a low note softly", "a man says the word one"],
                                "instrument_family": ["piano", None], "register": ["low", None],
                                "loudness": ["softly", None], "word": [None, "one"], "event": [None, None]})
    pairs, epochs = run.stage1_pairs(cached, 2.5, seed=0)
    assert len(pairs) == 6 and epochs == pytest.approx(2.5 / 3)
    assert pairs[run.GROUP_COLUMN] == [*cached["caption"]] * 3
    piano = pairs["caption"][0::2]
    assert len(set(piano)) == 3 and all("piano" in c for c in piano)
    assert pairs["caption"] == run.stage1_pairs(cached, 2.5, seed=0)[0]["caption"]


def test_the_table_reports_stage_1_alm_on_held_out_pairs():
    plain = report.results_table(results(1))
    assert "ALM" not in plain  # a stage 1 without ALM: no line
    with_alm = {**results(1), "alm": {"alm_pair_accuracy": 0.625, "alm_loss": 0.6012, "alm_pairs": 8,
                                      "alm_rows_left_out": 0}}
    assert ("Stage 1's ALM on 8 balanced pairs of held-out clips (each clip with its caption and with another label "
            "set's caption; chance 50.0): accuracy 62.5, loss 0.601") in report.results_table(with_alm)
    ranked = {**with_alm, "alm": {**with_alm["alm"], "alm_ranking_accuracy": 0.75, "alm_pairs": 1552}}
    assert ("on 1,552 balanced pairs" in report.results_table(ranked) and "accuracy 62.5, clips whose own caption "
            "scores above the other (threshold-free) 75.0, loss 0.601" in report.results_table(ranked))


def test_the_table_says_what_dropout_each_stage_trained_with():
    assert "Dropout" not in report.results_table(results(1))  # results of earlier versions
    table = report.results_table({**results(1), "dropout": {"stage1": 0.1, "stage2": 0.0}})
    assert table.rstrip().endswith("Dropout in training: stage 1 0.1 (the Q-Former), stage 2 0 (Bridge-Net and the T5)")


def test_alm_results_score_the_held_out_clips_with_their_labels_as_groups(tmp_path):
    from tests.utils.training import make_audio_dataset
    from mint.training.alm import alm_pair_accuracy
    from mint.data.collator import MintDataCollator
    from modeling_mint import MintForPreTraining

    from datasets import Audio

    test = make_audio_dataset(tmp_path).cast_column("audio", Audio(decode=False))  # as the corpus stores it
    torch.manual_seed(0)
    without = MintForPreTraining(tiny.mint_config(stage1_objectives=["alc", "atg"])).eval()
    assert run.alm_results(without, tiny.processor(), test) is None
    model = MintForPreTraining(tiny.mint_config()).eval()
    scored = run.alm_results(model, tiny.processor(), test)
    # Each of the six clips with its caption and with another clip's (12 pairs): the captions are the groups.
    by_hand = alm_pair_accuracy(model, [{"audio": a, "caption": c, "labels": c} for a, c in
                                        zip(test["audio"], test["caption"])],
                                MintDataCollator(tiny.processor(), stage=1, group_column="labels"))
    assert scored == by_hand and scored["alm_pairs"] == 12 and scored["alm_rows_left_out"] == 0
    # From the held-out split's feature cache, as the demo evaluates, whole or a shuffled selection of it: the same.
    cached = run.held_out_features(model, tiny.processor(), test, str(tmp_path / "demo"), progress=False)
    assert run.clips_column(cached) == "audio_encoder_features" and run.clips_column(test) == "audio"
    assert run.alm_results(model, tiny.processor(), cached) == scored
    order = [4, 1, 5, 0, 3]
    assert (run.alm_results(model, tiny.processor(), cached.select(order))
            == run.alm_results(model, tiny.processor(), test.select(order)))


def test_prepare_assembles_with_its_seed_and_cross_attention_frequency(monkeypatch, tmp_path):
    """`mint ablate` assembled from the process's random state, so its runs started from another model each time;
    `assemble` draws the new parts from its seed (tests/demo/test_corpus_and_whisper.py), which `prepare` passes, with
    the Q-Former's cross-attention frequency."""
    calls = []
    monkeypatch.setattr(run, "build_corpus", lambda folder, progress: {"train": None})
    monkeypatch.setattr(run, "assemble", lambda output, corpus, seed, every: calls.append((seed, every)) or "x")
    monkeypatch.setattr(run.MintProcessor, "from_pretrained", lambda folder: None)
    monkeypatch.setattr(run.MintForPreTraining, "from_pretrained", lambda folder: None)
    monkeypatch.setattr(run, "cache_audio_features", lambda *args, **kwargs: None)
    run.prepare(str(tmp_path))
    run.prepare(str(tmp_path), seed=5, cross_attention_frequency=2)
    assert calls == [(run.DEFAULT_SEED, run.CROSS_ATTENTION_FREQUENCY), (5, 2)] and run.CROSS_ATTENTION_FREQUENCY == 1


def test_the_table_puts_the_probe_on_the_features_mint_reads_beside_the_best(tmp_path):
    """The goal's comparison is with the probe on the features Bridge-Net reads (`PROBE_DEMO_FEATURES`); the bound
    chosen on validation may read others."""
    bounds = {name: {"accuracy": 0.9, "features": "all hidden states, concatenated"} for name in TASKS}
    accuracy = {PROBE_DEMO_FEATURES: {name: 0.75 for name in TASKS if name != "spoken word"},
                "hidden state 0": dict.fromkeys(TASKS, 0.5)}
    (tmp_path / "encoder_probe.json").write_text(json.dumps({"accuracy": accuracy, "bounds": bounds}))
    written = report.encoder_probe_bounds(str(tmp_path))
    assert written["loudness"] == {"accuracy": 0.9, "features": "all hidden states, concatenated",
                                   "demo_features": 0.75}
    assert "demo_features" not in written["spoken word"]
    lines = report.results_table({**results(1), "encoder_probe": written}).splitlines()
    assert lines[0].endswith("| Encoder probe, the features MINT reads (supervised) | Encoder probe, best features "
                             "(supervised) | Probe minus summed ranking (points: MINT's features / best) | Chance | "
                             "Clips |")
    assert lines[2] == "| instrument family | 60.0 | 50.0 | 40.0 | 75.0 | 90.0 | +15.0 / +30.0 | 12.5 | 200 |"
    assert lines[3] == "| spoken word | 60.0 | 50.0 | 40.0 | n/a | 90.0 | n/a / +30.0 | 12.5 | 200 |"


@pytest.mark.parametrize("written, words", [
    ({"accuracy": ["hidden state 0"]}, ["not an encoder probe's file", "'accuracy'"]),
    ({"accuracy": {PROBE_DEMO_FEATURES: "instrument family, loudness"}}, ["not an encoder probe's file"]),
    ([1, 2], ["not an encoder probe's file"]),
    ({"accuracy": {PROBE_DEMO_FEATURES: {"loudness": "0.75"}, "hidden state 0": {"loudness": 0.5}}},
     ["loudness", "'0.75'", "a number from 0 to 1"]),
    ({"accuracy": {"hidden state 0": {"loudness": float("nan")}}}, ["loudness", "nan", "a number from 0 to 1"]),
    ({"accuracy": {"hidden state 0": {"loudness": 75.0}}}, ["75.0", "a number from 0 to 1"]),
])
def test_a_malformed_probe_file_is_named(tmp_path, written, words):
    (tmp_path / "encoder_probe.json").write_text(json.dumps(written))
    with pytest.raises(ValueError) as error:
        report.encoder_probe_bounds(str(tmp_path))
    for word in [*words, "encoder_probe.json"]:
        assert word in str(error.value)


def test_a_probe_file_with_bounds_alone_still_reads(tmp_path):
    bounds = {"loudness": {"accuracy": 0.9, "features": "hidden state 0"}}
    (tmp_path / "encoder_probe.json").write_text(json.dumps({"bounds": bounds}))
    assert report.encoder_probe_bounds(str(tmp_path)) == bounds


def test_a_probe_without_a_label_type_leaves_its_cells_empty(tmp_path):
    bounds = {name: {"accuracy": 0.9, "features": "hidden state 1"} for name in TASKS if name != "spoken word"}
    lines = report.results_table({**results(1), "encoder_probe": bounds}).splitlines()
    assert lines[2] == "| instrument family | 60.0 | 50.0 | 40.0 | 90.0 | +30.0 | 12.5 | 200 |"
    assert lines[3] == "| spoken word | 60.0 | 50.0 | 40.0 | n/a | n/a | 12.5 | 200 |"
    # So it is for a probe file of the older layout, accuracies by feature set.
    accuracy = {"hidden state 0": {name: 0.8 for name in TASKS if name != "spoken word"}}
    (tmp_path / "encoder_probe.json").write_text(json.dumps({"accuracy": accuracy}))
    assert "spoken word" not in report.encoder_probe_bounds(str(tmp_path))


def test_the_table_says_what_rates_stage_1_trained_with():
    assert "Learning rates" not in report.results_table(results(1))  # results of earlier versions
    rates = {"queries and cross-attention": 1e-3, "the rest of Bridge-Net": 2e-4}
    table = report.results_table({**results(1), "stage1_learning_rates": rates})
    assert table.rstrip().endswith(
        "Learning rates in stage 1: queries and cross-attention 0.001, the rest of Bridge-Net 0.0002")


@pytest.mark.parametrize("logs, rate", [
    ([], None),  # no rate logged (a run shorter than logging_steps): unknown
    ([{"train_runtime": 3.0, "epoch": 1.0}], None),
    ([{"learning_rate": float("nan"), "learning_rate_query_tokens": 1e-3}], None),
    ([{"learning_rate": 1e-4, "learning_rate_query_tokens": None}], 2e-4),
    ([{"loss": 1.0, "learning_rate": 6e-5, "step": 10}], 2e-4),  # one rate for all (an earlier stage 1)
    ([{"learning_rate": 0.0, "learning_rate_query_tokens": 0.0},  # the schedule at 0 says nothing
      {"learning_rate": 6e-5, "learning_rate_query_tokens": 3e-4, "learning_rate_cross_attention": 3e-4}], 1e-3),
    ([{"learning_rate": 1.748917748917749e-04, "learning_rate_query_tokens": 8.744588744588745e-04}], 1e-3),
    ([{"learning_rate": 1e-4, "learning_rate_query_tokens": 0.0}], 0.0),  # frozen queries
    ([{"learning_rate": 1e-4, "learning_rate_query_tokens": 2.5e-4}], 5e-4),
])
def test_the_stage_1_rate_is_read_back_from_its_log(logs, rate):
    assert run.stage1_query_rate(logs) == rate


@pytest.mark.parametrize("logs", [None, "abc", {"learning_rate": 1e-4}, [None], [["learning_rate", 1e-4]]])
def test_a_stage_1_log_that_is_not_a_list_of_dicts_is_refused(logs):
    with pytest.raises(ValueError, match="stage 1's log must be the Trainer's log history, a list of dicts"):
        run.stage1_query_rate(logs)


def test_the_table_names_an_unknown_stage_1_rate_and_leaves_out_an_empty_record():
    assert "Learning rates" not in report.results_table({**results(1), "stage1_learning_rates": {}})
    table = report.results_table({**results(1), "stage1_learning_rates": {"queries and cross-attention": None}})
    assert table.rstrip().endswith("Learning rates in stage 1: queries and cross-attention unknown (its log holds "
                                   "no rate)")


def _ablation_without_training(monkeypatch, trained: list):
    class Evaluated(Exception):
        pass

    def train_stage1(folder, run_dir, *args, **kwargs):
        trained.append(kwargs["query_learning_rate"])
        os.makedirs(run_dir, exist_ok=True)
        open(os.path.join(run_dir, "model.safetensors"), "w").close()

    def loaded(*args, **kwargs):
        raise Evaluated

    monkeypatch.setattr(ablation, "prepare", lambda *a, **k: ({}, "assembled", None, None))
    monkeypatch.setattr(ablation, "train_stage1", train_stage1)
    monkeypatch.setattr(ablation.MintForPreTraining, "from_pretrained", loaded)
    return Evaluated


@pytest.mark.parametrize("recorded, retrained", [
    ("{not json", True), ("", True), ("[1, 2]", True), (b"\xff\xfe", True), ("[" * 100000 + "]" * 100000, True),
    ('{"seed": ' + "9" * 5000 + "}", True),
    (None, False),  # the settings of this run: reused
    # A run recorded without the rate and the cross-attention frequency trained all of Bridge-Net at 2e-4 with
    # BLIP-2's Q-Former: reused for those.
    ("drop-rate", False),
    ("other-rate", True),
    ("other-frequency", True),
])
def test_the_ablation_trains_again_a_run_whose_settings_it_cannot_read_or_that_differ(tmp_path, monkeypatch, recorded,
                                                                                        retrained):
    trained = []
    evaluated = _ablation_without_training(monkeypatch, trained)
    out = tmp_path / "out"
    with pytest.raises(evaluated):
        ablation.run_ablation(str(out), seeds=[0], objective_sets=["ALC"], progress=False,
                              stage1_query_learning_rate=2e-4, cross_attention_frequency=2)
    path = out / "ablation" / "ALC-seed-0" / ablation.RUN_SETTINGS
    settings = json.loads(path.read_text())
    assert settings["query_learning_rate"] == 2e-4 and settings["cross_attention_frequency"] == 2
    assert trained == [2e-4]
    if recorded == "drop-rate":
        path.write_text(json.dumps({k: v for k, v in settings.items()
                                    if k not in ("query_learning_rate", "cross_attention_frequency")}))
    elif recorded == "other-rate":
        path.write_text(json.dumps({**settings, "query_learning_rate": 1e-3}))
    elif recorded == "other-frequency":
        path.write_text(json.dumps({**settings, "cross_attention_frequency": 1}))

    elif isinstance(recorded, bytes):
        path.write_bytes(recorded)
    elif recorded is not None:
        path.write_text(recorded)
    with pytest.raises(evaluated):
        ablation.run_ablation(str(out), seeds=[0], objective_sets=["ALC"], progress=False,
                              stage1_query_learning_rate=np.float64(2e-4), cross_attention_frequency=np.int64(2))
    assert trained == [2e-4] * (1 + retrained)
    if retrained:
        assert json.loads(path.read_text())["query_learning_rate"] == 2e-4


@pytest.mark.parametrize("recorded, retrained", [(1, False), (True, True), (1.0, True), ("1", True)])
def test_a_run_recorded_with_the_frequency_true_is_not_one_of_frequency_1(tmp_path, monkeypatch, recorded,
                                                                           retrained):
    trained = []
    evaluated = _ablation_without_training(monkeypatch, trained)
    for _ in range(2):
        with pytest.raises(evaluated):
            ablation.run_ablation(str(tmp_path / "out"), seeds=[0], objective_sets=["ALC"], progress=False,
                                  cross_attention_frequency=1)
        path = tmp_path / "out" / "ablation" / "ALC-seed-0" / ablation.RUN_SETTINGS
        path.write_text(json.dumps({**json.loads(path.read_text()), "cross_attention_frequency": recorded}))
    assert len(trained) == 1 + retrained


def test_the_ablation_records_minus_zero_as_zero_and_its_table_reads_earlier_results(tmp_path, monkeypatch):
    trained = []
    evaluated = _ablation_without_training(monkeypatch, trained)
    with pytest.raises(evaluated):
        ablation.run_ablation(str(tmp_path / "out"), seeds=[0], objective_sets=["ALC"], progress=False,
                              stage1_query_learning_rate=-0.0)
    text = (tmp_path / "out" / "ablation" / "ALC-seed-0" / ablation.RUN_SETTINGS).read_text()
    assert '"query_learning_rate": 0.0' in text and trained == [0.0]
    summary = {"ALC": {m: [0.5, 0.0] for m in [*TASKS, "mean zero-shot", "R@1", "R@5", "R@10"]}}
    earlier = ablation.ablation_table({"seeds": [0], "stage1_epochs": 3.0, "summary": summary})
    assert earlier.startswith("Stage 1 by objective set, 3 epochs, seeds [0]: zero-shot")


def _ablation_results(**changes):
    summary = {"ALC": {m: [0.5, 0.01] for m in [*TASKS, "mean zero-shot", "R@1", "R@5", "R@10"]}}
    return {"seeds": [0, 1], "stage1_epochs": 3.0, "stage1_query_learning_rate": 1e-3, "summary": summary, **changes}


def _metric(metric, value):
    results = _ablation_results()
    results["summary"]["ALC"][metric] = value
    return results


# (results as read back from an edited ablation.json, words the message must hold)
BAD_ABLATION_RESULTS = [
    ([], ["ablation_table takes run_ablation's results", "got list"]),
    (_ablation_results(summary={}), ["without a non-empty 'summary'"]),
    (_ablation_results(summary=[1]), ["without a non-empty 'summary'"]),
    (_ablation_results(seeds="0"), ["results['seeds'] must be a list of seeds"]),
    (_ablation_results(seeds=[]), ["results['seeds'] must name at least one seed"]),
    (_ablation_results(seeds=[0.5]), ["results['seeds']", "must be an integer"]),
    (_ablation_results(stage1_epochs="3"), ["results['stage1_epochs'] must be a positive number", "'3'"]),
    (_ablation_results(stage1_epochs=0), ["results['stage1_epochs'] must be a positive number"]),
    (_ablation_results(stage1_epochs=float("nan")), ["results['stage1_epochs']", "nan"]),
    (_ablation_results(stage1_query_learning_rate=-1e-3), ["'stage1_query_learning_rate'", "None or a non-negative"]),
    (_ablation_results(stage1_query_learning_rate="1e-3"), ["'stage1_query_learning_rate'", "'1e-3'"]),
    (_ablation_results(summary={"ALC": [0.5]}), ["results['summary']['ALC']['instrument family'] must be [mean, std]"]),
    (_metric("R@10", 0.9), ["['ALC']['R@10'] must be [mean, std]", "got 0.9"]),
    (_metric("R@10", [0.9]), ["['ALC']['R@10'] must be [mean, std]"]),
    (_metric("R@10", ["0.9", 0.0]), ["['ALC']['R@10']", "two fractions from 0 to 1"]),
    (_metric("R@10", [5.0, 0.0]), ["['ALC']['R@10']", "two fractions from 0 to 1", "5.0"]),
    (_metric("R@10", [0.9, float("inf")]), ["['ALC']['R@10']", "inf"]),
    (_metric("R@10", [True, 0.0]), ["['ALC']['R@10']"]),
    (_metric("mean zero-shot", None), ["['ALC']['mean zero-shot'] must be [mean, std]", "got None"]),
    (_ablation_results(cross_attention_frequency=0), ["'cross_attention_frequency'", "None or a positive integer"]),
    (_ablation_results(cross_attention_frequency=1.5), ["'cross_attention_frequency'", "1.5"]),
]


@pytest.mark.parametrize(("results", "words"), BAD_ABLATION_RESULTS)
def test_the_ablation_table_refuses_results_of_another_shape_naming_the_entry(results, words):
    with pytest.raises(ValueError) as raised:
        ablation.ablation_table(results)
    assert all(word in str(raised.value) for word in words), str(raised.value)


def test_a_held_out_soundfont_column_of_a_later_set_is_not_dropped_from_the_table():
    results = _ablation_results()
    results["summary"]["ALC+ATG"] = {**results["summary"]["ALC"], ablation.HELD_OUT_COLUMN: [0.4, 0.0]}
    with pytest.raises(ValueError, match=r"\['ALC'\]\['instrument family, held-out soundfont'\] must be"):
        ablation.ablation_table(results)


def test_the_ablation_table_prints_normalised_values():
    results = _ablation_results(seeds=np.array([0, 1]), stage1_epochs=Fraction(3, 2),
                                stage1_query_learning_rate=-0.0, cross_attention_frequency=np.int64(1))
    results["summary"]["ALC"]["R@10"] = [Fraction(1, 2), -0.0]
    results["summary"] = {"ALC\n| x": results["summary"]["ALC"]}
    lines = ablation.ablation_table(results).splitlines()
    assert lines[0].startswith("Stage 1 by objective set, 1.5 epochs, the queries and cross-attention at 0, "
                               "cross-attention in every layer, seeds [0, 1]: zero-shot")
    assert lines[4] == "| ALC \\| x | " + " | ".join(["50.0 ± 1.0"] * (len(TASKS) + 3) + ["50.0 ± 0.0"]) + " |"
    assert len(lines) == 5


def test_the_ablation_table_reads_results_written_to_json_and_back():
    results = json.loads(json.dumps(_ablation_results(stage1_query_learning_rate=None)))
    lines = ablation.ablation_table(results).splitlines()
    assert lines[4] == "| ALC | " + " | ".join(["50.0 ± 1.0"] * (len(TASKS) + 4)) + " |"
    assert "cross-attention" not in lines[0]


def test_the_cross_attention_frequency_reaches_the_assembly_from_the_api_and_the_command_line(tmp_path, monkeypatch):
    class Prepared(Exception):
        pass

    frequencies = []

    def prepare(output, progress, seed, cross_attention_frequency):
        frequencies.append(cross_attention_frequency)
        raise Prepared

    monkeypatch.setattr(run, "prepare", prepare)
    monkeypatch.setattr(ablation, "prepare", prepare)
    _run_commands(tmp_path, [["demo"], ["demo", "--cross-attention-frequency", "2"], ["ablate"],
                             ["ablate", "--cross-attention-frequency", "3"]], Prepared)
    with pytest.raises(Prepared):
        run.run_demo(str(tmp_path / "demo-4"), probe=False, cross_attention_frequency=np.int64(6))
    assert frequencies == [1, 2, 1, 3, 6] and all(type(every) is int for every in frequencies)


@pytest.mark.parametrize("every", ["1", None, 0, -2, 2.5, float("nan"), [1], True, "every"])
def test_a_results_file_with_a_wrong_cross_attention_frequency_is_refused_naming_it(every):
    with pytest.raises(ValueError) as raised:
        report.results_table({**results(1), "cross_attention_frequency": every})
    assert "results['cross_attention_frequency'] must be a positive integer" in str(raised.value)
    assert repr(every) in str(raised.value)


def test_the_results_say_how_often_the_q_former_cross_attends():
    assert "cross-attends to the audio in every layer" in report.results_table({**results(1),
                                                                               "cross_attention_frequency": 1})
    assert "in every 2 layers" in report.results_table({**results(1), "cross_attention_frequency": 2})
    assert "cross-attends" not in report.results_table(results(1))  # results of earlier versions
    header = ablation.ablation_table(_ablation_results(cross_attention_frequency=1)).splitlines()[0]
    assert "the queries and cross-attention at 0.001, cross-attention in every layer, seeds [0, 1]" in header
