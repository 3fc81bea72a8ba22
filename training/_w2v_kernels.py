"""Numba kernels for Word2Vec: word2vec's per-pair SGD, as the C tool and gensim run it.

    syn0 = model.in_embed.weight.detach().numpy()      # (V, D) float32, updated in place
    words, rng = train_sg_chunk(ids, offsets, 0, n_sentences, syn0, syn1, ...)

Why compiled loops: a word2vec update touches (negative + 1) rows of D floats and is over in well under a
microsecond, so any per-step framework overhead dominates, and batching the updates in PyTorch applies
stale updates to repeated rows (see /work/shared/data/README.md). These kernels process one sentence at a
time, one (context, word) pair at a time, exactly like word2vec.c: subsampling with word2vec's keep
probability, reduced windows (a random b in [0, window) shrinks the window to window - b), negatives drawn
from the unigram distribution raised to ``ns_exponent`` (an alias table: exact and O(1)), hierarchical
softmax along the Huffman path, the learning rate decayed linearly with the words processed. Several
threads run them at once on different sentences of the same arrays (Hogwild): every kernel is
``nogil``, so a ``ThreadPoolExecutor`` runs them truly in parallel.

Conventions (word2vec.c): in skip-gram the *context* word's input vector predicts the centre word's
output vector; in hierarchical softmax the label of a node is ``1 - code``. The sigmoid is computed
exactly (no lookup table), so a plain torch re-implementation gives the same numbers (tests hold the two
equal).

Random numbers: word2vec's 64-bit linear congruential generator (``r = r * 25214903917 + 11``), one
stream per thread, using the high bits.

Shapes: V vocabulary, D vector size, L longest Huffman code, N corpus tokens, S sentences.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# fastmath without 'nnan'/'ninf': exp(-f) may overflow to inf for very negative scores, which must give
# sigmoid 0, not undefined behaviour. 'reassoc' lets LLVM vectorise the dot products.
_FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}
_JIT = dict(nogil=True, fastmath=_FASTMATH, cache=True)

_MUL = np.uint64(25214903917)
_ADD = np.uint64(11)
_ONE = np.float32(1.0)
_ZERO = np.float32(0.0)
_INV_2_24 = np.float32(1.0 / 16777216.0)


# --------------------------------------------------------------------------------------------------
# Random numbers and sampling
# --------------------------------------------------------------------------------------------------


@njit(**_JIT)
def _next(rng):
    return rng * _MUL + _ADD


@njit(**_JIT)
def _uniform(rng):
    """A float32 in [0, 1) from the high 24 bits of the state."""
    return np.float32(rng >> np.uint64(40)) * _INV_2_24


@njit(**_JIT)
def _alias_draw(rng, alias_prob, alias_idx):
    """One draw from the alias table (Vose): a column from bits 32-63, a coin from bits 8-31."""
    n = np.uint64(alias_prob.shape[0])
    col = np.int64(((rng >> np.uint64(32)) * n) >> np.uint64(32))
    coin = np.float32((rng >> np.uint64(8)) & np.uint64(0xFFFFFF)) * _INV_2_24
    if coin < alias_prob[col]:
        return col
    return np.int64(alias_idx[col])


def build_alias_table(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vose's alias table for sampling ids in proportion to ``weights``.

    Args:
        weights: (V,) non-negative floats, not all zero (word2vec: ``count ** ns_exponent``).

    Returns:
        ``(prob, alias)``: (V,) float32 and (V,) int32. Draw a column ``i`` uniformly, then keep ``i``
        with probability ``prob[i]``, else take ``alias[i]``.
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 1 or w.size == 0 or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"alias table needs non-negative weights with a positive sum; got {w.size} weights, sum {w.sum()}")
    n = w.size
    scaled = w * (n / w.sum())
    prob = np.ones(n, dtype=np.float64)
    alias = np.arange(n, dtype=np.int32)
    small = [i for i in range(n) if scaled[i] < 1.0]
    large = [i for i in range(n) if scaled[i] >= 1.0]
    while small and large:
        s, g = small.pop(), large.pop()
        prob[s] = scaled[s]
        alias[s] = g
        scaled[g] -= 1.0 - scaled[s]
        (small if scaled[g] < 1.0 else large).append(g)
    # Leftovers are 1 up to rounding.
    return prob.astype(np.float32), alias


def keep_probabilities(counts: np.ndarray, sample: float) -> np.ndarray:
    """word2vec's subsampling: keep a word of count ``c`` with probability ``(sqrt(c/t) + 1) * t/c``,
    ``t = sample * total`` (capped at 1). Ids of count 0 (special tokens) get 0: never trained.

    Args:
        counts: (V,) int counts.
        sample: the threshold (word2vec ``-sample``); 0 disables subsampling.

    Returns:
        (V,) float32 keep probabilities.
    """
    counts = np.asarray(counts, dtype=np.float64)
    keep = np.where(counts > 0, 1.0, 0.0)
    if sample > 0:
        t = sample * counts.sum()
        with np.errstate(divide="ignore", invalid="ignore"):
            p = (np.sqrt(counts / t) + 1.0) * t / counts
        keep = np.where(counts > 0, np.minimum(p, 1.0), 0.0)
    return keep.astype(np.float32)


# --------------------------------------------------------------------------------------------------
# One update (shared by the training kernels and the step-by-step kernels the tests compare with torch)
# --------------------------------------------------------------------------------------------------


@njit(**_JIT)
def _sigmoid(f):
    return _ONE / (_ONE + np.float32(math.exp(-f)))


@njit(**_JIT)
def _ns_update(l1, syn1neg, word, negs, n_neg, alpha, work):
    """Negative sampling for one input vector ``l1`` (D,): the word with label 1, then ``negs[:n_neg]``
    with label 0 (a negative equal to the word is skipped, as in word2vec.c). Updates the output rows in
    place and accumulates the input gradient (times alpha) into ``work`` (D,)."""
    d_size = l1.shape[0]
    for j in range(n_neg + 1):
        if j == 0:
            target = word
            label = _ONE
        else:
            target = negs[j - 1]
            if target == word:
                continue
            label = _ZERO
        row = syn1neg[target]
        f = _ZERO
        for k in range(d_size):
            f += l1[k] * row[k]
        g = (label - _sigmoid(f)) * alpha
        for k in range(d_size):
            work[k] += g * row[k]
            row[k] += g * l1[k]


@njit(**_JIT)
def _hs_update(l1, syn1, code, point, length, alpha, work):
    """Hierarchical softmax for one input vector ``l1`` (D,) along the word's Huffman path: node
    ``point[i]`` with label ``1 - code[i]``. Same in-place contract as ``_ns_update``."""
    d_size = l1.shape[0]
    for i in range(length):
        row = syn1[point[i]]
        f = _ZERO
        for k in range(d_size):
            f += l1[k] * row[k]
        g = (_ONE - np.float32(code[i]) - _sigmoid(f)) * alpha
        for k in range(d_size):
            work[k] += g * row[k]
            row[k] += g * l1[k]


@njit(**_JIT)
def _draw_negatives(rng, negative, alias_prob, alias_idx, negs):
    for j in range(negative):
        rng = _next(rng)
        negs[j] = _alias_draw(rng, alias_prob, alias_idx)
    return rng


@njit(**_JIT)
def _cbow_step(syn0, syn1, ctx, n_ctx, word, cbow_mean, use_hs, negs, n_neg, code, point, length, alpha, neu1, work):
    """One CBOW step: the sum (or mean) of the context rows ``ctx[:n_ctx]`` predicts ``word``; each
    context row then receives the whole input gradient (divided by the count when summing, as gensim)."""
    d_size = syn0.shape[1]
    for k in range(d_size):
        neu1[k] = _ZERO
        work[k] = _ZERO
    for m in range(n_ctx):
        row = syn0[ctx[m]]
        for k in range(d_size):
            neu1[k] += row[k]
    inv = _ONE / np.float32(n_ctx)
    if cbow_mean:
        for k in range(d_size):
            neu1[k] *= inv
    if use_hs:
        _hs_update(neu1, syn1, code, point, length, alpha, work)
    else:
        _ns_update(neu1, syn1, word, negs, n_neg, alpha, work)
    if not cbow_mean:
        for k in range(d_size):
            work[k] *= inv
    for m in range(n_ctx):
        row = syn0[ctx[m]]
        for k in range(d_size):
            row[k] += work[k]


@njit(**_JIT)
def _sg_step(syn0, syn1, context, word, use_hs, negs, n_neg, code, point, length, alpha, work):
    """One skip-gram step: the context word's input row predicts ``word``."""
    d_size = syn0.shape[1]
    l1 = syn0[context]
    for k in range(d_size):
        work[k] = _ZERO
    if use_hs:
        _hs_update(l1, syn1, code, point, length, alpha, work)
    else:
        _ns_update(l1, syn1, word, negs, n_neg, alpha, work)
    for k in range(d_size):
        l1[k] += work[k]


# --------------------------------------------------------------------------------------------------
# Training kernels: a range of sentences of the encoded corpus
# --------------------------------------------------------------------------------------------------


@njit(**_JIT)
def _subsample(ids, start, stop, keep_prob, rng, sent):
    """Copy the kept ids of ``ids[start:stop]`` into ``sent``; returns (count, rng). Dropped words are
    removed before windows are formed (word2vec.c), so windows span over them."""
    n = 0
    for i in range(start, stop):
        w = ids[i]
        p = keep_prob[w]
        if p < _ONE:
            if p <= _ZERO:
                continue
            rng = _next(rng)
            if p < _uniform(rng):
                continue
        sent[n] = w
        n += 1
    return n, rng


@njit(**_JIT)
def train_chunk(
    ids, offsets, s_begin, s_end,
    syn0, syn1, keep_prob, alias_prob, alias_idx, codes, points, code_lens,
    skipgram, use_hs, cbow_mean, negative, window, shrink_windows,
    alpha0, min_alpha, words_done, words_total, rng,
):  # fmt: skip
    """Train on sentences ``s_begin .. s_end - 1`` of the encoded corpus, in place.

    Args:
        ids: (N,) int32 token ids. offsets: (S + 1,) int64 sentence starts (sentence s is
            ``ids[offsets[s]:offsets[s + 1]]``).
        syn0: (V, D) float32 input vectors. syn1: (V, D) output vectors (negative sampling) or
            (V - 1, D) inner-node vectors (hierarchical softmax).
        keep_prob: (V,) float32 subsampling keep probabilities (0: never trained).
        alias_prob, alias_idx: (V,) the alias table of the noise distribution (negative sampling).
        codes, points, code_lens: (V, L) int8, (V, L) int32, (V,) int32 Huffman paths (hierarchical
            softmax; any (V, 1) arrays otherwise).
        skipgram, use_hs, cbow_mean, shrink_windows: bools. negative, window: ints.
        alpha0, min_alpha: the learning-rate schedule's start and floor; the rate at a sentence is
            ``alpha0 - (alpha0 - min_alpha) * (words_done + words so far) / words_total``.
        words_done: corpus tokens scheduled before this chunk (over all epochs); words_total: tokens
            of the whole run (epochs x N).
        rng: uint64 state of this thread's random stream.

    Returns:
        ``(tokens, rng)``: tokens read (before subsampling) and the new random state.
    """
    d_size = syn0.shape[1]
    longest = 0
    for s in range(s_begin, s_end):
        longest = max(longest, offsets[s + 1] - offsets[s])
    sent = np.empty(max(longest, 1), dtype=np.int32)
    ctx = np.empty(2 * window, dtype=np.int32)
    negs = np.empty(max(negative, 1), dtype=np.int64)
    work = np.empty(d_size, dtype=np.float32)
    neu1 = np.empty(d_size, dtype=np.float32)
    win = np.uint64(window)
    words = 0
    for s in range(s_begin, s_end):
        start = offsets[s]
        stop = offsets[s + 1]
        frac = (words_done + words) / words_total
        alpha = np.float32(max(min_alpha, alpha0 - (alpha0 - min_alpha) * frac))
        words += stop - start
        n, rng = _subsample(ids, start, stop, keep_prob, rng, sent)
        for pos in range(n):
            word = sent[pos]
            b = 0
            if shrink_windows:
                rng = _next(rng)
                b = np.int64((rng >> np.uint64(16)) % win)
            lo = max(0, pos - window + b)
            hi = min(n, pos + window + 1 - b)
            if skipgram:
                for c in range(lo, hi):
                    if c == pos:
                        continue
                    if not use_hs:
                        rng = _draw_negatives(rng, negative, alias_prob, alias_idx, negs)
                    _sg_step(syn0, syn1, sent[c], word, use_hs, negs, negative,
                             codes[word], points[word], code_lens[word], alpha, work)  # fmt: skip
            else:
                n_ctx = 0
                for c in range(lo, hi):
                    if c != pos:
                        ctx[n_ctx] = sent[c]
                        n_ctx += 1
                if n_ctx == 0:
                    continue
                if not use_hs:
                    rng = _draw_negatives(rng, negative, alias_prob, alias_idx, negs)
                _cbow_step(syn0, syn1, ctx, n_ctx, word, cbow_mean, use_hs, negs, negative,
                           codes[word], points[word], code_lens[word], alpha, neu1, work)  # fmt: skip
    return words, rng


# --------------------------------------------------------------------------------------------------
# Step-by-step kernels with given pairs and negatives (what the tests hold equal to the torch reference)
# --------------------------------------------------------------------------------------------------


@njit(**_JIT)
def sg_steps(syn0, syn1, contexts, words, negs, alphas, use_hs, codes, points, code_lens):
    """Apply skip-gram steps in order: step i trains ``contexts[i]`` -> ``words[i]`` with negatives
    ``negs[i]`` (T, K) (ignored for hierarchical softmax) at rate ``alphas[i]``."""
    work = np.empty(syn0.shape[1], dtype=np.float32)
    for i in range(contexts.shape[0]):
        w = words[i]
        _sg_step(syn0, syn1, contexts[i], w, use_hs, negs[i], negs.shape[1],
                 codes[w], points[w], code_lens[w], np.float32(alphas[i]), work)  # fmt: skip


@njit(**_JIT)
def cbow_steps(syn0, syn1, contexts, n_contexts, words, negs, alphas, cbow_mean, use_hs, codes, points, code_lens):
    """Apply CBOW steps in order: step i trains ``contexts[i, :n_contexts[i]]`` (T, C) -> ``words[i]``."""
    work = np.empty(syn0.shape[1], dtype=np.float32)
    neu1 = np.empty(syn0.shape[1], dtype=np.float32)
    for i in range(contexts.shape[0]):
        w = words[i]
        _cbow_step(syn0, syn1, contexts[i], n_contexts[i], w, cbow_mean, use_hs, negs[i], negs.shape[1],
                   codes[w], points[w], code_lens[w], np.float32(alphas[i]), neu1, work)  # fmt: skip
