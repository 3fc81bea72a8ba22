"""The ``w2vformer`` command line.

Every module in ``w2vformer/commands/`` that defines ``register(subparsers)`` adds its commands, so a
new command group is one new file. Command modules import heavy libraries (torch, transformers) inside
their handlers, so ``w2vformer --help`` stays fast. A handler is set with ``parser.set_defaults(func=...)``
and receives the parsed ``argparse.Namespace``; it returns an exit code (or None for 0).
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from . import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="w2vformer",
        description="From words to attention: tokenizers, Word2Vec and transformers as Hugging Face models.",
    )
    parser.add_argument("--version", action="version", version=f"w2vformer {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    from . import commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        if hasattr(module, "register"):
            module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        # A group without a subcommand (`w2vformer word2vec`) prints that group's help.
        (getattr(args, "_group_parser", None) or parser).print_help()
        return 2 if args.command is None else 0
    try:
        return int(func(args) or 0)
    except (ValueError, FileNotFoundError, FileExistsError, KeyError, NotADirectoryError, IsADirectoryError) as e:
        # Bad input: one clear line, no traceback. Programming errors still raise.
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"w2vformer {args.command}: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
