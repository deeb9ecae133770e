"""The embedded engine on a full disk that a run's own workspace filled."""

from __future__ import annotations

import os
import re
import sys
import time

import pytest

from tests.engines.test_local_engine import start
from tests.support.disk import small_tmpfs
from tests.support.server import start_server, stop_server

LINE_CHARS = 256 * 1024
DROPPED_RE = re.compile(r"^\[mycli: (\d+) log lines? (?:was|were) dropped")


def _wait_until_full(path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.statvfs(path).f_bavail == 0:
            return
        time.sleep(0.05)
    raise AssertionError(f"{path} did not fill up")


def _peak_rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        return int(re.search(r"VmHWM:\s+(\d+) kB", fh.read()).group(1)) / 1024


@pytest.fixture
def disk(tmp_path):
    """A 16 MiB disk: room to flush a few MiB of held lines once the run frees its filler."""
    with small_tmpfs(tmp_path / "disk", "16m") as mount_point:
        yield mount_point


def test_stop_on_a_disk_the_run_filled_signals_it_and_records_130(small_disk):
    server = start_server(small_disk)
    try:
        execution_id = start(server, "echo $$ > pid; cat /dev/zero > filler; sleep 300")
        _wait_until_full(small_disk)
        status, body = server.call({"action": "stop", "execution_id": execution_id})
        assert status == 200, body
        final = server.wait(execution_id, timeout=60)
        assert (final["status"], final["exit_code"]) == ("STOPPED", 130), final
    finally:
        stop_server(server)
