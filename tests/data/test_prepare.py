"""mint data prepare: each release read from a fixture in its official layout, every column checked."""

import json
import os

import pytest
from datasets import Audio, load_from_disk

from mint.cli import main
from mint.data.collator import MintDataCollator
from mint.data.examples import to_caption_pairs, to_mint_examples
from mint.data.release_files import YouTubeClips
from mint.data.release_layouts import LAYOUTS
from mint.data.releases import prepare_dataset
from mint.evaluation.leakage import leakage_report
from tests.utils import tiny
from tests.utils.releases import (
    audioset_release,
    clip,
    fma_release,
    fsd50k_release,
    music4all_release,
    nsynth_release,
    openmic_release,
    vggsound_release,
    wavcaps_release,
    write,
)








def rows(dataset, split):
    """The split's rows with the audio column reduced to its path."""
    return [{**row, "audio": row["audio"]["path"]} for row in dataset[split]]


def prepare(name, root, tmp_path, **kwargs):
    return prepare_dataset(name, root, tmp_path / f"{name}-out", progress=False, **kwargs)


# ---- AudioSet ----------------------------------------------------------------------------------------------------





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


def test_cli_prepare_writes_the_folder_the_missing_list_and_the_summary(tmp_path, capsys):
    root = tmp_path / "esc50"
    write(root / "meta" / "esc50.csv", "filename,fold,target,category,esc10,src_file,take\n"
                                       "1-1-A-0.wav,1,0,dog,True,1,A\n3-3-A-0.wav,3,0,dog,True,3,A\n")
    clip(root / "audio" / "1-1-A-0.wav")
    command = ["data", "prepare", "esc50", str(root), "--output", str(tmp_path / "out"),
               "--missing-list", str(tmp_path / "missing.tsv"), "--json", str(tmp_path / "counts.json"), "--quiet"]
    assert main(command) == 0, capsys.readouterr().err
    assert "esc50 ->" in capsys.readouterr().out
    assert (tmp_path / "missing.tsv").read_text() == "train\taudio/3-3-A-0.wav\n"
    assert json.loads((tmp_path / "counts.json").read_text())["splits"]["train"] == {
        "rows": 1, "missing": 1, "unreadable": 0, "unlabeled": 0, "excluded": 0}
    assert len(load_from_disk(str(tmp_path / "out"))["train"]) == 1
    assert main(command) != 0 and "--overwrite" in capsys.readouterr().err
    assert main(command + ["--overwrite"]) == 0


def test_cli_layouts_lists_every_dataset(capsys):
    assert main(["data", "layouts"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == list(LAYOUTS)
    assert lines[-1].split(None, 1)[1] == LAYOUTS["esc50"].layout


def test_cli_prepare_names_an_unknown_dataset(tmp_path, capsys):
    assert main(["data", "prepare", "librispeech", str(tmp_path), "--output", str(tmp_path / "out")]) == 1
    assert "Unknown dataset 'librispeech'" in capsys.readouterr().err and not (tmp_path / "out").exists()


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
