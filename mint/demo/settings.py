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
# Stage 1's training captions, written from each clip's labels (`mint.data.templates.caption_for_epoch`): a clip walks
# through the templates its labels fill, one per epoch. "{caption}" is the corpus's own caption, and the
# "This is a sound of ..." rows follow the paper's and CLAP's zero-shot prompt, so that training captions match it.
CAPTION_TEMPLATES = (
    "{caption}",
    "the sound of {instrument_family}: a {register} note played {loudness}",
    "{instrument_family}, {register} register, played {loudness}",
    "a {register} note played {loudness} on {instrument_family}",
    "This is a sound of {instrument_family}.",
    "the word {word} is spoken",
    "a voice says {word}",
    "This is a sound of {event}.",
    "a recording of {event}",
)
# The column of stage 1's training pairs naming their group: clips with the same labels (the corpus's own caption)
# are positives of one another, whatever template wrote their captions (the recipe's `group_column`).
GROUP_COLUMN = "labels"
# The Whisper encoder's input window in seconds (50 encoder positions per second).
WINDOW_SECONDS = 3
# Held-out clips in the text-to-audio retrieval pool.
POOL_SIZE = 200
# Stage 1's objective sets that `mint ablate` compares (the paper's Table 5).
OBJECTIVE_SETS = {"ALC": ["alc"], "ALC+ATG": ["alc", "atg"], "ALC+ALM": ["alc", "alm"],
                  "ALC+ALM+ATG": ["alc", "alm", "atg"]}
HUB_FOLDER = "hub"
# Where the demo's stage 2 of each further seed (`--stage2-seeds`) is trained: `stage2-seeds/seed-N`.
STAGE2_SEEDS_FOLDER = "stage2-seeds"
ABLATION_FOLDER = "ablation"
# The held-out split's cached encoder features, which the demo's evaluations read.
TEST_FEATURES_FOLDER = "features-test"
RESULTS_FILE = "results.json"
PROBE_FILE = "encoder_probe.json"
# The encoder probe's name for the features the demo's Bridge-Net reads (Whisper's hidden states 0 and -1).
PROBE_DEMO_FEATURES = "hidden states 0 and -1 (the demo's)"
# What the demo and its encoder probe write into their output folder: a folder holding anything else is not the demo's.
DEMO_ENTRIES = frozenset({RESULTS_FILE, PROBE_FILE, "results.md", "encoder_probe.md", "demo_plots.png",
                          "stage1_logs.json", "corpus", "assembled", "features-train", "features-train.shards",
                          TEST_FEATURES_FOLDER, f"{TEST_FEATURES_FOLDER}.shards", "stage1", "stage2",
                          "whisper-tiny-en-encoder", HUB_FOLDER, STAGE2_SEEDS_FOLDER, ABLATION_FOLDER, "ablation.json",
                          "ablation.md"})
