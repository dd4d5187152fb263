"""The pipelines' bad inputs, table by table: candidate labels, options of another scoring, the kind of model; each row
gives the input, the error type and the words of the message."""

import pytest
import torch
from transformers import pipeline

from modeling_mint import MintForConditionalGeneration, MintForPreTraining, MintModel
from pipelines_mint import ZERO_SHOT_TASK, register_mint_pipelines
from tests.utils import tiny
from tests.utils.audio import clips


register_mint_pipelines()
CLIP = clips((16000,))[0]


@pytest.fixture(scope="module")
def stage1_classifier(processor):
    torch.manual_seed(0)
    return pipeline(ZERO_SHOT_TASK, model=MintForPreTraining(tiny.mint_config()), processor=processor, device="cpu")


@pytest.fixture(scope="module")
def stage2_classifier(processor):
    torch.manual_seed(0)
    model = MintForConditionalGeneration(tiny.mint_config())
    return pipeline(ZERO_SHOT_TASK, model=model, processor=processor, device="cpu")


BAD_CANDIDATES = [
    (["dog", "", "cat"], ValueError, ["candidate_labels", "positions 1 ('')", "empty or whitespace"]),
    (["dog", "  ", "cat"], ValueError, ["candidate_labels", "positions 1 ('  ')"]),
    ("dog,,cat", ValueError, ["candidate_labels", "positions 1 ('')"]),
    ("dog,cat,", ValueError, ["candidate_labels", "positions 2 ('')"]),
    (["dog", "cat", "dog"], ValueError, ["candidate_labels", "repeated", "'dog' at positions [0, 2]"]),
    ("dog, cat, cat", ValueError, ["candidate_labels", "'cat' at positions [1, 2]"]),
    ([], ValueError, ["candidate_labels is empty"]),
    (["dog", None], TypeError, ["candidate_labels", "positions 1 (None)", "not strings"]),
    (7, TypeError, ["candidate_labels must be a list of label names", "int"]),
]


@pytest.mark.parametrize("candidates, error, words", BAD_CANDIDATES)
@pytest.mark.parametrize("scoring", ["llm", "embedding", "matching"])
def test_zero_shot_refuses_bad_candidates(scoring, candidates, error, words, stage1_classifier, stage2_classifier):
    classifier = stage2_classifier if scoring == "llm" else stage1_classifier
    with pytest.raises(error) as caught:
        classifier(CLIP, candidate_labels=candidates, sampling_rate=16000, scoring=scoring)
    assert all(word in str(caught.value) for word in words), str(caught.value)


BAD_OPTIONS = [
    ("embedding", dict(prompt="A sound of"), ["prompt is for scoring='llm'", "scoring='embedding'"]),
    ("embedding", dict(length_normalize=True), ["length_normalize is for scoring='llm'"]),
    ("matching", dict(prompt="A sound of"), ["prompt is for scoring='llm'", "scoring='matching'"]),
    ("matching", dict(length_normalize=True), ["length_normalize is for scoring='llm'"]),
    ("llm", dict(hypothesis_template="A sound of {}."), ["hypothesis_template is for scoring='embedding' or "
                                                         "'matching'", "prompt="]),
    ("embedding", dict(hypothesis_template="no slot"), ["exactly one '{}'"]),
    ("embedding", dict(scoring="nearest"), ["scoring must be one of"]),
    ("embedding", dict(scoring="llm"), ["scoring='llm' needs a MintForConditionalGeneration"]),
    ("llm", dict(scoring="embedding"), ["scoring='embedding' needs a MintModel"]),
    ("llm", dict(top_k=3), ["unexpected parameters ['top_k']"]),
    ("llm", dict(prompt=""), ["prompt is ''", "empty or whitespace only", "None for the default 'This is a sound of'"]),
    ("llm", dict(prompt=" \n"), ["prompt is ' \\n'", "empty or whitespace only"]),
    ("llm", dict(prompt=3), ["prompt must be a string", "got int"]),
]


@pytest.mark.parametrize("stage_scoring, options, words", BAD_OPTIONS)
def test_zero_shot_refuses_options_of_another_scoring(stage_scoring, options, words, stage1_classifier,
                                                     stage2_classifier):
    classifier = stage2_classifier if stage_scoring == "llm" else stage1_classifier
    options = {"scoring": stage_scoring, **options}
    error = TypeError if "top_k" in options or options.get("prompt") == 3 else ValueError
    with pytest.raises(error) as caught:
        classifier(CLIP, candidate_labels=["dog", "cat"], sampling_rate=16000, **options)
    assert all(word in str(caught.value) for word in words), str(caught.value)


def test_options_of_the_chosen_scoring_are_used(stage1_classifier, stage2_classifier):
    plain = stage2_classifier(CLIP, candidate_labels=["dog", "cat"], sampling_rate=16000)
    assert stage2_classifier(CLIP, candidate_labels=["dog", "cat"], sampling_rate=16000, prompt="This is a sound of",
                             length_normalize=False) == plain
    plain = stage1_classifier(CLIP, candidate_labels=["dog", "cat"], sampling_rate=16000)
    assert stage1_classifier(CLIP, candidate_labels=["dog", "cat"], sampling_rate=16000,
                             hypothesis_template="This is a sound of {}.") == plain
    other = stage1_classifier(CLIP, candidate_labels=["dog", "cat"], sampling_rate=16000,
                              hypothesis_template="A recording of {}.")
    assert [r["score"] for r in other] != [r["score"] for r in plain]


@pytest.fixture(scope="module")
def captioner(processor):
    torch.manual_seed(0)
    return pipeline("audio-to-text", model=MintForConditionalGeneration(tiny.mint_config()), processor=processor,
                    device="cpu")


BAD_CAPTION_CALLS = [
    (dict(prompt=""), ValueError, ["prompt is ''", "empty or whitespace only", "None for the soft prompt alone"]),
    (dict(prompt="   "), ValueError, ["prompt is '   '", "empty or whitespace only"]),
    (dict(prompt=["a"]), TypeError, ["prompt must be a string", "got list"]),
    (dict(num_beams=0), ValueError, ["num_beams must be a positive integer, got 0"]),
    (dict(generate_kwargs={"num_beams": -2}), ValueError, ["num_beams must be a positive integer, got -2"]),
    (dict(num_beams=1.5), ValueError, ["num_beams must be a positive integer, got 1.5"]),
    (dict(num_return_sequences=0), ValueError, ["num_return_sequences must be a positive integer, got 0"]),
    (dict(num_beam_groups=True), ValueError, ["num_beam_groups must be a positive integer, got True"]),
    (dict(bogus=1), TypeError, ["unexpected parameters ['bogus']"]),
]


@pytest.mark.parametrize("options, error, words", BAD_CAPTION_CALLS)
def test_audio_to_text_refuses_bad_options(options, error, words, captioner):
    with pytest.raises(error) as caught:
        captioner(CLIP, sampling_rate=16000, **options)
    assert all(word in str(caught.value) for word in words), str(caught.value)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Models a pipeline may be handed that cannot serve it: an LLM built from a stage-1 checkpoint's config, embedding
    heads that a stage-2 checkpoint never had, a headless model without the matching head."""
    folder = tmp_path_factory.mktemp("stage1")
    torch.manual_seed(0)
    MintForPreTraining(tiny.mint_config()).save_pretrained(folder)
    random_heads = MintForPreTraining(tiny.mint_config())
    random_heads.config.architectures = ["MintForConditionalGeneration"]  # as if its weights came from stage 2
    return {"untrained_llm": MintForConditionalGeneration.from_pretrained(folder), "random_heads": random_heads,
            "headless": MintModel(tiny.mint_config()), "stage1": MintForPreTraining.from_pretrained(folder)}


WRONG_MODELS = [
    ("audio-to-text", "untrained_llm", {}, ["audio-to-text needs a stage-2 MINT", "loaded from the stage-1 checkpoint",
                                           "random weights"]),
    ("audio-to-text", "stage1", {}, ["audio-to-text needs a stage-2 MINT", "got MintForPreTraining", "no LLM"]),
    (ZERO_SHOT_TASK, "untrained_llm", {"scoring": "llm"}, ["scoring='llm' needs a MintForConditionalGeneration",
                                                           "loaded from the stage-1 checkpoint"]),
    (ZERO_SHOT_TASK, "random_heads", {}, ["scoring='embedding' needs a MintModel",
                                          "loaded from the stage-2 checkpoint"]),
    (ZERO_SHOT_TASK, "random_heads", {"scoring": "matching"}, ["loaded from the stage-2 checkpoint"]),
    (ZERO_SHOT_TASK, "headless", {"scoring": "matching"}, ["needs a MintForPreTraining", "no ALM matching head"]),
]


@pytest.mark.parametrize("task, kind, options, words", WRONG_MODELS)
def test_pipelines_refuse_a_model_of_the_wrong_kind(task, kind, options, words, models, processor):
    with pytest.raises(ValueError) as caught:
        classifier = pipeline(task, model=models[kind], processor=processor, device="cpu")  # the default scoring
        classifier(CLIP, candidate_labels=["dog", "cat"], sampling_rate=16000, **options)
    assert all(word in str(caught.value) for word in words), str(caught.value)


@pytest.mark.parametrize("captions, text, kept", [
    (["a dog barks", "  ", "rain falls"], "[0.0-1.0 s] a dog barks [2.0-2.5 s] rain falls", [0, 2]),
    (["", "\n", " "], "", []),
    (["one", "two", "three"], "[0.0-1.0 s] one [1.0-2.0 s] two [2.0-2.5 s] three", [0, 1, 2]),
])
def test_window_captions_are_joined_with_their_times_and_empty_ones_left_out(captions, text, kept, monkeypatch):
    torch.manual_seed(0)
    captioner = pipeline("audio-to-text", model=MintForConditionalGeneration(tiny.mint_config()),
                         processor=tiny.processor(max_audio_seconds=1.0), device="cpu")
    monkeypatch.setattr(captioner.processor, "batch_decode", lambda ids: list(captions))
    long_clip = torch.cat([torch.from_numpy(c) for c in clips((16000, 16000, 8000))]).numpy()
    out = captioner(long_clip, sampling_rate=16000, long_audio_policy="window", max_new_tokens=2)
    bounds = [(0.0, 1.0), (1.0, 2.0), (2.0, 2.5)]
    assert out == {"generated_text": text,
                   "chunks": [{"timestamp": bounds[i], "generated_text": captions[i].strip()} for i in kept]}
