"""The embedded local engine over real HTTP: a real `mycli server`, real processes, real SQLite.

What every runtime must do (exec, logs, exit codes, stop, timeout) is in test_contract.py, run on
the host, docker and podman; this file holds what is about the host runtime or the engine itself."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest


def alive(pid: int) -> bool:
    """True while `pid` runs (a zombie waiting for its reaper counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except FileNotFoundError:
        return False


def wait_for_file(path: Path, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        time.sleep(0.05)
    raise AssertionError(f"{path} never appeared")


def start(server, command: str, **fields) -> str:
    status, body = server.call({"action": "exec", "command": command, "skip_git": True, **fields})
    assert status == 200, body
    return body["execution_id"]


def test_next_token_returns_only_newer_lines_while_running(server, tmp_path):
    go = tmp_path / "go"
    execution_id = start(server, f"echo first; while [ ! -e {go} ]; do sleep 0.1; done; echo second")
    seen, token = [], None
    while "first" not in seen:
        payload = {"action": "logs", "execution_id": execution_id, "wait_seconds": 5}
        if token:
            payload["next_token"] = token
        body = server.call(payload)[1]
        seen += [e["message"] for e in body["events"]]
        token = body["next_token"]
    go.touch()
    newer = []
    while body["status"] != "STOPPED" or body["events"]:
        body = server.call({"action": "logs", "execution_id": execution_id, "wait_seconds": 5, "next_token": token})[1]
        newer += [e["message"] for e in body["events"]]
        token = body["next_token"]
    assert "second" in newer and "first" not in newer
    assert not set(newer) & set(seen) - {"", "━" * 20}


def test_script_killed_from_outside_is_137(server, tmp_path):
    execution_id = start(server, f"echo $PPID > {tmp_path}/script; sleep 300")
    script_pid = int(wait_for_file(tmp_path / "script"))
    os.kill(script_pid, signal.SIGKILL)
    final = server.wait(execution_id)
    assert (final["status"], final["exit_code"]) == ("STOPPED", 137)
    assert "SIGKILL" in final["stopped_reason"]


def test_long_poll_does_not_hold_up_an_exec(server):
    execution_id = start(server, "sleep 30")
    polled = {}

    def long_poll():
        polled["reply"] = server.call({"action": "logs", "execution_id": execution_id, "wait_seconds": 10,
                                       "next_token": "999999999"})

    poller = threading.Thread(target=long_poll)
    poller.start()
    time.sleep(0.3)  # let the poll reach the server
    other = start(server, "echo quick")
    assert poller.is_alive(), "the exec answered only after the long poll"
    assert server.wait(other)["exit_code"] == 0
    server.call({"action": "stop", "execution_id": execution_id})
    poller.join(30)
    assert polled["reply"][0] == 200


def test_list_is_most_recent_first_and_honours_limit(server):
    ids = [start(server, f"exit {n}") for n in range(3)]
    for execution_id in ids:
        server.wait(execution_id)
    status, body = server.call({"action": "list", "limit": 2})
    assert status == 200
    assert [e["execution_id"] for e in body["executions"]] == ids[::-1][:2]
    default = server.call({"action": "list"})[1]["executions"]
    assert 3 <= len(default) <= 20 and default[0]["execution_id"] == ids[-1]


def test_output_is_timestamped_as_produced(server, tmp_path):
    """'late' can only be printed after the test has seen 'early' and then released it, so if
    lines were stamped when stored at the end (or in one batch) the two stamps would be equal."""
    gate = tmp_path / "gate"
    execution_id = start(server, f"echo early; while [ ! -e {gate} ]; do sleep 0.05; done; echo late >&2")
    seen_at = None
    for _ in range(600):
        _, page = server.call({"action": "logs", "execution_id": execution_id, "wait_seconds": 1})
        if "early" in [e["message"] for e in page["events"]]:
            seen_at = time.time()
            break
    assert seen_at is not None, "'early' was not readable while the command was still running"
    time.sleep(0.3)
    gate.write_text("go")
    server.wait(execution_id)
    _, body = server.call({"action": "logs", "execution_id": execution_id})
    stamps = {e["message"]: e["timestamp"] for e in body["events"]}
    assert stamps["early"] <= seen_at * 1000 < stamps["late"]


@pytest.mark.parametrize("ref", ["execution_id", "task_arn"])
def test_status_by_either_reference(server, ref):
    status, started = server.call({"action": "exec", "command": "true", "skip_git": True})
    body = server.call({"action": "status", ref: started[ref]})[1]
    assert body["execution_id"] == started["execution_id"]


def test_long_lines_unterminated_output_and_bad_utf8(server):
    command = "python3 -c \"import sys; sys.stdout.write('x' * 600000 + '\\n'); sys.stdout.buffer.write(b'bad \\xff\\xfe end\\n'); sys.stdout.write('no newline at the end')\""
    execution_id = start(server, command)
    assert server.wait(execution_id)["exit_code"] == 0
    lines = server.all_lines(execution_id)
    pieces = [line for line in lines if line and set(line) == {"x"}]
    assert "".join(pieces) == "x" * 600000 and max(map(len, pieces)) <= 256 * 1024
    assert "bad \ufffd\ufffd end" in lines
    assert any(line.startswith("no newline at the end") for line in lines)


def test_logs_without_text_carry_the_same_events(server):
    final = server.run("printf 'a\\nb\\n'")
    eid = final["execution_id"]
    _, full = server.call({"action": "logs", "execution_id": eid})
    _, lean = server.call({"action": "logs", "execution_id": eid, "text": False})
    assert "logs" in full and "logs" not in lean
    assert lean["events"] == full["events"] and lean["next_token"] == full["next_token"]
    assert server.call({"action": "logs", "execution_id": eid, "text": "no"})[0] == 400
