"""
Evaluating MINT on the paper's benchmarks (Tables 2-6), and text-to-audio retrieval as an API.

    classification   vocabulary ranking (stage 2, Table 2; calibrated by a content-free input on request) and
                     embedding zero-shot over a set of label templates (stage 1, Table 6)
    few_shot         few-shot classification by stage-1 embeddings with a Tip-Adapter cache of labelled clips
    retrieval        text-to-audio and audio-to-text retrieval, ALM re-ranking (Table 3)
    captioning       captions generated and scored (Table 4), with the metrics of `caption_metrics`
    leakage          evaluation clips that a training dataset also holds
    reports          the paper's table rows in Markdown, the written result and its summary
    reading          an evaluation dataset's clips in batches, and its reference captions
    embeddings       stage-1 clip and text embeddings, a clip's windows pooled into one
    retrieval_index  `MintRetrievalIndex`: embed a collection once, search it with text

Every clip gives one result row. Long clips follow the processor's `long_audio_policy`: cropped to their first
`max_audio_seconds` (one warning per evaluation, with the count), or cut into windows whose results are pooled into one
per clip: the mean of the windows' scores for classification, the re-normalised mean of the windows' normalised
embeddings for embeddings and retrieval, the windows' captions joined by a space for captioning. A clip the processor
refuses (an undecodable file, a clip shorter than the encoder's minimum) is an error naming its dataset row and file,
or, with `skip_invalid=True`, is left out and listed under `skipped` in the result.
"""
