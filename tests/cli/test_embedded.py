"""The embedded engine's life cycle under concurrency and after a crash, through the real `mycli`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from tests.support.server import clean_env


def mycli(env: dict, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mycli_magic.cli", *args], env=env, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def test_clients_arriving_together_share_one_engine(tmp_path):
    env = clean_env(tmp_path / "home")
    try:
        with ThreadPoolExecutor(5) as pool:
            results = list(pool.map(lambda _: mycli(env, "list"), range(5)))
        assert [r.returncode for r in results] == [0] * 5, [r.stderr for r in results]
        started = [r for r in results if "Started the embedded local engine" in r.stderr]
        assert len(started) == 1, "exactly one client starts the engine; the others use it"
    finally:
        mycli(env, "server", "stop")


def test_server_stop_never_signals_a_pid_left_in_a_stale_ready_file(tmp_path):
    env = clean_env(tmp_path / "home")
    assert mycli(env, "list").returncode == 0
    ready = tmp_path / "home" / "engine" / "server.json"
    info = json.loads(ready.read_text())
    os.kill(info["pid"], signal.SIGKILL)  # a crash leaves server.json behind
    deadline = time.monotonic() + 10
    while mycli(env, "server", "status").stdout.startswith("Embedded") and time.monotonic() < deadline:
        time.sleep(0.1)
    bystander = subprocess.Popen(["sleep", "60"])  # the pid the stale file names is now someone else's
    try:
        ready.write_text(json.dumps({**info, "pid": bystander.pid}))
        result = mycli(env, "server", "stop")
        assert result.returncode == 0
        assert "No embedded local engine is running" in result.stdout
        assert bystander.poll() is None, "mycli server stop killed an unrelated process"
    finally:
        bystander.kill()
        bystander.wait()
        mycli(env, "server", "stop")


def test_a_bad_setting_that_stops_the_engine_is_the_error_shown(tmp_path):
    from tests.support.cli import Cli

    for setting, value, words in [("MYCLI_LOCAL_RUNTIME", "bogus", "MYCLI_LOCAL_RUNTIME must be one of"),
                                  ("MYCLI_MAX_LOG_MB", "x", "MYCLI_MAX_LOG_MB must be a number"),
                                  ("MYCLI_RETENTION_DAYS", "-3", "MYCLI_RETENTION_DAYS must be a number")]:
        cli = Cli(tmp_path / setting, {setting: value})
        result = cli.run("exec", "--skip-git", "--wait", "true")
        assert result.returncode != 0
        last = result.stderr.strip().splitlines()[-1]
        log = tmp_path / setting / "engine" / "server.log"
        assert last.startswith(f"mycli: error: the embedded local engine failed to start: {words}"), last
        assert last.endswith(f"; see {log}"), last
        assert cli.engine_info() is None


def test_losing_the_engine_while_following_points_to_the_started_execution(tmp_path):
    from tests.support.cli import Cli

    cli = Cli(tmp_path / "home")
    proc = cli.popen("exec", "--skip-git", "--wait", "echo started; sleep 60")
    try:
        assert "started\n" in iter(proc.stdout.readline, "")  # the command runs: the execution exists
        os.kill(int(cli.engine_info()["pid"]), signal.SIGKILL)
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
        cli.stop_engine()
    ident = next(line.split()[-1] for line in stderr.splitlines() if "Execution ID:" in line)
    last = stderr.strip().splitlines()[-1]
    assert proc.returncode == 1
    assert last.startswith("mycli: error: cannot reach "), last
    assert f"execution {ident} was already started" in last and f"mycli status {ident}" in last, last
    assert "run the command again" not in last, last


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _aws_server(env: dict, port: int, home) -> subprocess.Popen:
    """`mycli server --engine aws` on `port` (its settings from the environment: no AWS call until
    a run), waited for until it answers /health."""
    import urllib.request

    proc = subprocess.Popen([sys.executable, "-m", "mycli_magic.cli", "server", "--engine", "aws", "--port", str(port),
                             "--quiet"], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=open(home / f"aws-server-{port}.log", "ab"), start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, (home / f"aws-server-{port}.log").read_text()
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"mycli server --engine aws did not answer on {port}")


def _end(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)


def test_a_restarted_aws_server_on_another_port_moves_its_profile(tmp_path):
    """The local-ecs profile was written only with a new key: a restart on another port kept the
    old port, and the client called a server that was gone."""
    import pytest

    from mycli_magic import config
    from mycli_magic.client import connect
    from mycli_magic.errors import MycliError

    home = tmp_path / "home"
    home.mkdir()
    env = clean_env(home, MYCLI_CLUSTER="mycli-test", AWS_REGION="us-east-1", AWS_DEFAULT_REGION="us-east-1")
    first_port = _free_port()
    first = _aws_server(env, first_port, home)
    _end(first)
    key = config.profile_values("local-ecs", env)["api_key"]
    second_port = _free_port()
    while second_port == first_port:
        second_port = _free_port()
    second = _aws_server(env, second_port, home)
    try:
        saved = config.profile_values("local-ecs", env)
        assert saved == {"api_endpoint": f"http://127.0.0.1:{second_port}/execute", "api_key": key}
        # the client reaches the restarted server, and its key is still the one it accepts:
        # an unknown action is refused by the server itself (after the key), not by a closed port
        with pytest.raises(MycliError) as refused:
            connect("local-ecs", env).call({"action": "no-such-action"})
        assert "unknown action 'no-such-action'" in str(refused.value), str(refused.value)
    finally:
        _end(second)


def test_a_running_engine_on_another_runtime_than_the_setting_is_said_so_in_one_line(tmp_path):
    """The engine keeps the runtime it started with: a later MYCLI_LOCAL_RUNTIME=podman would
    otherwise leave the user believing they run in podman while they run on the host."""
    env = clean_env(tmp_path / "home")  # MYCLI_LOCAL_RUNTIME=host
    try:
        first = mycli(env, "list")
        assert first.returncode == 0, first.stderr
        pid = json.loads((tmp_path / "home" / "engine" / "server.json").read_text())["pid"]
        assert "⚠" not in first.stderr
        for wanted in ("podman", "docker", "auto"):
            later = mycli({**env, "MYCLI_LOCAL_RUNTIME": wanted}, "list")
            assert later.returncode == 0, later.stderr
            warnings = [line for line in later.stderr.splitlines() if line.startswith("⚠")]
            assert warnings == [f"⚠ The embedded engine (pid {pid}) runs on the host, not MYCLI_LOCAL_RUNTIME={wanted}: "
                                "it keeps the runtime it started with. To switch: mycli server stop (the next command "
                                f"starts it with MYCLI_LOCAL_RUNTIME={wanted})"], later.stderr
            status = mycli({**env, "MYCLI_LOCAL_RUNTIME": wanted}, "server", "status")
            assert f"  {warnings[0]}" in status.stdout.splitlines(), status.stdout
        for same in (env, {k: v for k, v in env.items() if k != "MYCLI_LOCAL_RUNTIME"}):
            quiet = mycli(same, "list")  # the same setting, or none said: nothing to warn about
            assert quiet.returncode == 0 and "⚠" not in quiet.stderr, quiet.stderr
    finally:
        mycli(env, "server", "stop")
