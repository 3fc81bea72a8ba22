"""GloVe's text vectors: one ``word v1 ... vD`` row per line, no header line.

    words, vectors = read_glove("glove.6B.50d.txt")
    write_glove("out.txt", words, vectors)

Without a header the size is unknown up front, so reading makes two passes: the first counts the
non-blank rows and takes D from the first one, the second parses straight into a preallocated
``(N, D)`` float32 matrix (memory stays close to the matrix itself). Errors are the
:class:`~w2vformer.conversion.word2vec_format.VectorFormatError` of the word2vec reader.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from w2vformer.conversion.word2vec_format import (
    VectorFormatError,
    _check_limit,
    _check_unicode_errors,
    check_fp16_range,
    open_for_reading,
    open_for_writing,
    read_text_rows,
    reading_errors,
    validate_vectors,
    write_text_rows,
)

__all__ = ["read_glove", "write_glove"]


def _count_rows(path, limit: int | None) -> tuple[int, int]:
    """First pass: (number of non-blank rows, up to ``limit``; values in the first row)."""
    n, dim = 0, None
    with open_for_reading(path) as f:
        for line in f:
            if limit is not None and n >= limit:
                break
            if not line.strip():
                continue
            if dim is None:
                dim = len(line.split()) - 1
                if dim < 1:
                    raise VectorFormatError(
                        f"{path}: the first row {line[:80]!r} has no values after the word; this is not a "
                        "GloVe vector file"
                    )
            n += 1
    if dim is None:
        raise VectorFormatError(f"{path}: the file has no rows; nothing to read")
    return n, dim


def read_glove(
    path: str | os.PathLike,
    *,
    limit: int | None = None,
    unicode_errors: str = "strict",
    allow_nonfinite: bool = False,
    progress: bool = True,
) -> tuple[list[str], np.ndarray]:
    """Read a GloVe text file (no header).

    Args:
        path: the file (``.gz`` / ``.bz2`` are decompressed on the fly).
        limit: read only the first ``limit`` rows.
        unicode_errors: "strict", "replace" or "ignore" for words that are not UTF-8.
        allow_nonfinite: accept NaN / inf values.
        progress: show a tqdm bar (on a terminal only).

    Returns:
        (words, vectors): N words in file order and a float32 array of shape (N, D).
    """
    _check_unicode_errors(unicode_errors)
    _check_limit(limit)
    if limit == 0:
        with open_for_reading(path):
            pass
        return [], np.empty((0, 0), dtype=np.float32)
    with reading_errors(path):
        n, dim = _count_rows(path, limit)
        with open_for_reading(path) as f:
            return read_text_rows(
                f, path, n, dim, first_line=1, unicode_errors=unicode_errors, allow_nonfinite=allow_nonfinite,
                progress=progress,
            )


def write_glove(
    path: str | os.PathLike,
    words: Sequence[str],
    vectors: np.ndarray,
    *,
    fp16: bool = False,
    allow_nonfinite: bool = False,
    progress: bool = True,
) -> None:
    """Write a GloVe text file (no header), atomically.

    Args:
        path: output file (``.gz`` / ``.bz2`` compress).
        words: N distinct words without whitespace.
        vectors: array of shape (N, D).
        fp16: round to float16 and write float16's shortest digits.
        allow_nonfinite: write NaN / inf instead of raising.
        progress: show a tqdm bar (on a terminal only).
    """
    vectors = validate_vectors(words, vectors, allow_nonfinite=allow_nonfinite, source=str(path))
    if fp16:
        check_fp16_range(vectors, str(path))
    with open_for_writing(path) as f:
        write_text_rows(f, words, vectors, fp16, progress)
