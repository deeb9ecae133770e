"""What ECS says of a run's task, brought into its execution record: DescribeTasks (100 at a
time), the status, times, stop code and the executor container's exit code (the task's other
containers, fetch and publish, never decide it), the exit code a stop or timeout of ours means,
the engine's own timeout (ECS has none), and StopTask.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime

from ..engine import PENDING, RUNNING, STOPPED, STOPPED_BY_USER_EXIT_CODE, Execution
from ..shell import TIMEOUT_EXIT_CODE, timed_out_words
from .ecs_aws import Clients, aws_errors, error_code
from .ecs_settings import EcsSettings
from .ecs_store import ExecutionStore

log = logging.getLogger("mycli.ecs")

FORGOTTEN_AFTER_SECONDS = 300  # a task ECS cannot describe this long after creation is gone
CHECK_ECS = "the cluster (MYCLI_CLUSTER), subnets and security group, and the orchestrator's ecs permissions"
STATUS = {
    "PROVISIONING": PENDING, "PENDING": PENDING, "ACTIVATING": PENDING, "RUNNING": RUNNING,
    "DEACTIVATING": RUNNING, "STOPPING": RUNNING, "DEPROVISIONING": RUNNING, "STOPPED": STOPPED, "DELETED": STOPPED,
}


def timestamp(value: object) -> float | None:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, (int, float)):
        return float(value)
    return None


def command_ended(task: dict | None, container: str) -> bool:
    """ECS reports the command's container stopped with an exit code while the task still runs
    (publish uploading)."""
    found = next((c for c in (task or {}).get("containers", []) if c.get("name") == container), {})
    return found.get("lastStatus") == "STOPPED" and found.get("exitCode") is not None


class Tasks:
    def __init__(self, clients: Clients, settings: EcsSettings, store: ExecutionStore):
        self.clients, self.settings, self.store = clients, settings, store

    def describe(self, task_arns: list[str]) -> dict[str, dict]:
        """task ARN → DescribeTasks' task, 100 at a time; tasks ECS no longer knows are absent."""
        found: dict[str, dict] = {}
        task_arns = [arn for arn in task_arns if arn.startswith("arn:")]  # not "pending/ID": a start in flight
        for start in range(0, len(task_arns), 100):
            batch = task_arns[start:start + 100]
            with aws_errors("ECS DescribeTasks", CHECK_ECS):
                answer = self.clients.ecs.describe_tasks(cluster=self.settings.cluster, tasks=batch)
            for task in answer.get("tasks", []):
                found[task["taskArn"]] = task
        return found

    def refresh(self, execution: Execution, extra: dict, task: dict | None) -> Execution:
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
        execution.status = STATUS.get(task.get("lastStatus", ""), execution.status)
        execution.desired_status = task.get("desiredStatus", execution.desired_status)
        execution.started_at = timestamp(task.get("startedAt")) or execution.started_at
        container = next((c for c in task.get("containers", []) if c.get("name") == self.settings.container), {})
        execution.image_digest = container.get("imageDigest") or execution.image_digest  # once ECS pulled it
        if execution.status == STOPPED:
            execution.stopped_at = timestamp(task.get("stoppedAt")) or now
            execution.stop_code = task.get("stopCode")
            # a task that ended by itself says only "Essential container in task exited": the executor's
            # own reason (CannotStartContainerError, OutOfMemoryError...) says why, when ECS gives one
            own = container.get("reason") if execution.stop_code == "EssentialContainerExited" else None
            execution.stopped_reason = own or task.get("stoppedReason") or container.get("reason")
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
        self.stop_task(execution.task_arn, reason)
        execution.desired_status = STOPPED

    def _save_final(self, execution: Execution) -> None:
        self.store.update(
            execution.execution_id, status=STOPPED, desired_status=STOPPED, started_at=execution.started_at,
            stopped_at=execution.stopped_at, exit_code=execution.exit_code, stop_code=execution.stop_code,
            stopped_reason=execution.stopped_reason, image_digest=execution.image_digest,
        )

    def stop_task(self, task_arn: str, reason: str) -> None:
        from botocore.exceptions import ClientError

        with aws_errors("ECS StopTask", CHECK_ECS):
            try:
                self.clients.ecs.stop_task(cluster=self.settings.cluster, task=task_arn, reason=reason[:255])
            except ClientError as exc:
                if error_code(exc) not in ("InvalidParameterException", "ClientException"):
                    raise
                log.info("StopTask %s: %s (already gone)", task_arn, exc)
