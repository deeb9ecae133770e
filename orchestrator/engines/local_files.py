"""Files in and out of the embedded engine's runs: their inputs and local changes (uploads, see
local_uploads.py), their outputs collected as artifacts.

Everything here lives under the private state dir (statedir.py's rules: 0700 directories, 0600
files, O_NOFOLLOW):
- `uploads/ID` — an upload's archive (local_uploads.py).
- `staging/…` — an exec's uploads extracted (tarfile's `data` filter: no links out, no devices,
  no absolute or `..` names; modes kept) before the execution exists, so a bad archive is a 400
  and no run; then moved to `work/ID.files/` {inputs, outputs, local_changes}.
- `artifacts/ID/` — what `orchestrator.artifacts.collect` kept of the run's outputs.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping
from urllib.parse import quote

from .. import artifacts as collector
from ..errors import NotFound
from ..ids import is_execution_id
from ..units import MIB, cap_bytes, files_and_size
from ..validation import DEFAULT_MAX_UPLOAD_BYTES, ExecRequest
from .local_file_records import Collection, FileRecords
from .local_retention import env_number
from .local_uploads import Uploads, extract

log = logging.getLogger("mycli.local")

MAX_SKIPPED_LOG_LINES = 100
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
            value = env_number(environ, name, default, MIB)
            return cap_bytes(value)
        return cls(cap("MYCLI_MAX_UPLOAD_MB", DEFAULT_MAX_UPLOAD_BYTES / MIB),
                   cap("MYCLI_MAX_ARTIFACT_MB", collector.DEFAULT_MAX_FILE_BYTES / MIB),
                   cap("MYCLI_MAX_ARTIFACTS_MB", collector.DEFAULT_MAX_RUN_BYTES / MIB))


class LocalFiles:
    def __init__(self, state_dir: Path, store, caps: FileCaps):
        self.caps = caps
        self.records = FileRecords(store)
        self.uploads = Uploads(state_dir / "uploads", self.records, caps.max_upload)
        self.artifacts_dir, self.staging_dir = state_dir / "artifacts", state_dir / "staging"
        for directory in (self.artifacts_dir, self.staging_dir):
            directory.mkdir(mode=0o700, exist_ok=True)
        for leftover in self.staging_dir.iterdir():  # an exec the engine died in the middle of
            _remove(leftover)

    # a run's files --------------------------------------------------------------------------------

    def stage(self, request: ExecRequest) -> Path:
        """A private dir with inputs/ (the upload extracted), outputs/ (empty) and, for local
        changes, local_changes/; BadRequest (and nothing left) when an upload is not usable."""
        archives = {name: self.uploads.claim(upload_id, purpose) for name, upload_id, purpose in (
            ("inputs", request.inputs, "inputs"), ("local_changes", request.local_changes, "local_changes")) if upload_id}
        staged = self.staging_dir / secrets.token_hex(8)
        staged.mkdir(mode=0o700)
        try:
            for name in ("inputs", "outputs"):
                (staged / name).mkdir(mode=0o700)
            for name, archive in archives.items():
                extract(archive, staged / name, self.caps.max_upload, name)
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
            if self.records.collection(execution_id) is None:  # the URL came from a listing: the run went since
                raise NotFound(f"execution {execution_id} is gone, and its artifacts with it (pruned: by mycli prune, "
                               "or finished longer ago than the engine's MYCLI_RETENTION_DAYS)")
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
        self.uploads.prune(time.time(), created_before)
        known = self.records.known_executions()
        for entry in self.artifacts_dir.iterdir():
            if entry.name not in known:
                _remove(entry)


def _log_lines(got: collector.Collected) -> list[str]:
    """`→ Artifacts: N files, SIZE`, then a line per skipped file (the first hundred)."""
    if not (got.artifacts or got.skipped):
        return []
    lines = [f"→ Artifacts: {files_and_size(len(got.artifacts), got.total_bytes)}"]
    lines += [f"→ Skipped {line}" for line in got.skipped[:MAX_SKIPPED_LOG_LINES]]
    if len(got.skipped) > MAX_SKIPPED_LOG_LINES:
        lines.append(f"→ … and {len(got.skipped) - MAX_SKIPPED_LOG_LINES} more skipped (the artifacts action lists them)")
    return lines


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
