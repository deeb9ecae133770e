"""Real git repositories for tests, made the same way everywhere."""

from __future__ import annotations

import subprocess
from pathlib import Path


def make_repo(path: Path, branch: str = "main", files: dict[str, str] | None = None) -> Path:
    """`git init` at `path` on `branch`, with `files` (name → text) in one commit."""
    subprocess.run(["git", "init", "-q", "-b", branch, str(path)], check=True)
    for name, text in (files or {"hello.txt": "hello from the repo\n"}).items():
        (path / name).write_text(text)
    subprocess.run(["git", "-C", str(path), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(path), "-c", "user.name=t", "-c", "user.email=t@t.invalid", "commit", "-qm", "init"],
                   check=True)
    return path


def bare_clone(src: Path, dest: Path) -> Path:
    """A bare clone of `src` at `dest`: what a git server serves."""
    subprocess.run(["git", "clone", "-q", "--bare", str(src), str(dest)], check=True)
    return dest


def two_commit_origin(root: Path) -> Path:
    """`root/origin.git`: a bare origin with two commits on main (app.py changed by the second),
    a file to delete, a script to make executable and a .gitignore — what local changes are
    captured against."""
    seed = make_repo(root / "seed", branch="main", files={"app.py": "print('v1')\n", "gone.txt": "to be deleted\n",
                                                          "run.sh": "#!/bin/sh\necho run\n", ".gitignore": "*.log\n"})
    (seed / "app.py").write_text("print('v2')\n")
    subprocess.run(["git", "-C", str(seed), "-c", "user.name=t", "-c", "user.email=t@t.invalid", "commit", "-qam", "two"],
                   check=True)
    return bare_clone(seed, root / "origin.git")
