"""`--local-changes`: run what you see, not what you pushed.

A run clones the branch from origin, so commits not yet pushed, uncommitted edits and new files
are not in it. This packs exactly that difference — a git bundle of the commits between the
branch on origin and HEAD, and a binary patch from HEAD to the working tree (untracked files
that .gitignore does not exclude included) — into one small tar the run applies after its
clone (orchestrator/local_changes_script.py), so the run's tree equals the local working tree.

mycli's own downloads (`mycli-runs/` beside a notebook: earlier runs' artifacts) are never
carried, wherever they are in the tree. What would be carried is measured before git reads a
byte of it, so a tree over the upload cap is refused at once, naming its biggest untracked files.

Nothing here changes the user's repository: the patch is made with a throwaway index file.
"""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .errors import UsageError
from .transfer import DEFAULT_UPLOAD_CAP, RUNS_DIR, human_size

GIT_TIMEOUT_SECONDS = 120
_NOT_OURS = f":(exclude,glob)**/{RUNS_DIR}/**"  # a pathspec: mycli's downloads, at any depth


@dataclass(frozen=True)
class LocalChanges:
    base: str  # the commit on origin/<branch> the local work starts from
    head: str
    commits: int  # local commits on top of base (carried in the bundle)
    behind: int  # commits origin/<branch> has after base (as of the last fetch): how deep to fetch
    files: int  # files the patch changes
    untracked: int  # of which new, untracked files
    archive: bytes  # tar: base, behind, summary, and bundle and/or patch

    @property
    def summary(self) -> str:
        parts = []
        if self.commits:
            parts.append(f"{self.commits} local commit{'s' if self.commits != 1 else ''}")
        if self.files:
            new = f" ({self.untracked} untracked)" if self.untracked else ""
            parts.append(f"{self.files} changed file{'s' if self.files != 1 else ''}{new}")
        return f"{' and '.join(parts)} on top of {self.base[:12]}"

    @property
    def size(self) -> int:
        """What is sent: the archive's bytes."""
        return len(self.archive)


def capture(root: Path, branch: str, remote: str = "origin", cap: int = DEFAULT_UPLOAD_CAP) -> LocalChanges | None:
    """What the working tree at `root` has that `remote`/`branch` does not; None when nothing.

    Raises UsageError when the difference cannot be expressed against the remote branch (no
    commits yet, the branch was never pushed, no common history), or is more than `cap` bytes."""
    root = Path(_git(root, "rev-parse", "--show-toplevel", check=True))  # pathspecs are relative to the top
    head = _git(root, "rev-parse", "--verify", "-q", "HEAD^{commit}")
    if head is None:
        raise UsageError("--local-changes: this repository has no commits yet; commit and push once, then try again")
    tracking = f"refs/remotes/{remote}/{branch}"
    if _git(root, "rev-parse", "--verify", "-q", tracking) is None:
        raise UsageError(f"--local-changes: {remote}/{branch} is unknown here (the run clones it): "
                         f"push the branch once (git push -u {remote} {branch}) or pass --branch with a branch on {remote}")
    base = _git(root, "merge-base", "HEAD", tracking)
    if base is None:
        raise UsageError(f"--local-changes: HEAD shares no history with {remote}/{branch}; pass the --branch your work is based on")
    commits = int(_git(root, "rev-list", "--count", f"{base}..HEAD") or 0)
    behind = int(_git(root, "rev-list", "--count", f"{base}..{tracking}") or 0)
    _check_size(root, cap)
    patch, files, untracked = _working_tree_patch(root)
    if not commits and not patch:
        return None
    members: dict[str, bytes] = {"base": base.encode() + b"\n", "behind": f"{behind}\n".encode()}
    if commits:
        members["bundle"] = _bundle(root, base)
    if patch:
        members["patch"] = patch
    changes = LocalChanges(base, head, commits, behind, files, untracked, b"")
    members["summary"] = changes.summary.encode() + b"\n"
    archive = _tar(members)
    if len(archive) > cap:  # a binary patch can be larger than the files (base85 of what does not compress)
        raise UsageError(_over_cap(root, f"they pack to {human_size(len(archive))}", cap))
    return LocalChanges(base, head, commits, behind, files, untracked, archive)


def _check_size(root: Path, cap: int) -> None:
    """UsageError when the changed and untracked files alone add up to more than `cap`."""
    names = _names(root, "ls-files", "--others", "--exclude-standard") + _names(root, "diff", "--name-only", "HEAD")
    if sum(_size(root, name) for name in names) > cap:
        raise UsageError(_over_cap(root, "the changed and untracked files add up to more than that", cap))


def _over_cap(root: Path, what: str, cap: int) -> str:
    untracked = sorted(((_size(root, n), n) for n in _names(root, "ls-files", "--others", "--exclude-standard")), reverse=True)
    biggest = ", ".join(f"{name} ({human_size(size)})" for size, name in untracked[:3])
    hint = (f"the biggest untracked files: {biggest}; add what the run does not need to .gitignore "
            "(or commit and push it)") if biggest else "commit and push the big changes"
    return (f"--local-changes carries your uncommitted work within the {human_size(cap)} upload cap, and {what}: "
            f"{hint}, or drop --local-changes; nothing was sent")


def _names(root: Path, *args: str) -> list[str]:
    return [n for n in (_git(root, *args, "-z", "--", ".", _NOT_OURS) or "").split("\0") if n]


def _size(root: Path, name: str) -> int:
    try:
        return os.lstat(root / name).st_size
    except OSError:  # deleted: the patch says so in a line
        return 0


def _working_tree_patch(root: Path) -> tuple[bytes, int, int]:
    """(binary patch HEAD → working tree incl. untracked, not ignored files; files; untracked)."""
    with tempfile.TemporaryDirectory(prefix="mycli-index-") as tmp:
        env = {"GIT_INDEX_FILE": os.path.join(tmp, "index")}
        _git(root, "read-tree", "HEAD", env=env, check=True)
        _git(root, "add", "-A", "--", ".", _NOT_OURS, env=env, check=True)
        patch = _git_bytes(root, "diff", "--cached", "--binary", "--no-color", "--no-ext-diff", "HEAD", env=env)
        names = _git(root, "diff", "--cached", "--name-only", "-z", "HEAD", env=env) or ""
    files = len([n for n in names.split("\0") if n])
    return patch, files, len(_names(root, "ls-files", "--others", "--exclude-standard"))


def _bundle(root: Path, base: str) -> bytes:
    with tempfile.TemporaryDirectory(prefix="mycli-bundle-") as tmp:
        path = os.path.join(tmp, "changes.bundle")
        _git(root, "bundle", "create", "-q", path, "HEAD", f"^{base}", check=True)
        return Path(path).read_bytes()


def _tar(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=6) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o600
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _git_bytes(root: Path, *args: str, env: dict | None = None) -> bytes:
    proc = _run(root, args, env, text=False)
    if proc.returncode != 0:
        raise UsageError(f"--local-changes: git {args[0]} failed: {proc.stderr.decode(errors='replace').strip()[:200]}")
    return proc.stdout


def _git(root: Path, *args: str, env: dict | None = None, check: bool = False) -> str | None:
    """git's stdout (stripped, unless -z output), None on failure (UsageError with `check`)."""
    proc = _run(root, args, env, text=True)
    if proc.returncode != 0:
        if check:
            raise UsageError(f"--local-changes: git {args[0]} failed: {proc.stderr.strip()[:200]}")
        return None
    return proc.stdout if "-z" in args else proc.stdout.strip()


def _run(root: Path, args: tuple[str, ...], env: dict | None, text: bool) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=text, timeout=GIT_TIMEOUT_SECONDS,
                              env={**os.environ, "LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0", **(env or {})},
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UsageError(f"--local-changes: git {args[0]} did not finish ({exc})") from None
