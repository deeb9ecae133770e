"""The AWS engine: each execution is an ECS Fargate task, its output a CloudWatch Logs stream,
its record a DynamoDB item.

exec registers (or reuses) the image's task definition and calls RunTask with the script as the
container command; git credentials never travel in the request: the task definition's `secrets`
hand them to the container. status asks ECS and falls back to the record once ECS has forgotten
a task. logs pages GetLogEvents forward. stop is StopTask with a reason. ECS has no task
timeout, so the script carries a watchdog and the engine stops any task it sees past its deadline.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Mapping

from ..engine import PENDING, RUNNING, STOPPED, STOPPED_BY_USER_EXIT_CODE, Execution, LogPage
from ..errors import BadRequest, EngineUnavailable, NotFound, UpstreamError
from ..ids import new_execution_id
from ..shell import TIMEOUT_EXIT_CODE, GitHosts, build_script, timed_out_words
from ..validation import ExecRequest, ListRequest, LogsRequest, PruneRequest, Ref, UploadRequest
from .ecs_aws import Clients, aws_errors, error_code
from .ecs_command import build_launch
from .ecs_settings import EcsSettings
from .ecs_store import TTL_SECONDS, ExecutionStore
from .ecs_taskdefs import TaskDefinitions

ID_ATTEMPTS = 20
log = logging.getLogger("mycli.ecs")

WORKDIR = "/workspace"
RUNTIME = "fargate"
FORGOTTEN_AFTER_SECONDS = 300  # a task ECS cannot describe this long after creation is gone
STOP_WAIT_SECONDS = 3.0
LOG_POLL_SECONDS = 1.0
MAX_EMPTY_PAGES = 20
USER_STOP_REASON = "Stopped by user (mycli stop)"
MAX_TAG_VALUE = 256
_TAG_UNSAFE = str.maketrans({c: "_" for c in "~!#$%^&*()[]{}|\\;'\",<>?`"})

_STATUS = {
    "PROVISIONING": PENDING, "PENDING": PENDING, "ACTIVATING": PENDING, "RUNNING": RUNNING,
    "DEACTIVATING": RUNNING, "STOPPING": RUNNING, "DEPROVISIONING": RUNNING, "STOPPED": STOPPED, "DELETED": STOPPED,
}
_CHECK_ECS = "the cluster (MYCLI_CLUSTER), subnets and security group, and the orchestrator's ecs permissions"
_NO_FILES_YET = ("uploads, local changes and artifacts are not yet available on the AWS engine; "
                 "use the embedded engine (mycli server) for runs that need them")
_CHECK_LOGS = "the log group (MYCLI_LOG_GROUP) and the orchestrator's logs:GetLogEvents permission"


def _ts(value: object) -> float | None:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, (int, float)):
        return float(value)
    return None


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

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> "EcsEngine":
        return cls(EcsSettings.from_env(environ))

    # the Engine contract --------------------------------------------------------------------

    def script_for(self, request: ExecRequest) -> tuple[str, str]:
        return build_script(request, workdir=WORKDIR, watchdog=True, hosts=self.hosts), RUNTIME

    def start(self, request: ExecRequest) -> Execution:
        self.settings.check()
        if request.inputs or request.local_changes:
            raise BadRequest(_NO_FILES_YET)
        script, _ = self.script_for(request)
        build_launch(self.settings.container, script, {"MYCLI_EXECUTION_ID": "0" * 12}, request.size)  # a 400 before any AWS call
        image = request.image or self.settings.default_image
        execution_id, now = self._reserve_id(request, image)
        try:
            answer = self._run_task(request, script, image, execution_id)
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
                           transport=used["transport"])
        except Exception:
            # A task nobody can find by its execution ID is worse than no task: take it back.
            self._stop_task(task_arn, "mycli could not record this execution; stopped it")
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

    def _run_task(self, request: ExecRequest, script: str, image: str, execution_id: str) -> dict:
        env = {"MYCLI_EXECUTION_ID": execution_id}  # the request's env is exported by the script itself
        launch = build_launch(self.settings.container, script, env, request.size)
        task_definition = self.task_definitions.for_image(image)
        one_off = None
        if launch.definition_command:
            task_definition = one_off = self.task_definitions.one_off(task_definition, launch.definition_command)
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
        self.settings.check()
        execution, extra = self._record(ref)
        if execution.status != STOPPED:
            task = self._describe([execution.task_arn]).get(execution.task_arn)
            execution = self._refresh(execution, extra, task)
        return execution

    def logs(self, request: LogsRequest) -> LogPage:
        execution = self.get(request.ref)
        deadline = time.monotonic() + request.wait_seconds
        token = request.next_token
        while True:
            events, next_token = self._read_log(execution.log_stream, token, request.limit)
            if events or execution.status == STOPPED or time.monotonic() >= deadline:
                settled = execution.status == STOPPED and time.time() - (execution.stopped_at or 0) >= self.settings.log_settle
                return LogPage(events, next_token, execution, complete=settled)
            time.sleep(min(LOG_POLL_SECONDS, max(0.0, deadline - time.monotonic())))
            token = next_token
            execution = self.get(request.ref)

    def stop(self, ref: Ref) -> Execution:
        execution = self.get(ref)
        if execution.status == STOPPED:
            return execution
        self.store.update(execution.execution_id, stop_requested="user", desired_status=STOPPED)
        self._stop_task(execution.task_arn, USER_STOP_REASON)
        deadline = time.monotonic() + STOP_WAIT_SECONDS
        while True:
            execution = self.get(ref)
            if execution.status == STOPPED or time.monotonic() >= deadline:
                return execution
            time.sleep(0.25)

    def list(self, request: ListRequest) -> list[Execution]:
        self.settings.check()
        records = self.store.recent(request.limit)
        live = self._describe([e.task_arn for e, _ in records if e.status != STOPPED])
        return [
            execution if execution.status == STOPPED else self._refresh(execution, extra, live.get(execution.task_arn))
            for execution, extra in records
        ]

    def prune(self, request: PruneRequest) -> int:
        raise BadRequest(
            "prune is for the embedded local engine; on AWS nothing piles up: task logs expire after 7 days "
            f"(the log group's retention) and execution records after {TTL_SECONDS // 86400} days (DynamoDB TTL)")

    def create_upload(self, request: UploadRequest) -> dict:
        raise BadRequest(_NO_FILES_YET)

    def artifacts(self, ref: Ref) -> dict:
        raise BadRequest(_NO_FILES_YET)

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

    def _stream(self, task_arn: str) -> str:
        return f"{self.settings.stream_prefix}/{self.settings.container}/{task_arn.rsplit('/', 1)[-1]}"

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

    def _describe(self, task_arns: list[str]) -> dict[str, dict]:
        """task ARN → DescribeTasks' task, 100 at a time; tasks ECS no longer knows are absent."""
        found: dict[str, dict] = {}
        task_arns = [arn for arn in task_arns if arn.startswith("arn:")]  # not "pending/ID": a start in flight
        for start in range(0, len(task_arns), 100):
            batch = task_arns[start:start + 100]
            with aws_errors("ECS DescribeTasks", _CHECK_ECS):
                answer = self.clients.ecs.describe_tasks(cluster=self.settings.cluster, tasks=batch)
            for task in answer.get("tasks", []):
                found[task["taskArn"]] = task
        return found

    def _refresh(self, execution: Execution, extra: dict, task: dict | None) -> Execution:
        """The record brought up to date from ECS's view; saved once the task has stopped."""
        now = time.time()
        if task is None:
            if now - execution.created_at > FORGOTTEN_AFTER_SECONDS:
                execution.status = execution.desired_status = STOPPED
                execution.stopped_at = execution.stopped_at or now
                execution.stopped_reason = execution.stopped_reason or (
                    "ECS no longer reports this task (stopped tasks are kept about an hour); its exit code is unknown"
                )
                execution.stop_code = execution.stop_code or "TaskForgotten"
                self._save_final(execution)
            return execution
        execution.status = _STATUS.get(task.get("lastStatus", ""), execution.status)
        execution.desired_status = task.get("desiredStatus", execution.desired_status)
        execution.started_at = _ts(task.get("startedAt")) or execution.started_at
        container = next((c for c in task.get("containers", []) if c.get("name") == self.settings.container), {})
        if execution.status == STOPPED:
            execution.stopped_at = _ts(task.get("stoppedAt")) or now
            execution.stop_code = task.get("stopCode")
            execution.stopped_reason = task.get("stoppedReason") or container.get("reason")
            execution.exit_code = container.get("exitCode")
            # our StopTask only decides the exit code if it was what stopped the task: one that
            # exited by itself just before (stopCode EssentialContainerExited) keeps its own code
            requested = extra.get("stop_requested") if execution.stop_code == "UserInitiated" else None
            if requested == "user":
                execution.exit_code = STOPPED_BY_USER_EXIT_CODE
            elif requested == "timeout":
                execution.exit_code = TIMEOUT_EXIT_CODE
            self._save_final(execution)
        elif extra.get("stop_requested") is None:
            self._enforce_timeout(execution, now)
        return execution

    def _enforce_timeout(self, execution: Execution, now: float) -> None:
        start = execution.started_at or execution.created_at
        if now <= start + execution.timeout_seconds + self.settings.timeout_grace:
            return
        reason = timed_out_words(execution.timeout_seconds) + "; stopped by mycli"
        log.warning("execution %s is past its deadline; stopping %s", execution.execution_id, execution.task_arn)
        self.store.update(execution.execution_id, stop_requested="timeout", desired_status=STOPPED)
        self._stop_task(execution.task_arn, reason)
        execution.desired_status = STOPPED

    def _save_final(self, execution: Execution) -> None:
        self.store.update(
            execution.execution_id, status=STOPPED, desired_status=STOPPED, started_at=execution.started_at,
            stopped_at=execution.stopped_at, exit_code=execution.exit_code, stop_code=execution.stop_code,
            stopped_reason=execution.stopped_reason,
        )

    def _stop_task(self, task_arn: str, reason: str) -> None:
        from botocore.exceptions import ClientError

        with aws_errors("ECS StopTask", _CHECK_ECS):
            try:
                self.clients.ecs.stop_task(cluster=self.settings.cluster, task=task_arn, reason=reason[:255])
            except ClientError as exc:
                if error_code(exc) not in ("InvalidParameterException", "ClientException"):
                    raise
                log.info("StopTask %s: %s (already gone)", task_arn, exc)

    def _read_log(self, stream: str, token: str | None, limit: int) -> tuple[list[tuple[int, str]], str | None]:
        """One page of events after `token`. Empty pages with a new token are skipped (a gap in
        time); the end of the stream is the token coming back unchanged. A stream that does not
        exist yet (the task has not started) is an empty page, not an error."""
        from botocore.exceptions import ClientError

        # startFromHead on every page: with a nextForwardToken but without it, CloudWatch pages
        # from the tail and lines go missing (GetLogEvents API reference).
        params = {"logGroupName": self.settings.log_group, "logStreamName": stream, "limit": limit, "startFromHead": True}
        for _ in range(MAX_EMPTY_PAGES):
            if token:
                params["nextToken"] = token
            with aws_errors("CloudWatch Logs GetLogEvents", _CHECK_LOGS):
                try:
                    answer = self.clients.logs.get_log_events(**params)
                except ClientError as exc:
                    if error_code(exc) == "ResourceNotFoundException":
                        return [], token
                    if error_code(exc) == "InvalidParameterException" and token:
                        from ..errors import BadRequest

                        raise BadRequest("next_token is not a token a previous logs call returned (or it expired)") from None
                    raise
            events = [(int(e["timestamp"]), e["message"].rstrip("\n")) for e in answer.get("events", [])]
            next_token = answer.get("nextForwardToken") or token
            if events or next_token == token:
                return events, next_token
            token = next_token
        return [], token
