"""The feature cache keeps a dataset's other columns, a group column among them, row for row; a stage-1 recipe that
trains from the cache with `group_column` hands each batch's group ids to the model."""

import pytest
import soundfile
import torch
from datasets import Audio, Dataset
from transformers import TrainerCallback

from mint.data.cache import cache_audio_features
from mint.data.collator import group_id
from mint.training.trainer import train
from modeling_mint import MintForPreTraining
from tests.utils import tiny
from tests.utils.audio import CAPTIONS, clips
from tests.utils.training import make_mint_folder, recipe


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
