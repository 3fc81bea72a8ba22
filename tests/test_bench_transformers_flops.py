"""The FLOP count behind bench/bench_transformers.py's model FLOPs utilisation (``--peak-tflops``).

MFU is only as true as its numerator, so the count is checked against the closed form for a GPT-2-shaped
decoder, and ours against the stock model of each family (the same function, so the same FLOPs)."""

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

BENCH = Path(__file__).resolve().parents[1] / "bench" / "bench_transformers.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_transformers", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tiny():
    return SimpleNamespace(vocab=37, hidden=12, layers=2, heads=3, device="cpu", torch_dtype=torch.float32)


def test_decoder_flops_match_the_closed_form(bench):
    """Forward: 2 FLOPs per weight per token (attention and MLP weights, the tied head; lookups are free) plus
    QK^T and AV, 2 x 2 x L^2 x hidden per layer. Backward: twice the forward."""
    a = tiny()
    length, d = 9, a.hidden
    ours, stock = bench.make_pair("decoder", "sdpa", a, max_len=32)
    forward = 2 * length * (a.layers * 12 * d * d + a.vocab * d) + a.layers * 4 * length * length * d
    assert bench.train_flops(ours, "decoder", length, a) == 3 * forward
    assert bench.train_flops(stock, "decoder", length, a) == 3 * forward


@pytest.mark.parametrize("family", ["encoder", "seq2seq"])
def test_ours_and_stock_count_the_same_flops(bench, family):
    a = tiny()
    ours, stock = bench.make_pair(family, "sdpa", a, max_len=32)
    assert bench.train_flops(ours, family, 11, a) == bench.train_flops(stock, family, 11, a) > 0


def test_flop_count_leaves_the_model_as_it_was(bench):
    """The count runs eager attention and a backward pass; the timed model keeps its kernel and no gradients."""
    a = tiny()
    ours, _ = bench.make_pair("decoder", "sdpa", a, max_len=32)
    bench.train_flops(ours, "decoder", 7, a)
    assert ours.config._attn_implementation == "sdpa"
    assert all(p.grad is None for p in ours.parameters())


def test_seq2seq_flops_are_far_below_six_n_per_counted_token(bench):
    """The old estimate, 6 N per token with source and target tokens both counted, nearly doubled seq2seq's
    FLOPs: each stack's weights see only its own half of the tokens."""
    a = tiny()
    length = 11
    ours, _ = bench.make_pair("seq2seq", "sdpa", a, max_len=32)
    n = sum(p.numel() for name, p in ours.named_parameters() if "position" not in name)
    assert bench.train_flops(ours, "seq2seq", length, a) < 0.7 * 6 * n * 2 * length
