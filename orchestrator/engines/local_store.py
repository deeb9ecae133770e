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
from typing import Callable

from ..engine import Execution

SCHEMA = """
CREATE TABLE IF NOT EXISTS executions (
    execution_id   TEXT PRIMARY KEY,
    task_arn       TEXT NOT NULL,
    status         TEXT NOT NULL,
    desired_status TEXT NOT NULL,
    created_at     REAL NOT NULL,
    started_at     REAL,
    stopped_at     REAL,
    exit_code      INTEGER,
    stopped_reason TEXT,
    stop_code      TEXT,
    command        TEXT NOT NULL,
    repo           TEXT,
    branch         TEXT,
    image          TEXT,
    skip_git       INTEGER NOT NULL,
    timeout_seconds INTEGER NOT NULL,
    env_keys       TEXT NOT NULL,
    engine         TEXT NOT NULL,
    runtime        TEXT NOT NULL,
    log_stream     TEXT NOT NULL,
    pid            INTEGER,
    pid_start      TEXT,
    cpu            REAL,
    memory         INTEGER,
    cpu_applied    REAL,
    memory_applied INTEGER,
    resources_enforced INTEGER,
    runtime_reason TEXT,
    notice         TEXT
);
CREATE INDEX IF NOT EXISTS executions_created ON executions (created_at DESC);
CREATE TABLE IF NOT EXISTS log_lines (
    execution_id TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    ts_ms        INTEGER NOT NULL,
    message      TEXT NOT NULL,
    partial      INTEGER NOT NULL DEFAULT 0,  -- 1: no newline after this message (LogPage.partial)
    PRIMARY KEY (execution_id, seq)
) WITHOUT ROWID;
"""

log = logging.getLogger("mycli.local")

RESERVE_BYTES = 1 << 20
CRITICAL_ATTEMPTS = 120

_FIELDS = (
    "execution_id", "task_arn", "status", "desired_status", "created_at", "started_at", "stopped_at",
    "exit_code", "stopped_reason", "stop_code", "command", "repo", "branch", "image", "skip_git",
    "timeout_seconds", "env_keys", "engine", "runtime", "log_stream", "cpu", "memory", "cpu_applied",
    "memory_applied", "resources_enforced", "runtime_reason", "notice",
)
# Columns later versions added: a state dir an older engine made gets them on open.
_ADDED_COLUMNS = {"executions": ("cpu REAL", "memory INTEGER", "cpu_applied REAL", "memory_applied INTEGER",
                                 "resources_enforced INTEGER", "runtime_reason TEXT", "notice TEXT"),
                  "log_lines": ("partial INTEGER NOT NULL DEFAULT 0",)}


class Store:
    def __init__(self, path: Path):
        self.path = path
        self.reserve_path = path.with_name("disk-reserve")
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._versions: dict[str, list] = {}  # execution_id → [change count, Condition]
        self._versions_lock = threading.Lock()
        self._writer = self._connect()
        self._writer.executescript(SCHEMA)
        for table, columns in _ADDED_COLUMNS.items():
            have = {row[1] for row in self._writer.execute(f"PRAGMA table_info({table})")}
            for column in columns:
                if column.split()[0] not in have:
                    self._writer.execute(f"ALTER TABLE {table} ADD COLUMN {column}")

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
            with open(self.reserve_path, "wb") as fh:
                fh.write(b"\0" * RESERVE_BYTES)
                fh.flush()
                os.fsync(fh.fileno())
            return True
        except OSError:
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

    def _write(self, sql: str, params=(), many: bool = False, execution_id: str | None = None) -> None:
        with self._write_lock:
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                (conn.executemany if many else conn.execute)(sql, params)
                conn.execute("COMMIT")
            except BaseException:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass  # nothing to roll back when BEGIN or COMMIT itself failed
                raise
        if execution_id is not None:
            self._changed(execution_id)

    # executions ---------------------------------------------------------------------------

    def insert(self, execution: Execution) -> None:
        row = _to_row(execution)
        self._write(
            f"INSERT INTO executions ({', '.join(_FIELDS)}) VALUES ({', '.join('?' * len(_FIELDS))})",
            [row[f] for f in _FIELDS],
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
            f"SELECT {', '.join(_FIELDS)} FROM executions WHERE execution_id = ?", (execution_id,)
        ).fetchone()
        return None if row is None else _from_row(row)

    def recent(self, limit: int) -> list[Execution]:
        rows = self._reader().execute(
            f"SELECT {', '.join(_FIELDS)} FROM executions ORDER BY created_at DESC, execution_id DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [_from_row(r) for r in rows]

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
        """rows: (seq, ts_ms, message, partial), at most `limit` and about `max_bytes`."""
        cursor = self._reader().execute(
            "SELECT seq, ts_ms, message, partial FROM log_lines WHERE execution_id = ? AND seq > ? ORDER BY seq LIMIT ?",
            (execution_id, after_seq, limit),
        )
        rows = cursor.fetchall()
        if sum(map(len, map(itemgetter(2), rows))) + 40 * len(rows) <= max_bytes:
            return rows  # the usual case: a page of ordinary lines
        out, size = [], 0
        for row in rows:
            size += len(row[2]) + 40
            if out and size > max_bytes:
                break
            out.append(row)
        return out

    def last_seq(self, execution_id: str) -> int:
        row = self._reader().execute(
            "SELECT MAX(seq) FROM log_lines WHERE execution_id = ?", (execution_id,)
        ).fetchone()
        return row[0] or 0



def _to_row(execution: Execution) -> dict:
    row = {f: getattr(execution, f) for f in _FIELDS}
    row["env_keys"] = json.dumps(execution.env_keys)
    row["skip_git"] = int(execution.skip_git)
    if execution.resources_enforced is not None:
        row["resources_enforced"] = int(execution.resources_enforced)
    return row


def _from_row(row: tuple) -> Execution:
    data = dict(zip(_FIELDS, row))
    data["env_keys"] = json.loads(data["env_keys"])
    data["skip_git"] = bool(data["skip_git"])
    if data["resources_enforced"] is not None:
        data["resources_enforced"] = bool(data["resources_enforced"])
    for name in ("cpu", "cpu_applied"):  # REAL columns: 2.0 is shown as 2, as the request had it
        if data[name] is not None and data[name] == int(data[name]):
            data[name] = int(data[name])
    return Execution(**data)
