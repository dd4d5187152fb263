"""The snippets of the README and of `docs/` run as written: every ```python block as it stands, printing what it says
it prints, and every `python illustration` block, in reading order, in a folder of small stand-ins for the user's files
it names. The links between the pages lead somewhere, and the citation is the model card's."""

import ast
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.docs.documents import code_blocks, documentation, read
from tests.utils import ROOT


def runnable_snippets() -> list[str]:
    return [code for _, code in code_blocks("python")]


@pytest.mark.slow
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
    quick_start = [i for i, code in enumerate(snippets) if "MintForPreTraining(config)" in code]
    assert len(quick_start) == 1
    work, lines = outputs[quick_start[0]]  # the quick start: a small MINT built offline
    losses = ast.literal_eval(lines[0])
    assert losses["loss"] == round(losses["loss_alc"] + losses["loss_alm"] + losses["loss_atg"], 3) or \
        abs(losses["loss"] - (losses["loss_alc"] + losses["loss_alm"] + losses["loss_atg"])) < 2e-3
    assert any(line.startswith("zero-shot probabilities") for line in lines)
    assert any(line.startswith("LM loss") and float(line.split()[-1]) > 0 for line in lines)
    captions = [ast.literal_eval(line) for line in lines if line.startswith("[{'generated_text'")]
    assert len(captions) == 1 and len(captions[0]) == 2  # one caption per clip from the pipeline
    assert (work / "mint-stage1" / "model.safetensors").exists() and (work / "mint-stage2" / "config.json").exists()


def illustration_snippets() -> list[str]:
    return [code for _, code in code_blocks("python illustration")]


CLOTHO_HEADER = "file_name,caption_1,caption_2,caption_3,caption_4,caption_5\n"


def user_files(work: Path) -> None:
    """Small stand-ins for the user's files, at the paths the illustration snippets name: component checkpoints, a
    trained MINT folder (also where the demo writes its stage 2), audio files, datasets as `mint data prepare` writes
    them, and a `mint eval` result."""
    import soundfile
    from datasets import load_from_disk
    from transformers import Data2VecAudioModel, T5ForConditionalGeneration, Wav2Vec2FeatureExtractor

    from mint import assemble_mint, prepare_dataset
    from mint.cli import main
    from tests.utils import tiny
    from tests.utils.audio import clips
    from tests.utils.releases import clip, fsd50k_release, nsynth_release, wavcaps_release, write

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
    shutil.copytree(work / "path" / "to" / "mint", work / "mint-demo" / "stage2")  # as `mint demo` leaves it

    a, b = clips((16000, 12000))
    soundfile.write(work / "a.wav", a, 16000)
    soundfile.write(work / "clip.wav", a, 16000)
    soundfile.write(work / "b.flac", b, 16000)
    soundfile.write(work / "street.ogg", np.tile(a, 3)[:44100], 44100)
    soundfile.write(work / "concert.flac", np.tile(b, 27)[:31 * 16000], 16000)  # two 30 s windows

    releases = work / "releases"
    for name, release in (("wavcaps", wavcaps_release), ("fsd50k", fsd50k_release), ("nsynth", nsynth_release)):
        release(releases / name)
        prepare_dataset(name, releases / name, work / "data" / name, progress=False)
    write(releases / "clotho" / "clotho_captions_evaluation.csv", CLOTHO_HEADER +
          "Car Horn.wav,A car horn.,A horn honks.,Traffic.,A car.,Honking.\n")
    write(releases / "clotho" / "clotho_metadata_evaluation.csv", "file_name,keywords,sound_id,sound_link,"
          "start_end_samples,manufacturer,license\nCar Horn.wav,car,64760,l,\"[0, 1]\",m,l\n")
    clip(releases / "clotho" / "evaluation" / "Car Horn.wav")
    prepare_dataset("clotho", releases / "clotho", work / "data" / "clotho", progress=False)
    load_from_disk(str(work / "data" / "wavcaps"))["train"].save_to_disk(str(work / "wavcaps"))
    load_from_disk(str(work / "data" / "nsynth"))["train"].save_to_disk(str(work / "nsynth"))
    assert main(["eval", "classify", "--model", str(work / "path" / "to" / "mint"), "--dataset",
                 str(work / "data" / "nsynth"), "--split", "test", "--template", "NSynth",
                 "--output", str(work / "mint_eval.json"), "--quiet"]) == 0


@pytest.mark.slow
@pytest.mark.slow
def test_every_illustration_snippet_runs_as_written_on_stand_ins(tmp_path):
    """The `python illustration` snippets, in reading order, in one folder of stand-ins for the files they name."""
    snippets = illustration_snippets()
    assert len(snippets) == 7
    user_files(tmp_path)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": ROOT}
    for index, code in enumerate(snippets):
        result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                                timeout=600)
        assert result.returncode == 0, (index, code, result.stderr[-3000:])
        if "leakage_report" in code:  # Clotho's car horn is FSD50K's clip 64760 (Freesound)
            report = ast.literal_eval(result.stdout.strip())
            assert report["num_overlapping"] == 1 and "id:freesound:64760" in report["examples"][0]["shared"]
        if "mint-demo/stage2" in code:  # the README's first example: a caption, then the labels scored, best first
            caption, scores = (ast.literal_eval(line) for line in result.stdout.splitlines())
            assert list(caption) == ["generated_text"]
            assert sorted(s["label"] for s in scores) == ["flute", "guitar", "piano"]
            assert [s["score"] for s in scores] == sorted((s["score"] for s in scores), reverse=True)
    for written in ("mint-hub/config.json", "mint-small/model.safetensors", "models/mint-init/config.json",
                    "data/wavcaps-pairs/dataset_info.json"):
        assert (tmp_path / written).is_file(), written


def test_the_readme_starts_with_a_caption_example_and_lists_every_page():
    readme = read("README.md")
    first_snippet = code_blocks("python illustration", ["README.md"])[0][1]
    assert readme.index(first_snippet) < readme.index("\n## The demo")  # something to run before the long parts
    pages = sorted(f"docs/{name}" for name in os.listdir(os.path.join(ROOT, "docs")) if name.endswith(".md"))
    assert sorted(documentation()[1:]) == pages  # every page is reachable from the README's table of contents


def _anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("path", documentation() + ["recipes/README.md", "launch/README.md"])
def test_every_relative_link_leads_to_a_file_and_heading(path):
    text = re.sub(r"^```.*?^```", "", read(path), flags=re.S | re.M)  # links in prose and tables, not in code
    for target, anchor in re.findall(r"\]\(([^)#\s]*)(?:#([^)\s]+))?\)", text):
        if target.startswith(("http://", "https://")):
            continue
        linked = os.path.normpath(os.path.join(os.path.dirname(path), target)) if target else path
        assert os.path.exists(os.path.join(ROOT, linked)), (path, target)
        if anchor:
            headings = re.findall(r"^#+ (.*)$", re.sub(r"^```.*?^```", "", read(linked), flags=re.S | re.M), re.M)
            assert anchor in {_anchor(h) for h in headings}, (path, target, anchor)


def test_the_citation_is_the_model_cards():
    from mint.hub import PAPER_CITATION

    (_, bibtex), = code_blocks("bibtex", ["README.md"])
    assert bibtex.strip() == PAPER_CITATION.strip()
    paper = read("README.md").split("## Install")[0]
    assert "Interspeech 2024" in paper and "Hang Zhao" in paper and "Zejun Ma" in paper


def test_every_json_recipe_snippet_is_a_valid_recipe(tmp_path):
    """The ```json blocks are recipes: `load_recipe` accepts each (every key and value checked)."""
    from mint import load_recipe

    blocks = code_blocks("json")
    assert blocks
    for index, (path, code) in enumerate(blocks):
        recipe_file = tmp_path / f"recipe{index}.json"
        recipe_file.write_text(code)
        assert load_recipe(recipe_file).stage == json.loads(code)["stage"], path


def test_every_name_the_documents_take_from_mint_exists():
    """`from mint import X` and `mint.X` in the documents and notebooks name something `mint` exports."""
    import mint

    texts = [read(path) for path in documentation() + ["recipes/README.md", "launch/README.md"]]
    for name in sorted(os.listdir(os.path.join(ROOT, "notebooks"))):
        if name.endswith(".ipynb"):
            cells = json.loads(read(f"notebooks/{name}"))["cells"]
            texts.append("".join("".join(cell["source"]) for cell in cells))
    named = set()
    for text in texts:
        for imported in re.findall(r"from mint import ([\w, ]+)", text):
            named |= {name.strip() for name in imported.split(",")}
        named |= set(re.findall(r"`mint\.(\w+)\b(?!\.)", text))
    named -= {"data", "training", "evaluation", "hub", "demo", "cli"}  # the areas, named as packages
    assert named and not [name for name in sorted(named) if not hasattr(mint, name)]


@pytest.mark.parametrize("path", documentation() + ["recipes/README.md", "launch/README.md"])
def test_every_repository_file_the_documents_name_exists(path):
    """Test files, benchmarks, launch files, recipes and notebooks named in the prose are in the repository."""
    for named in re.findall(r"`((?:tests|benchmarks|launch|recipes|notebooks)/[\w./-]+)`", read(path)):
        assert os.path.exists(os.path.join(ROOT, named)), (path, named)
