"""notebooks/aws-setup.ipynb under nbval against the moto server.

The kernel inherits AWS_ENDPOINT_URL, so `%mycli init` / `destroy` in the notebook talk to moto.
API Gateway's URL cannot run a Lambda under moto, so the kernel's requests go (MYCLI_API_ENDPOINT)
to `mycli server --engine aws` serving the same stack, with the Fargate simulator running the
tasks. The stack is deployed once before the kernel starts, so that server has a stack to serve;
the notebook's `%mycli init --force` then takes the update path.

Regenerate the stored outputs: python -m tests.aws.test_aws_notebook
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.support.aws import aws_env, deploy_env
from tests.support.cli import Cli
from tests.support.server import ROOT, clean_env, start_server, stop_server
from tests.support.fargate_sim import FargateSimulator

pytestmark = pytest.mark.aws

REGION = "us-west-2"
STACK = "nbdemo"
NOTEBOOK = "notebooks/aws-setup.ipynb"


@contextlib.contextmanager
def aws_backend(base: Path):
    """The environment a kernel needs to run the notebook against moto + the simulator."""
    saved = dict(os.environ)
    os.environ.update(aws_env(REGION))
    home = base / "mycli-home"
    home.mkdir()
    env = deploy_env(REGION)
    done = Cli(home, extra_env=env).run("init", "--force", "--capacity", "fargate", "--region", REGION, "--stack-name", STACK)
    assert done.returncode == 0, done.stderr
    sim = FargateSimulator(REGION).start()
    server = start_server(home, extra_env=env,
                          args=("--engine", "aws", "--stack-name", STACK, "--region", REGION, "--state-dir", str(home / "engine")))
    try:
        yield clean_env(home, **env, MYCLI_API_ENDPOINT=server.url, MYCLI_API_KEY=server.key)
    finally:
        stop_server(server)
        sim.close()
        os.environ.clear()
        os.environ.update(saved)


def test_aws_setup_notebook_runs_under_nbval(tmp_path):
    with aws_backend(tmp_path) as env:
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--nbval", "--nbval-current-env",
             NOTEBOOK, "--nbval-sanitize-with", "notebooks/sanitize.cfg"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=240,
        )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "skipped" not in result.stdout


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp, aws_backend(Path(tmp)) as kernel_env:
        # `-m nbconvert`, not `-m jupyter nbconvert`: jupyter runs the first jupyter-nbconvert on PATH,
        # whose interpreter (and its kernel's mycli) may not be this one
        subprocess.run([sys.executable, "-m", "nbconvert", "--to", "notebook", "--execute", "--inplace", NOTEBOOK],
                       cwd=ROOT, env=kernel_env, check=True)
