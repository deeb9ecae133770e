"""Files between the user's machine and a run: packing `--upload` paths, and writing downloaded
artifacts where they belong.

Uploads travel as one gzip'd tar (each PATH under its basename; what goes in, links and all, is
upload_tree's rule), checked against the size cap before anything is packed or sent. The engine
makes what arrives readable by any user: modes say only who may execute. Downloads are written only inside the chosen
directory — an artifact's name comes from the run, so `../x` or `/etc/x` is refused, not
resolved — through a temporary file that becomes the final name only once its size and sha256
match what the engine listed.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterable

from orchestrator.artifacts import valid_name
from orchestrator.units import files_and_size, human_size
from orchestrator.validation import DEFAULT_MAX_UPLOAD_BYTES

from .errors import MycliError, UsageError

DEFAULT_UPLOAD_CAP = DEFAULT_MAX_UPLOAD_BYTES  # the engines' default: refused here before packing
RUNS_DIR = "mycli-runs"  # the notebook's downloads, beside it: never sent back with --local-changes
_CHUNK = 1 << 20
_BLOCK = 512  # tar's


@dataclass(frozen=True)
class Packed:
    path: Path  # the .tar.gz, in a temporary directory the caller removes
    size: int  # of the archive
    sha256: str  # of the archive
    files: int
    content_bytes: int  # what the files add up to
    skipped: tuple[str, ...] = ()  # "NAME: why", one ⚠ line each (upload_tree's rule)

    def describe(self) -> str:
        return files_and_size(self.files, self.content_bytes)


def pack_uploads(paths: Iterable[str | Path], workdir: Path, cap: int = DEFAULT_UPLOAD_CAP) -> Packed:
    """A .tar.gz in `workdir` holding each path under its basename; UsageError, before any
    packing, when a path is missing, two different paths share a basename, or the total is over
    `cap` (the same path named twice goes once). What links become, and what is skipped
    (`Packed.skipped`), is upload_tree's rule."""
    from .upload_tree import scan

    roots: dict[str, Path] = {}
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists() and not path.is_symlink():
            raise UsageError(f"--upload {raw}: no such file or directory")
        name = path.resolve().name if path.name in ("", ".", "..") else path.name
        if name in roots and roots[name].resolve() == path.resolve():
            continue  # the same path named twice (`{d}` and `$d`): it goes once
        if name in roots:
            raise UsageError(f"--upload: two paths are named {name!r} ({roots[name]} and {path}); "
                             "each lands in $MYCLI_INPUTS under its own name")
        roots[name] = path
    tree = scan(roots, cap)
    archive = workdir / "inputs.tar.gz"
    with open(archive, "wb") as raw_out:
        # speed over size (often already compressed data); mtime 0: the same files, the same archive
        with gzip.GzipFile(fileobj=raw_out, mode="wb", compresslevel=1, mtime=0) as gz:
            sent = [entry for entry in tree.entries if _add(gz, entry, tree.skipped) and entry.kind == "file"]
            gz.write(b"\0" * (2 * _BLOCK))  # the end of the archive
    files, total = len(sent), sum(entry.size for entry in sent)
    return Packed(archive, archive.stat().st_size, file_sha256(archive), files, total, tuple(tree.skipped))


def _add(out: BinaryIO, entry, skipped: list[str]) -> bool:
    """One entry; a file is read once, and must still hold the bytes the scan counted. False when
    it vanished since (skipped, saying so)."""
    if entry.kind != "file":
        out.write(_header(entry.name, entry.kind, 0, entry.mode, entry.mtime, entry.source if entry.kind == "link" else ""))
        return True
    try:
        fh = open(entry.source, "rb")
    except FileNotFoundError:
        skipped.append(f"{entry.name}: it vanished while being read")
        return False
    except OSError as exc:
        raise UsageError(f"--upload: cannot read {entry.source} ({exc.strerror}); nothing was sent") from None
    with fh:
        out.write(_header(entry.name, "file", entry.size, entry.mode, entry.mtime))
        left = entry.size  # the first `size` bytes: a file that grew since is sent as scanned
        while left:
            chunk = fh.read(min(left, _CHUNK))
            if not chunk:
                raise UsageError(f"--upload: {entry.source} shrank while it was being packed; "
                                 "upload it again once nothing writes to it")
            out.write(chunk)
            left -= len(chunk)
    out.write(b"\0" * (-entry.size % _BLOCK))
    return True


def _header(name: str, kind: str, size: int, mode: int, mtime: int, linkname: str = "") -> bytes:
    """A ustar header as tarfile writes it — owner root, no user or group names, no pax record —
    built directly: tarfile's per-member cost was most of the time for many small files. A name
    or link over 100 bytes (or a size ustar cannot hold) gets tarfile's GNU header instead."""
    if kind == "dir" and not name.endswith("/"):
        name += "/"
    raw, link = name.encode("utf-8", "surrogateescape"), linkname.encode("utf-8", "surrogateescape")
    typeflag = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "link": tarfile.SYMTYPE}[kind]
    if len(raw) > 100 or len(link) > 100 or not 0 <= size < 8 ** 11 or not 0 <= mtime < 8 ** 11:
        info = tarfile.TarInfo(name)
        info.type, info.size, info.mode, info.mtime, info.linkname = typeflag, size, mode, max(mtime, 0), linkname
        return info.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape")
    head = b"".join((raw.ljust(100, b"\0"), b"%07o\0" % (mode & 0o7777), b"0000000\0", b"0000000\0",
                     b"%011o\0" % size, b"%011o\0" % mtime, b" " * 8, typeflag, link.ljust(100, b"\0"),
                     tarfile.POSIX_MAGIC, b"\0" * 80)).ljust(_BLOCK, b"\0")  # names, device numbers: none
    return head[:148] + b"%06o\0 " % sum(head) + head[156:]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def target_path(directory: Path, name: str) -> Path:
    """Where artifact `name` goes under `directory`; MycliError for a name that would land
    anywhere else (absolute, `..`, control characters): the name comes from the run."""
    if not valid_name(name):
        raise MycliError(f"refusing artifact name {name!r}: it would not stay inside {directory}")
    return directory.joinpath(*name.split("/"))


def save_stream(stream: BinaryIO, directory: Path, name: str, size: int, sha256: str,
                before_replace: Callable[[Path], None] | None = None) -> Path:
    """Write `stream` to `directory/name` only if it has `size` bytes with `sha256`; the final
    name never holds a partial or wrong file. `before_replace(target)` runs once the file is
    verified, just before it takes its name (to set aside what is there)."""
    target = target_path(directory, name)
    target.parent.mkdir(parents=True, exist_ok=True)
    digest, written = hashlib.sha256(), 0
    fd, tmp = tempfile.mkstemp(prefix=".mycli-", suffix=".part", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := stream.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
                written += len(chunk)
                if written > size:
                    break
        if written != size or digest.hexdigest() != sha256:
            raise MycliError(f"download of {name} did not match what the engine listed "
                             f"({written:,} of {size:,} bytes, sha256 {'ok' if digest.hexdigest() == sha256 else 'differs'}); "
                             "nothing was saved under that name — try again")
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp made it 0600; a result is a file like any the user makes
        if before_replace is not None:
            before_replace(target)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return target


def _umask() -> int:
    """The process's umask, read without changing it (os.umask would, for a moment, for every thread)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    return 0o022
