"""A run's size as the client settles it: `--cpu` / `--memory` (or the magic's options), then
`.mycli.yaml`, then `%config MycliMagics` defaults, each half from the first that sets it; the
pair checked by the orchestrator's own rules (orchestrator/sizes.py), so a wrong one is refused
before anything is sent, in words that say where each half came from.
"""

from __future__ import annotations

from pathlib import Path

from .errors import ConfigError, UsageError


def choose_size(cpu: tuple[object, str], memory: tuple[object, str], project: tuple[object, object, str],
                defaults: tuple[object, object, str] | None):
    """`cpu`, `memory`: (value or None, how the user spells its flag); `project`, `defaults`:
    (cpu, memory, where they come from). Returns orchestrator.sizes.Size or None (no size asked)."""
    from orchestrator.sizes import parse_cpu, parse_memory, resolve_size

    default_cpu, default_memory, default_source = defaults or (None, None, "")
    chosen = {}
    for key, (flag, flag_name), in_file, default, parse in (
            ("cpu", cpu, project[0], default_cpu, parse_cpu), ("memory", memory, project[1], default_memory, parse_memory)):
        for value, source in ((flag, flag_name), (in_file, project[2]), (default, default_source)):
            if value is not None:
                try:
                    chosen[key] = (parse(value), source)
                except ValueError as exc:
                    raise UsageError(f"{source}: {exc}") from None
                break
    try:
        return resolve_size(*(chosen[k][0] if k in chosen else None for k in ("cpu", "memory")))
    except ValueError as exc:
        sources = ", ".join(f"{k} from {source}" for k, (_, source) in chosen.items())
        raise UsageError(f"{exc} ({sources})") from None


def size_keys(path: Path, data: dict) -> tuple[float | None, int | None]:
    """`cpu` and `memory` of a `.mycli.yaml`, parsed; a bad one is a ConfigError naming file and key."""
    from orchestrator.sizes import parse_cpu, parse_memory

    values = []
    for key, parse in (("cpu", parse_cpu), ("memory", parse_memory)):
        try:
            values.append(None if data.get(key) is None else parse(data[key]))
        except ValueError as exc:
            raise ConfigError(f"{path}: key {key!r}: {exc}") from None
    return values[0], values[1]
