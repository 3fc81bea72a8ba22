"""Start a transformer's token embeddings from Word2Vec vectors: the seed note's path in one call.

    from w2vformer.conversion.embedding_init import init_embeddings_from_word2vec

    report = init_embeddings_from_word2vec(model, tokenizer, "runs/word2vec")   # a Word2Vec checkpoint folder
    print(report)          # how many rows came from vectors, by which rule, how many kept their random init

Works for any transformers model with ``get_input_embeddings()`` (our encoder, decoder and seq2seq
families, and stock models): in seq2seq the shared matrix is set once; when the model ties input and
output embeddings the head follows (it is the same tensor); when it does not, ``init_output=True`` starts
the output head from Word2Vec's output matrix (negative sampling's context vectors: the note's "decode
back to a token").

How rows are found, for each token id of the model's tokenizer:

1. ``exact``: same tokenizer (identical vocabularies): row i is copied to row i.
2. ``string``: otherwise the token's surface string, after undoing the tokenizer's markers (``##``
   continuation pieces, byte-level ``Ġ``, sentencepiece ``▁``) is looked up in the vectors' vocabulary,
   as is, then lowercased, then NFKC-normalised and lowercased.
3. ``fallback`` for tokens with no match (special tokens always keep their random init):
   - ``"subword_mean"`` (default): the mean vector of the (up to 50) most frequent words that contain the
     piece (a piece of at least 2 characters); pieces found in no word fall through to ``"random"``.
   - ``"random"``: random rows drawn with the per-dimension mean and spread of the matched rows.
   - ``"keep"``: leave the model's random initialisation.

Widths: when the vectors' width ``d`` differs from ``hidden_size``, choose ``projection``: ``"pca"``
(``d > hidden``: the top principal directions), ``"pad"`` (``d < hidden``: zeros appended) or
``"orthogonal"`` (``d < hidden``: a random orthogonal map, which keeps norms and angles). Then, unless
``rescale=False``, all rows are scaled so that their standard deviation equals that of the model's
current (initialisation-scale) embedding matrix.
"""

from __future__ import annotations

import unicodedata
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from transformers import TrainerCallback

from w2vformer._io import read_json_file

__all__ = [
    "EmbeddingInitReport",
    "init_embeddings_from_word2vec",
    "FreezeEmbeddingsCallback",
    "token_surface",
    "describe_init",
]

_FALLBACKS = ("subword_mean", "random", "keep")
_PROJECTIONS = (None, "pca", "pad", "orthogonal")
_MAX_WORDS_PER_PIECE = 50
_MIN_PIECE_LEN = 2
_MAX_PIECE_LEN = 12


@dataclass
class EmbeddingInitReport:
    """What ``init_embeddings_from_word2vec`` did, row by row, in counts.

    Attributes:
        source: a description of where the vectors came from.
        num_rows: rows of the model's input embedding matrix.
        exact: rows copied one to one (same tokenizer).
        string: rows matched by token string (after undoing markers / normalising).
        subword_mean: rows set to the mean of the words containing the piece.
        random: rows drawn with the matched rows' mean and spread.
        kept: rows left at the model's random initialisation (special tokens, no match with fallback "keep",
            or tokens never seen by Word2Vec).
        projection: how widths were reconciled (None when equal).
        scale: the factor rows were multiplied by (1.0 when ``rescale=False``).
        output_head: "tied" (the head is the input matrix), "word2vec_output" (copied from Word2Vec's output
            matrix), or "untouched".
        unmatched_examples: a few tokens that got no vector, for the log.
    """

    source: str
    num_rows: int
    vector_size: int
    hidden_size: int
    exact: int = 0
    string: int = 0
    subword_mean: int = 0
    random: int = 0
    kept: int = 0
    projection: str | None = None
    scale: float = 1.0
    output_head: str = "untouched"
    unmatched_examples: list[str] = field(default_factory=list)

    @property
    def from_vectors(self) -> int:
        """Rows whose value came from the Word2Vec vectors (exact + string + subword_mean)."""
        return self.exact + self.string + self.subword_mean

    def to_dict(self) -> dict:
        return asdict(self) | {"from_vectors": self.from_vectors}

    def __str__(self) -> str:
        pct = 100.0 * self.from_vectors / max(self.num_rows, 1)
        lines = [
            f"Embeddings initialised from {self.source}: {self.from_vectors}/{self.num_rows} rows ({pct:.1f}%) "
            f"from vectors",
            f"  exact copy (same tokenizer): {self.exact}",
            f"  matched by token string:     {self.string}",
            f"  mean of containing words:    {self.subword_mean}",
            f"  random, matched mean/spread: {self.random}",
            f"  kept at random init:         {self.kept}",
            f"  width {self.vector_size} -> {self.hidden_size}"
            + (f" by {self.projection}" if self.projection else "")
            + f"; rows scaled by {self.scale:.4g}; output head: {self.output_head}",
        ]
        if self.unmatched_examples:
            lines.append(f"  e.g. unmatched: {', '.join(map(repr, self.unmatched_examples))}")
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------
# Sources: a Word2Vec checkpoint (folder or model + tokenizer), a WordVectors / gensim KeyedVectors, a file


@dataclass
class _Vectors:
    keys: list[str]  # index -> key, most frequent first where known
    matrix: np.ndarray  # (N, d) float32 input vectors
    out_matrix: np.ndarray | None  # (N, d) Word2Vec output vectors (negative sampling), by the same index
    vocab: dict[str, int] | None  # the source tokenizer's full token -> id map, for the same-tokenizer test
    ids: np.ndarray | None  # (N,) source-tokenizer id of each key, when vocab is known
    description: str


def _from_word2vec_model(model, tokenizer, description) -> _Vectors:
    if tokenizer is None:
        raise ValueError(
            "a Word2VecModel source needs its tokenizer: pass source_tokenizer=..., or pass the checkpoint "
            "folder (it holds the tokenizer)"
        )
    vocab = tokenizer.get_vocab()
    weight = model.get_input_embeddings().weight.detach().float().cpu().numpy()
    counts = getattr(model, "token_counts", None)
    counts = counts.detach().cpu().numpy() if counts is not None else np.ones(weight.shape[0], dtype=np.int64)
    special = set(getattr(tokenizer, "all_special_ids", []))
    id_to_tok = {i: t for t, i in vocab.items()}
    ids = [i for i in range(weight.shape[0]) if i in id_to_tok and i not in special and counts[i] > 0]
    ids.sort(key=lambda i: -int(counts[i]))
    ids = np.asarray(ids, dtype=np.int64)
    out = None
    if getattr(model.config, "loss", "negative_sampling") == "negative_sampling":
        out_w = model.out_embed.weight.detach().float().cpu().numpy()
        out = out_w[ids]
    keys = [id_to_tok[int(i)] for i in ids]
    return _Vectors(keys, weight[ids], out, vocab, ids, description)


def _load_source(source, source_tokenizer) -> _Vectors:
    if isinstance(source, _Vectors):
        return source
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.exists():
            raise FileNotFoundError(f"word vectors {str(path)!r} do not exist; pass a Word2Vec checkpoint folder or a vector file")
        if path.is_dir():
            config = read_json_file(path / "config.json") if (path / "config.json").exists() else {}
            if config.get("model_type") != "w2vformer_word2vec":
                raise ValueError(
                    f"{str(path)!r} is not a Word2Vec checkpoint folder (config.json model_type is "
                    f"{config.get('model_type')!r}, expected 'w2vformer_word2vec')"
                )
            from transformers import AutoTokenizer

            from w2vformer.modeling.modeling_word2vec import Word2VecModel

            model = Word2VecModel.from_pretrained(path, use_safetensors=True)
            tokenizer = AutoTokenizer.from_pretrained(path)
            return _from_word2vec_model(model, tokenizer, f"Word2Vec checkpoint {str(path)!r}")
        from w2vformer.conversion.vectors import read_vectors

        words, vectors = read_vectors(path, progress=False)
        return _Vectors(list(words), np.asarray(vectors, dtype=np.float32), None, None, None,
                        f"vector file {str(path)!r}")
    if hasattr(source, "get_input_embeddings") and getattr(source.config, "model_type", "") == "w2vformer_word2vec":
        return _from_word2vec_model(source, source_tokenizer, "a Word2VecModel")
    if hasattr(source, "index_to_key") and hasattr(source, "vectors"):  # WordVectors or gensim KeyedVectors
        return _Vectors(list(source.index_to_key), np.asarray(source.vectors, dtype=np.float32), None, None, None,
                        f"{type(source).__name__} ({len(source.index_to_key)} words)")
    raise ValueError(
        f"cannot read word vectors from a {type(source).__name__}; pass a Word2Vec checkpoint folder, a vector "
        "file (word2vec binary/text, GloVe, fastText .vec), a Word2VecModel with source_tokenizer, or a WordVectors"
    )


# ---------------------------------------------------------------------------------------------------
# Matching tokens to words


def token_surface(tokenizer, token: str) -> str:
    """The text a vocabulary entry stands for, without the tokenizer's markers.

    ``##ing`` -> ``ing`` (WordPiece continuation), ``Ġcat`` -> ``cat`` (byte-level BPE: also turns the byte
    alphabet back into characters), ``▁cat`` -> ``cat`` (sentencepiece / Metaspace). Returns "" for a
    byte-level piece that is not valid UTF-8 on its own.
    """
    if token.startswith("##") and len(token) > 2:
        return token[2:]
    text = tokenizer.convert_tokens_to_string([token]) if hasattr(tokenizer, "convert_tokens_to_string") else token
    text = text.replace("\u2581", " ").strip()
    if "\ufffd" in text:
        return ""
    return text


def _normalise(s: str) -> str:
    return unicodedata.normalize("NFKC", s).lower()


def _substring_index(keys: list[str], max_words: int) -> dict[str, list[int]]:
    """piece -> indices (most frequent first) of up to ``_MAX_WORDS_PER_PIECE`` words containing it."""
    index: dict[str, list[int]] = {}
    for i, word in enumerate(keys[:max_words]):
        w = _normalise(word)
        seen = set()
        for a in range(len(w)):
            for b in range(a + _MIN_PIECE_LEN, min(len(w), a + _MAX_PIECE_LEN) + 1):
                piece = w[a:b]
                if piece in seen:
                    continue
                seen.add(piece)
                bucket = index.setdefault(piece, [])
                if len(bucket) < _MAX_WORDS_PER_PIECE:
                    bucket.append(i)
    return index


# ---------------------------------------------------------------------------------------------------
# Widths


def _project(matrix: np.ndarray, hidden: int, projection: str | None, seed: int) -> np.ndarray:
    d = matrix.shape[1]
    if d == hidden:
        return matrix
    if projection is None:
        raise ValueError(
            f"the vectors have width {d} but the model's hidden_size is {hidden}; choose a projection: "
            + ("projection='pca' to reduce" if d > hidden else "projection='pad' or 'orthogonal' to widen")
        )
    if projection == "pca":
        if d < hidden:
            raise ValueError(f"projection='pca' reduces width but the vectors ({d}) are narrower than hidden_size "
                             f"({hidden}); use projection='pad' or 'orthogonal'")
        centred = matrix - matrix.mean(0, keepdims=True)
        # principal directions of the vectors: right singular vectors of the centred matrix
        _, _, vt = np.linalg.svd(centred.astype(np.float64), full_matrices=False)
        reduced = centred @ vt[:hidden].T  # (N, min(hidden, N, d))
        if reduced.shape[1] < hidden:  # fewer vectors than hidden_size: the remaining directions carry nothing
            reduced = np.pad(reduced, ((0, 0), (0, hidden - reduced.shape[1])))
        return reduced.astype(np.float32)
    if d > hidden:
        raise ValueError(f"projection={projection!r} widens but the vectors ({d}) are wider than hidden_size "
                         f"({hidden}); use projection='pca'")
    if projection == "pad":
        return np.concatenate([matrix, np.zeros((matrix.shape[0], hidden - d), dtype=np.float32)], axis=1)
    if projection == "orthogonal":
        rng = np.random.default_rng(seed)
        q, r = np.linalg.qr(rng.standard_normal((hidden, hidden)))
        q = q * np.sign(np.diag(r))  # a uniformly random orthogonal matrix
        return (matrix @ q[:, :d].T).astype(np.float32)  # (N, d) @ (d, hidden): an isometry
    raise ValueError(f"unknown projection {projection!r}; choose one of 'pca', 'pad', 'orthogonal'")


# ---------------------------------------------------------------------------------------------------


@torch.no_grad()
def init_embeddings_from_word2vec(
    model,
    tokenizer,
    source,
    *,
    source_tokenizer=None,
    projection: str | None = None,
    rescale: bool = True,
    fallback: str = "subword_mean",
    init_output: bool | None = None,
    seed: int = 0,
) -> EmbeddingInitReport:
    """Set ``model``'s input embeddings from Word2Vec vectors, in place, and say how.

    Args:
        model: a transformers model with ``get_input_embeddings()`` (encoder, decoder, seq2seq, stock models).
        tokenizer: the model's tokenizer (its vocabulary indexes the embedding rows).
        source: a Word2Vec checkpoint folder, a vector file (word2vec binary/text, GloVe, fastText ``.vec``),
            a ``Word2VecModel`` (then pass ``source_tokenizer``), a ``WordVectors`` or a gensim ``KeyedVectors``.
        source_tokenizer: the tokenizer of a ``Word2VecModel`` source.
        projection: ``None`` (widths must match), ``"pca"``, ``"pad"`` or ``"orthogonal"`` (see module doc).
        rescale: scale the rows to the standard deviation of the model's current embedding matrix.
        fallback: ``"subword_mean"``, ``"random"`` or ``"keep"`` for tokens with no matching word.
        init_output: when the model does not tie its output head to the input embeddings, also start the
            head from Word2Vec's output matrix (needs a Word2Vec source trained with negative sampling).
            Default: True when possible.
        seed: for the random fallback and the orthogonal projection.

    Returns:
        An :class:`EmbeddingInitReport`.

    Raises:
        ValueError: widths differ and no projection was chosen; no token matches any word; the vectors
            contain NaN or inf; unknown ``fallback``/``projection``.
    """
    if fallback not in _FALLBACKS:
        raise ValueError(f"unknown fallback {fallback!r}; choose one of {', '.join(_FALLBACKS)}")
    if projection not in _PROJECTIONS:
        raise ValueError(f"unknown projection {projection!r}; choose one of 'pca', 'pad', 'orthogonal'")
    src = _load_source(source, source_tokenizer)
    if len(src.keys) == 0:
        raise ValueError(f"{src.description} holds no vectors")
    bad = ~np.isfinite(src.matrix).all(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{src.description} contains NaN or inf values ({int(bad.sum())} rows, first: {src.keys[i]!r}); "
            "fix or drop those vectors before initialising a model from them"
        )

    embedding = model.get_input_embeddings()
    weight = embedding.weight  # (V, C)
    num_rows, hidden = weight.shape
    vocab = tokenizer.get_vocab()
    special = set(getattr(tokenizer, "all_special_ids", []))
    report = EmbeddingInitReport(src.description, num_rows, src.matrix.shape[1], hidden,
                                 projection=projection if src.matrix.shape[1] != hidden else None)

    # 1. which source row (if any) each target row takes, and by which rule
    target_rows: list[int] = []
    source_rows: list[int] = []
    rule = np.full(num_rows, "", dtype=object)
    same_tokenizer = src.vocab is not None and src.vocab == vocab
    if same_tokenizer:
        for k, i in enumerate(src.ids):
            if i < num_rows and i not in special:
                target_rows.append(int(i))
                source_rows.append(k)
                rule[i] = "exact"
    else:
        exact_index = {k: i for i, k in enumerate(src.keys)}
        lower_index: dict[str, int] = {}
        for i, k in enumerate(src.keys):  # most frequent first: the first spelling wins
            lower_index.setdefault(k.lower(), i)
            lower_index.setdefault(_normalise(k), i)
        for token, i in vocab.items():
            if i >= num_rows or i in special:
                continue
            surface = token_surface(tokenizer, token)
            if not surface:
                continue
            j = exact_index.get(surface)
            if j is None:
                j = lower_index.get(surface.lower(), lower_index.get(_normalise(surface)))
            if j is not None:
                target_rows.append(i)
                source_rows.append(j)
                rule[i] = "string"
    if not target_rows:
        raise ValueError(
            f"no token of the model's vocabulary ({len(vocab)} tokens) matches a word of {src.description} "
            f"({len(src.keys)} words, e.g. {src.keys[:3]}); check that the vectors and the tokenizer are of the "
            "same language and casing"
        )

    matrix = _project(src.matrix, hidden, projection, seed)
    new = matrix[source_rows]  # (M, C)

    # 2. fallbacks for tokens with no match
    fallback_rows: list[int] = []
    fallback_values: list[np.ndarray] = []
    unmatched = [(t, i) for t, i in vocab.items() if i < num_rows and i not in special and not rule[i]]
    unmatched.sort(key=lambda ti: ti[1])
    report.unmatched_examples = [t for t, _ in unmatched[:5]]
    if fallback != "keep" and unmatched:
        mean, std = new.mean(0), new.std(0) + 1e-8
        rng = np.random.default_rng(seed)
        pieces = _substring_index(src.keys, max_words=50_000) if fallback == "subword_mean" else {}
        for token, i in unmatched:
            words = pieces.get(_normalise(token_surface(tokenizer, token)))
            if words:
                fallback_values.append(matrix[words].mean(0))
                rule[i] = "subword_mean"
            else:
                fallback_values.append(mean + std * rng.standard_normal(hidden).astype(np.float32))
                rule[i] = "random"
            fallback_rows.append(i)

    rows = np.asarray(target_rows + fallback_rows, dtype=np.int64)
    values = np.concatenate([new] + ([np.stack(fallback_values)] if fallback_values else []), axis=0)

    # 3. scale to the model's initialisation scale
    if rescale:
        current = weight.detach().float()
        target_std = float(current.std())
        have_std = float(values.std())
        report.scale = target_std / have_std if have_std > 0 else 1.0
        values = values * report.scale

    weight[torch.as_tensor(rows)] = torch.as_tensor(values, dtype=weight.dtype, device=weight.device)
    for name in ("exact", "string", "subword_mean", "random"):
        setattr(report, name, int((rule == name).sum()))
    report.kept = num_rows - len(rows)

    # 4. the output head
    output = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if output is None:
        report.output_head = "untouched"
    elif output.weight is weight or output.weight.data_ptr() == weight.data_ptr():
        report.output_head = "tied"
    else:
        can = src.out_matrix is not None and output.weight.shape == weight.shape
        if init_output and not can:
            raise ValueError(
                "init_output=True needs a Word2Vec source trained with negative sampling (its output matrix) and "
                f"an output head of the embedding's shape; got {src.description} and head {tuple(output.weight.shape)}"
            )
        if init_output is None:
            init_output = can
        if init_output:
            out_values = _project(src.out_matrix, hidden, projection, seed)[source_rows]
            if rescale:
                out_std = float(out_values.std())
                out_values = out_values * (float(output.weight.detach().float().std()) / out_std if out_std > 0 else 1.0)
            idx = torch.as_tensor(np.asarray(target_rows, dtype=np.int64))
            output.weight[idx] = torch.as_tensor(out_values, dtype=output.weight.dtype, device=output.weight.device)
            report.output_head = "word2vec_output"
    return report


class FreezeEmbeddingsCallback(TrainerCallback):
    """A ``Trainer`` callback that freezes the input embeddings (and a head tied to them: the same tensor)
    for the first ``steps`` optimizer steps, then releases them, so attention first learns on top of the
    Word2Vec vectors before it may move them.

    Usage: ``Trainer(..., callbacks=[FreezeEmbeddingsCallback(steps=200)])``.
    """

    def __init__(self, steps: int):
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
            raise ValueError(f"steps must be a non-negative integer, got {steps!r}")
        self.steps = steps
        self.frozen = False

    def _set(self, model, frozen: bool):
        model.get_input_embeddings().weight.requires_grad_(not frozen)
        self.frozen = frozen

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if model is not None and state.global_step < self.steps:
            self._set(model, True)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if model is not None and self.frozen and state.global_step >= self.steps:
            self._set(model, False)

    def on_train_end(self, args, state, control, model=None, **kwargs):
        if model is not None and self.frozen:
            self._set(model, False)


def describe_init(report: EmbeddingInitReport) -> str:
    """One line for a model card: where the embeddings came from."""
    return (f"Token embeddings initialised from {report.source}: {report.from_vectors} of {report.num_rows} rows "
            f"from the vectors ({report.exact} exact, {report.string} by token string, {report.subword_mean} by "
            f"subword mean), {report.random} random, {report.kept} kept; width {report.vector_size}->"
            f"{report.hidden_size}{' by ' + report.projection if report.projection else ''}.")

