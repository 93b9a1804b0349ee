"""argparse types shared by the sub-commands: a bad value is refused while parsing, with
the command's usage line and exit code 2, before any model is loaded."""

from __future__ import annotations

import argparse

from .core.protocol import MAX_VARIATION

VARIATION_METAVAR = f"0..{MAX_VARIATION:g}"


def int_at_least(minimum: int):
    """An argparse type: an integer of at least `minimum`."""
    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {minimum} or more, got {text}")
        return value
    parse.__name__ = "integer"  # argparse names the type so in "invalid integer value: 'x'"
    return parse


non_negative_int = int_at_least(0)
positive_int = int_at_least(1)


def variation_amount(text: str) -> float:
    """The alternatives' latent noise scale; the protocol checks it again for other clients."""
    value = float(text)
    if not 0 <= value <= MAX_VARIATION:
        raise argparse.ArgumentTypeError(f"must be between 0 and {MAX_VARIATION:g}, got {text}")
    return value
