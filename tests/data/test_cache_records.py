"""The feature cache knows what it holds: its shards and the merged cache record their rows, encoder and dtype; a rerun
reuses only what matches, a merge only shards that agree; damaged markers and files are computed again or refused by
name; the output folder is never one that holds something else; long clips are reported once."""

import json
import logging
import os
import tempfile
import warnings

import numpy as np
import pytest
import soundfile
import torch
from datasets import Array2D, Audio, Dataset, List, Value, load_from_disk
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mint.cli import main
from mint.data.cache import (
    CACHE_RECORD,
    SHARD_COMPLETE_MARKER,
    cache_audio_features,
    feature_cache_shards_dir,
    merge_feature_cache,
)
from modeling_mint import MintForPreTraining
from tests.utils import tiny
from tests.utils.audio import CAPTIONS, clips


FEATURES = "audio_encoder_features"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Six clip files: the first four and the last four make two datasets of the same size."""
    folder = tmp_path_factory.mktemp("clips")
    paths = []
    for index, clip in enumerate(clips((8000, 6000, 7000, 9000, 6500, 7500))):
        paths.append(str(folder / f"clip{index}.wav"))
        soundfile.write(paths[-1], clip, 16000)
    return paths


def pairs(paths):
    captions = [CAPTIONS[i % len(CAPTIONS)] for i in range(len(paths))]
    return Dataset.from_dict({"audio": list(paths), "caption": captions}).cast_column("audio", Audio(decode=False))


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return MintForPreTraining(tiny.mint_config()).eval()


@pytest.fixture(scope="module")
def reference(model, files, tmp_path_factory):
    """The cache of each dataset of the first n clips, computed in one shard."""
    return {n: cache_audio_features(model, tiny.processor(), pairs(files[:n]), tmp_path_factory.mktemp("ref") / "c",
                                    progress=False) for n in range(1, 5)}


def assert_same_cache(got, want):
    assert got.num_rows == want.num_rows and list(got["caption"]) == list(want["caption"])
    assert list(got["audio_length"]) == list(want["audio_length"])
    for x, y in zip(got[FEATURES], want[FEATURES]):
        assert np.allclose(x, y, atol=1e-5)


def shard_files(output, index, num_shards):
    folder = os.path.join(feature_cache_shards_dir(output), f"shard-{index:05d}-of-{num_shards:05d}")
    return os.path.join(folder, SHARD_COMPLETE_MARKER), os.path.join(folder, "features.arrow")


def other_model():
    torch.manual_seed(1)
    return MintForPreTraining(tiny.mint_config()).eval()


# ---- a finished shard that belongs to another cache -----------------------------------------------------------------

MISMATCHES = [  # (what changes in the rerun, words the refusal must contain)
    ("other dataset, same size", ["shard-00000-of-00002", "belongs to another cache",
                                  "rows (as many, but other values"]),
    ("other dataset size", ["shard-00000-of-00002", "rows (2 of a dataset of 4 rows, against 3 of 6)"]),
    ("dtype", ["shard-00000-of-00002", "dtype (float32, against float16)"]),
    ("encoder weights", ["shard-00000-of-00002", "encoder weights"]),
    ("encoder configuration", ["shard-00000-of-00002", "encoder configuration"]),
]


@pytest.mark.parametrize("change, words", MISMATCHES, ids=[m[0] for m in MISMATCHES])
def test_a_finished_shard_of_another_cache_is_refused_by_name(change, words, model, files, tmp_path):
    output = tmp_path / "cache"
    cache_audio_features(model, tiny.processor(), pairs(files[:4]), output, num_shards=2, shard_indices=[0],
                         progress=False)
    rerun = {"model": model, "processor": tiny.processor(), "dataset": pairs(files[:4]), "dtype": "float32"}
    if change == "other dataset, same size":
        rerun["dataset"] = pairs(files[2:])
    elif change == "other dataset size":
        rerun["dataset"] = pairs(files)
    elif change == "dtype":
        rerun["dtype"] = "float16"
    elif change == "encoder weights":
        rerun["model"] = other_model()
    else:
        rerun["processor"] = tiny.processor(max_audio_seconds=20.0)
    with pytest.raises(ValueError) as refused:
        cache_audio_features(rerun["model"], rerun["processor"], rerun["dataset"], output, num_shards=2,
                             shard_indices=[0], dtype=rerun["dtype"], progress=False)
    for word in words:
        assert word in str(refused.value)


def test_shards_of_two_encoders_are_not_merged(model, files, tmp_path):
    output = tmp_path / "cache"
    cache_audio_features(model, tiny.processor(), pairs(files[:4]), output, num_shards=2, shard_indices=[0],
                         progress=False)
    cache_audio_features(other_model(), tiny.processor(), pairs(files[:4]), output, num_shards=2, shard_indices=[1],
                         progress=False)
    with pytest.raises(ValueError, match=r"do not belong to one cache: against shard 0, shard 1 \(encoder weights\)"):
        merge_feature_cache(output, progress=False)
    assert not os.path.exists(output)


def test_a_rerun_into_a_merged_cache_of_another_dataset_is_refused(model, files, reference, tmp_path):
    output = tmp_path / "cache"
    cache_audio_features(model, tiny.processor(), pairs(files[:4]), output, progress=False)
    record = json.loads((output / CACHE_RECORD).read_text())
    assert (record["dtype"], record["dataset_rows"], record["cached_rows"], len(record["rows"])) == ("float32", 4, 4, 1)
    with pytest.raises(ValueError, match=r"holds a feature cache of other rows \(as many, but other values.*overwrite"):
        cache_audio_features(model, tiny.processor(), pairs(files[2:]), output, progress=False)
    assert_same_cache(load_from_disk(str(output)), reference[4])  # untouched
    replaced = cache_audio_features(model, tiny.processor(), pairs(files[2:]), output, progress=False, overwrite=True)
    assert list(replaced["audio_length"]) != list(reference[4]["audio_length"])  # clips 2-5, not 0-3


def test_a_rerun_of_the_same_cache_returns_it_without_encoding(model, files, reference, tmp_path, monkeypatch):
    output = tmp_path / "cache"
    cache_audio_features(model, tiny.processor(), pairs(files[:4]), output, num_shards=3, progress=False)
    calls = []
    encode = model.get_audio_encoder_features
    monkeypatch.setattr(model, "get_audio_encoder_features", lambda **a: calls.append(1) or encode(**a))
    again = cache_audio_features(model, tiny.processor(), pairs(files[:4]), output, num_shards=2, progress=False)
    assert not calls
    assert_same_cache(again, reference[4])


def test_the_cache_holds_each_clips_encoder_features_as_one_array(model, files, reference):
    """Each row is the clip's `(frames, audio_feature_size)` features as the encoder gives them, stored as Arrow 2-D
    arrays; a batch of rows read at once (as the Trainer's data loader reads them) gives the same arrays."""
    cached, processor = reference[4], tiny.processor()
    assert cached.features[FEATURES] == Array2D(shape=(None, model.config.audio_feature_size), dtype="float32")
    rows = cached.__getitems__([3, 0, 2])
    for row, index in zip(rows, (3, 0, 2)):
        inputs = processor(audio=pairs(files[index : index + 1])["audio"])
        with torch.no_grad():
            features, mask = model.get_audio_encoder_features(**inputs)
        want = features[0, : int(mask[0].sum())].numpy()
        assert row[FEATURES].dtype == np.float32 and row[FEATURES].shape == want.shape
        assert np.allclose(row[FEATURES], want, atol=1e-4)  # encoded alone here, in a padded batch there
        assert np.array_equal(row[FEATURES], cached[index][FEATURES])
    assert len({row[FEATURES].shape[0] for row in rows}) == 3  # clips of distinct lengths


def test_a_cache_of_nested_lists_still_trains(model, files, reference, tmp_path):
    """A cache written with each clip's frames as nested lists (the layout before Array2D) is read back as the same
    arrays and collated into the same batch."""
    from mint.data.cache import _load_cache
    from mint.data.collator import MintDataCollator

    new = reference[4]
    old = new.with_format(None).cast_column(FEATURES, List(List(Value("float32"))))
    old.save_to_disk(tmp_path / "old")
    old = _load_cache(str(tmp_path / "old"))
    collator = MintDataCollator(tiny.processor(), stage=1)
    batches = [collator(list(d.__getitems__([0, 1, 2, 3]))) for d in (old, new)]
    assert batches[0].keys() == batches[1].keys()
    assert all(torch.equal(batches[0][key], batches[1][key]) for key in batches[0])


def test_a_cache_of_nested_lists_is_kept_by_a_rerun_and_rewritten_as_arrays_with_overwrite(model, files, tmp_path):
    import mint.data.cache as cache_module

    output = tmp_path / "cache"
    with pytest.MonkeyPatch.context() as old:
        old.setattr(cache_module, "Array2D", lambda shape, dtype: List(List(Value(dtype))))
        old.setattr(cache_module, "_one_layout", lambda parts: parts)
        cache_audio_features(model, tiny.processor(), pairs(files[:4]), output, progress=False)
    kept = cache_audio_features(model, tiny.processor(), pairs(files[:4]), output, progress=False)
    assert kept.features[FEATURES] == List(List(Value("float32")))
    again = cache_audio_features(model, tiny.processor(), pairs(files[:4]), output, overwrite=True, progress=False)
    assert again.features[FEATURES] == Array2D(shape=(None, model.config.audio_feature_size), dtype="float32")
    assert_same_cache(again, kept)


def test_a_run_begun_with_shards_of_nested_lists_merges_into_one_layout(model, files, reference, tmp_path,
                                                                          monkeypatch, capsys):
    """A sharded run whose first shard was finished by an earlier version (its frames as nested lists) is finished by
    this one: the merge rewrites that shard as Array2D rows, and the cache equals one computed in one go."""
    import mint.data.cache as cache_module

    output = tmp_path / "cache"
    with monkeypatch.context() as old:
        old.setattr(cache_module, "Array2D", lambda shape, dtype: List(List(Value(dtype))))
        cache_audio_features(model, tiny.processor(), pairs(files[:4]), output, num_shards=2, shard_indices=[0],
                             progress=False)
    capsys.readouterr()
    cached = cache_audio_features(model, tiny.processor(), pairs(files[:4]), output, num_shards=2, progress=False)
    assert "%|" not in capsys.readouterr().err  # the old shard is rewritten quietly, as asked
    assert cached.features[FEATURES] == Array2D(shape=(None, model.config.audio_feature_size), dtype="float32")
    assert_same_cache(cached, reference[4])


# ---- damaged markers and shard files ------------------------------------------------------------------------------

def empty(path):
    open(path, "wb").close()


def truncate(path):
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 2])


def flip_last_byte(path):
    data = bytearray(open(path, "rb").read())
    data[-9] ^= 0xFF
    open(path, "wb").write(bytes(data))


DAMAGE = [  # (damage, to the marker (0) or the features file (1), words the merge's refusal must contain)
    ("0-byte marker", empty, 0, ["Shards [0] of 2", "completion marker", "empty, cut short or unreadable"]),
    ("cut-short marker", truncate, 0, ["Shards [0] of 2", "empty, cut short or unreadable"]),
    ("marker of another version", lambda p: open(p, "w").write('{"files": ["features.arrow"]}'), 0,
     ["Shards [0] of 2", "empty, cut short or unreadable"]),
    ("marker deleted", os.remove, 0, ["Shards [0] of 2", "are not finished"]),
    ("flipped byte", flip_last_byte, 1, ["Damaged shards", "shard 0", "changed after the shard was finished"]),
    ("features file deleted", os.remove, 1, ["Damaged shards", "shard 0", "features.arrow is missing"]),
]


@pytest.mark.parametrize("name, damage, target, words", DAMAGE, ids=[d[0] for d in DAMAGE])
def test_a_damaged_shard_is_refused_by_the_merge_and_computed_again_by_a_rerun(name, damage, target, words, model,
                                                                                files, reference, tmp_path):
    output = tmp_path / "cache"
    cache_audio_features(model, tiny.processor(), pairs(files[:4]), output, num_shards=2, shard_indices=[0, 1],
                         progress=False)
    damage(shard_files(output, 0, 2)[target])
    with pytest.raises(ValueError) as refused:
        merge_feature_cache(output, progress=False)
    for word in words:
        assert word in str(refused.value)
    assert "JSONDecodeError" not in type(refused.value).__name__
    resumed = cache_audio_features(model, tiny.processor(), pairs(files[:4]), output, num_shards=2, progress=False)
    assert_same_cache(resumed, reference[4])


# ---- the shard count --------------------------------------------------------------------------------------------

def test_more_shards_than_rows_are_clamped_to_the_rows(model, files, reference, tmp_path):
    cached = cache_audio_features(model, tiny.processor(), pairs(files[:3]), tmp_path / "a", num_shards=10,
                                  progress=False)
    assert_same_cache(cached, reference[3])
    output = tmp_path / "b"
    assert cache_audio_features(model, tiny.processor(), pairs(files[:3]), output, num_shards=10,
                                shard_indices=[7, 9], progress=False) is None  # shards past the rows hold nothing
    assert not os.path.exists(feature_cache_shards_dir(output))
    for index in range(10):
        cache_audio_features(model, tiny.processor(), pairs(files[:3]), output, num_shards=10, shard_indices=[index],
                             progress=False)
    assert sorted(os.listdir(feature_cache_shards_dir(output)))[-1] == "shard-00002-of-00003"
    assert_same_cache(merge_feature_cache(output, progress=False), reference[3])
    with pytest.raises(ValueError, match="no rows"):
        cache_audio_features(model, tiny.processor(), pairs([]), tmp_path / "c", progress=False)


# ---- the output folder ------------------------------------------------------------------------------------------

def saved_dataset(folder):
    Dataset.from_dict({"text": ["mine"]}).save_to_disk(str(folder))


def notes(folder):
    os.makedirs(folder)
    (folder / "notes.txt").write_text("mine")


def a_file(path):
    path.write_text("mine")


OUTPUTS = [  # (what the output holds, whether overwrite replaces it, words the refusal must contain)
    ("a dataset folder", saved_dataset, True, ["exists and is not empty", "dataset folder", "--overwrite"]),
    ("a folder of other files", notes, False, ["exists and is not empty", "'notes.txt'", "never replaces"]),
    ("a file", a_file, False, ["is not a folder"]),
]


@pytest.mark.parametrize("what, make, replaceable, words", OUTPUTS, ids=[o[0] for o in OUTPUTS])
def test_an_output_that_holds_something_else_is_refused(what, make, replaceable, words, model, files, reference,
                                                        tmp_path, capsys):
    output = tmp_path / "out"
    make(output)
    before = sorted(os.listdir(output)) if output.is_dir() else output.read_text()
    for call in (lambda: cache_audio_features(model, tiny.processor(), pairs(files[:2]), output, progress=False),
                 lambda: cache_audio_features(model, tiny.processor(), pairs(files[:2]), output, num_shards=2,
                                              shard_indices=[0], progress=False)):
        with pytest.raises(ValueError) as refused:
            call()
        for word in words:
            assert word in str(refused.value)
    assert before == (sorted(os.listdir(output)) if output.is_dir() else output.read_text())
    assert not os.path.exists(feature_cache_shards_dir(output))
    if replaceable:
        cached = cache_audio_features(model, tiny.processor(), pairs(files[:2]), output, progress=False,
                                      overwrite=True)
        assert_same_cache(cached, reference[2])
        assert_same_cache(load_from_disk(str(output)), reference[2])
    else:
        with pytest.raises(ValueError, match="is not a folder|never replaces"):
            cache_audio_features(model, tiny.processor(), pairs(files[:2]), output, progress=False, overwrite=True)


def test_the_command_refuses_a_dataset_folder_unless_overwrite(model, files, tmp_path, capsys):
    model.save_pretrained(tmp_path / "model")
    tiny.processor().save_pretrained(tmp_path / "model")
    pairs(files[:2]).save_to_disk(str(tmp_path / "data"))
    saved_dataset(tmp_path / "out")
    command = ["cache-features", "--model", str(tmp_path / "model"), "--dataset", str(tmp_path / "data"), "--output",
               str(tmp_path / "out"), "--quiet"]
    assert main(command) == 1
    assert "holds a dataset folder" in capsys.readouterr().err
    assert load_from_disk(str(tmp_path / "out"))["text"] == ["mine"]
    assert main(command + ["--overwrite"]) == 0
    assert load_from_disk(str(tmp_path / "out")).num_rows == 2
    assert main(command) == 0 and "2 examples cached" in capsys.readouterr().out  # the same cache: returned as is


def test_the_merge_leaves_other_files_beside_the_shards(model, files, tmp_path):
    output = tmp_path / "cache"
    cache_audio_features(model, tiny.processor(), pairs(files[:2]), output, num_shards=2, shard_indices=[0, 1],
                         progress=False)
    (tmp_path / "cache.shards" / "notes.txt").write_text("mine")
    merge_feature_cache(output, progress=False)
    assert os.listdir(tmp_path / "cache.shards") == ["notes.txt"]


# ---- long clips ---------------------------------------------------------------------------------------------------

def test_long_clips_are_reported_once_by_file(model, files, tmp_path, caplog):
    processor = tiny.processor(max_audio_seconds=0.45)  # clips 0, 3 and 5 last 0.47-0.56 s
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.WARNING):
        warnings.simplefilter("always")
        cache_audio_features(model, processor, pairs(files), tmp_path / "cache", batch_size=2, num_shards=2,
                             progress=False)
    assert not [w for w in caught if "cropped" in str(w.message)]
    messages = [r.getMessage() for r in caplog.records if "longer than" in r.getMessage() or "cropped" in
                r.getMessage()]
    assert len(messages) == 1, messages
    assert messages[0].startswith("3 clip(s) longer than 0.45 s were cropped")
    assert "clip0.wav" in messages[0] and "clip3.wav" in messages[0] and "window" not in messages[0]
    assert "audio clip" not in messages[0]


# ---- property: whatever was left behind, the cache is the one computed in one go ---------------------------------

@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.integers(1, 4), num_shards=st.integers(1, 6), first=st.sets(st.integers(0, 5), max_size=3),
       damage=st.sampled_from([None, (empty, 0), (truncate, 0), (flip_last_byte, 1), (os.remove, 1)]))
def test_any_interrupted_or_damaged_run_resumes_to_the_one_go_cache(rows, num_shards, first, damage, model, files,
                                                                    reference):
    with tempfile.TemporaryDirectory() as folder:
        output = os.path.join(folder, "cache")
        dataset = pairs(files[:rows])
        done = sorted(i for i in first if i < num_shards)
        if done:
            cache_audio_features(model, tiny.processor(), dataset, output, num_shards=num_shards, shard_indices=done,
                                 progress=False)
            finished = [i for i in done if i < rows]
            if damage and finished:
                damage[0](shard_files(output, finished[0], min(num_shards, rows))[damage[1]])
        assert_same_cache(cache_audio_features(model, tiny.processor(), dataset, output, num_shards=num_shards,
                                               progress=False), reference[rows])
