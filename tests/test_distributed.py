"""Several processes on existing engines: torchrun + Trainer (DDP, gloo on CPU) trains every family and
Word2Vec with the same loss trajectory as one process with the same global batch; FSDP2 shards every
transformer family on CPU and trains it like one process.

DDP set-up (tests/_helpers_dist.py ``ddp``): global batch 8 = 2 processes x 4, or 1 process x 4 x 2 gradient-
accumulation steps, so every 4-example micro-batch is collated alone in both runs (MLM masks and Word2Vec
negatives are seeded by the micro-batch's content). Tolerance: 1e-5 on each logged loss and 1e-6 on the final
weights (DDP sums gradients in another order; measured here: identical to the last bit).

FSDP2 (tests/_helpers_fsdp.py): torch's ``fully_shard`` runs on CPU over gloo (``init_device_mesh("cpu", (2,))``).
Each family (pre-norm decoder with a tied LM head, encoder MLM with a tied head, seq2seq with encoder, decoder
and head tied to one embedding) is sharded and trained two ways on 2 processes, against the same global
batches (8 = 2 x 4, or 1 x 4 x 2 accumulated) in one process:

- ``loop``: one FSDP unit per ``_no_split_modules`` layer, then the root; AdamW. Measured: losses and every
  final weight identical to the last bit; asserted within 1e-6.
- ``trainer``: ``Trainer`` with ``fsdp=True, fsdp_config={"version": 2}``, i.e. accelerate's FSDP2 preparation
  (layers from ``_no_split_modules``, the tied embedding and head in one unit, the root), clipping and gathered
  ``save_model``. accelerate does not enable FSDP on CPU: in ``AcceleratorState.__init__``
  (accelerate/state.py:986-1016) the FSDP branch is reached only for ``MULTI_GPU``/``MULTI_NPU``/... devices, so
  with ``use_cpu=True`` the state stays ``MULTI_CPU``, ``Trainer.is_fsdp_enabled`` is False and the model is
  wrapped in DDP; FSDP v1 fails earlier ("There are currently no available devices found",
  accelerate/utils/dataclasses.py:2015, from ``sync_module_states``). The helper therefore flips that one
  decision after accelerate set up the CPU process group (a test harness, not a user configuration).
  Tolerance: 1e-5 on losses and weights (measured: 4.8e-7 and 1.3e-6; the norm for gradient clipping is
  summed over shards in another order); ``k_proj.bias`` is left out as in the DDP test (measured 2.5e-5).

The DDP runs are also started with ``accelerate launch --multi_gpu --num_processes 2`` (torch.distributed.run
underneath): the same losses as one process, same tolerance. Word2Vec sharding by rank
(``Word2VecDataset(shard_by_process=True)``) is tested in tests/test_word2vec_trainer.py.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import _helpers_dist as helpers
import _helpers_fsdp
from w2vformer import (
    DecoderConfig,
    DecoderForCausalLM,
    EncoderConfig,
    EncoderForMaskedLM,
    Seq2SeqConfig,
    Seq2SeqForConditionalGeneration,
)
from w2vformer.tokenization import train_tokenizer

SENTENCES = ["the cat sat on the mat", "the dog sat on the log", "a cat and a dog ran home",
             "the bird sang in the tree", "a small bird sat on a branch", "the old dog slept"] * 8


def test_torchrun_two_processes_match_one_process(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "text.txt").write_text("\n".join(SENTENCES) + "\n")
    (corpus / "pairs.tsv").write_text("\n".join(f"{s}\t{' '.join(reversed(s.split()))}" for s in SENTENCES) + "\n")
    train_tokenizer(corpus / "text.txt", preset="seq2seq", model="wordlevel", min_count=1,
                    show_progress=False).save_pretrained(corpus / "tokenizer")
    out = tmp_path / "out"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          str(Path(helpers.__file__)), "ddp", str(out), str(corpus)],
                         env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    helpers.ddp(out, corpus)  # the same runs in this (single) process

    two, one = (json.loads((out / f"losses-{n}.json").read_text()) for n in (2, 1))
    assert set(two) == {"clm", "mlm", "seq2seq", "word2vec"}
    for name in two:
        assert len(two[name]) == len(one[name]) == 4, name
        assert max(abs(a - b) for a, b in zip(two[name], one[name])) < 1e-5, f"{name}: {two[name]} vs {one[name]}"
        assert two[name][0] != two[name][-1], f"{name}: the loss never changed"
    for task in helpers.DDP_TASKS:
        a, b = (load_file(out / f"{task}-{n}" / "model.safetensors") for n in (2, 1))
        assert a.keys() == b.keys()
        for key in a:
            if key.endswith("k_proj.bias"):
                # softmax is unchanged by a constant added to every score of a row, and q.b is such a constant:
                # this bias's true gradient is 0, so it only receives rounding noise (which differs with the
                # order of the all-reduce sums), and AdamW normalises that noise into full-size steps. It has
                # no effect on any output; every other weight must match.
                continue
            torch.testing.assert_close(a[key], b[key], atol=1e-6, rtol=0, msg=f"{task} {key}")

    # the same two processes started by `accelerate launch` (it runs torch.distributed.run underneath; on a
    # CPU-only machine it still needs --multi_gpu to start several processes, and use_cpu=True picks gloo)
    accelerate_out = tmp_path / "accelerate"
    with socket.socket() as probe:  # a free port: accelerate's default (29500) may be taken on a shared machine
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    try:
        run = subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                              "--main_process_port", str(port),
                              str(Path(helpers.__file__)), "ddp", str(accelerate_out), str(corpus)],
                             env=env, capture_output=True, text=True, timeout=240)  # fmt: skip
    except subprocess.TimeoutExpired as timeout:
        raise AssertionError(f"accelerate launch hung:\n{timeout.stdout}\n{timeout.stderr}") from None
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    launched = json.loads((accelerate_out / "losses-2.json").read_text())
    assert launched.keys() == one.keys()
    for name in one:
        assert max(abs(a - b) for a, b in zip(launched[name], one[name])) < 1e-5, f"accelerate {name}"


SIZES = dict(vocab_size=99, hidden_size=32, num_attention_heads=4, intermediate_size=37)


@pytest.mark.parametrize("model", [
    lambda: EncoderForMaskedLM(EncoderConfig(**SIZES, num_hidden_layers=2)),
    lambda: DecoderForCausalLM(DecoderConfig(**SIZES, num_hidden_layers=2)),
    lambda: Seq2SeqForConditionalGeneration(Seq2SeqConfig(**SIZES, encoder_layers=2, decoder_layers=2)),
], ids=["encoder", "decoder", "seq2seq"])
def test_fsdp_wrapping_units_and_tied_weights(model, tmp_path):
    """What FSDP (and device_map) rely on: every class named in ``_no_split_modules`` exists in the model and
    wraps whole layers; tied weights are one tensor, stay one after a save/load round trip, and live outside
    the transformer layers, so wrapping the layers keeps each tie inside one FSDP unit (the root with
    ``fully_shard`` per layer; accelerate's embedding unit with Trainer: see the FSDP2 test below)."""
    model = model()
    classes = {type(m).__name__ for m in model.modules()}
    assert model._no_split_modules and set(model._no_split_modules) <= classes, model._no_split_modules
    layers = [n for n, m in model.named_modules() if type(m).__name__.endswith("Layer")]
    assert layers and all(n.split(".")[-1].isdigit() for n in layers)

    params = dict(model.named_parameters(remove_duplicate=False))
    ties = getattr(model, "_tied_weights_keys", None) or {}
    assert ties, "the LM head should be tied to the embeddings"
    for target, source in ties.items():
        assert params[target] is params[source], f"{target} is not {source}"
        assert not any(name.startswith(layer + ".") for layer in layers for name in (target, source))
    model.save_pretrained(tmp_path)
    reloaded = type(model).from_pretrained(tmp_path)
    params = dict(reloaded.named_parameters(remove_duplicate=False))
    assert all(params[t] is params[s] for t, s in ties.items())


def test_fsdp2_shards_every_family_like_one_process(tmp_path):
    """torchrun, 2 processes, gloo: every family sharded with FSDP2 (own loop and Trainer) trains with the
    losses and final weights of one process, every parameter sharded, each tie still one parameter."""
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          str(Path(_helpers_fsdp.__file__)), str(tmp_path)],
                         env=dict(os.environ, OMP_NUM_THREADS="1"), capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the workers' thread count: the same kernels, so the same rounding
    try:
        _helpers_fsdp.fsdp2(tmp_path)
    finally:
        torch.set_num_threads(threads)
    two, one = (json.loads((tmp_path / f"fsdp2-{n}.json").read_text()) for n in (2, 1))

    for family in _helpers_fsdp.FAMILIES:
        model = _helpers_fsdp.build(family)
        layers = sorted([name] for name, m in model.named_modules() if type(m).__name__ in model._no_split_modules)
        modules = {m: name for name, m in model.named_modules()}
        embedding, head = modules[model.get_input_embeddings()], modules[model.get_output_embeddings()]
        ties = set(model.all_tied_weights_keys)
        assert layers and ties, family

        loop, trainer = two["loop"][family], two["trainer"][family]
        for state in (loop["before"], loop["after"], trainer["after"]):
            assert state["sharded"], f"{family}: a parameter is not a DTensor sharded on dim 0"
            assert set(state["tied"]) == ties and all(state["tied"].values()), f"{family}: tie broken {state['tied']}"
        assert loop["before"]["units"] == loop["after"]["units"] == sorted(layers + [[""]]), loop["before"]["units"]
        units = trainer["after"]["units"]
        assert all(layer in units for layer in layers) and [""] in units, units
        assert any({embedding, head} <= set(unit) for unit in units), f"{family}: {embedding} and {head} split: {units}"
        assert all(one[way][family]["after"]["units"] == [] for way in ("loop", "trainer"))

        for way, atol in (("loop", 1e-6), ("trainer", 1e-5)):
            a, b = two[way][family]["losses"], one[way][family]["losses"]
            assert len(a) == len(b) == _helpers_fsdp.STEPS, f"{way} {family}: {a} vs {b}"
            assert max(abs(x - y) for x, y in zip(a, b)) < atol, f"{way} {family}: {a} vs {b}"
            assert len(set(a)) > 1, f"{way} {family}: the loss never changed"

        # loop: the gathered full weights of every parameter name, tied names included
        sharded, single = (load_file(tmp_path / f"loop-{family}-{n}.safetensors") for n in (2, 1))
        assert sharded.keys() == single.keys() == dict(model.named_parameters(remove_duplicate=False)).keys()
        for target in ties:
            torch.testing.assert_close(sharded[target], sharded[model.all_tied_weights_keys[target]], atol=0, rtol=0)
        initial = dict(model.named_parameters(remove_duplicate=False))
        assert any(not torch.equal(sharded[k], initial[k]) for k in sharded), f"{family}: training changed nothing"
        for key in sharded:
            torch.testing.assert_close(sharded[key], single[key], atol=1e-6, rtol=0, msg=f"loop {family} {key}")

        # Trainer: the gathered checkpoint save_model wrote reloads tied, with the single process's weights
        sharded, single = (type(model).from_pretrained(tmp_path / f"trainer-{family}-{n}") for n in (2, 1))
        params = dict(sharded.named_parameters(remove_duplicate=False))
        assert all(params[t] is params[s] for t, s in sharded.all_tied_weights_keys.items()), family
        sharded, single = sharded.state_dict(), single.state_dict()
        assert sharded.keys() == single.keys()
        for key in sharded:
            if key.endswith("k_proj.bias"):
                continue  # zero true gradient, AdamW-amplified rounding noise: see the DDP test above
            torch.testing.assert_close(sharded[key], single[key], atol=1e-5, rtol=0, msg=f"trainer {family} {key}")
