"""Rules AWS enforces and moto does not, enforced inside the moto server the tests run.

moto accepts what AWS refuses (no name limits, no overrides limit, no Fargate sizes), so a defect
that only a real account would hit passes every test. Each rule here is a patch on moto's backend,
in the process that hosts the server, so it applies to every client alike: pytest itself, `mycli
server --engine aws`, the CLI and the nbval kernels (separate processes that a botocore hook in
pytest would miss). Each rule answers with the error code AWS uses and names its source; the list,
with the documents, is in docs/deployment.md ("AWS rules the tests enforce").

Rules stay small: they check what AWS documents, never guess at more.
"""

from __future__ import annotations

import inspect
import json
import re

OVERRIDES_LIMIT = 8192
_FAMILY = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_APPLIED = False

DOCS = {
    "GetLogEvents": "https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_GetLogEvents.html",
    "CreateRole": "https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateRole.html",
    "CreateFunction": "https://docs.aws.amazon.com/lambda/latest/api/API_CreateFunction.html",
    "CreateLogGroup": "https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_CreateLogGroup.html",
    "RegisterTaskDefinition": "https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_RegisterTaskDefinition.html",
    "DeleteCluster": "https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeleteCluster.html",
    "RunTask": "https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_RunTask.html",
    "FargateSizes": "https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-tasks-services.html#fargate-tasks-size",
    "ContainerMemory": "https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ContainerDefinition.html",
    "DeleteBucket": "https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteBucket.html",
    "PutObject": "https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutObject.html",
}

# Task CPU units → the task memory values (MiB) Fargate accepts with it (FargateSizes). Kept here,
# apart from the code under test, so a wrong table in mycli cannot agree with a wrong stand-in.
FARGATE_SIZES: dict[int, tuple[int, ...] | range] = {
    256: (512, 1024, 2048),
    512: range(1024, 4096 + 1, 1024),
    1024: range(2048, 8192 + 1, 1024),
    2048: range(4096, 16384 + 1, 1024),
    4096: range(8192, 30720 + 1, 1024),
    8192: range(16384, 61440 + 1, 4096),
    16384: range(32768, 122880 + 1, 8192),
}


def fargate_size_ok(cpu: object, memory: object) -> bool:
    try:
        cpu_units, mib = int(str(cpu)), int(str(memory))
    except (TypeError, ValueError):
        return False
    return mib in FARGATE_SIZES.get(cpu_units, ())


def container_memory_error(containers: list[dict], overrides: dict, task_memory: object) -> str | None:
    """A container's memory may not exceed its task's: "The total amount of memory reserved for
    all containers within a task must be lower than the task memory value, if one is specified"
    (ContainerMemory; AWS accepts equal). Each container's hard limit (`memory`) and the sum of
    what each reserves (`memoryReservation`, else `memory`) are checked against the task memory,
    a containerOverride's values replacing its definition's. None when it fits."""
    try:
        limit = int(str(task_memory))
    except (TypeError, ValueError):
        return None  # no task-level memory: nothing to exceed
    by_name = {o.get("name"): o for o in (overrides or {}).get("containerOverrides") or []}
    reserved = 0
    for container in containers:
        override = by_name.get(container.get("name"), {})
        hard = override.get("memory", container.get("memory"))
        soft = override.get("memoryReservation", container.get("memoryReservation"))
        if hard is not None and int(hard) > limit:
            return f"container {container.get('name')!r} has memory {hard} MiB, more than the task's {limit} MiB"
        reserved += int(soft if soft is not None else hard or 0)
    if reserved > limit:
        return f"the containers reserve {reserved} MiB, more than the task's {limit} MiB"
    return None


def container_rules_error(containers: list[dict], fargate: bool) -> str | None:
    """ContainerDefinition (ContainerDefinition): `stopTimeout` "the max stop timeout value is 120
    seconds" on Fargate; a dependency's COMPLETE or SUCCESS condition "can't be set on an essential
    container"; a dependency names a container of the task; "all tasks must have at least one
    essential container". Keys as the API spells them or as CloudFormation does. None when valid."""
    def get(container: dict, key: str):
        return container.get(key, container.get(key[:1].upper() + key[1:]))

    essential = {get(c, "name"): get(c, "essential") is not False for c in containers}
    if containers and not any(essential.values()):
        return "the task has no essential container"
    for container in containers:
        timeout = get(container, "stopTimeout")
        if fargate and timeout is not None and int(timeout) > 120:
            return f"container {get(container, 'name')!r} has stopTimeout {timeout}; Fargate's maximum is 120 seconds"
        for dependency in get(container, "dependsOn") or []:
            target, condition = get(dependency, "containerName"), get(dependency, "condition")
            if target not in essential:
                return f"container {get(container, 'name')!r} depends on {target!r}, which is not in the task"
            if condition in ("COMPLETE", "SUCCESS") and essential[target]:
                return f"the {condition} condition can't be set on an essential container ({target!r})"
    return None


def _arguments(function, *args, **kwargs) -> dict:
    """A backend call's arguments by name, however moto's responses pass them."""
    bound = inspect.signature(function).bind(*args, **kwargs)
    bound.apply_defaults()
    return bound.arguments


def enforce_aws_rules() -> None:
    global _APPLIED
    if _APPLIED:
        return
    _APPLIED = True
    _get_log_events_needs_start_from_head()
    _name_lengths()
    _delete_cluster_refuses_active_tasks()
    _register_task_definition_checks()
    _run_task_checks()
    _stack_delete_refuses_a_bucket_with_objects()
    _put_object_checks_the_payload_hash()


def _get_log_events_needs_start_from_head() -> None:
    """GetLogEvents: "If you are using a previous nextForwardToken value as the nextToken in this
    operation, you must specify true for startFromHead" (GetLogEvents). AWS does not refuse: it
    returns the newest events instead, and a follower silently loses lines; the stand-in refuses,
    so the defect fails a test instead of going unseen."""
    from moto.logs.exceptions import InvalidParameterException
    from moto.logs.models import LogsBackend

    original = LogsBackend.get_log_events

    def get_log_events(self, *args, **kwargs):
        call = _arguments(original, self, *args, **kwargs)
        if call.get("next_token") and not call.get("start_from_head"):
            raise InvalidParameterException(
                "mycli AWS rule: nextToken sent without startFromHead=true; AWS would page from the "
                f"tail and lose lines (see {DOCS['GetLogEvents']})")
        return original(self, *args, **kwargs)

    LogsBackend.get_log_events = get_log_events


def _too_long(value: str, parameter: str, limit: int) -> str:
    return (f"1 validation error detected: Value '{value}' at '{parameter}' failed to satisfy constraint: "
            f"Member must have length less than or equal to {limit}")


def _name_lengths() -> None:
    """IAM role names ≤ 64 (CreateRole), Lambda function names ≤ 64 (CreateFunction), log group
    names ≤ 512 (CreateLogGroup). Task definition families are checked in RegisterTaskDefinition."""
    from moto.awslambda.exceptions import LambdaClientError
    from moto.awslambda.models import LambdaBackend
    from moto.iam.exceptions import ValidationError
    from moto.iam.models import IAMBackend
    from moto.logs.exceptions import InvalidParameterException
    from moto.logs.models import LogsBackend

    create_role = IAMBackend.create_role

    def checked_create_role(self, role_name, *args, **kwargs):
        if len(role_name) > 64:
            raise ValidationError(_too_long(role_name, "roleName", 64))
        return create_role(self, role_name, *args, **kwargs)

    create_function = LambdaBackend.create_function

    def checked_create_function(self, spec):
        name = spec.get("FunctionName") or ""
        if len(name) > 64 and not name.startswith("arn:"):
            raise LambdaClientError("ValidationException", _too_long(name, "functionName", 64))
        return create_function(self, spec)

    create_log_group = LogsBackend.create_log_group

    def checked_create_log_group(self, log_group_name, *args, **kwargs):
        if len(log_group_name) > 512:
            raise InvalidParameterException(_too_long(log_group_name, "logGroupName", 512))
        return create_log_group(self, log_group_name, *args, **kwargs)

    IAMBackend.create_role = checked_create_role
    LambdaBackend.create_function = checked_create_function
    LogsBackend.create_log_group = checked_create_log_group


def _active_tasks(backend, cluster_name: str) -> list:
    return [t for t in backend.tasks.get(cluster_name, {}).values() if t.last_status != "STOPPED"]


def _delete_cluster_refuses_active_tasks() -> None:
    """DeleteCluster fails with ClusterContainsTasksException while the cluster has tasks that
    have not stopped, PENDING ones included (DeleteCluster). moto deletes it; and moto's
    CloudFormation never deletes an AWS::ECS::Cluster at all, so give it the delete CloudFormation
    performs, through the same check (a stack delete then ends DELETE_FAILED, see moto_gaps)."""
    from moto.ecs.exceptions import ECSException
    from moto.ecs.models import Cluster, EC2ContainerServiceBackend, ecs_backends

    original = EC2ContainerServiceBackend.delete_cluster

    def delete_cluster(self, cluster_str: str):
        cluster = self._get_cluster(cluster_str)
        active = _active_tasks(self, cluster.name)
        if active:
            raise ECSException("ClusterContainsTasksException",
                               f"The Cluster cannot be deleted while Tasks are active ({len(active)} not STOPPED; "
                               f"mycli AWS rule, see {DOCS['DeleteCluster']})")
        return original(self, cluster_str)

    def delete_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name):
        ecs_backends[account_id][region_name].delete_cluster(resource_name)

    EC2ContainerServiceBackend.delete_cluster = delete_cluster
    Cluster.delete_from_cloudformation_json = classmethod(delete_from_cloudformation_json)


def _register_task_definition_checks() -> None:
    """RegisterTaskDefinition: a family is up to 255 letters, digits, hyphens and underscores;
    a FARGATE-compatible definition needs a task-level cpu and memory that form one of Fargate's
    sizes ("Invalid 'cpu' setting for task" otherwise; FargateSizes); no container's memory may
    exceed the task's (ContainerMemory); stop timeouts, dependency conditions and essential
    containers as container_rules_error says."""
    from moto.ecs.exceptions import EcsClientException
    from moto.ecs.models import EC2ContainerServiceBackend

    original = EC2ContainerServiceBackend.register_task_definition

    def register(self, *args, **kwargs):
        call = _arguments(original, self, *args, **kwargs)
        family = call["family"] or ""
        if not _FAMILY.match(family):
            raise EcsClientException(
                f"Family must be 1-255 letters, digits, hyphens and underscores: {family!r} ({len(family)} characters; "
                f"mycli AWS rule, see {DOCS['RegisterTaskDefinition']})")
        if "FARGATE" in (call["requires_compatibilities"] or ()) and not fargate_size_ok(call["cpu"], call["memory"]):
            raise EcsClientException(
                f"Invalid 'cpu' setting for task: no Fargate size has cpu {call['cpu']!r} and memory "
                f"{call['memory']!r} (mycli AWS rule, see {DOCS['FargateSizes']})")
        too_much = container_memory_error(call["container_definitions"] or [], {}, call["memory"])
        if too_much:
            raise EcsClientException(f"Invalid 'memory' setting for container: {too_much} "
                                     f"(mycli AWS rule, see {DOCS['ContainerMemory']})")
        wrong = container_rules_error(call["container_definitions"] or [], "FARGATE" in (call["requires_compatibilities"] or ()))
        if wrong:
            raise EcsClientException(f"Invalid container definition: {wrong} (mycli AWS rule, see {DOCS['ContainerMemory']})")
        return original(self, *args, **kwargs)

    EC2ContainerServiceBackend.register_task_definition = register


def _run_task_checks() -> None:
    """RunTask: "A total of 8192 characters are allowed for overrides. This limit includes the
    JSON formatting characters of the override structure" — measured on the JSON as botocore
    sends it (json.dumps: ", " separators, non-ASCII as \\uXXXX escapes); an awsvpc definition
    needs a networkConfiguration with subnets; on Fargate the task size after the overrides'
    cpu/memory must be one of Fargate's sizes (RunTask, FargateSizes); and after the overrides no
    container's memory may exceed the task's: a task override that raises the task's memory leaves
    the container's own limit in place, one that lowers it below the container's is refused
    (ContainerMemory)."""
    from moto.ecs.exceptions import EcsClientException, InvalidParameterException
    from moto.ecs.models import EC2ContainerServiceBackend

    original = EC2ContainerServiceBackend.run_task

    def run_task(self, *args, **kwargs):
        call = _arguments(original, self, *args, **kwargs)
        overrides = call["overrides"] or {}
        size = len(json.dumps(overrides))
        if size > OVERRIDES_LIMIT:
            raise InvalidParameterException(
                f"Container Overrides length must be at most {OVERRIDES_LIMIT} (these are {size} characters as sent; "
                f"mycli AWS rule, see {DOCS['RunTask']})")
        definition = self.describe_task_definition(call["task_definition_str"])
        network = (call["networking_configuration"] or {}).get("awsvpcConfiguration") or {}
        if definition.network_mode == "awsvpc" and not network.get("subnets"):
            raise InvalidParameterException("Network Configuration must be provided when networkMode 'awsvpc' is specified.")
        if "FARGATE" in (definition.requires_compatibilities or ()):
            cpu = overrides.get("cpu") or definition.cpu
            memory = overrides.get("memory") or definition.memory
            if not fargate_size_ok(cpu, memory):
                raise EcsClientException(
                    f"No Fargate configuration exists for given values: cpu {cpu!r}, memory {memory!r} "
                    f"(mycli AWS rule, see {DOCS['FargateSizes']})")
        too_much = container_memory_error(definition.container_definitions, overrides,
                                          overrides.get("memory") or definition.memory)
        if too_much:
            raise InvalidParameterException(
                f"Invalid 'memory' setting for container: {too_much} (mycli AWS rule, see {DOCS['ContainerMemory']})")
        return original(self, *args, **kwargs)

    EC2ContainerServiceBackend.run_task = run_task


def _stack_delete_refuses_a_bucket_with_objects() -> None:
    """DeleteBucket: "All objects (including all object versions and delete markers) in the
    bucket must be deleted before the bucket itself can be deleted" (BucketNotEmpty, DeleteBucket);
    CloudFormation's delete then fails and the stack ends DELETE_FAILED. moto's CloudFormation
    leaves the bucket behind silently and reports the stack deleted."""
    from moto.s3.exceptions import BucketNotEmpty
    from moto.s3.models import FakeBucket, s3_backends
    from moto.utilities.utils import get_partition

    def delete_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name):
        backend = s3_backends[account_id][get_partition(region_name)]
        if backend.get_bucket(resource_name).keys:
            raise BucketNotEmpty(resource_name)
        backend.delete_bucket(resource_name)

    FakeBucket.delete_from_cloudformation_json = classmethod(delete_from_cloudformation_json)


def _put_object_checks_the_payload_hash() -> None:
    """PutObject with SigV4: S3 computes the body's SHA-256 and refuses a request whose
    x-amz-content-sha256 (a hex digest, not UNSIGNED-PAYLOAD) differs (XAmzContentSHA256Mismatch),
    and a body whose x-amz-checksum-sha256 differs (BadDigest) (PutObject). moto stores any body."""
    import base64
    import hashlib

    from moto.s3.exceptions import S3ClientError
    from moto.s3.responses import S3Response

    original = S3Response.put_object

    def put_object(self, *args, **kwargs):
        headers = {k.lower(): v for k, v in self.headers.items()}
        body = self.body if isinstance(self.body, bytes) else (self.body or b"")
        digest = hashlib.sha256(body).digest()
        claimed = headers.get("x-amz-content-sha256", "")
        if len(claimed) == 64 and claimed != digest.hex() and "x-amz-copy-source" not in headers:
            raise S3ClientError("XAmzContentSHA256Mismatch",
                                f"The provided 'x-amz-content-sha256' header does not match what was computed "
                                f"(mycli AWS rule, see {DOCS['PutObject']})")
        checksum = headers.get("x-amz-checksum-sha256")
        if checksum and checksum != base64.b64encode(digest).decode():
            raise S3ClientError("BadDigest", f"The SHA256 you specified did not match the calculated checksum "
                                             f"(mycli AWS rule, see {DOCS['PutObject']})")
        return original(self, *args, **kwargs)

    S3Response.put_object = put_object
