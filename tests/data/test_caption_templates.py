"""Stage-1 captions written from a row's labels by templates, one drawn per row and epoch."""

import pytest
from datasets import Dataset

from mint.data.examples import to_caption_pairs
from mint.data.templates import caption_for_epoch, template_fields


TEMPLATES = ["{family} note, {loudness}", "the {family} plays {loudness}", "a sound of {event}", "{event} is heard"]


def rows() -> Dataset:
    return Dataset.from_dict({"audio": [{"bytes": b"RIFF", "path": None}] * 4,
                              "family": ["piano", "organ", None, "flute"], "loudness": ["softly", "loudly", None, None],
                              "event": [None, None, "white noise", "clicks"], "caption": ["a", "b", "c", "d"]})


def test_template_fields_are_the_named_columns_in_order():
    assert template_fields("the {family} plays {loudness}, {family}") == ["family", "loudness"]


def test_each_epoch_of_a_row_sees_another_template_and_the_seed_fixes_them():
    pairs = to_caption_pairs(rows(), caption_templates=TEMPLATES, epochs=2, seed=3)
    assert pairs.column_names == ["audio", "caption"] and len(pairs) == 8
    first, second = pairs["caption"][:4], pairs["caption"][4:]
    # Rows 0 and 1 fill two templates, row 2 two others: their two epochs differ; row 3 fills the event ones only.
    assert {first[0], second[0]} == {"piano note, softly", "the piano plays softly"}
    assert {first[1], second[1]} == {"organ note, loudly", "the organ plays loudly"}
    assert {first[2], second[2]} == {"a sound of white noise", "white noise is heard"}
    assert {first[3], second[3]} == {"a sound of clicks", "clicks is heard"}
    assert pairs["caption"] == to_caption_pairs(rows(), caption_templates=TEMPLATES, epochs=2, seed=3)["caption"]
    # The third epoch of a row with two templates starts its order again.
    third = to_caption_pairs(rows(), caption_templates=TEMPLATES, epochs=3, seed=3)["caption"][8:]
    assert third == first


def test_the_draw_is_a_function_of_seed_row_and_epoch():
    row = {"family": "piano", "loudness": "softly", "event": None}
    seen = {caption_for_epoch(TEMPLATES, row, 0, epoch, seed) for epoch in range(2) for seed in range(6)}
    assert seen == {"piano note, softly", "the piano plays softly"}
    assert caption_for_epoch(TEMPLATES, {"family": None, "event": None}, 0, 0) is None


@pytest.mark.parametrize(("kwargs", "error", "words"), [
    ({"caption_templates": ["{colour} note"]}, ValueError, ["colour", "lacks", "columns"]),
    ({"caption_templates": ["a plain caption"]}, ValueError, ["names no column"]),
    ({"caption_templates": ["{family!r} note"]}, ValueError, ["plain column name"]),
    ({"caption_templates": ["{family:>9} note"]}, ValueError, ["plain column name"]),
    ({"caption_templates": ["{family note"]}, ValueError, ["not a format string"]),
    ({"caption_templates": ["{0} note"]}, ValueError, ["plain column name"]),
    ({"caption_templates": "{family} note"}, ValueError, ["non-empty list"]),
    ({"caption_templates": []}, ValueError, ["non-empty list"]),
    ({"caption_templates": [7]}, ValueError, ["must be a string"]),
    ({"caption_templates": ["{family} note"], "epochs": 0}, ValueError, ["positive integer"]),
    ({"caption_templates": ["{family} note"], "epochs": 1.5}, ValueError, ["positive integer"]),
    ({"caption_templates": ["{family} note"]}, ValueError, ["Row 2", "no value for any template"]),
    ({"caption_templates": ["{family} note"], "audio_column": "sound"}, ValueError, ["audio column 'sound'"]),
    ({"epochs": 2}, ValueError, ["needs caption_templates"]),
    ({"keep_columns": ["group"]}, ValueError, ["no kept column 'group'"]),
    ({"caption_templates": TEMPLATES, "keep_columns": ["group"]}, ValueError, ["no kept column 'group'"]),
    ({"caption_templates": TEMPLATES, "keep_columns": ["caption"]}, ValueError, ["'caption', which", "another name"]),
])
def test_bad_templates_are_refused(kwargs, error, words):
    with pytest.raises(error) as caught:
        to_caption_pairs(rows(), **kwargs)
    for word in words:
        assert word in str(caught.value)


def test_kept_columns_stay_beside_the_captions_of_every_pass():
    plain = to_caption_pairs(rows(), keep_columns=["family"])
    assert plain.column_names == ["audio", "caption", "family"] and plain["family"] == rows()["family"]
    grouped = to_caption_pairs(rows().add_column("group", [1, 1, 2, 3]), caption_templates=TEMPLATES, epochs=2,
                               keep_columns=["group"])
    assert grouped["group"] == [1, 1, 2, 3] * 2


def test_a_stream_is_refused_with_templates():
    with pytest.raises(ValueError, match="not a stream"):
        to_caption_pairs(rows().to_iterable_dataset(), caption_templates=TEMPLATES)
