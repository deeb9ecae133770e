"""Request validation: a JSON body in, a typed request out, or BadRequest naming the field.

Pure: no I/O, no engine. Every rule that protects the shell script is applied here (the field
rules themselves are exec_fields.py's), so an engine never sees a value that could become a git
option, a remote-helper transport or a NUL byte.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .errors import BadRequest
from .exec_fields import CONTROL_RE, validate_branch, validate_env, validate_image, validate_repo
from .ids import is_execution_id, is_upload_id
from .sizes import Size, validate_size
from .units import MIB

MAX_COMMAND_BYTES = 64 * 1024
MAX_TIMEOUT_SECONDS = 86400
DEFAULT_TIMEOUT_SECONDS = 1800
DEFAULT_BRANCH = "main"
MAX_LOG_PAGE = 10000
MAX_WAIT_SECONDS = 20
MAX_LIST = 1000
MAX_PRUNE_DAYS = 36500
DEFAULT_MAX_UPLOAD_BYTES = 100 * MIB  # an engine's default cap (MYCLI_MAX_UPLOAD_MB)
UPLOAD_PURPOSES = ("inputs", "local_changes")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}\Z")


ACTIONS = ("exec", "status", "logs", "stop", "list", "prune", "upload", "artifacts")


@dataclass(frozen=True)
class ExecRequest:
    command: str
    repo: str | None = None
    branch: str = DEFAULT_BRANCH
    image: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS
    skip_git: bool = False
    dry_run: bool = False
    cpu: float | None = None  # vCPU and MiB, a valid Fargate pair (sizes.py), or both None: the engine's default
    memory: int | None = None
    inputs: str | None = None  # an upload ID (purpose "inputs"): extracted into $MYCLI_INPUTS
    local_changes: str | None = None  # an upload ID (purpose "local_changes"): applied after the clone

    @property
    def size(self) -> Size | None:
        """The size asked, or None: the engine's default (the task definition's, on AWS)."""
        return None if self.cpu is None else Size(self.cpu, self.memory)


@dataclass(frozen=True)
class Ref:
    """Which execution a status/logs/stop call is about: an execution ID or a task ARN."""

    execution_id: str | None = None
    task_arn: str | None = None


@dataclass(frozen=True)
class LogsRequest:
    ref: Ref
    next_token: str | None = None
    limit: int = MAX_LOG_PAGE
    wait_seconds: float = 0.0
    text: bool = True  # include the `logs` text beside the events


@dataclass(frozen=True)
class UploadRequest:
    """Ask for a place to PUT one archive of `size` bytes whose SHA-256 is `sha256` (64 lowercase
    hex); the engine accepts only that body, and an exec names it by the upload ID it answers."""

    size: int
    sha256: str
    purpose: str  # "inputs" | "local_changes"


@dataclass(frozen=True)
class ListRequest:
    limit: int = 20


@dataclass(frozen=True)
class PruneRequest:
    """Delete finished executions created more than `older_than_days` ago (0: every finished one)."""

    older_than_days: float


_ALLOWED = {
    "exec": {"command", "repo", "branch", "image", "env", "timeout_seconds", "skip_git", "dry_run", "cpu", "memory",
             "inputs", "local_changes"},
    "status": {"execution_id", "task_arn"},
    "stop": {"execution_id", "task_arn"},
    "logs": {"execution_id", "task_arn", "next_token", "limit", "wait_seconds", "text"},
    "list": {"limit"},
    "prune": {"older_than_days"},
    "upload": {"size", "sha256", "purpose"},
    "artifacts": {"execution_id", "task_arn"},
}


def parse_request(body: object) -> tuple[str, object]:
    """Validate a decoded JSON body; return (action, typed request)."""
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object")
    _reject_nul(body, "body")
    action = body.get("action")
    if action is None:
        raise BadRequest(f"action is required (one of {', '.join(ACTIONS)})")
    if action not in ACTIONS:
        raise BadRequest(f"unknown action {str(action)[:40]!r} (one of {', '.join(ACTIONS)})")
    unknown = sorted(str(k) for k in body if k != "action" and k not in _ALLOWED[action])
    if unknown:
        raise BadRequest(f"unknown field {unknown[0][:60]!r} for action {action!r}")
    if action == "exec":
        return action, _exec(body)
    if action == "list":
        return action, ListRequest(limit=_int(body, "limit", 20, 1, MAX_LIST))
    if action == "prune":
        days = body.get("older_than_days")
        if isinstance(days, bool) or not isinstance(days, (int, float)) or not 0 <= days <= MAX_PRUNE_DAYS:
            raise BadRequest(f"older_than_days is required: a number of days from 0 to {MAX_PRUNE_DAYS} (0 prunes every finished execution)")
        return action, PruneRequest(float(days))
    if action == "upload":
        return action, _upload(body)
    ref = _ref(body)
    if action == "logs":
        token = body.get("next_token")
        if token is not None and (not isinstance(token, str) or len(token) > 1024):
            raise BadRequest("next_token must be the string a previous logs call returned")
        wait = body.get("wait_seconds", 0)
        if isinstance(wait, bool) or not isinstance(wait, (int, float)) or not 0 <= wait <= MAX_WAIT_SECONDS:
            raise BadRequest(f"wait_seconds must be a number from 0 to {MAX_WAIT_SECONDS}")
        text = body.get("text", True)
        if not isinstance(text, bool):
            raise BadRequest("text must be true or false")
        return action, LogsRequest(ref, token or None, _int(body, "limit", MAX_LOG_PAGE, 1, MAX_LOG_PAGE), float(wait), text)
    return action, ref


def _exec(body: dict) -> ExecRequest:
    command = body.get("command")
    if not isinstance(command, str) or not command.strip():
        raise BadRequest("command is required and must be a non-empty string")
    if len(command.encode("utf-8", "surrogatepass")) > MAX_COMMAND_BYTES:
        raise BadRequest(f"command is longer than the {MAX_COMMAND_BYTES // 1024} KiB limit; put it in a script in your repo")
    skip_git = _bool(body, "skip_git")
    repo = body.get("repo")
    if repo in (None, ""):
        if not skip_git:
            raise BadRequest("repo is required unless skip_git is true")
        repo = None
    else:
        repo = validate_repo(repo)
    branch = body.get("branch")
    branch = DEFAULT_BRANCH if branch in (None, "") else validate_branch(branch)
    image = body.get("image")
    image = None if image in (None, "") else validate_image(image)
    size = validate_size(body)
    inputs, local_changes = _upload_ref(body, "inputs"), _upload_ref(body, "local_changes")
    if local_changes and skip_git:
        raise BadRequest("local_changes needs a clone to apply them to; leave out skip_git (or local_changes)")
    return ExecRequest(
        command=command,
        repo=repo,
        branch=branch,
        image=image,
        env=validate_env(body.get("env")),
        timeout_seconds=_int(body, "timeout_seconds", DEFAULT_TIMEOUT_SECONDS, 1, MAX_TIMEOUT_SECONDS),
        skip_git=skip_git,
        dry_run=_bool(body, "dry_run"),
        cpu=None if size is None else size.cpu,
        memory=None if size is None else size.memory,
        inputs=inputs,
        local_changes=local_changes,
    )


def _upload(body: dict) -> UploadRequest:
    size = body.get("size")
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise BadRequest("size is required: the archive's size in bytes (a positive integer)")
    sha256 = body.get("sha256")
    if not isinstance(sha256, str) or not _SHA256_RE.match(sha256):
        raise BadRequest("sha256 is required: the archive's SHA-256 as 64 lowercase hex characters")
    purpose = body.get("purpose")
    if purpose not in UPLOAD_PURPOSES:
        raise BadRequest(f"purpose is required: one of {', '.join(UPLOAD_PURPOSES)}")
    return UploadRequest(size, sha256, purpose)


def check_upload_size(size: int, cap: int) -> None:
    """An engine's cap on one upload, said in MiB (the unit of MYCLI_MAX_UPLOAD_MB)."""
    if size > cap:
        raise BadRequest(f"the upload is {size / MIB:.1f} MiB, over this engine's cap of {cap / MIB:g} MiB; "
                         "upload fewer or smaller files (the cap is MYCLI_MAX_UPLOAD_MB on the server)")


def _upload_ref(body: dict, name: str) -> str | None:
    value = body.get(name)
    if value in (None, ""):
        return None
    if not is_upload_id(value):
        raise BadRequest(f"{name} must be an upload ID (up- and 32 hex characters) from the upload action")
    return value


def _ref(body: dict) -> Ref:
    execution_id = body.get("execution_id")
    task_arn = body.get("task_arn")
    if execution_id in (None, "") and task_arn in (None, ""):
        raise BadRequest("execution_id or task_arn is required")
    if execution_id not in (None, ""):
        if not isinstance(execution_id, str) or not is_execution_id(execution_id):
            raise BadRequest("execution_id must be 12 lowercase hex characters")
        return Ref(execution_id=execution_id)
    if not isinstance(task_arn, str) or len(task_arn) > 2048 or CONTROL_RE.search(task_arn):
        raise BadRequest("task_arn must be a task ARN string")
    return Ref(task_arn=task_arn)


def _int(body: dict, name: str, default: int, low: int, high: int) -> int:
    value = body.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadRequest(f"{name} must be an integer from {low} to {high}")
    return value


def _bool(body: dict, name: str) -> bool:
    value = body.get(name, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise BadRequest(f"{name} must be true or false")
    return value


def _reject_nul(body: object, where: str) -> None:
    """Every string in the body, keys included, must be NUL-free valid unicode. Walked with an
    explicit stack, not recursion: a body nested a thousand levels deep must still get its 400
    (recursion would run out of stack while building it and answer 500)."""
    stack: list[tuple[object, str]] = [(body, where)]
    while stack:
        value, where = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                raise BadRequest(f"{where} contains a NUL byte")
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise BadRequest(f"{where} contains invalid unicode (a lone surrogate)") from None
        elif isinstance(value, dict):
            for key, item in reversed(value.items()):  # reversed onto the stack: checked in order
                inner = str(key)[:60] if where == "body" else _field_path(where, key)
                stack.append((item, inner))
                stack.append((key, where))
        elif isinstance(value, list):
            stack.extend((item, where) for item in reversed(value))


def _field_path(where: str, key: object) -> str:
    """`env.KEY`; deeper paths stop growing (a message that names the field, not the whole path)."""
    return f"{where}.{str(key)[:60]}" if where.count(".") < 2 else where
