"""Benchmarks of the API and the embedded engine, over real HTTP to a real `mycli server`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from harness import Row, percentile, server_process

PY = sys.executable


@contextmanager
def engine(runtime: str = "host", **extra_env: str):
    """A real `mycli server --port 0` in a fresh MYCLI_HOME; yields an ApiClient."""
    from mycli_magic import config
    from mycli_magic.client import ApiClient

    home = Path(tempfile.mkdtemp(prefix="mycli-bench-engine-"))
    env = {**os.environ, "MYCLI_HOME": str(home), "MYCLI_LOCAL_RUNTIME": runtime, **extra_env}
    with server_process(home, env) as (_, url, key):
        yield ApiClient(config.Endpoint(url=f"{url}/execute", api_key=key, profile="local"), timeout=120), env


def wait_stopped(client, execution_id: str, timeout: float = 600) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        page = client.logs(execution_id, next_token="999999999999", wait_seconds=10, limit=1)
        if page["status"] == "STOPPED":
            return page
    raise TimeoutError(execution_id)


def handler_warm(quick: bool) -> list[Row]:
    """App.handle for a status call, warm, with auth versus with auth that accepts anything."""
    from orchestrator.api import App
    from orchestrator.auth import Authenticator, generate_api_key, hash_api_key
    from orchestrator.engines.local import LocalEngine

    class AcceptAll(Authenticator):
        def check(self, key):  # the baseline: the same request path without bcrypt or the cache
            return None

    n = 500 if quick else 3000
    with tempfile.TemporaryDirectory() as state:
        local = LocalEngine(Path(state), {"PATH": os.environ["PATH"]}, runtime="host")
        key = generate_api_key()
        hashes = (hash_api_key(key).encode(),)
        with_auth = App(local, lambda: Authenticator(hashes))
        no_auth = App(local, lambda: AcceptAll(hashes))
        started = with_auth.handle(_event(key, {"action": "exec", "command": "true", "skip_git": True}))
        execution_id = json.loads(started["body"])["execution_id"]
        event = _event(key, {"action": "status", "execution_id": execution_id})
        timings = {}
        for name, app in (("auth", with_auth), ("none", no_auth)):
            app.handle(event)  # warm: the first call pays bcrypt once
            samples = []
            for _ in range(n):
                t = time.perf_counter()
                app.handle(event)
                samples.append((time.perf_counter() - t) * 1000)
            timings[name] = percentile(samples, 50)
        local.shutdown()
    auth_cost = timings["auth"] - timings["none"]
    return [
        Row("handler warm status request, auth included (local engine)", timings["auth"], "same, auth accepting all",
            timings["none"], "≤ 1.5×", timings["auth"] <= 1.5 * timings["none"], unit="ms",
            note=f"auth cost p50 = {auth_cost * 1000:.0f} µs"),
    ]


def wrong_key_timing(quick: bool) -> list[Row]:
    """A wrong key's check time must not depend on how close it is to the real key."""
    from orchestrator.auth import Authenticator, generate_api_key, hash_api_key
    from orchestrator.errors import Unauthorized

    n = 10 if quick else 30
    key = generate_api_key()
    auth = Authenticator((hash_api_key(key).encode(), hash_api_key(generate_api_key()).encode()))
    near = key[:-1] + ("0" if key[-1] != "0" else "1")
    far = generate_api_key()
    samples = {"near": [], "far": []}
    for _ in range(n):  # interleaved, so the machine's drift hits both alike
        for name, candidate in (("near", near), ("far", far)):
            t = time.perf_counter()
            try:
                auth.check(candidate)
            except Unauthorized:
                pass
            samples[name].append((time.perf_counter() - t) * 1000)
    medians = {name: percentile(values, 50) for name, values in samples.items()}
    ratio = medians["near"] / medians["far"]
    return [Row("wrong key differing in its last character (p50)", medians["near"], "a random wrong key (p50)",
                medians["far"], "ratio within 0.9–1.1", 0.9 <= ratio <= 1.1, unit="ms",
                note="two hashes configured (a rotation); a wrong key pays bcrypt for each")]


def _event(key: str, body: dict) -> dict:
    return {"httpMethod": "POST", "path": "/execute", "headers": {"X-API-Key": key}, "body": json.dumps(body)}


def exec_to_stopped(quick: bool) -> list[Row]:
    n = 15 if quick else 40
    base = []
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run(["sh", "-c", "true"], check=True)
        base.append((time.perf_counter() - t) * 1000)
    samples = []
    with engine() as (client, _):
        for _ in range(n + 3):
            t = time.perf_counter()
            started = client.exec({"command": "true", "skip_git": True})
            wait_stopped(client, started["execution_id"])
            samples.append((time.perf_counter() - t) * 1000)
    samples = samples[3:]  # warm
    p50 = percentile(samples, 50)
    base50 = percentile(base, 50)
    return [Row("exec → STOPPED for `true`, embedded engine, warm (p50)", p50, "sh -c true (p50)", base50,
                "≤ 30×", p50 <= 30 * base50, unit="ms", note=f"p90 {percentile(samples, 90):.1f} ms")]


def _plain_rate(n: int) -> float:
    """The baseline: the same n commands as plain `sh -c` processes through the same 32 threads (per s)."""
    started = time.perf_counter()
    with ThreadPoolExecutor(32) as pool:
        list(pool.map(lambda i: subprocess.run(["sh", "-c", f"echo run {i}; exit {i % 7}"], capture_output=True), range(n)))
    return n / (time.perf_counter() - started)


def concurrent(n: int) -> list[Row]:
    base = _plain_rate(n)
    with engine() as (client, _):
        started = time.perf_counter()
        with ThreadPoolExecutor(32) as pool:
            ids = list(pool.map(lambda i: client.exec({"command": f"echo run {i}; exit {i % 7}", "skip_git": True})["execution_id"], range(n)))
            finals = list(pool.map(lambda eid: (wait_stopped(client, eid), client.status(eid)), ids))
        elapsed = time.perf_counter() - started
        wrong = sum(1 for i, (_, st) in enumerate(finals) if st["exit_code"] != i % 7)
        lost = n - len({st["execution_id"] for _, st in finals if st["status"] == "STOPPED"})
        missing = 0
        for i, eid in enumerate(ids[:: max(1, n // 50)]):
            page = client.logs(eid)
            if f"run {ids.index(eid)}" not in [e["message"] for e in page["events"]]:
                missing += 1
    rate = n / elapsed
    ok = wrong == 0 and lost == 0 and missing == 0
    return [Row(f"{n} concurrent executions (exit i % 7)", rate, "the same as sh -c", base, "all complete; ≥ 0.025×",
                ok and rate >= 0.025 * base,
                unit="exec/s", note=f"lost {lost}, wrong exit codes {wrong}, missing lines in sample {missing}, {elapsed:.1f} s")]


def many_lines(n: int) -> list[Row]:
    t = time.perf_counter()
    subprocess.run(["seq", str(n)], stdout=subprocess.DEVNULL, check=True)
    seq_time = (time.perf_counter() - t) * 1000
    t = time.perf_counter()  # the paging baseline: the same lines read and checked from a pipe
    with subprocess.Popen(["seq", str(n)], stdout=subprocess.PIPE, text=True) as seq:
        piped = sum(1 for line in seq.stdout if line.rstrip("\n").isdigit())
    pipe_rate = piped / (time.perf_counter() - t)
    rows = []
    with engine() as (client, env):
        t = time.perf_counter()
        started = client.exec({"command": f"seq {n}", "skip_git": True})
        eid = started["execution_id"]
        wait_stopped(client, eid)
        ingest = (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        token, expected, in_order = None, 1, True
        got = 0
        while True:
            page = client.logs(eid, next_token=token, text=False)  # as mycli logs and the follower page
            if not page["events"]:
                break
            token = page["next_token"]
            for event in page["events"]:
                msg = event["message"]
                if msg.isdigit():
                    in_order &= int(msg) == expected
                    expected += 1
                    got += 1
        paging = time.perf_counter() - t
        rate = got / paging
        rows.append(Row(f"`seq {n}` exec → STOPPED (ingest)", ingest, f"seq {n} alone", seq_time, "—", True, unit="ms"))
        rows.append(Row(f"paging all {n:,} lines back", rate, "seq piped, read", pipe_rate, "in order; ≥ 0.03×",
                        in_order and got == n and rate >= 0.03 * pipe_rate, unit="lines/s",
                        note=f"{got:,} lines, in order: {in_order}, {paging:.2f} s"))
        rss = _follow_rss(eid, env)
        if rss is not None:
            rows.append(Row("`mycli logs -f` client max RSS over the whole log", rss, "", None, "≤ 150 MB", rss <= 150, unit="MB"))
    return rows


def _follow_rss(execution_id: str, env: dict) -> float | None:
    if not Path(__file__).resolve().parent.parent.joinpath("mycli_magic", "commands", "logs.py").exists():
        return None
    proc = subprocess.Popen([PY, "-m", "mycli_magic.cli", "logs", "-f", execution_id],
                            env={**env, "MYCLI_PROFILE": "local"}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, _, usage = os.wait4(proc.pid, 0)
    proc.returncode = 0
    return usage.ru_maxrss / 1024


def follow_latency(quick: bool) -> list[Row]:
    from mycli_magic.follow import FollowState, follow

    count = 20 if quick else 60
    script = f"import time\nfor _ in range({count}):\n    print(repr(time.time()), flush=True)\n    time.sleep(0.1)\n"
    lat, base = [], []
    with subprocess.Popen([PY, "-c", script], stdout=subprocess.PIPE, text=True) as proc:  # the baseline: a pipe
        for line in proc.stdout:
            base.append((time.time() - float(line)) * 1000)
    with engine() as (client, _):
        started = client.exec({"command": f"{PY} -c {_quote(script)}", "skip_git": True})
        for page in follow(client, started["execution_id"], FollowState(started["execution_id"])):
            now = time.time()
            for event in page["events"]:
                try:
                    lat.append((now - float(event["message"])) * 1000)
                except ValueError:
                    pass
    p50 = percentile(lat, 50)
    # a latency figure: printed beside the pipe's, with no pass/fail (the long poll's wake-up is the
    # design; on a shared machine its milliseconds say how busy the machine was)
    return [Row("line printed → line received by a follower (p50)", p50, "a pipe (p50)",
                percentile(base, 50), "—", True, unit="ms",
                note=f"{len(lat)} lines, p90 {percentile(lat, 90):.1f} ms")]


def _quote(s: str) -> str:
    return "'" + s.replace("'", "'\\''") + "'"
