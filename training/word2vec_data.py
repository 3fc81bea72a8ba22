"""Word2Vec with the transformers ``Trainer``: a streaming dataset, a collator that draws negatives, and
word2vec's SGD schedule.

    counts = count_tokens(tokenizer, files)                        # (V,) token frequencies, streamed
    config = Word2VecConfig(vocab_size=len(tokenizer), objective="skipgram")
    model = Word2VecModel(config, token_counts=counts)
    dataset = Word2VecDataset(files, tokenizer, config, counts)      # config.epochs passes, streamed
    batch = 128                                                     # examples per optimizer step
    max_steps = dataset.estimate_examples() // batch
    trainer = Trainer(model=model, train_dataset=dataset, data_collator=Word2VecCollator(config, counts),
                      args=word2vec_training_arguments("runs/w2v", max_steps=max_steps, batch_size=batch),
                      optimizers=word2vec_optimizer(model, max_steps=max_steps, batch_size=batch))
    trainer.train()

This path is the readable, Trainer-compatible one (checkpoints, resume, logging, several processes); the
numba path (``w2vformer.train_word2vec``) is the fast one: through Trainer on 2 shared CPU cores we measured
~5k skip-gram pairs/s (batch 128, 7k-word vocabulary, dense gradients), gensim does ~300k words/s (~2M
pairs/s). Batching word2vec's
per-example updates applies the updates of repeated rows (frequent words) at once; keep batches small
(128 skip-gram pairs, 64 CBOW rows matched gensim's quality in our measurements; 512 diverged after 5
epochs), see /work/shared/data/README.md.

What the stream does, per line (a line is a sentence): tokenize (no special tokens added); drop special
tokens and tokens seen fewer than ``min_count`` times (word2vec drops out-of-vocabulary words, so windows
reach across them); subsample frequent tokens with word2vec's keep probability
``(sqrt(c / (sample * total)) + 1) * sample * total / c``; give each center word a window drawn uniformly
from 1..window (``shrink_windows``); emit skip-gram pairs (center -> each context word) or CBOW rows
(context words -> center).

Resume: the stream's randomness is a function of (seed, Trainer epoch, pass, shard) and the collator seeds
each batch's negatives from the batch's own ids, so a run resumed from a checkpoint (Trainer skips the
batches already seen) continues with exactly the batches and negatives the uninterrupted run would have
used. That holds as long as the stream is not exhausted before ``max_steps`` (otherwise Trainer starts a
new "epoch" of the iterator, whose randomness differs from the interrupted one) and the number of
DataLoader workers is unchanged.
"""

from __future__ import annotations

import itertools
import zlib

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info
from tqdm.auto import tqdm

from w2vformer.tokenization.corpus import iter_text_batches, iter_text_lines, resolve_source
from w2vformer.training._w2v_kernels import keep_probabilities

__all__ = [
    "Word2VecDataset",
    "Word2VecCollator",
    "count_tokens",
    "word2vec_optimizer",
    "word2vec_training_arguments",
    "MAX_SENTENCE_LENGTH",
]

MAX_SENTENCE_LENGTH = 10000  # gensim's LineSentence limit; longer lines are cut into pieces


def _backend(tokenizer):
    """The ``tokenizers.Tokenizer`` behind a transformers fast tokenizer (or the tokenizer itself)."""
    backend = getattr(tokenizer, "backend_tokenizer", tokenizer)
    if not hasattr(backend, "encode_batch"):
        raise TypeError(
            f"tokenizer must be a transformers fast tokenizer or a tokenizers.Tokenizer, got {type(tokenizer).__name__}"
        )
    return backend


def _vocab_size(tokenizer) -> int:
    if hasattr(tokenizer, "convert_ids_to_tokens"):
        return len(tokenizer)
    return tokenizer.get_vocab_size(with_added_tokens=True)


def _special_ids(tokenizer) -> list[int]:
    if hasattr(tokenizer, "all_special_ids"):
        return list(tokenizer.all_special_ids)
    return [i for i, t in tokenizer.get_added_tokens_decoder().items() if t.special]


def count_tokens(tokenizer, files, batch_lines: int = 1000, show_progress: bool = True) -> np.ndarray:
    """Count every token id over text files, streaming (memory independent of the corpus size).

    Args:
        tokenizer: a transformers fast tokenizer or a ``tokenizers.Tokenizer`` (no special tokens are added).
        files: a path or a list of paths (plain or gzip UTF-8 text; one sentence per line).
        batch_lines: lines per ``encode_batch`` call.
        show_progress: a tqdm bar over lines.

    Returns:
        `np.ndarray` of shape `(vocab_size,)` int64 (``vocab_size`` = the tokenizer's size, added tokens
        included); special tokens count 0. Pass it to ``Word2VecModel(config, token_counts=...)``.
    """
    backend = _backend(tokenizer)
    paths, _ = resolve_source(files)
    if paths is None:
        raise ValueError("count_tokens reads text files; pass a path or a list of paths")
    vocab_size = _vocab_size(tokenizer)
    counts = np.zeros(vocab_size, dtype=np.int64)
    with tqdm(desc="counting tokens", unit=" lines", disable=not show_progress) as bar:
        for batch in iter_text_batches(paths, batch_lines):
            encodings = backend.encode_batch(batch, add_special_tokens=False)
            ids = np.fromiter((i for e in encodings for i in e.ids), dtype=np.int64)
            counts += np.bincount(ids, minlength=vocab_size)[:vocab_size]
            bar.update(len(batch))
    counts[[i for i in _special_ids(tokenizer) if 0 <= i < vocab_size]] = 0
    return counts


def _check_counts(token_counts, config) -> np.ndarray:
    if isinstance(token_counts, torch.Tensor):
        token_counts = token_counts.detach().cpu().numpy()
    counts = np.asarray(token_counts).reshape(-1)
    if counts.shape[0] != config.vocab_size:
        raise ValueError(
            f"token_counts has {counts.shape[0]} entries but config.vocab_size is {config.vocab_size}; "
            "count with the same tokenizer (count_tokens) or pass model.token_counts"
        )
    if (counts < 0).any():
        raise ValueError(f"token_counts must be >= 0, got {counts.min()}")
    counts = counts.astype(np.int64)
    if counts.sum() == 0:
        raise ValueError("token_counts are all zero; count the corpus first (count_tokens(tokenizer, files))")
    return counts


def _trainable(counts: np.ndarray, min_count: int) -> np.ndarray:
    """(V,) bool: ids that take part in training (seen, and at least min_count times)."""
    return (counts > 0) & (counts >= min_count)


class Word2VecDataset(IterableDataset):
    """A stream of Word2Vec training examples read from text files (never loaded whole into memory).

    Each example is a dict: skip-gram ``{"center_ids": int, "context_ids": int}`` (center predicts context);
    CBOW ``{"center_ids": int, "context_ids": list[int]}`` (the 1..2*window context words predict the center).
    ``Word2VecCollator`` turns a list of them into a batch for ``Word2VecModel.forward``.

    Sharding: with DataLoader workers, line i goes to worker ``i % num_workers``. With
    ``shard_by_process=True`` and ``torch.distributed`` initialised, lines are also split over ranks (for
    your own DistributedDataParallel loop). Leave it False under ``Trainer``/accelerate: accelerate shards an
    IterableDataset itself (rank 0 reads and dispatches batches, or each rank keeps its slice of each batch),
    and sharding twice would drop data.

    Args:
        files: a path or a list of paths (plain or gzip UTF-8 text, one sentence per line).
        tokenizer: a transformers fast tokenizer or a ``tokenizers.Tokenizer`` (word-level or subword).
        config (`Word2VecConfig`): objective, window, shrink_windows, sample, min_count, epochs, seed.
        token_counts (`np.ndarray | torch.Tensor` of shape `(vocab_size,)`): corpus counts (``count_tokens``
            or ``model.token_counts``) for min_count and subsampling.
        epochs (`int | None`, *optional*): passes over the files per iteration of the dataset; default
            ``config.epochs``. ``0`` repeats forever (then ``max_steps`` alone ends training).
        shard_by_process (`bool`): split lines over torch.distributed ranks (see above).
        batch_lines (`int`): lines per ``encode_batch`` call.
    """

    def __init__(
        self,
        files,
        tokenizer,
        config,
        token_counts,
        epochs: int | None = None,
        shard_by_process: bool = False,
        batch_lines: int = 256,
    ):
        super().__init__()
        paths, _ = resolve_source(files)
        if paths is None:
            raise ValueError("Word2VecDataset streams text files; pass a path or a list of paths")
        self.files = [str(p) for p in paths]
        self.tokenizer = tokenizer
        _backend(tokenizer)
        if _vocab_size(tokenizer) > config.vocab_size:
            raise ValueError(
                f"the tokenizer has {_vocab_size(tokenizer)} tokens but config.vocab_size is {config.vocab_size}; "
                "build the config with vocab_size=len(tokenizer)"
            )
        self.config = config
        self.counts = _check_counts(token_counts, config)
        self.epochs = config.epochs if epochs is None else int(epochs)
        if self.epochs < 0:
            raise ValueError(f"epochs must be >= 0 (0 repeats forever), got {epochs}")
        self.shard_by_process = shard_by_process
        self.batch_lines = batch_lines
        self.epoch = 0  # the Trainer's epoch (set_epoch), part of the seed

        keep = keep_probabilities(self.counts, float(config.sample)).astype(np.float64)
        trainable = _trainable(self.counts, config.min_count)
        trainable[[i for i in _special_ids(tokenizer) if 0 <= i < config.vocab_size]] = False
        self.keep_prob = np.where(trainable, keep, 0.0)  # (V,) probability that an occurrence is kept

    def set_epoch(self, epoch: int) -> None:
        """Called by Trainer/accelerate at each (Trainer) epoch: new randomness for the next pass."""
        self.epoch = int(epoch)

    def estimate_examples(self) -> int:
        """Expected examples in ``epochs`` passes (``epochs`` = 0 counts one), for choosing ``max_steps``.

        Kept tokens = sum over ids of count x keep probability. Skip-gram yields about (window + 1) pairs per
        kept token with shrinking windows (2 * window without), CBOW one row per kept token; sentence edges
        make the true number somewhat smaller.
        """
        kept = float((self.counts * self.keep_prob).sum())
        if self.config.objective == "skipgram":
            kept *= (self.config.window + 1) if self.config.shrink_windows else 2 * self.config.window
        return int(kept * max(self.epochs, 1))

    def _shard(self) -> tuple[int, int]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        rank, world = 0, 1
        if self.shard_by_process and torch.distributed.is_available() and torch.distributed.is_initialized():
            rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
        return rank * workers + worker, world * workers

    def _sentences(self, shard: int, num_shards: int):
        """Lines of this shard, encoded, as int64 id arrays."""
        backend = _backend(self.tokenizer)
        batch = []
        for line_no, line in enumerate(iter_text_lines(self.files)):
            if line_no % num_shards != shard:
                continue
            batch.append(line)
            if len(batch) >= self.batch_lines:
                for encoding in backend.encode_batch(batch, add_special_tokens=False):
                    yield np.asarray(encoding.ids, dtype=np.int64)
                batch = []
        if batch:
            for encoding in backend.encode_batch(batch, add_special_tokens=False):
                yield np.asarray(encoding.ids, dtype=np.int64)

    def __iter__(self):
        shard, num_shards = self._shard()
        config = self.config
        window = config.window
        offsets = np.r_[np.arange(-window, 0), np.arange(1, window + 1)]  # (2W,) context positions
        distance = np.abs(offsets)
        passes = range(self.epochs) if self.epochs > 0 else itertools.count()  # 0: forever
        for pass_no, _ in enumerate(passes):
            rng = np.random.default_rng([config.seed, self.epoch, pass_no, shard, num_shards])
            for ids in self._sentences(shard, num_shards):
                ids = ids[ids < self.keep_prob.shape[0]]
                ids = ids[rng.random(ids.shape[0]) < self.keep_prob[ids]]  # min_count, specials, subsampling
                for start in range(0, ids.shape[0], MAX_SENTENCE_LENGTH):
                    yield from self._examples(ids[start : start + MAX_SENTENCE_LENGTH], rng, offsets, distance)

    def _examples(self, sentence: np.ndarray, rng, offsets, distance):
        n = sentence.shape[0]
        if n < 2:
            return
        window = self.config.window
        reach = rng.integers(1, window + 1, size=n) if self.config.shrink_windows else np.full(n, window)
        positions = np.arange(n)[:, None] + offsets  # (n, 2W)
        valid = (positions >= 0) & (positions < n) & (distance <= reach[:, None])  # (n, 2W)
        context = sentence[np.clip(positions, 0, n - 1)]  # (n, 2W)
        if self.config.objective == "skipgram":
            rows, cols = np.nonzero(valid)  # center-major, context positions left to right, as word2vec
            for center, target in zip(sentence[rows].tolist(), context[rows, cols].tolist()):
                yield {"center_ids": center, "context_ids": target}
        else:
            for center, ctx, ok in zip(sentence.tolist(), context, valid):
                yield {"center_ids": center, "context_ids": ctx[ok].tolist()}


class Word2VecCollator:
    """Batch examples of ``Word2VecDataset`` for ``Word2VecModel.forward`` and draw the negatives.

    Negatives come from the unigram distribution raised to ``config.ns_exponent`` over the trainable ids
    (seen at least ``min_count`` times), by inverse-CDF sampling. Each batch's generator is seeded from
    ``seed`` and the batch's own ids, so batches are reproducible whatever the worker or resume point.

    Args:
        config (`Word2VecConfig`): objective, loss, negative, ns_exponent, window, min_count, pad_token_id.
        token_counts (`np.ndarray | torch.Tensor` of shape `(vocab_size,)`): corpus counts.
        seed (`int`, *optional*): default ``config.seed``.

    Returns (when called on a list of examples), a dict of tensors:
        ``center_ids`` (B,); ``context_ids`` (B,) for skip-gram or (B, 2*window) for CBOW, padded with
        ``pad_token_id``; ``context_mask`` (B, 2*window) for CBOW; ``negative_ids`` (B, negative) for
        negative sampling.
    """

    def __init__(self, config, token_counts, seed: int | None = None):
        self.config = config
        counts = _check_counts(token_counts, config)
        self.seed = config.seed if seed is None else int(seed)
        self.pad_id = config.pad_token_id if config.pad_token_id is not None else 0
        weights = np.where(_trainable(counts, config.min_count), counts.astype(np.float64) ** config.ns_exponent, 0.0)
        if weights.sum() <= 0 or not np.isfinite(weights.sum()):
            raise ValueError(
                f"no token has a count >= min_count={config.min_count}; lower min_count or count a larger corpus"
            )
        cdf = np.cumsum(weights)
        self.cdf = torch.from_numpy(cdf / cdf[-1])  # (V,) float64, last = 1

    def _generator(self, center: torch.Tensor, context: torch.Tensor) -> torch.Generator:
        digest = zlib.crc32(context.numpy().tobytes(), zlib.crc32(center.numpy().tobytes()))
        return torch.Generator().manual_seed((self.seed * 4294967311 + digest) % 2**63)

    def __call__(self, examples: list[dict]) -> dict[str, torch.Tensor]:
        if not examples:
            raise ValueError("cannot collate an empty list of examples")
        center = torch.tensor([e["center_ids"] for e in examples], dtype=torch.long)
        batch = {"center_ids": center}
        if self.config.objective == "skipgram":
            context = torch.tensor([e["context_ids"] for e in examples], dtype=torch.long)
            batch["context_ids"] = context
        else:
            width = 2 * self.config.window
            context = torch.full((len(examples), width), self.pad_id, dtype=torch.long)
            mask = torch.zeros((len(examples), width), dtype=torch.bool)
            for row, e in enumerate(examples):
                ids = e["context_ids"]
                if len(ids) > width:
                    raise ValueError(f"a CBOW example has {len(ids)} context words, more than 2*window={width}")
                context[row, : len(ids)] = torch.as_tensor(ids, dtype=torch.long)
                mask[row, : len(ids)] = True
            batch["context_ids"], batch["context_mask"] = context, mask
        if self.config.loss == "negative_sampling":
            u = torch.rand((len(examples), self.config.negative), generator=self._generator(center, context), dtype=torch.float64)
            negatives = torch.searchsorted(self.cdf, u, right=True).clamp_(max=self.cdf.shape[0] - 1)
            batch["negative_ids"] = negatives  # (B, K); a negative equal to the target is ignored by the loss
        return batch


class _LinearDecay:
    """LambdaLR factor: 1 -> min_alpha / alpha linearly over max_steps, then flat (gensim's schedule)."""

    def __init__(self, max_steps: int, floor: float):
        self.max_steps, self.floor = max_steps, floor

    def __call__(self, step: int) -> float:
        return max(1.0 - (1.0 - self.floor) * step / self.max_steps, self.floor)


def word2vec_optimizer(model, max_steps: int, batch_size: int, sparse: bool = False):
    """word2vec's optimisation for ``Trainer(optimizers=...)``: plain SGD, learning rate decayed linearly
    from ``alpha`` to ``min_alpha``.

    ``Word2VecModel`` returns the batch *mean* of the per-example losses while word2vec takes one step of
    size alpha per example, so the learning rate is ``alpha * batch_size``: the summed per-example updates.

    Args:
        model (`Word2VecModel`): its config gives alpha and min_alpha.
        max_steps (`int`): optimizer steps of the run (``TrainingArguments.max_steps``).
        batch_size (`int`): examples per optimizer step (per-device batch x gradient accumulation x processes).
        sparse (`bool`): switch ``in_embed`` / ``out_embed`` to sparse gradients (True) or back to dense ones.
            Sparse gradients touch only the batch's rows: 5x faster for a 7k-word vocabulary on a CPU in our
            measurement, more for larger ones. Use them in your own training loop; ``Trainer`` cannot (it
            always computes the gradient norm, which torch does not implement for sparse gradients), nor can
            optimizers such as AdamW.

    Returns:
        `(torch.optim.SGD, torch.optim.lr_scheduler.LambdaLR)`.
    """
    if max_steps < 1 or batch_size < 1:
        raise ValueError(f"max_steps and batch_size must be >= 1, got {max_steps} and {batch_size}")
    config = model.config
    for module in (model.in_embed, model.out_embed):
        module.sparse = sparse
    optimizer = torch.optim.SGD(model.parameters(), lr=config.alpha * batch_size, momentum=0.0, weight_decay=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _LinearDecay(max_steps, config.min_alpha / config.alpha))
    return optimizer, scheduler


def word2vec_training_arguments(output_dir, max_steps: int, batch_size: int, **kwargs):
    """``TrainingArguments`` for Word2Vec: the settings word2vec needs, any of them overridable.

    ``max_steps`` (an IterableDataset has no length), ``per_device_train_batch_size=batch_size``,
    ``max_grad_norm=0`` (Trainer clips to 1.0 by default; word2vec never clips), no weight decay, no report
    integrations, CPU/GPU as available. Pair with ``optimizers=word2vec_optimizer(...)``; without it use
    ``optim="sgd"``, ``learning_rate=alpha * batch_size``, ``lr_scheduler_type="linear"`` (decays to 0
    rather than min_alpha).

    Args:
        output_dir: checkpoint folder. max_steps: optimizer steps. batch_size: examples per device and step.
        **kwargs: any other ``TrainingArguments`` field (save_steps, logging_steps, dataloader_num_workers, ...).
    """
    from transformers import TrainingArguments

    defaults = dict(
        output_dir=str(output_dir),
        max_steps=max_steps,
        per_device_train_batch_size=batch_size,
        max_grad_norm=0.0,
        weight_decay=0.0,
        report_to="none",
        seed=1,
        logging_steps=max(1, max_steps // 20),
        save_strategy="steps",
        save_steps=max(1, max_steps // 5),
        # without use_cpu on a machine without CUDA, Trainer under torchrun silently runs each process alone
        # (ParallelMode.NOT_PARALLEL: no gloo process group, no gradient averaging)
        use_cpu=not torch.cuda.is_available(),
    )
    defaults.update(kwargs)
    return TrainingArguments(**defaults)
