"""Stage 2 with several instructions on one clip (`audio_id_column`): the collator passes each clip's cached features
once with `audio_index`, the model gives the loss and gradients of the examples written out, the sampler puts each
clip's examples together, and every entry point refuses what it cannot use."""

import numpy as np
import pytest
import torch
from datasets import Dataset, concatenate_datasets

from audio_encoder_mint import ENCODER_FEATURES_KEY
from mint.data.cache import cache_audio_features
from mint.data.collator import MintDataCollator
from mint.data.examples import to_mint_examples
from mint.training.collator import CheckedCollator, number_rows
from mint.training.recipe import MintRecipe
from mint.training.sampling import ClipGroupedSampler
from mint.training.trainer import MintTrainer, split_held_out, train
from modeling_mint import MintForConditionalGeneration, MintForPreTraining
from tests.utils import tiny
from tests.utils.training import CrashAt, LossRecorder, make_audio_dataset, make_mint_folder, recipe

FRAMES = (7, 4, 6)  # three clips of distinct lengths


def _example(index: int, prompt: str, target: str, **changes) -> dict:
    """Clip `index`'s cached features (its own values and length) with an instruction."""
    features = np.random.default_rng(index).standard_normal((FRAMES[index], 32)).astype(np.float32)
    return {ENCODER_FEATURES_KEY: features, "prompt": prompt, "target": target, "clip": index, **changes}


EXAMPLES = [_example(0, "Describe the audio.", "a dog barks"), _example(1, "Which instrument?", "piano"),
            _example(0, "Which instrument?", "dog"), _example(2, "Describe the audio.", "rain on a roof"),
            _example(1, "Describe the audio.", "a piano plays")]


def test_collator_passes_each_clip_once():
    batch = MintDataCollator(tiny.processor(), stage=2, audio_id_column="clip")(EXAMPLES)
    assert batch["audio_index"].tolist() == [0, 1, 0, 2, 1]
    assert batch[ENCODER_FEATURES_KEY].shape == (3, max(FRAMES), 32)
    assert batch["audio_attention_mask"].sum(-1).tolist() == [FRAMES[0], FRAMES[1], FRAMES[2]]
    for row, clip in enumerate((0, 1, 2)):
        assert torch.equal(batch[ENCODER_FEATURES_KEY][row, : FRAMES[clip]],
                           torch.from_numpy(_example(clip, "", "")[ENCODER_FEATURES_KEY]))
    assert batch["qformer_input_ids"].shape[0] == batch["labels"].shape[0] == len(EXAMPLES)


def test_shared_batch_gives_the_loss_and_gradients_of_the_examples_written_out():
    torch.manual_seed(0)
    model = MintForConditionalGeneration(tiny.mint_config(
        qformer_config=tiny.qformer_config(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0),
        text_config=tiny.t5_config(dropout_rate=0.0))).train()
    processor = tiny.processor()
    results = []
    for collator in (MintDataCollator(processor, stage=2, audio_id_column="clip"), MintDataCollator(processor)):
        batch = collator(EXAMPLES)
        model.zero_grad()
        output = model(**batch)
        output.loss.backward()
        results.append((output.loss.detach(), output.logits.detach(),
                        {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}))
    (shared_loss, shared_logits, shared_grads), (loss, logits, grads) = results
    assert torch.allclose(shared_loss, loss, atol=1e-6) and torch.allclose(shared_logits, logits, atol=1e-5)
    assert shared_grads.keys() == grads.keys() and any("crossattention" in name for name in grads)
    for name, grad in grads.items():
        assert torch.allclose(shared_grads[name], grad, atol=1e-5), name


def test_sampler_keeps_each_clips_examples_together_and_draws_a_new_order_each_pass():
    ids = ["b", 7, "b", "a", 7, "c", "a", "b"]
    sampler = ClipGroupedSampler(ids, seed=3)
    passes = []
    for epoch in range(4):
        sampler.set_epoch(epoch)
        passes.append(list(sampler))
    assert len(sampler) == len(ids)
    for order in passes:
        assert sorted(order) == list(range(len(ids)))
        clips = [ids[i] for i in order]
        runs = [clip for i, clip in enumerate(clips) if i == 0 or clips[i - 1] != clip]
        assert len(runs) == len(set(ids))  # each clip's examples come one after another
    assert len({tuple(order) for order in passes}) > 1
    assert list(sampler) == passes[-1]  # an epoch's order does not depend on what was drawn before
    again = ClipGroupedSampler(ids, seed=3)
    assert list(again) == passes[0]
    torch.manual_seed(123)  # nor on torch's global generator
    assert list(ClipGroupedSampler(ids, seed=3)) == passes[0]


@pytest.fixture(scope="module")
def cached(tmp_path_factory):
    """A tiny stage-1 folder and the feature cache of six clips, each named by a `clip` column."""
    tmp = tmp_path_factory.mktemp("shared")
    folder = make_mint_folder(tmp / "mint")
    (tmp / "audio").mkdir()
    encoder = MintForPreTraining.from_pretrained(folder).eval()
    cache = cache_audio_features(encoder, tiny.processor(), make_audio_dataset(tmp / "audio"), tmp / "cache",
                                 progress=False)
    return folder, cache.add_column("clip", [f"clip{i}" for i in range(len(cache))])


def _two_instructions(cache):
    """Each clip twice: captioned and labelled (12 examples)."""
    return concatenate_datasets([
        to_mint_examples(cache, "WavCaps", audio_column=ENCODER_FEATURES_KEY, keep_columns=["clip"]),
        to_mint_examples(cache, "AudioSet", audio_column=ENCODER_FEATURES_KEY, keep_columns=["clip"]),
    ])


def test_training_reads_each_clip_once_per_batch(cached, tmp_path):
    folder, cache = cached
    examples = _two_instructions(cache)
    seen = []
    run = recipe(folder, tmp_path / "run", stage=2, batch_size=4, max_steps=3, audio_id_column="clip")
    trainer_forward = MintForConditionalGeneration.forward

    def forward(self, *args, **kwargs):
        seen.append((kwargs["audio_index"].tolist(), kwargs[ENCODER_FEATURES_KEY].shape[0]))
        return trainer_forward(self, *args, **kwargs)

    MintForConditionalGeneration.forward = forward
    try:
        trainer = train(run, examples)
    finally:
        MintForConditionalGeneration.forward = trainer_forward
    assert isinstance(trainer._get_train_sampler(), ClipGroupedSampler)
    assert trainer.state.global_step == 3 and len(seen) == 3
    # 6 clips with two examples each, taken one clip after another: every batch of 4 holds 2 or 3 clips
    for index, clips in seen:
        assert len(index) == 4 and clips == len(set(index)) and clips < 4


def test_a_run_resumed_mid_epoch_sees_the_uninterrupted_order(cached, tmp_path):
    """12 examples in batches of 2: a checkpoint at step 7 of 9, a crash at step 8; the resumed run draws epoch 2's
    order from the seed and the epoch, as the uninterrupted run did, and logs its losses."""
    folder, cache = cached
    examples = _two_instructions(cache)
    common = dict(stage=2, batch_size=2, max_steps=9, save_steps=7, num_train_epochs=2, audio_id_column="clip")
    full = LossRecorder()
    train(recipe(folder, tmp_path / "full", **common), examples, callbacks=[full])
    with pytest.raises(KeyboardInterrupt):
        train(recipe(folder, tmp_path / "cut", **common), examples, callbacks=[CrashAt(8)])
    resumed = LossRecorder()
    train(recipe(folder, tmp_path / "cut", **{**common, "resume": True}), examples, callbacks=[resumed])
    expected = {log["step"]: round(log["loss"], 5) for log in full.logs if log["step"] > 7}
    assert expected and {log["step"]: round(log["loss"], 5) for log in resumed.logs} == expected


def test_held_out_split_holds_out_whole_clips(cached):
    _, cache = cached
    examples = number_rows(_two_instructions(cache))
    kept, held = split_held_out(examples, 0.34, 0, audio_id_column="clip")
    assert len(kept) + len(held) == len(examples) and len(held) >= 4
    assert not set(held["clip"]) & set(kept["clip"])
    assert all(list(held["clip"]).count(clip) == 2 for clip in set(held["clip"]))
    with pytest.raises(ValueError, match="holds out every clip"):
        split_held_out(number_rows(to_mint_examples(cache.select([0]), "WavCaps", audio_column=ENCODER_FEATURES_KEY,
                                                    keep_columns=["clip"]).select([0, 0, 0])), 0.5, 0, "clip")


def test_held_out_clips_never_exceed_the_share():
    ids = Dataset.from_dict({"clip": [0] * 90 + list(range(1, 11))})
    kept, held = split_held_out(ids, 0.05, 0, audio_id_column="clip")
    assert len(held) == 5 and 0 not in held["clip"] and len(kept) == 95
    kept, held = split_held_out(Dataset.from_dict({"clip": [0] * 50 + [1] * 50}), 0.01, 0, audio_id_column="clip")
    assert len(held) == 50 and len(set(held["clip"])) == 1  # no clip fits the share: one whole clip, with a warning


@pytest.mark.parametrize("skip_invalid", [False, True])
def test_a_clash_of_ids_is_named_by_dataset_row_also_beside_a_skipped_example(cached, skip_invalid):
    _, cache = cached
    examples = number_rows(to_mint_examples(cache.remove_columns("clip").add_column("clip", [0, 1, 0, 1, 0, 0]),
                                            "WavCaps", audio_column=ENCODER_FEATURES_KEY, keep_columns=["clip"]))
    blank = {**examples[1], "target": " "}
    collator = CheckedCollator(MintDataCollator(tiny.processor(), audio_id_column="clip"), ["'my-cache'"],
                               skip_invalid)
    batch = [examples[0], blank, examples[2]] if skip_invalid else [examples[0], examples[2]]
    with pytest.raises(ValueError) as error:
        collator(batch)
    assert "row 0 of 'my-cache' and row 2 of 'my-cache'" in str(error.value)


def test_a_clash_of_ids_is_named_by_dataset_row(cached):
    _, cache = cached
    examples = number_rows(to_mint_examples(cache.remove_columns("clip").add_column("clip", [0, 1, 0, 1, 0, 0]),
                                            "WavCaps", audio_column=ENCODER_FEATURES_KEY, keep_columns=["clip"]))
    collator = CheckedCollator(MintDataCollator(tiny.processor(), audio_id_column="clip"), ["'my-cache'"])
    with pytest.raises(ValueError) as error:
        collator([examples[0], examples[2]])
    for words in ("row 0 of 'my-cache' and row 2 of 'my-cache'", "share the 'clip' value 0", "one clip"):
        assert words in str(error.value)


@pytest.mark.parametrize("build, words", [
    (lambda: MintDataCollator(tiny.processor(), stage=1, audio_id_column="clip"),
     ["audio_id_column", "stage 2", "stage 1"]),
    (lambda: MintDataCollator(tiny.processor(), audio_id_column="clip")(
        [{k: v for k, v in EXAMPLES[0].items() if k != "clip"}]), ["no audio_id_column 'clip'", "hold"]),
    (lambda: MintDataCollator(tiny.processor(), audio_id_column="clip")([_example(0, "a", "b", clip=1.5)]),
     ["audio id of batch item 0 ('clip')", "float", "integer (within int64) or a string"]),
    (lambda: MintDataCollator(tiny.processor(), audio_id_column="clip")([_example(0, "a", "b", clip=None)]),
     ["NoneType", "integer (within int64) or a string"]),
    (lambda: MintDataCollator(tiny.processor(), audio_id_column="clip")(
        [_example(0, "a", "b"), _example(1, "a", "b", clip=0)]),
     ["Batch items 0 and 1", "share the 'clip' value 0", "one clip"]),
    (lambda: MintDataCollator(tiny.processor(), audio_id_column="clip")(
        [{"audio": np.zeros(16000, dtype=np.float32), "prompt": "a", "target": "b", "clip": 0}]),
     ["raw audio", "feature cache"]),
    (lambda: ClipGroupedSampler(["a", [1, 2]]), ["example 1", "list", "integer (within int64) or a string"]),
    (lambda: MintRecipe(stage=1, audio_id_column="clip"), ["audio_id_column", "stage 2"]),
    (lambda: MintRecipe(stage=2, audio_id_column=" "), ["audio_id_column", "empty string"]),
    (lambda: MintRecipe(stage=2, audio_id_column="clip", group_by_length=True),
     ["audio_id_column and group_by_length", "choose one"]),
    (lambda: MintRecipe(stage=2, audio_id_column="clip", length_groups=2), ["length_groups", "audio_id_column"]),
    (lambda: MintRecipe(stage=2, audio_id_column=3), ["audio_id_column", "string"]),
    (lambda: MintRecipe(stage=2, audio_id_column="prompt"), ["audio_id_column", "'prompt'", "clip ids"]),
    (lambda: MintRecipe(stage=2, audio_id_column="clip", training_args={"train_sampling_strategy": "group_by_length"}),
     ["train_sampling_strategy", "audio_id_column"]),
    (lambda: to_mint_examples(Dataset.from_dict({"audio": ["a.wav"], "caption": ["x"], "target": ["y"]}), "WavCaps",
                              keep_columns=["target"]), ["keep_columns", "'target'", "template writes"]),
    (lambda: to_mint_examples(Dataset.from_dict({"audio": ["a.wav"], "caption": ["x"], "clip": [0]}), "WavCaps",
                              keep_columns="clip"), ["keep_columns", "list of column names", "['clip']"]),
    (lambda: MintTrainer(model=torch.nn.Linear(1, 1), length_groups=2, audio_id_column="clip"),
     ["length_groups", "audio_id_column"]),
])
def test_bad_inputs_are_refused(build, words):
    with pytest.raises(ValueError) as error:
        build()
    for word in words:
        assert word in str(error.value)


@pytest.mark.parametrize("data, words", [
    ({ENCODER_FEATURES_KEY: [np.zeros((4, 32), np.float32).tolist()], "prompt": ["a"], "target": ["b"]},
     ["audio_id_column 'clip'", "not a column", "prompt"]),
    ({"audio": ["a.wav"], "prompt": ["a"], "target": ["b"], "clip": [0]},
     ["audio_id_column", "cached encoder features", "'audio'", "feature cache"]),
    ({ENCODER_FEATURES_KEY: [np.zeros((4, 32), np.float32).tolist()] * 2, "prompt": ["a"] * 2, "target": ["b"] * 2,
      "clip": [0, None]}, ["audio id of training example 1", "NoneType", "naming the clip"]),
])
def test_training_data_it_cannot_use_is_refused_before_training(cached, tmp_path, data, words):
    folder, _ = cached
    with pytest.raises(ValueError) as error:
        train(recipe(folder, tmp_path / "run", stage=2, audio_id_column="clip"), Dataset.from_dict(data))
    for word in words:
        assert word in str(error.value)
    assert not (tmp_path / "run").exists()
