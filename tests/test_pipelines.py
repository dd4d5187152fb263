"""pipeline("audio-to-text"), MINT zero-shot classification and the retrieval index."""

import numpy as np
import pytest
import soundfile
import torch
from datasets import Audio, Dataset
from transformers import T5ForConditionalGeneration, pipeline
from transformers.pipelines import ZeroShotAudioClassificationPipeline

import tiny
from modeling_mint import MintForConditionalGeneration, MintForPreTraining
from pipelines_mint import MintAudioToTextPipeline, MintZeroShotAudioClassificationPipeline
from retrieval_mint import MintRetrievalIndex
from test_pretraining import clips


# Tiny random models mostly emit special tokens; suppressing them makes every caption 4 real words.
WORDS = dict(min_new_tokens=4, max_new_tokens=4, suppress_tokens=[0, 1, 2, 3])
LABELS = ["dog", "cat", "piano"]


def saved(model_class, tmp_path_factory, seed):
    folder = tmp_path_factory.mktemp(model_class.__name__)
    torch.manual_seed(seed)
    model_class(tiny.mint_config()).save_pretrained(folder)
    tiny.processor().save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def stage2_folder(tmp_path_factory):
    return saved(MintForConditionalGeneration, tmp_path_factory, seed=0)


@pytest.fixture(scope="module")
def stage1_folder(tmp_path_factory):
    return saved(MintForPreTraining, tmp_path_factory, seed=1)


def direct_captions(model, processor, audio, prompt="Generate audio caption:"):
    batch = processor(audio=audio, text=[prompt] * len(audio), sampling_rate=16000)
    return [t.strip() for t in processor.batch_decode(model.generate(**batch, **WORDS))]


def test_audio_to_text_takes_paths_arrays_rows_and_lists(stage2_folder, tmp_path):
    captioner = pipeline("audio-to-text", model=stage2_folder, device="cpu")  # registered on import, no remote code
    assert isinstance(captioner, MintAudioToTextPipeline)
    audio = clips((16000, 12000, 9000))
    expected = direct_captions(captioner.model, captioner.processor, audio)
    assert all(len(text.split()) == 4 for text in expected)
    path = tmp_path / "clip.wav"
    soundfile.write(path, audio[0], 16000)
    assert captioner(str(path), **WORDS) == {"generated_text": expected[0]}
    assert captioner(audio[1], sampling_rate=16000, **WORDS) == {"generated_text": expected[1]}
    assert captioner({"array": audio[2], "sampling_rate": 16000}, **WORDS) == {"generated_text": expected[2]}
    rows = Dataset.from_dict({"audio": [str(path)], "caption": ["x"]}).cast_column("audio", Audio(decode=False))
    assert captioner(rows[0], **WORDS) == {"generated_text": expected[0]}
    assert captioner(list(audio), sampling_rate=16000, **WORDS) == [{"generated_text": t} for t in expected]


def test_batched_outputs_equal_one_by_one_and_prompt_is_used(stage2_folder):
    captioner = pipeline("audio-to-text", model=stage2_folder, device="cpu")
    audio = clips((16000, 12000, 9000, 14000, 10000))
    one_by_one = [captioner(a, sampling_rate=16000, **WORDS) for a in audio]
    batched = captioner(list(audio), sampling_rate=16000, batch_size=3, **WORDS)
    assert batched == one_by_one
    prompt = "this is a sound of"
    expected = direct_captions(captioner.model, captioner.processor, audio[:2], prompt)
    assert captioner(list(audio[:2]), sampling_rate=16000, prompt=prompt, **WORDS) == \
        [{"generated_text": t} for t in expected]
    with pytest.raises(TypeError, match="unexpected parameters"):
        captioner(audio[0], sampling_rate=16000, max_new_tokenz=3)
    with pytest.raises(ValueError, match="without a sampling rate"):
        captioner(audio[0])


def test_long_audio_is_windowed_with_timestamps(stage2_folder):
    captioner = pipeline("audio-to-text", model=stage2_folder, device="cpu")
    captioner.processor.max_audio_seconds = 1.0
    long_clip = np.concatenate(clips((16000, 16000, 8000)))  # 2.5 s: windows of 1 s, 1 s, 0.5 s
    out = captioner(long_clip, sampling_rate=16000, long_audio_policy="window", **WORDS)
    assert [c["timestamp"] for c in out["chunks"]] == [(0.0, 1.0), (1.0, 2.0), (2.0, 2.5)]
    windows = [long_clip[:16000], long_clip[16000:32000], long_clip[32000:]]
    expected = direct_captions(captioner.model, captioner.processor, windows)
    assert [c["generated_text"] for c in out["chunks"]] == expected
    assert out["generated_text"] == " ".join(expected)
    batched = captioner([long_clip, clips((9000,))[0]], sampling_rate=16000, long_audio_policy="window",
                        batch_size=2, **WORDS)
    assert batched[0] == out and "chunks" not in batched[1]


def test_zero_shot_llm_scores_are_vocabulary_ranking(stage2_folder):
    classifier = pipeline("zero-shot-audio-classification", model=stage2_folder, device="cpu")
    assert isinstance(classifier, MintZeroShotAudioClassificationPipeline)
    audio = clips((16000, 12000, 9000))
    processor, model = classifier.processor, classifier.model
    batch = processor(audio=list(audio), text=["This is a sound of"] * 3, sampling_rate=16000)
    with torch.no_grad():
        expected = model.score_candidates(**processor.tokenize_candidates(LABELS), **batch).softmax(-1)
    results = classifier(list(audio), candidate_labels=LABELS, sampling_rate=16000, batch_size=2)
    for result, row in zip(results, expected):
        assert [r["score"] for r in result] == sorted((r["score"] for r in result), reverse=True)
        by_label = {r["label"]: r["score"] for r in result}
        assert [by_label[label] for label in LABELS] == pytest.approx(row.tolist(), abs=1e-6)
    alone = classifier(audio[0], candidate_labels="dog, cat, piano", sampling_rate=16000)
    assert [r["label"] for r in alone] == [r["label"] for r in results[0]]
    assert [r["score"] for r in alone] == pytest.approx([r["score"] for r in results[0]], abs=1e-6)
    with pytest.raises(ValueError, match="needs a stage-1 model"):
        classifier(audio[0], candidate_labels=LABELS, sampling_rate=16000, scoring="embedding")


def test_zero_shot_embedding_and_matching_on_a_stage1_folder(stage1_folder):
    classifier = pipeline("zero-shot-audio-classification", model=stage1_folder, device="cpu")
    model, processor = classifier.model, classifier.processor
    assert type(model) is MintForPreTraining  # loaded as the stage it was saved from
    audio = clips((16000, 12000))
    hypotheses = processor(text=[f"This is a sound of {c}." for c in LABELS], return_llm_inputs=False)
    clips_in = processor(audio=list(audio), sampling_rate=16000)
    with torch.no_grad():
        text = model.get_text_features(hypotheses["qformer_input_ids"], hypotheses["qformer_attention_mask"])
        similarity = model.audio_text_similarity(model.get_audio_features(**clips_in).pooler_output,
                                                 text.pooler_output)
        embedding = (similarity / model._temperature()).softmax(-1)
        matching = torch.stack([model.get_matching_scores(
            hypotheses["qformer_input_ids"], hypotheses["qformer_attention_mask"],
            **{k: v[i : i + 1].repeat_interleave(3, 0) for k, v in clips_in.items()}) for i in range(2)])
    for mode, expected in (("embedding", embedding), ("matching", matching)):
        results = classifier(list(audio), candidate_labels=LABELS, sampling_rate=16000, scoring=mode)
        for result, row in zip(results, expected):
            by_label = {r["label"]: r["score"] for r in result}
            assert [by_label[label] for label in LABELS] == pytest.approx(row.tolist(), abs=1e-5), mode
    with pytest.raises(ValueError, match="needs a stage-2 model"):
        classifier(audio[0], candidate_labels=LABELS, sampling_rate=16000, scoring="llm")
    with pytest.raises(ValueError, match="candidate_labels"):
        classifier(audio[0], sampling_rate=16000)
    with pytest.raises(ValueError, match="audio-to-text needs a stage-2 MINT"):
        pipeline("audio-to-text", model=model, processor=processor, device="cpu")


def test_zero_shot_task_still_serves_other_models_with_the_stock_pipeline():
    other = T5ForConditionalGeneration(tiny.t5_config())
    assert type(MintZeroShotAudioClassificationPipeline(other, device="cpu")) is ZeroShotAudioClassificationPipeline


def test_retrieval_index_ranks_by_alc_similarity_and_reloads(stage1_folder, tmp_path):
    model = MintForPreTraining.from_pretrained(stage1_folder).eval()
    processor = tiny.processor()
    audio = clips((16000, 12000, 9000, 14000))
    index = MintRetrievalIndex(model, processor).add(list(audio[:3]), ids=["a", "b", "c"], sampling_rate=16000,
                                                     progress=False)
    index.add([audio[3]], ids=["d"], sampling_rate=16000, progress=False)
    queries = ["a dog barks", "a piano plays a low note"]
    with torch.no_grad():
        tokens = processor(text=queries, return_llm_inputs=False)
        text = model.get_text_features(tokens["qformer_input_ids"], tokens["qformer_attention_mask"]).pooler_output
        audio_embeds = model.get_audio_features(**processor(audio=list(audio), sampling_rate=16000)).pooler_output
        expected = model.audio_text_similarity(audio_embeds, text).t()
    results = index.search(queries, top_k=3)
    for row, result in zip(expected, results):
        order = row.argsort(descending=True)[:3].tolist()
        assert [r["index"] for r in result] == order
        assert [r["id"] for r in result] == [["a", "b", "c", "d"][i] for i in order]
        assert [r["score"] for r in result] == pytest.approx(row[order].tolist(), abs=1e-5)
    index.save(tmp_path / "index")
    reloaded = MintRetrievalIndex.load(tmp_path / "index", model, processor)
    assert reloaded.search(queries[0], top_k=10) == index.search(queries[0], top_k=10)
    assert len(reloaded.search(queries[0], top_k=10)) == 4
    with pytest.raises(ValueError, match="empty"):
        MintRetrievalIndex(model, processor).search("x")
    with pytest.raises(ValueError, match="stage-1"):
        MintRetrievalIndex(MintForConditionalGeneration(tiny.mint_config()), processor)
