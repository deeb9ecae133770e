"""Per-run size: vCPU and memory, the pairs AWS Fargate accepts, and how people write memory.

Pure, shared by both engines, the client and `mycli doctor`, so a size the embedded engine takes
is one the AWS engine can run as it is, and every front refuses a wrong one in the same words.
The only copy of the table in mycli (the moto stand-ins keep their own, on purpose). It is AWS's
("Task CPU and memory", the ECS developer guide,
https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-tasks-services.html#fargate-tasks-size):
memory in MiB, valid only with its cpu. The API speaks vCPU; ECS speaks CPU units (1 vCPU = 1024).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import BadRequest

# cpu (vCPU) → (lowest MiB, highest MiB, step MiB)
FARGATE_MEMORY: dict[float, tuple[int, int, int]] = {
    0.25: (512, 2048, 512),  # 512, 1024, 2048: the only table row with a hole (no 1536)
    0.5: (1024, 4096, 1024),
    1: (2048, 8192, 1024),
    2: (4096, 16384, 1024),
    4: (8192, 30720, 1024),
    8: (16384, 61440, 4096),
    16: (32768, 122880, 8192),
}
CPU_CHOICES = tuple(FARGATE_MEMORY)
CPU_UNITS_PER_VCPU = 1024
_UNITS = {"": 1, "m": 1, "mb": 1, "mib": 1, "g": 1024, "gb": 1024, "gib": 1024}
_MEMORY_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*\Z")


@dataclass(frozen=True)
class Size:
    """What a run asked for: vCPU and MiB (both set once validated)."""

    cpu: float
    memory: int

    def describe(self) -> str:
        return f"{format_cpu(self.cpu)} vCPU, {self.memory} MiB"


def valid_memory(cpu: float) -> list[int]:
    low, high, step = FARGATE_MEMORY[cpu]
    return [m for m in range(low, high + 1, step) if not (cpu == 0.25 and m == 1536)]


def memory_range(cpu: float) -> str:
    """The valid memory for `cpu` in words, as AWS's table says it."""
    values = valid_memory(cpu)
    if len(values) <= 4:
        return ", ".join(str(m) for m in values) + " MiB"
    low, high, step = FARGATE_MEMORY[cpu]
    return f"{low}–{high} MiB in steps of {step}"


def format_cpu(cpu: float) -> str:
    return f"{cpu:g}"


def parse_memory(text: object) -> int:
    """`4096`, `4096M`, `512MiB`, `4G`, `4GiB`, `0.5G` → MiB. G and GB mean GiB (as Docker and
    AWS's table write it). Raises ValueError with a message naming the accepted forms."""
    if isinstance(text, bool):
        raise ValueError("memory must be MiB (4096) or a size such as 4GiB")
    if isinstance(text, int):
        return text
    match = _MEMORY_RE.match(str(text))
    unit = match.group(2).lower() if match else None
    if not match or unit not in _UNITS:
        raise ValueError(f"memory {str(text)[:40]!r} is not a size: write MiB (4096) or with a unit (512MiB, 4GiB, 4G)")
    mib = float(match.group(1)) * _UNITS[unit]
    if mib != int(mib):
        raise ValueError(f"memory {str(text)[:40]!r} is not a whole number of MiB")
    return int(mib)


def parse_cpu(text: object) -> float:
    """`0.25`, `1`, `2.0` → one of CPU_CHOICES; ValueError naming them otherwise."""
    try:
        if isinstance(text, bool):
            raise ValueError
        value = float(text)
    except (TypeError, ValueError):
        value = None
    if value not in FARGATE_MEMORY:
        raise ValueError(f"cpu must be one of {', '.join(map(format_cpu, CPU_CHOICES))} (vCPU), not {str(text)[:20]!r}")
    return _canonical(value)


def resolve_size(cpu: object, memory: object) -> Size | None:
    """The size a run gets from what was asked (either may be None): only cpu → its smallest
    memory; only memory → the smallest cpu that takes it; neither → None (the engine's default).
    Raises ValueError naming the valid memory range for the cpu."""
    if cpu is None and memory is None:
        return None
    vcpu = None if cpu is None else parse_cpu(cpu)
    mib = None if memory is None else parse_memory(memory)
    if mib is not None and mib <= 0:
        raise ValueError("memory must be a positive number of MiB")
    if vcpu is None:
        fits = [c for c in CPU_CHOICES if mib in valid_memory(c)]
        if not fits:
            raise ValueError(f"memory {mib} MiB fits no Fargate size: " + "; ".join(
                f"cpu {format_cpu(c)}: {memory_range(c)}" for c in CPU_CHOICES))
        return Size(fits[0], mib)
    if mib is None:
        return Size(vcpu, valid_memory(vcpu)[0])
    if mib not in valid_memory(vcpu):
        raise ValueError(f"memory {mib} MiB is not valid with cpu {format_cpu(vcpu)}: choose {memory_range(vcpu)}")
    return Size(vcpu, mib)


def validate_size(body: dict) -> Size | None:
    """The API's check of an exec body's `cpu` and `memory` (a number of vCPU, an integer of MiB)."""
    cpu, memory = body.get("cpu"), body.get("memory")
    if cpu is not None and (isinstance(cpu, bool) or not isinstance(cpu, (int, float))):
        raise BadRequest(f"cpu must be a number of vCPU: one of {', '.join(map(format_cpu, CPU_CHOICES))}")
    if memory is not None and (isinstance(memory, bool) or not isinstance(memory, int)):
        raise BadRequest("memory must be an integer number of MiB (e.g. 4096)")
    try:
        return resolve_size(cpu, memory)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None


def cpu_units(cpu: float) -> int:
    """vCPU → ECS's CPU units (0.25 → 256), as a task definition and RunTask's overrides write it."""
    return int(cpu * CPU_UNITS_PER_VCPU)


def task_size_error(cpu: object, memory: object) -> str | None:
    """None when a task's cpu (CPU units, as ECS writes it: "256") and memory (MiB) are one of
    Fargate's sizes, else what is wrong with them, in words (`mycli doctor` on a task definition)."""
    try:
        units, mib = int(str(cpu)), int(str(memory))
    except (TypeError, ValueError):
        return f"cpu {cpu!r} and memory {memory!r} must be numbers (CPU units, MiB)"
    vcpu = units / CPU_UNITS_PER_VCPU
    if vcpu not in FARGATE_MEMORY:
        return f"cpu {units} is not a Fargate size (one of {', '.join(str(cpu_units(c)) for c in CPU_CHOICES)} CPU units)"
    if mib not in valid_memory(vcpu):
        return f"memory {mib} MiB does not go with cpu {units} on Fargate ({memory_range(vcpu)})"
    return None


def _canonical(value: float) -> float:
    """0.25 and 0.5 stay floats; whole numbers become ints (shown and stored as `2`, not `2.0`)."""
    return int(value) if value == int(value) else value
