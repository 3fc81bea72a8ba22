"""Configuration of the encoder-only transformer (model_type ``w2vformer_encoder``).

    config = EncoderConfig(vocab_size=8000, hidden_size=256, num_hidden_layers=4, num_attention_heads=4)
    model = EncoderForMaskedLM(config)

The defaults are the encoder of the original Transformer (Vaswani et al. 2017): post-norm, sinusoidal
positions, token embeddings scaled by sqrt(hidden_size), ReLU. BERT is a set of options
(``conversion/bert.py`` builds it): learned positions, ``type_vocab_size=2``, ``embedding_layer_norm=True``,
``scale_embedding=False``, ``hidden_act="gelu"``, ``use_pooler=True``, ``mlm_head_transform=True``.

This file is copied into every checkpoint (``trust_remote_code``): standard library and transformers only.
"""

from __future__ import annotations

from transformers import PreTrainedConfig
from transformers.activations import ACT2FN

__all__ = ["EncoderConfig"]

POSITION_EMBEDDING_TYPES = ("sinusoidal", "learned", "rotary")
NORM_POSITIONS = ("post", "pre")
INT_FIELDS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
              "max_position_embeddings", "type_vocab_size", "position_offset")


class EncoderConfig(PreTrainedConfig):
    r"""Configuration of [`EncoderModel`] and its heads.

    Args:
        vocab_size (`int`): number of token ids V.
        hidden_size (`int`): width C of every token vector.
        num_hidden_layers (`int`): number of encoder layers.
        num_attention_heads (`int`): heads H; must divide ``hidden_size``.
        intermediate_size (`int`): width of the feed-forward block.
        hidden_act (`str`): activation of the feed-forward block (and of the MLM head transform), any key of
            ``transformers.activations.ACT2FN`` (``"relu"`` as in the paper, ``"gelu"`` as in BERT).
        max_position_embeddings (`int`): longest sequence for learned positions (sinusoidal and rotary
            positions extrapolate; the value is then informative only).
        layer_norm_eps (`float`): epsilon of every LayerNorm.
        dropout (`float`): dropout on the embeddings and on each sub-layer's output before the residual sum.
        attention_dropout (`float`): dropout on the attention weights A'.
        activation_dropout (`float`): dropout after the feed-forward activation.
        initializer_range (`float`): std of the normal initialisation of Linear and Embedding weights.
        pad_token_id, bos_token_id, eos_token_id (`int`, *optional*): special token ids.
        tie_word_embeddings (`bool`): the MLM head's output matrix is the input embedding matrix.
        attention_bias (`bool`): biases in the q/k/v/o projections.
        position_embedding_type (`str`): ``"sinusoidal"`` (paper), ``"learned"`` (BERT) or ``"rotary"``.
        rope_theta (`float`): base of the rotary frequencies.
        position_offset (`int`): added to every position id (learned tables get this many extra rows).
        norm_position (`str`): ``"post"`` (paper, BERT: LayerNorm after each residual sum) or ``"pre"``
            (LayerNorm before each sub-layer, plus a final LayerNorm at the end of the stack).
        scale_embedding (`bool`): multiply token embeddings by sqrt(hidden_size) (paper, section 3.4).
        embedding_layer_norm (`bool`): LayerNorm on the sum of token, position and token-type embeddings (BERT).
        type_vocab_size (`int`): number of token types (segments A/B); 0 = no token-type embedding.
        use_pooler (`bool`): dense + tanh on the first token's final vector (BERT's pooler); sequence
            classification reads it, or the first token's vector directly when False.
        mlm_head_transform (`bool`): the MLM head applies dense + activation + LayerNorm before the output
            projection (BERT); when False it projects the final vectors directly.
        classifier_dropout (`float`, *optional*): dropout before the classification heads (default ``dropout``).
    """

    model_type = "w2vformer_encoder"

    vocab_size: int = 30000
    hidden_size: int = 512
    num_hidden_layers: int = 6
    num_attention_heads: int = 8
    intermediate_size: int = 2048
    hidden_act: str = "relu"
    max_position_embeddings: int = 512
    layer_norm_eps: float | int = 1e-5
    dropout: float | int = 0.1
    attention_dropout: float | int = 0.0
    activation_dropout: float | int = 0.0
    initializer_range: float | int = 0.02
    pad_token_id: int | None = 0
    bos_token_id: int | None = None
    eos_token_id: int | list[int] | None = None
    tie_word_embeddings: bool = True
    attention_bias: bool = True
    position_embedding_type: str = "sinusoidal"
    rope_theta: float | int = 10000.0
    position_offset: int = 0
    norm_position: str = "post"
    scale_embedding: bool = True
    embedding_layer_norm: bool = False
    type_vocab_size: int = 0
    use_pooler: bool = False
    mlm_head_transform: bool = False
    classifier_dropout: float | int | None = None

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        self._check()

    def _check(self) -> None:
        for name in INT_FIELDS:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"{name} must be an int, got {value!r}")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be divisible by num_attention_heads "
                f"({self.num_attention_heads}); choose e.g. num_attention_heads in "
                f"{[h for h in range(1, min(self.hidden_size, 64) + 1) if self.hidden_size % h == 0]}"
            )
        if self.position_embedding_type not in POSITION_EMBEDDING_TYPES:
            raise ValueError(
                f"position_embedding_type={self.position_embedding_type!r} is unknown; "
                f"use one of {POSITION_EMBEDDING_TYPES}"
            )
        if self.norm_position not in NORM_POSITIONS:
            raise ValueError(f"norm_position={self.norm_position!r} is unknown; use one of {NORM_POSITIONS}")
        if self.hidden_act not in ACT2FN:
            raise ValueError(
                f"hidden_act={self.hidden_act!r} is not an activation transformers knows; "
                f"use one of {sorted(ACT2FN)}"
            )
        if self.position_embedding_type == "rotary" and (self.hidden_size // self.num_attention_heads) % 2:
            raise ValueError(
                f"rotary positions need an even head dim, got hidden_size / num_attention_heads = "
                f"{self.hidden_size} / {self.num_attention_heads} = {self.hidden_size // self.num_attention_heads}"
            )
        for name in INT_FIELDS[:5]:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.pad_token_id is not None and not 0 <= self.pad_token_id < self.vocab_size:
            raise ValueError(f"pad_token_id ({self.pad_token_id}) must be in 0..vocab_size-1 ({self.vocab_size - 1})")
        if self.max_position_embeddings < 1 or self.type_vocab_size < 0 or self.position_offset < 0:
            raise ValueError(
                f"max_position_embeddings ({self.max_position_embeddings}) must be >= 1, type_vocab_size "
                f"({self.type_vocab_size}) and position_offset ({self.position_offset}) >= 0"
            )
        for name in ("dropout", "attention_dropout", "activation_dropout", "classifier_dropout"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {value!r}")
        if self.layer_norm_eps <= 0:
            raise ValueError(f"layer_norm_eps must be positive, got {self.layer_norm_eps!r}")

    def validate_architecture(self):
        """Re-run the checks (transformers calls this hook on validation and before saving)."""
        self._check()
