"""MINT examples from datasets refuse a row without a usable label or caption, naming the dataset, its own row and the
column; a mixture refuses datasets of different kinds by name."""

import pytest
from datasets import ClassLabel, Dataset, Features, Sequence, Value, load_from_disk

from mint.data.examples import (check_columns, label_text, load_local_dataset, mix_datasets, to_caption_pairs,
                                to_mint_examples)


NAMES = ["dog", "cat", "piano"]


def saved(tmp_path, column, values, feature):
    """A dataset of three rows saved and loaded back, so that it is named by its folder."""
    features = Features({"audio": Value("string"), column: feature})
    Dataset.from_dict({"audio": [f"clip{i}.wav" for i in range(len(values))], column: values},
                      features=features).save_to_disk(str(tmp_path / "data"))
    return load_from_disk(str(tmp_path / "data"))


def convert(dataset, template, column):
    if template is None:
        return to_caption_pairs(dataset, caption_column=column)
    return to_mint_examples(dataset, template, label_column=column if template != "WavCaps" else None,
                            caption_column=column if template == "WavCaps" else None)


BAD_ROWS = [  # (template or None for caption pairs, column, values, feature, words the refusal must contain)
    ("NSynth", "label", [0, -1, 2], ClassLabel(names=NAMES),
     ["Row 1 of '", "data'", "column 'label'", "class index -1 (datasets' 'no label')", "0..2"]),
    ("OpenMIC", "labels", [[0], [1, -1], [2]], Sequence(ClassLabel(names=NAMES)),
     ["Row 1 of", "column 'labels'", "class index -1"]),
    ("OpenMIC", "labels", [["dog"], [], ["cat"]], Sequence(Value("string")), ["Row 1 of", "has no label"]),
    ("NSynth", "label", ["dog", "  ", "cat"], Value("string"), ["Row 1 of", "column 'label'", "empty label"]),
    ("NSynth", "label", ["dog", "cat", None], Value("string"), ["Row 2 of", "empty label"]),
    ("WavCaps", "caption", ["a dog", "", "a cat"], Value("string"), ["Row 1 of", "column 'caption'", "empty label"]),
    (None, "caption", ["a dog", "a cat", " "], Value("string"), ["Row 2 of", "column 'caption'", "an empty caption"]),
    (None, "caption", [None, "a cat", "x"], Value("string"), ["Row 0 of", "an empty caption"]),
    (None, "captions", [["a"], ["b"], ["c"]], Sequence(Value("string")), ["Row 0 of", "column 'captions'", "list",
                                                                          "expected the caption's text"]),
]


@pytest.mark.parametrize("template, column, values, feature, words", BAD_ROWS)
def test_a_bad_row_is_named_by_dataset_row_and_column(template, column, values, feature, words, tmp_path):
    dataset = saved(tmp_path, column, values, feature)
    with pytest.raises(ValueError) as refused:
        convert(dataset, template, column)
    for word in words:
        assert word in str(refused.value)


def test_a_bad_row_of_a_stream_is_named_by_its_place_in_the_stream(tmp_path):
    dataset = saved(tmp_path, "label", [0, 1, -1], ClassLabel(names=NAMES))
    examples = to_mint_examples(dataset.to_iterable_dataset(), "NSynth")
    with pytest.raises(ValueError, match=r"Example 2 of the stream of the dataset, column 'label': class index -1"):
        list(examples)
    pairs = to_caption_pairs(saved(tmp_path / "b", "caption", ["a", "", "c"], Value("string")).to_iterable_dataset())
    with pytest.raises(ValueError, match=r"Example 1 of the stream of the dataset, column 'caption': an empty caption"):
        list(pairs)


def test_valid_class_indices_keep_their_names(tmp_path):
    dataset = saved(tmp_path, "label", [2, 0, 1], ClassLabel(names=NAMES))
    assert to_mint_examples(dataset, "NSynth")["target"] == ["piano", "dog", "cat"]
    assert label_text(2, NAMES) == "piano" and label_text([0, 2], NAMES) == "dog, piano"
    with pytest.raises(ValueError, match=r"class index 3 has no class name; expected 0\.\.2"):
        label_text(3, NAMES)


MIXTURES = [  # (the second dataset's columns, words the refusal must contain)
    ({"audio": ["b.wav"], "caption": ["a cat"]}, ["Dataset 1 of the mixture", "['audio', 'caption']",
                                                  "dataset 0", "examples of one kind"]),
    ({"audio_encoder_features": [[[0.0]]], "prompt": ["p"], "target": ["t"]},
     ["Dataset 1 of the mixture", "audio_encoder_features"]),
]


@pytest.mark.parametrize("other, words", MIXTURES)
def test_a_mixture_of_different_kinds_is_refused_by_name(other, words):
    first = Dataset.from_dict({"audio": ["a.wav"], "prompt": ["p"], "target": ["t"]})
    with pytest.raises(ValueError) as refused:
        mix_datasets([first, Dataset.from_dict(other)])
    for word in words:
        assert word in str(refused.value)


# (the values of the column named as the audio, words the refusal must contain; None: accepted)
AUDIO_COLUMNS = [
    (["a dog barks", "a cat meows"], ["The audio column 'sound' holds text ('a dog barks', ...)", "audio_column="]),
    ([3, 1], ["The audio column 'sound' holds numbers (3, ...), not audio", "--audio-column"]),
    ([0.5, 0.25], ["holds numbers (0.5, ...)"]),
    ([None, "piano"], ["holds text ('piano', ...)"]),
    ([{"label": 1}, {"label": 2}], ["holds dict values", "not audio"]),
    ([[0.1, 0.2], [0.3]], ["holds list values"]),
    (["clip0.wav", "clip1.wav"], None),  # paths, even of missing files: each is refused by its row when read
    (["audio/a", "b.flac"], None),
    ([{"bytes": None, "path": "a.wav"}, None], None),
    ([None, None], None),
]


@pytest.mark.parametrize("values, words", AUDIO_COLUMNS)
def test_a_column_that_is_not_audio_is_refused_naming_it(values, words):
    dataset = Dataset.from_dict({"sound": values, "label": ["dog"] * len(values)})
    if words is None:
        check_columns(dataset, {"audio": "sound", "label": "label"})
        return
    for read in (lambda: check_columns(dataset, {"audio": "sound"}),
                 lambda: to_mint_examples(dataset, "NSynth", audio_column="sound"),
                 lambda: to_caption_pairs(dataset, audio_column="sound", caption_column="label")):
        with pytest.raises(ValueError) as refused:
            read()
        assert all(word in str(refused.value) for word in words), str(refused.value)


def test_a_saved_dataset_without_rows_is_refused_by_name(tmp_path):
    folder = tmp_path / "empty"
    Dataset.from_dict({"audio": [], "caption": []}).save_to_disk(str(folder))
    with pytest.raises(ValueError, match=r"could not be read: a split saved there has no rows") as caught:
        load_local_dataset(folder)
    assert str(folder) in str(caught.value)
