"""The plain-text view of a run: terminal IPython, nbconvert, nbval, no ipywidgets. It carries the
same facts as the panel, printed as lines from the thread that follows the run.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from ..engine_notes import notice_text
from ..safe_text import clean_log, escape_controls
from ..summary import clock, summary_line
from ..transfer import human_size
from .text_cap import TextCap
from .view_settings import STOP_ENGINE, ViewSettings, header_line

if TYPE_CHECKING:
    from .handle import Execution


class TextView:
    """Lines printed as they arrive, from the thread that follows (the cell's main thread)."""

    def __init__(self, settings: ViewSettings):
        self.settings = settings
        self.handle: "Execution | None" = None
        self.line_open = False  # the last line printed waits for the rest of it (a partial event)
        self.cap = None if _is_terminal() else TextCap(settings.tail_lines)  # what a notebook stores

    def say(self, line: str) -> None:
        print(line, flush=True)

    def show(self, handle: "Execution", background: bool = False, live: bool = True) -> None:
        """Print the header; for a foreground run, stream lines from now on. A background run
        prints nothing from its thread: in a kernel that output would land in whichever cell
        runs next, and in nbval it would make outputs depend on timing."""
        self.handle = handle
        self.say(header_line(handle))
        notice = notice_text(handle.info, STOP_ENGINE)
        if notice:
            self.say(f"⚠ {escape_controls(notice)}")
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
        and what follows continues its line (without a time of its own); past the head of the
        cap, held for the end (text_cap.py)."""
        if self.cap is not None:
            events, capped = self.cap.admit(events)
            self._write(events)
            if capped:
                self._end_line()
                tail = f"{self.cap.tail_lines:,}"
                self.say(f"… more output: its last {tail} lines are shown when the run ends "
                         f"(the whole log: %mycli logs {self._ref()}; MycliMagics.tail_lines sets how many)")
            return
        self._write(events)

    def _ref(self) -> str:
        return escape_controls(self.handle.execution_id) if self.handle is not None else "ID"

    def _print_tail(self) -> None:
        """The held newest lines, after the line that says what was left out before them."""
        if self.cap is None:
            return
        lines, chars, held = self.cap.drain()
        if lines or chars:
            self._end_line()
            self.say(f"… {lines:,} {'line' if lines == 1 else 'lines'} ({human_size(chars)}) omitted here; "
                     f"the whole log: %mycli logs {self._ref()}")
        self._write(held)

    def _write(self, events: list) -> None:
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
        self._print_tail()

    def finished(self, handle: "Execution") -> None:
        self.close()
        self._end_line()
        self.say(summary_line(handle.info, self.settings.vcpu, self.settings.memory_gb))

    def artifacts(self, handle: "Execution", files: list, notes: list[str]) -> None:
        """The run's artifacts, one line each, and where they are (before the summary line)."""
        from ..downloads import listing_lines

        self._print_tail()
        self._end_line()
        listing = {**files.listing, "skipped": []}  # the log said what was skipped, with its own count
        for line in listing_lines(listing):
            self.say(f"  {line}")
        for note in notes:
            self.say(note)
        if _in_a_kernel():
            _display_images(files)

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


def _is_terminal() -> bool:
    """Terminal IPython: nothing printed is stored, so nothing is held back."""
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def _in_a_kernel() -> bool:
    """A Jupyter kernel stores display_data (terminal IPython would print its text/plain repr)."""
    from IPython import get_ipython

    return getattr(get_ipython(), "kernel", None) is not None


def _display_images(files: list) -> None:
    """The saved images as display_data, which nbconvert and papermill keep in the .ipynb (the
    panel shows them inline; a text view would only name them). PNG, JPEG and GIF as
    IPython's Image; an SVG as an `<img>` with a data: URI (panel_files.img_html), never as
    markup a frontend would put in the page, where it could run script."""
    from IPython.display import HTML, Image, display

    from .panel_files import img_html, inline_images

    for name, (kind, data) in inline_images(files).items():
        if kind == "image/svg+xml":
            display(HTML(img_html(kind, data, escape_controls(name))))
        else:
            display(Image(data=data, format=kind.split("/")[1]))
