"""Assembling MINT from component folders, Hub-ready folders, trained-parts-only saves, offline remote-code loading."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors import safe_open
from datasets import Dataset
from huggingface_hub import ModelCard
from transformers import (AutoFeatureExtractor, AutoModelForSpeechSeq2Seq, AutoTokenizer, Data2VecAudioModel,
                          T5ForConditionalGeneration, Wav2Vec2FeatureExtractor)
from transformers.dynamic_module_utils import get_relative_imports

import mint.cli
import mint.hub
from checkpoint_mint import read_folder_config
from mint.hub import assemble_mint, eval_results_from_json, model_card, save_for_hub
from modeling_mint import MintForConditionalGeneration, MintForPreTraining
from pipelines_mint import register_mint_pipelines
from processing_mint import MintProcessor
from tests.utils import tiny
from tests.utils.audio import clips
from tests.utils.tiny import WORDS
from tests.utils.training import make_audio_dataset


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


@pytest.mark.parametrize("swap, words", [
    ("audio", ["audio_encoder:", "holds a 'mint' model", "an audio encoder's own folder"]),
    ("bert", ["bert:", "holds a 'mint' model", "a BERT folder (model_type 'bert')"]),
    ("bert-is-t5", ["bert:", "holds a 't5' model", "a BERT folder"]),
    ("llm", ["language_model:", "holds a 'mint' model", "the LLM's own folder"]),
])
def test_a_component_folder_of_another_kind_is_refused_by_name(components, tmp_path, swap, words):
    mint_folder = tmp_path / "mint"
    MintForPreTraining(tiny.mint_config()).save_pretrained(mint_folder)
    folders = dict(components)
    folders["bert" if swap == "bert-is-t5" else swap] = components["llm"] if swap == "bert-is-t5" else str(mint_folder)
    with pytest.raises(ValueError) as refused:
        assemble_mint(folders["audio"], folders["bert"], folders["llm"], tokenizer=components["llm"])
    message = str(refused.value)
    assert all(word in message for word in words) and repr(folders["bert" if "bert" in swap else swap]) in message, \
        message


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
    retrieval = {"task": "retrieval", "text_to_audio": {"R@1": 0.25, "R@5": 0.5, "R@10": 0.8, "mAP@10": 0.4},
                 "audio_to_text": {"R@1": 0.3, "R@5": 0.6, "R@10": 0.9, "mAP@10": 0.45}}
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
        ("audio-to-text-retrieval", "clotho", "recall@1", "R@1"): 0.3,
        ("audio-to-text-retrieval", "clotho", "recall@5", "R@5"): 0.6,
        ("audio-to-text-retrieval", "clotho", "recall@10", "R@10"): 0.9,
        ("audio-to-text-retrieval", "clotho", "map@10", "mAP@10"): 0.45,
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


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """`mint eval` run in-process on tiny stage-1 and stage-2 folders for every task; each JSON by its name."""
    root = tmp_path_factory.mktemp("evaluated")
    torch.manual_seed(0)
    for name, model_class in (("stage1", MintForPreTraining), ("stage2", MintForConditionalGeneration)):
        model_class(tiny.mint_config()).save_pretrained(root / name)
        tiny.processor().save_pretrained(root / name)
    make_audio_dataset(root).save_to_disk(str(root / "data"))
    common = ["--dataset", str(root / "data"), "--quiet"]
    runs = {
        "classify": ["classify", "--model", root / "stage2", "--template", "NSynth"],
        "multi-label": ["classify", "--model", root / "stage2", "--template", "OpenMIC", "--label-column",
                        "instruments", "--multi-label"],
        "zero-shot": ["zero-shot", "--model", root / "stage1"],
        "retrieval": ["retrieval", "--model", root / "stage1", "--rerank-top-k", "2"],
        "caption": ["caption", "--model", root / "stage2", "--num-beams", "1", "--max-new-tokens", "3",
                    "--allow-empty"],
    }
    for name, argv in runs.items():
        argv = ["eval", *map(str, argv), *common, "--output", str(root / f"{name}.json")]
        assert mint.cli.main(argv) == 0, argv
    return {name: str(root / f"{name}.json") for name in runs}


def written_metrics(result):
    """Every (task type, metric name, value) a `mint eval` JSON holds: numbers at the top level or, for retrieval,
    in each direction, that are neither counts, settings nor chance levels."""
    not_metrics = {"num_clips", "num_candidates", "num_cropped", "num_skipped", "num_captions", "num_queries",
                   "chance", "classes_scored", "rerank_top_k"}
    task_type = {"retrieval": None, "captioning": "audio-captioning"}.get(
        result["task"], "zero-shot-audio-classification" if result.get("mode") == "embedding"
        else "audio-classification")
    blocks = ([("text-to-audio-retrieval", result["text_to_audio"]), ("audio-to-text-retrieval",
                                                                      result["audio_to_text"])]
              if task_type is None else [(task_type, result)])
    return {(kind, key, value) for kind, block in blocks for key, value in block.items()
            if isinstance(value, float) and key not in not_metrics}


@pytest.mark.slow
def test_a_card_built_from_mint_eval_output_lists_every_result(evaluated, components, tmp_path):
    results = []
    for name, path in evaluated.items():
        with open(path) as f:
            written = written_metrics(json.load(f))
        entries = eval_results_from_json(path, "tiny", "tiny-set", "train")
        assert {(r.task_type, r.metric_name, r.metric_value) for r in entries} == written, name
        results += entries
    assert len(results) >= 1 + 2 + 1 + 8 + 5  # accuracy, PR/ROC AUC, accuracy, R@k/mAP both ways, BLEU/ROUGE/CIDEr
    model, _ = assembled(components)
    model_card(model, "org/mint-small", results).save(tmp_path / "README.md")
    card = ModelCard.load(tmp_path / "README.md")
    parsed = {(r.task_type, r.metric_name, r.metric_value) for r in card.data.eval_results}
    assert parsed == {(r.task_type, r.metric_name, r.metric_value) for r in results}
    assert {r.task_type for r in card.data.eval_results} == {
        "audio-classification", "zero-shot-audio-classification", "text-to-audio-retrieval",
        "audio-to-text-retrieval", "audio-captioning"}


@pytest.mark.slow
def test_eval_results_from_json_reads_a_result_given_as_a_dict_as_from_its_file(evaluated):
    with open(evaluated["retrieval"]) as f:
        as_dict = eval_results_from_json(json.load(f), "tiny", "tiny-set")
    assert as_dict == eval_results_from_json(evaluated["retrieval"], "tiny", "tiny-set")


RETRIEVAL = {"R@1": 0.5, "R@5": 1.0, "R@10": 1.0, "mAP@10": 0.7}


@pytest.mark.parametrize("result, words", [
    ({"accuracy": 1.0}, ["Not an evaluation result", "task None"]),
    ({"task": "leakage", "num_eval_clips": 3}, ["Not an evaluation result", "'leakage'", "no metric of a model"]),
    ({"task": "retrieval", **RETRIEVAL}, ["without 'text_to_audio' and 'audio_to_text'", "each direction"]),
    ({"task": "retrieval", "text_to_audio": RETRIEVAL}, ["without 'audio_to_text'"]),
    ({"task": "retrieval", "text_to_audio": RETRIEVAL, "audio_to_text": [0.5]}, ["without 'audio_to_text'"]),
    ({"task": "retrieval", "text_to_audio": RETRIEVAL, "audio_to_text": {**RETRIEVAL, "R@5": float("nan")}},
     ["metric 'R@5' of audio-to-text-retrieval", "nan", "finite number"]),
    ({"task": "classification", "accuracy": "0.9"}, ["metric 'accuracy'", "'0.9'", "finite number"]),
    ({"task": "classification", "accuracy": True}, ["metric 'accuracy'", "True"]),
    ({"task": "classification", "accuracy": float("inf")}, ["metric 'accuracy'", "inf"]),
    ({"task": "classification", "chance": 0.5, "num_clips": 3}, ["classification result without any metric",
                                                                 "accuracy"]),
    ({"task": "captioning", "bleu_1": None, "spice": None}, ["captioning result without any metric", "cider_d"]),
    ([{"task": "classification", "accuracy": 1.0}], ["holds a list", "expected the object"]),
])
def test_eval_results_from_json_refuses_what_mint_eval_does_not_write(result, words):
    with pytest.raises(ValueError) as error:
        eval_results_from_json(result, "tiny", "tiny-set")
    assert all(word in str(error.value) for word in words), str(error.value)


@pytest.mark.parametrize("content, words", [
    (None, ["missing.json", "not a readable `mint eval` JSON", "No such file"]),
    (b"", ["empty.json", "not a readable `mint eval` JSON", "Expecting value"]),
    (b'{"task": "classification", "accuracy": 0.5', ["empty.json", "not a readable", "line 1"]),
    ("\ufeff{}".encode("utf-16"), ["empty.json", "not a readable"]),
    (b'"classification"', ["empty.json", "holds a str"]),
])
def test_eval_results_from_json_names_a_file_it_cannot_read(tmp_path, content, words):
    path = tmp_path / ("missing.json" if content is None else "empty.json")
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ValueError) as error:
        eval_results_from_json(path, "tiny", "tiny-set")
    assert all(word in str(error.value) for word in words), str(error.value)


@pytest.mark.parametrize("name, value", [("dataset_name", ""), ("dataset_name", "  "), ("dataset_type", None)])
def test_eval_results_from_json_refuses_an_unnamed_dataset(name, value):
    names = {"dataset_name": "tiny", "dataset_type": "tiny-set", name: value}
    with pytest.raises(ValueError, match=f"{name} must be a non-empty string"):
        eval_results_from_json({"task": "classification", "accuracy": 1.0}, **names)


def holds_a_file(folder):
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")


def holds_a_training_output(folder):
    MintForPreTraining(tiny.mint_config()).save_pretrained(folder)


def holds_a_dataset(folder):
    Dataset.from_dict({"x": [1]}).save_to_disk(str(folder))


def is_a_file(folder):
    folder.write_text("not a folder")


# (what the folder holds, words the message must hold)
FOREIGN_FOLDERS = [
    (holds_a_file, ["holds 'notes.txt', which save_for_hub did not write", "overwrite=True"]),
    (holds_a_training_output, ["'config.json'", "which save_for_hub did not write"]),
    (holds_a_dataset, ["'dataset_info.json'", "which save_for_hub did not write"]),
    (is_a_file, ["exists and is not a folder"]),
]


@pytest.mark.parametrize("holds, words", FOREIGN_FOLDERS)
def test_save_for_hub_refuses_a_folder_it_did_not_write(components, tmp_path, holds, words):
    model, processor = assembled(components)
    folder = tmp_path / "hub"
    holds(folder)
    before = sorted(os.listdir(folder)) if folder.is_dir() else folder.read_text()
    with pytest.raises(ValueError) as error:
        save_for_hub(model, processor, folder)
    assert all(word in str(error.value) for word in words), str(error.value)
    assert (sorted(os.listdir(folder)) if folder.is_dir() else folder.read_text()) == before


def test_save_for_hub_writes_again_into_its_own_folder_or_where_told_to(components, tmp_path):
    model, processor = assembled(components)
    folder = save_for_hub(model, processor, tmp_path / "hub")
    (tmp_path / "hub" / "adapters").mkdir()  # an earlier LoRA save's adapters, which loading would merge
    assert save_for_hub(model, processor, folder) == folder and not (tmp_path / "hub" / "adapters").exists()
    holds_a_file(tmp_path / "told")
    save_for_hub(model, processor, tmp_path / "told", overwrite=True)
    assert (tmp_path / "told" / "notes.txt").exists() and (tmp_path / "told" / "pipelines_mint.py").exists()


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
def test_the_cards_task_is_what_transformers_runs_and_a_stage1_folder_keeps_the_llm_tokenizer(components, tmp_path):
    """A stage-2 card names transformers' any-to-any (not the unknown audio-text-to-text); a stage-1 folder's own
    tokenizer is the Q-Former's, for the stock zero-shot pipeline, and the LLM's comes back for stage 2."""
    for stage, tag in ((2, "any-to-any"), (1, "zero-shot-audio-classification")):
        model, processor = assembled(components, stage=stage)
        folder = save_for_hub(model, processor, tmp_path / f"stage{stage}")
        assert ModelCard.load(os.path.join(folder, "README.md")).data.pipeline_tag == tag
    assert AutoTokenizer.from_pretrained(folder).cls_token == "[CLS]"
    assert AutoFeatureExtractor.from_pretrained(folder).return_attention_mask is False
    reloaded = MintProcessor.from_pretrained(folder)
    assert reloaded.tokenizer("a dog barks")["input_ids"] == processor.tokenizer("a dog barks")["input_ids"]
    assert reloaded.audio_token_id == processor.audio_token_id and reloaded.chat_template == processor.chat_template
    assert reloaded.qformer_tokenizer.bos_token == "[DEC]"


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


@pytest.mark.parametrize("frequency", [0, -2, "1", 1.0, True, None, np.float64(2)])
def test_a_cross_attention_frequency_that_is_not_a_positive_integer_is_refused(components, frequency):
    with pytest.raises(ValueError) as raised:
        assemble_mint(components["audio"], components["bert"], components["llm"], cross_attention_frequency=frequency)
    assert f"cross_attention_frequency must be an integer of at least 1 (cross-attention to the audio in every " \
           f"layer; 2, BLIP-2's, in every second one), got {frequency!r}." in str(raised.value)


def test_a_numpy_cross_attention_frequency_is_an_integer(components):
    model, _ = assemble_mint(components["audio"], components["bert"], components["llm"], stage=1,
                             num_query_tokens=4, audio_text_hidden_size=16, cross_attention_frequency=np.int64(1))
    assert type(model.config.qformer_config.cross_attention_frequency) is int
    assert all(layer.has_cross_attention for layer in model.qformer.encoder.layer)


@pytest.mark.parametrize("frequency", [0, -1])
def test_a_frequency_set_on_the_config_after_it_was_checked_is_refused_when_the_model_is_built(frequency):
    config = tiny.mint_config()
    config.qformer_config.cross_attention_frequency = frequency
    with pytest.raises(ValueError, match=f"cross_attention_frequency must be an integer of at least 1.*got "
                                         f"{frequency}"):
        MintForPreTraining(config)


def test_a_folder_whose_config_names_another_cross_attention_frequency_is_refused(tmp_path):
    config = tiny.mint_config()
    config.qformer_config = type(config.qformer_config)(**{**config.qformer_config.to_dict(),
                                                           "cross_attention_frequency": 1})
    MintForPreTraining(config).save_pretrained(tmp_path / "every")
    path = tmp_path / "every" / "config.json"
    saved = json.loads(path.read_text())
    saved["qformer_config"]["cross_attention_frequency"] = 2
    path.write_text(json.dumps(saved))
    if saved["qformer_config"]["num_hidden_layers"] < 2:
        pytest.fail("the tiny Q-Former needs two layers for frequencies 1 and 2 to differ")
    with pytest.raises(ValueError) as raised:
        MintForPreTraining.from_pretrained(tmp_path / "every")
    words = ("holds Bridge-Net weights that the model built from its config has no place for", "crossattention",
             "cross_attention_frequency")
    assert all(word in str(raised.value) for word in words)


def test_assemble_puts_cross_attention_every_given_number_of_layers_and_bert_in_the_rest(components, tmp_path):
    every, _ = assemble_mint(components["audio"], components["bert"], components["llm"], stage=1,
                             num_query_tokens=4, audio_text_hidden_size=16, cross_attention_frequency=1)
    second, _ = assembled(components, stage=1)
    depth = every.config.qformer_config.num_hidden_layers
    assert [layer.has_cross_attention for layer in every.qformer.encoder.layer] == [True] * depth
    assert [layer.has_cross_attention for layer in second.qformer.encoder.layer] == [i % 2 == 0 for i in range(depth)]
    for name, value in second.qformer.state_dict().items():
        if "crossattention" not in name:  # BERT's, whichever the frequency (the new [DEC] token's row aside)
            rows = -1 if name == "embeddings.word_embeddings.weight" else None
            assert torch.equal(every.qformer.state_dict()[name][:rows], value[:rows]), name
    every.save_pretrained(tmp_path / "every")
    reloaded = MintForPreTraining.from_pretrained(tmp_path / "every")
    assert reloaded.config.qformer_config.cross_attention_frequency == 1
    assert all(torch.equal(reloaded.state_dict()[k], v) for k, v in every.state_dict().items())
