"""Word-vector formats: word2vec binary/text, GloVe, fastText .vec, gensim objects, Word2Vec checkpoints.

Parity is checked against gensim's own reader and writer (bit-identical float32 values, same words and order).
"""

from __future__ import annotations

import gzip
import json
import os
import struct
import tracemalloc

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from gensim.models import KeyedVectors, Word2Vec
from hypothesis import strategies as st

from w2vformer.conversion.glove import read_glove, write_glove
from w2vformer.conversion.vectors import (
    checkpoint_to_vectors,
    convert_vectors,
    detect_format,
    load_word2vec_format,
    read_vectors,
    save_word2vec_format,
    vectors_to_checkpoint,
    write_vectors,
)
from w2vformer.conversion.word2vec_format import VectorFormatError, read_word2vec, write_word2vec


SPECIAL = ["[PAD]", "[UNK]"]


def sample_vectors(n=23, dim=11, seed=0):
    """Words with non-ASCII letters and float32 values of every kind: tiny, huge, subnormal, -0.0."""
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(n)]
    special = ["é", "日本語", "naïve", "a.b,c", "😀x"][: n - 1]
    words[1 : 1 + len(special)] = special
    vectors = (rng.standard_normal((n, dim)) * rng.choice([1e-3, 1.0, 1e4], size=(n, 1))).astype(np.float32)
    vectors.flat[:4] = [np.float32(-0.0), np.float32(1e-45), np.finfo(np.float32).max, np.finfo(np.float32).tiny]
    return words, vectors


def assert_same(words_a, vectors_a, words_b, vectors_b):
    assert list(words_a) == list(words_b)
    assert vectors_a.dtype == vectors_b.dtype == np.float32
    assert vectors_a.shape == vectors_b.shape
    # bit-identical, so -0.0 and subnormals count too
    assert np.array_equal(vectors_a.view(np.uint32), vectors_b.view(np.uint32))


def no_leftovers(folder, *names):
    """Nothing but ``names`` in ``folder``: no output and no temporary file of a failed write."""
    assert sorted(os.listdir(folder)) == sorted(names)


# ----------------------------------------------------------------------------- parity with gensim


@pytest.mark.parametrize("binary", [True, False])
def test_our_writer_gensim_reader_and_back(tmp_path, binary):
    words, vectors = sample_vectors()
    ours = tmp_path / "ours.vec"
    write_word2vec(ours, words, vectors, binary=binary)
    kv = KeyedVectors.load_word2vec_format(str(ours), binary=binary)
    assert_same(words, vectors, kv.index_to_key, kv.vectors)

    theirs = tmp_path / "gensim.vec"
    kv.save_word2vec_format(str(theirs), binary=binary)  # gensim: no newline after binary rows
    assert_same(words, vectors, *read_word2vec(theirs))
    assert_same(words, vectors, *read_word2vec(theirs, binary=binary))


def test_gensim_writes_the_same_text_bytes(tmp_path):
    words, vectors = sample_vectors()
    write_word2vec(tmp_path / "ours.txt", words, vectors, binary=False)
    kv = KeyedVectors(vectors.shape[1])
    kv.add_vectors(words, vectors)
    kv.save_word2vec_format(str(tmp_path / "gensim.txt"), binary=False)
    assert (tmp_path / "ours.txt").read_bytes() == (tmp_path / "gensim.txt").read_bytes()


def test_c_tool_layout_and_variants(tmp_path):
    words, vectors = sample_vectors(n=5, dim=3)
    # binary as the C tool writes it: "\n" after every row
    write_word2vec(tmp_path / "c.bin", words, vectors, binary=True)
    raw = (tmp_path / "c.bin").read_bytes()
    assert raw.startswith(b"5 3\n" + words[0].encode() + b" " + vectors[0].astype("<f4").tobytes() + b"\n")
    # without the newlines (gensim), and without the last one
    body = b"".join(w.encode() + b" " + v.astype("<f4").tobytes() for w, v in zip(words, vectors))
    (tmp_path / "g.bin").write_bytes(b"5 3\n" + body)
    assert_same(words, vectors, *read_word2vec(tmp_path / "g.bin"))
    # text as the C tool writes it (trailing space), CRLF line ends, tabs, no final newline
    rows = [f"{w} " + " ".join(f"{x!r}" for x in v.tolist()) for w, v in zip(words, vectors)]
    (tmp_path / "c.txt").write_bytes(("5 3 \r\n" + " \r\n".join(rows[:3]) + "\n" + "\t".join(rows[3].split(" "))
                                      + "\n\n" + rows[4]).encode())
    assert_same(words, vectors, *read_word2vec(tmp_path / "c.txt"))


@pytest.mark.parametrize("binary", [True, False])
def test_limit_matches_gensim(tmp_path, binary):
    words, vectors = sample_vectors()
    path = tmp_path / "v.vec"
    write_word2vec(path, words, vectors, binary=binary)
    kv = KeyedVectors.load_word2vec_format(str(path), binary=binary, limit=7)
    assert_same(kv.index_to_key, kv.vectors, *read_word2vec(path, limit=7))
    assert_same(words[:7], vectors[:7], *read_vectors(path, limit=7))
    assert read_word2vec(path, limit=0)[1].shape == (0, vectors.shape[1])


@pytest.mark.parametrize("mode", ["replace", "ignore"])
def test_unicode_errors_like_gensim(tmp_path, mode):
    words, vectors = sample_vectors(n=4, dim=3)
    path = tmp_path / "cut.bin"
    cut = "日本".encode()[:-1]  # a word cut inside a multi-byte character, as the C tool does
    body = b"".join(w + b" " + v.astype("<f4").tobytes() + b"\n" for w, v in zip([b"a", cut, b"c", b"d"], vectors))
    path.write_bytes(b"4 3\n" + body)
    with pytest.raises(VectorFormatError, match=r"row 1 .*not valid UTF-8.*unicode_errors"):
        read_word2vec(path)
    kv = KeyedVectors.load_word2vec_format(str(path), binary=True, unicode_errors=mode)
    assert_same(kv.index_to_key, kv.vectors, *read_word2vec(path, unicode_errors=mode))


def test_glove_and_fasttext(tmp_path):
    words, vectors = sample_vectors()
    glove = tmp_path / "glove.6B.11d.txt"
    write_glove(glove, words, vectors)
    assert not glove.read_text(encoding="utf-8").startswith(f"{len(words)} ")  # no header
    assert detect_format(glove) == "glove"
    assert_same(words, vectors, *read_vectors(glove))
    kv = KeyedVectors.load_word2vec_format(str(glove), binary=False, no_header=True)
    assert_same(kv.index_to_key, kv.vectors, *read_glove(glove))
    assert_same(words[:5], vectors[:5], *read_glove(glove, limit=5))

    vec = tmp_path / "cc.en.11.vec"
    write_vectors(vec, words, vectors)  # .vec -> fastText text = word2vec text with a header
    assert vec.read_bytes().startswith(f"{len(words)} {vectors.shape[1]}\n".encode())
    assert detect_format(vec) == "fasttext"
    assert_same(words, vectors, *read_vectors(vec))


def test_compressed_files(tmp_path):
    words, vectors = sample_vectors()
    for name in ("v.bin.gz", "v.txt.bz2", "glove.txt.gz"):
        fmt = write_vectors(tmp_path / name, words, vectors)
        assert detect_format(tmp_path / name) == fmt
        assert_same(words, vectors, *read_vectors(tmp_path / name))
    with gzip.open(tmp_path / "v.bin.gz", "rb") as f:
        (tmp_path / "plain.bin").write_bytes(f.read())
    kv = KeyedVectors.load_word2vec_format(str(tmp_path / "plain.bin"), binary=True)
    assert_same(words, vectors, kv.index_to_key, kv.vectors)

    raw = (tmp_path / "v.bin.gz").read_bytes()
    (tmp_path / "cut.bin.gz").write_bytes(raw[: len(raw) // 2])
    (tmp_path / "fake.txt.gz").write_bytes(b"not gzip")
    for bad in ("cut.bin.gz", "fake.txt.gz"):
        for fmt in (None, "word2vec-bin", "glove"):
            with pytest.raises(VectorFormatError, match="compressed, it is damaged"):
                read_vectors(tmp_path / bad, fmt)


def test_format_detection(tmp_path):
    words, vectors = sample_vectors()
    write_word2vec(tmp_path / "a", words, vectors, binary=True)  # no extension: content decides
    write_word2vec(tmp_path / "b", words, vectors, binary=False)
    assert detect_format(tmp_path / "a") == "word2vec-bin"
    assert detect_format(tmp_path / "b") == "word2vec-txt"
    assert detect_format(tmp_path / "x.bin", for_writing=True) == "word2vec-bin"
    assert detect_format(tmp_path / "x.txt", for_writing=True) == "word2vec-txt"
    assert detect_format(tmp_path / "glove.x.txt", for_writing=True) == "glove"
    assert detect_format(tmp_path / "out", for_writing=True) == "w2vformer"
    with pytest.raises(VectorFormatError, match="pass the format explicitly"):
        detect_format(tmp_path / "x.parquet", for_writing=True)


# ----------------------------------------------------------------------------------- bad input


def write_raw(tmp_path, name, data: bytes):
    path = tmp_path / "in" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(data)
    return path


def binary_rows(words, vectors, newline=b"\n"):
    return b"".join(w.encode() + b" " + v.astype("<f4").tobytes() + newline for w, v in zip(words, vectors))


def text_rows(words, vectors):
    return "".join(f"{w} {' '.join(map(str, v))}\n" for w, v in zip(words, vectors)).encode()


def header(count, dim=3):
    return f"{count} {dim}\n".encode()


def rows_with(value, row):
    """The test vectors with ``value`` in every column of ``row``."""
    return lambda v: np.where(np.arange(len(v))[:, None] == row, value, v)


BAD_INPUTS = {
    # name: (file name, content builder (words, vectors) -> bytes, expected message pattern)
    "truncated binary": ("t.bin", lambda w, v: header(6) + binary_rows(w, v)[:-9],
                         r"file ends at row 5 of 6.*truncated"),
    "binary count too small": ("s.bin", lambda w, v: header(4) + binary_rows(w, v),
                               r"announces 4 rows but data follows"),
    "binary count too large": ("l.bin", lambda w, v: header(60) + binary_rows(w, v),
                               r"announces 60 rows.*truncated"),
    "binary wrong dim": ("d.bin", lambda w, v: header(6, 2) + binary_rows(w, v),
                         r"row \d.*(line break|not valid UTF-8|file ends)"),
    "text count too large": ("l.txt", lambda w, v: header(9) + text_rows(w, v),
                             r"(announces 9 rows|ends after 6 rows)"),
    "text count too small": ("s.txt", lambda w, v: header(4) + text_rows(w, v),
                             r"line 6: the header announces 4 rows"),
    "text wrong width": ("w.txt", lambda w, v: header(6) + text_rows(w, v).replace(b"\nw3 ", b"\nw3 1.5 "),
                         r"line 5 \(row 3\): 4 values after the word 'w3', expected 3"),
    "glove wrong width": ("g.txt", lambda w, v: text_rows(w, v).replace(b"\nw3 ", b"\nw3 1.5 "),
                          r"line 4 \(row 3\): 4 values"),
    "duplicate word": ("dup.txt", lambda w, v: header(6) + text_rows(w[:3] + ["w1"] + w[4:], v),
                       r"line 5 \(row 3\): word 'w1' repeats row 1"),
    "duplicate word binary": ("dup.bin", lambda w, v: header(6) + binary_rows(w[:3] + ["w1"] + w[4:], v),
                              r"row 3 .*'w1' repeats row 1"),
    "not a number": ("n.txt", lambda w, v: header(6) + text_rows(w, v).replace(b"\nw2 ", b"\nw2 x"),
                     r"line 4 \(row 2\): b'x[0-9.]+' is not a number"),
    "nan": ("nan.bin", lambda w, v: header(6) + binary_rows(w, rows_with(np.nan, 4)(v)),
            r"row 4.*not finite.*allow_nonfinite"),
    "inf text": ("inf.txt", lambda w, v: header(6) + text_rows(w, rows_with(np.inf, 2)(v)),
                 r"line 4 \(row 2\).*not finite"),
    "non-utf8 word": ("u.txt", lambda w, v: header(6) + text_rows(w, v).replace(b"w5", b"w\xff5"),
                      r"line 7 \(row 5\).*not valid UTF-8"),
    "unknown format": ("x.dat", lambda w, v: b"\x00\x01\x02 binary junk\n",
                       r"no known vector format.*pass the format explicitly"),
    "fasttext model": ("m.bin", lambda w, v: struct.pack("<i", 793712314) + b"\x0c\x00\x00\x00",
                       r"fastText .bin model.*\.vec"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_a_clear_error_and_writes_nothing(tmp_path, case):
    name, build, pattern = BAD_INPUTS[case]
    words = [f"w{i}" for i in range(6)]
    vectors = np.arange(18, dtype=np.float32).reshape(6, 3) / 7
    path = write_raw(tmp_path, name, build(words, vectors))
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(VectorFormatError, match=pattern):
        convert_vectors(path, out / "model")
    with pytest.raises(VectorFormatError, match=pattern):
        convert_vectors(path, out / "vectors.bin")
    no_leftovers(out)


def test_allow_nonfinite(tmp_path):
    words, vectors = sample_vectors(n=4, dim=3)
    vectors[2, 1] = np.nan
    vectors[3, 0] = -np.inf
    with pytest.raises(VectorFormatError, match="row 2.*not finite"):
        write_word2vec(tmp_path / "v.bin", words, vectors)
    no_leftovers(tmp_path)
    for binary in (True, False):
        write_word2vec(tmp_path / "v", words, vectors, binary=binary, allow_nonfinite=True)
        got_words, got = read_word2vec(tmp_path / "v", allow_nonfinite=True)
        assert got_words == words and np.array_equal(got, vectors, equal_nan=True)


def test_writer_refuses_unwritable_words(tmp_path):
    vectors = np.zeros((2, 3), np.float32)
    cases = ((["a b", "c"], "contains whitespace"), (["a", "a"], "rows 0 and 1"), (["", "c"], "non-empty"))
    for words, pattern in cases:
        with pytest.raises(VectorFormatError, match=pattern):
            write_word2vec(tmp_path / "v.bin", words, vectors)
    with pytest.raises(VectorFormatError, match="3 words but 2 vector rows"):
        write_word2vec(tmp_path / "v.bin", ["a", "b", "c"], vectors)
    no_leftovers(tmp_path)


def test_huge_header_is_refused_before_allocating(tmp_path):
    path = write_raw(tmp_path, "h.bin", b"100000000000 300\nw " + b"\0" * 1200)
    with pytest.raises(VectorFormatError, match="announces 100000000000 rows of 300 values.*truncated"):
        read_word2vec(path)


# --------------------------------------------------------------------------------------- fp16


def test_fp16(tmp_path):
    words, vectors = sample_vectors()
    vectors = np.clip(vectors, -6e4, 6e4)  # inside float16's range
    write_word2vec(tmp_path / "full.txt", words, vectors, binary=False)
    write_word2vec(tmp_path / "half.txt", words, vectors, binary=False, fp16=True)
    assert (tmp_path / "half.txt").stat().st_size < 0.85 * (tmp_path / "full.txt").stat().st_size
    got_words, got = read_word2vec(tmp_path / "half.txt")
    assert got_words == words
    assert np.array_equal(got.astype(np.float16), vectors.astype(np.float16))
    with pytest.raises(VectorFormatError, match="float16 is not part of the word2vec binary format"):
        write_word2vec(tmp_path / "half.bin", words, vectors, fp16=True)

    from safetensors import safe_open

    write_vectors(tmp_path / "half.bin", words, vectors, "word2vec-bin")
    vectors_to_checkpoint(tmp_path / "half.bin", tmp_path / "ckpt", fp16=True)
    with safe_open(str(tmp_path / "ckpt" / "model.safetensors"), framework="pt") as f:
        assert f.get_tensor("in_embed.weight").dtype == torch.float16
        assert torch.equal(f.get_tensor("in_embed.weight")[2:], torch.from_numpy(vectors).half())
    assert json.loads((tmp_path / "ckpt" / "config.json").read_text())["dtype"] == "float16"

    vectors[3, 2] = 1e5  # beyond float16
    for fmt in ("word2vec-txt", "glove", "w2vformer"):
        with pytest.raises(VectorFormatError, match="row 3: value 100000.0 exceeds float16's range"):
            write_vectors(tmp_path / "big16", words, vectors, fmt, fp16=True)
    assert not (tmp_path / "big16").exists()


# -------------------------------------------------------------------------------- checkpoints


def test_vectors_to_checkpoint_loads_as_word2vec_model(tmp_path):
    from transformers import AutoModel, AutoTokenizer

    from w2vformer.modeling.configuration_word2vec import Word2VecConfig
    from w2vformer.modeling.modeling_word2vec import Word2VecModel

    words, vectors = sample_vectors()
    write_word2vec(tmp_path / "v.bin", words, vectors)
    info = vectors_to_checkpoint(tmp_path / "v.bin", tmp_path / "ckpt")
    assert info == {"vocab_size": len(words) + 2, "vector_size": vectors.shape[1], "id_offset": 2}

    model = AutoModel.from_pretrained(tmp_path / "ckpt")
    assert isinstance(model, Word2VecModel)
    weight = model.get_input_embeddings().weight.detach()
    assert torch.equal(weight[2:], torch.from_numpy(vectors)) and not weight[:2].any()
    assert not model.out_embed.weight.any()
    assert model.token_counts.tolist() == [0, 0] + list(range(len(words), 0, -1))

    tok = AutoTokenizer.from_pretrained(tmp_path / "ckpt")
    assert (tok.pad_token_id, tok.unk_token_id) == (0, 1)
    assert tok(f"{words[3]} {words[0]} never-seen")["input_ids"] == [3 + 2, 0 + 2, 1]

    # the same files save_pretrained writes for a Word2VecModel built in memory
    reference = Word2VecModel(Word2VecConfig(vocab_size=len(words) + 2, vector_size=vectors.shape[1]))
    reference.save_pretrained(tmp_path / "reference")
    ours = {p for p in os.listdir(tmp_path / "ckpt") if not p.startswith("tokenizer")}
    assert ours == set(os.listdir(tmp_path / "reference"))


def test_checkpoint_round_trips(tmp_path):
    words, vectors = sample_vectors()
    # a file that already starts with [PAD], [UNK]: ids are its rows
    words = SPECIAL + words
    vectors = np.concatenate([np.ones((2, vectors.shape[1]), np.float32), vectors])
    write_vectors(tmp_path / "v.txt", words, vectors)
    assert vectors_to_checkpoint(tmp_path / "v.txt", tmp_path / "ckpt")["id_offset"] == 0

    checkpoint_to_vectors(tmp_path / "ckpt", tmp_path / "all.bin", include_special_tokens=True)
    assert_same(words, vectors, *read_vectors(tmp_path / "all.bin"))
    checkpoint_to_vectors(tmp_path / "ckpt", tmp_path / "words.bin")  # default: without special tokens
    kv = KeyedVectors.load_word2vec_format(str(tmp_path / "words.bin"), binary=True)
    assert_same(words[2:], vectors[2:], kv.index_to_key, kv.vectors)

    # checkpoint -> checkpoint (CLI `convert vectors A B` between folders) keeps ids and counts
    convert_vectors(tmp_path / "ckpt", tmp_path / "copy")
    assert (tmp_path / "copy" / "tokenizer.json").read_bytes() == (tmp_path / "ckpt" / "tokenizer.json").read_bytes()
    assert_same(*read_vectors(tmp_path / "ckpt", include_special_tokens=True),
                *read_vectors(tmp_path / "copy", include_special_tokens=True))

    wv = load_word2vec_format(tmp_path / "ckpt")
    assert wv.index_to_key == words[2:] and wv.counts.tolist() == list(range(len(words) - 2, 0, -1))
    from w2vformer.keyedvectors import WordVectors

    wv = WordVectors.from_pretrained(tmp_path / "ckpt")  # every word, though the made-up counts go down to 1
    assert_same(words[2:], vectors[2:], wv.index_to_key, wv.vectors)


def test_special_token_in_the_wrong_row_is_refused(tmp_path):
    words, vectors = sample_vectors(n=5, dim=3)
    words[3] = "[UNK]"
    write_vectors(tmp_path / "v.bin", words, vectors)
    with pytest.raises(VectorFormatError, match=r"'\[UNK\]' is at row 3.*first two rows"):
        vectors_to_checkpoint(tmp_path / "v.bin", tmp_path / "ckpt")
    assert not (tmp_path / "ckpt").exists()


def test_word_vectors_and_gensim_objects(tmp_path):
    from w2vformer.conversion.gensim_compat import from_gensim, gensim_to_checkpoint, to_gensim

    words, vectors = sample_vectors()
    write_word2vec(tmp_path / "v.bin", words, vectors)
    wv = load_word2vec_format(tmp_path / "v.bin")
    assert_same(words, vectors, wv.index_to_key, wv.vectors)
    save_word2vec_format(wv, tmp_path / "again.txt", binary=False)
    assert_same(words, vectors, *read_vectors(tmp_path / "again.txt"))

    kv = to_gensim(wv)
    assert_same(words, vectors, kv.index_to_key, kv.vectors)
    assert_same(words, vectors, from_gensim(kv).index_to_key, from_gensim(kv).vectors)

    # a trained gensim Word2Vec: counts, options and syn1neg come along
    sentences = [["a", "b", "c", "a"], ["b", "a", "d"], ["c", "a", "b"]] * 5
    model = Word2Vec(sentences, vector_size=6, window=2, min_count=1, sg=1, negative=3, epochs=2,
                                   seed=3, workers=1)
    back = from_gensim(model)
    assert back.counts.tolist() == [model.wv.get_vecattr(w, "count") for w in model.wv.index_to_key]
    gensim_to_checkpoint(model, tmp_path / "g")
    from w2vformer.modeling.modeling_word2vec import Word2VecModel

    ours = Word2VecModel.from_pretrained(tmp_path / "g")
    assert (ours.config.objective, ours.config.window, ours.config.negative) == ("skipgram", 2, 3)
    assert torch.equal(ours.in_embed.weight[2:], torch.from_numpy(model.wv.vectors))
    assert torch.equal(ours.out_embed.weight[2:], torch.from_numpy(model.syn1neg))
    assert ours.token_counts[2:].tolist() == back.counts.tolist()


# -------------------------------------------------------------------------------------- memory


def test_conversion_memory_stays_near_the_matrix(tmp_path):
    n, dim = 5000, 300  # a 6 MB matrix
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    words = [f"word{i}" for i in range(n)]
    write_word2vec(tmp_path / "big.bin", words, vectors)
    del vectors
    matrix_bytes = n * dim * 4
    import w2vformer.modeling.modeling_word2vec  # noqa: F401  (imports are not the conversion's memory)

    tracemalloc.start()
    try:
        vectors_to_checkpoint(tmp_path / "big.bin", tmp_path / "ckpt", progress=False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # the matrix, the word list and dicts (~1 MB here), chunks: well under two matrices
    assert peak < 1.5 * matrix_bytes, f"peak {peak / 1e6:.1f} MB for a {matrix_bytes / 1e6:.1f} MB matrix"
    assert (tmp_path / "ckpt" / "model.safetensors").stat().st_size > 2 * matrix_bytes  # in + out embeddings


# ---------------------------------------------------------------------------------- properties

word = st.text(st.characters(blacklist_categories=("Cs",)).filter(lambda c: not c.isspace()), min_size=1, max_size=8)
finite32 = st.floats(width=32, allow_nan=False, allow_infinity=False)


@st.composite
def vocab_and_vectors(draw):
    words = draw(st.lists(word, min_size=1, max_size=8, unique=True))
    dim = draw(st.integers(1, 5))
    values = draw(st.lists(finite32, min_size=len(words) * dim, max_size=len(words) * dim))
    return words, np.array(values, dtype=np.float32).reshape(len(words), dim)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=vocab_and_vectors(), binary=st.booleans())
def test_property_write_read_is_exact(tmp_path, data, binary):
    words, vectors = data
    path = tmp_path / "p.vec"
    write_word2vec(path, words, vectors, binary=binary, progress=False)
    assert_same(words, vectors, *read_word2vec(path, progress=False))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.one_of(
    st.binary(max_size=200),
    st.builds(lambda h, b: h + b, st.sampled_from([b"2 3\n", b"1 1\n", b"3 2\n", b"0 4\n"]), st.binary(max_size=120)),
    st.builds(lambda t: t.encode("utf-8", "surrogatepass"), st.text(alphabet="ab01.- \n\te+", max_size=80)),
))
def test_property_arbitrary_bytes_only_raise_vector_format_error(tmp_path, raw):
    path = tmp_path / "junk"
    path.write_bytes(raw)
    for read in (lambda: read_word2vec(path, progress=False), lambda: read_word2vec(path, binary=True, progress=False),
                 lambda: read_word2vec(path, binary=False, progress=False), lambda: read_glove(path, progress=False),
                 lambda: read_vectors(path, progress=False)):
        try:
            words, vectors = read()
        except VectorFormatError:
            continue
        assert len(words) == len(vectors) and vectors.dtype == np.float32


def test_vocab_counts_file_like_gensim_fvocab(tmp_path):
    words, vectors = sample_vectors()
    counts = np.arange(len(words), dtype=np.int64) * 3 + 5
    kv = KeyedVectors(vectors.shape[1])
    kv.add_vectors(words, vectors)
    for w, c in zip(words, counts):
        kv.set_vecattr(w, "count", int(c))
    # gensim writes rows sorted by count (descending) and the counts beside them
    kv.save_word2vec_format(str(tmp_path / "v.bin"), fvocab=str(tmp_path / "vocab.txt"), binary=True)
    file_words, file_vectors = read_vectors(tmp_path / "v.bin")
    assert file_words == words[::-1]
    convert_vectors(tmp_path / "v.bin", tmp_path / "ckpt", vocab_file=tmp_path / "vocab.txt")
    wv = load_word2vec_format(tmp_path / "ckpt")
    assert wv.index_to_key == words[::-1] and wv.counts.tolist() == counts[::-1].tolist()

    convert_vectors(tmp_path / "ckpt", tmp_path / "out.txt", vocab_file=tmp_path / "out_vocab.txt")
    back = KeyedVectors.load_word2vec_format(str(tmp_path / "out.txt"), fvocab=str(tmp_path / "out_vocab.txt"))
    assert [back.get_vecattr(w, "count") for w in back.index_to_key] == counts[::-1].tolist()
    assert_same(file_words, file_vectors, back.index_to_key, back.vectors)

    (tmp_path / "short.txt").write_text("w0 4\n")
    with pytest.raises(VectorFormatError, match="no count for 22 of the 23 words"):
        vectors_to_checkpoint(tmp_path / "v.bin", tmp_path / "never", vocab_file=tmp_path / "short.txt")
    assert not (tmp_path / "never").exists()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=vocab_and_vectors(), binary=st.booleans())
def test_property_gensim_parity_both_ways(tmp_path, data, binary):
    words, vectors = data
    write_word2vec(tmp_path / "ours", words, vectors, binary=binary, progress=False)
    kv = KeyedVectors.load_word2vec_format(str(tmp_path / "ours"), binary=binary)
    assert_same(words, vectors, kv.index_to_key, kv.vectors)
    kv.save_word2vec_format(str(tmp_path / "gensim"), binary=binary)
    assert_same(words, vectors, *read_word2vec(tmp_path / "gensim", progress=False))
