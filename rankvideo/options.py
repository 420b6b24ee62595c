"""Argument types of the command-line entry points, with the bounds of the config schema.

argparse then refuses a value outside them naming the option (`--depth: -1 is not an
integer >= 1`), instead of a later step failing on it without saying which option was
wrong, or running and quietly changing the numbers.
"""

from __future__ import annotations

import argparse


def at_least(minimum: int):
    """An integer type that refuses values below `minimum`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is not an integer >= {minimum}")
        return value

    return parse


positive_int = at_least(1)


def positive_float(text: str) -> float:
    """A finite number above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{value} is not a number > 0")
    return value


def probability(text: str) -> float:
    """A number strictly between 0 and 1 (a significance level)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a number between 0 and 1")
    return value
