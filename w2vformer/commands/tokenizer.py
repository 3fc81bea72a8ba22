"""``w2vformer tokenizer``: train a tokenizer on text files, show what a saved tokenizer does.

    w2vformer tokenizer train corpus.txt --for decoder --model bpe --vocab-size 8000 --output out/tok
    w2vformer tokenizer show out/tok "In the beginning"
"""

from __future__ import annotations

import argparse

from w2vformer.tokenization.presets import MODELS, PRESETS  # plain data: no tokenizers/transformers import


def register(subparsers) -> None:
    group = subparsers.add_parser(
        "tokenizer", help="train a tokenizer or show how one splits text", description=__doc__.split("\n")[0]
    )
    group.set_defaults(_group_parser=group)
    sub = group.add_subparsers(dest="tokenizer_command", metavar="COMMAND")

    train = sub.add_parser(
        "train",
        help="train a tokenizer on text files and save it (transformers format)",
        description="Train a tokenizer on UTF-8 text files (plain or .gz) and save it with save_pretrained, "
        "so that AutoTokenizer.from_pretrained(OUTPUT) loads it. Default model per preset: word2vec -> "
        "wordlevel, encoder -> wordpiece, decoder -> bpe (byte-level), seq2seq -> bpe.",
    )
    train.add_argument("files", nargs="+", metavar="FILE", help="UTF-8 text files (plain or gzip)")
    train.add_argument("--output", "-o", required=True, metavar="DIR", help="folder to write the tokenizer into")
    train.add_argument(
        "--for", dest="preset", default="word2vec", choices=tuple(PRESETS),
        help="architecture the tokenizer is for: sets the special tokens and their ids (default: word2vec)",
    )
    train.add_argument("--model", choices=MODELS, default=None, help="tokenizer model (default: the preset's)")
    train.add_argument(
        "--vocab-size", type=int, default=None, metavar="N",
        help="largest vocabulary, special tokens included (default: 8000; no cap for wordlevel)",
    )
    train.add_argument(
        "--min-count", type=int, default=None, metavar="N",
        help="least frequency of a word (wordlevel, default 5) or a merge (bpe/wordpiece, default 2)",
    )
    train.add_argument("--lowercase", action="store_true", help="lowercase the text")
    train.add_argument(
        "--nfkc", action=argparse.BooleanOptionalAction, default=None,
        help="NFKC normalisation (default: on, except for byte-level bpe which stays lossless)",
    )
    train.add_argument("--strip-accents", action="store_true", help="remove accents (e -> e)")
    train.add_argument(
        "--cjk", choices=("auto", "split", "keep"), default="auto",
        help="split CJK ideographs into one token each, or keep space-separated words (default: auto-detect)",
    )
    train.add_argument("--model-max-length", type=int, default=None, metavar="N", help="truncation limit to store")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(func=_train)

    show = sub.add_parser(
        "show",
        help="print the tokens and ids a saved tokenizer gives for some text",
        description="Load a tokenizer folder with AutoTokenizer and print, for TEXT, each token with its id "
        "and the text piece it stands for, then the decoded text.",
    )
    show.add_argument("tokenizer", metavar="DIR", help="tokenizer folder (from `w2vformer tokenizer train`)")
    show.add_argument("text", metavar="TEXT", help="text to tokenize")
    show.add_argument("pair", metavar="PAIR", nargs="?", default=None, help="optional second text (a pair)")
    show.add_argument("--no-special", action="store_true", help="do not add special tokens")
    show.set_defaults(func=_show)


def _train(args) -> int:
    from w2vformer.tokenization import save_tokenizer, train_tokenizer

    tok = train_tokenizer(
        args.files,
        model=args.model,
        vocab_size=args.vocab_size,
        preset=args.preset,
        min_count=args.min_count,
        lowercase=args.lowercase,
        nfkc=args.nfkc,
        strip_accents=args.strip_accents,
        cjk=args.cjk,
        model_max_length=args.model_max_length,
        show_progress=not args.quiet,
    )
    out = save_tokenizer(tok, args.output)
    model = type(tok.backend_tokenizer.model).__name__
    print(f"saved a {model} tokenizer for {args.preset!r} with {len(tok):,d} entries to {out}")
    return 0


def _show(args) -> int:
    from pathlib import Path

    from transformers import AutoTokenizer

    folder = Path(args.tokenizer)
    if not (folder / "tokenizer.json").is_file():
        raise FileNotFoundError(f"{str(folder)!r} has no tokenizer.json; pass a folder written by `w2vformer tokenizer train`")
    tok = AutoTokenizer.from_pretrained(folder)
    enc = tok(args.text, args.pair, add_special_tokens=not args.no_special)
    ids = enc["input_ids"]
    tokens = tok.convert_ids_to_tokens(ids)
    types = enc.get("token_type_ids")
    print(f"{len(ids)} tokens")
    print(f"{'id':>7}  {'token':<20} text")
    for i, (idx, token) in enumerate(zip(ids, tokens)):
        piece = tok.decode([idx], clean_up_tokenization_spaces=False)
        extra = f"  (type {types[i]})" if types is not None and args.pair is not None else ""
        print(f"{idx:>7}  {token:<20} {piece!r}{extra}")
    print(f"ids: {ids}")
    print(f"decoded: {tok.decode(ids)!r}")
    return 0
