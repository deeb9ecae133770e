"""Fixtures every test folder shares: an isolated MYCLI_HOME, a real `mycli server` process over
real HTTP (the machinery is in tests/support/server.py), and the same on every runtime (host,
docker, podman: tests/support/runtimes.py) for the engine's contract tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.disk import small_tmpfs
from tests.support import runtimes
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


@pytest.fixture(scope="session")
def runtime_servers(tmp_path_factory):
    """`get(runtime)`: one real server per runtime for the session, started when first asked for."""
    started: dict[str, Server] = {}

    def get(runtime: str) -> Server:
        runtimes.require(runtime)
        if runtime not in started:
            started[runtime] = start_server(tmp_path_factory.mktemp(f"engine-{runtime}"), runtimes.server_env(runtime))
        return started[runtime]

    yield get
    for srv in started.values():
        stop_server(srv)


@pytest.fixture(params=runtimes.RUNTIMES)
def engine(request, runtime_servers) -> Server:
    """A server whose engine runs commands on the host, in docker or in podman (busybox)."""
    return runtime_servers(request.param)


@pytest.fixture(params=runtimes.CONTAINER_RUNTIMES)
def container_runtime(request) -> str:
    runtimes.require(request.param)
    return request.param


def pytest_collection_modifyitems(items):
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if any(isinstance(value, str) and value in runtimes.CONTAINER_RUNTIMES for value in params.values()):
            item.add_marker("containers")  # a runtime parameter (engine, container_runtime, secret_server...)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under MYCLI_REQUIRE_CONTAINERS=1 (.ci/run) a container test that skipped has failed: a
    test that skips in CI proves nothing."""
    outcome = yield
    report = outcome.get_result()
    if (report.skipped and not hasattr(report, "wasxfail") and item.get_closest_marker("containers")
            and os.environ.get("MYCLI_REQUIRE_CONTAINERS") == "1"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"a container test skipped, but MYCLI_REQUIRE_CONTAINERS=1 (.ci/run) needs it to run: {reason}"
