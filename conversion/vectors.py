"""Word vectors in and out of w2vformer: format detection, one reader/writer entry point for every format,
and conversion between vector files and Word2Vec checkpoint folders.

    words, vectors = read_vectors("glove.6B.50d.txt")                 # format detected
    vectors_to_checkpoint("GoogleNews-vectors-negative300.bin", "w2v/")  # Word2VecModel + tokenizer
    checkpoint_to_vectors("w2v/", "vectors.txt", format="word2vec-txt")
    wv = load_word2vec_format("vectors.bin")                            # a WordVectors

Formats (``FORMATS``): ``word2vec-bin`` and ``word2vec-txt`` (the C tool's, with a ``count dim`` header),
``fasttext`` (fastText's ``.vec``: word2vec text), ``glove`` (text without header) and ``w2vformer`` (a
checkpoint folder: ``config.json`` + ``model.safetensors`` + tokenizer files).

Ids of a checkpoint made from a vector file. Our tokenizers put ``[PAD]=0, [UNK]=1`` first. If the file's
first two rows are ``[PAD]`` and ``[UNK]`` (as in files written from our checkpoints with
``include_special_tokens=True``), id = row. Otherwise the two tokens are added in front with zero vectors
and id = row + 2. The tokenizer is a ``WordLevel`` model over exactly the file's words (no normalisation,
split on whitespace); a word not in the file maps to ``[UNK]``. The file keeps no counts, so (as gensim
does) ``token_counts`` are made up in file order, descending: ``count = N - row`` (0 for the two special
tokens); the output matrix ``out_embed`` is zeros, word2vec's initial value.

float16 (``fp16=True``): a checkpoint stores ``in_embed`` / ``out_embed`` as float16 in its safetensors
(``config.dtype = "float16"``); text formats write each value rounded to float16 with float16's shortest
digits; the word2vec binary format has no float16 variant and refuses it.

Memory: reading fills one preallocated float32 matrix; writing a checkpoint streams the safetensors file
from that matrix in chunks (the zero ``out_embed`` is never materialised), so a conversion needs little
more than the matrix itself plus the word list.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Sequence

import numpy as np

from w2vformer._io import atomic_dir, open_safetensors, read_json_file
from w2vformer.conversion.glove import read_glove, write_glove
from w2vformer.conversion.word2vec_format import (
    VectorFormatError,
    check_finite,
    check_fp16_range,
    looks_like_text_row,
    open_for_reading,
    read_vocab_counts,
    read_word2vec,
    reading_errors,
    sniff_word2vec_binary,
    validate_vectors,
    write_vocab_counts,
    write_word2vec,
)

__all__ = [
    "FORMATS",
    "VectorFormatError",
    "detect_format",
    "read_vectors",
    "write_vectors",
    "load_word2vec_format",
    "save_word2vec_format",
    "vectors_to_checkpoint",
    "checkpoint_to_vectors",
    "convert_vectors",
    "build_wordlevel_tokenizer",
]

FORMATS = ("word2vec-bin", "word2vec-txt", "fasttext", "glove", "w2vformer")
_ALIASES = {"bin": "word2vec-bin", "txt": "word2vec-txt", "vec": "fasttext", "word2vec-text": "word2vec-txt",
            "word2vec-binary": "word2vec-bin", "checkpoint": "w2vformer"}
SPECIAL_TOKENS = ("[PAD]", "[UNK]")
_FASTTEXT_BIN_MAGIC = struct.pack("<i", 793712314)  # fastText's .bin model files start with this
_COMPRESSED = (".gz", ".bz2")


def _canonical(fmt: str | None) -> str | None:
    if fmt is None:
        return None
    name = _ALIASES.get(fmt.lower(), fmt.lower())
    if name not in FORMATS:
        raise VectorFormatError(f"unknown vector format {fmt!r}; use one of {', '.join(FORMATS)}")
    return name


def _suffix(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    while suffixes and suffixes[-1] in _COMPRESSED:
        suffixes.pop()
    return suffixes[-1] if suffixes else ""


def detect_format(path: str | os.PathLike, for_writing: bool = False) -> str:
    """Guess a vector format: from the contents when reading, from the name when writing.

    Args:
        path: a vector file or a checkpoint folder.
        for_writing: guess for an output path (``.bin`` word2vec-bin, ``.txt`` word2vec-txt (glove when the
            name contains "glove"), ``.vec`` fasttext, no extension or an existing folder: w2vformer).

    Returns:
        str: one of ``FORMATS``.

    Raises:
        VectorFormatError: the format cannot be told; the message lists the formats to pass explicitly.
    """
    path = Path(path)
    choose = f"pass the format explicitly (one of {', '.join(FORMATS)})"
    if for_writing:
        if path.is_dir():
            return "w2vformer"
        ext = _suffix(path)
        by_ext = {".bin": "word2vec-bin", ".vec": "fasttext", "": "w2vformer",
                  ".txt": "glove" if "glove" in path.name.lower() else "word2vec-txt"}
        if ext not in by_ext:
            raise VectorFormatError(
                f"cannot tell the output format of {str(path)!r} from its extension {ext!r}; {choose}"
            )
        return by_ext[ext]
    if path.is_dir():
        if (path / "config.json").is_file():
            return "w2vformer"
        raise VectorFormatError(f"{str(path)!r} is a folder without config.json, not a w2vformer checkpoint; {choose}")
    with reading_errors(path), open_for_reading(path) as f:
        head = f.read(1 << 16)
    if head.startswith(_FASTTEXT_BIN_MAGIC):
        raise VectorFormatError(
            f"{str(path)!r} is a fastText .bin model, not a vector file; use the .vec file published beside it "
            "(or gensim.models.fasttext.load_facebook_vectors, then from_gensim)"
        )
    first = head.split(b"\n", 1)[0]
    parts = first.split()
    if len(parts) == 2 and all(p.isdigit() for p in parts):
        with reading_errors(path):
            binary = sniff_word2vec_binary(path)
        if binary:
            return "word2vec-bin"
        return "fasttext" if _suffix(path) == ".vec" else "word2vec-txt"
    if looks_like_text_row(first, None):
        return "glove"
    raise VectorFormatError(
        f"{str(path)!r} is in no known vector format (its first line {first[:60]!r} is neither a 'count dim' header "
        f"nor a 'word v1 v2 ...' row); {choose}"
    )


def read_vectors(
    path: str | os.PathLike,
    format: str | None = None,
    *,
    limit: int | None = None,
    unicode_errors: str = "strict",
    allow_nonfinite: bool = False,
    include_special_tokens: bool = False,
    progress: bool = True,
) -> tuple[list[str], np.ndarray]:
    """Read word vectors from any supported format.

    Args:
        path: vector file or checkpoint folder.
        format: one of ``FORMATS``; None detects it (:func:`detect_format`).
        limit: read only the first ``limit`` rows.
        unicode_errors: "strict", "replace" or "ignore" for words that are not UTF-8.
        allow_nonfinite: accept NaN / inf values.
        include_special_tokens: checkpoint only: keep the tokenizer's special tokens ([PAD], [UNK], ...).
        progress: show a tqdm bar (on a terminal only).

    Returns:
        (words, vectors): N words and a float32 array of shape (N, D).
    """
    fmt = _canonical(format) or detect_format(path)
    if fmt == "w2vformer":
        words, vectors, _ = _read_checkpoint(path, include_special_tokens, limit)
        return words, vectors
    kwargs = dict(limit=limit, unicode_errors=unicode_errors, allow_nonfinite=allow_nonfinite, progress=progress)
    if fmt == "glove":
        return read_glove(path, **kwargs)
    return read_word2vec(path, binary=fmt == "word2vec-bin", **kwargs)


def write_vectors(
    path: str | os.PathLike,
    words: Sequence[str],
    vectors: np.ndarray,
    format: str | None = None,
    *,
    fp16: bool = False,
    counts: np.ndarray | None = None,
    allow_nonfinite: bool = False,
    progress: bool = True,
) -> str:
    """Write word vectors in any supported format, atomically.

    Args:
        path: output file, or folder for ``w2vformer``.
        words: N distinct words without whitespace.
        vectors: array of shape (N, D).
        format: one of ``FORMATS``; None guesses from ``path`` (:func:`detect_format` with ``for_writing``).
        fp16: see the module docstring.
        counts: ``w2vformer`` only: (N,) token counts (default: made up as ``N - row``).
        allow_nonfinite: write NaN / inf instead of raising (not for ``w2vformer``).
        progress: show a tqdm bar (on a terminal only).

    Returns:
        str: the format written.
    """
    fmt = _canonical(format) or detect_format(path, for_writing=True)
    if fmt == "w2vformer":
        _write_checkpoint(path, words, vectors, counts=counts, fp16=fp16)
    elif fmt == "glove":
        write_glove(path, words, vectors, fp16=fp16, allow_nonfinite=allow_nonfinite, progress=progress)
    else:
        write_word2vec(path, words, vectors, binary=fmt == "word2vec-bin", fp16=fp16,
                       allow_nonfinite=allow_nonfinite, progress=progress)
    return fmt


# ----------------------------------------------------------------------------------- WordVectors API


def load_word2vec_format(
    path: str | os.PathLike,
    binary: bool | None = None,
    *,
    limit: int | None = None,
    unicode_errors: str = "strict",
    allow_nonfinite: bool = False,
    format: str | None = None,
):
    """Load a vector file as a :class:`~w2vformer.keyedvectors.WordVectors` (gensim's function name).

    Args:
        path: vector file (any format of ``FORMATS``) or checkpoint folder.
        binary: True / False force word2vec binary / text; None detects.
        limit: read only the first ``limit`` rows.
        unicode_errors: "strict", "replace" or "ignore".
        allow_nonfinite: accept NaN / inf values.
        format: overrides ``binary`` with any of ``FORMATS``.

    Returns:
        WordVectors: N words with their (N, D) float32 vectors (and counts, from a checkpoint).
    """
    from w2vformer.keyedvectors import WordVectors

    fmt = format if format is not None else (None if binary is None else ("word2vec-bin" if binary else "word2vec-txt"))
    fmt = _canonical(fmt) or detect_format(path)
    if fmt == "w2vformer":
        words, vectors, counts = _read_checkpoint(path, False, limit)
        return WordVectors(words, vectors, counts)
    words, vectors = read_vectors(path, fmt, limit=limit, unicode_errors=unicode_errors,
                                  allow_nonfinite=allow_nonfinite)
    return WordVectors(words, vectors, None)


def save_word2vec_format(
    wv, path: str | os.PathLike, binary: bool = True, *, fp16: bool = False, format: str | None = None
) -> str:
    """Save a :class:`~w2vformer.keyedvectors.WordVectors` (or a gensim KeyedVectors) to a vector file.

    Args:
        wv: the vectors (``index_to_key`` and ``vectors`` are read from it).
        path: output file or folder.
        binary: word2vec binary (True) or text (False), when ``format`` is None.
        fp16: see the module docstring.
        format: any of ``FORMATS``; overrides ``binary``.

    Returns:
        str: the format written.
    """
    fmt = format or ("word2vec-bin" if binary else "word2vec-txt")
    counts = getattr(wv, "counts", None)
    return write_vectors(path, list(wv.index_to_key), np.asarray(wv.vectors), fmt, fp16=fp16,
                         counts=counts if _canonical(fmt) == "w2vformer" else None)


# ------------------------------------------------------------------------------------ checkpoints


def wordlevel_tokenizer_object(words: Sequence[str]):
    """The ``tokenizers.Tokenizer`` over exactly ``words`` (id = position), split on whitespace, with
    ``[PAD]`` and ``[UNK]`` as special tokens (no transformers import).

    Args:
        words: the vocabulary in id order; must start with ``[PAD]``, ``[UNK]``.
    """
    from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers

    if tuple(words[:2]) != SPECIAL_TOKENS:
        raise ValueError(f"the vocabulary must start with {SPECIAL_TOKENS}, got {tuple(words[:2])}")
    tok = Tokenizer(models.WordLevel(vocab={w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    return tok


def build_wordlevel_tokenizer(words: Sequence[str]):
    """A ``PreTrainedTokenizerFast`` over exactly ``words`` (id = position), split on whitespace.

    Args:
        words: the vocabulary in id order; must start with ``[PAD]``, ``[UNK]``.

    Returns:
        transformers.PreTrainedTokenizerFast: with ``pad_token="[PAD]"`` (id 0) and ``unk_token="[UNK]"`` (id 1).
    """
    from transformers import PreTrainedTokenizerFast

    tok = wordlevel_tokenizer_object(words)
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]")


def _with_special_tokens(words: list[str], source: str) -> tuple[list[str], int]:
    """The checkpoint vocabulary and the number of rows added in front of the file's (0 or 2)."""
    if tuple(words[:2]) == SPECIAL_TOKENS:
        return words, 0
    for token in SPECIAL_TOKENS:
        if token in words:
            raise VectorFormatError(
                f"{source}: {token!r} is at row {words.index(token)}, but our tokenizers need [PAD]=0, [UNK]=1; "
                "move [PAD] and [UNK] to the first two rows, or rename that word"
            )
    return list(SPECIAL_TOKENS) + words, len(SPECIAL_TOKENS)


def _write_safetensors(path: Path, tensors: list[tuple[str, str, tuple[int, ...], object]]) -> None:
    """Stream a safetensors file. ``tensors``: (name, dtype "F32"/"F16"/"I64", shape, chunks) where
    ``chunks`` is a callable yielding the raw little-endian bytes in order (so no tensor is built whole)."""
    from w2vformer._io import atomic_write

    itemsize = {"F32": 4, "F16": 2, "I64": 8}
    header: dict = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, dtype, shape, _ in tensors:
        nbytes = itemsize[dtype] * int(np.prod(shape, dtype=np.int64))
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    blob = json.dumps(header, separators=(",", ":")).encode("utf-8")
    blob += b" " * (-len(blob) % 8)  # the data starts 8-byte aligned
    with atomic_write(path, "wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for name, _, _, chunks in tensors:
            written = sum(f.write(chunk) for chunk in chunks())
            if written != header[name]["data_offsets"][1] - header[name]["data_offsets"][0]:
                raise RuntimeError(f"safetensors writer: {name} wrote {written} bytes, expected another size")


def _rows_per_chunk(dim: int) -> int:
    return max(1, (1 << 20) // (4 * dim))  # about 1 MB at a time


def _matrix_chunks(vectors: np.ndarray, pad_rows: int, dtype):
    def chunks():
        dim = vectors.shape[1]
        rows_per_chunk = _rows_per_chunk(dim)
        if pad_rows:
            yield np.zeros((pad_rows, dim), dtype=dtype).tobytes()
        for start in range(0, len(vectors), rows_per_chunk):
            block = vectors[start : start + rows_per_chunk]
            yield memoryview(np.ascontiguousarray(block, dtype=dtype))  # no copy when already float32

    return chunks


def _zero_chunks(rows: int, dim: int, dtype):
    def chunks():
        rows_per_chunk = _rows_per_chunk(dim)
        zeros = np.zeros((min(rows, rows_per_chunk), dim), dtype=dtype)
        for start in range(0, rows, rows_per_chunk):
            yield memoryview(zeros[: min(rows_per_chunk, rows - start)])

    return chunks


def _write_checkpoint(out_dir, words: Sequence[str], vectors: np.ndarray, *, counts=None, fp16: bool = False,
                      source: str | None = None, config_overrides: dict | None = None,
                      out_vectors: np.ndarray | None = None) -> dict:
    """Write a Word2VecModel checkpoint folder (config, streamed safetensors, tokenizer), atomically.

    ``out_vectors`` (N, D): output vectors (gensim's ``syn1neg``) for ``out_embed``; zeros when None.
    ``config_overrides``: extra Word2VecConfig fields (training options recorded with the vectors).
    """
    import torch
    from transformers.dynamic_module_utils import custom_object_save

    import w2vformer  # noqa: F401  (registers the Auto classes, so the folder gets its auto_map and code)
    from w2vformer.modeling.configuration_word2vec import Word2VecConfig
    from w2vformer.modeling.modeling_word2vec import Word2VecModel

    source = source or "vectors"
    vectors = validate_vectors(list(words), vectors, source=source)
    if out_vectors is not None:
        out_vectors = np.asarray(out_vectors, dtype=np.float32)
        if out_vectors.shape != vectors.shape:
            raise ValueError(
                f"output vectors have shape {out_vectors.shape}, input vectors {vectors.shape}; they must match"
            )
        check_finite(out_vectors, 0, lambda r: f"{source} output vectors row {r}", False)
    if fp16:
        check_fp16_range(vectors, source)
        if out_vectors is not None:
            check_fp16_range(out_vectors, f"{source} output vectors")
    vocab, pad_rows = _with_special_tokens(list(words), source)
    n_vocab, dim = len(vocab), vectors.shape[1]
    if counts is None:
        token_counts = np.concatenate([np.zeros(pad_rows, np.int64), np.arange(len(words), 0, -1, dtype=np.int64)])
    else:
        token_counts = np.asarray(counts, dtype=np.int64).reshape(-1)
        if len(token_counts) != len(words):
            raise ValueError(f"{len(token_counts)} counts for {len(words)} words; pass one count per word")
        token_counts = np.concatenate([np.zeros(pad_rows, np.int64), token_counts])
    # min_count=0: every word of the file is in the vocabulary, whatever its (possibly made-up) count
    options = {"min_count": 0, **(config_overrides or {})}
    config = Word2VecConfig(vocab_size=n_vocab, vector_size=dim, pad_token_id=0, **options)
    if config.loss != "negative_sampling":
        raise ValueError("a checkpoint made from vectors has no Huffman tree; use loss='negative_sampling'")
    config.dtype = "float16" if fp16 else "float32"
    np_dtype, st_dtype = (np.float16, "F16") if fp16 else (np.float32, "F32")
    with atomic_dir(out_dir) as tmp:
        with torch.device("meta"):  # only for the class and config plumbing: no weights are allocated
            model = Word2VecModel(config)
        custom_object_save(model, tmp, config=config)  # the remote code files + config.auto_map
        config.save_pretrained(tmp)
        _write_safetensors(tmp / "model.safetensors", [
            ("in_embed.weight", st_dtype, (n_vocab, dim), _matrix_chunks(vectors, pad_rows, np_dtype)),
            ("out_embed.weight", st_dtype, (n_vocab, dim), _zero_chunks(n_vocab, dim, np_dtype) if out_vectors is None
             else _matrix_chunks(out_vectors, pad_rows, np_dtype)),
            ("token_counts", "I64", (n_vocab,), lambda: [token_counts.astype("<i8").tobytes()]),
        ])
        build_wordlevel_tokenizer(vocab).save_pretrained(tmp)
    return {"vocab_size": n_vocab, "vector_size": dim, "id_offset": pad_rows}


def _read_checkpoint(src_dir, include_special_tokens: bool, limit: int | None):
    """(words, float32 vectors (N, D), counts or None) of a checkpoint folder's input embeddings."""
    src = Path(src_dir)
    if not (src / "config.json").is_file():
        raise FileNotFoundError(f"{str(src)!r} has no config.json; pass a w2vformer checkpoint folder")
    if not (src / "tokenizer.json").is_file():
        raise FileNotFoundError(f"{str(src)!r} has no tokenizer.json; the words of the vectors come from it")
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(src / "tokenizer.json"))
    model_type = read_json_file(src / "config.json").get("model_type")
    counts = None
    if model_type == "w2vformer_word2vec" and (src / "model.safetensors").is_file():
        with open_safetensors(src / "model.safetensors", framework="numpy") as st:
            vectors = st.get_tensor("in_embed.weight")
            if "token_counts" in st.keys():
                counts = st.get_tensor("token_counts")
    else:
        import torch
        from transformers import AutoModel

        import w2vformer  # noqa: F401

        model = AutoModel.from_pretrained(src, dtype=torch.float32, use_safetensors=True)
        vectors = model.get_input_embeddings().weight.detach().numpy()
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    id_to_word = {i: w for w, i in tok.get_vocab(with_added_tokens=True).items()}
    if len(id_to_word) > len(vectors) or max(id_to_word) >= len(vectors):
        raise ValueError(
            f"{src}: the tokenizer has ids up to {max(id_to_word)} but the embedding matrix has {len(vectors)} rows"
        )
    special = {t.content for t in tok.get_added_tokens_decoder().values() if t.special}
    ids = [i for i in sorted(id_to_word) if include_special_tokens or id_to_word[i] not in special]
    if limit is not None:
        ids = ids[:limit]
    words = [id_to_word[i] for i in ids]
    index = np.asarray(ids, dtype=np.int64)
    keep_all = len(index) == len(vectors) and (index == np.arange(len(vectors))).all()
    vectors = vectors if keep_all else vectors[index]
    counts = None if counts is None else np.asarray(counts)[index]
    return words, vectors, counts


def vectors_to_checkpoint(
    src: str | os.PathLike,
    out_dir: str | os.PathLike,
    format: str | None = None,
    *,
    fp16: bool = False,
    limit: int | None = None,
    unicode_errors: str = "strict",
    vocab_file: str | os.PathLike | None = None,
    progress: bool = True,
) -> dict:
    """Convert a vector file into a Word2VecModel checkpoint folder with a ``wordlevel`` tokenizer.

    Args:
        src: vector file (any of ``FORMATS`` except ``w2vformer``).
        out_dir: the checkpoint folder (replaced atomically).
        format: the input format; None detects it.
        fp16: store the weights as float16.
        limit: convert only the first ``limit`` rows.
        unicode_errors: "strict", "replace" or "ignore".
        vocab_file: ``word count`` lines (the C tool's ``-save-vocab``) giving the real ``token_counts``;
            without it counts are made up as ``N - row``.
        progress: show a tqdm bar (on a terminal only).

    Returns:
        dict: ``vocab_size``, ``vector_size`` and ``id_offset`` (id = file row + id_offset; 0 or 2).
    """
    words, vectors = read_vectors(src, format, limit=limit, unicode_errors=unicode_errors, progress=progress)
    counts = None if vocab_file is None else read_vocab_counts(vocab_file, words, unicode_errors)
    return _write_checkpoint(out_dir, words, vectors, counts=counts, fp16=fp16, source=str(src))


def checkpoint_to_vectors(
    src_dir: str | os.PathLike,
    out: str | os.PathLike,
    format: str | None = None,
    *,
    fp16: bool = False,
    limit: int | None = None,
    include_special_tokens: bool = False,
    vocab_file: str | os.PathLike | None = None,
    progress: bool = True,
) -> str:
    """Write the input embeddings of a checkpoint folder (Word2Vec, or any w2vformer model) to a vector file.

    Args:
        src_dir: checkpoint folder with ``config.json``, weights and ``tokenizer.json``.
        out: the output file (or folder for ``w2vformer``).
        format: one of ``FORMATS``; None guesses from ``out``.
        fp16: see the module docstring.
        limit: write only the first ``limit`` words (in id order).
        include_special_tokens: also write [PAD], [UNK], ... (their rows come first, so reading the file
            back into a checkpoint gives the same ids).
        vocab_file: also write the checkpoint's ``token_counts`` there as ``word count`` lines.
        progress: show a tqdm bar (on a terminal only).

    Returns:
        str: the format written.
    """
    words, vectors, counts = _read_checkpoint(src_dir, include_special_tokens, limit)
    if vocab_file is not None and counts is None:
        raise ValueError(f"{str(src_dir)!r} has no token_counts to write to {str(vocab_file)!r}")
    fmt = write_vectors(out, words, vectors, format, fp16=fp16, counts=counts, progress=progress)
    if vocab_file is not None:
        write_vocab_counts(vocab_file, words, counts)
    return fmt


def convert_vectors(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    from_format: str | None = None,
    to_format: str | None = None,
    *,
    fp16: bool = False,
    limit: int | None = None,
    unicode_errors: str = "strict",
    vocab_file: str | os.PathLike | None = None,
    include_special_tokens: bool | None = None,
    progress: bool = True,
) -> tuple[str, str]:
    """Convert between any two of ``FORMATS`` (what ``w2vformer convert vectors`` runs).

    Args:
        src, dst: input and output paths.
        from_format, to_format: formats; None detects (input from its contents, output from its name).
        fp16: see the module docstring.
        limit: convert only the first ``limit`` rows.
        unicode_errors: "strict", "replace" or "ignore" for the input's words.
        vocab_file: into a checkpoint: read the real counts from these ``word count`` lines; out of a
            checkpoint: write its counts there.
        include_special_tokens: out of a checkpoint, also write [PAD], [UNK], ...; None: only when the output
            is a checkpoint too (so ids are kept).
        progress: show a tqdm bar (on a terminal only).

    Returns:
        (from_format, to_format) as used.
    """
    src_fmt = _canonical(from_format) or detect_format(src)
    dst_fmt = _canonical(to_format) or detect_format(dst, for_writing=True)
    if Path(src).resolve() == Path(dst).resolve():
        raise ValueError(f"input and output are the same path {str(src)!r}; choose another output")
    if src_fmt == "w2vformer":
        if include_special_tokens is None:
            include_special_tokens = dst_fmt == "w2vformer"
        words, vectors, counts = _read_checkpoint(src, include_special_tokens, limit)
        if vocab_file is not None and counts is None:
            raise ValueError(f"{str(src)!r} has no token_counts to write to {str(vocab_file)!r}")
    else:
        words, vectors = read_vectors(src, src_fmt, limit=limit, unicode_errors=unicode_errors, progress=progress)
        counts = None if vocab_file is None else read_vocab_counts(vocab_file, words, unicode_errors)
    if dst_fmt == "w2vformer":
        _write_checkpoint(dst, words, vectors, counts=counts, fp16=fp16, source=str(src))
    else:
        write_vectors(dst, words, vectors, dst_fmt, fp16=fp16, progress=progress)
    if src_fmt == "w2vformer" and vocab_file is not None:
        write_vocab_counts(vocab_file, words, counts)
    return src_fmt, dst_fmt
