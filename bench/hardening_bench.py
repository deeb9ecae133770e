"""The hardening figures (issue 11), each beside a baseline measured in the same run: `/health`
under a half-open connection flood, the engine's memory while four followers page a log of
long lines and while a full disk holds back long lines, and how long a stop takes when a
descendant left the process group and ignores SIGTERM."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from harness import Row, percentile, server_process

PY = sys.executable
LINE_CHARS = 256 * 1024


class Engine:
    """A real `mycli server --port 0` on its own state dir, spoken to over plain HTTP."""

    def __init__(self, home: Path, proc: subprocess.Popen, url: str, key: str):
        self.home, self.proc, self.url, self.key = home, proc, url, key

    def call(self, payload: dict, timeout: float = 120) -> dict:
        req = urllib.request.Request(f"{self.url}/execute", data=json.dumps(payload).encode(), method="POST",
                                     headers={"X-API-Key": self.key, "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read())

    def run(self, command: str, timeout: float = 600) -> dict:
        started = self.call({"action": "exec", "command": command, "skip_git": True})
        return self.wait(started["execution_id"], timeout)

    def wait(self, execution_id: str, timeout: float = 600) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            page = self.call({"action": "logs", "execution_id": execution_id, "wait_seconds": 10, "limit": 1,
                              "next_token": "999999999999"})
            if page["status"] == "STOPPED":
                return self.call({"action": "status", "execution_id": execution_id})
        raise TimeoutError(execution_id)

    def rss_mib(self, field: str = "VmRSS") -> float:
        with open(f"/proc/{self.proc.pid}/status") as fh:
            return int(re.search(rf"{field}:\s+(\d+) kB", fh.read()).group(1)) / 1024


@contextmanager
def engine(home: Path | None = None, **env: str):
    home = home or Path(tempfile.mkdtemp(prefix="mycli-bench-hardening-"))
    with server_process(home, {**os.environ, "MYCLI_LOCAL_RUNTIME": "host", **env}) as (proc, url, key):
        yield Engine(home, proc, url, key)


def _health_ms(url: str, timeout: float = 10.0) -> float:
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as resp:
            resp.read()
    except OSError:
        return timeout * 1000  # timed out or refused: counted as the whole timeout
    return (time.perf_counter() - started) * 1000


def health_under_flood(quick: bool) -> list[Row]:
    """/health latency while connections that send half a header are opened as fast as four
    threads can (the oldest hung up beyond 4,000), measured from the flood's first second on,
    beside the same engine with no flood."""
    size, samples = (1000 if quick else 4000), (50 if quick else 200)
    with engine() as eng:
        calm = [_health_ms(eng.url) for _ in range(samples)]
        host, port = eng.url.split("//")[1].split(":")
        stop, opened, lock = threading.Event(), [], threading.Lock()

        def flood() -> None:
            while not stop.is_set():
                try:
                    conn = socket.create_connection((host, int(port)), timeout=5)
                    conn.sendall(b"GET /health HTTP/1.1\r\nHost: flood\r\nX-Half: ")
                except OSError:
                    continue
                with lock:
                    opened.append(conn)
                    while len(opened) > size:
                        opened.pop(0).close()  # hang up the oldest, keep `size` open

        flooders = [threading.Thread(target=flood, daemon=True) for _ in range(4)]
        for thread in flooders:
            thread.start()
        time.sleep(1.0)
        stormy, peak_open, full_since = [], 0, None
        give_up = time.monotonic() + 180
        # from the flood's ramp until it has held `size` open for 10 s (ten timeouts say enough)
        while (len(stormy) < samples or full_since is None or time.monotonic() - full_since < 10) \
                and sum(v >= 10_000 for v in stormy) < 10 and time.monotonic() < give_up:
            stormy.append(_health_ms(eng.url))
            peak_open = max(peak_open, len(opened))
            if full_since is None and peak_open >= size:
                full_since = time.monotonic()
            time.sleep(0.02)
        stop.set()
        for thread in flooders:
            thread.join()
        for conn in opened:
            conn.close()
    timeouts = sum(1 for v in stormy if v >= 10_000)
    p99 = percentile(stormy, 99)
    return [
        Row(f"/health p50 during a {size:,}-connection half-open flood", percentile(stormy, 50),
            "/health p50, no flood", percentile(calm, 50), "—", True, unit="ms"),
        Row(f"/health p99 during a {size:,}-connection half-open flood", p99, "/health p99, no flood",
            percentile(calm, 99), "none timed out (10 s)", timeouts == 0, unit="ms",
            note=f"{len(stormy)} requests in the flood ({peak_open:,} half-open at most), {len(calm)} without; "
                 f"{timeouts} timed out (10 s each)"),
    ]


def paging_rss(quick: bool) -> list[Row]:
    """Engine RSS while four followers page a log of 256 KiB lines at once."""
    count = 100 if quick else 400
    with engine(MYCLI_MAX_LOG_MB="0") as eng, tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "long.py"
        script.write_text(f"import sys\nfor i in range({count}):\n    sys.stdout.write('%06d ' % i + 'y' * {LINE_CHARS - 8} + '\\n')\n")
        final = eng.run(f"{PY} {script}")
        rest = eng.rss_mib()

        def follow(_) -> int:
            token, got = None, 0
            while True:
                payload = {"action": "logs", "execution_id": final["execution_id"], "text": True}
                if token:
                    payload["next_token"] = token
                page = eng.call(payload)
                if not page["events"]:
                    return got
                got += len(page["events"])
                token = page["next_token"]

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(follow, range(4)))
        peak = eng.rss_mib("VmHWM")
    return [Row(f"engine peak RSS, 4 followers paging {count} × 256 KiB lines", peak, "engine RSS at rest",
                rest, "growth ≤ 4 × 4 × 1 MiB + slack", peak - rest <= 64, unit="MiB",
                note=f"growth {peak - rest:.0f} MiB")]


def full_disk_rss(quick: bool) -> list[Row]:
    """Engine RSS while its disk is full and a run prints 256 KiB lines (root: mounts a tmpfs)."""
    count = 200 if quick else 1000
    with tempfile.TemporaryDirectory() as tmp:
        disk = Path(tmp) / "disk"
        disk.mkdir()
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(disk)], capture_output=True)
        if mounted.returncode != 0:
            return [Row("full-disk RSS: skipped (cannot mount a tmpfs; run as root)", None, "", None, "", False)]
        try:
            script = Path(tmp) / "long.py"
            script.write_text(f"import os, sys\nfor i in range({count}):\n    sys.stdout.write('%06d ' % i + 'x' * {LINE_CHARS - 8} + '\\n')\n"
                              "sys.stdout.flush()\nos.remove('filler')\n")
            with engine(home=disk) as eng:
                rest = eng.rss_mib()
                started = time.perf_counter()
                final = eng.run(f"cat /dev/zero > filler 2>/dev/null; {PY} {script}; sleep 1; echo end")
                elapsed = time.perf_counter() - started
                peak = eng.rss_mib("VmHWM")
        finally:
            subprocess.run(["umount", "-l", str(disk)], check=False)
    return [Row(f"engine peak RSS, full disk, {count} × 256 KiB lines", peak, "engine RSS at rest", rest,
                "growth ≤ 4 MiB held + slack", peak - rest <= 64, unit="MiB",
                note=f"growth {peak - rest:.0f} MiB; exit {final['exit_code']}; {elapsed:.1f} s")]


def stop_with_escapee(quick: bool) -> list[Row]:
    """stop → STOPPED when the script and a `setsid` descendant both ignore SIGTERM (5 s grace,
    then SIGKILL), beside a plain `sleep` run."""
    n = 2 if quick else 5
    timings = {"plain": [], "escaped": []}
    commands = {  # the script ignores SIGTERM too, so the grace period is spent in full
        "plain": "sleep 300",
        "escaped": "trap '' TERM; setsid sh -c 'trap \"\" TERM; while :; do sleep 0.1; done' & "
                   "while :; do sleep 0.1; done",
    }
    with engine() as eng:
        for _ in range(n):
            for name, command in commands.items():
                execution_id = eng.call({"action": "exec", "command": command, "skip_git": True})["execution_id"]
                time.sleep(0.5)
                started = time.perf_counter()
                eng.call({"action": "stop", "execution_id": execution_id})
                try:
                    eng.wait(execution_id, timeout=30)
                    timings[name].append((time.perf_counter() - started) * 1000)
                except TimeoutError:
                    timings[name].append(30_000.0)
    escaped, plain = percentile(timings["escaped"], 50), percentile(timings["plain"], 50)
    return [Row("stop → STOPPED, script + setsid child ignore SIGTERM (p50)", escaped, "plain sleep run (p50)",
                plain, "≤ plain + 5 s grace + 1 s", escaped <= plain + 6000, unit="ms",
                note="30,000 ms means it never stopped (the run wedged)")]
