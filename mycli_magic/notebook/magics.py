"""`%%mycli` and `%mycli`: run a cell remotely through the standard API, like a local cell.

This module is what `%load_ext mycli_magic` imports, so it imports only IPython and traitlets
(already loaded in any IPython); the API client, yaml, the widget panel and ipywidgets are
imported when a magic first runs.

It is the one place where the notebook front turns typed errors into user words: a MycliError
becomes an IPython UsageError (one line, no traceback); a non-zero remote exit becomes
ExecutionFailed, a CalledProcessError, so Run All, papermill and nbval stop at the cell.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from typing import Iterator

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import magic_arguments
from traitlets import Bool, CaselessStrEnum, Float, Int, Unicode, Union

from ..errors import MycliError
from .arguments import FLAG_NAMES, exec_arguments, parse_options

STOP_CONFIRM_SECONDS = 15.0  # after an interrupt, how long to wait for the engine to report STOPPED


def expand(shell, line: str, where: str) -> str:
    """The line with IPython's `$var` / `{expr}` expansion, even when one field does not
    resolve (IPython would then expand nothing); the fields left as written are named in one
    line on stderr."""
    import sys

    from .expansion import expand_line

    expanded, kept = expand_line(line, shell.user_ns)
    if kept:
        print(f"⚠ {where}: left as written (no such Python name or expression here): {', '.join(kept)}; "
              "the rest of the line was expanded (write $$ for a literal $)", file=sys.stderr, flush=True)
    return expanded


@magics_class
class MycliMagics(Magics):
    """`%%mycli [options]` runs the cell remotely; `%mycli COMMAND` mirrors the `mycli` CLI."""

    image = Unicode(None, allow_none=True, help=(
        "Image for %%mycli when neither --image nor .mycli.yaml names one, e.g. 'python:3.11'. "
        "None: the engine's default image.")).tag(config=True)
    cpu = Float(None, allow_none=True, help=(
        "vCPU for %%mycli runs when neither --cpu nor .mycli.yaml sets it: 0.25, 0.5, 1, 2, 4, 8 or 16. "
        "None: the engine's default.")).tag(config=True)
    memory = Union([Int(), Unicode()], default_value=None, allow_none=True, help=(
        "Memory for %%mycli runs when neither --memory nor .mycli.yaml sets it: MiB (4096) or '4GiB'. "
        "None: the smallest AWS Fargate allows with the cpu, or the engine's default.")).tag(config=True)
    profile = Unicode(None, allow_none=True, help=(
        "Profile of $MYCLI_HOME/config.yaml to use when --profile is not given. "
        "None: $MYCLI_PROFILE, else the top-level settings, else the embedded local engine.")).tag(config=True)
    timeout = Int(0, min=0, max=86400, help=(
        "Remote timeout in seconds (0 to 86400) when neither --timeout nor .mycli.yaml sets one; "
        "0: the engine's default (1800).")).tag(config=True)
    poll_interval = Float(2.0, min=0.05, max=60.0, help=(
        "Longest pause in seconds (0.05 to 60) between log polls against an engine that answers at once "
        "(engines that hold the request open answer as soon as a line arrives). "
        "Lower is snappier, higher makes fewer API calls.")).tag(config=True)
    display = CaselessStrEnum(["auto", "widget", "text"], default_value="auto", help=(
        "How runs are shown: 'widget' (the live panel), 'text' (plain streamed lines), or 'auto': "
        "the panel when the frontend renders widgets (JupyterLab, Notebook 7, VS Code), text in "
        "terminal IPython, nbconvert and nbval. $MYCLI_DISPLAY overrides it.")).tag(config=True)
    timestamps = Bool(False, help="Show the time (UTC) of each log line.").tag(config=True)
    tail_lines = Int(2000, min=10, max=50_000, help=(
        "How many of the newest log lines (10 to 50000) the panel renders; the whole log stays available "
        "(Save log, %mycli logs ID, handle.logs).")).tag(config=True)
    task_vcpu = Float(0.25, help="vCPU of the AWS task, for the cost estimate (when the engine does not report it).").tag(config=True)
    task_memory_gb = Float(0.5, help="Memory in GB of the AWS task, for the cost estimate.").tag(config=True)
    download_artifacts = Bool(True, help=(
        "When a waiting %%mycli cell ends with artifacts (files the command wrote to $MYCLI_OUTPUTS), download "
        "them into mycli-runs/<execution id>/ beside the notebook (sha256 checked) and show them. "
        "False: only list them (handle.download() fetches them).")).tag(config=True)
    download_limit_mb = Float(200.0, min=0.0, help=(
        "At most this many MiB of artifacts are downloaded by a cell by itself; the files over it are "
        "listed, not fetched (handle.download() or %mycli artifacts ID -o DIR gets them).")).tag(config=True)

    # %%mycli ---------------------------------------------------------------------------------

    @no_var_expand  # expand() does it, without IPython's all-or-nothing
    @magic_arguments("%%mycli")
    @exec_arguments
    @cell_magic("mycli")
    def mycli_cell(self, line: str, cell: str):
        """Run the cell's body as a shell command in a fresh, isolated environment.

        The body is sent verbatim (no $var or {var} expansion); the options line is expanded
        as usual, so `--env N={n}` passes a Python value. Settings come from the options,
        then .mycli.yaml in the working directory, then the git remote, then %config defaults.

        By default the cell waits, streaming the output; a non-zero exit raises ExecutionFailed
        (a subprocess.CalledProcessError). Interrupting the kernel (■) stops the remote run
        (exit 130). --bg detaches instead: the run goes on and the cell returns at once.
        Re-attach from any kernel with `%mycli attach ID`.
        """
        __tracebackhide__ = True
        args = parse_options(self.mycli_cell, expand(self.shell, line, "%%mycli"))
        if args.out is not None and not args.out.isidentifier():
            raise UsageError(f"--out {args.out!r} is not a Python variable name")
        if not cell.strip():
            raise UsageError("the cell is empty: write the command to run on the lines below %%mycli")
        from ..safe_text import escape_controls
        from ..uploads import prepare, send

        with self.user_errors():
            payload = self._payload(args, cell)
            # paths, the upload cap and git are checked before anything is sent or started
            with prepare(args.upload, args.local_changes, payload, cwd=os.getcwd()) as files:
                for note in files.lines:  # what goes along: `→ Upload: data (3 files, 1.2 MiB) → $MYCLI_INPUTS`
                    print(escape_controls(note), flush=True)
                client = self.connect(args.profile)
                info = client.exec({**payload, **send(client, files)})
        from .handle import Execution

        handle = Execution(client, info, max_idle_sleep=self.poll_interval)
        if args.out:
            self.shell.user_ns[args.out] = handle
        view = self.make_view(handle_name=args.out)
        view.show(handle, background=args.bg)
        if args.bg:
            return None
        self.wait_in_cell(handle, view, stop_on_interrupt=True, collect=True)
        failure = None if args.no_raise else handle.failure()
        if failure is not None:
            raise failure
        return None

    def _payload(self, args, cell: str) -> dict:
        from ..project import parse_env_pairs, resolve_exec_settings

        resolved = resolve_exec_settings(
            cell, repo=args.repo, branch=args.branch, image=args.image, env=parse_env_pairs(args.env),
            timeout=args.timeout, skip_git=args.skip_git, cwd=os.getcwd(), flag_names=FLAG_NAMES,
            cpu=args.cpu, memory=args.memory, size_defaults=(self.cpu, self.memory, "%config MycliMagics"),
            local_changes=args.local_changes,
        )
        payload = dict(resolved.payload)
        if "image" not in payload and self.image:
            payload["image"] = self.image
        if "timeout_seconds" not in payload and self.timeout:
            payload["timeout_seconds"] = self.timeout
        return payload

    # %mycli ----------------------------------------------------------------------------------

    @no_var_expand
    @line_magic("mycli")
    def mycli_line(self, line: str):
        """%mycli status|logs|stop|list|attach|artifacts|server|configure|init|destroy|doctor ... (the CLI's commands)

          %mycli status ID            the execution as a handle (.logs, .wait(), .stop())
          %mycli logs ID [-f] [-t]    its log so far; -f: live, until it ends; -t: timestamps
          %mycli attach ID [--out V]  the live panel with the whole log (e.g. after a kernel restart)
          %mycli stop ID              stop it (exit 130)
          %mycli artifacts ID [-o DIR]  the files it wrote to $MYCLI_OUTPUTS; -o: download them
          %mycli list [--limit N]     recent executions (a table)
          %mycli server status|stop   the kernel's embedded engine: where, which runtime / stop it (the
                                      next run starts it again and probes docker/podman anew)
          %mycli configure ...        as `mycli configure` (endpoint, API key, profiles)
          %mycli init ... / destroy   deploy or remove the AWS stack (needs the AWS extras)
          %mycli doctor ...           check the deployed stack part by part; says what to run

        Every command about executions takes --profile P. The line gets $var / {var} expansion.
        """
        __tracebackhide__ = True
        from . import line_commands

        return line_commands.run_line(self, expand(self.shell, line, "%mycli"))

    # shared by the cell and line magics --------------------------------------------------------

    @contextlib.contextmanager
    def user_errors(self) -> Iterator[None]:
        """MycliError → UsageError: one line that says what to do, no traceback (unless MYCLI_DEBUG);
        anything else unexpected (a bug) → one line too, saying how to see the traceback."""
        __tracebackhide__ = True
        try:
            yield
        except (UsageError, subprocess.CalledProcessError):
            raise  # already in the user's words (ExecutionFailed is a CalledProcessError)
        except MycliError as exc:
            if os.environ.get("MYCLI_DEBUG"):
                raise
            raise UsageError(str(exc)) from None
        except Exception as exc:
            if os.environ.get("MYCLI_DEBUG"):
                raise
            raise UsageError(f"internal error: {type(exc).__name__}: {exc}; set MYCLI_DEBUG=1 for the traceback") from None

    def connect(self, profile: str | None):
        from ..client import connect

        return connect(profile or self.profile or None, announce=lambda line: print(line, flush=True))

    def make_view(self, handle_name: str | None = None):
        from .display import ViewSettings, choose_display, make_view

        settings = ViewSettings(timestamps=self.timestamps, tail_lines=self.tail_lines, vcpu=self.task_vcpu,
                                memory_gb=self.task_memory_gb, handle_name=handle_name)
        return make_view(choose_display(self.shell, self.display), settings)

    def wait_in_cell(self, handle, view, stop_on_interrupt: bool, collect: bool = False) -> None:
        """Follow until the run ends. An interrupt stops the remote run (the cell's own run) or
        detaches (a run only being watched), says so in one line, and re-raises. With `collect`,
        the run's artifacts are then listed and (download_artifacts) saved beside the notebook."""
        __tracebackhide__ = True
        try:
            with self.user_errors():
                handle.wait()
        except KeyboardInterrupt:
            from .handle import Interrupted

            line = self._stop_after_interrupt(handle, view, collect) if stop_on_interrupt else view.detached(handle)
            raise Interrupted(line) from None
        except BaseException:
            view.close()
            raise
        if collect:
            self._collect(handle, view)
        view.finished(handle)

    def _collect(self, handle, view) -> None:
        """The run's artifacts, listed and saved; an interrupt here leaves the (ended) run alone."""
        __tracebackhide__ = True
        from .results import show_artifacts

        try:
            show_artifacts(handle, view, self.download_artifacts, int(self.download_limit_mb * 1024 * 1024))
        except KeyboardInterrupt:
            from .handle import Interrupted

            ref = handle.execution_id
            line = f"■ Interrupted while saving the artifacts of execution {ref}; get them with: %mycli artifacts {ref} -o DIR"
            view.close()
            raise Interrupted(line) from None

    def _stop_after_interrupt(self, handle, view, collect: bool) -> str:
        """Stop the run; returns the one line saying how that went. With `collect`, a run that
        did stop has its artifacts listed and saved first, as after any end: what a stopped
        training run wrote (its checkpoints) is often what the user interrupted it to look at."""
        try:
            handle.stop(wait=STOP_CONFIRM_SECONDS)
        except (MycliError, KeyboardInterrupt) as exc:
            return view.interrupted(handle, stopped=False, detail=f" (the stop request failed: {exc or 'interrupted again'})")
        if handle.status != "STOPPED":
            return view.interrupted(handle, stopped=False, detail=f" (asked to stop; it is still {handle.status})")
        with contextlib.suppress(MycliError, KeyboardInterrupt):  # the last lines, e.g. the engine's own "stopped" note
            handle._drain()
            if not handle.done:  # they can trail the stop (CloudWatch): follow until the engine has them all
                view.say("… reading the last log lines (interrupt again to skip)")
                handle.wait()
        if collect:
            self._collect_after_stop(handle, view)
        return view.interrupted(handle, stopped=True)

    def _collect_after_stop(self, handle, view) -> None:
        """_collect, where a second interrupt skips the artifacts (one line says how to get them)
        and still ends the cell with the first interrupt's line."""
        from .handle import Interrupted

        try:
            self._collect(handle, view)
        except Interrupted as exc:
            view.say(str(exc))


def load_ipython_extension(ipython) -> None:
    ipython.register_magics(MycliMagics(shell=ipython, parent=ipython))
    cleanup = ipython.input_transformers_cleanup
    if give_an_empty_cell_a_body not in cleanup:  # %reload_ext adds it once
        cleanup.append(give_an_empty_cell_a_body)


def give_an_empty_cell_a_body(lines: list[str]) -> list[str]:
    """A `%%mycli ...` cell with nothing below gets an empty body line.

    IPython answers a body-less cell magic itself: "Did you mean the line magic %mycli (single
    %)?", a dead end (%mycli does not run commands). With a body, %%mycli says what to do: a
    command on the options line goes in the cell body, or the cell is empty.
    """
    import re

    if len(lines) == 1 and re.match(r"%%mycli(\s|$)", lines[0]):
        return [lines[0].rstrip("\n") + "\n", "\n"]
    return lines
