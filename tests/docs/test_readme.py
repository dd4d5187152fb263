"""The README's snippets run as written: every ```python block as it stands, printing what it says it prints, and
every `python illustration` block in a folder of small stand-ins for the user's files it names."""

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from tests.utils import ROOT



def runnable_snippets() -> list[str]:
    readme = open(os.path.join(ROOT, "README.md")).read()
    return re.findall(r"```python\n(.*?)```", readme, re.S)


def test_every_runnable_readme_snippet_runs(tmp_path):
    snippets = runnable_snippets()
    assert snippets, "the README has no runnable snippet"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": ROOT}
    outputs = []
    for index, code in enumerate(snippets):
        work = tmp_path / f"snippet{index}"
        work.mkdir()
        result = subprocess.run([sys.executable, "-c", code], cwd=work, env=env, capture_output=True, text=True,
                                timeout=600)
        assert result.returncode == 0, (index, result.stderr[-3000:])
        outputs.append((work, result.stdout.splitlines()))
    work, lines = outputs[0]  # the quick start
    losses = ast.literal_eval(lines[0])
    assert losses["loss"] == round(losses["loss_alc"] + losses["loss_alm"] + losses["loss_atg"], 3) or \
        abs(losses["loss"] - (losses["loss_alc"] + losses["loss_alm"] + losses["loss_atg"])) < 2e-3
    assert any(line.startswith("zero-shot probabilities") for line in lines)
    assert any(line.startswith("LM loss") and float(line.split()[-1]) > 0 for line in lines)
    captions = [ast.literal_eval(line) for line in lines if line.startswith("[{'generated_text'")]
    assert len(captions) == 1 and len(captions[0]) == 2  # one caption per clip from the pipeline
    assert (work / "mint-stage1" / "model.safetensors").exists() and (work / "mint-stage2" / "config.json").exists()


def illustration_snippets() -> list[str]:
    readme = open(os.path.join(ROOT, "README.md")).read()
    return re.findall(r"```python illustration\n(.*?)```", readme, re.S)


def user_files(work: Path) -> None:
    """Small stand-ins for the user's files, at the paths the illustration snippets name: component checkpoints, a
    trained MINT folder, audio files, datasets as `mint-data prepare` writes them, and a `mint-eval` result."""
    import soundfile
    from datasets import load_from_disk
    from transformers import Data2VecAudioModel, T5ForConditionalGeneration, Wav2Vec2FeatureExtractor

    import mint.evaluation.benchmarks as evaluation_mint
    from tests.utils import tiny
    from mint.hub import assemble_mint
    from mint.data.releases import prepare_dataset
    from tests.utils.audio import clips
    from test_prepare import CLOTHO_CAPTIONS, clip, fsd50k_release, nsynth_release, wavcaps_release, write

    models = work / "models"
    torch.manual_seed(0)
    Data2VecAudioModel(tiny.audio_config()).save_pretrained(models / "data2vec-audio-base")
    Wav2Vec2FeatureExtractor(return_attention_mask=True).save_pretrained(models / "data2vec-audio-base")
    os.symlink(tiny.MINILM_DIR, models / "bert-base-uncased")  # the real (small) BERT the tests use
    T5ForConditionalGeneration(tiny.t5_config()).save_pretrained(models / "flan-t5-xl")
    tiny.llm_tokenizer().save_pretrained(models / "flan-t5-xl")
    model, processor = assemble_mint(*(str(models / name) for name in ("data2vec-audio-base", "bert-base-uncased",
                                                                       "flan-t5-xl")),
                                     stage=2, num_query_tokens=4, audio_text_hidden_size=16)
    model.save_pretrained(work / "path" / "to" / "mint")  # a stage-2 folder as training writes it
    processor.save_pretrained(work / "path" / "to" / "mint")

    a, b = clips((16000, 12000))
    soundfile.write(work / "a.wav", a, 16000)
    soundfile.write(work / "b.flac", b, 16000)
    soundfile.write(work / "street.ogg", np.tile(a, 3)[:44100], 44100)
    soundfile.write(work / "concert.flac", np.tile(b, 27)[:31 * 16000], 16000)  # two 30 s windows

    releases = work / "releases"
    for name, release in (("wavcaps", wavcaps_release), ("fsd50k", fsd50k_release), ("nsynth", nsynth_release)):
        release(releases / name)
        prepare_dataset(name, releases / name, work / "data" / name, progress=False)
    write(releases / "clotho" / "clotho_captions_evaluation.csv", CLOTHO_CAPTIONS.splitlines()[0] + "\n"
          "Car Horn.wav,A car horn.,A horn honks.,Traffic.,A car.,Honking.\n")
    write(releases / "clotho" / "clotho_metadata_evaluation.csv", "file_name,keywords,sound_id,sound_link,"
          "start_end_samples,manufacturer,license\nCar Horn.wav,car,64760,l,\"[0, 1]\",m,l\n")
    clip(releases / "clotho" / "evaluation" / "Car Horn.wav")
    prepare_dataset("clotho", releases / "clotho", work / "data" / "clotho", progress=False)
    load_from_disk(str(work / "data" / "wavcaps"))["train"].save_to_disk(str(work / "wavcaps"))
    load_from_disk(str(work / "data" / "nsynth"))["train"].save_to_disk(str(work / "nsynth"))
    assert evaluation_mint.main(["classify", "--model", str(work / "path" / "to" / "mint"), "--dataset",
                                 str(work / "data" / "nsynth"), "--split", "test", "--template", "NSynth",
                                 "--output", str(work / "mint_eval.json"), "--quiet"]) == 0


def test_every_illustration_snippet_runs_as_written_on_stand_ins(tmp_path):
    """The `python illustration` snippets, in README order, in one folder of stand-ins for the files they name."""
    snippets = illustration_snippets()
    assert len(snippets) == 6
    user_files(tmp_path)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": ROOT}
    for index, code in enumerate(snippets):
        result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                                timeout=600)
        assert result.returncode == 0, (index, code, result.stderr[-3000:])
        if "leakage_report" in code:  # Clotho's car horn is FSD50K's clip 64760 (Freesound)
            report = ast.literal_eval(result.stdout.strip())
            assert report["num_overlapping"] == 1 and "id:freesound:64760" in report["examples"][0]["shared"]
    for written in ("mint-hub/config.json", "mint-small/model.safetensors", "models/mint-init/config.json",
                    "data/wavcaps-pairs/dataset_info.json"):
        assert (tmp_path / written).is_file(), written
