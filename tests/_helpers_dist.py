"""Scripts the reliability tests run in other processes (a run to SIGKILL, torchrun workers).

    python tests/_helpers_dist.py clm OUT CORPUS TOKENIZER [--slow]      # train_transformer("clm")
    python tests/_helpers_dist.py word2vec OUT CORPUS TOKENIZER [--slow] # Word2Vec through Trainer
    torchrun --nproc_per_node 2 tests/_helpers_dist.py ddp OUT CORPUS    # every family, DDP (gloo)

The same functions build the runs in the test process, so a killed-and-resumed run and the uninterrupted
one are set up identically. ``--slow`` makes each batch take 0.1 s longer (numerics unchanged) so that a
kill lands in the middle of the run.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

# tiny, odd-sized models; dropout on, so that resuming must also restore the RNG states
CLM_CONFIG = dict(hidden_size=16, num_attention_heads=2, intermediate_size=24, num_hidden_layers=2, dropout=0.1)
RUN = dict(block_size=8, batch_size=4, logging_steps=1, save_steps=3, seed=0, progress=False, eval_fraction=0.0)
CLM_STEPS = 9
W2V_STEPS = 9


def _slow(collate):
    def slow_collate(examples):
        time.sleep(0.1)
        return collate(examples)

    return slow_collate


def run_clm(out, corpus, tokenizer, resume=False, slow=False, max_steps=CLM_STEPS):
    """train_transformer("clm") on ``corpus``; returns its TrainResult."""
    from w2vformer.training import lm

    if slow:
        original = lm._collator
        lm._collator = lambda *args: _slow(original(*args))
    return lm.train_transformer("clm", [corpus], output_dir=out, tokenizer=tokenizer, model_config=CLM_CONFIG,
                                max_steps=max_steps, resume=resume, **RUN)


def word2vec_trainer(out, corpus, tokenizer, slow=False, max_steps=W2V_STEPS, save_steps=3, **args):
    """A Trainer for Word2Vec (skip-gram, negative sampling) over ``corpus``, checkpointing every 3 steps."""
    from transformers import AutoTokenizer, Trainer

    from w2vformer import Word2VecCollator, Word2VecConfig, Word2VecDataset, Word2VecModel, count_tokens
    from w2vformer.training.word2vec_data import word2vec_optimizer, word2vec_training_arguments

    tokenizer = AutoTokenizer.from_pretrained(tokenizer)
    counts = count_tokens(tokenizer, corpus, show_progress=False)
    config = Word2VecConfig(vocab_size=len(tokenizer), vector_size=12, window=2, min_count=1, sample=0.0,
                            negative=3)
    model = Word2VecModel(config, token_counts=counts)
    collator = Word2VecCollator(config, counts)
    per_device = args.pop("per_device", 8)
    global_batch = per_device * args.pop("processes", 1) * args.get("gradient_accumulation_steps", 1)
    training_args = word2vec_training_arguments(out, max_steps=max_steps, batch_size=per_device, save_steps=save_steps,
                                                logging_steps=1, disable_tqdm=True, **args)
    # epochs=0: the stream never runs out before max_steps, so a resumed run sees the same batches
    dataset = Word2VecDataset(corpus, tokenizer, config, counts, epochs=0)
    return Trainer(model=model, args=training_args, train_dataset=dataset,
                   data_collator=_slow(collator) if slow else collator,
                   optimizers=word2vec_optimizer(model, max_steps=max_steps, batch_size=global_batch))


def ddp(out, corpus):
    """Each family and Word2Vec train 4 steps through Trainer; rank 0 writes the logged losses.

    The global batch is 8 examples in both set-ups: 2 processes x 4 (DDP, gloo), or 1 process x 4 x 2
    gradient-accumulation steps. Each 4-example micro-batch is then collated alone in both, so the MLM masks
    and Word2Vec negatives (seeded by the batch's content) are the same, and so are the losses.
    """
    import torch.distributed as dist

    from w2vformer.training import lm

    out, corpus = Path(out), Path(corpus)
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    accumulate = 2 // world
    losses = {}
    common = dict(block_size=8, logging_steps=1, save_steps=1000, seed=0, progress=False, eval_fraction=0.0,
                  max_steps=4, learning_rate=1e-2, warmup_ratio=0.0, batch_size=4,
                  gradient_accumulation_steps=accumulate)
    for task, config in DDP_TASKS.items():
        result = lm.train_transformer(task, [corpus / DDP_FILES[task]], output_dir=out / f"{task}-{world}",
                                      tokenizer=corpus / "tokenizer", model_config=config, **common)
        losses[task] = [h["loss"] for h in result.log_history if "loss" in h]
    trainer = word2vec_trainer(out / f"word2vec-{world}", corpus / DDP_FILES["clm"], corpus / "tokenizer",
                               max_steps=4, processes=world, per_device=4, save_steps=1000,
                               gradient_accumulation_steps=accumulate)
    assert trainer.args.world_size == world, f"Trainer runs {trainer.args.world_size} process(es), not {world}"
    trainer.train()
    losses["word2vec"] = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    if rank == 0:
        (out / f"losses-{world}.json").write_text(json.dumps(losses))
    if dist.is_initialized():
        dist.barrier()


DDP_CONFIG = dict(hidden_size=16, num_attention_heads=2, intermediate_size=24, dropout=0.0)
DDP_TASKS = {
    "clm": dict(DDP_CONFIG, num_hidden_layers=2),
    "mlm": dict(DDP_CONFIG, num_hidden_layers=2),
    "seq2seq": dict(DDP_CONFIG, encoder_layers=1, decoder_layers=1),
}
DDP_FILES = {"clm": "text.txt", "mlm": "text.txt", "seq2seq": "pairs.tsv"}


def main(argv):
    command, out, corpus = argv[:3]
    slow = "--slow" in argv
    if command == "clm":
        run_clm(out, corpus, argv[3], slow=slow)
    elif command == "word2vec":
        word2vec_trainer(out, corpus, argv[3], slow=slow).train()
    elif command == "ddp":
        ddp(out, corpus)
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
    if "RANK" in os.environ:
        # A launched worker leaves without the interpreter's teardown once its work and files are complete: on
        # this torch, gloo's teardown at exit now and then aborts the process ("terminate called without an
        # active exception", seen under accelerate launch) or, after destroy_process_group, hangs (seen under
        # torchrun, 1 run in 6), and either would fail the launch although the training is done.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
