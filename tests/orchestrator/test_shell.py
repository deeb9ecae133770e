"""The generated script under the real dash, bash and busybox ash, and under shellcheck.

Every test writes the script to a file and runs it with the shell, in its own session, with
stdout and stderr merged, the way an engine does; leftovers of a run are killed by group.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from tests.support import git_repos
import pytest

from tests.support.git_http_server import GitHttpServer
from orchestrator.shell import NOT_STARTED_EXIT_CODE, GitHosts, build_script, sh_quote
from orchestrator.validation import ExecRequest

SHELLS = {"dash": ["dash"], "bash": ["bash"], "busybox": ["busybox", "sh"]}
TOKEN = "ghp_T0ken-That-Must-Never-Show-9f8e7d6c5b4a"

# Texts a user command may carry; each must reach the command unchanged.
PAYLOADS = {
    "quotes": "single ' double \" both '\"' and '\\''",
    "subst": "$(touch CANARY) ${HOME} $((1+2)) `touch CANARY`",
    "newlines": "line one\nline two\n\nline four after a blank",
    "heredoc": "cat <<EOF\ninner $(touch CANARY)\nEOF",
    "unicode": "héllo ✓ 日本語 🚀 ￿ \u200b",
    "trailing_backslash": "ends with a backslash \\",
    "lone_quote": "'",
    "metachars": "; & | && || > < >> * ? [a] ~ # ! { } ( ) \\n \\t %s %n",
    "control": "tab\there cr\rthere esc\x1b[31m bell\x07",
}


def run_script(shell: str, script: str, cwd: Path, env: dict | None = None, to_file: bool = False,
               timeout: float = 60) -> tuple[int, str]:
    """Run `script` with `shell` as an engine would; return (exit code, merged output)."""
    path = cwd / "mycli-script.sh"
    path.write_text(script, encoding="utf-8")
    out_path = cwd / "mycli-output.txt"
    base = {"PATH": os.environ["PATH"], "HOME": str(cwd), "LANG": "C.UTF-8"}
    with open(out_path, "wb") as out:
        proc = subprocess.Popen(
            [*SHELLS[shell], str(path)], cwd=cwd, env={**base, **(env or {})}, stdin=subprocess.DEVNULL,
            stdout=out if to_file else subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            data, _ = proc.communicate(timeout=timeout)
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # whatever the run left behind
            except ProcessLookupError:
                pass
    if to_file:
        data = out_path.read_bytes()
    return proc.returncode, data.decode("utf-8", "replace")


def direct(command: str, **fields) -> ExecRequest:
    return ExecRequest(command=command, skip_git=True, **fields)


def make_repo(root: Path, branch: str = "trunk") -> Path:
    """A real repository whose only branch is `branch` (not main), with one file."""
    return git_repos.make_repo(root / "src", branch=branch)


@pytest.fixture(params=sorted(SHELLS))
def shell(request) -> str:
    return request.param


# shellcheck -------------------------------------------------------------------------------------

SHELLCHECK_CASES = {
    "direct": (direct("echo hi", env={"A": "1"}, image="python:3.11"), {}),
    "github": (ExecRequest(command="make", repo="https://github.com/o/r.git", branch="dev"), {}),
    "gitlab": (ExecRequest(command="make", repo="https://gitlab.com/o/r.git"), {}),
    "ssh": (ExecRequest(command="make", repo="git@github.com:o/r.git"), {}),
    "file": (ExecRequest(command="make", repo="file:///srv/r.git"), {}),
    "local changes": (ExecRequest(command="make", repo="https://github.com/o/r.git", local_changes="up-" + "0" * 32), {}),
    "watchdog": (ExecRequest(command="make", repo="/srv/r", timeout_seconds=60), {"watchdog": True}),
    "notes": (direct("x", timeout_seconds=5), {"watchdog": True, "notes": ("→ Runtime: it's 'quoted'",)}),
}


@pytest.mark.parametrize("case", sorted(SHELLCHECK_CASES))
def test_script_is_clean_under_shellcheck(case):
    request, kwargs = SHELLCHECK_CASES[case]
    script = build_script(request, workdir="/workspace", **kwargs)
    result = subprocess.run(["shellcheck", "-s", "sh", "-"], input=script, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_sh_quote_round_trips_every_byte_but_nul(tmp_path):
    value = "".join(chr(c) for c in range(1, 256)) + "'\\'"
    result = subprocess.run(["dash", "-c", f"printf '%s' {sh_quote(value)}"], capture_output=True)
    assert result.stdout == value.encode()


# the user's command arrives byte for byte -------------------------------------------------------

@pytest.mark.parametrize("name", sorted(PAYLOADS))
def test_command_text_arrives_byte_for_byte(shell, name, tmp_path):
    payload = PAYLOADS[name]
    command = f"cat > payload.out <<'MYCLI_TEST_END_3f9a'\n{payload}\nMYCLI_TEST_END_3f9a"
    rc, output = run_script(shell, build_script(direct(command), workdir=str(tmp_path / "w")), tmp_path)
    assert rc == 0, output
    assert (tmp_path / "w" / "payload.out").read_bytes() == (payload + "\n").encode()
    assert not list(tmp_path.rglob("CANARY"))


def test_command_with_its_own_quoting_runs_as_written(shell, tmp_path):
    command = "x='a'\\''b \"c\" $(d)'; printf '[%s]\\n' \"$x\" `echo tick` \"$(printf 'x\\\\ny')\""
    rc, output = run_script(shell, build_script(direct(command), workdir=str(tmp_path)), tmp_path)
    assert rc == 0, output
    assert "[a'b \"c\" $(d)]\n[tick]\n[x\\ny]\n" in output


def test_lone_quote_command_reaches_sh_and_fails_as_sh_says(tmp_path):
    rc, output = run_script("dash", build_script(direct("'"), workdir=str(tmp_path)), tmp_path)
    assert rc == 2  # sh's syntax error status, reported like any other failure
    assert "✗ Command failed with exit code: 2" in output


# exit codes reach the report -------------------------------------------------------------------

@pytest.mark.parametrize("command, code", [
    ("true", 0),
    ("exit 7", 7),
    ("set -e; false; echo NOT-REACHED", 1),
    ("echo before; exit 0; echo NOT-REACHED", 0),
    ("kill -TERM $$", 143),
    ("exit 255", 255),
])
def test_exit_code_reaches_the_report_and_propagates(shell, command, code, tmp_path):
    rc, output = run_script(shell, build_script(direct(command), workdir=str(tmp_path)), tmp_path)
    assert rc == code, output
    assert "NOT-REACHED" not in output
    report = "✓ Command completed successfully" if code == 0 else f"✗ Command failed with exit code: {code}"
    assert output.rstrip().splitlines()[-2] == report


def test_exit_report_with_watchdog(shell, tmp_path):
    script = build_script(direct("echo ran; exit 5", timeout_seconds=30), workdir=str(tmp_path), watchdog=True)
    rc, output = run_script(shell, script, tmp_path, to_file=True)  # the dog's sleep may hold a pipe
    assert rc == 5, output
    assert "ran" in output and "✗ Command failed with exit code: 5" in output


def test_watchdog_kills_at_the_timeout_and_reports_124(shell, tmp_path):
    script = build_script(direct("echo started; sleep 30; echo NOT-REACHED", timeout_seconds=1),
                          workdir=str(tmp_path), watchdog=True)
    started = time.monotonic()
    rc, output = run_script(shell, script, tmp_path, to_file=True, timeout=25)
    assert rc == 124, output
    assert time.monotonic() - started < 25  # killed, not waited out
    assert "started" in output and "NOT-REACHED" not in output
    assert "✗ Timed out after 1 s, the run's --timeout" in output


def test_direct_mode_runs_in_workdir(shell, tmp_path):
    workdir = tmp_path / "new" / "dir with space"
    rc, output = run_script(shell, build_script(direct("pwd"), workdir=str(workdir)), tmp_path)
    assert rc == 0 and str(workdir) in output


def test_env_is_exported_just_before_the_command_and_its_values_stay_out_of_the_header(tmp_path):
    value = "it's $(not run) `nor this`"
    request = direct("printf '%s\\n' \"$SECRETISH\"", env={"SECRETISH": value})
    rc, output = run_script("dash", build_script(request, workdir=str(tmp_path)), tmp_path)
    assert rc == 0 and "→ Environment: SECRETISH" in output
    assert output.count(value) == 1  # printed by the command only, byte for byte


# git mode --------------------------------------------------------------------------------------

def test_clone_file_url_and_plain_path_on_non_default_branch(shell, tmp_path):
    src = make_repo(tmp_path, branch="feature/x-1")
    for repo in (f"file://{src}", str(src)):
        work = tmp_path / ("w-file" if repo.startswith("file:") else "w-path")
        request = ExecRequest(command="cat hello.txt; git rev-parse --abbrev-ref HEAD; pwd", repo=repo, branch="feature/x-1")
        rc, output = run_script(shell, build_script(request, workdir=str(work)), tmp_path)
        assert rc == 0, output
        assert "hello from the repo\nfeature/x-1\n" + str(work / "repo") in output
        assert "✓ Repository cloned" in output


def test_clone_of_missing_branch_fails_clearly_and_runs_nothing(shell, tmp_path):
    src = make_repo(tmp_path)
    request = ExecRequest(command="touch CANARY", repo=str(src), branch="no-such-branch")
    rc, output = run_script(shell, build_script(request, workdir=str(tmp_path / "w")), tmp_path)
    assert rc == NOT_STARTED_EXIT_CODE == 200  # not 1: a command's own `exit 1` looks like that
    assert "ERROR: Failed to clone repository" in output
    assert output.rstrip().splitlines()[-2] == "✗ Could not start the command: the repository could not be cloned (exit code 200)"
    assert not list(tmp_path.rglob("CANARY"))


def test_an_image_without_git_names_the_flag_that_runs_without_it(tmp_path):
    """What a user types (`--skip-git`, the CLI's and the magic's), not the API's field name."""
    tools = tmp_path / "bin"  # a PATH without git, apk, apt-get, dnf or yum
    tools.mkdir()
    for tool in ("dash", "mktemp", "rm", "mkdir"):
        (tools / tool).symlink_to(shutil.which(tool))
    request = ExecRequest(command="touch CANARY", repo=str(make_repo(tmp_path)))
    rc, output = run_script("dash", build_script(request, workdir=str(tmp_path / "w")), tmp_path, env={"PATH": str(tools)})
    assert rc == NOT_STARTED_EXIT_CODE, output
    assert "Use an image that has git, or run without cloning: --skip-git." in output.splitlines()
    assert "skip_git" not in output and not list(tmp_path.rglob("CANARY"))


@pytest.fixture
def git_server(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    src = make_repo(tmp_path, branch="trunk")
    git_repos.bare_clone(src, root / "private.git")
    server = GitHttpServer(root, "x-access-token", TOKEN)
    yield server
    server.close()


def test_github_token_clones_private_repo_and_never_shows(shell, git_server, tmp_path):
    request = ExecRequest(command="cat hello.txt; env", repo=f"http://{git_server.host}/private.git", branch="trunk")
    script = build_script(request, workdir=str(tmp_path / "w"), hosts=GitHosts(github=git_server.host))
    assert TOKEN not in script
    rc, output = run_script(shell, script, tmp_path, env={"MYCLI_GITHUB_TOKEN": TOKEN})
    assert rc == 0, output
    assert "hello from the repo" in output and "ok" in git_server.auth_attempts
    assert TOKEN not in output
    env_lines = output.split("Executing command...", 1)[1]
    assert "MYCLI_GITHUB_TOKEN" not in env_lines and "MYCLI_GIT_PASSWORD" not in env_lines
    git_dir = tmp_path / "w" / "repo" / ".git"
    for path in git_dir.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path


def test_private_repo_without_token_fails_without_prompting(git_server, tmp_path):
    request = ExecRequest(command="touch CANARY", repo=f"http://{git_server.host}/private.git", branch="trunk")
    script = build_script(request, workdir=str(tmp_path / "w"), hosts=GitHosts(github=git_server.host))
    rc, output = run_script("dash", script, tmp_path, timeout=30)
    assert rc == NOT_STARTED_EXIT_CODE and "ERROR: Failed to clone repository" in output
    assert not list(tmp_path.rglob("CANARY"))


def test_token_for_github_host_is_not_sent_to_another_host(git_server, tmp_path):
    request = ExecRequest(command="true", repo=f"http://{git_server.host}/private.git", branch="trunk")
    script = build_script(request, workdir=str(tmp_path / "w"), hosts=GitHosts(github="github.example"))
    rc, output = run_script("dash", script, tmp_path, env={"MYCLI_GITHUB_TOKEN": TOKEN}, timeout=30)
    assert rc == NOT_STARTED_EXIT_CODE
    assert "ok" not in git_server.auth_attempts


# credentials are removed on every exit path ---------------------------------------------------

@pytest.mark.parametrize("path", ["clone fails", "command fails", "terminated"])
def test_ssh_key_file_removed_on_every_exit_path(path, tmp_path):
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    key = "LS0tLS1CRUdJTiBGQUtFIEtFWS0tLS0tCg=="  # base64 of a fake PEM header
    src = make_repo(tmp_path)
    if path == "clone fails":
        request = ExecRequest(command="true", repo="ssh://git@127.0.0.1:1/nothing.git")
    else:
        # A local clone, then a command: the temp dir where a key would live must still go.
        request = ExecRequest(command="exit 3" if path == "command fails" else "sleep 30", repo=str(src), branch="trunk")
    script = build_script(request, workdir=str(tmp_path / "w"))
    env = {"MYCLI_SSH_PRIVATE_KEY": key, "TMPDIR": str(tmpdir)}
    if path == "terminated":
        script_path = tmp_path / "s.sh"
        script_path.write_text(script)
        proc = subprocess.Popen(["dash", str(script_path)], cwd=tmp_path, env={"PATH": os.environ["PATH"], **env},
                                stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 20
        while not list(tmpdir.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert list(tmpdir.iterdir()), "the script never made its temp dir"
        time.sleep(0.5)
        os.killpg(proc.pid, signal.SIGTERM)
        assert proc.wait(20) == 143
    else:
        rc, output = run_script("dash", script, tmp_path, env=env, timeout=30)
        assert rc == (NOT_STARTED_EXIT_CODE if path == "clone fails" else 3), output
    assert list(tmpdir.iterdir()) == []


def test_tokens_are_offered_over_https_only_except_to_a_loopback_server():
    from orchestrator.shell import GitHosts, credential_kind

    assert credential_kind("https://github.com/o/r") == "github"
    assert credential_kind("http://github.com/o/r") is None
    assert credential_kind("http://gitlab.com/o/r") is None
    assert credential_kind("http://127.0.0.1:8080/r.git", GitHosts(github="127.0.0.1:8080")) == "github"
