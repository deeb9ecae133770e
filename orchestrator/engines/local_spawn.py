"""The engine's side of local_supervisor.py: start it once, ask it for executions, talk to each
execution's supervisor (its pid, stop/kill requests, the final wait status)."""

from __future__ import annotations

import array
import errno
import json
import os
import select
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

SUPERVISOR = Path(__file__).with_name("local_supervisor.py")
START_TIMEOUT = 30.0
MAX_IN_FLIGHT = 32  # requests queued for the supervisor at once


class SupervisorLost(OSError):
    """The supervising process went away before reporting how the script ended."""


class Child:
    """One running script, seen through the supervisor's control socket."""

    def __init__(self, pid: int, control: socket.socket):
        self.pid = pid
        self.control = control
        control.setblocking(False)
        self.status: int | None = None  # the script's wait status, once its whole tree is gone
        self.lost = False  # the supervisor vanished without a status
        self._buffer = b""

    def fileno(self) -> int:
        return self.control.fileno()

    def read(self) -> None:
        """Take in whatever the supervisor said (call when the control socket is readable)."""
        try:
            data = self.control.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.lost = self.status is None
            return
        self._buffer += data
        while b"\n" in self._buffer:
            line, self._buffer = self._buffer.split(b"\n", 1)
            word, _, rest = line.decode().partition(" ")
            if word == "exit":
                self.status = int(rest)

    @property
    def finished(self) -> bool:
        return self.status is not None or self.lost

    def term(self) -> None:
        self._say(b"term\n")

    def kill(self) -> None:
        self._say(b"kill\n")

    def close(self) -> None:
        self.control.close()

    def _say(self, command: bytes) -> None:
        try:
            self.control.send(command)
        except OSError:
            pass  # it has ended; nothing is left to signal


class Spawner:
    """Owns the supervisor process; restarts it if it died."""

    def __init__(self):
        self._lock = threading.Lock()
        self._in_flight = threading.BoundedSemaphore(MAX_IN_FLIGHT)
        self._proc: subprocess.Popen | None = None
        self._requests: socket.socket | None = None
        self._registry: socket.socket | None = None

    def spawn(self, argv: list[str], cwd: Path, env: dict[str, str], stdin_fd: int, stdout_fd: int,
              umask: int | None = None, cleanup: tuple[list[str], dict[str, str]] | None = None) -> Child:
        """Start `argv` under the supervisor; raise OSError as Popen would when it cannot.
        `cleanup` (argv, env) is what the supervisor runs once the script's tree is killed
        because the engine went away (or gave up on it): e.g. removing its container."""
        spec = json.dumps({"argv": argv, "cwd": str(cwd), "env": env, "umask": umask,
                           "cleanup": None if cleanup is None else {"argv": cleanup[0], "env": cleanup[1]}}).encode()
        with self._in_flight:  # a bounded queue: sockets (and descriptors in flight) have limits
            err_r, err_w = os.pipe2(os.O_CLOEXEC)
            try:
                message = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [stdin_fd, stdout_fd, err_w]))]
                registry = self._send(spec, message)
                os.close(err_w)  # from here only the spare holds it, until its exec closes it
                err_w = -1
                pid, failure = _read_report(err_r)
            finally:
                os.close(err_r)
                if err_w >= 0:
                    os.close(err_w)
        if failure:
            code, _, step = failure.partition(" ")
            _register(registry, b"failed %d" % pid)
            raise OSError(int(code), os.strerror(int(code)), {"exec": argv[0], "chdir": str(cwd)}.get(step, step))
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            _register(registry, b"run %d" % pid, theirs.fileno())
        except OSError:
            ours.close()
            raise SupervisorLost(errno.EPIPE, "the process supervisor went away") from None
        finally:
            theirs.close()
        return Child(pid, ours)

    def close(self) -> None:
        with self._lock:
            self._discard()

    def _send(self, spec: bytes, message: list) -> socket.socket:
        """Queue a request (each message is atomic: no lock while sending); a supervisor that
        has gone away is started again once. Returns the registry that goes with it."""
        for attempt in (1, 2):
            with self._lock:
                requests, registry = self._ensure()
            try:
                requests.sendmsg([spec], message)
                return registry
            except (BrokenPipeError, ConnectionError):
                if attempt == 2:
                    raise
                with self._lock:
                    if self._requests is requests:  # not already replaced by another thread
                        self._discard()
        raise AssertionError("unreachable")

    def _ensure(self) -> tuple[socket.socket, socket.socket]:
        if self._requests is not None and self._proc is not None and self._proc.poll() is None:
            return self._requests, self._registry
        self._discard()
        requests, their_requests = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        registry, their_registry = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        fds = [their_requests.fileno(), their_registry.fileno()]
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-I", "-S", str(SUPERVISOR), *map(str, fds)],
                pass_fds=fds, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                start_new_session=True,  # signals meant for the server's group do not reach it
            )
        except BaseException:
            requests.close()
            registry.close()
            raise
        finally:
            their_requests.close()
            their_registry.close()
        self._requests, self._registry = requests, registry
        return requests, registry

    def _discard(self) -> None:
        for sock in (self._requests, self._registry):
            if sock is not None:
                sock.close()  # the registry's EOF ends the supervisor and every run it supervises
        self._requests = self._registry = None
        if self._proc is not None:
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None


def _register(registry: socket.socket, message: bytes, fd: int | None = None) -> None:
    fds = [] if fd is None else [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))]
    registry.sendmsg([message], fds)


def _read_report(err_r: int) -> tuple[int, str]:
    """(pid, "" or "ERRNO STEP") from a spare's close-on-exec pipe: EOF means it exec'd."""
    report = b""
    deadline = time.monotonic() + START_TIMEOUT
    poller = select.poll()  # not select(): a busy engine's descriptors go past FD_SETSIZE
    poller.register(err_r, select.POLLIN)
    while True:
        if not poller.poll(max(0.0, deadline - time.monotonic()) * 1000):
            raise SupervisorLost(errno.ETIMEDOUT, "the process supervisor did not start the script in time")
        chunk = os.read(err_r, 128)
        if not chunk:
            break
        report += chunk
    pid, _, failure = report.decode().partition("\n")
    if not pid.isdigit():
        raise SupervisorLost(errno.EPIPE, "the process supervisor ended before the script started")
    return int(pid), failure
