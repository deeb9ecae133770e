"""docker's daemon going away mid-run ends the run saying so — not "killed, e.g. out of memory",
which sends a user hunting for a memory problem (a real OOM is told by the cgroup's count)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from tests.support import runtimes
from tests.support.server import start_server, stop_server


@pytest.fixture
def own_dockerd():
    """A dockerd of this test's own (the suite's must live on), with the test busybox in it."""
    runtimes.require("docker")
    directory = tempfile.mkdtemp(prefix="mycli-dd-", dir="/tmp")  # short: a unix socket path is limited
    host = f"unix://{directory}/docker.sock"
    with open(f"{directory}/daemon.json", "w") as fh:
        fh.write("{}")
    log = open(f"{directory}/dockerd.log", "wb")
    daemon = subprocess.Popen(
        ["dockerd", "--config-file", f"{directory}/daemon.json", "--data-root", f"{directory}/root", "--exec-root", f"{directory}/exec",
         "--host", host, "--pidfile", f"{directory}/docker.pid", "--bridge=none", "--iptables=false",
         "--ip6tables=false", "--userland-proxy=false", "--log-level=warn"],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    env = {**os.environ, "DOCKER_HOST": host}
    try:
        deadline = time.monotonic() + 30
        while subprocess.run(["docker", "version"], env=env, capture_output=True).returncode != 0:
            assert daemon.poll() is None and time.monotonic() < deadline, open(f"{directory}/dockerd.log").read()[-2000:]
            time.sleep(0.1)
        saved = subprocess.run(["docker", "save", runtimes.busybox()], capture_output=True, check=True).stdout
        subprocess.run(["docker", "load", "-q"], input=saved, env=env, capture_output=True, check=True)
        yield host, daemon
    finally:
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(30)
        log.close()
        subprocess.run(["sh", "-c", f"grep -o ' {directory}[^ ]*' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l"],
                       capture_output=True)
        shutil.rmtree(directory, ignore_errors=True)


def test_a_daemon_that_stops_mid_run_is_named_not_memory(own_dockerd, tmp_path):
    host, daemon = own_dockerd
    server = start_server(tmp_path, runtimes.server_env("docker", DOCKER_HOST=host))
    try:
        status, body = server.call({"action": "exec", "command": "echo up; sleep 60", "skip_git": True, "memory": 512,
                                    "cpu": 0.25})
        assert status == 200, body
        deadline = time.monotonic() + 30
        while "up" not in server.all_lines(body["execution_id"]):
            assert time.monotonic() < deadline, server.all_lines(body["execution_id"])
            time.sleep(0.1)
        daemon.send_signal(signal.SIGTERM)  # as `systemctl stop docker` does
        final = server.wait(body["execution_id"], timeout=60)
        lines = server.all_lines(body["execution_id"])
        # the docker client ends with the container's 137/143, or (a race at the daemon's exit)
        # with its own error code: then the reason says "Could not start the container: …" (left
        # to fix: the command had started)
        assert (final["stop_code"], final["exit_code"] in (137, 143)) in (("Killed", True), ("TaskFailedToStart", False)), lines
        assert "the container ended with its runtime: docker stopped answering (" in final["stopped_reason"] or \
            final["stopped_reason"].startswith("Could not start the container: docker stopped answering ("), final["stopped_reason"]
        assert final["stopped_reason"].endswith("; start docker again and re-run")
        assert "memory" not in final["stopped_reason"].lower() and f"✗ {final['stopped_reason']}" in lines
    finally:
        stop_server(server)
