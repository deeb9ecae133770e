"""The local server's state dir belongs to the server's user alone.

It holds every command, log line and the API key's hash, so other users of the machine must not
read it, and must not be able to plant anything in it: a link planted there would make the
server write (or truncate) whatever it points at with the server's rights. So the dir must be
ours and writable by no one else — then nobody else can add or swap an entry — and at start:
- a missing dir is created 0700; an existing one readable by others is tightened to 0700;
- a dir we do not own, or that others can write, is refused (we cannot tell what was planted);
- every entry must be ours and no link; entries readable by others are tightened (0600 files,
  0700 directories), which covers SQLite's WAL and SHM and logs of earlier versions.
Files the engine creates are opened with O_NOFOLLOW and mode 0600 all the same, and the server
runs with umask 077 so whatever a later version adds is private from the start.
"""

from __future__ import annotations

import os
import pwd
import stat
from pathlib import Path

from .errors import ServerMisconfigured

PRIVATE_FILE = 0o600
_user_umask: int | None = None


class StateDirRefused(ServerMisconfigured):
    """The state dir cannot be made private; the message says what to do."""


def prepare_state_dir(path: Path) -> Path:
    """Create `path` or check it (and its entries) as described above; return it."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        info = path.stat()
    except OSError as exc:
        raise StateDirRefused(f"cannot use {path} as the state dir ({exc.strerror}); pass a --state-dir you can write") from None
    if not stat.S_ISDIR(info.st_mode):
        raise StateDirRefused(f"{path} is not a directory; pass a --state-dir that is one")
    me = os.geteuid()
    if info.st_uid != me:
        raise StateDirRefused(
            f"the state dir {path} belongs to {_user(info.st_uid)}, not to you ({_user(me)}): its owner could "
            "read or replace the engine's files; pass a --state-dir of your own")
    if info.st_mode & 0o022:
        raise StateDirRefused(
            f"the state dir {path} can be written by other users (mode {stat.S_IMODE(info.st_mode):o}), who could "
            f"plant files or links in it; check what it holds, then run: chmod 700 {path} (or pass another --state-dir)")
    _tighten(path, info, 0o700)
    with os.scandir(path) as entries:
        for entry in entries:
            entry_info = entry.stat(follow_symlinks=False)
            if stat.S_ISLNK(entry_info.st_mode):
                raise StateDirRefused(
                    f"{entry.path} is a symbolic link; the engine opens nothing through links in its state dir: "
                    "remove it (and check what it points at)")
            if entry_info.st_uid != me:
                raise StateDirRefused(
                    f"{entry.path} in the state dir belongs to {_user(entry_info.st_uid)}, not to you: "
                    "remove it (and check what else was put there)")
            _tighten(Path(entry.path), entry_info, 0o700 if stat.S_ISDIR(entry_info.st_mode) else 0o600)
    return path


def open_private(path: Path, flags: int) -> int:
    """os.open for a state file: never through a link, created 0600 (whatever the umask)."""
    try:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, PRIVATE_FILE)
    except OSError as exc:
        if exc.errno == 40:  # ELOOP: the last component is a link
            raise StateDirRefused(f"{path} is a symbolic link; remove it (and check what it points at)") from None
        raise


def write_private(path: Path, text: str) -> None:
    """Replace a small state file atomically, through a private temporary file."""
    tmp = Path(f"{path}.tmp")
    tmp.unlink(missing_ok=True)  # a leftover (or a planted link): O_EXCL below would refuse it
    fd = open_private(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def make_umask_private() -> None:
    """From here on this process creates files 0600 and dirs 0700 (the server calls it once);
    `user_umask()` keeps the original for the commands the engine runs."""
    global _user_umask
    previous = os.umask(0o077)
    if _user_umask is None:
        _user_umask = previous


def user_umask() -> int | None:
    """The umask to give users' commands, when the server changed its own; else None."""
    return _user_umask


def _tighten(path: Path, info: os.stat_result, allowed: int) -> None:
    mode = stat.S_IMODE(info.st_mode)
    if mode & ~allowed & 0o777:
        os.chmod(path, mode & allowed)


def _user(uid: int) -> str:
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"
