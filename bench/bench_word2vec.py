"""Word2Vec speed and quality: w2vformer's fast path against gensim 4.4, side by side in one run.

    python bench/bench_word2vec.py                       # the shared corpus, 5 epochs, skip-gram and CBOW
    python bench/bench_word2vec.py --quick               # a ~1M-word subset, 1 epoch (smoke run)
    python bench/bench_word2vec.py --iterable            # also gensim's iterable-of-sentences mode
    python bench/bench_word2vec.py --gpu                 # also ours on the GPU (the Triton kernel)

Every system runs in its own child process (one at a time), on the same plain-text copy of the corpus, with
the same options (vector_size 100, window 5, negative 5, sample 1e-3, min_count 5, 2 threads): gensim in
``corpus_file`` mode (and optionally with an iterable of sentences), and ``w2vformer.train_word2vec``
(``device="cpu"``; with ``--gpu`` also ``device="cuda"``, whose train s includes moving the corpus and the
vectors to the GPU and back, and whose row adds the GPU's peak memory).

What is measured, the same way for every system:
- vocab s: building the vocabulary (gensim ``build_vocab``; ours: reading + counting + encoding to ids, and
  saving the checkpoint folder).
- train s: the training call alone. words/s = epochs x raw corpus words / train s, where raw words are all
  whitespace-separated tokens of the corpus (before min_count and subsampling), as gensim and word2vec count.
- peak RSS: the child's ``ru_maxrss`` after training (ours: training and saving the checkpoint folder, as the
  CLI does, with ``return_model=False``: no torch or transformers in the process), before evaluation; imports:
  ``ru_maxrss`` once the libraries are loaded, before the corpus is read; working = peak - imports.
- analogy: gensim's ``evaluate_word_analogies(questions-words.txt, restrict_vocab=30000)``; wordsim353:
  Spearman of ``evaluate_word_pairs(wordsim353.tsv)``; both through gensim's ``KeyedVectors`` for every
  system (ours: the checkpoint's vectors without the special tokens, listed in gensim's vocabulary order so
  that restrict_vocab keeps the same 30000 words for both).

The table is printed and written to ``bench/results/word2vec.md`` with the date, the machine and the load.
The machine may be shared: compare ratios measured in the same run.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

DEFAULT_CORPUS = "/work/shared/data/corpus-en.txt.gz"
RESULTS = Path(__file__).resolve().parent / "results" / "word2vec.md"
OPTIONS = dict(vector_size=100, window=5, negative=5, sample=1e-3, min_count=5)


# --------------------------------------------------------------------------------------------------
# Child processes: one system, one objective
# --------------------------------------------------------------------------------------------------


def _evaluate(keyed_vectors) -> dict:
    from gensim.test.utils import datapath

    analogy = keyed_vectors.evaluate_word_analogies(datapath("questions-words.txt"), restrict_vocab=30000)[0]
    spearman = keyed_vectors.evaluate_word_pairs(datapath("wordsim353.tsv"))[1][0]
    return {"analogy": float(analogy), "wordsim353": float(spearman)}


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def run_gensim(corpus: str, objective: str, epochs: int, threads: int, mode: str, seed: int) -> dict:
    from gensim.models import Word2Vec
    from gensim.models.word2vec import LineSentence

    model = Word2Vec(sg=int(objective == "skipgram"), workers=threads, epochs=epochs, seed=seed, **OPTIONS)
    base = _peak_rss_mb()  # after the imports: the process's fixed cost
    t0 = time.perf_counter()
    if mode == "corpus_file":
        model.build_vocab(corpus_file=corpus)
    else:
        model.build_vocab(LineSentence(corpus))
    t1 = time.perf_counter()
    if mode == "corpus_file":
        model.train(corpus_file=corpus, total_words=model.corpus_total_words, epochs=epochs)
    else:
        model.train(LineSentence(corpus), total_examples=model.corpus_count, epochs=epochs)
    t2 = time.perf_counter()
    rss = _peak_rss_mb()
    raw = model.corpus_total_words
    return {"vocab_s": t1 - t0, "train_s": t2 - t1, "raw_words": raw, "vocab_size": len(model.wv),
            "alpha": model.alpha, "peak_rss_mb": rss, "base_rss_mb": base, **_evaluate(model.wv)}  # fmt: skip


def run_ours(corpus: str, objective: str, epochs: int, threads: int, seed: int, device: str = "cpu") -> dict:
    import numpy as np

    from w2vformer.training.word2vec import train_word2vec

    # As `w2vformer word2vec train` runs it: train and save with return_model=False, which never imports
    # torch or transformers on the CPU. Load (or compile: numba's on-disk cache, Triton's) the kernels before timing.
    with tempfile.TemporaryDirectory(prefix="bench-w2v-ours-") as tmp:
        train_word2vec(iter([["warm", "up", "the", "kernels"]] * 4), objective=objective, epochs=1, threads=1,
                       progress=False, output_dir=f"{tmp}/warmup", return_model=False, device=device,
                       **dict(OPTIONS, min_count=1))  # fmt: skip
        base = _peak_rss_mb()  # after the imports (numpy, numba, tokenizers, safetensors): the fixed cost
        t0 = time.perf_counter()
        stats = train_word2vec([corpus], objective=objective, epochs=epochs, threads=threads, progress=False,
                               seed=seed, output_dir=f"{tmp}/model", return_model=False, device=device, **OPTIONS)  # fmt: skip
        total = time.perf_counter() - t0
        rss = _peak_rss_mb()  # training and saving the checkpoint folder included
        gpu = {}
        if device == "cpu":
            assert "torch" not in sys.modules and "transformers" not in sys.modules
        else:
            import torch

            gpu = {"gpu_peak_mb": torch.cuda.max_memory_allocated() / 2**20, "gpu": torch.cuda.get_device_name()}
        from gensim.models import KeyedVectors  # after the memory reading: gensim is only the evaluator here

        from w2vformer import WordVectors

        wv = WordVectors.from_pretrained(f"{tmp}/model")
        alpha = json.loads(Path(f"{tmp}/model/config.json").read_text())["alpha"]
    # restrict_vocab=30000 keeps the first 30000 keys: list ours in gensim's vocabulary order, so both systems
    # answer the same questions (the orders differ among words of equal count: ours keeps first-seen order,
    # gensim's argsort does not, and on corpus-en that moves 820 of the 30000 words and 90 questions)
    order = _gensim_vocab_order(corpus)
    ours = {key: i for i, key in enumerate(wv.index_to_key)}
    in_order = set(order)
    keys = [k for k in order if k in ours] + [k for k in wv.index_to_key if k not in in_order]
    kv = KeyedVectors(wv.vector_size)
    kv.add_vectors(keys, np.asarray(wv.vectors)[[ours[k] for k in keys]])
    return {"vocab_s": total - stats["train_seconds"], "train_s": stats["train_seconds"],
            "raw_words": stats["raw_words"], "vocab_size": len(wv), "alpha": alpha,
            "peak_rss_mb": rss, "base_rss_mb": base, **gpu, **_evaluate(kv)}  # fmt: skip


def _gensim_vocab_order(corpus: str) -> list[str]:
    """gensim's vocabulary of ``corpus`` with the benchmark's min_count, in its index order."""
    from gensim.models import Word2Vec

    model = Word2Vec(vector_size=8, min_count=OPTIONS["min_count"], workers=1)
    model.build_vocab(corpus_file=corpus)
    return list(model.wv.index_to_key)


def _child(args) -> None:
    if args.system in ("ours", "ours:cuda"):
        device = "cuda" if args.system == "ours:cuda" else "cpu"
        result = run_ours(args.corpus, args.objective, args.epochs, args.threads, args.seed, device)
    else:
        result = run_gensim(args.corpus, args.objective, args.epochs, args.threads, args.system.split(":")[1], args.seed)
    print("RESULT " + json.dumps(result), flush=True)


# --------------------------------------------------------------------------------------------------
# Parent: prepare the corpus, run every system, print and save the table
# --------------------------------------------------------------------------------------------------


def _plain_copy(corpus: str, out: Path, max_words: int | None) -> int:
    """Write ``corpus`` (plain or .gz) as plain text to ``out`` (gensim's corpus_file needs plain text);
    stop after ``max_words`` words. Returns the number of words written."""
    opener = gzip.open if corpus.endswith(".gz") else open
    words = 0
    with opener(corpus, "rt", encoding="utf-8") as src, open(out, "w", encoding="utf-8") as dst:
        for line in src:
            dst.write(line)
            words += len(line.split())
            if max_words is not None and words >= max_words:
                break
    return words


def _run_child(system: str, objective: str, corpus: Path, epochs: int, threads: int, seed: int) -> dict:
    cmd = [sys.executable, __file__, "--child", "--system", system, "--objective", objective, "--corpus", str(corpus),
           "--epochs", str(epochs), "--threads", str(threads), "--seed", str(seed)]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{system} {objective} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    result = json.loads(lines[-1][len("RESULT "):])
    result.update(system=system, objective=objective, epochs=epochs, seed=seed, child_wall_s=wall)
    result["words_per_s"] = epochs * result["raw_words"] / result["train_s"]
    return result


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.node()}: {cpu}, {os.cpu_count()} CPUs visible, Python {platform.python_version()}"


def _table(results: list[dict]) -> str:
    """One row per run (ratios against gensim corpus_file's run with the same objective and seed), then one
    mean row per system and objective (ratios of the means; speed: the median of the per-seed ratios)."""
    ref = {(r["objective"], r["seed"]): r for r in results if r["system"] == "gensim:corpus_file"}
    names = {"gensim:corpus_file": "gensim 4.4 corpus_file", "gensim:iterable": "gensim 4.4 iterable",
             "ours": "w2vformer train_word2vec", "ours:cuda": "w2vformer train_word2vec GPU"}  # fmt: skip
    head = ("| system | objective | seed | alpha | vocab s | train s | words/s | speed vs gensim corpus_file "
            "| peak RSS MB | RSS vs gensim | imports MB | working MB | working vs gensim | analogy | wordsim353 |")  # fmt: skip
    rows = [head, "|" + " --- |" * 15]

    def row(r, g, seed, speed):
        mem = f"{r['peak_rss_mb'] / g['peak_rss_mb']:.2f}x" if g else "-"
        work = r["peak_rss_mb"] - r["base_rss_mb"]
        work_ratio = f"{work / (g['peak_rss_mb'] - g['base_rss_mb']):.2f}x" if g else "-"
        name = names[r["system"]] + (f" ({r['gpu']}; GPU peak {r['gpu_peak_mb']:.0f} MB)" if "gpu_peak_mb" in r else "")
        return (
            f"| {name} | {r['objective']} | {seed} | {r['alpha']:g} | {r['vocab_s']:.1f} "
            f"| {r['train_s']:.1f} | {r['words_per_s']:,.0f} | {speed} | {r['peak_rss_mb']:.0f} | {mem} "
            f"| {r['base_rss_mb']:.0f} | {work:.0f} | {work_ratio} | {r['analogy']:.3f} | {r['wordsim353']:.3f} |"
        )

    for r in results:
        g = ref.get((r["objective"], r["seed"]))
        rows.append(row(r, g, r["seed"], f"{r['words_per_s'] / g['words_per_s']:.2f}x" if g else "-"))
    groups: dict = {}
    for r in results:
        groups.setdefault((r["system"], r["objective"]), []).append(r)
    if all(len(runs) > 1 for runs in groups.values()):
        means = {}
        for key, runs in groups.items():
            means[key] = {k: sum(r[k] for r in runs) / len(runs) for k in ("vocab_s", "train_s", "words_per_s",
                          "peak_rss_mb", "base_rss_mb", "analogy", "wordsim353")}  # fmt: skip
            means[key].update(system=key[0], objective=key[1], alpha=runs[0]["alpha"])
        for (system, objective), m in means.items():
            g = means.get(("gensim:corpus_file", objective))
            ratios = sorted(r["words_per_s"] / ref[(objective, r["seed"])]["words_per_s"]
                            for r in groups[(system, objective)] if (objective, r["seed"]) in ref)  # fmt: skip
            speed = f"{statistics.median(ratios):.2f}x" if ratios else "-"
            rows.append(row(m, g, "**mean**", speed).replace(f"| {names[system]} |", f"| **{names[system]}** |", 1))
    return "\n".join(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default=DEFAULT_CORPUS, help="text corpus, one sentence per line (.gz allowed)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs (default 5; 1 with --quick)")
    parser.add_argument("--threads", type=int, default=2, help="worker threads for every system")
    parser.add_argument("--objectives", nargs="+", default=["skipgram", "cbow"], choices=["skipgram", "cbow"])
    parser.add_argument("--quick", action="store_true", help="a ~1M-word subset and 1 epoch: a smoke run")
    parser.add_argument("--iterable", action="store_true", help="also run gensim with an iterable of sentences")
    parser.add_argument("--gpu", action="store_true", help="also run ours with device='cuda' (the Triton kernel)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3],
                        help="seeds: every system runs once per seed; the table adds each system's mean")  # fmt: skip
    parser.add_argument("--output", default=str(RESULTS), help="markdown file for the table ('' to skip)")
    # internal: run one system in this (child) process
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--system", help=argparse.SUPPRESS)
    parser.add_argument("--objective", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args)
        return 0
    if not Path(args.corpus).is_file():
        raise SystemExit(f"corpus {args.corpus!r} does not exist; pass --corpus PATH")
    epochs = args.epochs or (1 if args.quick else 5)
    systems = ["gensim:corpus_file", "ours"] + (["gensim:iterable"] if args.iterable else []) + (["ours:cuda"] if args.gpu else [])
    started = datetime.now(timezone.utc)
    load_before = os.getloadavg()
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-w2v-") as tmp:
        plain = Path(tmp) / "corpus.txt"
        n_words = _plain_copy(args.corpus, plain, 1_000_000 if args.quick else None)
        print(f"corpus: {args.corpus} ({n_words:,} words), {epochs} epochs, {args.threads} threads", flush=True)
        for objective in args.objectives:
            for seed, system in [(seed, system) for seed in args.seeds for system in systems]:
                r = _run_child(system, objective, plain, epochs, args.threads, seed)
                print(f"  {system:20s} {objective:9s} seed {seed}  train {r['train_s']:7.1f} s  {r['words_per_s']:>10,.0f} words/s  "
                      f"rss {r['peak_rss_mb']:6.0f} MB  analogy {r['analogy']:.3f}  wordsim353 {r['wordsim353']:.3f}",
                      flush=True)  # fmt: skip
                results.append(r)
    table = _table(results)
    print()
    print(table)
    if args.output:
        from w2vformer._io import atomic_write

        text = (
            f"# Word2Vec: w2vformer vs gensim\n\n"
            f"Run {started:%Y-%m-%d %H:%M} UTC on {_machine()}; load average {load_before[0]:.1f} before, "
            f"{os.getloadavg()[0]:.1f} after (a shared machine: compare the ratios, which come from one run).\n\n"
            f"Command: `python bench/bench_word2vec.py {' '.join(argv if argv is not None else sys.argv[1:])}`  \n"
            f"Corpus: {args.corpus} ({n_words:,} words{', first ~1M words' if args.quick else ''}), {epochs} epochs, "
            f"{args.threads} threads, vector_size 100, window 5, negative 5, sample 1e-3, min_count 5.  \n"
            "words/s = epochs x raw corpus words / training seconds (raw: every whitespace token, before min_count "
            "and subsampling). vocab s: gensim build_vocab / our read + count + encode + save. Peak RSS: each system's own "
            "child process after training; imports: its peak RSS once the libraries are loaded, before the corpus "
            "is read (gensim: gensim + scipy + numpy; ours: numpy + numba and its kernels + tokenizers + safetensors); working = "
            "peak - imports, the memory the corpus and the model take. Quality through gensim's evaluators for every system: analogy = "
            "questions-words.txt with restrict_vocab=30000 (ours listed in gensim's vocabulary order, so the same 30000 words "
            "and questions for both), wordsim353 = Spearman.\n\n"
            f"{table}\n"
        )
        with atomic_write(args.output) as f:
            f.write(text)
        print(f"\nwritten to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
