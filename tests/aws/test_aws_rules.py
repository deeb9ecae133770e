"""The stand-ins' own rules (tests/support/aws_rules.py): what AWS refuses, the moto server refuses too, with
AWS's error code, and what AWS accepts still passes. Each test names the rule's source in
aws_rules.DOCS; docs/deployment.md lists them."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.support.aws import aws_env

pytestmark = pytest.mark.aws

REGION = "sa-east-1"


@pytest.fixture(scope="module")
def aws():
    from moto.moto_api import state_manager

    patch = pytest.MonkeyPatch()
    for name, value in aws_env(REGION).items():
        patch.setenv(name, value)
    # tasks keep the state they are given, as in the Fargate simulator
    state_manager.set_transition(model_name="ecs::task", transition={"progression": "manual", "times": 10**9})
    yield
    patch.undo()


def _code(exc: pytest.ExceptionInfo) -> str:
    return exc.value.response["Error"]["Code"]


def test_get_log_events_with_a_token_needs_start_from_head(aws):
    """GetLogEvents: a previous nextForwardToken needs startFromHead=true (aws_rules.DOCS['GetLogEvents'])."""
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
