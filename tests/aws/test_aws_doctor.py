"""`mycli doctor` as a real process against stacks in the moto server: a healthy one passes every
check; each part broken the way a real account breaks finds that part, says what is wrong and
what to run, and exits 1. `%mycli doctor` is the same report (test_aws_magic)."""

from __future__ import annotations

import io
import json
import zipfile
from types import SimpleNamespace

import boto3
import pytest

from tests.support.aws import ACCOUNT, aws_env, in_region, lambda_wheels
from tests.support.cli import Cli

pytestmark = pytest.mark.aws

REGION = "eu-west-3"


@pytest.fixture(scope="module")
def aws(tmp_path_factory):
    from mycli_magic.aws.lambda_package import build_zip

    with in_region(REGION):
        home = tmp_path_factory.mktemp("doctor-home")
        package = build_zip({"MYCLI_LAMBDA_WHEELS": str(lambda_wheels())})
        yield SimpleNamespace(cli=Cli(home, extra_env=aws_env(REGION)), package=package)


def deploy(aws, stack: str) -> dict:
    """The stack as `mycli init` leaves it: the template, then the orchestrator's package."""
    from mycli_magic.aws.stack import load_template, parameters, stack_outputs
    from orchestrator.auth import hash_api_key

    boto3.client("cloudformation").create_stack(
        StackName=stack, TemplateBody=load_template(), Capabilities=["CAPABILITY_IAM"],
        Parameters=parameters({"APIKeyHash": hash_api_key("sk_live_" + "ef" * 32, rounds=4)}))
    outputs = stack_outputs(stack, REGION)
    boto3.client("lambda").update_function_code(FunctionName=outputs["FunctionName"], ZipFile=aws.package)
    return outputs


def doctor(aws, stack: str):
    return aws.cli.run("doctor", "--stack-name", stack, "--region", REGION)


def test_a_healthy_stack_passes_every_check(aws):
    deploy(aws, "doc-healthy")
    done = doctor(aws, "doc-healthy")
    assert done.returncode == 0, done.stdout + done.stderr
    parts = ["stack", "function", "roles", "task definition", "log group", "table", "secret", "run task", "api"]
    lines = done.stdout.splitlines()
    assert [line.split("  ")[1].strip().lstrip("✓ ") for line in lines[1:-1]] == parts, done.stdout
    assert lines[-1] == "✓ No problems found." and "✗" not in done.stdout
    assert "sk_live_" not in done.stdout and "github_token\":" not in done.stdout


def _placeholder(out):
    package = io.BytesIO()
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("index.py", "def handler(event, context):\n    return {'statusCode': 503}\n")
    boto3.client("lambda").update_function_code(FunctionName=out["FunctionName"], ZipFile=package.getvalue())


def _task_role_gone(out):
    iam = boto3.client("iam")
    definition = boto3.client("ecs").describe_task_definition(taskDefinition=out["TaskDefinitionFamily"])["taskDefinition"]
    name = definition["executionRoleArn"].rsplit("/", 1)[-1]
    for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]:
        iam.delete_role_policy(RoleName=name, PolicyName=policy)
    iam.delete_role(RoleName=name)


def _non_blocking_revision(out):
    """A newer revision registered by hand, with the old default log mode: RunTask uses it."""
    ecs = boto3.client("ecs")
    base = ecs.describe_task_definition(taskDefinition=out["TaskDefinitionFamily"])["taskDefinition"]
    containers = [dict(c) for c in base["containerDefinitions"]]
    executor = next(c for c in containers if c["name"] == "executor")
    executor["logConfiguration"] = {**executor["logConfiguration"],
                                    "options": {**executor["logConfiguration"]["options"], "mode": "non-blocking"}}
    keep = ("taskRoleArn", "executionRoleArn", "networkMode", "requiresCompatibilities", "cpu", "memory", "volumes")
    ecs.register_task_definition(family=base["family"], containerDefinitions=containers, **{k: base[k] for k in keep})


def _secret_key_missing(out):
    boto3.client("secretsmanager").put_secret_value(SecretId=out["GitCredentialsSecretArn"],
                                                    SecretString=json.dumps({"github_token": "", "gitlab_token": ""}))


def _stage_unthrottled(out):
    from moto.apigateway.models import apigateway_backends

    api = out["ApiEndpoint"].split("//", 1)[1].split(".", 1)[0]
    apigateway_backends[ACCOUNT][REGION].get_rest_api(api).stages["prod"].method_settings = {}  # as an older template left it


def _subnet_gone(out):
    ec2 = boto3.client("ec2")
    for subnet in out["SubnetIds"].split(","):
        for association in ec2.describe_route_tables(Filters=[{"Name": "association.subnet-id", "Values": [subnet]}])["RouteTables"]:
            for link in association["Associations"]:
                if link.get("SubnetId") == subnet:
                    ec2.disassociate_route_table(AssociationId=link["RouteTableAssociationId"])
        ec2.delete_subnet(SubnetId=subnet)


BREAKS = {
    # part: (how it breaks, words the finding must hold, what it must say to run)
    "function": (_placeholder, "placeholder code", "mycli init --force"),
    "function runtime": (lambda out: boto3.client("lambda").update_function_configuration(
        FunctionName=out["FunctionName"], Runtime="python3.9"), "runtime python3.9", "mycli init --force"),
    "roles": (_task_role_gone, "task execution role", "mycli destroy"),
    "task definition": (_non_blocking_revision, "awslogs mode is non-blocking", "aws ecs deregister-task-definition"),
    "log group": (lambda out: boto3.client("logs").delete_log_group(logGroupName=out["LogGroupName"]),
                  "does not exist", "aws logs create-log-group"),
    "table": (lambda out: boto3.client("dynamodb").delete_table(TableName=out["ExecutionsTableName"]),
              "does not exist", "mycli destroy"),
    "secret": (_secret_key_missing, "missing keys ssh_private_key", "aws secretsmanager put-secret-value"),
    "secret gone": (lambda out: boto3.client("secretsmanager").delete_secret(
        SecretId=out["GitCredentialsSecretArn"], ForceDeleteWithoutRecovery=True), "is gone", "mycli destroy"),
    "run task": (_subnet_gone, "do not exist", "mycli destroy"),
    "api": (_stage_unthrottled, "not throttled", "mycli init --force"),
}


@pytest.mark.parametrize("name", sorted(BREAKS))
def test_each_broken_part_is_found_with_what_to_run(aws, name):
    stack = "doc-" + name.replace(" ", "-")
    outputs = deploy(aws, stack)
    breaks, words, fix = BREAKS[name]
    breaks(outputs)
    done = doctor(aws, stack)
    assert done.returncode == 1, done.stdout + done.stderr
    part = name.split(" ")[0] if name not in ("task definition", "run task", "log group") else name
    lines = done.stdout.splitlines()
    problem = next((i for i, line in enumerate(lines) if line.startswith(f"  ✗ {part} ") and words in line), None)
    assert problem is not None, done.stdout
    assert lines[problem + 1].strip().startswith("→") and fix in lines[problem + 1], done.stdout
    assert "problem" in lines[-1] and "Traceback" not in done.stdout + done.stderr


def test_a_stack_that_rolled_back_or_is_missing_says_what_to_run(aws):
    template = {"Resources": {"Role": {"Type": "AWS::IAM::Role", "Properties": {
        "RoleName": "r" * 70, "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": []}}}}}
    boto3.client("cloudformation").create_stack(StackName="doc-rolledback", TemplateBody=json.dumps(template))
    done = doctor(aws, "doc-rolledback")
    assert done.returncode == 1
    assert "✗ stack" in done.stdout and "ROLLBACK_COMPLETE" in done.stdout and "roleName" in done.stdout
    assert "mycli destroy --stack-name doc-rolledback" in done.stdout and len(done.stdout.splitlines()) == 4

    missing = doctor(aws, "doc-nowhere")
    assert missing.returncode == 1 and "no stack named doc-nowhere" in missing.stdout
    assert f"mycli init --stack-name doc-nowhere --region {REGION}" in missing.stdout


@pytest.mark.parametrize("code, message, mark", [
    ("AccessDeniedException", "User: arn:aws:iam::123456789012:user/x is not authorized to perform: lambda:GetFunction", "·"),
    ("AccessDenied", "Forbidden", "·"),
    ("UnauthorizedOperation", "You are not authorized to perform this operation.", "·"),
    # the words of a denial in another error's message are not a denial: a problem to fix
    ("ValidationError", "Role name AccessDeniedRole is not valid (UnauthorizedOperation)", "✗"),
])
def test_a_part_aws_denies_is_a_note_by_aws_error_code_not_its_words(code, message, mark):
    from botocore.exceptions import ClientError

    from mycli_magic.aws.doctor import _run
    from mycli_magic.aws.stack import aws_errors

    def check(context):
        with aws_errors("Lambda GetFunction"):
            raise ClientError({"Error": {"Code": code, "Message": message}}, "GetFunction")
        yield  # a generator, as the checks are

    [finding] = _run("function", check, None)
    assert finding.mark == mark and code in finding.detail and finding.part == "function"
    assert ("read access" in finding.fix) == (mark == "·")
