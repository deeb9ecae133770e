"""How much the embedded engine keeps: a cap on each execution's log, and pruning of old
executions (their records, log lines, workspaces and artifacts; expired uploads) on demand and by a retention setting.

Settings come from the server's environment, so a bad value stops the server at start with a
line that names it:
- MYCLI_MAX_LOG_MB (default 100; 0: no cap): where an execution's log is cut. A line counts its
  characters plus LINE_OVERHEAD bytes, about what storing it costs — 20 million empty lines are
  not free.
- MYCLI_RETENTION_DAYS (default 30; 0: keep everything): finished executions created longer ago
  are pruned when the engine starts and every hour.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

from ..errors import ServerMisconfigured
from ..ratelog import RateLimitedLog
from ..units import MIB

DEFAULT_MAX_LOG_MB = 100
DEFAULT_RETENTION_DAYS = 30
MAX_RETENTION_DAYS = 36500
LINE_OVERHEAD = 32
RETENTION_INTERVAL = 3600.0

log = RateLimitedLog(logging.getLogger("mycli.local"))


@dataclass(frozen=True)
class KeepSettings:
    max_log_bytes: int | None  # None: no cap
    retention_days: float | None  # None: keep everything

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> "KeepSettings":
        cap = env_number(environ, "MYCLI_MAX_LOG_MB", DEFAULT_MAX_LOG_MB, MIB)
        days = env_number(environ, "MYCLI_RETENTION_DAYS", DEFAULT_RETENTION_DAYS, MAX_RETENTION_DAYS)
        return cls(int(cap * MIB) or None, days or None)


def env_number(environ: Mapping[str, str], name: str, default: float, high: float) -> float:
    """A server setting that is a number from 0 to `high` (`default` when unset); a malformed
    one stops the engine from starting, naming the setting. Every MYCLI_MAX_*_MB reads through it."""
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value <= high:
        raise ServerMisconfigured(f"{name} must be a number from 0 to {high:.0f} (0 turns it off), not {raw[:40]!r}")
    return value


class Pruner:
    """Prunes finished executions. `running()` names the executions whose workspaces are live;
    `prune_files(created_before)` removes expired uploads and the artifacts of pruned executions."""

    def __init__(self, store, work_dir: Path, running: Callable[[], set[str]],
                 prune_files: Callable[[float], None] = lambda created_before: None):
        self.store, self.work_dir, self.running, self.prune_files = store, work_dir, running, prune_files
        self._cutoff = 0.0  # the latest prune's: uploads created before it go too
        self._lock = threading.Lock()  # one prune at a time
        self._stopped = threading.Event()

    def prune(self, older_than_days: float) -> int:
        """Prune finished executions created more than `older_than_days` ago; return how many."""
        self._cutoff = time.time() - older_than_days * 86400
        pruned = self.store.mark_pruned(self._cutoff)
        self.finish()
        return len(pruned)

    def finish(self) -> None:
        """Delete what marking left: the pruned executions' lines, stray workspaces, free pages."""
        with self._lock:
            for execution_id in self.store.pruned():
                self.store.delete_lines(execution_id)
            entries = list(self.work_dir.iterdir())
            live = self.running()  # after the listing: a run is registered before its workspace exists
            for entry in entries:
                if entry.name.split(".", 1)[0] not in live:
                    shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)
            self.prune_files(self._cutoff)
            self.store.reclaim_space()

    def start_retention(self, days: float | None) -> None:
        """With a retention setting: take old executions out of view now (a quick transaction),
        and leave the deleting, and every later hour's pruning, to a background thread."""
        if days is None:
            return
        self._cutoff = time.time() - days * 86400
        self.store.mark_pruned(self._cutoff)
        threading.Thread(target=self._retain, args=(days,), name="retention", daemon=True).start()

    def stop(self) -> None:
        self._stopped.set()

    def _retain(self, days: float) -> None:
        while not self._stopped.is_set():
            try:
                self.finish()
                self._stopped.wait(RETENTION_INTERVAL)
                if not self._stopped.is_set():
                    self._cutoff = time.time() - days * 86400
                    self.store.mark_pruned(self._cutoff)
            except Exception as exc:  # a full disk, a locked database: try again next time
                log.error("retention", "pruning old executions failed (%s); trying again in an hour", exc)
                self._stopped.wait(RETENTION_INTERVAL)
