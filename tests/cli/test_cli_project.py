"""resolve_exec_settings and its parts, called in-process as the notebook magic calls them, on
real git repositories in temp dirs (no server needed)."""

from __future__ import annotations

import pytest

from tests.support.cli import git, make_repo_with_origin
from mycli_magic import gitdetect
from mycli_magic.errors import ConfigError, UsageError
from mycli_magic.project import find_project_file, parse_env_pairs, resolve_exec_settings, shown_command


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    return make_repo_with_origin(tmp_path_factory.mktemp("proj"))


def test_priority_flags_then_file_then_git(repo):
    origin, work = repo
    detected = resolve_exec_settings("make", cwd=work / "sub")
    assert detected.payload == {"command": "make", "skip_git": False, "repo": str(origin), "branch": "feature"}
    assert detected.lines[-1] == "→ Command: make"

    (work / ".mycli.yaml").write_text("branch: main\nimage: python:3.11\nenv: {A: '1', B: 2}\n")
    try:
        from_file = resolve_exec_settings("make", cwd=work / "sub", env={"A": "flag"})
        # the file gave no repo, so git's origin is used; its branch comes from the file
        assert from_file.payload["repo"] == str(origin) and from_file.payload["branch"] == "main"
        assert from_file.payload["image"] == "python:3.11"
        assert from_file.payload["env"] == {"A": "flag", "B": "2"}
        assert from_file.lines[0] == "→ Loaded configuration from ../.mycli.yaml"
        assert "→ Environment: A, B" in from_file.lines  # names, never values

        flagged = resolve_exec_settings("make", cwd=work, repo="https://example.com/x.git", branch="dev", image="alpine")
        assert (flagged.payload["repo"], flagged.payload["branch"], flagged.payload["image"]) == \
            ("https://example.com/x.git", "dev", "alpine")
    finally:
        (work / ".mycli.yaml").unlink()


def test_skip_git_needs_no_repository_and_rejects_an_explicit_one(tmp_path):
    settings = resolve_exec_settings("echo hi", skip_git=True, cwd=tmp_path, timeout=5)
    assert settings.payload == {"command": "echo hi", "skip_git": True, "timeout_seconds": 5}
    with pytest.raises(UsageError, match="contradict"):
        resolve_exec_settings("echo hi", skip_git=True, repo="https://example.com/x.git", cwd=tmp_path)
    with pytest.raises(UsageError, match=r"%%mycli --repo.*--skip-git-please"):
        resolve_exec_settings("echo", cwd=tmp_path, flag_names={"repo": "%%mycli --repo", "skip_git": "--skip-git-please"})


def test_project_file_search_stops_at_the_git_root(tmp_path):
    root = tmp_path / "outer" / "repo"
    (root / "a" / "b").mkdir(parents=True)
    git("init", "--quiet", str(root), cwd=tmp_path)
    (tmp_path / "outer" / ".mycli.yaml").write_text("repo: /never/used\n")
    assert find_project_file(root / "a" / "b") is None
    (root / ".mycli.yaml").write_text("")
    assert find_project_file(root / "a" / "b") == root / ".mycli.yaml"
    (root / "a" / ".mycli.yaml").write_text("")
    assert find_project_file(root / "a" / "b") == root / "a" / ".mycli.yaml"  # the nearest wins
    # outside any git repository only the directory itself counts
    plain = tmp_path / "plain" / "child"
    plain.mkdir(parents=True)
    (tmp_path / "plain" / ".mycli.yaml").write_text("")
    assert find_project_file(plain) is None


def test_relative_repo_paths_become_absolute(tmp_path):
    project = tmp_path / "project"
    (project / "deep").mkdir(parents=True)
    (project / ".mycli.yaml").write_text("repo: ../origin.git\n")
    # no git root here, so only cwd's own file counts: run from the project dir
    from_file = resolve_exec_settings("x", cwd=project)
    assert from_file.payload["repo"] == str(tmp_path / "origin.git")  # relative to the file
    from_flag = resolve_exec_settings("x", cwd=project / "deep", repo="../../origin.git")
    assert from_flag.payload["repo"] == str(tmp_path / "origin.git")  # relative to cwd
    assert resolve_exec_settings("x", cwd=project, repo="git@github.com:o/r.git").payload["repo"] == "git@github.com:o/r.git"


def test_origin_credentials_are_stripped_and_detached_head_falls_back(tmp_path, repo):
    _, work = repo
    clone = tmp_path / "clone"
    git("clone", "--quiet", str(work), str(clone), cwd=tmp_path)
    git("remote", "set-url", "origin", "https://user:ghp_secret@github.com/o/r.git", cwd=clone)
    git("checkout", "--quiet", "--detach", "HEAD", cwd=clone)
    settings = resolve_exec_settings("x", cwd=clone)
    assert settings.payload["repo"] == "https://user@github.com/o/r.git"  # the user is no secret: kept
    assert settings.payload["branch"] == "main"
    assert not any("ghp_secret" in line for line in settings.lines)
    assert any("credentials in the URL were not sent" in line for line in settings.lines)
    assert any("HEAD is detached" in line for line in settings.lines)


def test_git_detect_outside_a_repository_and_without_origin(tmp_path):
    assert gitdetect.detect(tmp_path) is None
    git("init", "--quiet", str(tmp_path / "r"), cwd=tmp_path)
    info = gitdetect.detect(tmp_path / "r")  # no commit yet, no origin
    assert info is not None and info.origin_url is None
    with pytest.raises(UsageError, match="has no 'origin' remote"):
        resolve_exec_settings("x", cwd=tmp_path / "r")


@pytest.mark.parametrize("content, key", [
    ("- a\n- b\n", "must be a mapping"),
    ("repo: x\nextra: 1\n", "unknown key 'extra'"),
    ("timeout: 0\n", "key 'timeout'"),
    ("timeout: true\n", "key 'timeout'"),
    ("branch: 1.10\n", "key 'branch'"),
    ("env: [A]\n", "key 'env'"),
    ("env:\n  1BAD: x\n", "env key '1BAD'"),
    ("env:\n  A: null\n", "env key 'A'"),
])
def test_project_file_errors_name_file_and_key(tmp_path, content, key):
    (tmp_path / ".mycli.yaml").write_text(content)
    with pytest.raises(ConfigError) as caught:
        resolve_exec_settings("x", skip_git=True, cwd=tmp_path)
    assert str(tmp_path / ".mycli.yaml") in str(caught.value) and key in str(caught.value)


def test_env_pairs_and_command_summary():
    assert parse_env_pairs(["A=1", "B=x=y", "C="]) == {"A": "1", "B": "x=y", "C": ""}
    for bad in (["A"], ["=1"], ["1A=2"], ["A\n=2"]):  # a key with a newline: the API refuses it too
        with pytest.raises(UsageError):
            parse_env_pairs(bad)
    assert shown_command("line one\nline two\n") == "line one  … (2 lines)"
    assert len(shown_command("y" * 500)) == 70


def test_only_secrets_are_stripped_from_remote_urls():
    strip = gitdetect.strip_credentials
    assert strip("https://ghp_token@github.com/o/r.git") == ("https://github.com/o/r.git", True)
    assert strip("https://u:p@example.com/r.git") == ("https://u@example.com/r.git", True)
    assert strip("ssh://alice:pw@host/repo.git") == ("ssh://alice@host/repo.git", True)
    assert strip("https://alice@host/repo.git") == ("https://alice@host/repo.git", False)
    assert strip("https://:pw@host/repo.git") == ("https://host/repo.git", True)
    assert strip("https://" + "0123456789abcdef" * 2 + "abcdef01@github.com/o/r.git") == ("https://github.com/o/r.git", True)
    assert strip("ssh://git@github.com/o/r.git") == ("ssh://git@github.com/o/r.git", False)
    assert strip("git@github.com:o/r.git") == ("git@github.com:o/r.git", False)


def test_auto_detect_warns_when_the_clone_will_not_have_local_work(tmp_path):
    origin, work = make_repo_with_origin(tmp_path)
    clean = resolve_exec_settings("make", cwd=work)
    assert not [line for line in clean.lines if line.startswith("⚠")], "a pushed, clean branch needs no warning"

    git("commit", "--allow-empty", "--quiet", "-m", "local only", cwd=work)
    (work / "which.txt").write_text("edited\n")
    warned = [line for line in resolve_exec_settings("make", cwd=work).lines if line.startswith("⚠")]
    assert len(warned) == 1
    assert "1 local commit" in warned[0] and "uncommitted changes" in warned[0] and "clones what origin has" in warned[0]


def test_size_flags_then_file_then_defaults_each_half(tmp_path):
    (tmp_path / ".mycli.yaml").write_text("cpu: 2\nmemory: 8GiB\n")
    from_file = resolve_exec_settings("true", skip_git=True, cwd=tmp_path)
    assert (from_file.payload["cpu"], from_file.payload["memory"]) == (2, 8192)
    assert "→ Size: 2 vCPU, 8192 MiB" in from_file.lines
    flagged = resolve_exec_settings("true", skip_git=True, cwd=tmp_path, memory="4G")
    assert (flagged.payload["cpu"], flagged.payload["memory"]) == (2, 4096)
    with pytest.raises(UsageError) as info:
        resolve_exec_settings("true", skip_git=True, cwd=tmp_path, cpu="0.25")
    assert str(info.value) == ("memory 8192 MiB is not valid with cpu 0.25: choose 512, 1024, 2048 MiB "
                               "(cpu from --cpu, memory from .mycli.yaml)")
    with pytest.raises(UsageError, match=r"^--memory: memory 'lots' is not a size"):
        resolve_exec_settings("true", skip_git=True, cwd=tmp_path, memory="lots")
    (tmp_path / ".mycli.yaml").unlink()
    assert "cpu" not in resolve_exec_settings("true", skip_git=True, cwd=tmp_path).payload  # the engine's default
    only_memory = resolve_exec_settings("true", skip_git=True, cwd=tmp_path, memory="3G")
    assert (only_memory.payload["cpu"], only_memory.payload["memory"]) == (0.5, 3072)  # the smallest cpu that takes it


@pytest.mark.parametrize("text, words", [("cpu: 3\n", "key 'cpu': cpu must be one of 0.25, 0.5, 1, 2, 4, 8, 16"),
                                         ("memory: lots\n", "key 'memory': memory 'lots' is not a size")])
def test_a_bad_size_in_the_project_file_names_file_and_key(tmp_path, text, words):
    (tmp_path / ".mycli.yaml").write_text(text)
    with pytest.raises(ConfigError) as info:
        resolve_exec_settings("true", skip_git=True, cwd=tmp_path)
    assert str(info.value).startswith(f"{tmp_path / '.mycli.yaml'}: {words}")
