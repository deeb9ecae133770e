"""The AWS stand-in for tests: one moto server for the whole session (in this process, so the
Fargate simulator can reach its backends), the environment that points boto3 at it, the bcrypt
wheel `mycli init` packs, and what moto's CloudFormation leaves out (the Secrets Manager secret).
"""

from __future__ import annotations

import atexit
import json
import os
import subprocess
import threading
from pathlib import Path

ACCOUNT = "123456789012"
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
    "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
}
WHEEL_CACHE = Path(os.environ.get("MYCLI_TEST_WHEELS") or Path.home() / ".cache" / "mycli-tests" / "lambda-wheels")

_server = None
_lock = threading.Lock()


def moto_endpoint() -> str:
    """Start the session's moto server once; its URL."""
    global _server
    with _lock:
        if _server is None:
            import logging

            from moto.server import ThreadedMotoServer

            logging.getLogger("werkzeug").setLevel(logging.WARNING)

            server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
            _fill_moto_gaps()
            server.start()
            atexit.register(server.stop)
            _server = server
        host, port = _server.get_host_and_port()
    return f"http://{host}:{port}"


def _fill_moto_gaps() -> None:
    """Where moto 5.2 fails and AWS does not:
    - its CloudFormation cannot delete an AWS::EC2::RouteTable, so DeleteStack of any stack with
      a VPC fails with DependencyViolation: give the model the delete CloudFormation performs;
    - RunTask of an awsvpc task crashes when the VPC's DNS hostnames flag did not reach moto
      (NetworkInterface.private_dns_name is then never set): default it to None;
    - UpdateStack crashes on a function with inline `Code.ZipFile` (moto base64-decodes the
      source text): CloudFormation leaves code it did not see change alone, so do that."""
    from moto.ec2.models import ec2_backends
    from moto.ec2.models.elastic_network_interfaces import NetworkInterface
    from moto.ec2.models.route_tables import RouteTable

    from moto.awslambda.models import LambdaFunction

    if not getattr(LambdaFunction, "_mycli_inline_update", False):
        def update(cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name):
            properties = cloudformation_json["Properties"]
            if "ZipFile" in properties.get("Code", {}):
                original_resource.update_configuration(properties)
                return original_resource
            return original_update(original_resource=original_resource, new_resource_name=new_resource_name,
                                   cloudformation_json=cloudformation_json, account_id=account_id, region_name=region_name)

        original_update = LambdaFunction.update_from_cloudformation_json
        LambdaFunction.update_from_cloudformation_json = classmethod(update)
        LambdaFunction._mycli_inline_update = True

    if not hasattr(NetworkInterface, "private_dns_name"):
        NetworkInterface.private_dns_name = None

    def delete(self, account_id: str, region_name: str) -> None:
        backend = ec2_backends[account_id][region_name]
        self._associations.clear()
        backend.route_tables.pop(self.id, None)

    if not hasattr(RouteTable, "delete"):
        RouteTable.delete = delete


def aws_env(region: str) -> dict[str, str]:
    """What a process needs to talk to the moto server as if it were AWS in `region`."""
    return {"AWS_ENDPOINT_URL": moto_endpoint(), "AWS_REGION": region, "AWS_DEFAULT_REGION": region, **FAKE_CREDENTIALS}


def lambda_wheels() -> Path:
    """A folder holding bcrypt's manylinux aarch64 wheel (fetched once from PyPI, then cached)."""
    from mycli_magic.aws.lambda_package import find_bcrypt_wheel, pip_download_argv

    if find_bcrypt_wheel(WHEEL_CACHE) is None:
        WHEEL_CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(pip_download_argv(WHEEL_CACHE), check=True, capture_output=True, timeout=300)
    return WHEEL_CACHE


def complete_moto_stack(stack_name: str, region: str) -> dict[str, str]:
    """Create what moto's CloudFormation skips (AWS::SecretsManager::Secret), from the stack's
    parameters, as CloudFormation would. Returns {unresolved reference: secret ARN} for the
    simulator, since moto leaves `${GitCredentials}` in the task definition unresolved."""
    import boto3
    from moto.cloudformation.models import cloudformation_backends

    stacks = cloudformation_backends[ACCOUNT][region].stacks
    stack = next(s for s in stacks.values() if s.name == stack_name and s.status.endswith("_COMPLETE") and "DELETE" not in s.status)
    params = stack.resource_map.resolved_parameters
    value = json.dumps({
        "github_token": params.get("GitHubToken", ""), "gitlab_token": params.get("GitLabToken", ""),
        "ssh_private_key": params.get("SSHPrivateKey", ""),
    })
    client = boto3.client("secretsmanager", region_name=region)
    arn = client.create_secret(Name=f"{stack_name}-GitCredentials", SecretString=value)["ARN"]
    return {"${GitCredentials}": arn}
