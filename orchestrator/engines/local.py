"""The embedded local engine: the orchestrator's script run as a local process, state in SQLite.

Each execution runs the generated script with /bin/sh in its own session, under a supervisor
that adopts everything the script starts (see local_supervisor.py), in its own workspace under
the state dir — or, when the runtime is docker or podman (MYCLI_LOCAL_RUNTIME; `auto` trusts one
only after a probe container ran, see local_runtime.py), in the requested image with only that
workspace mounted. stdout and stderr share one pipe, read in chunks as they are produced and
stored line by line with the time they arrived.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import threading
import time
from dataclasses import replace
from itertools import compress
from operator import itemgetter
from pathlib import Path
from typing import Mapping

from ..engine import MAX_PAGE_BYTES, PENDING, RUNNING, STOPPED, Execution, LogPage
from ..errors import BadRequest, EngineUnavailable, NotFound, ServerMisconfigured
from ..ids import is_execution_id, new_execution_id
from ..shell import GitHosts, build_script
from ..statedir import prepare_state_dir, user_umask
from ..validation import ExecRequest, ListRequest, LogsRequest, PruneRequest, Ref, UploadRequest
from .local_container import ContainerRun, local_repo_path, size_lines
from .local_env import run_environment
from .local_files import FileCaps, LocalFiles
from .local_process import ProcessRun, credentials_from, pid_start_time
from .local_recovery import recover
from .local_retention import KeepSettings, Pruner
from .local_runtime import WORKSPACE, ContainerRuntime, applied_cpu, choose_runtime, mountable
from .local_spawn import Spawner
from .local_store import Store

log = logging.getLogger("mycli.local")

ID_ATTEMPTS = 20
STOP_RECORD_ATTEMPTS = 3  # a stop's answer does not wait long for a full disk: the run's end records it
RUNTIMES = ("auto", "host", "docker", "podman")


class LocalEngine:
    name = "local"

    def __init__(self, state_dir: Path, environ: Mapping[str, str] | None = None, runtime: str | None = None):
        self.environ = dict(os.environ if environ is None else environ)
        self.keep = KeepSettings.from_env(self.environ)
        self.state_dir = prepare_state_dir(Path(state_dir))
        (self.state_dir / "work").mkdir(exist_ok=True, mode=0o700)
        self.store = Store(self.state_dir / "mycli.db")
        self.files = LocalFiles(self.state_dir, self.store, FileCaps.from_env(self.environ))
        self.hosts = GitHosts(
            self.environ.get("GITHUB_HOST") or "github.com", self.environ.get("GITLAB_HOST") or "gitlab.com"
        )
        self.credentials = credentials_from(self.environ)
        choice = runtime or self.environ.get("MYCLI_LOCAL_RUNTIME") or "auto"
        if choice not in RUNTIMES:
            raise ServerMisconfigured(f"MYCLI_LOCAL_RUNTIME must be one of {', '.join(RUNTIMES)}, not {choice!r}")
        self.container: ContainerRuntime | None
        self.container, self.runtime_reason, self._host_why = choose_runtime(choice, self.environ, self.state_dir)
        self.runtime = self.container.name if self.container else "host"
        # auto found no runtime that worked (not: host asked for, a state dir no runtime can
        # mount): a restart probes again, and the fronts say so beside an ignored image
        retry = self.container is None and choice == "auto" and mountable(self.state_dir)
        self.host_fallback_at = time.time() if retry else None
        self.default_image = self.environ.get("DEFAULT_IMAGE") or "ubuntu:22.04"
        self._runs: dict[str, ProcessRun] = {}
        self.spawner = Spawner()
        self._runs_lock = threading.Lock()
        recover(self.state_dir, self.store, self.files, self.container, self._collect, self._finish_orphan)
        self.pruner = Pruner(self.store, self.state_dir / "work", self._running_ids, self.files.prune)
        self.pruner.start_retention(self.keep.retention_days)

    # the Engine contract --------------------------------------------------------------------

    def script_for(self, request: ExecRequest) -> tuple[str, str]:
        image = request.image or self.default_image
        size = request.size
        if self.container:
            local_repo_path(None if request.skip_git else request.repo)  # one a container cannot mount: a 400 now
            notes = [f"→ Runtime: {self.container.name} container ({self.runtime_reason})", *size_lines(self.container, size)]
            workdir = WORKSPACE
            request = replace(request, image=image)  # the header names the image that runs, the default too
        else:
            notes = [f"→ Runtime: host process ({self.runtime_reason}); image {image} not used"]
            if size is not None:
                notes.append(f"→ Size: {size.describe()} asked; not enforced: the host runtime gives the command "
                             "the whole machine")
            workdir = "."
        return build_script(request, workdir=workdir, hosts=self.hosts, notes=tuple(notes)), self.runtime

    def start(self, request: ExecRequest) -> Execution:
        if not self.store.ensure_reserve():
            raise EngineUnavailable(f"the local engine's disk is full; free space in {self.state_dir} and try again")
        script, runtime = self.script_for(request)
        staged = self.files.stage(request)  # uploads extracted first: an unusable one is a 400, and no run
        try:
            execution = self._record(request, runtime)
        except BaseException:
            self.files.discard(staged)
            raise
        execution_id = execution.execution_id
        workspace = self.state_dir / "work" / execution_id
        files = _files_dir(self.state_dir, execution_id)
        env, stdin_data = run_environment(request, execution_id, files, self.environ, self.container, self.credentials)
        container = None
        if self.container:
            container = ContainerRun(self.container, execution_id, execution.image, workspace,
                                     workspace.with_name(f"{execution_id}.mycli"), request.size, stdin_data is not None,
                                     files=files, local_changes=bool(request.local_changes),
                                     repo=None if request.skip_git else request.repo)
        run = ProcessRun(
            execution_id=execution_id,
            argv=container.argv if container else ["/bin/sh", str(workspace.parent / f"{execution_id}.sh")],
            cwd=workspace,
            env=env,
            stdin_data=stdin_data,
            script=script,
            timeout_seconds=request.timeout_seconds,
            store=self.store,
            spawner=self.spawner,
            on_started=self._started,
            on_finished=self._finished,
            umask=user_umask(),
            max_log_bytes=self.keep.max_log_bytes,
            container=container,
        )
        with self._runs_lock:
            self._runs[execution_id] = run
        staged.rename(files)  # once registered: pruning leaves a running execution's files alone
        run.start()
        return execution

    def _record(self, request: ExecRequest, runtime: str) -> Execution:
        """Insert a PENDING execution; the ID's 4 random hex digits can collide within one
        second under load, so the database's primary key decides and a collision draws again."""
        for _ in range(ID_ATTEMPTS):
            now = time.time()
            execution_id = new_execution_id(now)
            execution = Execution(
                execution_id=execution_id,
                task_arn=f"arn:mycli:local:task/{execution_id}",
                status=PENDING,
                created_at=now,
                command=request.command,
                repo=request.repo,
                branch=None if request.skip_git else request.branch,
                image=request.image or self.default_image,
                skip_git=request.skip_git,
                timeout_seconds=request.timeout_seconds,
                engine=self.name,
                runtime=runtime,
                log_stream=f"task/executor/{execution_id}",
                env_keys=sorted(request.env),
                runtime_reason=self.runtime_reason,
                **self._size_fields(request),
                notice=None if self.container or not request.image else
                f"image {request.image} ignored: {self._host_why}; ran on the host",
                host_fallback_at=self.host_fallback_at,
            )
            try:
                self.store.insert(execution)
                return execution
            except sqlite3.IntegrityError:
                continue
            except sqlite3.OperationalError as exc:
                raise EngineUnavailable(
                    f"the local engine cannot record a new execution ({exc}); free disk space in {self.state_dir}"
                ) from None
        raise EngineUnavailable("could not allocate a unique execution ID; try again")

    def get(self, ref: Ref) -> Execution:
        execution = self.store.get(self._resolve(ref))
        if execution is None:
            raise NotFound(f"execution {ref.execution_id or ref.task_arn} not found")
        return execution

    def logs(self, request: LogsRequest) -> LogPage:
        execution_id = self._resolve(request.ref)
        after = _parse_token(request.next_token)
        deadline = time.monotonic() + request.wait_seconds
        page_bytes = MAX_PAGE_BYTES // 2 if request.text else MAX_PAGE_BYTES  # the text repeats every message
        while True:
            seen = self.store.version(execution_id)
            execution = self.get(request.ref)
            # the log ends once the outputs are collected: their lines come after STOPPED
            ended = execution.status == STOPPED and self._collected(execution_id)
            rows = self.store.read_lines(execution_id, after, request.limit, max_bytes=page_bytes)
            remaining = deadline - time.monotonic()
            if rows or ended or remaining <= 0:
                break
            self.store.wait_for_change(execution_id, seen, remaining)
        token = str(rows[-1][0]) if rows else str(after)
        partial = tuple(compress(range(len(rows)), map(itemgetter(3), rows)))
        return LogPage(list(map(itemgetter(1, 2), rows)), token, execution, complete=ended, partial=partial)

    def stop(self, ref: Ref) -> Execution:
        execution = self.get(ref)
        if execution.status == STOPPED:
            return execution
        with self._runs_lock:
            run = self._runs.get(execution.execution_id)
        if run is None:
            self._finish_orphan(execution.execution_id, "Stopped by user", "UserInitiated", 130)
        else:
            run.request_stop()  # first: signalling needs no disk, and the disk may be full
            self.store.critical(lambda: self.store.update(execution.execution_id, desired_status=STOPPED),
                                attempts=STOP_RECORD_ATTEMPTS)  # the run's end records it anyway
            run.done.wait(3.0)
        return self.get(ref)

    def list(self, request: ListRequest) -> list[Execution]:
        return self.store.recent(request.limit)

    def prune(self, request: PruneRequest) -> int:
        return self.pruner.prune(request.older_than_days)

    def create_upload(self, request: UploadRequest) -> dict:
        return self.files.uploads.create_upload(request)

    def artifacts(self, ref: Ref) -> dict:
        return self.files.listing(self.get(ref).execution_id)

    def shutdown(self) -> None:
        """Stop every running execution (the server is going away) and wait briefly."""
        with self._runs_lock:
            runs = list(self._runs.values())
        for run in runs:
            run.request_stop(reason="Stopped because the local engine shut down", code="EngineShutdown")
        for run in runs:
            run.done.wait(10)
        self.spawner.close()
        self.pruner.stop()

    # internals -----------------------------------------------------------------------------

    def _collected(self, execution_id: str) -> bool:
        collection = self.files.collection(execution_id)
        return collection is None or collection.complete

    def _running_ids(self) -> set[str]:
        with self._runs_lock:
            return set(self._runs)

    def _resolve(self, ref: Ref) -> str:
        if ref.execution_id:
            return ref.execution_id
        tail = (ref.task_arn or "").rsplit("/", 1)[-1]
        if not is_execution_id(tail):
            raise NotFound(f"task {ref.task_arn} not found on the local engine")
        return tail

    def _size_fields(self, request: ExecRequest) -> dict:
        """The size asked, the size applied, and whether the runtime enforces it."""
        fields = {"cpu": request.cpu, "memory": request.memory}
        if not self.container:
            return {**fields, "resources_enforced": False}
        if request.cpu is None:
            return fields
        return {**fields, "cpu_applied": applied_cpu(request.cpu, self.container.cores), "memory_applied": request.memory,
                "resources_enforced": self.container.limits}

    def _started(self, execution_id: str, pid: int) -> None:
        now, start = time.time(), pid_start_time(pid)
        self.store.critical(lambda: self.store.update(execution_id, status=RUNNING, started_at=now, pid=pid, pid_start=start))

    def _finished(self, execution_id: str, exit_code: int | None, reason: str, code: str) -> None:
        """STOPPED first (the exit code is known), then the outputs collected, then the run's
        files removed."""
        now = time.time()
        self.store.critical(lambda: self.store.update(
            execution_id, unfinished_only=True, status=STOPPED, desired_status=STOPPED, stopped_at=now,
            exit_code=exit_code, stopped_reason=reason, stop_code=code, pid=None,
        ))
        self._collect(execution_id)
        self.store.forget(execution_id)
        with self._runs_lock:
            self._runs.pop(execution_id, None)
        shutil.rmtree(self.state_dir / "work" / execution_id, ignore_errors=True)

    def _collect(self, execution_id: str) -> None:
        """The outputs collected, their lines in the log, the run's files dir removed (by the
        container's root, when a killed container left files the engine cannot delete)."""
        def say(lines: list[str]) -> None:
            seq, now_ms = self.store.last_seq(execution_id) + 1, int(time.time() * 1000)
            rows = [(seq + i, now_ms, line, 0) for i, line in enumerate(lines)]
            self.store.critical(lambda: self.store.append_lines(execution_id, rows))

        empty = (lambda path: ContainerRun.empty(self.container, path)) if self.container else None
        self.files.end_run(execution_id, _files_dir(self.state_dir, execution_id), say, empty)

    def _finish_orphan(self, execution_id: str, reason: str, code: str, exit_code: int | None) -> None:
        current = self.store.get(execution_id)
        if current is None or current.status == STOPPED:
            return  # it ended on its own meanwhile: its own exit code stands
        seq = self.store.last_seq(execution_id) + 1
        line = [(seq, int(time.time() * 1000), f"✗ {reason}", 0)]
        self.store.critical(lambda: self.store.append_lines(execution_id, line))
        self._finished(execution_id, exit_code, reason, code)


def _files_dir(state_dir: Path, execution_id: str) -> Path:
    """A run's inputs/, outputs/ and local_changes/, beside its workspace (not in it: a
    skip-git command's working directory is the workspace itself)."""
    return state_dir / "work" / f"{execution_id}.files"


def _parse_token(token: str | None) -> int:
    if token is None:
        return 0
    if not (token.isascii() and token.isdigit()) or len(token) > 18:  # '²'.isdigit() is True
        raise BadRequest("next_token is not a token a previous logs call returned")
    return int(token)
