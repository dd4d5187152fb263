# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""A built-in labelled and captioned audio corpus rendered from real sound sources that are available offline.

* Instrument notes: General MIDI soundfont programs rendered with `tinysoundfont` across instrument families, pitches
  and velocities, as NSynth was made, from several soundfonts (Debian's FluidR3, TimGM6mb and csound's GM bank; the
  MuseScore General soundfont is held out whole for the test split). Each note is released before the clip ends and
  rings out naturally, as a played note does, instead of holding its sustain loop.
* Speech: spoken digits from `espeak-ng` in several accents and voice variants.
* Synthetic events: noise, tones, sweeps and click trains at different rates (numpy).

The rendered notes and speech then go through a seeded recording chain (`record`): a room (an impulse response of a
simulated shoebox room, pyroomacoustics), an equaliser, background noise and lossy compression (pedalboard), each with
its own probability, so that the corpus is not heard in one dry studio.

Every clip gets the labels its recipe implies and a caption written from them. The test split holds out whole values
(a whole soundfont, unseen programs of the others, unseen voices, unseen event parameters), so it measures
generalisation, not memory.

    mint corpus --output mint-corpus [--seed 0] [--quiet]

Deterministic from the seed, cached (a finished corpus with the same settings is reused), written as a `datasets`
`DatasetDict` with an `Audio` column (wav bytes embedded).
"""

import hashlib
import io
import json
import os
import shutil
import subprocess
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass

import numpy as np
import soundfile
from datasets import Audio, Dataset, DatasetDict, load_from_disk
from tqdm.auto import tqdm

from mint.data.outputs import check_output_folder, read_json, replace_folder, write_json


SAMPLING_RATE = 16000
# Written with a finished corpus: its settings' fingerprint, the settings and the size of each split.
CORPUS_MARKER = "corpus_settings.json"
# Soundfont name -> (file, Debian package). The last one is held out whole for the test split. FluidR3Mono (Debian's
# `fluidr3mono-gm-soundfont`) is left out: it is FluidR3's samples in mono, not another sound.
SOUNDFONTS = {
    "FluidR3": ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "fluid-soundfont-gm"),
    "TimGM6mb": ("/usr/share/sounds/sf2/TimGM6mb.sf2", "timgm6mb-soundfont"),
    "csound GM bank": ("/usr/share/sounds/sf2/sf_GMbank.sf2", "csound-soundfont"),
    "MuseScore General": ("/usr/share/sounds/sf3/MuseScore_General_Lite.sf3", "musescore-general-soundfont-small"),
}
HELD_OUT_SOUNDFONT = "MuseScore General"

# General MIDI programs per instrument family; the last program of each family is held out for the test split (in every
# soundfont; the held-out soundfont's programs are all test clips).
INSTRUMENT_FAMILIES = {
    "piano": [0, 1, 2, 4, 5, 3],
    "organ": [16, 17, 19, 20, 18],
    "guitar": [24, 25, 26, 27, 29, 30, 28],
    "bass": [32, 33, 34, 36, 37, 38, 39, 35],
    "strings": [40, 41, 42, 43, 44, 45, 48, 49],
    "brass": [56, 57, 58, 59, 61, 60],
    "reed": [64, 65, 66, 67, 68, 69, 70, 71],
    "flute": [73, 72, 74, 75, 76, 77, 78, 79],
}
REGISTERS = {"low": [36, 40, 43, 45], "middle": [57, 60, 62, 64], "high": [76, 79, 81, 84]}
# Loudness -> (MIDI velocity, RMS level of the clip). Programs of a soundfont differ in gain by up to ~20 dB, so with
# the velocity alone a "loud" note of a quiet program is softer than a "soft" note of a loud one, and the label is not
# what one hears (with corpus v2 neither stage beat chance on it). The velocity picks the soundfont's timbre for the
# dynamic; the clip is then set to the label's level (the RMS over the clip, as integrated loudness is measured), 10 dB
# apart, +-2 dB. The levels leave room for notes whose peaks, with their release and a room, stand up to 30 dB above
# their RMS (26 dB above the loud level; at 20 dB, 6 % of the notes would clip and come out softer than their label).
LOUDNESS = {"softly": (40, 0.005), "moderately": (80, 0.0158), "loudly": (127, 0.05)}
LEVEL_JITTER_DB = 2.0
SILENCE_RMS = 1e-5
WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
ACCENTS = ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-us-nyc", "en-gb-x-gbclan",
           "en-gb-x-gbcwmd"]
VARIANTS = ["m1", "m3", "m5", "f1", "f3", "f5"]
# 10 of the 48 voices: with two speaking rates, 200 held-out clips, so that one clip is half a point of accuracy.
HELD_OUT_VOICES = {("en-gb-x-gbcwmd", "m3"), ("en-gb-x-gbcwmd", "f3"), ("en-029", "m5"), ("en-029", "f1"),
                   ("en-us-nyc", "m1"), ("en-us-nyc", "f5"), ("en-gb", "f5"), ("en-us", "m5"),
                   ("en-gb-scotland", "f1"), ("en-gb-x-rp", "m1")}
EVENTS = {
    "white noise": "white noise hisses",
    "a steady tone": "a steady tone hums",
    "a rising sweep": "a tone sweeps upward",
    "a falling sweep": "a tone sweeps downward",
    "slow clicks": "clicks repeat slowly",
    "fast clicks": "clicks repeat quickly",
    "a pulsing tone": "a tone pulses on and off",
    "rumbling noise": "a low noise rumbles",
}


@dataclass
class CorpusSettings:
    """
    What the corpus is rendered from; its fingerprint names a cached corpus. Clip lengths in seconds: a note sounds
    for `note_on_seconds` (drawn uniformly in the range) and rings out until `note_seconds`. Each training program of
    each soundfont plays `notes_per_program` of its (pitch, dynamic) pairs, drawn with the seed; a held-out program
    `held_out_program_notes`, and each program of the held-out soundfont `held_out_font_notes`. The recording chain
    applies a room, an equaliser, noise and lossy compression with the given probabilities (0 leaves the audio dry).
    """

    seed: int = 0
    note_seconds: float = 1.6
    note_on_seconds: tuple[float, float] = (0.3, 1.0)
    notes_per_program: int = 12
    held_out_program_notes: int = 6
    held_out_font_notes: int = 4
    soundfonts: tuple[str, ...] = tuple(SOUNDFONTS)
    held_out_soundfont: str = HELD_OUT_SOUNDFONT
    event_seconds: float = 1.4
    event_variations: int = 65
    speech_rates: tuple[int, ...] = (150, 190)
    room_probability: float = 0.6
    eq_probability: float = 0.7
    noise_probability: float = 0.5
    compression_probability: float = 0.3
    version: int = 5  # raised whenever the rendering changes, so that a corpus cached before is rendered again

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]


def _wav_bytes(audio: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, audio.astype(np.float32), SAMPLING_RATE, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def _normalise(audio: np.ndarray, peak: float) -> np.ndarray:
    return audio / max(np.abs(audio).max(), 1e-6) * peak


def rms(audio: np.ndarray) -> float:
    return float(np.sqrt(np.mean(audio**2)))


def _set_level(audio: np.ndarray, level: float) -> np.ndarray:
    """Scales to the RMS `level`, or lower where that would clip (a peak above 0.99)."""
    return audio * min(level / rms(audio), 0.99 / np.abs(audio).max())


def _row(audio, caption, split, source, **labels) -> dict:
    row = {"audio": None, "caption": caption, "split": split, "source": source, "instrument_family": None,
           "register": None, "loudness": None, "word": None, "event": None, "voice": None, "program": None,
           "soundfont": None}
    row.update(labels)
    row["audio"] = {"bytes": _wav_bytes(audio), "path": None}
    return row


def room_impulse_responses(seed: int, count: int = 16) -> list[np.ndarray]:
    """
    `count` impulse responses `(samples,)` of simulated shoebox rooms (pyroomacoustics' image source method): rooms of
    3x3x2.4 m to 10x8x4 m with reverberation times of 0.2-0.8 s, source and microphone placed at random, seeded.
    """
    import pyroomacoustics

    rng = np.random.default_rng([seed, 1])
    responses = []
    for _ in range(count):
        size = rng.uniform([3, 3, 2.4], [10, 8, 4])
        absorption, max_order = pyroomacoustics.inverse_sabine(rng.uniform(0.2, 0.8), size)
        room = pyroomacoustics.ShoeBox(size, fs=SAMPLING_RATE, materials=pyroomacoustics.Material(absorption),
                                       max_order=min(max_order, 40))
        room.add_source(rng.uniform(0.5, size - 0.5))
        room.add_microphone(rng.uniform(0.5, size - 0.5))
        room.compute_rir()
        response = np.asarray(room.rir[0][0], dtype=np.float64)
        responses.append(response / np.abs(response).max())
    return responses


def record(audio: np.ndarray, rng: np.random.Generator, settings: CorpusSettings,
           rooms: list[np.ndarray]) -> np.ndarray:
    """
    A clip `(samples,)` as a microphone in the world might have taken it, each step drawn with `rng` and its
    probability in `settings`: a room (convolution with one of `rooms`), an equaliser (low and high shelves and a peak,
    +-6 dB), background noise (white or brown, 20-45 dB below the clip) and MP3 compression (pedalboard's LAME, VBR
    quality 2-9). The length is kept; the level is set afterwards by the caller.
    """
    from pedalboard import HighShelfFilter, LowShelfFilter, MP3Compressor, PeakFilter, Pedalboard
    from scipy.signal import fftconvolve

    length = len(audio)
    if rng.random() < settings.room_probability:
        audio = fftconvolve(audio, rooms[rng.integers(len(rooms))])[:length]
    if rng.random() < settings.eq_probability:
        gains = rng.uniform(-6, 6, size=3)
        board = Pedalboard([LowShelfFilter(cutoff_frequency_hz=float(rng.uniform(100, 400)), gain_db=gains[0]),
                            HighShelfFilter(cutoff_frequency_hz=float(rng.uniform(2000, 6000)), gain_db=gains[1]),
                            PeakFilter(cutoff_frequency_hz=float(rng.uniform(300, 3000)), gain_db=gains[2], q=1.0)])
        audio = board(audio.astype(np.float32), SAMPLING_RATE).astype(np.float64)
    if rng.random() < settings.noise_probability:
        noise = rng.standard_normal(length)
        if rng.random() < 0.5:  # brown noise: a low rumble rather than a hiss
            noise = np.cumsum(noise)
            noise -= np.convolve(noise, np.ones(401) / 401, mode="same")
        audio = audio + noise / max(rms(noise), 1e-9) * rms(audio) * 10 ** (-rng.uniform(20, 45) / 20)
    if rng.random() < settings.compression_probability:
        peak = max(np.abs(audio).max(), 1e-9)
        board = Pedalboard([MP3Compressor(vbr_quality=float(rng.uniform(2, 9)))])
        audio = board((audio / peak * 0.5).astype(np.float32), SAMPLING_RATE).astype(np.float64)[:length] * peak / 0.5
    return audio


def soundfont_file(name: str) -> str:
    """The file of the soundfont `name` (a key of `SOUNDFONTS`), refused with the Debian package to install."""
    if name not in SOUNDFONTS:
        raise ValueError(f"Unknown soundfont {name!r}; expected one of {list(SOUNDFONTS)}.")
    path, package = SOUNDFONTS[name]
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Soundfont {name!r} ({path}) is missing: apt-get install {package}.")
    return path


def _render_note(synth, font, program: int, pitch: int, velocity: int, on_seconds: float, seconds: float):
    """One note `(samples,)` in mono: held for `on_seconds`, then released and left to ring until `seconds`."""
    synth.program_select(0, font, 0, program)
    synth.noteon(0, pitch, velocity)
    on = np.frombuffer(synth.generate(int(on_seconds * SAMPLING_RATE)), np.float32)
    synth.noteoff(0, pitch)
    off = np.frombuffer(synth.generate(int(seconds * SAMPLING_RATE) - len(on) // 2), np.float32)
    synth.notes_off()
    synth.generate(SAMPLING_RATE // 4)  # let the voice die before the next note
    return np.concatenate([on, off]).reshape(-1, 2).mean(axis=1).astype(np.float64)


def render_instruments(settings: CorpusSettings, rooms: list[np.ndarray] | None = None) -> list[dict]:
    """
    Notes of every family's programs in every soundfont, each program playing `notes_per_program` (pitch, dynamic)
    pairs drawn from the registers' pitches and the three dynamics, through the recording chain, set to their
    dynamic's level. Held-out programs and the whole held-out soundfont go to the test split.
    """
    import tinysoundfont

    rooms = rooms if rooms is not None else room_impulse_responses(settings.seed)
    if settings.held_out_soundfont not in settings.soundfonts:
        raise ValueError(f"The held-out soundfont {settings.held_out_soundfont!r} is not among the corpus's "
                         f"soundfonts {list(settings.soundfonts)}.")
    notes = [(register, pitch, loudness) for register, pitches in REGISTERS.items() for pitch in pitches
             for loudness in LOUDNESS]
    rows = []
    for font_index, name in enumerate(settings.soundfonts):
        synth = tinysoundfont.Synth(samplerate=SAMPLING_RATE)
        font = synth.sfload(soundfont_file(name))
        for family, programs in INSTRUMENT_FAMILIES.items():
            for index, program in enumerate(programs):
                rng = np.random.default_rng([settings.seed, font_index, program])  # one program's draws, its own
                if name == settings.held_out_soundfont:
                    test, count = True, settings.held_out_font_notes
                elif index == len(programs) - 1:
                    test, count = True, settings.held_out_program_notes
                else:
                    test, count = False, settings.notes_per_program
                for choice in rng.permutation(len(notes))[:count]:
                    register, pitch, loudness = notes[choice]
                    velocity, level = LOUDNESS[loudness]
                    audio = _render_note(synth, font, program, pitch, velocity,
                                         rng.uniform(*settings.note_on_seconds), settings.note_seconds)
                    if rms(audio) < SILENCE_RMS:
                        continue  # the soundfont has no sample for this program at this pitch
                    audio = record(audio, rng, settings, rooms)
                    audio = _set_level(audio, level * 10 ** (rng.uniform(-1, 1) * LEVEL_JITTER_DB / 20))
                    article = "an" if family[0] in "aeiou" else "a"
                    caption = f"{article} {family} plays a {register} note {loudness}"
                    rows.append(_row(audio, caption, "test" if test else "train", "instrument",
                                     instrument_family=family, register=register, loudness=loudness, program=program,
                                     soundfont=name))
    return rows


def _speak(job) -> np.ndarray:
    word, accent, variant, rate = job
    with tempfile.NamedTemporaryFile(suffix=".wav") as wav:
        subprocess.run(["espeak-ng", "-v", f"{accent}+{variant}", "-s", str(rate), "-w", wav.name, word],
                       check=True, capture_output=True)
        audio, rate_in = soundfile.read(wav.name, dtype="float64")
    if rate_in != SAMPLING_RATE:
        import librosa

        audio = librosa.resample(audio, orig_sr=rate_in, target_sr=SAMPLING_RATE)
    return audio


def render_speech(settings: CorpusSettings, workers: int = 2, rooms: list[np.ndarray] | None = None) -> list[dict]:
    """
    Spoken digits in 8 accents x 6 voice variants x speaking rates, through the recording chain; 10 voices are held
    out for the test split.
    """
    if shutil.which("espeak-ng") is None:
        raise FileNotFoundError("espeak-ng is missing: apt-get install espeak-ng.")
    rooms = rooms if rooms is not None else room_impulse_responses(settings.seed)
    jobs = [(word, accent, variant, rate) for word in WORDS for accent in ACCENTS for variant in VARIANTS
            for rate in settings.speech_rates]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        spoken = list(pool.map(_speak, jobs, chunksize=16))
    rng = np.random.default_rng([settings.seed, 2])
    rows = []
    for (word, accent, variant, _), audio in zip(jobs, spoken):
        audio = _normalise(record(audio, rng, settings, rooms), 0.6)
        gender = "woman" if variant.startswith("f") else "man"
        split = "test" if (accent, variant) in HELD_OUT_VOICES else "train"
        rows.append(_row(audio, f"a {gender} says the word {word}", split, "speech", word=word,
                         voice=f"{accent}+{variant}"))
    return rows


def _event(name: str, rng: np.random.Generator, seconds: float, variation: float) -> np.ndarray:
    n = int(seconds * SAMPLING_RATE)
    t = np.arange(n) / SAMPLING_RATE
    base = 200 * 2 ** (variation * 3)  # 200 Hz .. 1.6 kHz across the variations
    if name == "white noise":
        audio = rng.standard_normal(n)
    elif name == "rumbling noise":
        audio = np.convolve(rng.standard_normal(n), np.ones(64) / 64, mode="same")
    elif name == "a steady tone":
        audio = np.sin(2 * np.pi * base * t)
    elif name in ("a rising sweep", "a falling sweep"):
        start, end = (base, base * 4) if name == "a rising sweep" else (base * 4, base)
        frequency = start * (end / start) ** (t / seconds)
        audio = np.sin(2 * np.pi * np.cumsum(frequency) / SAMPLING_RATE)
    elif name in ("slow clicks", "fast clicks"):
        rate = (2 + 3 * variation) if name == "slow clicks" else (12 + 12 * variation)
        audio = np.zeros(n)
        period = int(SAMPLING_RATE / rate)
        click = np.hanning(80)[40:]
        for start in range(0, n - len(click), period):
            audio[start : start + len(click)] = click * rng.choice([-1, 1])
    else:  # a pulsing tone
        audio = np.sin(2 * np.pi * base * t) * (np.sin(2 * np.pi * (3 + 2 * variation) * t) > 0)
    return _normalise(audio, 0.5)


def render_events(settings: CorpusSettings) -> list[dict]:
    """Synthetic events; two parameter values (frequency, click rate) in five are held out for the test split."""
    rng = np.random.default_rng(settings.seed)
    rows = []
    for name, caption in EVENTS.items():
        for index in range(settings.event_variations):
            variation = index / max(settings.event_variations - 1, 1)
            split = "test" if index % 5 in (1, 3) else "train"
            rows.append(_row(_event(name, rng, settings.event_seconds, variation), caption, split, "event",
                             event=name))
    return rows


def build_corpus(output_dir: str | os.PathLike, settings: CorpusSettings | None = None, progress: bool = True,
                 workers: int = 2, overwrite: bool = False) -> DatasetDict:
    """
    Renders the corpus into `output_dir`, or reuses the finished corpus with the same settings there. The corpus is
    written beside `output_dir` and moved there once complete, with its `CORPUS_MARKER` (so an interrupted build is
    never reused); a corpus of other settings is replaced. A folder holding anything else is refused with a
    `ValueError`, or, where it holds a `datasets` folder, replaced with `overwrite` (`--overwrite`).
    """
    settings = settings or CorpusSettings()
    output_dir = os.fspath(output_dir)
    found = read_json(os.path.join(output_dir, CORPUS_MARKER))
    if isinstance(found, dict) and found.get("fingerprint") == settings.fingerprint():
        return load_from_disk(output_dir)
    if not isinstance(found, dict) or "fingerprint" not in found:  # not a corpus this function wrote
        check_output_folder(output_dir, overwrite, "the corpus")
    rooms = room_impulse_responses(settings.seed)
    steps = [lambda: render_instruments(settings, rooms), lambda: render_speech(settings, workers, rooms),
             lambda: render_events(settings)]
    rows = []
    for render in tqdm(steps, desc="Rendering corpus", disable=not progress):
        rows.extend(render())
    columns = {key: [row[key] for row in rows] for key in rows[0]}
    dataset = Dataset.from_dict(columns).cast_column("audio", Audio(sampling_rate=SAMPLING_RATE, decode=False))
    corpus = DatasetDict({split: dataset.filter(lambda s, wanted=split: s == wanted, input_columns="split")
                          .shuffle(seed=settings.seed) for split in ("train", "test")})

    def write(folder: str) -> None:
        corpus.save_to_disk(folder)
        write_json(os.path.join(folder, CORPUS_MARKER), {"fingerprint": settings.fingerprint(),
                                                         "settings": asdict(settings),
                                                         "sizes": {k: len(v) for k, v in corpus.items()}}, indent=2)

    replace_folder(output_dir, write)
    return corpus
