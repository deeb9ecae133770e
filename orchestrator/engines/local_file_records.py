"""The local engine's SQLite rows for files: uploads (what a PUT may deliver, and whether it
did) and artifacts (what a run's collection kept), beside the executions' own collection state
(`artifacts_state`, `artifacts_skipped`, `artifacts_reason` in the executions table).

It writes through the Store's one write connection, so its writes are serialised with every
other and wake long-polling readers of the execution they touch.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass

from ..artifacts import Artifact
from .local_store import Store

PENDING, COMPLETE = "pending", "complete"


@dataclass(frozen=True)
class Upload:
    upload_id: str
    purpose: str
    size: int
    sha256: str
    created_at: float
    expires_at: float
    complete: bool


@dataclass(frozen=True)
class Collection:
    state: str  # PENDING | COMPLETE
    skipped: list[str]
    reason: str | None

    @property
    def complete(self) -> bool:
        return self.state == COMPLETE


class FileRecords:
    def __init__(self, store: Store):
        self.store = store

    # uploads -----------------------------------------------------------------------------------

    def add_upload(self, upload: Upload) -> None:
        self.store._write(
            "INSERT INTO uploads (upload_id, purpose, size, sha256, created_at, expires_at, complete) "
            "VALUES (?, ?, ?, ?, ?, ?, 0)",
            (upload.upload_id, upload.purpose, upload.size, upload.sha256, upload.created_at, upload.expires_at))

    def upload(self, upload_id: str) -> Upload | None:
        row = self.store._reader().execute(
            "SELECT upload_id, purpose, size, sha256, created_at, expires_at, complete FROM uploads WHERE upload_id = ?",
            (upload_id,)).fetchone()
        return None if row is None else Upload(*row[:6], bool(row[6]))

    def upload_received(self, upload_id: str) -> None:
        self.store._write("UPDATE uploads SET complete = 1 WHERE upload_id = ?", (upload_id,))

    def expired_uploads(self, now: float, created_before: float) -> list[str]:
        """Uploads past their expiry, or created before `created_before` (a prune's cutoff)."""
        return [uid for (uid,) in self.store._reader().execute(
            "SELECT upload_id FROM uploads WHERE expires_at < ? OR created_at < ?", (now, created_before))]

    def delete_upload(self, upload_id: str) -> None:
        self.store._write("DELETE FROM uploads WHERE upload_id = ?", (upload_id,))

    # artifacts ---------------------------------------------------------------------------------

    def collection(self, execution_id: str) -> Collection | None:
        row = self.store._reader().execute(
            "SELECT artifacts_state, artifacts_skipped, artifacts_reason FROM executions WHERE execution_id = ?",
            (execution_id,)).fetchone()
        if row is None:
            return None
        return Collection(row[0], json.loads(row[1]) if row[1] else [], row[2])

    def pending_collections(self) -> list[str]:
        """STOPPED executions whose collection did not finish (the engine stopped meanwhile)."""
        return [eid for (eid,) in self.store._reader().execute(
            "SELECT execution_id FROM executions WHERE status = 'STOPPED' AND artifacts_state = ?", (PENDING,))]

    def restart_collection(self, execution_id: str) -> None:
        self.store._write("DELETE FROM artifacts WHERE execution_id = ?", (execution_id,))

    def finish_collection(self, execution_id: str, artifacts: list[Artifact], skipped: list[str],
                          reason: str | None) -> None:
        """The artifact rows and the 'complete' state, in one transaction: a reader sees all or none."""
        def work(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM artifacts WHERE execution_id = ?", (execution_id,))
            conn.executemany("INSERT INTO artifacts (execution_id, name, size, sha256) VALUES (?, ?, ?, ?)",
                             [(execution_id, a.name, a.size, a.sha256) for a in artifacts])
            conn.execute("UPDATE executions SET artifacts_state = ?, artifacts_skipped = ?, artifacts_reason = ? "
                         "WHERE execution_id = ?", (COMPLETE, json.dumps(skipped), reason, execution_id))
        self.store._transaction(work)
        self.store._changed(execution_id)

    def artifacts(self, execution_id: str) -> list[Artifact]:
        return [Artifact(*row) for row in self.store._reader().execute(
            "SELECT name, size, sha256 FROM artifacts WHERE execution_id = ? ORDER BY name", (execution_id,))]

    def artifact(self, execution_id: str, name: str) -> Artifact | None:
        row = self.store._reader().execute(
            "SELECT name, size, sha256 FROM artifacts WHERE execution_id = ? AND name = ?", (execution_id, name)).fetchone()
        return None if row is None else Artifact(*row)

    def known_executions(self) -> set[str]:
        return {eid for (eid,) in self.store._reader().execute("SELECT execution_id FROM executions")}
