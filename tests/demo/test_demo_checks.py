"""The demo's seed and thread checks, the evaluation reader's batch size, the collator's text checks and what they
blame, the held-out ALM errors, and `mint demo --probe-encoder`'s options: what is refused, what still works."""
import os

import numpy as np
import pytest
import torch
from datasets import Audio, Dataset

from mint.data.collator import MintDataCollator
from mint.demo.run import check_seed, check_seeds, run_demo
from mint.training.alm import alm_pair_accuracy
from mint.training.collator import CheckedCollator, number_rows
from modeling_mint import MintForPreTraining
from tests.utils import tiny
from tests.utils.audio import write_wavs


# ---- 1. seeds / threads ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("seeds, expected", [
    ((0, 1), [0, 1]), (range(3), [0, 1, 2]), (np.array([0, 2**32 - 1], dtype=np.uint64), [0, 2**32 - 1]),
    ([np.int64(5)], [5]), ([np.uint64(2**32 - 1)], [2**32 - 1])])
def test_seeds_accepted(seeds, expected):
    assert check_seeds(seeds) == expected


@pytest.mark.parametrize("seeds", [{0, 1}, {0: 1}, (s for s in [0]), [1.0], [2**32], [-1], [True], "01", [0, 0],
                                   np.array([[0, 1]]), np.array(3), [np.float64(1.0)]])
def test_seeds_refused_with_value_error(seeds):
    with pytest.raises(ValueError, match="stage2_seeds"):
        check_seeds(seeds)


def test_seed_boundaries():
    assert check_seed("seed", 2**32 - 1) == 2**32 - 1
    with pytest.raises(ValueError):
        check_seed("seed", 2**32)
    with pytest.raises(ValueError):
        check_seed("seed", np.uint64(2**32))


@pytest.mark.parametrize("threads", [2**63, 100_000, 1025])
def test_huge_threads_refused_before_the_folder(tmp_path, threads):
    """torch crashes the process (a segfault) at 100,000 threads: refused before anything runs."""
    out = tmp_path / "demo"
    with pytest.raises(ValueError, match="threads must be a positive integer up to 1024"):
        run_demo(str(out), threads=threads, progress=False)
    assert not out.exists(), os.listdir(out)


@pytest.mark.parametrize("kwargs", [
    dict(reuse_stage1=True, stage1_epochs=1.0), dict(reuse_stage1=True, stage1_dropout=0.1),
    dict(reuse_stage1=True, stage1_query_learning_rate=1e-3), dict(stage1_query_learning_rate=float("nan")),
    dict(reuse_stage1=True, overwrite=True), dict(reuse_stage1="yes"), dict(progress="no"), dict(probe=1),
    dict(stage2_seeds=[0, 0]), dict(seed=2**32), dict(seed=1.0), dict(threads=0), dict(stage2_epochs=float("nan")),
    dict(stage1_epochs=0), dict(bridge_learning_rate=-1), dict(stage2_dropout=1.0), dict(stage2_seeds=np.array(3)),
])
def test_run_demo_refuses_before_the_folder(tmp_path, kwargs):
    out = tmp_path / "demo"
    with pytest.raises(ValueError):
        run_demo(str(out), **kwargs)
    assert not out.exists()


def test_reuse_stage1_without_log_refused_folder_untouched(tmp_path):
    out = tmp_path / "demo"
    (out / "stage1").mkdir(parents=True)
    (out / "stage1" / "model.safetensors").write_bytes(b"x")
    before = sorted(p.name for p in out.rglob("*"))
    with pytest.raises(ValueError, match="stage1_logs.json"):
        run_demo(str(out), reuse_stage1=True)
    assert sorted(p.name for p in out.rglob("*")) == before


# ---- 3. ClipReader batch size --------------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "8", None, np.bool_(True)])
def test_clip_reader_refuses(bad):
    from mint.evaluation.reading import ClipReader
    with pytest.raises(ValueError, match="batch_size"):
        ClipReader(tiny.processor(), "audio", bad)


def test_clip_reader_accepts_numpy_int():
    from mint.evaluation.reading import ClipReader
    ClipReader(tiny.processor(), "audio", np.int64(4))


# ---- 4/5. collator text checks ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    return write_wavs(tmp_path_factory.mktemp("wavs"))


def test_stage2_examples_from_to_mint_examples_multilabel_pass_the_collator(paths):
    from mint.data.examples import to_mint_examples
    data = Dataset.from_dict({"audio": paths[:2], "tags": [["piano", "violin"], ["drum"]]}).cast_column(
        "audio", Audio())
    examples = to_mint_examples(data, "OpenMIC", label_column="tags")
    collator = MintDataCollator(tiny.processor(), stage=2)
    batch = collator([examples[0], examples[1]])
    assert "labels" in batch


def test_stage2_target_missing_message_names_column(paths):
    collator = MintDataCollator(tiny.processor(), stage=2)
    audio = {"array": np.zeros(16000, np.float32) + 0.1, "sampling_rate": 16000}
    with pytest.raises(ValueError, match="'target'"):
        collator([{"audio": audio, "prompt": "p"}])


def test_checked_collator_names_caption_problem_with_row(paths):
    data = number_rows(Dataset.from_dict({"audio": paths[:3], "caption": ["a", None, "c"]}).cast_column(
        "audio", Audio(decode=False)))
    checked = CheckedCollator(MintDataCollator(tiny.processor(), stage=1))
    with pytest.raises(ValueError) as raised:
        checked.valid_rows(data)
    message = str(raised.value)
    assert "row 1" in message and "caption" in message, message
    # the per-row message should not speak of 'batch item(s) [0]' beside 'row 1'
    assert "batch item" not in message, message


# ---- 5. MintTrainer.evaluate on an empty held-out set -------------------------------------------------------------

def test_evaluate_on_empty_held_out_says_empty(tmp_path, paths):
    from transformers import TrainingArguments
    from mint.training.trainer import MintTrainer
    torch.manual_seed(0)
    model = MintForPreTraining(tiny.mint_config())
    collator = CheckedCollator(MintDataCollator(tiny.processor(), stage=1), skip_invalid=True)
    args = TrainingArguments(output_dir=str(tmp_path / "o"), report_to=[], use_cpu=True)
    trainer = MintTrainer(model=model, args=args, data_collator=collator)
    empty = number_rows(Dataset.from_dict({"audio": paths[:1], "caption": ["a"]}).cast_column(
        "audio", Audio())).select([])
    with pytest.raises(ValueError) as raised:
        trainer.evaluate(empty)
    assert "invalid" not in str(raised.value), str(raised.value)


# ---- 6. alm_pair_accuracy: a model error blamed on the rows -------------------------------------------------------

def test_model_value_error_not_blamed_on_rows(paths, monkeypatch):
    torch.manual_seed(0)
    model = MintForPreTraining(tiny.mint_config()).eval()
    pairs = Dataset.from_dict({"audio": paths, "caption": ["a dog", "a cat", "a piano", "rain", "a flute"]}
                              ).cast_column("audio", Audio(decode=False))

    def broken(*a, **k):
        raise ValueError("internal shape bug in the encoder")

    monkeypatch.setattr(model, "encode_audio", broken)
    with pytest.raises(ValueError) as raised:
        alm_pair_accuracy(model, pairs, MintDataCollator(tiny.processor(), stage=1))
    assert "refused" not in str(raised.value), str(raised.value)


def test_collator_type_error_is_named(paths):
    torch.manual_seed(0)
    model = MintForPreTraining(tiny.mint_config()).eval()
    examples = [{"audio": {"path": p, "bytes": None}, "caption": c} for p, c in
                zip(paths, ["a dog", "a cat", "a piano", "rain", "a flute"])]
    examples[2]["audio"] = 12345  # not an audio at all
    with pytest.raises(TypeError) as raised:
        alm_pair_accuracy(model, examples, MintDataCollator(tiny.processor(), stage=1))
    assert "item 4 = row 2" in str(raised.value) and "audio clip 4 has type int" in str(raised.value), raised.value


# ---- 7. CLI --probe-encoder ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("extra", [["--overwrite"], ["--quiet"], ["--seed", "0"]])
def test_probe_encoder_legit_combinations_reach_the_probe(extra, monkeypatch, tmp_path):
    import mint.demo.probe as probe
    called = {}
    monkeypatch.setattr(probe, "probe_encoder", lambda *a, **k: called.setdefault("ok", True) and "done")
    from mint.cli import main
    main(["demo", "--probe-encoder", "--output", str(tmp_path / "d"), *extra])
    assert called.get("ok")


@pytest.mark.parametrize("extra", [["--seed", "5"], ["--threads", "2"], ["--stage2-seeds", "0"]])
def test_probe_encoder_training_options_refused(extra, monkeypatch, tmp_path):
    import mint.demo.probe as probe
    monkeypatch.setattr(probe, "probe_encoder", lambda *a, **k: pytest.fail("ran"))
    from mint.cli import main
    try:
        rc = main(["demo", "--probe-encoder", "--output", str(tmp_path / "d"), *extra])
    except (ValueError, SystemExit):
        return
    assert rc != 0


def test_cli_seed_range():
    from mint.cli.arguments import seed
    import argparse
    assert seed(str(2**32 - 1)) == 2**32 - 1
    with pytest.raises(argparse.ArgumentTypeError):
        seed(str(2**32))


@pytest.mark.parametrize("stage, example", [(1, {"caption": ""}), (2, {"prompt": "p", "target": ""}),
                                            (2, {"prompt": "p", "target": "   "})])
def test_empty_text_is_not_silently_trained_on(stage, example):
    good = {"array": (np.random.RandomState(0).randn(16000) * 0.1).astype(np.float32), "sampling_rate": 16000}
    checked = CheckedCollator(MintDataCollator(tiny.processor(), stage=stage), ["ds"])
    with pytest.raises(ValueError, match="row 0 of ds.*expected a non-blank string"):
        checked.valid_rows([{"audio": good, **example, "mint_row": 0, "mint_source": 0}])


@pytest.mark.parametrize("value, accepted", [(1, True), (np.int64(3), True), (np.uint8(2), True), (0, False),
                                             (-1, False), (1.0, False), (True, False), (np.bool_(True), False),
                                             ("2", False), (None, False)])
def test_check_positive_int_accepts_python_and_numpy_integers_only(value, accepted):
    from mint.data.examples import check_positive_int

    if accepted:
        check_positive_int("batch_size", value, "clips per forward pass")
    else:
        with pytest.raises(ValueError, match=r"batch_size must be a positive integer \(clips per forward pass\)"):
            check_positive_int("batch_size", value, "clips per forward pass")
