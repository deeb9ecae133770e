"""Git auto-detection: the repository a directory belongs to, its `origin` URL and current branch.

This is the lowest level of the exec configuration (flags > .mycli.yaml > git): run from inside a
clone, `mycli exec "make test"` runs against the same remote and branch you have checked out.
It asks the real `git` (so includeIf, insteadOf and worktrees behave as git says) and treats
"no git installed", "not a repository" and "no origin" all as "nothing detected".
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from orchestrator.exec_fields import split_userinfo, url_user_is_secret

GIT_TIMEOUT_SECONDS = 10.0



@dataclass(frozen=True)
class GitInfo:
    """What git says about a working directory. `origin_url` / `branch` may be None."""

    root: Path
    origin_url: str | None
    branch: str | None  # None when HEAD is detached
    credentials_stripped: bool = False


def find_git_root(start: Path) -> Path | None:
    """The nearest directory at or above `start` holding `.git` (a dir, or a file for worktrees).

    Pure filesystem walk, no subprocess: used to bound the `.mycli.yaml` search cheaply.
    """
    start = Path(start).resolve()
    for directory in (start, *start.parents):
        if (directory / ".git").exists():
            return directory
    return None


def detect(cwd: Path) -> GitInfo | None:
    """Ask git about `cwd`; None when git is missing or `cwd` is not inside a work tree."""
    out = _git(cwd, "rev-parse", "--show-toplevel", "--abbrev-ref", "HEAD")
    if out is None:
        # An unborn HEAD (no commit yet) makes `--abbrev-ref HEAD` fail: it is not detached, it
        # names a branch with no commit yet, which `symbolic-ref` gives.
        out = _git(cwd, "rev-parse", "--show-toplevel")
        if out is None:
            return None
        lines = out.splitlines() + [(_git(cwd, "symbolic-ref", "--quiet", "--short", "HEAD") or "HEAD").strip()]
    else:
        lines = out.splitlines()
    if not lines:
        return None
    root = Path(lines[0])
    branch = lines[1].strip() if len(lines) > 1 else "HEAD"
    url = _git(cwd, "remote", "get-url", "origin")
    url = url.strip() if url else None
    stripped = False
    if url:
        url, stripped = strip_credentials(url)
        url = absolute_local_url(url, root)
    return GitInfo(root=root, origin_url=url or None, branch=None if branch in ("", "HEAD") else branch,
                   credentials_stripped=stripped)


def unshared_work(root: Path, branch: str) -> str | None:
    """Why the clone may differ from the working tree, in words, or None.

    The run clones what origin has: commits not pushed and uncommitted edits are not in it,
    which surprises people exactly when they matter most (right after an edit)."""
    notes = []
    if _git(root, "rev-parse", "--verify", "-q", "HEAD") is None:
        notes.append(f"branch {branch} has no commits yet (commit and push first)")
    elif _git(root, "rev-parse", "--verify", "-q", f"refs/remotes/origin/{branch}") is None:
        notes.append(f"branch {branch} is not on origin as far as this clone knows (git push first)")
    else:
        ahead = (_git(root, "rev-list", "--count", f"refs/remotes/origin/{branch}..HEAD") or "0").strip()
        if ahead not in ("", "0"):
            notes.append(f"{ahead} local commit{'s' if ahead != '1' else ''} on {branch} not pushed to origin")
    if (_git(root, "status", "--porcelain", "--untracked-files=no") or "").strip():
        notes.append("uncommitted changes")
    return None if not notes else "; ".join(notes) + " — the run clones what origin has (--local-changes runs your working tree)"


def strip_credentials(url: str) -> tuple[str, bool]:
    """Remove the secret from a URL's user part: the password of `user:password@` (the user
    stays: ssh://git@host needs it, and it is no secret), or a user part that is a token
    (https://ghp_xxx@github.com/...); returns (url, whether anything was removed).

    A token pasted into a remote URL is common; sending it would put it in the API request, the
    execution record and the log header. The orchestrator has its own git credentials.
    """
    scheme, user, password, rest = split_userinfo(url)
    if user is None or not (password or url_user_is_secret(url)):
        return url, False
    if not user or url_user_is_secret(url):
        return scheme + rest, True
    return f"{scheme}{user}@{rest}", True


def is_local_path(repo: str) -> bool:
    """True for a filesystem path (not a URL, not `user@host:path`)."""
    if "://" in repo:
        return False
    if re.match(r"^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:", repo):
        return False
    return True


def absolute_local_url(repo: str, base: Path) -> str:
    """A local repository path made absolute against `base` (URLs are returned unchanged).

    The engine clones from its own working directory, so a relative path would point nowhere.
    """
    if not is_local_path(repo):
        return repo
    path = Path(os.path.expanduser(repo))
    if not path.is_absolute():
        path = Path(base) / path
    return os.path.normpath(path)


def _git(cwd: Path, *args: str) -> str | None:
    env = dict(os.environ, GIT_TERMINAL_PROMPT="0", LC_ALL="C")
    try:
        proc = subprocess.run(
            ["git", "-C", str(cwd), *args],
            capture_output=True, text=True, env=env, timeout=GIT_TIMEOUT_SECONDS, stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout if proc.returncode == 0 else None
