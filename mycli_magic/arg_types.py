"""argparse types shared by the CLI and the magic, so a bad number reads the same in both:
`'abc' is not a whole number of seconds`, never argparse's `invalid int value: 'abc'`."""

from __future__ import annotations

import argparse


def int_in_range(low: int, high: int, unit: str = ""):
    """An argparse type: a whole number from `low` to `high`, with a message that says so."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number{' of ' + unit if unit else ''}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be from {low} to {high}{' ' + unit if unit else ''}")
        return value

    return parse
