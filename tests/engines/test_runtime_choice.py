"""Which runtime the embedded engine uses, and why: `auto` trusts docker or podman only after a
probe container ran; otherwise it runs on the host and says so everywhere (GET /health, `mycli
server status`, each execution, the log header, one line for an image it could not use).

The broken-podman cases are the two a new user met (issue 13): catatonit missing (`--init`:
exit 125) and podman's stock ulimits on a VM without CAP_SYS_RESOURCE (exit 126). Both are
reproduced with real podman and a containers.conf that says so, not by faking a client.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from orchestrator.engines.local_probe import PING_SECONDS, PROBE_SECONDS
from tests.support import runtimes
from tests.support.cli import Cli
from tests.support.server import clean_env, start_server, stop_server

NO_DOCKER = "unix:///nonexistent/docker.sock"  # docker's client is there, its daemon is not


def health(server) -> dict:
    with urllib.request.urlopen(server.url.rsplit("/", 1)[0] + "/health", timeout=10) as resp:
        return json.loads(resp.read())


def broken_podman_conf(tmp_path: Path, how: str) -> str:
    """The CI's containers.conf with one of the two faults a fresh install has here."""
    text = Path(os.environ["CONTAINERS_CONF"]).read_text()
    if how == "no catatonit":
        text = text.replace("[containers]\n", '[containers]\ninit_path = "/nonexistent/catatonit"\n', 1)
    else:  # podman's default ulimits: raising RLIMIT_NOFILE needs CAP_SYS_RESOURCE
        text = text.replace("default_ulimits = []\n", "")
    path = tmp_path / f"containers-{how.replace(' ', '-')}.conf"
    path.write_text(text)
    return str(path)


def test_no_runtime_on_path_runs_on_the_host_and_says_why(tmp_path):
    server = start_server(tmp_path, {"MYCLI_LOCAL_RUNTIME": "auto", "PATH": "/nonexistent"})
    try:
        why = "no container runtime (docker: not installed; podman: not installed)"
        assert (health(server)["runtime"], health(server)["runtime_reason"]) == ("host", why)
        status, body = server.call({"action": "exec", "command": "echo hi", "skip_git": True, "image": "python:3.11"})
        assert status == 200, body
        assert (body["runtime"], body["runtime_reason"]) == ("host", why)
        assert body["notice"] == "image python:3.11 ignored: no container runtime; ran on the host"
        assert server.wait(body["execution_id"])["exit_code"] == 0
        lines = server.all_lines(body["execution_id"])
        assert f"→ Runtime: host process ({why}); image python:3.11 not used" in lines and "hi" in lines
        plain = server.run("true")  # no image named: nothing to say
        assert plain["notice"] is None and plain["runtime"] == "host"
    finally:
        stop_server(server)


def test_the_readme_first_command_works_without_any_runtime(tmp_path):
    cli = Cli(tmp_path / "home", {"MYCLI_LOCAL_RUNTIME": "auto", "PATH": "/nonexistent"})
    cli.home.mkdir()
    try:
        first = cli.run("exec", "--skip-git", "--wait", "echo hello from mycli", cwd=tmp_path)
        assert first.returncode == 0, first.stderr
        assert "hello from mycli" in first.stdout.splitlines()
        imaged = cli.run("exec", "--image", "python:3.11", "--skip-git", "--wait", "echo hi", cwd=tmp_path)
        assert imaged.returncode == 0, imaged.stderr
        notices = [line for line in imaged.stderr.splitlines() if "ignored" in line]
        assert len(notices) == 1 and notices[0].startswith(
            "⚠ image python:3.11 ignored: no container runtime; ran on the host (chosen when the engine started "), notices
        status = cli.run("server", "status")
        assert status.returncode == 0
        assert "  runtime: host (no container runtime (docker: not installed; podman: not installed))" in status.stdout
    finally:
        cli.stop_engine()


@pytest.mark.containers
@pytest.mark.parametrize("how, words", [("no catatonit", "exit 125): Error: container-init binary not found"),
                                        ("stock ulimits", "exit 126)")])
def test_auto_does_not_trust_a_podman_that_cannot_run_a_container(tmp_path, how, words):
    runtimes.require("podman")
    conf = broken_podman_conf(tmp_path, how)
    server = start_server(tmp_path, {"MYCLI_LOCAL_RUNTIME": "auto", "DOCKER_HOST": NO_DOCKER, "CONTAINERS_CONF": conf})
    try:
        answer = health(server)
        assert answer["runtime"] == "host"
        reason = answer["runtime_reason"]
        assert reason.startswith("no container runtime (docker: ") and "Cannot connect to the Docker daemon" in reason
        assert f"podman: a probe container failed ({words}" in reason
        if how == "stock ulimits":
            assert "rlimit" in reason
        assert server.run("echo on the host")["runtime"] == "host"  # and runs work, on the host
    finally:
        stop_server(server)


@pytest.mark.containers
def test_an_explicit_runtime_that_cannot_run_a_container_stops_the_engine_starting(tmp_path):
    runtimes.require("podman")
    conf = broken_podman_conf(tmp_path, "no catatonit")
    env = clean_env(tmp_path, MYCLI_LOCAL_RUNTIME="podman", CONTAINERS_CONF=conf)
    proc = subprocess.run([sys.executable, "-m", "mycli_magic.cli", "server", "--port", "0"], env=env,
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode != 0
    errors = proc.stderr.strip().splitlines()
    assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert errors[0].startswith("mycli: error: MYCLI_LOCAL_RUNTIME=podman, but podman: a probe container failed (exit 125)")
    assert "container-init binary not found" in errors[0]


@pytest.mark.containers
def test_auto_takes_docker_after_its_probe_and_says_so(tmp_path):
    runtimes.require("docker")
    server = start_server(tmp_path, runtimes.server_env("auto", DEFAULT_IMAGE=runtimes.busybox()))
    try:
        answer = health(server)
        assert answer["runtime"] == "docker" and answer["runtime_reason"].startswith("auto: a probe container ran in ")
        final = server.run("cat /proc/1/cmdline | tr '\\0' ' '")
        assert final["runtime"] == "docker" and final["notice"] is None
        assert any(line.startswith("/sbin/docker-init -- /bin/sh -c exec 2>&1")
                   for line in server.all_lines(final["execution_id"]))  # it did run in a container
        status = Cli(tmp_path).run("server", "status")
        assert f"  runtime: docker ({answer['runtime_reason']})" in status.stdout
    finally:
        stop_server(server)


@pytest.mark.containers
def test_a_daemon_that_never_answers_does_not_hold_the_engine_start(tmp_path):
    """A docker socket that accepts and never answers: the ping gives up (PING_SECONDS, not the
    whole probe's 20 s), saying it waits once meanwhile, and an explicit docker refuses to start,
    saying so — no hang."""
    if shutil.which("docker") is None:
        runtimes.require("docker")  # the docker client is what hangs; its daemon is not needed
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(tmp_path / "silent.sock"))
    listener.listen(16)
    try:
        env = clean_env(tmp_path, MYCLI_LOCAL_RUNTIME="docker", DOCKER_HOST=f"unix://{tmp_path / 'silent.sock'}")
        proc = subprocess.run([sys.executable, "-m", "mycli_magic.cli", "server", "--port", "0"], env=env,
                              capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    finally:
        listener.close()
    assert proc.returncode != 0
    where = f"unix://{tmp_path / 'silent.sock'}"
    *logged, error = proc.stderr.strip().splitlines()
    assert error == (f"mycli: error: MYCLI_LOCAL_RUNTIME=docker, but docker: the docker daemon at {where} accepted the "
                     f"connection but did not answer within {PING_SECONDS:.0f} s (a hung daemon: restart it, or point "
                     "DOCKER_HOST at another); see docs/troubleshooting.md (containers), or set MYCLI_LOCAL_RUNTIME=auto or host")
    assert [line.split(" mycli.progress: ")[1] for line in logged] == [
        f"checking docker… (no answer yet from {where} after 2 s; giving up at {PING_SECONDS:.0f} s)"], proc.stderr


@pytest.mark.containers
def test_auto_names_a_wrong_network_setting_not_a_missing_runtime(tmp_path):
    """docker prints its usage hint after the error: the reason is the error, and the setting."""
    runtimes.require("docker")
    runtimes.require("podman")
    server = start_server(tmp_path, {"MYCLI_LOCAL_RUNTIME": "auto", "MYCLI_CONTAINER_NETWORK": "bogusnet"})
    try:
        answer = health(server)
        reason = answer["runtime_reason"]
        assert answer["runtime"] == "host"
        assert reason.startswith("MYCLI_CONTAINER_NETWORK=bogusnet names no network here (docker: "), reason
        assert "network bogusnet not found" in reason and "--help" not in reason, reason
        assert "podman: " in reason and "no container runtime" not in reason, reason
        status, body = server.call({"action": "exec", "command": "true", "skip_git": True, "image": "python:3.11"})
        assert status == 200, body
        assert body["notice"] == ("image python:3.11 ignored: MYCLI_CONTAINER_NETWORK=bogusnet names no network here; "
                                  "ran on the host")
    finally:
        stop_server(server)


def test_auto_names_a_state_dir_a_bind_mount_cannot_name(tmp_path):
    home = tmp_path / "a:b"
    home.mkdir()
    server = start_server(home, {"MYCLI_LOCAL_RUNTIME": "auto"})
    try:
        answer = health(server)
        assert answer["runtime"] == "host"
        assert "has a ':' or ',', which a container bind mount cannot name" in answer["runtime_reason"], answer
        assert "--state-dir" in answer["runtime_reason"]
    finally:
        stop_server(server)


@pytest.mark.containers
def test_a_docker_daemon_not_reachable_is_said_so(tmp_path):
    runtimes.require("docker")
    env = clean_env(tmp_path, MYCLI_LOCAL_RUNTIME="docker", DOCKER_HOST=NO_DOCKER)
    proc = subprocess.run([sys.executable, "-m", "mycli_magic.cli", "server", "--port", "0"], env=env,
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode != 0
    assert proc.stderr.startswith("mycli: error: MYCLI_LOCAL_RUNTIME=docker, but docker: the docker daemon is not "
                                  "reachable: Cannot connect to the Docker daemon"), proc.stderr
    assert "probe image" not in proc.stderr


@pytest.mark.containers
def test_auto_with_a_hung_docker_says_it_waits_gives_up_sooner_and_falls_back_saying_why(tmp_path):
    """A docker socket that accepts and never answers, on `auto`, as a new user's first command
    meets it: the wait is said in one progress line while it lasts, docker is given up after the
    ping's window (not the whole probe's 20 s), and the fallback says why. podman is pointed at
    no service (CONTAINER_HOST), so the fallback is the host whatever this machine has."""
    if shutil.which("docker") is None:
        runtimes.require("docker")  # the docker client is what hangs; its daemon is not needed
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(tmp_path / "silent.sock"))
    listener.listen(16)
    cli = Cli(tmp_path / "home", {"MYCLI_LOCAL_RUNTIME": "auto", "DOCKER_HOST": f"unix://{tmp_path / 'silent.sock'}",
                                  "CONTAINER_HOST": "unix:///nonexistent/podman.sock"})
    cli.home.mkdir()
    try:
        first = cli.run("list", cwd=tmp_path)
        assert first.returncode == 0, first.stderr
    finally:
        cli.stop_engine()
        listener.close()
    where = f"unix://{tmp_path / 'silent.sock'}"
    progress = [line for line in first.stderr.splitlines() if line.startswith("→ Starting the embedded engine: ")]
    assert progress == [f"→ Starting the embedded engine: checking docker… (no answer yet from {where} after 2 s; "
                        f"giving up at {PING_SECONDS:.0f} s)"], first.stderr
    runtime = [line for line in first.stderr.splitlines() if line.startswith("→ Embedded engine runtime: ")]
    assert len(runtime) == 1 and runtime[0].startswith("→ Embedded engine runtime: host (no container runtime (docker: "
                                                       f"the docker daemon at {where} accepted the connection but did "
                                                       f"not answer within {PING_SECONDS:.0f} s"), first.stderr
    assert "podman: " in runtime[0] and PING_SECONDS < PROBE_SECONDS
