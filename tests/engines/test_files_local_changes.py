"""`local_changes` on the embedded engine, end to end: a real repository served over real git
smart HTTP with a token, work in progress captured by the client's own code, uploaded over real
HTTP, applied by the run after its shallow clone — on the host and in docker and podman (an
image with git) — gives a tree equal to the local working tree, and the same HEAD."""

from __future__ import annotations

import io
import subprocess
import tarfile

import pytest

from mycli_magic.local_changes import capture
from tests.engines.test_files import by_name, follow_to_the_end
from tests.orchestrator.test_local_changes import git, make_work_in_progress, snapshot
from tests.support import runtimes
from tests.support.files import artifacts, download, upload
from tests.support.git_http_server import GitHttpServer
from tests.support.git_repos import two_commit_origin
from tests.support.server import start_server, stop_server

TOKEN = "ghp_local-changes-test-token-0123456789abcdef"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A bare origin with two commits on main, served over HTTP with a token."""
    root = tmp_path_factory.mktemp("lc-served")
    origin = two_commit_origin(root)
    server = GitHttpServer(root, "x-access-token", TOKEN)
    yield server, origin
    server.close()


@pytest.fixture(scope="module", params=runtimes.RUNTIMES)
def git_engine(request, tmp_path_factory, served):
    runtimes.require(request.param)
    srv = start_server(tmp_path_factory.mktemp(f"lc-{request.param}"),
                       runtimes.server_env(request.param, GITHUB_TOKEN=TOKEN, GITHUB_HOST=served[0].host))
    yield srv
    stop_server(srv)


def run_with_changes(engine, served, archive: bytes, command: str) -> tuple[str, list[str]]:
    payload = {"action": "exec", "command": command, "repo": f"http://{served[0].host}/origin.git", "branch": "main",
               "local_changes": upload(engine, archive, purpose="local_changes")}
    if engine.runtime != "host":
        payload["image"] = runtimes.git_image()
    status, body = engine.call(payload)
    assert status == 200, body
    return body["execution_id"], follow_to_the_end(engine, body["execution_id"])


def test_the_run_tree_equals_the_local_working_tree(git_engine, served, tmp_path):
    work = tmp_path / "work"
    subprocess.run(["git", "clone", "-q", str(served[1]), str(work)], check=True)
    make_work_in_progress(work)  # a commit not pushed, edits, a deletion, a mode change, untracked files
    changes = capture(work, "main")
    assert changes.commits == 1 and changes.untracked == 2
    command = 'git rev-parse HEAD > "$MYCLI_OUTPUTS/head" && tar cf "$MYCLI_OUTPUTS/tree.tar" --exclude=./.git .'
    execution_id, lines = run_with_changes(git_engine, served, changes.archive, command)
    status = git_engine.call({"action": "status", "execution_id": execution_id})[1]
    assert status["exit_code"] == 0, lines
    assert any(line.startswith("✓ Local changes applied: 1 local commit and 5 changed files") for line in lines), lines
    items = by_name(artifacts(git_engine, execution_id))
    assert download(git_engine, items["head"]).decode().strip() == git(work, "rev-parse", "HEAD")
    tree = tmp_path / "tree"
    with tarfile.open(fileobj=io.BytesIO(download(git_engine, items["tree.tar"]))) as tar:
        tar.extractall(tree, filter="tar")  # keeps the modes as the run had them
    assert snapshot(tree) == snapshot(work)
    assert not (tree / "debug.log").exists()  # ignored files stay home


def test_changes_that_cannot_apply_end_the_run_before_the_command(git_engine, served, tmp_path):
    work = tmp_path / "work"
    subprocess.run(["git", "clone", "-q", str(served[1]), str(work)], check=True)
    (work / "app.py").write_text("print('mine')\n")
    changes = capture(work, "main")
    broken = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(changes.archive)) as src, tarfile.open(fileobj=broken, mode="w:gz") as dst:
        for member in src:
            data = src.extractfile(member).read()
            if member.name == "patch":
                data = data.replace(b"print('v2')", b"print('not what origin has')")
            member.size = len(data)
            dst.addfile(member, io.BytesIO(data))
    execution_id, lines = run_with_changes(git_engine, served, broken.getvalue(), 'echo COMMAND-RAN')
    status = git_engine.call({"action": "status", "execution_id": execution_id})[1]
    assert status["exit_code"] == 200 and status["stop_code"] == "TaskFailedToStart", status
    assert "COMMAND-RAN" not in lines
    assert any("uncommitted changes could not be applied" in line for line in lines), lines
