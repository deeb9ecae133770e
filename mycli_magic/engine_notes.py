"""What the embedded engine's client tells the user beside connecting: what a starting engine is
waiting for (read from its log as it comes), why a start failed, which runtime it settled on, a
running engine whose runtime is not the one MYCLI_LOCAL_RUNTIME now asks for, an image it ignored
(with how old that choice is and how to redo it), and `server status`'s lines.

Words only, from the engine's log and its `GET /health` answer; embedded.py starts and finds the
engine and calls these, the fronts show the lines through their `announce`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Mapping

from .summary import epoch, format_duration

PROGRESS_MARK = " mycli.progress: "  # the logger orchestrator/engines/local_probe.py says it waits with
ERROR_PREFIX = "mycli: error: "  # how the server's CLI words the error that stopped it
READ_LIMIT = 64 * 1024

_warned: set[tuple[object, str]] = set()  # (engine pid, setting) already warned about in this process


class StartProgress:
    """The starting engine's progress lines, passed to `announce` as they come (whole lines only)."""

    def __init__(self, log_path: Path, offset: int, announce: Callable[[str], None] | None) -> None:
        self.log_path, self.offset, self.announce = log_path, offset, announce
        self.shown = False

    def poll(self) -> None:
        if self.announce is None:
            return
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read(READ_LIMIT)
        except OSError:
            return
        complete = data[: data.rfind(b"\n") + 1]
        self.offset += len(complete)
        for line in complete.decode("utf-8", "replace").splitlines():
            if PROGRESS_MARK in line:
                self.shown = True
                self.announce(f"→ Starting the embedded engine: {line.split(PROGRESS_MARK, 1)[1].strip()}")

    def settled(self, answer: dict) -> None:
        """After progress was shown, say which runtime the engine settled on, and why."""
        if self.shown and self.announce and answer.get("runtime"):
            self.announce(f"→ Embedded engine runtime: {answer['runtime']} ({answer.get('runtime_reason') or 'no reason given'})")


def start_error(log_path: Path, offset: int) -> str | None:
    """The one-line reason a failed start wrote (its last `mycli: error: ...` line), if any.

    A bad setting (MYCLI_LOCAL_RUNTIME, MYCLI_MAX_LOG_MB, ...) stops the server before it listens;
    the user should read why where they ran the command, not have to open server.log.
    """
    try:
        with open(log_path, "rb") as fh:
            fh.seek(offset)
            text = fh.read(READ_LIMIT).decode("utf-8", "replace")
    except OSError:
        return None
    # The server's stderr may lack a final newline, so a line may start mid-line after a prefix.
    reasons = [line[line.index(ERROR_PREFIX) + len(ERROR_PREFIX):].strip() for line in text.splitlines() if ERROR_PREFIX in line]
    return reasons[-1] if reasons and reasons[-1] else None


def runtime_mismatch(info: dict, environ: Mapping[str, str], stop_command: str = "mycli server stop") -> str | None:
    """One line when the running engine's runtime (`info['health']`) is not the one
    MYCLI_LOCAL_RUNTIME now asks for.

    The runtime is chosen when the engine starts and kept: a user who sets MYCLI_LOCAL_RUNTIME=
    podman afterwards would otherwise believe they run in podman while they run in docker."""
    wanted = environ.get("MYCLI_LOCAL_RUNTIME") or ""
    answer = info.get("health") or {}
    running, reason = answer.get("runtime"), answer.get("runtime_reason") or ""
    if not running or wanted not in ("auto", "docker", "podman", "host"):
        return None  # an engine too old to say, or a setting the engine itself would refuse
    if wanted == "auto":  # auto takes whatever runs, unless the engine was told to use the host
        if reason != "MYCLI_LOCAL_RUNTIME=host":
            return None
    elif running == wanted:
        return None
    where = "the host" if running == "host" else running
    return (f"⚠ The embedded engine (pid {info.get('pid')}) runs on {where}, not MYCLI_LOCAL_RUNTIME={wanted}: it keeps "
            f"the runtime it started with. To switch: {stop_command} (the next command starts it with "
            f"MYCLI_LOCAL_RUNTIME={wanted})")


def warn_runtime_mismatch(info: dict, environ: Mapping[str, str], announce: Callable[[str], None] | None) -> None:
    """runtime_mismatch's line, once per engine and setting in this process (a notebook's kernel
    runs many magics; each CLI command is a process of its own)."""
    line = runtime_mismatch(info, environ)
    seen = (info.get("pid"), environ.get("MYCLI_LOCAL_RUNTIME") or "")
    if line and announce and seen not in _warned:
        _warned.add(seen)
        announce(line)


def notice_text(execution: dict, stop_command: str, now: float | None = None) -> str | None:
    """The run's notice (e.g. an image it ignored) as every front shows it after its `⚠`; None
    when there is none. When the engine fell back to the host because no runtime worked, the
    line also says how long ago it decided and how to decide again: the engine probes once, when
    it starts, and a docker that came up later is otherwise never noticed. `stop_command` is the
    front's own (`mycli server stop`, `%mycli server stop`)."""
    notice = execution.get("notice")
    if not notice:
        return None
    since = epoch(execution.get("host_fallback_at"))
    if since is None:
        return str(notice)
    age = max(0, round((time.time() if now is None else now) - since))
    ago = f"{age} s" if age < 60 else format_duration(age)
    return (f"{notice} (chosen when the engine started {ago} ago; to look for docker/podman again: {stop_command}, "
            "then run again; MYCLI_LOCAL_RUNTIME=docker makes a missing runtime an error instead of a fallback)")


def status_lines(info: dict, state_dir: object, environ: Mapping[str, str], stop_command: str) -> list[str]:
    """`server status`'s lines for a running engine (`info` from embedded.running_server): where
    it runs, its runtime and why, and a runtime other than MYCLI_LOCAL_RUNTIME asks for."""
    lines = [f"Embedded local engine running at {info['url']} (pid {info['pid']}, state: {info.get('state_dir') or state_dir})"]
    answer = info.get("health") or {}
    if answer.get("runtime"):
        lines.append(f"  runtime: {answer['runtime']} ({answer.get('runtime_reason') or 'no reason given'})")
    mismatch = runtime_mismatch(info, environ, stop_command)
    if mismatch:
        lines.append(f"  {mismatch}")
    return lines
