"""Tokenizer training (w2vformer.tokenization), the shipped demo corpora and the `tokenizer` CLI."""

from __future__ import annotations

import gzip
import random
import re
import tracemalloc
from collections import Counter
from itertools import islice
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from w2vformer.cli import main as cli_main
from w2vformer.tokenization import (
    MODELS,
    PRESETS,
    demo_corpus_path,
    detect_cjk_mode,
    iter_text_lines,
    save_tokenizer,
    train_tokenizer,
)
from w2vformer.tokenization import corpus as corpus_module

SPECIAL_IDS = {
    "word2vec": {"pad": ("[PAD]", 0), "unk": ("[UNK]", 1)},
    "encoder": {"pad": ("[PAD]", 0), "unk": ("[UNK]", 1), "cls": ("[CLS]", 2), "sep": ("[SEP]", 3), "mask": ("[MASK]", 4)},
    "decoder": {"pad": ("[PAD]", 0), "unk": ("[UNK]", 1), "bos": ("<s>", 2), "eos": ("</s>", 3)},
    "seq2seq": {"pad": ("[PAD]", 0), "unk": ("[UNK]", 1), "bos": ("<s>", 2), "eos": ("</s>", 3), "mask": ("[MASK]", 4)},
}
SUBWORD_VOCAB = {"bpe": 600, "wordpiece": 600, "unigram": 400, "wordlevel": None}
TRICKY = [
    "",
    " ",
    "Hello, World!",
    "  leading and trailing  ",
    "tabs\tand\t\ttabs",
    "line\nbreaks\n\n\r\nand CRLF\r\n",
    "emoji 😀👩‍👩‍👧 flags 🇫🇷",
    "我爱北京天安门。",
    "混合 mixed 文本 text",
    "naïve café ﬁ Ａ",
    "   \n\t  ",
    "don't ... ?! ,.",
    "\u200b zero\u200dwidth \ufeff",
    "ελληνικά русский العربية हिन्दी",
]


@pytest.fixture(scope="module")
def en_file(tmp_path_factory) -> Path:
    """The first 800 verses of the English demo corpus, as a plain file."""
    path = tmp_path_factory.mktemp("en") / "en.txt"
    path.write_text("\n".join(islice(iter_text_lines(demo_corpus_path("en")), 800)) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def zh_lines() -> list[str]:
    return list(islice(iter_text_lines(demo_corpus_path("zh")), 400))


@pytest.fixture(scope="module")
def byte_bpe(en_file, zh_lines) -> PreTrainedTokenizerFast:
    texts = en_file.read_text(encoding="utf-8").splitlines() + zh_lines + TRICKY
    return train_tokenizer(iter(texts), model="bpe", preset="decoder", vocab_size=800, show_progress=False)


def _train(source, model, preset, **kw):
    kw.setdefault("vocab_size", SUBWORD_VOCAB[model])
    kw.setdefault("min_count", 1)
    return train_tokenizer(source, model=model, preset=preset, show_progress=False, **kw)


# --- presets, models, save / load ----------------------------------------------------------------------
@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize("model", MODELS)
def test_every_model_and_preset_fixes_special_ids_and_round_trips(tmp_path, en_file, preset, model):
    tok = _train(en_file, model, preset)
    assert isinstance(tok, PreTrainedTokenizerFast)
    for role, (token, idx) in SPECIAL_IDS[preset].items():
        assert getattr(tok, f"{role}_token") == token
        assert getattr(tok, f"{role}_token_id") == idx
        assert tok.convert_tokens_to_ids(token) == idx
    for role in {"pad", "unk", "cls", "sep", "mask", "bos", "eos"} - set(SPECIAL_IDS[preset]):
        assert getattr(tok, f"{role}_token") is None, role
    if SUBWORD_VOCAB[model]:
        assert len(tok) <= SUBWORD_VOCAB[model]

    texts = ["In the beginning, God created the heavens and the earth.", "Unseen wordz: xylophone!", TRICKY[6]]
    before = [tok(t)["input_ids"] for t in texts] + [tok(texts[0], texts[1])["input_ids"]]
    out = save_tokenizer(tok, tmp_path / "tok")
    assert sorted(p.name for p in out.iterdir()) == ["tokenizer.json", "tokenizer_config.json"]
    assert [p.name for p in tmp_path.iterdir()] == ["tok"]  # no temporary folder left beside it
    loaded = AutoTokenizer.from_pretrained(out)
    assert isinstance(loaded, PreTrainedTokenizerFast)
    after = [loaded(t)["input_ids"] for t in texts] + [loaded(texts[0], texts[1])["input_ids"]]
    assert after == before
    assert loaded.get_vocab() == tok.get_vocab()
    assert loaded.all_special_ids == tok.all_special_ids
    assert loaded.model_input_names == tok.model_input_names


def _ids(tok, text):
    return tok(text, add_special_tokens=False)["input_ids"]


@pytest.mark.parametrize("model", MODELS)
def test_post_processing_templates(en_file, model):
    a, b = "the earth", "and the waters"
    toks = {p: _train(en_file, model, p) for p in PRESETS}
    for preset, tok in toks.items():
        ia, ib = _ids(tok, a), _ids(tok, b)
        assert ia and ib
        single, pair = tok(a), tok(a, b)
        if preset == "word2vec":
            assert single["input_ids"] == ia and pair["input_ids"] == ia + ib
        elif preset == "encoder":
            assert single["input_ids"] == [2] + ia + [3]
            assert pair["input_ids"] == [2] + ia + [3] + ib + [3]
            assert single["token_type_ids"] == [0] * (len(ia) + 2)
            assert pair["token_type_ids"] == [0] * (len(ia) + 2) + [1] * (len(ib) + 1)
        elif preset == "decoder":
            assert single["input_ids"] == [2] + ia  # bos only: training appends eos
            assert "token_type_ids" not in single
        else:  # seq2seq
            assert single["input_ids"] == ia + [3]
            assert pair["input_ids"] == ia + [3] + ib + [3]
            assert "token_type_ids" not in single


def test_default_model_per_preset(en_file):
    expected = {"word2vec": "WordLevel", "encoder": "WordPiece", "decoder": "BPE", "seq2seq": "BPE"}
    for preset, name in expected.items():
        tok = train_tokenizer(en_file, preset=preset, vocab_size=600, min_count=1, show_progress=False)
        assert type(tok.backend_tokenizer.model).__name__ == name


def test_wordlevel_vocabulary_matches_word_counts():
    """Reference: a Counter over words split on whitespace and punctuation; order = count desc, then word."""
    rng = random.Random(0)
    words = [f"w{i}" for i in range(40)]
    lines = [
        " ".join(rng.choice(words[: rng.randint(1, 40)]) for _ in range(12)) + rng.choice([".", ",", "!"])
        for _ in range(300)
    ]
    counts = Counter(t for line in lines for t in re.findall(r"\w+|[^\w\s]", line))
    ranked = [w for w, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    for min_count in (1, 3, 20):
        tok = train_tokenizer(iter(lines), min_count=min_count, show_progress=False)
        vocab = tok.get_vocab()
        assert sorted(vocab, key=vocab.get) == ["[PAD]", "[UNK]"] + [w for w in ranked if counts[w] >= min_count]
    tok = train_tokenizer(iter(lines), min_count=1, max_vocab_size=10, show_progress=False)
    assert sorted(tok.get_vocab(), key=tok.get_vocab().get) == ["[PAD]", "[UNK]"] + ranked[:8]
    assert tok.tokenize(f"{ranked[0]} {ranked[7]} {ranked[8]} unknownword") == [ranked[0], ranked[7], "[UNK]", "[UNK]"]


# --- byte-level BPE is lossless -------------------------------------------------------------------------
def _no_specials(s: str) -> bool:
    return not any(t in s for t in ("[PAD]", "[UNK]", "<s>", "</s>"))


@pytest.mark.parametrize("text", TRICKY)
def test_byte_level_bpe_round_trip_tricky_strings(byte_bpe, text):
    assert byte_bpe.decode(_ids(byte_bpe, text)) == text
    assert byte_bpe.decode(byte_bpe(text)["input_ids"], skip_special_tokens=True) == text
    assert byte_bpe.unk_token_id not in byte_bpe(text)["input_ids"]


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=60).filter(_no_specials))
def test_byte_level_bpe_round_trip_any_unicode(byte_bpe, text):
    ids = _ids(byte_bpe, text)
    assert byte_bpe.decode(ids) == text
    assert byte_bpe.convert_tokens_to_string(byte_bpe.convert_ids_to_tokens(ids)) == text


def test_byte_level_bpe_round_trip_survives_save_and_load(byte_bpe, tmp_path):
    loaded = AutoTokenizer.from_pretrained(save_tokenizer(byte_bpe, tmp_path / "bpe"))
    text = "".join(TRICKY)
    assert loaded.decode(_ids(loaded, text)) == text
    assert loaded.decode(loaded(text)["input_ids"], skip_special_tokens=True) == text
    assert loaded.clean_up_tokenization_spaces is False


# --- normalisation and CJK ------------------------------------------------------------------------------
def test_normalisation_options():
    lines = ["Café NAÏVE ﬁne Ｆｕｌｌ"] * 3
    plain = train_tokenizer(iter(lines), min_count=1, nfkc=False, show_progress=False)
    assert plain.tokenize(lines[0]) == ["Café", "NAÏVE", "ﬁne", "Ｆｕｌｌ"]
    nfkc = train_tokenizer(iter(lines), min_count=1, show_progress=False)  # wordlevel default: NFKC on
    assert nfkc.tokenize(lines[0]) == ["Café", "NAÏVE", "fine", "Full"]
    folded = train_tokenizer(iter(lines), min_count=1, lowercase=True, strip_accents=True, show_progress=False)
    assert folded.tokenize(lines[0]) == ["cafe", "naive", "fine", "full"]
    assert folded.tokenize("CAFÉ") == ["cafe"]


def test_detect_cjk_mode(zh_lines):
    assert detect_cjk_mode(zh_lines) == "split"  # poems and prose, unsegmented
    assert detect_cjk_mode(["我 爱 北京 天安门 。", "今天 天气 很 好"]) == "keep"
    assert detect_cjk_mode(["no CJK here at all"]) == "split"


def test_cjk_split_and_keep(zh_lines):
    segmented = ["我 爱 北京 天安门 。", "北京 是 首都 。", "天安门 在 北京 。"] * 4
    auto = train_tokenizer(iter(segmented), min_count=1, show_progress=False)
    assert auto.tokenize("我 爱 北京") == ["我", "爱", "北京"]
    split = train_tokenizer(iter(segmented), min_count=1, cjk="split", show_progress=False)
    assert split.tokenize("我 爱 北京") == ["我", "爱", "北", "京"]
    # unsegmented text: auto splits into ideographs, as BERT does; "keep" would leave whole clauses
    tok = train_tokenizer(iter(zh_lines), min_count=1, show_progress=False)
    assert tok.tokenize("兰叶春葳蕤，桂华秋") == list("兰叶春葳蕤,桂华秋")  # NFKC: full-width comma -> ","
    kept = train_tokenizer(iter(zh_lines), min_count=1, cjk="keep", show_progress=False)
    assert kept.tokenize("兰叶春葳蕤，桂华秋皎洁。") == ["兰叶春葳蕤", ",", "桂华秋皎洁", "。"]
    # the split happens in pre-tokenization: byte-level BPE stays lossless on Chinese
    bpe = train_tokenizer(iter(zh_lines), model="bpe", preset="decoder", vocab_size=1000, show_progress=False)
    pieces = bpe.backend_tokenizer.pre_tokenizer.pre_tokenize_str("我爱 AB")
    assert [offsets for _, offsets in pieces] == [(0, 1), (1, 2), (2, 5)]
    pieces = bpe.backend_tokenizer.pre_tokenizer.pre_tokenize_str("AB 我 爱")
    assert [offsets for _, offsets in pieces] == [(0, 2), (2, 4), (4, 6)]  # the space goes with the ideograph
    for line in zh_lines[:50]:
        assert bpe.decode(_ids(bpe, line)) == line


def test_wordpiece_and_unigram_on_chinese(zh_lines):
    wp = train_tokenizer(iter(zh_lines), model="wordpiece", preset="encoder", vocab_size=3000, show_progress=False)
    enc = wp("春眠不觉晓")
    assert wp.convert_ids_to_tokens(enc["input_ids"]) == ["[CLS]", "春", "眠", "不", "觉", "晓", "[SEP]"]
    uni = train_tokenizer(iter(zh_lines), model="unigram", preset="seq2seq", vocab_size=2000, show_progress=False)
    assert uni.decode(uni("春眠不觉晓")["input_ids"], skip_special_tokens=True) == "春眠不觉晓"


# --- input: files, gzip, iterators, streaming -----------------------------------------------------------
def test_gzip_and_iterator_inputs_give_the_same_tokenizer(tmp_path, en_file):
    gz = tmp_path / "en.txt.gz"
    gz.write_bytes(gzip.compress(en_file.read_bytes()))
    lines = en_file.read_text(encoding="utf-8").splitlines()
    half = len(lines) // 2
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("\n".join(lines[:half]) + "\n", encoding="utf-8")
    b.write_text("\n".join(lines[half:]) + "\n", encoding="utf-8")
    vocabs = [
        _train(src, "bpe", "decoder").get_vocab()
        for src in (en_file, str(en_file), [gz], [a, b], iter(lines), (line for line in lines))
    ]
    assert all(v == vocabs[0] for v in vocabs[1:])


def test_crlf_bom_and_long_lines(tmp_path, monkeypatch):
    monkeypatch.setattr(corpus_module, "CHUNK_BYTES", 7)
    monkeypatch.setattr(corpus_module, "MAX_LINE_CHARS", 20)
    path = tmp_path / "x.txt"
    path.write_bytes("\ufeffab\r\n漢字 é\n".encode("utf-8") + b"word " * 10 + b"\nend")
    lines = list(iter_text_lines(path))
    assert lines[:2] == ["ab\r", "漢字 é"]
    assert "".join(lines[2:-1]) == "word " * 10 and all(len(s) <= 20 for s in lines)
    assert lines[-1] == "end"


def _vm_hwm_kib() -> int | None:
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    except OSError:
        return None


def test_streaming_a_file_far_larger_than_the_memory_used(tmp_path):
    """A 20 MB corpus trains while the process's peak memory grows by a small fraction of that."""
    rng = random.Random(0)
    words = ["".join(rng.choice("abcdefghij") for _ in range(60)) for _ in range(50)]
    block = "\n".join(" ".join(rng.choice(words) for _ in range(8)) for _ in range(2000)).encode() + b"\n"
    path = tmp_path / "big.txt"
    with open(path, "wb") as f:
        for _ in range(20 * 2**20 // len(block) + 1):
            f.write(block)
    size = path.stat().st_size
    assert size > 20 * 2**20
    try:  # Linux: reset the peak-RSS counter, then read the peak (Rust and Python memory alike)
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        before = _vm_hwm_kib()
    except OSError:
        before = None
    if before is None:  # elsewhere: Python allocations only
        tracemalloc.start()
    tok = train_tokenizer(path, min_count=1, nfkc=False, show_progress=False)
    if before is None:
        growth = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    else:
        growth = (_vm_hwm_kib() - before) * 1024
    assert len(tok) == 2 + len(set(words))
    assert growth < size / 3, f"peak memory grew by {growth / 2**20:.1f} MB for a {size / 2**20:.0f} MB file"


# --- bad input ------------------------------------------------------------------------------------------
def test_missing_file_is_named(tmp_path, en_file):
    missing = tmp_path / "nope.txt"
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        train_tokenizer([en_file, missing], show_progress=False)
    with pytest.raises(IsADirectoryError):
        train_tokenizer(tmp_path, show_progress=False)


def test_empty_corpus(tmp_path):
    for content in (b"", b"\n\n  \n\t\n"):
        path = tmp_path / "empty.txt"
        path.write_bytes(content)
        for model in MODELS:
            with pytest.raises(ValueError, match="empty"):
                train_tokenizer(path, model=model, vocab_size=1000, show_progress=False)
    with pytest.raises(ValueError, match="empty"):
        train_tokenizer(iter([]), show_progress=False)
    with pytest.raises(ValueError, match="no input files"):
        train_tokenizer([], show_progress=False)


@pytest.mark.parametrize("chunk", [1 << 20, 5])
def test_non_utf8_names_file_and_byte_offset(tmp_path, monkeypatch, chunk):
    monkeypatch.setattr(corpus_module, "CHUNK_BYTES", chunk)
    good = "héllo 漢字\nworld\n".encode("utf-8")
    bad = tmp_path / "latin1.txt"
    bad.write_bytes(good + b"caf\xe9\n")
    offset = len(good) + 3
    with pytest.raises(ValueError, match=rf"latin1\.txt.*0xe9 at byte offset {offset}\b"):
        train_tokenizer(bad, show_progress=False)
    gz = tmp_path / "bad.txt.gz"
    gz.write_bytes(gzip.compress(good + b"\xff"))
    with pytest.raises(ValueError, match=rf"bad\.txt\.gz.*0xff at byte offset {len(good)} of the decompressed"):
        train_tokenizer(gz, show_progress=False)
    truncated = tmp_path / "cut.txt"
    truncated.write_bytes(good + "漢".encode("utf-8")[:2])  # a character cut at the end of the file
    with pytest.raises(ValueError, match=rf"cut\.txt.*byte offset {len(good)}\b"):
        train_tokenizer(truncated, show_progress=False)


def test_vocab_size_too_small(en_file, zh_lines):
    with pytest.raises(ValueError, match=r"vocab_size=100 .*256 byte alphabet.*>= 260"):
        train_tokenizer(en_file, model="bpe", preset="decoder", vocab_size=100, show_progress=False)
    with pytest.raises(ValueError, match=r"vocab_size=500 is smaller than .*alphabet.*raise vocab_size"):
        train_tokenizer(iter(zh_lines), model="wordpiece", preset="encoder", vocab_size=500, show_progress=False)
    with pytest.raises(ValueError, match=r"vocab_size=5 leaves no room"):
        train_tokenizer(en_file, preset="encoder", model="wordlevel", vocab_size=5, show_progress=False)
    with pytest.raises(ValueError, match=r"min_count=1000000"):
        train_tokenizer(en_file, min_count=1_000_000, show_progress=False)


def test_unknown_choices_are_listed(en_file):
    with pytest.raises(ValueError, match=r"unknown model 'sentencepiece'.*'wordlevel', 'bpe'"):
        train_tokenizer(en_file, model="sentencepiece")
    with pytest.raises(ValueError, match=r"unknown preset 'gpt'.*'word2vec', 'encoder', 'decoder', 'seq2seq'"):
        train_tokenizer(en_file, preset="gpt")
    with pytest.raises(ValueError, match=r"unknown cjk 'jieba'"):
        train_tokenizer(en_file, cjk="jieba")
    with pytest.raises(ValueError, match=r"yielded a dict.*str only"):
        train_tokenizer(iter([{"text": "a b"}]), show_progress=False)
    with pytest.raises(ValueError, match="max_vocab_size"):
        train_tokenizer(en_file, vocab_size=100, max_vocab_size=200)


def test_failed_save_leaves_no_folder(tmp_path, en_file, monkeypatch):
    tok = _train(en_file, "wordlevel", "word2vec")

    def broken(self, folder, **kw):
        (Path(folder) / "tokenizer.json").write_text("{")
        raise OSError("disk full")

    monkeypatch.setattr(type(tok), "save_pretrained", broken)
    with pytest.raises(OSError, match="disk full"):
        save_tokenizer(tok, tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


# --- demo corpora ---------------------------------------------------------------------------------------
def test_demo_corpora_ship_with_the_package():
    en, zh = demo_corpus_path("en"), demo_corpus_path("zh")
    assert 300_000 < en.stat().st_size < 2_500_000 and 100_000 < zh.stat().st_size < 2_500_000
    first = next(iter_text_lines(en))
    assert first == "In the beginning, God created the heavens and the earth."
    head = list(islice(iter_text_lines(zh), 200))
    assert sum(len(re.findall(r"[\u4e00-\u9fff]", s)) for s in head) > 1000
    assert detect_cjk_mode(head) == "split"
    with pytest.raises(ValueError, match=r"unknown demo corpus language 'fr'.*'en', 'zh'"):
        demo_corpus_path("fr")
    assert (en.parent / "README.md").is_file()


# --- CLI ------------------------------------------------------------------------------------------------
def test_cli_train_and_show(tmp_path, en_file, capsys):
    out = tmp_path / "tok"
    rc = cli_main(["tokenizer", "train", str(en_file), "--for", "encoder", "--model", "wordpiece",
                   "--vocab-size", "700", "--lowercase", "--quiet", "--output", str(out)])
    assert rc == 0
    assert "WordPiece" in capsys.readouterr().out
    tok = AutoTokenizer.from_pretrained(out)
    assert tok.cls_token_id == 2 and tok.mask_token_id == 4 and len(tok) <= 700
    rc = cli_main(["tokenizer", "show", str(out), "The Earth", "waters"])
    assert rc == 0
    printed = capsys.readouterr().out
    ids = tok("The Earth", "waters")["input_ids"]
    assert f"ids: {ids}" in printed
    assert "[CLS]" in printed and "earth" in printed and "(type 1)" in printed


def test_cli_bad_inputs_leave_no_output(tmp_path, en_file, capsys):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"ok\n\xff\n")
    cases = [
        ([str(tmp_path / "missing.txt")], "missing.txt"),
        ([str(bad)], "byte offset 3"),
        ([str(en_file), "--model", "bpe", "--vocab-size", "50"], ">= 258"),
    ]
    for args, message in cases:
        out = tmp_path / "out"
        rc = cli_main(["tokenizer", "train", *args, "--quiet", "--output", str(out)])
        assert rc == 2
        assert message in capsys.readouterr().err
        assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.txt"]
    with pytest.raises(SystemExit):
        cli_main(["tokenizer", "train", str(en_file), "--model", "nope", "--output", str(tmp_path / "o")])
    assert "invalid choice: 'nope'" in capsys.readouterr().err
    assert cli_main(["tokenizer", "show", str(tmp_path), "text"]) == 2
    assert "no tokenizer.json" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["tokenizer"], ["tokenizer", "train"], ["tokenizer", "show"]])
def test_cli_help(argv, capsys):
    with pytest.raises(SystemExit) as e:
        cli_main([*argv, "--help"])
    assert e.value.code == 0
    assert "usage: w2vformer tokenizer" in capsys.readouterr().out
