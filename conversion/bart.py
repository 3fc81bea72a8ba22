"""Stock BART (``transformers`` ``BartModel`` / ``BartForConditionalGeneration``) <-> our encoder-decoder.

    from transformers import BartForConditionalGeneration
    from w2vformer.conversion.bart import from_stock, to_stock
    ours = from_stock(BartForConditionalGeneration.from_pretrained("facebook/bart-base"))
    stock = to_stock(ours)                                  # back again, bit-identical weights

BART is our encoder-decoder with these options: learned positions looked up at ``position + 2``
(``position_offset=2``), a LayerNorm on the embeddings (``embedding_layer_norm=True``), post-norm layers,
GELU, LayerNorm eps 1e-5, an output layer without bias plus a ``final_logits_bias`` buffer, and no final
LayerNorm. The module names are BART's, so the state dict differs only in the attention output projection
(BART ``out_proj``, ours ``o_proj``).

One deliberate difference: our positions follow the attention mask, so a left-padded sequence gets the same
positions as the unpadded one; stock BART counts the padding too. Outputs are identical for unpadded and
right-padded inputs (BART's tokenizer pads on the right).
"""

from __future__ import annotations

import copy
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

# (stock, ours): substrings of state-dict keys, replaced in order (the other way round for to_stock)
RENAMES: list[tuple[str, str]] = [
    (".self_attn.out_proj.", ".self_attn.o_proj."),
    (".encoder_attn.out_proj.", ".encoder_attn.o_proj."),
]

# keys old fairseq-converted checkpoints carry that hold no weights
_IGNORED_STOCK_KEYS = re.compile(r"(^|\.)(encoder|decoder)\.version$")

_BART_LAYER_NORM_EPS = 1e-5  # BART builds nn.LayerNorm(d_model) with torch's default eps
_BART_POSITION_OFFSET = 2  # BartLearnedPositionalEmbedding.offset


def convert_state_dict(state_dict: dict[str, torch.Tensor], to_stock: bool = False) -> dict[str, torch.Tensor]:
    """Rename the keys of a state dict between stock BART and ours (pure: the tensors are not copied).

    Args:
        state_dict: a `BartModel` / `BartForConditionalGeneration` state dict (or ours with `to_stock=True`).
        to_stock: direction; False = stock -> ours.

    Returns:
        A new dict with renamed keys and the same tensor objects.
    """
    renames = [(ours, stock) for stock, ours in RENAMES] if to_stock else RENAMES
    out = {}
    for key, tensor in state_dict.items():
        if not to_stock and _IGNORED_STOCK_KEYS.search(key):
            continue
        new_key = key
        for old, new in renames:
            new_key = new_key.replace(old, new)
        out[new_key] = tensor
    return out


def config_from_stock(stock_config):
    """Our `Seq2SeqConfig` equivalent to a `BartConfig`.

    Args:
        stock_config (`transformers.BartConfig`).

    Returns:
        `Seq2SeqConfig`.

    Raises:
        ValueError: for a BART config our model cannot express (different encoder/decoder head counts or
            feed-forward sizes).
    """
    from w2vformer.modeling.configuration_seq2seq import Seq2SeqConfig

    c = stock_config
    if c.encoder_attention_heads != c.decoder_attention_heads:
        raise ValueError(
            f"BART config has encoder_attention_heads={c.encoder_attention_heads} but "
            f"decoder_attention_heads={c.decoder_attention_heads}; our encoder and decoder share num_attention_heads"
        )
    if c.encoder_ffn_dim != c.decoder_ffn_dim:
        raise ValueError(
            f"BART config has encoder_ffn_dim={c.encoder_ffn_dim} but decoder_ffn_dim={c.decoder_ffn_dim}; "
            f"our encoder and decoder share intermediate_size"
        )
    if c.encoder_layerdrop or c.decoder_layerdrop:
        logger.warning(
            "BART config has encoder_layerdrop=%s, decoder_layerdrop=%s; LayerDrop (a training-time regulariser) "
            "is not part of our model and is dropped",
            c.encoder_layerdrop,
            c.decoder_layerdrop,
        )
    return Seq2SeqConfig(
        vocab_size=c.vocab_size,
        hidden_size=c.d_model,
        encoder_layers=c.encoder_layers,
        decoder_layers=c.decoder_layers,
        num_attention_heads=c.encoder_attention_heads,
        intermediate_size=c.encoder_ffn_dim,
        hidden_act=c.activation_function,
        max_position_embeddings=c.max_position_embeddings,
        layer_norm_eps=_BART_LAYER_NORM_EPS,
        dropout=float(c.dropout),
        attention_dropout=float(c.attention_dropout),
        activation_dropout=float(c.activation_dropout),
        initializer_range=c.init_std,
        pad_token_id=c.pad_token_id,
        bos_token_id=c.bos_token_id,
        eos_token_id=c.eos_token_id,
        decoder_start_token_id=c.decoder_start_token_id,
        tie_word_embeddings=c.tie_word_embeddings,
        use_cache=c.use_cache,
        attention_bias=True,
        position_embedding_type="learned",
        position_offset=_BART_POSITION_OFFSET,
        norm_position="post",
        scale_embedding=bool(c.scale_embedding),
        embedding_layer_norm=True,
    )


def config_to_stock(our_config):
    """The `BartConfig` equivalent to our `Seq2SeqConfig`.

    Args:
        our_config (`Seq2SeqConfig`).

    Returns:
        `transformers.BartConfig`.

    Raises:
        ValueError: naming every option BART cannot express (e.g. sinusoidal or rotary positions, pre-norm,
            no embedding LayerNorm, no attention bias, another LayerNorm eps or position offset).
    """
    from transformers import BartConfig

    c = our_config
    problems = []
    if c.position_embedding_type != "learned":
        problems.append(f"position_embedding_type={c.position_embedding_type!r} (BART: 'learned')")
    if c.position_offset != _BART_POSITION_OFFSET:
        problems.append(f"position_offset={c.position_offset} (BART: {_BART_POSITION_OFFSET})")
    if c.norm_position != "post":
        problems.append(f"norm_position={c.norm_position!r} (BART: 'post')")
    if not c.embedding_layer_norm:
        problems.append("embedding_layer_norm=False (BART: True)")
    if not c.attention_bias:
        problems.append("attention_bias=False (BART: True)")
    if c.layer_norm_eps != _BART_LAYER_NORM_EPS:
        problems.append(f"layer_norm_eps={c.layer_norm_eps} (BART: {_BART_LAYER_NORM_EPS})")
    if problems:
        raise ValueError("BART cannot express this model's " + "; ".join(problems))
    return BartConfig(
        vocab_size=c.vocab_size,
        d_model=c.hidden_size,
        encoder_layers=c.encoder_layers,
        decoder_layers=c.decoder_layers,
        encoder_attention_heads=c.num_attention_heads,
        decoder_attention_heads=c.num_attention_heads,
        encoder_ffn_dim=c.intermediate_size,
        decoder_ffn_dim=c.intermediate_size,
        activation_function=c.hidden_act,
        max_position_embeddings=c.max_position_embeddings,
        dropout=c.dropout,
        attention_dropout=c.attention_dropout,
        activation_dropout=c.activation_dropout,
        init_std=c.initializer_range,
        scale_embedding=c.scale_embedding,
        use_cache=c.use_cache,
        pad_token_id=c.pad_token_id,
        bos_token_id=c.bos_token_id,
        eos_token_id=c.eos_token_id,
        decoder_start_token_id=c.decoder_start_token_id,
        forced_eos_token_id=None,
        tie_word_embeddings=c.tie_word_embeddings,
        encoder_layerdrop=0.0,
        decoder_layerdrop=0.0,
    )


def _copy_generation_config(source, target) -> None:
    """Generation settings travel with the weights (BART's ``forced_eos_token_id``, beams, ...)."""
    if getattr(source, "generation_config", None) is not None and hasattr(target, "generation_config"):
        target.generation_config = copy.deepcopy(source.generation_config)


def from_stock(stock_model):
    """Convert a `BartModel` / `BartForConditionalGeneration` to `Seq2SeqModel` / `Seq2SeqForConditionalGeneration`.

    Args:
        stock_model: a transformers BART model (any dtype; weights are copied, not shared).

    Returns:
        Our model with the same weights, dtype, mode, attention kernel and generation config.
    """
    from transformers import BartForConditionalGeneration, BartModel

    from w2vformer.modeling.modeling_seq2seq import Seq2SeqForConditionalGeneration, Seq2SeqModel

    if isinstance(stock_model, BartForConditionalGeneration):
        cls = Seq2SeqForConditionalGeneration
    elif isinstance(stock_model, BartModel):
        cls = Seq2SeqModel
    else:
        raise ValueError(
            f"from_stock expects a BartModel or BartForConditionalGeneration, got {type(stock_model).__name__}"
        )
    ours = cls(config_from_stock(stock_model.config))
    load_checked(ours, convert_state_dict(stock_model.state_dict()), f"BART -> {cls.__name__}")
    copy_runtime_settings(stock_model, ours)
    _copy_generation_config(stock_model, ours)
    return ours


def to_stock(our_model):
    """Convert `Seq2SeqModel` / `Seq2SeqForConditionalGeneration` to `BartModel` / `BartForConditionalGeneration`.

    Args:
        our_model: one of our encoder-decoder models with BART's options (see `config_to_stock`).

    Returns:
        The transformers BART model with the same weights, dtype, mode, attention kernel and generation config.
    """
    from transformers import BartForConditionalGeneration, BartModel

    from w2vformer.modeling.modeling_seq2seq import Seq2SeqForConditionalGeneration, Seq2SeqModel

    if isinstance(our_model, Seq2SeqForConditionalGeneration):
        cls = BartForConditionalGeneration
    elif isinstance(our_model, Seq2SeqModel):
        cls = BartModel
    else:
        raise ValueError(
            f"to_stock expects a Seq2SeqModel or Seq2SeqForConditionalGeneration, got {type(our_model).__name__}"
        )
    stock = cls(config_to_stock(our_model.config))
    load_checked(stock, convert_state_dict(our_model.state_dict(), to_stock=True), f"{type(our_model).__name__} -> BART")
    copy_runtime_settings(our_model, stock)
    _copy_generation_config(our_model, stock)
    return stock
