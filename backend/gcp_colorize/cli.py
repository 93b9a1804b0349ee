"""The `gcp-colorize` command line.

Each sub-command lives in the module of its area; a module listed here exposes
`register(subparsers)`, which adds its parser(s) and sets `func` (called with the parsed
arguments, returning an exit code). Modules keep heavy imports (torch) inside `func` so
that `gcp-colorize --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from . import __version__

COMMAND_MODULES = (
    "gcp_colorize.service.commands",     # serve, colorize, demo
    "gcp_colorize.plugin_install",       # install-plugin
    "gcp_colorize.weights_commands",     # weights import-official | list
    "gcp_colorize.data.commands",        # data prepare
    "gcp_colorize.training.commands",    # train
    "gcp_colorize.evaluation.commands",  # eval
    "gcp_colorize.model.class_commands", # classes (search ImageNet class names)
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gcp-colorize", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"gcp-colorize {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
