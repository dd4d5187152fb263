# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""MINT processor: audio (read by `audio_io_mint`) to features under a clip-length policy, text for the LLM and the
Q-Former; with the window policy's pooling of per-window results back to one per clip, and the chat-input reader."""

import contextlib
import copy
import inspect
import os
import threading
import urllib.request
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from transformers import AutoProcessor, AutoTokenizer
from transformers.feature_extraction_utils import BatchFeature
from transformers.processing_utils import ProcessorMixin
from transformers.utils import cached_file, logging


try:
    from .audio_io_mint import MIN_CLIP_SECONDS, AudioInput, decode_clips
    from .checkpoint_mint import STAGE_OF_ARCHITECTURE, read_folder_config
    from .configuration_mint import MintConfig
except ImportError:  # installed as top-level modules rather than loaded as Hub remote code
    from audio_io_mint import MIN_CLIP_SECONDS, AudioInput, decode_clips
    from checkpoint_mint import STAGE_OF_ARCHITECTURE, read_folder_config
    from configuration_mint import MintConfig


logger = logging.get_logger(__name__)
# Per thread: the lists that `collected_crop_notices` blocks collect the crop notices in, innermost last.
_CROP_NOTICES = threading.local()


@contextlib.contextmanager
def collected_crop_notices() -> Iterator[list[str]]:
    """
    Within the block, the processor's per-clip crop notices (one for each clip longer than `max_audio_seconds` under
    the `"crop"` policy) are appended to the yielded list instead of being logged: for callers that report long clips
    themselves (evaluation counts them, the feature cache names their files once per run).
    """
    notices: list[str] = []
    if not hasattr(_CROP_NOTICES, "collectors"):
        _CROP_NOTICES.collectors = []
    _CROP_NOTICES.collectors.append(notices)
    try:
        yield notices
    finally:
        _CROP_NOTICES.collectors.remove(notices)

LONG_AUDIO_POLICIES = ("crop", "window")
# Where a stage-1 (embedding) model folder keeps the LLM's tokenizer: its own tokenizer is the Q-Former's, the one text
# such a model reads and the one transformers' zero-shot-audio-classification pipeline loads (see
# [`save_embedding_processor`]).
LLM_TOKENIZER_FOLDER = "llm_tokenizer"
# The chat template `apply_chat_template` renders (saved with the processor as `chat_template.jinja`). MINT's LLM takes
# an instruction, not a dialogue (Table 1): the texts of the system, user and assistant messages, in order and joined
# by spaces, form it; audio items render nothing, as the processor puts the audio placeholders before the text itself;
# there is no generation header to add. Another role is refused.
CHAT_ROLES = ("system", "user", "assistant")
DEFAULT_CHAT_TEMPLATE = (
    "{%- set texts = namespace(items=[]) -%}"
    "{%- for message in messages -%}"
    "{%- if message['role'] not in ['system', 'user', 'assistant'] -%}"
    "{{- raise_exception('MINT chat messages have the role system, user or assistant; got ' + message['role']) -}}"
    "{%- endif -%}"
    "{%- if message['content'] is string -%}"
    "{%- set texts.items = texts.items + [message['content']] -%}"
    "{%- else -%}"
    "{%- for item in message['content'] if item['type'] == 'text' -%}"
    "{%- set texts.items = texts.items + [item['text']] -%}"
    "{%- endfor -%}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{{- texts.items | join(' ') -}}"
)


class MintProcessor(ProcessorMixin):
    r"""
    Prepares audio and text for MINT.

    Audio: a file path, a numpy array or torch tensor (with `sampling_rate`), a `datasets` Audio row (decoded
    `{"array", "sampling_rate"}` or undecoded `{"bytes", "path"}`), or a list of these. Files are decoded with
    soundfile (librosa as fallback); multi-channel audio is averaged to mono (a 2-D array is `(channels, samples)` or
    `(samples, channels)`, the smaller dimension being the channels); audio is resampled to the feature extractor's
    rate and padded to the longest clip with `audio_attention_mask`.

    Clip-length policy (section 3.2 trains on 3-30 s clips): clips longer than `max_audio_seconds` are cropped to
    their first `max_audio_seconds` with a warning (`long_audio_policy="crop"`, the default) or split into
    consecutive windows of `max_audio_seconds` (`"window"`; the output then has one row per window and `clip_index`
    maps rows to clips, the texts being repeated for each window). Clips shorter than `min_audio_seconds` are kept as
    they are: the lower bound is a training-data filter, not an inference limit. Clips shorter than 25 ms are
    rejected, since the encoder cannot produce a frame from them.

    Text: `text` (the caption in stage 1, the instruction in stage 2) is tokenized for the Q-Former
    (`qformer_input_ids`, at most `max_text_length` tokens) and, unless `return_llm_inputs=False`, for the LLM
    (`input_ids`); `text_target` gives the LLM targets as `labels` (end-of-sequence appended, -100 on padding).

    Args:
        feature_extractor: the audio encoder's feature extractor (`Wav2Vec2FeatureExtractor` for data2vec / wav2vec2 /
            HuBERT, `WhisperFeatureExtractor` for Whisper).
        tokenizer: the LLM's tokenizer.
        qformer_tokenizer: the Q-Former's BERT tokenizer, with `[DEC]` as its `bos_token`.
        max_text_length, min_audio_seconds, max_audio_seconds, num_query_tokens: as in [`MintConfig`].
        long_audio_policy: `"crop"` or `"window"`, see above.
        audio_token: the LLM-vocabulary placeholder token (added to `tokenizer` if missing); `num_query_tokens` of
            them start every LLM input, and the model puts the soft prompt in their places (`config.audio_token_id`
            is its id).
        decoder_only_llm: the LLM is decoder-only (`MintConfig.use_decoder_only_language_model`): its inputs are
            left-padded and `text_target` is appended to them, with `labels` aligned to `input_ids`. For a seq2seq
            LLM (T5, the paper's) the inputs are right-padded and `labels` are the decoder's targets.
    """

    def __init__(
        self,
        feature_extractor,
        tokenizer,
        qformer_tokenizer,
        max_text_length: int = 30,
        min_audio_seconds: float = 3.0,
        max_audio_seconds: float = 30.0,
        long_audio_policy: str = "crop",
        num_query_tokens: int = 32,
        audio_token: str = "<audio>",
        decoder_only_llm: bool = False,
        chat_template: str | None = None,
        **kwargs,
    ):
        if long_audio_policy not in LONG_AUDIO_POLICIES:
            raise ValueError(f"long_audio_policy must be one of {LONG_AUDIO_POLICIES}, got {long_audio_policy!r}.")
        if getattr(qformer_tokenizer, "cls_token_id", None) is None:
            raise ValueError("The Q-Former tokenizer must be Bridge-Net's BERT tokenizer (with [CLS], and [DEC] as "
                             f"bos_token); got {type(qformer_tokenizer).__name__} without a [CLS] token. A processor "
                             "folder keeps it in its qformer_tokenizer/ subfolder.")
        self.max_text_length = max_text_length
        self.min_audio_seconds = min_audio_seconds
        self.max_audio_seconds = max_audio_seconds
        self.long_audio_policy = long_audio_policy
        self.num_query_tokens = num_query_tokens
        self.audio_token = audio_token
        self.decoder_only_llm = decoder_only_llm
        if audio_token not in tokenizer.get_vocab():
            tokenizer.add_tokens([audio_token], special_tokens=True)
        super().__init__(feature_extractor, tokenizer, qformer_tokenizer,
                         chat_template=chat_template or DEFAULT_CHAT_TEMPLATE, **kwargs)

    @classmethod
    def from_config(cls, config: MintConfig, feature_extractor, tokenizer, qformer_tokenizer, **kwargs):
        """A processor whose text and clip-length limits, query count and LLM layout are those of `config`."""
        return cls(feature_extractor, tokenizer, qformer_tokenizer, max_text_length=config.max_text_length,
                   min_audio_seconds=config.min_audio_seconds, max_audio_seconds=config.max_audio_seconds,
                   num_query_tokens=config.num_query_tokens,
                   decoder_only_llm=config.use_decoder_only_language_model, **kwargs)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs) -> "MintProcessor":
        """
        As `ProcessorMixin.from_pretrained`. A stage-1 model folder written by [`save_embedding_processor`] keeps
        the LLM's tokenizer in `llm_tokenizer/` (its own tokenizer is the Q-Former's): the processor gets that one,
        so stage 2 trained from the folder tokenizes for its LLM.

        transformers' `pipeline()` loads the processor with the task it builds (`_from_pipeline`): a generation task
        on a stage-1 folder, which stores no trained LLM (the pipeline would caption with random weights), raises a
        `ValueError` that names the stage-2 route.
        """
        check_pipeline_stage(pretrained_model_name_or_path, kwargs.get("_from_pipeline"))
        processor = super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        hub = {key: kwargs[key] for key in ("cache_dir", "force_download", "local_files_only", "token", "revision")
               if key in kwargs}
        subfolder = os.path.join(kwargs.get("subfolder") or "", LLM_TOKENIZER_FOLDER)
        found = cached_file(pretrained_model_name_or_path, "tokenizer_config.json", subfolder=subfolder,
                            _raise_exceptions_for_missing_entries=False, **hub)
        if found is not None:
            processor.tokenizer = AutoTokenizer.from_pretrained(pretrained_model_name_or_path, subfolder=subfolder,
                                                                **hub)
        return processor

    def save_pretrained(self, save_directory: str | os.PathLike, *args, **kwargs):
        """
        As `ProcessorMixin.save_pretrained`; into a folder that holds a stage-1 model (its `config.json` saved from
        `MintForPreTraining` or `MintModel`), the processor is written as [`save_embedding_processor`] writes it, so
        that the folder's own tokenizer is the Q-Former's, the one text a stage-1 model reads (transformers'
        `zero-shot-audio-classification` pipeline loads it), and `from_pretrained` gives this processor back.
        """
        config = read_folder_config(save_directory)
        if config is not None and STAGE_OF_ARCHITECTURE.get((config.get("architectures") or [None])[0]) == 1:
            return save_embedding_processor(self, save_directory, *args, **kwargs)
        return super().save_pretrained(save_directory, *args, **kwargs)

    @property
    def audio_token_id(self) -> int:
        """The LLM-vocabulary id of the audio placeholder token (`MintConfig.audio_token_id`)."""
        return self.tokenizer.convert_tokens_to_ids(self.audio_token)

    @property
    def sampling_rate(self) -> int:
        return self.feature_extractor.sampling_rate

    def __call__(
        self,
        audio: AudioInput | Sequence[AudioInput] | None = None,
        text: str | Sequence[str] | None = None,
        text_target: str | Sequence[str] | None = None,
        *,
        sampling_rate: int | float | None = None,
        return_llm_inputs: bool = True,
        long_audio_policy: str | None = None,
        return_tensors: str = "pt",
        padding: bool | str = True,
        **kwargs,
    ) -> BatchFeature:
        """
        Returns a `BatchFeature` with, as applicable: the audio under the feature extractor's input name
        (`input_values` `(batch, samples)` or `input_features` `(batch, n_mels, frames)`) and `audio_attention_mask`;
        `qformer_input_ids` / `qformer_attention_mask`; `input_ids` / `attention_mask` (the audio placeholders, then
        the text); `labels`; and `clip_index` `(batch,)` with the `"window"` policy. Each batch is padded to its
        longest clip and text: `padding` may say so (`True` or `"longest"`, as the Qwen2-Audio and Voxtral snippets
        pass it), any other value is refused. Unknown keyword arguments raise a `TypeError`.
        """
        # transformers' `any-to-any` pipeline passes every modality it knows; MINT reads audio and text only.
        given = {name: kwargs.pop(name) for name in ("images", "videos") if name in kwargs}
        other_modalities = sorted(name for name, value in given.items() if value is not None)
        if other_modalities:
            raise ValueError(f"MintProcessor reads audio and text only; got {other_modalities}.")
        if kwargs:
            raise TypeError(f"MintProcessor got unexpected keyword argument(s) {sorted(kwargs)}; it takes audio, text, "
                            "text_target, sampling_rate, return_llm_inputs, long_audio_policy, return_tensors and "
                            "padding.")
        if padding is not True and padding != "longest":
            raise ValueError(f"MintProcessor pads each batch to its longest clip and text (padding=True or "
                             f"'longest'); got padding={padding!r}.")
        if audio is None and text is None and text_target is None:
            raise ValueError("MintProcessor needs at least one of audio, text or text_target.")
        texts = self._as_text_list(text, "text")
        targets = self._as_text_list(text_target, "text_target")
        encoding = {}
        if audio is not None:
            clips = self.load_audio(audio, sampling_rate)
            clips, clip_index = self._apply_length_policy(clips, long_audio_policy or self.long_audio_policy)
            num_clips = len(set(clip_index))
            for name, given in (("text", texts), ("text_target", targets)):
                if given is not None and len(given) != num_clips:
                    raise ValueError(f"Got {num_clips} audio clips but {len(given)} {name} entries: "
                                     "pass exactly one per clip.")
            if (long_audio_policy or self.long_audio_policy) == "window":
                encoding["clip_index"] = clip_index
                texts = [texts[i] for i in clip_index] if texts is not None else None
                targets = [targets[i] for i in clip_index] if targets is not None else None
            encoding.update(self.extract_features(clips))
        if texts is not None:
            encoding.update(self._tokenize_qformer_text(texts))
        if return_llm_inputs and (texts is not None or targets is not None):
            encoding.update(self._llm_inputs(texts, targets, len(texts if texts is not None else targets)))
        return BatchFeature(encoding, tensor_type=return_tensors)

    @staticmethod
    def _as_text_list(text, name: str) -> list[str] | None:
        if text is None:
            return None
        if isinstance(text, str):
            return [text]
        texts = list(text) if hasattr(text, "__iter__") else None  # lists, tuples, a datasets Column
        if texts is None or not all(isinstance(t, str) for t in texts):
            raise TypeError(f"{name} must be a string or a list of strings, got {type(text).__name__}.")
        return texts

    def load_audio(self, audio: AudioInput | Sequence[AudioInput], sampling_rate: int | float | None = None,
                   names: Sequence[str] | None = None) -> list[np.ndarray]:
        """
        Decodes, checks, mixes to mono and resamples each clip (see [`audio_io_mint.decode_clips`]); returns 1-D
        float32 arrays at `self.sampling_rate`. `names` say what each clip is in the caller's terms (a dataset row, a
        pipeline input) for error messages.
        """
        return decode_clips(audio, self.sampling_rate, sampling_rate, names, require_min_length=not self._fixed_length)

    def _apply_length_policy(self, clips: list[np.ndarray], policy: str) -> tuple[list[np.ndarray], list[int]]:
        if policy not in LONG_AUDIO_POLICIES:
            raise ValueError(f"long_audio_policy must be one of {LONG_AUDIO_POLICIES}, got {policy!r}.")
        limit = int(self.max_audio_seconds * self.sampling_rate)
        out, clip_index = [], []
        for index, clip in enumerate(clips):
            if clip.shape[0] <= limit:
                out.append(clip)
                clip_index.append(index)
            elif policy == "crop":
                notice = (f"audio clip {index} lasts {clip.shape[0] / self.sampling_rate:.1f} s; cropped to its "
                          f"first {self.max_audio_seconds} s (use long_audio_policy='window' to keep it all).")
                collectors = getattr(_CROP_NOTICES, "collectors", None)
                if collectors:
                    collectors[-1].append(notice)
                else:
                    logger.warning(notice)
                out.append(clip[:limit])
                clip_index.append(index)
            else:
                windows = [clip[start:end] for start, end in self._window_spans(clip.shape[0])]
                out.extend(windows)
                clip_index.extend([index] * len(windows))
        return out, clip_index

    def _window_spans(self, num_samples: int) -> list[tuple[int, int]]:
        limit = int(self.max_audio_seconds * self.sampling_rate)
        spans = [(start, min(start + limit, num_samples)) for start in range(0, num_samples, limit)]
        if len(spans) > 1 and spans[-1][1] - spans[-1][0] < MIN_CLIP_SECONDS * self.sampling_rate:
            spans[-2] = (num_samples - limit, num_samples)  # a tail too short for the encoder: end on a full window
            spans.pop()
        return spans

    def window_bounds(self, num_samples: int) -> list[tuple[float, float]]:
        """`(start, end)` in seconds of the windows that `long_audio_policy="window"` cuts a clip of `num_samples`
        samples (at `sampling_rate`) into."""
        rate = self.sampling_rate
        return [(start / rate, end / rate) for start, end in self._window_spans(num_samples)]

    def extract_features(self, clips: list[np.ndarray]) -> dict[str, Any]:
        """
        The encoder's inputs for decoded clips (mono float arrays at the processor's rate): its input name
        (`input_values` `(batch, samples)` or `input_features` `(batch, mel_bins, frames)`) and `audio_attention_mask`,
        padded to the longest clip (Whisper: to its fixed 30 s window), as numpy arrays.
        """
        features = self.feature_extractor(
            clips, sampling_rate=self.sampling_rate, padding="longest" if not self._fixed_length else "max_length",
            return_attention_mask=True, return_tensors="np",
        )
        name = self.feature_extractor.model_input_names[0]
        return {name: features[name], "audio_attention_mask": features["attention_mask"]}

    @property
    def _fixed_length(self) -> bool:
        # Whisper's encoder takes a fixed 30 s window of log-mel frames.
        return hasattr(self.feature_extractor, "n_samples")

    def _tokenize_qformer_text(self, texts: list[str]) -> dict[str, Any]:
        qformer = self.qformer_tokenizer(texts, padding="longest", truncation=False)["input_ids"]
        if any(len(ids) > self.max_text_length for ids in qformer):
            logger.warning_once(f"Some texts are longer than max_text_length={self.max_text_length} Q-Former tokens "
                                "and are truncated.")
        qformer = self.qformer_tokenizer(texts, padding="longest", truncation=True, max_length=self.max_text_length,
                                         return_tensors="np", return_token_type_ids=False)
        return {"qformer_input_ids": qformer["input_ids"], "qformer_attention_mask": qformer["attention_mask"]}

    def _llm_inputs(self, texts: list[str] | None, targets: list[str] | None, batch: int) -> dict[str, Any]:
        """
        `input_ids` / `attention_mask`: `num_query_tokens` audio placeholders, then the text (and, for a decoder-only
        LLM, the target with end-of-sequence); `labels`: the targets with end-of-sequence, -100 elsewhere.
        """
        prompts = self.tokenizer(texts)["input_ids"] if texts is not None else [[] for _ in range(batch)]
        rows = [[self.audio_token_id] * self.num_query_tokens + ids for ids in prompts]
        encoding = {}
        if targets is not None:
            answers = self._tokenize_with_eos(targets)
            if self.decoder_only_llm:
                label_rows = [[-100] * len(row) + answer for row, answer in zip(rows, answers)]
                rows = [row + answer for row, answer in zip(rows, answers)]
                encoding["labels"] = _pad(label_rows, -100, "left")
            else:
                encoding["labels"] = _pad(answers, -100, "right")
        side = "left" if self.decoder_only_llm else "right"
        encoding["input_ids"] = _pad(rows, self._pad_id, side)
        encoding["attention_mask"] = _pad([[1] * len(row) for row in rows], 0, side)
        return encoding

    @property
    def _pad_id(self) -> int:
        return self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0

    def _tokenize_with_eos(self, texts: list[str]) -> list[list[int]]:
        """Tokens without the tokenizer's own special tokens, then end-of-sequence."""
        eos = [self.tokenizer.eos_token_id] if self.tokenizer.eos_token_id is not None else []
        return [ids + eos for ids in self.tokenizer(texts, add_special_tokens=False)["input_ids"]]

    def tokenize_candidates(self, candidates: Sequence[str], return_tensors: str = "pt") -> BatchFeature:
        """Candidate labels for `MintForConditionalGeneration.score_candidates`: `candidate_ids` and
        `candidate_attention_mask`, each with the end-of-sequence token."""
        candidates = check_candidate_labels(candidates, "candidates")
        rows = self._tokenize_with_eos(candidates)
        empty = [(i, candidates[i]) for i, row in enumerate(rows) if not row]
        if empty:
            raise ValueError(f"candidates: the labels at positions {_listing(empty)} tokenize to nothing; expected "
                             "labels with text.")
        return BatchFeature({"candidate_ids": _pad(rows, self._pad_id, "right"),
                             "candidate_attention_mask": _pad([[1] * len(r) for r in rows], 0, "right")},
                            tensor_type=return_tensors)

    def apply_chat_template(self, conversation: list[dict] | list[list[dict]], chat_template: str | None = None, *,
                            add_generation_prompt: bool = False, continue_final_message: bool = False,
                            tokenize: bool = True, return_dict: bool = True, return_tensors: str | None = "pt",
                            processor_kwargs: dict | None = None, **kwargs) -> str | list[str] | BatchFeature:
        """
        Chat-style input, as transformers' audio LLMs take it (`ProcessorMixin.apply_chat_template`'s keywords): one
        conversation (a list of messages `{"role": "user", "content": [{"type": "audio", "audio": clip}, {"type":
        "text", "text": "..."}]}`, the clip in any form `__call__` takes, or a file or URL under `"path"` or `"url"`)
        or a list of conversations, one per clip. Each conversation holds exactly one audio item.

        The prompt is rendered by the processor's chat template (`chat_template`, default [`DEFAULT_CHAT_TEMPLATE`]:
        the message texts joined by spaces), with `add_generation_prompt`, `continue_final_message` and any keyword
        argument that the template uses. `tokenize=False` returns the prompt (a string, or one per conversation).
        Otherwise, as Voxtral's processor by default, the result is what `__call__(audio=clips, text=prompts, ...)`
        returns (`return_dict=False`: its `input_ids`). `processor_kwargs` and the other keyword arguments
        (`sampling_rate`, `long_audio_policy`, ...) go to `__call__`, which refuses unknown ones.
        """
        import jinja2  # transformers' chat templates need it, as an optional requirement
        from jinja2 import meta

        clips = read_conversations(conversation)
        template = self._resolve_chat_template(chat_template)
        variables = meta.find_undeclared_variables(jinja2.Environment().parse(template))
        template_kwargs = {key: value for key, value in kwargs.items() if key in variables}
        call_kwargs = {**(processor_kwargs or {}), **{k: v for k, v in kwargs.items() if k not in variables}}
        if not tokenize:  # `__call__` does not run, so check here what it would refuse
            takes = inspect.signature(type(self).__call__).parameters.keys() - {"self", "audio", "text", "kwargs"}
            unknown = sorted(call_kwargs.keys() - takes)
            if unknown:
                raise TypeError(f"MintProcessor.apply_chat_template got unexpected keyword argument(s) {unknown}; "
                                f"it takes the chat template's variables and what __call__ takes: {sorted(takes)}.")
        prompt = super().apply_chat_template(conversation, template, add_generation_prompt=add_generation_prompt,
                                             continue_final_message=continue_final_message, tokenize=False,
                                             **template_kwargs)
        if not tokenize:
            return prompt
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        tensors = "pt" if return_tensors == "auto" else return_tensors
        out = self(audio=clips, text=prompts if any(prompts) else None, return_tensors=tensors, **call_kwargs)
        return out if return_dict else out["input_ids"]

    def batch_decode(self, *args, **kwargs) -> list[str]:
        """Decodes generated LLM ids (`skip_special_tokens=True` by default)."""
        kwargs.setdefault("skip_special_tokens", True)
        return self.tokenizer.batch_decode(*args, **kwargs)

    def decode(self, *args, **kwargs) -> str:
        kwargs.setdefault("skip_special_tokens", True)
        return self.tokenizer.decode(*args, **kwargs)

    @property
    def model_input_names(self) -> list[str]:
        return [self.feature_extractor.model_input_names[0], "audio_attention_mask", "qformer_input_ids",
                "qformer_attention_mask", "input_ids", "attention_mask"]


def embedding_processor(processor: MintProcessor) -> MintProcessor:
    """
    The processor of a stage-1 (embedding) model: its tokenizer is the Q-Former's, the only text such a model reads,
    and a bare call of its feature extractor returns the audio alone (`MintProcessor` asks for the padding mask
    itself). So transformers' `zero-shot-audio-classification` pipeline, which loads a folder's tokenizer and feature
    extractor and calls the model with both outputs, runs it unchanged. The other settings are `processor`'s.
    """
    feature_extractor = copy.deepcopy(processor.feature_extractor)
    feature_extractor.return_attention_mask = False
    return MintProcessor(feature_extractor, copy.deepcopy(processor.qformer_tokenizer), processor.qformer_tokenizer,
                         max_text_length=processor.max_text_length, min_audio_seconds=processor.min_audio_seconds,
                         max_audio_seconds=processor.max_audio_seconds, long_audio_policy=processor.long_audio_policy,
                         num_query_tokens=processor.num_query_tokens, audio_token=processor.audio_token,
                         decoder_only_llm=processor.decoder_only_llm, chat_template=processor.chat_template)


# transformers' pipeline tasks that generate text with the LLM and load the folder's processor through
# `AutoProcessor` (so `MintProcessor.from_pretrained` sees the task): a stage-1 folder, with no LLM, cannot serve them.
GENERATION_TASKS = ("any-to-any",)


def check_pipeline_stage(folder: str | os.PathLike, task: str | None) -> None:
    """
    Refuses a local stage-1 MINT `folder` (saved from `MintForPreTraining` or `MintModel`) for a generation `task`
    (one of `GENERATION_TASKS`) with a `ValueError` that names the stage-2 route; other folders and tasks pass.
    """
    config = read_folder_config(folder)
    architecture = (config.get("architectures") or [None])[0] if config is not None else None
    if task in GENERATION_TASKS and STAGE_OF_ARCHITECTURE.get(architecture) == 1:
        raise ValueError(f"pipeline({task!r}) needs a stage-2 MINT folder (MintForConditionalGeneration, with a "
                         f"trained LLM): {os.fspath(folder)!r} was saved from the stage-1 {architecture}, which "
                         "stores no LLM and no projection to it. Train stage 2 from this folder (`mint recipe stage2`) "
                         "and use the result; a stage-1 folder serves pipeline('zero-shot-audio-classification').")


def save_embedding_processor(processor: MintProcessor, folder: str | os.PathLike, *args, **kwargs) -> list[str]:
    """
    Writes the processor of a stage-1 model folder: [`embedding_processor`]`(processor)`, which transformers'
    `zero-shot-audio-classification` pipeline reads, and `processor`'s LLM tokenizer in `llm_tokenizer/`, where
    `MintProcessor.from_pretrained` finds it again. `args` and `kwargs` go to `ProcessorMixin.save_pretrained`; returns
    what it returns.
    """
    saved = ProcessorMixin.save_pretrained(embedding_processor(processor), folder, *args, **kwargs)
    processor.tokenizer.save_pretrained(os.path.join(os.fspath(folder), LLM_TOKENIZER_FOLDER))
    return saved


def is_blank_text(text: str) -> bool:
    """Whether `text` holds nothing to read: empty, whitespace, or format characters such as a zero-width space (which
    are neither whitespace nor printable)."""
    return not any(char.isprintable() and not char.isspace() for char in text)


def check_candidate_labels(candidates: Sequence[str], name: str = "candidate_labels") -> list[str]:
    """
    The candidate labels of a ranking as a list, checked: at least one, each a string with text, no label twice (as
    compared without surrounding whitespace). An empty or whitespace-only label would tokenize to the end-of-sequence
    token alone and outscore the real ones, a repeated one split its score; both are refused with their positions in
    `candidates`. `name` is how the caller's messages call them (an argument, a command-line option).
    """
    if isinstance(candidates, (str, bytes)) or not hasattr(candidates, "__iter__"):
        raise TypeError(f"{name} must be a list of label names, got {type(candidates).__name__} {candidates!r:.100}.")
    labels = list(candidates)
    if not labels:
        raise ValueError(f"{name} is empty; expected at least one label.")
    not_text = [(i, label) for i, label in enumerate(labels) if not isinstance(label, str)]
    if not_text:
        raise TypeError(f"{name}: the labels at positions {_listing(not_text)} are not strings; expected label names.")
    blank = [(i, label) for i, label in enumerate(labels) if is_blank_text(label)]
    if blank:
        raise ValueError(f"{name}: the labels at positions {_listing(blank)} are empty or whitespace only (or hold "
                         "only invisible characters); expected label text (a stray comma in a comma-separated list "
                         "leaves an empty label).")
    positions: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        positions.setdefault(label.strip(), []).append(i)
    repeated = [f"{label!r} at positions {where}" for label, where in positions.items() if len(where) > 1]
    if repeated:
        raise ValueError(f"{name}: repeated labels, {'; '.join(repeated)}; expected each label once.")
    return labels


def _listing(items: list[tuple[int, Any]]) -> str:
    """`[(position, value), ...]` as "1 ('x'), 3 (2)" for messages (the first ten)."""
    shown = ", ".join(f"{i} ({value!r:.50})" for i, value in items[:10])
    return shown + (f" and {len(items) - 10} more" if len(items) > 10 else "")


def read_conversations(conversation: list[dict] | list[list[dict]]) -> list[Any]:
    """
    The audio clip of each conversation of chat-style input (see [`MintProcessor.apply_chat_template`]): one
    conversation (a list of messages) or a list of them. Returns one clip per conversation: its one audio item's
    `"audio"`, else its file (`"path"`), else its `"url"` (or Qwen2-Audio's `"audio_url"`) read as bytes. Refused,
    naming the conversation, message and item: a conversation that is not a list (a dict: one message not wrapped in
    a list), a message whose content is neither a string nor a list of items, an item without a `type` or of a type
    other than `"audio"` and `"text"`, an audio item without its clip, a text item without its string, and a
    conversation without exactly one audio item, and a message without a role of `CHAT_ROLES`.
    """
    if isinstance(conversation, dict):
        raise TypeError("A conversation is a list of messages [{'role': ..., 'content': [...]}, ...]; got a dict"
                        + (" (one message: wrap it in a list)" if "content" in conversation else "") + ".")
    if not isinstance(conversation, (list, tuple)) or not conversation:
        raise TypeError(f"Expected a conversation (a non-empty list of messages) or a list of them; got "
                        f"{conversation!r:.100}.")
    conversations = [conversation] if isinstance(conversation[0], dict) else conversation
    audio = []
    for index, messages in enumerate(conversations):
        if not isinstance(messages, (list, tuple)):
            raise TypeError(f"Conversation {index} is a {type(messages).__name__}; expected a list of messages "
                            "[{'role': ..., 'content': [...]}, ...].")
        clips = []
        for number, message in enumerate(messages):
            if isinstance(message, dict) and message.get("role") not in CHAT_ROLES:
                found = "none (no 'role' key)" if "role" not in message else f"{message['role']!s:.50}"
                raise ValueError(f"Conversation {index}, message {number}: MINT chat messages have the role system, "
                                 f"user or assistant; got {found}.")
            for position, item in enumerate(_content_items(message, f"Conversation {index}, message {number}")):
                where = f"Conversation {index}, message {number}, item {position}"
                kind = item.get("type")
                if kind == "audio":
                    clips.append(_audio_item(item, where))
                elif kind == "text":
                    if not isinstance(item.get("text"), str):
                        raise ValueError(f"{where}: a text item needs its string under 'text'; got {item!r:.200}.")
                else:
                    found = "has no 'type'" if "type" not in item else f"has type {kind!r}"
                    raise ValueError(f"{where} {found}; MINT reads items of type 'audio' and 'text' (got "
                                     f"{item!r:.200}).")
        if len(clips) != 1:
            raise ValueError(f"Conversation {index} holds {len(clips)} audio items; expected exactly one.")
        audio.append(clips[0])
    return audio


def _audio_item(item: dict, where: str) -> Any:
    """The clip of one audio item (`where` names it): its `"audio"`, its file (`"path"`), or the bytes at its URL
    (`"url"`, Qwen2-Audio's `"audio_url"`, or a `"path"` that is a URL, as transformers reads them); a `"url"` or
    `"audio_url"` that names an existing local file is that file."""
    if item.get("audio") is not None:
        return item["audio"]
    path = item.get("path")
    if path is not None and not (isinstance(path, str) and "://" in path):
        return path
    url = next((item[key] for key in ("path", "url", "audio_url") if item.get(key) is not None), None)
    if url is None:
        raise ValueError(f"{where}: an audio item needs its clip under 'audio' (or a file under 'path', or a URL "
                         f"under 'url'); got keys {sorted(item)}.")
    if isinstance(url, (str, os.PathLike)) and "://" not in os.fspath(url) and os.path.isfile(url):
        return os.fspath(url)  # a local file, as the Qwen2-Audio and Voxtral snippets may give under 'audio_url'
    if not isinstance(url, str) or "://" not in url:
        raise ValueError(f"{where}: a URL such as 'https://...' or 'file:///...', or an existing local file, was "
                         f"expected; got {url!r:.200}.")
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return {"bytes": response.read(), "path": url}
    except (OSError, ValueError) as error:
        raise OSError(f"{where}: could not read the audio at {url!r}: {error}.") from error


def _content_items(message: dict, where: str) -> list[dict]:
    """The content items of one chat message (`where` names it); a plain string content is one text item."""
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list) or not all(isinstance(item, dict) for item in content):
        raise ValueError(f"{where}: each message needs a 'content' list of {{'type': 'audio' | 'text', "
                         f"...}} items; got {message!r:.200}.")
    return content


def mean_over_windows(values: torch.Tensor, clip_index: torch.Tensor, num_clips: int) -> torch.Tensor:
    """
    One result per clip from one per window: `values` `(windows, ...)` averaged over each clip's windows, `(num_clips,
    ...)`. `clip_index` `(windows,)` gives the clip of each window, as [`MintProcessor`] returns it with
    `long_audio_policy="window"` (a clip that was not cut is one window of its own).
    """
    clip_index = clip_index.to(values.device)
    total = values.new_zeros((num_clips, *values.shape[1:])).index_add_(0, clip_index, values)
    counts = torch.bincount(clip_index, minlength=num_clips).to(values.dtype)
    return total / counts.view(-1, *[1] * (values.dim() - 1))


def _pad(rows: list[list[int]], value: int, side: str) -> np.ndarray:
    """Rows of token ids padded with `value` on `side` to the longest, as an `(rows, longest)` int64 array."""
    width = max(len(row) for row in rows)
    padded = [[value] * (width - len(row)) + row if side == "left" else row + [value] * (width - len(row))
              for row in rows]
    return np.array(padded, dtype=np.int64).reshape(len(rows), width)


MintProcessor.register_for_auto_class()
AutoProcessor.register(MintConfig, MintProcessor, exist_ok=True)

__all__ = [
    "DEFAULT_CHAT_TEMPLATE",
    "GENERATION_TASKS",
    "LLM_TOKENIZER_FOLDER",
    "MintProcessor",
    "check_candidate_labels",
    "check_pipeline_stage",
    "collected_crop_notices",
    "embedding_processor",
    "is_blank_text",
    "mean_over_windows",
    "read_conversations",
    "save_embedding_processor",
]
