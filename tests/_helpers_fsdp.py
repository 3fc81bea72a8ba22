"""FSDP2 workers for tests/test_distributed.py: every transformer family sharded over 2 CPU processes (gloo).

    torchrun --nproc_per_node 2 tests/_helpers_fsdp.py OUT   # sharded: own loop + Trainer, rank 0 writes OUT
    python tests/_helpers_fsdp.py OUT                        # the same global batches in one process, unsharded

Two ways to shard, both over a 2-process CPU mesh:

- ``loop``: torch's ``fully_shard`` as the documented configuration wraps: one FSDP unit per instance of a
  class named in the model's ``_no_split_modules``, then the root (which keeps the embeddings and the tied
  LM head), and a plain training loop (AdamW).
- ``trainer``: ``Trainer(args=TrainingArguments(fsdp=True, fsdp_config={"version": 2}))``, i.e. accelerate's
  own FSDP2 preparation (``accelerate.utils.fsdp_utils.fsdp2_prepare_model``: a unit per ``_no_split_modules``
  layer, the input embedding, final norm and tied output layer in one more unit, then the root), its
  optimizer re-mapping, gradient clipping over the shards and its gathered ``save_model``. accelerate only
  enables FSDP for accelerator devices (``AcceleratorState.__init__``, accelerate/state.py:986-1016: the FSDP
  branch sits under ``distributed_type in [MULTI_GPU, MULTI_NPU, ...]``, which leaves out ``MULTI_CPU``), so
  on CPU a ``fsdp`` Trainer silently trains with DDP. ``_force_fsdp_state`` flips that one decision after
  accelerate has set up the CPU process group; everything after it is the code a GPU run executes. This is a
  test harness, not a user configuration.

Every process builds the same model (seed 0) and, per step, takes its half of a global batch of 8 examples;
the single-process run takes all 8 (loop) or 4 + 4 with 2 gradient-accumulation steps (Trainer). Labels are
never padded and every MLM row scores the same number of positions, so a mean over each half averages to
the mean over the whole batch.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch

STEPS, GLOBAL_BATCH, SEQ, TARGET = 4, 8, 7, 5
SIZES = dict(vocab_size=99, hidden_size=32, num_attention_heads=4, intermediate_size=37, dropout=0.0)
FAMILIES = ("decoder", "encoder", "seq2seq")
MASK_ID, MASKED_PER_ROW = 4, 2


def build(family):
    """The tiny model of ``family``, identical in every process (seed 0). Pre-norm decoder: accelerate also
    puts its final LayerNorm in the embedding/LM-head unit."""
    from w2vformer import (
        DecoderConfig,
        DecoderForCausalLM,
        EncoderConfig,
        EncoderForMaskedLM,
        Seq2SeqConfig,
        Seq2SeqForConditionalGeneration,
    )

    torch.manual_seed(0)
    if family == "decoder":
        return DecoderForCausalLM(DecoderConfig(**SIZES, num_hidden_layers=2, norm_position="pre"))
    if family == "encoder":
        return EncoderForMaskedLM(EncoderConfig(**SIZES, num_hidden_layers=2))
    model = Seq2SeqForConditionalGeneration(Seq2SeqConfig(**SIZES, encoder_layers=2, decoder_layers=1))
    # One embedding module for the three uses (Seq2SeqModel.__init__ when tied): with separate encoder and
    # decoder embedding modules holding the shared parameter, as in stock BART, accelerate's FSDP2 preparation
    # puts `shared` and `lm_head` in one unit but not those two modules, and the first forward raises
    # "Parameter 'model.shared.weight' is shared with a parameter already managed by another FSDP group".
    assert model.model.encoder.embed_tokens is model.model.decoder.embed_tokens is model.model.shared
    return model


def examples(family):
    """``STEPS * GLOBAL_BATCH`` training examples (dicts of 1-D tensors), the same in every process."""
    g = torch.Generator().manual_seed(1)
    rows = []
    for _ in range(STEPS * GLOBAL_BATCH):
        ids = torch.randint(5, SIZES["vocab_size"], (SEQ,), generator=g)
        if family == "decoder":
            rows.append({"input_ids": ids, "labels": ids.clone()})
        elif family == "encoder":
            labels = torch.full_like(ids, -100)
            where = torch.randperm(SEQ, generator=g)[:MASKED_PER_ROW]
            labels[where] = ids[where]
            rows.append({"input_ids": ids.masked_fill(labels != -100, MASK_ID), "labels": labels})
        else:
            labels = torch.randint(5, SIZES["vocab_size"], (TARGET,), generator=g)
            rows.append({"input_ids": ids, "labels": labels})
    return rows


def _stack(rows):
    return {key: torch.stack([row[key] for row in rows]) for key in rows[0]}


def shard_layers(model, mesh):
    """The documented wrapping: one FSDP2 unit per ``_no_split_modules`` layer, then the root."""
    from torch.distributed.fsdp import fully_shard

    for module in model.modules():
        if type(module).__name__ in model._no_split_modules:
            fully_shard(module, mesh=mesh)
    fully_shard(model, mesh=mesh)
    return model


def describe(model):
    """What the tests check about a (possibly sharded) model: its FSDP units, each given by the names of
    the modules in it, whether every parameter is a DTensor sharded on dim 0, and whether each tied pair is
    still one parameter object."""
    from torch.distributed.fsdp import FSDPModule
    from torch.distributed.tensor import DTensor, Shard

    groups = {}
    for name, module in model.named_modules():
        if isinstance(module, FSDPModule):
            groups.setdefault(id(module._get_fsdp_state()), []).append(name)
    params = dict(model.named_parameters(remove_duplicate=False))
    return {
        "units": sorted(groups.values()),
        "sharded": bool(groups) and all(isinstance(p, DTensor) and p.placements == (Shard(0),) for p in params.values()),
        "tied": {target: params[target] is params[source] for target, source in model.all_tied_weights_keys.items()},
    }


def full_weights(model):
    """Every parameter under every name, gathered to full tensors (a collective: all ranks call it)."""
    from torch.distributed.tensor import DTensor

    return {name: (p.full_tensor() if isinstance(p, DTensor) else p).detach().clone()
            for name, p in model.named_parameters(remove_duplicate=False)}


def train_loop(family, mesh=None):
    """AdamW over ``STEPS`` global batches; sharded with ``shard_layers`` when ``mesh`` is given.

    Returns ``(losses of the global batch, full weights after training, describe() before, after)``.
    """
    import torch.distributed as dist

    model = build(family)
    rank, world = (dist.get_rank(), dist.get_world_size()) if mesh is not None else (0, 1)
    if mesh is not None:
        shard_layers(model, mesh)
    before = describe(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.0)
    rows, half, losses = examples(family), GLOBAL_BATCH // 2, []
    for step in range(STEPS):
        # 2 processes x half a batch, or 1 process x 2 accumulated halves: the same sums in the same order
        loss = torch.zeros(())
        for part in range(rank, 2, world):
            first = step * GLOBAL_BATCH + part * half
            micro = model(**_stack(rows[first:first + half])).loss / (2 // world)
            micro.backward()  # FSDP2 reduce-scatters the gradients, averaged over the processes
            loss += micro.detach()
        optimizer.step()
        optimizer.zero_grad()
        if mesh is not None:
            dist.all_reduce(loss)
            loss /= world
        losses.append(loss.item())
    return losses, full_weights(model), before, describe(model)


def _force_fsdp_state(fsdp_plugin_args):
    """Make the already-initialised CPU AcceleratorState an FSDP one (see the module docstring)."""
    from accelerate import Accelerator, PartialState
    from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin

    state = Accelerator(cpu=True).state
    state.distributed_type = PartialState._shared_state["distributed_type"] = DistributedType.FSDP
    # a fresh plugin per model: set_auto_wrap_policy stores the first model's layer classes in it
    state.fsdp_plugin = FullyShardedDataParallelPlugin(**fsdp_plugin_args)


def trainer_run(family, out, world):
    """Train ``family`` with Trainer (constant LR 1e-2, AdamW, clipping at 1.0) and ``save_model`` to ``out``;
    with 2 processes through FSDP2. Returns ``(logged losses, describe() of the trained model)``."""
    from transformers import Trainer, TrainingArguments

    args = dict(use_cpu=True, per_device_train_batch_size=GLOBAL_BATCH // 2, gradient_accumulation_steps=2 // world,
                max_steps=STEPS, learning_rate=1e-2, lr_scheduler_type="constant", weight_decay=0.0,
                train_sampling_strategy="sequential", logging_steps=1, save_strategy="no", report_to=[],
                disable_tqdm=True, seed=0)
    if world > 1:
        args.update(fsdp=True, fsdp_config={"version": 2}, accelerator_config={"use_configured_state": True})
        fsdp_plugin_args = TrainingArguments(out, **args).fsdp_plugin_args
        _force_fsdp_state(fsdp_plugin_args)
    trainer = Trainer(model=build(family), args=TrainingArguments(out, **args), train_dataset=examples(family))
    assert trainer.is_fsdp_enabled == (world > 1), f"Trainer FSDP is {trainer.is_fsdp_enabled} with {world} processes"
    trainer.train()
    trainer.save_model(out)
    return [h["loss"] for h in trainer.state.log_history if "loss" in h], describe(trainer.model_wrapped)


def fsdp2(out):
    """Run every family both ways; rank 0 (or the single process) writes ``fsdp2-{world}.json``,
    ``loop-{family}-{world}.safetensors`` (full weights) and the Trainer's ``trainer-{family}-{world}/``."""
    from safetensors.torch import save_file

    out = Path(out)
    world = int(os.environ.get("WORLD_SIZE", 1))
    mesh = None
    if world > 1:
        from accelerate import PartialState
        from torch.distributed.device_mesh import init_device_mesh

        PartialState(cpu=True)  # the gloo process group, set up the way Trainer sets it up
        mesh = init_device_mesh("cpu", (world,))
    rank0 = int(os.environ.get("RANK", 0)) == 0
    report = {"loop": {}, "trainer": {}}
    for family in FAMILIES:
        losses, weights, before, after = train_loop(family, mesh)
        report["loop"][family] = {"losses": losses, "before": before, "after": after}
        if rank0:
            out.mkdir(parents=True, exist_ok=True)
            save_file(weights, out / f"loop-{family}-{world}.safetensors")
        losses, after = trainer_run(family, out / f"trainer-{family}-{world}", world)
        report["trainer"][family] = {"losses": losses, "after": after}
    if rank0:
        (out / f"fsdp2-{world}.json").write_text(json.dumps(report))
    if mesh is not None:
        import torch.distributed as dist

        dist.barrier()


if __name__ == "__main__":
    fsdp2(sys.argv[1])
