"""Remove the AWS stack: what `mycli destroy` (and `%mycli destroy`) does, as a function that
reports progress through a callback and never prompts.

Order matters: ECS refuses DeleteCluster while the cluster has tasks that have not stopped
(PENDING ones included), and a stopping task still holds its network interface in the stack's
subnets and security group. So the tasks are stopped and *waited for* before the stack goes;
deleting the stack at once ends DELETE_FAILED. Likewise CloudFormation cannot delete a bucket
that holds objects: the artifacts bucket is emptied (after the tasks, whose publish step writes
to it) before the stack goes.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Mapping

from orchestrator.engines.ecs_aws import error_code

from .. import config
from . import stack as aws_stack
from .stack import AwsError, Progress, resolve_region

TASKS_STOP_TIMEOUT_SECONDS = 10 * 60  # StopTask's grace is 30 s (Fargate allows up to 120 s), then the ENI goes


def add_destroy_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stack-name", default=None, help="stack to delete (default: the configured one, else mycli)")
    parser.add_argument("--region", help="AWS region (default: the configured one, else your AWS configuration's)")
    parser.add_argument("--force", action="store_true", help="skip the confirmation prompt")
    parser.add_argument("--keep-config", action="store_true", help="keep the local configuration of this stack")


def destroy_stack(
    region: str | None,
    stack_name: str,
    keep_config: bool,
    progress: Progress,
    *,
    environ: Mapping[str, str] = os.environ,
) -> None:
    """Stop the stack's tasks and wait until they have, remove its task definitions, delete the
    stack, forget its config."""
    region = resolve_region(region, environ)
    aws_stack.check_stack_name(stack_name)
    outputs = aws_stack.stack_outputs(stack_name, region)
    if outputs is not None and outputs.get("ClusterName"):
        _stop_tasks(outputs["ClusterName"], region, progress)
    if outputs is not None and outputs.get("ArtifactsBucketName"):
        _empty_bucket(outputs["ArtifactsBucketName"], region, progress)
    _delete_task_definitions(f"{stack_name}-task", region, progress)
    if outputs is None:
        progress(f"  No stack named {stack_name} in {region}; nothing else to delete")
    else:
        progress(f"→ Deleting CloudFormation stack {stack_name}...")
        cloudformation = aws_stack.client("cloudformation", region)
        seen: set[str] = set()
        aws_stack.mark_seen(cloudformation, stack_name, seen)
        with aws_stack.aws_errors("CloudFormation DeleteStack"):
            cloudformation.delete_stack(StackName=stack_name)
        progress("  Waiting for stack deletion...")
        status = aws_stack.wait_stack(stack_name, region, progress, {"DELETE_COMPLETE"}, seen)
        if status != "DELETE_COMPLETE":
            raise AwsError(f"stack {stack_name} ended {status}: {aws_stack.failure_reason(stack_name, region)}; run mycli destroy again")
        progress("✓ Stack deleted")
    if not keep_config:
        _forget(stack_name, region, environ, progress)


def _stop_tasks(cluster: str, region: str, progress: Progress) -> None:
    """StopTask for every task that should run, then wait until every task of the cluster (those
    stopped earlier and still stopping included) reports STOPPED."""
    from botocore.exceptions import ClientError

    ecs = aws_stack.client("ecs", region)

    def listed(desired: str) -> list[str]:
        pages = ecs.get_paginator("list_tasks").paginate(cluster=cluster, desiredStatus=desired)
        return [arn for page in pages for arn in page["taskArns"]]

    with aws_stack.aws_errors("ECS ListTasks/StopTask"):
        try:
            running = listed("RUNNING")
        except ClientError as exc:
            if error_code(exc) == "ClusterNotFoundException":
                return
            raise
        if running:
            progress(f"→ Stopping {len(running)} running task(s)...")
        for arn in running:
            ecs.stop_task(cluster=cluster, task=arn, reason="mycli destroy")
        watched = running + [arn for arn in listed("STOPPED") if arn not in running]
    _wait_stopped(ecs, cluster, watched, progress)


def _wait_stopped(ecs, cluster: str, task_arns: list[str], progress: Progress) -> None:
    deadline = time.monotonic() + TASKS_STOP_TIMEOUT_SECONDS
    told = False
    while True:
        with aws_stack.aws_errors("ECS DescribeTasks"):
            pending = [
                task["taskArn"]
                for start in range(0, len(task_arns), 100)
                for task in ecs.describe_tasks(cluster=cluster, tasks=task_arns[start:start + 100])["tasks"]
                if task.get("lastStatus") != "STOPPED"
            ]
        if not pending:
            if told:
                progress("✓ Tasks stopped")
            return
        if not told:
            progress(f"  Waiting for {len(pending)} task(s) to stop (ECS keeps a cluster with active tasks)...")
            told = True
        if time.monotonic() > deadline:
            raise AwsError(f"{len(pending)} task(s) of {cluster} are still stopping after "
                           f"{TASKS_STOP_TIMEOUT_SECONDS // 60} minutes; nothing was deleted; run mycli destroy again later")
        task_arns = pending
        time.sleep(aws_stack.POLL_SECONDS)


def _empty_bucket(bucket: str, region: str, progress: Progress) -> None:
    """Delete every object (uploads and artifacts), 1,000 a call: a non-empty bucket fails
    DeleteStack ("The bucket you tried to delete is not empty")."""
    from botocore.exceptions import ClientError

    s3 = aws_stack.client("s3", region)
    progress(f"→ Emptying bucket {bucket}...")
    removed = 0
    with aws_stack.aws_errors("S3 ListObjectsV2/DeleteObjects"):
        try:
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
                if keys:
                    s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
                    removed += len(keys)
        except ClientError as exc:
            if error_code(exc) != "NoSuchBucket":
                raise
    progress(f"✓ Removed {removed} object(s)")


def _delete_task_definitions(prefix: str, region: str, progress: Progress) -> None:
    """Deregister every ACTIVE revision of the stack's families (the base `{stack}-task` and the
    per-image `{stack}-task-*`), then delete every INACTIVE one."""
    ecs = aws_stack.client("ecs", region)
    progress("→ Deleting ECS task definitions...")

    def listed(family: str, status: str) -> list[str]:
        # ListTaskDefinitions' familyPrefix is an exact family name; families are found by prefix.
        pages = ecs.get_paginator("list_task_definitions").paginate(familyPrefix=family, status=status)
        return [arn for page in pages for arn in page["taskDefinitionArns"] if _family(arn) == family]

    with aws_stack.aws_errors("ECS task definition cleanup"):
        pages = ecs.get_paginator("list_task_definition_families").paginate(familyPrefix=prefix, status="ALL")
        families = sorted({f for page in pages for f in page["families"] if f == prefix or f.startswith(prefix + "-")})
        active = [arn for family in families for arn in listed(family, "ACTIVE")]
        progress(f"  Found {len(active)} active task definition(s) in {len(families)} famil{'y' if len(families) == 1 else 'ies'}")
        for arn in active:
            ecs.deregister_task_definition(taskDefinition=arn)
            progress(f"  Deregistered: {arn}")
        inactive = [arn for family in families for arn in listed(family, "INACTIVE")]
        for start in range(0, len(inactive), 10):
            batch = inactive[start:start + 10]
            ecs.delete_task_definitions(taskDefinitions=batch)
            for arn in batch:
                progress(f"  Deleted: {arn}")
    progress(f"✓ Removed {len(set(active) | set(inactive))} task definition(s)")


def _family(arn: str) -> str:
    return arn.rsplit("/", 1)[-1].rsplit(":", 1)[0]


def _forget(stack_name: str, region: str, environ: Mapping[str, str], progress: Progress) -> None:
    """Drop every profile that points at this stack (the default one included)."""
    data = config.load_global(environ)
    removed = []
    if data.get("stack_name") == stack_name and data.get("region", region) == region:
        config.remove_profile(None, environ)
        removed.append("default")
    for name, values in (data.get("profiles") or {}).items():
        if values.get("stack_name") == stack_name and values.get("region", region) == region:
            config.remove_profile(name, environ)
            removed.append(name)
    if removed:
        progress(f"✓ Removed the configuration of {stack_name} (profile: {', '.join(removed)})")
