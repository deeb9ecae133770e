"""Uploads to the embedded engine: what the `upload` action allows, what `PUT /uploads/ID`
delivers, and extracting an upload for a run.

An upload's archive lives at `uploads/ID` under the private state dir, written through
`ID.part` (0600, O_EXCL, O_NOFOLLOW) and kept only once its size and sha256 match what the
`upload` action declared; it may be PUT and named by an exec for an hour. Extraction goes
through tarfile's `data` filter (no links out, no devices, no absolute or `..` names, no setuid),
bounded by the same cap; what arrives is readable by any user (files 0644, or 0755 when their
owner could execute them, directories 0755).
"""

from __future__ import annotations

import errno
import hashlib
import os
import sqlite3
import tarfile
import time
import zlib
from pathlib import Path
from typing import Callable

from ..errors import BadRequest, EngineUnavailable, NotFound, PayloadTooLarge
from ..ids import is_upload_id, new_upload_id
from ..statedir import open_private
from ..units import MIB
from ..validation import UploadRequest, check_upload_size
from .local_file_records import FileRecords, Upload

UPLOAD_SECONDS = 3600  # an upload must be PUT, and named by an exec, within an hour
MAX_ARCHIVE_MEMBERS = 100_000
_CHUNK = MIB


class Uploads:
    def __init__(self, directory: Path, records: FileRecords, cap: int):
        self.dir, self.records, self.cap = directory, records, cap
        directory.mkdir(mode=0o700, exist_ok=True)
        for part in directory.glob("*.part"):  # a PUT the engine died in the middle of
            part.unlink(missing_ok=True)

    def create_upload(self, request: UploadRequest) -> dict:
        check_upload_size(request.size, self.cap)
        now = time.time()
        upload = Upload(new_upload_id(), request.purpose, request.size, request.sha256, now, now + UPLOAD_SECONDS, False)
        try:
            self.records.add_upload(upload)
        except sqlite3.OperationalError as exc:
            raise EngineUnavailable(f"the local engine cannot record an upload ({exc}); free disk space in its state dir") from None
        return {"upload_id": upload.upload_id, "url": f"/uploads/{upload.upload_id}", "method": "PUT",
                "headers": {"Content-Type": "application/octet-stream"}, "expires_at": upload.expires_at}

    def check_put(self, upload_id: str, length: int | None) -> Upload:
        """What a PUT's headers must agree with, before its body is read."""
        upload = self.records.upload(upload_id) if is_upload_id(upload_id) else None
        if upload is None:
            raise NotFound(f"upload {upload_id[:40]!r} not found; ask for one with the upload action")
        if upload.complete:
            raise BadRequest(f"upload {upload_id} was already received; ask for a new one to send other files")
        if upload.expires_at < time.time():
            raise BadRequest(f"upload {upload_id} expired; ask for a new one with the upload action")
        if length is None:
            raise BadRequest("Content-Length is required (the archive's size in bytes)")
        if length > self.cap:
            raise PayloadTooLarge(f"the body is larger than this engine's upload cap of {self.cap // MIB} MiB")
        if length != upload.size:
            raise BadRequest(f"Content-Length {length} is not the size the upload declared ({upload.size})")
        return upload

    def receive(self, upload: Upload, read: Callable[[int], bytes]) -> dict:
        """Stream the PUT's body to uploads/ID.part (0600, O_EXCL, O_NOFOLLOW), hashing it; keep
        it as uploads/ID only when every byte arrived and the sha256 is the declared one."""
        final = self.dir / upload.upload_id
        part = final.with_name(final.name + ".part")
        try:
            fd = open_private(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        except FileExistsError:
            raise BadRequest(f"upload {upload.upload_id} is being received by another request") from None
        digest, size, kept = hashlib.sha256(), 0, False
        try:
            with os.fdopen(fd, "wb") as out:
                while size < upload.size:
                    try:
                        chunk = read(min(_CHUNK, upload.size - size))
                    except OSError:  # the client went away (or stalled past the server's timeout)
                        chunk = b""
                    if not chunk:
                        break
                    digest.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
            if size != upload.size:
                raise BadRequest(f"the body ended after {size} of {upload.size} bytes; send the upload again")
            if digest.hexdigest() != upload.sha256:
                raise BadRequest("the body's sha256 is not the one the upload declared; nothing was kept")
            os.replace(part, final)
            self.records.upload_received(upload.upload_id)
            kept = True
        except (OSError, sqlite3.OperationalError) as exc:  # a full disk: the client can try again later
            raise EngineUnavailable(f"the local engine could not store the upload ({getattr(exc, 'strerror', None) or exc}); "
                                    "free disk space in its state dir and send it again") from None
        finally:
            if not kept:
                part.unlink(missing_ok=True)
        return {"upload_id": upload.upload_id, "size": size, "sha256": upload.sha256}

    def claim(self, upload_id: str, purpose: str) -> Path:
        upload = self.records.upload(upload_id)
        if upload is None or upload.purpose != purpose:
            raise BadRequest(f"{purpose} names upload {upload_id}, which this engine does not have "
                             f"(for {purpose}); upload the files again")
        if not upload.complete:
            raise BadRequest(f"upload {upload_id} has not been received yet; PUT the archive to its url first")
        if upload.expires_at < time.time():
            raise BadRequest(f"upload {upload_id} expired; upload the files again")
        return self.dir / upload_id

    def prune(self, now: float, created_before: float) -> None:
        """Uploads past their expiry, or created before `created_before` (a prune's cutoff)."""
        for upload_id in self.records.expired_uploads(now, created_before):
            (self.dir / upload_id).unlink(missing_ok=True)
            self.records.delete_upload(upload_id)


def extract(archive: Path, dest: Path, cap: int, what: str) -> None:
    """The archive's files into `dest`, through tarfile's `data` filter, at most `cap` bytes."""
    total, count = 0, 0

    def members(tar: tarfile.TarFile):
        nonlocal total, count
        for member in tar:
            total += member.size if member.isfile() else 0
            count += 1
            if total > cap or count > MAX_ARCHIVE_MEMBERS:
                raise BadRequest(f"the {what} archive holds more than {cap // MIB} MiB or {MAX_ARCHIVE_MEMBERS:,} "
                                 "files; upload less")
            yield member

    try:
        with os.fdopen(open_private(archive, os.O_RDONLY), "rb") as raw, tarfile.open(fileobj=raw, mode="r|gz") as tar:
            tar.extractall(dest, members=members(tar), filter=_readable)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise EngineUnavailable("the local engine's disk is full; free space in its state dir and try again") from None
        raise BadRequest(f"the {what} archive cannot be extracted ({exc}); upload it again "
                         "(a .tar.gz of regular files and directories)") from None
    except (tarfile.TarError, EOFError, zlib.error) as exc:
        raise BadRequest(f"the {what} archive cannot be extracted ({exc}); upload it again "
                         "(a .tar.gz of regular files and directories)") from None


def _readable(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo:
    """tarfile's `data` filter (no links out, no devices, no absolute or `..` names, no setuid),
    then modes any user can read: the image may run as any user (USER 1000), and the data is the
    user's own, in a run of its own. Files 0644, or 0755 when their owner could execute them;
    directories 0755 (the filter would leave them to the umask, 0700 here)."""
    member = tarfile.data_filter(member, dest)
    if member.isdir():
        return member.replace(mode=0o755, deep=False)
    if member.isreg():
        return member.replace(mode=0o755 if member.mode & 0o100 else 0o644, deep=False)
    return member
