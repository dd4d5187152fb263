"""The encoder probe over layer combinations: the combinations, their features, the grouped validation split and the
bound chosen on it, on hand-made hidden states."""

import numpy as np
import pytest
import torch
from datasets import Dataset, DatasetDict

from mint.demo import probe
from mint.demo.probe import combined_features, layer_combinations, probe_bounds, validation_rows
from mint.demo.settings import TASKS


def test_layer_combinations():
    assert layer_combinations(5) == {
        "hidden state 0": ((0,), "concatenated"), "hidden state 1": ((1,), "concatenated"),
        "hidden state 2": ((2,), "concatenated"), "hidden state 3": ((3,), "concatenated"),
        "hidden state 4": ((4,), "concatenated"),
        "hidden states 0+1, concatenated": ((0, 1), "concatenated"),
        "hidden states 0+2, concatenated": ((0, 2), "concatenated"),
        "hidden states 0+3, concatenated": ((0, 3), "concatenated"),
        "hidden states 0 and -1 (the demo's)": ((0, 4), "concatenated"),
        "all hidden states, averaged": ((0, 1, 2, 3, 4), "averaged"),
        "all hidden states, concatenated": ((0, 1, 2, 3, 4), "concatenated")}
    # Two states: the pair is the demo's, and "all" would repeat it.
    assert list(layer_combinations(2)) == ["hidden state 0", "hidden state 1", "hidden states 0 and -1 (the demo's)"]
    assert list(layer_combinations(1)) == ["hidden state 0"]


def test_combined_features_by_hand():
    states = np.array([[[1.0, 2.0], [3.0, 4.0]], [[5.0, 6.0], [7.0, 8.0]], [[0.0, 0.0], [1.0, 1.0]]])  # 3 x 2 x 2
    assert combined_features(states, (0, 2), "concatenated").tolist() == [[1, 2, 0, 0], [3, 4, 1, 1]]
    assert combined_features(states, (0, 1, 2), "averaged").tolist() == [[2, 8 / 3], [11 / 3, 13 / 3]]
    assert combined_features(states, (1,), "concatenated").tolist() == [[5, 6], [7, 8]]


def test_the_validation_split_holds_out_whole_groups_of_each_label():
    labels = ["a"] * 40 + ["b"] * 40
    groups = [f"program={i // 5}" for i in range(80)]  # 16 programs of 5 clips, 8 per label
    fit, validation = validation_rows(labels, groups, fraction=0.25, seed=0)
    assert sorted(np.concatenate([fit, validation]).tolist()) == list(range(80))
    held_out = {groups[i] for i in validation}
    assert not held_out & {groups[i] for i in fit} and len(held_out) == 4
    assert sorted(labels[i] for i in validation) == ["a"] * 10 + ["b"] * 10
    assert validation_rows(labels, groups, 0.25, seed=0)[1].tolist() == validation.tolist()
    # Too few groups to leave two labels to fit on: no split.
    assert validation_rows(["a", "a", "b", "b"], ["p1", "p1", "p2", "p2"]) is None
    assert validation_rows(["a", "b"], ["p1", "p1"]) is None


@pytest.mark.parametrize("fraction", [0, 1, -0.2, 1.5, True, "0.2", None])
def test_a_bad_validation_fraction_is_refused_before_the_encoder_runs(fraction, monkeypatch):
    monkeypatch.setattr(probe, "pooled_encoder_states", lambda *a, **k: pytest.fail("the encoder ran"))
    with pytest.raises(ValueError) as caught:
        probe_bounds(DatasetDict(), "encoder", validation_fraction=fraction)
    assert all(word in str(caught.value) for word in ("validation_fraction must be a number between 0 and 1",
                                                       repr(fraction))), str(caught.value)


def corpus_split(rows: int, first_program: int, seed: int) -> tuple[Dataset, np.ndarray]:
    """`rows` clips of programs of 4 clips, label x or y by program, with hand-made pooled states of 3 hidden states:
    states 0 and 1 noise, state 2 the label (+1 or -1 in every feature) plus noise."""
    generator = np.random.default_rng(seed)
    programs = [first_program + i // 4 for i in range(rows)]
    labels = ["x" if program % 2 else "y" for program in programs]
    states = generator.normal(size=(3, rows, 6))
    states[2] = np.array([1.0 if label == "x" else -1.0 for label in labels])[:, None] + 0.3 * states[2]
    columns = {"audio": [None] * rows, "program": programs, **{column: labels for column, _ in TASKS.values()}}
    return Dataset.from_dict(columns), states


def test_the_bound_is_the_combination_chosen_on_validation_scored_on_test(monkeypatch):
    (train, train_states), (test, test_states) = corpus_split(48, 0, 0), corpus_split(16, 100, 1)
    corpus = DatasetDict(train=train, test=test)
    states = {id(train): train_states, id(test): test_states}
    monkeypatch.setattr(probe, "pooled_encoder_states", lambda encoder_dir, split: torch.tensor(states[id(split)]))
    bounds = probe_bounds(corpus, "encoder", validation_fraction=0.25)
    assert list(bounds) == list(TASKS)
    for bound in bounds.values():
        # States 0 and 1 are noise (about half right on validation); state 2 alone is the first to separate them.
        assert bound == {"accuracy": 1.0, "features": "hidden state 2", "validation_accuracy": 1.0}
