"""Evaluation under real-world inputs: long clips (window and crop policies), clips too short, label templates."""

import logging

import numpy as np
import pytest
import soundfile
import torch
import torch.nn.functional as F
from datasets import Audio, Dataset

import mint.evaluation.captioning
from mint.evaluation.captioning import evaluate_captioning
from mint.evaluation.classification import embedding_scores, evaluate_classification, vocabulary_ranking_scores
from mint.evaluation.retrieval import evaluate_retrieval, retrieval_metrics
from mint.evaluation.retrieval_index import MintRetrievalIndex
from tests.utils import tiny
from tests.utils.audio import clips


LABELS = ["dog", "cat", "piano"]
PROMPT = "The most prominent instrument in this music is"


@pytest.fixture(scope="module")
def long_clips(tmp_path_factory):
    """Clips of 0.5 s, 2.5 s and 1.6 s: 1, 3 and 2 windows of 1 s, each window a different sound."""
    folder = tmp_path_factory.mktemp("long")
    sounds = [clips((8000,), seed=0)[0], np.concatenate(clips((16000, 16000, 8000), seed=1)),
              np.concatenate(clips((16000, 9600), seed=2))]
    paths = []
    for i, sound in enumerate(sounds):
        paths.append(str(folder / f"clip{i}.wav"))
        soundfile.write(paths[-1], sound, 16000)
    return Dataset.from_dict({"audio": paths, "label": LABELS,
                              "caption": ["a dog barks", "a cat meows", "a piano plays"]}).cast_column("audio", Audio())


@pytest.fixture(scope="module")
def window_processor():
    return tiny.processor(max_audio_seconds=1.0, long_audio_policy="window")


def windows(processor, dataset):
    """Each clip's windows, as arrays at 16 kHz, cut by the processor's window bounds."""
    result = []
    for audio in dataset.cast_column("audio", Audio(decode=False))["audio"]:
        samples = processor.load_audio(audio["path"])[0]
        result.append([samples[round(a * 16000) : round(b * 16000)] for a, b in processor.window_bounds(len(samples))])
    return result


def embed(model, processor, window):
    return model.get_audio_features(**processor(audio=[window], sampling_rate=16000,
                                                long_audio_policy="crop")).pooler_output[0]


@torch.no_grad()
def expected_clip_embeddings(model, processor, dataset):
    """The documented rule: the mean of the normalised window embeddings, normalised again."""
    return torch.stack([F.normalize(torch.stack([F.normalize(embed(model, processor, w), dim=-1) for w in clip])
                                    .mean(0), dim=-1) for clip in windows(processor, dataset)])


@torch.no_grad()
def text_embeddings(model, processor, texts):
    tokens = processor(text=texts, return_llm_inputs=False)
    return model.get_text_features(tokens["qformer_input_ids"], tokens["qformer_attention_mask"]).pooler_output


# ---- the window policy: one result per clip -------------------------------------------------------------------------

@torch.no_grad()
def test_vocabulary_ranking_averages_the_window_scores_of_each_clip(long_clips, window_processor, stage2):
    scores = vocabulary_ranking_scores(stage2, window_processor, long_clips, LABELS, PROMPT, progress=False)
    tokens = window_processor.tokenize_candidates(LABELS)
    expected = np.stack([np.mean([stage2.score_candidates(**tokens, **window_processor(
        audio=[w], text=[PROMPT], sampling_rate=16000, long_audio_policy="crop")).numpy()[0] for w in clip], axis=0)
        for clip in windows(window_processor, long_clips)])
    assert scores.shape == (3, 3)  # was (6, 3): one row per window
    assert np.allclose(scores, expected, atol=1e-4)
    assert not np.allclose(expected[1], expected[2], atol=1e-3)
    result = evaluate_classification(stage2, window_processor, long_clips, prompt=PROMPT, progress=False)
    assert result["num_clips"] == 3 and result["long_audio_policy"] == "window"
    assert result["predictions"] == [LABELS[i] for i in expected.argmax(1)]


@torch.no_grad()
def test_embedding_zero_shot_pools_the_window_embeddings_of_each_clip(long_clips, window_processor, stage1):
    texts = [f"A recording of {label}." for label in LABELS]
    expected = stage1.audio_text_similarity(expected_clip_embeddings(stage1, window_processor, long_clips),
                                            text_embeddings(stage1, window_processor, texts)).numpy()
    scores = embedding_scores(stage1, window_processor, long_clips, LABELS, "A recording of {label}.",
                              progress=False)
    assert scores.shape == (3, 3) and np.allclose(scores, expected, atol=1e-5)
    assert len({tuple(np.round(row, 3)) for row in expected}) == 3
    result = evaluate_classification(stage1, window_processor, long_clips, mode="embedding",
                                     label_template="A recording of {label}.", progress=False)
    assert result["predictions"] == [LABELS[i] for i in expected.argmax(1)]
    assert result["label_template"] == "A recording of {label}." and "prompt" not in result


@torch.no_grad()
def test_retrieval_index_and_evaluation_hold_one_embedding_per_clip(long_clips, window_processor, stage1):
    expected = expected_clip_embeddings(stage1, window_processor, long_clips)
    index = MintRetrievalIndex(stage1, window_processor).add(long_clips, ids=["a", "b", "c"], progress=False)
    assert len(index) == 3 and torch.allclose(index.embeddings, expected, atol=1e-5)
    assert [hit["id"] for hit in index.search("a cat meows", top_k=3)] == [
        ["a", "b", "c"][i] for i in np.argsort(-index.scores("a cat meows")[0].numpy(), kind="stable")]
    result = evaluate_retrieval(stage1, window_processor, long_clips, progress=False)
    similarity = stage1.audio_text_similarity(expected, text_embeddings(stage1, window_processor,
                                                                        long_clips["caption"])).t().numpy()
    assert result["num_clips"] == 3
    assert result["text_to_audio"] == pytest.approx(retrieval_metrics(similarity, [{0}, {1}, {2}]))
    reranked = evaluate_retrieval(stage1, window_processor, long_clips, rerank_top_k=3, progress=False)
    assert reranked["text_to_audio"]["R@5"] == 1.0


class WindowNamer(torch.nn.Module):
    """A stand-in captioner that names each window by its length: 'high' for 1 s, 'low' for 0.5 s, 'note' else."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def generate(self, audio_attention_mask, **kwargs):
        words = {16000: "high", 8000: "low"}
        return torch.tensor([[tiny.LLM_WORDS.index(words.get(int(n), "note"))] for n in audio_attention_mask.sum(-1)])


def test_captioning_joins_the_window_captions_of_each_clip(long_clips, window_processor, monkeypatch):
    scored = {}
    monkeypatch.setattr(mint.evaluation.captioning, "compute_caption_metrics",
                        lambda predictions, references, allow_empty: scored.update(refs=references) or {})
    result = evaluate_captioning(WindowNamer(), window_processor, long_clips, batch_size=2, progress=False)
    assert result["predictions"] == ["low", "high high low", "high note"]
    assert scored["refs"] == [["a dog barks"], ["a cat meows"], ["a piano plays"]]


# ---- crops, clips too short ------------------------------------------------------------------------------------------

def test_cropping_warns_once_per_evaluation_with_the_count(long_clips, stage1, caplog):
    crop = tiny.processor(max_audio_seconds=1.0)
    with caplog.at_level(logging.WARNING):
        result = evaluate_classification(stage1, crop, long_clips, mode="embedding", batch_size=1, progress=False)
    cropped = [record.getMessage() for record in caplog.records if "cropped" in record.getMessage()]
    assert cropped == ["2 clips are longer than 1.0 s and were cropped to their first 1.0 s; pass "
                       "long_audio_policy='window' (mint eval --long-audio-policy window) to use all of their audio."]
    assert result["num_cropped"] == 2 and result["long_audio_policy"] == "crop"


@pytest.fixture(scope="module")
def with_a_short_clip(tmp_path_factory):
    folder = tmp_path_factory.mktemp("short")
    paths = []
    for i, sound in enumerate(clips((9000, 8000, 304, 12000))):  # row 2 lasts 19 ms
        paths.append(str(folder / f"clip{i}.wav"))
        soundfile.write(paths[-1], sound, 16000)
    data = Dataset.from_dict({"audio": paths, "label": ["dog", "cat", "dog", "piano"],
                              "caption": ["a dog barks", "a cat meows", "a dog", "a piano plays"]})
    return data.cast_column("audio", Audio())


def test_a_clip_too_short_is_named_by_row_and_file_or_skipped(with_a_short_clip, stage1, caplog):
    processor = tiny.processor()
    path = with_a_short_clip.cast_column("audio", Audio(decode=False))[2]["audio"]["path"]
    # Before: "audio clip 0 lasts 19.0 ms" (its place in a batch of one) aborted the evaluation.
    with pytest.raises(ValueError, match=rf"Row 2 of the dataset \({path!r}\): lasts 19.0 ms; the audio encoder needs "
                                         r"at least 25 ms. Pass skip_invalid=True \(mint eval --skip-invalid\)"):
        evaluate_classification(stage1, processor, with_a_short_clip, mode="embedding", batch_size=1, progress=False)
    with caplog.at_level(logging.WARNING):
        result = evaluate_classification(stage1, processor, with_a_short_clip, mode="embedding", skip_invalid=True,
                                         progress=False)
    assert f"Row 2 of the dataset ({path!r}) is skipped" in caplog.text
    caplog.clear()
    assert result["num_clips"] == 3 and result["num_skipped"] == 1
    reason = "lasts 19.0 ms; the audio encoder needs at least 25 ms."
    assert result["skipped"] == [{"row": 2, "path": path, "reason": reason}]
    others = evaluate_classification(stage1, processor, with_a_short_clip.select([0, 1, 3]), mode="embedding",
                                     candidates=LABELS, progress=False)
    assert result["predictions"] == others["predictions"] and result["accuracy"] == others["accuracy"]
    with caplog.at_level(logging.WARNING):
        retrieval = evaluate_retrieval(stage1, processor, with_a_short_clip, skip_invalid=True, progress=False)
    assert "Row 2 of the dataset" in caplog.text
    assert (retrieval["num_clips"], retrieval["num_queries"], retrieval["num_skipped"]) == (3, 3, 1)


# ---- label templates ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("template, error, words", [
    ("This is a sound of", ValueError, ["label_template must hold exactly one '{}' (or '{label}')"]),
    ("A {name} sound", ValueError, ["label_template must hold exactly one", "'A {name} sound'"]),
    ("A {label} and a {} sound", ValueError, ["label_template must hold exactly one"]),
    ("A {label sound", ValueError, ["label_template must hold exactly one"]),
    (["A {} sound", "A sound"], ValueError, ["label_template 1 must hold exactly one"]),
    (["A {} sound", "A {} sound"], ValueError, ["label_template repeats a template"]),
    (["A {} sound", 3], TypeError, ["label_template 1 must be a string"]),
    ([], ValueError, ["label_template must be a template", "non-empty list"]),
])
@pytest.mark.parametrize("entry", ["evaluate_classification", "embedding_scores"])
def test_label_templates_need_one_placeholder_each(entry, template, error, words, long_clips, stage1):
    processor = tiny.processor()
    with pytest.raises(error) as caught:
        if entry == "evaluate_classification":
            evaluate_classification(stage1, processor, long_clips, mode="embedding", label_template=template,
                                    progress=False)
        else:
            embedding_scores(stage1, processor, long_clips, LABELS, template, progress=False)
    assert all(word in str(caught.value) for word in words), str(caught.value)


def test_label_templates_are_for_embeddings_and_prompts_for_ranking(long_clips, stage1, stage2):
    processor = tiny.processor()
    with pytest.raises(ValueError, match="prompt and template are for mode='llm'"):
        evaluate_classification(stage1, processor, long_clips, mode="embedding", prompt="This is", progress=False)
    with pytest.raises(ValueError, match="label_template is for mode='embedding'"):
        evaluate_classification(stage2, processor, long_clips, prompt=PROMPT, label_template="{label}",
                                progress=False)
