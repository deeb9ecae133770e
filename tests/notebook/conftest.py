"""Layered fixtures for the magic's tests (jupysql's pattern): a real IPython shell whose
`run_cell` re-raises → the same with `%load_ext mycli_magic` → the same talking to a real
`mycli server` process (the session's `server` fixture)."""

from __future__ import annotations

import signal
import sys
import threading
from typing import Callable

import pytest

from tests.support.ipython import StdoutWatch, TestingShell, new_shell
from tests.support.server import ISOLATED_VARS


@pytest.fixture
def watch_stdout(monkeypatch):
    """watch_stdout(marker=None, callback=None) → a StdoutWatch installed as sys.stdout."""

    def install(marker: str | None = None, callback: Callable[[], None] | None = None) -> StdoutWatch:
        watch = StdoutWatch(sys.stdout, marker, callback)
        monkeypatch.setattr(sys, "stdout", watch)
        return watch

    return install


@pytest.fixture
def interrupt_at(watch_stdout):
    """interrupt_at(marker) → a StdoutWatch that, once the marker is printed, sends SIGINT into the
    main thread's wait 0.3 s later, from another thread: what Jupyter's ■ does to a running cell."""
    main = threading.get_ident()

    def install(marker: str) -> StdoutWatch:
        return watch_stdout(marker, lambda: threading.Timer(0.3, signal.pthread_kill, (main, signal.SIGINT)).start())

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
