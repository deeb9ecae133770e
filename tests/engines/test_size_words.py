"""Both engines say an artifact set in the same words: the embedded engine through
orchestrator.units (Python), the AWS publish container through ecs_scripts' awk, under every shell
and awk a container may have (Debian's mawk; busybox's sh and awk, as in the alpine helper image)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from orchestrator.engines.ecs_scripts import files_and_size_lines
from orchestrator.units import MIB, files_and_size, human_size

SIZES = [0, 1, 999, 1000, 1023, 1024, 1536, MIB - 1, MIB, 1536 * MIB, 1024 * 1024 * MIB]
COUNTS = [0, 1, 2]


def test_the_words_of_each_size():
    assert [human_size(n) for n in (0, 1, 1023, 1024, MIB, 1536 * MIB)] == [
        "0 bytes", "1 byte", "1,023 bytes", "1.0 KiB", "1.0 MiB", "1.5 GiB"]
    assert files_and_size(1, 2048) == "1 file, 2.0 KiB" and files_and_size(0, 0) == "0 files, 0 bytes"


@pytest.fixture(params=["dash+awk", "bash+awk", "busybox sh+busybox awk"])
def shell(request, tmp_path):
    """argv of a shell and the PATH under which `awk` is the one named."""
    shell_name, awk = request.param.split("+")
    path = os.environ["PATH"]
    if awk == "busybox awk":
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        (bin_dir / "awk").symlink_to(shutil.which("busybox"))
        path = f"{bin_dir}:{path}"
    argv = shell_name.split()
    if not shutil.which(argv[0]):
        pytest.fail(f"{argv[0]} is not installed")
    return argv, path


def test_the_publish_containers_words_are_the_engines(shell):
    argv, path = shell
    calls = [(count, size) for count in COUNTS for size in SIZES]
    script = "\n".join(files_and_size_lines() + [f"mycli_files_and_size {c} {s}" for c, s in calls])
    done = subprocess.run([*argv, "-c", script], capture_output=True, text=True, env={**os.environ, "PATH": path}, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [files_and_size(c, s) for c, s in calls]
