"""Argument types shared by the `mint` parsers: each refuses a bad value in the parser, naming what was expected."""

import argparse
import re
import unicodedata


def positive_int(text: str) -> int:
    """An integer >= 1."""
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def nonnegative_int(text: str) -> int:
    """An integer >= 0."""
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def seed(text: str) -> int:
    """A seed: an integer from 0 to 2**32 - 1, the range `transformers.set_seed` takes."""
    value = nonnegative_int(text)
    if value > 2**32 - 1:
        raise argparse.ArgumentTypeError(f"expected a seed from 0 to {2**32 - 1}, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0."""
    value = _float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def nonnegative_float(text: str) -> float:
    """A finite number >= 0."""
    value = _float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def probability(text: str) -> float:
    """A number in [0, 1)."""
    value = _float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}")
    return value


def byte_size(text: str) -> int | str:
    """A positive size in bytes (`1000000`) or with a unit, as `datasets` reads it: `500MB`, `1GiB` (KB, MB, GB, TB in
    powers of 1000; KiB, MiB, GiB, TiB in powers of 1024; the unit's case is ignored). Returns an int, or the size with
    its unit upper-cased (`datasets` reads a lower-case `b` as bits)."""
    match = re.fullmatch(r"\s*(\d+)\s*((?:[KMGT]i?)?B)?\s*", text, re.IGNORECASE)
    if not match or int(match.group(1)) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive size such as 500MB, 2GiB or a number of bytes, got "
                                         f"{text!r}")
    unit = (match.group(2) or "B").upper()
    return int(match.group(1)) if unit == "B" else match.group(1) + unit


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    if value == 0 and any(unicodedata.digit(c, 0) for c in re.split(r"[eE]", text)[0]):
        raise argparse.ArgumentTypeError(f"expected a number a float can hold, got {text!r}, which rounds to 0")
    return value + 0.0  # -0 as 0


def torch_device(name: str | None) -> str:
    """
    The device a command runs on: `--device` (`name`) checked against this machine, or cuda where available, else cpu.
    Called by a handler when it runs (it imports torch): an unknown device, or cuda / mps where the machine has none,
    is a `ValueError` saying so.
    """
    import torch

    if name is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"--device {name!r} is not a device torch knows; expected cpu, cuda or cuda:N.") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: this machine has no CUDA device torch can use (torch {torch.__version__}"
                         f"{'' if torch.backends.cuda.is_built() else ', built without CUDA'}); use --device cpu.")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s) (cuda:0 to "
                         f"cuda:{torch.cuda.device_count() - 1}).")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"--device {name}: MPS is not available on this machine; use --device cpu.")
    return name
