"""Several processes on existing engines: torchrun + Trainer (DDP, gloo on CPU) trains every family and
Word2Vec with the same loss trajectory as one process with the same global batch.

Set-up (tests/_helpers_dist.py ``ddp``): global batch 8 = 2 processes x 4, or 1 process x 4 x 2 gradient-
accumulation steps, so every 4-example micro-batch is collated alone in both runs (MLM masks and Word2Vec
negatives are seeded by the micro-batch's content). Tolerance: 1e-5 on each logged loss and 1e-6 on the final
weights (DDP sums gradients in another order; measured here: identical to the last bit).

Not tested here, documented in docs/RELIABILITY.md: ``accelerate launch`` (the same Trainer code; the
launcher sets the same environment variables as torchrun) and FSDP, which needs a GPU with this torch and
accelerate (on CPU, FSDP v1 raises "no available devices" and FSDP v2 silently falls back to DDP). What FSDP
relies on, and a CPU can check, is tested below: ``_no_split_modules`` and tied weights. Word2Vec sharding by
rank (``Word2VecDataset(shard_by_process=True)``) is tested in tests/test_word2vec_trainer.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import _helpers_dist as helpers
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


SIZES = dict(vocab_size=99, hidden_size=32, num_attention_heads=4, intermediate_size=37)


@pytest.mark.parametrize("model", [
    lambda: EncoderForMaskedLM(EncoderConfig(**SIZES, num_hidden_layers=2)),
    lambda: DecoderForCausalLM(DecoderConfig(**SIZES, num_hidden_layers=2)),
    lambda: Seq2SeqForConditionalGeneration(Seq2SeqConfig(**SIZES, encoder_layers=2, decoder_layers=2)),
], ids=["encoder", "decoder", "seq2seq"])
def test_fsdp_wrapping_units_and_tied_weights(model, tmp_path):
    """What FSDP (and device_map) rely on: every class named in ``_no_split_modules`` exists in the model and
    wraps whole layers; tied weights are one tensor, stay one after a save/load round trip, and live outside
    the transformer layers, so wrapping only the layers (the configuration docs/RELIABILITY.md gives) keeps
    each tie inside the root FSDP unit."""
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
