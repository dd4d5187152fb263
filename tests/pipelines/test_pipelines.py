"""pipeline("audio-to-text"), MINT zero-shot classification and the retrieval index."""

import json
import os
import pkgutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile
import torch
from datasets import Audio, Dataset
from transformers import pipeline
from transformers.pipelines import ZeroShotAudioClassificationPipeline

import mint
from tests.utils import tiny
from mint.hub import save_for_hub
from modeling_mint import MintForConditionalGeneration, MintForPreTraining, MintModel
from pipelines_mint import (ZERO_SHOT_TASK, MintAudioToTextPipeline, MintZeroShotAudioClassificationPipeline,
                            register_mint_pipelines)
from mint.evaluation.retrieval_index import MintRetrievalIndex
from tests.utils.audio import clips
from tests.utils.tiny import WORDS
from tests.utils import ROOT


register_mint_pipelines()
# Tiny random models mostly emit special tokens; suppressing them (and the audio placeholder) makes every caption 4
# real words.
LABELS = ["dog", "cat", "piano"]


def saved(model_class, tmp_path_factory, seed):
    folder = tmp_path_factory.mktemp(model_class.__name__)
    torch.manual_seed(seed)
    # The stage-2 model writes a different caption for each test clip.
    model = tiny.captioning_model() if model_class is MintForConditionalGeneration else tiny.amplify_audio(
        model_class(tiny.mint_config()))
    model.save_pretrained(folder)
    tiny.processor().save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def stage2_folder(tmp_path_factory):
    return saved(MintForConditionalGeneration, tmp_path_factory, seed=0)


@pytest.fixture(scope="module")
def stage1_folder(tmp_path_factory):
    return saved(MintForPreTraining, tmp_path_factory, seed=1)


def direct_captions(model, processor, audio, prompt="Generate audio caption:"):
    batch = processor(audio=audio, text=[prompt] * len(audio), sampling_rate=16000)
    return [t.strip() for t in processor.batch_decode(model.generate(**batch, **WORDS))]


def test_audio_to_text_takes_paths_arrays_rows_and_lists(stage2_folder, tmp_path):
    captioner = pipeline("audio-to-text", model=stage2_folder, device="cpu")  # registered, no remote code
    assert isinstance(captioner, MintAudioToTextPipeline)
    audio = clips()[:3]
    expected = direct_captions(captioner.model, captioner.processor, audio)
    assert all(len(text.split()) == 4 for text in expected) and len(set(expected)) == 3
    path = tmp_path / "clip.wav"
    soundfile.write(path, audio[0], 16000)
    assert captioner(str(path), **WORDS) == {"generated_text": expected[0]}
    assert captioner(audio[1], sampling_rate=16000, **WORDS) == {"generated_text": expected[1]}
    assert captioner({"array": audio[2], "sampling_rate": 16000}, **WORDS) == {"generated_text": expected[2]}
    rows = Dataset.from_dict({"audio": [str(path)], "caption": ["x"]}).cast_column("audio", Audio(decode=False))
    assert captioner(rows[0], **WORDS) == {"generated_text": expected[0]}
    assert captioner(list(audio), sampling_rate=16000, **WORDS) == [{"generated_text": t} for t in expected]


def test_batched_outputs_equal_one_by_one_and_prompt_is_used(stage2_folder):
    captioner = pipeline("audio-to-text", model=stage2_folder, device="cpu")
    audio = clips()
    one_by_one = [captioner(a, sampling_rate=16000, **WORDS) for a in audio]
    assert len({out["generated_text"] for out in one_by_one}) == 4  # a distinct caption per clip
    batched = captioner(list(audio), sampling_rate=16000, batch_size=3, **WORDS)
    assert batched == one_by_one
    prompt = "this is a sound of"
    expected = direct_captions(captioner.model, captioner.processor, audio[:2], prompt)
    assert captioner(list(audio[:2]), sampling_rate=16000, prompt=prompt, **WORDS) == \
        [{"generated_text": t} for t in expected]
    with pytest.raises(TypeError, match="unexpected parameters"):
        captioner(audio[0], sampling_rate=16000, max_new_tokenz=3)
    with pytest.raises(ValueError, match="without a sampling rate"):
        captioner(audio[0])


def test_long_audio_is_windowed_with_timestamps(stage2_folder):
    captioner = pipeline("audio-to-text", model=stage2_folder, device="cpu")
    captioner.processor.max_audio_seconds = 1.0
    long_clip = np.concatenate(clips((16000, 16000, 8000)))  # 2.5 s: windows of 1 s, 1 s, 0.5 s
    out = captioner(long_clip, sampling_rate=16000, long_audio_policy="window", **WORDS)
    assert [c["timestamp"] for c in out["chunks"]] == [(0.0, 1.0), (1.0, 2.0), (2.0, 2.5)]
    windows = [long_clip[:16000], long_clip[16000:32000], long_clip[32000:]]
    expected = direct_captions(captioner.model, captioner.processor, windows)
    assert [c["generated_text"] for c in out["chunks"]] == expected
    assert out["generated_text"] == f"[0.0-1.0 s] {expected[0]} [1.0-2.0 s] {expected[1]} [2.0-2.5 s] {expected[2]}"
    batched = captioner([long_clip, clips((9000,))[0]], sampling_rate=16000, long_audio_policy="window",
                        batch_size=2, **WORDS)
    assert batched[0] == out and "chunks" not in batched[1]


def test_chat_messages_give_the_plain_call_output(stage2_folder):
    captioner = pipeline("audio-to-text", model=stage2_folder, device="cpu")
    audio = clips((16000, 12000))
    conversations = [[{"role": "user", "content": [{"type": "audio", "audio": {"array": clip, "sampling_rate": 16000}},
                                                   {"type": "text", "text": "this is a sound of"}]}] for clip in audio]
    plain = captioner(list(audio), sampling_rate=16000, prompt="this is a sound of", **WORDS)
    assert captioner(conversations[0], **WORDS) == plain[0]
    assert captioner(conversations, **WORDS) == plain
    processor = captioner.processor
    from_chat = processor.apply_chat_template(conversations)
    direct = processor(audio=[{"array": clip, "sampling_rate": 16000} for clip in audio],
                       text=["this is a sound of"] * 2)
    assert from_chat.keys() == direct.keys()
    assert all(torch.equal(from_chat[k], direct[k]) for k in direct)
    # The pipeline reads a conversation with the processor's checks.
    two_clips = [{"role": "user", "content": [conversations[0][0]["content"][0]] * 2}]
    for reader in (captioner, processor.apply_chat_template):
        with pytest.raises(ValueError, match="Conversation 0 holds 2 audio items; expected exactly one"):
            reader(two_clips)
    with pytest.raises(ValueError, match="each message needs a 'content' list"):
        captioner([{"role": "user", "content": {"type": "audio"}}])


REGISTRY_SCRIPT = """
import copy, importlib, json, sys
from transformers.pipelines import PIPELINE_REGISTRY
stock = copy.deepcopy(PIPELINE_REGISTRY.supported_tasks)
for name in sys.argv[1:]:
    importlib.import_module(name)
imported = PIPELINE_REGISTRY.supported_tasks == stock
importlib.import_module("pipelines_mint").register_mint_pipelines()
after = PIPELINE_REGISTRY.supported_tasks
print(json.dumps({"imported": imported, "stock_kept": {t: after[t] for t in stock} == stock,
                  "added": sorted(set(after) - set(stock))}))
"""


def test_importing_mint_patches_no_pipeline_task():
    modules = [name[:-3] for name in sorted(os.listdir(ROOT)) if name.endswith("_mint.py")]
    modules += [module.name for module in pkgutil.walk_packages(mint.__path__, "mint.")
                if not module.name.endswith("__main__")]
    assert {"modeling_mint", "pipelines_mint", "mint.hub", "mint.training.trainer"} <= set(modules)
    result = subprocess.run([sys.executable, "-c", REGISTRY_SCRIPT, *modules], capture_output=True, text=True,
                            cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"imported": True, "stock_kept": True,
                      "added": ["audio-to-text", "mint-zero-shot-audio-classification"]}


def test_stock_zero_shot_pipeline_runs_a_published_stage1_folder(stage1_folder, tmp_path):
    model = MintForPreTraining.from_pretrained(stage1_folder).eval()
    folder = save_for_hub(model, tiny.processor(), tmp_path / "hub")
    classifier = pipeline("zero-shot-audio-classification", model=folder, device="cpu")
    assert type(classifier) is ZeroShotAudioClassificationPipeline and type(classifier.model) is MintModel
    audio = clips((16000, 12000))
    mint = pipeline(ZERO_SHOT_TASK, model=stage1_folder, device="cpu")
    for clip in audio:
        stock = classifier(clip, candidate_labels=LABELS)
        ours = mint(clip, candidate_labels=LABELS, sampling_rate=16000, scoring="embedding")
        assert [r["label"] for r in stock] == [r["label"] for r in ours]
        assert [r["score"] for r in stock] == pytest.approx([r["score"] for r in ours], abs=1e-5)


def test_zero_shot_llm_scores_are_vocabulary_ranking(stage2_folder):
    classifier = pipeline(ZERO_SHOT_TASK, model=stage2_folder, device="cpu")
    assert isinstance(classifier, MintZeroShotAudioClassificationPipeline)
    audio = clips((16000, 12000, 9000))
    processor, model = classifier.processor, classifier.model
    batch = processor(audio=list(audio), text=["This is a sound of"] * 3, sampling_rate=16000)
    with torch.no_grad():
        expected = model.score_candidates(**processor.tokenize_candidates(LABELS), **batch).softmax(-1)
    results = classifier(list(audio), candidate_labels=LABELS, sampling_rate=16000, batch_size=2)
    for result, row in zip(results, expected):
        assert [r["score"] for r in result] == sorted((r["score"] for r in result), reverse=True)
        by_label = {r["label"]: r["score"] for r in result}
        assert [by_label[label] for label in LABELS] == pytest.approx(row.tolist(), abs=1e-6)
    alone = classifier(audio[0], candidate_labels="dog, cat, piano", sampling_rate=16000)
    assert [r["label"] for r in alone] == [r["label"] for r in results[0]]
    assert [r["score"] for r in alone] == pytest.approx([r["score"] for r in results[0]], abs=1e-6)
    normalised = classifier(audio[0], candidate_labels=LABELS, sampling_rate=16000, length_normalize=True)
    lengths = processor.tokenize_candidates(LABELS)["candidate_attention_mask"].sum(-1)
    with torch.no_grad():
        raw = model.score_candidates(**processor.tokenize_candidates(LABELS), **processor(
            audio=[audio[0]], text=["This is a sound of"], sampling_rate=16000))[0]
    by_label = {r["label"]: r["score"] for r in normalised}
    assert [by_label[label] for label in LABELS] == pytest.approx((raw / lengths).softmax(-1).tolist(), abs=1e-6)
    with pytest.raises(ValueError, match="needs a MintModel"):
        classifier(audio[0], candidate_labels=LABELS, sampling_rate=16000, scoring="embedding")


def test_zero_shot_embedding_and_matching_on_a_stage1_folder(stage1_folder):
    classifier = pipeline(ZERO_SHOT_TASK, model=stage1_folder, device="cpu")
    model, processor = classifier.model, classifier.processor
    assert type(model) is MintForPreTraining  # loaded as the stage it was saved from
    audio = clips((16000, 12000))
    hypotheses = processor(text=[f"This is a sound of {c}." for c in LABELS], return_llm_inputs=False)
    clips_in = processor(audio=list(audio), sampling_rate=16000)
    with torch.no_grad():
        text = model.get_text_features(hypotheses["qformer_input_ids"], hypotheses["qformer_attention_mask"])
        similarity = model.audio_text_similarity(model.get_audio_features(**clips_in).pooler_output,
                                                 text.pooler_output)
        embedding = (similarity / model.temperature()).softmax(-1)
        matching = torch.stack([model.get_matching_scores(
            hypotheses["qformer_input_ids"], hypotheses["qformer_attention_mask"],
            **{k: v[i : i + 1].repeat_interleave(3, 0) for k, v in clips_in.items()}) for i in range(2)])
    for mode, expected in (("embedding", embedding), ("matching", matching)):
        results = classifier(list(audio), candidate_labels=LABELS, sampling_rate=16000, scoring=mode)
        for result, row in zip(results, expected):
            by_label = {r["label"]: r["score"] for r in result}
            assert [by_label[label] for label in LABELS] == pytest.approx(row.tolist(), abs=1e-5), mode
    with pytest.raises(ValueError, match="needs a MintForConditionalGeneration"):
        classifier(audio[0], candidate_labels=LABELS, sampling_rate=16000, scoring="llm")
    for template in ("no slot", "{label}", "{} and {}"):
        with pytest.raises(ValueError, match="exactly one"):
            classifier(audio[0], candidate_labels=LABELS, sampling_rate=16000, hypothesis_template=template)
    with pytest.raises(ValueError, match="candidate_labels"):
        classifier(audio[0], sampling_rate=16000)
    with pytest.raises(ValueError, match="audio-to-text needs a stage-2 MINT"):
        pipeline("audio-to-text", model=model, processor=processor, device="cpu")
    with pytest.raises(ValueError, match="audio-to-text needs a stage-2 MINT"):
        pipeline("audio-to-text", model=stage1_folder, device="cpu")  # a folder: no random LLM is built


def test_windowed_clips_get_one_score_row_each(stage1_folder):
    classifier = pipeline(ZERO_SHOT_TASK, model=stage1_folder, device="cpu")
    classifier.processor.max_audio_seconds, classifier.processor.long_audio_policy = 1.0, "window"
    long_clip = np.concatenate(clips((16000, 16000, 8000)))
    windows = [long_clip[:16000], long_clip[16000:32000], long_clip[32000:]]
    model, processor = classifier.model, classifier.processor
    text = processor(text=[f"This is a sound of {c}." for c in LABELS], return_llm_inputs=False)
    audio = processor(audio=windows, sampling_rate=16000, long_audio_policy="crop")
    with torch.no_grad():
        per_window = MintModel.forward(model, input_ids=text["qformer_input_ids"],
                                       attention_mask=text["qformer_attention_mask"], **audio).logits_per_audio
    results = classifier([long_clip, windows[0]], candidate_labels=LABELS, sampling_rate=16000, batch_size=2)
    assert len(results) == 2
    by_label = {r["label"]: r["score"] for r in results[0]}
    assert [by_label[c] for c in LABELS] == pytest.approx(per_window.mean(0).softmax(-1).tolist(), abs=1e-6)
    first_only = per_window[0].softmax(-1).tolist()  # what a cropped clip would score
    assert max(abs(by_label[c] - p) for c, p in zip(LABELS, first_only)) > 1e-5  # 10x the tolerance above
    by_label = {r["label"]: r["score"] for r in results[1]}
    assert [by_label[c] for c in LABELS] == pytest.approx(first_only, abs=1e-6)


def test_retrieval_index_ranks_by_alc_similarity_and_reloads(stage1_folder, tmp_path):
    model = MintForPreTraining.from_pretrained(stage1_folder).eval()
    processor = tiny.processor()
    audio = clips((16000, 12000, 9000, 14000))
    index = MintRetrievalIndex(model, processor).add(list(audio[:3]), ids=["a", "b", "c"], sampling_rate=16000,
                                                     progress=False)
    index.add([audio[3]], ids=["d"], sampling_rate=16000, progress=False)
    queries = ["a dog barks", "a piano plays a low note"]
    with torch.no_grad():
        tokens = processor(text=queries, return_llm_inputs=False)
        text = model.get_text_features(tokens["qformer_input_ids"], tokens["qformer_attention_mask"]).pooler_output
        audio_embeds = model.get_audio_features(**processor(audio=list(audio), sampling_rate=16000)).pooler_output
        expected = model.audio_text_similarity(audio_embeds, text).t()
    results = index.search(queries, top_k=3)
    for row, result in zip(expected, results):
        order = row.argsort(descending=True)[:3].tolist()
        assert [r["index"] for r in result] == order
        assert [r["id"] for r in result] == [["a", "b", "c", "d"][i] for i in order]
        assert [r["score"] for r in result] == pytest.approx(row[order].tolist(), abs=1e-5)
    index.save(tmp_path / "index")
    reloaded = MintRetrievalIndex.load(tmp_path / "index", model, processor)
    assert reloaded.search(queries[0], top_k=10) == index.search(queries[0], top_k=10)
    assert len(reloaded.search(queries[0], top_k=10)) == 4
    with pytest.raises(ValueError, match="empty"):
        MintRetrievalIndex(model, processor).search("x")
    with pytest.raises(ValueError, match="stage-1"):
        MintRetrievalIndex(MintForConditionalGeneration(tiny.mint_config()), processor)
