"""`mycli stop ID`: stop a running execution (its whole process tree or ECS task); exit code 130."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..common import add_json_argument, add_profile_argument, add_ref_argument

    add_ref_argument(parser)
    add_json_argument(parser)
    add_profile_argument(parser)


def run(args: argparse.Namespace) -> int:
    from ...safe_text import escape_controls
    from ...summary import stop_requested_line
    from ..common import open_client, print_json

    client = open_client(args)
    before = client.status(args.ref)
    ident = escape_controls(before.get("execution_id") or args.ref)
    if before.get("status") == "STOPPED":
        if args.json:
            print_json(before)
        else:
            print(f"Execution {ident} had already stopped (exit code {_code(before)}); nothing to do.")
        return 0
    after = client.stop(args.ref)
    if args.json:
        print_json(after)
    elif after.get("status") == "STOPPED":
        print(f"✓ Stopped execution {ident} (exit code {_code(after)})")
    else:
        print(stop_requested_line(ident, f"mycli status {ident}"))
    return 0


def _code(execution: dict) -> str:
    from ...safe_text import escape_controls

    code = execution.get("exit_code")
    return "unknown" if code is None else escape_controls(code)
