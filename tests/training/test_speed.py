"""The opt-in speed levers of `mint.training.speed` leave outputs unchanged: exactly, or within bf16 rounding where the
arithmetic changes (Bridge-Net under autocast)."""

import os
import shutil

import numpy as np
import pytest
import torch
from torch._dynamo.testing import CompileCounterWithBackend

from audio_encoder_mint import ENCODER_FEATURES_KEY
from mint.training.speed import (
    CACHED_FEATURES_MASK,
    autocast_bridge,
    compile_regions,
    length_grouped_loss,
    remove_autocast_bridge,
    split_by_length,
    transformer_layers,
)
from modeling_mint import MintForConditionalGeneration, MintForPreTraining
from tests.utils import tiny


PROMPTS = ["generate audio caption :", "this is a sound of", "the genre of this music is", "this is",
           "identify the instruments in this segment", "generate audio caption :"]
TARGETS = ["a dog bark loudly and a cat meow", "cat", "jazz", "a piano plays a low note softly", "guitar , drum",
           "a flute plays"]
CAPTIONS = ["a dog barks loudly", "a cat meows", "a piano plays a low note softly", "rain on a roof"]


def audio(lengths):
    rng = np.random.default_rng(0)
    return [(0.3 * rng.standard_normal(n)).astype(np.float32) for n in lengths]


def stage2(decoder_only=False, text_config=None, **config):
    text = text_config or (tiny.opt_config() if decoder_only else tiny.t5_config())
    model = MintForConditionalGeneration(tiny.mint_config(text_config=text, **config)).eval()
    batch = tiny.processor(decoder_only)(audio=audio((16000, 9000, 13000, 6000, 11000, 8000)), text=PROMPTS,
                                         text_target=TARGETS, sampling_rate=16000)
    return model, dict(batch)


def loss_and_gradients(model, loss_fn):
    model.zero_grad(set_to_none=True)
    loss = loss_fn()
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def assert_same_gradients(expected, actual, rtol=1e-4, atol=1e-6):
    """Each parameter's gradient equal up to float32 rounding (reductions summed in another order)."""
    assert expected.keys() == actual.keys() and expected
    for name in expected:
        error = torch.linalg.vector_norm(actual[name] - expected[name])
        assert error <= rtol * torch.linalg.vector_norm(expected[name]) + atol, name


def test_autocast_bridge_computes_in_bf16_with_fp32_master_weights():
    model, batch = stage2()
    loss, grads = loss_and_gradients(model, lambda: model(**batch).loss)
    autocast_bridge(model)
    autocast_bridge(model)  # a second call does not wrap twice
    dtypes = []
    hook = model.qformer.encoder.layer[0].attention.attention.query.register_forward_hook(
        lambda module, args, output: dtypes.append(output.dtype))
    bf16_loss, bf16_grads = loss_and_gradients(model, lambda: model(**batch).loss)
    hook.remove()
    assert dtypes == [torch.bfloat16]  # the Q-Former's matmuls ran in bf16
    assert bf16_loss.dtype == torch.float32 and bf16_loss != loss
    assert bf16_loss.item() == pytest.approx(loss.item(), rel=1e-2)
    assert bf16_grads.keys() == grads.keys()
    assert {model.get_parameter(n).dtype for n in grads} == {g.dtype for g in bf16_grads.values()} == {torch.float32}
    reference, mixed = (torch.cat([g[n].flatten() for n in grads]) for g in (grads, bf16_grads))
    assert torch.linalg.vector_norm(mixed - reference) <= 0.05 * torch.linalg.vector_norm(reference)
    torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3).step()
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    remove_autocast_bridge(model)
    model.zero_grad(set_to_none=True)
    assert model(**batch).loss.dtype == torch.float32


def test_autocast_bridge_stage1_loss_within_bf16_rounding():
    model = MintForPreTraining(tiny.mint_config(stage1_objectives=["alc", "atg"])).eval()
    batch = tiny.processor()(audio=audio((16000, 12000, 9000, 14000)), text=CAPTIONS, sampling_rate=16000,
                             return_llm_inputs=False)
    loss = model(**batch).loss
    autocast_bridge(model)
    assert model(**batch).loss.item() == pytest.approx(loss.item(), rel=1e-2)


@pytest.mark.slow
def test_regional_compile_matches_eager_losses_and_gradients():
    model, batch = stage2()
    loss, grads = loss_and_gradients(model, lambda: model(**batch).loss)
    counter = CompileCounterWithBackend("aot_eager")
    compiled = compile_regions(model, backend=counter, fullgraph=True)
    assert len(compiled) == 2 + 2 + 2  # T5 encoder and decoder blocks, Q-Former layers
    assert torch._dynamo.config.recompile_limit >= 64  # room for every layer kind, mode and shape
    assert "language_model.encoder.block.0" in compiled and "qformer.encoder.layer.1" in compiled
    assert set(model.state_dict()) == set(MintForConditionalGeneration(model.config).state_dict())
    compiled_loss, compiled_grads = loss_and_gradients(model, lambda: model(**batch).loss)
    assert counter.frame_count > 0  # the layers ran compiled, each as one graph (fullgraph)
    torch.testing.assert_close(compiled_loss, loss, rtol=1e-5, atol=1e-6)
    assert_same_gradients(grads, compiled_grads)


def _cxx() -> str | None:
    return shutil.which(os.environ.get("CXX", "g++"))


# Never skipped under CI, whose machines have the compiler: there a missing one is a failure.
@pytest.mark.skipif(_cxx() is None and not os.environ.get("CI"),
                    reason=f"torch.compile's inductor backend on the CPU needs a C++ compiler; "
                           f"{os.environ.get('CXX', 'g++')} is not on PATH")
@pytest.mark.slow
def test_regional_compile_with_inductor_matches_eager():
    model, batch = stage2(qformer_config=tiny.qformer_config(num_hidden_layers=1))
    loss, grads = loss_and_gradients(model, lambda: model(**batch).loss)
    assert compile_regions(model, parts=("qformer",), fullgraph=True) == ["qformer.encoder.layer.0"]
    with torch._inductor.config.patch(compile_threads=1):  # no pool of compile workers to start for one layer
        compiled_loss, compiled_grads = loss_and_gradients(model, lambda: model(**batch).loss)
    torch.testing.assert_close(compiled_loss, loss, rtol=1e-5, atol=1e-6)
    assert_same_gradients(grads, compiled_grads)


def test_transformer_layers_are_the_outermost_layers():
    model, _ = stage2()
    names = [name for name, _ in transformer_layers(model.language_model)]
    assert names == ["encoder.block.0", "encoder.block.1", "decoder.block.0", "decoder.block.1"]


@pytest.mark.parametrize("decoder_only", [False, True])
def test_length_groups_cut_padding_and_keep_loss_and_gradients(decoder_only):
    model, batch = stage2(decoder_only)
    groups = split_by_length(batch, 3)
    assert [len(g["labels"]) for g in groups] == [2, 2, 2]
    for name, mask in (("attention_mask", "attention_mask"), ("labels", "labels")):
        real = [(g[mask] != (-100 if name == "labels" else 0)) for g in groups]
        assert sum(int(r.sum()) for r in real) == int((batch[mask] != (-100 if name == "labels" else 0)).sum())
        assert all(r[:, -1].any() for r in real)  # no group keeps a column that is padding in all its rows
    assert sum(g["labels"].numel() for g in groups) < batch["labels"].numel()
    loss, grads = loss_and_gradients(model, lambda: model(**batch).loss)
    grouped_loss, grouped_grads = loss_and_gradients(model, lambda: length_grouped_loss(model, batch, 3))
    torch.testing.assert_close(grouped_loss, loss, rtol=1e-5, atol=1e-6)
    assert_same_gradients(grads, grouped_grads)


def test_length_groups_cut_cached_audio_frames_and_honour_num_items_in_batch():
    model, batch = stage2()
    with torch.no_grad():
        features, frames = model.get_audio_encoder_features(input_values=batch.pop("input_values"),
                                                                  audio_attention_mask=batch.pop("audio_attention_mask"))
    batch.update({ENCODER_FEATURES_KEY: features, CACHED_FEATURES_MASK: frames})
    groups = split_by_length(batch, 2)
    assert all(g[ENCODER_FEATURES_KEY].shape[1] == int(g[CACHED_FEATURES_MASK].sum(-1).max()) for g in groups)
    assert any(g[ENCODER_FEATURES_KEY].shape[1] < features.shape[1] for g in groups)
    count = int((batch["labels"] != -100).sum()) * 4  # as under 4 steps of gradient accumulation
    expected = model(**batch, num_items_in_batch=count).loss
    torch.testing.assert_close(length_grouped_loss(model, batch, 2, num_items_in_batch=count), expected,
                               rtol=1e-5, atol=1e-6)


def test_static_cache_generation_equals_default_greedy():
    """transformers' static key/value cache (`benchmark_mint.py --static-cache`) decodes as the default cache does."""
    model, batch = stage2(text_config=tiny.t5_config(initializer_factor=5.0))  # varied tokens, not one repeated
    batch.pop("labels")
    kwargs = dict(max_new_tokens=8, min_new_tokens=8, num_beams=1, do_sample=False)
    default = model.generate(**batch, **kwargs)
    assert len(default[:, 1:].unique()) > 3
    model.language_model.generation_config.cache_implementation = "static"
    assert torch.equal(model.generate(**batch, **kwargs), default)
