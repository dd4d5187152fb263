"""Assembling MINT from component folders, Hub-ready folders, trained-parts-only saves, offline remote-code loading."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors import safe_open
from huggingface_hub import ModelCard
from transformers import (AutoModelForSpeechSeq2Seq, Data2VecAudioModel, T5ForConditionalGeneration,
                          Wav2Vec2FeatureExtractor)
from transformers.dynamic_module_utils import get_relative_imports

import mint.hub
from checkpoint_mint import read_folder_config
from mint.hub import assemble_mint, eval_results_from_json, model_card, save_for_hub
from modeling_mint import MintForConditionalGeneration, MintForPreTraining
from pipelines_mint import register_mint_pipelines
from tests.utils import tiny
from tests.utils.audio import clips
from tests.utils.tiny import WORDS


@pytest.fixture(scope="module")
def components(tmp_path_factory):
    """An audio encoder folder (with its feature extractor), the real MiniLM BERT, an LLM folder (with tokenizer)."""
    root = tmp_path_factory.mktemp("components")
    torch.manual_seed(0)
    Data2VecAudioModel(tiny.audio_config()).save_pretrained(root / "audio")
    Wav2Vec2FeatureExtractor(return_attention_mask=True).save_pretrained(root / "audio")
    T5ForConditionalGeneration(tiny.t5_config()).save_pretrained(root / "llm")
    tiny.llm_tokenizer().save_pretrained(root / "llm")
    return {"audio": str(root / "audio"), "bert": tiny.MINILM_DIR, "llm": str(root / "llm")}


def assembled(components, stage=2):
    return assemble_mint(components["audio"], components["bert"], components["llm"], stage=stage,
                         num_query_tokens=4, audio_text_hidden_size=16)


def test_assemble_from_component_folders(components):
    model, processor = assembled(components)
    audio = Data2VecAudioModel.from_pretrained(components["audio"])
    llm = T5ForConditionalGeneration.from_pretrained(components["llm"])
    for name, value in audio.state_dict().items():
        assert torch.equal(model.audio_model.state_dict()[name], value), name
    for name, value in llm.state_dict().items():
        assert torch.equal(model.language_model.state_dict()[name], value), name
    bert_word = safe_open(os.path.join(tiny.MINILM_DIR, "model.safetensors"), "pt").get_tensor(
        "embeddings.word_embeddings.weight")
    assert torch.equal(model.qformer.embeddings.word_embeddings.weight[: bert_word.shape[0]], bert_word)
    assert processor.qformer_tokenizer.bos_token == "[DEC]" and len(processor.tokenizer) == len(tiny.LLM_WORDS) + 1
    assert model.config.audio_token_id == processor.audio_token_id == tiny.AUDIO_TOKEN_ID
    stage1, _ = assembled(components, stage=1)
    assert isinstance(stage1, MintForPreTraining)
    with pytest.raises(ValueError, match="is not a folder"):
        assemble_mint(components["audio"], "/nonexistent/bert", components["llm"])


def test_an_llm_without_a_row_for_the_audio_token_is_grown(components, tmp_path):
    T5ForConditionalGeneration(tiny.t5_config(vocab_size=len(tiny.LLM_WORDS))).save_pretrained(tmp_path / "llm")
    tiny.llm_tokenizer().save_pretrained(tmp_path / "llm")
    model, processor = assemble_mint(components["audio"], components["bert"], tmp_path / "llm", stage=2,
                                     num_query_tokens=4)
    original = T5ForConditionalGeneration.from_pretrained(tmp_path / "llm").shared.weight
    grown = model.language_model.shared.weight
    assert grown.shape[0] == len(tiny.LLM_WORDS) + 1 == model.config.text_config.vocab_size
    assert torch.equal(grown[: len(tiny.LLM_WORDS)], original)
    batch = processor(audio=clips((16000,)), text=["this is a sound of"], text_target=["dog"], sampling_rate=16000)
    assert torch.isfinite(model(**batch).loss)


def test_model_card_parses_back_with_its_model_index(components, tmp_path):
    model, _ = assembled(components)
    classification = {"task": "classification", "accuracy": 0.9, "chance": 0.1, "num_clips": 160}
    retrieval = {"task": "retrieval", "R@1": 0.25, "R@5": 0.5, "R@10": 0.8, "mAP@10": 0.4}
    captioning = {"task": "captioning", "bleu_1": 0.5, "bleu_4": 0.2, "meteor": 0.3, "rouge_l": 0.4, "cider_d": 0.6,
                  "spice": None, "predictions": ["a dog"]}
    results = (eval_results_from_json(classification, "NSynth", "nsynth", "test")
               + eval_results_from_json(retrieval, "Clotho", "clotho", "evaluation")
               + eval_results_from_json(captioning, "Clotho", "clotho", "evaluation"))
    recipe = {"stage": 2, "batch_size": 64, "learning_rate": 1e-4, "num_train_epochs": 3,
              "datasets": [{"path": "prepared/nsynth", "template": "NSynth", "weight": 1.0}]}
    model_card(model, "org/mint-small", results, ["nsynth", "clotho"], {"audio_model": "facebook/data2vec-audio-base",
                                                                      "language_model": "google/flan-t5-xl"},
               recipe).save(tmp_path / "README.md")
    card = ModelCard.load(tmp_path / "README.md")
    assert card.data.base_model == ["facebook/data2vec-audio-base", "google/flan-t5-xl"]
    assert card.data.datasets == ["nsynth", "clotho"] and card.data.library_name == "transformers"
    parsed = {(r.task_type, r.dataset_type, r.metric_type, r.metric_name): r.metric_value
              for r in card.data.eval_results}
    assert parsed == {
        ("audio-classification", "nsynth", "accuracy", "accuracy"): 0.9,
        ("text-to-audio-retrieval", "clotho", "recall@1", "R@1"): 0.25,
        ("text-to-audio-retrieval", "clotho", "recall@5", "R@5"): 0.5,
        ("text-to-audio-retrieval", "clotho", "recall@10", "R@10"): 0.8,
        ("text-to-audio-retrieval", "clotho", "map@10", "mAP@10"): 0.4,
        ("audio-captioning", "clotho", "bleu", "bleu_1"): 0.5,
        ("audio-captioning", "clotho", "bleu", "bleu_4"): 0.2,
        ("audio-captioning", "clotho", "meteor", "meteor"): 0.3,
        ("audio-captioning", "clotho", "rouge", "rouge_l"): 0.4,
        ("audio-captioning", "clotho", "cider", "cider_d"): 0.6,
    }  # no chance level, no clip count, no uncomputed SPICE
    text = card.text
    assert 'pipeline("audio-to-text", model="org/mint-small"' in text and "FOLDER" not in text
    for section in ("## How to use", "## Intended uses and limits", "## Training data and procedure",
                    "## Evaluation", "## Citation"):
        assert section in text
    assert "prepared/nsynth (NSynth, weight 1.0)" in text and "learning_rate: `0.0001`" in text
    assert "Interspeech" in text
    with pytest.raises(ValueError, match="Not an evaluation result"):
        eval_results_from_json({"accuracy": 1.0}, "x", "x")


OFFLINE_SCRIPT = """
import json, sys, numpy as np, torch
from transformers import AutoModelForSpeechSeq2Seq, AutoProcessor, pipeline
folder = sys.argv[1]
audio = list(np.load(folder + "/../audio.npy"))
model = AutoModelForSpeechSeq2Seq.from_pretrained(folder, trust_remote_code=True).eval()
processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
batch = processor(audio=audio, text=["this is a sound of"] * 2, text_target=["dog", "cat"], sampling_rate=16000)
with torch.no_grad():
    logits = model(**batch).logits
captioner = pipeline("audio-to-text", model=folder, trust_remote_code=True, device="cpu")
words = dict(min_new_tokens=4, max_new_tokens=4, suppress_tokens=[0, 1, 2, 3, %d])
captions = captioner(audio, sampling_rate=16000, batch_size=2, **words)
print(json.dumps({"module": type(model).__module__, "pipeline": type(captioner).__module__,
                  "logits": logits.flatten().tolist(), "captions": captions}))
"""


def run_offline(folder, tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules"), "PYTHONPATH": ""}
    work = tmp_path / "cwd"  # an empty working directory: the repository's modules are not importable
    work.mkdir(exist_ok=True)
    result = subprocess.run([sys.executable, "-c", OFFLINE_SCRIPT % tiny.AUDIO_TOKEN_ID, str(folder)],
                            capture_output=True, text=True,
                            env=env, cwd=work, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def expected_outputs(model, processor, audio):
    from transformers import pipeline

    register_mint_pipelines()  # the installed package's `audio-to-text`, the reference for the remote-code copy
    batch = processor(audio=audio, text=["this is a sound of"] * 2, text_target=["dog", "cat"], sampling_rate=16000)
    with torch.no_grad():
        logits = model(**batch).logits.flatten()
    captioner = pipeline("audio-to-text", model=model, processor=processor, device="cpu")
    return logits, captioner(audio, sampling_rate=16000, **WORDS)


@pytest.mark.slow
def test_hub_folder_is_sharded_and_loads_offline_as_remote_code(components, tmp_path):
    model, processor = assembled(components)
    model.eval()
    audio = [a[:12000] for a in clips((16000, 12000))]
    np.save(tmp_path / "audio.npy", np.stack(audio))
    folder = save_for_hub(model, processor, tmp_path / "hub", max_shard_size="200KB")
    files = set(os.listdir(folder))
    assert {"configuration_mint.py", "modeling_mint.py", "processing_mint.py", "pipelines_mint.py", "README.md",
            "model.safetensors.index.json", "processor_config.json"} <= files
    assert len([f for f in files if f.endswith(".safetensors")]) > 1 and not any(f.endswith(".bin") for f in files)
    for module in [f for f in files if f.endswith(".py")]:  # remote code finds every module it imports
        assert {f"{name}.py" for name in get_relative_imports(os.path.join(folder, module))} <= files, module
    config = read_folder_config(folder)
    assert config["auto_map"]["AutoModelForSpeechSeq2Seq"] == "modeling_mint.MintForConditionalGeneration"
    assert config["auto_map"]["AutoModel"] == "modeling_mint.MintModel"
    assert "zero-shot-audio-classification" not in config["custom_pipelines"]  # the stock task stays stock
    assert config["custom_pipelines"]["audio-to-text"]["impl"] == "pipelines_mint.MintAudioToTextPipeline"
    logits, captions = expected_outputs(model, processor, audio)
    report = run_offline(folder, tmp_path)
    assert report["module"].startswith("transformers_modules") and report["pipeline"].startswith("transformers_modules")
    assert torch.equal(torch.tensor(report["logits"]), logits)
    assert report["captions"] == captions and all(len(c["generated_text"].split()) == 4 for c in captions)
    # The installed package loads the same folder without remote code.
    batch = processor(audio=audio, text=["this is a sound of"] * 2, text_target=["dog", "cat"], sampling_rate=16000)
    assert torch.equal(AutoModelForSpeechSeq2Seq.from_pretrained(folder).eval()(**batch).logits.flatten(), logits)


def test_trained_parts_only_reassemble_from_the_base_folders(components, tmp_path):
    model, processor = assembled(components)
    model.eval()
    with torch.no_grad():  # stands in for training: Bridge-Net differs from its initialisation
        model.language_projection.weight.add_(0.5)
    with pytest.raises(ValueError, match="base_models"):
        save_for_hub(model, processor, tmp_path / "nobase", trained_parts_only=True)
    bases = {"audio_model": components["audio"], "language_model": components["llm"]}
    folder = save_for_hub(model, processor, tmp_path / "small", trained_parts_only=True, base_models=bases)
    with safe_open(os.path.join(folder, "model.safetensors"), "pt") as f:
        keys = list(f.keys())
    assert keys and not any(k.startswith(("audio_model.", "language_model.")) for k in keys)
    assert any(k.startswith("qformer.") for k in keys) and "language_projection.weight" in keys
    assert read_folder_config(folder)["base_models"] == bases
    assert model.config.base_models is None  # the in-memory model is unchanged
    audio = [a[:12000] for a in clips((16000, 12000))]
    np.save(tmp_path / "audio.npy", np.stack(audio))
    logits, captions = expected_outputs(model, processor, audio)
    reloaded = MintForConditionalGeneration.from_pretrained(folder).eval()
    batch = processor(audio=audio, text=["this is a sound of"] * 2, text_target=["dog", "cat"], sampling_rate=16000)
    with torch.no_grad():
        assert torch.equal(reloaded(**batch).logits.flatten(), logits)
    assert not reloaded.language_model.encoder.block[0].layer[0].SelfAttention.q.weight.requires_grad
    report = run_offline(folder, tmp_path)
    assert torch.equal(torch.tensor(report["logits"]), logits) and report["captions"] == captions
    moved = {"audio_model": str(tmp_path / "gone"), "language_model": components["llm"]}
    config = read_folder_config(folder)
    config["base_models"] = moved
    open(os.path.join(folder, "config.json"), "w").write(json.dumps(config))
    with pytest.raises(ValueError, match="does not store its frozen audio_model; it comes from the base model .*gone"):
        MintForConditionalGeneration.from_pretrained(folder)
    relocated = MintForConditionalGeneration.from_pretrained(folder, base_models=bases).eval()
    with torch.no_grad():
        assert torch.equal(relocated(**batch).logits.flatten(), logits)


def test_trained_parts_with_lora_adapters_reload_merged(components, tmp_path):
    from mint.training.lora import add_lora

    model, processor = assembled(components)
    torch.manual_seed(0)
    peft_model = add_lora(model, targets=["language_model"], r=4, alpha=8, dropout=0.0).eval()
    with torch.no_grad():  # stands in for training: the adapters and Bridge-Net differ from their initialisation
        for name, parameter in peft_model.named_parameters():
            if "lora_B" in name or "language_projection.modules_to_save" in name:
                parameter.add_(0.05 * torch.randn_like(parameter))
    audio = [a[:12000] for a in clips((16000, 12000))]
    batch = processor(audio=audio, text=["this is a sound of"] * 2, text_target=["dog", "cat"], sampling_rate=16000)
    with torch.no_grad():
        expected = peft_model(**batch).logits
    bases = {"audio_model": components["audio"], "language_model": components["llm"]}
    with pytest.raises(ValueError, match="trained_parts_only=True"):
        save_for_hub(peft_model, processor, tmp_path / "full")
    folder = save_for_hub(peft_model, processor, tmp_path / "lora", trained_parts_only=True, base_models=bases)
    assert os.path.isfile(os.path.join(folder, "adapters", "adapter_config.json"))
    with safe_open(os.path.join(folder, "model.safetensors"), "pt") as f:
        keys = list(f.keys())
    assert "language_projection.weight" in keys and not any("lora_" in k or "modules_to_save" in k for k in keys)
    reloaded = AutoModelForSpeechSeq2Seq.from_pretrained(folder).eval()
    assert type(reloaded) is MintForConditionalGeneration  # the adapters are merged into the reassembled LLM
    with torch.no_grad():
        assert torch.allclose(reloaded(**batch).logits, expected, atol=1e-5)


def test_push_to_hub_uploads_the_folder(components, tmp_path, monkeypatch):
    """No Hub here: a stand-in HfApi records what save_for_hub asks of it."""
    calls = []

    class RecordingApi:
        def create_repo(self, repo_id, exist_ok, private):
            calls.append(("create_repo", repo_id, exist_ok))

        def upload_folder(self, folder_path, repo_id, **kwargs):
            calls.append(("upload_folder", repo_id, sorted(os.listdir(folder_path))))

    monkeypatch.setattr(mint.hub, "HfApi", RecordingApi)
    model, processor = assembled(components)
    save_for_hub(model, processor, tmp_path / "b", push_to_hub=True, repo_id="org/mint")
    assert calls[0] == ("create_repo", "org/mint", True)
    assert calls[1][:2] == ("upload_folder", "org/mint") and "README.md" in calls[1][2] and "config.json" in calls[1][2]


def test_stage2_from_an_assembled_stage1_checkpoint_gets_the_pretrained_llm(components, tmp_path):
    """A stage-1 checkpoint stores no LLM; starting stage 2 from it loads the LLM folder it was assembled with."""
    stage1, processor = assembled(components, stage=1)
    stage1.save_pretrained(tmp_path / "s1")
    assert type(MintForPreTraining.from_pretrained(tmp_path / "s1")) is MintForPreTraining
    stage2 = MintForConditionalGeneration.from_pretrained(tmp_path / "s1")
    llm = T5ForConditionalGeneration.from_pretrained(components["llm"])
    for name, value in llm.state_dict().items():
        assert torch.equal(stage2.language_model.state_dict()[name], value), name
    # A stage-2 checkpoint stores its LLM: that copy is loaded, not the base folder's.
    with torch.no_grad():
        stage2.language_model.lm_head.weight.mul_(2.0)
    stage2.save_pretrained(tmp_path / "s2")
    reloaded = MintForConditionalGeneration.from_pretrained(tmp_path / "s2")
    assert torch.equal(reloaded.language_model.lm_head.weight, stage2.language_model.lm_head.weight)
