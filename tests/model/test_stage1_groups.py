"""Group-aware stage 1 (section 2.2, LAVIS BLIP-2's `image_id`): multi-positive ALC targets and ALM negatives from
other groups only, written out by hand for a batch of four with groups [0, 0, 1, 2]; ALM's phases and sub-batch; the
temperature's range and a fixed temperature; feature augmentation in training only; bad tensors refused by name."""

import pytest
import torch

from modeling_mint import MintForPreTraining, MintModel, augment_audio_features
from objectives_mint import (alc_loss, alm_loss, atg_attention_mask, atg_input_ids, atg_loss, audio_text_similarity,
                             mine_hard_negatives, positive_pairs, random_negatives, same_caption)
from tests.utils import tiny
from tests.utils.audio import CAPTIONS, clips


GROUPS = torch.tensor([0, 0, 1, 2])
# Rows 0 and 1 share group 0: positives of each other; rows 2 and 3 are alone in theirs.
POSITIVES = torch.tensor([[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=torch.bool)
# The ALC target of each row, label-smoothed as LAVIS does it: 0.9 * pos / pos.sum(1) + 0.1 / 4.
ALC_TARGETS = torch.tensor([[0.475, 0.475, 0.025, 0.025], [0.475, 0.475, 0.025, 0.025],
                            [0.025, 0.025, 0.925, 0.025], [0.025, 0.025, 0.025, 0.925]], dtype=torch.float64)
# Where ALM may take each row's negative: the columns of other groups.
ALLOWED_NEGATIVES = {0: {2, 3}, 1: {2, 3}, 2: {0, 1, 3}, 3: {0, 1, 2}}


@pytest.fixture
def model():
    return MintForPreTraining(tiny.mint_config()).eval()


def batch(processor, captions=CAPTIONS):
    return processor(audio=clips()[: len(captions)], text=captions, sampling_rate=16000, return_llm_inputs=False)


def hand_alc(logits_per_audio, logits_per_text):
    """The ALC loss with soft targets written out: -(sum_j target_ij log softmax_j), both ways, averaged."""
    audio = -(ALC_TARGETS * logits_per_audio.double().log_softmax(-1)).sum(-1).mean()
    text = -(ALC_TARGETS * logits_per_text.double().log_softmax(-1)).sum(-1).mean()
    return (audio + text) / 2


def test_positive_pairs_follow_the_groups_and_identical_captions(processor):
    inputs = batch(processor)
    ids, mask = inputs["qformer_input_ids"], inputs["qformer_attention_mask"]
    assert torch.equal(positive_pairs(ids, mask, GROUPS), POSITIVES)
    assert torch.equal(positive_pairs(ids, mask), torch.eye(4, dtype=torch.bool))
    # Identical captions stay positives across groups: no text model could tell them apart.
    same = batch(processor, [CAPTIONS[0], CAPTIONS[1], CAPTIONS[0], CAPTIONS[3]])
    expected = POSITIVES.clone()
    expected[0, 2] = expected[2, 0] = True
    assert torch.equal(positive_pairs(same["qformer_input_ids"], same["qformer_attention_mask"], GROUPS), expected)


def test_alc_target_matrix_by_hand():
    torch.manual_seed(1)
    audio = torch.nn.functional.normalize(torch.randn(4, 3, 8), dim=-1)
    text = torch.nn.functional.normalize(torch.randn(4, 8), dim=-1)
    out = alc_loss(audio, text, torch.tensor(0.1), POSITIVES, label_smoothing=0.1)
    assert out.loss.item() == pytest.approx(hand_alc(out.logits_per_audio, out.logits_per_text).item(), abs=1e-6)


def test_alm_negatives_come_from_other_groups_only():
    torch.manual_seed(0)
    for _ in range(100):
        logits = torch.randn(4, 4) * 5
        for negatives in (mine_hard_negatives(logits, POSITIVES), random_negatives(POSITIVES)):
            assert all(int(negatives[row]) in allowed for row, allowed in ALLOWED_NEGATIVES.items())
    # The hardest negative is the most similar column of another group.
    logits = torch.tensor([[9.0, 8.0, 1.0, 2.0], [8.0, 9.0, 3.0, 1.0], [5.0, 1.0, 9.0, 2.0], [1.0, 7.0, 2.0, 9.0]])
    assert mine_hard_negatives(logits, POSITIVES, hardest=True).tolist() == [3, 2, 0, 1]


def test_random_negatives_are_uniform_over_other_groups():
    torch.manual_seed(0)
    draws = torch.stack([random_negatives(POSITIVES) for _ in range(3000)])
    share = (draws[:, 2] == 0).float().mean().item()  # row 2 may take 0, 1 or 3: a third each
    assert share == pytest.approx(1 / 3, abs=0.04)


def test_forward_with_groups_uses_the_hand_written_targets_and_masks(model, processor):
    inputs = batch(processor)
    for _ in range(20):
        out = model(**inputs, group_ids=GROUPS)
        for row, allowed in ALLOWED_NEGATIVES.items():
            assert int(out.alm_negative_text_indices[row]) in allowed
            assert int(out.alm_negative_audio_indices[row]) in allowed
    assert out.loss_alc.item() == pytest.approx(hand_alc(out.logits_per_audio, out.logits_per_text).item(), abs=1e-5)
    assert out.alm_rows_without_negative.item() == 0
    assert out.alm_labels.tolist() == [1] * 4 + [0] * 8


def test_without_groups_nothing_changes(model, processor):
    inputs = batch(processor)
    torch.manual_seed(5)
    plain = model(**inputs)
    torch.manual_seed(5)
    distinct = model(**inputs, group_ids=torch.arange(4))  # one group per caption: the groups of distinct captions
    for name in ("loss", "loss_alc", "loss_alm", "loss_atg", "alm_negative_text_indices"):
        assert torch.equal(getattr(plain, name), getattr(distinct, name)), name


def test_a_batch_of_one_group_has_no_alm_negative_and_counts_its_rows(model, processor):
    out = model(**batch(processor), group_ids=torch.tensor([7, 7, 7, 7]))
    assert out.alm_rows_without_negative.item() == 4 and out.alm_labels.tolist() == [1] * 4
    assert out.loss_alm.item() == 0.0
    # Every column is a positive: the ALC target is uniform, 1/4 each (smoothing a uniform target changes nothing).
    uniform = [-(0.25 * logits.double().log_softmax(-1)).sum(-1).mean() for logits in
               (out.logits_per_audio, out.logits_per_text)]
    assert out.loss_alc.item() == pytest.approx(((uniform[0] + uniform[1]) / 2).item(), abs=1e-6)


def test_alm_on_a_sub_batch(processor):
    model = MintForPreTraining(tiny.mint_config(alm_batch_size=2)).eval()
    out = model(**batch(processor), group_ids=GROUPS)
    assert out.alm_negative_text_indices.shape == (2,) and out.alm_logits.shape == (6, 2)
    assert out.alm_labels.tolist() == [1, 1, 0, 0, 0, 0]
    assert all(int(out.alm_negative_text_indices[row]) in ALLOWED_NEGATIVES[row] for row in (0, 1))


@pytest.mark.parametrize("phase", ["off", "random", "hard"])
def test_alm_phases(model, processor, phase):
    model.alm_phase = phase
    out = model(**batch(processor), group_ids=GROUPS)
    if phase == "off":
        assert out.loss_alm is None and out.alm_logits is None
        assert out.loss.item() == pytest.approx((out.loss_alc + out.loss_atg).item(), abs=1e-6)
    else:
        assert out.loss.item() == pytest.approx((out.loss_alc + out.loss_alm + out.loss_atg).item(), abs=1e-6)
        assert all(int(out.alm_negative_text_indices[row]) in ALLOWED_NEGATIVES[row] for row in range(4))


def test_an_unknown_alm_phase_is_refused(model, processor):
    model.alm_phase = "later"
    with pytest.raises(ValueError, match="alm_phase must be one of"):
        model(**batch(processor))


def test_temperature_range_and_fixed_temperature(processor):
    model = MintForPreTraining(tiny.mint_config(temperature_range=[0.05, 0.2], temperature_init=0.1))
    with torch.no_grad():
        model.temp.fill_(0.01)
    assert model.temperature().item() == pytest.approx(0.05)
    fixed = MintForPreTraining(tiny.mint_config(learn_temperature=False, temperature_init=0.05))
    assert not fixed.temp.requires_grad and fixed.temperature().item() == pytest.approx(0.05)
    fixed.train()
    fixed(**batch(processor)).loss.backward()
    assert fixed.temp.grad is None


def test_a_fixed_temperature_stays_fixed_after_loading(processor, tmp_path):
    MintForPreTraining(tiny.mint_config(learn_temperature=False, temperature_init=0.05)).save_pretrained(tmp_path)
    loaded = MintForPreTraining.from_pretrained(tmp_path).train()
    loaded(**batch(processor)).loss.backward()
    assert loaded.temp.grad is None and loaded.temperature().item() == pytest.approx(0.05)


def test_augmentation_changes_training_batches_only(processor):
    config = tiny.mint_config(audio_feature_augmentation={"time_mask": 0.3, "crop": 0.6, "noise": 0.2})
    torch.manual_seed(0)
    augmented = MintForPreTraining(config)
    torch.manual_seed(0)
    plain = MintForPreTraining(tiny.mint_config())
    inputs = batch(processor)
    augmented.eval(), plain.eval()
    torch.manual_seed(1)
    evaluation = augmented(**inputs)
    torch.manual_seed(1)
    reference = plain(**inputs)
    for name in ("logits_per_audio", "alm_logits", "atg_logits", "loss"):
        assert torch.equal(getattr(evaluation, name), getattr(reference, name)), name
    headless = MintModel(config).eval()
    assert torch.equal(headless.get_audio_features(**{k: inputs[k] for k in ("input_values", "audio_attention_mask")})
                       .pooler_output, headless.get_audio_features(input_values=inputs["input_values"],
                                                                  audio_attention_mask=inputs["audio_attention_mask"])
                       .pooler_output)
    augmented.train()
    first = augmented.encode_audio(input_values=inputs["input_values"],
                                   audio_attention_mask=inputs["audio_attention_mask"])
    second = augmented.encode_audio(input_values=inputs["input_values"],
                                    audio_attention_mask=inputs["audio_attention_mask"])
    assert not torch.equal(first[0], second[0])


def test_augment_audio_features_by_hand():
    features = torch.arange(2 * 10 * 3, dtype=torch.float32).reshape(2, 10, 3)
    mask = torch.ones(2, 10, dtype=torch.long)
    mask[1, 6:] = 0
    same, same_mask = augment_audio_features(features, mask)
    assert torch.equal(same, features) and torch.equal(same_mask, mask)
    torch.manual_seed(0)
    for _ in range(50):
        _, cropped = augment_audio_features(features, mask, crop=0.5)
        kept = cropped.sum(1)
        assert kept[0] >= 5 and kept[1] >= 3 and not (cropped.bool() & ~mask.bool()).any()
        positions = [row.nonzero().flatten() for row in cropped]  # a crop is one contiguous span
        assert all(int(p[-1] - p[0] + 1) == len(p) for p in positions)
        _, hidden = augment_audio_features(features, mask, time_mask=0.9)
        assert (hidden.sum(1) >= 1).all() and (hidden.sum(1) >= mask.sum(1) - 8).all()
    noisy, noisy_mask = augment_audio_features(features, mask, noise=0.1)
    assert torch.equal(noisy_mask, mask) and torch.equal(noisy[1, 6:], features[1, 6:])  # padding stays as it was
    change = (noisy - features)[0]
    assert change.std().item() == pytest.approx(0.1 * features[0].std().item(), rel=0.5)


def test_positional_tensors_in_the_wrong_place_are_refused(model, processor):
    inputs = batch(processor)
    with pytest.raises(ValueError, match="qformer_input_ids must be integer .* Pass the audio by keyword"):
        model(inputs["input_values"], inputs["qformer_input_ids"])
    with pytest.raises(ValueError, match="qformer_attention_mask must be an integer or boolean"):
        model(inputs["qformer_input_ids"], inputs["audio_attention_mask"].float(), input_values=inputs["input_values"])
    with pytest.raises(ValueError, match="group_ids must be an integer"):
        model(inputs["qformer_input_ids"], inputs["qformer_attention_mask"], inputs["input_values"],
              input_values=inputs["input_values"])
    with pytest.raises(ValueError, match="group_ids holds 3 rows but the audio holds 4 clips"):
        model(**inputs, group_ids=GROUPS[:3])
    headless = MintModel(tiny.mint_config()).eval()
    with pytest.raises(ValueError, match="input_ids must be integer"):
        headless(inputs["input_values"], input_values=inputs["input_values"])


F, L, B = torch.float32, torch.long, torch.bool
OK_EMBEDS = (torch.randn(2, 3, 4), torch.randn(2, 4))


def _alm(**changes):
    args = dict(matching_logits=lambda a, m, i, t, k: torch.zeros(len(i), 2), audio_hidden_states=torch.randn(2, 5, 4),
                audio_mask=torch.ones(2, 5, dtype=L), all_input_ids=torch.ones(2, 3, dtype=L),
                all_attention_mask=torch.ones(2, 3, dtype=L), logits_per_audio=torch.randn(2, 2),
                logits_per_text=torch.randn(2, 2), positives=torch.eye(2, dtype=B))
    return alm_loss(**{**args, **changes})


@pytest.mark.parametrize("call, words", [
    (lambda: same_caption(torch.ones(2, 3), torch.ones(2, 3, dtype=L)), ["input_ids", "integer", "float32"]),
    (lambda: same_caption(torch.ones(2, 3, dtype=L), torch.ones(2, 4, dtype=L)), ["attention_mask", "agree"]),
    (lambda: positive_pairs(torch.ones(2, 3, dtype=L), torch.ones(2, 3, dtype=L), torch.tensor([0.0, 1.0])),
     ["group_ids", "integer", "(batch,)"]),
    (lambda: positive_pairs(torch.ones(2, 3, dtype=L), torch.ones(2, 3, dtype=L), torch.tensor([0, 1, 2])),
     ["group_ids and input_ids rows", "3, 2"]),
    (lambda: audio_text_similarity(torch.randn(2, 4), torch.randn(2, 4)), ["audio_embeds", "(num_audio, num_queries"]),
    (lambda: audio_text_similarity(torch.randn(2, 3, 4), torch.randn(2, 5)), ["embedding sizes", "4, 5"]),
    (lambda: audio_text_similarity(torch.randn(2, 3, 4), torch.ones(2, 4, dtype=L)), ["text_embeds", "floating"]),
    (lambda: alc_loss(*OK_EMBEDS, torch.tensor(0.1), torch.eye(2), 0.1), ["positives", "boolean"]),
    (lambda: alc_loss(*OK_EMBEDS, torch.tensor(0.1), torch.eye(3, dtype=B), 0.1), ["rows of audio_embeds", "3"]),
    (lambda: alc_loss(*OK_EMBEDS, torch.tensor(0.1), torch.eye(2, dtype=B), 1.5), ["label_smoothing", "[0, 1)"]),
    (lambda: alc_loss(*OK_EMBEDS, torch.tensor(0.1), torch.zeros(2, 2, dtype=B), 0.1), ["at least one positive"]),
    (lambda: mine_hard_negatives(torch.randn(2, 3), torch.eye(2, dtype=B)), ["logits and positives shapes"]),
    (lambda: mine_hard_negatives(torch.randn(2, 2), torch.eye(2)), ["positives", "boolean"]),
    (lambda: random_negatives(torch.eye(2, dtype=L)), ["positives", "boolean"]),
    (lambda: _alm(positives=torch.ones(2, 3, dtype=B)), ["positives has shape (2, 3)", "(2, 2)"]),
    (lambda: _alm(audio_hidden_states=torch.randn(2, 5)), ["audio_hidden_states", "(batch, audio_length"]),
    (lambda: _alm(all_input_ids=torch.ones(2, 3)), ["all_input_ids", "integer"]),
    (lambda: _alm(sampling="hard"), ["sampling must be one of", "random"]),
    (lambda: _alm(num_rows=0), ["num_rows", "at least 1"]),
    (lambda: atg_input_ids(torch.ones(2, 3), 5), ["input_ids", "integer"]),
    (lambda: atg_attention_mask(0, torch.ones(2, 3, dtype=L)), ["num_queries", "positive integer"]),
    (lambda: atg_attention_mask(2, torch.ones(2, 3)), ["text_attention_mask", "integer or boolean"]),
    (lambda: atg_loss(torch.randn(2, 3, 7), torch.ones(2, 4, dtype=L), torch.ones(2, 4, dtype=L), 0.1),
     ["(batch, text_length) of logits", "(2, 3)"]),
    (lambda: atg_loss(torch.randn(2, 3), torch.ones(2, 3, dtype=L), torch.ones(2, 3, dtype=L), 0.1),
     ["logits", "(batch, text_length, vocab_size)"]),
])
def test_objective_functions_refuse_bad_tensors(call, words):
    with pytest.raises(ValueError) as error:
        call()
    assert all(word in str(error.value) for word in words), str(error.value)
