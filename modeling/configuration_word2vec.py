"""Configuration of the Word2Vec model (CBOW and skip-gram, negative sampling or hierarchical softmax).

    config = Word2VecConfig(vocab_size=30000, vector_size=100, objective="skipgram", loss="negative_sampling")
    model = Word2VecModel(config, token_counts=counts)   # counts: (vocab_size,) token frequencies

Field names follow word2vec / gensim where they are the field's language (``vector_size``, ``window``,
``negative``, ``sample``, ``min_count``, ``alpha``); choices are strings, not int flags
(``objective="skipgram"`` instead of ``sg=1``). Every value is checked at construction: a bad value raises
``ValueError`` quoting it.
"""

from __future__ import annotations

import math

from transformers import PreTrainedConfig

OBJECTIVES = ("skipgram", "cbow")
LOSSES = ("negative_sampling", "hierarchical_softmax")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class Word2VecConfig(PreTrainedConfig):
    r"""Configuration of a [`Word2VecModel`]: the two embedding matrices and how word2vec trains them.

    Args:
        vocab_size (`int`, *optional*, defaults to 30000):
            Number of token ids (the tokenizer's vocabulary, special tokens included). Must be >= 1
            (>= 2 for hierarchical softmax, whose tree needs one inner node).
        vector_size (`int`, *optional*, defaults to 100):
            Dimension D of each word vector.
        objective (`str`, *optional*, defaults to `"skipgram"`):
            `"skipgram"` (the center word predicts each context word) or `"cbow"` (the sum or mean of the
            context words predicts the center word).
        cbow_mean (`bool`, *optional*, defaults to `True`):
            CBOW only: average the context vectors (True) or sum them (False).
        loss (`str`, *optional*, defaults to `"negative_sampling"`):
            `"negative_sampling"` (one positive, `negative` sampled negatives) or `"hierarchical_softmax"`
            (binary decisions along the target's path in a Huffman tree of the token counts).
        negative (`int`, *optional*, defaults to 5):
            Negatives drawn per positive example (negative sampling); must be >= 1 with that loss.
        ns_exponent (`float`, *optional*, defaults to 0.75):
            Negatives are drawn from the unigram distribution raised to this power (any finite number;
            0 is uniform, 1 is the unigram distribution, negative values favour rare words).
        window (`int`, *optional*, defaults to 5):
            Maximum distance between the center word and a context word.
        shrink_windows (`bool`, *optional*, defaults to `True`):
            Draw the effective window uniformly from 1..window for each center word, as word2vec does.
        sample (`float`, *optional*, defaults to 1e-3):
            Frequent-word subsampling threshold (word2vec's formula); 0 disables subsampling.
        min_count (`int`, *optional*, defaults to 5):
            Tokens seen fewer times than this are dropped from the training stream.
        alpha (`float`, *optional*, defaults to 0.025):
            Initial learning rate of word2vec's SGD (per example).
        min_alpha (`float`, *optional*, defaults to 0.0001):
            The learning rate decays linearly from `alpha` to `min_alpha` over training.
        epochs (`int`, *optional*, defaults to 5):
            Passes over the corpus.
        seed (`int`, *optional*, defaults to 1):
            Seed of the initialisation and of the training randomness (subsampling, windows, negatives).
        pad_token_id (`int`, *optional*, defaults to 0):
            Id used to pad CBOW contexts; padded positions never contribute to the context vector.
        max_code_length (`int`, *optional*):
            Hierarchical softmax only: the longest Huffman code, i.e. the width L of the `hs_codes` /
            `hs_points` buffers. Set by [`Word2VecModel`] from its token counts; you do not set it yourself.
    """

    model_type = "w2vformer_word2vec"

    vocab_size: int = 30000
    vector_size: int = 100
    objective: str = "skipgram"
    cbow_mean: bool = True
    loss: str = "negative_sampling"
    negative: int = 5
    ns_exponent: float | int = 0.75
    window: int = 5
    shrink_windows: bool = True
    sample: float | int = 1e-3
    min_count: int = 5
    alpha: float | int = 0.025
    min_alpha: float | int = 0.0001
    epochs: int = 5
    seed: int = 1
    pad_token_id: int | None = 0
    max_code_length: int | None = None
    tie_word_embeddings: bool = False

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        self.validate_word2vec()

    def validate_word2vec(self) -> None:
        """Raise ``ValueError`` quoting the first invalid field (called at construction)."""
        for name in ("vocab_size", "vector_size", "window", "negative", "min_count", "epochs", "seed"):
            value = getattr(self, name)
            if not _is_int(value):
                raise ValueError(f"{name} must be an integer, got {value!r}")
        for name in ("ns_exponent", "sample", "alpha", "min_alpha"):
            value = getattr(self, name)
            if not _is_number(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
        for name in ("cbow_mean", "shrink_windows"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {self.objective!r}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.vocab_size < 1:
            raise ValueError(f"vocab_size must be >= 1, got {self.vocab_size}")
        if self.loss == "hierarchical_softmax" and self.vocab_size < 2:
            raise ValueError(
                f"hierarchical_softmax needs vocab_size >= 2 (a Huffman tree with one inner node), got {self.vocab_size}"
            )
        if self.vector_size < 1:
            raise ValueError(f"vector_size must be >= 1, got {self.vector_size}")
        if self.window < 1:
            raise ValueError(f"window must be >= 1, got {self.window}")
        if self.negative < 0:
            raise ValueError(f"negative must be >= 0, got {self.negative}")
        if self.loss == "negative_sampling" and self.negative == 0:
            raise ValueError(
                "negative=0 with loss='negative_sampling' draws no negatives; set negative >= 1 "
                "(5-20 is usual) or use loss='hierarchical_softmax'"
            )
        if self.sample < 0:
            raise ValueError(f"sample must be >= 0 (0 disables subsampling), got {self.sample}")
        if self.min_count < 0:
            raise ValueError(f"min_count must be >= 0, got {self.min_count}")
        if self.alpha <= 0:
            raise ValueError(f"alpha (the initial learning rate) must be > 0, got {self.alpha}")
        if not 0 <= self.min_alpha <= self.alpha:
            raise ValueError(f"min_alpha must be in [0, alpha={self.alpha}], got {self.min_alpha}")
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if self.pad_token_id is not None and not (_is_int(self.pad_token_id) and 0 <= self.pad_token_id < self.vocab_size):
            raise ValueError(f"pad_token_id must be None or an id in [0, {self.vocab_size}), got {self.pad_token_id!r}")
        if self.max_code_length is not None and not (_is_int(self.max_code_length) and self.max_code_length >= 0):
            raise ValueError(f"max_code_length must be None or an integer >= 0, got {self.max_code_length!r}")


__all__ = ["Word2VecConfig"]
