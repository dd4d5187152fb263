import pytest
import torch

from modeling_mint import MintForConditionalGeneration, MintForPreTraining
from tests.utils import tiny


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
