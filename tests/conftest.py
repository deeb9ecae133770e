"""Fixtures every test folder shares: an isolated MYCLI_HOME, and a real `mycli server` process
over real HTTP (the machinery is in tests/support/server.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.disk import small_tmpfs
from tests.support.server import ISOLATED_VARS, Server, start_server, stop_server


@pytest.fixture
def mycli_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "mycli-home"
    home.mkdir()
    for name in ISOLATED_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MYCLI_HOME", str(home))
    monkeypatch.setenv("MYCLI_LOCAL_RUNTIME", "host")
    return home


@pytest.fixture(scope="session")
def server(tmp_path_factory) -> Server:
    """One real server for the session (tests that need their own use start_server)."""
    home = tmp_path_factory.mktemp("server-home")
    srv = start_server(home)
    yield srv
    stop_server(srv)


@pytest.fixture
def small_disk(tmp_path):
    """A 3 MiB disk."""
    with small_tmpfs(tmp_path / "small", "3m") as mount_point:
        yield mount_point
