"""MINT's data: the paper's dataset releases read into `datasets` folders, and those datasets turned into training
examples, batches and the frozen-feature cache.

    templates        the instruction templates of Table 1, and caption templates per label for stage 1
    splits           the split of a saved `datasets` folder a command reads (checked against what it holds)
    examples         MINT examples from `datasets` (stage 1 pairs, stage 2 prompts and targets), mixtures
    collator         batches of examples through the processor (raw audio or cached features)
    cache            the frozen audio encoder's features, computed once in resumable shards
    progress         `datasets` progress bars on or off for a block
    outputs          output folders checked, written beside their place and moved in; JSON records written in one step
    release_files    reading a release's files (encodings, CSV and JSON checked), audio by name, YouTube clips
    release_layouts  each dataset's release layout and its reader
    releases         `prepare_dataset`: a release written as a `datasets` folder
"""
