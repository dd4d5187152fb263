"""Saved MINT folders used where only torch, transformers, safetensors, numpy, librosa and soundfile are installed:
no peft, datasets, evaluate, and no MINT module (the folders carry their own code)."""

import json

import numpy as np
import pytest
import torch
from transformers import pipeline

from tests.utils import isolated
from tests.utils import tiny
from mint.hub import save_for_hub
from modeling_mint import MintForPreTraining, MintModel
from pipelines_mint import ZERO_SHOT_TASK, register_mint_pipelines
from tests.utils.audio import clips


ALLOWED = ("torch", "transformers", "safetensors", "numpy", "librosa", "soundfile")
WORDS = dict(min_new_tokens=4, max_new_tokens=4, suppress_tokens=[0, 1, 2, 3, tiny.AUDIO_TOKEN_ID])
LABELS = ["dog", "cat", "piano"]

SCRIPT = """
import importlib.util, json, sys
import numpy as np, torch
from transformers import (AutoModel, AutoModelForPreTraining, AutoModelForSpeechSeq2Seq, AutoProcessor, pipeline)
stage2, parts_only, stage1, audio_file = sys.argv[1:]
missing = [m for m in ("peft", "datasets", "evaluate", "modeling_mint", "processing_mint", "hub_mint")
           if importlib.util.find_spec(m) is not None]
audio = list(np.load(audio_file))
words = dict(min_new_tokens=4, max_new_tokens=4, suppress_tokens=[0, 1, 2, 3, %d])
report = {"importable": missing}
for name, folder in (("stage2", stage2), ("parts_only", parts_only)):
    model = AutoModelForSpeechSeq2Seq.from_pretrained(folder, trust_remote_code=True).eval()
    processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
    batch = processor(audio=audio, text=["this is a sound of"] * len(audio), text_target=["dog"] * len(audio),
                      sampling_rate=16000)
    with torch.no_grad():
        report[name + "_logits"] = model(**batch).logits.flatten().tolist()
    captioner = pipeline("audio-to-text", model=folder, trust_remote_code=True, device="cpu")
    report[name + "_captions"] = captioner(audio, sampling_rate=16000, batch_size=2, **words)
    classifier = pipeline("mint-zero-shot-audio-classification", model=folder, trust_remote_code=True, device="cpu")
    report[name + "_scores"] = classifier(audio, candidate_labels=["dog", "cat", "piano"], sampling_rate=16000)
    report[name + "_modules"] = [type(model).__module__, type(captioner).__module__]
model = AutoModel.from_pretrained(stage2, trust_remote_code=True).eval()
processor = AutoProcessor.from_pretrained(stage2, trust_remote_code=True)
prompts = processor(audio=audio, text=["generate audio caption :"] * len(audio), sampling_rate=16000)
report["automodel_stage2"] = [type(model).__name__, type(model).__module__,
                              model.generate(**prompts, **words).tolist()]
model = AutoModel.from_pretrained(stage1, trust_remote_code=True).eval()
processor = AutoProcessor.from_pretrained(stage1, trust_remote_code=True)
text = processor(text=["This is a sound of dog.", "This is a sound of piano."], return_llm_inputs=False)
audio_inputs = processor(audio=audio, sampling_rate=16000)
with torch.no_grad():
    report["stage1_logits"] = model(input_ids=text["qformer_input_ids"], attention_mask=text["qformer_attention_mask"],
                                    **audio_inputs).logits_per_audio.flatten().tolist()
    pretraining = AutoModelForPreTraining.from_pretrained(stage1, trust_remote_code=True).eval()
    report["stage1_alc"] = float(pretraining(**processor(audio=audio, text=["a dog barks", "a cat meows",
                                                                              "a piano", "rain"][: len(audio)],
                                                       sampling_rate=16000, return_llm_inputs=False)).loss_alc)
print(json.dumps(report))
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    return isolated.make_site(tmp_path_factory.mktemp("site"), ALLOWED)


def test_saved_folders_need_only_transformers(site, tmp_path):
    register_mint_pipelines()
    audio = clips((12000,) * 4)
    np.save(tmp_path / "audio.npy", np.stack(audio))
    processor = tiny.processor()
    stage2 = tiny.captioning_model()
    stage2_folder = save_for_hub(stage2, processor, tmp_path / "stage2")
    stage2.audio_model.save_pretrained(tmp_path / "base-audio")
    stage2.language_model.save_pretrained(tmp_path / "base-llm")
    parts_folder = save_for_hub(stage2, processor, tmp_path / "parts", trained_parts_only=True,
                                base_models={"audio_model": str(tmp_path / "base-audio"),
                                             "language_model": str(tmp_path / "base-llm")})
    stage1 = tiny.amplify_audio(MintForPreTraining(tiny.mint_config())).eval()
    stage1_folder = save_for_hub(stage1, processor, tmp_path / "stage1")

    batch = processor(audio=audio, text=["this is a sound of"] * 4, text_target=["dog"] * 4, sampling_rate=16000)
    with torch.no_grad():
        logits = stage2(**batch).logits.flatten()
    captions = pipeline("audio-to-text", model=stage2, processor=processor, device="cpu")(
        audio, sampling_rate=16000, **WORDS)
    assert len({c["generated_text"] for c in captions}) == 4  # a distinct caption per clip
    scores = pipeline(ZERO_SHOT_TASK, model=stage2, processor=processor, device="cpu")(
        audio, candidate_labels=LABELS, sampling_rate=16000)
    text = processor(text=["This is a sound of dog.", "This is a sound of piano."], return_llm_inputs=False)
    with torch.no_grad():
        stage1_logits = MintModel.forward(stage1, input_ids=text["qformer_input_ids"],
                                          attention_mask=text["qformer_attention_mask"],
                                          **processor(audio=audio, sampling_rate=16000)).logits_per_audio.flatten()
        alc = stage1(**processor(audio=audio, text=["a dog barks", "a cat meows", "a piano", "rain"],
                                 sampling_rate=16000, return_llm_inputs=False)).loss_alc

    prompts = processor(audio=audio, text=["generate audio caption :"] * 4, sampling_rate=16000)
    generated = stage2.generate(**prompts, **WORDS).tolist()

    work = tmp_path / "cwd"  # outside the repository
    work.mkdir()
    result = isolated.run_isolated(site, SCRIPT % tiny.AUDIO_TOKEN_ID,
                                   [stage2_folder, parts_folder, stage1_folder, str(tmp_path / "audio.npy")], work,
                                   str(tmp_path / "modules"))
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["importable"] == []
    for name in ("stage2", "parts_only"):
        assert all(module.startswith("transformers_modules") for module in report[name + "_modules"])
        torch.testing.assert_close(torch.tensor(report[name + "_logits"]), logits, rtol=0, atol=1e-5)
        assert report[name + "_captions"] == captions
        for got, expected in zip(report[name + "_scores"], scores):
            assert [r["label"] for r in got] == [r["label"] for r in expected]
            assert [r["score"] for r in got] == pytest.approx([r["score"] for r in expected], abs=1e-6)
    name, module, automodel_generated = report["automodel_stage2"]  # AutoModel of a stage-2 folder captions
    assert name == "MintForConditionalGeneration" and module.startswith("transformers_modules")
    assert automodel_generated == generated
    torch.testing.assert_close(torch.tensor(report["stage1_logits"]), stage1_logits, rtol=0, atol=1e-5)
    assert report["stage1_alc"] == pytest.approx(float(alc), abs=1e-6)


ANY_TO_ANY_SCRIPT = """
import json, sys
import numpy as np
from transformers import pipeline
folder, audio_file = sys.argv[1:]
words = dict(min_new_tokens=4, max_new_tokens=4, suppress_tokens=[0, 1, 2, 3, %d])
chats = [[{"role": "user", "content": [{"type": "audio", "audio": {"array": clip, "sampling_rate": 16000}},
                                        {"type": "text", "text": "this is a sound of"}]}]
         for clip in np.load(audio_file)]
any_to_any = pipeline("any-to-any", model=folder, trust_remote_code=True, device="cpu")
results = any_to_any(text=chats, generate_kwargs=words, return_full_text=False)
print(json.dumps({"module": type(any_to_any.model).__module__, "texts": [r[0]["generated_text"] for r in results]}))
"""


@pytest.mark.slow
def test_any_to_any_runs_a_hub_folder_where_only_transformers_is(tmp_path_factory, tmp_path):
    """transformers' own any-to-any pipeline with the folder's remote code: jinja2 (transformers' requirement for chat
    templates) beside the packages of a transformers-only environment."""
    site = isolated.make_site(tmp_path_factory.mktemp("chat-site"), (*ALLOWED, "jinja2"))
    register_mint_pipelines()
    audio = clips((12000, 12000))
    np.save(tmp_path / "audio.npy", np.stack(audio))
    processor, model = tiny.processor(), tiny.captioning_model()
    folder = save_for_hub(model, processor, tmp_path / "stage2")
    captioner = pipeline("audio-to-text", model=model, processor=processor, device="cpu")
    expected = [captioner(clip, sampling_rate=16000, prompt="this is a sound of", **WORDS)["generated_text"]
                for clip in audio]
    work = tmp_path / "cwd"  # outside the repository
    work.mkdir()
    result = isolated.run_isolated(site, ANY_TO_ANY_SCRIPT % tiny.AUDIO_TOKEN_ID, [folder, str(tmp_path / "audio.npy")],
                                   work, str(tmp_path / "modules"))
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["module"].startswith("transformers_modules")
    assert report["texts"] == expected
    assert "not supported" not in result.stderr, result.stderr[-2000:]
