"""The line magic's commands: `%mycli status|logs|stop|list|attach|artifacts|server|configure|init|destroy|doctor`.

They mirror the `mycli` CLI's commands and words, with notebook manners: `status` gives back
an execution handle, `list` a table that renders as HTML, `attach` and `logs -f` the live
panel. Errors are MycliError or UsageError; the magic turns them into one line.
"""

from __future__ import annotations

import argparse
import html
import shlex

from IPython.core.error import UsageError

from ..arg_types import int_in_range
from ..safe_text import clean_log, escape_controls
from ..summary import LIST_COLUMNS, list_rows, list_table, stop_requested_line, summary_line


class _HelpShown(Exception):
    """argparse printed the help (-h); nothing else to do."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:
        raise UsageError(f"{self.prog}: {message} (see: %mycli?)")

    def exit(self, status: int = 0, message: str | None = None) -> None:
        if message:
            print(message)
        raise _HelpShown


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="%mycli", add_help=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def command(name: str, help_text: str, ref: bool = True) -> argparse.ArgumentParser:
        cmd = sub.add_parser(name, help=help_text, description=help_text, prog=f"%mycli {name}")
        if ref:
            cmd.add_argument("ref", metavar="ID", help="an execution ID (12 hex characters) or a task ARN")
        cmd.add_argument("--profile", metavar="P", help="profile from $MYCLI_HOME/config.yaml")
        return cmd

    command("status", "the execution as a handle: status, exit code, .logs, .wait(), .stop()")
    logs = command("logs", "the execution's log so far; -f: live until it ends")
    logs.add_argument("-f", "--follow", action="store_true", help="show the live panel (text: stream) until it ends")
    logs.add_argument("-t", "--timestamps", action="store_true", help="show each line's time (UTC)")
    attach = command("attach", "the live panel for an execution, with its whole log (e.g. after a kernel restart)")
    attach.add_argument("--out", metavar="VAR", help="also store the execution handle in VAR")
    attach.add_argument("-t", "--timestamps", action="store_true", help="show each line's time (UTC)")
    command("stop", "stop the execution (exit 130)")
    files = command("artifacts", "the files the run wrote to $MYCLI_OUTPUTS; -o DIR: download them (sha256 checked)")
    files.add_argument("-o", "--output", metavar="DIR", help="save them under DIR (created if needed)")
    listing = command("list", "recent executions, newest first", ref=False)
    listing.add_argument("--limit", metavar="N", type=int_in_range(1, 1000), default=20, help="how many (1-1000, default 20)")
    server = sub.add_parser("server", prog="%mycli server", help="the kernel's embedded local engine: `status` says where it "
                            "runs and on which runtime; `stop` stops it (the next run starts it again, probing the runtime anew)",
                            description="as `mycli server status` / `mycli server stop`, for the kernel's MYCLI_HOME")
    server.add_argument("action", choices=["status", "stop"], help="status or stop")
    for name, help_text in PASS_THROUGH.items():  # their options are parsed by the command itself
        sub.add_parser(name, help=help_text, prog=f"%mycli {name}")
    return parser


PASS_THROUGH = {
    "configure": "as `mycli configure`: endpoint, API key (asked for, never shown), profiles",
    "init": "deploy the AWS stack (as `mycli init`)",
    "destroy": "remove the AWS stack (as `mycli destroy`)",
    "doctor": "check a deployed stack part by part and say what to run (as `mycli doctor`)",
}


def run_line(magics, line: str):
    """Parse `line` and run the command; returns what the notebook should display (or None)."""
    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise UsageError(f"%mycli: {exc} (check the quotes)") from None
    if not words or words[0] in ("-h", "--help", "help"):
        print(magics.mycli_line.__doc__)
        return None
    try:
        if words[0] in PASS_THROUGH:
            args = argparse.Namespace(command=words[0], rest=words[1:])
        else:
            args = build_parser().parse_args(words)
    except _HelpShown:
        return None
    with magics.user_errors():
        try:
            return COMMANDS[args.command](magics, args)
        except _HelpShown:
            return None


# commands ---------------------------------------------------------------------------------


def _handle(magics, args):
    from .handle import Execution

    client = magics.connect(args.profile)
    return Execution(client, client.status(args.ref), max_idle_sleep=magics.poll_interval)


def cmd_status(magics, args):
    return _handle(magics, args)


def cmd_stop(magics, args):
    handle = _handle(magics, args).stop()
    if handle.status == "STOPPED":
        print(summary_line(handle.info, magics.task_vcpu, magics.task_memory_gb))
    else:  # no exit code yet: shutting down, not lost
        ref = escape_controls(handle.execution_id)
        print(stop_requested_line(ref, f"%mycli status {ref}"))


def cmd_logs(magics, args):
    if args.follow:
        return _watch(magics, args, out=None)
    handle = _handle(magics, args)
    handle.logs  # noqa: B018 — reads every line there is now
    lines = handle.log_lines(timestamps=args.timestamps or magics.timestamps)
    if lines:
        print(clean_log("\n".join(lines)), flush=True)
    if handle.status == "STOPPED":
        print(summary_line(handle.info, magics.task_vcpu, magics.task_memory_gb))
    else:
        ref = escape_controls(handle.execution_id)
        print(f"… {ref} is still {escape_controls(handle.status)}; follow it live: %mycli logs {ref} -f")


def cmd_artifacts(magics, args):
    handle = _handle(magics, args)
    if args.output:
        from ..downloads import saved_line

        handle.download(args.output)
        print(saved_line(handle.artifact_listing(), args.output))
    return handle.artifacts


def cmd_attach(magics, args):
    return _watch(magics, args, out=args.out)


def _watch(magics, args, out: str | None):
    """The live view of an existing execution, from its first line. With widgets the panel
    follows in the background (the kernel stays free, so its buttons work); as text the cell
    streams until the run ends, and an interrupt detaches rather than stops."""
    if out is not None and not out.isidentifier():
        raise UsageError(f"--out {out!r} is not a Python variable name")
    from .display import ViewSettings, choose_display, make_view

    handle = _handle(magics, args)
    if out:
        magics.shell.user_ns[out] = handle
    mode = choose_display(magics.shell, magics.display)
    settings = ViewSettings(timestamps=args.timestamps or magics.timestamps, tail_lines=magics.tail_lines,
                            vcpu=magics.task_vcpu, memory_gb=magics.task_memory_gb, handle_name=out)
    view = make_view(mode, settings)
    if mode == "widget":
        view.show(handle, background=True)
        return None
    view.show(handle, background=False)
    magics.wait_in_cell(handle, view, stop_on_interrupt=False)
    return None


def cmd_list(magics, args):
    if not 1 <= args.limit <= 1000:
        raise UsageError("%mycli list: --limit must be from 1 to 1000")
    client = magics.connect(args.profile)
    return ExecutionList(client.list(args.limit).get("executions") or [])


def cmd_server(magics, args):
    """`mycli server status|stop` for the engine the kernel's MYCLI_HOME names (the same code)."""
    import os

    from .. import config, embedded, engine_notes
    from .view_settings import STOP_ENGINE

    if args.action == "stop":
        print(embedded.stop_server())
        return
    info = embedded.running_server()
    if not info:
        print("No embedded local engine is running (the next %%mycli cell starts one).")
        return
    print("\n".join(engine_notes.status_lines(info, config.engine_state_dir(), os.environ, STOP_ENGINE)))


def cmd_configure(magics, args):
    """`mycli configure`'s flags and checks; what is missing is asked for in the notebook (the
    key only with a password prompt: a key written in a cell stays in the notebook and its history)."""
    import getpass

    from ..aws import configure_flow

    parser = _Parser(prog="%mycli configure")
    configure_flow.add_arguments(parser)
    ns = parser.parse_args(args.rest)
    if ns.api_key is not None:
        raise UsageError("%mycli configure: leave out --api-key and you will be asked for the key "
                         "(one written in a cell is kept in the notebook and its history); nothing was saved")
    draft = configure_flow.draft(ns)
    if not draft.endpoint:
        draft.endpoint = _ask("API endpoint: ", input) or None
        if not draft.endpoint:
            raise UsageError("%mycli configure: an API endpoint is required (--endpoint URL or --stack-name NAME); nothing was saved")
    api_key = _ask("API key: ", getpass.getpass)
    if not api_key:
        raise UsageError("%mycli configure: an API key is required; nothing was saved")
    configure_flow.save(draft, api_key, say=_progress, warn=_progress)


def cmd_init(magics, args):
    """`mycli init`'s flags. In a notebook nothing secret is typed or shown: git credentials
    come from the files the flags name or from $GITHUB_TOKEN / $GITLAB_TOKEN / $SSH_PRIVATE_KEY
    (as `mycli init --force` takes them), and the new API key goes to the config file only."""
    aws_deploy = _aws("init", "deploy", "init_from_args")
    from ..aws.git_credentials import credentials_from_files

    parser = _Parser(prog="%mycli init")
    aws_deploy.add_init_arguments(parser)
    ns = parser.parse_args(args.rest)
    region = aws_deploy.resolve_region(ns.region)
    if not ns.force:
        _confirm(f"Deploy the mycli stack {ns.stack_name} (VPC, ECS cluster, Lambda, API Gateway, logs, IAM roles) "
                 f"in {region}? Type 'yes' to confirm: ", "yes", "cancelled: nothing was created")
    result = aws_deploy.init_from_args(ns, credentials_from_files(ns), _progress)
    print(f"✓ Stack {result.stack_name} is ready in {result.region}: {result.api_endpoint}")
    print(f"  The endpoint and a new API key were saved to {result.config_path}"
          f"{f' (profile {ns.profile})' if ns.profile else ''}; the key is not shown here, so it stays out of the notebook.")
    print(f"  Git credentials: {', '.join(result.git_auth) or 'none (public repositories only)'}")
    print("  Try it: %%mycli --skip-git --image=alpine:latest  (then a command on the next line)")


def cmd_destroy(magics, args):
    aws_destroy = _aws("destroy", "destroy", "destroy_stack")
    from ..aws.deploy import target_stack

    parser = _Parser(prog="%mycli destroy")
    aws_destroy.add_destroy_arguments(parser)
    ns = parser.parse_args(args.rest)
    stack, region = target_stack(ns.stack_name, ns.region)
    if not ns.force:
        _confirm(f"Delete the mycli stack {stack} in {region} and everything in it? [y/N]: ", "y", "cancelled: nothing was deleted")
    aws_destroy.destroy_stack(region, stack, ns.keep_config, _progress)
    print(f"✓ Stack {stack} in {region} and its resources were removed.")


def cmd_doctor(magics, args):
    """`mycli doctor`'s checks, printed the same way; problems make the cell fail with one line."""
    doctor = _aws("doctor", "doctor", "diagnose")

    parser = _Parser(prog="%mycli doctor")
    doctor.add_doctor_arguments(parser)
    report = doctor.diagnose_from_args(parser.parse_args(args.rest))
    print(report.text(), flush=True)
    if report.problems:
        raise UsageError(report.verdict())


def _aws(command: str, module: str, function_name: str):
    import importlib

    try:
        found = importlib.import_module(f"mycli_magic.aws.{module}")
    except ImportError as exc:
        raise UsageError(f"%mycli {command} is not available ({exc}); install mycli with its AWS dependencies (boto3)") from None
    if not hasattr(found, function_name):
        raise UsageError(f"%mycli {command} is not available in this version (mycli_magic.aws.{module} has no {function_name})")
    return found


def _confirm(prompt: str, expected: str, cancelled: str) -> None:
    try:
        answer = input(prompt)
    except (EOFError, OSError, RuntimeError) as exc:  # no stdin: StdinNotImplementedError (nbval, papermill), a closed one
        raise UsageError(f"cannot ask for confirmation here ({type(exc).__name__}); add --force to skip the question") from None
    if answer.strip().lower() not in (expected, "yes"):
        raise UsageError(cancelled)


def _ask(prompt: str, read) -> str:
    try:
        return read(prompt).strip()
    except (EOFError, OSError, RuntimeError) as exc:  # no stdin, as in _confirm
        raise UsageError(f"cannot ask for the {prompt.rstrip(': ')} here ({type(exc).__name__}); "
                         "run `mycli configure` in a terminal instead") from None


def _progress(line: str) -> None:
    print(line, flush=True)


COMMANDS = {
    "status": cmd_status, "logs": cmd_logs, "attach": cmd_attach, "stop": cmd_stop, "list": cmd_list, "artifacts": cmd_artifacts,
    "server": cmd_server,
    "configure": cmd_configure, "init": cmd_init, "destroy": cmd_destroy, "doctor": cmd_doctor,
}


# %mycli list's answer ------------------------------------------------------------------------


class ExecutionList(list):
    """Executions as the API lists them, with `mycli list`'s columns: a table in HTML, the same
    aligned text in a terminal."""

    def __repr__(self) -> str:
        if not self:
            return "No executions yet."
        return "\n".join(line.rstrip() for line in list_table(self))

    def _repr_html_(self) -> str:
        if not self:
            return "<p>No executions yet.</p>"
        cell = "<{0} style='text-align:left'>{1}</{0}>"
        head = "".join(cell.format("th", html.escape(c.lower())) for c in LIST_COLUMNS)
        body = "".join("<tr>" + "".join(cell.format("td", html.escape(v)) for v in row) + "</tr>" for row in list_rows(self))
        return (f"<table class='mycli-list'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
                "<div style='font-size:90%;opacity:.8'>Follow one: <code>%mycli attach ID</code></div>")
