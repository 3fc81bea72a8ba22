"""WordVectors against gensim's KeyedVectors on identical vectors: neighbours, scores, benchmarks, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gensim.models import KeyedVectors
from scipy import stats

from w2vformer import Word2VecConfig, Word2VecModel, WordVectors

DIM = 23


def _planted_vectors(seed=0):
    """A random vocabulary with planted analogies (d = b + c - a + noise) and case variants."""
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(150)] + ["king", "man", "woman", "queen", "Paris", "France", "Rome", "Italy"]
    words += ["paris", "KING", "berlin", "germany", "Berlin", "madrid", "spain"]
    vectors = rng.normal(size=(len(words), DIM)).astype(np.float32)
    index = {w: i for i, w in enumerate(words)}

    def plant(a, b, c, d, noise=0.05):
        vectors[index[d]] = vectors[index[b]] + vectors[index[c]] - vectors[index[a]] + noise * rng.normal(size=DIM)

    plant("man", "king", "woman", "queen")
    plant("Paris", "France", "Rome", "Italy")
    plant("paris", "france" if "france" in index else "France", "berlin", "germany")
    plant("w3", "w4", "w5", "w6")
    counts = np.arange(len(words), 0, -1) * 7
    return words, vectors, counts


def _both(seed=0):
    words, vectors, counts = _planted_vectors(seed)
    ours = WordVectors(words, vectors, counts)
    kv = KeyedVectors(DIM)
    kv.add_vectors(words, vectors.copy())
    return ours, kv


def _assert_same_neighbours(ours, theirs, atol=1e-5):
    assert [w for w, _ in ours] == [w for w, _ in theirs]
    np.testing.assert_allclose([s for _, s in ours], [s for _, s in theirs], atol=atol)


def test_basics_match_gensim():
    ours, kv = _both()
    assert len(ours) == len(kv) and ours.vector_size == kv.vector_size == DIM
    assert ours.index_to_key == kv.index_to_key and ours.key_to_index == kv.key_to_index
    np.testing.assert_array_equal(ours["king"], kv["king"])
    np.testing.assert_array_equal(ours[["king", "w7"]], kv[["king", "w7"]])
    np.testing.assert_allclose(ours.get_vector("w9", norm=True), kv.get_vector("w9", norm=True), atol=1e-6)
    assert "queen" in ours and "nope" not in ours
    with pytest.raises(ValueError):
        ours.get_vector("king")[0] = 1.0  # read-only view, as in gensim


@pytest.mark.filterwarnings("ignore:Call to deprecated:DeprecationWarning")  # gensim's cosmul calls init_sims
def test_queries_match_gensim():
    ours, kv = _both()
    calls = [
        dict(positive=["king"]),
        dict(positive=["king", "woman"], negative=["man"], topn=7),
        dict(positive=["w1", ("w2", 0.5)], negative=[("w3", -2.0)], topn=4),
        dict(positive="w10", topn=5, restrict_vocab=60),
        dict(positive=[kv["w11"]], topn=3),
    ]
    for kwargs in calls:
        _assert_same_neighbours(ours.most_similar(**kwargs), kv.most_similar(**kwargs))
    np.testing.assert_allclose(ours.most_similar("w12", topn=None), kv.most_similar("w12", topn=None), atol=1e-6)
    for kwargs in [dict(positive=["king", "woman"], negative=["man"]), dict(positive=["w1", "w2"], topn=4), dict(positive="w8")]:
        _assert_same_neighbours(ours.most_similar_cosmul(**kwargs), kv.most_similar_cosmul(**kwargs))
    assert ours.most_similar(positive=["king", "woman"], negative=["man"], topn=1)[0][0] == "queen"
    for a, b in [("king", "queen"), ("w1", "w2"), ("Paris", "paris")]:
        assert ours.similarity(a, b) == pytest.approx(float(kv.similarity(a, b)), abs=1e-6)
    assert ours.n_similarity(["w1", "w2"], ["w3", "king"]) == pytest.approx(float(kv.n_similarity(["w1", "w2"], ["w3", "king"])), abs=1e-6)
    for words in (["king", "queen", "man", "w40"], ["w1", "w2", "w3", "w4", "w5"], ["king", "unknownword", "queen", "w7"]):
        assert ours.doesnt_match(words) == kv.doesnt_match(words)


def _write_analogies(path):
    lines = [
        ": royals",
        "man king woman queen",
        "MAN KING WOMAN QUEEN",  # case-insensitive: same question
        "w3 w4 w5 w6",
        "w1 w2 w3 w4",
        "w1 w2 notaword w4",  # out of vocabulary
        "too few words",  # invalid, skipped
        "",
        ": capitals",
        "Paris France Rome Italy",
        "paris france berlin germany",
        "berlin germany madrid spain",
        "w100 w101 w102 w103",  # beyond restrict_vocab in one of the runs
        ": empty-section",
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_evaluate_word_analogies_matches_gensim(tmp_path):
    ours, kv = _both()
    path = tmp_path / "analogies.txt"
    _write_analogies(path)
    for kwargs in [dict(), dict(restrict_vocab=100), dict(case_insensitive=False), dict(dummy4unknown=True)]:
        score, sections = ours.evaluate_word_analogies(path, **kwargs)
        ref_score, ref_sections = kv.evaluate_word_analogies(str(path), **kwargs)
        assert score == pytest.approx(ref_score)
        assert sections == ref_sections, kwargs
    score, sections = ours.evaluate_word_analogies(path)
    assert ("MAN", "KING", "WOMAN", "QUEEN") in sections[0]["correct"] and sections[-1]["section"] == "Total accuracy"


def test_evaluate_word_analogies_on_gensims_file():
    """gensim's questions-words.txt with a vocabulary covering part of it: same sections and score."""
    from gensim.test.utils import datapath

    path = datapath("questions-words.txt")
    words = sorted({w for line in open(path, encoding="utf-8") if not line.startswith(":") for w in line.split()})[:300]
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(len(words), DIM)).astype(np.float32)
    ours = WordVectors(words, vectors)
    kv = KeyedVectors(DIM)
    kv.add_vectors(words, vectors.copy())
    score, sections = ours.evaluate_word_analogies(path, restrict_vocab=300000)
    ref_score, ref_sections = kv.evaluate_word_analogies(path)  # gensim's default restrict_vocab=300000
    assert sections == ref_sections and score == pytest.approx(ref_score)
    assert sum(len(s["correct"]) + len(s["incorrect"]) for s in sections[:-1]) > 0


def test_evaluate_word_pairs_matches_gensim(tmp_path):
    ours, kv = _both()
    lines = ["# comment", "king\tqueen\t8.5", "w1\tw2\t3.0", "w3\tw4\t3.0", "Paris\tFrance\t7.25", "w5\tnotaword\t2.0",
             "w6\tw7\t1.0", "bad line", "w8\tw9\t6.0", "w10\tw11\t3.0", "KING\tw12\t0.5", "w140\tw2\t4.0"]
    path = tmp_path / "pairs.tsv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    for kwargs in [dict(), dict(restrict_vocab=100), dict(dummy4unknown=True), dict(case_insensitive=False)]:
        pearson, spearman, oov = ours.evaluate_word_pairs(path, **kwargs)
        ref_pearson, ref_spearman, ref_oov = kv.evaluate_word_pairs(str(path), **kwargs)
        np.testing.assert_allclose(pearson, tuple(ref_pearson), rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(spearman, tuple(ref_spearman), rtol=1e-5, atol=1e-7)
        assert oov == pytest.approx(ref_oov)
    comma = tmp_path / "pairs.csv"
    comma.write_text("king,queen,1\nw1,w2,2\nw3,w4,3\nw5,w6,5\n", encoding="utf-8")
    np.testing.assert_allclose(ours.evaluate_word_pairs(comma, delimiter=",")[0], tuple(kv.evaluate_word_pairs(str(comma), delimiter=",")[0]), rtol=1e-5)


def test_correlation_pvalues_match_scipy():
    from w2vformer.keyedvectors import _pearson, _spearman

    rng = np.random.default_rng(3)
    for n in (3, 5, 40, 400):
        x = rng.normal(size=n)
        y = 0.3 * x + rng.normal(size=n)
        y[: n // 3] = np.round(y[: n // 3])  # ties
        np.testing.assert_allclose(_pearson(x, y), tuple(stats.pearsonr(x, y)), rtol=1e-7, atol=1e-12)
        np.testing.assert_allclose(_spearman(x, y), tuple(stats.spearmanr(x, y)), rtol=1e-7, atol=1e-12)


def test_unknown_key_and_bad_inputs():
    ours, _ = _both()
    with pytest.raises(KeyError, match=r"'kimg' is not in the vocabulary.*'king'"):
        ours["kimg"]
    with pytest.raises(KeyError, match="kimg"):
        ours.most_similar(positive=["kimg"])
    with pytest.raises(KeyError, match="kimg"):
        ours.similarity("king", "kimg")
    with pytest.raises(ValueError, match="no input"):
        ours.most_similar(positive=[])
    with pytest.raises(ValueError, match="none of"):
        ours.doesnt_match(["nope", "nada"])
    with pytest.raises(ValueError, match="3 keys but 2 vectors"):
        WordVectors(["a", "b", "c"], np.zeros((2, 4)))
    with pytest.raises(ValueError, match="'a' appears twice"):
        WordVectors(["a", "b", "a"], np.zeros((3, 4)))
    with pytest.raises(ValueError, match="2-D"):
        WordVectors(["a"], np.zeros(4))


def _tiny_tokenizer(words):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"[PAD]": 0, "[UNK]": 1, **{w: i + 2 for i, w in enumerate(words)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]")


def test_from_model_and_from_pretrained(tmp_path):
    words = ["the", "cat", "sat", "mat", "rare"]
    tokenizer = _tiny_tokenizer(words)
    counts = torch.tensor([0, 0, 50, 7, 9, 30, 2])  # [PAD] [UNK] the cat sat mat rare
    config = Word2VecConfig(vocab_size=7, vector_size=DIM, min_count=3)
    model = Word2VecModel(config, token_counts=counts)
    wv = WordVectors.from_model(model, tokenizer)
    assert wv.index_to_key == ["the", "mat", "sat", "cat"]  # specials and min_count out, by frequency
    np.testing.assert_array_equal(wv["cat"], model.in_embed.weight[3].detach().numpy())
    np.testing.assert_array_equal(wv.counts, [50, 30, 9, 7])
    assert WordVectors.from_model(model, tokenizer, min_count=0).index_to_key == ["the", "mat", "sat", "cat", "rare"]

    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    loaded = WordVectors.from_pretrained(tmp_path)
    assert loaded.index_to_key == wv.index_to_key
    np.testing.assert_array_equal(loaded.vectors, wv.vectors)
    with pytest.raises(FileNotFoundError, match="config.json"):
        WordVectors.from_pretrained(tmp_path / "missing")
