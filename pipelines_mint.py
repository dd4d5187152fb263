# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""MINT pipelines: `audio-to-text` (captions and instruction answers) and `mint-zero-shot-audio-classification`
(vocabulary ranking, embedding or matching scores).

Importing this module adds no pipeline task; `register_mint_pipelines()` adds the two to transformers' registry (no
stock task is replaced):

    from transformers import pipeline
    from pipelines_mint import register_mint_pipelines
    register_mint_pipelines()
    captioner = pipeline("audio-to-text", model="path/to/mint")
    captioner(["a.wav", "b.flac"], batch_size=8)                  # [{"generated_text": ...}, ...]
    classifier = pipeline("mint-zero-shot-audio-classification", model="path/to/mint")
    classifier("a.wav", candidate_labels=["dog", "piano"])         # [{"label", "score"}, ...] best first

A folder written by `mint.hub.save_for_hub` lists both in its config's `custom_pipelines` and carries this module, so
`pipeline(task, model=folder, trust_remote_code=True)` finds them without the package installed. transformers' own
pipelines need no registration: `any-to-any` runs a stage-2 folder (chat messages, the same text as `audio-to-text`),
`zero-shot-audio-classification` a stage-1 folder (embedding scores). The zero-shot scorings' shared computations,
[`template_text_embeddings`] (prompt ensembling) and [`content_free_scores`] (calibration), are public for evaluation.
"""

import itertools
import string
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from transformers import AutoConfig, AutoModel, AutoModelForPreTraining, AutoModelForSpeechSeq2Seq, GenerationConfig
from transformers.pipelines import PIPELINE_REGISTRY
from transformers.pipelines.base import Pipeline
from transformers.pipelines.pt_utils import PipelineDataset, PipelineIterator


try:
    from .checkpoint_mint import STAGE_OF_ARCHITECTURE
    from .modeling_mint import check_generation_counts
    from .processing_mint import check_candidate_labels, mean_over_windows, read_conversations
except ImportError:  # installed as top-level modules rather than loaded as Hub remote code
    from checkpoint_mint import STAGE_OF_ARCHITECTURE
    from modeling_mint import check_generation_counts
    from processing_mint import check_candidate_labels, mean_over_windows, read_conversations


def _class_named(model, class_name: str) -> type | None:
    """The class of that name among `model`'s classes, by name, so that the installed classes and a folder's
    remote-code copies of them both count."""
    return next((cls for cls in type(model).__mro__ if cls.__name__ == class_name), None)


def _is_a(model, class_name: str) -> bool:
    return _class_named(model, class_name) is not None


# What each use of a model needs: the MINT class, the stage of the checkpoint its weights come from, and what a model
# of another class lacks for it.
_MODEL_KINDS = {
    "llm": ("MintForConditionalGeneration", 2, "with a trained LLM", "no LLM (a stage-1 model)"),
    "embedding": ("MintModel", 1, "with trained embedding heads", "no embedding heads (audio_proj, text_proj, temp)"),
    "matching": ("MintForPreTraining", 1, "with trained embedding and matching heads", "no ALM matching head"),
}


def model_kind_problem(model, needs: str) -> str | None:
    """
    Why `model` cannot serve `needs` (`"llm"`: text and vocabulary ranking; `"embedding"`: clip and text embeddings;
    `"matching"`: the ALM matching head as well), or None when it can. Beyond the model's class, the checkpoint its
    weights were loaded from counts (`config.architectures`): a stage-1 checkpoint loaded into stage 2 gets an LLM
    built from its config with random weights, unless `config.base_models["language_model"]` names a pretrained one;
    a stage-2 checkpoint loaded into a stage-1 class gets randomly initialised embedding heads. A model that is not a
    MINT model is not judged (a stand-in with the methods the caller uses).
    """
    class_name, _, _, lacks = _MODEL_KINDS[needs]
    if not _is_a(model, "MintPreTrainedModel"):
        return None
    if not _is_a(model, class_name):
        return f"got {type(model).__name__}, which has {lacks}."
    config = model.config
    saved_stage = STAGE_OF_ARCHITECTURE.get((getattr(config, "architectures", None) or [None])[0])
    source = f" {model.name_or_path!r}" if getattr(model, "name_or_path", None) else ""
    if needs == "llm" and saved_stage == 1 and not (config.base_models or {}).get("language_model"):
        return (f"this {type(model).__name__} was loaded from the stage-1 checkpoint{source}, which stores no LLM "
                "and names no pretrained one in config.base_models, so its LLM has random weights. Train stage 2 from "
                "that checkpoint (with base_models={'language_model': ...} for a pretrained LLM) and use the result.")
    if needs != "llm" and saved_stage == 2:
        return (f"this {type(model).__name__} was loaded from the stage-2 checkpoint{source}, which has no "
                "embedding or matching heads, so they have random weights. Use the stage-1 checkpoint it was trained "
                "from.")
    return None


def check_model_kind(model, needs: str, consumer: str) -> None:
    """Refuses, with the reason, a model that cannot serve `needs` (see [`model_kind_problem`]); `consumer` names
    what asks (a pipeline option, an evaluation)."""
    problem = model_kind_problem(model, needs)
    if problem:
        class_name, stage, trained, _ = _MODEL_KINDS[needs]
        raise ValueError(f"{consumer} needs a {class_name} (stage {stage}, {trained}): {problem}")


# The Table-1 captioning instruction (WavCaps, FreeSound, Clotho): the default prompt of `audio-to-text`.
CAPTION_PROMPT = "Generate audio caption:"
SCORING_MODES = ("llm", "embedding", "matching")
# The defaults of the zero-shot task: the Table-1 classification prompt (vocabulary ranking) and the label text of the
# embedding and matching scores (Table 6).
DEFAULT_RANKING_PROMPT = "This is a sound of"
DEFAULT_HYPOTHESIS_TEMPLATE = "This is a sound of {}."
# A prompt-ensembling set (CLIP's practice, section 3.1.4 of Radford et al. 2021) led by the paper's and CLAP's
# template, for `hypothesis_template=HYPOTHESIS_TEMPLATE_SET`.
HYPOTHESIS_TEMPLATE_SET = ("This is a sound of {}.", "The sound of {}.", "A sound of {}.", "A recording of {}.")
ZERO_SHOT_TASK = "mint-zero-shot-audio-classification"
_STAGE_AUTO_CLASSES = {"MintForPreTraining": AutoModelForPreTraining, "MintModel": AutoModel,
                       "MintForConditionalGeneration": AutoModelForSpeechSeq2Seq}


def check_label_templates(templates: str | Sequence[str], name: str = "hypothesis_template",
                          named: bool = True) -> list[str]:
    """
    One label template or a list of them, as a list, checked: each a string with exactly one placeholder where the
    label goes, `{}` (or `{label}` where `named`), and no template twice. `name` is how the caller's messages call
    them (an argument, a command-line option).
    """
    if isinstance(templates, str):
        templates = [templates]
    if not isinstance(templates, (list, tuple)) or not templates:
        raise ValueError(f"{name} must be a template such as {DEFAULT_HYPOTHESIS_TEMPLATE!r} or a non-empty list of "
                         f"them; got {templates!r:.100}.")
    slot = "'{}'" + (" (or '{label}')" if named else "")
    for position, template in enumerate(templates):
        where = f"{name}" + (f" {position}" if len(templates) > 1 else "")
        if not isinstance(template, str):
            raise TypeError(f"{where} must be a string with exactly one {slot} for the label; got "
                            f"{type(template).__name__} {template!r:.100}.")
        try:
            fields = [field for _, field, _, _ in string.Formatter().parse(template) if field is not None]
        except ValueError:  # an unmatched brace
            fields = None
        if fields not in ([""], ["label"] if named else [""]):
            raise ValueError(f"{where} must hold exactly one {slot} for the label, got {template!r}.")
    if len(set(templates)) < len(templates):
        raise ValueError(f"{name} repeats a template ({list(templates)!r:.200}); expected each template once.")
    return list(templates)


def check_prompt(prompt: str | None, none_means: str | None = None, name: str = "prompt",
                 use: str | None = None) -> str | None:
    """
    `prompt`, the instruction the LLM reads, checked: a string with text. None is allowed where `none_means` says what
    it stands for, and refused otherwise. `name` (the argument or command-line option) and `use` (what the LLM
    generates or scores after it) say what the messages name. Not a string: `TypeError`; empty or whitespace only,
    which would leave the LLM without the instruction the task needs: `ValueError`.
    """
    if prompt is None and none_means is not None:
        return None
    if not isinstance(prompt, str):
        allowed = f", or None for {none_means}" if none_means else ""
        raise TypeError(f"{name} must be a string{allowed}; got {type(prompt).__name__}.")
    if not prompt.strip():
        before = f" before {use}" if use else ""
        allowed = f", or None for {none_means}" if none_means else ""
        raise ValueError(f"{name} is {prompt!r}, empty or whitespace only; the LLM reads an instruction{before}: give "
                         f"one with text (a Table-1 prompt, e.g. 'This is a sound of' or {CAPTION_PROMPT!r}){allowed}.")
    return prompt


def fill_template(template: str, label: str) -> str:
    """`template` (checked by [`check_label_templates`]) with `label` in its `{}` or `{label}` placeholder."""
    return template.format(label, label=label)


def _model_device(model) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def template_text_embeddings(model, processor, labels: Sequence[str], templates: str | Sequence[str],
                             batch_size: int | None = None) -> torch.Tensor:
    """
    The text embedding of each label under a set of templates (zero-shot by embeddings, Table 6), `(len(labels),
    audio_text_hidden_size)` on the model's device: the L2-normalised `get_text_features` of every template filled
    with the label, averaged over the templates and normalised again (CLIP's prompt ensembling; the paper scores one
    template). One template gives that template's embeddings unchanged. `model` is a stage-1 model with trained
    embedding heads, `processor` its `MintProcessor`; `batch_size` texts are embedded at a time (default: all).
    """
    check_model_kind(model, "embedding", "Zero-shot classification by embeddings")
    labels = check_candidate_labels(labels, "candidate_labels")
    templates = check_label_templates(templates)
    texts = [fill_template(template, label) for template in templates for label in labels]
    step, device = batch_size or len(texts), _model_device(model)
    embeddings = []
    for start in range(0, len(texts), step):
        tokens = processor(text=texts[start : start + step], return_llm_inputs=False)
        embeddings.append(model.get_text_features(tokens["qformer_input_ids"].to(device),
                                                  tokens["qformer_attention_mask"].to(device)).pooler_output)
    embeddings = torch.cat(embeddings).view(len(templates), len(labels), -1)
    if len(templates) == 1:
        return embeddings[0]
    return F.normalize(embeddings.mean(dim=0), dim=-1)


@torch.no_grad()
def content_free_scores(model, processor, candidates: Sequence[str], prompt: str | None,
                        length_normalize: bool = False) -> torch.Tensor:
    """
    The vocabulary-ranking scores (section 4.1) of `candidates` after `prompt` (None: the soft prompt alone) for a
    content-free input, a silent clip of the processor's `min_audio_seconds` (at most its `max_audio_seconds`):
    `(len(candidates),)` float32 on the model's device, summed log-likelihoods or, with `length_normalize`, their
    mean per token, as `score_candidates` gives them. Subtracted from a clip's scores they calibrate the ranking by
    the LLM's prior for each label (contextual calibration, Zhao et al. 2021: their diagonal correction in log space;
    the softmax over the candidates is unchanged by the per-clip constant their normalisation adds).
    """
    check_model_kind(model, "llm", "Calibrated vocabulary ranking")
    seconds = min(processor.min_audio_seconds, processor.max_audio_seconds)
    silence = np.zeros(int(seconds * processor.sampling_rate), dtype=np.float32)
    device = _model_device(model)
    audio = processor(audio=[silence], text=None if prompt is None else [prompt], sampling_rate=processor.sampling_rate,
                      long_audio_policy="crop").to(device)
    tokens = processor.tokenize_candidates(candidates).to(device)
    return model.score_candidates(**tokens, **audio, length_normalize=length_normalize)[0].float()


def _audio_of(item: Any) -> Any:
    """The audio of one pipeline input: a `datasets` row `{"audio": ...}` gives its audio, anything else is audio."""
    if isinstance(item, dict) and "audio" in item:
        return item["audio"]
    return item


def _collate_clips(items: list[dict[str, list]]) -> dict[str, list]:
    """Batches preprocessed clips as lists: the processor pads them in `_forward`, exactly as for one clip."""
    return {key: [value for item in items for value in item[key]] for key in items[0]}


class MintCheckpoint:
    """
    What `pipeline(task, model=folder)` loads MINT with: the Auto class of the class the folder was saved from
    (`architectures` in its config), so a stage-1 folder keeps its retrieval and matching heads and never gets a
    randomly initialised LLM (`audio-to-text` then refuses it with the reason).
    """

    @classmethod
    def from_pretrained(cls, path, *args, **kwargs):
        hub = {k: kwargs[k] for k in ("revision", "token", "trust_remote_code", "cache_dir") if k in kwargs}
        config = AutoConfig.from_pretrained(path, **hub)
        saved = (getattr(config, "architectures", None) or ["MintForConditionalGeneration"])[0]
        return _STAGE_AUTO_CLASSES.get(saved, AutoModelForSpeechSeq2Seq).from_pretrained(path, *args, **kwargs)


class _MintAudioPipeline(Pipeline):
    """Shared by MINT's pipelines: clips are decoded and resampled in `preprocess`, padded by the processor."""

    _load_processor = True
    _load_tokenizer = False
    _load_feature_extractor = False
    _load_image_processor = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not _is_a(self.model, "MintPreTrainedModel"):
            raise ValueError(f"{type(self).__name__} needs a MINT model, got {type(self.model).__name__}.")
        self.model.eval()

    def __call__(self, inputs, **kwargs):
        # Inputs are preprocessed in order, one by one: count them so that errors name the caller's input.
        self._inputs_seen = itertools.count()
        return super().__call__(inputs, **kwargs)

    def _load_clip(self, item: Any, sampling_rate: int | None) -> np.ndarray:
        audio = _audio_of(item)
        if isinstance(audio, dict) and "raw" in audio:  # the stock audio pipelines' {"raw", "sampling_rate"}
            audio = {"array": audio["raw"], "sampling_rate": audio.get("sampling_rate")}
        name = f"pipeline input {next(getattr(self, '_inputs_seen', itertools.count()))}"
        return self.processor.load_audio(audio, sampling_rate, names=[name])[0]

    def get_iterator(self, inputs, num_workers: int, batch_size: int, preprocess_params, forward_params,
                     postprocess_params):
        if batch_size == 1:
            return super().get_iterator(inputs, num_workers, batch_size, preprocess_params, forward_params,
                                        postprocess_params)
        # The stock collate pads each key itself; MINT's processor pads (and windows) the whole batch instead.
        dataset = PipelineDataset(inputs, self.preprocess, preprocess_params)
        loader = DataLoader(dataset, num_workers=num_workers, batch_size=batch_size, collate_fn=_collate_clips)
        model_iterator = PipelineIterator(loader, self.forward, forward_params, loader_batch_size=batch_size)
        return PipelineIterator(model_iterator, self.postprocess, postprocess_params)

    @staticmethod
    def _one_clip(model_outputs: dict) -> dict:
        """
        `_forward` returns plain lists over its batch (`"clip"` numbers the clips); the batched iterator hands
        `postprocess` one element of each, the unbatched path the whole one-clip lists.
        """
        if isinstance(model_outputs["clip"], list):
            return {key: value[0] for key, value in model_outputs.items()}
        return model_outputs

    def _model_inputs(self, clips: list[np.ndarray], texts: list[str] | None = None, **kwargs) -> dict:
        """The processor's batch, on the pipeline's device."""
        batch = self.processor(audio=clips, text=texts, sampling_rate=self.processor.sampling_rate, **kwargs)
        return {k: v.to(self.device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


class MintAudioToTextPipeline(_MintAudioPipeline):
    """
    Audio to text with MINT (section 4): a caption, or the answer to an instruction, for each clip.

    Inputs: a file path, a numpy array or tensor (with `sampling_rate=`), a `datasets` Audio dict or a row holding
    one under `"audio"`, or a list / `Dataset` of these. Call parameters: `prompt` (the instruction; default the
    Table-1 captioning prompt, `None` for the soft prompt alone), `sampling_rate`, `long_audio_policy` (`"crop"` or
    `"window"`, default the processor's), `generate_kwargs` or generation parameters such as `max_new_tokens` and
    `num_beams`, and `batch_size` (outputs are identical to one clip at a time).

    Returns, per input, `{"generated_text": str}`; with the `"window"` policy a clip longer than the processor's
    `max_audio_seconds` also gets `"chunks"`: `[{"timestamp": (start_s, end_s), "generated_text": str}, ...]`, one
    per window with a caption (a window whose caption is empty is left out), and `generated_text` joins them, each
    after its times: `"[0.0-30.0 s] a dog barks [30.0-60.0 s] rain falls"`.
    """

    _pipeline_calls_generate = True
    _default_generation_config = GenerationConfig(max_new_tokens=30)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        problem = model_kind_problem(self.model, "llm")
        if problem:
            raise ValueError(f"audio-to-text needs a stage-2 MINT (MintForConditionalGeneration) with a trained LLM to "
                             f"write text with: {problem} A stage-1 model serves {ZERO_SHOT_TASK!r} and retrieval.")

    def _sanitize_parameters(self, prompt: str | None = CAPTION_PROMPT, sampling_rate: int | None = None,
                             long_audio_policy: str | None = None, generate_kwargs: dict | None = None,
                             **generation_parameters):
        unknown = set(generation_parameters) - set(vars(GenerationConfig()))
        if unknown:
            raise TypeError(f"audio-to-text got unexpected parameters {sorted(unknown)}; it takes prompt, "
                            "sampling_rate, long_audio_policy, batch_size, generate_kwargs and generation parameters.")
        check_prompt(prompt, none_means="the soft prompt alone")
        generate_kwargs = {**(generate_kwargs or {}), **generation_parameters}
        check_generation_counts(generate_kwargs)
        forward = {"generate_kwargs": generate_kwargs, "long_audio_policy": long_audio_policy}
        return {"prompt": prompt, "sampling_rate": sampling_rate}, forward, {}

    def preprocess(self, inputs, prompt: str | None = CAPTION_PROMPT, sampling_rate: int | None = None) -> dict:
        if hasattr(inputs, "messages"):  # a chat conversation, which the base pipeline wraps in a `Chat`
            (clip,) = read_conversations(inputs.messages)
            # The instruction as the processor's chat template renders it; without text, the soft prompt alone.
            prompt = self.processor.apply_chat_template(inputs.messages, tokenize=False) or None
            inputs = clip
        return {"clips": [self._load_clip(inputs, sampling_rate)], "prompts": [prompt]}

    def _forward(self, model_inputs: dict, generate_kwargs: dict | None = None,
                 long_audio_policy: str | None = None) -> dict:
        clips, prompts = model_inputs["clips"], model_inputs["prompts"]
        texts = None if prompts[0] is None else prompts
        policy = long_audio_policy or self.processor.long_audio_policy
        batch = self._model_inputs(clips, texts, long_audio_policy=policy)
        clip_index = batch.pop("clip_index", None)
        clip_index = list(range(len(clips))) if clip_index is None else clip_index.tolist()
        ids = self.model.generate(**batch, **self._prepare_generate_kwargs(generate_kwargs or {}))
        decoded = self.processor.batch_decode(ids)
        windows = [[t for t, i in zip(decoded, clip_index) if i == clip] for clip in range(len(clips))]
        return {"clip": list(range(len(clips))), "windows": windows,
                "num_samples": [clip.shape[0] for clip in clips], "windowed": [policy == "window"] * len(clips)}

    def postprocess(self, model_outputs: dict) -> dict[str, Any]:
        model_outputs = self._one_clip(model_outputs)
        windows = [text.strip() for text in model_outputs["windows"]]
        if not (model_outputs["windowed"] and len(windows) > 1):
            return {"generated_text": windows[0]}
        bounds = self.processor.window_bounds(model_outputs["num_samples"])
        chunks = [{"timestamp": bound, "generated_text": text} for bound, text in zip(bounds, windows) if text]
        timed = ["[{:.1f}-{:.1f} s] {}".format(*chunk["timestamp"], chunk["generated_text"]) for chunk in chunks]
        return {"generated_text": " ".join(timed), "chunks": chunks}


class MintZeroShotAudioClassificationPipeline(_MintAudioPipeline):
    """
    Zero-shot audio classification with MINT, in the three ways the paper scores labels.

    Call parameters: `candidate_labels` (a list or a comma-separated string), `scoring`, `hypothesis_template`,
    `prompt`, `length_normalize`, `calibrate`, `sampling_rate`, `batch_size`. Empty, whitespace-only and repeated
    labels are refused with their positions, and so is an option of another scoring (`prompt`, `length_normalize` or
    `calibrate` with embedding or matching scores, `hypothesis_template` with `"llm"`).

    * `scoring="llm"` (stage-2 models, the default for them): vocabulary ranking (section 4.1), the log-likelihood of
      each label under the LLM after `prompt` (default "This is a sound of", Table 1), summed over its tokens (or
      averaged with `length_normalize=True`); with `calibrate=True` the scores of a silent clip are subtracted first
      ([`content_free_scores`]); scores are the softmax of the log-likelihoods over the candidates.
    * `scoring="embedding"` (stage-1 models, their default): ALC similarity between the clip's query embeddings and
      `hypothesis_template` filled with each label (default "This is a sound of {}."; a list of templates averages
      the label's text embeddings over them, [`template_text_embeddings`]), softmaxed at the learnt temperature
      (Table 6).
    * `scoring="matching"` (stage-1 models): the ALM head's match probability for each (clip, hypothesis) pair
      (averaged over a list of templates); the scores are those probabilities, not normalised over the candidates.

    With the processor's `"window"` policy, a clip longer than `max_audio_seconds` scores the mean of its windows'
    scores (log-likelihoods, similarities or probabilities) before the softmax. Returns, per clip,
    `[{"score": float, "label": str}, ...]` sorted best first, like the stock pipeline.
    """

    def _sanitize_parameters(self, candidate_labels: Sequence[str] | str | None = None,
                             scoring: str | None = None, hypothesis_template: str | Sequence[str] | None = None,
                             prompt: str | None = None, length_normalize: bool | None = None,
                             calibrate: bool | None = None, sampling_rate: int | None = None, **kwargs):
        if kwargs:
            raise TypeError(f"{ZERO_SHOT_TASK} got unexpected parameters {sorted(kwargs)}.")
        scoring = scoring or ("llm" if _is_a(self.model, "MintForConditionalGeneration") else "embedding")
        if scoring not in SCORING_MODES:
            raise ValueError(f"scoring must be one of {SCORING_MODES}, got {scoring!r}.")
        check_model_kind(self.model, scoring, f"scoring={scoring!r}")
        if scoring == "llm" and hypothesis_template is not None:
            raise ValueError("hypothesis_template is for scoring='embedding' or 'matching'; scoring='llm' ranks the "
                             "labels themselves after the prompt (prompt=..., default "
                             f"{DEFAULT_RANKING_PROMPT!r}).")
        if scoring != "llm" and (prompt is not None or length_normalize or calibrate):
            given = "prompt" if prompt is not None else "length_normalize" if length_normalize else "calibrate"
            raise ValueError(f"{given} is for scoring='llm' (vocabulary ranking); scoring={scoring!r} scores "
                             "hypothesis_template filled with each label (default "
                             f"{DEFAULT_HYPOTHESIS_TEMPLATE!r}).")
        if prompt is not None:
            check_prompt(prompt, none_means=f"the default {DEFAULT_RANKING_PROMPT!r}")
        if hypothesis_template is not None:
            hypothesis_template = check_label_templates(hypothesis_template, named=False)
        if isinstance(candidate_labels, str):
            candidate_labels = [label.strip() for label in candidate_labels.split(",")]
        preprocess = {"sampling_rate": sampling_rate}
        if candidate_labels is not None:
            preprocess["candidate_labels"] = check_candidate_labels(candidate_labels, "candidate_labels")
        given = {"hypothesis_template": hypothesis_template, "prompt": prompt, "length_normalize": length_normalize,
                 "calibrate": calibrate}
        forward = {"scoring": scoring, **{key: value for key, value in given.items() if value is not None}}
        return preprocess, forward, {}

    def preprocess(self, audio, candidate_labels: list[str] | None = None, sampling_rate: int | None = None):
        if candidate_labels is None:
            raise ValueError(f"{ZERO_SHOT_TASK} needs candidate_labels=[...].")
        return {"clips": [self._load_clip(audio, sampling_rate)], "candidate_labels": [candidate_labels]}

    def _forward(self, model_inputs: dict, scoring: str = "llm",
                 hypothesis_template: str | list[str] = DEFAULT_HYPOTHESIS_TEMPLATE,
                 prompt: str = DEFAULT_RANKING_PROMPT, length_normalize: bool = False, calibrate: bool = False) -> dict:
        clips, labels = model_inputs["clips"], model_inputs["candidate_labels"]
        if any(candidates != labels[0] for candidates in labels):
            raise ValueError("Every clip of a batch needs the same candidate_labels.")
        audio = self._model_inputs(clips, [prompt] * len(clips) if scoring == "llm" else None)
        clip_index = audio.pop("clip_index", None)
        scores = _SCORERS[scoring](self, audio, labels[0], hypothesis_template=hypothesis_template, prompt=prompt,
                                   length_normalize=length_normalize, calibrate=calibrate).float()
        if clip_index is not None:
            scores = mean_over_windows(scores, clip_index, len(clips))
        return {"clip": list(range(len(clips))), "scores": scores.cpu().tolist(), "candidate_labels": labels,
                "scoring": [scoring] * len(clips)}

    def postprocess(self, model_outputs: dict) -> list[dict[str, Any]]:
        model_outputs = self._one_clip(model_outputs)
        scores, labels = torch.tensor(model_outputs["scores"]), model_outputs["candidate_labels"]
        if model_outputs["scoring"] != "matching":
            scores = scores.softmax(dim=-1)
        order = scores.argsort(descending=True, stable=True).tolist()
        return [{"score": float(scores[i]), "label": labels[i]} for i in order]

    def _llm_scores(self, audio: dict, candidates, prompt: str, length_normalize: bool, calibrate: bool,
                    **_) -> torch.Tensor:
        tokens = self.processor.tokenize_candidates(candidates).to(self.device)
        scores = self.model.score_candidates(**tokens, **audio, length_normalize=length_normalize)
        if calibrate:
            scores = scores - content_free_scores(self.model, self.processor, candidates, prompt, length_normalize)
        return scores

    def _embedding_scores(self, audio: dict, candidates, hypothesis_template: str | list[str], **_) -> torch.Tensor:
        text_embeds = template_text_embeddings(self.model, self.processor, candidates, hypothesis_template)
        audio_embeds = self.model.get_audio_features(**audio).pooler_output
        return self.model.audio_text_similarity(audio_embeds, text_embeds) / self.model.temperature()

    def _matching_scores(self, audio: dict, candidates, hypothesis_template: str | list[str], **_) -> torch.Tensor:
        templates = check_label_templates(hypothesis_template, named=False)
        rows, n = next(iter(audio.values())).shape[0], len(candidates)
        repeated = {k: v.repeat_interleave(n, dim=0) for k, v in audio.items()}
        scores = []
        for template in templates:
            text = self.processor(text=[fill_template(template, label) for label in candidates],
                                  return_llm_inputs=False).to(self.device)
            ids = text["qformer_input_ids"].repeat(rows, 1)
            mask = text["qformer_attention_mask"].repeat(rows, 1)
            scores.append(self.model.get_matching_scores(ids, mask, **repeated).view(rows, n))
        return torch.stack(scores).mean(dim=0)


_SCORERS = {"llm": MintZeroShotAudioClassificationPipeline._llm_scores,
            "embedding": MintZeroShotAudioClassificationPipeline._embedding_scores,
            "matching": MintZeroShotAudioClassificationPipeline._matching_scores}


def register_mint_pipelines() -> None:
    """
    Adds `audio-to-text` and `mint-zero-shot-audio-classification` to transformers' pipeline registry, so that
    `pipeline(task, model=folder)` builds them from a MINT folder. No stock task is changed.
    """
    # The Auto classes know MINT's config, processor and models from this module's imports, so a folder's `auto_map`
    # is read as local code and needs no `trust_remote_code`.
    if PIPELINE_REGISTRY.supported_tasks.get(ZERO_SHOT_TASK, {}).get("impl") is not None:
        return
    PIPELINE_REGISTRY.register_pipeline("audio-to-text", pipeline_class=MintAudioToTextPipeline,
                                        pt_model=MintCheckpoint, type="multimodal")
    PIPELINE_REGISTRY.register_pipeline(ZERO_SHOT_TASK, pipeline_class=MintZeroShotAudioClassificationPipeline,
                                        pt_model=MintCheckpoint, type="multimodal")


def custom_pipelines(auto_class: str) -> dict[str, dict]:
    """The `custom_pipelines` a Hub folder lists, for `pipeline(..., trust_remote_code=True)`; `auto_class` is the
    Auto class that loads the folder's model (`AutoModelForPreTraining`, `AutoModel` or
    `AutoModelForSpeechSeq2Seq`)."""
    tasks = {ZERO_SHOT_TASK: MintZeroShotAudioClassificationPipeline}
    if auto_class == "AutoModelForSpeechSeq2Seq":
        tasks["audio-to-text"] = MintAudioToTextPipeline
    return {task: {"impl": f"pipelines_mint.{cls.__name__}", "pt": [auto_class], "type": "multimodal"}
            for task, cls in tasks.items()}
