import os

import pytest
import torch

from modeling_mint import MintForConditionalGeneration, MintForPreTraining
from tests.utils import tiny


os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="module")
def processor():
    """The tiny processor: a word-level LLM tokenizer, the real BERT vocabulary for the Q-Former, 16 kHz audio."""
    return tiny.processor()


@pytest.fixture(scope="module")
def stage1():
    """A tiny random stage-1 model in eval mode (seed 0)."""
    torch.manual_seed(0)
    return MintForPreTraining(tiny.mint_config()).eval()


@pytest.fixture(scope="module")
def stage2():
    """A tiny random stage-2 model in eval mode (seed 0)."""
    torch.manual_seed(0)
    return MintForConditionalGeneration(tiny.mint_config()).eval()
