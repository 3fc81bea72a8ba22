"""Word-vector queries with gensim's vocabulary: nearest neighbours, analogies, similarity benchmarks.

    wv = WordVectors.from_pretrained("out/word2vec")        # a Word2Vec checkpoint folder (with tokenizer)
    wv.most_similar("king", topn=5)                         # [(word, cosine), ...]
    wv.most_similar(positive=["king", "woman"], negative=["man"])
    score, sections = wv.evaluate_word_analogies("questions-words.txt")

``WordVectors(index_to_key, vectors, counts)`` holds N keys and an (N, D) float32 matrix; every query is
vectorised numpy over that matrix and returns what gensim's ``KeyedVectors`` returns for the same call
(the tests hold the two equal on the same vectors). Only numpy is needed; torch, transformers and safetensors
are imported by ``from_model`` / ``from_pretrained`` only.
"""

from __future__ import annotations

import difflib
import itertools
import logging
import math
from pathlib import Path
from typing import NamedTuple

import numpy as np

from w2vformer._io import open_safetensors, read_json_file

__all__ = ["WordVectors", "Correlation"]

logger = logging.getLogger(__name__)

_KEY_TYPES = (str, int, np.integer)


class Correlation(NamedTuple):
    """A correlation coefficient and its two-sided p-value (indexable like scipy's results: ``r[0]``, ``r[1]``)."""

    statistic: float
    pvalue: float


def _ensure_list(value) -> list:
    """gensim's convention: a single key or a 1-D vector may be passed instead of a list."""
    if value is None:
        return []
    if isinstance(value, _KEY_TYPES) or (isinstance(value, np.ndarray) and value.ndim == 1):
        return [value]
    return list(value)


def _betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta I_x(a, b) by Lentz's continued fraction (Numerical Recipes 6.4)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x > (a + 1.0) / (a + b + 2.0):  # the fraction converges fast only below the mean; use the symmetry
        return 1.0 - _betainc(b, a, 1.0 - x)
    tiny, eps = 1e-300, 1e-15
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 10000):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < eps:
            break
    return math.exp(log_front) * h / a


def _correlation_pvalue(r: float, n: int) -> float:
    """Two-sided p-value of a correlation r over n pairs (Student t with n-2 degrees of freedom, as scipy)."""
    if n < 3:
        return float("nan")
    r = min(max(r, -1.0), 1.0)
    df = n - 2
    if abs(r) == 1.0:
        return 0.0
    # P(|T| >= t) with t^2 = df r^2 / (1 - r^2) equals I_{df/(df+t^2)}(df/2, 1/2) = I_{1-r^2}(df/2, 1/2)
    return _betainc(df / 2.0, 0.5, 1.0 - r * r)


def _pearson(x: np.ndarray, y: np.ndarray) -> Correlation:
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    xm, ym = x - x.mean(), y - y.mean()
    denom = math.sqrt(float(xm @ xm) * float(ym @ ym))
    r = float(xm @ ym) / denom if denom > 0 else float("nan")
    return Correlation(r, _correlation_pvalue(r, len(x)) if not math.isnan(r) else float("nan"))


def _rank_average(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given their average rank (scipy.stats.rankdata 'average')."""
    x = np.asarray(x)
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    new_group = np.r_[True, sorted_x[1:] != sorted_x[:-1]]
    group = np.cumsum(new_group) - 1  # group id of each sorted position
    starts = np.flatnonzero(new_group)
    ends = np.r_[starts[1:], len(x)]
    average = (starts + ends + 1) / 2.0  # mean of ranks starts+1 .. ends
    ranks = np.empty(len(x), dtype=np.float64)
    ranks[order] = average[group]
    return ranks


def _spearman(x: np.ndarray, y: np.ndarray) -> Correlation:
    return _pearson(_rank_average(x), _rank_average(y))


class WordVectors:
    """Word vectors and gensim-style queries over them.

    Args:
        index_to_key (`list[str]`): the N keys, row order of ``vectors`` (most frequent first is usual; then
            ``restrict_vocab=k`` means "the k most frequent words").
        vectors (`np.ndarray` of shape `(N, D)`): one vector per key (stored as float32).
        counts (`np.ndarray` of shape `(N,)`, *optional*): corpus frequency of each key.

    Attributes:
        index_to_key, key_to_index, vectors (N, D) float32, counts (N,) int64 or None, vector_size (D).
    """

    def __init__(self, index_to_key, vectors, counts=None):
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2:
            raise ValueError(f"vectors must be a 2-D array (N, D), got shape {vectors.shape}")
        index_to_key = list(index_to_key)
        if len(index_to_key) != vectors.shape[0]:
            raise ValueError(f"{len(index_to_key)} keys but {vectors.shape[0]} vectors; pass one vector per key")
        key_to_index = {}
        for i, key in enumerate(index_to_key):
            if key in key_to_index:
                raise ValueError(f"key {key!r} appears twice (rows {key_to_index[key]} and {i}); keys must be unique")
            key_to_index[key] = i
        if counts is not None:
            counts = np.asarray(counts).reshape(-1).astype(np.int64)
            if counts.shape[0] != len(index_to_key):
                raise ValueError(f"{counts.shape[0]} counts but {len(index_to_key)} keys; pass one count per key")
        self.index_to_key: list[str] = index_to_key
        self.key_to_index: dict[str, int] = key_to_index
        self.vectors: np.ndarray = vectors
        self.counts: np.ndarray | None = counts
        self._norms: np.ndarray | None = None

    # ----------------------------------------------------------------------------------------- basics
    @property
    def vector_size(self) -> int:
        """D, the dimension of each vector."""
        return self.vectors.shape[1]

    @property
    def norms(self) -> np.ndarray:
        """(N,) float32 Euclidean norm of each vector (computed once)."""
        if self._norms is None:
            self._norms = np.linalg.norm(self.vectors, axis=1)
        return self._norms

    def _safe_norms(self, end: int | None = None) -> np.ndarray:
        norms = self.norms[:end]
        return np.where(norms > 0, norms, np.float32(1.0))  # a zero vector scores 0, not NaN

    def __len__(self) -> int:
        return len(self.index_to_key)

    def __contains__(self, key) -> bool:
        return key in self.key_to_index

    def __repr__(self) -> str:
        return f"WordVectors<vector_size={self.vector_size}, {len(self)} keys>"

    def get_index(self, key) -> int:
        """Row of ``key``. An int that is not itself a key is taken as a row number (as gensim does).

        Raises:
            KeyError: the key is unknown; the message names it and suggests close matches.
        """
        index = self.key_to_index.get(key, -1)
        if index >= 0:
            return index
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool) and 0 <= key < len(self):
            return int(key)
        raise KeyError(self._unknown_key_message(key))

    def _unknown_key_message(self, key) -> str:
        message = f"word {key!r} is not in the vocabulary ({len(self)} words)"
        if isinstance(key, str):
            # difflib is linear in the vocabulary; the 50000 most frequent words keep it well under a second
            close = difflib.get_close_matches(key, self.index_to_key[:50000], n=3)
            if close:
                message += f"; close matches: {', '.join(map(repr, close))}"
        return message

    def get_vector(self, key, norm: bool = False) -> np.ndarray:
        """The (D,) vector of ``key`` (read-only view); ``norm=True`` returns it scaled to unit length."""
        index = self.get_index(key)
        if norm:
            result = self.vectors[index] / self._safe_norms()[index]
        else:
            result = self.vectors[index]
        result.setflags(write=False)
        return result

    def __getitem__(self, key_or_keys) -> np.ndarray:
        """(D,) vector of one key, or (n, D) vectors of a list of keys."""
        if isinstance(key_or_keys, _KEY_TYPES):
            return self.get_vector(key_or_keys)
        return np.vstack([self.get_vector(key) for key in key_or_keys])

    def get_normed_vectors(self) -> np.ndarray:
        """(N, D) vectors scaled to unit length."""
        return self.vectors / self._safe_norms()[:, None]

    # ----------------------------------------------------------------------------------------- queries
    def _weighted_keys(self, positive, negative):
        """gensim's argument forms: keys, vectors, or (key_or_vector, weight); +1 / -1 by default."""
        keys, weights = [], []
        for items, default in ((_ensure_list(positive), 1.0), (_ensure_list(negative), -1.0)):
            for item in items:
                if isinstance(item, (*_KEY_TYPES, np.ndarray)):
                    keys.append(item)
                    weights.append(default)
                else:
                    keys.append(item[0])
                    weights.append(float(item[1]))
        return keys, np.asarray(weights, dtype=np.float64)

    def _input_indices(self, keys) -> set[int]:
        return {self.get_index(k) for k in keys if isinstance(k, _KEY_TYPES) and (k in self or isinstance(k, (int, np.integer)))}

    def _top(self, scores: np.ndarray, topn: int, exclude: set[int], offset: int = 0) -> list[tuple[str, float]]:
        """The topn (key, score) by descending score, skipping rows in ``exclude`` (rows are offset + i)."""
        k = min(topn + len(exclude), scores.shape[0])
        if k <= 0:
            return []
        best = np.argpartition(-scores, k - 1)[:k] if k < scores.shape[0] else np.arange(scores.shape[0])
        best = best[np.argsort(-scores[best], kind="stable")]
        result = [(self.index_to_key[i + offset], float(scores[i])) for i in best if i + offset not in exclude]
        return result[:topn]

    def most_similar(self, positive=None, negative=None, topn: int | None = 10, restrict_vocab: int | None = None):
        """The keys whose vectors have the highest cosine with the mean of the (unit) query vectors.

        ``most_similar(positive=["king", "woman"], negative=["man"])`` is word2vec's 3CosAdd analogy.

        Args:
            positive: keys (or vectors, or (key, weight) pairs) that count positively (weight 1).
            negative: keys (or vectors, or (key, weight) pairs) that count negatively (weight -1).
            topn: how many to return; None returns the (restrict_vocab or N,) array of cosines.
            restrict_vocab: search only the first ``restrict_vocab`` keys (the most frequent, when sorted).

        Returns:
            `list[tuple[str, float]]`: (key, cosine), best first, the query keys left out; or the array.
        """
        if isinstance(topn, int) and topn < 1:
            return []
        keys, weights = self._weighted_keys(positive, negative)
        if not keys:
            raise ValueError("cannot compute similarity with no input; pass at least one key in positive")
        mean = np.zeros(self.vector_size, dtype=np.float32)
        total = 0.0
        for key, weight in zip(keys, weights):
            vector = key if isinstance(key, np.ndarray) else self.get_vector(key, norm=True)
            mean += weight * vector
            total += abs(weight)
        if total > 0:
            mean = mean / total
        length = np.linalg.norm(mean)
        mean = (mean / length if length > 0 else mean).astype(np.float32)
        end = len(self) if not restrict_vocab else min(restrict_vocab, len(self))
        scores = self.vectors[:end] @ mean / self._safe_norms(end)
        if not topn:
            return scores
        return self._top(scores, topn, self._input_indices(keys))

    def similar_by_vector(self, vector, topn: int | None = 10, restrict_vocab: int | None = None):
        """``most_similar(positive=[vector], ...)``: the keys closest to a (D,) vector."""
        return self.most_similar(positive=[np.asarray(vector, dtype=np.float32)], topn=topn, restrict_vocab=restrict_vocab)

    def most_similar_cosmul(self, positive=None, negative=None, topn: int | None = 10, restrict_vocab: int | None = None):
        """Levy & Goldberg's 3CosMul: rank by prod((1 + cos(x, p)) / 2) / (prod((1 + cos(x, n)) / 2) + 1e-6).

        Args:
            positive, negative: keys or (D,) vectors. topn, restrict_vocab: as in ``most_similar``.

        Returns:
            `list[tuple[str, float]]` best first (query keys left out), or the array of scores when topn is None.
        """
        if isinstance(topn, int) and topn < 1:
            return []
        positive, negative = _ensure_list(positive), _ensure_list(negative)
        if not positive:
            raise ValueError("cannot compute similarity with no input; pass at least one key in positive")
        exclude = self._input_indices(positive + negative)
        end = len(self) if not restrict_vocab else min(restrict_vocab, len(self))

        def unit_scores(terms):
            if not terms:
                return np.ones((0, end), dtype=np.float32)
            q = np.stack([t if isinstance(t, np.ndarray) else self.get_vector(t, norm=True) for t in terms])  # (q, D)
            return (1 + (q @ self.vectors[:end].T) / self._safe_norms(end)) / 2  # (q, end) in [0, 1]

        scores = np.prod(unit_scores(positive), axis=0) / (np.prod(unit_scores(negative), axis=0) + 0.000001)
        if not topn:
            return scores
        return self._top(scores, topn, exclude)

    def similarity(self, w1, w2) -> float:
        """Cosine similarity of two keys."""
        return float(np.dot(self.get_vector(w1, norm=True), self.get_vector(w2, norm=True)))

    def distance(self, w1, w2) -> float:
        """1 - ``similarity(w1, w2)``."""
        return 1.0 - self.similarity(w1, w2)

    def n_similarity(self, ws1, ws2) -> float:
        """Cosine between the means of two lists of key vectors (raw, not unit, vectors are averaged)."""
        if not (len(ws1) and len(ws2)):
            raise ValueError("n_similarity needs two non-empty lists of keys")
        m1 = self[list(ws1)].mean(axis=0)
        m2 = self[list(ws2)].mean(axis=0)
        n1, n2 = np.linalg.norm(m1), np.linalg.norm(m2)
        return float(np.dot(m1 / (n1 if n1 > 0 else 1), m2 / (n2 if n2 > 0 else 1)))

    def doesnt_match(self, words) -> str:
        """The key farthest (by cosine) from the normalised mean of the unit vectors of ``words``.

        Unknown words are ignored with a warning, as gensim does; if none is known, ``ValueError``.
        """
        words = list(words)
        used = [w for w in words if w in self]
        if len(used) != len(words):
            logger.warning("vectors for words %s are not present in the model, ignoring these words", set(words) - set(used))
        if not used:
            raise ValueError(f"none of {words!r} is in the vocabulary; cannot select a word from an empty list")
        vectors = np.stack([self.get_vector(w, norm=True) for w in used])  # (n, D)
        mean = vectors.mean(axis=0)
        mean = mean / (np.linalg.norm(mean) or 1)
        scores = vectors @ mean
        return sorted(zip(scores.tolist(), used), reverse=True)[-1][1]

    # ----------------------------------------------------------------------------------------- benchmarks
    def _ok_vocab(self, restrict_vocab: int, case_insensitive: bool) -> dict[str, int]:
        """Key (upper-cased if case_insensitive) -> row, over the first restrict_vocab keys; the first (most
        frequent) case variant wins, as in gensim."""
        ok = {}
        for i, key in enumerate(self.index_to_key[:restrict_vocab]):
            ok.setdefault(key.upper() if case_insensitive else key, i)
        return ok

    def evaluate_word_analogies(
        self, analogies, restrict_vocab: int = 30000, case_insensitive: bool = True, dummy4unknown: bool = False
    ):
        """Accuracy on an analogy file (word2vec's ``compute-accuracy``, gensim's method of the same name).

        Each line ``a b c d`` asks whether 3CosAdd (``most_similar(positive=[b, c], negative=[a])`` over the first
        ``restrict_vocab`` keys, the inputs and their case variants excluded) predicts d; ``: name`` lines start
        sections. Lines with a word outside the first ``restrict_vocab`` keys are skipped (or counted wrong
        with ``dummy4unknown=True``).

        Args:
            analogies (`str | Path`): the file, e.g. gensim's ``questions-words.txt``.
            restrict_vocab (`int`): only the first this-many keys are known and searched. The default 30000 is
                word2vec's ``compute-accuracy`` threshold and the one our reference figures use; gensim's
                default is 300000 (pass it to reproduce gensim's default call).
            case_insensitive (`bool`): compare upper-cased words (the first case variant of a key wins).
            dummy4unknown (`bool`): count out-of-vocabulary questions as wrong instead of skipping them.

        Returns:
            score (`float`): overall accuracy; sections (`list[dict]`): per section ``{"section": name,
            "correct": [(a, b, c, d), ...], "incorrect": [...]}``, then a ``"Total accuracy"`` section.
        """
        ok_vocab = self._ok_vocab(restrict_vocab, case_insensitive)
        end = min(restrict_vocab, len(self))
        names, entries, oov = [], [], 0  # entries: [section number, (a, b, c, d), correct (None: to answer)]
        with open(analogies, encoding="utf-8") as f:
            for line_no, line in enumerate(f):
                if line.startswith(": "):
                    names.append(line.lstrip(": ").strip())
                    continue
                if not names:
                    raise ValueError(f"missing section header (': name') before line {line_no + 1} of {str(analogies)!r}")
                words = tuple(w.upper() for w in line.split()) if case_insensitive else tuple(line.split())
                if len(words) != 4:
                    logger.info("skipping invalid line #%i in %s", line_no, analogies)
                    continue
                if any(w not in ok_vocab for w in words):
                    oov += 1
                    if dummy4unknown:
                        entries.append([len(names) - 1, words, False])
                    continue
                entries.append([len(names) - 1, words, None])
        if not names:
            raise ValueError(f"no analogy sections found in {str(analogies)!r}; expected ': name' then lines 'a b c d'")

        # Answer the questions with batched matrix products (chunks of 512 x end scores), as gensim's
        # most_similar(positive=[b, c], negative=[a], topn=5) would one by one.
        pending = [e for e in entries if e[2] is None]
        norms = self._safe_norms(end)
        unit = self.vectors[:end] / norms[:, None]
        k = min(8, end)  # topn 5 + the 3 inputs
        for start in range(0, len(pending), 512):
            chunk = pending[start : start + 512]
            idx = np.array([[ok_vocab[w] for w in e[1][:3]] for e in chunk])  # (b, 3) rows of a, b, c
            mean = (unit[idx[:, 1]] + unit[idx[:, 2]] - unit[idx[:, 0]]) / 3  # (b, D)
            mean /= np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), 1e-30)
            scores = (mean @ self.vectors[:end].T) / norms  # (b, end)
            top = np.argpartition(-scores, k - 1, axis=1)[:, :k] if k < end else np.tile(np.arange(end), (len(chunk), 1))
            top = np.take_along_axis(top, np.argsort(-np.take_along_axis(scores, top, 1), axis=1, kind="stable"), 1)
            for entry, inputs, candidates in zip(chunk, idx.tolist(), top.tolist()):
                predicted = None
                for i in [i for i in candidates if i not in inputs][:5]:
                    predicted = self.index_to_key[i].upper() if case_insensitive else self.index_to_key[i]
                    if predicted in ok_vocab and predicted not in entry[1][:3]:
                        break
                entry[2] = predicted == entry[1][3]
        sections = [
            {
                "section": name,
                "correct": [e[1] for e in entries if e[0] == n and e[2]],
                "incorrect": [e[1] for e in entries if e[0] == n and not e[2]],
            }
            for n, name in enumerate(names)
        ]
        total = {
            "section": "Total accuracy",
            "correct": list(itertools.chain.from_iterable(s["correct"] for s in sections)),
            "incorrect": list(itertools.chain.from_iterable(s["incorrect"] for s in sections)),
        }
        sections.append(total)
        n = len(total["correct"]) + len(total["incorrect"])
        score = len(total["correct"]) / n if n else 0.0
        logger.info("analogies: %.1f%% (%i/%i), %i questions with out-of-vocabulary words", 100 * score, len(total["correct"]), n, oov)
        return score, sections

    def evaluate_word_pairs(
        self,
        pairs,
        delimiter: str = "\t",
        encoding: str = "utf8",
        restrict_vocab: int = 300000,
        case_insensitive: bool = True,
        dummy4unknown: bool = False,
    ):
        """Correlation of the model's cosine similarities with human judgements (e.g. WordSim-353).

        Lines ``word1<delimiter>word2<delimiter>score``; ``#`` lines are comments; pairs with a word outside the
        first ``restrict_vocab`` keys are skipped (or scored 0 with ``dummy4unknown=True``).

        Returns:
            pearson (`Correlation`): (coefficient, two-sided p-value); spearman (`Correlation`): rank
            correlation and p-value; oov_ratio (`float`): percentage of pairs with unknown words.
        """
        ok_vocab = self._ok_vocab(restrict_vocab, case_insensitive)
        gold, rows, oov = [], [], 0
        with open(pairs, encoding=encoding) as f:
            for line_no, line in enumerate(f):
                if not line or line.startswith("#"):
                    continue
                parts = [w.upper() for w in line.split(delimiter)] if case_insensitive else line.split(delimiter)
                try:
                    a, b, sim = parts
                    sim = float(sim)
                except (ValueError, TypeError):
                    logger.info("skipping invalid line #%d in %s", line_no, pairs)
                    continue
                if a not in ok_vocab or b not in ok_vocab:
                    oov += 1
                    if dummy4unknown:
                        gold.append(sim)
                        rows.append(None)
                    continue
                gold.append(sim)
                rows.append((ok_vocab[a], ok_vocab[b]))
        if not gold:
            raise ValueError(
                f"no valid similarity judgements in {str(pairs)!r}: wrong format (word1{delimiter!r}word2{delimiter!r}score) "
                "or every pair is out of vocabulary"
            )
        known = np.array([r is not None for r in rows])
        model = np.zeros(len(rows), dtype=np.float64)
        if known.any():
            idx = np.array([r for r in rows if r is not None])  # (n, 2)
            unit = self.vectors[idx] / self._safe_norms()[idx][..., None]  # (n, 2, D)
            model[known] = np.einsum("nd,nd->n", unit[:, 0], unit[:, 1])
        gold = np.asarray(gold, dtype=np.float64)
        pearson, spearman = _pearson(gold, model), _spearman(gold, model)
        oov_ratio = float(oov) / len(gold) * 100 if dummy4unknown else float(oov) / (len(gold) + oov) * 100
        logger.info("pairs %s: pearson %.4f, spearman %.4f, oov %.1f%%", pairs, pearson[0], spearman[0], oov_ratio)
        return pearson, spearman, oov_ratio

    # ----------------------------------------------------------------------------------------- construction
    @classmethod
    def _from_embeddings(cls, vectors: np.ndarray, counts: np.ndarray | None, tokenizer, min_count: int | None):
        """Shared by from_model / from_pretrained: keys from the tokenizer, special tokens and (when counts are
        known) tokens below min_count left out, rows sorted by descending count (stable)."""
        if hasattr(tokenizer, "convert_ids_to_tokens"):
            n_tokens = len(tokenizer)
            special = set(getattr(tokenizer, "all_special_ids", []) or [])
            tokens = tokenizer.convert_ids_to_tokens(list(range(min(n_tokens, vectors.shape[0]))))
        elif hasattr(tokenizer, "id_to_token"):  # a tokenizers.Tokenizer
            n_tokens = tokenizer.get_vocab_size(with_added_tokens=True)
            special = {i for i, t in tokenizer.get_added_tokens_decoder().items() if t.special}
            tokens = [tokenizer.id_to_token(i) for i in range(min(n_tokens, vectors.shape[0]))]
        else:
            raise TypeError(f"tokenizer must be a transformers or tokenizers tokenizer, got {type(tokenizer).__name__}")
        if n_tokens > vectors.shape[0]:
            raise ValueError(
                f"the tokenizer has {n_tokens} tokens but the model only {vectors.shape[0]} vectors; "
                "pass the tokenizer the model was trained with"
            )
        ids = np.array([i for i, t in enumerate(tokens) if t is not None and i not in special], dtype=np.int64)
        known_counts = counts is not None and counts.sum() > 0
        if known_counts:
            if min_count:
                ids = ids[counts[ids] >= min_count]
            ids = ids[np.argsort(-counts[ids], kind="stable")]
        return cls([tokens[i] for i in ids], vectors[ids], counts[ids] if known_counts else None)

    @classmethod
    def from_model(cls, model, tokenizer, min_count: int | None = None) -> "WordVectors":
        """The input vectors (``in_embed``) of a Word2Vec model, keyed by the tokenizer's tokens.

        Special tokens ([PAD], [UNK], ...) are left out. When the model knows its token counts, tokens seen fewer
        than ``min_count`` times (default ``model.config.min_count``; they were never trained) are left out too,
        and keys are sorted by descending frequency, so ``restrict_vocab=k`` means the k most frequent.

        Args:
            model: a ``Word2VecModel`` (or any model with ``get_input_embeddings()``).
            tokenizer: its tokenizer (transformers or tokenizers).
            min_count (`int`, *optional*): override the frequency cut-off (0 keeps every token).
        """
        vectors = model.get_input_embeddings().weight.detach().float().cpu().numpy()
        counts = getattr(model, "token_counts", None)
        counts = counts.detach().cpu().numpy().astype(np.int64) if counts is not None else None
        if min_count is None:
            min_count = getattr(model.config, "min_count", 0)
        return cls._from_embeddings(vectors, counts, tokenizer, min_count)

    @classmethod
    def from_pretrained(cls, path, min_count: int | None = None) -> "WordVectors":
        """Load the word vectors of a Word2Vec checkpoint folder (``config.json`` + safetensors + tokenizer).

        Reads only ``in_embed.weight`` and ``token_counts`` from the safetensors files (not the output matrix).

        Args:
            path (`str | Path`): the folder written by ``save_pretrained`` / the training command.
            min_count (`int`, *optional*): as in ``from_model``; default the config's ``min_count``.
        """
        path = Path(path)
        config_file = path / "config.json"
        if not config_file.is_file():
            raise FileNotFoundError(f"{str(path)!r} has no config.json; pass a Word2Vec checkpoint folder")
        config = read_json_file(config_file)
        if config.get("model_type") != "w2vformer_word2vec":
            raise ValueError(
                f"{str(path)!r} holds a {config.get('model_type')!r} model, not a Word2Vec one (model_type "
                "'w2vformer_word2vec')"
            )
        tensors = _read_safetensors(path, ("in_embed.weight", "token_counts"))
        if "in_embed.weight" not in tensors:
            raise ValueError(f"no in_embed.weight in the safetensors files of {str(path)!r}")
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(path))
        if min_count is None:
            min_count = config.get("min_count", 0)
        return cls._from_embeddings(tensors["in_embed.weight"], tensors.get("token_counts"), tokenizer, min_count)


def _read_safetensors(folder: Path, names) -> dict[str, np.ndarray]:
    """The named tensors from model.safetensors or a sharded model.safetensors.index.json, as numpy."""
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        weight_map = read_json_file(index)["weight_map"]
        files = {name: folder / weight_map[name] for name in names if name in weight_map}
    elif (folder / "model.safetensors").is_file():
        files = {name: folder / "model.safetensors" for name in names}
    else:
        raise FileNotFoundError(f"{str(folder)!r} has no model.safetensors; pass a checkpoint folder")
    out = {}
    for name, file in files.items():
        with open_safetensors(file, framework="pt") as f:  # "pt" reads bfloat16 too
            if name in f.keys():
                out[name] = f.get_tensor(name).float().numpy() if name != "token_counts" else f.get_tensor(name).numpy()
    return out
