"""The embedded engine as later commands meet it: one started in the foreground by `mycli server`
is the one they use; `server status` says so (and fails when none runs); host runs get the same
environment whichever shell started the engine. Real processes, the real executable."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest
import yaml

from tests.support.cli import MYCLI, Cli


def foreground_server(cli: Cli, *args: str) -> subprocess.Popen:
    """`mycli server --port 0 ARGS` in the foreground, as a user runs it in a terminal."""
    proc = subprocess.Popen([MYCLI, "server", "--port", "0", *args], env=cli.env(), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    line = proc.stdout.readline()
    assert line.startswith("mycli server listening on "), line + proc.stdout.read()
    return proc


def end(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)


@pytest.fixture
def cli(tmp_path) -> Cli:
    """A MYCLI_HOME of the test's own; any engine left running in it is stopped afterwards."""
    cli = Cli(tmp_path / "home")
    yield cli
    cli.stop_engine()


def test_status_fails_when_no_engine_runs(cli):
    proc = cli.run("server", "status")
    assert proc.returncode == 3 and "No embedded local engine is running" in proc.stdout


def test_a_foreground_server_is_the_engine_later_commands_use(cli, tmp_path):
    elsewhere = tmp_path / "state-elsewhere"
    server = foreground_server(cli, "--state-dir", str(elsewhere))
    try:
        status = cli.run("server", "status")
        assert status.returncode == 0, status.stdout
        assert f"(pid {server.pid}, state: {elsewhere})" in status.stdout
        ran = cli.run("exec", "--skip-git", "--wait", "echo via-the-foreground-server", cwd=tmp_path)
        assert ran.returncode == 0, ran.stderr
        assert "Started the embedded local engine" not in ran.stderr  # no second engine
        assert (elsewhere / "mycli.db").exists() and not (cli.home / "engine" / "mycli.db").exists()
        profiles = yaml.safe_load((cli.home / "config.yaml").read_text())["profiles"]
        assert list(profiles) == ["local"]  # not local-local
        stopped = cli.run("server", "stop")
        assert stopped.returncode == 0 and f"pid {server.pid}" in stopped.stdout
        assert server.wait(30) == 0
    finally:
        end(server)
    assert cli.run("server", "status").returncode == 3


def test_a_second_server_for_the_same_home_is_refused(cli, tmp_path):
    first = foreground_server(cli)
    try:
        second = cli.run("server", "--port", "0", "--state-dir", str(tmp_path / "other"))
        assert second.returncode == 1 and "already running" in second.stderr and str(first.pid) in second.stderr
    finally:
        end(first)


def test_host_runs_get_a_fixed_environment_whichever_shell_started_the_engine(cli, tmp_path):
    venv_bin = tmp_path / "some-venv" / "bin"
    venv_bin.mkdir(parents=True)
    (venv_bin / "only-in-that-venv").write_text("#!/bin/sh\necho leaked\n")
    (venv_bin / "only-in-that-venv").chmod(0o755)
    try:
        started = cli.run("list", env={"PATH": f"{venv_bin}:{os.environ['PATH']}", "HOME": str(tmp_path / "a-home"),
                                       "LANG": "fr_FR.UTF-8", "TMPDIR": str(tmp_path)})
        assert "Started the embedded local engine" in started.stderr
        ran = cli.run("exec", "--skip-git", "--wait",
                      'echo "PATH=$PATH"; echo "HOME=$HOME"; echo "LANG=$LANG"; command -v only-in-that-venv || echo none',
                      cwd=tmp_path)
        assert ran.returncode == 0, ran.stderr
        import pwd

        lines = ran.stdout.splitlines()
        assert "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" in lines
        assert f"HOME={pwd.getpwuid(os.getuid()).pw_dir}" in lines and "LANG=C.UTF-8" in lines
        assert "none" in lines and "leaked" not in ran.stdout
        chosen = cli.run("exec", "--skip-git", "--wait", "--env", f"PATH={venv_bin}:/usr/bin:/bin",
                         "only-in-that-venv", cwd=tmp_path)
        assert "leaked" in chosen.stdout.splitlines()  # --env PATH=... still chooses
    finally:
        cli.stop_engine()
