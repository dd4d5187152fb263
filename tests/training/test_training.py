"""Training with Trainer: templates, datasets, recipes, both stages, accumulation, resume, cache, LoRA."""

import json
import logging
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from datasets import Dataset, concatenate_datasets, load_from_disk
from transformers import TrainerCallback, TrainingArguments

from mint.data.cache import cache_audio_features
from mint.data.collator import MintDataCollator
from mint.data.examples import label_text, mix_datasets, to_caption_pairs, to_mint_examples
from mint.data.templates import INSTRUCTION_TEMPLATES, get_template, register_template
from mint.training.checkpoints import COMPLETE_MARKER, last_complete_checkpoint
from mint.training.collator import ROW_COLUMN, SOURCE_COLUMN, number_rows
from mint.training.lora import add_lora, lora_base_folders, save_lora_run
from mint.training.recipe import MintRecipe, default_recipe, load_recipe, per_device_batch_size
from mint.training.trainer import MintTrainer, load_model, train, training_arguments
from modeling_mint import MintForConditionalGeneration, MintForPreTraining
from tests.utils import tiny
from tests.utils.training import CrashAt, LossRecorder, recipe


# ---- templates and data -------------------------------------------------------------------------------------------

def test_table1_templates_ship_as_data(monkeypatch):
    assert len(INSTRUCTION_TEMPLATES) == 12
    assert get_template("NSynth").prompt == "The most prominent instrument in this music is"
    assert get_template("OpenMIC").prompt == "Identify the instruments in this segment of music:"
    assert get_template("Clotho").output == "{caption}" and get_template("Clotho").use == ("eval",)
    assert get_template("Music4All-key").prompt == "The key of this music is"
    with pytest.raises(ValueError, match="No instruction template named 'ESC-50'"):
        get_template("ESC-50")
    monkeypatch.setattr("mint.data.templates.INSTRUCTION_TEMPLATES", dict(INSTRUCTION_TEMPLATES))  # others see none
    register_template("MyBirds", "The bird singing here is")
    assert get_template("MyBirds").prompt == "The bird singing here is"
    with pytest.raises(ValueError, match="exists already"):
        register_template("MyBirds", "x")


def test_dataset_to_examples_single_multi_label_and_captions(audio_dataset):
    single = to_mint_examples(audio_dataset, "NSynth")
    assert single.column_names == ["audio", "prompt", "target"]
    assert single[2]["target"] == "piano" and single[2]["prompt"] == get_template("NSynth").prompt
    multi = to_mint_examples(audio_dataset, "OpenMIC", label_column="instruments")
    assert multi[1]["target"] == "piano, violin"
    captions = to_mint_examples(audio_dataset, "WavCaps")
    assert captions[0]["target"] == "a dog barks" and captions[0]["prompt"] == "Generate audio caption:"
    pairs = to_caption_pairs(audio_dataset)
    assert pairs.column_names == ["audio", "caption"] and pairs[3]["caption"] == "rain on a roof"
    assert label_text(["a", "b"]) == "a, b" and label_text(1, ["x", "y"]) == "y"


def test_clear_errors_for_missing_columns_and_empty_labels(audio_dataset):
    with pytest.raises(ValueError, match=r"no caption column 'text'.*columns are"):
        to_caption_pairs(audio_dataset, caption_column="text")
    with pytest.raises(ValueError, match="no audio column 'wav'"):
        to_mint_examples(audio_dataset, "NSynth", audio_column="wav")
    with pytest.raises(ValueError, match="empty label"):
        label_text("  ")


def test_mixture_follows_the_weights():
    a = Dataset.from_dict({"prompt": ["a"] * 600})
    b = Dataset.from_dict({"prompt": ["b"] * 600})
    prompts = mix_datasets([a, b], [3.0, 1.0], seed=0)["prompt"]
    # all_exhausted: every example of both appears; until then "a" is drawn three times as often as "b".
    assert prompts.count("b") >= 600 and prompts.count("a") >= 600
    first = prompts[:800]
    assert 2.4 < first.count("a") / first.count("b") < 3.6
    with pytest.raises(ValueError, match="one positive weight per dataset"):
        mix_datasets([a, b], [1.0])


# ---- recipes --------------------------------------------------------------------------------------------------------

def test_default_recipes_are_the_papers(tmp_path):
    stage1, stage2 = default_recipe(1), default_recipe(2)
    assert (stage1.learning_rate, stage1.warmup_steps, stage1.lr_scheduler_type, stage1.batch_size) == (
        1e-4, 2000, "linear", 64)
    assert (stage1.num_train_epochs, stage2.num_train_epochs) == (5.0, 3.0)
    printed = subprocess.run([sys.executable, "-m", "mint", "recipe", "stage2"], capture_output=True, text=True,
                             check=True).stdout
    path = tmp_path / "r.json"
    path.write_text(printed)
    loaded = load_recipe(path, ["batch_size=32", "output_dir=elsewhere"])
    assert loaded.stage == 2 and loaded.batch_size == 32 and loaded.output_dir == "elsewhere"
    with pytest.raises(ValueError, match=r"unknown keys \['batchsize'\] \(did you mean 'batch_size' for 'batchsize'"):
        load_recipe(path, ["batchsize=3"])


def test_recipes_refuse_unknown_keys_and_wrong_types_at_every_level(tmp_path):
    with pytest.raises(ValueError, match=r"Recipe datasets\[1\] has unknown keys \['splt', 'weigth'\] \(did you "
                                         r"mean 'split' for 'splt', 'weight' for 'weigth'\?\); allowed keys: \["):
        MintRecipe(datasets=[{"path": "a"}, {"path": "b", "weigth": 2.0, "splt": "test"}])
    with pytest.raises(ValueError, match="stage must be 1 or 2"):
        MintRecipe(stage=3)
    with pytest.raises(ValueError, match="learning_rate must be a number, got the string 'fast'"):
        MintRecipe(learning_rate="fast")
    with pytest.raises(ValueError, match="batch_size must be an integer, got 2.5"):
        MintRecipe(batch_size=2.5)
    with pytest.raises(ValueError, match=r"datasets\[0\]\['weight'\] must be positive"):
        MintRecipe(datasets=[{"path": "a", "weight": 0}])
    with pytest.raises(ValueError, match=r"lora has unknown keys \['rank'\]"):
        MintRecipe(lora={"rank": 4})
    with pytest.raises(ValueError, match=r"training_args sets \['learning_rate'\], which the recipe sets itself"):
        MintRecipe(training_args={"learning_rate": 1e-3})
    with pytest.raises(ValueError, match=r"training_args has unknown keys \['max_grad_nrom'\] \(did you mean "
                                         r"'max_grad_norm'"):
        MintRecipe(training_args={"max_grad_nrom": 1.0})
    # Numbers written as strings are numbers.
    recipe = MintRecipe(learning_rate="1e-4", batch_size="8", learning_rates={"qformer": "5e-5"},
                        datasets=[{"path": "a", "weight": "2"}])
    assert (recipe.learning_rate, recipe.batch_size, recipe.learning_rates, recipe.datasets[0]["weight"]) == (
        1e-4, 8, {"qformer": 5e-5}, 2.0)
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"stage": 2, "datasets": [{"path": "a", "splt": "test"}]}))
    with pytest.raises(ValueError, match=r"datasets\[0\] has unknown keys \['splt'\]"):
        load_recipe(path)
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match="must hold a JSON object of recipe fields, got list"):
        load_recipe(path)


def test_batch_size_must_divide_across_processes():
    assert per_device_batch_size(64, 8, 1) == 8
    with pytest.raises(ValueError, match="does not divide across 3 processes"):
        per_device_batch_size(64, 3, 1)


# ---- Trainer runs ---------------------------------------------------------------------------------------------------


def test_stage1_then_stage2_with_trainer(audio_dataset, mint_folder, tmp_path):
    recorder = LossRecorder()
    trainer = train(recipe(mint_folder, tmp_path / "s1", stage1_objectives=["alc", "atg"]),
                    to_caption_pairs(audio_dataset), callbacks=[recorder])
    assert all({"loss_alc", "loss_atg"} <= set(log) and "loss_alm" not in log for log in recorder.logs)
    assert recorder.logs[0]["loss"] == pytest.approx(recorder.logs[0]["loss_alc"] + recorder.logs[0]["loss_atg"],
                                                     rel=1e-3)
    assert trainer.model.config.stage1_objectives == ["alc", "atg"]
    assert (tmp_path / "s1" / "model.safetensors").exists()
    stage1 = MintForPreTraining.from_pretrained(tmp_path / "s1")
    trainer2 = train(recipe(str(tmp_path / "s1"), tmp_path / "s2", stage=2), to_mint_examples(audio_dataset, "NSynth"))
    stage2 = MintForConditionalGeneration.from_pretrained(tmp_path / "s2")
    # Stage 2 started from stage 1's Bridge-Net and trained it further; the frozen encoder is unchanged.
    assert torch.equal(stage2.audio_model.state_dict()["encoder.layers.0.attention.k_proj.weight"],
                       stage1.audio_model.state_dict()["encoder.layers.0.attention.k_proj.weight"])
    assert not torch.equal(stage2.query_tokens, stage1.query_tokens)
    assert trainer2.state.global_step == 4


def test_stage2_must_start_from_a_mint_checkpoint(audio_dataset, tmp_path):
    (tmp_path / "bert").mkdir()
    (tmp_path / "bert" / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ValueError, match="is not a MINT checkpoint"):
        train(recipe(str(tmp_path / "bert"), tmp_path / "out", stage=2), to_mint_examples(audio_dataset, "NSynth"))


def test_trainer_counts_every_target_token(audio_dataset, mint_folder, tmp_path):
    """num_items_in_batch must be the number of target tokens: one-word labels + EOS are 2 tokens each, not 1."""
    model = MintForConditionalGeneration.from_pretrained(mint_folder)
    trainer = MintTrainer(model=model, args=training_arguments(recipe(mint_folder, tmp_path, stage=2)))
    examples = to_mint_examples(audio_dataset, "NSynth")
    batch = MintDataCollator(tiny.processor(), stage=2)([examples[i] for i in range(4)])
    counted = trainer._get_num_items_in_batch([batch], torch.device("cpu"))  # the Trainer's own count
    assert int(counted) == int((batch["labels"] != -100).sum()) == 8


def test_gradient_accumulation_gives_the_larger_batch_update(audio_dataset, mint_folder, tmp_path):
    examples = to_mint_examples(audio_dataset, "WavCaps")  # captions of different lengths: token counts differ
    # Plain SGD, so the update is the gradient itself (Adam's first step is lr * sign(g), blind to its scale).
    common = dict(stage=2, max_steps=1, learning_rate=1.0, weight_decay=0.0, optim="sgd")
    train(recipe(mint_folder, tmp_path / "big", batch_size=4, **common), examples)
    train(recipe(mint_folder, tmp_path / "acc", batch_size=4, gradient_accumulation_steps=2, **common), examples)
    big = MintForConditionalGeneration.from_pretrained(tmp_path / "big").state_dict()
    acc = MintForConditionalGeneration.from_pretrained(tmp_path / "acc").state_dict()
    torch.manual_seed(0)  # the same seed the runs used, so the missing projection starts identical
    start = MintForConditionalGeneration.from_pretrained(mint_folder).state_dict()
    for name in ("language_projection.weight", "query_tokens", "qformer.encoder.layer.1.output_query.dense.weight"):
        update_big, update_acc = big[name] - start[name], acc[name] - start[name]
        assert update_big.abs().max() > 1e-5
        # Float noise only: averaging the two micro-batches' token means instead would be off by several percent
        # here, since their target-token counts differ.
        assert (update_acc - update_big).norm() / update_big.norm() < 1e-3, name


@pytest.mark.slow
def test_resume_continues_with_exactly_the_uninterrupted_losses(audio_dataset, mint_folder, tmp_path):
    pairs = to_caption_pairs(audio_dataset)
    full = LossRecorder()
    common = dict(max_steps=6, save_steps=2, num_train_epochs=3)
    train(recipe(mint_folder, tmp_path / "full", **common), pairs, callbacks=[full])
    with pytest.raises(KeyboardInterrupt):
        train(recipe(mint_folder, tmp_path / "cut", **common), pairs, callbacks=[CrashAt(5)])
    # A checkpoint the dying process was still writing has no completion marker and must never be resumed.
    partial = tmp_path / "cut" / "checkpoint-6"
    partial.mkdir()
    (partial / "model.safetensors").write_bytes(b"truncated")
    assert last_complete_checkpoint(tmp_path / "cut").endswith("checkpoint-4")
    assert (tmp_path / "cut" / "checkpoint-4" / COMPLETE_MARKER).exists()
    resumed = LossRecorder()
    os.rename(partial, tmp_path / "partial-kept-aside")  # the Trainer would otherwise rotate it as a later step
    train(recipe(mint_folder, tmp_path / "cut", resume=True, **common), pairs, callbacks=[resumed])
    expected = {log["step"]: log["loss"] for log in full.logs if log["step"] > 4}
    got = {log["step"]: log["loss"] for log in resumed.logs}
    assert got == expected


class _Messages(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_rerunning_a_finished_run_trains_nothing_and_keeps_the_model(audio_dataset, mint_folder, tmp_path, caplog):
    """The same command again on a finished run trained one more step each time (the Trainer resumed at its last
    step checks max_steps only after a step) and warned that the tied ATG decoder was missing from the checkpoint."""
    pairs = to_caption_pairs(audio_dataset)
    spec = recipe(mint_folder, tmp_path, max_steps=2, resume=True)
    first = train(spec, pairs)
    assert first.state.global_step == 2 and not first.already_complete
    assert sorted(p.name for p in tmp_path.glob("checkpoint-*")) == ["checkpoint-2"]
    weights = (tmp_path / "model.safetensors").read_bytes()
    transformers_warnings = _Messages()  # the transformers loggers do not propagate to caplog
    logging.getLogger("transformers").addHandler(transformers_warnings)
    try:
        again = train(spec, pairs, callbacks=[recorder := LossRecorder()])
    finally:
        logging.getLogger("transformers").removeHandler(transformers_warnings)
    assert again.already_complete and again.state.global_step == 2 and recorder.logs == []
    assert sorted(p.name for p in tmp_path.glob("checkpoint-*")) == ["checkpoint-2"]
    assert (tmp_path / "model.safetensors").read_bytes() == weights
    assert "already complete" in caplog.text
    assert not [m for m in transformers_warnings.messages if "missing keys" in m], transformers_warnings.messages
    # The ATG decoder the checkpoint does not store is tied to the Q-Former's word embeddings, loaded as trained.
    head, trained = again.model.atg_head.predictions, MintForPreTraining.from_pretrained(tmp_path)
    assert head.decoder.weight is again.model.qformer.embeddings.word_embeddings.weight
    assert torch.equal(head.decoder.weight, trained.qformer.embeddings.word_embeddings.weight)
    assert torch.equal(head.decoder.bias, trained.atg_head.predictions.bias)
    assert not torch.equal(head.decoder.weight,
                           MintForPreTraining.from_pretrained(mint_folder).qformer.embeddings.word_embeddings.weight)


def test_feature_cache_gives_the_same_losses(audio_dataset, mint_folder, tmp_path):
    model = MintForPreTraining.from_pretrained(mint_folder).eval()
    processor = tiny.processor()
    pairs = to_caption_pairs(audio_dataset)
    cached = cache_audio_features(model, processor, pairs, tmp_path / "cache", batch_size=4, progress=False)
    assert "audio" not in cached.column_names and cached[0]["audio_encoder_features"].shape[1] == 32
    assert load_from_disk(str(tmp_path / "cache")).num_rows == 6
    collator = MintDataCollator(processor, stage=1)
    model.config.alm_negative_sampling = "hardest"
    live = model(**collator([pairs[i] for i in range(4)]))
    from_cache = model(**collator([cached[i] for i in range(4)]))
    for name in ("loss_alc", "loss_alm", "loss_atg"):
        assert getattr(from_cache, name).item() == pytest.approx(getattr(live, name).item(), abs=1e-5), name
    # Training reads the cache through the recipe like any dataset.
    trainer = train(recipe(mint_folder, tmp_path / "s1", datasets=[{"path": str(tmp_path / "cache")}], max_steps=2))
    assert trainer.state.global_step == 2


def test_cache_features_command_writes_a_dataset(audio_dataset, mint_folder, tmp_path):
    to_caption_pairs(audio_dataset).save_to_disk(str(tmp_path / "pairs"))
    result = subprocess.run([sys.executable, "-m", "mint", "cache-features", "--model", mint_folder, "--dataset",
                             str(tmp_path / "pairs"), "--output", str(tmp_path / "c"), "--dtype", "float16"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Caching audio features" in result.stderr  # the progress bar
    cached = load_from_disk(str(tmp_path / "c"))
    assert cached.features["audio_encoder_features"].dtype == "float16"


def test_lora_adapters_train_save_and_load_alone(audio_dataset, mint_folder, tmp_path):
    torch.manual_seed(0)  # the stage-1 folder has no LLM: a stage-2 folder that stores one is the frozen base
    MintForConditionalGeneration.from_pretrained(mint_folder).save_pretrained(tmp_path / "base")
    with pytest.raises(ValueError, match=r"stores no \['language_model'\]"):
        lora_base_folders(MintForConditionalGeneration.from_pretrained(mint_folder), mint_folder)
    model = MintForConditionalGeneration.from_pretrained(tmp_path / "base")
    lora = add_lora(model, targets=["language_model", "qformer"], r=4)
    trainable = {n for n, p in lora.named_parameters() if p.requires_grad}
    assert any("language_model" in n and "lora_A" in n for n in trainable)
    assert any("qformer" in n and "lora_B" in n for n in trainable)
    assert not any("language_model" in n and "lora" not in n for n in trainable)
    batch = MintDataCollator(tiny.processor(), stage=2)([to_mint_examples(audio_dataset, "NSynth")[i]
                                                         for i in range(3)])
    optimizer = torch.optim.AdamW([p for p in lora.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(2):
        optimizer.zero_grad()
        lora(**batch).loss.backward()
        optimizer.step()
    lora.eval()
    expected = lora(**batch).logits
    save_lora_run(lora, tiny.processor(), MintRecipe(stage=2, model=str(tmp_path / "base"),
                                                      output_dir=str(tmp_path / "run")))
    from safetensors.torch import load_file

    adapter_keys = load_file(tmp_path / "run" / "adapters" / "adapter_model.safetensors").keys()
    assert any("lora_A" in k for k in adapter_keys)
    assert not any("language_model" in k and "lora" not in k for k in adapter_keys)  # no frozen LLM weight
    assert not any(k.startswith("base_model.model.audio_model") for k in adapter_keys)
    stored = load_file(tmp_path / "run" / "model.safetensors").keys()
    assert "query_tokens" in stored and not any(k.startswith(("language_model.", "audio_model.")) for k in stored)
    reloaded = MintForConditionalGeneration.from_pretrained(tmp_path / "run").eval()  # the one loading path
    assert torch.allclose(reloaded(**batch).logits, expected, atol=1e-5)


def test_stage2_examples_from_the_feature_cache_give_the_same_loss(audio_dataset, mint_folder, tmp_path):
    """A corpus cached once (labels kept) feeds stage 1 and stage 2; the stage-2 loss equals the live-audio loss."""
    processor = tiny.processor()
    encoder = MintForPreTraining.from_pretrained(mint_folder).eval()
    cached = cache_audio_features(encoder, processor, audio_dataset, tmp_path / "cache", progress=False)
    assert {"label", "caption", "audio_encoder_features"} <= set(cached.column_names)
    pairs = to_caption_pairs(cached, audio_column="audio_encoder_features")
    assert pairs.column_names == ["audio_encoder_features", "caption", "audio_length"]
    live = to_mint_examples(audio_dataset, "NSynth")
    from_cache = to_mint_examples(cached, "NSynth", audio_column="audio_encoder_features")
    assert sorted(from_cache.column_names) == ["audio_encoder_features", "audio_length", "prompt", "target"]
    assert from_cache["audio_length"] == [len(f) for f in cached["audio_encoder_features"]]
    assert from_cache["target"] == live["target"] and from_cache["prompt"] == live["prompt"]
    torch.manual_seed(0)
    model = MintForConditionalGeneration.from_pretrained(mint_folder).eval()
    collator = MintDataCollator(processor, stage=2)
    loss_live = model(**collator([live[i] for i in range(4)])).loss
    loss_cached = model(**collator([from_cache[i] for i in range(4)])).loss
    assert loss_cached.item() == pytest.approx(loss_live.item(), abs=1e-5)


class FrozenRecorder(TrainerCallback):
    """Per optimizer step: whether the Q-Former and the queries were frozen and got no gradient."""

    def __init__(self):
        self.steps = []

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        parts = [model.query_tokens, *model.qformer.parameters()]
        self.steps.append(not any(p.requires_grad or p.grad is not None for p in parts))


def test_per_part_learning_rates(audio_dataset, mint_folder, tmp_path):
    """`learning_rates={"qformer": 0}` keeps the Q-Former fixed (frozen: no gradient is computed for it) while the
    projection and the LLM train; the logs give the base rate and each part's as the schedule scales them."""
    torch.manual_seed(0)
    start = MintForConditionalGeneration.from_pretrained(mint_folder)
    start.config.freeze_language_model = False
    start.save_pretrained(tmp_path / "start")
    tiny.processor().save_pretrained(tmp_path / "start")
    start = MintForConditionalGeneration.from_pretrained(tmp_path / "start")
    recorder, frozen = LossRecorder(), FrozenRecorder()
    trainer = train(recipe(str(tmp_path / "start"), tmp_path / "s2", stage=2, max_steps=2,
                           learning_rates={"qformer": 0.0, "query_tokens": 0.0, "language_projection": 5e-4}),
                    to_mint_examples(audio_dataset, "NSynth"), callbacks=[recorder, frozen])
    rates = sorted({group["initial_lr"] for group in trainer.optimizer.param_groups})
    assert rates == [5e-4, 1e-3]  # the parts at rate 0 are frozen: no gradient, no optimizer state
    assert frozen.steps == [True, True]  # while training, no gradient reached the Q-Former or the queries
    # and afterwards the model is as it was: a later trainer with a rate for the Q-Former trains it
    assert all(p.requires_grad for p in [trainer.model.query_tokens, *trainer.model.qformer.parameters()])
    # The logged rate is the recipe's base rate under the linear schedule, not the first parameter group's (0 here).
    assert [log["learning_rate"] for log in recorder.logs] == pytest.approx([1e-3, 5e-4])
    assert [log["learning_rate_qformer"] for log in recorder.logs] == [0.0, 0.0]
    assert [log["learning_rate_language_projection"] for log in recorder.logs] == pytest.approx([5e-4, 2.5e-4])
    trained = trainer.model
    assert torch.equal(trained.query_tokens, start.query_tokens)
    assert all(torch.equal(a, b) for a, b in zip(trained.qformer.parameters(), start.qformer.parameters()))
    assert not torch.equal(trained.language_projection.weight, start.language_projection.weight)
    assert not torch.equal(trained.language_model.shared.weight, start.language_model.shared.weight)
    with pytest.raises(ValueError, match="not parts of the model"):
        train(recipe(str(tmp_path / "start"), tmp_path / "s3", stage=2, learning_rates={"q_former": 1e-5}),
              to_mint_examples(audio_dataset, "NSynth"))


def test_a_time_budget_stops_training_with_a_complete_checkpoint(audio_dataset, mint_folder, tmp_path):
    pairs = to_caption_pairs(audio_dataset)
    trainer = train(recipe(mint_folder, tmp_path, max_steps=4, max_train_minutes=1e-6), pairs)
    assert trainer.state.global_step == 1
    assert last_complete_checkpoint(tmp_path).endswith("checkpoint-1")
    assert (tmp_path / "model.safetensors").exists()
    resumed = LossRecorder()
    train(recipe(mint_folder, tmp_path, max_steps=4, resume=True), pairs, callbacks=[resumed])
    assert [log["step"] for log in resumed.logs] == [2, 3, 4]
    with pytest.raises(ValueError, match="max_train_minutes must be positive"):
        MintRecipe(max_train_minutes=0)


def test_group_by_length_batches_clips_of_similar_length(audio_dataset, mint_folder, tmp_path):
    """Length-grouped batches from the feature cache pad less than the dataset order, and need the length column."""
    encoder = MintForPreTraining.from_pretrained(mint_folder).eval()
    cached = cache_audio_features(encoder, tiny.processor(), audio_dataset, tmp_path / "cache", progress=False)
    # The sampler sorts within mega-batches of up to 50 batches, as many as the dataset allows.
    examples = concatenate_datasets([to_mint_examples(cached, "NSynth", audio_column="audio_encoder_features")] * 8)

    def padding(group_by_length):
        args = training_arguments(recipe(mint_folder, tmp_path / f"g{group_by_length}", stage=2, batch_size=2,
                                         group_by_length=group_by_length))
        trainer = MintTrainer(model=MintForConditionalGeneration.from_pretrained(mint_folder), args=args,
                              train_dataset=examples, data_collator=MintDataCollator(tiny.processor()))
        total = 0
        for batch in trainer.get_train_dataloader():
            mask = batch["audio_attention_mask"]
            total += int((mask == 0).sum())
        return total

    assert padding(True) < padding(False) / 2  # 52 against 212 padded frames here
    with pytest.raises(ValueError, match="group_by_length needs the 'audio_length' column"):
        train(recipe(mint_folder, tmp_path / "live", stage=2, group_by_length=True),
              to_mint_examples(audio_dataset, "NSynth"))


def test_speed_levers_from_the_recipe(audio_dataset, mint_folder, tmp_path):
    model = load_model(recipe(mint_folder, tmp_path, stage=2, bridge_autocast=True))
    assert "forward" in vars(model.qformer) and "forward" in vars(model.language_projection)  # under autocast
    with pytest.raises(ValueError, match="compile must be null or 'regional'"):
        recipe(mint_folder, tmp_path, stage=2, compile="everything")
    plain = MintForConditionalGeneration.from_pretrained(mint_folder).eval()
    examples = to_mint_examples(audio_dataset, "NSynth")
    batch = dict(MintDataCollator(tiny.processor(), stage=2)([examples[i] for i in range(4)]))
    grouped = MintTrainer(model=plain, args=training_arguments(recipe(mint_folder, tmp_path, stage=2)),
                          length_groups=2)
    with torch.no_grad():
        expected = plain(**batch).loss
        torch.testing.assert_close(grouped.compute_loss(plain, dict(batch)), expected, rtol=1e-5, atol=1e-6)


def test_a_shuffled_mixture_from_the_feature_cache_is_numbered_and_keeps_its_numpy_features(audio_dataset, mint_folder,
                                                                                             tmp_path):
    encoder = MintForPreTraining.from_pretrained(mint_folder)
    cached = cache_audio_features(encoder, tiny.processor(), audio_dataset, tmp_path / "cache", progress=False)
    mixture = concatenate_datasets([to_mint_examples(cached, "NSynth", audio_column="audio_encoder_features")] * 2)
    shuffled = mixture.shuffle(seed=0)  # an indices mapping: adding a column rewrites the rows
    numbered = number_rows(shuffled, source=1)
    assert numbered[ROW_COLUMN] == list(range(len(shuffled))) and set(numbered[SOURCE_COLUMN]) == {1}
    for row in (0, 5):
        features = numbered[row]["audio_encoder_features"]
        assert isinstance(features, np.ndarray) and features.ndim == 2
        np.testing.assert_array_equal(features, shuffled[row]["audio_encoder_features"])


def test_a_trainer_freezing_parts_at_rate_0_leaves_the_model_as_it_found_it(tmp_path):
    """The freeze lasts while that trainer trains: a later trainer giving the Q-Former a rate trains it."""
    model = MintForPreTraining(tiny.mint_config())
    args = dict(report_to=[], use_cpu=True)
    MintTrainer(model=model, args=TrainingArguments(output_dir=str(tmp_path / "a"), **args),
                learning_rates={"qformer": 0.0})
    second = MintTrainer(model=model, args=TrainingArguments(output_dir=str(tmp_path / "b"), **args),
                         learning_rates={"qformer": 1e-4})
    optimized = {id(p) for group in second.create_optimizer().param_groups for p in group["params"]}
    assert all(id(p) in optimized for p in model.qformer.parameters())


def test_learning_rates_that_leave_nothing_to_train_are_refused(audio_dataset, mint_folder, tmp_path):
    model = load_model(recipe(mint_folder, tmp_path / "probe"))
    parts = sorted({name.split(".")[0] for name, p in model.named_parameters() if p.requires_grad})
    with pytest.raises(ValueError, match="every trainable part of the model to 0: nothing would train"):
        train(recipe(mint_folder, tmp_path / "run", max_steps=1, learning_rates=dict.fromkeys(parts, 0.0)),
              to_caption_pairs(audio_dataset))


def test_a_run_resumes_only_with_the_parts_it_froze(audio_dataset, mint_folder, tmp_path):
    """A run with the Q-Former at rate 0 (no optimizer state for it) resumed with a rate for it is refused by name."""
    pairs = to_caption_pairs(audio_dataset)
    with pytest.raises(KeyboardInterrupt):
        train(recipe(mint_folder, tmp_path, max_steps=3, save_steps=1, learning_rates={"qformer": 0.0}), pairs,
              callbacks=[CrashAt(2)])
    with pytest.raises(ValueError, match=r"learning_rates of 0 \(frozen parts\)': \['qformer'\]"):
        train(recipe(mint_folder, tmp_path, max_steps=3, save_steps=1, resume=True,
                     learning_rates={"qformer": 1e-4}), pairs)
