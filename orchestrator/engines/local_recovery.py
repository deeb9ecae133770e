"""What an earlier engine process left behind, settled when the next one starts: its containers
reaped, its uncollected outputs collected, its unfinished executions given a final state and a
reason, and its workspaces removed (as the container's root when a killed container left files
the engine's user cannot delete)."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Callable

from .local_container import ContainerRun
from .local_process import pid_start_time

log = logging.getLogger("mycli.local")

LOST = "Lost: the local engine stopped while this execution was running; run it again"


def recover(state_dir: Path, store, files, container, collect: Callable[[str], None],
            finish_orphan: Callable[[str, str, str, int | None], None]) -> None:
    """`collect(id)` collects a run's outputs; `finish_orphan(id, reason, code, exit_code)`
    records its end (both the engine's own, so a recovered run ends as any other does)."""
    if container:
        reaped = container.reap()  # what a killed engine left running, by this engine's label
        if reaped:
            log.warning("removed %d container(s) an earlier engine process left behind", len(reaped))
    for execution_id in files.records.pending_collections():  # it died while collecting
        log.warning("collecting the outputs of %s, which an earlier engine process left uncollected", execution_id)
        collect(execution_id)
    for execution_id, pid, pid_start in store.unfinished():
        if pid and pid_start and pid_start_time(pid) == pid_start:
            try:
                os.killpg(pid, 9)
            except OSError:
                pass
        log.warning("execution %s was left unfinished by an earlier engine process", execution_id)
        finish_orphan(execution_id, LOST, "EngineRestarted", None)
    for leftover in (state_dir / "work").iterdir():
        shutil.rmtree(leftover, ignore_errors=True) if leftover.is_dir() else leftover.unlink(missing_ok=True)
        if leftover.exists() and container:  # a killed container's files, owned by its root
            ContainerRun.empty(container, leftover)
