"""Train a tokenizer on your own text and get a transformers fast tokenizer back.

    tok = train_tokenizer("corpus.txt", preset="decoder", vocab_size=8000)      # byte-level BPE
    tok = train_tokenizer(demo_corpus_path("en"), preset="word2vec", min_count=5)  # Word2Vec vocabulary
    save_tokenizer(tok, "out/tokenizer")        # atomic; AutoTokenizer.from_pretrained("out/tokenizer")

Models (``model=``): ``"wordlevel"`` (whole words, split on whitespace and punctuation: the classic
Word2Vec vocabulary), ``"bpe"`` (byte-level BPE as GPT-2: lossless, never an unknown token),
``"wordpiece"`` (BERT's ``##`` sub-words), ``"unigram"`` (SentencePiece-style unigram LM with ``▁``).
Presets (``preset=``) fix the special tokens and their ids (see ``presets.py``).

CJK (``cjk=``): ``"split"`` makes every CJK ideograph its own pre-token, as BERT does (the pre-tokenizer
splits, the text is not changed, so byte-level BPE stays lossless); ``"keep"`` leaves text that is already
word-segmented with spaces as it is; ``"auto"`` (default) looks at the first 2,000 lines: if they contain
CJK ideographs whose runs (maximal stretches of consecutive ideographs) average at most 3 characters, the
text is taken as word-segmented ("keep"), otherwise (unsegmented text, or no CJK at all) "split".
"""

from __future__ import annotations

import itertools
import os
import re
from pathlib import Path
from typing import Iterable, Iterator

from w2vformer._io import atomic_dir
from w2vformer.tokenization.corpus import iter_text_batches, iter_text_lines, resolve_source
from w2vformer.tokenization.presets import MODELS, PRESETS

__all__ = ["train_tokenizer", "save_tokenizer", "detect_cjk_mode", "CJK_PATTERN"]

# CJK ideographs as BERT's _is_chinese_char defines them (Unified, Ext. A-E, compatibility ideographs),
# each with the space before it, so byte-level BPE keeps "Ġ" + ideograph together as it does for words.
CJK_PATTERN = (
    r" ?[\x{4E00}-\x{9FFF}\x{3400}-\x{4DBF}\x{20000}-\x{2A6DF}\x{2A700}-\x{2B73F}\x{2B740}-\x{2B81F}"
    r"\x{2B820}-\x{2CEAF}\x{F900}-\x{FAFF}\x{2F800}-\x{2FA1F}]"
)
_CJK_RUN = re.compile(
    "[\u4e00-\u9fff\u3400-\u4dbf\U00020000-\U0002a6df\U0002a700-\U0002b73f\U0002b740-\U0002b81f"
    "\U0002b820-\U0002ceaf\uf900-\ufaff\U0002f800-\U0002fa1f]+"
)
CJK_MODES = ("auto", "split", "keep")
CJK_SAMPLE_LINES = 2000
CJK_SAMPLE_CHARS = 1 << 20
CJK_SEGMENTED_MAX_RUN = 3.0
BYTE_ALPHABET = 256
DEFAULT_VOCAB_SIZE = 8000  # sub-word models; wordlevel has no cap unless one is given
DEFAULT_MIN_COUNT = {"wordlevel": 5, "bpe": 2, "wordpiece": 2, "unigram": 0}
UNLIMITED = 1 << 30


def detect_cjk_mode(lines: Iterable[str]) -> str:
    """``"keep"`` if the CJK text in ``lines`` looks word-segmented with spaces, else ``"split"``.

    Args:
        lines: sample lines of the corpus.

    Returns:
        ``"keep"`` when CJK ideograph runs average at most 3 characters (``我 爱 北京``), ``"split"`` when
        they are longer (``我爱北京天安门``) or when there is no CJK ideograph at all.
    """
    runs = chars = 0
    for line in lines:
        for run in _CJK_RUN.findall(line):
            runs += 1
            chars += len(run)
    return "keep" if runs and chars / runs <= CJK_SEGMENTED_MAX_RUN else "split"


def _check_choice(name: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; choose one of {', '.join(map(repr, choices))}")


def _normalizer(nfkc: bool, lowercase: bool, strip_accents: bool):
    from tokenizers import normalizers

    steps = []
    if strip_accents:
        # decompose, drop the combining marks, recompose (NFKD/NFKC when compatibility folding is asked)
        steps += [normalizers.NFKD() if nfkc else normalizers.NFD(), normalizers.StripAccents()]
        steps.append(normalizers.NFKC() if nfkc else normalizers.NFC())
    elif nfkc:
        steps.append(normalizers.NFKC())
    if lowercase:
        steps.append(normalizers.Lowercase())
    return normalizers.Sequence(steps) if steps else None


def _build(model: str, preset, cjk: str, vocab_size: int, min_count: int, show_progress: bool):
    """An untrained ``tokenizers.Tokenizer`` (model, pre-tokenizer, decoder) and its trainer."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

    specials = list(preset.special_tokens)
    unk = preset.roles["unk_token"]
    cjk_split = [pre_tokenizers.Split(Regex(CJK_PATTERN), behavior="isolated")] if cjk == "split" else []
    if model == "wordlevel":
        tok = Tokenizer(models.WordLevel(unk_token=unk))
        tok.pre_tokenizer = pre_tokenizers.Sequence([*cjk_split, pre_tokenizers.BertPreTokenizer()])
        trainer = trainers.WordLevelTrainer(
            vocab_size=vocab_size, min_frequency=min_count, special_tokens=specials, show_progress=show_progress
        )
    elif model == "bpe":
        # Byte-level (GPT-2): every byte is in the alphabet, so no text is unknown and decoding is exact.
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.Sequence(
            [*cjk_split, pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)]
        )
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            min_frequency=min_count,
            special_tokens=specials,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=show_progress,
        )
    elif model == "wordpiece":
        tok = Tokenizer(models.WordPiece(unk_token=unk, continuing_subword_prefix="##"))
        tok.pre_tokenizer = pre_tokenizers.Sequence([*cjk_split, pre_tokenizers.BertPreTokenizer()])
        tok.decoder = decoders.WordPiece(prefix="##")
        trainer = trainers.WordPieceTrainer(
            vocab_size=vocab_size,
            min_frequency=min_count,
            special_tokens=specials,
            continuing_subword_prefix="##",
            show_progress=show_progress,
        )
    else:  # unigram
        tok = Tokenizer(models.Unigram())
        # Metaspace first: CJK split after it, so no "▁" is prepended to each ideograph.
        tok.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always"), *cjk_split]
        )
        tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
        trainer = trainers.UnigramTrainer(
            vocab_size=vocab_size, special_tokens=specials, unk_token=unk, show_progress=show_progress
        )
    return tok, trainer


def _post_processor(model: str, preset, vocab: dict[str, int]):
    from tokenizers import processors

    steps = []
    if model == "bpe":
        steps.append(processors.ByteLevel(trim_offsets=False))
    if preset.single is not None:
        used = sorted({t for t in preset.special_tokens if t in preset.single or t in preset.pair})
        steps.append(
            processors.TemplateProcessing(
                single=preset.single, pair=preset.pair, special_tokens=[(t, vocab[t]) for t in used]
            )
        )
    if not steps:
        return None
    return steps[0] if len(steps) == 1 else processors.Sequence(steps)


class _Stats:
    """Counts what streams through, so an empty corpus is reported after training."""

    def __init__(self):
        self.lines = 0
        self.nonblank = 0

    def count(self, lines: Iterator[str]) -> Iterator[str]:
        for line in lines:
            self.lines += 1
            if not self.nonblank and line.strip():
                self.nonblank = 1
            yield line


def train_tokenizer(
    files_or_iterator,
    model: str | None = None,
    vocab_size: int | None = None,
    preset: str = "word2vec",
    *,
    min_count: int | None = None,
    max_vocab_size: int | None = None,
    lowercase: bool = False,
    nfkc: bool | None = None,
    strip_accents: bool = False,
    cjk: str = "auto",
    model_max_length: int | None = None,
    show_progress: bool = True,
):
    """Train a tokenizer with the ``tokenizers`` library and return it as a transformers fast tokenizer.

    Args:
        files_or_iterator: a text file path, a list/tuple of paths (UTF-8, plain or gzip, streamed in
            chunks: a corpus larger than memory works), or any other iterable of ``str`` (a generator, a
            ``datasets`` column such as ``ds["text"]``).
        model: ``"wordlevel"``, ``"bpe"`` (byte-level), ``"wordpiece"`` or ``"unigram"``; None picks the
            preset's default: word2vec -> wordlevel, encoder -> wordpiece, decoder -> bpe, seq2seq -> bpe.
        vocab_size: the largest vocabulary, special tokens included. Default: 8,000 for the sub-word models,
            no cap for wordlevel (every word seen ``min_count`` times).
        preset: ``"word2vec"``, ``"encoder"``, ``"decoder"`` or ``"seq2seq"``: special tokens with fixed ids
            and post-processing (``w2vformer.tokenization.presets``).
        min_count: the least frequency of a word (wordlevel, word2vec's ``min_count``, default 5) or of a
            merged pair (bpe / wordpiece, default 2); unigram ignores it.
        max_vocab_size: word2vec's name for ``vocab_size`` (give one or the other).
        lowercase: lowercase the text (default False: cased).
        nfkc: apply NFKC normalisation (default True for wordlevel / wordpiece / unigram, False for bpe so
            that decoding gives back the exact input).
        strip_accents: remove combining accents (é -> e) after NFD / NFKD.
        cjk: ``"auto"``, ``"split"`` or ``"keep"`` (module docstring).
        model_max_length: stored on the tokenizer (truncation limit); None leaves transformers' default.
        show_progress: show the ``tokenizers`` progress bar while training.

    Returns:
        A ``transformers.PreTrainedTokenizerFast`` (``TokenizersBackend``) with ``pad_token``, ``unk_token``
        and the preset's ``cls/sep/mask/bos/eos`` tokens set; ``save_tokenizer`` or ``save_pretrained`` writes
        it and ``AutoTokenizer.from_pretrained`` loads it back.

    Raises:
        FileNotFoundError: an input file does not exist.
        ValueError: unknown ``model`` / ``preset`` / ``cjk``; a file that is not UTF-8 (file and byte offset);
            an empty corpus; a ``vocab_size`` too small for the special tokens plus the alphabet; no word
            frequent enough for ``min_count``.
    """
    from transformers import PreTrainedTokenizerFast

    _check_choice("preset", preset, tuple(PRESETS))
    spec = PRESETS[preset]
    model = spec.default_model if model is None else model
    _check_choice("model", model, MODELS)
    _check_choice("cjk", cjk, CJK_MODES)
    if max_vocab_size is not None:
        if vocab_size is not None and vocab_size != max_vocab_size:
            raise ValueError(f"vocab_size={vocab_size} and max_vocab_size={max_vocab_size} differ; give only one")
        vocab_size = max_vocab_size
    if vocab_size is None:
        vocab_size = UNLIMITED if model == "wordlevel" else DEFAULT_VOCAB_SIZE
    n_special = len(spec.special_tokens)
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size <= n_special:
        raise ValueError(
            f"vocab_size={vocab_size!r} leaves no room beyond the {n_special} special tokens of preset {preset!r}; "
            f"use a larger vocab_size"
        )
    if model == "bpe" and vocab_size < n_special + BYTE_ALPHABET:
        raise ValueError(
            f"vocab_size={vocab_size} is smaller than the {n_special} special tokens plus the {BYTE_ALPHABET} "
            f"byte alphabet of byte-level BPE; use vocab_size >= {n_special + BYTE_ALPHABET} (a few thousand is typical)"
        )
    min_count = DEFAULT_MIN_COUNT[model] if min_count is None else min_count
    if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 0:
        raise ValueError(f"min_count={min_count!r} must be an integer >= 0")
    if nfkc is None:
        nfkc = model != "bpe"

    paths, _ = resolve_source(files_or_iterator)  # fails early on a missing file
    source = paths if paths is not None else files_or_iterator
    lines = iter_text_lines(source)
    if cjk == "auto":
        head, chars = [], 0  # at most CJK_SAMPLE_LINES lines and about CJK_SAMPLE_CHARS characters (long lines)
        for line in lines:
            head.append(line)
            chars += len(line)
            if len(head) >= CJK_SAMPLE_LINES or chars >= CJK_SAMPLE_CHARS:
                break
        cjk = detect_cjk_mode(head)
        lines = itertools.chain(head, lines)

    tok, trainer = _build(model, spec, cjk, vocab_size, min_count, show_progress)
    normalizer = _normalizer(nfkc, lowercase, strip_accents)
    if normalizer is not None:
        tok.normalizer = normalizer
    stats = _Stats()
    try:
        tok.train_from_iterator(iter_text_batches(stats.count(lines)), trainer=trainer)
    except (ValueError, FileNotFoundError, IsADirectoryError):
        raise
    except Exception as e:  # tokenizers raises plain Exceptions from Rust
        raise ValueError(f"training the {model} tokenizer failed: {e}; check vocab_size and the corpus") from e

    what = ", ".join(map(str, paths)) if paths is not None else "the text iterator"
    if not stats.nonblank:
        raise ValueError(f"the corpus is empty ({stats.lines} blank lines in {what}); give text to train on")
    size = tok.get_vocab_size(with_added_tokens=True)
    if model == "wordlevel" and size <= n_special:
        raise ValueError(
            f"no word occurs at least min_count={min_count} times in {what}; lower min_count or give more text"
        )
    if size > vocab_size:
        raise ValueError(
            f"vocab_size={vocab_size} is smaller than the {n_special} special tokens plus the alphabet of the corpus "
            f"(the {model} trainer needs at least {size} entries); raise vocab_size to {size} or more"
        )
    vocab = tok.get_vocab(with_added_tokens=True)
    for i, t in enumerate(spec.special_tokens):
        assert vocab[t] == i, f"special token {t!r} got id {vocab[t]}, expected {i}"
    post = _post_processor(model, spec, vocab)
    if post is not None:
        tok.post_processor = post

    kwargs = dict(spec.roles)
    if model_max_length is not None:
        kwargs["model_max_length"] = model_max_length
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        clean_up_tokenization_spaces=False,  # would turn " ," into "," and break exact decoding
        model_input_names=list(spec.model_input_names),
        **kwargs,
    )


def save_tokenizer(tokenizer, path: str | os.PathLike, overwrite: bool = True) -> Path:
    """``tokenizer.save_pretrained`` into ``path`` atomically (a failed save leaves no partial folder).

    Args:
        tokenizer: any transformers tokenizer.
        path: the output folder (replaced as a whole if it exists and ``overwrite`` is True).
        overwrite: if False, a non-empty existing ``path`` raises ``FileExistsError``.

    Returns:
        ``path`` as a ``pathlib.Path``.
    """
    with atomic_dir(path, overwrite=overwrite) as tmp:
        tokenizer.save_pretrained(tmp)
    return Path(path)
