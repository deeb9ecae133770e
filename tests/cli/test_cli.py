"""`mycli` as a user runs it: the real executable, a real embedded engine it starts by itself,
real processes. Every test's engine is stopped with `mycli server stop` in teardown.
"""

from __future__ import annotations

import json
import re
import signal

import pytest

from tests.support.cli import Cli

ID_RE = re.compile(r"Execution ID: ([0-9a-f]{12})")


@pytest.fixture(scope="module")
def cli(tmp_path_factory) -> Cli:
    """One MYCLI_HOME for the module; its embedded engine starts on the first command."""
    cli = Cli(tmp_path_factory.mktemp("cli-home"))
    yield cli
    cli.stop_engine()


@pytest.fixture
def fresh_cli(tmp_path) -> Cli:
    cli = Cli(tmp_path / "home")
    cli.home.mkdir()
    yield cli
    cli.stop_engine()


def test_first_command_starts_the_embedded_engine_then_reuses_and_restarts_it(fresh_cli, tmp_path):
    first = fresh_cli.run("exec", "--skip-git", "--wait", "echo hello", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "hello" in first.stdout.splitlines()
    started = [line for line in first.stderr.splitlines() if "Started the embedded local engine" in line]
    assert len(started) == 1 and "mycli server stop" in started[0]

    again = fresh_cli.run("exec", "--skip-git", "-w", "echo again", cwd=tmp_path)
    assert again.returncode == 0 and "again" in again.stdout.splitlines()
    assert "Started the embedded local engine" not in again.stderr  # reused

    # The engine died (killed hard): the next command starts a new one and says so.
    import os

    os.kill(int(fresh_cli.engine_info()["pid"]), signal.SIGKILL)
    revived = fresh_cli.run("list", "--json")
    assert revived.returncode == 0, revived.stderr
    assert "Started the embedded local engine" in revived.stderr
    assert len(json.loads(revived.stdout)["executions"]) == 2  # state survived in MYCLI_HOME

    stopped = fresh_cli.run("server", "stop")
    assert stopped.returncode == 0 and "Stopped the embedded local engine" in stopped.stdout
    assert "No embedded local engine is running" in fresh_cli.run("server", "status").stdout


def test_wait_exits_with_the_remote_exit_code(cli, tmp_path):
    proc = cli.run("exec", "--skip-git", "--wait", "echo to-stdout; echo to-stderr >&2; exit 7", cwd=tmp_path)
    assert proc.returncode == 7
    lines = proc.stdout.splitlines()
    assert "to-stdout" in lines and "to-stderr" in lines  # the remote output, as it came
    assert "→ Command: echo to-stdout; echo to-stderr >&2; exit 7" in proc.stderr  # mycli's own words: stderr
    assert "finished with exit code 7" in proc.stderr.splitlines()[-1]


def test_a_timeout_is_said_in_plain_words(cli, tmp_path):
    proc = cli.run("exec", "--skip-git", "--wait", "--timeout", "1", "sleep 30", cwd=tmp_path)
    assert proc.returncode == 124, proc.stderr
    last = proc.stderr.splitlines()[-1]
    assert re.fullmatch(r"✗ Execution [0-9a-f]{12} finished with exit code 124 after \d+\.\d s "
                        r"\(Timed out after 1 s, the run's --timeout\)", last), last


def test_default_output_then_status_logs_and_logs_follow(cli, tmp_path):
    started = cli.run("exec", "--skip-git", "echo first; sleep 1; echo done; exit 5", cwd=tmp_path)
    assert started.returncode == 0, started.stderr
    out = started.stdout
    for expected in ("→ Mode: direct execution (git cloning skipped)", "→ Command: echo first; sleep 1; echo done; exit 5",
                     "→ Starting execution...", "✓ Execution started", "Execution Details:", "Monitor execution:"):
        assert expected in out
    ident = ID_RE.search(out).group(1)
    assert f"mycli logs -f {ident}" in out and f"mycli status {ident}" in out

    follow = cli.run("logs", "-f", ident)
    assert follow.returncode == 5, follow.stderr
    assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \| done$", follow.stdout, re.M)
    assert follow.stdout.index("| first") < follow.stdout.index("| done")

    status = cli.run("status", ident)
    assert status.returncode == 0
    assert re.search(r"^Status:\s+STOPPED$", status.stdout, re.M)
    assert re.search(r"^Exit Code:\s+5$", status.stdout, re.M)
    assert json.loads(cli.run("status", "--json", ident).stdout)["exit_code"] == 5

    logs = cli.run("logs", ident)  # not following: exit 0 whatever the remote code
    assert logs.returncode == 0
    assert logs.stdout.splitlines()[0] == f"Logs for execution: {ident}"
    assert "| done" in logs.stdout and "✗ Command failed with exit code: 5" in logs.stdout

    listed = cli.run("list", "--limit", "50")
    row = next(line for line in listed.stdout.splitlines() if line.startswith(ident))
    assert "STOPPED" in row and " 5 " in row
    by_arn = cli.run("status", json.loads(cli.run("status", "--json", ident).stdout)["task_arn"])
    assert by_arn.returncode == 0 and "STOPPED" in by_arn.stdout


def test_json_prints_only_the_api_answer(cli, tmp_path):
    proc = cli.run("exec", "--json", "--skip-git", "true", cwd=tmp_path)
    assert proc.returncode == 0
    body = json.loads(proc.stdout)  # nothing else on stdout
    assert re.fullmatch(r"[0-9a-f]{12}", body["execution_id"]) and body["command"] == "true"
    listed = json.loads(cli.run("list", "--json").stdout)["executions"]
    assert body["execution_id"] in [e["execution_id"] for e in listed]


def test_script_from_stdin(cli, tmp_path):
    script = "x=41\nif [ \"$x\" -gt 40 ]; then\n  echo \"answer $((x + 1))\"\nfi\nprintf '%s\\n' \"it's quoted\"\n"
    proc = cli.run("exec", "--skip-git", "-w", "-", input=script, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "answer 42" in proc.stdout.splitlines() and "it's quoted" in proc.stdout.splitlines()
    empty = cli.run("exec", "--skip-git", "-", input="  \n", cwd=tmp_path)
    assert empty.returncode == 2 and "empty" in empty.stderr


def test_dry_run_prints_exactly_the_script_the_engine_runs(cli, tmp_path):
    # The command prints the script file the local engine is executing (it sits next to the
    # run's workspace, which is the command's working directory with --skip-git).
    command = "echo ==BEGIN==; cat \"../$MYCLI_EXECUTION_ID.sh\"; echo ==END==; echo \"$GREETING\""
    flags = ("--skip-git", "--env", "GREETING=it's me", "--timeout", "60")
    before = len(json.loads(cli.run("list", "--json", "--limit", "1000").stdout)["executions"])

    dry = cli.run("exec", "--dry-run", *flags, command, cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith("#!/bin/sh\n")
    assert "→ Environment: GREETING" in dry.stderr and "nothing was started" in dry.stderr
    assert "it's me" not in dry.stdout  # env values are not part of the script
    after = len(json.loads(cli.run("list", "--json", "--limit", "1000").stdout)["executions"])
    assert after == before  # a dry run starts nothing

    real = cli.run("exec", "--wait", *flags, command, cwd=tmp_path)
    assert real.returncode == 0, real.stderr
    lines = real.stdout.splitlines()
    ran = lines[lines.index("==BEGIN==") + 1: lines.index("==END==")]
    assert "\n".join(ran) + "\n" == dry.stdout
    assert "it's me" in lines


def test_ctrl_c_detaches_and_the_remote_command_keeps_running(cli, tmp_path):
    gate = tmp_path / "go"
    command = f"echo started; while [ ! -e '{gate}' ]; do sleep 0.1; done; echo finished; exit 4"
    waiting = cli.popen("exec", "--skip-git", "--wait", "--download", "my results", command, cwd=tmp_path)
    assert _read_until(waiting, "started")
    waiting.send_signal(signal.SIGINT)
    _, err = waiting.communicate(timeout=60)
    assert waiting.returncode == 130
    ident = re.search(r"Detached from execution ([0-9a-f]{12}); it keeps running", err).group(1)
    assert f"mycli logs -f {ident}" in err and f"mycli stop {ident}" in err
    assert f"Its artifacts, once it has ended: mycli artifacts {ident} -o 'my results'" in err
    assert "Traceback" not in err
    assert json.loads(cli.run("status", "--json", ident).stdout)["status"] == "RUNNING"

    following = cli.popen("logs", "-f", ident)
    assert _read_until(following, "| started")
    following.send_signal(signal.SIGINT)
    _, err = following.communicate(timeout=60)
    assert following.returncode == 130 and f"mycli logs -f {ident}" in err
    assert json.loads(cli.run("status", "--json", ident).stdout)["status"] == "RUNNING"

    gate.touch()
    reattached = cli.run("logs", "-f", ident)
    assert reattached.returncode == 4
    assert "| finished" in reattached.stdout


def test_stop_ends_a_running_execution(cli, tmp_path):
    ident = cli.exec_json("--skip-git", "sleep 60", cwd=tmp_path)["execution_id"]
    stopped = cli.run("stop", ident)
    assert stopped.returncode == 0, stopped.stderr
    final = json.loads(cli.run("status", "--json", ident).stdout)
    assert final["exit_code"] == 130 or final["status"] != "STOPPED"  # may still be shutting down
    follow = cli.run("logs", "-f", ident)  # waits for the end if it was still shutting down
    assert follow.returncode == 130
    again = cli.run("stop", ident)
    assert again.returncode == 0 and "already stopped" in again.stdout


def test_unknown_execution_is_one_line_and_exit_1(cli):
    proc = cli.run("status", "000000000000")
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0 and "not found" in proc.stderr
    assert proc.stdout == ""


def _read_until(proc, needle: str) -> bool:
    """Read the child's stdout line by line until a line contains `needle` (False at EOF)."""
    for line in proc.stdout:
        if needle in line:
            return True
    return False


def test_prune_deletes_old_finished_executions_and_says_how_many(fresh_cli, tmp_path):
    for k in range(2):
        assert fresh_cli.run("exec", "--skip-git", "--wait", f"echo run {k}", cwd=tmp_path).returncode == 0
    kept = fresh_cli.run("prune", "--older-than", "1")
    assert kept.returncode == 0, kept.stderr
    assert kept.stdout.startswith("✓ Pruned 0 finished executions created more than 1 days ago")
    pruned = fresh_cli.run("prune", "--older-than", "0", "--json")
    assert pruned.returncode == 0, pruned.stderr
    assert json.loads(pruned.stdout)["pruned"] == 2
    assert json.loads(fresh_cli.run("list", "--json").stdout)["executions"] == []
    for bad in ([], ["--older-than", "-1"], ["--older-than", "soon"]):
        refused = fresh_cli.run("prune", *bad)
        assert refused.returncode == 2 and "--older-than" in refused.stderr and "Traceback" not in refused.stderr


def test_size_flags_reach_the_engine_and_status_says_asked_and_applied(cli, tmp_path):
    started = cli.run("exec", "--skip-git", "--cpu", "1", "--memory", "4GiB", "true", cwd=tmp_path)
    assert started.returncode == 0, started.stderr
    assert "→ Size: 1 vCPU, 4096 MiB" in started.stdout.splitlines()
    assert "  Size:         1 vCPU, 4096 MiB asked; not enforced (runtime: host)" in started.stdout.splitlines()
    ident = ID_RE.search(started.stdout).group(1)
    assert cli.run("logs", "-f", ident).returncode == 0
    status = cli.run("status", ident).stdout.splitlines()
    assert "Size:           1 vCPU, 4096 MiB asked; not enforced (runtime: host)" in status
    wrong = cli.run("exec", "--skip-git", "--cpu", "1", "--memory", "1024", "true", cwd=tmp_path)
    assert wrong.returncode == 2 and wrong.stdout == ""
    assert wrong.stderr.strip() == ("mycli: error: memory 1024 MiB is not valid with cpu 1: choose 2048–8192 MiB in "
                                    "steps of 1024 (cpu from --cpu, memory from --memory)")


@pytest.mark.parametrize("args, words", [
    (["--skip-git", "--branch", "X"], "mycli: error: --branch and --skip-git contradict each other; drop one"),
    (["--skip-git", "--repo", "https://example.com/r.git"], "mycli: error: --repo and --skip-git contradict each other; drop one"),
    (["--skip-git", "--image", ""], "mycli: error: --image is empty; name an image (e.g. python:3.11) or leave it out"),
    (["--skip-git", "--image", " "], "mycli: error: --image is empty"),
    (["--skip-git", "--image", "LOCALHOST/x:1"], "mycli: error: invalid request: image 'LOCALHOST/x:1' is not a valid image "
                                                 "reference: the repository path must be lowercase"),
])
def test_contradictory_or_empty_settings_are_refused_in_one_line(cli, tmp_path, args, words):
    proc = cli.run("exec", *args, "true", cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout
    assert proc.stderr.strip().splitlines()[-1].startswith(words), proc.stderr
    assert "Execution ID" not in proc.stdout + proc.stderr


def test_piped_stdin_is_said_not_to_be_sent(cli, tmp_path):
    warning = "⚠ stdin is not sent to the command (mycli exec - reads the script from it; --upload FILE sends a file)"
    piped = cli.run("exec", "--skip-git", "--wait", "cat", cwd=tmp_path, input="hello\n")
    assert piped.returncode == 0, piped.stderr
    assert warning in piped.stderr.splitlines() and "hello" not in piped.stdout
    script = cli.run("exec", "--skip-git", "--wait", "-", cwd=tmp_path, input="echo from-stdin\n")
    assert "from-stdin" in script.stdout and warning not in script.stderr
    no_input = cli.run("exec", "--skip-git", "--wait", "true", cwd=tmp_path)  # stdin is /dev/null
    assert no_input.returncode == 0 and "stdin" not in no_input.stderr


def test_the_exec_header_escapes_what_the_user_typed(cli, tmp_path):
    """`→ Command: echo ESC[2J` would clear the terminal it is echoed to; list and status escape it."""
    for flags in (["--dry-run"], ["--wait"], []):
        proc = cli.run("exec", "--skip-git", *flags, "echo '\x1b[2J\x1b]0;title\x07'", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        header = proc.stderr if flags else proc.stdout
        assert "→ Command: echo '\\x1b[2J\\x1b]0;title\\x07'" in header.splitlines(), header
        assert "\x1b" not in header and "\x07" not in header


def test_a_host_run_shows_no_image_it_did_not_use(cli, tmp_path):
    """The host runtime runs the command as a process: list and status say so; status keeps the
    asked image visible as ignored."""
    proc = cli.run("exec", "--skip-git", "--image", "alpine:3.19", "--wait", "true", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    ident = ID_RE.search(proc.stderr).group(1)
    status = cli.run("status", ident).stdout.splitlines()
    assert "Image:          — (host process; alpine:3.19 ignored)" in status, status
    row = next(line for line in cli.run("list").stdout.splitlines() if line.startswith(ident))
    assert "— (host)" in row and "alpine" not in row, row
