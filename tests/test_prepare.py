"""mint-data prepare: each release read from a fixture in its official layout, every column checked."""

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import soundfile
from datasets import Audio, load_from_disk

from data_mint import to_caption_pairs, to_mint_examples
from evaluation_mint import leakage_report
from prepare_mint import LAYOUTS, YouTubeClips, prepare_dataset


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def clip(path, seconds=0.05, rate=16000):
    """A short generated clip in the format the extension names (a few bytes for video containers)."""
    path = str(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if path.endswith((".mp4", ".webm")):
        with open(path, "wb") as f:
            f.write(b"\x00\x00\x00\x18ftypmp42")
        return path
    t = np.arange(int(seconds * rate)) / rate
    soundfile.write(path, 0.1 * np.sin(2 * np.pi * 440 * t), rate)
    return path


def write(path, text, encoding="utf-8"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding=encoding, newline="") as f:
        f.write(text)


def rows(dataset, split):
    """The split's rows with the audio column reduced to its path."""
    return [{**row, "audio": row["audio"]["path"]} for row in dataset[split]]


def prepare(name, root, tmp_path, **kwargs):
    return prepare_dataset(name, root, tmp_path / f"{name}-out", progress=False, **kwargs)


# ---- AudioSet ----------------------------------------------------------------------------------------------------

AUDIOSET_HEADER = ("# Segments csv created Sun Mar  5 10:54:31 2017\n"
                   "# num_ytids=3, num_segs=3, num_unique_labels=3, num_positive_labels=5\n"
                   "# YTID, start_seconds, end_seconds, positive_labels\n")


def audioset_release(root):
    """AudioSet's CSVs and three of its four clips, named as three download tools name them."""
    write(root / "class_labels_indices.csv", 'index,mid,display_name\n0,/m/09x0r,"Speech"\n'
                                             '1,/m/05zppz,"Male speech, man speaking"\n2,/m/0bt9lr,"Dog"\n')
    write(root / "balanced_train_segments.csv", AUDIOSET_HEADER +
          '--PJHxphWEs, 30.000, 40.000, "/m/09x0r,/m/05zppz"\n'
          '-0CamVQdP_Y, 0.000, 10.000, "/m/0bt9lr"\n'
          'AbsentClip1, 5.000, 15.000, "/m/09x0r"\n')
    write(root / "eval_segments.csv", AUDIOSET_HEADER + 'Y7fmOlUlwoN, 60.000, 70.000, "/m/0bt9lr,/m/09x0r"\n')
    paths = {"--PJHxphWEs": clip(root / "audio" / "balanced" / "Y--PJHxphWEs.wav"),
             "-0CamVQdP_Y": clip(root / "audio" / "balanced" / "-0CamVQdP_Y_0.000.flac"),
             "Y7fmOlUlwoN": clip(root / "audio" / "eval" / "Y7fmOlUlwoN_60000.wav")}
    clip(root / "audio" / "eval" / "Y7fmOlUlwoN_60000.mp4")  # a video beside the audio: the audio wins
    return paths


def test_audioset_segment_csvs_labels_and_clip_names(tmp_path):
    root = tmp_path / "audioset"
    paths = audioset_release(root)
    result = prepare("audioset", root, tmp_path, missing_list=tmp_path / "missing.tsv")
    assert list(result.dataset) == ["train", "test"]
    assert rows(result.dataset, "train") == [
        {"audio": paths["--PJHxphWEs"], "ytid": "--PJHxphWEs", "start": 30.0, "end": 40.0,
         "labels": ["Speech", "Male speech, man speaking"], "mids": ["/m/09x0r", "/m/05zppz"], "subset": "balanced",
         "source_id": "youtube:--PJHxphWEs", "duration": 10.0},
        {"audio": paths["-0CamVQdP_Y"], "ytid": "-0CamVQdP_Y", "start": 0.0, "end": 10.0, "labels": ["Dog"],
         "mids": ["/m/0bt9lr"], "subset": "balanced", "source_id": "youtube:-0CamVQdP_Y", "duration": 10.0}]
    assert rows(result.dataset, "test") == [
        {"audio": paths["Y7fmOlUlwoN"], "ytid": "Y7fmOlUlwoN", "start": 60.0, "end": 70.0, "labels": ["Dog", "Speech"],
         "mids": ["/m/0bt9lr", "/m/09x0r"], "subset": "eval", "source_id": "youtube:Y7fmOlUlwoN", "duration": 10.0}]
    assert (result.counts["train"].rows, result.counts["train"].missing, result.counts["test"].missing) == (2, 1, 0)
    assert result.missing == [("train", "AbsentClip1 5.000-15.000")]
    assert (tmp_path / "missing.tsv").read_text() == "train\tAbsentClip1 5.000-15.000\n"
    assert "missing" in result.summary() and "train" in result.summary()


def test_youtube_names_prefer_the_segment_over_a_bare_id(tmp_path):
    bare, timed = clip(tmp_path / "abcdefghijk.wav"), clip(tmp_path / "sub" / "abcdefghijk_000020.flac")
    clip(tmp_path / "sub" / "abcdefghijk_000020.mp4")
    index = YouTubeClips(str(tmp_path))
    assert index.find("abcdefghijk", 20, 30) == timed
    assert index.find("abcdefghijk", 50, 60) == bare
    assert index.find("zzzzzzzzzzz", 0, 10) is None


# ---- VGGSound ----------------------------------------------------------------------------------------------------

def vggsound_release(root):
    write(root / "vggsound.csv", '---g-f_I2yQ,1,people marching,test\n'
                                 '--0PQM4-hqg,30,"male speech, man speaking",train\n'
                                 '--56QUhyDQM,185,playing tennis,train\n')
    marching = clip(root / "video" / "---g-f_I2yQ_000001.mp4")
    speech = clip(root / "audio" / "--0PQM4-hqg_000030.wav")
    return marching, speech


def test_vggsound_csv_without_header(tmp_path):
    root = tmp_path / "vggsound"
    marching, speech = vggsound_release(root)
    result = prepare("vggsound", root, tmp_path)
    assert rows(result.dataset, "test") == [
        {"audio": marching, "ytid": "---g-f_I2yQ", "start": 1, "label": "people marching",
         "source_id": "youtube:---g-f_I2yQ", "duration": 10.0}]
    assert rows(result.dataset, "train") == [
        {"audio": speech, "ytid": "--0PQM4-hqg", "start": 30, "label": "male speech, man speaking",
         "source_id": "youtube:--0PQM4-hqg", "duration": 10.0}]
    assert result.missing == [("train", "--56QUhyDQM_000185")]


def test_vggsound_rejects_a_malformed_row(tmp_path):
    root = tmp_path / "vggsound"
    write(root / "vggsound.csv", "ytid,start,label,split\n")
    with pytest.raises(ValueError, match="no header"):
        prepare("vggsound", root, tmp_path)


# ---- AudioCaps ---------------------------------------------------------------------------------------------------

def test_audiocaps_split_csvs_grouped_per_clip(tmp_path):
    root = tmp_path / "AUDIOCAPS"
    write(root / "csv_files_v1" / "train.csv", "audiocap_id,youtube_id,start_time,caption\n"
                                               "91139,r1nicOVtvkQ,130,A woman talks nearby as water pours\n"
                                               "58146,UDGBjjwyaqE,20,Multiple clanging and clanking sounds\n")
    write(root / "csv_files_v1" / "val.csv", "audiocap_id,youtube_id,start_time,caption\n"
                                             '97151,vfY_TJq7n_U,130,"Rustling occurs, ducks quack"\n'
                                             "97152,vfY_TJq7n_U,130,Ducks quack and water splashes\n")
    write(root / "csv_files_v1" / "test.csv", "audiocap_id,youtube_id,start_time,caption\n"
                                              "103549,--0w1YA1Hm4,30,A vehicle revs\n")
    first = clip(root / "audio_32000Hz" / "train" / "r1nicOVtvkQ_130.flac")
    ducks = clip(root / "audio_32000Hz" / "val" / "vfY_TJq7n_U_130.flac")
    result = prepare("audiocaps", root, tmp_path)
    assert rows(result.dataset, "train") == [
        {"audio": first, "ytid": "r1nicOVtvkQ", "start": 130, "caption": "A woman talks nearby as water pours",
         "captions": ["A woman talks nearby as water pours"], "audiocap_ids": [91139],
         "source_id": "youtube:r1nicOVtvkQ", "duration": 10.0}]
    assert rows(result.dataset, "validation") == [
        {"audio": ducks, "ytid": "vfY_TJq7n_U", "start": 130, "caption": "Rustling occurs, ducks quack",
         "captions": ["Rustling occurs, ducks quack", "Ducks quack and water splashes"], "audiocap_ids": [97151, 97152],
         "source_id": "youtube:vfY_TJq7n_U", "duration": 10.0}]
    assert len(result.dataset["test"]) == 0 and result.counts["test"].missing == 1
    assert len(load_from_disk(result.output)["test"]) == 0
    assert result.missing == [("train", "UDGBjjwyaqE_20"), ("test", "--0w1YA1Hm4_30")]
    assert result.dataset["validation"].info.description == "audiocaps: official split 'val'"


# ---- WavCaps -----------------------------------------------------------------------------------------------------

def wavcaps_release(root):
    as_data = {"num_captions_per_audio": 1, "data": [
        {"id": "Y-0RWZT5pvbE.wav", "caption": "A man speaks.", "audio": "/orig/Y-0RWZT5pvbE.flac", "duration": 10.0},
        {"id": "YvfY_TJq7n_U.wav", "caption": "Ducks quack.", "audio": "/orig/YvfY_TJq7n_U.flac", "duration": 10.0}]}
    fsd_data = {"num_captions_per_audio": 1, "data": [
        {"id": "2219", "file_name": "plane.wav", "caption": "A plane lands.", "duration": 31.5},
        {"id": "180916", "file_name": "rain.wav", "caption": "Rain falls.", "duration": 4.25}]}
    sb_list = [{"title": "Airplane Landing Airport", "id": "2219", "caption": "An airplane is landing.",
                "duration": 14.1424375}]
    bbc_data = {"num_captions_per_audio": 1, "data": [{"id": "07066104", "caption": "Birds sing.", "duration": 60.0}]}
    for source, name, data in (("AudioSet_SL", "as_final.json", as_data), ("FreeSound", "fsd_final.json", fsd_data),
                               ("SoundBible", "sb_final.json", sb_list),
                               ("BBC_Sound_Effects", "bbc_final.json", bbc_data)):
        write(root / "json_files" / source / name, json.dumps(data))
    write(root / "json_files" / "blacklist" / "blacklist_exclude_test_ac.json",
          json.dumps({"AudioSet": ["YvfY_TJq7n_U.wav"], "FreeSound": ["180916"]}))
    paths = {"as": clip(root / "Audio" / "AudioSet_SL" / "Y-0RWZT5pvbE.flac"),
             "fs": clip(root / "Zip_files" / "FreeSound" / "FreeSound_flac" / "2219.flac"),
             "sb": clip(root / "Zip_files" / "SoundBible" / "SoundBible_flac" / "2219.flac")}
    clip(root / "Audio" / "AudioSet_SL" / "YvfY_TJq7n_U.flac")
    return paths


def test_wavcaps_sources_blacklist_and_per_source_splits(tmp_path):
    root = tmp_path / "WavCaps"
    paths = wavcaps_release(root)
    result = prepare("wavcaps", root, tmp_path,
                     blacklist=[str(root / "json_files" / "blacklist" / "blacklist_exclude_test_ac.json")])
    expected = {
        "audioset_sl": [{"audio": paths["as"], "id": "Y-0RWZT5pvbE", "caption": "A man speaks.",
                         "source": "AudioSet_SL", "source_id": "youtube:-0RWZT5pvbE", "duration": 10.0}],
        "freesound": [{"audio": paths["fs"], "id": "2219", "caption": "A plane lands.", "source": "FreeSound",
                       "source_id": "freesound:2219", "duration": 31.5}],
        "soundbible": [{"audio": paths["sb"], "id": "2219", "caption": "An airplane is landing.",
                        "source": "SoundBible", "source_id": "soundbible:2219", "duration": 14.1424375}],
        "bbc_sound_effects": []}
    for split, split_rows in expected.items():
        assert rows(result.dataset, split) == split_rows, split
    assert rows(result.dataset, "train") == expected["audioset_sl"] + expected["freesound"] + expected["soundbible"]
    assert (result.counts["train"].excluded, result.counts["freesound"].excluded,
            result.counts["audioset_sl"].excluded) == (2, 1, 1)
    assert result.missing == [("train,bbc_sound_effects", "BBC_Sound_Effects/07066104")]
    assert result.counts["train"].missing == result.counts["bbc_sound_effects"].missing == 1


# ---- FSD50K ------------------------------------------------------------------------------------------------------

def fsd50k_release(root):
    truth = root / "FSD50K.ground_truth"
    write(truth / "dev.csv", 'fname,labels,mids,split\n'
                             '64760,"Electric_guitar,Guitar,Music","/m/02sgy,/m/0342h,/m/04rlf",train\n'
                             '16399,"Keyboard_(musical),Music","/m/05148p4,/m/04rlf",val\n'
                             '99999,"Music","/m/04rlf",train\n')
    write(truth / "eval.csv", 'fname,labels,mids\n37199,"Walk_and_footsteps","/m/07pbtc8"\n')
    write(truth / "vocabulary.csv", "0,Electric_guitar,/m/02sgy\n")
    paths = {n: clip(root / f"FSD50K.{part}_audio" / f"{n}.wav")
             for part, n in (("dev", "64760"), ("dev", "16399"), ("eval", "37199"))}
    return paths


def test_fsd50k_ground_truth_and_audio_folders(tmp_path):
    root = tmp_path / "fsd50k"
    paths = fsd50k_release(root)
    result = prepare("fsd50k", root, tmp_path)
    assert rows(result.dataset, "train") == [
        {"audio": paths["64760"], "fname": "64760", "labels": ["Electric guitar", "Guitar", "Music"],
         "mids": ["/m/02sgy", "/m/0342h", "/m/04rlf"], "source_id": "freesound:64760", "duration": None}]
    assert rows(result.dataset, "validation") == [
        {"audio": paths["16399"], "fname": "16399", "labels": ["Keyboard (musical)", "Music"],
         "mids": ["/m/05148p4", "/m/04rlf"], "source_id": "freesound:16399", "duration": None}]
    assert rows(result.dataset, "test") == [
        {"audio": paths["37199"], "fname": "37199", "labels": ["Walk and footsteps"], "mids": ["/m/07pbtc8"],
         "source_id": "freesound:37199", "duration": None}]
    assert result.missing == [("train", "FSD50K.dev_audio/99999.wav")]


# ---- NSynth ------------------------------------------------------------------------------------------------------

def nsynth_note(note_str, family, source, pitch, velocity, qualities):
    return {"note_str": note_str, "instrument_family_str": family, "instrument_source_str": source,
            "instrument_str": note_str.rsplit("-", 2)[0], "pitch": pitch, "velocity": velocity,
            "qualities_str": qualities, "sample_rate": 16000, "instrument_family": 0, "instrument_source": 0,
            "qualities": [0] * 10, "note": 1, "instrument": 2}


def nsynth_release(root):
    train = {"guitar_acoustic_001-082-050": nsynth_note("guitar_acoustic_001-082-050", "guitar", "acoustic", 82, 50,
                                                        ["bright", "percussive"]),
             "synth_lead_006-030-127": nsynth_note("synth_lead_006-030-127", "synth_lead", "synthetic", 30, 127, []),
             "brass_acoustic_015-060-075": nsynth_note("brass_acoustic_015-060-075", "brass", "acoustic", 60, 75, [])}
    write(root / "nsynth-train" / "examples.json", json.dumps(train))
    write(root / "nsynth-test" / "examples.json", json.dumps(
        {"bass_electronic_018-022-100": nsynth_note("bass_electronic_018-022-100", "bass", "electronic", 22, 100,
                                                    ["dark"])}))
    paths = {n: clip(root / f"nsynth-{s}" / "audio" / f"{n}.wav") for s, n in (
        ("train", "guitar_acoustic_001-082-050"), ("train", "synth_lead_006-030-127"),
        ("test", "bass_electronic_018-022-100"))}
    return paths


def test_nsynth_examples_json_and_audio(tmp_path):
    root = tmp_path / "nsynth"
    paths = nsynth_release(root)
    result = prepare("nsynth", root, tmp_path)
    assert rows(result.dataset, "train") == [
        {"audio": paths["guitar_acoustic_001-082-050"], "note_str": "guitar_acoustic_001-082-050", "label": "guitar",
         "instrument_str": "guitar_acoustic_001", "instrument_source_str": "acoustic", "pitch": 82, "velocity": 50,
         "qualities": ["bright", "percussive"], "source_id": "nsynth:guitar_acoustic_001-082-050", "duration": 4.0},
        {"audio": paths["synth_lead_006-030-127"], "note_str": "synth_lead_006-030-127", "label": "synth lead",
         "instrument_str": "synth_lead_006", "instrument_source_str": "synthetic", "pitch": 30, "velocity": 127,
         "qualities": [], "source_id": "nsynth:synth_lead_006-030-127", "duration": 4.0}]
    assert rows(result.dataset, "test")[0]["label"] == "bass"
    assert list(result.dataset) == ["train", "test"]
    assert result.missing == [("train", "nsynth-train/audio/brass_acoustic_015-060-075.wav")]
    examples = to_mint_examples(load_from_disk(result.output)["train"], "NSynth")
    assert examples[1]["target"] == "synth lead" and examples[1]["audio"]["path"] == paths["synth_lead_006-030-127"]


# ---- FMA ---------------------------------------------------------------------------------------------------------

def fma_release(root):
    columns = pd.MultiIndex.from_tuples([
        ("album", "title"), ("artist", "name"), ("set", "split"), ("set", "subset"), ("track", "duration"),
        ("track", "genre_top"), ("track", "genres"), ("track", "genres_all"), ("track", "title")])
    tracks = pd.DataFrame([
        ["AWOL - A Way Of Life", "AWOL", "training", "small", 168, "Hip-Hop", "[21]", "[21]", "Food"],
        ["Niris", "Kurt Vile", "validation", "medium", 237, "Rock", "[12, 25]", "[12, 25]", "Freeway"],
        [None, "Chris and Nicky", "test", "large", 20, None, "[12, 76]", "[12, 76]", "Untitled"],
        ["Constant Hitmaker", "Nicky Cook", "training", "large", 400, "Rock", "[12]", "[12]", "Gone"]],
        columns=columns, index=pd.Index([2, 140, 1482, 99134], name="track_id"))
    os.makedirs(root / "fma_metadata")
    tracks.to_csv(root / "fma_metadata" / "tracks.csv")
    write(root / "fma_metadata" / "genres.csv", "genre_id,#tracks,parent,title,top_level\n12,32923,0,Rock,12\n"
                                                "21,8389,0,Hip-Hop,21\n25,9261,12,Punk,12\n"
                                                "76,1028,12,Experimental Pop,12\n")
    return {tid: clip(root / "fma_large" / f"{tid:06d}"[:3] / f"{tid:06d}.mp3") for tid in (2, 140, 1482)}


def test_fma_tracks_csv_multirow_header(tmp_path):
    root = tmp_path / "fma"
    paths = fma_release(root)
    header = (root / "fma_metadata" / "tracks.csv").read_text().splitlines()[:3]
    assert header[0].startswith(",album,artist,set,set") and header[2].startswith("track_id,")
    result = prepare("fma", root, tmp_path)
    assert rows(result.dataset, "train") == [
        {"audio": paths[2], "track_id": 2, "label": "Hip-Hop", "genres": ["Hip-Hop"], "title": "Food",
         "artist": "AWOL", "source_id": "fma:2", "duration": 30.0}]
    assert rows(result.dataset, "validation") == [
        {"audio": paths[140], "track_id": 140, "label": "Rock", "genres": ["Rock", "Punk"], "title": "Freeway",
         "artist": "Kurt Vile", "source_id": "fma:140", "duration": 30.0}]
    assert rows(result.dataset, "test") == [
        {"audio": paths[1482], "track_id": 1482, "label": None, "genres": ["Rock", "Experimental Pop"],
         "title": "Untitled", "artist": "Chris and Nicky", "source_id": "fma:1482", "duration": 20.0}]
    assert result.missing == [("train", "fma_large/099/099134.mp3")]
    assert result.counts["test"].unlabeled == 1 and "--labeled-only" in result.summary()
    labeled = prepare_dataset("fma", root, tmp_path / "fma-labeled", labeled_only=True, progress=False)
    assert len(labeled.dataset["test"]) == 0 and labeled.counts["test"].unlabeled == 1


def test_fma_size_selects_the_subset_and_must_be_chosen_among_several(tmp_path):
    root = tmp_path / "fma"
    fma_release(root)
    small = clip(root / "fma_small" / "000" / "000002.mp3")
    with pytest.raises(ValueError, match="fma_size"):
        prepare("fma", root, tmp_path)
    result = prepare("fma", root, tmp_path, fma_size="small")
    assert list(result.dataset) == ["train"] and rows(result.dataset, "train")[0]["audio"] == small


# ---- OpenMIC -----------------------------------------------------------------------------------------------------

def openmic_release(root, key_dtype=None):
    write(root / "class-map.json", json.dumps({"accordion": 0, "mallet_percussion": 1, "piano": 2}))
    keys = np.array(["000046_3840", "000135_483840", "000139_119040"], dtype=key_dtype)
    y_true = np.array([[0.5, 0.49, 0.9], [0.0, 0.8, 0.5], [0.2, 0.5, 0.5]], dtype=np.float32)
    y_mask = np.array([[1, 1, 0], [1, 1, 0], [1, 0, 0]], dtype=bool)
    np.savez(root / "openmic-2018.npz", X=np.zeros((3, 10, 128), np.uint8), Y_true=y_true, Y_mask=y_mask,
             sample_key=keys)
    write(root / "partitions" / "split01_train.csv", "000046_3840\n000139_119040\n")
    write(root / "partitions" / "split01_test.csv", "000135_483840\n")
    return {k: clip(root / "audio" / k[:3] / f"{k}.ogg") for k in ("000046_3840", "000135_483840")}


def test_openmic_npz_masks_threshold_and_partitions(tmp_path):
    root = tmp_path / "openmic-2018"
    paths = openmic_release(root)
    result = prepare("openmic", root, tmp_path)
    assert rows(result.dataset, "train") == [
        {"audio": paths["000046_3840"], "sample_key": "000046_3840", "labels": ["accordion"],
         "annotated": ["accordion", "mallet percussion"], "source_id": "fma:46", "duration": 10.0}]
    assert rows(result.dataset, "test") == [
        {"audio": paths["000135_483840"], "sample_key": "000135_483840", "labels": ["mallet percussion"],
         "annotated": ["accordion", "mallet percussion"], "source_id": "fma:135", "duration": 10.0}]
    assert result.missing == [("train", "audio/000/000139_119040.ogg")]


def test_openmic_pickled_keys_need_consent(tmp_path):
    root = tmp_path / "openmic-2018"
    openmic_release(root, key_dtype=object)
    with pytest.raises(ValueError, match="allow_pickle"):
        prepare("openmic", root, tmp_path)
    assert len(prepare("openmic", root, tmp_path, allow_pickle=True).dataset["test"]) == 1


# ---- Music4All ---------------------------------------------------------------------------------------------------

def music4all_release(root):
    write(root / "id_information.csv", "id\tartist\tsong\talbum_name\n0009fFIM1eYThaPg\tCheryl\tRain, Rain\tThree\n"
                                       "0010xmHR6UICBOYT\tOasis\tSomeday\tDig Out\n00cTfqFKrrGGr1Oq\tEcho\tNone\tX\n")
    write(root / "id_genres.csv", "id\tgenres\n0009fFIM1eYThaPg\tpop,dance pop\n0010xmHR6UICBOYT\trock\n")
    write(root / "id_metadata.csv", "id\tspotify_id\tpopularity\trelease\tdanceability\tenergy\tkey\tmode\tvalence"
                                    "\ttempo\tduration_ms\n"
                                    "0009fFIM1eYThaPg\t4gLO\t26\t2014\t0.5\t0.7\t6\t0\t0.5\t120\t1\n"
                                    "0010xmHR6UICBOYT\t5sCj\t50\t2008\t0.4\t0.9\t-1\t1\t0.3\t90\t1\n")
    return [clip(root / "audios" / f"{i}.mp3") for i in ("0009fFIM1eYThaPg", "0010xmHR6UICBOYT")]


def test_music4all_tab_separated_tables(tmp_path):
    root = tmp_path / "music4all"
    first, second = music4all_release(root)
    result = prepare("music4all", root, tmp_path)
    assert rows(result.dataset, "train") == [
        {"audio": first, "id": "0009fFIM1eYThaPg", "key": "F# minor", "genres": ["pop", "dance pop"],
         "artist": "Cheryl", "song": "Rain, Rain", "source_id": "music4all:0009fFIM1eYThaPg", "duration": 30.0},
        {"audio": second, "id": "0010xmHR6UICBOYT", "key": None, "genres": ["rock"], "artist": "Oasis",
         "song": "Someday", "source_id": "music4all:0010xmHR6UICBOYT", "duration": 30.0}]
    assert result.counts["train"].unlabeled == 1
    assert result.missing == [("train", "audios/00cTfqFKrrGGr1Oq.mp3")]


# ---- GTZAN -------------------------------------------------------------------------------------------------------

def test_gtzan_genre_folders_and_the_unreadable_jazz_file(tmp_path):
    root = tmp_path / "gtzan" / "Data"
    blues = clip(root / "genres_original" / "blues" / "blues.00000.wav")
    jazz = root / "genres_original" / "jazz" / "jazz.00054.wav"
    write(jazz, "not a wav file")
    result = prepare("gtzan", tmp_path / "gtzan", tmp_path)
    assert rows(result.dataset, "train") == [
        {"audio": blues, "file": "blues.00000", "label": "blues", "source_id": "gtzan:blues.00000", "duration": 30.0},
        {"audio": str(jazz), "file": "jazz.00054", "label": "jazz", "source_id": "gtzan:jazz.00054",
         "duration": 30.0}]
    assert any("jazz.00054" in note for note in result.notes)
    checked = prepare_dataset("gtzan", tmp_path / "gtzan", tmp_path / "gtzan-checked", check_headers=True,
                              progress=False)
    assert [r["file"] for r in checked.dataset["train"]] == ["blues.00000"]
    assert checked.unreadable == [("train", "genres_original/jazz/jazz.00054.wav")] and not checked.notes


# ---- Clotho ------------------------------------------------------------------------------------------------------

CLOTHO_CAPTIONS = ("file_name,caption_1,caption_2,caption_3,caption_4,caption_5\n"
                   " Ambience Birds.wav,Birds chirp.,Birds call out.,\"Birds tweet, engine far away.\",Wild birds.,"
                   "Birds sing.\n"
                   "\"Rain, Thunder & Wind.wav\",Rain falls.,Thunder rolls.,Wind blows.,A storm.,Rain and thunder.\n"
                   "Gone clip.wav,a,b,c,d,e\n")


def test_clotho_captions_with_spaces_and_commas_and_latin1_metadata(tmp_path):
    root = tmp_path / "clotho"
    write(root / "clotho_captions_development.csv", CLOTHO_CAPTIONS)
    write(root / "clotho_metadata_development.csv",
          "file_name,keywords,sound_id,sound_link,start_end_samples,manufacturer,license\n"
          " Ambience Birds.wav,Ambience;Birds;night,327673,https://freesound.org/s/327673,\"[11162624, 11932169]\","
          "José,http://creativecommons.org/licenses/by-nc/3.0/\n", encoding="iso-8859-1")
    write(root / "clotho_captions_evaluation.csv", "file_name,caption_1,caption_2,caption_3,caption_4,caption_5\n"
                                                   "Radio Garble.wav,Static.,Radio.,Talk.,Noise.,Walkie-talkie.\n")
    birds = clip(root / "development" / " Ambience Birds.wav")
    rain = clip(root / "development" / "Rain, Thunder & Wind.wav")
    radio = clip(root / "evaluation" / "Radio Garble.wav")
    result = prepare("clotho", root, tmp_path)
    birds_captions = ["Birds chirp.", "Birds call out.", "Birds tweet, engine far away.", "Wild birds.", "Birds sing."]
    rain_captions = ["Rain falls.", "Thunder rolls.", "Wind blows.", "A storm.", "Rain and thunder."]
    assert rows(result.dataset, "train") == [
        {"audio": birds, "file_name": " Ambience Birds.wav", "caption": "Birds chirp.", "captions": birds_captions,
         **{f"caption_{i}": c for i, c in enumerate(birds_captions, 1)}, "keywords": ["Ambience", "Birds", "night"],
         "source_id": "freesound:327673", "duration": None},
        {"audio": rain, "file_name": "Rain, Thunder & Wind.wav", "caption": "Rain falls.", "captions": rain_captions,
         **{f"caption_{i}": c for i, c in enumerate(rain_captions, 1)}, "keywords": [], "source_id": None,
         "duration": None}]
    assert rows(result.dataset, "test")[0]["audio"] == radio and rows(result.dataset, "test")[0]["caption_5"] == \
        "Walkie-talkie."
    assert result.missing == [("train", "development/Gone clip.wav")]
    assert result.dataset["test"].info.description == "clotho: official split 'evaluation'"
    pairs = to_caption_pairs(load_from_disk(result.output)["train"])
    assert pairs.column_names == ["audio", "caption"] and pairs[1]["caption"] == "Rain falls."


def test_clotho_as_aac_datasets_lays_it_out(tmp_path):
    """aac-datasets' folders: CLOTHO_v2.1/clotho_csv_files/ and CLOTHO_v2.1/clotho_audio_files/<split>/."""
    root = tmp_path / "data" / "CLOTHO_v2.1"
    write(root / "clotho_csv_files" / "clotho_captions_validation.csv", CLOTHO_CAPTIONS)
    rain = clip(root / "clotho_audio_files" / "validation" / "Rain, Thunder & Wind.wav")
    result = prepare("clotho", tmp_path / "data", tmp_path)
    assert [r["audio"] for r in rows(result.dataset, "validation")] == [rain]
    assert result.counts["validation"].missing == 2


def test_prepared_examples_batch_through_the_collator(tmp_path):
    import tiny
    from data_mint import MintDataCollator

    root = tmp_path / "ESC-50-master"
    write(root / "meta" / "esc50.csv", "filename,fold,target,category,esc10,src_file,take\n"
                                       "1-1-A-0.wav,1,0,dog,True,1,A\n2-2-A-1.wav,2,1,rooster,False,2,A\n")
    for name, seconds in (("1-1-A-0.wav", 0.5), ("2-2-A-1.wav", 0.25)):
        clip(root / "audio" / name, seconds=seconds)
    examples = to_mint_examples(load_from_disk(prepare("esc50", root, tmp_path).output)["train"], "AudioSet")
    batch = MintDataCollator(tiny.processor(), stage=2)([examples[0], examples[1]])
    assert batch["input_values"].shape == (2, 8000) and batch["audio_attention_mask"].sum().item() == 12000
    assert batch["labels"].shape[0] == 2


def test_source_ids_feed_the_leakage_check(tmp_path):
    """A Clotho clip whose Freesound id is an FSD50K clip is found through `source_id`, not through its file name."""
    clotho = tmp_path / "clotho"
    write(clotho / "clotho_captions_evaluation.csv", CLOTHO_CAPTIONS.splitlines()[0] + "\nCar Horn.wav,a,b,c,d,e\n")
    write(clotho / "clotho_metadata_evaluation.csv", "file_name,keywords,sound_id,sound_link,start_end_samples,"
                                                     "manufacturer,license\nCar Horn.wav,car,64760,l,\"[0, 1]\",m,l\n")
    clip(clotho / "evaluation" / "Car Horn.wav")
    fsd = tmp_path / "fsd50k"
    write(fsd / "FSD50K.ground_truth" / "dev.csv", "fname,labels,mids,split\n64760,Car,/m/0k4j,train\n")
    write(fsd / "FSD50K.ground_truth" / "eval.csv", "fname,labels,mids\n")
    clip(fsd / "FSD50K.dev_audio" / "64760.wav", seconds=0.07)
    evaluation = prepare("clotho", clotho, tmp_path).dataset["test"]
    training = prepare("fsd50k", fsd, tmp_path).dataset["train"]
    assert leakage_report([training], evaluation)["num_overlapping"] == 0
    found = leakage_report([training], evaluation, id_column="source_id")
    assert found["num_overlapping"] == 1 and found["examples"][0]["shared"] == ["id:freesound:64760"]


# ---- ESC-50 ------------------------------------------------------------------------------------------------------

def test_esc50_meta_csv_and_folds(tmp_path):
    root = tmp_path / "ESC-50-master"
    write(root / "meta" / "esc50.csv", "filename,fold,target,category,esc10,src_file,take\n"
                                       "1-100032-A-0.wav,1,0,dog,True,100032,A\n"
                                       "5-9032-A-20.wav,5,20,crying_baby,False,9032,A\n"
                                       "2-1234-B-1.wav,2,1,rooster,True,1234,B\n")
    dog, baby = clip(root / "audio" / "1-100032-A-0.wav"), clip(root / "audio" / "5-9032-A-20.wav")
    result = prepare("esc50", tmp_path, tmp_path)
    assert rows(result.dataset, "train") == [
        {"audio": dog, "filename": "1-100032-A-0.wav", "label": "dog", "target": 0, "fold": 1, "esc10": True,
         "take": "A", "source_id": "freesound:100032", "duration": 5.0},
        {"audio": baby, "filename": "5-9032-A-20.wav", "label": "crying baby", "target": 20, "fold": 5,
         "esc10": False, "take": "A", "source_id": "freesound:9032", "duration": 5.0}]
    assert result.missing == [("train", "audio/2-1234-B-1.wav")]


# ---- the folder, the CLI, the guards -----------------------------------------------------------------------------

def test_saved_audio_column_holds_paths_and_casts_to_undecoded_audio(tmp_path):
    root = tmp_path / "ESC-50-master"
    write(root / "meta" / "esc50.csv", "filename,fold,target,category,esc10,src_file,take\n"
                                       "1-1-A-0.wav,1,0,dog,True,1,A\n")
    path = clip(root / "audio" / "1-1-A-0.wav", seconds=0.5)
    output = prepare("esc50", root, tmp_path).output
    saved = sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(output) for f in files)
    assert saved < os.path.getsize(path)  # the clip's bytes are not in the folder
    loaded = load_from_disk(output)["train"]
    assert loaded[0]["audio"] == {"bytes": None, "path": path}
    assert loaded.cast_column("audio", Audio(decode=False))[0]["audio"] == {"bytes": None, "path": path}


def test_cli_prepare_writes_the_folder_the_missing_list_and_the_summary(tmp_path):
    root = tmp_path / "esc50"
    write(root / "meta" / "esc50.csv", "filename,fold,target,category,esc10,src_file,take\n"
                                       "1-1-A-0.wav,1,0,dog,True,1,A\n3-3-A-0.wav,3,0,dog,True,3,A\n")
    clip(root / "audio" / "1-1-A-0.wav")
    command = [sys.executable, "-m", "prepare_mint", "prepare", "esc50", str(root), "--output", str(tmp_path / "out"),
               "--missing-list", str(tmp_path / "missing.tsv"), "--json", str(tmp_path / "counts.json"), "--quiet"]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "esc50 ->" in done.stdout and (tmp_path / "missing.tsv").read_text() == "train\taudio/3-3-A-0.wav\n"
    assert json.loads((tmp_path / "counts.json").read_text())["splits"]["train"] == {
        "rows": 1, "missing": 1, "unreadable": 0, "unlabeled": 0, "excluded": 0}
    assert len(load_from_disk(str(tmp_path / "out"))["train"]) == 1
    again = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert again.returncode != 0 and "--overwrite" in again.stderr
    assert subprocess.run(command + ["--overwrite"], cwd=REPO, capture_output=True, timeout=120).returncode == 0


def test_guards_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="Unknown dataset"):
        prepare_dataset("librispeech", tmp_path, tmp_path / "out")
    with pytest.raises(ValueError, match="not a folder"):
        prepare_dataset("esc50", tmp_path / "absent", tmp_path / "out")
    with pytest.raises(ValueError, match="options"):
        prepare_dataset("esc50", tmp_path, tmp_path / "out", fma_size="large")
    with pytest.raises(ValueError, match="esc50.csv|meta"):
        prepare_dataset("esc50", tmp_path, tmp_path / "out")
    (tmp_path / "keep").mkdir()
    write(tmp_path / "keep" / "notes.txt", "mine")
    with pytest.raises(ValueError, match="not empty"):
        prepare_dataset("esc50", tmp_path, tmp_path / "keep", overwrite=True)
    assert (tmp_path / "keep" / "notes.txt").read_text() == "mine"


def test_every_layout_is_documented_and_tested():
    tested = {"audioset", "vggsound", "audiocaps", "wavcaps", "fsd50k", "nsynth", "fma", "openmic", "music4all",
              "gtzan", "clotho", "esc50"}
    assert set(LAYOUTS) == tested and all(layout.layout for layout in LAYOUTS.values())
