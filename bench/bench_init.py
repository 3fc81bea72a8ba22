"""What Word2Vec initialisation measurably buys: random vs Word2Vec token embeddings, same everything else.

    python bench/bench_init.py                                   # quick run: shipped English corpus (~10 min, 2 cores)
    python bench/bench_init.py --corpus /work/shared/data/corpus-en.txt.gz --max-lines 60000 --steps 1000

For each family (encoder "mlm", decoder "clm", encoder-decoder "seq2seq") and each seed, the transformer is
trained for a fixed number of steps on the same text, with the same tokenizer, seed and data order, in
these arms (``--arms``):

- ``random``: the model's own random embeddings;
- ``w2v``: Word2Vec (skip-gram) trained on the same training text **with the transformer's own tokenizer**
  (same vocabulary: each row is copied one to one), width = ``hidden_size`` (no projection);
- ``w2v-words``: the cross-vocabulary setting: a word-level Word2Vec (its own word vocabulary) whose
  vectors are matched to the transformer's sub-word tokens by string (``fallback="subword_mean"``).

Nothing else differs: ``train_transformer`` seeds the model before the embeddings are overwritten, so all
other weights start equal, and ``data_seed`` fixes the batch order. Word2Vec only sees the training lines;
the held-out lines (``--eval-fraction``) give the eval loss and the classification test set.

Downstream (encoder, when the corpus is the Bible: the shipped World English Bible, or any corpus with
Matthew 1:1): classify a verse as Old vs New Testament (label from its position before / after Matthew 1:1;
classes balanced, so chance is 50%). Two variants per arm: fine-tuned from that arm's MLM-pretrained
encoder (``after-mlm``) and fine-tuned straight from the initialisation (``no-mlm``). The classifier trains
on training-split verses and is tested on held-out verses that neither Word2Vec nor the MLM saw.

Outputs (``--out``, default ``bench/results/init``): ``results.json`` (every run: metrics, loss logs,
embedding-init report, wall time), ``table.md``, ``loss_curves.png``. Run folders go to ``--workdir``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import random
import re
import shutil
import sys
import time
from pathlib import Path

FAMILIES = {"mlm": ("encoder", "encoder"), "clm": ("decoder", "decoder"), "seq2seq": ("seq2seq", "encoder-decoder")}
ARMS = ("random", "w2v", "w2v-words")
CHECK_STEPS = (50, 100, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 5000)
SMOOTH_LOGS = 5  # train-loss points are averaged over this many logging intervals (50 steps at logging_steps=10)
LOGGING_STEPS = 10
# Matthew 1:1 (WEB "genealogy", KJV "generation"): the first verse of the New Testament
NT_START = re.compile(r"book of the (genealogy|generation) of jesus christ", re.IGNORECASE)


# ---------------------------------------------------------------------------------------------------
# Data


def read_lines(path: Path) -> list[tuple[int, str]]:
    """(original line index, text) of the non-empty lines."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        lines = [(i, " ".join(line.split())) for i, line in enumerate(f)]
    return [(i, t) for i, t in lines if t]


def even_subset(lines: list, max_lines: int | None) -> list:
    """``max_lines`` evenly spaced lines (so a source-ordered corpus keeps its mix, and the Bible keeps both
    testaments); all of them without ``max_lines``."""
    if max_lines and max_lines < len(lines):
        stride = len(lines) / max_lines
        lines = [lines[int(k * stride)] for k in range(max_lines)]
    return lines


def testament_labels(lines) -> dict[int, str] | None:
    """Original line index -> "OT"/"NT" for every line, from the first verse of Matthew; None if absent.

    A corpus holding several Bibles (the shared corpus: WEB then KJV) is labelled per Bible: a line is NT from a
    Matthew 1:1 up to the next Genesis 1:1 ("in the beginning god created")."""
    genesis = re.compile(r"^in the beginning,? god created", re.IGNORECASE)
    labels, state, found = {}, None, False
    for i, text in lines:
        if genesis.search(text):
            state = "OT"
        if NT_START.search(text):
            state, found = "NT", True
        if state is not None:
            labels[i] = state
    return labels if found else None


def mask_words(text: str, rng: random.Random, rate: float = 0.3) -> str:
    """BART-style token masking on words: each word becomes [MASK] with probability ``rate``."""
    words = text.split()
    return " ".join("[MASK]" if rng.random() < rate else w for w in words)


def write_task_files(lines, eval_fraction: float, eval_lines: int, folder: Path, seed: int = 1234) -> dict:
    """Split the lines (train / held-out) and write the text files of every task; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    order = list(range(len(lines)))
    random.Random(seed).shuffle(order)
    n_eval = max(1, int(len(lines) * eval_fraction))
    held = sorted(order[:n_eval])
    train = [lines[k] for k in sorted(order[n_eval:])]  # corpus order: Word2Vec windows never cross lines anyway
    held = [lines[k] for k in held]
    lm_eval = random.Random(seed + 1).sample(held, min(eval_lines, len(held)))
    rng = random.Random(seed + 2)
    files = {}

    def write(name, rows):
        path = folder / name
        path.write_text("".join(r.replace("\t", " ") + "\n" if isinstance(r, str) else "\t".join(r) + "\n"
                                for r in rows), encoding="utf-8")
        files[name] = path

    write("train.txt", [t for _, t in train])
    write("eval.txt", [t for _, t in lm_eval])
    write("seq2seq-train.txt", [(mask_words(t, rng), t) for _, t in train])
    write("seq2seq-eval.txt", [(mask_words(t, rng), t) for _, t in lm_eval])
    files["n_train"], files["n_heldout"], files["n_eval"] = len(train), len(held), len(lm_eval)
    files["train_rows"], files["held_rows"] = train, held
    return files


def write_classification_files(files, labels, cls_train: int, cls_eval: int, folder: Path, seed: int = 99) -> dict:
    """Balanced OT/NT verse classification: train from the training split, test from the held-out split."""
    rng = random.Random(seed)
    out = {}
    for split, rows, n in (("train", files["train_rows"], cls_train), ("eval", files["held_rows"], cls_eval)):
        by_label = {"OT": [], "NT": []}
        for i, text in rows:
            if i in labels:
                by_label[labels[i]].append(text)
        per_class = min(n // 2, *(len(v) for v in by_label.values()))
        if per_class < 5:
            return {}
        picked = [(lab, t) for lab, texts in by_label.items() for t in rng.sample(texts, per_class)]
        rng.shuffle(picked)
        path = folder / f"classify-{split}.txt"
        path.write_text("".join(f"{lab}\t{t}\n" for lab, t in picked), encoding="utf-8")
        out[split], out[f"n_{split}"] = path, len(picked)
    return out


# ---------------------------------------------------------------------------------------------------
# Runs


def finetune_classifier(pretrained_dir: Path, train_file: Path, eval_file: Path, output_dir: Path, steps: int,
                        seed: int, batch_size: int, learning_rate: float) -> dict:
    """Fine-tune ``EncoderForSequenceClassification`` from an MLM run folder (its encoder weights and
    tokenizer; a fresh classification head) with ``Trainer``; returns accuracy and losses."""
    import numpy as np
    import torch
    from transformers import AutoTokenizer, DataCollatorWithPadding, Trainer, TrainingArguments, set_seed

    from w2vformer.modeling.modeling_encoder import EncoderForSequenceClassification
    from w2vformer.training.lm import read_text_examples

    set_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(pretrained_dir)
    train = read_text_examples("classify", [train_file])
    test = read_text_examples("classify", [eval_file])
    label2id = {label: i for i, label in enumerate(sorted({lab for lab, _ in train}))}
    model = EncoderForSequenceClassification.from_pretrained(
        pretrained_dir, num_labels=len(label2id), label2id=label2id, id2label={i: l for l, i in label2id.items()})

    def features(examples):
        enc = tokenizer([t for _, t in examples], truncation=True, max_length=128)
        return [{"input_ids": ids, "labels": label2id[lab]} for ids, (lab, _) in zip(enc["input_ids"], examples)]

    def accuracy(pred):
        logits = pred.predictions[0] if isinstance(pred.predictions, tuple) else pred.predictions
        return {"accuracy": float((np.argmax(logits, -1) == pred.label_ids).mean())}

    args = TrainingArguments(
        output_dir=str(output_dir / "checkpoints"), max_steps=steps, per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=64, learning_rate=learning_rate, warmup_steps=0.05, weight_decay=0.01,
        logging_steps=LOGGING_STEPS, save_strategy="no", eval_strategy="no", seed=seed, data_seed=seed,
        report_to=[], disable_tqdm=True, use_cpu=not torch.cuda.is_available(), dataloader_num_workers=0)
    trainer = Trainer(model=model, args=args, train_dataset=features(train), eval_dataset=features(test),
                      data_collator=DataCollatorWithPadding(tokenizer), compute_metrics=accuracy)
    out = trainer.train()
    ev = trainer.evaluate()
    return {"train_loss": float(out.training_loss), "eval_loss": float(ev["eval_loss"]),
            "accuracy": float(ev["eval_accuracy"]), "steps": int(trainer.state.global_step),
            "log_history": list(trainer.state.log_history)}


def _run(task, train_file, eval_file, tokenizer_dir, output_dir, init, args, seed, steps):
    """One ``train_transformer`` run; returns its record for results.json."""
    from w2vformer.training.lm import train_transformer

    model_config = dict(hidden_size=args.hidden_size, num_attention_heads=args.heads,
                        intermediate_size=4 * args.hidden_size, dropout=0.1)
    model_config.update({"encoder_layers": args.layers, "decoder_layers": args.layers} if task == "seq2seq"
                        else {"num_hidden_layers": args.layers})
    t0 = time.perf_counter()
    result = train_transformer(
        task, [train_file], eval_files=[eval_file], output_dir=output_dir, tokenizer=tokenizer_dir,
        model_config=model_config, init_from_word2vec=init, block_size=args.block_size, max_steps=steps,
        batch_size=args.batch_size, learning_rate=args.lr, logging_steps=LOGGING_STEPS,
        save_steps=max(LOGGING_STEPS, steps // args.evals), seed=seed, progress=False)
    return {"metrics": result.metrics, "wall_s": round(time.perf_counter() - t0, 1),
            "init": result.init_report.to_dict() if result.init_report is not None else "random",
            "log_history": result.log_history}


def _word2vec(files, tokenizer, folder: Path, args, seed: int) -> dict:
    from w2vformer.training.word2vec import train_word2vec

    t0 = time.perf_counter()
    model, _ = train_word2vec(files, tokenizer=tokenizer, objective="skipgram", vector_size=args.hidden_size,
                              window=5, negative=5, min_count=args.w2v_min_count, epochs=args.w2v_epochs, threads=args.threads,
                              seed=seed + 1, output_dir=folder, progress=False)
    return {"dir": str(folder), "wall_s": round(time.perf_counter() - t0, 1), "vocab": int(len(model.token_counts)),
            "trained_tokens": int((model.token_counts > 0).sum())}


# ---------------------------------------------------------------------------------------------------
# Summaries


def smoothed_train_curve(log_history) -> list[tuple[int, float]]:
    """(step, mean of the last ``SMOOTH_LOGS`` logged train losses) at every logging step."""
    points = [(h["step"], h["loss"]) for h in log_history if "loss" in h and "step" in h]
    return [(s, sum(l for _, l in points[max(0, k - SMOOTH_LOGS + 1): k + 1]) / len(points[max(0, k - SMOOTH_LOGS + 1): k + 1]))
            for k, (s, _) in enumerate(points)]


def eval_curve(log_history) -> list[tuple[int, float]]:
    return sorted({h["step"]: h["eval_loss"] for h in log_history if "eval_loss" in h}.items())


def loss_at(curve, step):
    return next((l for s, l in curve if s == step), None)


def steps_to(curve, threshold):
    return None if threshold is None else next((s for s, l in curve if l <= threshold), None)


def _mean_std(values):
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    m = sum(values) / len(values)
    sd = math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return m, sd


def _fmt(values, digits=3):
    """'mean ± sd' over seeds (missing values dropped; 'n/a' when none)."""
    m, sd = _mean_std(values)
    if m is None:
        return "n/a"
    return f"{m:.{digits}f}" + (f" ± {sd:.{digits}f}" if len([v for v in values if v is not None]) > 1 else "")


def summarise(results: dict, args) -> str:
    """The markdown table(s) of results.json."""
    seeds = args.seeds
    lines = []
    steps = results["config"]["steps"]
    check = [s for s in CHECK_STEPS if s <= steps and s % LOGGING_STEPS == 0 and s >= SMOOTH_LOGS * LOGGING_STEPS]
    if steps not in check:
        check.append(steps)
    header = "| family | arm | " + " | ".join(f"train loss @{s}" for s in check) + \
             " | final eval loss | eval ppl | steps to random's final train loss |"
    lines += [header, "|" + " --- |" * (header.count("|") - 1)]
    for task in args.families:
        runs = results["runs"].get(task, {})
        if "random" not in runs:
            continue
        curves = {seed: smoothed_train_curve(runs["random"][str(seed)]["log_history"]) for seed in seeds}
        thresholds = {seed: curve[-1][1] if curve else None for seed, curve in curves.items()}  # None: no log
        for arm in args.arms:
            if arm not in runs:
                continue
            per_seed = [runs[arm][str(seed)] for seed in seeds]
            curves = [smoothed_train_curve(r["log_history"]) for r in per_seed]
            cells = [_fmt([loss_at(c, s) for c in curves]) for s in check]
            ev = [r["metrics"].get("eval_loss") for r in per_seed]
            ppl = [r["metrics"].get("perplexity") for r in per_seed]
            reach = [steps_to(c, thresholds[seed]) for c, seed in zip(curves, seeds)]
            reach_cell = (f"reference (its final: {_fmt(list(thresholds.values()))})" if arm == "random" else
                          _fmt(reach, 0) if all(r is not None for r in reach)
                          else f"not reached in {sum(r is None for r in reach)}/{len(reach)} seeds"
                          + (f"; others {_fmt([r for r in reach if r is not None], 0)}" if any(r is not None for r in reach) else ""))
            lines.append(f"| {task} ({FAMILIES[task][1]}) | {arm} | " + " | ".join(cells) +
                         f" | {_fmt(ev)} | {_fmt(ppl, 1)} | {reach_cell} |")
    cls = results.get("classification") or {}
    if cls.get("runs"):
        lines += ["", f"Old vs New Testament verse classification (balanced: chance = 50%; "
                      f"{cls['n_train']} training verses, {cls['n_eval']} held-out test verses, "
                      f"{cls['steps']} fine-tuning steps), accuracy on the held-out verses:", "",
                  "| encoder start | arm | accuracy | eval loss |", "| --- | --- | --- | --- |"]
        for variant in ("after-mlm", "no-mlm"):
            for arm in args.arms:
                per_seed = [cls["runs"].get(variant, {}).get(arm, {}).get(str(seed)) for seed in seeds]
                if any(r is None for r in per_seed):
                    continue
                what = f"MLM-pretrained ({steps} steps)" if variant == "after-mlm" else "initialisation only (no MLM)"
                lines.append(f"| {what} | {arm} | {_fmt([100 * r['accuracy'] for r in per_seed], 1)}% | "
                             f"{_fmt([r['eval_loss'] for r in per_seed])} |")
    lines += ["", f"Mean ± standard deviation over seeds {', '.join(map(str, seeds))}. Train loss at step s is the "
                  f"mean of the {SMOOTH_LOGS} logged losses (each a {LOGGING_STEPS}-step mean) ending at s. "
                  "\"Steps to random's final train loss\": the first step at which the arm's smoothed train loss is "
                  "at or below the random arm's final smoothed train loss of the same seed."]
    return "\n".join(lines) + "\n"


def plot(results: dict, args, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from w2vformer._io import atomic_write

    families = [t for t in args.families if t in results["runs"]]
    fig, axes = plt.subplots(1, len(families), figsize=(5.2 * len(families), 4.2), squeeze=False)
    colors = {"random": "tab:gray", "w2v": "tab:blue", "w2v-words": "tab:orange"}
    for ax, task in zip(axes[0], families):
        for arm in args.arms:
            for k, seed in enumerate(args.seeds):
                run = results["runs"][task].get(arm, {}).get(str(seed))
                if run is None:
                    continue
                train = smoothed_train_curve(run["log_history"])
                ev = eval_curve(run["log_history"])
                label = arm if k == 0 else None
                ax.plot(*zip(*train), color=colors.get(arm), alpha=0.85, lw=1.2, label=label and f"{label} (train)")
                if ev:
                    ax.plot(*zip(*ev), "o--", color=colors.get(arm), alpha=0.85, ms=4, lw=0.8,
                            label=label and f"{label} (eval)")
        ax.set_title(f"{task} ({FAMILIES[task][1]})")
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"Random vs Word2Vec embeddings ({results['config']['corpus_name']}, hidden "
                 f"{args.hidden_size}, {args.layers} layers, seeds {', '.join(map(str, args.seeds))})", fontsize=10)
    fig.tight_layout()
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def write_outputs(results: dict, args, out: Path) -> str:
    """results.json, table.md and loss_curves.png for the seeds finished so far; returns the table."""
    from w2vformer._io import atomic_write

    done = argparse.Namespace(**{**vars(args), "seeds": sorted(results["seeds_done"])})
    with atomic_write(out / "results.json") as f:
        json.dump(results, f, indent=1, default=str)
    table = summarise(results, done)
    with atomic_write(out / "table.md") as f:
        f.write(table)
    plot(results, done, out / "loss_curves.png")
    return table


def _slim(log_history):
    keep = ("step", "loss", "eval_loss", "eval_accuracy", "train_loss", "learning_rate", "grad_norm")
    return [{k: h[k] for k in keep if k in h} for h in log_history]


# ---------------------------------------------------------------------------------------------------


def _previous_results(path: Path, config: dict) -> dict:
    """An earlier results.json to extend with more seeds; its settings must equal ``config`` (seeds aside)."""
    previous = json.loads(path.read_text())
    ignore = {"seeds", "append", "workdir", "out"}
    diff = {k: (previous["config"].get(k), v) for k, v in config.items()
            if k not in ignore and previous["config"].get(k) != v}
    if diff:
        raise SystemExit(f"--append: {path} was made with other settings (earlier, now): {diff}")
    previous["config"]["seeds"] = sorted(set(previous["config"]["seeds"]) | set(config["seeds"]))
    return previous


def _arms(task: str, args) -> list[str]:
    """The arms that ``task`` runs: the cross-vocabulary one only for ``--cross-families``."""
    return [arm for arm in args.arms if arm != "w2v-words" or task in args.cross_families]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", default="demo-en", help="'demo-en' (the shipped World English Bible) or a text file")
    p.add_argument("--max-lines", type=int, default=None, help="an evenly spaced subset of this many lines")
    p.add_argument("--families", nargs="+", default=list(FAMILIES), choices=list(FAMILIES))
    p.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    p.add_argument("--cross-families", nargs="+", default=["clm"], choices=list(FAMILIES),
                   help="families that also run the cross-vocabulary arm 'w2v-words' (when it is in --arms)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--steps", type=int, default=400, help="optimizer steps per language-model run")
    p.add_argument("--cls-steps", type=int, default=150, help="fine-tuning steps of the classifier (0: skip)")
    p.add_argument("--cls-train", type=int, default=2000, help="classification training verses (balanced)")
    p.add_argument("--cls-eval", type=int, default=800, help="classification test verses (balanced)")
    p.add_argument("--hidden-size", type=int, default=128)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--vocab-size", type=int, default=2000)
    p.add_argument("--block-size", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--evals", type=int, default=4, help="evaluations per run (every steps/evals steps)")
    p.add_argument("--eval-fraction", type=float, default=0.05)
    p.add_argument("--eval-lines", type=int, default=600, help="held-out lines used for the eval loss")
    p.add_argument("--w2v-epochs", type=int, default=5)
    p.add_argument("--w2v-min-count", type=int, default=3)
    p.add_argument("--threads", type=int, default=1,
                   help="torch and Word2Vec threads (on shared cores, 1 was ~10x faster than 2: idle OpenMP threads spin)")
    p.add_argument("--append", action="store_true",
                   help="add the seeds not yet in --out's results.json (the other settings must be the same)")
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "init"))
    p.add_argument("--workdir", default=None, help="run folders (default: a temporary folder, deleted at the end)")
    args = p.parse_args(argv)
    for name in ("threads", "steps", "hidden_size", "layers", "heads", "batch_size", "evals", "eval_lines"):
        if getattr(args, name) < 1:
            raise SystemExit(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.hidden_size % args.heads:
        raise SystemExit(f"--hidden-size {args.hidden_size} is not divisible by --heads {args.heads}")
    if "random" not in args.arms:
        raise SystemExit("--arms must include 'random' (the baseline every other arm is compared with)")
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers.utils import logging as hf_logging

    import w2vformer  # noqa: F401  (registers the model types)
    from w2vformer.tokenization import demo_corpus_path, save_tokenizer, train_tokenizer

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    import torch

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    corpus = demo_corpus_path("en") if args.corpus == "demo-en" else Path(args.corpus)
    if not corpus.is_file():
        raise SystemExit(f"--corpus {str(corpus)!r} is not a file")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    temp_work = args.workdir is None
    work = Path(args.workdir) if args.workdir else Path(__import__("tempfile").mkdtemp(prefix="bench-init-"))
    work.mkdir(parents=True, exist_ok=True)

    all_lines = read_lines(corpus)
    labels = testament_labels(all_lines)  # from the whole corpus: a subset may skip Matthew 1:1 itself
    lines = even_subset(all_lines, args.max_lines)
    files = write_task_files(lines, args.eval_fraction, args.eval_lines, work / "data")
    cls_files = write_classification_files(files, labels, args.cls_train, args.cls_eval, work / "data") \
        if labels and args.cls_steps > 0 and "mlm" in args.families else {}
    if not cls_files and "mlm" in args.families and args.cls_steps > 0:
        print("classification skipped: no Matthew 1:1 in the corpus (or too few verses of a testament)")
    n_words = sum(len(t.split()) for _, t in files["train_rows"])
    print(f"corpus {corpus.name}: {len(lines)} lines; train {files['n_train']} lines ({n_words:,} words), "
          f"held out {files['n_heldout']} (eval loss on {files['n_eval']})", flush=True)

    results = {"config": {**{k: v for k, v in vars(args).items()}, "corpus_name": corpus.name, "corpus": str(corpus),
                          "lines": len(lines), "train_lines": files["n_train"], "train_words": n_words,
                          "heldout_lines": files["n_heldout"], "eval_lines_used": files["n_eval"],
                          "torch_threads": __import__("torch").get_num_threads()},
               "tokenizers": {}, "word2vec": {}, "runs": {}, "classification": {}}
    if args.append and (out / "results.json").exists():
        results = _previous_results(out / "results.json", results["config"])
        print(f"appending to {out / 'results.json'} (seeds done: {results['seeds_done']})")
    train_txt = files["train.txt"]
    task_files = {"mlm": (train_txt, files["eval.txt"]), "clm": (train_txt, files["eval.txt"]),
                  "seq2seq": (files["seq2seq-train.txt"], files["seq2seq-eval.txt"])}

    # one tokenizer per family (its preset), shared by every arm and seed
    tokenizers = {}
    for task in args.families:
        preset = FAMILIES[task][0]
        tok = train_tokenizer([train_txt], preset=preset, vocab_size=args.vocab_size, show_progress=False)
        tokenizers[task] = save_tokenizer(tok, work / f"tokenizer-{task}")
        results["tokenizers"][task] = {"preset": preset, "vocab": len(tok), "model": type(tok.backend_tokenizer.model).__name__}
    word_tok = None
    if any("w2v-words" in _arms(task, args) for task in args.families):
        word_tok = train_tokenizer([train_txt], model="wordlevel", preset="word2vec", min_count=args.w2v_min_count,
                                   show_progress=False)

    from transformers import AutoTokenizer

    for seed in [s for s in args.seeds if s not in results.get("seeds_done", [])]:
        seed_started = time.perf_counter()
        inits = {}
        for task in args.families:
            if "w2v" in args.arms:
                folder = work / f"w2v-{task}-s{seed}"
                tok = AutoTokenizer.from_pretrained(tokenizers[task])
                results["word2vec"][f"{task}/s{seed}"] = _word2vec([train_txt], tok, folder, args, seed)
                inits[(task, "w2v")] = folder
        if word_tok is not None:
            folder = work / f"w2v-words-s{seed}"
            results["word2vec"][f"words/s{seed}"] = _word2vec([train_txt], word_tok, folder, args, seed)
            for task in args.families:
                inits[(task, "w2v-words")] = folder
        print(f"[{time.perf_counter() - started:6.0f}s] seed {seed}: word2vec ready", flush=True)

        for task in args.families:
            for arm in _arms(task, args):
                run_dir = work / "runs" / f"{task}-{arm}-s{seed}"
                rec = _run(task, *task_files[task], tokenizers[task], run_dir, inits.get((task, arm)), args, seed,
                           args.steps)
                rec["log_history"] = _slim(rec["log_history"])
                results["runs"].setdefault(task, {}).setdefault(arm, {})[str(seed)] = rec
                print(f"[{time.perf_counter() - started:6.0f}s] {task} {arm} seed {seed}: "
                      f"eval loss {rec['metrics'].get('eval_loss', float('nan')):.3f} ({rec['wall_s']} s)", flush=True)

        if cls_files:
            cls = results["classification"]
            cls.update(steps=args.cls_steps, n_train=cls_files["n_train"], n_eval=cls_files["n_eval"])
            for arm in _arms("mlm", args):
                # fine-tuned from this arm's MLM-pretrained encoder
                rec = finetune_classifier(work / "runs" / f"mlm-{arm}-s{seed}", cls_files["train"], cls_files["eval"],
                                          work / "runs" / f"cls-after-mlm-{arm}-s{seed}", args.cls_steps, seed,
                                          args.batch_size, args.lr / 2)
                rec["log_history"] = _slim(rec["log_history"])
                cls.setdefault("runs", {}).setdefault("after-mlm", {}).setdefault(arm, {})[str(seed)] = rec
                # straight from the initialisation: train_transformer("classify") with the same tokenizer
                from w2vformer.training.lm import train_transformer

                model_config = dict(hidden_size=args.hidden_size, num_attention_heads=args.heads,
                                    intermediate_size=4 * args.hidden_size, num_hidden_layers=args.layers, dropout=0.1)
                r = train_transformer("classify", [cls_files["train"]], eval_files=[cls_files["eval"]],
                                      output_dir=work / "runs" / f"cls-no-mlm-{arm}-s{seed}", tokenizer=tokenizers["mlm"],
                                      model_config=model_config, init_from_word2vec=inits.get(("mlm", arm)),
                                      max_steps=args.cls_steps, batch_size=args.batch_size, learning_rate=args.lr / 2,
                                      logging_steps=LOGGING_STEPS, save_steps=10 ** 9, seed=seed, progress=False)
                cls["runs"].setdefault("no-mlm", {}).setdefault(arm, {})[str(seed)] = {
                    "accuracy": r.metrics["accuracy"], "eval_loss": r.metrics["eval_loss"],
                    "train_loss": r.metrics["train_loss"], "log_history": _slim(r.log_history)}
                print(f"[{time.perf_counter() - started:6.0f}s] classify {arm} seed {seed}: accuracy after MLM "
                      f"{rec['accuracy']:.3f}, without MLM {r.metrics['accuracy']:.3f}", flush=True)

        # written after every seed, so that a cut-off run keeps the seeds it finished
        results.setdefault("seed_wall_s", {})[str(seed)] = round(time.perf_counter() - seed_started, 1)
        results["seeds_done"] = results.get("seeds_done", []) + [seed]
        write_outputs(results, args, out)
    table = write_outputs(results, args, out)  # also when --append found every seed done: redraws with this code
    print(table)
    print(f"total {time.perf_counter() - started:.0f} s; results in {out}")
    if temp_work:
        shutil.rmtree(work, ignore_errors=True)
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
