"""The layout is checked, not just drawn: import-linter's contracts (pyproject.toml) hold on the
real tree, and each of them breaks when a planted import crosses the line it guards."""

from __future__ import annotations

import ast
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.server import ROOT

LINT_IMPORTS = str(Path(sys.executable).with_name("lint-imports"))


def lint(tree: Path) -> subprocess.CompletedProcess:
    return subprocess.run([LINT_IMPORTS, "--no-cache"], cwd=tree, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tree)},
                          capture_output=True, text=True, timeout=120)


def test_the_contracts_hold_on_the_real_tree():
    proc = lint(ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 kept, 0 broken" in proc.stdout


@pytest.fixture(scope="module")
def copy_tree(tmp_path_factory):
    """A copy of the packages, the config and the custom contract, to plant imports in."""
    def make() -> Path:
        tree = tmp_path_factory.mktemp("tree")
        for package in ("mycli_magic", "orchestrator"):
            shutil.copytree(ROOT / package, tree / package, ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy(ROOT / "pyproject.toml", tree)
        (tree / "tests" / "support").mkdir(parents=True)
        for name in ("tests/__init__.py", "tests/support/__init__.py", "tests/support/import_contracts.py"):
            shutil.copy(ROOT / name, tree / name)
        return tree
    return make


@pytest.mark.parametrize("module, planted, broken", [
    ("mycli_magic/notebook/magics.py", "from mycli_magic.cli import main", "mycli_magic.notebook is not allowed to import mycli_magic.cli"),
    ("mycli_magic/cli/common.py", "from mycli_magic.notebook import handle", "mycli_magic.cli is not allowed to import mycli_magic.notebook"),
    ("mycli_magic/config.py", "from mycli_magic.aws import stack", "is not allowed to import mycli_magic.aws"),
    ("mycli_magic/aws/stack.py", "from mycli_magic.cli import common", "mycli_magic.aws is not allowed to import mycli_magic.cli"),
    ("orchestrator/api.py", "from mycli_magic import config", "orchestrator never imports the client BROKEN"),
    ("orchestrator/ids.py", "import yaml", "orchestrator.ids imports yaml"),
])
def test_a_planted_import_breaks_its_contract(copy_tree, module, planted, broken):
    tree = copy_tree()
    path = tree / module
    path.write_text(path.read_text() + f"\n{planted}  # planted by the test\n")
    proc = lint(tree)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert broken in " ".join(proc.stdout.split()), proc.stdout


def test_every_package_says_what_it_is_for_and_what_it_may_import():
    for init in [*ROOT.glob("mycli_magic/**/__init__.py"), *ROOT.glob("orchestrator/**/__init__.py")]:
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        assert len(doc) > 80, f"{init.relative_to(ROOT)} has no docstring saying what the package is for"
        if init.parent.name in ("cli", "notebook", "aws", "orchestrator", "engines"):
            assert "import" in doc.lower(), f"{init.relative_to(ROOT)} does not say what it may import"


@pytest.mark.parametrize("old", ["mycli_magic.magic", "mycli_magic.views", "mycli_magic.aws_deploy",
                                 "mycli_magic.commands", "mycli_magic.local_engine", "mycli_magic.configure_flow"])
def test_no_shims_at_the_old_module_paths(old):
    assert importlib.util.find_spec(old) is None
