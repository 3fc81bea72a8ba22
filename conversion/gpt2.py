"""Stock GPT-2 (transformers ``GPT2Model`` / ``GPT2LMHeadModel``) <-> w2vformer ``DecoderModel`` / ``DecoderForCausalLM``.

    from transformers import GPT2LMHeadModel
    from w2vformer.conversion.gpt2 import from_stock, to_stock
    ours = from_stock(GPT2LMHeadModel.from_pretrained("gpt2"))     # same logits, same generations
    stock = to_stock(ours)                                        # bit-identical state dict

GPT-2 is our decoder with ``norm_position="pre"``, ``position_embedding_type="learned"``,
``scale_embedding=False``, ``hidden_act="gelu_new"`` and biases everywhere. Its weights differ only in
layout: ``Conv1D`` stores ``(in, out)`` (``y = x W + b``) where ``nn.Linear`` stores ``(out, in)``, so every
matrix is transposed, and the fused ``c_attn`` (C, 3C) is split into ``q_proj``, ``k_proj``, ``v_proj``.
"""

from __future__ import annotations

import logging
import re

import torch

from w2vformer.conversion._common import copy_runtime_settings, load_checked

__all__ = [
    "RENAMES",
    "convert_state_dict",
    "config_from_stock",
    "config_to_stock",
    "from_stock",
    "to_stock",
]

logger = logging.getLogger(__name__)

# GPT-2 key (inside GPT2Model) -> our key (inside DecoderModel); "{i}" is the layer index. "T" marks a Conv1D
# weight that is transposed; c_attn is split three ways (handled separately).
RENAMES: list[tuple[str, str, bool]] = [
    ("wte.weight", "embed_tokens.weight", False),
    ("wpe.weight", "embed_positions.weight", False),
    ("h.{i}.ln_1.weight", "layers.{i}.self_attn_layer_norm.weight", False),
    ("h.{i}.ln_1.bias", "layers.{i}.self_attn_layer_norm.bias", False),
    ("h.{i}.attn.c_proj.weight", "layers.{i}.self_attn.o_proj.weight", True),
    ("h.{i}.attn.c_proj.bias", "layers.{i}.self_attn.o_proj.bias", False),
    ("h.{i}.ln_2.weight", "layers.{i}.mlp_layer_norm.weight", False),
    ("h.{i}.ln_2.bias", "layers.{i}.mlp_layer_norm.bias", False),
    ("h.{i}.mlp.c_fc.weight", "layers.{i}.mlp.fc1.weight", True),
    ("h.{i}.mlp.c_fc.bias", "layers.{i}.mlp.fc1.bias", False),
    ("h.{i}.mlp.c_proj.weight", "layers.{i}.mlp.fc2.weight", True),
    ("h.{i}.mlp.c_proj.bias", "layers.{i}.mlp.fc2.bias", False),
    ("ln_f.weight", "final_layer_norm.weight", False),
    ("ln_f.bias", "final_layer_norm.bias", False),
]
FUSED_QKV = ("h.{i}.attn.c_attn", ("layers.{i}.self_attn.q_proj", "layers.{i}.self_attn.k_proj",
                                    "layers.{i}.self_attn.v_proj"))
# buffers of older GPT-2 checkpoints (the causal-mask triangle), not weights
STOCK_IGNORED = re.compile(r"(^|\.)h\.\d+\.(attn|crossattention)\.(bias|masked_bias)$")
STOCK_PREFIX, OUR_PREFIX = "transformer.", "model."
HEAD_KEY = "lm_head.weight"


def _pattern(template: str) -> re.Pattern:
    return re.compile("^" + re.escape(template).replace(r"\{i\}", r"(\d+)") + "$")


def _split_prefix(key: str, prefix: str) -> tuple[str, str]:
    return (prefix, key[len(prefix):]) if key.startswith(prefix) else ("", key)


def convert_state_dict(state_dict: dict[str, torch.Tensor], reverse: bool = False) -> dict[str, torch.Tensor]:
    """Rename and re-lay-out a GPT-2 state dict as ours (or ours as GPT-2's with ``reverse=True``). Pure: the
    input is not modified; transposes and splits are copies, exact to the bit.

    Keys of the head model (``transformer.*`` + ``lm_head.weight``) and of the bare model (no prefix) are both
    accepted; the prefix maps to ``model.*``.

    Args:
        state_dict (`dict[str, torch.Tensor]`): a GPT-2 (or, reversed, w2vformer decoder) state dict.
        reverse (`bool`): convert ours -> GPT-2.

    Returns:
        `dict[str, torch.Tensor]`: the converted state dict.

    Raises:
        ValueError: naming the keys no rule converts.
    """
    src_prefix, dst_prefix = (OUR_PREFIX, STOCK_PREFIX) if reverse else (STOCK_PREFIX, OUR_PREFIX)
    rules = [(ours, stock, t) for stock, ours, t in RENAMES] if reverse else RENAMES
    out: dict[str, torch.Tensor] = {}
    fused: dict[str, dict[str, torch.Tensor]] = {}  # reverse: "h.{i}.attn.c_attn.weight" -> {"q": ..., ...}
    unknown = []
    for key, tensor in state_dict.items():
        if key == HEAD_KEY:
            out[key] = tensor.clone()
            continue
        prefix, name = _split_prefix(key, src_prefix)
        prefix = dst_prefix if prefix else ""
        if not reverse and STOCK_IGNORED.search(name):
            continue
        for src, dst, transpose in rules:
            match = _pattern(src).match(name)
            if match:
                new = dst.replace("{i}", match.group(1)) if match.groups() else dst
                out[prefix + new] = tensor.t().contiguous() if transpose else tensor.clone()
                break
        else:
            if not _convert_qkv(name, prefix, tensor, out, fused, reverse):
                unknown.append(key)
    if unknown:
        raise ValueError(f"no GPT-2 conversion rule for these keys: {unknown}")
    for key, parts in fused.items():
        if len(parts) != 3:
            raise ValueError(f"{key}: found only {sorted(parts)} of q_proj, k_proj, v_proj")
        out[key] = torch.cat([parts["q"], parts["k"], parts["v"]], dim=-1).contiguous()
    return out


def _convert_qkv(name, prefix, tensor, out, fused, reverse) -> bool:
    """c_attn (C, 3C) Conv1D <-> q_proj/k_proj/v_proj (C, C) Linear each; bias (3C,) <-> three (C,)."""
    stock, (q, k, v) = FUSED_QKV
    if not reverse:
        match = re.match(r"^h\.(\d+)\.attn\.c_attn\.(weight|bias)$", name)
        if not match:
            return False
        i, kind = match.groups()
        for dst, part in zip((q, k, v), tensor.chunk(3, dim=-1)):
            out[f"{prefix}{dst.format(i=i)}.{kind}"] = part.t().contiguous() if kind == "weight" else part.clone()
        return True
    match = re.match(r"^layers\.(\d+)\.self_attn\.([qkv])_proj\.(weight|bias)$", name)
    if not match:
        return False
    i, which, kind = match.groups()
    fused.setdefault(f"{prefix}{stock.format(i=i)}.{kind}", {})[which] = tensor.t() if kind == "weight" else tensor
    return True


def config_from_stock(stock_config):
    """A [`DecoderConfig`] that computes exactly what the given `GPT2Config` computes.

    Raises:
        ValueError: naming GPT-2 options our decoder does not implement (`scale_attn_by_inverse_layer_idx`,
            `reorder_and_upcast_attn`, `scale_attn_weights=False`, `add_cross_attention`).
    """
    from w2vformer.modeling.configuration_decoder import DecoderConfig

    unsupported = {
        "scale_attn_by_inverse_layer_idx": getattr(stock_config, "scale_attn_by_inverse_layer_idx", False),
        "reorder_and_upcast_attn": getattr(stock_config, "reorder_and_upcast_attn", False),
        "add_cross_attention": getattr(stock_config, "add_cross_attention", False),
        "scale_attn_weights=False": not getattr(stock_config, "scale_attn_weights", True),
    }
    bad = [name for name, is_set in unsupported.items() if is_set]
    if bad:
        raise ValueError(f"GPT-2 options the w2vformer decoder cannot express: {bad}; convert a model without them")
    if stock_config.embd_pdrop != stock_config.resid_pdrop:
        logger.warning("GPT-2 embd_pdrop=%s differs from resid_pdrop=%s; our single `dropout` takes resid_pdrop "
                       "(dropout does not change inference)", stock_config.embd_pdrop, stock_config.resid_pdrop)
    return DecoderConfig(
        vocab_size=stock_config.vocab_size,
        hidden_size=stock_config.n_embd,
        num_hidden_layers=stock_config.n_layer,
        num_attention_heads=stock_config.n_head,
        intermediate_size=stock_config.n_inner if stock_config.n_inner is not None else 4 * stock_config.n_embd,
        hidden_act=stock_config.activation_function,
        max_position_embeddings=stock_config.n_positions,
        layer_norm_eps=stock_config.layer_norm_epsilon,
        dropout=stock_config.resid_pdrop,
        attention_dropout=stock_config.attn_pdrop,
        activation_dropout=0.0,
        initializer_range=stock_config.initializer_range,
        pad_token_id=stock_config.pad_token_id,
        bos_token_id=stock_config.bos_token_id,
        eos_token_id=stock_config.eos_token_id,
        tie_word_embeddings=stock_config.tie_word_embeddings,
        use_cache=stock_config.use_cache,
        attention_bias=True,
        position_embedding_type="learned",
        position_offset=0,
        norm_position="pre",
        scale_embedding=False,
        embedding_layer_norm=False,
    )


def config_to_stock(config):
    """The `GPT2Config` of a [`DecoderConfig`].

    Raises:
        ValueError: naming every option GPT-2 cannot express (post-norm, sinusoidal or rotary positions,
            embedding scaling, ...), with the value GPT-2 needs.
    """
    from transformers import GPT2Config

    required = {
        "norm_position": "pre",
        "position_embedding_type": "learned",
        "scale_embedding": False,
        "embedding_layer_norm": False,
        "attention_bias": True,
        "position_offset": 0,
        "activation_dropout": 0.0,
    }
    bad = [f"{name}={getattr(config, name)!r} (GPT-2 needs {want!r})" for name, want in required.items()
           if getattr(config, name) != want]
    if bad:
        raise ValueError(f"GPT-2 cannot express these options: {', '.join(bad)}")
    return GPT2Config(
        vocab_size=config.vocab_size,
        n_positions=config.max_position_embeddings,
        n_embd=config.hidden_size,
        n_layer=config.num_hidden_layers,
        n_head=config.num_attention_heads,
        n_inner=config.intermediate_size,
        activation_function=config.hidden_act,
        resid_pdrop=config.dropout,
        embd_pdrop=config.dropout,
        attn_pdrop=config.attention_dropout,
        layer_norm_epsilon=config.layer_norm_eps,
        initializer_range=config.initializer_range,
        pad_token_id=config.pad_token_id,
        bos_token_id=config.bos_token_id,
        eos_token_id=config.eos_token_id,
        tie_word_embeddings=config.tie_word_embeddings,
        use_cache=config.use_cache,
    )


def from_stock(stock_model):
    """Convert a `GPT2Model` to a [`DecoderModel`], or a `GPT2LMHeadModel` to a [`DecoderForCausalLM`].

    Args:
        stock_model: the transformers GPT-2 model.

    Returns:
        Our model with the same weights, dtype, attention implementation and train/eval mode.
    """
    from transformers import GPT2LMHeadModel, GPT2Model

    from w2vformer.modeling.modeling_decoder import DecoderForCausalLM, DecoderModel

    if isinstance(stock_model, GPT2LMHeadModel):
        cls = DecoderForCausalLM
    elif isinstance(stock_model, GPT2Model):
        cls = DecoderModel
    else:
        raise ValueError(f"expected a GPT2Model or GPT2LMHeadModel, got {type(stock_model).__name__}")
    model = cls(config_from_stock(stock_model.config))
    load_checked(model, convert_state_dict(stock_model.state_dict()), f"GPT-2 -> {type(model).__name__}")
    copy_runtime_settings(stock_model, model)
    return model


def to_stock(model):
    """Convert a [`DecoderModel`] to a `GPT2Model`, or a [`DecoderForCausalLM`] to a `GPT2LMHeadModel`.

    Raises:
        ValueError: if the config uses options GPT-2 cannot express (see [`config_to_stock`]).
    """
    from transformers import GPT2LMHeadModel, GPT2Model

    from w2vformer.modeling.modeling_decoder import DecoderForCausalLM, DecoderModel

    if isinstance(model, DecoderForCausalLM):
        cls = GPT2LMHeadModel
    elif isinstance(model, DecoderModel):
        cls = GPT2Model
    else:
        raise ValueError(f"expected a DecoderModel or DecoderForCausalLM, got {type(model).__name__}")
    stock = cls(config_to_stock(model.config))
    load_checked(stock, convert_state_dict(model.state_dict(), reverse=True), f"{type(model).__name__} -> GPT-2")
    copy_runtime_settings(model, stock)
    return stock
