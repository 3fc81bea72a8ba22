"""``w2vformer plot attention|embeddings|loss``: pictures of what the models learned (PNG, needs matplotlib)."""

from __future__ import annotations


def register(sub) -> None:
    group = sub.add_parser("plot", help="draw attention maps, word vectors and loss curves (PNG)",
                           description="Pictures of what the models learned. Needs matplotlib "
                                       "(pip install 'w2vformer[plot]').")
    group.set_defaults(_group_parser=group)
    kinds = group.add_subparsers(dest="kind", metavar="KIND")

    p = kinds.add_parser("attention", help="heatmaps of A' for every layer and head",
                         description="Run a sentence through a model and draw A' = softmax(QK^T/sqrt(d)) for every "
                                     "layer and head (tokens on both axes), plus an overview grid.")
    p.add_argument("model", metavar="MODEL_DIR", help="an encoder, decoder or encoder-decoder folder")
    p.add_argument("text", metavar="SENTENCE", help="the sentence to run")
    p.add_argument("--output", "-o", default="plots", help="folder for the PNGs (plots)")
    p.add_argument("--max-tokens", type=int, default=64, help="truncate longer inputs (64)")
    p.set_defaults(func=_attention)

    p = kinds.add_parser("embeddings", help="a labelled 2-D projection of word vectors",
                         description="Project word vectors to 2-D (PCA, or t-SNE with scikit-learn) and label them. "
                                     "Works on Word2Vec folders and on a transformer's input embeddings.")
    p.add_argument("model", metavar="DIR", help="a Word2Vec or transformer folder")
    p.add_argument("--words", nargs="+", required=True, help="the words to place (at least 3)")
    p.add_argument("--method", choices=["pca", "tsne"], default="pca", help="projection (pca)")
    p.add_argument("--output", "-o", default="plots/embeddings.png", help="PNG path (plots/embeddings.png)")
    p.set_defaults(func=_embeddings)

    p = kinds.add_parser("loss", help="loss curves of training runs",
                         description="Plot training and evaluation loss against steps for runs made by "
                                     "`w2vformer train` (their training_log.json).")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run folders")
    p.add_argument("--output", "-o", default="plots/loss.png", help="PNG path (plots/loss.png)")
    p.set_defaults(func=_loss)


def _attention(args) -> int:
    from w2vformer.plotting import plot_attention

    paths = plot_attention(args.model, args.text, args.output, max_tokens=args.max_tokens)
    print(f"wrote {len(paths)} PNGs to {args.output}/ (overview: {paths[0]})")
    return 0


def _embeddings(args) -> int:
    from w2vformer.plotting import plot_embeddings

    print(f"wrote {plot_embeddings(args.model, args.words, args.output, method=args.method)}")
    return 0


def _loss(args) -> int:
    from w2vformer.plotting import plot_loss_curves

    print(f"wrote {plot_loss_curves(args.runs, args.output)}")
    return 0
