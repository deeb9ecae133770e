"""`mycli stop ID`: stop a running execution (its whole process tree or ECS task); exit code 130."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ._common import add_profile_argument, add_ref_argument

    add_ref_argument(parser)
    parser.add_argument("--json", action="store_true", help="print only the API's JSON answer")
    add_profile_argument(parser)


def run(args: argparse.Namespace) -> int:
    import json

    from ._common import open_client

    client = open_client(args)
    before = client.status(args.ref)
    ident = before.get("execution_id") or args.ref
    if before.get("status") == "STOPPED":
        if args.json:
            print(json.dumps(before, indent=2))
        else:
            print(f"Execution {ident} had already stopped (exit code {_code(before)}); nothing to do.")
        return 0
    after = client.stop(args.ref)
    if args.json:
        print(json.dumps(after, indent=2))
    elif after.get("status") == "STOPPED":
        print(f"✓ Stopped execution {ident} (exit code {_code(after)})")
    else:
        print(f"→ Stop requested for execution {ident}; it is shutting down (check: mycli status {ident})")
    return 0


def _code(execution: dict) -> str:
    code = execution.get("exit_code")
    return "unknown" if code is None else str(code)
