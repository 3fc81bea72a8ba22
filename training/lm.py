"""Train the transformer families on text files with ``Trainer``: one function, four tasks.

    from w2vformer import train_transformer

    result = train_transformer("clm", ["corpus.txt"], output_dir="runs/decoder",
                               init_from_word2vec="runs/word2vec", max_steps=300)
    print(result.metrics)            # train/eval loss, perplexity (and accuracy for "classify")

| task       | model                                | data (UTF-8 text files)                               |
| ---------- | ------------------------------------ | ----------------------------------------------------- |
| "mlm"      | EncoderForMaskedLM                   | one paragraph per line (15% of tokens masked)         |
| "clm"      | DecoderForCausalLM                   | any text; lines are joined with </s> and cut in blocks |
| "seq2seq"  | Seq2SeqForConditionalGeneration      | one pair per line: ``source<TAB>target``              |
| "classify" | EncoderForSequenceClassification     | one example per line: ``label<TAB>text``              |

The run folder gets checkpoints in ``checkpoints/`` (``resume=True`` continues from the last one), and
at the end the model, its tokenizer, ``training_log.json`` (Trainer's log history, for loss curves)
and ``run_info.json`` (the setup, and where the embeddings came from); each file is renamed into place
whole.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import random
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from w2vformer._io import atomic_write, check_input_files, publish_files
from w2vformer.tokenization.corpus import open_binary

logger = logging.getLogger(__name__)

__all__ = ["TASKS", "TrainResult", "train_transformer", "read_text_examples", "build_model_for_task",
           "last_complete_checkpoint"]

# task -> (tokenizer preset / model family, configuration module, config class, modeling module, model class)
TASKS = {
    "mlm": ("encoder", "configuration_encoder", "EncoderConfig", "modeling_encoder", "EncoderForMaskedLM"),
    "clm": ("decoder", "configuration_decoder", "DecoderConfig", "modeling_decoder", "DecoderForCausalLM"),
    "seq2seq": ("seq2seq", "configuration_seq2seq", "Seq2SeqConfig", "modeling_seq2seq",
                "Seq2SeqForConditionalGeneration"),
    "classify": ("encoder", "configuration_encoder", "EncoderConfig", "modeling_encoder",
                 "EncoderForSequenceClassification"),
}

# small defaults: a model that learns something in minutes on a laptop CPU
DEFAULT_MODEL_CONFIG = dict(hidden_size=128, num_attention_heads=4, intermediate_size=512, dropout=0.1)
DEFAULT_DEPTH = 2


@dataclass
class TrainResult:
    """What :func:`train_transformer` returns.

    Attributes:
        model: the trained model (eval mode).
        tokenizer: its tokenizer.
        output_dir: where both were saved.
        metrics: ``train_loss``, ``eval_loss``, ``perplexity`` (language-model tasks) / ``accuracy`` (classify).
        log_history: Trainer's log history (loss every ``logging_steps``).
        init_report: the :class:`~w2vformer.conversion.embedding_init.EmbeddingInitReport` when the
            embeddings started from Word2Vec, else None.
    """

    model: object
    tokenizer: object
    output_dir: Path
    metrics: dict
    log_history: list = field(default_factory=list)
    init_report: object | None = None


MAX_LINE_BYTES = 8 << 20  # one example longer than this is not a sentence or paragraph: refused, not read whole


def _lines(files):
    """Non-empty lines of the files, streamed (at most MAX_LINE_BYTES + 1 bytes held per line), with a clear
    error for non-UTF-8 input and for a line too long to be one example."""
    for path in check_input_files(files):
        with open_binary(path) as f:  # plain or gzip
            offset = 0
            for number, raw in enumerate(iter(functools.partial(f.readline, MAX_LINE_BYTES + 1), b""), 1):
                if len(raw) > MAX_LINE_BYTES:
                    raise ValueError(
                        f"{str(path)!r} line {number} is longer than {MAX_LINE_BYTES >> 20} MiB; each line is one "
                        "training example (a sentence or paragraph): break the text into lines (e.g. `fold -s -w 1000`)"
                    )
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    raise ValueError(
                        f"{str(path)!r} is not UTF-8 text: undecodable byte at offset {offset + e.start} (line "
                        f"{number}); convert the file to UTF-8 (e.g. with iconv)"
                    ) from None
                offset += len(raw)
                line = line.strip()
                if line:
                    yield path, number, line


# the columns a datasets dataset must have, per task (the first name found is used)
DATASET_COLUMNS = {
    "mlm": (("text", "sentence", "content"),),
    "clm": (("text", "sentence", "content"),),
    "seq2seq": (("source", "src", "input"), ("target", "tgt", "output")),
    "classify": (("label", "labels"), ("text", "sentence", "content")),
}


def _is_dataset(source) -> bool:
    """A folder written by ``save_to_disk``, or a name such as ``user/corpus`` (no file, no file suffix)."""
    path = Path(source)
    if path.is_dir():
        return any((path / name).exists() for name in ("dataset_info.json", "dataset_dict.json", "state.json"))
    return not path.exists() and not path.suffix  # "missing.txt" stays a (missing) file: a clear error


def _dataset_examples(task: str, source) -> list:
    """The examples of ``task`` from a datasets dataset: a ``save_to_disk`` folder or a name that
    ``datasets.load_dataset`` finds locally (its cache, or a local dataset folder); split "train"."""
    try:
        import datasets
    except ImportError:
        raise ValueError(f"{str(source)!r} is not a file; to read a datasets dataset, pip install datasets") from None
    path = Path(source)
    try:
        ds = datasets.load_from_disk(str(path)) if path.is_dir() else datasets.load_dataset(str(source), split="train")
    except (FileNotFoundError, ValueError, ConnectionError, OSError) as e:
        raise FileNotFoundError(
            f"{str(source)!r} is neither a text file nor a datasets dataset available locally ({type(e).__name__}: "
            f"{str(e)[:200]}); pass text files, a folder saved with Dataset.save_to_disk, or a cached dataset name"
        ) from None
    if isinstance(ds, datasets.DatasetDict):
        if "train" not in ds:
            raise ValueError(f"dataset {str(source)!r} has no 'train' split (splits: {list(ds)})")
        ds = ds["train"]
    columns = []
    for names in DATASET_COLUMNS[task]:
        found = next((n for n in names if n in ds.column_names), None)
        if found is None:
            raise ValueError(f"dataset {str(source)!r} has columns {ds.column_names}; task {task!r} needs one of "
                             f"{list(names)}")
        columns.append(found)
    if task in ("mlm", "clm"):
        return [t.strip() for t in ds[columns[0]] if isinstance(t, str) and t.strip()]
    first, second = ds[columns[0]], ds[columns[1]]
    if task == "classify":
        feature = ds.features[columns[0]]
        names = getattr(feature, "names", None)  # a ClassLabel column holds ints: use its names
        first = [names[x] if names else str(x) for x in first]
    return [(str(a).strip(), str(b).strip()) for a, b in zip(first, second) if str(a).strip() and str(b).strip()]


def read_text_examples(task: str, files) -> list:
    """Read the training examples of ``task`` from text files (see the module table for the formats), or
    from datasets datasets (a folder saved with ``save_to_disk``, or a name ``datasets.load_dataset`` finds
    locally; columns by name: :data:`DATASET_COLUMNS`).

    Returns:
        ``list[str]`` for "mlm"/"clm", ``list[tuple[str, str]]`` (source, target) for "seq2seq", and
        ``list[tuple[str, str]]`` (label, text) for "classify".
    """
    _check_task(task)
    files = [files] if isinstance(files, (str, Path)) else list(files)
    examples = []
    for source in [f for f in files if _is_dataset(f)]:
        examples.extend(_dataset_examples(task, source))
    files = [f for f in files if not _is_dataset(f)]
    for path, number, line in _lines(files) if files else ():
        if task in ("seq2seq", "classify"):
            parts = line.split("\t")
            if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
                what = "source<TAB>target" if task == "seq2seq" else "label<TAB>text"
                raise ValueError(
                    f"{str(path)!r} line {number} is not '{what}' (found {len(parts)} tab-separated field(s)): "
                    f"{line[:60]!r}"
                )
            examples.append((parts[0].strip(), parts[1].strip()))
        else:
            examples.append(line)
    if not examples:
        raise ValueError(f"no text in {[str(f) for f in files]}: the files are empty or blank")
    return examples


def _check_task(task):
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")


def _model_classes(task):
    import importlib

    _, config_module, config_name, model_module, model_name = TASKS[task]
    config_cls = getattr(importlib.import_module(f"w2vformer.modeling.{config_module}"), config_name)
    model_cls = getattr(importlib.import_module(f"w2vformer.modeling.{model_module}"), model_name)
    return config_cls, model_cls


def build_model_for_task(task: str, tokenizer, model_config: dict | None = None, num_labels: int | None = None,
                         block_size: int = 128, id2label: dict | None = None):
    """A freshly initialised model of ``task``'s family, sized to ``tokenizer`` (vocabulary, special ids).

    Args:
        task: "mlm", "clm", "seq2seq" or "classify".
        tokenizer: the tokenizer (its length is the vocabulary size; its pad/bos/eos ids go into the config).
        model_config: config fields overriding the small defaults (``hidden_size``, ``num_hidden_layers``, ...).
        num_labels, id2label: for "classify".
        block_size: the longest training sequence (``max_position_embeddings`` is at least this).
    """
    _check_task(task)
    config_cls, model_cls = _model_classes(task)
    fields = dict(DEFAULT_MODEL_CONFIG)
    if task == "seq2seq":
        fields.update(encoder_layers=DEFAULT_DEPTH, decoder_layers=DEFAULT_DEPTH)
    else:
        fields.update(num_hidden_layers=DEFAULT_DEPTH)
    fields.update(vocab_size=len(tokenizer), max_position_embeddings=max(512, block_size))
    ids = dict(pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
               eos_token_id=tokenizer.eos_token_id)
    if task == "seq2seq":
        ids["decoder_start_token_id"] = tokenizer.bos_token_id
    fields.update({k: v for k, v in ids.items() if v is not None})
    if task == "classify":
        fields.update(num_labels=num_labels, id2label=id2label, label2id={v: k for k, v in (id2label or {}).items()})
    fields.update(model_config or {})
    return model_cls(config_cls(**fields))


def _tokenize(task, examples, tokenizer, block_size, label2id=None):
    """Examples -> list of feature dicts for the task's collator."""
    if task == "clm":
        eos = tokenizer.eos_token_id
        stream = []
        for ids in tokenizer(examples, add_special_tokens=True)["input_ids"]:
            stream.extend(ids + ([eos] if eos is not None else []))
        blocks = [stream[i: i + block_size] for i in range(0, len(stream) - block_size + 1, block_size)]
        if not blocks:
            raise ValueError(
                f"the text gives {len(stream)} tokens, fewer than one block of block_size={block_size}; "
                "use more text or a smaller --block-size"
            )
        return [{"input_ids": b} for b in blocks]
    if task == "mlm":
        enc = tokenizer(examples, truncation=True, max_length=block_size)
        return [{"input_ids": ids} for ids in enc["input_ids"]]
    if task == "seq2seq":
        sources = tokenizer([s for s, _ in examples], truncation=True, max_length=block_size)["input_ids"]
        targets = tokenizer([t for _, t in examples], truncation=True, max_length=block_size)["input_ids"]
        return [{"input_ids": s, "labels": t} for s, t in zip(sources, targets)]
    enc = tokenizer([t for _, t in examples], truncation=True, max_length=block_size)
    return [{"input_ids": ids, "labels": label2id[label]} for ids, (label, _) in zip(enc["input_ids"], examples)]


def _mask_once(features, tokenizer, seed: int, probability: float = 0.15):
    """BERT's masking applied once, with a fixed seed, to evaluation examples: every evaluation then scores
    the same positions (comparable across steps and runs), and each example has at least one."""
    import torch

    g = torch.Generator().manual_seed(seed)
    special = set(tokenizer.all_special_ids)
    masked = []
    for f in features:
        ids = torch.tensor(f["input_ids"])
        candidates = torch.tensor([i not in special for i in f["input_ids"]])
        if not candidates.any():
            continue
        chosen = (torch.rand(len(ids), generator=g) < probability) & candidates
        if not chosen.any():
            positions = candidates.nonzero().flatten()
            chosen[positions[torch.randint(len(positions), (1,), generator=g)]] = True
        labels = torch.where(chosen, ids, torch.tensor(-100))
        roll = torch.rand(len(ids), generator=g)
        inputs = ids.clone()
        inputs[chosen & (roll < 0.8)] = tokenizer.mask_token_id  # 80% [MASK], 10% random, 10% unchanged
        rand = chosen & (roll >= 0.8) & (roll < 0.9)
        inputs[rand] = torch.randint(len(tokenizer), (int(rand.sum()),), generator=g)
        masked.append({"input_ids": inputs.tolist(), "labels": labels.tolist()})
    return masked


class _MLMCollator:
    """Random masking for training examples; evaluation examples come masked already (``labels`` present).

    A training batch's masks come from a generator seeded by (seed, the batch's token ids), so a batch gets
    the same masks whenever it is collated. Trainer's data loader collates one batch ahead, before a
    checkpoint saves the RNG states; masks drawn from the global RNG would then differ between a run resumed
    from that checkpoint and the uninterrupted run. With these, resuming continues exactly.
    """

    def __init__(self, tokenizer, seed: int = 0):
        from transformers import DataCollatorForLanguageModeling, DataCollatorForTokenClassification

        self.mask = DataCollatorForLanguageModeling(tokenizer, mlm=True, mlm_probability=0.15)
        self.pad = DataCollatorForTokenClassification(tokenizer)  # pads input_ids, and labels with -100
        self.seed = seed

    def __call__(self, features):
        if "labels" in features[0]:
            return self.pad(features)
        import torch

        digest = zlib.crc32(json.dumps([f["input_ids"] for f in features]).encode())
        self.mask.generator = torch.Generator().manual_seed(self.seed * 1_000_003 + digest)
        return self.mask(features)


def _collator(task, tokenizer, model, seed: int = 0):
    from transformers import DataCollatorForLanguageModeling, DataCollatorForSeq2Seq, DataCollatorWithPadding

    if task == "mlm":
        return _MLMCollator(tokenizer, seed)
    if task == "clm":
        return DataCollatorForLanguageModeling(tokenizer, mlm=False)
    if task == "seq2seq":
        return DataCollatorForSeq2Seq(tokenizer, model=model)
    return DataCollatorWithPadding(tokenizer)


def _load_tokenizer(tokenizer):
    if tokenizer is None or not isinstance(tokenizer, (str, Path)):
        return tokenizer
    from transformers import AutoTokenizer

    path = Path(tokenizer)
    if not (path / "tokenizer.json").exists():
        raise FileNotFoundError(f"no tokenizer in {str(path)!r} (tokenizer.json missing); train one with "
                                "`w2vformer tokenizer train` or leave the tokenizer out to train one here")
    return AutoTokenizer.from_pretrained(path)


def train_transformer(
    task: str,
    train_files,
    *,
    output_dir,
    tokenizer=None,
    vocab_size: int = 8000,
    eval_files=None,
    eval_fraction: float = 0.05,
    model_config: dict | None = None,
    init_from_word2vec=None,
    projection: str | None = None,
    freeze_embeddings_steps: int = 0,
    block_size: int = 128,
    max_steps: int = -1,
    epochs: float = 1.0,
    batch_size: int = 16,
    learning_rate: float = 5e-4,
    warmup_ratio: float = 0.05,
    weight_decay: float = 0.01,
    gradient_accumulation_steps: int = 1,
    logging_steps: int = 10,
    save_steps: int = 200,
    eval_steps: int | None = None,
    seed: int = 42,
    resume: bool = False,
    progress: bool = True,
) -> TrainResult:
    """Train a model of ``task``'s family on text files with ``Trainer``, and save it in ``output_dir``.

    Args:
        task: "mlm" (encoder), "clm" (decoder), "seq2seq" (encoder-decoder) or "classify" (encoder).
        train_files: UTF-8 text files (formats in the module docstring).
        output_dir: the run folder (model, tokenizer, logs, ``checkpoints/``).
        tokenizer: a tokenizer or its folder; None trains one on ``train_files`` with the family's preset.
        vocab_size: for a tokenizer trained here.
        eval_files: held-out files; without them the last ``eval_fraction`` of the examples is held out.
        model_config: config fields (e.g. ``{"hidden_size": 256, "num_hidden_layers": 4}``).
        init_from_word2vec: a Word2Vec checkpoint folder or vector file to start the token embeddings from
            (:func:`~w2vformer.conversion.embedding_init.init_embeddings_from_word2vec`).
        projection: how to reconcile widths with ``init_from_word2vec`` ("pca", "pad", "orthogonal").
        freeze_embeddings_steps: keep the embeddings frozen for this many steps at the start.
        block_size: tokens per training sequence.
        max_steps: optimizer steps (overrides ``epochs`` when > 0).
        epochs, batch_size, learning_rate, warmup_ratio, weight_decay, gradient_accumulation_steps,
        logging_steps, save_steps, seed: as in ``TrainingArguments``.
        eval_steps: evaluate every N steps (default: at every checkpoint, ``save_steps``).
        resume: continue from the last checkpoint in ``output_dir/checkpoints``.
        progress: show Trainer's progress bars.

    Returns:
        A :class:`TrainResult`.
    """
    _check_task(task)
    import torch
    from transformers import Trainer, TrainingArguments, set_seed

    from w2vformer.conversion.embedding_init import FreezeEmbeddingsCallback, init_embeddings_from_word2vec

    output_dir = Path(output_dir)
    if block_size < 2:
        raise ValueError(f"block_size must be at least 2, got {block_size}")
    set_seed(seed)
    examples = read_text_examples(task, train_files)
    eval_examples = read_text_examples(task, eval_files) if eval_files else None
    if eval_examples is None and eval_fraction > 0 and len(examples) >= 10:
        shuffled = examples[:]
        random.Random(seed).shuffle(shuffled)
        n_eval = max(1, int(len(shuffled) * eval_fraction))
        eval_examples, examples = shuffled[:n_eval], shuffled[n_eval:]

    tokenizer = _load_tokenizer(tokenizer)
    if tokenizer is None:
        from w2vformer.tokenization import train_tokenizer

        if task in ("mlm", "clm"):
            texts = examples
        elif task == "seq2seq":
            texts = [side for pair in examples for side in pair]
        else:
            texts = [text for _, text in examples]
        tokenizer = train_tokenizer(iter(texts), preset=TASKS[task][0], vocab_size=vocab_size,
                                    show_progress=progress)

    label2id = id2label = None
    if task == "classify":
        labels = sorted({label for label, _ in examples})
        if len(labels) < 2:
            raise ValueError(f"classification needs at least 2 labels, found {labels}")
        label2id = {label: i for i, label in enumerate(labels)}
        id2label = {i: label for label, i in label2id.items()}
        unknown = {label for label, _ in (eval_examples or []) if label not in label2id}
        if unknown:
            raise ValueError(f"the evaluation data has labels not in the training data: {sorted(unknown)}")

    train_features = _tokenize(task, examples, tokenizer, block_size, label2id)
    eval_features = _tokenize(task, eval_examples, tokenizer, block_size, label2id) if eval_examples else None
    if task == "mlm" and eval_features:
        eval_features = _mask_once(eval_features, tokenizer, seed)

    model = build_model_for_task(task, tokenizer, model_config, num_labels=len(label2id or {}) or None,
                                 block_size=block_size, id2label=id2label)
    init_report = None
    if init_from_word2vec is not None:
        init_report = init_embeddings_from_word2vec(model, tokenizer, init_from_word2vec, projection=projection)
        logger.info("%s", init_report)

    checkpoints = output_dir / "checkpoints"
    args = TrainingArguments(
        output_dir=str(checkpoints),
        max_steps=max_steps,
        num_train_epochs=epochs,
        per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=batch_size,
        learning_rate=learning_rate,
        warmup_steps=warmup_ratio,  # a float in [0, 1) is a fraction of the total steps (transformers 5)
        weight_decay=weight_decay,
        gradient_accumulation_steps=gradient_accumulation_steps,
        logging_steps=logging_steps,
        save_steps=save_steps,
        save_total_limit=2,
        eval_strategy="steps" if eval_features else "no",
        eval_steps=(eval_steps or save_steps) if eval_features else None,
        seed=seed,
        data_seed=seed,
        report_to=[],
        disable_tqdm=not progress,
        use_cpu=not torch.cuda.is_available(),
        dataloader_num_workers=0,
    )
    callbacks = [FreezeEmbeddingsCallback(freeze_embeddings_steps)] if freeze_embeddings_steps else []
    trainer = Trainer(model=model, args=args, train_dataset=train_features, eval_dataset=eval_features,
                      data_collator=_collator(task, tokenizer, model, seed), processing_class=tokenizer,
                      callbacks=callbacks, compute_metrics=_accuracy if task == "classify" else None)
    last = last_complete_checkpoint(checkpoints) if resume else None
    if resume and last is None:
        raise FileNotFoundError(
            f"resume=True but {str(checkpoints)!r} holds no checkpoint-* folder written completely "
            "(with trainer_state.json) to resume from"
        )
    train_output = trainer.train(resume_from_checkpoint=str(last) if last is not None else None)

    metrics = {"train_loss": float(train_output.training_loss), "steps": int(trainer.state.global_step)}
    if eval_features:
        ev = trainer.evaluate()
        metrics["eval_loss"] = float(ev["eval_loss"])
        if task in ("mlm", "clm", "seq2seq"):
            metrics["perplexity"] = float(math.exp(min(ev["eval_loss"], 50.0)))
        if "eval_accuracy" in ev:
            metrics["accuracy"] = float(ev["eval_accuracy"])

    model.eval()
    run_info = {
        "task": task,
        "model_class": type(model).__name__,
        "train_files": [str(f) for f in train_files],
        "examples": {"train": len(train_features), "eval": len(eval_features or [])},
        "training": {"max_steps": max_steps, "epochs": epochs, "batch_size": batch_size,
                     "learning_rate": learning_rate, "block_size": block_size, "seed": seed},
        "metrics": metrics,
        "embeddings_init": init_report.to_dict() if init_report is not None else "random",
    }
    if trainer.is_world_process_zero():  # under torchrun / accelerate, one process writes the outputs
        _publish(output_dir, model, tokenizer, trainer.state.log_history, run_info, init_report)
    trainer.accelerator.wait_for_everyone()  # every process returns once the outputs are in place
    return TrainResult(model, tokenizer, output_dir, metrics, list(trainer.state.log_history), init_report)


def last_complete_checkpoint(folder) -> Path | None:
    """The newest ``checkpoint-<step>`` folder in ``folder`` that was written completely, or None.

    Trainer writes a checkpoint in place (weights, optimizer, scheduler, RNG states, and ``trainer_state.json``
    last), so a run killed while saving leaves a partial folder that ``resume_from_checkpoint=True`` would
    pick. Only folders holding ``trainer_state.json`` count; pass the result to
    ``trainer.train(resume_from_checkpoint=...)``.
    """
    folder = Path(folder)
    steps = []
    for path in folder.glob("checkpoint-*") if folder.is_dir() else []:
        step = path.name.split("-", 1)[1]
        if step.isdigit() and (path / "trainer_state.json").is_file():
            steps.append((int(step), path))
    return max(steps)[1] if steps else None


def _publish(output_dir: Path, model, tokenizer, log_history, run_info: dict, init_report) -> None:
    """Write the model, tokenizer, logs and card into a staging folder, then rename each file into place."""
    output_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".save.", dir=output_dir))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        with atomic_write(staging / "training_log.json") as f:
            json.dump(log_history, f, indent=1)
        with atomic_write(staging / "run_info.json") as f:
            json.dump(run_info, f, indent=1, default=str)
        _write_card(staging, run_info, init_report)
        publish_files(staging, output_dir)
    except BaseException:
        import shutil

        shutil.rmtree(staging, ignore_errors=True)
        raise


def _accuracy(eval_prediction):
    import numpy as np

    logits, labels = eval_prediction.predictions, eval_prediction.label_ids
    if isinstance(logits, tuple):
        logits = logits[0]
    return {"accuracy": float((np.argmax(logits, axis=-1) == labels).mean())}


def _write_card(folder: Path, run_info: dict, init_report) -> None:
    """The model card (README.md): task, training setup, metrics, and where the embeddings came from."""
    from w2vformer.conversion.embedding_init import describe_init
    from w2vformer.hub import write_model_card

    write_model_card(
        folder,
        metrics={k: v for k, v in run_info["metrics"].items() if isinstance(v, float)},
        training={"task": run_info["task"], **run_info["training"]},
        init_embeddings=describe_init(init_report) if init_report is not None
        else "Random initialisation (no Word2Vec vectors).",
    )
