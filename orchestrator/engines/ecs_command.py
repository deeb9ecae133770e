"""The container command and RunTask overrides, within ECS's 8,192-character overrides limit.

A script that fits runs as `["/bin/sh", "-c", script]`, readable as is in the console. A longer
one travels gzip-compressed and base64-encoded inside a small sh program that decodes it with
`base64 -d | gunzip` (coreutils, busybox and toybox all have both) and `eval`s it in the same
shell: no temporary file, no pipe on the script's stdin (the user's command keeps its own), and
no single argument larger than the kernel's per-argument limit. When even that exceeds the
overrides limit (typical 64 KiB code compresses 3-5x, base64 adds a third), the packed program
goes into the container command of a one-off task definition revision instead (a task
definition may hold 64 KiB), and the overrides carry only the environment. What still does not
fit is refused with a 400 that names the limits, before anything starts.
"""

from __future__ import annotations

import base64
import gzip
import json
from dataclasses import dataclass

from ..errors import BadRequest
from ..sizes import Size, cpu_units

MAX_OVERRIDES_CHARS = 8192  # RunTask's limit, JSON punctuation included
OVERRIDES_MARGIN = 192  # kept free: AWS does not say how it counts beyond "characters"
MAX_DEFINITION_COMMAND_CHARS = 60 * 1024  # of a task definition's 64 KiB, leaving room for the rest

_DECODER = (
    "mycli_s=$(printf '%s' '{payload}' | base64 -d | gunzip) && [ -n \"$mycli_s\" ] || "
    "{{ echo 'ERROR: could not decode the mycli script: this image needs base64 and gunzip "
    "for commands longer than about 8 KB' >&2; exit 127; }}; eval \"$mycli_s\""
)


def packed(script: str) -> str:
    """A sh program that rebuilds `script` from its gzip+base64 form and runs it in-process."""
    payload = base64.b64encode(gzip.compress(script.encode("utf-8"), compresslevel=9, mtime=0)).decode("ascii")
    return _DECODER.format(payload=payload)


def overrides_for(container: str, command: list[str], env: dict[str, str], size: Size | None = None) -> dict:
    """RunTask's overrides. A size becomes the task's cpu (CPU units) and memory (MiB), as strings,
    *and* the executor's own memory limit: its definition's hard 512 MiB would otherwise cap a
    larger task, and ECS refuses a container limit above a smaller task's."""
    override: dict = {
        "name": container,
        "command": command,
        "environment": [{"name": k, "value": v} for k, v in env.items()],
    }
    overrides: dict = {"containerOverrides": [override]}
    if size is not None:
        overrides["cpu"], overrides["memory"] = str(cpu_units(size.cpu)), str(size.memory)
        override["memory"] = size.memory
    return overrides


def overrides_size(overrides: dict) -> int:
    """Characters of the overrides as botocore sends them: json.dumps with its defaults, so every
    non-ASCII character travels as a 6-character \\uXXXX escape (12 for one outside the BMP).
    AWS counts what it receives, punctuation included."""
    return len(json.dumps(overrides))


def fits(overrides: dict) -> bool:
    return overrides_size(overrides) <= MAX_OVERRIDES_CHARS - OVERRIDES_MARGIN


@dataclass(frozen=True)
class Launch:
    """How a script reaches the container: `overrides` for RunTask, and when the script had to
    travel in a one-off task definition, the container command to register there."""

    overrides: dict
    mode: str  # "plain", "packed" or "definition"
    definition_command: list[str] | None = None
    definition_commands: dict[str, list[str]] | None = None  # container → command (a task's helpers)


def build_launch(container: str, script: str, env: dict[str, str], size: Size | None = None) -> Launch:
    """The cheapest transport that fits, or BadRequest naming the limits (the size counts too)."""
    plain = overrides_for(container, ["/bin/sh", "-c", script], env, size)
    if fits(plain):
        return Launch(plain, "plain")
    program = packed(script)
    small = overrides_for(container, ["/bin/sh", "-c", program], env, size)
    if fits(small):
        return Launch(small, "packed")
    env_only = overrides_for(container, [], env, size)
    del env_only["containerOverrides"][0]["command"]
    env_size = overrides_size(env_only)
    if not fits(env_only):
        raise BadRequest(
            f"env does not fit in ECS RunTask's {MAX_OVERRIDES_CHARS:,}-character overrides limit "
            f"({env_size:,} characters as sent, non-ASCII escaped); pass less in env"
        )
    if len(program) > MAX_DEFINITION_COMMAND_CHARS:
        raise BadRequest(
            f"the command is too large for ECS even compressed ({len(program):,} characters; RunTask overrides "
            f"allow {MAX_OVERRIDES_CHARS:,} and a task definition about {MAX_DEFINITION_COMMAND_CHARS // 1024} KiB); "
            "put the command in a script in your repo"
        )
    return Launch(env_only, "definition", ["/bin/sh", "-c", program])


def build_task_launch(scripts: dict[str, str], containers: list[str], env: dict[str, str],
                      size: Size | None = None, container_env: dict[str, dict[str, str]] | None = None,
                      executor: str = "executor") -> Launch:
    """RunTask overrides for a task of several containers: `scripts` (container → script, the
    helper containers' own) travel packed (the helper image has base64 and gunzip), `env` goes
    to every container in `containers`, `container_env` to the one it names, a size becomes the
    task's cpu (CPU units) and memory (MiB) and the executor's memory limit (the containers only
    reserve memory, so the limit is the size asked, as on the embedded engine). Too large for the overrides: the commands go into a
    one-off task definition and the overrides carry only the environment (and the size)."""
    commands = {name: ["/bin/sh", "-c", packed(script)] for name, script in scripts.items()}
    sized = {"cpu": str(cpu_units(size.cpu)), "memory": str(size.memory)} if size is not None else {}

    def override(container: str, with_command: bool) -> dict:
        answer: dict = {"name": container}
        if with_command and container in commands:
            answer["command"] = commands[container]
        answer["environment"] = [{"name": k, "value": v}
                                 for k, v in {**env, **(container_env or {}).get(container, {})}.items()]
        if size is not None and container == executor:
            answer["memory"] = size.memory
        return answer

    with_commands = {"containerOverrides": [override(c, True) for c in containers], **sized}
    if fits(with_commands):
        return Launch(with_commands, "packed")
    env_only = {"containerOverrides": [override(c, False) for c in containers], **sized}
    if not fits(env_only):
        raise BadRequest(
            f"env does not fit in ECS RunTask's {MAX_OVERRIDES_CHARS:,}-character overrides limit "
            f"({overrides_size(env_only):,} characters as sent, non-ASCII escaped); pass less in env"
        )
    packed_chars = sum(len(c[2]) for c in commands.values())
    if packed_chars > MAX_DEFINITION_COMMAND_CHARS:
        raise BadRequest(
            f"the command is too large for ECS even compressed ({packed_chars:,} characters; RunTask overrides "
            f"allow {MAX_OVERRIDES_CHARS:,} and a task definition about {MAX_DEFINITION_COMMAND_CHARS // 1024} KiB); "
            "put the command in a script in your repo"
        )
    return Launch(env_only, "definition", definition_commands=commands)
