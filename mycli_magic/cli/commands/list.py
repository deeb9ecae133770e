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
    executions = answer.get("executions") or []
    if not executions:
        return ["No executions yet. Start one with: mycli exec --skip-git \"echo hello\""]
    return table(executions)


def table(executions: list[dict]) -> list[str]:
    from ...project import shown_command
    from ...summary import format_duration

    rows = [("EXECUTION ID", "STATUS", "EXIT", "CREATED", "DURATION", "COMMAND")]
    for e in executions:
        code = e.get("exit_code")
        rows.append((
            str(e.get("execution_id", "")), str(e.get("status", "")), "" if code is None else str(code),
            str(e.get("created_at") or ""), format_duration(e.get("duration_seconds")), shown_command(e.get("command") or ""),
        ))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    return ["  ".join(r[i].ljust(widths[i]) for i in range(5)) + "  " + r[5] for r in rows]
