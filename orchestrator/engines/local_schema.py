"""The local engine's SQLite schema, and how an Execution maps to a row and back."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

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
    notice         TEXT,
    image_id       TEXT,                               -- the image that ran, as resolved (Execution)
    image_digest   TEXT,
    artifacts_state TEXT NOT NULL DEFAULT 'complete',  -- 'pending' from the insert until collected
    artifacts_skipped TEXT,                            -- JSON list of lines: files left out, and why
    artifacts_reason TEXT,                             -- why nothing (or less) was collected
    host_fallback_at REAL                              -- auto found no runtime: when it chose the host
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
CREATE TABLE IF NOT EXISTS pruned (execution_id TEXT PRIMARY KEY) WITHOUT ROWID;  -- lines still to delete
CREATE TABLE IF NOT EXISTS artifacts (
    execution_id TEXT NOT NULL,
    name         TEXT NOT NULL,  -- relative path inside the run's outputs
    size         INTEGER NOT NULL,
    sha256       TEXT NOT NULL,
    PRIMARY KEY (execution_id, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS uploads (
    upload_id  TEXT PRIMARY KEY,
    purpose    TEXT NOT NULL,
    size       INTEGER NOT NULL,
    sha256     TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    complete   INTEGER NOT NULL DEFAULT 0  -- 1 once the PUT's body matched size and sha256
) WITHOUT ROWID;
"""

FIELDS = (
    "execution_id", "task_arn", "status", "desired_status", "created_at", "started_at", "stopped_at",
    "exit_code", "stopped_reason", "stop_code", "command", "repo", "branch", "image", "skip_git",
    "timeout_seconds", "env_keys", "engine", "runtime", "log_stream", "cpu", "memory", "cpu_applied",
    "memory_applied", "resources_enforced", "runtime_reason", "notice", "image_id", "image_digest",
    "host_fallback_at",
)
# Columns later versions added: a state dir an older engine made gets them on open.
ADDED_COLUMNS = {"executions": ("cpu REAL", "memory INTEGER", "cpu_applied REAL", "memory_applied INTEGER",
                                "resources_enforced INTEGER", "runtime_reason TEXT", "notice TEXT",
                                # executions from before artifacts existed have none: complete
                                "artifacts_state TEXT NOT NULL DEFAULT 'complete'", "artifacts_skipped TEXT",
                                "artifacts_reason TEXT", "image_id TEXT", "image_digest TEXT",
                                "host_fallback_at REAL"),
                 "log_lines": ("partial INTEGER NOT NULL DEFAULT 0",)}


def create_incremental(path: Path) -> None:
    """A new database gets auto_vacuum=INCREMENTAL, so pruning gives space back to the disk.
    It can only be set before the first table (and before WAL mode); an existing database is
    left as it is (and only read here: its readers must never need to write, on a full disk)."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        if conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0:
            conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
            conn.executescript(SCHEMA)
    finally:
        conn.close()


def add_missing_columns(conn: sqlite3.Connection) -> None:
    """Bring a database an older engine made up to SCHEMA (CREATE TABLE IF NOT EXISTS left it as it was)."""
    for table, columns in ADDED_COLUMNS.items():
        have = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        for column in columns:
            if column.split()[0] not in have:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {column}")


def to_row(execution: Execution) -> dict:
    row = {f: getattr(execution, f) for f in FIELDS}
    row["env_keys"] = json.dumps(execution.env_keys)
    row["skip_git"] = int(execution.skip_git)
    if execution.resources_enforced is not None:
        row["resources_enforced"] = int(execution.resources_enforced)
    return row


def from_row(row: tuple) -> Execution:
    data = dict(zip(FIELDS, row))
    data["env_keys"] = json.loads(data["env_keys"])
    data["skip_git"] = bool(data["skip_git"])
    if data["resources_enforced"] is not None:
        data["resources_enforced"] = bool(data["resources_enforced"])
    for name in ("cpu", "cpu_applied"):  # REAL columns: 2.0 is shown as 2, as the request had it
        if data[name] is not None and data[name] == int(data[name]):
            data[name] = int(data[name])
    return Execution(**data)
