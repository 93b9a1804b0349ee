"""`gcp-colorize data prepare`: fetch the training photo packages and build the cache."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    from .manifest import DEFAULT_CACHE
    from .photo_list import DEFAULT_PHOTO_LIST

    parser = subparsers.add_parser("data", help="training data")
    actions = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    prepare = actions.add_parser(
        "prepare", help="download the photo packages and build the cached training set",
        description="Downloads the Debian packages listed in training-photos.tsv with "
                    "apt-get, extracts the listed photos and builds the cached training set "
                    "(PNG files + manifest.json with splits and pseudo-labels). Idempotent: "
                    "finished work is skipped.")
    prepare.add_argument("--cache", type=Path, default=DEFAULT_CACHE,
                         help=f"cache directory (default {DEFAULT_CACHE})")
    prepare.add_argument("--list", type=Path, default=DEFAULT_PHOTO_LIST, dest="photo_list",
                         help="the photo list TSV (default ../shared/reference/training-photos.tsv "
                              "beside the repository)")
    prepare.add_argument("--device", default=None,
                         help="device for the pseudo-labelling classifier (default: cuda if present)")
    prepare.set_defaults(func=run_prepare)


def run_prepare(args: argparse.Namespace) -> int:
    from .debian import PackageFetchError
    from .prepare import PrepareError, prepare, summary

    def log(message: str) -> None:
        print(message, flush=True)

    try:
        records = prepare(args.cache, args.photo_list, log, args.device)
    except (PrepareError, PackageFetchError, FileNotFoundError, ValueError) as exc:
        print(f"data prepare failed: {exc}", file=sys.stderr)
        return 1
    log(summary(args.cache.expanduser().resolve(), records))
    return 0
