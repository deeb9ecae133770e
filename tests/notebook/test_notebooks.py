"""The notebooks under nbval, in a real kernel, against a real embedded engine with its own
MYCLI_HOME (the kernel inherits the environment, so it finds that engine and nothing else)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.server import ROOT, clean_env, start_server, stop_server

# notebooks/aws-setup.ipynb needs moto and the Fargate simulator: tests/aws/test_aws_notebook.py runs it.
NOTEBOOKS = ["quickstart.ipynb"]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_under_nbval(name, tmp_path):
    home = tmp_path / "mycli-home"
    home.mkdir()
    server = start_server(home)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--nbval", "--nbval-current-env",
             f"notebooks/{name}", "--nbval-sanitize-with", "notebooks/sanitize.cfg"],
            cwd=ROOT, env=clean_env(home), capture_output=True, text=True, timeout=240,
        )
    finally:
        stop_server(server)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "skipped" not in result.stdout
