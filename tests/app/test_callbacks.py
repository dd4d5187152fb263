"""The app's callbacks without a page: what each tab shows equals the package's pipelines and index on the same clip,
and bad input is refused with the package's message."""

import os
import subprocess
import sys

import gradio as gr
import pytest
from matplotlib.figure import Figure

from mint.app.callbacks import MintApp, audio_files, parse_labels
from mint.app.layout import shown_in_page
from mint.evaluation.retrieval_index import MintRetrievalIndex
from modeling_mint import MintForPreTraining
from pipelines_mint import MintAudioToTextPipeline, MintCheckpoint, MintZeroShotAudioClassificationPipeline
from processing_mint import MintProcessor
from tests.utils import ROOT
from tests.utils.tiny import WORDS


@pytest.fixture(scope="module")
def app(stage2_folder, stage1_folder):
    return MintApp(stage2_folder, stage1=stage1_folder, generate_kwargs=WORDS)


@pytest.fixture(scope="module")
def stage1_app(stage1_folder):
    return MintApp(stage1_folder)


def pipeline_of(folder, cls):
    return cls(model=MintCheckpoint.from_pretrained(folder), processor=MintProcessor.from_pretrained(folder),
               device="cpu")


def test_what_each_model_offers(app, stage1_app, stage2_folder):
    assert app.scoring_modes == ["llm", "embedding", "matching"] and app.can_caption and app.can_retrieve
    assert stage1_app.scoring_modes == ["embedding", "matching"]
    assert not stage1_app.can_caption and stage1_app.can_retrieve
    assert "Captioning needs a stage-2 model" in stage1_app.description()
    names = [os.path.basename(app.sources[role]) for role in ("model", "stage1")]  # local folders by their names
    assert app.description().splitlines()[0] == f"**Model** `{names[0]}`, **stage 1** `{names[1]}`"
    alone = MintApp(stage2_folder)
    assert alone.scoring_modes == ["llm"] and alone.can_caption and not alone.can_retrieve
    assert "--stage1 FOLDER" in alone.description()


def test_caption_is_the_pipelines_text(app, stage2_folder, clip_folder):
    captioner = pipeline_of(stage2_folder, MintAudioToTextPipeline)
    for name in ("tone.wav", "chirp.flac", os.path.join("more", "clicks.ogg")):
        path = os.path.join(clip_folder, name)
        assert app.caption(path) == captioner(path, **WORDS)["generated_text"]
        assert app.caption(path, "this is a sound of") == \
            captioner(path, prompt="this is a sound of", **WORDS)["generated_text"]
    path = os.path.join(clip_folder, "tone.wav")
    assert app.caption(path, "  ") == captioner(path, prompt=None, **WORDS)["generated_text"]  # the soft prompt alone
    captions = {app.caption(os.path.join(clip_folder, name)) for name in ("tone.wav", "chirp.flac", "noise.wav")}
    assert len(captions) == 3 and all(len(text.split()) == 4 for text in captions)


@pytest.mark.parametrize("scoring, folder", [("llm", "stage2_folder"), ("embedding", "stage1_folder"),
                                             ("matching", "stage1_folder")])
def test_scores_are_the_pipelines(app, scoring, folder, clip_folder, request):
    classifier = pipeline_of(request.getfixturevalue(folder), MintZeroShotAudioClassificationPipeline)
    path = os.path.join(clip_folder, "chirp.flac")
    expected = classifier(path, candidate_labels=["dog", "cat", "piano"], scoring=scoring)
    shown = app.classify(path, " dog,cat \n piano\n", scoring)
    assert list(shown.items()) == [(entry["label"], entry["score"]) for entry in expected]


def test_retrieval_is_the_index_ranking(app, stage1_folder, clip_folder):
    files = audio_files(clip_folder)
    assert [os.path.relpath(f, clip_folder) for f in files] == ["chirp.flac", os.path.join("more", "clicks.ogg"),
                                                                "noise.wav", "tone.wav"]
    index = MintRetrievalIndex(MintForPreTraining.from_pretrained(stage1_folder),
                               MintProcessor.from_pretrained(stage1_folder)).add(files, progress=False)
    expected = index.search("a dog barks", top_k=3)
    hits = app.retrieve("a dog barks", clip_folder, None, 3)
    assert [(hit["path"], hit["score"]) for hit in hits] == [(files[e["id"]], e["score"]) for e in expected]
    assert hits[0]["name"] == os.path.relpath(files[expected[0]["id"]], clip_folder)
    uploaded = app.retrieve("a dog barks", "", files[2:], 5)  # uploads alone: named by their file names
    assert sorted(hit["name"] for hit in uploaded) == ["noise.wav", "tone.wav"]
    both = app.retrieve("a dog barks", clip_folder, files[:1], 5)
    assert len(both) == 5 and sum(hit["path"] == files[0] for hit in both) == 2


def test_waveform_draws_the_clip(app, clip_folder):
    figure = app.waveform(os.path.join(clip_folder, "tone.wav"))
    assert isinstance(figure, Figure) and len(figure.axes) == 2
    samples = figure.axes[0].lines[0].get_ydata()
    assert samples.shape == (16000,)  # the file's own samples, one second at 16 kHz
    assert app.waveform(None) is None


def bad(folder, name):
    return os.path.join(folder, name)


# (callback, arguments, expected error, words of the message). `B:` marks a file of the bad_clips fixture, `C:` one of
# the clip folder, `S1` the stage-1 app.
BAD_INPUTS = [
    ("caption", [None], ValueError, "No audio: upload or record"),
    ("caption", [""], ValueError, "No audio"),
    ("caption", ["B:silent.wav"], ValueError, "is silent (every sample is zero)"),
    ("caption", ["B:nan.wav"], ValueError, "contains NaN or infinite samples"),
    ("caption", ["B:short.wav"], ValueError, "lasts 6.2 ms; the audio encoder needs at least 25 ms"),
    ("caption", ["B:text.wav"], ValueError, "Could not decode"),
    ("caption", ["B:missing.wav"], ValueError, "does not exist"),
    ("S1:caption", ["C:tone.wav"], ValueError, "Captioning needs a stage-2 model"),
    ("classify", [None, "dog, cat", "llm"], ValueError, "No audio"),
    ("classify", ["B:silent.wav", "dog, cat", "llm"], ValueError, "is silent"),
    ("classify", ["C:tone.wav", "", "llm"], ValueError, "No labels: type the candidate labels"),
    ("classify", ["C:tone.wav", " \n ", "embedding"], ValueError, "No labels"),
    ("classify", ["C:tone.wav", "dog, cat, dog", "llm"], ValueError, "repeated labels, 'dog' at positions [0, 2]"),
    ("classify", ["C:tone.wav", "dog,\ndog", "llm"], ValueError, "repeated labels, 'dog' at positions [0, 1]"),
    ("classify", ["C:tone.wav", "dog, ,cat", "llm"], ValueError, "labels: the labels at positions 1 ('')"),
    ("classify", ["C:tone.wav", "dog,, cat", "embedding"], ValueError, "empty or whitespace only"),
    ("classify", ["C:tone.wav", "dog, cat", "ranking"], ValueError, "Scoring 'ranking' is not available"),
    ("S1:classify", ["C:tone.wav", "dog, cat", "llm"], ValueError, "expected one of ['embedding', 'matching']"),
    ("retrieve", ["", "C:", None, 3], ValueError, "No query: type a description"),
    ("retrieve", ["a dog", "", None, 3], ValueError, "No clips to search: give a folder"),
    ("retrieve", ["a dog", "", [], 3], ValueError, "No clips to search"),
    ("retrieve", ["a dog", "C:more/nothing", None, 3], ValueError, "does not exist or is not a folder"),
    ("retrieve", ["a dog", "B:", None, 3], ValueError, "nan.wav'): contains NaN or infinite samples"),
    ("retrieve", ["a dog", "C:tone.wav", None, 3], ValueError, "is not a folder"),
    ("retrieve", ["a dog", "E:", None, 3], ValueError, "holds no audio clips (.flac, .mp3, .ogg, .wav): it holds"),
    ("retrieve", ["a dog", "C:", None, 0], ValueError, "top_k must be at least 1"),
    ("retrieve", ["a dog", "C:", None, 2.5], ValueError, "at least 1 and a whole number of results, got 2.5"),
    ("retrieve", ["a dog", "C:", None, None], ValueError, "at least 1 and a whole number of results, got None"),
    ("retrieve", ["a dog", "C:", None, "3"], ValueError, "at least 1 and a whole number of results, got '3'"),
    ("retrieve", ["a dog", "C:", None, True], ValueError, "at least 1 and a whole number of results, got True"),
    ("retrieve", ["a dog", "", ["B:gone.wav"], 3], ValueError, "The uploaded clips '"),
    ("retrieve", ["a dog", "", ["B:gone.wav"], 3], ValueError, "gone.wav' do not exist (any more): upload them again"),
    ("caption", ["B:quiet.wav"], ValueError, "silent (its loudest sample, 1e-06, is below one step of 16-bit audio)"),
    ("classify", ["B:quiet.wav", "dog, cat", "embedding"], ValueError, "quiet.wav' is silent"),
    ("classify", ["C:tone.wav", '"dog, cat', "llm"], ValueError,
     "Labels, line 1 ('\"dog, cat'): a double quote is opened and not closed"),
    ("classify", ["C:tone.wav", 'dog\n"a, b', "llm"], ValueError, "line 2"),
    ("waveform", ["B:nan.wav"], ValueError, "nan.wav' contains NaN or infinite samples"),
    ("waveform", ["B:silent.wav"], ValueError, "is silent (every sample is zero)"),
    ("waveform", ["B:short.wav"], ValueError, "the audio encoder needs at least 25 ms"),
    ("waveform", ["B:missing.wav"], ValueError, "the path does not exist or is not a file"),
    ("waveform", ["B:text.wav"], ValueError, "Could not decode"),
]


@pytest.mark.parametrize("callback, arguments, error, words", BAD_INPUTS)
def test_bad_input_is_refused_with_the_packages_message(app, stage1_app, callback, arguments, error, words,
                                                       bad_clips, clip_folder, tmp_path):
    (tmp_path / "readme.txt").write_text("no clips here")
    roots = {"B:": bad_clips, "C:": clip_folder, "E:": str(tmp_path)}

    def resolve(a):
        if isinstance(a, list):
            return [resolve(item) for item in a]
        return os.path.join(roots[a[:2]], a[2:]) if isinstance(a, str) and a[:2] in roots else a

    resolved = [resolve(a) for a in arguments]
    target = stage1_app if callback.startswith("S1:") else app
    with pytest.raises(error) as raised:
        getattr(target, callback.removeprefix("S1:"))(*resolved)
    assert words in str(raised.value)
    with pytest.raises(gr.Error) as shown:  # what the page shows: the same message, no traceback
        shown_in_page(getattr(target, callback.removeprefix("S1:")))(*resolved)
    assert shown.value.message == str(raised.value) and not shown.value.print_exception


@pytest.mark.parametrize("text, labels", [("dog", ["dog"]), ("dog, cat", ["dog", "cat"]),
                                          ("dog\ncat\n", ["dog", "cat"]), (" a dog ,\n\n a cat", ["a dog", "a cat"]),
                                          ("dog, cat,\npiano", ["dog", "cat", "piano"]),
                                          ('"dog, barking", cat', ["dog, barking", "cat"]),
                                          ('say "hi",\n"a ""b"" c"', ['say "hi"', 'a "b" c']),
                                          ("chien 🐕, 猫", ["chien 🐕", "猫"])])
def test_labels_are_split_on_commas_and_lines(text, labels):
    assert parse_labels(text) == labels


# (model, stage1, expected error, words). file: a file; empty: an empty folder; runs: a folder holding stage1/ and
# stage2/ (a demo's output); bert: a saved model of another type; relative: a missing relative path with folders.
BAD_MODELS = [
    ("S1", "S1", ValueError, "is not a stage-2 model with a trained LLM"),
    ("S2", "S2", ValueError, "cannot score embeddings"),
    ("missing", None, OSError, "Could not load the model"),
    ("missing", None, OSError, r"no such folder \(and not a Hub repo id\); expected a MINT folder"),
    ("S2", "missing", OSError, "Could not load the stage-1 model"),
    ("file", None, OSError, r"Could not load the model '.*config.json': it is a file; expected a MINT folder"),
    ("empty", None, OSError, r"the folder has no config.json, so it is no saved model \(it is empty\)"),
    ("runs", None, OSError, r"no saved model \(it holds 'stage1', 'stage2'\)"),
    ("bert", None, ValueError, r"is not a MINT model \(model_type 'bert'\)"),
    ("S2", "bert", ValueError, r"The stage-1 model '.*' is not a MINT model"),
    ("relative", None, OSError, "no such folder"),
]


@pytest.mark.parametrize("model, stage1, error, words", BAD_MODELS)
def test_bad_models_are_refused(model, stage1, error, words, stage1_folder, stage2_folder, tmp_path):
    for name in ("empty", "runs/stage1", "runs/stage2", "bert"):
        os.makedirs(tmp_path / name)
    (tmp_path / "bert" / "config.json").write_text('{"model_type": "bert"}')
    folders = {"S1": stage1_folder, "S2": stage2_folder, "missing": str(tmp_path / "missing"), None: None,
               "file": os.path.join(stage2_folder, "config.json"), "empty": str(tmp_path / "empty"),
               "runs": str(tmp_path / "runs"), "bert": str(tmp_path / "bert"), "relative": "runs/here/stage2"}
    with pytest.raises(error, match=words):
        MintApp(folders[model], stage1=folders[stage1])


def test_retrieval_takes_a_sliders_float_and_a_home_folder(app, clip_folder, monkeypatch):
    expected = app.retrieve("a dog barks", clip_folder, None, 2)
    assert app.retrieve("a dog barks", clip_folder, None, 2.0) == expected
    monkeypatch.setenv("HOME", os.path.dirname(clip_folder))
    home = app.retrieve("a dog barks", os.path.join("~", os.path.basename(clip_folder)), None, 2)
    assert [(hit["name"], hit["score"]) for hit in home] == [(hit["name"], hit["score"]) for hit in expected]


@pytest.mark.slow
def test_a_hub_folder_loads_as_installed_code_in_a_fresh_process(stage2_folder, stage1_folder):
    """A folder with `auto_map` (as the demo and save_for_hub write it) runs no remote code and asks for no
    trust_remote_code: the app's own import registers MINT's classes."""
    code = f"from mint.app.callbacks import MintApp; print(MintApp({stage2_folder!r}, stage1={stage1_folder!r})" \
           ".scoring_modes)"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "['llm', 'embedding', 'matching']"
