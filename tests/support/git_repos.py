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
