"""What `mycli doctor` checks after the function and the task definition: the log group, the
executions table, the git credentials secret, a RunTask request as the engine would send it
(validated against botocore's model, its subnets, security group and cluster looked up), and the
API stage's throttling. Each check is a generator of Findings (see doctor.py)."""

from __future__ import annotations

import json
from typing import Iterator
from urllib.parse import urlsplit

from orchestrator.engines.ecs_aws import error_code

from .doctor import NOTE, OK, PROBLEM, Finding
from .doctor_checks import SECRET_KEYS, Context
from .stack import aws_errors


def check_log_group(ctx: Context) -> Iterator[Finding]:
    name = ctx.outputs["LogGroupName"]
    with aws_errors("CloudWatch Logs DescribeLogGroups"):
        groups = ctx.client("logs").describe_log_groups(logGroupNamePrefix=name)["logGroups"]
    group = next((g for g in groups if g["logGroupName"] == name), None)
    if group is None:
        yield Finding("log group", PROBLEM, f"{name} does not exist: tasks cannot start (awslogs writes there)",
                      f"run: aws logs create-log-group --log-group-name {name} --region {ctx.region} && aws logs "
                      f"put-retention-policy --log-group-name {name} --retention-in-days 7 --region {ctx.region}")
    else:
        yield Finding("log group", OK, f"{name} ({group.get('retentionInDays', 'no')} days' retention)")


def check_table(ctx: Context) -> Iterator[Finding]:
    from botocore.exceptions import ClientError

    name = ctx.outputs["ExecutionsTableName"]
    with aws_errors("DynamoDB DescribeTable"):
        try:
            table = ctx.client("dynamodb").describe_table(TableName=name)["Table"]
        except ClientError as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise
            yield Finding("table", PROBLEM, f"{name} does not exist: no run can be recorded", ctx.recreate)
            return
    indexes = {i["IndexName"] for i in table.get("GlobalSecondaryIndexes", [])}
    key = [k["AttributeName"] for k in table.get("KeySchema", [])]
    if table.get("TableStatus") != "ACTIVE" or key != ["execution_id"] or not {"by_created", "by_task"} <= indexes:
        yield Finding("table", PROBLEM, f"{name} is {table.get('TableStatus')}, keyed on {key}, with indexes "
                                        f"{sorted(indexes)} (expected ACTIVE, execution_id, by_created and by_task)", ctx.recreate)
    else:
        yield Finding("table", OK, f"{name} ACTIVE, with its by_created and by_task indexes")


def check_secret(ctx: Context) -> Iterator[Finding]:
    from botocore.exceptions import ClientError

    arn = ctx.outputs["GitCredentialsSecretArn"]
    secrets = ctx.client("secretsmanager")
    with aws_errors("Secrets Manager DescribeSecret"):
        try:
            described = secrets.describe_secret(SecretId=arn)
        except ClientError as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise
            yield Finding("secret", PROBLEM, "the git credentials secret is gone: ECS reads it at every task start, "
                                             "so no run can start", ctx.recreate)
            return
    if described.get("DeletedDate"):
        yield Finding("secret", PROBLEM, "the git credentials secret is scheduled for deletion: no run can start",
                      f"run: aws secretsmanager restore-secret --secret-id {arn} --region {ctx.region}")
        return
    try:
        with aws_errors("Secrets Manager GetSecretValue"):
            value = secrets.get_secret_value(SecretId=arn).get("SecretString") or ""
    except Exception as exc:  # AwsError: most often a deployer without GetSecretValue
        yield Finding("secret", NOTE, f"exists; its keys could not be read ({exc})")
        return
    try:
        keys = set(json.loads(value))
    except (ValueError, TypeError):
        keys = set()
    missing = SECRET_KEYS - keys
    if missing:
        yield Finding("secret", PROBLEM, f"missing keys {', '.join(sorted(missing))}: ECS refuses to start a task whose "
                                         "valueFrom names a missing key",
                      f"put the three keys back (empty strings for unused ones): aws secretsmanager put-secret-value "
                      f"--secret-id {arn} --secret-string file://git-credentials.json --region {ctx.region}")
    else:
        yield Finding("secret", OK, "the git credentials secret holds its three keys (values not shown)")


def check_run_task(ctx: Context) -> Iterator[Finding]:
    """The RunTask request the engine builds with the function's settings, validated against
    botocore's model of ECS, and the network and cluster it names looked up."""
    import botocore.session
    from botocore.exceptions import ClientError, ParamValidationError
    from botocore.validate import validate_parameters

    from orchestrator.engines.ecs import EcsEngine
    from orchestrator.engines.ecs_command import overrides_size
    from orchestrator.engines.ecs_settings import EcsSettings
    from orchestrator.errors import ApiError
    from orchestrator.validation import parse_request

    settings = EcsSettings.from_env({**ctx.variables(), "AWS_REGION": ctx.region})
    try:
        settings.check()
        engine = EcsEngine(settings)
        # with a size, so the task-level cpu/memory overrides are checked against the model too
        _, request = parse_request({"action": "exec", "command": "echo mycli doctor", "skip_git": True, "cpu": 1})
        launch = engine.launch_for(request, "0" * 12)
        params = engine.run_task_params(settings.task_definition, launch.overrides, "0" * 12, request)
        model = botocore.session.get_session().get_service_model("ecs").operation_model("RunTask")
        validate_parameters(params, model.input_shape)
    except (ApiError, ParamValidationError) as exc:
        yield Finding("run task", PROBLEM, f"the engine's RunTask request is invalid: {getattr(exc, 'message', exc)}", ctx.reinit)
        return
    wrong = []
    with aws_errors("EC2 DescribeSubnets/DescribeSecurityGroups"):
        ec2 = ctx.client("ec2")
        for what, call, ids in (("subnets", ec2.describe_subnets, {"SubnetIds": list(settings.subnets)}),
                                ("security group", ec2.describe_security_groups, {"GroupIds": list(settings.security_groups)})):
            try:
                call(**ids)
            except ClientError as exc:
                if "NotFound" not in error_code(exc):
                    raise
                wrong.append(f"its {what} {', '.join(*ids.values())} do not exist")
    with aws_errors("ECS DescribeClusters"):
        clusters = ctx.client("ecs").describe_clusters(clusters=[settings.cluster])["clusters"]
    cluster = clusters[0] if clusters else {}
    if cluster.get("status") != "ACTIVE":
        wrong.append(f"cluster {settings.cluster} is {cluster.get('status', 'missing')}")
    elif settings.capacity_provider not in cluster.get("capacityProviders", []) and settings.capacity_provider != "FARGATE":
        wrong.append(f"cluster {settings.cluster} has no {settings.capacity_provider} capacity provider")
    for problem in wrong:
        yield Finding("run task", PROBLEM, problem, ctx.recreate)
    if not wrong:
        yield Finding("run task", OK, f"the engine's request is valid for botocore's RunTask model ({overrides_size(launch.overrides)} "
                                      f"characters of overrides); {len(settings.subnets)} subnets, the security group and "
                                      f"cluster {settings.cluster} exist")


def check_api(ctx: Context) -> Iterator[Finding]:
    from botocore.exceptions import ClientError

    endpoint = urlsplit(ctx.outputs["ApiEndpoint"])
    api, stage = endpoint.hostname.split(".", 1)[0], endpoint.path.strip("/").split("/", 1)[0]
    with aws_errors("API Gateway GetStage"):
        try:
            settings = ctx.client("apigateway").get_stage(restApiId=api, stageName=stage).get("methodSettings") or {}
        except ClientError as exc:
            if error_code(exc) != "NotFoundException":
                raise
            yield Finding("api", PROBLEM, f"stage {stage} of API {api} does not exist: the endpoint answers 403", ctx.reinit)
            return
    every = settings.get("*/*") or {}
    if not every.get("throttlingRateLimit"):
        yield Finding("api", PROBLEM, f"stage {stage} is not throttled: every unauthenticated request runs the function "
                                      "(a bcrypt verify each)", ctx.reinit)
    else:
        yield Finding("api", OK, f"stage {stage} throttled to {every['throttlingRateLimit']:g} requests/s "
                                 f"(burst {every.get('throttlingBurstLimit')})")
