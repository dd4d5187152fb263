# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""The instruction templates of the paper's Table 1: per dataset, the prompt of a stage-2 example and the format of its
target (`{label}` or `{caption}`), and the registry that adds templates of your own."""

from dataclasses import dataclass


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


__all__ = ["INSTRUCTION_TEMPLATES", "InstructionTemplate", "get_template", "register_template"]
