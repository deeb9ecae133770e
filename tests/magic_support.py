"""Layered fixtures for the magic's tests (jupysql's pattern): a real IPython shell whose
`run_cell` re-raises → the same with `%load_ext mycli_magic` → the same talking to a real
`mycli server` process. Import the fixtures into a test module with `from magic_support import *`.
"""

from __future__ import annotations

import io
import sys
import threading
from pathlib import Path
from typing import Callable

import pytest
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

from conftest import ISOLATED_VARS

__all__ = ["TestingShell", "StdoutWatch", "make_shell", "ip", "ip_mycli", "engine_ip", "watch_stdout"]


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


@pytest.fixture
def watch_stdout(monkeypatch):
    """watch_stdout(marker=None, callback=None) → a StdoutWatch installed as sys.stdout."""

    def install(marker: str | None = None, callback: Callable[[], None] | None = None) -> StdoutWatch:
        watch = StdoutWatch(sys.stdout, marker, callback)
        monkeypatch.setattr(sys, "stdout", watch)
        return watch

    return install


@pytest.fixture
def make_shell(tmp_path):
    """A factory of fresh shells ("a new kernel"), all cleaned up after the test."""
    shells: list[TestingShell] = []

    def make(load: bool = True) -> TestingShell:
        shell = new_shell(tmp_path / "ipython")
        if load:
            shell.run_line_magic("load_ext", "mycli_magic")
        shells.append(shell)
        return shell

    yield make
    for shell in shells:
        shell.cleanup()


@pytest.fixture
def ip(make_shell, monkeypatch):
    monkeypatch.delenv("MYCLI_DISPLAY", raising=False)
    return make_shell(load=False)


@pytest.fixture
def ip_mycli(ip):
    ip.run_line_magic("load_ext", "mycli_magic")
    return ip


@pytest.fixture
def engine_ip(ip_mycli, server, monkeypatch, tmp_path):
    """The shell with the magic, pointed at the session's real server (through MYCLI_HOME, as
    the embedded engine is found), in an empty working directory outside any git repo."""
    for name in ISOLATED_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MYCLI_HOME", str(server.home))
    monkeypatch.setenv("MYCLI_LOCAL_RUNTIME", "host")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return ip_mycli
