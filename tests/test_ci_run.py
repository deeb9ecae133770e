""".ci/run, the real script, on a small probe project: whatever python3 is first on PATH (here the
interpreter this virtualenv was made from, pyenv's on the developers' machines), it installs into
a virtualenv of its own and never into that python3."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROBE = """
import os, sys

def test_where_am_i():
    with open(os.environ["CI_PROBE_OUT"], "w") as fh:
        fh.write(sys.prefix)
"""


@pytest.fixture
def base_python(tmp_path) -> Path:
    """A directory whose `python3` is the base interpreter, not a virtualenv's."""
    base = Path(sys.base_prefix) / "bin" / "python3"
    assert base.exists(), base
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(base)
    yield bin_dir
    installed = subprocess.run([str(base), "-m", "pip", "show", "ci-probe"], capture_output=True)
    if installed.returncode == 0:  # the script got it wrong: do not leave the probe behind
        subprocess.run([str(base), "-m", "pip", "uninstall", "-y", "-q", "ci-probe"], capture_output=True)


def test_ci_run_always_uses_its_own_virtualenv(tmp_path, base_python):
    project = tmp_path / "probe"
    (project / ".ci").mkdir(parents=True)
    shutil.copy(ROOT / ".ci" / "run", project / ".ci" / "run")
    (project / "ci_probe.py").write_text("")
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=68"]\nbuild-backend = "setuptools.build_meta"\n\n'
        '[project]\nname = "ci-probe"\nversion = "0"\n\n[project.optional-dependencies]\ndev = ["pytest>=8"]\n\n'
        '[tool.setuptools]\npy-modules = ["ci_probe"]\n')
    (project / "tests").mkdir()
    (project / "tests" / "test_probe.py").write_text(PROBE)
    out = tmp_path / "prefix.txt"
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env.update(PATH=f"{base_python}:{env['PATH']}", CI_PROBE_OUT=str(out))
    run = subprocess.run(["bash", str(project / ".ci" / "run"), "-q", "tests"], cwd=tmp_path, env=env,
                         stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    assert out.read_text() == str(project / ".venv")  # pytest ran from the script's own virtualenv
    shown = subprocess.run([str(base_python / "python3"), "-m", "pip", "show", "ci-probe"], capture_output=True)
    assert shown.returncode != 0  # and nothing went into the machine's python3


def test_a_container_test_that_skips_fails_when_ci_requires_containers(tmp_path):
    """.ci/run sets MYCLI_REQUIRE_CONTAINERS=1: a container test that cannot run is a failure there,
    so a CI run where docker or podman did not come up cannot pass by skipping them."""
    env = {k: v for k, v in os.environ.items()  # as if no runtime were set up, and outside .ci/run
           if not k.startswith("MYCLI_TEST_") and k != "MYCLI_REQUIRE_CONTAINERS"}
    selection = ["tests/engines/test_contract.py::test_exec_status_logs_list"]
    # -rN: no short summary, whose lines repeat the reason or cut it at the terminal's width (CI's is wider)
    argv = [sys.executable, "-m", "pytest", "-q", "-rN", "-p", "no:cacheprovider", *selection]
    lenient = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert lenient.returncode == 0 and "1 passed, 2 skipped" in lenient.stdout, lenient.stdout
    strict = subprocess.run(argv, cwd=ROOT, env={**env, "MYCLI_REQUIRE_CONTAINERS": "1"}, capture_output=True,
                            text=True, timeout=300)
    assert strict.returncode == 1 and "1 passed, 2 errors" in strict.stdout, strict.stdout  # skipped in setup: errors
    assert strict.stdout.count("a container test skipped, but MYCLI_REQUIRE_CONTAINERS=1 (.ci/run) needs it") == 2
