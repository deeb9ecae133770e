"""A test-only stand-in for Fargate, running inside the process that hosts the moto server.

moto accepts RunTask but runs nothing: its tasks report exit code 0 and their containers stay
PENDING. This simulator plays the part of AWS's data plane: it watches moto's ECS backend for
started tasks and runs each task's containers (fargate_task.py: `dependsOn`, essential
containers, a shared task volume at its container path) as local processes — each its
`entryPoint` (the definition's, else the image's ENTRYPOINT a test gives in `image_entrypoints`)
followed by its command, as ECS does — hands each container
the task definition's `secrets` resolved from Secrets Manager as ECS would and the task role's
credentials through a container credentials endpoint (fargate_creds.py), points the helper
containers' S3 URL (the bucket's regional domain name in the template) at the moto server,
ships each container's output to its CloudWatch stream `{prefix}/{container}/{task-id}` through
the moto API, and marks the task STOPPED with each container's exit code (after
`deprovision_seconds` in DEPROVISIONING, as ECS detaches the task's network interface, when a
test sets it). StopTask behaves as on ECS: containers stop in reverse dependency order, SIGTERM,
a grace period, SIGKILL, then STOPPED with stopCode UserInitiated.

It reaches moto's backend objects directly because it *is* the AWS side; it never touches
mycli's code.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import threading
import time
from datetime import datetime, timezone

import boto3
from moto.ecs.models import Container, ecs_backends
from moto.moto_api import state_manager

from tests.support.fargate_creds import CredentialsEndpoint
from tests.support.fargate_metadata import MetadataEndpoint, container_entry
from tests.support.fargate_task import CannotStart, ContainerRun, TaskRun

ACCOUNT = "123456789012"
UNPULLABLE_PREFIX = "doesnotexist/"  # images with this prefix fail as an image that cannot be pulled
# images with this prefix are pulled but cannot start their command (no /bin/sh in them): the
# container stops with CannotStartContainerError and no exit code, the task goes on without it
NO_SHELL_PREFIX = "noshell/"


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
        self.s3_endpoint = os.environ.get("AWS_ENDPOINT_URL", "").rstrip("/")
        self.isolate = _can_unshare()
        self.credentials = CredentialsEndpoint()
        self.metadata = MetadataEndpoint()
        self.seen: set[str] = set()
        self.provisioning: set[str] = set()
        self.runs: dict[str, TaskRun] = {}
        self.started_commands: dict[str, list[str]] = {}  # task ARN → the executor's command
        self.environments: dict[tuple[str, str], dict] = {}  # (task ARN, container) → its environment
        # an image's ENTRYPOINT (image → argv), as its config would have it: ECS runs a container
        # as `entryPoint` (the definition's, else the image's) followed by its command
        self.image_entrypoints: dict[str, list[str]] = {}
        # the digest DescribeTasks reports for an image once its container runs (image → sha256:…);
        # one made from the name when a test gives none
        self.image_digests: dict[str, str] = {}
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
        self.backend.run_task = self._run_task  # RunTask as ECS does it: every container, definition captured
        if self.isolate:
            os.makedirs("/mycli", exist_ok=True)  # the mount point of task volumes (bound per container)
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        for run in list(self.runs.values()):
            run.kill()
        self.credentials.close()
        self.metadata.close()
        if self._original_stop_task is not None:
            self.backend.stop_task = self._original_stop_task
            self.backend.run_task = self._original_run_task

    # moto hooks ----------------------------------------------------------------------------

    def _run_task(self, *args, **kwargs):
        """A task has one container per definition (moto makes one, from the first) and keeps
        the definition it started with, even if its revision is deregistered and deleted right
        after (as the engine does with one-off ones)."""
        tasks = self._original_run_task(*args, **kwargs)
        for task in tasks:
            definition = self.backend.describe_task_definition(task.task_definition_arn)
            task.sim_definitions = [_camel(c) for c in definition.container_definitions]
            task.sim_volumes = _camel(definition.volumes or [])
            task.sim_task_role = getattr(definition, "task_role_arn", None) or ""
            task.containers = [self._container(definition, c) for c in task.sim_definitions]
            task.last_status = "PROVISIONING"  # ECS's first state (moto starts tasks at RUNNING)
        return tasks

    @staticmethod
    def _container(definition, spec: dict):
        container = Container(definition)
        container.name, container.image = spec.get("name"), spec.get("image")
        container.memory, container.cpu = spec.get("memory"), spec.get("cpu")
        container.environment, container.command = spec.get("environment"), spec.get("command")
        container.exitCode = None
        return container

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
                        self._finish(task, task.stop_code or "UserInitiated", task.stopped_reason or "Task stopped")
                        continue
                    if arn in self.provisioning and not self.held.is_set():
                        self.provisioning.discard(arn)
                        self.seen.add(arn)
                        try:
                            self._launch(arn, task)
                        except Exception as exc:  # the simulated AWS must not die silently
                            import traceback

                            traceback.print_exc()
                            self._finish(task, "TaskFailedToStart", f"simulator: {exc}")
                    run = self.runs.get(arn)
                    if run and task.desired_status == "STOPPED" and run.stop_code is None:
                        run.stop("UserInitiated", task.stopped_reason or "Task stopped by user")
            time.sleep(0.05)

    def _launch(self, arn: str, task) -> None:
        definitions = getattr(task, "sim_definitions", None)
        if definitions is None:
            definition = self.backend.describe_task_definition(task.task_definition_arn)
            definitions, task.sim_volumes = [_camel(c) for c in definition.container_definitions], []
            task.sim_task_role = getattr(definition, "task_role_arn", None) or ""
        task.created_at = datetime.now(timezone.utc)
        for spec in definitions:
            image = spec.get("image") or ""
            if image.startswith(UNPULLABLE_PREFIX):
                self._finish(task, "TaskFailedToStart",
                             f"CannotPullContainerError: pull image manifest has been retried 5 time(s): {image}: not found")
                return
        try:  # as ECS reports a secret it cannot read: the task never starts
            resolved = {s["valueFrom"]: self._secret(s["valueFrom"]) for spec in definitions for s in spec.get("secrets") or []}
        except Exception as exc:
            self._finish(task, "TaskFailedToStart", f"ResourceInitializationError: unable to pull secrets or registry auth: {exc}")
            return
        credentials = self.credentials.env_for(task.sim_task_role)
        task_id = arn.rsplit("/", 1)[-1]

        def make_run(spec: dict, mounts, on_exit):
            name = spec.get("name")
            override = next((o for o in (task.overrides or {}).get("containerOverrides", []) if o.get("name") == name), {})
            command = override.get("command") or spec.get("command")
            if not command:
                run.fail("TaskFailedToStart", f"simulator: container {name} has no command (the image's would run)")
                return None
            entry_point = spec.get("entryPoint") or self.image_entrypoints.get(spec.get("image") or "", [])
            if (spec.get("image") or "").startswith(NO_SHELL_PREFIX):
                first = [*entry_point, *command][0]
                raise CannotStart(f'CannotStartContainerError: Error response from daemon: failed to create task for container: '
                                  f'failed to create shim task: OCI runtime create failed: runc create failed: unable to start '
                                  f'container process: exec: "{first}": stat {first}: no such file or directory: unknown')
            env = {"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "HOME": "/root", "LANG": "C.UTF-8", **credentials,
                   **self.metadata.env_for(view, name)}
            env.update({e["name"]: e["value"] for e in spec.get("environment") or []})
            env.update({s["name"]: resolved[s["valueFrom"]] for s in spec.get("secrets") or []})
            env.update({e["name"]: e["value"] for e in override.get("environment") or []})
            if env.get("MYCLI_S3_URL", "").startswith("https://") and self.s3_endpoint:
                bucket = env["MYCLI_S3_URL"][len("https://"):].split(".s3.", 1)[0]
                env["MYCLI_S3_URL"] = f"{self.s3_endpoint}/{bucket}"  # path-style, at the moto server
            self.environments[(arn, name)] = env
            if name == "executor" or len(definitions) == 1:
                self.started_commands[arn] = list(command)
            options = (spec.get("logConfiguration") or {}).get("options") or {}
            group, stream = options["awslogs-group"], f"{options['awslogs-stream-prefix']}/{name}/{task_id}"
            self.logs.create_log_stream(logGroupName=group, logStreamName=stream)
            if not self.isolate:
                mounts = []
            return ContainerRun(name, [*entry_point, *command], env, mounts, self.logs, group, stream, on_exit)

        def on_container(name: str, status: str, exit_code: int | None, reason: str | None = None) -> None:
            container = next(c for c in task.containers if c.name == name)
            container.last_status, container.exitCode = status, exit_code
            if status == "RUNNING":
                container.imageDigest = self.image_digests.get(container.image) or (
                    "sha256:" + hashlib.sha256(container.image.encode()).hexdigest())
            if reason:
                container.reason = reason
            if status == "RUNNING" and task.last_status != "RUNNING":
                task.last_status = "RUNNING"
                task.started_at = datetime.now(timezone.utc)

        def view() -> dict:
            """The task metadata endpoint's document: each container as the agent knows it now."""
            desired = "STOPPED" if run.stop_code else "RUNNING"
            known = {"PENDING": "NONE", "RUNNING": "RUNNING", "STOPPED": "STOPPED"}
            with run.lock:
                containers = [container_entry(task_id, name, spec.get("image") or "", known[run.state[name]],
                                              "STOPPED" if run.state[name] == "STOPPED" else desired,
                                              run.runs[name].exit_code if name in run.runs and run.state[name] == "STOPPED" else None)
                              for name, spec in run.definitions.items()]
            return {"Cluster": task.cluster_arn, "TaskARN": arn, "Family": task.task_definition_arn.rsplit("/", 1)[-1].split(":")[0],
                    "Revision": task.task_definition_arn.rsplit(":", 1)[-1], "DesiredStatus": desired,
                    "KnownStatus": "RUNNING" if any(c["KnownStatus"] == "RUNNING" for c in containers) else "PENDING",
                    "LaunchType": "FARGATE", "Containers": containers}

        run = TaskRun(definitions, task.sim_volumes, make_run, on_container,
                      lambda code, reason: self._finish(task, code, reason))
        self.runs[arn] = run
        run.start()

    def _secret(self, value_from: str) -> str:
        """ECS's JSON-key form: `{secret}:{json-key}:{stage}:{version}`."""
        parts = value_from.split(":")
        secret_id, key = ":".join(parts[:7]), parts[7] if len(parts) > 7 else ""
        value = self.secrets.get_secret_value(SecretId=secret_id)["SecretString"]
        return json.loads(value)[key] if key else value

    def _finish(self, task, stop_code: str, reason: str) -> None:
        for container in task.containers:
            if container.last_status != "STOPPED":
                container.last_status = "STOPPED"
                container.exitCode = None
        if task.desired_status == "STOPPED" and task.stop_code == "UserInitiated":
            stop_code, reason = "UserInitiated", task.stopped_reason or reason
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
