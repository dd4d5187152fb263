# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""What the web app computes, without the page: a MINT model (and optionally the stage-1 model it was trained from)
loaded once, and one method per tab that takes the page's plain values (file paths, text) and returns plain values.
Bad input raises `ValueError` with the package's own message; [`mint.app.layout`] shows it in the page.

    app = MintApp("mint-demo/stage2", stage1="mint-demo/stage1")
    app.caption("clip.wav", "Generate audio caption:")             # "a dog barks"
    app.classify("clip.wav", "dog, cat, piano", "llm")              # {"dog": 0.7, "cat": 0.2, "piano": 0.1}
    app.retrieve("a dog barks", folder="clips/", top_k=3)           # [{"path", "name", "score"}, ...]

Captions and instruction answers come from `MintAudioToTextPipeline` (section 4), label scores from
`MintZeroShotAudioClassificationPipeline` (vocabulary ranking, section 4.1, on a stage-2 model; embedding or matching
scores, Table 6, on a stage-1 model), retrieval from `MintRetrievalIndex` (the ALC similarity of section 2.2).
"""

import csv
import os
from typing import Any

import numpy as np

# Importing modeling_mint registers MINT's classes with the Auto classes, so a folder's `auto_map` is read as this
# installed code: no remote code runs, and no trust_remote_code is asked for.
import modeling_mint  # noqa: F401
from audio_io_mint import decode_file
from mint.data.outputs import few
from transformers import PretrainedConfig
from mint.evaluation.retrieval_index import MintRetrievalIndex
from pipelines_mint import (
    CAPTION_PROMPT,
    SCORING_MODES,
    MintAudioToTextPipeline,
    MintCheckpoint,
    MintZeroShotAudioClassificationPipeline,
    model_kind_problem,
)
from processing_mint import MintProcessor, check_candidate_labels


# The files a folder of clips is searched for: what soundfile decodes without ffmpeg (mp3 with libsndfile >= 1.1).
AUDIO_EXTENSIONS = (".flac", ".mp3", ".ogg", ".wav")
# A clip whose every sample is below one step of 16-bit PCM (-90 dBFS) holds no sound to describe: it is refused as
# silent, as an all-zero one is.
SILENCE_PEAK = 2.0**-15
# What each scoring mode is called in the page.
SCORING_NAMES = {"llm": "vocabulary ranking (stage 2)", "embedding": "embedding similarity (stage 1)",
                 "matching": "matching head (stage 1)"}


def parse_labels(text: str | None) -> list[str]:
    """
    The candidate labels typed in the page: comma- or line-separated (blank lines and a comma ending a line are
    skipped), surrounding whitespace removed, checked by `check_candidate_labels` (an empty label between two commas
    and a repeated one are refused). A label holding a comma is written in double quotes, as in a CSV line:
    `"dog, barking", cat`; a quote left open is a `ValueError`.
    """
    labels = []
    for number, line in enumerate((text or "").splitlines(), 1):
        line = line.strip().removesuffix(",")
        if not line:
            continue
        try:
            labels += [label.strip() for label in next(csv.reader([line], skipinitialspace=True, strict=True))]
        except csv.Error:
            raise ValueError(f"Labels, line {number} ({line!r}): a double quote is opened and not closed; write a "
                             'label holding a comma in double quotes, e.g. "dog, barking", cat.') from None
    if not labels:
        raise ValueError("No labels: type the candidate labels, separated by commas or new lines (e.g. dog, cat, "
                         "piano).")
    return check_candidate_labels(labels, "labels")


def audio_files(folder: str) -> list[str]:
    """The audio files (`AUDIO_EXTENSIONS`) in `folder` (`~` is the home folder) and its sub-folders, sorted; none is
    a `ValueError`."""
    folder = os.path.expanduser((folder or "").strip())
    if not os.path.isdir(folder):
        raise ValueError(f"Clip folder {folder!r} does not exist or is not a folder; expected a folder of audio clips "
                         f"({', '.join(AUDIO_EXTENSIONS)}).")
    found = sorted(os.path.join(parent, name) for parent, _, names in os.walk(folder) for name in names
                   if name.lower().endswith(AUDIO_EXTENSIONS))
    if not found:
        entries = sorted(os.listdir(folder))
        holds = f"it holds {few(entries)}" if entries else "it is empty"
        raise ValueError(f"Clip folder {folder!r} holds no audio clips ({', '.join(AUDIO_EXTENSIONS)}): {holds}.")
    return found


def _load(path: str, device: str, role: str):
    """The MINT model of the class its folder was saved from, and its processor; anything else is refused, before
    any weights are read."""
    expected = "expected a MINT folder (stage1/ or stage2/ of a demo or training run) or a Hub repo id owner/name"
    problem = None
    if os.path.isfile(path):
        problem = "it is a file"
    elif os.path.isdir(path) and not os.path.isfile(os.path.join(path, "config.json")):
        entries = sorted(os.listdir(path))
        problem = "the folder has no config.json, so it is no saved model (" + (
            f"it holds {few(entries)})" if entries else "it is empty)")
    elif not os.path.isdir(path) and (os.path.isabs(path) or path.startswith(("~", ".")) or path.count("/") != 1):
        problem = "no such folder (and not a Hub repo id)"
    if problem:
        raise OSError(f"Could not load the {role} {path!r}: {problem}; {expected}.")
    try:
        model_type = PretrainedConfig.get_config_dict(path)[0].get("model_type")
    except (OSError, ValueError) as error:
        raise OSError(f"Could not load the {role} {path!r} ({expected}): {error}") from None
    if model_type != "mint":
        raise ValueError(f"The {role} {path!r} is not a MINT model (model_type {model_type!r}); {expected}.")
    try:
        model = MintCheckpoint.from_pretrained(path)
        processor = MintProcessor.from_pretrained(path)
    except (OSError, ValueError) as error:
        raise OSError(f"Could not load the {role} {path!r} ({expected}): {error}") from None
    return model.to(device).eval(), processor


class MintApp:
    """
    The models behind the web app. `model` is a stage-2 folder or Hub repo id (captions, instructions, vocabulary
    ranking) or a stage-1 one (embedding and matching scores, retrieval); `stage1` adds the stage-1 model a stage-2
    one was trained from, for the stage-1 uses. `generate_kwargs` are passed to generation (default: the folder's
    generation config). Runs on `device` (default cpu).
    """

    def __init__(self, model: str, stage1: str | None = None, device: str = "cpu",
                 generate_kwargs: dict[str, Any] | None = None):
        self.generate_kwargs = dict(generate_kwargs or {})
        self.sources = {"model": model}
        main, processor = _load(model, device, "model")
        self.processor = processor
        models = [(main, processor)]
        if stage1 is not None:
            if model_kind_problem(main, "llm"):
                raise ValueError(f"stage1 adds a stage-1 model to a stage-2 one, but the model {model!r} is not a "
                                 "stage-2 model with a trained LLM: pass the stage-1 folder as the model alone.")
            extra = _load(stage1, device, "stage-1 model")
            if model_kind_problem(extra[0], "embedding"):
                raise ValueError(f"The stage-1 model {stage1!r} cannot score embeddings: "
                                 f"{model_kind_problem(extra[0], 'embedding')}")
            models.append(extra)
            self.sources["stage1"] = stage1
        self.captioner = None
        if not model_kind_problem(main, "llm"):
            self.captioner = MintAudioToTextPipeline(model=main, processor=processor, device=device)
        self.classifiers: dict[str, MintZeroShotAudioClassificationPipeline] = {}
        self.embedder = None
        for candidate, candidate_processor in models:
            modes = [mode for mode in SCORING_MODES if not model_kind_problem(candidate, mode)]
            if modes:
                pipe = MintZeroShotAudioClassificationPipeline(model=candidate, processor=candidate_processor,
                                                              device=device)
                self.classifiers.update({mode: pipe for mode in modes})
            if "embedding" in modes and self.embedder is None:
                self.embedder = (candidate, candidate_processor)
        if not self.classifiers:
            raise ValueError(f"The model {model!r} can neither write text nor score embeddings: "
                             f"{model_kind_problem(main, 'llm')}")
        self._index: tuple[tuple, MintRetrievalIndex | None] = ((), None)

    @property
    def scoring_modes(self) -> list[str]:
        """The scoring modes the loaded models support, in `SCORING_MODES` order."""
        return [mode for mode in SCORING_MODES if mode in self.classifiers]

    @property
    def can_caption(self) -> bool:
        return self.captioner is not None

    @property
    def can_retrieve(self) -> bool:
        return self.embedder is not None

    def description(self) -> str:
        """What is loaded and what it offers, as Markdown for the top of the page."""
        shown = {role: os.path.basename(os.path.normpath(source)) if os.path.isdir(source) else source
                 for role, source in self.sources.items()}  # a local folder by its name, a Hub repo by its id
        lines = [f"**Model** `{shown['model']}`" + (f", **stage 1** `{shown['stage1']}`" if "stage1" in shown else "")]
        if not self.can_caption:
            lines.append("Captioning needs a stage-2 model with a trained LLM; this one is a stage-1 model.")
        if not self.can_retrieve:
            lines.append("Retrieval and embedding scores need the stage-1 model's embedding heads: start the app "
                         "with `--stage1 FOLDER` (the stage-1 model this one was trained from).")
        return "  \n".join(lines)

    def read_clip(self, audio: str | None) -> np.ndarray:
        """
        The clip at the path `audio` as the processor reads it: `(samples,)` float32 at its sampling rate. No clip,
        an undecodable, empty, too short, NaN or silent one (every sample zero, or below `SILENCE_PEAK`) is a
        `ValueError` saying so.
        """
        if not audio:
            raise ValueError("No audio: upload or record a clip first.")
        clip = self.processor.load_audio(audio, names=[f"the clip {os.path.basename(audio)!r}"])[0]
        if not np.any(clip):
            raise ValueError(f"The clip {os.path.basename(audio)!r} is silent (every sample is zero); expected a "
                             "clip with sound in it.")
        peak = float(np.abs(clip).max())
        if peak < SILENCE_PEAK:
            raise ValueError(f"The clip {os.path.basename(audio)!r} is silent (its loudest sample, {peak:.2g}, is "
                             "below one step of 16-bit audio); expected a clip with sound in it.")
        return clip

    def caption(self, audio: str | None, instruction: str | None = CAPTION_PROMPT) -> str:
        """The model's answer to `instruction` about the clip at `audio` (default the Table-1 captioning prompt; an
        empty instruction leaves the soft prompt alone, as the pipeline's `prompt=None`)."""
        if not self.can_caption:
            raise ValueError(f"Captioning needs a stage-2 model; {self.sources['model']!r} is a stage-1 model.")
        self.read_clip(audio)
        prompt = (instruction or "").strip() or None
        return self.captioner(audio, prompt=prompt, **self.generate_kwargs)["generated_text"]

    def classify(self, audio: str | None, labels: str | None, scoring: str) -> dict[str, float]:
        """`{label: score}` for the labels typed in `labels` (see [`parse_labels`]) under `scoring` (one of
        `scoring_modes`), best first."""
        if scoring not in self.classifiers:
            raise ValueError(f"Scoring {scoring!r} is not available for the loaded model; expected one of "
                             f"{self.scoring_modes}.")
        self.read_clip(audio)
        scores = self.classifiers[scoring](audio, candidate_labels=parse_labels(labels), scoring=scoring)
        return {entry["label"]: entry["score"] for entry in scores}

    def retrieve(self, query: str | None, folder: str | None = None, uploads: list[str] | None = None,
                 top_k: int = 3) -> list[dict[str, Any]]:
        """
        The `top_k` clips best matching the text `query`, best first, among the audio files of `folder` (see
        [`audio_files`]) and the uploaded files `uploads`: `[{"path", "name", "score"}, ...]`, `name` being the path
        relative to `folder` or the uploaded file's name. `top_k` is a whole number (a float such as 3.0, as a slider
        sends it, is taken). The clips are embedded once and kept until others are asked.
        """
        if not self.can_retrieve:
            raise ValueError("Retrieval needs a stage-1 model's embedding heads; start the app with a stage-1 model "
                             "(--stage1 FOLDER).")
        query = (query or "").strip()
        if not query:
            raise ValueError("No query: type a description of the sound to look for.")
        if isinstance(top_k, bool) or not isinstance(top_k, int | float) or top_k != int(top_k) or top_k < 1:
            raise ValueError(f"top_k must be at least 1 and a whole number of results, got {top_k!r}.")
        folder = os.path.expanduser((folder or "").strip())
        paths = audio_files(folder) if folder else []
        names = [os.path.relpath(path, folder) for path in paths]
        missing = [path for path in uploads or [] if not os.path.isfile(path)]
        if missing:
            raise ValueError(f"The uploaded clips {few(missing)} do not exist (any more): upload them again.")
        paths += list(uploads or [])
        names += [os.path.basename(path) for path in uploads or []]
        if not paths:
            raise ValueError("No clips to search: give a folder of clips or upload clips.")
        key = tuple((path, os.path.getmtime(path)) for path in paths)
        if key != self._index[0]:
            index = MintRetrievalIndex(*self.embedder).add(paths, progress=False)
            self._index = (key, index)
        return [{"path": paths[hit["index"]], "name": names[hit["index"]], "score": hit["score"]}
                for hit in self._index[1].search(query, top_k=int(top_k))]

    def waveform(self, audio: str | None):
        """A matplotlib figure of the clip at `audio` as read from its file: its waveform over time and its log-mel
        spectrogram; None when there is no clip. A clip the model cannot take is refused as by [`read_clip`], so the
        page says so as soon as it is uploaded."""
        if not audio:
            return None
        self.read_clip(audio)
        import librosa
        from matplotlib.figure import Figure

        data, rate = decode_file(audio, f"the clip {os.path.basename(audio)!r}")
        samples = data.mean(axis=0)
        figure = Figure(figsize=(8, 3.2), layout="constrained")
        wave, spectrum = figure.subplots(2, 1, sharex=True)
        wave.plot(np.arange(samples.shape[0]) / rate, samples, linewidth=0.6, color="#4c72b0")
        wave.set(ylabel="amplitude", title=os.path.basename(audio))
        mel = librosa.power_to_db(librosa.feature.melspectrogram(y=samples, sr=rate, n_mels=64) + 1e-10, ref=np.max)
        spectrum.imshow(mel, origin="lower", aspect="auto", cmap="magma",
                        extent=(0, samples.shape[0] / rate, 0, mel.shape[0]))
        spectrum.set(xlabel="seconds", ylabel="mel band")
        return figure


__all__ = ["AUDIO_EXTENSIONS", "SCORING_NAMES", "SILENCE_PEAK", "MintApp", "audio_files", "parse_labels"]
