"""transformers' own zero-shot-audio-classification pipeline on a stage-1 folder that `mint.train` wrote: the Q-Former's
tokenizer on top (the LLM's loaded it into the Q-Former before), scores equal to the model's own logits, with a
feature extractor that returns an attention mask (data2vec's, the paper's encoder) or not; stage 2 still gets the
LLM's tokenizer from the folder."""

import pytest
import torch
from transformers import pipeline
from transformers.pipelines import ZeroShotAudioClassificationPipeline

from mint.data.examples import to_caption_pairs
from mint.training.trainer import train
from modeling_mint import MintForConditionalGeneration, MintModel
from processing_mint import LLM_TOKENIZER_FOLDER, MintProcessor
from tests.utils import tiny
from tests.utils.audio import clips
from tests.utils.training import make_audio_dataset, make_mint_folder, recipe


LABELS = ["dog", "cat", "piano"]


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    return to_caption_pairs(make_audio_dataset(tmp_path_factory.mktemp("audio")))


@pytest.mark.slow
@pytest.mark.parametrize("attention_mask", [True, False], ids=["data2vec-like", "wav2vec2-like"])
def test_the_stock_zero_shot_pipeline_reads_a_trained_stage1_folder(pairs, tmp_path, attention_mask):
    folder = make_mint_folder(tmp_path / "mint")
    processor = tiny.processor(decoder_only=True)
    processor.feature_extractor.return_attention_mask = attention_mask
    processor.save_pretrained(folder)
    output = tmp_path / "stage1"
    train(recipe(folder, output, max_steps=2), pairs)
    assert (output / LLM_TOKENIZER_FOLDER / "tokenizer.json").is_file()

    classifier = pipeline("zero-shot-audio-classification", model=str(output), device="cpu")
    assert type(classifier) is ZeroShotAudioClassificationPipeline and type(classifier.model) is MintModel
    assert classifier.tokenizer.cls_token == "[CLS]"  # the Q-Former's BERT tokenizer, not the LLM's
    model = MintModel.from_pretrained(output).eval()
    mint_processor = MintProcessor.from_pretrained(output)
    hypotheses = mint_processor(text=[f"This is a sound of {label}." for label in LABELS], return_llm_inputs=False)
    for clip in clips((16000, 12000)):
        with torch.no_grad():
            logits = model(input_ids=hypotheses["qformer_input_ids"],
                           attention_mask=hypotheses["qformer_attention_mask"],
                           **mint_processor(audio=[clip], sampling_rate=16000)).logits_per_audio[0]
        stock = {r["label"]: r["score"] for r in classifier(clip, candidate_labels=LABELS)}
        assert [stock[label] for label in LABELS] == pytest.approx(logits.softmax(-1).tolist(), abs=1e-5)

    # Stage 2 from the folder gets the LLM's tokenizer and layout back.
    llm = tiny.llm_tokenizer(bos=True)
    assert mint_processor.tokenizer("a dog barks")["input_ids"] == llm("a dog barks")["input_ids"]
    assert mint_processor.audio_token_id == tiny.AUDIO_TOKEN_ID and mint_processor.decoder_only_llm
    assert mint_processor.qformer_tokenizer.bos_token == "[DEC]"


@pytest.mark.parametrize("attention_mask", [True, False], ids=["data2vec-like", "wav2vec2-like"])
def test_a_processor_saved_into_a_stage1_folder_serves_the_stock_pipeline_and_loads_back(tmp_path, attention_mask):
    # As docs/usage.md saves a stage-1 model: the model, then the processor into the same folder.
    torch.manual_seed(0)
    folder = tmp_path / "stage1"
    MintModel(tiny.mint_config()).save_pretrained(folder)
    processor = tiny.processor()
    processor.feature_extractor.return_attention_mask = attention_mask
    processor.save_pretrained(folder)
    assert (folder / LLM_TOKENIZER_FOLDER / "tokenizer.json").is_file()

    loaded = MintProcessor.from_pretrained(folder)
    assert loaded.tokenizer.get_vocab() == processor.tokenizer.get_vocab()
    assert loaded.qformer_tokenizer.get_vocab() == processor.qformer_tokenizer.get_vocab()
    clip = clips((16000,))[0]
    text = ["This is a sound of dog."]
    for key, value in processor(audio=[clip], text=text, sampling_rate=16000).items():
        assert torch.equal(loaded(audio=[clip], text=text, sampling_rate=16000)[key], value), key

    classifier = pipeline("zero-shot-audio-classification", model=str(folder), device="cpu")
    assert classifier.tokenizer.cls_token == "[CLS]"
    model = MintModel.from_pretrained(folder).eval()
    hypotheses = processor(text=[f"This is a sound of {label}." for label in LABELS], return_llm_inputs=False)
    with torch.no_grad():
        logits = model(input_ids=hypotheses["qformer_input_ids"], attention_mask=hypotheses["qformer_attention_mask"],
                       **processor(audio=[clip], sampling_rate=16000)).logits_per_audio[0]
    stock = {r["label"]: r["score"] for r in classifier(clip, candidate_labels=LABELS)}
    assert [stock[label] for label in LABELS] == pytest.approx(logits.softmax(-1).tolist(), abs=1e-5)


def test_a_processor_saved_into_a_stage2_folder_keeps_the_llm_tokenizer_on_top(tmp_path):
    folder = tmp_path / "stage2"
    MintForConditionalGeneration(tiny.mint_config()).save_pretrained(folder)
    tiny.processor().save_pretrained(folder)
    assert not (folder / LLM_TOKENIZER_FOLDER).exists()
    assert MintProcessor.from_pretrained(folder).tokenizer.get_vocab() == tiny.processor().tokenizer.get_vocab()
