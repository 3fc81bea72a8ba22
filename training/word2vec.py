"""Fast Word2Vec training: word2vec's per-pair SGD in numba kernels, several threads (Hogwild), saved as a
transformers checkpoint.

    from w2vformer import train_word2vec

    model, tokenizer = train_word2vec(["corpus.txt.gz"], objective="skipgram", output_dir="runs/w2v")
    wv = WordVectors.from_model(model, tokenizer)      # or WordVectors.from_pretrained("runs/w2v")

The result is the same kind of checkpoint the Trainer path writes (``Word2VecConfig`` + ``Word2VecModel``
with ``in_embed`` / ``out_embed`` and the ``token_counts`` / Huffman buffers, plus the tokenizer), so
``AutoModel.from_pretrained("runs/w2v")`` loads it after ``import w2vformer``.

How it runs (the word2vec C tool's algorithm, as gensim's ``corpus_file`` mode runs it):
1. The corpus is read once into one contiguous int32 id array with sentence offsets (``training/corpus.py``).
   Without a tokenizer, words are whitespace-split and counted in the same pass; words seen fewer than
   ``min_count`` times become ``[UNK]`` and are never trained. With a tokenizer (e.g. a BPE one: subword
   Word2Vec), ``encode_batch`` encodes line batches.
2. The model is built with ``Word2VecModel(config, token_counts=counts)``; its weight tensors are trained
   in place through numpy views (no copy).
3. Each epoch is cut into pieces of ~``_PIECE_WORDS`` tokens at sentence boundaries; ``threads`` Python
   threads take pieces in order and run the ``nogil`` numba kernel (``training/_w2v_kernels.py``) on the
   shared arrays at once (Hogwild, as word2vec and gensim do). A piece's learning rate follows its place in
   the schedule: linear from ``alpha`` to ``min_alpha`` over epochs x corpus tokens.

Throughput is counted as gensim and word2vec count it: raw corpus tokens (before ``min_count`` and
subsampling) per second of training, i.e. epochs x corpus tokens / training wall time.

The pure-torch reference (``reference_sg_steps`` / ``reference_cbow_steps``) writes the same updates in
torch ops, one step at a time; tests hold the numba kernels equal to it. The kernels run on the CPU
only; a GPU does not speed up word2vec's tiny sequential updates (batching them changes the algorithm,
see /work/shared/data/README.md), so this path ignores CUDA.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from w2vformer.training import corpus as corpus_lib

logger = logging.getLogger(__name__)

__all__ = ["train_word2vec", "default_alpha", "reference_sg_steps", "reference_cbow_steps"]

_PIECE_WORDS = 20000  # tokens per unit of work handed to a thread
_SPECIALS = ("[PAD]", "[UNK]")


def default_alpha(objective: str) -> float:
    """The initial learning rate when none is given: 0.05 for both objectives.

    word2vec.c uses 0.05 for CBOW and 0.025 for skip-gram, gensim 0.025 for both. Chosen by quality on the
    7.35M-word corpus-en (5 epochs, 2 threads, questions-words restrict_vocab 30000 / wordsim353 Spearman):
    skip-gram 0.025 -> 0.203 / 0.563, 0.05 -> 0.213 / 0.613; CBOW at 0.05 is word2vec.c's setting (0.235 /
    0.532 for the C tool against gensim's 0.191 / 0.509 at 0.025). See bench/README.md.
    """
    if objective not in ("skipgram", "cbow"):
        raise ValueError(f"objective must be 'skipgram' or 'cbow', got {objective!r}")
    return 0.05


# --------------------------------------------------------------------------------------------------
# The corpus and the vocabulary
# --------------------------------------------------------------------------------------------------


def _encode_corpus(source, tokenizer, min_count: int):
    """Returns (tokenizer, corpus, counts (V,) int64 with specials and tokens under min_count zeroed)."""
    if tokenizer is None:
        from w2vformer.conversion.vectors import build_wordlevel_tokenizer

        corpus, words, counts = corpus_lib.count_words(source)
        if corpus.raw_words == 0:
            raise ValueError("the corpus is empty: no words found in the input; check the files")
        vocab, corpus = corpus_lib.apply_min_count(corpus, words, counts, min_count, specials=_SPECIALS)
        tokenizer = build_wordlevel_tokenizer(vocab)
        counts = corpus_lib.token_counts(corpus, len(vocab), exclude=range(len(_SPECIALS)))
        return tokenizer, corpus, counts

    vocab_size = len(tokenizer)
    corpus = corpus_lib.encode_with_tokenizer(source, tokenizer)
    if corpus.ids.size == 0:
        raise ValueError("the corpus is empty: the tokenizer produced no tokens from the input; check the files")
    counts = corpus_lib.token_counts(corpus, vocab_size, exclude=tokenizer.all_special_ids)
    seen = int((counts > 0).sum())
    counts[counts < min_count] = 0
    if counts.sum() == 0:
        raise ValueError(
            f"no token occurs at least min_count={min_count} times: the corpus has {corpus.ids.size} tokens, "
            f"{seen} distinct non-special ones; lower min_count or give more text"
        )
    return tokenizer, corpus, counts


def _pieces(offsets: np.ndarray, piece_words: int) -> list[tuple[int, int]]:
    """Split sentences 0..S-1 into consecutive ranges of about ``piece_words`` tokens."""
    n_sent = len(offsets) - 1
    targets = np.arange(piece_words, offsets[-1], piece_words)
    cuts = np.unique(np.concatenate([[0], np.searchsorted(offsets, targets), [n_sent]]))
    return [(int(a), int(b)) for a, b in zip(cuts[:-1], cuts[1:]) if b > a]


# --------------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------------


def train_word2vec(
    corpus_files_or_iterator,
    tokenizer=None,
    objective: str = "skipgram",
    vector_size: int = 100,
    window: int = 5,
    negative: int = 5,
    loss: str = "negative_sampling",
    sample: float = 1e-3,
    min_count: int = 5,
    epochs: int = 5,
    alpha: float | None = None,
    min_alpha: float = 1e-4,
    threads: int = 2,
    seed: int = 1,
    cbow_mean: bool = True,
    shrink_windows: bool = True,
    ns_exponent: float = 0.75,
    output_dir=None,
    progress: bool = True,
):
    """Train Word2Vec (skip-gram or CBOW; negative sampling or hierarchical softmax) on a corpus.

    Args:
        corpus_files_or_iterator: a text file or a list of them (one sentence per line, ``.gz`` allowed),
            or an iterable of sentences (strings or lists of tokens).
        tokenizer: ``None`` to build a word-level vocabulary of the words seen at least ``min_count`` times
            (``[PAD]`` = 0, ``[UNK]`` = 1, then by descending count), or any transformers fast tokenizer
            (subword Word2Vec: its tokens are the units; special tokens are never trained).
        objective: ``"skipgram"`` or ``"cbow"``.
        vector_size, window, negative, sample, min_count, epochs, min_alpha, cbow_mean, shrink_windows,
            ns_exponent: word2vec's options (see ``Word2VecConfig``).
        loss: ``"negative_sampling"`` or ``"hierarchical_softmax"``.
        alpha: initial learning rate; ``None`` for ``default_alpha(objective)`` (0.05).
        threads: worker threads (Hogwild on shared weights).
        seed: seeds the initialisation and every thread's random stream (one thread: reproducible).
        output_dir: if given, the model and tokenizer are saved there (``save_pretrained``, atomically).
        progress: show a tqdm bar with words/s and the current learning rate.

    Returns:
        ``(model, tokenizer)``: a ``Word2VecModel`` in eval mode (its ``training_stats`` attribute holds
        ``raw_words``, ``train_seconds``, ``words_per_second``, ``prepare_seconds``) and the tokenizer.
    """
    import torch

    from w2vformer.modeling.configuration_word2vec import Word2VecConfig
    from w2vformer.modeling.modeling_word2vec import Word2VecModel
    from w2vformer.training import _w2v_kernels as K

    if not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be an integer >= 1, got {threads!r}")
    if alpha is None:
        alpha = default_alpha(objective)
    t0 = time.perf_counter()
    # Validate the options before reading the corpus (the config raises ValueError quoting a bad value).
    Word2VecConfig(vocab_size=2, vector_size=vector_size, objective=objective, cbow_mean=cbow_mean, loss=loss,
                   negative=negative, ns_exponent=ns_exponent, window=window, shrink_windows=shrink_windows,
                   sample=sample, min_count=min_count, alpha=alpha, min_alpha=min_alpha, epochs=epochs, seed=seed)  # fmt: skip
    if min_count < 1:
        raise ValueError(f"min_count must be >= 1 for train_word2vec, got {min_count}")

    tokenizer, corpus, counts = _encode_corpus(corpus_files_or_iterator, tokenizer, min_count)
    vocab_size = len(counts)
    pad_id = tokenizer.pad_token_id
    config = Word2VecConfig(
        vocab_size=vocab_size, vector_size=vector_size, objective=objective, cbow_mean=cbow_mean, loss=loss,
        negative=negative, ns_exponent=ns_exponent, window=window, shrink_windows=shrink_windows, sample=sample,
        min_count=min_count, alpha=float(alpha), min_alpha=float(min_alpha), epochs=epochs, seed=seed,
        pad_token_id=pad_id if pad_id is not None and pad_id < vocab_size else None,
    )  # fmt: skip
    model = Word2VecModel(config, token_counts=torch.from_numpy(counts)).eval()

    # numpy views of the parameters: the kernels write straight into the model's storage
    syn0 = model.in_embed.weight.detach().numpy()
    syn1 = model.out_embed.weight.detach().numpy()
    keep = K.keep_probabilities(counts, sample)
    use_hs = loss == "hierarchical_softmax"
    if use_hs:
        codes = model.hs_codes.numpy()
        points = model.hs_points.numpy().astype(np.int32)
        code_lens = model.hs_code_lengths.numpy().astype(np.int32)
        alias_prob, alias_idx = np.ones(1, np.float32), np.zeros(1, np.int32)
    else:
        codes, points, code_lens = np.zeros((1, 1), np.int8), np.zeros((1, 1), np.int32), np.zeros(1, np.int32)
        weights = np.where(counts > 0, counts.astype(np.float64) ** ns_exponent, 0.0)
        alias_prob, alias_idx = K.build_alias_table(weights)
    prepare_seconds = time.perf_counter() - t0

    n_tokens = int(corpus.ids.size)
    total = epochs * n_tokens
    schedule = [(e, a, b) for e in range(epochs) for a, b in _pieces(corpus.offsets, _PIECE_WORDS)]
    lock = threading.Lock()
    state = {"next": 0, "done": 0, "alpha": float(alpha)}

    from tqdm.auto import tqdm

    bar = tqdm(total=total, unit="word", unit_scale=True, disable=not progress, desc=f"word2vec {objective}",
               smoothing=0.1, mininterval=0.5)  # fmt: skip

    def worker(thread_index: int) -> None:
        rng = np.uint64(seed * 1_000_003 + thread_index * 7_919 + 1)
        while True:
            with lock:
                i = state["next"]
                state["next"] += 1
            if i >= len(schedule):
                return
            epoch, s_begin, s_end = schedule[i]
            words_done = epoch * n_tokens + int(corpus.offsets[s_begin])
            words, rng = K.train_chunk(
                corpus.ids, corpus.offsets, s_begin, s_end, syn0, syn1, keep, alias_prob, alias_idx,
                codes, points, code_lens, objective == "skipgram", use_hs, cbow_mean, negative, window,
                shrink_windows, float(alpha), float(min_alpha), float(words_done), float(total), rng,
            )  # fmt: skip
            rng = np.uint64(rng)  # numba returns a Python int; pass it back as uint64
            with lock:
                state["done"] += int(words)
                lr = max(min_alpha, alpha - (alpha - min_alpha) * (words_done + words) / total)
                bar.update(int(words))
                bar.set_postfix_str(f"lr={lr:.5f}", refresh=False)

    t1 = time.perf_counter()
    try:
        if threads == 1:
            worker(0)
        else:
            with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="word2vec") as pool:
                for f in [pool.submit(worker, t) for t in range(threads)]:
                    f.result()
    finally:
        bar.close()
    train_seconds = time.perf_counter() - t1
    if not np.isfinite(syn0).all():
        raise FloatingPointError(f"training diverged (non-finite vectors); lower alpha (was {alpha})")

    model.training_stats = {
        "raw_words": corpus.raw_words,
        "tokens": n_tokens,
        "epochs": epochs,
        "vocab_size": vocab_size,
        "prepare_seconds": prepare_seconds,
        "train_seconds": train_seconds,
        "words_per_second": epochs * corpus.raw_words / max(train_seconds, 1e-9),
    }
    logger.info("word2vec: %d raw words x %d epochs in %.1f s (%.0f words/s)", corpus.raw_words, epochs,
                train_seconds, model.training_stats["words_per_second"])  # fmt: skip
    if output_dir is not None:
        from w2vformer._io import atomic_dir

        with atomic_dir(output_dir) as tmp:
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
    return model, tokenizer


# --------------------------------------------------------------------------------------------------
# Pure-torch reference: the same updates, one step at a time, in torch ops
# --------------------------------------------------------------------------------------------------


def _reference_update(in_w, out_w, inputs, h, target, negatives, alpha, codes=None, points=None, length=None):
    """word2vec's closed-form SGD for one example with input vector ``h`` (D,) built from rows ``inputs``.

    Negative sampling: targets = [target] + negatives (labels 1, 0...; a negative equal to the target is
    skipped). Hierarchical softmax: targets = the Huffman nodes ``points[:length]`` with labels
    ``1 - codes``. For each target t: ``g = (label - sigmoid(out_w[t] . h)) * alpha``; the input gradient
    ``neu1e = sum g * out_w[t]`` uses the output rows before their update ``out_w[t] += g * h``.
    Returns neu1e (D,); the caller adds it to the input rows.
    """
    import torch

    if points is not None:
        rows = points[:length].long()
        labels = 1.0 - codes[:length].float()
        mask = torch.ones_like(labels)
    else:
        rows = torch.cat([target.view(1), negatives.long()])
        labels = torch.zeros(rows.shape[0], dtype=h.dtype)
        labels[0] = 1.0
        mask = torch.ones_like(labels)
        mask[1:] = (negatives != target).to(h.dtype)
    u = out_w[rows]  # (T, D)
    g = (labels - torch.sigmoid(u @ h)) * alpha * mask  # (T,)
    neu1e = g @ u  # (D,)
    out_w.index_add_(0, rows, g[:, None] * h[None, :])
    return neu1e


def reference_sg_steps(in_w, out_w, contexts, words, negatives, alphas, hs=None):
    """Skip-gram steps in torch ops: step i, the row ``in_w[contexts[i]]`` predicts ``words[i]``.

    Args:
        in_w: (V, D) float tensor, updated in place. out_w: (V, D) or (V-1, D), updated in place.
        contexts, words: (T,) long. negatives: (T, K) long (ignored with ``hs``). alphas: (T,) floats.
        hs: ``(codes (V, L), points (V, L), lengths (V,))`` for hierarchical softmax, else None.
    """
    for i in range(len(contexts)):
        c, w = contexts[i], words[i]
        h = in_w[c].clone()
        extra = (hs[0][w], hs[1][w], int(hs[2][w])) if hs is not None else (None, None, None)
        neu1e = _reference_update(in_w, out_w, c.view(1), h, w, negatives[i], float(alphas[i]), *extra)
        in_w[c] += neu1e


def reference_cbow_steps(in_w, out_w, contexts, n_contexts, words, negatives, alphas, cbow_mean=True, hs=None):
    """CBOW steps in torch ops: step i, the mean (or sum) of ``in_w[contexts[i, :n_contexts[i]]]`` predicts
    ``words[i]``; every context row then gets the whole ``neu1e`` (word2vec.c; gensim divides it by the
    context size when summing instead of averaging).

    Args: as ``reference_sg_steps``; contexts (T, C) long, n_contexts (T,) long.
    """
    for i in range(len(words)):
        ctx = contexts[i, : int(n_contexts[i])].long()
        w = words[i]
        h = in_w[ctx].sum(0)
        if cbow_mean:
            h = h / len(ctx)
        extra = (hs[0][w], hs[1][w], int(hs[2][w])) if hs is not None else (None, None, None)
        neu1e = _reference_update(in_w, out_w, ctx, h, w, negatives[i], float(alphas[i]), *extra)
        if not cbow_mean:
            neu1e = neu1e / len(ctx)
        in_w.index_add_(0, ctx, neu1e[None, :].expand(len(ctx), -1).contiguous())
