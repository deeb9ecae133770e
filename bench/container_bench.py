"""exec → STOPPED for `true` in a container, against the runtime's own `run --rm IMAGE true`.

Both sides in the same run, interleaved (the machine's load hits both alike), with the same
network mode: under a dockerd started with --bridge=none, `--network none` costs 100-200 ms a
container more than `host`, so the engine is set to the baseline's mode. The engine is driven
from an API client that is already running, as a notebook or a script would drive it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time

from engine_bench import engine, wait_stopped
from harness import Row, percentile

NETWORK = "host"


def exec_to_stopped_in_a_container(quick: bool) -> list[Row]:
    image = os.environ.get("MYCLI_BENCH_IMAGE") or os.environ.get("MYCLI_TEST_IMAGE_BUSYBOX")
    rows = []
    for runtime in ("docker", "podman"):
        missing = _missing(runtime, image)
        if missing:
            rows.append(Row(f"exec → STOPPED for `true` in {runtime}: not measured ({missing})", None, "", None, "", False))
            continue
        rows.append(_measure(runtime, image, 10 if quick else 30))
    return rows


def _missing(runtime: str, image: str | None) -> str:
    if image is None:
        return "set MYCLI_BENCH_IMAGE, or start .ci/containers.sh for its busybox image"
    if shutil.which(runtime) is None:
        return f"no {runtime} here"
    if subprocess.run([runtime, "image", "inspect", image], capture_output=True).returncode != 0:
        return f"{runtime} has no {image}"
    return ""


def _measure(runtime: str, image: str, n: int) -> Row:
    baseline_argv = [runtime, "run", "--rm", "--network", NETWORK, image, "true"]
    base, ours = [], []
    with engine(runtime, MYCLI_CONTAINER_NETWORK=NETWORK) as (client, _):
        for i in range(n + 2):  # two warm-up rounds, not counted
            t = time.perf_counter()
            subprocess.run(baseline_argv, check=True, capture_output=True)
            base_ms = (time.perf_counter() - t) * 1000
            t = time.perf_counter()
            started = client.exec({"command": "true", "skip_git": True, "image": image})
            final = wait_stopped(client, started["execution_id"])
            ours_ms = (time.perf_counter() - t) * 1000
            if final["exit_code"] != 0:
                raise RuntimeError(f"the run ended with exit code {final['exit_code']}")
            if i >= 2:
                base.append(base_ms)
                ours.append(ours_ms)
    p50, base50 = percentile(ours, 50), percentile(base, 50)
    return Row(f"exec → STOPPED for `true` in {runtime} (busybox, p50)", p50,
               f"{runtime} run --rm (p50)", base50, "≤ 1.2×", p50 <= 1.2 * base50, unit="ms",
               note=f"{n} interleaved pairs, --network {NETWORK} on both sides; p90 {percentile(ours, 90):.0f} ms "
                    f"vs {percentile(base, 90):.0f} ms")
