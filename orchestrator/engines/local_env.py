"""The environment a run's script starts with, on the host or given to the runtime's client
(which passes only the names it is told to the container), and the bytes for its stdin."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

from ..shell import CREDENTIAL_VARS
from ..validation import ExecRequest
from .local_runtime import CONTROL, HOST_PATH, PROXY_VARS, ContainerRuntime


def run_environment(request: ExecRequest, execution_id: str, files: Path, environ: Mapping[str, str],
                    container: ContainerRuntime | None, credentials: Mapping[str, str]) -> tuple[dict[str, str], bytes | None]:
    """(environment, bytes for the script's stdin). The request's own env is not here: the
    script exports it just before the command. Git credentials reach the script on its
    stdin (`docker run -i` for a container), never in an environment a command can read."""
    if container:  # the client's own; the container's comes from its image and the -e names
        env = dict(container.env)
    else:
        env = host_environment(environ)
    env["PYTHONUNBUFFERED"] = "1"
    env["MYCLI_EXECUTION_ID"] = execution_id
    where = Path(CONTROL) if container else files  # mounted at /mycli/... in a container
    env["MYCLI_INPUTS"], env["MYCLI_OUTPUTS"] = str(where / "inputs"), str(where / "outputs")
    if request.local_changes:
        env["MYCLI_LOCAL_CHANGES"] = str(where / "local_changes")
    if request.skip_git or not credentials:
        return env, None
    env["MYCLI_CREDENTIALS_STDIN"] = "1"
    lines = [credentials.get(name, "").replace("\n", "") for name in CREDENTIAL_VARS]
    return env, ("\n".join(lines) + "\n").encode()


def host_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """What a command on the host runtime starts with, the same whichever shell started the
    engine (a virtualenv on that shell's PATH would otherwise leak into every later run): a
    fixed PATH, the engine user's own HOME, USER and LOGNAME from the password database,
    LANG=C.UTF-8, SHELL=/bin/sh, and the engine's proxy settings (a clone may need them).
    `--env` sets anything else, PATH included."""
    import pwd

    user = pwd.getpwuid(os.getuid())
    env = {"PATH": HOST_PATH, "HOME": user.pw_dir, "LANG": "C.UTF-8", "USER": user.pw_name,
           "LOGNAME": user.pw_name, "SHELL": "/bin/sh"}
    env.update({k: environ[k] for k in PROXY_VARS if k in environ})
    return env
