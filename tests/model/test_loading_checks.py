"""What loading checks: the class a folder is loaded as, missing or non-finite weights, base folders' content, and the
audio padding mask."""

import copy
import json
import logging
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModel, AutoModelForPreTraining, AutoModelForSpeechSeq2Seq

from tests.utils import tiny
from checkpoint_mint import HEADS_OF_ARCHITECTURE, folder_sha256
from mint.hub import save_for_hub
from modeling_mint import MintForConditionalGeneration, MintForPreTraining, MintModel
from tests.utils.audio import clips


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """One saved folder per MINT class, with the stage-2 model's base folders, and the models saved."""
    root = tmp_path_factory.mktemp("folders")
    models = {"stage2": tiny.captioning_model(), "stage1": MintForPreTraining(tiny.mint_config()).eval(),
              "headless": MintModel(tiny.mint_config()).eval()}
    for name, model in models.items():
        model.save_pretrained(root / name)
    models["stage2"].audio_model.save_pretrained(root / "base-audio")
    models["stage2"].language_model.save_pretrained(root / "base-llm")
    save_for_hub(models["stage2"], tiny.processor(), root / "parts", trained_parts_only=True,
                 base_models={"audio_model": str(root / "base-audio"), "language_model": str(root / "base-llm")})
    return root, models


def copy_folder(folders, name, tmp_path, drop=None, poison=None):
    """A copy of a saved folder, without the weights under the prefix `drop`, or with NaN in the weight `poison`."""
    folder = tmp_path / name
    shutil.copytree(folders[0] / name, folder)
    weights = load_file(folder / "model.safetensors")
    if drop is not None:
        weights = {k: v for k, v in weights.items() if k != drop and not k.startswith(drop + ".")}
    if poison is not None:
        weights[poison] = weights[poison].clone().view(-1).index_fill(0, torch.tensor([0]), float("nan")).view(
            weights[poison].shape)
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    return folder


def caption_inputs():
    return tiny.processor()(audio=clips((16000, 12000)), text=["generate audio caption :"] * 2, sampling_rate=16000)


@pytest.mark.parametrize("loader", [AutoModel, MintModel])
def test_automodel_of_a_stage2_folder_is_the_model_that_captions(folders, loader):
    model = loader.from_pretrained(folders[0] / "stage2").eval()
    assert type(model) is MintForConditionalGeneration
    batch = caption_inputs()
    with torch.no_grad():
        assert torch.equal(model.generate(**batch, **tiny.WORDS), folders[1]["stage2"].generate(**batch, **tiny.WORDS))
    labels = tiny.processor().tokenize_candidates(["dog", "cat"])
    scores = model.score_candidates(labels["candidate_ids"], labels["candidate_attention_mask"], **batch)
    assert scores.shape == (2, 2) and bool(torch.isfinite(scores).all())


def test_automodel_of_a_stage1_folder_stays_the_embedding_model(folders):
    assert type(AutoModel.from_pretrained(folders[0] / "stage1")) is MintModel
    assert type(AutoModel.from_pretrained(folders[0] / "headless")) is MintModel
    assert type(MintForPreTraining.from_pretrained(folders[0] / "stage1")) is MintForPreTraining


def test_stage2_starts_from_a_stage1_folder_with_a_new_projection_and_llm(folders):
    model, info = MintForConditionalGeneration.from_pretrained(folders[0] / "stage1", output_loading_info=True)
    assert not info["missing_keys"]
    assert torch.equal(model.query_tokens, folders[1]["stage1"].query_tokens)


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.mark.parametrize("base_llm", [False, True])
def test_stage2_from_a_stage1_folder_says_what_is_new_in_one_line(folders, tmp_path, base_llm):
    """The expected load printed transformers' "checkpoint seem corrupted" warning for every tie of the LLM it
    builds anew: one line names the new parts, and nothing reads as a broken checkpoint."""
    folder = folders[0] / "stage1"
    if base_llm:
        folder = tmp_path / "stage1"
        shutil.copytree(folders[0] / "stage1", folder)
        config = json.loads((folder / "config.json").read_text())
        config["base_models"] = {"language_model": str(folders[0] / "base-llm")}
        (folder / "config.json").write_text(json.dumps(config))
    records = _Records()
    loggers = [logging.getLogger("transformers"), logging.getLogger()]  # transformers' loggers do not propagate
    for logger in loggers:
        logger.addHandler(records)
    try:
        model = MintForConditionalGeneration.from_pretrained(folder)
    finally:
        for logger in loggers:
            logger.removeHandler(records)
    shown = [m for m in records.messages if "Loading weights" not in m]
    assert len(shown) == 1, shown
    assert shown[0].startswith(f"Stage 2 from the stage-1 folder {str(folder)!r}: its audio encoder and Q-Former")
    assert "new: the projection to the LLM (language_projection)" in shown[0]
    assert ("the LLM from" in shown[0]) is base_llm
    assert ("and the LLM, built from its config" in shown[0]) is not base_llm
    assert not [m for m in records.messages if "corrupted" in m or "MISSING" in m or "LOAD REPORT" in m]
    # The LLM's ties are those of a model built from its config; a base LLM is loaded as it was saved.
    llm = model.language_model
    assert llm.encoder.embed_tokens.weight is llm.shared.weight and llm.decoder.embed_tokens.weight is llm.shared.weight
    if base_llm:
        assert torch.equal(llm.shared.weight, folders[1]["stage2"].language_model.shared.weight)


def test_the_heads_of_each_class_are_its_parts_beside_bridge_net(folders):
    bridge = {"audio_model", "audio_layernorm", "query_tokens", "qformer"}
    for model in folders[1].values():
        parts = {key.split(".")[0] for key in model.state_dict()}
        assert parts - bridge == HEADS_OF_ARCHITECTURE[type(model).__name__]


@pytest.mark.parametrize("name, drop, loader, words", [
    ("stage2", None, MintForPreTraining,
     ["'audio_proj'", "'temp'", "'text_proj'", "of MintForPreTraining", "saved from MintForConditionalGeneration",
      "stage 2", "MintForConditionalGeneration.from_pretrained", "stage-1 folder"]),
    ("stage2", None, AutoModelForPreTraining, ["'audio_proj'", "saved from MintForConditionalGeneration"]),
    ("headless", None, MintForPreTraining, ["'alm_head'", "'atg_head'", "saved from MintModel",
                                            "MintModel.from_pretrained"]),
    ("headless", None, AutoModelForPreTraining, ["'alm_head'", "'atg_head'", "saved from MintModel"]),
    ("stage1", "query_tokens", MintModel, ["['query_tokens']", "of MintModel", "incomplete"]),
    ("stage1", "query_tokens", MintForConditionalGeneration, ["['query_tokens']", "of MintForConditionalGeneration"]),
    ("stage1", "audio_proj", AutoModel, ["['audio_proj']", "randomly initialised", "incomplete"]),
    ("stage1", "temp", MintForPreTraining, ["['temp']", "incomplete (['temp'] not stored)"]),
    ("headless", "qformer", MintForPreTraining, ["['alm_head', 'atg_head', 'qformer']", "saved from MintModel",
                                                 "which has no ['alm_head', 'atg_head']", "incomplete (['qformer']"]),
    ("stage1", "qformer", AutoModelForPreTraining, ["'qformer'", "incomplete"]),
    ("stage2", "query_tokens", AutoModel, ["['query_tokens']", "of MintForConditionalGeneration"]),
    ("stage2", "language_projection", AutoModelForSpeechSeq2Seq, ["['language_projection']", "incomplete"]),
    ("stage2", "qformer", MintForConditionalGeneration, ["['qformer']", "randomly initialised"]),
    ("stage2", "language_model", MintForConditionalGeneration, ["['language_model']"]),
    ("stage2", "audio_model", MintForConditionalGeneration, ["['audio_model']"]),
])
def test_a_folder_without_weights_the_class_needs_is_refused(folders, tmp_path, name, drop, loader, words):
    folder = copy_folder(folders, name, tmp_path, drop=drop)
    with pytest.raises(ValueError) as error:
        loader.from_pretrained(folder)
    assert all(word in str(error.value) for word in [repr(str(folder))] + words), str(error.value)


@pytest.mark.parametrize("name, poison, loader", [
    ("stage2", "query_tokens", AutoModel),
    ("stage2", "language_projection.weight", MintForConditionalGeneration),
    ("stage2", "language_model.shared.weight", AutoModelForSpeechSeq2Seq),
    ("stage1", "temp", MintModel),
    ("stage1", "qformer.encoder.layer.0.attention.attention.query.weight", AutoModelForPreTraining),
    ("stage1", "audio_model.feature_projection.projection.weight", MintForConditionalGeneration),
])
def test_non_finite_weights_in_a_folder_are_refused_by_name(folders, tmp_path, name, poison, loader):
    folder = copy_folder(folders, name, tmp_path, poison=poison)
    with pytest.raises(ValueError) as error:
        loader.from_pretrained(folder)
    assert all(word in str(error.value) for word in [repr(str(folder)), poison, "NaN or infinite"]), str(error.value)


def _cut(file):
    file.write_bytes(file.read_bytes()[: file.stat().st_size // 2])


def _pickle_named_safetensors(file):
    torch.save({"x": torch.zeros(2)}, file)


@pytest.mark.parametrize("name, damage, loader, words", [
    ("stage1", _cut, MintForPreTraining, ["is not a complete safetensors file", "copy or download it again"]),
    ("stage2", _cut, AutoModel, ["is not a complete safetensors file"]),
    ("stage2", _pickle_named_safetensors, MintForConditionalGeneration, ["is not a complete safetensors file"]),
    ("headless", lambda file: file.write_bytes(b""), MintModel, ["is not a complete safetensors file"]),
])
def test_a_weights_file_cut_short_or_not_safetensors_is_refused_by_name(folders, tmp_path, name, damage, loader,
                                                                        words):
    folder = copy_folder(folders, name, tmp_path)
    damage(folder / "model.safetensors")
    with pytest.raises(OSError) as error:
        loader.from_pretrained(folder)
    assert all(word in str(error.value) for word in [repr(str(folder / "model.safetensors"))] + words), \
        str(error.value)


def base_copies(folders, tmp_path, audio=None, llm=None):
    """Copies of the parts-only folder's base folders, the LLM's or audio encoder's replaced by `llm` / `audio`."""
    bases = {}
    for part, name, replacement in (("audio_model", "base-audio", audio), ("language_model", "base-llm", llm)):
        bases[part] = str(tmp_path / name)
        if replacement is None:
            shutil.copytree(folders[0] / name, bases[part])
        else:
            replacement.save_pretrained(bases[part])
    return bases


def other_llm():
    torch.manual_seed(1)
    return MintForConditionalGeneration(tiny.mint_config()).language_model


def other_audio_encoder():
    torch.manual_seed(1)
    return MintForConditionalGeneration(tiny.mint_config()).audio_model


def poisoned_llm(folders):
    llm = MintForConditionalGeneration(tiny.mint_config()).language_model
    llm.load_state_dict(folders[1]["stage2"].language_model.state_dict())
    with torch.no_grad():
        llm.shared.weight[0, 0] = float("inf")
    return llm


@pytest.mark.parametrize("replace, words", [
    (lambda folders: dict(llm=other_llm()),
     ["language_model", "base-llm", "SHA-256", "holds other weights", "base_models={'language_model'"]),
    (lambda folders: dict(audio=other_audio_encoder()), ["audio_model", "base-audio", "SHA-256"]),
    (lambda folders: dict(llm=poisoned_llm(folders)), ["language_model", "base-llm"]),
])
def test_a_base_folder_whose_weights_changed_is_refused(folders, tmp_path, replace, words):
    bases = base_copies(folders, tmp_path, **replace(folders))
    part = "language_model" if "language_model" in words else "audio_model"
    recorded = json.loads((folders[0] / "parts" / "config.json").read_text())["base_model_hashes"][part]
    found = folder_sha256(bases[part])
    with pytest.raises(ValueError) as error:
        MintForConditionalGeneration.from_pretrained(folders[0] / "parts", base_models=bases)
    assert all(word in str(error.value) for word in [recorded, found, bases[part]] + words), str(error.value)


def test_a_base_folder_with_non_finite_weights_is_refused_by_name(folders, tmp_path):
    shutil.copytree(folders[0] / "parts", tmp_path / "parts")
    config = json.loads((tmp_path / "parts" / "config.json").read_text())
    del config["base_model_hashes"]  # a folder without recorded hashes: the content is still checked for NaN
    (tmp_path / "parts" / "config.json").write_text(json.dumps(config))
    bases = base_copies(folders, tmp_path, llm=poisoned_llm(folders))
    with pytest.raises(ValueError) as error:
        MintForConditionalGeneration.from_pretrained(tmp_path / "parts", base_models=bases)
    assert all(word in str(error.value) for word in [repr(bases["language_model"]), "shared.weight",
                                                     "NaN or infinite"]), str(error.value)


def test_lora_adapters_with_non_finite_weights_are_refused(folders, tmp_path):
    from mint.training.lora import add_lora

    bases = {"audio_model": str(folders[0] / "base-audio"), "language_model": str(folders[0] / "base-llm")}
    folder = save_for_hub(add_lora(copy.deepcopy(folders[1]["stage2"])), tiny.processor(), tmp_path / "lora",
                          trained_parts_only=True, base_models=bases)
    adapters = tmp_path / "lora" / "adapters" / "adapter_model.safetensors"
    weights = load_file(adapters)
    name = next(key for key in weights if "lora_B" in key)
    weights[name] = torch.full_like(weights[name], float("nan"))
    save_file(weights, adapters, metadata={"format": "pt"})
    with pytest.raises(ValueError) as error:
        MintForConditionalGeneration.from_pretrained(folder)
    assert all(word in str(error.value) for word in [repr(folder), "with its LoRA adapters (adapters/) merged",
                                                     "language_model.", "NaN or infinite"]), str(error.value)


def test_base_folders_with_their_recorded_content_load_and_folders_without_hashes_still_load(folders, tmp_path):
    recorded = json.loads((folders[0] / "parts" / "config.json").read_text())["base_model_hashes"]
    assert recorded == {"audio_model": folder_sha256(folders[0] / "base-audio"),
                        "language_model": folder_sha256(folders[0] / "base-llm")}
    expected = folders[1]["stage2"].state_dict()
    relocated = MintForConditionalGeneration.from_pretrained(folders[0] / "parts",
                                                             base_models=base_copies(folders, tmp_path))
    assert all(torch.equal(relocated.state_dict()[k], v) for k, v in expected.items())
    shutil.copytree(folders[0] / "parts", tmp_path / "old")
    config = json.loads((tmp_path / "old" / "config.json").read_text())
    del config["base_model_hashes"]
    (tmp_path / "old" / "config.json").write_text(json.dumps(config))
    other = tmp_path / "other"
    other.mkdir()
    bases = base_copies(folders, other, llm=other_llm())
    loaded = MintForConditionalGeneration.from_pretrained(tmp_path / "old", base_models=bases)  # nothing to check
    assert not torch.equal(loaded.language_model.lm_head.weight, expected["language_model.lm_head.weight"])


def audio_batch():
    return tiny.processor()(audio=clips((16000, 9000)), sampling_rate=16000)


def zeroed_row(batch, row):
    mask = batch["audio_attention_mask"].clone()
    mask[row] = 0
    return mask


@pytest.mark.parametrize("make_inputs, words", [
    (lambda model, batch: dict(input_values=batch["input_values"], audio_attention_mask=zeroed_row(batch, 1)),
     ["audio_attention_mask of batch item(s) [1]", "all zeros"]),
    (lambda model, batch: dict(input_values=batch["input_values"], audio_attention_mask=zeroed_row(batch, 0)),
     ["batch item(s) [0]"]),
    (lambda model, batch: dict(input_values=batch["input_values"],
                               audio_attention_mask=torch.zeros_like(batch["audio_attention_mask"])),
     ["batch item(s) [0, 1]"]),
    (lambda model, batch: dict(audio_encoder_features=torch.randn(2, 7, 32),
                               audio_attention_mask=torch.tensor([[1] * 7, [0] * 7])),
     ["audio_attention_mask of batch item(s) [1]", "all zeros"]),
    (lambda model, batch: dict(input_values=batch["input_values"], audio_attention_mask=zeroed_row(batch, 1)[:1]),
     ["audio_attention_mask holds 1 rows", "2 clips"]),
])
@pytest.mark.parametrize("model_class", [MintModel, MintForConditionalGeneration])
def test_an_all_padding_audio_mask_row_is_refused_by_batch_item(model_class, make_inputs, words):
    model = model_class(tiny.mint_config()).eval()
    with pytest.raises(ValueError) as error:
        model.get_audio_features(**make_inputs(model, audio_batch()))
    assert all(word in str(error.value) for word in words), str(error.value)


@pytest.mark.parametrize("make_inputs, warns", [
    (lambda batch: dict(input_values=batch["input_values"]), True),
    (lambda batch: dict(audio_encoder_features=torch.cat([torch.randn(2, 5, 32), torch.zeros(2, 2, 32)], 1)), True),
    (lambda batch: dict(input_values=batch["input_values"], audio_attention_mask=batch["audio_attention_mask"]),
     False),
    (lambda batch: dict(input_values=batch["input_values"][:1]), False),  # one clip: nothing is padded
    (lambda batch: dict(input_values=batch["input_values"][:, :9000]), False),  # equal lengths
])
def test_a_padded_batch_without_its_mask_warns_once(caplog, make_inputs, warns):
    logging.Logger.warning_once.cache_clear()
    model = MintModel(tiny.mint_config()).eval()
    inputs = make_inputs(audio_batch())
    with caplog.at_level(logging.WARNING), torch.no_grad():
        model.get_audio_features(**inputs)
        model.get_audio_features(**inputs)
    found = [r.getMessage() for r in caplog.records if "audio_attention_mask" in r.getMessage()]
    assert len(found) == int(warns), found
    if warns:
        assert "look padded" in found[0] and "Pass the audio_attention_mask the processor returns" in found[0]
