"""One execution in a container: what ProcessRun does differently when the script runs in docker
or podman rather than on the host.

Before the start: the image is looked up, and pulled when missing, its progress in the log; a
pull that fails ends the run as "could not start" (200) with `image not found: …` when the registry
says it has no such image, `could not pull …` otherwise. To stop: TERM
to every process inside (the script's traps run, the workspace is given back), then SIGKILL and
removal after the grace. At the end: the script's own exit code is read from /mycli/rc, so a
runtime that could not start the container (125, 126, 127 — or catatonit's 1 — and no rc) is
told apart from a command that exited with those codes; and the workspace is emptied as the
container's root when a killed run left files the engine's user cannot delete.
"""

from __future__ import annotations

import json
import logging
import os
import re
import selectors
import shutil
import threading
import time
from pathlib import Path
from typing import Callable
from urllib.parse import unquote, urlsplit

from ..errors import BadRequest
from ..shell import IMAGE_ID_VAR, NOT_STARTED_EXIT_CODE, TIMEOUT_EXIT_CODE, timed_out_words
from ..sizes import Size, format_cpu
from .local_runtime import CONTROL, ContainerRuntime, ImageInfo, applied_cpu, mountable, qualified_image
from .local_spawn import Child

log = logging.getLogger("mycli.local")

FILE_DIRS = ("inputs", "outputs", "local_changes")
TERM_RETRY = 0.2  # seconds between asks while the container is not running yet
TERM_PATIENCE = 30.0  # a container not running this long after a stop is removed
Say = Callable[[list[str]], None]
Spawn = Callable[[list[str], Path, dict, int, int], Child]  # local_spawn.Spawner.spawn
Outcome = tuple[int | None, str, str]  # exit code, reason, stop code


class ContainerRun:
    def __init__(self, runtime: ContainerRuntime, execution_id: str, image: str, workspace: Path, control: Path,
                 size: Size | None, stdin: bool, files: Path | None = None, local_changes: bool = False,
                 repo: str | None = None):
        self.runtime, self.image, self.size = runtime, image, size
        self.workspace, self.control, self.files = workspace, control, files
        self.name = runtime.container_name(execution_id)
        # the run's inputs/, outputs/ (and local_changes/, read-only) at /mycli/NAME
        local_changes = local_changes and files is not None
        mounts = () if files is None else tuple(
            (files / name, f"{CONTROL}/{name}", name == "local_changes")
            for name in FILE_DIRS if name != "local_changes" or local_changes)
        local_repo = local_repo_path(repo)
        linked = linked_git_dirs(local_repo) if local_repo is not None else ()
        if local_repo is not None:  # cloned from inside: the same paths, read-only, so the script's URL holds
            mounts += tuple((path, str(path), True) for path in outermost((local_repo, *linked)))
        env_names = ("MYCLI_EXECUTION_ID", "PYTHONUNBUFFERED", IMAGE_ID_VAR, *(("MYCLI_CREDENTIALS_STDIN",) if stdin else ()),
                     *(("MYCLI_INPUTS", "MYCLI_OUTPUTS") if files else ()),
                     *(("MYCLI_LOCAL_CHANGES",) if local_changes else ()))
        self.argv = runtime.run_argv(
            name=self.name, image=image, workspace=workspace, control=control,
            labels={"mycli.execution": execution_id}, stdin=stdin, size=size, cores=runtime.cores,
            chown=runtime.chown, env_names=env_names, mounts=mounts,
            # git refuses to clone a repository another user owns (the engine's user's, seen by a
            # rootful container's root): trusted in the container's own, throwaway, git config
            # (a worktree's or submodule's git dir is checked, and named, on its own)
            trusted=() if local_repo is None else (str(local_repo), f"{local_repo}/.git", *map(str, linked)),
        )
        # what the supervisor runs if the engine dies with this run going (local_supervisor.py)
        self.orphan_cleanup = (runtime.orphan_argv(self.name), runtime.env)
        self._pull: Child | None = None
        self.image_info: ImageInfo | None = None  # once prepare() found the image
        self._ended = threading.Event()  # the runtime's client has ended: nothing more to ask

    # before -------------------------------------------------------------------------------------------

    def write_files(self, script: str) -> None:
        """The workspace and the control dir (script.sh inside), open to the image's user."""
        for directory in (self.workspace, self.control):
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.runtime.prepare_dirs(self.workspace, self.control)
        if self.files is not None:
            for name in FILE_DIRS:  # mount points, the engine's own (else the runtime makes them, as root)
                (self.control / name).mkdir(mode=0o700, exist_ok=True)
            self.runtime.prepare_dirs(self.files / "inputs", self.files / "outputs")
        path = self.control / "script.sh"
        path.write_text(script, encoding="utf-8")
        path.chmod(0o644)

    def prepare(self, say: Say, stopping: Callable[[], bool], timeout_seconds: int, spawn: Spawn) -> Outcome | None:
        """Make sure the image is here, within the run's timeout; None when it is, else how the run ends.
        The pull runs under the engine's supervisor (`spawn`), so it ends if the engine dies."""
        deadline = time.monotonic() + timeout_seconds
        self.image_info = self.runtime.inspect_image(self.image)
        if self.image_info is not None:
            self._say_image(say)
            return None
        say([f"→ Pulling {self.image} ({self.runtime.name} pull)..."])
        argv = [*self.runtime.client, "pull", qualified_image(self.runtime.name, self.image)]
        out_r, out_w = os.pipe()
        stdin = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        try:
            self._pull = child = spawn(argv, Path("/"), self.runtime.env, stdin, out_w)
        except OSError as exc:
            os.close(out_r)
            return NOT_STARTED_EXIT_CODE, f"could not pull {self.image} (cannot run {argv[0]}: {exc.strerror})", "TaskFailedToStart"
        finally:
            os.close(stdin)
            os.close(out_w)
        try:
            last, ended = _follow(out_r, child, say, lambda: stopping() or time.monotonic() >= deadline)
            if not ended:
                child.kill()
                _follow(out_r, child, lambda lines: None, lambda: False)  # until it is gone
        finally:
            os.close(out_r)
            child.close()
        if not ended:
            if stopping():
                return None  # the caller reports the stop
            return TIMEOUT_EXIT_CODE, timed_out_words(timeout_seconds, " while pulling the image"), "Timeout"
        if child.status is None or os.waitstatus_to_exitcode(child.status) != 0:
            reason = pull_failure(self.image, last)
            say([f"✗ {reason}"])
            return NOT_STARTED_EXIT_CODE, reason, "TaskFailedToStart"
        say([f"✓ Pulled {self.image}"])
        self.image_info = self.runtime.inspect_image(self.image)
        self._say_image(say)
        return None

    def _say_image(self, say: Say) -> None:
        info = self.image_info
        if info is not None and info.entrypoint:
            say([f"→ The image's ENTRYPOINT {json.dumps(list(info.entrypoint))[:200]} is not run: the command runs "
                 "under its /bin/sh (docs/troubleshooting.md)"])

    def image_fields(self) -> dict[str, str | None]:
        """The run's record of the image that ran (Execution.image_id, image_digest)."""
        info = self.image_info
        return {} if info is None else {"image_id": info.id, "image_digest": info.digest}

    def client_env(self) -> dict[str, str]:
        """What the runtime's client passes on with `-e` once the image is known: its ID, for the
        log header (`→ Image: NAME (sha256:…)`)."""
        return {} if self.image_info is None else {IMAGE_ID_VAR: self.image_info.id}

    # stopping -----------------------------------------------------------------------------------------

    def term(self, delivered: Callable[[], None]) -> None:
        """TERM inside the container, in the background (the caller holds a lock); `delivered`
        is called once it got there (the grace before SIGKILL starts then). A stop sent right
        after the exec finds no running container yet (the client is still creating it): it is
        asked again until the container runs, or its client ends; one that never runs within
        TERM_PATIENCE is removed."""
        def ask():
            give_up = time.monotonic() + TERM_PATIENCE
            while not self._ended.is_set():
                if self.runtime.run_client(self.runtime.stop_argv(self.name), timeout=15).returncode == 0:
                    delivered()
                    return
                if time.monotonic() >= give_up:
                    self.kill()
                    return
                self._ended.wait(TERM_RETRY)
        threading.Thread(target=ask, name=f"term-{self.name}", daemon=True).start()

    def kill(self) -> None:
        """SIGKILL and remove; killing the `run` client alone would leave the container running."""
        self.runtime.run_client(self.runtime.kill_argv(self.name), timeout=15)
        if self._pull is not None and not self._pull.finished:
            self._pull.kill()

    # after ----------------------------------------------------------------------------------------------

    def outcome(self, rc: int) -> Outcome | None:
        """What the run's end means, when it is not simply `rc` (None: the client's own code stands)."""
        try:
            script_rc = (self.control / "rc").read_text().strip()
        except OSError:
            script_rc = ""
        if script_rc.isdigit():
            if self.oom_kills():
                return int(script_rc), self.out_of_memory(), "Killed"
            return None if int(script_rc) == rc else (int(script_rc), f"Command exited with code {script_rc}", "EssentialContainerExited")
        # no script's code: the container was killed (rc >= 128) or never started. A runtime that
        # does not answer now (docker's daemon stopped) did it, not the command nor its memory.
        lost = self.runtime.unreachable() if rc != 0 else None
        if lost is not None:
            words = f"{self.runtime.name} stopped answering ({lost}); start {self.runtime.name} again and re-run"
            if rc >= 128:
                return rc, f"Killed: the container ended with its runtime: {words}", "Killed"
            return NOT_STARTED_EXIT_CODE, f"Could not start the container: {words}", "TaskFailedToStart"
        if rc == 137:
            memory = f" (memory limit {self.size.memory} MiB)" if self.size else ""
            return rc, f"Killed: the container was killed (SIGKILL), e.g. out of memory{memory}", "Killed"
        if 0 < rc < 128:  # the runtime (125-127) or the container's init (catatonit: 1) failed: no script ran
            return (NOT_STARTED_EXIT_CODE, f"Could not start the container ({self.runtime.name} exited {rc}; the log says why)",
                    "TaskFailedToStart")
        if rc == 0:  # something ended with 0 but never ran the wrapper: no command ran, nothing succeeded
            return (NOT_STARTED_EXIT_CODE, f"The command did not run: the container exited 0 without running "
                    f"mycli's script (its {CONTROL}/rc was never written)", "TaskFailedToStart")
        return None

    def oom_kills(self) -> int:
        """How many processes the kernel killed for the container's memory (0: none, or unknown)."""
        try:
            count = (self.control / "oom_kill").read_text().strip()
        except OSError:
            return 0
        return int(count) if count.isdigit() else 0

    def out_of_memory(self) -> str:
        limit = f"its {self.size.memory} MiB memory limit" if self.size else "the memory it could have"
        return f"Out of memory: the run went over {limit} and the kernel killed a process"

    def cleanup(self, ended_normally: bool) -> None:
        """Leave nothing behind: the container (a run that was killed or stopped early may have
        been created after its client died) and the workspace, however its files are owned."""
        self._ended.set()
        if not ended_normally:
            self.kill()
        for directory in (self.workspace, self.control):
            shutil.rmtree(directory, ignore_errors=True)
            if directory.exists():
                self.empty(self.runtime, directory)

    @staticmethod
    def empty(runtime: ContainerRuntime, directory: Path) -> None:
        """Remove `directory` though a container's root left files in it the engine's user cannot
        delete (a run killed before its final chown): emptied by a container, then removed."""
        if runtime.probe_image:
            log.info("emptying %s as the container's root: it holds files the engine's user cannot delete", directory)
            result = runtime.run_client(runtime.cleanup_argv(runtime.probe_image, directory), timeout=60)
            if result.returncode != 0:
                log.warning("could not empty %s as the container's root: %s", directory,
                            result.stdout.decode("utf-8", "replace")[-300:])
        shutil.rmtree(directory, ignore_errors=True)


def local_repo_path(repo: str | None) -> Path | None:
    """The host directory a repository path or file:// URL names, when it exists: a container sees
    none of the host's files, so the run mounts it. None for a remote URL, or a path that is not
    there (the clone then fails saying so; docker would create a missing bind source, as root)."""
    if not repo:
        return None
    if repo.startswith("file://"):
        parts = urlsplit(repo)
        if parts.netloc not in ("", "localhost"):
            return None
        repo = unquote(parts.path)
    if not repo.startswith("/"):
        return None
    path = Path(repo)
    if not path.is_dir():
        return None
    if not mountable(repo):
        raise BadRequest(f"repo {repo[:80]!r} has a ':' or ',', which a container bind mount cannot name; "
                         "move or link the repository to a path without them")
    linked_git_dirs(path)  # a worktree's or submodule's git dir is mounted too: the same 400 for it
    return path


def linked_git_dirs(repo: Path) -> tuple[Path, ...]:
    """The git dirs outside `repo` that its clone reads, to be mounted too: a worktree's or a
    submodule's `.git` is a file, `gitdir: PATH` (relative to `repo`), naming its git dir
    elsewhere — a worktree's in the main repository's .git/worktrees/NAME, whose `commondir`
    names the main .git (objects, refs); a submodule's in the superproject's .git/modules/NAME.
    Paths as git joins them (not symlink-resolved), so they mean the same inside the container.
    git checks each one's owner (a rootful container's root trusts them by name)."""
    try:
        text = (repo / ".git").read_text(encoding="utf-8") if (repo / ".git").is_file() else ""
    except (OSError, UnicodeDecodeError):
        return ()
    if not text.startswith("gitdir: "):
        return ()
    gitdir = os.path.normpath(os.path.join(repo, text[len("gitdir: "):].strip()))
    found = [gitdir]
    try:
        common = Path(gitdir, "commondir").read_text(encoding="utf-8").strip()
        found.append(os.path.normpath(os.path.join(gitdir, common)))
    except (OSError, UnicodeDecodeError):
        pass
    kept = [Path(p) for p in dict.fromkeys(found) if os.path.isdir(p)]
    for path in kept:
        if not mountable(path):
            raise BadRequest(f"repo {str(repo)[:80]!r} keeps its git data in {str(path)[:80]!r}, which has a ':' or ',' "
                             "that a container bind mount cannot name; move or link the repository to a path without them")
    return tuple(kept)


def outermost(paths: tuple[Path, ...]) -> list[Path]:
    """`paths` without those another of them holds (one bind mount shows both)."""
    return [p for p in paths if not any(o != p and p.is_relative_to(o) for o in paths)]


# What a registry says of a name it does not have (docker, podman; Docker Hub answers "denied" for
# a repository that does not exist as for a private one)
_ABSENT = re.compile(r"manifest unknown|name unknown|not found|does not exist|requested access to the resource is denied",
                     re.IGNORECASE)


def pull_failure(image: str, last: str) -> str:
    """A failed pull's reason: "image not found" only when the registry said so; anything else
    (no network, a registry that does not answer, TLS) is "could not pull": the image may exist."""
    said = f" ({last})" if last else ""
    return f"image not found: {image}{said}" if _ABSENT.search(last) else f"could not pull {image}{said}"


def size_lines(runtime: ContainerRuntime, size: Size | None) -> list[str]:
    """The log's word on the size: asked, applied, and whether the runtime enforces it."""
    if size is None:
        return []
    cpu = applied_cpu(size.cpu, runtime.cores)
    lines = [f"→ Size: {format_cpu(cpu)} vCPU, {size.memory} MiB ({runtime.name} --cpus --memory)"]
    if cpu != size.cpu:
        lines.append(f"→ Asked for {format_cpu(size.cpu)} vCPU; {runtime.name} has {runtime.cores} cores here, "
                     f"so --cpus {format_cpu(cpu)}")
    if not runtime.limits:
        lines.append(f"⚠ {runtime.name} does not enforce --cpus/--memory on this machine (its probe read no limit "
                     "back, e.g. rootless podman on cgroup v1): the size is not enforced")
    return lines


def _follow(fd: int, child: Child, say: Say, give_up: Callable[[], bool]) -> tuple[str, bool]:
    """Pass a pull's output to the log line by line until it ended (its output closed and its
    supervisor said so); (its last line, whether it ended)."""
    last, buffer, eof = "", b"", False
    os.set_blocking(fd, False)
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ, "out")
        sel.register(child, selectors.EVENT_READ, "control")
        while not (eof and child.finished):
            if give_up():
                return last, False
            for key, _ in sel.select(0.25):
                if key.data == "control":
                    child.read()
                    if child.finished:
                        sel.unregister(child)
                    continue
                try:
                    data = os.read(fd, 65536)
                except BlockingIOError:
                    continue
                if not data:
                    eof = True
                    sel.unregister(fd)
                    continue
                buffer += data
                *lines, buffer = buffer.split(b"\n")
                lines = [line.decode("utf-8", "replace").rstrip("\r") for line in lines]
                lines = [line for line in lines if line.strip()]
                if lines:
                    say(lines)
                    last = lines[-1].strip()
    if buffer.strip():
        last = buffer.decode("utf-8", "replace").strip()
        say([last])
    return last[:300], True
