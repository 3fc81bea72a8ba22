"""Stock BERT (transformers' ``BertModel`` and heads) <-> our encoder.

    from transformers import BertForMaskedLM
    ours = from_stock(BertForMaskedLM.from_pretrained("bert-base-uncased"))      # EncoderForMaskedLM
    stock = to_stock(ours)                                                        # BertForMaskedLM again

BERT is our encoder with these options: learned absolute positions, token types, a LayerNorm on the
embeddings, no embedding scaling, post-norm, biases everywhere, the pooler (dense + tanh on [CLS]) and the
MLM head transform (dense + activation + LayerNorm before the output projection tied to the embeddings).
The weights are the same numbers under other names: conversion is the rename table below. Each direction
checks key counts and shapes before copying anything.

Supported classes: ``BertModel``, ``BertForMaskedLM``, ``BertForSequenceClassification``,
``BertForTokenClassification`` and our ``EncoderModel``, ``EncoderForMaskedLM``,
``EncoderForSequenceClassification``, ``EncoderForTokenClassification``.
"""

from __future__ import annotations

import re

import torch

from w2vformer.conversion._common import load_checked

__all__ = [
    "RENAMES",
    "ARCHITECTURES",
    "convert_state_dict",
    "config_from_stock",
    "config_to_stock",
    "from_stock",
    "to_stock",
]

# (stock module path, our module path); "{i}" is the layer index. Parameter names (weight, bias) are kept.
# Backbone paths sit under "bert." in stock heads and under "model." in ours; head paths have no prefix.
BACKBONE_RENAMES: list[tuple[str, str]] = [
    ("embeddings.word_embeddings", "embeddings.embed_tokens"),
    ("embeddings.position_embeddings", "embeddings.embed_positions"),
    ("embeddings.token_type_embeddings", "embeddings.embed_token_types"),
    ("embeddings.LayerNorm", "embeddings.layer_norm"),
    ("encoder.layer.{i}.attention.self.query", "layers.{i}.self_attn.q_proj"),
    ("encoder.layer.{i}.attention.self.key", "layers.{i}.self_attn.k_proj"),
    ("encoder.layer.{i}.attention.self.value", "layers.{i}.self_attn.v_proj"),
    ("encoder.layer.{i}.attention.output.dense", "layers.{i}.self_attn.o_proj"),
    ("encoder.layer.{i}.attention.output.LayerNorm", "layers.{i}.self_attn_layer_norm"),
    ("encoder.layer.{i}.intermediate.dense", "layers.{i}.mlp.fc1"),
    ("encoder.layer.{i}.output.dense", "layers.{i}.mlp.fc2"),
    ("encoder.layer.{i}.output.LayerNorm", "layers.{i}.mlp_layer_norm"),
    ("pooler.dense", "pooler.dense"),
]
HEAD_RENAMES: list[tuple[str, str]] = [
    ("cls.predictions.transform.dense", "lm_head.dense"),
    ("cls.predictions.transform.LayerNorm", "lm_head.layer_norm"),
    ("cls.predictions.decoder", "lm_head.out_proj"),
    ("classifier", "classifier"),
]
RENAMES = BACKBONE_RENAMES + HEAD_RENAMES
STOCK_PREFIX, OUR_PREFIX = "bert.", "model."
# BERT keeps the MLM output bias twice (tied): "cls.predictions.bias" and "cls.predictions.decoder.bias".
STOCK_MLM_BIAS = "cls.predictions.bias"
# buffers that older BERT checkpoints saved in their state dict; recomputed, never converted
STOCK_BUFFERS = ("embeddings.position_ids", "embeddings.token_type_ids")

ARCHITECTURES = {  # stock class -> our class
    "BertModel": "EncoderModel",
    "BertForMaskedLM": "EncoderForMaskedLM",
    "BertForSequenceClassification": "EncoderForSequenceClassification",
    "BertForTokenClassification": "EncoderForTokenClassification",
}


def _compile(table: list[tuple[str, str]], reverse: bool) -> list[tuple[re.Pattern, str]]:
    rules = []
    for stock, ours in table:
        source, target = (ours, stock) if reverse else (stock, ours)
        pattern = re.escape(source).replace(re.escape("{i}"), r"(\d+)")
        rules.append((re.compile(pattern), target.replace("{i}", r"\1")))
    return rules


def _rename_module(module: str, rules) -> str | None:
    for pattern, target in rules:
        if pattern.fullmatch(module):
            return pattern.sub(target, module)
    return None


def convert_state_dict(state_dict: dict[str, torch.Tensor], *, reverse: bool = False) -> dict[str, torch.Tensor]:
    """Rename a stock BERT state dict to ours (``reverse=True``: ours to stock). Pure: tensors are shared, not copied.

    Args:
        state_dict: the ``state_dict()`` of one of the supported classes (stock, or ours when ``reverse``).
        reverse (`bool`): convert ours -> stock instead of stock -> ours.

    Returns:
        The renamed state dict. Stock -> ours drops ``cls.predictions.bias`` (BERT's tied copy of the decoder
        bias; with untied embeddings a separate parameter that BERT's forward never reads) and saved
        ``position_ids``/``token_type_ids`` buffers. Ours -> stock writes that bias copy back, and a zero
        token-type row when our model has none (``type_vocab_size=0``: adding a zero vector is exactly what
        no token types means).

    Raises:
        ValueError: naming every key the table does not know (e.g. BERT's next-sentence head).
    """
    src_prefix, dst_prefix = (OUR_PREFIX, STOCK_PREFIX) if reverse else (STOCK_PREFIX, OUR_PREFIX)
    backbone, head = _compile(BACKBONE_RENAMES, reverse), _compile(HEAD_RENAMES, reverse)
    converted, unknown = {}, []
    for key, tensor in state_dict.items():
        if not reverse and (key == STOCK_MLM_BIAS or key.removeprefix(STOCK_PREFIX) in STOCK_BUFFERS):
            continue
        module, _, param = key.rpartition(".")
        prefix = src_prefix if module.startswith(src_prefix) else ""
        new = _rename_module(module[len(prefix):], backbone)
        new = (dst_prefix if prefix else "") + new if new is not None else _rename_module(module, head)
        if new is None:
            unknown.append(key)
        else:
            converted[f"{new}.{param}"] = tensor
    if unknown:
        direction = "ours -> BERT" if reverse else "BERT -> ours"
        raise ValueError(f"convert_state_dict ({direction}): no rename rule for {sorted(unknown)}")
    if not reverse and STOCK_MLM_BIAS in state_dict and "lm_head.out_proj.bias" not in converted:
        converted["lm_head.out_proj.bias"] = state_dict[STOCK_MLM_BIAS]
    if reverse:
        if "cls.predictions.decoder.bias" in converted:
            converted[STOCK_MLM_BIAS] = converted["cls.predictions.decoder.bias"]
        for prefix in ("", STOCK_PREFIX):
            words = converted.get(f"{prefix}embeddings.word_embeddings.weight")
            if words is not None and f"{prefix}embeddings.token_type_embeddings.weight" not in converted:
                converted[f"{prefix}embeddings.token_type_embeddings.weight"] = words.new_zeros(1, words.shape[1])
    return converted


def config_from_stock(stock_config):
    """Our ``EncoderConfig`` expressing a ``BertConfig`` exactly.

    Raises:
        ValueError: for BERT options our encoder does not have (decoder mode, cross-attention, relative positions).
    """
    from w2vformer.modeling.configuration_encoder import EncoderConfig

    problems = []
    if getattr(stock_config, "is_decoder", False) or getattr(stock_config, "add_cross_attention", False):
        problems.append("is_decoder/add_cross_attention=True (use the decoder family)")
    if getattr(stock_config, "position_embedding_type", "absolute") != "absolute":
        problems.append(f"position_embedding_type={stock_config.position_embedding_type!r}")
    if not isinstance(stock_config.hidden_act, str):
        problems.append(f"hidden_act={stock_config.hidden_act!r} (a callable, not an ACT2FN name)")
    if problems:
        raise ValueError(f"this BERT config cannot be expressed by EncoderConfig: {'; '.join(problems)}")
    return EncoderConfig(
        vocab_size=stock_config.vocab_size,
        hidden_size=stock_config.hidden_size,
        num_hidden_layers=stock_config.num_hidden_layers,
        num_attention_heads=stock_config.num_attention_heads,
        intermediate_size=stock_config.intermediate_size,
        hidden_act=stock_config.hidden_act,
        max_position_embeddings=stock_config.max_position_embeddings,
        layer_norm_eps=stock_config.layer_norm_eps,
        dropout=stock_config.hidden_dropout_prob,
        attention_dropout=stock_config.attention_probs_dropout_prob,
        activation_dropout=0.0,
        initializer_range=stock_config.initializer_range,
        pad_token_id=stock_config.pad_token_id,
        bos_token_id=getattr(stock_config, "bos_token_id", None),
        eos_token_id=getattr(stock_config, "eos_token_id", None),
        tie_word_embeddings=getattr(stock_config, "tie_word_embeddings", True),
        attention_bias=True,
        position_embedding_type="learned",
        position_offset=0,
        norm_position="post",
        scale_embedding=False,
        embedding_layer_norm=True,
        type_vocab_size=stock_config.type_vocab_size,
        use_pooler=True,
        mlm_head_transform=True,
        classifier_dropout=stock_config.classifier_dropout,
        id2label=dict(stock_config.id2label),
        label2id=dict(stock_config.label2id),
        problem_type=stock_config.problem_type,
    )


def config_to_stock(config, architecture: str | None = None):
    """The ``BertConfig`` expressing our ``EncoderConfig`` exactly.

    Args:
        config: an ``EncoderConfig``.
        architecture (`str`, *optional*): our class name; adds that head's requirements
            (``EncoderForMaskedLM`` needs ``mlm_head_transform=True``, ``EncoderForSequenceClassification``
            needs ``use_pooler=True``: BERT's heads always have them).

    Raises:
        ValueError: naming every option BERT cannot express, with the value BERT needs.
    """
    from transformers import BertConfig

    needed = {
        "norm_position": "post",
        "position_embedding_type": "learned",
        "scale_embedding": False,
        "embedding_layer_norm": True,
        "attention_bias": True,
        "position_offset": 0,
        "activation_dropout": 0.0,
    }
    if architecture == "EncoderForMaskedLM":
        needed["mlm_head_transform"] = True
    if architecture == "EncoderForSequenceClassification":
        needed["use_pooler"] = True
    problems = [f"{k}={getattr(config, k)!r} (BERT has {v!r})" for k, v in needed.items() if getattr(config, k) != v]
    if problems:
        raise ValueError(f"BERT cannot express these options of the encoder: {'; '.join(problems)}")
    return BertConfig(
        vocab_size=config.vocab_size,
        hidden_size=config.hidden_size,
        num_hidden_layers=config.num_hidden_layers,
        num_attention_heads=config.num_attention_heads,
        intermediate_size=config.intermediate_size,
        hidden_act=config.hidden_act,
        hidden_dropout_prob=config.dropout,
        attention_probs_dropout_prob=config.attention_dropout,
        max_position_embeddings=config.max_position_embeddings,
        type_vocab_size=max(config.type_vocab_size, 1),  # 0 = none: one all-zero type row
        initializer_range=config.initializer_range,
        layer_norm_eps=config.layer_norm_eps,
        pad_token_id=config.pad_token_id,
        bos_token_id=config.bos_token_id,
        eos_token_id=config.eos_token_id,
        tie_word_embeddings=config.tie_word_embeddings,
        classifier_dropout=config.classifier_dropout,
        id2label=dict(config.id2label),
        label2id=dict(config.label2id),
        problem_type=config.problem_type,
    )


def from_stock(stock_model):
    """Our encoder with the weights of a stock BERT model (same outputs).

    Args:
        stock_model: a ``BertModel``, ``BertForMaskedLM``, ``BertForSequenceClassification`` or
            ``BertForTokenClassification``.

    Returns:
        The matching ``EncoderModel`` / ``EncoderFor...`` in the stock model's dtype and train/eval mode.
    """
    from w2vformer.modeling import modeling_encoder

    stock_name = type(stock_model).__name__
    if stock_name not in ARCHITECTURES:
        raise ValueError(f"cannot convert {stock_name}; supported: {sorted(ARCHITECTURES)}")
    config = config_from_stock(stock_model.config)
    cls = getattr(modeling_encoder, ARCHITECTURES[stock_name])
    if cls is modeling_encoder.EncoderModel:
        model = cls(config, add_pooling_layer=stock_model.pooler is not None)
    else:
        model = cls(config)
    dtype = next(stock_model.parameters()).dtype
    model.to(dtype)
    load_checked(model, convert_state_dict(stock_model.state_dict()), f"{stock_name} -> {cls.__name__}")
    model.config.architectures = [cls.__name__]
    return model.train(stock_model.training)


def to_stock(model):
    """A stock transformers BERT model with our encoder's weights (same outputs).

    Args:
        model: an ``EncoderModel`` or ``EncoderFor{MaskedLM,SequenceClassification,TokenClassification}``
            whose config BERT can express (see ``config_to_stock``).

    Returns:
        The matching ``Bert...`` model in our model's dtype and train/eval mode.
    """
    import transformers

    ours = {v: k for k, v in ARCHITECTURES.items()}
    name = type(model).__name__
    if name not in ours:
        raise ValueError(f"cannot convert {name}; supported: {sorted(ours)}")
    stock_config = config_to_stock(model.config, architecture=name)
    stock_cls = getattr(transformers, ours[name])
    if stock_cls is transformers.BertModel:
        stock = stock_cls(stock_config, add_pooling_layer=model.pooler is not None)
    else:
        stock = stock_cls(stock_config)
    stock.to(next(model.parameters()).dtype)
    load_checked(stock, convert_state_dict(model.state_dict(), reverse=True), f"{name} -> {stock_cls.__name__}")
    stock.config.architectures = [stock_cls.__name__]
    return stock.train(model.training)
