"""Template sets in zero-shot by embeddings (prompt ensembling) and calibrated vocabulary ranking, computed by hand
against the model's own features; the functions' and the pipeline options' bad inputs, table by table."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from transformers import pipeline

from modeling_mint import MintForConditionalGeneration, MintForPreTraining
from pipelines_mint import (
    HYPOTHESIS_TEMPLATE_SET,
    ZERO_SHOT_TASK,
    check_label_templates,
    content_free_scores,
    register_mint_pipelines,
    template_text_embeddings,
)
from tests.utils import tiny
from tests.utils.audio import clips


register_mint_pipelines()
LABELS = ["dog", "cat", "piano"]
TEMPLATES = ["This is a sound of {}.", "A recording of {label}."]


@pytest.fixture(scope="module")
def stage1(processor):
    torch.manual_seed(0)
    return tiny.amplify_audio(MintForPreTraining(tiny.mint_config())).eval()


@pytest.fixture(scope="module")
def stage2(processor):
    torch.manual_seed(0)
    return MintForConditionalGeneration(tiny.mint_config()).eval()


def _text_features(model, processor, texts):
    tokens = processor(text=texts, return_llm_inputs=False)
    with torch.no_grad():
        return model.get_text_features(tokens["qformer_input_ids"], tokens["qformer_attention_mask"]).pooler_output


def test_template_embeddings_are_the_renormalised_mean_over_templates(stage1, processor):
    first = _text_features(stage1, processor, [f"This is a sound of {label}." for label in LABELS])
    second = _text_features(stage1, processor, [f"A recording of {label}." for label in LABELS])
    mean = (first + second) / 2
    expected = mean / mean.norm(dim=-1, keepdim=True)
    found = template_text_embeddings(stage1, processor, LABELS, TEMPLATES)
    assert found.shape == (3, 16)
    torch.testing.assert_close(found, expected, atol=1e-6, rtol=0)
    assert found.norm(dim=-1).tolist() == pytest.approx([1.0] * 3, abs=1e-6)
    # One template: its embeddings as they are, in batches or not.
    assert torch.equal(template_text_embeddings(stage1, processor, LABELS, TEMPLATES[0]), first)
    torch.testing.assert_close(template_text_embeddings(stage1, processor, LABELS, TEMPLATES, batch_size=2),
                               expected, atol=1e-5, rtol=0)


def test_the_pipeline_scores_a_template_set_by_its_mean_embedding(stage1, processor):
    classifier = pipeline(ZERO_SHOT_TASK, model=stage1, processor=processor, device="cpu")
    audio = clips((16000, 12000))
    with torch.no_grad():
        audio_embeds = stage1.get_audio_features(**processor(audio=list(audio), sampling_rate=16000)).pooler_output
    templates = ["This is a sound of {}.", "A recording of {}."]
    text = F.normalize(sum(_text_features(stage1, processor, [t.format(label) for label in LABELS])
                           for t in templates) / 2, dim=-1)
    # The ALC similarity by hand: the best query per clip and text, at the learnt temperature.
    similarity = torch.einsum("aqd,td->atq", audio_embeds, text).amax(-1) / stage1.temp.clamp(0.001, 0.5)
    results = classifier(list(audio), candidate_labels=LABELS, sampling_rate=16000, hypothesis_template=templates)
    for result, row in zip(results, similarity.softmax(-1)):
        by_label = {r["label"]: r["score"] for r in result}
        assert [by_label[label] for label in LABELS] == pytest.approx(row.tolist(), abs=1e-5)
    single = classifier(audio[0], candidate_labels=LABELS, sampling_rate=16000,
                        hypothesis_template=["This is a sound of {}."])
    assert single == classifier(audio[0], candidate_labels=LABELS, sampling_rate=16000)
    assert HYPOTHESIS_TEMPLATE_SET[0] == "This is a sound of {}."
    ensembled = classifier(audio[0], candidate_labels=LABELS, sampling_rate=16000,
                           hypothesis_template=HYPOTHESIS_TEMPLATE_SET)
    assert sum(r["score"] for r in ensembled) == pytest.approx(1.0, abs=1e-6)


def test_matching_scores_average_over_templates(stage1, processor):
    classifier = pipeline(ZERO_SHOT_TASK, model=stage1, processor=processor, device="cpu")
    audio = clips((16000,))[0]
    per_template = [{r["label"]: r["score"] for r in classifier(audio, candidate_labels=LABELS, sampling_rate=16000,
                                                                scoring="matching", hypothesis_template=t)}
                    for t in ("This is a sound of {}.", "A recording of {}.")]
    both = {r["label"]: r["score"] for r in classifier(
        audio, candidate_labels=LABELS, sampling_rate=16000, scoring="matching",
        hypothesis_template=["This is a sound of {}.", "A recording of {}."])}
    for label in LABELS:
        assert both[label] == pytest.approx((per_template[0][label] + per_template[1][label]) / 2, abs=1e-6)


def test_content_free_scores_are_those_of_a_silent_clip(stage2, processor):
    silence = np.zeros(int(processor.min_audio_seconds * 16000), dtype=np.float32)
    tokens = processor.tokenize_candidates(LABELS)
    for prompt, normalise in (("This is a sound of", False), (None, True)):
        batch = processor(audio=[silence], text=None if prompt is None else [prompt], sampling_rate=16000)
        with torch.no_grad():
            expected = stage2.score_candidates(**tokens, **batch, length_normalize=normalise)[0]
        found = content_free_scores(stage2, processor, LABELS, prompt, length_normalize=normalise)
        assert found.shape == (3,) and found.dtype == torch.float32
        assert torch.equal(found, expected.float())


def test_calibrated_ranking_subtracts_the_content_free_scores(stage2, processor):
    classifier = pipeline(ZERO_SHOT_TASK, model=stage2, processor=processor, device="cpu")
    audio = clips((16000, 12000))
    batch = processor(audio=list(audio), text=["This is a sound of"] * 2, sampling_rate=16000)
    with torch.no_grad():
        raw = stage2.score_candidates(**processor.tokenize_candidates(LABELS), **batch)
    prior = content_free_scores(stage2, processor, LABELS, "This is a sound of")
    expected = (raw - prior).softmax(-1)
    results = classifier(list(audio), candidate_labels=LABELS, sampling_rate=16000, calibrate=True, batch_size=2)
    for result, row in zip(results, expected):
        by_label = {r["label"]: r["score"] for r in result}
        assert [by_label[label] for label in LABELS] == pytest.approx(row.tolist(), abs=1e-5)
    # Calibration moves the scores (the prior is not flat), and calibrate=False is the plain ranking.
    assert float(prior.max() - prior.min()) > 1e-3
    plain = classifier(audio[0], candidate_labels=LABELS, sampling_rate=16000)
    assert classifier(audio[0], candidate_labels=LABELS, sampling_rate=16000, calibrate=False) == plain
    assert {r["label"]: r["score"] for r in plain} != pytest.approx(
        {r["label"]: r["score"] for r in results[0]}, abs=1e-3)


BAD_TEMPLATES = [
    ("no slot", {}, ValueError, ["hypothesis_template", "exactly one '{}' (or '{label}')", "'no slot'"]),
    ("{} and {}", {}, ValueError, ["exactly one"]),
    ("{label} {}", {}, ValueError, ["exactly one"]),
    ("{0}", {}, ValueError, ["exactly one"]),
    ("a {", {}, ValueError, ["exactly one", "'a {'"]),
    ("{label}", dict(named=False), ValueError, ["exactly one '{}' for the label", "'{label}'"]),
    ([], {}, ValueError, ["non-empty list"]),
    (None, {}, ValueError, ["non-empty list"]),
    (["A {}.", 3], {}, TypeError, ["hypothesis_template 1", "string", "int"]),
    (["A {}.", "no slot"], dict(name="--template"), ValueError, ["--template 1", "exactly one"]),
    (["A {}.", "A {}."], {}, ValueError, ["repeats a template", "each template once"]),
]


@pytest.mark.parametrize("templates, options, error, words", BAD_TEMPLATES)
def test_check_label_templates_refuses(templates, options, error, words):
    with pytest.raises(error) as caught:
        check_label_templates(templates, **options)
    assert all(word in str(caught.value) for word in words), str(caught.value)


def test_check_label_templates_accepts_both_placeholders():
    assert check_label_templates("A {}.") == ["A {}."]
    assert check_label_templates(("A {}.", "The {label}.")) == ["A {}.", "The {label}."]


BAD_CALLS = [
    ("stage2", template_text_embeddings, dict(labels=LABELS, templates="A {}."), ValueError,
     ["needs a MintModel", "stage 1"]),
    ("stage1", content_free_scores, dict(candidates=LABELS, prompt="This is"), ValueError,
     ["Calibrated vocabulary ranking", "needs a MintForConditionalGeneration"]),
    ("stage1", template_text_embeddings, dict(labels=["dog", " "], templates="A {}."), ValueError,
     ["candidate_labels", "positions 1"]),
    ("stage2", content_free_scores, dict(candidates=["dog", "dog"], prompt=None), ValueError,
     ["candidates", "repeated"]),
]


@pytest.mark.parametrize("model, function, arguments, error, words", BAD_CALLS)
def test_the_functions_refuse_bad_inputs(model, function, arguments, error, words, request, processor):
    with pytest.raises(error) as caught:
        function(request.getfixturevalue(model), processor, **arguments)
    assert all(word in str(caught.value) for word in words), str(caught.value)


BAD_OPTIONS = [
    ("embedding", dict(calibrate=True), ["calibrate is for scoring='llm'", "scoring='embedding'"]),
    ("matching", dict(calibrate=True), ["calibrate is for scoring='llm'"]),
    ("embedding", dict(hypothesis_template=["A {}.", "{label}"]), ["hypothesis_template 1", "exactly one '{}'"]),
    ("embedding", dict(hypothesis_template=[]), ["non-empty list"]),
    ("llm", dict(hypothesis_template=["A {}."]), ["hypothesis_template is for scoring='embedding'"]),
]


@pytest.mark.parametrize("scoring, options, words", BAD_OPTIONS)
def test_the_pipeline_refuses_options_of_another_scoring(scoring, options, words, stage1, stage2, processor):
    model = stage2 if scoring == "llm" else stage1
    classifier = pipeline(ZERO_SHOT_TASK, model=model, processor=processor, device="cpu")
    with pytest.raises(ValueError) as caught:
        classifier(clips((16000,))[0], candidate_labels=LABELS, sampling_rate=16000, scoring=scoring, **options)
    assert all(word in str(caught.value) for word in words), str(caught.value)
