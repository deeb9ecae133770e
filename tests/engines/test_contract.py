"""The embedded engine's contract, on every runtime it has: the host, docker and podman.

The same tests, parametrized (the `engine` fixture): exec, logs, exit codes, stop, timeout, what
a run leaves behind, and the size it asked for. Container runs use the busybox test image, so
`--skip-git` is proven in an image with nothing but /bin/sh. A leftover is looked for the same
way on every runtime: a unique marker in the command line of the processes a run starts (the
host's /proc shows the processes of rootful containers too), and for containers, any container
still carrying the run's label.
"""

from __future__ import annotations

import os
import secrets
import time

from tests.support.runtimes import containers_of, processes_with


def start(server, command: str, **fields) -> str:
    status, body = server.call({"action": "exec", "command": command, "skip_git": True, **fields})
    assert status == 200, body
    assert body["runtime"] == server.runtime
    return body["execution_id"]


def command_output(lines: list[str]) -> list[str]:
    """The user's command's own lines: between the 'Executing command...' banner and the report."""
    start_at = lines.index("Executing command...") + 3
    end_at = max(i for i, line in enumerate(lines) if line.startswith(("✓ Command", "✗ Command"))) - 2
    return lines[start_at:end_at]


def wait_for_line(server, execution_id: str, wanted: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if wanted in server.all_lines(execution_id):
            return
        time.sleep(0.1)
    raise AssertionError(f"{wanted!r} never appeared in {execution_id}'s log: {server.all_lines(execution_id)[-10:]}")


def assert_nothing_left(server, execution_id: str, marker: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while (processes_with(marker) or containers_of(server.runtime, execution_id)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes_with(marker) == []
    assert containers_of(server.runtime, execution_id) == []


def busy_command(marker: str, before: str = "") -> str:
    """A foreground and a background process, both with `marker` in their command line."""
    return f"{before}sh -c 'sleep 300; : {marker}' & echo started; sh -c 'sleep 300; : {marker}'"


def test_exec_status_logs_list(engine):
    execution_id = start(engine, "echo out; echo err >&2; exit 4", env={"X": "1"})
    final = engine.wait(execution_id)
    assert (final["status"], final["exit_code"], final["stop_code"]) == ("STOPPED", 4, "EssentialContainerExited")
    assert final["duration_seconds"] is not None and final["env_keys"] == ["X"]
    assert final["runtime"] == engine.runtime and final["runtime_reason"]
    lines = engine.all_lines(execution_id)
    assert command_output(lines) == ["out", "err"]  # one pipe: the order they were written
    assert "✗ Command failed with exit code: 4" in lines
    assert any(line.startswith(f"→ Runtime: {engine.runtime}") for line in lines)  # the choice, in the log header
    status, page = engine.call({"action": "logs", "execution_id": execution_id, "limit": 2})
    assert status == 200 and len(page["events"]) == 2
    for text, event in zip(page["logs"].split("\n"), page["events"]):
        assert text.endswith(" UTC | " + event["message"])
        assert time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(event["timestamp"] / 1000)) == text[:19]
    assert containers_of(engine.runtime, execution_id) == []


def test_interleaved_stdout_and_stderr_keep_their_order(engine):
    execution_id = start(engine, "i=0; while [ $i -lt 500 ]; do echo out $i; echo err $i >&2; i=$((i+1)); done")
    assert engine.wait(execution_id)["exit_code"] == 0
    expected = [f"{stream} {i}" for i in range(500) for stream in ("out", "err")]
    assert command_output(engine.all_lines(execution_id)) == expected


def test_hundred_thousand_lines_all_reachable_in_order(engine):
    execution_id = start(engine, "seq 1 100000")
    assert engine.wait(execution_id, timeout=120)["exit_code"] == 0
    lines, token, pages = [], None, 0
    while True:
        payload = {"action": "logs", "execution_id": execution_id}
        if token is not None:
            payload["next_token"] = token
        status, body = engine.call(payload)
        assert status == 200, body
        if not body["events"]:
            assert body["next_token"] == token  # the end: the same token comes back
            break
        assert len(body["events"]) <= 10000
        lines += [e["message"] for e in body["events"]]
        token, pages = body["next_token"], pages + 1
    assert pages >= 10
    assert command_output(lines) == [str(i) for i in range(1, 100001)]
    _, first = engine.call({"action": "logs", "execution_id": execution_id, "limit": 1000})
    _, second = engine.call({"action": "logs", "execution_id": execution_id, "limit": 5, "next_token": first["next_token"]})
    assert [e["message"] for e in second["events"]] == lines[1000:1005]


def test_exit_codes_are_the_commands_own(engine):
    """125-127 too: on a container runtime they are also the runtime's own failure codes."""
    for code in (0, 1, 2, 125, 126, 127, 255):
        final = engine.run(f"exit {code}")
        assert (final["exit_code"], final["stop_code"]) == (code, "EssentialContainerExited"), final
    final = engine.run("kill -9 $$")  # the command's shell killed: sh reports 128 + 9
    assert final["exit_code"] == 137


def test_a_run_that_cannot_start_its_command_is_200(engine):
    """No clone (a path that is no repository; busybox has no git at all): 'could not start'."""
    status, body = engine.call({"action": "exec", "command": "echo never", "repo": "/nonexistent/repo.git"})
    assert status == 200, body
    final = engine.wait(body["execution_id"])
    assert (final["exit_code"], final["stop_code"]) == (200, "TaskFailedToStart"), final
    lines = engine.all_lines(body["execution_id"])
    assert "never" not in lines and any("Could not start the command" in line for line in lines)


def test_stop_ends_everything_with_130(engine):
    marker = f"mycli-stop-{secrets.token_hex(6)}"
    execution_id = start(engine, busy_command(marker))
    wait_for_line(engine, execution_id, "started")
    assert len(processes_with(marker)) >= 2
    status, body = engine.call({"action": "stop", "execution_id": execution_id})
    assert status == 200, body
    final = engine.wait(execution_id)
    assert (final["status"], final["exit_code"], final["stop_code"]) == ("STOPPED", 130, "UserInitiated")
    assert "user" in final["stopped_reason"].lower()
    assert_nothing_left(engine, execution_id, marker)
    assert engine.call({"action": "stop", "execution_id": execution_id})[1]["exit_code"] == 130  # idempotent


def test_stop_escalates_to_kill_when_term_is_ignored(engine):
    marker = f"mycli-noterm-{secrets.token_hex(6)}"
    execution_id = start(engine, f"trap '' TERM; echo started; while :; do sleep 0.2; : {marker}; done")
    wait_for_line(engine, execution_id, "started")
    engine.call({"action": "stop", "execution_id": execution_id})
    final = engine.wait(execution_id, timeout=60)
    assert (final["status"], final["exit_code"]) == ("STOPPED", 130)
    assert_nothing_left(engine, execution_id, marker)


def test_timeout_ends_everything_with_124(engine):
    marker = f"mycli-timeout-{secrets.token_hex(6)}"
    execution_id = start(engine, busy_command(marker), timeout_seconds=3)
    final = engine.wait(execution_id, timeout=60)
    assert (final["status"], final["exit_code"], final["stop_code"]) == ("STOPPED", 124, "Timeout")
    assert final["stopped_reason"] == "Timed out after 3 s, the run's --timeout"  # plain words: the CLI wraps it in ()
    assert "started" in engine.all_lines(execution_id)
    assert_nothing_left(engine, execution_id, marker)


def test_what_a_command_leaves_in_the_background_ends_with_it(engine):
    marker = f"mycli-bg-{secrets.token_hex(6)}"
    execution_id = start(engine, f"sh -c 'sleep 300; : {marker}' & echo left")
    assert engine.wait(execution_id)["exit_code"] == 0
    assert_nothing_left(engine, execution_id, marker)


def test_size_is_recorded_applied_and_said(engine):
    command = ("for f in /sys/fs/cgroup/memory.max /sys/fs/cgroup/memory/memory.limit_in_bytes; do "
               "if [ -r $f ]; then echo limit=$(cat $f); break; fi; done")
    final = engine.run(command, cpu=16, memory=32768)
    assert (final["cpu"], final["memory"]) == (16, 32768)
    lines = engine.all_lines(final["execution_id"])
    if engine.runtime == "host":
        assert final["resources_enforced"] is False and final["cpu_applied"] is None
        assert any("not enforced" in line and "16 vCPU, 32768 MiB" in line for line in lines)
        return
    cores = min(16, os.cpu_count())
    assert (final["cpu_applied"], final["memory_applied"], final["resources_enforced"]) == (cores, 32768, True)
    assert f"limit={32768 * 1024 * 1024}" in lines  # the container's own cgroup says so
    assert (f"→ Asked for 16 vCPU; {engine.runtime} has {os.cpu_count()} cores here, so --cpus {cores}" in lines) == (cores < 16)
    unsized = engine.run("true")
    assert (unsized["cpu"], unsized["cpu_applied"], unsized["resources_enforced"]) == (None, None, None)
