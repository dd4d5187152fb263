"""The commands' options and output files checked before any work: an unknown option is named by its sub-command's
parser, options of the other step or mutually exclusive ones are refused, and `--missing-list`, `--json` and
`convert-whisper --output` never replace what is there without `--overwrite` and are written in one step."""

import json
import math
import os

import pytest

import mint.cli
from mint.cli.arguments import byte_size
from mint.demo.whisper import default_model_dir
from tests.utils.releases import esc50_release
from tests.utils.training import make_audio_dataset, make_mint_folder


def run(argv, capsys):
    """`mint argv`: its exit status and stderr (the parser's refusals exit 2 through SystemExit)."""
    try:
        code = mint.cli.main([str(arg) for arg in argv])
    except SystemExit as exit_:
        code = exit_.code
    return code, capsys.readouterr().err


# (command line, the sub-command's usage line, the option it names)
UNKNOWN_OPTIONS = [
    (["eval", "classify", "--model", "m", "--dataset", "d", "--template", "NSynth", "--bogus"], "mint eval classify",
     "--bogus"),
    (["data", "prepare", "esc50", "root", "--output", "o", "--bogus", "3"], "mint data prepare", "--bogus 3"),
    (["cache-features", "--output", "o", "--merge", "--bogus"], "mint cache-features", "--bogus"),
    (["plan", "r.json", "--procesess", "2"], "mint plan", "--procesess 2"),
    (["train", "r.json", "max_steps=2", "--nope"], "mint train", "--nope"),
    (["convert-whisper", "--output", "o", "--positions", "9"], "mint convert-whisper", "--positions 9"),
    (["data", "layouts", "--all"], "mint data layouts", "--all"),
]


@pytest.mark.parametrize("argv, usage, option", UNKNOWN_OPTIONS, ids=[" ".join(r[0][:2]) for r in UNKNOWN_OPTIONS])
def test_an_unknown_option_is_named_by_its_sub_command(argv, usage, option, capsys):
    code, err = run(argv, capsys)
    assert code == 2 and f"usage: {usage}" in err and f"{usage}: error: unrecognized arguments: {option}" in err, err


# (command line, exit status, words stderr must hold)
BAD_OPTIONS = [
    (["cache-features", "--output", "o", "--merge", "--model", "m"], 1, ["--merge merges the shards", "--model"]),
    (["cache-features", "--output", "o", "--merge", "--batch-size", "4", "--dtype", "float16"], 1,
     ["--batch-size, --dtype apply when computing them"]),
    (["cache-features", "--output", "o", "--merge", "--num-shards", "4", "--skip-invalid"], 1,
     ["--skip-invalid, --num-shards"]),
    (["cache-features", "--output", "o", "--model", "m", "--dataset", "d", "--num-shards", "2", "--shard-index", "0",
      "--max-shard-size", "1GB"], 1, ["--max-shard-size sets the merged cache's files: give it with --merge"]),
    (["cache-features", "--output", "o", "--merge", "--shard-index", "0"], 2, ["not allowed with argument"]),
    (["cache-features", "--output", "{tmp}/o", "--model", "{tmp}/nope", "--dataset", "d"], 1,
     ["--model", "nope': no such folder; expected a saved MINT folder"]),
    (["cache-features", "--output", "{tmp}/o", "--model", "{tmp}", "--dataset", "d", "--device", "cpu"], 1,
     ["has no config.json: it is not a saved MINT model folder"]),
    (["cache-features", "--output", "o", "--merge", "--max-shard-size", "big"], 2,
     ["--max-shard-size", "expected a positive size such as 500MB", "'big'"]),
    (["cache-features", "--output", "o", "--merge", "--max-shard-size", "0"], 2, ["expected a positive size"]),
    (["cache-features", "--output", "o", "--merge", "--max-shard-size", "1.5GB"], 2, ["expected a positive size"]),
    (["cache-features", "--output", "o", "--batch-size", "0"], 2, ["--batch-size", "expected a positive integer"]),
    (["cache-features", "--output", "o", "--shard-index", "-1"], 2, ["--shard-index", "expected an integer >= 0"]),
    (["data", "prepare", "fma", "root", "--output", "o", "--fma-size", "huge"], 2, ["--fma-size", "invalid choice"]),
    (["train", "r.json", "max_train_minutes=3", "--max-train-minutes", "5"], 1,
     ["--max-train-minutes and max_train_minutes= set the same recipe field"]),
    (["train", "r.json", "overwrite=false", "--overwrite"], 1, ["--overwrite and overwrite= set the same"]),
    (["train", "r.json", "batch_size=2", "max_steps=3", "batch_size=4"], 1, ["set 'batch_size' more than once"]),
    (["plan", "r.json", "gradient_accumulation_steps=2", "--accumulation", "4"], 1,
     ["--accumulation and gradient_accumulation_steps= set the same recipe field"]),
    (["plan", "r.json", "model=a", "--model", "b"], 1, ["--model and model= set the same"]),
    (["data", "prepare", "esc50", "root", "--output", "o", "--json", "a.json", "--missing-list", "a.json"], 1,
     ["--json and --missing-list name the same file"]),
    (["data", "prepare", "esc50", "root", "--output", "{tmp}/o", "--json", "{tmp}/o/counts.json"], 1,
     ["--json", "lies inside the output folder", "holds the dataset alone"]),
    (["data", "prepare", "esc50", "{tmp}", "--output", "{tmp}/o", "--missing-list", "{tmp}/o/missing.tsv"], 1,
     ["The missing list", "lies inside the output folder"]),
    (["data", "prepare", "esc50", "root", "--output", "o", "--json", "{tmp}"], 1,
     ["--json", "exists and is not a file"]),
    (["plan", "r.json", "--json", "{tmp}"], 1, ["--json", "exists and is not a file"]),
    (["convert-whisper", "--output", "{tmp}/o", "--model-dir", "{tmp}/nothing"], 1,
     ["error: [Errno 2] No such file or directory", "model.bin"]),
    (["demo", "--output", "{tmp}/o", "--stage1-query-learning-rate", "1e-400"], 2,
     ["--stage1-query-learning-rate", "expected a number a float can hold", "'1e-400'", "rounds to 0"]),
    (["ablate", "--output", "{tmp}/o", "--stage1-query-learning-rate=-1e-3"], 2,
     ["--stage1-query-learning-rate", "expected a number >= 0", "'-1e-3'"]),
    (["ablate", "--output", "{tmp}/o", "--stage1-query-learning-rate", "nan"], 2, ["expected a finite number"]),
    (["demo", "--output", "{tmp}/o", "--bridge-learning-rate", "5e-999"], 2, ["rounds to 0"]),
    (["demo", "--output", "{tmp}/o", "--stage1-query-learning-rate", "\uff11e-400"], 2, ["rounds to 0"]),
]


@pytest.mark.parametrize("text, value", [("-0", 0.0), ("0", 0.0), ("0e-999", 0.0), ("1e-3", 1e-3), ("2E-4", 2e-4)])
def test_a_rate_option_reads_zero_as_plus_zero_and_numbers_as_written(text, value):
    from mint.cli.arguments import nonnegative_float

    read = nonnegative_float(text)
    assert read == value and math.copysign(1.0, read) == 1.0


@pytest.mark.parametrize("argv, status, words", BAD_OPTIONS)
def test_conflicting_and_out_of_range_options_are_refused(argv, status, words, tmp_path, capsys):
    code, err = run([arg.format(tmp=tmp_path) for arg in argv], capsys)
    assert code == status and all(word in err for word in words), err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("text, size", [("500MB", "500MB"), ("2gib", "2GIB"), ("1000", 1000), ("12B", 12),
                                        (" 3 kb ", "3KB")])
def test_byte_size_reads_what_datasets_reads(text, size):
    from datasets.utils.py_utils import convert_file_size_to_int

    assert byte_size(text) == size
    assert convert_file_size_to_int(size) == {"500MB": 500 * 10**6, "2GIB": 2 * 2**30, "3KB": 3000}.get(size, size)


# ---- output files ---------------------------------------------------------------------------------------------------

@pytest.fixture
def release(tmp_path):
    esc50_release(tmp_path / "esc50")
    os.remove(next((tmp_path / "esc50" / "audio").iterdir()))  # one clip listed but missing
    return tmp_path / "esc50"


@pytest.mark.parametrize("option", ["--missing-list", "--json"])
def test_prepare_refuses_a_file_that_exists_before_reading_the_release(option, release, tmp_path, capsys):
    target = tmp_path / "kept.txt"
    target.write_text("someone's notes\n")
    code, err = run(["data", "prepare", "esc50", release, "--output", tmp_path / "out", option, target, "--quiet"],
                    capsys)
    assert code == 1 and f"{option if option == '--json' else 'The missing list'} " in err
    assert "exists; pass --overwrite" in err
    assert target.read_text() == "someone's notes\n" and not (tmp_path / "out").exists()


def test_prepare_replaces_its_files_with_overwrite_in_one_step(release, tmp_path, capsys):
    listed, counts = tmp_path / "lists" / "missing.tsv", tmp_path / "counts.json"
    counts.write_text("old")
    listed.parent.mkdir()
    listed.write_text("old")
    argv = ["data", "prepare", "esc50", release, "--output", tmp_path / "out", "--missing-list", listed, "--json",
            counts, "--quiet", "--overwrite"]
    code, err = run(argv, capsys)
    assert code == 0, err
    missing = listed.read_text().splitlines()
    assert len(missing) == 1 and missing[0].startswith("train\taudio/")
    assert json.loads(counts.read_text())["splits"]["train"]["missing"] == 1
    assert sorted(os.listdir(tmp_path / "lists")) == ["missing.tsv"]  # no temporary file left beside it


def test_plan_json_is_replaced_only_with_overwrite(tmp_path, capsys):
    model = make_mint_folder(tmp_path / "mint")
    make_audio_dataset(tmp_path).save_to_disk(str(tmp_path / "audio"))
    recipe = tmp_path / "recipe.json"
    recipe.write_text(json.dumps({"stage": 1, "model": model, "batch_size": 2, "max_steps": 3, "warmup_steps": 0,
                                  "datasets": [{"path": str(tmp_path / "audio")}]}))
    (tmp_path / "plan.json").write_text("mine")
    code, err = run(["plan", recipe, "--json", tmp_path / "plan.json"], capsys)
    assert code == 1 and "--json" in err and "exists; pass --overwrite" in err
    assert (tmp_path / "plan.json").read_text() == "mine"
    assert run(["plan", recipe, "--json", tmp_path / "plan.json", "--overwrite"], capsys)[0] == 0
    assert json.loads((tmp_path / "plan.json").read_text())["stage"] == 1


# ---- convert-whisper ------------------------------------------------------------------------------------------------

def ctranslate2_folder(folder, data):
    folder.mkdir()
    (folder / "model.bin").write_bytes(data)
    return folder


def whisper_model_bin():
    with open(os.path.join(default_model_dir(), "model.bin"), "rb") as f:
        return f.read()


# (what --output holds, the model.bin, with --overwrite, words the message must hold)
WHISPER_REFUSALS = [
    ("a file", None, True, ["exists and is not a folder", "choose another path"]),
    ("other files", None, True, ["holds 'notes.txt', not an encoder that convert-whisper wrote", "never replaces"]),
    ("nothing", b"", False, ["model.bin: CTranslate2 binary version None", "this reader knows version 6"]),
    ("nothing", (5).to_bytes(4, "little") + b"rest", False, ["CTranslate2 binary version 5"]),
    ("nothing", "cut", False, ["model.bin: unreadable at byte", "cut short or not a CTranslate2 model.bin"]),
]


@pytest.mark.parametrize("holds, model, overwrite, words", WHISPER_REFUSALS)
def test_convert_whisper_refuses_what_it_should_not_replace_or_read(holds, model, overwrite, words, tmp_path,
                                                                    capsys):
    output = tmp_path / "encoder"
    if holds == "a file":
        output.write_text("x")
    elif holds == "other files":
        output.mkdir()
        (output / "notes.txt").write_text("x")
    argv = ["convert-whisper", "--output", output] + ["--overwrite"] * overwrite
    if model is not None:
        data = whisper_model_bin()[:5000] if model == "cut" else model
        argv += ["--model-dir", ctranslate2_folder(tmp_path / "ct2", data)]
    code, err = run(argv, capsys)
    assert code == 1 and all(word in err for word in words), err
    assert (holds == "nothing") == (not output.exists())


@pytest.mark.slow
def test_convert_whisper_replaces_its_own_conversion_only_with_overwrite(tmp_path, capsys):
    output = tmp_path / "encoder"
    assert run(["convert-whisper", "--output", output, "--max-source-positions", "150"], capsys)[0] == 0
    code, err = run(["convert-whisper", "--output", output, "--max-source-positions", "100"], capsys)
    assert code == 1 and "holds an encoder that convert-whisper wrote" in err and "--overwrite" in err
    assert json.loads((output / "conversion.json").read_text())["max_source_positions"] == 150
    assert run(["convert-whisper", "--output", output, "--max-source-positions", "100", "--overwrite"], capsys)[0] == 0
    assert json.loads((output / "conversion.json").read_text())["max_source_positions"] == 100
    assert sorted(os.listdir(tmp_path)) == ["encoder"]  # no partial folder left beside it
