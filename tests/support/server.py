"""A real `mycli server` process over real HTTP, and the isolated environment test subprocesses get."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository
ISOLATED_VARS = ("MYCLI_API_ENDPOINT", "MYCLI_API_KEY", "MYCLI_PROFILE", "API_KEY_HASH", "MYCLI_DEBUG",
                 "GITHUB_TOKEN", "GITLAB_TOKEN", "SSH_PRIVATE_KEY", "MYCLI_ENGINE")


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment a test's subprocess gets: ours, minus anything mycli reads, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in ISOLATED_VARS}
    env["MYCLI_HOME"] = str(home)
    env["MYCLI_LOCAL_RUNTIME"] = "host"
    env.update(extra)
    return env


@dataclass
class Server:
    url: str  # .../execute
    key: str
    home: Path
    state_dir: Path
    proc: subprocess.Popen
    runtime: str = "host"  # the engine's MYCLI_LOCAL_RUNTIME

    def call(self, payload: dict | str | bytes, key: str | None = "default", headers: dict | None = None) -> tuple[int, dict]:
        """POST to /execute; returns (status, JSON body)."""
        if isinstance(payload, dict):
            data = json.dumps(payload).encode()
        elif isinstance(payload, str):
            data = payload.encode("utf-8", "surrogateescape")
        else:
            data = payload
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        if key is not None:
            hdrs["X-API-Key"] = self.key if key == "default" else key
        req = urllib.request.Request(self.url, data=data, headers=hdrs, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    def run(self, command: str, **fields) -> dict:
        """exec and wait until STOPPED; returns the final status."""
        status, body = self.call({"action": "exec", "command": command, "skip_git": True, **fields})
        assert status == 200, body
        return self.wait(body["execution_id"])

    def wait(self, execution_id: str, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            _, body = self.call({"action": "logs", "execution_id": execution_id, "wait_seconds": 5, "limit": 1,
                                 "next_token": "999999999"})
            if body.get("status") == "STOPPED":
                return self.call({"action": "status", "execution_id": execution_id})[1]
        raise AssertionError(f"execution {execution_id} did not stop within {timeout} s")

    def pages(self, execution_id: str, limit: int | None = None) -> Iterator[dict]:
        """Every page of the log as it stands (`limit` events a page), up to the first empty one."""
        token = None
        while True:
            payload = {"action": "logs", "execution_id": execution_id, **({"limit": limit} if limit else {})}
            if token:
                payload["next_token"] = token
            status, body = self.call(payload)
            assert status == 200, body
            if not body["events"]:
                return
            yield body
            token = body["next_token"]

    def all_lines(self, execution_id: str) -> list[str]:
        return [e["message"] for page in self.pages(execution_id) for e in page["events"]]


def follow_to_the_end(server: Server, execution_id: str, timeout: float = 90) -> list[str]:
    """Every line, as `logs -f` reads them: long-polling with the engine's own tokens until a page
    says complete (so on any engine, and the whole log has been shipped when it returns)."""
    lines, token, deadline = [], None, time.monotonic() + timeout
    while time.monotonic() < deadline:
        payload = {"action": "logs", "execution_id": execution_id, "wait_seconds": 5, "text": False}
        if token:
            payload["next_token"] = token
        status, page = server.call(payload)
        assert status == 200, page
        lines += [e["message"] for e in page["events"]]
        token = page["next_token"]
        if page["complete"]:
            return lines
    raise AssertionError(f"{execution_id}: the log was not complete within {timeout} s; last lines {lines[-20:]}")


def run_to_the_end(server: Server, payload: dict, timeout: float = 90) -> tuple[dict, list[str]]:
    """exec `payload` and follow it to the end: (the final status, every line)."""
    status, body = server.call({"action": "exec", **payload})
    assert status == 200, body
    lines = follow_to_the_end(server, body["execution_id"], timeout)
    status, final = server.call({"action": "status", "execution_id": body["execution_id"]})
    assert status == 200, final
    return final, lines


def start_server(home: Path, extra_env: dict | None = None, args: tuple[str, ...] = (), python: str = sys.executable,
                 user: int | None = None, group: int | None = None) -> Server:
    """Start `mycli server --port 0` as a real process (as `user`, if given) and wait until it answers."""
    state_dir = home / "engine"
    env = clean_env(home, **(extra_env or {}))
    log = open(home / "server-test.log", "ab")
    as_user = {} if user is None else {"user": user, "group": group, "extra_groups": []}
    proc = subprocess.Popen(
        [python, "-m", "mycli_magic.cli", "server", "--port", "0", "--quiet", *args],
        env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **as_user,
    )
    log.close()
    ready = state_dir / "server.json"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if ready.exists() and proc.poll() is None:
            info = json.loads(ready.read_text())
            if info.get("pid") == proc.pid:
                import yaml

                cfg = yaml.safe_load((home / "config.yaml").read_text())
                url = info["url"] + "/execute"
                key = next((p["api_key"] for p in cfg["profiles"].values() if p.get("api_endpoint") == url), None)
                if key is None:  # no profile names this server: stop it rather than leave it running
                    os.killpg(proc.pid, signal.SIGTERM)
                    proc.wait(20)
                    raise RuntimeError(f"mycli server at {url} wrote no profile for itself in {home / 'config.yaml'}")
                return Server(url=url, key=key, home=home, state_dir=state_dir, proc=proc, runtime=env["MYCLI_LOCAL_RUNTIME"])
        if proc.poll() is not None:
            raise RuntimeError(f"mycli server exited: {(home / 'server-test.log').read_text()}")
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("mycli server did not start")


def stop_server(server: Server) -> None:
    if server.proc.poll() is None:
        os.killpg(server.proc.pid, signal.SIGTERM)
        try:
            server.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(server.proc.pid, signal.SIGKILL)
            server.proc.wait()
