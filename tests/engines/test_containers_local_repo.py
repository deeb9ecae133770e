"""A repository on the engine's own disk — an absolute path, or a file:// URL — is cloned in a
container as on the host (docs/cli.md accepts a local path): the run mounts it read-only at the
same path. What notebooks/quickstart.ipynb's repository cell does, on docker and podman."""

from __future__ import annotations

import subprocess

import pytest

from tests.support import runtimes
from tests.support.git_repos import make_repo
from tests.support.server import start_server, stop_server


@pytest.fixture(scope="module", params=runtimes.CONTAINER_RUNTIMES)
def git_engine(request, tmp_path_factory):
    runtimes.require(request.param)
    srv = start_server(tmp_path_factory.mktemp(f"repo-{request.param}"), runtimes.server_env(request.param))
    yield srv
    stop_server(srv)


@pytest.mark.parametrize("form", ["path", "file-url"])
def test_a_local_repository_is_cloned_in_the_container(git_engine, tmp_path, form):
    repo = make_repo(tmp_path / "some-repo", files={"hello.txt": "hello from the local repo\n"})
    # a user's own repository, seen by a rootful container's root: git calls its ownership dubious
    subprocess.run(["chown", "-R", "1000:1000", str(repo)], check=True)
    url = str(repo) if form == "path" else f"file://{repo}"
    final = git_engine.run("cat hello.txt; touch \"$REPO_DIR/new\" 2>/dev/null || echo ro",
                           skip_git=False, repo=url, branch="main",
                           image=runtimes.git_image(), env={"REPO_DIR": str(repo)})
    lines = git_engine.all_lines(final["execution_id"])
    assert final["exit_code"] == 0, lines
    assert "✓ Repository cloned" in lines and "hello from the local repo" in lines
    assert "ro" in lines and not (repo / "new").exists()  # the run cannot change the user's repository


def test_a_local_repository_path_a_mount_cannot_name_is_refused(git_engine, tmp_path):
    repo = make_repo(tmp_path / "a,b")
    status, body = git_engine.call({"action": "exec", "command": "true", "repo": str(repo), "branch": "main",
                                    "image": runtimes.git_image()})
    assert status == 400 and "':' or ','" in body["error"], body


def _git(*args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t.invalid", "-c", "protocol.file.allow=always",
                    *args], check=True, capture_output=True)


def linked_checkout(base, kind: str):
    """(checkout, its branch) whose `.git` is a file naming a git dir elsewhere: a `git worktree
    add` of a repository, or a submodule checked out in a superproject."""
    main = make_repo(base / "main", files={"hello.txt": "hello from the main checkout\n"})
    if kind == "worktree":
        _git("-C", str(main), "worktree", "add", "-q", "-b", "feature", str(base / "wt"))
        (base / "wt" / "hello.txt").write_text("hello from the worktree's branch\n")
        _git("-C", str(base / "wt"), "commit", "-qam", "on the worktree")
        return base / "wt", "feature"
    sub = make_repo(base / "sub-src", files={"hello.txt": "hello from the submodule\n"})
    _git("-C", str(main), "submodule", "add", "-q", str(sub), "sub")
    _git("-C", str(main), "commit", "-qm", "add the submodule")
    return main / "sub", "main"


@pytest.mark.parametrize("runtime", runtimes.RUNTIMES)
@pytest.mark.parametrize("kind", ["worktree", "submodule"])
def test_a_worktree_or_submodule_checkout_is_cloned_as_on_the_host(runtime_servers, tmp_path, runtime, kind):
    """Its `.git` file names a git dir the checkout's own mount does not hold (a worktree's is in
    the main repository's .git/worktrees/NAME, a submodule's in the superproject's .git/modules)."""
    engine = runtime_servers(runtime)
    checkout, branch = linked_checkout(tmp_path, kind)
    assert (checkout / ".git").is_file()
    if runtime != "host":  # a user's own, as above (the host engine runs as that user)
        subprocess.run(["chown", "-R", "1000:1000", str(tmp_path)], check=True)
    fields = {} if runtime == "host" else {"image": runtimes.git_image()}
    final = engine.run("cat hello.txt", skip_git=False, repo=str(checkout), branch=branch, **fields)
    lines = engine.all_lines(final["execution_id"])
    assert final["exit_code"] == 0, "\n".join(lines[-12:])
    want = "hello from the worktree's branch" if kind == "worktree" else "hello from the submodule"
    assert "✓ Repository cloned" in lines and want in lines


def test_a_worktree_whose_git_dir_a_mount_cannot_name_is_refused_before_anything_runs(git_engine, tmp_path):
    main = make_repo(tmp_path / "a,b" / "main")
    _git("-C", str(main), "worktree", "add", "-q", "-b", "feature", str(tmp_path / "wt"))
    status, body = git_engine.call({"action": "exec", "command": "true", "repo": str(tmp_path / "wt"),
                                    "branch": "feature", "image": runtimes.git_image()})
    assert status == 400 and "':' or ','" in body["error"] and "a,b" in body["error"], body
    listed = git_engine.call({"action": "list", "limit": 1000})[1]["executions"]
    assert not [e for e in listed if e.get("repo") == str(tmp_path / "wt")]
