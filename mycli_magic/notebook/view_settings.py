"""What both views of a run share — the panel (panel.py) and plain text (text_view.py): their
settings and the header line. Neither view imports the other; display.py chooses between them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..safe_text import escape_controls
from ..summary import DEFAULT_MEMORY_GB, DEFAULT_VCPU, image_shown

if TYPE_CHECKING:
    from .handle import Execution

STOP_ENGINE = "%mycli server stop"  # the notebook's way to restart the embedded engine (it probes its runtime again)


@dataclass(frozen=True)
class ViewSettings:
    timestamps: bool = False
    tail_lines: int = 2000
    vcpu: float = DEFAULT_VCPU
    memory_gb: float = DEFAULT_MEMORY_GB
    handle_name: str | None = None  # the --out variable, named in hints


def header_line(handle: "Execution") -> str:
    """The run's one-line header; the server's strings with their control characters escaped."""
    info = handle.info
    return escape_controls(f"▶ mycli execution {handle.execution_id} · image {image_shown(info, 'default')} · "
                           f"{handle.where()} · {info.get('engine') or '?'} engine")
