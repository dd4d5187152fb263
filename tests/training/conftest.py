import pytest

from tests.utils.training import make_audio_dataset, make_mint_folder


@pytest.fixture(scope="module")
def audio_dataset(tmp_path_factory):
    """Six captioned, labelled clips in wav files (see `make_audio_dataset`)."""
    return make_audio_dataset(tmp_path_factory.mktemp("audio"))


@pytest.fixture(scope="module")
def mint_folder(tmp_path_factory):
    """A tiny stage-1 MINT folder with its processor."""
    return make_mint_folder(tmp_path_factory.mktemp("mint"))
