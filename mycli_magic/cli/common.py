"""What several commands share: connecting (with the embedded-engine announcement), following
a log with Ctrl-C meaning "detach", and the words used to show an execution.

Every command's `add_arguments` imports this module while the parser is built, so the client
(urllib, json) is imported inside the functions that use it.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Callable, TextIO

from ..arg_types import int_in_range  # noqa: F401 (the commands' argparse type, shared with the magic)
from ..safe_text import clean_log, escape_controls, escaped

if TYPE_CHECKING:
    from ..client import ApiClient

EXIT_INTERRUPTED = 130
RULE = "━" * 20


def add_json_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print only the API's JSON answer")


def print_json(data: dict) -> None:
    import json

    print(json.dumps(data, indent=2))


def print_answer(args: argparse.Namespace, answer: dict, render: "Callable[[dict], list[str]]") -> int:
    """What a read-only command prints: the API's answer as is with --json, else `render`'s lines."""
    if getattr(args, "json", False):
        print_json(answer)
    else:
        print("\n".join(render(answer)))
    return 0


def add_profile_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", metavar="P", default=None,
                        help="use this profile from $MYCLI_HOME/config.yaml (default: $MYCLI_PROFILE, else the top-level settings)")


def add_raw_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--raw", action="store_true",
                        help="print the log exactly as sent (by default escape sequences other than colours are dropped)")


def add_ref_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("ref", metavar="ID", help="an execution ID (12 hex characters, from mycli exec) or a task ARN")


def err(line: str = "") -> None:
    print(line, file=sys.stderr, flush=True)


def open_client(args: argparse.Namespace) -> "ApiClient":
    """The API client for --profile; starting the embedded engine says so in one stderr line."""
    from ..client import connect

    return connect(getattr(args, "profile", None), announce=err, debug=bool(getattr(args, "debug", False)))


def remote_exit_code(code: object) -> int:
    """The exit code mycli itself exits with for a remote one (unknown or out of range → 1)."""
    if isinstance(code, int) and not isinstance(code, bool) and 0 <= code <= 255:
        return code
    return 1


class LogPrinter:
    """Writes log events as the output was: an event marked `partial` (output the engine sent
    before its line ended, e.g. `printf 'working…'` after a pause) gets no newline, and the
    event after it continues that line, without a time prefix of its own. Escape sequences
    other than colours are dropped unless `raw` (safe_text.clean_log)."""

    def __init__(self, out: TextIO, timestamps: bool, raw: bool = False):
        self.out, self.timestamps, self.raw = out, timestamps, raw
        self.line_open = False

    def write(self, page: dict) -> None:
        if self.timestamps:
            from orchestrator.engine import format_log_line  # the API's own line format
        parts = []
        for event in page.get("events") or []:
            message = str(event.get("message", ""))
            if self.timestamps and not self.line_open:
                message = format_log_line(int(event.get("timestamp") or 0), message)
            self.line_open = bool(event.get("partial"))
            parts.append(message if self.line_open else message + "\n")
        self.out.write(clean_log("".join(parts), self.raw))
        self.out.flush()

    def end_line(self) -> None:
        """End a line still waiting for its continuation, before mycli says something."""
        if self.line_open:
            self.out.write("\n")
            self.out.flush()
            self.line_open = False


def follow_to_end(
    client: "ApiClient", ref: str, execution_id: str, *, timestamps: bool, out: TextIO | None = None,
    raw: bool = False,
) -> tuple[int, dict | None]:
    """Print the log as it arrives until the execution stops.

    Returns (exit code to exit with, the final execution), or (130, None) when the user pressed
    Ctrl-C: that detaches — the remote command keeps running, and the user is told how to come
    back to it and how to stop it.
    """
    from ..errors import ConnectionFailed
    from ..follow import FollowState, follow

    out = out or sys.stdout
    state = FollowState(ref)
    printer = LogPrinter(out, timestamps, raw)
    execution_id = escape_controls(execution_id)  # for the lines below
    try:
        for page in follow(client, ref, state):
            printer.write(page)
        printer.end_line()
        final = client.status(ref)
    except KeyboardInterrupt:
        printer.end_line()
        err()
        err(f"Detached from execution {execution_id}; it keeps running.")
        err(f"  Re-attach: mycli logs -f {execution_id}")
        err(f"  Stop it:   mycli stop {execution_id}")
        return EXIT_INTERRUPTED, None
    except ConnectionFailed as exc:
        # The execution exists: running the command again would start a second one.
        printer.end_line()
        raise ConnectionFailed(f"{exc.cause}; execution {execution_id} was already started: see what became of it "
                               f"with mycli status {execution_id} (or mycli logs -f {execution_id})", exc.cause) from None
    err(finished_line(final))
    return remote_exit_code(final.get("exit_code")), final


def finished_line(execution: dict) -> str:
    """`✓ Execution ID finished with exit code 0 after 2.3 s` (+ the estimated cost on AWS)."""
    from ..summary import NOT_STARTED_EXIT_CODE, cost_note, could_not_start, format_duration

    execution = escaped(execution)
    code = execution.get("exit_code")
    ident = execution.get("execution_id", "")
    took = format_duration(execution.get("duration_seconds"))
    took = f" after {took}" if took else ""
    cost = cost_note(execution)
    cost = f" · {cost}" if cost else ""
    if code == 0:
        return f"✓ Execution {ident} finished with exit code 0{took}{cost}"
    if code == NOT_STARTED_EXIT_CODE:
        return f"✗ Execution {ident} {could_not_start(execution)} (exit code {code}; the log above says why){cost}"
    reason = execution.get("stopped_reason") or ""
    reason = f" ({reason})" if reason and "exited with code" not in reason else ""
    shown = "unknown" if code is None else code
    return f"✗ Execution {ident} finished with exit code {shown}{took}{reason}{cost}"


def execution_ref(execution: dict, fallback: str) -> str:
    """The reference to use in later calls: the execution ID when the API gave one."""
    return execution.get("execution_id") or execution.get("task_arn") or fallback
