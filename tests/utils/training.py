"""A small captioned audio dataset, a tiny stage-1 folder, recipes and Trainer callbacks the tests share."""

import soundfile
import torch
from datasets import Audio, ClassLabel, Dataset
from transformers import TrainerCallback

from mint.training.recipe import MintRecipe
from modeling_mint import MintForPreTraining
from tests.utils import tiny
from tests.utils.audio import clips


CAPTIONS = ["a dog barks", "a cat meows", "a piano plays a low note", "rain on a roof", "a flute plays softly",
            "a drum hits loudly"]


def make_audio_dataset(folder):
    """Six clips of distinct sounds in `folder`, with captions, class labels and instrument lists."""
    paths = []
    for i, clip in enumerate(clips((16000, 12000, 9000, 14000, 10000, 11000))):
        path = folder / f"clip{i}.wav"
        soundfile.write(path, clip, 16000)
        paths.append(str(path))
    data = Dataset.from_dict({"audio": paths, "caption": CAPTIONS, "label": [0, 1, 2, 3, 4, 5],
                              "instruments": [["piano"], ["piano", "violin"], ["flute"], ["drum"], ["flute"],
                                              ["drum"]]})
    data = data.cast_column("audio", Audio()).cast_column(
        "label", ClassLabel(names=["dog", "cat", "piano", "rain", "flute", "drum"]))
    return data


def make_mint_folder(folder):
    """A tiny MINT stage-1 checkpoint with its processor, as a user would have after assembling one."""
    config = tiny.mint_config(qformer_config=tiny.qformer_config(hidden_dropout_prob=0.0,
                                                                 attention_probs_dropout_prob=0.0))
    torch.manual_seed(0)
    MintForPreTraining(config).save_pretrained(folder)
    tiny.processor().save_pretrained(folder)
    return str(folder)


def recipe(folder, output, stage=1, **kwargs):
    values = dict(stage=stage, model=folder, output_dir=str(output), batch_size=2, warmup_steps=0,
                  learning_rate=1e-3, max_steps=4, logging_steps=1, save_steps=100, dataloader_num_workers=0,
                  resume=False, seed=0)
    values.update(kwargs)
    return MintRecipe(**values)


class LossRecorder(TrainerCallback):
    def __init__(self):
        self.logs = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.logs.append({"step": state.global_step, **logs})


class CrashAt(TrainerCallback):
    def __init__(self, step):
        self.step = step

    def on_step_begin(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise KeyboardInterrupt("simulated kill")

