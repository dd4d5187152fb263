"""
MINT's toolkit: data, training, evaluation, Hub folders and the demo around the model files (`modeling_mint`, ...).

    from mint import assemble_mint, train, MintRecipe, evaluate_classification, save_for_hub

Each name below is imported from its module on first use, so `import mint` (and `mint --help`) loads no torch.
"""

import importlib
from typing import Any


# Module -> the names `mint` exports from it.
_EXPORTS: dict[str, tuple[str, ...]] = {
    "configuration_mint": ("MintConfig", "MintQFormerConfig"),
    "modeling_mint": ("MintForConditionalGeneration", "MintForPreTraining", "MintModel"),
    "processing_mint": ("MintProcessor",),
    "pipelines_mint": ("HYPOTHESIS_TEMPLATE_SET", "check_label_templates", "content_free_scores",
                       "register_mint_pipelines", "template_text_embeddings"),
    "mint.data.templates": ("INSTRUCTION_TEMPLATES", "InstructionTemplate", "get_template", "register_template"),
    "mint.data.examples": ("load_local_dataset", "mix_datasets", "to_caption_pairs", "to_mint_examples"),
    "mint.data.collator": ("MintDataCollator", "group_id"),
    "mint.data.cache": ("cache_audio_features", "feature_cache_gb_per_hour", "merge_feature_cache"),
    "mint.data.releases": ("PreparedDataset", "prepare_dataset"),
    "mint.evaluation.classification": ("evaluate_classification",),
    "mint.evaluation.few_shot": ("evaluate_few_shot",),
    "mint.evaluation.retrieval": ("evaluate_retrieval",),
    "mint.evaluation.captioning": ("evaluate_captioning",),
    "mint.evaluation.leakage": ("leakage_report",),
    "mint.evaluation.reports": ("markdown_table",),
    "mint.evaluation.caption_metrics": ("compute_caption_metrics",),
    "mint.evaluation.retrieval_index": ("MintRetrievalIndex",),
    "mint.training.recipe": ("MintRecipe", "default_recipe", "load_recipe"),
    "mint.training.lora": ("add_lora",),
    "mint.training.trainer": ("MintTrainer", "load_model", "train"),
    "mint.training.alm": ("AlmScheduleCallback", "alm_pair_accuracy"),
    "mint.training.plan": ("RecipePlan", "plan_recipe"),
    "mint.hub": ("assemble_mint", "eval_results_from_json", "model_card", "save_for_hub", "small_t5_config",
                 "word_level_tokenizer"),
    "mint.demo.corpus": ("CorpusSettings", "build_corpus"),
    "mint.demo.whisper": ("convert_whisper_ctranslate2",),
    "mint.demo.run": ("run_demo",),
    "mint.demo.probe": ("probe_bounds", "probe_encoder"),
    "mint.app": ("build_app", "write_space"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    """Imports an exported name from its module on first access (and keeps it, so the next access is plain)."""
    if name not in _MODULE_OF:
        raise AttributeError(f"module 'mint' has no attribute {name!r}")
    value = getattr(importlib.import_module(_MODULE_OF[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
