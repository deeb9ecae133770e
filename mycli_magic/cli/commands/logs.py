"""`mycli logs ID [-f]`: an execution's log so far; with -f, new lines as they arrive until it
ends, then exit with its exit code. Ctrl-C while following detaches (the command keeps running).
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..common import add_profile_argument, add_raw_argument, add_ref_argument

    add_ref_argument(parser)
    parser.add_argument("-f", "--follow", action="store_true",
                        help="keep printing new lines until the execution stops, then exit with its exit code")
    add_raw_argument(parser)
    add_profile_argument(parser)


def run(args: argparse.Namespace) -> int:
    import sys

    from ...safe_text import escape_controls
    from ..common import RULE, LogPrinter, err, follow_to_end, open_client

    client = open_client(args)
    execution = client.status(args.ref)  # an unknown ID fails here, before any header is printed
    ident = escape_controls(execution.get("execution_id") or args.ref)
    print(f"Logs for execution: {ident}")
    print(RULE, flush=True)
    if args.follow:
        return follow_to_end(client, args.ref, ident, timestamps=True, raw=args.raw)[0]
    printer = LogPrinter(sys.stdout, timestamps=True, raw=args.raw)
    token, page = None, {}
    while True:  # page through everything there is now
        page = client.logs(args.ref, next_token=token, text=False)
        if not page.get("events"):
            break
        printer.write(page)
        if page.get("next_token") in (None, token):
            break
        token = page.get("next_token")
    printer.end_line()
    status = page.get("status") or execution.get("status")
    if status != "STOPPED":  # more will come: say so, and how to see it
        err(f"… execution {ident} is still {escape_controls(status or 'running')}; follow it: mycli logs -f {ident}")
    return 0
