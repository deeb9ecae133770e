"""What `mycli doctor` checks first: the stack, the function, the roles, the base task definition
(doctor_services.py has the rest). Each check is a generator of Findings (see doctor.py).

Each check reads what a real account would show and compares it with what the template and the
engine rely on; a finding says what is wrong in the user's terms and what to run. Two kinds of
fix: `mycli init --force` re-applies the template and uploads the code (it corrects what the
template sets and an update rewrites); what was deleted outside CloudFormation it does not
recreate, so those parts say to recreate the stack or name the one command that restores them.
"""

from __future__ import annotations

import json
from typing import Iterator

from orchestrator.engines.ecs_aws import error_code

from .doctor import OK, PROBLEM, Finding
from .stack import aws_errors, client, failure_reason, stack_outputs

EXPECTED_OUTPUTS = ("ApiEndpoint", "Region", "FunctionName", "ClusterName", "TaskDefinitionFamily", "LogGroupName",
                    "ExecutionsTableName", "SubnetIds", "SecurityGroupId", "TaskRoleName", "GitCredentialsSecretArn",
                    "ArtifactsBucketName")
READY = ("CREATE_COMPLETE", "UPDATE_COMPLETE")
FAILED = ("ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "DELETE_FAILED", "CREATE_FAILED", "UPDATE_ROLLBACK_FAILED")
PLACEHOLDER_MAX_BYTES = 64 * 1024  # the package carries bcrypt (hundreds of KB); the inline placeholder is < 1 KB
SECRET_KEYS = {"github_token", "gitlab_token", "ssh_private_key"}
# function variable → the stack output it must equal
SETTINGS = {"MYCLI_CLUSTER": "ClusterName", "MYCLI_TASK_DEFINITION": "TaskDefinitionFamily", "MYCLI_LOG_GROUP": "LogGroupName",
            "MYCLI_EXECUTIONS_TABLE": "ExecutionsTableName", "MYCLI_SUBNETS": "SubnetIds", "MYCLI_SECURITY_GROUPS": "SecurityGroupId"}


class Context:
    """What the checks share: the stack's outputs, clients, and the function and base task
    definition, each read once."""

    def __init__(self, stack: str, region: str):
        self.stack, self.region = stack, region
        self.outputs: dict[str, str] = {}
        self._function: dict | None = None
        self._definition: dict | None = None

    def client(self, service: str):
        return client(service, self.region)

    @property
    def reinit(self) -> str:
        return f"run: mycli init --force --stack-name {self.stack} --region {self.region}  (it also issues a new API key)"

    @property
    def recreate(self) -> str:
        return (f"CloudFormation does not recreate what was removed outside it; run: mycli destroy --stack-name {self.stack} "
                f"--region {self.region}, then mycli init --stack-name {self.stack} --region {self.region}")

    def function(self) -> dict:
        if self._function is None:
            with aws_errors("Lambda GetFunctionConfiguration"):
                self._function = self.client("lambda").get_function_configuration(FunctionName=self.outputs["FunctionName"])
        return self._function

    def variables(self) -> dict[str, str]:
        return dict((self.function().get("Environment") or {}).get("Variables") or {})

    def definition(self) -> dict | None:
        """The base family's latest ACTIVE revision (what RunTask uses), or None."""
        from botocore.exceptions import ClientError

        if self._definition is None:
            with aws_errors("ECS DescribeTaskDefinition"):
                try:
                    self._definition = self.client("ecs").describe_task_definition(
                        taskDefinition=self.outputs["TaskDefinitionFamily"])["taskDefinition"]
                except ClientError as exc:
                    if error_code(exc) != "ClientException":
                        raise
                    self._definition = {}
        return self._definition or None


def check_stack(ctx: Context) -> Iterator[Finding]:
    outputs = stack_outputs(ctx.stack, ctx.region)
    if outputs is None:
        yield Finding("stack", PROBLEM, f"no stack named {ctx.stack} in {ctx.region}",
                      f"run: mycli init --stack-name {ctx.stack} --region {ctx.region}")
        return
    status = outputs.pop("_status")
    if status in FAILED:
        yield Finding("stack", PROBLEM, f"{status} ({failure_reason(ctx.stack, ctx.region)})",
                      f"run: mycli destroy --stack-name {ctx.stack} --region {ctx.region}, then mycli init again")
        return
    ctx.outputs = outputs
    missing = [k for k in EXPECTED_OUTPUTS if k not in outputs]
    if status.endswith("_IN_PROGRESS"):
        yield Finding("stack", PROBLEM, f"{status}: an operation is still running", "wait for it to end, then run mycli doctor again")
    elif status not in READY:
        yield Finding("stack", PROBLEM, f"{status}: the last update failed; the stack runs its previous template", ctx.reinit)
    if missing:
        yield Finding("stack", PROBLEM, f"outputs missing: {', '.join(missing)} (deployed by an older mycli?)", ctx.reinit)
    if status in READY and not missing:
        yield Finding("stack", OK, f"{status}; {len(outputs)} outputs")


def check_function(ctx: Context) -> Iterator[Finding]:
    from orchestrator.auth import parse_hashes

    fn, variables = ctx.function(), ctx.variables()
    wrong = []
    if fn.get("Runtime") != "python3.12":
        wrong.append(f"runtime {fn.get('Runtime')} (the package is built for python3.12)")
    if fn.get("Architectures", ["x86_64"]) != ["arm64"]:
        wrong.append(f"architecture {','.join(fn.get('Architectures', ['x86_64']))} (bcrypt in the package is arm64)")
    if fn.get("Handler") != "index.handler":
        wrong.append(f"handler {fn.get('Handler')} (the package's entry point is index.handler)")
    if fn.get("State") == "Failed" or fn.get("LastUpdateStatus") == "Failed":
        wrong.append(f"state Failed ({fn.get('StateReason') or fn.get('LastUpdateStatusReason')})")
    if not parse_hashes(variables.get("API_KEY_HASH")):
        wrong.append("no API key hash: every request is refused")
    wrong += [f"{var} is {variables.get(var)!r}, the stack's {out} is {ctx.outputs[out]!r}"
              for var, out in SETTINGS.items() if out in ctx.outputs and variables.get(var) != ctx.outputs[out]]
    for problem in wrong:
        yield Finding("function", PROBLEM, problem, ctx.reinit)
    if int(fn.get("CodeSize") or 0) < PLACEHOLDER_MAX_BYTES:
        yield Finding("function", PROBLEM, f"holds the placeholder code ({fn.get('CodeSize')} bytes), not the orchestrator: "
                                           "every request answers 503", ctx.reinit)
    elif not wrong:
        yield Finding("function", OK, f"python3.12 on arm64, {int(fn['CodeSize']) // 1024} KB of code, settings match the stack")


def check_roles(ctx: Context) -> Iterator[Finding]:
    from botocore.exceptions import ClientError

    definition = ctx.definition() or {}
    iam = ctx.client("iam")
    roles = (("orchestrator role", ctx.function().get("Role"), "lambda.amazonaws.com"),
             ("task execution role", definition.get("executionRoleArn"), "ecs-tasks.amazonaws.com"),
             ("task role", definition.get("taskRoleArn"), "ecs-tasks.amazonaws.com"))
    bad = 0
    for label, arn, principal in roles:
        if not arn:
            bad += 1
            yield Finding("roles", PROBLEM, f"the base task definition names no {label}", ctx.recreate)
            continue
        name = arn.rsplit("/", 1)[-1]
        with aws_errors("IAM GetRole"):
            try:
                role = iam.get_role(RoleName=name)["Role"]
            except ClientError as exc:
                if error_code(exc) != "NoSuchEntity":
                    raise
                bad += 1
                yield Finding("roles", PROBLEM, f"the {label} {name} does not exist", ctx.recreate)
                continue
            inline = iam.list_role_policies(RoleName=name)["PolicyNames"]
        if principal not in json.dumps(role.get("AssumeRolePolicyDocument")):
            bad += 1
            yield Finding("roles", PROBLEM, f"the {label} {name} does not trust {principal}", ctx.recreate)
        elif label != "task role" and not inline:
            bad += 1
            yield Finding("roles", PROBLEM, f"the {label} {name} has lost its policy", ctx.recreate)
    if not bad:
        yield Finding("roles", OK, "the orchestrator, task execution and task roles exist, with their trust and policies")


def check_task_definition(ctx: Context) -> Iterator[Finding]:
    from orchestrator.sizes import task_size_error

    definition, family = ctx.definition(), ctx.outputs["TaskDefinitionFamily"]
    if definition is None:
        yield Finding("task definition", PROBLEM, f"{family} has no ACTIVE revision: no run can start", ctx.recreate)
        return
    revision, variables = f"{family}:{definition['revision']}", ctx.variables()
    wrong = []
    if "FARGATE" not in definition.get("requiresCompatibilities", []) or definition.get("networkMode") != "awsvpc":
        wrong.append("it is not a Fargate (awsvpc) definition")
    size_problem = task_size_error(definition.get("cpu"), definition.get("memory"))
    if size_problem:
        wrong.append(size_problem)
    name = variables.get("MYCLI_CONTAINER_NAME") or "executor"
    containers = {c.get("name"): c for c in definition.get("containerDefinitions", [])}
    missing = [n for n in ("fetch", name, "publish") if n not in containers]
    if missing:
        wrong.append(f"it has no container {', '.join(missing)} (a run is fetch → {name} → publish)")
    for container in containers.values():
        log = container.get("logConfiguration") or {}
        options = log.get("options") or {}
        if (log.get("logDriver") != "awslogs" or options.get("awslogs-group") != ctx.outputs["LogGroupName"]
                or options.get("awslogs-stream-prefix") != (variables.get("MYCLI_LOG_STREAM_PREFIX") or "task")):
            wrong.append(f"{container.get('name')}'s logs do not go to {ctx.outputs['LogGroupName']} as the orchestrator reads them")
        elif options.get("mode") != "blocking":
            wrong.append(f"{container.get('name')}'s awslogs mode is {options.get('mode') or 'unset (non-blocking by default)'}: "
                         "output is dropped when its buffer fills")
    if name in containers and not (containers[name].get("linuxParameters") or {}).get("initProcessEnabled"):
        wrong.append("no init process: mycli stop's SIGTERM never reaches the command")
    secret = ctx.outputs.get("GitCredentialsSecretArn", "")
    if not all(s.get("valueFrom", "").startswith(secret + ":") for c in containers.values() for s in c.get("secrets", [])):
        wrong.append("its git credentials point at another secret than the stack's")
    if containers.get(name, {}).get("secrets"):
        wrong.append(f"{name} has the git credentials: the command could read them (they belong to fetch only)")
    fix = ctx.recreate
    own = _stack_revision(ctx)
    if own and own != definition["taskDefinitionArn"]:
        fix = f"run: aws ecs deregister-task-definition --task-definition {revision} --region {ctx.region}  (the stack's own is {own.rsplit('/', 1)[-1]})"
    for problem in wrong:
        yield Finding("task definition", PROBLEM, f"{revision}: {problem}", fix)
    if not wrong:
        yield Finding("task definition", OK, f"{revision}: Fargate {definition['cpu']} CPU / {definition['memory']} MiB, "
                                             "awslogs blocking, init process, the stack's secret")


def _stack_revision(ctx: Context) -> str | None:
    """The base task definition revision the stack itself registered."""
    with aws_errors("CloudFormation ListStackResources"):
        pages = ctx.client("cloudformation").get_paginator("list_stack_resources").paginate(StackName=ctx.stack)
        return next((r.get("PhysicalResourceId") for page in pages for r in page["StackResourceSummaries"]
                     if r["LogicalResourceId"] == "TaskDefinition"), None)

