"""The AWS stand-in for tests: one moto server for the whole session (in this process, so the
Fargate simulator can reach its backends), with what moto lacks filled in (moto_gaps.py) and the
rules AWS enforces added (aws_rules.py); the environment that points boto3 at it; the bcrypt
wheel `mycli init` packs.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
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

            from tests.support.aws_rules import enforce_aws_rules
            from tests.support.moto_gaps import fill_moto_gaps

            logging.getLogger("werkzeug").setLevel(logging.WARNING)
            server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
            fill_moto_gaps()
            enforce_aws_rules()
            server.start()
            atexit.register(server.stop)
            _server = server
        host, port = _server.get_host_and_port()
    return f"http://{host}:{port}"


def aws_env(region: str) -> dict[str, str]:
    """What a process needs to talk to the moto server as if it were AWS in `region`."""
    return {"AWS_ENDPOINT_URL": moto_endpoint(), "AWS_REGION": region, "AWS_DEFAULT_REGION": region, **FAKE_CREDENTIALS}


@contextmanager
def in_region(region: str) -> Iterator[None]:
    """This process's boto3 clients reach the moto server as `region` until the block ends (a
    module fixture's set-up, where pytest's function-scoped monkeypatch cannot serve)."""
    import pytest

    with pytest.MonkeyPatch.context() as patch:
        for name, value in aws_env(region).items():
            patch.setenv(name, value)
        yield


def deploy_env(region: str) -> dict[str, str]:
    """What `mycli init` needs to deploy into the moto server quickly: `aws_env`, the cached
    bcrypt wheel, and a short stack poll."""
    return {**aws_env(region), "MYCLI_LAMBDA_WHEELS": str(lambda_wheels()), "MYCLI_DEPLOY_POLL_SECONDS": "0.1"}


def lambda_wheels() -> Path:
    """A folder holding bcrypt's manylinux aarch64 wheel (fetched once from PyPI, then cached)."""
    from mycli_magic.aws.lambda_package import find_bcrypt_wheel, pip_download_argv

    if find_bcrypt_wheel(WHEEL_CACHE) is None:
        WHEEL_CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(pip_download_argv(WHEEL_CACHE), check=True, capture_output=True, timeout=300)
    return WHEEL_CACHE
