"""One simulated Fargate task: its containers started in `dependsOn` order on a shared task
volume, each a host process with the container's command, its output shipped to the container's
awslogs stream.

The ECS rules played here (Container definitions, "Container dependency" and "essential" in the
ECS developer guide): a container starts once each dependency's condition holds — START (it has
started), COMPLETE (it has exited), SUCCESS (it exited 0) — and never when one can no longer
hold; when an essential container exits, the task stops; the task is STOPPED once every
container is. Stopping a task (StopTask, or an essential container's exit) never starts a
container that has not started, and stops the running ones in reverse dependency order, as
the ECS agent does ("when a dependency is defined for container startup, for container shutdown
it is reversed"): a container gets SIGTERM only once every container that depends on it has
stopped, and SIGKILL when it is still running `stopTimeout` seconds later (the container
definition's; ECS's default 30 s, Fargate's maximum 120 s).

Each task volume is a temporary directory bind-mounted at the volume's container path inside a
private mount namespace per container (`unshare -m`), so the scripts see the paths ECS gives
them.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import tempfile
import threading
import time

DEFAULT_STOP_TIMEOUT = 30  # ECS's, when a container definition has no stopTimeout
MAX_STOP_TIMEOUT = 120  # Fargate's


class CannotStart(Exception):
    """Raised by `make_run` for a container whose image is there but cannot run its command
    (CannotStartContainerError): it stops with that reason and no exit code; the task goes on
    without it unless it is essential."""


class ContainerRun:
    """One container: the command in its own session, output shipped to CloudWatch in batches."""

    def __init__(self, name, command, env, mounts, logs, group, stream, on_exit):
        self.name, self.command, self.env, self.mounts = name, list(command), env, mounts
        self.logs, self.group, self.stream = logs, group, stream
        self.on_exit = on_exit
        self.proc: subprocess.Popen | None = None
        self.stopping = False
        self.killer: threading.Timer | None = None
        self.exit_code: int | None = None

    def start(self) -> None:
        argv = self.command
        if self.mounts:
            binds = " && ".join(f'mount --bind "${i * 2}" "${i * 2 + 1}"' for i in range(len(self.mounts)))
            flat = [p for pair in self.mounts for p in pair]
            argv = ["unshare", "-m", "--propagation", "private", "/bin/sh", "-c",
                    f'{binds} && shift {len(flat) - 1} && cd / && exec "$@"', *flat, *self.command]
            # $0 is the first source: shift len-1 leaves the command in "$@"
        self.proc = subprocess.Popen(argv, env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, start_new_session=True, cwd="/")
        threading.Thread(target=self._pump, daemon=True).start()

    def request_stop(self, timeout: float) -> None:
        """`docker stop -t timeout`: SIGTERM now, SIGKILL if it still runs `timeout` s later."""
        if self.stopping or self.proc is None:
            return
        self.stopping = True
        self._signal(signal.SIGTERM)
        self.killer = threading.Timer(timeout, self.kill)
        self.killer.daemon = True
        self.killer.start()

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self._signal(signal.SIGKILL)

    def _signal(self, sig: int) -> None:
        """SIGTERM goes to the command only (init forwards it to its child); SIGKILL ends the
        whole container, as its teardown does."""
        try:
            if sig == signal.SIGKILL:
                os.killpg(self.proc.pid, sig)
            else:
                os.kill(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def _pump(self) -> None:
        waiter = threading.Thread(target=self._wait, daemon=True)
        waiter.start()
        buffer: list[dict] = []
        partial = b""
        fd = self.proc.stdout.fileno()
        while True:
            # Like the awslogs driver: ship what has arrived every 0.2 s, not only when more comes.
            ready, _, _ = select.select([fd], [], [], 0.2)
            chunk = os.read(fd, 65536) if ready else None
            if chunk == b"":
                break
            if chunk:
                *lines, partial = (partial + chunk).split(b"\n")
                now = int(time.time() * 1000)
                buffer += [{"timestamp": now, "message": line.decode("utf-8", "replace")} for line in lines]
            if buffer and (not ready or len(buffer) > 5000):
                self._flush(buffer)
                buffer = []
        if partial:
            buffer.append({"timestamp": int(time.time() * 1000), "message": partial.decode("utf-8", "replace")})
        self._flush(buffer)
        waiter.join()
        rc = self.proc.returncode
        self.exit_code = rc if rc >= 0 else 128 - rc
        if self.killer is not None:
            self.killer.cancel()
        self.on_exit(self)

    def _wait(self) -> None:
        """When the command exits the container ends: every process left in it is killed."""
        self.proc.wait()
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def _flush(self, events: list[dict]) -> None:
        events = [e for e in events if e["message"]]  # docker's awslogs driver skips empty lines
        for start in range(0, len(events), 5000):
            self.logs.put_log_events(logGroupName=self.group, logStreamName=self.stream, logEvents=events[start:start + 5000])


class TaskRun:
    """The containers of one task, started and stopped as ECS orders them.

    `make_run(definition, mounts, on_exit)` builds a ContainerRun (or None when the task cannot
    start, after reporting why; or raises CannotStart: that container alone fails);
    `on_container(name, status, exit_code[, reason])` and
    `on_stopped(stop_code, reason)` report back to the simulated control plane."""

    def __init__(self, definitions: list[dict], volumes: list[dict], make_run, on_container, on_stopped):
        self.definitions = {d["name"]: d for d in definitions}
        self.order = [d["name"] for d in definitions]
        self.make_run, self.on_container, self.on_stopped = make_run, on_container, on_stopped
        self.volume_dirs = {v["name"]: tempfile.mkdtemp(prefix=f"fargate-vol-{v['name']}-") for v in volumes or []}
        self.state: dict[str, str] = {name: "PENDING" for name in self.order}  # PENDING RUNNING STOPPED
        self.runs: dict[str, ContainerRun] = {}
        self.stop_code: str | None = None
        self.reason: str | None = None
        self.lock = threading.RLock()

    def start(self) -> None:
        self._advance()

    def _mounts(self, definition: dict) -> list[tuple[str, str]]:
        return [(self.volume_dirs[m["sourceVolume"]], m["containerPath"]) for m in definition.get("mountPoints") or []
                if m.get("sourceVolume") in self.volume_dirs]

    def _condition(self, dependency: dict) -> str:
        """'yes', 'no' (can never hold) or 'wait'."""
        other = dependency["containerName"]
        state, run = self.state.get(other), self.runs.get(other)
        condition = dependency.get("condition", "START")
        if condition == "START":
            return "yes" if state in ("RUNNING", "STOPPED") and run else ("no" if state == "STOPPED" else "wait")
        if state != "STOPPED":
            return "wait"
        if condition == "COMPLETE":
            return "yes" if run else "no"
        return "yes" if run and run.exit_code == 0 else "no"  # SUCCESS

    def _advance(self) -> None:
        with self.lock:
            changed = True
            while changed and self.stop_code is None:
                changed = False
                for name in self.order:
                    if self.state[name] != "PENDING":
                        continue
                    answers = [self._condition(d) for d in self.definitions[name].get("dependsOn") or []]
                    if "no" in answers:
                        self.state[name] = "STOPPED"  # its dependency failed: it never runs
                        self.on_container(name, "STOPPED", None)
                        changed = True
                    elif all(a == "yes" for a in answers):
                        try:
                            run = self.make_run(self.definitions[name], self._mounts(self.definitions[name]), self._exited)
                        except CannotStart as failed:
                            self.state[name] = "STOPPED"
                            self.on_container(name, "STOPPED", None, str(failed))
                            if self.definitions[name].get("essential", True):
                                self._stop_all("TaskFailedToStart", str(failed))
                            changed = True
                            continue
                        if run is None:
                            return
                        self.state[name] = "RUNNING"
                        self.runs[name] = run
                        self.on_container(name, "RUNNING", None)
                        run.start()
                        changed = True
            self._maybe_stopped()

    def _exited(self, run: ContainerRun) -> None:
        with self.lock:
            self.state[run.name] = "STOPPED"
            self.on_container(run.name, "STOPPED", run.exit_code)
            if self.definitions[run.name].get("essential", True) and self.stop_code is None:
                self._stop_all("EssentialContainerExited", f"Essential container in task exited ({run.name})")
            elif self.stop_code is not None:
                self._stop_ready()  # a container it held back may stop now
        self._advance()

    def stop(self, stop_code: str, reason: str) -> None:
        """StopTask: containers not started never start; running ones stop in reverse order."""
        with self.lock:
            if self.stop_code is None:
                self._stop_all(stop_code, reason)
            self._maybe_stopped()

    def _stop_all(self, stop_code: str, reason: str) -> None:
        self.stop_code, self.reason = stop_code, reason
        for name in self.order:
            if self.state[name] == "PENDING":
                self.state[name] = "STOPPED"
                self.on_container(name, "STOPPED", None)
        self._stop_ready()

    def _stop_ready(self) -> None:
        """SIGTERM to each running container whose dependents have all stopped; the others wait
        for theirs (called again each time a container stops)."""
        for name in self.order:
            if self.state[name] != "RUNNING":
                continue
            dependents = [other for other, definition in self.definitions.items()
                          if any(d.get("containerName") == name for d in definition.get("dependsOn") or [])]
            if all(self.state[other] == "STOPPED" for other in dependents):
                timeout = self.definitions[name].get("stopTimeout") or DEFAULT_STOP_TIMEOUT
                self.runs[name].request_stop(min(timeout, MAX_STOP_TIMEOUT))

    def fail(self, stop_code: str, reason: str) -> None:
        with self.lock:
            self.stop(stop_code, reason)

    def _maybe_stopped(self) -> None:
        if all(s == "STOPPED" for s in self.state.values()):
            for path in self.volume_dirs.values():
                shutil.rmtree(path, ignore_errors=True)
            self.volume_dirs = {}
            self.on_stopped(self.stop_code or "EssentialContainerExited", self.reason or "Essential container in task exited")
            self.on_stopped = lambda *a: None

    def kill(self) -> None:
        for run in list(self.runs.values()):
            run.kill()
