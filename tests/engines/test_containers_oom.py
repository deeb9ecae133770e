"""A run that goes over its memory limit in docker or podman is said to be out of memory — in
its reason and its log — not just "exited with code 137" (docs/troubleshooting.md, Size)."""

from __future__ import annotations

import pytest



# dd fills a 1500 MiB buffer: over the 512 MiB allowed, and over the 1 GiB docker allows with swap
# where a machine has swap.
GREEDY = "dd if=/dev/zero of=/dev/null bs=1500M count=1 && echo never"
REASON = "Out of memory: the run went over its 512 MiB memory limit and the kernel killed a process"



@pytest.fixture
def container_engine(container_runtime, runtime_servers):
    return runtime_servers(container_runtime)


def test_a_run_over_its_memory_limit_is_said_to_be_out_of_memory(container_engine):
    final = container_engine.run(GREEDY, cpu=0.25, memory=512, timeout_seconds=120)
    lines = container_engine.all_lines(final["execution_id"])
    assert (final["exit_code"], final["stop_code"], final["stopped_reason"]) == (137, "Killed", REASON), lines
    assert f"✗ {REASON}" in lines
    assert not any(line.startswith("never") for line in lines)


def test_a_command_killed_otherwise_is_not_called_out_of_memory(container_engine):
    final = container_engine.run("kill -9 $$", cpu=0.25, memory=512)
    assert (final["exit_code"], final["stop_code"]) == (137, "EssentialContainerExited"), final
    assert "memory" not in final["stopped_reason"].lower()
