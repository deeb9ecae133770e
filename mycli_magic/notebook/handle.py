"""An execution as a Python object: what `%%mycli --out VAR` and `%mycli status ID` give back.

The handle owns the log it has read so far and the one follower that reads more, so the
cell, a background thread (`--bg`), the widget panel and the user's own `.wait()` never read
the same lines twice or race each other. Views subscribe to it and are told about new lines
and status changes from whichever thread follows.
"""

from __future__ import annotations

import html
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from ..safe_text import escape_controls
from ..summary import clock, format_duration, image_shown, outcome, summary_line
from .failures import ExecutionFailed, Interrupted, SaveFailed  # noqa: F401 (documented as handle.ExecutionFailed, handle.Interrupted)
from .handle_files import ArtifactFiles

if TYPE_CHECKING:
    from ..client import ApiClient

STOPPED = "STOPPED"
Listener = Callable[["Execution", list], None]


class Execution(ArtifactFiles):
    """A remote execution: `execution_id`, `task_arn`, `status`, `exit_code`, `logs` and
    `.wait()`, `.stop()`, `.refresh()`; its files: `.artifacts`, `.download()`, `.open(name)`
    (handle_files.py). Thread-safe; one follower at a time."""

    def __init__(self, client: "ApiClient", info: dict, max_idle_sleep: float = 2.0):
        self.client = client
        self.info = dict(info)
        # (timestamp ms, line), in order; a line the engine sent in parts (partial events, e.g.
        # `printf 'working…'` before its newline) is one entry that grows as its parts arrive
        self.events: list[tuple[int, str]] = []
        self.line_open = False  # the last line still waits for the rest of it
        self.revision = 0  # grows with every page read (a line can grow without a new one)
        self.max_idle_sleep = max_idle_sleep
        self._lock = threading.RLock()
        self._follow_lock = threading.Lock()
        self._done = threading.Event()
        self._listeners: list[Listener] = []
        self._thread: threading.Thread | None = None
        self._state = None  # follow.FollowState, created on first read
        self._error: BaseException | None = None
        self._received_at = time.monotonic()

    # what the user reads ---------------------------------------------------------------------

    execution_id = property(lambda self: self.info.get("execution_id"))
    task_arn = property(lambda self: self.info.get("task_arn"))
    status = property(lambda self: self.info.get("status"))
    exit_code = property(lambda self: self.info.get("exit_code"))
    duration_seconds = property(lambda self: self.info.get("duration_seconds"))
    command = property(lambda self: self.info.get("command"))

    @property
    def ref(self) -> str:
        return self.execution_id or self.task_arn

    @property
    def done(self) -> bool:
        """True once the execution is STOPPED and its whole log has been read."""
        return self._done.is_set()

    @property
    def logs(self) -> str:
        """The output so far, one line per log event (reads what is new unless a follower runs)."""
        self._drain()
        with self._lock:
            return "\n".join(message for _, message in self.events)

    def log_lines(self, timestamps: bool = False) -> list[str]:
        """The output so far as lines (reads what is new, as `logs` does); with timestamps in the
        API's `YYYY-MM-DD HH:MM:SS UTC | ` form."""
        self._drain()
        return self._lines(timestamps)

    def _lines(self, timestamps: bool = False) -> list[str]:
        with self._lock:
            events = list(self.events)
        if not timestamps:
            return [message for _, message in events]
        return [f"{clock(ts)} | {message}" for ts, message in events]

    def tail(self, n: int | None) -> tuple[int, list[tuple[int, str]]]:
        """(lines read so far, the last `n` of them; all when n is None) without copying the rest."""
        with self._lock:
            total = len(self.events)
            return total, (list(self.events) if n is None or n >= total else self.events[total - n:])

    def save(self, path: str | Path | None = None, timestamps: bool = True) -> Path:
        """Write the whole log to `path` (default `mycli-<execution id>.log` here); returns it."""
        self._drain()
        target = Path(path or f"mycli-{self.execution_id or 'log'}.log")
        lines = self._lines(timestamps)
        try:
            target.write_text("\n".join(lines) + ("\n" if lines else ""), encoding="utf-8")
        except OSError as exc:
            from ..safe_text import escape_controls

            hint = " (create the folder first)" if isinstance(exc, FileNotFoundError) else ""
            raise SaveFailed(exc.errno, escape_controls(f"cannot save the log to {target}: {exc.strerror or exc}{hint}")) from None
        return target

    # actions ---------------------------------------------------------------------------------

    def refresh(self) -> "Execution":
        """Ask the API for the current status (and tell the views)."""
        self._set_info(self.client.status(self.ref))
        return self

    def stop(self, wait: float = 0.0) -> "Execution":
        """Stop the remote run (STOPPED, exit 130); harmless when it already ended. With `wait`,
        poll up to that many seconds until the engine reports it STOPPED (an engine may take a
        moment: the local one ends the process group, ECS sends SIGTERM then SIGKILL)."""
        self._set_info(self.client.stop(self.ref))
        deadline = time.monotonic() + wait
        while self.status != STOPPED and time.monotonic() < deadline:
            time.sleep(0.2)
            self.refresh()
        return self

    def wait(self, timeout: float | None = None, check: bool = False) -> "Execution":
        """Block until the run ends and its log is read; with `check`, raise ExecutionFailed
        on a non-zero exit. `timeout` (seconds) only limits this wait, not the run."""
        thread = self._thread
        if thread is not None and thread.is_alive():
            thread.join(timeout)
            if thread.is_alive():
                raise TimeoutError(f"execution {self.ref} is still {self.status} after {timeout} s")
        elif not self.done:
            self._follow()
        if self._error is not None and not self.done:
            raise self._error
        if check:
            self.check()
        return self

    def check(self) -> "Execution":
        """Raise ExecutionFailed if the run ended with a non-zero exit code (or none)."""
        __tracebackhide__ = True
        failure = self.failure()
        if failure is not None:
            raise failure
        return self

    def failure(self) -> ExecutionFailed | None:
        """The ExecutionFailed this run amounts to, or None (still running, or exit 0)."""
        if self.status == STOPPED and self.exit_code != 0:
            return ExecutionFailed.from_execution(self.info, "\n".join(self._lines()))
        return None

    def follow_in_background(self) -> threading.Thread:
        """Read the log in a daemon thread until the run ends (for `--bg` and live panels)."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._background, name=f"mycli-follow-{self.ref}", daemon=True)
                self._thread.start()
            return self._thread

    def following(self) -> bool:
        """True while a background follower is reading the log."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def subscribe(self, listener: Listener) -> None:
        """`listener(handle, new_events)` on new lines ([] for a status change), from any thread."""
        with self._lock:
            self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    # following -------------------------------------------------------------------------------

    def _background(self) -> None:
        try:
            self._follow()
        except Exception as exc:  # shown by the views; wait() re-raises it
            self._error = exc
            self._notify([])

    def _follow(self) -> None:
        from ..follow import follow

        with self._follow_lock:
            if self.done:
                return
            state = self._follow_state()
            for page in follow(self.client, self.ref, state, max_idle_sleep=self.max_idle_sleep):
                self._add_page(page)
            self._set_info(self.client.status(self.ref), finished=True)

    def _drain(self) -> None:
        """Read every line there is now, without waiting, unless a follower is reading. The run
        is over once a page is STOPPED with nothing new and not `complete: false` (an engine
        whose last lines trail the stop, as CloudWatch's do, says so until they are in)."""
        if self.done or not self._follow_lock.acquire(blocking=False):
            return
        try:
            state = self._follow_state()
            while True:
                page = self.client.logs(self.ref, next_token=state.next_token)
                state.next_token = page.get("next_token") or state.next_token
                if not page.get("events"):
                    break
                self._add_page(page)
            if page.get("status") == STOPPED and page.get("complete") is not False:
                self._set_info(self.client.status(self.ref), finished=True)
        finally:
            self._follow_lock.release()

    def _follow_state(self):
        from ..follow import FollowState

        if self._state is None:
            self._state = FollowState(self.ref)
        return self._state

    def _add_page(self, page: dict) -> None:
        """Take a page: its lines join `events` (a partial one continued by what follows it) and
        the listeners get the page's events as (timestamp, message, partial)."""
        events = [(int(e.get("timestamp") or 0), str(e.get("message", "")), bool(e.get("partial")))
                  for e in page.get("events") or []]
        status_changed = page.get("status") not in (None, self.status)
        with self._lock:
            if not self.line_open and not any(partial for _, _, partial in events):
                self.events.extend((ts, message) for ts, message, _ in events)
            else:
                for ts, message, partial in events:
                    if self.line_open:
                        first_ts, before = self.events[-1]
                        self.events[-1] = (first_ts, before + message)
                    else:
                        self.events.append((ts, message))
                    self.line_open = partial
            self.revision += 1
        if status_changed:
            self._set_info(self.client.status(self.ref), notify=False)
        self._notify(events)

    def _set_info(self, info: dict, finished: bool = False, notify: bool = True) -> None:
        with self._lock:
            self.info.update(info)
            self._received_at = time.monotonic()
            if finished and self.status == STOPPED:
                self._done.set()
        if notify:
            self._notify([])

    def elapsed(self) -> float | None:
        """Seconds the run has been running by now (the API's figure plus time since asked)."""
        seconds = self.duration_seconds
        if seconds is None or self.status == STOPPED:
            return seconds
        return seconds + (time.monotonic() - self._received_at)

    def _notify(self, events: list) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener(self, events)

    # display ---------------------------------------------------------------------------------

    def where(self) -> str:
        """`repo@branch`, or `no git`."""
        if self.info.get("skip_git") or not self.info.get("repo"):
            return "no git"
        return f"{self.info['repo']}@{self.info.get('branch') or 'main'}"

    def __repr__(self) -> str:
        state = self.status or "?"
        if state == STOPPED:
            state = f"{state} {outcome(self.info)[1]}"
        took = format_duration(self.duration_seconds)
        return escape_controls(f"<mycli execution {self.execution_id} {state}{', ' + took if took else ''}; "
                               f"image={image_shown(self.info, 'default')}, {self.where()}, {len(self.events)} lines read>")

    def _repr_html_(self) -> str:
        rows = [("Execution", self.execution_id), ("Status", self.status), ("Image", image_shown(self.info)),
                ("Repository", self.where()), ("Command", self.command), ("Task ARN", self.task_arn)]
        if self.status == STOPPED:
            rows.insert(2, ("Result", summary_line(self.info)))
        body = "".join(
            f"<tr><th style='text-align:left;padding-right:1em'>{html.escape(k)}</th>"
            f"<td style='text-align:left;font-family:var(--jp-code-font-family,monospace)'>{html.escape(str(v or ''))}</td></tr>"
            for k, v in rows
        )
        hint = (f"{len(self.events)} log lines read · <code>.logs</code> · <code>.wait()</code> · <code>.stop()</code> · "
                "<code>.artifacts</code> · <code>.download()</code> · "
                f"<code>%mycli attach {html.escape(str(self.execution_id))}</code>")
        return f"<table class='mycli-handle'>{body}</table><div style='font-size:90%;opacity:.8'>{hint}</div>"
