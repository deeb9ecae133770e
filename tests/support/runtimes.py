"""The embedded engine's runtimes as test parameters: host, docker and podman.

Container runtimes come from `.ci/containers.sh` (MYCLI_TEST_DOCKER / MYCLI_TEST_PODMAN, the test
images, DOCKER_HOST, CONTAINERS_CONF...). Without them a container test skips, saying how to get
them; with MYCLI_REQUIRE_CONTAINERS=1 (set by .ci/run) that skip is a failure (tests/conftest.py).
Containers in tests use `--network host` only (MYCLI_CONTAINER_NETWORK): nothing leaves this
machine, and a container reaches the test servers on 127.0.0.1.
"""

from __future__ import annotations

import os
import subprocess

import pytest

RUNTIMES = ("host", "docker", "podman")
CONTAINER_RUNTIMES = ("docker", "podman")
HOW = "start real runtimes first: source .ci/containers.sh; containers_install; containers_start (as root)"


def require(runtime: str) -> None:
    """Skip (fail under MYCLI_REQUIRE_CONTAINERS=1) when `runtime` is not set up here."""
    if runtime != "host" and not os.environ.get(f"MYCLI_TEST_{runtime.upper()}"):
        pytest.skip(f"no {runtime} for tests here ({HOW})")


def busybox() -> str:
    return os.environ["MYCLI_TEST_IMAGE_BUSYBOX"]


def git_image() -> str:
    return os.environ["MYCLI_TEST_IMAGE_GIT"]


def server_env(runtime: str, **extra: str) -> dict[str, str]:
    """What start_server needs to run an engine on `runtime` (the busybox image by default)."""
    env = {"MYCLI_LOCAL_RUNTIME": runtime}
    if runtime != "host":
        env.update(MYCLI_CONTAINER_NETWORK="host", DEFAULT_IMAGE=busybox())
    env.update(extra)
    return env


def client(runtime: str, *args: str, check: bool = False, timeout: float = 60,
           input_bytes: bytes | None = None) -> subprocess.CompletedProcess:
    """The runtime's own client, as a test asks it (inspect, ps, rmi, import from stdin...)."""
    result = subprocess.run([runtime, *args], capture_output=True, check=check, timeout=timeout, input=input_bytes,
                            stdin=subprocess.DEVNULL if input_bytes is None else None)
    return subprocess.CompletedProcess(result.args, result.returncode, result.stdout.decode("utf-8", "replace"),
                                       result.stderr.decode("utf-8", "replace"))


def containers_of(runtime: str, execution_id: str) -> list[str]:
    """Containers of any state labelled with this execution: what a run leaves behind."""
    if runtime == "host":
        return []
    listed = client(runtime, "ps", "-aq", "--filter", f"label=mycli.execution={execution_id}", check=True)
    return listed.stdout.split()


def processes_with(marker: str) -> list[str]:
    """Command lines holding `marker`, on the host and in every container (rootful runtimes'
    processes are the host's too), but not this search itself."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                args = fh.read().replace(b"\0", b" ").decode("utf-8", "replace")
            with open(f"/proc/{pid}/stat", "rb") as fh:
                zombie = fh.read().rsplit(b")", 1)[1].split()[0] == b"Z"
        except OSError:
            continue
        if marker in args and not zombie:
            found.append(f"{pid}: {args}")
    return found


def build_image(runtime: str, tag: str, dockerfile: str, directory, files: dict[str, str] | None = None) -> None:
    """`runtime build` of `dockerfile` (FROM the test busybox, nothing fetched) in `directory`,
    with `files` (name → text, mode 0755) beside it: images a test needs with their own
    ENTRYPOINT, WORKDIR or /bin/sh."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "Dockerfile").write_text(dockerfile.format(busybox=busybox()))
    for name, text in (files or {}).items():
        (directory / name).write_text(text)
        (directory / name).chmod(0o755)
    built = client(runtime, "build", "-q", "-t", tag, str(directory), timeout=120)
    assert built.returncode == 0, built.stdout + built.stderr
