"""Nothing a run started outlives its engine: the engine (`mycli server`) is SIGKILLed while a run
is going — its container running, or still being created — and once the engine's process
supervisor has done its work and exited, no process and no container of the run is left, before
any new engine start could reap them. The next start records the run as lost, saying why."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import time
from pathlib import Path

import pytest

from tests.support import runtimes
from tests.support.runtimes import containers_of, processes_with
from tests.support.server import start_server, stop_server

SETTLE = 120  # seconds: a hang guard only, nothing is timed


def _cmdlines() -> dict[int, str]:
    found = {}
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                found[int(pid)] = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
            except OSError:
                continue
    return found


def _children(pid: int) -> list[int]:
    children = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children += [int(p) for p in (task / "children").read_text().split()]
    return children


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


def _wait_until(what: str, ready) -> None:
    deadline = time.monotonic() + SETTLE
    while not ready():
        assert time.monotonic() < deadline, f"{what} never happened"
        time.sleep(0.02)


@pytest.mark.parametrize("runtime, when", [("host", "running"), ("docker", "running"), ("docker", "creating"),
                                           ("podman", "running"), ("podman", "creating")])
def test_a_killed_engine_leaves_no_process_and_no_container(tmp_path, runtime, when):
    runtimes.require(runtime)
    home = tmp_path / "home"
    home.mkdir()
    server = start_server(home, runtimes.server_env(runtime))
    marker = f"mycli-death-{secrets.token_hex(6)}"
    try:
        status, body = server.call({"action": "exec", "skip_git": True,
                                    "command": f"sh -c 'sleep 300; : {marker}' & echo started; sh -c 'sleep 300; : {marker}'"})
        assert status == 200, body
        execution_id = body["execution_id"]
        if when == "running":
            _wait_until("the run's start", lambda: "started" in server.all_lines(execution_id))
            assert processes_with(marker)
        else:  # the runtime's client has just been started: the container is being created
            name = f"mycli-{execution_id}-"
            _wait_until("the runtime client's start",
                        lambda: any(name in args and " run " in args for args in _cmdlines().values()))
        supervisors = [pid for pid in _children(server.proc.pid) if "local_supervisor.py" in _cmdlines().get(pid, "")]
        os.kill(server.proc.pid, signal.SIGKILL)
        server.proc.wait()
        assert len(supervisors) == 1
        _wait_until("the supervisor's end", lambda: not _alive(supervisors[0]))
        assert processes_with(marker) == [], "a process of the run outlived its engine"
        assert containers_of(runtime, execution_id) == [], "a container of the run outlived its engine"
    finally:
        stop_server(server)
    restarted = start_server(home, runtimes.server_env(runtime))
    try:
        status, final = restarted.call({"action": "status", "execution_id": execution_id})
        assert status == 200 and final["status"] == "STOPPED", final
        assert final["stopped_reason"].startswith("Lost: the local engine stopped while this execution was running"), final
    finally:
        stop_server(restarted)


@pytest.mark.parametrize("runtime", runtimes.CONTAINER_RUNTIMES)
def test_a_killed_engine_leaves_no_image_pull_running(tmp_path, runtime):
    """The run's image is being pulled from a registry that never answers when the engine dies:
    the runtime's pull client is ended with it."""
    runtimes.require(runtime)
    silent = socket.create_server(("127.0.0.1", 0))  # accepts (the kernel's backlog) and never answers
    image = f"127.0.0.1:{silent.getsockname()[1]}/mycli-test/never:{secrets.token_hex(4)}"
    home = tmp_path / "home"
    home.mkdir()
    server = start_server(home, runtimes.server_env(runtime))
    try:
        status, body = server.call({"action": "exec", "skip_git": True, "command": "true", "image": image})
        assert status == 200, body
        _wait_until("the pull's start", lambda: any(" pull " in args and image in args for args in _cmdlines().values()))
        supervisors = [pid for pid in _children(server.proc.pid) if "local_supervisor.py" in _cmdlines().get(pid, "")]
        os.kill(server.proc.pid, signal.SIGKILL)
        server.proc.wait()
        for pid in supervisors:  # the pull's (none: nothing ends the pull but its own end)
            _wait_until("the supervisor's end", lambda: not _alive(pid))
        assert processes_with(image) == [], "the image pull outlived its engine"
    finally:
        stop_server(server)
        silent.close()
