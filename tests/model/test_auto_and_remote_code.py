"""Auto classes on import, and the saved folder as Hub remote code in a fresh process."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from transformers import AutoConfig, AutoModel, AutoModelForPreTraining, AutoModelForSpeechSeq2Seq, AutoProcessor

from tests.utils import tiny
from modeling_mint import MintForConditionalGeneration, MintForPreTraining, MintModel
from processing_mint import MintProcessor
from tests.utils.audio import clips


def test_auto_classes_resolve_after_import(tmp_path):
    config = tiny.mint_config()
    config.save_pretrained(tmp_path)
    loaded = AutoConfig.from_pretrained(tmp_path).to_dict()
    expected = config.to_dict()
    for entry in (loaded, expected):
        entry.pop("_name_or_path")
    assert loaded == expected
    assert loaded["stage1_objectives"] == ["alc", "alm", "atg"] and loaded["text_config"]["model_type"] == "t5"
    assert type(AutoModel.from_config(config)) is MintModel  # headless: Bridge-Net and the ALC embedding space
    assert type(AutoModelForSpeechSeq2Seq.from_config(config)) is MintForConditionalGeneration
    assert type(AutoModelForPreTraining.from_config(config)) is MintForPreTraining
    processor = tiny.processor()
    processor.save_pretrained(tmp_path)
    assert type(AutoProcessor.from_pretrained(tmp_path)) is MintProcessor


REMOTE_SCRIPT = """
import json, sys, numpy as np, torch
from transformers import AutoModelForSpeechSeq2Seq, AutoProcessor
folder = sys.argv[1]
assert "modeling_mint" not in sys.modules
model = AutoModelForSpeechSeq2Seq.from_pretrained(folder, trust_remote_code=True).eval()
processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
audio = list(np.load(folder + "/audio.npy"))
batch = processor(audio=audio, text=["this is a sound of", "generate audio caption :"],
                  text_target=["dog", "a cat"], sampling_rate=16000)
with torch.no_grad():
    logits = model(**batch).logits
print(json.dumps({"module": type(model).__module__, "processor": type(processor).__module__,
                  "logits": logits.flatten().tolist()}))
"""


def test_a_folder_without_config_is_refused_at_once(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"")
    for model_class in (MintForConditionalGeneration, MintForPreTraining, MintModel):
        with pytest.raises(OSError, match="has no config.json"):
            model_class.from_pretrained(tmp_path)


def test_a_processor_folder_without_its_qformer_tokenizer_is_refused(tmp_path):
    import shutil

    tiny.processor().save_pretrained(tmp_path)
    shutil.rmtree(tmp_path / "qformer_tokenizer")
    with pytest.raises(Exception, match="Q-Former tokenizer|qformer_tokenizer"):
        MintProcessor.from_pretrained(tmp_path)


def test_saved_folder_loads_as_remote_code_in_a_fresh_process(tmp_path):
    model = MintForConditionalGeneration(tiny.mint_config()).eval()
    processor = tiny.processor()
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    audio = clips((16000, 12000))
    np.save(tmp_path / "audio.npy", np.stack([a[:12000] for a in audio]))
    for name in ("configuration_mint.py", "modeling_mint.py", "processing_mint.py", "audio_encoder_mint.py",
                 "checkpoint_mint.py", "distributed_mint.py", "convert_bert_mint.py", "objectives_mint.py"):
        assert (tmp_path / name).exists(), name
    auto_map = json.loads((tmp_path / "config.json").read_text())["auto_map"]
    assert auto_map["AutoModelForSpeechSeq2Seq"] == "modeling_mint.MintForConditionalGeneration"
    assert auto_map["AutoModel"] == "modeling_mint.MintModel"
    assert auto_map["AutoConfig"] == "configuration_mint.MintConfig"
    batch = processor(audio=[a[:12000] for a in audio], text=["this is a sound of", "generate audio caption :"],
                      text_target=["dog", "a cat"], sampling_rate=16000)
    with torch.no_grad():
        expected = model(**batch).logits.flatten()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules"),
           "PYTHONPATH": ""}
    # Run from an empty folder, so the repository's own modules are not importable from the working directory.
    work = tmp_path / "cwd"
    work.mkdir()
    result = subprocess.run([sys.executable, "-c", REMOTE_SCRIPT, str(tmp_path)], capture_output=True, text=True,
                            env=env, cwd=work, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["module"].startswith("transformers_modules")
    assert report["processor"].startswith("transformers_modules")
    assert torch.equal(torch.tensor(report["logits"]), expected)
