"""Fixture releases of the paper's datasets, each written in its official layout."""

import csv
import io
import json
import os

import numpy as np
import pandas as pd
import soundfile


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


def vggsound_release(root):
    write(root / "vggsound.csv", '---g-f_I2yQ,1,people marching,test\n'
                                 '--0PQM4-hqg,30,"male speech, man speaking",train\n'
                                 '--56QUhyDQM,185,playing tennis,train\n')
    marching = clip(root / "video" / "---g-f_I2yQ_000001.mp4")
    speech = clip(root / "audio" / "--0PQM4-hqg_000030.wav")
    return marching, speech


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


def music4all_release(root):
    write(root / "id_information.csv", "id\tartist\tsong\talbum_name\n0009fFIM1eYThaPg\tCheryl\tRain, Rain\tThree\n"
                                       "0010xmHR6UICBOYT\tOasis\tSomeday\tDig Out\n00cTfqFKrrGGr1Oq\tEcho\tNone\tX\n")
    write(root / "id_genres.csv", "id\tgenres\n0009fFIM1eYThaPg\tpop,dance pop\n0010xmHR6UICBOYT\trock\n")
    write(root / "id_metadata.csv", "id\tspotify_id\tpopularity\trelease\tdanceability\tenergy\tkey\tmode\tvalence"
                                    "\ttempo\tduration_ms\n"
                                    "0009fFIM1eYThaPg\t4gLO\t26\t2014\t0.5\t0.7\t6\t0\t0.5\t120\t1\n"
                                    "0010xmHR6UICBOYT\t5sCj\t50\t2008\t0.4\t0.9\t-1\t1\t0.3\t90\t1\n")
    return [clip(root / "audios" / f"{i}.mp3") for i in ("0009fFIM1eYThaPg", "0010xmHR6UICBOYT")]


def nsynth_note(note_str, family, source, pitch, velocity, qualities):
    return {"note_str": note_str, "instrument_family_str": family, "instrument_source_str": source,
            "instrument_str": note_str.rsplit("-", 2)[0], "pitch": pitch, "velocity": velocity,
            "qualities_str": qualities, "sample_rate": 16000, "instrument_family": 0, "instrument_source": 0,
            "qualities": [0] * 10, "note": 1, "instrument": 2}




ESC50_HEADER = ["filename", "fold", "target", "category", "esc10", "src_file", "take"]


def esc50_text(categories=("dog", "crying_baby")):
    """ESC-50's meta/esc50.csv: one row per category, clip `<i>-<i>-A-<i>.wav` in fold 1."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(ESC50_HEADER)
    writer.writerows([f"{i}-{i}-A-{i}.wav", 1, i, category, "True", i, "A"] for i, category in enumerate(categories))
    return out.getvalue()


def esc50_release(root, text=None, encoding="utf-8"):
    """ESC-50's meta/esc50.csv (`text`, default `esc50_text()`, written in `encoding`) and the clips it lists."""
    text = esc50_text() if text is None else text
    write(root / "meta" / "esc50.csv", text, encoding=encoding)
    names = [row[0] for row in csv.reader(io.StringIO(text, newline=""))][1:]
    return [clip(root / "audio" / name) for name in names if name.endswith(".wav") and "/" not in name]
