"""``w2vformer convert``: word-vector files and stock transformers checkpoints in and out.

    w2vformer convert vectors GoogleNews-vectors-negative300.bin w2v/ --limit 200000
    w2vformer convert vectors w2v/ vectors.txt --to word2vec-txt --fp16
    w2vformer convert from-transformers bert-tiny/ encoder/
    w2vformer convert to-transformers encoder/ bert-again/
"""

from __future__ import annotations

FORMAT_HELP = "word2vec-bin, word2vec-txt, glove, fasttext (.vec) or w2vformer (a checkpoint folder)"


def register(sub) -> None:
    group = sub.add_parser("convert", help="convert word vectors and stock transformers checkpoints",
                           description="Convert word-vector files and checkpoint folders.")
    group.set_defaults(_group_parser=group)
    cmds = group.add_subparsers(dest="convert_command", metavar="KIND")

    p = cmds.add_parser("vectors", help="between word-vector formats and Word2Vec checkpoint folders",
                        description="Convert word vectors between formats: " + FORMAT_HELP + ". A w2vformer "
                        "output is a Word2VecModel checkpoint with a WordLevel tokenizer ([PAD]=0, [UNK]=1, then the "
                        "file's words in order). Formats are guessed from headers and extensions when not given.")
    p.add_argument("input", metavar="IN", help="vector file or checkpoint folder")
    p.add_argument("output", metavar="OUT", help="output file, or folder for w2vformer")
    p.add_argument("--from", dest="from_format", metavar="FORMAT", help=f"input format ({FORMAT_HELP})")
    p.add_argument("--to", dest="to_format", metavar="FORMAT", help="output format (same choices)")
    p.add_argument("--fp16", action="store_true",
                   help="float16: in a checkpoint, float16 weights; in text formats, values rounded to float16 "
                        "written with fewer digits (not available for word2vec-bin)")
    p.add_argument("--limit", type=int, metavar="N", help="convert only the first N vectors")
    p.add_argument("--unicode-errors", choices=("strict", "replace", "ignore"), default="strict",
                   help="what to do with words that are not UTF-8 (strict: error)")
    p.add_argument("--vocab", metavar="FILE",
                   help="'word count' lines (word2vec -save-vocab, gensim fvocab): read as the real counts when "
                        "converting into a checkpoint, written from the checkpoint's counts when converting out of one")
    p.add_argument("--special-tokens", action="store_true",
                   help="out of a checkpoint: also write [PAD], [UNK], ... (first rows, so reading back keeps the ids)")
    p.set_defaults(func=_vectors)

    directions = (
        ("from-transformers", _from_transformers, "a stock BERT / GPT-2 / BART folder into ours",
         "Convert a stock transformers checkpoint folder (BERT, GPT-2 or BART, safetensors) into a w2vformer folder."),
        ("to-transformers", _to_transformers,
         "one of our encoder / decoder / seq2seq folders into stock BERT / GPT-2 / BART",
         "Convert a w2vformer encoder, decoder or encoder-decoder folder into a stock BERT, GPT-2 or BART folder "
         "loadable with transformers alone."),
    )
    for name, handler, summary, description in directions:
        p = cmds.add_parser(name, help=summary, description=description + " The tokenizer files and generation "
                            "config come along; the result is reloaded and checked against the source.")
        p.add_argument("src", metavar="SRC_DIR")
        p.add_argument("out", metavar="OUT_DIR")
        p.set_defaults(func=handler)


def _vectors(args) -> int:
    from w2vformer.conversion.vectors import convert_vectors

    if args.limit is not None and args.limit < 0:
        raise ValueError(f"--limit must be >= 0, got {args.limit}")
    src_fmt, dst_fmt = convert_vectors(args.input, args.output, args.from_format, args.to_format, fp16=args.fp16,
                                       limit=args.limit, unicode_errors=args.unicode_errors, vocab_file=args.vocab,
                                       include_special_tokens=True if args.special_tokens else None)
    print(f"{args.input} ({src_fmt}) -> {args.output} ({dst_fmt})")
    return 0


def _report(src, out, info) -> int:
    carried = ", ".join(info["carried"]) or "none"
    print(f"{src} ({info['source_class']}) -> {out} ({info['class']}); files carried over: {carried}")
    return 0


def _from_transformers(args) -> int:
    from w2vformer.conversion.checkpoints import convert_from_transformers

    return _report(args.src, args.out, convert_from_transformers(args.src, args.out))


def _to_transformers(args) -> int:
    from w2vformer.conversion.checkpoints import convert_to_transformers

    return _report(args.src, args.out, convert_to_transformers(args.src, args.out))
