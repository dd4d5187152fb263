"""The Q-Former's cross-attention: transformers' InstructBLIP attention computed with the key and value projections
folded into the queries (the same outputs, weights and gradients), and query rows that share audio rows
(`audio_index`), with the outputs and gradients of the rows written out; ALM passes each clip once."""

import pytest
import torch
from transformers.models.instructblip.modeling_instructblip import (
    InstructBlipQFormerModel,
    InstructBlipQFormerMultiHeadAttention,
)

from modeling_mint import MintForPreTraining, MintQFormerCrossAttention, MintQFormerModel
from objectives_mint import alm_loss
from tests.utils import tiny

AUDIO_LENGTHS = (9, 5, 7)  # three clips of distinct lengths: padding differs per row
INDEX = torch.tensor([2, 0, 2, 1, 0, 0])


def _model(attn_implementation: str) -> MintForPreTraining:
    config = tiny.mint_config()
    config._attn_implementation = attn_implementation
    torch.manual_seed(0)
    return MintForPreTraining(config).train()  # training mode: the path ALM takes (the tiny config's dropout is 0.1)


def _inputs():
    torch.manual_seed(1)
    audio = torch.randn(len(AUDIO_LENGTHS), max(AUDIO_LENGTHS), 32)
    mask = torch.zeros(len(AUDIO_LENGTHS), max(AUDIO_LENGTHS), dtype=torch.long)
    for row, length in enumerate(AUDIO_LENGTHS):
        mask[row, :length] = 1
    ids = torch.randint(5, 30, (len(INDEX), 6))
    text_mask = torch.ones_like(ids)
    text_mask[1, 4:] = 0
    return audio, mask, ids, text_mask


def _outputs_and_gradients(model, call):
    for module in model.modules():  # dropout off: both calls must see the same network
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
        if hasattr(module, "attention_dropout"):
            module.attention_dropout = 0.0
    model.zero_grad()
    output = call()
    (output * torch.linspace(-1, 1, output.numel()).view_as(output)).sum().backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    return output.detach(), grads


@pytest.mark.parametrize("attn_implementation", ["sdpa", "eager"])
def test_indexed_audio_equals_the_rows_written_out(attn_implementation):
    model = _model(attn_implementation)
    audio, mask, ids, text_mask = _inputs()
    hidden, _ = model.encode_audio(audio_encoder_features=audio, audio_attention_mask=mask)
    hidden = hidden.detach()
    indexed, indexed_grads = _outputs_and_gradients(
        model, lambda: model.query_forward(hidden, mask, ids, text_mask, audio_index=INDEX).last_hidden_state)
    written, written_grads = _outputs_and_gradients(
        model, lambda: model.query_forward(hidden[INDEX], mask[INDEX], ids, text_mask).last_hidden_state)
    assert indexed.shape == (len(INDEX), model.config.num_query_tokens + ids.shape[1], 32)
    assert torch.allclose(indexed, written, atol=1e-5)
    # rows reading the same clip with different texts differ: the index is not ignored
    assert not torch.allclose(indexed[0], indexed[2], atol=1e-3)
    assert indexed_grads.keys() == written_grads.keys() and any("crossattention" in k for k in indexed_grads)
    for name, grad in written_grads.items():
        assert torch.allclose(indexed_grads[name], grad, atol=1e-5), name


def _cross_attention_pair():
    """transformers' InstructBLIP cross-attention (eager kernel) and MINT's with the same weights, drawn large so
    that a missing term shows (a bias of 0.02 would hide one)."""
    config = tiny.qformer_config(encoder_hidden_size=20)
    config.attention_probs_dropout_prob = 0.3
    config._attn_implementation = "eager"
    torch.manual_seed(0)
    theirs = InstructBlipQFormerMultiHeadAttention(config, is_cross_attention=True)
    for parameter in theirs.parameters():
        torch.nn.init.normal_(parameter)
    ours = InstructBlipQFormerMultiHeadAttention(config, is_cross_attention=True)
    ours.load_state_dict(theirs.state_dict())
    ours.__class__ = MintQFormerCrossAttention
    return theirs, ours


@pytest.mark.parametrize("mask_kind", ["none", "boolean", "additive"])
@pytest.mark.parametrize("training", [False, True])
def test_cross_attention_equals_instructblips(mask_kind, training):
    """Outputs, attention weights and every gradient (the key bias's, which cannot change a softmax, included) equal
    transformers' attention; in training the dropout of the weights too (one draw of the same shape)."""
    theirs, ours = _cross_attention_pair()
    torch.manual_seed(2)
    queries, audio = torch.randn(3, 5, theirs.config.hidden_size), torch.randn(3, 7, 20)
    keep = torch.ones(3, 7, dtype=torch.bool)
    keep[1, 4:] = False
    masks = {"none": (None, None), "boolean": (keep[:, None, None], keep[:, None, None]),
             "additive": ((~keep[:, None, None]) * torch.finfo(torch.float32).min,) * 2}
    results = []
    for module, mask in zip((theirs, ours), masks[mask_kind]):
        module.train(training)
        module.zero_grad()
        if mask is not None and mask.dtype == torch.bool and module is theirs:
            mask = torch.zeros(mask.shape).masked_fill(~mask, torch.finfo(torch.float32).min)  # eager's form
        torch.manual_seed(3)
        output, weights = module(queries, encoder_hidden_states=audio, encoder_attention_mask=mask)
        (output * torch.linspace(-1, 1, output.numel()).view_as(output)).sum().backward()
        results.append((output.detach(), weights.detach(), {n: p.grad.clone() for n, p in module.named_parameters()}))
    (theirs_out, theirs_weights, theirs_grads), (out, weights, grads) = results
    assert out.shape == (3, 5, theirs.config.hidden_size) and weights.shape == (3, 4, 5, 7)
    assert torch.allclose(out, theirs_out, rtol=1e-4, atol=1e-4 * theirs_out.abs().max())
    assert torch.allclose(weights, theirs_weights, atol=1e-5)
    if mask_kind != "none":
        assert weights[1, ..., 4:].abs().max() == 0  # clip 1's padding is never read
    assert (weights.sum(-1) - 1).abs().max() > 0.1 if training else torch.allclose(weights.sum(-1), torch.ones(1))
    for name, grad in theirs_grads.items():
        assert torch.allclose(grads[name], grad, rtol=1e-3, atol=1e-4 * grad.abs().max() + 1e-3), name


@pytest.mark.parametrize("mask, audio_index, words", [
    (torch.ones(3, 7, dtype=torch.bool), None, ["4D mask", "2D", "(3, 7)"]),
    (torch.ones(3, 1, 1, 7, dtype=torch.long), None, ["boolean or additive float", "torch.int64"]),
    (torch.ones(2, 1, 1, 7, dtype=torch.bool), None, ["2 rows for 3 query rows"]),
    (torch.ones(2, 1, 1, 7, dtype=torch.bool), torch.tensor([0, 2, 1]), ["2 rows for 3 audio rows", "audio_index"]),
])
def test_a_cross_attention_mask_of_another_form_is_refused(mask, audio_index, words):
    """A 2D mask would broadcast along the query axis, an integer one be added to the scores: refused, as are masks
    of other rows than the audio's."""
    _, ours = _cross_attention_pair()
    with pytest.raises(ValueError) as error:
        ours(torch.randn(3, 5, ours.config.hidden_size), encoder_hidden_states=torch.randn(3, 7, 20),
             encoder_attention_mask=mask, audio_index=audio_index)
    for word in words:
        assert word in str(error.value)


def test_cross_attention_needs_the_audio():
    _, ours = _cross_attention_pair()
    with pytest.raises(ValueError, match="encoder_hidden_states is required"):
        ours(torch.randn(1, 2, ours.config.hidden_size))


def test_padding_of_each_audio_row_is_hidden_from_the_rows_reading_it():
    model = _model("sdpa").eval()
    audio, mask, ids, text_mask = _inputs()
    hidden, _ = model.encode_audio(audio_encoder_features=audio, audio_attention_mask=mask)
    changed = hidden.clone()
    changed[1, AUDIO_LENGTHS[1]:] = 1e3  # what clip 1's padding holds must not matter
    first = model.query_forward(hidden, mask, ids, text_mask, audio_index=INDEX).last_hidden_state
    second = model.query_forward(changed, mask, ids, text_mask, audio_index=INDEX).last_hidden_state
    assert torch.allclose(first, second, atol=1e-5)
    unmasked = model.query_forward(changed, torch.ones_like(mask), ids, text_mask, audio_index=INDEX).last_hidden_state
    assert not torch.allclose(first[3], unmasked[3], atol=1e-3)  # row 3 reads clip 1


def test_qformer_is_initialised_as_instructblips():
    """Re-classing the cross-attention draws no random numbers: the same seed gives InstructBLIP's weights."""
    config = tiny.qformer_config(encoder_hidden_size=32)
    torch.manual_seed(5)
    ours = MintQFormerModel(config)
    torch.manual_seed(5)
    theirs = InstructBlipQFormerModel(config)
    assert ours.state_dict().keys() == theirs.state_dict().keys()
    for name, tensor in theirs.state_dict().items():
        assert torch.equal(ours.state_dict()[name], tensor), name
    crossed = [layer.crossattention.attention for layer in ours.encoder.layer if layer.has_cross_attention]
    assert crossed and all(type(module) is MintQFormerCrossAttention for module in crossed)


def test_alm_passes_each_clip_once():
    seen = {}

    def matching_logits(audio, audio_mask, input_ids, attention_mask, audio_index):
        seen.update(audio=audio, audio_mask=audio_mask, audio_index=audio_index)
        return torch.zeros(len(input_ids), 2, requires_grad=True)

    torch.manual_seed(0)
    audio, mask = torch.randn(4, 5, 3), torch.ones(4, 5, dtype=torch.long)
    ids = torch.arange(4).unsqueeze(1).repeat(1, 3) + 5
    out = alm_loss(matching_logits, audio, mask, ids, torch.ones_like(ids), torch.randn(4, 4), torch.randn(4, 4),
                   torch.eye(4, dtype=torch.bool))
    pairs_audio = torch.cat([torch.arange(4), out.negative_audio_indices, torch.arange(4)])
    assert len(seen["audio_index"]) == 12 and len(seen["audio"]) == len(pairs_audio.unique()) <= 4
    assert torch.equal(seen["audio"][seen["audio_index"]], audio[pairs_audio])
    assert torch.equal(seen["audio_mask"][seen["audio_index"]], mask[pairs_audio])


@pytest.mark.parametrize("audio_index, words", [
    (torch.tensor([0.0, 1.0]), ["audio_index", "integer", "float32"]),
    (torch.tensor([True, False]), ["audio_index", "integer", "bool"]),
    (torch.tensor([[0, 1]]), ["audio_index", "(batch,)", "(1, 2)"]),
    ([0, 1], ["audio_index", "integer", "list"]),
    (torch.tensor([0, 3]), ["3 audio rows", "0 to 2", "from 0 to 3"]),
    (torch.tensor([-1, 0]), ["3 audio rows", "from -1 to 0"]),
    (torch.tensor([1, 1], dtype=torch.uint8), ["audio_index", "int64 or int32", "uint8"]),
    (torch.tensor([], dtype=torch.long), ["audio_index is empty"]),
])
def test_bad_audio_index_is_refused(audio_index, words):
    model = _model("sdpa").eval()
    audio, mask, ids, text_mask = _inputs()
    with pytest.raises(ValueError) as error:
        model.query_forward(audio, mask, ids[:2], text_mask[:2], audio_index=audio_index)
    for word in words:
        assert word in str(error.value)


def test_audio_mask_of_other_rows_than_the_audio_is_refused():
    model = _model("sdpa").eval()
    audio, mask, ids, text_mask = _inputs()
    with pytest.raises(ValueError, match="audio_mask holds 6 rows but the audio holds 3"):
        model.query_forward(audio, mask[INDEX], ids, text_mask, audio_index=INDEX)


def test_text_of_other_rows_than_the_index_is_refused():
    model = _model("sdpa").eval()
    audio, mask, ids, text_mask = _inputs()
    with pytest.raises(ValueError, match="input_ids holds 2 rows but the audio holds 6"):
        model.query_forward(audio, mask, ids[:2], text_mask[:2], audio_index=INDEX)
