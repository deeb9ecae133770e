"""One local execution's process: start it, capture its output as it comes, enforce its end.

A ProcessRun owns a thread that spawns the script in a new session, reads the merged
stdout/stderr pipe in chunks (one timestamp per chunk, lines split across chunks joined), and
ends the whole process group on stop (SIGTERM, SIGKILL after a grace period), on timeout, and
when the script exits while a background descendant still holds the pipe, as a container would.
"""

from __future__ import annotations

import codecs
import logging
import os
import selectors
import signal
import sqlite3
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable, Mapping

from ..engine import MAX_EVENT_CHARS, STOPPED_BY_USER_EXIT_CODE
from ..shell import GITHUB_TOKEN_VAR, GITLAB_TOKEN_VAR, NOT_STARTED_EXIT_CODE, SSH_KEY_VAR, TIMEOUT_EXIT_CODE

log = logging.getLogger("mycli.local")

GRACE_SECONDS = 5.0
READ_CHUNK = 1 << 16
MAX_BATCH_BYTES = 1 << 20
MAX_PENDING_LINES = 50_000  # held in memory while the disk is full; older ones are dropped
PARTIAL_LINE_IDLE = 0.2  # seconds without output after which a line still waiting for its newline is sent


def credentials_from(environ: Mapping[str, str]) -> dict[str, str]:
    """The git credentials the orchestrator was given, under the names the script reads."""
    names = {"GITHUB_TOKEN": GITHUB_TOKEN_VAR, "GITLAB_TOKEN": GITLAB_TOKEN_VAR, "SSH_PRIVATE_KEY": SSH_KEY_VAR}
    return {ours: environ[theirs] for theirs, ours in names.items() if environ.get(theirs)}


def kill_container(argv: list[str]) -> None:
    """Best effort: the container may already be gone, or the daemon slow."""
    try:
        subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=15)
    except (OSError, subprocess.TimeoutExpired):
        pass


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
        kill_argv: list[str] | None = None,
        script: str,
        timeout_seconds: int,
        store,
        on_started: Callable[[str, int], None],
        on_finished: Callable[[str, int | None, str, str], None],
        container=None,
    ):
        self.execution_id = execution_id
        self.argv, self.cwd, self.env, self.script = argv, cwd, env, script
        self.stdin_data = stdin_data
        self.kill_argv = kill_argv  # e.g. `docker kill NAME`: SIGKILL of the client does not reach a container
        self.timeout_seconds = timeout_seconds
        self.store = store
        self.on_started, self.on_finished = on_started, on_finished
        self.container = container  # local_container.ContainerRun: the script runs in docker/podman
        self.done = threading.Event()
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._stop: tuple[str, str] | None = None
        self._kill_at: float | None = None
        self._timed_out = False
        self._seq = 0
        self._pending: list[tuple[int, int, str, int]] = []  # (seq, ts, message, partial)
        self._dropped = 0
        self._line_open = False  # the last event emitted was partial: the next one continues its line

    def start(self) -> None:
        threading.Thread(target=self._main, name=f"run-{self.execution_id}", daemon=True).start()

    def request_stop(self, reason: str = "Stopped by user", code: str = "UserInitiated") -> None:
        with self._lock:
            if self._stop is None:
                self._stop = (reason, code)
            if self._proc is not None:
                self._signal(signal.SIGTERM)
                self._kill_at = time.monotonic() + GRACE_SECONDS

    # ------------------------------------------------------------------------------------------

    def _main(self) -> None:
        script_path = self.cwd.parent / f"{self.execution_id}.sh"
        try:
            if self.container is not None:
                self.container.write_files(self.script)
            else:
                self.cwd.mkdir(parents=True, exist_ok=True, mode=0o700)
                fd = os.open(script_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    fh.write(self.script)
            self._run()
        except Exception as exc:  # the engine must record a final state whatever happened
            log.exception("execution %s failed in the engine", self.execution_id)
            self._emit([f"✗ The local engine could not run this execution: {exc}"])
            self._flush(final=True)
            self.on_finished(self.execution_id, None, f"Failed to run: {exc}", "TaskFailedToStart")
        finally:
            script_path.unlink(missing_ok=True)
            self.done.set()

    def _run(self) -> None:
        if self.container is not None:  # the image first: a pull's progress goes to the log
            failed = self.container.prepare(self._say, lambda: self._stop is not None,
                                            time.monotonic() + self.timeout_seconds)
            if failed is not None:
                self._flush(final=True)
                self.on_finished(self.execution_id, *failed)
                return
        with self._lock:
            if self._stop is not None:
                reason, code = self._stop
                self._emit([f"✗ {reason}"])
                self._flush(final=True)
                self.on_finished(self.execution_id, STOPPED_BY_USER_EXIT_CODE, reason, code)
                return
            stdin = subprocess.DEVNULL
            if self.stdin_data is not None:  # fits a pipe's buffer: written before the child reads
                read_end, write_end = os.pipe()
                os.write(write_end, self.stdin_data)
                os.close(write_end)
                stdin = read_end
            try:
                self._proc = proc = subprocess.Popen(
                    self.argv, cwd=self.cwd, env=self.env, stdin=stdin,
                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
                )
            finally:
                if stdin is not subprocess.DEVNULL:
                    os.close(stdin)
        self.on_started(self.execution_id, proc.pid)
        self._pump(proc)
        rc = proc.wait()
        with self._lock:
            if self.container is None:
                self._signal(signal.SIGKILL)  # leftovers of the group, as a container's end would
            stop = self._stop
        if stop is not None:
            exit_code, (reason, code) = STOPPED_BY_USER_EXIT_CODE, stop
        elif self._timed_out:
            exit_code, reason, code = TIMEOUT_EXIT_CODE, f"Timed out after {self.timeout_seconds} seconds (timeout_seconds)", "Timeout"
        elif rc < 0:
            exit_code, reason, code = 128 - rc, f"Killed by signal {_signal_name(-rc)}", "Killed"
        elif rc == NOT_STARTED_EXIT_CODE:  # the script says why in the log
            exit_code, reason, code = rc, f"Could not start the command (exit code {rc}; the log says why)", "TaskFailedToStart"
        else:
            exit_code, reason, code = rc, f"Command exited with code {rc}", "EssentialContainerExited"
        if self.container is not None:
            told = self.container.outcome(rc) if stop is None and not self._timed_out and rc >= 0 else None
            if told is not None:
                exit_code, reason, code = told
                if code != "EssentialContainerExited":
                    self._emit([f"✗ {reason}"])
            self.container.cleanup(ended_normally=stop is None and not self._timed_out and rc >= 0)
        if stop is not None or self._timed_out or rc < 0:
            self._emit([f"✗ {reason}"])
        self._flush(final=True)
        self.on_finished(self.execution_id, exit_code, reason, code)

    def _pump(self, proc: subprocess.Popen) -> None:
        fd = proc.stdout.fileno()
        os.set_blocking(fd, False)
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        partial = ""
        deadline = time.monotonic() + self.timeout_seconds
        last_poll = last_data = time.monotonic()
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            eof = False
            while not eof:
                now = time.monotonic()
                wake = min(deadline, self._kill_at or deadline, now + 0.25)
                if partial:  # `printf 'working…'` shows now, not when its newline comes
                    wake = min(wake, last_data + PARTIAL_LINE_IDLE)
                ready = sel.select(max(0.0, wake - now))
                chunks = []
                if ready:
                    size = 0
                    while size < MAX_BATCH_BYTES:
                        try:
                            data = os.read(fd, READ_CHUNK)
                        except BlockingIOError:
                            break
                        if not data:
                            eof = True
                            break
                        chunks.append(data)
                        size += len(data)
                if chunks:
                    last_data = time.monotonic()
                    text = partial + decoder.decode(b"".join(chunks))
                    *complete, partial = text.split("\n")
                    if max(map(len, complete), default=0) <= MAX_EVENT_CHARS:
                        self._emit(complete)
                    else:  # the rare over-long line: pieces, all but its last one partial
                        for line in complete:
                            self._emit(_pieces(line)[:-1], partial=True)
                            self._emit(_pieces(line)[-1:])
                    while len(partial) > MAX_EVENT_CHARS:
                        self._emit([partial[:MAX_EVENT_CHARS]], partial=True)
                        partial = partial[MAX_EVENT_CHARS:]
                    self._flush()
                elif partial and time.monotonic() - last_data >= PARTIAL_LINE_IDLE:
                    self._emit([partial], partial=True)  # the rest of its line, when it comes, continues it
                    self._flush()
                    partial = ""
                now = time.monotonic()
                with self._lock:
                    if now >= deadline and not self._timed_out and self._stop is None:
                        self._timed_out = True
                        self._signal(signal.SIGTERM)
                        self._kill_at = now + GRACE_SECONDS
                    if self._kill_at is not None and now >= self._kill_at:
                        self._signal(signal.SIGKILL)
                        self._kill_at = None
                if not eof and now - last_poll >= 0.25:
                    last_poll = now
                    if proc.poll() is not None:  # the script ended but a descendant holds the pipe
                        with self._lock:
                            self._signal(signal.SIGKILL)
        tail = partial + decoder.decode(b"", final=True)
        if tail or self._line_open:  # the output's end ends its last line (the engine's own notes follow)
            self._emit([tail])
        proc.stdout.close()

    def _say(self, lines: list[str]) -> None:
        self._emit(lines)
        self._flush()

    def _signal(self, sig: int) -> None:
        if self.container is not None:  # signalling the client would not reach the container's processes
            self.container.term() if sig == signal.SIGTERM else self.container.kill()
            if sig == signal.SIGTERM or self._proc is None:
                return
        if self._proc is None:
            return
        try:
            os.killpg(self._proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        if sig == signal.SIGKILL and self.kill_argv:
            kill_container(self.kill_argv)

    def _emit(self, lines: list[str], partial: bool = False) -> None:
        """Queue events; `partial`: they are not followed by a newline (LogPage.partial)."""
        if not lines:
            return
        ts, flag = int(time.time() * 1000), int(partial)
        for line in lines:
            self._seq += 1
            self._pending.append((self._seq, ts, line, flag))
        self._line_open = partial

    def _flush(self, final: bool = False) -> None:
        """Store pending lines. On a full disk keep them (up to a bound) and try again later;
        the last flush of a run goes through the store's reserve so its end is recorded."""
        if not self._pending:
            return
        if self._dropped:
            note = f"[mycli: {self._dropped} log lines were dropped because the engine's disk was full]"
            self._pending.insert(0, (self._pending[0][0], self._pending[0][1], note, 0))
            self._pending = [(seq, *rest) for seq, (_, *rest) in enumerate(self._pending, start=self._pending[0][0])]
            self._seq = self._pending[-1][0]
            self._dropped = 0
        if final:
            if not self.store.critical(lambda: self.store.append_lines(self.execution_id, self._pending), attempts=3):
                dropped = len(self._pending)
                self._pending = [(self._pending[0][0], self._pending[-1][1],
                                  f"[mycli: {dropped} log lines were dropped because the engine's disk was full]", 0)]
                self.store.critical(lambda: self.store.append_lines(self.execution_id, self._pending))
            self._pending = []
            return
        try:
            if not self.store.reserve_in_place():
                raise sqlite3.OperationalError("the disk is full (the engine's reserve is spent)")
            self.store.append_lines(self.execution_id, self._pending)
            self._pending = []
        except sqlite3.OperationalError as exc:
            if len(self._pending) > MAX_PENDING_LINES:
                excess = len(self._pending) - MAX_PENDING_LINES
                log.error("execution %s: disk full (%s); dropping %d log lines", self.execution_id, exc, excess)
                first_seq = self._pending[0][0]
                kept = self._pending[excess:]
                self._pending = [(seq, *rest) for seq, (_, *rest) in enumerate(kept, start=first_seq)]
                self._seq = self._pending[-1][0]
                self._dropped += excess


def _pieces(line: str) -> list[str]:
    """A line as events of at most MAX_EVENT_CHARS (an empty line stays one empty event)."""
    return [line[i:i + MAX_EVENT_CHARS] for i in range(0, len(line), MAX_EVENT_CHARS)] or [line]


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)
