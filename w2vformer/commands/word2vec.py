"""``w2vformer word2vec``: train Word2Vec on text files, query and evaluate the vectors.

    w2vformer word2vec train corpus.txt.gz --objective skipgram --output runs/w2v
    w2vformer word2vec query runs/w2v king - man + woman
    w2vformer word2vec evaluate runs/w2v --analogies questions-words.txt --pairs wordsim353.tsv
"""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    group = subparsers.add_parser(
        "word2vec",
        help="train Word2Vec (skip-gram / CBOW) and query or evaluate word vectors",
        description="Train Word2Vec on text files with the fast numba path, then query or evaluate the vectors.",
    )
    group.set_defaults(_group_parser=group)
    sub = group.add_subparsers(dest="word2vec_command", metavar="COMMAND")

    train = sub.add_parser(
        "train",
        help="train Word2Vec on text files (one sentence per line, .gz allowed)",
        description="Train Word2Vec with word2vec's per-pair SGD (numba kernels on CPU threads, or a Triton kernel "
        "on a GPU when one is present; Hogwild either way) and save a "
        "checkpoint folder (config.json, model.safetensors, tokenizer) that AutoModel.from_pretrained loads.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    train.add_argument("corpus", nargs="+", metavar="CORPUS", help="text files, one sentence per line (.gz allowed)")
    train.add_argument("--output", "-o", required=True, metavar="DIR", help="checkpoint folder to write")
    train.add_argument("--objective", choices=["skipgram", "cbow"], default="skipgram")
    train.add_argument("--loss", choices=["negative_sampling", "hierarchical_softmax"], default="negative_sampling")
    train.add_argument("--vector-size", type=int, default=100, help="dimension of the word vectors")
    train.add_argument("--window", type=int, default=5, help="maximum distance between center and context word")
    train.add_argument("--negative", type=int, default=5, help="negatives per positive (negative sampling)")
    train.add_argument("--sample", type=float, default=1e-3, help="subsampling threshold of frequent words (0: off)")
    train.add_argument("--min-count", type=int, default=5, help="drop words seen fewer times than this")
    train.add_argument("--epochs", type=int, default=5)
    train.add_argument("--alpha", type=float, default=None,
                       help="initial learning rate (default: 0.05, chosen by quality; gensim uses 0.025)")  # fmt: skip
    train.add_argument("--min-alpha", type=float, default=1e-4, help="final learning rate")
    train.add_argument("--threads", type=int, default=2, help="worker threads (CPU)")
    train.add_argument("--device", default="auto",
                       help="'auto' (a GPU when present and Triton is installed, else the CPU), 'cpu', 'cuda' or 'cuda:N'")  # fmt: skip
    train.add_argument("--seed", type=int, default=1)
    train.add_argument("--cbow-sum", action="store_true", help="CBOW: sum the context vectors instead of averaging")
    train.add_argument("--no-shrink-windows", action="store_true", help="always use the full window")
    train.add_argument("--ns-exponent", type=float, default=0.75, help="exponent of the negative-sampling distribution")
    train.add_argument("--tokenizer", metavar="DIR", default=None,
                       help="use this tokenizer (a folder AutoTokenizer loads; e.g. BPE for subword Word2Vec) "
                       "instead of a word-level vocabulary built with --min-count")  # fmt: skip
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.set_defaults(func=_train)

    query = sub.add_parser(
        "query",
        help="nearest neighbours of a word, or an analogy: king - man + woman",
        description="Print the nearest words (cosine similarity) to a word, or to an expression of words "
        "joined by + and -, e.g. `king - man + woman`.",
    )
    query.add_argument("model", metavar="DIR", help="a Word2Vec checkpoint folder")
    query.add_argument("expression", nargs="+", metavar="WORD", help="a word, or words joined by + and -")
    query.add_argument("--topn", type=int, default=10, help="how many neighbours to print")
    query.set_defaults(func=_query)

    evaluate = sub.add_parser(
        "evaluate",
        help="analogy accuracy and word-pair correlation (gensim's questions-words.txt / wordsim353.tsv by default)",
        description="Evaluate word vectors on word analogies (accuracy) and word-pair similarity (Spearman). "
        "Without --analogies / --pairs, gensim's test files are used when gensim is installed.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    evaluate.add_argument("model", metavar="DIR", help="a Word2Vec checkpoint folder")
    evaluate.add_argument("--analogies", metavar="PATH", default=None, help="questions-words format file")
    evaluate.add_argument("--pairs", metavar="PATH", default=None, help="word1<TAB>word2<TAB>score file")
    evaluate.add_argument("--restrict-vocab", type=int, default=30000,
                          help="only the most frequent words are candidates for analogies")  # fmt: skip
    evaluate.set_defaults(func=_evaluate)


def _train(args) -> int:
    from w2vformer._io import check_input_files
    from w2vformer.training.word2vec import train_word2vec

    files = check_input_files(args.corpus)
    tokenizer = None
    if args.tokenizer is not None:
        from pathlib import Path

        from transformers import AutoTokenizer

        if not Path(args.tokenizer).is_dir():
            raise FileNotFoundError(f"tokenizer folder {args.tokenizer!r} does not exist; pass a saved tokenizer folder")
        tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    # return_model=False: train and save without importing torch or transformers (with a word-level
    # vocabulary), so the process holds only numpy, numba, the corpus and the vectors
    s = train_word2vec(
        [str(f) for f in files], tokenizer=tokenizer, objective=args.objective, vector_size=args.vector_size,
        window=args.window, negative=args.negative, loss=args.loss, sample=args.sample, min_count=args.min_count,
        epochs=args.epochs, alpha=args.alpha, min_alpha=args.min_alpha, threads=args.threads, seed=args.seed,
        cbow_mean=not args.cbow_sum, shrink_windows=not args.no_shrink_windows, ns_exponent=args.ns_exponent,
        output_dir=args.output, progress=not args.no_progress, return_model=False, device=args.device,
    )  # fmt: skip
    print(
        f"trained {args.objective} on {s['raw_words']:,} words x {s['epochs']} epochs in {s['train_seconds']:.1f} s "
        f"({s['words_per_second']:,.0f} words/s on {s['device']}); vocabulary {s['vocab_size']:,}; saved to {args.output}"
    )
    return 0


def _load_vectors(folder):
    from pathlib import Path

    from w2vformer.keyedvectors import WordVectors

    if not Path(folder).is_dir():
        raise FileNotFoundError(f"model folder {str(folder)!r} does not exist; pass a folder written by `word2vec train`")
    return WordVectors.from_pretrained(folder)


def parse_expression(tokens: list[str]) -> tuple[list[str], list[str]]:
    """``["king", "-", "man", "+", "woman"]`` (or ``["king", "-man", "+woman"]``) -> (positive, negative)."""
    positive, negative = [], []
    sign = +1
    for tok in " ".join(tokens).replace("+", " + ").replace(" -", " - ").split():
        if tok in ("+", "-"):
            sign = +1 if tok == "+" else -1
            continue
        (positive if sign > 0 else negative).append(tok)
        sign = +1
    if not positive and not negative:
        raise ValueError(f"no words in the query {' '.join(tokens)!r}; give a word or e.g. 'king - man + woman'")
    return positive, negative


def _query(args) -> int:
    if args.topn < 1:
        raise ValueError(f"--topn must be >= 1, got {args.topn}")
    wv = _load_vectors(args.model)
    positive, negative = parse_expression(args.expression)
    missing = [w for w in positive + negative if w not in wv.key_to_index]
    if missing:
        raise KeyError(f"not in the vocabulary: {', '.join(repr(w) for w in missing)}; check the spelling or min_count")
    for word, score in wv.most_similar(positive=positive, negative=negative, topn=args.topn):
        print(f"{word}\t{score:.4f}")
    return 0


def _gensim_test_file(name: str, option: str) -> str:
    try:
        from gensim.test.utils import datapath
    except ImportError:
        raise ValueError(
            f"no {option} file given and gensim (which ships {name}) is not installed; pass {option} PATH "
            "or pip install gensim"
        ) from None
    return datapath(name)


def _evaluate(args) -> int:
    from pathlib import Path

    wv = _load_vectors(args.model)
    analogies = args.analogies or _gensim_test_file("questions-words.txt", "--analogies")
    pairs = args.pairs or _gensim_test_file("wordsim353.tsv", "--pairs")
    for path, option in ((analogies, "--analogies"), (pairs, "--pairs")):
        if not Path(path).is_file():
            raise FileNotFoundError(f"{option} file {str(path)!r} does not exist; check the path")
    score, _sections = wv.evaluate_word_analogies(analogies, restrict_vocab=args.restrict_vocab)
    print(f"analogy accuracy\t{score:.4f}\t({Path(analogies).name}, restrict_vocab={args.restrict_vocab})")
    _pearson, spearman, oov_ratio = wv.evaluate_word_pairs(pairs)
    print(f"word pairs spearman\t{float(spearman[0]):.4f}\t({Path(pairs).name}, oov {oov_ratio:.1f}%)")
    return 0
