"""Any transformers audio encoder: data2vec-audio (default), Whisper's encoder, wav2vec2, HuBERT; and the configs."""

import pytest
import torch
from transformers import (
    HubertConfig,
    OPTConfig,
    Wav2Vec2Config,
    WhisperConfig,
    WhisperFeatureExtractor,
)

from tests.utils import tiny
from configuration_mint import MintConfig
from modeling_mint import MintForConditionalGeneration, MintForPreTraining
from processing_mint import MintProcessor
from tests.utils.audio import CAPTIONS, clips


SMALL_WAV2VEC = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=64,
                     conv_dim=(16,) * 7, num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=4)


ENCODERS = [Wav2Vec2Config(**SMALL_WAV2VEC, feat_extract_norm="layer"),
            HubertConfig(**SMALL_WAV2VEC, feat_extract_norm="layer"),
            Wav2Vec2Config(**SMALL_WAV2VEC, feat_extract_norm="group"),  # wav2vec2-base's setting
            HubertConfig(**SMALL_WAV2VEC, feat_extract_norm="group"),  # HuBERT-base's setting
            tiny.audio_config()]


@pytest.mark.parametrize("audio_config", ENCODERS,
                         ids=lambda c: f"{c.model_type}-{getattr(c, 'feat_extract_norm', '')}")
def test_a_clip_gives_the_same_features_alone_and_in_any_padded_batch(audio_config):
    model = MintForPreTraining(tiny.mint_config(audio_config=audio_config)).eval()
    processor = tiny.processor()
    audio = clips((16000, 7000, 11000))
    with torch.no_grad():
        batched = model.get_audio_features(**processor(audio=audio, sampling_rate=16000)).pooler_output
        reordered = model.get_audio_features(**processor(audio=audio[::-1], sampling_rate=16000)).pooler_output
        for i, clip in enumerate(audio):
            alone = model.get_audio_features(**processor(audio=[clip], sampling_rate=16000)).pooler_output[0]
            torch.testing.assert_close(batched[i], alone, rtol=0, atol=1e-5)
            torch.testing.assert_close(reordered[2 - i], alone, rtol=0, atol=1e-5)
    assert not torch.allclose(batched[0], batched[1], atol=1e-3)  # distinct clips, distinct embeddings


def test_the_padding_mask_leaves_no_state_on_the_encoder():
    model = MintForPreTraining(tiny.mint_config()).eval()
    attributes = set(vars(model.audio_model))
    with torch.no_grad():
        model.get_audio_features(**tiny.processor()(audio=clips((16000, 7000)), sampling_rate=16000))
    assert all(not layer._forward_pre_hooks for layer in model.audio_model.encoder.pos_conv_embed.layers)
    assert set(vars(model.audio_model)) == attributes


def test_an_unknown_audio_keyword_is_refused():
    model = MintForPreTraining(tiny.mint_config()).eval()
    with pytest.raises(TypeError, match=r"unexpected keyword argument\(s\) \['input_value'\]"):
        model.get_audio_features(input_value=torch.randn(1, 16000))


def test_whisper_clips_are_batch_invariant():
    whisper = WhisperConfig(d_model=32, encoder_layers=1, encoder_attention_heads=4, encoder_ffn_dim=64,
                            decoder_layers=1, decoder_attention_heads=4, decoder_ffn_dim=64, num_mel_bins=80)
    model = MintForPreTraining(tiny.mint_config(audio_config=whisper)).eval()
    processor = MintProcessor(WhisperFeatureExtractor(feature_size=80), tiny.llm_tokenizer(), tiny.qformer_tokenizer(),
                              num_query_tokens=4)
    audio = clips((16000, 7000))
    with torch.no_grad():
        batched = model.get_audio_features(**processor(audio=audio, sampling_rate=16000)).pooler_output
        for i, clip in enumerate(audio):
            alone = model.get_audio_features(**processor(audio=[clip], sampling_rate=16000)).pooler_output[0]
            torch.testing.assert_close(batched[i], alone, rtol=0, atol=1e-5)


@pytest.mark.parametrize("audio_config", [Wav2Vec2Config(**SMALL_WAV2VEC, feat_extract_norm="layer"),
                                          HubertConfig(**SMALL_WAV2VEC, feat_extract_norm="layer")])
def test_wav2vec2_and_hubert_encoders(audio_config):
    model = MintForPreTraining(tiny.mint_config(audio_config=audio_config)).eval()
    assert model.qformer.config.encoder_hidden_size == 32
    batch = tiny.processor()(audio=clips(), text=CAPTIONS, sampling_rate=16000, return_llm_inputs=False)
    out = model(**batch)
    assert torch.isfinite(out.loss)
    # The padded clip's embedding equals the clip alone (the cross-attention masks the padded frames).
    alone = tiny.processor()(audio=[clips()[2]], sampling_rate=16000)
    single = model.get_audio_features(**alone).pooler_output
    assert torch.allclose(out.audio_embeds[2], single[0], atol=1e-4)


def test_whisper_encoder_with_its_feature_extractor():
    whisper = WhisperConfig(d_model=32, encoder_layers=1, encoder_attention_heads=4, encoder_ffn_dim=64,
                            decoder_layers=1, decoder_attention_heads=4, decoder_ffn_dim=64, num_mel_bins=80)
    config = tiny.mint_config(audio_config=whisper)
    processor = MintProcessor(WhisperFeatureExtractor(feature_size=80), tiny.llm_tokenizer(), tiny.qformer_tokenizer(),
                              num_query_tokens=4)
    batch = processor(audio=clips((16000, 8000)), text=["this is a sound of", "generate audio caption :"],
                      text_target=["dog", "cat"], sampling_rate=16000)
    assert batch["input_features"].shape == (2, 80, 3000)
    model = MintForConditionalGeneration(config).eval()
    assert type(model.audio_model).__name__ == "WhisperEncoder"
    _, mask = model.encode_audio(input_features=batch["input_features"],
                                 audio_attention_mask=batch["audio_attention_mask"])
    assert mask.shape == (2, 1500) and mask.sum(-1).tolist() == [50, 25]  # 100 mel frames per second, stride 2
    assert torch.isfinite(model(**batch).loss)
    assert model.generate(**{k: v for k, v in batch.items() if k != "labels"}, max_new_tokens=3).shape[0] == 2


def test_default_config_is_the_papers():
    config = MintConfig()
    assert config.audio_config.model_type == "data2vec-audio" and config.audio_config.hidden_size == 768
    q = config.qformer_config
    assert (q.num_hidden_layers, q.hidden_size, q.num_attention_heads, q.intermediate_size) == (12, 768, 12, 3072)
    assert q.cross_attention_frequency == 2 and q.vocab_size == 30523 and q.dec_token_id == 30522
    assert q.encoder_hidden_size == 768
    t = config.text_config
    assert (t.model_type, t.d_model, t.num_layers, t.num_heads, t.d_ff) == ("t5", 2048, 24, 32, 5120)
    assert (config.num_query_tokens, config.audio_text_hidden_size, config.temperature_init) == (32, 256, 0.07)
    assert (config.max_text_length, config.min_audio_seconds, config.max_audio_seconds) == (30, 3.0, 30.0)
    assert config.stage1_objectives == ["alc", "alm", "atg"] and config.freeze_language_model
    assert not config.use_decoder_only_language_model
    assert MintConfig(text_config=OPTConfig().to_dict()).use_decoder_only_language_model


@pytest.mark.parametrize("kwargs, message", [
    (dict(stage1_objectives=["alm"]), "needs 'alc'"),
    (dict(stage1_objectives=["itc"]), "subset of"),
    (dict(stage1_objectives=[]), "subset of"),
    (dict(min_audio_seconds=10.0, max_audio_seconds=5.0), "min_audio_seconds"),
    (dict(audio_feature_layer=13), "audio_feature_layer must index the audio encoder's 13 hidden states"),
    (dict(audio_feature_layer=[0, -14]), "audio_feature_layer must index"),
    (dict(audio_feature_layer=[]), "non-empty list"),
])
def test_invalid_configs_are_rejected(kwargs, message):
    with pytest.raises(Exception, match=message):
        MintConfig(**kwargs)


WHISPER_SMALL = WhisperConfig(d_model=32, encoder_layers=2, encoder_attention_heads=4, encoder_ffn_dim=64,
                              decoder_layers=1, decoder_attention_heads=4, decoder_ffn_dim=64, num_mel_bins=80)


@pytest.mark.parametrize("audio_config", [tiny.audio_config(num_hidden_layers=2), WHISPER_SMALL])
def test_audio_feature_layers_are_the_encoders_hidden_states_concatenated(audio_config, tmp_path):
    default = MintForPreTraining(tiny.mint_config(audio_config=audio_config)).eval()
    layered = MintForPreTraining(tiny.mint_config(audio_config=audio_config, audio_feature_layer=[0, -1])).eval()
    layered.audio_model.load_state_dict(default.audio_model.state_dict())
    width = audio_config.hidden_size
    assert layered.config.audio_feature_size == 2 * width and layered.qformer.config.encoder_hidden_size == 2 * width
    assert layered.audio_layernorm.normalized_shape == (2 * width,)
    if isinstance(audio_config, WhisperConfig):
        audio = {"input_features": torch.randn(2, 80, 3000)}
    else:
        audio = {"input_values": torch.randn(2, 16000), "audio_attention_mask": torch.ones(2, 16000, dtype=torch.long)}
    with torch.no_grad():
        features, mask = layered.get_audio_encoder_features(**audio)
        output, default_mask = default.get_audio_encoder_features(**audio)
        hidden_states = default.audio_model(next(iter(audio.values())), output_hidden_states=True).hidden_states
    # The second half is the encoder's output (the paper's features), the first its input embeddings.
    torch.testing.assert_close(features[..., width:], output, rtol=0, atol=0)
    torch.testing.assert_close(features[..., :width], hidden_states[0], rtol=0, atol=0)
    assert torch.equal(mask, default_mask)
    layered.save_pretrained(tmp_path)
    reloaded = MintForPreTraining.from_pretrained(tmp_path).eval()
    assert reloaded.config.audio_feature_layer == [0, -1]
    with torch.no_grad():
        torch.testing.assert_close(reloaded.get_audio_features(**audio).pooler_output,
                                   layered.get_audio_features(**audio).pooler_output, rtol=0, atol=0)


def test_cached_features_of_another_width_are_rejected():
    model = MintForPreTraining(tiny.mint_config(audio_feature_layer=[0, -1]))
    with pytest.raises(ValueError, match=r"shape \(1, 10, 32\), but this model reads \(batch, frames, 64\)"):
        model.encode_audio(audio_encoder_features=torch.randn(1, 10, 32))
    with pytest.raises(ValueError, match="takes its audio as input_values"):
        model.encode_audio(input_features=torch.randn(1, 80, 100))
    with pytest.raises(ValueError, match=r"expected \(batch, samples\) waveforms"):
        model.encode_audio(input_values=torch.randn(16000))
