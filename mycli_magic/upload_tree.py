"""What `--upload PATH` sends: the scan that decides, entry by entry, before anything is packed.

The rule for links, the same on every engine (the local engine's extraction refuses an archive
that breaks it, so the client never builds one):
- a PATH named on the command line that is a link sends what it points to (`cp`, `tar -h`);
- inside an uploaded directory, a link whose target stays inside that directory is kept as a
  link; one that points outside it (an absolute target, or `..` out of it) is replaced by what it
  points to (rsync's `--copy-unsafe-links`): the run gets the data the user sees. One that
  points nowhere is skipped, with a ⚠ line, as are sockets, FIFOs and devices (a run cannot use
  them), a link back to a directory above it (a loop), and a file that vanishes during the scan.
The size cap counts what is actually sent, so it is checked here, before any packing.
"""

from __future__ import annotations

import os
import posixpath
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from orchestrator.units import human_size

from .errors import UsageError

_KINDS = {stat.S_IFSOCK: "a socket", stat.S_IFIFO: "a FIFO", stat.S_IFCHR: "a device", stat.S_IFBLK: "a device"}


@dataclass(frozen=True)
class Entry:
    name: str  # in the archive, under the upload's basename
    kind: str  # "dir", "file" or "link"
    source: str = ""  # file: the path to read (it may be a link's target); link: the link's target text
    size: int = 0
    mode: int = 0o644
    mtime: int = 0


@dataclass
class Tree:
    entries: list[Entry] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "data/x: a socket", one ⚠ line each
    files: int = 0
    total: int = 0  # what the files add up to


def scan(roots: dict[str, Path], cap: int) -> Tree:
    """Every entry to send for `roots` ({basename: path}); UsageError as soon as the files add
    up to more than `cap` or a named path cannot be read."""
    tree = Tree()
    for name, path in roots.items():
        try:
            info = os.stat(path)  # a named link: what it points to
        except OSError as exc:
            raise UsageError(f"--upload {path}: {_why(exc, path)}") from None
        if stat.S_ISDIR(info.st_mode):
            _Walker(tree, cap, name, os.path.realpath(path)).directory(str(path), name, info, (), True)
        elif stat.S_ISREG(info.st_mode):
            _add_file(tree, cap, name, str(path), info)
        else:
            raise UsageError(f"--upload {path}: {_KINDS.get(stat.S_IFMT(info.st_mode), 'not a file')}, "
                             "not a file or directory; a run can only use files")
    return tree


class _Walker:
    def __init__(self, tree: Tree, cap: int, top_name: str, top_real: str):
        self.tree, self.cap, self.top_name, self.top_real = tree, cap, top_name, top_real

    def directory(self, path: str, name: str, info: os.stat_result, above: tuple, mirrored: bool) -> None:
        """`mirrored`: the archive's names lay out the files as they are here (not so under a
        link that was replaced by the directory it points to: a link there is replaced too)."""
        self.tree.entries.append(Entry(name, "dir", mode=stat.S_IMODE(info.st_mode), mtime=int(info.st_mtime)))
        above = (*above, (info.st_dev, info.st_ino))
        try:
            with os.scandir(path) as listing:
                children = sorted(listing, key=lambda e: e.name)
        except FileNotFoundError:
            self.tree.skipped.append(f"{name}: it vanished while being read")
            return
        except OSError as exc:
            raise UsageError(f"--upload: cannot read {path} ({exc.strerror}); nothing was sent") from None
        for child in children:
            self.child(child.path, f"{name}/{child.name}", above, mirrored)

    def child(self, path: str, name: str, above: tuple, mirrored: bool) -> None:
        try:
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                target = os.readlink(path)
                if mirrored and self._stays_inside(path, name, target):
                    self.tree.entries.append(Entry(name, "link", target))
                    return
                mirrored = False
                info = os.stat(path)  # outside the upload: what it points to
        except FileNotFoundError:
            gone = not os.path.lexists(path)
            self.tree.skipped.append(f"{name}: it vanished while being read" if gone else
                                     f"{name}: a link to {os.readlink(path)}, which does not exist")
            return
        except OSError as exc:
            self.tree.skipped.append(f"{name}: {exc.strerror or exc}")
            return
        if stat.S_ISDIR(info.st_mode):
            if (info.st_dev, info.st_ino) in above:
                self.tree.skipped.append(f"{name}: a link to a directory above it (a loop)")
            else:
                self.directory(path, name, info, above, mirrored)
        elif stat.S_ISREG(info.st_mode):
            _add_file(self.tree, self.cap, name, path, info)
        else:
            self.tree.skipped.append(f"{name}: {_KINDS.get(stat.S_IFMT(info.st_mode), 'not a regular file')}, not sent")

    def _stays_inside(self, path: str, name: str, target: str) -> bool:
        """Relative, and inside the uploaded directory both as the archive names it and as the
        file system resolves it here (so the engine's own check, which resolves, agrees)."""
        if not target or posixpath.isabs(target):
            return False
        named = posixpath.normpath(posixpath.join(posixpath.dirname(name), target))
        if named != self.top_name and not named.startswith(self.top_name + "/"):
            return False
        real = os.path.realpath(os.path.join(os.path.dirname(path), target))
        return real == self.top_real or real.startswith(self.top_real.rstrip("/") + "/")


def _add_file(tree: Tree, cap: int, name: str, path: str, info: os.stat_result) -> None:
    tree.files, tree.total = tree.files + 1, tree.total + info.st_size
    if tree.total > cap:
        raise UsageError(f"--upload: the files add up to more than the {human_size(cap)} cap "
                         f"(stopped counting at {path}); nothing was sent")
    tree.entries.append(Entry(name, "file", path, info.st_size, stat.S_IMODE(info.st_mode), int(info.st_mtime)))


def _why(exc: OSError, path: Path) -> str:
    if isinstance(exc, FileNotFoundError):
        if os.path.islink(path):
            return f"a link to {os.readlink(path)}, which does not exist"
        return "no such file or directory"
    return str(exc.strerror or exc)


def skipped_lines(skipped: Iterable[str], limit: int = 20) -> list[str]:
    """`⚠ Upload: skipped NAME: WHY`, the first `limit`, then how many more."""
    skipped = list(skipped)
    lines = [f"⚠ Upload: skipped {line}" for line in skipped[:limit]]
    if len(skipped) > limit:
        lines.append(f"⚠ Upload: … and {len(skipped) - limit} more skipped")
    return lines
