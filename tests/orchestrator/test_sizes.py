"""Per-run size: AWS Fargate's cpu/memory table, how memory is written, and the API's 400s."""

from __future__ import annotations

import pytest

from orchestrator.errors import BadRequest
from orchestrator.sizes import CPU_CHOICES, cpu_units, parse_cpu, parse_memory, resolve_size, task_size_error, valid_memory
from orchestrator.validation import parse_request

# AWS's table (ECS developer guide, "Task CPU and memory"), written out the long way
AWS_TABLE = {
    0.25: [512, 1024, 2048],
    0.5: [1024, 2048, 3072, 4096],
    1: [2048, 3072, 4096, 5120, 6144, 7168, 8192],
    2: list(range(4096, 16384 + 1, 1024)),
    4: list(range(8192, 30720 + 1, 1024)),
    8: list(range(16 * 1024, 60 * 1024 + 1, 4 * 1024)),
    16: list(range(32 * 1024, 120 * 1024 + 1, 8 * 1024)),
}


def test_the_table_is_awss():
    assert CPU_CHOICES == (0.25, 0.5, 1, 2, 4, 8, 16)
    for cpu, memory in AWS_TABLE.items():
        assert valid_memory(cpu) == memory, cpu


def test_a_task_definitions_size_in_cpu_units_is_checked_against_the_same_table():
    """ECS writes cpu in CPU units ("256") and both as strings: `mycli doctor` checks a task
    definition with the table the API uses (one table: it was once kept twice)."""
    assert [cpu_units(c) for c in CPU_CHOICES] == [256, 512, 1024, 2048, 4096, 8192, 16384]
    for cpu, memory in AWS_TABLE.items():
        for mib in range(memory[0] - 1024, memory[-1] + 1025, 512):
            error = task_size_error(str(cpu_units(cpu)), str(mib))
            assert (error is None) == (mib in memory), (cpu, mib, error)
    assert task_size_error("256", "1536") == "memory 1536 MiB does not go with cpu 256 on Fargate (512, 1024, 2048 MiB)"
    assert "2048–8192 MiB in steps of 1024" in task_size_error(1024, 9216)
    assert task_size_error("300", "512").startswith("cpu 300 is not a Fargate size (one of 256, 512, 1024")
    assert "must be numbers" in task_size_error(None, "512") and "must be numbers" in task_size_error("256", "lots")


@pytest.mark.parametrize("text, mib", [
    ("4096", 4096), (4096, 4096), ("4G", 4096), ("4GiB", 4096), ("4gib", 4096), ("4GB", 4096),
    ("512M", 512), ("512MiB", 512), ("0.5G", 512), (" 2 GiB ", 2048), ("1.5GiB", 1536),
])
def test_memory_forms(text, mib):
    assert parse_memory(text) == mib


@pytest.mark.parametrize("text", ["", "4 T", "four", "4K", "-1", "0.3G", "1e3", True, "4GiBs"])
def test_memory_that_is_no_size(text):
    with pytest.raises(ValueError) as info:
        parse_memory(text)
    assert "memory" in str(info.value)


@pytest.mark.parametrize("text, cpu", [("0.25", 0.25), (".5", 0.5), ("1", 1), ("2.0", 2), (16, 16)])
def test_cpu_forms(text, cpu):
    assert parse_cpu(text) == cpu


@pytest.mark.parametrize("text", ["3", "0.1", "32", "x", "", None, True])
def test_cpu_outside_the_table(text):
    with pytest.raises(ValueError) as info:
        parse_cpu(text)
    assert "0.25, 0.5, 1, 2, 4, 8, 16" in str(info.value)


def test_one_half_of_a_size_completes_the_other():
    assert resolve_size(None, None) is None
    assert resolve_size(2, None) == (resolve_size(2, 4096))  # the cpu's smallest memory
    assert resolve_size(None, 3072).cpu == 0.5  # the smallest cpu that takes it
    assert resolve_size(None, "20G").cpu == 4
    with pytest.raises(ValueError) as info:
        resolve_size(None, 1500)
    assert "fits no Fargate size" in str(info.value) and "cpu 16: 32768–122880 MiB in steps of 8192" in str(info.value)


def exec_body(**fields) -> dict:
    return {"action": "exec", "command": "true", "skip_git": True, **fields}


def test_the_api_takes_a_valid_pair():
    _, request = parse_request(exec_body(cpu=1, memory=8192))
    assert (request.cpu, request.memory) == (1, 8192)
    _, request = parse_request(exec_body(cpu=0.25))
    assert (request.cpu, request.memory) == (0.25, 512)
    _, request = parse_request(exec_body())
    assert (request.cpu, request.memory) == (None, None)


@pytest.mark.parametrize("fields, words", [
    ({"cpu": 1, "memory": 1024}, "memory 1024 MiB is not valid with cpu 1: choose 2048–8192 MiB in steps of 1024"),
    ({"cpu": 0.25, "memory": 1536}, "choose 512, 1024, 2048 MiB"),
    ({"cpu": 8, "memory": 17408}, "choose 16384–61440 MiB in steps of 4096"),
    ({"cpu": 3}, "cpu must be one of 0.25, 0.5, 1, 2, 4, 8, 16"),
    ({"cpu": "1"}, "cpu must be a number of vCPU"),
    ({"cpu": True}, "cpu must be a number of vCPU"),
    ({"memory": "4G"}, "memory must be an integer number of MiB"),
    ({"memory": 2048.0}, "memory must be an integer number of MiB"),
    ({"memory": -5}, "positive"),
])
def test_the_api_names_what_is_valid(fields, words):
    with pytest.raises(BadRequest) as info:
        parse_request(exec_body(**fields))
    assert info.value.status == 400 and words in info.value.message
