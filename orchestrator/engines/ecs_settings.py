"""The ECS engine's settings: environment variables the CloudFormation stack gives the Lambda.

`mycli server --engine aws` reads the same variables (copied from the deployed function's
configuration), so the local front and the Lambda run the same engine with the same settings.

| variable            | meaning                                                        |
|---------------------|----------------------------------------------------------------|
| ECS_CLUSTER         | cluster name or ARN the tasks run in (required)                |
| SUBNETS             | comma-separated subnet IDs for the tasks' awsvpc ENI (required)|
| SECURITY_GROUP      | comma-separated security group IDs (required)                  |
| TASK_DEFINITION     | base task definition family; per-image ones are copied from it |
| LOG_GROUP           | CloudWatch log group of the tasks (required)                   |
| EXECUTIONS_TABLE    | DynamoDB table of execution records (required)                 |
| CONTAINER_NAME      | container in the task definition (default: executor)           |
| LOG_STREAM_PREFIX   | awslogs-stream-prefix (default: task)                          |
| DEFAULT_IMAGE       | the base task definition's image (default: ubuntu:22.04)       |
| CAPACITY_PROVIDER   | FARGATE_SPOT (default) or FARGATE (on demand)                  |
| ASSIGN_PUBLIC_IP    | ENABLED (default; public subnets, no NAT) or DISABLED          |
| GITHUB_HOST / GITLAB_HOST | hosts that receive the GitHub / GitLab token             |
| AWS_REGION          | region (set by Lambda; boto3's usual lookup otherwise)         |
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from ..errors import ServerMisconfigured

REQUIRED = ("ECS_CLUSTER", "SUBNETS", "SECURITY_GROUP", "TASK_DEFINITION", "LOG_GROUP", "EXECUTIONS_TABLE")


def _csv(value: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (value or "").split(",") if part.strip())


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
    default_image: str = "ubuntu:22.04"
    capacity_provider: str = "FARGATE_SPOT"
    assign_public_ip: str = "ENABLED"
    github_host: str = "github.com"
    gitlab_host: str = "gitlab.com"
    region: str | None = None
    missing: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> "EcsSettings":
        """Never raises: a missing variable is reported by `check()` on the first request, so a
        misconfigured Lambda answers with a clear error body instead of failing to import."""
        get = environ.get
        return cls(
            cluster=get("ECS_CLUSTER", ""),
            subnets=_csv(get("SUBNETS")),
            security_groups=_csv(get("SECURITY_GROUP")),
            task_definition=get("TASK_DEFINITION", ""),
            log_group=get("LOG_GROUP", ""),
            table=get("EXECUTIONS_TABLE", ""),
            container=get("CONTAINER_NAME") or "executor",
            stream_prefix=get("LOG_STREAM_PREFIX") or "task",
            default_image=get("DEFAULT_IMAGE") or "ubuntu:22.04",
            capacity_provider=(get("CAPACITY_PROVIDER") or "FARGATE_SPOT").upper(),
            assign_public_ip=(get("ASSIGN_PUBLIC_IP") or "ENABLED").upper(),
            github_host=get("GITHUB_HOST") or "github.com",
            gitlab_host=get("GITLAB_HOST") or "gitlab.com",
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
            raise ServerMisconfigured("server misconfigured: CAPACITY_PROVIDER must be FARGATE or FARGATE_SPOT")
