"""mint plan: a recipe resolved on prepared fixture datasets, its numbers against hand computation."""

import json
import math
import os
import subprocess
import sys
from collections import Counter

import pytest
import torch
from datasets import Dataset
from transformers import Trainer, TrainingArguments

import mint.cli
from mint.data.releases import prepare_dataset
from mint.data.templates import INSTRUCTION_TEMPLATES, get_template
from mint.training.plan import parameter_memory, plan_recipe, training_steps
from mint.training.recipe import MintRecipe, load_recipe
from mint.training.train_data import build_train_dataset
from mint.training.trainer import train
from modeling_mint import MintForConditionalGeneration, MintForPreTraining
from tests.utils import ROOT, tiny
from tests.utils.releases import (audioset_release, clip, fma_release, fsd50k_release, music4all_release,
                                  nsynth_release, openmic_release, vggsound_release, wavcaps_release, write)


ESC50_CSV = "filename,fold,target,category,esc10,src_file,take\n" + "".join(
    f"{f}-{i}-A-{i % 3}.wav,{f},{i % 3},{('dog', 'rooster', 'rain')[i % 3]},True,{i},A\n"
    for i, f in zip(range(7), (1, 1, 2, 3, 4, 5, 5)))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Prepared folders: ESC-50 (7 clips, durations from the release), FSD50K and Clotho (durations from headers)."""
    base = tmp_path_factory.mktemp("plan-data")
    write(base / "esc50" / "meta" / "esc50.csv", ESC50_CSV)
    for line in ESC50_CSV.splitlines()[1:]:
        clip(base / "esc50" / "audio" / line.split(",")[0])
    truth = base / "fsd50k" / "FSD50K.ground_truth"
    write(truth / "dev.csv", "fname,labels,mids,split\n" + "".join(f"{i},Dog_bark,/m/0,train\n" for i in range(4)))
    write(truth / "eval.csv", "fname,labels,mids\n")
    for i, seconds in enumerate((0.5, 0.25, 0.5, 0.25)):
        clip(base / "fsd50k" / "FSD50K.dev_audio" / f"{i}.wav", seconds=seconds)
    write(base / "clotho" / "clotho_captions_development.csv", "file_name,caption_1,caption_2,caption_3,caption_4,"
          "caption_5\n" + "".join(f"c{i}.wav,a dog barks {i},b,c,d,e\n" for i in range(5)))
    for i in range(5):
        clip(base / "clotho" / "development" / f"c{i}.wav", seconds=0.2)
    for name in ("esc50", "fsd50k", "clotho"):
        prepare_dataset(name, base / name, base / f"{name}-ready", progress=False)
    Dataset.from_dict({"audio": [str(base / "clotho" / "development" / "c0.wav")] * 2, "label": ["dog", " "]}) \
        .save_to_disk(str(base / "half-labelled"))
    return base


@pytest.fixture(scope="module")
def mint_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mint")
    MintForPreTraining(tiny.mint_config()).save_pretrained(folder)
    return str(folder)


def stage2_recipe(data, mint_folder, **kwargs):
    values = dict(stage=2, model=mint_folder, batch_size=4, num_train_epochs=3.0, seed=7, datasets=[
        {"path": str(data / "esc50-ready"), "template": "AudioSet", "weight": 1.0},
        {"path": str(data / "fsd50k-ready"), "template": "NSynth", "weight": 2.0},
        {"path": str(data / "clotho-ready"), "template": "WavCaps", "weight": 1.0}])
    values.update(kwargs)
    return MintRecipe(**values)


def test_plan_counts_what_training_draws(data, mint_folder):
    recipe = stage2_recipe(data, mint_folder)
    plan = plan_recipe(recipe, num_processes=2)
    mixed = build_train_dataset(recipe)  # what training iterates over, built the way `train` builds it
    by_prompt = Counter(mixed["prompt"])
    drawn = [by_prompt[get_template(t).prompt] for t in ("AudioSet", "NSynth", "WavCaps")]
    assert [d.examples for d in plan.datasets] == [7, 4, 5]
    assert [d.drawn_per_epoch for d in plan.datasets] == drawn and plan.mixture_examples == len(mixed)
    assert [d.share for d in plan.datasets] == [n / len(mixed) for n in drawn]
    assert [d.passes_per_epoch for d in plan.datasets] == [drawn[0] / 7, drawn[1] / 4, drawn[2] / 5]
    assert plan.examples_per_template == {"AudioSet": 7, "NSynth": 4, "WavCaps": 5}
    # global batch 4 over 2 processes: 2 per device; each process takes ceil(N / 4) batches per epoch
    assert plan.per_device_batch_size == 2
    assert plan.steps_per_epoch == math.ceil(len(mixed) / 4) and plan.total_steps == 3 * plan.steps_per_epoch
    assert "examples per template: AudioSet 7, NSynth 4, WavCaps 5" in plan.report()


def test_steps_match_the_trainer(data, mint_folder, tmp_path):
    """One process with accumulation 2 and 2.5 epochs: the Trainer's own step count for the same dataset."""
    recipe = stage2_recipe(data, mint_folder, gradient_accumulation_steps=2, num_train_epochs=2.5)
    plan = plan_recipe(recipe)
    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=plan.per_device_batch_size,
                             gradient_accumulation_steps=2, num_train_epochs=2.5, report_to=[], use_cpu=True,
                             remove_unused_columns=False)
    trainer = Trainer(model=torch.nn.Linear(1, 1), args=args, train_dataset=build_train_dataset(recipe),
                      data_collator=lambda rows: rows)
    values = trainer.set_initial_training_values(args, trainer.get_train_dataloader())
    assert (plan.steps_per_epoch, plan.total_steps) == (values[1], values[6])
    assert training_steps(10, 8, 2, 2, 1.0) == (2, 2, 2)  # ceil(10 / 4) = 3 batches per process, ceil(3 / 2) steps
    assert training_steps(10, 8, 2, 2, 1.0, drop_last=True) == (2, 1, 1)
    assert training_steps(10, 8, 2, 2, 3.0, max_steps=7) == (2, 2, 7)


def test_hours_and_feature_cache(data, mint_folder):
    plan = plan_recipe(stage2_recipe(data, mint_folder))
    esc50, fsd50k, clotho = plan.datasets
    assert (esc50.audio_hours, esc50.hours_from) == (7 * 5.0 / 3600, "duration column")
    assert (fsd50k.audio_hours, fsd50k.hours_from) == (4 * 0.375 / 3600, "headers of 4 clips")
    assert clotho.audio_hours == pytest.approx(5 * 0.2 / 3600)
    # tiny data2vec-audio: 50 frames/s x 3600 s x 32 values x 2 bytes (float16) = 0.01152 GB per hour
    assert plan.cache_gb_per_hour == pytest.approx(0.01152)
    assert esc50.cache_gb == pytest.approx(7 * 5.0 / 3600 * 0.01152)
    assert plan.cache_gb == pytest.approx(sum(d.audio_hours for d in plan.datasets) * 0.01152)
    assert plan_recipe(stage2_recipe(data, mint_folder), cache_dtype="float32").cache_gb_per_hour == \
        pytest.approx(2 * 0.01152)


def test_memory_by_hand_and_against_a_real_optimizer_step():
    config = tiny.mint_config()
    model = MintForConditionalGeneration(config)
    trainable = [p for p in model.parameters() if p.requires_grad]
    n_trainable = sum(p.numel() for p in trainable)
    n_frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    memory = parameter_memory(config, stage=2)
    assert (memory.trainable_parameters, memory.frozen_parameters) == (n_trainable, n_frozen)
    assert memory.parameter_bytes == 4 * (n_trainable + n_frozen) and memory.gradient_bytes == 4 * n_trainable
    assert memory.optimizer_bytes == 8 * n_trainable  # AdamW: exp_avg and exp_avg_sq per trainable parameter
    assert memory.total_bytes == 4 * n_frozen + 16 * n_trainable
    optimizer = torch.optim.AdamW(trainable)
    sum(p.float().sum() for p in trainable).backward()
    optimizer.step()
    states = sum(t.numel() * t.element_size() for s in optimizer.state.values() for k, t in s.items() if k != "step")
    assert states == memory.optimizer_bytes
    assert parameter_memory(config, stage=2, optim="sgd").optimizer_bytes == 0
    assert parameter_memory(config, stage=2, optim="something_new").total_bytes is None


def test_memory_follows_the_dtypes_from_pretrained_loads(tmp_path):
    MintForPreTraining(tiny.mint_config()).to(torch.bfloat16).save_pretrained(tmp_path)
    loaded = MintForPreTraining.from_pretrained(tmp_path)
    memory = parameter_memory(loaded.config, stage=1)
    by_dtype = Counter()
    for parameter in loaded.parameters():
        by_dtype[str(parameter.dtype).removeprefix("torch.")] += parameter.numel()
    assert memory.parameters_by_dtype == dict(by_dtype)
    assert memory.parameter_bytes == sum(p.numel() * p.element_size() for p in loaded.parameters())
    assert memory.gradient_bytes == sum(p.numel() * p.element_size() for p in loaded.parameters() if p.requires_grad)


def test_lora_counts_adapters_as_trainable():
    config = tiny.mint_config()
    plain = parameter_memory(config, stage=2)
    lora = parameter_memory(config, stage=2, lora={"targets": ["language_model"], "r": 4})
    # rank-4 adapters on the T5's q and v projections (32 -> 32): 2 x 4 x (32 + 32) per projection
    projections = 2 * (2 * 1 + 2 * 2)  # q, v in each of 2 encoder self-, 2 decoder self- and 2 cross-attentions
    assert lora.trainable_parameters == plain.trainable_parameters + projections * 4 * 64


def test_clear_early_errors_all_at_once(data, mint_folder, tmp_path):
    recipe = MintRecipe(stage=2, model=str(tmp_path / "stage1-output"), batch_size=6, datasets=[
        {"path": str(tmp_path / "not-prepared"), "template": "NSynth"},
        {"path": str(data / "esc50-ready"), "template": "ESC-50"},
        {"path": str(data / "esc50-ready"), "template": "WavCaps"},
        {"path": str(data / "half-labelled"), "template": "NSynth"},
        {"path": str(data / "esc50-ready"), "split": "test", "template": "NSynth"},
        {"path": str(data / "esc50-ready")}])
    with pytest.raises(ValueError) as error:
        plan_recipe(recipe, num_processes=4)
    message = str(error.value)
    assert "dataset 1" in message and "does not exist" in message and "mint data prepare" in message
    assert "dataset 2" in message and "No instruction template named 'ESC-50'" in message
    assert "dataset 3" in message and "no caption column 'caption'" in message and "'label'" in message
    assert "dataset 4" in message and "1 of 2 rows have an empty 'label'" in message and "--labeled-only" in message
    assert "dataset 5" in message and "no split 'test'" in message
    assert "dataset 6" in message and "needs a 'template'" in message
    assert "stage1-output" in message and "--model" in message
    assert "does not divide across 4 processes" in message
    with pytest.raises(ValueError, match=r"datasets\[0\]\['weight'\] must be positive, got 0"):  # the recipe itself
        MintRecipe(stage=2, datasets=[{"path": str(data / "esc50-ready"), "template": "AudioSet", "weight": 0}])
    stage1 = MintRecipe(stage=1, model=mint_folder, datasets=[{"path": str(data / "esc50-ready")}])
    with pytest.raises(ValueError, match="no caption column 'caption'"):
        plan_recipe(stage1)


def test_plan_runs_the_checks_train_runs(data, mint_folder, tmp_path):
    """`recipe_problems` is what `train` checks before it starts: the plan refuses the same recipes."""
    streamed = stage2_recipe(data, mint_folder, max_steps=-1, training_args={"fp16": True}, datasets=[
        {"path": str(data / "esc50-ready"), "template": "AudioSet", "streaming": True}])
    with pytest.raises(ValueError) as error:
        plan_recipe(streamed)
    assert "set max_steps" in str(error.value) and "T5 overflows in fp16" in str(error.value)
    with pytest.raises(ValueError, match="T5 overflows in fp16"):
        train(streamed)
    with pytest.raises(ValueError, match="set max_steps"):
        build_train_dataset(streamed)


def test_cli_refuses_bad_numbers_in_the_parser(tmp_path, capsys):
    for argv in (["plan", "r.json", "--processes", "0"], ["plan", "r.json", "--processes", "-2"],
                 ["plan", "r.json", "--accumulation", "0"], ["train", "r.json", "--max-train-minutes", "0"],
                 ["train", "r.json", "--max-train-minutes", "nan"]):
        with pytest.raises(SystemExit) as exit_:
            mint.cli.main(argv)
        assert exit_.value.code == 2, argv
        assert "expected a" in capsys.readouterr().err, argv


def test_cli_plan_prints_and_writes_json(data, mint_folder, tmp_path):
    recipe = tmp_path / "recipe.json"
    recipe.write_text(json.dumps({"stage": 1, "model": mint_folder, "batch_size": 8,
                                  "datasets": [{"path": str(data / "clotho-ready")}]}))
    command = [sys.executable, "-m", "mint", "plan", str(recipe), "num_train_epochs=2", "--processes", "2", "--json",
               str(tmp_path / "plan.json")]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    saved = json.loads((tmp_path / "plan.json").read_text())
    expected = plan_recipe(load_recipe(recipe, ["num_train_epochs=2"]), num_processes=2)
    assert saved["total_steps"] == expected.total_steps == 2 and saved["mixture_examples"] == 5
    assert saved["memory"]["total_bytes"] == expected.memory.total_bytes
    assert "caption pairs" in done.stdout and "optimizer steps per epoch" in done.stdout


# ---- the paper's recipes -----------------------------------------------------------------------------------------

def test_paper_recipes_cover_table1_with_the_papers_settings():
    stage1 = load_recipe(os.path.join(ROOT, "recipes", "paper_stage1.json"))
    stage2 = load_recipe(os.path.join(ROOT, "recipes", "paper_stage2.json"))
    assert (stage1.stage, stage1.num_train_epochs, stage2.stage, stage2.num_train_epochs) == (1, 5.0, 2, 3.0)
    for recipe in (stage1, stage2):
        assert (recipe.batch_size, recipe.learning_rate, recipe.warmup_steps, recipe.lr_scheduler_type) == (
            64, 1e-4, 2000, "linear")
    assert stage1.datasets == [{"path": "data/wavcaps", "split": "train"}] and stage2.model == stage1.output_dir
    training_rows = {name for name, template in INSTRUCTION_TEMPLATES.items() if "train" in template.use}
    assert {spec["template"] for spec in stage2.datasets} == training_rows
    assert all(spec["weight"] > 0 for spec in stage2.datasets)


def test_paper_stage2_recipe_plans_on_prepared_fixture_releases(tmp_path, mint_folder, monkeypatch):
    """Every folder, split and column the stage-2 recipe names is one `mint data prepare` writes."""
    releases = tmp_path / "releases"
    for name, build in (("audioset", audioset_release), ("vggsound", vggsound_release), ("nsynth", nsynth_release),
                        ("fsd50k", fsd50k_release), ("music4all", music4all_release), ("fma", fma_release),
                        ("wavcaps", wavcaps_release), ("openmic", openmic_release)):
        build(releases / name)
    clip(releases / "wavcaps" / "Audio" / "BBC_Sound_Effects" / "07066104.flac")  # the fixture's one BBC clip
    monkeypatch.chdir(tmp_path)
    options = {"openmic-train": ("openmic", True), "fma": ("fma", True), "music4all": ("music4all", True)}
    for folder in ("audioset", "vggsound", "nsynth", "fsd50k", "wavcaps", "openmic-train", "fma", "music4all"):
        name, labeled_only = options.get(folder, (folder, False))
        prepare_dataset(name, releases / name, f"data/{folder}", labeled_only=labeled_only, progress=False)
    plan = plan_recipe(os.path.join(ROOT, "recipes", "paper_stage2.json"), num_processes=8, model=mint_folder)
    assert [d.template for d in plan.datasets] == [spec["template"] for spec in load_recipe(
        os.path.join(ROOT, "recipes", "paper_stage2.json")).datasets]
    assert plan.per_device_batch_size == 8 and plan.steps_per_epoch == math.ceil(plan.mixture_examples / 64)
    assert sum(plan.examples_per_template.values()) == sum(d.examples for d in plan.datasets)
    assert abs(sum(d.share for d in plan.datasets) - 1) < 1e-9


def test_parts_at_rate_0_are_planned_as_frozen():
    """A part `learning_rates` sets to 0 trains without gradients or optimizer state: the plan counts it frozen."""
    config = tiny.mint_config()
    plain = parameter_memory(config, 2)
    fixed = parameter_memory(config, 2, learning_rates={"qformer": 0.0, "query_tokens": 0.0})
    model = MintForConditionalGeneration(config)
    bridge = sum(p.numel() for p in [model.query_tokens, *model.qformer.parameters()])
    assert plain.trainable_parameters - fixed.trainable_parameters == bridge > 0
    assert fixed.frozen_parameters - plain.frozen_parameters == bridge
    assert fixed.gradient_bytes < plain.gradient_bytes
