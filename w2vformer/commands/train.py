"""``w2vformer train mlm|clm|seq2seq|classify``: train a transformer family on text files with Trainer."""

from __future__ import annotations

import json

_TASK_HELP = {
    "mlm": "masked-language-model an encoder (one paragraph per line)",
    "clm": "causal-language-model a decoder (any text)",
    "seq2seq": "train an encoder-decoder on 'source<TAB>target' lines",
    "classify": "fine-tune an encoder classifier on 'label<TAB>text' lines",
}


def register(sub) -> None:
    group = sub.add_parser("train", help="train an encoder, decoder or encoder-decoder with Trainer",
                           description="Train a transformer family on UTF-8 text files with transformers' Trainer: "
                                       "progress bars, evaluation, checkpoints and --resume.")
    group.set_defaults(_group_parser=group)
    tasks = group.add_subparsers(dest="task", metavar="TASK")
    for task, text in _TASK_HELP.items():
        p = tasks.add_parser(task, help=text, description=text[0].upper() + text[1:] + ".")
        p.add_argument("files", nargs="+", metavar="FILE",
                       help="training text files (UTF-8, .gz allowed), or datasets datasets: a folder saved with "
                            "save_to_disk or a locally available name (columns: text / source,target / label,text)")
        p.add_argument("--output", "-o", required=True, help="run folder: model, tokenizer, logs, checkpoints/")
        p.add_argument("--tokenizer", help="a tokenizer folder (default: train one on FILES)")
        p.add_argument("--vocab-size", type=int, default=8000, help="vocabulary of a tokenizer trained here (8000)")
        p.add_argument("--eval", nargs="+", metavar="FILE", help="held-out files (default: 5%% of the examples)")
        p.add_argument("--init-from-word2vec", metavar="DIR_OR_FILE",
                       help="start the token embeddings from a Word2Vec checkpoint folder or vector file")
        p.add_argument("--projection", choices=["pca", "pad", "orthogonal"],
                       help="reconcile the vectors' width with --hidden-size")
        p.add_argument("--freeze-embeddings-steps", type=int, default=0,
                       help="keep the embeddings frozen for the first N steps (0)")
        p.add_argument("--hidden-size", type=int, default=128, help="width of the model (128)")
        p.add_argument("--layers", type=int, default=2, help="layers (2; each of encoder and decoder for seq2seq)")
        p.add_argument("--heads", type=int, default=4, help="attention heads (4)")
        p.add_argument("--intermediate-size", type=int, help="feed-forward width (4 x hidden size)")
        p.add_argument("--position", choices=["sinusoidal", "learned", "rotary"], default="sinusoidal",
                       help="position embedding type (sinusoidal, as in the paper)")
        p.add_argument("--norm", choices=["post", "pre"], default="post", help="LayerNorm position (post)")
        p.add_argument("--config", metavar="JSON", help="further config fields as JSON, e.g. '{\"dropout\": 0.0}'")
        p.add_argument("--block-size", type=int, default=128, help="tokens per training sequence (128)")
        p.add_argument("--max-steps", type=int, default=-1, help="optimizer steps (overrides --epochs)")
        p.add_argument("--epochs", type=float, default=1.0, help="passes over the data (1)")
        p.add_argument("--batch-size", type=int, default=16, help="examples per step (16)")
        p.add_argument("--lr", type=float, default=5e-4, help="peak learning rate (5e-4)")
        p.add_argument("--grad-accum", type=int, default=1, help="gradient accumulation steps (1)")
        p.add_argument("--save-steps", type=int, default=200, help="checkpoint (and evaluate) every N steps (200)")
        p.add_argument("--seed", type=int, default=42, help="random seed (42)")
        p.add_argument("--resume", action="store_true", help="continue from the last checkpoint in the run folder")
        p.set_defaults(func=_train, task=task)


def _model_config(args) -> dict:
    cfg = dict(hidden_size=args.hidden_size, num_attention_heads=args.heads,
               intermediate_size=args.intermediate_size or 4 * args.hidden_size,
               position_embedding_type=args.position, norm_position=args.norm)
    if args.task == "seq2seq":
        cfg.update(encoder_layers=args.layers, decoder_layers=args.layers)
    else:
        cfg["num_hidden_layers"] = args.layers
    if args.config:
        try:
            extra = json.loads(args.config)
        except json.JSONDecodeError as e:
            raise ValueError(f"--config is not valid JSON ({e}): {args.config!r}") from None
        if not isinstance(extra, dict):
            raise ValueError(f"--config must be a JSON object of config fields, got {args.config!r}")
        cfg.update(extra)
    return cfg


def _train(args) -> int:
    from w2vformer.training.lm import train_transformer

    result = train_transformer(
        args.task, args.files, output_dir=args.output, tokenizer=args.tokenizer, vocab_size=args.vocab_size,
        eval_files=args.eval, model_config=_model_config(args), init_from_word2vec=args.init_from_word2vec,
        projection=args.projection, freeze_embeddings_steps=args.freeze_embeddings_steps,
        block_size=args.block_size, max_steps=args.max_steps, epochs=args.epochs, batch_size=args.batch_size,
        learning_rate=args.lr, gradient_accumulation_steps=args.grad_accum, save_steps=args.save_steps,
        seed=args.seed, resume=args.resume,
    )
    if result.init_report is not None:
        print(result.init_report)
    print(f"saved {type(result.model).__name__} and its tokenizer to {result.output_dir}")
    for key, value in result.metrics.items():
        print(f"  {key}: {value:.4f}" if isinstance(value, float) else f"  {key}: {value}")
    return 0
