"""`split_to_read` / `load_split`: a named split of a folder with splits, the whole of an unsplit folder, and an
explicit split of an unsplit folder refused, named by the caller's option."""

import pytest
from datasets import Dataset, DatasetDict

from mint.data.splits import load_split, split_to_read


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("splits")
    DatasetDict({"train": Dataset.from_dict({"x": [1, 2, 3]}), "test": Dataset.from_dict({"x": [4]})}).save_to_disk(
        root / "split")
    Dataset.from_dict({"x": [5, 6]}).save_to_disk(root / "unsplit")
    return root


@pytest.mark.parametrize("folder, split, default, chosen, rows", [
    ("split", None, "train", "train", [1, 2, 3]),
    ("split", None, "test", "test", [4]),
    ("split", "train", "test", "train", [1, 2, 3]),
    ("unsplit", None, "test", None, [5, 6]),
])
def test_the_split_read_and_its_rows(folders, folder, split, default, chosen, rows):
    assert split_to_read(folders / folder, split, default=default) == chosen
    assert load_split(folders / folder, split, default=default)["x"] == rows


@pytest.mark.parametrize("folder, split, option, error, words", [
    ("unsplit", "test", "--split", ValueError, ["--split 'test'", "has no splits", "leave --split out"]),
    ("unsplit", "train", "split", ValueError, ["split 'train'", "no split to choose"]),
    ("split", "validation", "--split", ValueError, ["has no split 'validation'", "'train'", "'test'"]),
    ("missing", None, "--split", ValueError, ["does not exist"]),
])
def test_bad_splits_are_refused(folders, folder, split, option, error, words):
    with pytest.raises(error) as caught:
        load_split(folders / folder, split, option)
    assert all(word in str(caught.value) for word in words), caught.value
