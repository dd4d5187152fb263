"""Release readers on malformed releases: every parse error names its file, line and column; encodings are detected
or refused; duplicate rows and unknown ids are counted; the output folder is replaced only when it should be."""

import json
import os
import pathlib
import tempfile

import numpy as np
import pytest
from datasets import Dataset, load_from_disk
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mint.data.releases import prepare_dataset
from tests.utils.releases import (
    AUDIOSET_HEADER,
    audioset_release,
    esc50_release,
    esc50_text,
    fma_release,
    fsd50k_release,
    music4all_release,
    nsynth_release,
    openmic_release,
    vggsound_release,
    wavcaps_release,
    write,
)


def edit(path, old, new):
    text = open(path, encoding="utf-8").read()
    assert old in text, (path, old)
    write(path, text.replace(old, new))


def esc50_with(text):
    return lambda root: esc50_release(root, text=text)


def audiocaps_release(root):
    write(root / "train.csv", "audiocap_id,youtube_id,start_time,caption\n91139,r1nicOVtvkQ,130,Water pours\n")


def clotho_release(root):
    write(root / "clotho_captions_development.csv",
          "file_name,caption_1,caption_2,caption_3,caption_4,caption_5\nA.wav,a,b,c,d,e\n")


def utf16_without_bom(root):
    clotho_release(root)
    text = (root / "clotho_captions_development.csv").read_text()
    (root / "clotho_captions_development.csv").write_bytes(text.encode("utf-16-le"))


def undecodable(root):
    esc50_release(root)
    (root / "meta" / "esc50.csv").write_bytes(esc50_text().encode() + "1-2-A-3.wav,1,3,caf\xe9\x81,True,3,A\n".encode(
        "latin-1"))


def fma_tracks(root, change):
    """Rewrites FMA's tracks.csv with `change` applied to its lines."""
    path = root / "fma_metadata" / "tracks.csv"
    write(path, "\n".join(change(path.read_text().splitlines())) + "\n")


BAD_RELEASES = [  # (id, dataset, writes the release, words the ValueError must contain)
    ("renamed column", "esc50", esc50_with(esc50_text().replace("category", "class")),
     ["esc50.csv: the header has no column 'category'", "found ['filename'"]),
    ("non-numeric field", "esc50", esc50_with(esc50_text().replace("\n1-1-A-1.wav,1,", "\n1-1-A-1.wav,one,")),
     ["esc50.csv, line 3, column 'fold': 'one' is not an integer"]),
    ("short row", "esc50", esc50_with(esc50_text() + "9-9-A-9.wav,1,9,cat\n"),
     ["esc50.csv, line 4: 4 fields, 7 in the header: no value for 'esc10', 'src_file', 'take'"]),
    ("unterminated quote", "esc50", esc50_with(esc50_text() + '9-9-A-9.wav,1,9,"cat,True,9,A\n'),
     ["esc50.csv, line 4: 4 fields", "no value for 'esc10'"]),  # the quote runs to the end of the file
    ("unknown split", "vggsound", lambda root: vggsound_release(root) and edit(root / "vggsound.csv", ",test\n",
                                                                               ",dev\n"),
     ["vggsound.csv, line 1, column 'split': 'dev' is not one of"]),
    ("non-numeric time", "audioset", lambda root: audioset_release(root) and edit(
        root / "balanced_train_segments.csv", "30.000, 40.000", "thirty, 40.000"),
     ["balanced_train_segments.csv, line 4, column 'start_seconds': 'thirty' is not a finite number"]),
    ("short segment row", "audioset", lambda root: audioset_release(root) and edit(
        root / "eval_segments.csv", ', "/m/0bt9lr,/m/09x0r"', ""),
     ["eval_segments.csv, line 4: 3 fields; expected 4"]),
    ("renamed vocabulary column", "audioset", lambda root: audioset_release(root) and edit(
        root / "class_labels_indices.csv", "display_name", "name"),
     ["class_labels_indices.csv: the header has no column 'display_name'"]),
    ("renamed audiocaps column", "audiocaps", lambda root: audiocaps_release(root) or edit(
        root / "train.csv", "youtube_id", "ytid"), ["train.csv: the header has no column 'youtube_id'"]),
    ("broken json", "wavcaps", lambda root: wavcaps_release(root) and write(
        root / "json_files" / "FreeSound" / "fsd_final.json", '{"data": [{"id": "1", "caption": "x"},'),
     ["fsd_final.json, line 1, column 39: not valid JSON"]),
    ("json entry without its caption", "wavcaps", lambda root: wavcaps_release(root) and write(
        root / "json_files" / "FreeSound" / "fsd_final.json", '{"data": [{"id": "1"}]}'),
     ["fsd_final.json: clip 0 of its 'data' list has no 'caption'"]),
    ("nsynth note without pitch", "nsynth", lambda root: nsynth_release(root) and edit(
        root / "nsynth-test" / "examples.json", '"pitch": 22, ', ""),
     ["examples.json: note 'bass_electronic_018-022-100' has no 'pitch'"]),
    ("unknown sample key", "openmic", lambda root: openmic_release(root) and edit(
        root / "partitions" / "split01_train.csv", "000139_119040", "999999_1"),
     ["split01_train.csv, line 2: sample key '999999_1' is not in"]),
    ("unknown fsd50k split", "fsd50k", lambda root: fsd50k_release(root) and edit(
        root / "FSD50K.ground_truth" / "dev.csv", ",val\n", ",holdout\n"),
     ["dev.csv, line 3, column 'split': 'holdout' is not one of"]),
    ("non-numeric key", "music4all", lambda root: music4all_release(root) and edit(
        root / "id_metadata.csv", "\t6\t0\t", "\tF#\t0\t"),
     ["id_metadata.csv, line 2, column 'key': 'F#' is not a finite number"]),
    ("unknown fma split", "fma", lambda root: fma_release(root) and edit(
        root / "fma_metadata" / "tracks.csv", "training", "holdout"),
     ["tracks.csv, track 2, column \"('set', 'split')\": 'holdout' is not one of"]),
    ("fma tracks.csv with one header row", "fma", lambda root: fma_release(root) and fma_tracks(
        root, lambda lines: [lines[0]] + lines[3:]),
     ["tracks.csv: the header has no column ('track_id',)", "in 3 header rows", "Is it the release's own file"]),
    ("fma tracks.csv with a renamed column", "fma", lambda root: fma_release(root) and edit(
        root / "fma_metadata" / "tracks.csv", "genre_top", "top_genre"),
     ["tracks.csv: the header has no column ('track', 'genre_top')"]),
    ("fma short row", "fma", lambda root: fma_release(root) and fma_tracks(
        root, lambda lines: lines[:4] + [lines[4][:lines[4].index(",medium")]] + lines[5:]),
     ["tracks.csv, line 5: 4 fields, 10 in the header: no value for ('set', 'subset')"]),
    ("fma quote left open", "fma", lambda root: fma_release(root) and fma_tracks(
        root, lambda lines: lines[:3] + [lines[3].replace(",AWOL - A", ',"AWOL - A')] + lines[4:]),
     ["tracks.csv, line 4: ", "(the row runs to line 5: a quote left open?)"]),
    ("fma row with a field too many", "fma", lambda root: fma_release(root) and fma_tracks(
        root, lambda lines: lines[:3] + [lines[3] + ",extra"] + lines[4:]),
     ["tracks.csv, line 4: 11 fields, 10 in the header: 1 more than the header names"]),
    ("fma non-numeric track id", "fma", lambda root: fma_release(root) and fma_tracks(
        root, lambda lines: lines[:3] + ["two" + lines[3][1:]] + lines[4:]),
     ["tracks.csv, line 4, column 'track_id': 'two' is not an integer"]),
    ("fma unknown subset", "fma", lambda root: fma_release(root) and edit(
        root / "fma_metadata" / "tracks.csv", ",small,", ",tiny,"),
     ["tracks.csv, track 2, column \"('set', 'subset')\": 'tiny' is not one of ['large', 'medium', 'small']"]),
    ("fma genres that are not a list", "fma", lambda root: fma_release(root) and edit(
        root / "fma_metadata" / "tracks.csv", '"[12, 25]","[12, 25]"', '"12, 25","[12, 25]"'),
     ["tracks.csv, track 140, column ('track', 'genres'): '12, 25' is not a JSON list of genre ids"]),
    ("fma genres.csv without titles", "fma", lambda root: fma_release(root) and edit(
        root / "fma_metadata" / "genres.csv", ",title,", ",name,"),
     ["genres.csv: the header has no column 'title'"]),
    ("openmic archive that is not one", "openmic", lambda root: openmic_release(root) and (
        root / "openmic-2018.npz").write_bytes(b"PK\x03\x04 broken"),
     ["openmic-2018.npz: not the release's archive", "Y_true, Y_mask and sample_key"]),
    ("openmic labels of another shape", "openmic", lambda root: openmic_release(root) and not np.savez(
        root / "openmic-2018.npz", Y_true=np.zeros((3, 2)), Y_mask=np.ones((3, 2), bool),
        sample_key=np.array(["000046_3840", "000135_483840", "000139_119040"])),
     ["openmic-2018.npz: Y_true has the shape (3, 2)", "expected (3, 3)"]),
    ("utf-16 without a byte-order mark", "clotho", utf16_without_bom,
     ["clotho_captions_development.csv: holds NUL bytes", "UTF-16 without a byte-order mark"]),
    ("bytes that decode as nothing", "esc50", undecodable,
     ["esc50.csv, line 4: byte b'\\x81'", "does not decode as utf-8-sig or cp1252"]),
    ("fold outside 1-5", "esc50", esc50_with(esc50_text().replace("\n1-1-A-1.wav,1,", "\n1-1-A-1.wav,-1,")),
     ["esc50.csv, line 3, column 'fold': '-1' is outside the release's range 1 to 5"]),
    ("fold 6", "esc50", esc50_with(esc50_text().replace("\n0-0-A-0.wav,1,", "\n0-0-A-0.wav,6,")),
     ["esc50.csv, line 2, column 'fold': '6' is outside the release's range 1 to 5"]),
    ("negative pitch", "nsynth", lambda root: nsynth_release(root) and edit(
        root / "nsynth-train" / "examples.json", '"pitch": 82', '"pitch": -5'),
     ["examples.json, note 'guitar_acoustic_001-082-050', column 'pitch': '-5' is outside the release's range 0 to "
      "127"]),
    ("velocity beyond MIDI", "nsynth", lambda root: nsynth_release(root) and edit(
        root / "nsynth-test" / "examples.json", '"velocity": 100', '"velocity": 128'),
     ["column 'velocity': '128' is outside the release's range 0 to 127"]),
    ("key beyond the pitch classes", "music4all", lambda root: music4all_release(root) and edit(
        root / "id_metadata.csv", "\t6\t0\t", "\t12\t0\t"),
     ["id_metadata.csv, line 2, column 'key': '12' is outside the release's range -1 to 11"]),
    ("key below -1", "music4all", lambda root: music4all_release(root) and edit(
        root / "id_metadata.csv", "\t6\t0\t", "\t-5\t0\t"),
     ["column 'key': '-5' is outside the release's range -1 to 11"]),
]


@pytest.mark.parametrize("name, make, words", [r[1:] for r in BAD_RELEASES], ids=[r[0] for r in BAD_RELEASES])
def test_a_malformed_release_is_refused_naming_file_line_and_column(name, make, words, tmp_path):
    root = tmp_path / "release"
    make(root)
    with pytest.raises(ValueError) as refused:
        prepare_dataset(name, root, tmp_path / "out", progress=False)
    message = str(refused.value)
    for word in words:
        assert any(w in message for w in word.split("|")), message
    assert not (tmp_path / "out").exists()


ENCODINGS = [  # (encoding, a category written in it, the label read back)
    ("utf-8", "chien_aboie", "chien aboie"),
    ("utf-8-sig", "café", "café"),
    ("utf-16", "cloche_à_vent", "cloche à vent"),
    ("cp1252", "l’église €", "l’église €"),  # 0x92 and 0x80: C1 control characters if read as Latin-1
]


@pytest.mark.parametrize("encoding, category, label", ENCODINGS, ids=[e[0] for e in ENCODINGS])
def test_each_encoding_releases_use_is_detected(encoding, category, label, tmp_path):
    esc50_release(tmp_path / "r", text=esc50_text(["dog", category]), encoding=encoding)
    result = prepare_dataset("esc50", tmp_path / "r", tmp_path / "out", progress=False)
    labels = result.dataset["train"]["label"]
    assert labels == ["dog", label]
    assert not any("\x80" <= c <= "\x9f" for text in labels for c in text)


def test_music4all_rows_of_tracks_the_information_file_lacks_are_counted(tmp_path):
    root = tmp_path / "music4all"
    music4all_release(root)
    edit(root / "id_genres.csv", "rock\n", "rock\nzzGhostTrack0001\tjazz\n")
    edit(root / "id_metadata.csv", "\t90\t1\n", "\t90\t1\nzzGhostTrack0002\tx\t1\t2000\t0.1\t0.1\t1\t1\t0.1\t1\t1\n")
    result = prepare_dataset("music4all", root, tmp_path / "out", progress=False)
    assert result.unknown_ids == {"track zzGhostTrack0001 of id_genres.csv": 1,
                                  "track zzGhostTrack0002 of id_metadata.csv": 1}
    assert "2 ids that the release's vocabulary lacks" in result.summary()
    assert len(result.dataset["train"]) == 2 and "zzGhostTrack0001" not in result.dataset["train"]["id"]


def test_duplicate_rows_and_unknown_ids_are_counted_with_examples(tmp_path):
    root = tmp_path / "audioset"
    audioset_release(root)
    write(root / "balanced_train_segments.csv", AUDIOSET_HEADER +
          '--PJHxphWEs, 30.000, 40.000, "/m/09x0r,/m/zzzz"\n'
          '--PJHxphWEs, 30.000, 40.000, "/m/09x0r,/m/zzzz"\n'
          '-0CamVQdP_Y, 0.000, 10.000, "/m/0bt9lr"\n'
          '-0CamVQdP_Y, 0.000, 10.000, "/m/09x0r"\n')
    result = prepare_dataset("audioset", root, tmp_path / "out", progress=False)
    train = result.dataset["train"]
    assert train["ytid"] == ["--PJHxphWEs", "-0CamVQdP_Y"]
    assert train["labels"] == [["Speech"], ["Dog"]] and train["mids"][0] == ["/m/09x0r", "/m/zzzz"]
    assert result.duplicates == [("train", "--PJHxphWEs 30.000-40.000"), ("train", "-0CamVQdP_Y 0.000-10.000")]
    assert result.unknown_ids == {"/m/zzzz": 1}
    summary = result.summary()
    assert "1 rows list a clip again with the same metadata; dropped: '--PJHxphWEs 30.000-40.000'" in summary
    assert "1 rows list a clip again with other metadata; the first listing is kept" in summary
    assert "1 ids that the release's vocabulary lacks (1 uses) are left out of the labels: '/m/zzzz'" in summary


# ---- the output folder ------------------------------------------------------------------------------------------

def saved(folder):
    Dataset.from_dict({"text": ["mine"]}).save_to_disk(str(folder))


def notes(folder):
    os.makedirs(folder)
    (folder / "notes.txt").write_text("mine")


OUTPUTS = [  # (what the output holds, whether overwrite replaces it, words the refusal must contain)
    ("a dataset folder", saved, True, ["exists and is not empty", "--overwrite"]),
    ("a folder of other files", notes, False, ["'notes.txt'", "never replaces such a folder"]),
    ("a file", lambda path: path.write_text("mine"), False, ["is not a folder"]),
]


@pytest.mark.parametrize("what, make, replaceable, words", OUTPUTS, ids=[o[0] for o in OUTPUTS])
def test_prepare_refuses_an_output_that_holds_something_else(what, make, replaceable, words, tmp_path):
    esc50_release(tmp_path / "r")
    output = tmp_path / "out"
    make(output)
    with pytest.raises(ValueError) as refused:
        prepare_dataset("esc50", tmp_path / "r", output, progress=False)
    for word in words:
        assert word in str(refused.value)
    if replaceable:
        esc50_release(tmp_path / "bad", text=esc50_text().replace("fold", "folds"))
        with pytest.raises(ValueError, match="no column 'fold'"):
            prepare_dataset("esc50", tmp_path / "bad", output, overwrite=True, progress=False)
        assert load_from_disk(str(output))["text"] == ["mine"]  # a failed run leaves it as it was
        prepare_dataset("esc50", tmp_path / "r", output, overwrite=True, progress=False)
        assert load_from_disk(str(output))["train"]["label"] == ["dog", "crying baby"]
    else:
        with pytest.raises(ValueError, match="never replaces|is not a folder"):
            prepare_dataset("esc50", tmp_path / "r", output, overwrite=True, progress=False)
        assert (output / "notes.txt" if output.is_dir() else output).read_text() == "mine"
    assert [name for name in os.listdir(tmp_path) if "partial" in name or "replaced" in name] == []


# ---- properties ---------------------------------------------------------------------------------------------------

CATEGORY = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=12)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(categories=st.lists(CATEGORY, min_size=1, max_size=4),
       encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "cp1252"]))
def test_any_text_in_any_detected_encoding_reads_back_as_written(categories, encoding):
    text = esc50_text(categories)
    try:
        data = text.encode(encoding)
    except UnicodeEncodeError:
        assume(False)
    if encoding == "cp1252":  # bytes that are valid UTF-8 too are read as UTF-8: only the others are cp1252's
        try:
            data.decode("utf-8")
            assume(False)
        except UnicodeDecodeError:
            pass
    with tempfile.TemporaryDirectory() as folder:
        root = pathlib.Path(folder) / "r"
        esc50_release(root, text=text, encoding=encoding)
        result = prepare_dataset("esc50", root, os.path.join(folder, "out"), progress=False)
        assert result.dataset["train"]["label"] == [c.replace("_", " ").strip() for c in categories]


@settings(max_examples=40, deadline=None)
@given(data=st.binary(max_size=300) | st.builds(lambda text, cut: text[:cut], st.just(esc50_text().encode()),
                                                 st.integers(0, 120)),
       suffix=st.sampled_from([b"", b"\xff\xfe", b'"', b"\n,,,\n", b"\x81"]))
def test_any_bytes_as_a_metadata_file_are_read_or_refused_by_name(data, suffix):
    with tempfile.TemporaryDirectory() as folder:
        os.makedirs(os.path.join(folder, "r", "meta"))
        with open(os.path.join(folder, "r", "meta", "esc50.csv"), "wb") as f:
            f.write(data + suffix)
        try:
            prepare_dataset("esc50", os.path.join(folder, "r"), os.path.join(folder, "out"), progress=False)
        except ValueError as error:
            assert "esc50.csv" in str(error) or "lists no clips" in str(error), str(error)


@pytest.fixture(scope="module")
def fma_tracks_text(tmp_path_factory):
    root = tmp_path_factory.mktemp("fma") / "r"
    fma_release(root)
    return (root / "fma_metadata" / "tracks.csv").read_text()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(at=st.floats(0, 1), cut=st.integers(0, 3), insert=st.sampled_from(["", '"', ",", "\n", "x", '",']))
def test_any_edit_of_fma_tracks_is_read_or_refused_by_name(fma_tracks_text, at, cut, insert):
    """One edit of FMA's tracks.csv (characters cut, a quote, delimiter, line break or letter put in): the release is
    read, or refused by a ValueError that names the file, never with another error."""
    place = int(at * len(fma_tracks_text))
    text = fma_tracks_text[:place] + insert + fma_tracks_text[place + cut:]
    with tempfile.TemporaryDirectory() as folder:
        root = pathlib.Path(folder) / "r"
        fma_release(root)
        write(root / "fma_metadata" / "tracks.csv", text)
        try:
            prepare_dataset("fma", root, os.path.join(folder, "out"), progress=False)
        except ValueError as error:
            assert "tracks.csv" in str(error) or "lists no clips" in str(error), str(error)


def test_json_counts_of_the_command_keep_their_keys(tmp_path, capsys):
    from mint.cli import main

    esc50_release(tmp_path / "r")
    assert main(["data", "prepare", "esc50", str(tmp_path / "r"), "--output", str(tmp_path / "out"), "--json",
                 str(tmp_path / "counts.json"), "--quiet"]) == 0
    assert json.loads((tmp_path / "counts.json").read_text())["splits"]["train"]["rows"] == 2
    assert np.array_equal(load_from_disk(str(tmp_path / "out"))["train"]["fold"], [1, 1])
