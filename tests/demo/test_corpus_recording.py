"""The corpus's notes (released before the clip ends), its soundfonts and its recording chain (room, EQ, noise,
lossy compression), seeded."""

import os

import numpy as np
import pytest

from mint.demo import corpus
from mint.demo.corpus import SAMPLING_RATE, CorpusSettings, record, render_instruments, rms, room_impulse_responses


DRY = CorpusSettings(room_probability=0, eq_probability=0, noise_probability=0, compression_probability=0)
WET = CorpusSettings(room_probability=1, eq_probability=1, noise_probability=1, compression_probability=1)


@pytest.fixture(scope="module")
def rooms():
    return room_impulse_responses(seed=0, count=2)


def tone(seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLING_RATE)) / SAMPLING_RATE
    return 0.1 * np.sin(2 * np.pi * 440 * t) * np.exp(-3 * t)


def test_a_dry_chain_leaves_the_audio_as_it_is(rooms):
    audio = tone()
    assert np.array_equal(record(audio, np.random.default_rng(0), DRY, rooms), audio)


def test_the_full_chain_keeps_the_length_changes_the_sound_and_is_seeded(rooms):
    audio = tone()
    wet = record(audio, np.random.default_rng(1), WET, rooms)
    assert wet.shape == audio.shape and np.isfinite(wet).all()
    assert np.abs(wet - audio).max() > 1e-3
    assert np.array_equal(wet, record(audio, np.random.default_rng(1), WET, rooms))
    # The room keeps the sound ringing after the dry tone has decayed.
    tail = slice(int(0.8 * SAMPLING_RATE), None)
    assert rms(record(audio, np.random.default_rng(1), CorpusSettings(
        room_probability=1, eq_probability=0, noise_probability=0, compression_probability=0), rooms)[tail]) > 0


def test_room_responses_are_normalised_and_seeded(rooms):
    assert len(rooms) == 2 and all(np.abs(r).max() == pytest.approx(1.0) for r in rooms)
    assert np.array_equal(rooms[0], room_impulse_responses(seed=0, count=1)[0])


@pytest.mark.skipif(not os.path.isfile(corpus.SOUNDFONTS["TimGM6mb"][0]) and not os.environ.get("CI"),
                    reason="timgm6mb-soundfont not installed (install.sh installs it; CI runs this test)")
def test_a_note_is_released_before_the_clip_ends():
    import tinysoundfont

    synth = tinysoundfont.Synth(samplerate=SAMPLING_RATE)
    font = synth.sfload(corpus.soundfont_file("TimGM6mb"))
    note = corpus._render_note(synth, font, 0, 60, 100, on_seconds=0.4, seconds=1.6)  # piano
    assert len(note) == int(1.6 * SAMPLING_RATE)
    held, released = note[: int(0.4 * SAMPLING_RATE)], note[-int(0.3 * SAMPLING_RATE):]
    assert rms(released) < 0.1 * rms(held)


def test_unknown_and_missing_soundfonts_are_refused(monkeypatch):
    with pytest.raises(ValueError, match="Unknown soundfont 'Nope'; expected one of"):
        corpus.soundfont_file("Nope")
    monkeypatch.setitem(corpus.SOUNDFONTS, "Gone", ("/nonexistent/gone.sf2", "gone-soundfont"))
    with pytest.raises(FileNotFoundError, match="apt-get install gone-soundfont"):
        corpus.soundfont_file("Gone")
    with pytest.raises(ValueError, match="held-out soundfont 'FluidR3' is not among"):
        render_instruments(CorpusSettings(soundfonts=("TimGM6mb",), held_out_soundfont="FluidR3"), rooms=[])


def test_the_settings_name_the_cached_corpus():
    assert CorpusSettings().fingerprint() == CorpusSettings().fingerprint()
    assert CorpusSettings(room_probability=0).fingerprint() != CorpusSettings().fingerprint()
