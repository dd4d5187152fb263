"""`cache_audio_features` refuses bad arguments by name before it encodes or writes anything."""

import os

import pytest
import soundfile
from datasets import Audio, Dataset, DatasetDict

from mint.data.cache import cache_audio_features
from modeling_mint import MintForPreTraining
from tests.utils import tiny
from tests.utils.audio import clips


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clips")
    paths = []
    for index, clip in enumerate(clips((16000, 12000))):
        paths.append(str(folder / f"clip {index}.wav"))
        soundfile.write(paths[-1], clip, 16000)
    return Dataset.from_dict({"audio": paths}).cast_column("audio", Audio(decode=False))


def _trainable_encoder(model):
    model.audio_model.encoder.layers[0].requires_grad_(True)
    return model


@pytest.mark.parametrize("change, kwargs, error, words", [
    (None, {"batch_size": 0}, ValueError, ["batch_size must be a positive integer", "got 0"]),
    (None, {"batch_size": -1}, ValueError, ["batch_size", "got -1"]),
    (None, {"batch_size": 2.0}, ValueError, ["batch_size", "got 2.0"]),
    (None, {"batch_size": True}, ValueError, ["batch_size", "got True"]),
    (None, {"dtype": "int8"}, ValueError, ["dtype must be one of ('float16', 'float32')", "got 'int8'"]),
    (None, {"dtype": "bfloat16"}, ValueError, ["dtype must be one of", "got 'bfloat16'"]),
    (_trainable_encoder, {}, ValueError, ["frozen audio encoder", "parameters require grad",
                                          "'encoder.layers.0.", "requires_grad_(False)"]),
    ("dict", {}, TypeError, ["datasets.Dataset", "DatasetDict", "pick one split"]),
    ("list", {}, TypeError, ["datasets.Dataset", "got list"]),
])
def test_bad_arguments_are_refused_before_anything_is_written(dataset, tmp_path, change, kwargs, error, words):
    model = MintForPreTraining(tiny.mint_config())
    data = dataset
    if change == "dict":
        data = DatasetDict({"train": dataset})
    elif change == "list":
        data = list(dataset)
    elif change is not None:
        model = change(model)
    output = tmp_path / "cache"
    output.mkdir()
    (output / "notes.txt").write_text("kept")  # a writer is tested against a folder that already holds something
    with pytest.raises(error) as caught:
        cache_audio_features(model, tiny.processor(), data, output, progress=False, **kwargs)
    assert all(word in str(caught.value) for word in words), caught.value
    assert os.listdir(output) == ["notes.txt"] and (output / "notes.txt").read_text() == "kept"
