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
    for name, param in params.items():
        assert "Default" in param or name == "APIKeyHash", f"{name}: a new parameter needs a default, or updates break"


def _containers(template: dict) -> dict:
    return {c["Name"]: c for c in template["Resources"]["TaskDefinition"]["Properties"]["ContainerDefinitions"]}


def test_git_credentials_reach_containers_only_through_task_definition_secrets(template):
    """Only the fetch container (the helper image that clones) gets the credentials: the
    executor, where the user's command runs, has none, so /proc/1/environ cannot show them."""
    resources = template["Resources"]
    containers = _containers(template)
    assert list(containers) == ["fetch", "executor", "publish"]
    assert containers["executor"]["LinuxParameters"]["InitProcessEnabled"] is True
    secrets = {s["Name"]: s["ValueFrom"] for s in containers["fetch"]["Secrets"]}
    assert set(secrets) == {"MYCLI_GITHUB_TOKEN", "MYCLI_GITLAB_TOKEN", "MYCLI_SSH_PRIVATE_KEY"}
    assert all("${GitCredentials}" in str(v) for v in secrets.values())
    assert "Secrets" not in containers["executor"] and "Secrets" not in containers["publish"]
    for container in containers.values():
        assert not any("TOKEN" in e["Name"] or "SSH" in e["Name"] for e in container.get("Environment", []))
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
    method = resources["ExecuteMethod"]["Properties"]
    assert method["HttpMethod"] == "POST" and method["Integration"]["Type"] == "AWS_PROXY"
    assert resources["ApiStage"]["Properties"]["StageName"] == "prod"
    assert resources["ApiInvokePermission"]["Properties"]["Principal"] == "apigateway.amazonaws.com"
    table = resources["ExecutionsTable"]["Properties"]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert resources["Cluster"]["Properties"]["DefaultCapacityProviderStrategy"][0]["CapacityProvider"] == {"Ref": "CapacityProvider"}
    assert {"ApiEndpoint", "FunctionName", "ClusterName", "LogGroupName", "ExecutionsTableName"} <= set(template["Outputs"])


def test_lambda_role_is_scoped_to_the_stack(template):
    statements = template["Resources"]["LambdaRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    wildcard = [s for s in statements if s["Resource"] == "*"]
    # DescribeTaskDefinition and DeregisterTaskDefinition have no resource-level scoping in IAM
    assert [s["Sid"] for s in wildcard] == ["ReadAndRetireTaskDefinitions"]
    assert all(not str(a).endswith(":*") for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"]))
    passrole = next(s for s in statements if s["Action"] == "iam:PassRole")
    assert passrole["Condition"]["StringEquals"]["iam:PassedToService"] == "ecs-tasks.amazonaws.com"


def test_lambda_role_allows_every_aws_call_the_orchestrator_makes(template):
    """Each `clients.<service>.<operation>(` in the orchestrator needs its IAM action in the
    LambdaRole, or the deployed function fails where moto (which checks no IAM) passes."""
    import re

    statements = template["Resources"]["LambdaRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    allowed = {a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    prefixes = {"ecs": "ecs", "dynamodb": "dynamodb", "logs": "logs", "s3": "s3"}
    source = "\n".join(p.read_text() for p in (TEMPLATE.parent.parent / "orchestrator" / "engines").glob("ecs*.py"))
    calls = set(re.findall(r"clients\.(ecs|dynamodb|logs|s3)\.([a-z_]+)\(", source))
    # a presigned URL is the orchestrator's permission lent out: the operation it names needs it
    calls |= {("s3", op) for op in re.findall(r"generate_presigned_url\(\s*\"([a-z_]+)\"", source)}
    calls = {(svc, "get_object" if op == "head_object" else op) for svc, op in calls if op != "generate_presigned_url"}
    assert calls, "found no AWS calls: the pattern no longer matches the code"
    needed = {f"{prefixes[svc]}:{''.join(w.capitalize() for w in op.split('_'))}" for svc, op in calls}
    assert needed - allowed == set()


# --- what moto cannot exercise: each rule states its AWS source ---------------------------------

def _statements(template: dict):
    """(resource, statement) of every inline and standalone IAM policy in the template."""
    for name, resource in template["Resources"].items():
        documents = [p["PolicyDocument"] for p in resource.get("Properties", {}).get("Policies", [])]
        if resource["Type"] == "AWS::IAM::Policy":
            documents.append(resource["Properties"]["PolicyDocument"])
        for document in documents:
            for statement in document["Statement"]:
                yield name, statement


def test_no_action_that_iam_can_scope_sits_on_a_wildcard(template):
    """Service Authorization Reference (https://docs.aws.amazon.com/service-authorization/latest/
    reference/reference_policies_actions-resources-contextkeys.html): an action that lists resource
    types accepts resource ARNs, so granting it on "*" is broader than needed. cfn-lint ships that
    reference as data (Policies.json); the review found ecs:DeleteTaskDefinitions on "*"."""
    import json

    import cfnlint

    reference = json.loads((Path(cfnlint.__file__).parent / "data" / "AdditionalSpecs" / "Policies.json").read_text())
    broad = []
    for name, statement in _statements(template):
        if statement["Resource"] != "*":
            continue
        for action in [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]:
            service, operation = action.split(":")
            if reference[service]["Actions"][operation.lower()].get("Resources"):
                broad.append(f"{name}: {action}")
    assert broad == []


def test_iam_roles_have_no_fixed_names(template):
    """IAM names are account-wide (IAM identifiers: "names must be unique within the account",
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_identifiers.html), so
    `{stack}-task-role` collides with the same stack in a second region; and a role name may hold
    64 characters (CreateRole), which `{stack}-task-execution-role` passed from a 45-character
    stack name. CloudFormation's generated names are unique and fit."""
    roles = [n for n, r in template["Resources"].items() if r["Type"] == "AWS::IAM::Role"]
    assert len(roles) == 3
    assert [n for n in roles if "RoleName" in template["Resources"][n]["Properties"]] == []
    assert template["Outputs"]["TaskRoleName"]["Value"] == {"Ref": "TaskRole"}  # where users attach policies


# Name property → (its limit, the AWS page that states it)
NAME_LIMITS = {
    ("AWS::Lambda::Function", "FunctionName"): (64, "https://docs.aws.amazon.com/lambda/latest/api/API_CreateFunction.html"),
    ("AWS::Logs::LogGroup", "LogGroupName"): (512, "https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_CreateLogGroup.html"),
    ("AWS::ECS::TaskDefinition", "Family"): (255, "https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_RegisterTaskDefinition.html"),
    ("AWS::ECS::Cluster", "ClusterName"): (255, "https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_CreateCluster.html"),
    ("AWS::DynamoDB::Table", "TableName"): (255, "https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_CreateTable.html"),
    ("AWS::SecretsManager::Secret", "Name"): (512, "https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_CreateSecret.html"),
    ("AWS::EC2::SecurityGroup", "GroupName"): (255, "https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateSecurityGroup.html"),
}


def test_every_name_fits_its_limit_with_the_longest_stack_name_init_accepts(template):
    """Every name built from the stack name, with the longest name `mycli init` accepts, within
    the limit its service documents (NAME_LIMITS); and per-image task definition families
    (`{stack}-task-{50}-{hash}`) within RegisterTaskDefinition's 255."""
    from mycli_magic.aws.stack import MAX_STACK_NAME, check_stack_name

    from orchestrator.engines.ecs_taskdefs import candidate_families

    stack = "s" * MAX_STACK_NAME
    check_stack_name(stack)
    with pytest.raises(Exception):
        check_stack_name(stack + "s")
    checked = set()
    for resource in template["Resources"].values():
        for prop, value in resource.get("Properties", {}).items():
            named = isinstance(value, dict) and "${AWS::StackName}" in str(value.get("Sub"))
            if not named or not (prop.endswith("Name") or prop == "Family") or resource["Type"] == "AWS::ApiGateway::RestApi":
                continue  # (a REST API's name has no documented limit)
            assert (resource["Type"], prop) in NAME_LIMITS, f"{resource['Type']}.{prop}: add its documented limit"
            limit, source = NAME_LIMITS[(resource["Type"], prop)]
            name = value["Sub"].replace("${AWS::StackName}", stack)
            assert len(name) <= limit, f"{resource['Type']}.{prop} {name!r} is {len(name)} > {limit} ({source})"
            checked.add((resource["Type"], prop))
    assert checked == set(NAME_LIMITS)
    longest_image = "registry.example.com/" + "x" * 200 + ":tag"
    assert all(len(f) <= 255 for f in candidate_families(f"{stack}-task", longest_image))


def test_the_placeholder_function_answers_a_clear_503(template):
    """AWS::Lambda::Function Code.ZipFile: "CloudFormation places it in a file named index and
    zips it" (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-properties-lambda-function-code.html),
    so until `mycli init` uploads the package the handler must be index.handler, or every request
    is an import error (502 from API Gateway) instead of the placeholder's clear 503."""
    import json

    function = template["Resources"]["Orchestrator"]["Properties"]
    assert function["Handler"].split(".")[0] == "index"
    namespace: dict = {}
    exec(compile(function["Code"]["ZipFile"], "index.py", "exec"), namespace)
    answer = namespace[function["Handler"].split(".")[1]]({"body": "{}"}, None)
    assert answer["statusCode"] == 503 and "mycli init" in json.loads(answer["body"])["error"]


def test_task_logs_are_blocking(template):
    """awslogs `mode`: ECS made non-blocking the default on 25 June 2025 (defaultLogDriverMode,
    https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs-account-settings.html), which
    drops what its buffer cannot hold (LogConfiguration, API reference); a run's output is the
    product, so the template says blocking."""
    options = template["Resources"]["TaskDefinition"]["Properties"]["ContainerDefinitions"][0]["LogConfiguration"]["Options"]
    assert options["mode"] == "blocking"


def test_the_api_stage_throttles_every_method(template):
    """API Gateway throttling (https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-request-throttling.html)
    is set on a stage's MethodSettings (AWS::ApiGateway::Stage MethodSetting: ResourcePath "/*"
    and HttpMethod "*" for every method); a Deployment's StageName would create the stage without
    them. Every unauthenticated request costs the function a bcrypt verify, so the stage brakes."""
    resources = template["Resources"]
    assert "StageName" not in resources["ApiDeployment"]["Properties"]
    stage = resources["ApiStage"]["Properties"]
    assert stage["DeploymentId"] == {"Ref": "ApiDeployment"} and stage["StageName"] == "prod"
    assert "/prod/execute" in template["Outputs"]["ApiEndpoint"]["Value"]["Sub"]
    (setting,) = stage["MethodSettings"]
    assert (setting["ResourcePath"], setting["HttpMethod"]) == ("/*", "*")
    assert setting["ThrottlingRateLimit"] == {"Ref": "ApiRateLimit"} and setting["ThrottlingBurstLimit"] == {"Ref": "ApiBurstLimit"}
    params = template["Parameters"]
    assert 0 < params["ApiRateLimit"]["Default"] <= params["ApiBurstLimit"]["Default"]


def test_reserved_concurrency_is_opt_in(template):
    """Lambda reserved concurrency (https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html):
    a reservation must leave 100 unreserved, so in an account whose quota is still the new-account
    10 any reservation fails the stack; the parameter defaults to 0, which sets none."""
    params = template["Parameters"]["ReservedConcurrency"]
    assert params["Default"] == 0
    assert template["Conditions"]["ReserveConcurrency"] == {"Not": [{"Equals": [{"Ref": "ReservedConcurrency"}, 0]}]}
    reserved = template["Resources"]["Orchestrator"]["Properties"]["ReservedConcurrentExecutions"]
    assert reserved == {"If": ["ReserveConcurrency", {"Ref": "ReservedConcurrency"}, {"Ref": "AWS::NoValue"}]}


def test_private_ecr_pulls_are_opt_in_and_scoped(template):
    """The execution role pulls from no private repository unless EcrRepositories names them
    (ECR on ECS, https://docs.aws.amazon.com/AmazonECR/latest/userguide/ECR_on_ECS.html); with a
    pull-through cache the first pull also creates the repository and imports the image
    (https://docs.aws.amazon.com/AmazonECR/latest/userguide/pull-through-cache-iam.html)."""
    resources = template["Resources"]
    role_actions = {a for name, s in _statements(template) if name == "TaskExecutionRole"
                    for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert not any(a.startswith("ecr:") for a in role_actions)
    policy = resources["TaskExecutionEcrPolicy"]
    assert policy["Condition"] == "PullFromPrivateEcr" and policy["Properties"]["Roles"] == [{"Ref": "TaskExecutionRole"}]
    pull = next(s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Resource"] != "*")
    assert {"ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchImportUpstreamImage", "ecr:CreateRepository"} <= set(pull["Action"])
    assert pull["Resource"]["Sub"].endswith(":repository/${EcrRepositories}")
    assert template["Parameters"]["EcrRepositories"]["Default"] == ""


def test_the_default_image_comes_from_the_ecr_public_mirror(template):
    """Fargate caches no image, and Docker Hub limits anonymous pulls per source address
    (https://docs.docker.com/docker-hub/usage/); the ECR Public Gallery mirrors Docker Official
    Images under public.ecr.aws/docker/library (https://gallery.ecr.aws/docker). The template,
    the engine and `mycli init` agree on the default."""
    from mycli_magic.aws.deploy import add_init_arguments

    from orchestrator.engines.ecs_settings import DEFAULT_IMAGE, EcsSettings

    parser = __import__("argparse").ArgumentParser()
    add_init_arguments(parser)
    assert DEFAULT_IMAGE == "public.ecr.aws/docker/library/ubuntu:22.04"
    assert template["Parameters"]["DefaultImage"]["Default"] == DEFAULT_IMAGE
    assert EcsSettings.from_env({}).default_image == DEFAULT_IMAGE
    assert parser.parse_args([]).default_image == DEFAULT_IMAGE


FARGATE_ZONES = {"us-west-1": {"usw1-az1", "usw1-az3"}, "ap-northeast-1": {"apne1-az1", "apne1-az2", "apne1-az4"}}


def _evaluate(value, region: str, conditions: dict):
    """Enough of Fn::If / Fn::Equals / Fn::Or / Condition to read a subnet's zone for a region."""
    if isinstance(value, dict) and len(value) == 1:
        (fn, args), = value.items()
        if fn == "If":
            return _evaluate(args[1] if _evaluate(conditions[args[0]], region, conditions) else args[2], region, conditions)
        if fn == "Equals":
            return _evaluate(args[0], region, conditions) == _evaluate(args[1], region, conditions)
        if fn == "Or":
            return any(_evaluate(a, region, conditions) for a in args)
        if fn == "Condition":
            return _evaluate(conditions[args], region, conditions)
        if fn == "Ref":
            return {"AWS::Region": region, "AWS::NoValue": None}.get(args, value)
    return value


@pytest.mark.parametrize("region", ["us-west-1", "ap-northeast-1", "us-east-1", "eu-west-1"])
def test_subnets_sit_in_zones_fargate_supports(template, region):
    """Supported Regions for Amazon ECS on AWS Fargate
    (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/AWS_Fargate-Regions.html): in
    us-west-1 only usw1-az1 and usw1-az3, in ap-northeast-1 only apne1-az1, az2 and az4. Zone
    names map to different zones per account, so the template picks those regions' zones by ID."""
    zones = []
    for name in ("PublicSubnet1", "PublicSubnet2"):
        props = template["Resources"][name]["Properties"]
        zone_id = _evaluate(props["AvailabilityZoneId"], region, template["Conditions"])
        zone_name = _evaluate(props["AvailabilityZone"], region, template["Conditions"])
        assert (zone_id is None) != (zone_name is None), "exactly one of AvailabilityZone / AvailabilityZoneId"
        if region in FARGATE_ZONES:
            assert zone_id in FARGATE_ZONES[region]
        zones.append(zone_id or str(zone_name))
    assert zones[0] != zones[1]


def test_doctor_expects_the_outputs_the_template_has(template):
    from mycli_magic.aws.doctor_checks import EXPECTED_OUTPUTS

    assert set(EXPECTED_OUTPUTS) == set(template["Outputs"])


# --- files in, results out: the bucket and who may touch it ------------------------------------

def test_the_bucket_is_private_encrypted_tls_only_and_expires_its_objects(template):
    """S3 security best practices (https://docs.aws.amazon.com/AmazonS3/latest/userguide/security-best-practices.html):
    block public access, encrypt at rest, deny requests that are not over TLS (aws:SecureTransport);
    lifecycle expiration (https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-lifecycle-mgmt.html)."""
    resources = template["Resources"]
    bucket = resources["ArtifactsBucket"]
    props = bucket["Properties"]
    assert "BucketName" not in props  # bucket names are global: CloudFormation generates one
    assert bucket["DeletionPolicy"] == "Delete"  # mycli destroy empties it, then the stack removes it
    assert props["PublicAccessBlockConfiguration"] == {"BlockPublicAcls": True, "BlockPublicPolicy": True,
                                                       "IgnorePublicAcls": True, "RestrictPublicBuckets": True}
    sse = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert sse["SSEAlgorithm"] in ("AES256", "aws:kms")
    rules = {r["Prefix"]: r for r in props["LifecycleConfiguration"]["Rules"]}
    assert set(rules) == {"uploads/", "artifacts/"}
    assert all(r["Status"] == "Enabled" and r["ExpirationInDays"] == {"Ref": "ArtifactRetentionDays"} for r in rules.values())
    assert template["Parameters"]["ArtifactRetentionDays"]["Default"] == 7
    [deny] = resources["ArtifactsBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny" and deny["Principal"] == "*" and deny["Action"] == "s3:*"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert {"GetAtt": "ArtifactsBucket.Arn"} in deny["Resource"] and {"Sub": "${ArtifactsBucket.Arn}/*"} in deny["Resource"]


def _s3_grants(statements) -> dict[str, set[str]]:
    grants: dict[str, set[str]] = {}
    for statement in statements:
        actions = [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        for action in actions:
            if action.startswith("s3:"):
                grants.setdefault(action, set()).update(str(r.get("Sub", r)) if isinstance(r, dict) else r for r in resources)
    return grants


def test_s3_access_is_least_privilege(template):
    """The orchestrator presigns PUTs to uploads/ and GETs of artifacts/, and checks uploads exist;
    the task role reads uploads and writes artifacts — nothing else, nothing on *, no delete, no list."""
    resources = template["Resources"]
    lambda_statements = resources["LambdaRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    assert _s3_grants(lambda_statements) == {
        "s3:PutObject": {"${ArtifactsBucket.Arn}/uploads/*"},
        "s3:GetObject": {"${ArtifactsBucket.Arn}/uploads/*", "${ArtifactsBucket.Arn}/artifacts/*"},
    }
    task_statements = resources["TaskRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    assert _s3_grants(task_statements) == {
        "s3:GetObject": {"${ArtifactsBucket.Arn}/uploads/*"},
        "s3:PutObject": {"${ArtifactsBucket.Arn}/artifacts/*"},
    }
    execution_statements = resources["TaskExecutionRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    assert _s3_grants(execution_statements) == {}
    variables = resources["Orchestrator"]["Properties"]["Environment"]["Variables"]
    assert variables["MYCLI_BUCKET"] == {"Ref": "ArtifactsBucket"}
    assert template["Outputs"]["ArtifactsBucketName"]["Value"] == {"Ref": "ArtifactsBucket"}


def test_the_task_runs_fetch_executor_publish_in_order_on_one_volume(template):
    """Container dependency (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task_definition_parameters.html#container_definition_dependson):
    COMPLETE and SUCCESS "can't be set on an essential container", so fetch is not essential; the
    executor waits for fetch COMPLETE and publish START, so at a stop ("for container shutdown it
    is reversed") ECS stops the executor first and publish — essential, its exit ends the task —
    only once the executor has stopped, with Fargate's longest stop timeout to upload."""
    task = template["Resources"]["TaskDefinition"]["Properties"]
    containers = _containers(template)
    assert task["Volumes"] == [{"Name": "mycli"}]
    for container in containers.values():
        assert container["MountPoints"] == [{"SourceVolume": "mycli", "ContainerPath": "/mycli"}]
        assert container["LogConfiguration"]["Options"]["mode"] == "blocking"
        assert "Memory" not in container  # soft reservations: the command runs after fetch, publish mostly waits
    assert sum(c["MemoryReservation"] for c in containers.values()) <= int(task["Memory"])
    assert [c["Essential"] for c in containers.values()] == [False, False, True]
    assert containers["executor"]["DependsOn"] == [{"ContainerName": "fetch", "Condition": "COMPLETE"},
                                                   {"ContainerName": "publish", "Condition": "START"}]
    assert "DependsOn" not in containers["publish"]
    from orchestrator.engines.ecs_scripts import EXECUTOR_DONE, EXECUTOR_STOP_TIMEOUT, PUBLISH_STOP_TIMEOUT, STOP_GRACE_SECONDS

    # Fargate allows 120 s at most; the executor's grace for the command and its report fit in its own
    assert containers["publish"]["StopTimeout"] == PUBLISH_STOP_TIMEOUT == 120
    assert containers["executor"]["StopTimeout"] == EXECUTOR_STOP_TIMEOUT > STOP_GRACE_SECONDS + 5
    assert "StopTimeout" not in containers["fetch"]  # it never outlives the clone
    assert EXECUTOR_DONE in containers["executor"]["Command"][2]  # a failed fetch still lets publish go
    assert containers["executor"]["Image"] == {"Ref": "DefaultImage"}
    assert containers["fetch"]["Image"] == containers["publish"]["Image"] == {"Ref": "HelperImage"}
    assert template["Parameters"]["HelperImage"]["Default"].startswith("public.ecr.aws/docker/library/alpine:3.")
    # the executor runs what fetch left on the volume, with /bin/sh only
    from orchestrator.engines.ecs_scripts import INPUTS, OUTPUTS, RUN_SCRIPT, publish_script

    assert containers["executor"]["Command"][:2] == ["/bin/sh", "-c"] and RUN_SCRIPT in containers["executor"]["Command"][2]
    # ... whatever the image's ENTRYPOINT, as the engine's per-image copies do
    from orchestrator.engines.ecs_taskdefs import EXECUTOR_ENTRYPOINT

    assert containers["executor"]["EntryPoint"] == EXECUTOR_ENTRYPOINT
    # publish's script is the task definition's, verbatim: it takes no room in RunTask's overrides
    assert containers["publish"]["Command"] == ["/bin/sh", "-c", publish_script()]
    env = {e["Name"]: e["Value"] for e in containers["executor"]["Environment"]}
    assert env == {"MYCLI_INPUTS": INPUTS, "MYCLI_OUTPUTS": OUTPUTS}
    for name in ("fetch", "publish"):
        env = {e["Name"]: e["Value"] for e in containers[name]["Environment"]}
        assert env["MYCLI_S3_URL"] == {"Sub": "https://${ArtifactsBucket.RegionalDomainName}"}
