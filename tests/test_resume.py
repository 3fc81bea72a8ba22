"""Resume: a run killed after a checkpoint and resumed ends with exactly the weights of an uninterrupted run
with the same seed.

Exact (``torch.equal``), not approximate: on CPU every kernel used here is deterministic, and Trainer's
checkpoint restores the weights, optimizer, scheduler, the Python/numpy/torch RNG states (dropout, MLM
masking) and the data position. (On a GPU, non-deterministic kernels such as atomics in embedding backward
would make this "within 1e-6"; not tested here, there is no GPU.)

- decoder (train_transformer "clm") and Word2Vec (Trainer path): a subprocess is sent SIGKILL at a random
  moment after its first complete checkpoint (possibly while it writes the next one), then resumed here;
- encoder ("mlm") and encoder-decoder ("seq2seq"): in-process, a finished run loses its last checkpoint and
  its outputs and resumes from the one before (the same state a kill leaves, without another process).
Word2Vec's in-process resume is also tested in tests/test_word2vec_trainer.py.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import _helpers_dist as helpers
from w2vformer.conversion.vectors import build_wordlevel_tokenizer
from w2vformer.tokenization import train_tokenizer
from w2vformer.training.lm import last_complete_checkpoint, train_transformer

HELPER = Path(helpers.__file__)
SENTENCES = ["the cat sat on the mat", "the dog sat on the log", "a cat and a dog ran home",
             "the bird sang in the tree", "a small bird sat on a branch", "the old dog slept"] * 8


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("corpus")
    (d / "text.txt").write_text("\n".join(SENTENCES) + "\n")
    (d / "pairs.tsv").write_text("\n".join(f"{s}\t{' '.join(reversed(s.split()))}" for s in SENTENCES) + "\n")
    for preset in ("decoder", "encoder", "seq2seq"):
        tok = train_tokenizer(d / "text.txt", preset=preset, vocab_size=300 if preset != "encoder" else 60,
                              show_progress=False)
        tok.save_pretrained(d / f"tok-{preset}")
    words = sorted({w for s in SENTENCES for w in s.split()})
    build_wordlevel_tokenizer(["[PAD]", "[UNK]"] + words).save_pretrained(d / "tok-word2vec")
    return d


def _state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _assert_same_weights(a, b, what):
    assert a.keys() == b.keys()
    differ = [k for k in a if not torch.equal(a[k], b[k])]
    assert not differ, f"{what}: resumed weights differ from the uninterrupted run in {differ}"


def _kill_after_first_checkpoint(command, checkpoints: Path, seed: int):
    """Start ``command``, wait for a complete checkpoint, then SIGKILL it at a random moment of the next steps."""
    # the same number of threads as this process, which runs the reference: a different count changes the
    # order of float sums, and AdamW turns that rounding noise (in k_proj.bias, whose true gradient is 0) into
    # real steps
    env = dict(os.environ, OMP_NUM_THREADS=str(torch.get_num_threads()))
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + 240
    while last_complete_checkpoint(checkpoints) is None:
        assert proc.poll() is None, f"the run ended before its first checkpoint: {proc.stderr.read().decode()[-2000:]}"
        assert time.monotonic() < deadline, "no checkpoint within 240 s"
        time.sleep(0.02)
    time.sleep(float(np.random.default_rng(seed).uniform(0.05, 0.35)))  # steps take >= 0.1 s (--slow)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it was killed"


def test_decoder_killed_with_sigkill_resumes_to_the_same_weights(corpus, tmp_path):
    tokenizer = corpus / "tok-decoder"
    reference = _state(helpers.run_clm(tmp_path / "reference", corpus / "text.txt", tokenizer).model)

    out = tmp_path / "killed"
    _kill_after_first_checkpoint([sys.executable, str(HELPER), "clm", str(out), str(corpus / "text.txt"),
                                  str(tokenizer), "--slow"], out / "checkpoints", seed=1)
    assert not (out / "model.safetensors").exists()
    resumed = helpers.run_clm(out, corpus / "text.txt", tokenizer, resume=True)
    assert resumed.metrics["steps"] == helpers.CLM_STEPS
    _assert_same_weights(reference, _state(resumed.model), "decoder")


def test_word2vec_trainer_killed_with_sigkill_resumes_to_the_same_weights(corpus, tmp_path):
    text, tokenizer = corpus / "text.txt", corpus / "tok-word2vec"
    reference = helpers.word2vec_trainer(tmp_path / "reference", text, tokenizer)
    reference.train()

    out = tmp_path / "killed"
    _kill_after_first_checkpoint([sys.executable, str(HELPER), "word2vec", str(out), str(text), str(tokenizer),
                                  "--slow"], out, seed=2)
    checkpoint = last_complete_checkpoint(out)
    resumed = helpers.word2vec_trainer(out, text, tokenizer)
    with torch.no_grad():  # a different start: only the checkpoint can give the uninterrupted result
        resumed.model.in_embed.weight.normal_(generator=torch.Generator().manual_seed(5))
    resumed.train(resume_from_checkpoint=str(checkpoint))
    assert resumed.state.global_step == helpers.W2V_STEPS
    _assert_same_weights(_state(reference.model), _state(resumed.model), "word2vec")


@pytest.mark.parametrize("task,file,config", [
    ("mlm", "text.txt", dict(helpers.CLM_CONFIG)),
    ("seq2seq", "pairs.tsv", dict(hidden_size=16, num_attention_heads=2, intermediate_size=24, encoder_layers=1,
                                  decoder_layers=1, dropout=0.1)),
])
def test_encoder_and_seq2seq_resume_from_an_earlier_checkpoint_to_the_same_weights(corpus, tmp_path, task, file,
                                                                                   config):
    preset = "encoder" if task == "mlm" else "seq2seq"
    kwargs = dict(output_dir=tmp_path / "run", tokenizer=corpus / f"tok-{preset}", model_config=config, max_steps=6,
                  **helpers.RUN)
    finished = train_transformer(task, [corpus / file], **kwargs)
    reference = _state(finished.model)
    checkpoints = tmp_path / "run" / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["checkpoint-3", "checkpoint-6"]
    # the state a kill during step 4-6 leaves: checkpoint-3, a partial checkpoint-6, no outputs
    for name in ("model.safetensors", "config.json", "training_log.json"):
        (tmp_path / "run" / name).unlink()
    (checkpoints / "checkpoint-6" / "trainer_state.json").unlink()
    assert last_complete_checkpoint(checkpoints) == checkpoints / "checkpoint-3"
    resumed = train_transformer(task, [corpus / file], resume=True, **kwargs)
    assert resumed.metrics["steps"] == 6
    assert [h["step"] for h in resumed.log_history if "loss" in h][-3:] == [4, 5, 6]
    _assert_same_weights(reference, _state(resumed.model), task)
    shutil.rmtree(tmp_path / "run")
