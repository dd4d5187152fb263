# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""What the demo trains on and measures: its label types and prompts, the encoder's window, the retrieval pool, and
the files it writes into its output folder."""

# Label type -> (column of the corpus, prompt). Instrument family and events use the paper's Table-1 prompts.
TASKS = {
    "instrument family": ("instrument_family", "The most prominent instrument in this music is"),
    "spoken word": ("word", "The spoken word is"),
    "event type": ("event", "This is a sound of"),
    "register": ("register", "The register of this note is"),
    "loudness": ("loudness", "This note is played"),
}
CAPTION_PROMPT = "Generate audio caption:"
# The Whisper encoder's input window in seconds (50 encoder positions per second).
WINDOW_SECONDS = 3
# Held-out clips in the text-to-audio retrieval pool.
POOL_SIZE = 200
RESULTS_FILE = "results.json"
PROBE_FILE = "encoder_probe.json"
# What the demo and its encoder probe write into their output folder: a folder holding anything else is not the demo's.
DEMO_ENTRIES = frozenset({RESULTS_FILE, PROBE_FILE, "results.md", "encoder_probe.md", "demo_plots.png",
                          "stage1_logs.json", "corpus", "assembled", "features-train", "features-train.shards",
                          "stage1", "stage2", "whisper-tiny-en-encoder"})
