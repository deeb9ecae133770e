"""`mycli init` / `mycli destroy` / endpoint discovery as real processes against a moto server."""

from __future__ import annotations

import base64
import hashlib
import io
import re
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import boto3
import pytest
import yaml
from tests.support.aws import ACCOUNT, deploy_env, in_region
from tests.support.cli import Cli

pytestmark = pytest.mark.aws

REGION = "eu-west-1"
STACK = "deploytest"
TOKEN = "ghp_deploytestsecret0123456789"


@pytest.fixture(scope="module")
def aws():
    with in_region(REGION):
        yield


@pytest.fixture
def cli(aws, tmp_path) -> Cli:
    home = tmp_path / "home"
    home.mkdir()
    return Cli(home, extra_env=deploy_env(REGION))


def _function_zip(name: str) -> bytes:
    from moto.awslambda.models import lambda_backends

    return lambda_backends[ACCOUNT][REGION].get_function(name).code_bytes


def _handler_imports(package: bytes, where: Path) -> str:
    """Import orchestrator.handler from the zip, as Lambda would, with this machine's bcrypt in
    place of the packed aarch64 one (which cannot load here), and without site-packages."""
    root = where / "function"
    with zipfile.ZipFile(io.BytesIO(package)) as archive:
        archive.extractall(root)
    shutil.rmtree(root / "bcrypt")
    import bcrypt

    host = where / "host-bcrypt"
    shutil.copytree(Path(bcrypt.__file__).parent, host / "bcrypt")
    probe = ("import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]; import index, orchestrator.handler as h; "
             "assert index.handler is h.handler; assert 'boto3' not in sys.modules; print(h.__file__)")
    done = subprocess.run([sys.executable, "-S", "-c", probe, str(root), str(host)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_init_deploys_the_stack_and_destroy_removes_everything(cli: Cli, tmp_path):
    done = cli.run("init", "--force", "--region", REGION, "--stack-name", STACK, env={"GITHUB_TOKEN": TOKEN})
    assert done.returncode == 0, done.stderr
    output = done.stdout + done.stderr
    # progress comes from the stack's events (moto records only the stack's own)
    assert re.search(r"CREATE_COMPLETE +AWS::CloudFormation::Stack +deploytest", output)
    assert TOKEN not in output

    cloudformation = boto3.client("cloudformation")
    stack = cloudformation.describe_stacks(StackName=STACK)["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    types = {r["ResourceType"] for r in cloudformation.list_stack_resources(StackName=STACK)["StackResourceSummaries"]}
    assert {"AWS::EC2::VPC", "AWS::EC2::Subnet", "AWS::EC2::InternetGateway", "AWS::EC2::SecurityGroup",
            "AWS::ECS::Cluster", "AWS::ECS::TaskDefinition", "AWS::Logs::LogGroup", "AWS::IAM::Role",
            "AWS::DynamoDB::Table", "AWS::Lambda::Function", "AWS::ApiGateway::RestApi",
            "AWS::ApiGateway::Deployment", "AWS::ApiGateway::Stage", "AWS::Lambda::Permission",
            "AWS::SecretsManager::Secret"} <= types

    # the key: shown once, saved 0600 with the endpoint the stack reports
    keys = re.findall(r"sk_live_[0-9a-f]{64}", output)
    assert len(keys) == 1
    path = cli.home / "config.yaml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    saved = yaml.safe_load(path.read_text())
    assert saved["api_key"] == keys[0]
    assert saved["api_endpoint"] == outputs["ApiEndpoint"] and outputs["ApiEndpoint"].endswith("/prod/execute")
    assert saved["region"] == REGION and saved["stack_name"] == STACK

    # the function: our code, the key's hash, no git token, Python 3.12
    lam = boto3.client("lambda")
    function = lam.get_function_configuration(FunctionName=outputs["FunctionName"])
    assert function["Runtime"] == "python3.12"  # (moto drops Architectures; test_aws_template checks arm64)
    assert function["Handler"] == "index.handler"  # where the template's placeholder is; the zip's index.py hands over
    variables = function["Environment"]["Variables"]
    import bcrypt

    assert bcrypt.checkpw(keys[0].encode(), variables["API_KEY_HASH"].encode())
    assert TOKEN not in repr(variables)
    package = _function_zip(outputs["FunctionName"])
    assert function["CodeSha256"] == base64.b64encode(hashlib.sha256(package).digest()).decode()
    with zipfile.ZipFile(io.BytesIO(package)) as archive:
        names = archive.namelist()
        native = next(n for n in names if n.startswith("bcrypt/_bcrypt") and n.endswith(".so"))
        assert int.from_bytes(archive.read(native)[18:20], "little") == 183  # ELF e_machine: AArch64
    assert "orchestrator/engines/ecs.py" in names and not any(n.startswith(("boto3/", "mycli_magic/")) for n in names)
    assert _handler_imports(package, tmp_path).startswith(str(tmp_path / "function"))

    # configure's discovery reads the same outputs
    from mycli_magic.aws.deploy import discover_endpoint

    assert discover_endpoint(STACK, REGION) == (outputs["ApiEndpoint"], REGION)

    # a second init refuses to clobber the stack without --force, in one line
    again = cli.run("init", "--region", REGION, "--stack-name", STACK, input="")
    assert again.returncode != 0 and len(again.stderr.strip().splitlines()) == 1 and "Traceback" not in again.stderr

    # a per-image task definition as the engine registers it, so destroy has one to remove
    ecs = boto3.client("ecs")
    ecs.register_task_definition(family=f"{STACK}-task-alpine-latest",
                                 containerDefinitions=[{"name": "executor", "image": "alpine:latest", "memory": 512}])
    ecs.register_task_definition(family="unrelated-task", containerDefinitions=[{"name": "x", "image": "alpine", "memory": 64}])

    gone = cli.run("destroy", "--force", "--region", REGION, "--stack-name", STACK)
    assert gone.returncode == 0, gone.stderr
    assert "Deleted:" in gone.stdout
    with pytest.raises(cloudformation.exceptions.ClientError):
        cloudformation.describe_stacks(StackName=STACK)
    for family in (f"{STACK}-task", f"{STACK}-task-alpine-latest"):
        for status in ("ACTIVE", "INACTIVE"):
            assert ecs.list_task_definitions(familyPrefix=family, status=status)["taskDefinitionArns"] == [], family
    assert f"{STACK}-task-alpine-latest:1" in gone.stdout
    assert ecs.list_task_definitions(familyPrefix="unrelated-task")["taskDefinitionArns"]
    left = yaml.safe_load(path.read_text()) or {}
    assert "api_key" not in left and "stack_name" not in left


def test_destroy_of_a_missing_stack_says_so_and_keep_config_keeps_it(cli: Cli):
    from mycli_magic import config

    config.update_profile(None, {"api_endpoint": "https://x.invalid/prod/execute", "api_key": "sk_live_" + "0" * 64,
                                 "region": REGION, "stack_name": "nosuchstack"}, cli.env())
    done = cli.run("destroy", "--force", "--keep-config", "--stack-name", "nosuchstack")
    assert done.returncode == 0, done.stderr
    assert "No stack named nosuchstack" in done.stdout
    assert yaml.safe_load((cli.home / "config.yaml").read_text())["stack_name"] == "nosuchstack"


def test_init_without_a_terminal_or_force_asks_for_force(cli: Cli):
    done = cli.run("init", "--region", REGION, "--stack-name", "neverdeployed")
    assert done.returncode == 2
    assert "--force" in done.stderr and "Traceback" not in done.stderr
    with pytest.raises(Exception):
        boto3.client("cloudformation").describe_stacks(StackName="neverdeployed")


def test_bad_credentials_are_refused_before_anything_is_created(cli: Cli, tmp_path):
    token = tmp_path / "token"
    token.write_text('bad"token')
    done = cli.run("init", "--force", "--region", REGION, "--stack-name", "badcreds", "--github-token-file", str(token))
    assert done.returncode == 2 and "GitHub token" in done.stderr
    assert 'bad"token' not in done.stderr
    with pytest.raises(Exception):
        boto3.client("cloudformation").describe_stacks(StackName="badcreds")


def test_the_template_is_package_data():
    from mycli_magic.aws.stack import load_template

    assert load_template() == (Path(__file__).resolve().parents[2] / "deploy" / "cloudformation.yaml").read_text()


def test_the_longest_stack_name_deploys_in_two_regions(cli: Cli):
    """IAM names are account-wide: fixed role names made the same stack in a second region fail;
    the longest stack name init accepts fits every name (tests/support/aws_rules.py enforces IAM's and Lambda's
    64 characters in the moto server, as AWS does)."""
    from mycli_magic.aws.stack import MAX_STACK_NAME

    stack = ("long-" * 20)[:MAX_STACK_NAME - 1] + "x"
    for region in (REGION, "eu-central-1"):
        done = cli.run("init", "--force", "--region", region, "--stack-name", stack, "--profile", region)
        assert done.returncode == 0, done.stderr
        assert boto3.client("cloudformation", region_name=region).describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
    roles = [r["RoleName"] for r in boto3.client("iam").list_roles()["Roles"] if r["RoleName"].startswith(stack[:20])]
    assert len(roles) == 6 and all(len(r) <= 64 for r in roles), roles
    too_long = cli.run("init", "--force", "--region", REGION, "--stack-name", stack + "y")
    assert too_long.returncode == 2 and f"at most {MAX_STACK_NAME}" in too_long.stderr
    for region in (REGION, "eu-central-1"):
        assert cli.run("destroy", "--force", "--region", region, "--stack-name", stack).returncode == 0


def test_the_stacks_options_reach_aws(cli: Cli):
    """`mycli init`'s options become the stack's parameters, and what moto's CloudFormation can
    show of them is there: the stage's throttling, reserved concurrency only when asked for, the
    private-ECR pull policy only with repositories named. Bad values change nothing."""
    from mycli_magic.aws.stack import load_template, parameters

    cloudformation, lam, iam = boto3.client("cloudformation"), boto3.client("lambda"), boto3.client("iam")
    cloudformation.create_stack(StackName="optsdefault", TemplateBody=load_template(), Capabilities=["CAPABILITY_IAM"],
                                Parameters=parameters({"APIKeyHash": "$2b$10$" + "x" * 53}))
    flags = ("--reserved-concurrency", "5", "--ecr-repositories", "docker-hub/*", "--api-rate-limit", "3", "--api-burst-limit", "6",
             "--artifact-retention-days", "2")
    done = cli.run("init", "--force", "--region", REGION, "--stack-name", "optsset", *flags)
    assert done.returncode == 0, done.stderr
    for stack, expected in (("optsdefault", None), ("optsset", (5, "docker-hub/*", 3, 6))):
        resources = {r["LogicalResourceId"]: r["PhysicalResourceId"]
                     for r in cloudformation.list_stack_resources(StackName=stack)["StackResourceSummaries"]}
        settings = boto3.client("apigateway").get_stage(restApiId=resources["Api"], stageName="prod")["methodSettings"]["*/*"]
        reserved = lam.get_function_concurrency(FunctionName=f"{stack}-orchestrator").get("ReservedConcurrentExecutions")
        policies = iam.list_role_policies(RoleName=resources["TaskExecutionRole"])["PolicyNames"]
        rules = boto3.client("s3").get_bucket_lifecycle_configuration(Bucket=resources["ArtifactsBucket"])["Rules"]
        assert {r["Expiration"]["Days"] for r in rules} == {2 if expected else 7}
        if expected:
            assert (reserved, (settings["throttlingRateLimit"], settings["throttlingBurstLimit"])) == (5, (3, 6))
            document = iam.get_role_policy(RoleName=resources["TaskExecutionRole"], PolicyName="pull-from-private-ecr")
            assert document["PolicyDocument"]["Statement"][1]["Resource"].endswith(":repository/docker-hub/*")
        else:
            assert (settings["throttlingRateLimit"], settings["throttlingBurstLimit"]) == (10, 20)
            assert reserved is None and "TaskExecutionEcrPolicy" not in resources and policies == ["write-logs-read-credentials"]
    for bad in (("--reserved-concurrency", "-1"), ("--api-rate-limit", "30"), ("--ecr-repositories", "Bad Repo"),
                ("--artifact-retention-days", "0")):
        refused = cli.run("init", "--force", "--region", REGION, "--stack-name", "optsbad", *bad)
        assert refused.returncode == 2 and bad[0] in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    with pytest.raises(Exception):
        cloudformation.describe_stacks(StackName="optsbad")
    cloudformation.delete_stack(StackName="optsdefault")
    assert cli.run("destroy", "--force", "--region", REGION, "--stack-name", "optsset").returncode == 0


def test_a_stack_that_rolled_back_is_to_be_destroyed_not_configured(cli: Cli):
    """A ROLLBACK_COMPLETE stack can be neither used (configure) nor updated (init --force):
    init says to destroy it, with the reason it failed, with or without --force."""
    import json

    from mycli_magic.aws.deploy import init_stack
    from mycli_magic.aws.git_credentials import GitCredentials
    from mycli_magic.errors import MycliError

    template = {"Resources": {"Role": {"Type": "AWS::IAM::Role", "Properties": {
        "RoleName": "r" * 70, "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": []}}}}}
    boto3.client("cloudformation").create_stack(StackName="rolledback", TemplateBody=json.dumps(template))
    for force in (False, True):
        with pytest.raises(MycliError) as refused:
            init_stack(REGION, "rolledback", force, GitCredentials(), lambda line: None, environ=cli.env())
        message = str(refused.value)
        assert "ROLLBACK_COMPLETE" in message and "roleName" in message and "configure" not in message
        assert f"mycli destroy --stack-name rolledback --region {REGION}" in message
    assert cli.run("destroy", "--force", "--region", REGION, "--stack-name", "rolledback").returncode == 0
    done = cli.run("init", "--force", "--region", REGION, "--stack-name", "rolledback")
    assert done.returncode == 0, done.stderr
    assert cli.run("destroy", "--force", "--region", REGION, "--stack-name", "rolledback").returncode == 0
