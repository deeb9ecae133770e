"""The stand-ins' own rules (tests/support/aws_rules.py): what AWS refuses, the moto server refuses too, with
AWS's error code, and what AWS accepts still passes. Each test names the rule's source in
aws_rules.DOCS; docs/deployment.md lists them."""

from __future__ import annotations

import io
import json
import zipfile

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.support.aws import aws_env, in_region
from tests.support.aws_rules import DOCS, FARGATE_SIZES, fargate_size_ok

pytestmark = pytest.mark.aws

REGION = "sa-east-1"


@pytest.fixture(scope="module")
def aws():
    from moto.moto_api import state_manager

    with in_region(REGION):
        # tasks keep the state they are given, as in the Fargate simulator
        state_manager.set_transition(model_name="ecs::task", transition={"progression": "manual", "times": 10**9})
        yield


def _code(exc: pytest.ExceptionInfo) -> str:
    return exc.value.response["Error"]["Code"]


def test_get_log_events_with_a_token_needs_start_from_head(aws):
    """GetLogEvents: a previous nextForwardToken needs startFromHead=true (DOCS['GetLogEvents'])."""
    logs = boto3.client("logs")
    logs.create_log_group(logGroupName="/rules/logs")
    logs.create_log_stream(logGroupName="/rules/logs", logStreamName="s")
    logs.put_log_events(logGroupName="/rules/logs", logStreamName="s", logEvents=[{"timestamp": 1, "message": "one"}])
    first = logs.get_log_events(logGroupName="/rules/logs", logStreamName="s", startFromHead=True)
    token = first["nextForwardToken"]
    assert logs.get_log_events(logGroupName="/rules/logs", logStreamName="s", nextToken=token, startFromHead=True)["events"] == []
    with pytest.raises(ClientError) as refused:
        logs.get_log_events(logGroupName="/rules/logs", logStreamName="s", nextToken=token)
    assert _code(refused) == "InvalidParameterException" and "startFromHead" in str(refused.value)


def test_names_longer_than_aws_allows_are_refused(aws):
    """CreateRole ≤ 64, CreateFunction ≤ 64, CreateLogGroup ≤ 512, RegisterTaskDefinition
    family ≤ 255 of [A-Za-z0-9_-] (DOCS)."""
    iam, lam, logs, ecs = (boto3.client(s) for s in ("iam", "lambda", "logs", "ecs"))
    trust = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
    role = iam.create_role(RoleName="r" * 64, AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    with pytest.raises(ClientError) as refused:
        iam.create_role(RoleName="r" * 65, AssumeRolePolicyDocument=trust)
    assert _code(refused) == "ValidationError"

    package = io.BytesIO()
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("index.py", "def handler(e, c):\n    return 1\n")
    spec = dict(Runtime="python3.12", Role=role, Handler="index.handler", Code={"ZipFile": package.getvalue()})
    lam.create_function(FunctionName="f" * 64, **spec)
    with pytest.raises(ClientError) as refused:
        lam.create_function(FunctionName="f" * 65, **spec)
    assert _code(refused) == "ValidationException"

    logs.create_log_group(logGroupName="/" + "g" * 511)
    with pytest.raises(ClientError) as refused:
        logs.create_log_group(logGroupName="/" + "g" * 512)
    assert _code(refused) == "InvalidParameterException"

    container = [{"name": "c", "image": "alpine", "memory": 64}]
    ecs.register_task_definition(family="t" * 255, containerDefinitions=container)
    for family in ("t" * 256, "has:colon", "has.dot"):
        with pytest.raises(ClientError) as refused:
            ecs.register_task_definition(family=family, containerDefinitions=container)
        assert _code(refused) == "ClientException", family


def test_fargate_sizes_follow_the_published_table():
    """Task CPU and memory (DOCS['FargateSizes']): each cpu has its own memory values."""
    assert "fargate" in DOCS["FargateSizes"]
    assert [m for m in range(256, 4097, 256) if fargate_size_ok(256, m)] == [512, 1024, 2048]
    assert [m for m in range(512, 8193, 512) if fargate_size_ok(512, m)] == [1024, 2048, 3072, 4096]
    assert fargate_size_ok("1024", "8192") and not fargate_size_ok(1024, 9216) and not fargate_size_ok(1024, 2560)
    assert fargate_size_ok(8192, 16384) and fargate_size_ok(8192, 20480) and not fargate_size_ok(8192, 17408)
    assert fargate_size_ok(16384, 122880) and not fargate_size_ok(16384, 36864)
    assert not fargate_size_ok(300, 512) and not fargate_size_ok(None, 512) and not fargate_size_ok(256, "lots")
    assert set(FARGATE_SIZES) == {256, 512, 1024, 2048, 4096, 8192, 16384}


@pytest.fixture(scope="module")
def fargate(aws):
    """A cluster, a subnet and a Fargate task definition, as the stack has them."""
    ec2, ecs = boto3.client("ec2"), boto3.client("ecs")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="rules", Description="rules", VpcId=vpc)["GroupId"]
    ecs.create_cluster(clusterName="rules")
    ecs.register_task_definition(
        family="rules-task", requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256", memory="512",
        containerDefinitions=[{"name": "executor", "image": "alpine", "memory": 512}])
    network = {"awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [group], "assignPublicIp": "ENABLED"}}
    return ecs, network


def _run(ecs, network, **extra):
    params = dict(cluster="rules", taskDefinition="rules-task", launchType="FARGATE", networkConfiguration=network)
    return ecs.run_task(**{**params, **extra})["tasks"][0]["taskArn"]


def test_register_task_definition_needs_a_fargate_size(fargate):
    """RegisterTaskDefinition: FARGATE needs task cpu and memory of one size (DOCS['FargateSizes'])."""
    ecs, _ = fargate
    container = [{"name": "c", "image": "alpine", "memory": 512}]
    for cpu, memory in (("256", "4096"), (None, "512"), ("512", "512")):
        extra = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v}
        with pytest.raises(ClientError) as refused:
            ecs.register_task_definition(family="sized", requiresCompatibilities=["FARGATE"], networkMode="awsvpc",
                                         containerDefinitions=container, **extra)
        assert _code(refused) == "ClientException" and "cpu" in str(refused.value)
    ecs.register_task_definition(family="sized", requiresCompatibilities=["FARGATE"], networkMode="awsvpc",
                                 cpu="512", memory="2048", containerDefinitions=container)


def test_container_stop_timeouts_dependencies_and_essential_containers(fargate):
    """ContainerDefinition (DOCS['ContainerMemory']): Fargate's stopTimeout is at most 120 s;
    COMPLETE/SUCCESS "can't be set on an essential container"; a task has an essential container."""
    ecs, _ = fargate
    sized = dict(requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256", memory="512")
    c = lambda name, **more: {"name": name, "image": "alpine", "memoryReservation": 64, **more}  # noqa: E731
    for containers, words in (
        ([c("a", stopTimeout=121)], "stopTimeout 121"),
        ([c("a"), c("b", essential=False, dependsOn=[{"containerName": "a", "condition": "COMPLETE"}])], "essential container ('a')"),
        ([c("main"), c("a", essential=False, dependsOn=[{"containerName": "b", "condition": "START"}])], "not in the task"),
        ([c("a", essential=False)], "no essential container"),
    ):
        with pytest.raises(ClientError) as refused:
            ecs.register_task_definition(family="rules-containers", containerDefinitions=containers, **sized)
        assert _code(refused) == "ClientException" and words in str(refused.value), (words, str(refused.value))
    ecs.register_task_definition(family="rules-containers", **sized, containerDefinitions=[
        c("fetch", essential=False), c("publish", stopTimeout=120),
        c("executor", essential=False, stopTimeout=30, dependsOn=[{"containerName": "fetch", "condition": "COMPLETE"},
                                                                  {"containerName": "publish", "condition": "START"}])])


def test_run_task_checks_network_size_and_overrides_as_aws_counts_them(fargate):
    """RunTask (DOCS['RunTask']): awsvpc needs subnets; the overrides' cpu/memory must make a
    Fargate size; the overrides may hold 8,192 characters of JSON as sent, \\uXXXX escapes included."""
    ecs, network = fargate
    with pytest.raises(ClientError) as refused:
        ecs.run_task(cluster="rules", taskDefinition="rules-task", launchType="FARGATE")
    assert _code(refused) == "InvalidParameterException" and "Network Configuration" in str(refused.value)

    _run(ecs, network, overrides={"cpu": "512", "memory": "1024"})
    with pytest.raises(ClientError) as refused:
        _run(ecs, network, overrides={"cpu": "256", "memory": "4096"})
    assert _code(refused) == "ClientException"

    def command(text: str) -> dict:
        return {"containerOverrides": [{"name": "executor", "command": ["/bin/sh", "-c", text]}]}

    ascii_text, accented = "e" * 8000, "é" * 1400  # 8,000 characters as sent / 1,400 typed but 8,400 sent
    assert len(json.dumps(command(ascii_text))) <= 8192 < len(json.dumps(command(accented)))
    _run(ecs, network, overrides=command(ascii_text))
    with pytest.raises(ClientError) as refused:
        _run(ecs, network, overrides=command(accented))
    assert _code(refused) == "InvalidParameterException" and "8192" in str(refused.value)


def test_no_container_may_have_more_memory_than_its_task(fargate):
    """ContainerDefinition.memory (DOCS['ContainerMemory']): the containers' memory must fit in the
    task's, equal included, in a definition and after RunTask's overrides. A task override alone
    keeps the container's own limit; one below it is refused unless the container's goes too."""
    ecs, network = fargate
    sized = dict(requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="512", memory="2048")
    with pytest.raises(ClientError) as refused:
        ecs.register_task_definition(family="rules-big", containerDefinitions=[
            {"name": "executor", "image": "alpine", "memory": 4096}], **sized)
    assert _code(refused) == "ClientException" and "4096 MiB, more than the task's 2048" in str(refused.value)
    with pytest.raises(ClientError) as refused:
        ecs.register_task_definition(family="rules-big", containerDefinitions=[
            {"name": "a", "image": "alpine", "memoryReservation": 1024}, {"name": "b", "image": "alpine", "memory": 1536}], **sized)
    assert _code(refused) == "ClientException" and "reserve 2560 MiB" in str(refused.value)
    ecs.register_task_definition(family="rules-mid", containerDefinitions=[
        {"name": "executor", "image": "alpine", "memory": 2048}], **sized)

    smaller = {"cpu": "256", "memory": "1024"}
    with pytest.raises(ClientError) as refused:
        _run(ecs, network, taskDefinition="rules-mid", overrides=smaller)
    assert _code(refused) == "InvalidParameterException" and "2048 MiB, more than the task's 1024" in str(refused.value)
    _run(ecs, network, taskDefinition="rules-mid",
         overrides={**smaller, "containerOverrides": [{"name": "executor", "memory": 1024}]})

    larger = {"cpu": "1024", "memory": "4096"}
    _run(ecs, network, overrides=larger)  # rules-task's container keeps its 512: allowed, if not what was meant
    with pytest.raises(ClientError) as refused:
        _run(ecs, network, overrides={**larger, "containerOverrides": [{"name": "executor", "memory": 8192}]})
    assert _code(refused) == "InvalidParameterException" and "8192 MiB" in str(refused.value)
    _run(ecs, network, overrides={**larger, "containerOverrides": [{"name": "executor", "memory": 4096}]})


def test_a_cluster_with_active_tasks_cannot_be_deleted_nor_its_stack(fargate):
    """DeleteCluster: ClusterContainsTasksException while tasks have not stopped, PENDING ones
    included (DOCS['DeleteCluster']); CloudFormation's delete of the cluster fails the same way and
    the stack ends DELETE_FAILED, listed, until the tasks are gone."""
    ecs, network = fargate
    cloudformation = boto3.client("cloudformation")
    template = {"Resources": {"Cluster": {"Type": "AWS::ECS::Cluster", "Properties": {"ClusterName": "rules-stack"}}}}
    cloudformation.create_stack(StackName="rules-stack", TemplateBody=json.dumps(template))
    ecs.register_task_definition(family="rules-stack-task", requiresCompatibilities=["FARGATE"], networkMode="awsvpc",
                                 cpu="256", memory="512", containerDefinitions=[{"name": "x", "image": "alpine", "memory": 512}])
    task = ecs.run_task(cluster="rules-stack", taskDefinition="rules-stack-task", launchType="FARGATE",
                        networkConfiguration=network)["tasks"][0]["taskArn"]
    from moto.ecs.models import ecs_backends

    backend = ecs_backends["123456789012"][REGION]
    backend.tasks["rules-stack"][task].last_status = "PENDING"  # what ECS reports while the image is pulled

    with pytest.raises(ClientError) as refused:
        ecs.delete_cluster(cluster="rules-stack")
    assert _code(refused) == "ClusterContainsTasksException"
    cloudformation.delete_stack(StackName="rules-stack")
    stack = cloudformation.describe_stacks(StackName="rules-stack")["Stacks"][0]
    assert stack["StackStatus"] == "DELETE_FAILED"
    reasons = [e.get("ResourceStatusReason", "") for e in cloudformation.describe_stack_events(StackName="rules-stack")["StackEvents"]]
    assert any("Tasks are active" in r for r in reasons)

    ecs.stop_task(cluster="rules-stack", task=task)
    cloudformation.delete_stack(StackName="rules-stack")
    with pytest.raises(ClientError):
        cloudformation.describe_stacks(StackName="rules-stack")
    assert ecs.describe_clusters(clusters=["rules-stack"])["clusters"][0]["status"] == "INACTIVE"


def test_a_stack_whose_bucket_holds_objects_cannot_be_deleted(aws):
    """DeleteBucket: every object must be deleted first (BucketNotEmpty, DOCS['DeleteBucket']);
    CloudFormation's delete of the bucket fails and the stack ends DELETE_FAILED until it is empty."""
    cloudformation, s3 = boto3.client("cloudformation"), boto3.client("s3")
    template = {"Resources": {"Bucket": {"Type": "AWS::S3::Bucket"}},
                "Outputs": {"Name": {"Value": {"Ref": "Bucket"}}}}
    cloudformation.create_stack(StackName="rules-bucket", TemplateBody=json.dumps(template))
    bucket = cloudformation.describe_stacks(StackName="rules-bucket")["Stacks"][0]["Outputs"][0]["OutputValue"]
    s3.put_object(Bucket=bucket, Key="artifacts/x/manifest", Body=b"")
    cloudformation.delete_stack(StackName="rules-bucket")
    assert cloudformation.describe_stacks(StackName="rules-bucket")["Stacks"][0]["StackStatus"] == "DELETE_FAILED"
    s3.delete_object(Bucket=bucket, Key="artifacts/x/manifest")
    cloudformation.delete_stack(StackName="rules-bucket")
    with pytest.raises(ClientError):
        cloudformation.describe_stacks(StackName="rules-bucket")
    assert bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_put_object_refuses_a_body_its_hashes_do_not_match(aws):
    """PutObject: a hex x-amz-content-sha256 or an x-amz-checksum-sha256 that differs from the body
    is refused (XAmzContentSHA256Mismatch, BadDigest; DOCS['PutObject']); matching ones pass."""
    import base64
    import hashlib
    import urllib.error
    import urllib.request

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="rules-hashes", CreateBucketConfiguration={"LocationConstraint": REGION})
    body = b"the body"
    url = f"{aws_env(REGION)['AWS_ENDPOINT_URL']}/rules-hashes/k"

    def put(headers: dict) -> int:
        request = urllib.request.Request(url, data=body, method="PUT", headers={"Content-Type": "application/octet-stream",
                                                                                **headers})
        try:
            with urllib.request.urlopen(request) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code

    right = hashlib.sha256(body).digest()
    wrong = hashlib.sha256(b"another body").digest()
    assert put({"x-amz-content-sha256": wrong.hex()}) == 400
    assert put({"x-amz-checksum-sha256": base64.b64encode(wrong).decode()}) == 400
    assert put({"x-amz-content-sha256": right.hex(), "x-amz-checksum-sha256": base64.b64encode(right).decode()}) == 200
    assert s3.get_object(Bucket="rules-hashes", Key="k")["Body"].read() == body
