"""SQLite (WAL) storage of the local engine's executions and log lines.

One write connection behind a lock serialises writers (no SQLITE_BUSY under 500 concurrent
executions); readers get a connection per thread and never block writers. A Condition is
notified after every commit so long-polling readers wake as soon as lines or states change.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from operator import itemgetter
from pathlib import Path
from typing import Callable, TypeVar

from ..engine import Execution
from ..statedir import StateDirRefused, open_private
from .local_schema import FIELDS, SCHEMA, add_missing_columns, create_incremental, from_row, to_row

log = logging.getLogger("mycli.local")
T = TypeVar("T")

RESERVE_BYTES = 1 << 20
READ_BATCH = 8  # rows fetched at a time while filling a page
ROW_BYTES = 40  # what a row costs a page beyond its message (timestamp, JSON keys)
CRITICAL_ATTEMPTS = 120
PRUNE_BATCH = 20_000  # log lines deleted per transaction

class Store:
    def __init__(self, path: Path):
        self.path = path
        self.reserve_path = path.with_name("disk-reserve")
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._versions: dict[str, list] = {}  # execution_id → [change count, Condition]
        self._versions_lock = threading.Lock()
        os.close(open_private(path, os.O_RDWR | os.O_CREAT))  # 0600: SQLite gives the WAL and SHM its mode
        create_incremental(path)
        self._writer = self._connect()
        self._writer.executescript(SCHEMA)
        add_missing_columns(self._writer)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    def _reader(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    # a full disk -------------------------------------------------------------------------------

    def ensure_reserve(self) -> bool:
        """Keep RESERVE_BYTES of ballast next to the database; False when the disk has no room.

        When the disk fills, `critical` deletes the ballast so the writes that give running
        executions their final state still succeed; new executions are refused until the
        ballast can be laid down again.
        """
        try:
            if self.reserve_path.exists() and self.reserve_path.stat().st_size >= RESERVE_BYTES:
                return True
            with os.fdopen(open_private(self.reserve_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), "wb") as fh:
                fh.write(b"\0" * RESERVE_BYTES)
                fh.flush()
                os.fsync(fh.fileno())
            return True
        except (OSError, StateDirRefused):
            self.reserve_path.unlink(missing_ok=True)
            return False

    def critical(self, write: Callable[[], None], attempts: int = CRITICAL_ATTEMPTS) -> bool:
        """Run a write that must not be lost: on a full disk, free the ballast and retry.
        Returns whether it succeeded."""
        for attempt in range(attempts):
            try:
                write()
                return True
            except sqlite3.OperationalError as exc:
                if attempt == 0:
                    log.error("state write failed (%s); releasing the disk reserve and retrying", exc)
                self.reserve_path.unlink(missing_ok=True)
                time.sleep(min(1.0, 0.05 * (attempt + 1)))
        log.error("state write failed %d times; giving up", attempts)
        return False

    def reserve_in_place(self) -> bool:
        """Ordinary writes (log lines) wait while the ballast is spent, so the space it freed
        stays for the writes that record how executions end."""
        return self.reserve_path.exists()

    # change notification --------------------------------------------------------------------------

    def version(self, execution_id: str) -> int:
        with self._versions_lock:
            entry = self._versions.get(execution_id)
            return entry[0] if entry else 0

    def wait_for_change(self, execution_id: str, seen: int, timeout: float) -> None:
        """Block until `execution_id` changes after version `seen`, or `timeout` passes."""
        with self._versions_lock:
            entry = self._versions.setdefault(execution_id, [0, threading.Condition(threading.Lock())])
        with entry[1]:
            entry[1].wait_for(lambda: entry[0] != seen, timeout)

    def forget(self, execution_id: str) -> None:
        """Drop an execution's change counter once nothing more will change (it STOPPED)."""
        with self._versions_lock:
            self._versions.pop(execution_id, None)

    def _changed(self, execution_id: str) -> None:
        with self._versions_lock:
            entry = self._versions.setdefault(execution_id, [0, threading.Condition(threading.Lock())])
        with entry[1]:
            entry[0] += 1
            entry[1].notify_all()

    def _write(self, sql: str, params=(), many: bool = False, execution_id: str | None = None) -> int:
        """One statement in its own transaction; returns the rows it changed."""
        count = self._transaction(lambda conn: (conn.executemany if many else conn.execute)(sql, params).rowcount)
        if execution_id is not None:
            self._changed(execution_id)
        return count

    def _transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        with self._write_lock:
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = work(conn)
                conn.execute("COMMIT")
                return result
            except BaseException:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass  # nothing to roll back when BEGIN or COMMIT itself failed
                raise

    # executions ---------------------------------------------------------------------------

    def insert(self, execution: Execution) -> None:
        """A new execution, its artifacts 'pending' until its outputs are collected."""
        row = to_row(execution)
        self._write(
            f"INSERT INTO executions ({', '.join(FIELDS)}, artifacts_state) VALUES ({', '.join('?' * len(FIELDS))}, 'pending')",
            [row[f] for f in FIELDS],
            execution_id=execution.execution_id,
        )

    def update(self, execution_id: str, unfinished_only: bool = False, **fields) -> None:
        """Set `fields`; with `unfinished_only`, only if the execution is not STOPPED yet, so
        of two racing final states (a run ending, a stop arriving) the first one stands."""
        if "env_keys" in fields:
            fields["env_keys"] = json.dumps(fields["env_keys"])
        assignments = ", ".join(f"{name} = ?" for name in fields)
        condition = " AND status != 'STOPPED'" if unfinished_only else ""
        self._write(f"UPDATE executions SET {assignments} WHERE execution_id = ?{condition}",
                    [*fields.values(), execution_id], execution_id=execution_id)

    def get(self, execution_id: str) -> Execution | None:
        row = self._reader().execute(
            f"SELECT {', '.join(FIELDS)} FROM executions WHERE execution_id = ?", (execution_id,)
        ).fetchone()
        return None if row is None else from_row(row)

    def recent(self, limit: int) -> list[Execution]:
        rows = self._reader().execute(
            f"SELECT {', '.join(FIELDS)} FROM executions ORDER BY created_at DESC, execution_id DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [from_row(r) for r in rows]

    def unfinished(self) -> list[tuple[str, int | None, str | None]]:
        """(execution_id, pid, pid_start) of executions not STOPPED: what a crash left behind."""
        return self._reader().execute(
            "SELECT execution_id, pid, pid_start FROM executions WHERE status != 'STOPPED'"
        ).fetchall()

    # log lines ------------------------------------------------------------------------------

    def append_lines(self, execution_id: str, rows: list[tuple[int, int, str, int]]) -> None:
        """rows: (seq, ts_ms, message, partial)."""
        self._write(
            "INSERT INTO log_lines (execution_id, seq, ts_ms, message, partial) VALUES (?, ?, ?, ?, ?)",
            [(execution_id, seq, ts, msg, partial) for seq, ts, msg, partial in rows],
            many=True,
            execution_id=execution_id,
        )

    def read_lines(self, execution_id: str, after_seq: int, limit: int, max_bytes: int) -> list[tuple[int, int, str, int]]:
        """rows: (seq, ts_ms, message, partial), at most `limit` and about `max_bytes` (always
        at least one row). Rows are fetched READ_BATCH at a time and fetching stops once the
        page is full, so a page of long lines never holds more than it returns plus one batch
        (the longest lines are 256 KiB: a few MiB at most, whatever `limit` says)."""
        cursor = self._reader().execute(
            "SELECT seq, ts_ms, message, partial FROM log_lines WHERE execution_id = ? AND seq > ? ORDER BY seq LIMIT ?",
            (execution_id, after_seq, limit),
        )
        rows, size = [], 0
        try:
            while size <= max_bytes:
                batch = cursor.fetchmany(READ_BATCH)
                if not batch:
                    return rows  # the usual case: a page of ordinary lines
                rows += batch
                size += sum(map(len, map(itemgetter(2), batch))) + ROW_BYTES * len(batch)
        finally:
            cursor.close()
        while len(rows) > 1 and size > max_bytes:  # over by at most the last batch
            size -= len(rows.pop()[2]) + ROW_BYTES
        return rows

    # pruning ---------------------------------------------------------------------------------

    def mark_pruned(self, created_before: float) -> list[str]:
        """Take the finished executions created before `created_before` out of view, in one
        transaction, and note them in `pruned`; their lines go later (delete_lines), in batches
        that never hold the write lock for long."""
        def work(conn: sqlite3.Connection) -> list[str]:
            where = "status = 'STOPPED' AND artifacts_state != 'pending' AND created_at < ?"  # not while collecting
            ids = [eid for (eid,) in conn.execute(f"SELECT execution_id FROM executions WHERE {where}", (created_before,))]
            conn.executemany("INSERT OR IGNORE INTO pruned (execution_id) VALUES (?)", [(eid,) for eid in ids])
            conn.execute(f"DELETE FROM executions WHERE {where}", (created_before,))
            conn.executemany("DELETE FROM artifacts WHERE execution_id = ?", [(eid,) for eid in ids])
            return ids
        return self._transaction(work)

    def pruned(self) -> list[str]:
        return [eid for (eid,) in self._reader().execute("SELECT execution_id FROM pruned")]

    def delete_lines(self, execution_id: str, batch: int = PRUNE_BATCH) -> None:
        """Every line of a pruned execution, `batch` rows per transaction; then its note."""
        while self._write(
            "DELETE FROM log_lines WHERE execution_id = ? AND seq <= COALESCE("
            "(SELECT seq FROM log_lines WHERE execution_id = ? ORDER BY seq LIMIT 1 OFFSET ?), 1e18)",
            (execution_id, execution_id, batch - 1),
        ):
            pass
        self._write("DELETE FROM pruned WHERE execution_id = ?", (execution_id,))

    def reclaim_space(self) -> None:
        """Give freed pages back to the disk: the WAL is truncated, and a database made with
        auto_vacuum=INCREMENTAL (every new one) shrinks; an older one reuses its free pages."""
        with self._write_lock:
            self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
            if self._writer.execute("PRAGMA auto_vacuum").fetchone()[0] == 2:
                self._writer.execute("PRAGMA incremental_vacuum").fetchall()

    def last_seq(self, execution_id: str) -> int:
        row = self._reader().execute(
            "SELECT MAX(seq) FROM log_lines WHERE execution_id = ?", (execution_id,)
        ).fetchone()
        return row[0] or 0
