"""The ECS engine's parts: task definition names, the packed command in real shells, the
overrides limit, and AWS failures turned into clear API errors (against the moto server)."""

from __future__ import annotations

import json
import os
import random
import string
import subprocess
import sys

import boto3
import pytest
from tests.support.aws import aws_env

from orchestrator.api import App
from orchestrator.auth import Authenticator, hash_api_key
from orchestrator.engines.ecs import EcsEngine, tag_value
from orchestrator.engines.ecs_command import MAX_OVERRIDES_CHARS, build_launch, overrides_size, packed
from orchestrator.engines.ecs_taskdefs import candidate_families, sanitize
from orchestrator.engines.local_files import FileCaps
from orchestrator.errors import BadRequest
from orchestrator.units import MIB
from orchestrator.validation import DEFAULT_MAX_UPLOAD_BYTES

pytestmark = pytest.mark.aws

REGION = "ca-central-1"
KEY = "sk_live_" + "ab" * 32
SHELLS = {
    "dash": ["/usr/bin/dash", "-c"],
    "bash": ["/usr/bin/bash", "-c"],
    "busybox": ["/usr/bin/busybox", "sh", "-c"],
}


@pytest.mark.parametrize("image, name", [
    ("alpine:latest", "alpine-latest"),
    ("ubuntu:22.04", "ubuntu-22-04"),
    ("hashicorp/terraform:1.6", "hashicorp-terraform-1-6"),
    ("python:3.11-slim", "python-3-11-slim"),
    ("ghcr.io/Org_x/tool@sha256:" + "a" * 64, "ghcr-io-org-x-tool-sha256-" + "a" * 24),
])
def test_task_definition_names_follow_the_seed(image, name):
    assert sanitize(image) == name and len(sanitize(image)) <= 50 and not sanitize(image).endswith("-")
    readable, hashed = candidate_families("mycli-task", image)
    assert readable == f"mycli-task-{name}" and hashed.startswith(readable + "-") and len(hashed) == len(readable) + 9


def test_tag_values_hold_only_what_ecs_accepts():
    assert tag_value("https://github.com/user/repo") == "https://github.com/user/repo"
    assert tag_value("https://host/~user/re po?x=1&y") == "https://host/_user/re po_x=1_y"
    assert len(tag_value("x" * 3000)) == 256


@pytest.fixture
def busybox_path(tmp_path):
    """A PATH where base64 and gunzip are busybox's applets, as in an alpine image."""
    folder = tmp_path / "bb"
    folder.mkdir()
    for applet in ("base64", "gunzip", "cat", "seq", "sleep", "mktemp", "rm", "mkdir"):
        os.symlink("/usr/bin/busybox", folder / applet)
    return str(folder)


@pytest.mark.parametrize("shell", sorted(SHELLS))
@pytest.mark.parametrize("tools", ["coreutils", "busybox"])
def test_a_64_kib_script_runs_packed_in_every_shell(shell, tools, busybox_path):
    body = "".join(f"n=$((n+1)) # step {i}: {'pad ' * 10}\n" for i in range(1200))
    script = "#!/bin/sh\nset -u\nn=0\n" + body + 'read -r line; echo "n=$n stdin=$line"; trap "echo bye" EXIT; exit 7\n'
    assert len(script) > 64 * 1024 - 4096
    program = packed(script)
    assert len(program) < MAX_OVERRIDES_CHARS
    env = {"PATH": busybox_path if tools == "busybox" else "/usr/bin:/bin"}
    done = subprocess.run([*SHELLS[shell], program], input=b"from-stdin\n", capture_output=True, env=env, timeout=30)
    assert done.returncode == 7, done.stderr
    assert done.stdout.decode().splitlines() == ["n=1200 stdin=from-stdin", "bye"]


def test_a_packed_script_in_an_image_without_the_tools_fails_clearly(tmp_path):
    done = subprocess.run(["/usr/bin/dash", "-c", packed("echo hi\n")], capture_output=True, env={"PATH": str(tmp_path)})
    assert done.returncode == 127 and b"needs base64 and gunzip" in done.stderr


def test_the_cheapest_transport_that_fits_is_chosen():
    small = build_launch("executor", "echo hi\n", {"A": "1"})
    assert small.mode == "plain" and small.overrides["containerOverrides"][0]["command"] == ["/bin/sh", "-c", "echo hi\n"]
    repetitive = "".join("echo the same line again\n" for _ in range(3000))
    packed_launch = build_launch("executor", repetitive, {"MYCLI_EXECUTION_ID": "0" * 12})
    assert packed_launch.mode == "packed" and overrides_size(packed_launch.overrides) <= MAX_OVERRIDES_CHARS
    numbered = "".join(f"echo line {i}\n" for i in range(6000))  # 80 KB of script that gzip shrinks only ~5x
    big = build_launch("executor", numbered, {"MYCLI_EXECUTION_ID": "0" * 12})
    assert big.mode == "definition" and "command" not in big.overrides["containerOverrides"][0]
    assert big.definition_command[:2] == ["/bin/sh", "-c"] and overrides_size(big.overrides) <= MAX_OVERRIDES_CHARS
    assert big.overrides["containerOverrides"][0]["environment"] == [{"name": "MYCLI_EXECUTION_ID", "value": "0" * 12}]


def test_overrides_are_measured_as_botocore_sends_them():
    """RunTask's 8,192 characters count what arrives: botocore's JSON, where each non-ASCII
    character is a \\uXXXX escape (6 characters; 12 outside the BMP)."""
    import botocore.session
    from botocore.serialize import create_serializer

    script = "echo '" + "é" * 1400 + "🙂" * 10 + "'\n"  # 1,417 characters typed, ~8,540 sent
    launch = build_launch("executor", script, {"MYCLI_EXECUTION_ID": "0" * 12})
    assert launch.mode == "packed"
    model = botocore.session.get_session().get_service_model("ecs").operation_model("RunTask")
    for overrides in (launch.overrides, build_launch("executor", "echo " + "x" * 8000, {}).overrides):
        body = create_serializer("json").serialize_to_request(
            {"taskDefinition": "t", "overrides": overrides}, model)["body"].decode()
        assert json.dumps(overrides) in body  # what overrides_size measures is what travels
        assert overrides_size(overrides) == len(json.dumps(overrides)) <= MAX_OVERRIDES_CHARS


def test_a_size_is_the_tasks_and_the_executors_in_every_transport():
    """A per-run size: task-level cpu (CPU units) and memory (MiB) as the strings RunTask's model
    wants, and the executor's memory limit raised or lowered with it (its definition's 512 MiB
    would cap a larger task; a limit above a smaller task's is refused). It counts toward the
    8,192 characters like the rest, so every transport carries it."""
    from botocore.validate import validate_parameters
    import botocore.session

    from orchestrator.sizes import Size

    model = botocore.session.get_session().get_service_model("ecs").operation_model("RunTask")
    scripts = {"plain": "echo hi\n", "packed": "".join("echo the same line again\n" for _ in range(3000)),
               "definition": "".join(f"echo line {i}\n" for i in range(6000))}
    for mode, script in scripts.items():
        launch = build_launch("executor", script, {"MYCLI_EXECUTION_ID": "0" * 12}, Size(2, 8192))
        overrides = launch.overrides
        assert launch.mode == mode and overrides_size(overrides) <= MAX_OVERRIDES_CHARS
        assert (overrides["cpu"], overrides["memory"], overrides["containerOverrides"][0]["memory"]) == ("2048", "8192", 8192)
        validate_parameters({"taskDefinition": "t", "overrides": overrides}, model.input_shape)
    quarter = build_launch("executor", "true", {}, Size(0.25, 512)).overrides
    assert (quarter["cpu"], quarter["memory"], quarter["containerOverrides"][0]["memory"]) == ("256", "512", 512)
    unsized = build_launch("executor", "true", {}).overrides
    assert not {"cpu", "memory"} & set(unsized) and "memory" not in unsized["containerOverrides"][0]


def test_what_cannot_fit_is_a_400_naming_the_limits():
    noise = "".join(random.Random(1).choices(string.ascii_letters + string.digits, k=64 * 1024))
    with pytest.raises(BadRequest, match="8,192") as caught:
        build_launch("executor", f": {noise}\n", {})
    assert "task definition" in caught.value.message
    with pytest.raises(BadRequest, match="env does not fit"):
        build_launch("executor", "echo hi\n", {"BIG": noise[:9000]})


def test_importing_the_lambda_handler_does_not_import_boto3():
    probe = "import sys, orchestrator.handler, orchestrator.engines.ecs; print('boto3' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


# --- AWS failures, through the API as a client sees them -------------------------------------

@pytest.fixture
def aws(monkeypatch):
    for name, value in aws_env(REGION).items():
        monkeypatch.setenv(name, value)


def _app(**settings: str) -> App:
    environ = {"AWS_REGION": REGION, **settings}
    return App(EcsEngine.from_env(environ), lambda: Authenticator((hash_api_key(KEY, rounds=4).encode(),)))


def _call(app: App, body: dict) -> tuple[int, dict]:
    answer = app.handle({"headers": {"X-API-Key": KEY}, "body": json.dumps(body)})
    return answer["statusCode"], json.loads(answer["body"])


COMPLETE = {
    "MYCLI_CLUSTER": "no-such-cluster", "MYCLI_SUBNETS": "subnet-1", "MYCLI_SECURITY_GROUPS": "sg-1",
    "MYCLI_TASK_DEFINITION": "parts-task", "MYCLI_LOG_GROUP": "/aws/mycli/parts", "MYCLI_EXECUTIONS_TABLE": "parts-executions",
    "MYCLI_CAPACITY_PROVIDER": "FARGATE",
}


def test_missing_settings_name_themselves(aws):
    status, body = _call(_app(MYCLI_CLUSTER="c"), {"action": "exec", "command": "echo", "skip_git": True})
    assert status == 500
    assert "MYCLI_SUBNETS" in body["error"] and "MYCLI_EXECUTIONS_TABLE" in body["error"] and "--stack-name" in body["error"]


def test_an_unknown_cluster_is_a_502_that_says_what_to_check(aws):
    dynamodb = boto3.client("dynamodb")
    if COMPLETE["MYCLI_EXECUTIONS_TABLE"] not in dynamodb.list_tables()["TableNames"]:
        dynamodb.create_table(  # the execution ID is reserved in the table before RunTask
            TableName=COMPLETE["MYCLI_EXECUTIONS_TABLE"], BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "execution_id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "execution_id", "KeyType": "HASH"}],
        )
    status, body = _call(_app(**COMPLETE), {"action": "exec", "command": "echo", "skip_git": True})
    assert status == 502, body
    assert "ECS RunTask failed" in body["error"] and "MYCLI_CLUSTER" in body["error"]
    assert "Traceback" not in body["error"]
    assert dynamodb.scan(TableName=COMPLETE["MYCLI_EXECUTIONS_TABLE"])["Count"] == 0, "the reservation was not released"
    dynamodb.delete_table(TableName=COMPLETE["MYCLI_EXECUTIONS_TABLE"])


def test_an_unknown_execution_is_a_404_and_a_missing_table_a_502(aws):
    dynamodb = boto3.client("dynamodb")
    dynamodb.create_table(
        TableName="parts-executions", BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "execution_id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "execution_id", "KeyType": "HASH"}],
    )
    try:
        status, body = _call(_app(**COMPLETE), {"action": "status", "execution_id": "0123456789ab"})
        assert status == 404 and "0123456789ab" in body["error"]
        status, body = _call(_app(**{**COMPLETE, "MYCLI_EXECUTIONS_TABLE": "nope"}), {"action": "list"})
        assert status == 502 and "MYCLI_EXECUTIONS_TABLE" in body["error"]
    finally:
        dynamodb.delete_table(TableName="parts-executions")


def test_aws_out_of_reach_is_a_503(monkeypatch):
    for name, value in aws_env(REGION).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens on the discard port
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    status, body = _call(_app(**COMPLETE), {"action": "list"})
    assert status == 503 and "cannot reach AWS" in body["error"]


def test_prune_is_refused_on_aws_with_what_expires_by_itself(aws):
    status, body = _call(_app(**COMPLETE), {"action": "prune", "older_than_days": 7})
    assert status == 400, body
    assert "local engine" in body["error"] and "7 days" in body["error"] and "90 days" in body["error"]


@pytest.mark.parametrize("setting, size", [(None, DEFAULT_MAX_UPLOAD_BYTES), (None, DEFAULT_MAX_UPLOAD_BYTES + 1),
                                           ("0", 50 * DEFAULT_MAX_UPLOAD_BYTES), ("2", 2 * MIB + 1)])
def test_the_upload_cap_is_the_embedded_engines_setting_for_setting(aws, setting, size):
    """The same MYCLI_MAX_UPLOAD_MB (its default, a value, 0 for none) caps an upload alike on both engines."""
    environ = {} if setting is None else {"MYCLI_MAX_UPLOAD_MB": setting}
    status, body = _call(_app(**COMPLETE, MYCLI_BUCKET="parts-bucket", **environ),
                         {"action": "upload", "size": size, "sha256": "0" * 64, "purpose": "inputs"})
    embedded_takes_it = size <= FileCaps.from_env(environ).max_upload
    assert (status == 200) == embedded_takes_it, body
    if not embedded_takes_it:
        assert status == 400 and "MYCLI_MAX_UPLOAD_MB" in body["error"]
