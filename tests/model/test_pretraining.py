"""Stage 1 (section 2.2): ALC, ALM and ATG losses, their masks, edge cases, freezing and training."""

import math

import pytest
import torch

from tests.utils import tiny
from modeling_mint import MintForPreTraining
from objectives_mint import (alc_loss, alm_loss, atg_attention_mask, atg_input_ids, atg_loss, mine_hard_negatives,
                             same_caption)
from tests.utils.audio import CAPTIONS, clips


@pytest.fixture
def model():
    return MintForPreTraining(tiny.mint_config()).eval()


def batch(processor, captions=CAPTIONS, audio=None):
    audio = audio if audio is not None else clips()[: len(captions)]
    return processor(audio=audio, text=captions, sampling_rate=16000, return_llm_inputs=False)


def audio_features(model, inputs):
    """The ALC audio embeddings of the clips of a processor batch."""
    return model.get_audio_features(input_values=inputs["input_values"],
                                    audio_attention_mask=inputs["audio_attention_mask"]).pooler_output


def smoothed_ce(logits, target_dist, eps):
    """Cross-entropy with label smoothing written out: -(sum_k ((1-eps) y_k + eps/K) log p_k), averaged."""
    k = logits.shape[-1]
    logp = logits.double().log_softmax(-1)
    return -(((1 - eps) * target_dist.double() + eps / k) * logp).sum(-1).mean()


def test_alc_loss_equals_hand_computation(model, processor):
    inputs = batch(processor)
    out = model(**inputs)
    audio = audio_features(model, inputs)
    text = model.get_text_features(inputs["qformer_input_ids"], inputs["qformer_attention_mask"]).pooler_output
    n = len(CAPTIONS)
    sim = torch.empty(n, n, dtype=torch.float64)
    for i in range(n):
        for j in range(n):
            sim[i, j] = max(float(audio[i, q].detach() @ text[j].detach()) for q in range(audio.shape[1]))
    logits = sim / model.temp.item()
    eye = torch.eye(n)
    expected = (smoothed_ce(logits, eye, 0.1) + smoothed_ce(logits.t(), eye, 0.1)) / 2
    assert torch.allclose(out.logits_per_audio.double(), logits, atol=1e-4)
    assert out.loss_alc.item() == pytest.approx(expected.item(), abs=1e-5)


def test_alm_loss_equals_hand_computation_and_negatives_are_never_positive(model, processor):
    inputs = batch(processor)
    out = model(**inputs)
    neg_audio, neg_text = out.alm_negative_audio_indices, out.alm_negative_text_indices
    n = len(CAPTIONS)
    assert (neg_audio != torch.arange(n)).all() and (neg_text != torch.arange(n)).all()
    pairs = [(i, i, 1) for i in range(n)] + [(int(neg_audio[i]), i, 0) for i in range(n)]
    pairs += [(i, int(neg_text[i]), 0) for i in range(n)]
    logits = []
    for a, t, _ in pairs:  # one pair at a time, the caption without padding
        length = int(inputs["qformer_attention_mask"][t].sum())
        audio_len = int(inputs["audio_attention_mask"][a].sum())
        embeds, mask = model.encode_audio(input_values=inputs["input_values"][a : a + 1, :audio_len])
        hidden = model.query_forward(embeds, mask, inputs["qformer_input_ids"][t : t + 1, :length],
                                     torch.ones(1, length, dtype=torch.long)).last_hidden_state
        logits.append(model.alm_head(hidden[0, : model.config.num_query_tokens]).mean(0))
    logits = torch.stack(logits)
    labels = torch.tensor([p[2] for p in pairs])
    assert torch.equal(out.alm_labels, labels)
    assert torch.allclose(out.alm_logits, logits, atol=1e-4)
    expected = -logits.double().log_softmax(-1)[torch.arange(len(pairs)), labels].mean()
    assert out.loss_alm.item() == pytest.approx(expected.item(), abs=1e-5)


def test_atg_loss_equals_hand_computation(model, processor):
    inputs = batch(processor)
    out = model(**inputs)
    ids, mask = inputs["qformer_input_ids"], inputs["qformer_attention_mask"]
    vocab = out.atg_logits.shape[-1]
    logp = out.atg_logits.double().log_softmax(-1)
    terms = []
    for i in range(ids.shape[0]):
        for t in range(1, int(mask[i].sum())):  # token t is predicted from position t - 1; [DEC] itself is not
            row = logp[i, t - 1]
            terms.append(-(0.9 * row[ids[i, t]] + 0.1 / vocab * row.sum()))
    assert out.loss_atg.item() == pytest.approx(torch.stack(terms).mean().item(), abs=1e-5)
    assert out.loss.item() == pytest.approx((out.loss_alc + out.loss_alm + out.loss_atg).item(), abs=1e-5)


def test_atg_text_is_causal_and_queries_see_no_text(model, processor):
    inputs = batch(processor)
    changed = inputs["qformer_input_ids"].clone()
    changed[0, 3] = 2000  # change the caption's 4th token
    out, out_changed = model(**inputs), model(**{**inputs, "qformer_input_ids": changed})
    assert torch.allclose(out.atg_logits[0, :3], out_changed.atg_logits[0, :3], atol=1e-6)
    assert not torch.allclose(out.atg_logits[0, 3], out_changed.atg_logits[0, 3], atol=1e-3)
    # The queries of the ATG pass equal a query-only pass (they feed ALC): the audio embeddings do not move.
    assert torch.allclose(out.audio_embeds, out_changed.audio_embeds, atol=1e-6)
    query_only = audio_features(model, inputs)
    assert torch.allclose(out.audio_embeds, query_only, atol=1e-5)


def test_atg_mask_pattern():
    mask = atg_attention_mask(2, torch.tensor([[1, 1, 0]]))[0, 0]
    expected = torch.tensor([
        [1, 1, 0, 0, 0],  # query 0: queries only
        [1, 1, 0, 0, 0],
        [1, 1, 1, 0, 0],  # [DEC]: queries and itself
        [1, 1, 1, 1, 0],  # token 1: queries, [DEC], itself
        [1, 1, 1, 1, 0],  # padding row: never the padding key
    ], dtype=torch.bool)
    assert torch.equal(mask, expected)


def test_eager_and_sdpa_give_the_same_losses(processor):
    inputs = batch(processor)
    sdpa = MintForPreTraining(tiny.mint_config()).eval()
    eager_config = tiny.mint_config()
    eager_config._attn_implementation = "eager"
    eager = MintForPreTraining(eager_config).eval()
    eager.load_state_dict(sdpa.state_dict())
    torch.manual_seed(3)
    a = sdpa(**inputs)
    torch.manual_seed(3)
    b = eager(**inputs)
    assert torch.allclose(a.atg_logits, b.atg_logits, atol=1e-5)
    for name in ("loss_alc", "loss_alm", "loss_atg"):
        assert getattr(a, name).item() == pytest.approx(getattr(b, name).item(), abs=1e-5)


def test_text_embedding_does_not_see_audio(model, processor):
    inputs = batch(processor)
    other = batch(processor, audio=clips(seed=7))
    a = model(**inputs).text_embeds
    b = model(**{**inputs, **{k: other[k] for k in ("input_values", "audio_attention_mask")}})
    assert torch.equal(a, b.text_embeds)
    assert not torch.allclose(model(**inputs).audio_embeds, b.audio_embeds)


def test_audio_padding_is_masked(model, processor):
    """A clip's embedding is the same alone and padded inside a batch of longer clips."""
    audio = clips()
    together = model.get_audio_features(**{k: v for k, v in batch(processor, audio=audio).items()
                                            if k in ("input_values", "audio_attention_mask")}).pooler_output
    alone = processor(audio=[audio[2]], sampling_rate=16000)
    alone = audio_features(model, alone)
    assert torch.allclose(together[2], alone[0], atol=1e-5)


def test_each_objective_runs_alone_on_tensors(model, processor):
    """The objectives are functions of tensors: called one by one, they give what `forward` reports."""
    inputs = batch(processor)
    torch.manual_seed(3)
    out = model(**inputs)
    ids, mask = inputs["qformer_input_ids"], inputs["qformer_attention_mask"]
    audio, audio_mask = model.encode_audio(input_values=inputs["input_values"],
                                           audio_attention_mask=inputs["audio_attention_mask"])
    positives = same_caption(ids, mask)
    alc = alc_loss(out.audio_embeds, out.text_embeds, model.temperature(), positives, label_smoothing=0.1)
    assert torch.equal(alc.loss, out.loss_alc) and torch.equal(alc.logits_per_audio, out.logits_per_audio)
    torch.manual_seed(3)  # the same negatives as in `forward`, where nothing else draws random numbers in eval mode
    alm = alm_loss(model.matching_logits, audio, audio_mask, ids, mask, alc.logits_per_audio, alc.logits_per_text,
                   positives)
    assert torch.equal(alm.negative_text_indices, out.alm_negative_text_indices)
    assert torch.equal(alm.loss, out.loss_alm) and torch.equal(alm.labels, out.alm_labels)
    decoder_ids = atg_input_ids(ids, model.config.qformer_config.dec_token_id)
    pattern = atg_attention_mask(model.config.num_query_tokens, mask)
    hidden = model.query_forward(audio, audio_mask, decoder_ids, pattern).last_hidden_state
    atg = atg_loss(model.atg_head(hidden[:, model.config.num_query_tokens :]), decoder_ids, mask, label_smoothing=0.1)
    assert torch.equal(atg.loss, out.loss_atg) and torch.equal(atg.logits, out.atg_logits)


def test_hard_negative_mining_never_picks_a_positive():
    torch.manual_seed(0)
    for _ in range(200):
        logits = torch.randn(6, 6) * 5
        positives = torch.eye(6, dtype=torch.bool)
        positives[1, 4] = positives[4, 1] = True
        negatives = mine_hard_negatives(logits, positives)
        assert not positives[torch.arange(6), negatives].any()
    assert mine_hard_negatives(torch.zeros(1, 1), torch.ones(1, 1, dtype=torch.bool)).tolist() == [-1]


def test_hard_negatives_follow_the_similarity():
    logits = torch.tensor([[0.0, 30.0, -30.0], [30.0, 0.0, -30.0], [30.0, -30.0, 0.0]])
    negatives = mine_hard_negatives(logits, torch.eye(3, dtype=torch.bool))
    assert negatives.tolist() == [1, 0, 0]


def test_duplicate_captions_are_positives_of_each_other(model, processor):
    captions = ["a dog barks loudly", "a cat meows", "a dog barks loudly", "rain on a roof"]
    for _ in range(20):
        out = model(**batch(processor, captions))
        assert out.alm_negative_text_indices[0] not in (0, 2) and out.alm_negative_text_indices[2] not in (0, 2)
        assert out.alm_negative_audio_indices[0] not in (0, 2)
    target = torch.eye(4)
    target[0, 2] = target[2, 0] = 1
    target = target / target.sum(1, keepdim=True)
    logits = out.logits_per_audio
    expected = (smoothed_ce(logits, target, 0.1) + smoothed_ce(logits.t(), target, 0.1)) / 2
    assert out.loss_alc.item() == pytest.approx(expected.item(), abs=1e-5)


def test_batch_of_one(model, processor):
    out = model(**batch(processor, CAPTIONS[:1]))
    # One class: ALC's cross-entropy is exactly 0; ALM has no negative, so only the positive pair and loss 0.
    assert out.loss_alc.item() == pytest.approx(0.0, abs=1e-6)
    assert out.alm_negative_audio_indices.tolist() == [-1] and out.alm_labels.tolist() == [1]
    assert out.loss_alm.item() == 0.0
    assert math.isfinite(out.loss_atg.item()) and out.loss.item() == pytest.approx(out.loss_atg.item())
    out.loss.backward()  # the graph stays connected for DDP


def test_all_padding_caption_is_rejected(model, processor):
    inputs = batch(processor)
    inputs["qformer_attention_mask"][1] = 0
    with pytest.raises(ValueError, match=r"batch item\(s\) \[1\] is all padding"):
        model(**inputs)


def test_mismatched_batch_is_rejected(model, processor):
    inputs = batch(processor)
    with pytest.raises(ValueError, match="qformer_input_ids holds 3 rows but the audio holds 4 clips"):
        model(**{**inputs, "qformer_input_ids": inputs["qformer_input_ids"][:3],
                 "qformer_attention_mask": inputs["qformer_attention_mask"][:3]})


@pytest.mark.parametrize("objectives", [["alc"], ["alc", "atg"], ["alc", "alm"], ["alc", "alm", "atg"]])
def test_table5_ablations_train_only_their_objectives(processor, objectives):
    model = MintForPreTraining(tiny.mint_config(stage1_objectives=objectives)).eval()
    out = model(**batch(processor))
    enabled = {name: getattr(out, f"loss_{name}") is not None for name in ("alc", "alm", "atg")}
    assert enabled == {name: name in objectives for name in ("alc", "alm", "atg")}
    assert out.loss.item() == pytest.approx(sum(getattr(out, f"loss_{n}").item() for n in objectives), abs=1e-5)


def test_frozen_encoder_stays_frozen_and_in_eval_mode(processor):
    model = MintForPreTraining(tiny.mint_config()).train()
    assert not model.audio_model.training and model.qformer.training
    inputs = batch(processor)
    # The tiny data2vec config has layerdrop 0.5, time masking 0.5 and dropout 0.3: none may fire.
    audio = {k: inputs[k] for k in ("input_values", "audio_attention_mask")}
    first, second = model.encode_audio(**audio)[0], model.encode_audio(**audio)[0]
    assert torch.equal(first, second)
    model(**inputs).loss.backward()
    assert all(p.grad is None and not p.requires_grad for p in model.audio_model.parameters())
    cross_attention = model.qformer.encoder.layer[0].crossattention.attention
    assert model.query_tokens.grad is not None and cross_attention.key.weight.grad is not None


@pytest.mark.slow
def test_tiny_model_overfits_four_pairs(processor):
    # A randomly initialised tiny Q-Former starts collapsed (every [CLS] output alike), so it needs a few hundred
    # steps; dropout is off so that the batch can be memorised.
    torch.manual_seed(0)
    config = tiny.mint_config(qformer_config=tiny.qformer_config(hidden_dropout_prob=0.0,
                                                                 attention_probs_dropout_prob=0.0))
    model = MintForPreTraining(config).train()
    inputs = batch(processor)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-3)
    first = None
    for _ in range(250):
        out = model(**inputs)
        first = first or {n: getattr(out, f"loss_{n}").item() for n in ("alc", "alm", "atg")}
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
    model.eval()
    last = model(**inputs)
    for name in ("alc", "alm", "atg"):
        assert getattr(last, f"loss_{name}").item() < first[name] / 2, (name, first, last)


def test_save_and_load_give_identical_outputs(model, processor, tmp_path):
    inputs = batch(processor)
    torch.manual_seed(5)
    before = model(**inputs)
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists() and not list(tmp_path.glob("*.bin"))
    loaded = MintForPreTraining.from_pretrained(tmp_path).eval()
    torch.manual_seed(5)
    after = loaded(**inputs)
    for name in ("logits_per_audio", "alm_logits", "atg_logits", "loss"):
        assert torch.equal(getattr(before, name), getattr(after, name)), name
    assert not any(p.requires_grad for p in loaded.audio_model.parameters())
