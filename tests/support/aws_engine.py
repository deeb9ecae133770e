"""The AWS engine as its tests meet it: a stack deployed by `mycli init` into the moto server,
the Fargate simulator running its tasks, and a `mycli server --engine aws` in front of both."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

from tests.support.aws import deploy_env
from tests.support.cli import Cli
from tests.support.fargate_sim import FargateSimulator
from tests.support.server import start_server, stop_server


@contextmanager
def deployed_engine(base: Path, stack: str, region: str, github_host: str, token: str,
                    **server_env: str) -> Iterator[SimpleNamespace]:
    """Yields home, env (boto3 at moto), deployer (a Cli), sim and server; all stopped after."""
    home = base / "home"
    home.mkdir()
    env = deploy_env(region)
    deployer = Cli(home, extra_env=env)
    done = deployer.run("init", "--force", "--capacity", "fargate", "--region", region, "--stack-name", stack,
                        "--github-host", github_host, env={"GITHUB_TOKEN": token})
    assert done.returncode == 0, done.stderr
    sim = FargateSimulator(region).start()
    try:
        server = start_server(home, extra_env={**env, "MYCLI_LOG_SETTLE_SECONDS": "1", **server_env},
                              args=("--engine", "aws", "--stack-name", stack, "--region", region,
                                    "--state-dir", str(home / "engine")))
        try:
            yield SimpleNamespace(home=home, env=env, deployer=deployer, sim=sim, server=server)
        finally:
            stop_server(server)
    finally:
        sim.close()
