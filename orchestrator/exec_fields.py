"""The exec fields that reach the shell script or a container runtime: repo, branch, image, env.

Pure. Each validator takes whatever JSON gave and returns the value or raises BadRequest naming
the rule: no value that could become a git option, a remote-helper transport, an image name the
registry would refuse, or a variable that overrides the script's own.
"""

from __future__ import annotations

import functools
import re

from .errors import BadRequest

MAX_ENV_VARS = 200
# Every engine's cap on env, counted as execve counts an environment: the UTF-8 bytes of each
# KEY=VALUE and its terminating NUL. RunTask's overrides hold 8,192 characters; the AWS engine
# carries env inside the executor's packed script, and with at most this much env (even
# incompressible) any ordinary command up to MAX_COMMAND_BYTES still fits there. One limit, checked
# here, so a run the embedded engine takes is never one AWS refuses for its env.
MAX_ENV_BYTES = 8 * 1024

ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
_TRANSPORT_RE = re.compile(r"^[A-Za-z0-9+.-]+::")
_URL_RE = re.compile(r"^(https?|ssh|git|file)://[^/\s]*(/.*)?\Z")
_URL_CREDENTIALS_RE = re.compile(r"^[a-z]+://[^/@]*:[^/@]*@")
_URL_OPTION_HOST_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://(?:[^/@]*@)?-")  # ssh://-oProxyCommand=...
_URL_USERINFO_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)([^/@]*)@")
# A user part that is a token (https://ghp_xxx@github.com/...): GitHub's and GitLab's token
# prefixes, a classic 40-hex GitHub token, or anything as long as a secret (no user name is).
_TOKEN_USER_RE = re.compile(r"^(gh[opsur]_|github_pat_|gl[a-z]{2,6}-)|^[0-9a-fA-F]{40}\Z|^.{32,}\Z", re.S)
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


CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def validate_repo(repo: object) -> str:
    if not isinstance(repo, str) or len(repo) > 2048:
        raise BadRequest("repo must be a string of at most 2048 characters")
    if repo.startswith("-"):
        raise BadRequest("repo may not begin with '-'")
    if _URL_OPTION_HOST_RE.match(repo):
        raise BadRequest("repo's host may not begin with '-' (it would reach ssh as an option)")
    if _TRANSPORT_RE.match(repo):
        raise BadRequest("repo may not use a git remote-helper transport such as ext::")
    if CONTROL_RE.search(repo) or " " in repo:
        raise BadRequest("repo may not contain spaces or control characters")
    if _URL_CREDENTIALS_RE.match(repo) or url_user_is_secret(repo):
        raise BadRequest("repo may not carry a password or token in its URL (a user name is fine: ssh://git@host/...); "
                         "configure git credentials on the server instead")
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
    if slash and registry_host(image) is None and first != first.lower():
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
    size = env_bytes(env)
    if size > MAX_ENV_BYTES:
        raise BadRequest(f"env is {size:,} bytes, over the {MAX_ENV_BYTES:,}-byte limit (the same on every engine); "
                         "put large values in a file and pass it with --upload, or read them from the repo")
    return dict(env)


def env_bytes(env: dict[str, str]) -> int:
    """An environment's size as the kernel counts it: KEY=VALUE and a NUL per variable, in UTF-8."""
    return sum(len(key.encode()) + len(value.encode("utf-8", "surrogatepass")) + 2 for key, value in env.items())


def url_user_is_secret(url: str) -> bool:
    """Whether the user part of `url` (scheme://USER@host/...) looks like a token, not a name."""
    match = _URL_USERINFO_RE.match(url)
    return bool(match) and bool(_TOKEN_USER_RE.match(match.group(2).partition(":")[0]))


def split_userinfo(url: str) -> tuple[str, str | None, bool, str]:
    """(scheme://, user or None, whether a password follows it, the rest after '@') — the one
    parse of a URL's user part, for showing it without its secret and stripping only that."""
    match = _URL_USERINFO_RE.match(url)
    if not match:
        return "", None, False, url
    user, colon, _ = match.group(2).partition(":")
    return match.group(1), user, bool(colon), url[match.end():]


def display_repo(repo: str) -> str:
    """The repo as shown (the log header, the client's lines): its user name kept
    (`ssh://git@host`), a password or a token in its place masked — validation refuses those,
    but the client prints its lines before the API answers."""
    scheme, user, password, rest = split_userinfo(repo)
    if user is None:
        return repo
    return f"{scheme}{'***' if url_user_is_secret(repo) else user}{':***' if password else ''}@{rest}"


def registry_host(image: str) -> str | None:
    """The registry an image reference names, or None (Docker Hub's). The first component is a
    host only when it has a '.' or a ':' or is `localhost` — how docker and podman split it."""
    first, slash, _ = image.partition("/")
    return first if slash and ("." in first or ":" in first or first == "localhost") else None
