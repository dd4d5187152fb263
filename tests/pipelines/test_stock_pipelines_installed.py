"""transformers' stock pipelines on MINT folders with the installed package: no remote code after importing the model
module, stage-1 folders refused for generation, and the processor layout of a stage-1 folder whatever the save order."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from transformers import pipeline

from modeling_mint import MintForConditionalGeneration, MintForPreTraining, MintModel
from processing_mint import LLM_TOKENIZER_FOLDER, GENERATION_TASKS, MintProcessor, check_pipeline_stage
from tests.utils import tiny
from tests.utils.audio import clips

LABELS = ["dog", "cat", "piano"]


def _stage1(folder, processor_first: bool, model_class=MintForPreTraining):
    torch.manual_seed(1)
    model = tiny.amplify_audio(model_class(tiny.mint_config())).eval()
    writers = [lambda: tiny.processor().save_pretrained(folder), lambda: model.save_pretrained(folder)]
    for write in writers if processor_first else writers[::-1]:
        write()
    return str(folder)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    stage2 = tmp_path_factory.mktemp("stage2")
    tiny.captioning_model().save_pretrained(stage2)
    tiny.processor().save_pretrained(stage2)
    return {"stage1": _stage1(tmp_path_factory.mktemp("stage1"), processor_first=False), "stage2": str(stage2)}


# In a fresh process that imports only the model module (no processing_mint, no pipelines_mint), offline, with no
# trust_remote_code: both stock pipelines build from the installed classes.
FRESH_SCRIPT = """
import json, sys
import numpy as np
import modeling_mint
from transformers import pipeline
stage1, stage2 = sys.argv[1:3]
any_to_any = pipeline("any-to-any", model=stage2, device="cpu")
audio = np.load(sys.argv[3])
chat = [{"role": "user", "content": [{"type": "audio", "audio": {"array": audio, "sampling_rate": 16000}},
                                     {"type": "text", "text": "this is a sound of"}]}]
text = any_to_any(text=chat, generate_kwargs={"max_new_tokens": 4}, return_full_text=False)[0]["generated_text"]
zero_shot = pipeline("zero-shot-audio-classification", model=stage1, device="cpu")
scores = zero_shot(audio, candidate_labels=["dog", "cat", "piano"])
print(json.dumps({"processor": type(any_to_any.processor).__module__, "model": type(any_to_any.model).__module__,
                  "text": text, "labels": sorted(s["label"] for s in scores)}))
"""


def test_stock_pipelines_need_no_remote_code_after_importing_the_model_module(folders, tmp_path):
    np.save(tmp_path / "audio.npy", clips((16000,))[0])
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules")}
    result = subprocess.run([sys.executable, "-c", FRESH_SCRIPT, folders["stage1"], folders["stage2"],
                             str(tmp_path / "audio.npy")], capture_output=True, text=True, env=env, cwd=tmp_path,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert (report["processor"], report["model"]) == ("processing_mint", "modeling_mint")  # not transformers_modules
    assert report["text"] and report["labels"] == sorted(LABELS)
    assert not (tmp_path / "modules").exists()


@pytest.mark.parametrize("task", GENERATION_TASKS)
def test_a_generation_pipeline_refuses_a_stage1_folder(folders, task):
    with pytest.raises(ValueError, match=r"needs a stage-2 MINT folder.*stage-1 MintForPreTraining.*recipe stage2"):
        pipeline(task, model=folders["stage1"], device="cpu")


@pytest.mark.parametrize("folder, task, error, words", [
    ("stage1", "any-to-any", ValueError, ["stage-1 MintForPreTraining", "stores no LLM", "zero-shot-audio"]),
    ("stage1", "any-to-any", ValueError, ["needs a stage-2 MINT folder", "mint recipe stage2"]),
    ("stage1", "zero-shot-audio-classification", None, []),
    ("stage1", None, None, []),
    ("stage2", "any-to-any", None, []),
])
def test_check_pipeline_stage(folders, folder, task, error, words):
    if error is None:
        check_pipeline_stage(folders[folder], task)
        return
    with pytest.raises(error) as caught:
        check_pipeline_stage(folders[folder], task)
    assert all(word in str(caught.value) for word in words), caught.value


def test_any_to_any_takes_audio_as_an_argument_and_refuses_text_alone(folders):
    any_to_any = pipeline("any-to-any", model=folders["stage2"], device="cpu")
    audio = clips((16000,))[0]
    processor, model = any_to_any.processor, any_to_any.model
    with torch.no_grad():
        ids = model.generate(**processor(audio=audio, text="this is a sound of", sampling_rate=16000),
                             max_new_tokens=4)
    expected = processor.batch_decode(ids, skip_special_tokens=True)[0]
    result = any_to_any(text="this is a sound of", audio=audio, processor_kwargs={"sampling_rate": 16000},
                        generate_kwargs={"max_new_tokens": 4}, return_full_text=False)
    assert result == [{"input_text": "this is a sound of", "generated_text": expected}]
    with pytest.raises(ValueError, match="MINT needs audio: got text alone"):
        any_to_any(text="this is a sound of", generate_kwargs={"max_new_tokens": 4})


@pytest.mark.parametrize("kwargs, error, words", [
    ({"images": np.zeros((4, 4, 3))}, ValueError, ["audio and text only", "'images'"]),
    ({"videos": [np.zeros((2, 4, 4, 3))], "images": None}, ValueError, ["audio and text only", "'videos'"]),
    ({"bogus": 1}, TypeError, ["unexpected keyword argument", "bogus"]),
])
def test_processor_refuses_other_modalities(kwargs, error, words):
    with pytest.raises(error) as caught:
        tiny.processor()(text="a dog", **kwargs)
    assert all(word in str(caught.value) for word in words), caught.value


def test_processor_accepts_absent_images_and_videos():
    processor = tiny.processor()
    plain = processor(text="a dog")
    with_none = processor(text="a dog", images=None, videos=None)
    assert plain.keys() == with_none.keys() and all(torch.equal(plain[k], with_none[k]) for k in plain)


@pytest.mark.parametrize("model_class", [MintForPreTraining, MintModel])
def test_a_stage1_folder_gets_the_embedding_processor_in_either_save_order(tmp_path, model_class):
    first, second = (_stage1(tmp_path / name, processor_first=order, model_class=model_class)
                     for name, order in (("model_first", False), ("processor_first", True)))
    audio = clips((16000, 12000))
    results = []
    for folder in (first, second):
        assert os.path.isdir(os.path.join(folder, LLM_TOKENIZER_FOLDER))
        with open(os.path.join(folder, "tokenizer_config.json"), encoding="utf-8") as f:
            results.append(json.load(f)["tokenizer_class"])
        classifier = pipeline("zero-shot-audio-classification", model=folder, device="cpu")
        results.append([classifier(clip, candidate_labels=LABELS) for clip in audio])
        loaded = MintProcessor.from_pretrained(folder)
        llm_vocabulary = tiny.processor().tokenizer.get_vocab()
        results.append((type(loaded.tokenizer).__name__, loaded.tokenizer.get_vocab() == llm_vocabulary))
    assert results[:3] == results[3:]
    assert results[2] == (type(tiny.processor().tokenizer).__name__, True)


def test_a_stage2_model_saved_after_its_processor_keeps_the_processor(tmp_path):
    tiny.processor().save_pretrained(tmp_path)
    before = (tmp_path / "tokenizer.json").read_bytes()
    MintForConditionalGeneration(tiny.mint_config()).save_pretrained(tmp_path)
    assert (tmp_path / "tokenizer.json").read_bytes() == before and not (tmp_path / LLM_TOKENIZER_FOLDER).exists()
