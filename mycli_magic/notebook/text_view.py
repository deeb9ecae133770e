"""The plain-text view of a run: terminal IPython, nbconvert, nbval, no ipywidgets. It carries the
same facts as the panel, printed as lines from the thread that follows the run.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from ..safe_text import clean_log, escape_controls
from ..summary import clock, summary_line
from .view_settings import ViewSettings, header_line

if TYPE_CHECKING:
    from .handle import Execution


class TextView:
    """Lines printed as they arrive, from the thread that follows (the cell's main thread)."""

    def __init__(self, settings: ViewSettings):
        self.settings = settings
        self.handle: "Execution | None" = None
        self.line_open = False  # the last line printed waits for the rest of it (a partial event)

    def say(self, line: str) -> None:
        print(line, flush=True)

    def show(self, handle: "Execution", background: bool = False, live: bool = True) -> None:
        """Print the header; for a foreground run, stream lines from now on. A background run
        prints nothing from its thread: in a kernel that output would land in whichever cell
        runs next, and in nbval it would make outputs depend on timing."""
        self.handle = handle
        self.say(header_line(handle))
        if handle.info.get("notice"):
            self.say(f"⚠ {escape_controls(handle.info['notice'])}")
        if background:
            ref, name = escape_controls(handle.execution_id), self.settings.handle_name
            follow = f"{name}.wait()" if name else f"%mycli logs {ref} -f"
            self.say(f"→ Running in the background. Follow: {follow} · stop: %mycli stop {ref} · "
                     f"re-attach after a restart: %mycli attach {ref}")
            return
        with handle._lock:
            already = [(ts, message, False) for ts, message in handle.events]
            if already and handle.line_open:
                already[-1] = (*already[-1][:2], True)
            if live:
                handle.subscribe(self._on_update)
        self._print(already)

    def _on_update(self, handle: "Execution", events: list) -> None:
        self._print(events)

    def _print(self, events: list) -> None:
        """(timestamp, message, partial) events as the output was: a partial one is not ended,
        and what follows continues its line (without a time of its own)."""
        if not events:
            return
        parts = []
        for ts, message, partial in events:
            if self.settings.timestamps and not self.line_open:
                message = f"{clock(ts)} | {message}"
            parts.append(message if partial else message + "\n")
            self.line_open = partial
        sys.stdout.write(clean_log("".join(parts)))  # colours kept, other escape sequences dropped
        sys.stdout.flush()

    def _end_line(self) -> None:
        if self.line_open:
            sys.stdout.write("\n")
            self.line_open = False

    def close(self) -> None:
        if self.handle is not None:
            self.handle.unsubscribe(self._on_update)

    def finished(self, handle: "Execution") -> None:
        self.close()
        self._end_line()
        self.say(summary_line(handle.info, self.settings.vcpu, self.settings.memory_gb))

    def artifacts(self, handle: "Execution", files: list, notes: list[str]) -> None:
        """The run's artifacts, one line each, and where they are (before the summary line)."""
        from ..downloads import listing_lines

        self._end_line()
        listing = {**files.listing, "skipped": []}  # the log said what was skipped, with its own count
        for line in listing_lines(listing):
            self.say(f"  {line}")
        for note in notes:
            self.say(note)

    def interrupted(self, handle: "Execution", stopped: bool, detail: str = "") -> str:
        """The one line saying what the interrupt did; the Interrupted exception shows it."""
        self.close()
        self._end_line()
        ref = escape_controls(handle.execution_id)
        if stopped:
            return f"■ Interrupted: stopped execution {ref} on the remote (exit {handle.exit_code})."
        return f"■ Interrupted: execution {ref} may still be running{detail}; stop it with: %mycli stop {ref}"

    def detached(self, handle: "Execution") -> str:
        self.close()
        self._end_line()
        ref = escape_controls(handle.execution_id)
        return f"■ Detached from execution {ref}; it keeps running. Re-attach: %mycli attach {ref} · stop: %mycli stop {ref}"
