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
   in place through numpy views (no copy). With ``return_model=False`` (the CLI) there is no model: plain
   numpy arrays are trained and written as the same checkpoint folder, and torch and transformers are never
   imported (``_save_model_files``, ``_save_wordlevel_tokenizer``).
3. Each epoch is cut into pieces of ~``_PIECE_WORDS`` tokens at sentence boundaries, and walks the two
   halves of the corpus side by side (piece 1 of the first half, piece 1 of the second half, piece 2 of the
   first half, ...), as word2vec.c and gensim's ``corpus_file`` mode do with 2 threads, each starting at its
   own offset of the file (``_schedule``). ``threads`` Python threads take the pieces in that order and
   run the ``nogil`` numba kernel (``training/_w2v_kernels.py``) on the shared arrays at once (Hogwild, as
   word2vec and gensim do). A piece's learning rate follows its place in the schedule: linear from
   ``alpha`` to ``min_alpha`` over epochs x corpus tokens.

Throughput is counted as gensim and word2vec count it: raw corpus tokens (before ``min_count`` and
subsampling) per second of training, i.e. epochs x corpus tokens / training wall time.

The pure-torch reference (``reference_sg_steps`` / ``reference_cbow_steps``) writes the same updates in
torch ops, one step at a time; tests hold the numba kernels equal to it.

On a GPU (``device="auto"`` when one is present, or ``"cuda"``), the same algorithm runs as one Triton kernel
(``training/_w2v_triton.py``): up to 1024 programs at once, each walking its sentences, every update a
word2vec step applied with atomic adds (Hogwild), never a batch of examples (batching changes the algorithm:
stale updates of repeated rows, see /work/shared/data/README.md; simulated, 2048 programs at once already
diverge at alpha 0.05, so the number is chosen from the learning rate and the hottest row). Tests replay its
runs through the torch reference in Triton's interpreter and compile it for GPUs without one.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from itertools import zip_longest

import numpy as np

from w2vformer.training import corpus as corpus_lib

logger = logging.getLogger(__name__)

__all__ = ["train_word2vec", "default_alpha", "reference_sg_steps", "reference_cbow_steps"]

_PIECE_WORDS = 20000  # tokens per unit of work handed to a thread
_SPECIALS = ("[PAD]", "[UNK]")
OBJECTIVES = ("skipgram", "cbow")
LOSSES = ("negative_sampling", "hierarchical_softmax")


def default_alpha(objective: str) -> float:
    """The initial learning rate when none is given: 0.05 for both objectives.

    word2vec.c uses 0.05 for CBOW and 0.025 for skip-gram, gensim 0.025 for both. Chosen by quality on the
    7.35M-word corpus-en (5 epochs, one thread, seed 1, questions-words restrict_vocab 30000 / wordsim353
    Spearman): skip-gram 0.025 -> 0.226 / 0.561, 0.05 -> 0.237 / 0.638, 0.075 -> 0.210 / 0.666; CBOW at 0.05
    is word2vec.c's setting. See bench/README.md.
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be 'skipgram' or 'cbow', got {objective!r}")
    return 0.05


# --------------------------------------------------------------------------------------------------
# Options, the corpus and the vocabulary (numpy only: no torch, no transformers)
# --------------------------------------------------------------------------------------------------


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_options(o: dict) -> None:
    """The checks ``Word2VecConfig`` makes, with its messages, made before anything is read and without
    importing transformers (tests hold the two to the same errors)."""
    import math

    for name in ("vector_size", "window", "negative", "min_count", "epochs", "seed"):
        if not _is_int(o[name]):
            raise ValueError(f"{name} must be an integer, got {o[name]!r}")
    for name in ("ns_exponent", "sample", "alpha", "min_alpha"):
        value = o[name]
        if not (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)):
            raise ValueError(f"{name} must be a finite number, got {value!r}")
    for name in ("cbow_mean", "shrink_windows"):
        if not isinstance(o[name], bool):
            raise ValueError(f"{name} must be True or False, got {o[name]!r}")
    if o["objective"] not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {o['objective']!r}")
    if o["loss"] not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {o['loss']!r}")
    if o["vector_size"] < 1:
        raise ValueError(f"vector_size must be >= 1, got {o['vector_size']}")
    if o["window"] < 1:
        raise ValueError(f"window must be >= 1, got {o['window']}")
    if o["negative"] < 0:
        raise ValueError(f"negative must be >= 0, got {o['negative']}")
    if o["loss"] == "negative_sampling" and o["negative"] == 0:
        raise ValueError(
            "negative=0 with loss='negative_sampling' draws no negatives; set negative >= 1 "
            "(5-20 is usual) or use loss='hierarchical_softmax'"
        )
    if o["sample"] < 0:
        raise ValueError(f"sample must be >= 0 (0 disables subsampling), got {o['sample']}")
    if o["min_count"] < 1:
        raise ValueError(f"min_count must be >= 1 for train_word2vec, got {o['min_count']}")
    if o["alpha"] <= 0:
        raise ValueError(f"alpha (the initial learning rate) must be > 0, got {o['alpha']}")
    if not 0 <= o["min_alpha"] <= o["alpha"]:
        raise ValueError(f"min_alpha must be in [0, alpha={o['alpha']}], got {o['min_alpha']}")
    if o["epochs"] < 1:
        raise ValueError(f"epochs must be >= 1, got {o['epochs']}")


def _encode_corpus(source, tokenizer, min_count: int):
    """Returns (vocab, corpus, counts): ``vocab`` the word list in id order when no tokenizer is given (the
    word-level vocabulary built here: [PAD], [UNK], then words seen >= min_count times by descending count),
    else None; ``counts`` (V,) int64 with the special tokens and the tokens under min_count zeroed."""
    if tokenizer is None:
        corpus, words, counts = corpus_lib.count_words(source)
        if corpus.raw_words == 0:
            raise ValueError("the corpus is empty: no words found in the input; check the files")
        vocab, corpus = corpus_lib.apply_min_count(corpus, words, counts, min_count, specials=_SPECIALS)
        del words
        counts = corpus_lib.token_counts(corpus, len(vocab), exclude=range(len(_SPECIALS)))
        return vocab, corpus, counts

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
    return None, corpus, counts


def huffman_tree(counts) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``build_huffman_tree`` of ``w2vformer.modeling.modeling_word2vec`` in numpy (the same construction,
    word2vec's ``CreateBinaryTree``, and the same arrays), for training without torch.

    Args:
        counts: (V,) non-negative integer token counts, V >= 2.

    Returns:
        codes (V, L) int8, points (V, L) int64, lengths (V,) int64 (see ``build_huffman_tree``).
    """
    counts = np.asarray(counts, dtype=np.int64).reshape(-1)
    vocab_size = counts.size
    order = np.argsort(-counts, kind="stable")  # rank -> token id (descending count, ties in id order)
    count = counts[order].tolist() + [0] * (vocab_size - 1)
    parent = [0] * (2 * vocab_size - 1)
    binary = [0] * (2 * vocab_size - 1)
    pos1, pos2 = vocab_size - 1, vocab_size
    for a in range(vocab_size - 1):
        pair = []
        for _ in range(2):
            if pos1 >= 0 and (pos2 >= vocab_size + a or count[pos1] < count[pos2]):
                pair.append(pos1)
                pos1 -= 1
            else:
                pair.append(pos2)
                pos2 += 1
        min1, min2 = pair
        count[vocab_size + a] = count[min1] + count[min2]
        parent[min1] = parent[min2] = vocab_size + a
        binary[min2] = 1
    root = 2 * vocab_size - 2
    parent_a = np.asarray(parent, dtype=np.int64)
    parent_a[root] = root
    binary_a = np.asarray(binary, dtype=np.int8)
    up = [np.arange(vocab_size)]
    while (up[-1] != root).any():
        up.append(parent_a[up[-1]])
    up = np.stack(up)  # (L+1, V): ancestor h levels above each leaf (by rank)
    lengths_by_rank = (up != root).sum(0)
    k = np.arange(up.shape[0] - 1)[None, :]
    valid = k < lengths_by_rank[:, None]
    leaf = np.arange(vocab_size)[:, None]
    code_height = np.clip(lengths_by_rank[:, None] - 1 - k, 0, None)
    point_height = np.clip(lengths_by_rank[:, None] - k, 0, None)
    codes_by_rank = np.where(valid, binary_a[up[code_height, leaf]], 0).astype(np.int8)
    points_by_rank = np.where(valid, up[point_height, leaf] - vocab_size, 0).astype(np.int64)
    codes, points, lengths = np.empty_like(codes_by_rank), np.empty_like(points_by_rank), np.empty(vocab_size, np.int64)
    codes[order], points[order], lengths[order] = codes_by_rank, points_by_rank, lengths_by_rank
    return codes, points, lengths


def init_vectors(vocab_size: int, vector_size: int, seed: int) -> np.ndarray:
    """word2vec's initial input vectors: uniform in [-0.5/D, 0.5/D), (V, D) float32, from numpy's PCG64
    seeded with ``seed`` (the output vectors start at zero)."""
    out = np.random.default_rng(seed).random((vocab_size, vector_size), dtype=np.float32)
    out -= np.float32(0.5)
    out /= np.float32(vector_size)
    return out


def _schedule(offsets: np.ndarray, epochs: int, piece_words: int = _PIECE_WORDS) -> list[tuple[int, int, int]]:
    """The order of training: ``(s_begin, s_end, words_done)`` per piece, over all epochs, where
    ``words_done`` counts the tokens of the pieces scheduled before it (the learning rate's clock).

    Each epoch interleaves the pieces of the corpus's two halves. Measured on the 7.35M-word corpus-en
    (skip-gram, alpha 0.05, 5 epochs, one thread, questions-words analogy with restrict_vocab 30000): halves
    side by side 0.237 / 0.231 / 0.245 (seeds 1-3), file order 0.228 / 0.218 (seeds 2, 3), pieces in a random
    order per epoch 0.224, four quarters side by side 0.223 (seed 1). See bench/README.md.
    """
    pieces = _pieces(offsets, piece_words)
    middle = int(np.searchsorted(offsets[[a for a, _ in pieces]], offsets[-1] / 2))
    first, second = pieces[:middle], pieces[middle:]
    order = [p for pair in zip_longest(first, second) for p in pair if p is not None]
    schedule, done = [], 0
    for _ in range(epochs):
        for a, b in order:
            schedule.append((a, b, done))
            done += int(offsets[b] - offsets[a])
    return schedule


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
    return_model: bool = True,
    device: str | None = "auto",
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
        output_dir: if given, the model and tokenizer are saved there (a ``save_pretrained`` folder, written
            atomically).
        progress: show a tqdm bar with words/s and the current learning rate.
        return_model: ``False`` (needs ``output_dir``) trains and saves without ever importing torch or
            transformers when no tokenizer object is passed: the process holds numpy, numba, the corpus and
            the vectors only (what ``w2vformer word2vec train`` does). The folder is the same as with
            ``True``, file for file (tests compare them).
        device: ``"auto"`` (default) trains on a GPU when one is present and Triton is installed (torch's
            CUDA wheels bring it), else on the CPU; ``"cpu"`` always uses the numba kernels on ``threads``
            threads; ``"cuda"`` / ``"cuda:N"`` requires the GPU (a ``ValueError`` says why it cannot). On a
            GPU, up to 1024 Triton programs train as many sentences at once (``training/_w2v_triton.py``);
            ``threads`` is ignored there. Either way the vectors come back as numpy/CPU tensors. With
            ``"auto"``, a GPU run that fails warns and trains on the CPU.

    Returns:
        ``(model, tokenizer)``: a ``Word2VecModel`` in eval mode (its ``training_stats`` attribute holds
        ``raw_words``, ``train_seconds``, ``words_per_second``, ``prepare_seconds``) and the tokenizer.
        With ``return_model=False``: the ``training_stats`` dict alone.
    """
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise ValueError(f"threads must be an integer >= 1, got {threads!r}")
    if not return_model and output_dir is None:
        raise ValueError("return_model=False keeps nothing in memory: pass output_dir to save the model")
    if alpha is None:
        alpha = default_alpha(objective)
    backend = _resolve_device(device)
    options = dict(vector_size=vector_size, objective=objective, cbow_mean=cbow_mean, loss=loss, negative=negative,
                   ns_exponent=ns_exponent, window=window, shrink_windows=shrink_windows, sample=sample,
                   min_count=min_count, alpha=alpha, min_alpha=min_alpha, epochs=epochs, seed=seed)  # fmt: skip
    _check_options(options)  # before reading the corpus
    options.update(alpha=float(alpha), min_alpha=float(min_alpha))
    t0 = time.perf_counter()

    vocab, corpus, counts = _encode_corpus(corpus_files_or_iterator, tokenizer, min_count)
    vocab_size = len(counts)
    if tokenizer is None:
        pad_id = _SPECIALS.index("[PAD]")
    else:
        pad_id = tokenizer.pad_token_id
        pad_id = pad_id if pad_id is not None and pad_id < vocab_size else None
    use_hs = loss == "hierarchical_softmax"
    if use_hs and vocab_size < 2:
        raise ValueError(f"hierarchical_softmax needs a vocabulary of >= 2 tokens, got {vocab_size}")

    model = None
    if return_model:
        import torch

        from w2vformer.modeling.configuration_word2vec import Word2VecConfig
        from w2vformer.modeling.modeling_word2vec import Word2VecModel

        config = Word2VecConfig(vocab_size=vocab_size, pad_token_id=pad_id, **options)
        model = Word2VecModel(config, token_counts=torch.from_numpy(counts)).eval()
        # numpy views of the parameters: the kernels write straight into the model's storage
        syn0 = model.in_embed.weight.detach().numpy()
        syn1 = model.out_embed.weight.detach().numpy()
        syn0[...] = init_vectors(vocab_size, vector_size, seed)
        syn1[...] = 0.0
        hs = (model.hs_codes.numpy(), model.hs_points.numpy(), model.hs_code_lengths.numpy()) if use_hs else None
    else:
        syn0 = init_vectors(vocab_size, vector_size, seed)
        syn1 = np.zeros((vocab_size - 1 if use_hs else vocab_size, vector_size), dtype=np.float32)
        hs = huffman_tree(counts) if use_hs else None
    prepare_seconds = time.perf_counter() - t0

    stats = _train_arrays(corpus, counts, syn0, syn1, hs, options, threads, progress, backend,
                          gpu_fallback=device in (None, "auto"))  # fmt: skip
    stats["prepare_seconds"] = prepare_seconds
    del corpus
    if model is not None:
        model.training_stats = stats

    if tokenizer is None and return_model:
        from w2vformer.conversion.vectors import build_wordlevel_tokenizer

        tokenizer = build_wordlevel_tokenizer(vocab)
    if output_dir is not None:
        from w2vformer._io import atomic_dir

        with atomic_dir(output_dir) as tmp:
            if model is not None:
                model.save_pretrained(tmp)
            else:
                tensors = {"in_embed.weight": syn0, "out_embed.weight": syn1, "token_counts": counts}
                if hs is not None:
                    tensors.update(hs_codes=hs[0], hs_points=hs[1], hs_code_lengths=hs[2])
                max_code_length = int(hs[0].shape[1]) if hs is not None else None
                _save_model_files(tmp, options, vocab_size, pad_id, max_code_length, tensors)
            if tokenizer is not None:
                tokenizer.save_pretrained(tmp)
            else:
                _save_wordlevel_tokenizer(tmp, vocab)
    return (model, tokenizer) if return_model else stats


def _resolve_device(device) -> tuple[str, str]:
    """``(backend, device)`` for the ``device`` argument: ``("numba", "cpu")`` or ``("triton", "cuda:N")``.

    ``"auto"`` / ``None`` picks a GPU only when one is plainly there (an NVIDIA or AMD device node) and
    Triton is installed (it comes with torch's CUDA and ROCm wheels): a CPU-only run never imports torch.
    """
    import glob
    import importlib.util

    if device is None or device == "auto":
        if importlib.util.find_spec("triton") is None or not (glob.glob("/dev/nvidia[0-9]*") or glob.glob("/dev/kfd")):
            return "numba", "cpu"
        import torch

        return ("triton", "cuda") if torch.cuda.is_available() else ("numba", "cpu")
    name = str(device)
    if name == "cpu":
        return "numba", "cpu"
    if not (name == "cuda" or name.startswith("cuda:")):
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    import torch

    if not torch.cuda.is_available():
        raise ValueError(f"device={device!r} but torch sees no GPU (torch {torch.__version__}); "
                         "use device='cpu' or 'auto'")  # fmt: skip
    if importlib.util.find_spec("triton") is None:
        raise ValueError(f"device={device!r} needs Triton for the GPU kernel: pip install triton "
                         "(torch's CUDA wheels bring it)")  # fmt: skip
    index = name.partition(":")[2]
    if index and not (index.isdigit() and int(index) < torch.cuda.device_count()):
        raise ValueError(f"device={device!r}: torch sees {torch.cuda.device_count()} GPU(s), cuda:0 .. "
                         f"cuda:{torch.cuda.device_count() - 1}")  # fmt: skip
    return "triton", name


def _train_arrays(corpus, counts, syn0, syn1, hs, o: dict, threads: int, progress: bool, device=("numba", "cpu"),
                  gpu_fallback: bool = False) -> dict:  # fmt: skip
    """Run the kernels over ``corpus`` for ``o["epochs"]`` epochs, updating ``syn0`` / ``syn1`` in place:
    the numba kernels on ``threads`` CPU threads, or the Triton kernel on a GPU (``device`` from
    ``_resolve_device``). With ``gpu_fallback`` (``device="auto"``), a GPU run that fails (a GPU Triton
    cannot compile for, out of memory) warns and trains on the CPU instead: the GPU path writes the
    vectors back only once it has finished, so nothing is half-trained. Returns the training statistics."""
    from w2vformer.training import _w2v_kernels as K

    alpha, min_alpha, epochs, seed = o["alpha"], o["min_alpha"], o["epochs"], o["seed"]
    keep = K.keep_probabilities(counts, o["sample"])
    if hs is not None:
        codes, points, code_lens = hs[0], hs[1].astype(np.int32), hs[2].astype(np.int32)
        alias_prob, alias_idx = np.ones(1, np.float32), np.zeros(1, np.int32)
    else:
        codes, points, code_lens = np.zeros((1, 1), np.int8), np.zeros((1, 1), np.int32), np.zeros(1, np.int32)
        weights = np.where(counts > 0, counts.astype(np.float64) ** o["ns_exponent"], 0.0)
        alias_prob, alias_idx = K.build_alias_table(weights)

    n_tokens = int(corpus.ids.size)
    total = epochs * n_tokens
    schedule = _schedule(corpus.offsets, epochs)
    lock = threading.Lock()
    state = {"next": 0}

    from tqdm.auto import tqdm

    bar = tqdm(total=total, unit="word", unit_scale=True, disable=not progress, desc=f"word2vec {o['objective']}",
               smoothing=0.1, mininterval=0.5)  # fmt: skip

    def worker(thread_index: int) -> None:
        rng = np.uint64(seed * 1_000_003 + thread_index * 7_919 + 1)
        while True:
            with lock:
                i = state["next"]
                state["next"] += 1
            if i >= len(schedule):
                return
            s_begin, s_end, words_done = schedule[i]
            words, rng = K.train_chunk(
                corpus.ids, corpus.offsets, s_begin, s_end, syn0, syn1, keep, alias_prob, alias_idx,
                codes, points, code_lens, o["objective"] == "skipgram", hs is not None, o["cbow_mean"],
                o["negative"], o["window"], o["shrink_windows"], alpha, min_alpha, float(words_done), float(total),
                rng,
            )  # fmt: skip
            rng = np.uint64(rng)  # numba returns a Python int; pass it back as uint64
            with lock:
                lr = max(min_alpha, alpha - (alpha - min_alpha) * (words_done + words) / total)
                bar.update(int(words))
                bar.set_postfix_str(f"lr={lr:.5f}", refresh=False)

    t1 = time.perf_counter()
    try:
        if device[0] == "triton":
            try:
                from w2vformer.training._w2v_triton import concurrent_programs, train_arrays_on_device

                programs = concurrent_programs(alpha, counts, keep, None if hs is not None else weights,
                                               o["objective"], o["window"], o["negative"], hs is not None)  # fmt: skip
                logger.info("word2vec on %s: %d programs at once", device[1], programs)
                train_arrays_on_device(corpus, syn0, syn1, keep, alias_prob, alias_idx, codes, points, code_lens,
                                       hs is not None, o, device[1], _schedule, bar, programs)  # fmt: skip
            except Exception as e:
                if not gpu_fallback:
                    raise
                logger.warning("word2vec on %s failed (%s: %s); training on the CPU instead (device='cpu' skips "
                               "the GPU)", device[1], type(e).__name__, e)  # fmt: skip
                device = ("numba", "cpu")
                bar.reset()
                t1 = time.perf_counter()
        if device[0] == "numba" and threads == 1:
            worker(0)
        elif device[0] == "numba":
            with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="word2vec") as pool:
                for f in [pool.submit(worker, t) for t in range(threads)]:
                    f.result()
    finally:
        bar.close()
    train_seconds = time.perf_counter() - t1
    if not np.isfinite(syn0).all():
        raise FloatingPointError(f"training diverged (non-finite vectors); lower alpha (was {alpha})")
    stats = {
        "raw_words": corpus.raw_words,
        "tokens": n_tokens,
        "epochs": epochs,
        "vocab_size": int(counts.size),
        "train_seconds": train_seconds,
        "words_per_second": epochs * corpus.raw_words / max(train_seconds, 1e-9),
        "device": device[1],
    }
    logger.info("word2vec: %d raw words x %d epochs in %.1f s (%.0f words/s) on %s", corpus.raw_words, epochs,
                train_seconds, stats["words_per_second"], device[1])  # fmt: skip
    return stats


# --------------------------------------------------------------------------------------------------
# Saving without torch or transformers: the files Word2VecModel.save_pretrained and the word-level
# tokenizer's save_pretrained write (tests/test_word2vec_fast.py holds the two folders equal)
# --------------------------------------------------------------------------------------------------

_AUTO_MAP = {"AutoConfig": "configuration_word2vec.Word2VecConfig", "AutoModel": "modeling_word2vec.Word2VecModel"}
_VERY_LARGE_INTEGER = int(1e30)  # transformers' model_max_length for "no limit"


def _save_model_files(tmp, options: dict, vocab_size: int, pad_id, max_code_length, tensors: dict) -> None:
    """config.json, model.safetensors and the model's code (for ``trust_remote_code`` users) into ``tmp``, the
    staging folder of ``atomic_dir``."""
    import importlib.util
    import json
    import shutil
    from importlib.metadata import version
    from pathlib import Path

    from safetensors.numpy import save_file

    config = dict(options, vocab_size=vocab_size, pad_token_id=pad_id, max_code_length=max_code_length,
                  model_type="w2vformer_word2vec", architectures=["Word2VecModel"], auto_map=dict(_AUTO_MAP),
                  dtype="float32", tie_word_embeddings=False, transformers_version=version("transformers"))  # fmt: skip
    tmp = Path(tmp)
    (tmp / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(tmp / "model.safetensors"),
              metadata={"format": "pt"})  # fmt: skip
    code = Path(importlib.util.find_spec("w2vformer.modeling").submodule_search_locations[0])
    for name in ("configuration_word2vec.py", "modeling_word2vec.py"):
        shutil.copyfile(code / name, tmp / name)


def _save_wordlevel_tokenizer(tmp, vocab) -> None:
    """tokenizer.json and tokenizer_config.json of ``build_wordlevel_tokenizer(vocab)``, written with the
    ``tokenizers`` library alone, into ``tmp``, the staging folder of ``atomic_dir``."""
    import json
    from pathlib import Path

    from tokenizers import processors

    from w2vformer.conversion.vectors import wordlevel_tokenizer_object

    tok = wordlevel_tokenizer_object(vocab)
    # what transformers' TokenizersBackend sets when it adds neither bos nor eos
    tok.post_processor = processors.TemplateProcessing(single="$A:0", pair="$A:0 $B:1", special_tokens=[])
    tmp = Path(tmp)
    tok.save(str(tmp / "tokenizer.json"), pretty=True)
    config = {"backend": "tokenizers", "model_max_length": _VERY_LARGE_INTEGER, "pad_token": "[PAD]",
              "tokenizer_class": "TokenizersBackend", "unk_token": "[UNK]"}  # fmt: skip
    (tmp / "tokenizer_config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------------------------------
# Pure-torch reference: the same updates, one step at a time, in torch ops
# --------------------------------------------------------------------------------------------------


def _reference_update(in_w, out_w, inputs, h, target, negatives, alpha, codes=None, points=None, length=None,
                      together=False):  # fmt: skip
    """word2vec's closed-form SGD for one example with input vector ``h`` (D,) built from rows ``inputs``.

    Negative sampling: targets = [target] + negatives (labels 1, 0...; a negative equal to the target is
    skipped). Hierarchical softmax: targets = the Huffman nodes ``points[:length]`` with labels
    ``1 - codes``. For each target t: ``g = (label - sigmoid(out_w[t] . h)) * alpha``, ``neu1e += g * out_w[t]``,
    ``out_w[t] += g * h``. Target by target, in order, as word2vec.c and the CPU kernels (a negative drawn twice
    sees its first update); with ``together``, every target is scored on the rows as they were before the step
    and the updates are summed: one SGD step on the model's loss, as the GPU kernel does. The two differ only
    when a row repeats within the step. Returns neu1e (D,); the caller adds it to the input rows.
    """
    import torch

    if points is not None:
        rows = points[:length].long()
        labels = 1.0 - codes[:length].float()
    else:
        negatives = negatives.long()
        rows = torch.cat([target.view(1).long(), negatives[negatives != target]])
        labels = torch.zeros(rows.shape[0], dtype=h.dtype)
        labels[0] = 1.0
    if together:
        u = out_w[rows]  # (T, D), the rows before the step
        g = (labels - torch.sigmoid(u @ h)) * alpha  # (T,)
        out_w.index_add_(0, rows, g[:, None] * h[None, :])
        return g @ u
    neu1e = torch.zeros_like(h)
    for row, label in zip(rows.tolist(), labels.tolist()):
        u = out_w[row]
        g = (label - torch.sigmoid(u @ h)) * alpha
        neu1e += g * u
        u += g * h  # u is a view: updates out_w in place
    return neu1e


def reference_sg_steps(in_w, out_w, contexts, words, negatives, alphas, hs=None, together=False):
    """Skip-gram steps in torch ops: step i, the row ``in_w[contexts[i]]`` predicts ``words[i]``.

    Args:
        in_w: (V, D) float tensor, updated in place. out_w: (V, D) or (V-1, D), updated in place.
        contexts, words: (T,) long. negatives: (T, K) long (ignored with ``hs``). alphas: (T,) floats.
        hs: ``(codes (V, L), points (V, L), lengths (V,))`` for hierarchical softmax, else None.
        together: score a step's targets at once (the GPU kernel) instead of one after another (see
            ``_reference_update``).
    """
    for i in range(len(contexts)):
        c, w = contexts[i], words[i]
        h = in_w[c].clone()
        extra = (hs[0][w], hs[1][w], int(hs[2][w])) if hs is not None else (None, None, None)
        neu1e = _reference_update(in_w, out_w, c.view(1), h, w, negatives[i], float(alphas[i]), *extra, together=together)
        in_w[c] += neu1e


def reference_cbow_steps(in_w, out_w, contexts, n_contexts, words, negatives, alphas, cbow_mean=True, hs=None,
                         together=False):  # fmt: skip
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
        neu1e = _reference_update(in_w, out_w, ctx, h, w, negatives[i], float(alphas[i]), *extra, together=together)
        if not cbow_mean:
            neu1e = neu1e / len(ctx)
        in_w.index_add_(0, ctx, neu1e[None, :].expand(len(ctx), -1).contiguous())
