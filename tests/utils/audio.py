"""Distinct synthetic clips and captions the tests share."""

import numpy as np


CAPTIONS = ["a dog barks loudly", "a cat meows", "a piano plays a low note softly", "rain on a roof"]


def clips(lengths=(16000, 12000, 9000, 14000), seed=0):
    """Distinct sounds (tones, noise, a click train), so that a tiny random encoder can tell them apart."""
    rng = np.random.default_rng(seed)
    sounds = []
    for index, n in enumerate(lengths):
        t = np.arange(n) / 16000
        kind = (index + seed) % 4
        if kind == 0:
            sound = np.sin(2 * np.pi * 220 * t)
        elif kind == 1:
            sound = np.sin(2 * np.pi * 3000 * t) * np.linspace(0, 1, n)
        elif kind == 2:
            sound = rng.standard_normal(n)
        else:
            sound = (np.arange(n) % 800 < 20).astype(float)
        sounds.append((0.3 * sound + 0.01 * rng.standard_normal(n)).astype(np.float32))
    return sounds



def write_wavs(folder, lengths=(16000, 12000, 9000, 14000, 10000), seed=0) -> list[str]:
    """The distinct `clips` written as 16 kHz WAV files `clip<i>.wav` in `folder`; their paths."""
    import soundfile

    paths = []
    for index, clip in enumerate(clips(lengths, seed)):
        paths.append(str(folder / f"clip{index}.wav"))
        soundfile.write(paths[-1], clip, 16000)
    return paths
