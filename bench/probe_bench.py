"""How long `auto` spends on a docker daemon that accepts connections and never answers, before
it goes on to podman or the host: the probe with its /_ping first, against the same probe without
it (what the engine did before: the client waits out the whole probe's deadline). Same run, the
same silent unix socket (a listener that never reads), docker's real client. And what the ping
adds to the probe of a working dockerd (.ci/containers.sh's), interleaved with the probe without it."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import time
from pathlib import Path

from harness import Row


def hung_docker_probe(quick: bool) -> list[Row]:
    from orchestrator.engines.local_probe import PING_SECONDS, Prober, ProbeFailed
    from orchestrator.engines.local_runtime import ContainerRuntime

    if shutil.which("docker") is None:
        return [Row("auto's probe of a hung docker: not measured (no docker client here)", None, "", None, "", False)]
    n = 1 if quick else 3
    with tempfile.TemporaryDirectory(prefix="mycli-probe-bench-") as tmp:
        sock_path = Path(tmp) / "silent.sock"
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(sock_path))
        listener.listen(64)
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": tmp, "DOCKER_HOST": f"unix://{sock_path}"}
        runtime = ContainerRuntime.find("docker", env, "bench", None)
        with_ping, without = [], []
        try:
            for _ in range(n):  # interleaved, so the machine's load hits both alike
                for ping, times in ((PING_SECONDS, with_ping), (0, without)):
                    started = time.monotonic()
                    try:
                        Prober(runtime, Path(tmp) / "probe", ping_seconds=ping).run()
                    except ProbeFailed:
                        pass
                    times.append(time.monotonic() - started)
        finally:
            listener.close()
    ours, base = sorted(with_ping)[len(with_ping) // 2], sorted(without)[len(without) // 2]
    return [Row("auto's probe of a hung docker until it gives up (median)", ours,
                "probe without the /_ping", base,
                "≤ 0.5×", ours <= 0.5 * base, unit="s", note=f"{n} interleaved pairs; ping window {PING_SECONDS:.0f} s")]


def healthy_docker_probe(quick: bool) -> list[Row]:
    from orchestrator.engines.local_probe import PING_SECONDS, Prober
    from orchestrator.engines.local_runtime import ContainerRuntime

    if not os.environ.get("MYCLI_TEST_DOCKER"):
        return [Row("the probe of a working docker: not measured (start .ci/containers.sh)", None, "", None, "", False)]
    n = 5 if quick else 15
    with tempfile.TemporaryDirectory(prefix="mycli-probe-bench-") as tmp:
        runtime = ContainerRuntime.find("docker", os.environ, "bench", None)
        with_ping, without = [], []
        for i in range(n + 1):  # one warm-up pair (the probe image's import), not counted
            for ping, times in ((PING_SECONDS, with_ping), (0, without)):
                started = time.monotonic()
                Prober(runtime, Path(tmp) / "probe", ping_seconds=ping).run()
                if i:
                    times.append(time.monotonic() - started)
    ours, base = sorted(with_ping)[len(with_ping) // 2], sorted(without)[len(without) // 2]
    return [Row("the probe of a working docker, with its /_ping (median)", ours * 1000, "probe without the /_ping",
                base * 1000, "≤ 1.05×", ours <= 1.05 * base, unit="ms", note=f"{n} interleaved pairs")]
