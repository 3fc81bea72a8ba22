"""``w2vformer quickstart``: the seed note's whole path (tokens -> Word2Vec -> attention) in one run."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser(
        "quickstart", help="the whole path in one command, on the corpus shipped with the package",
        description="Train a tokenizer, Word2Vec (nearest neighbours, an analogy), then a small decoder and encoder "
                    "whose embeddings start from the Word2Vec vectors; generate text, reload everything through "
                    "the Auto classes, draw attention maps, word vectors and loss curves. A few minutes on 2 cores.")
    p.add_argument("--lang", choices=["en", "zh"], default="en", help="the shipped corpus: English or Chinese (en)")
    p.add_argument("--output", "-o", default="quickstart-out", help="output folder (quickstart-out)")
    p.add_argument("--quick", action="store_true", help="a smoke run: first 3,000 lines, 1 epoch, 30 steps")
    p.add_argument("--max-lines", type=int, help="use only the first N lines of the corpus")
    p.add_argument("--steps", type=int, help="training steps for each transformer (300; --quick 30)")
    p.add_argument("--seed", type=int, default=0, help="random seed (0)")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from w2vformer.quickstart import run_quickstart

    run_quickstart(args.output, lang=args.lang, quick=args.quick, max_lines=args.max_lines, steps=args.steps,
                   seed=args.seed)
    return 0
