"""`mycli status ID [--json]`: where an execution is (PENDING, RUNNING, STOPPED) and how it ended."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..common import add_json_argument, add_profile_argument, add_ref_argument

    add_ref_argument(parser)
    add_json_argument(parser)
    add_profile_argument(parser)


def run(args: argparse.Namespace) -> int:
    from ..common import open_client, print_answer

    return print_answer(args, open_client(args).status(args.ref), status_lines)


def status_lines(execution: dict) -> list[str]:
    """The seed's Status / Desired Status / Created At, then whatever else is known."""
    from ...project import shown_command
    from ...safe_text import escape_controls
    from ...summary import format_duration, size_words

    def field(label: str, value: object) -> None:
        if value not in (None, ""):
            rows.append(f"{label + ':':15} {escape_controls(value)}")  # the server's words, made inert

    rows: list[str] = []
    field("Status", execution.get("status"))
    field("Desired Status", execution.get("desired_status"))
    field("Created At", execution.get("created_at"))
    field("Started At", execution.get("started_at"))
    field("Stopped At", execution.get("stopped_at"))
    field("Duration", format_duration(execution.get("duration_seconds")))
    field("Exit Code", execution.get("exit_code"))
    field("Stopped Reason", execution.get("stopped_reason"))
    field("Execution ID", execution.get("execution_id"))
    field("Task ARN", execution.get("task_arn"))
    field("Command", shown_command(execution.get("command") or ""))
    if execution.get("skip_git"):
        field("Repository", "(none: git cloning skipped)")
    else:
        field("Repository", execution.get("repo"))
        field("Branch", execution.get("branch"))
    if execution.get("runtime") == "host":  # a host process: the asked image was not used
        asked = execution.get("image")
        field("Image", f"— (host process; {asked} ignored)" if asked else "— (host process)")
    else:
        field("Image", execution.get("image"))
        field("Image ID", execution.get("image_id"))
        field("Image Digest", execution.get("image_digest"))
    field("Environment", ", ".join(map(str, execution.get("env_keys") or [])))
    field("Engine", f"{execution.get('engine', '?')} (runtime: {execution.get('runtime', '?')})")
    field("Runtime Reason", execution.get("runtime_reason"))
    field("Size", size_words(execution))
    field("Note", execution.get("notice"))
    return rows
