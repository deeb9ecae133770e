"""The magic on the AWS path, in a real IPython shell against the moto server: `%mycli init`
(the same flags as `mycli init`, through the same aws_deploy.init_from_args)."""

from __future__ import annotations

from types import SimpleNamespace

import boto3
import pytest
from aws_harness import aws_env, lambda_wheels
from conftest import ISOLATED_VARS
from magic_support import new_shell

pytestmark = pytest.mark.aws

REGION = "ca-central-1"
STACK = "magictest"


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    """`%mycli init --force ...` run once in a real shell; its printed output and the shell."""
    base = tmp_path_factory.mktemp("aws-magic")
    home = base / "home"
    home.mkdir()
    patch = pytest.MonkeyPatch()
    for name in ISOLATED_VARS:
        patch.delenv(name, raising=False)
    env = {**aws_env(REGION), "MYCLI_HOME": str(home), "MYCLI_LAMBDA_WHEELS": str(lambda_wheels()),
           "MYCLI_DEPLOY_POLL_SECONDS": "0.1", "MYCLI_DISPLAY": "text"}
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
