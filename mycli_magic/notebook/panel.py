"""The live widget panel (ipywidgets 8) for one execution.

Everything the panel shows is a widget *value* (HTML strings) set from whichever thread
follows the run — the cell's own thread, a `--bg` follower or the ticker that keeps the
elapsed time moving. Widget state is addressed by model, not by cell, so updates land in the
panel's own cell even after other cells have run (an `Output` context manager used from a
thread would write into the latest cell under ipykernel 7).

The log view renders a bounded tail (2,000 lines by default) at most a few times a second, so
a run printing 100,000 lines keeps the page responsive; the whole log stays one click (Save
log) or one call (`%mycli logs ID`, `handle.logs`) away, and the panel says so.

Buttons are handled by the kernel when it is idle: for a `--bg` or attached panel at once; in a
blocking cell the kernel is busy following, so there the interrupt button (■) is the way to
stop, and the panel says that instead of offering a Stop button that cannot answer.
"""

from __future__ import annotations

import html
import os
import re
import threading
import time
from typing import TYPE_CHECKING

import ipywidgets as W
from IPython.display import display

from ..engine_notes import notice_text
from ..errors import MycliError
from ..summary import clock, format_duration, image_shown, outcome, summary_line
from .panel_style import CSS
from .view_settings import STOP_ENGINE, ViewSettings

if TYPE_CHECKING:
    from .handle import Execution

SHOW_ALL_LIMIT = 50_000  # "Show all" still keeps the page usable
TICK_SECONDS = 1.0
MIN_RENDER_INTERVAL = 0.25
_ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


class PanelView:
    """Shows one execution live; `widget` is the ipywidgets box."""

    def __init__(self, settings: ViewSettings):
        self.settings = settings
        self.handle: "Execution | None" = None
        self.blocking = True
        self._messages: list[str] = []  # extra note lines (escaped HTML)
        self._render_lock = threading.RLock()
        self._last_log_key: tuple | None = None
        self._last_render = 0.0
        self._closed = threading.Event()
        self._started = time.monotonic()
        self._shown = (0, 0)  # (lines rendered, lines read when rendered)

        self.header = W.HTML()
        self.log = W.HTML()
        self.note = W.HTML()
        self.summary = W.HTML()
        small = W.Layout(width="auto")
        self.stop_button = W.Button(description="Stop", icon="stop", button_style="danger", layout=W.Layout(width="auto"),
                                    tooltip="Stop the remote execution (exit 130)")
        self.refresh_button = W.Button(description="Refresh", icon="refresh", layout=small, tooltip="Ask for the current status")
        self.follow_toggle = W.ToggleButton(value=True, description="Follow", icon="arrow-down", layout=small,
                                            tooltip="Keep showing new lines as they arrive")
        self.timestamps_toggle = W.ToggleButton(value=settings.timestamps, description="Timestamps", icon="clock-o",
                                                layout=small, tooltip="Show when each line arrived (UTC)")
        self.show_all_toggle = W.ToggleButton(value=False, description="Show all", icon="expand", layout=small,
                                              tooltip=f"Render the whole log (up to {SHOW_ALL_LIMIT:,} lines), not just the tail")
        self.save_button = W.Button(description="Save log", icon="download", layout=small,
                                    tooltip="Write the whole log to mycli-<execution id>.log in the working directory")
        self.stop_button.on_click(lambda _: self._act(self._stop))
        self.refresh_button.on_click(lambda _: self._act(self._refresh))
        self.save_button.on_click(lambda _: self._act(self._save))
        for toggle in (self.follow_toggle, self.timestamps_toggle, self.show_all_toggle):
            toggle.observe(lambda _: self.render(force=True), names="value")
        controls = W.HBox([self.stop_button, self.refresh_button, self.follow_toggle, self.timestamps_toggle,
                           self.show_all_toggle, self.save_button], layout=W.Layout(flex_flow="row wrap", margin="4px 0"))
        self.widget = W.VBox([W.HTML(CSS), self.header, controls, self.log, self.note, self.summary])
        self.widget.add_class("mycli-panel")

    # the view protocol -------------------------------------------------------------------------

    def show(self, handle: "Execution", background: bool = False, live: bool = True) -> None:
        """Display the panel; `background`: the kernel stays free (buttons work), a thread follows."""
        self.handle = handle
        self.blocking = not background
        notice = notice_text(handle.info, STOP_ENGINE)
        if notice:  # e.g. an image the engine could not use
            self._messages.append(html.escape(f"⚠ {notice}"))
        if self.blocking:  # the kernel is busy following this run, so a click could not be answered
            self.stop_button.tooltip = "The kernel is busy following this run: interrupt the kernel (■) to stop it"
        self.render(force=True)
        display(self.widget)
        handle.subscribe(self._on_update)
        self._ensure_ticker()
        if background and live:
            handle.follow_in_background()

    def say(self, line: str) -> None:
        self._messages.append(html.escape(line))
        self.render(force=True)

    def finished(self, handle: "Execution") -> None:
        self.render(force=True)
        self.close()

    def artifacts(self, handle: "Execution", files: list, notes: list[str]) -> None:
        """The run's artifacts under the log: links to the local copies, images inline."""
        from IPython.display import HTML

        from .panel_files import files_html

        self.files = W.Output()
        self.files.append_display_data(HTML(files_html(files, notes)))
        children = list(self.widget.children)
        self.widget.children = children[:-1] + [self.files, children[-1]]  # above the summary

    def interrupted(self, handle: "Execution", stopped: bool, detail: str = "") -> str:
        ref = handle.execution_id
        line = (f"■ Interrupted: stopped execution {ref} on the remote (exit {handle.exit_code})." if stopped else
                f"■ Interrupted: execution {ref} may still be running{detail}; stop it with: %mycli stop {ref}")
        self.say(line)
        self.close()
        return line

    def detached(self, handle: "Execution") -> str:
        line = f"■ Detached from execution {handle.execution_id}; it keeps running."
        self.say(line)
        self.close()
        return line

    def close(self) -> None:
        """Stop ticking and stop listening (the widgets stay as they are)."""
        self.render(force=True)
        self._closed.set()
        if self.handle is not None:
            self.handle.unsubscribe(self._on_update)

    # updates -----------------------------------------------------------------------------------

    def _on_update(self, handle: "Execution", events: list) -> None:
        self.render(force=not events or handle.done)

    def _ensure_ticker(self) -> None:
        """One thread that keeps the elapsed time moving and flushes throttled log updates."""
        ticker = getattr(self, "_ticker", None)
        if ticker is None or not ticker.is_alive():
            self._ticker = threading.Thread(target=self._tick, name=f"mycli-panel-{self.handle.ref}", daemon=True)
            self._ticker.start()

    def _tick(self) -> None:
        handle = self.handle
        while not self._closed.wait(TICK_SECONDS):
            self.render(force=True)
            if handle.done:
                self._closed.set()
            elif handle._error is not None and not handle.following():
                return  # lost contact: the note says so; Refresh starts again

    def render(self, force: bool = False) -> None:
        """Put the current state into the widgets' values (cheap when nothing changed)."""
        handle = self.handle
        if handle is None:
            return
        now = time.monotonic()
        if not force and now - self._last_render < MIN_RENDER_INTERVAL:
            return
        with self._render_lock:
            self._last_render = now
            self.header.value = self._header_html(handle)
            self._render_log(handle)
            stopped = handle.status == "STOPPED"
            self.stop_button.disabled = stopped or self.blocking
            self.stop_button.layout.display = "none" if stopped else None  # nothing left to stop
            if handle.done or stopped:
                kind = outcome(handle.info)[0]
                line = summary_line(handle.info, self.settings.vcpu, self.settings.memory_gb)
                self.summary.value = f"<div class='mycli-summary {kind}'>{html.escape(line)}</div>"

    def _header_html(self, handle: "Execution") -> str:
        info = handle.info
        status = handle.status or "PENDING"
        if status == "STOPPED":
            kind = outcome(info)[0]
            code = info.get("exit_code")
            badge = f"STOPPED · {'no exit code' if code is None else f'exit {code}'}"
            took = format_duration(handle.duration_seconds)
            badge += f" · {took}" if took else ""
        else:
            kind = status.lower() if status in ("PENDING", "RUNNING") else "running"
            elapsed = handle.elapsed() if status == "RUNNING" else time.monotonic() - self._started
            badge = f"{status} · {format_duration(elapsed or 0.0)}"
        meta = f"{image_shown(info, 'default image')} · {handle.where()} · {info.get('engine') or '?'} engine"
        first = (handle.command or "").strip().split("\n", 1)[0]
        ref = html.escape(str(handle.execution_id))
        # Shown only by the CSS once the frontend marks the widgets disconnected (kernel restarted
        # or shut down): the panel then holds its last state, which for a live run is stale.
        stale = ("" if status == "STOPPED" else
                 f"<div class='mycli-stale'>This panel stopped updating: its kernel restarted or shut down. "
                 f"The run goes on remotely; follow it again with <code>%mycli attach {ref}</code></div>")
        return (f"<div class='mycli-head'><span class='mycli-badge {kind}'>{html.escape(badge)}</span>"
                f"<span class='mycli-id' title='{html.escape(str(handle.task_arn or ''))}'>{ref}</span>"
                f"<span class='mycli-meta'>{html.escape(meta)}</span></div>"
                f"<div class='mycli-cmd' title='{html.escape(handle.command or '')}'>$ {html.escape(first)}</div>{stale}")

    def _render_log(self, handle: "Execution") -> None:
        following = self.follow_toggle.value
        show_all = self.show_all_toggle.value
        limit = SHOW_ALL_LIMIT if show_all else max(1, self.settings.tail_lines)
        total = len(handle.events)
        key = (handle.revision, self.timestamps_toggle.value, show_all)  # a partial line grows without a new line
        if following and key != self._last_log_key:
            total, events = handle.tail(limit)
            self._last_log_key = key
            self.log.value = _log_html(events, self.timestamps_toggle.value)
            self._shown = (len(events), total)
        self.note.value = self._note_html(handle, *self._shown, total)

    def _note_html(self, handle: "Execution", shown: int, rendered_total: int, total: int) -> str:
        ref = html.escape(str(handle.execution_id))
        whole = f"<code>%mycli logs {ref}</code>"
        if self.settings.handle_name:
            whole += f", <code>{html.escape(self.settings.handle_name)}.logs</code>"
        lines = []
        if shown < rendered_total:
            lines.append(f"Showing the last {shown:,} of {rendered_total:,} lines. The whole log: {whole}, or Save log.")
        if total > rendered_total and not self.follow_toggle.value:
            lines.append(f"Follow is off: {total - rendered_total:,} newer lines not shown (turn Follow on to see them).")
        if self.blocking and handle.status != "STOPPED":
            lines.append("To stop this run, interrupt the kernel (■); to keep working meanwhile, run with <code>--bg</code>.")
        if handle._error is not None and not handle.done:
            lines.append(f"✗ Lost contact while following: {html.escape(str(handle._error))} (Refresh to retry)")
        lines += self._messages
        return "<div class='mycli-note'>" + "<br>".join(lines) + "</div>" if lines else ""

    # buttons -----------------------------------------------------------------------------------

    def _act(self, action) -> None:
        """A button's action; whatever goes wrong is one line in the panel, never a traceback."""
        try:
            action()
        except MycliError as exc:
            self.say(f"✗ {exc}")
        except Exception as exc:
            if os.environ.get("MYCLI_DEBUG"):
                raise
            self.say(f"✗ internal error: {type(exc).__name__}: {exc}; set MYCLI_DEBUG=1 for the traceback")
        self.render(force=True)

    def _stop(self) -> None:
        handle = self.handle.stop()
        self.say(f"■ Stopped execution {handle.execution_id} (exit {handle.exit_code})." if handle.status == "STOPPED"
                 else f"■ Asked the engine to stop execution {handle.execution_id}; the panel shows when it has.")

    def _refresh(self) -> None:
        handle = self.handle
        handle.refresh()
        if not handle.done and not self.blocking:
            handle._error = None
            handle.follow_in_background()
            self._ensure_ticker()

    def _save(self) -> None:
        try:
            path = self.handle.save()
        except OSError as exc:
            where = exc.filename or f"mycli-{self.handle.execution_id}.log"
            self.say(f"✗ Cannot write {where}: {exc.strerror or exc}; the whole log: %mycli logs {self.handle.execution_id}")
            return
        self.say(f"Saved the whole log ({len(self.handle.events):,} lines) to {path.resolve()}")


def _clean(message: str) -> str:
    """What a terminal would show: colour codes dropped, a \\r-redrawn line's last state."""
    message = _ANSI_RE.sub("", message)
    if "\r" in message:
        parts = [p for p in message.split("\r") if p]
        message = parts[-1] if parts else ""
    return message


def _log_html(events: list, timestamps: bool) -> str:
    if not events:
        return "<div class='mycli-log'><pre class='mycli-empty'>(no output yet)</pre></div>"
    if timestamps:
        body = "\n".join(
            f"<span class='mycli-ts'>{clock(ts, date=False)}</span> {html.escape(_clean(m))}"
            for ts, m in events
        )
    else:
        body = html.escape("\n".join(_clean(m) for _, m in events))
    # column-reverse keeps the view scrolled to the newest line each time the content is replaced
    return f"<div class='mycli-log'><pre>{body}</pre></div>"
