"""Files in and out of the embedded engine's runs: uploads (inputs, local changes) and artifacts.

Everything here lives under the private state dir (statedir.py's rules: 0700 directories, 0600
files, O_NOFOLLOW):
- `uploads/ID` — an upload's archive, written by `PUT /uploads/ID` through `ID.part` and kept
  only once its size and sha256 match what the `upload` action declared; an hour to be used.
- `staging/…` — an exec's uploads extracted (tarfile's `data` filter: no links out, no devices,
  no absolute or `..` names; modes kept) before the execution exists, so a bad archive is a 400
  and no run; then moved to `work/ID.files/` {inputs, outputs, local_changes}.
- `artifacts/ID/` — what `orchestrator.artifacts.collect` kept of the run's outputs.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import shutil
import stat
import tarfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping
from urllib.parse import quote

from .. import artifacts as collector
from ..errors import BadRequest, NotFound, PayloadTooLarge
from ..ids import is_execution_id, is_upload_id, new_upload_id
from ..statedir import open_private
from ..validation import ExecRequest, UploadRequest, check_upload_size
from .local_file_records import Collection, FileRecords, Upload
from .local_retention import _number

log = logging.getLogger("mycli.local")

MIB = 1 << 20
UPLOAD_SECONDS = 3600  # an upload must be PUT, and named by an exec, within an hour
MAX_ARCHIVE_MEMBERS = 100_000
MAX_SKIPPED_LOG_LINES = 100
_CHUNK = 1 << 20
_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True)
class FileCaps:
    max_upload: int  # one upload's archive, and what it extracts to
    max_file: int  # one artifact
    max_run: int  # a run's artifacts together

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> "FileCaps":
        """MYCLI_MAX_UPLOAD_MB (100), MYCLI_MAX_ARTIFACT_MB (100), MYCLI_MAX_ARTIFACTS_MB (1024);
        0 turns a cap off."""
        def cap(name: str, default: float) -> int:
            value = _number(environ, name, default, 1 << 20)
            return int(value * MIB) or 1 << 62
        return cls(cap("MYCLI_MAX_UPLOAD_MB", 100), cap("MYCLI_MAX_ARTIFACT_MB", 100),
                   cap("MYCLI_MAX_ARTIFACTS_MB", 1024))


def human_size(size: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:,} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return ""


class LocalFiles:
    def __init__(self, state_dir: Path, store, caps: FileCaps):
        self.caps = caps
        self.records = FileRecords(store)
        self.uploads_dir, self.artifacts_dir, self.staging_dir = (
            state_dir / "uploads", state_dir / "artifacts", state_dir / "staging")
        for directory in (self.uploads_dir, self.artifacts_dir, self.staging_dir):
            directory.mkdir(mode=0o700, exist_ok=True)
        for leftover in self.staging_dir.iterdir():  # an exec the engine died in the middle of
            _remove(leftover)
        for part in self.uploads_dir.glob("*.part"):  # a PUT the engine died in the middle of
            part.unlink(missing_ok=True)

    # uploads ------------------------------------------------------------------------------------

    def create_upload(self, request: UploadRequest) -> dict:
        check_upload_size(request.size, self.caps.max_upload)
        now = time.time()
        upload = Upload(new_upload_id(), request.purpose, request.size, request.sha256, now, now + UPLOAD_SECONDS, False)
        self.records.add_upload(upload)
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
        if length > self.caps.max_upload:
            raise PayloadTooLarge(f"the body is larger than this engine's upload cap of {self.caps.max_upload // MIB} MiB")
        if length != upload.size:
            raise BadRequest(f"Content-Length {length} is not the size the upload declared ({upload.size})")
        return upload

    def receive(self, upload: Upload, read: Callable[[int], bytes]) -> dict:
        """Stream the PUT's body to uploads/ID.part (0600, O_EXCL, O_NOFOLLOW), hashing it; keep
        it as uploads/ID only when every byte arrived and the sha256 is the declared one."""
        final = self.uploads_dir / upload.upload_id
        part = final.with_name(final.name + ".part")
        try:
            fd = open_private(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        except FileExistsError:
            raise BadRequest(f"upload {upload.upload_id} is being received by another request") from None
        digest, size, kept = hashlib.sha256(), 0, False
        try:
            with os.fdopen(fd, "wb") as out:
                while size < upload.size:
                    chunk = read(min(_CHUNK, upload.size - size))
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
            kept = True
            self.records.upload_received(upload.upload_id)
        finally:
            if not kept:
                part.unlink(missing_ok=True)
        return {"upload_id": upload.upload_id, "size": size, "sha256": upload.sha256}

    def _claim(self, upload_id: str, purpose: str) -> Path:
        upload = self.records.upload(upload_id)
        if upload is None or upload.purpose != purpose:
            raise BadRequest(f"{purpose} names upload {upload_id}, which this engine does not have "
                             f"(for {purpose}); upload the files again")
        if not upload.complete:
            raise BadRequest(f"upload {upload_id} has not been received yet; PUT the archive to its url first")
        if upload.expires_at < time.time():
            raise BadRequest(f"upload {upload_id} expired; upload the files again")
        return self.uploads_dir / upload_id

    # a run's files --------------------------------------------------------------------------------

    def stage(self, request: ExecRequest) -> Path:
        """A private dir with inputs/ (the upload extracted), outputs/ (empty) and, for local
        changes, local_changes/; BadRequest (and nothing left) when an upload is not usable."""
        archives = {name: self._claim(upload_id, purpose) for name, upload_id, purpose in (
            ("inputs", request.inputs, "inputs"), ("local_changes", request.local_changes, "local_changes")) if upload_id}
        staged = self.staging_dir / secrets.token_hex(8)
        staged.mkdir(mode=0o700)
        try:
            for name in ("inputs", "outputs"):
                (staged / name).mkdir(mode=0o700)
            for name, archive in archives.items():
                _extract(archive, staged / name, self.caps.max_upload, name)
        except BaseException:
            _remove(staged)
            raise
        return staged

    def discard(self, staged: Path) -> None:
        _remove(staged)

    def collect(self, execution_id: str, files_dir: Path | None, say: Callable[[list[str]], None]) -> None:
        """Collect the run's outputs into artifacts/ID, `say` the lines for the run's log, then
        record them and mark the collection complete (a follower that stops at `complete` has
        read the lines). `files_dir` None: the outputs are gone."""
        dest = self.artifacts_dir / execution_id
        _remove(dest)  # a collection an engine crash interrupted starts over
        self.records.restart_collection(execution_id)
        if files_dir is None or not (files_dir / "outputs").is_dir():
            reason = "the local engine stopped before this run's outputs were collected, and they are gone"
            say([f"✗ Artifacts: none collected ({reason})"])
            self.records.finish_collection(execution_id, [], [], reason)
            return
        got = collector.collect(files_dir / "outputs", dest, max_file_bytes=self.caps.max_file,
                                max_run_bytes=self.caps.max_run)
        say(_log_lines(got))
        self.records.finish_collection(execution_id, got.artifacts, got.skipped, None)



    def end_run(self, execution_id: str, files_dir: Path, say: Callable[[list[str]], None],
                empty: Callable[[Path], None] | None) -> None:
        """After a run is STOPPED: collect (a failure still completes the collection, with its
        reason), then remove the run's files dir — `empty` when plain removal left some."""
        def say_some(lines: list[str]) -> None:
            if lines:
                say(lines)

        try:
            self.collect(execution_id, files_dir if files_dir.is_dir() else None, say_some)
        except Exception as exc:  # a full disk, an I/O error: the run's end still completes
            log.exception("collecting the outputs of %s failed", execution_id)
            say([f"✗ Artifacts: collection failed ({exc})"])
            try:
                self.records.finish_collection(execution_id, [], [], f"collection failed ({exc})")
            except Exception:
                log.exception("could not record the failed collection of %s", execution_id)
        shutil.rmtree(files_dir, ignore_errors=True)
        if files_dir.exists() and empty is not None:
            empty(files_dir)

    def collection(self, execution_id: str) -> Collection | None:
        return self.records.collection(execution_id)

    def listing(self, execution_id: str) -> dict:
        collection = self.records.collection(execution_id)
        complete = bool(collection and collection.complete)
        items = self.records.artifacts(execution_id) if complete else []
        return {
            "execution_id": execution_id,
            "artifacts": [{**a.to_json(), "url": f"/artifacts/{execution_id}/{quote(a.name, safe='/')}"} for a in items],
            "complete": complete,
            "skipped": collection.skipped if complete else [],
            "reason": collection.reason if complete else None,
        }

    def open_artifact(self, execution_id: str, name: str) -> tuple[int, int]:
        """(descriptor, size) of a listed artifact, opened without following any link."""
        if not is_execution_id(execution_id) or not collector.valid_name(name):
            raise NotFound("no such artifact")
        if self.records.artifact(execution_id, name) is None:
            raise NotFound(f"execution {execution_id} has no artifact {name[:200]!r}")
        fd = os.open(self.artifacts_dir, _OPEN_DIR)
        try:
            for part in [execution_id, *name.split("/")[:-1]]:
                inner = os.open(part, _OPEN_DIR, dir_fd=fd)
                os.close(fd)
                fd = inner
            file_fd = os.open(name.rsplit("/", 1)[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
        except OSError:
            raise NotFound(f"artifact {name[:200]!r} is gone from the engine's store") from None
        finally:
            os.close(fd)
        info = os.fstat(file_fd)
        if not stat.S_ISREG(info.st_mode):
            os.close(file_fd)
            raise NotFound(f"artifact {name[:200]!r} is gone from the engine's store")
        return file_fd, info.st_size

    # pruning --------------------------------------------------------------------------------------

    def prune(self, created_before: float) -> None:
        """Expired uploads (or created before the cutoff), and artifacts of executions no
        longer recorded (pruned, or from a database that was replaced)."""
        for upload_id in self.records.expired_uploads(time.time(), created_before):
            (self.uploads_dir / upload_id).unlink(missing_ok=True)
            self.records.delete_upload(upload_id)
        known = self.records.known_executions()
        for entry in self.artifacts_dir.iterdir():
            if entry.name not in known:
                _remove(entry)


def _log_lines(got: collector.Collected) -> list[str]:
    """`→ Artifacts: N files, SIZE`, then a line per skipped file (the first hundred)."""
    if not (got.artifacts or got.skipped):
        return []
    count = len(got.artifacts)
    lines = [f"→ Artifacts: {count} file{'s' if count != 1 else ''}, {human_size(got.total_bytes)}"]
    lines += [f"→ Skipped {line}" for line in got.skipped[:MAX_SKIPPED_LOG_LINES]]
    if len(got.skipped) > MAX_SKIPPED_LOG_LINES:
        lines.append(f"→ … and {len(got.skipped) - MAX_SKIPPED_LOG_LINES} more skipped (the artifacts action lists them)")
    return lines


def _extract(archive: Path, dest: Path, cap: int, what: str) -> None:
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
            tar.extractall(dest, members=members(tar), filter="data")
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise BadRequest(f"the {what} archive cannot be extracted ({exc}); upload it again "
                         "(a .tar.gz of regular files and directories)") from None
    for root, dirs, _ in os.walk(dest):  # the data filter gives directories the umask's mode (0700 here)
        for name in dirs:
            path = os.path.join(root, name)
            if not os.path.islink(path):
                os.chmod(path, 0o755)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
