"""Run by tests/test_word2vec_gpu.py in a child process with TRITON_INTERPRET=1: Triton's interpreter runs
the GPU kernel's programs one after another on CPU tensors, so a whole training run can be replayed step by
step through the torch reference. Prints one JSON object of measurements; the test asserts on them."""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import torch

assert os.environ.get("TRITON_INTERPRET") == "1", "run with TRITON_INTERPRET=1"

from w2vformer.modeling.modeling_word2vec import build_huffman_tree  # noqa: E402
from w2vformer.training import _w2v_kernels as K  # noqa: E402
from w2vformer.training import _w2v_triton as G  # noqa: E402
from w2vformer.training import corpus as corpus_lib  # noqa: E402
from w2vformer.training import word2vec as W  # noqa: E402

V, D, WINDOW, NEG = 13, 11, 2, 3  # odd sizes; ids 0 and 1 never occur (special tokens: count 0)

# small pieces, short sentences and 2 programs, so that one run has several launches, interleaved halves, cut
# sentences and programs that take several sentences each
G.GPU_SENTENCE_LENGTH = 9
G.GPU_PIECE_WORDS = 12
PROGRAMS = 2


def _corpus(seed: int = 0):
    rs = np.random.RandomState(seed)
    lengths = [14, 1, 0, 5, 23, 3]
    ids = rs.choice(np.arange(2, V), size=sum(lengths), p=np.linspace(3, 1, V - 2) / np.linspace(3, 1, V - 2).sum())
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    corpus = corpus_lib.EncodedCorpus(ids.astype(np.int32), offsets, int(ids.size))
    return corpus, np.bincount(ids, minlength=V).astype(np.int64)


def _prepare(counts, o, use_hs):
    keep = K.keep_probabilities(counts, o["sample"])
    if use_hs:
        codes, points, lengths = (t.numpy() for t in build_huffman_tree(counts))
        no_noise = np.ones(1, np.float32), np.zeros(1, np.int32)
        return keep, *no_noise, codes, points.astype(np.int32), lengths.astype(np.int32)
    weights = np.where(counts > 0, counts.astype(np.float64) ** o["ns_exponent"], 0.0)
    alias_prob, alias_idx = K.build_alias_table(weights)
    return keep, alias_prob, alias_idx, np.zeros((1, 1), np.int8), np.zeros((1, 1), np.int32), np.zeros(1, np.int32)


def _replay(corpus, syn0, syn1, prepared, o, use_hs):
    """The steps the kernel takes, rebuilt in Python from its draws, applied by the torch reference."""
    keep, alias_prob, alias_idx, codes, points, code_lens = prepared
    skipgram, window, epochs = o["objective"] == "skipgram", o["window"], o["epochs"]
    negative = 0 if use_hs else o["negative"]
    offsets = G.split_offsets(corpus.offsets, G.GPU_SENTENCE_LENGTH)
    ids, raw = torch.from_numpy(corpus.ids), torch.from_numpy(offsets)
    generator = torch.Generator().manual_seed(o["seed"])
    schedule = W._schedule(offsets, epochs, G.GPU_PIECE_WORDS)
    per_epoch = len(schedule) // epochs
    order = G.launch_order(offsets, [(a, b) for a, b, _ in schedule[:per_epoch]])
    total = epochs * corpus.ids.size
    steps, n_kept = [], [0] * epochs
    for i, (s_begin, s_end, done) in enumerate(schedule):
        tok_a, tok_b = int(offsets[s_begin]), int(offsets[s_end])
        kept, kept_offsets = G.subsample(ids[tok_a:tok_b], raw[s_begin : s_end + 1] - tok_a, torch.from_numpy(keep),
                                         generator)  # fmt: skip
        n_kept[i // per_epoch] += int(kept.numel())
        seed = G.launch_seed(o["seed"], i)
        shrink, noise = G.draws(torch.arange(max(kept.numel(), 1)), seed, window, torch.from_numpy(alias_prob),
                                torch.from_numpy(alias_idx), (2 * window + 1) * negative + 1)  # fmt: skip
        kept, kept_offsets = kept.tolist(), kept_offsets.tolist()
        n, programs = s_end - s_begin, min(s_end - s_begin, PROGRAMS)
        # the interpreter runs program 0 to the end, then program 1...; program p takes sentences p, p + P, ...
        for s in [int(order[s_begin + i]) for p in range(programs) for i in range(p, n, programs)]:
            clock = done + offsets[s] - offsets[s_begin]
            alpha = max(o["min_alpha"], o["alpha"] - (o["alpha"] - o["min_alpha"]) * clock / total)
            start, stop = kept_offsets[s - s_begin], kept_offsets[s - s_begin + 1]
            for pos in range(start, stop):
                b = int(shrink[pos]) if o["shrink_windows"] else 0
                lo, hi = max(start, pos - window + b), min(stop, pos + window + 1 - b)
                others = [c for c in range(lo, hi) if c != pos]
                if skipgram:
                    for c in others:
                        first = (c - pos + window) * negative + 1
                        steps.append(([kept[c]], kept[pos], noise[pos, first : first + negative], alpha))
                elif others:
                    steps.append(([kept[c] for c in others], kept[pos], noise[pos, 1 : 1 + negative], alpha))
    in_w, out_w = torch.from_numpy(syn0.copy()), torch.from_numpy(syn1.copy())
    hs = tuple(torch.from_numpy(a) for a in (codes, points, code_lens)) if use_hs else None
    negs = torch.stack([n for _, _, n, _ in steps]) if steps else None
    alphas = [a for _, _, _, a in steps]
    words = torch.tensor([w for _, w, _, _ in steps])
    if skipgram:
        W.reference_sg_steps(in_w, out_w, torch.tensor([c[0] for c, _, _, _ in steps]), words, negs, alphas, hs=hs,
                             together=True)  # fmt: skip
    else:
        width = max(len(c) for c, _, _, _ in steps)
        ctx = torch.tensor([c + [0] * (width - len(c)) for c, _, _, _ in steps])
        n_ctx = torch.tensor([len(c) for c, _, _, _ in steps])
        W.reference_cbow_steps(in_w, out_w, ctx, n_ctx, words, negs, alphas, cbow_mean=o["cbow_mean"], hs=hs,
                               together=True)  # fmt: skip
    return in_w.numpy(), out_w.numpy(), len(steps), n_kept


def replay_runs() -> dict:
    corpus, counts = _corpus()
    results = {}
    for objective, loss, cbow_mean, shrink in [
        ("skipgram", "negative_sampling", True, True),
        ("skipgram", "hierarchical_softmax", True, True),
        ("cbow", "negative_sampling", True, True),
        ("cbow", "negative_sampling", False, False),
        ("cbow", "hierarchical_softmax", True, True),
    ]:
        use_hs = loss == "hierarchical_softmax"
        o = dict(objective=objective, cbow_mean=cbow_mean, shrink_windows=shrink, window=WINDOW, negative=NEG,
                 ns_exponent=0.75, sample=0.02, alpha=0.3, min_alpha=0.01, epochs=2, seed=3)  # fmt: skip
        syn0 = W.init_vectors(V, D, 5) * 50  # large enough that sigmoids are far from 1/2
        syn1 = np.random.RandomState(6).uniform(-0.5, 0.5, (V - 1 if use_hs else V, D)).astype(np.float32)
        prepared = _prepare(counts, o, use_hs)
        ref0, ref1, n_steps, n_kept = _replay(corpus, syn0, syn1, prepared, o, use_hs)
        k0, k1 = syn0.copy(), syn1.copy()
        G.train_arrays_on_device(corpus, k0, k1, *prepared, use_hs, o, "cpu", W._schedule, _NoBar(), PROGRAMS)
        results[f"{objective}-{loss}-mean{int(cbow_mean)}-shrink{int(shrink)}"] = {
            "steps": n_steps,
            "tokens": int(corpus.ids.size),
            "kept_per_epoch": n_kept,
            "moved": float(np.abs(k0 - syn0).max()),
            "diff_in": float(np.abs(k0 - ref0).max()),
            "diff_out": float(np.abs(k1 - ref1).max()),
        }
    return results


def draw_statistics() -> dict:
    """The noise words and window shrinks of 30000 positions against their target distributions."""
    counts = np.array([0, 0, 500, 120, 60, 30, 7, 1, 0, 3000], dtype=np.int64)
    weights = np.where(counts > 0, counts.astype(np.float64) ** 0.75, 0.0)
    alias_prob, alias_idx = (torch.from_numpy(a) for a in K.build_alias_table(weights))
    shrink, noise = G.draws(torch.arange(30000), 11, 5, alias_prob, alias_idx, 3)
    noise = noise[:, 1:].flatten()  # draw 0 is never a noise word
    freq = np.bincount(noise.numpy(), minlength=counts.size) / noise.numel()
    return {
        "noise_tv": float(0.5 * np.abs(freq - weights / weights.sum()).sum()),
        "noise_never_zero_count": bool(freq[counts == 0].sum() == 0),
        "noise_draws_differ": float((noise.view(-1, 2)[:, 0] != noise.view(-1, 2)[:, 1]).float().mean()),
        "shrink_range": [int(shrink.min()), int(shrink.max())],
        "shrink_freq": (np.bincount(shrink.numpy(), minlength=5) / shrink.numel()).tolist(),
    }


def end_to_end(tmp: str) -> dict:
    """train_word2vec through the Triton backend, then the saved folder loaded back."""
    from w2vformer.keyedvectors import WordVectors

    W._resolve_device = lambda device: ("triton", "cpu")
    lines = ["the cat sat on the mat", "the dog sat on the log", "a cat and a dog"]
    model, tokenizer = W.train_word2vec(iter(lines), vector_size=7, window=2, negative=2, min_count=1, epochs=1,
                                sample=0.0, output_dir=tmp, progress=False)  # fmt: skip
    wv = WordVectors.from_pretrained(tmp)
    cat = model.get_input_embeddings().weight[tokenizer.convert_tokens_to_ids("cat")].detach().numpy()
    return {
        "device": model.training_stats["device"],
        "saved_equals_model": bool(np.array_equal(wv.get_vector("cat"), cat)),
        "trained": bool(np.abs(model.out_embed.weight.detach().numpy()).max() > 0),
    }


class _NoBar:
    def update(self, n):
        pass

    def set_postfix_str(self, s, refresh=True):
        pass


if __name__ == "__main__":
    print(json.dumps({"replay": replay_runs(), "draws": draw_statistics(), "end_to_end": end_to_end(sys.argv[1])}))
