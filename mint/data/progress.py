# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""`datasets` progress bars turned on or off for one block of work."""

from collections.abc import Iterator
from contextlib import contextmanager

from datasets.utils.logging import disable_progress_bar, enable_progress_bar, is_progress_bar_enabled


@contextmanager
def progress_bars(enabled: bool) -> Iterator[None]:
    """`datasets` progress bars on (`enabled`) or off for the block, restored to their previous state afterwards."""
    was_enabled = is_progress_bar_enabled()
    (enable_progress_bar if enabled else disable_progress_bar)()
    try:
        yield
    finally:
        (enable_progress_bar if was_enabled else disable_progress_bar)()


__all__ = ["progress_bars"]
