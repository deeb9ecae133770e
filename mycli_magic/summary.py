"""The one line shown after a run: how it ended, how long it took and, on AWS, what it cost.

Pure functions over the API's Execution JSON, so the magic, the widget panel and the CLI can
all word a finished run the same way. Prices are the seed's Cost Analysis figures for
FARGATE_SPOT in us-east-1, plus the public IPv4 address every task gets (billed per hour since
February 2024; for a short run it costs more than the Spot compute), with Fargate's one-minute
minimum; they are estimates, and the line says so.
"""

from __future__ import annotations

import math
import time

from .safe_text import escape_controls, escaped

FARGATE_SPOT_VCPU_HOUR = 0.01242124  # USD per vCPU-hour
FARGATE_SPOT_GB_HOUR = 0.00136308  # USD per GB-hour
PUBLIC_IPV4_HOUR = 0.005  # USD per public IPv4 address-hour (Amazon VPC pricing)
MINIMUM_BILLED_SECONDS = 60  # Fargate bills per second with a one-minute minimum (AWS Fargate pricing)
DEFAULT_VCPU = 0.25
DEFAULT_MEMORY_GB = 0.5
STOPPED_BY_USER = 130
NOT_STARTED_EXIT_CODE = 200  # = orchestrator.shell.NOT_STARTED_EXIT_CODE, without importing the orchestrator


def estimate_cost(duration_seconds: float, vcpu: float = DEFAULT_VCPU, memory_gb: float = DEFAULT_MEMORY_GB) -> float:
    """Cost in USD of one Fargate Spot task of this size running this long: compute plus its
    public IPv4 address, billed for at least a minute."""
    hours = max(float(MINIMUM_BILLED_SECONDS), float(duration_seconds)) / 3600.0
    return (vcpu * FARGATE_SPOT_VCPU_HOUR + memory_gb * FARGATE_SPOT_GB_HOUR + PUBLIC_IPV4_HOUR) * hours


def format_usd(amount: float) -> str:
    """Two significant digits without scientific notation: $0.00032, $0.0000031, $1.20."""
    if amount <= 0:
        return "$0"
    if amount >= 0.01:
        return f"${amount:.2f}"
    decimals = -int(math.floor(math.log10(amount))) + 1
    return f"${amount:.{decimals}f}"


def format_duration(seconds: object) -> str:
    """`0.4 s`, `12.0 s`, `3 min 07 s`, `1 h 02 min` ('' when unknown), as the CLI words it."""
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool):
        return ""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"


def accepted_elapsed(execution: dict, now: float | None = None) -> str:
    """How long a run took from when the engine accepted it (`created_at`) to its end
    (`stopped_at`, else now): `3 s`, `under 1 s`, `2 min 05 s` ('' when unknown).

    A run that could not start has no `started_at`, so no `duration_seconds`; whether it failed
    at once or after a long wait (an image pull, a probe) is still worth saying. The API's
    times have whole seconds, so this says whole seconds."""
    created = epoch(execution.get("created_at"))
    stopped = epoch(execution.get("stopped_at")) if execution.get("stopped_at") else (time.time() if now is None else now)
    if created is None or stopped is None:
        return ""
    seconds = max(0, int(round(stopped - created)))
    return "under 1 s" if seconds == 0 else (f"{seconds} s" if seconds < 60 else format_duration(seconds))


def could_not_start(execution: dict) -> str:
    """`could not start its command after 3 s`: the words the CLI and the notebook both use for
    a run that ended with NOT_STARTED_EXIT_CODE before its command ran."""
    after = accepted_elapsed(execution)
    return "could not start its command" + (f" after {after}" if after else "")


def epoch(value: object) -> float | None:
    """The API's `2024-05-01T12:00:03Z` as epoch seconds (None when it is not that)."""
    import calendar

    if not isinstance(value, str):
        return None
    try:
        return float(calendar.timegm(time.strptime(value, "%Y-%m-%dT%H:%M:%SZ")))
    except ValueError:
        return None


def clock(timestamp_ms: int, date: bool = True) -> str:
    """A log line's time in UTC as the API writes it, `2024-05-01 12:00:03 UTC` (the CLI, the
    text view, `handle.log_lines`), or just `12:00:03` where space is short (the panel)."""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC" if date else "%H:%M:%S", time.gmtime(timestamp_ms / 1000))


def task_size(execution: dict, vcpu: float = DEFAULT_VCPU, memory_gb: float = DEFAULT_MEMORY_GB) -> tuple[float, float]:
    """(vCPU, GB) of the task: the size applied when the engine says (`cpu_applied`, `memory_applied`:
    what it was billed for), else the size asked (`cpu` in vCPU, `memory` in MiB), else the given
    defaults (the task definition's)."""
    cpu = execution.get("cpu_applied") if execution.get("cpu_applied") is not None else execution.get("cpu")
    memory = execution.get("memory_applied") if execution.get("memory_applied") is not None else execution.get("memory")
    try:
        if cpu is not None:
            vcpu = float(cpu)
        if memory is not None:
            memory_gb = int(memory) / 1024
    except (TypeError, ValueError):
        pass
    return vcpu, memory_gb


def cost_note(execution: dict, vcpu: float = DEFAULT_VCPU, memory_gb: float = DEFAULT_MEMORY_GB) -> str:
    """`≈ $0.00073 (Fargate Spot, 0.25 vCPU, 0.5 GB, public IPv4)` on the AWS engine, '' elsewhere."""
    seconds = execution.get("duration_seconds")
    if execution.get("engine") != "ecs" or not isinstance(seconds, (int, float)):
        return ""
    vcpu, memory_gb = task_size(execution, vcpu, memory_gb)
    amount = estimate_cost(seconds, vcpu, memory_gb)
    return f"≈ {format_usd(amount)} (Fargate Spot, {vcpu:g} vCPU, {memory_gb:g} GB, public IPv4)"


def size_words(execution: dict) -> str:
    """The size asked and the size applied, in one phrase ('' when the run asked for none)."""
    cpu, memory = execution.get("cpu"), execution.get("memory")
    if cpu is None:
        return ""
    asked = f"{cpu:g} vCPU, {memory} MiB"
    if execution.get("resources_enforced") is False and execution.get("cpu_applied") is None:
        return f"{asked} asked; not enforced (runtime: {execution.get('runtime') or '?'})"
    applied_cpu, applied_memory = execution.get("cpu_applied"), execution.get("memory_applied")
    if applied_cpu is None:
        return f"{asked} asked"
    applied = "as asked" if (applied_cpu, applied_memory) == (cpu, memory) else f"{applied_cpu:g} vCPU, {applied_memory} MiB"
    enforced = "" if execution.get("resources_enforced") else f" but not enforced by {execution.get('runtime') or 'the runtime'} here"
    return f"{asked} asked; applied {applied}{enforced}"


def outcome(execution: dict) -> tuple[str, str]:
    """(kind, words): kind is ok | failed | stopped | lost, for the badge colour and the icon."""
    code = execution.get("exit_code")
    if code == 0:
        return "ok", "exit 0"
    if code == STOPPED_BY_USER:
        return "stopped", f"stopped (exit {code})"
    if code is None:
        return "lost", "no exit code"
    if code == NOT_STARTED_EXIT_CODE:
        return "failed", f"{could_not_start(execution)} (exit {code})"
    return "failed", f"exit {code}"


def summary_line(execution: dict, vcpu: float = DEFAULT_VCPU, memory_gb: float = DEFAULT_MEMORY_GB) -> str:
    """`✓ 3f2a9c1b0d4e · exit 0 · 2.3 s` (+ `· ≈ $… (Fargate Spot, …)` on AWS, + the reason);
    the server's strings with their control characters escaped."""
    execution = escaped(execution)
    kind, words = outcome(execution)
    icon = {"ok": "✓", "failed": "✗", "stopped": "■", "lost": "✗"}[kind]
    parts = [f"{icon} {execution.get('execution_id') or execution.get('task_arn', '?')}", words]
    took = format_duration(execution.get("duration_seconds"))
    if took:
        parts.append(took)
    cost = cost_note(execution, vcpu, memory_gb)
    if cost:
        parts.append(cost)
    reason = execution.get("stopped_reason")
    if kind in ("stopped", "lost") and reason:
        parts.append(str(reason))
    return " · ".join(parts)


def stop_requested_line(ident: str, check: str) -> str:
    """What a stop answers while the run is still shutting down (its exit code is not known yet:
    not a run that was lost). `check` is the front's own command to look again."""
    return f"→ Stop requested for execution {escape_controls(ident)}; it is shutting down (check: {check})"


HOST_IMAGE = "— (host)"


def image_shown(execution: dict, default: str = "") -> str:
    """The image a run used. A run on the host runtime used none, whatever was asked for (the
    engine records the asked image; `mycli status` shows it as ignored)."""
    if execution.get("runtime") == "host":
        return HOST_IMAGE
    return execution.get("image") or default


LIST_COLUMNS = ("EXECUTION ID", "STATUS", "EXIT", "CREATED", "DURATION", "IMAGE", "WHERE", "COMMAND")


def list_rows(executions: list[dict]) -> list[tuple[str, ...]]:
    """`mycli list` and `%mycli list` alike: one row of LIST_COLUMNS per execution (the server's
    strings with their control characters escaped)."""
    from .project import shown_command

    rows = []
    for e in executions:
        code = e.get("exit_code")
        where = "no git" if e.get("skip_git") or not e.get("repo") else f"{e['repo']}@{e.get('branch') or 'main'}"
        cells = (e.get("execution_id"), e.get("status"), "" if code is None else code, e.get("created_at"),
                 format_duration(e.get("duration_seconds")), image_shown(e), where, shown_command(e.get("command") or ""))
        rows.append(tuple(escape_controls(cell) for cell in cells))
    return rows


def list_table(executions: list[dict]) -> list[str]:
    """The header and one line per execution, columns aligned (the command last, as it is)."""
    rows = [LIST_COLUMNS, *list_rows(executions)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(LIST_COLUMNS) - 1)]
    return ["  ".join(r[i].ljust(w) for i, w in enumerate(widths)) + "  " + r[-1] for r in rows]
