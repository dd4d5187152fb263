"""Initialising Bridge-Net's Q-Former from a real BERT checkpoint (section 2.1)."""

import torch
from transformers import BertModel

from tests.utils import tiny
from convert_bert_mint import bert_to_qformer_state_dict
from modeling_mint import MintForPreTraining, MintQFormerModel


def test_text_only_qformer_equals_bert_hidden_states():
    bert = BertModel.from_pretrained(tiny.MINILM_DIR).eval()
    qformer = MintQFormerModel.from_bert_pretrained(tiny.MINILM_DIR, encoder_hidden_size=48).eval()
    tokenizer = tiny.qformer_tokenizer()
    batch = tokenizer(["a dog barks in the distance", "rain"], padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = bert(input_ids=batch.input_ids, attention_mask=batch.attention_mask).last_hidden_state
        got = qformer(input_ids=batch.input_ids, attention_mask=batch.attention_mask).last_hidden_state
    real = batch.attention_mask.bool()
    assert torch.allclose(got[real], expected[real], atol=1e-5, rtol=0)
    assert qformer.config.vocab_size == 30523 and qformer.config.num_hidden_layers == 6


def test_query_branch_copies_text_feed_forward_and_cross_attention_stays_fresh():
    state = BertModel.from_pretrained(tiny.MINILM_DIR).state_dict()
    torch.manual_seed(1)
    qformer = MintQFormerModel.from_bert_pretrained(tiny.MINILM_DIR, encoder_hidden_size=48)
    layer = qformer.encoder.layer[0]
    assert torch.equal(layer.intermediate_query.dense.weight, state["encoder.layer.0.intermediate.dense.weight"])
    assert torch.equal(layer.output_query.LayerNorm.weight, state["encoder.layer.0.output.LayerNorm.weight"])
    assert torch.equal(layer.attention.attention.query.weight, state["encoder.layer.0.attention.self.query.weight"])
    # Cross-attention has no BERT counterpart: its key projection reads the 48-d audio features.
    assert layer.crossattention.attention.key.weight.shape == (384, 48)
    mapped = bert_to_qformer_state_dict(state)
    assert not any("crossattention" in key for key in mapped)
    assert not any("token_type" in key for key in mapped)
    # The [DEC] row is not BERT's: it keeps its own initialisation.
    assert qformer.embeddings.word_embeddings.weight.shape[0] == 30523


def test_pretraining_model_initialises_its_qformer_from_bert():
    config = tiny.mint_config(qformer_config=tiny.qformer_config(hidden_size=384, num_hidden_layers=6,
                                                                 num_attention_heads=12, intermediate_size=1536,
                                                                 max_position_embeddings=512))
    model = MintForPreTraining(config)
    model.init_qformer_from_bert(tiny.MINILM_DIR)
    bert = BertModel.from_pretrained(tiny.MINILM_DIR)
    assert torch.equal(model.qformer.encoder.layer[5].output.dense.weight, bert.encoder.layer[5].output.dense.weight)
    # The ATG decoder is tied to the word embeddings, so it follows the BERT initialisation.
    decoder, words = model.atg_head.predictions.decoder.weight, model.qformer.embeddings.word_embeddings.weight
    assert decoder.data_ptr() == words.data_ptr()
