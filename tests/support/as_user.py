"""A real `mycli server` run as an unprivileged user (nobody), against the CI's root dockerd.

The tests run as root, and root can delete anything: to see that the engine can delete what a
container's root wrote, the engine must be an ordinary user. That user needs an interpreter and
the code it can read (the virtualenv may sit under a 0700 /root): Debian's /usr/bin/python3, and
a copy of the two packages and the few libraries `mycli server` imports, in a directory of its
own. It needs the docker socket, which lives in a root-only directory: a byte-for-byte relay
(UnixRelay) offers it at a socket the user can open.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from tests.support.server import ROOT, Server, start_server

USER = "nobody"
LIBRARIES = ("bcrypt", "yaml")


def portable_tree(base: Path) -> Path:
    """base/lib with orchestrator, mycli_magic and the libraries they import, readable by all."""
    lib = base / "lib"
    for package in ("orchestrator", "mycli_magic"):
        shutil.copytree(ROOT / package, lib / package, ignore=shutil.ignore_patterns("__pycache__"))
    for name in LIBRARIES:
        try:
            module = __import__(name)
        except ImportError:
            continue
        source = Path(module.__file__)
        if source.name == "__init__.py":
            shutil.copytree(source.parent, lib / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, lib / source.name)
    (lib / "deploy").mkdir()  # mycli_magic._template's package dir, not needed to serve
    return lib


class UnixRelay:
    """Accepts on `path` and relays every connection, both ways, to the socket at `target`."""

    def __init__(self, path: Path, target: str):
        self.path, self.target = str(path), target
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.path)
        os.chmod(self.path, 0o666)
        self.listener.listen(64)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                upstream.connect(self.target)
            except OSError:
                client.close()
                continue
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
            sink.shutdown(socket.SHUT_WR)  # the attach stream's half-close (stdin's EOF) passes through
        except OSError:
            pass

    def close(self) -> None:
        self.listener.close()


def docker_engine_as_user(extra_env: dict[str, str]) -> tuple[Server, UnixRelay, Path]:
    """(server, relay, base dir) for a docker engine run as USER; the caller stops and removes them."""
    if os.getuid() != 0 or not Path("/usr/bin/python3").exists():
        pytest.skip("needs root (to start the engine as another user) and /usr/bin/python3")
    user = pwd.getpwnam(USER)
    base = Path(tempfile.mkdtemp(prefix="mycli-as-user-"))
    base.chmod(0o755)
    lib = portable_tree(base)
    home = base / "home"
    home.mkdir()
    os.chown(home, user.pw_uid, user.pw_gid)
    relay = UnixRelay(base / "docker.sock", os.environ["DOCKER_HOST"].removeprefix("unix://"))
    env = {**extra_env, "DOCKER_HOST": f"unix://{relay.path}", "HOME": str(home), "PYTHONPATH": str(lib),
           "PYTHONDONTWRITEBYTECODE": "1"}
    server = start_server(home, env, python="/usr/bin/python3", user=user.pw_uid, group=user.pw_gid)
    return server, relay, base


def files_under(path: Path, settle: float = 30) -> list[str]:
    """Everything left under `path`, seen as root (who sees what the engine's user could not),
    once it is empty or `settle` seconds passed: a run's files dir is removed after its outputs
    are collected, which follows STOPPED."""
    deadline = time.monotonic() + settle
    while True:
        out = subprocess.run(["find", str(path), "-mindepth", "1"], capture_output=True, text=True).stdout
        if not out.split() or time.monotonic() >= deadline:
            return sorted(out.split())
        time.sleep(0.1)
