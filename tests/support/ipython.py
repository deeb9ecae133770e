"""A real IPython shell for tests, whose `run_cell` re-raises (jupysql's pattern), and a stdout
that proves output arrived while a cell was still running. The layered fixtures built on them
are in tests/notebook/conftest.py."""

from __future__ import annotations

import io
import threading
from pathlib import Path
from typing import Callable

from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config


class TestingShell(InteractiveShell):
    """An InteractiveShell whose run_cell raises what the cell raised, so tests see the real
    exception (UsageError, ExecutionFailed, KeyboardInterrupt) instead of a printed traceback."""

    __test__ = False

    def run_cell(self, raw_cell, *args, **kwargs):
        result = super().run_cell(raw_cell, *args, **kwargs)
        result.raise_error()
        return result


def new_shell(ipython_dir: Path) -> TestingShell:
    config = Config()
    config.HistoryManager.enabled = False  # no SQLite history file per shell
    config.InteractiveShell.ipython_dir = str(ipython_dir)
    return TestingShell(config=config)


class StdoutWatch(io.TextIOBase):
    """sys.stdout that keeps what is written and calls `callback` once when `marker` appears:
    proof that output arrived while the cell was still running."""

    def __init__(self, inner, marker: str | None = None, callback: Callable[[], None] | None = None):
        self.inner, self.marker, self.callback = inner, marker, callback
        self.text = ""
        self.fired = threading.Event()

    def write(self, text: str) -> int:
        self.text += text
        self.inner.write(text)
        if self.marker and not self.fired.is_set() and self.marker in self.text:
            self.fired.set()
            if self.callback:
                self.callback()
        return len(text)

    def flush(self) -> None:
        self.inner.flush()
