"""deploy/cloudformation.yaml: clean under cfn-lint, and holding the promises the code relies on."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.aws

TEMPLATE = Path(__file__).resolve().parents[2] / "deploy" / "cloudformation.yaml"


class _Loader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags (!Ref, !Sub, ...) kept as {tag: value}."""


def _tag(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {suffix: value}


_Loader.add_multi_constructor("!", _tag)


@pytest.fixture(scope="module")
def template() -> dict:
    return yaml.load(TEMPLATE.read_text(), Loader=_Loader)


def test_cfn_lint_reports_nothing():
    cfn_lint = shutil.which("cfn-lint")
    assert cfn_lint, "cfn-lint is a dev dependency (pip install -e .[dev])"
    done = subprocess.run([cfn_lint, str(TEMPLATE)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout == "" and done.stderr == "", done.stdout + done.stderr


def test_parameters_are_the_seeds_and_secrets_do_not_echo(template):
    params = template["Parameters"]
    assert {"APIKeyHash", "GitHubToken", "GitLabToken", "SSHPrivateKey", "DefaultImage"} <= set(params)
    for name in ("APIKeyHash", "GitHubToken", "GitLabToken", "SSHPrivateKey"):
        assert params[name]["NoEcho"] is True
    assert params["DefaultImage"]["Default"] == "ubuntu:22.04"


def test_git_credentials_reach_containers_only_through_task_definition_secrets(template):
    resources = template["Resources"]
    container = resources["TaskDefinition"]["Properties"]["ContainerDefinitions"][0]
    assert container["Name"] == "executor"
    assert container["LinuxParameters"]["InitProcessEnabled"] is True
    secrets = {s["Name"]: s["ValueFrom"] for s in container["Secrets"]}
    assert set(secrets) == {"MYCLI_GITHUB_TOKEN", "MYCLI_GITLAB_TOKEN", "MYCLI_SSH_PRIVATE_KEY"}
    assert all("${GitCredentials}" in str(v) for v in secrets.values())
    assert "Environment" not in container
    text = TEMPLATE.read_text()
    # the tokens appear in exactly one resource: the Secrets Manager secret
    for param in ("GitHubToken", "GitLabToken", "SSHPrivateKey"):
        users = [name for name, res in resources.items() if "${" + param + "}" in str(res) or {"Ref": param} == res]
        assert users == ["GitCredentials"], (param, users)
    lambda_env = resources["Orchestrator"]["Properties"]["Environment"]["Variables"]
    assert not any("TOKEN" in k or "SSH" in k for k in lambda_env)
    assert text.count("secretsmanager:GetSecretValue") == 1  # only the execution role reads it


def test_logs_lambda_api_and_table(template):
    resources = template["Resources"]
    log_group = resources["TaskLogGroup"]["Properties"]
    assert log_group == {"LogGroupName": {"Sub": "/aws/mycli/${AWS::StackName}"}, "RetentionInDays": 7}
    options = resources["TaskDefinition"]["Properties"]["ContainerDefinitions"][0]["LogConfiguration"]["Options"]
    assert options["awslogs-stream-prefix"] == "task"
    function = resources["Orchestrator"]["Properties"]
    assert function["Runtime"] == "python3.12" and function["Architectures"] == ["arm64"]
    assert function["Handler"] == "orchestrator.handler.handler"
    method = resources["ExecuteMethod"]["Properties"]
    assert method["HttpMethod"] == "POST" and method["Integration"]["Type"] == "AWS_PROXY"
    assert resources["ApiDeployment"]["Properties"]["StageName"] == "prod"
    assert resources["ApiInvokePermission"]["Properties"]["Principal"] == "apigateway.amazonaws.com"
    table = resources["ExecutionsTable"]["Properties"]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert resources["Cluster"]["Properties"]["DefaultCapacityProviderStrategy"][0]["CapacityProvider"] == {"Ref": "CapacityProvider"}
    assert {"ApiEndpoint", "FunctionName", "ClusterName", "LogGroupName", "ExecutionsTableName"} <= set(template["Outputs"])


def test_lambda_role_is_scoped_to_the_stack(template):
    statements = template["Resources"]["LambdaRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    wildcard = [s for s in statements if s["Resource"] == "*"]
    # Register/DescribeTaskDefinition have no resource-level scoping in IAM; nothing else may be "*"
    assert [s["Sid"] for s in wildcard] == ["TaskDefinitionsPerImage"]
    assert all(not str(a).endswith(":*") for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"]))
    passrole = next(s for s in statements if s["Action"] == "iam:PassRole")
    assert passrole["Condition"]["StringEquals"]["iam:PassedToService"] == "ecs-tasks.amazonaws.com"


def test_lambda_role_allows_every_aws_call_the_orchestrator_makes(template):
    """Each `clients.<service>.<operation>(` in the orchestrator needs its IAM action in the
    LambdaRole, or the deployed function fails where moto (which checks no IAM) passes."""
    import re

    statements = template["Resources"]["LambdaRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    allowed = {a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    prefixes = {"ecs": "ecs", "dynamodb": "dynamodb", "logs": "logs"}
    source = "\n".join(p.read_text() for p in (TEMPLATE.parent.parent / "orchestrator" / "engines").glob("ecs*.py"))
    calls = set(re.findall(r"clients\.(ecs|dynamodb|logs)\.([a-z_]+)\(", source))
    assert calls, "found no AWS calls: the pattern no longer matches the code"
    needed = {f"{prefixes[svc]}:{''.join(w.capitalize() for w in op.split('_'))}" for svc, op in calls}
    assert needed - allowed == set()
