"""Zero-shot by embeddings over a set of label templates, and vocabulary ranking calibrated by a content-free input:
each against its hand computation, through the function and the command."""

import json

import numpy as np
import pytest
import soundfile
import torch
import torch.nn.functional as F
from datasets import Audio, ClassLabel, Dataset

import mint.cli
import mint.evaluation.classification
from mint.evaluation.classification import evaluate_classification, vocabulary_ranking_scores
from pipelines_mint import HYPOTHESIS_TEMPLATE_SET
from tests.utils.audio import clips


LABELS = ["dog", "cat", "piano"]
PROMPT = "This is a sound of"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("templates")
    paths = []
    for i, clip in enumerate(clips((16000, 12000, 9000, 14000, 10000))):
        paths.append(str(folder / f"clip{i}.wav"))
        soundfile.write(paths[-1], clip, 16000)
    return Dataset.from_dict({"audio": paths, "label": [0, 1, 2, 0, 1]}).cast_column("audio", Audio()).cast_column(
        "label", ClassLabel(names=LABELS))


@torch.no_grad()
def similarities_by_hand(model, processor, dataset, templates):
    """Each clip's best query similarity to the mean of the templates' normalised text embeddings, normalised."""
    audio = model.get_audio_features(**processor(audio=dataset.cast_column("audio", Audio(decode=False))["audio"]))
    per_template = []
    for template in templates:
        tokens = processor(text=[template.format(label, label=label) for label in LABELS], return_llm_inputs=False)
        text = model.get_text_features(tokens["qformer_input_ids"], tokens["qformer_attention_mask"]).pooler_output
        per_template.append(F.normalize(text, dim=-1))
    text = F.normalize(torch.stack(per_template).mean(0), dim=-1)
    return torch.einsum("aqd,cd->acq", audio.pooler_output, text).amax(-1).numpy()


def test_the_default_label_templates_are_the_set_averaged(data, stage1, processor):
    result = evaluate_classification(stage1, processor, data, mode="embedding", progress=False)
    expected = similarities_by_hand(stage1, processor, data, HYPOTHESIS_TEMPLATE_SET)
    assert result["label_template"] == list(HYPOTHESIS_TEMPLATE_SET)
    assert result["label_template"][0] == "This is a sound of {}."
    assert result["predictions"] == [LABELS[i] for i in expected.argmax(1)]
    assert result["accuracy"] == pytest.approx(np.mean(expected.argmax(1) == np.array(data["label"])))


def test_a_template_set_changes_the_scores_and_one_template_keeps_them(data, stage1, processor):
    pair = ["A recording of {label}.", "The sound of {}."]
    scores = mint.evaluation.classification.embedding_scores(stage1, processor, data, LABELS, pair, progress=False)
    assert np.allclose(scores, similarities_by_hand(stage1, processor, data, pair), atol=1e-5)
    one = mint.evaluation.classification.embedding_scores(stage1, processor, data, LABELS, "A recording of {label}.",
                                                          progress=False)
    assert np.allclose(one, similarities_by_hand(stage1, processor, data, ["A recording of {}."]), atol=1e-5)
    assert not np.allclose(one, scores, atol=1e-4)


def test_calibration_subtracts_the_content_free_scores(data, stage2, processor):
    raw = vocabulary_ranking_scores(stage2, processor, data, LABELS, PROMPT, progress=False)
    calibrated = vocabulary_ranking_scores(stage2, processor, data, LABELS, PROMPT, progress=False, calibrate=True)
    # By hand: the candidates' scores for a silent clip of the processor's minimum length, after the same prompt.
    silence = np.zeros(int(min(processor.min_audio_seconds, processor.max_audio_seconds) * 16000), dtype=np.float32)
    with torch.no_grad():
        prior = stage2.score_candidates(**processor.tokenize_candidates(LABELS),
                                        **processor(audio=[silence], text=[PROMPT], sampling_rate=16000))[0].numpy()
    assert np.allclose(calibrated, raw - prior[None], atol=1e-4)


def test_calibration_can_change_the_ranking_and_is_recorded(data, stage2, processor, monkeypatch):
    raw = vocabulary_ranking_scores(stage2, processor, data, LABELS, PROMPT, progress=False)
    # A prior that favours each clip's first choice by 100 nats moves every prediction to the best other label.
    best = int(np.bincount(raw.argmax(1), minlength=3).argmax())
    prior = torch.zeros(3)
    prior[best] = 100.0
    monkeypatch.setattr(mint.evaluation.classification, "content_free_scores", lambda *args, **kwargs: prior)
    result = evaluate_classification(stage2, processor, data, prompt=PROMPT, calibrate=True, progress=False)
    expected = (raw - prior.numpy()[None]).argmax(1)
    assert result["predictions"] == [LABELS[i] for i in expected] and best not in expected
    assert result["accuracy"] == pytest.approx(np.mean(expected == np.array(data["label"])))
    assert (result["calibrate"], result["length_normalize"]) == (True, False)
    monkeypatch.undo()
    plain = evaluate_classification(stage2, processor, data, prompt=PROMPT, progress=False)
    assert plain["calibrate"] is False and plain["predictions"] == [LABELS[i] for i in raw.argmax(1)]


def test_returned_scores_are_the_ranking_scores_and_give_the_length_normalised_ranking(data, stage2, processor):
    """`return_scores` returns the summed scores the predictions come from; over each candidate's token count (the
    end-of-sequence token included) they are `length_normalize`'s scores, which the demo ranks by in the same pass."""
    candidates = LABELS + ["a very loud dog"]
    result = evaluate_classification(stage2, processor, data, candidates=candidates, prompt=PROMPT, progress=False,
                                     return_scores=True)
    summed = vocabulary_ranking_scores(stage2, processor, data, candidates, PROMPT, progress=False)
    assert result["candidates"] == candidates and result["scores"].dtype == np.float32
    np.testing.assert_allclose(result["scores"], summed, rtol=1e-6)
    assert result["predictions"] == [candidates[i] for i in summed.argmax(1)]
    tokens = processor.tokenize_candidates(candidates)["candidate_attention_mask"].sum(-1).numpy()
    assert len(set(tokens.tolist())) > 1  # labels of different lengths: the division can change the ranking
    normalised = vocabulary_ranking_scores(stage2, processor, data, candidates, PROMPT, progress=False,
                                           length_normalize=True)
    np.testing.assert_allclose(result["scores"] / tokens, normalised, rtol=1e-5)
    assert "scores" not in evaluate_classification(stage2, processor, data, prompt=PROMPT, progress=False)


@pytest.mark.parametrize("mode, options, words", [
    ("embedding", {"calibrate": True}, ["calibrate is for mode='llm'"]),
    ("embedding", {"length_normalize": True}, ["length_normalize is for mode='llm'"]),
    ("llm", {"prompt": ""}, ["prompt is ''", "instruction before the candidates", "'This is a sound of'"]),
    ("llm", {"prompt": "   "}, ["prompt is '   '"]),
    ("llm", {"prompt": PROMPT, "known_column": "label"}, ["known_column 'label'", "multi_label=True",
                                                         "--multi-label"]),
    ("llm", {"prompt": PROMPT, "return_scores": "yes"}, ["return_scores must be True or False", "'yes'"]),
    ("embedding", {"return_scores": 1}, ["return_scores must be True or False", "got 1"]),
    ("llm", {"prompt": PROMPT, "length_normalize": "no"}, ["length_normalize must be True or False", "'no'"]),
    ("llm", {"prompt": PROMPT, "calibrate": "no"}, ["calibrate must be True or False", "'no'"]),
    ("llm", {"prompt": PROMPT, "multi_label": "yes"}, ["multi_label must be True or False"]),
    ("embedding", {"skip_invalid": 1}, ["skip_invalid must be True or False", "got 1"]),
    ("llm", {"prompt": PROMPT, "batch_size": 0}, ["batch_size must be a positive integer", "got 0"]),
    ("embedding", {"batch_size": 1.5}, ["batch_size must be a positive integer", "1.5"]),
    ("embedding", {"batch_size": True}, ["batch_size must be a positive integer", "True"]),
])
def test_options_of_the_wrong_mode_or_empty_are_refused(mode, options, words, data, stage1, stage2, processor):
    model = stage2 if mode == "llm" else stage1
    with pytest.raises(ValueError) as caught:
        evaluate_classification(model, processor, data, mode=mode, progress=False, **options)
    assert all(word in str(caught.value) for word in words), str(caught.value)


@pytest.fixture(scope="module")
def folders(tmp_path_factory, data, stage1, stage2, processor):
    root = tmp_path_factory.mktemp("template-cli")
    for name, model in (("stage1", stage1), ("stage2", stage2)):
        model.save_pretrained(root / name)
        processor.save_pretrained(root / name)
    data.save_to_disk(str(root / "data"))
    return root


def test_mint_eval_zero_shot_takes_repeated_templates_or_a_file(folders, data, stage1, processor):
    templates = ["A recording of {label}.", "The sound of {}."]
    (folders / "templates.txt").write_text("A recording of {label}.\n\n  The sound of {}.  \n")
    base = ["eval", "zero-shot", "--model", str(folders / "stage1"), "--dataset", str(folders / "data"), "--quiet"]
    written = []
    for name, options in (("repeated", ["--label-template", templates[0], "--label-template", templates[1]]),
                          ("file", ["--label-template-file", str(folders / "templates.txt")])):
        assert mint.cli.main(base + options + ["--output", str(folders / f"{name}.json")]) == 0
        written.append(json.loads((folders / f"{name}.json").read_text()))
    expected = evaluate_classification(stage1, processor, data, mode="embedding", label_template=templates,
                                       progress=False)
    for result in written:
        assert result["label_template"] == templates and result["predictions"] == expected["predictions"]
        assert result["split"] is None  # a dataset without splits is read whole


def test_mint_eval_classify_calibrate(folders, data, stage2, processor):
    output = folders / "calibrated.json"
    assert mint.cli.main(["eval", "classify", "--model", str(folders / "stage2"), "--dataset", str(folders / "data"),
                          "--prompt", PROMPT, "--calibrate", "--quiet", "--output", str(output)]) == 0
    written = json.loads(output.read_text())
    expected = evaluate_classification(stage2, processor, data, prompt=PROMPT, calibrate=True, progress=False)
    assert written["calibrate"] is True and written["predictions"] == expected["predictions"]


@pytest.mark.parametrize("content, words", [
    (None, ["--label-template-file", "cannot be read"]),
    ("\n  \n", ["holds no template", "one per line"]),
    ("A sound\n", ["template must hold exactly one '{}'"]),
    ("A {} sound\nA {} sound\n", ["repeats a template"]),
    (b"\xff\xfeA {}", ["cannot be read as UTF-8"]),
])
def test_a_bad_template_file_is_refused_before_loading(content, words, tmp_path, capsys):
    path = tmp_path / "templates.txt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    argv = ["eval", "zero-shot", "--model", str(tmp_path / "model"), "--dataset", str(tmp_path / "data"),
            "--label-template-file", str(path)]
    assert mint.cli.main(argv) == 1
    message = capsys.readouterr().err
    assert message.startswith("error: ") and all(word in message for word in words), message
