"""On/off options of the evaluation entry points other than classification: a string such as 'no' is refused, not
taken as on."""
import pytest
import soundfile
from datasets import Audio, Dataset

import torch

from mint.evaluation.captioning import evaluate_captioning
from mint.evaluation.retrieval import evaluate_retrieval
from modeling_mint import MintForPreTraining
from tests.utils import tiny
from tests.utils.audio import clips


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("wavs")
    files = []
    for i, clip in enumerate(clips((16000, 12000, 9000))):
        files.append(str(folder / f"clip{i}.wav"))
        soundfile.write(files[-1], clip, 16000)
    files.append(str(folder / "missing.wav"))
    return Dataset.from_dict({"audio": files, "caption": ["a dog", "a cat", "rain", "a flute"]}).cast_column(
        "audio", Audio(decode=False))


def test_captioning_refuses_string_skip_invalid(data):
    with pytest.raises(ValueError, match="skip_invalid"):
        evaluate_captioning(tiny.captioning_model(), tiny.processor(), data, max_new_tokens=2, num_beams=1,
                            progress=False, skip_invalid="no")


def test_retrieval_refuses_string_skip_invalid(data):
    torch.manual_seed(0)
    model = MintForPreTraining(tiny.mint_config()).eval()
    with pytest.raises(ValueError, match="skip_invalid"):
        evaluate_retrieval(model, tiny.processor(), data, progress=False, skip_invalid="no")
