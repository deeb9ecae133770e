"""`mycli prune --older-than DAYS [--json]`: delete the embedded engine's finished executions
created more than DAYS ago — their records, logs and workspaces. Running ones are never touched.
(On AWS logs and records expire by themselves; the endpoint says so.)"""

from __future__ import annotations

import argparse

MAX_DAYS = 36500


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..common import add_json_argument, add_profile_argument

    parser.add_argument("--older-than", metavar="DAYS", type=_days, required=True,
                        help="prune finished executions created more than DAYS ago (0: every finished one)")
    add_json_argument(parser)
    add_profile_argument(parser)


def run(args: argparse.Namespace) -> int:
    from ..common import open_client, print_answer

    return print_answer(args, open_client(args).prune(args.older_than), _lines)


def _lines(answer: dict) -> list[str]:
    count, days = answer.get("pruned"), answer.get("older_than_days") or 0
    noun = "execution" if count == 1 else "executions"
    which = f"created more than {days:g} days ago" if days else "(every finished one)"
    return [f"✓ Pruned {count} finished {noun} {which}: records, logs and workspaces"]


def _days(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days") from None
    if not 0 <= value <= MAX_DAYS:
        raise argparse.ArgumentTypeError(f"must be from 0 to {MAX_DAYS} days (0: every finished execution)")
    return value
