# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""The instruction templates of the paper's Table 1: per dataset, the prompt of a stage-2 example and the format of its
target (`{label}` or `{caption}`), and the registry that adds templates of your own; and the caption templates that
write stage-1 training captions from a row's labels, one drawn per row and epoch."""

import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class InstructionTemplate:
    """One row of Table 1: the input prompt and the output format (`{label}` or `{caption}`)."""

    prompt: str
    output: str = "{label}"
    use: tuple[str, ...] = ("train",)

    @property
    def needs_caption(self) -> bool:
        """Whether the target is the example's caption rather than its label."""
        return "{caption}" in self.output


# Table 1 of the paper. "(t)" rows are training data, "(e)" rows evaluation data.
INSTRUCTION_TEMPLATES: dict[str, InstructionTemplate] = {
    "AudioSet": InstructionTemplate("This is a sound of"),
    "VGGSound": InstructionTemplate("This is a sound of"),
    "OpenMIC": InstructionTemplate("Identify the instruments in this segment of music:", use=("train", "eval")),
    "FMALarge": InstructionTemplate("The genre of this music is", use=("train", "eval")),
    "NSynth": InstructionTemplate("The most prominent instrument in this music is", use=("train", "eval")),
    "FSD50K": InstructionTemplate("This is a sound of"),
    "Music4All-key": InstructionTemplate("The key of this music is"),
    "Music4All-genre": InstructionTemplate("The genre of this music is"),
    "GTZAN": InstructionTemplate("The genre of this music is", use=("eval",)),
    "WavCaps": InstructionTemplate("Generate audio caption:", "{caption}"),
    "FreeSound": InstructionTemplate("Generate audio caption:", "{caption}"),
    "Clotho": InstructionTemplate("Generate audio caption:", "{caption}", use=("eval",)),
}


def register_template(name: str, prompt: str, output: str = "{label}", overwrite: bool = False) -> None:
    """Adds a template for a dataset of your own (output `{label}` or `{caption}`)."""
    if name in INSTRUCTION_TEMPLATES and not overwrite:
        raise ValueError(f"A template named {name!r} exists already; pass overwrite=True to replace it.")
    if output.count("{") != 1 or output not in ("{label}", "{caption}"):
        raise ValueError(f"A template's output must be '{{label}}' or '{{caption}}', got {output!r}.")
    INSTRUCTION_TEMPLATES[name] = InstructionTemplate(prompt, output, use=("train", "eval"))


def get_template(name: str) -> InstructionTemplate:
    """The template registered under `name` (a Table-1 dataset or one added with [`register_template`])."""
    if name not in INSTRUCTION_TEMPLATES:
        raise ValueError(f"No instruction template named {name!r}. Known templates: "
                         f"{sorted(INSTRUCTION_TEMPLATES)}; add one with register_template().")
    return INSTRUCTION_TEMPLATES[name]


def template_fields(template: str) -> list[str]:
    """
    The row columns a caption template names: `"a {family} plays {loudness}"` -> `["family", "loudness"]`. A template
    that is not a `str.format` string of plain column names, or names none, is refused with a `ValueError`.
    """
    if not isinstance(template, str):
        raise ValueError(f"A caption template must be a string, got {type(template).__name__}.")
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as error:
        raise ValueError(f"Caption template {template!r} is not a format string ({error}); expected text with "
                         "column names in braces, e.g. 'a {family} plays a note'.") from None
    fields = [name for _, name, spec, conversion in parsed if name is not None]
    bad = [name for name in fields if not name.isidentifier()]
    if bad or any(spec or conversion for _, name, spec, conversion in parsed if name is not None):
        raise ValueError(f"Caption template {template!r} has a field that is not a plain column name "
                         f"({bad or 'a format spec'}); expected e.g. 'a {{family}} plays a note'.")
    if not fields:
        raise ValueError(f"Caption template {template!r} names no column; expected at least one, e.g. "
                         "'a {family} plays a note'.")
    return list(dict.fromkeys(fields))


def caption_for_epoch(templates: Sequence[str], row: Mapping, row_index: int, epoch: int, seed: int = 0) -> str | None:
    """
    The training caption of `row` (its column values) at `epoch`: among `templates`, those whose columns all hold a
    value in the row apply; each row walks through them in its own seeded order (`seed`, `row_index`), one per epoch,
    so consecutive epochs of a row with several applicable templates see different captions and the same seed gives
    the same captions. None where no template applies. Augmenting the text side with templates per label follows
    CLAP's and LAION-CLAP's keyword-to-caption templates (the paper trains on one caption per clip).
    """
    usable = [t for t in templates if all(row.get(f) is not None and str(row[f]).strip() != ""
                                          for f in template_fields(t))]
    if not usable:
        return None
    order = np.random.default_rng([seed, row_index]).permutation(len(usable))
    return usable[order[epoch % len(usable)]].format(**{k: v for k, v in row.items() if v is not None})


__all__ = ["INSTRUCTION_TEMPLATES", "InstructionTemplate", "caption_for_epoch", "get_template", "register_template",
           "template_fields"]
