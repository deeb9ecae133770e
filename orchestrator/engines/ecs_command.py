"""The container command and RunTask overrides, within ECS's 8,192-character overrides limit.

A script that fits runs as `["/bin/sh", "-c", script]`, readable as is in the console. A longer
one travels gzip-compressed and base64-encoded inside a small sh program that decodes it with
`base64 -d | gunzip` (coreutils, busybox and toybox all have both) and `eval`s it in the same
shell: no temporary file, no pipe on the script's stdin (the user's command keeps its own), and
no single argument larger than the kernel's per-argument limit. What still does not fit is
refused with a 400 that names the limit, before anything starts.
"""

from __future__ import annotations

import base64
import gzip
import json

from ..errors import BadRequest

MAX_OVERRIDES_CHARS = 8192

_DECODER = (
    "mycli_s=$(printf '%s' '{payload}' | base64 -d | gunzip) && [ -n \"$mycli_s\" ] || "
    "{{ echo 'ERROR: could not decode the mycli script: this image needs base64 and gunzip "
    "for commands longer than about 8 KB' >&2; exit 127; }}; eval \"$mycli_s\""
)


def packed(script: str) -> str:
    """A sh program that rebuilds `script` from its gzip+base64 form and runs it in-process."""
    payload = base64.b64encode(gzip.compress(script.encode("utf-8"), compresslevel=9, mtime=0)).decode("ascii")
    return _DECODER.format(payload=payload)


def overrides_for(container: str, command: list[str], env: dict[str, str]) -> dict:
    return {
        "containerOverrides": [
            {
                "name": container,
                "command": command,
                "environment": [{"name": k, "value": v} for k, v in env.items()],
            }
        ]
    }


def overrides_size(overrides: dict) -> int:
    """Characters of the overrides as JSON; AWS counts the punctuation too (ours is a bit generous)."""
    return len(json.dumps(overrides, ensure_ascii=False))


def build_overrides(container: str, script: str, env: dict[str, str]) -> tuple[dict, bool]:
    """(overrides, compressed?) for RunTask, or BadRequest when even the packed form is too big."""
    plain = overrides_for(container, ["/bin/sh", "-c", script], env)
    if overrides_size(plain) <= MAX_OVERRIDES_CHARS:
        return plain, False
    small = overrides_for(container, ["/bin/sh", "-c", packed(script)], env)
    size = overrides_size(small)
    if size <= MAX_OVERRIDES_CHARS:
        return small, True
    env_size = overrides_size(overrides_for(container, [], env))
    raise BadRequest(
        f"the command does not fit in ECS RunTask's {MAX_OVERRIDES_CHARS:,}-character overrides limit "
        f"even compressed ({size:,} characters, of which env takes {env_size:,}); "
        "put the command in a script in your repo, or pass less in env"
    )
