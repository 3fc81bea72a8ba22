"""``w2vformer push DIR REPO_ID``: upload a saved checkpoint folder, with its model card, to the Hub.

    w2vformer push out/tiny-w2v me/tiny-w2v --private
    w2vformer push out/tiny-enc me/tiny-enc --revision v2 --endpoint http://127.0.0.1:8000

Wraps :func:`w2vformer.hub.push_to_hub` (``HfApi.create_repo`` + ``upload_folder``). A folder without a
README.md gets a model card; Word2Vec folders also get ``vectors.bin`` (word2vec binary) unless ``--no-vectors``.
"""

from __future__ import annotations

import argparse
import sys


def register(subparsers) -> None:
    p = subparsers.add_parser("push", help="upload a saved model folder (with its model card) to the Hub",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dir", help="folder written by save_pretrained (model, tokenizer)")
    p.add_argument("repo_id", help="'user/name' on the Hub")
    p.add_argument("--private", action="store_true", help="create the repository private")
    p.add_argument("--revision", default=None, help="branch to commit to (created from main if missing)")
    p.add_argument("--token", default=None, help="Hub token (default: HF_TOKEN or the logged-in token)")
    p.add_argument("--endpoint", default=None, help="Hub URL (default: HF_ENDPOINT or https://huggingface.co)")
    p.add_argument("--message", default=None, help="commit message")
    p.add_argument("--no-vectors", action="store_true", help="Word2Vec: do not add vectors.bin")
    p.add_argument("--no-card", action="store_true", help="do not write a README.md model card")
    p.add_argument("--language", default=None, help="model card: language code, e.g. en")
    p.add_argument("--license", default=None, help="model card: license id, e.g. apache-2.0")
    p.add_argument("--dataset", action="append", default=None, help="model card: Hub dataset id (repeatable)")
    p.set_defaults(func=_push)


def _push(args) -> int:
    from pathlib import Path

    from w2vformer.hub import push_to_hub

    folder = Path(args.dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"{args.dir!r} is not a folder; pass the folder written by save_pretrained")
    card_info = {k: v for k, v in (("language", args.language), ("license", args.license),
                                   ("datasets", args.dataset)) if v}
    from huggingface_hub.errors import HfHubHTTPError

    try:
        info = push_to_hub(folder, args.repo_id, private=args.private or None, token=args.token,
                           revision=args.revision, endpoint=args.endpoint, commit_message=args.message,
                           model_card=not args.no_card, word2vec_format=False if args.no_vectors else None,
                           **card_info)
    except HfHubHTTPError as e:  # refused by the Hub (auth, rights, missing repo): one clear line
        print(f"w2vformer push: error: the Hub refused the upload to {args.repo_id!r}: {str(e).splitlines()[0]}",
              file=sys.stderr)
        return 1
    print(f"pushed {args.dir} to {args.repo_id} at {info.oid}: {info.commit_url}")
    return 0
