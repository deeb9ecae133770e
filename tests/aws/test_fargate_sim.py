"""The Fargate simulator's own rules (tests/support/fargate_sim.py, fargate_task.py), so the AWS
tests stand on ECS's behaviour and not on the simulator's guesses: containers start as their
`dependsOn` conditions (START, COMPLETE, SUCCESS) allow and never when one can no longer hold;
an essential container's exit stops the task and the others; a task volume is shared by the
containers that mount it; StopTask stops running containers and never starts waiting ones, in
reverse dependency order, each SIGKILLed once its stopTimeout has passed after its SIGTERM."""

from __future__ import annotations

import time

import boto3
import pytest

from tests.support.aws import in_region
from tests.support.fargate_sim import FargateSimulator

pytestmark = pytest.mark.aws

REGION = "ca-central-1"


@pytest.fixture(scope="module")
def ecs():
    with in_region(REGION):
        ec2, client = boto3.client("ec2"), boto3.client("ecs")
        vpc = ec2.create_vpc(CidrBlock="10.8.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.8.1.0/24")["Subnet"]["SubnetId"]
        group = ec2.create_security_group(GroupName="sim", Description="sim", VpcId=vpc)["GroupId"]
        client.create_cluster(clusterName="sim")
        boto3.client("logs").create_log_group(logGroupName="/sim")
        sim = FargateSimulator(REGION).start()
        network = {"awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [group], "assignPublicIp": "ENABLED"}}
        yield client, network, sim
        sim.close()


def _container(name: str, script: str, essential: bool, depends: list | None = None, **more) -> dict:
    return {"name": name, "image": "alpine", "essential": essential, "memoryReservation": 64, **more,
            "command": ["/bin/sh", "-c", script], "mountPoints": [{"sourceVolume": "shared", "containerPath": "/mycli"}],
            "dependsOn": [{"containerName": n, "condition": c} for n, c in depends or []],
            "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "/sim", "awslogs-region": REGION,
                                                                       "awslogs-stream-prefix": "t"}}}


def _run(ecs, family: str, containers: list[dict]) -> dict:
    client, network, _ = ecs
    client.register_task_definition(family=family, requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256",
                                    memory="512", volumes=[{"name": "shared"}], containerDefinitions=containers)
    arn = client.run_task(cluster="sim", taskDefinition=family, launchType="FARGATE", networkConfiguration=network)["tasks"][0]["taskArn"]
    deadline = time.monotonic() + 30
    while (task := client.describe_tasks(cluster="sim", tasks=[arn])["tasks"][0])["lastStatus"] != "STOPPED":
        assert time.monotonic() < deadline, task
        time.sleep(0.1)
    return task


def _lines(task: dict, container: str) -> list[str]:
    stream = f"t/{container}/{task['taskArn'].rsplit('/', 1)[-1]}"
    events = boto3.client("logs").get_log_events(logGroupName="/sim", logStreamName=stream, startFromHead=True)["events"]
    return [e["message"] for e in events]


def test_depends_on_conditions_order_the_containers_on_a_shared_volume(ecs):
    task = _run(ecs, "sim-order", [
        _container("first", "echo from-first > /mycli/note; exit 1", essential=False),
        _container("needs-success", "echo never", essential=False, depends=[("first", "SUCCESS")]),
        _container("after-complete", "cat /mycli/note; sleep 1", essential=False, depends=[("first", "COMPLETE")]),
        _container("once-started", "echo started-alongside", essential=True, depends=[("after-complete", "START")]),
    ])
    containers = {c["name"]: c for c in task["containers"]}
    assert containers["first"]["exitCode"] == 1
    assert "exitCode" not in containers["needs-success"] or containers["needs-success"]["exitCode"] is None
    assert _lines(task, "after-complete") == ["from-first"]  # the volume is shared
    assert _lines(task, "once-started") == ["started-alongside"]
    # the essential container exited first: the task stopped, the other got SIGTERM (143 from sh)
    assert task["stopCode"] == "EssentialContainerExited" and containers["once-started"]["exitCode"] == 0
    assert containers["after-complete"]["exitCode"] in (143, 137)


def test_stop_task_stops_running_containers_and_never_starts_waiting_ones(ecs):
    client, network, _ = ecs
    client.register_task_definition(
        family="sim-stop", requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256", memory="512",
        volumes=[{"name": "shared"}], containerDefinitions=[
            _container("runs", "echo up; sleep 60", essential=False),
            _container("waits", "echo never", essential=True, depends=[("runs", "COMPLETE")]),
        ])
    arn = client.run_task(cluster="sim", taskDefinition="sim-stop", launchType="FARGATE", networkConfiguration=network)["tasks"][0]["taskArn"]
    deadline = time.monotonic() + 30
    while client.describe_tasks(cluster="sim", tasks=[arn])["tasks"][0]["lastStatus"] != "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    client.stop_task(cluster="sim", task=arn, reason="test stop")
    while (task := client.describe_tasks(cluster="sim", tasks=[arn])["tasks"][0])["lastStatus"] != "STOPPED":
        assert time.monotonic() < deadline + 30
        time.sleep(0.1)
    containers = {c["name"]: c for c in task["containers"]}
    assert task["stopCode"] == "UserInitiated" and task["stoppedReason"] == "test stop"
    assert containers["runs"]["exitCode"] in (143, 137) and containers["waits"].get("exitCode") is None
    with pytest.raises(Exception):
        _lines(task, "waits")  # it never started: no stream


def test_stop_task_stops_a_dependent_first_and_the_rest_only_once_it_has_stopped(ecs):
    """ECS: "when a dependency is defined for container startup, for container shutdown it is
    reversed". `later` starts once `first` has (START); at a stop it gets SIGTERM first, ignores
    it and is SIGKILLed after its stopTimeout; only then does `first` get its SIGTERM."""
    client, network, _ = ecs
    client.register_task_definition(
        family="sim-stop-order", requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256", memory="512",
        volumes=[{"name": "shared"}], containerDefinitions=[
            _container("first", "trap 'if kill -0 \"$(cat /mycli/later.pid)\" 2>/dev/null; then a=running; else a=gone; fi; "
                                "echo \"term: later got one: $(cat /mycli/later.term 2>/dev/null || echo no), later $a\"; exit 0' TERM; "
                                "echo up; while :; do sleep 0.1; done", essential=True),
            _container("later", "trap 'echo yes > /mycli/later.term' TERM; echo $$ > /mycli/later.pid; "
                                "while :; do sleep 0.1; done", essential=False, depends=[("first", "START")], stopTimeout=2),
        ])
    arn = client.run_task(cluster="sim", taskDefinition="sim-stop-order", launchType="FARGATE", networkConfiguration=network)["tasks"][0]["taskArn"]
    deadline = time.monotonic() + 30
    while {c["name"]: c.get("lastStatus") for c in client.describe_tasks(cluster="sim", tasks=[arn])["tasks"][0]["containers"]} != {
            "first": "RUNNING", "later": "RUNNING"}:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    time.sleep(0.5)  # past `later`'s first lines (its pid written, its trap set)
    client.stop_task(cluster="sim", task=arn, reason="test stop")
    while (task := client.describe_tasks(cluster="sim", tasks=[arn])["tasks"][0])["lastStatus"] != "STOPPED":
        assert time.monotonic() < deadline + 30
        time.sleep(0.1)
    containers = {c["name"]: c for c in task["containers"]}
    assert containers["later"]["exitCode"] == 137 and containers["first"]["exitCode"] == 0
    assert _lines(task, "first") == ["up", "term: later got one: yes, later gone"]


def test_a_container_runs_its_entry_point_then_its_command(ecs):
    """ECS: the definition's entryPoint, else the image's ENTRYPOINT, with the command as its arguments."""
    _, _, sim = ecs
    sim.image_entrypoints["sim/entry:1"] = ["/bin/echo", "image-entrypoint"]
    image_entry = {**_container("image", "echo never", essential=False), "image": "sim/entry:1"}
    replaced = {**_container("replaced", "echo from-command", essential=True, depends=[("image", "COMPLETE")]),
                "image": "sim/entry:1", "entryPoint": ["/bin/sh", "-c", 'exec "$@"', "x"]}
    task = _run(ecs, "sim-entry", [image_entry, replaced])
    assert _lines(task, "image") == ["image-entrypoint /bin/sh -c echo never"]
    assert _lines(task, "replaced") == ["from-command"]
