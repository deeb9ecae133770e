"""What an engine is: the contract the API layer calls, and the records it returns.

Engines (local processes + SQLite, ECS + CloudWatch + DynamoDB) differ in how they run a
script; they agree on these shapes, the ECS status names (PENDING, RUNNING, STOPPED) and the
log line format, so every front and client works with either.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from typing import Protocol

from .units import MIB
from .validation import ExecRequest, ListRequest, LogsRequest, PruneRequest, Ref, UploadRequest

PENDING, RUNNING, STOPPED = "PENDING", "RUNNING", "STOPPED"
STOPPED_BY_USER_EXIT_CODE = 130
MAX_EVENT_CHARS = 256 * 1024  # CloudWatch's event size; longer lines are split
MAX_PAGE_BYTES = MIB


def iso(ts: float | None) -> str | None:
    """Epoch seconds → RFC 3339 UTC with seconds precision, as the seed's API shows."""
    if ts is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def format_log_line(timestamp_ms: int, message: str) -> str:
    """`YYYY-MM-DD HH:MM:SS UTC | message`, the seed's log line."""
    return _second_prefix(timestamp_ms // 1000) + message


@functools.lru_cache(maxsize=4096)
def _second_prefix(second: int) -> str:
    # lines come in bursts within one second: strftime once per second, not once per line
    return time.strftime("%Y-%m-%d %H:%M:%S UTC | ", time.gmtime(second))


@dataclass
class Execution:
    execution_id: str
    task_arn: str
    status: str
    created_at: float
    command: str
    repo: str | None
    branch: str | None
    image: str | None
    skip_git: bool
    timeout_seconds: int
    engine: str
    runtime: str
    log_stream: str
    env_keys: list[str] = field(default_factory=list)
    desired_status: str = RUNNING
    started_at: float | None = None
    stopped_at: float | None = None
    exit_code: int | None = None
    stopped_reason: str | None = None
    stop_code: str | None = None
    cpu: float | None = None  # the size asked (vCPU, MiB), None when the engine's default applies
    memory: int | None = None
    cpu_applied: float | None = None  # what the runtime was told (--cpus is clamped to the cores)
    memory_applied: int | None = None
    resources_enforced: bool | None = None  # False: the runtime applies no size (the host runtime)
    runtime_reason: str | None = None  # why this runtime (the engine's probe, a setting)
    notice: str | None = None  # one line a front shows beside the run, e.g. an image that was ignored
    # the image that ran, as the runtime resolved its name: the local runtime's image ID, and the
    # repository digest when one is known (docker: pulled images; podman; ECS's imageDigest)
    image_id: str | None = None
    image_digest: str | None = None
    # When the engine, on `auto`, found no container runtime that worked and settled on the host
    # (its start): a front can say how old that choice is, and that a restart probes again.
    host_fallback_at: float | None = None

    def to_json(self) -> dict:
        end = self.stopped_at or (None if self.started_at is None else time.time())
        return {
            "execution_id": self.execution_id,
            "task_arn": self.task_arn,
            "status": self.status,
            "desired_status": self.desired_status,
            "created_at": iso(self.created_at),
            "started_at": iso(self.started_at),
            "stopped_at": iso(self.stopped_at),
            "duration_seconds": None if self.started_at is None or end is None else round(end - self.started_at, 3),
            "exit_code": self.exit_code,
            "stopped_reason": self.stopped_reason,
            "stop_code": self.stop_code,
            "command": self.command,
            "repo": self.repo,
            "branch": self.branch,
            "image": self.image,
            "skip_git": self.skip_git,
            "timeout_seconds": self.timeout_seconds,
            "env_keys": self.env_keys,
            "engine": self.engine,
            "runtime": self.runtime,
            "log_stream": self.log_stream,
            "runtime_reason": self.runtime_reason,
            "cpu": self.cpu,
            "memory": self.memory,
            "cpu_applied": self.cpu_applied,
            "memory_applied": self.memory_applied,
            "resources_enforced": self.resources_enforced,
            "notice": self.notice,
            "image_id": self.image_id,
            "image_digest": self.image_digest,
            "host_fallback_at": iso(self.host_fallback_at),
        }


@dataclass
class LogPage:
    """One page of an execution's log.

    Each event is a line without its newline, except the events listed in `partial`: output the
    engine sent before its line ended (a progress message after a pause, a piece of an
    over-long line). Such an event is *not* followed by a newline; the next event continues
    the same line. So the output is, exactly, every message followed by a newline unless it is
    partial — on every page boundary too.
    """

    events: list[tuple[int, str]]  # (timestamp in ms, message)
    next_token: str | None
    execution: Execution
    complete: bool | None = None  # no line can follow: STOPPED and drained (default: STOPPED)
    partial: tuple[int, ...] = ()  # indices into `events` of partial ones (the engine's that have them)

    def to_json(self, text: bool = True) -> dict:
        """`text=False` leaves out the `logs` text (clients that format events themselves page
        twice as fast: the text repeats every message)."""
        complete = self.execution.status == STOPPED if self.complete is None else self.complete
        events = [{"timestamp": ts, "message": msg} for ts, msg in self.events]
        for index in self.partial:
            events[index]["partial"] = True
        return {
            "execution_id": self.execution.execution_id,
            "status": self.execution.status,
            "exit_code": self.execution.exit_code,
            **({"logs": self._text()} if text else {}),
            "events": events,
            "next_token": self.next_token,
            "complete": complete and not self.events,
        }

    def _text(self) -> str:
        """The `logs` text: a line per event, a partial one continued by the next (its
        continuation gets no time prefix of its own)."""
        if not self.partial:
            return "\n".join([format_log_line(ts, msg) for ts, msg in self.events])
        partial, out, continued = set(self.partial), [], False
        for index, (ts, msg) in enumerate(self.events):
            out.append(msg if continued else format_log_line(ts, msg))
            continued = index in partial
            if not continued and index < len(self.events) - 1:
                out.append("\n")
        return "".join(out)


class Engine(Protocol):
    """Runs scripts and answers for them. Raises ApiError subclasses only."""

    name: str

    def start(self, request: ExecRequest) -> Execution: ...

    def script_for(self, request: ExecRequest) -> tuple[str, str]:
        """(script, runtime) this engine would run for `request`; starts nothing."""
        ...

    def get(self, ref: Ref) -> Execution: ...

    def logs(self, request: LogsRequest) -> LogPage: ...

    def stop(self, ref: Ref) -> Execution: ...

    def list(self, request: ListRequest) -> list[Execution]: ...

    def prune(self, request: PruneRequest) -> int:
        """Delete finished executions older than the request says (records, logs, workspaces);
        how many. An engine whose storage expires by itself refuses with a BadRequest."""
        ...

    def create_upload(self, request: UploadRequest) -> dict:
        """Where to PUT one archive: `{"upload_id", "url", "method": "PUT", "headers": {..},
        "expires_at": epoch seconds}`. `url` is a path on the local server (the client resolves
        it against the endpoint and sends X-API-Key) or a presigned URL (no key sent). A size
        over the engine's cap is a BadRequest naming the cap. `start()` refuses (BadRequest) an
        exec naming an upload that is unknown, incomplete or of the other purpose."""
        ...

    def artifacts(self, ref: Ref) -> dict:
        """What the run left in $MYCLI_OUTPUTS: `{"execution_id", "artifacts": [{"name", "size",
        "sha256", "url"}], "complete": bool, "skipped": [str], "reason": str | None}`.
        `complete` is false until collection has finished; `reason` says why there is nothing
        (or less) when collection could not happen."""
        ...
