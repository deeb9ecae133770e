"""Proving a container runtime works before the engine uses it: the probe image and the probe run.

`docker info` and `podman info` answer on machines where no container can start (podman
without catatonit: exit 125; with its stock ulimits or crun on a hybrid cgroup layout: 126), so
`auto` trusts a runtime only once a container ran exactly the way runs are built (same argv
builder: --init, the workspace and the script mounted, -w, stdin, labels, the size flags). No
registry is needed: the probe image is the host's own /bin/sh and rm with the libraries they
load, tarred deterministically and imported under a tag named by its content hash, so it is
imported once per machine and found by `image inspect` afterwards.

Before anything else, docker's daemon is pinged on its unix socket (`GET /_ping`, the cheapest
call it answers): a daemon that accepts the connection and never answers would otherwise hold
the whole probe for PROBE_SECONDS in silence (the client has no timeout of its own). It gets
PING_SECONDS, says once that it is still waiting, then fails the probe with that reason, and
`auto` goes on to podman.

The probe also measures what runs need to know: the cores the runtime sees (to clamp --cpus),
whether --memory was applied (read back from the container's own cgroup), and who owns a file
the container's root wrote in the workspace (to give the workspace back to the engine's user).
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import logging
import os
import re
import secrets
import shutil
import socket
import subprocess
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

from ..sizes import Size
from ..units import MIB

PROBE_BINARIES = ("/bin/sh", "/bin/rm")
PROBE_REPO = "localhost/mycli-probe"
PROBE_MEMORY_MIB = 64
STEP_TIMEOUT = 30.0
PROBE_SECONDS = 20.0  # a runtime's whole probe: the engine's start waits for auto's (docker, then podman)
# A live dockerd answers /_ping in milliseconds, however busy; 8 s also covers one that systemd
# starts on the first connection (socket activation), which takes seconds, not tens of them.
PING_SECONDS = 8.0
PROGRESS_AFTER = 2.0  # silence before the engine says it is still waiting for the runtime
DEFAULT_DOCKER_SOCKET = "/var/run/docker.sock"
progress_log = logging.getLogger("mycli.progress")  # the client shows these lines while it waits
_LDD_PATH_RE = re.compile(r"(/\S+) \(0x[0-9a-f]+\)")

# Reads the token the engine wrote on stdin (the credentials' path), counts the processors it
# sees, reads its own memory limit (cgroup v2, then v1) with the shell's builtins only.
PROBE_SCRIPT = """\
IFS= read -r token || token=
printf '%s\\n' "$token" > probe-token
n=0
while IFS= read -r line; do case $line in processor*) n=$((n + 1)) ;; esac; done < /proc/cpuinfo
memory=unknown
for f in /sys/fs/cgroup/memory.max /sys/fs/cgroup/memory/memory.limit_in_bytes; do
  if [ -r "$f" ]; then IFS= read -r memory < "$f"; break; fi
done
printf 'cores=%s memory=%s\\n' "$n" "$memory" > probe-info
echo probed
"""


class ProbeFailed(Exception):
    """The runtime cannot run a container the way runs need; the message says why, in one line."""


class SettingWrong(ProbeFailed):
    """The probe failed because of a setting of ours (`setting` says which, in a few words), not
    because the runtime is missing or broken: `auto` names it rather than "no container runtime"."""

    def __init__(self, setting: str, detail: str):
        super().__init__(f"{setting}: {detail}")
        self.setting, self.detail = setting, detail


@dataclass(frozen=True)
class ProbeResult:
    cores: int | None  # processors the runtime's containers see (clamps --cpus)
    limits: bool  # --memory was applied (rootless podman on cgroup v1 ignores it, for one)
    root_is_engine: bool  # a file the container's root wrote belongs to the engine's user (rootless)
    seconds: float
    image: str  # the probe image's tag: also what empties a workspace as the container's root


def probe_image_tar(binaries: tuple[str, ...] = PROBE_BINARIES) -> bytes:
    """A rootfs with `binaries` (under their own paths) and the shared libraries `ldd` names,
    plus empty /etc and /tmp; byte-for-byte the same for the same host files."""
    files: dict[str, str] = {}
    for binary in binaries:
        real = os.path.realpath(binary)
        if not os.path.isfile(real):
            raise ProbeFailed(f"cannot build the probe image: {binary} is missing on this machine")
        files[binary] = real
        for lib in _libraries(real):
            files[lib] = os.path.realpath(lib)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        dirs = {"etc", "tmp"}
        for dest in files:
            parts = dest.strip("/").split("/")[:-1]
            dirs.update("/".join(parts[: i + 1]) for i in range(len(parts)))
        for name in sorted(dirs):
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o1777 if name == "tmp" else 0o755, 0
            tar.addfile(info)
        for dest in sorted(files):
            data = Path(files[dest]).read_bytes()
            info = tarfile.TarInfo(dest.lstrip("/"))
            info.size, info.mode, info.mtime = len(data), 0o755, 0
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _libraries(binary: str) -> list[str]:
    ldd = shutil.which("ldd")
    if ldd is None:
        raise ProbeFailed("cannot build the probe image: ldd is not installed")
    try:
        out = subprocess.run([ldd, binary], capture_output=True, text=True, timeout=STEP_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ProbeFailed(f"cannot build the probe image: ldd failed ({exc})") from None
    if out.returncode != 0 and "not a dynamic executable" not in out.stdout + out.stderr:
        raise ProbeFailed(f"cannot build the probe image: ldd {binary} failed: {_last_line(out.stdout + out.stderr)}")
    return _LDD_PATH_RE.findall(out.stdout)


class Prober:
    """Imports the probe image into one runtime and runs the probe container."""

    def __init__(self, runtime, work_dir: Path, ping_seconds: float = PING_SECONDS):
        self.runtime = runtime  # local_runtime.ContainerRuntime
        self.work_dir = Path(work_dir)
        self.deadline = time.monotonic() + PROBE_SECONDS  # a daemon that hangs costs at most this
        self.ping_seconds = ping_seconds  # 0: no ping (what bench/ measures it against)

    def ensure_image(self) -> str:
        data = probe_image_tar()
        tag = f"{PROBE_REPO}:{hashlib.sha256(data).hexdigest()[:16]}"
        if self.runtime.image_present(tag, timeout=self._left()):
            return tag
        result = self._call([*self.runtime.client, "import", "-", tag], data)
        if result.returncode != 0:
            _unreachable(self.runtime.name, result.stdout)
            raise ProbeFailed(f"could not import the probe image (exit {result.returncode}): {_last_line(result.stdout)}")
        return tag

    def run(self) -> ProbeResult:
        started = time.monotonic()
        if self.runtime.name == "docker" and self.ping_seconds > 0:
            ping_docker(self.runtime.env, self.ping_seconds)
        tag = self.ensure_image()
        self.work_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        workspace = self.work_dir / f"probe-{secrets.token_hex(4)}"
        control = workspace.with_name(workspace.name + ".mycli")
        try:
            workspace.mkdir(mode=0o700)
            control.mkdir(mode=0o700)
            self.runtime.prepare_dirs(workspace, control)
            (control / "script.sh").write_text(PROBE_SCRIPT)
            (control / "script.sh").chmod(0o644)
            token = secrets.token_hex(8)
            argv = self.runtime.run_argv(
                name=f"mycli-probe-{secrets.token_hex(4)}", image=tag, workspace=workspace, control=control,
                labels={"mycli.probe": "1"}, stdin=True, size=Size(0.5, PROBE_MEMORY_MIB), cores=None, chown=None,
            )
            result = self._call(argv, (token + "\n").encode())
            got = _read(workspace / "probe-token")
            if result.returncode == 0 and got == token and _read(control / "rc") != "0":
                raise ProbeFailed(f"a probe container could not leave its exit code in {control} (/mycli/rc)")
            if result.returncode != 0 or got != token:
                said = _last_line(result.stdout) or "no output"
                _unreachable(self.runtime.name, result.stdout)
                network = self.runtime.network
                if result.returncode != 0 and network and network in said:
                    raise SettingWrong(f"MYCLI_CONTAINER_NETWORK={network} names no network here", said)
                why = f"exit {result.returncode}" if result.returncode else "the workspace mount did not reach the container"
                raise ProbeFailed(f"a probe container failed ({why}): {said}")
            info = dict(pair.partition("=")[::2] for pair in _read(workspace / "probe-info").split())
            owner = (workspace / "probe-token").stat().st_uid
        finally:
            for path in (workspace, control):
                shutil.rmtree(path, ignore_errors=True)
        cores = int(info["cores"]) if info.get("cores", "").isdigit() and int(info["cores"]) > 0 else None
        return ProbeResult(
            cores=cores,
            limits=info.get("memory") == str(PROBE_MEMORY_MIB * MIB),
            root_is_engine=owner == os.getuid(),
            seconds=time.monotonic() - started,
            image=tag,
        )

    def _call(self, argv: list[str], stdin: bytes) -> subprocess.CompletedProcess:
        return self.runtime.run_client(argv, stdin=stdin, timeout=self._left())

    def _left(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise ProbeFailed(f"{self.runtime.name} did not answer within {PROBE_SECONDS:.0f} s")
        return left


def docker_socket(env: dict) -> str | None:
    """The unix socket docker's client will use with `env`, when that can be told without asking
    the client: DOCKER_HOST=unix://PATH, or the default socket when neither DOCKER_HOST, a
    DOCKER_CONTEXT nor the config's currentContext names another daemon (tcp, ssh: None)."""
    host = env.get("DOCKER_HOST")
    if host:
        return host[len("unix://"):] if host.startswith("unix://") else None
    if env.get("DOCKER_CONTEXT") not in (None, "", "default"):
        return None
    config_dir = env.get("DOCKER_CONFIG") or os.path.join(env.get("HOME") or os.path.expanduser("~"), ".docker")
    try:
        with open(os.path.join(config_dir, "config.json")) as fh:
            current = json.load(fh).get("currentContext")
    except (OSError, ValueError, AttributeError):
        current = None
    return DEFAULT_DOCKER_SOCKET if current in (None, "", "default") else None


def ping_docker(env: dict, seconds: float = PING_SECONDS) -> None:
    """Raise ProbeFailed when docker's daemon accepts a connection but does not answer /_ping
    within `seconds`, saying once (progress_log) that it is still waiting after PROGRESS_AFTER.
    Any answer, a refused connection or no socket at all return: the client says the rest."""
    path = docker_socket(env)
    if path is None:
        return
    where = f"unix://{path}"
    deadline = time.monotonic() + seconds
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(seconds)
        try:
            sock.connect(path)
            sock.sendall(b"GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n")
        except socket.timeout:
            pass  # a backlog that stays full: no answer either
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EWOULDBLOCK):
                return  # nothing listens there: docker's own "Cannot connect" comes next
        else:
            told = False
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                sock.settimeout(left if told else min(left, PROGRESS_AFTER))
                try:
                    sock.recv(1)
                    return  # it answered (or closed): alive enough to speak for itself
                except socket.timeout:
                    if not told and time.monotonic() < deadline:
                        told = True
                        progress_log.info("checking docker… (no answer yet from %s after %.0f s; giving up at %.0f s)",
                                          where, PROGRESS_AFTER, seconds)
                except OSError:
                    return
    raise ProbeFailed(f"the docker daemon at {where} accepted the connection but did not answer within "
                      f"{seconds:.0f} s (a hung daemon: restart it, or point DOCKER_HOST at another)")


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


_HINT_RE = re.compile(r"^(Run|See) '[^']*--help'")
_ERROR_RE = re.compile(r"error", re.IGNORECASE)
_UNREACHABLE_RE = re.compile(r"Cannot connect to (the Docker daemon|Podman)|Is the docker daemon running")


def _last_line(output: bytes | str) -> str:
    """The line of a client's output that says what went wrong: the last one naming an error
    (docker puts its usage hint, "Run 'docker run --help'…", after it), else the last one."""
    text = output.decode("utf-8", "replace") if isinstance(output, bytes) else output
    lines = [line.strip() for line in text.splitlines() if line.strip() and not _HINT_RE.match(line.strip())]
    errors = [line for line in lines if _ERROR_RE.search(line)]
    return (errors or lines or [""])[-1][:300]


def _unreachable(name: str, output: bytes | str) -> None:
    """A client that cannot reach its daemon fails every step: say that, not what the step was."""
    said = _last_line(output)
    if _UNREACHABLE_RE.search(said):
        raise ProbeFailed(f"the {name} daemon is not reachable: {said}")
