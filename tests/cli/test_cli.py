"""The `mint` command: every sub-command as a subprocess (`python -m mint ...`) with its exit status, what it prints
and the files it writes, and the dispatcher's handling of failures."""

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
import soundfile
import torch
from datasets import Audio, Dataset, DatasetDict, load_from_disk

import mint.cli
from modeling_mint import MintForConditionalGeneration, MintForPreTraining
from tests.utils import ROOT, tiny
from tests.utils.audio import clips


pytestmark = pytest.mark.slow


LABELS = ["dog", "cat", "piano"]


def dataset(folder, lengths, seed=0):
    paths = []
    for i, sound in enumerate(clips(lengths, seed=seed)):
        paths.append(str(folder / f"clip{seed}_{i}.wav"))
        soundfile.write(paths[-1], sound, 16000)
    return Dataset.from_dict({"audio": paths, "label": [LABELS[i % 3] for i in range(len(paths))],
                              "caption": [f"a {LABELS[i % 3]} sound" for i in range(len(paths))]}).cast_column(
        "audio", Audio())


def command(*args):
    return [sys.executable, "-m", "mint", *map(str, args)]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Runs every command once (two at a time) on tiny models and datasets; returns each run and its folder."""
    root = tmp_path_factory.mktemp("cli")
    torch.manual_seed(0)
    for name, model_class in (("stage1", MintForPreTraining), ("stage2", MintForConditionalGeneration)):
        model_class(tiny.mint_config()).save_pretrained(root / name)
        tiny.processor(max_audio_seconds=1.0).save_pretrained(root / name)
    # "test" holds a 19 ms clip (row 2) and a 2.5 s one (cropped, or 3 windows); "validation" is clean.
    DatasetDict({"test": dataset(root, (9000, 8000, 304, 40000)),
                 "validation": dataset(root, (9000, 12000, 10000), seed=1),
                 "train": dataset(root, (8000, 11000, 9000, 12000), seed=2)}).save_to_disk(str(root / "data"))
    recipe = {"stage": 1, "model": str(root / "stage1"), "output_dir": str(root / "trained"),
              "datasets": [{"path": str(root / "data"), "split": "train"}], "batch_size": 2, "max_steps": 1,
              "warmup_steps": 0, "dataloader_num_workers": 0, "save_steps": 100}
    (root / "recipe.json").write_text(json.dumps(recipe))
    eval_args = ("--dataset", root / "data", "--quiet")
    console_script = ("import sys, mint.cli; sys.exit(mint.cli.main(sys.argv[1:]))",)
    commands = {
        "classify": command("eval", "classify", "--model", root / "stage2", *eval_args, "--split", "validation",
                            "--template", "NSynth", "--output", root / "classify.json"),
        "classify-invalid": command("eval", "classify", "--model", root / "stage2", *eval_args, "--template",
                                    "NSynth", "--output", root / "invalid.json"),
        # As the console script runs it: sys.exit(main()).
        "zero-shot": [sys.executable, "-c", *console_script, "eval", "zero-shot", "--model", root / "stage1",
                      *eval_args, "--skip-invalid", "--label-template", "A recording of {label}.", "--output",
                      root / "zero-shot.json"],
        "retrieval": command("eval", "retrieval", "--model", root / "stage1", *eval_args, "--skip-invalid",
                             "--long-audio-policy", "window", "--output", root / "retrieval.json"),
        "caption": command("eval", "caption", "--model", root / "stage2", *eval_args, "--split", "validation",
                           "--num-beams", "1", "--max-new-tokens", "3", "--allow-empty", "--output",
                           root / "caption.json"),
        "leakage": command("eval", "leakage", "--train", root / "data", "--train-split", "test", *eval_args,
                           "--split", "validation", "--output", root / "leakage.json"),
        "recipe": command("recipe", "stage2"),
        "train": command("train", root / "recipe.json", "--max-train-minutes", "30"),
        "cache-features": command("cache-features", "--model", root / "stage1", "--dataset", root / "data",
                                  "--split", "validation", "--output", root / "cache", "--quiet"),
        "cache-features-skip": command("cache-features", "--model", root / "stage1", "--dataset", root / "data",
                                       "--split", "test", "--output", root / "cache-test", "--skip-invalid",
                                       "--quiet"),
    }
    with ThreadPoolExecutor(2) as pool:
        done = dict(zip(commands, pool.map(
            lambda argv: subprocess.run([str(a) for a in argv], capture_output=True, text=True, cwd=ROOT),
            commands.values())))
    return done, root


def output(runs, name):
    done, root = runs
    run = done[name]
    assert run.returncode == 0, run.stderr[-3000:]
    return run, json.loads((root / f"{name}.json").read_text())


def test_classify(runs):
    run, result = output(runs, "classify")
    assert (result["num_clips"], result["split"], result["prompt"]) == (
        3, "validation", "The most prominent instrument in this music is")
    assert len(result["predictions"]) == 3
    # A summary on stdout, not every prediction; the table next to the JSON.
    assert "| MINT |" in run.stdout and "mint eval classify: 3 clips evaluated (0 skipped" in run.stdout
    assert "predictions" not in run.stdout and "predictions" not in run.stderr
    assert (runs[1] / "classify.md").read_text().startswith("| Method | data ACC |")


def test_an_invalid_clip_fails_the_command_naming_its_row(runs):
    run = runs[0]["classify-invalid"]
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert "error: Row 2 of the dataset (" in run.stderr and "clip0_2.wav'): lasts 19.0 ms" in run.stderr
    assert not (runs[1] / "invalid.json").exists()


def test_zero_shot_exits_0_as_a_console_script_with_its_label_template(runs):
    run, result = output(runs, "zero-shot")
    assert result["label_template"] == "A recording of {label}." and "prompt" not in result
    assert (result["num_clips"], result["num_skipped"], result["num_cropped"]) == (3, 1, 1)
    assert result["skipped"][0]["row"] == 2 and result["skipped"][0]["path"].endswith("clip0_2.wav")
    assert "{'task'" not in run.stderr  # the result dict is no longer passed to sys.exit


def test_zero_shot_refuses_a_prompt(runs):
    with pytest.raises(ValueError, match="--prompt is for classify and caption"):
        mint.cli.main(["--debug", "eval", "zero-shot", "--model", "m", "--dataset", str(runs[1] / "data"), "--prompt",
                       "It is"])


def test_retrieval_with_windows(runs):
    run, result = output(runs, "retrieval")
    assert (result["long_audio_policy"], result["num_clips"], result["num_cropped"]) == ("window", 3, 0)
    assert result["num_queries"] == 2  # "a dog sound" (rows 0 and 3), "a cat sound"; row 2 skipped
    assert "mint eval retrieval: 3 clips evaluated (1 skipped, 0 cropped, long-audio policy 'window')" in run.stdout


def test_caption(runs):
    run, result = output(runs, "caption")
    assert result["generation"] == {"num_beams": 1, "max_new_tokens": 3, "do_sample": False}
    assert len(result["predictions"]) == 3 and result["split"] == "validation"
    assert (runs[1] / "caption.md").read_text().startswith("| Methods | SPIDEr")


def test_leakage(runs):
    run, result = output(runs, "leakage")
    assert (result["num_eval_clips"], result["num_overlapping"]) == (3, 0)
    assert "mint eval leakage: 3 clips checked" in run.stdout


def test_recipe(runs):
    run = runs[0]["recipe"]
    assert run.returncode == 0 and json.loads(run.stdout)["stage"] == 2


def test_train_run_and_a_recipe_with_a_typo(runs, tmp_path):
    done, root = runs
    assert done["train"].returncode == 0, done["train"].stderr[-3000:]
    assert "mint train: stage 1, 1 steps, 0 invalid examples skipped" in done["train"].stdout
    assert (root / "trained" / "model.safetensors").exists()
    (tmp_path / "typo.json").write_text(json.dumps({"datasets": [{"path": "x", "splt": "test"}]}))
    with pytest.raises(ValueError, match=r"has unknown keys \['splt'\] \(did you mean 'split' for 'splt'\?\)"):
        mint.cli.main(["--debug", "train", str(tmp_path / "typo.json")])


def test_cache_features_reads_a_split(runs):
    done, root = runs
    assert done["cache-features"].returncode == 0, done["cache-features"].stderr[-3000:]
    assert "3 examples cached" in done["cache-features"].stdout
    assert load_from_disk(str(root / "cache"))["label"] == ["dog", "cat", "piano"]


def test_cache_features_leaves_out_and_lists_refused_clips(runs):
    done, root = runs
    run = done["cache-features-skip"]
    assert run.returncode == 0, run.stderr[-3000:]
    listed = root / "cache-test" / "skipped_clips.json"
    assert f"3 examples cached in {root / 'cache-test'}; 1 clips left out, listed in {listed}." in run.stdout
    assert [clip["row"] for clip in json.loads(listed.read_text())] == [2]
    assert load_from_disk(str(root / "cache-test"))["label"] == ["dog", "cat", "dog"]  # rows 0, 1 and 3


# A command that fails while it runs exits 1 with one line `error: ...` on stderr; one the parser refuses exits 2 with
# argparse's usage message.
DISPATCH = {
    "a recipe that is not there": (["train", "{tmp}/missing.json"], 1, "missing.json"),
    "a Whisper folder without model.bin": (["convert-whisper", "--model-dir", "{tmp}", "--output", "{tmp}/out"], 1,
                                           "error: [Errno 2] No such file or directory"),
    "an unknown command": (["frobnicate"], 2, "invalid choice: 'frobnicate'"),
    "no command": ([], 2, "the following arguments are required: COMMAND"),
    "an unknown stage": (["recipe", "stage3"], 2, "invalid choice: 'stage3'"),
    "a negative seed": (["demo", "--seed", "-1"], 2, "expected an integer >= 0, got '-1'"),
    "no positions": (["convert-whisper", "--output", "x", "--max-source-positions", "0"], 2,
                     "expected a positive integer, got '0'"),
    "an epoch count of zero": (["demo", "--stage1-epochs", "0"], 2, "expected a number > 0, got '0'"),
}


@pytest.mark.parametrize("argv, status, message", DISPATCH.values(), ids=DISPATCH)
def test_the_dispatcher_reports_failures(argv, status, message, tmp_path, capsys):
    try:
        code = mint.cli.main([arg.format(tmp=tmp_path) for arg in argv])
    except SystemExit as exit:
        code = exit.code
    err = capsys.readouterr().err
    assert code == status and message in err, err
    if status == 1:
        assert err.startswith("error: ") and err.count("\n") == 1
    else:
        assert err.startswith("usage: mint")


def test_an_interrupted_command_exits_130(monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(mint.cli.demo, "corpus_command", interrupted)
    assert mint.cli.main(["corpus"]) == 130
    assert capsys.readouterr().err == "error: interrupted\n"


def test_debug_shows_the_traceback(tmp_path):
    argv = ["convert-whisper", "--model-dir", tmp_path, "--output", tmp_path / "out"]
    plain, debug = (subprocess.run(command(*flags, *argv), capture_output=True, text=True, cwd=ROOT)
                    for flags in ((), ("--debug",)))
    assert plain.returncode == 1 and plain.stderr.startswith("error: [Errno 2]") and "Traceback" not in plain.stderr
    assert debug.returncode == 1 and "Traceback (most recent call last)" in debug.stderr
    assert "FileNotFoundError: [Errno 2]" in debug.stderr
