"""Request validation: a JSON body in, a typed request out, or BadRequest naming the field.

Pure: no I/O, no engine. Every rule that protects the shell script lives here, so an engine
never sees a value that could become a git option, a remote-helper transport or a NUL byte.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

from .errors import BadRequest
from .ids import is_execution_id, is_upload_id
from .sizes import Size, validate_size

MAX_COMMAND_BYTES = 64 * 1024
MAX_TIMEOUT_SECONDS = 86400
DEFAULT_TIMEOUT_SECONDS = 1800
DEFAULT_BRANCH = "main"
MAX_LOG_PAGE = 10000
MAX_WAIT_SECONDS = 20
MAX_LIST = 1000
MAX_ENV_VARS = 200
MAX_PRUNE_DAYS = 36500
DEFAULT_MAX_UPLOAD_BYTES = 100 * 1024 * 1024  # an engine's default cap (MYCLI_MAX_UPLOAD_MB)
UPLOAD_PURPOSES = ("inputs", "local_changes")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}\Z")

ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
_TRANSPORT_RE = re.compile(r"^[A-Za-z0-9+.-]+::")
_URL_RE = re.compile(r"^(https?|ssh|git|file)://[^/\s]*(/.*)?\Z")
_URL_CREDENTIALS_RE = re.compile(r"^[a-z]+://[^/@]*:[^/@]*@")
_URL_OPTION_HOST_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://(?:[^/@]*@)?-")  # ssh://-oProxyCommand=...
_HTTP_USERINFO_RE = re.compile(r"^https?://[^/]*@")  # https://<token>@github.com/... is a token too
_SCP_RE = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^\s]*\Z")
_BRANCH_RE = re.compile(r"^[A-Za-z0-9_+][A-Za-z0-9._/+@-]*\Z")
# The Docker distribution reference grammar: [domain/]name[:tag][@digest].
_IMAGE_PATTERN = (
    r"^(?:(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
    r"(?::[0-9]+)?)/)?"
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
    r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?\Z"
)


@functools.lru_cache(maxsize=1)
def _image_re() -> re.Pattern:
    """Compiled on first use: it costs ~10 ms, which a Lambda cold start need not pay up front."""
    return re.compile(_IMAGE_PATTERN)
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")

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
        raise BadRequest(f"the upload is {size / 1048576:.1f} MiB, over this engine's cap of {cap / 1048576:g} MiB; "
                         "upload fewer or smaller files (the cap is MYCLI_MAX_UPLOAD_MB on the server)")


def _upload_ref(body: dict, name: str) -> str | None:
    value = body.get(name)
    if value in (None, ""):
        return None
    if not is_upload_id(value):
        raise BadRequest(f"{name} must be an upload ID (up- and 32 hex characters) from the upload action")
    return value


def validate_repo(repo: object) -> str:
    if not isinstance(repo, str) or len(repo) > 2048:
        raise BadRequest("repo must be a string of at most 2048 characters")
    if repo.startswith("-"):
        raise BadRequest("repo may not begin with '-'")
    if _URL_OPTION_HOST_RE.match(repo):
        raise BadRequest("repo's host may not begin with '-' (it would reach ssh as an option)")
    if _TRANSPORT_RE.match(repo):
        raise BadRequest("repo may not use a git remote-helper transport such as ext::")
    if _CONTROL_RE.search(repo) or " " in repo:
        raise BadRequest("repo may not contain spaces or control characters")
    if _URL_CREDENTIALS_RE.match(repo) or _HTTP_USERINFO_RE.match(repo):
        raise BadRequest("repo may not carry a password or token in its URL; configure git credentials on the server instead")
    if not (_URL_RE.match(repo) or _SCP_RE.match(repo) or repo.startswith("/")):
        raise BadRequest("repo must be an https://, ssh://, git:// or file:// URL, user@host:path, or an absolute path")
    return repo


def validate_branch(branch: object) -> str:
    if not isinstance(branch, str) or len(branch) > 255:
        raise BadRequest("branch must be a string of at most 255 characters")
    if branch.startswith("-"):
        raise BadRequest("branch may not begin with '-'")
    if (
        not _BRANCH_RE.match(branch)
        or ".." in branch
        or "//" in branch
        or "@{" in branch
        or branch.endswith(("/", ".", ".lock"))
    ):
        raise BadRequest(f"branch {branch[:60]!r} is not a valid git branch or tag name")
    return branch


def validate_image(image: object) -> str:
    """A Docker reference: [HOST[:PORT]/]path[:tag][@digest], the path lowercase.

    The first component is a registry host only when it has a '.' or a ':' or is `localhost`
    (how docker and podman split it); otherwise it is part of the path, so `LOCALHOST/x:1` is a
    path with upper case that every registry refuses: refuse it here, naming the rule, rather
    than let the run fail to pull it.
    """
    shown = image[:60] if isinstance(image, str) else type(image).__name__
    if not isinstance(image, str) or len(image) > 512 or not _image_re().match(image):
        raise BadRequest(f"image {shown!r} is not a valid image reference: [HOST[:PORT]/]PATH[:TAG][@DIGEST] "
                         "with a lowercase PATH (e.g. python:3.11, ghcr.io/owner/repo:tag)")
    first, slash, _ = image.partition("/")
    if slash and not ("." in first or ":" in first or first == "localhost") and first != first.lower():
        raise BadRequest(f"image {shown!r} is not a valid image reference: the repository path must be lowercase "
                         f"({first!r} is not a registry host: a host has a '.' or a ':PORT', or is localhost)")
    return image


def validate_env(env: object) -> dict[str, str]:
    if env is None:
        return {}
    if not isinstance(env, dict):
        raise BadRequest("env must be an object of string keys and string values")
    if len(env) > MAX_ENV_VARS:
        raise BadRequest(f"env has more than {MAX_ENV_VARS} variables")
    for key, value in env.items():
        if not ENV_KEY_RE.match(key):
            raise BadRequest(f"env key {key[:60]!r} must match [A-Za-z_][A-Za-z0-9_]*")
        if key.upper().startswith("MYCLI_"):  # the script's own variables are mycli_* and MYCLI_*
            raise BadRequest(f"env key {key!r} uses the reserved prefix MYCLI_ (in any case)")
        if not isinstance(value, str):
            raise BadRequest(f"env value of {key!r} must be a string")
    return dict(env)


def _ref(body: dict) -> Ref:
    execution_id = body.get("execution_id")
    task_arn = body.get("task_arn")
    if execution_id in (None, "") and task_arn in (None, ""):
        raise BadRequest("execution_id or task_arn is required")
    if execution_id not in (None, ""):
        if not isinstance(execution_id, str) or not is_execution_id(execution_id):
            raise BadRequest("execution_id must be 12 lowercase hex characters")
        return Ref(execution_id=execution_id)
    if not isinstance(task_arn, str) or len(task_arn) > 2048 or _CONTROL_RE.search(task_arn):
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
