"""Word2VecConfig / Word2VecModel / build_huffman_tree: validation, losses against the formulas, Huffman trees
against the textbook construction and gensim, save/load and Auto classes."""

from __future__ import annotations

import heapq
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from transformers import AutoConfig, AutoModel

import w2vformer  # noqa: F401  (registers the Auto classes)
from common import BATCH, VOCAB, check_loss_reaches_every_parameter, save_and_reload
from w2vformer import Word2VecConfig, Word2VecModel, build_huffman_tree

DIM, WINDOW, NEG = 11, 3, 4


def _counts(vocab=VOCAB, seed=0):
    g = torch.Generator().manual_seed(seed)
    counts = torch.randint(1, 1000, (vocab,), generator=g)
    counts[:2] = 0  # [PAD], [UNK]
    return counts


def _model(objective="skipgram", loss="negative_sampling", **kwargs):
    config = Word2VecConfig(vocab_size=VOCAB, vector_size=DIM, objective=objective, loss=loss, window=WINDOW, negative=NEG, **kwargs)
    return Word2VecModel(config, token_counts=_counts())


def _batch(objective, seed=1):
    g = torch.Generator().manual_seed(seed)
    center = torch.randint(2, VOCAB, (BATCH,), generator=g)
    negatives = torch.randint(2, VOCAB, (BATCH, NEG), generator=g)
    if objective == "skipgram":
        return dict(center_ids=center, context_ids=torch.randint(2, VOCAB, (BATCH,), generator=g), negative_ids=negatives)
    context = torch.randint(2, VOCAB, (BATCH, 2 * WINDOW), generator=g)
    lengths = torch.randint(1, 2 * WINDOW + 1, (BATCH,), generator=g)
    mask = torch.arange(2 * WINDOW)[None] < lengths[:, None]
    return dict(center_ids=center, context_ids=context.masked_fill(~mask, 0), context_mask=mask, negative_ids=negatives)


# ------------------------------------------------------------------------------------------------ config
@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(window=0), "window must be >= 1, got 0"),
        (dict(negative=-1), "negative must be >= 0, got -1"),
        (dict(negative=0), "negative=0 with loss='negative_sampling'"),
        (dict(vector_size=0), "vector_size must be >= 1, got 0"),
        (dict(objective="sg"), "objective must be one of .* got 'sg'"),
        (dict(loss="softmax"), "loss must be one of .* got 'softmax'"),
        (dict(sample=-0.1), "sample must be >= 0.* got -0.1"),
        (dict(ns_exponent=float("inf")), "ns_exponent must be a finite number, got inf"),
        (dict(alpha=0.0), "alpha .* must be > 0, got 0.0"),
        (dict(min_alpha=0.5), r"min_alpha must be in \[0, alpha=0.025\], got 0.5"),
        (dict(window=2.5), "window must be an integer, got 2.5"),
        (dict(vocab_size=0), "vocab_size must be >= 1, got 0"),
        (dict(vocab_size=1, loss="hierarchical_softmax"), "vocab_size >= 2"),
        (dict(pad_token_id=VOCAB), r"pad_token_id must be None or an id in \[0, 99\), got 99"),
    ],
)
def test_config_rejects_bad_values(kwargs, message):
    base = dict(vocab_size=VOCAB)
    base.update(kwargs)
    with pytest.raises(ValueError, match=message):
        Word2VecConfig(**base)


def test_config_defaults_and_round_trip(tmp_path):
    config = Word2VecConfig(vocab_size=VOCAB, objective="cbow", cbow_mean=False, sample=0, alpha=0.05)
    assert (config.vector_size, config.window, config.negative, config.ns_exponent, config.min_count) == (100, 5, 5, 0.75, 5)
    assert config.tie_word_embeddings is False and config.pad_token_id == 0 and config.seed == 1
    config.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model_type"] == "w2vformer_word2vec" and saved["objective"] == "cbow" and saved["cbow_mean"] is False
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert type(loaded) is Word2VecConfig
    assert {k: v for k, v in loaded.to_dict().items() if k != "_name_or_path"} == {
        k: v for k, v in config.to_dict().items() if k != "_name_or_path"
    }
    saved["window"] = 0
    (tmp_path / "config.json").write_text(json.dumps(saved))
    with pytest.raises(ValueError, match="window must be >= 1, got 0"):
        AutoConfig.from_pretrained(tmp_path)


# ------------------------------------------------------------------------------------------------ Huffman
def _textbook_code_lengths(counts):
    """Huffman's algorithm with a heap: code length of each symbol."""
    heap = [(c, i, [i]) for i, c in enumerate(counts)]
    heapq.heapify(heap)
    lengths = [0] * len(counts)
    tiebreak = len(counts)
    while len(heap) > 1:
        c1, _, s1 = heapq.heappop(heap)
        c2, _, s2 = heapq.heappop(heap)
        for s in s1 + s2:
            lengths[s] += 1
        heapq.heappush(heap, (c1 + c2, tiebreak, s1 + s2))
        tiebreak += 1
    return lengths


def _check_tree(codes, points, lengths):
    """A valid binary tree: prefix-free codes; same code prefix <=> same inner node; V-1 inner nodes, root V-2."""
    vocab = len(lengths)
    paths = {}
    words = []
    for i in range(vocab):
        code = tuple(codes[i, : lengths[i]].tolist())
        words.append(code)
        for k in range(lengths[i]):
            node = points[i, k].item()
            assert paths.setdefault(code[:k], node) == node, "one inner node per code prefix"
    assert sorted(paths.values()) == list(range(vocab - 1))
    assert paths[()] == vocab - 2
    assert len(set(words)) == vocab and not any(w[: len(v)] == v for w in words for v in words if v != w and len(v) < len(w))


@pytest.mark.parametrize("counts", [[5, 5, 5, 5, 5, 5, 5], [0, 0, 3, 1, 4, 1, 5, 9, 2, 6], list(range(1, 40)), [7, 3]])
def test_huffman_tree_matches_textbook(counts):
    codes, points, lengths = build_huffman_tree(counts)
    assert codes.dtype == torch.int8 and points.dtype == torch.int64 and lengths.dtype == torch.int64
    assert codes.shape == points.shape == (len(counts), lengths.max().item())
    _check_tree(codes, points, lengths)
    # any Huffman tree has the optimal weighted length; compare with the textbook construction
    assert sum(c * n for c, n in zip(counts, lengths.tolist())) == sum(c * n for c, n in zip(counts, _textbook_code_lengths(counts)))


def test_huffman_tree_follows_word2vec_ties():
    """Four equal counts, worked through word2vec.c's CreateBinaryTree by hand (it takes the inner node on a tie
    and the rarest leaf, i.e. the last of a sorted vocabulary, first; the second node merged gets code 1)."""
    codes, points, lengths = build_huffman_tree([1, 1, 1, 1])
    assert codes.tolist() == [[1, 1], [1, 0], [0, 1], [0, 0]]
    assert points.tolist() == [[2, 1], [2, 1], [2, 0], [2, 0]]
    assert lengths.tolist() == [2, 2, 2, 2]
    codes, points, lengths = build_huffman_tree([3])
    assert codes.shape == (1, 0) and lengths.tolist() == [0]


def test_huffman_tree_matches_gensim():
    from gensim.models import KeyedVectors
    from gensim.models.word2vec import _assign_binary_codes

    rng = np.random.default_rng(0)
    counts = rng.choice(10**9, size=57, replace=False) + 1  # distinct, in no particular order
    kv = KeyedVectors(1)
    kv.add_vectors([f"w{i}" for i in range(len(counts))], np.zeros((len(counts), 1), dtype=np.float32))
    for i, c in enumerate(counts):
        kv.set_vecattr(i, "count", int(c))
    _assign_binary_codes(kv)
    codes, points, lengths = build_huffman_tree(counts)
    for i in range(len(counts)):
        n = lengths[i].item()
        assert codes[i, :n].tolist() == kv.get_vecattr(i, "code").tolist()
        assert points[i, :n].tolist() == kv.get_vecattr(i, "point").tolist()


def test_huffman_rejects_bad_counts():
    with pytest.raises(ValueError, match=">= 0"):
        build_huffman_tree([3, -1, 2])
    with pytest.raises(ValueError, match="at least one"):
        build_huffman_tree([])


# ------------------------------------------------------------------------------------------------ model
def test_init_and_buffers():
    model = _model(loss="hierarchical_softmax")
    weight = model.get_input_embeddings().weight
    assert weight.shape == (VOCAB, DIM) and weight.abs().max() <= 0.5 / DIM and weight.std() > 0
    assert model.out_embed.weight.shape == (VOCAB - 1, DIM) and model.out_embed.weight.abs().sum() == 0
    codes, points, lengths = build_huffman_tree(_counts())
    assert torch.equal(model.hs_codes, codes) and torch.equal(model.hs_points, points) and torch.equal(model.hs_code_lengths, lengths)
    assert model.config.max_code_length == codes.shape[1]
    assert torch.equal(model.token_counts, _counts())
    assert torch.equal(_model(loss="hierarchical_softmax").in_embed.weight, weight)  # seeded by config.seed
    assert not torch.equal(_model(seed=2).in_embed.weight, weight)
    assert _model().out_embed.weight.shape == (VOCAB, DIM) and not hasattr(_model(), "hs_codes")


def _reference_loss(model, batch, objective, loss):
    """The formulas written out example by example."""
    config, W_in, W_out = model.config, model.in_embed.weight, model.out_embed.weight
    total = []
    for b in range(BATCH):
        if objective == "skipgram":
            h, target = W_in[batch["center_ids"][b]], batch["context_ids"][b]
        else:
            ids = batch["context_ids"][b][batch["context_mask"][b]]
            h = W_in[ids].sum(0) / (len(ids) if config.cbow_mean else 1)
            target = batch["center_ids"][b]
        if loss == "negative_sampling":
            value = -F.logsigmoid(W_out[target] @ h)
            for k in batch["negative_ids"][b]:
                if k != target:
                    value = value - F.logsigmoid(-(W_out[k] @ h))
        else:
            value = 0
            for j in range(model.hs_code_lengths[target]):
                f = W_out[model.hs_points[target, j]] @ h
                value = value - (F.logsigmoid(f) if model.hs_codes[target, j] == 0 else F.logsigmoid(-f))
        total.append(value)
    return torch.stack(total).mean()


@pytest.mark.parametrize(
    "objective, loss, cbow_mean",
    [
        ("skipgram", "negative_sampling", True),
        ("skipgram", "hierarchical_softmax", True),
        ("cbow", "negative_sampling", True),
        ("cbow", "hierarchical_softmax", True),
        ("cbow", "negative_sampling", False),
        ("cbow", "hierarchical_softmax", False),
    ],
)
def test_loss_matches_formula(objective, loss, cbow_mean):
    model = _model(objective, loss, cbow_mean=cbow_mean)
    torch.nn.init.normal_(model.out_embed.weight, std=0.3, generator=torch.Generator().manual_seed(3))
    batch = _batch(objective)
    batch["negative_ids"][0, 1] = batch["context_ids" if objective == "skipgram" else "center_ids"][0]  # ignored
    if loss == "hierarchical_softmax":
        del batch["negative_ids"]
    out = model(**batch)
    torch.testing.assert_close(out.loss, _reference_loss(model, batch, objective, loss), rtol=1e-5, atol=1e-6)
    width = 1 + NEG if loss == "negative_sampling" else model.config.max_code_length
    assert out.logits.shape == (BATCH, width) and out.hidden.shape == (BATCH, DIM)
    check_loss_reaches_every_parameter(model, out.loss)
    loss_t, logits_t, hidden_t = model(**batch, return_dict=False)
    assert torch.equal(loss_t, out.loss)


def test_cbow_default_mask_and_empty_context():
    model = _model("cbow")
    batch = _batch("cbow")
    mask = batch.pop("context_mask")
    torch.testing.assert_close(model(**batch).loss, model(**batch, context_mask=mask).loss)  # pad id 0 masked
    batch["context_ids"][0] = 0  # a row with no context word adds nothing
    with_empty = model(**batch).loss
    rest = {k: v[1:] for k, v in batch.items()}
    torch.testing.assert_close(with_empty, model(**rest).loss)


def test_forward_without_target_returns_vectors():
    model = _model()
    ids = torch.tensor([3, 5])
    out = model(center_ids=ids)
    assert out.loss is None and torch.equal(out.hidden, model.in_embed.weight[ids])


def test_bad_inputs():
    with pytest.raises(ValueError, match="token_counts has 5 entries but config.vocab_size is 99"):
        Word2VecModel(Word2VecConfig(vocab_size=VOCAB), token_counts=[1, 2, 3, 4, 5])
    with pytest.raises(ValueError, match="token_counts must be >= 0"):
        Word2VecModel(Word2VecConfig(vocab_size=3), token_counts=[1, -2, 3])
    model = _model()
    batch = _batch("skipgram")
    with pytest.raises(ValueError, match="negative_ids"):
        model(center_ids=batch["center_ids"], context_ids=batch["context_ids"])
    with pytest.raises(ValueError, match=r"center_ids must have shape \(B,\)"):
        model(center_ids=batch["center_ids"][:, None], context_ids=batch["context_ids"], negative_ids=batch["negative_ids"])
    with pytest.raises(ValueError, match="CBOW context_ids must have shape"):
        _model("cbow")(center_ids=batch["center_ids"], context_ids=batch["context_ids"], negative_ids=batch["negative_ids"])


@pytest.mark.parametrize("loss", ["negative_sampling", "hierarchical_softmax"])
def test_save_load_round_trip(tmp_path, loss):
    model = _model("cbow", loss).eval()
    torch.nn.init.normal_(model.out_embed.weight, generator=torch.Generator().manual_seed(4))
    reloaded = save_and_reload(model, tmp_path, auto_class=AutoModel)
    assert type(reloaded) is Word2VecModel and reloaded.config.loss == loss
    state, new_state = model.state_dict(), reloaded.state_dict()
    assert list(state) == list(new_state)
    for key in state:
        assert state[key].dtype == new_state[key].dtype and torch.equal(state[key], new_state[key]), key
    batch = _batch("cbow")
    if loss == "hierarchical_softmax":
        del batch["negative_ids"]
        assert {"hs_codes", "hs_points", "hs_code_lengths", "token_counts"} <= set(new_state)
    assert torch.equal(model(**batch).loss, reloaded(**batch).loss)
