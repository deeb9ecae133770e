"""What goes into a run besides the command: `--upload PATH` files and `--local-changes`.

Both fronts (`mycli exec`, `%%mycli`) do it in two steps. `prepare` works locally only — it
checks the paths and the size cap, packs, and captures the git difference — so every mistake
is one line before anything is sent or started. `send` then hands each archive to the engine
(the `upload` action, then a PUT to the URL it gives) and returns the exec fields naming them.

Packing (tarfile, hashlib, orchestrator.artifacts) and git capture are imported only when a run
carries files, so a plain `mycli exec` or `%%mycli` cell pays nothing for them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from .errors import NothingStarted, UsageError

if TYPE_CHECKING:
    from .client import ApiClient
    from .local_changes import LocalChanges
    from .transfer import Packed


@dataclass
class Prepared:
    """Archives ready to send; `close()` removes the temporary directory holding them."""

    workdir: Path | None = None
    inputs: Packed | None = None
    changes: LocalChanges | None = None
    lines: list[str] = field(default_factory=list)  # "→ ..." lines for the user

    def close(self) -> None:
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def __enter__(self) -> "Prepared":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def prepare(uploads: Sequence[str], local_changes: bool, payload: dict, cwd: Path | str,
            cap: int | None = None, flag: str = "--local-changes") -> Prepared:
    """Pack `uploads` and, with `local_changes`, capture the working tree's difference from
    origin/<the payload's branch>. UsageError (nothing sent, nothing left behind) when a path is
    missing, the files are over `cap` (default transfer.DEFAULT_UPLOAD_CAP), or the changes cannot
    be expressed."""
    prepared = Prepared()
    try:
        _prepare(prepared, uploads, local_changes, payload, Path(cwd), cap, flag)
    except KeyboardInterrupt:
        prepared.close()
        raise NothingStarted("■ Interrupted while packing the files to send; nothing was sent or started") from None
    except BaseException:
        prepared.close()
        raise
    return prepared


def _prepare(prepared: Prepared, uploads: Sequence[str], local_changes: bool, payload: dict, cwd: Path,
             cap: int | None, flag: str) -> None:
    if not (uploads or local_changes):
        return
    from .transfer import DEFAULT_UPLOAD_CAP, human_size

    cap = DEFAULT_UPLOAD_CAP if cap is None else cap
    if local_changes:
        prepared.changes = _capture(payload, cwd, flag, cap)
        prepared.lines.append(f"→ Local changes: {prepared.changes.summary} ({human_size(prepared.changes.size)})"
                              if prepared.changes else
                              "→ Local changes: none (the working tree matches origin); the run clones it as is")
    if not uploads:
        return
    from .transfer import pack_uploads
    from .upload_tree import skipped_lines

    prepared.workdir = Path(tempfile.mkdtemp(prefix="mycli-upload-"))
    prepared.inputs = pack_uploads(uploads, prepared.workdir, cap)
    names = ", ".join(sorted({_basename(p) for p in uploads}))
    prepared.lines.append(f"→ Upload: {names} ({prepared.inputs.describe()}) → $MYCLI_INPUTS")
    prepared.lines += skipped_lines(prepared.inputs.skipped)


def send(client: "ApiClient", prepared: Prepared) -> dict:
    """Upload what `prepare` made; returns the exec request's `inputs` / `local_changes` fields.
    An interrupt here is one line: the exec request, which starts the run, is not sent yet."""
    try:
        return _send(client, prepared)
    except KeyboardInterrupt:
        raise NothingStarted("■ Interrupted while sending the files; nothing was started") from None


def _send(client: "ApiClient", prepared: Prepared) -> dict:
    fields: dict = {}
    if prepared.inputs is not None:
        packed = prepared.inputs
        fields["inputs"] = _put(client, packed.path, packed.size, packed.sha256, "inputs")
    if prepared.changes is not None:
        import hashlib

        archive = prepared.changes.archive
        fields["local_changes"] = _put(client, archive, len(archive), hashlib.sha256(archive).hexdigest(), "local_changes")
    return fields


def _put(client: "ApiClient", path: Path | bytes, size: int, sha256: str, purpose: str) -> str:
    ticket = client.upload(size, sha256, purpose)
    upload_id = ticket.get("upload_id")
    if not isinstance(upload_id, str) or not upload_id:
        from .errors import ApiRequestError

        raise ApiRequestError(f"{client.endpoint.url} answered the upload request without an upload_id; "
                              "is the engine up to date?", 502)
    client.put_file(ticket, path, size)
    return upload_id


def _capture(payload: dict, cwd: Path, flag: str, cap: int) -> LocalChanges | None:
    from .gitdetect import find_git_root
    from .local_changes import capture

    if payload.get("skip_git"):
        raise UsageError(f"{flag} carries your local git work into the run's clone; with no clone (skip-git) "
                         "there is nothing to apply it to: drop one of them")
    root = find_git_root(cwd)
    if root is None:
        raise UsageError(f"{flag}: {cwd} is not in a git repository; run it from your repository's working tree")
    return capture(root, str(payload.get("branch") or "main"), cap=cap)


def _basename(path: str) -> str:
    p = Path(os.path.expanduser(str(path)))
    return p.resolve().name if p.name in ("", ".", "..") else p.name
