"""Per-project settings (`.mycli.yaml`) and the one function that decides what an exec sends.

`resolve_exec_settings` is shared by the terminal (`mycli exec`) and the notebook magic
(`%%mycli`), so both apply the same priority — flags > `.mycli.yaml` > git auto-detect > an
error naming the fixes — and tell the user, in the same "→ ..." lines, where each value came
from.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, NamedTuple

from orchestrator.exec_fields import ENV_KEY_RE, display_repo
from orchestrator.units import human_size

from . import gitdetect
from .errors import ConfigError, UsageError
from .size import choose_size, size_keys

PROJECT_FILE = ".mycli.yaml"
PROJECT_KEYS = ("repo", "branch", "image", "env", "timeout", "cpu", "memory")
DEFAULT_BRANCH = "main"  # the API's default; shown so the user sees what will be cloned
MAX_COMMAND_SHOWN = 70


@dataclass(frozen=True)
class ProjectConfig:
    path: Path
    repo: str | None = None
    branch: str | None = None
    image: str | None = None
    env: Mapping[str, str] | None = None
    timeout: int | None = None
    cpu: float | None = None
    memory: int | None = None


class ResolvedExec(NamedTuple):
    """`payload`: the exec request body without `action`; `lines`: "→ ..." lines to show."""

    payload: dict
    lines: list[str]


def find_project_file(cwd: Path) -> Path | None:
    """`.mycli.yaml` in `cwd` or the nearest parent that has one, never above the git root.

    Outside a git work tree only `cwd` itself is looked at, so a stray file in a home
    directory never silently applies to unrelated work.
    """
    cwd = Path(cwd).resolve()
    root = gitdetect.find_git_root(cwd)
    directories = [cwd] if root is None else [cwd, *cwd.parents][: len(cwd.parts) - len(root.parts) + 1]
    for directory in directories:
        candidate = directory / PROJECT_FILE
        if candidate.is_file():
            return candidate
    return None


def load_project_file(path: Path) -> ProjectConfig:
    """Parse and check one `.mycli.yaml`; every problem is a ConfigError naming file and key."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or "invalid syntax"
        raise ConfigError(f"{where}: not valid YAML ({problem}); fix it or delete it") from None
    if data is None:
        return ProjectConfig(path=path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: must be a mapping with keys {', '.join(PROJECT_KEYS)}")
    for key in data:
        if key not in PROJECT_KEYS:
            raise ConfigError(f"{path}: unknown key {str(key)!r} (allowed: {', '.join(PROJECT_KEYS)})")
    values = {name: _string(path, data, name) for name in ("repo", "branch", "image")}
    timeout = data.get("timeout")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int)):
        raise ConfigError(f"{path}: key 'timeout' must be a whole number of seconds (e.g. timeout: 3600)")
    from orchestrator.validation import MAX_TIMEOUT_SECONDS  # the API's own bound

    if timeout is not None and not 1 <= timeout <= MAX_TIMEOUT_SECONDS:
        bound = "at least 1" if timeout < 1 else f"at most {MAX_TIMEOUT_SECONDS}"
        raise ConfigError(f"{path}: key 'timeout' must be {bound} (seconds), not {timeout}")
    cpu, memory = size_keys(path, data)
    return ProjectConfig(path=path, env=_env(path, data.get("env")), timeout=timeout, cpu=cpu, memory=memory, **values)


def parse_env_pairs(pairs: Iterable[str]) -> dict[str, str]:
    """`["K=V", ...]` (the --env flags) → dict; a malformed pair is a UsageError."""
    env: dict[str, str] = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        if not sep or not ENV_KEY_RE.match(key):
            raise UsageError(f"--env {pair.split('=', 1)[0][:40]!r} must be KEY=VALUE with KEY like MY_VAR")
        env[key] = value
    return env


def resolve_exec_settings(
    command: str,
    *,
    repo: str | None = None,
    branch: str | None = None,
    image: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: int | None = None,
    skip_git: bool = False,
    cwd: Path | str | None = None,
    flag_names: Mapping[str, str] | None = None,
    cpu: object = None,
    memory: object = None,
    size_defaults: tuple[object, object, str] | None = None,
    local_changes: bool = False,
) -> ResolvedExec:
    """Decide what `exec` sends, from explicit values, `.mycli.yaml`, then git; explain it.

    Arguments are the user's explicit choices (None = not given): they win over `.mycli.yaml`
    (searched from `cwd`, default the process's cwd, up to the git root), which wins over git
    auto-detection (`origin` URL and the checked-out branch, used only when the repo itself was
    detected). `env` is merged over the file's `env`. `cpu` / `memory` (`0.5`; `4096`, `4GiB`)
    each win over the file's, then `size_defaults` (cpu, memory, where they come from); the pair
    must be one AWS Fargate runs (orchestrator.sizes). Local repository paths are made absolute
    (a relative path in `.mycli.yaml` is relative to that file). Nothing is sent anywhere.

    Returns `ResolvedExec(payload, lines)`: `payload` is the API's exec body minus `action`
    (add `dry_run` if wanted); `lines` are the "→ ..." lines telling the user where values came
    from, ending with the command. Raises ConfigError for a bad `.mycli.yaml` and UsageError
    when no repository can be found and `skip_git` is false (the message names the three fixes).
    `flag_names` maps "repo"/"skip_git" to how the caller's user spells them (default
    `--repo` / `--skip-git`), so the notebook magic can word the error in its own syntax.
    With `local_changes` the local work is carried into the run (mycli_magic.uploads), so the
    warning that the clone lacks it is not given.
    """
    names = {"repo": "--repo", "skip_git": "--skip-git", **(flag_names or {})}
    check_command_size(command)
    cwd = Path(cwd or os.getcwd()).resolve()
    if skip_git and repo:
        raise UsageError(f"{names['repo']} and {names['skip_git']} contradict each other; drop one")
    if skip_git and branch:  # nothing is cloned, so no branch is checked out
        raise UsageError(f"{names.get('branch', '--branch')} and {names['skip_git']} contradict each other; drop one")
    if image is not None and not image.strip():  # as `image: ''` in .mycli.yaml is
        raise UsageError(f"{names.get('image', '--image')} is empty; name an image (e.g. python:3.11) or leave it out "
                         "for the engine's default")
    lines: list[str] = []
    project_file = find_project_file(cwd)
    project = load_project_file(project_file) if project_file else ProjectConfig(path=cwd / PROJECT_FILE)
    if project_file:
        lines.append(f"→ Loaded configuration from {_shown_path(project_file, cwd)}")

    payload: dict = {"command": command, "skip_git": bool(skip_git)}
    if skip_git:
        lines.append("→ Mode: direct execution (git cloning skipped)")
    else:
        chosen_repo, chosen_branch = _choose_repo(repo, branch, project, cwd, lines, names, local_changes)
        payload["repo"], payload["branch"] = chosen_repo, chosen_branch
        lines.append(f"→ Repository: {display_repo(chosen_repo)}")
        lines.append(f"→ Branch: {chosen_branch}")

    chosen_image = image or project.image
    if chosen_image:
        payload["image"] = chosen_image
    lines.append(f"→ Image: {chosen_image or 'engine default'}")

    merged_env = {**(project.env or {}), **(env or {})}
    if merged_env:
        payload["env"] = merged_env
        lines.append("→ Environment: " + ", ".join(sorted(merged_env)))  # names only: values may be secrets

    chosen_timeout = timeout if timeout is not None else project.timeout
    if chosen_timeout is not None:
        payload["timeout_seconds"] = int(chosen_timeout)
        lines.append(f"→ Timeout: {int(chosen_timeout)} s")

    size = choose_size((cpu, names.get("cpu", "--cpu")), (memory, names.get("memory", "--memory")),
                       (project.cpu, project.memory, PROJECT_FILE), size_defaults)
    if size is not None:
        payload["cpu"], payload["memory"] = size.cpu, size.memory
        lines.append(f"→ Size: {size.describe()}")

    lines.append(f"→ Command: {shown_command(command)}")
    return ResolvedExec(payload, lines)


def check_command_size(command: str) -> None:
    """Refuse a command the API would refuse, before anything is sent: one message naming the
    limit, whatever the size (over the API's body limit the server would answer differently)."""
    from orchestrator.validation import MAX_COMMAND_BYTES

    size = len(command.encode("utf-8", "surrogatepass"))
    if size > MAX_COMMAND_BYTES:
        raise UsageError(f"the command is {human_size(size)}; the API takes at most {MAX_COMMAND_BYTES // 1024} KiB: "
                         "put the script in your repository (or a file the run can fetch) and run that")


def shown_command(command: str) -> str:
    """The command on one line for the summary: its first line, shortened, with a line count."""
    body = command.strip("\n")
    first = body.split("\n", 1)[0]
    count = body.count("\n") + 1
    if len(first) > MAX_COMMAND_SHOWN:
        first = first[: MAX_COMMAND_SHOWN - 1] + "…"
    return first if count == 1 else f"{first}  … ({count} lines)"


# internals ---------------------------------------------------------------------------------


def _choose_repo(
    repo: str | None, branch: str | None, project: ProjectConfig, cwd: Path, lines: list[str], names: Mapping[str, str],
    local_changes: bool = False,
) -> tuple[str, str]:
    if repo:
        return gitdetect.absolute_local_url(repo, cwd), branch or project.branch or DEFAULT_BRANCH
    if project.repo:
        return gitdetect.absolute_local_url(project.repo, project.path.parent), branch or project.branch or DEFAULT_BRANCH
    info = gitdetect.detect(cwd)
    if info is None or not info.origin_url:
        where = "this directory is not in a git repository" if info is None else f"{info.root} has no 'origin' remote"
        raise UsageError(
            f"no repository to run in ({where}): pass {names['repo']} URL, add 'repo: URL' to a {PROJECT_FILE}, "
            f"or use {names['skip_git']} to run without cloning"
        )
    note = " (credentials in the URL were not sent)" if info.credentials_stripped else ""
    lines.append(f"→ Auto-detected repository from git remote 'origin' in {info.root}{note}")
    chosen_branch = branch or project.branch or info.branch
    if chosen_branch is None:
        lines.append(f"→ HEAD is detached; using branch {DEFAULT_BRANCH} (pass --branch to choose)")
        chosen_branch = DEFAULT_BRANCH
    elif chosen_branch == info.branch and not local_changes:
        warning = gitdetect.unshared_work(info.root, chosen_branch)
        if warning:
            lines.append(f"⚠ {warning}")
    return info.origin_url, chosen_branch


def _shown_path(path: Path, cwd: Path) -> str:
    try:
        return os.path.relpath(path, cwd) if path.parent in (cwd, *cwd.parents) else str(path)
    except ValueError:
        return str(path)


def _string(path: Path, data: dict, key: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)) or str(value).strip() == "":
        raise ConfigError(f"{path}: key {key!r} must be a non-empty string (quote it: {key}: \"...\")")
    return str(value)


def _env(path: Path, env: object) -> dict[str, str] | None:
    if env is None:
        return None
    if not isinstance(env, dict):
        raise ConfigError(f"{path}: key 'env' must be a mapping of NAME: value")
    out: dict[str, str] = {}
    for name, value in env.items():
        if not isinstance(name, str) or not ENV_KEY_RE.match(name):
            raise ConfigError(f"{path}: env key {str(name)[:40]!r} must look like MY_VAR (letters, digits, _)")
        if isinstance(value, bool) or not isinstance(value, (str, int)):  # 1.10 would become "1.1"
            raise ConfigError(f"{path}: env key {name!r} must have a string value (quote it: {name}: \"...\")")
        out[name] = str(value)
    return out


