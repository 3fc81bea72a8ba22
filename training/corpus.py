"""A text corpus as one contiguous int32 id array with sentence boundaries, plus token counts.

    corpus, words, counts = count_words(["corpus.txt.gz"])           # one pass: provisional ids
    vocab, corpus = apply_min_count(corpus, words, counts, min_count=5)  # ids of the final vocabulary
    corpus = encode_with_tokenizer(["corpus.txt"], tokenizer)      # any tokenizer (subword Word2Vec)

A sentence is one line (or one item of an iterator), split into pieces of at most
``MAX_SENTENCE_LENGTH`` tokens as gensim's ``LineSentence`` does. Files are streamed (``.gz`` read
through gzip), so the raw text is never held in memory, only the ids.
"""

from __future__ import annotations

import os
from array import array
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Iterator

import numpy as np

MAX_SENTENCE_LENGTH = 10000  # gensim's limit for one training sentence
_BATCH_LINES = 4096


@dataclass
class EncodedCorpus:
    """Token ids of a whole corpus.

    Attributes:
        ids: (N,) int32 token ids, sentences back to back.
        offsets: (S + 1,) int64; sentence ``s`` is ``ids[offsets[s]:offsets[s + 1]]``.
        raw_words: whitespace-separated words read (the unit gensim and word2vec count throughput in).
    """

    ids: np.ndarray
    offsets: np.ndarray
    raw_words: int

    @property
    def num_sentences(self) -> int:
        return len(self.offsets) - 1


def is_file_source(source) -> bool:
    """True if ``source`` names files: a path, or a list/tuple of paths (str or PathLike)."""
    if isinstance(source, (str, os.PathLike)):
        return True
    return isinstance(source, (list, tuple)) and bool(source) and all(isinstance(p, (str, os.PathLike)) for p in source)


def iter_texts(source) -> Iterator:
    """Yield the sentences of ``source``: lines of files, or the items of an iterable.

    Args:
        source: a path or a list of paths (``.gz`` files are decompressed on the fly); anything else is
            an iterable of sentences (strings, or lists of tokens as gensim takes them). To pass a list
            of sentence strings, pass ``iter(list)``.
    """
    if is_file_source(source):
        # bounded memory per line (a huge line is cut at whitespace) and a ValueError naming the file and byte
        # offset for non-UTF-8 input
        from w2vformer.tokenization.corpus import iter_text_lines

        yield from iter_text_lines(source)
        return
    yield from source


def _split_long(lengths: np.ndarray) -> np.ndarray:
    """Offsets (S + 1,) from sentence lengths, splitting sentences longer than MAX_SENTENCE_LENGTH."""
    if lengths.size and lengths.max() > MAX_SENTENCE_LENGTH:
        pieces = []
        for n in lengths.tolist():
            while n > MAX_SENTENCE_LENGTH:
                pieces.append(MAX_SENTENCE_LENGTH)
                n -= MAX_SENTENCE_LENGTH
            pieces.append(n)
        lengths = np.asarray(pieces, dtype=np.int64)
    offsets = np.zeros(lengths.size + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return offsets


def count_words(source) -> tuple[EncodedCorpus, list[str], np.ndarray]:
    """Split ``source`` on whitespace: every word gets a provisional id (first-seen order).

    Files are read twice (count, then encode into an id array of the now known size: the ids are never
    held twice); an iterator is read once, its ids collected in a growing array.

    Args:
        source: see ``iter_texts``.

    Returns:
        ``(corpus, words, counts)``: the corpus in provisional ids, ``words[i]`` the word of provisional
        id ``i`` and ``counts`` (len(words),) int64 its number of occurrences.
    """
    if is_file_source(source):
        return _count_words_two_passes(source)
    index: dict[str, int] = {}
    setdefault = index.setdefault
    ids = array("i")
    lengths = array("q")
    for text in iter_texts(source):
        words = text.split() if isinstance(text, str) else [str(w) for w in text]
        if not words:
            continue
        # setdefault's default is len(index) *before* the call: a new word gets the next id.
        ids.extend([setdefault(w, len(index)) for w in words])
        lengths.append(len(words))
    # a view of the array's buffer (no copy; the array lives as long as the view)
    ids_np = np.frombuffer(ids, dtype=np.int32) if len(ids) else np.zeros(0, dtype=np.int32)
    counts = np.bincount(ids_np, minlength=len(index)).astype(np.int64)
    corpus = EncodedCorpus(ids_np, _split_long(np.frombuffer(lengths, dtype=np.int64)), int(ids_np.size))
    return corpus, list(index), counts


def _count_words_two_passes(source) -> tuple[EncodedCorpus, list[str], np.ndarray]:
    counter: Counter = Counter()
    lengths = array("q")
    for text in iter_texts(source):
        words = text.split()
        if words:
            counter.update(words)
            lengths.append(len(words))
    index = {w: i for i, w in enumerate(counter)}  # Counter keeps first-seen order
    counts = np.fromiter(counter.values(), dtype=np.int64, count=len(counter))
    del counter
    n = int(counts.sum())
    ids = np.empty(n, dtype=np.int32)
    get = index.__getitem__
    pos = 0
    batch: list[int] = []
    for text in iter_texts(source):
        batch.extend(map(get, text.split()))
        if len(batch) >= 1 << 16:
            ids[pos : pos + len(batch)] = batch
            pos += len(batch)
            batch = []
    ids[pos : pos + len(batch)] = batch
    pos += len(batch)
    if pos != n:
        raise RuntimeError(f"the corpus changed while it was read ({n} words counted, {pos} encoded); read it again")
    corpus = EncodedCorpus(ids, _split_long(np.frombuffer(lengths, dtype=np.int64)), n)
    return corpus, list(index), counts


def apply_min_count(
    corpus: EncodedCorpus, words: list[str], counts: np.ndarray, min_count: int, specials=("[PAD]", "[UNK]"),
) -> tuple[list[str], EncodedCorpus]:
    """Keep the words that occur at least ``min_count`` times, most frequent first (ties in first-seen
    order, as gensim sorts), after the special tokens; re-encode the corpus in place with the final ids
    (rarer words become ``[UNK]``, the second special).

    Args:
        corpus: from ``count_words``; its ids are replaced.
        words, counts: from ``count_words``.
        min_count: the word2vec threshold.
        specials: tokens placed first (ids 0, 1, ...); the unknown token is ``specials[1]``.

    Returns:
        ``(vocab, corpus)``: ``vocab`` the final id -> token list; ``corpus.ids`` is rewritten in place.

    Raises:
        ValueError: if no word is frequent enough, quoting the counts.
    """
    if min_count < 1:
        raise ValueError(f"min_count must be >= 1, got {min_count}")
    order = np.argsort(-counts, kind="stable")
    kept = order[counts[order] >= min_count]
    if kept.size == 0:
        top = int(counts.max()) if counts.size else 0
        raise ValueError(
            f"no word occurs at least min_count={min_count} times: the corpus has {corpus.raw_words} words, "
            f"{len(words)} distinct, the most frequent occurs {top} times; lower min_count or give more text"
        )
    clash = [w for w in specials if w in set(words[i] for i in kept)]
    if clash:
        raise ValueError(f"the corpus contains the special token(s) {clash}; remove them from the text")
    unk = specials.index("[UNK]") if "[UNK]" in specials else 1
    remap = np.full(len(words), unk, dtype=np.int32)
    remap[kept] = np.arange(len(specials), len(specials) + kept.size, dtype=np.int32)
    ids = corpus.ids
    for start in range(0, ids.size, 1 << 20):  # in place, a chunk at a time: no second corpus-sized array
        ids[start : start + (1 << 20)] = remap[ids[start : start + (1 << 20)]]
    vocab = list(specials) + [words[i] for i in kept.tolist()]
    return vocab, corpus


def encode_with_vocab(source, vocab: dict[str, int], unk_id: int) -> EncodedCorpus:
    """Whitespace split + dictionary look-up (for a word-level tokenizer whose pipeline is exactly that).

    Args:
        source: see ``iter_texts``.
        vocab: token -> id. unk_id: the id of words not in ``vocab``.
    """
    get = vocab.get
    ids = array("i")
    lengths = array("q")
    for text in iter_texts(source):
        words = text.split() if isinstance(text, str) else [str(w) for w in text]
        if words:
            ids.extend([get(w, unk_id) for w in words])
            lengths.append(len(words))
    ids_np = np.frombuffer(ids, dtype=np.int32) if len(ids) else np.zeros(0, dtype=np.int32)
    return EncodedCorpus(ids_np, _split_long(np.frombuffer(lengths, dtype=np.int64)), int(ids_np.size))


def encode_with_tokenizer(source, tokenizer, batch_lines: int = _BATCH_LINES) -> EncodedCorpus:
    """Encode ``source`` with any transformers fast tokenizer (``encode_batch`` over line batches, no
    special tokens added).

    Args:
        source: see ``iter_texts``; token lists are joined with spaces.
        tokenizer: a ``PreTrainedTokenizerFast`` (or a ``tokenizers.Tokenizer``).
        batch_lines: lines per ``encode_batch`` call.

    Returns:
        The encoded corpus; ``raw_words`` counts whitespace-separated words.
    """
    backend = getattr(tokenizer, "backend_tokenizer", tokenizer)
    ids = array("i")
    lengths = array("q")
    raw = 0

    def flush(batch):
        nonlocal raw
        for enc in backend.encode_batch(batch, add_special_tokens=False):
            if enc.ids:
                ids.extend(enc.ids)
                lengths.append(len(enc.ids))

    batch: list[str] = []
    for text in iter_texts(source):
        line = text if isinstance(text, str) else " ".join(map(str, text))
        line = line.strip()
        if not line:
            continue
        raw += len(line.split())
        batch.append(line)
        if len(batch) >= batch_lines:
            flush(batch)
            batch = []
    if batch:
        flush(batch)
    ids_np = np.frombuffer(ids, dtype=np.int32) if len(ids) else np.zeros(0, dtype=np.int32)
    return EncodedCorpus(ids_np, _split_long(np.frombuffer(lengths, dtype=np.int64)), raw)


def token_counts(corpus: EncodedCorpus, vocab_size: int, exclude: Iterable[int] = ()) -> np.ndarray:
    """(vocab_size,) int64 occurrences of each id in ``corpus``; ids in ``exclude`` (special tokens) get 0."""
    counts = np.bincount(corpus.ids, minlength=vocab_size).astype(np.int64)[:vocab_size]
    for i in exclude:
        if 0 <= i < vocab_size:
            counts[i] = 0
    return counts


__all__ = ["EncodedCorpus", "is_file_source", "iter_texts", "count_words", "apply_min_count", "encode_with_vocab",
           "encode_with_tokenizer", "token_counts", "MAX_SENTENCE_LENGTH"]  # fmt: skip
