"""The magic on the AWS path, in a real IPython shell against the moto server: `%mycli init`
(the same flags as `mycli init`, through the same aws_deploy.init_from_args), then an execution
handle reading a log that CloudWatch completes after the task has stopped."""

from __future__ import annotations

import time
from types import SimpleNamespace

import boto3
import pytest
from tests.support.aws import deploy_env
from tests.support.server import ISOLATED_VARS, start_server, stop_server
from tests.support.fargate_sim import FargateSimulator
from tests.support.ipython import new_shell

pytestmark = pytest.mark.aws

REGION = "ca-central-1"
STACK = "magictest"
SETTLE_SECONDS = 10  # how long the engine calls a stopped task's log incomplete (CloudWatch ships late)


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    """`%mycli init --force ...` run once in a real shell; its printed output and the shell."""
    base = tmp_path_factory.mktemp("aws-magic")
    home = base / "home"
    home.mkdir()
    patch = pytest.MonkeyPatch()
    for name in ISOLATED_VARS:
        patch.delenv(name, raising=False)
    env = {**deploy_env(REGION), "MYCLI_HOME": str(home), "MYCLI_DISPLAY": "text"}
    for name, value in env.items():
        patch.setenv(name, value)
    shell = new_shell(base / "ipython")
    shell.run_line_magic("load_ext", "mycli_magic")
    try:
        yield SimpleNamespace(shell=shell, home=home, env=env, base=base)
    finally:
        shell.cleanup()
        patch.undo()


@pytest.fixture(scope="module")
def init_output(deployed):
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        deployed.shell.run_line_magic(
            "mycli", f"init --force --capacity fargate --region {REGION} --stack-name {STACK} "
                     "--github-host ghe.example.com --gitlab-host gitlab.example.org")
    return out.getvalue()


def test_init_in_a_notebook_passes_every_flag_and_keeps_the_key_out(deployed, init_output):
    import yaml

    stack = boto3.client("cloudformation").describe_stacks(StackName=STACK)["Stacks"][0]
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}
    assert parameters["GitHubHost"] == "ghe.example.com" and parameters["GitLabHost"] == "gitlab.example.org"
    assert parameters["CapacityProvider"] == "FARGATE"
    saved = yaml.safe_load((deployed.home / "config.yaml").read_text())
    assert saved["stack_name"] == STACK and saved["region"] == REGION
    assert f"✓ Stack {STACK} is ready in {REGION}" in init_output and saved["api_key"] not in init_output


def test_doctor_in_a_notebook_is_the_cli_report_and_fails_the_cell_on_a_problem(deployed, init_output):
    import contextlib
    import io

    from IPython.core.error import UsageError

    healthy = io.StringIO()
    with contextlib.redirect_stdout(healthy):
        deployed.shell.run_line_magic("mycli", f"doctor --stack-name {STACK} --region {REGION}")
    assert healthy.getvalue().splitlines()[0] == f"mycli doctor: stack {STACK} in {REGION}"
    assert "✓ No problems found." in healthy.getvalue() and "✗" not in healthy.getvalue()

    logs, group = boto3.client("logs"), f"/aws/mycli/{STACK}"
    logs.delete_log_group(logGroupName=group)
    broken = io.StringIO()
    try:
        with contextlib.redirect_stdout(broken), pytest.raises(UsageError) as failed:
            deployed.shell.run_line_magic("mycli", "doctor")  # the configured stack and region
    finally:
        logs.create_log_group(logGroupName=group)
        logs.put_retention_policy(logGroupName=group, retentionInDays=7)
    assert "✗ log group" in broken.getvalue() and "aws logs create-log-group" in broken.getvalue()
    assert str(failed.value) == f"✗ 1 problem found in stack {STACK} ({REGION}); see above."


@pytest.fixture
def aws_server(deployed, init_output, monkeypatch, tmp_path):
    """`mycli server --engine aws` on the stack the magic deployed, with the Fargate simulator
    (a home of its own per test: a second server in the same home finds the first's profile)."""
    sim = FargateSimulator(REGION).start()
    home = tmp_path / "server-home"
    home.mkdir()
    server = start_server(home, extra_env={**deployed.env, "MYCLI_HOME": str(home), "MYCLI_LOG_SETTLE_SECONDS": str(SETTLE_SECONDS)},
                          args=("--engine", "aws", "--stack-name", STACK, "--region", REGION, "--state-dir", str(home / "engine")))
    monkeypatch.setenv("MYCLI_API_ENDPOINT", server.url)
    monkeypatch.setenv("MYCLI_API_KEY", server.key)
    try:
        yield server
    finally:
        stop_server(server)
        sim.close()


def test_a_handle_keeps_reading_until_cloudwatch_has_the_last_lines(deployed, aws_server):
    status, started = aws_server.call({"action": "exec", "command": "echo before-the-stop", "skip_git": True})
    assert status == 200, started
    deadline = time.monotonic() + 60
    while (final := aws_server.call({"action": "status", "execution_id": started["execution_id"]})[1])["status"] != "STOPPED":
        assert time.monotonic() < deadline, final
        time.sleep(0.2)

    handle = deployed.shell.run_line_magic("mycli", f"status {started['execution_id']}")
    assert "before-the-stop" in handle.logs.splitlines()
    assert not handle.done  # the engine says more may come (complete: false) for SETTLE_SECONDS
    definition = boto3.client("ecs").describe_task_definition(taskDefinition=f"{STACK}-task")["taskDefinition"]
    group = definition["containerDefinitions"][0]["logConfiguration"]["options"]["awslogs-group"]
    boto3.client("logs").put_log_events(logGroupName=group, logStreamName=final["log_stream"],
                                        logEvents=[{"timestamp": int(time.time() * 1000), "message": "shipped-late"}])
    assert "shipped-late" in handle.logs.splitlines()
    handle.wait()  # until the engine calls the log complete
    assert handle.done and handle.logs.splitlines().count("shipped-late") == 1


def test_a_cells_size_reaches_runtask(deployed, aws_server, capsys):
    """`%%mycli --cpu 1 --memory 3G` on AWS: the task runs at that size (RunTask's task-level
    overrides, the executor's limit with it) and the cell's summary prices it."""
    deployed.shell.run_cell("%%mycli --skip-git --cpu 1 --memory 3G --out sized\ntrue")
    handle = deployed.shell.user_ns["sized"]
    assert handle.exit_code == 0
    assert (handle.info["cpu_applied"], handle.info["memory_applied"]) == (1, 3072)
    task = boto3.client("ecs").describe_tasks(cluster=f"{STACK}-cluster", tasks=[handle.task_arn])["tasks"][0]
    overrides = task["overrides"]
    executor = next(o for o in overrides["containerOverrides"] if o["name"] == "executor")
    assert (overrides["cpu"], overrides["memory"], executor["memory"]) == ("1024", "3072", 3072)
    assert "(Fargate Spot, 1 vCPU, 3 GB, public IPv4)" in capsys.readouterr().out
