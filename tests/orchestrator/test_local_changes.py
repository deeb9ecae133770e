"""--local-changes end to end on real git repositories and real shells: what the client packs
(mycli_magic.local_changes) applied by the script's lines (orchestrator.local_changes_script) on a
fresh shallow clone gives back the local working tree exactly."""

from __future__ import annotations

import io
import os
import shutil
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from mycli_magic.errors import UsageError
from mycli_magic.local_changes import capture
from orchestrator.local_changes_script import apply_lines
from tests.support.git_repos import two_commit_origin

GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@t.invalid", "-c", "init.defaultBranch=main"]
SHELLS = [s for s in ("dash", "bash", "busybox") if shutil.which(s)]
FAIL = 3  # any distinctive code: the caller chooses it


def git(cwd: Path, *args: str) -> str:
    return subprocess.run([*GIT, "-C", str(cwd), *args], check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def origin_and_work(tmp_path):
    """A bare origin with two commits on main, and a clone of it with work in progress."""
    origin = two_commit_origin(tmp_path)
    work = tmp_path / "work"
    subprocess.run(["git", "clone", "-q", str(origin), str(work)], check=True)
    return origin, work


def make_work_in_progress(work: Path) -> None:
    (work / "lib.py").write_text("X = 1\n")
    git(work, "add", "lib.py")
    git(work, "commit", "-qm", "local commit, not pushed")
    (work / "app.py").write_text("print('edited, not committed')\n")
    (work / "gone.txt").unlink()
    (work / "run.sh").chmod(0o755)
    (work / "new dir").mkdir()
    (work / "new dir" / "data.bin").write_bytes(bytes(range(256)) * 40)
    (work / "notes.txt").write_text("untracked ünïcode\n")
    (work / "debug.log").write_text("ignored: must not travel\n")


def run_in_clone(tmp_path: Path, origin: Path, archive: bytes | None, shell: str, name: str = "run") -> subprocess.CompletedProcess:
    clone = tmp_path / name
    subprocess.run(["git", "clone", "-q", "--no-local", "--depth", "1", "--branch", "main", f"file://{origin}", str(clone)], check=True)
    lc = ""
    if archive is not None:
        lc_dir = tmp_path / f"{name}-lc"
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(lc_dir, filter="data")
        lc = str(lc_dir)
    script = "\n".join(["set -u", "set --", *apply_lines("main", FAIL)]) + "\n"
    argv = [shell, "sh", "-c", script] if shell == "busybox" else [shell, "-c", script]
    env = {**os.environ, "MYCLI_LOCAL_CHANGES": lc, **dict(zip(("GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME"), ("t", "t")))}
    return subprocess.run(argv, cwd=clone, env=env, capture_output=True, text=True, timeout=120)


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    files = {}
    for path in root.rglob("*"):
        rel = path.relative_to(root)
        if rel.parts[0] == ".git" or path.is_dir() or path.name.endswith(".log"):
            continue
        files[str(rel)] = (path.read_bytes(), stat.S_IMODE(path.stat().st_mode) & 0o111)
    return files


@pytest.mark.parametrize("shell", SHELLS)
def test_the_run_tree_equals_the_local_working_tree(tmp_path, origin_and_work, shell):
    origin, work = origin_and_work
    make_work_in_progress(work)
    changes = capture(work, "main")
    assert changes.commits == 1 and changes.untracked == 2 and changes.files == 5
    assert "1 local commit and 5 changed files (2 untracked)" in changes.summary
    proc = run_in_clone(tmp_path, origin, changes.archive, shell)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "✓ Local changes applied: 1 local commit and 5 changed files" in proc.stdout
    run = tmp_path / "run"
    assert snapshot(run) == snapshot(work)
    assert git(run, "rev-parse", "HEAD") == git(work, "rev-parse", "HEAD")
    assert git(run, "rev-parse", "--abbrev-ref", "HEAD") == "main"
    assert not (run / "debug.log").exists()


def test_a_base_behind_the_remote_tip_is_fetched_into_the_shallow_clone(tmp_path, origin_and_work):
    origin, work = origin_and_work
    make_work_in_progress(work)
    changes = capture(work, "main")
    other = tmp_path / "other"  # someone else pushes three commits after our last fetch
    subprocess.run(["git", "clone", "-q", str(origin), str(other)], check=True)
    for i in range(3):
        (other / f"theirs{i}.txt").write_text(f"{i}\n")
        git(other, "add", "-A")
        git(other, "commit", "-qm", f"theirs {i}")
    git(other, "push", "-q", "origin", "main")
    proc = run_in_clone(tmp_path, origin, changes.archive, SHELLS[0])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Fetching history back" in proc.stdout
    assert snapshot(tmp_path / "run") == snapshot(work)


def test_only_uncommitted_changes_need_no_bundle(tmp_path, origin_and_work):
    origin, work = origin_and_work
    (work / "app.py").write_text("print('just an edit')\n")
    changes = capture(work, "main")
    assert changes.commits == 0 and changes.files == 1
    names = tarfile.open(fileobj=io.BytesIO(changes.archive)).getnames()
    assert "bundle" not in names and "patch" in names
    proc = run_in_clone(tmp_path, origin, changes.archive, SHELLS[-1])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert snapshot(tmp_path / "run") == snapshot(work)


def test_a_base_force_pushed_away_fails_before_the_command_and_says_why(tmp_path, origin_and_work):
    origin, work = origin_and_work
    make_work_in_progress(work)
    changes = capture(work, "main")
    rewrite = tmp_path / "rewrite"
    subprocess.run(["git", "clone", "-q", str(origin), str(rewrite)], check=True)
    git(rewrite, "checkout", "-q", "--orphan", "fresh")
    git(rewrite, "commit", "-qm", "history rewritten")
    git(rewrite, "push", "-qf", "origin", "fresh:main")
    subprocess.run(["git", "-C", str(origin), "gc", "-q", "--prune=now"], check=True)
    proc = run_in_clone(tmp_path, origin, changes.archive, SHELLS[0])
    assert proc.returncode == FAIL
    assert "is not on origin/main any more" in proc.stderr


def test_no_archive_does_nothing_and_nothing_to_carry_is_none(tmp_path, origin_and_work):
    origin, work = origin_and_work
    assert capture(work, "main") is None
    proc = run_in_clone(tmp_path, origin, None, SHELLS[0])
    assert proc.returncode == 0 and proc.stdout == "" and proc.stderr == ""


def test_what_cannot_be_carried_is_a_clear_usage_error(tmp_path, origin_and_work):
    _, work = origin_and_work
    with pytest.raises(UsageError, match="push the branch once"):
        capture(work, "feature")
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "-q")
    with pytest.raises(UsageError, match="no commits yet"):
        capture(empty, "main")


def test_the_lines_are_shellcheck_clean():
    if not shutil.which("shellcheck"):
        pytest.skip("shellcheck is installed by .ci/run")
    script = "#!/bin/sh\nset -u\n" + "\n".join(apply_lines("main", FAIL)) + "\n"
    proc = subprocess.run(["shellcheck", "-s", "sh", "-"], input=script, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout
