"""Word2Vec on a GPU: word2vec's per-pair SGD as one Triton kernel, one sentence at a time per program (Hogwild).

    model, tokenizer = train_word2vec(["corpus.txt"], device="cuda")   # or device="auto": a GPU when present

The CPU kernels (``training/_w2v_kernels.py``) run a sentence at a time on 2-16 threads. On a GPU the same
algorithm runs on up to ``GPU_PROGRAMS`` (1024) sentences at once: each Triton *program* walks its sentences
as ``train_chunk`` does (reduced window, skip-gram or CBOW, negative sampling or hierarchical softmax, the
exact sigmoid), and the programs update the shared matrices at the same time with atomic adds (Hogwild, as
word2vec.c's threads and BlazingText's GPU kernel do). Nothing is batched across examples: every step is one
word2vec step on the current rows. Within a step, the word and its noise words (or the Huffman nodes, 8 at a
time) are scored at once on the rows as they are: one SGD step on the model's loss for that example, which
differs from word2vec.c's target-by-target loop only when a noise word repeats within the step.

How many programs at once is a quality setting, not only a speed one. A step is computed on rows that miss
the updates of the steps running beside it, and the atomic adds sum them all: the stale-update trap that
``/work/shared/data/README.md`` measured for batched PyTorch. ``bench/sim_gpu_hogwild.py`` simulates P
programs on the CPU (each step's update lands P - 1 steps later) on the shared corpus, 5 epochs, alpha 0.05:
P = 1 to 1024 train alike (skip-gram analogy 0.219 / 0.224 / 0.225 at P = 1 / 128 / 1024, CBOW 0.217 / 0.222 /
0.216 at P = 1 / 256 / 1024), P = 2048 and 4096 diverge for both, and the limit moves with the learning rate
(CBOW at alpha 0.1: 256 trains, 512 diverges). Plain stores instead of atomic adds (updates lost rather than
summed) do not diverge but lose quality (CBOW, alpha 0.1, 4096 programs: analogy 0.111 against 0.205).
One program per sentence would run ~4200 at once on an H100 (32 one-warp programs per SM x 132 SMs), so the
grid is persistent: ``concurrent_programs`` picks P from the learning rate and the hottest row, and program
p takes sentences p, p + P, p + 2P, ... of each launch.

What runs where:
- once: the corpus ids, sentence offsets (sentences cut at ``GPU_SENTENCE_LENGTH`` tokens, word2vec.c's
  limit), the alias table of the noise distribution and the Huffman paths move to the device; the vectors
  are trained there and copied back at the end;
- each launch (``GPU_PIECE_WORDS`` tokens of the epoch's schedule, the same interleaved halves as the CPU
  path): subsampling is drawn for all its tokens at once in torch (word2vec's keep probability) and the kept
  ids are compacted, so that windows span over dropped words as in word2vec.c; then the programs take the
  sentences longest first; the learning rate of a sentence decays linearly with the raw tokens scheduled
  before it, as on the CPU. The device holds the corpus ids (4 bytes a token, as the CPU path's RAM does),
  the two matrices and one launch's temporaries.

Random numbers are Philox (``tl.randint``'s generator) keyed by the launch's seed and counted by (kept
position, draw): the draws do not depend on which program runs when. ``draws`` returns the exact draws so
that tests can replay a run step by step through the torch reference (``reference_sg_steps`` /
``reference_cbow_steps`` with ``together=True``): Triton's interpreter (``TRITON_INTERPRET=1``) runs the
programs one after another on the CPU, where Hogwild becomes plain sequential SGD.

Shapes: V vocabulary, D vector size, L longest Huffman code, N corpus tokens, S sentences.
"""

from __future__ import annotations

import numpy as np
import torch
import triton
import triton.language as tl
from triton.language.random import philox

GPU_SENTENCE_LENGTH = 1000  # word2vec.c's MAX_SENTENCE_LENGTH: longer sentences are cut for parallelism
GPU_PIECE_WORDS = 1 << 21  # tokens per kernel launch (the progress bar moves once per launch)
GPU_PROGRAMS = 1024  # programs at once at most; ``concurrent_programs`` picks fewer for hot rows and high alphas
HS_BLOCK = 8  # Huffman nodes scored at once
_INV_2_24 = tl.constexpr(1.0 / 16777216.0)


# --------------------------------------------------------------------------------------------------
# Draws (each a pure function of the seed and its counters) and the two output layers
# --------------------------------------------------------------------------------------------------


@triton.jit
def _window_shrink(seed, pos, window):
    """word2vec's reduced window: ``b`` in [0, window), the window at ``pos`` is ``window - b``."""
    r0, _r1, _r2, _r3 = philox(seed, tl.cast(pos, tl.uint32), 0, 0, 0)
    return (r0 % tl.cast(window, tl.uint32)).to(tl.int64)


@triton.jit
def _negative(seed, pos, draw, alias_prob, alias_idx, vocab_size):
    """One draw from the alias table: a column from 32 random bits, a 24-bit coin."""
    r0, r1, _r2, _r3 = philox(seed, tl.cast(pos, tl.uint32), tl.cast(draw, tl.uint32), 0, 0)
    col = tl.umulhi(r0, tl.cast(vocab_size, tl.uint32)).to(tl.int64)
    coin = (r1 >> 8).to(tl.float32) * _INV_2_24
    return tl.where(coin < tl.load(alias_prob + col), col, tl.load(alias_idx + col).to(tl.int64))


@triton.jit
def _ns_layer(l1, syn1, word, seed, pos, first_draw, alias_prob, alias_idx, vocab_size, alpha, cols, dmask,
              D: tl.constexpr, NEGATIVE: tl.constexpr, NEG_BLOCK: tl.constexpr):  # fmt: skip
    """Negative sampling for the input vector ``l1`` (BLOCK_D,): the word with label 1 and NEGATIVE noise
    words with label 0 (one equal to the word is skipped, as in word2vec.c), all scored at once on the rows
    as they are (one SGD step on the model's loss for this example). Adds each output row's update in place;
    returns the input gradient times alpha."""
    j = tl.arange(0, NEG_BLOCK)
    noise = _negative(seed, pos, first_draw + j, alias_prob, alias_idx, vocab_size)
    target = tl.where(j == 0, word, noise)
    live = (j == 0) | ((j <= NEGATIVE) & (noise != word))
    rows = syn1 + target[:, None] * D + cols[None, :]
    mask = live[:, None] & dmask[None, :]
    l2 = tl.load(rows, mask=mask, other=0.0, cache_modifier=".cg")  # (NEG_BLOCK, BLOCK_D)
    label = tl.where(j == 0, 1.0, 0.0)
    g = tl.where(live, (label - tl.sigmoid(tl.sum(l2 * l1[None, :], axis=1))) * alpha, 0.0)
    tl.atomic_add(rows, g[:, None] * l1[None, :], mask=mask, sem="relaxed")
    return tl.sum(g[:, None] * l2, axis=0)


@triton.jit
def _hs_layer(l1, syn1, word, codes, points, code_lens, max_code, alpha, cols, dmask, D: tl.constexpr,
              HS_BLOCK: tl.constexpr):  # fmt: skip
    """Hierarchical softmax for ``l1`` along the word's Huffman path (node ``points[word, i]``, label
    ``1 - codes[word, i]``), HS_BLOCK nodes at a time (the nodes of a path are distinct rows, so this is
    word2vec's node-by-node update exactly). Same contract as ``_ns_layer``."""
    work = tl.zeros_like(l1)
    n = tl.load(code_lens + word)
    for i0 in range(0, n, HS_BLOCK):
        i = i0 + tl.arange(0, HS_BLOCK)
        live = i < n
        node = tl.load(points + word * max_code + i, mask=live, other=0).to(tl.int64)
        label = 1.0 - tl.load(codes + word * max_code + i, mask=live, other=0).to(tl.float32)
        rows = syn1 + node[:, None] * D + cols[None, :]
        mask = live[:, None] & dmask[None, :]
        l2 = tl.load(rows, mask=mask, other=0.0, cache_modifier=".cg")  # (HS_BLOCK, BLOCK_D)
        g = tl.where(live, (label - tl.sigmoid(tl.sum(l2 * l1[None, :], axis=1))) * alpha, 0.0)
        tl.atomic_add(rows, g[:, None] * l1[None, :], mask=mask, sem="relaxed")
        work += tl.sum(g[:, None] * l2, axis=0)
    return work


# --------------------------------------------------------------------------------------------------
# The training kernel: a persistent grid of P programs; program p trains sentences order[s_begin + p + kP]
# --------------------------------------------------------------------------------------------------


@triton.jit(do_not_specialize=["s_begin", "n_sentences", "seed", "window", "vocab_size", "max_code"])
def _train_kernel(
    ids, offsets, raw_offsets, order, syn0, syn1, alias_prob, alias_idx, codes, points, code_lens,
    s_begin, n_sentences, words_done, words_total, alpha0, min_alpha, seed, window, vocab_size, max_code,
    D: tl.constexpr, BLOCK_D: tl.constexpr, NEGATIVE: tl.constexpr, NEG_BLOCK: tl.constexpr,
    HS_BLOCK: tl.constexpr, WIN_BLOCK: tl.constexpr, SKIPGRAM: tl.constexpr, USE_HS: tl.constexpr,
    CBOW_MEAN: tl.constexpr, SHRINK_WINDOWS: tl.constexpr,
):  # fmt: skip
    """A launch's sentences, each as ``_w2v_kernels.train_chunk`` trains it. Rows are read past the SM's L1
    cache (``.cg``): the atomic adds land in L2, and a program must see its own earlier updates.

    Args:
        ids: (n_kept,) int32 kept ids of this launch's sentences s_begin .. s_end - 1.
        offsets: (s_end - s_begin + 1,) int64 their starts in ``ids``.
        raw_offsets: (S + 1,) int64 sentence starts before subsampling (the learning rate's clock).
        order: (S,) int64: the launch's i-th sentence is ``order[s_begin + i]`` (``launch_order``).
        syn0: (V, D) float32 input vectors; syn1: (V, D) output vectors or (V - 1, D) inner nodes.
        alias_prob, alias_idx: (V,) the noise distribution's alias table (negative sampling).
        codes, points, code_lens: (V, L) int8, (V, L) int32, (V,) int32 Huffman paths (hierarchical softmax).
        s_begin, n_sentences: the launch's first sentence and its number of sentences. words_done,
            words_total: raw tokens scheduled before this launch and in the whole run. alpha0, min_alpha: the
            learning rate's start and floor.
        seed: the launch's Philox key (draws are counted by position in ``ids``). window, vocab_size,
            max_code: ints (L = max_code).
        D, BLOCK_D: the vector size and its power-of-two tile. NEGATIVE, NEG_BLOCK: noise words per step
            and the tile of the word + noise words. HS_BLOCK: Huffman nodes at a time. WIN_BLOCK: the tile
            of a CBOW window (2 * window + 1 positions). The rest: the training options.
    """
    cols = tl.arange(0, BLOCK_D)
    dmask = cols < D
    # a persistent grid: program p trains sentences p, p + P, p + 2P, ... of the launch (P = the grid size,
    # from concurrent_programs: how many steps run at once, hence how stale each step's rows are)
    for i in range(tl.program_id(0), n_sentences, tl.num_programs(0)):
        s = tl.load(order + s_begin + i)
        start = tl.load(offsets + s - s_begin)
        stop = tl.load(offsets + s - s_begin + 1)
        clock = words_done + (tl.load(raw_offsets + s) - tl.load(raw_offsets + s_begin)).to(tl.float32)
        alpha = tl.maximum(min_alpha, alpha0 - (alpha0 - min_alpha) * clock / words_total)
        for pos in range(start, stop):
            word = tl.load(ids + pos).to(tl.int64)
            b = 0
            if SHRINK_WINDOWS:
                b = _window_shrink(seed, pos, window)
            lo = tl.maximum(start, pos - window + b)
            hi = tl.minimum(stop, pos + window + 1 - b)
            if SKIPGRAM:
                for c in range(lo, hi):
                    if c != pos:
                        ctx_row = syn0 + tl.load(ids + c).to(tl.int64) * D + cols
                        l1 = tl.load(ctx_row, mask=dmask, other=0.0, cache_modifier=".cg")
                        if USE_HS:
                            work = _hs_layer(l1, syn1, word, codes, points, code_lens, max_code, alpha, cols,
                                             dmask, D, HS_BLOCK)  # fmt: skip
                        else:
                            first_draw = (c - pos + window) * NEGATIVE
                            work = _ns_layer(l1, syn1, word, seed, pos, first_draw, alias_prob, alias_idx,
                                             vocab_size, alpha, cols, dmask, D, NEGATIVE, NEG_BLOCK)  # fmt: skip
                        tl.atomic_add(ctx_row, work, mask=dmask, sem="relaxed")
            else:
                # the whole window as one tile: its context rows are loaded at once, not one after another
                c = lo + tl.arange(0, WIN_BLOCK)
                in_window = (c < hi) & (c != pos)
                ctx = tl.load(ids + c, mask=in_window, other=0).to(tl.int64)
                ctx_rows = syn0 + ctx[:, None] * D + cols[None, :]
                ctx_mask = in_window[:, None] & dmask[None, :]
                neu1 = tl.sum(tl.load(ctx_rows, mask=ctx_mask, other=0.0, cache_modifier=".cg"), axis=0)
                n_ctx = hi - lo - 1
                if n_ctx > 0:
                    inv = 1.0 / n_ctx.to(tl.float32)
                    if CBOW_MEAN:
                        neu1 = neu1 * inv
                    if USE_HS:
                        work = _hs_layer(neu1, syn1, word, codes, points, code_lens, max_code, alpha, cols, dmask,
                                         D, HS_BLOCK)  # fmt: skip
                    else:
                        work = _ns_layer(neu1, syn1, word, seed, pos, 0, alias_prob, alias_idx, vocab_size, alpha,
                                         cols, dmask, D, NEGATIVE, NEG_BLOCK)  # fmt: skip
                    if not CBOW_MEAN:
                        work = work * inv
                    # every context row gets the whole update (a word twice in the window gets it twice)
                    tl.atomic_add(ctx_rows, tl.broadcast_to(work[None, :], (WIN_BLOCK, BLOCK_D)), mask=ctx_mask,
                                  sem="relaxed")  # fmt: skip


@triton.jit
def _draws_kernel(positions, n_positions, out_shrink, out_draws, alias_prob, alias_idx, seed, window, vocab_size,
                  N_DRAWS: tl.constexpr, BLOCK: tl.constexpr):  # fmt: skip
    """The training kernel's draws at ``positions`` (P,): the window shrink (P,) and the noise words of
    draws 0 .. N_DRAWS - 1 (P, N_DRAWS) (draw 0 is never used for a noise word)."""
    i = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    m = i < n_positions
    pos = tl.load(positions + i, mask=m, other=0)
    tl.store(out_shrink + i, _window_shrink(seed, pos, window), mask=m)
    for d in tl.static_range(N_DRAWS):
        tl.store(out_draws + i * N_DRAWS + d, _negative(seed, pos, d, alias_prob, alias_idx, vocab_size), mask=m)


def draws(positions, seed: int, window: int, alias_prob, alias_idx, n_draws: int):
    """What the training kernel draws at kept positions ``positions`` (P,) int64 under the launch key ``seed``.

    Returns:
        ``(shrink, noise)``: (P,) int64 window shrinks ``b`` and (P, n_draws) int64 noise words, where
        skip-gram's pair (c, pos) uses draws ``(c - pos + window) * negative + 1 ..`` ``+ negative`` and CBOW's
        step at pos uses draws ``1 .. negative``.
    """
    n = positions.numel()
    shrink = torch.empty(n, dtype=torch.int64, device=positions.device)
    noise = torch.empty(n, n_draws, dtype=torch.int64, device=positions.device)
    block = 128
    _draws_kernel[(triton.cdiv(n, block),)](positions, n, shrink, noise, alias_prob, alias_idx, seed, window,
                                            alias_prob.numel(), N_DRAWS=n_draws, BLOCK=block)  # fmt: skip
    return shrink, noise


# --------------------------------------------------------------------------------------------------
# The driver
# --------------------------------------------------------------------------------------------------


def split_offsets(offsets: np.ndarray, max_length: int) -> np.ndarray:
    """Sentence offsets (S + 1,) with every sentence longer than ``max_length`` cut into pieces of at most
    ``max_length`` tokens (empty sentences stay)."""
    offsets = np.asarray(offsets, dtype=np.int64)
    lengths = np.diff(offsets)
    if lengths.size == 0 or lengths.max() <= max_length:
        return offsets
    n_pieces = np.maximum(1, -(-lengths // max_length))
    first_piece = np.repeat(np.cumsum(n_pieces) - n_pieces, n_pieces)
    starts = np.repeat(offsets[:-1], n_pieces) + (np.arange(int(n_pieces.sum())) - first_piece) * max_length
    return np.append(starts, offsets[-1])


def launch_order(offsets: np.ndarray, pieces) -> np.ndarray:
    """The order programs take the sentences in: within each launch's range ``(s_begin, s_end)``, longest
    first (stable). A launch lasts as long as its slowest program, one sentence walked word by word; started
    first, the long sentences finish while the many short ones fill the GPU. (S,) int64."""
    lengths = np.diff(offsets)
    order = np.arange(lengths.size, dtype=np.int64)
    for s_begin, s_end in pieces:
        order[s_begin:s_end] = s_begin + np.argsort(-lengths[s_begin:s_end], kind="stable")
    return order


def concurrent_programs(alpha: float, counts, keep, noise, objective: str, window: int, negative: int,
                        use_hs: bool, limit: int | None = None) -> int:  # fmt: skip
    """How many programs may run at once: the largest power of two P (at most ``limit``) with
    ``alpha * P * H <= 1``, where H is the expected number of updates a step makes to the hottest row.

    P programs at once put about P * H stale updates on that row at a time, summed by the atomic adds: an
    effective step of alpha * P * H on it. In the simulation (bench/sim_gpu_hogwild.py, the shared corpus,
    H = 0.082: the output row of "the", drawn as a noise word), training diverged when that product reached
    2-8 (CBOW at alpha 0.1 between P = 256 and 512, at 0.05 between 1024 and 2048, at 0.025 between 2048 and
    4096; skip-gram at 0.05 between 1024 and 2048), and trained as sequential SGD below it; the bound keeps
    a factor of 2 or more.

    Args:
        alpha: the initial learning rate. counts: (V,) token counts. keep: (V,) subsampling keep
            probabilities. noise: (V,) the noise distribution (negative sampling; ignored with ``use_hs``).
        objective, window, negative, use_hs: the training options. limit: at most this many (default
            ``GPU_PROGRAMS``).

    H: a row is updated by a step when its word is the step's input (CBOW: each of ~window + 1 context words on
    average; skip-gram: the one context word), its output (negative sampling: the word, and each of
    ``negative`` noise words), or, with hierarchical softmax, a node on the word's Huffman path: the root is
    on every path, so H = 1.
    """
    kept = np.asarray(counts, dtype=np.float64) * np.asarray(keep, dtype=np.float64)
    share = kept / max(kept.sum(), 1e-300)
    inputs = (window + 1) * share if objective == "cbow" else share
    if use_hs:
        hottest = max(1.0, float(inputs.max()))
    else:
        noise = np.asarray(noise, dtype=np.float64)
        hottest = float(max(inputs.max(), (share + negative * noise / noise.sum()).max()))
    limit = GPU_PROGRAMS if limit is None else limit
    programs = 1
    while programs * 2 <= limit and alpha * programs * 2 * hottest <= 1.0:
        programs *= 2
    return programs


def launch_seed(seed: int, launch: int) -> int:
    """The Philox key of the ``launch``-th kernel launch of a run (a non-negative int below 2**63)."""
    return (seed * 1_000_003 + launch * 7_919 + 1) % (1 << 63)


def subsample(ids: torch.Tensor, offsets: torch.Tensor, keep_prob: torch.Tensor, generator) -> tuple:
    """word2vec's subsampling of a run of sentences, every token at once: keep token ``w`` with
    probability ``keep_prob[w]`` (ids of probability 0 never).

    Args:
        ids: (n,) int32 the sentences' tokens. offsets: (k + 1,) int64 sentence starts in ``ids``.
    Returns:
        The kept ids (n_kept,) int32 and the sentences' starts in them (k + 1,) int64.
    """
    keep = torch.rand(ids.shape, generator=generator, device=ids.device) < keep_prob[ids.long()]
    kept_before = torch.nn.functional.pad(torch.cumsum(keep, 0), (1, 0))
    return ids[keep], kept_before[offsets]


def train_arrays_on_device(corpus, syn0, syn1, keep, alias_prob, alias_idx, codes, points, code_lens, use_hs: bool,
                           o: dict, device, schedule, bar, programs: int) -> None:  # fmt: skip
    """Train ``syn0`` / ``syn1`` (numpy; written back at the end) on ``device`` for ``o["epochs"]`` epochs.

    Args:
        corpus: the ``EncodedCorpus``. keep: (V,) keep probabilities. alias_prob, alias_idx: the noise
            distribution's alias table; codes, points, code_lens: the Huffman paths (all numpy, as the
            CPU kernels take them). o: the training options. schedule: ``_schedule(offsets, epochs,
            piece_words)``, the CPU path's interleaved order. bar: a tqdm bar, moved once per launch.
        programs: how many programs run at once (``concurrent_programs``).
    """
    dev = torch.device(device)
    vocab_size, d_size = syn0.shape
    offsets_np = split_offsets(corpus.offsets, GPU_SENTENCE_LENGTH)

    def put(a, dtype=None):
        t = torch.from_numpy(np.ascontiguousarray(a))
        return t.to(device=dev, dtype=dtype or t.dtype)

    ids, raw_offsets, keep_prob = put(corpus.ids), put(offsets_np), put(keep)
    w0, w1 = put(syn0), put(syn1)
    alias_prob, alias_idx = put(alias_prob), put(alias_idx, torch.int32)
    codes, points, code_lens = put(codes, torch.int8), put(points, torch.int32), put(code_lens, torch.int32)
    max_code = codes.shape[1]
    generator = torch.Generator(device=dev)
    generator.manual_seed(o["seed"])
    n_tokens = int(corpus.ids.size)
    total = float(o["epochs"] * n_tokens)
    block_d = triton.next_power_of_2(d_size)
    negative = 0 if use_hs else o["negative"]
    constants = dict(D=d_size, BLOCK_D=block_d, NEGATIVE=negative, NEG_BLOCK=triton.next_power_of_2(negative + 1),
                     HS_BLOCK=HS_BLOCK, WIN_BLOCK=triton.next_power_of_2(2 * o["window"] + 1),
                     SKIPGRAM=o["objective"] == "skipgram", USE_HS=use_hs,
                     CBOW_MEAN=bool(o["cbow_mean"]), SHRINK_WINDOWS=bool(o["shrink_windows"]),
                     num_warps=2 if block_d <= 256 else 4, enable_fp_fusion=True)  # fmt: skip
    schedule_ = schedule(offsets_np, o["epochs"], GPU_PIECE_WORDS)
    pieces_per_epoch = len(schedule_) // max(o["epochs"], 1)
    order = put(launch_order(offsets_np, [(a, b) for a, b, _ in schedule_[:pieces_per_epoch]]))
    alpha, min_alpha = o["alpha"], o["min_alpha"]
    for i, (s_begin, s_end, words_done) in enumerate(schedule_):
        # subsampled per launch: the device holds the corpus ids and one launch's draws, not an epoch's
        a, b = int(offsets_np[s_begin]), int(offsets_np[s_end])
        kept_ids, kept_offsets = subsample(ids[a:b], raw_offsets[s_begin : s_end + 1] - a, keep_prob, generator)
        if kept_ids.numel():
            _train_kernel[(min(s_end - s_begin, programs),)](
                kept_ids, kept_offsets, raw_offsets, order, w0, w1, alias_prob, alias_idx, codes, points, code_lens,
                s_begin, s_end - s_begin, float(words_done), total, alpha, min_alpha, launch_seed(o["seed"], i),
                o["window"], vocab_size, max_code, **constants,
            )  # fmt: skip
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        lr = max(min_alpha, alpha - (alpha - min_alpha) * (words_done + b - a) / total)
        bar.update(b - a)
        bar.set_postfix_str(f"lr={lr:.5f}", refresh=False)
    syn0[...] = w0.cpu().numpy()
    syn1[...] = w1.cpu().numpy()
