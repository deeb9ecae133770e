"""Where the embedded engine runs a script: which runtime, and how docker or podman is called.

`choose_runtime` turns MYCLI_LOCAL_RUNTIME (auto|docker|podman|host) into a ContainerRuntime or
None (the host), with a reason a person can act on. `auto` takes the first of docker and podman
whose probe container ran (local_probe.py), else the host; an explicit docker or podman that
fails its probe stops the engine from starting, naming why.

ContainerRuntime builds every argv the engine gives the runtime's client — the run itself (the
probe uses the very same builder), the stop, the kill, the orphan reap — and the client's own
environment: the engine's settings for the runtime (DOCKER_HOST, CONTAINERS_CONF, …) reach the
client, never the container, which gets only the variables named with `-e`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from ..errors import ServerMisconfigured
from ..exec_fields import registry_host
from ..shell import sh_quote
from ..sizes import Size, format_cpu
from .local_probe import ProbeFailed, Prober, SettingWrong

WORKSPACE = "/workspace"
CONTROL = "/mycli"  # the run's own files: script.sh, and rc (the script's exit code) at its end
CLIENT_TIMEOUT = 30.0
BASE_VARS = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "USER", "LOGNAME")
HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # when the engine's own has none
PROXY_VARS = ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")
# What docker's and podman's clients read to find and configure their daemon / storage.
RUNTIME_VARS = (
    "DOCKER_HOST", "DOCKER_CONFIG", "DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_API_VERSION",
    "CONTAINER_HOST", "CONTAINER_SSHKEY", "CONTAINER_CONNECTION", "CONTAINERS_CONF", "CONTAINERS_STORAGE_CONF",
    "CONTAINERS_REGISTRIES_CONF", "CONTAINERS_REGISTRIES_CONF_DIR", "REGISTRY_AUTH_FILE", "XDG_RUNTIME_DIR",
    "XDG_CONFIG_HOME", "XDG_DATA_HOME", "DBUS_SESSION_BUS_ADDRESS",
)
_NETWORK_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}\Z")
# The wrapper every container runs: stdout and stderr merged inside (the runtimes carry them as
# two streams and lose their order), a TERM that only lets the script end first (see stop_argv),
# the script's exit code kept in /mycli/rc (so the engine tells a command's own 125 from the
# runtime's), the container's count of OOM kills in /mycli/oom_kill (its cgroup's memory.events
# on v2, memory.oom_control on v1: read here, since --rm removes the container and its state),
# and the workspace given back to the engine's user.
OOM_COUNT = ("for f in /sys/fs/cgroup/memory.events /sys/fs/cgroup/memory/memory.oom_control; do "
             "[ -r \"$f\" ] || continue; while read -r k v; do [ \"$k\" != oom_kill ] || echo \"$v\" > {control}/oom_kill; "
             "done < \"$f\"; break; done; ")
WRAPPER = ("exec 2>&1; trap : TERM; {trust}/bin/sh {control}/script.sh; rc=$?; " + OOM_COUNT + "echo \"$rc\" > {control}/rc; "
           "{chown}exit \"$rc\"")


PODMAN_KILL = """\
rt=$1; shift
round=0
while [ $# -gt 0 ] && [ $round -lt 20 ]; do
  for n in "$@"; do
    shift
    info=$("$rt" inspect --format '{{.Id}} {{.State.Pid}}' "$n" 2>/dev/null) || continue
    id=${info% *}; pid=${info#* }
    if [ "${pid:-0}" -gt 0 ] 2>/dev/null && grep -qs "$id" "/proc/$pid/cgroup"; then kill -9 "$pid" 2>/dev/null; fi
    "$rt" rm -f -t 0 "$n" >/dev/null 2>&1 || set -- "$@" "$n"
  done
  round=$((round + 1))
  [ $# -eq 0 ] || sleep 0.5
done
[ $# -eq 0 ]
"""

# Removes one container whose engine died, by name: as long as it exists, and until it has been
# absent for 4 looks in a row (2 s) — the engine may have died while the runtime was still
# creating it, so it may appear after the client that asked for it was killed (at most 60 s).
REMOVE_ORPHAN = """\
rt=$1; name=$2; shift 2
absent=0; round=0
while [ $absent -lt 4 ] && [ $round -lt 120 ]; do
  if "$rt" container inspect --format '{{.Id}}' "$name" >/dev/null 2>&1; then
    "$@" >/dev/null 2>&1; absent=0
  else
    absent=$((absent + 1))
  fi
  round=$((round + 1))
  sleep 0.5
done
"""


def client_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The runtime client's environment: what it needs to find its daemon and storage."""
    env = {k: environ[k] for k in (*BASE_VARS, *PROXY_VARS, *RUNTIME_VARS) if k in environ}
    env.setdefault("PATH", HOST_PATH)
    return env


def engine_id(state_dir: Path) -> str:
    """Labels this engine's containers, so a restart reaps its own orphans and no other engine's."""
    return hashlib.sha256(str(Path(state_dir).resolve()).encode()).hexdigest()[:12]


def qualified_image(runtime: str, image: str) -> str:
    """podman with Debian's stock registries.conf refuses unqualified names that have no alias;
    mycli's names mean what they mean on Docker Hub and ECS, so say so to podman."""
    if runtime != "podman" or registry_host(image) is not None:
        return image
    return f"docker.io/{image}" if "/" in image else f"docker.io/library/{image}"


class ContainerRuntime:
    """One container runtime's client, as the engine calls it."""

    def __init__(self, name: str, path: str, environ: Mapping[str, str], engine: str, network: str | None = None):
        self.name, self.path, self.engine, self.network = name, path, engine, network
        self.env = client_environment(environ)
        self.client = [path]
        self.cores: int | None = None  # from the probe
        self.limits = False
        self.chown: str | None = None  # "UID:GID" the wrapper gives the workspace at the end
        self.probe_image: str | None = None

    @classmethod
    def find(cls, name: str, environ: Mapping[str, str], engine: str, network: str | None) -> "ContainerRuntime | None":
        path = shutil.which(name, path=environ.get("PATH") or os.defpath)
        return None if path is None else cls(name, path, environ, engine, network)

    def adopt(self, cores: int | None, limits: bool, root_is_engine: bool, probe_image: str | None = None) -> None:
        """Take what the probe measured. A file the container's root wrote belongs to root on a
        rootful runtime: give the workspace to the engine's user at the end (unless that is root);
        on a rootless one container root is already the engine's user, other container users
        are not, so give it to container root."""
        self.cores, self.limits, self.probe_image = cores, limits, probe_image
        uid = os.getuid()
        self.chown = "0:0" if root_is_engine and uid != 0 else (None if uid == 0 else f"{uid}:{os.getgid()}")

    @staticmethod
    def prepare_dirs(*dirs: Path) -> None:
        """A run's workspace and control dir, writable by whatever user the image runs as (their
        parent, the state dir's work/, is the engine's own and closed to everyone else)."""
        for directory in dirs:
            directory.chmod(0o777)

    # argv builders --------------------------------------------------------------------------------

    def container_name(self, execution_id: str) -> str:
        return f"mycli-{execution_id}-{self.engine[:8]}"

    def run_argv(self, *, name: str, image: str, workspace: Path, control: Path, labels: Mapping[str, str],
                 stdin: bool, size: Size | None, cores: int | None, chown: str | None,
                 env_names: tuple[str, ...] = (), mounts: tuple[tuple[Path, str, bool], ...] = (),
                 trusted: tuple[str, ...] = ()) -> list[str]:
        """`run` for one script: `workspace` at /workspace (also the working directory, so it
        exists in every image), `control` at /mycli, extra `mounts` (host, target, read-only);
        only `env_names` taken from the client's environment; `size` clamped to `cores`."""
        for path in (workspace, control, *(m[0] for m in mounts)):
            if not mountable(path):
                raise ProbeFailed(f"{path} has a ':' or ',', which a bind mount cannot name; move the state dir")
        argv = [*self.client, "run", "--rm", "--init", "--pull", "never", "--name", name]
        argv += [f"--label={key}={value}" for key, value in {"mycli.engine": self.engine, **labels}.items()]
        argv += ["-v", f"{workspace}:{WORKSPACE}", "-v", f"{control}:{CONTROL}", "-w", WORKSPACE]
        for host, target, readonly in mounts:
            argv += ["-v", f"{host}:{target}" + (":ro" if readonly else "")]
        if stdin:
            argv.append("-i")
        for env_name in env_names:
            argv += ["-e", env_name]  # the value comes from the client's environment, not this argv
        if self.network:
            argv += ["--network", self.network]
        if size is not None:
            argv += ["--cpus", format_cpu(applied_cpu(size.cpu, cores)), "--memory", f"{size.memory}m"]
        owned = " ".join([WORKSPACE, *(target for _, target, readonly in mounts if not readonly)])
        wrapper = WRAPPER.format(control=CONTROL, chown=f"chown -R {chown} {owned} 2>/dev/null; " if chown else "",
                                 trust="".join(f"git config --global --add safe.directory {sh_quote(path)} 2>/dev/null; "
                                               for path in trusted))
        # the image's /bin/sh, whatever its ENTRYPOINT: a binary's (terraform, aws) would take the
        # wrapper as its arguments; a wrapper's (`exec "$@"`) is not run either (docs/troubleshooting.md)
        return argv + ["--entrypoint", "/bin/sh", qualified_image(self.name, image), "-c", wrapper]

    def stop_argv(self, name: str) -> list[str]:
        """TERM to every process in the container but its init. `stop` would signal only PID 1,
        which passes it to the script's shell, which waits for the user's command before its
        trap runs — and the command never heard of it."""
        return [*self.client, "exec", "-u", "0", name, "/bin/sh", "-c", "kill -TERM -1"]

    def kill_argv(self, *names: str) -> list[str]:
        """SIGKILL and remove, now. docker: `rm -f`. podman: a container some `podman run` left
        "Stopping" when it was killed mid-stop is dropped by `rm -f` with its processes still
        running, refuses `kill`, and for a moment refuses `rm` too (podman 4.3): so its init is
        SIGKILLed by pid — once its /proc/PID/cgroup names the container, so a recycled pid is
        never hit — then `rm -f -t 0` (without -t 0, rm waits 10 s for a stop), again every
        0.5 s for up to 10 s while one is left."""
        if self.name != "podman":
            return [*self.client, "rm", "-f", *names]
        return ["/bin/sh", "-c", PODMAN_KILL, "mycli-kill", self.path, *names]

    def orphan_argv(self, name: str) -> list[str]:
        """Remove container `name` once its engine is gone, even if it is still being created."""
        return ["/bin/sh", "-c", REMOVE_ORPHAN, "mycli-orphan", self.path, name, *self.kill_argv(name)]

    def cleanup_argv(self, image: str, directory: Path) -> list[str]:
        """Empty `directory` as the container's root: what a killed run left, owned by root."""
        return [*self.client, "run", "--rm", "--pull", "never", "--network", "none", "--label",
                f"mycli.engine={self.engine}", "-v", f"{directory}:/w", "--entrypoint", "/bin/sh", image, "-c",
                "rm -rf /w/* /w/.[!.]* /w/..?*"]

    # calls ----------------------------------------------------------------------------------------

    def call(self, *args: str, stdin: bytes | None = None, timeout: float = CLIENT_TIMEOUT) -> subprocess.CompletedProcess:
        return self.run_client([*self.client, *args], stdin=stdin, timeout=timeout)

    def run_client(self, argv: list[str], stdin: bytes | None = None, timeout: float = CLIENT_TIMEOUT) -> subprocess.CompletedProcess:
        """Run the client with `argv`; a timeout or an OSError becomes a return code (124, 127)
        with the reason as its output, so callers handle one kind of failure."""
        try:
            return subprocess.run(argv, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  stdin=None if stdin is not None else subprocess.DEVNULL, env=self.env, timeout=timeout)
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess(argv, 124, f"{self.name} did not answer within {timeout:.0f} s".encode())
        except OSError as exc:
            return subprocess.CompletedProcess(argv, 127, f"cannot run {argv[0]}: {exc.strerror}".encode())

    def image_present(self, image: str, timeout: float = CLIENT_TIMEOUT) -> bool:
        return self.inspect_image(image, timeout) is not None

    def inspect_image(self, image: str, timeout: float = CLIENT_TIMEOUT) -> ImageInfo | None:
        """What the name resolves to here, now (None: not here). Asked on every run, not kept:
        a retag or a `docker pull` changes what the same name runs."""
        image = qualified_image(self.name, image)
        result = self.call("image", "inspect", "--format", IMAGE_FORMAT, image, timeout=timeout)
        if result.returncode != 0:
            return None
        return ImageInfo.parse(image, result.stdout.decode("utf-8", "replace"))

    def unreachable(self) -> str | None:
        """Why the runtime does not answer now (docker's daemon stopped), or None when it does."""
        result = self.call("version", timeout=10)
        if result.returncode == 0:
            return None
        lines = [line.strip() for line in result.stdout.decode("utf-8", "replace").splitlines() if line.strip()]
        return (lines[-1] if lines else f"{self.name} version exited {result.returncode}")[:200]

    def reap(self) -> list[str]:
        """Remove every container this engine labelled (a previous engine process's orphans)."""
        listed = self.call("ps", "-aq", "--filter", f"label=mycli.engine={self.engine}")
        ids = listed.stdout.decode().split() if listed.returncode == 0 else []
        if ids:
            self.run_client(self.kill_argv(*ids))
        return ids


IMAGE_FORMAT = "{{.Id}}\t{{json .RepoDigests}}\t{{json .Config.Entrypoint}}\t{{json .Config.WorkingDir}}"


@dataclass(frozen=True)
class ImageInfo:
    """An image as the runtime has it: its ID (sha256:…), the digest of its repository's manifest
    when the runtime knows one (docker: only for pulled images), its ENTRYPOINT and WORKDIR."""

    id: str
    digest: str | None
    entrypoint: tuple[str, ...]
    workdir: str

    @classmethod
    def parse(cls, image: str, text: str) -> "ImageInfo | None":
        try:
            image_id, digests, entrypoint, workdir = text.strip().split("\t")
            digests, entrypoint, workdir = json.loads(digests) or [], json.loads(entrypoint) or [], json.loads(workdir) or ""
        except ValueError:
            return None
        image_id = image_id if image_id.startswith("sha256:") else f"sha256:{image_id}"  # podman's has no prefix
        wanted = {repository(image), repository(image.removeprefix("docker.io/library/").removeprefix("docker.io/"))}
        digest = next((d.split("@", 1)[1] for d in digests if "@" in d and d.split("@", 1)[0] in wanted), None)
        return cls(image_id, digest, tuple(entrypoint), workdir)


def repository(image: str) -> str:
    """`registry:5000/org/name:tag@sha256:…` → `registry:5000/org/name`."""
    name = image.split("@", 1)[0]
    head, _, last = name.rpartition("/")
    return f"{head}/{last.split(':', 1)[0]}" if head else last.split(":", 1)[0]


def mountable(path: Path | str) -> bool:
    """Whether `-v HOST:TARGET` can name `path`: a ':' or ',' in it would split the option."""
    return not any(c in str(path) for c in ":,")


def applied_cpu(cpu: float, cores: int | None) -> float:
    """The --cpus a container gets: what was asked, but no more than the cores the runtime has
    (docker refuses more: "Range of CPUs is from 0.01 to 2.00")."""
    return cpu if not cores or cpu <= cores else cores


def choose_runtime(choice: str, environ: Mapping[str, str],
                   state_dir: Path) -> tuple[ContainerRuntime | None, str, str]:
    """(runtime or None for the host, why, why in a few words: what an ignored image's notice says).
    Raises ServerMisconfigured when an explicitly chosen runtime cannot run a container, or a
    setting is malformed. `auto` falls back to the host, naming a setting of ours that is wrong
    rather than "no container runtime" when that is why."""
    network = environ.get("MYCLI_CONTAINER_NETWORK") or None
    if network is not None and not _NETWORK_RE.match(network):
        raise ServerMisconfigured(f"MYCLI_CONTAINER_NETWORK {network[:40]!r} is not a network name (e.g. host, none, bridge)")
    if choice == "host":
        return None, "MYCLI_LOCAL_RUNTIME=host", "MYCLI_LOCAL_RUNTIME=host"
    if not mountable(state_dir):  # every run's workspace is mounted from it
        why = f"the state dir {state_dir} has a ':' or ',', which a container bind mount cannot name"
        if choice != "auto":
            raise ServerMisconfigured(f"MYCLI_LOCAL_RUNTIME={choice}, but {why}; pass a --state-dir (or MYCLI_HOME) without them")
        return None, f"{why}; pass a --state-dir (or MYCLI_HOME) without them", why
    failures, wrong = [], []
    for name in ("docker", "podman") if choice == "auto" else (choice,):
        runtime = ContainerRuntime.find(name, environ, engine_id(state_dir), network)
        if runtime is None:
            failures.append(f"{name}: not installed")
            continue
        try:
            result = Prober(runtime, Path(state_dir) / "probe").run()
        except SettingWrong as exc:  # auto names the setting once, before the runtimes' own words
            wrong.append(exc)
            failures.append(f"{name}: {exc.detail if choice == 'auto' else exc}")
            continue
        except ProbeFailed as exc:
            failures.append(f"{name}: {exc}")
            continue
        runtime.adopt(result.cores, result.limits, result.root_is_engine, result.image)
        how = "auto: " if choice == "auto" else ""
        return runtime, f"{how}a probe container ran in {result.seconds:.1f} s", ""
    if choice != "auto":
        raise ServerMisconfigured(f"MYCLI_LOCAL_RUNTIME={choice}, but {failures[0]}; see docs/troubleshooting.md "
                                  "(containers), or set MYCLI_LOCAL_RUNTIME=auto or host")
    short = wrong[0].setting if wrong else "no container runtime"
    return None, f"{short} ({'; '.join(failures)})", short
