"""The embedded engine on a full disk that a run's own workspace filled: stop still stops, memory
stays bounded while long lines cannot be stored, and dropped lines are counted exactly."""

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


def test_long_lines_on_a_full_disk_keep_memory_bounded_and_count_every_dropped_line(disk, tmp_path):
    count = 1000  # 250 MiB of output that cannot be stored while the disk is full
    producer = tmp_path / "produce.py"
    producer.write_text(
        "import os, sys\n"
        f"for i in range({count}):\n"
        f"    sys.stdout.write('%06d ' % i + 'x' * {LINE_CHARS - 8} + '\\n')\n"
        "sys.stdout.flush()\n"
        "os.remove('filler')\n"
    )
    gate = tmp_path / "gate"
    command = (f"cat /dev/zero > filler 2>/dev/null; "
               f"while [ ! -e {gate} ]; do sleep 0.05; done; {sys.executable} {producer}; sleep 1; echo end")
    server = start_server(disk)
    try:
        execution_id = start(server, command)
        _wait_until_full(disk)
        gate.write_text("go")
        final = server.wait(execution_id, timeout=300)
        assert (final["status"], final["exit_code"]) == ("STOPPED", 0), final
        peak = _peak_rss_mib(server.proc.pid)
        lines = server.all_lines(execution_id)
    finally:
        stop_server(server)
    numbered = [line for line in lines if re.match(r"^\d{6} x", line)]
    assert all(len(line) == LINE_CHARS - 1 for line in numbered)
    dropped = sum(int(m.group(1)) for m in map(DROPPED_RE.match, lines) if m)
    assert dropped > 0, "the disk never stopped a line"
    assert len(numbered) + dropped == count, (len(numbered), dropped)
    kept = [int(line[:6]) for line in numbered]
    assert kept == sorted(kept) and "end" in lines
    assert peak < 200, f"the engine peaked at {peak:.0f} MiB holding lines it could not store"
