"""What many concurrent Hogwild programs do to Word2Vec's quality, simulated on the CPU.

    python bench/sim_gpu_hogwild.py --programs 1 128 1024 4096 --objectives skipgram cbow

The GPU kernel (``training/_w2v_triton.py``) runs P programs at once, each walking its sentences, and adds
every update with an atomic add; this script is how its ``concurrent_programs`` rule was chosen. A program
reads its rows, computes, and adds; meanwhile the other programs' steps land. So each step is computed on rows that miss the updates of the ~P steps in flight, and
all of them are summed: the stale-update trap that ``/work/shared/data/README.md`` measured for batched
PyTorch (batches of 512 pairs diverged for CBOW), in a staggered form.

This script measures it without a GPU. P programs take turns, one step each (skip-gram: one (context, word)
pair; CBOW: one position), round robin, each walking its own sentence as the kernel does (subsampled,
reduced windows, negatives from the unigram**0.75 alias table, the linear learning-rate decay). A step reads
the current rows and its update is applied P - 1 steps later, just before the same program's next step:
every program sees its own updates and misses those of the P - 1 steps that ran beside it. P = 1 is
word2vec's sequential SGD.

It prints analogy (questions-words, restrict_vocab 30000) and wordsim353 for each P, through gensim's
evaluators, on the shared corpus with the benchmark's options (vector_size 100, window 5, negative 5,
sample 1e-3, min_count 5, 5 epochs, alpha 0.05; ``--alpha``, ``--sample`` change them). The results and the
rule they led to: bench/README.md.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from numba import njit  # not cache=True: tests load this file by path, which numba's cache does not follow

from w2vformer.training import _w2v_kernels as K
from w2vformer.training import corpus as corpus_lib
from w2vformer.training.word2vec import init_vectors

DEFAULT_CORPUS = "/work/shared/data/corpus-en.txt.gz"


@njit
def _lcg(r):
    return (r * np.uint64(25214903917) + np.uint64(11)) & np.uint64(0xFFFFFFFFFFFFFFFF)


@njit
def _unif(r):
    return np.float32(r >> np.uint64(40)) * np.float32(1.0 / 16777216.0)


@njit
def _next_position(p, pos, lo, hi, length, window, rng):
    """Move program p to its next position and draw its reduced window [lo, hi); returns the random state.
    ``pos[p] >= length[p]`` afterwards: the sentence is done."""
    pos[p] += 1
    if pos[p] < length[p]:
        rng = _lcg(rng)
        b = np.int64((rng >> np.uint64(16)) % np.uint64(window))
        lo[p] = max(0, pos[p] - window + b)
        hi[p] = min(length[p], pos[p] + window + 1 - b)
    return rng


@njit
def simulate(ids, offsets, order, syn0, syn1, keep, alias_prob, alias_idx, skipgram, negative, window,
             alpha0, min_alpha, epochs, programs, seed, overwrite):  # fmt: skip
    """Train in place with ``programs`` round-robin programs and updates delayed by programs - 1 steps: added
    (atomic adds), or with ``overwrite`` written as (the row as the step read it + its update), which loses
    the updates that landed in between (plain stores, non-atomic Hogwild)."""
    n_sent = offsets.shape[0] - 1
    d = syn0.shape[1]
    v = syn0.shape[0]
    max_len = 0
    for s in range(n_sent):
        max_len = max(max_len, offsets[s + 1] - offsets[s])
    P = programs
    buf = np.empty((P, max_len), dtype=np.int32)  # each program's subsampled sentence
    length = np.zeros(P, dtype=np.int64)
    pos = np.zeros(P, dtype=np.int64)
    c = np.zeros(P, dtype=np.int64)
    lo = np.zeros(P, dtype=np.int64)
    hi = np.zeros(P, dtype=np.int64)
    alpha = np.zeros(P, dtype=np.float32)
    active = np.zeros(P, dtype=np.bool_)
    # pending updates, one slot per program: applied just before that program's next step
    out_rows = np.full((P, negative + 1), -1, dtype=np.int64)
    out_delta = np.zeros((P, negative + 1, d), dtype=np.float32)
    in_rows = np.full((P, 2 * window), -1, dtype=np.int64)
    in_delta = np.zeros((P, d), dtype=np.float32)
    out_read = np.zeros((P, negative + 1, d), dtype=np.float32) if overwrite else np.zeros((1, 1, 1), np.float32)
    in_read = np.zeros((P, 2 * window, d), dtype=np.float32) if overwrite else np.zeros((1, 1, 1), np.float32)
    l1 = np.empty(d, dtype=np.float32)
    work = np.empty(d, dtype=np.float32)
    rng = np.uint64(seed * 1000003 + 7)
    total = epochs * offsets[n_sent]
    done_words = 0
    for epoch in range(epochs):
        next_sent = 0
        for p in range(P):
            active[p] = False
        n_active = 0
        while True:
            # fill idle programs with the next sentences
            for p in range(P):
                while not active[p] and next_sent < n_sent:
                    s = order[next_sent]
                    next_sent += 1
                    frac = done_words / total
                    done_words += offsets[s + 1] - offsets[s]
                    n = 0
                    for i in range(offsets[s], offsets[s + 1]):
                        w = ids[i]
                        kp = keep[w]
                        if kp <= 0.0:
                            continue
                        if kp < 1.0:
                            rng = _lcg(rng)
                            if kp < _unif(rng):
                                continue
                        buf[p, n] = w
                        n += 1
                    if n == 0:
                        continue
                    length[p] = n
                    pos[p] = -1
                    c[p] = 0
                    hi[p] = 0
                    alpha[p] = max(min_alpha, alpha0 - (alpha0 - min_alpha) * frac)
                    active[p] = True
                    n_active += 1
            if n_active == 0:
                break
            for p in range(P):
                # this program's previous update lands now (the others' are still in flight)
                for j in range(negative + 1):
                    r = out_rows[p, j]
                    if r >= 0:
                        for k in range(d):
                            if overwrite:
                                syn1[r, k] = out_read[p, j, k] + out_delta[p, j, k]
                            else:
                                syn1[r, k] += out_delta[p, j, k]
                        out_rows[p, j] = -1
                for j in range(2 * window):
                    r = in_rows[p, j]
                    if r >= 0:
                        for k in range(d):
                            if overwrite:
                                syn0[r, k] = in_read[p, j, k] + in_delta[p, k]
                            else:
                                syn0[r, k] += in_delta[p, k]
                        in_rows[p, j] = -1
                if not active[p]:
                    continue
                # advance to the next step of this program
                if skipgram:
                    c[p] += 1
                    if c[p] == pos[p]:
                        c[p] += 1
                    while c[p] >= hi[p]:
                        rng = _next_position(p, pos, lo, hi, length, window, rng)
                        if pos[p] >= length[p]:
                            break
                        c[p] = lo[p]
                        if c[p] == pos[p]:
                            c[p] += 1
                else:
                    while True:
                        rng = _next_position(p, pos, lo, hi, length, window, rng)
                        if pos[p] >= length[p] or hi[p] - lo[p] > 1:
                            break
                if pos[p] >= length[p]:
                    active[p] = False
                    n_active -= 1
                    continue
                word = buf[p, pos[p]]
                a = alpha[p]
                # the input vector
                if skipgram:
                    ctx = buf[p, c[p]]
                    for k in range(d):
                        l1[k] = syn0[ctx, k]
                        if overwrite:
                            in_read[p, 0, k] = l1[k]
                    in_rows[p, 0] = ctx
                else:
                    for k in range(d):
                        l1[k] = 0.0
                    m = 0
                    for cc in range(lo[p], hi[p]):
                        if cc != pos[p]:
                            ctx = buf[p, cc]
                            for k in range(d):
                                l1[k] += syn0[ctx, k]
                                if overwrite:
                                    in_read[p, m, k] = syn0[ctx, k]
                            in_rows[p, m] = ctx
                            m += 1
                    for k in range(d):
                        l1[k] /= m
                for k in range(d):
                    work[k] = 0.0
                for j in range(negative + 1):
                    if j == 0:
                        target = np.int64(word)
                        label = np.float32(1.0)
                    else:
                        rng = _lcg(rng)
                        col = np.int64(((rng >> np.uint64(32)) * np.uint64(v)) >> np.uint64(32))
                        coin = np.float32((rng >> np.uint64(8)) & np.uint64(0xFFFFFF)) * np.float32(1.0 / 16777216.0)
                        target = col if coin < alias_prob[col] else np.int64(alias_idx[col])
                        label = np.float32(0.0)
                        if target == word:
                            continue
                    f = np.float32(0.0)
                    for k in range(d):
                        f += l1[k] * syn1[target, k]
                    g = (label - np.float32(1.0) / (np.float32(1.0) + np.exp(-f))) * a
                    for k in range(d):
                        work[k] += g * syn1[target, k]
                        out_delta[p, j, k] = g * l1[k]
                        if overwrite:
                            out_read[p, j, k] = syn1[target, k]
                    out_rows[p, j] = target
                for k in range(d):
                    in_delta[p, k] = work[k]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", default=DEFAULT_CORPUS)
    parser.add_argument("--programs", type=int, nargs="+", default=[1, 128, 1024, 2048])
    parser.add_argument("--objectives", nargs="+", default=["skipgram", "cbow"], choices=["skipgram", "cbow"])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--max-words", type=int, default=None, help="use only the first N words of the corpus")
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--sample", type=float, default=1e-3)
    parser.add_argument("--overwrite", action="store_true",
                        help="plain stores (row as read + update) instead of atomic adds")
    args = parser.parse_args(argv)
    from gensim.models import KeyedVectors
    from gensim.test.utils import datapath

    source = corpus_lib.iter_texts(args.corpus)
    if args.max_words:
        lines, n = [], 0
        for line in source:
            lines.append(line)
            n += len(line.split())
            if n >= args.max_words:
                break
        source = iter(lines)
    corpus, words, counts = corpus_lib.count_words(source)
    vocab, corpus = corpus_lib.apply_min_count(corpus, words, counts, 5)
    counts = corpus_lib.token_counts(corpus, len(vocab), exclude=(0, 1))
    keep = K.keep_probabilities(counts, args.sample)
    alias_prob, alias_idx = K.build_alias_table(np.where(counts > 0, counts.astype(np.float64) ** 0.75, 0.0))
    order = np.arange(corpus.num_sentences, dtype=np.int64)
    print(f"{corpus.ids.size:,} tokens, {corpus.num_sentences:,} sentences, vocabulary {len(vocab):,}", flush=True)
    print(f"alpha {args.alpha}, sample {args.sample}, {args.epochs} epochs, "
          f"{'plain stores' if args.overwrite else 'atomic adds'}", flush=True)  # fmt: skip
    print("| objective | programs P | seconds | analogy | wordsim353 |\n| --- | --- | --- | --- | --- |", flush=True)
    for objective in args.objectives:
        for programs in args.programs:
            syn0 = init_vectors(len(vocab), 100, 1)
            syn1 = np.zeros_like(syn0)
            t0 = time.perf_counter()
            simulate(corpus.ids, corpus.offsets, order, syn0, syn1, keep, alias_prob, alias_idx,
                     objective == "skipgram", 5, 5, args.alpha, 1e-4, args.epochs, programs, 1,
                     args.overwrite)  # fmt: skip
            seconds = time.perf_counter() - t0
            kv = KeyedVectors(100)
            kv.add_vectors(vocab[2:], syn0[2:])
            analogy = kv.evaluate_word_analogies(datapath("questions-words.txt"), restrict_vocab=30000)[0]
            ws = kv.evaluate_word_pairs(datapath("wordsim353.tsv"))[1][0]
            norm = float(np.linalg.norm(syn0, axis=1).max())
            print(f"| {objective} | {programs} | {seconds:.0f} | {analogy:.3f} | {ws:.3f} | max norm {norm:.1f}",
                  flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
