"""The fast Word2Vec path: numba kernels == torch reference, planted synonyms, checkpoints, threads, CLI."""

from __future__ import annotations

import gzip
import random

import numpy as np
import pytest
import torch

from w2vformer.cli import main as cli_main
from w2vformer.modeling.configuration_word2vec import Word2VecConfig
from w2vformer.modeling.modeling_word2vec import Word2VecModel, build_huffman_tree
from w2vformer.training import _w2v_kernels as K
from w2vformer.training import corpus as corpus_lib
from w2vformer.training.word2vec import reference_cbow_steps, reference_sg_steps, train_word2vec

V, D, T, NEG = 23, 11, 41, 3  # odd sizes so a swapped dimension fails loudly

# groups of planted synonyms with the context words they share
GROUPS = {
    ("car", "automobile"): ["drive", "road", "wheel", "engine", "garage", "fuel", "brake"],
    ("dog", "hound"): ["bark", "tail", "leash", "fetch", "puppy", "bone", "kennel"],
    ("soup", "broth"): ["bowl", "spoon", "hot", "salt", "onion", "kitchen", "taste"],
    ("ship", "vessel"): ["sea", "sail", "harbor", "crew", "anchor", "wave", "deck"],
}


def _planted_lines(n_sentences=1500, seed=0) -> list[str]:
    rnd = random.Random(seed)
    lines = []
    keys = list(GROUPS)
    for _ in range(n_sentences):
        nouns = rnd.choice(keys)
        words = [rnd.choice(nouns)] + rnd.sample(GROUPS[nouns], 4)
        rnd.shuffle(words)
        lines.append(" ".join(words))
    return lines


@pytest.fixture(scope="module")
def planted_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "planted.txt"
    path.write_text("\n".join(_planted_lines()) + "\n", encoding="utf-8")
    return path


def _random_steps(seed, hs_lengths=None):
    rs = np.random.RandomState(seed)
    syn0 = rs.uniform(-0.5, 0.5, (V, D)).astype(np.float32)
    syn1 = rs.uniform(-0.5, 0.5, (V, D)).astype(np.float32)
    words = rs.randint(0, V, T).astype(np.int32)
    # distinct negatives per step (word2vec applies a repeated negative twice, sequentially), sometimes the
    # word itself, which both implementations must skip
    negs = np.stack([rs.choice(V, NEG, replace=False) for _ in range(T)]).astype(np.int64)
    negs[::5, 0] = words[::5]
    negs[::5, 1:] = np.where(negs[::5, 1:] == words[::5, None], (words[::5, None] + 1) % V, negs[::5, 1:])
    alphas = np.linspace(0.5, 0.05, T).astype(np.float32)
    return rs, syn0, syn1, words, negs, alphas


def _hs_arrays(seed):
    counts = np.random.RandomState(seed).randint(1, 50, V)
    codes, points, lengths = build_huffman_tree(counts)
    return codes.numpy(), points.numpy().astype(np.int32), lengths.numpy().astype(np.int32)


_NO_HS = (np.zeros((V, 1), np.int8), np.zeros((V, 1), np.int32), np.zeros(V, np.int32))


@pytest.mark.parametrize("use_hs", [False, True])
def test_skipgram_kernel_matches_torch_reference(use_hs):
    rs, syn0, syn1, words, negs, alphas = _random_steps(0)
    contexts = rs.randint(0, V, T).astype(np.int32)
    hs = _hs_arrays(1) if use_hs else _NO_HS
    if use_hs:
        syn1 = syn1[: V - 1].copy()
    k0, k1 = syn0.copy(), syn1.copy()
    K.sg_steps(k0, k1, contexts, words, negs, alphas, use_hs, *hs)
    t0, t1 = torch.from_numpy(syn0.copy()), torch.from_numpy(syn1.copy())
    reference_sg_steps(t0, t1, torch.from_numpy(contexts).long(), torch.from_numpy(words).long(),
                       torch.from_numpy(negs), alphas, hs=tuple(map(torch.from_numpy, hs)) if use_hs else None)  # fmt: skip
    assert np.abs(k0 - syn0).max() > 1e-2  # the steps did move the vectors
    np.testing.assert_allclose(k0, t0.numpy(), atol=1e-6, rtol=0)
    np.testing.assert_allclose(k1, t1.numpy(), atol=1e-6, rtol=0)


@pytest.mark.parametrize("cbow_mean,use_hs", [(True, False), (False, False), (True, True)])
def test_cbow_kernel_matches_torch_reference(cbow_mean, use_hs):
    rs, syn0, syn1, words, negs, alphas = _random_steps(2)
    contexts = rs.randint(0, V, (T, 6)).astype(np.int32)  # repeated context words are allowed
    n_contexts = rs.randint(1, 7, T).astype(np.int64)
    hs = _hs_arrays(3) if use_hs else _NO_HS
    if use_hs:
        syn1 = syn1[: V - 1].copy()
    k0, k1 = syn0.copy(), syn1.copy()
    K.cbow_steps(k0, k1, contexts, n_contexts, words, negs, alphas, cbow_mean, use_hs, *hs)
    t0, t1 = torch.from_numpy(syn0.copy()), torch.from_numpy(syn1.copy())
    reference_cbow_steps(t0, t1, torch.from_numpy(contexts).long(), torch.from_numpy(n_contexts),
                         torch.from_numpy(words).long(), torch.from_numpy(negs), alphas, cbow_mean=cbow_mean,
                         hs=tuple(map(torch.from_numpy, hs)) if use_hs else None)  # fmt: skip
    assert np.abs(k0 - syn0).max() > 1e-2
    np.testing.assert_allclose(k0, t0.numpy(), atol=1e-6, rtol=0)
    np.testing.assert_allclose(k1, t1.numpy(), atol=1e-6, rtol=0)


@pytest.mark.parametrize("loss", ["negative_sampling", "hierarchical_softmax"])
def test_skipgram_kernel_step_is_sgd_on_the_model_loss(loss):
    """One kernel step == one SGD step (lr alpha) on Word2VecModel's own loss for that example: the fast
    path trains exactly the objective the checkpoint's forward computes."""
    counts = torch.from_numpy(np.random.RandomState(4).randint(1, 50, V))
    model = Word2VecModel(Word2VecConfig(vocab_size=V, vector_size=D, loss=loss, negative=NEG), token_counts=counts)
    with torch.no_grad():
        model.out_embed.weight.uniform_(-0.5, 0.5, generator=torch.Generator().manual_seed(5))
        model.in_embed.weight.uniform_(-0.5, 0.5, generator=torch.Generator().manual_seed(6))
    syn0 = model.in_embed.weight.detach().numpy().copy()
    syn1 = model.out_embed.weight.detach().numpy().copy()
    rs, _, _, words, negs, alphas = _random_steps(7)
    contexts = rs.randint(0, V, T).astype(np.int32)
    use_hs = loss == "hierarchical_softmax"
    hs = (model.hs_codes.numpy(), model.hs_points.numpy().astype(np.int32), model.hs_code_lengths.numpy().astype(np.int32)) if use_hs else _NO_HS  # fmt: skip
    K.sg_steps(syn0, syn1, contexts, words, negs, alphas, use_hs, *hs)
    for i in range(T):
        model.zero_grad()
        out = model(center_ids=torch.tensor([contexts[i]]).long(), context_ids=torch.tensor([words[i]]).long(),
                    negative_ids=torch.from_numpy(negs[i : i + 1]))  # fmt: skip
        out.loss.backward()
        with torch.no_grad():
            for p in model.parameters():
                p -= float(alphas[i]) * p.grad
    np.testing.assert_allclose(syn0, model.in_embed.weight.detach().numpy(), atol=1e-6, rtol=0)
    np.testing.assert_allclose(syn1, model.out_embed.weight.detach().numpy(), atol=1e-6, rtol=0)


def test_alias_table_and_keep_probabilities():
    weights = np.array([0, 0, 1000, 500, 100, 10, 1, 5000.0]) ** 0.75
    prob, alias = K.build_alias_table(weights)
    draws = np.empty(400_000, np.int64)
    K._draw_negatives(np.uint64(12345), draws.size, prob, alias, draws)
    freq = np.bincount(draws, minlength=weights.size) / draws.size
    np.testing.assert_allclose(freq, weights / weights.sum(), atol=3e-3)
    counts = np.array([0, 0, 1000, 10, 1])
    keep = K.keep_probabilities(counts, 1e-3)
    t = 1e-3 * 1011
    expected = [0, 0] + [min(1.0, (np.sqrt(c / t) + 1) * t / c) for c in (1000, 10, 1)]
    assert expected[-1] == 1.0 and expected[2] < 0.05
    np.testing.assert_allclose(keep, expected, rtol=1e-6)
    np.testing.assert_array_equal(K.keep_probabilities(counts, 0), [0, 0, 1, 1, 1])


def test_corpus_encoding_gzip_long_lines_and_min_count(tmp_path):
    path = tmp_path / "c.txt.gz"
    long_line = " ".join(["b"] * (corpus_lib.MAX_SENTENCE_LENGTH + 7))
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("a b c\n\n" + long_line + "\nc a\n")
    corpus, words, counts = corpus_lib.count_words([path])
    assert words == ["a", "b", "c"] and counts.tolist() == [2, 10008, 2]
    assert corpus.raw_words == 10012
    assert np.diff(corpus.offsets).tolist() == [3, corpus_lib.MAX_SENTENCE_LENGTH, 7, 2]
    vocab, corpus = corpus_lib.apply_min_count(corpus, words, counts, min_count=3)
    assert vocab == ["[PAD]", "[UNK]", "b"]
    assert corpus.ids[:3].tolist() == [1, 2, 1]
    with pytest.raises(ValueError, match="min_count=20000.*10012 words, 3 distinct.*10008 times"):
        corpus_lib.apply_min_count(*corpus_lib.count_words([path]), min_count=20000)


def _synonym_rank(wv, word, synonym, topn=3):
    return [w for w, _ in wv.most_similar(word, topn=topn)].index(synonym) if synonym in dict(wv.most_similar(word, topn=topn)) else None


@pytest.mark.parametrize(
    "objective,loss,threads",
    [("skipgram", "negative_sampling", 2), ("cbow", "negative_sampling", 1), ("skipgram", "hierarchical_softmax", 1)],
)
def test_planted_synonyms_rank_in_top_k(planted_file, objective, loss, threads):
    from w2vformer.keyedvectors import WordVectors

    model, tok = train_word2vec([planted_file], objective=objective, loss=loss, vector_size=24, window=3,
                                min_count=1, sample=0, epochs=8, threads=threads, progress=False)  # fmt: skip
    wv = WordVectors.from_model(model, tok)
    for a, b in GROUPS:
        assert _synonym_rank(wv, a, b) is not None, (a, wv.most_similar(a, topn=5))
        assert _synonym_rank(wv, b, a) is not None, (b, wv.most_similar(b, topn=5))
    s = model.training_stats
    assert s["raw_words"] == 1500 * 5 and s["epochs"] == 8 and s["words_per_second"] > 0


def test_one_thread_is_reproducible_and_seed_matters(planted_file):
    kw = dict(vector_size=16, min_count=1, epochs=2, threads=1, progress=False)
    a, _ = train_word2vec([planted_file], seed=3, **kw)
    b, _ = train_word2vec([planted_file], seed=3, **kw)
    c, _ = train_word2vec([planted_file], seed=4, **kw)
    assert torch.equal(a.in_embed.weight, b.in_embed.weight)
    assert not torch.equal(a.in_embed.weight, c.in_embed.weight)


def test_checkpoint_loads_with_automodel_and_wordvectors(planted_file, tmp_path):
    import w2vformer  # noqa: F401  (registers the Auto classes)
    from transformers import AutoModel, AutoTokenizer

    from w2vformer.keyedvectors import WordVectors

    out = tmp_path / "w2v"
    model, tok = train_word2vec([planted_file], objective="cbow", loss="hierarchical_softmax", vector_size=12,
                                min_count=1, epochs=1, progress=False, output_dir=out)  # fmt: skip
    loaded = AutoModel.from_pretrained(out)
    assert isinstance(loaded, Word2VecModel)
    assert loaded.config.objective == "cbow" and loaded.config.alpha == 0.05 and loaded.config.min_count == 1
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name]), name
    assert AutoTokenizer.from_pretrained(out).convert_ids_to_tokens([0, 1]) == ["[PAD]", "[UNK]"]
    wv = WordVectors.from_pretrained(out)
    np.testing.assert_array_equal(wv.get_vector("car"), model.in_embed.weight[tok.convert_tokens_to_ids("car")].detach().numpy())


def test_user_tokenizer_and_iterator_input(planted_file):
    """A tokenizer given by the user is used as is (encode_batch path); an iterator of token lists works."""
    from w2vformer.conversion.vectors import build_wordlevel_tokenizer

    tok = build_wordlevel_tokenizer(["[PAD]", "[UNK]", "car", "automobile", "drive", "road"])
    lines = _planted_lines(200)
    model, tok2 = train_word2vec(iter([line.split() for line in lines]), tokenizer=tok, vector_size=8, min_count=1,
                                 epochs=1, progress=False)  # fmt: skip
    assert tok2 is tok and model.config.vocab_size == 6
    counts = model.token_counts.tolist()
    assert counts[:2] == [0, 0] and counts[2] == sum(line.split().count("car") for line in lines)


def test_bad_inputs(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        train_word2vec([tmp_path / "missing.txt"], progress=False)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    with pytest.raises(ValueError, match="empty"):
        train_word2vec([empty], progress=False)
    few = tmp_path / "few.txt"
    few.write_text("a b c\na b\n")
    with pytest.raises(ValueError, match="min_count=5.*5 words, 3 distinct"):
        train_word2vec([few], min_count=5, progress=False)
    with pytest.raises(ValueError, match="objective"):
        train_word2vec([few], objective="glove", progress=False)
    with pytest.raises(ValueError, match="threads"):
        train_word2vec([few], threads=0, progress=False)


def test_cli_train_query_evaluate(planted_file, tmp_path, capsys):
    out = tmp_path / "cli"
    assert cli_main(["word2vec", "train", str(planted_file), "--output", str(out), "--min-count", "1",
                     "--vector-size", "24", "--window", "3", "--sample", "0", "--epochs", "8", "--threads", "1",
                     "--no-progress"]) == 0  # fmt: skip
    assert "words/s" in capsys.readouterr().out
    assert cli_main(["word2vec", "query", str(out), "car", "--topn", "3"]) == 0
    assert "automobile" in capsys.readouterr().out
    assert cli_main(["word2vec", "query", str(out), "car", "-", "drive", "+", "bark"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 10

    analogies = tmp_path / "analogies.txt"
    analogies.write_text(": synonyms\ncar automobile dog hound\ndog hound car automobile\nsoup broth ship vessel\n")
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("car\tautomobile\t9.5\ndog\thound\t9.0\ncar\tbark\t1.0\nsoup\tsea\t0.5\nship\tvessel\t8.0\n")
    assert cli_main(["word2vec", "evaluate", str(out), "--analogies", str(analogies), "--pairs", str(pairs)]) == 0
    text = capsys.readouterr().out
    assert "analogy accuracy" in text and "spearman" in text
    accuracy = float(text.split("analogy accuracy")[1].split()[0])
    spearman = float(text.split("spearman")[1].split()[0])
    assert 0.0 <= accuracy <= 1.0 and spearman > 0.5


def test_cli_bad_input(tmp_path, capsys):
    assert cli_main(["word2vec", "train", str(tmp_path / "nope.txt"), "--output", str(tmp_path / "o")]) == 2
    assert "nope.txt" in capsys.readouterr().err
    few = tmp_path / "few.txt"
    few.write_text("a b c\n")
    assert cli_main(["word2vec", "train", str(few), "--output", str(tmp_path / "o"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "min_count=5" in err and "3 words" in err
    assert not (tmp_path / "o").exists()
    assert cli_main(["word2vec", "query", str(tmp_path / "nothing"), "king"]) == 2
    assert "does not exist" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------------
# return_model=False: training and saving without torch or transformers
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("objective,loss", [("skipgram", "negative_sampling"), ("cbow", "hierarchical_softmax")])
def test_lean_save_writes_the_same_folder_as_save_pretrained(planted_file, tmp_path, objective, loss):
    """return_model=False writes config.json, model.safetensors, the code and the tokenizer files itself; they
    are byte for byte what Word2VecModel.save_pretrained and the tokenizer's save_pretrained write."""
    kw = dict(objective=objective, loss=loss, vector_size=13, min_count=2, epochs=1, threads=1, seed=7, progress=False)
    stats = train_word2vec([planted_file], output_dir=tmp_path / "lean", return_model=False, **kw)
    model, _ = train_word2vec([planted_file], output_dir=tmp_path / "full", **kw)
    assert stats["raw_words"] == model.training_stats["raw_words"] > 0
    names = sorted(p.name for p in (tmp_path / "full").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "lean").iterdir())
    assert {"config.json", "model.safetensors", "tokenizer.json", "modeling_word2vec.py"} <= set(names)
    for name in names:
        assert (tmp_path / "lean" / name).read_bytes() == (tmp_path / "full" / name).read_bytes(), name


def test_huffman_tree_in_numpy_equals_the_models(tmp_path):
    from w2vformer.training.word2vec import huffman_tree

    rs = np.random.RandomState(3)
    for counts in ([5, 5], [1, 2, 3, 4, 5, 6, 7], rs.randint(0, 4, 37), rs.zipf(1.5, 101) % 1000):
        expected = build_huffman_tree(torch.as_tensor(np.asarray(counts)))
        got = huffman_tree(counts)
        for e, g in zip(expected, got):
            assert g.dtype == e.numpy().dtype and np.array_equal(g, e.numpy())


@pytest.mark.parametrize("bad", [dict(vector_size=0), dict(window=0), dict(negative=-1), dict(objective="sg"),
                                 dict(loss="softmax"), dict(sample=-1.0), dict(alpha=0.0), dict(epochs=0),
                                 dict(min_alpha=1.0), dict(ns_exponent=float("nan")), dict(cbow_mean=1),
                                 dict(negative=0), dict(vector_size=2.5)])  # fmt: skip
def test_options_are_checked_as_the_config_checks_them(bad, tmp_path):
    """The lean path checks options without Word2VecConfig, with its messages, before reading the corpus."""
    base = dict(vector_size=10, objective="skipgram", cbow_mean=True, loss="negative_sampling", negative=5,
                ns_exponent=0.75, window=5, shrink_windows=True, sample=1e-3, min_count=5, alpha=0.05,
                min_alpha=1e-4, epochs=5, seed=1)  # fmt: skip
    with pytest.raises(ValueError) as from_config:
        Word2VecConfig(vocab_size=50, **{**base, **bad})
    with pytest.raises(ValueError) as from_training:
        train_word2vec([tmp_path / "never-read.txt"], output_dir=tmp_path / "out", return_model=False, **{**base, **bad})
    assert str(from_training.value) == str(from_config.value)
    assert not (tmp_path / "out").exists()


def test_lean_training_imports_neither_torch_nor_transformers(planted_file, tmp_path):
    """`w2vformer word2vec train` (return_model=False) runs in a process that never loads torch or transformers,
    so its memory is numpy + numba + the corpus + the vectors; the folder then loads with AutoModel."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from w2vformer.cli import main\n"
        f"rc = main(['word2vec', 'train', {str(planted_file)!r}, '--output', {str(tmp_path / 'cli')!r}, '--epochs', '1',"
        " '--threads', '1', '--min-count', '2', '--vector-size', '9', '--no-progress'])\n"
        "print('loaded:', sorted(m for m in ('torch', 'transformers') if m in sys.modules), 'rc:', rc)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "loaded: [] rc: 0" in run.stdout, run.stdout
    from transformers import AutoModel

    model = AutoModel.from_pretrained(tmp_path / "cli")
    assert isinstance(model, Word2VecModel) and model.get_input_embeddings().weight.shape[1] == 9


def test_schedule_covers_every_piece_once_per_epoch_and_alternates_halves():
    from w2vformer.training.word2vec import _pieces, _schedule

    rs = np.random.RandomState(0)
    offsets = np.concatenate([[0], np.cumsum(rs.randint(1, 900, 301))]).astype(np.int64)
    pieces = _pieces(offsets, 1000)
    schedule = _schedule(offsets, 3, 1000)
    assert len(schedule) == 3 * len(pieces)
    per_epoch = [schedule[e * len(pieces):(e + 1) * len(pieces)] for e in range(3)]
    for epoch in per_epoch:
        assert sorted((a, b) for a, b, _ in epoch) == pieces  # each piece once, same order every epoch
        assert [p[:2] for p in epoch] == [p[:2] for p in per_epoch[0]]
    # the learning-rate clock: tokens scheduled before each piece, over all epochs
    sizes = [int(offsets[b] - offsets[a]) for a, b, _ in schedule]
    assert [done for _, _, done in schedule] == list(np.cumsum([0] + sizes[:-1]))
    # first and second half alternate: piece k of each half, side by side
    half = offsets[-1] / 2
    sides = [offsets[a] >= half for a, _, _ in per_epoch[0]]
    n_first = sides.count(False)
    assert sides[: 2 * min(n_first, len(sides) - n_first)] == [False, True] * min(n_first, len(sides) - n_first)
    assert [a for a, _, _ in per_epoch[0] if offsets[a] < half] == sorted(a for a, _ in pieces if offsets[a] < half)
