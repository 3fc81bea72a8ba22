"""The word2vec C tool's vector files, binary and text, read and written as the tool, gensim and the
word2vec repositories on the Hub use them; fastText's ``.vec`` files are the same text format.

    words, vectors = read_word2vec("GoogleNews-vectors-negative300.bin", limit=100_000)
    write_word2vec("out.txt", words, vectors, binary=False)

File layout (every file starts with an ASCII header line ``"<count> <dim>\\n"``):

- binary: per row, the UTF-8 word, one space, ``dim`` little-endian float32 (``4 * dim`` raw bytes), then
  an optional ``"\\n"`` (the C tool writes it, gensim does not; both readers skip it).
- text: per row, the word and ``dim`` decimal numbers separated by single spaces, then ``"\\n"``
  (the C tool adds a trailing space; extra ASCII whitespace between fields is tolerated when reading).

Reading streams: the header gives the size, rows are parsed in chunks straight into one preallocated
``(count, dim)`` float32 matrix, so memory stays close to the matrix itself. Files ending in ``.gz`` or
``.bz2`` are (de)compressed on the fly.

Every problem in a file raises :class:`VectorFormatError` (a ``ValueError``) naming the row and line
where it was found and what to do about it. Writing goes through ``atomic_write``, so a failed write
leaves no half-written file.

float16 (``fp16=True``) is not part of the word2vec binary format (every reader expects float32 rows),
so it is refused there. In text it means: each value rounded to float16 and written with the fewest
digits that identify that float16 (``str(np.float16(x))``, at most 5 significant digits), which makes the
file about half as long; reading it back and casting to float16 recovers the rounded values exactly.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import os
import zlib
from pathlib import Path
from typing import IO, Iterator, Sequence

import numpy as np

from w2vformer._io import atomic_write

__all__ = [
    "VectorFormatError",
    "read_word2vec",
    "write_word2vec",
    "read_text_rows",
    "write_text_rows",
    "validate_vectors",
    "check_fp16_range",
    "open_for_reading",
    "open_for_writing",
    "read_vocab_counts",
    "write_vocab_counts",
]

UNICODE_ERRORS = ("strict", "replace", "ignore")
_CHUNK = 1 << 18  # bytes read at a time from binary files
_MAX_WORD_BYTES = 1 << 16  # a binary "word" longer than this means the file is not what it claims to be
_MAX_HEADER_BYTES = 4096  # a "count dim" line is short; do not read a whole headerless file as one line


class VectorFormatError(ValueError):
    """A word-vector file that cannot be read (or vectors that cannot be written) as asked.

    The message names the file, the row and line where the problem was found, and the fix.
    """


# ---------------------------------------------------------------------------------------------- files


def open_for_reading(path: str | os.PathLike) -> IO[bytes]:
    """Open ``path`` for binary reading, decompressing ``.gz`` / ``.bz2`` files on the fly."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"vector file {str(path)!r} does not exist; check the path")
    if path.is_dir():
        raise IsADirectoryError(f"{str(path)!r} is a folder, not a vector file")
    if path.suffix == ".gz":
        return gzip.open(path, "rb")
    if path.suffix == ".bz2":
        return bz2.open(path, "rb")
    return open(path, "rb")


@contextlib.contextmanager
def open_for_writing(path: str | os.PathLike) -> Iterator[IO[bytes]]:
    """Atomically write ``path`` in binary mode, compressing when it ends in ``.gz`` / ``.bz2``."""
    path = Path(path)
    with atomic_write(path, "wb") as raw:
        if path.suffix == ".gz":
            with gzip.GzipFile(filename=path.stem, mode="wb", fileobj=raw, mtime=0) as f:
                yield f
        elif path.suffix == ".bz2":
            with bz2.BZ2File(raw, "wb") as f:
                yield f
        else:
            yield raw


def _check_unicode_errors(unicode_errors: str) -> None:
    if unicode_errors not in UNICODE_ERRORS:
        raise ValueError(f"unicode_errors={unicode_errors!r} is not one of {UNICODE_ERRORS}")


def _check_limit(limit: int | None) -> None:
    if limit is not None and (not isinstance(limit, (int, np.integer)) or limit < 0):
        raise ValueError(f"limit={limit!r} must be a non-negative integer or None")


class _NoProgress:
    """What ``progress=False`` gets: no tqdm object at all. Even a disabled tqdm takes tqdm's process-shared
    write lock when it is made and closed; a forked writer killed while holding it (tests kill writers on
    purpose, users kill workers) left that lock held, and the next tqdm in the parent waited forever."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n: int = 1) -> None:
        pass


def _progress(total: int, desc: str, progress: bool):
    if not progress:
        return _NoProgress()
    from tqdm.auto import tqdm

    # disable=None: shown on a terminal, silent in logs and tests.
    return tqdm(total=total, desc=desc, unit="vec", unit_scale=True, disable=None)


# --------------------------------------------------------------------------------------------- checks


def decode_word(raw: bytes, unicode_errors: str, where: str) -> str:
    """UTF-8 decode one word; on failure with ``unicode_errors='strict'`` raise a VectorFormatError."""
    try:
        word = raw.decode("utf-8", errors=unicode_errors)
    except UnicodeDecodeError as e:
        raise VectorFormatError(
            f"{where}: word {raw!r} is not valid UTF-8 ({e.reason} at byte {e.start}); if the file was cut "
            "inside multi-byte characters (common with the C tool), pass unicode_errors='replace' or 'ignore'"
        ) from None
    if not word:
        raise VectorFormatError(f"{where}: empty word (raw bytes {raw!r}); the file is corrupted")
    return word


def check_finite(block: np.ndarray, first_row: int, where, allow_nonfinite: bool) -> None:
    """Raise a VectorFormatError naming the first row of ``block`` holding NaN or inf.

    ``where(row)`` returns the text that locates a row (file, row, line).
    """
    if allow_nonfinite or block.size == 0:
        return
    bad = ~np.isfinite(block)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise VectorFormatError(
            f"{where(first_row + int(r))}: value {block[r, c]} at column {int(c)} is not finite; "
            "clean the vectors, or pass allow_nonfinite=True to keep NaN/inf"
        )


def check_word(word: str, where: str) -> None:
    """A word we can write: a non-empty string without whitespace (which separates fields)."""
    if not isinstance(word, str) or not word:
        raise VectorFormatError(f"{where}: word {word!r} must be a non-empty string")
    if any(ch.isspace() for ch in word):
        raise VectorFormatError(
            f"{where}: word {word!r} contains whitespace, which separates fields in vector files; "
            "replace it (e.g. by '_') before writing"
        )


def validate_vectors(
    words: Sequence[str], vectors: np.ndarray, *, allow_nonfinite: bool = False, source: str = "vectors"
) -> np.ndarray:
    """Check ``words`` and ``vectors`` can be written, and return ``vectors`` as a 2-D float32 array.

    Args:
        words: N distinct non-empty words without whitespace.
        vectors: array of shape (N, D).
        allow_nonfinite: accept NaN/inf values.
        source: how to name the data in error messages.

    Returns:
        np.ndarray: float32 array of shape (N, D) (the input itself when it already is one).
    """
    vectors = np.asarray(vectors)
    if vectors.ndim != 2:
        raise VectorFormatError(f"{source}: vectors must be 2-D (words x dim), got shape {vectors.shape}")
    if vectors.shape[1] == 0:
        raise VectorFormatError(f"{source}: vectors have dimension 0; nothing to write")
    if len(words) != vectors.shape[0]:
        raise VectorFormatError(
            f"{source}: {len(words)} words but {vectors.shape[0]} vector rows; pass one word per row"
        )
    if not np.issubdtype(vectors.dtype, np.floating):
        raise VectorFormatError(f"{source}: vectors have dtype {vectors.dtype}; pass floating-point values")
    seen: dict[str, int] = {}
    for i, w in enumerate(words):
        check_word(w, f"{source} row {i}")
        j = seen.setdefault(w, i)
        if j != i:
            raise VectorFormatError(f"{source}: word {w!r} appears at rows {j} and {i}; words must be unique")
    vectors = vectors.astype(np.float32, copy=False)
    check_finite(vectors, 0, lambda r: f"{source} row {r}", allow_nonfinite)
    return vectors


def check_fp16_range(vectors: np.ndarray, source: str) -> None:
    """Refuse float16 output for values float16 cannot hold (they would silently become inf)."""
    limit = float(np.finfo(np.float16).max)
    big = np.abs(vectors) > limit
    if big.any():
        r, c = np.argwhere(big)[0]
        raise VectorFormatError(
            f"{source} row {int(r)}: value {vectors[r, c]} exceeds float16's range (+-{limit:g}); write float32 "
            "(drop fp16), or rescale the vectors"
        )


# ------------------------------------------------------------------------------------------- readers


def parse_header(line: bytes, path) -> tuple[int, int]:
    """Parse the ``"count dim"`` header line of a word2vec file."""
    parts = line.split()
    try:
        count, dim = (int(p) for p in parts)
    except ValueError:
        raise VectorFormatError(
            f"{path}: line 1 {line[:80]!r} is not a word2vec header 'count dim'; if the file has no header "
            "(GloVe), read it with format='glove'"
        ) from None
    if count < 0 or dim <= 0:
        raise VectorFormatError(f"{path}: header 'count dim' = {count} {dim} must have count >= 0 and dim > 0")
    return count, dim


def read_word2vec(
    path: str | os.PathLike,
    binary: bool | None = None,
    *,
    limit: int | None = None,
    unicode_errors: str = "strict",
    allow_nonfinite: bool = False,
    progress: bool = True,
) -> tuple[list[str], np.ndarray]:
    """Read a word2vec C-format file (binary or text; fastText ``.vec`` is text).

    Args:
        path: the file (``.gz`` / ``.bz2`` are decompressed on the fly).
        binary: True for the binary format, False for text, None to detect from the contents.
        limit: read only the first ``limit`` rows (the rest of the file is not checked).
        unicode_errors: "strict" (a word that is not UTF-8 is an error), "replace" or "ignore".
        allow_nonfinite: accept NaN / inf values instead of raising.
        progress: show a tqdm bar (on a terminal only).

    Returns:
        (words, vectors): the N words in file order, and a float32 array of shape (N, D).

    Raises:
        VectorFormatError: the file is truncated or corrupted, the header disagrees with the body, a row
            has the wrong width, a word repeats, a value is not finite, or a word is not UTF-8.
    """
    _check_unicode_errors(unicode_errors)
    _check_limit(limit)
    with reading_errors(path):
        if binary is None:
            binary = sniff_word2vec_binary(path)
        with open_for_reading(path) as f:
            header = f.readline(_MAX_HEADER_BYTES)
            count, dim = parse_header(header, path)
            n = count if limit is None else min(count, limit)
            _check_body_size(path, len(header), n, dim, binary)
            if binary:
                return _read_binary_body(f, path, count, n, dim, unicode_errors, allow_nonfinite, progress)
            return read_text_rows(
                f, path, n, dim, first_line=2, unicode_errors=unicode_errors, allow_nonfinite=allow_nonfinite,
                expect_exact=count if limit is None or limit >= count else None, progress=progress,
            )


@contextlib.contextmanager
def reading_errors(path):
    """Turn the errors of a damaged compressed stream into a VectorFormatError."""
    try:
        yield
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except (EOFError, zlib.error, OSError) as e:
        raise VectorFormatError(
            f"{path}: the file could not be read ({e}); if it is compressed, it is damaged: download it again"
        ) from None


def _check_body_size(path, header_bytes: int, n: int, dim: int, binary: bool) -> None:
    """Refuse a header announcing more rows than the file can hold, before allocating the matrix."""
    if Path(path).suffix in (".gz", ".bz2"):
        return
    body = os.path.getsize(path) - header_bytes
    need = n * (2 + 4 * dim) if binary else n * (2 + 2 * dim) - 1
    if n and body < need:
        raise VectorFormatError(
            f"{path}: the header announces {n} rows of {dim} values, which take at least {need} bytes, but only "
            f"{body} follow it: the file is truncated, or the header is wrong (or pass limit to read fewer rows)"
        )


def allocate_matrix(n: int, dim: int, path) -> np.ndarray:
    """``np.empty((n, dim), float32)``, or a VectorFormatError saying why it cannot be allocated."""
    try:
        return np.empty((n, dim), dtype=np.float32)
    except (MemoryError, ValueError):
        raise VectorFormatError(
            f"{path}: {n} x {dim} float32 vectors ({4 * n * dim / 2**30:.1f} GiB) do not fit in memory; pass limit "
            "to read only the first rows (or the header is wrong)"
        ) from None


def sniff_word2vec_binary(path: str | os.PathLike) -> bool:
    """Tell a word2vec binary file from a text one by its second line (the first row)."""
    with open_for_reading(path) as f:
        header = f.readline(_MAX_HEADER_BYTES)
        _, dim = parse_header(header, path)
        head = f.read(min(_MAX_WORD_BYTES + 32 * dim, 1 << 22))
    if not head:
        return ".bin" in [s.lower() for s in Path(path).suffixes]
    return not looks_like_text_row(head.split(b"\n", 1)[0], dim)


def looks_like_text_row(line: bytes, dim: int | None) -> bool:
    """Whether ``line`` is ``word v1 ... vD`` in decimal text (D = ``dim`` when given, else >= 1)."""
    try:
        parts = line.decode("utf-8").split()
    except UnicodeDecodeError:
        return False
    if len(parts) < 2 or (dim is not None and len(parts) != dim + 1):
        return False
    try:
        [float(p) for p in parts[1:]]
    except ValueError:
        return False
    return True


def _read_binary_body(f, path, count, n, dim, unicode_errors, allow_nonfinite, progress):
    row_bytes = 4 * dim
    words: list[str] = []
    index: dict[str, int] = {}
    vectors = allocate_matrix(n, dim, path)

    def where(r):
        return f"{path}: row {r} (binary)"

    buf, pos, eof = b"", 0, False
    block_start = 0
    with _progress(n, "reading vectors", progress) as bar:
        for row in range(n):
            while True:
                sp = buf.find(b" ", pos)
                if sp != -1 and len(buf) - sp - 1 >= row_bytes:
                    break
                if sp == -1 and len(buf) - pos > _MAX_WORD_BYTES:
                    raise VectorFormatError(
                        f"{where(row)}: no space after {_MAX_WORD_BYTES} bytes where a word should end; the file "
                        "is corrupted or not in the word2vec binary format (try format='word2vec-txt')"
                    )
                more = b"" if eof else f.read(_CHUNK)
                if not more:
                    got = "a partial row" if len(buf) > pos and buf[pos:].strip() else "no data"
                    raise VectorFormatError(
                        f"{path}: file ends at row {row} of {count} announced by the header (found {got}); "
                        f"it is truncated (download it again), or the header is wrong (set it to '{row} {dim}')"
                    )
                eof = len(more) < _CHUNK
                buf, pos = buf[pos:] + more, 0
                sp = -1
            raw = buf[pos:sp].lstrip(b"\n")  # the C tool writes "\n" after each row, gensim does not
            if b"\n" in raw:
                raise VectorFormatError(
                    f"{where(row)}: word {raw[:60]!r} contains a line break: the file is corrupted, "
                    f"or the header's dim ({dim}) is wrong"
                )
            word = decode_word(raw, unicode_errors, where(row))
            if word in index:
                raise VectorFormatError(
                    f"{where(row)}: word {word!r} repeats row {index[word]}; words must be unique "
                    "(deduplicate the file)"
                )
            index[word] = row
            words.append(word)
            vectors[row] = np.frombuffer(buf, dtype="<f4", count=dim, offset=sp + 1)
            pos = sp + 1 + row_bytes
            if (row + 1) % 8192 == 0 or row + 1 == n:
                check_finite(vectors[block_start : row + 1], block_start, where, allow_nonfinite)
                bar.update(row + 1 - block_start)
                block_start = row + 1
    if n == count:
        rest = buf[pos:] + (b"" if eof else f.read(_CHUNK))
        if rest.strip():
            raise VectorFormatError(
                f"{path}: the header announces {count} rows but data follows row {count - 1}; fix the header's "
                "count, or pass limit to read only the first rows"
            )
    return words, vectors


def read_text_rows(
    f: IO[bytes],
    path,
    n: int,
    dim: int,
    *,
    first_line: int,
    unicode_errors: str = "strict",
    allow_nonfinite: bool = False,
    expect_exact: int | None = None,
    progress: bool = True,
) -> tuple[list[str], np.ndarray]:
    """Parse ``n`` text rows ``word v1 ... v_dim`` from the open binary file ``f`` into a float32 matrix.

    Blank lines are skipped. Shared by the word2vec text, fastText ``.vec`` and GloVe readers.

    Args:
        f: file opened in binary mode, positioned at the first row.
        path: the file name, for messages.
        n: rows to read (preallocated).
        dim: values per row.
        first_line: the 1-based line number of the first row, for messages.
        unicode_errors: see :func:`read_word2vec`.
        allow_nonfinite: accept NaN / inf values.
        expect_exact: when set, the row count the body must have exactly (the header's count); rows after
            it are an error.
        progress: show a tqdm bar (on a terminal only).

    Returns:
        (words, vectors): N words and a float32 array of shape (N, D).
    """
    words: list[str] = []
    index: dict[str, int] = {}
    vectors = allocate_matrix(n, dim, path)
    line_of_row = np.empty(0, dtype=np.int64)  # set per block, for messages
    lineno = first_line - 1
    row = 0
    block_start, block_lines = 0, []

    def where(r, line=None):
        if line is None:
            i = r - block_start
            line = int(line_of_row[i]) if 0 <= i < len(line_of_row) else None
        return f"{path}: line {line} (row {r})" if line is not None else f"{path}: row {r}"

    def flush():
        nonlocal block_start, block_lines, line_of_row
        line_of_row = np.asarray(block_lines, dtype=np.int64)
        check_finite(vectors[block_start:row], block_start, where, allow_nonfinite)
        bar.update(row - block_start)
        block_start, block_lines = row, []

    with _progress(n, "reading vectors", progress) as bar:
        while row < n:
            line = f.readline()
            if not line:
                raise VectorFormatError(
                    f"{path}: file ends after {row} rows but {n} were expected (header or first pass); it is "
                    f"truncated, or the header's count is wrong (set it to '{row} {dim}')"
                )
            lineno += 1
            parts = line.split()
            if not parts:
                continue
            if len(parts) != dim + 1:
                raise VectorFormatError(
                    f"{where(row, lineno)}: {len(parts) - 1} values after the word "
                    f"{parts[0][:60].decode('utf-8', 'replace')!r}, expected {dim}; "
                    "the row is damaged or the words contain spaces, or the header's dim is wrong"
                )
            word = decode_word(parts[0], unicode_errors, where(row, lineno))
            if word in index:
                raise VectorFormatError(
                    f"{where(row, lineno)}: word {word!r} repeats row {index[word]}; words must be unique "
                    "(deduplicate the file)"
                )
            try:
                vectors[row] = [float(p) for p in parts[1:]]
            except ValueError:
                bad = next(p for p in parts[1:] if not _is_float(p))
                raise VectorFormatError(
                    f"{where(row, lineno)}: {bad[:40]!r} is not a number; the row is damaged (or this is a binary "
                    "file: pass format='word2vec-bin')"
                ) from None
            index[word] = row
            words.append(word)
            block_lines.append(lineno)
            row += 1
            if row % 8192 == 0:
                flush()
        flush()
    if expect_exact is not None:
        for line in f:
            lineno += 1
            if line.strip():
                raise VectorFormatError(
                    f"{path}: line {lineno}: the header announces {expect_exact} rows but more follow; fix the "
                    "header's count, or pass limit to read only the first rows"
                )
    return words, vectors


def _is_float(p: bytes) -> bool:
    try:
        float(p)
    except ValueError:
        return False
    return True


# ------------------------------------------------------------------------------------------- writers


def format_row_values(row: np.ndarray, fp16: bool) -> str:
    """The decimal text of one row: the shortest digits that identify each float32 (or float16) value."""
    if fp16:
        row = row.astype(np.float16)
    return " ".join(map(str, row))


def write_text_rows(f: IO[bytes], words: Sequence[str], vectors: np.ndarray, fp16: bool, progress: bool) -> None:
    """Write ``word v1 ... vD\\n`` rows to the binary file ``f`` (single spaces, UTF-8)."""
    batch: list[str] = []
    with _progress(len(words), "writing vectors", progress) as bar:
        for i, word in enumerate(words):
            batch.append(f"{word} {format_row_values(vectors[i], fp16)}\n")
            if len(batch) == 4096:
                f.write("".join(batch).encode("utf-8"))
                bar.update(len(batch))
                batch = []
        f.write("".join(batch).encode("utf-8"))
        bar.update(len(batch))


def write_word2vec(
    path: str | os.PathLike,
    words: Sequence[str],
    vectors: np.ndarray,
    *,
    binary: bool = True,
    fp16: bool = False,
    allow_nonfinite: bool = False,
    progress: bool = True,
) -> None:
    """Write a word2vec C-format file, atomically.

    Args:
        path: output file (``.gz`` / ``.bz2`` compress).
        words: N distinct words without whitespace.
        vectors: array of shape (N, D), written as float32.
        binary: the binary format (C tool layout: ``word``, space, raw little-endian float32, ``"\\n"``)
            or the text format (shortest digits that round-trip each float32, single spaces).
        fp16: text only: round to float16 and write float16's shortest digits (see the module docstring).
        allow_nonfinite: write NaN / inf instead of raising.
        progress: show a tqdm bar (on a terminal only).
    """
    vectors = validate_vectors(words, vectors, allow_nonfinite=allow_nonfinite, source=str(path))
    if fp16 and not binary:
        check_fp16_range(vectors, str(path))
    if binary and fp16:
        raise VectorFormatError(
            f"{path}: float16 is not part of the word2vec binary format (every reader expects float32 rows); "
            "write the text format with fp16, or a w2vformer checkpoint with fp16"
        )
    n, dim = vectors.shape
    with open_for_writing(path) as f:
        f.write(f"{n} {dim}\n".encode("ascii"))
        if not binary:
            write_text_rows(f, words, vectors, fp16, progress)
            return
        little = vectors.astype("<f4", copy=False)
        batch: list[bytes] = []
        with _progress(n, "writing vectors", progress) as bar:
            for i, word in enumerate(words):
                batch += (word.encode("utf-8"), b" ", little[i].tobytes(), b"\n")
                if len(batch) >= 4 * 4096:
                    f.write(b"".join(batch))
                    bar.update(len(batch) // 4)
                    batch = []
            f.write(b"".join(batch))
            bar.update(len(batch) // 4)


# ------------------------------------------------------------------------------- vocabulary counts


def read_vocab_counts(path: str | os.PathLike, words: Sequence[str], unicode_errors: str = "strict") -> np.ndarray:
    """Word counts from a vocabulary file (``word count`` per line: the C tool's ``-save-vocab``, gensim's ``fvocab``).

    Args:
        path: the vocabulary file.
        words: the N words whose counts are wanted (every one must be in the file).
        unicode_errors: "strict", "replace" or "ignore".

    Returns:
        np.ndarray: (N,) int64 counts, in the order of ``words``.
    """
    _check_unicode_errors(unicode_errors)
    counts: dict[str, int] = {}
    with reading_errors(path), open_for_reading(path) as f:
        for lineno, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2 or not parts[1].isdigit():
                raise VectorFormatError(
                    f"{path}: line {lineno} {line[:80]!r} is not 'word count'; pass a vocabulary file"
                )
            counts[decode_word(parts[0], unicode_errors, f"{path}: line {lineno}")] = int(parts[1])
    missing = [w for w in words if w not in counts]
    if missing:
        raise VectorFormatError(
            f"{path}: no count for {len(missing)} of the {len(words)} words (first: {missing[0]!r}); pass the "
            "vocabulary file saved with these vectors"
        )
    return np.array([counts[w] for w in words], dtype=np.int64)


def write_vocab_counts(path: str | os.PathLike, words: Sequence[str], counts) -> None:
    """Write ``word count`` lines (the format :func:`read_vocab_counts` and gensim's ``fvocab`` read), atomically."""
    counts = np.asarray(counts).reshape(-1)
    if len(counts) != len(words):
        raise ValueError(f"{len(counts)} counts for {len(words)} words; pass one count per word")
    with open_for_writing(path) as f:
        f.write("".join(f"{w} {int(c)}\n" for w, c in zip(words, counts)).encode("utf-8"))
