"""A repo URL's user part (ssh://git@host/..., https://alice@host/...) is no secret: validation
accepts it, the log header shows it, git and ssh get it, the client's credential scrub keeps it.
A password or a token in its place is refused by the API, stripped by the client, and never
printed, logged or put on a command line. Real git, real shells, a real git HTTP server."""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path

import pytest

from mycli_magic import gitdetect
from orchestrator.errors import BadRequest
from orchestrator.shell import GitHosts, build_script, display_repo
from orchestrator.validation import parse_request
from tests.orchestrator.test_shell import SHELLS, TOKEN, run_script
from tests.support.git_http_server import GitHttpServer
from tests.support.git_repos import make_repo


@pytest.fixture
def git_server(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    src = make_repo(tmp_path / "src", branch="trunk")
    subprocess.run(["git", "clone", "-q", "--bare", str(src), str(root / "private.git")], check=True)
    server = GitHttpServer(root, "x-access-token", TOKEN, delay=0.05)
    yield server
    server.close()


def _command_lines_holding(secret: str, stop: threading.Event, seen: list[str]) -> None:
    """Every process's command line, over and over until `stop`: any that holds `secret`."""
    while not stop.is_set():
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    args = Path(f"/proc/{pid}/cmdline").read_bytes()
                except OSError:
                    continue
                if secret.encode() in args:
                    seen.append(args.decode("utf-8", "replace"))


@pytest.mark.parametrize("shell", SHELLS)
def test_a_user_in_an_https_url_is_kept_and_the_token_still_reaches_only_git(shell, git_server, tmp_path):
    repo = f"http://alice@{git_server.host}/private.git"
    _, request = parse_request({"action": "exec", "command": "cat hello.txt", "repo": repo, "branch": "trunk"})
    script = build_script(request, workdir=str(tmp_path / "w"), hosts=GitHosts(github=git_server.host))
    assert TOKEN not in script
    stop, seen = threading.Event(), []
    watcher = threading.Thread(target=_command_lines_holding, args=(TOKEN, stop, seen))
    watcher.start()
    try:
        rc, output = run_script(shell, script, tmp_path, env={"MYCLI_GITHUB_TOKEN": TOKEN})
    finally:
        stop.set()
        watcher.join()
    assert rc == 0, output
    assert f"→ Repository: {repo}" in output.splitlines()  # the user, as given
    assert "hello from the repo" in output and "ok" in git_server.auth_attempts
    assert TOKEN not in output and seen == [], seen
    for path in (tmp_path / "w" / "repo" / ".git").rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path


@pytest.mark.parametrize("shell", SHELLS)
def test_a_user_in_an_ssh_url_reaches_ssh_and_the_log(shell, tmp_path):
    """ssh is a stand-in that writes down how git called it (and fails, as an unreachable host would)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "ssh").write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > {tmp_path}/ssh-args\nexit 255\n")
    (bin_dir / "ssh").chmod(0o755)
    repo = "ssh://alice@git.example.invalid:2222/team/repo.git"
    _, request = parse_request({"action": "exec", "command": "true", "repo": repo, "branch": "main"})
    script = build_script(request, workdir=str(tmp_path / "w"))
    rc, output = run_script(shell, script, tmp_path, env={"PATH": f"{bin_dir}:{os.environ['PATH']}"})
    assert rc == 200 and f"→ Repository: {repo}" in output.splitlines(), output
    args = (tmp_path / "ssh-args").read_text().splitlines()
    assert "alice@git.example.invalid" in args or ("-l" in args and "alice" in args), args


@pytest.mark.parametrize("repo", ["ssh://alice@host/repo.git", "https://alice@host/repo.git", "git@github.com:o/r.git",
                                  "https://x-access-token@github.com/o/r.git", "ssh://git@host:22/r.git"])
def test_a_user_name_is_accepted_and_shown(repo):
    _, request = parse_request({"action": "exec", "command": "true", "repo": repo})
    assert request.repo == repo and display_repo(repo) == repo


@pytest.mark.parametrize("repo, secret", [
    ("ssh://user:pw-9f8e7d@host/repo.git", "pw-9f8e7d"),
    ("https://user:pw-9f8e7d@host/repo.git", "pw-9f8e7d"),
    ("https://ghp_abcdef0123456789@github.com/o/r.git", "ghp_abcdef0123456789"),
    ("https://glpat-abcdef0123456789@gitlab.com/o/r.git", "glpat-abcdef0123456789"),
    ("https://0123456789abcdef0123456789abcdef01234567@github.com/o/r.git", "0123456789abcdef0123456789abcdef01234567"),
])
def test_a_password_or_token_is_refused_without_being_repeated_and_never_shown(repo, secret):
    with pytest.raises(BadRequest) as info:
        parse_request({"action": "exec", "command": "true", "repo": repo})
    assert "password or token" in info.value.message and secret not in info.value.message
    assert secret not in display_repo(repo)
    assert "user@" in display_repo(repo) or "***@" in display_repo(repo)


def test_the_client_strips_the_password_from_origin_but_keeps_the_user(tmp_path):
    work = make_repo(tmp_path / "work")
    subprocess.run(["git", "-C", str(work), "remote", "add", "origin", "ssh://alice:pw-9f8e7d@host/repo.git"], check=True)
    info = gitdetect.detect(work)
    assert (info.origin_url, info.credentials_stripped) == ("ssh://alice@host/repo.git", True)
    subprocess.run(["git", "-C", str(work), "remote", "set-url", "origin", "https://alice@host/repo.git"], check=True)
    info = gitdetect.detect(work)
    assert (info.origin_url, info.credentials_stripped) == ("https://alice@host/repo.git", False)
    assert parse_request({"action": "exec", "command": "true", "repo": info.origin_url})[1].repo == info.origin_url


@pytest.mark.parametrize("repo, shown", [
    ("ssh://alice@host/repo.git", "ssh://alice@host/repo.git"),
    ("https://alice:pw-9f8e7d@host/repo.git", "https://alice:***@host/repo.git"),
    ("https://ghp_abcdef0123456789@github.com/o/r.git", "https://***@github.com/o/r.git"),
])
def test_the_clients_start_line_shows_the_user_and_never_the_secret(repo, shown, tmp_path):
    """`mycli exec --repo URL` prints its settings before the API answers (and refuses a secret)."""
    from mycli_magic.project import resolve_exec_settings

    settings = resolve_exec_settings("true", repo=repo, cwd=tmp_path)
    assert f"→ Repository: {shown}" in settings.lines
    assert not any("pw-9f8e7d" in line or "ghp_abcdef" in line for line in settings.lines)
