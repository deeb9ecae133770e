"""Proving a container runtime works before the engine uses it: the probe image and the probe run.

`docker info` and `podman info` answer on machines where no container can start (podman
without catatonit: exit 125; with its stock ulimits or crun on a hybrid cgroup layout: 126), so
`auto` trusts a runtime only once a container ran exactly the way runs are built (same argv
builder: --init, the workspace and the script mounted, -w, stdin, labels, the size flags). No
registry is needed: the probe image is the host's own /bin/sh and rm with the libraries they
load, tarred deterministically and imported under a tag named by its content hash, so it is
imported once per machine and found by `image inspect` afterwards.

The probe also measures what runs need to know: the cores the runtime sees (to clamp --cpus),
whether --memory was applied (read back from the container's own cgroup), and who owns a file
the container's root wrote in the workspace (to give the workspace back to the engine's user).
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import secrets
import shutil
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

    def __init__(self, runtime, work_dir: Path):
        self.runtime = runtime  # local_runtime.ContainerRuntime
        self.work_dir = Path(work_dir)
        self.deadline = time.monotonic() + PROBE_SECONDS  # a daemon that hangs costs at most this

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
