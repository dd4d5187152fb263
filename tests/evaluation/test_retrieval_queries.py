"""`MintRetrievalIndex.search` refuses queries with nothing to search for, naming their positions."""

import pytest
import torch

from mint.evaluation.retrieval_index import MintRetrievalIndex
from tests.utils import tiny
from tests.utils.audio import clips


@pytest.fixture(scope="module")
def index(stage1):
    return MintRetrievalIndex(stage1, tiny.processor()).add(list(clips((16000, 12000))), ids=["a", "b"],
                                                            sampling_rate=16000, progress=False)


@pytest.mark.parametrize("queries, error, words", [
    ("", ValueError, ["positions [0]", "empty or whitespace only"]),
    ("  \t", ValueError, ["positions [0]", "empty or whitespace only"]),
    ("\u200b", ValueError, ["positions [0]"]),
    (["a dog", "", " "], ValueError, ["positions [1, 2]", "expected text to search for"]),
    ([], ValueError, ["queries is empty"]),
    (["a dog", 3], TypeError, ["positions [1]", "not strings"]),
])
def test_search_refuses_blank_queries(index, queries, error, words):
    with pytest.raises(error) as caught:
        index.search(queries)
    assert all(word in str(caught.value) for word in words), caught.value


def test_a_query_with_text_is_ranked_by_similarity(index, stage1):
    processor = tiny.processor()
    with torch.no_grad():
        tokens = processor(text=["a dog"], return_llm_inputs=False)
        text = stage1.get_text_features(tokens["qformer_input_ids"], tokens["qformer_attention_mask"]).pooler_output
        expected = stage1.audio_text_similarity(index.embeddings.to(text), text).t()[0]
    result = index.search("a dog", top_k=2)
    assert [r["index"] for r in result] == expected.argsort(descending=True).tolist()
    assert [r["score"] for r in result] == pytest.approx(sorted(expected.tolist(), reverse=True), abs=1e-5)
