"""Command groups of the ``w2vformer`` CLI; one module per group, each with ``register(subparsers)``.

Conventions (see ``w2vformer/cli.py``): a group is ``sub.add_parser(name)``; call
``group.set_defaults(_group_parser=group)`` so a bare ``w2vformer GROUP`` prints its help; each leaf
command calls ``set_defaults(func=handler)``. Import torch / transformers inside handlers only.
"""
