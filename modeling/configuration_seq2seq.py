"""Configuration of the encoder-decoder transformer (``model_type="w2vformer_seq2seq"``).

    config = Seq2SeqConfig(vocab_size=8000, hidden_size=256, encoder_layers=3, decoder_layers=3)
    model = Seq2SeqForConditionalGeneration(config)

The defaults are the original Transformer (Vaswani et al. 2017, "base"): 6 + 6 post-norm layers, hidden 512,
8 heads, feed-forward 2048, ReLU, sinusoidal positions, token embeddings scaled by sqrt(hidden_size),
embeddings shared by encoder, decoder and output layer. BART is the same family with other options:
learned positions with ``position_offset=2``, ``embedding_layer_norm=True``, ``hidden_act="gelu"``
(``w2vformer.conversion.bart.config_from_stock`` sets them).

This file is copied into every checkpoint (``trust_remote_code``): standard library and transformers only.
"""

from __future__ import annotations

from transformers import PreTrainedConfig
from transformers.activations import ACT2FN

_POSITION_TYPES = ("sinusoidal", "learned", "rotary")
_NORM_POSITIONS = ("post", "pre")


class Seq2SeqConfig(PreTrainedConfig):
    r"""Configuration of [`Seq2SeqModel`] and [`Seq2SeqForConditionalGeneration`].

    Encoder and decoder share the width (`hidden_size`), the number of heads and the feed-forward size; their
    depths are `encoder_layers` and `decoder_layers` (transformers' generate reads the decoder depth from
    `decoder_layers` to size its cache).

    Args:
        vocab_size (`int`): number of token ids V.
        hidden_size (`int`): width C of every token vector.
        encoder_layers (`int`), decoder_layers (`int`): number of layers of each stack.
        num_attention_heads (`int`): heads H per attention (C must be divisible by H).
        intermediate_size (`int`): width of the feed-forward layer.
        hidden_act (`str`): feed-forward activation, any key of `transformers.activations.ACT2FN`.
        max_position_embeddings (`int`): longest sequence for learned positions (sinusoidal and rotary
            positions work at any length).
        layer_norm_eps (`float`): LayerNorm epsilon.
        dropout (`float`): dropout on the embeddings and on every residual branch.
        attention_dropout (`float`): dropout on the attention weights A'.
        activation_dropout (`float`): dropout after the feed-forward activation.
        initializer_range (`float`): std of the normal initialisation of Linear and Embedding weights.
        pad_token_id, bos_token_id, eos_token_id, decoder_start_token_id (`int`): special ids (the seq2seq
            tokenizer preset: [PAD]=0, <s>=2 starts the decoder, </s>=3 ends a sequence).
        tie_word_embeddings (`bool`): one `shared` embedding for encoder input, decoder input and output layer.
        use_cache (`bool`): return the key/value cache from the decoder.
        attention_bias (`bool`): biases in the q/k/v/o projections.
        position_embedding_type (`str`): "sinusoidal" (paper), "learned" (BART) or "rotary".
        rope_theta (`float`): base of the rotary frequencies.
        position_offset (`int`): learned positions are looked up at `position + position_offset` (BART: 2).
        norm_position (`str`): "post" (paper, BART: LayerNorm after each residual sum) or "pre" (LayerNorm
            before each sub-layer, and a final LayerNorm closing each stack).
        scale_embedding (`bool`): multiply token embeddings by sqrt(hidden_size), as the paper does.
        embedding_layer_norm (`bool`): a LayerNorm on token + position embeddings (BART's `layernorm_embedding`).
    """

    model_type = "w2vformer_seq2seq"
    keys_to_ignore_at_inference = ["cache", "past_key_values"]  # the cache is named `cache` from transformers 5.24
    # utilities that know a single depth read the encoder's (as in BART); generate's cache reads
    # `decoder_layers` through `get_text_config(decoder=True)`
    attribute_map = {"num_hidden_layers": "encoder_layers"}

    vocab_size: int = 32000
    hidden_size: int = 512
    encoder_layers: int = 6
    decoder_layers: int = 6
    num_attention_heads: int = 8
    intermediate_size: int = 2048
    hidden_act: str = "relu"
    max_position_embeddings: int = 512
    layer_norm_eps: float = 1e-5
    dropout: float = 0.1
    attention_dropout: float = 0.0
    activation_dropout: float = 0.0
    initializer_range: float = 0.02
    pad_token_id: int | None = 0
    bos_token_id: int | None = 2
    eos_token_id: int | list[int] | None = 3
    decoder_start_token_id: int | None = 2
    is_encoder_decoder: bool = True
    tie_word_embeddings: bool = True
    use_cache: bool = True
    attention_bias: bool = True
    position_embedding_type: str = "sinusoidal"
    rope_theta: float = 10000.0
    position_offset: int = 0
    norm_position: str = "post"
    scale_embedding: bool = True
    embedding_layer_norm: bool = False

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        self._check()

    def _check(self) -> None:
        for name in ("vocab_size", "hidden_size", "encoder_layers", "decoder_layers", "num_attention_heads",
                     "intermediate_size", "max_position_embeddings"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be divisible by num_attention_heads "
                f"({self.num_attention_heads}); e.g. use hidden_size={self.num_attention_heads * max(1, self.hidden_size // self.num_attention_heads)}"
            )
        if self.position_embedding_type == "rotary" and (self.hidden_size // self.num_attention_heads) % 2:
            raise ValueError(
                f"rotary positions need an even head dimension, got hidden_size / num_attention_heads = "
                f"{self.hidden_size} / {self.num_attention_heads} = {self.hidden_size // self.num_attention_heads}"
            )
        if self.hidden_act not in ACT2FN:
            raise ValueError(f"hidden_act {self.hidden_act!r} is not one of {sorted(ACT2FN)}")
        if self.position_embedding_type not in _POSITION_TYPES:
            raise ValueError(
                f"position_embedding_type must be one of {_POSITION_TYPES}, got {self.position_embedding_type!r}"
            )
        if self.norm_position not in _NORM_POSITIONS:
            raise ValueError(f"norm_position must be one of {_NORM_POSITIONS}, got {self.norm_position!r}")
        if not isinstance(self.position_offset, int) or self.position_offset < 0:
            raise ValueError(f"position_offset must be a non-negative integer, got {self.position_offset!r}")
        for name in ("dropout", "attention_dropout", "activation_dropout"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {value!r}")
        if self.layer_norm_eps <= 0:
            raise ValueError(f"layer_norm_eps must be positive, got {self.layer_norm_eps!r}")
        for name in ("pad_token_id", "bos_token_id", "decoder_start_token_id"):
            value = getattr(self, name)
            if value is not None and not 0 <= value < self.vocab_size:
                raise ValueError(
                    f"{name}={value} is outside the vocabulary of size {self.vocab_size} (valid ids 0..{self.vocab_size - 1})"
                )
        eos = self.eos_token_id if isinstance(self.eos_token_id, list) else [self.eos_token_id]
        for value in eos:
            if value is not None and not 0 <= value < self.vocab_size:
                raise ValueError(
                    f"eos_token_id={value} is outside the vocabulary of size {self.vocab_size} (valid ids 0..{self.vocab_size - 1})"
                )


__all__ = ["Seq2SeqConfig"]
