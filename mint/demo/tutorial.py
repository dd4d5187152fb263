# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""The set-up every notebook of notebooks/ starts with: where the repository, the notebooks' work folder and the
demo's output are, and the models the notebooks use.

    from mint.demo.tutorial import prepare_tutorial
    models = prepare_tutorial()       # models.stage2, models.stage1, models.untrained_stage2, models.corpus

With a finished demo (`mint demo --output mint-demo`, or the folder `MINT_DEMO_DIR` names), the notebooks use its
trained stage-1 and stage-2 models and its corpus; its untrained assembly stands beside them for comparison. Without
one they build the corpus and the assembly into the work folder (`MINT_NOTEBOOK_DIR`, default `mint-notebooks/` in
the repository) and use the untrained assembly, saying so: its captions, labels and scores then mean nothing.
"""

import os
from dataclasses import dataclass

from datasets import DatasetDict, load_from_disk

from mint.demo.corpus import build_corpus
from mint.demo.run import assemble


@dataclass
class TutorialModels:
    """The folders and data of a notebook. `stage1` and `stage2` are the demo's trained models, or the untrained
    assembly (`assembled`, and `untrained_stage2`: the assembly loaded into stage 2, its LLM random) without a
    finished demo; `trained` says which."""

    root: str
    work: str
    demo: str
    corpus: DatasetDict
    assembled: str
    untrained_stage2: str
    stage1: str
    stage2: str
    trained: bool


def tutorial_folders(start: str | None = None) -> tuple[str, str, str]:
    """
    `(root, work, demo)`: the repository (the folder holding modeling_mint.py, searched upwards from `start`,
    default the working folder, where Jupyter runs a notebook: notebooks/), or `start` itself outside a repository;
    the notebooks' work folder (`MINT_NOTEBOOK_DIR`, default `root/mint-notebooks`) and the demo's output
    (`MINT_DEMO_DIR`, default `root/mint-demo`, where `mint demo --output mint-demo` writes from the repository).
    """
    start = os.path.abspath(start or os.getcwd())
    root = start
    while not os.path.isfile(os.path.join(root, "modeling_mint.py")) and os.path.dirname(root) != root:
        root = os.path.dirname(root)
    root = root if os.path.isfile(os.path.join(root, "modeling_mint.py")) else start
    return (root, os.environ.get("MINT_NOTEBOOK_DIR", os.path.join(root, "mint-notebooks")),
            os.environ.get("MINT_DEMO_DIR", os.path.join(root, "mint-demo")))


def finished_demo(demo: str) -> bool:
    """Whether `demo` holds the demo's trained models and its corpus."""
    return all(os.path.isfile(os.path.join(demo, *path)) for path in (
        ("stage1", "model.safetensors"), ("stage2", "model.safetensors"), ("assembled", "model.safetensors"),
        ("corpus", "dataset_dict.json")))


def untrained_stage2(assembled: str, output: str) -> str:
    """The stage-1 assembly `assembled` saved as a stage-2 model in `output`: Bridge-Net and the LLM as assembled, the
    projection random (seeded). It shows the calls work; its words mean nothing."""
    import torch

    from modeling_mint import MintForConditionalGeneration
    from processing_mint import MintProcessor

    with torch.random.fork_rng():
        torch.manual_seed(0)  # the projection is initialised here: the same one on every run
        MintForConditionalGeneration.from_pretrained(assembled).save_pretrained(output)
    MintProcessor.from_pretrained(assembled).save_pretrained(output)
    return output


def prepare_tutorial(start: str | None = None, progress: bool = False) -> TutorialModels:
    """
    The notebooks' models and corpus (see the module's docstring); prints one line saying whether they are the demo's
    trained models or, in capitals, the untrained assembly.
    """
    root, work, demo = tutorial_folders(start)
    if finished_demo(demo):
        corpus, assembled = load_from_disk(os.path.join(demo, "corpus")), os.path.join(demo, "assembled")
    else:
        corpus = build_corpus(os.path.join(work, "corpus"), progress=progress)
        assembled = os.path.join(work, "assembled")
        if not os.path.isfile(os.path.join(assembled, "model.safetensors")):
            assemble(work, corpus)
    untrained = untrained_stage2(assembled, os.path.join(work, "stage2-untrained"))
    trained = finished_demo(demo)
    if trained:
        print("Trained demo model: stage1/ and stage2/ of the demo folder (MINT_DEMO_DIR or mint-demo/).")
    else:
        print(f"WARNING: no trained demo model in {demo} (run `mint demo --output mint-demo` from {root}): this "
              "notebook uses the UNTRAINED assembly, whose captions, labels and scores mean nothing.")
    return TutorialModels(root, work, demo, corpus, assembled, untrained,
                          os.path.join(demo, "stage1") if trained else assembled,
                          os.path.join(demo, "stage2") if trained else untrained, trained)


__all__ = ["TutorialModels", "finished_demo", "prepare_tutorial", "tutorial_folders", "untrained_stage2"]
