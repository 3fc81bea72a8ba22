"""Configuration of the decoder-only transformer (``model_type="w2vformer_decoder"``).

    config = DecoderConfig(vocab_size=8000, hidden_size=256, num_hidden_layers=4, num_attention_heads=4)
    model = DecoderForCausalLM(config)                  # modeling_decoder.py
    gpt2_like = DecoderConfig(norm_position="pre", position_embedding_type="learned", scale_embedding=False,
                              hidden_act="gelu_new")

The defaults are the original Transformer's (Vaswani et al. 2017): post-norm residual blocks, sinusoidal
positions, token embeddings multiplied by sqrt(hidden_size), ReLU. The options above make it GPT-2.

This file is copied into every checkpoint (``trust_remote_code``): standard library and transformers only.
"""

from __future__ import annotations

from transformers import PreTrainedConfig
from transformers.activations import ACT2FN

__all__ = ["DecoderConfig"]

POSITION_EMBEDDING_TYPES = ("sinusoidal", "learned", "rotary")
NORM_POSITIONS = ("post", "pre")


class DecoderConfig(PreTrainedConfig):
    r"""Configuration of [`DecoderModel`] and [`DecoderForCausalLM`].

    Args:
        vocab_size (`int`, defaults to 30000): number of token ids V.
        hidden_size (`int`, defaults to 512): width C of every token vector.
        num_hidden_layers (`int`, defaults to 6): number of decoder layers.
        num_attention_heads (`int`, defaults to 8): heads H; must divide `hidden_size`.
        intermediate_size (`int`, defaults to 2048): width of the feed-forward block.
        hidden_act (`str`, defaults to `"relu"`): feed-forward activation, any key of `transformers.activations.ACT2FN`
            (GPT-2 uses `"gelu_new"`).
        max_position_embeddings (`int`, defaults to 512): longest sequence (prompt + generated tokens) the learned
            position table covers; sinusoidal and rotary positions have no limit but keep it as the nominal context.
        layer_norm_eps (`float`, defaults to 1e-5): epsilon of every LayerNorm.
        dropout (`float`, defaults to 0.1): dropout on the embeddings and on each sublayer's output before the residual add.
        attention_dropout (`float`, defaults to 0.0): dropout on the attention weights A'.
        activation_dropout (`float`, defaults to 0.0): dropout after the feed-forward activation.
        initializer_range (`float`, defaults to 0.02): std of the normal init of linear layers and learned positions.
        pad_token_id, bos_token_id, eos_token_id (`int`, defaults 0, 2, 3): the "decoder" tokenizer preset's ids.
        tie_word_embeddings (`bool`, defaults to True): the LM head shares the token embedding matrix.
        use_cache (`bool`, defaults to True): return a KV cache from forward (used by `generate`).
        attention_bias (`bool`, defaults to True): biases on the q/k/v/o projections.
        position_embedding_type (`str`, defaults to `"sinusoidal"`): `"sinusoidal"` (fixed, paper section 3.5),
            `"learned"` (a trained table, GPT-2) or `"rotary"` (RoPE on Q and K in every layer).
        rope_theta (`float`, defaults to 10000.0): base of the rotary frequencies.
        position_offset (`int`, defaults to 0): added to every position id before the lookup (BART uses 2).
        norm_position (`str`, defaults to `"post"`): `"post"` = LayerNorm(x + Sublayer(x)) as in the paper;
            `"pre"` = x + Sublayer(LayerNorm(x)) as in GPT-2, with a final LayerNorm after the last layer.
        scale_embedding (`bool`, defaults to True): multiply token embeddings by sqrt(hidden_size) (paper section 3.4).
        embedding_layer_norm (`bool`, defaults to False): a LayerNorm on the summed embeddings.

    Raises:
        ValueError: quoting the offending value, for sizes that do not fit together or unknown option strings.
    """

    model_type = "w2vformer_decoder"
    keys_to_ignore_at_inference = ["cache", "past_key_values"]  # the cache is named `cache` from transformers 5.24

    vocab_size: int = 30000
    hidden_size: int = 512
    num_hidden_layers: int = 6
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
        self.validate_architecture()

    def validate_architecture(self):
        """Raise ``ValueError`` quoting the value for any option the model cannot be built with."""
        for name in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                     "max_position_embeddings"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.hidden_size % self.num_attention_heads != 0:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be divisible by num_attention_heads "
                f"({self.num_attention_heads}): each head gets hidden_size / num_attention_heads dimensions"
            )
        if self.position_embedding_type not in POSITION_EMBEDDING_TYPES:
            raise ValueError(
                f"position_embedding_type must be one of {POSITION_EMBEDDING_TYPES}, got {self.position_embedding_type!r}"
            )
        if self.position_embedding_type == "rotary" and (self.hidden_size // self.num_attention_heads) % 2:
            raise ValueError(
                f"rotary positions need an even head dimension, got hidden_size / num_attention_heads = "
                f"{self.hidden_size} / {self.num_attention_heads} = {self.hidden_size // self.num_attention_heads}"
            )
        if self.norm_position not in NORM_POSITIONS:
            raise ValueError(f"norm_position must be one of {NORM_POSITIONS}, got {self.norm_position!r}")
        if self.hidden_act not in ACT2FN:
            raise ValueError(
                f"hidden_act {self.hidden_act!r} is not a known activation; use one of transformers' ACT2FN keys "
                f"such as 'relu', 'gelu', 'gelu_new', 'silu'"
            )
        if not isinstance(self.position_offset, int) or self.position_offset < 0:
            raise ValueError(f"position_offset must be a non-negative integer, got {self.position_offset!r}")
        for name in ("dropout", "attention_dropout", "activation_dropout"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {value!r}")
        if self.layer_norm_eps <= 0:
            raise ValueError(f"layer_norm_eps must be positive, got {self.layer_norm_eps!r}")
        if self.pad_token_id is not None and not 0 <= self.pad_token_id < self.vocab_size:
            raise ValueError(
                f"pad_token_id={self.pad_token_id} is outside the vocabulary of size {self.vocab_size} "
                f"(valid ids 0..{self.vocab_size - 1})"
            )
