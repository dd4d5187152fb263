# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""The split of a local dataset folder that a recipe entry or command reads: a named split of a folder that holds
several, the whole dataset of a folder saved as one `Dataset`."""

import os

from datasets import Dataset

from mint.data.examples import load_local_dataset


def split_to_read(path: str | os.PathLike, split: str | None, option: str = "split",
                  default: str = "train") -> str | None:
    """
    The split that [`load_split`] reads from the folder `path`: `split` (`default` where None) of a folder with
    splits, None for a folder saved as one `Dataset`, which has no splits to choose from: there an explicit `split`
    (named `option` in the message, an argument or command-line option) is refused rather than ignored.
    """
    path = os.fspath(path)
    unsplit = os.path.isfile(os.path.join(path, "state.json")) and not os.path.isfile(
        os.path.join(path, "dataset_dict.json"))
    if unsplit and split is not None:
        raise ValueError(f"{option} {split!r}: the dataset {path!r} has no splits (one Dataset saved with "
                         f"save_to_disk), so there is no split to choose; leave {option} out.")
    return None if unsplit else default if split is None else split


def load_split(path: str | os.PathLike, split: str | None, option: str = "split", default: str = "train") -> Dataset:
    """The dataset of the folder `path` that [`split_to_read`] names: its split, or the whole unsplit dataset."""
    chosen = split_to_read(path, split, option, default)
    return load_local_dataset(path) if chosen is None else load_local_dataset(path, chosen)


__all__ = ["load_split", "split_to_read"]
