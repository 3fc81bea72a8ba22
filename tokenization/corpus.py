"""Stream text from files (plain or gzip, UTF-8) or from any iterator of strings, in bounded memory.

    for batch in iter_text_batches(["a.txt", "b.txt.gz"]):   # lists of lines; a huge file never sits in memory
        ...
    path = demo_corpus_path("en")                             # the English demo corpus shipped with the package

Files are read in 1 MiB chunks and decoded incrementally, so a corpus larger than memory works, and a
byte that is not UTF-8 raises ``ValueError`` naming the file and the byte offset of the bad byte.
"""

from __future__ import annotations

import codecs
import gzip
import os
from importlib import resources
from pathlib import Path
from typing import Iterable, Iterator

__all__ = ["iter_text_lines", "iter_text_batches", "resolve_source", "open_binary", "demo_corpus_path", "DEMO_CORPORA"]

CHUNK_BYTES = 1 << 18
MAX_LINE_CHARS = 1 << 16  # a "line" longer than this is cut at its last whitespace (bounded memory)
# a batch of lines holds about this many characters at most: tokenizers' train_from_iterator buffers hundreds
# of batches, so batches of long lines must stay small to keep the memory bounded
BATCH_CHARS = 1 << 16

DEMO_CORPORA = {"en": "demo-en.txt.gz", "zh": "demo-zh.txt.gz"}


def demo_corpus_path(lang: str = "en") -> Path:
    """Path of a demo corpus shipped inside the package (gzip UTF-8 text, one verse/paragraph per line).

    Args:
        lang: ``"en"`` (World English Bible, public domain, ~750k words, cased, with punctuation) or
            ``"zh"`` (Tang and Song poems and the Chinese Debian Reference, ~400 KB, not word-segmented).
            Sources and licences: ``w2vformer/data/README.md``.

    Returns:
        The ``pathlib.Path`` of the ``.txt.gz`` file (pass it straight to ``train_tokenizer`` or any
        reader of this module).
    """
    if lang not in DEMO_CORPORA:
        raise ValueError(f"unknown demo corpus language {lang!r}; choose one of {sorted(DEMO_CORPORA)}")
    path = Path(str(resources.files("w2vformer") / "data" / DEMO_CORPORA[lang]))
    if not path.is_file():
        raise FileNotFoundError(f"demo corpus {str(path)!r} is missing from the installation; reinstall w2vformer")
    return path


def open_binary(path: str | os.PathLike):
    """Open ``path`` for binary reading, transparently decompressing gzip (detected by its magic bytes)."""
    path = Path(path)
    with open(path, "rb") as f:
        magic = f.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


def _iter_file_lines(path: Path) -> Iterator[str]:
    """Lines of one file (without their newline), validated as UTF-8 chunk by chunk."""
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    offset = 0  # bytes of the (decompressed) stream handed to the decoder so far
    rest = ""
    first = True
    gz = False
    with open_binary(path) as f:
        gz = isinstance(f, gzip.GzipFile)
        while True:
            chunk = f.read(CHUNK_BYTES)
            pending = len(decoder.getstate()[0])
            try:
                text = decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as e:
                where = offset - pending + e.start
                what = " of the decompressed text" if gz else ""
                raise ValueError(
                    f"{str(path)!r} is not valid UTF-8: byte 0x{e.object[e.start]:02x} at byte offset {where:,d}{what} "
                    f"({e.reason}); convert the file to UTF-8 (e.g. `iconv -f LATIN1 -t UTF-8`) or remove the bad bytes"
                ) from None
            offset += len(chunk)
            if first and text.startswith("\ufeff"):
                text = text[1:]  # byte-order mark
            first = False
            if not chunk:
                if rest:
                    yield rest
                return
            lines = (rest + text).split("\n")
            rest = lines.pop()
            yield from lines
            while len(rest) > MAX_LINE_CHARS:
                cut = max(rest.rfind(" ", 0, MAX_LINE_CHARS), rest.rfind("\t", 0, MAX_LINE_CHARS))
                cut = cut if cut > 0 else MAX_LINE_CHARS
                yield rest[:cut]
                rest = rest[cut:]


def resolve_source(source) -> tuple[list[Path] | None, Iterable[str] | None]:
    """Tell files from text: returns ``(paths, None)`` or ``(None, texts)``.

    A ``str`` / ``os.PathLike``, or a list or tuple of them, names files (each must exist); anything else
    (a generator, an iterator, a ``datasets`` column, ...) is an iterable of text.
    """
    if isinstance(source, (str, os.PathLike)):
        source = [source]
    if isinstance(source, (list, tuple)) and all(isinstance(s, (str, os.PathLike)) for s in source):
        if not source:
            raise ValueError("no input files given; pass at least one text file or an iterator of strings")
        paths = []
        for item in source:
            path = Path(item)
            if not path.exists():
                hint = " (to train on strings in memory, pass an iterator such as iter(texts))" if isinstance(item, str) and (len(item) > 255 or any(c.isspace() for c in item)) else ""
                raise FileNotFoundError(f"input file {str(item)[:200]!r} does not exist; check the path{hint}")
            if path.is_dir():
                raise IsADirectoryError(f"input {str(path)!r} is a folder; pass the text files inside it")
            paths.append(path)
        return paths, None
    if isinstance(source, (bytes, bytearray)) or not hasattr(source, "__iter__"):
        raise ValueError(
            f"cannot read text from a {type(source).__name__}; pass a file path, a list of paths or an iterator of str"
        )
    return None, source


def iter_text_lines(source) -> Iterator[str]:
    """Yield the text of ``source`` line by line, in bounded memory.

    Args:
        source: a path or a list/tuple of paths (plain or gzip UTF-8 text files), or any other iterable of
            strings (a generator, a ``datasets`` column); strings of an iterable are yielded as they are.

    Returns:
        An iterator of ``str`` lines (no trailing newline).

    Raises:
        FileNotFoundError: a path does not exist (the message names it).
        ValueError: a file is not valid UTF-8 (the message names the file and the byte offset), or the
            iterable yields something other than ``str``.
    """
    paths, texts = resolve_source(source)
    if paths is not None:
        for path in paths:
            yield from _iter_file_lines(path)
        return
    for item in texts:
        if not isinstance(item, str):
            raise ValueError(f"the text iterator yielded a {type(item).__name__} ({str(item)[:50]!r}); yield str only")
        yield item


def iter_text_batches(source, batch_size: int = 1000, max_chars: int = BATCH_CHARS) -> Iterator[list[str]]:
    """Like :func:`iter_text_lines`, grouped into lists of ``batch_size`` lines (fast for ``tokenizers``); a
    batch is also cut once it holds ``max_chars`` characters, so long lines keep the memory bounded."""
    batch: list[str] = []
    chars = 0
    for line in iter_text_lines(source):
        batch.append(line)
        chars += len(line)
        if len(batch) >= batch_size or chars >= max_chars:
            yield batch
            batch = []
            chars = 0
    if batch:
        yield batch
