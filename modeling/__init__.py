"""The models. Each family is one flat ``configuration_<name>.py`` + ``modeling_<name>.py`` pair (plus the
shared ``attention.py``) that imports only the standard library, torch, transformers and same-folder
modules, because ``save_pretrained`` copies exactly these files into a checkpoint for
``trust_remote_code=True`` users who do not have w2vformer installed.

This ``__init__`` is *not* shipped to the Hub. It holds the registry that ``import w2vformer`` uses to
register every class with the transformers Auto classes.
"""

from __future__ import annotations

import importlib

# model_type -> (configuration module, config class, {Auto class name: (modeling module, model class)})
# Each family adds its own entry.
AUTO_CLASSES: dict[str, tuple[str, str, dict[str, tuple[str, str]]]] = {
    "w2vformer_word2vec": ("configuration_word2vec", "Word2VecConfig", {"AutoModel": ("modeling_word2vec", "Word2VecModel")}),
    "w2vformer_decoder": ("configuration_decoder", "DecoderConfig", {"AutoModel": ("modeling_decoder", "DecoderModel"), "AutoModelForCausalLM": ("modeling_decoder", "DecoderForCausalLM")}),
    "w2vformer_seq2seq": ("configuration_seq2seq", "Seq2SeqConfig", {"AutoModel": ("modeling_seq2seq", "Seq2SeqModel"), "AutoModelForSeq2SeqLM": ("modeling_seq2seq", "Seq2SeqForConditionalGeneration")}),
    "w2vformer_encoder": ("configuration_encoder", "EncoderConfig", {"AutoModel": ("modeling_encoder", "EncoderModel"), "AutoModelForMaskedLM": ("modeling_encoder", "EncoderForMaskedLM"), "AutoModelForSequenceClassification": ("modeling_encoder", "EncoderForSequenceClassification"), "AutoModelForTokenClassification": ("modeling_encoder", "EncoderForTokenClassification")}),
}


def _load(module: str, name: str):
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


def register_auto_classes() -> None:
    """Register every config and model class with AutoConfig / AutoModel* (idempotent).

    Also calls ``register_for_auto_class`` so ``save_pretrained`` writes the remote code and an ``auto_map``.
    """
    import transformers

    for model_type, (config_module, config_name, models) in AUTO_CLASSES.items():
        config_cls = _load(config_module, config_name)
        transformers.AutoConfig.register(model_type, config_cls, exist_ok=True)
        config_cls.register_for_auto_class()
        for auto_name, (model_module, model_name) in models.items():
            model_cls = _load(model_module, model_name)
            getattr(transformers, auto_name).register(config_cls, model_cls, exist_ok=True)
            model_cls.register_for_auto_class(auto_name)
