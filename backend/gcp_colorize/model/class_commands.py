"""`gcp-colorize classes [QUERY]`: list or search the ImageNet class names.

The class chosen for colorization (ImageNet index or name) conditions the colour prior;
this command helps a person find the index or exact name to pass.
"""

from __future__ import annotations

import argparse

from ..argument_types import non_negative_int


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "classes", help="list or search ImageNet class names",
        description="List the 1000 ImageNet classes, or search them: case-insensitive "
                    "substring over all synonyms, best match first.")
    parser.add_argument("query", nargs="?", help="text to search for (omit to list all)")
    parser.add_argument("--limit", type=non_negative_int, default=20,
                        help="at most this many search results (default 20; 0 = all)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .classifier import ImageNetClasses

    classes = ImageNetClasses()
    if args.query is None:
        found = list(classes.classes)
    else:
        found = classes.search(args.query)
        if args.limit > 0:
            found = found[:args.limit]
        if not found:
            print(f"no ImageNet class matches {args.query!r}")
            return 1
    for c in found:
        print(f"{c.index:4d}  {', '.join(c.synonyms)}")
    return 0
