# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""
MINT's web app and the Hugging Face Space that serves it (docs/app.md).

    from mint.app import build_app, write_space
    build_app("mint-demo/stage2", stage1="mint-demo/stage1").launch()      # or `mint app mint-demo/stage2`
    write_space("your-org/mint", "mint-space")                              # or `mint hub space`

`callbacks` computes (no page), `layout` builds the Gradio page, `space` writes a Space folder. Names are imported on
first use, so the Space writer loads no Gradio.
"""

import importlib
import os
from typing import Any


# Gradio reads this when it is imported: the app runs offline and reports nothing.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

_EXPORTS = {"MintApp": "mint.app.callbacks", "build_app": "mint.app.layout", "write_space": "mint.app.space"}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Imports an exported name from its module on first access."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'mint.app' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value
