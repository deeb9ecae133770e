"""Reliability of the embedded engine under load, crashes and a full disk.

The default run uses moderate sizes; `-m slow` variants (run by .ci/run too) use the issue's
full sizes.
"""

from __future__ import annotations

import os
import secrets
import signal
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support import runtimes
from tests.support.runtimes import processes_with
from tests.support.server import start_server, stop_server

LINES_PER_RUN = 20


def _load(server, n: int) -> None:
    command = f"i=1; while [ $i -le {LINES_PER_RUN} ]; do echo \"$MYCLI_EXECUTION_ID line $i\"; i=$((i+1)); done; exit $(( {{k}} % 5 ))"

    def start(k: int) -> tuple[int, str]:
        status, body = server.call({"action": "exec", "command": command.replace("{k}", str(k)), "skip_git": True})
        assert status == 200, body
        return k, body["execution_id"]

    with ThreadPoolExecutor(32) as pool:
        started = list(pool.map(start, range(n)))
        finals = list(pool.map(lambda item: (item[0], server.wait(item[1], timeout=600)), started))
    ids = {eid for _, eid in started}
    assert len(ids) == n, "duplicate execution IDs"
    wrong = [(k, f["exit_code"]) for k, f in finals if f["status"] != "STOPPED" or f["exit_code"] != k % 5]
    assert wrong == [], f"{len(wrong)} wrong exit codes, e.g. {wrong[:3]}"
    listed = {e["execution_id"] for e in server.call({"action": "list", "limit": 1000})[1]["executions"]}
    assert ids <= listed, f"{len(ids - listed)} executions missing from list"
    for _, eid in started:
        lines = [line for line in server.all_lines(eid) if " line " in line and line.startswith(eid)]
        assert lines == [f"{eid} line {i}" for i in range(1, LINES_PER_RUN + 1)], f"{eid}: lines missing or reordered"


def test_concurrent_load(server):
    _load(server, 100)


@pytest.mark.slow
def test_concurrent_load_500(server):
    _load(server, 500)


@pytest.mark.parametrize("runtime, count", [("host", 20), ("docker", 3), ("podman", 3)])
def test_engine_sigkill_leaves_every_execution_with_a_final_state(tmp_path, runtime, count):
    """The engine is SIGKILLed with executions running: after a restart every one has a final
    state and a reason, its lines are intact, and nothing it started runs on (for a container
    runtime: no container of this engine is left, found by its labels)."""
    runtimes.require(runtime)
    home = tmp_path / "home"
    home.mkdir()
    server = start_server(home, runtimes.server_env(runtime))
    marker = f"mycli-crash-{secrets.token_hex(6)}"
    ids = []
    try:
        for k in range(count):
            command = f"i=1; while true; do echo tick $i; i=$((i+1)); sleep 0.05; : {marker}; done"
            status, body = server.call({"action": "exec", "command": command, "skip_git": True})
            assert status == 200
            ids.append(body["execution_id"])
        deadline = time.monotonic() + 60
        while not all("tick 3" in server.all_lines(eid) for eid in ids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len([p for p in processes_with(marker) if " -c " in p]) >= count
        os.kill(server.proc.pid, signal.SIGKILL)
        server.proc.wait()
        before = {}
        db = sqlite3.connect(home / "engine" / "mycli.db")
        for eid in ids:
            before[eid] = [m for (m,) in db.execute(
                "SELECT message FROM log_lines WHERE execution_id = ? ORDER BY seq", (eid,))]
        db.close()
    finally:
        stop_server(server)
    restarted = start_server(home, runtimes.server_env(runtime))
    try:
        for eid in ids:
            status, final = restarted.call({"action": "status", "execution_id": eid})
            assert status == 200
            assert final["status"] == "STOPPED", final
            assert final["stopped_reason"], final
            lines = restarted.all_lines(eid)
            assert lines[: len(before[eid])] == before[eid], "lines written before the crash changed"
            ticks = [int(line.split()[1]) for line in lines if line.startswith("tick ")]
            assert ticks == list(range(1, len(ticks) + 1)), "log lines missing or reordered"
            assert runtimes.containers_of(runtime, eid) == [], "a container outlived the engine's restart"
        deadline = time.monotonic() + 10
        while processes_with(marker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert processes_with(marker) == [], "a command outlived the engine's restart"
        assert list((home / "engine" / "work").iterdir()) == []  # and their workspaces are gone
        db = sqlite3.connect(home / "engine" / "mycli.db")
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        db.close()
        # and the restarted engine works
        assert restarted.run("echo after")["exit_code"] == 0
    finally:
        stop_server(restarted)


def test_full_disk_gives_clear_errors_and_keeps_serving_reads(small_disk):
    server = start_server(small_disk)
    try:
        first = server.run("echo before the disk filled")
        assert first["exit_code"] == 0
        # the command's own output fills the disk through the log database
        status, body = server.call({"action": "exec", "skip_git": True,
                                    "command": "i=0; while [ $i -lt 200000 ]; do echo 'filler line to fill the disk up' $i; i=$((i+1)); done"})
        assert status == 200
        filler = server.wait(body["execution_id"], timeout=120)
        assert filler["status"] == "STOPPED"
        status, body = server.call({"action": "exec", "command": "echo hi", "skip_git": True})
        if status == 200:  # the disk may have room for the row again; then it must still finish
            assert server.wait(body["execution_id"])["status"] == "STOPPED"
        else:
            assert status == 503, body
            assert "disk" in body["error"]
        # reads keep working and the first execution is intact
        status, again = server.call({"action": "status", "execution_id": first["execution_id"]})
        assert status == 200 and again["exit_code"] == 0
        assert "before the disk filled" in server.all_lines(first["execution_id"])
        db = sqlite3.connect(small_disk / "engine" / "mycli.db")
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        db.close()
    finally:
        stop_server(server)
