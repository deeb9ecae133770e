"""`mycli list [--limit N] [--json]`: recent executions, newest first."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..common import add_json_argument, add_profile_argument, int_in_range

    parser.add_argument("--limit", metavar="N", type=int_in_range(1, 1000), default=20, help="how many (1-1000, default 20)")
    add_json_argument(parser)
    add_profile_argument(parser)


def run(args: argparse.Namespace) -> int:
    from ..common import open_client, print_answer

    return print_answer(args, open_client(args).list(args.limit), list_lines)


def list_lines(answer: dict) -> list[str]:
    from ...summary import list_table

    executions = answer.get("executions") or []
    if not executions:
        return ["No executions yet. Start one with: mycli exec --skip-git \"echo hello\""]
    return list_table(executions)
