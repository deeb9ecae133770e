"""The ECS engine's settings: environment variables the CloudFormation stack gives the Lambda.

`mycli server --engine aws` reads the same variables (copied from the deployed function's
configuration), so the local front and the Lambda run the same engine with the same settings.

| variable                    | meaning                                                   |
|-----------------------------|-----------------------------------------------------------|
| MYCLI_CLUSTER               | cluster name or ARN the tasks run in (required)           |
| MYCLI_SUBNETS               | comma-separated subnet IDs for the tasks' ENI (required)  |
| MYCLI_SECURITY_GROUPS       | comma-separated security group IDs (required)             |
| MYCLI_TASK_DEFINITION       | base task definition family (required); per-image ones    |
|                             | are copied from it as `{family}-{sanitized image}`        |
| MYCLI_LOG_GROUP             | CloudWatch log group of the tasks (required)              |
| MYCLI_EXECUTIONS_TABLE      | DynamoDB table of execution records (required)            |
| MYCLI_CONTAINER_NAME        | container in the task definition (default: executor)      |
| MYCLI_LOG_STREAM_PREFIX     | awslogs-stream-prefix (default: task)                     |
| MYCLI_CAPACITY_PROVIDER     | FARGATE_SPOT (default) or FARGATE (on demand)             |
| MYCLI_ASSIGN_PUBLIC_IP      | ENABLED (default; public subnets, no NAT) or DISABLED     |
| MYCLI_TIMEOUT_GRACE_SECONDS | how long past its timeout a task may run before the       |
|                             | engine stops it (default 300; the script's watchdog acts  |
|                             | first)                                                    |
| MYCLI_LOG_SETTLE_SECONDS    | how long after STOPPED a log is still reported incomplete |
|                             | (the awslogs driver ships the last lines late; default 15)|
| MYCLI_BUCKET                | the stack's bucket: uploads/ (inputs) and artifacts/      |
| MYCLI_MAX_UPLOAD_MB         | one upload's cap (100; 0: none), as the embedded engine's |
| MYCLI_MAX_ARTIFACT_MB       | one artifact's cap (100), applied by the publish container|
| MYCLI_MAX_ARTIFACTS_MB      | a run's artifacts together (1024)                         |
| DEFAULT_IMAGE               | the base definition's image (default: DEFAULT_IMAGE below)|
| GITHUB_HOST / GITLAB_HOST   | hosts that get the GitHub / GitLab token                  |
| AWS_REGION                  | region (set by Lambda; boto3's usual lookup otherwise)    |

The names carry the MYCLI_ prefix because generic ones (CONTAINER_NAME, LOG_GROUP) are often
already set in the environment of a container or CI job that runs `mycli server --engine aws`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from ..artifacts import DEFAULT_MAX_FILE_BYTES, DEFAULT_MAX_RUN_BYTES
from ..errors import ServerMisconfigured
from ..units import MIB
from ..validation import DEFAULT_MAX_UPLOAD_BYTES

# Docker's official ubuntu image through the ECR Public Gallery's mirror of Docker Official Images:
# Fargate caches nothing, so every task pulls its image, and Docker Hub allows only a handful of
# anonymous pulls per hour from one address; ECR Public serves anonymous pulls from AWS.
DEFAULT_IMAGE = "public.ecr.aws/docker/library/ubuntu:22.04"

REQUIRED = ("MYCLI_CLUSTER", "MYCLI_SUBNETS", "MYCLI_SECURITY_GROUPS", "MYCLI_TASK_DEFINITION", "MYCLI_LOG_GROUP",
            "MYCLI_EXECUTIONS_TABLE")


def _csv(value: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (value or "").split(",") if part.strip())


def _seconds(value: str | None, default: int) -> int:
    return int(value) if value and value.isdigit() else default


@dataclass(frozen=True)
class EcsSettings:
    cluster: str
    subnets: tuple[str, ...]
    security_groups: tuple[str, ...]
    task_definition: str
    log_group: str
    table: str
    container: str = "executor"
    stream_prefix: str = "task"
    default_image: str = DEFAULT_IMAGE
    capacity_provider: str = "FARGATE_SPOT"
    assign_public_ip: str = "ENABLED"
    github_host: str = "github.com"
    gitlab_host: str = "gitlab.com"
    timeout_grace: int = 300
    log_settle: int = 15
    bucket: str = ""
    # the embedded engine's defaults (local_files.FileCaps), so a run is capped alike on both
    max_upload_mb: int = DEFAULT_MAX_UPLOAD_BYTES // MIB
    max_artifact_mb: int = DEFAULT_MAX_FILE_BYTES // MIB
    max_artifacts_mb: int = DEFAULT_MAX_RUN_BYTES // MIB
    region: str | None = None
    missing: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> "EcsSettings":
        """Never raises: a missing variable is reported by `check()` on the first request, so a
        misconfigured Lambda answers with a clear error body instead of failing to import."""
        get = environ.get
        return cls(
            cluster=get("MYCLI_CLUSTER", ""),
            subnets=_csv(get("MYCLI_SUBNETS")),
            security_groups=_csv(get("MYCLI_SECURITY_GROUPS")),
            task_definition=get("MYCLI_TASK_DEFINITION", ""),
            log_group=get("MYCLI_LOG_GROUP", ""),
            table=get("MYCLI_EXECUTIONS_TABLE", ""),
            container=get("MYCLI_CONTAINER_NAME") or "executor",
            stream_prefix=get("MYCLI_LOG_STREAM_PREFIX") or "task",
            default_image=get("DEFAULT_IMAGE") or DEFAULT_IMAGE,
            capacity_provider=(get("MYCLI_CAPACITY_PROVIDER") or "FARGATE_SPOT").upper(),
            assign_public_ip=(get("MYCLI_ASSIGN_PUBLIC_IP") or "ENABLED").upper(),
            github_host=get("GITHUB_HOST") or "github.com",
            gitlab_host=get("GITLAB_HOST") or "gitlab.com",
            timeout_grace=_seconds(get("MYCLI_TIMEOUT_GRACE_SECONDS"), 300),
            log_settle=_seconds(get("MYCLI_LOG_SETTLE_SECONDS"), 15),
            bucket=get("MYCLI_BUCKET", ""),
            max_upload_mb=_seconds(get("MYCLI_MAX_UPLOAD_MB"), cls.max_upload_mb),
            max_artifact_mb=_seconds(get("MYCLI_MAX_ARTIFACT_MB"), cls.max_artifact_mb),
            max_artifacts_mb=_seconds(get("MYCLI_MAX_ARTIFACTS_MB"), cls.max_artifacts_mb),
            region=get("AWS_REGION") or get("AWS_DEFAULT_REGION") or None,
            missing=tuple(name for name in REQUIRED if not get(name)),
        )

    def check(self) -> None:
        if self.missing:
            raise ServerMisconfigured(
                "server misconfigured: the AWS engine needs " + ", ".join(self.missing)
                + " (set by the CloudFormation stack; for `mycli server --engine aws` pass --stack-name)"
            )
        if self.capacity_provider not in ("FARGATE", "FARGATE_SPOT"):
            raise ServerMisconfigured("server misconfigured: MYCLI_CAPACITY_PROVIDER must be FARGATE or FARGATE_SPOT")
