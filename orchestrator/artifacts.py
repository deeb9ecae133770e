"""Collecting what a run left in its outputs directory, safely.

The directory is written by the user's command, so everything in it is hostile: a symlink to the
engine's database or /etc/shadow, a FIFO that would block a reader, a name with a newline, a
file swapped for a link between a check and an open. The walk therefore opens every entry
relative to its parent's descriptor with O_NOFOLLOW (a link is never followed, at any depth),
checks the opened descriptor is a regular file, and copies it while hashing — one read. Only
regular files are ever collected; their names are the relative path inside the outputs.

Caps bound what one run can make the engine store (per file and per run); what is skipped is
said, one line per file, so the run's log can tell the user.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from .units import MIB

DEFAULT_MAX_FILE_BYTES = 100 * MIB
DEFAULT_MAX_RUN_BYTES = 1024 * MIB
MAX_FILES = 10_000
MAX_NAME_CHARS = 1024
_CHUNK = MIB
_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# repr() shows a byte os.fsdecode could not decode as \udcNN (an even number of backslashes before it)
_UNDECODED = re.compile(r"(?<!\\)((?:\\\\)*)\\udc([89a-f][0-9a-f])")
_OPEN_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


@dataclass(frozen=True)
class Artifact:
    name: str  # relative path inside the outputs, '/'-separated
    size: int
    sha256: str

    def to_json(self) -> dict:
        return {"name": self.name, "size": self.size, "sha256": self.sha256}


@dataclass
class Collected:
    artifacts: list[Artifact] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # one line per file left out, for the log

    @property
    def total_bytes(self) -> int:
        return sum(a.size for a in self.artifacts)


def valid_name(name: str) -> bool:
    """A name an artifact may have: relative, no '.'/'..' parts, no control characters, no
    backslash, UTF-8. Used on the way in (collection) and on the way out (serving, downloading)."""
    return name_problem(name) is None


def name_problem(name: str) -> str | None:
    """Why `name` cannot be an artifact's name (None: it can), in words for the `Skipped` line.
    A name read from the disk that is not UTF-8 holds surrogates (os.fsdecode): it could be
    neither stored, sent as JSON nor saved under the same name on another machine."""
    if not name:
        return "an empty name"
    if any("\ud800" <= c <= "\udfff" for c in name):
        return "not UTF-8"
    if len(name) > MAX_NAME_CHARS:
        return f"longer than {MAX_NAME_CHARS:,} characters"
    if any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in name):
        return "control characters"
    if "\\" in name:
        return "a backslash (a path separator on Windows)"
    if name.startswith("/") or any(part in ("", ".", "..") for part in name.split("/")):
        return "not a plain relative path"
    return None


def shown_name(name: str) -> str:
    """`name` quoted for a line of text whatever it holds: a byte that is not UTF-8 as \\xNN,
    control characters escaped (`'caf\\xe9.csv'`, `'new\\nline'`), cut at 200 characters."""
    return _UNDECODED.sub(r"\1\\x\2", repr(name[:200]))


def collect(outputs: Path, dest: Path, *, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
            max_run_bytes: int = DEFAULT_MAX_RUN_BYTES) -> Collected:
    """Copy the regular files under `outputs` into `dest` (files 0600, directories 0700).

    `dest` must not exist yet or be empty. A missing `outputs` (the command removed it) collects
    nothing and says so.
    """
    result = Collected()
    try:
        root_fd = os.open(outputs, _OPEN_DIR)
    except FileNotFoundError:
        result.skipped.append("the outputs directory was removed by the command; nothing collected")
        return result
    except OSError as exc:
        result.skipped.append(f"the outputs directory cannot be read ({exc.strerror}); nothing collected")
        return result
    dest.mkdir(mode=0o700, parents=True, exist_ok=True)
    stack: list[tuple[int, str]] = [(root_fd, "")]
    try:
        while stack:
            dir_fd, prefix = stack.pop()
            try:
                entries = sorted(os.scandir(dir_fd), key=lambda e: e.name)
            except OSError as exc:
                result.skipped.append(f"{prefix or '.'}: directory cannot be read ({exc.strerror})")
                os.close(dir_fd)
                continue
            subdirs = []
            for entry in entries:
                name = f"{prefix}{entry.name}"
                problem = name_problem(name)
                if problem:
                    result.skipped.append(f"{shown_name(name)}: not a usable name ({problem})")
                    continue
                kind = _kind(entry)
                if kind == "dir":
                    try:
                        subdirs.append((os.open(entry.name, _OPEN_DIR, dir_fd=dir_fd), name + "/"))
                    except OSError as exc:
                        result.skipped.append(f"{name}/: directory cannot be read ({exc.strerror})")
                elif kind == "file":
                    _collect_file(dir_fd, entry.name, name, dest, result, max_file_bytes, max_run_bytes)
                else:
                    result.skipped.append(f"{name}: {kind}, not a regular file")
            os.close(dir_fd)
            stack.extend(reversed(subdirs))
    finally:
        for fd, _ in stack:
            os.close(fd)
    return result


def _kind(entry: os.DirEntry) -> str:
    try:
        mode = entry.stat(follow_symlinks=False).st_mode
    except OSError:
        return "gone"
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISREG(mode):
        return "file"
    return "a device, socket or pipe"


def _collect_file(dir_fd: int, entry_name: str, name: str, dest: Path, result: Collected,
                  max_file_bytes: int, max_run_bytes: int) -> None:
    if len(result.artifacts) >= MAX_FILES:
        result.skipped.append(f"{name}: over {MAX_FILES:,} files")
        return
    try:
        fd = os.open(entry_name, _OPEN_FILE, dir_fd=dir_fd)
    except OSError as exc:  # ELOOP: swapped for a link since it was listed
        result.skipped.append(f"{name}: cannot be opened ({exc.strerror})")
        return
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            result.skipped.append(f"{name}: not a regular file")
            return
        if info.st_size > max_file_bytes:
            result.skipped.append(f"{name}: {info.st_size:,} bytes, over the per-file cap of {max_file_bytes:,}")
            return
        if result.total_bytes + info.st_size > max_run_bytes:
            result.skipped.append(f"{name}: {info.st_size:,} bytes would exceed the per-run cap of {max_run_bytes:,}")
            return
        target = dest / name
        _make_dirs(dest, name.split("/")[:-1])
        digest, size = hashlib.sha256(), 0
        out = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            while size <= max_file_bytes:
                chunk = os.read(fd, _CHUNK)
                if not chunk:
                    break
                digest.update(chunk)
                _write_all(out, chunk)
                size += len(chunk)
        finally:
            os.close(out)
        if size > max_file_bytes:  # grew while being read
            target.unlink()
            result.skipped.append(f"{name}: grew over the per-file cap of {max_file_bytes:,} while being collected")
            return
        result.artifacts.append(Artifact(name, size, digest.hexdigest()))
    finally:
        os.close(fd)


def _make_dirs(dest: Path, parts: list[str]) -> None:
    """mkdir -p with 0700 at every level (Path.mkdir(parents=True) gives parents the umask's mode)."""
    path = dest
    for part in parts:
        path = path / part
        try:
            path.mkdir(mode=0o700)
        except FileExistsError:
            pass


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
