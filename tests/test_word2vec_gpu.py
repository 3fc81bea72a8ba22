"""The GPU path of train_word2vec: the Triton kernel, checked without a GPU.

- Triton's interpreter (TRITON_INTERPRET=1, in a child process: tests/_helpers_triton.py) runs the kernel's
  programs one after another on the CPU. Every run is replayed step by step from the kernel's own draws
  through the torch reference (``reference_sg_steps`` / ``reference_cbow_steps``): both objectives, both
  losses, CBOW mean and sum, fixed and reduced windows, subsampling, several launches, cut sentences.
- The draws have word2vec's distributions (noise words ~ count**0.75, window shrinks uniform).
- The kernel compiles for Hopper and Ampere GPUs with Triton's own compiler (no GPU needed to compile), and
  its updates are fire-and-forget atomic reductions in the machine code. (The interpreter needs Triton >= 3.9,
  which loops over tensor bounds; the compiled kernel was also checked with Triton 3.6, torch 2.11's.)
- The ``device`` argument picks the backend, and says why it cannot when asked for a GPU that is not there.
- How many programs run at once: ``concurrent_programs``' bound, and in bench/sim_gpu_hogwild.py's model of
  concurrent stale updates it trains where 32 times as many programs diverge.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import triton  # a test dependency (the [test] extra): these tests never skip
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from w2vformer.training import word2vec as W

HERE = Path(__file__).parent
CONFIGS = [
    "skipgram-negative_sampling-mean1-shrink1",
    "skipgram-hierarchical_softmax-mean1-shrink1",
    "cbow-negative_sampling-mean1-shrink1",
    "cbow-negative_sampling-mean0-shrink0",
    "cbow-hierarchical_softmax-mean1-shrink1",
]


@pytest.fixture(scope="module")
def interpreted(tmp_path_factory):
    env = dict(os.environ, TRITON_INTERPRET="1", OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, str(HERE / "_helpers_triton.py"), str(tmp_path_factory.mktemp("e2e") / "w2v")],
                         env=env, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert out.returncode == 0, out.stderr[-4000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("config", CONFIGS)
def test_kernel_run_equals_the_torch_reference_step_by_step(interpreted, config):
    r = interpreted["replay"][config]
    assert r["steps"] > 50, r
    assert all(k < r["tokens"] for k in r["kept_per_epoch"]), r  # subsampling dropped words
    assert r["moved"] > 0.5, r  # training did move the vectors
    assert r["diff_in"] < 2e-6, r
    assert r["diff_out"] < 2e-6, r


@pytest.mark.parametrize("objective", ["skipgram", "cbow"])
def test_the_kernels_step_is_one_sgd_step_on_the_models_loss(objective):
    """The GPU kernel's semantics (``together=True``: a step's targets scored at once) is exactly SGD on
    Word2VecModel's own loss, example by example, repeated noise words included (autograd sums them); for
    CBOW's input rows, word2vec's rule (the whole gradient to every context row) is C times the gradient."""
    import numpy as np
    import torch

    from w2vformer.modeling.configuration_word2vec import Word2VecConfig
    from w2vformer.modeling.modeling_word2vec import Word2VecModel

    V, D, T, NEG, C = 13, 7, 17, 4, 3
    rs = np.random.RandomState(0)
    config = Word2VecConfig(vocab_size=V, vector_size=D, negative=NEG, objective=objective)
    model = Word2VecModel(config, token_counts=torch.from_numpy(rs.randint(1, 50, V)))
    with torch.no_grad():
        model.in_embed.weight.uniform_(-0.5, 0.5, generator=torch.Generator().manual_seed(1))
        model.out_embed.weight.uniform_(-0.5, 0.5, generator=torch.Generator().manual_seed(2))
    words = torch.from_numpy(rs.randint(0, V, T)).long()
    negs = torch.from_numpy(rs.randint(0, 3, (T, NEG))).long()  # 3 ids for 4 draws: repeats in every step
    alphas = np.linspace(0.4, 0.1, T)
    in_w, out_w = model.in_embed.weight.detach().clone(), model.out_embed.weight.detach().clone()
    if objective == "skipgram":
        contexts = torch.from_numpy(rs.randint(0, V, T)).long()
        W.reference_sg_steps(in_w, out_w, contexts, words, negs, alphas, together=True)
        inputs = [dict(center_ids=contexts[i : i + 1]) for i in range(T)]
    else:
        contexts = torch.from_numpy(rs.randint(0, V, (T, C))).long()
        W.reference_cbow_steps(in_w, out_w, contexts, torch.full((T,), C), words, negs, alphas, together=True)
        inputs = [dict(context_ids=contexts[i : i + 1], context_mask=torch.ones(1, C), center_ids=words[i : i + 1])
                  for i in range(T)]  # fmt: skip
    for i in range(T):
        model.zero_grad()
        targets = dict(context_ids=words[i : i + 1]) if objective == "skipgram" else {}
        out = model(**inputs[i], **targets, negative_ids=negs[i : i + 1])
        out.loss.backward()
        with torch.no_grad():
            model.out_embed.weight -= float(alphas[i]) * model.out_embed.weight.grad
            # word2vec's CBOW gives every context row the whole input gradient, C times the gradient of the mean
            model.in_embed.weight -= float(alphas[i]) * (C if objective == "cbow" else 1) * model.in_embed.weight.grad
    assert (negs[:, :, None] == negs[:, None, :]).sum() > T * NEG  # repeats did occur
    torch.testing.assert_close(in_w, model.in_embed.weight.detach(), atol=1e-6, rtol=0)
    torch.testing.assert_close(out_w, model.out_embed.weight.detach(), atol=1e-6, rtol=0)


def test_draws_follow_word2vecs_distributions(interpreted):
    d = interpreted["draws"]
    assert d["noise_tv"] < 0.01, d  # total variation from count**0.75 over 60000 draws
    assert d["noise_never_zero_count"], d
    assert 0.4 < d["noise_draws_differ"] < 0.6, d  # independent draws (1 - sum p**2 = 0.48 here)
    assert d["shrink_range"] == [0, 4], d
    assert all(abs(f - 0.2) < 0.015 for f in d["shrink_freq"]), d


def test_train_word2vec_through_the_triton_backend_saves_a_loadable_checkpoint(interpreted):
    e = interpreted["end_to_end"]
    assert e == {"device": "cpu", "saved_equals_model": True, "trained": True}


_SIGNATURE = dict(ids="*i32", offsets="*i64", raw_offsets="*i64", order="*i64", syn0="*fp32", syn1="*fp32",
                  alias_prob="*fp32", alias_idx="*i32", codes="*i8", points="*i32", code_lens="*i32", s_begin="i32",
                  n_sentences="i32", words_done="fp32", words_total="fp32", alpha0="fp32", min_alpha="fp32", seed="i64",
                  window="i32", vocab_size="i32", max_code="i32")  # fmt: skip


@pytest.mark.parametrize(
    "arch,skipgram,use_hs,cbow_mean",
    [(90, True, False, True), (90, True, True, True), (90, False, False, False), (90, False, True, True),
     (80, True, False, True)],
)  # fmt: skip
def test_kernel_compiles_for_gpus_with_fire_and_forget_atomics(arch, skipgram, use_hs, cbow_mean):
    from w2vformer.training import _w2v_triton as G

    constants = dict(D=100, BLOCK_D=128, NEGATIVE=0 if use_hs else 5, NEG_BLOCK=1 if use_hs else 8, HS_BLOCK=8,
                     WIN_BLOCK=16, SKIPGRAM=skipgram, USE_HS=use_hs, CBOW_MEAN=cbow_mean, SHRINK_WINDOWS=True)  # fmt: skip
    signature = dict(_SIGNATURE, **{k: "constexpr" for k in constants})
    names = list(signature)
    src = ASTSource(G._train_kernel, signature, constexprs={(names.index(k),): v for k, v in constants.items()})
    kernel = triton.compile(src, target=GPUTarget("cuda", arch, 32), options=dict(num_warps=2, enable_fp_fusion=True))
    # the machine code, disassembled by the cuobjdump that Triton ships beside its ptxas
    with tempfile.TemporaryDirectory() as tmp:
        cubin = Path(tmp) / "kernel.cubin"
        cubin.write_bytes(kernel.asm["cubin"])
        cuobjdump = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"
        sass = subprocess.run([str(cuobjdump), "-sass", str(cubin)], capture_output=True, text=True, check=True).stdout
    # the updates are reductions whose result nobody waits for (RED; REDG on Hopper), not atomics that return
    # a value (ATOM). Triton 3.9 writes red.global in the PTX; 3.6 writes atom.global with an unused result,
    # which ptxas turns into the same RED
    assert re.search(r"\bREDG?\.E\.ADD\.F32", sass), "no atomic add reduction in the SASS"
    assert "ATOMG" not in sass and "ATOM." not in sass, "an atomic that returns a value: the kernel would wait on it"
    # the rows are read from L2 (where the atomic adds land), not from a possibly stale L1 line
    assert re.search(r"ld\.global\.cg(\.v\d)?\.[bf]32", kernel.asm["ptx"]), "row loads are not .cg"


@pytest.fixture
def planted_lines():
    return ["the cat sat on the mat", "the dog sat on the log", "a cat and a dog"] * 20


def test_device_argument(monkeypatch):
    import glob
    import importlib.util

    import torch

    monkeypatch.setattr(glob, "glob", lambda pattern: [])
    assert W._resolve_device("auto") == ("numba", "cpu")  # no GPU device node: torch is not even imported
    assert W._resolve_device(None) == ("numba", "cpu")
    assert W._resolve_device("cpu") == ("numba", "cpu")
    monkeypatch.setattr(glob, "glob", lambda pattern: ["/dev/nvidia0"] if "nvidia" in pattern else [])
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert W._resolve_device("auto") == ("triton", "cuda")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert W._resolve_device("cuda:1") == ("triton", "cuda:1")
    with pytest.raises(ValueError, match=r"device='cuda:2': torch sees 2 GPU\(s\), cuda:0 .. cuda:1"):
        W._resolve_device("cuda:2")
    with pytest.raises(ValueError, match="device='cuda:x'"):
        W._resolve_device("cuda:x")
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "triton" else real_find_spec(name))
    assert W._resolve_device("auto") == ("numba", "cpu")  # no Triton: the CPU
    with pytest.raises(ValueError, match="needs Triton.*pip install triton"):
        W._resolve_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="'cuda' but torch sees no GPU"):
        W.train_word2vec(iter(["a b"]), device="cuda", min_count=1)
    with pytest.raises(ValueError, match="device must be .* got 'tpu'"):
        W.train_word2vec(iter(["a b"]), device="tpu", min_count=1)


def test_launch_order_is_longest_first_within_each_launch():
    import numpy as np

    from w2vformer.training._w2v_triton import launch_order

    offsets = np.cumsum([0, 2, 5, 1, 5, 3, 9, 1]).astype(np.int64)  # lengths 2 5 1 5 3 9 1
    assert launch_order(offsets, [(0, 4), (4, 7)]).tolist() == [1, 3, 0, 2, 5, 4, 6]


def test_auto_device_falls_back_to_the_cpu_when_the_gpu_run_fails(monkeypatch, caplog, planted_lines):
    from w2vformer.training import _w2v_triton as G

    def fail(*args, **kwargs):
        raise RuntimeError("no kernel image is available for execution on the device")

    monkeypatch.setattr(W, "_resolve_device", lambda device: ("triton", "cuda"))
    monkeypatch.setattr(G, "train_arrays_on_device", fail)
    with caplog.at_level("WARNING", logger=W.__name__):
        model, _ = W.train_word2vec(iter(planted_lines), min_count=1, epochs=2, vector_size=8, progress=False)
    assert "word2vec on cuda failed (RuntimeError: no kernel image" in caplog.text
    assert model.training_stats["device"] == "cpu"
    assert model.out_embed.weight.abs().max() > 0  # trained on the CPU
    with pytest.raises(RuntimeError, match="no kernel image"):  # asked for the GPU explicitly: no fallback
        W.train_word2vec(iter(planted_lines), min_count=1, epochs=1, vector_size=8, progress=False, device="cuda")


def test_concurrent_programs_bound_the_stale_updates_on_the_hottest_row():
    import numpy as np

    from w2vformer.training import _w2v_kernels as K
    from w2vformer.training._w2v_triton import concurrent_programs

    counts = np.concatenate([[0, 0], (1e6 / np.arange(1, 3000) ** 1.1).astype(np.int64) + 5])  # Zipf, 2 specials
    noise = np.where(counts > 0, counts ** 0.75, 0.0)
    keep = K.keep_probabilities(counts, 1e-3)
    share = counts * keep / (counts * keep).sum()
    hottest = (share + 5 * noise / noise.sum()).max()  # skip-gram, negative 5: the noise word "the" dominates
    for alpha in (0.025, 0.05, 0.1, 0.4):
        p = concurrent_programs(alpha, counts, keep, noise, "skipgram", 5, 5, False, limit=1 << 20)
        assert p & (p - 1) == 0 and alpha * p * hottest <= 1 < alpha * 2 * p * hottest, (alpha, p)
    p05 = concurrent_programs(0.05, counts, keep, noise, "cbow", 5, 5, False)
    assert concurrent_programs(0.1, counts, keep, noise, "cbow", 5, 5, False) == p05 // 2  # higher alpha: fewer
    no_subsampling = K.keep_probabilities(counts, 0.0)
    assert concurrent_programs(0.05, counts, no_subsampling, noise, "cbow", 5, 5, False) < p05  # hotter rows
    # hierarchical softmax: the root is on every path, one update per step: alpha * P <= 1
    assert concurrent_programs(0.05, counts, keep, None, "skipgram", 5, 5, True) == 16
    assert concurrent_programs(1e-6, counts, keep, noise, "skipgram", 5, 5, False) == 1024  # GPU_PROGRAMS
    assert concurrent_programs(0.05, counts, keep, noise, "skipgram", 5, 5, False, limit=8) == 8


@pytest.fixture(scope="module")
def sim():
    """bench/sim_gpu_hogwild.py, loaded once (its numba functions compile on first use, uncached)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("sim_gpu_hogwild", HERE.parent / "bench" / "sim_gpu_hogwild.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("objective,alpha", [("cbow", 0.2), ("skipgram", 0.05)])
def test_the_chosen_concurrency_trains_where_32_times_more_diverges(sim, objective, alpha):
    """bench/sim_gpu_hogwild.py's model of P concurrent programs (each step's update lands P - 1 steps later,
    summed) on the shipped demo corpus, 3 epochs: ``concurrent_programs``' P trains, 32 x P diverges. The
    bound has room (8 x P still trained here), and the test sees the trap it guards against."""
    import numpy as np

    from w2vformer.training import _w2v_kernels as K
    from w2vformer.training import corpus as corpus_lib
    from w2vformer.training._w2v_triton import concurrent_programs

    demo = HERE.parent / "w2vformer" / "data" / "demo-en.txt.gz"
    corpus, words, counts = corpus_lib.count_words(str(demo))
    vocab, corpus = corpus_lib.apply_min_count(corpus, words, counts, 5)
    counts = corpus_lib.token_counts(corpus, len(vocab), exclude=(0, 1))
    keep = K.keep_probabilities(counts, 1e-3)
    noise = np.where(counts > 0, counts**0.75, 0.0)
    alias_prob, alias_idx = K.build_alias_table(noise)
    programs = concurrent_programs(alpha, counts, keep, noise, objective, 5, 5, False)
    largest = {}
    for p in (programs, 32 * programs):
        syn0 = W.init_vectors(len(vocab), 32, 1)
        syn1 = np.zeros_like(syn0)
        sim.simulate(corpus.ids, corpus.offsets, np.arange(corpus.num_sentences), syn0, syn1, keep, alias_prob,
                     alias_idx, objective == "skipgram", 5, 5, alpha, 1e-4, 3, p, 1, False)  # fmt: skip
        largest[p] = float(np.nan_to_num(np.abs(syn0), nan=np.inf).max())
    assert largest[programs] < 20, largest
    assert largest[32 * programs] > 1e3, largest


def test_cli_device_option(tmp_path, capsys, planted_lines):
    from w2vformer.cli import main as cli_main

    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(planted_lines) + "\n")
    out = tmp_path / "o"
    assert cli_main(["word2vec", "train", str(corpus), "--output", str(out), "--device", "tpu", "--no-progress"]) == 2
    assert "device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got 'tpu'" in capsys.readouterr().err
    assert not out.exists()
    args = ["word2vec", "train", str(corpus), "--output", str(out), "--device", "cpu", "--min-count", "1",
            "--epochs", "1", "--vector-size", "8", "--no-progress"]  # fmt: skip
    assert cli_main(args) == 0
    assert "words/s on cpu)" in capsys.readouterr().out


def test_split_offsets_cuts_long_sentences_only():
    import numpy as np

    from w2vformer.training._w2v_triton import split_offsets

    offsets = np.array([0, 3, 3, 13, 14], dtype=np.int64)
    assert split_offsets(offsets, 20).tolist() == [0, 3, 3, 13, 14]
    assert split_offsets(offsets, 4).tolist() == [0, 3, 3, 7, 11, 13, 14]
    assert split_offsets(offsets, 1).tolist() == [0, 1, 2, 3, 3, *range(4, 15)]
