"""The feature cache keeps a dataset's other columns, a group column among them, row for row; a stage-1 recipe that
trains from the cache with `group_column` hands each batch's group ids to the model."""

import pytest
import soundfile
import torch
from datasets import Audio, Dataset, List, Value
from transformers import TrainerCallback

from mint.data.cache import cache_audio_features
from mint.data.collator import group_id
from mint.training.collator import SOURCE_COLUMN
from mint.training.trainer import train
from modeling_mint import MintForPreTraining
from tests.utils import tiny
from tests.utils.audio import CAPTIONS, clips
from tests.utils.training import make_mint_folder, recipe


FEATURES = "audio_encoder_features"
FAMILIES = ["dog", "cat", "dog", "rain", "cat", "dog"]


class GroupIdsRecorder(TrainerCallback):
    """Records the `group_ids` each forward of the model receives."""

    def __init__(self):
        self.group_ids = []

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        model.register_forward_pre_hook(lambda _, args_, kwargs_: self.group_ids.append(kwargs_.get("group_ids")),
                                        with_kwargs=True)


@pytest.mark.slow
def test_the_cache_keeps_group_columns_and_a_recipe_trains_on_them(tmp_path):
    paths = []
    for index, clip in enumerate(clips((8000, 6000, 7000, 9000, 6500, 7500))):
        paths.append(str(tmp_path / f"clip{index}.wav"))
        soundfile.write(paths[-1], clip, 16000)
    data = Dataset.from_dict({"audio": paths, "caption": [CAPTIONS[i % 4] for i in range(6)], "family": FAMILIES,
                              "take": [10, 11, 10, 12, 13, 10]}).cast_column("audio", Audio(decode=False))
    torch.manual_seed(0)
    cache = cache_audio_features(MintForPreTraining(tiny.mint_config()).eval(), tiny.processor(), data,
                                 tmp_path / "cache", num_shards=2, progress=False)
    assert list(cache["family"]) == FAMILIES and list(cache["take"]) == [10, 11, 10, 12, 13, 10]

    recorder = GroupIdsRecorder()
    folder = make_mint_folder(tmp_path / "mint")
    run = recipe(folder, tmp_path / "run", max_steps=3, batch_size=2, group_column="family",
                 datasets=[{"path": str(tmp_path / "cache")}])
    trainer = train(run, callbacks=[recorder])
    assert trainer.state.global_step == 3
    seen = torch.cat(recorder.group_ids).tolist()
    assert len(seen) == 6 and sorted(seen) == sorted(group_id(family) for family in FAMILIES)


def _cache(tmp_path, name, dtype="float32", nested=False):
    """A feature cache of four clips in `dtype`; with `nested`, in the nested-list layout of an earlier version."""
    folder = tmp_path / "clips"
    folder.mkdir(exist_ok=True)
    paths = []
    for index, clip in enumerate(clips((8000, 6000, 7000, 9000))):
        paths.append(str(folder / f"clip{index}.wav"))
        soundfile.write(paths[-1], clip, 16000)
    data = Dataset.from_dict({"audio": paths, "caption": CAPTIONS[:4]}).cast_column("audio", Audio(decode=False))
    torch.manual_seed(0)
    cache = cache_audio_features(MintForPreTraining(tiny.mint_config()).eval(), tiny.processor(), data,
                                 tmp_path / name, dtype=dtype, progress=False)
    if nested:
        cache.with_format(None).cast_column(FEATURES, List(List(Value(dtype)))).save_to_disk(tmp_path / f"{name}-old")
        return str(tmp_path / f"{name}-old")
    return str(tmp_path / name)


@pytest.mark.parametrize("other, words", [
    (dict(nested=True), ["different types", "dataset 1", "List(List(", "dataset 2", "Array2D", "earlier version"]),
    (dict(dtype="float16"), ["different types", "float16", "float32", "--dtype"]),
    (dict(), None),
], ids=["nested lists beside Array2D", "float16 beside float32", "one type"])
def test_a_recipe_mixes_feature_caches_of_one_type_only(other, words, tmp_path):
    from mint.training.train_data import build_train_dataset

    caches = [_cache(tmp_path, "a", **other), _cache(tmp_path, "b")]
    run = recipe(make_mint_folder(tmp_path / "mint"), tmp_path / "run", datasets=[{"path": c} for c in caches])
    if words is None:
        assert {int(source) for source in build_train_dataset(run)[SOURCE_COLUMN]} == {0, 1}
        return
    with pytest.raises(ValueError) as error:
        build_train_dataset(run)
    assert all(word in str(error.value) for word in words), str(error.value)
