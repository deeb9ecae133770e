"""Deploy the AWS stack: what `mycli init` (and `%mycli init` in a notebook) does, as functions
that report progress through a callback and never prompt; and where a deployed stack is
(`mycli configure`, `mycli server --engine aws`). Removal is destroy.py.

The fronts ask the questions (confirmation, git credentials) and show the API key; these
functions talk to AWS, following the seed's steps. Every AWS failure is an AwsError whose
message says what to check. boto3 is imported only when one of them runs.
"""

from __future__ import annotations

import argparse
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from orchestrator.engines.ecs_settings import DEFAULT_IMAGE

from .. import config
from ..errors import ConfigError, MycliError, UsageError
from . import stack as aws_stack
from .git_credentials import GitCredentials  # noqa: F401 (re-exported for the fronts)
from .stack import DEFAULT_STACK, AwsError, Progress, resolve_region  # noqa: F401 (re-exported for the fronts)

CAPACITY = {"fargate-spot": "FARGATE_SPOT", "fargate": "FARGATE"}


_ECR_PATTERN = re.compile(r"^[a-z0-9._/*-]*$")  # the template's AllowedPattern for EcrRepositories
FAILED_STATES = ("ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "DELETE_FAILED", "CREATE_FAILED")


@dataclass(frozen=True)
class StackOptions:
    """The stack's brakes and reach (template parameters ReservedConcurrency, ApiRateLimit,
    ApiBurstLimit, EcrRepositories, ArtifactRetentionDays): passed on every init, so an update
    keeps what was asked."""

    reserved_concurrency: int = 0
    api_rate_limit: int = 10
    api_burst_limit: int = 20
    ecr_repositories: str = ""
    artifact_retention_days: int = 7

    def parameters(self) -> dict[str, str]:
        if self.reserved_concurrency < 0:
            raise UsageError("--reserved-concurrency must be 0 (no reservation) or more")
        if not 1 <= self.api_rate_limit <= self.api_burst_limit:
            raise UsageError("--api-rate-limit must be at least 1 and at most --api-burst-limit")
        if not _ECR_PATTERN.match(self.ecr_repositories):
            raise UsageError("--ecr-repositories must be a repository name or pattern (lowercase letters, digits, . _ - / *)")
        if not 1 <= self.artifact_retention_days <= 3650:
            raise UsageError("--artifact-retention-days must be 1 to 3650")
        return {"ReservedConcurrency": str(self.reserved_concurrency), "ApiRateLimit": str(self.api_rate_limit),
                "ApiBurstLimit": str(self.api_burst_limit), "EcrRepositories": self.ecr_repositories,
                "ArtifactRetentionDays": str(self.artifact_retention_days)}


@dataclass(frozen=True)
class InitResult:
    api_key: str
    api_endpoint: str
    region: str
    stack_name: str
    config_path: str
    git_auth: tuple[str, ...]


# what both fronts (`mycli init` and `%mycli init`) share: the flags, defined once
# beside the functions that read every one of them, so the two fronts cannot drift apart.


def add_init_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--region", help="AWS region (default: your AWS configuration's, else us-east-2)")
    parser.add_argument("--stack-name", default=DEFAULT_STACK, help="CloudFormation stack name (default: mycli)")
    parser.add_argument("--force", action="store_true",
                        help="no questions: skip the confirmation, take git credentials from files/environment, "
                             "and update the stack (with a new API key) if it exists")
    parser.add_argument("--profile", help="save the endpoint and key in this profile (default: the default profile)")
    parser.add_argument("--capacity", choices=list(CAPACITY), default="fargate-spot",
                        help="run tasks on Fargate Spot (default, ~70%% cheaper, may be interrupted) or on-demand Fargate")
    parser.add_argument("--default-image", default=DEFAULT_IMAGE,
                        help=f"image used when a command names none (default: {DEFAULT_IMAGE}, Docker's official image "
                             "through the ECR Public mirror, free of Docker Hub's anonymous pull limit)")
    parser.add_argument("--github-host", default="github.com", help="host that gets the GitHub token (GitHub Enterprise: yours)")
    parser.add_argument("--gitlab-host", default="gitlab.com", help="host that gets the GitLab token (self-managed GitLab: yours)")
    parser.add_argument("--github-token-file", type=Path, help="file holding a GitHub token (else $GITHUB_TOKEN)")
    parser.add_argument("--gitlab-token-file", type=Path, help="file holding a GitLab token (else $GITLAB_TOKEN)")
    parser.add_argument("--ssh-key-file", type=Path, help="SSH private key file for any git host (else $SSH_PRIVATE_KEY, base64)")
    parser.add_argument("--reserved-concurrency", type=int, default=0, metavar="N",
                        help="at most N orchestrator invocations at once (default 0: no reservation; an account whose "
                             "Lambda concurrency quota is still the new-account 10 cannot reserve any)")
    parser.add_argument("--api-rate-limit", type=int, default=10, metavar="N",
                        help="requests per second the API lets through before answering 429 (default 10)")
    parser.add_argument("--api-burst-limit", type=int, default=20, metavar="N",
                        help="requests the API lets through at once before answering 429 (default 20)")
    parser.add_argument("--ecr-repositories", default="", metavar="PATTERN",
                        help="private ECR repositories tasks may pull from, e.g. docker-hub/* for a pull-through cache "
                             "(default: none, public images only)")
    parser.add_argument("--artifact-retention-days", type=int, default=7, metavar="DAYS",
                        help="days the bucket keeps runs' uploads and artifacts before S3 deletes them (default 7)")


def init_from_args(args: argparse.Namespace, credentials: GitCredentials, progress: Progress,
                   environ: Mapping[str, str] = os.environ) -> "InitResult":
    """init_stack with the flags of add_init_arguments; the fronts ask only for the credentials."""
    options = StackOptions(args.reserved_concurrency, args.api_rate_limit, args.api_burst_limit, args.ecr_repositories,
                           args.artifact_retention_days)
    return init_stack(args.region, args.stack_name, args.force, credentials, progress, capacity=args.capacity,
                      default_image=args.default_image, github_host=args.github_host, gitlab_host=args.gitlab_host,
                      profile=args.profile, environ=environ, options=options)


def target_stack(stack_name: str | None, region: str | None, environ: Mapping[str, str] = os.environ) -> tuple[str, str]:
    """(stack, region) a command means (`destroy`, `server --engine aws`): the stack named, else the
    configured one, else mycli; the region named, else the configured one when it is that
    stack's, else the AWS configuration's."""
    saved = config.profile_values(None, environ)
    stack = stack_name or saved.get("stack_name") or DEFAULT_STACK
    saved_region = saved.get("region") if saved.get("stack_name", stack) == stack else None
    return stack, resolve_region(region or saved_region, environ)


def discover_endpoint(stack_name: str, region: str) -> tuple[str, str]:
    """(endpoint URL, region) of a deployed stack, read from its outputs (`mycli configure`)."""
    outputs = aws_stack.stack_outputs(aws_stack.check_stack_name(stack_name), region)
    if outputs is None:
        raise ConfigError(f"no stack named {stack_name} in {region}; deploy it with: mycli init --region {region}")
    if "ApiEndpoint" not in outputs:
        raise ConfigError(f"stack {stack_name} in {region} has no ApiEndpoint output ({outputs['_status']}); is it a mycli stack?")
    return outputs["ApiEndpoint"], outputs.get("Region", region)


def server_environ(stack_name: str, region: str, environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The environment for `mycli server --engine aws`: the caller's, with the deployed function's
    settings (what the Lambda reads) on top, so the stack asked for is the stack served. The API
    key hash is left out: the local server keeps its own key."""
    outputs = aws_stack.stack_outputs(aws_stack.check_stack_name(stack_name), region)
    if outputs is None or "FunctionName" not in outputs:
        raise ConfigError(f"no mycli stack named {stack_name} in {region}; deploy it with: mycli init --region {region}")
    with aws_stack.aws_errors("Lambda GetFunctionConfiguration"):
        settings = aws_stack.client("lambda", region).get_function_configuration(FunctionName=outputs["FunctionName"])
    variables = dict((settings.get("Environment") or {}).get("Variables") or {})
    variables.pop("API_KEY_HASH", None)
    merged = {**environ, **variables}
    merged.update({"AWS_REGION": region, "AWS_DEFAULT_REGION": region, "MYCLI_ENGINE": "ecs"})
    return merged


def init_stack(
    region: str | None,
    stack_name: str,
    force: bool,
    credentials: GitCredentials,
    progress: Progress,
    *,
    capacity: str = "fargate-spot",
    default_image: str = DEFAULT_IMAGE,
    github_host: str = "github.com",
    gitlab_host: str = "gitlab.com",
    profile: str | None = None,
    environ: Mapping[str, str] = os.environ,
    options: StackOptions = StackOptions(),
) -> InitResult:
    """Deploy (or, with `force`, update) the stack and save its endpoint and a new API key.

    The seed's steps: key, bcrypt hash (cost 10), git credentials, Lambda zip, stack, wait,
    function code, config (0600). The caller shows the key once and asked the questions before.
    """
    from orchestrator.auth import generate_api_key, hash_api_key

    from .lambda_package import build_zip

    region = resolve_region(region, environ)
    aws_stack.check_stack_name(stack_name)
    credentials = credentials.validate()
    if capacity not in CAPACITY:
        raise UsageError(f"--capacity must be one of {', '.join(CAPACITY)}")
    option_values = options.parameters()
    existing = aws_stack.stack_outputs(stack_name, region)
    if existing is not None and existing["_status"] in FAILED_STATES:
        # neither usable (configure) nor updatable (init --force): only a delete helps
        raise MycliError(
            f"stack {stack_name} in {region} is {existing['_status']} ({aws_stack.failure_reason(stack_name, region)}); "
            f"it can be neither used nor updated: remove it with: mycli destroy --stack-name {stack_name} --region {region}, "
            "then run mycli init again"
        )
    if existing is not None and not force:
        raise MycliError(
            f"stack {stack_name} already exists in {region} ({existing['_status']}); use it with: "
            f"mycli configure --stack-name {stack_name} --region {region}, or update it (new API key) with: mycli init --force"
        )

    progress("→ Generating API key...")
    api_key = generate_api_key()
    key_hash = hash_api_key(api_key, rounds=10)
    progress("→ Building Lambda function package...")
    package = build_zip(environ, progress)
    progress(f"  {len(package) // 1024} KB: the orchestrator and bcrypt for linux arm64, Python 3.12")

    values = {
        "APIKeyHash": key_hash, "GitHubToken": credentials.github_token, "GitLabToken": credentials.gitlab_token,
        "SSHPrivateKey": credentials.ssh_private_key, "DefaultImage": default_image, "CapacityProvider": CAPACITY[capacity],
        "GitHubHost": github_host, "GitLabHost": gitlab_host, **option_values,
    }
    cloudformation = aws_stack.client("cloudformation", region)
    seen: set[str] = set()
    if existing is None:
        progress(f"→ Creating CloudFormation stack {stack_name} in {region}...")
        progress("  Waiting for stack creation (this may take a few minutes)...")
        with aws_stack.aws_errors("CloudFormation CreateStack"):
            cloudformation.create_stack(
                StackName=stack_name, TemplateBody=aws_stack.load_template(), Parameters=aws_stack.parameters(values),
                Capabilities=["CAPABILITY_IAM"], Tags=[{"Key": "ManagedBy", "Value": "mycli"}],
                OnFailure="ROLLBACK",
            )
        goal = "CREATE_COMPLETE"
    else:
        progress(f"→ Updating CloudFormation stack {stack_name} in {region}...")
        aws_stack.mark_seen(cloudformation, stack_name, seen)
        with aws_stack.aws_errors("CloudFormation UpdateStack"):
            cloudformation.update_stack(
                StackName=stack_name, TemplateBody=aws_stack.load_template(), Parameters=aws_stack.parameters(values),
                Capabilities=["CAPABILITY_IAM"],
            )
        goal = "UPDATE_COMPLETE"
    status = aws_stack.wait_stack(stack_name, region, progress, {goal}, seen)
    if status != goal:
        raise AwsError(
            f"stack {stack_name} ended {status}: {aws_stack.failure_reason(stack_name, region)}; "
            f"remove it with: mycli destroy --stack-name {stack_name} --region {region}"
        )
    progress("✓ Stack ready")
    outputs = aws_stack.stack_outputs(stack_name, region) or {}

    progress("→ Updating Lambda function code...")
    _update_code(outputs["FunctionName"], region, package)
    progress("✓ Lambda function code updated")

    progress("→ Saving configuration...")
    path = config.update_profile(profile, {
        "api_endpoint": outputs["ApiEndpoint"], "api_key": api_key, "region": region, "stack_name": stack_name,
    }, environ)
    return InitResult(api_key, outputs["ApiEndpoint"], region, stack_name, str(path), tuple(credentials.configured))


def _update_code(function_name: str, region: str, package: bytes) -> None:
    lam = aws_stack.client("lambda", region)
    with aws_stack.aws_errors("Lambda UpdateFunctionCode"):
        lam.update_function_code(FunctionName=function_name, ZipFile=package, Publish=False)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            state = lam.get_function_configuration(FunctionName=function_name)
            if state.get("LastUpdateStatus", "Successful") != "InProgress":
                break
            time.sleep(1)
    if state.get("LastUpdateStatus") == "Failed":
        raise AwsError(f"the Lambda code update failed: {state.get('LastUpdateStatusReason')}")
