"""Running the real `mycli` executable in an isolated MYCLI_HOME, and real git repos to run it in."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.server import clean_env

# The console script pip installed next to this interpreter (not a pyenv shim, not `python -m`).
MYCLI = str(Path(sys.executable).with_name("mycli"))
GIT_ID = ["-c", "user.name=mycli test", "-c", "user.email=test@mycli.invalid", "-c", "init.defaultBranch=main"]


def _sigint_default() -> None:
    # A test runner started in the background inherits SIGINT ignored; Python then installs no
    # KeyboardInterrupt handler. A user's terminal never does that, so give the child the default.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@dataclass
class Cli:
    home: Path
    extra_env: dict = field(default_factory=dict)

    def env(self, **more: str) -> dict[str, str]:
        return clean_env(self.home, **{**self.extra_env, **more})

    def run(self, *args: str, cwd: Path | None = None, input: str | None = None, timeout: float = 120,
            env: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [MYCLI, *args], cwd=cwd, input=input, capture_output=True, text=True, timeout=timeout,
            env=self.env(**(env or {})), stdin=None if input is not None else subprocess.DEVNULL,
        )

    def popen(self, *args: str, cwd: Path | None = None) -> subprocess.Popen:
        return subprocess.Popen(
            [MYCLI, *args], cwd=cwd, env=self.env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, preexec_fn=_sigint_default,
        )

    def exec_json(self, *args: str, cwd: Path | None = None) -> dict:
        """`mycli exec --json ...` → the API's execution record."""
        proc = self.run("exec", "--json", *args, cwd=cwd)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    def engine_info(self) -> dict | None:
        try:
            return json.loads((self.home / "engine" / "server.json").read_text())
        except (OSError, ValueError):
            return None

    def local_profile(self) -> dict:
        import yaml

        return yaml.safe_load((self.home / "config.yaml").read_text())["profiles"]["local"]

    def stop_engine(self) -> None:
        """`mycli server stop` for this home, then make sure no engine process is left behind."""
        info = self.engine_info()
        subprocess.run([MYCLI, "server", "stop"], env=self.env(), capture_output=True, timeout=60)
        if info:
            try:
                os.kill(int(info["pid"]), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *GIT_ID, *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def make_repo_with_origin(base: Path) -> tuple[Path, Path]:
    """A bare `origin.git` and a clone `work/` of it with branches main and feature (checked out).

    Each branch's `which.txt` says its name, so a run shows which branch the engine cloned.
    """
    origin = base / "origin.git"
    work = base / "work"
    base.mkdir(parents=True, exist_ok=True)
    git("init", "--quiet", "--bare", str(origin), cwd=base)
    git("init", "--quiet", str(work), cwd=base)
    git("remote", "add", "origin", str(origin), cwd=work)
    (work / "which.txt").write_text("main\n")
    git("add", "which.txt", cwd=work)
    git("commit", "--quiet", "-m", "main", cwd=work)
    git("push", "--quiet", "origin", "main", cwd=work)
    git("checkout", "--quiet", "-b", "feature", cwd=work)
    (work / "which.txt").write_text("feature\n")
    git("commit", "--quiet", "-am", "feature", cwd=work)
    git("push", "--quiet", "origin", "feature", cwd=work)
    (work / "sub").mkdir()
    return origin, work
