"""How a run is shown: the live widget panel where a frontend renders widgets, plain text
everywhere else (terminal IPython, nbconvert, nbval, no ipywidgets), carrying the same facts.

Both views take the same calls from the magic — `show`, `interrupted`, `finished`, `say` — and
subscribe to the execution handle for new lines and status changes.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .summary import DEFAULT_MEMORY_GB, DEFAULT_VCPU, clock, summary_line

if TYPE_CHECKING:
    from .handle import Execution

DISPLAY_ENV = "MYCLI_DISPLAY"  # auto | widget | text: overrides MycliMagics.display


@dataclass(frozen=True)
class ViewSettings:
    timestamps: bool = False
    tail_lines: int = 2000
    vcpu: float = DEFAULT_VCPU
    memory_gb: float = DEFAULT_MEMORY_GB
    handle_name: str | None = None  # the --out variable, named in hints


def frontend_renders_widgets(shell) -> bool:
    """True when the cell being run came from a frontend that renders widgets.

    A kernel alone is not enough: nbval and nbconvert drive a real kernel but render nothing.
    JupyterLab, Notebook 7 and VS Code send the cell's `cellId` in the execute request's
    metadata; those headless clients send none. Terminal IPython has no kernel at all.
    """
    kernel = getattr(shell, "kernel", None)
    get_parent = getattr(kernel, "get_parent", None)
    if get_parent is None:
        return False
    try:
        parent = get_parent("shell") or {}
    except Exception:
        return False
    metadata = parent.get("metadata") if isinstance(parent, dict) else None
    return isinstance(metadata, dict) and "cellId" in metadata


def choose_display(shell, configured: str) -> str:
    """'widget' or 'text', from $MYCLI_DISPLAY, else the setting, else the frontend."""
    mode = (os.environ.get(DISPLAY_ENV) or configured or "auto").strip().lower()
    if mode == "auto":
        mode = "widget" if frontend_renders_widgets(shell) else "text"
    if mode == "widget":
        try:
            import ipywidgets  # noqa: F401
        except ImportError:
            return "text"
    return "widget" if mode == "widget" else "text"


def make_view(mode: str, settings: ViewSettings):
    if mode == "widget":
        from .panel import PanelView

        return PanelView(settings)
    return TextView(settings)


def header_line(handle: "Execution") -> str:
    info = handle.info
    return (f"▶ mycli execution {handle.execution_id} · image {info.get('image') or 'default'} · "
            f"{handle.where()} · {info.get('engine') or '?'} engine")


class TextView:
    """Lines printed as they arrive, from the thread that follows (the cell's main thread)."""

    def __init__(self, settings: ViewSettings):
        self.settings = settings
        self.handle: "Execution | None" = None

    def say(self, line: str) -> None:
        print(line, flush=True)

    def show(self, handle: "Execution", background: bool = False, live: bool = True) -> None:
        """Print the header; for a foreground run, stream lines from now on. A background run
        prints nothing from its thread: in a kernel that output would land in whichever cell
        runs next, and in nbval it would make outputs depend on timing."""
        self.handle = handle
        self.say(header_line(handle))
        if background:
            ref, name = handle.execution_id, self.settings.handle_name
            follow = f"{name}.wait()" if name else f"%mycli logs {ref} -f"
            self.say(f"→ Running in the background. Follow: {follow} · stop: %mycli stop {ref} · "
                     f"re-attach after a restart: %mycli attach {ref}")
            return
        with handle._lock:
            already = list(handle.events)
        self._print(already)
        if live:
            handle.subscribe(self._on_update)

    def _on_update(self, handle: "Execution", events: list) -> None:
        self._print(events)

    def _print(self, events: list) -> None:
        if not events:
            return
        if self.settings.timestamps:
            text = "\n".join(f"{clock(ts)} | {message}" for ts, message in events)
        else:
            text = "\n".join(message for _, message in events)
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    def close(self) -> None:
        if self.handle is not None:
            self.handle.unsubscribe(self._on_update)

    def finished(self, handle: "Execution") -> None:
        self.close()
        self.say(summary_line(handle.info, self.settings.vcpu, self.settings.memory_gb))

    def interrupted(self, handle: "Execution", stopped: bool, detail: str = "") -> None:
        self.close()
        ref = handle.execution_id
        if stopped:
            self.say(f"■ Interrupted: stopped execution {ref} on the remote (exit {handle.exit_code}).")
        else:
            self.say(f"■ Interrupted: execution {ref} may still be running{detail}; stop it with: %mycli stop {ref}")

    def detached(self, handle: "Execution") -> None:
        self.close()
        ref = handle.execution_id
        self.say(f"■ Detached from execution {ref}; it keeps running. Re-attach: %mycli attach {ref} · stop: %mycli stop {ref}")

