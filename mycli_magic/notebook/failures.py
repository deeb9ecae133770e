"""How a cell that followed a run ends badly: the remote command failed (ExecutionFailed), or
the user interrupted the cell (Interrupted). Both show IPython one line, not a traceback into the
magic; both are re-exported by handle.py, where users meet them.
"""

from __future__ import annotations

import subprocess


class ExecutionFailed(subprocess.CalledProcessError):
    """The remote command ended with a non-zero exit code (or none at all), or could not start
    (exit code 200: the clone, the image or the setup failed before it).

    A CalledProcessError, as `%%bash` raises since IPython 8, so Run All, papermill and nbval
    stop at the cell: `returncode` is the remote exit code (-1 when the engine lost it),
    `cmd` the command, `output` the log text, `execution_id` where to look again.
    """

    def __init__(self, returncode: int, cmd: str, output: str | None = None, stderr: str | None = None,
                 execution_id: str = "?", stopped_reason: str | None = None, not_started: str | None = None):
        super().__init__(returncode, cmd, output, stderr)
        self.execution_id = execution_id
        self.stopped_reason = stopped_reason
        self.not_started = not_started  # summary.could_not_start's words, for exit code 200

    @classmethod
    def from_execution(cls, execution: dict, output: str = "") -> "ExecutionFailed":
        from ..summary import could_not_start

        code = execution.get("exit_code")
        return cls(code if isinstance(code, int) else -1, execution.get("command") or "", output,
                   execution_id=execution.get("execution_id") or execution.get("task_arn") or "?",
                   stopped_reason=execution.get("stopped_reason"), not_started=could_not_start(execution))

    def __str__(self) -> str:
        from ..safe_text import escape_controls

        from ..summary import NOT_STARTED_EXIT_CODE

        where = f"(execution {self.execution_id}; full log: %mycli logs {self.execution_id})"
        if self.returncode == NOT_STARTED_EXIT_CODE:  # the command never ran: no clone, no image, ...
            words = self.not_started or "could not start its command"
            return escape_controls(f"the run {words} (exit code {self.returncode}; the log says why) {where}")
        if str(self.stopped_reason or "").startswith("Timed out"):  # shell.timed_out_words: the run's --timeout
            return escape_controls(f"remote command timed out (exit code {self.returncode}: {self.stopped_reason}) {where}")
        what = f"exit code {self.returncode}" if self.returncode != -1 else f"no exit code ({self.stopped_reason})"
        return escape_controls(f"remote command failed with {what} {where}")

    def _render_traceback_(self) -> list[str]:
        """What IPython shows for a failing cell: this one line, not a traceback into the magic."""
        return [f"\x1b[0;31m{type(self).__name__}\x1b[0m: {self}"]


class Interrupted(KeyboardInterrupt):
    """The user interrupted a cell that was following a run (and it was stopped, or detached
    from). Still a KeyboardInterrupt, so Run All stops; IPython shows its one line, the
    view's words, and no traceback into the magic."""

    def __init__(self, line: str):
        super().__init__(line)
        self.line = line

    def _render_traceback_(self) -> list[str]:
        return [self.line]


class SaveFailed(OSError):
    """A handle could not write a file where the user asked (`h.save('/nonexistent/dir/k.log')`):
    an OSError still, shown by IPython as one line that names the path and why."""

    def __str__(self) -> str:
        return str(self.strerror) if self.strerror else super().__str__()

    def _render_traceback_(self) -> list[str]:
        return [f"\x1b[0;31m{type(self).__name__}\x1b[0m: {self}"]
