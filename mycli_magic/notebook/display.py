"""How a run is shown: the live widget panel where a frontend renders widgets, plain text
everywhere else (terminal IPython, nbconvert, nbval, no ipywidgets), carrying the same facts.

Both views take the same calls from the magic — `show`, `interrupted`, `finished`, `say` — and
subscribe to the execution handle for new lines and status changes. This module only chooses
one; the panel is imported only when a widget view is made.
"""

from __future__ import annotations

import os

from .text_view import TextView
from .view_settings import ViewSettings

DISPLAY_ENV = "MYCLI_DISPLAY"  # auto | widget | text: overrides MycliMagics.display


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
        from .panel import PanelView  # ipywidgets: only when a panel is shown

        return PanelView(settings)
    return TextView(settings)
