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
