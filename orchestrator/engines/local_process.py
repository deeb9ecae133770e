"""One local execution's process: start it, capture its output as it comes, enforce its end.

A ProcessRun owns a thread that has the script started under its own supervisor (see
local_supervisor.py), reads the merged stdout/stderr pipe in chunks (turned into log events by
local_output.py), and on stop or timeout has every descendant signalled
(SIGTERM, SIGKILL after a grace period) — including those that left the process group with
`setsid`. The supervisor kills whatever the script leaves behind when it ends, as a container's
end would, so the pipe always reaches its end.
"""

from __future__ import annotations

import logging
import os
import selectors
import signal
import threading
import time
from pathlib import Path
from typing import Callable, Mapping

from ..engine import STOPPED_BY_USER_EXIT_CODE
from ..shell import GITHUB_TOKEN_VAR, GITLAB_TOKEN_VAR, NOT_STARTED_EXIT_CODE, SSH_KEY_VAR, TIMEOUT_EXIT_CODE, timed_out_words
from ..statedir import open_private
from .local_lines import LineSink
from .local_output import OutputLines
from .local_spawn import Child

log = logging.getLogger("mycli.local")

GRACE_SECONDS = 5.0
DRAIN_SECONDS = 2.0  # after the script's whole tree is gone, how long the pipe may take to drain
READ_CHUNK = 1 << 16
MAX_BATCH_BYTES = 1 << 20
PARTIAL_LINE_IDLE = 0.2  # seconds without output after which a line still waiting for its newline is sent


def credentials_from(environ: Mapping[str, str]) -> dict[str, str]:
    """The git credentials the orchestrator was given, under the names the script reads."""
    names = {"GITHUB_TOKEN": GITHUB_TOKEN_VAR, "GITLAB_TOKEN": GITLAB_TOKEN_VAR, "SSH_PRIVATE_KEY": SSH_KEY_VAR}
    return {ours: environ[theirs] for theirs, ours in names.items() if environ.get(theirs)}


def pid_start_time(pid: int) -> str | None:
    """The kernel's start time of `pid`, so a recycled pid is never mistaken for ours."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[19].decode()
    except (OSError, IndexError):
        return None


class ProcessRun:
    def __init__(
        self,
        *,
        execution_id: str,
        argv: list[str],
        cwd: Path,
        env: dict[str, str],
        stdin_data: bytes | None = None,
        script: str,
        timeout_seconds: int,
        store,
        spawner,
        on_started: Callable[[str, int], None],
        on_finished: Callable[[str, int | None, str, str], None],
        umask: int | None = None,
        max_log_bytes: int | None = None,
        container=None,
    ):
        self.execution_id = execution_id
        self.argv, self.cwd, self.env, self.script = argv, cwd, env, script
        self.stdin_data = stdin_data
        self.timeout_seconds = timeout_seconds
        self.store = store
        self.spawner = spawner
        self.umask = umask  # the script's own (the engine's is stricter, for its state files)
        self.on_started, self.on_finished = on_started, on_finished
        self.container = container  # local_container.ContainerRun: the script runs in docker/podman
        self.done = threading.Event()
        self._lock = threading.Lock()
        self._child: Child | None = None
        self._stop: tuple[str, str] | None = None
        self._kill_at: float | None = None
        self._timed_out = False
        self.lines = LineSink(store, execution_id, max_log_bytes)

    def start(self) -> None:
        threading.Thread(target=self._main, name=f"run-{self.execution_id}", daemon=True).start()

    def request_stop(self, reason: str = "Stopped by user", code: str = "UserInitiated") -> None:
        with self._lock:
            if self._stop is None:
                self._stop = (reason, code)
            if self._child is not None:
                self._signal(signal.SIGTERM)

    # ------------------------------------------------------------------------------------------

    def _main(self) -> None:
        script_path = self.cwd.parent / f"{self.execution_id}.sh"
        try:
            if self.container is not None:
                self.container.write_files(self.script)
            else:
                self.cwd.mkdir(parents=True, exist_ok=True, mode=0o700)
                fd = open_private(script_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    fh.write(self.script)
            self._run()
        except Exception as exc:  # the engine must record a final state whatever happened
            log.exception("execution %s failed in the engine", self.execution_id)
            self.lines.emit([f"✗ The local engine could not run this execution: {exc}"], note=True)
            self.lines.flush_final()
            self.on_finished(self.execution_id, None, f"Failed to run: {exc}", "TaskFailedToStart")
        finally:
            script_path.unlink(missing_ok=True)
            self.done.set()

    def _run(self) -> None:
        if self.container is not None:  # the image first: a pull's progress goes to the log
            failed = self.container.prepare(self._say, lambda: self._stop is not None, self.timeout_seconds,
                                            self.spawner.spawn)
            if failed is not None:
                self.lines.flush_final()
                self.on_finished(self.execution_id, *failed)
                return
            image = self.container.image_fields()
            if image:
                self.store.critical(lambda: self.store.update(self.execution_id, **image))
        with self._lock:
            if self._stop is not None:
                reason, code = self._stop
                self.lines.emit([f"✗ {reason}"], note=True)
                self.lines.flush_final()
                self.on_finished(self.execution_id, STOPPED_BY_USER_EXIT_CODE, reason, code)
                return
            if self.stdin_data is not None:  # fits a pipe's buffer: written before the child reads
                stdin, write_end = os.pipe()
                os.write(write_end, self.stdin_data)
                os.close(write_end)
            else:
                stdin = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
            out_r, out_w = os.pipe()
            try:
                env = self.env if self.container is None else {**self.env, **self.container.client_env()}
                self._child = child = self.spawner.spawn(
                    self.argv, self.cwd, env, stdin, out_w, self.umask,
                    cleanup=None if self.container is None else self.container.orphan_cleanup)
            except BaseException:
                os.close(out_r)
                raise
            finally:
                os.close(stdin)
                os.close(out_w)  # from here the script and its descendants hold the only write ends
        try:
            self.on_started(self.execution_id, child.pid)
            self._pump(child, out_r)
        finally:
            os.close(out_r)
            child.close()
        with self._lock:
            stop = self._stop
        if child.status is None:  # the supervisor itself died: end what it was watching
            with self._lock:
                self._kill_group()
            exit_code, reason, code = None, "Killed: the process supervising this execution ended unexpectedly", "Killed"
            rc = None
        else:
            rc = os.waitstatus_to_exitcode(child.status)
        if stop is not None:
            exit_code, (reason, code) = STOPPED_BY_USER_EXIT_CODE, stop
        elif self._timed_out:
            exit_code, reason, code = TIMEOUT_EXIT_CODE, timed_out_words(self.timeout_seconds), "Timeout"
        elif rc is None:
            pass
        elif rc < 0:
            exit_code, reason, code = 128 - rc, f"Killed by signal {_signal_name(-rc)}", "Killed"
        elif rc == NOT_STARTED_EXIT_CODE:  # the script says why in the log
            exit_code, reason, code = rc, f"Could not start the command (exit code {rc}; the log says why)", "TaskFailedToStart"
        else:
            exit_code, reason, code = rc, f"Command exited with code {rc}", "EssentialContainerExited"
        ended_normally = stop is None and not self._timed_out and rc is not None and rc >= 0
        if self.container is not None:
            told = self.container.outcome(rc) if ended_normally else None
            if told is not None:
                exit_code, reason, code = told
                if code != "EssentialContainerExited":
                    self.lines.emit([f"✗ {reason}"], note=True)
            self.container.cleanup(ended_normally=ended_normally)
        if not ended_normally:
            self.lines.emit([f"✗ {reason}"], note=True)
        self.lines.flush_final()
        self.on_finished(self.execution_id, exit_code, reason, code)

    def _pump(self, child: Child, fd: int) -> None:
        """Read the output until its end and the script's end are both known, enforcing the
        timeout and the stop's grace period meanwhile (also after the output closed early)."""
        os.set_blocking(fd, False)
        output = OutputLines(self.lines)
        deadline = time.monotonic() + self.timeout_seconds
        last_data = time.monotonic()
        drain_until = None
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ, "out")
            sel.register(child, selectors.EVENT_READ, "control")
            eof = False
            while not (eof and child.finished):
                now = time.monotonic()
                if child.finished and drain_until is None:
                    drain_until = now + DRAIN_SECONDS  # every descendant is gone: the end is near
                if drain_until is not None and now >= drain_until:
                    break  # something outside the tree holds the pipe; do not wait for it
                wake = min(deadline, self._kill_at or deadline, drain_until or deadline, now + 0.25)
                if output.line_waiting:  # `printf 'working…'` shows now, not when its newline comes
                    wake = min(wake, last_data + PARTIAL_LINE_IDLE)
                chunks = []
                for key, _ in sel.select(max(0.0, wake - now)):
                    if key.data == "control":
                        child.read()
                        if child.finished:
                            sel.unregister(child)
                        continue
                    size = 0
                    while size < MAX_BATCH_BYTES:
                        try:
                            data = os.read(fd, READ_CHUNK)
                        except BlockingIOError:
                            break
                        if not data:
                            eof = True
                            sel.unregister(fd)
                            break
                        chunks.append(data)
                        size += len(data)
                if chunks:
                    last_data = time.monotonic()
                    output.feed(b"".join(chunks))
                elif output.line_waiting and time.monotonic() - last_data >= PARTIAL_LINE_IDLE:
                    output.send_waiting_line()
                now = time.monotonic()
                with self._lock:
                    if now >= deadline and not self._timed_out and self._stop is None:
                        self._timed_out = True
                        self._signal(signal.SIGTERM)
                    if self._kill_at is not None and now >= self._kill_at:
                        self.lines.emit([f"✗ Still running {GRACE_SECONDS:.0f} s after SIGTERM: killed (SIGKILL)"], note=True)
                        self._signal(signal.SIGKILL)
                        self._kill_at = None
        output.end()

    def _say(self, lines: list[str]) -> None:
        self.lines.emit(lines, note=True)
        self.lines.flush()

    def _signal(self, sig: int) -> None:
        """Every descendant of the script, through its supervisor (callers hold self._lock); in a
        container, every process inside it, which signalling the runtime's client would not reach."""
        if self.container is not None:
            self.container.term(self._grace_from_now) if sig == signal.SIGTERM else self.container.kill()
            if sig == signal.SIGTERM:
                return
        if self._child is None or self._child.finished:
            return
        if sig == signal.SIGKILL:
            self._child.kill()
        else:
            self._child.term()
            if self._kill_at is None:
                self._kill_at = time.monotonic() + GRACE_SECONDS

    def _grace_from_now(self) -> None:
        """The SIGTERM reached the container: SIGKILL if it is still running after the grace."""
        with self._lock:
            if self._kill_at is None:
                self._kill_at = time.monotonic() + GRACE_SECONDS

    def _kill_group(self) -> None:
        """Without a supervisor, the script's own process group is what can still be reached."""
        if self._child is not None and self._child.pid:
            try:
                os.killpg(self._child.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if self.container is not None:
            self.container.kill()


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)
