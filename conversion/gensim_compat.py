"""gensim objects in and out (optional: gensim is imported inside the functions, ``pip install gensim``).

    wv = from_gensim(gensim_model)             # Word2Vec / KeyedVectors -> WordVectors (counts kept)
    kv = to_gensim(wv)                         # WordVectors -> gensim KeyedVectors
    gensim_to_checkpoint(gensim_model, "w2v/") # a trained gensim Word2Vec -> Word2VecModel checkpoint

A gensim ``Word2Vec`` trained with negative sampling keeps its output vectors (``syn1neg``) as our
``out_embed`` and its training options in the config, so training can resume from the checkpoint.
Hierarchical-softmax output vectors (``syn1``) belong to gensim's Huffman tree, which differs from ours
(ours includes ``[PAD]`` and ``[UNK]``), so they are dropped: ``out_embed`` is then zeros and the config
says negative sampling. Ids follow gensim's ``index_to_key`` order after ``[PAD]=0, [UNK]=1``.
"""

from __future__ import annotations

import os

import numpy as np

__all__ = ["from_gensim", "to_gensim", "gensim_to_checkpoint"]


def _require_gensim():
    try:
        import gensim  # noqa: F401
    except ImportError:
        raise ImportError("this needs gensim: pip install 'w2vformer[gensim]' (or pip install gensim)") from None


def _keyed_vectors(obj):
    _require_gensim()
    from gensim.models import KeyedVectors

    kv = getattr(obj, "wv", obj)
    if not isinstance(kv, KeyedVectors):
        raise ValueError(f"expected a gensim Word2Vec / FastText model or KeyedVectors, got {type(obj).__name__}")
    return kv


def _counts(kv) -> np.ndarray | None:
    if "count" not in getattr(kv, "expandos", {}):
        return None
    counts = np.asarray(kv.expandos["count"])
    return None if counts.dtype == object else counts.astype(np.int64)


def from_gensim(obj):
    """A :class:`~w2vformer.keyedvectors.WordVectors` from a gensim ``KeyedVectors`` or model (uses ``.wv``).

    Args:
        obj: gensim ``KeyedVectors``, ``Word2Vec`` or ``FastText``.

    Returns:
        WordVectors: same keys in the same order, the same float32 vectors (copied), gensim's counts if set.
    """
    from w2vformer.keyedvectors import WordVectors

    kv = _keyed_vectors(obj)
    keys = [str(k) for k in kv.index_to_key]
    return WordVectors(keys, np.array(kv.vectors, dtype=np.float32), _counts(kv))


def to_gensim(wv):
    """A gensim ``KeyedVectors`` from a :class:`~w2vformer.keyedvectors.WordVectors` (counts as ``count``).

    Args:
        wv: anything with ``index_to_key`` and ``vectors`` (N, D); ``counts`` (N,) is used when present.

    Returns:
        gensim.models.KeyedVectors: same keys, order and float32 values.
    """
    _require_gensim()
    from gensim.models import KeyedVectors

    vectors = np.asarray(wv.vectors, dtype=np.float32)
    kv = KeyedVectors(vectors.shape[1], count=0, dtype=np.float32)
    kv.add_vectors(list(wv.index_to_key), vectors)
    counts = getattr(wv, "counts", None)
    if counts is not None:
        kv.expandos["count"] = np.asarray(counts, dtype=np.int64).copy()
    return kv


def gensim_to_checkpoint(obj, out_dir: str | os.PathLike, *, fp16: bool = False) -> dict:
    """Write a gensim model or KeyedVectors as a Word2VecModel checkpoint folder with a wordlevel tokenizer.

    Args:
        obj: gensim ``Word2Vec`` (options, counts and, with negative sampling, ``syn1neg`` are kept) or
            ``KeyedVectors`` (vectors and counts only).
        out_dir: the checkpoint folder (replaced atomically).
        fp16: store the weights as float16.

    Returns:
        dict: ``vocab_size``, ``vector_size`` and ``id_offset`` (id = gensim index + id_offset).
    """
    from w2vformer.conversion.vectors import _write_checkpoint

    kv = _keyed_vectors(obj)
    options, out_vectors = {}, None
    if kv is not obj and hasattr(obj, "sg"):  # a trained Word2Vec: record how it was trained
        options = dict(
            objective="skipgram" if obj.sg else "cbow", cbow_mean=bool(obj.cbow_mean), window=int(obj.window),
            sample=float(obj.sample), min_count=int(obj.min_count), alpha=float(obj.alpha),
            min_alpha=float(obj.min_alpha), epochs=int(obj.epochs), seed=int(obj.seed),
            ns_exponent=float(obj.ns_exponent), negative=int(obj.negative) or 5,
        )
        if obj.negative and getattr(obj, "syn1neg", None) is not None and len(obj.syn1neg) == len(kv.vectors):
            out_vectors = obj.syn1neg
    return _write_checkpoint(out_dir, [str(k) for k in kv.index_to_key], kv.vectors, counts=_counts(kv), fp16=fp16,
                             source=type(obj).__name__, config_overrides=options, out_vectors=out_vectors)
