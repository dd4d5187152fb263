import os

import numpy as np
import pytest
import soundfile
import torch

from mint.hub import save_for_hub
from modeling_mint import MintForPreTraining
from tests.utils import tiny
from tests.utils.audio import clips


# Both models are saved as Hub folders (`auto_map` and the model files beside the weights), as the app meets them.
@pytest.fixture(scope="package")
def stage2_folder(tmp_path_factory):
    """A tiny stage-2 model that writes a different caption for each test clip (with `tiny.WORDS`)."""
    return save_for_hub(tiny.captioning_model(), tiny.processor(), str(tmp_path_factory.mktemp("stage2")))


@pytest.fixture(scope="package")
def stage1_folder(tmp_path_factory):
    """A tiny stage-1 model with embedding and matching heads."""
    torch.manual_seed(1)
    model = tiny.amplify_audio(MintForPreTraining(tiny.mint_config()))
    return save_for_hub(model, tiny.processor(), str(tmp_path_factory.mktemp("stage1")))


@pytest.fixture(scope="package")
def clip_folder(tmp_path_factory):
    """The four test clips as files: two WAV, one FLAC, one OGG (in a sub-folder), and a text file that is no clip."""
    folder = tmp_path_factory.mktemp("clips")
    os.makedirs(folder / "more")
    names = ["tone.wav", "chirp.flac", "noise.wav", os.path.join("more", "clicks.ogg")]
    for name, clip in zip(names, clips()):
        soundfile.write(folder / name, clip, 16000)
    (folder / "notes.txt").write_text("not audio")
    return str(folder)


@pytest.fixture(scope="package")
def bad_clips(tmp_path_factory):
    """Files the app must refuse: silent, below one step of 16-bit audio (1e-6), NaN, too short, not audio."""
    folder = tmp_path_factory.mktemp("bad")
    soundfile.write(folder / "silent.wav", np.zeros(16000, np.float32), 16000)
    soundfile.write(folder / "quiet.wav", np.full(16000, 1e-6, np.float32), 16000, subtype="FLOAT")
    nan = np.full(16000, 0.1, np.float32)
    nan[100] = np.nan
    soundfile.write(folder / "nan.wav", nan, 16000, subtype="FLOAT")
    soundfile.write(folder / "short.wav", np.full(100, 0.1, np.float32), 16000)
    (folder / "text.wav").write_text("not audio")
    return str(folder)
