"""Stage 2 (section 2.3): instruction-aware Bridge-Net, LM loss, generation, vocabulary ranking (section 4.1)."""

import pytest
import torch

from tests.utils import tiny
from modeling_mint import MintForConditionalGeneration, MintForPreTraining
from tests.utils.audio import clips


PROMPTS = ["generate audio caption :", "this is a sound of", "the genre of this music is"]
TARGETS = ["a dog bark loudly", "cat", "jazz"]


def make(decoder_only=False, text_config=None, **kwargs):
    text = text_config or (tiny.opt_config() if decoder_only else tiny.t5_config())
    model = MintForConditionalGeneration(tiny.mint_config(text_config=text, **kwargs)).eval()
    return model, tiny.processor(decoder_only)


def inputs(processor, audio=None, prompts=PROMPTS, targets=None):
    audio = audio if audio is not None else clips((16000, 9000, 13000))
    return processor(audio=audio, text=prompts, text_target=targets, sampling_rate=16000)


def without(batch, *names):
    return {k: v for k, v in batch.items() if k not in names}


@pytest.mark.parametrize("decoder_only", [False, True])
def test_lm_loss_is_on_the_target_only_and_equals_hand_computation(decoder_only):
    model, processor = make(decoder_only)
    batch = inputs(processor, targets=TARGETS)
    loss = model(**batch).loss
    # By hand, one clip at a time: the LLM's log-probability of each target token after [soft prompt; prompt].
    terms = []
    queries = model.config.num_query_tokens
    for i in range(len(PROMPTS)):
        one = inputs(processor, audio=[clips((16000, 9000, 13000))[i]], prompts=[PROMPTS[i]], targets=[TARGETS[i]])
        soft = model.get_audio_features(**without(one, "input_ids", "attention_mask", "labels")).pooler_output
        target = one["labels"][0][one["labels"][0] != -100]
        assert one["input_ids"][0, :queries].eq(model.config.audio_token_id).all()
        prompt_ids = one["input_ids"][:, queries:]
        if decoder_only:  # the processor appends the target to the prompt
            assert prompt_ids[0, -len(target):].tolist() == target.tolist()
            prompt_ids = prompt_ids[:, : -len(target)]
        prompt_embeds = model.get_input_embeddings()(prompt_ids)
        if decoder_only:
            sequence = torch.cat([soft, prompt_embeds, model.get_input_embeddings()(target[None])], dim=1)
            logits = model.language_model(inputs_embeds=sequence).logits[0]
            start = sequence.shape[1] - len(target)
            logp = logits[start - 1 : -1].log_softmax(-1)
        else:
            decoder_ids = torch.cat([torch.zeros(1, dtype=torch.long), target[:-1]])[None]
            logits = model.language_model(inputs_embeds=torch.cat([soft, prompt_embeds], 1),
                                          decoder_input_ids=decoder_ids).logits[0]
            logp = logits.log_softmax(-1)
        terms.append(-logp[torch.arange(len(target)), target])
    expected = torch.cat(terms).mean()
    assert loss.item() == pytest.approx(expected.item(), abs=1e-5)


@pytest.mark.parametrize("decoder_only", [False, True])
def test_generation_alone_equals_generation_in_a_padded_batch(decoder_only):
    # Wide initialisations and amplified audio, so that each clip gets its own tokens: a batch mix-up would show.
    text = tiny.opt_config(init_std=0.5) if decoder_only else tiny.t5_config(initializer_factor=10.0)
    model, processor = make(decoder_only, text_config=text)
    tiny.amplify_audio(model)
    audio = clips((16000, 9000, 13000))
    settings = dict(max_new_tokens=6, min_new_tokens=6, num_beams=1, do_sample=False, suppress_tokens=[0, 1, 2, 3])
    batched = model.generate(**inputs(processor, audio), **settings)
    assert len({tuple(row.tolist()) for row in batched}) == 3  # distinct outputs per clip
    for i in range(3):
        alone = model.generate(**inputs(processor, [audio[i]], [PROMPTS[i]]), **settings)
        assert batched[i, : alone.shape[1]].tolist() == alone[0].tolist()


def test_instruction_changes_the_soft_prompt():
    model, processor = make()
    a = inputs(processor, prompts=PROMPTS)
    b = inputs(processor, prompts=["the genre of this music is", "generate audio caption :", "this is a sound of"])
    soft_a = model.get_audio_features(**without(a, "input_ids", "attention_mask")).pooler_output
    soft_b = model.get_audio_features(**without(b, "input_ids", "attention_mask")).pooler_output
    assert soft_a.shape == (3, 4, 32)
    assert not torch.allclose(soft_a, soft_b, atol=1e-4)


@pytest.mark.parametrize("decoder_only", [False, True])
def test_vocabulary_ranking_equals_per_candidate_loss_by_hand(decoder_only):
    model, processor = make(decoder_only)
    labels = ["dog", "cat meow", "piano", "a violin plays a low note"]
    batch = inputs(processor)
    scores = model.score_candidates(**processor.tokenize_candidates(labels), **batch)
    normalised = model.score_candidates(**processor.tokenize_candidates(labels), **batch, length_normalize=True)
    lengths = processor.tokenize_candidates(labels)["candidate_attention_mask"].sum(-1)
    assert torch.allclose(normalised, scores / lengths, atol=1e-6)
    chunked = model.score_candidates(**processor.tokenize_candidates(labels), **batch, candidate_chunk_size=3)
    assert torch.allclose(scores, chunked, atol=1e-5)
    for i in range(3):
        for j, label in enumerate(labels):
            # The clip alone with this candidate as target: the LM loss is the mean over its tokens.
            single = inputs(processor, audio=[clips((16000, 9000, 13000))[i]], prompts=[PROMPTS[i]], targets=[label])
            n_tokens = int((single["labels"][0] != -100).sum())
            summed = -model(**single).loss * n_tokens
            assert scores[i, j].item() == pytest.approx(summed.item(), abs=1e-4)


def test_empty_candidate_list_is_rejected():
    model, processor = make()
    with pytest.raises(ValueError, match="at least one"):
        processor.tokenize_candidates([])
    with pytest.raises(ValueError, match="at least one candidate"):
        model.score_candidates(torch.zeros(0, 2, dtype=torch.long), torch.zeros(0, 2), **inputs(processor))


def test_frozen_llm_and_encoder_get_no_gradient_but_the_bridge_does():
    model, processor = make()
    model.train()
    assert not model.language_model.training and not model.audio_model.training and model.qformer.training
    graphs = []  # the frozen encoder runs without autograd: it stores no activations for the backward pass
    hook = model.audio_model.register_forward_hook(lambda m, a, out: graphs.append(out.last_hidden_state.grad_fn))
    model(**inputs(processor, targets=TARGETS)).loss.backward()
    hook.remove()
    assert graphs == [None]
    assert all(p.grad is None for p in model.language_model.parameters())
    assert all(p.grad is None for p in model.audio_model.parameters())
    assert model.language_projection.weight.grad.abs().sum() > 0 and model.query_tokens.grad.abs().sum() > 0


def test_trainable_llm_switch():
    model, processor = make(freeze_language_model=False)
    model.train()
    assert model.language_model.training
    model(**inputs(processor, targets=TARGETS)).loss.backward()
    assert model.language_model.lm_head.weight.grad is not None


def test_stage1_checkpoint_loads_into_stage2_without_renaming(tmp_path):
    config = tiny.mint_config()
    stage1 = MintForPreTraining(config)
    stage1.save_pretrained(tmp_path)
    stage2 = MintForConditionalGeneration.from_pretrained(tmp_path)
    assert MintForConditionalGeneration._keys_to_ignore_on_load_missing is None  # loading changed no class
    for name, tensor in stage1.state_dict().items():
        if name.startswith(("audio_model.", "audio_layernorm.", "query_tokens", "qformer.")):
            assert torch.equal(stage2.state_dict()[name], tensor), name
    assert not any(p.requires_grad for p in stage2.language_model.parameters())
    # The LLM the stage-1 checkpoint lacks gets T5's own initialisation (std (d_model * d_kv)^-0.5 for q), as from
    # the constructor; transformers' generic fallback would give std 1.0 and explode the first stage-2 steps.
    text = config.text_config
    q = stage2.language_model.encoder.block[0].layer[0].SelfAttention.q.weight
    assert q.std().item() == pytest.approx((text.d_model * text.d_kv) ** -0.5, rel=0.25)


def test_save_and_load_give_identical_logits(tmp_path):
    model, processor = make()
    batch = inputs(processor, targets=TARGETS)
    before = model(**batch).logits
    model.save_pretrained(tmp_path)
    after = MintForConditionalGeneration.from_pretrained(tmp_path).eval()(**batch).logits
    assert torch.equal(before, after)


def test_bf16_keeps_the_bridge_in_fp32(tmp_path):
    model, processor = make()
    model.save_pretrained(tmp_path)
    half = MintForConditionalGeneration.from_pretrained(tmp_path, dtype=torch.bfloat16).eval()
    assert half.language_model.dtype == torch.bfloat16 and half.audio_model.dtype == torch.bfloat16
    assert half.query_tokens.dtype == torch.float32 and half.qformer.dtype == torch.float32
    batch = inputs(processor, targets=TARGETS)
    # bf16 frozen parts change the loss only by their rounding.
    assert half(**batch).loss.item() == pytest.approx(model(**batch).loss.item(), rel=0.05)
    assert half.generate(**without(batch, "labels"), max_new_tokens=3).shape[0] == 3


def test_gradient_checkpointing_gives_the_same_gradients():
    # Dropout off, so that both runs compute the same function.
    model, processor = make(text_config=tiny.t5_config(dropout_rate=0.0), freeze_language_model=False,
                            qformer_config=tiny.qformer_config(hidden_dropout_prob=0.0,
                                                               attention_probs_dropout_prob=0.0))
    batch = inputs(processor, targets=TARGETS)
    model.train()
    model(**batch).loss.backward()
    reference = model.query_tokens.grad.clone()
    model.zero_grad()
    model.activation_checkpointing_enable()
    assert model.qformer.encoder.layer[0].gradient_checkpointing
    model(**batch).loss.backward()
    assert torch.allclose(model.query_tokens.grad, reference, rtol=1e-5, atol=1e-4)


def test_stage2_from_a_stage1_folder_in_bf16_keeps_the_new_projection_in_fp32(tmp_path):
    MintForPreTraining(tiny.mint_config()).save_pretrained(tmp_path)
    half = MintForConditionalGeneration.from_pretrained(tmp_path, dtype=torch.bfloat16)
    assert half.language_projection.weight.dtype == torch.float32 and half.language_model.dtype == torch.bfloat16
