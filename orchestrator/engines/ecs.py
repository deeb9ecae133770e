"""The AWS engine: each execution is an ECS Fargate task, its output a CloudWatch Logs stream,
its record a DynamoDB item.

exec registers (or reuses) the image's task definition and calls RunTask; the task is three
containers on one volume (ecs_scripts.py): fetch (clone, local changes, inputs; the only one with
the git credentials, from the task definition's `secrets`), executor (the user's image, only the
command) and publish (outputs to S3). Uploads and artifacts go through the stack's bucket
(ecs_files.py); the log is the three containers' streams in order (ecs_logs.py). status asks ECS and falls back to the record once ECS has forgotten
a task. logs pages GetLogEvents forward. stop is StopTask with a reason. ECS has no task
timeout, so the script carries a watchdog and the engine stops any task it sees past its deadline.
"""

from __future__ import annotations

import logging
import time
from typing import Mapping

from ..engine import PENDING, RUNNING, STOPPED, Execution, LogPage
from ..errors import BadRequest, EngineUnavailable, NotFound, UpstreamError
from ..ids import new_execution_id
from ..shell import GitHosts
from ..units import cap_bytes
from ..validation import ExecRequest, ListRequest, LogsRequest, PruneRequest, Ref, UploadRequest
from .ecs_aws import Clients, aws_errors
from .ecs_command import Launch, build_task_launch
from .ecs_files import Files
from .ecs_logs import read_log
from .ecs_scripts import RUN_SCRIPT, executor_script, fetch_script
from .ecs_settings import EcsSettings
from .ecs_store import TTL_SECONDS, ExecutionStore
from .ecs_taskdefs import TaskDefinitions
from .ecs_tasks import CHECK_ECS as _CHECK_ECS, STATUS as _STATUS, Tasks, command_ended, timestamp as _ts

ID_ATTEMPTS = 20
log = logging.getLogger("mycli.ecs")

RUNTIME = "fargate"
CONTAINERS = ("fetch", "executor", "publish")  # the task definition's, in the order they run
STOP_WAIT_SECONDS = 3.0
LOG_POLL_SECONDS = 1.0
USER_STOP_REASON = "Stopped by user (mycli stop)"
MAX_TAG_VALUE = 256
_TAG_UNSAFE = str.maketrans({c: "_" for c in "~!#$%^&*()[]{}|\\;'\",<>?`"})



def tag_value(value: str) -> str:
    """ECS tag values allow letters, digits, spaces and _ . : / = + - @, at most 256 of them."""
    return value.translate(_TAG_UNSAFE)[:MAX_TAG_VALUE]


class EcsEngine:
    name = "ecs"
    runtime = RUNTIME

    def __init__(self, settings: EcsSettings, clients: Clients | None = None):
        self.settings = settings
        self.clients = clients or Clients(settings.region)
        self.hosts = GitHosts(settings.github_host, settings.gitlab_host)
        self.store = ExecutionStore(self.clients, settings.table)
        self.task_definitions = TaskDefinitions(
            self.clients, settings.task_definition, settings.container, settings.default_image
        )
        self.files = Files(self.clients, settings.bucket, cap_bytes(settings.max_upload_mb))
        self.tasks = Tasks(self.clients, settings, self.store)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> "EcsEngine":
        return cls(EcsSettings.from_env(environ))

    # the Engine contract --------------------------------------------------------------------

    def scripts_for(self, request: ExecRequest) -> dict[str, str]:
        """The scripts RunTask carries: fetch's, which holds the executor's (publish's is its
        task definition's command)."""
        return {"fetch": fetch_script(request, executor_script(request), self.hosts)}

    def script_for(self, request: ExecRequest) -> tuple[str, str]:
        return (f"# container fetch (helper image); it leaves {RUN_SCRIPT} for the executor\n"
                + self.scripts_for(request)["fetch"]), RUNTIME

    def launch_for(self, request: ExecRequest, execution_id: str) -> Launch:
        """How the run reaches its containers: RunTask overrides (and a one-off definition when
        the scripts do not fit); also what `mycli doctor` validates."""
        caps = {"MYCLI_MAX_ARTIFACT_MB": str(self.settings.max_artifact_mb), "MYCLI_MAX_ARTIFACTS_MB": str(self.settings.max_artifacts_mb)}
        return build_task_launch(self.scripts_for(request), list(CONTAINERS), {"MYCLI_EXECUTION_ID": execution_id},
                                 request.size, {"publish": caps}, executor=self.settings.container)

    def start(self, request: ExecRequest) -> Execution:
        self.settings.check()
        self.launch_for(request, "0" * 12)  # a 400 before any AWS call
        self.files.check_uploads(request)
        image = request.image or self.settings.default_image
        execution_id, now = self._reserve_id(request, image)
        try:
            answer = self._run_task(request, image, execution_id)
        except BaseException:
            self.store.delete(execution_id)  # release the reservation: nothing runs under this ID
            raise
        tasks = answer.get("tasks") or []
        if not tasks:
            self.store.delete(execution_id)
            failure = (answer.get("failures") or [{}])[0]
            raise UpstreamError(
                f"ECS could not start the task ({failure.get('reason') or 'no reason given'}"
                f"{': ' + failure['detail'] if failure.get('detail') else ''}); check {_CHECK_ECS}"
            )
        task = tasks[0]
        task_arn = task["taskArn"]
        execution = Execution(
            execution_id=execution_id,
            task_arn=task_arn,
            status=_STATUS.get(task.get("lastStatus", "PROVISIONING"), PENDING),
            created_at=_ts(task.get("createdAt")) or now,
            command=request.command,
            repo=request.repo,
            branch=None if request.skip_git else request.branch,
            image=image,
            skip_git=request.skip_git,
            timeout_seconds=request.timeout_seconds,
            engine=self.name,
            runtime=RUNTIME,
            log_stream=self._stream(task_arn),
            env_keys=sorted(request.env),
            desired_status=task.get("desiredStatus", RUNNING),
            cpu=request.cpu,
            memory=request.memory,
            # a size is sent as RunTask's task-level overrides, which Fargate applies as they are
            cpu_applied=request.cpu,
            memory_applied=request.memory,
            resources_enforced=True if request.size else None,
        )
        try:
            used = answer["_mycli"]
            self.store.put(execution, task_definition=task.get("taskDefinitionArn") or used["task_definition"],
                           transport=used["transport"], containers=list(CONTAINERS))
        except Exception:
            # A task nobody can find by its execution ID is worse than no task: take it back.
            self.tasks.stop_task(task_arn, "mycli could not record this execution; stopped it")
            raise
        log.info("started %s as %s", execution_id, task_arn)
        return execution

    def _reserve_id(self, request: ExecRequest, image: str) -> tuple[str, float]:
        """A fresh execution ID, held by a PENDING record written only if the ID is unused."""
        for _ in range(ID_ATTEMPTS):
            now = time.time()
            execution_id = new_execution_id(now)
            placeholder = Execution(
                execution_id=execution_id, task_arn=f"pending/{execution_id}", status=PENDING, created_at=now,
                command=request.command, repo=request.repo, branch=None if request.skip_git else request.branch,
                image=image, skip_git=request.skip_git, timeout_seconds=request.timeout_seconds, engine=self.name,
                runtime=RUNTIME, log_stream="", env_keys=sorted(request.env), cpu=request.cpu, memory=request.memory,
            )
            if self.store.reserve(placeholder):
                return execution_id, now
        raise EngineUnavailable("could not allocate a unique execution ID; try again")

    def _run_task(self, request: ExecRequest, image: str, execution_id: str) -> dict:
        launch = self.launch_for(request, execution_id)  # the request's env is exported by the script itself
        task_definition = self.task_definitions.for_image(image)
        one_off = None
        if launch.definition_commands:
            task_definition = one_off = self.task_definitions.one_off(task_definition, launch.definition_commands)
        try:
            with aws_errors("ECS RunTask", _CHECK_ECS):
                answer = self.clients.ecs.run_task(
                    **self.run_task_params(task_definition, launch.overrides, execution_id, request)
                )
        finally:
            if one_off:
                self.task_definitions.retire(one_off)
        answer["_mycli"] = {"task_definition": task_definition, "transport": launch.mode}
        return answer

    def get(self, ref: Ref) -> Execution:
        return self._current(ref)[0]

    def _current(self, ref: Ref) -> tuple[Execution, dict, dict | None]:
        """(the execution brought up to date, the store's fields, ECS's task or None)."""
        self.settings.check()
        execution, extra = self._record(ref)
        task = None
        if execution.status != STOPPED:
            task = self.tasks.describe([execution.task_arn]).get(execution.task_arn)
            execution = self.tasks.refresh(execution, extra, task)
        return execution, extra, task

    def logs(self, request: LogsRequest) -> LogPage:
        execution, extra, task = self._current(request.ref)
        deadline = time.monotonic() + request.wait_seconds
        token = request.next_token
        while True:
            names = extra.get("containers") or [self.settings.container]
            streams = [self._stream(execution.task_arn, name) for name in names] if extra.get("containers") else [execution.log_stream]
            states = {c.get("name"): c.get("lastStatus") for c in (task or {}).get("containers", [])}
            finished = [execution.status == STOPPED or states.get(name) == "STOPPED" for name in names]
            events, next_token, at_end = read_log(self.clients, self.settings.log_group, streams, finished, token, request.limit)
            if events or execution.status == STOPPED or time.monotonic() >= deadline:
                settled = execution.status == STOPPED and time.time() - (execution.stopped_at or 0) >= self.settings.log_settle
                return LogPage(events, next_token, execution, complete=settled and at_end)
            time.sleep(min(LOG_POLL_SECONDS, max(0.0, deadline - time.monotonic())))
            token = next_token
            execution, extra, task = self._current(request.ref)

    def stop(self, ref: Ref) -> Execution:
        execution, _, task = self._current(ref)
        if execution.status == STOPPED:
            return execution
        # a command that already ended (publish is uploading its outputs) keeps its own exit code:
        # the stop only cuts the upload short
        requested = "after_exit" if command_ended(task, self.settings.container) else "user"
        self.store.update(execution.execution_id, stop_requested=requested, desired_status=STOPPED)
        self.tasks.stop_task(execution.task_arn, USER_STOP_REASON)
        deadline = time.monotonic() + STOP_WAIT_SECONDS
        while True:
            execution = self.get(ref)
            if execution.status == STOPPED or time.monotonic() >= deadline:
                return execution
            time.sleep(0.25)

    def list(self, request: ListRequest) -> list[Execution]:
        self.settings.check()
        records = self.store.recent(request.limit)
        live = self.tasks.describe([e.task_arn for e, _ in records if e.status != STOPPED])
        return [
            execution if execution.status == STOPPED else self.tasks.refresh(execution, extra, live.get(execution.task_arn))
            for execution, extra in records
        ]

    def prune(self, request: PruneRequest) -> int:
        raise BadRequest(
            "prune is for the embedded local engine; on AWS nothing piles up: task logs expire after 7 days "
            f"(the log group's retention) and execution records after {TTL_SECONDS // 86400} days (DynamoDB TTL)")

    def create_upload(self, request: UploadRequest) -> dict:
        self.settings.check()
        return self.files.create_upload(request)

    def artifacts(self, ref: Ref) -> dict:
        return self.files.artifacts(self.get(ref))

    # internals -----------------------------------------------------------------------------

    def run_task_params(self, task_definition: str, overrides: dict, execution_id: str, request: ExecRequest) -> dict:
        """RunTask's request for a run (also what `mycli doctor` validates against botocore's model)."""
        params = {
            "cluster": self.settings.cluster,
            "taskDefinition": task_definition,
            "count": 1,
            "startedBy": execution_id,
            "overrides": overrides,
            "tags": [
                {"key": "ExecutionID", "value": execution_id},
                {"key": "Repo", "value": tag_value(request.repo or "none (skip_git)")},
            ],
            "networkConfiguration": {
                "awsvpcConfiguration": {
                    "subnets": list(self.settings.subnets),
                    "securityGroups": list(self.settings.security_groups),
                    "assignPublicIp": self.settings.assign_public_ip,
                }
            },
        }
        if self.settings.capacity_provider == "FARGATE":
            params["launchType"] = "FARGATE"
        else:
            params["capacityProviderStrategy"] = [{"capacityProvider": self.settings.capacity_provider, "weight": 1}]
        return params

    def _stream(self, task_arn: str, container: str | None = None) -> str:
        return f"{self.settings.stream_prefix}/{container or self.settings.container}/{task_arn.rsplit('/', 1)[-1]}"

    def _record(self, ref: Ref) -> tuple[Execution, dict]:
        execution_id = ref.execution_id
        if execution_id is None:
            execution_id = self.store.id_for_task(ref.task_arn or "")
            if execution_id is None:
                raise NotFound(f"task {ref.task_arn} is not a mycli execution of this stack")
        found = self.store.get(execution_id)
        if found is None:
            raise NotFound(f"execution {execution_id} not found")
        return found
