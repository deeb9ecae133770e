"""The CLI's rules as a user meets them, through the real executable and a real engine: options
after COMMAND, sizes, IDs, endpoints, exit codes, a closed pipe, partial lines, unfinished logs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time

import pytest

from tests.support.cli import MYCLI, Cli, git


@pytest.fixture(scope="module")
def cli(tmp_path_factory) -> Cli:
    cli = Cli(tmp_path_factory.mktemp("rules-home"))
    yield cli
    cli.stop_engine()


@pytest.fixture
def own_cli(tmp_path) -> Cli:
    """A MYCLI_HOME of the test's own; whatever engine it started is stopped afterwards."""
    cli = Cli(tmp_path / "home")
    yield cli
    cli.stop_engine()


def executions(cli: Cli) -> list[dict]:
    listed = cli.run("list", "--json", "--limit", "1000")
    assert listed.returncode == 0, listed.stderr
    return json.loads(listed.stdout)["executions"]


# options after COMMAND ----------------------------------------------------------------------------


def test_a_mycli_option_after_a_quoted_command_is_refused_and_nothing_runs(cli, tmp_path):
    before = len(executions(cli))
    proc = cli.run("exec", "--skip-git", "echo hi", "--wait", "--env=A=1", cwd=tmp_path)
    assert proc.returncode == 2 and proc.stdout == ""
    (line,) = proc.stderr.splitlines()
    assert "--wait --env=A=1 after the quoted COMMAND are mycli options" in line
    assert "put them before COMMAND" in line and "put -- before COMMAND" in line
    assert len(executions(cli)) == before


def test_after_plain_words_they_go_to_the_command_and_mycli_says_so(cli, tmp_path):
    proc = cli.run("exec", "--skip-git", "--wait", "echo", "--json", "--timeout", "5", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "--json --timeout 5" in proc.stdout.splitlines()  # pytest --timeout 5 works the same way
    assert "→ --json --timeout after COMMAND go to the command, not to mycli" in proc.stderr
    explicit = cli.run("exec", "--skip-git", "--wait", "--", "echo", "--wait", cwd=tmp_path)
    assert explicit.returncode == 0 and "--wait" in explicit.stdout.splitlines()
    assert "after COMMAND" not in explicit.stderr  # -- said it was meant


# sizes, IDs, endpoints, .mycli.yaml -----------------------------------------------------------------


@pytest.mark.parametrize("size", [900 * 1024, 2 * 1024 * 1024])
def test_a_script_over_the_api_limit_is_one_message_exit_2_before_anything_is_sent(own_cli, tmp_path, size):
    home = own_cli
    proc = home.run("exec", "--skip-git", "-", input="echo x\n" * (size // 7), cwd=tmp_path)
    assert proc.returncode == 2
    assert re.fullmatch(r"mycli: error: the command is \S+ \S+; the API takes at most 64 KiB: .*\n", proc.stderr)
    assert home.engine_info() is None  # no engine was even started


def test_ids_are_accepted_in_any_case(cli, tmp_path):
    ident = cli.exec_json("--skip-git", "echo cased", cwd=tmp_path)["execution_id"]
    status = cli.run("status", "--json", ident.upper())
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["execution_id"] == ident


def test_an_endpoint_in_the_environment_without_execute_is_completed(server, own_cli):
    bare = server.url.removesuffix("/execute")
    proc = own_cli.run("list", "--json", env={"MYCLI_API_ENDPOINT": bare, "MYCLI_API_KEY": server.key})
    assert proc.returncode == 0, proc.stderr
    assert "executions" in json.loads(proc.stdout)


def test_timeout_0_in_the_project_file_says_at_least_1(own_cli, tmp_path):
    (tmp_path / ".mycli.yaml").write_text("timeout: 0\n")
    proc = own_cli.run("exec", "--skip-git", "--dry-run", "true", cwd=tmp_path)
    assert proc.returncode == 2
    assert "key 'timeout' must be at least 1 (seconds), not 0" in proc.stderr


def test_a_repository_without_commits_is_not_called_detached(own_cli, tmp_path):
    work = tmp_path / "fresh"
    git("init", "--quiet", str(work), cwd=tmp_path)
    git("remote", "add", "origin", str(tmp_path / "origin.git"), cwd=work)
    proc = own_cli.run("exec", "--dry-run", "true", cwd=work)
    assert "detached" not in proc.stderr
    assert "→ Branch: main" in proc.stderr and "branch main has no commits yet (commit and push first)" in proc.stderr


# exit codes, a closed pipe -------------------------------------------------------------------------


def test_a_failed_clone_has_its_own_exit_code_in_wait_and_logs_follow(cli, tmp_path):
    missing = str(tmp_path / "no-such-repo.git")
    waited = cli.run("exec", "--repo", missing, "--wait", "touch CANARY", cwd=tmp_path)
    assert waited.returncode == 200, waited.stderr
    assert "✗ Could not start the command: the repository could not be cloned (exit code 200)" in waited.stdout
    # how long after it was accepted, though it never started (no started_at, no duration)
    assert re.search(r"could not start its command after (under 1 s|\d+ s) \(exit code 200", waited.stderr.splitlines()[-1])
    ident = re.search(r"Execution ID: ([0-9a-f]{12})", waited.stderr).group(1)
    followed = cli.run("logs", "-f", ident)
    assert followed.returncode == 200 and "could not start its command" in followed.stderr
    assert not list(tmp_path.rglob("CANARY"))


def test_a_reader_that_closes_the_pipe_ends_mycli_quietly_with_141(cli, tmp_path):
    ident = cli.exec_json("--skip-git", "seq 1 200000", cwd=tmp_path)["execution_id"]
    assert cli.run("logs", "-f", ident).returncode == 0
    shell = subprocess.run(["bash", "-c", f'"{MYCLI}" logs {ident} | head -n 3; echo "status=${{PIPESTATUS[0]}}"'],
                           env=cli.env(), capture_output=True, text=True, timeout=120)
    assert shell.stdout.splitlines()[-1] == "status=141"
    assert shell.stderr == ""  # no message, no traceback


def test_logs_of_a_running_execution_ends_saying_so(cli, tmp_path):
    gate = tmp_path / "gate"
    ident = cli.exec_json("--skip-git", f"echo first; while [ ! -e {gate} ]; do sleep 0.05; done", cwd=tmp_path)["execution_id"]
    try:
        deadline = time.monotonic() + 30
        while "| first" not in (shown := cli.run("logs", ident)).stdout:
            assert time.monotonic() < deadline, shown.stdout
        assert shown.returncode == 0
        assert shown.stderr.splitlines()[-1] == f"… execution {ident} is still RUNNING; follow it: mycli logs -f {ident}"
    finally:
        gate.touch()
    assert cli.run("logs", "-f", ident).returncode == 0
    assert "still" not in cli.run("logs", ident).stderr


# partial lines -------------------------------------------------------------------------------------


def test_progress_without_a_newline_shows_before_its_newline(cli, tmp_path):
    gate = tmp_path / "gate"
    command = f"printf 'working…'; while [ ! -e {gate} ]; do sleep 0.05; done; printf ' done\\n'"
    proc = subprocess.Popen([MYCLI, "exec", "--skip-git", "--wait", command], cwd=tmp_path, env=cli.env(),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        seen, deadline = b"", time.monotonic() + 60
        while "working…".encode() not in seen:  # the command still waits for the gate: no newline yet
            assert time.monotonic() < deadline and proc.poll() is None, seen
            seen += os.read(proc.stdout.fileno(), 4096)
    finally:
        gate.touch()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "\nworking… done\n" in (seen + out).decode()
    ident = re.search(r"Execution ID: ([0-9a-f]{12})", err.decode()).group(1)
    logged = cli.run("logs", ident).stdout
    assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \| working… done$", logged, re.M), logged


def test_the_client_knows_the_scripts_not_started_code():
    from mycli_magic.summary import NOT_STARTED_EXIT_CODE
    from orchestrator.shell import NOT_STARTED_EXIT_CODE as SCRIPT_CODE

    assert NOT_STARTED_EXIT_CODE == SCRIPT_CODE  # the client words it without importing the orchestrator


def test_the_cost_estimate_uses_the_size_the_run_got():
    """`cpu` is vCPU and `memory` MiB in the API (orchestrator.sizes), not ECS's CPU units; the size
    applied (what was billed) wins over the size asked, and no size is the task definition's."""
    from mycli_magic.summary import cost_note, size_words

    sized = {"engine": "ecs", "duration_seconds": 3600, "cpu": 1, "memory": 2048, "runtime": "fargate"}
    assert cost_note(sized) == "≈ $0.02 (Fargate Spot, 1 vCPU, 2 GB, public IPv4)"
    assert cost_note({**sized, "cpu_applied": 4, "memory_applied": 8192}) == "≈ $0.07 (Fargate Spot, 4 vCPU, 8 GB, public IPv4)"
    assert cost_note({**sized, "cpu": None, "memory": None}) == "≈ $0.0088 (Fargate Spot, 0.25 vCPU, 0.5 GB, public IPv4)"
    assert size_words(sized) == "1 vCPU, 2048 MiB asked"
    assert size_words({**sized, "cpu": 4, "memory": 8192, "cpu_applied": 2, "memory_applied": 8192,
                       "resources_enforced": True}) == "4 vCPU, 8192 MiB asked; applied 2 vCPU, 8192 MiB"
    assert size_words({**sized, "cpu_applied": 1, "memory_applied": 2048, "resources_enforced": False,
                       "runtime": "podman"}) == "1 vCPU, 2048 MiB asked; applied as asked but not enforced by podman here"
    assert size_words({"cpu": None}) == ""
