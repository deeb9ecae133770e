"""Measuring and printing: wall-clock medians of whole commands, percentiles, the table."""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator


@dataclass
class Row:
    figure: str
    value: float | None
    baseline_name: str
    baseline: float | None
    target: str
    met: bool
    unit: str = ""
    note: str = ""


@contextmanager
def server_process(home: Path, env: dict[str, str]) -> Iterator[tuple[subprocess.Popen, str, str]]:
    """A real `mycli server --port 0` with MYCLI_HOME=`home`: yields (process, base URL, API key);
    stops it (killed if a measurement wedged it) and removes `home` afterwards."""
    from mycli_magic import config

    env = {**env, "MYCLI_HOME": str(home)}
    env.pop("API_KEY_HASH", None)
    proc = subprocess.Popen([sys.executable, "-m", "mycli_magic.cli", "server", "--port", "0", "--quiet"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        ready = home / "engine" / "server.json"
        deadline = time.monotonic() + 30
        while not ready.exists():
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("mycli server did not start")
            time.sleep(0.05)
        yield proc, json.loads(ready.read_text())["url"], config.profile_values("local", env)["api_key"]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        shutil.rmtree(home, ignore_errors=True)


def median_wall(argv: list[str], n: int, env: dict | None = None) -> float:
    """Median wall time of running `argv` to completion, in ms (one warm-up run first)."""
    subprocess.run(argv, capture_output=True, env=env, check=True)
    times = []
    for _ in range(n):
        started = time.perf_counter()
        subprocess.run(argv, capture_output=True, env=env, check=True)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "ms":
        return f"{value:.1f} ms"
    if abs(value) >= 1000:
        return f"{value:,.0f} {unit}".strip()
    return f"{value:.2f} {unit}".strip()


def print_table(rows: list[Row], header: bool = True) -> None:
    if header:
        print(f"{'figure':58} {'measured':>16}  {'baseline (same run)':>34}  {'target':>26}  met")
        print("-" * 146)
    for r in rows:
        base = f"{r.baseline_name}: {_fmt(r.baseline, r.unit)}" if r.baseline_name else ""
        ratio = ""
        if r.value is not None and r.baseline:
            ratio = f" ({r.value / r.baseline:.2f}×)"
        print(f"{r.figure[:58]:58} {_fmt(r.value, r.unit) + ratio:>16}  {base[:34]:>34}  {r.target[:26]:>26}  {'yes' if r.met else 'NO'}")
        if r.note:
            print(f"    {r.note}")
