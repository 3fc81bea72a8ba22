"""The Trainer path of Word2Vec: streaming dataset, collator, SGD schedule, Trainer checkpoints and resume, and
both objectives x both losses learning planted synonyms."""

from __future__ import annotations

import collections
import gzip
import random

import numpy as np
import pytest
import torch
from transformers import AutoModel, Trainer

from test_wordvectors import _tiny_tokenizer
from w2vformer import Word2VecCollator, Word2VecConfig, Word2VecDataset, Word2VecModel, WordVectors, count_tokens
from w2vformer.training.word2vec_data import word2vec_optimizer, word2vec_training_arguments

PAIRS = [("cat", "kitten"), ("car", "truck"), ("red", "crimson"), ("sun", "star")]


def _planted_corpus(tmp_path, lines=600, seed=0):
    """Two-word sentences: a word of pair k next to one of the 6 context words of group k. The two words of a
    pair share every context and never occur together, so they must end up nearest neighbours."""
    rng = random.Random(seed)
    text = []
    for _ in range(lines):
        k = rng.randrange(len(PAIRS))
        words = [rng.choice(PAIRS[k]), f"g{k}c{rng.randrange(6)}"]
        rng.shuffle(words)
        text.append(" ".join(words))
    path = tmp_path / "planted.txt"
    path.write_text("\n".join(text) + "\n", encoding="utf-8")
    words = sorted({w for line in text for w in line.split()})
    return path, _tiny_tokenizer(words)


def _config(tokenizer, **kwargs):
    defaults = dict(vocab_size=len(tokenizer), vector_size=16, window=2, min_count=1, sample=0.0, negative=5, epochs=5)
    defaults.update(kwargs)
    return Word2VecConfig(**defaults)


# ------------------------------------------------------------------------------------------------ counting
def test_count_tokens_streams_plain_and_gzip(tmp_path):
    path, tokenizer = _planted_corpus(tmp_path, lines=50)
    zipped = tmp_path / "planted.txt.gz"
    zipped.write_bytes(gzip.compress(path.read_bytes()))
    (tmp_path / "oov.txt").write_text("cat zebra [PAD]\n", encoding="utf-8")
    counts = count_tokens(tokenizer, [path, zipped, tmp_path / "oov.txt"], batch_lines=7, show_progress=False)
    expected = collections.Counter(path.read_text().split()) + collections.Counter(path.read_text().split())
    expected["cat"] += 1
    vocab = tokenizer.get_vocab()
    assert counts.shape == (len(tokenizer),) and counts.dtype == np.int64
    assert {w: counts[vocab[w]] for w in expected} == dict(expected)
    assert counts[tokenizer.pad_token_id] == 0 and counts[tokenizer.unk_token_id] == 0  # specials never count
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        count_tokens(tokenizer, tmp_path / "missing.txt", show_progress=False)


# ------------------------------------------------------------------------------------------------ dataset
def test_skipgram_examples_are_the_window_pairs(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("a b c d e\nb zebra a\n\nc\n", encoding="utf-8")  # zebra is unknown: dropped, windows span it
    tokenizer = _tiny_tokenizer(["a", "b", "c", "d", "e"])
    counts = count_tokens(tokenizer, path, show_progress=False)
    config = _config(tokenizer, window=2, shrink_windows=False, epochs=1)
    ids = tokenizer.convert_tokens_to_ids
    examples = [(e["center_ids"], e["context_ids"]) for e in Word2VecDataset(path, tokenizer, config, counts)]
    expected = []
    for sentence in (["a", "b", "c", "d", "e"], ["b", "a"]):
        for i, w in enumerate(sentence):
            for j in range(max(0, i - 2), min(len(sentence), i + 3)):
                if j != i:
                    expected.append((ids(w), ids(sentence[j])))
    assert examples == expected

    cbow = _config(tokenizer, objective="cbow", window=2, shrink_windows=False, epochs=1)
    rows = [(e["center_ids"], e["context_ids"]) for e in Word2VecDataset(path, tokenizer, cbow, counts)]
    assert rows[2] == (ids("c"), ids(["a", "b", "d", "e"])) and rows[5] == (ids("b"), [ids("a")]) and len(rows) == 7


def test_dynamic_windows_subsampling_and_epochs(tmp_path):
    rng = random.Random(1)
    others = [f"w{i}" for i in range(10)]
    lines = [" ".join("the" if rng.random() < 0.5 else rng.choice(others) for _ in range(10)) for _ in range(200)]
    path = tmp_path / "freq.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tokenizer = _tiny_tokenizer(["the"] + others)
    counts = count_tokens(tokenizer, path, show_progress=False)

    # windows drawn from 1..window: every distance occurs, none beyond; the stream is a function of the seed
    # and the Trainer epoch; the passes of one iteration differ
    config = _config(tokenizer, window=3, epochs=2)
    dataset = Word2VecDataset(path, tokenizer, config, counts)
    first = list(dataset)
    assert first == list(dataset)
    dataset.set_epoch(1)
    assert list(dataset) != first
    one_pass = list(Word2VecDataset(path, tokenizer, config, counts, epochs=1))
    assert first[: len(one_pass)] == one_pass and first[len(one_pass) :] != one_pass
    full = list(Word2VecDataset(path, tokenizer, _config(tokenizer, window=3, shrink_windows=False, epochs=1), counts))
    assert len(one_pass) < 0.8 * len(full)  # expected (window + 1) / (2 * window) = 2/3 of the pairs, less at edges
    planted, planted_tokenizer = _planted_corpus(tmp_path, lines=400)
    planted_counts = count_tokens(planted_tokenizer, planted, show_progress=False)
    fixed = _config(planted_tokenizer, window=1, epochs=2)  # no randomness left: 2 pairs a line, 2 passes
    assert len(list(Word2VecDataset(planted, planted_tokenizer, fixed, planted_counts))) == 2 * 2 * 400
    assert Word2VecDataset(planted, planted_tokenizer, fixed, planted_counts).estimate_examples() == 2 * 2 * 800

    # subsampling keeps a token with word2vec's probability (sqrt(c/t) + 1) t/c, t = sample * total
    sample, epochs = 0.01, 20
    sub = _config(tokenizer, sample=sample, objective="cbow", epochs=epochs)
    centers = collections.Counter(e["center_ids"] for e in Word2VecDataset(path, tokenizer, sub, counts))
    t = sample * counts.sum()
    for token in ("the", "w3"):
        i = tokenizer.convert_tokens_to_ids(token)
        keep = (np.sqrt(counts[i] / t) + 1) * t / counts[i]
        assert centers[i] / (epochs * counts[i]) == pytest.approx(keep, abs=0.02)


def test_worker_and_process_sharding(tmp_path, monkeypatch):
    path, tokenizer = _planted_corpus(tmp_path, lines=60)
    counts = count_tokens(tokenizer, path, show_progress=False)
    config = _config(tokenizer, shrink_windows=False, epochs=1)
    dataset = Word2VecDataset(path, tokenizer, config, counts)
    single = sorted((e["center_ids"], e["context_ids"]) for e in dataset)
    loader = torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=2)
    assert sorted((int(e["center_ids"]), int(e["context_ids"])) for e in loader) == single

    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.distributed, "get_world_size", lambda: 3)
    shards = []
    for rank in range(3):
        monkeypatch.setattr(torch.distributed, "get_rank", lambda rank=rank: rank)
        shards.append([(e["center_ids"], e["context_ids"]) for e in Word2VecDataset(path, tokenizer, config, counts, shard_by_process=True)])
    assert sorted(sum(shards, [])) == single and all(0 < len(s) < len(single) for s in shards)
    assert len([e for e in Word2VecDataset(path, tokenizer, config, counts)]) == len(single)  # off by default


def test_subword_tokenizer(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    path, _ = _planted_corpus(tmp_path, lines=100)
    backend = Tokenizer(models.BPE(unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.train([str(path)], trainers.BpeTrainer(vocab_size=40, special_tokens=["[PAD]", "[UNK]"], show_progress=False))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="[PAD]", unk_token="[UNK]")
    counts = count_tokens(tokenizer, path, show_progress=False)
    assert counts.sum() > 2 * 100  # words split into several pieces
    config = _config(tokenizer, epochs=1, loss="hierarchical_softmax")
    model = Word2VecModel(config, token_counts=counts)
    examples = list(Word2VecDataset(path, tokenizer, config, counts))
    batch = Word2VecCollator(config, counts)(examples[:32])
    assert torch.isfinite(model(**batch).loss)


# ------------------------------------------------------------------------------------------------ collator
def test_collator_batches_and_negatives(tmp_path):
    path, tokenizer = _planted_corpus(tmp_path, lines=200)
    counts = count_tokens(tokenizer, path, show_progress=False)
    counts[tokenizer.convert_tokens_to_ids("g3c5")] = 1  # below min_count=2 below: never a negative
    config = _config(tokenizer, objective="cbow", window=2, negative=7, min_count=2)
    examples = list(Word2VecDataset(path, tokenizer, config, counts, epochs=1))[:13]
    collate = Word2VecCollator(config, counts)
    batch = collate(examples)
    assert set(batch) == {"center_ids", "context_ids", "context_mask", "negative_ids"}
    assert batch["context_ids"].shape == batch["context_mask"].shape == (13, 4) and batch["negative_ids"].shape == (13, 7)
    assert torch.equal(batch["context_ids"][~batch["context_mask"]], torch.zeros(int((~batch["context_mask"]).sum()), dtype=torch.long))
    assert torch.equal(collate(examples)["negative_ids"], batch["negative_ids"])  # seeded by the batch itself
    assert not torch.equal(collate(examples[1:] + examples[:1])["negative_ids"], batch["negative_ids"])

    # many draws follow counts ** 0.75 over the trainable ids
    draws = torch.cat([collate([{"center_ids": i, "context_ids": [i]}])["negative_ids"].flatten() for i in range(2, 2000)])
    observed = np.bincount(draws.numpy(), minlength=len(counts)) / len(draws)
    weights = np.where(counts >= 2, counts.astype(float) ** 0.75, 0.0)
    np.testing.assert_allclose(observed, weights / weights.sum(), atol=0.01)
    assert observed[tokenizer.convert_tokens_to_ids("g3c5")] == 0 and observed[:2].sum() == 0

    hs = Word2VecCollator(_config(tokenizer, loss="hierarchical_softmax"), counts)
    assert set(hs([{"center_ids": 3, "context_ids": 4}])) == {"center_ids", "context_ids"}
    with pytest.raises(ValueError, match="all zero"):
        Word2VecCollator(config, np.zeros(len(tokenizer)))
    with pytest.raises(ValueError, match="token_counts has 3 entries"):
        Word2VecCollator(config, np.ones(3))


def test_learning_rate_schedule():
    model = Word2VecModel(Word2VecConfig(vocab_size=9, vector_size=4, alpha=0.05, min_alpha=0.001))
    optimizer, scheduler = word2vec_optimizer(model, max_steps=10, batch_size=8)
    lrs = []
    for _ in range(12):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    expected = [max(0.05 - (0.05 - 0.001) * s / 10, 0.001) * 8 for s in range(12)]
    np.testing.assert_allclose(lrs, expected, rtol=1e-12)
    with pytest.raises(ValueError, match="max_steps and batch_size must be >= 1"):
        word2vec_optimizer(model, max_steps=0, batch_size=8)


# ------------------------------------------------------------------------------------------------ learning
@pytest.mark.parametrize("objective", ["skipgram", "cbow"])
@pytest.mark.parametrize("loss", ["negative_sampling", "hierarchical_softmax"])
def test_planted_synonyms_are_learnt(tmp_path, objective, loss):
    path, tokenizer = _planted_corpus(tmp_path)
    counts = count_tokens(tokenizer, path, show_progress=False)
    config = _config(tokenizer, objective=objective, loss=loss, alpha=0.025 if objective == "skipgram" else 0.05)
    model = Word2VecModel(config, token_counts=counts)

    def ranks():
        wv = WordVectors.from_model(model, tokenizer)
        return [[w for w, _ in wv.most_similar(a, topn=len(wv))].index(b) for a, b in PAIRS + [(b, a) for a, b in PAIRS]]

    before = ranks()
    examples, batch_size = list(Word2VecDataset(path, tokenizer, config, counts)), 32
    steps = len(examples) // batch_size
    optimizer, scheduler = word2vec_optimizer(model, max_steps=steps, batch_size=batch_size, sparse=True)
    assert model.in_embed.sparse and model.out_embed.sparse
    collate, losses = Word2VecCollator(config, counts), []
    for step in range(steps):
        out = model(**collate(examples[step * batch_size : (step + 1) * batch_size]))
        out.loss.backward()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        losses.append(out.loss.item())
    after = ranks()
    assert max(after) <= 1, f"synonym ranks after training {after} (before {before})"  # top 2 of 26 words
    assert max(before) > 1 and np.mean(losses[-20:]) < np.mean(losses[:20])


# ------------------------------------------------------------------------------------------------ Trainer
def _trainer(path, tokenizer, counts, output_dir, max_steps, batch_size=16):
    config = _config(tokenizer, loss="hierarchical_softmax")
    model = Word2VecModel(config, token_counts=counts)
    args = word2vec_training_arguments(
        output_dir, max_steps=max_steps, batch_size=batch_size, save_steps=max_steps // 2, logging_steps=2,
        use_cpu=True, disable_tqdm=True, save_only_model=False,
    )
    return Trainer(
        model=model,
        args=args,
        train_dataset=Word2VecDataset(path, tokenizer, config, counts, epochs=0),  # endless: max_steps ends it
        data_collator=Word2VecCollator(config, counts),
        optimizers=word2vec_optimizer(model, max_steps=max_steps, batch_size=batch_size),
    )


def test_trainer_trains_checkpoints_and_resumes(tmp_path):
    path, tokenizer = _planted_corpus(tmp_path, lines=40)  # 80 pairs a pass: 12 steps of 16 span 2.4 passes
    counts = count_tokens(tokenizer, path, show_progress=False)
    trainer = _trainer(path, tokenizer, counts, tmp_path / "run", max_steps=12)
    start = trainer.model.in_embed.weight.detach().clone()
    result = trainer.train()
    assert result.global_step == 12 and np.isfinite(result.training_loss)
    final = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    assert not torch.equal(final["in_embed.weight"], start)
    logged = [h["learning_rate"] for h in trainer.state.log_history if "learning_rate" in h]
    assert logged[0] > logged[-1] > 0  # linear decay towards min_alpha

    checkpoint = tmp_path / "run" / "checkpoint-6"
    reloaded = AutoModel.from_pretrained(tmp_path / "run" / "checkpoint-12")
    assert all(torch.equal(final[k], v) for k, v in reloaded.state_dict().items())

    resumed = _trainer(path, tokenizer, counts, tmp_path / "run", max_steps=12)
    with torch.no_grad():  # a different start: only loading checkpoint-6 can give the uninterrupted result
        resumed.model.in_embed.weight.normal_(generator=torch.Generator().manual_seed(5))
    resumed.train(resume_from_checkpoint=str(checkpoint))
    for key, value in resumed.model.state_dict().items():
        assert torch.equal(value, final[key]), f"{key} differs after resuming from step 6"
