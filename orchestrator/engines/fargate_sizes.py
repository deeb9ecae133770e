"""Fargate's task sizes: the CPU units and memory (MiB) a task may have together.

From "Task CPU and memory" in the ECS developer guide
(https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-tasks-services.html#fargate-tasks-size):
any other pair is refused by RegisterTaskDefinition ("Invalid 'cpu' setting for task") and by
RunTask's task-level overrides. `mycli doctor` checks the base task definition with it; a per-run
size (`cpu`/`memory` on exec) is checked against it before RunTask.
"""

from __future__ import annotations

MEMORY_BY_CPU: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4096 + 1, 1024)),
    1024: tuple(range(2048, 8192 + 1, 1024)),
    2048: tuple(range(4096, 16384 + 1, 1024)),
    4096: tuple(range(8192, 30720 + 1, 1024)),
    8192: tuple(range(16384, 61440 + 1, 4096)),  # Linux platform 1.4.0 or later
    16384: tuple(range(32768, 122880 + 1, 8192)),
}


def size_error(cpu: object, memory: object) -> str | None:
    """None when (cpu units, memory MiB) is a Fargate size, else what is wrong with it, in words."""
    try:
        units, mib = int(str(cpu)), int(str(memory))
    except (TypeError, ValueError):
        return f"cpu {cpu!r} and memory {memory!r} must be numbers (CPU units, MiB)"
    if units not in MEMORY_BY_CPU:
        return f"cpu {units} is not a Fargate size (one of {', '.join(map(str, MEMORY_BY_CPU))} CPU units)"
    allowed = MEMORY_BY_CPU[units]
    if mib not in allowed:
        choices = (", ".join(map(str, allowed)) if len(allowed) <= 4
                   else f"{allowed[0]}-{allowed[-1]} in steps of {allowed[1] - allowed[0]}")
        return f"memory {mib} MiB does not go with cpu {units} on Fargate ({choices} MiB)"
    return None
