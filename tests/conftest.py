import os

import pytest
import torch

from tests.utils import tiny


os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="module")
def processor():
    """The tiny processor: a word-level LLM tokenizer, the real BERT vocabulary for the Q-Former, 16 kHz audio."""
    return tiny.processor()
