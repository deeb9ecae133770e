"""`mycli`: the terminal front. Parses arguments, runs one command, and is the one place where
errors become a single line on stderr and an exit code (traceback only with --debug).

Start-up stays fast: each command's module is imported only when that command runs, and
nothing here imports boto3, IPython or ipywidgets.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from .. import __version__
from ..errors import MycliError, NothingStarted

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_BROKEN_PIPE = 0, 1, 2, 130, 141

# command name → (module implementing `add_arguments(parser)` and `run(args) -> int`, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "exec": ("mycli_magic.cli.commands.exec", "run a command remotely (--wait to stream its output)"),
    "status": ("mycli_magic.cli.commands.status", "show an execution's status and exit code"),
    "logs": ("mycli_magic.cli.commands.logs", "show an execution's log (-f to follow it)"),
    "stop": ("mycli_magic.cli.commands.stop", "stop a running execution"),
    "artifacts": ("mycli_magic.cli.commands.artifacts", "list an execution's output files (-o DIR to download them)"),
    "list": ("mycli_magic.cli.commands.list", "list recent executions"),
    "prune": ("mycli_magic.cli.commands.prune", "delete old finished executions from the embedded engine"),
    "configure": ("mycli_magic.cli.commands.configure", "set the API endpoint and key (or discover them from a stack)"),
    "init": ("mycli_magic.cli.commands.init", "deploy the AWS stack and save its endpoint and a new API key"),
    "destroy": ("mycli_magic.cli.commands.destroy", "delete the AWS stack, its task definitions and its config"),
    "doctor": ("mycli_magic.cli.commands.doctor", "check the deployed AWS stack part by part and say what to run"),
    "server": ("mycli_magic.cli.commands.server", "run the local HTTP API and embedded engine (or: server stop)"),
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, a hint
        self.exit(EXIT_USAGE, f"mycli: error: {message} (see: {self.prog} --help)\n")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; with `only`, just that command's options are built (and its module imported),
    so `mycli status ...` does not pay for importing every other command."""
    parser = _Parser(prog="mycli", description="Run a command in an isolated, repeatable container.")
    parser.add_argument("--version", action="version", version=f"mycli {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and HTTP details")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, (module, help_text) in COMMANDS.items():
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        cmd.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
        cmd.set_defaults(_module=module)
        if only is None or name == only:
            importlib.import_module(module).add_arguments(cmd)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help") or argv[0] in ("--version", "-V"):
        # answer without importing any command module
        return _light(argv)
    parser = build_parser(argv[0] if argv[0] in COMMANDS else None)
    args, extras = parser.parse_known_args(argv)
    if extras:  # point at the command's own help, not the top level's
        where = f"mycli {args.command}" if getattr(args, "command", None) else "mycli"
        parser.exit(EXIT_USAGE, f"mycli: error: unrecognized arguments: {' '.join(extras)} (see: {where} --help)\n")
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_USAGE
    debug = bool(getattr(args, "debug", False)) or bool(os.environ.get("MYCLI_DEBUG"))
    try:
        code = importlib.import_module(args._module).run(args)
        sys.stdout.flush()  # a reader that went away shows here, not in Python's exit-time flush
        return code
    except KeyboardInterrupt as exc:  # NothingStarted says what was interrupted in its one line
        print(f"\n{exc}" if isinstance(exc, NothingStarted) else "\nInterrupted.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except MycliError as exc:
        if debug:
            raise
        print(f"mycli: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # `mycli logs ID | head`: the reader has what it wanted; exit as coreutils do
        _quiet_stdout()
        return EXIT_BROKEN_PIPE
    except Exception as exc:  # a bug: one line, and how to see more
        if debug:
            raise
        print(f"mycli: internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback)", file=sys.stderr)
        return EXIT_FAILURE


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush of what is still buffered
    does not print 'Exception ignored ... BrokenPipeError' on the way out."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _light(argv: list[str]) -> int:
    if argv and argv[0] in ("--version", "-V"):
        print(f"mycli {__version__}")
        return EXIT_OK
    lines = ["usage: mycli [--version] [--debug] COMMAND [options]", "",
             "Run a command in an isolated, repeatable container.", "", "commands:"]
    width = max(len(n) for n in COMMANDS)
    lines += [f"  {name.ljust(width)}  {help_text}" for name, (_, help_text) in COMMANDS.items()]
    lines += ["", "Run 'mycli COMMAND --help' for a command's options."]
    print("\n".join(lines))
    return EXIT_OK if argv else EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
