"""A test-only stand-in for Fargate, running inside the process that hosts the moto server.

moto accepts RunTask but runs nothing: its tasks report exit code 0 and their containers stay
PENDING. This simulator plays the part of AWS's data plane: it watches moto's ECS backend for
started tasks, runs each task's container command with the local /bin/sh (in a private mount
namespace with its own /workspace when `unshare` is allowed), hands the container the task
definition's `secrets` resolved from Secrets Manager as ECS would, ships the output to the
CloudWatch stream `{prefix}/{container}/{task-id}` through the moto API, and marks the task
STOPPED with the command's exit code (after `deprovision_seconds` in DEPROVISIONING, as ECS
detaches the task's network interface, when a test sets it). StopTask behaves as on ECS: SIGTERM, a grace period,
SIGKILL, then STOPPED with stopCode UserInitiated.

It reaches moto's backend objects directly because it *is* the AWS side; it never touches
mycli's code.
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
from datetime import datetime, timezone

import boto3
from moto.ecs.models import ecs_backends
from moto.moto_api import state_manager

ACCOUNT = "123456789012"
STOP_GRACE_SECONDS = 5.0
UNPULLABLE_PREFIX = "doesnotexist/"  # images with this prefix fail as an image that cannot be pulled


def _can_unshare() -> bool:
    if not shutil.which("unshare"):
        return False
    probe = subprocess.run(["unshare", "-m", "--propagation", "private", "true"], capture_output=True)
    return probe.returncode == 0


class FargateSimulator:
    def __init__(self, region: str):
        self.region = region
        self.backend = ecs_backends[ACCOUNT][region]
        self.logs = boto3.client("logs", region_name=region)
        self.secrets = boto3.client("secretsmanager", region_name=region)
        self.isolate = _can_unshare()
        self.seen: set[str] = set()
        self.provisioning: set[str] = set()
        self.runs: dict[str, "_Run"] = {}
        self.started_commands: dict[str, list[str]] = {}
        self.held = threading.Event()  # set: tasks stay PROVISIONING (an image that takes long to pull)
        # how long a task stays DEPROVISIONING (ECS detaching its network interface) before STOPPED;
        # 0 by default, so runs end at once
        self.deprovision_seconds = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="fargate-sim", daemon=True)
        self._original_stop_task = None

    # lifecycle -----------------------------------------------------------------------------

    def start(self) -> "FargateSimulator":
        # Tasks keep the state we give them (moto would otherwise step them on every describe).
        state_manager.set_transition(model_name="ecs::task", transition={"progression": "manual", "times": 10**9})
        self._original_stop_task = self.backend.stop_task
        self.backend.stop_task = self._stop_task  # StopTask as ECS does it: stopping, not stopped
        self._original_run_task = self.backend.run_task
        self.backend.run_task = self._run_task  # RunTask as ECS does it: the definition is captured
        if self.isolate:
            os.makedirs("/workspace", exist_ok=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        for run in list(self.runs.values()):
            run.kill()
        if self._original_stop_task is not None:
            self.backend.stop_task = self._original_stop_task
            self.backend.run_task = self._original_run_task

    # moto hooks ----------------------------------------------------------------------------

    def _run_task(self, *args, **kwargs):
        """A task keeps the container definition it started with, even if its task definition
        revision is deregistered and deleted right after (as the engine does with one-off ones)."""
        tasks = self._original_run_task(*args, **kwargs)
        for task in tasks:
            definition = self.backend.describe_task_definition(task.task_definition_arn)
            task.sim_container = _camel(definition.container_definitions[0])
            task.last_status = "PROVISIONING"  # ECS's first state (moto starts tasks at RUNNING)
        return tasks

    def _stop_task(self, cluster_str: str, task_str: str, reason: str):
        task = self._find(task_str)
        if task is None or task.last_status == "STOPPED":
            return self._original_stop_task(cluster_str, task_str, reason)
        task.desired_status = "STOPPED"
        task.stopped_reason = reason
        task.stop_code = "UserInitiated"
        task.last_status = "DEACTIVATING"
        return task

    def _find(self, task_str: str):
        task_id = task_str.rsplit("/", 1)[-1]
        for tasks in self.backend.tasks.values():
            for arn, task in tasks.items():
                if arn.endswith(task_id):
                    return task
        return None

    # the data plane -----------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.is_set():
            for tasks in list(self.backend.tasks.values()):
                for arn, task in list(tasks.items()):
                    if arn not in self.seen and arn not in self.provisioning:
                        self.provisioning.add(arn)
                        task.last_status = "PROVISIONING"
                    if arn in self.provisioning and task.desired_status == "STOPPED":
                        self.provisioning.discard(arn)
                        self.seen.add(arn)
                        self._finish(task, None, task.stop_code or "UserInitiated", task.stopped_reason or "Task stopped")
                        continue
                    if arn in self.provisioning and not self.held.is_set():
                        self.provisioning.discard(arn)
                        self.seen.add(arn)
                        try:
                            self._launch(arn, task)
                        except Exception as exc:  # the simulated AWS must not die silently
                            import traceback

                            traceback.print_exc()
                            self._finish(task, None, "TaskFailedToStart", f"simulator: {exc}")
                    run = self.runs.get(arn)
                    if run and task.desired_status == "STOPPED":
                        run.request_stop()
            time.sleep(0.05)

    def _launch(self, arn: str, task) -> None:
        container = getattr(task, "sim_container", None)
        if container is None:
            container = _camel(self.backend.describe_task_definition(task.task_definition_arn).container_definitions[0])
        name = container.get("name")
        override = next((o for o in (task.overrides or {}).get("containerOverrides", []) if o.get("name") == name), {})
        command = override.get("command") or container.get("command")
        if command is None:
            raise RuntimeError(f"no command: overrides={task.overrides!r} container={container!r}"[:2000])
        image = container.get("image") or ""
        self.started_commands[arn] = list(command or [])
        task.created_at = datetime.now(timezone.utc)
        if image.startswith(UNPULLABLE_PREFIX):
            self._finish(task, None, "TaskFailedToStart",
                         f"CannotPullContainerError: pull image manifest has been retried 5 time(s): {image}: not found")
            return
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/root", "LANG": "C.UTF-8"}
        env.update({e["name"]: e["value"] for e in container.get("environment") or []})
        try:
            env.update({s["name"]: self._secret(s["valueFrom"]) for s in container.get("secrets") or []})
        except Exception as exc:  # as ECS reports a secret it cannot read: the task never starts
            self._finish(task, None, "TaskFailedToStart",
                         f"ResourceInitializationError: unable to pull secrets or registry auth: {exc}")
            return
        env.update({e["name"]: e["value"] for e in override.get("environment") or []})
        options = (container.get("logConfiguration") or {}).get("options") or {}
        group = options["awslogs-group"]
        stream = f"{options['awslogs-stream-prefix']}/{name}/{arn.rsplit('/', 1)[-1]}"
        self.logs.create_log_stream(logGroupName=group, logStreamName=stream)
        task.last_status = "RUNNING"
        task.started_at = datetime.now(timezone.utc)
        task.containers[0].last_status = "RUNNING"
        run = _Run(command, env, self.isolate, self.logs, group, stream, on_exit=lambda rc: self._exited(task, rc))
        self.runs[arn] = run
        run.start()

    def _secret(self, value_from: str) -> str:
        """ECS's JSON-key form: `{secret}:{json-key}:{stage}:{version}`."""
        import json

        parts = value_from.split(":")
        secret_id, key = ":".join(parts[:7]), parts[7] if len(parts) > 7 else ""
        value = self.secrets.get_secret_value(SecretId=secret_id)["SecretString"]
        return json.loads(value)[key] if key else value

    def _exited(self, task, rc: int) -> None:
        if task.desired_status == "STOPPED":
            self._finish(task, rc, "UserInitiated", task.stopped_reason or "Task stopped by user")
        else:
            self._finish(task, rc, "EssentialContainerExited", "Essential container in task exited")

    def _finish(self, task, exit_code: int | None, stop_code: str, reason: str) -> None:
        container = task.containers[0]
        container.last_status = "STOPPED"
        container.exitCode = exit_code
        task.stop_code = stop_code
        task.stopped_reason = reason
        task.stopped_at = datetime.now(timezone.utc)
        task.desired_status = "STOPPED"
        if self.deprovision_seconds > 0:
            task.last_status = "DEPROVISIONING"
            threading.Timer(self.deprovision_seconds, setattr, (task, "last_status", "STOPPED")).start()
        else:
            task.last_status = "STOPPED"


def _camel(value):
    """moto keeps CloudFormation's PascalCase keys in container definitions; ECS speaks camelCase."""
    if isinstance(value, dict):
        return {(k[:1].lower() + k[1:]): _camel(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_camel(v) for v in value]
    return value


class _Run:
    """One container: the command in its own session, output shipped to CloudWatch in batches."""

    def __init__(self, command, env, isolate, logs, group, stream, on_exit):
        self.command, self.env, self.isolate = list(command), env, isolate
        self.logs, self.group, self.stream = logs, group, stream
        self.on_exit = on_exit
        self.proc: subprocess.Popen | None = None
        self.stopping = False
        self.workspace = tempfile.mkdtemp(prefix="fargate-ws-")

    def start(self) -> None:
        argv = self.command
        if self.isolate:
            # A private /workspace per task, as each Fargate task has its own filesystem.
            argv = ["unshare", "-m", "--propagation", "private", "/bin/sh", "-c",
                    'mount --bind "$0" /workspace && cd / && exec "$@"', self.workspace, *self.command]
        self.proc = subprocess.Popen(argv, env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, start_new_session=True, cwd="/")
        threading.Thread(target=self._pump, daemon=True).start()

    def request_stop(self) -> None:
        if self.stopping or self.proc is None:
            return
        self.stopping = True
        self._signal(signal.SIGTERM)
        threading.Timer(STOP_GRACE_SECONDS, self.kill).start()

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
        shutil.rmtree(self.workspace, ignore_errors=True)
        rc = self.proc.returncode
        self.on_exit(rc if rc >= 0 else 128 - rc)

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
