"""The whole request path on the AWS engine: `mycli init`, then `mycli server --engine aws` (a real
process, the Lambda's code path) against the moto server, with the Fargate simulator running
the tasks, driven by the real `mycli` CLI and by the HTTP API."""

from __future__ import annotations

import json
import random
import re
import string
import time
from types import SimpleNamespace

import boto3
import pytest
from tests.support.aws import in_region
from tests.support.aws_engine import deployed_engine
from tests.support.cli import Cli
from tests.support.server import follow_to_the_end, run_to_the_end
from tests.support.git_http_server import GitHttpServer
from tests.support.git_repos import bare_clone, make_repo

pytestmark = pytest.mark.aws

REGION = "ap-northeast-1"
STACK = "enginetest"
TOKEN = "ghp_engine-test-secret-0123456789abcdef"


def _private_repo(base):
    served = base / "served"
    served.mkdir()
    bare_clone(make_repo(base / "src", branch="trunk", files={"hello.txt": "hello from the private repo\n"}),
               served / "private.git")
    return served


@pytest.fixture(scope="module")
def aws(tmp_path_factory):
    with in_region(REGION):
        base = tmp_path_factory.mktemp("aws-engine")
        git = GitHttpServer(_private_repo(base), "x-access-token", TOKEN)
        with deployed_engine(base, STACK, REGION, git.host, TOKEN, MYCLI_TIMEOUT_GRACE_SECONDS="2") as engine:
            server = engine.server
            cli = Cli(engine.home, extra_env={**engine.env, "MYCLI_API_ENDPOINT": server.url, "MYCLI_API_KEY": server.key})
            yield SimpleNamespace(server=server, cli=cli, sim=engine.sim, git=git, ecs=boto3.client("ecs"),
                                  cluster=f"{STACK}-cluster")
        git.close()


def _wait(aws, execution_id: str, timeout: float = 60) -> dict:
    """The final status, once the whole log has been shipped."""
    follow_to_the_end(aws.server, execution_id, timeout)
    return aws.server.call({"action": "status", "execution_id": execution_id})[1]


def _run(aws, command: str, **fields) -> dict:
    return run_to_the_end(aws.server, {"command": command, "skip_git": True, **fields})[0]


def _task(aws, task_arn: str) -> dict:
    return aws.ecs.describe_tasks(cluster=aws.cluster, tasks=[task_arn], include=["TAGS"])["tasks"][0]


def test_exec_status_logs_through_the_cli(aws):
    started = aws.cli.exec_json("--skip-git", "--", "echo hello; echo oops >&2; exit 3")
    assert started["engine"] == "ecs" and started["task_arn"].startswith("arn:aws:ecs:")
    execution_id = started["execution_id"]
    followed = aws.cli.run("logs", "-f", execution_id, timeout=60)
    assert "hello" in followed.stdout and "oops" in followed.stdout
    status = json.loads(aws.cli.run("status", "--json", execution_id).stdout)
    assert status["status"] == "STOPPED" and status["exit_code"] == 3
    assert status["stop_code"] == "EssentialContainerExited" and status["started_at"] and status["stopped_at"]
    # by task ARN too, as the seed's CLI does
    by_arn = json.loads(aws.cli.run("status", "--json", started["task_arn"]).stdout)
    assert by_arn["execution_id"] == execution_id

    task = _task(aws, started["task_arn"])
    assert task["startedBy"] == execution_id
    assert {"key": "ExecutionID", "value": execution_id} in task["tags"]
    assert {t["key"] for t in task["tags"]} == {"ExecutionID", "Repo"}
    overrides = {o["name"]: o for o in task["overrides"]["containerOverrides"]}
    assert list(overrides) == ["fetch", "executor", "publish"]
    # the helpers' scripts travel packed; the executor runs its definition's command (the
    # script fetch left on the volume), so the user's image needs nothing but /bin/sh
    assert overrides["fetch"]["command"][:2] == ["/bin/sh", "-c"] and "base64 -d | gunzip" in overrides["fetch"]["command"][2]
    assert "command" not in overrides["executor"]
    assert "command" not in overrides["publish"]  # its script is its task definition's
    for override in overrides.values():
        assert override["environment"][0] == {"name": "MYCLI_EXECUTION_ID", "value": execution_id}
    assert {e["name"] for e in overrides["publish"]["environment"][1:]} == {"MYCLI_MAX_ARTIFACT_MB", "MYCLI_MAX_ARTIFACTS_MB"}

    listed = json.loads(aws.cli.run("list", "--json").stdout)["executions"]
    assert execution_id in [e["execution_id"] for e in listed]


def test_log_paging_reaches_every_line_and_stops_at_the_end(aws):
    final = _run(aws, "seq 1 2500", timeout_seconds=60)
    assert final["exit_code"] == 0
    lines, token, pages = [], None, 0
    while True:
        payload = {"action": "logs", "execution_id": final["execution_id"], "limit": 1000}
        if token:
            payload["next_token"] = token
        status, body = aws.server.call(payload)
        assert status == 200, body
        pages += 1
        if not body["events"]:
            assert body["next_token"] == token  # the end: the same token comes back
            break
        lines += [e["message"] for e in body["events"]]
        token = body["next_token"]
    numbers = [line for line in lines if line.isdigit()]
    assert numbers == [str(n) for n in range(1, 2501)] and pages >= 3


def test_stop_sends_sigterm_and_reports_130(aws):
    started = aws.cli.exec_json("--skip-git", "--", "echo started; sleep 60")
    execution_id = started["execution_id"]
    deadline = time.monotonic() + 30
    while "started" not in aws.cli.run("logs", execution_id).stdout:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    stopped = aws.cli.run("stop", "--json", execution_id)
    assert stopped.returncode == 0, stopped.stderr
    final = _wait(aws, execution_id, timeout=30)
    assert final["status"] == "STOPPED" and final["exit_code"] == 130
    assert "Stopped by user" in final["stopped_reason"] and final["stop_code"] == "UserInitiated"
    assert _task(aws, started["task_arn"])["stoppedReason"].startswith("Stopped by user")


def test_64_kib_commands_run_and_an_incompressible_one_is_refused(aws):
    # compresses well: packed into the overrides (fetch's command, which carries the executor's
    # script: about 1.5 KB of the 8,192 are the helpers' own, compressed)
    body = "".join(f"echo line {n}: the quick brown fox jumps over the lazy dog >/dev/null\n" for n in range(2000))
    command = body[: 64 * 1024 - 20] + "\necho done-64k\n"
    assert 60 * 1024 < len(command.encode()) <= 64 * 1024
    final = _run(aws, command)
    assert final["exit_code"] == 0, final
    assert "done-64k" in aws.server.all_lines(final["execution_id"])
    overrides = _task(aws, final["task_arn"])["overrides"]
    assert len(json.dumps(overrides)) <= 8192  # what AWS would have enforced (moto does not)
    assert "base64 -d | gunzip" in overrides["containerOverrides"][0]["command"][2]

    # compresses ~4x, like real code: travels in a one-off task definition, retired after RunTask
    words = random.Random(3).choices(["alpha", "beta", "gamma", "delta", "x", "y", "print", "for", "in", "range"], k=20000)
    lines = [f"v{i}={random.Random(i).randint(0, 10**9)}  # {' '.join(words[i * 5:i * 5 + 5])}" for i in range(1800)]
    command = "\n".join(lines)[: 64 * 1024 - 30] + "\necho done-realistic\n"
    final = _run(aws, command)
    assert final["exit_code"] == 0, aws.server.all_lines(final["execution_id"])[-5:]
    assert "done-realistic" in aws.server.all_lines(final["execution_id"])
    task = _task(aws, final["task_arn"])
    assert len(json.dumps(task["overrides"])) <= 8192 and "command" not in task["overrides"]["containerOverrides"][0]
    assert f"{STACK}-task-oneoff:" in task["taskDefinitionArn"]
    assert aws.ecs.list_task_definitions(familyPrefix=f"{STACK}-task-oneoff")["taskDefinitionArns"] == []

    noise = "".join(random.Random(7).choices(string.ascii_letters + string.digits, k=60 * 1024))
    status, answer = aws.server.call({"action": "exec", "command": f": {noise}", "skip_git": True})
    assert status == 400 and "8,192" in answer["error"]
    refused = aws.cli.run("exec", "--skip-git", "-", input=f": {noise}\n")
    assert refused.returncode != 0 and "8,192" in refused.stderr and "Traceback" not in refused.stderr


def test_private_repo_clone_never_shows_the_token(aws):
    repo = f"http://{aws.git.host}/private.git"
    started = aws.cli.exec_json("--repo", repo, "--branch", "trunk", "--", "cat hello.txt; env | sort")
    final = _wait(aws, started["execution_id"], timeout=60)
    lines = aws.server.all_lines(started["execution_id"])
    assert final["exit_code"] == 0, lines
    assert "hello from the private repo" in lines and "ok" in aws.git.auth_attempts
    seen = {
        "logs": "\n".join(lines),
        "status": json.dumps(final),
        "describe_tasks": json.dumps(_task(aws, started["task_arn"]), default=str),
        "task_definition": json.dumps(aws.ecs.describe_task_definition(taskDefinition=f"{STACK}-task"), default=str),
        "lambda_env": json.dumps(boto3.client("lambda").get_function_configuration(FunctionName=f"{STACK}-orchestrator")),
    }
    for where, text in seen.items():
        assert TOKEN not in text, where
    definition = aws.ecs.describe_task_definition(taskDefinition=f"{STACK}-task")["taskDefinition"]
    names = {s["name"] for s in definition["containerDefinitions"][0]["secrets"]}
    assert names == {"MYCLI_GITHUB_TOKEN", "MYCLI_GITLAB_TOKEN", "MYCLI_SSH_PRIVATE_KEY"}


def test_per_image_task_definition_is_reused_and_collisions_get_a_hash(aws):
    first = _run(aws, "echo one", image="alpine:3.19")
    second = _run(aws, "echo two", image="alpine:3.19")
    other = _run(aws, "echo three", image="alpine/3.19")  # sanitizes to the same name
    assert first["exit_code"] == second["exit_code"] == other["exit_code"] == 0
    definitions = [_task(aws, e["task_arn"])["taskDefinitionArn"] for e in (first, second, other)]
    assert definitions[0] == definitions[1]
    assert definitions[0].endswith(f"task-definition/{STACK}-task-alpine-3-19:1")
    assert definitions[2].split("/")[-1].startswith(f"{STACK}-task-alpine-3-19-") and definitions[2] != definitions[0]
    copied = aws.ecs.describe_task_definition(taskDefinition=definitions[0])["taskDefinition"]
    containers = {c["name"]: c for c in copied["containerDefinitions"]}
    container = containers["executor"]
    assert container["image"] == "alpine:3.19" and container["linuxParameters"]["initProcessEnabled"] is True
    assert container["logConfiguration"]["options"]["awslogs-stream-prefix"] == "task"
    assert container["logConfiguration"]["options"]["mode"] == "blocking"  # copied from the base
    assert container["dependsOn"] == [{"containerName": "fetch", "condition": "COMPLETE"},
                                      {"containerName": "publish", "condition": "START"}]
    # the stop order's timeouts travel with the copy: the executor's 30 s, publish's 120 s
    assert container["stopTimeout"] == 30 and containers["publish"]["stopTimeout"] == 120
    # only the executor's image is the request's; the helpers (and the credentials) stay as the base has them
    assert containers["fetch"]["image"] == containers["publish"]["image"] != "alpine:3.19"
    assert {s["name"] for s in containers["fetch"]["secrets"]} >= {"MYCLI_GITHUB_TOKEN"} and "secrets" not in container
    assert copied["volumes"] == [{"name": "mycli"}] or copied["volumes"][0]["name"] == "mycli"
    assert copied["networkMode"] == "awsvpc" and copied["requiresCompatibilities"] == ["FARGATE"]
    families = aws.ecs.list_task_definition_families(familyPrefix=f"{STACK}-task-alpine-3-19")["families"]
    revisions = [arn for family in families for arn in aws.ecs.list_task_definitions(familyPrefix=family)["taskDefinitionArns"]]
    assert len(families) == 2 and len(revisions) == 2  # one per image, none per run


def test_an_image_with_an_entrypoint_runs_the_command(aws):
    """hashicorp/terraform's kind: its ENTRYPOINT would take the executor's command as arguments
    (and its exit code be the run's) unless the definition sets entryPoint."""
    image = "hashicorp/terraform:1.6"
    aws.sim.image_entrypoints[image] = ["/bin/echo", "ENTRYPOINT-RAN"]
    aws.sim.image_digests[image] = digest = "sha256:" + "5843" * 16
    final = _run(aws, "echo hi-from-shell; exit 3", image=image)
    lines = aws.server.all_lines(final["execution_id"])
    assert (final["exit_code"], final["stop_code"]) == (3, "EssentialContainerExited"), lines
    assert "hi-from-shell" in lines and not [line for line in lines if "ENTRYPOINT-RAN" in line], lines
    # the image that ran, as ECS reports it (DescribeTasks' imageDigest), kept in the record
    assert (final["image_digest"], final["image_id"]) == (digest, None)
    listed = aws.server.call({"action": "list", "limit": 5})[1]["executions"]
    assert next(e for e in listed if e["execution_id"] == final["execution_id"])["image_digest"] == digest


def test_a_copy_registered_without_the_entry_point_is_replaced(aws):
    """A per-image copy an older engine registered (no entryPoint) would let the image's
    ENTRYPOINT swallow the command: it is not reused."""
    image = "old/entrypoint:1"
    aws.sim.image_entrypoints[image] = ["/bin/echo", "ENTRYPOINT-RAN"]
    base = aws.ecs.describe_task_definition(taskDefinition=f"{STACK}-task")["taskDefinition"]
    containers = [{k: v for k, v in c.items() if k != "entryPoint"} | ({"image": image} if c["name"] == "executor" else {})
                  for c in base["containerDefinitions"]]
    copied = {k: base[k] for k in ("taskRoleArn", "executionRoleArn", "networkMode", "requiresCompatibilities", "cpu", "memory",
                                   "volumes")}
    aws.ecs.register_task_definition(family=f"{STACK}-task-old-entrypoint-1", containerDefinitions=containers, **copied)
    final = _run(aws, "echo hi-from-shell; exit 3", image=image)
    assert (final["exit_code"], final["stop_code"]) == (3, "EssentialContainerExited"), aws.server.all_lines(final["execution_id"])
    assert _task(aws, final["task_arn"])["taskDefinitionArn"].endswith(f"{STACK}-task-old-entrypoint-1:2")


def test_the_subnets_are_in_zones_fargate_supports(aws):
    """ap-northeast-1 runs Fargate in apne1-az1, az2 and az4 only (test_aws_template states the rule)."""
    subnets = boto3.client("cloudformation").describe_stacks(StackName=STACK)["Stacks"][0]["Outputs"]
    ids = next(o["OutputValue"] for o in subnets if o["OutputKey"] == "SubnetIds").split(",")
    zones = {s["AvailabilityZoneId"] for s in boto3.client("ec2").describe_subnets(SubnetIds=ids)["Subnets"]}
    assert zones == {"apne1-az1", "apne1-az2"}


def test_an_image_that_cannot_be_pulled_is_a_clear_stop(aws):
    final = _run(aws, "echo never", image="doesnotexist/nothing:1")
    assert final["status"] == "STOPPED" and final["exit_code"] is None
    assert final["stop_code"] == "TaskFailedToStart" and "CannotPullContainerError" in final["stopped_reason"]


def test_an_image_that_cannot_start_the_command_ends_the_run_with_its_reason(aws):
    """The image is pulled but cannot run the executor's /bin/sh (a distroless one): ECS stops that
    container with CannotStartContainerError and no exit code, and the task goes on without it
    (it is not essential). publish sees it STOPPED in the task metadata and ends the run, which
    then says why, not "Essential container in task exited" at its timeout."""
    final = _run(aws, "echo never", image="noshell/distroless:1", timeout_seconds=20)
    assert (final["status"], final["exit_code"], final["stop_code"]) == ("STOPPED", None, "EssentialContainerExited"), final
    assert final["stopped_reason"].startswith("CannotStartContainerError:") and "/bin/sh" in final["stopped_reason"], final
    lines = aws.server.all_lines(final["execution_id"])
    assert any(line.startswith("✗ The command's container stopped without running") for line in lines) and "never" not in lines


def test_watchdog_times_out_a_running_command(aws):
    final = _run(aws, "echo going; sleep 30", timeout_seconds=2)
    assert final["exit_code"] == 124
    assert any("Timed out after 2 s, the run's --timeout" in line for line in aws.server.all_lines(final["execution_id"]))


def test_not_started_yet_is_an_empty_page_and_the_engine_stops_overdue_tasks(aws):
    aws.sim.held.set()  # the image "pull" never finishes
    try:
        status, started = aws.server.call({"action": "exec", "command": "echo hi", "skip_git": True, "timeout_seconds": 1})
        assert status == 200, started
        status, page = aws.server.call({"action": "logs", "execution_id": started["execution_id"]})
        assert status == 200 and page["events"] == [] and page["status"] == "PENDING"
        time.sleep(3.5)  # past timeout (1 s) + grace (2 s): the next look stops it
        final = _wait(aws, started["execution_id"], timeout=30)
    finally:
        aws.sim.held.clear()
    assert final["status"] == "STOPPED" and final["exit_code"] == 124
    assert final["stopped_reason"] == "Timed out after 1 s, the run's --timeout; stopped by mycli"


def test_a_command_is_measured_as_sent_non_ascii_escaped(aws):
    """1,500 accented characters are 1,500 characters typed but 9,000 as botocore sends them
    (\\u00e9 each): RunTask's 8,192 limit (enforced by tests/support/aws_rules.py) counts the latter."""
    text = "é" * 1500
    final = _run(aws, f"printf '%s\\n' '{text}'")
    assert final["exit_code"] == 0, final
    assert text in aws.server.all_lines(final["execution_id"])
    overrides = _task(aws, final["task_arn"])["overrides"]
    assert len(json.dumps(overrides)) <= 8192 and "base64 -d | gunzip" in overrides["containerOverrides"][0]["command"][2]


def test_a_size_reaches_runtask_and_shows_asked_applied_and_costed(aws):
    """`--cpu 2 --memory 8G` from the CLI: RunTask receives the task size as overrides (CPU units
    and MiB, as strings) and the executor's memory limit with it (its definition says 512; the
    stand-ins refuse a container above its task), the record says asked and applied, `mycli
    status` shows both and the cost line prices 2 vCPU / 8 GB. A wrong pair is the core's 400."""
    done = aws.cli.run("exec", "--skip-git", "--wait", "--json", "--cpu", "2", "--memory", "8G", "--", "true", timeout=90)
    assert done.returncode == 0, done.stderr
    final = json.loads(done.stdout)
    assert (final["cpu"], final["memory"], final["cpu_applied"], final["memory_applied"]) == (2, 8192, 2, 8192)
    assert final["resources_enforced"] is True
    overrides = _task(aws, final["task_arn"])["overrides"]
    assert (overrides["cpu"], overrides["memory"]) == ("2048", "8192")
    by_name = {o["name"]: o for o in overrides["containerOverrides"]}
    assert by_name["executor"]["memory"] == 8192 and "memory" not in by_name["fetch"] and "memory" not in by_name["publish"]
    assert "(Fargate Spot, 2 vCPU, 8 GB, public IPv4)" in done.stderr
    shown = aws.cli.run("status", final["execution_id"]).stdout
    assert "Size:           2 vCPU, 8192 MiB asked; applied as asked" in shown

    plain = _run(aws, "true")  # no size: the task definition's, and nothing in the overrides
    assert (plain["cpu"], plain["cpu_applied"]) == (None, None)
    assert not {"cpu", "memory"} & set(_task(aws, plain["task_arn"])["overrides"])
    status, body = aws.server.call({"action": "exec", "command": "true", "skip_git": True, "cpu": 2, "memory": 1024})
    assert status == 400 and "choose 4096–16384 MiB in steps of 1024" in body["error"]


def _in_process_app():
    """The Lambda's App on this stack, in this process (its settings read from the function)."""
    from mycli_magic.aws.deploy import server_environ

    from orchestrator.api import App
    from orchestrator.auth import Authenticator, hash_api_key
    from orchestrator.engines.ecs import EcsEngine

    key = "sk_live_" + "cd" * 32
    engine = EcsEngine.from_env(server_environ(STACK, REGION))
    app = App(engine, lambda: Authenticator((hash_api_key(key, rounds=4).encode(),)))

    def call(body: dict) -> dict:
        answer = app.handle({"headers": {"X-API-Key": key}, "body": json.dumps(body)})
        assert answer["statusCode"] == 200, answer
        return json.loads(answer["body"])

    def run(command: str, **fields) -> dict:
        started = call({"action": "exec", "command": command, "skip_git": True, **fields})
        deadline = time.monotonic() + 60
        while (final := call({"action": "status", "execution_id": started["execution_id"]}))["status"] != "STOPPED":
            assert time.monotonic() < deadline, final
            time.sleep(0.2)
        return final

    return engine, run


def test_a_per_image_definition_follows_its_base(aws):
    """A re-created stack has a new secret (new ARN suffix); a template update changes the base.
    A per-image copy registered before must not be reused with the old settings: the task would
    fail to read a secret that no longer exists (ResourceInitializationError on ECS). Runs last in
    this module: it replaces the stack's secret."""
    engine, run = _in_process_app()
    engine.task_definitions.recheck_seconds = 0  # a warm process compares at once, not after 5 minutes
    image = "alpine:3.20"
    first = run("echo before", image=image)
    assert first["exit_code"] == 0, first
    secrets = boto3.client("secretsmanager")
    base = aws.ecs.describe_task_definition(taskDefinition=f"{STACK}-task")["taskDefinition"]
    old_arn = base["containerDefinitions"][0]["secrets"][0]["valueFrom"].split(":github_token")[0]
    new_arn = secrets.create_secret(Name=f"{STACK}/git-credentials-2",
                                    SecretString=secrets.get_secret_value(SecretId=old_arn)["SecretString"])["ARN"]
    containers = [{**c, **({"secrets": [{**s, "valueFrom": s["valueFrom"].replace(old_arn, new_arn)} for s in c["secrets"]]}
                           if c.get("secrets") else {})} for c in base["containerDefinitions"]]
    copied = {k: base[k] for k in ("taskRoleArn", "executionRoleArn", "networkMode", "requiresCompatibilities", "cpu", "memory",
                                   "volumes")}
    aws.ecs.register_task_definition(family=f"{STACK}-task", containerDefinitions=containers, **copied)
    secrets.delete_secret(SecretId=old_arn, ForceDeleteWithoutRecovery=True)

    second = run("echo after", image=image)
    assert second["exit_code"] == 0 and second["stop_code"] == "EssentialContainerExited", second
    definition = aws.ecs.describe_task_definition(taskDefinition=_task(aws, second["task_arn"])["taskDefinitionArn"],
                                                  include=["TAGS"])
    assert definition["taskDefinition"]["containerDefinitions"][0]["secrets"][0]["valueFrom"].startswith(new_arn)  # fetch's
    assert definition["taskDefinition"]["revision"] == 2
    assert {"key": "DerivedFrom", "value": f"{STACK}-task:2"} in definition["tags"]
    assert run("echo again", image=image)["task_arn"] != second["task_arn"]
    assert aws.ecs.describe_task_definition(taskDefinition=f"{STACK}-task-alpine-3-20")["taskDefinition"]["revision"] == 2


def test_destroy_waits_for_running_tasks_before_deleting_the_stack(aws):
    """ECS refuses DeleteCluster while a task has not stopped (aws_rules enforces it, for
    CloudFormation's delete too): destroy stops the tasks and waits. A stopped task spends a while
    DEPROVISIONING (its network interface detached) before STOPPED, as on ECS. Runs last: it
    removes the module's stack."""
    aws.sim.deprovision_seconds = 3
    started = aws.cli.exec_json("--skip-git", "--", "echo waiting; sleep 60")
    deadline = time.monotonic() + 30
    while "waiting" not in aws.cli.run("logs", started["execution_id"]).stdout:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    done = aws.cli.run("destroy", "--force", "--stack-name", STACK, "--region", REGION, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    waited = [i for i, line in enumerate(lines) if re.search(r"Waiting for \d+ task\(s\) to stop", line)]
    deleting = [i for i, line in enumerate(lines) if "Deleting CloudFormation stack" in line]
    assert waited and deleting and waited[0] < lines.index("✓ Tasks stopped") < deleting[0], done.stdout
    assert _task(aws, started["task_arn"])["lastStatus"] == "STOPPED"
    with pytest.raises(Exception):
        boto3.client("cloudformation").describe_stacks(StackName=STACK)

