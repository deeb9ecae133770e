"""CloudFormation plumbing for deploy and destroy: clients, AWS errors in user words, the
template, stack outputs, and waiting on a stack while reporting its events as progress."""

from __future__ import annotations

import contextlib
import os
import re
import time
from typing import Callable, Iterator, Mapping

from orchestrator.engines.ecs_aws import error_code

from ..errors import MycliError, UsageError

DEFAULT_STACK = "mycli"
DEFAULT_REGION = "us-east-2"
POLL_SECONDS = float(os.environ.get("MYCLI_DEPLOY_POLL_SECONDS", "5"))
STACK_TIMEOUT_SECONDS = 30 * 60
# Everything is named after the stack; the tightest fit is the function, `{stack}-orchestrator`,
# within Lambda's 64 characters (the roles' names are CloudFormation's, which fit IAM's 64).
MAX_STACK_NAME = 64 - len("-orchestrator")
_STACK_RE = re.compile(r"^[A-Za-z][A-Za-z0-9-]*$")
# CloudFormation has no "not found" code: DescribeStacks answers a missing stack with
# ValidationError, which for a well-formed name (check_stack_name) means only that, as
# botocore's own StackDeleteComplete waiter reads it.
NO_SUCH_STACK = "ValidationError"

Progress = Callable[[str], None]


class AwsError(MycliError):
    """An AWS call that failed, in one line; `code` is AWS's error code when AWS answered
    (`response["Error"]["Code"]`), so a caller decides by the code, never by the words."""

    def __init__(self, message: str, code: str = ""):
        super().__init__(message)
        self.code = code


def client(service: str, region: str):
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(service, region_name=region, config=Config(retries={"mode": "standard"}))


@contextlib.contextmanager
def aws_errors(what: str) -> Iterator[None]:
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        NoCredentialsError,
        NoRegionError,
    )
    from botocore.parsers import ResponseParserError

    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise AwsError(f"{what} failed: {error.get('Code', 'error')}: {error.get('Message', exc)}", error_code(exc)) from None
    except NoCredentialsError:
        raise AwsError(f"{what}: no AWS credentials found; run `aws configure` or set AWS_PROFILE") from None
    except NoRegionError:
        raise AwsError(f"{what}: no AWS region; pass --region") from None
    except (BotoCoreError, ResponseParserError) as exc:
        raise AwsError(f"{what} failed: {str(exc).splitlines()[0][:300]}") from None


def resolve_region(region: str | None, environ: Mapping[str, str] = os.environ) -> str:
    """--region, else the AWS configuration's region, else the seed's default us-east-2."""
    if region:
        return region
    import boto3

    return boto3.session.Session().region_name or environ.get("AWS_REGION") or DEFAULT_REGION


def load_template() -> str:
    from importlib.resources import files

    return files("mycli_magic._template").joinpath("cloudformation.yaml").read_text(encoding="utf-8")


def check_stack_name(stack_name: str) -> str:
    if not _STACK_RE.match(stack_name or "") or len(stack_name) > MAX_STACK_NAME:
        raise UsageError(f"--stack-name must start with a letter and hold only letters, digits and '-', at most "
                         f"{MAX_STACK_NAME} of them (the function {{stack}}-orchestrator must fit Lambda's 64)")
    return stack_name


def stack_outputs(stack_name: str, region: str) -> dict[str, str] | None:
    """The stack's outputs, or None when there is no such stack."""
    from botocore.exceptions import ClientError

    cloudformation = client("cloudformation", region)
    with aws_errors(f"CloudFormation DescribeStacks {stack_name}"):
        try:
            stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
        except ClientError as exc:
            if error_code(exc) == NO_SUCH_STACK:
                return None
            raise
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    outputs["_status"] = stack["StackStatus"]
    return outputs


def parameters(values: dict[str, str]) -> list[dict]:
    return [{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()]


def wait_stack(stack_name: str, region: str, progress: Progress, done: set[str], seen: set[str]) -> str:
    """Poll until the stack reaches a final status, reporting each new stack event once."""
    from botocore.exceptions import ClientError

    cloudformation = client("cloudformation", region)
    deadline = time.monotonic() + STACK_TIMEOUT_SECONDS
    while True:
        with aws_errors("CloudFormation DescribeStackEvents"):
            try:
                events = cloudformation.describe_stack_events(StackName=stack_name)["StackEvents"]
                status = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]["StackStatus"]
            except ClientError as exc:
                if error_code(exc) == NO_SUCH_STACK:
                    return "DELETE_COMPLETE"
                raise
        for event in reversed(events):  # oldest first
            if event["EventId"] in seen:
                continue
            seen.add(event["EventId"])
            reason = f" ({event['ResourceStatusReason']})" if "FAILED" in event["ResourceStatus"] and event.get("ResourceStatusReason") else ""
            progress(f"  {event['ResourceStatus']:<20} {event['ResourceType']:<36} {event['LogicalResourceId']}{reason}")
        if status in done or not status.endswith("_IN_PROGRESS"):
            return status
        if time.monotonic() > deadline:
            raise AwsError(f"stack {stack_name} is still {status} after {STACK_TIMEOUT_SECONDS // 60} minutes; see the CloudFormation console")
        time.sleep(POLL_SECONDS)


def failure_reason(stack_name: str, region: str) -> str:
    with aws_errors("CloudFormation DescribeStackEvents"):
        events = client("cloudformation", region).describe_stack_events(StackName=stack_name)["StackEvents"]
    for event in reversed(events):
        if event["ResourceStatus"].endswith("FAILED") and event.get("ResourceStatusReason"):
            return f"{event['LogicalResourceId']}: {event['ResourceStatusReason']}"
    return "no reason recorded"


def mark_seen(cloudformation, stack_name: str, seen: set[str]) -> None:
    """Note the stack's events so far, so wait_stack reports only the ones an operation adds."""
    with aws_errors("CloudFormation DescribeStackEvents"):
        seen.update(e["EventId"] for e in cloudformation.describe_stack_events(StackName=stack_name)["StackEvents"])
